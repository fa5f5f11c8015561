import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { IDisposable } from '../common/lifecycle';
import { isAlive, ownProcStartTime, type LockOwner } from './lock';

/**
 * Handing a state folder from one live process to another. A browser refresh of a remote window (code-server,
 * VS Code Server) starts a new extension host while the old one lives on for the reconnection grace period,
 * holding the store's lock; the old window is gone, so the new one asks it to let go. A process that can hand
 * over watches for a request; one that cannot (the CLI) never answers, and the requester reports the lock.
 */
export const handoverFileName = 'agent-tabs.handover.json';

/** A request older than this is left over from a requester that gave up or died. */
const requestLifetimeMs = 60_000;

export interface HandoverRequest extends LockOwner {
	at: number;
}

/**
 * Watches `dir` for a handover request from another process and calls `release` once for the first one. The
 * holder must close its store (which removes the lock) in `release`; the requester then opens it.
 */
export function watchHandoverRequests(dir: string, release: (request: HandoverRequest) => Promise<void>, pollMs = 500): IDisposable {
	const file = path.join(dir, handoverFileName);
	let answered = false;
	const timer = setInterval(() => {
		if (answered) {
			return;
		}
		const request = readRequest(file);
		if (!request || request.pid === process.pid || Date.now() - request.at > requestLifetimeMs || !isAlive(request)) {
			return;
		}
		answered = true;
		clearInterval(timer);
		void release(request);
	}, pollMs);
	// Polling one small file: it must not keep a process alive that has nothing else to do.
	timer.unref();
	return { dispose: () => clearInterval(timer) };
}

/**
 * Asks the live holder of `dir`'s lock to let go, and waits until the lock is free (gone, or its holder gone).
 * Returns false after `timeoutMs` if the holder did not answer (it may be a process that never hands over).
 */
export async function requestHandover(dir: string, lockFile: string, owner: string, timeoutMs = 15_000): Promise<boolean> {
	const file = path.join(dir, handoverFileName);
	const request: HandoverRequest = { pid: process.pid, host: os.hostname(), owner, since: new Date().toISOString(), procStart: ownProcStartTime(), at: Date.now() };
	const temp = `${file}.${process.pid}.tmp`;
	fs.writeFileSync(temp, JSON.stringify(request));
	fs.renameSync(temp, file);
	const deadline = Date.now() + timeoutMs;
	try {
		for (;;) {
			if (lockIsFree(lockFile)) {
				return true;
			}
			if (Date.now() > deadline) {
				return false;
			}
			await new Promise((resolve) => setTimeout(resolve, 100));
		}
	} finally {
		// Only our own request: another requester may have replaced it meanwhile.
		if (readRequest(file)?.pid === process.pid) {
			fs.rmSync(file, { force: true });
		}
	}
}

function lockIsFree(lockFile: string): boolean {
	let holder: LockOwner;
	try {
		holder = JSON.parse(fs.readFileSync(lockFile, 'utf8')) as LockOwner;
	} catch (e) {
		// Missing: free. Unreadable: being written by a new holder, so not free yet.
		return (e as NodeJS.ErrnoException).code === 'ENOENT';
	}
	return typeof holder.pid !== 'number' || !isAlive(holder);
}

function readRequest(file: string): HandoverRequest | undefined {
	try {
		const request = JSON.parse(fs.readFileSync(file, 'utf8')) as HandoverRequest;
		return typeof request.pid === 'number' && typeof request.at === 'number' ? request : undefined;
	} catch {
		return undefined;
	}
}
