/**
 * The chat tab's port over the real core (a message is a task of the real dispatcher): a real sql.js store, a real git repository, and the scripted ACP
 * agent as a real child process. What a tab would see (row updates, snapshots, meta) is checked against
 * the database, which is the truth.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../../../src/agents/definitions';
import { maxShownPerChat, PermissionBroker } from '../../../src/agents/permissions';
import { AgentPool } from '../../../src/agents/pool';
import { TurnRunner } from '../../../src/tasks/turnRunner';
import { SessionChatResolver } from '../../../src/tasks/chatResolver';
import { Dispatcher } from '../../../src/tasks/dispatcher';
import { TaskTurnAdapter } from '../../../src/tasks/taskTurnAdapter';
import type { WriteTx } from '../../../src/db/store';
import { ChatNoticesRepo } from '../../../src/db/chatNoticesRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { TranscriptRepo, type MessageRow, type TurnRow } from '../../../src/db/transcriptRepo';
import { Store } from '../../../src/db/store';
import { ChatRowModel } from '../../../src/protocol/chatSync';
import type { ChatMeta, ChatRow, ChatSnapshot, RowUpdate } from '../../../src/protocol/messages';
import { TaskChatService, rankFiles, toPromptInput } from '../../../src/webview/host/taskChatService';
import type { VsCodeL10n } from '../../../src/webview/host/chatStrings';
import { messageRow } from '../../../src/webview/host/transcriptRows';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { alive, pidOf } from '../agentRig';
import { makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, repoRoot, tempDir, waitFor, wasmPath } from '../helpers';

const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');

suite('webview/host: TaskChatService over the real dispatcher, pool and a scripted agent', function () {
	this.timeout(40_000);
	let dir: string;
	let repo: string;
	/** The test session's worktree, where its agents work. */
	let work: string;
	let sessionId: string;
	let store: Store;
	let sessions: SessionsRepo;
	let broker: PermissionBroker;
	let pool: AgentPool;
	let turns: TurnRunner;
	let dispatcher: Dispatcher;
	let service: TaskChatService;
	let updates: RowUpdate[];
	let metas: ChatMeta[];
	let logger: MemoryLogger;
	/** More of the scripted agent's environment, for one test. */
	let agentEnv: Record<string, string>;

	const definitions = (): AgentDefinition[] => [
		{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: { SCRIPTED_AGENT_STATE_DIR: path.join(dir, 'agent-state'), ...agentEnv } },
		{ id: 'absent', label: 'Absent', transport: 'acp', command: path.join(dir, 'no-such-agent'), args: [], env: {} },
	];

	/** A new tab in the test's session: every chat works in the session's real worktree. */
	function newChat(agent = 'scripted'): string {
		return sessions.createChat({ sessionId, agent, title: agent === 'scripted' ? 'Scripted' : 'Other' }).id;
	}

	const lastMeta = (chatId: string): ChatMeta | undefined => metas.filter((m) => m.chatId === chatId).at(-1);
	const idle = (chatId: string) => (): boolean => lastMeta(chatId)?.status === 'idle' && service.meta(chatId).status === 'idle';
	const rowsOf = (chatId: string): ChatRow[] => {
		const r = service.read(chatId);
		assert.equal(r.kind, 'snapshot');
		return r.kind === 'snapshot' ? r.snapshot.rows : [];
	};

	setup(async () => {
		dir = tempDir('agent-tabs-chat-');
		agentEnv = {};
		repo = makeRepo(path.join(dir, 'repo'), { 'README.md': '# test\n', 'src/app.ts': 'x\n', 'src/apple.ts': 'y\n' });
		logger = new MemoryLogger();
		store = await openStore(path.join(dir, 'state'));
		broker = new PermissionBroker({ default: 'ask', timeoutMs: 5000 }, logger);
		const created = await (await start()).createSession({ repo, title: 't' });
		work = created.worktree.path;
		sessionId = created.session.id;
	});

	/** The pool, turn runner, dispatcher and chat service over `store`, as the extension builds them; returns the worktree service. */
	async function start(): Promise<WorktreeService> {
		sessions = new SessionsRepo(store);
		// As the core does when it opens: nothing runs yet, so a turn still marked running was cut off.
		new TranscriptRepo(store).markRunningInterrupted('Agent Tabs ended while this turn was running.');
		const worktrees = new WorktreeService(store, logger, { root: path.join(dir, 'worktrees') });
		pool = new AgentPool({
			store,
			logger,
			backends: { acp: new AcpBackend({ logger, startTimeoutMs: 5000, cancelGraceMs: 1000, killGraceMs: 1000 }) },
			definitions,
			permissions: broker,
		});
		turns = new TurnRunner({ store, pool, logger, flushMs: 20, checkpoint: (cwd, name) => worktrees.checkpoint(cwd, name) });
		dispatcher = new Dispatcher({ store, logger, runner: new TaskTurnAdapter(turns, store), chats: new SessionChatResolver(store, worktrees, logger), redact: (input) => pool.redactForStorage(input) });
		service = new TaskChatService({ store, pool, turns, dispatcher, permissions: broker, definitions, logger, rewind: (cwd, ref) => worktrees.rewind(cwd, ref), refreshDelayMs: 30 });
		updates = [];
		metas = [];
		service.onDidUpdateRow((u) => updates.push(u));
		service.onDidChangeMeta((m) => metas.push(m));
		await dispatcher.start();
		return worktrees;
	}

	async function stop(): Promise<void> {
		await dispatcher.stop();
		dispatcher.dispose();
		service.dispose();
		await turns.shutdown();
		await pool.shutdown();
		await store.close();
	}

	/** Everything ends as when the window closes, and starts again over the same state folder. */
	async function restart(): Promise<void> {
		await stop();
		store = await openStore(path.join(dir, 'state'));
		await start();
	}

	teardown(async () => {
		await stop();
		broker.dispose();
		removeDir(dir);
	});

	test('a prompt streams in as row appends and in-place changes that add up to the database snapshot', async () => {
		const chatId = newChat();
		const before = service.read(chatId);
		assert.equal(before.kind, 'snapshot');
		const view = new ChatRowModel();
		if (before.kind === 'snapshot') {
			view.reset(before.snapshot);
		}
		assert.deepEqual(await service.send(chatId, { text: 'say Hello <img src=x onerror=alert(1)>\nthink hmm\nplan a|b\nwrite notes.txt hi\ncommands', attachments: [] }), { queued: false });
		await waitFor(idle(chatId), 'the turn to end');
		await service.sent(chatId);
		for (const u of updates.filter((x) => x.chatId === chatId)) {
			assert.notEqual(['gap', 'epoch'].indexOf(view.apply(u).kind) >= 0, true, `update ${u.seq} applied in order`);
		}
		const truth = rowsOf(chatId);
		assert.deepEqual(view.rows, truth, 'appends and changes reproduce the snapshot');
		const kinds = truth.map((r) => r.kind);
		for (const k of ['turn', 'user', 'text', 'reasoning', 'plan', 'tool_call', 'file_edit'] as const) {
			assert.ok(kinds.includes(k), `a ${k} row in ${kinds.join(',')}`);
		}
		const turn = truth[0]!;
		assert.ok(turn.kind === 'turn' && turn.status === 'done' && turn.number === 1 && turn.canRewind);
		assert.ok(updates.some((u) => u.op === 'change' && u.row.id === turn.id), 'the turn row changed in place when it ended');
		const text = truth.find((r) => r.kind === 'text');
		assert.ok(text?.kind === 'text' && text.text.includes('<img src=x onerror=alert(1)>'), 'agent text is carried as plain text');
		const tool = truth.find((r) => r.kind === 'tool_call');
		assert.ok(tool?.kind === 'tool_call' && tool.files.includes('notes.txt') && tool.status === 'completed', JSON.stringify(tool));
		assert.deepEqual(
			service.meta(chatId).commands.map((c) => c.name),
			['plan', 'test'],
		);
		assert.deepEqual(
			service.completeCommands(chatId, 'te').map((c) => c.label),
			['/test'],
		);
		assert.ok(!truth.some((r) => r.kind === 'notice' && r.title === ''), 'meta notices are not rows');
		// The mode and model pickers: from the agent's session setup (modes; the model as a config option).
		assert.deepEqual(service.meta(chatId).modes, { current: 'default', available: [{ id: 'default', name: 'Default' }, { id: 'plan', name: 'Plan' }] });
		assert.deepEqual(service.meta(chatId).models, { current: 'small', available: [{ id: 'small', name: 'Small' }, { id: 'large', name: 'Large' }] });
	});

	test('a mode the agent switches to without offering it is still a choice of the picker (not a blank picker), and the offered ones stay', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'becomemode bypass', attachments: [] });
		await waitFor(idle(chatId), 'the turn to end');
		assert.deepEqual(service.meta(chatId).modes, { current: 'bypass', available: [{ id: 'default', name: 'Default' }, { id: 'plan', name: 'Plan' }, { id: 'bypass', name: 'bypass' }] });
		await service.send(chatId, { text: 'becomemode plan', attachments: [] });
		await waitFor(idle(chatId), 'the second turn to end');
		assert.deepEqual(service.meta(chatId).modes, { current: 'plan', available: [{ id: 'default', name: 'Default' }, { id: 'plan', name: 'Plan' }] }, 'gone once the agent left it');
	});

	test('a malformed settings update (its options not a list) keeps the pickers the agent offered; it is kept raw', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'say hi', attachments: [] });
		await waitFor(idle(chatId), 'the turn to end');
		const before = service.meta(chatId);
		assert.ok((before.settings ?? []).length > 0 && before.models.available.length > 0, JSON.stringify(before));
		await service.send(chatId, { text: 'update {"sessionUpdate":"config_option_update","configOptions":"nope"}', attachments: [] });
		await waitFor(idle(chatId), 'the second turn to end');
		const after = service.meta(chatId);
		assert.deepEqual(after.settings, before.settings);
		assert.deepEqual(after.models, before.models);
		assert.ok(rowsOf(chatId).some((r) => r.kind === 'raw'), 'the update is kept raw');
	});

	test('a refused message reaches the tab as a warning at the end of its turn, marked with its stop reason', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'say I will not\nrefuse', attachments: [] });
		await waitFor(idle(chatId), 'the turn to end');
		await service.sent(chatId);
		const rows = rowsOf(chatId);
		const turn = rows.find((r) => r.kind === 'turn');
		assert.ok(turn?.kind === 'turn' && turn.status === 'done' && turn.stopReason === 'refusal', JSON.stringify(turn));
		const last = rows.at(-1);
		assert.ok(last?.kind === 'notice' && last.severity === 'warning' && last.stopReason === 'refusal' && /not in the agent's context/.test(last.title), JSON.stringify(last));
	});

	test('a tool call the agent named only by its id reaches the tab untitled (the tab names it in its own words), as does a stored error without a message', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'tooldone unannounced-call\nsay after it', attachments: [] });
		await waitFor(idle(chatId), 'the turn to end');
		await service.sent(chatId);
		const call = rowsOf(chatId).find((r) => r.kind === 'tool_call');
		assert.ok(call?.kind === 'tool_call' && call.toolCallId === 'unannounced-call' && call.title === '', JSON.stringify(call));
		const turn: TurnRow = { id: 'turn-x', seq: 1 } as TurnRow;
		const stored = (kind: string, content: object): MessageRow => ({ id: `m-${kind}`, seq: 1, kind, content: JSON.stringify(content), tool_call_id: null }) as unknown as MessageRow;
		assert.deepEqual(messageRow(turn, stored('error', {}), undefined), { id: 'm-error', turnId: 'turn-x', order: [1, 1], kind: 'error', message: '', retryable: true });
		assert.equal((messageRow(turn, stored('permission', { requestId: 'r' }), undefined) as { title?: string }).title, '');
		assert.equal((messageRow(turn, stored('tool_call', { title: 'Run the tests' }), undefined) as { title?: string }).title, 'Run the tests', 'a title the agent gave is kept');
	});

	test('a context compaction reaches the tab as one notice marked with its status (the tab says it in its own words)', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'compact c1 earlier work summarised', attachments: [] });
		await waitFor(idle(chatId), 'the turn to end');
		await service.sent(chatId);
		const notices = rowsOf(chatId).filter((r) => r.kind === 'notice');
		assert.equal(notices.length, 1, JSON.stringify(notices));
		assert.ok(notices[0]!.kind === 'notice' && notices[0]!.compaction === 'completed' && /earlier work summarised/.test(notices[0]!.description ?? ''), JSON.stringify(notices[0]));
	});

	test('resync from a seq returns only what changed since; an unknown epoch gets a snapshot', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'say one', attachments: [] });
		await waitFor(idle(chatId), 'turn 1');
		const first = service.read(chatId);
		assert.equal(first.kind, 'snapshot');
		if (first.kind !== 'snapshot') {
			return;
		}
		await service.send(chatId, { text: 'say two\nstream 50', attachments: [] });
		await waitFor(idle(chatId), 'turn 2');
		const again = service.read(chatId, { seq: first.snapshot.seq, epoch: first.snapshot.epoch });
		assert.equal(again.kind, 'updates');
		const view = new ChatRowModel();
		view.reset(first.snapshot);
		if (again.kind === 'updates') {
			assert.ok(again.updates.every((u) => u.seq > first.snapshot.seq));
			assert.equal(new Set(again.updates.map((u) => u.row.id)).size, again.updates.length, 'one update per row');
			view.catchUp(again.updates);
		}
		assert.deepEqual(view.rows, rowsOf(chatId));
		assert.equal(service.read(chatId, { seq: 1, epoch: 'epoch-from-another-host' }).kind, 'snapshot');
	});

	/** What the database numbered after `seq` for the chat: each shown row that changed, with its number. */
	function storedChangesSince(chatId: string, seq: number): Map<string, number> {
		const rows = store.all<{ id: string; row_seq: number; kind: string; content: string }>(
			`SELECT id, row_seq, 'turn' AS kind, '{}' AS content FROM turns WHERE chat_id = ? AND row_seq > ?
			 UNION ALL SELECT m.id, m.row_seq, m.kind, m.content FROM messages m JOIN turns t ON t.id = m.turn_id WHERE t.chat_id = ? AND m.row_seq > ?`,
			[chatId, seq, chatId, seq],
		);
		// Meta notices (modes, commands) are numbered like every row but are not shown.
		return new Map(rows.filter((r) => !(r.kind === 'notice' && 'state' in (JSON.parse(r.content) as object))).map((r) => [r.id, r.row_seq]));
	}

	const snapshotOf = (chatId: string): ChatSnapshot => {
		const r = service.read(chatId);
		assert.equal(r.kind, 'snapshot');
		return (r as Extract<typeof r, { kind: 'snapshot' }>).snapshot;
	};

	test('the chat sequence is stored with its rows: a view that missed nothing gets nothing after a restart, and numbering continues', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'say one\nwrite a.txt x', attachments: [] });
		await waitFor(idle(chatId), 'turn 1');
		await service.sent(chatId);
		const view = new ChatRowModel();
		view.reset(snapshotOf(chatId));
		const stored = store.get<{ row_seq: number }>('SELECT row_seq FROM chats WHERE id = ?', [chatId])!.row_seq;
		assert.ok(view.seq > 0 && view.seq === stored, `the snapshot is read at the stored seq (${view.seq}, stored ${stored})`);
		assert.equal(Math.max(...storedChangesSince(chatId, 0).values()), stored, 'the chat seq is its rows\' highest');

		await restart();
		assert.deepEqual(await service.open(chatId, { seq: view.seq, epoch: view.epoch }), { kind: 'updates', updates: [], meta: service.meta(chatId), seq: stored }, 'no reload when nothing was missed');

		await service.send(chatId, { text: 'say two', attachments: [] });
		await waitFor(() => idle(chatId)() && rowsOf(chatId).filter((r) => r.kind === 'turn').length === 2, 'turn 2');
		await service.sent(chatId);
		const live = updates.filter((u) => u.chatId === chatId);
		assert.ok(live.length > 0 && live.every((u) => u.seq > stored), 'numbers after the restart continue past the stored ones');
		for (const u of live) {
			assert.ok(!['gap', 'epoch'].includes(view.apply(u).kind), `update ${u.seq} (after ${u.prevSeq}) applies to the view from before the restart`);
		}
		assert.deepEqual(view.rows, rowsOf(chatId));
	});

	test('a view that missed updates gets exactly the rows the database changed since its seq', async () => {
		const chatId = newChat();
		const view = new ChatRowModel();
		view.reset(snapshotOf(chatId));
		await service.send(chatId, { text: 'say one\nsleep 150\nplan a|b\nsleep 150\nwrite a.txt x\nsleep 150\nsay two\nsleep 150\nsay three', attachments: [] });
		await waitFor(idle(chatId), 'the turn');
		await service.sent(chatId);
		const live = updates.filter((u) => u.chatId === chatId);
		assert.ok(live.length >= 6, `enough updates to drop some (${live.length})`);
		const kept = Math.floor(live.length / 3);
		for (const u of live.slice(0, kept)) {
			assert.equal(['appended', 'changed'].includes(view.apply(u).kind), true);
		}
		// A hidden tab drops the next three; the one after them shows the gap and changes nothing.
		const rowsBefore = [...view.rows];
		assert.equal(view.apply(live[kept + 3]!).kind, 'gap');
		assert.deepEqual(view.rows, rowsBefore);
		const seen = view.seq;
		const again = service.read(chatId, { seq: seen, epoch: view.epoch });
		assert.equal(again.kind, 'updates');
		if (again.kind !== 'updates') {
			return;
		}
		const expected = storedChangesSince(chatId, seen);
		assert.ok(expected.size > 0);
		assert.deepEqual(new Map(again.updates.map((u) => [u.row.id, u.seq])), expected, 'exactly the rows changed since, each with its stored number');
		assert.equal(again.updates.length, expected.size, 'each once');
		view.catchUp(again.updates, again.seq);
		assert.deepEqual(view.rows, rowsOf(chatId), 'in their places');
		assert.equal(view.seq, again.seq);
	});

	/** A chat whose agent streamed one reply in three parts, and the row updates the tab was sent for it. */
	async function streamedReply(): Promise<{ chatId: string; view: ChatRowModel; live: RowUpdate[]; texts: RowUpdate[] }> {
		const chatId = newChat();
		const view = new ChatRowModel();
		view.reset(snapshotOf(chatId));
		await service.send(chatId, { text: 'say part one\nsleep 300\nsay part two\nsleep 300\nsay part three', attachments: [] });
		await waitFor(idle(chatId), 'the turn');
		await service.sent(chatId);
		const live = updates.filter((u) => u.chatId === chatId);
		return { chatId, view, live, texts: live.filter((u) => u.row.kind === 'text') };
	}

	test('a row updated in place while it streams is sent as a change of that row, never as a second row', async () => {
		const { chatId, view, live, texts } = await streamedReply();
		const ids = [...new Set(texts.map((u) => u.row.id))];
		assert.equal(ids.length, 1, 'one text row');
		assert.ok(texts.length >= 2, `the text row was sent more than once while it streamed (${texts.length})`);
		assert.deepEqual(
			texts.map((u) => u.op),
			['append', ...texts.slice(1).map(() => 'change')],
		);
		for (const u of live) {
			view.apply(u);
		}
		assert.equal(view.rows.filter((r) => r.id === ids[0]).length, 1);
		const row = view.get(ids[0]!);
		assert.ok(row?.kind === 'text' && /part one.*part two.*part three/s.test(row.text), JSON.stringify(row));
		assert.equal(texts.at(-1)!.seq, store.get<{ row_seq: number }>('SELECT row_seq FROM messages WHERE id = ?', [ids[0]!])!.row_seq, 'the last update carries the stored seq');
		assert.deepEqual(view.rows, rowsOf(chatId));
	});

	test('a streamed reply is sent as what it adds each refresh, not whole again; the updates still add up to the database', async () => {
		const { chatId, view, live, texts } = await streamedReply();
		assert.ok(texts.length >= 2, `the text row was sent more than once while it streamed (${texts.length})`);
		const textOf = (u: RowUpdate): string => (u.row as { text: string }).text;
		assert.equal(texts[0]!.textFrom, undefined, 'the first sending is whole');
		let length = textOf(texts[0]!).length;
		for (const u of texts.slice(1)) {
			assert.equal(u.textFrom, length, 'each later one names the text it extends');
			assert.ok(!textOf(u).includes('part one'), `only the new text: ${JSON.stringify(textOf(u))}`);
			length += textOf(u).length;
		}
		const stored = rowsOf(chatId).find((r) => r.id === texts[0]!.row.id);
		assert.ok(stored?.kind === 'text' && /part one.*part two.*part three/s.test(stored.text));
		assert.equal(length, stored.text.length, 'each character of the reply sent once');
		for (const u of live) {
			assert.ok(!['gap', 'epoch'].includes(view.apply(u).kind), `update ${u.seq} applied`);
		}
		assert.deepEqual(view.rows, rowsOf(chatId), 'what the view holds is the database');
	});

	test('the end of a streamed reply reaches the tab while the agent is quiet, not only with its next event', async () => {
		const chatId = newChat();
		// "third" comes just after the tab's read that "second" set off, and is stored after that read; then
		// the agent says nothing for a while.
		await service.send(chatId, { text: 'say first\nsleep 200\nsay second\nsleep 25\nsay third\nsleep 5000', attachments: [] });
		const stored = (): boolean => rowsOf(chatId).some((r) => r.kind === 'text' && r.text.includes('third'));
		await waitFor(stored, 'the last part stored');
		const shown = (): boolean => updates.some((u) => u.chatId === chatId && u.row.kind === 'text' && u.row.text.includes('third'));
		await waitFor(shown, 'the last part sent to the tab while the turn still runs', 2000);
		assert.equal(service.meta(chatId).status, 'running', 'the agent had not said anything more');
		await service.cancel(chatId);
		await waitFor(idle(chatId), 'the cancelled turn');
	});

	test('messages sent during a turn queue, can be edited or removed, and run in order after it', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'sleep 600\nsay first', attachments: [] });
		await waitFor(() => service.meta(chatId).status === 'running', 'running');
		// The prompt shows as a running turn before the agent says anything (it sleeps first).
		await waitFor(() => updates.some((u) => u.row.kind === 'user' && u.row.text.startsWith('sleep 600')), 'the prompt row');
		assert.ok(updates.some((u) => u.row.kind === 'turn' && u.row.status === 'running'));
		assert.ok(!updates.some((u) => u.row.kind === 'text'), 'before any agent text');
		assert.deepEqual(await service.send(chatId, { text: 'say second', attachments: [] }), { queued: true });
		assert.deepEqual(await service.send(chatId, { text: 'say third', attachments: [] }), { queued: true });
		const [second, third] = service.meta(chatId).queue;
		await service.editQueued(chatId, second!.id, 'say second, edited');
		await service.removeQueued(chatId, third!.id);
		await assert.rejects(service.removeQueued(chatId, third!.id), /already sent or removed/);
		await assert.rejects(service.editQueued(chatId, second!.id, '   '), /cannot be empty/);
		// The queue is the dispatcher's: the chat's queued tasks, as edited, and the removed one cancelled.
		assert.deepEqual(
			dispatcher.list({ chatId }).map((t) => [t.creator, t.prompt, t.status]),
			[
				['chat', 'sleep 600\nsay first', 'running'],
				['chat', 'say second, edited', 'queued'],
				['chat', 'say third', 'cancelled'],
			],
		);
		await waitFor(() => idle(chatId)() && service.meta(chatId).queue.length === 0, 'the queue to drain');
		const users = rowsOf(chatId).flatMap((r) => (r.kind === 'user' ? [r.text] : []));
		assert.deepEqual(users, ['sleep 600\nsay first', 'say second, edited']);
		await assert.rejects(service.send(chatId, { text: '  ', attachments: [] }), /Type a message first/);
	});

	test('a permission card is answered once; a second answer is "already answered"', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'permission Write the file', attachments: [] });
		await waitFor(() => service.meta(chatId).status === 'waitingForPermission', 'the permission request');
		await waitFor(() => rowsOf(chatId).some((r) => r.kind === 'permission'), 'the permission row');
		const card = rowsOf(chatId).find((r) => r.kind === 'permission');
		assert.ok(card?.kind === 'permission' && card.options.length === 2 && !card.decision);
		assert.deepEqual(service.answerPermission(chatId, card.requestId, 'allow'), { accepted: true });
		assert.deepEqual(service.answerPermission(chatId, card.requestId, 'reject'), { accepted: false });
		assert.deepEqual(service.answerPermission(chatId, 'no-such-request', 'allow'), { accepted: false });
		await waitFor(idle(chatId), 'the turn to end');
		const settled = rowsOf(chatId).find((r) => r.kind === 'permission');
		assert.ok(settled?.kind === 'permission' && settled.decision?.optionId === 'allow' && settled.decision.decidedBy === 'user');
		assert.ok(rowsOf(chatId).some((r) => r.kind === 'text' && r.text.includes('permission: allow')));
	});

	test('a request the broker has not shown yet (past the four shown per chat) is "not yet", not "already answered", and answerable once shown', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: `permissions ${maxShownPerChat + 1} Step`, attachments: [] });
		const cards = (): Extract<ChatRow, { kind: 'permission' }>[] => rowsOf(chatId).filter((r): r is Extract<ChatRow, { kind: 'permission' }> => r.kind === 'permission');
		await waitFor(() => cards().length === maxShownPerChat + 1 && broker.pending.length === maxShownPerChat, 'every card, four of them shown');
		const last = cards().at(-1)!;
		assert.equal(last.title, `Step ${maxShownPerChat + 1}`);
		// The tab is told which card waits, in the chat's meta.
		assert.deepEqual(service.meta(chatId).unshownPermissions, [last.requestId]);
		assert.deepEqual(lastMeta(chatId)?.unshownPermissions, [last.requestId]);
		assert.deepEqual(service.answerPermission(chatId, last.requestId, 'allow'), { accepted: false, waiting: true }, 'still pending: not "already answered"');
		// Answering an earlier one makes room: the broker shows the last, and the tab hears it can be answered.
		assert.deepEqual(service.answerPermission(chatId, cards()[0]!.requestId, 'reject'), { accepted: true });
		await waitFor(() => lastMeta(chatId)?.unshownPermissions?.length === 0, 'the meta that the last card can be answered');
		assert.deepEqual(service.meta(chatId).unshownPermissions, []);
		assert.deepEqual(service.answerPermission(chatId, last.requestId, 'allow'), { accepted: true });
		for (const card of cards().slice(1, -1)) {
			assert.deepEqual(service.answerPermission(chatId, card.requestId, 'allow'), { accepted: true });
		}
		await waitFor(idle(chatId), 'the turn to end');
		assert.ok(rowsOf(chatId).some((r) => r.kind === 'text' && r.text.includes('permissions: reject allow allow allow allow')), JSON.stringify(rowsOf(chatId).filter((r) => r.kind === 'text')));
		assert.ok(cards().every((c) => c.decision?.decidedBy === 'user'));
	});

	test('rewind previews the files it would put back, then puts them back and keeps what it replaced', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'write made.txt by the agent', attachments: [] });
		await waitFor(idle(chatId), 'the turn');
		assert.ok(fs.existsSync(path.join(work, 'made.txt')));
		const turn = rowsOf(chatId).find((r) => r.kind === 'turn')!;
		const preview = await service.rewindPreview(chatId, turn.id);
		assert.deepEqual(preview, { turnId: turn.id, number: 1, files: ['made.txt'], laterTurns: 0 });
		assert.ok(fs.existsSync(path.join(work, 'made.txt')), 'the preview changes nothing');
		const result = await service.rewind(chatId, turn.id);
		assert.deepEqual(result.files, ['made.txt']);
		assert.ok(!fs.existsSync(path.join(work, 'made.txt')));
		assert.match(result.replacedRef, /^refs\/agent-tabs\/checkpoints\/.+-replaced-/);
		assert.ok(rowsOf(chatId).some((r) => r.kind === 'notice' && /Rewound 1 file to before turn 1/.test(r.title)));
		await assert.rejects(service.rewindPreview(chatId, 'turn-of-another-chat'), /not part of this chat/);
		// A later turn comes after the notice also in a fresh snapshot (a tab shown again re-reads it).
		await service.send(chatId, { text: 'say after the rewind', attachments: [] });
		await waitFor(idle(chatId), 'the second turn');
		const order = rowsOf(chatId).map((r) => (r.kind === 'turn' ? `turn ${r.number}` : r.kind === 'notice' ? 'notice' : undefined)).filter(Boolean);
		assert.deepEqual(order, ['turn 1', 'notice', 'turn 2']);
		// The notice is stored with the chat: a restarted window shows it in the same place.
		const shown = rowsOf(chatId);
		await restart();
		assert.deepEqual(rowsOf(chatId), shown);
	});

	test('rewind in an archived session says to restore it first', async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'write made.txt by the agent', attachments: [] });
		await waitFor(idle(chatId), 'the turn');
		const turn = rowsOf(chatId).find((r) => r.kind === 'turn')!;
		await pool.shutdown();
		await new WorktreeService(store, logger, { root: path.join(dir, 'worktrees') }).archiveSession(sessionId);
		await assert.rejects(service.rewindPreview(chatId, turn.id), (e: Error & { code?: string }) => e.code === 'chat/noFolder' && /archived \(its work is saved\): restore it \(Restore Session\), then rewind/.test(e.message));
	});

	test("rewind is refused while another chat's turn runs in the session's worktree; its preview counts that chat's later turns", async () => {
		const first = newChat();
		const second = newChat();
		await service.send(first, { text: 'write first.txt by the first chat', attachments: [] });
		await waitFor(idle(first), 'the first chat\'s turn');
		const turn = rowsOf(first).find((r) => r.kind === 'turn')!;
		await service.send(second, { text: 'sleep 1500\nwrite second.txt by the second chat', attachments: [] });
		await waitFor(() => service.meta(second).status === 'running', 'the second chat\'s turn to run');
		await assert.rejects(service.rewindPreview(first, turn.id), (e: Error & { code?: string }) => e.code === 'worktree/busy' && /"Scripted"|Scripted/.test(e.message));
		await assert.rejects(service.rewind(first, turn.id), (e: Error & { code?: string }) => e.code === 'worktree/busy');
		assert.ok(fs.existsSync(path.join(work, 'first.txt')), 'nothing was put back under the working agent');
		await waitFor(idle(second), 'the second chat\'s turn');
		assert.equal(fs.readFileSync(path.join(work, 'second.txt'), 'utf8'), 'by the second chat');
		const preview = await service.rewindPreview(first, turn.id);
		assert.deepEqual(preview, { turnId: turn.id, number: 1, files: ['first.txt', 'second.txt'], laterTurns: 1, laterTurnsInOtherChats: 1 });
		const result = await service.rewind(first, turn.id);
		assert.deepEqual([...result.files].sort(), ['first.txt', 'second.txt']);
		assert.ok(!fs.existsSync(path.join(work, 'second.txt')));
	});

	test('a send that cannot start says why with a Retry, and Retry tries again', async () => {
		const chatId = newChat('absent');
		await service.send(chatId, { text: 'hello', attachments: [] });
		await waitFor(() => rowsOf(chatId).some((r) => r.kind === 'error') && idle(chatId)(), 'the error row');
		const error = rowsOf(chatId).find((r) => r.kind === 'error');
		assert.ok(error?.kind === 'error' && error.retryable && error.turnId === null, JSON.stringify(error));
		await service.retry(chatId, error.id);
		await waitFor(() => rowsOf(chatId).filter((r) => r.kind === 'error').length === 2 && idle(chatId)(), 'the second error');
		await assert.rejects(service.retry(chatId, error.id), /already retried/, 'one error row retries once');
		await assert.rejects(service.retry(chatId, 'no-such-row'), /nothing to retry/);
		const tasks = dispatcher.list({ chatId });
		assert.deepEqual(
			tasks.map((t) => [t.status, t.attempt]),
			[
				['failed', 1],
				['failed', 2],
			],
		);
		assert.equal(tasks[1]!.parent_task_id, tasks[0]!.id, 'Retry retried the failed task');
	});

	test('failed sends and queued messages are stored: after a restart the tab shows them and the queue runs', async () => {
		const absent = newChat('absent');
		await service.send(absent, { text: 'hello', attachments: [] });
		await waitFor(() => rowsOf(absent).some((r) => r.kind === 'error'), 'the error row');
		const chatId = newChat();
		await service.send(chatId, { text: 'sleep 600\nsay first', attachments: [] });
		await waitFor(() => service.meta(chatId).status === 'running', 'running');
		assert.deepEqual(await service.send(chatId, { text: 'write queued.txt from the queue', attachments: [{ kind: 'file', path: 'README.md' }] }), { queued: true });
		const before = { absent: rowsOf(absent), queue: service.meta(chatId).queue };
		assert.deepEqual(before.queue.map((q) => [q.text, q.attachments]), [['write queued.txt from the queue', [{ kind: 'file', path: 'README.md' }]]]);

		// The window closes mid-turn: the running task is interrupted (offered for retry), the queued one waits on disk.
		await stop();
		store = await openStore(path.join(dir, 'state'));
		assert.deepEqual(
			store.all<{ prompt: string; status: string }>('SELECT prompt, status FROM tasks WHERE chat_id = ? ORDER BY seq', [chatId]).map((t) => [t.prompt, t.status]),
			[
				['sleep 600\nsay first', 'interrupted'],
				['write queued.txt from the queue', 'queued'],
			],
			'on disk: the running message was interrupted by the shutdown, the queued one waits',
		);
		await store.close();
		store = await openStore(path.join(dir, 'state'));
		await start();

		assert.deepEqual(rowsOf(absent), before.absent, 'the failed send is still shown, with its Retry');
		await waitFor(() => fs.existsSync(path.join(work, 'queued.txt')) && idle(chatId)(), 'the queued message ran after the restart');
		const turnsShown = rowsOf(chatId).flatMap((r) => (r.kind === 'turn' ? [[r.number, r.status]] : []));
		assert.deepEqual(turnsShown, [
			[1, 'interrupted'],
			[2, 'done'],
		]);
		assert.deepEqual(
			dispatcher.list({ chatId }).map((t) => t.status),
			['interrupted', 'done'],
		);
		const turn2 = store.get<{ prompt: string }>('SELECT prompt FROM turns WHERE chat_id = ? AND seq = 2', [chatId]);
		assert.equal(turn2?.prompt, 'write queued.txt from the queue', 'the queued prompt ran as typed');
		// The cut-off turn says so with a Retry, which retries its task (the same prompt, a new attempt).
		const cutOff = rowsOf(chatId).find((r) => r.kind === 'error' && r.turnId !== null);
		assert.ok(cutOff?.kind === 'error' && cutOff.retryable && /shut down while this turn was running/.test(cutOff.message), JSON.stringify(cutOff));
		await service.retry(chatId, cutOff.id);
		await waitFor(() => rowsOf(chatId).filter((r) => r.kind === 'turn' && r.status === 'done').length === 2 && idle(chatId)(), 'the retried turn');
		const [cut, , again] = dispatcher.list({ chatId });
		assert.deepEqual([again?.parent_task_id, again?.attempt, again?.prompt, again?.status], [cut!.id, 2, 'sleep 600\nsay first', 'done']);
		// Retry of the failed send works after the restart too (it is the stored task's retry).
		const error = rowsOf(absent).find((r) => r.kind === 'error')!;
		await service.retry(absent, error.id);
		await waitFor(() => rowsOf(absent).filter((r) => r.kind === 'error').length === 2, 'the retried send failed again, said once more');
	});

	test('Retry on an error row of a turn whose task cannot be retried sends its text again with the files it linked', async () => {
		const chatId = newChat();
		// A garbage line is an error row in a turn that still ends done: its task is not retried, its prompt is resent.
		await service.send(chatId, { text: 'garbage\nsay read it', attachments: [{ kind: 'file', path: 'src/app.ts' }] });
		await waitFor(idle(chatId), 'the turn');
		const error = rowsOf(chatId).find((r) => r.kind === 'error' && r.turnId !== null);
		assert.ok(error?.kind === 'error' && error.retryable, JSON.stringify(rowsOf(chatId)));
		const before = dispatcher.list({ chatId }).length;
		await service.retry(chatId, error.id);
		await waitFor(() => dispatcher.list({ chatId }).length === before + 1 && idle(chatId)(), 'the resent message');
		const resent = dispatcher.list({ chatId }).sort((a, b) => a.seq - b.seq).at(-1)!;
		assert.deepEqual(JSON.parse(resent.input_json ?? '{}'), { text: 'garbage\nsay read it', files: [path.join(work, 'src', 'app.ts')] });
	});

	test('a turn cut off by a killed host says so with a Retry after the restart, and Retry sends its prompt again', async () => {
		const chatId = newChat();
		// What a host killed mid-turn leaves: the turn still marked running, its prompt stored.
		new TranscriptRepo(store).startTurn({ chatId, agent: 'scripted', prompt: 'write crashed.txt written on retry' });
		const view = new ChatRowModel();
		await restart();
		view.reset(snapshotOf(chatId));
		const cut = view.rows.find((r) => r.kind === 'error');
		assert.ok(cut?.kind === 'error' && cut.retryable && /ended while this turn was running/.test(cut.message), JSON.stringify(view.rows));
		assert.deepEqual(
			view.rows.filter((r) => r.kind === 'turn').map((r) => r.kind === 'turn' && r.status),
			['interrupted'],
		);
		await service.retry(chatId, cut.id);
		await waitFor(() => fs.existsSync(path.join(work, 'crashed.txt')) && idle(chatId)(), 'the retried turn');
		assert.deepEqual(
			rowsOf(chatId).flatMap((r) => (r.kind === 'turn' ? [r.status] : [])),
			['interrupted', 'done'],
		);
	});

	test('a send the store cannot record is refused in plain words; a notice it cannot store is still shown, numbered in memory', async () => {
		const chatId = newChat('absent');
		const view = new ChatRowModel();
		view.reset(snapshotOf(chatId));
		const storeWrite = store.write.bind(store);
		store.write = () => {
			throw new Error('the disk is full');
		};
		try {
			await assert.rejects(service.send(chatId, { text: 'hello', attachments: [] }), /the disk is full/, 'never acknowledged, so the text stays in the input');
		} finally {
			store.write = storeWrite;
		}
		assert.deepEqual(dispatcher.list({ chatId }), [], 'and no task was queued');
		// Only the notices table refuses now: the send is a task, its failure a notice that cannot be stored.
		store.write = <T>(fn: (tx: WriteTx) => T): T =>
			storeWrite((tx) => {
				const guarded = Object.create(tx) as WriteTx;
				guarded.run = (sql, params) => {
					if (/INSERT INTO chat_notices/.test(sql)) {
						throw new Error('the disk is full');
					}
					return tx.run(sql, params);
				};
				return fn(guarded);
			});
		try {
			await service.send(chatId, { text: 'hello', attachments: [] });
			await waitFor(() => updates.some((u) => u.chatId === chatId && u.row.kind === 'error'), 'the error row');
		} finally {
			store.write = storeWrite;
		}
		const [update] = updates.filter((u) => u.chatId === chatId);
		assert.equal(view.apply(update!).kind, 'appended');
		assert.ok(update?.row.kind === 'error' && update.row.retryable, JSON.stringify(update));
		assert.ok(logger.lines.some((l) => /no stored number: the disk is full/.test(l)), 'and the log says why');
	});

	test('file mentions complete from the worktree and go to the agent as paths inside it, never outside', async () => {
		const chatId = newChat();
		const items = await service.completeFiles(chatId, 'app');
		assert.deepEqual(
			items.map((i) => i.insertText),
			['src/app.ts', 'src/apple.ts'],
		);
		assert.deepEqual(toPromptInput({ text: 'look', attachments: [{ kind: 'file', path: 'src/app.ts' }] }, work), { text: 'look', files: [path.join(work, 'src/app.ts')] });
		const withSelection = toPromptInput({ text: 'why', attachments: [{ kind: 'selection', path: 'src/app.ts', startLine: 1, endLine: 1, text: 'x' }] }, work);
		assert.match(withSelection.text, /^why\n\nsrc\/app\.ts:1-1\n```\nx\n```$/);
		assert.throws(() => toPromptInput({ text: 'x', attachments: [{ kind: 'file', path: '../outside.txt' }] }, work), /not inside this session's worktree/);
		assert.throws(() => toPromptInput({ text: 'x', attachments: [{ kind: 'file', path: '.' }] }, work), /not inside this session's worktree/, 'the worktree itself is not a file in it');
		const fenced = toPromptInput({ text: 'why', attachments: [{ kind: 'selection', path: 'README.md', startLine: 1, endLine: 3, text: '```ts\ncode\n```' }] }, work);
		assert.match(fenced.text, /^why\n\nREADME\.md:1-3\n````\n```ts\ncode\n```\n````$/, 'a selection holding a fence is quoted in a longer one');
		assert.deepEqual(rankFiles(['a/zapp.ts', 'b/app.ts', 'app/x.ts', 'c/readme'], 'app'), ['b/app.ts', 'a/zapp.ts', 'app/x.ts']);
	});

	test('rename and close report done only once the store has the change on disk', async () => {
		const chatId = newChat();
		const storeDurable = store.durable.bind(store);
		let acknowledged = 0;
		store.durable = async () => {
			await storeDurable();
			acknowledged++;
		};
		try {
			await service.rename(chatId, 'Kept on disk');
			assert.equal(acknowledged, 1, 'rename waited for the acknowledgement');
			await service.closeContext(chatId);
			assert.equal(acknowledged, 2, 'close waited for the acknowledgement');
		} finally {
			store.durable = storeDurable;
		}
		const reader = await Store.openSnapshot({ dir: path.join(dir, 'state'), wasmPath, logger: new MemoryLogger() });
		try {
			const chat = new SessionsRepo(reader).getChat(chatId);
			assert.equal(chat?.title, 'Kept on disk');
			assert.notEqual(chat?.closed_at, null);
		} finally {
			await reader.close();
		}
	});

	test('a long chat opens with its last turns; the earlier rows come in slices, each read when asked, that add up to the whole chat with its notices in place', async () => {
		const chatId = newChat();
		const transcript = new TranscriptRepo(store);
		const notices = new ChatNoticesRepo(store);
		notices.add(chatId, { kind: 'notice', severity: 'info', title: 'before any turn' });
		for (let t = 0; t < 40; t++) {
			const turn = transcript.startTurn({ chatId, agent: 'scripted', prompt: `question ${t}` });
			transcript.writeMessages(turn.id, [{ id: `answer-${t}`, seq: 1, kind: 'text', toolCallId: null, content: JSON.stringify({ text: `answer ${t}` }), createdAt: t }]);
			transcript.endTurn(turn.id, { status: 'done', stopReason: 'end_turn' });
			if (t % 10 === 4) {
				notices.add(chatId, { kind: 'notice', severity: 'warning', title: `after turn ${t + 1}` });
			}
		}
		const sliced = new TaskChatService({ store, pool, turns, dispatcher, permissions: broker, definitions, logger, rewind: async () => ({ files: [], replacedRef: '' }), openRows: 20, earlierSliceRows: 25 });
		try {
			const opened = await sliced.open(chatId);
			assert.equal(opened.kind, 'snapshot');
			const snapshot = opened.kind === 'snapshot' ? opened.snapshot : undefined;
			assert.ok(snapshot?.earlierBefore !== undefined, 'a long chat opens with its last turns only');
			assert.ok(snapshot.rows.length >= 20 && snapshot.rows.length < 30, `${snapshot.rows.length} rows at first`);
			assert.ok(snapshot.rows.every((r) => r.order![0] >= snapshot.earlierBefore!));
			// A row of an earlier turn changes after the tab opened: the slice read later has it as it is now.
			const early = transcript.listTurns(chatId)[2]!;
			transcript.writeMessages(early.id, [{ id: 'answer-2', seq: 1, kind: 'text', toolCallId: null, content: JSON.stringify({ text: 'answer 2, changed' }), createdAt: 2 }]);
			const slices: ChatRow[][] = [];
			for (let before: number | undefined = snapshot.earlierBefore; before !== undefined; ) {
				const slice = sliced.earlierRows(chatId, before);
				assert.ok(slice.rows.every((r) => r.order![0] < before!), 'only rows before the turn asked for');
				slices.unshift(slice.rows);
				before = slice.earlierBefore;
				assert.ok(slices.length < 10, 'the slices end');
			}
			assert.ok(slices.length >= 3, `${slices.length} slices`);
			const whole = rowsOf(chatId);
			assert.deepEqual([...slices.flat(), ...snapshot.rows], whole, 'slices and the last turns are the whole chat, in order');
			assert.deepEqual(whole.filter((r) => r.kind === 'notice').map((r) => (r.kind === 'notice' ? r.title : '')), ['before any turn', 'after turn 5', 'after turn 15', 'after turn 25', 'after turn 35']);
			const changed = slices.flat().find((r) => r.id === 'answer-2');
			assert.ok(changed?.kind === 'text' && changed.text === 'answer 2, changed', 'read when asked, not when the tab opened');
			// A short chat still opens whole.
			const short = newChat();
			const shortOpened = await sliced.open(short);
			assert.ok(shortOpened.kind === 'snapshot' && shortOpened.snapshot.earlierBefore === undefined);
			assert.throws(() => sliced.earlierRows('chat-nope', 3), /no chat/i);
		} finally {
			sliced.dispose();
		}
	});

	test("a long chat's slices add up to the whole chat for any sizes: a notice said after turn N is in its place whether a slice begins at N or N+1; the modes said in a turn left out are known; turn numbers with gaps; a chat without turns; a before of 0 or beyond the last turn", async () => {
		const chatId = newChat();
		const transcript = new TranscriptRepo(store);
		const notices = new ChatNoticesRepo(store);
		const empty = newChat();
		notices.add(empty, { kind: 'notice', severity: 'info', title: 'no turn yet' });
		notices.add(chatId, { kind: 'notice', severity: 'info', title: 'before any turn' });
		for (let t = 0; t < 9; t++) {
			const turn = transcript.startTurn({ chatId, agent: 'scripted', prompt: `question ${t}` });
			const answers = t === 5 ? 12 : 1; // one long turn
			transcript.writeMessages(turn.id, Array.from({ length: answers }, (_, k) => ({ id: `answer-${t}-${k}`, seq: k + 1, kind: 'text' as const, toolCallId: null, content: JSON.stringify({ text: `answer ${t}` }), createdAt: t })));
			if (t === 0) {
				// The agent said its modes in the first turn only (not a row): a tab opening on the last turns knows them.
				transcript.writeMessages(turn.id, [{ id: 'modes', seq: 50, kind: 'notice', toolCallId: null, content: JSON.stringify({ state: 'mode', modeId: 'plan', available: [{ id: 'plan', name: 'Plan' }] }), createdAt: t }]);
			}
			transcript.endTurn(turn.id, { status: 'done', stopReason: 'end_turn' });
			notices.add(chatId, { kind: 'notice', severity: 'warning', title: `after turn ${t + 1}` });
		}
		for (const gaps of [false, true]) {
			if (gaps) {
				// Turn numbers with gaps (1, 4, 7…): a notice says how many turns came before it, not their numbers.
				store.write((tx) => (tx.run('UPDATE turns SET seq = -seq WHERE chat_id = ?', [chatId]), tx.run('UPDATE turns SET seq = -seq * 3 - 2 WHERE chat_id = ?', [chatId])));
			}
			const whole = rowsOf(chatId);
			assert.ok(!gaps || whole.some((r) => r.kind === 'turn' && r.number === 25));
			await slicesAddUp(chatId, whole, empty, gaps);
		}
	});

	async function slicesAddUp(chatId: string, whole: ChatRow[], empty: string, gaps: boolean): Promise<void> {
		for (let openRows = 1; openRows <= 12; openRows++) {
			for (let sliceRows = 1; sliceRows <= 12; sliceRows += 3) {
				const sliced = new TaskChatService({ store, pool, turns, dispatcher, permissions: broker, definitions, logger, rewind: async () => ({ files: [], replacedRef: '' }), openRows, earlierSliceRows: sliceRows });
				try {
					const opened = await sliced.open(chatId);
					assert.ok(opened.kind === 'snapshot');
					let rows = opened.snapshot.rows;
					assert.deepEqual(opened.snapshot.meta.modes, { current: 'plan', available: [{ id: 'plan', name: 'Plan' }] });
					for (let before = opened.snapshot.earlierBefore; before !== undefined; ) {
						const slice = sliced.earlierRows(chatId, before);
						rows = [...slice.rows, ...rows];
						assert.ok(slice.earlierBefore === undefined || slice.earlierBefore < before, 'each slice goes further back');
						before = slice.earlierBefore;
					}
					assert.deepEqual(rows.map((r) => r.id), whole.map((r) => r.id), `open ${openRows}, slices of ${sliceRows}${gaps ? ', numbers with gaps' : ''}`);
					if (openRows === 1) {
						assert.deepEqual(sliced.earlierRows(chatId, 0).rows, [], 'nothing before turn 0');
						const beyond = sliced.earlierRows(chatId, Number.MAX_SAFE_INTEGER).rows;
						assert.deepEqual(beyond.map((r) => r.id), whole.slice(-beyond.length).map((r) => r.id), 'beyond the last turn: the last rows');
						const emptyOpened = await sliced.open(empty);
						assert.ok(emptyOpened.kind === 'snapshot' && emptyOpened.snapshot.earlierBefore === undefined);
						assert.deepEqual(emptyOpened.snapshot.rows.map((r) => (r.kind === 'notice' ? r.title : r.kind)), ['no turn yet']);
					}
				} finally {
					sliced.dispose();
				}
			}
		}
	}

	test("what the service tells a tab goes through the window's translation (vscode.l10n)", async () => {
		const chatId = newChat();
		const translate = { l10n: { t: (message: string, ...args: unknown[]) => `«${message.replace(/\{(\d+)\}/g, (_all, i: string) => String(args[Number(i)]))}»` } } as unknown as VsCodeL10n;
		const translated = new TaskChatService({ store, pool, turns, dispatcher, permissions: broker, definitions, logger, rewind: async () => ({ files: [], replacedRef: '' }), vscode: translate });
		try {
			await assert.rejects(translated.send(chatId, { text: ' ', attachments: [] }), (e: Error) => e.message === '«Type a message first.»');
			assert.throws(() => translated.meta('chat-nope'), (e: Error) => e.message === '«There is no chat chat-nope; it may have been deleted with its session.»');
		} finally {
			translated.dispose();
		}
	});

	test('the draft a tab saved comes with the chat when it is opened again in this window; none before one was saved', async () => {
		const chatId = newChat();
		const first = await service.open(chatId);
		assert.equal(first.draft, undefined, 'nothing was typed yet');
		const kept = service.saveDraft(chatId, 'half a thought', [{ kind: 'selection', path: 'src/app.ts', startLine: 1, endLine: 1, text: 'x' }]);
		assert.deepEqual((await service.open(chatId)).draft, kept);
		assert.deepEqual(kept, { draft: 'half a thought', attachments: [{ kind: 'selection', path: 'src/app.ts', startLine: 1, endLine: 1, text: 'x' }] });
		// An unsaved edit of a queued message is kept with the draft.
		const queueEdit = { queueId: 'task-1', original: 'say second', text: 'say second, edited' };
		assert.deepEqual(service.saveDraft(chatId, 'half a thought', undefined, queueEdit), { draft: 'half a thought', queueEdit });
		assert.deepEqual((await service.open(chatId)).draft, { draft: 'half a thought', queueEdit });
		service.saveDraft(chatId, '');
		assert.deepEqual((await service.open(chatId)).draft, { draft: '' }, 'a draft cleared by a send stays cleared');
	});

	test("a reopen's reply carries the chat as it is when it is sent, not as it was before waiting for the disk", async () => {
		const chatId = newChat();
		const storeDurable = store.durable.bind(store);
		let renameTo: string | undefined = 'Renamed meanwhile';
		store.durable = async () => {
			await storeDurable();
			const title = renameTo;
			if (title) {
				// While the reopen waits for the disk, the chat is renamed, and the view is told at once.
				renameTo = undefined;
				await service.rename(chatId, title);
			}
		};
		try {
			const snapshot = await service.open(chatId);
			assert.equal(snapshot.kind === 'snapshot' && snapshot.snapshot.meta.title, 'Renamed meanwhile');
			assert.equal(lastMeta(chatId)?.title, 'Renamed meanwhile', 'the view heard of the rename before the reply came');
			// The same for a view that resyncs from its number.
			renameTo = 'Renamed again';
			const r = service.read(chatId);
			const since = r.kind === 'snapshot' ? { seq: r.snapshot.seq, epoch: r.snapshot.epoch } : undefined;
			const updates = await service.open(chatId, since);
			assert.equal(updates.kind, 'updates');
			assert.equal(updates.kind === 'updates' && updates.meta.title, 'Renamed again');
		} finally {
			store.durable = storeDurable;
		}
	});

	/** What the agent said in the chat's last text row. */
	const lastText = (chatId: string): string => {
		const text = rowsOf(chatId).filter((r) => r.kind === 'text').at(-1);
		return text?.kind === 'text' ? text.text : '';
	};
	const setting = (chatId: string, id: string) => service.meta(chatId).settings?.find((o) => o.id === id);

	test("the agent's other settings are pickers: set through session/set_config_option, following the whole set it answers; only what it offered is taken", async () => {
		const chatId = newChat();
		await service.send(chatId, { text: 'say hi', attachments: [] });
		await waitFor(idle(chatId), 'the first turn');
		const effort = { id: 'effort', name: 'Effort', description: 'How hard the model thinks before it answers', category: 'thought_level', current: 'medium', available: [{ id: 'low', name: 'Low' }, { id: 'medium', name: 'Medium' }, { id: 'high', name: 'High' }, { id: 'max', name: 'Max' }] };
		// The model option feeds the model picker; effort and the on/off "fast" (as an On/Off picker) are the others.
		const fast = { id: 'fast', name: 'Fast mode', current: 'false', available: [{ id: 'true', name: 'On' }, { id: 'false', name: 'Off' }] };
		assert.deepEqual(service.meta(chatId).settings, [effort, fast]);
		assert.deepEqual(service.meta(chatId).models.current, 'small');
		assert.equal(service.meta(chatId).modes.available.length, 2, 'the legacy modes stay the mode picker');
		await service.setConfigOption(chatId, 'effort', 'high');
		assert.equal(setting(chatId, 'effort')?.current, 'high');
		assert.equal(lastMeta(chatId)?.settings?.find((o) => o.id === 'effort')?.current, 'high', 'the tab is told');
		// A setting that comes with another choice appears, and goes with it (grouped values come flattened).
		await service.setModel(chatId, 'large');
		assert.deepEqual(setting(chatId, 'context'), { id: 'context', name: 'Context', current: 'standard', available: [{ id: 'standard', name: 'Standard' }, { id: 'long', name: 'Long (1M)' }] });
		await service.setConfigOption(chatId, 'context', 'long');
		assert.equal(setting(chatId, 'context')?.current, 'long');
		await service.setModel(chatId, 'small');
		assert.equal(setting(chatId, 'context'), undefined, 'no longer offered');
		assert.deepEqual(lastMeta(chatId)?.settings?.map((o) => o.id), ['effort', 'fast']);
		// The agent refuses: it says why, and the setting stays as it was.
		await assert.rejects(service.setConfigOption(chatId, 'effort', 'max'), /Max effort needs the Large model/);
		assert.equal(setting(chatId, 'effort')?.current, 'high');
		// What the agent did not offer never reaches it.
		await assert.rejects(service.setConfigOption(chatId, 'effort', 'turbo'), (e: Error & { code?: string }) => e.code === 'agent/noSuchValue' && /does not offer that choice for "Effort"/.test(e.message));
		await assert.rejects(service.setConfigOption(chatId, 'context', 'long'), (e: Error & { code?: string }) => e.code === 'agent/noSuchSetting');
		// An on/off setting takes only On or Off, and reaches the agent as the boolean it gave.
		await assert.rejects(service.setConfigOption(chatId, 'fast', 'yes'), (e: Error & { code?: string }) => e.code === 'agent/noSuchValue');
		await service.setConfigOption(chatId, 'fast', 'true');
		assert.equal(setting(chatId, 'fast')?.current, 'true');
		await assert.rejects(service.setConfigOption(chatId, 'model', 'large'), (e: Error & { code?: string }) => e.code === 'agent/noSuchSetting', 'the model goes through its own picker');
		await assert.rejects(service.setModel(chatId, 'huge'), (e: Error & { code?: string }) => e.code === 'agent/noSuchValue' && /does not offer that model/.test(e.message), 'nor a model it did not offer');
		await assert.rejects(service.setMode(chatId, 'yolo'), (e: Error & { code?: string }) => e.code === 'agent/noSuchValue' && /does not offer that mode/.test(e.message), 'nor a mode');
		await service.send(chatId, { text: 'settings', attachments: [] });
		await waitFor(() => lastText(chatId).startsWith('settings:') && idle(chatId)(), 'the agent to say its settings');
		assert.match(lastText(chatId), /model=small effort=high fast=true context=long/);
	});

	test('an agent that offers its mode only as a config option gets one mode picker, that option, which Set Mode also sets', async () => {
		agentEnv = { SCRIPTED_AGENT_MODE_OPTION: '1' };
		const chatId = newChat();
		await service.send(chatId, { text: 'say hi', attachments: [] });
		await waitFor(idle(chatId), 'the first turn');
		const meta = service.meta(chatId);
		assert.deepEqual(meta.modes.available, [], 'no second mode picker');
		assert.deepEqual(meta.settings?.[0], { id: 'mode', name: 'Approval', description: 'What the agent may do without asking', category: 'mode', current: 'default', available: [{ id: 'default', name: 'Ask first' }, { id: 'plan', name: 'Plan only' }, { id: 'auto', name: 'Auto edit' }] });
		await service.setConfigOption(chatId, 'mode', 'plan');
		assert.equal(setting(chatId, 'mode')?.current, 'plan');
		// This agent has no session/set_mode: a mode set otherwise (an agent's defaultMode) goes through the option.
		await service.setMode(chatId, 'auto');
		assert.equal(setting(chatId, 'mode')?.current, 'auto');
		await service.send(chatId, { text: 'settings', attachments: [] });
		await waitFor(() => lastText(chatId).startsWith('settings:') && idle(chatId)(), 'the agent to say its settings');
		assert.match(lastText(chatId), /mode=auto/);
	});

	test('rename changes the title; closing ends the agent process, and reopening starts a new conversation that says so', async () => {
		const chatId = newChat();
		await service.rename(chatId, '  Fix the parser  ');
		assert.equal(service.meta(chatId).title, 'Fix the parser');
		await assert.rejects(service.rename(chatId, ' '), /needs a title/);
		await service.send(chatId, { text: 'say before', attachments: [] });
		await waitFor(idle(chatId), 'turn 1');
		const first = pool.peek(chatId, 'scripted');
		assert.ok(first, 'the agent process runs after the turn');
		const firstPid = pidOf(first.backendSessionId);
		assert.ok(alive(firstPid));
		await service.closeContext(chatId);
		assert.equal(service.meta(chatId).closed, true);
		assert.notEqual(sessions.getChat(chatId)?.closed_at, null);
		assert.equal(alive(firstPid), false, 'closing the tab ended its agent process');
		assert.equal(pool.peek(chatId, 'scripted'), undefined, 'and the pool holds no context for it');
		await service.send(chatId, { text: 'say after', attachments: [] });
		await waitFor(() => rowsOf(chatId).filter((r) => r.kind === 'turn' && r.status === 'done').length === 2 && idle(chatId)(), 'turn 2');
		assert.ok(rowsOf(chatId).some((r) => r.kind === 'notice' && /starts a new conversation/.test(r.title)), 'the new context says so');
		const second = pool.peek(chatId, 'scripted');
		assert.ok(second && pidOf(second.backendSessionId) !== firstPid, 'a new agent process');
		assert.equal(service.meta(chatId).closed, false, 'a prompt after the close continues the chat');
	});
});
