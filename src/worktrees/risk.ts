import * as fs from 'node:fs';
import * as path from 'node:path';
import { withIndexCopy } from './checkpoints';
import { checkoutDrift, type FileEntry } from './conversion';
import { type Git, GitError, parseWorktreeList, stdinPaths } from './gitClient';
import { gitDirOf, realPathLoose, samePath } from './paths';

/** A git operation stopped half-way in a worktree, with the commands that finish or abort it. */
export interface OperationInProgress {
	name: 'merge' | 'rebase' | 'am' | 'cherry-pick' | 'revert' | 'bisect';
	finish: string;
	abort: string;
}

/** Marker files in the worktree's git folder, most specific first (a rebase may also leave CHERRY_PICK_HEAD). */
const operationMarkers: [string, OperationInProgress][] = [
	['rebase-merge', { name: 'rebase', finish: 'git rebase --continue', abort: 'git rebase --abort' }],
	['rebase-apply/applying', { name: 'am', finish: 'git am --continue', abort: 'git am --abort' }],
	['rebase-apply', { name: 'rebase', finish: 'git rebase --continue', abort: 'git rebase --abort' }],
	['MERGE_HEAD', { name: 'merge', finish: 'git merge --continue', abort: 'git merge --abort' }],
	['CHERRY_PICK_HEAD', { name: 'cherry-pick', finish: 'git cherry-pick --continue', abort: 'git cherry-pick --abort' }],
	['REVERT_HEAD', { name: 'revert', finish: 'git revert --continue', abort: 'git revert --abort' }],
	['BISECT_LOG', { name: 'bisect', finish: 'git bisect reset', abort: 'git bisect reset' }],
	// A cherry-pick or revert of several commits whose stopped one was committed by hand: only its to-do list
	// is left (pick or revert, read from it below).
	['sequencer/todo', { name: 'cherry-pick', finish: 'git cherry-pick --continue', abort: 'git cherry-pick --abort' }],
];
const sequencedRevert: OperationInProgress = { name: 'revert', finish: 'git revert --continue', abort: 'git revert --abort' };

/** The operation in progress in a worktree (`wt` runs in its folder), or null. */
export async function operationInProgress(wt: Git): Promise<OperationInProgress | null> {
	const paths = await wt.lines(['rev-parse', ...operationMarkers.flatMap(([marker]) => ['--git-path', marker])]);
	for (let i = 0; i < operationMarkers.length; i++) {
		const marker = path.resolve(wt.cwd, paths[i]!);
		if (fs.existsSync(marker)) {
			const [name, op] = operationMarkers[i]!;
			if (name === 'sequencer/todo' && /^\s*(revert|r)\s/.test(readStart(marker))) {
				return sequencedRevert;
			}
			return op;
		}
	}
	return null;
}

function readStart(file: string): string {
	try {
		return fs.readFileSync(file, 'utf8').slice(0, 200);
	} catch {
		return '';
	}
}

/** Plain words for an operation in progress, naming the commands that end it. */
export function describeOperation(op: OperationInProgress): string {
	return op.finish === op.abort ? `a ${op.name} in progress (end it with "${op.finish}")` : `a ${op.name} in progress (finish it with "${op.finish}" or abort it with "${op.abort}")`;
}

