import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';
import { isAlive, ownProcStartTime } from '../db/lock';
import { gitFileTarget } from './paths';

/**
 * What Agent Tabs keeps in a worktree's own git admin folder (`git rev-parse --git-dir` of the worktree,
 * `.git/worktrees/<name>` of the repository), where every process (each VS Code window, whatever its state
 * folder, and the CLI) sees it and git removes it with the worktree:
 * - `agent-tabs-owner.json`: this worktree belongs to an Agent Tabs session, so no window adopts it as detached;
 * - `agent-tabs-leases/`: one file per agent turn running there, with pid and process start time, so a
 *   removal in any process refuses while an agent works in it.
 */
const ownerFile = 'agent-tabs-owner.json';
const leaseDir = 'agent-tabs-leases';

export interface OwnerMark {
	worktreeId: string;
	sessionId: string | null;
	/** The state folder whose database holds the worktree. */
	stateDir: string;
	markedAt: string;
	/** The folder's device and inode when marked: a folder moved by hand keeps them, a copy of it does not. */
	folder?: { dev: number; ino: number };
}

export interface WorktreeLease {
	pid: number;
	procStart?: string;
	host: string;
	/** Who runs the agent: "a VS Code window", "agent-tabs run". */
	owner: string;
	/** Which agent in which chat. */
	what: string;
	since: string;
}

/** The worktree's git admin folder, read from its `.git` file (no git process), or undefined when it has none. */
export function gitAdminDir(worktree: string): string | undefined {
	const dotGit = path.join(worktree, '.git');
	try {
		const stat = fs.statSync(dotGit);
		if (stat.isDirectory()) {
			return dotGit;
		}
		const named = gitFileTarget(fs.readFileSync(dotGit, 'utf8'));
		return named ? path.resolve(worktree, named) : undefined;
	} catch {
		return undefined;
	}
}

export function markOwned(worktree: string, mark: Omit<OwnerMark, 'markedAt' | 'folder'>): void {
	const admin = gitAdminDir(worktree);
	if (!admin) {
		throw new AgentTabsError('worktree/noAdminDir', `${worktree} is not a git worktree, so Agent Tabs cannot mark it as its own.`);
	}
	const file = path.join(admin, ownerFile);
	const tmp = `${file}.${process.pid}.tmp`;
	const { dev, ino } = fs.statSync(worktree);
	fs.writeFileSync(tmp, JSON.stringify({ ...mark, markedAt: new Date().toISOString(), folder: { dev, ino } } satisfies OwnerMark));
	fs.renameSync(tmp, file);
}

export function readOwnerMark(worktree: string): OwnerMark | undefined {
	const admin = gitAdminDir(worktree);
	return admin ? readOwnerMarkIn(admin) : undefined;
}

/** The owner mark in a worktree's git admin folder (`.git/worktrees/<name>` of the repository). */
export function readOwnerMarkIn(admin: string): OwnerMark | undefined {
	try {
		return JSON.parse(fs.readFileSync(path.join(admin, ownerFile), 'utf8')) as OwnerMark;
	} catch {
		return undefined;
	}
}

/** Takes a lease on `worktree` for one agent turn; the returned function gives it back. */
export function acquireLease(worktree: string, lease: Pick<WorktreeLease, 'owner' | 'what'>): () => void {
	const admin = gitAdminDir(worktree);
	if (!admin) {
		throw new AgentTabsError('worktree/noAdminDir', `${worktree} is not a git worktree; agents work only inside a session's worktree.`);
	}
	const dir = path.join(admin, leaseDir);
	fs.mkdirSync(dir, { recursive: true });
	const record: WorktreeLease = { pid: process.pid, procStart: ownProcStartTime(), host: os.hostname(), since: new Date().toISOString(), ...lease };
	const file = path.join(dir, `${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}.json`);
	fs.writeFileSync(file, JSON.stringify(record));
	return () => fs.rmSync(file, { force: true });
}

/** The leases of processes still running; those of dead processes (a crash, kill -9) are cleared on the way. */
export function liveLeases(worktree: string): WorktreeLease[] {
	const admin = gitAdminDir(worktree);
	if (!admin) {
		return [];
	}
	const dir = path.join(admin, leaseDir);
	let names: string[];
	try {
		names = fs.readdirSync(dir);
	} catch {
		return [];
	}
	const live: WorktreeLease[] = [];
	for (const name of names) {
		const file = path.join(dir, name);
		let lease: WorktreeLease;
		try {
			lease = JSON.parse(fs.readFileSync(file, 'utf8')) as WorktreeLease;
		} catch {
			continue; // being written, or removed while we looked
		}
		if (typeof lease.pid === 'number' && isAlive(lease)) {
			live.push(lease);
		} else {
			fs.rmSync(file, { force: true });
		}
	}
	return live;
}

/** Whether `folder` is the very folder `mark` was written for (moved or not), not a copy of it. */
export function isMarkedFolder(mark: OwnerMark, folder: string): boolean {
	if (!mark.folder) {
		return true; // marked before marks recorded it
	}
	const stat = fs.statSync(folder, { throwIfNoEntry: false });
	return stat !== undefined && stat.ino === mark.folder.ino && stat.dev === mark.folder.dev;
}
