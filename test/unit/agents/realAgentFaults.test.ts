import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mergeDefinitions, type AgentDefinition } from '../../../src/agents/definitions';
import { AgentSessionsRepo } from '../../../src/db/agentSessionsRepo';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import type { AgentEvent } from '../../../src/protocol/agentEvents';
import type { TurnOutcome } from '../../../src/tasks/turnRunner';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { startFaultProxy, type Fault, type FaultProxy } from '../../fixtures/faultProxy';
import { startFakeAnthropic, startFakeGemini, startFakeResponses, type FakeServer, type FakeServerOptions, type RecordedRequest } from '../../fixtures/modelServers';
import { gitEnv } from '../gitRepo';
import { waitFor } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';
import { agentsOwnTemp, claudeDefinition, codexDefinition, geminiInstalled, geminiOverride, harness, installed, skipUnlessInstalled, withPool, type Harness } from './realAgentRig';

/**
 * The real agent CLIs (see realAgents.test.ts) under the faults a user meets: the agent process killed in the
 * middle of a turn, a model connection that hangs, a cancel while a permission request waits. The scripted
 * model server sits behind a fault proxy (test/fixtures/faultProxy.ts) that breaks chosen requests.
 */

/** The processes descending from this one whose command line contains `needle`. */
function descendantsRunning(needle: string): number[] {
	const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid=,args='], { encoding: 'utf8' })
		.split('\n')
		.map((l) => /^\s*(\d+)\s+(\d+)\s+(.*)$/.exec(l))
		.filter((m): m is RegExpExecArray => !!m)
		.map((m) => ({ pid: Number(m[1]), ppid: Number(m[2]), args: m[3]! }));
	const mine = new Set([process.pid]);
	for (let grew = true; grew; ) {
		grew = false;
		for (const r of rows) {
			if (!mine.has(r.pid) && mine.has(r.ppid)) {
				mine.add(r.pid);
				grew = true;
			}
		}
	}
	return rows.filter((r) => r.pid !== process.pid && mine.has(r.pid) && r.args.includes(needle)).map((r) => r.pid);
}

const carries = (r: RecordedRequest, text: string): boolean => JSON.stringify(r.body ?? '').includes(text);

interface Case {
	agent: string;
	start: (opts: FakeServerOptions) => Promise<FakeServer>;
	define: (h: Harness, url: string) => AgentDefinition;
	/** What the agent's process is called on its command line. */
	process: string;
	/** The path of the model's main requests. */
	modelPath: RegExp;
}

const claude: Case = { agent: 'claude', start: startFakeAnthropic, define: claudeDefinition, process: 'claude-agent-acp', modelPath: /^\/v1\/messages$/ };
const codex: Case = { agent: 'codex', start: startFakeResponses, define: codexDefinition, process: 'codex-acp', modelPath: /^\/v1\/responses$/ };
const gemini: Case = {
	agent: 'gemini',
	start: startFakeGemini,
	define: (h, url) => mergeDefinitions([geminiOverride(h, url)]).find((d) => d.id === 'gemini')!,
	process: 'gemini',
	modelPath: /:streamGenerateContent$/,
};

interface ChatContext {
	proxy: FaultProxy;
	worktree: string;
	chat: string;
	ctx: Parameters<Parameters<typeof withPool>[3]>[0];
	run: (text: string) => Promise<TurnOutcome>;
	events: AgentEvent[];
}

/** One chat of `c`'s agent in a new session, its model behind a fault proxy that `decide`s each request's fate. */
async function withChat(c: Case, decide: (req: RecordedRequest) => Fault, body: (ctx: ChatContext) => Promise<void>, policy: 'allow' | 'ask' = 'allow', options: { silenceTimeoutMs?: number; permissionTimeoutMs?: number; shell?: FakeServerOptions['shell'] } = {}): Promise<void> {
	const h = harness();
	let worktree = '';
	const server = await c.start({ targetFile: () => path.join(worktree, 'hello.txt'), content: `hello from ${c.agent}\n`, ...(options.shell ? { shell: options.shell } : {}) });
	const proxy = await startFaultProxy(server, decide);
	await withPool(
		h,
		proxy,
		c.define(h, proxy.url),
		async (ctx) => {
			const created = await new WorktreeService(ctx.store, ctx.logger, { root: path.join(h.dir, 'worktrees'), env: gitEnv(h.dir) }).createSession({ repo: h.repo, title: `${c.agent} faults` });
			worktree = created.worktree.path;
			const chat = new SessionsRepo(ctx.store).createChat({ sessionId: created.session.id, agent: c.agent }).id;
			const events: AgentEvent[] = [];
			ctx.turns.onDidEvent((e) => events.push(e.event));
			await body({ proxy, worktree, chat, ctx, events, run: (text) => ctx.turns.runTurn(chat, c.agent, { text }) });
		},
		policy,
		options,
	);
}

