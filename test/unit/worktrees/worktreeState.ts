import { execFileSync, spawnSync } from 'node:child_process';
import { snapshotFiles } from '../gitRepo';

export { snapshotFiles };

/** Everything a worktree holds: files with bytes and modes, the index entries, HEAD and its branch, git's status. */
export function fullState(wt: string): Record<string, unknown> {
	const run = (...args: string[]): string => execFileSync('git', args, { cwd: wt, encoding: 'utf8' });
	return {
		files: snapshotFiles(wt),
		index: run('ls-files', '--stage', '-z'),
		head: run('rev-parse', 'HEAD').trim(),
		branch: spawnSync('git', ['symbolic-ref', '-q', 'HEAD'], { cwd: wt, encoding: 'utf8' }).stdout.trim() || null,
		status: run('status', '--porcelain=v1', '-z', '--untracked-files=all'),
	};
}

