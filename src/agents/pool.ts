import * as fs from 'node:fs';
import { AgentTabsError } from '../common/errors';
import { Emitter, logListenerErrors, type Event } from '../common/event';
import { Disposable, type IDisposable } from '../common/lifecycle';
import { errorMessage, type Logger } from '../common/log';
import { redactingLogger, SecretRedactor, StreamRedactor } from '../common/redact';
import { AgentSessionsRepo } from '../db/agentSessionsRepo';
import { PendingChangesRepo } from '../db/pendingChangesRepo';
import { SessionsRepo } from '../db/sessionsRepo';
import { StoreFailedError, type Store } from '../db/store';
import { TranscriptRepo, TurnRecorder, type TurnRow } from '../db/transcriptRepo';
import { diffSnapshots, takeDirtySnapshot, type DirtySnapshot } from '../worktrees/dirtySnapshot';
import { acquireLease } from '../worktrees/ownership';
import type { AgentBackend, AgentSessionHandle, McpServerSpec } from './backend';
import { configHash, type AgentDefinition, type AgentTransport } from './definitions';
import { agentEnvironment } from './environment';
import type { AgentEvent, TurnResult } from '../protocol/agentEvents';
import type { PromptInput, TurnStatus } from '../protocol/turns';
import type { PermissionBroker } from './permissions';

export interface AgentPoolOptions {
	store: Store;
	logger: Logger;
	backends: Partial<Record<AgentTransport, AgentBackend>>;
	/** The current agent definitions (settings merged over presets). */
	definitions: () => readonly AgentDefinition[];
	/** The keys Agent Tabs hands an agent (from SecretStorage); the rest of its environment is `agentEnvironment`. */
	agentEnv?: (def: AgentDefinition) => Promise<Record<string, string>>;
	/** The host environment the pass-through list picks from (default `process.env`). */
	hostEnv?: Readonly<Record<string, string | undefined>>;
	/**
	 * Every secret value known to this process. The pool adds the keys it hands out and redacts events,
	 * transcripts and its logs with it; share it with the logger of the surface (the default knows the host's
	 * secret-looking variables).
	 */
	redactor?: SecretRedactor;
	mcpServers?: () => McpServerSpec[];
	permissions: PermissionBroker;
	/** A session with no turn for this long is shut down; the next prompt resumes it. 0 disables. */
	idleTimeoutMs?: number;
	/** How often streamed text is written to the transcript. */
	flushMs?: number;
	/** Who runs these agents, written into the worktree lease every process honours ("a VS Code window"). */
	leaseOwner?: string;
	/** Records the worktree state under a private ref before and after each turn, so a chat can rewind. */
	checkpoint?: (cwd: string, name: string) => Promise<string>;
}

/** An event of a chat, numbered per chat so a view can notice gaps and resync from the database. */
export interface PoolEvent {
	chatId: string;
	agent: string;
	turnId?: string;
	seq: number;
	event: AgentEvent;
}

export interface TurnOutcome {
	turn: TurnRow;
	status: TurnStatus;
	result: TurnResult;
	cwd: string;
	sessionId: string;
}

interface Entry {
	key: string;
	chatId: string;
	agent: string;
	transport: AgentTransport;
	hash: string;
	handle: AgentSessionHandle;
	subscriptions: IDisposable[];
	running?: { turnId: string; handle: AgentSessionHandle; ticket: { cancelled: boolean } };
	idleTimer?: NodeJS.Timeout;
	/** Said once in the next turn: the agent could not restore its earlier context. */
	contextResetNotice?: string;
}

const poolKey = (chatId: string, agent: string): string => `${chatId}:${agent}`;

/** A running turn in a folder: whether another turn overlapped it, and what other turns reported writing meanwhile. */
interface TurnMark {
	overlapped: boolean;
	/** Paths that overlapping turns reported through the protocol: theirs, not this turn's. */
	othersWrote: Set<string>;
}

