import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentTabsError, CancelledError } from '../common/errors';
import { endProcessTree, gitProcessSlots, progressCommands, ProgressReader, type GitProgress } from './gitProcess';
import { repositoryAdminFolder } from './paths';
import { launchProcess } from './spawnHelper';

export { setMaxGitProcesses, defaultMaxGitProcesses, type GitProgress } from './gitProcess';

/** A git command failed; `stderr` says why in git's words. */
export class GitError extends AgentTabsError {
	constructor(
		readonly args: string[],
		readonly stderr: string,
		readonly exitCode: number | null,
	) {
		super('git/failed', `git ${args.join(' ')} failed: ${stderr.trim() || `exit code ${exitCode}`}${lfsMissing.test(stderr) ? lfsHint : ''}`);
	}
}

/**
 * Git's words when a filter of the repository runs `git-lfs` and there is none (`git lfs install` wrote the
 * filter into the global config on a machine where the PATH of a terminal has it, and VS Code's does not):
 * "git-lfs: not found" then "the remote end hung up unexpectedly", which says nothing of the cause.
 */
const lfsMissing = /git-lfs(?: filter-process)?: (?:\d+: )?(?:git-lfs: )?(?:command )?not found|'git-lfs' is not recognized|exec: "git-lfs": executable file not found|external filter '?git-lfs [^']*'? failed/;
const lfsHint = '. This repository stores files with Git LFS and git-lfs could not be run: install Git LFS, or put it on the PATH that VS Code (or the agent-tabs command) is started with, then try again.';


/** A git that ran past its time (or went silent, for a long operation) and was ended with everything it started. */
export class GitTimeoutError extends AgentTabsError {
	constructor(
		readonly args: string[],
		readonly cwd: string,
		readonly afterMs: number,
		readonly silent: boolean,
	) {
		super(
			'git/timeout',
			`git ${args.join(' ')} (in ${cwd}) ${silent ? `printed nothing for ${seconds(afterMs)}` : `did not finish within ${seconds(afterMs)}`}, so it was stopped, with every process it had started. Nothing it had not finished was kept; try again, or look for what git waits on (a hook, a filter, the network, a lock).`,
		);
	}
}

function seconds(ms: number): string {
	return ms >= 60_000 && ms % 60_000 === 0 ? `${ms / 60_000} min` : `${Math.round(ms / 100) / 10} s`;
}

/** How long git may run (see GitRunOptions); process-wide, like the limit of processes at once. */
export const gitTimeouts = {
	/** Any command, unless it says otherwise: generous, so a slow disk or a big repository is not cut short. */
	defaultMs: 10 * 60_000,
	/** A long operation (`long: true`) is ended only when it prints nothing for this long. */
	longSilenceMs: 10 * 60_000,
	/** After SIGTERM, what git gets to remove its lock files before SIGKILL. */
	graceMs: 3000,
	/**
	 * After git has exited, how long its output pipes are read before they are let go: a process it started in
	 * the background (an ssh `ControlPersist` master, a hook's `cmd &`) holds them open until it ends.
	 */
	pipesAfterExitMs: 500,
};

export interface GitRunOptions {
	/** Added to the Git's environment for this command (`GIT_INDEX_FILE` of a temporary index…). */
	env?: NodeJS.ProcessEnv;
	maxBuffer?: number;
	/** Ends the command (and what it started) after this long; 0 for never. Default `gitTimeouts.defaultMs`. */
	timeoutMs?: number;
	/**
	 * A long operation (push, fetch, clone, merge, rebase, checking out a whole tree): no limit on its
	 * length, ended only when it prints nothing for `silenceMs` (default `gitTimeouts.longSilenceMs`).
	 */
	long?: boolean;
	silenceMs?: number;
	/** Cancels the command: a queued one never starts, a running one is ended with everything it started. */
	signal?: AbortSignal;
	/** Progress of clone, fetch, pull, push, checkout and merge (`--progress` is added for them). */
	onProgress?: (progress: GitProgress) => void;
	/** Configuration for this command only (as `git -c`, passed in the environment so argv stays as given). */
	config?: Record<string, string>;
}

