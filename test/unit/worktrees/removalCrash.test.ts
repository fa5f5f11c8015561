import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { WorktreesRepo } from '../../../src/db/worktreesRepo';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, repoRoot, tempDir } from '../helpers';
import { fullState } from './worktreeState';
import { checkNoLeaksAfterSuite } from '../leakCheck';

/** Bounded for CI: each kill is one archive or delete of a worktree of `files` files, then a start and a restore. */
const kills = Number(process.env.AGENT_TABS_REMOVAL_KILLS ?? 15);
const createKills = Number(process.env.AGENT_TABS_CREATE_KILLS ?? 3);
const files = Number(process.env.AGENT_TABS_REMOVAL_FILES ?? 3000);
const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');

interface Killed {
	/** Milliseconds after the spawn at which the process group was killed; null if it finished first. */
	killedAfterMs: number | null;
	pid: number;
	code: number | null;
}

/**
 * Runs the CLI in its own process group and SIGKILLs the group at `atMs`, or as soon as one of `watch`
 * disappears (a removal in the middle of deleting files), whichever comes first.
 */
function runAndKill(args: string[], env: NodeJS.ProcessEnv, atMs: number, watch: string[] = []): Promise<Killed> {
	const started = Date.now();
	const child = spawn(process.execPath, [cli, ...args], { detached: true, stdio: ['ignore', 'pipe', 'pipe'], env });
	let stderr = '';
	child.stderr.on('data', (d) => (stderr += String(d)));
	child.stdout.resume();
	return new Promise((resolve, reject) => {
		let killedAfterMs: number | null = null;
		const kill = (): void => {
			if (killedAfterMs === null && child.exitCode === null) {
				killedAfterMs = Date.now() - started;
				try {
					process.kill(-child.pid!, 'SIGKILL');
				} catch {
					// already gone
				}
			}
		};
		const timer = setTimeout(kill, atMs);
		const poll = watch.length > 0 ? setInterval(() => watch.some((f) => !fs.existsSync(f)) && kill(), 5) : undefined;
		child.on('error', reject);
		child.on('exit', (code) => {
			clearTimeout(timer);
			clearInterval(poll);
			if (killedAfterMs === null && code !== 0) {
				reject(new Error(`agent-tabs ${args.join(' ')} failed (${code}) before it was killed: ${stderr}`));
				return;
			}
			resolve({ killedAfterMs, pid: child.pid!, code });
		});
	});
}

