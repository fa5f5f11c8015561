import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRepo } from './gitRepo';
import { removeDir, repoRoot, tempDir } from './helpers';

const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');
const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');

/** Worktrees made without --worktrees go here, never into the real home folder. */
let defaultWorktrees = '';

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
	const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, AGENT_TABS_WORKTREES: defaultWorktrees } });
	return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

suite('cli: agent-tabs', function () {
	this.timeout(30_000);
	let dir: string;
	let repo: string;
	let agents: string;
	setup(() => {
		dir = tempDir('agent-tabs-cli-');
		defaultWorktrees = path.join(dir, 'default-worktrees');
		repo = makeRepo(path.join(dir, 'repo'));
		agents = path.join(dir, 'agents.json');
		fs.writeFileSync(agents, JSON.stringify([{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: {} }]));
	});
	teardown(() => removeDir(dir));

	test('run: a turn with a scripted agent, then sessions, chats, show and pending read it back', () => {
		const state = path.join(dir, 'state');
		const worktrees = path.join(dir, 'worktrees');
		const r = run(['run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--worktrees', worktrees, '--prompt', 'say hi\nwrite notes.md hello', '--json']);
		assert.equal(r.code, 0, r.stderr);
		const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
		const end = lines[lines.length - 1]!;
		assert.deepEqual({ type: end.type, stopReason: end.stopReason, status: end.status }, { type: 'turn_end', stopReason: 'end_turn', status: 'done' });
		assert.equal(path.dirname(String(end.cwd)), worktrees, 'run works in a new worktree of its own');
		assert.equal(fs.readFileSync(path.join(String(end.cwd), 'notes.md'), 'utf8'), 'hello');
		assert.ok(!fs.existsSync(path.join(repo, 'notes.md')), 'the main checkout is untouched');
		assert.ok(lines.some((l) => l.type === 'event' && (l.event as { type: string }).type === 'file_edit'));
		const chatId = String(end.chatId);
		const sessionId = String(end.sessionId);
		assert.equal(JSON.parse(run(['sessions', '--state', state, '--json']).stdout.trim()).id, sessionId);
		assert.equal(JSON.parse(run(['chats', '--state', state, '--json']).stdout.trim()).id, chatId);
		const shown = JSON.parse(run(['show', chatId, '--state', state, '--json']).stdout.trim()) as { turn: { status: string } };
		assert.equal(shown.turn.status, 'done');
		const pending = JSON.parse(run(['pending', sessionId, '--state', state, '--json']).stdout.trim()) as { path: string; chat_id: string; agent: string };
		assert.deepEqual([pending.path, pending.chat_id, pending.agent], ['notes.md', chatId, 'scripted']);
		const again = run(['run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--chat', chatId, '--prompt', 'write notes.md changed\nwrite extra.md x', '--json']);
		assert.equal(again.code, 0, again.stderr);
		const end2 = JSON.parse(again.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
		assert.equal(end2.chatId, chatId, '--chat continues the same chat');
		assert.equal(end2.cwd, end.cwd, 'in the same worktree');

		// Rewind to before turn 2: notes.md is back, extra.md is gone, and the replaced state is kept.
		const rewound = run(['rewind', chatId, '2', '--state', state, '--json']);
		assert.equal(rewound.code, 0, rewound.stderr);
		assert.equal(fs.readFileSync(path.join(String(end.cwd), 'notes.md'), 'utf8'), 'hello');
		assert.ok(!fs.existsSync(path.join(String(end.cwd), 'extra.md')));
		assert.match(JSON.parse(rewound.stdout).replacedRef, /^refs\/agent-tabs\/checkpoints\//);
	});

	test('session new, risk, archive, restore, delete: unattended, and the JSON says what was saved', () => {
		const state = path.join(dir, 'state');
		const worktrees = path.join(dir, 'worktrees');
		const common = ['--state', state, '--worktrees', worktrees, '--json'];
		const created = JSON.parse(run(['session', 'new', '--repo', repo, '--title', 'CLI work', ...common]).stdout) as { sessionId: string; worktreePath: string; branch: string };
		assert.equal(created.branch, 'agent-tabs/cli-work');
		fs.writeFileSync(path.join(created.worktreePath, 'draft.txt'), 'unsaved idea\n');
		const risk = JSON.parse(run(['session', 'risk', created.sessionId, ...common]).stdout) as { untracked: string[]; clean: boolean };
		assert.deepEqual([risk.untracked, risk.clean], [['draft.txt'], false]);
		const archived = JSON.parse(run(['session', 'archive', created.sessionId, ...common]).stdout) as { saved: { ref: string; files: number } };
		assert.equal(archived.saved.files, 1);
		assert.ok(!fs.existsSync(created.worktreePath));
		const restored = JSON.parse(run(['session', 'restore', created.sessionId, ...common]).stdout) as { worktreePath: string };
		assert.equal(fs.readFileSync(path.join(restored.worktreePath, 'draft.txt'), 'utf8'), 'unsaved idea\n');
		const deleted = JSON.parse(run(['session', 'delete', created.sessionId, ...common]).stdout) as { saved: { ref: string; branch: string } };
		assert.equal(deleted.saved.branch, 'agent-tabs/cli-work');
		const list = run(['session', 'list', ...common]).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
		assert.ok(!list.some((l) => l.id === created.sessionId));
	});

	test('a turn that does not end normally exits 1', () => {
		const r = run(['run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', path.join(dir, 's'), '--prompt', 'refuse', '--json']);
		assert.equal(r.code, 1);
		assert.equal(JSON.parse(r.stdout.trim().split('\n').pop()!).stopReason, 'refusal');
	});

	test('clear errors and exit 2: unknown agent, missing repository, bad usage', () => {
		const unknown = run(['run', '--repo', repo, '--agent', 'nope', '--prompt', 'x', '--state', path.join(dir, 's')]);
		assert.equal(unknown.code, 2);
		assert.match(unknown.stderr, /There is no agent "nope". Known agents: claude, codex, gemini, opencode, goose/);
		const missing = run(['run', '--repo', path.join(dir, 'nowhere'), '--agent', 'claude', '--prompt', 'x', '--state', path.join(dir, 's')]);
		assert.equal(missing.code, 2);
		assert.match(missing.stderr, /The repository folder .*nowhere does not exist/);
		assert.equal(run(['run', '--repo', repo]).code, 2);
		assert.equal(run(['frobnicate']).code, 2);
		assert.equal(run(['--help']).code, 0);
	});

	test('a run whose agent command does not exist leaves no session, worktree, branch or chat', () => {
		const state = path.join(dir, 'state');
		const worktrees = path.join(dir, 'worktrees');
		const ghosts = path.join(dir, 'ghost-agents.json');
		fs.writeFileSync(ghosts, JSON.stringify([{ id: 'ghost', label: 'Ghost', transport: 'acp', command: path.join(dir, 'no-such-agent'), args: [], env: {} }]));
		const r = run(['run', '--repo', repo, '--agent', 'ghost', '--agents', ghosts, '--prompt', 'hello', '--state', state, '--worktrees', worktrees]);
		assert.equal(r.code, 2);
		assert.match(r.stderr, /The agent command ".*no-such-agent" was not found/);
		assert.equal(run(['session', 'list', '--state', state, '--worktrees', worktrees]).stdout, '');
		assert.equal(run(['chats', '--state', state]).stdout, '');
		assert.deepEqual(fs.readdirSync(worktrees), []);
		assert.equal(spawnSync('git', ['branch', '--list', 'agent-tabs/*'], { cwd: repo, encoding: 'utf8' }).stdout, '');
	});

	test('session new --carry with .git/index.lock present fails in git\'s words and leaves nothing', () => {
		const state = path.join(dir, 'state');
		const worktrees = path.join(dir, 'worktrees');
		fs.writeFileSync(path.join(repo, 'README.md'), 'uncommitted\n');
		fs.writeFileSync(path.join(repo, '.git', 'index.lock'), '');
		const r = run(['session', 'new', '--repo', repo, '--carry', '--state', state, '--worktrees', worktrees]);
		assert.equal(r.code, 2);
		assert.match(r.stderr, /so it was not created: fatal: Unable to create '.*index\.lock': File exists/);
		fs.rmSync(path.join(repo, '.git', 'index.lock'));
		assert.equal(run(['session', 'list', '--state', state, '--worktrees', worktrees]).stdout, '');
		assert.deepEqual(fs.readdirSync(worktrees), []);
		assert.equal(spawnSync('git', ['worktree', 'list'], { cwd: repo, encoding: 'utf8' }).stdout.trim().split('\n').length, 1);
	});

	test('a worktree folder deleted by hand: risk, archive and delete say so and go on from the branch', () => {
		const common = ['--state', path.join(dir, 'state'), '--worktrees', path.join(dir, 'worktrees')];
		const created = JSON.parse(run(['session', 'new', '--repo', repo, '--title', 'by hand', '--json', ...common]).stdout) as { sessionId: string; worktreePath: string };
		fs.rmSync(created.worktreePath, { recursive: true, force: true });
		const risk = run(['session', 'risk', created.sessionId, ...common]);
		assert.equal(risk.code, 0, risk.stderr);
		assert.match(risk.stdout, /Its folder .* is gone \(deleted or moved outside Agent Tabs\)/);
		assert.doesNotMatch(risk.stdout + risk.stderr, /not installed/);
		const archived = run(['session', 'archive', created.sessionId, ...common]);
		assert.equal(archived.code, 0, archived.stderr);
		assert.match(archived.stdout, /The folder .* was already gone \(deleted outside Agent Tabs\); the branch agent-tabs\/by-hand and any earlier saves are kept/);
		const restored = run(['session', 'restore', created.sessionId, ...common]);
		assert.equal(restored.code, 0, restored.stderr);
		fs.rmSync(created.worktreePath, { recursive: true, force: true });
		const deleted = run(['session', 'delete', created.sessionId, ...common]);
		assert.equal(deleted.code, 0, deleted.stderr);
		assert.match(deleted.stdout, /was already gone/);
	});

	test('a state folder another process holds is refused to writing commands with who holds it', async () => {
		const state = path.join(dir, 'held');
		const holder = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'lockHolder.js'), state, require.resolve('sql.js/dist/sql-wasm.wasm')], { stdio: ['ignore', 'pipe', 'inherit'] });
		try {
			await new Promise<void>((resolve) => holder.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
			const r = run(['session', 'new', '--repo', repo, '--state', state]);
			assert.equal(r.code, 2);
			assert.match(r.stderr, /is in use by the lock-holder test process \(pid \d+/);
		} finally {
			holder.kill('SIGKILL');
		}
	});

	test('run: terminals run nothing under --permissions reject; an agent running env leaks no secret into show, the output or the state', () => {
		const state = path.join(dir, 'state');
		const secrets = { ANTHROPIC_API_KEY: 'sk-ant-cli-host-key-123456', AWS_SECRET_ACCESS_KEY: 'aws-cli-host-secret-abcdef', AGENT_FILE_TOKEN: 'token-in-the-agents-file-xyz' };
		fs.writeFileSync(agents, JSON.stringify([{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: { AGENT_FILE_TOKEN: secrets.AGENT_FILE_TOKEN }, secretEnv: ['ANTHROPIC_API_KEY'] }]));
		const env = { ...process.env, AGENT_TABS_WORKTREES: defaultWorktrees, ANTHROPIC_API_KEY: secrets.ANTHROPIC_API_KEY, AWS_SECRET_ACCESS_KEY: secrets.AWS_SECRET_ACCESS_KEY };
		const outside = path.join(dir, 'outside.txt');
		const cliRun = (prompt: string, permissions: string): { code: number | null; stdout: string; stderr: string } => {
			const r = spawnSync(process.execPath, [cli, 'run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--permissions', permissions, '--prompt', prompt, '--json'], { encoding: 'utf8', env });
			return { code: r.status, stdout: r.stdout, stderr: r.stderr };
		};
		const rejected = cliRun(`terminal touch ${outside}`, 'reject');
		assert.equal(fs.existsSync(outside), false, 'no terminal runs under --permissions reject');
		assert.match(rejected.stdout, /terminal error: Refused: the permission policy did not allow/);
		const allowed = cliRun(`terminal env\nsay ${secrets.ANTHROPIC_API_KEY}\ntoolout ${secrets.AGENT_FILE_TOKEN}`, 'allow');
		assert.equal(allowed.code, 0, allowed.stderr);
		assert.match(allowed.stdout, /ANTHROPIC_API_KEY=\[redacted ANTHROPIC_API_KEY\]/, 'the agent got its key; the output shows it redacted');
		assert.doesNotMatch(allowed.stdout, /AWS_SECRET_ACCESS_KEY=/, 'a host variable the agent was not given is not in its terminal');
		const chatId = String((JSON.parse(allowed.stdout.trim().split('\n').pop()!) as { chatId: string }).chatId);
		const shown = spawnSync(process.execPath, [cli, 'show', chatId, '--state', state, '--json'], { encoding: 'utf8', env });
		const stateFiles = fs.readdirSync(state).map((f) => path.join(state, f)).filter((f) => fs.statSync(f).isFile()).map((f) => fs.readFileSync(f, 'latin1'));
		const everything = [rejected.stdout, rejected.stderr, allowed.stdout, allowed.stderr, shown.stdout, shown.stderr, ...stateFiles].join('\n');
		assert.match(shown.stdout, /redacted AGENT_FILE_TOKEN/);
		for (const value of Object.values(secrets)) {
			assert.ok(!everything.includes(value), `${value} is not in the output, show, the database or the journal`);
		}
	});
});