/**
 * Configuration every command gets. core.fsmonitor names a command git runs on status, diff and add: never
 * one from a repository an agent may have written (its worktree's configuration, a repository cloned into it).
 * core.safecrlf (`true` is often set beside core.autocrlf on Windows) makes `add` refuse a file whose line
 * endings a checkout would not give back ("LF would be replaced by CRLF"): a guard for the user's own
 * commits, which stopped every checkpoint and save (and so every removal) of a worktree holding one file an
 * agent wrote with LF. Agent Tabs never stages for the user; its saves keep such files' bytes as they are.
 * Commit messages are UTF-8 both ways, whatever i18n.commitEncoding and i18n.logOutputEncoding say: the
 * messages Agent Tabs writes are UTF-8 (labelled otherwise, everyone else's git showed them garbled) and so
 * is what it reads back (a save's title and folder came back with each accented letter replaced).
 */
const alwaysConfig: Record<string, string> = { 'core.fsmonitor': 'false', 'core.safecrlf': 'false', 'i18n.commitEncoding': 'UTF-8', 'i18n.logOutputEncoding': 'UTF-8' };

/** Where Agent Tabs' own bookkeeping looks for hooks: a path under which no file can exist. */
const noHooks: Record<string, string> = { 'core.hooksPath': os.devNull };

/** The refs Agent Tabs keeps for itself (checkpoints, saves, trails). */
const ownRefRoot = 'refs/agent-tabs/';

/**
 * Whether a command is Agent Tabs' own bookkeeping, which runs none of the user's hooks: one on a temporary
 * index (`env.GIT_INDEX_FILE`; the inherited variable is dropped, so only Agent Tabs sets it), which
 * post-index-change would be told of, and an update-ref of refs under refs/agent-tabs/ only, which
 * reference-transaction would be asked to allow. Those hooks are for the user's own index and refs: one that
 * hung held every turn's checkpoint (and so the turn) and every save before a removal for ten minutes, and
 * one that failed (git-branchless's, with git-branchless missing from VS Code's PATH) stopped them all.
 */
function ownBookkeeping(args: readonly string[], options: GitRunOptions & { input?: string | Buffer }): boolean {
	if (options.env?.GIT_INDEX_FILE !== undefined) {
		return true;
	}
	if (args[0] !== 'update-ref') {
		return false;
	}
	// `update-ref [-d] <ref> …`, or `--stdin` lines `delete <ref>` (anything else keeps the hooks).
	const refs = args.includes('--stdin')
		? String(options.input ?? '')
				.split('\n')
				.filter(Boolean)
				.map((line) => /^delete (\S+)$/.exec(line)?.[1] ?? '')
		: [args.slice(1).find((a) => !a.startsWith('-')) ?? ''];
	return refs.every((ref) => ref.startsWith(ownRefRoot));
}

/** `env` with `config` added as GIT_CONFIG_KEY_n/VALUE_n after any the environment already has (git 2.31+). */
export function withConfigEnv(env: NodeJS.ProcessEnv, config: Record<string, string>): NodeJS.ProcessEnv {
	const existing = Number(env.GIT_CONFIG_COUNT ?? 0);
	let n = Number.isInteger(existing) && existing > 0 ? existing : 0;
	const out: NodeJS.ProcessEnv = { ...env };
	for (const [key, value] of Object.entries(config)) {
		out[`GIT_CONFIG_KEY_${n}`] = key;
		out[`GIT_CONFIG_VALUE_${n}`] = value;
		n++;
	}
	out.GIT_CONFIG_COUNT = String(n);
	return out;
}

/**
 * Git variables inherited from the surroundings that would point every command at another repository
 * (VS Code started from a git hook or `git rebase -x` has them set). A command that needs one (a temporary
 * index) passes it in its own `env`.
 */
