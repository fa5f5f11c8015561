/**
 * bench/agents: the event pipeline (agent → pool → store → subscriber), its event-loop delay against the
 * same host idle and against hosts that leave the same stream unread, only drain it or only parse it; cold
 * start against a minimal direct SDK client talking to the same agent in the same run, and memory per idle
 * pooled session.
 */
import * as acp from '@agentclientprotocol/sdk';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AgentDefinition } from '../src/agents/definitions';
import { PermissionBroker } from '../src/agents/permissions';
import { nullLogger } from '../src/common/log';
import { Store } from '../src/db/store';
import { TranscriptRepo } from '../src/db/transcriptRepo';
import { Core } from '../src/tasks/core';
import { log, nowMs, percentile, round } from './stats';

const wasmPath = path.resolve(__dirname, '..', '..', 'node_modules', 'sql.js', 'dist', 'sql-wasm.wasm');
const agentScript = path.resolve(__dirname, '..', 'test', 'fixtures', 'acpAgent.js');
const chunks = Number(process.env.BENCH_CHUNKS ?? 100_000);
const startRuns = Number(process.env.BENCH_START_RUNS ?? 7);
const idleSessions = Number(process.env.BENCH_IDLE_SESSIONS ?? 8);

function definition(): AgentDefinition {
	return { id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: {} };
}

export function makeRepo(dir: string): string {
	fs.mkdirSync(dir, { recursive: true });
	const env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: dir };
	execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: dir, env });
	fs.writeFileSync(path.join(dir, 'README.md'), '# bench\n');
	execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', 'add', '-A'], { cwd: dir, env });
	execFileSync('git', ['-c', 'user.name=b', '-c', 'user.email=b@b', 'commit', '-q', '-m', 'init'], { cwd: dir, env });
	return dir;
}

/** The core both roots build (store, worktrees, pool, turn runner), over a real repository and one session. */
async function withPool<T>(root: string, fn: (core: Core, newChat: () => string) => Promise<T>): Promise<T> {
	const repo = makeRepo(path.join(root, `repo-${Math.random().toString(36).slice(2)}`));
	const store = await Store.open({ dir: path.join(root, `state-${Math.random().toString(36).slice(2)}`), wasmPath, logger: nullLogger, owner: 'bench' });
	const broker = new PermissionBroker({ default: 'allow', timeoutMs: 1000 }, nullLogger);
	const core = new Core(store, { logger: nullLogger, owner: 'bench', interruptedTurnReason: 'bench', definitions: () => [definition()], permissions: broker, worktrees: { root: path.join(root, 'worktrees') } });
	try {
		// Agents work only in a session's worktree, so the bench gets a real one.
		const { session } = await core.worktrees.createSession({ repo, title: 'bench' });
		return await fn(core, () => core.sessions.createChat({ sessionId: session.id, agent: 'scripted' }).id);
	} finally {
		await core.shutdown();
		broker.dispose();
	}
}

