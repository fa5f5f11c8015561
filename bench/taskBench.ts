/**
 * bench/tasks: what the dispatcher costs per task against calling the turn runner directly, in the same run:
 *  - withAgent: one short turn ("say ok") of a warm scripted ACP agent through the real pool, store and
 *    worktree; direct = `TaskTurnAdapter.runTurn` (over the pool), dispatched = `Dispatcher.add` + `whenEnded` (a durable
 *    insert, a claim, the same turn, a durable end). Blocks of each are interleaved; the ratio is of the means.
 *  - bookkeeping: the same with a runner that returns at once, so only the dispatcher's own work is left
 *    (validate, two durable writes, choosing, events): its absolute time per task, against the direct call.
 *  - queueOf: BENCH_TASKS no-op tasks added at once over 8 chats and drained (per-task time with a long queue).
 * Target (issue 12): withAgent mean ratio <= 1.25 (the dispatcher adds at most a quarter to a short turn).
 *
 * Knobs (environment): BENCH_TASKS (200 per side), BENCH_TASK_BLOCK (20).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AcpBackend } from '../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../src/agents/definitions';
import { PermissionBroker } from '../src/agents/permissions';
import { AgentPool } from '../src/agents/pool';
import { nullLogger } from '../src/common/log';
import { SessionsRepo } from '../src/db/sessionsRepo';
import { Store } from '../src/db/store';
import { SessionChatResolver } from '../src/tasks/chatResolver';
import { Dispatcher, type TaskTurnRunner } from '../src/tasks/dispatcher';
import { TaskTurnAdapter } from '../src/tasks/taskTurnAdapter';
import { TurnRunner } from '../src/tasks/turnRunner';
import { WorktreeService } from '../src/worktrees/worktreeService';
import { makeRepo } from './agentBench';
import { log, nowMs, round, summary } from './stats';

const wasmPath = path.resolve(__dirname, '..', '..', 'node_modules', 'sql.js', 'dist', 'sql-wasm.wasm');
const agentScript = path.resolve(__dirname, '..', 'test', 'fixtures', 'acpAgent.js');
const tasks = Math.max(1, Number(process.env.BENCH_TASKS ?? 200));
const block = Math.max(1, Number(process.env.BENCH_TASK_BLOCK ?? 20));

export const targets = { withAgentMeanRatio: 1.25 } as const;

function definition(): AgentDefinition {
	return { id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: {} };
}

/** Runs `direct` and `dispatched` in interleaved blocks of `block`, `tasks` times each; times in ms. */
async function interleaved(direct: () => Promise<void>, dispatched: () => Promise<void>): Promise<{ direct: number[]; dispatched: number[] }> {
	const out = { direct: [] as number[], dispatched: [] as number[] };
	while (out.direct.length < tasks) {
		for (const [side, fn] of [['direct', direct], ['dispatched', dispatched]] as const) {
			for (let i = 0; i < block && out[side].length < tasks; i++) {
				const t0 = nowMs();
				await fn();
				out[side].push(nowMs() - t0);
			}
		}
	}
	return out;
}

function compare(samples: { direct: number[]; dispatched: number[] }): Record<string, unknown> {
	const direct = summary(samples.direct);
	const dispatched = summary(samples.dispatched);
	return { direct, dispatched, overheadPerTaskMs: round(dispatched.mean - direct.mean), meanRatio: round(dispatched.mean / direct.mean, 2), p50Ratio: round(dispatched.p50 / direct.p50, 2) };
}

export async function runTaskBench(): Promise<Record<string, unknown>> {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-bench-tasks-'));
	const store = await Store.open({ dir: path.join(root, 'state'), wasmPath, logger: nullLogger, owner: 'bench' });
	const broker = new PermissionBroker({ default: 'allow', timeoutMs: 1000 }, nullLogger);
	const pool = new AgentPool({ store, logger: nullLogger, backends: { acp: new AcpBackend({ logger: nullLogger }) }, definitions: () => [definition()], permissions: broker });
	const turns = new TurnRunner({ store, pool, logger: nullLogger });
	const worktrees = new WorktreeService(store, nullLogger, { root: path.join(root, 'worktrees') });
	const sessions = new SessionsRepo(store);
	const dispatchers: Dispatcher[] = [];
	try {
		const { session } = await worktrees.createSession({ repo: makeRepo(path.join(root, 'repo')), title: 'bench' });
		const chats = Array.from({ length: 8 }, () => sessions.createChat({ sessionId: session.id, agent: 'scripted' }).id);
		const chat = chats[0]!;
		const adapter = new TaskTurnAdapter(turns, store);
		const dispatcherWith = async (runner: TaskTurnRunner): Promise<Dispatcher> => {
			const d = new Dispatcher({ store, logger: nullLogger, runner, chats: new SessionChatResolver(store, worktrees, nullLogger), maxConcurrent: 1, maxPerWorktree: 1 });
			dispatchers.push(d);
			await d.start();
			return d;
		};
		const input = { text: 'say ok' };
		const signal = new AbortController().signal;

		/** The runner called directly against a task through a dispatcher over it, interleaved; then that dispatcher stops (one per store, as in the product). */
		const versus = async (runner: TaskTurnRunner): Promise<Record<string, unknown>> => {
			const dispatcher = await dispatcherWith(runner);
			const result = compare(
				await interleaved(
					async () => {
						await runner.runTurn(chat, 'scripted', input, { signal });
					},
					async () => {
						const t = await dispatcher.add({ creator: 'generic', agent: 'scripted', chatId: chat, input });
						await dispatcher.whenEnded(t.id);
					},
				),
			);
			await dispatcher.stop();
			return result;
		};

		log(`tasks: ${tasks} short turns direct and through the dispatcher`);
		await adapter.runTurn(chat, 'scripted', input, { signal }); // starts the agent
		const withAgent = await versus(adapter);
		log(`tasks: ${tasks} no-op turns direct and through the dispatcher`);
		const noop: TaskTurnRunner = { runTurn: () => Promise.resolve({ status: 'done', summary: 'ok' }) };
		const bookkeeping = await versus(noop);

		log(`tasks: a queue of ${tasks} no-op tasks over ${chats.length} chats`);
		const queued = new Dispatcher({ store, logger: nullLogger, runner: noop, chats: new SessionChatResolver(store, worktrees, nullLogger), maxConcurrent: 4, maxPerWorktree: 4 });
		dispatchers.push(queued);
		for (let i = 0; i < tasks; i++) {
			await queued.add({ creator: 'generic', agent: 'scripted', chatId: chats[i % chats.length]!, input });
		}
		const t0 = nowMs();
		await queued.start();
		await queued.whenIdle();
		const drainMs = nowMs() - t0;

		const ratio = withAgent.meanRatio as number;
		return {
			tasks,
			block,
			withAgent,
			bookkeeping,
			queueOf: { tasks, chats: chats.length, drainMs: round(drainMs, 1), perTaskMs: round(drainMs / tasks) },
			targets,
			met: { withAgentMeanRatio: ratio <= targets.withAgentMeanRatio },
		};
	} finally {
		for (const d of dispatchers) {
			await d.stop();
			d.dispose();
		}
		await turns.shutdown();
		turns.dispose();
		await pool.shutdown();
		broker.dispose();
		await store.close();
		fs.rmSync(root, { recursive: true, force: true });
	}
}
