import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { mergeDefinitions, type AgentDefinition } from '../agents/definitions';
import { AgentTabsError } from '../common/errors';
import type { IDisposable } from '../common/lifecycle';
import { errorMessage, type Logger } from '../common/log';
import { forTerminal, jsonForTerminal } from '../common/visibleText';
import { StoreLockedError } from '../db/lock';
import { Store, StoreFolderError } from '../db/store';
import { PermissionBroker, type PermissionPolicy } from '../agents/permissions';
import { Core, defaultSilenceTimeoutMs } from '../tasks/core';
import { WorktreeService, type WorktreeOptions } from '../worktrees/worktreeService';
import type { RebuildInput } from '../worktrees/rebuild';
import { flag, UsageError, type CommandSpec, type FlagSpec, type FlagTable, type ParsedArgs } from './args';
import { stopOnDamagedStore } from './recovery';

/** What every command module shares: the command shape, global flags, the logger, the store, output. */

/** A command of the table with the function that runs it. */
export interface CliCommand extends CommandSpec {
	/** `read`: the command never writes, so it opens a consistent snapshot without the writer lock. */
	access?: 'read';
	run(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number>;
}

export const globalFlags: FlagTable = {
	state: { type: 'string', value: '<dir>', help: 'state folder (default: $AGENT_TABS_STATE, else $XDG_STATE_HOME/agent-tabs\nwhen it is an absolute path, else ~/.local/state/agent-tabs)' },
	agents: { type: 'string', value: '<file.json>', help: 'agent definitions merged over the built-in presets (claude, codex, gemini, opencode, goose)' },
	json: { type: 'boolean', help: 'machine-readable output: one JSON object a line' },
	worktrees: { type: 'string', value: '<dir>', help: 'where session worktrees are created (default: $AGENT_TABS_WORKTREES,\nelse ~/.agent-tabs/worktrees/<repo>-<hash>)' },
	'log-level': { type: 'string', value: '<level>', choices: ['error', 'warn', 'info', 'debug'], help: 'error, warn, info or debug on stderr (default: warn)' },
	help: { type: 'boolean', help: 'this help, or one command\'s with <command> --help' },
};


export class StderrLogger implements Logger {
	private readonly order = ['error', 'warn', 'info', 'debug', 'trace'];
	constructor(private readonly level: string) {}
	private write(level: string, message: string | Error, args: unknown[]): void {
		if (this.order.indexOf(level) <= this.order.indexOf(this.level)) {
			writeErr(`[${level}] ${String(message)}${args.length ? ` ${args.map(String).join(' ')}` : ''}\n`);
		}
	}
	trace(m: string, ...a: unknown[]): void {
		this.write('trace', m, a);
	}
	debug(m: string, ...a: unknown[]): void {
		this.write('debug', m, a);
	}
	info(m: string, ...a: unknown[]): void {
		this.write('info', m, a);
	}
	warn(m: string, ...a: unknown[]): void {
		this.write('warn', m, a);
	}
	error(m: string | Error, ...a: unknown[]): void {
		this.write('error', m, a);
	}
}

/** The documented default state folder. */
export function defaultStateDir(): string {
	if (process.env.AGENT_TABS_STATE) {
		return process.env.AGENT_TABS_STATE;
	}
	// The XDG base directory spec: a relative path is invalid and ignored (taken as given, each folder the
	// command is run in would have a state of its own).
	const xdg = process.env.XDG_STATE_HOME;
	const base = xdg && path.isAbsolute(xdg) ? xdg : path.join(os.homedir(), '.local', 'state');
	return path.join(base, 'agent-tabs');
}

function wasmPath(): string {
	const beside = path.join(__dirname, 'sql-wasm.wasm');
	if (fs.existsSync(beside)) {
		return beside;
	}
	return require.resolve('sql.js/dist/sql-wasm.wasm');
}

export function loadDefinitions(args: ParsedArgs<CliCommand>): AgentDefinition[] {
	const file = flag(args, 'agents');
	if (!file) {
		return mergeDefinitions(undefined);
	}
	let text: string;
	try {
		text = fs.readFileSync(file, 'utf8');
	} catch (e) {
		const code = (e as NodeJS.ErrnoException).code;
		const why = code === 'ENOENT' ? 'the file does not exist' : code === 'EISDIR' ? 'it is a folder, not a file' : code === 'EACCES' ? 'permission denied' : errorMessage(e);
		throw new AgentTabsError('cli/agents', `Could not read agent definitions from ${file}: ${why}.`);
	}
	let raw: unknown;
	try {
		raw = JSON.parse(text);
	} catch (e) {
		throw new AgentTabsError('cli/agents', `The agent definitions in ${file} are not valid JSON: ${errorMessage(e)}`);
	}
	return mergeDefinitions(raw);
}

/** The agent `--agent` names, or a plain-words error listing the known ones. */
export function requireAgent(definitions: readonly AgentDefinition[], agentId: string): AgentDefinition {
	const def = definitions.find((d) => d.id === agentId);
	if (!def) {
		throw new AgentTabsError('agent/unknown', `There is no agent "${agentId}". Known agents: ${definitions.map((d) => d.id).join(', ')}.`);
	}
	return def;
}

export function out(json: boolean, value: unknown, human: string): void {
	process.stdout.write(json ? `${jsonForTerminal(value)}\n` : `${forTerminal(human)}\n`);
}

/** The most a prompt read from standard input may hold (it is stored with its task and sent whole). */
export const maxStdinPrompt = 4 * 1024 * 1024;

/**
 * The `--prompt` flag's text; `--prompt -` reads it from standard input to its end (`git diff | agent-tabs run
 * ... --prompt -`), as UTF-8. Empty, not UTF-8 or larger than `maxStdinPrompt`: a usage error.
 */
export async function promptOf(args: ParsedArgs<CliCommand>, input: NodeJS.ReadableStream = process.stdin): Promise<string> {
	const given = flag(args, 'prompt')!;
	if (given !== '-') {
		return given;
	}
	if ((input as { isTTY?: boolean }).isTTY) {
		process.stderr.write('agent-tabs: reading the prompt from standard input; end it with Ctrl-D.\n');
	}
	// `< some-folder`: reading it yields nothing, which would be called an empty prompt.
	if (input === process.stdin && isFolder(0)) {
		throw new UsageError('Standard input is a folder, not text (--prompt - reads the prompt from standard input: pipe it in or redirect a file).', args.command);
	}
	const chunks: Buffer[] = [];
	let size = 0;
	for await (const chunk of input) {
		const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
		size += b.length;
		if (size > maxStdinPrompt) {
			throw new UsageError(`The prompt on standard input is larger than ${maxStdinPrompt / 1024 / 1024} MiB; give the agent a file to read instead.`, args.command);
		}
		chunks.push(b);
	}
	let text: string;
	try {
		text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
	} catch {
		throw new UsageError('The prompt on standard input is not UTF-8 text.', args.command);
	}
	if (text.trim() === '') {
		throw new UsageError('The prompt on standard input is empty (--prompt - reads the prompt from standard input).', args.command);
	}
	return text;
}

function isFolder(fd: number): boolean {
	try {
		return fs.fstatSync(fd).isDirectory();
	} catch {
		return false;
	}
}

/**
 * Writes text to stdout as a terminal may show it: what an agent said (or a prompt, a title) can hold escape
 * sequences a terminal would obey (the clipboard, the title, links); they are written out instead.
 */
export function writeOut(text: string): void {
	process.stdout.write(forTerminal(text));
}

/** `writeOut` for stderr. */
export function writeErr(text: string): void {
	process.stderr.write(forTerminal(text));
}

/**
 * The store for a command. Commands that write take the writer lock; commands that only read get a
 * consistent snapshot without it, so they work while a window or another command holds the folder.
 * `preferLock`: a reading command that does better with the lock (session list reconciles first) takes it
 * when it is free and falls back to the snapshot when it is not.
 */
export async function openStore(args: ParsedArgs<CliCommand>, logger: Logger, options: { preferLock?: boolean } = {}): Promise<Store> {
	const dir = path.resolve(flag(args, 'state') ?? defaultStateDir());
	if (args.command.access === 'read') {
		if (options.preferLock) {
			try {
				return await Store.open({ dir, wasmPath: wasmPath(), logger, owner: 'the agent-tabs command line' });
			} catch (e) {
				if (!(e instanceof StoreLockedError) && !(e instanceof StoreFolderError && e.code === 'store/readOnlyFolder')) {
					throw e;
				}
				logger.info(`[cli] ${errorMessage(e)} Reading a snapshot instead.`);
			}
		}
		const snapshot = await Store.openSnapshot({ dir, wasmPath: wasmPath(), logger });
		if (snapshot.recovery.problems.length === 0 && !snapshot.recovery.damaged) {
			return snapshot;
		}
		// A damaged file, or a rebuild an earlier command owed when it was killed (the marker says so even
		// when the files left read cleanly): a reader never repairs, so this command takes the writer's path
		// when it can (keep the file aside, rebuild from git, say so loudly); a window holding the state does that itself.
		const problems = [...snapshot.recovery.problems, ...(snapshot.recovery.damaged?.problems ?? [])];
		await snapshot.close();
		try {
			return await openWriter(dir, args, logger);
		} catch (e) {
			if (!(e instanceof StoreLockedError)) {
				throw e;
			}
			logger.error(`[cli] the state in ${dir} is damaged (${problems.join(' ')}) and ${errorMessage(e)} That process keeps the damaged file aside and rebuilds; showing what could be read.`);
			return Store.openSnapshot({ dir, wasmPath: wasmPath(), logger });
		}
	}
	return openWriter(dir, args, logger);
}

/** The store with the writer lock; a damaged database stops the command after rebuilding what git knows. */
async function openWriter(dir: string, args: ParsedArgs<CliCommand>, logger: Logger): Promise<Store> {
	const store = await Store.open({ dir, wasmPath: wasmPath(), logger, owner: 'the agent-tabs command line' });
	if (store.recovery.damaged) {
		await stopOnDamagedStore(store, rebuildInput(store, args, logger));
	}
	return store;
}

function worktreesRoot(args: ParsedArgs<CliCommand>): string | undefined {
	return flag(args, 'worktrees') ?? process.env.AGENT_TABS_WORKTREES;
}

/** Where the command line looks for what git knows: `--repo`, and the worktrees folder. */
export function rebuildInput(store: Store, args: ParsedArgs<CliCommand>, logger: Logger): RebuildInput {
	const repo = flag(args, 'repo');
	return { store, service: worktreeService(store, args, logger), logger, repos: repo ? [path.resolve(repo)] : [], root: worktreesRoot(args) };
}

/** A folder given on the command line, or a plain-words error. */
export function requireFolder(dir: string, what: string): void {
	let stat: fs.Stats;
	try {
		stat = fs.statSync(dir);
	} catch {
		throw new AgentTabsError('cli/noFolder', `${what} ${dir} does not exist.`);
	}
	if (!stat.isDirectory()) {
		throw new AgentTabsError('cli/notFolder', `${what} ${dir} is a file, not a folder.`);
	}
}

/** The command line's worktree settings: `--worktrees`, setup output on stderr. */
export function worktreeOptions(args: ParsedArgs<CliCommand>): WorktreeOptions {
	return {
		root: worktreesRoot(args),
		onSetupOutput: (line) => writeErr(`[setup] ${line}\n`),
	};
}

export function worktreeService(store: Store, args: ParsedArgs<CliCommand>, logger: Logger): WorktreeService {
	return new WorktreeService(store, logger, worktreeOptions(args));
}

/** `--silence-minutes`, for every command that runs agents. */
export const silenceFlag: FlagSpec = {
	type: 'string',
	value: '<n>',
	help: `stop a turn whose agent sends nothing for this many minutes with no tool running (default ${defaultSilenceTimeoutMs / 60_000}; 0 waits forever)`,
};

function silenceTimeoutMs(args: ParsedArgs<CliCommand>): number | undefined {
	const text = flag(args, 'silence-minutes');
	if (text === undefined) {
		return undefined;
	}
	const minutes = Number(text);
	if (text.trim() === '' || !Number.isFinite(minutes) || minutes < 0) {
		throw new UsageError(`--silence-minutes is a number of minutes, 0 or more (0 waits forever), not "${text}".`, args.command);
	}
	return minutes * 60_000;
}

/**
 * The core for a command that runs agents (`run`, `task add`, `task work`...): the store with the writer lock,
 * agents from `--agents`, permissions answered by `policy` (the command line never prompts). `close` shuts
 * the core down in order (dispatcher, turns, agents, store).
 */
export async function openCore(args: ParsedArgs<CliCommand>, logger: Logger, options: { owner: string; policy?: PermissionPolicy; definitions?: AgentDefinition[] }): Promise<{ core: Core; close: () => Promise<void> }> {
	const definitions = options.definitions ?? loadDefinitions(args);
	const silence = silenceTimeoutMs(args);
	const store = await openStore(args, logger);
	const permissions = new PermissionBroker({ default: options.policy ?? 'reject', timeoutMs: 1 }, logger);
	let core: Core;
	try {
		core = new Core(store, {
			logger,
			owner: options.owner,
			interruptedTurnReason: 'Agent Tabs stopped while this turn was running.',
			worktrees: worktreeOptions(args),
			definitions: () => definitions,
			permissions,
			silenceTimeoutMs: silence,
		});
	} catch (e) {
		permissions.dispose();
		await store.close();
		throw e;
	}
	return {
		core,
		close: async () => {
			await core.shutdown();
			permissions.dispose();
		},
	};
}

/**
 * Listens for what ends a command the way Ctrl-C does: Ctrl-C (SIGINT), a kill (SIGTERM) and the terminal
 * closing (SIGHUP; Node takes it back from `nohup`, so it ended the command by the signal, mid-turn). Each is
 * taken once: a second Ctrl-C ends the command at once.
 */
export function onEndingSignal(handler: () => void): IDisposable {
	const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
	for (const signal of signals) {
		process.once(signal, handler);
	}
	return {
		dispose: () => {
			for (const signal of signals) {
				process.off(signal, handler);
			}
		},
	};
}
