import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';

/**
 * The real path of `p`: symlinks and `..` resolved in the part that exists, the rest (which need not exist
 * yet) appended as written. Two spellings of one folder compare equal this way.
 */
export function realPathLoose(p: string): string {
	let existing = path.resolve(p);
	const missing: string[] = [];
	for (;;) {
		try {
			return path.join(fs.realpathSync.native(existing), ...missing);
		} catch {
			const parent = path.dirname(existing);
			if (parent === existing) {
				return path.resolve(p);
			}
			missing.unshift(path.basename(existing));
			existing = parent;
		}
	}
}

/**
 * Whether two spellings name the same folder, through symlinks: git reports worktrees by their real path,
 * while a worktrees folder may be reached through a symlink (`~/.agent-tabs` on another disk, macOS `/tmp`).
 */
export function samePath(a: string, b: string): boolean {
	return path.resolve(a) === path.resolve(b) || realPathLoose(a) === realPathLoose(b);
}

/** True when `child` is `parent` or somewhere below it (both already resolved). */
export function isSameOrInside(child: string, parent: string): boolean {
	const rel = path.relative(parent, child);
	return rel === '' || (rel !== '..' && !rel.startsWith(`..${path.sep}`) && !path.isAbsolute(rel));
}

/**
 * Refuses a worktrees folder inside a checkout of the repository (its main checkout or one of its
 * worktrees), however it is spelled (relative, through symlinks): session worktrees there would show up as
 * untracked files in that checkout, and a `git clean -fdx` there would delete every session.
 */
export function refuseRootInsideCheckouts(root: string, checkouts: readonly string[]): void {
	const realRoot = realPathLoose(root);
	for (const checkout of checkouts) {
		if (isSameOrInside(realRoot, realPathLoose(checkout))) {
			throw new AgentTabsError(
				'worktree/rootInsideRepo',
				`The worktrees folder ${root} is inside the git checkout ${checkout}. Session worktrees there would show up as untracked files, and a "git clean -fdx" would delete them. Choose a folder outside the repository (--worktrees, or the agentTabs.worktrees.root setting).`,
			);
		}
	}
}

/**
 * A worktrees folder as the user wrote it (a setting): `~` is the home folder, and a relative path is
 * relative to `base` (the first workspace folder), so `../worktrees` means beside the repository. Empty:
 * undefined, the default folder.
 */
export function resolveWorktreesSetting(setting: string | undefined, base: string, home = os.homedir()): string | undefined {
	const trimmed = setting?.trim();
	if (!trimmed) {
		return undefined;
	}
	const expanded = trimmed === '~' || trimmed.startsWith('~/') ? path.join(home, trimmed.slice(1)) : trimmed;
	return path.resolve(base, expanded);
}

/** The folders directly in `dir` (none when it cannot be read). */
export function subfolders(dir: string): string[] {
	try {
		return fs
			.readdirSync(dir, { withFileTypes: true })
			.filter((e) => e.isDirectory())
			.map((e) => path.join(dir, e.name));
	} catch {
		return [];
	}
}

/**
 * The git folder of the checkout whose top folder is `folder`, read from its `.git` without running git: the
 * `.git` folder itself, or the folder a `.git` file names (`gitdir: …`, a linked worktree's or a submodule's).
 * Undefined when there is no `.git` or it cannot be read.
 */
export function gitDirOf(folder: string): string | undefined {
	const dotGit = path.join(folder, '.git');
	try {
		if (fs.statSync(dotGit).isDirectory()) {
			return dotGit;
		}
		const named = gitFileTarget(fs.readFileSync(dotGit, 'utf8'));
		return named ? path.resolve(folder, named) : undefined;
	} catch {
		return undefined;
	}
}

/**
 * The folder a `.git` file names (`gitdir: <folder>`), read as git reads it: all that follows the prefix but
 * the line breaks ending the file (see `gitPathFileText`). A folder name may end in a space or hold a line
 * break (a repository in `my repo `, say), so nothing else is trimmed. Undefined for anything else.
 */
export function gitFileTarget(text: string): string | undefined {
	const content = gitPathFileText(text);
	return content.startsWith('gitdir: ') && content.length > 'gitdir: '.length ? content.slice('gitdir: '.length) : undefined;
}

/**
 * What a file in which git keeps one path (a `.git` file, a linked worktree's `commondir`) says, read as git
 * reads it: every line feed and carriage return ending it goes, however many (a hand-written `../..` with a
 * blank line after it, CRLF endings), and nothing else, not even a space.
 */
export function gitPathFileText(text: string): string {
	return text.replace(/[\r\n]+$/, '');
}

/**
 * The repository's shared admin folder (what `git rev-parse --git-common-dir` prints, real path) of a
 * checkout's top folder, read from its `.git` (and a linked worktree's `commondir`) without running git; the
 * folder itself for anything else.
 */
export function repositoryAdminFolder(cwd: string): string {
	const dotGit = path.join(cwd, '.git');
	try {
		if (fs.statSync(dotGit).isDirectory()) {
			return fs.realpathSync(dotGit);
		}
		const gitDir = path.resolve(cwd, gitFileTarget(fs.readFileSync(dotGit, 'utf8')) ?? '');
		const common = gitPathFileText(fs.readFileSync(path.join(gitDir, 'commondir'), 'utf8'));
		return fs.realpathSync(path.resolve(gitDir, common));
	} catch {
		return path.resolve(cwd);
	}
}

/** What git prints for one path (`rev-parse --git-common-dir`, a `commondir` file) without the line break it ends with; nothing else is trimmed. */
export function withoutFinalNewline(text: string): string {
	return text.replace(/\r?\n$/, '');
}
