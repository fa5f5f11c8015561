import * as fs from 'node:fs';
import { AcpBackend } from '../agents/acp/acpBackend';
import type { AgentBackend, McpServerSpec } from '../agents/backend';
import type { AgentDefinition, AgentTransport } from '../agents/definitions';
import type { PermissionBroker } from '../agents/permissions';
import { AgentPool } from '../agents/pool';
import type { IDisposable } from '../common/lifecycle';
import { errorMessage, type Logger } from '../common/log';
import type { SecretRedactor } from '../common/redact';
import { AgentSessionsRepo } from '../db/agentSessionsRepo';
import { PendingChangesRepo } from '../db/pendingChangesRepo';
import { SessionsRepo, type ChatRow } from '../db/sessionsRepo';
import { Store, type StoreOptions } from '../db/store';
import { TranscriptRepo, type TurnRow } from '../db/transcriptRepo';
import { WorktreesRepo, type WorktreeRow } from '../db/worktreesRepo';
import { WorktreeService, type WorktreeOptions } from '../worktrees/worktreeService';
import { SessionChatResolver } from './chatResolver';
import { Dispatcher, type DispatcherLimits } from './dispatcher';
import { TaskTurnAdapter } from './taskTurnAdapter';
import { TurnRunner, type TurnOutcome } from './turnRunner';

/** What both roots (the extension, `agent-tabs run`) give to get the core. */
export interface CoreOptions {
	logger: Logger;
	/**
	 * Worktree settings. Passed by reference and read at each use, so a surface whose settings change (the
	 * extension) hands an object whose fields read the current values and keeps one service.
	 */
	worktrees?: WorktreeOptions;
	/** The current agent definitions (settings merged over presets). */
	definitions: () => readonly AgentDefinition[];
	permissions: PermissionBroker;
	/** Default: the ACP backend. */
	backends?: Partial<Record<AgentTransport, AgentBackend>>;
	/** The keys Agent Tabs hands an agent (from SecretStorage). */
	agentEnv?: (def: AgentDefinition) => Promise<Record<string, string>>;
	/** The host environment agents' pass-through list picks from (default `process.env`). */
	hostEnv?: Readonly<Record<string, string | undefined>>;
	/** Every secret value known to this process; share it with the surface's logger. */
	redactor?: SecretRedactor;
	mcpServers?: () => McpServerSpec[];
	/** A session with no turn for this long is shut down; the next prompt resumes it. 0 disables. */
	idleTimeoutMs?: number;
	/** How often streamed text is written to the transcript. */
	flushMs?: number;
	/**
	 * A turn whose agent sends nothing for this long, with no tool running and no permission waiting, is stopped
	 * and fails, saying so (`TurnRunner`). Read at each turn's start. Default 10 minutes; 0 never stops one.
	 */
	silenceTimeoutMs?: number | (() => number);
	/** Who runs the agents, as worktree leases name it ("a VS Code window (Code)", "agent-tabs run"). */
	owner: string;
	/** Said in the transcript of a turn a crash left running ("VS Code closed or crashed while this turn was running."). */
	interruptedTurnReason: string;
	/**
	 * The dispatcher's limits (`setLimits` changes them live), the repository a task naming no chat or session
	 * gets its new session from, and how long its stop waits for a cancelled turn.
	 */
	tasks?: Partial<DispatcherLimits> & { defaultRepo?: string; stopTimeoutMs?: number };
}

/** How long an agent may send nothing in a turn, with nothing outstanding, before the turn is stopped. */
export const defaultSilenceTimeoutMs = 10 * 60_000;

/**
 * The core both roots run on, built in dependency order: store → repositories → worktree service → agent
 * pool → turn runner → dispatcher. Building it is a start: nothing of this process runs yet, so turns a crash left
 * `running` are marked interrupted and live agent sessions stopped (resumable). `shutdown` goes the other way:
 * the dispatcher first, then turns (cancelled, their end recorded), then the agent processes, then the store.
 */
