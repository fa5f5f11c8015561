import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import { PermissionBroker } from '../../../src/agents/permissions';
import { AgentSessionsRepo } from '../../../src/db/agentSessionsRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { Core, type CoreOptions } from '../../../src/tasks/core';
import type { WorktreeOptions } from '../../../src/worktrees/worktreeService';
import { agentScript, alive, pidOf } from '../agentRig';
import { gitEnv, makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, tempDir, waitFor, wasmPath } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

/** The one factory both roots use: what it does at start, what it wires, and the order it shuts down in. */
suite('tasks/core: the core both roots build', function () {
	this.timeout(30_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	let repo: string;
	let logger: MemoryLogger;
	let broker: PermissionBroker;
	let cores: Core[];

	setup(() => {
		dir = tempDir('agent-tabs-core-');
		repo = makeRepo(path.join(dir, 'repo'));
		logger = new MemoryLogger();
		broker = new PermissionBroker({ default: 'allow', timeoutMs: 2000 }, logger);
		cores = [];
	});
	teardown(async () => {
		for (const core of cores) {
			await core.shutdown();
		}
		broker.dispose();
		removeDir(dir);
	});

	function options(worktrees: WorktreeOptions = { root: path.join(dir, 'worktrees'), env: gitEnv(dir) }): CoreOptions {
		return {
			logger,
			owner: 'a core test',
			interruptedTurnReason: 'the test host went away',
			worktrees,
			definitions: () => [{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: { SCRIPTED_AGENT_STATE_DIR: path.join(dir, 'agent-state') } }],
			permissions: broker,
			backends: { acp: new AcpBackend({ logger, startTimeoutMs: 5000, cancelGraceMs: 1000, killGraceMs: 1000 }) },
			flushMs: 20,
		};
	}

	async function open(worktrees?: WorktreeOptions): Promise<Core> {
		const core = await Core.open({ dir: path.join(dir, 'state'), wasmPath }, options(worktrees));
		cores.push(core);
		return core;
	}

	test('a start marks turns a crash left running interrupted and live agent sessions stopped', async () => {
		const store = await openStore(path.join(dir, 'state'));
		const sessions = new SessionsRepo(store);
		const chat = sessions.createChat({ sessionId: sessions.create({ title: 't' }).id, agent: 'scripted' }).id;
		const turn = new TranscriptRepo(store).startTurn({ chatId: chat, agent: 'scripted', prompt: 'go' });
		new AgentSessionsRepo(store).upsert({ chat_id: chat, agent: 'scripted', backend: 'acp', status: 'running', backend_session_id: 'scripted-1-1' });
		await store.close();

		const core = await open();
		const row = core.transcript.getTurn(turn.id)!;
		assert.deepEqual([row.status, row.error], ['interrupted', 'the test host went away']);
		const agent = core.agentSessions.get(chat, 'scripted')!;
		assert.deepEqual([agent.status, agent.backend_session_id], ['idle', 'scripted-1-1'], 'stopped, still resumable');
	});

	test('a start removes the checkpoints a kill left unrecorded, before any turn runs; rewinds, other stores and recent comparisons are kept', async () => {
		const first = await open();
		const { session } = await first.worktrees.createSession({ repo, title: 'sweep' });
		const chat = first.sessions.createChat({ sessionId: session.id, agent: 'scripted', title: 'Scripted' }).id;
		const done = await first.turns.runTurn(chat, 'scripted', { text: 'write a.txt one' });
		assert.equal(done.status, 'done', done.result.error);
		await first.shutdown();
		const env = gitEnv(dir);
		const git = (args: string[], extra: NodeJS.ProcessEnv = {}): string => execFileSync('git', args, { cwd: repo, env: { ...env, ...extra }, encoding: 'utf8' }).trim();
		const tree = git(['rev-parse', 'HEAD^{tree}']);
		const commitAt = (when: string): string => git(['commit-tree', tree, '-m', 'probe'], { GIT_COMMITTER_DATE: when, GIT_AUTHOR_DATE: when });
		const head = git(['rev-parse', 'HEAD']);
		const refs = {
			unrecorded: `refs/agent-tabs/checkpoints/${chat}/killed-before`,
			replaced: `refs/agent-tabs/checkpoints/${chat}/older-before-replaced-1`,
			otherStore: 'refs/agent-tabs/checkpoints/chat_of_another_window/x-before',
			oldPreview: 'refs/agent-tabs/preview/p_old',
			newPreview: 'refs/agent-tabs/preview/p_new',
			saved: `refs/agent-tabs/saved/wt_x/1`,
		};
		for (const ref of [refs.unrecorded, refs.replaced, refs.otherStore, refs.saved]) {
			git(['update-ref', ref, head]);
		}
		git(['update-ref', refs.oldPreview, commitAt(`${Math.floor(Date.now() / 1000) - 2 * 3600} +0000`)]);
		git(['update-ref', refs.newPreview, commitAt(`${Math.floor(Date.now() / 1000) - 60} +0000`)]);

		const second = await open();
		const next = await second.turns.runTurn(chat, 'scripted', { text: 'write b.txt two' });
		assert.equal(next.status, 'done', next.result.error);
		const left = new Set(git(['for-each-ref', '--format=%(refname)', 'refs/agent-tabs/']).split('\n'));
		assert.ok(!left.has(refs.unrecorded), 'the checkpoint no turn records is gone');
		assert.ok(!left.has(refs.oldPreview), 'a comparison ref hours old is gone');
		for (const kept of [refs.replaced, refs.otherStore, refs.newPreview, refs.saved, done.turn.checkpoint_before!, done.turn.checkpoint_after!]) {
			assert.ok(left.has(kept), `${kept} is kept`);
		}
		const latest = second.transcript.getTurn(next.turn.id)!;
		assert.ok(left.has(latest.checkpoint_before!) && left.has(latest.checkpoint_after!), 'the new turn took and kept its own');
	});

	test("archiving a session ends its chats' idle agent processes before the folder goes; a restored session starts them anew there", async () => {
		const core = await open();
		const { session, worktree } = await core.worktrees.createSession({ repo, title: 'idle agents' });
		const chat = core.sessions.createChat({ sessionId: session.id, agent: 'scripted', title: 'Scripted' }).id;
		assert.equal((await core.turns.runTurn(chat, 'scripted', { text: 'write a.txt one' })).status, 'done');
		const pid = pidOf(core.pool.peek(chat, 'scripted')!.backendSessionId);
		assert.ok(alive(pid), 'idle, not reaped yet');
		await core.worktrees.archiveSession(session.id);
		await waitFor(() => !alive(pid), 'the idle agent to be ended', 10_000);
		assert.equal(core.pool.peek(chat, 'scripted'), undefined);
		await core.worktrees.restoreSession(session.id);
		const again = await core.turns.runTurn(chat, 'scripted', { text: 'write b.txt two' });
		assert.equal(again.status, 'done', again.result.error);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'b.txt'), 'utf8'), 'two');
	});

	test('a turn through the core is recorded with its checkpoints; shutdown goes turns, agents, store', async () => {
		const core = await open();
		const { session, worktree } = await core.worktrees.createSession({ repo, title: 'core' });
		const chat = core.sessions.createChat({ sessionId: session.id, agent: 'scripted', title: 'Scripted' }).id;
		const done = await core.turns.runTurn(chat, 'scripted', { text: 'write a.txt one' });
		assert.equal(done.status, 'done', done.result.error);
		assert.equal(done.cwd, worktree.path);
		const recorded = core.transcript.getTurn(done.turn.id)!;
		assert.ok(recorded.checkpoint_before && recorded.checkpoint_after, 'checkpoints before and after, through the one worktree service');
		assert.deepEqual(core.pending.listForChat(chat).map((p) => p.path), ['a.txt']);

		const running = core.turns.runTurn(chat, 'scripted', { text: 'say starting\nsleep 10000' });
		await waitFor(() => core.pool.isRunning(chat, 'scripted'), 'the turn to start', 5000);
		assert.deepEqual(core.runningChats(session.id), ['Scripted'], 'the risk report sees the running chat');
		const pid = pidOf(core.pool.peek(chat, 'scripted')!.backendSessionId);
		await core.shutdown();
		const outcome = await running;
		assert.equal(outcome.status, 'interrupted', outcome.result.error);
		assert.equal(outcome.turn.status, 'interrupted', 'its end was recorded before the store closed (interrupted by the shutdown, not cancelled by a person)');
		assert.ok(!alive(pid), 'the agent process is ended');
		assert.throws(() => core.store.write((tx) => tx.run('SELECT 1')), /closed/, 'the store is closed last');
		await core.shutdown(); // twice is fine

		const reopened = await open();
		assert.equal(reopened.transcript.getTurn(outcome.turn.id)!.status, 'interrupted', 'and it is on disk');
	});

	test('the core builds the dispatcher, not started; shutdown stops it first, so a running task ends interrupted (retryable) before the store closes', async () => {
		const core = await open();
		const { session } = await core.worktrees.createSession({ repo, title: 'tasks' });
		const queued = await core.dispatcher.add({ creator: 'generic', agent: 'scripted', input: { text: 'say hi' }, sessionId: session.id });
		await new Promise((resolve) => setTimeout(resolve, 200));
		assert.equal(core.dispatcher.get(queued.id)!.status, 'queued', 'building the core does not start the queue: the surface does');
		await core.dispatcher.start();
		const done = await core.dispatcher.whenEnded(queued.id);
		assert.equal(done.status, 'done', done.error ?? undefined);
		assert.ok(done.chat_id && done.turn_id, 'it was given a chat and ran a turn in it');

		const long = await core.dispatcher.add({ creator: 'cli', agent: 'scripted', input: { text: 'say starting\nsleep 10000' }, chatId: done.chat_id! });
		await waitFor(() => core.dispatcher.get(long.id)!.turn_id !== null, 'the long task to start its turn', 10_000);
		await core.shutdown();
		// Had the turns been shut down before the dispatcher, the turn would have ended as a user's cancel.
		const reopened = await open();
		const row = reopened.dispatcher.get(long.id)!;
		assert.equal(row.status, 'interrupted', 'the dispatcher stopped first: shutdown, not a cancel');
		assert.equal(reopened.transcript.getTurn(row.turn_id!)!.status, 'interrupted', 'its turn recorded its end before the store closed');
		const retried = await reopened.dispatcher.retry(long.id);
		assert.equal(retried.parent_task_id, long.id);
	});

	test('tasks persist across a restart of the whole core: queued ones run after start, one cut off is interrupted and never re-run by itself', async () => {
		const first = await open();
		const { session } = await first.worktrees.createSession({ repo, title: 'persist' });
		const waiting = await first.dispatcher.add({ creator: 'new_task', agent: 'scripted', input: { text: 'write later.txt later' }, sessionId: session.id });
		const fresh = await first.dispatcher.add({ creator: 'cli', agent: 'scripted', input: { text: 'say in a new session' }, newSession: { repo, title: 'fresh' } });
		await first.shutdown();

		// A crash while a task ran: its row is still `running` when the next core starts.
		const store = await openStore(path.join(dir, 'state'));
		store.write((tx) => tx.run(`UPDATE tasks SET status = 'running', started_at = ? WHERE id = ?`, [Date.now(), waiting.id]));
		await store.close();
		const second = await open();
		assert.deepEqual(await second.dispatcher.start(), [waiting.id], 'the task cut off is marked interrupted at start');
		const ran = await second.dispatcher.whenEnded(fresh.id);
		assert.equal(ran.status, 'done', ran.error ?? undefined);
		assert.notEqual(ran.session_id, session.id, 'the queued task got a new session of its own');
		await second.dispatcher.whenIdle();
		assert.equal(second.dispatcher.get(waiting.id)!.status, 'interrupted');
		assert.ok(!fs.existsSync(path.join(worktreeOf(second, session.id), 'later.txt')), 'the interrupted task did not run again by itself');
		const retry = await second.dispatcher.retry(waiting.id);
		assert.equal((await second.dispatcher.whenEnded(retry.id)).status, 'done');
		assert.equal(fs.readFileSync(path.join(worktreeOf(second, session.id), 'later.txt'), 'utf8'), 'later');
	});

	test('a task\'s prompt is stored without the secrets the core knows; the agent still gets it as given', async () => {
		const secret = 'defined-in-agent-env-0123456789';
		const core = await Core.open(
			{ dir: path.join(dir, 'state'), wasmPath },
			{ ...options(), definitions: () => [{ ...options().definitions()[0]!, env: { ...options().definitions()[0]!.env, DEPLOY_TOKEN: secret } }] },
		);
		cores.push(core);
		const { session, worktree } = await core.worktrees.createSession({ repo, title: 'secrets' });
		const task = await core.dispatcher.add({ creator: 'generic', agent: 'scripted', input: { text: `write token.txt ${secret}` }, sessionId: session.id });
		assert.equal(task.prompt, 'write token.txt [redacted DEPLOY_TOKEN]', 'the row never holds the secret');
		await core.dispatcher.start();
		assert.equal((await core.dispatcher.whenEnded(task.id)).status, 'done');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'token.txt'), 'utf8'), secret, 'the agent got the prompt as given');
		await core.shutdown();
		const files = fs.readdirSync(path.join(dir, 'state')).map((f) => path.join(dir, 'state', f)).filter((f) => fs.statSync(f).isFile());
		assert.ok(!files.some((f) => fs.readFileSync(f, 'latin1').includes(secret)), 'nor the database or its journal');
	});

	function worktreeOf(core: Core, sessionId: string): string {
		return core.worktreeRows.forSession(sessionId)!.path;
	}

	test('the one worktree service reads its options when it uses them, so a changed setting applies without a new service', async () => {
		let root = path.join(dir, 'first-root');
		const core = await open({
			get root() {
				return root;
			},
			env: gitEnv(dir),
		});
		const first = await core.worktrees.createSession({ repo, title: 'one' });
		root = path.join(dir, 'second-root');
		const second = await core.worktrees.createSession({ repo, title: 'two' });
		assert.equal(path.dirname(first.worktree.path), path.join(dir, 'first-root'));
		assert.equal(path.dirname(second.worktree.path), path.join(dir, 'second-root'));
		assert.ok(fs.existsSync(second.worktree.path));
	});
});
