import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRepo } from './gitRepo';
import { removeDir, repoRoot, tempDir } from './helpers';

const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');
const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');

function run(args: string[]): { code: number | null; stdout: string; stderr: string } {
	const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
	return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

suite('cli: agent-tabs', function () {
	this.timeout(30_000);
	let dir: string;
	let repo: string;
	let agents: string;
	setup(() => {
		dir = tempDir('agent-tabs-cli-');
		repo = makeRepo(path.join(dir, 'repo'));
		agents = path.join(dir, 'agents.json');
		fs.writeFileSync(agents, JSON.stringify([{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: {} }]));
	});
	teardown(() => removeDir(dir));

	test('run: a turn with a scripted agent, then sessions, chats, show and pending read it back', () => {
		const state = path.join(dir, 'state');
		const r = run(['run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--prompt', 'say hi\nwrite notes.md hello', '--json']);
		assert.equal(r.code, 0, r.stderr);
		const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
		const end = lines[lines.length - 1]!;
		assert.deepEqual({ type: end.type, stopReason: end.stopReason, status: end.status, cwd: end.cwd }, { type: 'turn_end', stopReason: 'end_turn', status: 'done', cwd: repo });
		assert.ok(lines.some((l) => l.type === 'event' && (l.event as { type: string }).type === 'file_edit'));
		const chatId = String(end.chatId);
		const sessionId = String(end.sessionId);
		assert.equal(JSON.parse(run(['sessions', '--state', state, '--json']).stdout.trim()).id, sessionId);
		assert.equal(JSON.parse(run(['chats', '--state', state, '--json']).stdout.trim()).id, chatId);
		const shown = JSON.parse(run(['show', chatId, '--state', state, '--json']).stdout.trim()) as { turn: { status: string } };
		assert.equal(shown.turn.status, 'done');
		const pending = JSON.parse(run(['pending', sessionId, '--state', state, '--json']).stdout.trim()) as { path: string; chat_id: string; agent: string };
		assert.deepEqual([pending.path, pending.chat_id, pending.agent], ['notes.md', chatId, 'scripted']);
		const again = run(['run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--chat', chatId, '--prompt', 'say again', '--json']);
		assert.equal(again.code, 0, again.stderr);
		const end2 = JSON.parse(again.stdout.trim().split('\n').pop()!) as Record<string, unknown>;
		assert.equal(end2.chatId, chatId, '--chat continues the same chat');
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

	test('a state folder another process holds is refused with who holds it', async () => {
		const state = path.join(dir, 'held');
		const holder = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'lockHolder.js'), state, require.resolve('sql.js/dist/sql-wasm.wasm')], { stdio: ['ignore', 'pipe', 'inherit'] });
		try {
			await new Promise<void>((resolve) => holder.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
			const r = run(['sessions', '--state', state]);
			assert.equal(r.code, 2);
			assert.match(r.stderr, /is in use by the lock-holder test process \(pid \d+/);
		} finally {
			holder.kill('SIGKILL');
		}
	});
});
