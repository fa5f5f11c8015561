import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentTabsError, CancelledError } from '../common/errors';
import { newId } from '../common/ids';
import { errorMessage } from '../common/log';
import type { SessionRow } from '../db/sessionsRepo';
import type { WorktreeRow } from '../db/worktreesRepo';
import { hiddenFiles, hidingFlags, rawDifferences, regularFiles, setIndexFlag, removeStaleTempIndexes, treeFiles, headCommit, identity, indexTree, modeHandling, withTempIndex, worktreeContents } from './checkpoints';
import { checkoutDrift, rawBlobIds } from './conversion';
import { type Git, parseWorktreeList } from './gitClient';
import { isMarkedFolder, liveLeases, markOwned, type OwnerMark, readOwnerMark, readOwnerMarkIn } from './ownership';
import { isSameOrInside, realPathLoose, samePath, subfolders, withoutFinalNewline } from './paths';
import { assessRisk, describeLockedAway, describeOperation, worktreeIdentity, type RiskReport } from './risk';
import { addSave, pathsTrailer, readSave, resolveSavedRef, saveTrailers, type SaveContents } from './savedRefs';
import type { SessionLifecycle } from './sessionLifecycle';
import type { WorktreeContext } from './worktreeContext';

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

/**
 * A restored worktree's row, the branch its HEAD is on now (null: detached), and, when it was on a branch when
 * saved but came back detached, why (`detached`).
 */
/** `setupFailed`: the folder is restored, but the setup step (copying `.env` files, the setup command) failed, in these words. */
export type RestoredWorktree = WorktreeRow & { onBranch: string | null; detached?: string; setupFailed?: string };

/**
 * Custody of the work in worktrees, with one rule: no path loses work. Every removal goes through `remove`,
 * which saves everything `risk` finds into a private ref first, verifies the save byte for byte, keeps the
 * branch, and only then deletes the folder; `restoreSession` and `attachWorktree` bring a save back
 * exactly; `reconcile` and `recoverInterrupted` bring the database and the disk back in line at start-up.
 */
export class WorktreeCustody {
	constructor(
		private readonly ctx: WorktreeContext,
		private readonly lifecycle: SessionLifecycle,
	) {}

	async risk(worktreeId: string): Promise<RiskReport> {
		const wt = this.ctx.requireWorktree(worktreeId);
		const inThisProcess = wt.session_id ? (this.ctx.options.runningAgents?.(wt.session_id) ?? []) : [];
		// Agents other processes (another window, the CLI) run there, seen through their leases.
		const elsewhere = liveLeases(wt.path)
			.filter((l) => l.pid !== process.pid || !this.ctx.options.runningAgents)
			.map((l) => `${l.what} (${l.owner}, pid ${l.pid})`);
		return assessRisk(this.ctx.git(wt.repo_root), {
			path: wt.path,
			branch: wt.branch,
			baseRef: wt.base_ref,
			runningAgents: [...inThisProcess, ...elsewhere],
			keptIgnored: this.ownCopiedFiles(wt),
			savedIn: wt.state === 'removed' ? wt.saved_ref : null,
		});
	}