async function pipeline(root: string): Promise<Record<string, unknown>> {
	log(`agents: pipeline, ${chunks} chunks`);
	return withPool(root, async ({ pool, turns, store }, newChat) => {
		const chat = newChat();
		await pool.ensure(chat, 'scripted');
		let received = 0;
		const sub = turns.onDidEvent((e) => {
			if (e.event.type === 'text') {
				received++;
			}
		});
		// The same host idle first (agent started, nothing streaming), for as long as the stream will take
		// (estimated from a short warm-up stream), as the baseline for the event-loop delay while streaming.
		const w0 = nowMs();
		await turns.runTurn(chat, 'scripted', { text: `stream ${Math.max(1000, Math.floor(chunks / 20))}` });
		const idleMs = Math.min(10_000, Math.max(1000, (nowMs() - w0) * 20));
		const idle = monitorEventLoopDelay({ resolution: 1 });
		idle.enable();
		await new Promise((r) => setTimeout(r, idleMs));
		idle.disable();
		received = 0;
		const delay = monitorEventLoopDelay({ resolution: 1 });
		delay.enable();
		const t0 = nowMs();
		const outcome = await turns.runTurn(chat, 'scripted', { text: `stream ${chunks}` });
		const ms = nowMs() - t0;
		delay.disable();
		sub.dispose();
		const stored = new TranscriptRepo(store)
			.listMessages(outcome.turn.id)
			.filter((m) => m.kind === 'text')
			.reduce((n, m) => n + (JSON.parse(m.content) as { text: string }).text.split(' ').length - 1, 0);
		const p99 = delay.percentile(99) / 1e6;
		const idleP99 = idle.percentile(99) / 1e6;
		log(`agents: the same stream unread, only drained, only parsed, 3 runs each`);
		const unread = await streamFloorP99('unread');
		const drained = await streamFloorP99('drain');
		const floor = await streamFloorP99('parse');
		return {
			chunks,
			received,
			storedChunks: stored,
			ms: round(ms, 1),
			eventsPerSecond: Math.round((received / ms) * 1000),
			eventLoopDelayP99Ms: round(p99, 2),
			eventLoopDelayMaxMs: round(delay.max / 1e6, 2),
			idleEventLoopDelayP99Ms: round(idleP99, 2),
			idleMs: round(idleMs, 0),
			streamingOverIdleP99: round(p99 / idleP99, 2),
			unreadStreamP99Ms: unread.p99Ms,
			unreadStreamOverIdleP99: round(unread.p99Ms / idleP99, 2),
			drainOnlyFloorP99Ms: drained.p99Ms,
			drainOnlyOverIdleP99: round(drained.p99Ms / idleP99, 2),
			parseOnlyFloorP99Ms: floor.p99Ms,
			parseOnlyOverIdleP99: round(floor.p99Ms / idleP99, 2),
			parseOnlyFloorRuns: floor.runs,
			streamingOverParseOnlyP99: round(p99 / floor.p99Ms, 2),
			targets: { streamingOverIdleP99: 3, eventLoopDelayP99Ms: 20 },
			met: { within3xIdle: p99 / idleP99 <= 3, under20ms: p99 < 20 },
			journalWrites: store.lastSeq,
		};
	});
}

/** What the scripted agent's `stream <n>` writes: the same lines, the same way (a write per line, a pause per 1000). */
const streamWriter = `const n = Number(process.argv[1]); let i = 0;
function go() {
	for (let k = 0; k < 1000 && i < n; k++, i++) {
		process.stdout.write('{"jsonrpc":"2.0","method":"session/update","params":{"sessionId":"bench-session","update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"w' + (i % 10) + ' "}}}}\\n');
	}
	if (i < n) setImmediate(go);
}
go();`;

/** What a host reading the stream does in a floor run (see `streamFloorP99`). */
type FloorMode = 'unread' | 'drain' | 'parse';

/**
 * Floors for the pipeline's event-loop delay, each the median of three runs of the same stream:
 * - `unread`: the host does nothing while the same writer streams into /dev/null (the machine as loaded as
 *   while streaming, the host thread idle);
 * - `drain`: the host reads the pipe and drops the bytes;
 * - `parse`: the least a host can do with the stream: read the lines and JSON.parse each, nothing else (no
 *   slicing, no events, no store).
 * The `parse` p99 is what this machine gives any reader of such a stream, so the pipeline's p99 over it is
 * the share of the pipeline's own work.
 */
async function streamFloorP99(mode: FloorMode): Promise<{ p99Ms: number; runs: number[] }> {
	const runs: number[] = [];
	for (let r = 0; r < 3; r++) {
		const delay = monitorEventLoopDelay({ resolution: 1 });
		delay.enable();
		const child = spawn(process.execPath, ['-e', streamWriter, String(chunks)], { stdio: ['ignore', mode === 'unread' ? 'ignore' : 'pipe', 'inherit'] });
		let pending = '';
		let parsed = 0;
		let bytes = 0;
		if (mode === 'drain') {
			child.stdout!.on('data', (data: Buffer) => {
				bytes += data.length;
			});
		} else if (mode === 'parse') {
			child.stdout!.setEncoding('utf8');
			child.stdout!.on('data', (text: string) => {
				const s = pending + text;
				let start = 0;
				for (let nl = s.indexOf('\n'); nl !== -1; nl = s.indexOf('\n', start)) {
					const m = JSON.parse(s.slice(start, nl)) as { method?: string };
					parsed += m.method === 'session/update' ? 1 : 0;
					start = nl + 1;
				}
				pending = s.slice(start);
			});
		}
		const code = await new Promise<number | null>((resolve) => child.once('close', (c: number | null) => resolve(c)));
		delay.disable();
		if (code !== 0 || (mode === 'parse' && parsed !== chunks) || (mode === 'drain' && bytes === 0)) {
			throw new Error(`the ${mode} floor's stream failed (exit ${code}, ${parsed} lines parsed, ${bytes} bytes drained, ${chunks} written)`);
		}
		runs.push(round(delay.percentile(99) / 1e6, 2));
	}
	return { p99Ms: percentile(runs, 50), runs };
}

