import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';

/** Who holds a state folder: written into the lock file so a second process can say who is in the way. */
export interface LockOwner {
	pid: number;
	host: string;
	owner: string;
	since: string;
	/** Linux process start time, so a recycled pid is not mistaken for the holder. */
	procStart?: string;
}

/** A second process tried to open a database that another live process holds. */
export class StoreLockedError extends AgentTabsError {
	constructor(
		readonly lockFile: string,
		readonly holder: LockOwner,
	) {
		super(
			'store/locked',
			`The Agent Tabs state folder ${path.dirname(lockFile)} is in use by ${holder.owner} (pid ${holder.pid} on ${holder.host}, since ${holder.since}). ` +
				'Only one process may write it at a time: close the other window or command, or use a different state folder. ' +
				`If that process no longer exists, delete ${lockFile}.`,
		);
	}
}

/** Linux process start time (clock ticks since boot), so a recycled pid is not mistaken for its earlier owner. */
export function procStartTime(pid: number): string | undefined {
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		// Field 22 (starttime) counted after the parenthesised command name, which may contain spaces.
		const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		return fields[19];
	} catch {
		return undefined;
	}
}

let ownStartTime: { value: string | undefined } | undefined;

/** This process's start time, read once: `/proc/<pid>/stat` costs a quarter of a millisecond each time. */
export function ownProcStartTime(): string | undefined {
	ownStartTime ??= { value: procStartTime(process.pid) };
	return ownStartTime.value;
}

/** Whether the process that wrote `holder` still runs (assumed so for another host, which we cannot check). */
export function isAlive(holder: Pick<LockOwner, 'pid' | 'host' | 'procStart'>): boolean {
	if (holder.host !== os.hostname()) {
		// Another machine sharing the folder: we cannot check, so we must assume it is alive.
		return true;
	}
	try {
		process.kill(holder.pid, 0);
	} catch (e) {
		return (e as NodeJS.ErrnoException).code === 'EPERM';
	}
	if (holder.procStart !== undefined) {
		const now = procStartTime(holder.pid);
		if (now !== undefined && now !== holder.procStart) {
			return false;
		}
	}
	return true;
}

/**
 * An exclusive lock on a state folder: a file created with O_EXCL holding the owner's pid. A lock whose
 * process is gone (crash, kill -9) is stale and taken over; a live one makes `acquire` throw
 * `StoreLockedError` with a message a person can act on.
 */
export class StoreLock {
	private released = false;

	private constructor(
		readonly file: string,
		private readonly token: string,
	) {}

	static acquire(file: string, owner: string): StoreLock {
		const me: LockOwner = { pid: process.pid, host: os.hostname(), owner, since: new Date().toISOString(), procStart: ownProcStartTime() };
		const token = JSON.stringify(me);
		for (let attempt = 0; attempt < 5; attempt++) {
			try {
				const fd = fs.openSync(file, 'wx');
				try {
					// Not fsynced (it cost an open up to 12 ms on a busy disk): the lock speaks only for a live
					// process, and after a crash of the machine no process holds it; an empty or torn file that
					// is not fresh is taken over as stale (below).
					fs.writeSync(fd, token);
				} finally {
					fs.closeSync(fd);
				}
				return new StoreLock(file, token);
			} catch (e) {
				if ((e as NodeJS.ErrnoException).code !== 'EEXIST') {
					throw e;
				}
			}
			let holder: LockOwner | undefined;
			try {
				holder = JSON.parse(fs.readFileSync(file, 'utf8')) as LockOwner;
			} catch {
				holder = undefined;
			}
			const seen = holder ? JSON.stringify(holder) : '';
			if (holder && typeof holder.pid === 'number' && isAlive(holder)) {
				throw new StoreLockedError(file, holder);
			}
			if (!holder) {
				// Empty or unreadable: either its writer died between create and write (stale), or it is
				// writing right now. Give a live writer a moment before calling it stale.
				const age = Date.now() - safeMtime(file);
				if (age < 2000 && attempt < 4) {
					sleepSync(100);
					continue;
				}
			}
			// Stale: take it over. Rename first so two processes racing for a stale lock cannot both win.
			const grave = `${file}.stale-${process.pid}-${attempt}`;
			try {
				fs.renameSync(file, grave);
				const taken = fs.readFileSync(grave, 'utf8');
				if (taken.length > 0 && taken !== seen && !sameHolder(taken, seen)) {
					// Between our read and the rename another process replaced the stale lock with its own:
					// put theirs back and look again.
					fs.renameSync(grave, file);
					continue;
				}
				fs.rmSync(grave, { force: true });
			} catch {
				// Someone else took it over first; loop and look again.
			}
		}
		throw new AgentTabsError('store/lockFailed', `Could not take the lock ${file}.`);
	}

	/** Whether this process still holds the lock (nobody removed or replaced the file). */
	isHeld(): boolean {
		try {
			return !this.released && fs.readFileSync(this.file, 'utf8') === this.token;
		} catch {
			return false;
		}
	}

	release(): void {
		if (this.released) {
			return;
		}
		this.released = true;
		if (this.isHeldIgnoringRelease()) {
			fs.rmSync(this.file, { force: true });
		}
	}

	private isHeldIgnoringRelease(): boolean {
		try {
			return fs.readFileSync(this.file, 'utf8') === this.token;
		} catch {
			return false;
		}
	}
}

function sameHolder(a: string, b: string): boolean {
	try {
		return JSON.stringify(JSON.parse(a)) === b;
	} catch {
		return false;
	}
}

function safeMtime(file: string): number {
	try {
		return fs.statSync(file).mtimeMs;
	} catch {
		return 0;
	}
}

function sleepSync(ms: number): void {
	Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
