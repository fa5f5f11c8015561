import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AgentDefinition } from '../../../src/agents/definitions';
import type { TaskCreator, TaskRow } from '../../../src/db/tasksRepo';
import { SessionChatResolver } from '../../../src/tasks/chatResolver';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { makeRepo } from '../gitRepo';
import { MemoryLogger, removeDir, repoRoot, tempDir, waitFor } from '../helpers';
import { coreFolders, scriptedAgent, TaskCore, type CoreFolders } from './taskCore';
import { checkNoLeaksAfterSuite } from '../leakCheck';

/** Watches a dispatcher's changes: the order tasks started in and the most that ran at once (overall and per group). */
class Observer {
	readonly started: string[] = [];
	private readonly running = new Set<string>();
	maxRunning = 0;
	readonly maxByGroup = new Map<string, number>();
	private readonly groupOf = new Map<string, string>();

	constructor(
		core: TaskCore,
		private readonly group: (task: TaskRow) => string = () => '',
	) {
		core.dispatcher.onDidChange(({ task }) => this.see(task));
	}

	private see(task: TaskRow): void {
		if (task.status === 'running' && !this.running.has(task.id)) {
			this.running.add(task.id);
			this.started.push(task.id);
			this.groupOf.set(task.id, this.group(task));
			this.maxRunning = Math.max(this.maxRunning, this.running.size);
			const g = this.groupOf.get(task.id)!;
			const inGroup = [...this.running].filter((id) => this.groupOf.get(id) === g).length;
			this.maxByGroup.set(g, Math.max(this.maxByGroup.get(g) ?? 0, inGroup));
		} else if (task.status !== 'running') {
			this.running.delete(task.id);
		}
	}
}

