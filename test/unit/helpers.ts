import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setDisposableTracker, type IDisposable } from '../../src/common/lifecycle';
import type { Logger } from '../../src/common/log';
import { Store, type StoreOptions } from '../../src/db/store';

/** The repository root (tests run from out/test/unit). */
export const repoRoot = path.resolve(__dirname, '..', '..', '..');
export const wasmPath = path.join(repoRoot, 'node_modules', 'sql.js', 'dist', 'sql-wasm.wasm');

let builtCli: string | undefined;

/**
 * The `agent-tabs` CLI bundle (dist/cli.js) built from the current sources, once per test process. Tests that
 * run the CLI as users get it must not run whatever dist/ a previous build left: `tsc -p tsconfig.test.json`
 * does not rebuild it, and a bundle from before a merge silently runs old code.
 */
export function cliBundle(): string {
	if (builtCli === undefined) {
		const r = spawnSync(process.execPath, ['esbuild.mjs'], { cwd: repoRoot, encoding: 'utf8' });
		if (r.status !== 0) {
			throw new Error(`Building dist/ (node esbuild.mjs) failed (exit ${r.status ?? r.signal}): ${r.stderr}`);
		}
		builtCli = path.join(repoRoot, 'dist', 'cli.js');
	}
	return builtCli;
}

/** A fresh folder under the OS temp dir, removed by `cleanup`. */
export function tempDir(prefix = 'agent-tabs-test-'): string {
	return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir: string): void {
	// A process a test's last step started may still be finishing its writes in the folder. rmSync retries only
	// the folder it failed on, never what was written into it meanwhile, so each attempt starts over.
	for (let attempt = 1; ; attempt++) {
		try {
			fs.rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
			return;
		} catch (e) {
			if (attempt >= 20 || !['ENOTEMPTY', 'EBUSY', 'EPERM'].includes((e as NodeJS.ErrnoException).code ?? '')) {
				throw e;
			}
			Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200 * attempt);
		}
	}
}

/** A logger that keeps every line, so tests can assert on what was said. */
export class MemoryLogger implements Logger {
	readonly lines: string[] = [];
	trace(m: string): void {
		this.lines.push(`trace ${m}`);
	}
	debug(m: string): void {
		this.lines.push(`debug ${m}`);
	}
	info(m: string): void {
		this.lines.push(`info ${m}`);
	}
	warn(m: string): void {
		this.lines.push(`warn ${m}`);
	}
	error(m: string | Error): void {
		this.lines.push(`error ${String(m)}`);
	}
}

export function openStore(dir: string, options: Partial<StoreOptions> = {}): Promise<Store> {
	return Store.open({ dir, wasmPath, logger: new MemoryLogger(), owner: 'a unit test', ...options });
}

/**
 * Fails the suite when a test leaves a tracked disposable undisposed (modelled on copilot-chat's
 * ensureNoDisposablesAreLeakedInTestSuite). Call at the top of a `suite`.
 */
export function ensureNoDisposablesLeaked(): void {
	const live = new Map<IDisposable, string>();
	setup(() => {
		live.clear();
		setDisposableTracker({
			trackCreated: (d) => live.set(d, new Error().stack ?? ''),
			trackDisposed: (d) => live.delete(d),
		});
	});
	teardown(function () {
		setDisposableTracker(undefined);
		if (this.currentTest?.state === 'failed') {
			return;
		}
		if (live.size > 0) {
			const first = [...live.values()][0]!.split('\n').slice(2, 8).join('\n');
			throw new Error(`${live.size} disposable(s) leaked; first created at:\n${first}`);
		}
	});
}

/** Polls `check` every 20 ms until it holds; fails naming `what` after `ms`. */
export async function waitFor(check: () => boolean, what = 'condition', ms = 10_000): Promise<void> {
	const end = Date.now() + ms;
	while (!check()) {
		if (Date.now() > end) {
			throw new Error(`timed out waiting for ${what}`);
		}
		await new Promise((r) => setTimeout(r, 20));
	}
}

/** The parent pid of a live process (Linux: read from /proc, after the command name, which may hold spaces). */
export function parentPid(pid: number): number {
	const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
	return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}
