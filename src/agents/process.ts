import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { AgentTabsError } from '../common/errors';
import { StreamRedactor, type SecretRedactor } from '../common/redact';

/** Keeps the last bytes of a stream (an agent's stderr), for error messages and logs. */
export class TailBuffer {
	private chunks: string[] = [];
	private size = 0;
	constructor(private readonly limit = 8192) {}
	push(text: string): void {
		this.chunks.push(text);
		this.size += text.length;
		while (this.size > this.limit && this.chunks.length > 1) {
			this.size -= this.chunks.shift()!.length;
		}
	}
	toString(): string {
		const all = this.chunks.join('');
		return all.length > this.limit ? all.slice(all.length - this.limit) : all;
	}
}

/** The last `limit` characters of `text`; when that cuts it, from the start of a word (never half a token). */
export function tailFromWord(text: string, limit: number): string {
	if (text.length <= limit) {
		return text;
	}
	const cut = text.slice(text.length - limit);
	const word = cut.search(/\s/);
	return word >= 0 ? `…${cut.slice(word)}` : '…';
}

export interface SpawnedAgent {
	child: ChildProcess;
	/** The end of its stderr, secrets already redacted (they are replaced before anything is cut). */
	stderr: { toString(): string };
	exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns an agent process in its own process group (so its children die with it), with stdio pipes. A
 * command that does not exist rejects with a message that says how to install it.
 */
export function spawnAgent(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; installHint?: string; redactor?: SecretRedactor; onStderr?: (text: string) => void }): Promise<SpawnedAgent> {
	return new Promise((resolve, reject) => {
		const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: process.platform !== 'win32' });
		// Redacted as it streams, before the tail is cut or a chunk logged: a key split across two chunks, or
		// cut in half by the tail, would otherwise pass the redactor in pieces.
		const tail = new TailBuffer();
		const scrub = options.redactor ? new StreamRedactor(options.redactor) : undefined;
		const stderr = { toString: () => tail.toString() + (scrub?.held ?? '') };
		child.stderr!.setEncoding('utf8');
		child.stderr!.on('data', (d: string) => {
			const safe = scrub ? scrub.push(d) : d;
			if (safe) {
				tail.push(safe);
				options.onStderr?.(safe);
			}
		});
		const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => child.once('exit', (code, signal) => r({ code, signal })));
		child.once('error', (e: NodeJS.ErrnoException) => {
			if (e.code === 'ENOENT') {
				reject(new AgentTabsError('agent/notInstalled', `The agent command "${command}" was not found.${options.installHint ? ` Install it with: ${options.installHint}` : ''}`));
			} else {
				reject(new AgentTabsError('agent/spawnFailed', `Could not start "${command}": ${e.message}`));
			}
		});
		child.once('spawn', () => resolve({ child, stderr, exited }));
	});
}

/**
 * Whether any process of the group `pgid` is still running. A zombie (dead, not yet reaped by an init that
 * may never reap it) does not count: it holds no files and runs no code.
 */
function groupRunning(pgid: number): boolean {
	try {
		process.kill(-pgid, 0);
	} catch {
		return false;
	}
	if (process.platform !== 'linux') {
		return true;
	}
	for (const entry of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) {
			continue;
		}
		let stat: string;
		try {
			stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
		} catch {
			continue; // exited while we looked
		}
		// After "pid (comm) ": state, ppid, pgrp, ... (comm may hold spaces and parentheses).
		const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
		if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') {
			return true;
		}
	}
	return false;
}

/** Resolves once no process of the group runs, or after `ms`, whichever is first; tells which. */
async function groupEnded(pgid: number, ms: number): Promise<boolean> {
	const deadline = Date.now() + ms;
	for (;;) {
		if (!groupRunning(pgid)) {
			return true;
		}
		if (Date.now() >= deadline) {
			return false;
		}
		await new Promise((r) => setTimeout(r, Math.min(25, Math.max(1, deadline - Date.now()))));
	}
}

/** How long after SIGKILL we wait for the kernel to take the group down (a process in uninterruptible sleep). */
const killSettleMs = 5000;

/**
 * Ends the agent's whole process tree: SIGTERM to the process group, then SIGKILL after `graceMs`. Resolves
 * once the agent and every process of its group have exited: an agent's children (Claude's native `claude`
 * under `claude-agent-acp`) may outlive their parent, and must not go on writing in folders we then remove.
 * Also ends the group of an agent that already exited by itself and left children behind.
 */
export async function terminate(agent: SpawnedAgent, graceMs: number): Promise<void> {
	const { child } = agent;
	const pgid = process.platform !== 'win32' ? child.pid : undefined;
	const leaderExited = (): boolean => child.exitCode !== null || child.signalCode !== null;
	if (leaderExited() && (pgid === undefined || !groupRunning(pgid))) {
		return;
	}
	const signal = (sig: NodeJS.Signals): void => {
		try {
			if (pgid !== undefined) {
				process.kill(-pgid, sig);
			} else {
				child.kill(sig);
			}
		} catch {
			try {
				child.kill(sig);
			} catch {
				// Already gone.
			}
		}
	};
	child.stdin?.end();
	signal('SIGTERM');
	const deadline = Date.now() + graceMs;
	let timer: NodeJS.Timeout | undefined;
	const graceOver = new Promise<void>((r) => (timer = setTimeout(r, graceMs)));
	await Promise.race([agent.exited, graceOver]);
	clearTimeout(timer);
	const rest = Math.max(0, deadline - Date.now());
	if (pgid !== undefined ? !(await groupEnded(pgid, rest)) : !leaderExited()) {
		signal('SIGKILL');
	}
	await agent.exited;
	if (pgid !== undefined) {
		await groupEnded(pgid, killSettleMs);
	}
}
