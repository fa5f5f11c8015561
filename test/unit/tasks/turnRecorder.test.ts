import * as assert from 'node:assert/strict';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import type { Store } from '../../../src/db/store';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { TurnRecorder } from '../../../src/tasks/turnRecorder';
import { ensureNoDisposablesLeaked, openStore, removeDir, tempDir } from '../helpers';

suite('tasks/turnRecorder: events folded into messages', () => {
	let dir: string;
	let store: Store;
	let transcript: TranscriptRepo;
	let chatId: string;
	setup(async () => {
		dir = tempDir();
		store = await openStore(dir);
		const sessions = new SessionsRepo(store);
		chatId = sessions.createChat({ sessionId: sessions.create({ title: 't' }).id, agent: 'a' }).id;
		transcript = new TranscriptRepo(store);
	});
	teardown(async () => {
		await store.close();
		removeDir(dir);
	});
	// After the teardown above, which closes the store.
	ensureNoDisposablesLeaked();

	test('chunks fold into one message; a long stream continues in bounded rows; nothing is lost', () => {
		const turn = transcript.startTurn({ chatId, agent: 'a', prompt: 'go' });
		const recorder = new TurnRecorder(transcript, turn, 10_000);
		let expected = '';
		for (let i = 0; i < 5000; i++) {
			const chunk = `word${i} `;
			expected += chunk;
			recorder.record({ type: 'text', text: chunk });
		}
		recorder.record({ type: 'tool_call', toolCallId: 't1', title: 'Write', status: 'pending' });
		recorder.record({ type: 'tool_update', toolCallId: 't1', status: 'completed' });
		recorder.record({ type: 'text', text: 'after the tool' });
		assert.equal(recorder.finish({ stopReason: 'end_turn', backendSessionId: 'b' }), 'done');
		const rows = transcript.listMessages(turn.id).map((m) => ({ kind: m.kind, content: JSON.parse(m.content) as Record<string, unknown> }));
		const streamed = rows.filter((r) => r.kind === 'text' && r.content.text !== 'after the tool');
		assert.ok(streamed.length > 1, 'a 38 KB stream is split');
		assert.ok(streamed.every((r) => String(r.content.text).length <= 16 * 1024 + 20));
		assert.ok(streamed.slice(1).every((r) => r.content.continued === true));
		assert.equal(streamed.map((r) => r.content.text).join(''), expected);
		const tools = rows.filter((r) => r.kind === 'tool_call');
		assert.equal(tools.length, 1, 'updates merge into their tool call');
		assert.equal(tools[0]!.content.status, 'completed');
		assert.equal(rows[rows.length - 1]!.content.text, 'after the tool');
		assert.equal(transcript.getTurn(turn.id)!.status, 'done');
	});

	test('a fast stream writes each filled row at once, in a task of its own, without waiting for the flush timer', async () => {
		const turn = transcript.startTurn({ chatId, agent: 'a', prompt: 'go' });
		const recorder = new TurnRecorder(transcript, turn, 60_000);
		const stored = (): string => transcript.listMessages(turn.id).filter((m) => m.kind === 'text').map((m) => String((JSON.parse(m.content) as { text: string }).text)).join('');
		let sent = '';
		for (let i = 0; sent.length < 40 * 1024; i++) {
			sent += `chunk${i} `;
			recorder.record({ type: 'text', text: `chunk${i} ` });
		}
		assert.equal(stored(), '', 'nothing is written inside the event that fills a row');
		await new Promise((r) => setImmediate(r));
		assert.equal(stored(), sent, 'the next macrotask wrote everything streamed so far, long before the 60 s timer');
		recorder.record({ type: 'text', text: 'tail' });
		await new Promise((r) => setImmediate(r));
		assert.equal(stored(), sent, 'a short tail waits for the timer (or the end of the turn)');
		assert.equal(recorder.finish({ stopReason: 'end_turn', backendSessionId: 'b' }), 'done');
		assert.equal(stored(), `${sent}tail`);
	});

	test('a turn that ends cancelled or failed leaves no tool call running; one that ends normally leaves them as the agent said', () => {
		for (const stopReason of ['cancelled', 'error', 'end_turn'] as const) {
			const turn = transcript.startTurn({ chatId, agent: 'a', prompt: stopReason });
			const recorder = new TurnRecorder(transcript, turn, 10_000);
			recorder.record({ type: 'tool_call', toolCallId: 'p', title: 'Pending', status: 'pending' });
			recorder.record({ type: 'tool_call', toolCallId: 'r', title: 'Running', status: 'in_progress' });
			recorder.record({ type: 'tool_call', toolCallId: 'd', title: 'Done', status: 'completed' });
			recorder.record({ type: 'compaction', compactionId: 'k', status: 'in_progress' });
			recorder.finish({ stopReason, backendSessionId: 'b' });
			const compaction = transcript.listMessages(turn.id).find((m) => m.kind === 'notice');
			assert.equal((JSON.parse(compaction!.content) as { status: string }).status, stopReason === 'end_turn' ? 'in_progress' : 'cancelled', `${stopReason}: a compaction under way stops with the turn`);
			const statuses = transcript.listMessages(turn.id).filter((m) => m.kind === 'tool_call').map((m) => (JSON.parse(m.content) as { status: string }).status);
			assert.deepEqual(statuses, stopReason === 'end_turn' ? ['pending', 'in_progress', 'completed'] : ['failed', 'failed', 'completed'], stopReason);
		}
	});

	test('turns left running by a crash of the host are marked interrupted, their messages kept', () => {
		const turn = transcript.startTurn({ chatId, agent: 'a', prompt: 'go' });
		const recorder = new TurnRecorder(transcript, turn, 10_000);
		recorder.record({ type: 'text', text: 'half an answer' });
		recorder.record({ type: 'tool_call', toolCallId: 'run', title: 'npm test', status: 'in_progress' });
		recorder.record({ type: 'tool_call', toolCallId: 'ok', title: 'Read', status: 'completed' });
		recorder.flush();
		const seqBefore = transcript.chatSeq(chatId);
		assert.deepEqual(transcript.markRunningInterrupted('the window closed'), [turn.id]);
		// Its tool call that was running is not any more (and the tab's resync sees the change).
		const tools = transcript.listMessages(turn.id).filter((m) => m.kind === 'tool_call').map((m) => JSON.parse(m.content) as Record<string, unknown>);
		assert.deepEqual(tools.map((c) => [c.toolCallId, c.status, c.stoppedWithTurn]), [['run', 'failed', 'interrupted'], ['ok', 'completed', undefined]]);
		assert.ok(transcript.chatSeq(chatId) > seqBefore, 'the changed rows are numbered anew');
		const row = transcript.getTurn(turn.id)!;
		assert.deepEqual([row.status, row.error], ['interrupted', 'the window closed']);
		assert.match(transcript.listMessages(turn.id).map((m) => m.content).join(''), /half an answer/);
		// It says so last in the turn, as an error a chat shows with a Retry.
		const last = transcript.listMessages(turn.id).at(-1)!;
		assert.deepEqual([last.kind, JSON.parse(last.content)], ['error', { message: 'the window closed', code: 'turn/interrupted' }]);
		assert.deepEqual(transcript.markRunningInterrupted('again'), [], 'and only once');
		assert.equal(transcript.listMessages(turn.id).filter((m) => m.kind === 'error').length, 1);
	});
});
