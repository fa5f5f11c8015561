import { AgentTabsError } from '../common/errors';
import { type Git, GitError } from './gitClient';

/**
 * Where the work a removal saved lives: one immutable ref per save, `refs/agent-tabs/saved/<worktreeId>/<n>`
 * with n counting up from 1. A ref is created only where none exists and never moved or deleted, so a later
 * save (even a failed or empty one) cannot make an earlier one unreachable; custom refs keep no reflog, so
 * the refs themselves are what keeps the commits from `git gc`.
 *
 * Saves from before this layout used one ref per worktree, `refs/agent-tabs/saved/<worktreeId>`, moved on
 * every save. Git cannot hold that ref and `…/<worktreeId>/1` at once (a ref cannot also be a folder), so the
 * first new save moves it: first to `refs/agent-tabs/saved-legacy/<worktreeId>` (kept for good), then to
 * `…/<worktreeId>/1`. The readers below accept all three places.
 */
export const savedRefRoot = 'refs/agent-tabs/saved';
const legacyHolderRoot = 'refs/agent-tabs/saved-legacy';

/** The save number `n` of a worktree. */
export function savedRef(worktreeId: string, n: number): string {
	return `${savedRefRoot}/${worktreeId}/${n}`;
}

/** The single, moving ref of saves made before one ref per save. */
export function legacySavedRef(worktreeId: string): string {
	return `${savedRefRoot}/${worktreeId}`;
}

function legacyHolderRef(worktreeId: string): string {
	return `${legacyHolderRoot}/${worktreeId}`;
}

export interface SaveEntry {
	ref: string;
	/** 1, 2, …; 0 for a save in the old single-ref layout. */
	n: number;
	commit: string;
}

async function resolve(git: Git, ref: string): Promise<string | null> {
	const out = await git.run(['rev-parse', '--verify', '--quiet', `${ref}^{commit}`]).catch((e: unknown) => {
		if (e instanceof GitError) {
			return '';
		}
		throw e;
	});
	return out.trim() || null;
}

/** Every save of a worktree, oldest first. `git` may run in the repository or any of its worktrees. */
export async function listSaves(git: Git, worktreeId: string): Promise<SaveEntry[]> {
	const prefix = `${savedRefRoot}/${worktreeId}/`;
	const numbered = (await git.lines(['for-each-ref', '--format=%(refname) %(objectname)', prefix]))
		.map((line) => {
			const [ref, commit] = line.split(' ') as [string, string];
			return { ref, commit, n: Number(ref.slice(prefix.length)) };
		})
		.filter((e) => Number.isInteger(e.n) && e.n > 0)
		.sort((a, b) => a.n - b.n);
	if (numbered.length > 0) {
		return numbered;
	}
	for (const ref of [legacySavedRef(worktreeId), legacyHolderRef(worktreeId)]) {
		const commit = await resolve(git, ref);
		if (commit) {
			return [{ ref, n: 0, commit }];
		}
	}
	return [];
}

/** The newest save of a worktree, or null when it has none. */
export async function latestSave(git: Git, worktreeId: string): Promise<SaveEntry | null> {
	return (await listSaves(git, worktreeId)).at(-1) ?? null;
}

/** Ids of every worktree with at least one save in this repository (any layout). */
export async function worktreesWithSaves(git: Git): Promise<string[]> {
	const ids = new Set<string>();
	for (const ref of await git.lines(['for-each-ref', '--format=%(refname)', `${savedRefRoot}/`, `${legacyHolderRoot}/`])) {
		const rest = ref.startsWith(`${savedRefRoot}/`) ? ref.slice(savedRefRoot.length + 1) : ref.slice(legacyHolderRoot.length + 1);
		ids.add(rest.split('/')[0]!);
	}
	return [...ids].sort();
}

/**
 * The commit a recorded saved ref points to. A row may still name the old single ref after the first new
 * save moved it aside; that ref is then found where it was moved.
 */
export async function resolveSavedRef(git: Git, worktreeId: string, ref: string): Promise<SaveEntry | null> {
	const commit = await resolve(git, ref);
	if (commit) {
		const n = ref.startsWith(`${savedRefRoot}/${worktreeId}/`) ? Number(ref.slice(savedRefRoot.length + worktreeId.length + 2)) : 0;
		return { ref, n, commit };
	}
	if (ref === legacySavedRef(worktreeId)) {
		const moved = (await listSaves(git, worktreeId))[0];
		return moved ?? null;
	}
	return null;
}

/** Moves an old single-ref save out of the way of numbered refs, keeping it reachable at every step. */
async function moveLegacyAside(git: Git, worktreeId: string): Promise<void> {
	const legacy = legacySavedRef(worktreeId);
	const legacyCommit = await resolve(git, legacy);
	if (legacyCommit) {
		await git.run(['update-ref', legacyHolderRef(worktreeId), legacyCommit]);
		await git.run(['update-ref', '-d', legacy, legacyCommit]);
	}
	const held = await resolve(git, legacyHolderRef(worktreeId));
	if (held && (await git.lines(['for-each-ref', '--count=1', '--format=%(refname)', `${savedRefRoot}/${worktreeId}/`])).length === 0) {
		await git.run(['update-ref', savedRef(worktreeId, 1), held, '']);
	}
}

