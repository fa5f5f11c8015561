import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { AgentTabsError } from '../../common/errors';
import { newId } from '../../common/ids';
import { resolveInsideWorktree } from '../confine';

const defaultOutputLimit = 1024 * 1024;

interface Terminal {
	child: ChildProcess;
	output: Buffer;
	truncated: boolean;
	limit: number;
	exit?: { exitCode: number | null; signal: string | null };
	exited: Promise<void>;
}

export interface TerminalRequest {
	command: string;
	args?: string[];
	env?: { name: string; value: string }[];
	cwd?: string | null;
	outputByteLimit?: number | null;
}

/**
 * The ACP `terminal/*` methods: commands an agent runs through us, starting inside the worktree, with the
 * agent's own environment (never the host's), an output cap (oldest output dropped first), known secrets
 * redacted from what goes back to the agent, and killed on cancel or when the session ends. Whether a
 * command may run at all is decided before `create` (the permission policy).
 */
export class TerminalManager {
	private readonly terminals = new Map<string, Terminal>();

	constructor(
		private readonly root: string,
		private readonly agentEnv: Readonly<Record<string, string>>,
		private readonly redact: (text: string) => string = (t) => t,
	) {}

	/** The folder a request would start in, inside the worktree, or an `OutsideWorktreeError`. */
	workingFolder(params: TerminalRequest): string {
		const cwd = params.cwd ? resolveInsideWorktree(this.root, params.cwd) : this.root;
		let isDir = false;
		try {
			isDir = fs.statSync(cwd).isDirectory();
		} catch {
			// Reported below.
		}
		if (!isDir) {
			throw new AgentTabsError('terminal/noFolder', `Refused: ${params.cwd ?? cwd} is not a folder in this session's worktree.`);
		}
		return cwd;
	}

	create(params: TerminalRequest): { terminalId: string } {
		const cwd = this.workingFolder(params);
		const env: NodeJS.ProcessEnv = { ...this.agentEnv };
		for (const { name, value } of params.env ?? []) {
			env[name] = value;
		}
		const child = spawn(params.command, params.args ?? [], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: process.platform !== 'win32' });
		const t: Terminal = {
			child,
			output: Buffer.alloc(0),
			truncated: false,
			limit: params.outputByteLimit ?? defaultOutputLimit,
			exited: new Promise((resolve) => {
				child.once('exit', (code, signal) => {
					t.exit = { exitCode: code, signal };
					resolve();
				});
				child.once('error', (e) => {
					t.output = Buffer.concat([t.output, Buffer.from(`${e.message}\n`)]);
					t.exit = { exitCode: 127, signal: null };
					resolve();
				});
			}),
		};
		const append = (chunk: Buffer): void => {
			let out = Buffer.concat([t.output, chunk]);
			if (out.length > t.limit) {
				// Drop from the front at a UTF-8 character boundary, as the protocol asks.
				let start = out.length - t.limit;
				while (start < out.length && (out[start]! & 0xc0) === 0x80) {
					start++;
				}
				out = out.subarray(start);
				t.truncated = true;
			}
			t.output = out;
		};
		child.stdout!.on('data', append);
		child.stderr!.on('data', append);
		const terminalId = newId('term');
		this.terminals.set(terminalId, t);
		return { terminalId };
	}

	private get(id: string): Terminal {
		const t = this.terminals.get(id);
		if (!t) {
			throw new AgentTabsError('terminal/unknown', `No terminal ${id}.`);
		}
		return t;
	}

	output(id: string): { output: string; truncated: boolean; exitStatus?: { exitCode: number | null; signal: string | null } } {
		const t = this.get(id);
		return { output: this.redact(t.output.toString('utf8')), truncated: t.truncated, ...(t.exit ? { exitStatus: t.exit } : {}) };
	}

	async waitForExit(id: string, signal?: AbortSignal): Promise<{ exitCode: number | null; signal: string | null }> {
		const t = this.get(id);
		await new Promise<void>((resolve) => {
			void t.exited.then(resolve);
			signal?.addEventListener('abort', () => resolve(), { once: true });
		});
		return t.exit ?? { exitCode: null, signal: null };
	}

	kill(id: string): void {
		killTree(this.get(id).child);
	}

	release(id: string): void {
		const t = this.terminals.get(id);
		if (t) {
			killTree(t.child);
			this.terminals.delete(id);
		}
	}

	/** Kills every running command (cancel); the terminals stay readable. */
	killAll(): void {
		for (const t of this.terminals.values()) {
			killTree(t.child);
		}
	}

	dispose(): void {
		this.killAll();
		this.terminals.clear();
	}
}

function killTree(child: ChildProcess): void {
	if (child.exitCode !== null || child.signalCode !== null) {
		return;
	}
	try {
		if (child.pid !== undefined && process.platform !== 'win32') {
			process.kill(-child.pid, 'SIGKILL');
			return;
		}
	} catch {
		// Fall through to the direct kill.
	}
	child.kill('SIGKILL');
}
