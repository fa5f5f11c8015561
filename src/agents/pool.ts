import { AgentTabsError } from '../common/errors';
import { Emitter, logListenerErrors, type Event } from '../common/event';
import { Disposable, type IDisposable } from '../common/lifecycle';
import { errorMessage, type Logger } from '../common/log';
import { redactingLogger, SecretRedactor } from '../common/redact';
import { AgentSessionsRepo } from '../db/agentSessionsRepo';
import { SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import type { AgentBackend, AgentSessionHandle, AgentSettings, McpServerSpec } from './backend';
import { configHash, type AgentDefinition, type AgentTransport } from './definitions';
import { agentEnvironment } from './environment';
import type { AgentEvent } from '../protocol/agentEvents';
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
}

/**
 * What an agent says outside any turn (its idle updates, a crash notice), already redacted. The turn layer
 * (`tasks/turnRunner.ts`) numbers these with the turns' events per chat.
 */
export interface AgentPoolEvent {
	chatId: string;
	agent: string;
	event: AgentEvent;
}

/**
 * A live agent session taken for one turn (`AgentPool.beginTurn`): while it is held the session is busy, so
 * it is neither reaped nor replaced by a configuration change, and `cancel` reaches its turn.
 */
export interface AgentTurnLease {
	readonly definition: AgentDefinition;
	readonly handle: AgentSessionHandle;
	/** Said once, in this turn: the agent could not restore its earlier context. */
	readonly contextResetNotice: string | undefined;
	/** The pool cancelled this turn (`cancel`, `end`, shutdown): a turn not yet sent to the agent is not sent. */
	readonly cancelled: boolean;
	/** Records the agent as running (its `agent_sessions` row); throws when the store cannot write. */
	recordRunning(): void;
	/** The turn is over: a session still alive is ready again (its row says so, the idle timer restarts). */
	release(backendSessionId: string | undefined): void;
}

interface Entry {
	key: string;
	chatId: string;
	agent: string;
	transport: AgentTransport;
	hash: string;
	handle: AgentSessionHandle;
	subscriptions: IDisposable[];
	/** The turn holding the session; `cancelled` once `cancel` reached it, even before the agent had the prompt. */
	running?: { handle: AgentSessionHandle; cancelled: boolean };
	idleTimer?: NodeJS.Timeout;
	/** Said once in the next turn: the agent could not restore its earlier context. */
	contextResetNotice?: string;
}

const poolKey = (chatId: string, agent: string): string => `${chatId}:${agent}`;

/**
 * Live agent sessions, one per `chatId:agent`, created on first use. Concurrent callers for one key share
 * one start; a changed configuration fingerprint replaces the session; a crashed agent is restarted (and
 * resumed where the agent can) on the next prompt; idle sessions are reaped. Every transition is written to
 * `agent_sessions`. Turns (the transcript, attribution, checkpoints) are the turn layer's: `tasks/turnRunner.ts`
 * takes a session with `beginTurn` and gives it back with `release`.
 */
export class AgentPool extends Disposable {
	private readonly _onDidEvent = this._register(new Emitter<AgentPoolEvent>((e) => logListenerErrors(this.options.logger, '[AgentPool][onDidEvent]')(e)));
	/** Events outside turns: idle updates and crash notices. */
	readonly onDidEvent: Event<AgentPoolEvent> = this._onDidEvent.event;

	private readonly entries = new Map<string, Entry>();
	private readonly starting = new Map<string, Promise<Entry>>();
	private readonly sessions: SessionsRepo;
	private readonly agentSessions: AgentSessionsRepo;
	private closing = false;
	/**
	 * Every secret value known to this process: the host's, and each key handed to an agent as it starts.
	 * The turn layer redacts with the same one.
	 */
	readonly redactor: SecretRedactor;
	private readonly logger: Logger;

