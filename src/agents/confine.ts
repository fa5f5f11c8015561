import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';

/** An agent asked for a path outside its worktree. The message goes back to the agent as is. */
export class OutsideWorktreeError extends AgentTabsError {
	constructor(requested: string, root: string, why: string) {
		super('fs/outsideWorktree', `Refused: ${requested} is outside this session's worktree (${root}): ${why}. Agents may only read and write inside it.`);
	}
}

/** The nearest existing ancestor of `p` (itself included), resolved through symlinks. */
function realpathOfExistingPrefix(p: string): { real: string; rest: string[] } {
	const rest: string[] = [];
	let current = p;
	for (;;) {
		try {
			return { real: fs.realpathSync(current), rest };
		} catch (e) {
			if ((e as NodeJS.ErrnoException).code !== 'ENOENT' && (e as NodeJS.ErrnoException).code !== 'ENOTDIR') {
				throw e;
			}
		}
		const parent = path.dirname(current);
		if (parent === current) {
			return { real: current, rest };
		}
		rest.unshift(path.basename(current));
		current = parent;
	}
}

function isInside(child: string, root: string): boolean {
	const rel = path.relative(root, child);
	return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * Resolves a path an agent sent (absolute, or relative to the worktree) to an absolute path inside `root`,
 * or throws `OutsideWorktreeError`. Checked twice: lexically (`..`, other absolute paths) and physically
 * (symlinks anywhere on the way that lead out), so a link inside the worktree cannot be used to escape it.
 */
export function resolveInsideWorktree(root: string, requested: string): string {
	if (typeof requested !== 'string' || requested.length === 0 || requested.includes('\0')) {
		throw new OutsideWorktreeError(String(requested), root, 'not a valid path');
	}
	const rootResolved = path.resolve(root);
	const abs = path.resolve(rootResolved, requested);
	if (!isInside(abs, rootResolved)) {
		throw new OutsideWorktreeError(requested, rootResolved, 'it leads outside the worktree');
	}
	const rootReal = fs.realpathSync(rootResolved);
	const { real, rest } = realpathOfExistingPrefix(abs);
	const physical = path.join(real, ...rest);
	if (!isInside(physical, rootReal)) {
		throw new OutsideWorktreeError(requested, rootResolved, 'a symbolic link on the way points outside it');
	}
	return abs;
}

/** The path relative to the worktree, with forward slashes, for storage and display. */
export function worktreeRelative(root: string, abs: string): string {
	return path.relative(path.resolve(root), abs).split(path.sep).join('/');
}
