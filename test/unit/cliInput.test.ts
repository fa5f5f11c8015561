import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { type Run, runCli, writeScriptedAgents } from './cliRig';
import { gitEnv, makeRepo } from './gitRepo';
import { removeDir, repoRoot, tempDir, wasmPath } from './helpers';
import { checkNoLeaksAfterSuite } from './leakCheck';

/** Runs the built CLI as a child process; `asOtherUser` runs it as `nobody` when the tests run as root (root ignores file modes). */
function cliRun(args: string[], options: { cwd?: string; asOtherUser?: boolean } = {}): Run {
	return runCli(args, { ...options, env: { ...process.env, AGENT_TABS_WORKTREES: path.join(options.cwd ?? '/nonexistent', 'default-worktrees') } });
}

/** Like `cliRun`, with file sizes limited to `maxFileBytes` (prlimit, a real RLIMIT_FSIZE: writes past it fail with EFBIG). */
function cliRunLimited(args: string[], maxFileBytes: number, cwd: string): Run {
	return runCli(args, { cwd, maxFileBytes, env: { ...process.env, AGENT_TABS_WORKTREES: path.join(cwd, 'default-worktrees') } });
}

/** No raw system error text (errno codes, stack traces) reaches the user. */
function assertPlainWords(r: Run): void {
	assert.doesNotMatch(r.stderr, /\b(E[A-Z]{3,}|spawn|errno|at .+\.js:\d+)\b/, r.stderr);
	assert.doesNotMatch(r.stderr, /cannot lock ref/, r.stderr);
}

function listFiles(dir: string): string[] {
	return fs.existsSync(dir) ? fs.readdirSync(dir).sort() : [];
}