/**
 * Live agent sessions, one per `chatId:agent`, created on first use. Concurrent callers for one key share
 * one start; a changed configuration fingerprint replaces the session; a crashed agent is restarted (and
 * resumed where the agent can) on the next prompt; idle sessions are reaped. Every transition is written to
 * `agent_sessions`, every event of a turn to the transcript.
 */
export class AgentPool extends Disposable {
	private readonly _onDidEvent = this._register(new Emitter<PoolEvent>((e) => logListenerErrors(this.options.logger, '[AgentPool][onDidEvent]')(e)));
	readonly onDidEvent: Event<PoolEvent> = this._onDidEvent.event;

	private readonly entries = new Map<string, Entry>();
	private readonly starting = new Map<string, Promise<Entry>>();
	/** Turns asked for, by key, from the moment `prompt` is called. */
	private readonly tickets = new Map<string, { cancelled: boolean }>();
	private readonly seqByChat = new Map<string, number>();
	/** Turns not yet ended: shutdown lets them write their end before the store closes. */
	private readonly turnsInFlight = new Set<Promise<TurnOutcome>>();
	/** Running turns by working folder, to tell when only the watcher saw a write and two turns overlapped. */
	private readonly activeByCwd = new Map<string, Set<TurnMark>>();
	private readonly sessions: SessionsRepo;
	private readonly agentSessions: AgentSessionsRepo;
	private readonly transcript: TranscriptRepo;
	private readonly pending: PendingChangesRepo;
	private closing = false;
	private readonly redactor: SecretRedactor;
	private readonly logger: Logger;

	constructor(private readonly options: AgentPoolOptions) {
		super();
		this.redactor = options.redactor ?? new SecretRedactor();
		this.redactor.addEnv(options.hostEnv ?? process.env);
		this.logger = redactingLogger(options.logger, this.redactor);
		this.sessions = new SessionsRepo(options.store);
		this.agentSessions = new AgentSessionsRepo(options.store);
		this.transcript = new TranscriptRepo(options.store);
		this.pending = new PendingChangesRepo(options.store);
	}

	/** Live sessions (for tests and the status bar). */
	get size(): number {
		return this.entries.size;
	}

	/** The process-level handle of a live session, if any. */
	peek(chatId: string, agent: string): AgentSessionHandle | undefined {
		return this.entries.get(poolKey(chatId, agent))?.handle;
	}

	isRunning(chatId: string, agent: string): boolean {
		return !!this.entries.get(poolKey(chatId, agent))?.running;
	}

	private definition(agent: string): AgentDefinition {
		const def = this.options.definitions().find((d) => d.id === agent);
		if (!def) {
			const known = this.options.definitions().map((d) => d.id).join(', ');
			throw new AgentTabsError('agent/unknown', `There is no agent "${agent}". Known agents: ${known}.`);
		}
		return def;
	}

	private emit(chatId: string, agent: string, event: AgentEvent, turnId?: string): void {
		this.fire(chatId, agent, this.redactor.redactDeep(event), turnId);
	}

	/** Sends an event that is already redacted. */
	private fire(chatId: string, agent: string, event: AgentEvent, turnId?: string): void {
		const seq = (this.seqByChat.get(chatId) ?? 0) + 1;
		this.seqByChat.set(chatId, seq);
		this._onDidEvent.fire({ chatId, agent, turnId, seq, event });
	}

	/** Gets the live session for this chat and agent, starting (or resuming) it if needed. */
	async ensure(chatId: string, agent: string): Promise<AgentSessionHandle> {
		return (await this.ensureEntry(chatId, agent)).handle;
	}

