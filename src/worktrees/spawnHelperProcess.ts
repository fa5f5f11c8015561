/**
 * The spawn helper: a small Node process that starts git for the extension host (see `spawnHelper.ts` for
 * why). It runs what it is asked, exactly (no shell, the given environment), streams the output back as
 * bytes and reports the exit. It exits when its parent goes away; the gits it started are in the parent's
 * process group, so a kill of the group takes them too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { FromSpawnHelper, ToSpawnHelper } from './spawnHelper';

const children = new Map<number, ChildProcess>();

function send(m: FromSpawnHelper): void {
	if (process.connected) {
		process.send!(m);
	}
}

function start(m: Extract<ToSpawnHelper, { t: 'spawn' }>): void {
	let child: ChildProcess;
	try {
		child = spawn(m.command, m.args, { cwd: m.cwd, env: m.env, stdio: [m.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], windowsHide: true, detached: m.detached });
	} catch (e) {
		const err = e as NodeJS.ErrnoException;
		send({ t: 'error', id: m.id, message: err.message, code: err.code });
		send({ t: 'close', id: m.id, code: null, signal: null });
		return;
	}
	children.set(m.id, child);
	send({ t: 'spawned', id: m.id, pid: child.pid });
	child.stdout!.on('data', (data: Buffer) => send({ t: 'out', id: m.id, fd: 1, data }));
	child.stderr!.on('data', (data: Buffer) => send({ t: 'out', id: m.id, fd: 2, data }));
	child.stdin?.on('error', () => undefined); // a command that exits before reading its input: its exit code says why
	child.on('error', (e: NodeJS.ErrnoException) => send({ t: 'error', id: m.id, message: e.message, code: e.code }));
	child.on('exit', (code, signal) => send({ t: 'exit', id: m.id, code, signal }));
	child.on('close', (code, signal) => {
		children.delete(m.id);
		send({ t: 'close', id: m.id, code, signal });
	});
}

process.on('message', (m: ToSpawnHelper) => {
	switch (m.t) {
		case 'spawn':
			start(m);
			break;
		case 'stdin':
			children.get(m.id)?.stdin?.end(m.data);
			break;
		case 'release': {
			// A process the command left behind may hold the pipes after it ended: stop waiting for them.
			const child = children.get(m.id);
			child?.stdout?.destroy();
			child?.stderr?.destroy();
			break;
		}
	}
});
process.on('disconnect', () => process.exit(0));
send({ t: 'ready' });
