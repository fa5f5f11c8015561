import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import { mergeDefinitions, type AgentDefinition } from '../../../src/agents/definitions';
import { PermissionBroker } from '../../../src/agents/permissions';
import { AgentPool } from '../../../src/agents/pool';
import { TurnRunner } from '../../../src/tasks/turnRunner';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import type { Store } from '../../../src/db/store';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { startFakeAnthropic, startFakeGemini, startFakeOpenAI, startFakeResponses, type FakeServer } from '../../fixtures/modelServers';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv, makeRepo } from '../gitRepo';
import { cliBundle, MemoryLogger, openStore, removeDir, repoRoot, tempDir } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

/**
 * The real agent CLIs from npm (installed by scripts/install-test-agents.sh into the test cache), driven
 * offline: their model is one of our scripted servers on 127.0.0.1, their home, config and data folders are
 * inside the test's temp folder, and their telemetry and update checks are off.
 */
const cache = process.env.AGENT_TABS_TEST_CACHE ?? path.join(repoRoot, '.vscode-test');
/** Each agent has its own install folder in the cache, `agents/<agent>/`. */
const binDir = (agent: string): string => path.join(cache, 'agents', agent, 'node_modules', '.bin');
const bin = (agent: string, name = agent): string => path.join(binDir(agent), name);
const installed = fs.existsSync(bin('claude', 'claude-agent-acp')) && fs.existsSync(bin('opencode')) && fs.existsSync(bin('codex', 'codex-acp'));
const geminiInstalled = fs.existsSync(bin('gemini'));
/**
 * What the real agent CLIs keep in the temp folder across runs, by their own design (not Agent Tabs' to
 * remove): the native libraries a Bun-built binary (Claude's `claude`, `opencode`) unpacks, Claude Code's
 * `claude-<uid>` and `cc-socks` folders, opencode's `opencode` folder, Codex's sandbox mount points.
 */
const agentsOwnTemp = /^(\.[0-9a-f]+-[0-9a-f]+\.so|claude-\d+|cc-socks|opencode|codex-bwrap-synthetic-mount-targets-\d+)$/;

interface Harness {
	dir: string;
	repo: string;
	home: string;
	target: string;
}

function harness(): Harness {
	const dir = tempDir('agent-tabs-real-');
	const repo = makeRepo(path.join(dir, 'repo'));
	const home = path.join(dir, 'home');
	fs.mkdirSync(home, { recursive: true });
	return { dir, repo, home, target: path.join(repo, 'hello.txt') };
}

function offlineEnv(h: Harness): Record<string, string> {
	return {
		HOME: h.home,
		XDG_CONFIG_HOME: path.join(h.home, '.config'),
		XDG_DATA_HOME: path.join(h.home, '.local', 'share'),
		XDG_CACHE_HOME: path.join(h.home, '.cache'),
		XDG_STATE_HOME: path.join(h.home, '.local', 'state'),
		DO_NOT_TRACK: '1',
	};
}

function claudeDefinition(h: Harness, baseUrl: string): AgentDefinition {
	return {
		id: 'claude',
		label: 'Claude',
		transport: 'acp',
		command: bin('claude', 'claude-agent-acp'),
		args: [],
		env: {
			...offlineEnv(h),
			ANTHROPIC_BASE_URL: baseUrl,
			ANTHROPIC_API_KEY: 'sk-ant-test-not-a-real-key',
			CLAUDE_CONFIG_DIR: path.join(h.home, '.claude'),
			CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
			DISABLE_AUTOUPDATER: '1',
			DISABLE_TELEMETRY: '1',
			DISABLE_ERROR_REPORTING: '1',
			// CI runs as root; Claude Code refuses to start its permission-free modes as root outside a sandbox.
			IS_SANDBOX: '1',
		},
	};
}