	private async ensureEntry(chatId: string, agent: string): Promise<Entry> {
		if (this.closing || this.isDisposed) {
			throw new AgentTabsError('pool/closed', 'Agent Tabs is shutting down.');
		}
		const key = poolKey(chatId, agent);
		const inflight = this.starting.get(key);
		if (inflight) {
			return inflight;
		}
		const def = this.definition(agent);
		const keys = (await this.options.agentEnv?.(def)) ?? {};
		const { env, secretNames } = agentEnvironment(def, this.options.hostEnv ?? process.env, keys);
		for (const name of secretNames) {
			this.redactor.add(name, env[name]);
		}
		const mcpServers = this.options.mcpServers?.() ?? [];
		for (const server of mcpServers) {
			this.redactor.addEnv(server.env);
		}
		const hash = configHash(def, { envNames: Object.keys(keys), mcpServers });
		const existing = this.entries.get(key);
		if (existing && existing.hash === hash) {
			return existing;
		}
		// Another caller may have started it while we awaited the environment.
		const racing = this.starting.get(key);
		if (racing) {
			return racing;
		}
		const start = this.start(key, chatId, def, env, mcpServers, hash, existing);
		this.starting.set(key, start);
		try {
			return await start;
		} finally {
			this.starting.delete(key);
		}
	}

	private async start(key: string, chatId: string, def: AgentDefinition, env: Record<string, string>, mcpServers: McpServerSpec[], hash: string, previous: Entry | undefined): Promise<Entry> {
		const tag = `[AgentPool][${key}]`;
		if (previous) {
			if (previous.running) {
				throw new AgentTabsError('agent/busy', `${def.label} is in the middle of a turn; its new settings apply after it ends.`);
			}
			this.logger.info(`${tag} configuration changed; ending the old session`);
			await this.remove(previous, 'ended');
			this.agentSessions.resetBackendSession(chatId, def.id, hash);
		}
		const backend = this.options.backends[def.transport];
		if (!backend) {
			throw new AgentTabsError('agent/transport', `Agent "${def.id}" uses the "${def.transport}" transport, which this version of Agent Tabs does not support yet.`);
		}
		const wd = this.sessions.workingDirectory(chatId);
		if (!wd) {
			throw new AgentTabsError('chat/unknown', `There is no chat ${chatId}.`);
		}
		if (!wd.cwd) {
			throw noWorktreeError(wd);
		}
		const row = this.agentSessions.get(chatId, def.id);
		if (row && row.config_hash && row.config_hash !== hash) {
			this.agentSessions.resetBackendSession(chatId, def.id, hash);
		}
		const resumeId = row && row.config_hash === hash ? (row.backend_session_id ?? undefined) : undefined;
		this.agentSessions.upsert({ chat_id: chatId, agent: def.id, backend: def.transport, status: 'starting', config_hash: hash, session_id: wd.sessionId, worktree_id: wd.worktreeId });
		let handle: AgentSessionHandle;
		try {
			handle = await backend.ensureSession({ cwd: wd.cwd, definition: def, env, redactor: this.redactor, mcpServers, resumeSessionId: resumeId, permissions: this.options.permissions, chatId });
		} catch (e) {
			// The agent's last words (its stderr) are part of the message and may quote a secret.
			const message = this.redactor.redact(errorMessage(e));
			this.agentSessions.setStatus(chatId, def.id, 'error', message);
			throw message === errorMessage(e) ? e : new AgentTabsError(e instanceof AgentTabsError ? e.code : 'agent/startFailed', message);
		}
		if (this.closing || this.isDisposed) {
			await handle.shutdown();
			handle.dispose();
			throw new AgentTabsError('pool/closed', 'Agent Tabs is shutting down.');
		}
		this.agentSessions.upsert({ chat_id: chatId, agent: def.id, backend: def.transport, status: 'ready', backend_session_id: handle.backendSessionId, config_hash: hash });
		const entry: Entry = { key, chatId, agent: def.id, transport: def.transport, hash, handle, subscriptions: [] };
		if (resumeId && !handle.resumed) {
			entry.contextResetNotice = `${def.label} could not restore its earlier conversation, so this chat's agent context starts fresh. The transcript above is kept.`;
		}
		this.logger.info(`${tag} ${handle.resumed ? 'resumed' : 'started'} ${handle.backendSessionId}`);
		entry.subscriptions.push(
			handle.onDidExit(({ code, signal, expected }) => {
				if (expected || this.entries.get(key) !== entry) {
					return;
				}
				this.logger.warn(`${tag} agent exited (code ${code}, signal ${signal}); it restarts on the next prompt`);
				try {
					this.agentSessions.setStatus(chatId, def.id, 'crashed', `exited with code ${code}, signal ${signal}`);
				} catch (e) {
					this.logger.warn(`${tag} could not record the crash: ${errorMessage(e)}`);
				}
				this.entries.delete(key);
				this.disposeEntry(entry);
				this.emit(chatId, def.id, { type: 'notice', severity: 'warning', title: `${def.label} stopped unexpectedly`, description: 'It restarts on your next message.' });
			}),
			handle.onDidEmitIdleEvent((event) => this.emit(chatId, def.id, event)),
		);
		this.entries.set(key, entry);
		this.armIdleTimer(entry);
		return entry;
	}

