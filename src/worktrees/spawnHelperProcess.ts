/**
 * The spawn helper: a small Node process that starts git for the extension host (see `spawnHelper.ts` for
 * why). It runs what it is asked, exactly (no shell, the given environment), streams the output back as
 * bytes (pausing a command whose output the host has not taken yet) and reports the exit. It exits when its
 * parent goes away; the gits it started are in the parent's process group, so a kill of the group takes them
 * too.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { FromSpawnHelper, ToSpawnHelper } from './spawnHelper';

const children = new Map<number, ChildProcess>();

/**
 * Flow control: output bytes handed to the channel and not yet written to it (the host reads them when its
 * event loop gets to it). Past `highWater` the stream that sends is paused, so a command that floods its
 * output blocks on its own pipe instead of this process buffering gigabytes; all resume once the channel
 * has taken the backlog down to `lowWater`.
 */
let backlog = 0;
const highWater = 1024 * 1024;
const lowWater = 256 * 1024;
const paused = new Set<NodeJS.ReadableStream>();

function send(m: FromSpawnHelper): void {
	if (process.connected) {
		process.send!(m);
	}
}

function sendOutput(id: number, fd: 1 | 2, data: Buffer, stream: NodeJS.ReadableStream): void {
	if (!process.connected) {
		return;
	}
	backlog += data.length;
	process.send!({ t: 'out', id, fd, data } satisfies FromSpawnHelper, undefined, undefined, () => {
		backlog -= data.length;
		if (backlog <= lowWater && paused.size > 0) {
			for (const s of paused) {
				s.resume();
			}
			paused.clear();
		}
	});
	if (backlog > highWater) {
		stream.pause();
		paused.add(stream);
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
	const stdout = child.stdout!;
	const stderr = child.stderr!;
	stdout.on('data', (data: Buffer) => sendOutput(m.id, 1, data, stdout));
	stderr.on('data', (data: Buffer) => sendOutput(m.id, 2, data, stderr));
	child.stdin?.on('error', () => undefined); // a command that exits before reading its input: its exit code says why
	child.on('error', (e: NodeJS.ErrnoException) => send({ t: 'error', id: m.id, message: e.message, code: e.code }));
	child.on('exit', (code, signal) => send({ t: 'exit', id: m.id, code, signal }));
	child.on('close', (code, signal) => {
		children.delete(m.id);
		paused.delete(stdout);
		paused.delete(stderr);
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
			if (child?.stdout) {
				paused.delete(child.stdout);
			}
			if (child?.stderr) {
				paused.delete(child.stderr);
			}
			child?.stdout?.destroy();
			child?.stderr?.destroy();
			break;
		}
	}
});
process.on('disconnect', () => process.exit(0));
send({ t: 'ready' });