	constructor(private readonly options: AgentPoolOptions) {
		super();
		this.redactor = options.redactor ?? new SecretRedactor();
		this.redactor.addEnv(options.hostEnv ?? process.env);
		this.logger = redactingLogger(options.logger, this.redactor);
		this.sessions = new SessionsRepo(options.store);
		this.agentSessions = new AgentSessionsRepo(options.store);
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

	/**
	 * `value` without the secrets this pool knows, nor those its agent definitions would hand out (their
	 * `env`, host pass-through), which are known before any agent starts: for prompts stored before they run.
	 */
	redactForStorage<T>(value: T): T {
		for (const def of this.options.definitions()) {
			const { env, secretNames } = agentEnvironment(def, this.options.hostEnv ?? process.env, {});
			for (const name of secretNames) {
				this.redactor.add(name, env[name]);
			}
		}
		return this.redactor.redactDeep(value);
	}

	private definition(agent: string): AgentDefinition {
		const def = this.options.definitions().find((d) => d.id === agent);
		if (!def) {
			const known = this.options.definitions().map((d) => d.id).join(', ');
			throw new AgentTabsError('agent/unknown', `There is no agent "${agent}". Known agents: ${known}.`);
		}
		return def;
	}

	private emit(chatId: string, agent: string, event: AgentEvent): void {
		this._onDidEvent.fire({ chatId, agent, event: this.redactor.redactDeep(event) });
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
			// The chat's settings as its agent last had them (a changed configuration cleared them with its session).
			const restoreSettings = row && row.config_hash === hash ? parseSettings(row.settings_json) : undefined;
			handle = await backend.ensureSession({ cwd: wd.cwd, definition: def, env, redactor: this.redactor, mcpServers, resumeSessionId: resumeId, permissions: this.options.permissions, chatId, ...(restoreSettings ? { restoreSettings } : {}) });
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
		const keepSettings = (settings: AgentSettings): void => {
			try {
				// Option ids and values come from the agent: a known secret in one is not stored.
				this.agentSessions.setSettings(chatId, def.id, JSON.stringify(this.redactor.redactDeep(settings)));
			} catch (e) {
				this.logger.warn(`${tag} could not record the agent's settings: ${errorMessage(e)}`);
			}
		};
		if (handle.currentSettings) {
			keepSettings(handle.currentSettings());
		}
		if (handle.onDidChangeSettings) {
			entry.subscriptions.push(handle.onDidChangeSettings(keepSettings));
		}
		entry.subscriptions.push(
			handle.onDidExit(({ code, signal, expected, endedAfterCancel }) => {
				if (expected || this.entries.get(key) !== entry) {
					return;
				}
				if (endedAfterCancel) {
					// Ended by us after a cancel it did not answer: its turn says so; no crash to report.
					this.logger.info(`${tag} agent ended after it did not stop when cancelled; it restarts on the next prompt`);
					try {
						this.agentSessions.setStatus(chatId, def.id, 'ended', 'ended after it did not stop when its turn was cancelled');
					} catch (e) {
						this.logger.warn(`${tag} could not record the end: ${errorMessage(e)}`);
					}
					this.entries.delete(key);
					this.disposeEntry(entry);
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
	 * Takes the chat's agent session for one turn, starting (or resuming) it if needed. Until the lease is
	 * released the session is busy: not reaped, not replaced, and `cancel` reaches its turn.
	 */
	async beginTurn(chatId: string, agent: string): Promise<AgentTurnLease> {
		const entry = await this.ensureEntry(chatId, agent);
		if (entry.running) {
			throw new AgentTabsError('agent/busy', 'This chat is already running a turn; wait for it or cancel it.');
		}
		const running = { handle: entry.handle, cancelled: false };
		entry.running = running;
		clearTimeout(entry.idleTimer);
		const notice = entry.contextResetNotice;
		entry.contextResetNotice = undefined;
		let released = false;
		return {
			definition: this.definition(entry.agent),
			handle: entry.handle,
			contextResetNotice: notice,
			get cancelled() {
				return running.cancelled;
			},
			recordRunning: () => this.agentSessions.setStatus(chatId, entry.agent, 'running'),
			release: (backendSessionId) => {
				if (released) {
					return;
				}
				released = true;
				if (entry.running === running) {
					entry.running = undefined;
				}
				if (this.entries.get(entry.key) !== entry) {
					return;
				}
				try {
					this.agentSessions.upsert({ chat_id: chatId, agent: entry.agent, backend: entry.transport, status: 'ready', backend_session_id: backendSessionId || null });
				} catch (e) {
					this.logger.warn(`[AgentPool][${entry.key}] could not record the agent as ready: ${errorMessage(e)}`);
				}
				this.armIdleTimer(entry);
			},
		};
	}

	/**
	 * Ends the chat's agent process (a chat tab closing, a worktree gone): its turn, if any, is cancelled
	 * first; the next prompt starts a new process (resuming the context where its row still allows).
	 */
	async end(chatId: string, agent: string): Promise<void> {
		const key = poolKey(chatId, agent);
		await this.starting.get(key)?.catch(() => undefined);
		const entry = this.entries.get(key);
		if (!entry) {
			return;
		}
		await this.cancel(chatId, agent).catch((e) => this.logger.warn(`[AgentPool][${key}] cancel: ${errorMessage(e)}`));
		await this.remove(entry, 'ended');
	}

	/** Cancels the turn the chat's agent is running (session/cancel; killed after the backend's grace period). */
	async cancel(chatId: string, agent: string): Promise<void> {
		const running = this.entries.get(poolKey(chatId, agent))?.running;
		if (running) {
			running.cancelled = true;
			await running.handle.cancel();
		}
	}

	/**
	 * Cancels running turns, then ends every agent process (SIGTERM, SIGKILL after the grace period). The turn
	 * layer shuts down first (`TurnRunner.shutdown`), so turns record their end while their agent still lives.
	 */
	async shutdown(): Promise<void> {
		this.closing = true;
		await Promise.allSettled([...this.starting.values()]);
		const entries = [...this.entries.values()];
		await Promise.allSettled(entries.map((e) => this.cancel(e.chatId, e.agent)));
		await Promise.allSettled(entries.map((e) => this.remove(e, 'idle')));
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

/** A chat's recorded agent settings, or none when absent or unreadable (the agent then starts with its defaults). */
function parseSettings(json: string | null): AgentSettings | undefined {
	if (!json) {
		return undefined;
	}
	try {
		const v = JSON.parse(json) as unknown;
		if (!v || typeof v !== 'object' || Array.isArray(v)) {
			return undefined;
		}
		const { modeId, modelId, options } = v as Record<string, unknown>;
		const kept = options && typeof options === 'object' && !Array.isArray(options) ? Object.entries(options).filter((e): e is [string, string | boolean] => typeof e[1] === 'string' || typeof e[1] === 'boolean') : [];
		return {
			...(typeof modeId === 'string' ? { modeId } : {}),
			...(typeof modelId === 'string' ? { modelId } : {}),
			...(kept.length > 0 ? { options: Object.fromEntries(kept) } : {}),
		};
	} catch {
		return undefined;
	}
}

/** Why a chat cannot run: its session has no usable worktree, and agents never work anywhere else. */
export function noWorktreeError(wd: { sessionId: string; worktreeState: string | null }): AgentTabsError {
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