const inheritedLocationVariables = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_COMMON_DIR', 'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_NAMESPACE', 'GIT_PREFIX'];

/**
 * `env` without the git location variables it inherited (see inheritedLocationVariables), for the programs
 * Agent Tabs starts in a worktree that run git themselves (the setup command, gh): `git commit` hands the
 * editor it starts (`code --wait` starting VS Code) GIT_INDEX_FILE, and their git would work on the user's
 * main checkout's index instead of the worktree's.
 */
export function withoutGitLocation(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
	const out: NodeJS.ProcessEnv = { ...env };
	for (const name of inheritedLocationVariables) {
		delete out[name];
	}
	return out;
}

/**
 * `{ GIT_DIR: folder }` when the folder is a bare repository (one of the user's, kept as `repo.git` beside
 * its worktrees), else nothing. Named explicitly, git works there whatever safe.bareRepository says: with
 * `explicit` (a hardened setup) it refused a bare repository it found by itself, and New Session said
 * "main is not a branch" of it.
 */
function bareRepositoryAt(folder: string): NodeJS.ProcessEnv {
	try {
		if (!fs.statSync(path.join(folder, 'objects')).isDirectory() || !fs.statSync(path.join(folder, 'HEAD')).isFile()) {
			return {};
		}
		return /^\s*bare\s*=\s*true\s*$/im.test(fs.readFileSync(path.join(folder, 'config'), 'utf8')) ? { GIT_DIR: folder } : {};
	} catch {
		return {};
	}
}

/** Plain words for a working folder git cannot run in, or undefined when the folder is fine. */
function folderProblem(cwd: string): AgentTabsError | undefined {
	let stat: fs.Stats;
	try {
		stat = fs.statSync(cwd);
	} catch {
		return new AgentTabsError('git/noFolder', `The folder ${cwd} does not exist (was it moved or deleted?).`);
	}
	return stat.isDirectory() ? undefined : new AgentTabsError('git/notFolder', `${cwd} is a file, not a folder.`);
}

/** The tail of each repository's queue of `git worktree` commands, by the repository's admin folder. */
const worktreeAdminTails = new Map<string, Promise<void>>();

/**
 * Runs a `git worktree` command when the ones before it in the same repository have ended. Git does not
 * guard its worktree list against itself: `git worktree add` writes a new entry's files one by one, and a
 * second `worktree add` or `worktree list` that reads the entry in between stops with "failed to read
 * .git/worktrees/<name>/commondir" (seen when several sessions were created at once).
 */
async function inWorktreeAdminTurn<T>(cwd: string, run: () => Promise<T>): Promise<T> {
	const key = repositoryAdminFolder(cwd);
	const before = worktreeAdminTails.get(key) ?? Promise.resolve();
	let done!: () => void;
	const tail = before.then(() => new Promise<void>((resolve) => (done = resolve)));
	worktreeAdminTails.set(key, tail);
	try {
		await before;
		return await run();
	} finally {
		done();
		if (worktreeAdminTails.get(key) === tail) {
			worktreeAdminTails.delete(key);
		}
	}
}

/**
 * The one way Agent Tabs runs git. Every process takes a slot of the process-wide limit first
 * (`setMaxGitProcesses`), is ended with everything it started when it runs past its time or is cancelled,
 * and reports progress for long operations. Spawned directly, never through a shell (paths with any
 * characters are safe), with exact bytes in and out and exact control of the environment: the save path
 * needs plumbing (temporary index files, commit-tree, update-ref) on file names that need not be UTF-8.
 * simple-git is not used to spawn: it can only signal git itself (not the hook or ssh it waits on), keeps
 * a queue per instance, strips GIT_* variables, and decodes output as UTF-8.
 */
export class Git {
	private readonly env: NodeJS.ProcessEnv;

	constructor(
		readonly cwd: string,
		env: NodeJS.ProcessEnv = process.env,
	) {
		this.env = { ...withoutGitLocation(env), ...bareRepositoryAt(cwd) };
		// A user's GIT_DIFF_OPTS (--unified=0) beats even a command's own -U: a rewind's patch had no context,
		// and apply refused it.
		delete this.env.GIT_DIFF_OPTS;
	}

