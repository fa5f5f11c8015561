/**
 * `agent-tabs`: the same core as the extension, without VS Code, for terminals, scripts and CI.
 * Exit codes: 0 the turn ended normally (or the query succeeded), 1 the turn did not end normally,
 * 2 a usage or setup error (unknown agent, missing repository, locked state folder...), 3 the state
 * database was damaged (kept aside; sessions rebuilt from git; the command did nothing else).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AcpBackend } from '../agents/acp/acpBackend';
import { mergeDefinitions, type AgentDefinition } from '../agents/definitions';
import type { AgentEvent } from '../protocol/agentEvents';
import { PermissionBroker, type PermissionPolicy } from '../agents/permissions';
import { AgentPool } from '../agents/pool';
import { AgentTabsError } from '../common/errors';
import { errorMessage, type Logger } from '../common/log';
import { redactingLogger, SecretRedactor } from '../common/redact';
import { AgentSessionsRepo } from '../db/agentSessionsRepo';
import { PendingChangesRepo } from '../db/pendingChangesRepo';
import { SessionsRepo } from '../db/sessionsRepo';
import { StoreLockedError } from '../db/lock';
import { Store, StoreFolderError } from '../db/store';
import { TranscriptRepo } from '../db/transcriptRepo';
import { WorktreesRepo } from '../db/worktreesRepo';
import { WorktreeService } from '../worktrees/worktreeService';
import { CommandTable, commandName, commandUsage, flag, hasFlag, synopsis, UsageError, type CommandSpec, type FlagTable, type ParsedArgs } from './args';
import { rebuildFromGit, worktreeToAttach, type RebuildInput } from '../worktrees/rebuild';
import { damagedStoreExitCode, describeRebuilt, stopOnDamagedStore, StoreDamagedError } from './recovery';

class StderrLogger implements Logger {
	private readonly order = ['error', 'warn', 'info', 'debug', 'trace'];
	constructor(private readonly level: string) {}
	private write(level: string, message: string | Error, args: unknown[]): void {
		if (this.order.indexOf(level) <= this.order.indexOf(this.level)) {
			process.stderr.write(`[${level}] ${String(message)}${args.length ? ` ${args.map(String).join(' ')}` : ''}\n`);
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
	const base = process.env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state');
	return path.join(base, 'agent-tabs');
}

function wasmPath(): string {
	const beside = path.join(__dirname, 'sql-wasm.wasm');
	if (fs.existsSync(beside)) {
		return beside;
	}
	return require.resolve('sql.js/dist/sql-wasm.wasm');
}

function loadDefinitions(args: ParsedArgs<CliCommand>): AgentDefinition[] {
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

function out(json: boolean, value: unknown, human: string): void {
	process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human}\n`);
}

function describe(event: AgentEvent): string | undefined {
	switch (event.type) {
		case 'text':
			return event.text;
		case 'reasoning':
			return `(thinking) ${event.text}`;
		case 'tool_call':
			return `[tool] ${event.title}${event.status ? ` (${event.status})` : ''}`;
		case 'tool_update':
			return event.status ? `[tool ${event.toolCallId}] ${event.status}` : undefined;
		case 'plan':
			return `[plan] ${event.entries.map((e) => `${e.status === 'completed' ? '✓' : '·'} ${e.content}`).join('; ')}`;
		case 'permission_request':
			return `[permission] ${event.title}`;
		case 'permission_decision':
			return `[permission] ${event.outcome === 'selected' ? event.optionId : 'cancelled'} (${event.decidedBy})`;
		case 'file_edit':
			return `[edit] ${event.kind} ${event.path} (${event.source})`;
		case 'error':
			return `[error] ${event.message}`;
		case 'notice':
			return `[${event.severity}] ${event.title}${event.description ? `: ${event.description}` : ''}`;
		default:
			return undefined;
	}
}

/**
 * The store for a command. Commands that write take the writer lock; commands that only read get a
 * consistent snapshot without it, so they work while a window or another command holds the folder.
 * `preferLock`: a reading command that does better with the lock (session list reconciles first) takes it
 * when it is free and falls back to the snapshot when it is not.
 */
