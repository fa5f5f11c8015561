import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../../../src/agents/definitions';
import type { AgentEvent } from '../../../src/protocol/agentEvents';
import { PermissionBroker, type PermissionPolicySettings } from '../../../src/agents/permissions';
import { AgentPool, type AgentPoolOptions } from '../../../src/agents/pool';
import { AgentSessionsRepo } from '../../../src/db/agentSessionsRepo';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import type { Store } from '../../../src/db/store';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv, makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, repoRoot, tempDir, waitFor } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');

function pidOf(backendSessionId: string): number {
	const m = /^scripted-(\d+)-/.exec(backendSessionId);
	assert.ok(m, `unexpected session id ${backendSessionId}`);
	return Number(m[1]);
}

function alive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

suite('agents/pool with a real ACP agent process', function () {
	this.timeout(30_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	let repo: string;
	/** The real worktree of the test's session: where agents work. */
	let work: string;
	let sessionId: string;
	let store: Store;
	let sessions: SessionsRepo;
	let pools: AgentPool[];
	let brokers: PermissionBroker[];
	let agentEnv: Record<string, string>;
	let logger: MemoryLogger;

	function definitions(extraEnv: Record<string, string> = {}): AgentDefinition[] {
		return [{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: { ...agentEnv, ...extraEnv } }];
	}

	function makePool(options: Partial<AgentPoolOptions> & { permissionSettings?: PermissionPolicySettings; defs?: () => AgentDefinition[] } = {}): AgentPool {
		const broker = new PermissionBroker(options.permissionSettings ?? { default: 'allow', timeoutMs: 2000 }, logger);
		brokers.push(broker);
		const defs = options.defs ?? (() => definitions());
		const pool = new AgentPool({
			store,
			logger,
			backends: { acp: new AcpBackend({ logger, startTimeoutMs: 5000, cancelGraceMs: 1000, killGraceMs: 1000 }) },
			definitions: defs,
			permissions: broker,
			flushMs: 20,
			...options,
		});
		pools.push(pool);
		return pool;
	}

	/** A new tab in the test's session (every chat works in the session's real worktree). */
	function newChat(): string {
		return sessions.createChat({ sessionId, agent: 'scripted' }).id;
	}

	function messages(turnId: string): { kind: string; content: Record<string, unknown> }[] {
		return new TranscriptRepo(store).listMessages(turnId).map((m) => ({ kind: m.kind, content: JSON.parse(m.content) as Record<string, unknown> }));
	}

	function agentText(turnId: string): string {
		return messages(turnId)
			.filter((m) => m.kind === 'text')
			.map((m) => String(m.content.text))
			.join('');
	}

	setup(async () => {
		dir = tempDir('agent-tabs-pool-');
		repo = makeRepo(path.join(dir, 'repo'));
		agentEnv = { SCRIPTED_AGENT_STATE_DIR: path.join(dir, 'agent-state') };
		logger = new MemoryLogger();
		store = await openStore(path.join(dir, 'state'));
		sessions = new SessionsRepo(store);
		const created = await new WorktreeService(store, logger, { root: path.join(dir, 'worktrees'), env: gitEnv(dir) }).createSession({ repo, title: 't' });
		work = created.worktree.path;
		sessionId = created.session.id;
		pools = [];
		brokers = [];
	});

	teardown(async () => {
		for (const p of pools) {
			await p.shutdown();
		}
		for (const b of brokers) {
			b.dispose();
		}
		await store.close();
		removeDir(dir);
	});

	test('concurrent callers for one key share one start; two chats are two contexts', async () => {
		const pool = makePool();
		const a = newChat();
		const b = newChat();
		const handles = await Promise.all([pool.ensure(a, 'scripted'), pool.ensure(a, 'scripted'), pool.ensure(a, 'scripted'), pool.ensure(b, 'scripted')]);
		assert.equal(handles[0], handles[1]);
		assert.equal(handles[1], handles[2]);
		assert.notEqual(handles[0], handles[3]);
		assert.notEqual(pidOf(handles[0]!.backendSessionId), pidOf(handles[3]!.backendSessionId), 'each chat has its own agent process');
		assert.equal(pool.size, 2);
		const rows = new AgentSessionsRepo(store).list();
		assert.deepEqual(rows.map((r) => [r.chat_id, r.status, r.backend_session_id]).sort(), [
			[a, 'ready', handles[0]!.backendSessionId],
			[b, 'ready', handles[3]!.backendSessionId],
		].sort());
	});

	test('a turn streams, is persisted folded into messages, and its fs write is attributed', async () => {
		const pool = makePool();
		const chat = newChat();
		const seen: AgentEvent[] = [];
		const sub = pool.onDidEvent((e) => e.chatId === chat && seen.push(e.event));
		const outcome = await pool.prompt(chat, 'scripted', { text: 'think pondering\nsay Hello\nsay  world\nplan read|write\nwrite hello.txt hi there\\n' });
		sub.dispose();
		assert.equal(outcome.status, 'done');
		assert.equal(outcome.result.stopReason, 'end_turn');
		assert.equal(fs.readFileSync(path.join(work, 'hello.txt'), 'utf8'), 'hi there\n');
		const kinds = messages(outcome.turn.id).map((m) => m.kind);
		assert.deepEqual(kinds.slice(0, 1), ['user']);
		for (const k of ['reasoning', 'text', 'plan', 'file_edit']) {
			assert.ok(kinds.includes(k), `transcript has ${k}: ${kinds.join(',')}`);
		}
		assert.match(agentText(outcome.turn.id), /Hello world/);
		const pending = new PendingChangesRepo(store).listForChat(chat);
		assert.equal(pending.length, 1);
		assert.deepEqual({ path: pending[0]!.path, agent: pending[0]!.agent, turn: pending[0]!.turn_id, kind: pending[0]!.kind, source: pending[0]!.source }, {
			path: 'hello.txt', agent: 'scripted', turn: outcome.turn.id, kind: 'add', source: 'protocol',
		});
		assert.ok(seen.some((e) => e.type === 'text'));
	});

	test('an agent that writes to disk itself is caught by the worktree diff', async () => {
		const pool = makePool();
		const chat = newChat();
		fs.writeFileSync(path.join(work, 'README.md'), '# dirty before the turn\n');
		const outcome = await pool.prompt(chat, 'scripted', { text: 'diskwrite src/direct.ts export const x = 1;\\n' });
		assert.equal(outcome.status, 'done');
		const pending = new PendingChangesRepo(store).listForChat(chat);
		assert.deepEqual(pending.map((p) => [p.path, p.kind, p.source, p.shared]), [['src/direct.ts', 'add', 'watcher', 0]], 'the file dirty before the turn is not blamed on it');
	});

	test('when two turns overlap in one worktree, a write only the diff saw is marked shared', async () => {
		const pool = makePool();
		const s = { id: sessionId };
		const a = newChat();
		const b = newChat();
		await Promise.all([pool.ensure(a, 'scripted'), pool.ensure(b, 'scripted')]);
		const long = pool.prompt(a, 'scripted', { text: 'sleep 600\ndiskwrite from-a.txt a' });
		await waitFor(() => pool.isRunning(a, 'scripted'));
		const short = await pool.prompt(b, 'scripted', { text: 'write from-b.txt b' });
		await long;
		const rows = new PendingChangesRepo(store).listForSession(s.id).map((p) => [p.path, p.chat_id, p.source, p.shared]);
		assert.deepEqual(rows.sort(), [
			['from-a.txt', a, 'watcher', 1],
			['from-b.txt', b, 'protocol', 0],
		].sort(), 'the protocol-reported write is attributed exactly; the one only seen on disk is shared');
		assert.equal(short.status, 'done');
	});

	test('modes, models (config option or the legacy method) and config options reach the agent', async () => {
		const pool = makePool();
		const chat = newChat();
		const handle = await pool.ensure(chat, 'scripted');
		const seen: string[] = [];
		const sub = pool.onDidEvent((e) => seen.push(`${e.event.type}:${'modeId' in e.event ? e.event.modeId : 'modelId' in e.event ? e.event.modelId : ''}`));
		await handle.setMode!('plan');
		await handle.setModel!('large');
		await handle.setConfigOption!('model', 'small');
		sub.dispose();
		assert.deepEqual(seen, ['mode:plan', 'config:', 'model:large', 'config:']);

		const legacyPool = makePool({ defs: () => definitions({ SCRIPTED_AGENT_LEGACY_MODELS: '1' }) });
		const legacyChat = newChat();
		const legacy = await legacyPool.ensure(legacyChat, 'scripted');
		await legacy.setModel!('large');
		const outcome = await legacyPool.prompt(legacyChat, 'scripted', { text: 'legacycalls' });
		assert.match(agentText(outcome.turn.id), /legacy set_model calls: 1/);
	});

	test('writes outside the worktree are refused with a clear error, symlinks included', async () => {
		const pool = makePool();
		const chat = newChat();
		const outside = path.join(dir, 'outside');
		fs.mkdirSync(outside);
		fs.symlinkSync(outside, path.join(work, 'escape'));
		const outcome = await pool.prompt(chat, 'scripted', { text: `writeabs ${path.join(outside, 'a.txt')} nope\nwrite ../outside/b.txt nope\nwrite escape/c.txt nope` });
		const text = agentText(outcome.turn.id);
		assert.equal((text.match(/write error: .*outside this session's worktree/g) ?? []).length, 3, text);
		assert.deepEqual(fs.readdirSync(outside), []);
		assert.deepEqual(new PendingChangesRepo(store).listForChat(chat), []);
	});

	test('a diff shown before the permission request counts as an edit only once the tool call completes', async () => {
		const rejecting = makePool({ permissionSettings: { default: 'reject', timeoutMs: 2000 } });
		const rejectedChat = newChat();
		const rejected = await rejecting.prompt(rejectedChat, 'scripted', { text: 'propose proposed.txt maybe' });
		assert.equal(rejected.status, 'done', rejected.result.error);
		assert.ok(!fs.existsSync(path.join(work, 'proposed.txt')));
		assert.deepEqual(new PendingChangesRepo(store).listForChat(rejectedChat), [], 'a rejected proposal is not a change');
		assert.deepEqual(messages(rejected.turn.id).filter((m) => m.kind === 'file_edit'), []);

		const allowing = makePool();
		const allowedChat = newChat();
		const allowed = await allowing.prompt(allowedChat, 'scripted', { text: 'propose proposed.txt yes' });
		assert.equal(fs.readFileSync(path.join(work, 'proposed.txt'), 'utf8'), 'yes');
		const pending = new PendingChangesRepo(store).listForChat(allowedChat);
		assert.deepEqual(
			pending.map((p) => [p.path, p.kind, p.turn_id, p.source]),
			[['proposed.txt', 'add', allowed.turn.id, 'protocol']],
		);
	});

	test('a missing file reads as the spec\'s resource-not-found error, or as an empty text for agents that need it; reads stay confined either way', async () => {
		fs.writeFileSync(path.join(work, 'present.txt'), 'abc\n');
		fs.writeFileSync(path.join(dir, 'secret.txt'), 'secret\n');
		const reads = 'read present.txt\nread missing.txt\nread no-such-dir/missing.txt\nread ../secret.txt\nread ../no-such.txt';
		const answers = async (def: Partial<AgentDefinition>, env: Record<string, string> = {}): Promise<string[]> => {
			const pool = makePool({ defs: () => [{ ...definitions(env)[0]!, ...def }] });
			const outcome = await pool.prompt(newChat(), 'scripted', { text: reads });
			assert.equal(outcome.status, 'done', outcome.result.error);
			return agentText(outcome.turn.id).trim().split('\n');
		};
		const outside = [/^read error -32602: .*secret\.txt is outside this session's worktree/, /^read error -32602: .*no-such\.txt is outside this session's worktree/];
		const check = (lines: string[], missing: RegExp[]): void => {
			assert.equal(lines.length, 5, lines.join('\n'));
			[/^read 4 chars$/, ...missing, ...outside].forEach((re, i) => assert.match(lines[i]!, re));
		};
		const notFound = [/^read error -32002: Resource not found: .*missing\.txt$/, /^read error -32002: Resource not found: .*no-such-dir\/missing\.txt$/];
		const empty = [/^read 0 chars$/, /^read 0 chars$/];
		check(await answers({}), notFound);
		check(await answers({ readMissingFile: 'notFound' }), notFound);
		check(await answers({ readMissingFile: 'empty' }), empty);
		// The Gemini CLI needs the empty answer even when a user's own definition starts it; an explicit setting wins.
		check(await answers({}, { SCRIPTED_AGENT_NAME: 'gemini-cli' }), empty);
		check(await answers({ readMissingFile: 'notFound' }, { SCRIPTED_AGENT_NAME: 'gemini-cli' }), notFound);
	});

	test('a changed configuration ends the old agent session and starts a new one', async () => {
		let env: Record<string, string> = {};
		const pool = makePool({ defs: () => definitions(env) });
		const chat = newChat();
		const first = await pool.ensure(chat, 'scripted');
		const firstHash = new AgentSessionsRepo(store).get(chat, 'scripted')!.config_hash;
		assert.equal(await pool.ensure(chat, 'scripted'), first, 'same configuration, same session');
		env = { SOME_NEW_SETTING: '1' };
		const second = await pool.ensure(chat, 'scripted');
		assert.notEqual(second, first);
		assert.notEqual(second.backendSessionId, first.backendSessionId);
		await waitFor(() => !alive(pidOf(first.backendSessionId)), 'the old agent to exit', 5000);
		const row = new AgentSessionsRepo(store).get(chat, 'scripted')!;
		assert.notEqual(row.config_hash, firstHash);
		assert.equal(row.backend_session_id, second.backendSessionId);
		assert.equal(second.resumed, false, 'a new configuration starts a new context');
	});

	test('a crash mid-turn marks the turn interrupted; the next prompt restarts and resumes', async () => {
		const pool = makePool();
		const chat = newChat();
		const first = await pool.prompt(chat, 'scripted', { text: 'say remember me' });
		const crashed = await pool.prompt(chat, 'scripted', { text: 'say going down\ncrash' });
		assert.equal(crashed.status, 'interrupted');
		assert.match(crashed.result.error ?? '', /interrupted: the agent process exited \(code 3/);
		assert.equal(new TranscriptRepo(store).getTurn(crashed.turn.id)!.status, 'interrupted');
		assert.match(agentText(crashed.turn.id), /going down/, 'what streamed before the crash is kept');
		await waitFor(() => new AgentSessionsRepo(store).get(chat, 'scripted')!.status === 'crashed', 'crashed status', 5000);
		const after = await pool.prompt(chat, 'scripted', { text: 'say back' });
		assert.equal(after.status, 'done');
		const handle = pool.peek(chat, 'scripted')!;
		assert.ok(handle.resumed, 'the restarted agent loaded its earlier session');
		assert.equal(handle.backendSessionId, first.result.backendSessionId);
	});

	test('a pool rebuilt from the database resumes each chat where the agent left off', async () => {
		const chat = newChat();
		const pool1 = makePool();
		const first = await pool1.prompt(chat, 'scripted', { text: 'say one' });
		await pool1.shutdown();
		assert.equal(new AgentSessionsRepo(store).get(chat, 'scripted')!.status, 'idle');
		const pool2 = makePool();
		const second = await pool2.prompt(chat, 'scripted', { text: 'say two' });
		assert.equal(second.status, 'done');
		assert.ok(pool2.peek(chat, 'scripted')!.resumed);
		assert.equal(second.result.backendSessionId, first.result.backendSessionId);
	});

	test('an agent that cannot restore its context says so in the transcript', async () => {
		const chat = newChat();
		const pool1 = makePool();
		await pool1.prompt(chat, 'scripted', { text: 'say one' });
		await pool1.shutdown();
		fs.rmSync(agentEnv.SCRIPTED_AGENT_STATE_DIR!, { recursive: true, force: true });
		const pool2 = makePool();
		const outcome = await pool2.prompt(chat, 'scripted', { text: 'say two' });
		assert.equal(pool2.peek(chat, 'scripted')!.resumed, false);
		const notice = messages(outcome.turn.id).find((m) => m.kind === 'notice' && String(m.content.title).includes('could not restore'));
		assert.ok(notice, 'a notice tells the user the context was reset');
	});

	test('dispose cancels, then ends every agent process', async () => {
		const pool = makePool();
		const chats = [newChat(), newChat(), newChat()];
		const handles = await Promise.all(chats.map((c) => pool.ensure(c, 'scripted')));
		const running = pool.prompt(chats[0]!, 'scripted', { text: 'sleep 10000' });
		await waitFor(() => pool.isRunning(chats[0]!, 'scripted'), 'the turn to start', 5000);
		const pids = handles.map((h) => pidOf(h.backendSessionId));
		assert.ok(pids.every(alive));
		await pool.shutdown();
		const outcome = await running;
		assert.equal(outcome.status, 'cancelled');
		assert.ok(pids.every((p) => !alive(p)), 'no agent process is left');
		assert.equal(pool.size, 0);
	});

	test('cancel ends a turn; an agent that ignores cancel is killed after the grace period', async () => {
		const pool = makePool();
		const chat = newChat();
		const slow = pool.prompt(chat, 'scripted', { text: 'say starting\nsleep 10000' });
		await waitFor(() => pool.isRunning(chat, 'scripted'));
		await new Promise((r) => setTimeout(r, 200));
		await pool.cancel(chat, 'scripted');
		const outcome = await slow;
		assert.equal(outcome.status, 'cancelled');
		assert.equal(outcome.result.stopReason, 'cancelled');

		const early = pool.prompt(chat, 'scripted', { text: 'say never said' });
		await pool.cancel(chat, 'scripted');
		const earlyOutcome = await early;
		assert.equal(earlyOutcome.status, 'cancelled', 'a cancel right after the prompt still cancels it');

		const hung = pool.prompt(chat, 'scripted', { text: 'hang' });
		await waitFor(() => pool.isRunning(chat, 'scripted'));
		await new Promise((r) => setTimeout(r, 200));
		const pid = pidOf(pool.peek(chat, 'scripted')!.backendSessionId);
		await pool.cancel(chat, 'scripted');
		const hungOutcome = await hung;
		assert.equal(hungOutcome.status, 'cancelled');
		assert.match(hungOutcome.result.error ?? '', /did not stop/);
		await waitFor(() => !alive(pid), 'the hung agent to be killed', 5000);
	});

	test('permission requests go to the broker: a person decides, silence rejects', async () => {
		const pool = makePool({ permissionSettings: { default: 'ask', timeoutMs: 300 } });
		const broker = brokers[brokers.length - 1]!;
		const chat = newChat();
		let answered = 0;
		const sub = broker.onDidRequest((r) => {
			if (answered++ === 0) {
				const allow = r.options.find((o) => o.kind === 'allow_once')!;
				setTimeout(() => broker.decide(r.id, allow.optionId), 50);
			}
		});
		const outcome = await pool.prompt(chat, 'scripted', { text: 'permission first\npermission second' });
		sub.dispose();
		const text = agentText(outcome.turn.id);
		assert.match(text, /permission: allow/);
		assert.match(text, /permission: cancelled/);
		const decisions = messages(outcome.turn.id).filter((m) => m.kind === 'permission').map((m) => (m.content.decision as { decidedBy: string }).decidedBy);
		assert.deepEqual(decisions, ['user', 'timeout']);
	});

	test('terminals run inside the worktree', async () => {
		const pool = makePool();
		const chat = newChat();
		const outcome = await pool.prompt(chat, 'scripted', { text: 'terminal pwd; echo out-$((40+2))' });
		const text = agentText(outcome.turn.id);
		assert.ok(text.includes(fs.realpathSync(work)) || text.includes(work), text);
		assert.match(text, /out-42/);
	});

	test('a chat whose worktree is archived or missing refuses, and never runs in the main checkout', async () => {
		const pool = makePool();
		const chat = newChat();
		const service = new WorktreeService(store, logger, { root: path.join(dir, 'worktrees'), env: gitEnv(dir) });
		await pool.prompt(chat, 'scripted', { text: 'say warm' });
		await service.archiveSession(sessionId);
		await assert.rejects(pool.prompt(chat, 'scripted', { text: 'diskwrite escaped.txt x' }), /archived, its work saved.*only inside their session's worktree.*Restore the session first/s);
		assert.equal(pool.size, 0, 'the live agent of the archived worktree was ended');
		const fresh = makePool();
		await assert.rejects(fresh.prompt(chat, 'scripted', { text: 'diskwrite escaped.txt x' }), /Restore the session first/);
		assert.equal(fs.existsSync(path.join(repo, 'escaped.txt')), false, 'nothing ran in the main checkout');
		assert.equal(fresh.size, 0, 'no agent was started');
		await service.restoreSession(sessionId);
		const back = await fresh.prompt(chat, 'scripted', { text: 'diskwrite back.txt x' });
		assert.equal(back.cwd, sessions.workingDirectory(chat)!.cwd);
		assert.ok(fs.existsSync(path.join(back.cwd, 'back.txt')));
		assert.equal(fs.existsSync(path.join(repo, 'back.txt')), false);
	});

	test('a worktree folder removed behind the pool\'s back (another window, the CLI, by hand) is refused, not followed', async () => {
		const pool = makePool();
		const chat = newChat();
		await pool.prompt(chat, 'scripted', { text: 'say warm' });
		fs.rmSync(work, { recursive: true, force: true });
		await assert.rejects(pool.prompt(chat, 'scripted', { text: 'diskwrite escaped.txt x' }), /worktree folder .* is gone .*Restore the session first/);
		assert.equal(pool.size, 0, 'the agent living in the vanished folder was ended');
		assert.equal(fs.existsSync(path.join(repo, 'escaped.txt')), false);
	});

	test('a session with no worktree at all refuses instead of using its repository', async () => {
		const pool = makePool();
		const bare = sessions.create({ title: 'no worktree', repoRoot: repo });
		const chat = sessions.createChat({ sessionId: bare.id, agent: 'scripted' }).id;
		await assert.rejects(pool.prompt(chat, 'scripted', { text: 'diskwrite escaped.txt x' }), /has no worktree/);
		assert.equal(fs.existsSync(path.join(repo, 'escaped.txt')), false);
	});

	test('terminals follow the permission policy: reject runs nothing, ask asks unless the tool call was asked for', async () => {
		const marker = path.join(work, 'ran.txt');
		const rejecting = makePool({ permissionSettings: { default: 'reject', timeoutMs: 2000 } });
		const chat = newChat();
		const refused = await rejecting.prompt(chat, 'scripted', { text: `terminal touch ${marker}\naskterminal touch ${marker}` });
		assert.equal(fs.existsSync(marker), false, 'nothing ran under reject');
		const refusedText = agentText(refused.turn.id);
		assert.match(refusedText, /terminal error: Refused: the permission policy did not allow running sh -c touch/);
		assert.match(refusedText, /terminal not asked for: permission refused/);
		await rejecting.shutdown();

		const asking = makePool({ permissionSettings: { default: 'ask', timeoutMs: 2000 } });
		const broker = brokers[brokers.length - 1]!;
		const asked: string[] = [];
		const sub = broker.onDidRequest((r) => {
			asked.push(r.title);
			const option = r.options.find((o) => o.kind === (r.title.includes('no-') ? 'reject_once' : 'allow_once'))!;
			setTimeout(() => broker.decide(r.id, option.optionId), 10);
		});
		const chat2 = newChat();
		const outcome = await asking.prompt(chat2, 'scripted', { text: 'terminal echo yes-1\nterminal echo no-2\naskterminal echo yes-3' });
		sub.dispose();
		const text = agentText(outcome.turn.id);
		assert.match(text, /yes-1\nexit 0/);
		assert.match(text, /terminal error: Refused/);
		assert.doesNotMatch(text, /^no-2$/m);
		assert.match(text, /yes-3\nexit 0/);
		assert.deepEqual(asked, ['Run in a terminal: sh -c echo yes-1', 'Run in a terminal: sh -c echo no-2', 'echo yes-3'], 'the tool call the agent asked for is not asked twice');
		const decisions = messages(outcome.turn.id).filter((m) => m.kind === 'permission').length;
		assert.equal(decisions, 3, 'every terminal decision is in the transcript');
	});

	test('terminals start only inside the worktree', async () => {
		const pool = makePool();
		const chat = newChat();
		const outside = path.join(dir, 'outside');
		fs.mkdirSync(outside);
		fs.mkdirSync(path.join(work, 'sub'));
		fs.symlinkSync(outside, path.join(work, 'escape'));
		const outcome = await pool.prompt(chat, 'scripted', { text: `terminalin ${outside} touch here.txt\nterminalin ../outside touch here.txt\nterminalin escape touch here.txt\nterminalin sub pwd` });
		const text = agentText(outcome.turn.id);
		assert.equal((text.match(/terminal error: Refused: .*outside this session's worktree/g) ?? []).length, 3, text);
		assert.deepEqual(fs.readdirSync(outside), []);
		assert.match(text, new RegExp(`${fs.realpathSync(path.join(work, 'sub')).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\nexit 0`));
	});

	test('a hostile agent cannot read the host environment, and every secret it echoes is redacted before it is stored or logged', async () => {
		const hostSecret = 'AKIAHOSTSECRET-0123456789';
		const hostToken = 'ghp_hosttoken_abcdefghijklmnop';
		const agentKey = 'sk-ant-handed-to-the-agent-42';
		const declared = 'declared-secret-env-value-77';
		const fileToken = 'token-from-the-agents-file-99';
		const mcpToken = 'mcp-server-token-for-the-agent-5';
		const pool = makePool({
			mcpServers: () => [{ name: 'tasks', command: process.execPath, args: ['-e', ''], env: { TASKS_AUTH_TOKEN: mcpToken } }],
			hostEnv: { ...process.env, AWS_SECRET_ACCESS_KEY: hostSecret, GITHUB_TOKEN: hostToken, AGENT_TABS_HOST_ONLY: 'plain-host-value', MY_DECLARED: declared },
			defs: () => [{ ...definitions({ SERVICE_TOKEN: fileToken })[0]!, secretEnv: ['ANTHROPIC_API_KEY', 'MY_DECLARED'] }],
			agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: agentKey }),
		});
		const chat = newChat();
		const seen: string[] = [];
		const sub = pool.onDidEvent((e) => seen.push(JSON.stringify(e.event)));
		const outcome = await pool.prompt(chat, 'scripted', {
			text: [
				'terminal env',
				'myenv AGENT_TABS_HOST_ONLY',
				'myenv AWS_SECRET_ACCESS_KEY',
				`say my key is ${agentKey} and ${declared}`,
				`say split: ${agentKey.slice(0, 9)}`,
				`say ${agentKey.slice(9)} (streamed in two chunks)`,
				`toolout ${fileToken} ${agentKey}`,
				`say ${hostToken} ${hostSecret} ${mcpToken}`,
				'crash',
			].join('\n'),
		});
		sub.dispose();
		const text = agentText(outcome.turn.id);
		assert.match(text, /AGENT_TABS_HOST_ONLY=\(unset\)/, 'a host variable outside the pass-through list does not reach the agent');
		assert.match(text, /AWS_SECRET_ACCESS_KEY=\(unset\)/);
		assert.match(text, /PATH=/, 'the pass-through list does');
		assert.match(text, /ANTHROPIC_API_KEY=\[redacted ANTHROPIC_API_KEY\]/, 'the terminal saw the key, the transcript does not');
		const everything = [
			JSON.stringify(store.all('SELECT * FROM messages')),
			JSON.stringify(store.all('SELECT * FROM turns')),
			JSON.stringify(store.all('SELECT * FROM agent_sessions')),
			...seen,
			logger.lines.join('\n'),
			...fs.readdirSync(path.join(dir, 'state')).filter((f) => !fs.statSync(path.join(dir, 'state', f)).isDirectory()).map((f) => fs.readFileSync(path.join(dir, 'state', f), 'latin1')),
		].join('\n');
		for (const secret of [hostSecret, hostToken, agentKey, declared, fileToken, mcpToken]) {
			assert.ok(!everything.includes(secret), `${secret} is nowhere in the database, the journal, the events or the logs`);
		}
		assert.match(everything, /\[redacted SERVICE_TOKEN\]/);
		assert.match(text, /split: \[redacted ANTHROPIC_API_KEY\] \(streamed in two chunks\)/, 'a key split across chunks is redacted whole');
	});

	test('an agent that quotes its key on stderr as it dies: the error, its stored state and the logs are redacted', async () => {
		const key = 'sk-ant-quoted-on-stderr-31337';
		const pool = makePool({
			defs: () => [{ ...definitions({ SCRIPTED_AGENT_EXIT_AT_START: '1', SCRIPTED_AGENT_STDERR_AT_START: `auth failed for ${key}` })[0]!, secretEnv: ['ANTHROPIC_API_KEY'] }],
			agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: key }),
		});
		const chat = newChat();
		await assert.rejects(pool.prompt(chat, 'scripted', { text: 'say hi' }), (e: Error) => e.message.includes('auth failed for [redacted ANTHROPIC_API_KEY]') && !e.message.includes(key));
		assert.ok(!JSON.stringify(store.all('SELECT * FROM agent_sessions')).includes(key));
		assert.ok(!logger.lines.join('\n').includes(key));
	});

	test('garbage, huge lines and unknown updates: reported or kept, never lost, the turn goes on', async () => {
		const pool = makePool();
		const chat = newChat();
		const outcome = await pool.prompt(chat, 'scripted', { text: 'garbage\nunknown\nbigline 10\nsay still here' });
		assert.equal(outcome.status, 'done');
		const msgs = messages(outcome.turn.id);
		assert.ok(msgs.some((m) => m.kind === 'error' && /not an ACP message/.test(String(m.content.message))), 'garbage is reported');
		assert.ok(msgs.some((m) => m.kind === 'raw' && JSON.stringify(m.content).includes('future_update')), 'the unknown update is kept raw');
		const text = agentText(outcome.turn.id);
		assert.ok(text.length >= 10 * 1024 * 1024, `the 10 MB chunk arrived (${text.length} chars)`);
		assert.match(text, /still here$/);
	});

	for (const [name, env, pattern] of [
		['exits at start', { SCRIPTED_AGENT_EXIT_AT_START: '1' }, /exited while starting/],
		['hangs at start', { SCRIPTED_AGENT_HANG_AT_START: '1' }, /did not answer within 5 s/],
		['speaks another protocol version', { SCRIPTED_AGENT_PROTOCOL_VERSION: '99' }, /protocol version 99/],
	] as const) {
		test(`an agent that ${name} fails with a clear error and a persisted error state`, async () => {
			const pool = makePool({ defs: () => definitions(env) });
			const chat = newChat();
			await assert.rejects(pool.prompt(chat, 'scripted', { text: 'say hi' }), pattern);
			const row = new AgentSessionsRepo(store).get(chat, 'scripted')!;
			assert.equal(row.status, 'error');
			assert.match(row.error ?? '', pattern);
			assert.equal(pool.size, 0);
		});
	}

	test('a missing agent command says how to install it', async () => {
		const pool = makePool({ defs: () => [{ id: 'scripted', label: 'Nope', transport: 'acp', command: 'agent-tabs-no-such-agent', args: [], env: {}, install: 'npm i -g nope' }] });
		await assert.rejects(pool.prompt(newChat(), 'scripted', { text: 'hi' }), /"agent-tabs-no-such-agent" was not found. Install it with: npm i -g nope/);
	});

	test('idle sessions are reaped and resumed on the next prompt', async () => {
		const pool = makePool({ idleTimeoutMs: 200 });
		const chat = newChat();
		const first = await pool.prompt(chat, 'scripted', { text: 'say hi' });
		const pid = pidOf(first.result.backendSessionId);
		await waitFor(() => pool.size === 0, 'reaping', 5000);
		await waitFor(() => !alive(pid), 'the idle agent to exit', 5000);
		assert.equal(new AgentSessionsRepo(store).get(chat, 'scripted')!.status, 'idle');
		const second = await pool.prompt(chat, 'scripted', { text: 'say again' });
		assert.equal(second.status, 'done');
		assert.ok(pool.peek(chat, 'scripted')!.resumed);
	});
});
