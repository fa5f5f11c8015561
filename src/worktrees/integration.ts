import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { AgentTabsError, CancelledError } from '../common/errors';
import { errorMessage } from '../common/log';
import { type Git, GitError, type GitRunOptions, GitTimeoutError, type GitProgress, gitSays, parseWorktreeList, withoutGitLocation } from './gitClient';
import { samePath } from './paths';
import { assessRisk, describeOperation, hiddenChanges, operationInProgress } from './risk';
import { readSave, resolveSavedRef } from './savedRefs';
import type { WorktreeContext } from './worktreeContext';

/**
 * A session's work going where it belongs: merged into its base branch in the main checkout (merge,
 * squash or rebase), or pushed and proposed as a pull request.
 */
/** Cancel and progress for the long steps (the merge or rebase, the push). */
export interface IntegrationOptions {
	signal?: AbortSignal;
	onProgress?: (progress: GitProgress) => void;
}

/** A full commit id (SHA-1 or SHA-256), as a session started from a detached HEAD records its base. */
const isObjectId = (ref: string): boolean => /^[0-9a-f]{40}([0-9a-f]{24})?$/.test(ref);

export class SessionIntegration {
	constructor(private readonly ctx: WorktreeContext) {}

	/**
	 * Where a merge into `base` happens: the main checkout, unless a linked worktree of the user's has `base`
	 * checked out (git lets a branch be checked out in one place only: a session started from such a worktree
	 * merges there); for a bare repository (worked on only through linked worktrees) the worktree of the
	 * user's that has `base` checked out.
	 */
	private async mergeCheckout(repoRoot: string, base: string): Promise<{ path: string; linked: boolean }> {
		const entries = parseWorktreeList(await this.ctx.git(repoRoot).run(['worktree', 'list', '--porcelain', '-z']).catch(() => ''));
		const sessionFolders = this.ctx.worktrees.list().map((w) => w.path);
		const checkout = entries.find((e, i) => i > 0 && !e.bare && !e.prunable && e.branch === base && fs.existsSync(e.path) && !sessionFolders.some((f) => samePath(f, e.path)));
		if (!entries[0]?.bare) {
			return entries[0]?.branch !== base && checkout ? { path: checkout.path, linked: true } : { path: repoRoot, linked: false };
		}
		if (!checkout) {
			throw new AgentTabsError('merge/noCheckout', `${repoRoot} is a bare repository and none of its worktrees has ${base} checked out; check out ${base} in one of them to merge into it. Nothing was merged.`);
		}
		return { path: checkout.path, linked: true };
	}