function opencodeDefinition(h: Harness, baseUrl: string): AgentDefinition {
	const config = {
		$schema: 'https://opencode.ai/config.json',
		model: 'fake/fake-model',
		small_model: 'fake/fake-model',
		autoupdate: false,
		share: 'disabled',
		permission: { edit: 'allow', bash: 'allow' },
		provider: {
			fake: {
				npm: '@ai-sdk/openai-compatible',
				name: 'Fake',
				options: { baseURL: `${baseUrl}/v1`, apiKey: 'sk-fake' },
				models: { 'fake-model': { name: 'Fake Model', tool_call: true, limit: { context: 128000, output: 4096 } } },
			},
		},
	};
	return {
		id: 'opencode',
		label: 'opencode',
		transport: 'acp',
		command: bin('opencode'),
		args: ['acp'],
		env: {
			...offlineEnv(h),
			OPENCODE_CONFIG_CONTENT: JSON.stringify(config),
			OPENCODE_DISABLE_MODELS_FETCH: '1',
			OPENCODE_DISABLE_AUTOUPDATE: '1',
			OPENCODE_DISABLE_LSP_DOWNLOAD: '1',
			OPENCODE_DISABLE_DEFAULT_PLUGINS: '1',
			OPENCODE_DISABLE_SHARE: '1',
		},
	};
}

/**
 * Codex as a user gets it (`codex-acp`, which runs the `codex` it depends on), with a model provider of its
 * own in `CODEX_HOME/config.toml` pointing at the scripted Responses server (agent-protocols.md §4.2): update
 * checks, analytics and the plugin and app syncs (which call github.com and chatgpt.com) off.
 */
function codexDefinition(h: Harness, baseUrl: string, auth: 'providerKey' | 'openaiSignIn' = 'providerKey'): AgentDefinition {
	const codexHome = path.join(h.home, '.codex');
	fs.mkdirSync(codexHome, { recursive: true });
	fs.writeFileSync(
		path.join(codexHome, 'config.toml'),
		[
			'model = "gpt-5.5"',
			'model_provider = "fake"',
			'check_for_update_on_startup = false',
			'[analytics]',
			'enabled = false',
			'[features]',
			'plugins = false',
			'remote_plugin = false',
			'plugin_discovery_prefetch = false',
			'apps = false',
			'[model_providers.fake]',
			'name = "Fake"',
			`base_url = "${baseUrl}/v1"`,
			// openaiSignIn: the provider takes the OpenAI sign-in, as OpenAI itself does (an API key or ChatGPT).
			auth === 'providerKey' ? 'env_key = "FAKE_API_KEY"' : 'requires_openai_auth = true',
			'wire_api = "responses"',
			'',
		].join('\n'),
	);
	return {
		id: 'codex',
		label: 'Codex',
		transport: 'acp',
		command: bin('codex', 'codex-acp'),
		args: [],
		env: { ...offlineEnv(h), CODEX_HOME: codexHome, ...(auth === 'providerKey' ? { FAKE_API_KEY: 'sk-fake-not-a-real-key' } : {}) },
	};
}

const jsonLines = (text: string): Record<string, unknown>[] =>
	text
		.trim()
		.split('\n')
		.map((l) => JSON.parse(l) as Record<string, unknown>);

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		const child = spawn(process.execPath, [cliBundle(), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (d) => (stdout += String(d)));
		child.stderr.on('data', (d) => (stderr += String(d)));
		child.on('exit', (code) => resolve({ code, stdout, stderr }));
	});
}

/** A pool with one agent that answers every permission request by `policy`; everything is ended and removed after `body`. */
async function withPool(h: Harness, server: FakeServer, def: AgentDefinition, body: (ctx: { pool: AgentPool; turns: TurnRunner; store: Store; logger: MemoryLogger }) => Promise<void>, policy: 'allow' | 'reject' = 'allow'): Promise<void> {
	const logger = new MemoryLogger();
	const store = await openStore(path.join(h.dir, 'state'), { logger });
	const broker = new PermissionBroker({ default: policy, timeoutMs: 5000 }, logger);
	const pool = new AgentPool({ store, logger, backends: { acp: new AcpBackend({ logger, startTimeoutMs: 60_000 }) }, definitions: () => [def], permissions: broker });
	const turns = new TurnRunner({ store, pool, logger });
	try {
		await body({ pool, turns, store, logger });
	} finally {
		await turns.shutdown();
		await pool.shutdown();
		broker.dispose();
		await store.close();
		await server.close();
		removeDir(h.dir);
	}
}