export class Core implements IDisposable {
	readonly sessions: SessionsRepo;
	readonly worktreeRows: WorktreesRepo;
	readonly transcript: TranscriptRepo;
	readonly agentSessions: AgentSessionsRepo;
	readonly pending: PendingChangesRepo;
	/** The one worktree service of this process. */
	readonly worktrees: WorktreeService;
	readonly pool: AgentPool;
	readonly turns: TurnRunner;
	/**
	 * Runs every task. Built, not started: starting it (tasks left running become interrupted, queued ones
	 * run) is the surface's decision (a window always; the command line only where it runs the queue).
	 */
	readonly dispatcher: Dispatcher;
	/** The dispatcher's turn runner; its `onDidRunTurn` gives each task's whole `TurnOutcome`. */
	readonly taskTurns: TaskTurnAdapter<TurnOutcome>;
	private shuttingDown: Promise<void> | undefined;
	/** The interrupted turns' edits being attributed (see attributeInterruptedEdits); turns start after. */
	private readonly interruptedEdits: Promise<void>;

	/** The core over a store the caller opened with the writer lock (the CLI opens its own way). */
	constructor(
		readonly store: Store,
		private readonly options: CoreOptions,
	) {
		const { logger } = options;
		this.sessions = new SessionsRepo(store);
		this.worktreeRows = new WorktreesRepo(store);
		this.transcript = new TranscriptRepo(store);
		this.agentSessions = new AgentSessionsRepo(store);
		this.pending = new PendingChangesRepo(store);
		// Nothing runs yet in this process, and it holds the writer lock: turns left running were interrupted.
		const interrupted = this.transcript.markRunningInterrupted(options.interruptedTurnReason);
		this.agentSessions.markAllStopped();
		// Over the caller's options, not a copy of them: their getters (live settings) keep being read.
		const worktreeOptions = Object.create(options.worktrees ?? {}, { endIdleAgents: { value: (sessionId: string) => this.endSessionAgents(sessionId) } }) as WorktreeOptions;
		this.worktrees = new WorktreeService(store, logger, worktreeOptions);
		this.pool = new AgentPool({
			store,
			logger,
			backends: options.backends ?? { acp: new AcpBackend({ logger }) },
			definitions: options.definitions,
			agentEnv: options.agentEnv,
			hostEnv: options.hostEnv,
			redactor: options.redactor,
			mcpServers: options.mcpServers,
			permissions: options.permissions,
			idleTimeoutMs: options.idleTimeoutMs,
		});
		this.turns = new TurnRunner({
			store,
			pool: this.pool,
			logger,
			flushMs: options.flushMs,
			silenceTimeoutMs: options.silenceTimeoutMs ?? defaultSilenceTimeoutMs,
			leaseOwner: options.owner,
			// A new turn starts once the interrupted ones' edits are attributed: its own would count as theirs.
			checkpoint: async (cwd, name) => {
				await this.interruptedEdits;
				return this.worktrees.checkpoint(cwd, name);
			},
			dropCheckpoint: (cwd, ref) => this.worktrees.dropCheckpoint(cwd, ref),
		});
		// Then checkpoints a kill left unrecorded go; no turn of this store can be taking one meanwhile.
		this.interruptedEdits = this.attributeInterruptedEdits(interrupted).then(() =>
			this.worktrees.sweepUnrecordedCheckpoints().then(
				() => undefined,
				(e: unknown) => logger.warn(`[Core] sweeping checkpoints: ${errorMessage(e)}`),
			),
		);
		this.taskTurns = new TaskTurnAdapter(this.turns, store);
		this.dispatcher = new Dispatcher({
			store,
			logger,
			runner: this.taskTurns,
			chats: new SessionChatResolver(store, this.worktrees, logger),
			redact: (input) => this.pool.redactForStorage(input),
			...options.tasks,
		});
	}

