import { AgentTabsError } from '../common/errors';
import type { Logger } from '../common/log';
import { SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import { WorktreesRepo, type WorktreeRow } from '../db/worktreesRepo';
import { Git } from './gitClient';

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
	/**
	 * Ends the session's idle agent processes before its worktree folder goes (they would otherwise live on in
	 * a deleted folder until the idle timeout, and a restored session would reuse one working in the old one).
	 */
	endIdleAgents?: (sessionId: string) => Promise<void>;
	/** Receives setup output line by line. */
	onSetupOutput?: (line: string) => void;
	env?: NodeJS.ProcessEnv;
	/** Checkpoints kept per chat, newest turns first (setting `agentTabs.checkpoints.keepPerChat`); older ones are pruned unless their turn has a pending change. */
	checkpointsPerChat?: number;
}

/** Default for `WorktreeOptions.checkpointsPerChat`. */
export const defaultCheckpointsPerChat = 50;

/** What the rooms of the worktree service share: the store's repositories, the options, one way to run git. */
export class WorktreeContext {
	readonly sessions: SessionsRepo;
	readonly worktrees: WorktreesRepo;
	/** Written into each worktree's owner mark: the state folder whose database holds it. */
	readonly stateDir: string;

	constructor(
		readonly store: Store,
		readonly logger: Logger,
		readonly options: WorktreeOptions = {},
	) {
		this.sessions = new SessionsRepo(store);
		this.worktrees = new WorktreesRepo(store);
		this.stateDir = store.dir;
	}

	git(cwd: string): Git {
		return new Git(cwd, this.options.env);
	}

	requireWorktree(id: string): WorktreeRow {
		const wt = this.worktrees.get(id);
		if (!wt) {
			throw new AgentTabsError('worktree/unknown', `There is no worktree ${id}.`);
		}
		return wt;
	}
}
