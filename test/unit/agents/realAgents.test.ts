import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../../../src/agents/definitions';
import { PermissionBroker } from '../../../src/agents/permissions';
import { AgentPool } from '../../../src/agents/pool';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { startFakeAnthropic, startFakeOpenAI } from '../../fixtures/modelServers';
import { makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, repoRoot, tempDir } from '../helpers';

/**
 * The real agent CLIs from npm (installed by scripts/install-test-agents.sh into the test cache), driven
 * offline: their model is one of our scripted servers on 127.0.0.1, their home, config and data folders are
 * inside the test's temp folder, and their telemetry and update checks are off.
 */
const cache = process.env.AGENT_TABS_TEST_CACHE ?? path.join(repoRoot, '.vscode-test');
const bin = (name: string): string => path.join(cache, 'agents', 'node_modules', '.bin', name);
const installed = fs.existsSync(bin('claude-agent-acp')) && fs.existsSync(bin('opencode'));

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
		command: bin('claude-agent-acp'),
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

function runCli(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
	return new Promise((resolve) => {
		const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (d) => (stdout += String(d)));
		child.stderr.on('data', (d) => (stderr += String(d)));
		child.on('exit', (code) => resolve({ code, stdout, stderr }));
	});
}

suite('agents: real claude-agent-acp and opencode, offline against scripted model servers', function () {
	this.timeout(180_000);
	suiteSetup(function () {
		if (!installed) {
			if (process.env.CI) {
				throw new Error(`The real agents are not installed in ${cache}; run scripts/install-test-agents.sh`);
			}
			this.skip();
		}
	});

	const cases = [
		// Claude Code writes files itself: its edit is seen by the worktree diff. opencode reports through the
		// protocol or writes itself depending on its version and settings; either way it must be attributed.
		{ agent: 'claude', start: startFakeAnthropic, define: claudeDefinition, expectSources: ['watcher', 'protocol'] },
		{ agent: 'opencode', start: startFakeOpenAI, define: opencodeDefinition, expectSources: ['protocol', 'watcher'] },
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
				const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
				const end = lines[lines.length - 1]!;
				assert.equal(end.type, 'turn_end', `${r.stdout}\n${r.stderr}`);
				assert.equal(end.stopReason, 'end_turn', `${r.stdout}\n${r.stderr}`);
				assert.equal(r.code, 0);
				assert.equal(end.cwd, session.worktreePath, 'the agent worked in the session worktree');
				assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
				assert.equal(fs.readFileSync(h.target, 'utf8'), `hello from ${c.agent}\n`);
				assert.ok(server.requests.length >= 2, 'the agent asked the model twice: tool call, then the final answer');

				const pending = await runCli(['pending', String(end.sessionId), '--state', state, '--json'], env);
				const rows = pending.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
				const row = rows.find((x) => x.path === 'hello.txt');
				assert.ok(row, pending.stdout);
				assert.equal(row.chat_id, end.chatId);
				assert.equal(row.agent, c.agent);
				assert.ok((c.expectSources as readonly string[]).includes(String(row.source)), String(row.source));
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
			const logger = new MemoryLogger();
			const store = await openStore(path.join(h.dir, 'state'), { logger });
			const broker = new PermissionBroker({ default: 'allow', timeoutMs: 5000 }, logger);
			const def = c.define(h, server.url);
			const pool = new AgentPool({ store, logger, backends: { acp: new AcpBackend({ logger, startTimeoutMs: 60_000 }) }, definitions: () => [def], permissions: broker });
			try {
				const sessions = new SessionsRepo(store);
				const s = sessions.create({ title: 'real', repoRoot: h.repo });
				const chatA = sessions.createChat({ sessionId: s.id, agent: c.agent }).id;
				const chatB = sessions.createChat({ sessionId: s.id, agent: c.agent }).id;
				const a = await pool.prompt(chatA, c.agent, { text: 'Create hello.txt' });
				assert.equal(a.status, 'done', a.result.error);
				assert.equal(fs.readFileSync(h.target, 'utf8'), `pool ${c.agent}\n`);
				const b = await pool.ensure(chatB, c.agent);
				assert.notEqual(b.backendSessionId, a.result.backendSessionId);
				const pending = new PendingChangesRepo(store).listForChat(chatA);
				assert.deepEqual(pending.map((p) => [p.path, p.agent, p.turn_id]), [['hello.txt', c.agent, a.turn.id]]);
				assert.deepEqual(new PendingChangesRepo(store).listForChat(chatB), []);
				assert.ok(new TranscriptRepo(store).listMessages(a.turn.id).length > 1);
			} finally {
				await pool.shutdown();
				broker.dispose();
				await store.close();
				await server.close();
				removeDir(h.dir);
			}
		});
	}
});
