import { execFile, execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { CancelledError } from '../common/errors';

/**
 * Git processes running at once, process-wide: every `Git` (whatever its folder) takes a slot before it
 * spawns and gives it back when the process has ended, so twenty agents ending their turns together queue
 * their checkpoints instead of starting a hundred gits on a two-core machine. First come, first served.
 */
class ProcessSlots {
	private running = 0;
	private readonly waiting: { grant: () => void }[] = [];

	constructor(private max: number) {}

	get limit(): number {
		return this.max;
	}

	/** Running and queued git processes right now. */
	get load(): { running: number; queued: number } {
		return { running: this.running, queued: this.waiting.length };
	}

	setLimit(max: number): void {
		if (!Number.isInteger(max) || max < 1) {
			throw new RangeError(`The limit of git processes at once must be a whole number of at least 1, not ${max}.`);
		}
		this.max = max;
		this.grantWaiting();
	}

	/** Resolves with the slot's release (safe to call twice); a cancel while queued rejects and frees the place. */
	acquire(signal: AbortSignal | undefined, what: () => string): Promise<() => void> {
		if (signal?.aborted) {
			return Promise.reject(new CancelledError(`${what()} was cancelled before it started.`));
		}
		return new Promise((resolve, reject) => {
			const entry = {
				grant: (): void => {
					signal?.removeEventListener('abort', onAbort);
					this.running++;
					let released = false;
					resolve(() => {
						if (!released) {
							released = true;
							this.running--;
							this.grantWaiting();
						}
					});
				},
			};
			const onAbort = (): void => {
				const i = this.waiting.indexOf(entry);
				if (i >= 0) {
					this.waiting.splice(i, 1);
					reject(new CancelledError(`${what()} was cancelled before it started.`));
				}
			};
			signal?.addEventListener('abort', onAbort, { once: true });
			this.waiting.push(entry);
			this.grantWaiting();
		});
	}

	private grantWaiting(): void {
		while (this.running < this.max && this.waiting.length > 0) {
			this.waiting.shift()!.grant();
		}
	}
}

/** Default for `agentTabs.git.maxConcurrentProcesses`: enough to overlap work, few enough for a laptop. */
export const defaultMaxGitProcesses = 8;

export const gitProcessSlots = new ProcessSlots(defaultMaxGitProcesses);

/** Sets the process-wide limit of git processes at once (setting `agentTabs.git.maxConcurrentProcesses`). */
export function setMaxGitProcesses(max: number): void {
	gitProcessSlots.setLimit(max);
}

/** The process ids listed in `/proc` (Linux). */
function procPids(): string[] {
	return fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
}

/** Processes of this user (Linux: `/proc`) whose environment holds `name=value`; none where that cannot be read. */
export function processesTagged(name: string, value: string): number[] {
	if (process.platform !== 'linux') {
		return [];
	}
	// A leading NUL makes the first variable match like the others.
	const needle = Buffer.from(`\0${name}=${value}\0`);
	const found: number[] = [];
	for (const pid of procPids()) {
		try {
			if (Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${pid}/environ`)]).includes(needle)) {
				found.push(Number(pid));
			}
		} catch {
			// gone meanwhile, or another user's
		}
	}
	return found;
}

/** Parent of each live process (zombies left out: they hold nothing and cannot be signalled away). */
function parentTable(): Map<number, number> {
	const parents = new Map<number, number>();
	if (fs.existsSync('/proc/self/stat')) {
		for (const name of procPids()) {
			try {
				const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
				// "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
				const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
				if (state !== 'Z' && state !== 'X') {
					parents.set(Number(name), Number(ppid));
				}
			} catch {
				// ended while we looked
			}
		}
		return parents;
	}
	const out = execFileSync('ps', ['-A', '-o', 'pid=', '-o', 'ppid=', '-o', 'stat='], { encoding: 'utf8' });
	for (const line of out.split('\n')) {
		const [pid, ppid, state] = line.trim().split(/\s+/);
		if (pid && ppid && !state?.startsWith('Z')) {
			parents.set(Number(pid), Number(ppid));
		}
	}
	return parents;
}

function descendants(root: number, parents: Map<number, number>): number[] {
	const found: number[] = [];
	const queue = [root];
	while (queue.length > 0) {
		const pid = queue.shift()!;
		for (const [child, parent] of parents) {
			if (parent === pid && !found.includes(child)) {
				found.push(child);
				queue.push(child);
			}
		}
	}
	return found;
}

function signal(pid: number, name: NodeJS.Signals): void {
	try {
		process.kill(pid, name);
	} catch {
		// already gone
	}
}

/** True while `pid` runs (a zombie has ended: it only waits to be reaped). */
export function processAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
	} catch (e) {
		return (e as NodeJS.ErrnoException).code === 'EPERM';
	}
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
		return state !== 'Z' && state !== 'X';
	} catch {
		return !fs.existsSync('/proc/self/stat');
	}
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function waitGone(pids: readonly number[], ms: number): Promise<number[]> {
	const until = Date.now() + ms;
	let alive = pids.filter(processAlive);
	while (alive.length > 0 && Date.now() < until) {
		await sleep(25);
		alive = alive.filter(processAlive);
	}
	return alive;
}

/**
 * Ends a git process and every process it started (hooks, filters, ssh, a shell script's children): the
 * tree is frozen first (SIGSTOP) so nothing in it can start more while it is collected, then each gets
 * SIGTERM, which git answers by removing its lock files, then SIGCONT; whatever is still there after
 * `graceMs` gets SIGKILL. Resolves when none of them runs any more.
 *
 * Git stays in our own process group rather than a group of its own: a kill of Agent Tabs' group (the
 * crash tests, a terminal's Ctrl+C) must take its gits with it, never leave one writing behind a restart.
 */
export async function endProcessTree(root: number, graceMs: number): Promise<void> {
	if (process.platform === 'win32') {
		await new Promise<void>((resolve) => execFile('taskkill', ['/pid', String(root), '/T', '/F'], () => resolve()));
		return;
	}
	signal(root, 'SIGSTOP');
	const tree = [root];
	for (let round = 0; round < 20; round++) {
		const fresh = descendants(root, parentTable()).filter((p) => !tree.includes(p));
		if (fresh.length === 0) {
			break;
		}
		for (const pid of fresh) {
			signal(pid, 'SIGSTOP');
			tree.push(pid);
		}
	}
	for (const pid of tree) {
		signal(pid, 'SIGTERM');
	}
	for (const pid of tree) {
		signal(pid, 'SIGCONT');
	}
	const stubborn = await waitGone(tree, graceMs);
	for (const pid of stubborn) {
		signal(pid, 'SIGKILL');
	}
	await waitGone(stubborn, 5000);
}

/** One line of git's `--progress` output: `Receiving objects:  45% (450/1000)`. */
export interface GitProgress {
	/** In git's words: `Counting objects`, `Writing objects`, `Receiving objects`, `Resolving deltas`… */
	stage: string;
	/** True for the other side's stages (`remote: …`). */
	remote: boolean;
	percent: number;
	processed: number;
	total: number;
}

/** Subcommands that take `--progress`, the flag that makes git report progress to a pipe. */
export const progressCommands: ReadonlySet<string> = new Set(['clone', 'fetch', 'pull', 'push', 'checkout', 'merge']);

const progressLine = /^(remote: )?\s*([^:]+?):\s+(\d+)% \((\d+)\/(\d+)\)/;

/**
 * Reads git's stderr as it comes: progress updates (`\r`-terminated, and the final `…, done.` lines) go to
 * `onProgress`; what is kept for an error message is the lines that are not updates of a counter.
 */
export class ProgressReader {
	private pending = '';
	private readonly kept: string[] = [];

	constructor(private readonly onProgress: (progress: GitProgress) => void) {}

	push(chunk: Buffer): void {
		const text = this.pending + chunk.toString('utf8');
		let start = 0;
		for (let i = 0; i < text.length; i++) {
			const c = text[i];
			if (c === '\r' || c === '\n') {
				this.line(text.slice(start, i), c === '\n');
				start = i + 1;
			}
		}
		this.pending = text.slice(start);
	}

	/** Stderr without the counters' updates. */
	text(): string {
		return [...this.kept, this.pending].filter(Boolean).join('\n');
	}

	private line(line: string, final: boolean): void {
		const m = progressLine.exec(line);
		if (m) {
			this.onProgress({ stage: m[2]!.trim(), remote: Boolean(m[1]), percent: Number(m[3]), processed: Number(m[4]), total: Number(m[5]) });
		}
		if (final && line.trim() && !m) {
			this.kept.push(line);
		}
	}
}
