import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';
import { errorMessage } from '../common/log';
import { newId } from '../common/ids';
import { TranscriptRepo } from '../db/transcriptRepo';
import { checkoutDrift, rawBlobIds } from './conversion';
import type { Git } from './gitClient';
import { liveLeases } from './ownership';
import { gitDirOf } from './paths';
import { defaultCheckpointsPerChat, type WorktreeContext } from './worktreeContext';

/** The author and committer of every commit Agent Tabs writes (saves, checkpoints). */
export const identity = { GIT_AUTHOR_NAME: 'Agent Tabs', GIT_AUTHOR_EMAIL: 'agent-tabs@localhost', GIT_COMMITTER_NAME: 'Agent Tabs', GIT_COMMITTER_EMAIL: 'agent-tabs@localhost' };

/** Temporary index files are named `<prefix><pid>-…` so a later start can remove those of processes that died. */
const tempIndexPrefix = 'agent-tabs-index-';

/** Runs `fn` with `GIT_INDEX_FILE` pointing at a fresh temporary index, removed afterwards. */
export async function withTempIndex<T>(fn: (env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> {
	const file = path.join(os.tmpdir(), `${tempIndexPrefix}${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
	try {
		return await fn({ GIT_INDEX_FILE: file });
	} finally {
		fs.rmSync(file, { force: true });
		fs.rmSync(`${file}.lock`, { force: true });
	}
}

/** Removes temporary index files left by processes that no longer run (killed mid-save). Returns their names. */
export function removeStaleTempIndexes(dir = os.tmpdir()): string[] {
	const removed: string[] = [];
	let names: string[];
	try {
		names = fs.readdirSync(dir);
	} catch {
		return removed;
	}
	for (const name of names) {
		const pid = name.startsWith(tempIndexPrefix) ? Number(name.slice(tempIndexPrefix.length).split('-')[0]) : NaN;
		if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || processAlive(pid)) {
			continue;
		}
		fs.rmSync(path.join(dir, name), { force: true });
		removed.push(name);
	}
	return removed;
}

function processAlive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch (e) {
		return (e as NodeJS.ErrnoException).code === 'EPERM';
	}
}

/**
 * The tree of everything in the worktree's folder (tracked changes, untracked files; not ignored ones), through
 * a temporary index. `exact` (a save before removal) also takes what git's settings would hide: files marked
 * assume-unchanged or skip-worktree that are on disk (local config edits people hide that way; a sparse
 * checkout's absent files stay as they are), and executable bits under `core.fileMode=false` on a file
 * system that keeps them.
 */
export async function worktreeTree(git: Git, options: { exact?: boolean; keepIgnored?: (rel: string) => boolean } = {}): Promise<string> {
	return (await worktreeContents(git, options)).tree;
}

/**
 * `worktreeTree`, and the files it holds as their bytes on disk (`verbatim`, exact saves only): a restore
 * writes those as they are instead of through git's conversion (see keepRawBytes).
 */
export async function worktreeContents(git: Git, options: { exact?: boolean; keepIgnored?: (rel: string) => boolean; withIndex?: boolean } = {}): Promise<{ tree: string; verbatim: string[]; index?: string }> {
	return withTempIndex(async (env) => {
		// Seeded from the worktree's own index, whose cached file stats let `add -A` re-hash only files changed
		// since git last looked, instead of every file (as reading HEAD into an empty index would).
		const indexPath = worktreeIndexPath(git.cwd) ?? path.resolve(git.cwd, (await git.run(['rev-parse', '--git-path', 'index'])).trim());
		let index: string | undefined;
		// In a sparse checkout (which session worktrees inherit from the main checkout) `add` refuses any path
		// outside the cone without --sparse (git 2.35 and later): an untracked file an agent wrote there, or a
		// skip-worktree file an exact save takes. With it, the cone's absent files stay as they are in the index.
		// The setting is read (one more git per checkpoint) only where the worktree has sparse-checkout patterns.
		const sparse = fs.existsSync(path.join(path.dirname(indexPath), 'info', 'sparse-checkout'))
			? git.run(['config', '--bool', 'core.sparseCheckout']).then(
					(s) => s.trim() === 'true',
					() => false,
				)
			: Promise.resolve(false);
		if (!copyIndex(indexPath, env.GIT_INDEX_FILE!)) {
			await git.run(['read-tree', 'HEAD'], { env });
		} else if (options.withIndex) {
			// What is staged, from the copy (never the worktree's own index, whose lock a running git may hold);
			// an index with conflicts has no tree.
			index = (await git.run(['write-tree'], { env }).catch(() => '')).trim() || undefined;
		}
		let config: Record<string, string> | undefined;
		if (options.exact) {
			const { assumeUnchanged, skipWorktree } = await hidingFlags(git, env);
			await setIndexFlag(git, '--no-assume-unchanged', assumeUnchanged, env);
			await setIndexFlag(git, '--no-skip-worktree', skipWorktree, env);
			config = (await modeHandling(git)).config;
		}
		const sparseFlag = (await sparse) ? ['--sparse'] : [];
		await git.run(['add', '-A', ...sparseFlag, '--', '.'], { env, config });
		if (options.keepIgnored) {
			await addIgnoredFiles(git, env, options.keepIgnored, sparseFlag);
		}
		const verbatim = options.exact ? await keepRawBytes(git, env) : [];
		return { tree: (await git.run(['write-tree'], { env })).trim(), verbatim, ...(index ? { index } : {}) };
	});
}

/** The largest ignored file a save keeps (`keepIgnored`): those are hand-edited settings, not build output. */
const maxKeptIgnoredBytes = 1024 * 1024;

/**
 * Ignored files `keep` names (the `.env` files the setup step copies in: a worktree's own edits to them, such
 * as another port, would otherwise come back as the main checkout's copy) are added to the temporary index.
 * Ignored folders are listed as one entry and not looked into.
 */
async function addIgnoredFiles(git: Git, env: NodeJS.ProcessEnv, keep: (rel: string) => boolean, sparseFlag: readonly string[]): Promise<void> {
	const ignored = await git.zlist(['ls-files', '--others', '--ignored', '--exclude-standard', '--directory', '-z'], { env });
	const kept = ignored.filter((rel) => {
		if (rel.endsWith('/') || rel.includes('\uFFFD') || !keep(rel)) {
			return false;
		}
		const stat = fs.lstatSync(path.join(git.cwd, rel), { throwIfNoEntry: false });
		return stat?.isFile() === true && stat.size <= maxKeptIgnoredBytes;
	});
	if (kept.length > 0) {
		await git.run(['add', '--force', ...sparseFlag, '--', ...kept.map((rel) => `:(literal)${rel}`)], { env });
	}
}

/** Regular files (not symlinks, not submodules) among index entries `<mode> <blob> <stage>\t<path>`. */
export function regularFiles(entries: readonly string[]): Map<string, { mode: string; blob: string }> {
	const files = new Map<string, { mode: string; blob: string }>();
	for (const entry of entries) {
		const tab = entry.indexOf('\t');
		const [mode = '', blob = ''] = entry.slice(0, tab).split(' ');
		const name = entry.slice(tab + 1);
		// Names that are not UTF-8 (decoded with U+FFFD) or hold a line break cannot be named to hash-object.
		if ((mode === '100644' || mode === '100755') && !name.includes('\n') && !name.includes('\uFFFD')) {
			files.set(name, { mode, blob });
		}
	}
	return files;
}

/** The regular files of a tree, as `regularFiles` gives them. */
export async function treeFiles(git: Git, tree: string): Promise<Map<string, { mode: string; blob: string }>> {
	return regularFiles(await git.zlist(['ls-tree', '-r', '-z', tree]).then((lines) => lines.map((l) => l.replace(/^(\d+) blob ([0-9a-f]+)\t/, '$1 $2 0\t'))));
}

/**
 * Files git would store converted (line endings under `text`/`eol`/`core.autocrlf`, a clean filter) whose
 * bytes a checkout would not write back are stored as their bytes on disk instead, so a restore gives back
 * what was there, not what git would have committed: changed files whose bytes are not their blob, and
 * files whose edit the conversion undoes (cleaned, they equal HEAD; see checkoutDrift). Returns their names.
 */
async function keepRawBytes(git: Git, env: NodeJS.ProcessEnv): Promise<string[]> {
	const files = regularFiles(await git.zlist(['ls-files', '--stage', '-z'], { env }));
	const changed = new Set(await git.zlist(['diff-index', '--cached', '--name-only', '--diff-filter=AMT', '-z', 'HEAD'], { env }));
	const changedFiles = [...files.keys()].filter((name) => changed.has(name));
	const raw = await rawBlobIds(git, changedFiles);
	const kept = new Set([...changedFiles.filter((name, i) => raw[i] !== files.get(name)!.blob), ...(await checkoutDrift(git, files, env))]);
	if (kept.size === 0) {
		return [];
	}
	const names = [...kept].sort();
	const ids = await rawBlobIds(git, names, true);
	const info = names.map((name, i) => `${files.get(name)!.mode} ${ids[i]}\t${name}\0`).join('');
	await git.run(['update-index', '-z', '--index-info'], { env, input: info });
	return names;
}

/**
 * Of the files `diff-files` reports as differing from a tree (`inTree`: its regular files), those whose
 * bytes on disk are exactly the tree's blob (stored raw by `keepRawBytes`, which `diff-files` compares only after conversion), and whose
 * executable bit matches when modes count, are not differences.
 */
export async function rawDifferences(git: Git, inTree: ReadonlyMap<string, { mode: string; blob: string }>, reported: readonly string[], compareModes: boolean): Promise<string[]> {
	if (reported.length === 0) {
		return [];
	}
	const candidates = reported.filter((name) => inTree.has(name) && fs.lstatSync(path.join(git.cwd, name), { throwIfNoEntry: false })?.isFile());
	const raw = await rawBlobIds(git, candidates);
	const same = new Set(
		candidates.filter((name, i) => {
			const entry = inTree.get(name)!;
			const executable = (fs.lstatSync(path.join(git.cwd, name)).mode & 0o100) !== 0;
			return raw[i] === entry.blob && (!compareModes || executable === (entry.mode === '100755'));
		}),
	);
	return reported.filter((name) => !same.has(name));
}

/**
 * Index entries whose disk content git does not look at: assume-unchanged (`ls-files -v` tags them in lower
 * case) and skip-worktree (`S`), and whether each is on disk. Names as raw bytes (they need not be UTF-8).
 */
export async function hiddenFiles(git: Git, env?: NodeJS.ProcessEnv): Promise<{ path: Buffer; present: boolean; skipWorktree: boolean; assumeUnchanged: boolean }[]> {
	const entries = await git.zlistBytes(['ls-files', '-v', '-z'], { env });
	const hidden: { path: Buffer; present: boolean; skipWorktree: boolean; assumeUnchanged: boolean }[] = [];
	for (const entry of entries) {
		const tag = String.fromCharCode(entry[0]!);
		if (tag === 'S' || tag === 's' || (tag >= 'a' && tag <= 'z')) {
			const name = entry.subarray(2);
			hidden.push({ path: Buffer.from(name), present: fs.lstatSync(Buffer.concat([Buffer.from(git.cwd + path.sep), name]), { throwIfNoEntry: false }) !== undefined, skipWorktree: tag === 'S' || tag === 's', assumeUnchanged: tag >= 'a' && tag <= 'z' });
		}
	}
	return hidden;
}

/**
 * The index entries whose flags hide a change from git: every assume-unchanged file (a deletion counts too),
 * and skip-worktree files that are on disk (a sparse checkout's absent files are not hiding anything).
 */
export async function hidingFlags(git: Git, env?: NodeJS.ProcessEnv): Promise<{ assumeUnchanged: Buffer[]; skipWorktree: Buffer[] }> {
	const hidden = await hiddenFiles(git, env);
	return { assumeUnchanged: hidden.filter((h) => h.assumeUnchanged).map((h) => h.path), skipWorktree: hidden.filter((h) => h.skipWorktree && h.present).map((h) => h.path) };
}

/** Sets or clears one index flag on `paths` (one flag per call: given two, update-index changes only the first). */
export async function setIndexFlag(git: Git, flag: '--assume-unchanged' | '--no-assume-unchanged' | '--skip-worktree' | '--no-skip-worktree', paths: readonly Buffer[], env?: NodeJS.ProcessEnv): Promise<void> {
	if (paths.length > 0) {
		await git.runBytes(['update-index', flag, '-z', '--stdin'], { env, input: Buffer.concat(paths.flatMap((p) => [p, Buffer.from([0])])) });
	}
}

/**
 * How executable bits are read for an exact save: `compareModes` when they count at all, and the `config`
 * that makes git see them where `core.fileMode=false` hides bits this file system keeps (people set it to
 * silence mode changes; git also sets it where the file system cannot keep them, and then they do not count).
 */
export async function modeHandling(git: Git): Promise<{ compareModes: boolean; config?: Record<string, string> }> {
	const setting = (await git.run(['config', '--bool', 'core.fileMode']).catch(() => '')).trim();
	if (setting !== 'false') {
		return { compareModes: true };
	}
	return (await fileSystemKeepsModes(git)) ? { compareModes: true, config: { 'core.fileMode': 'true' } } : { compareModes: false };
}

/** Probed the way `git init` does: a file in the worktree's git folder, made executable and back. */
async function fileSystemKeepsModes(git: Git): Promise<boolean> {
	const probe = path.join(path.resolve(git.cwd, (await git.run(['rev-parse', '--git-dir'])).trim()), `agent-tabs-mode-probe-${process.pid}`);
	try {
		fs.writeFileSync(probe, '', { mode: 0o644 });
		fs.chmodSync(probe, 0o755);
		const executable = (fs.statSync(probe).mode & 0o100) !== 0;
		fs.chmodSync(probe, 0o644);
		return executable && (fs.statSync(probe).mode & 0o100) === 0;
	} catch {
		return false;
	} finally {
		fs.rmSync(probe, { force: true });
	}
}

/**
 * The tree of the worktree's index (what is staged), written from a copy of the index: `git write-tree`
 * on the index itself would lock it, and a process killed at that moment would leave `index.lock` behind,
 * blocking every git command in the worktree.
 */
export async function indexTree(git: Git): Promise<string> {
	const index = path.resolve(git.cwd, (await git.run(['rev-parse', '--git-path', 'index'])).trim());
	return withTempIndex(async (env) => {
		if (fs.existsSync(index)) {
			fs.copyFileSync(index, env.GIT_INDEX_FILE!);
		}
		return (await git.run(['write-tree'], { env })).trim();
	});
}

/** Where per-turn checkpoints live; `refs/agent-tabs/saved/*` (saved work) is elsewhere and never pruned. */
export const checkpointRefPrefix = 'refs/agent-tabs/checkpoints/';
/** Throwaway refs of a comparison with a checkpoint (`changesSinceCheckpoint`). */
const previewRefPrefix = 'refs/agent-tabs/preview/';

/**
 * Records the whole state of a worktree (tracked changes, untracked files, binary files, modes; not
 * ignored files) as a commit on top of HEAD, through a temporary index (`worktreeTree`) so the worktree's
 * own index and HEAD are untouched, and points `ref` at it. Returns the commit and whether anything
 * differed from HEAD.
 */
export async function snapshotCommit(git: Git, ref: string, message: string): Promise<{ commit: string; tree: string; head: string; dirty: boolean }> {
	// HEAD is read while `add` works: two processes at once instead of one after the other.
	const [revs, { tree, index }] = await Promise.all([
		git.run(['rev-parse', 'HEAD', 'HEAD^{tree}']).catch(async (e: unknown) => {
			await headCommit(git, 'checkpoint');
			throw e;
		}),
		worktreeContents(git, { withIndex: true }),
	]);
	const [head, headTree] = revs.trim().split('\n');
	if (!head || !headTree) {
		throw new AgentTabsError('checkpoint/failed', `git rev-parse gave no HEAD in ${git.cwd}.`);
	}
	// What was staged, as `git stash` keeps it: a second parent whose tree is the index, so a rewind puts back
	// the staging too, not only the files. None when the index has conflicts (it has no tree then).
	const indexParent = index ? ['-p', (await git.run(['commit-tree', index, '-p', head], { env: identity, input: `agent-tabs: index of ${git.cwd}\n` })).trim()] : [];
	const commit = (await git.run(['commit-tree', tree, '-p', head, ...indexParent], { env: identity, input: message })).trim();
	await git.run(['update-ref', ref, commit]);
	return { commit, tree, head, dirty: tree !== headTree };
}

/**
 * The commit HEAD is at. A branch with no commits yet (an agent's `git checkout --orphan`) has none, and
 * checkpoints and saves are commits on top of HEAD: that is said in plain words, not as git's "ambiguous
 * argument 'HEAD'".
 */
export async function headCommit(git: Git, what: 'checkpoint' | 'save'): Promise<string> {
	const head = (await git.run(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']).catch(() => '')).trim();
	if (head) {
		return head;
	}
	const branch = (await git.run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim();
	if (!branch) {
		return (await git.run(['rev-parse', 'HEAD'])).trim(); // not that: git's own words
	}
	const done = what === 'save' ? 'Nothing was saved' : 'No checkpoint was taken, so this turn cannot be rewound';
	throw new AgentTabsError(
		'worktree/unbornHead',
		`${git.cwd} is on ${branch}, a branch with no commits yet (made with git checkout --orphan or git switch --orphan), and a ${what} is built on a commit. Make a first commit on ${branch}, or switch back to a branch that has one, then try again. ${done}; the folder is untouched.`,
	);
}

/**
 * The index file of the worktree whose top folder is `cwd`, found without running git: `.git/index` in a main
 * checkout, `<gitdir>/index` in a linked worktree (its `.git` file names the gitdir). Undefined otherwise
 * (a subfolder, an unusual layout): the caller asks git.
 */
function worktreeIndexPath(cwd: string): string | undefined {
	const gitDir = gitDirOf(cwd);
	return gitDir ? path.join(gitDir, 'index') : undefined;
}

/**
 * Runs `fn` with `GIT_INDEX_FILE` naming a temporary copy of the worktree's index (or its own, when it has
 * none to copy): a read such as `git diff`, which writes the stat data it refreshes back to the index it read,
 * writes the copy and never takes the worktree's index lock, which an agent's or the user's git may need.
 */
export async function withIndexCopy<T>(git: Git, fn: (env: NodeJS.ProcessEnv) => Promise<T>): Promise<T> {
	const indexPath = worktreeIndexPath(git.cwd) ?? path.resolve(git.cwd, (await git.run(['rev-parse', '--git-path', 'index'])).trim());
	return withTempIndex((env) => fn(copyIndex(indexPath, env.GIT_INDEX_FILE!) ? env : {}));
}

/** Copies the worktree's index to seed a temporary one; false when there is none (a fresh worktree). */
function copyIndex(from: string, to: string): boolean {
	try {
		fs.copyFileSync(from, to);
		return true;
	} catch {
		return false;
	}
}

/**
 * Deletes checkpoint refs (one `git update-ref --stdin` for all of them). Only refs under
 * `refs/agent-tabs/checkpoints/` (and comparison refs under `preview/`) are accepted: saved work is never pruned.
 */
export async function deleteCheckpointRefs(git: Git, refs: readonly string[]): Promise<void> {
	const doomed = refs.filter((r) => (r.startsWith(checkpointRefPrefix) || r.startsWith(previewRefPrefix)) && !r.includes('..'));
	if (doomed.length === 0) {
		return;
	}
	await git.run(['update-ref', '--stdin'], { input: doomed.map((r) => `delete ${r}\n`).join('') });
}

async function requireCheckpoint(git: Git, checkpointRef: string): Promise<void> {
	if (!(await git.ok(['rev-parse', '--verify', '--quiet', `${checkpointRef}^{commit}`]))) {
		throw new AgentTabsError('checkpoint/missing', `The checkpoint ${checkpointRef} does not exist.`);
	}
}

/**
 * Puts the worktree's files back to the state recorded in `checkpointRef`. What is there now is recorded
 * first under `<checkpointRef>-replaced-<time>` (so the rewind itself loses nothing), then the difference is
 * applied as a patch: changed files revert, files added since are removed, deleted ones return. HEAD and
 * the branch are not moved.
 */
export async function restoreCheckpoint(git: Git, checkpointRef: string): Promise<{ replacedRef: string; files: string[]; stagingNotRestored?: string }> {
	await requireCheckpoint(git, checkpointRef);
	const replacedRef = `${checkpointRef}-replaced-${Date.now()}`;
	const now = await snapshotCommit(git, replacedRef, 'agent-tabs: worktree state replaced by a checkpoint restore');
	// Both names of a renamed file: with rename detection (git's default, diff.renames) only the new one is listed,
	// and the other would keep its staging.
	const files = await git.zlist(['diff', '--name-only', '--no-renames', '-z', now.commit, checkpointRef]);
	let stagingNotRestored: string | undefined;
	if (files.length > 0) {
		// Bytes, not a string: a patch of a non-UTF-8 file would not survive decoding and apply no more.
		// The user's diff settings (external tools, colour, textconv, noprefix, renames, diff.context: apply refuses
		// a patch without context; diff.submodule=diff: the submodule's own files, which apply then wrote into
		// its checkout) must not shape a patch for apply.
		const patch = await git.runBytes(['diff', '--binary', '--full-index', '--unified=3', '--submodule=short', '--no-ext-diff', '--no-color', '--no-textconv', '--no-renames', '--src-prefix=a/', '--dst-prefix=b/', now.commit, checkpointRef]);
		// The worktree equals `now` (just recorded), so the patch applies exactly.
		await git.runBytes(['apply', '--whitespace=nowarn', '--binary', '-'], { input: patch });
		// The files are back; staging that cannot be put back (a git holding the index lock) is not a failed rewind.
		await restoreStaging(git, checkpointRef, files).catch((e: unknown) => {
			stagingNotRestored = e instanceof Error ? e.message : String(e);
		});
	}
	return { replacedRef, files, ...(stagingNotRestored ? { stagingNotRestored } : {}) };
}

/**
 * The index entries of the files a rewind put back, as they were when the checkpoint was taken: what was
 * staged then comes back staged, and the rest is unstaged (an agent's `git add` during the turn would
 * otherwise stay staged, and the next commit would bring back what the rewind removed).
 */
async function restoreStaging(git: Git, checkpointRef: string, files: readonly string[]): Promise<void> {
	// Names are names, not patterns (a file called `*.ts`); `reset` with paths only sets index entries.
	const literal = { GIT_LITERAL_PATHSPECS: '1' };
	const pathspecs = (names: readonly string[]): string => names.map((name) => `${name}\0`).join('');
	const [head = '', index] = (await git.run(['log', '-1', '--format=%P', checkpointRef])).trim().split(' ');
	if (!index) {
		return; // not recorded (the index had conflicts then, or the checkpoint is older): left as it is
	}
	const stagedThen = new Set(await git.zlist(['diff-tree', '-r', '-z', '--name-only', '--no-renames', head, index]));
	// A conflict being resolved now keeps its stages: a reset would take them away.
	const unmerged = new Set(await git.zlist(['diff', '--name-only', '--diff-filter=U', '-z']));
	const unstage = files.filter((name) => !stagedThen.has(name) && !unmerged.has(name));
	const restage = files.filter((name) => stagedThen.has(name) && !unmerged.has(name));
	if (unstage.length > 0) {
		await git.run(['reset', '-q', '--pathspec-from-file=-', '--pathspec-file-nul'], { env: literal, input: pathspecs(unstage) });
	}
	if (restage.length > 0) {
		await git.run(['reset', '-q', index, '--pathspec-from-file=-', '--pathspec-file-nul'], { env: literal, input: pathspecs(restage) });
	}
}

/**
 * The files that differ between a checkpoint and the worktree as it is now (its files, as a checkpoint would
 * record them): what changed since. The worktree is not touched; a throwaway ref holds the comparison.
 */
export async function changesSinceCheckpoint(git: Git, checkpointRef: string): Promise<{ path: string; kind: 'add' | 'modify' | 'delete' }[]> {
	await requireCheckpoint(git, checkpointRef);
	const probe = `${previewRefPrefix}${newId('p')}`;
	try {
		const now = await snapshotCommit(git, probe, 'agent-tabs: changes since a checkpoint');
		const fields = await git.zlist(['diff', '--name-status', '--no-renames', '-z', checkpointRef, now.commit]);
		const changes: { path: string; kind: 'add' | 'modify' | 'delete' }[] = [];
		for (let i = 0; i + 1 < fields.length; i += 2) {
			const status = fields[i]!;
			changes.push({ path: fields[i + 1]!, kind: status === 'A' ? 'add' : status === 'D' ? 'delete' : 'modify' });
		}
		return changes;
	} finally {
		await git.run(['update-ref', '-d', probe]).catch(() => undefined);
	}
}

/**
 * A chat's per-turn checkpoints in a worktree: taken before each turn, pruned to the last
 * `checkpointsPerChat` turns (never those with a pending change), and rewound to.
 */
export class TurnCheckpoints {
	constructor(private readonly ctx: WorktreeContext) {}

	/** Records the worktree's state before a turn; the ref lets the chat rewind to it later. */
	async checkpoint(cwd: string, name: string): Promise<string> {
		const ref = `${checkpointRefPrefix}${name}`;
		await snapshotCommit(this.ctx.git(cwd), ref, `agent-tabs: checkpoint ${name}`);
		await this.pruneCheckpoints(cwd, name.split('/')[0]!);
		return ref;
	}

	/**
	 * Deletes a chat's checkpoints beyond its last `checkpointsPerChat` turns, except those of turns with a
	 * pending change; the turns forget them, so rewind is not offered for them. Never fails the turn.
	 */
	async pruneCheckpoints(cwd: string, chatId: string): Promise<string[]> {
		const transcript = new TranscriptRepo(this.ctx.store);
		const refs = transcript.prunableCheckpoints(chatId, this.ctx.options.checkpointsPerChat ?? defaultCheckpointsPerChat);
		if (refs.length === 0) {
			return [];
		}
		try {
			transcript.forgetCheckpoints(refs);
			await deleteCheckpointRefs(this.ctx.git(cwd), refs);
			return refs;
		} catch (e) {
			this.ctx.logger.warn(`[WorktreeService][pruneCheckpoints] ${chatId}: ${errorMessage(e)}`);
			return [];
		}
	}

	/** Deletes a checkpoint no turn records (its turn never started), so no ref is left that nothing prunes. */
	async drop(cwd: string, ref: string): Promise<void> {
		await deleteCheckpointRefs(this.ctx.git(cwd), [ref]);
	}

	/**
	 * At a start, before any turn runs: deletes the checkpoints of this store's chats that no turn records (a
	 * process killed between taking a turn's checkpoint and recording it) and comparison refs (`preview/`) more
	 * than an hour old. Only this store's chats: another state folder (another window, the command line with
	 * `--state`) may use the same repository. What a rewind replaced (`-replaced-`) is the user's and stays.
	 */
	async sweepUnrecorded(): Promise<string[]> {
		const transcript = new TranscriptRepo(this.ctx.store);
		const recorded = transcript.recordedCheckpoints();
		const chats = new Set(this.ctx.sessions.listAllChats().map((c) => c.id));
		const repos = new Set(this.ctx.worktrees.list().map((w) => w.repo_root).filter((r) => fs.existsSync(r)));
		const swept: string[] = [];
		const hourAgo = Date.now() / 1000 - 3600;
		for (const repo of repos) {
			try {
				const git = this.ctx.git(repo);
				const doomed: string[] = [];
				for (const ref of await git.lines(['for-each-ref', '--format=%(refname)', checkpointRefPrefix])) {
					const chatId = ref.slice(checkpointRefPrefix.length).split('/')[0]!;
					if (!recorded.has(ref) && !ref.includes('-replaced-') && chats.has(chatId)) {
						doomed.push(ref);
					}
				}
				for (const line of await git.lines(['for-each-ref', '--format=%(refname) %(committerdate:unix)', previewRefPrefix])) {
					const [ref = '', time = ''] = line.split(' ');
					if (Number(time) < hourAgo) {
						doomed.push(ref);
					}
				}
				if (doomed.length > 0) {
					await deleteCheckpointRefs(git, doomed);
					swept.push(...doomed);
					this.ctx.logger.info(`[WorktreeService][sweep] ${repo}: ${doomed.length} checkpoint(s) no turn records removed`);
				}
			} catch (e) {
				this.ctx.logger.warn(`[WorktreeService][sweep] ${repo}: ${errorMessage(e)}`);
			}
		}
		return swept;
	}

	/** What changed in the worktree since a checkpoint (see `changesSinceCheckpoint`). */
	changesSince(cwd: string, checkpointRef: string): Promise<{ path: string; kind: 'add' | 'modify' | 'delete' }[]> {
		return changesSinceCheckpoint(this.ctx.git(cwd), checkpointRef);
	}

	/**
	 * Puts the worktree back to a checkpoint; what it replaces is recorded first, so nothing is lost. Refused
	 * while an agent turn runs there (its lease, in any process): the folder would change under the agent,
	 * and its turn would record the rewind as its own edits.
	 */
	async rewind(cwd: string, checkpointRef: string): Promise<{ replacedRef: string; files: string[] }> {
		const working = liveLeases(cwd);
		if (working.length > 0) {
			throw new AgentTabsError('worktree/busy', `An agent is working in ${cwd} (${working.map((l) => `${l.what}, ${l.owner}`).join('; ')}). Wait for its turn to end or cancel it, then rewind.`);
		}
		const r = await restoreCheckpoint(this.ctx.git(cwd), checkpointRef);
		if (r.stagingNotRestored) {
			this.ctx.logger.warn(`[Worktrees][rewind] ${cwd}: the files are back, their staging is not: ${r.stagingNotRestored}`);
		}
		return r;
	}
}
