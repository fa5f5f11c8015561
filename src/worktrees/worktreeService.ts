import type { Logger } from '../common/log';
import type { SessionRow } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import type { WorktreeRow } from '../db/worktreesRepo';
import { TurnCheckpoints } from './checkpoints';
import { WorktreeCustody, type RecoveryReport, type RemoveResult, type RestoredWorktree, type SavedWork } from './custody';
import { SessionIntegration, type IntegrationOptions } from './integration';
import type { RiskReport } from './risk';
import { SessionLifecycle } from './sessionLifecycle';
import { WorktreeContext, type WorktreeOptions } from './worktreeContext';

export { defaultCheckpointsPerChat, type WorktreeOptions } from './worktreeContext';
export { sessionBranchPrefixes, slugify } from './sessionLifecycle';
export type { RecoveryReport, RemoveResult, RestoredWorktree, SavedWork } from './custody';

/**
 * Sessions and their worktrees, with one rule: no path loses work. One front for the rooms that do the
 * work, each with one reason to change: `lifecycle` (a session's worktree created and undone), `custody`
 * (save, verify, remove, restore, attach, reconcile: the no-loss rule), `integration` (merge, pull
 * request) and `checkpoints` (per-turn checkpoints and rewind). Each method is its room's method of the
 * same name, documented there; callers may use a room directly.
 */
export class WorktreeService {
	readonly lifecycle: SessionLifecycle;
	readonly custody: WorktreeCustody;
	readonly integration: SessionIntegration;
	readonly checkpoints: TurnCheckpoints;

	constructor(store: Store, logger: Logger, options: WorktreeOptions = {}) {
		const context = new WorktreeContext(store, logger, options);
		this.lifecycle = new SessionLifecycle(context);
		this.custody = new WorktreeCustody(context, this.lifecycle);
		this.integration = new SessionIntegration(context);
		this.checkpoints = new TurnCheckpoints(context);
	}

	resolveRepository(dir: string): Promise<string> {
		return this.lifecycle.resolveRepository(dir);
	}

	resolveCheckout(dir: string): Promise<{ repo: string; checkout: string }> {
		return this.lifecycle.resolveCheckout(dir);
	}

	hasUncommittedChanges(dir: string): Promise<boolean> {
		return this.lifecycle.hasUncommittedChanges(dir);
	}

	worktreeRoot(repo: string): string {
		return this.lifecycle.worktreeRoot(repo);
	}

	/** `signal` cancels it while git makes the worktree (its post-checkout hook) or the setup command runs: nothing is left behind. */
	createSession(input: { repo: string; title: string; baseRef?: string; carryChanges?: boolean; id?: string; signal?: AbortSignal }): Promise<{ session: SessionRow; worktree: WorktreeRow; note?: string }> {
		return this.lifecycle.createSession(input);
	}

	rollBackCreate(wt: WorktreeRow): Promise<void> {
		return this.lifecycle.rollBackCreate(wt);
	}

	discardNewSession(sessionId: string): Promise<boolean> {
		return this.lifecycle.discardNewSession(sessionId);
	}

	risk(worktreeId: string): Promise<RiskReport> {
		return this.custody.risk(worktreeId);
	}

	save(worktreeId: string, reason: string): Promise<SavedWork> {
		return this.custody.save(worktreeId, reason);
	}

	remove(worktreeId: string, reason: string): Promise<RemoveResult> {
		return this.custody.remove(worktreeId, reason);
	}

	deleteSession(sessionId: string): Promise<RemoveResult | null> {
		return this.custody.deleteSession(sessionId);
	}

	archiveSession(sessionId: string): Promise<RemoveResult | null> {
		return this.custody.archiveSession(sessionId);
	}

	attachWorktree(worktreeId: string, title?: string): Promise<{ session: SessionRow; worktree: WorktreeRow }> {
		return this.custody.attachWorktree(worktreeId, title);
	}

	/** `signal` cancels it while git writes the folder (the user's index hooks run then): nothing is changed, the save stays. */
	restoreSession(sessionId: string, signal?: AbortSignal): Promise<RestoredWorktree> {
		return this.custody.restoreSession(sessionId, signal);
	}

	reconcile(repoInput: string): Promise<{ missing: string[]; adopted: string[]; moved: { from: string; to: string }[]; rehomed: string[]; recovered: RecoveryReport }> {
		return this.custody.reconcile(repoInput);
	}

	recoverInterrupted(repo?: string): Promise<RecoveryReport> {
		return this.custody.recoverInterrupted(repo);
	}

	mergeSession(sessionId: string, strategy: 'merge' | 'squash' | 'rebase', options?: IntegrationOptions): Promise<{ strategy: string; commit: string; message: string }> {
		return this.integration.mergeSession(sessionId, strategy, options);
	}

	createPullRequest(sessionId: string, ghPath: string | undefined, options?: IntegrationOptions): Promise<string> {
		return this.integration.createPullRequest(sessionId, ghPath, options);
	}

	checkpoint(cwd: string, name: string): Promise<string> {
		return this.checkpoints.checkpoint(cwd, name);
	}

	changesSinceCheckpoint(cwd: string, checkpointRef: string): Promise<{ path: string; kind: 'add' | 'modify' | 'delete' }[]> {
		return this.checkpoints.changesSince(cwd, checkpointRef);
	}

	dropCheckpoint(cwd: string, ref: string): Promise<void> {
		return this.checkpoints.drop(cwd, ref);
	}

	sweepUnrecordedCheckpoints(): Promise<string[]> {
		return this.checkpoints.sweepUnrecorded();
	}

	pruneCheckpoints(cwd: string, chatId: string): Promise<string[]> {
		return this.checkpoints.pruneCheckpoints(cwd, chatId);
	}

	rewind(cwd: string, checkpointRef: string): Promise<{ replacedRef: string; files: string[] }> {
		return this.checkpoints.rewind(cwd, checkpointRef);
	}
}
