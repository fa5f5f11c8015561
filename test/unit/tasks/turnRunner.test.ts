import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AgentDefinition } from '../../../src/agents/definitions';
import type { AgentEvent } from '../../../src/protocol/agentEvents';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { processAlive } from '../../../src/worktrees/gitProcess';
import { spawnHelperForTests } from '../../../src/worktrees/spawnHelper';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { AgentRig, agentScript, alive, pidOf } from '../agentRig';
import { gitEnv } from '../gitRepo';
import { parentPid, waitFor } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

/**
 * The turn layer over the real pool, a real store and git repository, and the scripted ACP agent (a real
 * child process): streaming, the transcript, attribution, confinement, permissions, terminals, redaction,
 * worktrees that go away, cancel and shutdown.
 */
suite('tasks/turnRunner with a real ACP agent process', function () {
	this.timeout(30_000);
	checkNoLeaksAfterSuite();
	const rig = new AgentRig();

	test('a turn streams, is persisted folded into messages, and its fs write is attributed', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const seen: AgentEvent[] = [];
		const sub = turns.onDidEvent((e) => e.chatId === chat && seen.push(e.event));
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'think pondering\nsay Hello\nsay  world\nplan read|write\nwrite hello.txt hi there\\n' });
		sub.dispose();
		assert.equal(outcome.status, 'done');
		assert.equal(outcome.result.stopReason, 'end_turn');
		assert.equal(fs.readFileSync(path.join(rig.work, 'hello.txt'), 'utf8'), 'hi there\n');
		const kinds = rig.messages(outcome.turn.id).map((m) => m.kind);
		assert.deepEqual(kinds.slice(0, 1), ['user']);
		for (const k of ['reasoning', 'text', 'plan', 'file_edit']) {
			assert.ok(kinds.includes(k), `transcript has ${k}: ${kinds.join(',')}`);
		}
		assert.match(rig.agentText(outcome.turn.id), /Hello world/);
		const pending = new PendingChangesRepo(rig.store).listForChat(chat);
		assert.equal(pending.length, 1);
		assert.deepEqual({ path: pending[0]!.path, agent: pending[0]!.agent, turn: pending[0]!.turn_id, kind: pending[0]!.kind, source: pending[0]!.source }, {
			path: 'hello.txt', agent: 'scripted', turn: outcome.turn.id, kind: 'add', source: 'protocol',
		});
		assert.ok(seen.some((e) => e.type === 'text'));
	});

	test('an agent that writes to disk itself is caught by the worktree diff', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		fs.writeFileSync(path.join(rig.work, 'README.md'), '# dirty before the turn\n');
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'diskwrite src/direct.ts export const x = 1;\\n' });
		assert.equal(outcome.status, 'done');
		const pending = new PendingChangesRepo(rig.store).listForChat(chat);
		assert.deepEqual(pending.map((p) => [p.path, p.kind, p.source, p.shared]), [['src/direct.ts', 'add', 'watcher', 0]], 'the file dirty before the turn is not blamed on it');
	});

	test('when two turns overlap in one worktree, a write only the diff saw is marked shared', async () => {
		const { pool, turns } = rig.make();
		const s = { id: rig.sessionId };
		const a = rig.newChat();
		const b = rig.newChat();
		await Promise.all([pool.ensure(a, 'scripted'), pool.ensure(b, 'scripted')]);
		const long = turns.runTurn(a, 'scripted', { text: 'sleep 600\ndiskwrite from-a.txt a' });
		await waitFor(() => pool.isRunning(a, 'scripted'));
		const short = await turns.runTurn(b, 'scripted', { text: 'write from-b.txt b' });
		await long;
		const rows = new PendingChangesRepo(rig.store).listForSession(s.id).map((p) => [p.path, p.chat_id, p.source, p.shared]);
		assert.deepEqual(rows.sort(), [
			['from-a.txt', a, 'watcher', 1],
			['from-b.txt', b, 'protocol', 0],
		].sort(), 'the protocol-reported write is attributed exactly; the one only seen on disk is shared');
		assert.equal(short.status, 'done');
	});

	test('when two turns overlap and this one overwrites a file the other reported writing, the file is recorded for both, shared', async () => {
		const { pool, turns } = rig.make();
		const s = { id: rig.sessionId };
		const a = rig.newChat();
		const b = rig.newChat();
		await Promise.all([pool.ensure(a, 'scripted'), pool.ensure(b, 'scripted')]);
		// a writes the file itself, unreported, after b reported writing it: the content on disk is a's.
		const long = turns.runTurn(a, 'scripted', { text: 'sleep 600\ndiskwrite both.txt from a' });
		await waitFor(() => pool.isRunning(a, 'scripted'));
		await turns.runTurn(b, 'scripted', { text: 'write both.txt from b\nwrite only-b.txt b' });
		await long;
		assert.equal(fs.readFileSync(path.join(rig.work, 'both.txt'), 'utf8'), 'from a');
		const rows = new PendingChangesRepo(rig.store).listForSession(s.id).map((p) => [p.path, p.chat_id, p.source, p.shared]);
		assert.deepEqual(rows.sort(), [
			['both.txt', a, 'watcher', 1],
			['both.txt', b, 'protocol', 0],
			['only-b.txt', b, 'protocol', 0],
		].sort(), "a's overwrite is a's too; a file b wrote and a left alone stays b's only");
	});

	test("a write another turn reports while this turn's agent is still starting is that turn's, not this one's", async () => {
		// An agent that takes 1.5 s to start: its turn has taken its "before" picture long before it can write.
		const slow: AgentDefinition = { id: 'slow', label: 'Slow', transport: 'acp', command: '/bin/sh', args: ['-c', `sleep 1.5; exec "${process.execPath}" "${agentScript}"`], env: rig.agentEnv };
		const { pool, turns } = rig.make({ defs: () => [...rig.definitions(), slow] });
		const a = rig.sessions.createChat({ sessionId: rig.sessionId, agent: 'slow' }).id;
		const b = rig.newChat();
		await pool.ensure(b, 'scripted');
		const starting = turns.runTurn(a, 'slow', { text: 'say nothing written here' });
		await new Promise((r) => setTimeout(r, 400));
		assert.equal((await turns.runTurn(b, 'scripted', { text: 'write from-b.txt b' })).status, 'done');
		const outcome = await starting;
		assert.equal(outcome.status, 'done');
		const rows = new PendingChangesRepo(rig.store).listForSession(rig.sessionId).map((p) => [p.path, p.chat_id, p.agent, p.source]);
		assert.deepEqual(rows, [['from-b.txt', b, 'scripted', 'protocol']], 'the slow turn claims nothing');
	});

	test('writes outside the worktree are refused with a clear error, symlinks included', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const outside = path.join(rig.dir, 'outside');
		fs.mkdirSync(outside);
		fs.symlinkSync(outside, path.join(rig.work, 'escape'));
		const outcome = await turns.runTurn(chat, 'scripted', { text: `writeabs ${path.join(outside, 'a.txt')} nope\nwrite ../outside/b.txt nope\nwrite escape/c.txt nope` });
		const text = rig.agentText(outcome.turn.id);
		assert.equal((text.match(/write error: .*outside this session's worktree/g) ?? []).length, 3, text);
		assert.deepEqual(fs.readdirSync(outside), []);
		assert.deepEqual(new PendingChangesRepo(rig.store).listForChat(chat), []);
	});

	test('a write sent after the turn ended (after a cancel, or while idle) is refused: no edit goes unattributed', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'latewrite 300 late.txt written after the turn\nwrite in-turn.txt during the turn' });
		assert.equal(outcome.status, 'done');
		await new Promise((r) => setTimeout(r, 900));
		assert.ok(fs.existsSync(path.join(rig.work, 'in-turn.txt')));
		assert.ok(!fs.existsSync(path.join(rig.work, 'late.txt')), 'the late write was refused');
		assert.ok(rig.logger.lines.some((l) => /latewrite late\.txt: .*outside a turn/.test(l)), rig.logger.lines.filter((l) => l.includes('latewrite')).join('\n') || 'the agent was told why');
		assert.deepEqual(new PendingChangesRepo(rig.store).listForChat(chat).map((p) => p.path), ['in-turn.txt']);
	});

	test('partial reads count lines from 1 and a limit of 0 reads nothing; images an agent does not take are said, not dropped silently', async () => {
		fs.writeFileSync(path.join(rig.work, 'lines.txt'), 'a\nb\nc\n');
		const { turns } = rig.make({ defs: () => rig.definitions({ SCRIPTED_AGENT_NO_IMAGES: '1' }) });
		const chat = rig.newChat();
		const outcome = await turns.runTurn(chat, 'scripted', {
			text: 'readlines lines.txt 2 1\nreadlines lines.txt 2 0\nreadlines lines.txt 9 2\nreadlines lines.txt 1 2',
			images: [{ data: Buffer.from('not really a png').toString('base64'), mimeType: 'image/png' }],
		});
		const text = rig.agentText(outcome.turn.id);
		assert.match(text, /lines 2\+1: "b"/);
		assert.match(text, /lines 2\+0: ""/);
		assert.match(text, /lines 9\+2: ""/);
		assert.match(text, /lines 1\+2: "a\\nb"/);
		assert.ok(rig.messages(outcome.turn.id).some((m) => m.kind === 'notice' && /does not take images, so the image was not sent/.test(JSON.stringify(m.content))));
	});

	test("a permission request the agent withdraws ($/cancel_request) closes at once instead of waiting for the person's timeout", async () => {
		const { turns, broker } = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 60_000 } });
		const chat = rig.newChat();
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'permwithdraw 300' });
		assert.match(rig.agentText(outcome.turn.id), /withdrawn: (cancelled|request error) after less than 5 s/);
		assert.deepEqual(broker.pending, [], 'no card is left waiting');
	});

	test('a permission request naming only its tool call shows that call, and allowing a "delete" lets no terminal run unasked', async () => {
		const { turns, broker } = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 1500 } });
		const asked: { title: string; kind?: string }[] = [];
		const sub = broker.onDidRequest((r) => {
			asked.push({ title: r.title, kind: r.kind });
			if (r.title === 'Delete notes.txt') {
				broker.decide(r.id, 'allow'); // the person allows the delete; the terminal request goes unanswered
			}
		});
		const chat = rig.newChat();
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'idonlythenrun echo RAN-UNASKED > ran.txt' });
		sub.dispose();
		const text = rig.agentText(outcome.turn.id);
		assert.match(text, /permission: allow/);
		assert.deepEqual(asked[0], { title: 'Delete notes.txt', kind: 'delete' }, 'the request is shown with the announced title and kind');
		assert.ok(asked.some((a) => /^Run in a terminal: sh -c 'echo RAN-UNASKED/.test(a.title)), 'the terminal was asked for on its own');
		assert.match(text, /terminal refused/);
		assert.ok(!fs.existsSync(path.join(rig.work, 'ran.txt')));
	});

	test('a diff shown before the permission request counts as an edit only once the tool call completes', async () => {
		const rejecting = rig.make({ permissionSettings: { default: 'reject', timeoutMs: 2000 } });
		const rejectedChat = rig.newChat();
		const rejected = await rejecting.turns.runTurn(rejectedChat, 'scripted', { text: 'propose proposed.txt maybe' });
		assert.equal(rejected.status, 'done', rejected.result.error);
		assert.ok(!fs.existsSync(path.join(rig.work, 'proposed.txt')));
		assert.deepEqual(new PendingChangesRepo(rig.store).listForChat(rejectedChat), [], 'a rejected proposal is not a change');
		assert.deepEqual(rig.messages(rejected.turn.id).filter((m) => m.kind === 'file_edit'), []);

		const allowing = rig.make();
		const allowedChat = rig.newChat();
		const allowed = await allowing.turns.runTurn(allowedChat, 'scripted', { text: 'propose proposed.txt yes' });
		assert.equal(fs.readFileSync(path.join(rig.work, 'proposed.txt'), 'utf8'), 'yes');
		const pending = new PendingChangesRepo(rig.store).listForChat(allowedChat);
		assert.deepEqual(
			pending.map((p) => [p.path, p.kind, p.turn_id, p.source]),
			[['proposed.txt', 'add', allowed.turn.id, 'protocol']],
		);
	});

	test('a tool call announced only in its permission request is shown with its title, kind and files, and its diff is attributed once it completes', async () => {
		const rejecting = rig.make({ permissionSettings: { default: 'reject', timeoutMs: 2000 } });
		const rejectedChat = rig.newChat();
		const rejected = await rejecting.turns.runTurn(rejectedChat, 'scripted', { text: 'permonly unasked.txt no' });
		assert.equal(rejected.status, 'done', rejected.result.error);
		const refusedRows = rig.messages(rejected.turn.id);
		assert.deepEqual(
			refusedRows.filter((m) => m.kind === 'tool_call').map((m) => [m.content.title, m.content.kind, m.content.status]),
			[['Write unasked.txt', 'edit', 'failed']],
		);
		assert.deepEqual(refusedRows.filter((m) => m.kind === 'file_edit'), [], 'a refused call wrote nothing');

		const allowing = rig.make();
		const allowedChat = rig.newChat();
		const allowed = await allowing.turns.runTurn(allowedChat, 'scripted', { text: 'permonly asked.txt yes' });
		assert.equal(fs.readFileSync(path.join(rig.work, 'asked.txt'), 'utf8'), 'yes');
		const rows = rig.messages(allowed.turn.id);
		const kinds = rows.map((m) => m.kind);
		assert.ok(kinds.indexOf('tool_call') >= 0 && kinds.indexOf('tool_call') < kinds.indexOf('permission'), `the call's row comes before its request: ${kinds.join(',')}`);
		const tool = rows.find((m) => m.kind === 'tool_call')!.content;
		assert.deepEqual([tool.title, tool.kind, tool.status], ['Write asked.txt', 'edit', 'completed']);
		assert.deepEqual((tool.content as { type: string; newText?: string }[]).map((c) => [c.type, c.newText]), [['diff', 'yes']]);
		assert.deepEqual(
			rows.filter((m) => m.kind === 'file_edit').map((m) => [m.content.path, m.content.kind, m.content.source]),
			[['asked.txt', 'add', 'tool_diff']],
			'the diff is attributed as the tool call\'s, not found by the watcher',
		);
		assert.deepEqual(
			new PendingChangesRepo(rig.store).listForChat(allowedChat).map((p) => [p.path, p.kind, p.turn_id, p.source]),
			[['asked.txt', 'add', allowed.turn.id, 'protocol']],
		);
	});

	test('a missing file reads as the spec\'s resource-not-found error, or as an empty text for agents that need it; reads stay confined either way', async () => {
		fs.writeFileSync(path.join(rig.work, 'present.txt'), 'abc\n');
		fs.writeFileSync(path.join(rig.dir, 'secret.txt'), 'secret\n');
		const reads = 'read present.txt\nread missing.txt\nread no-such-rig.dir/missing.txt\nread ../secret.txt\nread ../no-such.txt';
		const answers = async (def: Partial<AgentDefinition>, env: Record<string, string> = {}): Promise<string[]> => {
			const { turns } = rig.make({ defs: () => [{ ...rig.definitions(env)[0]!, ...def }] });
			const outcome = await turns.runTurn(rig.newChat(), 'scripted', { text: reads });
			assert.equal(outcome.status, 'done', outcome.result.error);
			return rig.agentText(outcome.turn.id).trim().split('\n');
		};
		const outside = [/^read error -32602: .*secret\.txt is outside this session's worktree/, /^read error -32602: .*no-such\.txt is outside this session's worktree/];
		const check = (lines: string[], missing: RegExp[]): void => {
			assert.equal(lines.length, 5, lines.join('\n'));
			[/^read 4 chars$/, ...missing, ...outside].forEach((re, i) => assert.match(lines[i]!, re));
		};
		const notFound = [/^read error -32002: Resource not found: .*missing\.txt$/, /^read error -32002: Resource not found: .*no-such-rig.dir\/missing\.txt$/];
		const empty = [/^read 0 chars$/, /^read 0 chars$/];
		check(await answers({}), notFound);
		check(await answers({ readMissingFile: 'notFound' }), notFound);
		check(await answers({ readMissingFile: 'empty' }), empty);
		// The Gemini CLI needs the empty answer even when a user's own definition starts it; an explicit setting wins.
		check(await answers({}, { SCRIPTED_AGENT_NAME: 'gemini-cli' }), empty);
		check(await answers({ readMissingFile: 'notFound' }, { SCRIPTED_AGENT_NAME: 'gemini-cli' }), notFound);
	});

	test('a file too large to read whole (a 100 MB binary) is refused with what to do instead, and the chat goes on', async () => {
		const fd = fs.openSync(path.join(rig.work, 'data.bin'), 'w');
		fs.ftruncateSync(fd, 100 * 1024 * 1024);
		fs.closeSync(fd);
		const { turns } = rig.make();
		const chat = rig.newChat();
		const first = await turns.runTurn(chat, 'scripted', { text: 'read data.bin' });
		assert.equal(first.status, 'done', first.result.error);
		assert.match(rig.agentText(first.turn.id), /^read error -32602: Refused: .*data\.bin is 100 MB; one read gives at most 16 MB/);
		const second = await turns.runTurn(chat, 'scripted', { text: 'say still talking' });
		assert.equal(second.status, 'done', second.result.error);
		assert.match(rig.agentText(second.turn.id), /still talking/);
	});

	test('a permission request offering no option is answered at once (cancelled), not shown for a person to wait out', async () => {
		const { turns, broker } = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 5000 } });
		const shown: string[] = [];
		const sub = broker.onDidRequest((r) => shown.push(r.title));
		const chat = rig.newChat();
		const started = Date.now();
		const outcome = await turns.runTurn(chat, 'scripted', {
			text: 'request session/request_permission {"sessionId":"$SESSION","toolCall":{"toolCallId":"ghost","title":"Run it"},"options":[]}\nsay after',
		});
		sub.dispose();
		assert.equal(outcome.status, 'done');
		assert.ok(Date.now() - started < 3000, `answered at once (${Date.now() - started} ms)`);
		assert.deepEqual(shown, [], 'no card with nothing to press');
		assert.match(rig.agentText(outcome.turn.id), /^answer: \{"outcome":\{"outcome":"cancelled"\}\}\nafter$/);
		assert.match(rig.logger.lines.join('\n'), /asked permission for "Run it" offering no option/);
	});

	test('permission requests go to the broker: a person decides, silence rejects', async () => {
		const { turns, broker } = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 300 } });
		const chat = rig.newChat();
		let answered = 0;
		const sub = broker.onDidRequest((r) => {
			if (answered++ === 0) {
				const allow = r.options.find((o) => o.kind === 'allow_once')!;
				setTimeout(() => broker.decide(r.id, allow.optionId), 50);
			}
		});
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'permission first\npermission second' });
		sub.dispose();
		const text = rig.agentText(outcome.turn.id);
		assert.match(text, /permission: allow/);
		assert.match(text, /permission: reject/, 'no answer in time is the agent\'s reject option (cancelled would say the turn was cancelled)');
		const decisions = rig.messages(outcome.turn.id).filter((m) => m.kind === 'permission').map((m) => (m.content.decision as { decidedBy: string }).decidedBy);
		assert.deepEqual(decisions, ['user', 'timeout']);
	});

	test('a permission request is put to a person without the keys it names: its title, and a terminal command that holds one', async () => {
		const key = 'sk-ant-asked-about-0123456789';
		const { turns, broker } = rig.make({
			permissionSettings: { default: 'ask', timeoutMs: 5000 },
			defs: () => [{ ...rig.definitions()[0]!, secretEnv: ['ANTHROPIC_API_KEY'] }],
			agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: key }),
		});
		const chat = rig.newChat();
		const asked: string[] = [];
		const sub = broker.onDidRequest((r) => {
			asked.push(JSON.stringify(r));
			setTimeout(() => broker.decide(r.id, r.options.find((o) => o.kind === 'allow_once')!.optionId), 20);
		});
		const outcome = await turns.runTurn(chat, 'scripted', { text: `permission upload with ${key}\nterminal echo ${key} > /dev/null` });
		sub.dispose();
		assert.equal(outcome.status, 'done');
		assert.equal(asked.length, 2, asked.join('\n'));
		assert.ok(asked.every((a) => !a.includes(key)), `what a person is shown (the notification, its buttons) holds no key: ${asked.join('\n')}`);
		assert.match(asked[0]!, /upload with \[redacted ANTHROPIC_API_KEY\]/);
		assert.match(asked[1]!, /Run in a terminal: .*echo \[redacted ANTHROPIC_API_KEY\]/);
		assert.match(rig.agentText(outcome.turn.id), /permission: allow[\s\S]*exit 0/, 'the agent still gets its answers');
	});

	test('terminals run inside the worktree', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'terminal pwd; echo out-$((40+2))' });
		const text = rig.agentText(outcome.turn.id);
		assert.ok(text.includes(fs.realpathSync(rig.work)) || text.includes(rig.work), text);
		assert.match(text, /out-42/);
	});

	test('a terminal command still running when its turn is cancelled is killed with what it started; the spawn helper started it, not the host', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const pids = path.join(rig.dir, 'terminal-pids');
		const running = turns.runTurn(chat, 'scripted', { text: `terminal sleep 300 & echo $$ $! > ${pids}.tmp; mv ${pids}.tmp ${pids}; wait` });
		await waitFor(() => fs.existsSync(pids), 'the terminal command to start', 20_000);
		const [shell, sleeper] = fs.readFileSync(pids, 'utf8').trim().split(' ').map(Number) as [number, number];
		if (process.platform === 'linux') {
			assert.equal(parentPid(shell), spawnHelperForTests.pid, 'forked by the spawn helper');
		}
		await turns.cancel(chat, 'scripted');
		await running;
		await waitFor(() => !processAlive(shell) && !processAlive(sleeper), 'the command and the process it started to be killed', 10_000);
	});

	test('a cancel stops the commands of the turn it cancels, not a server an earlier turn left running', async () => {
		const { pool, turns } = rig.make();
		const chat = rig.newChat();
		const serverPid = path.join(rig.dir, 'server-pid');
		const first = await turns.runTurn(chat, 'scripted', { text: `bgterminal echo $$ > ${serverPid}.tmp; mv ${serverPid}.tmp ${serverPid}; exec sleep 300` });
		assert.equal(first.status, 'done');
		await waitFor(() => fs.existsSync(serverPid), 'the server to start', 20_000);
		const server = Number(fs.readFileSync(serverPid, 'utf8').trim());
		const pids = path.join(rig.dir, 'turn-pids');
		const running = turns.runTurn(chat, 'scripted', { text: `terminal sleep 300 & echo $$ $! > ${pids}.tmp; mv ${pids}.tmp ${pids}; wait` });
		await waitFor(() => fs.existsSync(pids), 'the turn\'s command to start', 20_000);
		const [shell, sleeper] = fs.readFileSync(pids, 'utf8').trim().split(' ').map(Number) as [number, number];
		await turns.cancel(chat, 'scripted');
		await running;
		await waitFor(() => !processAlive(shell) && !processAlive(sleeper), 'the cancelled turn\'s command to be killed', 10_000);
		assert.ok(processAlive(server), 'the server the first turn started runs on');
		await pool.shutdown();
		await waitFor(() => !processAlive(server), 'the server to end with its agent', 10_000);
	});

	test('after a cancel, permission requests are answered cancelled and terminals refused, whatever the policy allows', async () => {
		const { turns } = rig.make({ permissionSettings: { default: 'allow', timeoutMs: 2000 } });
		const chat = rig.newChat();
		const running = turns.runTurn(chat, 'scripted', { text: 'oncancel ran-after-cancel.txt' });
		await waitFor(() => rig.logger.lines.some((l) => l.includes('oncancel: waiting')), 'the agent to have the prompt', 20_000);
		await turns.cancel(chat, 'scripted');
		assert.equal((await running).status, 'cancelled');
		await waitFor(() => rig.logger.lines.some((l) => l.includes('oncancel terminal:')), 'the agent to say what it was answered', 10_000);
		const said = rig.logger.lines.filter((l) => l.includes('oncancel'));
		assert.ok(said.some((l) => l.includes('oncancel permission: cancelled')), said.join('\n'));
		assert.ok(said.some((l) => /oncancel terminal: error .*cancel/i.test(l)), said.join('\n'));
		assert.equal(fs.existsSync(path.join(rig.work, 'ran-after-cancel.txt')), false, 'the command did not run');
	});

	test('a terminal allowed only after its turn ended normally is refused in words that say the turn ended, not that it was cancelled', async () => {
		const { turns, broker } = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 30_000 } });
		const chat = rig.newChat();
		const asked = new Promise<string>((resolve) => {
			const sub = broker.onDidRequest((r) => {
				sub.dispose();
				resolve(r.id);
			});
		});
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'lateterminal ran-after-end.txt\nsay ended' });
		assert.equal(outcome.status, 'done');
		broker.decide(await asked, 'allow'); // the person allows it after the turn ended
		await waitFor(() => rig.logger.lines.some((l) => l.includes('lateterminal:')), 'the agent to say what it was answered', 10_000);
		const said = rig.logger.lines.filter((l) => l.includes('lateterminal:')).join('\n');
		assert.match(said, /lateterminal: error .*was allowed only after its turn had ended/, said);
		assert.doesNotMatch(said, /cancel/, said);
		assert.equal(fs.existsSync(path.join(rig.work, 'ran-after-end.txt')), false, 'the command did not run');
	});

	test('a chat whose worktree is archived or missing refuses, and never runs in the main checkout', async () => {
		const { pool, turns } = rig.make();
		const chat = rig.newChat();
		const service = new WorktreeService(rig.store, rig.logger, { root: path.join(rig.dir, 'worktrees'), env: gitEnv(rig.dir) });
		await turns.runTurn(chat, 'scripted', { text: 'say warm' });
		await service.archiveSession(rig.sessionId);
		await assert.rejects(turns.runTurn(chat, 'scripted', { text: 'diskwrite escaped.txt x' }), /archived, its work saved.*only inside their session's worktree.*Restore the session first/s);
		assert.equal(pool.size, 0, 'the live agent of the archived worktree was ended');
		const fresh = rig.make();
		await assert.rejects(fresh.turns.runTurn(chat, 'scripted', { text: 'diskwrite escaped.txt x' }), /Restore the session first/);
		assert.equal(fs.existsSync(path.join(rig.repo, 'escaped.txt')), false, 'nothing ran in the main checkout');
		assert.equal(fresh.pool.size, 0, 'no agent was started');
		await service.restoreSession(rig.sessionId);
		const back = await fresh.turns.runTurn(chat, 'scripted', { text: 'diskwrite back.txt x' });
		assert.equal(back.cwd, rig.sessions.workingDirectory(chat)!.cwd);
		assert.ok(fs.existsSync(path.join(back.cwd, 'back.txt')));
		assert.equal(fs.existsSync(path.join(rig.repo, 'back.txt')), false);
	});

	test('a worktree folder removed behind the pool\'s back (another window, the CLI, by hand) is refused, not followed', async () => {
		const { pool, turns } = rig.make();
		const chat = rig.newChat();
		await turns.runTurn(chat, 'scripted', { text: 'say warm' });
		fs.rmSync(rig.work, { recursive: true, force: true });
		await assert.rejects(turns.runTurn(chat, 'scripted', { text: 'diskwrite escaped.txt x' }), /worktree folder .* is gone .*Restore the session first/);
		assert.equal(pool.size, 0, 'the agent living in the vanished folder was ended');
		assert.equal(fs.existsSync(path.join(rig.repo, 'escaped.txt')), false);
	});

	test('a session with no worktree at all refuses instead of using its repository', async () => {
		const { turns } = rig.make();
		const bare = rig.sessions.create({ title: 'no worktree', repoRoot: rig.repo });
		const chat = rig.sessions.createChat({ sessionId: bare.id, agent: 'scripted' }).id;
		await assert.rejects(turns.runTurn(chat, 'scripted', { text: 'diskwrite escaped.txt x' }), /has no worktree/);
		assert.equal(fs.existsSync(path.join(rig.repo, 'escaped.txt')), false);
	});

	test('terminals follow the permission policy: reject runs nothing, ask asks unless the tool call was asked for', async () => {
		const marker = path.join(rig.work, 'ran.txt');
		const rejecting = rig.make({ permissionSettings: { default: 'reject', timeoutMs: 2000 } });
		const chat = rig.newChat();
		const refused = await rejecting.turns.runTurn(chat, 'scripted', { text: `terminal touch ${marker}\naskterminal touch ${marker}` });
		assert.equal(fs.existsSync(marker), false, 'nothing ran under reject');
		const refusedText = rig.agentText(refused.turn.id);
		assert.match(refusedText, /terminal error: Refused: the permission policy did not allow running sh -c touch/);
		assert.match(refusedText, /terminal not asked for: permission refused/);
		await rejecting.shutdown();

		const asking = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 2000 } });
		const broker = asking.broker;
		const asked: string[] = [];
		const sub = broker.onDidRequest((r) => {
			asked.push(r.title);
			const option = r.options.find((o) => o.kind === (r.title.includes('no-') ? 'reject_once' : 'allow_once'))!;
			setTimeout(() => broker.decide(r.id, option.optionId), 10);
		});
		const chat2 = rig.newChat();
		const outcome = await asking.turns.runTurn(chat2, 'scripted', { text: 'terminal echo yes-1\nterminal echo no-2\naskterminal echo yes-3' });
		sub.dispose();
		const text = rig.agentText(outcome.turn.id);
		assert.match(text, /yes-1\nexit 0/);
		assert.match(text, /terminal error: Refused/);
		assert.doesNotMatch(text, /^no-2$/m);
		assert.match(text, /yes-3\nexit 0/);
		assert.deepEqual(asked, ["Run in a terminal: sh -c 'echo yes-1'", "Run in a terminal: sh -c 'echo no-2'", 'echo yes-3'], 'the tool call the agent asked for is not asked twice');
		const decisions = rig.messages(outcome.turn.id).filter((m) => m.kind === 'permission').length;
		assert.equal(decisions, 3, 'every terminal decision is in the transcript');
	});

	test('a terminal command is put to a person whole: quoted, its folder named, hidden characters shown; one too long to read is refused unasked', async () => {
		const { turns, broker } = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 2000 } });
		fs.mkdirSync(path.join(rig.work, 'sub'));
		const asked: string[] = [];
		const sub = broker.onDidRequest((r) => {
			asked.push(r.title);
			setTimeout(() => broker.decide(r.id, r.options.find((o) => o.kind === 'reject_once')!.optionId), 10);
		});
		const padded = `echo harmless${' '.repeat(300)}; rm -rf ~`;
		const outcome = await turns.runTurn(rig.newChat(), 'scripted', { text: `terminalin sub echo it's\there\nterminal ${padded}\nterminal echo ${'a'.repeat(5000)}` });
		sub.dispose();
		assert.deepEqual(asked, [
			`Run in a terminal: sh -c 'echo it'\\''s\\u0009here'  (in sub)`,
			"Run in a terminal: sh -c 'echo harmless [300 spaces] ; rm -rf ~'",
		]);
		assert.match(rig.agentText(outcome.turn.id), /terminal error: Refused: the command is 5\d{3} characters long, too long to put to a person/);
	});

	test('a command sent as a whole shell line with no arguments (as Zed runs it) runs through the shell; a command naming a file with spaces in its path runs that file', async () => {
		const { turns, broker } = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 5000 } });
		fs.mkdirSync(path.join(rig.work, 'my tools'));
		fs.writeFileSync(path.join(rig.work, 'my tools', 'run.sh'), '#!/bin/sh\necho "ran with $# args: $1"\n', { mode: 0o755 });
		const asked: string[] = [];
		const sub = broker.onDidRequest((r) => {
			asked.push(r.title);
			broker.decide(r.id, 'allow');
		});
		const outcome = await turns.runTurn(rig.newChat(), 'scripted', { text: `shellterminal echo one && echo two | tr a-z A-Z\nshellterminal ./my tools/run.sh\nterminal echo "it's" via sh -c` });
		sub.dispose();
		const text = rig.agentText(outcome.turn.id);
		assert.match(text, /one\nTWO\nexit 0/, text);
		assert.match(text, /ran with 0 args: \nexit 0/, text);
		assert.match(text, /it's via sh -c\nexit 0/, text);
		assert.deepEqual(asked, ['Run in a terminal: echo one && echo two | tr a-z A-Z', "Run in a terminal: './my tools/run.sh'", `Run in a terminal: sh -c 'echo "it'\\''s" via sh -c'`]);
	});

	test('what runs is the command as it was put to a person, even if the agent removes the file it named before the answer', async () => {
		const { turns, broker } = rig.make({ permissionSettings: { default: 'ask', timeoutMs: 5000 } });
		const trap = path.join(rig.work, 'x; touch pwned.txt');
		fs.writeFileSync(trap, '#!/bin/sh\necho ran the file\n', { mode: 0o755 });
		const asked: string[] = [];
		const sub = broker.onDidRequest((r) => {
			asked.push(r.title);
			fs.rmSync(trap); // gone while the person reads the card: the same text would now be two commands
			broker.decide(r.id, 'allow');
		});
		const outcome = await turns.runTurn(rig.newChat(), 'scripted', { text: 'shellterminal ./x; touch pwned.txt' });
		sub.dispose();
		assert.deepEqual(asked, ["Run in a terminal: './x; touch pwned.txt'"]);
		assert.equal(fs.existsSync(path.join(rig.work, 'pwned.txt')), false, 'nothing ran that was not shown');
		assert.match(rig.agentText(outcome.turn.id), /exit 127/);
	});

	test('terminals start only inside the worktree', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const outside = path.join(rig.dir, 'outside');
		fs.mkdirSync(outside);
		fs.mkdirSync(path.join(rig.work, 'sub'));
		fs.symlinkSync(outside, path.join(rig.work, 'escape'));
		const outcome = await turns.runTurn(chat, 'scripted', { text: `terminalin ${outside} touch here.txt\nterminalin ../outside touch here.txt\nterminalin escape touch here.txt\nterminalin sub pwd` });
		const text = rig.agentText(outcome.turn.id);
		assert.equal((text.match(/terminal error: Refused: .*outside this session's worktree/g) ?? []).length, 3, text);
		assert.deepEqual(fs.readdirSync(outside), []);
		assert.match(text, new RegExp(`${fs.realpathSync(path.join(rig.work, 'sub')).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\nexit 0`));
	});

	test('a hostile agent cannot read the host environment, and every secret it echoes is redacted before it is stored or logged', async () => {
		const hostSecret = 'AKIAHOSTSECRET-0123456789';
		const hostToken = 'ghp_hosttoken_abcdefghijklmnop';
		const agentKey = 'sk-ant-handed-to-the-agent-42';
		const declared = 'declared-secret-env-value-77';
		const fileToken = 'token-from-the-agents-file-99';
		const mcpToken = 'mcp-server-token-for-the-agent-5';
		const { turns } = rig.make({
			mcpServers: () => [{ name: 'tasks', command: process.execPath, args: ['-e', ''], env: { TASKS_AUTH_TOKEN: mcpToken } }],
			hostEnv: { ...process.env, AWS_SECRET_ACCESS_KEY: hostSecret, GITHUB_TOKEN: hostToken, AGENT_TABS_HOST_ONLY: 'plain-host-value', MY_DECLARED: declared },
			defs: () => [{ ...rig.definitions({ SERVICE_TOKEN: fileToken })[0]!, secretEnv: ['ANTHROPIC_API_KEY', 'MY_DECLARED'] }],
			agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: agentKey }),
		});
		const chat = rig.newChat();
		const seen: string[] = [];
		const sub = turns.onDidEvent((e) => seen.push(JSON.stringify(e.event)));
		const outcome = await turns.runTurn(chat, 'scripted', {
			text: [
				'terminal env',
				'myenv AGENT_TABS_HOST_ONLY',
				'myenv AWS_SECRET_ACCESS_KEY',
				`say my key is ${agentKey} and ${declared}`,
				`say split: ${agentKey.slice(0, 9)}`,
				`say ${agentKey.slice(9)} (streamed in two chunks)`,
				`toolout ${fileToken} ${agentKey}`,
				`say ${hostToken} ${hostSecret} ${mcpToken}`,
				// A file named after the key, made in a terminal: only the watcher sees it.
				'terminal touch "named-$ANTHROPIC_API_KEY.txt"',
				'crash',
			].join('\n'),
		});
		sub.dispose();
		const text = rig.agentText(outcome.turn.id);
		assert.match(text, /AGENT_TABS_HOST_ONLY=\(unset\)/, 'a host variable outside the pass-through list does not reach the agent');
		assert.match(text, /AWS_SECRET_ACCESS_KEY=\(unset\)/);
		assert.match(text, /PATH=/, 'the pass-through list does');
		assert.match(text, /ANTHROPIC_API_KEY=\[redacted ANTHROPIC_API_KEY\]/, 'the terminal saw the key, the transcript does not');
		const everything = [
			JSON.stringify(rig.store.all('SELECT * FROM messages')),
			JSON.stringify(rig.store.all('SELECT * FROM turns')),
			JSON.stringify(rig.store.all('SELECT * FROM agent_sessions')),
			JSON.stringify(rig.store.all('SELECT * FROM pending_changes')),
			...seen,
			rig.logger.lines.join('\n'),
			...fs.readdirSync(path.join(rig.dir, 'state')).filter((f) => !fs.statSync(path.join(rig.dir, 'state', f)).isDirectory()).map((f) => fs.readFileSync(path.join(rig.dir, 'state', f), 'latin1')),
		].join('\n');
		for (const secret of [hostSecret, hostToken, agentKey, declared, fileToken, mcpToken]) {
			assert.ok(!everything.includes(secret), `${secret} is nowhere in the database, the journal, the events or the logs`);
		}
		assert.match(everything, /\[redacted SERVICE_TOKEN\]/);
		assert.match(text, /split: \[redacted ANTHROPIC_API_KEY\] \(streamed in two chunks\)/, 'a key split across chunks is redacted whole');
		assert.deepEqual(
			rig.store.all<{ path: string }>('SELECT path FROM pending_changes').map((r) => r.path).filter((p) => p.startsWith('named-')),
			['named-[redacted ANTHROPIC_API_KEY].txt'],
			'the file is attributed once, under its redacted name',
		);
	});

	test('updates for a session that is not the chat\'s (an earlier one of the same agent process) are left out of the chat', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const seen: string[] = [];
		const sub = turns.onDidEvent((e) => seen.push(JSON.stringify(e.event)));
		const foreign = (text: string): string =>
			`rawline ${JSON.stringify({ jsonrpc: '2.0', method: 'session/update', params: { sessionId: 'scripted-earlier-session', update: { sessionUpdate: 'agent_message_chunk', content: { type: 'text', text } } } })}`;
		const foreignTool = `rawline ${JSON.stringify({ jsonrpc: '2.0', method: 'session/update', params: { sessionId: 'scripted-earlier-session', update: { sessionUpdate: 'tool_call', toolCallId: 'x1', title: 'Delete everything', status: 'in_progress' } } })}`;
		const outcome = await turns.runTurn(chat, 'scripted', { text: ['say mine ', foreign('FOREIGN-IN-TURN'), foreignTool, 'say too'].join('\n') });
		assert.equal(outcome.status, 'done');
		assert.equal(rig.agentText(outcome.turn.id), 'mine too');
		assert.deepEqual(rig.messages(outcome.turn.id).filter((m) => m.kind === 'tool_call'), [], 'no tool call of the other session');
		assert.equal((await turns.runTurn(chat, 'scripted', { text: 'say next' })).status, 'done', 'the chat goes on');
		sub.dispose();
		const everything = [JSON.stringify(rig.store.all('SELECT * FROM messages WHERE kind != \'user\'')), ...seen].join('\n');
		assert.ok(!everything.includes('FOREIGN') && !everything.includes('Delete everything'), everything.slice(0, 2000));
		assert.match(rig.logger.lines.join('\n'), /ignored updates for the session scripted-earlier-session/);
	});

	test('a message too large for the agent to take (a read answer of control bytes, a huge prompt) is refused in plain words; the agent lives on', async () => {
		// 10 MB of control bytes is under the read limit, but each is 6 bytes of JSON: a 60 MB line, and agents on
		// the ACP SDK take at most 32 MB in one message (over that they drop the connection and exit).
		fs.writeFileSync(path.join(rig.work, 'ctl.bin'), Buffer.alloc(10 * 1024 * 1024, 1));
		const { turns } = rig.make();
		const chat = rig.newChat();
		const read = await turns.runTurn(chat, 'scripted', { text: 'read ctl.bin\nsay still here' });
		assert.equal(read.status, 'done', read.result.error);
		assert.match(rig.agentText(read.turn.id), /^read error -32603: .*The answer was too large to send \(60 MB; an agent takes at most 32 MB in one message\)\.\nstill here$/);
		const pid = pidOf(read.result.backendSessionId!);
		// 6 MB of control characters pasted into a prompt: 36 MB as JSON.
		const huge = await turns.runTurn(chat, 'scripted', { text: `say ${'\u0001'.repeat(6 * 1024 * 1024)}` });
		assert.equal(huge.status, 'error');
		assert.match(huge.result.error ?? '', /The message was too large to send to the agent \(36 MB; an agent takes at most 32 MB in one message\)/);
		const next = await turns.runTurn(chat, 'scripted', { text: 'say again' });
		assert.equal(next.status, 'done');
		assert.equal(pidOf(next.result.backendSessionId!), pid, 'the same agent process');
	});

	test('an agent printing its own logs on stdout gets a few error rows a turn, saying the rest were left out, not one row per line', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const lines = Array.from({ length: 2000 }, (_, i) => `debug: token ${i}`).join('\\n');
		for (const round of [1, 2]) {
			const outcome = await turns.runTurn(chat, 'scripted', { text: `rawline ${lines}\nsay end ${round}` });
			assert.equal(outcome.status, 'done');
			const errors = rig.messages(outcome.turn.id).filter((m) => m.kind === 'error').map((m) => String(m.content.message));
			assert.deepEqual(errors.slice(0, 5), [0, 1, 2, 3, 4].map((i) => `The agent wrote something that is not an ACP message: debug: token ${i}`), `turn ${round}: the first lines are shown`);
			assert.equal(errors.length, 6, `turn ${round}: ${errors.length} error rows`);
			assert.equal(errors[5], 'The agent wrote more lines that are not ACP messages; they are left out of the chat (the log has the first 100 of each turn).');
			assert.equal(rig.agentText(outcome.turn.id), `end ${round}`);
		}
		const logged = rig.logger.lines.filter((l) => l.includes('not ACP: debug: token')).length;
		assert.ok(logged >= 100 && logged <= 300, `the log keeps a bounded number of them (${logged})`);
	});

	test('garbage, huge lines and unknown updates: reported or kept, never lost, the turn goes on', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'garbage\nunknown\nbigline 10\nsay still here' });
		assert.equal(outcome.status, 'done');
		const msgs = rig.messages(outcome.turn.id);
		assert.ok(msgs.some((m) => m.kind === 'error' && /not an ACP message/.test(String(m.content.message))), 'garbage is reported');
		assert.ok(msgs.some((m) => m.kind === 'raw' && JSON.stringify(m.content).includes('future_update')), 'the unknown update is kept raw');
		const text = rig.agentText(outcome.turn.id);
		assert.ok(text.length >= 10 * 1024 * 1024, `the 10 MB chunk arrived (${text.length} chars)`);
		assert.match(text, /still here$/);
	});

	test('a turn the agent ends early (output limit, request limit, refusal) ends with a warning saying why; a normal end says nothing', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const said: Record<string, RegExp> = {
			max_tokens: /cut off: the model reached its output limit/,
			max_turn_requests: /reached its limit of model requests for one message/,
			refusal: /refused this message\. It is not in the agent's context.*rephrase it/,
		};
		for (const [reason, words] of Object.entries(said)) {
			const outcome = await turns.runTurn(chat, 'scripted', { text: `say partial answer\nstop ${reason}` });
			assert.equal(outcome.status, 'done', `${reason}: the turn ended, as the agent said`);
			assert.equal(outcome.turn.stop_reason, reason);
			const last = rig.messages(outcome.turn.id).at(-1)!;
			assert.equal(last.kind, 'notice', `${reason}: the last row says why it stopped`);
			assert.equal(last.content.severity, 'warning');
			assert.equal(last.content.stopReason, reason);
			assert.match(String(last.content.title), words);
		}
		const normal = await turns.runTurn(chat, 'scripted', { text: 'say all done' });
		assert.deepEqual(rig.messages(normal.turn.id).filter((m) => m.kind === 'notice'), []);
		assert.ok(!rig.logger.lines.some((l) => /stop reason this version does not know/.test(l)), 'a known reason is not logged as unknown');
		// A reason from a newer protocol: the turn ended all the same, and the log keeps what the agent said.
		const future = await turns.runTurn(chat, 'scripted', { text: 'say more\nstop future_reason' });
		assert.equal(future.status, 'done');
		assert.equal(future.turn.stop_reason, 'end_turn');
		assert.ok(rig.logger.lines.some((l) => /^warn .*stop reason this version does not know \("future_reason"\); taken as end_turn/.test(l)), rig.logger.lines.join('\n'));
	});

	test('extension and $/ notifications, and extension requests we do not know, are logged, never rows; a compaction is one notice with its summary, not a row per chunk', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'caps\nextnotes\ncompact c1 Fixed the parser, tests green.\nsay after\nunknown' });
		assert.equal(outcome.status, 'done');
		const caps = /caps: (.*)/.exec(rig.agentText(outcome.turn.id))?.[1];
		assert.deepEqual((JSON.parse(caps ?? '{}') as { session?: unknown }).session, { compaction: {}, notices: {} }, 'compactions and notices are asked for: agents send them only to clients that say they show them');
		const msgs = rig.messages(outcome.turn.id);
		const raw = msgs.filter((m) => m.kind === 'raw');
		assert.equal(raw.length, 1, `only the unknown session/update is kept raw: ${JSON.stringify(raw)}`);
		assert.match(JSON.stringify(raw[0]!.content), /future_update/);
		const notices = msgs.filter((m) => m.kind === 'notice');
		assert.equal(notices.length, 1, JSON.stringify(notices));
		assert.equal(notices[0]!.content.severity, 'info');
		assert.match(String(notices[0]!.content.title), /compacted its context/);
		assert.equal(notices[0]!.content.description, 'Fixed the parser, tests green.');
		assert.match(rig.agentText(outcome.turn.id), /after/);
		assert.ok(rig.logger.lines.some((l) => /ignored the notification _scripted\/progress/.test(l)), 'the extension notification is in the log');
		assert.ok(rig.logger.lines.some((l) => /answered the unknown extension request _scripted\/probe: method not found/.test(l)), 'the extension request is answered, and only logged');
	});

	test('a key split where the agent starts a new message (another message id, a thought between) is redacted whole; the first message keeps its own end', async () => {
		const key = 'sk-ant-split-over-messages-0123456789';
		const { turns } = rig.make({ defs: () => [{ ...rig.definitions()[0]!, secretEnv: ['ANTHROPIC_API_KEY'] }], agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: key }) });
		const chat = rig.newChat();
		const seen: string[] = [];
		const sub = turns.onDidEvent((e) => seen.push(JSON.stringify(e.event)));
		const outcome = await turns.runTurn(chat, 'scripted', {
			text: [
				`sayas m1 first: ${key.slice(0, 14)}`,
				`sayas m2 ${key.slice(14)} ends it.`,
				`sayas m3 then: ${key.slice(0, 10)}`,
				'think pondering',
				`thinkas r1 thought ${key.slice(0, 8)}`,
				`thinkas r2 ${key.slice(8)} done`,
				`sayas m4 ${key.slice(10)}.`,
				// An ordinary end that only looks like a key's start ("sk") stays in its message.
				'sayas m5 asks',
				'sayas m6 Next.',
			].join('\n'),
		});
		sub.dispose();
		assert.equal(outcome.status, 'done');
		// The prompt holds the key's parts as the test wrote them; what the agent sent must hold none of them.
		const everything = [JSON.stringify(rig.store.all("SELECT * FROM messages WHERE kind != 'user'")), ...seen, rig.logger.lines.join('\n')].join('\n');
		for (const part of [key, key.slice(0, 14), key.slice(14), key.slice(0, 10), key.slice(10), key.slice(8)]) {
			assert.ok(!everything.includes(part), `${part} is nowhere in the database, the events or the log`);
		}
		const texts = rig.messages(outcome.turn.id).filter((m) => m.kind === 'text' || m.kind === 'reasoning').map((m) => `${m.kind} ${String(m.content.messageId)}: ${String(m.content.text)}`);
		assert.deepEqual(texts, [
			'text m1: first: ',
			'text m2: [redacted ANTHROPIC_API_KEY] ends it.',
			'text m3: then: ',
			'reasoning undefined: pondering',
			'reasoning r1: thought ',
			'reasoning r2: [redacted ANTHROPIC_API_KEY] done',
			'text m4: [redacted ANTHROPIC_API_KEY].',
			'text m5: asks',
			'text m6: Next.',
		]);
	});

	test('a key split across the chunks of a compaction summary is redacted whole, in the notice and in the events', async () => {
		const key = 'sk-ant-summary-key-0123456789';
		const { turns } = rig.make({ defs: () => [{ ...rig.definitions()[0]!, secretEnv: ['ANTHROPIC_API_KEY'] }], agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: key }) });
		const chat = rig.newChat();
		const seen: string[] = [];
		const sub = turns.onDidEvent((e) => seen.push(JSON.stringify(e.event)));
		const outcome = await turns.runTurn(chat, 'scripted', { text: `compactchunks c1 Signed in with ${key.slice(0, 12)}|${key.slice(12)}, then fixed the parser.\nsay after` });
		sub.dispose();
		assert.equal(outcome.status, 'done');
		const notice = rig.messages(outcome.turn.id).find((m) => m.kind === 'notice' && m.content.compactionId === 'c1');
		assert.equal(notice?.content.description, 'Signed in with [redacted ANTHROPIC_API_KEY], then fixed the parser.', JSON.stringify(notice));
		// The prompt holds the key's two parts as the test wrote them; what the agent sent must not join them.
		const everything = [JSON.stringify(rig.store.all("SELECT * FROM messages WHERE kind != 'user'")), ...seen, rig.logger.lines.join('\n')].join('\n');
		assert.ok(!everything.includes(key), 'the key is nowhere in the database, the events or the log');
		assert.ok(!everything.includes(key.slice(0, 12)), 'nor its first part, held back until the next chunk showed it was the key');
	});

	test('an abort signal cancels the turn: before the agent has it (never sent) or while it runs', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const aborted = new AbortController();
		aborted.abort();
		const before = await turns.runTurn(chat, 'scripted', { text: 'say never said' }, { signal: aborted.signal });
		assert.equal(before.status, 'cancelled');
		assert.doesNotMatch(rig.agentText(before.turn.id), /never said/, 'the agent never got it');

		const controller = new AbortController();
		const seen: string[] = [];
		const sub = turns.onDidEvent((e) => {
			if (e.event.type === 'text' && e.event.text.includes('starting')) {
				seen.push('started');
				controller.abort();
			}
		});
		const during = await turns.runTurn(chat, 'scripted', { text: 'say starting\nsleep 10000\nsay too late' }, { signal: controller.signal });
		sub.dispose();
		assert.deepEqual(seen, ['started']);
		assert.equal(during.status, 'cancelled');
		assert.doesNotMatch(rig.agentText(during.turn.id), /too late/);
		assert.equal((await turns.runTurn(chat, 'scripted', { text: 'say after' })).status, 'done', 'a spent signal does not touch the next turn');
	});

	test('an agent that goes silent with nothing outstanding is stopped: the turn fails saying why, what it said is kept, the chat goes on', async () => {
		const { turns } = rig.make({ silenceTimeoutMs: 400 });
		const chat = rig.newChat();
		const started = Date.now();
		const silent = await turns.runTurn(chat, 'scripted', { text: 'say hello\nsleep 60000\nsay too late' });
		assert.ok(Date.now() - started < 10_000, 'stopped long before the agent would have gone on');
		assert.equal(silent.status, 'error');
		assert.match(silent.result.error ?? '', /Scripted sent nothing for 0\.4 seconds with no tool running, so the turn was stopped \(the limit is the setting agentTabs\.agents\.silenceMinutes, or --silence-minutes\)/);
		assert.equal(rig.agentText(silent.turn.id), 'hello');
		assert.match(new TranscriptRepo(rig.store).getTurn(silent.turn.id)?.error ?? '', /sent nothing for/, 'the reason is in the transcript');
		assert.match(rig.logger.lines.join('\n'), /sent nothing for 400 ms with no tool running; stopping the turn/);
		const next = await turns.runTurn(chat, 'scripted', { text: 'say again' });
		assert.equal(next.status, 'done');
		assert.equal(next.result.backendSessionId, silent.result.backendSessionId, 'the agent answered the cancel, so its session goes on');
	});

	test('a tool call that never ends, with no word from the agent for six times the limit, is stopped as hung; the chat goes on', async () => {
		const { turns } = rig.make({ silenceTimeoutMs: 200 });
		const chat = rig.newChat();
		const started = Date.now();
		const stalled = await turns.runTurn(chat, 'scripted', { text: 'say fetching\ntool t1 Fetch the docs\nsleep 60000\nsay too late' });
		const took = Date.now() - started;
		assert.equal(stalled.status, 'error');
		assert.ok(took >= 1200 && took < 10_000, `held off for six times the limit, then stopped (${took} ms)`);
		assert.match(stalled.result.error ?? '', /Scripted sent nothing for 1\.2 seconds while its tool call "Fetch the docs" ran, so the turn was stopped as hung \(a tool call may run 6 times the silence limit/);
		assert.equal(rig.agentText(stalled.turn.id), 'fetching');
		assert.match(rig.logger.lines.join('\n'), /sent nothing for 1200 ms while its tool call "Fetch the docs" ran; stopping the turn as hung/);
		assert.equal((await turns.runTurn(chat, 'scripted', { text: 'say again' })).status, 'done');
	});

	test('a silent agent that ignores the cancel is ended; the next turn starts it again', async () => {
		const { turns } = rig.make({ silenceTimeoutMs: 300 });
		const chat = rig.newChat();
		const notices: string[] = [];
		turns.onDidEvent((e) => e.chatId === chat && e.event.type === 'notice' && notices.push(e.event.title));
		const hung = await turns.runTurn(chat, 'scripted', { text: 'say working\nhang' });
		assert.equal(hung.status, 'error');
		assert.match(hung.result.error ?? '', /sent nothing for 0\.3 seconds.*did not stop when asked and was ended/);
		const pid = pidOf(hung.result.backendSessionId!);
		await waitFor(() => !alive(pid), 'the hung agent process is gone', 5000);
		// Ended by us, as the turn says: recorded as ended, not reported as a crash ("stopped unexpectedly").
		const status = (): string | undefined => rig.store.get<{ status: string }>('SELECT status FROM agent_sessions WHERE chat_id = ?', [chat])?.status;
		await waitFor(() => status() === 'ended', 'the end to be recorded', 5000);
		assert.ok(!notices.some((t) => /unexpectedly/.test(t)), notices.join('\n'));
		assert.equal((await turns.runTurn(chat, 'scripted', { text: 'say back' })).status, 'done');

		// Shut down while the silent turn is being stopped: it failed for its silence, not a retryable interruption.
		const other = rig.newChat();
		const stopping = turns.runTurn(other, 'scripted', { text: 'say working\nhang' });
		await waitFor(() => rig.logger.lines.filter((l) => l.includes('stopping the turn')).length === 2, 'the second silent turn is being stopped');
		await turns.shutdown();
		const stopped = await stopping;
		assert.equal(stopped.status, 'error', stopped.result.error);
		assert.match(stopped.result.error ?? '', /sent nothing for 0\.3 seconds/);
	});

	test('silence is only silence: a running tool call, a permission waiting on a person, or a steady trickle is never stopped', async () => {
		let timeoutMs = 400;
		const { turns, broker } = rig.make({ silenceTimeoutMs: () => timeoutMs, permissionSettings: { default: 'ask', timeoutMs: 5000 } });
		const chat = rig.newChat();
		const tool = await turns.runTurn(chat, 'scripted', { text: 'tool t1 Build everything\nsleep 1200\ntooldone t1\nsay built' });
		assert.equal(tool.status, 'done', tool.result.error);
		assert.match(rig.agentText(tool.turn.id), /built/);

		const sub = broker.onDidRequest((r) => setTimeout(() => broker.decide(r.id, r.options.find((o) => o.kind === 'allow_once')!.optionId), 1200));
		const asked = await turns.runTurn(chat, 'scripted', { text: 'permission Edit a file\nsay asked' });
		sub.dispose();
		assert.equal(asked.status, 'done', asked.result.error);
		assert.match(rig.agentText(asked.turn.id), /permission: allow/);

		const trickle = await turns.runTurn(chat, 'scripted', { text: 'say a\nsleep 250\nsay b\nsleep 250\nsay c\nsleep 250\nsay d' });
		assert.equal(trickle.status, 'done', trickle.result.error);
		assert.equal(rig.agentText(trickle.turn.id), 'abcd');

		timeoutMs = 0;
		const never = await turns.runTurn(chat, 'scripted', { text: 'sleep 900\nsay patient' });
		assert.equal(never.status, 'done', 'the setting is read at each turn, and 0 waits forever');

		// A command the agent runs in a terminal and waits for, with no tool call around it (the spec allows it).
		const plain = rig.make({ silenceTimeoutMs: 400 });
		const build = await plain.turns.runTurn(rig.newChat(), 'scripted', { text: 'terminal sleep 1.2; echo built' });
		assert.equal(build.status, 'done', build.result.error);
		assert.match(rig.agentText(build.turn.id), /built\nexit 0/);
	});

	test('a second turn for a chat that is running one is refused; the first goes on', async () => {
		const { turns } = rig.make();
		const chat = rig.newChat();
		const first = turns.runTurn(chat, 'scripted', { text: 'sleep 300\nsay first' });
		assert.ok(turns.isRunning(chat, 'scripted'), 'running from the moment it is asked for');
		await assert.rejects(turns.runTurn(chat, 'scripted', { text: 'say second' }), /already running a turn/);
		const outcome = await first;
		assert.equal(outcome.status, 'done');
		assert.match(rig.agentText(outcome.turn.id), /first/);
		assert.equal(turns.isRunning(chat, 'scripted'), false);
	});

	test('every event of a chat is numbered once, in order, the agent\'s idle updates between turns included', async () => {
		const { pool, turns } = rig.make();
		const a = rig.newChat();
		const b = rig.newChat();
		const events: { chatId: string; seq: number; turnId?: string; type: string }[] = [];
		const sub = turns.onDidEvent((e) => events.push({ chatId: e.chatId, seq: e.seq, turnId: e.turnId, type: e.event.type }));
		const first = await turns.runTurn(a, 'scripted', { text: 'say one' });
		await (await pool.ensure(a, 'scripted')).setMode!('plan');
		await turns.runTurn(b, 'scripted', { text: 'say other chat' });
		const second = await turns.runTurn(a, 'scripted', { text: 'say two' });
		sub.dispose();
		const ofA = events.filter((e) => e.chatId === a);
		assert.deepEqual(ofA.map((e) => e.seq), ofA.map((_, i) => i + 1), 'no gap, no repeat');
		const idle = ofA.filter((e) => e.turnId === undefined);
		assert.ok(idle.some((e) => e.type === 'mode'), 'the mode change between turns is numbered with the turns');
		const modeAt = ofA.findIndex((e) => e.type === 'mode');
		assert.ok(ofA.slice(0, modeAt).every((e) => e.turnId === first.turn.id || e.turnId === undefined));
		assert.ok(ofA.slice(modeAt + 1).some((e) => e.turnId === second.turn.id));
		assert.deepEqual(events.filter((e) => e.chatId === b).map((e) => e.seq)[0], 1, 'each chat counts on its own');
	});

	test('shutdown cancels running turns, lets them record their end while their agent lives, then refuses new ones', async () => {
		const { pool, turns } = rig.make();
		const chat = rig.newChat();
		const running = turns.runTurn(chat, 'scripted', { text: 'say starting\nsleep 10000' });
		await waitFor(() => pool.isRunning(chat, 'scripted'), 'the turn to start', 5000);
		const handle = pool.peek(chat, 'scripted')!;
		await turns.shutdown();
		const outcome = await running;
		assert.equal(outcome.status, 'interrupted', outcome.result.error);
		const row = new TranscriptRepo(rig.store).getTurn(outcome.turn.id)!;
		assert.deepEqual([row.status, row.ended_at !== null], ['interrupted', true], 'its end is in the database before the pool shuts down');
		assert.equal(pool.peek(chat, 'scripted'), handle, 'the agent process is the pool\'s to end, after the turns');
		await assert.rejects(turns.runTurn(chat, 'scripted', { text: 'say late' }), /shutting down/);
		await pool.shutdown();
		assert.equal(pool.size, 0);
	});
});