/** Without the agents a local run skips; CI must have them. */
function skipUnlessInstalled(ok: boolean, what: string): (this: Mocha.Context) => void {
	return function () {
		if (!ok) {
			if (process.env.CI) {
				throw new Error(`${what} not installed in ${cache}; run scripts/install-test-agents.sh`);
			}
			this.skip();
		}
	};
}

suite('agents: real claude-agent-acp, opencode and codex-acp, offline against scripted model servers', function () {
	this.timeout(180_000);
	checkNoLeaksAfterSuite({ othersTemp: agentsOwnTemp });
	suiteSetup(skipUnlessInstalled(installed, 'The real agents are'));

	const cases = [
		// How each agent's edit is attributed, as observed with the versions scripts/install-test-agents.sh pins.
		// Claude Code (claude-agent-acp) writes the file itself but reports the edit as a diff in its completed
		// tool call: attributed through the protocol (`tool_diff`). opencode (`opencode acp`) writes the file itself
		// too, reports only "Wrote file successfully." and does not call fs/write_text_file: only the worktree diff
		// after the turn (`watcher`) sees it. A new agent version that changes this fails here, on purpose.
		{ agent: 'claude', start: startFakeAnthropic, define: claudeDefinition, source: 'protocol', eventSource: 'tool_diff' },
		{ agent: 'opencode', start: startFakeOpenAI, define: opencodeDefinition, source: 'watcher', eventSource: 'watcher' },
		// Codex (codex-acp) applies its patch itself and shows the diff on the pending tool call.
		{ agent: 'codex', start: startFakeResponses, define: codexDefinition, source: 'protocol', eventSource: 'tool_diff' },
	] as const;

	for (const c of cases) {
		test(`${c.agent} through the CLI: a real edit with its own tool, attributed, transcript saved`, async () => {
			const h = harness();
			const server = await c.start({ targetFile: () => h.target, content: `hello from ${c.agent}\n` });
			try {
				const agentsFile = path.join(h.dir, 'agents.json');
				fs.writeFileSync(agentsFile, JSON.stringify([c.define(h, server.url)]));
				const state = path.join(h.dir, 'state');
				const env = { ...process.env, ...offlineEnv(h) };
				const created = await runCli(['session', 'new', '--repo', h.repo, '--title', `${c.agent} e2e`, '--state', state, '--worktrees', path.join(h.dir, 'worktrees'), '--json'], env);
				const session = JSON.parse(created.stdout) as { sessionId: string; worktreePath: string };
				h.target = path.join(session.worktreePath, 'hello.txt');
				const r = await runCli(['run', '--repo', h.repo, '--session', session.sessionId, '--agent', c.agent, '--prompt', 'Create hello.txt saying hello', '--agents', agentsFile, '--state', state, '--permissions', 'allow', '--json'], env);
				const lines = jsonLines(r.stdout);
				const end = lines[lines.length - 1]!;
				assert.equal(end.type, 'turn_end', `${r.stdout}\n${r.stderr}`);
				assert.equal(end.stopReason, 'end_turn', `${r.stdout}\n${r.stderr}`);
				assert.equal(r.code, 0);
				assert.equal(end.cwd, session.worktreePath, 'the agent worked in the session worktree');
				assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
				assert.equal(fs.readFileSync(h.target, 'utf8'), `hello from ${c.agent}\n`);
				assert.ok(server.requests.length >= 2, 'the agent asked the model twice: tool call, then the final answer');

				const pending = await runCli(['pending', String(end.sessionId), '--state', state, '--json'], env);
				const rows = jsonLines(pending.stdout);
				const row = rows.find((x) => x.path === 'hello.txt');
				assert.ok(row, pending.stdout);
				assert.equal(row.chat_id, end.chatId);
				assert.equal(row.agent, c.agent);
				assert.equal(row.source, c.source, `${c.agent}'s edit is attributed by ${c.source}`);
				assert.equal(rows.length, 1, 'one change, attributed once');

				const show = await runCli(['show', String(end.chatId), '--state', state, '--json'], env);
				const turns = show.stdout.trim().split('\n').map((l) => JSON.parse(l) as { turn: { status: string }; messages: { kind: string }[] });
				assert.equal(turns.length, 1);
				assert.equal(turns[0]!.turn.status, 'done');
				assert.ok(turns[0]!.messages.some((m) => m.kind === 'tool_call'), 'the tool call is in the transcript');
			} finally {
				await server.close();
				removeDir(h.dir);
			}
		});

		test(`${c.agent} through the pool: two chats are two contexts in one folder`, async () => {
			const h = harness();
			const server = await c.start({ targetFile: () => h.target, content: `pool ${c.agent}\n` });
			await withPool(h, server, c.define(h, server.url), async ({ pool, turns, store, logger }) => {
				const sessions = new SessionsRepo(store);
				const { session: s, worktree } = await new WorktreeService(store, logger, { root: path.join(h.dir, 'worktrees'), env: gitEnv(h.dir) }).createSession({ repo: h.repo, title: 'real' });
				h.target = path.join(worktree.path, 'hello.txt');
				const chatA = sessions.createChat({ sessionId: s.id, agent: c.agent }).id;
				const chatB = sessions.createChat({ sessionId: s.id, agent: c.agent }).id;
				const a = await turns.runTurn(chatA, c.agent, { text: 'Create hello.txt' });
				assert.equal(a.status, 'done', a.result.error);
				assert.equal(fs.readFileSync(h.target, 'utf8'), `pool ${c.agent}\n`);
				assert.equal(a.cwd, worktree.path, 'the agent worked in the session worktree');
				assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
				const b = await pool.ensure(chatB, c.agent);
				assert.notEqual(b.backendSessionId, a.result.backendSessionId);
				const pending = new PendingChangesRepo(store).listForChat(chatA);
				assert.deepEqual(pending.map((p) => [p.path, p.agent, p.turn_id, p.source]), [['hello.txt', c.agent, a.turn.id, c.source]]);
				assert.deepEqual(new PendingChangesRepo(store).listForChat(chatB), []);
				const messages = new TranscriptRepo(store).listMessages(a.turn.id);
				assert.ok(messages.length > 1);
				const edits = messages.filter((m) => m.kind === 'file_edit').map((m) => JSON.parse(m.content) as { path: string; source: string });
				assert.deepEqual(edits.map((e) => [e.path, e.source]), [['hello.txt', c.eventSource]], 'the transcript names how the edit was seen');
			});
		});
	}
});