suite('tasks/dispatcher with the real store, worktrees, pool and scripted agents', function () {
	this.timeout(120_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	let repo: string;
	let folders: CoreFolders;
	let logger: MemoryLogger;
	let cores: TaskCore[];
	let sessionId: string;
	let worktreePath: string;
	let extraAgents: AgentDefinition[];

	async function open(dispatcher: { maxConcurrent?: number; maxPerWorktree?: number; defaultRepo?: string } = {}): Promise<TaskCore> {
		const core = await TaskCore.open(folders, logger, { definitions: () => [scriptedAgent(folders), ...extraAgents], dispatcher });
		cores.push(core);
		return core;
	}

	async function close(core: TaskCore): Promise<void> {
		cores = cores.filter((c) => c !== core);
		await core.close();
	}

	function newChat(core: TaskCore, session = sessionId): string {
		return core.sessions.createChat({ sessionId: session, agent: 'scripted' }).id;
	}

	function turnsOf(core: TaskCore, chatId: string): { id: string; prompt: string; status: string }[] {
		return new TranscriptRepo(core.store).listTurns(chatId).map((t) => ({ id: t.id, prompt: t.prompt, status: t.status }));
	}

	/**
	 * The agents of a killed core live on in their own process groups until their input closes and their turn
	 * ends, and may still write into the test's folder: end them, as the next test (or a user) would find them
	 * gone anyway. They are found by the state folder in their environment.
	 */
	async function endOrphanedAgents(): Promise<void> {
		const marker = `SCRIPTED_AGENT_STATE_DIR=${path.join(dir, 'agent-state')}`;
		const orphans = (): number[] =>
			fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
				try {
					return fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes(marker);
				} catch {
					return false;
				}
			});
		for (const pid of orphans()) {
			try {
				process.kill(pid, 'SIGKILL');
			} catch {
				// gone meanwhile
			}
		}
		await waitFor(() => orphans().length === 0, 'the killed core\'s agents to end', 10_000);
	}

	setup(async () => {
		dir = tempDir('agent-tabs-tasks-');
		repo = makeRepo(path.join(dir, 'repo'));
		folders = coreFolders(dir, repoRoot);
		logger = new MemoryLogger();
		cores = [];
		extraAgents = [];
		const core = await open();
		const created = await core.worktrees.createSession({ repo, title: 'main work' });
		sessionId = created.session.id;
		worktreePath = created.worktree.path;
		await close(core);
	});

	teardown(async () => {
		for (const core of cores) {
			await core.close();
		}
		removeDir(dir);
	});

	test("a chat's tasks run one at a time in the order they were created, whatever their priority", async () => {
		const core = await open({ maxConcurrent: 4 });
		const chat = newChat(core);
		const seen = new Observer(core);
		const ids: string[] = [];
		for (const [word, priority] of [['first', 0], ['second', 5], ['third', 1]] as const) {
			ids.push((await core.dispatcher.add({ creator: 'chat', agent: 'scripted', chatId: chat, input: { text: `sleep 200\nsay ${word} done` }, priority })).id);
		}
		await core.dispatcher.start();
		const ended = await Promise.all(ids.map((id) => core.dispatcher.whenEnded(id)));
		assert.deepEqual(ended.map((t) => t.status), ['done', 'done', 'done']);
		assert.deepEqual(seen.started, ids, 'started in creation order');
		assert.equal(seen.maxRunning, 1, 'never two turns at once in one chat');
		assert.deepEqual(turnsOf(core, chat).map((t) => t.prompt), ['first', 'second', 'third'].map((w) => `sleep 200\nsay ${w} done`));
		for (const [i, t] of ended.entries()) {
			assert.equal(t.turn_id, turnsOf(core, chat)[i]!.id, 'the task links the turn that ran it');
			assert.match(t.result ?? '', new RegExp(`${['first', 'second', 'third'][i]} done`), 'the answer is summarised on the task');
			assert.ok(t.started_at !== null && t.ended_at !== null && t.ended_at >= t.started_at);
		}
	});

	test('the per-worktree and the global limits hold, and are reached', async () => {
		const core = await open({ maxConcurrent: 3, maxPerWorktree: 2 });
		const other = await core.worktrees.createSession({ repo, title: 'other work' });
		const chats = [newChat(core), newChat(core), newChat(core), newChat(core, other.session.id), newChat(core, other.session.id), newChat(core, other.session.id)];
		const seen = new Observer(core, (t) => t.session_id ?? '');
		const ids: string[] = [];
		for (const chatId of chats) {
			ids.push((await core.dispatcher.add({ creator: 'generic', agent: 'scripted', chatId, input: { text: 'sleep 1500\nsay ok' } })).id);
		}
		await core.dispatcher.start();
		const ended = await Promise.all(ids.map((id) => core.dispatcher.whenEnded(id)));
		assert.deepEqual(ended.map((t) => t.status), Array(6).fill('done'));
		assert.equal(seen.maxRunning, 3, 'the global limit is reached and never passed');
		assert.equal(seen.maxByGroup.get(sessionId), 2, 'two turns at most in the first worktree');
		assert.equal(seen.maxByGroup.get(other.session.id), 2, 'two turns at most in the second worktree');

		// Limits change live (settings) and are checked.
		assert.throws(() => core.dispatcher.setLimits({ maxConcurrent: 0 }), /at least 1/);
		core.dispatcher.setLimits({ maxConcurrent: 1 });
		const seenAfter = new Observer(core);
		const more = await Promise.all(chats.slice(0, 3).map((chatId) => core.dispatcher.add({ creator: 'generic', agent: 'scripted', chatId, input: { text: 'sleep 100' } })));
		await Promise.all(more.map((t) => core.dispatcher.whenEnded(t.id)));
		assert.equal(seenAfter.maxRunning, 1);
	});

	test('exclusive work in a worktree (a rewind) is refused while a task runs there, and no task of it starts until the work ends', async () => {
		const core = await open({ maxConcurrent: 4, maxPerWorktree: 4 });
		const [a, b] = [newChat(core), newChat(core)];
		await core.dispatcher.start();
		const slow = await core.dispatcher.add({ creator: 'chat', agent: 'scripted', chatId: b, input: { text: 'sleep 400\nsay slow done' } });
		await waitFor(() => core.dispatcher.isRunning(slow.id), 'the slow task to run');
		assert.deepEqual(core.dispatcher.runningInWorktreeOf(a), [b], "the other chat's task runs in the same worktree");
		await assert.rejects(core.dispatcher.exclusive(a, async () => 'never'), (e: Error & { code?: string }) => e.code === 'worktree/busy');
		await core.dispatcher.whenEnded(slow.id);
		let release: () => void = () => undefined;
		const held = core.dispatcher.exclusive(a, () => new Promise<string>((resolve) => (release = () => resolve('rewound'))));
		const waiting = await core.dispatcher.add({ creator: 'chat', agent: 'scripted', chatId: b, input: { text: 'say after the rewind' } });
		await new Promise((r) => setTimeout(r, 300));
		assert.equal(core.dispatcher.get(waiting.id)?.status, 'queued', 'no task starts in the worktree while the exclusive work runs');
		release();
		assert.equal(await held, 'rewound');
		assert.equal((await core.dispatcher.whenEnded(waiting.id)).status, 'done', 'it runs once the work is over');
	});

	test('a task whose session was deleted before it ran fails saying so', async () => {
		const core = await open();
		const { session } = await core.worktrees.createSession({ repo, title: 'short-lived' });
		const chat = newChat(core, session.id);
		const toSession = await core.dispatcher.add({ creator: 'cli', agent: 'scripted', sessionId: session.id, input: { text: 'say never' } });
		const toChat = await core.dispatcher.add({ creator: 'new_task', agent: 'scripted', chatId: chat, input: { text: 'say never' } });
		await core.worktrees.deleteSession(session.id);
		await core.dispatcher.start();
		for (const task of [toSession, toChat]) {
			const ended = await core.dispatcher.whenEnded(task.id);
			assert.equal(ended.status, 'failed');
			assert.match(ended.error ?? '', /its chat or session was deleted before it ran/, ended.error ?? '');
		}
	});

	test('higher priority first, FIFO within a priority', async () => {
		const core = await open({ maxConcurrent: 1 });
		const seen = new Observer(core);
		const plan = [0, 5, 1, 5, 0];
		const ids: string[] = [];
		for (const priority of plan) {
			ids.push((await core.dispatcher.add({ creator: 'skill', agent: 'scripted', chatId: newChat(core), input: { text: 'say hi' }, priority })).id);
		}
		await core.dispatcher.start();
		await core.dispatcher.whenIdle();
		assert.deepEqual(seen.started, [ids[1], ids[3], ids[2], ids[0], ids[4]]);
		assert.deepEqual(core.dispatcher.list({ status: 'done' }).map((t) => t.id), ids, 'list is in creation order');
	});

	test('cancel: a queued task never runs, a running one has its turn cancelled, an ended one is refused', async () => {
		const core = await open({ maxConcurrent: 1 });
		const chatR = newChat(core);
		const chatQ = newChat(core);
		const running = await core.dispatcher.add({ creator: 'cli', agent: 'scripted', chatId: chatR, input: { text: 'sleep 30000\nsay should not be said' } });
		const queued = await core.dispatcher.add({ creator: 'cli', agent: 'scripted', chatId: chatQ, input: { text: 'write q.txt q' } });
		await core.dispatcher.start();
		await waitFor(() => core.dispatcher.get(running.id)?.turn_id !== null, 'the long turn to start', 20_000);

		const cancelledQueued = await core.dispatcher.cancel(queued.id);
		assert.equal(cancelledQueued.status, 'cancelled');
		assert.equal((await core.dispatcher.cancel(queued.id)).status, 'cancelled', 'cancelling twice is harmless');

		await core.dispatcher.cancel(running.id);
		const ended = await core.dispatcher.whenEnded(running.id);
		assert.equal(ended.status, 'cancelled');
		assert.deepEqual(turnsOf(core, chatR).map((t) => t.status), ['cancelled']);
		await core.dispatcher.whenIdle();
		assert.equal(core.dispatcher.get(queued.id)?.started_at, null, 'the queued task never started');
		assert.deepEqual(turnsOf(core, chatQ), [], 'and no turn ran for it');
		assert.equal(fs.existsSync(path.join(worktreePath, 'q.txt')), false);

		const done = await core.dispatcher.add({ creator: 'cli', agent: 'scripted', chatId: chatQ, input: { text: 'say fine' } });
		assert.equal((await core.dispatcher.whenEnded(done.id)).status, 'done');
		await assert.rejects(core.dispatcher.cancel(done.id), /already ended \(done\)/);
		await assert.rejects(core.dispatcher.cancel('task-nope'), /There is no task task-nope/);

		// A task cancelled while it is still being given a new session never runs either.
		const early = await core.dispatcher.add({ creator: 'mcp', agent: 'scripted', newSession: { repo }, input: { text: 'write early.txt e' } });
		await core.dispatcher.cancel(early.id);
		const earlyEnd = await core.dispatcher.whenEnded(early.id);
		assert.equal(earlyEnd.status, 'cancelled');
		await core.dispatcher.whenIdle();
		assert.equal(core.dispatcher.get(early.id)?.started_at, null);
		if (earlyEnd.chat_id) {
			assert.deepEqual(turnsOf(core, earlyEnd.chat_id), []);
		}
	});

	test('a task whose chat was made but not yet recorded on it (a resolve cut off by a kill) gets that chat again, not a second session', async () => {
		const core = await open();
		const task = await core.dispatcher.add({ creator: 'mcp', agent: 'scripted', newSession: { repo, title: 'cut off' }, input: { text: 'write cut.txt c' } });
		// What the cut-off resolve left on disk: the session and the chat, and a task that names neither.
		const first = await new SessionChatResolver(core.store, core.worktrees, logger).ensureChat(core.dispatcher.get(task.id)!);
		assert.equal(core.dispatcher.get(task.id)!.chat_id, null);
		await core.dispatcher.start();
		const done = await core.dispatcher.whenEnded(task.id);
		assert.equal(done.status, 'done', done.error ?? undefined);
		assert.deepEqual([done.chat_id, done.session_id], [first.chatId, first.sessionId]);
		assert.deepEqual(core.sessions.list().filter((s) => s.title === 'cut off').map((s) => s.id), [first.sessionId], 'one session');
		assert.deepEqual(core.sessions.listChats(first.sessionId).map((c) => c.id), [first.chatId], 'one chat');
		assert.equal(fs.readFileSync(path.join(first.worktreePath, 'cut.txt'), 'utf8'), 'c');
	});

	test('a task whose session was made but whose chat was not yet on disk (a resolve cut off by a kill) gets that session again, not a second one', async () => {
		const core = await open();
		const task = await core.dispatcher.add({ creator: 'mcp', agent: 'scripted', newSession: { repo, title: 'cut off early' }, input: { text: 'write early.txt e' } });
		// What the cut-off resolve left on disk: the session made for the task (ready), and no chat yet.
		const first = await new SessionChatResolver(core.store, core.worktrees, logger).ensureChat(core.dispatcher.get(task.id)!);
		core.store.write((tx) => tx.run('DELETE FROM chats WHERE id = ?', [first.chatId]));
		await core.dispatcher.start();
		const done = await core.dispatcher.whenEnded(task.id);
		assert.equal(done.status, 'done', done.error ?? undefined);
		assert.deepEqual(core.sessions.list().filter((s) => s.title === 'cut off early').map((s) => s.id), [first.sessionId], 'one session, with one worktree and branch');
		assert.equal(done.session_id, first.sessionId);
		assert.equal(fs.readFileSync(path.join(first.worktreePath, 'early.txt'), 'utf8'), 'e');
	});

	test('a task cancelled while it is given the chat a cut-off resolve made: the session made for it goes again, not only the chat', async () => {
		// The resolver the core's dispatcher uses, held at the door until the task is cancelled.
		const held: { resolver?: SessionChatResolver } = {};
		let open: () => void = () => undefined;
		const door = new Promise<void>((resolve) => (open = resolve));
		const core = await TaskCore.open(folders, logger, {
			definitions: () => [scriptedAgent(folders)],
			dispatcher: {
				chats: {
					ensureChat: async (task) => {
						await door;
						return held.resolver!.ensureChat(task);
					},
					release: (chat) => held.resolver!.release(chat),
				},
			},
		});
		cores.push(core);
		const real = (held.resolver = new SessionChatResolver(core.store, core.worktrees, logger));
		const task = await core.dispatcher.add({ creator: 'cli', agent: 'scripted', newSession: { repo, title: 'cut off then cancelled' }, input: { text: 'write never.txt n' } });
		// What a process killed mid-resolve left on disk: the session and the chat made for the task, which names neither.
		const first = await real.ensureChat(core.dispatcher.get(task.id)!);
		await core.dispatcher.start();
		assert.equal(core.dispatcher.get(task.id)!.status, 'queued', 'the dispatcher is giving it a chat');
		await core.dispatcher.cancel(task.id);
		open();
		await core.dispatcher.whenIdle();
		assert.equal(core.dispatcher.get(task.id)!.status, 'cancelled');
		assert.deepEqual(core.sessions.list().filter((s) => s.title === 'cut off then cancelled'), [], 'the session made for the task is gone');
		assert.equal(fs.existsSync(first.worktreePath), false, 'and so is its worktree');
	});

	test('a failed task is retried once as a new task in the same chat; only failed or interrupted tasks retry', async () => {
		const core = await open();
		const chat = newChat(core);
		await core.dispatcher.start();
		const failing = await core.dispatcher.add({ creator: 'skill', agent: 'later', chatId: chat, input: { text: 'say second try' }, priority: 3 });
		const failed = await core.dispatcher.whenEnded(failing.id);
		assert.equal(failed.status, 'failed');
		assert.match(failed.error ?? '', /There is no agent "later"/);

		extraAgents = [scriptedAgent(folders, 'later')];
		const retry = await core.dispatcher.retry(failing.id);
		assert.deepEqual(
			{ parent: retry.parent_task_id, attempt: retry.attempt, chat: retry.chat_id, agent: retry.agent, prompt: retry.prompt, priority: retry.priority, creator: retry.creator },
			{ parent: failing.id, attempt: 2, chat, agent: 'later', prompt: 'say second try', priority: 3, creator: 'skill' },
		);
		const retried = await core.dispatcher.whenEnded(retry.id);
		assert.equal(retried.status, 'done');
		assert.match(retried.result ?? '', /second try/);
		assert.equal(core.dispatcher.get(failing.id)?.status, 'failed', 'the original keeps how it ended');

		await assert.rejects(core.dispatcher.retry(failing.id), new RegExp(`already retried as task ${retry.id}`));
		await assert.rejects(core.dispatcher.retry(retry.id), /is done; only failed or interrupted tasks can be retried/);
		assert.equal(core.dispatcher.list({ chatId: chat }).length, 2, 'two clicks never make two retries');
	});

	test('resolve-or-create: every creator without a chat gets one, in the named session or a new session with its own worktree', async () => {
		const core = await open({ maxConcurrent: 4, defaultRepo: repo });
		await core.dispatcher.start();
		const creators: TaskCreator[] = ['skill', 'arena', 'mcp', 'new_task', 'cli', 'generic'];
		const added: { task: TaskRow; file: string; target: 'session' | 'new' | 'default' }[] = [];
		for (const [i, creator] of creators.entries()) {
			const file = `from-${creator}.txt`;
			const target = i % 2 === 0 ? 'session' : i === 5 ? 'default' : 'new';
			const where = target === 'session' ? { sessionId } : target === 'new' ? { newSession: { repo, title: `${creator} work` } } : {};
			added.push({ task: await core.dispatcher.add({ creator, agent: 'scripted', ...where, input: { text: `write ${file} by ${creator}` } }), file, target });
		}
		await core.dispatcher.whenIdle();
		const newSessions = new Set<string>();
		for (const { task, file, target } of added) {
			const row = core.dispatcher.get(task.id)!;
			assert.equal(row.status, 'done', `${row.creator}: ${row.error ?? ''}`);
			assert.ok(row.chat_id, `${row.creator} was given a chat`);
			const chat = core.sessions.getChat(row.chat_id)!;
			assert.equal(chat.session_id, row.session_id);
			assert.equal(chat.agent, 'scripted');
			const cwd = core.sessions.workingDirectory(row.chat_id)!.cwd!;
			assert.equal(fs.readFileSync(path.join(cwd, file), 'utf8'), `by ${row.creator}`, `${row.creator}'s agent worked in its session's worktree`);
			assert.equal(fs.existsSync(path.join(repo, file)), false, 'never in the main checkout');
			if (target === 'session') {
				assert.equal(row.session_id, sessionId);
				assert.equal(cwd, worktreePath);
			} else {
				assert.notEqual(row.session_id, sessionId);
				assert.notEqual(cwd, worktreePath);
				newSessions.add(row.session_id!);
			}
		}
		assert.equal(newSessions.size, 3, 'each new-session task has a session of its own');
		assert.ok(core.sessions.list().some((s) => s.title === 'arena work'), 'the requested title is used');

		// Careless input is refused in plain words and nothing is queued.
		const before = core.dispatcher.list().length;
		await assert.rejects(core.dispatcher.add({ creator: 'chat', agent: 'scripted', sessionId, input: { text: 'hi' } }), /A chat task needs the chat it was typed in/);
		await assert.rejects(core.dispatcher.add({ creator: 'robot' as TaskCreator, agent: 'scripted', sessionId, input: { text: 'hi' } }), /"robot" is not a task creator/);
		await assert.rejects(core.dispatcher.add({ creator: 'cli', agent: 'scripted', sessionId, input: { text: '   ' } }), /needs a prompt/);
		await assert.rejects(core.dispatcher.add({ creator: 'cli', agent: ' ', sessionId, input: { text: 'x' } }), /needs an agent/);
		await assert.rejects(core.dispatcher.add({ creator: 'cli', agent: 'scripted', sessionId: 'ses-nope', input: { text: 'x' } }), /There is no session ses-nope/);
		await assert.rejects(core.dispatcher.add({ creator: 'cli', agent: 'scripted', chatId: 'chat-nope', input: { text: 'x' } }), /There is no chat chat-nope/);
		await assert.rejects(core.dispatcher.add({ creator: 'cli', agent: 'scripted', sessionId, newSession: { repo }, input: { text: 'x' } }), /not several/);
		await assert.rejects(core.dispatcher.add({ creator: 'cli', agent: 'scripted', input: { text: 'x' }, priority: 1.5 }), /whole number/);
		assert.equal(core.dispatcher.list().length, before);

		// A session whose worktree was archived gets no chat: the task fails in plain words, nothing runs elsewhere.
		const archived = await core.worktrees.createSession({ repo, title: 'to archive' });
		await core.worktrees.archiveSession(archived.session.id);
		const orphan = await core.dispatcher.add({ creator: 'mcp', agent: 'scripted', sessionId: archived.session.id, input: { text: 'write nowhere.txt x' } });
		const orphanEnd = await core.dispatcher.whenEnded(orphan.id);
		assert.equal(orphanEnd.status, 'failed');
		assert.match(orphanEnd.error ?? '', /could not be given a chat.*worktree in the state "removed".*Restore the session/);
		assert.equal(orphanEnd.chat_id, null);
	});

	test('stop takes no more tasks, cancels the running turn as interrupted, and the queue survives a restart', async () => {
		let core = await open({ maxConcurrent: 1 });
		const chatA = newChat(core);
		const chatB = newChat(core);
		await core.dispatcher.start();
		const a = await core.dispatcher.add({ creator: 'cli', agent: 'scripted', chatId: chatA, input: { text: 'sleep 30000\nsay A' } });
		const b = await core.dispatcher.add({ creator: 'cli', agent: 'scripted', chatId: chatB, input: { text: 'say B ran' } });
		await waitFor(() => core.dispatcher.get(a.id)?.turn_id !== null, 'A to start', 20_000);
		const stopping = core.dispatcher.stop();
		await assert.rejects(core.dispatcher.add({ creator: 'cli', agent: 'scripted', chatId: chatB, input: { text: 'late' } }), /shutting down and takes no new tasks/);
		await stopping;
		assert.equal(core.dispatcher.get(a.id)?.status, 'interrupted');
		assert.equal(core.dispatcher.get(b.id)?.status, 'queued');
		await close(core);

		core = await open({ maxConcurrent: 1 });
		assert.deepEqual(await core.dispatcher.start(), [], 'nothing was left running');
		const bEnd = await core.dispatcher.whenEnded(b.id);
		assert.equal(bEnd.status, 'done');
		assert.match(bEnd.result ?? '', /B ran/);
		assert.equal(core.dispatcher.get(a.id)?.status, 'interrupted', 'an interrupted task waits for a retry');
		assert.equal(turnsOf(core, chatA).length, 1);
	});

	test('stop with a grace period lets a short turn finish as done; waiting on a task that will not end in this run is refused', async () => {
		const core = await open({ maxConcurrent: 1 });
		const chat = newChat(core);
		await core.dispatcher.start();
		const quick = await core.dispatcher.add({ creator: 'generic', agent: 'scripted', chatId: chat, input: { text: 'sleep 300\nsay quick' } });
		const after = await core.dispatcher.add({ creator: 'generic', agent: 'scripted', chatId: chat, input: { text: 'say later' } });
		await waitFor(() => core.dispatcher.isRunning(quick.id), 'the quick task to start', 20_000);
		const waiting = core.dispatcher.whenEnded(after.id);
		await core.dispatcher.stop({ graceMs: 20_000 });
		assert.equal(core.dispatcher.get(quick.id)?.status, 'done', 'it finished within the grace period');
		assert.equal(core.dispatcher.get(after.id)?.status, 'queued', 'nothing new started while stopping');
		await assert.rejects(waiting, /shutting down; the task will not end in this run/);
		await assert.rejects(core.dispatcher.retry(quick.id), /shutting down/);
	});

	test('a core killed mid-turn (SIGKILL of its process group): queued tasks run after restart, the running one is interrupted, nothing runs twice', async () => {
		const core0 = await open();
		const chats = [newChat(core0), newChat(core0), newChat(core0)];
		await close(core0);
		const fixture = path.join(repoRoot, 'out', 'test', 'fixtures', 'taskCrashCore.js');
		const tasks = [
			{ chatId: chats[0]!, prompt: 'sleep 3000\nsay A finished' },
			{ chatId: chats[1]!, prompt: 'say B ran' },
			{ chatId: chats[2]!, prompt: 'say C ran' },
		];
		const child = spawn(process.execPath, [fixture, JSON.stringify({ folders, tasks })], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
		let out = '';
		let err = '';
		child.stdout.on('data', (d: Buffer) => (out += d.toString()));
		child.stderr.on('data', (d: Buffer) => (err += d.toString()));
		const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
		await waitFor(() => out.includes('"running"') || child.exitCode !== null, 'the child core to start its first turn', 30_000);
		assert.ok(out.includes('"running"'), `the child core failed: ${err}`);
		process.kill(-child.pid!, 'SIGKILL');
		await exited;
		await endOrphanedAgents();
		const lines = out.trim().split('\n').map((l) => JSON.parse(l) as { added?: string[]; running?: string });
		const ids = lines.find((l) => l.added)!.added!;
		assert.equal(lines.find((l) => l.running)!.running, ids[0]);

		const core = await open({ maxConcurrent: 1 });
		assert.equal(core.dispatcher.get(ids[0]!)?.status, 'running', 'the store still says running: the process ended mid-turn');
		assert.deepEqual(await core.dispatcher.start(), [ids[0]]);
		await core.dispatcher.whenIdle();
		assert.deepEqual(ids.map((id) => core.dispatcher.get(id)?.status), ['interrupted', 'done', 'done']);
		assert.deepEqual(chats.map((c) => turnsOf(core, c).length), [1, 1, 1], 'each task had exactly one turn: none ran twice');

		const retry = await core.dispatcher.retry(ids[0]!);
		const retried = await core.dispatcher.whenEnded(retry.id);
		assert.equal(retried.status, 'done');
		assert.match(retried.result ?? '', /A finished/);
		assert.equal(turnsOf(core, chats[0]!).length, 2);
		await assert.rejects(core.dispatcher.retry(ids[0]!), /already retried/);
	});

	test('killed at random moments, many times: every task ends at most once and never runs twice', async () => {
		const fixture = path.join(repoRoot, 'out', 'test', 'fixtures', 'taskCrashCore.js');
		const rounds = Number(process.env.AGENT_TABS_KILL_ROUNDS ?? 4);
		for (let round = 0; round < rounds; round++) {
			const setupCore = await open();
			const chats = [newChat(setupCore), newChat(setupCore), newChat(setupCore)];
			await close(setupCore);
			const tasks = chats.map((chatId, i) => ({ chatId, prompt: `sleep ${100 + 200 * i}\nsay round ${round} task ${i}` }));
			const child = spawn(process.execPath, [fixture, JSON.stringify({ folders, tasks })], { detached: true, stdio: 'ignore' });
			const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
			// Anywhere from opening the store to the middle of the turns.
			await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 2500)));
			try {
				process.kill(-child.pid!, 'SIGKILL');
			} catch {
				// already gone
			}
			await exited;
			await endOrphanedAgents();
			const core = await open({ maxConcurrent: 2 });
			const inRound = (): TaskRow[] => core.dispatcher.list().filter((t) => chats.includes(t.chat_id ?? ''));
			const runningBefore = inRound().filter((t) => t.status === 'running').map((t) => t.id);
			assert.deepEqual(await core.dispatcher.start(), runningBefore);
			await core.dispatcher.whenIdle();
			for (const t of inRound()) {
				const turns = turnsOf(core, t.chat_id!).length;
				assert.ok(t.status === 'done' || t.status === 'interrupted', `round ${round}: task ${t.id} is ${t.status}`);
				assert.ok(turns <= 1, `round ${round}: the chat of task ${t.id} had ${turns} turns`);
				if (t.status === 'done') {
					assert.equal(turns, 1);
				}
			}
			await close(core);
		}
	});
});
