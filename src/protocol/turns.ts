/**
 * Turn types shared by the core layers: what a prompt carries into an agent and how a turn ended. They live
 * here, below `db` and `agents`, so the transcript store and the agent pool agree without importing each other.
 */

/** A prompt: text plus optional mentioned files (sent as resource links) and images. */
export interface PromptInput {
	text: string;
	/** Absolute paths inside the worktree the user mentioned. */
	files?: string[];
	images?: { data: string; mimeType: string }[];
}

/** How a turn stands: `interrupted` is a turn found still `running` after a crash. */
export type TurnStatus = 'running' | 'done' | 'cancelled' | 'error' | 'interrupted';

/**
 * The reason a turn's abort signal carries when Agent Tabs shuts down under it (not a person's cancel): the
 * turn ends `interrupted`, offered for retry, rather than `cancelled`.
 */
export const shutdownAbortReason = 'agent-tabs/shutdown';
