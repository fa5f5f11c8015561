import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { newId } from '../common/ids';
import { errorMessage, type Logger } from '../common/log';
import { SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import { storeFiles } from '../db/snapshot';
import { WorktreesRepo } from '../db/worktreesRepo';
import { AgentTabsError } from '../common/errors';
import { Git, parseWorktreeList, type WorktreeListEntry } from './gitClient';
import { branchAt, describeSave, latestSavedRef, readWorktreeTrails, type SaveDescription, type WorktreeTrail } from './gitRecords';
import { readOwnerMark } from './ownership';
import { realPathLoose, samePath, subfolders } from './paths';
import type { WorktreeService } from './worktreeService';

/** One session or detached worktree brought back from git. */
export interface RebuiltWorktree {
	/** `session`: a live worktree; `archived`: its last save was an archive; `detached`: a deleted session's work. */
	kind: 'session' | 'archived' | 'detached';
	sessionId: string | null;
	worktreeId: string;
	title: string;
	repo: string;
	path: string;
	branch: string | null;
	savedRef: string | null;
}

export interface RebuildReport {
	/** The repositories that were read. */
	repos: string[];
	rebuilt: RebuiltWorktree[];
	/** What could not be rebuilt, in plain words, with where the work still is. */
	problems: string[];
}

export interface RebuildInput {
	store: Store;
	service: WorktreeService;
	logger: Logger;
	/** Repositories in reach: a window's folders, the CLI's `--repo`. */
	repos: readonly string[];
	/** The configured worktrees folder; without it, every folder under `~/.agent-tabs/worktrees/` is searched. */
	root?: string;
	env?: NodeJS.ProcessEnv;
}

/**
 * After the database was lost or damaged: gives back every session git still knows about, without
 * touching a file. Read from git, never from the database:
 * - each worktree of a repository in reach that lies in a worktrees folder (or is on an `agent-tabs/`
 *   branch) becomes a session with that worktree;
 * - each worktree id under `refs/agent-tabs/` (saved work, kept branch heads) with no folder any more
 *   becomes an archived session (when its last save was an archive) or a detached worktree (a deleted
 *   session's work), restorable and attachable as before.
 * Repositories are the given ones plus those the folders in the worktrees folders belong to. Anything the
 * store already knows (by folder or worktree id) is left alone, so running it twice adds nothing.
 */
export async function rebuildFromGit(input: RebuildInput): Promise<RebuildReport> {
	const report: RebuildReport = { repos: [], rebuilt: [], problems: [] };
	const searchRoots = input.root ? [path.resolve(input.root)] : subfolders(path.join(os.homedir(), '.agent-tabs', 'worktrees'));
	const repos = new Set<string>();
	const addRepo = async (dir: string, quiet: boolean): Promise<void> => {
		try {
			repos.add(await input.service.resolveRepository(dir));
		} catch (e) {
			if (!quiet) {
				report.problems.push(`${dir}: ${errorMessage(e)}`);
			}
		}
	};
	for (const repo of input.repos) {
		await addRepo(repo, false);
	}
	for (const root of searchRoots) {
		for (const folder of subfolders(root)) {
			// A linked worktree has a .git file naming its repository.
			if (fs.statSync(path.join(folder, '.git'), { throwIfNoEntry: false })?.isFile()) {
				await addRepo(folder, true);
			}
		}
	}
	for (const repo of repos) {
		report.repos.push(repo);
		try {
			await rebuildRepository(input, repo, searchRoots, report);
		} catch (e) {
			report.problems.push(`${repo}: ${errorMessage(e)}`);
		}
	}
	input.logger.info(`[Rebuild] from ${report.repos.join(', ') || 'no repository'}: ${report.rebuilt.length} rebuilt${report.problems.length ? `; ${report.problems.join(' ')}` : ''}`);
	return report;
}

/** What one repository's git says: its worktrees and the trails under `refs/agent-tabs/`. */
interface RepoRecords {
	repo: string;
	git: Git;
	/** The main checkout's branch: the best guess for where a rebuilt session's work should go. */
	baseRef: string | null;
	/** Linked worktrees with a folder (not the main checkout). */
	listed: WorktreeListEntry[];
	trails: Map<string, WorktreeTrail>;
	saves: Map<string, SaveDescription>;
	trailByPath: Map<string, string>;
}

async function readRepoRecords(repo: string, env: NodeJS.ProcessEnv | undefined): Promise<RepoRecords> {
	const git = new Git(repo, env);
	const baseRef = (await git.run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim() || null;
	const listed = parseWorktreeList(await git.run(['worktree', 'list', '--porcelain', '-z'])).filter((e) => !e.prunable && !e.bare && !samePath(e.path, repo));
	const trails = await readWorktreeTrails(git);
	const saves = new Map<string, SaveDescription>();
	const trailByPath = new Map<string, string>();
	for (const trail of trails.values()) {
		const latest = latestSavedRef(trail);
		if (latest) {
			const save = await describeSave(git, latest);
			saves.set(trail.worktreeId, save);
			if (save.path) {
				trailByPath.set(path.resolve(save.path), trail.worktreeId);
			}
		}
	}
	return { repo, git, baseRef, listed, trails, saves, trailByPath };
}

function titleOf(save: SaveDescription | undefined, branch: string | null, folder: string): string {
	return save?.title ?? branch?.replace(/^agent-tabs\//, '') ?? path.basename(folder);
}

/** A worktree that still has its folder, as a detached row (with its saved work, when git has any). */
function insertLive(input: RebuildInput, records: RepoRecords, entry: WorktreeListEntry): RebuiltWorktree {
	const worktrees = new WorktreesRepo(input.store);
	const folder = path.resolve(entry.path);
	const trailId = records.trailByPath.get(folder);
	const id = trailId && !worktrees.get(trailId) ? trailId : newId('wt');
	const savedRef = trailId ? latestSavedRef(records.trails.get(trailId)!) : null;
	const branch = entry.branch ?? null;
	worktrees.insert({ id, session_id: null, repo_root: records.repo, path: folder, branch, base_ref: records.baseRef, base_commit: null, state: 'ready', saved_ref: savedRef });
	return { kind: 'detached', sessionId: null, worktreeId: id, title: titleOf(trailId ? records.saves.get(trailId) : undefined, branch, folder), repo: records.repo, path: folder, branch, savedRef };
}

/**
 * A worktree whose folder was removed, from its saved work (`savedRef`, default the newest) and kept branch
 * head, as a detached row in state `removed`: attaching it restores the folder. A string when it cannot be.
 */
async function insertRemoved(input: RebuildInput, records: RepoRecords, trail: WorktreeTrail, savedRef = latestSavedRef(trail)): Promise<RebuiltWorktree | string> {
	const worktrees = new WorktreesRepo(input.store);
	const save = savedRef === latestSavedRef(trail) ? records.saves.get(trail.worktreeId) : savedRef ? await describeSave(records.git, savedRef) : undefined;
	const branch = save?.branch ?? (trail.headRef ? await branchAt(records.git, trail.headRef) : null);
	if (!branch) {
		const ref = savedRef ?? trail.headRef!;
		return `${ref} in ${records.repo} keeps work whose branch is gone; get it back with "git branch <name> ${ref}".`;
	}
	let folder = save?.path ? path.resolve(save.path) : path.join(input.service.worktreeRoot(records.repo), branch.replace(/^agent-tabs\//, '').replace(/\//g, '-'));
	if (worktrees.byPath(folder) || nonEmpty(folder)) {
		// Another worktree took the folder since: restore this one beside it.
		folder = `${folder}-${trail.worktreeId.slice(-6)}`;
	}
	worktrees.insert({ id: trail.worktreeId, session_id: null, repo_root: records.repo, path: folder, branch, base_ref: records.baseRef, base_commit: null, state: 'removed', saved_ref: savedRef });
	return { kind: save?.reason === 'archived' ? 'archived' : 'detached', sessionId: null, worktreeId: trail.worktreeId, title: titleOf(save, branch, folder), repo: records.repo, path: folder, branch, savedRef };
}

/**
 * A worktree whose owner mark names another state folder that still has its database: a session of another
 * window or workspace, not one this state lost. (A mark naming a folder that is gone is taken back.)
 */
function heldElsewhere(folder: string, stateDir: string): boolean {
	const mark = readOwnerMark(folder);
	if (!mark || samePath(mark.stateDir, stateDir)) {
		return false;
	}
	try {
		return fs.readdirSync(mark.stateDir).some((name) => name === storeFiles.snapshot || name.startsWith(storeFiles.journalPrefix));
	} catch {
		return false;
	}
}

async function rebuildRepository(input: RebuildInput, repo: string, searchRoots: string[], report: RebuildReport): Promise<void> {
	const records = await readRepoRecords(repo, input.env);
	const sessions = new SessionsRepo(input.store);
	const worktrees = new WorktreesRepo(input.store);
	const roots = [input.service.worktreeRoot(repo), ...searchRoots];
	const used = new Set<string>();

	// 1. Worktrees that still have their folder: sessions again.
	for (const entry of records.listed) {
		const folder = path.resolve(entry.path);
		const ours = records.trailByPath.has(folder) || entry.branch?.startsWith('agent-tabs/') || roots.some((r) => folder.startsWith(r + path.sep));
		if (!ours || worktrees.byPath(folder) || heldElsewhere(folder, input.store.dir)) {
			continue;
		}
		const rebuilt = insertLive(input, records, entry);
		used.add(rebuilt.worktreeId);
		rebuilt.kind = 'session';
		rebuilt.sessionId = giveSession(sessions, worktrees, rebuilt, false);
		report.rebuilt.push(rebuilt);
	}

	// 2. Worktrees whose folder was removed (archived, deleted): their saved work and kept branch head.
	for (const trail of records.trails.values()) {
		if (used.has(trail.worktreeId) || worktrees.get(trail.worktreeId)) {
			continue;
		}
		const rebuilt = await insertRemoved(input, records, trail);
		if (typeof rebuilt === 'string') {
			report.problems.push(rebuilt);
			continue;
		}
		if (rebuilt.kind === 'archived') {
			rebuilt.sessionId = giveSession(sessions, worktrees, rebuilt, true);
		}
		report.rebuilt.push(rebuilt);
	}
}

/**
 * For `session attach`: the detached worktree row a target names, brought in from git when the store does
 * not know it. The target is a worktree id, a worktree folder, or a ref under `refs/agent-tabs/` (an older
 * save of a worktree restores that save). `repos` are searched for refs the store has no row for.
 */
export async function worktreeToAttach(input: RebuildInput, target: string): Promise<string> {
	const worktrees = new WorktreesRepo(input.store);
	const byId = worktrees.get(target) ?? worktrees.byPath(path.resolve(target)) ?? worktrees.byPath(realPathLoose(target));
	if (byId) {
		return byId.id;
	}
	const refMatch = /^refs\/agent-tabs\/(?:saved|heads)\/([^/]+)(?:\/\d+)?$/.exec(target);
	if (!refMatch && fs.statSync(path.join(target, '.git'), { throwIfNoEntry: false })?.isFile()) {
		// A worktree folder the store does not know (a new state folder, or a lost database), unless it is a
		// session of another state that still has its database: two states would each save and remove it.
		if (heldElsewhere(target, input.store.dir)) {
			throw new AgentTabsError(
				'worktree/heldElsewhere',
				`${target} is a session of another Agent Tabs state (${readOwnerMark(target)?.stateDir ?? '?'}: another window's workspace, or another --state), which still has its database. Work with it there; it is attached here only once that state is gone.`,
			);
		}
		const repo = await input.service.resolveRepository(target);
		const records = await readRepoRecords(repo, input.env);
		const entry = records.listed.find((e) => samePath(e.path, target));
		if (entry) {
			return insertLive(input, records, entry).worktreeId;
		}
	}
	if (refMatch) {
		const worktreeId = refMatch[1]!;
		const savedRef = target.includes('/saved/') ? target : undefined;
		const known = worktrees.get(worktreeId);
		if (known) {
			if (savedRef && !known.session_id) {
				worktrees.update(worktreeId, { saved_ref: savedRef });
			}
			return worktreeId;
		}
		const repos = [...input.repos, ...new Set(worktrees.list().map((w) => w.repo_root))];
		for (const dir of repos) {
			const records = await readRepoRecords(await input.service.resolveRepository(dir), input.env);
			const trail = records.trails.get(worktreeId);
			if (trail && (!savedRef || trail.savedRefs.includes(savedRef))) {
				const rebuilt = await insertRemoved(input, records, trail, savedRef ?? latestSavedRef(trail));
				if (typeof rebuilt === 'string') {
					throw new AgentTabsError('worktree/noBranch', rebuilt);
				}
				return rebuilt.worktreeId;
			}
		}
		throw new AgentTabsError('worktree/unknown', `${target} is not in ${repos.length ? repos.join(', ') : 'any repository in reach'}${input.repos.length ? '' : ' (name the repository with --repo)'}.`);
	}
	throw new AgentTabsError('worktree/unknown', `${target} is not a detached worktree, a worktree folder, or a ref under refs/agent-tabs/ (see "agent-tabs session list").`);
}

/**
 * The worktree row is written first (detached), the session after: a rebuild cut short leaves at worst a
 * detached worktree (which the next rebuild skips and the user can attach) and, between the last two writes,
 * an empty session beside it; never work that is not listed.
 */
function giveSession(sessions: SessionsRepo, worktrees: WorktreesRepo, rebuilt: RebuiltWorktree, archived: boolean): string {
	const row = worktrees.get(rebuilt.worktreeId)!;
	const session = sessions.create({ title: rebuilt.title, baseRef: row.base_ref ?? undefined, repoRoot: rebuilt.repo, status: archived ? 'archived' : 'active' });
	worktrees.update(rebuilt.worktreeId, { session_id: session.id });
	return session.id;
}

function nonEmpty(dir: string): boolean {
	try {
		return fs.readdirSync(dir).length > 0;
	} catch {
		return false;
	}
}