	/**
	 * Ignored files the setup step copies (`.env*`) that this worktree changed or made: the setup step would
	 * bring back the main checkout's copy instead, so a save keeps them. Unchanged copies are left to the setup.
	 */
	private ownCopiedFiles(wt: WorktreeRow): (rel: string) => boolean {
		const isCopied = this.lifecycle.copiedFiles();
		return (rel) => {
			if (!isCopied(rel)) {
				return false;
			}
			try {
				return !fs.readFileSync(path.join(wt.path, rel)).equals(fs.readFileSync(path.join(wt.repo_root, rel)));
			} catch {
				return true; // not in the main checkout (or unreadable there): only this copy has it
			}
		};
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
		const wt = this.ctx.requireWorktree(worktreeId);
		const git = this.ctx.git(wt.path);
		const folder = await worktreeIdentity(this.ctx.git(wt.repo_root), git, wt.path);
		if (!folder.ours) {
			throw new AgentTabsError('worktree/notOurs', `${wt.path} ${folder.foreign ?? 'is not a worktree of this repository (it is gone or empty)'}; a save made there would not be this repository's. Nothing was saved.`);
		}
		const title = wt.session_id ? this.ctx.sessions.get(wt.session_id)?.title : undefined;
		const head = await headCommit(git, 'save');
		const branch = (await git.run(['symbolic-ref', '--quiet', 'HEAD']).catch(() => '')).trim().replace(/^refs\/heads\//, '') || null;
		const savedIndexTree = await indexTree(git);
		// Flags of index entries are not in any tree: kept in the message, put back by a restore.
		const { assumeUnchanged, skipWorktree } = await hidingFlags(git);
		const { tree, verbatim } = await worktreeContents(git, { exact: true, keepIgnored: this.ownCopiedFiles(wt) });
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
			...(assumeUnchanged.length ? [`${saveTrailers.assumeUnchanged}: ${pathsTrailer(assumeUnchanged)}`] : []),
			...(skipWorktree.length ? [`${saveTrailers.skipWorktree}: ${pathsTrailer(skipWorktree)}`] : []),
			...(verbatim.length ? [`${saveTrailers.verbatim}: ${pathsTrailer(verbatim.map((name) => Buffer.from(name)))}`] : []),
		].join('\n');
		const commit = (await git.run(['commit-tree', tree, '-p', head, '-p', indexCommit], { env: identity, input: `${message}\n` })).trim();
		await this.verifyFolder(git, { head, branch, indexTree: savedIndexTree, worktreeTree: tree, verbatim }, 'saveMismatch', 'The saved copy does not match the worktree');
		const entry = await addSave(git, wt.id, commit);
		const [changed, staged] = await Promise.all([git.zlist(['diff', '--name-only', '-z', head, tree]), git.zlist(['diff', '--name-only', '-z', head, savedIndexTree])]);
		this.ctx.worktrees.update(wt.id, { saved_ref: entry.ref });
		this.ctx.logger.info(`[Worktrees][save] ${wt.path}: HEAD ${head.slice(0, 12)} on ${branch ?? '(detached)'}, ${changed.length} files, ${staged.length} staged, saved as ${entry.ref}`);
		return { ref: entry.ref, commit, branch, head, files: changed.length, staged: staged.length };
	}

