import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { agentScript, cli, jsonLines, killScriptedAgentsIn, type Run, runCli, writeScriptedAgents } from './cliRig';
import { makeRepo, snapshotFiles } from './gitRepo';
import { openStore, removeDir, repoRoot, tempDir, waitFor } from './helpers';
import { checkNoLeaksAfterSuite } from './leakCheck';


/** Worktrees made without --worktrees go here, never into the real home folder. */
let defaultWorktrees = '';

function run(args: string[], cwd?: string): Run {
	return runCli(args, { cwd, env: { ...process.env, AGENT_TABS_WORKTREES: defaultWorktrees } });
}

/** Work of every kind in a worktree: a modified tracked file, a deleted one, an untracked binary, an executable. */
function makeWork(wt: string): void {
	fs.writeFileSync(path.join(wt, 'README.md'), 'changed in the session\n');
	fs.writeFileSync(path.join(wt, 'data.bin'), Buffer.from([0, 255, 1, 13, 10, 0]));
	fs.writeFileSync(path.join(wt, 'run.sh'), '#!/bin/sh\necho session\n', { mode: 0o755 });
	fs.mkdirSync(path.join(wt, 'new dir'), { recursive: true });
	fs.writeFileSync(path.join(wt, 'new dir', 'ünïcødé.txt'), 'new\n');
}


/**
 * Folds every journal of a state folder into its snapshot (an open and close with every journal counted as
 * large), so the snapshot alone holds the state: damaging it then loses the state, as a damaged database does.
 */
async function foldIntoSnapshot(state: string): Promise<void> {
	const store = await openStore(state, { smallJournalRecords: 1 });
	await store.close();
}

