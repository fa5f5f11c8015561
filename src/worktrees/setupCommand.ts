import { createHash } from 'node:crypto';

/** A person's answer to a repository's proposed setup command; undefined when they gave none (cancelled). */
export type SetupCommandAnswer = 'run' | 'skip' | undefined;

export interface SetupCommandSources {
	/** The user's own setup command (never a repository's): it wins, without asking. */
	own: string | undefined;
	/** The command the repository's settings propose. */
	proposed: string | undefined;
	/** Where answers are remembered (VS Code's global state). */
	memory: { get(key: string): unknown; update(key: string, value: 'run' | 'skip'): PromiseLike<void> };
	/** Asks the person whether `command`, proposed by `repo`, may run. */
	confirm: (repo: string, command: string) => PromiseLike<SetupCommandAnswer>;
}

/**
 * The setup command for new and restored worktrees of `repo`: the user's own, or else the one the repository
 * proposes, which runs only after the person confirmed it for this repository. Asked once per repository and
 * proposal (a changed proposal is asked again); a cancelled question runs nothing and is asked again next time.
 */
export async function decideSetupCommand(repo: string, sources: SetupCommandSources): Promise<string | undefined> {
	const own = sources.own?.trim();
	if (own) {
		return own;
	}
	const proposed = sources.proposed?.trim();
	if (!proposed) {
		return undefined;
	}
	const key = `agentTabs.setupCommandDecision.${createHash('sha256').update(`${repo}\0${proposed}`).digest('hex').slice(0, 24)}`;
	const remembered = sources.memory.get(key);
	if (remembered === 'run' || remembered === 'skip') {
		return remembered === 'run' ? proposed : undefined;
	}
	const answer = await sources.confirm(repo, proposed);
	if (answer === undefined) {
		return undefined;
	}
	await sources.memory.update(key, answer);
	return answer === 'run' ? proposed : undefined;
}