async function openStore(args: ParsedArgs<CliCommand>, logger: Logger, options: { preferLock?: boolean } = {}): Promise<Store> {
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
function rebuildInput(store: Store, args: ParsedArgs<CliCommand>, logger: Logger): RebuildInput {
	const repo = flag(args, 'repo');
	return { store, service: worktreeService(store, args, logger), logger, repos: repo ? [path.resolve(repo)] : [], root: worktreesRoot(args) };
}

/** A folder given on the command line, or a plain-words error. */
function requireFolder(dir: string, what: string): void {
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

function worktreeService(store: Store, args: ParsedArgs<CliCommand>, logger: Logger): WorktreeService {
	return new WorktreeService(store, logger, {
		root: worktreesRoot(args),
		onSetupOutput: (line) => process.stderr.write(`[setup] ${line}\n`),
	});
}

async function run(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const repoDir = path.resolve(flag(args, 'repo')!);
	const agentId = flag(args, 'agent')!;
	const prompt = flag(args, 'prompt')!;
	requireFolder(repoDir, 'The repository folder');
	const definitions = loadDefinitions(args);
	const def = definitions.find((d) => d.id === agentId);
	if (!def) {
		throw new AgentTabsError('agent/unknown', `There is no agent "${agentId}". Known agents: ${definitions.map((d) => d.id).join(', ')}.`);
	}
	const policy = (flag(args, 'permissions') ?? 'reject') as PermissionPolicy;
	const store = await openStore(args, logger);
	const permissions = new PermissionBroker({ default: policy, timeoutMs: 1 }, logger);
	const worktrees = worktreeService(store, args, logger);
	const pool = new AgentPool({
		store,
		logger,
		backends: { acp: new AcpBackend({ logger }) },
		definitions: () => definitions,
		permissions,
		leaseOwner: 'agent-tabs run',
		checkpoint: (cwd, name) => worktrees.checkpoint(cwd, name),
	});
	const sessions = new SessionsRepo(store);
	const onSignal = (): void => {
		logger.warn('[cli] interrupted; cancelling the turn');
		void pool.cancel(chatId, def.id);
	};
	let chatId = '';
	try {
		new TranscriptRepo(store).markRunningInterrupted('Agent Tabs stopped while this turn was running.');
		new AgentSessionsRepo(store).markAllStopped();
		let sessionId = flag(args, 'session');
		if (sessionId && !sessions.get(sessionId)) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId}.`);
		}
		const givenChat = flag(args, 'chat');
		if (givenChat) {
			const chat = sessions.getChat(givenChat);
			if (!chat) {
				throw new AgentTabsError('chat/unknown', `There is no chat ${givenChat}.`);
			}
			if (sessionId && chat.session_id !== sessionId) {
				throw new AgentTabsError('cli/usage', `Chat ${givenChat} belongs to session ${chat.session_id}, not ${sessionId}.`);
			}
			sessionId = chat.session_id;
			chatId = chat.id;
		}
		await worktrees.recoverInterrupted().catch((e) => logger.error(`[cli][recover] ${errorMessage(e)}`));
		let createdSession: string | undefined;
		if (!sessionId) {
			const created = await worktrees.createSession({ repo: repoDir, title: prompt.split('\n')[0]!.slice(0, 60) || 'agent-tabs run' });
			sessionId = created.session.id;
			if (created.note) {
				process.stderr.write(`agent-tabs: ${created.note}\n`);
			}
			createdSession = sessionId;
		}
		if (!chatId) {
			chatId = sessions.createChat({ sessionId, agent: def.id, title: def.label }).id;
		}
		process.once('SIGINT', onSignal);
		process.once('SIGTERM', onSignal);
		const sub = pool.onDidEvent((e) => {
			if (e.chatId !== chatId) {
				return;
			}
			if (json) {
				out(true, { type: 'event', seq: e.seq, turnId: e.turnId, event: e.event }, '');
			} else {
				const line = describe(e.event);
				if (line !== undefined) {
					process.stdout.write(e.event.type === 'text' ? e.event.text : `\n${line}\n`);
				}
			}
		});
		const outcome = await pool.prompt(chatId, def.id, { text: prompt }).catch(async (e: unknown) => {
			// The agent never ran: the session this run made for it goes again, unless it somehow holds work.
			if (createdSession && (await worktrees.discardNewSession(createdSession).catch(() => false))) {
				logger.info(`[cli][run] removed the session ${createdSession} made for this run`);
			}
			throw e;
		});
		sub.dispose();
		const end = {
			type: 'turn_end',
			stopReason: outcome.result.stopReason,
			status: outcome.status,
			error: outcome.result.error,
			chatId,
			sessionId: outcome.sessionId,
			turnId: outcome.turn.id,
			cwd: outcome.cwd,
			backendSessionId: outcome.result.backendSessionId,
		};
		out(json, end, `\n— ${outcome.status} (${outcome.result.stopReason})${outcome.result.error ? `: ${outcome.result.error}` : ''}\n  chat ${chatId} · session ${outcome.sessionId} · ${outcome.cwd}`);
		return outcome.status === 'done' && outcome.result.stopReason === 'end_turn' ? 0 : 1;
	} finally {
		process.off('SIGINT', onSignal);
		process.off('SIGTERM', onSignal);
		await pool.shutdown();
		permissions.dispose();
		await store.close();
	}
}

async function sessionCommand(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const sub = args.command.words[1];
	const id = args.positionals[0];
	const store = await openStore(args, logger, { preferLock: sub === 'list' });
	try {
		const service = worktreeService(store, args, logger);
		// A start: finish or undo what an interrupted command left half-done before anything else.
		await service.recoverInterrupted().catch((e) => logger.error(`[cli][recover] ${errorMessage(e)}`));
		const sessions = new SessionsRepo(store);
		const need = (): string => {
			if (!id || !sessions.get(id)) {
				throw new AgentTabsError('session/unknown', id ? `There is no session ${id}.` : `session ${sub} needs a session id.`);
			}
			return id;
		};
		const worktrees = new WorktreesRepo(store);
		switch (sub) {
			case 'new': {
				const { session, worktree, note } = await service.createSession({ repo: path.resolve(flag(args, 'repo')!), title: flag(args, 'title') ?? 'New session', baseRef: flag(args, 'base'), carryChanges: hasFlag(args, 'carry') });
				if (note && !json) {
					process.stderr.write(`agent-tabs: ${note}\n`);
				}
				await store.durable(); // success is reported only once it is on disk
				out(json, { sessionId: session.id, title: session.title, worktreePath: worktree.path, branch: worktree.branch, baseRef: worktree.base_ref, ...(note ? { note } : {}) }, `${session.id}  ${worktree.branch}  ${worktree.path}`);
				return 0;
			}
			case 'list': {
				// What a window does at start-up: compare the records with `git worktree list` first (only
				// with the lock: a snapshot read while another process writes shows what that process saved).
				for (const repo of store.readOnly ? [] : new Set(worktrees.list().map((w) => w.repo_root))) {
					await service.reconcile(repo).catch((e) => logger.warn(`[cli][reconcile] ${repo}: ${errorMessage(e)}`));
				}
				for (const s of sessions.list()) {
					out(json, s, `${s.id}  ${s.status.padEnd(8)} ${(s.branch ?? '-').padEnd(30)} ${s.worktree_state ?? '-'}  ${s.title}`);
				}
				for (const w of worktrees.detached()) {
					out(json, { detachedWorktree: w }, `(detached) ${w.id}  ${w.branch ?? '-'}  ${w.path}${w.state === 'removed' ? '  (folder removed; attach restores it)' : ''}`);
				}
				return 0;
			}
			case 'risk': {
				const wt = worktrees.forSession(need());
				if (!wt) {
					throw new AgentTabsError('worktree/none', `Session ${id} has no worktree.`);
				}
				const risk = await service.risk(wt.id);
				out(json, risk, risk.summary);
				return 0;
			}
			case 'delete':
			case 'archive': {
				const sessionId = need();
				const result = sub === 'delete' ? await service.deleteSession(sessionId) : await service.archiveSession(sessionId);
				const saved = result?.saved ?? null;
				await store.durable();
				out(
					json,
					{ sessionId, action: sub, saved, removedPath: result?.removedPath ?? null, risk: result?.risk.summary ?? null },
					saved
						? `Saved ${saved.files} changed files (${saved.staged} staged) and HEAD ${saved.head.slice(0, 12)} on ${saved.branch ?? 'a detached HEAD'} in ${saved.ref}; removed ${result!.removedPath}.`
						: result && !result.risk.exists
							? `The folder ${result.removedPath} was already gone (deleted outside Agent Tabs); the branch ${result.risk.branch ?? '-'} and any earlier saves are kept.`
							: `Nothing to save; removed ${result?.removedPath ?? 'nothing'}.`,
				);
				return 0;
			}
			case 'restore': {
				const wt = await service.restoreSession(need());
				await store.durable();
				out(json, { sessionId: id, worktreePath: wt.path, branch: wt.branch }, `Restored ${wt.path} on ${wt.branch}.`);
				return 0;
			}
			case 'merge': {
				const strategy = (flag(args, 'strategy') ?? 'merge') as 'merge' | 'squash' | 'rebase';
				const r = await service.mergeSession(need(), strategy);
				await store.durable();
				out(json, { sessionId: id, ...r }, r.message);
				return 0;
			}
			case 'attach':
				return await attachCommand(service, rebuildInput(store, args, logger), id, flag(args, 'title'), json);
			case 'rebuild':
				return await rebuildCommand(rebuildInput(store, args, logger), json);
			default:
				throw new UsageError(`Unknown session command "${sub ?? ''}".`, args.command);
		}
	} finally {
		await store.close();
	}
}

/** `session attach`: a detached worktree, a worktree folder or a saved ref to a new session, restored if removed. */
async function attachCommand(service: WorktreeService, input: RebuildInput, target: string | undefined, title: string | undefined, json: boolean): Promise<number> {
	if (!target) {
		const detached = new WorktreesRepo(input.store).detached();
		throw new AgentTabsError(
			'cli/usage',
			`session attach needs a detached worktree (its id or folder) or a saved ref. ${detached.length ? `Detached worktrees: ${detached.map((w) => `${w.id} (${w.branch ?? w.path})`).join(', ')}.` : 'There are no detached worktrees; "git for-each-ref refs/agent-tabs/saved/" in the repository lists saved work.'}`,
		);
	}
	const worktreeId = await worktreeToAttach(input, target);
	const { session, worktree } = await service.attachWorktree(worktreeId, title);
	out(json, { sessionId: session.id, title: session.title, worktreeId: worktree.id, worktreePath: worktree.path, branch: worktree.branch, savedRef: worktree.saved_ref }, `${session.id}  ${worktree.branch ?? '-'}  ${worktree.path}  "${session.title}"`);
	return 0;
}

/** `session rebuild`: sessions back from git, for a lost or replaced state folder. Adds nothing twice. */
async function rebuildCommand(input: RebuildInput, json: boolean): Promise<number> {
	if (input.repos.length === 0 && !input.root) {
		throw new AgentTabsError('cli/usage', 'session rebuild needs --repo (and --worktrees if the sessions were made with one).');
	}
	const report = await rebuildFromGit(input);
	input.store.rebuildDone();
	out(json, report, [`Rebuilt ${report.rebuilt.length} from ${report.repos.join(', ') || 'no repository'}.`, ...describeRebuilt(report), ...report.problems.map((p) => `Not rebuilt: ${p}`)].join('\n'));
	return 0;
}

async function rewind(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const [chatId, seqText] = args.positionals;
	const store = await openStore(args, logger);
	try {
		const sessions = new SessionsRepo(store);
		const chat = chatId ? sessions.getChat(chatId) : undefined;
		if (!chat) {
			throw new AgentTabsError('chat/unknown', chatId ? `There is no chat ${chatId}.` : 'rewind needs a chat id and a turn number.');
		}
		const turn = new TranscriptRepo(store).listTurns(chat.id).find((t) => t.seq === Number(seqText));
		if (!turn?.checkpoint_before) {
			throw new AgentTabsError('checkpoint/missing', `Chat ${chat.id} has no checkpoint before turn ${seqText ?? '?'}.`);
		}
		const cwd = sessions.workingDirectory(chat.id)?.cwd;
		if (!cwd) {
			throw new AgentTabsError('chat/noFolder', 'The chat has no worktree to rewind.');
		}
		const r = await worktreeService(store, args, logger).rewind(cwd, turn.checkpoint_before);
		await store.durable();
		out(json, { chatId: chat.id, turn: turn.seq, restoredFrom: turn.checkpoint_before, ...r }, `Rewound ${r.files.length} files to before turn ${turn.seq}; the replaced state is kept in ${r.replacedRef}.`);
		return 0;
	} finally {
		await store.close();
	}
}

async function query(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const command = commandName(args.command);
	const store = await openStore(args, logger);
	try {
		const sessions = new SessionsRepo(store);
		if (command === 'sessions') {
			for (const s of sessions.list()) {
				out(json, s, `${s.id}  ${s.status.padEnd(8)} ${s.chat_count} chats  ${s.title}`);
			}
		} else if (command === 'chats') {
			for (const c of sessions.listAllChats()) {
				out(json, c, `${c.id}  ${c.agent.padEnd(10)} ${c.closed_at ? 'closed' : 'open  '}  ${c.session_title} / ${c.title}`);
			}
		} else if (command === 'show') {
			const chatId = args.positionals[0];
			const chat = chatId ? sessions.getChat(chatId) : undefined;
			if (!chat) {
				throw new AgentTabsError('chat/unknown', chatId ? `There is no chat ${chatId}.` : 'show needs a chat id.');
			}
			const transcript = new TranscriptRepo(store);
			for (const turn of transcript.listTurns(chat.id)) {
				const messages = transcript.listMessages(turn.id).map((m) => ({ ...m, content: JSON.parse(m.content) as Record<string, unknown> }));
				if (json) {
					out(true, { turn, messages }, '');
					continue;
				}
				process.stdout.write(`\n## turn ${turn.seq} · ${turn.status}${turn.stop_reason ? ` (${turn.stop_reason})` : ''}\n`);
				let previousKind = '';
				for (const m of messages) {
					const c = m.content;
					if (c.continued === true && m.kind === previousKind) {
						process.stdout.write(String(c.text)); // the rest of a long streamed message
						continue;
					}
					const text = m.kind === 'user' ? `> ${String(c.text)}` : m.kind === 'text' ? String(c.text) : m.kind === 'reasoning' ? `(thinking) ${String(c.text)}` : `[${m.kind}] ${JSON.stringify(c)}`;
					process.stdout.write(`${previousKind ? '\n' : ''}${text}`);
					previousKind = m.kind;
				}
				process.stdout.write('\n');
			}
		} else if (command === 'pending') {
			const sessionId = args.positionals[0];
			if (!sessionId || !sessions.get(sessionId)) {
				throw new AgentTabsError('session/unknown', sessionId ? `There is no session ${sessionId}.` : 'pending needs a session id.');
			}
			for (const p of new PendingChangesRepo(store).listForSession(sessionId)) {
				out(json, p, `${p.status.padEnd(8)} ${p.kind.padEnd(6)} ${p.path}  (${p.agent}, chat ${p.chat_id ?? '-'}${p.shared ? ', shared' : ''}, ${p.source})`);
			}
		}
		return 0;
	} finally {
		await store.close();
	}
}

