import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';
import { newId } from '../common/ids';
import { errorMessage, type Logger } from '../common/log';
import { SessionsRepo, type SessionRow } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import { TranscriptRepo } from '../db/transcriptRepo';
import { WorktreesRepo, type WorktreeRow } from '../db/worktreesRepo';
import { Git, GitError, parseWorktreeList } from './gitClient';
import { checkpointRefPrefix, deleteCheckpointRefs, identity, indexTree, removeStaleTempIndexes, restoreCheckpoint, snapshotCommit, withTempIndex, worktreeTree } from './checkpoints';
import { liveLeases, markOwned, readOwnerMark } from './ownership';
import { assessRisk, describeOperation, type RiskReport } from './risk';
import { addSave, readSave, resolveSavedRef, saveTrailers, type SaveContents } from './savedRefs';
import { refuseRootInsideCheckouts } from './paths';

export interface WorktreeOptions {
	/** Where worktrees are created; default `~/.agent-tabs/worktrees/<repo>-<hash>`. */
	root?: string;
	/** Globs (simple: `*` within one path segment) of files copied from the main checkout, default `.env*`. */
	copy?: string[];
	/** A shell command run in a new worktree (install dependencies...). */
	setupCommand?: string;
	/** Decides the setup command per repository when `setupCommand` is not given (the user confirms a proposed one). */
	setupCommandFor?: (repo: string) => Promise<string | undefined>;
	/** Chats with an agent running in a session right now (for the risk report). */
	runningAgents?: (sessionId: string) => string[];
	/** Receives setup output line by line. */
	onSetupOutput?: (line: string) => void;
	env?: NodeJS.ProcessEnv;
	/** Checkpoints kept per chat, newest turns first (setting `agentTabs.checkpoints.keepPerChat`); older ones are pruned unless their turn has a pending change. */
	checkpointsPerChat?: number;
}

/** Default for `WorktreeOptions.checkpointsPerChat`. */
export const defaultCheckpointsPerChat = 50;

/** What a removal saved, and where to find it. */
export interface SavedWork {
	/**
	 * The private ref holding the save, `refs/agent-tabs/saved/<worktree id>/<n>` (see savedRefs.ts). Its
	 * commit's tree is the working folder; its first parent is HEAD, its second the index (as `git stash`).
	 */
	ref: string;
	commit: string;
	/** The branch HEAD was on (kept); null for a detached HEAD. */
	branch: string | null;
	/** The commit HEAD was on. */
	head: string;
	/** Files of the working folder that differ from HEAD (changed, deleted, untracked). */
	files: number;
	/** Files whose staged state differs from HEAD. */
	staged: number;
}

export interface RemoveResult {
	risk: RiskReport;
	/** Null when the folder was already gone (deleted by hand): only the branch and earlier saves are left. */
	saved: SavedWork | null;
	removedPath: string;
}

/**
 * Namespaces for session branches, in order of preference. The first is the documented one; the others are
 * for repositories where a branch named like the namespace itself makes git refuse every branch under it.
 */
export const sessionBranchPrefixes = ['agent-tabs', 'agent-tabs-sessions', 'agent-tabs-2', 'agent-tabs-3', 'agent-tabs-4', 'agent-tabs-5'] as const;

/** What a start-up found half-done and finished or undid. */
export interface RecoveryReport {
	/** Removals interrupted after their save: the folder is now removed. */
	completedRemovals: string[];
	/** Restores interrupted half-way: the partial folder is removed; the save and branch are untouched. */
	undoneRestores: string[];
	/** Session creations interrupted half-way: rolled back. */
	rolledBackCreates: string[];
	/** Temporary index files of processes that died. */
	removedTempFiles: string[];
}

export function slugify(title: string): string {
	const slug = title
		.normalize('NFKD')
		.replace(/[\u0300-\u036f]/g, '')
		.toLowerCase()
		.replace(/[^a-z0-9]+/g, '-')
		.replace(/^-+|-+$/g, '')
		.slice(0, 40)
		.replace(/-+$/g, '');
	return slug || 'session';
}

function globToRegExp(glob: string): RegExp {
	return new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]')}$`);
}

/**
 * Sessions and their worktrees, with one rule: no path loses work. Every removal goes through `remove`,
 * which saves everything `risk` finds into a private ref first, verifies the save byte for byte, keeps the
 * branch, and only then deletes the folder.
 */
export class WorktreeService {
	private readonly sessions: SessionsRepo;
	private readonly worktrees: WorktreesRepo;
	/** Written into each worktree's owner mark: the state folder whose database holds it. */
	private readonly stateDir: string;

	constructor(
		private readonly store: Store,
		private readonly logger: Logger,
		private readonly options: WorktreeOptions = {},
	) {
		this.sessions = new SessionsRepo(store);
		this.worktrees = new WorktreesRepo(store);
		this.stateDir = store.dir;
	}

	private git(cwd: string): Git {
		return new Git(cwd, this.options.env);
	}

	/** The repository's top folder, or a plain-words error for everything that is not a usable repository. */
	async resolveRepository(dir: string): Promise<string> {
		if (!fs.existsSync(dir)) {
			throw new AgentTabsError('repo/missing', `The folder ${dir} does not exist.`);
		}
		if (!fs.statSync(dir).isDirectory()) {
			throw new AgentTabsError('repo/notFolder', `${dir} is a file, not a folder: give the repository's folder.`);
		}
		const git = this.git(dir);
		let lines: string[];
		try {
			// One call for the three answers: inside a work tree?, its top folder, the shared .git folder.
			lines = (await git.run(['rev-parse', '--is-inside-work-tree', '--show-toplevel', '--git-common-dir'])).split('\n');
		} catch (e) {
			if (e instanceof GitError) {
				if (await git.ok(['rev-parse', '--is-bare-repository'])) {
					throw new AgentTabsError('repo/bare', `${dir} is a bare git repository: it has no working folder to start sessions from. Clone it first.`);
				}
				throw new AgentTabsError('repo/notGit', `${dir} is not a git repository. Sessions need git (run "git init" there first).`);
			}
			throw e;
		}
		if (lines[0]?.trim() !== 'true') {
			throw new AgentTabsError('repo/bare', `${dir} is a bare git repository: it has no working folder to start sessions from.`);
		}
		const top = lines[1]!.trim();
		// A worktree of another repository: use its main checkout as the repository.
		const common = path.resolve(top, lines[2]!.trim());
		return path.basename(common) === '.git' ? path.dirname(common) : top;
	}

