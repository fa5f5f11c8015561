import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';
import type { Store } from '../db/store';
import { rebuildFromGit, type RebuildInput, type RebuildReport } from '../worktrees/rebuild';

/** Exit code of every command that found the database damaged (and rebuilt what git knows instead). */
export const damagedStoreExitCode = 3;

/** The database was damaged: it was kept aside, what git knows was rebuilt, and the command did nothing else. */
export class StoreDamagedError extends AgentTabsError {
	constructor(
		message: string,
		readonly details: { keptAs: string[]; problems: string[]; rebuilt: RebuildReport['rebuilt']; rebuildProblems: string[] },
	) {
		super('store/damaged', message);
	}
}

/** One line a rebuilt session or worktree, for people. */
export function describeRebuilt(report: RebuildReport): string[] {
	return report.rebuilt.map((r) => {
		const what = r.kind === 'session' ? `session ${r.sessionId}` : r.kind === 'archived' ? `archived session ${r.sessionId}` : `detached worktree ${r.worktreeId}`;
		return `  ${what}  ${r.branch ?? '-'}  ${r.path}  "${r.title}"`;
	});
}

/**
 * A damaged database found by any command: rebuild what git still knows (the worktrees under the worktrees
 * folder, `refs/agent-tabs/*` of `--repo` and of the repositories those worktrees belong to), close the
 * store, and stop with an error that names the file kept aside and lists what came back. The command itself
 * does not run: nothing acts on state the user has not seen. The next command runs normally.
 */
export async function stopOnDamagedStore(store: Store, input: Omit<RebuildInput, 'store'>): Promise<never> {
	const damaged = store.recovery.damaged!;
	let report: RebuildReport;
	try {
		report = await rebuildFromGit({ ...input, store });
		await store.rebuildDone();
	} finally {
		await store.close();
	}
	const lines = [`The Agent Tabs database in ${path.resolve(store.dir)} was damaged and could not be used; nothing was deleted. ${damaged.problems.join(' ')}`];
	if (report.repos.length === 0) {
		lines.push(`No repository was in reach to rebuild sessions from; run "agent-tabs session rebuild --repo <dir>" for each repository you used.`);
	} else {
		lines.push(`Rebuilt from git (${report.repos.join(', ')}): ${report.rebuilt.length} session${report.rebuilt.length === 1 ? '' : 's'} and worktrees.`, ...describeRebuilt(report));
	}
	lines.push(...report.problems.map((p) => `Not rebuilt: ${p}`));
	if (report.problems.length > 0 && report.repos.length > 0) {
		lines.push('Fix that and run "agent-tabs session rebuild --repo <dir>" to try again; it adds nothing twice.');
	}
	lines.push('Chats and transcripts are not kept in git and were not rebuilt. The command did nothing else; run it again.');
	throw new StoreDamagedError(lines.join('\n'), { keptAs: damaged.keptAs, problems: damaged.problems, rebuilt: report.rebuilt, rebuildProblems: report.problems });
}