suite('agents: real Codex (codex-acp) with the OpenAI key a user gives it, offline against a scripted Responses server', function () {
	this.timeout(180_000);
	checkNoLeaksAfterSuite({ othersTemp: agentsOwnTemp });
	suiteSetup(skipUnlessInstalled(installed, 'The real agents are'));

	test('codex asks for a sign-in; Agent Tabs signs it in with its API-key method; a new file, then an edit in the same chat with its context resumed, attributed; the key is stored nowhere of ours', async () => {
		const h = harness();
		let worktree = '';
		const key = `sk-openai-test-${Date.now()}`;
		const edit = { marker: 'EDIT-README', oldText: '# test', newText: '# test, edited by codex' };
		const server = await startFakeResponses({ targetFile: () => path.join(worktree, 'hello.txt'), content: 'hello from codex\n', edit: { ...edit, file: () => path.join(worktree, 'README.md') } });
		try {
			const codex = codexDefinition(h, server.url, 'openaiSignIn');
			const agentsFile = path.join(h.dir, 'agents.json');
			// The preset with its own command and folders: OPENAI_API_KEY is its secretEnv, passed from the user's environment.
			fs.writeFileSync(agentsFile, JSON.stringify([{ id: 'codex', command: codex.command, env: codex.env }]));
			const state = path.join(h.dir, 'state');
			const env = { ...process.env, ...offlineEnv(h), OPENAI_API_KEY: key };
			const created = await runCli(['session', 'new', '--repo', h.repo, '--title', 'codex sign-in', '--state', state, '--worktrees', path.join(h.dir, 'worktrees'), '--json'], env);
			const session = JSON.parse(created.stdout) as { sessionId: string; worktreePath: string };
			worktree = session.worktreePath;
			const run = async (prompt: string, chat?: string): Promise<{ end: Record<string, unknown>; stdout: string; stderr: string }> => {
				const r = await runCli(['run', '--repo', h.repo, '--session', session.sessionId, ...(chat ? ['--chat', chat] : []), '--agent', 'codex', '--prompt', prompt, '--agents', agentsFile, '--state', state, '--permissions', 'allow', '--json'], env);
				const end = jsonLines(r.stdout).pop()!;
				assert.equal(end.type, 'turn_end', `${r.stdout}\n${r.stderr}`);
				assert.equal(end.stopReason, 'end_turn', `${r.stdout}\n${r.stderr}`);
				assert.equal(r.code, 0);
				return { end, ...r };
			};
			const first = await run('Create hello.txt saying hello');
			const second = await run(`Change the title of README.md (${edit.marker})`, String(first.end.chatId));
			assert.equal(fs.readFileSync(path.join(worktree, 'hello.txt'), 'utf8'), 'hello from codex\n');
			assert.equal(fs.readFileSync(path.join(worktree, 'README.md'), 'utf8'), '# test, edited by codex\n');
			assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
			// The model saw the first prompt again with the second: the chat's context was resumed, not restarted.
			const lastRequest = JSON.stringify(server.requests.filter((r) => r.path === '/v1/responses').pop()?.body);
			assert.ok(lastRequest.includes('Create hello.txt saying hello'), 'the second turn carries the first one');
			const pending = jsonLines((await runCli(['pending', session.sessionId, '--state', state, '--json'], env)).stdout);
			assert.deepEqual(
				pending.map((r) => [r.path, r.kind, r.chat_id, r.agent, r.turn_id, r.source]),
				[
					['hello.txt', 'add', first.end.chatId, 'codex', first.end.turnId, 'protocol'],
					['README.md', 'modify', first.end.chatId, 'codex', second.end.turnId, 'protocol'],
				],
			);
			// Codex keeps the key in its own auth.json, as `codex login --with-api-key` does; Agent Tabs keeps it nowhere.
			const stateFiles = fs.readdirSync(state).map((f) => path.join(state, f)).filter((f) => fs.statSync(f).isFile()).map((f) => fs.readFileSync(f, 'latin1'));
			for (const text of [first.stdout, first.stderr, second.stdout, second.stderr, ...stateFiles]) {
				assert.ok(!text.includes(key), 'the key is not in the output, the database or the journal');
			}
		} finally {
			await server.close();
			removeDir(h.dir);
		}
	});
});