/** A command of the table with the function that runs it. */
interface CliCommand extends CommandSpec {
	/** `read`: the command never writes, so it opens a consistent snapshot without the writer lock. */
	access?: 'read';
	run(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number>;
}

const globalFlags: FlagTable = {
	state: { type: 'string', value: '<dir>', help: 'state folder (default: $AGENT_TABS_STATE, else $XDG_STATE_HOME/agent-tabs,\nelse ~/.local/state/agent-tabs)' },
	agents: { type: 'string', value: '<file.json>', help: 'agent definitions merged over the built-in presets (claude, codex, gemini, opencode, goose)' },
	json: { type: 'boolean', help: 'machine-readable output: one JSON object a line' },
	worktrees: { type: 'string', value: '<dir>', help: 'where session worktrees are created (default: $AGENT_TABS_WORKTREES,\nelse ~/.agent-tabs/worktrees/<repo>-<hash>)' },
	'log-level': { type: 'string', value: '<level>', choices: ['error', 'warn', 'info', 'debug'], help: 'error, warn, info or debug on stderr (default: warn)' },
	help: { type: 'boolean', help: 'this help, or one command\'s with <command> --help' },
};

const sessionId = (sub: string, summary: string, run: CliCommand['run'] = sessionCommand, flags?: FlagTable): CliCommand => ({ words: ['session', sub], args: ['sessionId'], summary, run, flags });

/**
 * Every command, as data. To add one, add an entry: its words, arguments, flags and the function that
 * runs it; parsing, `--help` and the hints for mistyped flags follow from the entry.
 */
const commands = new CommandTable<CliCommand>(globalFlags).add(
	{
		words: ['run'],
		flags: {
			repo: { type: 'string', value: '<dir>', required: true, help: 'the repository' },
			agent: { type: 'string', value: '<id>', required: true, help: 'the agent (see --agents)' },
			prompt: { type: 'string', value: '<text>', required: true, help: 'the prompt (a prompt starting with a dash: --prompt=-text)' },
			session: { type: 'string', value: '<id>', help: 'run in this existing session' },
			chat: { type: 'string', value: '<id>', help: 'continue this chat' },
			permissions: { type: 'string', value: 'reject|allow', choices: ['reject', 'allow'], help: 'how agents\' permission requests are answered (default reject): the command line never prompts' },
		},
		summary: 'run one turn of an agent (in a new session and worktree unless --session/--chat)',
		run,
	},
	{
		words: ['session', 'new'],
		flags: {
			repo: { type: 'string', value: '<dir>', required: true, help: 'the repository' },
			title: { type: 'string', value: '<t>', help: 'what the session is for; names its branch (default "New session")' },
			base: { type: 'string', value: '<ref>', help: 'branch, tag or commit to start from (default: the current branch)' },
			carry: { type: 'boolean', help: 'carry the main checkout\'s uncommitted changes into the new worktree' },
		},
		summary: 'a new session with its own worktree on agent-tabs/<slug>',
		run: sessionCommand,
	},
	{ words: ['session', 'list'], summary: 'sessions with their branch and worktree (read-only while another process holds the state)', run: sessionCommand, access: 'read' },
	sessionId('risk', 'what removing the session\'s worktree would lose'),
	sessionId('delete', 'save the work, remove the worktree (the branch stays), delete the session'),
	sessionId('archive', 'save the work and remove the worktree; restore brings it back'),
	sessionId('restore', 'recreate the worktree exactly as it was'),
	sessionId('merge', 'merge the session branch into its base branch in the main checkout', sessionCommand, {
		strategy: { type: 'string', value: 'merge|squash|rebase', choices: ['merge', 'squash', 'rebase'], help: 'how (default merge)' },
	}),
	{
		words: ['session', 'attach'],
		// Optional so that a bare `session attach` can list what there is to attach.
		args: ['target?'],
		flags: {
			repo: { type: 'string', value: '<dir>', help: 'the repository of a saved ref the state folder does not know' },
			title: { type: 'string', value: '<t>', help: 'the new session\'s title (default: the title it was saved with)' },
		},
		summary: 'a new session for a detached worktree (id or folder, see session list) or a saved ref',
		details: '(refs/agent-tabs/saved/...; a removed folder is restored byte for byte on the way)',
		run: sessionCommand,
	},
	{
		words: ['session', 'rebuild'],
		flags: { repo: { type: 'string', value: '<dir>', required: true, help: 'the repository whose sessions come back' } },
		summary: 'sessions back from git: worktrees under the worktrees folder and refs/agent-tabs/*',
		details: '(done by itself after a damaged database; adds nothing twice)',
		run: sessionCommand,
	},
	{
		words: ['rewind'],
		args: ['chatId', 'turn'],
		summary: 'put the worktree back to how it was before turn <turn> of that chat',
		details: '(what it replaces is kept under a private ref first)',
		run: rewind,
	},
	{ words: ['sessions'], summary: 'list sessions', run: query, access: 'read' },
	{ words: ['chats'], summary: 'list chats', run: query, access: 'read' },
	{ words: ['show'], args: ['chatId'], summary: 'print a chat\'s transcript', run: query, access: 'read' },
	{ words: ['pending'], args: ['sessionId'], summary: 'list a session\'s pending changes', run: query, access: 'read' },
);

function generalUsage(): string {
	const lines = ['Usage: agent-tabs <command> [options]     (agent-tabs <command> --help for one command)', '', 'Commands:'];
	for (const c of commands.all) {
		const head = `  ${synopsis(c)}`;
		lines.push(head.length <= 22 ? `${head.padEnd(24)}${c.summary}` : `${head}\n${' '.repeat(24)}${c.summary}`);
		if (c.details) {
			lines.push(`${' '.repeat(24)}${c.details}`);
		}
	}
	lines.push('', 'Options for every command:');
	lines.push(commandUsage({ words: [], summary: '' }, globalFlags).split('Options for every command:\n')[1]!.trimEnd());
	lines.push(
		'',
		'Flags are strict: an unknown flag, or a value given to a switch such as --json, is a usage error.',
		'Exit codes: 0 done (the turn ended normally, or the command succeeded); 1 the turn did not end',
		'normally; 2 a usage or setup error (unknown flag or agent, missing repository, a state folder',
		'another process writes...); 3 the state database was damaged: it was kept aside, sessions were',
		'rebuilt from git, and the command did nothing else. sessions, chats, show, pending and session list',
		'only read: they work while a window or another command holds the state folder.',
		'',
		'The command line never prompts: every removal saves the work first (a private ref, verified byte for',
		'byte; the branch is kept), so delete and archive are safe to run unattended.',
		'',
	);
	return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
	const wantsJson = argv.includes('--json');
	const usageError = (e: UsageError): number => {
		if (wantsJson) {
			process.stdout.write(`${JSON.stringify({ type: 'error', code: e.code, message: e.message })}\n`);
		}
		process.stderr.write(`agent-tabs: ${e.message}\n\n${e.command ? commandUsage(e.command, globalFlags) : generalUsage()}`);
		return 2;
	};
	let args: ParsedArgs<CliCommand>;
	try {
		const found = commands.resolve(argv);
		if (!('spec' in found)) {
			const words = found.words;
			if (words[0] === 'help' && words.length > 1) {
				const inner = commands.resolve(words.slice(1));
				if ('spec' in inner) {
					process.stdout.write(commandUsage(inner.spec, globalFlags));
					return 0;
				}
				return usageError(commands.unknownCommand(words.slice(1)));
			}
			if (words.length === 0 || (words.length === 1 && words[0] === 'help')) {
				const asked = words.length === 1 || argv.includes('--help') || argv.includes('-h');
				(asked ? process.stdout : process.stderr).write(generalUsage());
				return asked ? 0 : 2;
			}
			return usageError(commands.unknownCommand(words));
		}
		if (argv.includes('--help') || argv.includes('-h')) {
			process.stdout.write(commandUsage(found.spec, globalFlags));
			return 0;
		}
		args = commands.parse(found.spec, argv);
	} catch (e) {
		if (e instanceof UsageError) {
			return usageError(e);
		}
		throw e;
	}
	const json = hasFlag(args, 'json');
	const redactor = new SecretRedactor();
	redactor.addEnv(process.env);
	const logger = redactingLogger(new StderrLogger(flag(args, 'log-level') ?? 'warn'), redactor);
	try {
		return await args.command.run(args, logger, json);
	} catch (e) {
		if (e instanceof UsageError) {
			return usageError(e);
		}
		const code = e instanceof AgentTabsError ? e.code : 'error';
		if (json) {
			process.stdout.write(`${JSON.stringify({ type: 'error', code, message: errorMessage(e), ...(e instanceof StoreDamagedError ? e.details : {}) })}\n`);
		}
		process.stderr.write(`agent-tabs: ${e instanceof StoreDamagedError ? 'error: ' : ''}${errorMessage(e)}\n`);
		return e instanceof StoreDamagedError ? damagedStoreExitCode : 2;
	}
}

if (require.main === module) {
	void main(process.argv.slice(2)).then((code) => {
		process.exitCode = code;
	});
}