suite('cli: agent-tabs', function () {
	this.timeout(90_000); // each test starts several CLI processes; CI machines are shared and slow
	checkNoLeaksAfterSuite();
	let dir: string;
	let repo: string;
	let agents: string;
	setup(() => {
		dir = tempDir('agent-tabs-cli-');
		defaultWorktrees = path.join(dir, 'default-worktrees');
		repo = makeRepo(path.join(dir, 'repo'));
		agents = path.join(dir, 'agents.json');
		writeScriptedAgents(agents);
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
		// A chat keeps its agent, and a session its repository: a run that says otherwise is refused.
		fs.writeFileSync(agents, JSON.stringify([...(JSON.parse(fs.readFileSync(agents, 'utf8')) as object[]), { id: 'reviewer', label: 'Reviewer', transport: 'acp', command: process.execPath, args: [agentScript], env: {} }]));
		const otherAgent = run(['run', '--repo', repo, '--agent', 'reviewer', '--agents', agents, '--state', state, '--chat', chatId, '--prompt', 'recall']);
		assert.equal(otherAgent.code, 2, otherAgent.stderr);
		assert.match(otherAgent.stderr, /is a conversation with scripted, not reviewer; --chat continues it, so run it with --agent scripted/);
		const otherRepo = makeRepo(path.join(dir, 'other repo'));
		const wrongRepo = run(['run', '--repo', otherRepo, '--agent', 'scripted', '--agents', agents, '--state', state, '--session', sessionId, '--prompt', 'say hi']);
		assert.equal(wrongRepo.code, 2, wrongRepo.stderr);
		assert.match(wrongRepo.stderr, /works in .*repo, not in .*other repo; name its repository with --repo/);
		assert.equal(jsonLines(run(['chats', '--state', state, '--json']).stdout).length, 1, 'no chat was made by the refused runs');

		// Rewind to before turn 2: notes.md is back, extra.md is gone, and the replaced state is kept.
		const rewound = run(['rewind', chatId, '2', '--state', state, '--json']);
		assert.equal(rewound.code, 0, rewound.stderr);
		assert.equal(fs.readFileSync(path.join(String(end.cwd), 'notes.md'), 'utf8'), 'hello');
		assert.ok(!fs.existsSync(path.join(String(end.cwd), 'extra.md')));
		assert.match(JSON.parse(rewound.stdout).replacedRef, /^refs\/agent-tabs\/checkpoints\//);
	});

	test('a run killed mid-turn: the next one records what the cut-off turn wrote unreported as that turn\'s, and its own edits as its own', async () => {
		const state = path.join(dir, 'state');
		const common = ['--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--worktrees', path.join(dir, 'worktrees'), '--json'];
		const first = run(['run', ...common, '--prompt', 'say first']);
		assert.equal(first.code, 0, first.stderr);
		const { chatId, sessionId, cwd } = JSON.parse(first.stdout.trim().split('\n').pop()!) as { chatId: string; sessionId: string; cwd: string };
		// The agent writes one file through Agent Tabs and one itself, reporting nothing (as opencode does).
		const child = spawn(process.execPath, [cli, 'run', ...common, '--chat', chatId, '--prompt', 'write reported.md r\ndiskwrite quiet.md q\nsay written\nsleep 30000'], { detached: true, env: { ...process.env, AGENT_TABS_WORKTREES: defaultWorktrees }, stdio: ['ignore', 'pipe', 'ignore'] });
		let out = '';
		child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
		await waitFor(() => out.includes('written'), 'the agent to write both files', 30_000);
		process.kill(-child.pid!, 'SIGKILL');
		await new Promise((r) => child.once('exit', r));
		killScriptedAgentsIn(cwd);
		const after = run(['run', ...common, '--chat', chatId, '--prompt', 'diskwrite later.md l']);
		assert.equal(after.code, 0, after.stderr);
		const turns = run(['show', chatId, '--state', state, '--json']).stdout.trim().split('\n').map((l) => (JSON.parse(l) as { turn: { id: string; status: string } }).turn);
		assert.deepEqual(turns.map((t) => t.status), ['done', 'interrupted', 'done']);
		const pending = run(['pending', sessionId, '--state', state, '--json']).stdout.trim().split('\n').map((l) => JSON.parse(l) as { path: string; turn_id: string; source: string });
		assert.deepEqual(
			pending.map((p) => [p.path, p.turn_id, p.source]).sort(),
			[
				['later.md', turns[2]!.id, 'watcher'],
				['quiet.md', turns[1]!.id, 'watcher'],
				['reported.md', turns[1]!.id, 'protocol'],
			],
		);
		assert.equal(fs.readFileSync(path.join(cwd, 'quiet.md'), 'utf8'), 'q');
	});

	test('a run killed mid-turn: a file the agent named after a key is recorded by the next run under its redacted name', async () => {
		const state = path.join(dir, 'state');
		const key = 'sk-ant-cli-named-file-0123456789';
		const token = 'token-in-the-agents-file-named-42';
		writeScriptedAgents(agents, { AGENT_FILE_TOKEN: token }, { secretEnv: ['ANTHROPIC_API_KEY'] });
		const env = { ...process.env, AGENT_TABS_WORKTREES: defaultWorktrees, ANTHROPIC_API_KEY: key };
		const common = ['--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--worktrees', path.join(dir, 'worktrees'), '--json'];
		const first = runCli(['run', ...common, '--prompt', 'say first'], { env });
		assert.equal(first.code, 0, first.stderr);
		const { chatId, sessionId, cwd } = JSON.parse(first.stdout.trim().split('\n').pop()!) as { chatId: string; sessionId: string; cwd: string };
		const child = spawn(process.execPath, [cli, 'run', ...common, '--chat', chatId, '--prompt', `diskwrite named-${key}.md q\ndiskwrite named-${token}.md q\nsay written\nsleep 30000`], { detached: true, env, stdio: ['ignore', 'pipe', 'ignore'] });
		let out = '';
		child.stdout.on('data', (d: Buffer) => (out += d.toString('utf8')));
		await waitFor(() => out.includes('written'), 'the agent to write the files', 30_000);
		process.kill(-child.pid!, 'SIGKILL');
		await new Promise((r) => child.once('exit', r));
		killScriptedAgentsIn(cwd);
		const after = runCli(['run', ...common, '--chat', chatId, '--prompt', 'say after'], { env });
		assert.equal(after.code, 0, after.stderr);
		const pending = runCli(['pending', sessionId, '--state', state, '--json'], { env }).stdout;
		const paths = pending.trim().split('\n').map((l) => (JSON.parse(l) as { path: string }).path).sort();
		assert.deepEqual(paths, ['named-[redacted AGENT_FILE_TOKEN].md', 'named-[redacted ANTHROPIC_API_KEY].md']);
		const stateFiles = fs.readdirSync(state).map((f) => path.join(state, f)).filter((f) => fs.statSync(f).isFile()).map((f) => fs.readFileSync(f, 'latin1'));
		for (const secret of [key, token]) {
			assert.ok(!stateFiles.some((f) => f.includes(secret)), `${secret} is not in the database or the journal`);
		}
	});

	test('a run killed the instant its agent has the prompt: the turn is on disk (interrupted, its write its own) and its task never runs again', async () => {
		const state = path.join(dir, 'state');
		const common = ['--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--worktrees', path.join(dir, 'worktrees'), '--json'];
		const first = run(['run', ...common, '--prompt', 'say first']);
		assert.equal(first.code, 0, first.stderr);
		const { chatId, sessionId, cwd } = JSON.parse(first.stdout.trim().split('\n').pop()!) as { chatId: string; sessionId: string; cwd: string };
		const marker = path.join(cwd, 'prompted.md');
		const child = spawn(process.execPath, [cli, 'run', ...common, '--chat', chatId, '--prompt', 'diskwrite prompted.md p\nsleep 30000'], { detached: true, env: { ...process.env, AGENT_TABS_WORKTREES: defaultWorktrees }, stdio: 'ignore' });
		// Killed as soon as the agent's first act is visible, before anything of the turn's end can be written.
		const exited = new Promise((r) => child.once('exit', r));
		await new Promise<void>((resolve, reject) => {
			const started = Date.now();
			const poll = setInterval(() => {
				if (fs.existsSync(marker)) {
					clearInterval(poll);
					try {
						process.kill(-child.pid!, 'SIGKILL');
					} catch {
						// ended already: the assertions below say whether it ended too early
					}
					resolve();
				} else if (child.exitCode !== null || Date.now() - started > 60_000) {
					clearInterval(poll);
					reject(new Error(`the run ended (${child.exitCode}) or took a minute before its agent had the prompt`));
				}
			}, 1);
		});
		await exited;
		killScriptedAgentsIn(cwd);
		fs.writeFileSync(marker, 'x'); // the agent would write "p" again if it were given the prompt again
		const after = run(['run', ...common, '--chat', chatId, '--prompt', 'say after']);
		assert.equal(after.code, 0, after.stderr);
		const turns = run(['show', chatId, '--state', state, '--json']).stdout.trim().split('\n').map((l) => (JSON.parse(l) as { turn: { id: string; status: string } }).turn);
		assert.deepEqual(turns.map((t) => t.status), ['done', 'interrupted', 'done'], 'the cut-off turn is recorded, and not run a second time');
		assert.equal(fs.readFileSync(marker, 'utf8'), 'x', 'the agent never had the killed prompt again');
		const pending = run(['pending', sessionId, '--state', state, '--json']).stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { path: string; turn_id: string });
		assert.deepEqual(pending.map((p) => [p.path, p.turn_id]), [['prompted.md', turns[1]!.id]]);
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

	test('session list run in a repository moved by hand takes its sessions along', () => {
		const state = path.join(dir, 'state');
		const common = ['--state', state, '--worktrees', path.join(dir, 'worktrees'), '--json'];
		const created = JSON.parse(run(['session', 'new', '--repo', repo, '--title', 'before the move', ...common]).stdout) as { sessionId: string; worktreePath: string };
		fs.writeFileSync(path.join(created.worktreePath, 'draft.txt'), 'unsaved idea\n');
		const moved = path.join(dir, 'moved-repo');
		fs.renameSync(repo, moved);
		const listed = jsonLines(run(['session', 'list', ...common], moved).stdout);
		assert.equal(listed.find((s) => s.id === created.sessionId)?.worktree_state, 'ready');
		const risk = run(['session', 'risk', created.sessionId, ...common]);
		assert.equal(risk.code, 0, risk.stderr);
		assert.deepEqual((JSON.parse(risk.stdout) as { untracked: string[] }).untracked, ['draft.txt']);
		fs.renameSync(moved, repo);
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
		// A blank prompt is refused before anything is made for it.
		const blank = run(['run', '--repo', repo, '--agent', 'ghost', '--agents', ghosts, '--prompt', '  ', '--state', state, '--worktrees', worktrees]);
		assert.equal(blank.code, 2);
		assert.match(blank.stderr, /--prompt needs a value .*; it was given an empty one/);
		assert.equal(run(['session', 'list', '--state', state, '--worktrees', worktrees]).stdout, '');
		assert.deepEqual(fs.readdirSync(worktrees), []);
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
		writeScriptedAgents(agents, { AGENT_FILE_TOKEN: secrets.AGENT_FILE_TOKEN }, { secretEnv: ['ANTHROPIC_API_KEY'] });
		const env = { ...process.env, AGENT_TABS_WORKTREES: defaultWorktrees, ANTHROPIC_API_KEY: secrets.ANTHROPIC_API_KEY, AWS_SECRET_ACCESS_KEY: secrets.AWS_SECRET_ACCESS_KEY };
		const outside = path.join(dir, 'outside.txt');
		const cliRun = (prompt: string, permissions: string): Run => runCli(['run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--permissions', permissions, '--prompt', prompt, '--json'], { env });
		const rejected = cliRun(`terminal touch ${outside}`, 'reject');
		assert.equal(fs.existsSync(outside), false, 'no terminal runs under --permissions reject');
		assert.match(rejected.stdout, /terminal error: Refused: the permission policy did not allow/);
		const allowed = cliRun(`terminal env\nsay ${secrets.ANTHROPIC_API_KEY}\ntoolout ${secrets.AGENT_FILE_TOKEN}`, 'allow');
		assert.equal(allowed.code, 0, allowed.stderr);
		assert.match(allowed.stdout, /ANTHROPIC_API_KEY=\[redacted ANTHROPIC_API_KEY\]/, 'the agent got its key; the output shows it redacted');
		assert.doesNotMatch(allowed.stdout, /AWS_SECRET_ACCESS_KEY=/, 'a host variable the agent was not given is not in its terminal');
		const chatId = String((JSON.parse(allowed.stdout.trim().split('\n').pop()!) as { chatId: string }).chatId);
		const shown = runCli(['show', chatId, '--state', state, '--json'], { env });
		const stateFiles = fs.readdirSync(state).map((f) => path.join(state, f)).filter((f) => fs.statSync(f).isFile()).map((f) => fs.readFileSync(f, 'latin1'));
		const everything = [rejected.stdout, rejected.stderr, allowed.stdout, allowed.stderr, shown.stdout, shown.stderr, ...stateFiles].join('\n');
		assert.match(shown.stdout, /redacted AGENT_FILE_TOKEN/);
		for (const value of Object.values(secrets)) {
			assert.ok(!everything.includes(value), `${value} is not in the output, show, the database or the journal`);
		}
	});

	test('what an agent says reaches the terminal without control sequences: no clipboard write, title, link or screen clearing', () => {
		const state = path.join(dir, 'state');
		// OSC 52 (sets the clipboard), OSC 0 (the window title), OSC 8 (a link whose text hides where it goes),
		// CSI 2J (clears the screen), a carriage return that writes over the line, and C1's 8-bit CSI and OSC.
		const hostile = 'A\u001b]52;c;cm0gLXJmIH4K\u0007B\u001b]0;TITLE\u0007C\u001b]8;;https://evil.example\u0007click\u001b]8;;\u0007\u001b[2J\rD\u009b2J\u009d0;T\u009c';
		const prompt = `say ${hostile}\nthink ${hostile}\ntool t1 ${hostile}\nplan ${hostile}`;
		// eslint-disable-next-line no-control-regex -- finding control characters is the point
		const controls = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/;
		const human = run(['run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--prompt', prompt]);
		assert.equal(human.code, 0, human.stderr);
		assert.ok(!controls.test(human.stdout), `no control character reaches the terminal: ${JSON.stringify(human.stdout)}`);
		assert.match(human.stdout, /A\\u001b\]52;c;cm0gLXJmIH4K\\u0007B/, 'they are shown, written out');
		const chatId = /chat (chat-[0-9a-f]+)/.exec(human.stdout)?.[1];
		assert.ok(chatId, human.stdout);
		const shown = run(['show', chatId, '--state', state]);
		assert.equal(shown.code, 0, shown.stderr);
		assert.ok(!controls.test(shown.stdout), `nor through show: ${JSON.stringify(shown.stdout)}`);
		assert.match(shown.stdout, /\\u001b\[2J\\u000dD\\u009b2J/);
		const json = run(['show', chatId, '--state', state, '--json']);
		assert.ok(!controls.test(json.stdout), `nor as JSON (which escapes C0 controls but not C1 ones): ${JSON.stringify(json.stdout)}`);
		assert.ok(jsonLines(json.stdout).some((l) => JSON.stringify(l).includes(JSON.stringify(hostile).slice(1, -1))), 'the JSON still reads back as what the agent said');
	});

	test('session attach: a deleted session\'s worktree back as a new session, byte for byte, by id or by saved ref', function () {
		this.timeout(180_000); // a dozen CLI processes, each loading sql.js
		const common = ['--state', path.join(dir, 'state'), '--worktrees', path.join(dir, 'worktrees'), '--json'];
		const created = jsonLines(run(['session', 'new', '--repo', repo, '--title', 'Keep me', ...common]).stdout)[0] as { sessionId: string; worktreePath: string };
		makeWork(created.worktreePath);
		const before = snapshotFiles(created.worktreePath);
		const deleted = jsonLines(run(['session', 'delete', created.sessionId, ...common]).stdout)[0] as { saved: { ref: string } };
		assert.ok(!fs.existsSync(created.worktreePath));

		const none = run(['session', 'attach', ...common]);
		assert.equal(none.code, 2);
		assert.match(none.stderr, /session attach needs a detached worktree .* Detached worktrees: wt-\w+ \(agent-tabs\/keep-me\)/);
		const detached = jsonLines(run(['session', 'list', ...common]).stdout).map((l) => l.detachedWorktree as { id: string } | undefined).filter(Boolean);
		assert.equal(detached.length, 1);
		const attached = run(['session', 'attach', detached[0]!.id, ...common]);
		assert.equal(attached.code, 0, attached.stderr);
		const a = jsonLines(attached.stdout)[0] as { sessionId: string; title: string; worktreePath: string };
		assert.equal(a.title, 'Keep me');
		assert.deepEqual(snapshotFiles(a.worktreePath), before, 'every file as it was');
		const again = run(['session', 'attach', detached[0]!.id, ...common]);
		assert.equal(again.code, 2);
		assert.match(again.stderr, /already belongs to a session/);
		const listed = jsonLines(run(['session', 'list', ...common]).stdout);
		assert.deepEqual(listed.map((l) => [l.id, l.worktree_state]), [[a.sessionId, 'ready']]);

		// A state folder that never knew the session (a new machine, a lost database): by its saved ref.
		run(['session', 'delete', a.sessionId, ...common]);
		const elsewhere = ['--state', path.join(dir, 'other-state'), '--worktrees', path.join(dir, 'worktrees'), '--json'];
		const withoutRepo = run(['session', 'attach', deleted.saved.ref, ...elsewhere]);
		assert.equal(withoutRepo.code, 2);
		assert.match(withoutRepo.stderr, /name the repository with --repo/);
		const byRef = run(['session', 'attach', deleted.saved.ref, '--repo', repo, '--title', 'Back again', ...elsewhere]);
		assert.equal(byRef.code, 0, byRef.stderr);
		const b = jsonLines(byRef.stdout)[0] as { title: string; worktreePath: string };
		assert.equal(b.title, 'Back again');
		assert.deepEqual(snapshotFiles(b.worktreePath), before);
	});

	test('a damaged database is an error naming the file kept, exit 3; sessions are rebuilt from git and can be restored', async function () {
		this.timeout(180_000); // a dozen CLI processes, each loading sql.js
		const state = path.join(dir, 'state');
		const common = ['--state', state, '--worktrees', path.join(dir, 'worktrees'), '--json'];
		const live = jsonLines(run(['session', 'new', '--repo', repo, '--title', 'Live', ...common]).stdout)[0] as { worktreePath: string };
		const shelved = jsonLines(run(['session', 'new', '--repo', repo, '--title', 'Shelved work', ...common]).stdout)[0] as { sessionId: string; worktreePath: string };
		makeWork(shelved.worktreePath);
		const before = snapshotFiles(shelved.worktreePath);
		assert.equal(run(['session', 'archive', shelved.sessionId, ...common]).code, 0);
		await foldIntoSnapshot(state); // else the journals still hold every write and replay it over the damage
		const snapshot = path.join(state, 'agent-tabs.sqlite');
		fs.writeFileSync(snapshot, fs.readFileSync(snapshot).subarray(0, 5000));

		// A read-only query, without --repo: the worktrees folder leads to the repository.
		const damaged = run(['sessions', ...common]);
		assert.equal(damaged.code, 3, damaged.stderr);
		const kept = fs.readdirSync(state).filter((n) => n.startsWith('agent-tabs.sqlite.bad-'));
		assert.equal(kept.length, 1, 'the damaged file is kept');
		assert.match(damaged.stderr, /agent-tabs: error: The Agent Tabs database in .* was damaged and could not be used/);
		assert.ok(damaged.stderr.includes(path.join(state, kept[0]!)), 'the message names the file kept, by its full path');
		assert.match(damaged.stderr, /Rebuilt from git \(.*repo\): 2 sessions/);
		const error = jsonLines(damaged.stdout)[0] as { type: string; code: string; keptAs: string[]; rebuilt: { kind: string; title: string }[] };
		assert.deepEqual([error.type, error.code, error.keptAs], ['error', 'store/damaged', [path.join(state, kept[0]!)]]);
		assert.deepEqual(error.rebuilt.map((r) => [r.kind, r.title]).sort(), [['archived', 'Shelved work'], ['session', 'live']]);

		// The next command runs normally on the rebuilt state.
		const listed = run(['session', 'list', ...common]);
		assert.equal(listed.code, 0, listed.stderr);
		const rows = jsonLines(listed.stdout) as { id: string; title: string; status: string; worktree_path: string; worktree_state: string }[];
		assert.deepEqual(rows.map((r) => [r.title, r.status, r.worktree_path, r.worktree_state]).sort(), [
			['Shelved work', 'archived', shelved.worktreePath, 'removed'],
			['live', 'active', live.worktreePath, 'ready'],
		]);
		const restored = run(['session', 'restore', rows.find((r) => r.title === 'Shelved work')!.id, ...common]);
		assert.equal(restored.code, 0, restored.stderr);
		assert.deepEqual(snapshotFiles(shelved.worktreePath), before, 'the archived work comes back byte for byte');
	});

	test('killed at random moments while it rebuilds, the next command still reports the damage and nothing is lost or doubled', async function () {
		this.timeout(600_000);
		const state = path.join(dir, 'state');
		const common = ['--state', state, '--worktrees', path.join(dir, 'worktrees'), '--json'];
		const made = ['Live', 'Archived', 'Deleted'].map((title) => jsonLines(run(['session', 'new', '--repo', repo, '--title', title, ...common]).stdout)[0] as { sessionId: string; worktreePath: string });
		for (const m of made) {
			fs.writeFileSync(path.join(m.worktreePath, 'work.txt'), `${m.worktreePath}\n`);
		}
		run(['session', 'archive', made[1]!.sessionId, ...common]);
		run(['session', 'delete', made[2]!.sessionId, ...common]);
		await foldIntoSnapshot(state); // else the journals still hold every write and replay it over the damage
		const snapshot = path.join(state, 'agent-tabs.sqlite');
		fs.writeFileSync(snapshot, fs.readFileSync(snapshot).subarray(0, 3000));
		// Each copy below stands for the damaged state folder, which the worktrees' owner marks name: the original
		// goes away (a state folder that still has its database holds its own sessions).
		const original = path.join(dir, 'state-original');
		fs.renameSync(state, original);
		// How long an uninterrupted recovery takes, on a copy: the kills land anywhere inside it.
		fs.cpSync(original, path.join(dir, 'timing'), { recursive: true });
		const startedAt = Date.now();
		assert.equal(run(['sessions', '--state', path.join(dir, 'timing'), '--worktrees', path.join(dir, 'worktrees')]).code, 3);
		const duration = Date.now() - startedAt;
		const rounds = 6;
		for (let round = 0; round < rounds; round++) {
			const copy = path.join(dir, `state-${round}`);
			fs.cpSync(original, copy, { recursive: true });
			const args = ['sessions', '--state', copy, '--worktrees', path.join(dir, 'worktrees'), '--json'];
			const child = spawn(process.execPath, [cli, ...args], { stdio: 'ignore', env: { ...process.env, AGENT_TABS_WORKTREES: defaultWorktrees } });
			const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
			await new Promise((resolve) => setTimeout(resolve, Math.floor(Math.random() * duration)));
			child.kill('SIGKILL');
			await exited;
			const next = run(args);
			assert.ok(next.code === 0 || next.code === 3, `round ${round}: ${next.stderr}`);
			const stillDamaged = fs.readdirSync(copy).some((n) => n.startsWith('agent-tabs.sqlite.bad-'));
			assert.ok(stillDamaged, `round ${round}: the damaged file is kept`);
			assert.ok(!fs.existsSync(path.join(copy, 'agent-tabs.rebuild-needed')), `round ${round}: the rebuild was finished by the next command`);
			const listed = jsonLines(run(['session', 'list', ...args.slice(1)]).stdout);
			const paths = listed.map((l) => (l.worktree_path as string | undefined) ?? (l.detachedWorktree as { path: string } | undefined)?.path).filter(Boolean).sort();
			assert.deepEqual(paths, made.map((m) => m.worktreePath).sort(), `round ${round}: every worktree exactly once, as a session or detached`);
		}
	});

	test('a worktrees folder inside the repository is refused, however it is spelled, and nothing is created', function () {
		this.timeout(180_000); // a dozen CLI processes, each loading sql.js
		const state = ['--state', path.join(dir, 'state')];
		const linked = path.join(dir, 'linked');
		execFileSync('git', ['worktree', 'add', '-q', '-b', 'other', linked], { cwd: repo });
		fs.symlinkSync(repo, path.join(dir, 'link-to-repo'));
		const attempts: [string, string | undefined][] = [
			[path.join(repo, 'wts'), undefined],
			[repo, undefined],
			['wts', repo], // relative to where the command runs
			[path.join(dir, 'repo', 'sub', '..', 'wts'), undefined],
			[path.join(dir, 'link-to-repo', 'wts'), undefined],
			[path.join(linked, 'wts'), undefined],
		];
		for (const [worktrees, cwd] of attempts) {
			const r = run(['session', 'new', '--repo', repo, '--title', 'Inside', '--worktrees', worktrees, ...state], cwd);
			assert.equal(r.code, 2, `${worktrees}: ${r.stdout}`);
			assert.match(r.stderr, /The worktrees folder .* is inside the git checkout .*\. Session worktrees there would show up as untracked files, and a "git clean -fdx" would delete them\. Choose a folder outside the repository/);
		}
		assert.equal(execFileSync('git', ['status', '--porcelain'], { cwd: repo, encoding: 'utf8' }), '', 'the main checkout shows nothing new');
		assert.equal(execFileSync('git', ['branch', '--list', 'agent-tabs/*'], { cwd: repo, encoding: 'utf8' }), '', 'no branch was made');
		assert.equal(jsonLines(run(['session', 'list', '--json', ...state]).stdout).length, 0, 'no session was made');
		const beside = run(['session', 'new', '--repo', repo, '--title', 'Beside', '--worktrees', '../wts', ...state], repo);
		assert.equal(beside.code, 0, beside.stderr);
		assert.ok(fs.existsSync(path.join(dir, 'wts', 'beside')), 'a relative folder outside the repository is fine');
	});
});
