import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { simpleGit } from 'simple-git';

/** Path (worktree-relative, forward slashes) → content hash (null for a deleted file) and git's status code. */
export type DirtySnapshot = Map<string, { hash: string | null; code: string }>;

function hashFile(abs: string): string | null {
	try {
		return createHash('sha1').update(fs.readFileSync(abs)).digest('hex');
	} catch {
		return null;
	}
}

/**
 * The files that differ from HEAD (modified, added, deleted, untracked; ignored files excluded) with a hash
 * of their content. Taken before and after an agent's turn, the difference is what the turn changed on disk,
 * including writes the agent made itself rather than through the protocol.
 */
export async function takeDirtySnapshot(root: string): Promise<DirtySnapshot> {
	const out = await simpleGit(root).raw(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--no-renames']);
	const snapshot: DirtySnapshot = new Map();
	for (const entry of out.split('\0')) {
		if (entry.length < 4) {
			continue;
		}
		const rel = entry.slice(3);
		if (rel.endsWith('/')) {
			continue;
		}
		snapshot.set(rel, { hash: hashFile(path.join(root, rel)), code: entry.slice(0, 2) });
	}
	return snapshot;
}

export interface SnapshotChange {
	path: string;
	kind: 'add' | 'modify' | 'delete';
}

/** What changed between two snapshots of the same worktree. */
export function diffSnapshots(root: string, before: DirtySnapshot, after: DirtySnapshot): SnapshotChange[] {
	const changes: SnapshotChange[] = [];
	for (const [rel, { hash, code }] of after) {
		const old = before.get(rel);
		if (!old) {
			// Newly dirty: git's status code says whether it is new to the repository or a changed tracked file.
			changes.push({ path: rel, kind: hash === null ? 'delete' : code === '??' || code.includes('A') ? 'add' : 'modify' });
		} else if (old.hash !== hash) {
			changes.push({ path: rel, kind: hash === null ? 'delete' : old.hash === null ? 'add' : 'modify' });
		}
	}
	for (const [rel] of before) {
		if (!after.has(rel)) {
			// Dirty before, clean now: restored to HEAD, which is a change too.
			changes.push({ path: rel, kind: fs.existsSync(path.join(root, rel)) ? 'modify' : 'delete' });
		}
	}
	return changes.sort((a, b) => a.path.localeCompare(b.path));
}
