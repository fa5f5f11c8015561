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
import { SessionsRepo } from '../db/sessionsRepo';
import { Store, type StoreOptions } from '../db/store';
import { TranscriptRepo } from '../db/transcriptRepo';
import { WorktreesRepo } from '../db/worktreesRepo';
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
		this.transcript.markRunningInterrupted(options.interruptedTurnReason);
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
			leaseOwner: options.owner,
			checkpoint: (cwd, name) => this.worktrees.checkpoint(cwd, name),
		});
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
