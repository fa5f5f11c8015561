import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../../../src/agents/definitions';
import { AgentSessionsRepo } from '../../../src/db/agentSessionsRepo';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import type { AgentEvent } from '../../../src/protocol/agentEvents';
import { AgentRig, alive, pidOf } from '../agentRig';
import { waitFor } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

/**
 * The pool's own job, with the turn runner over it as the core builds them: agent sessions keyed
 * `chatId:agent`, shared starts, configuration changes, crash and resume, idle reaping, cancel, end, dispose.
 */
suite('agents/pool with a real ACP agent process', function () {
	this.timeout(30_000);
	checkNoLeaksAfterSuite();
	const rig = new AgentRig();

	test('a write the agent asks for is answered only once its record is on disk (an acknowledged edit keeps its attribution through a crash)', async () => {
		const { pool } = rig.make();
		const chat = rig.newChat();
		const handle = await pool.ensure(chat, 'scripted');
		let release!: () => void;
		const onDisk = new Promise<void>((resolve) => (release = resolve));
		let asked = 0;
		const events: AgentEvent[] = [];
		const said = (): string => events.map((e) => (e.type === 'text' ? e.text : '')).join('');
		const turn = handle.prompt({ text: 'write held.txt h\nsay after the write' }, { turnId: 'turn-held', onEvent: (e) => events.push(e), recorded: () => (asked++, onDisk) });
		await waitFor(() => asked > 0, 'the write to wait for its record');
		await new Promise((r) => setTimeout(r, 300));
		assert.ok(events.some((e) => e.type === 'file_edit' && e.path === 'held.txt'), 'the edit was reported before the answer');
		assert.doesNotMatch(said(), /after the write/, 'the agent has no answer yet');
		release();
		assert.equal((await turn).stopReason, 'end_turn');
		assert.match(said(), /after the write/);
	});

	test('concurrent callers for one key share one start; two chats are two contexts', async () => {
		const { pool } = rig.make();
		const a = rig.newChat();
		const b = rig.newChat();
		const handles = await Promise.all([pool.ensure(a, 'scripted'), pool.ensure(a, 'scripted'), pool.ensure(a, 'scripted'), pool.ensure(b, 'scripted')]);
		assert.equal(handles[0], handles[1]);
		assert.equal(handles[1], handles[2]);
		assert.notEqual(handles[0], handles[3]);
		assert.notEqual(pidOf(handles[0]!.backendSessionId), pidOf(handles[3]!.backendSessionId), 'each chat has its own agent process');
		assert.equal(pool.size, 2);
		const rows = new AgentSessionsRepo(rig.store).list();
		assert.deepEqual(rows.map((r) => [r.chat_id, r.status, r.backend_session_id]).sort(), [
			[a, 'ready', handles[0]!.backendSessionId],
			[b, 'ready', handles[3]!.backendSessionId],
		].sort());
	});

	test('modes, models (config option or the legacy method) and config options reach the agent', async () => {
		const { pool } = rig.make();
		const chat = rig.newChat();
		const handle = await pool.ensure(chat, 'scripted');
		const seen: string[] = [];
		const sub = pool.onDidEvent((e) => seen.push(`${e.event.type}:${'modeId' in e.event ? e.event.modeId : 'modelId' in e.event ? e.event.modelId : ''}`));
		await handle.setMode!('plan');
		await handle.setModel!('large');
		await handle.setConfigOption!('model', 'small');
		sub.dispose();
		assert.deepEqual(seen, ['mode:plan', 'config:', 'model:large', 'config:']);

		const legacyPool = rig.make({ defs: () => rig.definitions({ SCRIPTED_AGENT_LEGACY_MODELS: '1' }) });
		const legacyChat = rig.newChat();
		const legacy = await legacyPool.pool.ensure(legacyChat, 'scripted');
		await legacy.setModel!('large');
		const outcome = await legacyPool.turns.runTurn(legacyChat, 'scripted', { text: 'legacycalls' });
		assert.match(rig.agentText(outcome.turn.id), /legacy set_model calls: 1/);
	});

	test('a changed configuration ends the old agent session and starts a new one', async () => {
		let env: Record<string, string> = {};
		const { pool } = rig.make({ defs: () => rig.definitions(env) });
		const chat = rig.newChat();
		const first = await pool.ensure(chat, 'scripted');
		const firstHash = new AgentSessionsRepo(rig.store).get(chat, 'scripted')!.config_hash;
		assert.equal(await pool.ensure(chat, 'scripted'), first, 'same configuration, same session');
		env = { SOME_NEW_SETTING: '1' };
		const second = await pool.ensure(chat, 'scripted');
		assert.notEqual(second, first);
		assert.notEqual(second.backendSessionId, first.backendSessionId);
		await waitFor(() => !alive(pidOf(first.backendSessionId)), 'the old agent to exit', 5000);
		const row = new AgentSessionsRepo(rig.store).get(chat, 'scripted')!;
		assert.notEqual(row.config_hash, firstHash);
		assert.equal(row.backend_session_id, second.backendSessionId);
		assert.equal(second.resumed, false, 'a new configuration starts a new context');
	});

	test('a crash mid-turn marks the turn interrupted; the next prompt restarts and resumes', async () => {
		const { pool, turns } = rig.make();
		const chat = rig.newChat();
		const first = await turns.runTurn(chat, 'scripted', { text: 'say remember me' });
		const crashed = await turns.runTurn(chat, 'scripted', { text: 'say going down\ncrash' });
		assert.equal(crashed.status, 'interrupted');
		assert.match(crashed.result.error ?? '', /interrupted: the agent process exited \(code 3/);
		assert.equal(new TranscriptRepo(rig.store).getTurn(crashed.turn.id)!.status, 'interrupted');
		assert.match(rig.agentText(crashed.turn.id), /going down/, 'what streamed before the crash is kept');
		await waitFor(() => new AgentSessionsRepo(rig.store).get(chat, 'scripted')!.status === 'crashed', 'crashed status', 5000);
		const after = await turns.runTurn(chat, 'scripted', { text: 'say back' });
		assert.equal(after.status, 'done');
		const handle = pool.peek(chat, 'scripted')!;
		assert.ok(handle.resumed, 'the restarted agent loaded its earlier session');
		assert.equal(handle.backendSessionId, first.result.backendSessionId);
	});

	test('a pool rebuilt from the database resumes each chat where the agent left off', async () => {
		const chat = rig.newChat();
		const pool1 = rig.make();
		const first = await pool1.turns.runTurn(chat, 'scripted', { text: 'say one' });
		await pool1.shutdown();
		assert.equal(new AgentSessionsRepo(rig.store).get(chat, 'scripted')!.status, 'idle');
		const pool2 = rig.make();
		const second = await pool2.turns.runTurn(chat, 'scripted', { text: 'say two' });
		assert.equal(second.status, 'done');
		assert.ok(pool2.pool.peek(chat, 'scripted')!.resumed);
		assert.equal(second.result.backendSessionId, first.result.backendSessionId);
	});

	test('a history an agent replays after answering session/load (as gemini-cli does) is not taken for the next turn', async () => {
		// The same definition for both pools: a changed one would start a new context instead of loading.
		const defs = (): AgentDefinition[] => rig.definitions({ SCRIPTED_AGENT_LATE_REPLAY_MS: '40' });
		const chat = rig.newChat();
		const pool1 = rig.make({ defs });
		const first = await pool1.turns.runTurn(chat, 'scripted', { text: 'write notes.txt first version\nsay wrote it' });
		await pool1.shutdown();
		const pool2 = rig.make({ defs });
		// The turn lasts longer than the late replay, so a replayed update taken for live lands in it.
		const second = await pool2.turns.runTurn(chat, 'scripted', { text: 'sleep 500\nsay two' });
		assert.equal(second.status, 'done', second.result.error);
		assert.ok(pool2.pool.peek(chat, 'scripted')!.resumed, 'the new process loaded the chat');
		assert.deepEqual(rig.messages(second.turn.id).map((m) => m.kind).filter((k) => k !== 'usage'), ['user', 'text'], 'the prompt and the answer: no replayed prompt, answer or tool call in the new turn');
		assert.equal(rig.agentText(second.turn.id), 'two');
		assert.deepEqual(
			new PendingChangesRepo(rig.store).listForChat(chat).map((p) => [p.path, p.kind, p.turn_id]),
			[['notes.txt', 'add', first.turn.id]],
			'the replayed write is not an edit of the new turn',
		);
	});

	test('a late replay is not taken for the next turn either when the host was busy while the agent streamed it', async () => {
		const quietMs = 237; // a value no other timer of this test uses, to find the replay's quiet timer
		const backends = { acp: new AcpBackend({ logger: rig.logger, startTimeoutMs: 5000, cancelGraceMs: 1000, killGraceMs: 1000, replayQuietMs: quietMs }) };
		const defs = (): AgentDefinition[] => rig.definitions({ SCRIPTED_AGENT_LATE_REPLAY_MS: '200' });
		const chat = rig.newChat();
		const pool1 = rig.make({ defs, backends });
		const first = await pool1.turns.runTurn(chat, 'scripted', { text: 'write notes.txt first version\nsay wrote it' });
		await pool1.shutdown();
		const pool2 = rig.make({ defs, backends });
		// While the replay's quiet timer runs, the host is held for 300 ms (a long synchronous task): the agent's
		// next replayed lines wait unread in the pipe, and the timer fires late.
		const realSetTimeout = global.setTimeout;
		let armed = true;
		global.setTimeout = ((fn: () => void, ms?: number, ...rest: unknown[]) => {
			if (armed && ms === quietMs) {
				armed = false;
				setImmediate(() => {
					const end = Date.now() + 300;
					while (Date.now() < end) {
						// busy
					}
				});
			}
			return realSetTimeout(fn, ms, ...rest);
		}) as typeof setTimeout;
		try {
			const second = await pool2.turns.runTurn(chat, 'scripted', { text: 'sleep 1000\nsay two' });
			assert.equal(second.status, 'done', second.result.error);
			assert.ok(!armed, 'the host was held while the replay was under way');
			assert.deepEqual(rig.messages(second.turn.id).map((m) => m.kind).filter((k) => k !== 'usage'), ['user', 'text']);
			assert.deepEqual(new PendingChangesRepo(rig.store).listForChat(chat).map((p) => [p.path, p.kind, p.turn_id]), [['notes.txt', 'add', first.turn.id]]);
		} finally {
			global.setTimeout = realSetTimeout;
		}
	});

	test('an agent that numbers its tool calls anew in each process keeps its live calls after a reload (only the replay is left out)', async () => {
		const defs = (): AgentDefinition[] => rig.definitions({ SCRIPTED_AGENT_PROCESS_IDS: '1', SCRIPTED_AGENT_LATE_REPLAY_MS: '0' });
		const chat = rig.newChat();
		const pool1 = rig.make({ defs });
		await pool1.turns.runTurn(chat, 'scripted', { text: 'write a.txt one' });
		await pool1.shutdown();
		const pool2 = rig.make({ defs });
		const second = await pool2.turns.runTurn(chat, 'scripted', { text: 'write b.txt two\nwrite c.txt three' });
		assert.equal(second.status, 'done', second.result.error);
		assert.ok(pool2.pool.peek(chat, 'scripted')!.resumed);
		assert.equal(rig.messages(second.turn.id).filter((m) => m.kind === 'tool_call').length, 2, 'both live calls, one of them under the replayed call\'s id');
		assert.deepEqual(
			new PendingChangesRepo(rig.store).listForChat(chat).map((p) => p.path).sort(),
			['a.txt', 'b.txt', 'c.txt'],
		);
	});

	test('an agent that cannot restore its context says so in the transcript', async () => {
		const chat = rig.newChat();
		const pool1 = rig.make();
		await pool1.turns.runTurn(chat, 'scripted', { text: 'say one' });
		await pool1.shutdown();
		fs.rmSync(rig.agentEnv.SCRIPTED_AGENT_STATE_DIR!, { recursive: true, force: true });
		const pool2 = rig.make();
		const outcome = await pool2.turns.runTurn(chat, 'scripted', { text: 'say two' });
		assert.equal(pool2.pool.peek(chat, 'scripted')!.resumed, false);
		const notice = rig.messages(outcome.turn.id).find((m) => m.kind === 'notice' && String(m.content.title).includes('could not restore'));
		assert.ok(notice, 'a notice tells the user the context was reset');
	});

	test('dispose cancels, then ends every agent process', async () => {
		const { pool, turns } = rig.make();
		const chats = [rig.newChat(), rig.newChat(), rig.newChat()];
		const handles = await Promise.all(chats.map((c) => pool.ensure(c, 'scripted')));
		const running = turns.runTurn(chats[0]!, 'scripted', { text: 'sleep 10000' });
		await waitFor(() => pool.isRunning(chats[0]!, 'scripted'), 'the turn to start', 5000);
		const pids = handles.map((h) => pidOf(h.backendSessionId));
		assert.ok(pids.every(alive));
		await pool.shutdown();
		const outcome = await running;
		assert.equal(outcome.status, 'cancelled', outcome.result.error);
		assert.ok(pids.every((p) => !alive(p)), 'no agent process is left');
		assert.equal(pool.size, 0);
	});

	test('cancel ends a turn; an agent that ignores cancel is killed after the grace period', async () => {
		const { pool, turns } = rig.make();
		const chat = rig.newChat();
		const slow = turns.runTurn(chat, 'scripted', { text: 'say starting\nsleep 10000' });
		await waitFor(() => pool.isRunning(chat, 'scripted'));
		await new Promise((r) => setTimeout(r, 200));
		await turns.cancel(chat, 'scripted');
		const outcome = await slow;
		assert.equal(outcome.status, 'cancelled', outcome.result.error);
		assert.equal(outcome.result.stopReason, 'cancelled');

		const early = turns.runTurn(chat, 'scripted', { text: 'say never said' });
		await turns.cancel(chat, 'scripted');
		const earlyOutcome = await early;
		assert.equal(earlyOutcome.status, 'cancelled', 'a cancel right after the prompt still cancels it');

		const hung = turns.runTurn(chat, 'scripted', { text: 'hang' });
		await waitFor(() => pool.isRunning(chat, 'scripted'));
		await new Promise((r) => setTimeout(r, 200));
		const pid = pidOf(pool.peek(chat, 'scripted')!.backendSessionId);
		await turns.cancel(chat, 'scripted');
		const hungOutcome = await hung;
		assert.equal(hungOutcome.status, 'cancelled');
		assert.match(hungOutcome.result.error ?? '', /did not stop/);
		await waitFor(() => !alive(pid), 'the hung agent to be killed', 5000);
	});

	test('an agent that quotes its key on stderr as it dies: the error, its stored state and the logs are redacted', async () => {
		const key = 'sk-ant-quoted-on-stderr-31337';
		const { turns } = rig.make({
			defs: () => [{ ...rig.definitions({ SCRIPTED_AGENT_EXIT_AT_START: '1', SCRIPTED_AGENT_STDERR_AT_START: `auth failed for ${key}` })[0]!, secretEnv: ['ANTHROPIC_API_KEY'] }],
			agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: key }),
		});
		const chat = rig.newChat();
		await assert.rejects(turns.runTurn(chat, 'scripted', { text: 'say hi' }), (e: Error) => e.message.includes('auth failed for [redacted ANTHROPIC_API_KEY]') && !e.message.includes(key));
		assert.ok(!JSON.stringify(rig.store.all('SELECT * FROM agent_sessions')).includes(key));
		assert.ok(!rig.logger.lines.join('\n').includes(key));
	});

	test('a key that a cut or a chunk boundary would split is redacted whole: the stderr tail, a garbage line, the per-chunk log', async () => {
		const key = 'sk-ant-split-across-the-cut-4242';
		const piece = (s: string): boolean => s.includes(key.slice(0, 12)) || s.includes(key.slice(12)) || s.includes(key.slice(1));
		// The error quotes the last 400 characters of stderr: the key starts one character before them, and
		// arrives in two chunks a moment apart.
		const stderr = `${key} ${'y'.repeat(400 - key.length)}`;
		const { turns } = rig.make({
			defs: () => [{ ...rig.definitions({ SCRIPTED_AGENT_EXIT_AT_START: '1', SCRIPTED_AGENT_STDERR_AT_START: stderr, SCRIPTED_AGENT_STDERR_SPLIT_AT: '12' })[0]!, secretEnv: ['ANTHROPIC_API_KEY'] }],
			agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: key }),
		});
		await assert.rejects(turns.runTurn(rig.newChat(), 'scripted', { text: 'say hi' }), (e: Error) => e.message.includes('yyyy') && !piece(e.message));
		assert.ok(!piece(JSON.stringify(rig.store.all('SELECT * FROM agent_sessions'))));
		assert.ok(rig.logger.lines.some((l) => l.includes('[redacted ANTHROPIC_API_KEY]')), 'the key was logged, redacted');
		assert.ok(!piece(rig.logger.lines.join('\n')));
		// A line that is not ACP is quoted up to 200 characters: the key crosses that cut.
		const garbled = rig.make({
			defs: () => [{ ...rig.definitions({ SCRIPTED_AGENT_GARBAGE_AT_START: `${'x'.repeat(190)}${key}` })[0]!, secretEnv: ['ANTHROPIC_API_KEY'] }],
			agentEnv: () => Promise.resolve({ ANTHROPIC_API_KEY: key }),
		});
		const chat = rig.newChat();
		const outcome = await garbled.turns.runTurn(chat, 'scripted', { text: 'say hi' });
		assert.ok(rig.logger.lines.some((l) => l.includes('not ACP: xxxx')), 'the garbage was logged');
		assert.ok(!piece(rig.logger.lines.join('\n')));
		assert.ok(!piece(JSON.stringify(outcome)));
		assert.ok(!piece(JSON.stringify([rig.store.all('SELECT * FROM messages'), rig.store.all('SELECT * FROM chat_notices')])));
	});

	for (const [name, env, pattern] of [
		['exits at start', { SCRIPTED_AGENT_EXIT_AT_START: '1' }, /exited while starting/],
		['hangs at start', { SCRIPTED_AGENT_HANG_AT_START: '1' }, /did not answer within 5 s/],
		['speaks another protocol version', { SCRIPTED_AGENT_PROTOCOL_VERSION: '99' }, /protocol version 99/],
		['needs a sign-in', { SCRIPTED_AGENT_AUTH_REQUIRED: '1' }, /needs to be signed in or given an API key \(Agent Tabs: Set API Key\)\. It offers: Log in with Scripted \(opens a browser\); SCRIPTED_API_KEY\./],
	] as const) {
		test(`an agent that ${name} fails with a clear error and a persisted error state`, async () => {
			const { pool, turns } = rig.make({ defs: () => rig.definitions(env) });
			const chat = rig.newChat();
			await assert.rejects(turns.runTurn(chat, 'scripted', { text: 'say hi' }), pattern);
			const row = new AgentSessionsRepo(rig.store).get(chat, 'scripted')!;
			assert.equal(row.status, 'error');
			assert.match(row.error ?? '', pattern);
			assert.equal(pool.size, 0);
		});
	}

	test('an agent that asks for a sign-in although it was given a key is signed in with the method its definition names, never another; a key it refuses is said so', async () => {
		const withKey = (key: string, more: Partial<AgentDefinition> = {}): (() => AgentDefinition[]) => () => [{ ...rig.definitions({ SCRIPTED_AGENT_AUTH_REQUIRED: '1', SCRIPTED_API_KEY: key })[0]!, secretEnv: ['SCRIPTED_API_KEY'], keySignIn: 'key', ...more }];
		// Not named by its definition (gemini-cli's sign-in would clear the user's Google login), or no key of
		// its own set: no sign-in, the error as before.
		for (const [what, defs] of [
			['no keySignIn', withKey('sk-scripted-good', { keySignIn: undefined })],
			['the key under another name', () => [{ ...rig.definitions({ SCRIPTED_AGENT_AUTH_REQUIRED: '1', OTHER_API_KEY: 'sk-other' })[0]!, secretEnv: ['SCRIPTED_API_KEY'], keySignIn: 'key' }]],
		] as const) {
			const untouched = rig.make({ defs });
			await assert.rejects(untouched.turns.runTurn(rig.newChat(), 'scripted', { text: 'say hi' }), /needs to be signed in or given an API key/, what);
		}
		assert.ok(!rig.logger.lines.some((l) => /signing in with/.test(l)), 'no sign-in was tried');
		const browserLogin = path.join(rig.agentEnv.SCRIPTED_AGENT_STATE_DIR!, 'browser-login-started');
		const chat = rig.newChat();
		const first = rig.make({ defs: withKey('sk-scripted-good') });
		const outcome = await first.turns.runTurn(chat, 'scripted', { text: 'say signed in' });
		assert.equal(outcome.status, 'done', outcome.result.error);
		assert.equal(rig.agentText(outcome.turn.id), 'signed in');
		assert.ok(rig.logger.lines.some((l) => /signing in with its "SCRIPTED_API_KEY" method/.test(l)), 'the sign-in is logged');
		assert.ok(!rig.logger.lines.some((l) => l.includes('sk-scripted-good')), 'the key is not');
		// A new process resumes the chat: its session/load asks for the sign-in too.
		await first.shutdown();
		const second = rig.make({ defs: withKey('sk-scripted-good') });
		const resumed = await second.turns.runTurn(chat, 'scripted', { text: 'say back' });
		assert.equal(resumed.status, 'done', resumed.result.error);
		assert.ok(second.pool.peek(chat, 'scripted')!.resumed, 'the chat kept its context');

		const refused = rig.make({ defs: withKey('rejected-key') });
		await assert.rejects(refused.turns.runTurn(rig.newChat(), 'scripted', { text: 'say hi' }), /"Scripted" did not accept the API key it was given \(its "SCRIPTED_API_KEY" sign-in\): Invalid API key\. Check the key \(Agent Tabs: Set API Key\)\./);
		assert.ok(!fs.existsSync(browserLogin), 'no browser login was started');
	});

	test("a chat's agent comes back with the mode, model and options it had (a restart: idle timeout, crash, reload), also what the agent chose itself; what is no longer offered is said", async () => {
		const first = rig.make();
		const chat = rig.newChat();
		assert.equal((await first.turns.runTurn(chat, 'scripted', { text: 'say hi' })).status, 'done');
		const handle = first.pool.peek(chat, 'scripted')!;
		await handle.setMode!('plan');
		await handle.setModel!('large');
		await handle.setConfigOption!('effort', 'high');
		await handle.setConfigOption!('fast', true);
		await handle.setConfigOption!('context', 'long');
		const chosen = 'settings: mode=plan model=large effort=high fast=true context=long';
		assert.match(rig.agentText((await first.turns.runTurn(chat, 'scripted', { text: 'settings' })).turn.id), new RegExp(chosen));
		await first.pool.shutdown();

		const second = rig.make();
		const back = await second.turns.runTurn(chat, 'scripted', { text: 'settings' });
		assert.equal(back.status, 'done', back.result.error);
		assert.ok(second.pool.peek(chat, 'scripted')!.resumed, 'the chat kept its context');
		assert.match(rig.agentText(back.turn.id), new RegExp(chosen), 'the new agent process has the chat\'s settings');
		assert.deepEqual(second.pool.peek(chat, 'scripted')!.currentSettings!(), { modeId: 'plan', options: { model: 'large', effort: 'high', fast: true, context: 'long' } });
		// The agent leaves plan mode itself: that is what comes back next time.
		await second.turns.runTurn(chat, 'scripted', { text: 'becomemode default' });
		await second.pool.shutdown();

		const third = rig.make();
		assert.match(rig.agentText((await third.turns.runTurn(chat, 'scripted', { text: 'settings' })).turn.id), /settings: mode=default model=large effort=high fast=true context=long/);
		await third.pool.shutdown();

		// A value the agent no longer offers is left as the agent has it, and the chat is told.
		const recorded = JSON.parse(rig.store.get<{ settings_json: string }>('SELECT settings_json FROM agent_sessions WHERE chat_id = ?', [chat])!.settings_json) as { options: Record<string, unknown> };
		recorded.options.effort = 'ultra';
		rig.store.write((tx) => tx.run('UPDATE agent_sessions SET settings_json = ? WHERE chat_id = ?', [JSON.stringify(recorded), chat]));
		const fourth = rig.make();
		const idle: AgentEvent[] = [];
		fourth.pool.onDidEvent((e) => idle.push(e.event));
		await fourth.pool.ensure(chat, 'scripted');
		const notice = idle.find((e) => e.type === 'notice');
		assert.ok(notice && notice.type === 'notice' && /restarted without some of this chat's settings/.test(notice.title) && notice.description === 'Not put back: Effort. Check them in the tab\'s pickers.', JSON.stringify(idle));
		assert.match(rig.agentText((await fourth.turns.runTurn(chat, 'scripted', { text: 'settings' })).turn.id), /settings: mode=default model=large effort=medium fast=true context=long/);
		assert.ok(rig.logger.lines.some((l) => /Effort: ultra is no longer offered; left at medium/.test(l)), rig.logger.lines.join('\n'));
	});

	test('options the agent offers only after its setup are put back when it offers them, and kept meanwhile; one that a later choice reset is said', async () => {
		const defs = (): AgentDefinition[] => rig.definitions({ SCRIPTED_AGENT_OPTIONS_LATER: '1' });
		const first = rig.make({ defs });
		const chat = rig.newChat();
		await first.turns.runTurn(chat, 'scripted', { text: 'sendoptions' });
		await first.pool.peek(chat, 'scripted')!.setConfigOption!('effort', 'high');
		await first.pool.shutdown();
		const stored = (): Record<string, unknown> => JSON.parse(rig.store.get<{ settings_json: string }>('SELECT settings_json FROM agent_sessions WHERE chat_id = ?', [chat])!.settings_json) as Record<string, unknown>;
		assert.equal((stored().options as Record<string, unknown>).effort, 'high');
		const second = rig.make({ defs });
		await second.pool.ensure(chat, 'scripted');
		assert.equal((stored().options as Record<string, unknown>).effort, 'high', 'kept while the agent has not offered it yet');
		await second.turns.runTurn(chat, 'scripted', { text: 'sendoptions' });
		await waitFor(() => second.pool.peek(chat, 'scripted')!.currentSettings!().options?.effort === 'high', 'effort to be put back once offered', 10_000);
		assert.match(rig.agentText((await second.turns.runTurn(chat, 'scripted', { text: 'settings' })).turn.id), /effort=high/);
		await second.pool.shutdown();
	});

	test('the model is put back before the options that depend on it, also one recorded the older way (an agent that moved its model to an option)', async () => {
		const first = rig.make();
		const chat = rig.newChat();
		await first.turns.runTurn(chat, 'scripted', { text: 'say hi' });
		await first.pool.shutdown();
		const record = (settings: unknown): void => void rig.store.write((tx) => tx.run('UPDATE agent_sessions SET settings_json = ? WHERE chat_id = ?', [JSON.stringify(settings), chat]));
		// Max effort needs the Large model: in the order the agent lists them, effort would be refused.
		record({ modeId: 'default', options: { effort: 'max', model: 'large' } });
		const second = rig.make();
		assert.match(rig.agentText((await second.turns.runTurn(chat, 'scripted', { text: 'settings' })).turn.id), /model=large effort=max/);
		await second.pool.shutdown();
		// Recorded when the agent offered its model the older way (session/set_model); it now offers an option.
		record({ modeId: 'default', modelId: 'large' });
		const third = rig.make();
		assert.match(rig.agentText((await third.turns.runTurn(chat, 'scripted', { text: 'settings' })).turn.id), /model=large/);
		await third.pool.shutdown();
	});

	test('an agent that dies while its settings are put back is not a started session, and the chat keeps its settings', async () => {
		const first = rig.make();
		const chat = rig.newChat();
		await first.turns.runTurn(chat, 'scripted', { text: 'say hi' });
		await first.pool.peek(chat, 'scripted')!.setMode!('plan');
		await first.pool.shutdown();
		const before = rig.store.get<{ settings_json: string }>('SELECT settings_json FROM agent_sessions WHERE chat_id = ?', [chat])!.settings_json;
		assert.match(before, /"modeId":"plan"/);
		const marker = path.join(rig.agentEnv.SCRIPTED_AGENT_STATE_DIR!, 'exit-on-set-mode');
		fs.mkdirSync(path.dirname(marker), { recursive: true });
		fs.writeFileSync(marker, '');
		const dying = rig.make();
		await assert.rejects(dying.pool.ensure(chat, 'scripted'), /exited/);
		fs.rmSync(marker);
		assert.equal(rig.store.get<{ settings_json: string }>('SELECT settings_json FROM agent_sessions WHERE chat_id = ?', [chat])!.settings_json, before, 'its defaults did not replace the chat\'s settings');
		await dying.pool.shutdown();
		const third = rig.make();
		assert.match(rig.agentText((await third.turns.runTurn(chat, 'scripted', { text: 'settings' })).turn.id), /mode=plan/);
		await third.pool.shutdown();
	});

	test('a restart puts back a mode and model of the older API (session/set_mode, session/set_model), and a mode offered only as a config option', async () => {
		for (const extra of [{ SCRIPTED_AGENT_LEGACY_MODELS: '1' }, { SCRIPTED_AGENT_MODE_OPTION: '1' }] as Record<string, string>[]) {
			const defs = (): AgentDefinition[] => rig.definitions(extra);
			const first = rig.make({ defs });
			const chat = rig.newChat();
			await first.turns.runTurn(chat, 'scripted', { text: 'say hi' });
			const handle = first.pool.peek(chat, 'scripted')!;
			await handle.setMode!('plan');
			await handle.setModel!('large');
			const before = handle.currentSettings!();
			await first.pool.shutdown();
			const second = rig.make({ defs });
			const back = await second.turns.runTurn(chat, 'scripted', { text: extra.SCRIPTED_AGENT_LEGACY_MODELS ? 'legacycalls\nsettings' : 'settings' });
			assert.equal(back.status, 'done', back.result.error);
			const said = rig.agentText(back.turn.id);
			assert.match(said, /settings: mode=plan model=/, `${JSON.stringify(extra)}: ${said}`);
			if (extra.SCRIPTED_AGENT_LEGACY_MODELS) {
				assert.match(said, /legacy set_model calls: 1/, 'the model was set again in the new process');
			} else {
				assert.match(said, /model=large/);
			}
			assert.deepEqual(second.pool.peek(chat, 'scripted')!.currentSettings!(), before, JSON.stringify(extra));
			await second.pool.shutdown();
		}
	});

	test('an agent that never answers its default mode request still starts, in bounded time, and the turn runs', async () => {
		const { pool, turns } = rig.make({ defs: () => [{ ...rig.definitions({ SCRIPTED_AGENT_HANG_SET_MODE: '1' })[0]!, defaultMode: 'plan' }] });
		const chat = rig.newChat();
		const outcome = await turns.runTurn(chat, 'scripted', { text: 'say still answering prompts' });
		assert.equal(outcome.status, 'done');
		assert.match(rig.agentText(outcome.turn.id), /still answering prompts/);
		assert.ok(rig.logger.lines.some((l) => /default mode: .*session\/set_mode\) did not answer within 5 s/.test(l)), 'the unanswered request is logged');
		await assert.rejects(pool.peek(chat, 'scripted')!.setMode!('plan'), /did not answer within 5 s/, 'a mode picked later gets an answer too');
	});

	test('an agent that closes its output but keeps running is ended as a crash, and the next turn starts it anew', async () => {
		const { pool, turns } = rig.make();
		const chat = rig.newChat();
		const first = await turns.runTurn(chat, 'scripted', { text: 'say before\ncloseout' });
		assert.notEqual(first.status, 'done');
		const pid = pidOf(first.result.backendSessionId);
		await waitFor(() => !alive(pid), 'the silent agent to be ended', 10_000);
		const second = await turns.runTurn(chat, 'scripted', { text: 'say back again' });
		assert.equal(second.status, 'done', second.result.error);
		assert.match(rig.agentText(second.turn.id), /back again/);
		assert.ok(pool.size >= 1);
	});

	test("the agent's modes, model options and commands from its session setup reach the pool's listeners before the first prompt", async () => {
		const { pool } = rig.make();
		const chat = rig.newChat();
		const seen: AgentEvent[] = [];
		const sub = pool.onDidEvent((e) => e.chatId === chat && seen.push(e.event));
		await pool.ensure(chat, 'scripted');
		sub.dispose();
		const mode = seen.find((e) => e.type === 'mode');
		assert.deepEqual(mode, { type: 'mode', modeId: 'default', available: [{ id: 'default', name: 'Default' }, { id: 'plan', name: 'Plan' }] });
		assert.ok(seen.some((e) => e.type === 'config'), 'the model option too');
	});

	test('config options an agent sends later (config_option_update) are what a model is then picked from', async () => {
		const { pool, turns } = rig.make({ defs: () => rig.definitions({ SCRIPTED_AGENT_OPTIONS_LATER: '1' }) });
		const chat = rig.newChat();
		await pool.ensure(chat, 'scripted');
		await assert.rejects(pool.peek(chat, 'scripted')!.setModel!('large'), /does not offer a choice of model/);
		assert.equal((await turns.runTurn(chat, 'scripted', { text: 'sendoptions' })).status, 'done');
		await pool.peek(chat, 'scripted')!.setModel!('large');
	});

	test('a missing agent command says how to install it', async () => {
		const { turns } = rig.make({ defs: () => [{ id: 'scripted', label: 'Nope', transport: 'acp', command: 'agent-tabs-no-such-agent', args: [], env: {}, install: 'npm i -g nope' }] });
		await assert.rejects(turns.runTurn(rig.newChat(), 'scripted', { text: 'hi' }), /"agent-tabs-no-such-agent" was not found. Install it with: npm i -g nope/);
	});

	test('idle sessions are reaped and resumed on the next prompt', async () => {
		const { pool, turns } = rig.make({ idleTimeoutMs: 200 });
		const chat = rig.newChat();
		const first = await turns.runTurn(chat, 'scripted', { text: 'say hi' });
		const pid = pidOf(first.result.backendSessionId);
		await waitFor(() => pool.size === 0, 'reaping', 5000);
		await waitFor(() => !alive(pid), 'the idle agent to exit', 5000);
		assert.equal(new AgentSessionsRepo(rig.store).get(chat, 'scripted')!.status, 'idle');
		// The handle is taken while the turn runs: once it ends, the short idle timeout may reap it again
		// before the assertion (seen on a loaded machine, where the turn's closing steps took over 200 ms).
		let resumed: boolean | undefined;
		const sub = turns.onDidEvent(() => (resumed ??= pool.peek(chat, 'scripted')?.resumed));
		const second = await turns.runTurn(chat, 'scripted', { text: 'say again' });
		sub.dispose();
		assert.equal(second.status, 'done');
		assert.equal(resumed, true, 'the new process loaded the chat\'s earlier context');
	});

	test('end stops one chat\'s agent process: the others go on; the next prompt starts a new one that resumes', async () => {
		const { pool, turns } = rig.make();
		const a = rig.newChat();
		const b = rig.newChat();
		const first = await turns.runTurn(a, 'scripted', { text: 'say remember me' });
		const other = await pool.ensure(b, 'scripted');
		const pidA = pidOf(first.result.backendSessionId);
		const handleA = pool.peek(a, 'scripted');
		await pool.end(a, 'scripted');
		await waitFor(() => !alive(pidA), 'the ended agent to exit', 5000);
		assert.equal(pool.peek(a, 'scripted'), undefined);
		assert.equal(pool.size, 1);
		assert.ok(alive(pidOf(other.backendSessionId)), 'the other chat\'s agent still runs');
		assert.equal(new AgentSessionsRepo(rig.store).get(a, 'scripted')!.status, 'ended');
		await pool.end(a, 'scripted'); // ending what is not running is nothing
		const again = await turns.runTurn(a, 'scripted', { text: 'say back' });
		assert.equal(again.status, 'done');
		const handle = pool.peek(a, 'scripted')!;
		assert.notEqual(handle, handleA, 'a new process');
		assert.ok(handle.resumed, 'which loaded the chat\'s earlier context');
		assert.equal(again.result.backendSessionId, first.result.backendSessionId);
	});

	test('end during a turn cancels the turn first, which records its end', async () => {
		const { pool, turns } = rig.make();
		const chat = rig.newChat();
		const running = turns.runTurn(chat, 'scripted', { text: 'say starting\nsleep 10000' });
		await waitFor(() => pool.isRunning(chat, 'scripted'), 'the turn to start', 5000);
		const pid = pidOf(pool.peek(chat, 'scripted')!.backendSessionId);
		await pool.end(chat, 'scripted');
		const outcome = await running;
		assert.equal(outcome.status, 'cancelled', outcome.result.error);
		assert.equal(new TranscriptRepo(rig.store).getTurn(outcome.turn.id)!.status, 'cancelled');
		await waitFor(() => !alive(pid), 'the agent to exit', 5000);
		assert.equal(pool.size, 0);
	});

	test('a session busy with a turn is not taken twice; its new configuration waits for the turn to end', async () => {
		let env: Record<string, string> = {};
		const { pool, turns } = rig.make({ defs: () => rig.definitions(env) });
		const chat = rig.newChat();
		const running = turns.runTurn(chat, 'scripted', { text: 'sleep 1500\nsay done' });
		await waitFor(() => pool.isRunning(chat, 'scripted'), 'the turn to start', 5000);
		await assert.rejects(pool.beginTurn(chat, 'scripted'), /already running a turn/);
		env = { SOME_NEW_SETTING: '1' };
		await assert.rejects(pool.ensure(chat, 'scripted'), /in the middle of a turn; its new settings apply after it ends/);
		assert.equal((await running).status, 'done');
		const fresh = await pool.ensure(chat, 'scripted');
		assert.equal(fresh.resumed, false, 'after the turn, the new configuration starts a new session');
	});
});
