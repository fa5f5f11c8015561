import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Every file under a folder (except .git) with its bytes and executable bit. */
export function snapshotFiles(dir: string): Record<string, { data: string; exec: boolean }> {
	const out: Record<string, { data: string; exec: boolean }> = {};
	const walk = (d: string): void => {
		for (const e of fs.readdirSync(d, { withFileTypes: true })) {
			if (e.name === '.git') {
				continue;
			}
			const p = path.join(d, e.name);
			if (e.isDirectory()) {
				walk(p);
			} else {
				out[path.relative(dir, p)] = { data: fs.readFileSync(p).toString('base64'), exec: (fs.statSync(p).mode & 0o111) !== 0 };
			}
		}
	};
	walk(dir);
	return out;
}

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