suite('agents: real agents under faults, offline against scripted model servers', function () {
	this.timeout(180_000);
	checkNoLeaksAfterSuite({ othersTemp: agentsOwnTemp });
	suiteSetup(skipUnlessInstalled(installed, 'The real agents are'));

	for (const c of [claude, codex]) {
		test(`${c.agent}: killed (SIGKILL) in the middle of a turn; the turn ends interrupted at once, the crash is reported, and the next message goes on with the chat's context`, async () => {
			let killed = false;
			await withChat(
				c,
				(req) => (!killed && carries(req, 'MARKER-KILL') ? 'hang' : 'pass'),
				async ({ proxy, chat, ctx, events, run }) => {
					const first = await run('Create hello.txt saying hello');
					assert.equal(first.status, 'done', first.result.error);
					const second = run('Say something (MARKER-KILL)');
					await waitFor(() => proxy.hanging > 0, 'the model request of the second turn', 60_000);
					const pids = descendantsRunning(c.process);
					assert.ok(pids.length > 0, `${c.process} runs`);
					killed = true;
					const t0 = Date.now();
					process.kill(pids[0]!, 'SIGKILL');
					const cut = await second;
					assert.ok(Date.now() - t0 < 10_000, 'the turn ended soon after the kill');
					assert.equal(cut.status, 'interrupted');
					assert.match(cut.result.error ?? '', /agent process exited .*SIGKILL/);
					assert.ok(events.some((e) => e.type === 'notice' && /stopped unexpectedly/.test(e.title)), 'the crash is said in the chat');
					assert.equal(new AgentSessionsRepo(ctx.store).get(chat, c.agent)?.status, 'crashed');

					const before = proxy.seen.length;
					const third = await run('Third message MARKER-THIRD');
					assert.equal(third.status, 'done', third.result.error);
					const asked = proxy.seen.slice(before).filter((r) => c.modelPath.test(r.path) && carries(r, 'MARKER-THIRD')).pop();
					assert.ok(asked && carries(asked, 'Create hello.txt saying hello'), 'the restarted agent has the first message in its context');
					assert.ok(!new TranscriptRepo(ctx.store).listMessages(third.turn.id).some((m) => m.kind === 'notice' && m.content.includes('starts fresh')), 'no context reset');
					const pending = new PendingChangesRepo(ctx.store).listForChat(chat);
					assert.deepEqual(
						pending.filter((p) => p.turn_id === first.turn.id).map((p) => [p.path, p.kind]),
						[['hello.txt', 'add']],
						"the first turn's edit keeps its attribution",
					);
					assert.deepEqual(pending.filter((p) => p.turn_id === cut.turn.id), [], 'the cut turn wrote nothing');
				},
			);
		});
	}

	test('claude (asking mode): cancelled while its shell command runs; the command is killed, the turn ends cancelled at once, what the command wrote is that turn\'s, and the chat goes on', async () => {
		const command = 'echo started > started.txt; sleep 37';
		await withChat(
			{ ...claude, define: (h, url) => ({ ...claudeDefinition(h, url), defaultMode: 'default' }) },
			() => 'pass',
			async ({ chat, run, ctx }) => {
				const cut = run('Run the slow command MARKER-BASH');
				await waitFor(() => descendantsRunning('sleep 37').length > 0, 'the command runs', 60_000);
				const t0 = Date.now();
				await ctx.turns.cancel(chat, 'claude');
				const cancelled = await cut;
				assert.ok(Date.now() - t0 < 10_000, 'the turn ended soon after the cancel');
				assert.equal(cancelled.status, 'cancelled');
				await waitFor(() => descendantsRunning('sleep 37').length === 0, 'the command is gone', 5_000);
				const tool = new TranscriptRepo(ctx.store).listMessages(cancelled.turn.id).find((m) => m.kind === 'tool_call');
				assert.ok(tool && (JSON.parse(tool.content) as { kind?: string }).kind === 'execute', 'the command is in the transcript');
				assert.deepEqual(
					new PendingChangesRepo(ctx.store).listForChat(chat).map((p) => [p.path, p.turn_id, p.source]),
					[['started.txt', cancelled.turn.id, 'watcher']],
					'what the command wrote before the cancel is the cancelled turn\'s',
				);
				const next = await run('Say ok');
				assert.equal(next.status, 'done', next.result.error);
			},
			'allow',
			{ shell: { marker: 'MARKER-BASH', command } },
		);
	});

	test('claude: a model connection that hangs ends the turn after the silence limit, saying so; the next message works in the same chat', async () => {
		let broken = true;
		await withChat(
			claude,
			(req) => (broken && claude.modelPath.test(req.path) && carries(req, 'MARKER-HANG') ? 'hang' : 'pass'),
			async ({ chat, run, ctx }) => {
				const t0 = Date.now();
				const hung = await run('Say something (MARKER-HANG)');
				broken = false;
				assert.ok(Date.now() - t0 < 45_000, 'stopped by the silence watchdog, not left running');
				assert.equal(hung.status, 'error');
				assert.match(hung.result.error ?? '', /sent nothing for 8 seconds/);
				const next = await run('Create hello.txt saying hello');
				assert.equal(next.status, 'done', next.result.error);
				assert.deepEqual(new PendingChangesRepo(ctx.store).listForChat(chat).map((p) => [p.path, p.turn_id]), [['hello.txt', next.turn.id]]);
			},
			'allow',
			{ silenceTimeoutMs: 8_000 },
		);
	});
});

