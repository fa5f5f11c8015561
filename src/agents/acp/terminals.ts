import * as fs from 'node:fs';
import { AgentTabsError } from '../../common/errors';
import { newId } from '../../common/ids';
import { launchProcess, type LaunchedProcess } from '../../worktrees/spawnHelper';
import { resolveInsideWorktree } from '../confine';

const defaultOutputLimit = 1024 * 1024;
/** The most output kept per terminal, whatever limit the agent asks for: the host holds it in memory. */
export const maxOutputLimit = 16 * 1024 * 1024;

interface Terminal {
	proc: LaunchedProcess;
	/** Its process id once started (through the spawn helper, so not at once). */
	pid?: number;
	/** A kill asked for before the process id was known. */
	killWanted?: boolean;
	/** Output as it came, oldest first; whole chunks older than the limit are dropped as new ones come. */
	chunks: Buffer[];
	bytes: number;
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
		// Through the spawn helper: forking this (large) process per command would stall it (see spawnHelper.ts).
		const proc = launchProcess(params.command, params.args ?? [], { cwd, env, stdin: false, detached: process.platform !== 'win32' });
		const t: Terminal = {
			proc,
			chunks: [],
			bytes: 0,
			truncated: false,
			limit: outputLimit(params.outputByteLimit),
			exited: new Promise((resolve) => {
				proc.on('exit', (code, signal) => {
					t.exit ??= { exitCode: code, signal };
					resolve();
				});
				proc.on('error', (e) => {
					append(Buffer.from(`${e.message}\n`));
					t.exit = { exitCode: 127, signal: null };
					resolve();
				});
			}),
		};
		void proc.started.then((pid) => {
			t.pid = pid;
			if (t.killWanted) {
				killTree(t);
			}
		});
		// Kept as a list, not copied into one buffer per chunk: that was quadratic in the output's length.
		function append(chunk: Buffer): void {
			t.chunks.push(chunk);
			t.bytes += chunk.length;
			while (t.chunks.length > 1 && t.bytes - t.chunks[0]!.length >= t.limit) {
				t.bytes -= t.chunks.shift()!.length;
				t.truncated = true;
			}
		}
		proc.on('stdout', append);
		proc.on('stderr', append);
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
		return { output: this.redact(retainedOutput(t).toString('utf8')), truncated: t.truncated, ...(t.exit ? { exitStatus: t.exit } : {}) };
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
		killTree(this.get(id));
	}

	release(id: string): void {
		const t = this.terminals.get(id);
		if (t) {
			killTree(t);
			this.terminals.delete(id);
		}
	}

	/** Kills every running command (cancel); the terminals stay readable. */
	killAll(): void {
		for (const t of this.terminals.values()) {
			killTree(t);
		}
	}

	dispose(): void {
		this.killAll();
		this.terminals.clear();
	}
}

/** Kills the command with everything it started (its process group), now or as soon as its pid is known. */
function killTree(t: Terminal): void {
	if (t.exit) {
		return;
	}
	if (t.pid === undefined) {
		t.killWanted = true;
		return;
	}
	try {
		process.kill(process.platform !== 'win32' ? -t.pid : t.pid, 'SIGKILL');
	} catch {
		try {
			process.kill(t.pid, 'SIGKILL');
		} catch {
			// already gone
		}
	}
}

/** The limit an agent asked for, within what the host keeps (a missing or unusable one: the default). */
function outputLimit(asked: number | null | undefined): number {
	return typeof asked === 'number' && Number.isFinite(asked) && asked >= 0 ? Math.min(Math.floor(asked), maxOutputLimit) : defaultOutputLimit;
}

/** The last `limit` bytes of a terminal's output, cut at a UTF-8 character boundary as the protocol asks. */
function retainedOutput(t: Terminal): Buffer {
	let out = t.chunks.length === 1 ? t.chunks[0]! : Buffer.concat(t.chunks);
	if (out.length > t.limit) {
		let start = out.length - t.limit;
		while (start < out.length && (out[start]! & 0xc0) === 0x80) {
			start++;
		}
		out = out.subarray(start);
		t.truncated = true;
	}
	t.chunks = out.length > 0 ? [out] : [];
	t.bytes = out.length;
	return out;
}
