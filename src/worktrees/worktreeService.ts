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
import { checkpointRefPrefix, deleteCheckpointRefs, restoreCheckpoint, snapshotCommit } from './checkpoints';
import { assessRisk, type RiskReport } from './risk';

export interface WorktreeOptions {
	/** Where worktrees are created; default `~/.agent-tabs/worktrees/<repo>-<hash>`. */
	root?: string;
	/** Globs (simple: `*` within one path segment) of files copied from the main checkout, default `.env*`. */
	copy?: string[];
	/** A shell command run in a new worktree (install dependencies...). */
	setupCommand?: string;
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
	/** The private ref holding the save commit (its parent is the branch head). */
	ref: string;
	commit: string;
	/** The branch, kept. */
	branch: string | null;
	files: number;
}

export interface RemoveResult {
	risk: RiskReport;
	saved: SavedWork | null;
	removedPath: string;
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

	constructor(
		private readonly store: Store,
		private readonly logger: Logger,
		private readonly options: WorktreeOptions = {},
	) {
		this.sessions = new SessionsRepo(store);
		this.worktrees = new WorktreesRepo(store);
	}

	private git(cwd: string): Git {
		return new Git(cwd, this.options.env);
	}

	/** The repository's top folder, or a plain-words error for everything that is not a usable repository. */
	async resolveRepository(dir: string): Promise<string> {
		if (!fs.existsSync(dir)) {
			throw new AgentTabsError('repo/missing', `The folder ${dir} does not exist.`);
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
	 * A new session and its worktree: outside the repository, on `agent-tabs/<slug>` from `baseRef` (default
	 * the current HEAD), optionally carrying the main checkout's uncommitted changes, then the setup step.
	 */
	async createSession(input: { repo: string; title: string; baseRef?: string; carryChanges?: boolean }): Promise<{ session: SessionRow; worktree: WorktreeRow }> {
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
		fs.mkdirSync(root, { recursive: true });
		const slug = slugify(input.title);
		let branch = '';
		let wtPath = '';
		for (let n = 1; n < 1000; n++) {
			const suffix = n === 1 ? '' : `-${n}`;
			const candidateBranch = `agent-tabs/${slug}${suffix}`;
			const candidatePath = path.join(root, `${slug}${suffix}`);
			if (!(await git.ok(['rev-parse', '--verify', '--quiet', `refs/heads/${candidateBranch}`])) && !fs.existsSync(candidatePath) && !this.worktrees.byPath(candidatePath)) {
				branch = candidateBranch;
				wtPath = candidatePath;
				// Claim the folder at once so a second session created at the same moment picks another name.
				try {
					fs.mkdirSync(candidatePath);
				} catch {
					continue;
				}
				break;
			}
		}
		if (!branch) {
			throw new AgentTabsError('worktree/names', `No free branch name for "${input.title}".`);
		}
		const session = this.sessions.create({ title: input.title, baseRef, repoRoot: repo });
		const worktree = this.worktrees.insert({ id: newId('wt'), session_id: session.id, repo_root: repo, path: wtPath, branch, base_ref: baseRef, base_commit: baseCommit, state: 'creating' });
		try {
			fs.rmdirSync(wtPath);
			await git.run(['worktree', 'add', '-b', branch, wtPath, baseCommit]);
			if (input.carryChanges) {
				await this.carryChanges(repo, wtPath);
			}
			await this.setup(repo, wtPath);
			this.worktrees.update(worktree.id, { state: 'ready' });
		} catch (e) {
			this.worktrees.update(worktree.id, { state: 'failed' });
			this.logger.error(`[Worktrees][create] ${errorMessage(e)}`);
			throw e;
		}
		return { session, worktree: this.worktrees.get(worktree.id)! };
	}

	private async carryChanges(repo: string, wtPath: string): Promise<void> {
		const git = this.git(repo);
		const stash = (await git.run(['stash', 'create'])).trim();
		if (stash) {
			await this.git(wtPath).run(['stash', 'apply', stash]);
		}
		for (const rel of await git.zlist(['ls-files', '--others', '--exclude-standard', '-z'])) {
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
		const command = this.options.setupCommand?.trim();
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
		return assessRisk(this.git(wt.repo_root), {
			path: wt.path,
			branch: wt.branch,
			baseRef: wt.base_ref,
			runningAgents: wt.session_id ? (this.options.runningAgents?.(wt.session_id) ?? []) : [],
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
	 * Saves every file of the worktree that differs from its HEAD (staged, unstaged, untracked, binary,
	 * executable bits) as one commit on top of HEAD, built through a temporary index so the worktree's own
	 * index is untouched, pointed to by `refs/agent-tabs/saved/<worktree id>`. Returns null when there is
	 * nothing to save. Verified: the saved tree must equal the worktree byte for byte, or this throws.
	 */
	async save(worktreeId: string, reason: string): Promise<SavedWork | null> {
		const wt = this.requireWorktree(worktreeId);
		const git = this.git(wt.path);
		const ref = `refs/agent-tabs/saved/${wt.id}`;
		const title = wt.session_id ? this.sessions.get(wt.session_id)?.title : undefined;
		const message = `agent-tabs: saved work before ${reason}\n\nSession worktree ${wt.path} on ${wt.branch ?? 'a detached HEAD'}.${title ? `\nSession-Title: ${title}` : ''}`;
		const snap = await snapshotCommit(git, ref, message);
		if (!snap.dirty) {
			await git.run(['update-ref', '-d', ref]).catch(() => undefined);
			return null;
		}
		try {
			await this.verifySaved(git, snap.tree);
		} catch (e) {
			await git.run(['update-ref', '-d', ref]).catch(() => undefined);
			throw e;
		}
		const changed = await git.zlist(['diff', '--name-only', '-z', snap.head, snap.commit]);
		this.worktrees.update(wt.id, { saved_ref: ref });
		this.logger.info(`[Worktrees][save] ${changed.length} files of ${wt.path} saved as ${ref} (${snap.commit.slice(0, 12)})`);
		return { ref, commit: snap.commit, branch: wt.branch, files: changed.length };
	}

	/** The worktree's files compared with `tree` by content: any difference or unsaved file aborts. */
	private async verifySaved(git: Git, tree: string): Promise<void> {
		const verifyIndex = path.join(os.tmpdir(), `agent-tabs-verify-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
		const env = { GIT_INDEX_FILE: verifyIndex };
		try {
			await git.run(['read-tree', tree], { env });
			// Re-hash every file instead of trusting stat data, so equal sizes and times cannot hide a change.
			await git.run(['update-index', '-q', '--really-refresh'], { env }).catch(() => undefined);
			const differing = await git.zlist(['diff-files', '--name-only', '-z'], { env });
			const unsaved = await git.zlist(['ls-files', '--others', '--exclude-standard', '-z'], { env });
			if (differing.length > 0 || unsaved.length > 0) {
				throw new AgentTabsError('worktree/saveMismatch', `The saved copy does not match the worktree (${[...differing, ...unsaved].slice(0, 5).join(', ')}); nothing was removed.`);
			}
		} finally {
			fs.rmSync(verifyIndex, { force: true });
		}
	}

	/**
	 * The one way a worktree folder is removed: assess, save what would be lost, verify, keep the branch,
	 * then remove. If saving fails, nothing is removed and the error says why.
	 */
	async remove(worktreeId: string, reason: string): Promise<RemoveResult> {
		const wt = this.requireWorktree(worktreeId);
		const risk = await this.risk(worktreeId);
		if (risk.runningAgents.length > 0) {
			throw new AgentTabsError('worktree/busy', `Agents are still running in ${wt.path}; stop them first.`);
		}
		const listed = parseWorktreeList(await this.git(wt.repo_root).run(['worktree', 'list', '--porcelain', '-z']));
		const entry = listed.find((e) => path.resolve(e.path) === path.resolve(wt.path));
		if (entry?.locked) {
			throw new AgentTabsError('worktree/locked', `${wt.path} is locked in git (git worktree lock), so it is left alone. Unlock it with "git worktree unlock ${wt.path}" to remove it.`);
		}
		let saved: SavedWork | null = null;
		if (risk.exists) {
			// The branch head too, under a private ref: its commits stay reachable even if someone deletes the branch.
			await this.git(wt.path).run(['update-ref', `refs/agent-tabs/heads/${wt.id}`, 'HEAD']).catch(() => undefined);
			try {
				saved = await this.save(worktreeId, reason);
			} catch (e) {
				throw new AgentTabsError('worktree/saveFailed', `Could not save the work in ${wt.path}, so it was not removed: ${errorMessage(e)}`, { cause: e });
			}
			const git = this.git(wt.repo_root);
			await git.run(['worktree', 'remove', '--force', wt.path]);
		}
		await this.git(wt.repo_root).run(['worktree', 'prune']).catch(() => undefined);
		this.worktrees.update(wt.id, { state: 'removed' });
		return { risk, saved, removedPath: wt.path };
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
		const savedTitle = wt.saved_ref ? /^Session-Title: (.+)$/m.exec(await this.git(wt.repo_root).run(['log', '-1', '--format=%B', wt.saved_ref]).catch(() => ''))?.[1] : undefined;
		const session = this.sessions.create({ title: title ?? savedTitle ?? wt.branch?.replace(/^agent-tabs\//, '') ?? path.basename(wt.path), baseRef: wt.base_ref ?? undefined, repoRoot: wt.repo_root });
		this.worktrees.update(wt.id, { session_id: session.id });
		const worktree = wt.state === 'ready' && fs.existsSync(wt.path) ? this.worktrees.get(wt.id)! : await this.restoreSession(session.id);
		return { session: this.sessions.get(session.id)!, worktree };
	}

	/** Recreates the worktree from its branch and saved ref, files exactly as they were. */
	async restoreSession(sessionId: string): Promise<WorktreeRow> {
		const session = this.sessions.get(sessionId);
		const wt = this.worktrees.forSession(sessionId);
		if (!session || !wt) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId} with a worktree to restore.`);
		}
		if (wt.state === 'ready' && fs.existsSync(wt.path)) {
			this.sessions.setStatus(sessionId, 'active');
			return wt;
		}
		const git = this.git(wt.repo_root);
		await git.run(['worktree', 'prune']).catch(() => undefined);
		if (!wt.branch || !(await git.ok(['rev-parse', '--verify', '--quiet', `refs/heads/${wt.branch}`]))) {
			throw new AgentTabsError('worktree/noBranch', `The branch ${wt.branch ?? '(none)'} of this session no longer exists${wt.saved_ref ? `; the saved work is still in ${wt.saved_ref}` : ''}.`);
		}
		if (fs.existsSync(wt.path) && fs.readdirSync(wt.path).length > 0) {
			throw new AgentTabsError('worktree/pathTaken', `${wt.path} exists and is not empty; move it away to restore the session there.`);
		}
		await git.run(['worktree', 'add', wt.path, wt.branch]);
		if (wt.saved_ref && (await git.ok(['rev-parse', '--verify', '--quiet', wt.saved_ref]))) {
			const savedParent = (await git.run(['rev-parse', `${wt.saved_ref}^`])).trim();
			const wtGit = this.git(wt.path);
			// Apply the saved changes on top of the branch without committing: changed files come back
			// modified and new files untracked, as they were.
			const patch = await git.run(['diff', '--binary', '--full-index', savedParent, wt.saved_ref]);
			if (patch.trim()) {
				await wtGit.run(['apply', '--whitespace=nowarn', '--binary', '-'], { input: patch });
			}
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
	 * branch is never deleted); worktrees under our root that we do not know are adopted as detached.
	 */
	async reconcile(repoInput: string): Promise<{ missing: string[]; adopted: string[] }> {
		const repo = await this.resolveRepository(repoInput);
		const listed = parseWorktreeList(await this.git(repo).run(['worktree', 'list', '--porcelain', '-z']));
		const livePaths = new Set(listed.filter((e) => !e.prunable).map((e) => path.resolve(e.path)));
		const missing: string[] = [];
		for (const row of this.worktrees.list()) {
			if (row.repo_root === repo && row.state === 'ready' && (!fs.existsSync(row.path) || !livePaths.has(path.resolve(row.path)))) {
				this.worktrees.update(row.id, { state: 'missing' });
				missing.push(row.path);
			}
		}
		const root = this.worktreeRoot(repo);
		const adopted: string[] = [];
		for (const e of listed) {
			const p = path.resolve(e.path);
			if (!e.prunable && p.startsWith(root + path.sep) && !this.worktrees.byPath(p)) {
				this.worktrees.insert({ id: newId('wt'), session_id: null, repo_root: repo, path: p, branch: e.branch ?? null, base_ref: null, base_commit: null, state: 'ready' });
				adopted.push(p);
			}
		}
		return { missing, adopted };
	}
}
