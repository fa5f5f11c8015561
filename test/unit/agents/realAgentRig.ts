import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../../../src/agents/definitions';
import { PermissionBroker } from '../../../src/agents/permissions';
import { AgentPool } from '../../../src/agents/pool';
import { TurnRunner } from '../../../src/tasks/turnRunner';
import type { Store } from '../../../src/db/store';
import type { FakeServer } from '../../fixtures/modelServers';
import { makeRepo } from '../gitRepo';
import { cliBundle, MemoryLogger, openStore, removeDir, repoRoot, tempDir } from '../helpers';

/**
 * The real agent CLIs from npm (installed by scripts/install-test-agents.sh into the test cache), driven
 * offline: their model is one of our scripted servers on 127.0.0.1, their home, config and data folders are
 * inside the test's temp folder, and their telemetry and update checks are off.
 */
export const cache = process.env.AGENT_TABS_TEST_CACHE ?? path.join(repoRoot, '.vscode-test');
/** Each agent has its own install folder in the cache, `agents/<agent>/`. */
export const binDir = (agent: string): string => path.join(cache, 'agents', agent, 'node_modules', '.bin');
export const bin = (agent: string, name = agent): string => path.join(binDir(agent), name);
export const installed = fs.existsSync(bin('claude', 'claude-agent-acp')) && fs.existsSync(bin('opencode')) && fs.existsSync(bin('codex', 'codex-acp'));
export const geminiInstalled = fs.existsSync(bin('gemini'));
/**
 * What the real agent CLIs keep in the temp folder across runs, by their own design (not Agent Tabs' to
 * remove): the native libraries a Bun-built binary (Claude's `claude`, `opencode`) unpacks, Claude Code's
 * `claude-<uid>` and `cc-socks` folders, opencode's `opencode` folder, Codex's sandbox mount points.
 */
export const agentsOwnTemp = /^(\.[0-9a-f]+-[0-9a-f]+\.so|claude-\d+|cc-socks|opencode|codex-bwrap-synthetic-mount-targets-\d+)$/;

export interface Harness {
	dir: string;
	repo: string;
	home: string;
	target: string;
}

export function harness(): Harness {
	const dir = tempDir('agent-tabs-real-');
	const repo = makeRepo(path.join(dir, 'repo'));
	const home = path.join(dir, 'home');
	fs.mkdirSync(home, { recursive: true });
	return { dir, repo, home, target: path.join(repo, 'hello.txt') };
}

export function offlineEnv(h: Harness): Record<string, string> {
	return {
		HOME: h.home,
		XDG_CONFIG_HOME: path.join(h.home, '.config'),
		XDG_DATA_HOME: path.join(h.home, '.local', 'share'),
		XDG_CACHE_HOME: path.join(h.home, '.cache'),
		XDG_STATE_HOME: path.join(h.home, '.local', 'state'),
		DO_NOT_TRACK: '1',
	};
}

export function claudeDefinition(h: Harness, baseUrl: string): AgentDefinition {
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

export function opencodeDefinition(h: Harness, baseUrl: string): AgentDefinition {
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
export function codexDefinition(h: Harness, baseUrl: string, auth: 'providerKey' | 'openaiSignIn' = 'providerKey'): AgentDefinition {
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

export const jsonLines = (text: string): Record<string, unknown>[] =>
	text
		.trim()
		.split('\n')
		.map((l) => JSON.parse(l) as Record<string, unknown>);

export function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
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
export async function withPool(
	h: Harness,
	server: FakeServer,
	def: AgentDefinition,
	body: (ctx: { pool: AgentPool; turns: TurnRunner; store: Store; logger: MemoryLogger; broker: PermissionBroker }) => Promise<void>,
	policy: 'allow' | 'reject' | 'ask' = 'allow',
	options: { silenceTimeoutMs?: number; permissionTimeoutMs?: number } = {},
): Promise<void> {
	const logger = new MemoryLogger();
	const store = await openStore(path.join(h.dir, 'state'), { logger });
	const broker = new PermissionBroker({ default: policy, timeoutMs: options.permissionTimeoutMs ?? 5000 }, logger);
	const pool = new AgentPool({ store, logger, backends: { acp: new AcpBackend({ logger, startTimeoutMs: 60_000 }) }, definitions: () => [def], permissions: broker });
	const turns = new TurnRunner({ store, pool, logger, silenceTimeoutMs: options.silenceTimeoutMs });
	try {
		await body({ pool, turns, store, logger, broker });
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
export function skipUnlessInstalled(ok: boolean, what: string): (this: Mocha.Context) => void {
	return function () {
		if (!ok) {
			if (process.env.CI) {
				throw new Error(`${what} not installed in ${cache}; run scripts/install-test-agents.sh`);
			}
			this.skip();
		}
	};
}

/**
 * The Gemini CLI as a user gets it: the built-in `gemini` preset (`gemini --acp`, found on PATH), overridden
 * only by the environment that keeps it offline. Settings as in agent-protocols.md: usage statistics off
 * (otherwise it calls a statistics host), telemetry and updates off, the model pinned (no routing call).
 */
export function geminiOverride(h: Harness, baseUrl: string): { id: string; env: Record<string, string> } {
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