/**
 * Points a new ref, numbered after every existing save of the worktree, at `commit`. Only ever creates a ref
 * (git refuses if it exists), so a save made at the same moment elsewhere takes the next number.
 */
export async function addSave(git: Git, worktreeId: string, commit: string): Promise<SaveEntry> {
	await moveLegacyAside(git, worktreeId);
	let n = ((await listSaves(git, worktreeId)).filter((e) => e.n > 0).at(-1)?.n ?? 0) + 1;
	for (let attempt = 0; attempt < 20; attempt++, n++) {
		const ref = savedRef(worktreeId, n);
		try {
			await git.run(['update-ref', ref, commit, '']);
			return { ref, n, commit };
		} catch (e) {
			if (!(e instanceof GitError) || !/exists/.test(e.stderr)) {
				throw e;
			}
		}
	}
	throw new AgentTabsError('worktree/saveRef', `Could not find a free saved-work ref for worktree ${worktreeId}.`);
}

/** What one save holds, read back from its commit. */
export interface SaveContents {
	commit: string;
	/** The commit HEAD was on. */
	head: string;
	/** The branch HEAD was on; null for a detached HEAD; undefined when the save (old layout) did not record it. */
	branch: string | null | undefined;
	/** The tree of the index (staged state). Old-layout saves did not record it: HEAD's tree. */
	indexTree: string;
	/** The tree of the working folder: tracked and untracked files, not ignored ones. */
	worktreeTree: string;
	title: string | undefined;
	/** True for a save in the old layout (working tree only). */
	legacy: boolean;
	/** Index entries that were marked assume-unchanged, and (present) skip-worktree, when saved. */
	assumeUnchanged: Buffer[];
	skipWorktree: Buffer[];
	/** Files the working tree holds as their bytes on disk, written back as they are (not through git's conversion). */
	verbatim: Buffer[];
}

/** Trailer lines of a save commit's message. */
export const saveTrailers = {
	title: 'Session-Title',
	branch: 'Agent-Tabs-Branch',
	format: 'Agent-Tabs-Save',
	/** Index entries marked assume-unchanged, and present ones marked skip-worktree: NUL-separated paths, base64. */
	assumeUnchanged: 'Agent-Tabs-Assume-Unchanged',
	skipWorktree: 'Agent-Tabs-Skip-Worktree',
	/** Files stored as their bytes on disk, which git's conversion would change on checkout: paths as above. */
	verbatim: 'Agent-Tabs-Verbatim',
} as const;

/** A trailer value for a list of paths (any bytes): NUL-separated, base64. */
export function pathsTrailer(paths: Buffer[]): string {
	return Buffer.concat(paths.flatMap((p) => [p, Buffer.from([0])])).toString('base64');
}

function pathsFromTrailer(value: string | undefined): Buffer[] {
	if (!value) {
		return [];
	}
	const bytes = Buffer.from(value.trim(), 'base64');
	const paths: Buffer[] = [];
	let start = 0;
	for (let i = bytes.indexOf(0); i !== -1; i = bytes.indexOf(0, start)) {
		paths.push(bytes.subarray(start, i));
		start = i + 1;
	}
	return paths;
}

function trailer(message: string, key: string): string | undefined {
	return new RegExp(`^${key}: ?(.*)$`, 'm').exec(message)?.[1];
}

/** Reads a save commit: HEAD, branch, index and working tree (see WorktreeService.save for the layout). */
export async function readSave(git: Git, commit: string): Promise<SaveContents> {
	const [header, ...body] = (await git.run(['log', '-1', '--format=%H %T %P%n%B', commit])).split('\n');
	const [hash, tree, head, indexParent] = header!.trim().split(' ') as [string, string, string, string | undefined];
	const message = body.join('\n');
	const legacy = trailer(message, saveTrailers.format) === undefined || !indexParent;
	const branchValue = trailer(message, saveTrailers.branch);
	const indexTree = legacy ? (await git.run(['rev-parse', `${head}^{tree}`])).trim() : (await git.run(['rev-parse', `${indexParent}^{tree}`])).trim();
	return {
		commit: hash,
		head,
		branch: legacy ? undefined : branchValue ? branchValue : null,
		indexTree,
		worktreeTree: tree,
		title: trailer(message, saveTrailers.title),
		legacy,
		assumeUnchanged: pathsFromTrailer(trailer(message, saveTrailers.assumeUnchanged)),
		skipWorktree: pathsFromTrailer(trailer(message, saveTrailers.skipWorktree)),
		verbatim: pathsFromTrailer(trailer(message, saveTrailers.verbatim)),
	};
}