	at(cwd: string): Git {
		return new Git(cwd, this.env);
	}

	run(args: string[], options: GitRunOptions & { input?: string } = {}): Promise<string> {
		return this.exec(args, options).then((out) => out.toString('utf8'));
	}

	/**
	 * Like run, but input and output are raw bytes. Patches and file contents must cross git this way:
	 * decoding them as UTF-8 replaces every invalid byte (a Latin-1 `é`, a binary blob) with U+FFFD.
	 */
	runBytes(args: string[], options: GitRunOptions & { input?: Buffer } = {}): Promise<Buffer> {
		return this.exec(args, options);
	}

	private async exec(args: string[], options: GitRunOptions & { input?: string | Buffer }): Promise<Buffer> {
		if (args[0] === 'worktree') {
			return inWorktreeAdminTurn(this.cwd, () => this.execInSlot(args, options));
		}
		return this.execInSlot(args, options);
	}

	private async execInSlot(args: string[], options: GitRunOptions & { input?: string | Buffer }): Promise<Buffer> {
		const what = (): string => `git ${args.join(' ')}`;
		const release = await gitProcessSlots.acquire(options.signal, what);
		try {
			if (options.signal?.aborted) {
				// Cancelled just as its slot came free: its abort event has fired already.
				throw new CancelledError(`${what()} was cancelled before it started.`);
			}
			return await this.spawnOnce(args, options);
		} finally {
			release();
		}
	}

