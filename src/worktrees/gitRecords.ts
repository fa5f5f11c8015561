import type { Git } from './gitClient';

/**
 * Reading what git itself remembers about Agent Tabs' worktrees, independent of the database: the private
 * refs under `refs/agent-tabs/`. Both layouts of saved work are understood: the older single, moving ref
 * `refs/agent-tabs/saved/<worktreeId>` and the immutable `refs/agent-tabs/saved/<worktreeId>/<n>` (n
 * increasing, one per save). `refs/agent-tabs/heads/<worktreeId>` is the branch head kept at each removal.
 */

/** Everything `refs/agent-tabs/` holds for one worktree id. */
export interface WorktreeTrail {
	worktreeId: string;
	/** Saved-work refs, oldest first (the single legacy ref counts as the oldest). */
	savedRefs: string[];
	/** `refs/agent-tabs/heads/<id>`, when a removal kept the branch head. */
	headRef: string | null;
}

/** What a save commit says about the worktree it came from. */
export interface SaveDescription {
	ref: string;
	commit: string;
	/** HEAD of the worktree when it was saved (the save commit's first parent). */
	head: string;
	/** The folder the worktree was in, when the message records it. */
	path: string | null;
	/** The branch (short name), when the message records it; null for a detached HEAD or an unknown one. */
	branch: string | null;
	/** The session's title (`Session-Title:` trailer). */
	title: string | null;
	/** Why it was saved: the session was archived, deleted, or something else (a clean-up). */
	reason: 'archived' | 'deleted' | 'other';
}

const savedPrefix = 'refs/agent-tabs/saved/';
const headsPrefix = 'refs/agent-tabs/heads/';
/** Worktree ids are `wt-<hex>` (see `newId`); anything else under these prefixes is not ours to read. */
const worktreeIdPattern = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

/** Every worktree id that `refs/agent-tabs/` remembers, with its saved-work refs in save order. */
export async function readWorktreeTrails(git: Git): Promise<Map<string, WorktreeTrail>> {
	const refs = await git.lines(['for-each-ref', '--format=%(refname)', 'refs/agent-tabs/']);
	const trails = new Map<string, WorktreeTrail>();
	const saves = new Map<string, { ref: string; n: number }[]>();
	const trail = (id: string): WorktreeTrail => {
		let t = trails.get(id);
		if (!t) {
			t = { worktreeId: id, savedRefs: [], headRef: null };
			trails.set(id, t);
		}
		return t;
	};
	for (const ref of refs) {
		if (ref.startsWith(savedPrefix)) {
			const [id, n, ...rest] = ref.slice(savedPrefix.length).split('/');
			if (!id || !worktreeIdPattern.test(id) || rest.length > 0 || (n !== undefined && !/^\d+$/.test(n))) {
				continue;
			}
			trail(id);
			const list = saves.get(id) ?? [];
			list.push({ ref, n: n === undefined ? -1 : Number(n) });
			saves.set(id, list);
		} else if (ref.startsWith(headsPrefix)) {
			const id = ref.slice(headsPrefix.length);
			if (worktreeIdPattern.test(id)) {
				trail(id).headRef = ref;
			}
		}
	}
	for (const [id, list] of saves) {
		trail(id).savedRefs = list.sort((a, b) => a.n - b.n).map((s) => s.ref);
	}
	return trails;
}

/** The newest saved-work ref of a trail, or null when it has none. */
export function latestSavedRef(trail: WorktreeTrail): string | null {
	return trail.savedRefs[trail.savedRefs.length - 1] ?? null;
}

/**
 * Reads a save commit's message (`agent-tabs: saved work before <reason>`, then `Session worktree <path> on
 * <branch>.` and `Session-Title: <title>`). When the message does not name the branch, a branch under
 * `agent-tabs/` that points at the saved HEAD is taken.
 */
export async function describeSave(git: Git, ref: string): Promise<SaveDescription> {
	const [commit = '', parents = '', ...body] = (await git.run(['log', '-1', '--format=%H%n%P%n%B', ref, '--'])).split('\n');
	const message = body.join('\n');
	const head = parents.split(' ')[0] ?? '';
	// Greedy: branch names have no spaces, so the last " on " separates the folder from the branch.
	const detachedAt = /^Session worktree (.+) on a detached HEAD\.$/m.exec(message);
	const where = detachedAt ? null : /^Session worktree (.+) on (\S+)\.$/m.exec(message);
	const folder = detachedAt?.[1] ?? where?.[1] ?? null;
	const branch = where?.[2] ?? (head && !detachedAt ? await branchAt(git, head) : null);
	const reasonLine = /^agent-tabs: saved work before (.+)$/m.exec(message)?.[1] ?? '';
	return {
		ref,
		commit,
		head,
		path: folder,
		branch,
		title: /^Session-Title: (.+)$/m.exec(message)?.[1] ?? null,
		reason: /archived/.test(reasonLine) ? 'archived' : /deleted/.test(reasonLine) ? 'deleted' : 'other',
	};
}

/** A branch under `agent-tabs/` that points at `commit` (for a trail that only kept the branch head). */
export async function branchAt(git: Git, commitish: string): Promise<string | null> {
	return (await git.lines(['for-each-ref', '--format=%(refname:short)', '--points-at', commitish, 'refs/heads/agent-tabs/']))[0] ?? null;
}
