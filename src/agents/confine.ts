import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';

/** An agent asked for a path outside its worktree. The message goes back to the agent as is. */
export class OutsideWorktreeError extends AgentTabsError {
	constructor(requested: string, root: string, why: string) {
		super('fs/outsideWorktree', `Refused: ${requested} is outside this session's worktree (${root}): ${why}. Agents may only read and write inside it.`);
	}
}

/**
 * Where `p` physically leads: its nearest existing ancestor resolved through symlinks, and the rest. A
 * dangling symlink on the way (its target does not exist yet) is followed too: writing through it would
 * create its target, wherever that is.
 */
function realpathOfExistingPrefix(p: string, depth = 0): { real: string; rest: string[] } {
	const rest: string[] = [];
	let current = p;
	for (;;) {
		try {
			return { real: fs.realpathSync(current), rest };
		} catch (e) {
			const code = (e as NodeJS.ErrnoException).code;
			if (code === 'ELOOP') {
				throw new Error(`${p} has a loop of symbolic links`);
			}
			if (code !== 'ENOENT' && code !== 'ENOTDIR') {
				throw e;
			}
		}
		if (fs.lstatSync(current, { throwIfNoEntry: false })?.isSymbolicLink()) {
			if (depth > 40) {
				throw new Error(`${p} has a loop of symbolic links`);
			}
			const target = realpathOfExistingPrefix(path.resolve(path.dirname(current), fs.readlinkSync(current)), depth + 1);
			return { real: target.real, rest: [...target.rest, ...rest] };
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
	return confined(root, requested).abs;
}

/**
 * `resolveInsideWorktree`, with where the path physically leads and the worktree's real path; `existing`, the
 * physical folder or file the path's existing part leads to, and `missing`, the names after it.
 */
function confined(root: string, requested: string): { abs: string; physical: string; rootReal: string; existing: string; missing: string[] } {
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
	return { abs, physical, rootReal, existing: real, missing: rest };
}

/** Whether a path (relative, either separator) goes through a folder or file named `.git`. */
function touchesGitAdmin(rel: string): boolean {
	return rel.split(/[\\/]+/).some((part) => part.toLowerCase() === '.git');
}

/**
 * Resolves a path an agent wants to write, as `resolveInsideWorktree`, and also refuses git's own files
 * (`.git`, at the top or in a repository inside the worktree): a `.git` file pointed at a folder the agent
 * made would hand the agent the git configuration, and with it commands that Agent Tabs' own git runs.
 * Returns the path as written and where it physically leads (symlinks resolved).
 */
export function resolveWritableInsideWorktree(root: string, requested: string): ReturnType<typeof confined> {
	const resolved = confined(root, requested);
	const { abs, physical, rootReal } = resolved;
	if (touchesGitAdmin(path.relative(path.resolve(root), abs)) || touchesGitAdmin(path.relative(rootReal, physical))) {
		throw new AgentTabsError('fs/gitAdmin', `Refused: ${requested} is one of git's own files (.git). Agents may not write them; use git commands in a terminal instead.`);
	}
	return resolved;
}

/** Where an open file descriptor really is (Linux: /proc), or undefined where that cannot be asked. */
function openedPath(fd: number): string | undefined {
	try {
		return fs.readlinkSync(`/proc/self/fd/${fd}`);
	} catch {
		return undefined;
	}
}

/** A file that was opened after its path was checked must still be inside: a folder swapped for a symlink in between would take it out. */
function checkOpened(fd: number, root: string, rootReal: string, requested: string): void {
	const where = openedPath(fd);
	if (where !== undefined && !isInside(where, rootReal)) {
		throw new OutsideWorktreeError(requested, path.resolve(root), 'a folder on the way was replaced by a symbolic link that points outside it');
	}
}

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK, O_DIRECTORY } = fs.constants;

/**
 * Makes the folders `missing` (names, in order) under `existing`, a folder inside the worktree. Where an open
 * folder can be named (Linux: /proc/self/fd), each is made inside the folder opened before it, checked once
 * open, never by its path: a folder on the way swapped for a link out between the check and the making
 * would otherwise have them made outside. Elsewhere, by path (`mkdir -p`).
 */
async function makeFolders(existing: string, missing: readonly string[], root: string, rootReal: string, requested: string): Promise<void> {
	if (missing.length === 0) {
		return;
	}
	if (process.platform !== 'linux') {
		await fs.promises.mkdir(path.join(existing, ...missing), { recursive: true });
		return;
	}
	let folder = await fs.promises.open(existing, O_RDONLY | O_DIRECTORY);
	try {
		checkOpened(folder.fd, root, rootReal, requested);
		for (const name of missing) {
			const inFolder = `/proc/self/fd/${folder.fd}/${name}`;
			await fs.promises.mkdir(inFolder).catch((e: unknown) => {
				if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
					throw e;
				}
			});
			const next = await fs.promises.open(inFolder, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
			await folder.close();
			folder = next;
		}
	} finally {
		await folder.close();
	}
}

/**
 * The most of a file one read gives an agent (the whole file, or the lines it asked for). The text goes
 * back as one JSON string held by the host: a large binary file (a database, a core dump) read whole would
 * take the host's memory and pass what one string can hold.
 */
export const maxReadBytes = 16 * 1024 * 1024;

/** Which lines to read (1-based `line`, at most `limit` of them), as `fs/read_text_file` asks. */
export interface LineRange {
	line?: number;
	limit?: number;
}

/**
 * Reads a text file an agent asked for, inside its worktree: a regular file only (a FIFO or device would
 * block a thread of the host for good), opened without blocking and checked again once open. At most
 * `maxReadBytes` come back: a larger file is refused unless the agent asks for lines of it, which are read
 * as a stream, never the whole file at once.
 */
export async function readFileInsideWorktree(root: string, requested: string, range?: LineRange): Promise<string> {
	const { physical, rootReal } = confined(root, requested);
	const handle = await fs.promises.open(physical, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
	try {
		const stat = await handle.stat();
		if (!stat.isFile()) {
			throw new AgentTabsError('fs/notAFile', `Refused: ${requested} is not a regular file.`);
		}
		checkOpened(handle.fd, root, rootReal, requested);
		const tooLarge = (): AgentTabsError =>
			new AgentTabsError(
				'fs/tooLarge',
				range
					? `Refused: the lines asked for from ${requested} hold more than ${megabytes(maxReadBytes)}, the most one read gives; ask for fewer lines.`
					: `Refused: ${requested} is ${megabytes(stat.size)}; one read gives at most ${megabytes(maxReadBytes)}. Ask for part of it (line and limit).`,
			);
		if (!range) {
			if (stat.size > maxReadBytes) {
				throw tooLarge();
			}
			return (await readAtMost(handle, maxReadBytes, tooLarge)).toString('utf8');
		}
		return (await readLines(handle, range, tooLarge)).toString('utf8');
	} finally {
		await handle.close();
	}
}

function megabytes(bytes: number): string {
	return `${(bytes / (1024 * 1024)).toFixed(bytes < 1024 * 1024 ? 2 : 0)} MB`;
}

const readChunkBytes = 1024 * 1024;

/** The file from where the handle is to its end, failing once it holds more than `max` bytes (it may grow while read). */
async function readAtMost(handle: fs.promises.FileHandle, max: number, tooLarge: () => Error): Promise<Buffer> {
	const chunks: Buffer[] = [];
	let total = 0;
	for (;;) {
		const buffer = Buffer.allocUnsafe(Math.min(readChunkBytes, max + 1 - total));
		const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
		if (bytesRead === 0) {
			return Buffer.concat(chunks, total);
		}
		chunks.push(buffer.subarray(0, bytesRead));
		total += bytesRead;
		if (total > max) {
			throw tooLarge();
		}
	}
}

/**
 * Lines `line` (1-based) to `line + limit - 1` of the file, joined by "\n", as `content.split('\n')` would
 * give them, read chunk by chunk: lines before the range are skipped, reading stops after the last one.
 */
async function readLines(handle: fs.promises.FileHandle, range: LineRange, tooLarge: () => Error): Promise<Buffer> {
	const first = Math.max(0, Math.floor((range.line ?? 1) - 1));
	const end = range.limit === undefined ? Infinity : first + Math.max(0, Math.floor(range.limit));
	const kept: Buffer[] = [];
	let keptBytes = 0;
	let index = 0; // the line the next byte belongs to
	const keep = (piece: Buffer): void => {
		kept.push(piece);
		keptBytes += piece.length;
		if (keptBytes > maxReadBytes) {
			throw tooLarge();
		}
	};
	const buffer = Buffer.allocUnsafe(readChunkBytes);
	while (index < end) {
		const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
		if (bytesRead === 0) {
			break;
		}
		const read = buffer.subarray(0, bytesRead);
		let from = 0;
		while (from < bytesRead && index < end) {
			const newline = read.indexOf(0x0a, from);
			const to = newline === -1 ? bytesRead : newline + 1;
			if (index >= first) {
				keep(Buffer.from(read.subarray(from, to)));
			}
			if (to === newline + 1) {
				index++;
			}
			from = to;
		}
	}
	// What was kept is whole lines, each with its "\n" except perhaps the file's last: the separators between
	// the lines asked for stay, the one after the last does not.
	const text = Buffer.concat(kept, keptBytes);
	return index > first && text.length > 0 && text[text.length - 1] === 0x0a && index >= end ? text.subarray(0, text.length - 1) : text;
}

/**
 * Writes a text file for an agent, inside its worktree (folders created as needed), and says whether it
 * existed. The file is opened without following a symlink at its end and without truncating, checked
 * again once open (a folder on the way swapped for a symlink in between), and only then emptied and
 * written; a file this call created outside is removed again.
 */
export async function writeFileInsideWorktree(root: string, requested: string, content: string): Promise<{ abs: string; existed: boolean }> {
	const { abs, physical, rootReal, existing, missing } = resolveWritableInsideWorktree(root, requested);
	await makeFolders(existing, missing.slice(0, -1), root, rootReal, requested);
	let created = true;
	let handle: fs.promises.FileHandle;
	try {
		handle = await fs.promises.open(physical, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o666);
	} catch (e) {
		if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
			throw e;
		}
		created = false;
		handle = await fs.promises.open(physical, O_WRONLY | O_NOFOLLOW | O_NONBLOCK).catch((e: unknown) => {
			// ENXIO: a FIFO nobody reads; EISDIR: a folder.
			const code = (e as NodeJS.ErrnoException).code;
			throw code === 'ENXIO' || code === 'EISDIR' ? new AgentTabsError('fs/notAFile', `Refused: ${requested} is not a regular file.`) : e;
		});
	}
	try {
		try {
			if (!(await handle.stat()).isFile()) {
				throw new AgentTabsError('fs/notAFile', `Refused: ${requested} is not a regular file.`);
			}
			checkOpened(handle.fd, root, rootReal, requested);
		} catch (e) {
			if (created) {
				await fs.promises.unlink(openedPath(handle.fd) ?? physical).catch(() => undefined);
			}
			throw e;
		}
		await handle.truncate(0);
		await handle.writeFile(content, 'utf8');
	} finally {
		await handle.close();
	}
	return { abs, existed: !created };
}

/** The path relative to the worktree, with forward slashes, for storage and display. */
export function worktreeRelative(root: string, abs: string): string {
	return path.relative(path.resolve(root), abs).split(path.sep).join('/');
}
