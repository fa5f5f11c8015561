import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError } from '../../../src/common/errors';
import { Git, GitError, gitTimeouts, GitTimeoutError, setMaxGitProcesses, type GitProgress } from '../../../src/worktrees/gitClient';
import { defaultMaxGitProcesses, gitProcessSlots, processAlive } from '../../../src/worktrees/gitProcess';
import { launchProcess, spawnHelperForTests } from '../../../src/worktrees/spawnHelper';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv, makeRepo } from '../gitRepo';
import { writeGitShim } from './gitShim';
import { MemoryLogger, openStore, parentPid, removeDir, repoRoot, tempDir, waitFor } from '../helpers';

/**
 * A `git` earlier on PATH that runs the real one, except: with SHIM_COUNT_DIR it records how many shims
 * run at this moment (a file per live process, counted on start) and lingers a little so runs overlap
 * (only for the subcommand in SHIM_COUNT_ONLY, when set);
 * for the subcommand in SHIM_HANG it hangs in a child `sleep` (writing "<shell pid> <sleep pid>" to
 * SHIM_PIDS), ignoring SIGTERM too when SHIM_IGNORE_TERM is set.
 */
function installShim(dir: string): string {
	return writeGitShim(
		dir,
		'shim-bin',
		(realGit) => `if [ -n "$SHIM_COUNT_DIR" ] && { [ -z "$SHIM_COUNT_ONLY" ] || [ "$1" = "$SHIM_COUNT_ONLY" ]; }; then
	touch "$SHIM_COUNT_DIR/$$"
	ls "$SHIM_COUNT_DIR" | wc -l >> "$SHIM_COUNT_DIR.log"
	sleep 0.05
	"${realGit}" "$@"; rc=$?
	rm -f "$SHIM_COUNT_DIR/$$"
	exit $rc
fi
if [ -n "$SHIM_HANG" ] && [ "$1" = "$SHIM_HANG" ]; then
	if [ -n "$SHIM_IGNORE_TERM" ]; then trap '' TERM; fi
	sleep 300 &
	echo "$$ $!" > "$SHIM_PIDS"
	wait
	wait
	exit 1
fi
exec "${realGit}" "$@"
`,
	);
}