suite('cli: careless input gets plain words', function () {
	// Each case starts real processes (node, git, an agent); the machine running them may be busy.
	this.timeout(120_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	let repo: string;
	let state: string;
	let worktrees: string;
	setup(() => {
		dir = tempDir('agent-tabs-cli-input-');
		repo = makeRepo(path.join(dir, 'repo'));
		state = path.join(dir, 'state');
		worktrees = path.join(dir, 'worktrees');
	});
	teardown(() => removeDir(dir));

	test('an unknown flag is a usage error (exit 2) with the closest flag and the command\'s usage, and nothing is created', () => {
		const r = cliRun(['session', 'new', '--repo', repo, '--titel', 'x', '--state', state, '--worktrees', worktrees], { cwd: dir });
		assert.equal(r.code, 2, r.stdout + r.stderr);
		assert.match(r.stderr, /Unknown option --titel for "session new"\. Did you mean --title\?/);
		assert.match(r.stderr, /Usage: agent-tabs session new --repo <dir> \[--title <t>\]/);
		assert.deepEqual(listFiles(worktrees), [], 'no worktree was made');
		assert.deepEqual(listFiles(state), [], 'the state was not touched');

		const elsewhere = cliRun(['sessions', '--repo', repo, '--state', state], { cwd: dir });
		assert.equal(elsewhere.code, 2);
		assert.match(elsewhere.stderr, /Unknown option --repo for "sessions".*belongs to "run", "session new"/);
		const typoCommand = cliRun(['sesions', '--state', state], { cwd: dir });
		assert.equal(typoCommand.code, 2);
		assert.match(typoCommand.stderr, /Unknown command "sesions"\. Did you mean "sessions"\?/);
	});

	test('--json=false is refused, not read as true; --json still means JSON', () => {
		const r = cliRun(['sessions', '--json=false', '--state', state], { cwd: dir });
		assert.equal(r.code, 2);
		assert.equal(r.stdout, '', 'no JSON was printed');
		assert.match(r.stderr, /--json is a switch and takes no value \(got "false"\)/);
		assert.equal(cliRun(['session', 'new', '--repo', repo, '--carry=no', '--state', state, '--worktrees', worktrees], { cwd: dir }).code, 2);
		const made = cliRun(['session', 'new', '--repo', repo, '--title', 'ok', '--state', state, '--worktrees', worktrees, '--json'], { cwd: dir });
		assert.equal(made.code, 0, made.stderr);
		assert.equal((JSON.parse(made.stdout) as { branch: string }).branch, 'agent-tabs/ok');
	});

	test('missing values, bad choices, extra or missing arguments: exit 2 and the command\'s usage', () => {
		const cases: [string[], RegExp][] = [
			[['session', 'new', '--repo', repo, '--title', '--json'], /--title needs a value, but the next word is "--json"\. For a value that starts with a dash write --title=--json/],
			[['session', 'new', '--repo'], /--repo needs a value/],
			[['session', 'new', '--title', 't'], /"session new" needs --repo <dir>/],
			[['run', '--repo', repo, '--agent', 'claude', '--prompt', 'x', '--permissions', 'ask'], /--permissions must be reject or allow \(got "ask"\)/],
			[['session', 'merge', 'ses-1', '--strategy', 'octopus'], /--strategy must be merge, squash or rebase/],
			[['sessions', 'extra'], /"sessions" takes no arguments; "extra" is extra/],
			[['show'], /"show" needs <chatId>/],
			[['session', 'risk', 'a', 'b'], /"session risk" takes at most <sessionId>; "b" is extra/],
			[['session', 'nwe'], /Unknown command "session nwe".*Did you mean "session new"\?/],
			[['--log-level', 'loud', 'sessions'], /--log-level must be error, warn, info or debug/],
		];
		for (const [args, message] of cases) {
			const r = cliRun([...args, '--state', state], { cwd: dir });
			assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
			assert.match(r.stderr, message, args.join(' '));
			assert.match(r.stderr, /Usage: agent-tabs/, args.join(' '));
		}
		assert.deepEqual(listFiles(state), [], 'no usage error touched the state');
		const badTurn = cliRun(['rewind', 'chat-x', 'abc', '--state', state], { cwd: dir });
		assert.equal(badTurn.code, 2, badTurn.stderr);
		assert.match(badTurn.stderr, /The turn to rewind to is a number .*not "abc"/);
		// An empty value is a mistake, not "the current folder" or "no title".
		const before = fs.readdirSync(dir).sort();
		for (const args of [['sessions', '--state', ''], ['session', 'new', '--repo', repo, '--title', ' ', '--state', state]]) {
			const r = cliRun(args, { cwd: dir });
			assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
			assert.match(r.stderr, /needs a value.*; it was given an empty one/);
		}
		assert.deepEqual(fs.readdirSync(dir).sort(), before, 'no state was made in the current folder');
		const help = cliRun(['session', 'new', '--help'], { cwd: dir });
		assert.equal(help.code, 0);
		assert.match(help.stdout, /^Usage: agent-tabs session new/);
		assert.equal(cliRun(['help', 'rewind'], { cwd: dir }).code, 0);
	});

	test('a relative XDG_STATE_HOME is ignored, as the XDG spec says: the state goes to ~/.local/state, not into the folder the command runs in', () => {
		const home = path.join(dir, 'home');
		fs.mkdirSync(home);
		const env: NodeJS.ProcessEnv = { ...process.env, HOME: home, XDG_STATE_HOME: 'relative-state' };
		delete env.AGENT_TABS_STATE;
		const made = runCli(['session', 'new', '--repo', repo, '--title', 'xdg', '--worktrees', worktrees, '--json'], { cwd: dir, env });
		assert.equal(made.code, 0, made.stderr);
		assert.ok(!fs.existsSync(path.join(dir, 'relative-state')), 'no state folder in the current folder');
		assert.ok(fs.existsSync(path.join(home, '.local', 'state', 'agent-tabs')), 'the state is in the default folder');
		const listed = runCli(['sessions', '--json'], { cwd: repo, env });
		assert.equal(listed.code, 0, listed.stderr);
		assert.match(listed.stdout, /"title":"xdg"/, 'a command run in another folder finds the same state');
	});

	test('a file as --repo: plain words, not "spawn ENOTDIR"', () => {
		const file = path.join(dir, 'not-a-folder.txt');
		fs.writeFileSync(file, 'x');
		for (const args of [
			['session', 'new', '--repo', file],
			['run', '--repo', file, '--agent', 'claude', '--prompt', 'x'],
		]) {
			const r = cliRun([...args, '--state', state, '--worktrees', worktrees], { cwd: dir });
			assert.equal(r.code, 2, r.stderr);
			assert.match(r.stderr, /not-a-folder\.txt is a file, not a folder/);
			assertPlainWords(r);
		}
		const gone = cliRun(['session', 'new', '--repo', path.join(dir, 'gone'), '--state', state, '--worktrees', worktrees], { cwd: dir });
		assert.equal(gone.code, 2);
		assert.match(gone.stderr, /gone does not exist/);
	});

	test('a worktree folder deleted by hand: the folder is said to be gone, not "git is not installed"', () => {
		const made = cliRun(['session', 'new', '--repo', repo, '--title', 'gone', '--state', state, '--worktrees', worktrees, '--json'], { cwd: dir });
		assert.equal(made.code, 0, made.stderr);
		const { sessionId, worktreePath } = JSON.parse(made.stdout) as { sessionId: string; worktreePath: string };
		fs.rmSync(worktreePath, { recursive: true, force: true });
		const r = cliRun(['session', 'risk', sessionId, '--state', state], { cwd: dir });
		// The risk report says what happened and goes on from the branch (archive and delete can proceed).
		assert.equal(r.code, 0, r.stderr);
		assert.ok(r.stdout.includes(`Its folder ${worktreePath} is gone`), r.stdout);
		assert.doesNotMatch(r.stdout + r.stderr, /not installed/);
	});

	test('a file as --worktrees, a folder or broken file as --agents: plain words', () => {
		const file = path.join(dir, 'a-file');
		fs.writeFileSync(file, 'x');
		const wt = cliRun(['session', 'new', '--repo', repo, '--state', state, '--worktrees', file], { cwd: dir });
		assert.equal(wt.code, 2);
		assert.ok(wt.stderr.includes(`The worktrees folder ${file} cannot be used`), wt.stderr);
		assertPlainWords(wt);
		const folder = cliRun(['run', '--repo', repo, '--agent', 'claude', '--prompt', 'x', '--agents', dir, '--state', state], { cwd: dir });
		assert.equal(folder.code, 2);
		assert.match(folder.stderr, /Could not read agent definitions from .*: it is a folder, not a file/);
		assertPlainWords(folder);
		const broken = cliRun(['run', '--repo', repo, '--agent', 'claude', '--prompt', 'x', '--agents', file, '--state', state], { cwd: dir });
		assert.equal(broken.code, 2);
		assert.match(broken.stderr, /The agent definitions in .*a-file are not valid JSON/);
	});

	test('a file as --state: plain words, not "EEXIST mkdir", for reading and writing commands', () => {
		const file = path.join(dir, 'state-file');
		fs.writeFileSync(file, 'x');
		for (const [args, where] of [
			[['sessions', '--state', file], file],
			[['session', 'new', '--repo', repo, '--state', file, '--worktrees', worktrees], file],
			[['session', 'new', '--repo', repo, '--state', path.join(file, 'inner'), '--worktrees', worktrees], file],
		] as const) {
			const r = cliRun([...args], { cwd: dir });
			assert.equal(r.code, 2, r.stderr);
			assert.ok(r.stderr.includes(`${where} is a file, not a folder`), r.stderr);
			assertPlainWords(r);
		}
		assert.equal(fs.readFileSync(file, 'utf8'), 'x', 'the file is untouched');
	});

	test('a read-only state folder: writing commands say so plainly; reading commands still work', () => {
		fs.chmodSync(dir, 0o755);
		const made = cliRun(['session', 'new', '--repo', repo, '--title', 'Kept', '--state', state, '--worktrees', worktrees, '--json'], { cwd: dir });
		assert.equal(made.code, 0, made.stderr);
		const before = listFiles(state);
		for (const f of before) {
			fs.chmodSync(path.join(state, f), 0o444);
		}
		fs.chmodSync(state, 0o555);
		try {
			const write = cliRun(['session', 'new', '--repo', repo, '--title', 'more', '--state', state, '--worktrees', path.join(dir, 'wt-other')], { cwd: dir, asOtherUser: true });
			assert.equal(write.code, 2, write.stderr);
			assert.match(write.stderr, /The state folder .*state cannot be written \(permission denied\)/);
			assertPlainWords(write);
			const read = cliRun(['sessions', '--state', state, '--json'], { cwd: dir, asOtherUser: true });
			assert.equal(read.code, 0, read.stderr);
			assert.equal((JSON.parse(read.stdout) as { title: string }).title, 'Kept');
			const list = cliRun(['session', 'list', '--state', state, '--json'], { cwd: dir, asOtherUser: true });
			assert.equal(list.code, 0, list.stderr);
			assert.equal((JSON.parse(list.stdout.trim().split('\n')[0]!) as { title: string }).title, 'Kept');
		} finally {
			fs.chmodSync(state, 0o755);
		}
		assert.deepEqual(listFiles(state), before, 'nothing was written');
	});

	test('a branch named agent-tabs: the session gets a branch in another namespace, and says so', () => {
		const env = gitEnv(dir);
		execFileSync('git', ['branch', 'agent-tabs'], { cwd: repo, env });
		const r = cliRun(['session', 'new', '--repo', repo, '--title', 'Fix it', '--state', state, '--worktrees', worktrees, '--json'], { cwd: dir });
		assert.equal(r.code, 0, r.stderr);
		const made = JSON.parse(r.stdout) as { branch: string; worktreePath: string; note: string };
		assert.equal(made.branch, 'agent-tabs-sessions/fix-it');
		assert.match(made.note, /branch named "agent-tabs"/);
		assert.equal(execFileSync('git', ['branch', '--show-current'], { cwd: made.worktreePath, env, encoding: 'utf8' }).trim(), 'agent-tabs-sessions/fix-it');
		const human = cliRun(['session', 'new', '--repo', repo, '--title', 'Fix it', '--state', state, '--worktrees', worktrees], { cwd: dir });
		assert.equal(human.code, 0, human.stderr);
		assert.match(human.stdout, /agent-tabs-sessions\/fix-it-2/);
		assert.match(human.stderr, /branch is under agent-tabs-sessions\/ instead/);
		// No session was left behind half made.
		const list = cliRun(['session', 'list', '--state', state, '--json'], { cwd: dir }).stdout.trim().split('\n').map((l) => JSON.parse(l) as { worktree_state: string });
		assert.deepEqual(list.map((s) => s.worktree_state), ['ready', 'ready']);
	});

	test('a branch below the session\'s name (agent-tabs/fix/deep) makes the session pick the next free name', () => {
		const env = gitEnv(dir);
		execFileSync('git', ['branch', 'agent-tabs/fix/deep'], { cwd: repo, env });
		const r = cliRun(['session', 'new', '--repo', repo, '--title', 'fix', '--state', state, '--worktrees', worktrees, '--json'], { cwd: dir });
		assert.equal(r.code, 0, r.stderr);
		assert.equal((JSON.parse(r.stdout) as { branch: string }).branch, 'agent-tabs/fix-2');
	});

	test('read-only commands work while another process holds the state, from its saved state, and write nothing', async () => {
		const made = cliRun(['session', 'new', '--repo', repo, '--title', 'Before', '--state', state, '--worktrees', worktrees, '--json'], { cwd: dir });
		assert.equal(made.code, 0, made.stderr);
		const sessionId = (JSON.parse(made.stdout) as { sessionId: string }).sessionId;
		const holder = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'lockHolder.js'), state, wasmPath, 'Written by the holder'], { stdio: ['ignore', 'pipe', 'inherit'] });
		try {
			await new Promise<void>((resolve) => holder.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
			const files = listFiles(state).map((f) => [f, fs.statSync(path.join(state, f)).mtimeMs, fs.statSync(path.join(state, f)).size]);
			const sessions = cliRun(['sessions', '--state', state, '--json'], { cwd: dir });
			assert.equal(sessions.code, 0, sessions.stderr);
			const titles = sessions.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { title: string }).title).sort();
			assert.deepEqual(titles, ['Before', 'Written by the holder'], 'the holder\'s journaled write is read too');
			for (const args of [['chats'], ['pending', sessionId], ['session', 'list']]) {
				const r = cliRun([...args, '--state', state, '--json'], { cwd: dir });
				assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
			}
			assert.equal(cliRun(['show', 'chat-nope', '--state', state], { cwd: dir }).code, 2, 'a missing chat is still an error');
			assert.deepEqual(
				listFiles(state).map((f) => [f, fs.statSync(path.join(state, f)).mtimeMs, fs.statSync(path.join(state, f)).size]),
				files,
				'the readers wrote nothing',
			);
			const write = cliRun(['session', 'new', '--repo', repo, '--state', state, '--worktrees', worktrees], { cwd: dir });
			assert.equal(write.code, 2);
			assert.match(write.stderr, /is in use by the lock-holder test process \(pid \d+/);
		} finally {
			holder.kill('SIGKILL');
		}
	});

	test('a transcript write that fails mid-turn (the journal cannot grow) ends the turn as failed; the command does not crash', () => {
		const agents = path.join(dir, 'agents.json');
		writeScriptedAgents(agents);
		const made = cliRun(['session', 'new', '--repo', repo, '--title', 'Limited', '--state', state, '--worktrees', worktrees, '--json'], { cwd: dir });
		assert.equal(made.code, 0, made.stderr);
		const sessionId = (JSON.parse(made.stdout) as { sessionId: string }).sessionId;
		const largest = Math.max(...listFiles(state).map((f) => fs.statSync(path.join(state, f)).size));
		// Room to open and start the turn; not for the ~1 MB of streamed text the agent sends.
		const r = cliRunLimited(['run', '--repo', repo, '--agent', 'scripted', '--agents', agents, '--state', state, '--session', sessionId, '--prompt', 'stream 350000', '--json'], largest + 200_000, dir);
		assert.doesNotMatch(r.stderr, /Uncaught|^\s+at /m, r.stderr);
		assert.equal(r.code, 1, r.stderr);
		const end = JSON.parse(r.stdout.trim().split('\n').pop()!) as { type: string; status: string; error: string };
		assert.equal(end.type, 'turn_end', 'the turn ended and said so');
		assert.equal(end.status, 'error');
		assert.match(end.error, /could not be saved: .*largest size this process may write/);
		assert.match(r.stderr, /could not save turn/);
	});
});
