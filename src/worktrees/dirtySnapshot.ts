import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Git } from './gitClient';

/** Path (worktree-relative, forward slashes) → content hash (null for a deleted file) and git's status code. */
export type DirtySnapshot = Map<string, { hash: string | null; code: string }>;

/** Files hashed at once: enough to keep the disk busy, few enough to bound open files and memory. */
const hashConcurrency = 8;
/** Files up to this size are read whole; larger ones are streamed, so memory stays bounded. */
const wholeReadBytes = 1024 * 1024;
/**
 * Files larger than this are told apart by size and modification time instead of content, so one huge
 * file (a database, a build artefact) cannot hold a turn up. Decided by size, so the same file gets the same
 * kind of hash before and after a turn unless its size changed (which is a change anyway).
 */
const maxHashedBytes = 64 * 1024 * 1024;

/** A file's hash as a snapshot records it (null when it is not there). */
export async function hashFile(abs: string): Promise<string | null> {
	try {
		const stat = await fs.promises.stat(abs);
		if (!stat.isFile()) {
			return `special:${stat.mode}`;
		}
		if (stat.size > maxHashedBytes) {
			return `stat:${stat.size}:${stat.mtimeMs}`;
		}
		if (stat.size <= wholeReadBytes) {
			return createHash('sha1').update(await fs.promises.readFile(abs)).digest('hex');
		}
		const hash = createHash('sha1');
		for await (const chunk of fs.createReadStream(abs)) {
			hash.update(chunk as Buffer);
		}
		return hash.digest('hex');
	} catch {
		return null;
	}
}

/** Runs `fn` over `items` with at most `limit` at a time. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
	let next = 0;
	const lane = async (): Promise<void> => {
		while (next < items.length) {
			const i = next++;
			await fn(items[i]!, i);
		}
	};
	await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
}

/**
 * The files that differ from HEAD (modified, added, deleted, untracked; ignored files excluded) with a hash
 * of their content. Taken before and after an agent's turn, the difference is what the turn changed on disk,
 * including writes the agent made itself rather than through the protocol.
 *
 * Asynchronous and bounded, so the extension host keeps running: files are read off the event loop, a few
 * at a time, large ones streamed, huge ones (past `maxHashedBytes`) compared by size and mtime.
 */
export async function takeDirtySnapshot(root: string, git: Git = new Git(root)): Promise<DirtySnapshot> {
	const out = await git.run(['status', '--porcelain=v1', '-z', '--untracked-files=all', '--no-renames']);
	const entries: { rel: string; code: string }[] = [];
	for (const entry of out.split('\0')) {
		if (entry.length < 4) {
			continue;
		}
		const rel = entry.slice(3);
		if (rel.endsWith('/')) {
			continue;
		}
		entries.push({ rel, code: entry.slice(0, 2) });
	}
	const hashes: (string | null)[] = new Array(entries.length).fill(null);
	await forEachLimited(entries, hashConcurrency, async ({ rel }, i) => {
		hashes[i] = await hashFile(path.join(root, rel));
	});
	const snapshot: DirtySnapshot = new Map();
	entries.forEach(({ rel, code }, i) => snapshot.set(rel, { hash: hashes[i]!, code }));
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