/** Everything removing a worktree would lose, category by category. */
export interface RiskReport {
	path: string;
	branch: string | null;
	exists: boolean;
	/**
	 * Why the folder, which exists and holds files, is not a worktree of this repository any more (its `.git`
	 * file was deleted, or replaced by a repository of its own): git cannot say what in it would be lost, and
	 * a save made there would go to the wrong repository. Null when the folder is this repository's worktree.
	 */
	foreign: string | null;
	staged: string[];
	unstaged: string[];
	untracked: string[];
	ignoredCount: number;
	/** Upstream branch, if any. */
	upstream: string | null;
	/** Commits not on the upstream (or on no remote at all when there is no upstream). */
	unpushed: string[];
	/**
	 * Commits whose changes are not in the base branch (squash-merged and rebased work counts as merged);
	 * when the base branch is gone (`baseGone`), commits no other branch or remote has.
	 */
	unmerged: string[];
	baseGone?: boolean;
	/** The folder is not there but git's record of it is locked (see describeLockedAway): its reason, or ''. */
	lockedAway?: string;
	/** Stashes made on this branch (stashes are shared by all worktrees of a repository). */
	stashes: string[];
	/**
	 * Files whose bytes are not what git would check out, although `git status` shows no change: an edit a
	 * clean filter or line-ending conversion undoes (notebook outputs a filter strips, CRLF under text=auto),
	 * or files left from before such a setting. A save keeps their bytes.
	 */
	invisible: string[];
	/** A merge, rebase, cherry-pick, revert, am or bisect stopped half-way. */
	operation: OperationInProgress | null;
	/** Files with unresolved conflicts (unmerged index entries). */
	conflicts: string[];
	/**
	 * Git repositories inside the worktree whose own work a save cannot hold, each in plain words: a
	 * repository created or cloned into it (its files and history are not the worktree's), and submodules
	 * with uncommitted changes or commits on none of their remotes (their git folder goes with the worktree).
	 */
	innerRepositories: string[];
	/** Chats whose agents are running in this worktree right now. */
	runningAgents: string[];
	/** True when nothing at all would be lost. */
	clean: boolean;
	/** One line a person can read. */
	summary: string;
}