	/**
	 * The session's branch as it is now: renamed in its worktree (`git branch -m`), the session follows the new
	 * name. Refused in plain words when the worktree has another branch or a detached HEAD checked out (which
	 * would be merged, or rebased, instead of the session's), or when the branch is gone.
	 */
	private async sessionBranch(worktreeId: string): Promise<string> {
		const wt = this.ctx.requireWorktree(worktreeId);
		const recorded = wt.branch!;
		const exists = await this.ctx.git(wt.repo_root).ok(['rev-parse', '--verify', '--quiet', `refs/heads/${recorded}`]);
		if (!fs.existsSync(wt.path)) {
			if (!exists) {
				const saved = wt.saved_ref ? ` Its folder's work is saved in ${wt.saved_ref}; Restore Session brings it back.` : '';
				throw new AgentTabsError('merge/noBranch', `The session's branch ${recorded} no longer exists (deleted or renamed), so there is nothing to merge.${saved} Nothing was changed.`);
			}
			return recorded;
		}
		const checkedOut = (await this.ctx.git(wt.path).run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim();
		if (checkedOut === recorded) {
			return recorded;
		}
		const operation = await operationInProgress(this.ctx.git(wt.path));
		if (operation) {
			throw new AgentTabsError('merge/operationInProgress', `The session's worktree ${wt.path} has ${describeOperation(operation)}. Finish it there first. Nothing was changed.`);
		}
		if (!checkedOut) {
			throw new AgentTabsError('merge/detached', `The session's worktree ${wt.path} is on a detached HEAD, not on its branch ${recorded}; check out a branch there first. Nothing was changed.`);
		}
		// Renamed (`git branch -m` writes "renamed refs/heads/<old> to refs/heads/<new>" to the new name's
		// reflog), or another branch checked out there while the session's was deleted: not the session's work.
		const renamed = !exists && (await this.ctx.git(wt.path).lines(['reflog', 'show', '--format=%gs', `refs/heads/${checkedOut}`, '--']).catch(() => [])).some((l) => l.includes(`renamed refs/heads/${recorded} to refs/heads/${checkedOut}`));
		if (!renamed) {
			const wayOn = exists ? `check out ${recorded} there first` : `that branch no longer exists; if ${checkedOut} holds the session's work, give it the session's name there ("git branch -m ${checkedOut} ${recorded}")`;
			throw new AgentTabsError('merge/otherBranch', `The session's worktree ${wt.path} has ${checkedOut} checked out, not its branch ${recorded}; ${wayOn}. Nothing was changed.`);
		}
		this.ctx.logger.info(`[Worktrees][branch] ${recorded} was renamed to ${checkedOut} in ${wt.path}; the session follows it.`);
		this.ctx.worktrees.update(wt.id, { branch: checkedOut });
		return checkedOut;
	}

	/**
	 * The local branch a merge goes into: the session's base, which `--base` lets be any branch, tag or commit.
	 * A local branch spelled in full (`refs/heads/main`, `heads/main`) is that branch; anything else is refused
	 * in words that say what the base is, since merging moves a local branch checked out in the main checkout.
	 */
	private async localBase(repo: Git, base: string, branch: string, baseCommit: string | null): Promise<string> {
		if (await repo.ok(['rev-parse', '--verify', '--quiet', `refs/heads/${base}`])) {
			return base;
		}
		const byHand = `Merge ${branch} yourself where the branch it should go into is checked out ("git merge ${branch}"), or create a pull request. Nothing was merged.`;
		// A session started from a detached HEAD records its commit as the base.
		if (isObjectId(base)) {
			throw new AgentTabsError('merge/noBase', `The session was started from a detached HEAD (commit ${base.slice(0, 12)}), so it has no branch to merge into. ${byHand}`);
		}
		const resolves = await repo.ok(['rev-parse', '--verify', '--quiet', `${base}^{commit}`]);
		// A symbolic ref (HEAD, as older versions recorded `--base HEAD`) names whatever branch is checked out
		// now, not the one the session started from: it counts as the commit it was.
		const symbolic = resolves && (await repo.ok(['symbolic-ref', '--quiet', base]));
		const full = resolves && !symbolic ? (await repo.run(['rev-parse', '--symbolic-full-name', base]).catch(() => '')).trim() : '';
		if (full.startsWith('refs/heads/')) {
			return full.slice('refs/heads/'.length);
		}
		const needs = 'merging needs a local branch, checked out in the main checkout, to move';
		if (full.startsWith('refs/tags/')) {
			throw new AgentTabsError('merge/baseNotBranch', `The session's base ${base} is a tag, not a branch, and ${needs}. ${byHand}`);
		}
		if (full.startsWith('refs/remotes/')) {
			// The local branch that follows it, if one does, is most likely where the work belongs.
			const upstreams = await repo.lines(['for-each-ref', '--format=%(upstream) %(refname:short)', 'refs/heads/']).catch(() => []);
			const local = upstreams.find((l) => l.startsWith(`${full} `))?.slice(full.length + 1);
			const hint = local ? ` ${local} follows it: check out ${local} in the main checkout and run "git merge ${branch}" there, or create a pull request. Nothing was merged.` : ` ${byHand}`;
			throw new AgentTabsError('merge/baseNotBranch', `The session's base ${base} is a remote branch, which only a push or fetch moves, and ${needs}.${hint}`);
		}
		if (resolves) {
			const then = baseCommit ? ` (the session started at ${baseCommit.slice(0, 12)})` : '';
			throw new AgentTabsError('merge/baseNotBranch', `The session's base ${base} names a commit${then}, not a branch, and ${needs}. ${byHand}`);
		}
		const remote = (await repo.lines(['remote']).catch(() => [])).find((r) => base.startsWith(`${r}/`));
		if (remote || !(await repo.ok(['check-ref-format', '--branch', base]))) {
			throw new AgentTabsError('merge/noBase', `The session's base ${base} no longer exists${remote ? ` (a branch of the remote ${remote}, deleted or pruned)` : ''}, so there is nothing to merge into. ${byHand}`);
		}
		throw new AgentTabsError('merge/noBase', `The session's base branch ${base} no longer exists (deleted or renamed), so there is nothing to merge into. Create it again ("git branch ${base} <commit>") or merge the session's branch yourself. Nothing was merged.`);
	}

	/**
	 * Merges the session branch into its base branch where that is checked out (`mergeCheckout`): a merge
	 * commit, a squash commit, or a rebase of the branch onto the base followed by a fast-forward. Refuses,
	 * changing nothing, when that checkout is dirty or on another branch, when the session has uncommitted
	 * work, or on a conflict.
	 */
	async mergeSession(sessionId: string, strategy: 'merge' | 'squash' | 'rebase', options: IntegrationOptions = {}): Promise<{ strategy: string; commit: string; message: string }> {
		const session = this.ctx.sessions.get(sessionId);
		const wt = this.ctx.worktrees.forSession(sessionId);
		if (!session || !wt || !wt.branch) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId} with a branch to merge.`);
		}
		const repo = this.ctx.git(wt.repo_root);
		if (!wt.base_ref) {
			throw new AgentTabsError('merge/noBase', 'The session was started from a detached HEAD, so it has no branch to merge into. Nothing was merged.');
		}
		const base = await this.localBase(repo, wt.base_ref, wt.branch, wt.base_commit);
		const branch = await this.sessionBranch(wt.id);
		const target = await this.mergeCheckout(wt.repo_root, base);
		const main = this.ctx.git(target.path);
		const where = target.linked ? `The checkout ${target.path}` : `The main checkout ${target.path}`;
		const current = (await main.run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim();
		if (current !== base) {
			throw new AgentTabsError('merge/wrongBranch', `${where} is on ${current || 'a detached HEAD'}; check out ${base} there to merge into it.`);
		}
		if ((await main.zlist(['status', '--porcelain', '-z', '--untracked-files=no'])).length > 0) {
			throw new AgentTabsError('merge/dirtyMain', `${where} has uncommitted changes; commit or stash them first. Nothing was merged.`);
		}
		// Edits git is told not to look at (local config hidden with assume-unchanged or skip-worktree): status
		// cannot see them, and a merge that touches such a file fails only after writing over it.
		const hidden = await hiddenChanges(main);
		if (hidden.length > 0) {
			throw new AgentTabsError(
				'merge/dirtyMain',
				`${where} has changes git is told not to look at (marked assume-unchanged or skip-worktree) in ${hidden.join(', ')}; a merge could overwrite them. Keep a copy, or clear the mark ("git update-index --no-assume-unchanged <file>", or --no-skip-worktree) and commit or stash them first. Nothing was merged.`,
			);
		}
		if (fs.existsSync(wt.path) && (await this.ctx.git(wt.path).zlist(['status', '--porcelain', '-z', '--untracked-files=normal'])).length > 0) {
			throw new AgentTabsError('merge/dirtySession', `The session's worktree has uncommitted work; commit it first so it is part of the merge. Nothing was merged.`);
		}
		if (!fs.existsSync(wt.path) && wt.saved_ref) {
			// Archived: its uncommitted work is in the save, not on the branch, and would be left out.
			const entry = await resolveSavedRef(repo, wt.id, wt.saved_ref);
			const save = entry ? await readSave(repo, entry.commit) : null;
			const headTree = save ? (await repo.run(['rev-parse', `${save.head}^{tree}`])).trim() : '';
			if (save && (save.indexTree !== headTree || save.worktreeTree !== headTree)) {
				throw new AgentTabsError('merge/dirtySession', `The session was archived with uncommitted work (saved in ${entry!.ref}), which is not on ${branch}; restore the session and commit that work first so it is part of the merge. Nothing was merged.`);
			}
		}
		const ahead = await main.lines(['rev-list', `${base}..refs/heads/${branch}`]);
		// By content, not reachability: after a squash merge the branch's commits are still "ahead".
		const unmerged = (await assessRisk(main, { path: wt.path, branch, baseRef: base, commitsOnly: true })).unmerged;
		if (ahead.length === 0 || unmerged.length === 0) {
			throw new AgentTabsError('merge/nothing', `${branch} has no commits that ${base} does not have.`);
		}
		/** A merge step that failed, was cancelled or ran out of time is undone, so nothing is changed. */
		const undo = async (e: unknown, abort: string[], where: Git): Promise<never> => {
			if (e instanceof GitError) {
				const files = [...new Set(await where.zlist(['diff', '--name-only', '--diff-filter=U', '-z']).catch(() => []))];
				const undone = await where.run(abort).then(
					() => null,
					(r: unknown) => r,
				);
				if (where === main) {
					await main.run(['reset', '--merge']).catch(() => undefined);
				}
				const left = undone !== null ? await operationInProgress(where) : null;
				if (left) {
					// The undo failed too (a hook that refuses every ref update, say): say what is left, not "nothing changed".
					const why = undone instanceof GitError ? gitSays(undone) : errorMessage(undone);
					throw new AgentTabsError('merge/undoFailed', `Merging ${branch} into ${base} failed: ${gitSays(e)} Undoing it failed too: ${why} ${where.cwd} is left with ${describeOperation(left)}; once the cause is fixed, run "git ${abort.join(' ')}" there.`, { cause: e });
				}
				if (files.length > 0) {
					throw new AgentTabsError('merge/conflict', `Merging ${branch} into ${base} conflicts in ${files.join(', ')}; a person needs to resolve that. Nothing was changed.`, { cause: e });
				}
				// Not a conflict: a commit that could not be signed, no author identity, a hook that said no. Git's
				// own words say which.
				throw new AgentTabsError('merge/failed', `Merging ${branch} into ${base} failed: ${gitSays(e)} Nothing was changed.`, { cause: e });
			}
			if (e instanceof CancelledError || e instanceof GitTimeoutError) {
				await where.run(abort).catch(() => undefined);
				if (where === main) {
					// Stopped before it recorded MERGE_HEAD (in a hook, say), a merge has nothing `--abort` can
					// find, yet its files are in the index; the checkout was clean, so back to HEAD's.
					await main.run(['reset', '--merge']).catch(() => undefined);
				}
			}
			throw e;
		};
		const long: GitRunOptions = { long: true, signal: options.signal, onProgress: options.onProgress };
		// The commits land on the user's branch: they are the user's (their git identity, as a merge they ran
		// would be), never "Agent Tabs" as the commits that only save work are.
		if (strategy === 'merge') {
			try {
				await main.run(['merge', '--no-ff', '--no-edit', '-m', `Merge ${branch}: ${session.title}`, `refs/heads/${branch}`], long);
			} catch (e) {
				await undo(e, ['merge', '--abort'], main);
			}
		} else if (strategy === 'squash') {
			try {
				// `--ff` overrides the user's `merge.ff` (`false` makes git refuse `--squash` outright, `only` refuses
				// any squash of a branch the base has moved past) and `branch.<base>.mergeOptions`; a squash makes no
				// merge commit either way.
				await main.run(['merge', '--squash', '--ff', `refs/heads/${branch}`], long);
			} catch (e) {
				await undo(e, ['reset', '--merge'], main);
			}
			try {
				// `--cleanup=whitespace`, as for any -m message: with commit.cleanup=strip in the user's config, a title
				// starting with # (an issue number) was taken for a comment and dropped from the subject.
				await main.run(['commit', '-q', '--cleanup=whitespace', '-m', `${session.title}\n\nSquashed from ${branch} (${ahead.length} commits) by Agent Tabs.`], long);
			} catch (e) {
				// A commit hook refused, or the commit was cancelled: the squashed files leave the index again.
				await main.run(['reset', '--merge']).catch(() => undefined);
				throw e instanceof GitError ? new AgentTabsError('merge/commitFailed', `Committing the squash of ${branch} into ${base} failed: ${gitSays(e)} Nothing was changed.`, { cause: e }) : e;
			}
		} else {
			const wtGit = this.ctx.git(wt.path);
			// Where the worktree's HEAD is before the rebase (the rebase moves it, whatever it is on).
			const tipBefore = (await wtGit.run(['rev-parse', '--verify', 'HEAD'])).trim();
			try {
				await wtGit.run(['rebase', base], long);
			} catch (e) {
				await undo(e, ['rebase', '--abort'], wtGit);
			}
			try {
				await main.run(['merge', '--ff-only', `refs/heads/${branch}`]);
			} catch (e) {
				// The base could not take the rebased branch (an untracked file in the way, a hook refusing the ref
				// update after git wrote the files): the main checkout, clean before, goes back to its HEAD, and the
				// session's branch back to where it was, so nothing changed (it may have been pushed as it was).
				await main.run(['reset', '--merge']).catch((r: unknown) => this.ctx.logger.error(`[Worktrees][merge] could not put ${target.path} back at its HEAD: ${errorMessage(r)}`));
				await wtGit.run(['reset', '--keep', tipBefore]).catch((r: unknown) => this.ctx.logger.error(`[Worktrees][merge] could not put ${branch} back at ${tipBefore}: ${errorMessage(r)}`));
				throw e instanceof GitError ? new AgentTabsError('merge/failed', `Merging ${branch} into ${base} failed: ${gitSays(e)} Nothing was changed.`, { cause: e }) : e;
			}
		}
		const commit = (await main.run(['rev-parse', 'HEAD'])).trim();
		return { strategy, commit, message: `${branch} is in ${base} (${strategy}, ${commit.slice(0, 12)}).` };
	}

	/** Pushes the session branch (with progress) and opens a pull request with the GitHub CLI, when it is installed. */
	async createPullRequest(sessionId: string, ghPath: string | undefined, options: IntegrationOptions = {}): Promise<string> {
		const session = this.ctx.sessions.get(sessionId);
		const wt = this.ctx.worktrees.forSession(sessionId);
		if (!session || !wt || !wt.branch) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId} with a branch.`);
		}
		if (!ghPath) {
			throw new AgentTabsError('pr/noGh', 'Creating a pull request needs the GitHub CLI (gh). Install it and run "gh auth login", or push the branch and open the pull request yourself.');
		}
		const branch = await this.sessionBranch(wt.id);
		const git = this.ctx.git(wt.path);
		await git.run(['push', '-u', await pushRemote(git, branch), branch], { long: true, signal: options.signal, onProgress: options.onProgress });
		const base = await pullRequestBase(git, wt.base_ref);
		return new Promise((resolve, reject) => {
			const child = spawn(ghPath, ['pr', 'create', '--head', branch, ...(base ? ['--base', base] : []), '--title', session.title, '--body', `Work from the Agent Tabs session "${session.title}".`], {
				cwd: wt.path,
				env: withoutGitLocation(this.ctx.options.env ?? process.env),
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
}

/**
 * The remote a session's branch is pushed to: the one `git push` would take for it (branch.<name>.pushRemote,
 * remote.pushDefault, as for a fork; branch.<name>.remote), else origin, else the only remote.
 */
async function pushRemote(git: Git, branch: string): Promise<string> {
	for (const key of [`branch.${branch}.pushRemote`, 'remote.pushDefault', `branch.${branch}.remote`]) {
		const name = (await git.run(['config', '--get', key]).catch(() => '')).trim();
		if (name && name !== '.') {
			return name;
		}
	}
	const remotes = (await git.lines(['remote'])).sort();
	if (remotes.includes('origin')) {
		return 'origin';
	}
	if (remotes.length === 1) {
		return remotes[0]!;
	}
	throw new AgentTabsError(
		'pr/noRemote',
		remotes.length === 0
			? 'This repository has no remote to push the session\'s branch to: add one (git remote add origin <url>), then try again. Nothing was pushed.'
			: `This repository has no remote called origin, and several others (${remotes.join(', ')}): name the one to push to with git config remote.pushDefault <name>, then try again. Nothing was pushed.`,
	);
}

/**
 * The branch on the remote a pull request goes into: the session's base branch, `main` for a base of
 * `origin/main`; none for a tag or a commit (gh then takes the repository's default branch).
 */
async function pullRequestBase(git: Git, base: string | null): Promise<string | undefined> {
	if (!base) {
		return undefined;
	}
	const full = (await git.run(['rev-parse', '--symbolic-full-name', base]).catch(() => '')).trim();
	if (full.startsWith('refs/heads/')) {
		return full.slice('refs/heads/'.length);
	}
	if (full.startsWith('refs/remotes/')) {
		return full.split('/').slice(3).join('/') || undefined;
	}
	// A base that is gone: its name, as recorded, unless it names a remote's branch or a commit.
	return full === '' && !isObjectId(base) && !base.includes('/') ? base : undefined;
}