	/**
	 * Compares a worktree folder with what a save holds: the files by content (every file re-hashed, so equal
	 * sizes and times cannot hide a change), the index, HEAD and its branch. Any difference throws.
	 */
	private async verifyFolder(git: Git, expected: Pick<SaveContents, 'head' | 'indexTree' | 'worktreeTree'> & { branch: string | null; verbatim: readonly string[] }, code: string, what: string): Promise<void> {
		// Read as the save read it (see worktreeTree's `exact`): executable bits git's settings hide are compared,
		// and only a sparse checkout's absent files are left out, as they are in the worktree's index.
		const { config, compareModes } = await modeHandling(git);
		const sparseAbsent = (await hiddenFiles(git)).filter((h) => h.skipWorktree && !h.present).map((h) => h.path);
		const differing = await withTempIndex(async (env) => {
			await git.run(['read-tree', expected.worktreeTree], { env });
			await setIndexFlag(git, '--skip-worktree', sparseAbsent, env);
			await git.run(['update-index', '-q', '--really-refresh'], { env, config }).catch(() => undefined);
			const changed = await git.zlist(['diff-files', '--name-only', '-z'], { env, config });
			// diff-files compares converted content: files kept as their bytes must be those bytes, and the
			// others what a checkout of them writes (an edit the conversion undoes is a difference too).
			const verbatim = new Set(expected.verbatim);
			const files = regularFiles(await git.zlist(['ls-files', '--stage', '-z'], { env }));
			const keptAsBytes = expected.verbatim.filter((name) => files.has(name));
			const raw = await rawBlobIds(git, keptAsBytes).catch(() => []);
			const drift = await checkoutDrift(git, new Map([...files].filter(([name]) => !verbatim.has(name))), env);
			return [
				...new Set([
					...(await rawDifferences(git, files, changed, compareModes)),
					...keptAsBytes.filter((name, i) => raw[i] !== files.get(name)!.blob),
					...drift,
					...(await git.zlist(['ls-files', '--others', '--exclude-standard', '-z'], { env })),
				]),
			];
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
		let wt = this.ctx.requireWorktree(worktreeId);
		if (wt.state === 'removing') {
			await this.finishRemoval(wt);
			const saved = await this.savedWork(this.ctx.requireWorktree(worktreeId));
			return { risk: await this.risk(worktreeId), saved, removedPath: wt.path };
		}
		if (!fs.existsSync(wt.path)) {
			// Moved by hand: what it holds is saved like any other folder's, instead of cut off from git.
			wt = (await this.followMovedFolder(wt)) ?? wt;
		}
		const risk = await this.risk(worktreeId);
		if (risk.lockedAway !== undefined) {
			throw new AgentTabsError('worktree/lockedAway', describeLockedAway(wt.path, risk.lockedAway || undefined));
		}
		if (risk.runningAgents.length > 0) {
			throw new AgentTabsError('worktree/busy', `Agents are still running in ${wt.path}: ${risk.runningAgents.join(', ')}. Stop them first; nothing was removed.`);
		}
		let saved: SavedWork | null = null;
		if (risk.foreign) {
			// A save would go to whatever repository the folder now belongs to, and be deleted with it.
			throw new AgentTabsError(
				'worktree/notOurs',
				`${wt.path} ${risk.foreign}. Agent Tabs cannot save what is in it, so it leaves the folder alone: move what you need out of it, then delete the folder yourself and remove the session again. Nothing was removed.`,
			);
		}
		if (risk.exists) {
			const listed = parseWorktreeList(await this.ctx.git(wt.repo_root).run(['worktree', 'list', '--porcelain', '-z']));
			const entry = listed.find((e) => samePath(e.path, wt.path));
			if (entry?.locked) {
				throw new AgentTabsError('worktree/locked', `${wt.path} is locked in git (git worktree lock), so it is left alone. Unlock it with "git worktree unlock ${wt.path}" to remove it.`);
			}
			if (risk.operation) {
				throw new AgentTabsError('worktree/operationInProgress', `${wt.path} has ${describeOperation(risk.operation)}. Run that in ${wt.path}, then try again. Nothing was removed.`);
			}
			if (risk.conflicts.length > 0) {
				throw new AgentTabsError('worktree/conflicts', `${wt.path} has unresolved conflicts in ${risk.conflicts.slice(0, 5).join(', ')}. Resolve them and stage the result ("git add"), or undo them with "git checkout -m <file>", then try again. Nothing was removed.`);
			}
			if (risk.innerRepositories.length > 0) {
				throw new AgentTabsError(
					'worktree/innerRepositories',
					`${wt.path} holds git repositories of its own whose work a save cannot hold: ${risk.innerRepositories.join('; ')}. Move them out of the worktree (or commit and push a submodule's work), then try again. Nothing was removed.`,
				);
			}
			if (wt.session_id) {
				await this.ctx.options.endIdleAgents?.(wt.session_id).catch((e: unknown) => this.ctx.logger.warn(`[Worktrees][remove] ending idle agents: ${errorMessage(e)}`));
			}
			// The branch head too, under a private ref: its commits stay reachable even if someone deletes the branch.
			await this.ctx.git(wt.path).run(['update-ref', `refs/agent-tabs/heads/${wt.id}`, 'HEAD']).catch(() => undefined);
			try {
				saved = await this.save(worktreeId, reason);
			} catch (e) {
				throw new AgentTabsError('worktree/saveFailed', `Could not save the work in ${wt.path}, so it was not removed: ${errorMessage(e)}`, { cause: e });
			}
			// The intent is on disk before the folder is touched (a write is only in memory until durable()).
			this.ctx.worktrees.update(wt.id, { state: 'removing' });
			await this.ctx.store.durable();
			wt = this.ctx.requireWorktree(worktreeId);
			await this.finishRemoval(wt);
		} else {
			// Deleted by hand: nothing of the folder is left to save. Restore then starts from the branch; the
			// saves of earlier removals stay under refs/agent-tabs/saved/<id>/.
			this.ctx.logger.warn(`[Worktrees][remove] ${wt.path} was already gone; the branch ${wt.branch ?? '-'} is kept`);
			this.ctx.worktrees.update(wt.id, { saved_ref: null });
			await this.lifecycle.forgetMissingWorktree(wt.repo_root, wt.path);
			this.ctx.worktrees.update(wt.id, { state: 'removed' });
		}
		return { risk, saved, removedPath: wt.path };
	}

	/** Second half of a removal whose save is recorded: the folder goes, the row says `removed`. */
	private async finishRemoval(wt: WorktreeRow): Promise<void> {
		await this.lifecycle.deleteFolder(wt);
		this.ctx.worktrees.update(wt.id, { state: 'removed' });
	}

	/** The save a row points to, read back; null when it has none (or its ref is gone). */
	private async savedWorkContents(wt: WorktreeRow): Promise<(SaveContents & { ref: string }) | null> {
		const git = this.ctx.git(wt.repo_root);
		const entry = wt.saved_ref ? await resolveSavedRef(git, wt.id, wt.saved_ref).catch(() => null) : null;
		return entry ? { ...(await readSave(git, entry.commit)), ref: entry.ref } : null;
	}

	private async savedWork(wt: WorktreeRow): Promise<SavedWork | null> {
		const save = await this.savedWorkContents(wt);
		if (!save) {
			return null;
		}
		const entry = { ref: save.ref, commit: save.commit };
		const git = this.ctx.git(wt.repo_root);
		const [changed, staged] = await Promise.all([git.zlist(['diff', '--name-only', '-z', save.head, save.worktreeTree]), git.zlist(['diff', '--name-only', '-z', save.head, save.indexTree])]);
		return { ref: entry.ref, commit: entry.commit, branch: save.branch === undefined ? wt.branch : save.branch, head: save.head, files: changed.length, staged: staged.length };
	}

	/** Deletes a session: its worktree is saved and removed (the branch and the saved ref stay). */
	async deleteSession(sessionId: string): Promise<RemoveResult | null> {
		const wt = this.ctx.worktrees.forSession(sessionId);
		const result = wt && wt.state !== 'removed' ? await this.remove(wt.id, 'the session was deleted') : null;
		this.ctx.sessions.delete(sessionId);
		return result;
	}

	/** Archives a session: its worktree folder is saved and removed; "Restore Session" brings it back. */
	async archiveSession(sessionId: string): Promise<RemoveResult | null> {
		const wt = this.ctx.worktrees.forSession(sessionId);
		const result = wt && wt.state !== 'removed' ? await this.remove(wt.id, 'the session was archived') : null;
		this.ctx.sessions.setStatus(sessionId, 'archived');
		return result;
	}

	/**
	 * Gives a detached worktree (its session was deleted, or it was adopted) a new session. A worktree whose
	 * folder was removed is restored from its branch and saved ref on the way.
	 */
	async attachWorktree(worktreeId: string, title?: string): Promise<{ session: SessionRow; worktree: WorktreeRow }> {
		const wt = this.ctx.requireWorktree(worktreeId);
		if (wt.session_id) {
			throw new AgentTabsError('worktree/attached', `${wt.path} already belongs to a session.`);
		}
		// The title the session had, when its saved work recorded it.
		const savedTitle = (await this.savedWorkContents(wt))?.title;
		const session = this.ctx.sessions.create({ title: title ?? savedTitle ?? wt.branch?.replace(/^agent-tabs[^/]*\//, '') ?? path.basename(wt.path), baseRef: wt.base_ref ?? undefined, repoRoot: wt.repo_root });
		this.ctx.worktrees.update(wt.id, { session_id: session.id });
		const worktree = wt.state === 'ready' && fs.existsSync(wt.path) ? this.ctx.worktrees.get(wt.id)! : await this.restoreSession(session.id);
		markOwned(worktree.path, { worktreeId: wt.id, sessionId: session.id, stateDir: this.ctx.stateDir });
		return { session: this.ctx.sessions.get(session.id)!, worktree };
	}

	/**
	 * Recreates the worktree exactly as it was saved: HEAD on its branch (or detached, as it was), the index
	 * with its staged and partly staged files, and the working folder with untracked files. The intent
	 * (`restoring`) is recorded first; the result is verified against the save before it counts as restored,
	 * and a failed or interrupted restore removes its partial folder again (the save and the branch are
	 * untouched). Without a save (the folder was deleted by hand before removal) it comes back from the branch.
	 */
	async restoreSession(sessionId: string, signal?: AbortSignal): Promise<RestoredWorktree> {
		const session = this.ctx.sessions.get(sessionId);
		let wt = this.ctx.worktrees.forSession(sessionId);
		if (!session || !wt) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId} with a worktree to restore.`);
		}
		if (wt.state === 'ready' && fs.existsSync(wt.path)) {
			this.ctx.sessions.setStatus(sessionId, 'active');
			const onBranch = (await this.ctx.git(wt.path).run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim() || null;
			return { ...wt, onBranch };
		}
		if (wt.state === 'removing' || wt.state === 'restoring' || wt.state === 'creating') {
			await this.recoverRow(wt);
			wt = this.ctx.worktrees.forSession(sessionId);
			if (!wt) {
				throw new AgentTabsError('session/unknown', `The session ${sessionId} had not finished being created, so there is nothing to restore.`);
			}
		}
		// A folder moved by hand (or back) is followed, not rebuilt beside it (and cut off from git).
		const found = await this.followMovedFolder(wt);
		if (found) {
			this.ctx.sessions.setStatus(sessionId, 'active');
			const onBranch = (await this.ctx.git(found.path).run(['symbolic-ref', '--quiet', '--short', 'HEAD']).catch(() => '')).trim() || null;
			return { ...found, onBranch };
		}
		const git = this.ctx.git(wt.repo_root);
		await this.lifecycle.forgetMissingWorktree(wt.repo_root, wt.path);
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
		const expected = {
			head,
			indexTree: save?.indexTree ?? (await git.run(['rev-parse', `${head}^{tree}`])).trim(),
			worktreeTree: save?.worktreeTree ?? (await git.run(['rev-parse', `${head}^{tree}`])).trim(),
			verbatim: (save?.verbatim ?? []).map((name) => name.toString('utf8')),
		};
		if (fs.existsSync(wt.path) && fs.readdirSync(wt.path).length > 0) {
			throw new AgentTabsError('worktree/pathTaken', `${wt.path} exists and is not empty; move it away to restore the session there.`);
		}
		// HEAD goes back on its branch; a branch deleted since is recreated where it was; a branch that moved
		// on since (new commits made elsewhere) is left alone and HEAD comes back detached at the saved commit.
		let addArgs: string[];
		let expectedBranch: string | null = branch;
		let detached: string | undefined;
		if (branch && tip === head) {
			addArgs = [wt.path, branch];
		} else if (branch && !tip) {
			addArgs = ['-b', branch, wt.path, head];
		} else {
			if (branch) {
				detached = `${branch} moved on since the save (it is now at ${tip.slice(0, 12)}, the save was made at ${head.slice(0, 12)}), so the worktree is back detached at the saved commit; check out ${branch} there to go on from its new commits`;
				this.ctx.logger.warn(`[Worktrees][restore] ${wt.path}: ${detached}`);
			}
			expectedBranch = null;
			addArgs = ['--detach', wt.path, head];
		}
		const before = wt.state === 'ready' ? 'missing' : wt.state;
		this.ctx.worktrees.update(wt.id, { state: 'restoring' });
		try {
			// On disk before the folder is made: a start after a kill finds the partial folder and removes it.
			await this.ctx.store.durable();
			await git.run(['worktree', 'add', '--no-checkout', ...addArgs], { signal });
			const wtGit = this.ctx.git(wt.path);
			// The folder from the working-tree tree, then the index from the index tree; stat data refreshed.
			// Submodules stay as a new worktree has them (not checked out) whatever submodule.recurse says: with it
			// set, read-tree went into each one, whose git folder went with the removed worktree, and failed.
			// Cancellable: the user's post-index-change hook runs here, and one that never ends would hold it.
			await wtGit.run(['read-tree', '-u', '--reset', expected.worktreeTree], { config: { 'submodule.recurse': 'false' }, signal });
			if (signal?.aborted) {
				throw new CancelledError();
			}
			await writeOutsideCone(wtGit, expected, save?.skipWorktree ?? []);
			await writeVerbatim(wtGit, expected.worktreeTree, expected.verbatim);
			await wtGit.run(['read-tree', '--reset', expected.indexTree]);
			await setIndexFlag(wtGit, '--assume-unchanged', save?.assumeUnchanged ?? []);
			await setIndexFlag(wtGit, '--skip-worktree', save?.skipWorktree ?? []);
			await wtGit.run(['update-index', '-q', '--refresh']).catch(() => undefined);
			await this.verifyFolder(wtGit, { ...expected, branch: expectedBranch }, 'restoreMismatch', `The restored folder ${wt.path} does not match the save`);
			markOwned(wt.path, { worktreeId: wt.id, sessionId, stateDir: this.ctx.stateDir });
		} catch (e) {
			await this.lifecycle.deleteFolder(wt).catch((r: unknown) => this.ctx.logger.error(`[Worktrees][restore] cleanup: ${errorMessage(r)}`));
			try {
				this.ctx.worktrees.update(wt.id, { state: before });
			} catch (r) {
				// A failed store: the row stays `restoring`, which the next start undoes; the error below is the one to tell.
				this.ctx.logger.error(`[Worktrees][restore] ${errorMessage(r)}`);
			}
			if (signal?.aborted) {
				throw new CancelledError(`Restoring ${wt.path} was cancelled. Nothing was changed${entry ? `; the saved work is still in ${entry.ref}` : ''}.`);
			}
			throw new AgentTabsError('worktree/restoreFailed', `Could not restore ${wt.path}: ${errorMessage(e).trim().replace(/([^.!?])$/, '$1.')} Nothing was changed${entry ? `; the saved work is still in ${entry.ref}` : ''}.`, { cause: e });
		}
		// Restored (on disk, before anything else runs): from here a failure or a kill must never remove the
		// folder again, as the recovery of an unfinished restore would, with whatever was done in it since.
		this.ctx.worktrees.update(wt.id, { state: 'ready' });
		this.ctx.sessions.setStatus(sessionId, 'active');
		await this.ctx.store.durable();
		// Ignored files (.env, dependencies) are not in the save: the setup step puts them back as on creation.
		// It failing leaves a restored session with a warning, not an undone restore.
		let setupFailed: string | undefined;
		try {
			await this.lifecycle.setup(wt.repo_root, wt.path, wt.repo_root, signal);
		} catch (e) {
			setupFailed = errorMessage(e);
			this.ctx.logger.warn(`[Worktrees][restore] ${wt.path}: setup: ${setupFailed}`);
		}
		return { ...this.ctx.worktrees.get(wt.id)!, onBranch: expectedBranch, ...(detached ? { detached } : {}), ...(setupFailed ? { setupFailed } : {}) };
	}

	/**
	 * The folder of a worktree that is not at its recorded path, if it is still to be had: back at that path,
	 * or moved by hand (renamed, moved beside the other sessions, or anywhere and then `git worktree repair`ed)
	 * and known by the owner mark in its git admin folder, which moves with it. Git's record is repaired and
	 * the row follows it (`ready`). Null when it is not found (deleted, or moved elsewhere): it is missing.
	 */
	private async followMovedFolder(wt: WorktreeRow): Promise<WorktreeRow | null> {
		if (wt.state !== 'ready' && wt.state !== 'missing') {
			return null;
		}
		const git = this.ctx.git(wt.repo_root);
		const listed = parseWorktreeList(await git.run(['worktree', 'list', '--porcelain', '-z']).catch(() => ''));
		const ownMark = (p: string): OwnerMark | undefined => {
			const mark = readOwnerMark(p);
			return mark?.worktreeId === wt.id ? mark : undefined;
		};
		const ours = (p: string): boolean => ownMark(p) !== undefined;
		const live = (p: string): boolean => listed.some((e) => !e.prunable && samePath(e.path, p));
		let found: string | undefined;
		if (fs.existsSync(wt.path) && live(wt.path) && (ours(wt.path) || !readOwnerMark(wt.path))) {
			found = wt.path;
		} else {
			let candidates = listed.filter((e) => !e.prunable && !samePath(e.path, wt.path) && ours(e.path)).map((e) => e.path);
			if (candidates.length === 0) {
				// Only the folder itself, moved: a copy of it (`cp -r`) points at the same admin folder but is another folder.
				const places = [...new Set([path.dirname(wt.path), this.lifecycle.worktreeRoot(wt.repo_root)])];
				candidates = places.flatMap((dir) => subfolders(dir)).filter((p) => {
					const mark = !samePath(p, wt.path) && !live(p) ? ownMark(p) : undefined;
					return mark !== undefined && isMarkedFolder(mark, p);
				});
			}
			if (candidates.length !== 1) {
				if (candidates.length > 1) {
					this.ctx.logger.warn(`[Worktrees][moved] ${wt.path} has ${candidates.length} copies (${candidates.join(', ')}); none is followed.`);
				}
				return null;
			}
			found = realPathLoose(candidates[0]!);
			if (!live(found)) {
				await git.run(['worktree', 'repair', found]);
			}
			this.ctx.logger.info(`[Worktrees][moved] ${wt.path} was moved by hand to ${found}; the session follows it.`);
			try {
				markOwned(found, { worktreeId: wt.id, sessionId: wt.session_id, stateDir: readOwnerMark(found)?.stateDir ?? this.ctx.stateDir });
			} catch (e) {
				this.ctx.logger.debug(`[Worktrees][moved] could not mark ${found}: ${errorMessage(e)}`);
			}
		}
		this.ctx.worktrees.update(wt.id, { path: found, state: 'ready' });
		return this.ctx.worktrees.get(wt.id)!;
	}

	/**
	 * Worktrees of a repository that was moved by hand to `repo` (its folder renamed or moved): the database
	 * still names the old folder, where git cannot run, and each worktree's `.git` file still points into it.
	 * A worktree is this repository's when its git admin folder here holds its owner mark, or its saved work
	 * or branch head is under `refs/agent-tabs/` here (an archived session has no admin folder), and the
	 * repository the database names is gone or another one. Those rows and their sessions take `repo`, and
	 * `git worktree repair` points the worktree folders at their admin folders again. Returns their paths.
	 */
	private async followMovedRepository(repo: string): Promise<string[]> {
		const here = await this.worktreeIdsIn(repo);
		const elsewhere = this.ctx.worktrees.list().filter((row) => here.ids.has(row.id) && !samePath(row.repo_root, repo));
		const rehomed: WorktreeRow[] = [];
		for (const row of elsewhere) {
			// Still where the database says (this is a copy or a clone of it): the sessions stay there.
			const there = fs.existsSync(row.repo_root) ? await this.worktreeIdsIn(row.repo_root).catch(() => null) : null;
			if (there && (samePath(there.common, here.common) || there.ids.has(row.id))) {
				continue;
			}
			this.ctx.worktrees.update(row.id, { repo_root: repo });
			if (row.session_id) {
				this.ctx.sessions.setRepoRoot(row.session_id, repo);
			}
			this.ctx.logger.info(`[Worktrees][moved] the repository of ${row.path} moved from ${row.repo_root} to ${repo}; its session follows it.`);
			rehomed.push(row);
		}
		const folders = rehomed.filter((row) => row.state !== 'removed' && fs.existsSync(row.path)).map((row) => row.path);
		if (folders.length > 0) {
			// Only these: a bare `git worktree repair` would also take over worktrees of the user's own.
			await this.ctx
				.git(repo)
				.run(['worktree', 'repair', ...folders])
				.catch((e: unknown) => this.ctx.logger.warn(`[Worktrees][moved] git worktree repair in ${repo}: ${errorMessage(e)}`));
		}
		return rehomed.map((row) => row.path);
	}

	/**
	 * The repository's git folder and the ids of the worktrees it holds for Agent Tabs: owner marks in its
	 * worktrees' admin folders, saved work and branch heads under `refs/agent-tabs/`.
	 */
	private async worktreeIdsIn(repo: string): Promise<{ common: string; ids: Set<string> }> {
		const git = this.ctx.git(repo);
		const common = realPathLoose(path.resolve(repo, withoutFinalNewline(await git.run(['rev-parse', '--git-common-dir']))));
		const ids = new Set<string>();
		for (const admin of subfolders(path.join(common, 'worktrees'))) {
			const mark = readOwnerMarkIn(admin);
			if (mark) {
				ids.add(mark.worktreeId);
			}
		}
		for (const ref of await git.lines(['for-each-ref', '--format=%(refname)', 'refs/agent-tabs/saved/', 'refs/agent-tabs/heads/'])) {
			ids.add(ref.split('/')[3] ?? '');
		}
		return { common, ids };
	}

	/**
	 * Start-up reconciliation with `git worktree list`: sessions of a repository moved by hand to `repoInput`
	 * follow it (see followMovedRepository), rows whose folder was moved by hand follow it (see
	 * followMovedFolder), rows whose folder vanished are marked missing (their branch is never deleted);
	 * worktrees under our root that we do not know are adopted as detached, unless
	 * their owner mark says another state folder holds them (a window opened on a session's worktree, the
	 * CLI): those belong to a session elsewhere and are left alone. Our own live worktrees get a mark if they
	 * lack one (made before marks existed).
	 */
	async reconcile(repoInput: string): Promise<{ missing: string[]; adopted: string[]; moved: { from: string; to: string }[]; rehomed: string[]; recovered: RecoveryReport }> {
		const repo = await this.lifecycle.resolveRepository(repoInput);
		const rehomed = await this.followMovedRepository(repo);
		const recovered = await this.recoverInterrupted(repo);
		const listed = parseWorktreeList(await this.ctx.git(repo).run(['worktree', 'list', '--porcelain', '-z']));
		const livePaths = new Set(listed.filter((e) => !e.prunable).map((e) => realPathLoose(e.path)));
		const missing: string[] = [];
		const moved: { from: string; to: string }[] = [];
		for (const row of this.ctx.worktrees.list()) {
			const gone = row.repo_root === repo && (row.state === 'ready' || row.state === 'missing') && (!fs.existsSync(row.path) || !livePaths.has(realPathLoose(row.path)));
			const found = gone || (row.repo_root === repo && row.state === 'missing') ? await this.followMovedFolder(row) : null;
			if (found) {
				if (!samePath(found.path, row.path)) {
					moved.push({ from: row.path, to: found.path });
				}
			} else if (gone && row.state === 'ready') {
				this.ctx.worktrees.update(row.id, { state: 'missing' });
				missing.push(row.path);
			} else if (row.repo_root === repo && row.state === 'ready' && !readOwnerMark(row.path)) {
				try {
					markOwned(row.path, { worktreeId: row.id, sessionId: row.session_id, stateDir: this.ctx.stateDir });
				} catch (e) {
					this.ctx.logger.debug(`[Worktrees][reconcile] could not mark ${row.path}: ${errorMessage(e)}`);
				}
			}
		}
		const root = this.lifecycle.worktreeRoot(repo);
		const adopted: string[] = [];
		const known = new Set(this.ctx.worktrees.list().map((row) => realPathLoose(row.path)));
		for (const e of listed) {
			const p = realPathLoose(e.path);
			const mark = readOwnerMark(p);
			if (!e.prunable && p !== root && isSameOrInside(p, root) && !known.has(p) && (!mark || path.resolve(mark.stateDir) === path.resolve(this.ctx.stateDir))) {
				this.ctx.worktrees.insert({ id: newId('wt'), session_id: null, repo_root: repo, path: p, branch: e.branch ?? null, base_ref: null, base_commit: null, state: 'ready' });
				adopted.push(p);
			}
		}
		return { missing, adopted, moved, rehomed, recovered };
	}

	/**
	 * What a start-up does first: steps a killed process left half-done are finished or undone from what
	 * is safe. A removal (`removing`) was saved and verified before its folder was touched, so it is
	 * finished and its session archived (restorable). A restore (`restoring`) is undone: its partial folder
	 * is rebuilt from the same save on the next restore. A creation (`creating`) is rolled back. Temporary
	 * index files of dead processes are removed. `repo` limits it to one repository.
	 */
	async recoverInterrupted(repo?: string): Promise<RecoveryReport> {
		if (this.ctx.store.readOnly) {
			// Another process holds the state: a row it shows creating, restoring or removing may be that
			// process at work right now, not an interruption. It recovers its own at its next start.
			return { completedRemovals: [], undoneRestores: [], rolledBackCreates: [], removedTempFiles: [] };
		}
		const report: RecoveryReport = { completedRemovals: [], undoneRestores: [], rolledBackCreates: [], removedTempFiles: removeStaleTempIndexes() };
		for (const row of this.ctx.worktrees.list()) {
			if (repo !== undefined && row.repo_root !== repo) {
				continue;
			}
			try {
				const done = await this.recoverRow(row);
				if (done) {
					report[done].push(row.path);
				}
			} catch (e) {
				this.ctx.logger.error(`[Worktrees][recover] ${row.path} (${row.state}): ${errorMessage(e)}`);
			}
		}
		if (report.completedRemovals.length + report.undoneRestores.length + report.rolledBackCreates.length > 0) {
			this.ctx.logger.warn(
				`[Worktrees][recover] after an interruption: removals finished: ${report.completedRemovals.join(', ') || '-'}; restores undone: ${report.undoneRestores.join(', ') || '-'}; creations rolled back: ${report.rolledBackCreates.join(', ') || '-'}`,
			);
		}
		return report;
	}

	private async recoverRow(row: WorktreeRow): Promise<'completedRemovals' | 'undoneRestores' | 'rolledBackCreates' | null> {
		switch (row.state) {
			case 'removing':
				await this.finishRemoval(row);
				if (row.session_id && this.ctx.sessions.get(row.session_id)?.status === 'active') {
					this.ctx.sessions.setStatus(row.session_id, 'archived');
				}
				return 'completedRemovals';
			case 'restoring':
				await this.lifecycle.deleteFolder(row);
				this.ctx.worktrees.update(row.id, { state: 'removed' });
				return 'undoneRestores';
			case 'creating':
				await this.lifecycle.rollBackCreate(row);
				return 'rolledBackCreates';
			default:
				return null;
		}
	}
}

/**
 * In a sparse checkout `read-tree -u` writes no file outside the cone (it marks them skip-worktree). The saved
 * folder had some of those on disk, and they are written out: files that were untracked (not in the saved
 * index, such as one an agent wrote outside the cone), changed from the index, or flagged skip-worktree while
 * on disk (`flagged`). The others were absent, as the cone has them, and stay so.
 */
async function writeOutsideCone(git: Git, expected: Pick<SaveContents, 'indexTree' | 'worktreeTree'>, flagged: readonly Buffer[]): Promise<void> {
	const leftOut = (await hiddenFiles(git)).filter((h) => h.skipWorktree && !h.present);
	if (leftOut.length === 0) {
		return;
	}
	const entries = async (tree: string): Promise<Map<string, string>> =>
		new Map(
			(await git.zlist(['ls-tree', '-r', '-z', tree])).map((line) => {
				const tab = line.indexOf('\t');
				return [line.slice(tab + 1), line.slice(0, tab)];
			}),
		);
	const [inFolder, inIndex] = await Promise.all([entries(expected.worktreeTree), entries(expected.indexTree)]);
	const flaggedNames = new Set(flagged.map((p) => p.toString('utf8')));
	const wanted = leftOut
		.filter((h) => {
			const name = h.path.toString('utf8');
			return flaggedNames.has(name) || inIndex.get(name) !== inFolder.get(name);
		})
		.map((h) => h.path);
	if (wanted.length > 0) {
		await setIndexFlag(git, '--no-skip-worktree', wanted);
		await git.runBytes(['checkout-index', '-f', '-z', '--stdin'], { input: Buffer.concat(wanted.flatMap((p) => [p, Buffer.from([0])])) });
	}
}

/**
 * Writes the files a save kept as their bytes on disk (see keepRawBytes) back as those bytes: the checkout
 * before it ran them through git's conversion (line endings, a smudge filter), which may change them.
 */
async function writeVerbatim(git: Git, tree: string, names: readonly string[]): Promise<void> {
	if (names.length === 0) {
		return;
	}
	const files = await treeFiles(git, tree);
	for (const name of names) {
		const entry = files.get(name);
		if (entry) {
			fs.writeFileSync(path.join(git.cwd, name), await git.runBytes(['cat-file', 'blob', entry.blob]));
		}
	}
}
