import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import { AgentTabsError } from '../common/errors';

/** A git command failed; `stderr` says why in git's words. */
export class GitError extends AgentTabsError {
	constructor(
		readonly args: string[],
		readonly stderr: string,
		readonly exitCode: number | null,
	) {
		super('git/failed', `git ${args.join(' ')} failed: ${stderr.trim() || `exit code ${exitCode}`}`);
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

/**
 * Runs git in one folder. Raw `git` through execFile rather than simple-git's higher-level API because the
 * save path needs plumbing (temporary index files, commit-tree, update-ref) with exact control over
 * environment and output bytes. Never through a shell: paths with spaces or any characters are safe.
 */
export class Git {
	constructor(
		readonly cwd: string,
		private readonly env: NodeJS.ProcessEnv = process.env,
	) {}

	at(cwd: string): Git {
		return new Git(cwd, this.env);
	}

	run(args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; maxBuffer?: number } = {}): Promise<string> {
		return this.exec<string>(args, 'utf8', options);
	}

	/**
	 * Like run, but input and output are raw bytes. Patches and file contents must cross git this way:
	 * decoding them as UTF-8 replaces every invalid byte (a Latin-1 `é`, a binary blob) with U+FFFD.
	 */
	runBytes(args: string[], options: { env?: NodeJS.ProcessEnv; input?: Buffer; maxBuffer?: number } = {}): Promise<Buffer> {
		return this.exec<Buffer>(args, 'buffer', options);
	}

	private exec<Output extends string | Buffer>(args: string[], encoding: 'utf8' | 'buffer', options: { env?: NodeJS.ProcessEnv; input?: string | Buffer; maxBuffer?: number }): Promise<Output> {
		return new Promise((resolve, reject) => {
			const child = execFile(
				'git',
				args,
				{ cwd: this.cwd, env: { ...this.env, ...options.env, GIT_TERMINAL_PROMPT: '0', LC_ALL: 'C' }, maxBuffer: options.maxBuffer ?? 256 * 1024 * 1024, encoding },
				(error, stdout, stderr) => {
					if (error) {
						const code = (error as NodeJS.ErrnoException).code;
						if (code === 'ENOENT' || code === 'ENOTDIR') {
							// Spawning fails the same way for a missing git and for a folder that is not there.
							reject(folderProblem(this.cwd) ?? new AgentTabsError('git/notInstalled', 'git is not installed or not on PATH. Agent Tabs needs git for sessions and worktrees.'));
							return;
						}
						reject(new GitError(args, stderr.toString(), typeof error.code === 'number' ? error.code : null));
						return;
					}
					resolve(stdout as Output);
				},
			);
			if (options.input !== undefined) {
				// A git that fails before reading its input closes the pipe: that is its exit code's story, not a crash.
				child.stdin?.on('error', () => undefined);
				child.stdin?.end(options.input);
			}
		});
	}

	/** Like run, but a non-zero exit is a `false` instead of an error (for `--verify`, `--quiet` checks). */
	async ok(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<boolean> {
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

	async lines(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<string[]> {
		return (await this.run(args, options)).split('\n').filter((l) => l.length > 0);
	}

	/** NUL-separated output (paths with any characters). */
	async zlist(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<string[]> {
		return (await this.run(args, options)).split('\0').filter((l) => l.length > 0);
	}

	/** Like zlist, as raw bytes: a file name that is not UTF-8 stays exact (fs takes it as a Buffer path). */
	async zlistBytes(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): Promise<Buffer[]> {
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
	prunable: boolean;
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