suite('worktrees/crash (SIGKILL of session archive, delete and new at random moments)', function () {
	// Generous: on a shared, loaded machine one CLI start alone can take seconds. The work is bounded by the counts.
	this.timeout(Math.max(300_000, (kills + createKills) * 60_000));
	checkNoLeaksAfterSuite();

	test(`after each of ${kills} kills of a removal and ${createKills} of a creation, a start finds everything recoverable, exactly`, async () => {
		const dir = tempDir('agent-tabs-removal-crash-');
		const env: NodeJS.ProcessEnv = { ...process.env, HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: path.join(dir, '.gitconfig') };
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n[commit]\n\tgpgsign = false\n');
		const state = path.join(dir, 'state');
		const root = path.join(dir, 'worktrees');
		const common = ['--state', state, '--worktrees', root];
		const tree: Record<string, string> = { '.gitignore': 'build/\n' };
		for (let i = 0; i < files; i++) {
			tree[`pkg-${i % 40}/sub-${i % 7}/file-${i}.txt`] = `line ${i}\n`.repeat(1 + (i % 5));
		}
		const repo = makeRepo(path.join(dir, 'big repo'), tree);
		const cliJson = (...args: string[]): Record<string, unknown> => {
			const r = spawnSync(process.execPath, [cli, ...args, ...common, '--json'], { encoding: 'utf8', env });
			assert.equal(r.status, 0, `agent-tabs ${args.join(' ')}: ${r.stderr}`);
			return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
		};
		const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
		const leftTempFiles = (pid: number): string[] => fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith(`agent-tabs-index-${pid}-`));
		/** The "next start" for a session the CLI cannot reach any more (deleted): attach its worktree in process. */
		const attachDetached = async (worktreeId: string): Promise<string> => {
			const store = await openStore(state);
			try {
				const service = new WorktreeService(store, new MemoryLogger(), { root, env });
				return (await service.attachWorktree(worktreeId)).session.id;
			} finally {
				await store.close();
			}
		};
		const rowOf = async (worktreeId: string): Promise<{ state: string; sessionStatus: string | null }> => {
			const store = await openStore(state);
			try {
				const row = new WorktreesRepo(store).get(worktreeId)!;
				return { state: row.state, sessionStatus: row.session_id ? (new SessionsRepo(store).get(row.session_id)?.status ?? null) : null };
			} finally {
				await store.close();
			}
		};

		try {
			const created = cliJson('session', 'new', '--repo', repo, '--title', 'crash');
			let sessionId = created.sessionId as string;
			const wt = created.worktreePath as string;
			const worktreeId = (await (async () => {
				const store = await openStore(state);
				try {
					return new WorktreesRepo(store).forSession(sessionId)!.id;
				} finally {
					await store.close();
				}
			})()) as string;

			// Calibration: how long one archive of this worktree takes here, unkilled.
			fs.writeFileSync(path.join(wt, 'calibration.txt'), 'c\n');
			let t0 = Date.now();
			cliJson('session', 'archive', sessionId);
			const archiveMs = Date.now() - t0;
			cliJson('session', 'restore', sessionId);

			const seen: Record<string, number> = {};
			const saves = new Map<string, string>();
			for (let round = 0; round < kills; round++) {
				// Work of every kind: changed, staged, partly staged, deleted, untracked, committed.
				const pkg = path.join(wt, `pkg-${round % 40}`, `sub-${round % 7}`);
				fs.writeFileSync(path.join(pkg, `file-${round}.txt`), `changed in round ${round}\n`);
				fs.writeFileSync(path.join(wt, `staged-${round}.txt`), `staged ${round}\n`);
				git(wt, 'add', `staged-${round}.txt`);
				fs.writeFileSync(path.join(wt, `staged-${round}.txt`), `staged ${round}, then changed\n`);
				fs.writeFileSync(path.join(wt, `untracked-${round}.txt`), `untracked ${round}\n`);
				fs.rmSync(path.join(wt, `pkg-${(round + 13) % 40}`, `sub-${(round + 13) % 7}`, `file-${round + 13}.txt`), { force: true });
				if (round % 5 === 4) {
					git(wt, 'add', '-A');
					git(wt, 'commit', '-q', '-m', `round ${round}`);
				}
				const expected = fullState(wt);

				// Half the kills at a random moment of a whole removal, half the moment its first files vanish.
				const action = round % 4 === 3 ? 'delete' : 'archive';
				const watch = round % 2 === 0 ? [] : Array.from({ length: 8 }, (_, i) => path.join(wt, `pkg-${i * 5}`, `sub-${i % 7}`));
				const atMs = round % 2 === 0 ? Math.floor(Math.random() * archiveMs * 1.1) : archiveMs * 3;
				const killed = await runAndKill(['session', action, sessionId, ...common], env, atMs, watch);

				// The next start: every CLI command recovers first (here the restore itself); then the work must
				// come back exactly. A deleted session's worktree is attached to a new session in process.
				const interrupted = await rowOf(worktreeId);
				seen[interrupted.state] = (seen[interrupted.state] ?? 0) + 1;
				if (interrupted.sessionStatus === null) {
					cliJson('session', 'list');
					assert.equal((await rowOf(worktreeId)).state, 'removed', `round ${round}: after a start nothing is half-done`);
					sessionId = await attachDetached(worktreeId);
				} else {
					cliJson('session', 'restore', sessionId);
				}
				assert.deepEqual(leftTempFiles(killed.pid), [], `round ${round}: temp files of the killed process are cleaned`);
				assert.equal((await rowOf(worktreeId)).state, 'ready');
				assert.deepEqual(fullState(wt), expected, `round ${round} (${action}, killed after ${killed.killedAfterMs ?? '-'} ms in state ${interrupted.state}): restore brings back exactly what was there`);
				// Every save made so far is still where it was.
				for (const line of git(repo, 'for-each-ref', '--format=%(refname) %(objectname)', `refs/agent-tabs/saved/${worktreeId}/`).trim().split('\n').filter(Boolean)) {
					const [ref, commit] = line.split(' ') as [string, string];
					saves.set(ref, saves.get(ref) ?? commit);
					assert.equal(saves.get(ref), commit, `round ${round}: ${ref} never moves`);
				}
			}
			const savedRefs = git(repo, 'for-each-ref', '--format=%(refname)', `refs/agent-tabs/saved/${worktreeId}/`).trim().split('\n');
			assert.equal(savedRefs.length, saves.size, 'no save was deleted');
			assert.ok((seen.removing ?? 0) > 0, `some kills landed while the folder was being removed: ${JSON.stringify(seen)}`);

			// Kills of `session new` on the same large repository: rolled back or complete, never half.
			t0 = Date.now();
			const probe = cliJson('session', 'new', '--repo', repo, '--title', 'probe');
			const createMs = Date.now() - t0;
			cliJson('session', 'delete', probe.sessionId as string);
			for (let round = 0; round < createKills; round++) {
				const title = `new ${round}`;
				const killed = await runAndKill(['session', 'new', '--repo', repo, '--title', title, ...common], env, Math.floor(createMs * (0.05 + Math.random() * 0.95)));
				cliJson('session', 'list');
				assert.deepEqual(leftTempFiles(killed.pid), []);
				const store = await openStore(state);
				try {
					const sessions = new SessionsRepo(store).list().filter((s) => s.title === title);
					const folder = path.join(root, `new-${round}`);
					const branch = git(repo, 'branch', '--list', `agent-tabs/new-${round}`).trim();
					if (sessions.length === 0) {
						assert.ok(!fs.existsSync(folder), `create round ${round}: rolled back, no folder`);
						assert.equal(branch, '', `create round ${round}: rolled back, no branch`);
						assert.ok(!git(repo, 'worktree', 'list', '--porcelain').includes(folder), `create round ${round}: git has no record`);
					} else {
						assert.equal(sessions[0]!.worktree_state, 'ready');
						assert.equal(git(folder, 'status', '--porcelain'), '', `create round ${round}: complete and clean`);
						assert.ok(!git(repo, 'worktree', 'list', '--porcelain').includes('initializing'));
					}
				} finally {
					await store.close();
				}
			}
			console.log(`      ${kills} removal kills (archive ${archiveMs} ms unkilled; state when killed: ${JSON.stringify(seen)}), ${createKills} create kills, ${saves.size} saves kept`);
		} finally {
			removeDir(dir);
		}
	});
});