	private spawnOnce(args: string[], options: GitRunOptions & { input?: string | Buffer }): Promise<Buffer> {
		const argv = options.onProgress && progressCommands.has(args[0] ?? '') ? [args[0]!, '--progress', ...args.slice(1)] : args;
		const maxBuffer = options.maxBuffer ?? 256 * 1024 * 1024;
		return new Promise((resolve, reject) => {
			// Through the spawn helper: a fork from this (large) process would stall it (see spawnHelper.ts).
			// GIT_OPTIONAL_LOCKS=0 (as VS Code's own git extension runs its background status): a read such as
			// status or diff does not write the refreshed index back, so it never holds the index lock that an
			// agent's `git add` or the user's `git commit` in the same worktree needs at that moment.
			const child = launchProcess('git', argv, {
				cwd: this.cwd,
				env: withConfigEnv({ ...this.env, ...options.env, GIT_TERMINAL_PROMPT: '0', GIT_OPTIONAL_LOCKS: '0', LC_ALL: 'C' }, { ...alwaysConfig, ...(ownBookkeeping(args, options) ? noHooks : {}), ...options.config }),
				stdin: options.input !== undefined,
			});
			const stdout: Buffer[] = [];
			let stdoutBytes = 0;
			const stderr: Buffer[] = [];
			let stderrBytes = 0;
			const progress = options.onProgress ? new ProgressReader(options.onProgress) : undefined;
			/** Why we are ending it; its error once the process is gone. */
			let ending: { error: Error; done: Promise<void> } | undefined;
			const end = (error: Error): void => {
				if (!ending) {
					const done = child.started.then((pid) => (pid === undefined ? undefined : endProcessTree(pid, gitTimeouts.graceMs)));
					ending = { error, done };
					// A process git left behind (started in the background, so no longer its child) may still
					// hold the pipes; the command is over all the same.
					void done.then(() => child.dropOutput());
				}
			};
			const timeoutMs = options.long ? 0 : (options.timeoutMs ?? gitTimeouts.defaultMs);
			const timer = timeoutMs > 0 ? setTimeout(() => end(new GitTimeoutError(args, this.cwd, timeoutMs, false)), timeoutMs) : undefined;
			const silenceMs = options.long ? (options.silenceMs ?? gitTimeouts.longSilenceMs) : 0;
			let silence: NodeJS.Timeout | undefined;
			const heard = (): void => {
				if (silenceMs > 0) {
					clearTimeout(silence);
					silence = setTimeout(() => end(new GitTimeoutError(args, this.cwd, silenceMs, true)), silenceMs);
				}
			};
			heard();
			const onAbort = (): void => end(new CancelledError(`git ${args.join(' ')} (in ${this.cwd}) was cancelled; it was stopped, with every process it had started.`));
			options.signal?.addEventListener('abort', onAbort, { once: true });
			child.on('stdout', (chunk: Buffer) => {
				heard();
				stdoutBytes += chunk.length;
				if (stdoutBytes > maxBuffer) {
					end(new AgentTabsError('git/outputTooLarge', `git ${args.join(' ')} (in ${this.cwd}) printed more than ${maxBuffer} bytes, so it was stopped.`));
					return;
				}
				stdout.push(chunk);
			});
			child.on('stderr', (chunk: Buffer) => {
				heard();
				progress?.push(chunk);
				// Only the end of a long stderr is kept: it says why git stopped.
				stderr.push(chunk);
				stderrBytes += chunk.length;
				while (stderrBytes > 1024 * 1024 && stderr.length > 1) {
					stderrBytes -= stderr.shift()!.length;
				}
			});
			let spawnError: NodeJS.ErrnoException | undefined;
			child.on('error', (e: NodeJS.ErrnoException) => (spawnError ??= e));
			// Git has ended; what it wrote is read within moments. A process it left running in the background
			// (an ssh ControlPersist master, a hook's `cmd &`) inherited the pipes and would hold the command open
			// until it ends, minutes or never: after a moment they are let go, and `close` follows.
			let afterExit: NodeJS.Timeout | undefined;
			child.on('exit', () => {
				afterExit ??= setTimeout(() => child.dropOutput(), gitTimeouts.pipesAfterExitMs);
			});
			child.on('close', (code) => {
				clearTimeout(afterExit);
				clearTimeout(timer);
				clearTimeout(silence);
				options.signal?.removeEventListener('abort', onAbort);
				if (ending) {
					const { error, done } = ending;
					void done.then(() => reject(error));
					return;
				}
				if (spawnError) {
					if (spawnError.code === 'EHELPERGONE') {
						reject(new AgentTabsError('git/helperGone', `git ${args.join(' ')} (in ${this.cwd}) was stopped because ${spawnError.message}; try again.`, { cause: spawnError }));
					} else if (spawnError.code === 'ENOENT' || spawnError.code === 'ENOTDIR') {
						// Spawning fails the same way for a missing git and for a folder that is not there.
						reject(folderProblem(this.cwd) ?? new AgentTabsError('git/notInstalled', 'git is not installed or not on PATH. Agent Tabs needs git for sessions and worktrees.'));
					} else {
						reject(new AgentTabsError('git/spawnFailed', `Could not start git ${args.join(' ')} in ${this.cwd}: ${spawnError.message}`, { cause: spawnError }));
					}
					return;
				}
				if (code !== 0) {
					reject(new GitError(args, progress ? progress.text() : Buffer.concat(stderr).toString('utf8'), code));
					return;
				}
				resolve(Buffer.concat(stdout));
			});
			if (options.input !== undefined) {
				child.input(options.input);
			}
		});
	}

	/** Like run, but a non-zero exit is a `false` instead of an error (for `--verify`, `--quiet` checks). */
	async ok(args: string[], options: GitRunOptions = {}): Promise<boolean> {
		try {
			await this.run(args, options);
			return true;
		} catch (e) {
			if (e instanceof GitError) {
				return false;
			}
			throw e;
		}
	}

	async lines(args: string[], options: GitRunOptions = {}): Promise<string[]> {
		return (await this.run(args, options)).split('\n').filter((l) => l.length > 0);
	}

	/** NUL-separated output (paths with any characters). */
	async zlist(args: string[], options: GitRunOptions = {}): Promise<string[]> {
		return (await this.run(args, options)).split('\0').filter((l) => l.length > 0);
	}