suite('worktrees/git: the one git runner (limit, timeouts, cancel, progress; real git)', function () {
	this.timeout(60_000);
	let dir: string;
	let repo: string;
	let env: NodeJS.ProcessEnv;
	let shimmed: (extra: Record<string, string>) => NodeJS.ProcessEnv;
	const savedGrace = gitTimeouts.graceMs;

	setup(() => {
		dir = tempDir('agent-tabs-git-');
		env = gitEnv(dir);
		repo = makeRepo(path.join(dir, 'repo'));
		const bin = installShim(dir);
		shimmed = (extra) => ({ ...env, ...extra, PATH: `${bin}${path.delimiter}${env.PATH ?? ''}` });
	});
	teardown(() => {
		setMaxGitProcesses(defaultMaxGitProcesses);
		gitTimeouts.graceMs = savedGrace;
		assert.deepEqual(gitProcessSlots.load, { running: 0, queued: 0 }, 'every slot is given back');
		removeDir(dir);
	});

	/** The hanging shim's shell and its sleep, once it runs. */
	async function hungPids(file: string): Promise<number[]> {
		await waitFor(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('\n'), 'the hanging git to start');
		return fs.readFileSync(file, 'utf8').trim().split(' ').map(Number);
	}

	test('forty commands started at once, from several folders, never run more gits at a time than the limit', async () => {
		setMaxGitProcesses(4);
		const counts = path.join(dir, 'live');
		fs.mkdirSync(counts);
		const shimEnv = shimmed({ SHIM_COUNT_DIR: counts });
		const folders = [repo, makeRepo(path.join(dir, 'other')), path.join(repo), makeRepo(path.join(dir, 'third'))];
		const results = await Promise.all(Array.from({ length: 40 }, (_, i) => new Git(folders[i % folders.length]!, shimEnv).run(['rev-parse', '--show-toplevel'])));
		assert.deepEqual(
			results.map((r) => path.basename(r.trim())),
			Array.from({ length: 40 }, (_, i) => path.basename(folders[i % folders.length]!)),
		);
		const seen = fs.readFileSync(`${counts}.log`, 'utf8').trim().split('\n').map((l) => Number(l.trim()));
		assert.equal(seen.length, 40);
		assert.ok(Math.max(...seen) <= 4, `at most 4 at once, saw ${Math.max(...seen)}`);
		assert.ok(Math.max(...seen) >= 2, 'they did overlap (the limit is not 1 by accident)');
	});

	test('twenty chats checkpointing at once in four repositories share the limit', async () => {
		setMaxGitProcesses(3);
		const counts = path.join(dir, 'live');
		fs.mkdirSync(counts);
		const repos = [repo, ...[1, 2, 3].map((n) => makeRepo(path.join(dir, `repo ${n}`), { 'a.txt': `${n}\n` }))];
		repos.forEach((r, n) => fs.writeFileSync(path.join(r, 'dirty.txt'), `turn work ${n}\n`));
		const store = await openStore(path.join(dir, 'state'));
		try {
			const service = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env: shimmed({ SHIM_COUNT_DIR: counts }) });
			const refs = await Promise.all(Array.from({ length: 20 }, (_, i) => service.checkpoint(repos[i % 4]!, `chat-${i}/turn-1`)));
			for (const [i, ref] of refs.entries()) {
				assert.equal(execFileSync('git', ['show', `${ref}:dirty.txt`], { cwd: repos[i % 4], env, encoding: 'utf8' }), `turn work ${i % 4}\n`);
			}
		} finally {
			await store.close();
		}
		const seen = fs.readFileSync(`${counts}.log`, 'utf8').trim().split('\n').map((l) => Number(l.trim()));
		assert.ok(seen.length >= 60, `every checkpoint's gits went through the shim (${seen.length})`);
		assert.ok(Math.max(...seen) <= 3, `at most 3 at once, saw ${Math.max(...seen)}`);
	});

	test('sessions created at once in one repository run their git worktree commands one at a time, and all get a worktree', async () => {
		const counts = path.join(dir, 'live');
		fs.mkdirSync(counts);
		const store = await openStore(path.join(dir, 'state'));
		try {
			const service = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env: shimmed({ SHIM_COUNT_DIR: counts, SHIM_COUNT_ONLY: 'worktree' }) });
			const created = await Promise.all(Array.from({ length: 6 }, (_, i) => service.createSession({ repo, title: `at once ${i}` })));
			const listed = execFileSync('git', ['worktree', 'list', '--porcelain'], { cwd: repo, env, encoding: 'utf8' });
			for (const { worktree } of created) {
				assert.ok(fs.existsSync(path.join(worktree.path, 'README.md')), `${worktree.path} is checked out`);
				assert.ok(listed.includes(`worktree ${worktree.path}\n`), `git lists ${worktree.path}`);
			}
		} finally {
			await store.close();
		}
		const seen = fs.readFileSync(`${counts}.log`, 'utf8').trim().split('\n').map((l) => Number(l.trim()));
		assert.ok(seen.length >= 12, `every creation's worktree list and add went through the shim (${seen.length})`);
		assert.equal(Math.max(...seen), 1, 'never two git worktree commands in one repository at once');
	});

	test('nothing in src starts git except Git (gitClient.ts)', () => {
		const offenders: string[] = [];
		const walk = (folder: string): void => {
			for (const entry of fs.readdirSync(folder, { withFileTypes: true })) {
				const file = path.join(folder, entry.name);
				if (entry.isDirectory()) {
					walk(file);
				} else if (/\.tsx?$/.test(entry.name) && !file.endsWith(path.join('worktrees', 'gitClient.ts'))) {
					const text = fs.readFileSync(file, 'utf8');
					if (/from 'simple-git'|\b(spawn|spawnSync|execFile|execFileSync|exec|execSync)\(\s*['"`]git\b/.test(text)) {
						offenders.push(path.relative(repoRoot, file));
					}
				}
			}
		};
		walk(path.join(repoRoot, 'src'));
		assert.deepEqual(offenders, []);
	});

	test('a hung git is ended after its timeout with its children, and the error names the command and the time', async () => {
		const pidsFile = path.join(dir, 'pids');
		const run = new Git(repo, shimmed({ SHIM_HANG: 'status', SHIM_PIDS: pidsFile })).run(['status', '--porcelain'], { timeoutMs: 700 });
		const pids = await hungPids(pidsFile);
		await assert.rejects(run, (e: unknown) => {
			assert.ok(e instanceof GitTimeoutError, String(e));
			assert.equal(e.code, 'git/timeout');
			assert.match(e.message, /^git status --porcelain \(in .*repo\) did not finish within 0\.7 s, so it was stopped, with every process it had started/);
			return true;
		});
		assert.deepEqual(
			pids.filter((p) => processAlive(p)),
			[],
			'neither the git nor the process it waited on is left',
		);
	});

	test('a git that ignores SIGTERM is killed after the grace period', async () => {
		gitTimeouts.graceMs = 300;
		const pidsFile = path.join(dir, 'pids');
		const run = new Git(repo, shimmed({ SHIM_HANG: 'status', SHIM_PIDS: pidsFile, SHIM_IGNORE_TERM: '1' })).run(['status'], { timeoutMs: 500 });
		const pids = await hungPids(pidsFile);
		await assert.rejects(run, GitTimeoutError);
		assert.deepEqual(
			pids.filter((p) => processAlive(p)),
			[],
		);
	});

	test('a long operation has no time limit but is ended when it goes silent', async () => {
		const pidsFile = path.join(dir, 'pids');
		const run = new Git(repo, shimmed({ SHIM_HANG: 'fetch', SHIM_PIDS: pidsFile })).run(['fetch', 'origin'], { long: true, timeoutMs: 1, silenceMs: 700 });
		const pids = await hungPids(pidsFile);
		await assert.rejects(run, /^GitTimeoutError: git fetch origin \(in .*\) printed nothing for 0\.7 s, so it was stopped/);
		assert.deepEqual(
			pids.filter((p) => processAlive(p)),
			[],
		);
	});

	test('cancelling ends a running git with its children; a cancelled command never starts', async () => {
		const pidsFile = path.join(dir, 'pids');
		const git = new Git(repo, shimmed({ SHIM_HANG: 'status', SHIM_PIDS: pidsFile }));
		const cancel = new AbortController();
		const run = git.run(['status'], { signal: cancel.signal });
		const pids = await hungPids(pidsFile);
		cancel.abort();
		await assert.rejects(run, (e: unknown) => e instanceof CancelledError && /^git status \(in .*\) was cancelled; it was stopped/.test(e.message));
		assert.deepEqual(
			pids.filter((p) => processAlive(p)),
			[],
		);
		fs.rmSync(pidsFile);
		await assert.rejects(git.run(['status'], { signal: cancel.signal }), CancelledError);
		assert.equal(fs.existsSync(pidsFile), false, 'no git was started for an already cancelled command');
	});

	test('a command cancelled while it waits for a slot leaves the queue at once', async () => {
		setMaxGitProcesses(1);
		const pidsFile = path.join(dir, 'pids');
		const first = new AbortController();
		const hung = new Git(repo, shimmed({ SHIM_HANG: 'status', SHIM_PIDS: pidsFile })).run(['status'], { signal: first.signal });
		await hungPids(pidsFile);
		const second = new AbortController();
		const queued = new Git(repo, env).run(['rev-parse', 'HEAD'], { signal: second.signal });
		assert.deepEqual(gitProcessSlots.load, { running: 1, queued: 1 });
		second.abort();
		await assert.rejects(queued, /git rev-parse HEAD was cancelled before it started/);
		assert.deepEqual(gitProcessSlots.load, { running: 1, queued: 0 });
		first.abort();
		await assert.rejects(hung, CancelledError);
	});

	test('progress of a real push to a bare repository reaches the callback; errors keep git words without the counters', async () => {
		const files: Record<string, string> = {};
		for (let i = 0; i < 400; i++) {
			files[`f/${i}.txt`] = `${i} ${'x'.repeat(i)}\n`;
		}
		const big = makeRepo(path.join(dir, 'big'), files);
		const bare = path.join(dir, 'bare.git');
		execFileSync('git', ['init', '-q', '--bare', bare], { env });
		const events: GitProgress[] = [];
		await new Git(big, env).run(['push', bare, 'main'], { long: true, onProgress: (p) => events.push(p) });
		const writing = events.filter((e) => e.stage === 'Writing objects');
		assert.ok(writing.length > 0, `progress events: ${JSON.stringify(events.slice(0, 5))}`);
		assert.equal(writing.at(-1)!.percent, 100);
		assert.ok(writing.at(-1)!.total >= 400);
		await assert.rejects(new Git(big, env).run(['push', path.join(dir, 'nowhere.git'), 'main'], { long: true, onProgress: () => undefined }), (e: unknown) => {
			assert.ok(e instanceof GitError);
			assert.match(e.stderr, /does not appear to be a git repository/);
			assert.doesNotMatch(e.stderr, /\d+% \(/);
			return true;
		});
	});

	test('a process git leaves running in the background with its pipes (a hook\'s `cmd &`, an ssh ControlPersist master) does not hold the command open', async () => {
		// A reference-transaction hook runs on every ref update of the user's (a session's branch made, a merge).
		const pids = path.join(dir, 'background-pids');
		const hook = path.join(repo, '.git', 'hooks', 'reference-transaction');
		fs.writeFileSync(hook, `#!/bin/sh\necho "hook says hello" >&2\nsleep 30 &\necho $! >> '${pids}'\nexit 0\n`, { mode: 0o755 });
		const git = new Git(repo, env);
		try {
			const started = Date.now();
			await git.run(['update-ref', 'refs/heads/probe', 'HEAD']);
			const head = (await git.run(['rev-parse', 'refs/heads/probe'])).trim();
			assert.equal(head, execFileSync('git', ['rev-parse', 'HEAD'], { cwd: repo, env, encoding: 'utf8' }).trim());
			// Output git wrote before it exited is all there: a big one, and a failure's words.
			const big = await git.run(['log', '--format=%H%n%B', '--max-count=1', 'HEAD']);
			assert.match(big, /^[0-9a-f]{40}\ninitial\n/);
			await assert.rejects(git.run(['update-ref', 'refs/heads/probe', 'no-such-commit']), (e: GitError) => /no-such-commit/.test(e.stderr));
			assert.ok(Date.now() - started < 10_000, `took ${Date.now() - started} ms; the background sleep holds the pipes for 30 s`);
		} finally {
			for (const pid of fs.readFileSync(pids, 'utf8').split('\n').filter(Boolean)) {
				try {
					process.kill(Number(pid));
				} catch {
					// gone
				}
			}
		}
	});

	test('a command that reads standard input gets an empty one, not a pipe that never closes', async () => {
		const empty = (await new Git(repo, env).run(['hash-object', '--stdin'], { timeoutMs: 20_000 })).trim();
		assert.equal(empty, 'e69de29bb2d1d6434b8b29ae775ad8c2e48c5391');
	});

	test('git location variables inherited from the surroundings are ignored; one passed for a command is used', async () => {
		const other = makeRepo(path.join(dir, 'elsewhere'));
		const polluted = { ...env, GIT_DIR: path.join(other, '.git'), GIT_WORK_TREE: other };
		assert.equal((await new Git(repo, polluted).run(['rev-parse', '--show-toplevel'])).trim(), fs.realpathSync(repo));
		assert.equal((await new Git(repo, env).run(['rev-parse', '--git-dir'], { env: { GIT_DIR: path.join(other, '.git') } })).trim(), path.join(other, '.git'));
	});

	test("a repository's core.fsmonitor command never runs (an agent could have written that configuration); settings from the surroundings are kept", async () => {
		const proof = path.join(dir, 'fsmonitor-ran');
		const monitor = path.join(dir, 'monitor.sh');
		fs.writeFileSync(monitor, `#!/bin/sh\nenv > "${proof}"\n`, { mode: 0o755 });
		execFileSync('git', ['config', 'core.fsmonitor', monitor], { cwd: repo, env });
		fs.writeFileSync(path.join(repo, 'touched.txt'), 'x');
		const withOwnConfig = { ...env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'user.name', GIT_CONFIG_VALUE_0: 'From The Surroundings' };
		const git = new Git(repo, withOwnConfig);
		await git.run(['status', '--porcelain']);
		await git.run(['diff', '--name-only']);
		await git.run(['add', '-A'], { env: { GIT_INDEX_FILE: path.join(dir, 'scratch-index') } });
		assert.equal(fs.existsSync(proof), false, 'the fsmonitor command ran');
		assert.equal((await git.run(['config', 'user.name'])).trim(), 'From The Surroundings');
		assert.equal((await git.run(['config', 'core.fileMode'], { config: { 'core.fileMode': 'false' } })).trim(), 'false', "a command's own configuration applies");
		execFileSync('git', ['status', '--porcelain'], { cwd: repo, env });
		assert.equal(fs.existsSync(proof), true, 'plain git runs it, so the test can fail');
	});

	test('git is started by the spawn helper, not by this process; exact bytes cross both ways', async function () {
		if (process.platform !== 'linux') {
			this.skip();
		}
		const pidsFile = path.join(dir, 'pids');
		const cancel = new AbortController();
		const hung = new Git(repo, shimmed({ SHIM_HANG: 'status', SHIM_PIDS: pidsFile })).run(['status'], { timeoutMs: 20_000, signal: cancel.signal });
		const [shell] = await hungPids(pidsFile);
		const helper = spawnHelperForTests.pid;
		assert.ok(helper !== undefined && helper !== process.pid, 'a helper process runs');
		assert.equal(parentPid(shell!), helper, 'the git was forked by the helper');
		assert.equal(parentPid(helper), process.pid, 'the helper is our child');
		// Bytes that are not UTF-8, in and out, through the helper's channel.
		const bytes = Buffer.from([0xff, 0xfe, 0x00, 0xe9, 0x0a, 0x80]);
		const id = (await new Git(repo, env).runBytes(['hash-object', '-w', '--stdin'], { input: bytes })).toString('utf8').trim();
		assert.deepEqual(await new Git(repo, env).runBytes(['cat-file', 'blob', id]), bytes);
		cancel.abort();
		await assert.rejects(hung, CancelledError);
	});

	test('a command flooding its output while the host is busy waits on its pipe: the helper buffers about a megabyte, not the flood; every byte arrives, in order', async function () {
		if (process.platform !== 'linux') {
			this.skip();
		}
		await spawnHelperForTests.restart(); // a fresh helper, so its peak memory is this command's
		const peakMb = (pid: number): number => Number(/VmHWM:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024;
		const lines = 30_000_000; // `seq` writes about 260 MB
		const proc = launchProcess('seq', ['1', String(lines)], { cwd: dir, env, stdin: false, detached: true });
		let bytes = 0;
		let tail = '';
		let busy = true;
		let peak = 0;
		proc.on('stdout', (chunk) => {
			if (busy) {
				// The host is busy for 1.5 s and reads nothing meanwhile (a long task on its event loop).
				busy = false;
				const until = Date.now() + 1500;
				while (Date.now() < until) {
					// busy
				}
				peak = peakMb(spawnHelperForTests.pid!);
			}
			bytes += chunk.length;
			tail = (tail + chunk.toString('latin1')).slice(-20);
		});
		const code = await new Promise<number | null>((resolve) => proc.on('close', (c) => resolve(c)));
		assert.equal(code, 0);
		let expected = 0;
		for (let digits = 1, from = 1; from <= lines; digits++, from *= 10) {
			expected += (Math.min(lines, from * 10 - 1) - from + 1) * (digits + 1);
		}
		assert.equal(bytes, expected, 'every byte arrived');
		assert.ok(tail.endsWith(`\n${lines}\n`), 'the last line last');
		assert.ok(peak > 0 && peak < 100, `the helper peaked at ${Math.round(peak)} MB while the host was busy (it held all the output it could read before)`);
	});

	test('a spawn helper that dies ends the commands it ran, in plain words; the next command starts a new helper', async function () {
		if (process.platform !== 'linux') {
			this.skip();
		}
		const pidsFile = path.join(dir, 'pids');
		const hung = new Git(repo, shimmed({ SHIM_HANG: 'status', SHIM_PIDS: pidsFile })).run(['status'], { timeoutMs: 20_000 });
		const pids = await hungPids(pidsFile);
		const helper = spawnHelperForTests.pid!;
		process.kill(helper, 'SIGKILL');
		await assert.rejects(hung, (e: unknown) => {
			assert.ok(e instanceof Error);
			assert.equal((e as { code?: string }).code, 'git/helperGone');
			assert.match(e.message, /^git status \(in .*repo\) was stopped because the helper process that started it stopped/);
			return true;
		});
		await waitFor(() => pids.every((p) => !processAlive(p)), 'the orphaned git and its child to be ended');
		assert.equal((await new Git(repo, env).run(['rev-parse', '--show-toplevel'])).trim(), fs.realpathSync(repo));
		assert.notEqual(spawnHelperForTests.pid, helper, 'a new helper runs');
		assert.deepEqual(gitProcessSlots.load, { running: 0, queued: 0 });
	});
	test('a helper that dies before it says it started a command: the command is found by its launch tag and ended, never run twice', async function () {
		if (process.platform !== 'linux') {
			this.skip();
		}
		await spawnHelperForTests.restart(path.join(repoRoot, 'out', 'test', 'fixtures', 'silentSpawnHelper.js'));
		try {
			const pidsFile = path.join(dir, 'pids');
			const hung = new Git(repo, shimmed({ SHIM_HANG: 'status', SHIM_PIDS: pidsFile })).run(['status'], { timeoutMs: 30_000 });
			const pids = await hungPids(pidsFile);
			await assert.rejects(hung, (e: unknown) => {
				assert.equal((e as { code?: string }).code, 'git/helperGone', String(e));
				assert.match((e as Error).message, /^git status \(in .*repo\) was stopped because the helper process that started it stopped/);
				return true;
			});
			await waitFor(() => pids.every((p) => !processAlive(p)), 'the git the helper started (and its child) to be ended');
			await new Promise((resolve) => setTimeout(resolve, 500));
			assert.deepEqual(fs.readFileSync(pidsFile, 'utf8').trim().split(' ').map(Number), pids, 'it was not started again');
		} finally {
			await spawnHelperForTests.restart();
		}
		assert.deepEqual(gitProcessSlots.load, { running: 0, queued: 0 });
	});

	test('where the spawn helper cannot run, git is spawned directly: the commands asked for while it failed to start, and every later one', async () => {
		await spawnHelperForTests.restart(path.join(dir, 'no-such-helper.js'));
		try {
			const top = fs.realpathSync(repo);
			// Asked for at once: they reach a helper that exits before it answers, and are started here instead.
			const [a, b, blob] = await Promise.all([
				new Git(repo, env).run(['rev-parse', '--show-toplevel']),
				new Git(repo, env).run(['rev-parse', '--show-toplevel']),
				new Git(repo, env).run(['hash-object', '--stdin'], { input: 'relayed input\n' }),
			]);
			assert.deepEqual([a.trim(), b.trim()], [top, top]);
			assert.equal(blob.trim(), execFileSync('git', ['hash-object', '--stdin'], { input: 'relayed input\n', encoding: 'utf8' }).trim(), 'the input reached the directly started git');
			assert.equal(spawnHelperForTests.pid, undefined, 'no helper runs');
			assert.equal((await new Git(repo, env).run(['rev-parse', '--show-toplevel'])).trim(), top, 'a later command is spawned directly');
			assert.equal(spawnHelperForTests.pid, undefined, 'and starts no helper');
		} finally {
			await spawnHelperForTests.restart();
		}
		assert.deepEqual(gitProcessSlots.load, { running: 0, queued: 0 });
	});
});