/**
 * The Gemini CLI as a user gets it: the built-in `gemini` preset (`gemini --acp`, found on PATH), overridden
 * only by the environment that keeps it offline. Settings as in agent-protocols.md: usage statistics off
 * (otherwise it calls a statistics host), telemetry and updates off, the model pinned (no routing call).
 */
function geminiOverride(h: Harness, baseUrl: string): { id: string; env: Record<string, string> } {
	const settings = {
		privacy: { usageStatisticsEnabled: false },
		telemetry: { enabled: false },
		general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
		model: { name: 'gemini-2.5-flash' },
	};
	fs.mkdirSync(path.join(h.home, '.gemini'), { recursive: true });
	fs.writeFileSync(path.join(h.home, '.gemini', 'settings.json'), JSON.stringify(settings));
	return {
		id: 'gemini',
		env: {
			...offlineEnv(h),
			PATH: `${binDir('gemini')}${path.delimiter}${process.env.PATH ?? ''}`,
			GOOGLE_GEMINI_BASE_URL: baseUrl,
			GEMINI_API_KEY: 'gemini-test-not-a-real-key',
			GEMINI_CLI_NO_RELAUNCH: 'true',
		},
	};
}

/** Every function call the scripted server answered a result for: the tool really ran and reported back. */
function functionResponses(server: FakeServer): string[] {
	const names: string[] = [];
	for (const r of server.requests) {
		const contents = (r.body as { contents?: { parts?: { functionResponse?: { name?: string } }[] }[] } | undefined)?.contents ?? [];
		const last = contents[contents.length - 1];
		for (const p of last?.parts ?? []) {
			if (p.functionResponse?.name) {
				names.push(p.functionResponse.name);
			}
		}
	}
	return names;
}

