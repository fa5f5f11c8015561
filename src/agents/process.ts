import { spawn, type ChildProcess } from 'node:child_process';
import { AgentTabsError } from '../common/errors';

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

export interface SpawnedAgent {
	child: ChildProcess;
	stderr: TailBuffer;
	exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Spawns an agent process in its own process group (so its children die with it), with stdio pipes. A
 * command that does not exist rejects with a message that says how to install it.
 */
export function spawnAgent(command: string, args: string[], options: { cwd: string; env: NodeJS.ProcessEnv; installHint?: string; onStderr?: (text: string) => void }): Promise<SpawnedAgent> {
	return new Promise((resolve, reject) => {
		const child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: ['pipe', 'pipe', 'pipe'], detached: process.platform !== 'win32' });
		const stderr = new TailBuffer();
		child.stderr!.setEncoding('utf8');
		child.stderr!.on('data', (d: string) => {
			stderr.push(d);
			options.onStderr?.(d);
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

/** SIGTERM to the process group, then SIGKILL after `graceMs`. Resolves once the process has exited. */
export async function terminate(agent: SpawnedAgent, graceMs: number): Promise<void> {
	const { child } = agent;
	if (child.exitCode !== null || child.signalCode !== null) {
		return;
	}
	const signal = (sig: NodeJS.Signals): void => {
		try {
			if (child.pid !== undefined && process.platform !== 'win32') {
				process.kill(-child.pid, sig);
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
	let timer: NodeJS.Timeout | undefined;
	const killed = new Promise<void>((r) => {
		timer = setTimeout(() => {
			signal('SIGKILL');
			r();
		}, graceMs);
	});
	await Promise.race([agent.exited, killed]);
	clearTimeout(timer);
	await agent.exited;
}