	/** Like zlist, as raw bytes: a file name that is not UTF-8 stays exact (fs takes it as a Buffer path). */
	async zlistBytes(args: string[], options: GitRunOptions = {}): Promise<Buffer[]> {
		const out = await this.runBytes(args, options);
		const items: Buffer[] = [];
		let start = 0;
		for (let end = out.indexOf(0); end >= 0; start = end + 1, end = out.indexOf(0, start)) {
			if (end > start) {
				items.push(out.subarray(start, end));
			}
		}
		if (start < out.length) {
			items.push(out.subarray(start));
		}
		return items;
	}
}

export interface WorktreeListEntry {
	path: string;
	head?: string;
	branch?: string;
	bare: boolean;
	detached: boolean;
	locked: boolean;
	/** Why it was locked (`git worktree lock --reason`), when it says. */
	lockReason?: string;
	prunable: boolean;
}

/**
 * Names for a `--stdin-paths` list, one per line. Git reads a line that starts with `"` as a C-quoted name,
 * so such a name is quoted (a file really named `"q".txt` would otherwise be read as `q`). Names must not
 * hold a line break.
 */
export function stdinPaths(names: readonly string[]): string {
	return names.map((name) => (name.startsWith('"') ? `"${name.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\t/g, '\\t')}"` : name)).join('\n') + '\n';
}

/** Parses `git worktree list --porcelain -z`. */
export function parseWorktreeList(out: string): WorktreeListEntry[] {
	const entries: WorktreeListEntry[] = [];
	let current: WorktreeListEntry | undefined;
	for (const field of out.split('\0')) {
		if (field === '') {
			if (current) {
				entries.push(current);
				current = undefined;
			}
			continue;
		}
		const space = field.indexOf(' ');
		const key = space < 0 ? field : field.slice(0, space);
		const value = space < 0 ? '' : field.slice(space + 1);
		if (key === 'worktree') {
			if (current) {
				entries.push(current);
			}
			current = { path: value, bare: false, detached: false, locked: false, prunable: false };
		} else if (current) {
			if (key === 'HEAD') {
				current.head = value;
			} else if (key === 'branch') {
				current.branch = value.replace(/^refs\/heads\//, '');
			} else if (key === 'bare') {
				current.bare = true;
			} else if (key === 'detached') {
				current.detached = true;
			} else if (key === 'locked') {
				current.locked = true;
				if (value) {
					current.lockReason = value;
				}
			} else if (key === 'prunable') {
				current.prunable = true;
			}
		}
	}
	if (current) {
		entries.push(current);
	}
	return entries;
}

/** What git said when it failed, as one sentence: from its first error line on (else its last lines); hints and progress dropped. */
export function gitSays(e: GitError): string {
	const text = e.stderr || e.message;
	if (/Please tell me who you are|unable to auto-detect email address|empty ident name|no (email|name) was given and auto-detection is disabled/.test(text)) {
		return 'git does not know who you are, so it cannot make the commit: run git config --global user.name "Your Name" and git config --global user.email "you@example.com".';
	}
	if (lfsMissing.test(text)) {
		return lfsHint.slice(2);
	}
	const lines = text
		.split(/\r?\n|\r/)
		.map((l) => l.trim())
		.filter((l) => l && !l.startsWith('hint:') && !/^(Rebasing \(\d+\/\d+\)|Preparing worktree .*|HEAD is now at .*|Updating files: .*)$/.test(l) && l !== 'Aborting');
	const firstError = lines.findIndex((l) => /^(fatal|error):/i.test(l));
	// A hook's own words come before git's "…by hook" line: they are the reason.
	const from = firstError > 0 && /hook/i.test(lines[firstError]!) ? Math.max(0, firstError - 3) : firstError;
	const said = firstError >= 0 ? lines.slice(from, firstError + 6) : lines.slice(-4);
	const sentence = said.join(' ').replace(/(^|\s)(fatal|error): /gi, '$1');
	return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}