/** The baseline: the least a client can do to get a first event, with the SDK, no store, no pool. */
async function directFirstEvent(cwd: string): Promise<number> {
	const t0 = nowMs();
	const child = spawn(process.execPath, [agentScript], { cwd, stdio: ['pipe', 'pipe', 'inherit'] });
	let first = 0;
	const firstEvent = new Promise<void>((resolve) => {
		const conn = acp
			.client({ name: 'baseline' })
			.onNotification(acp.methods.client.session.update, () => {
				if (!first) {
					first = nowMs() - t0;
					resolve();
				}
			})
			.connect(acp.ndJsonStream(Writable.toWeb(child.stdin) as WritableStream<Uint8Array>, Readable.toWeb(child.stdout) as ReadableStream<Uint8Array>));
		void (async () => {
			await conn.agent.request(acp.methods.agent.initialize, { protocolVersion: acp.PROTOCOL_VERSION, clientCapabilities: { fs: { readTextFile: true, writeTextFile: true }, terminal: true } });
			const s = await conn.agent.request(acp.methods.agent.session.new, { cwd, mcpServers: [] });
			await conn.agent.request(acp.methods.agent.session.prompt, { sessionId: (s as { sessionId: string }).sessionId, prompt: [{ type: 'text', text: 'say hi' }] });
			conn.close();
		})().catch(() => undefined); // the child is killed once the first event is in
	});
	await firstEvent;
	child.kill('SIGKILL');
	await new Promise((r) => child.once('exit', r));
	return first;
}

async function poolFirstEvent(root: string): Promise<number> {
	return withPool(root, async ({ turns }, newChat) => {
		const chat = newChat();
		let first = 0;
		const t0 = nowMs();
		const got = new Promise<void>((resolve) => {
			const sub = turns.onDidEvent((e) => {
				if (e.event.type === 'text' && !first) {
					first = nowMs() - t0;
					sub.dispose();
					resolve();
				}
			});
		});
		const turn = turns.runTurn(chat, 'scripted', { text: 'say hi' });
		await got;
		await turn;
		return first;
	});
}

async function startup(root: string): Promise<Record<string, unknown>> {
	log(`agents: cold start, ${startRuns} runs each`);
	const cwd = makeRepo(path.join(root, 'direct'));
	await directFirstEvent(cwd); // warm the file cache for both
	const direct: number[] = [];
	const pooled: number[] = [];
	for (let i = 0; i < startRuns; i++) {
		direct.push(await directFirstEvent(cwd));
		pooled.push(await poolFirstEvent(root));
	}
	const d = percentile(direct, 50);
	const p = percentile(pooled, 50);
	return { directMedianMs: round(d, 1), poolMedianMs: round(p, 1), ratio: round(p / d, 3), target: 1.15, withinTarget: p / d <= 1.15, direct: direct.map((x) => round(x, 1)), pool: pooled.map((x) => round(x, 1)) };
}

function rssKb(pid: number): number {
	const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
	return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
}

async function memory(root: string): Promise<Record<string, unknown>> {
	log(`agents: memory of ${idleSessions} idle sessions`);
	return withPool(root, async ({ pool }, newChat) => {
		global.gc?.();
		const heap0 = process.memoryUsage().heapUsed;
		const handles = [];
		for (let i = 0; i < idleSessions; i++) {
			handles.push(await pool.ensure(newChat(), 'scripted'));
		}
		await new Promise((r) => setTimeout(r, 300));
		global.gc?.();
		const heapPer = (process.memoryUsage().heapUsed - heap0) / idleSessions;
		const pids = handles.map((h) => Number(/^scripted-(\d+)-/.exec(h.backendSessionId)?.[1]));
		const childRss = pids.map(rssKb);
		return {
			sessions: idleSessions,
			hostHeapPerSessionKb: Math.round(heapPer / 1024),
			agentProcessRssKbMedian: percentile(childRss, 50),
			note: 'agentProcessRss is the scripted agent (Node + the ACP SDK); real agents weigh what they weigh. hostHeap is what the pool keeps per session in the extension host.',
		};
	});
}

export async function runAgentBench(): Promise<Record<string, unknown>> {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-bench-agents-'));
	try {
		return { pipeline: await pipeline(root), startup: await startup(root), memory: await memory(root) };
	} finally {
		fs.rmSync(root, { recursive: true, force: true });
	}
}