	/** Staged, unstaged or untracked (not ignored) changes in a checkout. */
	async hasUncommittedChanges(dir: string): Promise<boolean> {
		return (await this.git(dir).zlist(['status', '--porcelain', '-z'])).length > 0;
	}

	worktreeRoot(repo: string): string {
		if (this.options.root) {
			return path.resolve(this.options.root);
		}
		const hash = createHash('sha1').update(repo).digest('hex').slice(0, 6);
		return path.join(os.homedir(), '.agent-tabs', 'worktrees', `${path.basename(repo)}-${hash}`);
	}

	/**
	 * A new session and its worktree: outside the repository, on `agent-tabs/<slug>` (or the first free name
	 * of `sessionBranchPrefixes`, said in `note`) from `baseRef` (default
	 * the current HEAD), optionally carrying the main checkout's uncommitted changes, then the setup step.
	 */
	async createSession(input: { repo: string; title: string; baseRef?: string; carryChanges?: boolean }): Promise<{ session: SessionRow; worktree: WorktreeRow; note?: string }> {
		const repo = await this.resolveRepository(input.repo);
		const git = this.git(repo);
		let baseRef = input.baseRef;
		if (!(await git.ok(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']))) {
			throw new AgentTabsError('repo/noCommits', `${repo} has no commits yet; make a first commit before starting a session.`);
		}
		if (!baseRef) {
			const head = (await git.run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim();
			baseRef = head || (await git.run(['rev-parse', 'HEAD']).catch(() => '')).trim();
			if (!baseRef) {
				throw new AgentTabsError('repo/noCommits', `${repo} has no commits yet; make a first commit before starting a session.`);
			}
		}
		if (!(await git.ok(['rev-parse', '--verify', '--quiet', `${baseRef}^{commit}`]))) {
			throw new AgentTabsError('repo/badRef', `"${baseRef}" is not a branch, tag or commit in ${repo}.`);
		}
		const baseCommit = (await git.run(['rev-parse', `${baseRef}^{commit}`])).trim();
		const root = this.worktreeRoot(repo);
		refuseRootInsideCheckouts(root, parseWorktreeList(await git.run(['worktree', 'list', '--porcelain', '-z'])).filter((e) => !e.prunable && !e.bare).map((e) => e.path));
		try {
			fs.mkdirSync(root, { recursive: true });
		} catch (e) {
			const code = (e as NodeJS.ErrnoException).code;
			if (code === 'EEXIST' || code === 'ENOTDIR') {
				throw new AgentTabsError('worktree/rootNotFolder', `The worktrees folder ${root} cannot be used: it, or a folder on its way, is a file.`, { cause: e });
			}
			if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
				throw new AgentTabsError('worktree/rootReadOnly', `The worktrees folder ${root} cannot be created or written (permission denied); pick another one (--worktrees, or agentTabs.worktrees.root).`, { cause: e });
			}
			throw e;
		}
		const slug = slugify(input.title);
		// Branch names are checked in memory against every branch, because git refuses a branch when a
		// branch is a folder of its name or the other way round (`agent-tabs` blocks `agent-tabs/x`).
		const taken = (await git.lines(['for-each-ref', '--format=%(refname)', 'refs/heads/'])).map((r) => r.slice('refs/heads/'.length).toLowerCase());
		const blocked = (name: string): boolean => {
			const n = name.toLowerCase();
			return taken.some((b) => b === n || b.startsWith(`${n}/`) || n.startsWith(`${b}/`));
		};
		// A namespace is usable when no branch is named like it; branches under it are only other sessions.
		const prefix = sessionBranchPrefixes.find((p) => !taken.includes(p));
		if (!prefix) {
			throw new AgentTabsError('worktree/names', `Branches named ${sessionBranchPrefixes.join(', ')} in ${repo} block every branch namespace Agent Tabs uses for sessions; rename one of them.`);
		}
		let note: string | undefined;
		if (prefix !== sessionBranchPrefixes[0]) {
			note = `The repository has a branch named "${sessionBranchPrefixes[0]}", which stops git from creating branches under ${sessionBranchPrefixes[0]}/, so this session's branch is under ${prefix}/ instead.`;
			this.logger.info(`[Worktrees][create] ${repo}: ${note}`);
		}
		let session: SessionRow | undefined;
		let worktree: WorktreeRow | undefined;
		for (let n = 1; n < 1000 && !worktree; n++) {
			const suffix = n === 1 ? '' : `-${n}`;
			const branch = `${prefix}/${slug}${suffix}`;
			const wtPath = path.join(root, `${slug}${suffix}`);
			if (!blocked(branch) && !fs.existsSync(wtPath) && !this.worktrees.byPath(wtPath)) {
				// The rows (state `creating`) come before anything on disk: a start after a kill rolls them back.
				const s = this.sessions.create({ title: input.title, baseRef, repoRoot: repo });
				const w = this.worktrees.insert({ id: newId('wt'), session_id: s.id, repo_root: repo, path: wtPath, branch, base_ref: baseRef, base_commit: baseCommit, state: 'creating' });
				// Claim the folder at once so a second session created at the same moment picks another name.
				try {
					fs.mkdirSync(wtPath);
				} catch {
					this.worktrees.delete(w.id);
					this.sessions.delete(s.id);
					continue;
				}
				session = s;
				worktree = w;
			}
		}
		if (!session || !worktree) {
			throw new AgentTabsError('worktree/names', `No free branch name for "${input.title}".`);
		}
		const { branch, path: wtPath } = worktree;
		try {
			fs.rmdirSync(wtPath);
			await git.run(['worktree', 'add', '-b', branch!, wtPath, baseCommit]);
			markOwned(wtPath, { worktreeId: worktree.id, sessionId: session.id, stateDir: this.stateDir });
			if (input.carryChanges) {
				await this.carryChanges(repo, wtPath);
			}
			await this.setup(repo, wtPath);
			this.worktrees.update(worktree.id, { state: 'ready' });
		} catch (e) {
			// A create that fails leaves nothing behind: no folder, no branch, no rows. The error keeps git's words.
			this.logger.error(`[Worktrees][create] ${errorMessage(e)}`);
			await this.rollBackCreate(this.worktrees.get(worktree.id)!).catch((r: unknown) => this.logger.error(`[Worktrees][create] rollback: ${errorMessage(r)}`));
			throw e instanceof AgentTabsError ? e : new AgentTabsError('worktree/create', `Could not create the worktree for "${input.title}": ${errorMessage(e)}`, { cause: e });
		}
		return { session, worktree: this.worktrees.get(worktree.id)!, note };
	}

	/**
	 * Undoes a session creation that did not finish: the folder (even locked by an interrupted
	 * `git worktree add`), the branch if nothing was committed on it, the worktree row, and the session when
	 * it has no chats yet.
	 */
	async rollBackCreate(wt: WorktreeRow): Promise<void> {
		await this.deleteFolder(wt);
		if (wt.branch && wt.base_commit) {
			// Only while the branch is still where it was created: a commit on it is work, and branches are kept.
			await this.git(wt.repo_root).run(['update-ref', '-d', `refs/heads/${wt.branch}`, wt.base_commit]).catch(() => undefined);
		}
		this.worktrees.delete(wt.id);
		if (wt.session_id && this.sessions.listChats(wt.session_id).length === 0) {
			this.sessions.delete(wt.session_id);
		}
	}

	/**
	 * Undoes a session created for something that then failed before any work was done (an agent that
	 * could not start): its worktree, branch, chats and row go. Keeps everything and returns false when the
	 * worktree holds any work (a change, an untracked file, a commit).
	 */
	async discardNewSession(sessionId: string): Promise<boolean> {
		const wt = this.worktrees.forSession(sessionId);
		if (wt) {
			const risk = await this.risk(wt.id);
			const head = risk.exists ? (await this.git(wt.path).run(['rev-parse', 'HEAD'])).trim() : '';
			if (!risk.exists || risk.staged.length + risk.unstaged.length + risk.untracked.length > 0 || head !== wt.base_commit) {
				return false;
			}
			await this.rollBackCreate(wt);
		}
		this.sessions.delete(sessionId);
		return true;
	}

	/** Removes a worktree's folder and git's record of it, whatever state an interruption left them in. */
	private async deleteFolder(wt: WorktreeRow): Promise<void> {
		const git = this.git(wt.repo_root);
		const entry = parseWorktreeList(await git.run(['worktree', 'list', '--porcelain', '-z'])).find((e) => path.resolve(e.path) === path.resolve(wt.path));
		if (entry?.locked) {
			// Only reached for our own interrupted steps (an `add` killed while git held its "initializing" lock).
			await git.run(['worktree', 'unlock', wt.path]).catch(() => undefined);
		}
		if (entry && fs.existsSync(wt.path)) {
			await git.run(['worktree', 'remove', '--force', wt.path]).catch((e: unknown) => this.logger.warn(`[Worktrees][remove] ${errorMessage(e)}; removing the folder directly`));
		}
		// A half-deleted folder is no longer a worktree git will remove: finish it by hand.
		fs.rmSync(wt.path, { recursive: true, force: true });
		await git.run(['worktree', 'prune']).catch(() => undefined);
	}

	private async carryChanges(repo: string, wtPath: string): Promise<void> {
		const git = this.git(repo);
		// `git stash create` fails without a word when it cannot lock the index. Writing the index first
		// (forced: a fresh index would skip the lock) takes the same lock and, failing, says why in git's words.
		await git.run(['update-index', '--refresh', '--force-write-index']).catch((e: unknown) => {
			if (e instanceof GitError && e.exitCode === 1) {
				return ''; // only "needs update": files that differ, which is what is carried
			}
			const why = e instanceof GitError ? e.stderr.split('\n').filter((l) => l && !l.endsWith(': needs update')).join('\n').trim() : errorMessage(e);
			throw new AgentTabsError('worktree/carry', `Could not carry the uncommitted changes of ${repo} into the new session, so it was not created: ${why}`, { cause: e });
		});
		const stash = (await git.run(['stash', 'create'])).trim();
		if (stash) {
			await this.git(wtPath).run(['stash', 'apply', stash]);
		}
		for (const relBytes of await git.zlistBytes(['ls-files', '--others', '--exclude-standard', '-z'])) {
			const rel = relBytes.toString('utf8');
			if (!Buffer.from(rel, 'utf8').equals(relBytes)) {
				copyNonUtf8Named(repo, wtPath, relBytes);
				continue;
			}
			const target = path.join(wtPath, rel);
			fs.mkdirSync(path.dirname(target), { recursive: true });
			fs.cpSync(path.join(repo, rel), target, { preserveTimestamps: true });
		}
	}

	private async setup(repo: string, wtPath: string): Promise<void> {
		const patterns = (this.options.copy ?? ['.env*']).map(globToRegExp);
		if (patterns.length > 0) {
			// Candidates are files git does not track (ignored or untracked), like .env files.
			const candidates = await this.git(repo).zlist(['ls-files', '--others', '-z']);
			for (const rel of candidates) {
				if (patterns.some((p) => p.test(rel) || p.test(path.basename(rel)))) {
					const target = path.join(wtPath, rel);
					if (!fs.existsSync(target)) {
						fs.mkdirSync(path.dirname(target), { recursive: true });
						fs.copyFileSync(path.join(repo, rel), target);
					}
				}
			}
		}
		const command = (this.options.setupCommand ?? (await this.options.setupCommandFor?.(repo)))?.trim();
		if (command) {
			await new Promise<void>((resolve, reject) => {
				const child = spawn(command, { cwd: wtPath, shell: true, env: this.options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
				const forward = (d: Buffer): void => {
					for (const line of d.toString('utf8').split('\n').filter(Boolean)) {
						this.options.onSetupOutput?.(line);
					}
				};
				child.stdout.on('data', forward);
				child.stderr.on('data', forward);
				child.on('error', reject);
				child.on('exit', (code) => (code === 0 ? resolve() : reject(new AgentTabsError('worktree/setup', `The setup command "${command}" failed with exit code ${code}.`))));
			});
		}
	}

	async risk(worktreeId: string): Promise<RiskReport> {
		const wt = this.requireWorktree(worktreeId);
		const inThisProcess = wt.session_id ? (this.options.runningAgents?.(wt.session_id) ?? []) : [];
		// Agents other processes (another window, the CLI) run there, seen through their leases.
		const elsewhere = liveLeases(wt.path)
			.filter((l) => l.pid !== process.pid || !this.options.runningAgents)
			.map((l) => `${l.what} (${l.owner}, pid ${l.pid})`);
		return assessRisk(this.git(wt.repo_root), {
			path: wt.path,
			branch: wt.branch,
			baseRef: wt.base_ref,
			runningAgents: [...inThisProcess, ...elsewhere],
		});
	}

	private requireWorktree(id: string): WorktreeRow {
		const wt = this.worktrees.get(id);
		if (!wt) {
			throw new AgentTabsError('worktree/unknown', `There is no worktree ${id}.`);
		}
		return wt;
	}

	/**
	 * Saves everything the worktree holds as one commit, the way `git stash` does: its tree is the working
	 * folder (tracked changes, untracked files, binary files, modes; not ignored files), its first parent is
	 * HEAD and its second a commit of the index (staged and partly staged files), and its message records
	 * the branch HEAD is on. Built through a temporary index (the worktree's own index and HEAD are
	 * untouched) and verified byte for byte against the folder before a new ref,
	 * `refs/agent-tabs/saved/<worktree id>/<n>`, is created for it. Earlier saves are never moved or
	 * deleted, also when this one fails. A worktree with an unresolved conflict cannot be saved this way.
	 */
	async save(worktreeId: string, reason: string): Promise<SavedWork> {
		const wt = this.requireWorktree(worktreeId);
		const git = this.git(wt.path);
		const title = wt.session_id ? this.sessions.get(wt.session_id)?.title : undefined;
		const head = (await git.run(['rev-parse', 'HEAD'])).trim();
		const branch = (await git.run(['symbolic-ref', '--quiet', 'HEAD']).catch(() => '')).trim().replace(/^refs\/heads\//, '') || null;
		const savedIndexTree = await indexTree(git);
		const tree = await worktreeTree(git);
		const indexCommit = (await git.run(['commit-tree', savedIndexTree, '-p', head], { env: identity, input: `agent-tabs: index of ${wt.path}\n` })).trim();
		const oneLine = (v: string): string => v.replace(/[\r\n]+/g, ' ');
		const message = [
			`agent-tabs: saved work before ${reason}`,
			'',
			`Session worktree ${oneLine(wt.path)} on ${branch ?? 'a detached HEAD'}.`,
			'',
			...(title ? [`${saveTrailers.title}: ${oneLine(title)}`] : []),
			`${saveTrailers.branch}: ${branch ?? ''}`,
			`${saveTrailers.format}: 2`,
		].join('\n');
		const commit = (await git.run(['commit-tree', tree, '-p', head, '-p', indexCommit], { env: identity, input: `${message}\n` })).trim();
		await this.verifyFolder(git, { head, branch, indexTree: savedIndexTree, worktreeTree: tree }, 'saveMismatch', 'The saved copy does not match the worktree');
		const entry = await addSave(git, wt.id, commit);
		const [changed, staged] = await Promise.all([git.zlist(['diff', '--name-only', '-z', head, tree]), git.zlist(['diff', '--name-only', '-z', head, savedIndexTree])]);
		this.worktrees.update(wt.id, { saved_ref: entry.ref });
		this.logger.info(`[Worktrees][save] ${wt.path}: HEAD ${head.slice(0, 12)} on ${branch ?? '(detached)'}, ${changed.length} files, ${staged.length} staged, saved as ${entry.ref}`);
		return { ref: entry.ref, commit, branch, head, files: changed.length, staged: staged.length };
	}

	/**
	 * Compares a worktree folder with what a save holds: the files by content (every file re-hashed, so equal
	 * sizes and times cannot hide a change), the index, HEAD and its branch. Any difference throws.
	 */
	private async verifyFolder(git: Git, expected: Pick<SaveContents, 'head' | 'indexTree' | 'worktreeTree'> & { branch: string | null }, code: string, what: string): Promise<void> {
		const differing = await withTempIndex(async (env) => {
			await git.run(['read-tree', expected.worktreeTree], { env });
			await git.run(['update-index', '-q', '--really-refresh'], { env }).catch(() => undefined);
			return [...(await git.zlist(['diff-files', '--name-only', '-z'], { env })), ...(await git.zlist(['ls-files', '--others', '--exclude-standard', '-z'], { env }))];
		});
		const problems: string[] = [];
		if (differing.length > 0) {
			problems.push(`files differ: ${differing.slice(0, 5).join(', ')}${differing.length > 5 ? ` and ${differing.length - 5} more` : ''}`);
		}
		if ((await indexTree(git).catch(() => '')) !== expected.indexTree) {
			problems.push('the staged files (index) differ');
		}
		if ((await git.run(['rev-parse', 'HEAD'])).trim() !== expected.head) {
			problems.push('HEAD moved');
		}
		const branch = (await git.run(['symbolic-ref', '--quiet', 'HEAD']).catch(() => '')).trim().replace(/^refs\/heads\//, '') || null;
		if (branch !== expected.branch) {
			problems.push(`HEAD is on ${branch ?? 'no branch'}, not ${expected.branch ?? 'a detached HEAD'}`);
		}
		if (problems.length > 0) {
			throw new AgentTabsError(`worktree/${code}`, `${what} (${problems.join('; ')}).`);
		}
	}

	/**
	 * The one way a worktree folder is removed: assess, refuse during a git operation or conflict, save what
	 * the worktree holds and verify it, record the intent (`removing`), then remove the folder. If saving
	 * fails, nothing is removed and the error says why. Interrupted at any point, the next start finishes it
	 * (see recoverInterrupted); a worktree already `removing` is never saved again (its folder may be half
	 * gone), only finished.
	 */
	async remove(worktreeId: string, reason: string): Promise<RemoveResult> {
		let wt = this.requireWorktree(worktreeId);
		if (wt.state === 'removing') {
			await this.finishRemoval(wt);
			const saved = await this.savedWork(this.requireWorktree(worktreeId));
			return { risk: await this.risk(worktreeId), saved, removedPath: wt.path };
		}
		const risk = await this.risk(worktreeId);
		if (risk.runningAgents.length > 0) {
			throw new AgentTabsError('worktree/busy', `Agents are still running in ${wt.path}: ${risk.runningAgents.join(', ')}. Stop them first; nothing was removed.`);
		}
		let saved: SavedWork | null = null;
		if (risk.exists) {
			const listed = parseWorktreeList(await this.git(wt.repo_root).run(['worktree', 'list', '--porcelain', '-z']));
			const entry = listed.find((e) => path.resolve(e.path) === path.resolve(wt.path));
			if (entry?.locked) {
				throw new AgentTabsError('worktree/locked', `${wt.path} is locked in git (git worktree lock), so it is left alone. Unlock it with "git worktree unlock ${wt.path}" to remove it.`);
			}
			if (risk.operation) {
				throw new AgentTabsError('worktree/operationInProgress', `${wt.path} has ${describeOperation(risk.operation)}. Run that in ${wt.path}, then try again. Nothing was removed.`);
			}
			if (risk.conflicts.length > 0) {
				throw new AgentTabsError('worktree/conflicts', `${wt.path} has unresolved conflicts in ${risk.conflicts.slice(0, 5).join(', ')}. Resolve them and stage the result ("git add"), or undo them with "git checkout -m <file>", then try again. Nothing was removed.`);
			}
			// The branch head too, under a private ref: its commits stay reachable even if someone deletes the branch.
			await this.git(wt.path).run(['update-ref', `refs/agent-tabs/heads/${wt.id}`, 'HEAD']).catch(() => undefined);
			try {
				saved = await this.save(worktreeId, reason);
			} catch (e) {
				throw new AgentTabsError('worktree/saveFailed', `Could not save the work in ${wt.path}, so it was not removed: ${errorMessage(e)}`, { cause: e });
			}
			// The intent is on disk before the folder is touched.
			this.worktrees.update(wt.id, { state: 'removing' });
			wt = this.requireWorktree(worktreeId);
			await this.finishRemoval(wt);
		} else {
			// Deleted by hand: nothing of the folder is left to save. Restore then starts from the branch; the
			// saves of earlier removals stay under refs/agent-tabs/saved/<id>/.
			this.logger.warn(`[Worktrees][remove] ${wt.path} was already gone; the branch ${wt.branch ?? '-'} is kept`);
			this.worktrees.update(wt.id, { saved_ref: null });
			await this.git(wt.repo_root).run(['worktree', 'prune']).catch(() => undefined);
			this.worktrees.update(wt.id, { state: 'removed' });
		}
		return { risk, saved, removedPath: wt.path };
	}

	/** Second half of a removal whose save is recorded: the folder goes, the row says `removed`. */
	private async finishRemoval(wt: WorktreeRow): Promise<void> {
		await this.deleteFolder(wt);
		this.worktrees.update(wt.id, { state: 'removed' });
	}

	/** The save a row points to, read back; null when it has none (or its ref is gone). */
	private async savedWorkContents(wt: WorktreeRow): Promise<(SaveContents & { ref: string }) | null> {
		const git = this.git(wt.repo_root);
		const entry = wt.saved_ref ? await resolveSavedRef(git, wt.id, wt.saved_ref).catch(() => null) : null;
		return entry ? { ...(await readSave(git, entry.commit)), ref: entry.ref } : null;
	}

	private async savedWork(wt: WorktreeRow): Promise<SavedWork | null> {
		const save = await this.savedWorkContents(wt);
		if (!save) {
			return null;
		}
		const entry = { ref: save.ref, commit: save.commit };
		const git = this.git(wt.repo_root);
		const [changed, staged] = await Promise.all([git.zlist(['diff', '--name-only', '-z', save.head, save.worktreeTree]), git.zlist(['diff', '--name-only', '-z', save.head, save.indexTree])]);
		return { ref: entry.ref, commit: entry.commit, branch: save.branch === undefined ? wt.branch : save.branch, head: save.head, files: changed.length, staged: staged.length };
	}

	/** Deletes a session: its worktree is saved and removed (the branch and the saved ref stay). */
	async deleteSession(sessionId: string): Promise<RemoveResult | null> {
		const wt = this.worktrees.forSession(sessionId);
		const result = wt && wt.state !== 'removed' ? await this.remove(wt.id, 'the session was deleted') : null;
		this.sessions.delete(sessionId);
		return result;
	}

	/** Archives a session: its worktree folder is saved and removed; "Restore Session" brings it back. */
	async archiveSession(sessionId: string): Promise<RemoveResult | null> {
		const wt = this.worktrees.forSession(sessionId);
		const result = wt && wt.state !== 'removed' ? await this.remove(wt.id, 'the session was archived') : null;
		this.sessions.setStatus(sessionId, 'archived');
		return result;
	}

	/**
	 * Gives a detached worktree (its session was deleted, or it was adopted) a new session. A worktree whose
	 * folder was removed is restored from its branch and saved ref on the way.
	 */
	async attachWorktree(worktreeId: string, title?: string): Promise<{ session: SessionRow; worktree: WorktreeRow }> {
		const wt = this.requireWorktree(worktreeId);
		if (wt.session_id) {
			throw new AgentTabsError('worktree/attached', `${wt.path} already belongs to a session.`);
		}
		// The title the session had, when its saved work recorded it.
		const savedTitle = (await this.savedWorkContents(wt))?.title;
		const session = this.sessions.create({ title: title ?? savedTitle ?? wt.branch?.replace(/^agent-tabs[^/]*\//, '') ?? path.basename(wt.path), baseRef: wt.base_ref ?? undefined, repoRoot: wt.repo_root });
		this.worktrees.update(wt.id, { session_id: session.id });
		const worktree = wt.state === 'ready' && fs.existsSync(wt.path) ? this.worktrees.get(wt.id)! : await this.restoreSession(session.id);
		markOwned(worktree.path, { worktreeId: wt.id, sessionId: session.id, stateDir: this.stateDir });
		return { session: this.sessions.get(session.id)!, worktree };
	}

	/**
	 * Recreates the worktree exactly as it was saved: HEAD on its branch (or detached, as it was), the index
	 * with its staged and partly staged files, and the working folder with untracked files. The intent
	 * (`restoring`) is recorded first; the result is verified against the save before it counts as restored,
	 * and a failed or interrupted restore removes its partial folder again (the save and the branch are
	 * untouched). Without a save (the folder was deleted by hand before removal) it comes back from the branch.
	 */
	async restoreSession(sessionId: string): Promise<WorktreeRow> {
		const session = this.sessions.get(sessionId);
		let wt = this.worktrees.forSession(sessionId);
		if (!session || !wt) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId} with a worktree to restore.`);
		}
		if (wt.state === 'ready' && fs.existsSync(wt.path)) {
			this.sessions.setStatus(sessionId, 'active');
			return wt;
		}
		if (wt.state === 'removing' || wt.state === 'restoring' || wt.state === 'creating') {
			await this.recoverRow(wt);
			wt = this.worktrees.forSession(sessionId);
			if (!wt) {
				throw new AgentTabsError('session/unknown', `The session ${sessionId} had not finished being created, so there is nothing to restore.`);
			}
		}
		const git = this.git(wt.repo_root);
		await git.run(['worktree', 'prune']).catch(() => undefined);
		const entry = wt.saved_ref ? await resolveSavedRef(git, wt.id, wt.saved_ref) : null;
		if (wt.saved_ref && !entry) {
			throw new AgentTabsError('worktree/noSave', `The saved work ${wt.saved_ref} of this session no longer exists in ${wt.repo_root}; nothing was restored.`);
		}
		const save = entry ? await readSave(git, entry.commit) : null;
		const branch = save && save.branch !== undefined ? save.branch : wt.branch;
		const tip = branch ? (await git.run(['rev-parse', '--verify', '--quiet', `refs/heads/${branch}^{commit}`]).catch(() => '')).trim() : '';
		if (!save && !tip) {
			throw new AgentTabsError('worktree/noBranch', `The branch ${wt.branch ?? '(none)'} of this session no longer exists and no save of its folder was kept; nothing was restored.`);
		}
		const head = save?.head ?? tip;
		const expected = { head, indexTree: save?.indexTree ?? (await git.run(['rev-parse', `${head}^{tree}`])).trim(), worktreeTree: save?.worktreeTree ?? (await git.run(['rev-parse', `${head}^{tree}`])).trim() };
		if (fs.existsSync(wt.path) && fs.readdirSync(wt.path).length > 0) {
			throw new AgentTabsError('worktree/pathTaken', `${wt.path} exists and is not empty; move it away to restore the session there.`);
		}
		// HEAD goes back on its branch; a branch deleted since is recreated where it was; a branch that moved
		// on since (new commits made elsewhere) is left alone and HEAD comes back detached at the saved commit.
		let addArgs: string[];
		let expectedBranch: string | null = branch;
		if (branch && tip === head) {
			addArgs = [wt.path, branch];
		} else if (branch && !tip) {
			addArgs = ['-b', branch, wt.path, head];
		} else {
			if (branch) {
				this.logger.warn(`[Worktrees][restore] ${branch} moved since the save (now ${tip.slice(0, 12)}, saved at ${head.slice(0, 12)}); ${wt.path} comes back detached at the saved commit`);
			}
			expectedBranch = null;
			addArgs = ['--detach', wt.path, head];
		}
		const before = wt.state === 'ready' ? 'missing' : wt.state;
		this.worktrees.update(wt.id, { state: 'restoring' });
		try {
			await git.run(['worktree', 'add', '--no-checkout', ...addArgs]);
			const wtGit = this.git(wt.path);
			// The folder from the working-tree tree, then the index from the index tree; stat data refreshed.
			await wtGit.run(['read-tree', '-u', '--reset', expected.worktreeTree]);
			await wtGit.run(['read-tree', '--reset', expected.indexTree]);
			await wtGit.run(['update-index', '-q', '--refresh']).catch(() => undefined);
			await this.verifyFolder(wtGit, { ...expected, branch: expectedBranch }, 'restoreMismatch', `The restored folder ${wt.path} does not match the save`);
			markOwned(wt.path, { worktreeId: wt.id, sessionId, stateDir: this.stateDir });
		} catch (e) {
			await this.deleteFolder(wt).catch((r: unknown) => this.logger.error(`[Worktrees][restore] cleanup: ${errorMessage(r)}`));
			this.worktrees.update(wt.id, { state: before });
			throw new AgentTabsError('worktree/restoreFailed', `Could not restore ${wt.path}: ${errorMessage(e)} Nothing was changed${entry ? `; the saved work is still in ${entry.ref}` : ''}.`, { cause: e });
		}
		// Ignored files (.env, dependencies) are not in the save: the setup step puts them back as on creation.
		await this.setup(wt.repo_root, wt.path);
		this.worktrees.update(wt.id, { state: 'ready' });
		this.sessions.setStatus(sessionId, 'active');
		return this.worktrees.get(wt.id)!;
	}

	/**
	 * Merges the session branch into its base branch in the main checkout: a merge commit, a squash commit,
	 * or a rebase of the branch onto the base followed by a fast-forward. Refuses, changing nothing, when the
	 * main checkout is dirty or on another branch, when the session has uncommitted work, or on a conflict.
	 */
	async mergeSession(sessionId: string, strategy: 'merge' | 'squash' | 'rebase'): Promise<{ strategy: string; commit: string; message: string }> {
		const session = this.sessions.get(sessionId);
		const wt = this.worktrees.forSession(sessionId);
		if (!session || !wt || !wt.branch) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId} with a branch to merge.`);
		}
		const base = wt.base_ref;
		const main = this.git(wt.repo_root);
		if (!base || !(await main.ok(['rev-parse', '--verify', '--quiet', `refs/heads/${base}`]))) {
			throw new AgentTabsError('merge/noBase', `The session was started from ${base ?? 'a detached HEAD'}, which is not a branch to merge into.`);
		}
		const current = (await main.run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim();
		if (current !== base) {
			throw new AgentTabsError('merge/wrongBranch', `The main checkout ${wt.repo_root} is on ${current || 'a detached HEAD'}; check out ${base} there to merge into it.`);
		}
		if ((await main.zlist(['status', '--porcelain', '-z', '--untracked-files=no'])).length > 0) {
			throw new AgentTabsError('merge/dirtyMain', `The main checkout ${wt.repo_root} has uncommitted changes; commit or stash them first. Nothing was merged.`);
		}
		if (fs.existsSync(wt.path) && (await this.git(wt.path).zlist(['status', '--porcelain', '-z'])).length > 0) {
			throw new AgentTabsError('merge/dirtySession', `The session's worktree has uncommitted work; commit it first so it is part of the merge. Nothing was merged.`);
		}
		const ahead = await main.lines(['rev-list', `${base}..refs/heads/${wt.branch}`]);
		// By content, not reachability: after a squash merge the branch's commits are still "ahead".
		const unmerged = (await assessRisk(main, { path: wt.path, branch: wt.branch, baseRef: base })).unmerged;
		if (ahead.length === 0 || unmerged.length === 0) {
			throw new AgentTabsError('merge/nothing', `${wt.branch} has no commits that ${base} does not have.`);
		}
		const conflict = async (abort: string[], where: Git): Promise<never> => {
			const files = await where.zlist(['diff', '--name-only', '--diff-filter=U', '-z']).catch(() => []);
			await where.run(abort).catch(() => undefined);
			throw new AgentTabsError('merge/conflict', `Merging ${wt.branch} into ${base} conflicts in ${files.join(', ') || 'some files'}; a person needs to resolve that. Nothing was changed.`);
		};
		const identityEnv = { GIT_COMMITTER_NAME: process.env.GIT_COMMITTER_NAME ?? 'Agent Tabs', GIT_COMMITTER_EMAIL: process.env.GIT_COMMITTER_EMAIL ?? 'agent-tabs@localhost' };
		if (strategy === 'merge') {
			try {
				await main.run(['merge', '--no-ff', '--no-edit', '-m', `Merge ${wt.branch}: ${session.title}`, `refs/heads/${wt.branch}`], { env: identityEnv });
			} catch (e) {
				if (e instanceof GitError) {
					await conflict(['merge', '--abort'], main);
				}
				throw e;
			}
		} else if (strategy === 'squash') {
			try {
				await main.run(['merge', '--squash', `refs/heads/${wt.branch}`]);
			} catch (e) {
				if (e instanceof GitError) {
					await conflict(['reset', '--merge'], main);
				}
				throw e;
			}
			await main.run(['commit', '-q', '-m', `${session.title}\n\nSquashed from ${wt.branch} (${ahead.length} commits) by Agent Tabs.`], { env: identityEnv });
		} else {
			const wtGit = this.git(wt.path);
			try {
				await wtGit.run(['rebase', base], { env: identityEnv });
			} catch (e) {
				if (e instanceof GitError) {
					await conflict(['rebase', '--abort'], wtGit);
				}
				throw e;
			}
			await main.run(['merge', '--ff-only', `refs/heads/${wt.branch}`]);
		}
		const commit = (await main.run(['rev-parse', 'HEAD'])).trim();
		return { strategy, commit, message: `${wt.branch} is in ${base} (${strategy}, ${commit.slice(0, 12)}).` };
	}

	/** Pushes the session branch and opens a pull request with the GitHub CLI, when it is installed. */
	async createPullRequest(sessionId: string, ghPath: string | undefined): Promise<string> {
		const session = this.sessions.get(sessionId);
		const wt = this.worktrees.forSession(sessionId);
		if (!session || !wt || !wt.branch) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId} with a branch.`);
		}
		if (!ghPath) {
			throw new AgentTabsError('pr/noGh', 'Creating a pull request needs the GitHub CLI (gh). Install it and run "gh auth login", or push the branch and open the pull request yourself.');
		}
		const git = this.git(wt.path);
		await git.run(['push', '-u', 'origin', wt.branch]);
		return new Promise((resolve, reject) => {
			const child = spawn(ghPath, ['pr', 'create', '--head', wt.branch!, '--base', wt.base_ref ?? 'main', '--title', session.title, '--body', `Work from the Agent Tabs session "${session.title}".`], {
				cwd: wt.path,
				env: this.options.env ?? process.env,
				stdio: ['ignore', 'pipe', 'pipe'],
			});
			let out = '';
			let err = '';
			child.stdout.on('data', (d) => (out += String(d)));
			child.stderr.on('data', (d) => (err += String(d)));
			child.on('error', reject);
			child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new AgentTabsError('pr/failed', `gh pr create failed: ${err.trim() || `exit ${code}`}`))));
		});
	}

	/** Records the worktree's state before a turn; the ref lets the chat rewind to it later. */
	async checkpoint(cwd: string, name: string): Promise<string> {
		const ref = `${checkpointRefPrefix}${name}`;
		await snapshotCommit(this.git(cwd), ref, `agent-tabs: checkpoint ${name}`);
		await this.pruneCheckpoints(cwd, name.split('/')[0]!);
		return ref;
	}

	/**
	 * Deletes a chat's checkpoints beyond its last `checkpointsPerChat` turns, except those of turns with a
	 * pending change; the turns forget them, so rewind is not offered for them. Never fails the turn.
	 */
	async pruneCheckpoints(cwd: string, chatId: string): Promise<string[]> {
		const transcript = new TranscriptRepo(this.store);
		const refs = transcript.prunableCheckpoints(chatId, this.options.checkpointsPerChat ?? defaultCheckpointsPerChat);
		if (refs.length === 0) {
			return [];
		}
		try {
			transcript.forgetCheckpoints(refs);
			await deleteCheckpointRefs(this.git(cwd), refs);
			return refs;
		} catch (e) {
			this.logger.warn(`[WorktreeService][pruneCheckpoints] ${chatId}: ${errorMessage(e)}`);
			return [];
		}
	}

	/** Puts the worktree back to a checkpoint; what it replaces is recorded first, so nothing is lost. */
	async rewind(cwd: string, checkpointRef: string): Promise<{ replacedRef: string; files: string[] }> {
		return restoreCheckpoint(this.git(cwd), checkpointRef);
	}

	/**
	 * Start-up reconciliation with `git worktree list`: rows whose folder vanished are marked missing (their
	 * branch is never deleted); worktrees under our root that we do not know are adopted as detached, unless
	 * their owner mark says another state folder holds them (a window opened on a session's worktree, the
	 * CLI): those belong to a session elsewhere and are left alone. Our own live worktrees get a mark if they
	 * lack one (made before marks existed).
	 */
	async reconcile(repoInput: string): Promise<{ missing: string[]; adopted: string[]; recovered: RecoveryReport }> {
		const repo = await this.resolveRepository(repoInput);
		const recovered = await this.recoverInterrupted(repo);
		const listed = parseWorktreeList(await this.git(repo).run(['worktree', 'list', '--porcelain', '-z']));
		const livePaths = new Set(listed.filter((e) => !e.prunable).map((e) => path.resolve(e.path)));
		const missing: string[] = [];
		for (const row of this.worktrees.list()) {
			if (row.repo_root === repo && row.state === 'ready' && (!fs.existsSync(row.path) || !livePaths.has(path.resolve(row.path)))) {
				this.worktrees.update(row.id, { state: 'missing' });
				missing.push(row.path);
			} else if (row.repo_root === repo && row.state === 'ready' && !readOwnerMark(row.path)) {
				try {
					markOwned(row.path, { worktreeId: row.id, sessionId: row.session_id, stateDir: this.stateDir });
				} catch (e) {
					this.logger.debug(`[Worktrees][reconcile] could not mark ${row.path}: ${errorMessage(e)}`);
				}
			}
		}
		const root = this.worktreeRoot(repo);
		const adopted: string[] = [];
		for (const e of listed) {
			const p = path.resolve(e.path);
			const mark = readOwnerMark(p);
			if (!e.prunable && p.startsWith(root + path.sep) && !this.worktrees.byPath(p) && (!mark || path.resolve(mark.stateDir) === path.resolve(this.stateDir))) {
				this.worktrees.insert({ id: newId('wt'), session_id: null, repo_root: repo, path: p, branch: e.branch ?? null, base_ref: null, base_commit: null, state: 'ready' });
				adopted.push(p);
			}
		}
		return { missing, adopted, recovered };
	}

	/**
	 * What a start-up does first: steps a killed process left half-done are finished or undone from what
	 * is safe. A removal (`removing`) was saved and verified before its folder was touched, so it is
	 * finished and its session archived (restorable). A restore (`restoring`) is undone: its partial folder
	 * is rebuilt from the same save on the next restore. A creation (`creating`) is rolled back. Temporary
	 * index files of dead processes are removed. `repo` limits it to one repository.
	 */
	async recoverInterrupted(repo?: string): Promise<RecoveryReport> {
		const report: RecoveryReport = { completedRemovals: [], undoneRestores: [], rolledBackCreates: [], removedTempFiles: removeStaleTempIndexes() };
		for (const row of this.worktrees.list()) {
			if (repo !== undefined && row.repo_root !== repo) {
				continue;
			}
			try {
				const done = await this.recoverRow(row);
				if (done) {
					report[done].push(row.path);
				}
			} catch (e) {
				this.logger.error(`[Worktrees][recover] ${row.path} (${row.state}): ${errorMessage(e)}`);
			}
		}
		if (report.completedRemovals.length + report.undoneRestores.length + report.rolledBackCreates.length > 0) {
			this.logger.warn(
				`[Worktrees][recover] after an interruption: removals finished: ${report.completedRemovals.join(', ') || '-'}; restores undone: ${report.undoneRestores.join(', ') || '-'}; creations rolled back: ${report.rolledBackCreates.join(', ') || '-'}`,
			);
		}
		return report;
	}

	private async recoverRow(row: WorktreeRow): Promise<'completedRemovals' | 'undoneRestores' | 'rolledBackCreates' | null> {
		switch (row.state) {
			case 'removing':
				await this.finishRemoval(row);
				if (row.session_id && this.sessions.get(row.session_id)?.status === 'active') {
					this.sessions.setStatus(row.session_id, 'archived');
				}
				return 'completedRemovals';
			case 'restoring':
				await this.deleteFolder(row);
				this.worktrees.update(row.id, { state: 'removed' });
				return 'undoneRestores';
			case 'creating':
				await this.rollBackCreate(row);
				return 'rolledBackCreates';
			default:
				return null;
		}
	}
}

/**
 * Copies one file or symlink whose name is not UTF-8 (a Latin-1 `café.txt`): fs reaches such a name only as
 * a Buffer path, which cpSync does not take. Mode and times are kept as cpSync keeps them.
 */
function copyNonUtf8Named(fromRoot: string, toRoot: string, rel: Buffer): void {
	const source = Buffer.concat([Buffer.from(`${fromRoot}/`), rel]);
	const target = Buffer.concat([Buffer.from(`${toRoot}/`), rel]);
	fs.mkdirSync(target.subarray(0, target.lastIndexOf(0x2f)), { recursive: true });
	const stat = fs.lstatSync(source);
	if (stat.isSymbolicLink()) {
		fs.symlinkSync(fs.readlinkSync(source, { encoding: 'buffer' }), target);
		return;
	}
	fs.copyFileSync(source, target);
	fs.utimesSync(target, stat.atime, stat.mtime);
}