	/**
	 * Edits of turns cut off by the end of their process (a crash, a killed command) that only the turn's end
	 * would have seen (agents that write files themselves and report nothing): what changed in the worktree
	 * since the turn's checkpoint, not yet recorded for it, is recorded as its own (shared when several turns
	 * of one worktree were cut off). Never fails; a worktree that is gone is skipped.
	 */
	private async attributeInterruptedEdits(turnIds: readonly string[]): Promise<void> {
		const byWorktree = new Map<string, { turn: TurnRow; chat: ChatRow; worktree: WorktreeRow }[]>();
		for (const id of turnIds) {
			const turn = this.transcript.getTurn(id);
			const chat = turn?.checkpoint_before ? this.sessions.getChat(turn.chat_id) : undefined;
			const worktree = chat ? this.worktreeRows.forSession(chat.session_id) : undefined;
			if (turn && chat && worktree?.state === 'ready' && fs.existsSync(worktree.path)) {
				byWorktree.set(worktree.id, [...(byWorktree.get(worktree.id) ?? []), { turn, chat, worktree }]);
			}
		}
		for (const cut of byWorktree.values()) {
			for (const { turn, chat, worktree } of cut) {
				try {
					const recorded = new Set(this.pending.listForChat(chat.id).filter((p) => p.turn_id === turn.id).map((p) => p.path));
					const changes = await this.worktrees.changesSinceCheckpoint(worktree.path, turn.checkpoint_before!);
					let added = 0;
					for (const change of changes) {
						// Redacted as the turn would have (a file named after a key): with every key this process knows, also
						// where no redactor was given (the command line) and those agent definitions hand out (their env).
						const changedPath = this.pool.redactForStorage(change.path);
						if (!recorded.has(changedPath)) {
							this.pending.record({ sessionId: chat.session_id, worktreeId: worktree.id, chatId: chat.id, agent: turn.agent, turnId: turn.id, path: changedPath, kind: change.kind, source: 'watcher', shared: cut.length > 1 });
							added++;
						}
					}
					if (added > 0) {
						this.options.logger.info(`[Core] turn ${turn.id} was cut off; ${added} change(s) in ${worktree.path} since it started are recorded as its edits`);
					}
				} catch (e) {
					this.options.logger.warn(`[Core] the edits of interrupted turn ${turn.id} could not be found: ${errorMessage(e)}`);
				}
			}
		}
	}

	/** Opens the store (writer lock; `owner` names this process to others) and builds the core on it. */
	static async open(store: Omit<StoreOptions, 'owner' | 'logger'>, options: CoreOptions): Promise<Core> {
		const opened = await Store.open({ ...store, logger: options.logger, owner: options.owner });
		try {
			return new Core(opened, options);
		} catch (e) {
			await opened.close().catch(() => undefined);
			throw e;
		}
	}

	/** Ends the agent process of every chat of a session (its worktree is about to go). */
	async endSessionAgents(sessionId: string): Promise<void> {
		for (const chat of this.sessions.listChats(sessionId)) {
			await this.pool.end(chat.id, chat.agent);
		}
	}

	/** Titles of the session's chats with a turn asked for or running (for the risk report). */
	runningChats(sessionId: string): string[] {
		return this.sessions
			.listChats(sessionId)
			.filter((chat) => this.turns.isRunning(chat.id, chat.agent))
			.map((chat) => chat.title);
	}

	/**
	 * The dispatcher (takes and starts nothing more; its running tasks end interrupted), then the turns
	 * (cancelled; each records its end), then the agent processes (SIGTERM, SIGKILL after the grace
	 * period), then the store (final fold, lock released). Safe to call twice; each step's failure is logged
	 * and the next still runs.
	 */
	shutdown(): Promise<void> {
		this.shuttingDown ??= (async () => {
			const log = (what: string) => (e: unknown) => this.options.logger.error(`[Core][shutdown] ${what}: ${errorMessage(e)}`);
			await this.interruptedEdits;
			await this.dispatcher.stop().catch(log('tasks'));
			this.dispatcher.dispose();
			this.taskTurns.dispose();
			await this.turns.shutdown().catch(log('turns'));
			await this.pool.shutdown().catch(log('agents'));
			await this.store.close().catch(log('store'));
		})();
		return this.shuttingDown;
	}

	/** Ends what runs at once, without waiting (turns stop being followed, agent processes are killed); the store stays open. */
	dispose(): void {
		this.dispatcher.dispose();
		this.taskTurns.dispose();
		this.turns.dispose();
		this.pool.dispose();
	}
}
