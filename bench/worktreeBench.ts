/**
 * bench/worktrees: session creation (WorktreeService.createSession, no copy list and no setup command, i.e.
 * "before the setup step") against a plain `git worktree add` of the same generated 20,000-file repository in
 * the same run, alternated run by run; and `risk()` on a created worktree, clean and with changes; and how
 * long a git command holds the host's event loop when the host's heap is large (an extension host's is):
 * started through the spawn helper (how Git runs it) against a direct spawn from this process (how it was).
 */
import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nullLogger } from '../src/common/log';
import { Store } from '../src/db/store';
import { Git } from '../src/worktrees/gitClient';
import { WorktreeService } from '../src/worktrees/worktreeService';
import { log, nowMs, percentile, round, stallWatch } from './stats';

const wasmPath = path.resolve(__dirname, '..', '..', 'node_modules', 'sql.js', 'dist', 'sql-wasm.wasm');
const runs = Number(process.env.BENCH_WORKTREE_RUNS ?? 5);
const riskRuns = Number(process.env.BENCH_RISK_RUNS ?? 5);
const dirs = Number(process.env.BENCH_WORKTREE_DIRS ?? 200);
const filesPerDir = Number(process.env.BENCH_WORKTREE_FILES_PER_DIR ?? 100);
const changedFiles = 100;
const targetRatio = 1.2;
const checkpointRuns = Number(process.env.BENCH_CHECKPOINT_RUNS ?? 7);
const checkpointTargetRatio = 1.5;
const stallHeapMb = Number(process.env.BENCH_HEAP_MB ?? 400);
const stallRuns = Number(process.env.BENCH_STALL_RUNS ?? 15);

type Env = NodeJS.ProcessEnv;