	private armIdleTimer(entry: Entry): void {
		clearTimeout(entry.idleTimer);
		const ms = this.options.idleTimeoutMs ?? 0;
		if (ms <= 0) {
			return;
		}
		entry.idleTimer = setTimeout(() => {
			if (entry.running || this.entries.get(entry.key) !== entry) {
				return;
			}
			this.logger.info(`[AgentPool][${entry.key}] idle for ${Math.round(ms / 1000)} s; shutting it down`);
			void this.remove(entry, 'idle');
		}, ms);
		entry.idleTimer.unref?.();
	}

	private disposeEntry(entry: Entry): void {
		clearTimeout(entry.idleTimer);
		for (const s of entry.subscriptions) {
			s.dispose();
		}
		entry.handle.dispose();
	}

	private async remove(entry: Entry, status: 'idle' | 'ended'): Promise<void> {
		if (this.entries.get(entry.key) === entry) {
			this.entries.delete(entry.key);
		}
		clearTimeout(entry.idleTimer);
		for (const s of entry.subscriptions) {
			s.dispose();
		}
		await entry.handle.shutdown().catch((e) => this.logger.warn(`[AgentPool][${entry.key}] shutdown: ${errorMessage(e)}`));
		entry.handle.dispose();
		try {
			this.agentSessions.setStatus(entry.chatId, entry.agent, status);
		} catch (e) {
			this.logger.warn(`[AgentPool][${entry.key}] could not record ${status}: ${errorMessage(e)}`);
		}
	}

	/**
	 * Runs one turn: starts the session if needed, streams and persists its events, attributes every edit
	 * (reported by the protocol, or seen on disk when the agent wrote itself), and closes the turn.
	 */
	async prompt(chatId: string, agent: string, input: PromptInput): Promise<TurnOutcome> {
		const key = poolKey(chatId, agent);
		if (this.tickets.has(key)) {
			throw new AgentTabsError('agent/busy', 'This chat is already running a turn; wait for it or cancel it.');
		}
		// Registered before the first await, so a cancel that comes while the agent is still starting counts.
		const ticket = { cancelled: false };
		this.tickets.set(key, ticket);
		const turn = this.runTurn(chatId, agent, input, ticket);
		this.turnsInFlight.add(turn);
		try {
			return await turn;
		} finally {
			this.turnsInFlight.delete(turn);
			this.tickets.delete(key);
		}
	}