suite('agents: the real Gemini CLI under faults', function () {
	this.timeout(180_000);
	checkNoLeaksAfterSuite({ othersTemp: agentsOwnTemp });
	suiteSetup(skipUnlessInstalled(geminiInstalled, 'The Gemini CLI is'));

	test('a cancel while a permission request waits ends the turn cancelled, writes nothing, and the next message asks again and writes, attributed to its own turn', async () => {
		await withChat(
			gemini,
			() => 'pass',
			async ({ chat, run, ctx, worktree }) => {
				const asked = new Promise<void>((resolve) => ctx.broker.onDidRequest(() => resolve()));
				const first = run('Create hello.txt saying hello');
				await asked;
				await ctx.turns.cancel(chat, 'gemini');
				const cancelled = await first;
				assert.equal(cancelled.status, 'cancelled');
				const permissions = new TranscriptRepo(ctx.store)
					.listMessages(cancelled.turn.id)
					.filter((m) => m.kind === 'permission')
					.map((m) => (JSON.parse(m.content) as { decision?: { outcome: string } }).decision?.outcome);
				assert.deepEqual(permissions, ['cancelled'], 'the card is settled as cancelled');
				assert.equal(ctx.broker.pending.length, 0);
				await new Promise((r) => setTimeout(r, 1000));
				assert.ok(!fs.existsSync(path.join(worktree, 'hello.txt')), 'nothing was written');

				const allow = ctx.broker.onDidRequest((r) => void ctx.broker.decide(r.id, r.options.find((o) => o.kind === 'allow_once')!.optionId));
				const next = await run('Create hello.txt saying hello');
				allow.dispose();
				assert.equal(next.status, 'done', next.result.error);
				assert.equal(fs.readFileSync(path.join(worktree, 'hello.txt'), 'utf8'), 'hello from gemini\n');
				assert.deepEqual(new PendingChangesRepo(ctx.store).listForChat(chat).map((p) => [p.path, p.turn_id]), [['hello.txt', next.turn.id]]);
			},
			'ask',
			{ permissionTimeoutMs: 60_000 },
		);
	});
});
