import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentTabsError } from '../../common/errors';
import { newId } from '../../common/ids';
import { revealHidden } from '../../common/visibleText';
import { launchProcess, type LaunchedProcess } from '../../worktrees/spawnHelper';
import { resolveInsideWorktree } from '../confine';

const defaultOutputLimit = 1024 * 1024;
/** The most output kept per terminal, whatever limit the agent asks for: the host holds it in memory. */
export const maxOutputLimit = 16 * 1024 * 1024;
/** The most output kept for all of one agent session's terminals together; past it, each keeps its newest `minKeptOutput`. */
export const maxRetainedOutput = 64 * 1024 * 1024;
const minKeptOutput = 64 * 1024;
/** The most commands of one agent session running at once. */
export const maxRunningTerminals = 32;
/**
 * A command's exit can be seen before the last of its output is read. Its exit is reported once its output
 * has ended, or, when something it started in the background keeps the output open, once none came for
 * `outputQuietMs` (at most `outputDrainMaxMs` after the exit).
 */
const outputQuietMs = 100;
const outputDrainMaxMs = 2000;

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
	/** How it ended, as soon as it did (then it no longer counts as running). */
	exit?: { exitCode: number | null; signal: string | null };
	/** Resolved once it ended and its output is all in (see `outputQuietMs`); then its exit is reported. */
	exited: Promise<void>;
	outputDone: boolean;
	lastOutputAt: number;
	drainTimer?: ReturnType<typeof setTimeout>;
	/** Ends the wait for its output at once (dispose). */
	stopDraining?: () => void;
	/**
	 * After the command itself ended: whether something it started in the background (`npm run dev &`) may
	 * still run in its process group. Its id cannot go to another process while that group has a member.
	 */
	groupMayLinger?: boolean;
	/** The turn that started it: a cancel stops that turn's commands, not a dev server an earlier turn left running. */
	turn?: object;
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
 * redacted from what goes back to the agent, and killed when the turn that started it is cancelled or the
 * session ends. Whether a command may run at all is decided before `create` (the permission policy).
 */
export class TerminalManager {
	private readonly terminals = new Map<string, Terminal>();
	/** Output bytes all terminals hold. */
	private retained = 0;