function plural(n: number, word: string): string {
	return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * A worktree whose folder is not there but whose git record is locked (`git worktree lock`: a folder on a
 * drive that is not connected, say): git keeps the record, and its index (what was staged), for when the
 * folder comes back; so does Agent Tabs.
 */
export function describeLockedAway(wtPath: string, reason: string | undefined): string {
	return `${wtPath} is not there, but git keeps it locked${reason ? ` ("${reason}")` : ''}, as for a folder on a drive that is not connected. Connect it; if it is really gone, run "git worktree unlock ${wtPath}" first. Nothing was changed.`;
}

/**
 * Inspects a worktree. `baseRef` is the branch its work should end up in (for "unmerged"). Unmerged is
 * decided by content, not only reachability: a commit whose patch is already in the base (rebased or
 * cherry-picked) is merged, and a branch whose whole change merges into the base as a no-op (squash-merged)
 * has nothing unmerged. `commitsOnly`: the branch's commits only (`input.branch`), not the folder.
 */
export async function assessRisk(git: Git, input: { path: string; branch: string | null; baseRef: string | null; runningAgents?: string[]; keptIgnored?: (rel: string) => boolean; commitsOnly?: boolean; savedIn?: string | null }): Promise<RiskReport> {
	const report: RiskReport = {
		path: input.path,
		branch: input.branch,
		exists: true,
		foreign: null,
		staged: [],
		unstaged: [],
		invisible: [],
		untracked: [],
		ignoredCount: 0,
		upstream: null,
		unpushed: [],
		unmerged: [],
		stashes: [],
		operation: null,
		conflicts: [],
		innerRepositories: [],
		runningAgents: input.runningAgents ?? [],
		clean: true,
		summary: '',
	};
	const wt = git.at(input.path);
	// A folder deleted by hand: git cannot even start there, so ask the file system first.
	const identity = fs.existsSync(input.path) ? await worktreeIdentity(git, wt, input.path) : { ours: false, foreign: null };
	report.foreign = identity.foreign;
	// Only a worktree of this repository is looked into: git in an empty folder inside another repository
	// would describe that repository.
	const exists = identity.ours;
	report.exists = exists || report.foreign !== null;
	let branch = input.branch;
	let branchRef = branch ? `refs/heads/${branch}` : null;
	if (exists && !input.commitsOnly) {
		// Read-only queries: run together.
		const [staged, { unstaged, conflicts }, untracked, ignored, headBranch, head, operation] = await Promise.all([
			wt.zlist(['diff', '--cached', '--name-only', '-z']),
			unstagedChanges(wt),
			wt.zlist(['ls-files', '--others', '--exclude-standard', '-z']),
			wt.zlist(['ls-files', '--others', '--ignored', '--exclude-standard', '--directory', '-z']),
			wt.run(['symbolic-ref', '--quiet', '--short', 'HEAD']).then((s) => s.trim() || null, () => null),
			wt.run(['rev-parse', '--verify', '--quiet', 'HEAD']).then((s) => s.trim() || null, () => null),
			operationInProgress(wt),
		]);
		// Files marked assume-unchanged or skip-worktree that changed on disk: `git diff` does not look at them,
		// but the save does (see worktreeTree's `exact`), and so must the report.
		// One listing of the index serves both: flags (`-v`) and modes and blobs (`-s`).
		const entries = parseIndexEntries(await wt.zlist(['ls-files', '-v', '-s', '-z']));
		const hiddenChanges = (await changedHiddenFiles(wt, entries)).filter((p) => !unstaged.includes(p));
		// Edits git's conversion undoes (a clean filter, line endings): `git diff` cannot see them, a save keeps them.
		const invisibleChanges = (await checkoutDrift(wt, visibleFiles(entries))).filter((p) => !unstaged.includes(p) && !hiddenChanges.includes(p));
		Object.assign(report, { staged, unstaged: [...unstaged, ...hiddenChanges], invisible: invisibleChanges, untracked, ignoredCount: ignored.filter((rel) => rel.endsWith('/') || !input.keptIgnored?.(rel)).length, conflicts: [...new Set(conflicts)], operation });
		report.innerRepositories = await innerRepositories(wt, untracked, entries);
		// Whatever HEAD the worktree has (another branch checked out, or detached) is what would be lost.
		branch = headBranch;
		report.branch = headBranch;
		branchRef = headBranch ? `refs/heads/${headBranch}` : head;
	}
	if (branchRef && (await git.ok(['rev-parse', '--verify', '--quiet', branchRef]))) {
		// An upstream deleted on the remote and pruned (a merged pull request's branch) is still configured:
		// then, as with none, what no remote has is what is unpushed.
		const [upstreamRef = '', upstreamName = ''] = branch ? (await git.run(['for-each-ref', '--format=%(upstream) %(upstream:short)', `refs/heads/${branch}`])).trim().split(' ') : [];
		const upstream = upstreamRef && (await git.ok(['rev-parse', '--verify', '--quiet', `${upstreamRef}^{commit}`])) ? upstreamRef : null;
		report.upstream = upstream ? upstreamName : null;
		report.unpushed = upstream ? await git.lines(['rev-list', `${upstream}..${branchRef}`]) : (await git.lines(['remote'])).length > 0 ? await git.lines(['rev-list', branchRef, '--not', '--remotes']) : [];
		const baseGone = input.baseRef !== null && !(await git.ok(['rev-parse', '--verify', '--quiet', input.baseRef]));
		if (baseGone) {
			// The base branch was deleted or renamed: what no other branch (or remote) has is what is unmerged.
			report.baseGone = true;
			report.unmerged = await git.lines(['rev-list', branchRef, '--not', ...(branch ? [`--exclude=${branch}`] : []), '--branches', '--remotes']);
		} else if (input.baseRef) {
			const ahead = await git.lines(['rev-list', `${input.baseRef}..${branchRef}`]);
			if (ahead.length > 0) {
				// `git cherry` marks commits whose patch the base already has with "-" (rebased, cherry-picked).
				const cherry = await git.lines(['cherry', input.baseRef, branchRef]);
				const notInBase = cherry.filter((l) => l.startsWith('+ ')).map((l) => l.slice(2));
				if (notInBase.length > 0 && (await mergesAsNoOp(git, input.baseRef, branchRef))) {
					report.unmerged = []; // squash-merged: merging the branch would change nothing
				} else {
					report.unmerged = notInBase;
				}
			}
		}
		if (branch) {
			const stashes = await git.lines(['stash', 'list', '--format=%gd %gs']).catch(() => []);
			report.stashes = stashes.filter((s) => s.includes(` on ${branch}:`) || s.includes(`On ${branch}:`));
		}
	}
	const parts: string[] = [];
	if (report.foreign) {
		parts.push(`everything in the folder, which ${report.foreign}`);
	}
	if (report.operation) {
		parts.push(describeOperation(report.operation));
	}
	if (report.conflicts.length) {
		parts.push(plural(report.conflicts.length, 'file') + ' with unresolved conflicts');
	}
	if (report.innerRepositories.length) {
		parts.push(`${report.innerRepositories.length === 1 ? 'a git repository' : `${report.innerRepositories.length} git repositories`} inside it that cannot be saved (${report.innerRepositories.join('; ')})`);
	}
	if (report.staged.length) {
		parts.push(plural(report.staged.length, 'staged change'));
	}
	if (report.unstaged.length) {
		parts.push(plural(report.unstaged.length, 'unstaged change'));
	}
	if (report.invisible.length) {
		parts.push(`${plural(report.invisible.length, 'file')} whose bytes differ from what git would check out (line endings, or what a filter strips; git status does not show ${report.invisible.length === 1 ? 'it' : 'them'})`);
	}
	if (report.untracked.length) {
		parts.push(plural(report.untracked.length, 'untracked file'));
	}
	if (report.unpushed.length) {
		parts.push(`${plural(report.unpushed.length, 'commit')} not pushed`);
	}
	if (report.unmerged.length) {
		parts.push(`${plural(report.unmerged.length, 'commit')} not merged into ${input.baseRef}${report.baseGone ? ' (which no longer exists) nor on any other branch' : ''}`);
	}
	if (report.stashes.length) {
		parts.push(plural(report.stashes.length, 'stash'));
	}
	if (report.runningAgents.length) {
		parts.push(`${plural(report.runningAgents.length, 'agent')} running`);
	}
	report.clean = !report.foreign && !report.operation && report.conflicts.length === 0 && report.innerRepositories.length === 0 && report.staged.length + report.unstaged.length + report.invisible.length + report.untracked.length + report.unpushed.length + report.unmerged.length + report.stashes.length + report.runningAgents.length === 0;
	report.summary = report.clean ? 'Nothing would be lost.' : `At risk: ${parts.join(', ')}.`;
	if (!report.exists && input.savedIn) {
		// Archived: the folder was removed by Agent Tabs after its work was saved.
		report.summary = `Archived: the work of its folder ${input.path} is saved in ${input.savedIn}, and Restore Session brings it back. ${report.summary}`;
	} else if (!report.exists) {
		report.summary = `Its folder ${input.path} is gone (deleted or moved outside Agent Tabs); only the branch and earlier saves are left. ${report.summary}`;
		const entry = parseWorktreeList(await git.run(['worktree', 'list', '--porcelain', '-z']).catch(() => '')).find((e) => samePath(e.path, input.path));
		if (entry?.locked) {
			report.lockedAway = entry.lockReason ?? '';
			report.clean = false;
			report.summary = describeLockedAway(input.path, entry.lockReason).replace(/ Nothing was changed\.$/, '');
		}
	}
	if (report.ignoredCount > 0) {
		report.summary += ` (${plural(report.ignoredCount, 'ignored path')} such as build output are not kept.)`;
	}
	return report;
}

/**
 * Whether `folder` is a worktree of `repo`'s repository (`ours`), and if it is not but holds files, why
 * (`foreign`). An empty or unreadable folder is neither: nothing in it to lose. `wt` runs git in the folder.
 */
export async function worktreeIdentity(repo: Git, wt: Git, folder: string): Promise<{ ours: boolean; foreign: string | null }> {
	// Resolved here rather than with --path-format=absolute, which git before 2.31 does not know.
	const absolute = async (g: Git, args: string[]): Promise<string | null> => g.run(['rev-parse', ...args]).then((s) => (s.trim() ? path.resolve(g.cwd, s.trim()) : null), () => null);
	const [top, common, own] = await Promise.all([absolute(wt, ['--show-toplevel']), absolute(wt, ['--git-common-dir']), absolute(repo, ['--git-common-dir'])]);
	if (top !== null && samePath(top, folder)) {
		return common !== null && own !== null && samePath(common, own)
			? { ours: true, foreign: null }
			: { ours: false, foreign: `is a git repository of its own (${common ?? 'its own .git'}), no longer a worktree of this one: its .git was replaced` };
	}
	let entries: string[];
	try {
		entries = fs.readdirSync(folder);
	} catch {
		return { ours: false, foreign: null }; // not a folder we can read: git says it is gone
	}
	if (entries.length === 0) {
		return { ours: false, foreign: null };
	}
	return {
		ours: false,
		foreign: top !== null ? `lies inside another git repository (${top}) and is no longer a worktree of this one: its .git file is missing` : 'is no longer a git worktree: its .git file is missing or broken',
	};
}

/** One index entry of `git ls-files -v -s -z`: `<tag> <mode> <blob> <stage>\t<path>`. */
interface IndexEntry {
	/** `H`, `S` (skip-worktree)…; lower case when assume-unchanged. */
	tag: string;
	mode: string;
	blob: string;
	path: string;
}

function parseIndexEntries(lines: readonly string[]): IndexEntry[] {
	return lines.map((line) => {
		const tab = line.indexOf('\t');
		const [tag = '', mode = '', blob = ''] = line.slice(0, tab).split(' ');
		return { tag, mode, blob, path: line.slice(tab + 1) };
	});
}

/** Regular files of the index git looks at (`H`: not flagged assume-unchanged or skip-worktree, not in conflict). */
function visibleFiles(entries: readonly IndexEntry[]): Map<string, FileEntry> {
	const files = new Map<string, FileEntry>();
	for (const e of entries) {
		if (e.tag === 'H' && (e.mode === '100644' || e.mode === '100755') && !e.path.includes('\n') && !e.path.includes('\uFFFD')) {
			files.set(e.path, { mode: e.mode, blob: e.blob });
		}
	}
	return files;
}

/**
 * Files in the checkout `wt` runs in that are marked assume-unchanged or skip-worktree and changed on disk:
 * `git status` and `git diff` do not show them, yet a merge that touches them overwrites them.
 */
export async function hiddenChanges(wt: Git): Promise<string[]> {
	return changedHiddenFiles(wt, parseIndexEntries(await wt.zlist(['ls-files', '-v', '-s', '-z'])));
}

/** Files git is told not to look at (assume-unchanged, skip-worktree but on disk) whose content changed. */
async function changedHiddenFiles(wt: Git, entries: readonly IndexEntry[]): Promise<string[]> {
	const changed: string[] = [];
	const onDisk: IndexEntry[] = [];
	for (const e of entries) {
		const assumeUnchanged = e.tag >= 'a' && e.tag <= 'z';
		const skipWorktree = e.tag === 'S' || e.tag === 's';
		if ((!assumeUnchanged && !skipWorktree) || e.path.includes('\n') || e.path.includes('\uFFFD')) {
			continue;
		}
		const present = fs.lstatSync(path.join(wt.cwd, e.path), { throwIfNoEntry: false }) !== undefined;
		if (present) {
			onDisk.push(e);
		} else if (assumeUnchanged) {
			changed.push(e.path); // deleted behind git's back; a sparse checkout's absent files are not changes
		}
	}
	if (onDisk.length > 0) {
		const hashes = (await wt.run(['hash-object', '--stdin-paths'], { input: stdinPaths(onDisk.map((e) => e.path)) })).split('\n');
		onDisk.forEach((e, i) => {
			if (hashes[i] !== e.blob) {
				changed.push(e.path);
			}
		});
	}
	return changed;
}

/**
 * Files changed in the worktree and not staged (as `git diff` shows them: not those whose bytes git's
 * conversion makes equal to the index), and those with unresolved conflicts. `git diff` writes the stat data
 * it refreshes back to the index, taking its lock that an agent's `git add` or the user's `git commit` there
 * may need at that moment: it reads a copy.
 */
async function unstagedChanges(wt: Git): Promise<{ unstaged: string[]; conflicts: string[] }> {
	const fields = await withIndexCopy(wt, (env) => wt.zlist(['diff', '--name-status', '--no-renames', '-z'], { env }));
	const unstaged: string[] = [];
	const conflicts: string[] = [];
	for (let i = 0; i + 1 < fields.length; i += 2) {
		unstaged.push(fields[i + 1]!);
		if (fields[i] === 'U') {
			conflicts.push(fields[i + 1]!);
		}
	}
	return { unstaged, conflicts };
}

/**
 * Repositories inside a worktree (`wt` runs in its folder) that a save cannot hold. `git add -A` records a
 * repository inside the worktree as a pointer to its HEAD commit, not its files; and a submodule's git folder
 * lives in the worktree's own admin folder, which goes with the worktree. So a repository created or cloned
 * into the worktree always counts (`untracked` lists it with a trailing slash), and a checked-out submodule
 * counts when it has changes or commits on none of its remotes (`git submodule update` brings back the rest).
 */
async function innerRepositories(wt: Git, untracked: readonly string[], entries: readonly IndexEntry[]): Promise<string[]> {
	const found = untracked.filter((p) => p.endsWith('/')).map((p) => `${p} (a separate git repository; its files and history are not part of this worktree)`);
	const submodules = entries.filter((e) => e.mode === '160000').map((e) => e.path);
	for (const sub of submodules) {
		const folder = path.join(wt.cwd, sub);
		if (!fs.existsSync(path.join(folder, '.git'))) {
			continue; // not checked out: nothing of it is in the worktree
		}
		const git = wt.at(folder);
		const [changes, onNoRemote] = await Promise.all([
			// New files count whatever status.showUntrackedFiles says in the user's git config: they go with the worktree too.
			git.zlist(['status', '--porcelain', '-z', '--untracked-files=normal']).catch(() => ['?']),
			git.lines(['rev-list', '-n', '1', 'HEAD', '--all', '--not', '--remotes']).catch(() => ['?']),
		]);
		const what = [...(changes.length > 0 ? ['uncommitted changes'] : []), ...(onNoRemote.length > 0 ? ['commits on none of its remotes'] : [])];
		if (what.length > 0) {
			found.push(`${sub} (a submodule with ${what.join(' and ')})`);
		}
	}
	found.push(...(await submodulesNotCheckedOut(wt, submodules)));
	return found;
}

/**
 * Submodules whose git folder (in the worktree's admin folder, `modules/<name>`) has commits on none of its
 * remotes though no checkout of it is in the worktree (`git submodule deinit` keeps the git folder): it goes
 * with the worktree, and the commits with it.
 */
async function submodulesNotCheckedOut(wt: Git, checkedOutPaths: readonly string[]): Promise<string[]> {
	const gitDir = gitDirOf(wt.cwd);
	if (gitDir === undefined) {
		return [];
	}
	const modules = path.join(gitDir, 'modules');
	// The git folders of checked-out submodules, whose `.git` file names them (already looked at, with their changes).
	const checkedOut = new Set(checkedOutPaths.flatMap((sub) => gitDirOf(path.join(wt.cwd, sub)) ?? []).map(realPathLoose));
	const found: string[] = [];
	const visit = async (folder: string, depth: number): Promise<void> => {
		const entries = fs.readdirSync(folder, { withFileTypes: true });
		if (entries.some((e) => e.name === 'HEAD' && e.isFile()) && entries.some((e) => e.name === 'objects' && e.isDirectory())) {
			if (!checkedOut.has(realPathLoose(folder))) {
				const onNoRemote = await wt.lines(['--git-dir', folder, 'rev-list', '-n', '1', '--all', '--not', '--remotes']).catch(() => ['?']);
				if (onNoRemote.length > 0) {
					found.push(`${path.relative(modules, folder)} (a submodule that is not checked out, whose git folder holds commits on none of its remotes)`);
				}
			}
			return;
		}
		// A submodule's name may have slashes: its git folder is deeper.
		for (const e of entries) {
			if (e.isDirectory() && depth < 16) {
				await visit(path.join(folder, e.name), depth + 1);
			}
		}
	};
	if (fs.existsSync(modules)) {
		await visit(modules, 0);
	}
	return found;
}

/** Whether merging `branch` into `base` would leave the base's tree unchanged (its work is already there). */
async function mergesAsNoOp(git: Git, base: string, branch: string): Promise<boolean> {
	try {
		const merged = (await git.run(['merge-tree', '--write-tree', base, branch])).split('\n')[0]!.trim();
		const baseTree = (await git.run(['rev-parse', `${base}^{tree}`])).trim();
		return merged === baseTree;
	} catch (e) {
		if (e instanceof GitError) {
			return false; // conflicts, or a git without merge-tree --write-tree: count the work as unmerged
		}
		throw e;
	}
}
