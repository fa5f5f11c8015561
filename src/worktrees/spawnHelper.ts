import { fork, spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as path from 'node:path';
import { endProcessTree, processesTagged } from './gitProcess';

/**
 * Git, and the commands agents run in terminals, are started by a small helper process, not by the extension
 * host. Starting a process forks the one that
 * starts it: the kernel copies its page tables and makes its every page copy-on-write until the child execs,
 * and the whole address space is locked meanwhile, so a worker thread does not help. Measured on this
 * project's machine, one spawn held a Node thread 1.4 ms with an empty heap, 23 ms with 200 MB in use and
 * 54 ms with 800 MB; an extension host holds hundreds of megabytes (its own and every other extension's),
 * and a turn runs a handful of gits at its start and end (and an agent a command per step). The helper's heap stays small, so its forks are
 * cheap, and the host only exchanges messages with it.
 *
 * The helper starts at the first command and stays (idle, it does not keep the host alive). If it cannot
 * start, commands are spawned directly, as before; if it dies, the commands it was running fail in plain
 * words (their processes ended) and the next command starts a new one.
 */

export type ToSpawnHelper =
	| { t: 'spawn'; id: number; command: string; args: string[]; cwd: string; env: NodeJS.ProcessEnv; stdin: boolean; detached: boolean }
	| { t: 'stdin'; id: number; data: Buffer | string }
	| { t: 'release'; id: number };

export type FromSpawnHelper =
	| { t: 'ready' }
	| { t: 'spawned'; id: number; pid: number | undefined }
	| { t: 'out'; id: number; fd: 1 | 2; data: Uint8Array }
	| { t: 'error'; id: number; message: string; code?: string }
	| { t: 'exit'; id: number; code: number | null; signal: NodeJS.Signals | null }
	| { t: 'close'; id: number; code: number | null; signal: NodeJS.Signals | null };

export interface LaunchOptions {
	cwd: string;
	env: NodeJS.ProcessEnv;
	/** Whether the process gets input (`input()`); otherwise its stdin is closed. */
	stdin: boolean;
	/** In a process group of its own (POSIX), so it can be ended with everything it started. */
	detached?: boolean;
}

/**
 * A started process, wherever it was started from. Events: `stdout` and `stderr` (a Buffer each), `error`
 * (it could not start: `code` says why, e.g. ENOENT), `exit` (exit code, signal) when it ended, and `close`
 * (the same) once, after all its output (a process it left running may hold its pipes longer).
 */
export interface LaunchedProcess {
	/** Its process id once started; undefined when it could not start. */
	readonly started: Promise<number | undefined>;
	/** Gives the process its whole input and closes its stdin (launched with `stdin: true`). */
	input(data: Buffer | string): void;
	/** Stops reading its output: a process it left behind may hold the pipes after it ended. */
	dropOutput(): void;
	on(event: 'stdout' | 'stderr', listener: (chunk: Buffer) => void): this;
	on(event: 'error', listener: (error: NodeJS.ErrnoException) => void): this;
	on(event: 'exit' | 'close', listener: (code: number | null, signal: NodeJS.Signals | null) => void): this;
}

const helperScript = path.join(__dirname, 'spawnHelperProcess.js');

/** A process the helper runs, as the host sees it. */
class HelperProcess extends EventEmitter implements LaunchedProcess {
	pid: number | undefined;
	/** The `exit` event was given. */
	private exitGiven = false;
	private resolveStarted!: (pid: number | undefined) => void;
	readonly started = new Promise<number | undefined>((resolve) => (this.resolveStarted = resolve));

	constructor(
		private readonly helper: SpawnHelper,
		readonly id: number,
	) {
		super();
	}

	spawned(pid: number | undefined): void {
		this.pid = pid;
		this.resolveStarted(pid);
	}

	input(data: Buffer | string): void {
		this.helper.send({ t: 'stdin', id: this.id, data });
	}

	dropOutput(): void {
		this.helper.send({ t: 'release', id: this.id });
	}

	exited(code: number | null, signal: NodeJS.Signals | null): void {
		if (!this.exitGiven) {
			this.exitGiven = true;
			this.emit('exit', code, signal);
		}
	}

	closed(code: number | null, signal: NodeJS.Signals | null): void {
		this.resolveStarted(this.pid);
		this.exited(code, signal);
		this.emit('close', code, signal);
	}
}

/** A process spawned right here (no helper): the same interface over a ChildProcess. */
class DirectProcess extends EventEmitter implements LaunchedProcess {
	readonly started: Promise<number | undefined>;
	private readonly child: ChildProcess;

	constructor(command: string, args: string[], options: LaunchOptions) {
		super();
		this.child = spawn(command, args, { cwd: options.cwd, env: options.env, stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'], windowsHide: true, detached: options.detached ?? false });
		this.started = Promise.resolve(this.child.pid);
		this.child.stdout!.on('data', (chunk: Buffer) => this.emit('stdout', chunk));
		this.child.stderr!.on('data', (chunk: Buffer) => this.emit('stderr', chunk));
		this.child.stdin?.on('error', () => undefined); // a command that exits before reading its input: its exit code says why
		this.child.on('error', (e) => this.emit('error', e));
		this.child.on('exit', (code, signal) => this.emit('exit', code, signal));
		this.child.on('close', (code, signal) => this.emit('close', code, signal));
	}

	input(data: Buffer | string): void {
		this.child.stdin?.end(data);
	}

	dropOutput(): void {
		this.child.stdout?.destroy();
		this.child.stderr?.destroy();
	}
}

/**
 * Each command started through the helper carries this variable, unique to it, so that when the helper dies
 * before saying it started one, the command can still be found (and ended) by it: its process and whatever
 * it started inherit it.
 */
const launchTagVariable = 'AGENT_TABS_LAUNCH';

/** A command asked of the helper, kept until it says it started it: what to do if it dies first. */
interface LaunchRequest {
	command: string;
	args: string[];
	options: LaunchOptions;
	input?: Buffer | string;
	/** The value of `AGENT_TABS_LAUNCH` it runs with. */
	tag: string;
}

class SpawnHelper {
	/** The helper's script (tests point it elsewhere to see the fallback). */
	script = helperScript;
	private child: ChildProcess | undefined;
	/** Helper processes that said they are up: their spawn requests may have run, even unanswered. */
	private readonly readyChildren = new WeakSet<ChildProcess>();
	private readonly launchPrefix = `${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
	/** The helper said it is up at least once: a later exit is a crash, not a helper that cannot run here. */
	private everReady = false;
	/** The helper cannot run here (it never came up): spawn directly from now on. */
	private unusable = false;
	private deaths = 0;
	private nextId = 1;
	private readonly running = new Map<number, HelperProcess>();
	/** What was asked of the helper and not yet answered (`spawned`): started directly instead if it dies. */
	private readonly requests = new Map<number, LaunchRequest>();
	/** Which helper process each running command was asked of. */
	private readonly askedOf = new Map<number, ChildProcess>();

	launch(command: string, args: string[], options: LaunchOptions): LaunchedProcess {
		const helper = this.unusable ? undefined : this.ensure();
		if (!helper) {
			return new DirectProcess(command, args, options);
		}
		const proc = new HelperProcess(this, this.nextId++);
		const tag = `${this.launchPrefix}-${proc.id}`;
		this.running.set(proc.id, proc);
		this.askedOf.set(proc.id, helper);
		this.requests.set(proc.id, { command, args, options, tag });
		this.updateRef();
		this.send({ t: 'spawn', id: proc.id, command, args, cwd: options.cwd, env: { ...options.env, [launchTagVariable]: tag }, stdin: options.stdin, detached: options.detached ?? false });
		return proc;
	}

	send(m: ToSpawnHelper): void {
		if (m.t === 'stdin') {
			const request = this.requests.get(m.id);
			if (request) {
				request.input = m.data;
			}
		}
		if (this.child?.connected) {
			this.child.send(m);
		}
	}

	private ensure(): ChildProcess | undefined {
		if (this.child) {
			return this.child;
		}
		let child: ChildProcess;
		try {
			child = fork(this.script, [], {
				serialization: 'advanced', // Buffers cross as bytes
				stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
				execArgv: [], // not the host's flags (an inspector port, a profiler)
				env: { ...process.env, ELECTRON_RUN_AS_NODE: '1' }, // VS Code's own binary runs as plain Node
			});
		} catch {
			this.unusable = true;
			return undefined;
		}
		this.child = child;
		child.on('message', (m: FromSpawnHelper) => this.onMessage(child, m));
		child.on('error', () => undefined); // an exit follows
		child.on('exit', () => this.onExit(child));
		return child;
	}

	private onMessage(child: ChildProcess, m: FromSpawnHelper): void {
		if (m.t === 'ready') {
			this.readyChildren.add(child);
			this.everReady = true;
			this.deaths = 0;
			return;
		}
		const proc = this.running.get(m.id);
		if (!proc) {
			return;
		}
		switch (m.t) {
			case 'spawned':
				this.requests.delete(m.id);
				proc.spawned(m.pid);
				break;
			case 'out': {
				const data = Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength);
				proc.emit(m.fd === 1 ? 'stdout' : 'stderr', data);
				break;
			}
			case 'error':
				proc.emit('error', Object.assign(new Error(m.message), m.code ? { code: m.code } : {}));
				break;
			case 'exit':
				proc.exited(m.code, m.signal);
				break;
			case 'close':
				this.running.delete(m.id);
				this.requests.delete(m.id);
				this.askedOf.delete(m.id);
				this.updateRef();
				proc.closed(m.code, m.signal);
				break;
		}
	}

	private onExit(child: ChildProcess): void {
		if (this.child !== child) {
			return;
		}
		// The next command starts a new helper at once; this one's commands are settled once every message
		// it sent has been read (its exit can be seen before its last messages: that it started a command).
		this.child = undefined;
		this.deaths++;
		if (!this.everReady || this.deaths >= 3) {
			this.unusable = true;
		}
		this.updateRef();
		let settled = false;
		const settle = (): void => {
			if (!settled) {
				settled = true;
				clearTimeout(timer);
				this.settleOrphans(child);
			}
		};
		const timer = setTimeout(settle, 1000);
		if (child.connected) {
			child.once('disconnect', settle);
		} else {
			settle();
		}
	}

	/**
	 * The commands a dead helper ran end, in plain words, with every process they started. One it never said
	 * it started is started here instead only when the helper never came up (it cannot have run it): one a
	 * running helper was asked for may have run, and running it again could do its work twice.
	 */
	private settleOrphans(child: ChildProcess): void {
		const ids = [...this.askedOf].filter(([, c]) => c === child).map(([id]) => id);
		for (const id of ids) {
			const proc = this.running.get(id);
			const request = this.requests.get(id);
			this.running.delete(id);
			this.requests.delete(id);
			this.askedOf.delete(id);
			if (!proc) {
				continue;
			}
			const tagged = request ? processesTagged(launchTagVariable, request.tag) : [];
			if (request && tagged.length === 0 && !this.readyChildren.has(child)) {
				// Never started by the helper: start it here, and pass on what it says.
				this.relayDirect(proc, request);
				continue;
			}
			const pids = [...new Set([...(proc.pid === undefined ? [] : [proc.pid]), ...tagged])];
			void Promise.all(pids.map((pid) => endProcessTree(pid, 1000))).then(() => {
				proc.emit('error', Object.assign(new Error('the helper process that started it stopped, so it was ended'), { code: 'EHELPERGONE' }));
				proc.closed(null, null);
			});
		}
		this.updateRef();
	}

	private relayDirect(proc: HelperProcess, request: LaunchRequest): void {
		const direct = new DirectProcess(request.command, request.args, request.options);
		void direct.started.then((pid) => proc.spawned(pid));
		direct.on('stdout', (c) => proc.emit('stdout', c));
		direct.on('stderr', (c) => proc.emit('stderr', c));
		direct.on('error', (e) => proc.emit('error', e));
		direct.on('exit', (code, signal) => proc.exited(code, signal));
		direct.on('close', (code, signal) => proc.closed(code, signal));
		proc.input = (data) => direct.input(data);
		proc.dropOutput = () => direct.dropOutput();
		if (request.input !== undefined) {
			direct.input(request.input);
		}
	}

	/** The helper keeps the host alive only while it runs something for it. */
	private updateRef(): void {
		const child = this.child;
		if (!child) {
			return;
		}
		const channel = child.channel as { ref?: () => void; unref?: () => void } | undefined;
		if (this.running.size > 0) {
			child.ref();
			channel?.ref?.();
		} else {
			child.unref();
			channel?.unref?.();
		}
	}

	/** Stops the helper and waits for it to exit (tests; it also exits by itself when this process goes away). */
	async stop(): Promise<void> {
		const child = this.child;
		if (!child || child.exitCode !== null || child.signalCode !== null) {
			return;
		}
		const exited = new Promise((resolve) => child.once('exit', resolve));
		child.kill();
		await exited;
	}

	/** Starts over with another script (tests): the next command starts a helper from it. */
	async restart(script: string): Promise<void> {
		await this.stop();
		this.script = script;
		this.unusable = false;
		this.everReady = false;
		this.deaths = 0;
	}

	/** The helper's process id, if one runs (tests). */
	get pid(): number | undefined {
		return this.child?.pid;
	}
}

const helper = new SpawnHelper();

/** Starts `command` through the spawn helper (or directly where the helper cannot run): git, and agents' terminal commands. */
export function launchProcess(command: string, args: string[], options: LaunchOptions): LaunchedProcess {
	return helper.launch(command, args, options);
}

/** The spawn helper, for tests: its pid, a way to stop it, and to start over from another script. */
export const spawnHelperForTests = {
	/** Starts over from `script` (default: the real one), as if this process had just started. */
	restart(script = helperScript): Promise<void> {
		return helper.restart(script);
	},
	get pid(): number | undefined {
		return helper.pid;
	},
	stop(): Promise<void> {
		return helper.stop();
	},
};