	constructor(
		private readonly root: string,
		private readonly agentEnv: Readonly<Record<string, string>>,
		/** `cut`: the text's start was cut off, maybe inside a secret. */
		private readonly redact: (text: string, cut: boolean) => string = (t) => t,
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

	/**
	 * Starts the command. `run` is how it runs, as `shellInvocation` worked it out when it was put to a
	 * person: worked out again now, a file the agent made or removed meanwhile could change it.
	 */
	create(params: TerminalRequest, run?: ShellInvocation, turn?: object): { terminalId: string } {
		const cwd = this.workingFolder(params);
		const running = [...this.terminals.values()].filter((t) => !t.exit).length;
		if (running >= maxRunningTerminals) {
			throw new AgentTabsError('terminal/tooMany', `Refused: ${running} commands this agent started are still running; wait for one to end, or kill or release one, first.`);
		}
		const env: NodeJS.ProcessEnv = { ...this.agentEnv };
		for (const { name, value } of params.env ?? []) {
			env[name] = value;
		}
		run ??= shellInvocation(params, cwd);
		// Through the spawn helper: forking this (large) process per command would stall it (see spawnHelper.ts).
		const proc = launchProcess(run.program, run.args, { cwd, env, stdin: false, detached: process.platform !== 'win32' });
		let exited: () => void = () => undefined;
		const t: Terminal = {
			proc,
			chunks: [],
			bytes: 0,
			truncated: false,
			limit: outputLimit(params.outputByteLimit),
			turn,
			outputDone: false,
			lastOutputAt: 0,
			exited: new Promise((resolve) => (exited = resolve)),
		};
		const done = (): void => {
			clearTimeout(t.drainTimer);
			t.drainTimer = undefined;
			t.outputDone = true;
			exited();
		};
		t.stopDraining = done;
		proc.on('exit', (code, signal) => {
			t.exit ??= { exitCode: code, signal };
			noteLingeringGroup(t);
			const exitAt = Date.now();
			const whenQuiet = (): void => {
				const now = Date.now();
				const quietFor = now - Math.max(t.lastOutputAt, exitAt);
				if (quietFor >= outputQuietMs || now - exitAt >= outputDrainMaxMs) {
					done();
				} else {
					t.drainTimer = setTimeout(whenQuiet, outputQuietMs - quietFor);
				}
			};
			if (!t.outputDone) {
				t.drainTimer = setTimeout(whenQuiet, outputQuietMs);
			}
		});
		// Its output has ended (and every byte of it came before this).
		proc.on('close', done);
		proc.on('error', (e) => {
			this.append(t, Buffer.from(`${e.message}\n`));
			t.exit = { exitCode: 127, signal: null };
			done();
		});
		void proc.started.then((pid) => {
			t.pid = pid;
			if (t.exit) {
				noteLingeringGroup(t);
			}
			if (t.killWanted) {
				killTree(t);
			}
		});
		proc.on('stdout', (chunk) => this.append(t, chunk));
		proc.on('stderr', (chunk) => this.append(t, chunk));
		const terminalId = newId('term');
		this.terminals.set(terminalId, t);
		return { terminalId };
	}

	/**
	 * Kept as a list, not copied into one buffer per chunk (that was quadratic in the output's length); the
	 * oldest whole chunks go once the terminal holds more than its limit, or than its share of what all of
	 * this session's terminals may hold together.
	 */
	private append(t: Terminal, chunk: Buffer): void {
		t.lastOutputAt = Date.now();
		t.chunks.push(chunk);
		t.bytes += chunk.length;
		this.retained += chunk.length;
		const allowed = Math.min(t.limit, Math.max(minKeptOutput, maxRetainedOutput - (this.retained - t.bytes)));
		while (t.chunks.length > 1 && t.bytes - t.chunks[0]!.length >= allowed) {
			const dropped = t.chunks.shift()!.length;
			t.bytes -= dropped;
			this.retained -= dropped;
			t.truncated = true;
		}
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
		const before = t.bytes;
		const output = retainedOutput(t);
		this.retained += t.bytes - before;
		return { output: this.redact(output.toString('utf8'), t.truncated), truncated: t.truncated, ...(t.exit && t.outputDone ? { exitStatus: t.exit } : {}) };
	}

	/** The command's exit; undefined when `signal` ended the wait first. */
	async waitForExit(id: string, signal?: AbortSignal): Promise<{ exitCode: number | null; signal: string | null } | undefined> {
		const t = this.get(id);
		await new Promise<void>((resolve) => {
			void t.exited.then(resolve);
			signal?.addEventListener('abort', () => resolve(), { once: true });
		});
		return t.exit;
	}

	kill(id: string): void {
		killTree(this.get(id));
	}

	release(id: string): void {
		const t = this.terminals.get(id);
		if (t) {
			killTree(t);
			if (t.exit) {
				t.stopDraining?.();
			}
			t.proc.dropOutput();
			this.retained -= t.bytes;
			t.chunks = [];
			t.bytes = 0;
			this.terminals.delete(id);
		}
	}

	/** Kills every running command, or those `turn` started (its cancel); the terminals stay readable. */
	killAll(turn?: object): void {
		for (const t of this.terminals.values()) {
			if (turn === undefined || t.turn === turn) {
				killTree(t);
			}
		}
	}

	dispose(): void {
		this.killAll();
		for (const t of this.terminals.values()) {
			if (t.exit) {
				t.stopDraining?.();
			}
		}
		this.terminals.clear();
		this.retained = 0;
	}
}

/**
 * Kills the command with everything it started (its process group), now or as soon as its pid is known;
 * also what it left running in the background after it ended itself.
 */
function killTree(t: Terminal): void {
	if (t.pid === undefined) {
		if (!t.exit) {
			t.killWanted = true;
		}
		return;
	}
	if (t.exit && !t.groupMayLinger) {
		return;
	}
	try {
		process.kill(process.platform !== 'win32' ? -t.pid : t.pid, 'SIGKILL');
	} catch {
		try {
			if (!t.exit) {
				process.kill(t.pid, 'SIGKILL');
			}
		} catch {
			// already gone
		}
	}
	if (t.exit) {
		t.groupMayLinger = false;
	}
}

/** The command ended: does anything of its process group still run? (Not asked again once it is known to be empty.) */
function noteLingeringGroup(t: Terminal): void {
	if (t.pid === undefined || process.platform === 'win32') {
		return;
	}
	try {
		process.kill(-t.pid, 0);
		t.groupMayLinger = true;
	} catch {
		t.groupMayLinger = false;
	}
}

/**
 * How a command runs: as Zed (ACP's reference client) runs it, through the system shell (bash where there is
 * one), `command` as a shell line and each of `args` quoted as one word. Agents written against Zed send
 * whole lines (`npm test && npm run lint`) with no arguments; `sh` with `-c <line>` runs the same. A command
 * naming a file that exists (`/opt/My Tools/run`, `./build.sh`) is that program, quoted, so a path with
 * spaces runs too. On Windows the command is started directly, as before.
 */
export function shellInvocation(params: Pick<TerminalRequest, 'command' | 'args'>, cwd: string): ShellInvocation {
	const args = params.args ?? [];
	if (process.platform === 'win32') {
		return { program: params.command, args };
	}
	const line = shellLine(params, cwd, shellQuote);
	return { program: posixShell(), args: ['-c', line], line };
}

/** A program and its arguments; `line`, the shell line, when it runs through the shell. */
export interface ShellInvocation {
	program: string;
	args: string[];
	line?: string;
}

/** The shell line of a command: its `command` as written (quoted if it names a file), then its arguments quoted. */
function shellLine(params: Pick<TerminalRequest, 'command' | 'args'>, cwd: string, quote: (word: string) => string): string {
	return [namesFile(params.command, cwd) ? quote(params.command) : params.command, ...(params.args ?? []).map(quote)].join(' ');
}

function namesFile(command: string, cwd: string): boolean {
	return command.includes('/') && fs.statSync(path.resolve(cwd, command), { throwIfNoEntry: false })?.isFile() === true;
}

let foundShell: string | undefined;
/** bash where there is one (what agents expect of a shell), else `/bin/sh`. */
function posixShell(): string {
	foundShell ??= ['/bin/bash', '/usr/bin/bash', '/usr/local/bin/bash', '/opt/homebrew/bin/bash'].find((candidate) => fs.existsSync(candidate)) ?? '/bin/sh';
	return foundShell;
}

/** One word for a POSIX shell, quoted only where it needs to be. */
function shellQuote(word: string): string {
	return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command longer than this, as shown, is not put to a person: nobody reads that much before saying yes. */
export const maxShownCommand = 4000;

/**
 * A command as a person approving it should see it: as a shell line (arguments quoted where needed), with
 * the variables it sets and the folder it runs in, control characters escaped and long runs of spaces
 * counted, so nothing hides past the end of a line or behind padding.
 */
export function describeCommand(params: TerminalRequest, root: string, run: ShellInvocation = shellInvocation(params, params.cwd ? path.resolve(root, params.cwd) : root)): string {
	const env = (params.env ?? []).map(({ name, value }) => `${shownWord(name)}=${shownWord(value)}`);
	const cwd = params.cwd ? path.resolve(root, params.cwd) : root;
	const line = [...env, run.line !== undefined ? shown(run.line) : [run.program, ...run.args].map(shownWord).join(' ')].join(' ');
	const folder = path.relative(root, cwd);
	return folder && folder !== '.' ? `${line}  (in ${shownWord(folder)})` : line;
}

function shownWord(word: string): string {
	return shown(shellQuote(word));
}

/** Text with what could hide part of it made visible: control and direction characters, runs of spaces. */
function shown(text: string): string {
	return revealHidden(text.replace(/ {4,}/g, (run) => ` [${run.length} spaces] `), true);
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
