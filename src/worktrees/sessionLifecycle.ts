import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentTabsError, CancelledError } from '../common/errors';
import { newId } from '../common/ids';
import { errorMessage } from '../common/log';
import type { SessionRow } from '../db/sessionsRepo';
import { makeFolders } from '../db/folders';
import type { WorktreeRow } from '../db/worktreesRepo';
import { type Git, GitError, gitSays, parseWorktreeList, withoutGitLocation } from './gitClient';
import { endProcessTree } from './gitProcess';
import { markOwned, readOwnerMark } from './ownership';
import { gitFileTarget, realPathLoose, refuseRootInsideCheckouts, samePath, withoutFinalNewline } from './paths';
import { assessRisk, describeLockedAway } from './risk';
import type { WorktreeContext } from './worktreeContext';

/**
 * Namespaces for session branches, in order of preference. The first is the documented one; the others are
 * for repositories where a branch named like the namespace itself makes git refuse every branch under it.
 */
export const sessionBranchPrefixes = ['agent-tabs', 'agent-tabs-sessions', 'agent-tabs-2', 'agent-tabs-3', 'agent-tabs-4', 'agent-tabs-5'] as const;

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
 * A session's worktree coming into being and going away again: the repository it starts from, where its
 * folder goes, its branch name, carrying the main checkout's changes, the setup step, and undoing a
 * creation that did not finish. Saving and removing a worktree with work in it is the custody's
 * (custody.ts); this room only deletes folders that hold no work (a rollback) or are already saved.
 */
export class SessionLifecycle {
	constructor(private readonly ctx: WorktreeContext) {}

	/** The repository's top folder, or a plain-words error for everything that is not a usable repository. */
	async resolveRepository(dir: string): Promise<string> {
		return (await this.resolveCheckout(dir)).repo;
	}