/** Same spawn path and environment as the service's Git.run (execFile, no shell), so only the work differs. */
function git(cwd: string, env: Env, args: string[]): Promise<string> {
	return new Promise((resolve, reject) => {
		execFile('git', args, { cwd, env: { ...env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' }, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' }, (error, stdout, stderr) => {
			if (error) {
				reject(new Error(`git ${args.join(' ')} failed: ${stderr.trim() || error.message}`));
				return;
			}
			resolve(stdout);
		});
	});
}

/** `dirs` x `filesPerDir` files of a few hundred bytes in two levels of folders, one commit. */
function generateRepo(repo: string, env: Env): { files: number; ms: number } {
	const t0 = nowMs();
	fs.mkdirSync(repo, { recursive: true });
	execFileSync('git', ['init', '-q', '-b', 'main'], { cwd: repo, env });
	let files = 0;
	for (let d = 0; d < dirs; d++) {
		// 20 packages of 10 modules each (for the default 200): nested, like a real source tree.
		const dir = path.join(repo, 'src', `pkg${String(d % 20).padStart(2, '0')}`, `mod${String(Math.floor(d / 20)).padStart(2, '0')}`);
		fs.mkdirSync(dir, { recursive: true });
		for (let f = 0; f < filesPerDir; f++) {
			fs.writeFileSync(path.join(dir, `file${String(f).padStart(3, '0')}.ts`), fileText(d, f));
			files++;
		}
	}
	fs.writeFileSync(path.join(repo, '.gitignore'), 'node_modules/\n');
	fs.writeFileSync(path.join(repo, 'README.md'), '# generated bench repository\n');
	files += 2;
	const id = ['-c', 'user.name=b', '-c', 'user.email=b@b'];
	execFileSync('git', [...id, 'add', '-A'], { cwd: repo, env });
	execFileSync('git', [...id, 'commit', '-q', '-m', 'init'], { cwd: repo, env });
	try {
		// Flush the generated files now, so their write-back is not paid by whichever measured git call runs next.
		execFileSync('sync');
	} catch {
		// no `sync` on this platform: the warm-up absorbs it
	}
	return { files, ms: nowMs() - t0 };
}

function fileText(d: number, f: number): string {
	return `// generated file ${d}/${f}\nexport function f${d}_${f}(x: number): number {\n\treturn x * ${d + 1} + ${f};\n}\n${'// padding line for a realistic size\n'.repeat(6)}`;
}

function median(values: number[]): number {
	return round(percentile(values, 50), 1);
}

interface GitCall {
	args: string;
	ms: number;
}

/**
 * Runs `fn` with every Git.run call (Git.ok goes through it) timed, by wrapping the prototype for the
 * duration only: a breakdown of createSession without touching the service.
 */
async function withGitCallsTimed<T>(fn: () => Promise<T>): Promise<{ result: T; calls: GitCall[] }> {
	const calls: GitCall[] = [];
	const original = Git.prototype.run;
	Git.prototype.run = function (this: Git, ...a: Parameters<Git['run']>): ReturnType<Git['run']> {
		const t0 = nowMs();
		const done = (): void => {
			calls.push({ args: a[0].join(' '), ms: round(nowMs() - t0, 1) });
		};
		return original.apply(this, a).then(
			(out) => {
				done();
				return out;
			},
			(e: unknown) => {
				done();
				throw e;
			},
		);
	};
	try {
		return { result: await fn(), calls };
	} finally {
		Git.prototype.run = original;
	}
}

/** The longest gap in a chain of 1 ms timers while `fn` ran, the 1 ms asked for included. */
async function longestStall(fn: () => Promise<unknown>): Promise<number> {
	const watch = stallWatch();
	let beyondTimerMs = 0;
	try {
		await fn();
	} finally {
		beyondTimerMs = watch.stop().ms;
	}
	return beyondTimerMs + 1;
}

/**
 * `git rev-parse HEAD` with `stallHeapMb` of this process's memory in use: the longest event-loop stall through
 * Git (the spawn helper forks it) against execFile from this process, alternated, and against the same watch
 * over a sleep as long as the command (idle).
 */
async function gitStallWithLargeHeap(repo: string, env: Env): Promise<Record<string, unknown>> {
	log(`worktrees: git stall with ${stallHeapMb} MB in use, ${stallRuns} runs each`);
	const ballast: Buffer[] = [];
	for (let mb = 0; mb < stallHeapMb; mb += 16) {
		ballast.push(Buffer.alloc(16 * 1024 * 1024, mb % 251)); // touched, so every page is mapped
	}
	const viaHelper = new Git(repo, env);
	const helper: number[] = [];
	const direct: number[] = [];
	const idle: number[] = [];
	await viaHelper.run(['rev-parse', 'HEAD']); // starts the helper (a fork of this large process, once)
	for (let i = 0; i < stallRuns; i++) {
		const order = i % 2 === 0 ? (['helper', 'direct'] as const) : (['direct', 'helper'] as const);
		for (const way of order) {
			if (way === 'helper') {
				helper.push(await longestStall(() => viaHelper.run(['rev-parse', 'HEAD'])));
			} else {
				direct.push(await longestStall(() => git(repo, env, ['rev-parse', 'HEAD'])));
			}
		}
		idle.push(await longestStall(() => new Promise((r) => setTimeout(r, 5))));
	}
	ballast.length = 0;
	const h = median(helper);
	return {
		heapInUseMb: stallHeapMb,
		viaHelperLongestStallMs: { median: round(h, 2), max: round(Math.max(...helper), 2) },
		directSpawnLongestStallMs: { median: round(median(direct), 2), max: round(Math.max(...direct), 2) },
		idleLongestStallMs: { median: round(median(idle), 2) },
		helperOverIdle: round(h / median(idle), 2),
		directOverHelper: round(median(direct) / h, 1),
	};
}

export async function runWorktreeBench(): Promise<Record<string, unknown>> {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-bench-wt-'));
	// No system or user git config (HOME is the temp folder), so hooks, fsmonitor and the like cannot skew either side.
	const env: Env = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: root };
	const repo = path.join(root, 'repo');
	const wtRoot = path.join(root, 'wt');
	const plainRoot = path.join(root, 'plain');
	let store: Store | undefined;
	try {
		log(`worktrees: generating ${dirs * filesPerDir} files`);
		const generated = generateRepo(repo, env);
		fs.mkdirSync(plainRoot, { recursive: true });
		store = await Store.open({ dir: path.join(root, 'state'), wasmPath, logger: nullLogger, owner: 'bench' });
		const service = new WorktreeService(store, nullLogger, { root: wtRoot, copy: [], env });

		const baselineOnce = async (i: number): Promise<number> => {
			const p = path.join(plainRoot, `run-${i}`);
			const t0 = nowMs();
			await git(repo, env, ['worktree', 'add', '-b', `plain/run-${i}`, p, 'HEAD']);
			const ms = nowMs() - t0;
			await git(repo, env, ['worktree', 'remove', '--force', p]);
			await git(repo, env, ['branch', '-D', `plain/run-${i}`]);
			return ms;
		};
		const oursOnce = async (i: number): Promise<number> => {
			// A fresh title each run: the same one would make the service probe name after name (its row stays).
			const t0 = nowMs();
			const { worktree } = await service.createSession({ repo, title: `bench run ${i}` });
			const ms = nowMs() - t0;
			await git(repo, env, ['worktree', 'remove', '--force', worktree.path]);
			await git(repo, env, ['branch', '-D', worktree.branch!]);
			return ms;
		};

		// One creation with every git call the service makes timed, first: it is also the warm-up (page cache,
		// the service's code paths, the Store's first writes), and its worktree is kept for risk() below. No
		// separate baseline warm-up: at 20,000 files one creation is seconds, and the order swap below evens out
		// what is left of first-run effects.
		log('worktrees: profiled creation (warm-up)');
		const t0 = nowMs();
		const profiled = await withGitCallsTimed(() => service.createSession({ repo, title: 'bench risk' }));
		const profiledTotal = nowMs() - t0;
		const addCall = profiled.calls.find((c) => c.args.startsWith('worktree add'));
		const gitTotal = profiled.calls.reduce((a, c) => a + c.ms, 0);
		const wt = profiled.result.worktree;

		const baseline: number[] = [];
		const ours: number[] = [];
		for (let i = 0; i < runs; i++) {
			log(`worktrees: creation run ${i + 1}/${runs}`);
			// Swap which goes first every run, so a slow moment or a cache effect of the previous run hits both alike.
			if (i % 2 === 0) {
				baseline.push(await baselineOnce(i));
				ours.push(await oursOnce(i));
			} else {
				ours.push(await oursOnce(i));
				baseline.push(await baselineOnce(i));
			}
		}

		const changeFiles = (folder: string): void => {
			const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: folder, env, maxBuffer: 256 * 1024 * 1024, encoding: 'utf8' })
				.split('\0')
				.filter((f) => f.endsWith('.ts'));
			const step = Math.floor(tracked.length / changedFiles);
			for (let i = 0; i < changedFiles; i++) {
				fs.appendFileSync(path.join(folder, tracked[i * step]!), `// changed ${i}\n`);
				const dir = path.join(folder, 'src', `pkg${String(i % 20).padStart(2, '0')}`, 'new');
				fs.mkdirSync(dir, { recursive: true });
				fs.writeFileSync(path.join(dir, `untracked${i}.ts`), fileText(999, i));
			}
		};
		const checkpointsPerTurn = async (folder: string, chat: string): Promise<{ stash: number[]; checkpoint: number[]; emptyIndex: number[] }> => {
			const stashOnce = async (): Promise<number> => {
				const c0 = nowMs();
				await git(folder, env, ['stash', 'create']);
				return nowMs() - c0;
			};
			const checkpointOnce = async (i: number): Promise<number> => {
				const c0 = nowMs();
				await service.checkpoint(folder, `${chat}/run-${i}`);
				return nowMs() - c0;
			};
			const emptyIndexOnce = async (i: number): Promise<number> => {
				const index = path.join(root, `index-${i}`);
				const c0 = nowMs();
				const indexEnv = { ...env, GIT_INDEX_FILE: index };
				await git(folder, indexEnv, ['read-tree', 'HEAD']);
				await git(folder, indexEnv, ['add', '-A', '--', '.']);
				await git(folder, indexEnv, ['write-tree']);
				const ms = nowMs() - c0;
				fs.rmSync(index, { force: true });
				return ms;
			};
			await stashOnce();
			await checkpointOnce(-1); // warm-up for both
			const stash: number[] = [];
			const checkpoint: number[] = [];
			const emptyIndex: number[] = [];
			for (let i = 0; i < checkpointRuns; i++) {
				if (i % 2 === 0) {
					stash.push(await stashOnce());
					checkpoint.push(await checkpointOnce(i));
				} else {
					checkpoint.push(await checkpointOnce(i));
					stash.push(await stashOnce());
				}
				emptyIndex.push(await emptyIndexOnce(i));
			}
			return { stash, checkpoint, emptyIndex };
		};

		log('worktrees: risk');
		const riskClean: number[] = [];
		for (let i = 0; i < riskRuns; i++) {
			const r0 = nowMs();
			await service.risk(wt.id);
			riskClean.push(nowMs() - r0);
		}
		changeFiles(wt.path);
		const riskDirty: number[] = [];
		// Not timed: checks the changes are seen as intended, and breaks risk() down into its git calls.
		const riskProfiled = await withGitCallsTimed(() => service.risk(wt.id));
		let report = riskProfiled.result;
		for (let i = 0; i < riskRuns; i++) {
			const r0 = nowMs();
			report = await service.risk(wt.id);
			riskDirty.push(nowMs() - r0);
		}

		// A checkpoint per turn, on the same dirty worktree, against `git stash create` (which records tracked
		// changes only; the checkpoint records untracked files too), alternated; and, for reference, what the
		// previous way cost (HEAD read into an empty temporary index, so `git add -A` hashed every file).
		log('worktrees: checkpoint per turn');
		const { stash, checkpoint, emptyIndex } = await checkpointsPerTurn(wt.path, 'bench-chat');
		const checkpointRatio = round(median(checkpoint) / median(stash), 2);

		// risk() on a worktree checked out with core.autocrlf=true (as Git for Windows sets it): every file is
		// converted, so each must be compared with what a checkout writes (an edit to LF only is invisible to
		// git). The first look in a process reads every file; later ones only files written since (verdicts are
		// remembered by stat). Against `git status`, which risk() runs too and which the check comes on top of.
		log('worktrees: risk with core.autocrlf=true');
		await git(repo, env, ['config', 'core.autocrlf', 'true']);
		let crlf: { firstMs: number; riskMs: number[]; statusMs: number[] };
		try {
			const crlfSession = await service.createSession({ repo, title: 'bench crlf' });
			changeFiles(crlfSession.worktree.path);
			const first0 = nowMs();
			await service.risk(crlfSession.worktree.id);
			const firstMs = nowMs() - first0;
			const riskMs: number[] = [];
			const statusMs: number[] = [];
			for (let i = 0; i < riskRuns; i++) {
				const s0 = nowMs();
				await git(crlfSession.worktree.path, env, ['status', '--porcelain']);
				statusMs.push(nowMs() - s0);
				const r0 = nowMs();
				await service.risk(crlfSession.worktree.id);
				riskMs.push(nowMs() - r0);
			}
			crlf = { firstMs, riskMs, statusMs };
		} finally {
			await git(repo, env, ['config', '--unset', 'core.autocrlf']);
		}
		const gitStall = await gitStallWithLargeHeap(repo, env);

		const ratio = round(median(ours) / median(baseline), 2);
		// Per-run ratios too: runs are paired (back to back), so their median is less sensitive to a slow stretch.
		const paired = ours.map((o, i) => o / baseline[i]!);
		return {
			repository: { files: generated.files, generateMs: round(generated.ms, 0) },
			creation: {
				baselineMs: { median: median(baseline), samples: baseline.map((x) => round(x, 1)) },
				oursMs: { median: median(ours), samples: ours.map((x) => round(x, 1)) },
				ratio,
				target: targetRatio,
				withinTarget: ratio <= targetRatio,
				overheadMs: round(median(ours) - median(baseline), 1),
				pairedRatioMedian: round(percentile(paired, 50), 2),
			},
			profile: {
				totalMs: round(profiledTotal, 1),
				worktreeAddMs: addCall?.ms ?? null,
				gitCallsOtherThanAddMs: round(gitTotal - (addCall?.ms ?? 0), 1),
				notGitMs: round(profiledTotal - gitTotal, 1),
				calls: profiled.calls,
			},
			risk: {
				cleanMs: { median: median(riskClean), samples: riskClean.map((x) => round(x, 1)) },
				dirtyMs: { median: median(riskDirty), samples: riskDirty.map((x) => round(x, 1)) },
				dirtySeen: { unstaged: report.unstaged.length, untracked: report.untracked.length, expected: changedFiles },
				dirtyCalls: riskProfiled.calls,
			},
			checkpointPerTurn: {
				stashCreateMs: { median: median(stash), samples: stash.map((x) => round(x, 1)) },
				checkpointMs: { median: median(checkpoint), samples: checkpoint.map((x) => round(x, 1)) },
				previousWayMs: { median: median(emptyIndex), samples: emptyIndex.map((x) => round(x, 1)) },
				ratio: checkpointRatio,
				target: checkpointTargetRatio,
				withinTarget: checkpointRatio <= checkpointTargetRatio,
			},
			riskAutocrlf: {
				firstInProcessMs: round(crlf.firstMs, 1),
				laterMs: { median: median(crlf.riskMs), samples: crlf.riskMs.map((x) => round(x, 1)) },
				gitStatusMs: { median: median(crlf.statusMs), samples: crlf.statusMs.map((x) => round(x, 1)) },
			},
			gitStall,
			notes: [
				`gitStall = the longest event-loop stall (1 ms timer chain) while one git rev-parse HEAD runs, with ${stallHeapMb} MB of this process's memory in use: through Git (forked by the spawn helper) against execFile from this process (a fork of this process), alternated; idle = the same watch over a 5 ms sleep.`,
				`checkpointPerTurn = WorktreeService.checkpoint (temporary index seeded from the worktree's index, add -A, write-tree, commit-tree, update-ref, prune) on the worktree with ${changedFiles} changed and ${changedFiles} untracked files, against git stash create on the same worktree, alternated; previousWay = read-tree HEAD into an empty index + add -A + write-tree (what checkpoints did before). Target ratio <= ${checkpointTargetRatio}.`,
				`riskAutocrlf = risk() on a worktree checked out with core.autocrlf=true (every file converted, ${changedFiles} changed and ${changedFiles} untracked): the first in this process compares every file with what a checkout writes; later ones only files written since; gitStatus = git status --porcelain on the same worktree, alternated with them.`,
				'baseline = git worktree add -b <branch> <path> HEAD via execFile, same environment; ours = WorktreeService.createSession with copy [] and no setup command (state rows written to a Store).',
				'Runs alternate (order swapped every run) after the profiled creation, which doubles as the warm-up; removal of each worktree and branch is outside the timed part.',
				'ratio = median ours / median baseline; target <= 1.2.',
				`profile = that first createSession with each git call timed (Git.run wrapped); risk() is timed on its worktree, clean and after changing ${changedFiles} tracked files and adding ${changedFiles} untracked ones.`,
			],
		};
	} finally {
		await store?.close();
		fs.rmSync(root, { recursive: true, force: true });
	}
}
