/**
 * `agent-tabs`: the same core as the extension, without VS Code, for terminals, scripts and CI.
 * Exit codes: 0 the turn ended normally (or the query succeeded), 1 the turn did not end normally,
 * 2 a usage or setup error (unknown agent, missing repository, locked state folder...).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { AcpBackend } from '../agents/acp/acpBackend';
import { mergeDefinitions, type AgentDefinition } from '../agents/definitions';
import type { AgentEvent } from '../agents/events';
import { PermissionBroker, type PermissionPolicy } from '../agents/permissions';
import { AgentPool } from '../agents/pool';
import { AgentTabsError } from '../common/errors';
import { errorMessage, type Logger } from '../common/log';
import { AgentSessionsRepo } from '../db/agentSessionsRepo';
import { PendingChangesRepo } from '../db/pendingChangesRepo';
import { SessionsRepo } from '../db/sessionsRepo';
import { Store } from '../db/store';
import { TranscriptRepo } from '../db/transcriptRepo';
import { WorktreesRepo } from '../db/worktreesRepo';
import { WorktreeService } from '../worktrees/worktreeService';
import { flag, parseArgs, type ParsedArgs } from './args';

const usage = `Usage: agent-tabs <command> [options]

Commands:
  run --repo <dir> --agent <id> --prompt <text> [--session <id>] [--chat <id>] [--permissions reject|allow]
                        run one turn of an agent (in a new session and worktree unless --session/--chat)
  session new --repo <dir> [--title <t>] [--base <ref>] [--carry]
                        a new session with its own worktree on agent-tabs/<slug>
  session list          sessions with their branch and worktree
  session risk <id>     what removing the session's worktree would lose
  session delete <id>   save the work, remove the worktree (the branch stays), delete the session
  session archive <id>  save the work and remove the worktree; restore brings it back
  session restore <id>  recreate the worktree exactly as it was
  session merge <id> [--strategy merge|squash|rebase]
                        merge the session branch into its base branch in the main checkout
  rewind <chatId> <turn>
                        put the worktree back to how it was before turn <turn> of that chat
                        (what it replaces is kept under a private ref first)
  sessions              list sessions
  chats                 list chats
  show <chatId>         print a chat's transcript
  pending <sessionId>   list a session's pending changes

Options for every command:
  --state <dir>         state folder (default: $AGENT_TABS_STATE, else $XDG_STATE_HOME/agent-tabs,
                        else ~/.local/state/agent-tabs)
  --agents <file.json>  agent definitions merged over the built-in presets (claude, codex, gemini, opencode, goose)
  --json                machine-readable output: one JSON object a line
  --worktrees <dir>     where session worktrees are created (default: $AGENT_TABS_WORKTREES,
                        else ~/.agent-tabs/worktrees/<repo>-<hash>)
  --log-level <level>   error, warn, info or debug on stderr (default: warn)

The command line never prompts: every removal saves the work first (a private ref, verified byte for
byte; the branch is kept), so delete and archive are safe to run unattended.
`;

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

function loadDefinitions(args: ParsedArgs): AgentDefinition[] {
	const file = flag(args, 'agents');
	if (!file) {
		return mergeDefinitions(undefined);
	}
	let raw: unknown;
	try {
		raw = JSON.parse(fs.readFileSync(file, 'utf8'));
	} catch (e) {
		throw new AgentTabsError('cli/agents', `Could not read agent definitions from ${file}: ${errorMessage(e)}`);
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

async function openStore(args: ParsedArgs, logger: Logger): Promise<Store> {
	return Store.open({ dir: flag(args, 'state') ?? defaultStateDir(), wasmPath: wasmPath(), logger, owner: 'the agent-tabs command line' });
}

function worktreeService(store: Store, args: ParsedArgs, logger: Logger): WorktreeService {
	return new WorktreeService(store, logger, {
		root: flag(args, 'worktrees') ?? process.env.AGENT_TABS_WORKTREES,
		onSetupOutput: (line) => process.stderr.write(`[setup] ${line}\n`),
	});
}

async function run(args: ParsedArgs, logger: Logger, json: boolean): Promise<number> {
	const repo = flag(args, 'repo');
	const agentId = flag(args, 'agent');
	const prompt = flag(args, 'prompt');
	if (!repo || !agentId || prompt === undefined) {
		throw new AgentTabsError('cli/usage', 'run needs --repo, --agent and --prompt.');
	}
	const repoDir = path.resolve(repo);
	if (!fs.existsSync(repoDir) || !fs.statSync(repoDir).isDirectory()) {
		throw new AgentTabsError('cli/noRepo', `The repository folder ${repoDir} does not exist.`);
	}
	const definitions = loadDefinitions(args);
	const def = definitions.find((d) => d.id === agentId);
	if (!def) {
		throw new AgentTabsError('agent/unknown', `There is no agent "${agentId}". Known agents: ${definitions.map((d) => d.id).join(', ')}.`);
	}
	const policy = (flag(args, 'permissions') ?? 'reject') as PermissionPolicy;
	if (policy !== 'allow' && policy !== 'reject') {
		throw new AgentTabsError('cli/usage', '--permissions must be "allow" or "reject": the command line never prompts.');
	}
	const store = await openStore(args, logger);
	const permissions = new PermissionBroker({ default: policy, timeoutMs: 1 });
	const worktrees = worktreeService(store, args, logger);
	const pool = new AgentPool({
		store,
		logger,
		backends: { acp: new AcpBackend({ logger }) },
		definitions: () => definitions,
		permissions,
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
		if (!sessionId) {
			const created = await worktrees.createSession({ repo: repoDir, title: prompt.split('\n')[0]!.slice(0, 60) || 'agent-tabs run' });
			sessionId = created.session.id;
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
		const outcome = await pool.prompt(chatId, def.id, { text: prompt });
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

async function sessionCommand(args: ParsedArgs, logger: Logger, json: boolean): Promise<number> {
	const sub = args.positionals[1];
	const id = args.positionals[2];
	const store = await openStore(args, logger);
	try {
		const service = worktreeService(store, args, logger);
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
				const repo = flag(args, 'repo');
				if (!repo) {
					throw new AgentTabsError('cli/usage', 'session new needs --repo.');
				}
				const { session, worktree } = await service.createSession({ repo: path.resolve(repo), title: flag(args, 'title') ?? 'New session', baseRef: flag(args, 'base'), carryChanges: args.flags.has('carry') });
				await store.durable(); // success is reported only once it is on disk
				out(json, { sessionId: session.id, title: session.title, worktreePath: worktree.path, branch: worktree.branch, baseRef: worktree.base_ref }, `${session.id}  ${worktree.branch}  ${worktree.path}`);
				return 0;
			}
			case 'list': {
				// What a window does at start-up: compare the records with `git worktree list` first.
				for (const repo of new Set(worktrees.list().map((w) => w.repo_root))) {
					await service.reconcile(repo).catch((e) => logger.warn(`[cli][reconcile] ${repo}: ${errorMessage(e)}`));
				}
				for (const s of sessions.list()) {
					out(json, s, `${s.id}  ${s.status.padEnd(8)} ${(s.branch ?? '-').padEnd(30)} ${s.worktree_state ?? '-'}  ${s.title}`);
				}
				for (const w of worktrees.detached()) {
					out(json, { detachedWorktree: w }, `(detached)  ${w.branch ?? '-'}  ${w.path}`);
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
					saved ? `Saved ${saved.files} files in ${saved.ref} (branch ${saved.branch} kept); removed ${result!.removedPath}.` : `Nothing to save; removed ${result?.removedPath ?? 'nothing'}.`,
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
				if (!['merge', 'squash', 'rebase'].includes(strategy)) {
					throw new AgentTabsError('cli/usage', '--strategy must be merge, squash or rebase.');
				}
				const r = await service.mergeSession(need(), strategy);
				await store.durable();
				out(json, { sessionId: id, ...r }, r.message);
				return 0;
			}
			default:
				throw new AgentTabsError('cli/usage', `Unknown session command "${sub ?? ''}": new, list, risk, delete, archive, restore or merge.`);
		}
	} finally {
		await store.close();
	}
}

async function rewind(args: ParsedArgs, logger: Logger, json: boolean): Promise<number> {
	const [, chatId, seqText] = args.positionals;
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

async function query(command: string, args: ParsedArgs, logger: Logger, json: boolean): Promise<number> {
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
			const chatId = args.positionals[1];
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
			const sessionId = args.positionals[1];
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

export async function main(argv: string[]): Promise<number> {
	let args: ParsedArgs;
	try {
		args = parseArgs(argv, new Set(['json', 'help', 'carry']));
	} catch (e) {
		process.stderr.write(`agent-tabs: ${errorMessage(e)}\n\n${usage}`);
		return 2;
	}
	const command = args.positionals[0];
	if (!command || args.flags.has('help') || command === 'help') {
		process.stdout.write(usage);
		return command || args.flags.has('help') ? 0 : 2;
	}
	const json = args.flags.has('json');
	const logger = new StderrLogger(flag(args, 'log-level') ?? 'warn');
	try {
		if (command === 'run') {
			return await run(args, logger, json);
		}
		if (command === 'session') {
			return await sessionCommand(args, logger, json);
		}
		if (command === 'rewind') {
			return await rewind(args, logger, json);
		}
		if (['sessions', 'chats', 'show', 'pending'].includes(command)) {
			return await query(command, args, logger, json);
		}
		process.stderr.write(`agent-tabs: unknown command "${command}".\n\n${usage}`);
		return 2;
	} catch (e) {
		const code = e instanceof AgentTabsError ? e.code : 'error';
		if (json) {
			process.stdout.write(`${JSON.stringify({ type: 'error', code, message: errorMessage(e) })}\n`);
		}
		process.stderr.write(`agent-tabs: ${errorMessage(e)}\n`);
		return 2;
	}
}

if (require.main === module) {
	void main(process.argv.slice(2)).then((code) => {
		process.exitCode = code;
	});
}
