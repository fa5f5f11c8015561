import { type Git, GitError } from './gitClient';

/** Everything removing a worktree would lose, category by category. */
export interface RiskReport {
	path: string;
	branch: string | null;
	exists: boolean;
	staged: string[];
	unstaged: string[];
	untracked: string[];
	ignoredCount: number;
	/** Upstream branch, if any. */
	upstream: string | null;
	/** Commits not on the upstream (or on no remote at all when there is no upstream). */
	unpushed: string[];
	/** Commits whose changes are not in the base branch (squash-merged and rebased work counts as merged). */
	unmerged: string[];
	/** Stashes made on this branch (stashes are shared by all worktrees of a repository). */
	stashes: string[];
	/** Chats whose agents are running in this worktree right now. */
	runningAgents: string[];
	/** True when nothing at all would be lost. */
	clean: boolean;
	/** One line a person can read. */
	summary: string;
}

function plural(n: number, word: string): string {
	return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/**
 * Inspects a worktree. `baseRef` is the branch its work should end up in (for "unmerged"). Unmerged is
 * decided by content, not only reachability: a commit whose patch is already in the base (rebased or
 * cherry-picked) is merged, and a branch whose whole change merges into the base as a no-op (squash-merged)
 * has nothing unmerged.
 */
export async function assessRisk(git: Git, input: { path: string; branch: string | null; baseRef: string | null; runningAgents?: string[] }): Promise<RiskReport> {
	const report: RiskReport = {
		path: input.path,
		branch: input.branch,
		exists: true,
		staged: [],
		unstaged: [],
		untracked: [],
		ignoredCount: 0,
		upstream: null,
		unpushed: [],
		unmerged: [],
		stashes: [],
		runningAgents: input.runningAgents ?? [],
		clean: true,
		summary: '',
	};
	const wt = git.at(input.path);
	const exists = await wt.ok(['rev-parse', '--is-inside-work-tree']);
	report.exists = exists;
	if (exists) {
		// Read-only queries: run together.
		const [staged, unstaged, untracked, ignored] = await Promise.all([
			wt.zlist(['diff', '--cached', '--name-only', '-z']),
			wt.zlist(['diff', '--name-only', '-z']),
			wt.zlist(['ls-files', '--others', '--exclude-standard', '-z']),
			wt.zlist(['ls-files', '--others', '--ignored', '--exclude-standard', '--directory', '-z']),
		]);
		Object.assign(report, { staged, unstaged, untracked, ignoredCount: ignored.length });
	}
	const branchRef = input.branch ? `refs/heads/${input.branch}` : exists ? 'HEAD' : null;
	if (branchRef && (await git.ok(['rev-parse', '--verify', '--quiet', branchRef]))) {
		const upstream = input.branch ? await git.run(['for-each-ref', '--format=%(upstream:short)', `refs/heads/${input.branch}`]).then((s) => s.trim() || null) : null;
		report.upstream = upstream;
		report.unpushed = upstream ? await git.lines(['rev-list', `${upstream}..${branchRef}`]) : (await git.lines(['remote'])).length > 0 ? await git.lines(['rev-list', branchRef, '--not', '--remotes']) : [];
		if (input.baseRef && (await git.ok(['rev-parse', '--verify', '--quiet', input.baseRef]))) {
			const ahead = await git.lines(['rev-list', `${input.baseRef}..${branchRef}`]);
			if (ahead.length > 0) {
				// `git cherry` marks commits whose patch the base already has with "-" (rebased, cherry-picked).
				const cherry = await git.lines(['cherry', input.baseRef, branchRef]);
				const notInBase = cherry.filter((l) => l.startsWith('+ ')).map((l) => l.slice(2));
				if (notInBase.length > 0 && (await mergesAsNoOp(git, input.baseRef, branchRef))) {
					report.unmerged = []; // squash-merged: merging the branch would change nothing
				} else {
					report.unmerged = notInBase;
				}
			}
		}
		if (input.branch) {
			const stashes = await git.lines(['stash', 'list', '--format=%gd %gs']).catch(() => []);
			report.stashes = stashes.filter((s) => s.includes(` on ${input.branch}:`) || s.includes(`On ${input.branch}:`));
		}
	}
	const parts: string[] = [];
	if (!report.exists) {
		parts.push('its folder is gone');
	}
	if (report.staged.length) {
		parts.push(plural(report.staged.length, 'staged change'));
	}
	if (report.unstaged.length) {
		parts.push(plural(report.unstaged.length, 'unstaged change'));
	}
	if (report.untracked.length) {
		parts.push(plural(report.untracked.length, 'untracked file'));
	}
	if (report.unpushed.length) {
		parts.push(`${plural(report.unpushed.length, 'commit')} not pushed`);
	}
	if (report.unmerged.length) {
		parts.push(`${plural(report.unmerged.length, 'commit')} not merged into ${input.baseRef}`);
	}
	if (report.stashes.length) {
		parts.push(plural(report.stashes.length, 'stash'));
	}
	if (report.runningAgents.length) {
		parts.push(`${plural(report.runningAgents.length, 'agent')} running`);
	}
	report.clean = report.staged.length + report.unstaged.length + report.untracked.length + report.unpushed.length + report.unmerged.length + report.stashes.length + report.runningAgents.length === 0;
	report.summary = report.clean ? 'Nothing would be lost.' : `At risk: ${parts.join(', ')}.`;
	if (report.ignoredCount > 0) {
		report.summary += ` (${plural(report.ignoredCount, 'ignored path')} such as build output are not kept.)`;
	}
	return report;
}

/** Whether merging `branch` into `base` would leave the base's tree unchanged (its work is already there). */
async function mergesAsNoOp(git: Git, base: string, branch: string): Promise<boolean> {
	try {
		const merged = (await git.run(['merge-tree', '--write-tree', base, branch])).split('\n')[0]!.trim();
		const baseTree = (await git.run(['rev-parse', `${base}^{tree}`])).trim();
		return merged === baseTree;
	} catch (e) {
		if (e instanceof GitError) {
			return false; // conflicts, or a git without merge-tree --write-tree: count the work as unmerged
		}
		throw e;
	}
}