suite('agents: the real Gemini CLI (gemini --acp), offline against a scripted Gemini API server', function () {
	this.timeout(180_000);
	checkNoLeaksAfterSuite({ othersTemp: agentsOwnTemp });
	suiteSetup(skipUnlessInstalled(geminiInstalled, 'The Gemini CLI is'));

	const edit = { marker: 'EDIT-README', oldText: '# test', newText: '# test, edited by gemini' };
	/** The scripted Gemini server whose tool calls aim at the worktree `worktree()` returns once it exists. */
	const startServer = (worktree: () => string): Promise<FakeServer> =>
		startFakeGemini({ targetFile: () => path.join(worktree(), 'hello.txt'), content: 'hello from gemini\n', edit: { ...edit, file: () => path.join(worktree(), 'README.md') } });

	/** A session with its own worktree and one Gemini chat in it, driven through the pool. */
	async function withGeminiChat(policy: 'allow' | 'reject', body: (ctx: { h: Harness; turns: TurnRunner; store: Store; server: FakeServer; chat: string; worktree: string }) => Promise<void>): Promise<void> {
		const h = harness();
		let worktree = '';
		const server = await startServer(() => worktree);
		const def = mergeDefinitions([geminiOverride(h, server.url)]).find((d) => d.id === 'gemini')!;
		await withPool(
			h,
			server,
			def,
			async ({ turns, store, logger }) => {
				const created = await new WorktreeService(store, logger, { root: path.join(h.dir, 'worktrees'), env: gitEnv(h.dir) }).createSession({ repo: h.repo, title: `gemini ${policy}` });
				worktree = created.worktree.path;
				const chat = new SessionsRepo(store).createChat({ sessionId: created.session.id, agent: 'gemini' }).id;
				await body({ h, turns, store, server, chat, worktree });
			},
			policy,
		);
	}

	test('through the pool: creates a new file and edits an existing one in the session worktree, attributed, permission answered', async () => {
		await withGeminiChat('allow', async ({ h, turns, store, server, chat, worktree }) => {
			const a = await turns.runTurn(chat, 'gemini', { text: 'Create hello.txt saying hello' });
			assert.equal(a.status, 'done', a.result.error);
			assert.equal(a.result.stopReason, 'end_turn');
			assert.equal(a.cwd, worktree);
			assert.equal(fs.readFileSync(path.join(worktree, 'hello.txt'), 'utf8'), 'hello from gemini\n');
			assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');

			const b = await turns.runTurn(chat, 'gemini', { text: `Change the title of README.md (${edit.marker})` });
			assert.equal(b.status, 'done', b.result.error);
			assert.equal(fs.readFileSync(path.join(worktree, 'README.md'), 'utf8'), '# test, edited by gemini\n');
			assert.equal(fs.readFileSync(path.join(h.repo, 'README.md'), 'utf8'), '# test\n', 'the main checkout is untouched');
			assert.deepEqual(functionResponses(server), ['write_file', 'replace']);

			const pending = new PendingChangesRepo(store).listForChat(chat);
			assert.deepEqual(
				pending.map((p) => [p.path, p.kind, p.agent, p.turn_id, p.source]),
				[
					['hello.txt', 'add', 'gemini', a.turn.id, 'protocol'],
					['README.md', 'modify', 'gemini', b.turn.id, 'protocol'],
				],
			);
			const transcript = new TranscriptRepo(store);
			for (const turn of [a.turn, b.turn]) {
				const messages = transcript.listMessages(turn.id);
				assert.ok(messages.some((m) => m.kind === 'tool_call'), 'the tool call is in the transcript');
				const permissions = messages.filter((m) => m.kind === 'permission').map((m) => JSON.parse(m.content) as { decision?: { outcome: string; optionId?: string } });
				assert.equal(permissions.length, 1, 'Gemini asked once per edit');
				assert.equal(permissions[0]!.decision?.outcome, 'selected');
				assert.equal(permissions[0]!.decision?.optionId, 'proceed_once');
			}
		});
	});

	test('a rejected permission writes nothing and attributes nothing', async () => {
		await withGeminiChat('reject', async ({ turns, store, chat, worktree }) => {
			const a = await turns.runTurn(chat, 'gemini', { text: 'Create hello.txt saying hello' });
			const b = await turns.runTurn(chat, 'gemini', { text: `Change the title of README.md (${edit.marker})` });
			for (const turn of [a, b]) {
				const permissions = new TranscriptRepo(store)
					.listMessages(turn.turn.id)
					.filter((m) => m.kind === 'permission')
					.map((m) => (JSON.parse(m.content) as { decision?: { optionId?: string } }).decision?.optionId);
				assert.deepEqual(permissions, ['cancel'], 'Gemini asked and was told no');
			}
			assert.ok(!fs.existsSync(path.join(worktree, 'hello.txt')));
			assert.equal(fs.readFileSync(path.join(worktree, 'README.md'), 'utf8'), '# test\n');
			assert.deepEqual(new PendingChangesRepo(store).listForChat(chat), [], 'nothing was written, so nothing is attributed');
		});
	});

	test('through the CLI `run`: a new file, then an edit in the same chat, attributed exactly, transcript saved', async () => {
		const h = harness();
		let worktree = '';
		const server = await startServer(() => worktree);
		try {
			const agentsFile = path.join(h.dir, 'agents.json');
			// Only the environment: command, arguments and the missing-file answer come from the preset.
			fs.writeFileSync(agentsFile, JSON.stringify([geminiOverride(h, server.url)]));
			const state = path.join(h.dir, 'state');
			const env = { ...process.env, ...offlineEnv(h) };
			const created = await runCli(['session', 'new', '--repo', h.repo, '--title', 'gemini e2e', '--state', state, '--worktrees', path.join(h.dir, 'worktrees'), '--json'], env);
			const session = JSON.parse(created.stdout) as { sessionId: string; worktreePath: string };
			worktree = session.worktreePath;
			const run = async (prompt: string, chat?: string): Promise<Record<string, unknown>> => {
				const r = await runCli(['run', '--repo', h.repo, '--session', session.sessionId, ...(chat ? ['--chat', chat] : []), '--agent', 'gemini', '--prompt', prompt, '--agents', agentsFile, '--state', state, '--permissions', 'allow', '--json'], env);
				const end = jsonLines(r.stdout).pop()!;
				assert.equal(end.type, 'turn_end', `${r.stdout}\n${r.stderr}`);
				assert.equal(end.stopReason, 'end_turn', `${r.stdout}\n${r.stderr}`);
				assert.equal(r.code, 0);
				assert.equal(end.cwd, worktree, 'the agent worked in the session worktree');
				return end;
			};
			const first = await run('Create hello.txt saying hello');
			const second = await run(`Change the title of README.md (${edit.marker})`, String(first.chatId));
			assert.equal(second.chatId, first.chatId);
			assert.equal(fs.readFileSync(path.join(worktree, 'hello.txt'), 'utf8'), 'hello from gemini\n');
			assert.equal(fs.readFileSync(path.join(worktree, 'README.md'), 'utf8'), '# test, edited by gemini\n');
			assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
			assert.equal(fs.readFileSync(path.join(h.repo, 'README.md'), 'utf8'), '# test\n');
			assert.deepEqual(functionResponses(server), ['write_file', 'replace']);

			const pending = jsonLines((await runCli(['pending', session.sessionId, '--state', state, '--json'], env)).stdout);
			assert.deepEqual(
				pending.map((r) => [r.path, r.kind, r.chat_id, r.agent, r.turn_id, r.source]),
				[
					['hello.txt', 'add', first.chatId, 'gemini', first.turnId, 'protocol'],
					['README.md', 'modify', first.chatId, 'gemini', second.turnId, 'protocol'],
				],
			);
			const turns = jsonLines((await runCli(['show', String(first.chatId), '--state', state, '--json'], env)).stdout) as { turn: { status: string }; messages: { kind: string }[] }[];
			assert.deepEqual(
				turns.map((t) => [t.turn.status, t.messages.some((m) => m.kind === 'tool_call'), t.messages.filter((m) => m.kind === 'permission').length]),
				[
					['done', true, 1],
					['done', true, 1],
				],
			);
		} finally {
			await server.close();
			removeDir(h.dir);
		}
	});
});