	/**
	 * The repository a folder belongs to (its main checkout: sessions of all its worktrees are one list) and
	 * the checkout the folder is in (the main one, or a linked worktree of the user's own): a new session
	 * starts from what that checkout has, as the user sees it.
	 */
	async resolveCheckout(dir: string): Promise<{ repo: string; checkout: string }> {
		if (!fs.existsSync(dir)) {
			throw new AgentTabsError('repo/missing', `The folder ${dir} does not exist.`);
		}
		if (!fs.statSync(dir).isDirectory()) {
			throw new AgentTabsError('repo/notFolder', `${dir} is a file, not a folder: give the repository's folder.`);
		}
		const git = this.ctx.git(dir);
		let inside: string;
		let top: string;
		try {
			// Inside a work tree?, and its top folder: a folder name may end in a space or hold a line break, so
			// only the line break git adds is taken off, and the folder is all that follows the first line.
			const answer = withoutFinalNewline(await git.run(['rev-parse', '--is-inside-work-tree', '--show-toplevel']));
			const cut = answer.indexOf('\n');
			inside = cut < 0 ? answer : answer.slice(0, cut);
			top = cut < 0 ? '' : answer.slice(cut + 1);
		} catch (e) {
			if (e instanceof GitError) {
				// A repository another user owns (a shared or mounted folder, a container's): git refuses it unless
				// it is allowed with safe.directory. Its reason and its fix, not "not a git repository".
				const unsafe = /detected dubious ownership in repository at '(.+)'/.exec(e.stderr)?.[1];
				if (unsafe) {
					// Quoted for the shell the user types it in: cmd and PowerShell take double quotes, not single.
					const quoted = !/[\s"'$`\\]/.test(unsafe) ? unsafe : process.platform === 'win32' ? `"${unsafe}"` : `'${unsafe.replace(/'/g, `'\\''`)}'`;
					throw new AgentTabsError('repo/unsafe', `Git refuses to work in ${unsafe}: the repository belongs to another user ("detected dubious ownership"). If you trust it, allow it with "git config --global --add safe.directory ${quoted}" and try again.`, { cause: e });
				}
				if (await git.ok(['rev-parse', '--is-bare-repository'])) {
					throw new AgentTabsError('repo/bare', `${dir} is a bare git repository: it has no working folder to start sessions from. Clone it first.`);
				}
				throw new AgentTabsError('repo/notGit', `${dir} is not a git repository. Sessions need git (run "git init" there first).`);
			}
			throw e;
		}
		if (inside !== 'true' || !top) {
			throw new AgentTabsError('repo/bare', `${dir} is a bare git repository: it has no working folder to start sessions from.`);
		}
		// A worktree of another repository: use its main checkout as the repository. Git prints the common
		// folder relative to the folder it ran in (a subfolder, say), which it sees by its real path.
		const common = path.resolve(fs.realpathSync(dir), withoutFinalNewline(await git.run(['rev-parse', '--git-common-dir'])));
		return { repo: await this.repositoryFolder(common, top), checkout: top };
	}

	/**
	 * The one folder that stands for a repository whichever of its checkouts a folder is in, so its sessions
	 * are one list: the main checkout; for a bare repository worked on through worktrees of its own, the
	 * folder holding it (`proj` for `proj/.git`, and for `proj/.bare` when `proj/.git` points there), else
	 * the bare repository itself (`repo.git` beside its worktrees). A checkout whose git folder is kept apart
	 * (`--separate-git-dir`) is its own: git does not record where such a repository's main checkout is.
	 */
	private async repositoryFolder(common: string, top: string): Promise<string> {
		if (path.basename(common) === '.git') {
			return path.dirname(common);
		}
		// A git folder of another name: a bare repository's, or one kept apart from its checkout
		// (`--separate-git-dir`, a submodule's). Git lists the main checkout, or the bare repository, first.
		const out = await this.ctx
			.git(top)
			.run(['worktree', 'list', '--porcelain', '-z'])
			.catch(() => '');
		const main = parseWorktreeList(out)[0];
		if (!main) {
			return top;
		}
		if (!main.bare) {
			// Git names a separate git folder's main checkout by the git folder (it does not know the checkout).
			return fs.existsSync(main.path) && !samePath(main.path, common) ? realPathLoose(main.path) : top;
		}
		const holder = path.dirname(common);
		return gitFilePointsTo(path.join(holder, '.git'), common) ? holder : realPathLoose(common);
	}

	/** Staged, unstaged or untracked (not ignored) changes in a checkout. */
	async hasUncommittedChanges(dir: string): Promise<boolean> {
		// New files count whatever status.showUntrackedFiles says in the user's git config.
		return (await this.ctx.git(dir).zlist(['status', '--porcelain', '-z', '--untracked-files=normal'])).length > 0;
	}

	worktreeRoot(repo: string): string {
		// Real paths (symlinks resolved), as git reports worktrees: a folder reached through a symlink would
		// otherwise look gone at the next start.
		if (this.ctx.options.root) {
			return realPathLoose(this.ctx.options.root);
		}
		const hash = createHash('sha1').update(repo).digest('hex').slice(0, 6);
		return realPathLoose(path.join(os.homedir(), '.agent-tabs', 'worktrees', `${path.basename(repo)}-${hash}`));
	}

	/**
	 * A new session and its worktree: outside the repository, on `agent-tabs/<slug>` (or the first free name
	 * of `sessionBranchPrefixes`, said in `note`) from `baseRef` (default
	 * the HEAD of the checkout `input.repo` is in: a linked worktree's own branch, not the main checkout's),
	 * optionally carrying that checkout's uncommitted changes, then the setup step.
	 */
	async createSession(input: { repo: string; title: string; baseRef?: string; carryChanges?: boolean; id?: string; signal?: AbortSignal }): Promise<{ session: SessionRow; worktree: WorktreeRow; note?: string }> {
		const { repo, checkout } = await this.resolveCheckout(input.repo);
		const git = this.ctx.git(repo);
		const here = this.ctx.git(checkout);
		// "HEAD" is where that checkout is: its branch, as with no base named. Recorded as such, the session
		// merges into that branch (HEAD itself would name whatever is checked out at merge time), and a linked
		// worktree's HEAD is not taken for the main checkout's.
		let baseRef = input.baseRef === 'HEAD' || input.baseRef === '@' ? undefined : input.baseRef;
		if (!baseRef && !(await here.ok(['rev-parse', '--verify', '--quiet', 'HEAD^{commit}']))) {
			// An unborn branch (a new repository, or `git checkout --orphan`): with a base named, that base is used.
			const any = (await git.run(['for-each-ref', '--count=1', '--format=%(refname)', 'refs/heads/']).catch(() => '')).trim() !== '';
			throw new AgentTabsError('repo/noCommits', any ? `${checkout} is on a branch with no commits yet; name the branch to start from (a base) or make a first commit.` : `${checkout} has no commits yet; make a first commit before starting a session.`);
		}
		if (!baseRef) {
			const head = (await here.run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim();
			baseRef = head || (await here.run(['rev-parse', 'HEAD']).catch(() => '')).trim();
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
			makeFolders(root);
		} catch (e) {
			const code = (e as NodeJS.ErrnoException).code;
			if (code === 'EEXIST' || code === 'ENOTDIR') {
				throw new AgentTabsError('worktree/rootNotFolder', `The worktrees folder ${root} cannot be used: it, or a folder on its way, is a file.`, { cause: e });
			}
			if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
				throw new AgentTabsError('worktree/rootReadOnly', `The worktrees folder ${root} cannot be created or written (${code === 'EROFS' ? 'read-only file system' : 'permission denied'}); pick another one (--worktrees, or agentTabs.worktrees.root).`, { cause: e });
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
			this.ctx.logger.info(`[Worktrees][create] ${repo}: ${note}`);
		}
		let session: SessionRow | undefined;
		let worktree: WorktreeRow | undefined;
		for (let n = 1; n < 1000 && !worktree; n++) {
			const suffix = n === 1 ? '' : `-${n}`;
			const branch = `${prefix}/${slug}${suffix}`;
			const wtPath = path.join(root, `${slug}${suffix}`);
			if (!blocked(branch) && !fs.existsSync(wtPath) && !this.ctx.worktrees.byPath(wtPath)) {
				// The rows (state `creating`) are on disk before anything else is: a start after a kill rolls them back.
				// Another creation in this process meanwhile sees them in memory and picks another name.
				const s = this.ctx.sessions.create({ id: input.id, title: input.title, baseRef, repoRoot: repo });
				const w = this.ctx.worktrees.insert({ id: newId('wt'), session_id: s.id, repo_root: repo, path: wtPath, branch, base_ref: baseRef, base_commit: baseCommit, state: 'creating' });
				await this.ctx.store.durable();
				// Claim the folder at once so a second session created at the same moment picks another name.
				try {
					fs.mkdirSync(wtPath);
				} catch {
					this.ctx.worktrees.delete(w.id);
					this.ctx.sessions.delete(s.id);
					await this.ctx.store.durable();
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
		const { signal } = input;
		// Cancelling (a post-checkout hook or a setup command that takes too long, or never ends) stops what runs
		// and rolls back like a failure.
		const notCancelled = (): void => {
			if (signal?.aborted) {
				throw new CancelledError();
			}
		};
		try {
			fs.rmdirSync(wtPath);
			notCancelled();
			const hookFailed = await this.addWorktree(git, wtPath, branch!, baseCommit, signal);
			if (hookFailed) {
				note = note ? `${note} ${hookFailed}` : hookFailed;
				this.ctx.logger.warn(`[Worktrees][create] ${wtPath}: ${hookFailed}`);
			}
			markOwned(wtPath, { worktreeId: worktree.id, sessionId: session.id, stateDir: this.ctx.stateDir });
			notCancelled();
			if (input.carryChanges) {
				await this.carryChanges(checkout, wtPath);
				notCancelled();
			}
			await this.setup(repo, wtPath, checkout, signal);
			notCancelled();
			this.ctx.worktrees.update(worktree.id, { state: 'ready' });
		} catch (e) {
			// A create that fails leaves nothing behind: no folder, no branch, no rows. The error keeps git's words.
			this.ctx.logger.error(`[Worktrees][create] ${errorMessage(e)}`);
			await this.rollBackCreate(this.ctx.worktrees.get(worktree.id)!).catch((r: unknown) => this.ctx.logger.error(`[Worktrees][create] rollback: ${errorMessage(r)}`));
			if (signal?.aborted) {
				throw new CancelledError(`Creating the session "${input.title}" was cancelled; nothing was left behind.`);
			}
			throw e instanceof AgentTabsError ? e : new AgentTabsError('worktree/create', `Could not create the worktree for "${input.title}": ${errorMessage(e)}`, { cause: e });
		}
		return { session, worktree: this.ctx.worktrees.get(worktree.id)!, note };
	}

	/**
	 * `git worktree add`. Git runs the repository's post-checkout hook once the worktree is complete and keeps
	 * the worktree when the hook fails, only exiting with the hook's status ("hook failure does not warrant
	 * worktree deletion", builtin/worktree.c); a checkout that fails removes what it made. So a failure that
	 * left the worktree made, on its branch at the base, was the hook's: returns a note with its words.
	 */
	private async addWorktree(git: Git, wtPath: string, branch: string, baseCommit: string, signal?: AbortSignal): Promise<string | undefined> {
		try {
			await git.run(['worktree', 'add', '-b', branch, wtPath, baseCommit], { signal });
			return undefined;
		} catch (e) {
			if (!(e instanceof GitError) || !(await this.madeWorktree(git, wtPath, branch, baseCommit))) {
				throw e;
			}
			return `The post-checkout hook failed in the new worktree, which git made all the same: ${gitSays(e)}`;
		}
	}

	/** Whether git made the worktree whole: registered and unlocked, on its new branch, at the base commit. */
	private async madeWorktree(git: Git, wtPath: string, branch: string, baseCommit: string): Promise<boolean> {
		const entry = parseWorktreeList(await git.run(['worktree', 'list', '--porcelain', '-z']).catch(() => '')).find((w) => samePath(w.path, wtPath));
		if (!entry || entry.locked || entry.prunable || entry.branch !== branch) {
			return false;
		}
		const head = await this.ctx.git(wtPath).run(['rev-parse', '--verify', 'HEAD']).catch(() => '');
		return head.trim() === baseCommit;
	}

	/**
	 * Undoes a session creation that did not finish: the folder (even locked by an interrupted
	 * `git worktree add`), the branch if nothing was committed on it, the worktree row, and the session when
	 * it has no chats yet.
	 */
	async rollBackCreate(wt: WorktreeRow): Promise<void> {
		const mark = readOwnerMark(wt.path);
		if (mark && mark.worktreeId !== wt.id) {
			// The folder is another worktree's (this creation lost the race for its name to another window or
			// command, and a kill kept the row): only the row goes; that folder and its branch are not ours.
			this.ctx.logger.warn(`[Worktrees][create] ${wt.path} belongs to worktree ${mark.worktreeId} of ${mark.stateDir}; only this unfinished creation's record is removed`);
		} else {
			await this.deleteFolder(wt);
			if (wt.branch && wt.base_commit) {
				// Only while the branch is still where it was created: a commit on it is work, and branches are kept.
				await this.ctx.git(wt.repo_root).run(['update-ref', '-d', `refs/heads/${wt.branch}`, wt.base_commit]).catch(() => undefined);
			}
		}
		this.ctx.worktrees.delete(wt.id);
		if (wt.session_id && this.ctx.sessions.listChats(wt.session_id).length === 0) {
			this.ctx.sessions.delete(wt.session_id);
		}
	}

	/**
	 * Undoes a session created for something that then failed before any work was done (an agent that
	 * could not start): its worktree, branch, chats and row go. Keeps everything and returns false when the
	 * worktree holds any work (a change, an untracked file, a commit).
	 */
	async discardNewSession(sessionId: string): Promise<boolean> {
		const wt = this.ctx.worktrees.forSession(sessionId);
		if (wt) {
			// Only what is in the folder matters here, not who runs in it: `assessRisk` directly, not the custody's `risk`.
			const risk = await assessRisk(this.ctx.git(wt.repo_root), { path: wt.path, branch: wt.branch, baseRef: wt.base_ref });
			if (!risk.exists || risk.foreign) {
				return false;
			}
			const head = (await this.ctx.git(wt.path).run(['rev-parse', 'HEAD'])).trim();
			if (risk.staged.length + risk.unstaged.length + risk.invisible.length + risk.untracked.length > 0 || head !== wt.base_commit) {
				return false;
			}
			// Back to `creating` on disk before the folder goes: a start after a kill finishes the rollback.
			this.ctx.worktrees.update(wt.id, { state: 'creating' });
			await this.ctx.store.durable();
			await this.rollBackCreate(this.ctx.requireWorktree(wt.id));
		}
		this.ctx.sessions.delete(sessionId);
		return true;
	}

	/** Removes a worktree's folder and git's record of it, whatever state an interruption left them in. */
	async deleteFolder(wt: WorktreeRow): Promise<void> {
		const git = this.ctx.git(wt.repo_root);
		const entry = parseWorktreeList(await git.run(['worktree', 'list', '--porcelain', '-z'])).find((e) => samePath(e.path, wt.path));
		if (entry?.locked) {
			// Only reached for our own interrupted steps (an `add` killed while git held its "initializing" lock).
			await git.run(['worktree', 'unlock', wt.path]).catch(() => undefined);
		}
		let recorded = entry !== undefined;
		if (entry && fs.existsSync(wt.path)) {
			await git.run(['worktree', 'remove', '--force', wt.path]).then(
				() => (recorded = false),
				(e: unknown) => this.ctx.logger.warn(`[Worktrees][remove] ${errorMessage(e)}; removing the folder directly`),
			);
		}
		// A half-deleted folder is no longer a worktree git will remove: finish it by hand.
		fs.rmSync(wt.path, { recursive: true, force: true });
		if (recorded) {
			await this.dropRecord(git, wt.path);
		}
	}

	/**
	 * Drops git's record of the worktree at `wtPath` when its folder is gone, and only that one: `git worktree
	 * prune` would also drop the record of every worktree someone moved by hand (yours or another session's),
	 * cutting those folders off their repository.
	 */
	async forgetMissingWorktree(repo: string, wtPath: string): Promise<void> {
		const git = this.ctx.git(repo);
		const entry = parseWorktreeList(await git.run(['worktree', 'list', '--porcelain', '-z']).catch(() => '')).find((e) => samePath(e.path, wtPath));
		if (!entry || fs.existsSync(wtPath)) {
			return;
		}
		if (entry.locked) {
			throw new AgentTabsError('worktree/lockedAway', describeLockedAway(wtPath, entry.lockReason));
		}
		await this.dropRecord(git, wtPath);
	}

	/** `remove` of a worktree whose folder is missing removes only its record. */
	private async dropRecord(git: Git, wtPath: string): Promise<void> {
		await git.run(['worktree', 'remove', '--force', wtPath]).catch((e: unknown) => this.ctx.logger.warn(`[Worktrees][remove] git's record of ${wtPath}: ${errorMessage(e)}`));
	}

	private async carryChanges(repo: string, wtPath: string): Promise<void> {
		const git = this.ctx.git(repo);
		// `git stash create` fails without a word when it cannot lock the index. Writing the index first
		// (forced: a fresh index would skip the lock) takes the same lock and, failing, says why in git's words.
		await git.run(['update-index', '--refresh', '--force-write-index']).catch((e: unknown) => {
			if (e instanceof GitError && e.exitCode === 1) {
				return ''; // only "needs update": files that differ, which is what is carried
			}
			const why = e instanceof GitError ? e.stderr.split('\n').filter((l) => l && !l.endsWith(': needs update')).join('\n').trim() : errorMessage(e);
			throw new AgentTabsError('worktree/carry', `Could not carry the uncommitted changes of ${repo} into the new session, so it was not created: ${why}`, { cause: e });
		});
		// A checkout in the middle of a merge, rebase or cherry-pick with conflicts has no index git can stash
		// ("Cannot save the current index state", after a line per stage of each file): name the files instead.
		const unresolved = [...new Set(await git.zlist(['diff', '--name-only', '--diff-filter=U', '-z']))];
		if (unresolved.length > 0) {
			throw new AgentTabsError('worktree/carry', `Could not carry the uncommitted changes of ${repo} into the new session, so it was not created: ${unresolved.join(', ')} ${unresolved.length === 1 ? 'has' : 'have'} unresolved conflicts. Resolve them and mark them resolved (git add), or start the session without carrying changes; your changes are untouched.`);
		}
		const stash = (await git.run(['stash', 'create'])).trim();
		if (stash) {
			const wt = this.ctx.git(wtPath);
			// Staged changes stay staged (`--index`); where the index cannot be applied as it is (it conflicts
			// with the base), git changes nothing and the changes are carried unstaged.
			if (!(await wt.ok(['stash', 'apply', '--index', stash]))) {
				if ((await wt.zlist(['status', '--porcelain', '-z'])).length > 0) {
					await wt.run(['reset', '--hard', '-q']);
				}
				await wt.run(['stash', 'apply', stash]).catch(async (e: unknown) => {
					// Git tells a conflict on stdout only ("CONFLICT (content): …"): name the files instead.
					const conflicts = [...new Set(await wt.zlist(['diff', '--name-only', '--diff-filter=U', '-z']).catch(() => []))];
					const why = conflicts.length > 0 ? `they conflict with the base in ${conflicts.join(', ')}` : e instanceof GitError ? e.stderr.trim() || `git stash apply ended with exit code ${e.exitCode}` : errorMessage(e);
					throw new AgentTabsError('worktree/carry', `The uncommitted changes of ${repo} do not apply on the new session's base: ${why}. The session was not created; your changes are untouched.`, { cause: e });
				});
			}
		}
		for (const relBytes of await git.zlistBytes(['ls-files', '--others', '--exclude-standard', '-z'])) {
			const rel = relBytes.toString('utf8');
			if (!Buffer.from(rel, 'utf8').equals(relBytes)) {
				copyNonUtf8Named(repo, wtPath, relBytes);
				continue;
			}
			const target = path.join(wtPath, rel);
			fs.mkdirSync(path.dirname(target), { recursive: true });
			fs.cpSync(path.join(repo, rel), target, { preserveTimestamps: true, verbatimSymlinks: true });
		}
	}

	/** Which files (relative names) the setup step copies into new worktrees (`agentTabs.worktrees.copy`, read now). */
	copiedFiles(): (rel: string) => boolean {
		const patterns = (this.ctx.options.copy ?? ['.env*']).map(globToRegExp);
		return (rel) => patterns.some((p) => p.test(rel) || p.test(path.basename(rel)));
	}

	/**
	 * The setup step of a new or restored worktree: `agentTabs.worktrees.copy` files from `copyFrom` (the
	 * checkout the session starts from; the main checkout by default), then the setup command of `repo`.
	 */
	async setup(repo: string, wtPath: string, copyFrom = repo, signal?: AbortSignal): Promise<void> {
		if ((this.ctx.options.copy ?? ['.env*']).length > 0) {
			const isCopied = this.copiedFiles();
			// Candidates are files git does not track (ignored or untracked), like .env files. A repository
			// whose main folder has no checkout (a bare `.git` with worktrees of its own) has none to copy.
			const candidates = await this.ctx
				.git(copyFrom)
				.zlist(['ls-files', '--others', '-z'])
				.catch((e: unknown) => {
					this.ctx.logger.info(`[Worktrees][setup] nothing copied from ${copyFrom}: ${errorMessage(e)}`);
					return [];
				});
			for (const rel of candidates) {
				if (isCopied(rel)) {
					const target = path.join(wtPath, rel);
					if (!fs.existsSync(target)) {
						try {
							fs.mkdirSync(path.dirname(target), { recursive: true });
							fs.copyFileSync(path.join(copyFrom, rel), target);
						} catch (e) {
							// A link to nothing, a file you may not read: a convenience copy, not worth a session.
							this.ctx.logger.warn(`[Worktrees][setup] ${rel} not copied: ${errorMessage(e)}`);
						}
					}
				}
			}
		}
		const command = (this.ctx.options.setupCommand ?? (await this.ctx.options.setupCommandFor?.(repo)))?.trim();
		if (command) {
			await new Promise<void>((resolve, reject) => {
				const child = spawn(command, { cwd: wtPath, shell: true, env: withoutGitLocation(this.ctx.options.env ?? process.env), stdio: ['ignore', 'pipe', 'pipe'] });
				const forward = (d: Buffer): void => {
					for (const line of d.toString('utf8').split('\n').filter(Boolean)) {
						this.ctx.options.onSetupOutput?.(line);
					}
				};
				child.stdout.on('data', forward);
				child.stderr.on('data', forward);
				child.on('error', reject);
				const onAbort = (): void => {
					// The command and everything it started (an install's own processes).
					if (child.pid !== undefined) {
						void endProcessTree(child.pid, 2000);
					}
					reject(new CancelledError(`The setup command "${command}" was cancelled.`));
				};
				signal?.addEventListener('abort', onAbort, { once: true });
				child.on('exit', (code) => {
					signal?.removeEventListener('abort', onAbort);
					if (code === 0) {
						resolve();
					} else {
						reject(new AgentTabsError('worktree/setup', `The setup command "${command}" failed with exit code ${code}.`));
					}
				});
			});
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

/** Whether `gitFile` is a `.git` file (`gitdir: <folder>`) naming `gitDir`. */
function gitFilePointsTo(gitFile: string, gitDir: string): boolean {
	try {
		const named = gitFileTarget(fs.readFileSync(gitFile, 'utf8'));
		return named !== undefined && samePath(realPathLoose(path.resolve(path.dirname(gitFile), named)), realPathLoose(gitDir));
	} catch {
		return false;
	}
}
