import * as assert from 'node:assert/strict';
import { SilenceWatchdog } from '../../../src/tasks/silenceWatchdog';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The watchdog's own bookkeeping; the turn runner's tests drive it with a real agent. */
suite('tasks/silenceWatchdog', () => {
	test('a limit longer than a timer can hold (a setting of 100000 minutes) neither fires nor spins on an overflowed timer', async () => {
		let fired = 0;
		const warnings: string[] = [];
		const onWarning = (w: Error): void => void warnings.push(w.name);
		process.on('warning', onWarning);
		const watchdog = new SilenceWatchdog(100_000 * 60_000, () => fired++);
		await sleep(50);
		watchdog.dispose();
		process.off('warning', onWarning);
		assert.equal(fired, 0);
		assert.deepEqual(warnings, [], 'Node turns a timer past 2^31-1 ms into 1 ms, with a TimeoutOverflowWarning');
	});

	test('a tool call holds it off until it completes or fails, whatever updates without a status say; then silence counts again', async () => {
		let fired = 0;
		const watchdog = new SilenceWatchdog(300, () => fired++);
		watchdog.observe({ type: 'tool_call', toolCallId: 'a', title: 'Build' });
		watchdog.observe({ type: 'tool_call', toolCallId: 'b', title: 'Test', status: 'pending' });
		watchdog.observe({ type: 'tool_update', toolCallId: 'a', title: 'Build (still)' });
		watchdog.observe({ type: 'tool_update', toolCallId: 'a', status: 'failed' });
		await sleep(700);
		assert.equal(fired, 0, 'b still runs');
		watchdog.observe({ type: 'tool_update', toolCallId: 'b', status: 'completed' });
		await sleep(100);
		assert.equal(fired, 0, 'silence counts from the end of the last tool call');
		await sleep(600);
		assert.equal(fired, 1);
		assert.ok(watchdog.fired);
	});

	test('a running tool call holds it off for six times the limit of nothing from the agent, each event counting anew; then it fires, naming the call', async () => {
		let fired = 0;
		const watchdog = new SilenceWatchdog(100, () => fired++);
		assert.equal(watchdog.toolTimeoutMs, 600);
		watchdog.observe({ type: 'tool_call', toolCallId: 'a', title: 'Build', status: 'in_progress' });
		for (let i = 0; i < 4; i++) {
			await sleep(300);
			watchdog.observe({ type: 'tool_update', toolCallId: 'a', content: [{ type: 'text', text: `line ${i}` }] });
		}
		assert.equal(fired, 0, 'output every 300 ms is work');
		await sleep(400);
		assert.equal(fired, 0);
		await sleep(500);
		assert.equal(fired, 1, 'silent for longer than 600 ms');
		assert.equal(watchdog.stalledTool, 'Build');
	});

	test('a request of the agent being answered holds it off; answered, silence counts from then', async () => {
		let fired = 0;
		const watchdog = new SilenceWatchdog(300, () => fired++);
		const answered = watchdog.requestStarted();
		await sleep(700);
		assert.equal(fired, 0, 'the agent waits for a terminal command');
		answered();
		answered();
		await sleep(100);
		assert.equal(fired, 0);
		await sleep(600);
		assert.equal(fired, 1, 'answering twice counted once');
	});

	test('disposed, it never fires', async () => {
		let fired = 0;
		const watchdog = new SilenceWatchdog(50, () => fired++);
		watchdog.dispose();
		await sleep(150);
		assert.equal(fired, 0);
	});
});