	private async runTurn(chatId: string, agent: string, input: PromptInput, ticket: { cancelled: boolean }): Promise<TurnOutcome> {
		// The "before" picture of the worktree is taken while the agent starts, not after: starting takes far
		// longer than `git status`, and the agent cannot write anything before it has the prompt.
		const early = this.sessions.workingDirectory(chatId);
		const beforePromise = early?.cwd ? this.snapshot(early.cwd) : Promise.resolve(undefined);
		beforePromise.catch(() => undefined);
		const checkpointName = `${chatId}/${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
		const checkpointBefore = early?.cwd ? this.takeCheckpoint(early.cwd, `${checkpointName}-before`) : Promise.resolve(undefined);
		const entry = await this.ensureEntry(chatId, agent);
		const wd = this.sessions.workingDirectory(chatId);
		if (!wd?.cwd) {
			// The worktree was archived or went missing after the agent started: never follow it elsewhere.
			await this.remove(entry, 'ended');
			throw wd ? noWorktreeError(wd) : new AgentTabsError('chat/unknown', `There is no chat ${chatId}.`);
		}
		const cwd = wd.cwd;
		if (!fs.existsSync(cwd)) {
			await this.remove(entry, 'ended');
			throw new AgentTabsError('session/noWorktree', `The worktree folder ${cwd} of session ${wd.sessionId} is gone (removed by another window, the command line or by hand). Restore the session first; agents never work anywhere else.`);
		}
		const releaseLease = this.lease(cwd, `${this.definition(entry.agent).label} in chat ${chatId}`);
		const turn = this.transcript.startTurn({ chatId, agent: entry.agent, prompt: this.redactor.redact(input.text) });
		const tag = `[AgentPool][${entry.key}]`;
		entry.running = { turnId: turn.id, handle: entry.handle, ticket };
		clearTimeout(entry.idleTimer);
		const recorder = new TurnRecorder(this.transcript, turn, this.options.flushMs ?? 100, (e) => {
			this.logger.error(`${tag} could not save turn ${turn.id}: ${errorMessage(e)}`);
			if (e instanceof StoreFailedError) {
				// Nothing more of this turn can be saved: stop the agent rather than let it work unrecorded.
				void this.cancel(chatId, entry.agent).catch(() => undefined);
			}
		});
		const mark: TurnMark = { overlapped: false, othersWrote: new Set() };
		const active = this.activeByCwd.get(cwd) ?? new Set();
		this.activeByCwd.set(cwd, active);
		for (const other of active) {
			other.overlapped = true;
			mark.overlapped = true;
		}
		active.add(mark);
		const protocolPaths = new Set<string>();
		// Streamed text is redacted as a stream: a secret may arrive split across chunks.
		const streams = new Map<'text' | 'reasoning', { redactor: StreamRedactor; messageId?: string }>();
		const release = (type: 'text' | 'reasoning'): void => {
			const stream = streams.get(type);
			streams.delete(type);
			const rest = stream?.redactor.flush();
			if (rest) {
				deliver({ type, text: rest, ...(stream!.messageId !== undefined ? { messageId: stream!.messageId } : {}) });
			}
		};
		const onEvent = (raw: AgentEvent): void => {
			if (raw.type === 'text' || raw.type === 'reasoning') {
				let stream = streams.get(raw.type);
				if (stream && stream.messageId !== raw.messageId) {
					release(raw.type);
					stream = undefined;
				}
				if (!stream) {
					stream = { redactor: new StreamRedactor(this.redactor), messageId: raw.messageId };
					streams.set(raw.type, stream);
				}
				const text = stream.redactor.push(raw.text);
				if (text) {
					deliver({ ...raw, text });
				}
				return;
			}
			release('text');
			release('reasoning');
			deliver(this.redactor.redactDeep(raw));
		};
		const deliver = (event: AgentEvent): void => {
			try {
				recorder.record(event);
				if (event.type === 'file_edit' && event.source !== 'watcher') {
					protocolPaths.add(event.path);
					for (const other of active) {
						if (other !== mark) {
							other.othersWrote.add(event.path);
						}
					}
					this.pending.record({ sessionId: wd.sessionId, worktreeId: wd.worktreeId, chatId, agent: entry.agent, turnId: turn.id, path: event.path, kind: event.kind, source: 'protocol' });
				}
			} catch (e) {
				this.logger.error(`${tag} could not save an event: ${errorMessage(e)}`);
			}
			this.fire(chatId, entry.agent, event, turn.id);
		};
		let result: TurnResult = { stopReason: 'error', backendSessionId: entry.handle.backendSessionId };
		// Everything between the turn's start and its end is in this try: whatever throws, the turn is ended
		// (as failed) below, never left `running`.
		try {
			this.agentSessions.setStatus(chatId, entry.agent, 'running');
			if (entry.contextResetNotice) {
				onEvent({ type: 'notice', severity: 'warning', title: entry.contextResetNotice });
				entry.contextResetNotice = undefined;
			}
			const before = early?.cwd === cwd ? await beforePromise : await this.snapshot(cwd);
			const checkpointRef = early?.cwd === cwd ? await checkpointBefore : undefined;
			if (checkpointRef) {
				this.transcript.setCheckpoints(turn.id, checkpointRef, null);
			}
			try {
				// A cancel that came while the turn was being set up ends it before the agent sees it.
				result = ticket.cancelled
					? { stopReason: 'cancelled', backendSessionId: entry.handle.backendSessionId }
					: await entry.handle.prompt(input, { turnId: turn.id, onEvent });
			} catch (e) {
				result = { stopReason: 'error', backendSessionId: entry.handle.backendSessionId, error: errorMessage(e) };
			}
			release('text');
			release('reasoning');
			const after = before ? await this.snapshot(cwd) : undefined;
			if (before && after) {
				for (const change of diffSnapshots(cwd, before, after)) {
					if (protocolPaths.has(change.path) || mark.othersWrote.has(change.path)) {
						continue;
					}
					onEvent({ type: 'file_edit', path: change.path, kind: change.kind, source: 'watcher' });
					this.pending.record({ sessionId: wd.sessionId, worktreeId: wd.worktreeId, chatId, agent: entry.agent, turnId: turn.id, path: change.path, kind: change.kind, source: 'watcher', shared: mark.overlapped });
				}
			}
		} catch (e) {
			this.logger.error(`${tag} turn ${turn.id} failed: ${errorMessage(e)}`);
			result = { ...result, stopReason: 'error', error: `Agent Tabs failed during this turn: ${errorMessage(e)}` };
		} finally {
			active.delete(mark);
			entry.running = undefined;
			releaseLease();
		}
		try {
			const after = await this.takeCheckpoint(cwd, `${checkpointName}-after`);
			if (after) {
				this.transcript.setCheckpoints(turn.id, null, after);
			}
		} catch (e) {
			this.logger.warn(`${tag} could not record the checkpoint after turn ${turn.id}: ${errorMessage(e)}`);
		}
		result = this.redactor.redactDeep(result);
		let status: TurnStatus;
		try {
			status = recorder.finish(result);
		} catch (e) {
			// The store cannot write at all; the next start marks this turn interrupted.
			this.logger.error(`${tag} could not end turn ${turn.id}: ${errorMessage(e)}`);
			status = 'error';
		}
		if (recorder.failure !== undefined) {
			result = { ...result, error: [result.error, `Part of this turn could not be saved: ${errorMessage(recorder.failure)}`].filter(Boolean).join(' ') };
		}
		const alive = this.entries.get(entry.key) === entry;
		if (alive) {
			try {
				this.agentSessions.upsert({ chat_id: chatId, agent: entry.agent, backend: entry.transport, status: 'ready', backend_session_id: result.backendSessionId || null });
			} catch (e) {
				this.logger.warn(`${tag} could not record the agent as ready: ${errorMessage(e)}`);
			}
			this.armIdleTimer(entry);
		}
		// The turn's end is reported only once its transcript and session state are on disk; when the journal
		// failed before that, the turn ended as failed whatever the agent said (what is in memory is not saved).
		let saved = true;
		try {
			await this.options.store.durable();
		} catch (e) {
			saved = false;
			this.logger.error(`${tag} turn ${turn.id} could not be made durable: ${errorMessage(e)}`);
			status = 'error';
			if (recorder.failure === undefined) {
				result = { ...result, error: [result.error, `Part of this turn could not be saved: ${errorMessage(e)}`].filter(Boolean).join(' ') };
			}
		}
		this.emit(chatId, entry.agent, { type: 'notice', severity: status === 'error' ? 'error' : 'info', title: `turn ${status}` }, turn.id);
		const recorded = this.transcript.getTurn(turn.id) ?? { ...turn, status };
		return { turn: saved ? recorded : { ...recorded, status, error: result.error ?? null }, status, result, cwd, sessionId: wd.sessionId };
	}

	/** A lease on the worktree for this turn, so no process removes it while the agent works there. */
	private lease(cwd: string, what: string): () => void {
		try {
			return acquireLease(cwd, { owner: this.options.leaseOwner ?? `process ${process.pid}`, what });
		} catch (e) {
			this.logger.warn(`[AgentPool][lease] ${cwd}: ${errorMessage(e)}; other processes cannot see that an agent works there`);
			return () => undefined;
		}
	}

	private async snapshot(cwd: string): Promise<DirtySnapshot | undefined> {
		try {
			return await takeDirtySnapshot(cwd);
		} catch (e) {
			this.logger.debug(`[AgentPool][snapshot] ${cwd}: ${errorMessage(e)} (edits an agent writes itself cannot be seen here)`);
			return undefined;
		}
	}

	private async takeCheckpoint(cwd: string, name: string): Promise<string | undefined> {
		if (!this.options.checkpoint) {
			return undefined;
		}
		try {
			return await this.options.checkpoint(cwd, name);
		} catch (e) {
			this.logger.debug(`[AgentPool][checkpoint] ${cwd}: ${errorMessage(e)}`);
			return undefined;
		}
	}

	/** Cancels the chat's turn: before the agent has it (it never starts) or while it runs (session/cancel). */
	async cancel(chatId: string, agent: string): Promise<void> {
		const key = poolKey(chatId, agent);
		const ticket = this.tickets.get(key);
		if (ticket) {
			ticket.cancelled = true;
		}
		await this.entries.get(key)?.running?.handle.cancel();
	}

	/** Cancels running turns, then ends every agent process (SIGTERM, SIGKILL after the grace period). */
	async shutdown(): Promise<void> {
		this.closing = true;
		await Promise.allSettled([...this.starting.values()]);
		const entries = [...this.entries.values()];
		for (const ticket of this.tickets.values()) {
			ticket.cancelled = true;
		}
		await Promise.allSettled(entries.map((e) => this.cancel(e.chatId, e.agent)));
		await Promise.allSettled(entries.map((e) => this.remove(e, 'idle')));
		// Cancelled turns still record their end (checkpoint, transcript, status); the store closes after
		// this returns, so wait for them, but not forever.
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([Promise.allSettled([...this.turnsInFlight]), new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
		clearTimeout(timer);
		this.dispose();
	}

	override dispose(): void {
		this.closing = true;
		for (const entry of [...this.entries.values()]) {
			this.entries.delete(entry.key);
			this.disposeEntry(entry);
		}
		super.dispose();
	}
}

function noWorktreeError(wd: { sessionId: string; worktreeState: string | null }): AgentTabsError {
	const why =
		wd.worktreeState === null ? 'has no worktree'
		: wd.worktreeState === 'removed' ? 'has no worktree folder now (it was archived, its work saved)'
		: wd.worktreeState === 'missing' ? 'has lost its worktree folder (it was deleted outside Agent Tabs)'
		: `has its worktree in the state "${wd.worktreeState}"`;
	return new AgentTabsError(
		'session/noWorktree',
		`Session ${wd.sessionId} ${why}, and agents work only inside their session's worktree, never in the main checkout. Restore the session first (Agent Tabs: Restore Session, or agent-tabs session restore ${wd.sessionId}).`,
	);
}
