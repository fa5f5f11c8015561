import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import { PermissionBroker } from '../../../src/agents/permissions';
import { AgentPool } from '../../../src/agents/pool';
import { TurnRunner } from '../../../src/tasks/turnRunner';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { WorktreesRepo } from '../../../src/db/worktreesRepo';
import type { Store } from '../../../src/db/store';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, repoRoot, tempDir } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');

/**
 * Failures inside a turn: a write the store refuses (a real SQLite trigger raising an error in the real
 * sql.js database, as a full disk or a constraint would), a listener that throws. The turn ends as failed,
 * the error is logged, and the process goes on.
 */
suite('tasks/turnRunner: a turn that fails inside ends as failed and the process goes on', function () {
	this.timeout(30_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	let store: Store;
	let logger: MemoryLogger;
	let pool: AgentPool;
	let turns: TurnRunner;
	let broker: PermissionBroker;
	let chatId: string;
	let work: string;

	setup(async () => {
		dir = tempDir('agent-tabs-turn-failures-');
		const repo = makeRepo(path.join(dir, 'repo'));
		logger = new MemoryLogger();
		store = await openStore(path.join(dir, 'state'), { logger });
		const worktrees = new WorktreeService(store, logger, { root: path.join(dir, 'worktrees') });
		const { session } = await worktrees.createSession({ repo, title: 'failures' });
		chatId = new SessionsRepo(store).createChat({ sessionId: session.id, agent: 'scripted' }).id;
		broker = new PermissionBroker({ default: 'allow', timeoutMs: 2000 }, logger);
		pool = new AgentPool({
			store,
			logger,
			backends: { acp: new AcpBackend({ logger, startTimeoutMs: 5000, cancelGraceMs: 1000, killGraceMs: 1000 }) },
			definitions: () => [{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: {} }],
			permissions: broker,
		});
		turns = new TurnRunner({ store, pool, logger, flushMs: 20, checkpoint: (cwd, name) => worktrees.checkpoint(cwd, name), dropCheckpoint: (cwd, ref) => worktrees.dropCheckpoint(cwd, ref) });
		work = new WorktreesRepo(store).forSession(session.id)!.path;
	});
	teardown(async () => {
		await turns.shutdown();
		await pool.shutdown();
		broker.dispose();
		await store.close();
		removeDir(dir);
	});

	const worktreesOf = (): WorktreeService => new WorktreeService(store, logger, { root: path.join(dir, 'worktrees') });

	function failWrites(name: string, trigger: string): void {
		store.write((tx) => tx.run(`CREATE TRIGGER ${name} ${trigger} BEGIN SELECT RAISE(ABORT, 'the disk said no'); END`));
	}

	test('a write that fails between the turn\'s start and its end: the turn ends as failed, not running', async () => {
		failWrites('no_running', "BEFORE UPDATE OF status ON agent_sessions WHEN NEW.status = 'running'");
		const outcome = await turns.runTurn(chatId, 'scripted', { text: 'say hi' });
		assert.equal(outcome.status, 'error');
		const turn = new TranscriptRepo(store).getTurn(outcome.turn.id)!;
		assert.equal(turn.status, 'error', 'the turn is not left running');
		assert.match(turn.error ?? '', /Agent Tabs failed during this turn: .*the disk said no/);
		assert.ok(turn.ended_at, 'it has an end');
		assert.ok(logger.lines.some((l) => l.startsWith('error') && /failed: .*the disk said no/.test(l)), logger.lines.join('\n'));
		store.write((tx) => tx.run('DROP TRIGGER no_running'));
		const next = await turns.runTurn(chatId, 'scripted', { text: 'say again' });
		assert.equal(next.status, 'done', 'the turn runner goes on');
	});

	test('a checkpoint that cannot be taken is a warning in the log, not a debug line, and the turn still runs', async () => {
		const refused = new TurnRunner({ store, pool, logger, flushMs: 20, checkpoint: () => Promise.reject(new Error('git add -A -- . failed: paths outside of your sparse-checkout definition')) });
		try {
			const outcome = await refused.runTurn(chatId, 'scripted', { text: 'say hi' });
			assert.equal(outcome.status, 'done');
			assert.ok(logger.lines.some((l) => l.startsWith('warn') && /could not take checkpoint .*-before in .*: git add -A -- \. failed: paths outside/.test(l)), logger.lines.join('\n'));
			assert.ok(logger.lines.some((l) => l.startsWith('warn') && /could not take checkpoint .*-after in /.test(l)), logger.lines.join('\n'));
		} finally {
			await refused.shutdown();
		}
	});

	test('a failing write in the deferred transcript flush is logged, not thrown from the timer, and ends the turn as failed', async () => {
		failWrites('no_text', "BEFORE INSERT ON messages WHEN NEW.kind = 'text'");
		const outcome = await turns.runTurn(chatId, 'scripted', { text: 'say streamed text\nsleep 100\nsay more' });
		assert.equal(outcome.status, 'error');
		const turn = new TranscriptRepo(store).getTurn(outcome.turn.id)!;
		assert.equal(turn.status, 'error');
		assert.match(turn.error ?? '', /Part of this turn could not be saved: .*the disk said no/);
		assert.match(outcome.result.error ?? '', /could not be saved/);
		assert.ok(logger.lines.some((l) => l.startsWith('error') && /could not save turn .*the disk said no/.test(l)), logger.lines.join('\n'));
		store.write((tx) => tx.run('DROP TRIGGER no_text'));
		assert.equal((await turns.runTurn(chatId, 'scripted', { text: 'say fine' })).status, 'done');
	});

	test('a turn whose agent cannot start rejects only once the checkpoint taken meanwhile is gone: no git runs after it, no ref is left', async () => {
		const missing = new SessionsRepo(store).createChat({ sessionId: new SessionsRepo(store).getChat(chatId)!.session_id, agent: 'scripted' }).id;
		const refs = (): string[] => execFileSync('git', ['for-each-ref', '--format=%(refname)', `refs/agent-tabs/checkpoints/${missing}/`], { cwd: work, encoding: 'utf8' }).split('\n').filter(Boolean);
		const broken = new AgentPool({
			store,
			logger,
			backends: { acp: new AcpBackend({ logger, startTimeoutMs: 5000 }) },
			definitions: () => [{ id: 'scripted', label: 'Scripted', transport: 'acp', command: path.join(dir, 'no-such-agent'), args: [], env: {} }],
			permissions: broker,
		});
		const brokenTurns = new TurnRunner({ store, pool: broken, logger, flushMs: 20, checkpoint: (cwd, name) => worktreesOf().checkpoint(cwd, name), dropCheckpoint: (cwd, ref) => worktreesOf().dropCheckpoint(cwd, ref) });
		try {
			await assert.rejects(brokenTurns.runTurn(missing, 'scripted', { text: 'say hi' }));
			assert.deepEqual(refs(), []);
			await new Promise((resolve) => setTimeout(resolve, 500));
			assert.deepEqual(refs(), [], 'nothing was still being written');
		} finally {
			await brokenTurns.shutdown();
			await broken.shutdown();
		}
	});

	test('a listener that throws is logged; the other listeners still get every event', async () => {
		const seen: string[] = [];
		const bad = turns.onDidEvent(() => {
			throw new Error('listener bug');
		});
		const good = turns.onDidEvent((e) => seen.push(e.event.type));
		try {
			const outcome = await turns.runTurn(chatId, 'scripted', { text: 'say hi' });
			assert.equal(outcome.status, 'done');
		} finally {
			bad.dispose();
			good.dispose();
		}
		assert.ok(seen.includes('text'));
		assert.ok(logger.lines.some((l) => l.startsWith('error') && l.includes('[TurnRunner][onDidEvent] a listener failed: Error: listener bug')), logger.lines.join('\n'));
	});
});
