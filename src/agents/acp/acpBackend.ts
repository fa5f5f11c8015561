import * as acp from '@agentclientprotocol/sdk';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setMaxListeners } from 'node:events';
import { pathToFileURL } from 'node:url';
import { AgentTabsError } from '../../common/errors';
import { Emitter, logListenerErrors, type Event } from '../../common/event';
import { Disposable, toDisposable } from '../../common/lifecycle';
import { errorMessage, type Logger } from '../../common/log';
import { redactingLogger } from '../../common/redact';
import { revealHidden } from '../../common/visibleText';
import type { AgentBackend, AgentSessionHandle, AgentSettings, EnsureSessionOptions, SessionCapabilities, TurnContext } from '../backend';
import type { PromptInput } from '../../protocol/turns';
import { readFileInsideWorktree, resolveInsideWorktree, worktreeRelative, writeFileInsideWorktree } from '../confine';
import type { AgentDefinition, ReadMissingFile } from '../definitions';
import { agentEnvironment } from '../environment';
import { maxShownPerChat, maxWaitingPerChat } from '../permissions';
import { modeConfigOption, modelConfigOption, type AgentEvent, type ConfigOption, type PermissionOption, type StopReason, type ToolKind, type TurnResult, type TurnUsage } from '../../protocol/agentEvents';
import { spawnAgent, tailFromWord, terminate, type SpawnedAgent } from '../process';
import { mapConfigOptions, mapPermissionToolCall, mapSessionUpdate } from './mapUpdate';
import { describeCommand, maxShownCommand, shellInvocation, TerminalManager, type TerminalRequest } from './terminals';
import { stdioStream } from './transport';

export interface AcpBackendOptions {
	logger: Logger;
	/** How long `initialize` and `session/new` may take before the agent counts as hung. */
	startTimeoutMs?: number;
	/** After `session/cancel`, how long the agent has to end the turn before it is killed. */
	cancelGraceMs?: number;
	/** SIGTERM to SIGKILL. */
	killGraceMs?: number;
	/** After session/load answers, how long without history updates before the replay counts as over. */
	replayQuietMs?: number;
}

/** The updates a session/load replays: the conversation itself, not the session's state (mode, commands, usage). */
/** The most config options a chat's settings keep, and the longest value kept (a hostile agent's are bounded). */
const maxKeptOptions = 64;
const maxKeptValue = 1000;

/** Whether the agent offers `value` for this option (a boolean option: true or false). */
function optionOffers(option: ConfigOption, value: string | boolean): boolean {
	return option.type === 'boolean' ? typeof value === 'boolean' : typeof value === 'string' && (option.options ?? []).some((v) => v.value === value);
}

const historyEvents = new Set<AgentEvent['type']>(['text', 'reasoning', 'user_text', 'plan', 'tool_call', 'tool_update', 'compaction']);
/** Lines that are not ACP shown as error rows in one turn, and logged; the rest are left out. */
const maxGarbageRows = 5;
const maxGarbageLogged = 100;
/** However chatty the agent, the first prompt waits at most this long for a late replay to end. */
const maxReplayTailMs = 3000;

const isAuthRequired = (e: unknown): boolean => e instanceof acp.RequestError && e.code === -32000;

/**
 * The method its definition names for signing in with a key (`keySignIn`), if the agent offers it, it is not
 * a terminal method (the spec forbids passing those to `authenticate`), and one of the definition's
 * `secretEnv` keys is set (from secret storage or the user's environment).
 */
function keySignInMethod(definition: Pick<AgentDefinition, 'keySignIn' | 'secretEnv'>, methods: readonly acp.AuthMethod[] | null | undefined, env: Readonly<Record<string, string>>): acp.AuthMethod | undefined {
	if (!definition.keySignIn || !(definition.secretEnv ?? []).some((name) => (env[name] ?? '').trim() !== '')) {
		return undefined;
	}
	return (methods ?? []).find((m) => m.id === definition.keySignIn && (m as { type?: unknown }).type !== 'terminal');
}

const stopReasons = new Set<StopReason>(['end_turn', 'max_tokens', 'max_turn_requests', 'refusal', 'cancelled']);

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	return Promise.race([
		p.finally(() => clearTimeout(timer)),
		new Promise<never>((_, reject) => {
			timer = setTimeout(() => reject(new AgentTabsError('agent/timeout', `${what} did not answer within ${Math.round(ms / 1000)} s.`)), ms);
		}),
	]);
}

/** Starts Agent Client Protocol agents over stdio. */
export class AcpBackend implements AgentBackend {
	readonly transport = 'acp' as const;

	constructor(private readonly options: AcpBackendOptions) {}

	async ensureSession(opts: EnsureSessionOptions): Promise<AgentSessionHandle> {
		const session = new AcpSession(opts, this.options);
		try {
			await session.start();
			return session;
		} catch (e) {
			await session.shutdown();
			session.dispose();
			throw e;
		}
	}
}

class AcpSession extends Disposable implements AgentSessionHandle {
	private readonly _onDidExit = this._register(new Emitter<{ code: number | null; signal: string | null; expected: boolean; endedAfterCancel?: boolean }>((e) => logListenerErrors(this.logger, '[AcpSession][onDidExit]')(e)));
	readonly onDidExit = this._onDidExit.event;
	private readonly _onDidEmitIdleEvent = this._register(new Emitter<AgentEvent>((e) => logListenerErrors(this.logger, '[AcpSession][onDidEmitIdleEvent]')(e)));
	/**
	 * Idle events from before anyone listened: the session's setup (modes, models, options, commands) comes
	 * while the pool is still waiting for `ensureSession`, and the first listener gets them, in order.
	 */
	private earlyIdleEvents: AgentEvent[] | undefined = [];
	readonly onDidEmitIdleEvent: Event<AgentEvent> = (listener, thisArgs, disposables) => {
		const subscription = this._onDidEmitIdleEvent.event(listener, thisArgs, disposables);
		const early = this.earlyIdleEvents ?? [];
		this.earlyIdleEvents = undefined;
		for (const event of early) {
			try {
				listener.call(thisArgs, event);
			} catch (e) {
				this.logger.error(`${this.tag} an idle event listener failed: ${errorMessage(e)}`);
			}
		}
		return subscription;
	};

	backendSessionId = '';
	/** Lines that were not ACP since the turn started (or the session, before its first turn). */
	private garbageLines = 0;
	/** Other sessions the agent sent updates for (each logged once). */
	private readonly foreignSessions = new Set<string>();
	resumed = false;
	capabilities: SessionCapabilities = { loadSession: false, resume: false, images: false, embeddedContext: false };

	private proc: SpawnedAgent | undefined;
	private conn: acp.ClientConnection | undefined;
	private terminals: TerminalManager | undefined;
	private turn: { ctx: TurnContext; abort: AbortController; editedPaths: Set<string>; proposedDiffs: Map<string, { path: string; kind: 'add' | 'modify' }[]> } | undefined;
	/** While true, history updates are the agent's replay of a loaded session, which our transcript already holds. */
	private replaying = false;
	/** When the last replayed history update arrived: the replay is over once the agent has been quiet a while. */
	private lastReplayAt = 0;
	/**
	 * Tool calls replayed from history, and whether they had ended: in the first turn after a load, their late
	 * re-announcements and ended updates are not taken for that turn's work (ids are unique in a session).
	 */
	private readonly replayedToolCalls = new Map<string, boolean>();
	private shuttingDown = false;
	/** Killed because it did not stop when its turn was cancelled: not a crash to report (the turn says it). */
	private endedAfterCancel = false;
	private exitInfo: { code: number | null; signal: string | null } | undefined;
	private fatal: string | undefined;
	private configOptions: ReturnType<typeof mapConfigOptions> = [];
	private legacyModels = false;
	/** The mode and model as the agent last reported them, and what it offers (empty: it did not say). */
	private current: { modeId?: string; modelId?: string; modes: string[]; models: string[] } = { modes: [], models: [] };
	/** Settings changes are reported once the session is set up (and put back to a chat's earlier settings). */
	private settingsReady = false;
	/** Options the chat had that the agent has not offered since it restarted: kept, and put back when it does. */
	private laterOptions: Record<string, string | boolean> | undefined;
	private reportedSettings = '';
	private readonly _onDidChangeSettings = this._register(new Emitter<AgentSettings>((e) => logListenerErrors(this.logger, '[AcpSession][onDidChangeSettings]')(e)));
	readonly onDidChangeSettings = this._onDidChangeSettings.event;
	private readMissingFile: ReadMissingFile = 'notFound';
	/**
	 * Mentioned files go as `file://` and the path as it is, not percent-encoded: the Gemini CLI takes the rest
	 * of the link as the path without decoding it, so `my notes.md` sent as `my%20notes.md` is a file it cannot
	 * find, and the model gets the name without the text.
	 */
	private rawFileLinks = false;
	/** Tool calls of this turn the user or the policy allowed and that have not finished: their terminals run without asking again. */
	private readonly allowedToolCalls = new Set<string>();
	/** Title and kind of this turn's tool calls as announced: a permission request may name only the id. */
	private readonly toolCallsSeen = new Map<string, { title?: string; kind?: ToolKind }>();
	private readonly logger: Logger;
	private readonly tag: string;

	constructor(
		private readonly opts: EnsureSessionOptions,
		private readonly backendOptions: AcpBackendOptions,
	) {
		super();
		this.logger = opts.redactor ? redactingLogger(backendOptions.logger, opts.redactor) : backendOptions.logger;
		this.tag = `[AcpSession][${opts.definition.id}:${opts.chatId}]`;
		this._register(toDisposable(() => this.terminals?.dispose()));
	}

	private emit(event: AgentEvent): void {
		if (event.type === 'mode' || event.type === 'model' || event.type === 'config') {
			this.noteSetting(event);
		}
		if (this.turn) {
			this.turn.ctx.onEvent(event);
		} else if (this.earlyIdleEvents) {
			if (this.earlyIdleEvents.length < 1000) {
				this.earlyIdleEvents.push(event);
			}
		} else {
			this._onDidEmitIdleEvent.fire(event);
		}
	}

	async start(): Promise<void> {
		const { definition, cwd } = this.opts;
		const startTimeout = this.backendOptions.startTimeoutMs ?? 30_000;
		// Only the environment the pool defined for this agent: never the host's whole environment.
		const env: Record<string, string> = this.opts.env ?? agentEnvironment(definition, process.env).env;
		if (!fs.existsSync(cwd)) {
			throw new AgentTabsError('agent/noCwd', `The working folder ${cwd} does not exist.`);
		}
		this.proc = await spawnAgent(definition.command, definition.args, {
			cwd,
			env,
			installHint: definition.install,
			redactor: this.opts.redactor,
			onStderr: (text) => this.logger.trace(`${this.tag} stderr: ${text.trimEnd()}`),
		});
		const proc = this.proc;
		proc.child.stdin!.on('error', (e) => this.logger.debug(`${this.tag} stdin: ${e.message}`));
		void proc.exited.then(({ code, signal }) => {
			this.exitInfo = { code, signal };
			const expected = this.shuttingDown;
			if (!expected) {
				this.logger.warn(`${this.tag} agent exited unexpectedly (code ${code}, signal ${signal}); stderr tail: ${tailFromWord(proc.stderr.toString(), 500)}`);
			}
			this.conn?.close(new Error('agent exited'));
			this._onDidExit.fire({ code, signal, expected, ...(this.endedAfterCancel ? { endedAfterCancel: true } : {}) });
		});
		// An agent that closes its output but keeps running can never answer again: ended, as a crash, so the
		// next turn starts it anew instead of failing with "connection closed" for as long as it lives.
		proc.child.stdout!.once('end', () => {
			const timer = setTimeout(() => {
				if (!this.exitInfo && !this.shuttingDown) {
					this.fatal = 'the agent closed its output but kept running';
					this.logger.warn(`${this.tag} ${this.fatal}; ending it`);
					void this.kill();
				}
			}, 2000);
			void proc.exited.finally(() => clearTimeout(timer));
		});
		const redactor = this.opts.redactor;
		this.terminals = new TerminalManager(cwd, env, redactor ? (t, cut) => (cut ? redactor.redactCut(t) : redactor.redact(t)) : undefined);

		const stream = stdioStream(proc.child.stdout!, proc.child.stdin!, {
			onSessionUpdate: (params) => {
				// One chat's agent process has one session; updates for another (an earlier session of the process,
				// one it failed to load) are not this chat's. Before the session is known (session/new), all count.
				const sessionId = typeof params === 'object' && params !== null ? (params as { sessionId?: unknown }).sessionId : undefined;
				const ours = this.backendSessionId || (this.replaying ? this.opts.resumeSessionId : undefined);
				if (ours && typeof sessionId === 'string' && sessionId !== ours) {
					if (!this.foreignSessions.has(sessionId) && this.foreignSessions.size < 100) {
						this.foreignSessions.add(sessionId);
						this.logger.warn(`${this.tag} ignored updates for the session ${this.redact(sessionId).slice(0, 200)}, which is not this chat's (${ours})`);
					}
					return;
				}
				for (const event of mapSessionUpdate(params)) {
					this.takeUpdate(event);
				}
			},
			onGarbage: (line) => {
				// Redacted whole, then cut: a key cut in half would pass the redactor.
				const whole = this.redact(line);
				const shown = whole.length > 200 ? `${whole.slice(0, 200)}…` : whole;
				// An agent printing its own logs on stdout: a few rows a turn say so, a bounded number are logged.
				const n = ++this.garbageLines;
				if (n <= maxGarbageLogged) {
					this.logger.warn(`${this.tag} not ACP: ${shown}`);
				} else if (n === maxGarbageLogged + 1) {
					this.logger.warn(`${this.tag} more lines that are not ACP; left out of the log until the next turn`);
				}
				if (n <= maxGarbageRows) {
					this.emit({ type: 'error', code: 'agent/garbage', message: `The agent wrote something that is not an ACP message: ${shown}` });
				} else if (n === maxGarbageRows + 1) {
					this.emit({ type: 'error', code: 'agent/garbage', message: `The agent wrote more lines that are not ACP messages; they are left out of the chat (the log has the first ${maxGarbageLogged} of each turn).` });
				}
			},
			onFatal: (error) => {
				this.fatal = error.message;
				this.emit({ type: 'error', code: 'agent/stream', message: error.message });
				void this.kill();
			},
		});

		const app = acp
			.client({ name: 'agent-tabs' })
			.onRequest(acp.methods.client.session.requestPermission, (c) => this.inTurn(() => this.onPermission(c.params, c.signal)))
			.onRequest(acp.methods.client.fs.readTextFile, (c) => this.inTurn(() => this.onRead(c.params)))
			.onRequest(acp.methods.client.fs.writeTextFile, (c) => this.inTurn(() => this.onWrite(c.params)))
			.onRequest(acp.methods.client.terminal.create, (c) => this.inTurn(() => this.onTerminalCreate(c.params)))
			.onRequest(acp.methods.client.terminal.output, (c) => this.inTurn(() => this.guard(() => this.terminals!.output(c.params.terminalId))))
			.onRequest(acp.methods.client.terminal.waitForExit, (c) =>
				this.inTurn(() =>
					this.guardAsync(async () => {
						const exit = await this.terminals!.waitForExit(c.params.terminalId, c.signal);
						// Withdrawn ($/cancel_request) before the command ended: the protocol's "request cancelled", not an exit.
						if (c.signal?.aborted && exit === undefined) {
							throw new acp.RequestError(-32800, 'Request cancelled');
						}
						return exit ?? { exitCode: null, signal: null };
					}),
				),
			)
			.onRequest(acp.methods.client.terminal.kill, (c) => this.inTurn(() => this.guard(() => (this.terminals!.kill(c.params.terminalId), {}))))
			.onRequest(acp.methods.client.terminal.release, (c) => this.inTurn(() => this.guard(() => (this.terminals!.release(c.params.terminalId), {}))))
			.onNotification('*', (c) => {
				// Extension notifications (`_goose/progress`) and the protocol's own (`$/cancel_request`, which the
				// SDK has applied already) are not updates for the user: ACP says to ignore what one does not know.
				if (c.method.startsWith('_') || c.method.startsWith('$/')) {
					this.logger.debug(`${this.tag} ignored the notification ${c.method}`);
					return;
				}
				this.emit({ type: 'raw', method: c.method, payload: c.params });
			})
			.onRequest('*', (c) => {
				// An extension request (`_vendor/...`) we do not know is the agent probing what we support: its
				// "method not found" is the answer, not something for the user's transcript.
				if (c.method.startsWith('_')) {
					this.logger.debug(`${this.tag} answered the unknown extension request ${c.method}: method not found`);
				} else {
					this.emit({ type: 'raw', method: c.method, payload: c.params });
				}
				throw acp.RequestError.methodNotFound(c.method);
			});
		this.conn = app.connect(stream);
		const agent = this.conn.agent;
		const exitedEarly = proc.exited.then(({ code, signal }) => {
			throw new AgentTabsError('agent/exited', `The agent exited while starting (code ${code}, signal ${signal}).${this.stderrHint()}`);
		});
		// A request that fails because the process died reports the exit, not "connection closed".
		const step = <T>(p: Promise<T>, what: string): Promise<T> =>
			withTimeout(
				Promise.race([p.catch(async (e: unknown) => this.explainFailure(e, exitedEarly)), exitedEarly]),
				startTimeout,
				what,
			);

		const init = await step(
			agent.request(acp.methods.agent.initialize, {
				protocolVersion: acp.PROTOCOL_VERSION,
				clientInfo: { name: 'agent-tabs', title: 'Agent Tabs', version: '0.1.0' },
				// `session`: what agents send only to clients that say they show it (compactions as one notice each,
				// the agent's own notices).
				clientCapabilities: { fs: { readTextFile: true, writeTextFile: true }, terminal: true, session: { compaction: {}, notices: {} } },
			}),
			`"${definition.label}" (initialize)`,
		);
		if (init.protocolVersion !== acp.PROTOCOL_VERSION) {
			throw new AgentTabsError('agent/protocolVersion', `"${definition.label}" speaks ACP protocol version ${String(init.protocolVersion)}; Agent Tabs speaks version ${acp.PROTOCOL_VERSION}. Update the agent or Agent Tabs.`);
		}
		// A custom definition that starts the Gemini CLI under another id gets its quirk too.
		this.readMissingFile = definition.readMissingFile ?? (init.agentInfo?.name === 'gemini-cli' ? 'empty' : 'notFound');
		this.rawFileLinks = init.agentInfo?.name === 'gemini-cli';
		const caps = init.agentCapabilities ?? {};
		this.capabilities = {
			loadSession: caps.loadSession === true,
			resume: !!caps.sessionCapabilities?.resume,
			images: caps.promptCapabilities?.image === true,
			embeddedContext: caps.promptCapabilities?.embeddedContext === true,
		};
		const mcpServers = (this.opts.mcpServers ?? []).map((s) => ({ name: s.name, command: s.command, args: s.args, env: Object.entries(s.env).map(([name, value]) => ({ name, value })) }));

		// An agent that answers "auth required" although the user gave it a key (codex-acp reads OPENAI_API_KEY
		// only once told to): signed in once with the method its definition names, then asked again.
		let signedIn = false;
		/** Why the sign-in failed: a load that then fails falls back to session/new, which reports this. */
		let refused: Error | undefined;
		const withKeySignIn = async <T>(request: () => Promise<T>): Promise<T> => {
			try {
				return await request();
			} catch (e) {
				if (refused && isAuthRequired(e)) {
					throw refused;
				}
				const method = !signedIn && isAuthRequired(e) ? keySignInMethod(definition, init.authMethods, env) : undefined;
				if (!method) {
					throw e;
				}
				signedIn = true;
				this.logger.info(`${this.tag} asks for a sign-in; signing in with its "${method.name}" method and the API key it was given`);
				try {
					await step(agent.request(acp.methods.agent.authenticate, { methodId: method.id }), `"${definition.label}" (authenticate)`);
				} catch (authError) {
					if (this.exitInfo) {
						throw authError;
					}
					refused =
						authError instanceof AgentTabsError && authError.code === 'agent/timeout'
							? authError
							: new AgentTabsError('agent/authRequired', `"${definition.label}" did not accept the API key it was given (its "${method.name}" sign-in): ${errorMessage(authError)}. Check the key (Agent Tabs: Set API Key).`, { cause: authError });
					throw refused;
				}
				return request();
			}
		};

		let result: { modes?: unknown; configOptions?: unknown; models?: unknown } | undefined;
		const resumeId = this.opts.resumeSessionId;
		if (resumeId && (this.capabilities.loadSession || this.capabilities.resume)) {
			try {
				this.replaying = true;
				if (this.capabilities.resume) {
					result = await withKeySignIn(() => step(agent.request(acp.methods.agent.session.resume, { sessionId: resumeId, cwd, mcpServers }), `"${definition.label}" (session/resume)`));
				} else {
					result = await withKeySignIn(() => step(agent.request(acp.methods.agent.session.load, { sessionId: resumeId, cwd, mcpServers }), `"${definition.label}" (session/load)`));
					await this.replayTail();
				}
				this.backendSessionId = resumeId;
				this.resumed = true;
			} catch (e) {
				if (this.exitInfo) {
					throw e;
				}
				const detail = e instanceof acp.RequestError && e.data !== undefined ? ` (${this.redact(JSON.stringify(e.data)).slice(0, 500)})` : '';
				this.logger.info(`${this.tag} could not resume ${resumeId}: ${errorMessage(e)}${detail}; starting a new session`);
			} finally {
				this.replaying = false;
			}
		}
		if (!this.resumed) {
			try {
				const created = (await withKeySignIn(() => step(agent.request(acp.methods.agent.session.new, { cwd, mcpServers }), `"${definition.label}" (session/new)`))) as acp.NewSessionResponse;
				this.backendSessionId = created.sessionId;
				result = created as typeof result;
			} catch (e) {
				if (isAuthRequired(e)) {
					// The ways the agent itself names (authMethods): signing in is the agent's own step, done once in
					// its command line; a key can come from Agent Tabs.
					const ways = (init.authMethods ?? [])
						.map((m) => (m.description ? `${m.name} (${m.description})` : m.name))
						.filter((w) => typeof w === 'string' && w.trim() !== '')
						.slice(0, 5);
					const named = ways.length > 0 ? ` It offers: ${ways.join('; ')}.` : '';
					throw new AgentTabsError('agent/authRequired', `"${definition.label}" needs to be signed in or given an API key (Agent Tabs: Set API Key).${named}`);
				}
				throw e;
			}
		}
		this.noteSessionSetup(result);
		if (this.opts.restoreSettings) {
			// The chat's own settings: the defaults were applied when it first started, and it may have left them.
			if (!(await this.restoreSettings(this.opts.restoreSettings))) {
				// A request failed: if that was the agent dying, its exit is reported a moment after the break.
				await Promise.race([this.proc!.exited.catch(() => undefined), new Promise((r) => setTimeout(r, 1000))]);
			}
		} else {
			if (definition.defaultMode) {
				await this.setMode(definition.defaultMode).catch((e) => this.logger.warn(`${this.tag} default mode: ${errorMessage(e)}`));
			}
			if (definition.defaultModel) {
				await this.setModel(definition.defaultModel).catch((e) => this.logger.warn(`${this.tag} default model: ${errorMessage(e)}`));
			}
		}
		if (this.exitInfo) {
			// It died while being set up: not a session to use, and its defaults must not replace the chat's settings.
			throw new AgentTabsError('agent/exited', `"${definition.label}" exited while its settings were being put back (code ${this.exitInfo.code}, signal ${this.exitInfo.signal}).`);
		}
		this.settingsReady = true;
		this.reportedSettings = JSON.stringify(this.currentSettings());
	}

	private async explainFailure(e: unknown, exited: Promise<never>): Promise<never> {
		const settled = await Promise.race([exited.then(() => false, () => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]);
		if (settled) {
			return exited; // rejects with the exit explanation
		}
		throw e;
	}

	private stderrHint(): string {
		const tail = this.proc?.stderr.toString().trim();
		return tail ? ` Its last words: ${tailFromWord(tail, 400)}` : '';
	}

	private redact(text: string): string {
		return this.opts.redactor ? this.opts.redactor.redact(text) : text;
	}

	/**
	 * The spec has an agent replay the whole history before it answers session/load, but some answer first
	 * and stream the history after (gemini-cli 0.61 does not wait for its own replay). Until the agent has
	 * been quiet for a moment, its history updates still count as replay, so none lands in the next turn.
	 */
	private async replayTail(): Promise<void> {
		const quietMs = this.backendOptions.replayQuietMs ?? 250;
		const started = Date.now();
		this.lastReplayAt = Math.max(this.lastReplayAt, started);
		for (;;) {
			const now = Date.now();
			const wait = Math.min(this.lastReplayAt + quietMs - now, started + maxReplayTailMs - now);
			if (wait <= 0 || this.exitInfo) {
				return;
			}
			await new Promise((resolve) => setTimeout(resolve, wait));
			// A timer that fired late means the host was busy: the agent's output of that time may still be
			// unread, so the quiet it seems to show proves nothing. Another quiet stretch is needed.
			if (Date.now() - (now + wait) > 50) {
				this.lastReplayAt = Date.now();
			}
		}
	}

	/**
	 * One event of the agent's updates: emitted (unless it is a replay's), its diffs noted for attribution, and
	 * what later requests rely on remembered. A permission request's tool call comes through here too.
	 */
	private takeUpdate(event: AgentEvent): void {
		if (this.isReplayed(event)) {
			return;
		}
		this.emit(event); // a config event also becomes what set_model and set_config_option pick from (noteSetting)
		this.noteToolDiffs(event);
		if ((event.type === 'tool_call' || event.type === 'tool_update') && this.toolCallsSeen.size < 10_000) {
			const seen = this.toolCallsSeen.get(event.toolCallId) ?? {};
			this.toolCallsSeen.set(event.toolCallId, { title: event.title ?? seen.title, kind: event.kind ?? seen.kind });
		}
		if (event.type === 'tool_update' && (event.status === 'completed' || event.status === 'failed')) {
			this.allowedToolCalls.delete(event.toolCallId);
		}
	}

	/** A history update of a loaded session's replay, during it or (for a tool call it named) late. */
	private isReplayed(event: AgentEvent): boolean {
		const isTool = event.type === 'tool_call' || event.type === 'tool_update';
		if (this.replaying && (isTool || historyEvents.has(event.type))) {
			this.lastReplayAt = Date.now();
			if (isTool && this.replayedToolCalls.size < 10_000) {
				const ended = event.status === 'completed' || event.status === 'failed';
				this.replayedToolCalls.set(event.toolCallId, ended || this.replayedToolCalls.get(event.toolCallId) === true);
			}
			return true;
		}
		if (event.type !== 'tool_call' && event.type !== 'tool_update') {
			return false;
		}
		const replayedEnded = this.replayedToolCalls.get(event.toolCallId);
		if (replayedEnded === undefined) {
			return false;
		}
		// A call announced as ended under a replayed id, or an update of a replayed call that had ended: the
		// replay's, late. A call announced as running is live: an agent that numbers its calls anew in each
		// process may reuse an id, and from then on that id is this call's.
		const ended = event.status === 'completed' || event.status === 'failed';
		if (event.type === 'tool_call' ? ended : replayedEnded) {
			this.logger.debug(`${this.tag} a replayed tool call (${event.toolCallId}) came after the replay; ignored`);
			return true;
		}
		if (event.type === 'tool_call') {
			this.replayedToolCalls.delete(event.toolCallId);
		}
		return false;
	}

	private noteSetting(event: Extract<AgentEvent, { type: 'mode' | 'model' | 'config' }>): void {
		if (event.type === 'mode') {
			this.current = { ...this.current, modeId: event.modeId, ...(event.available ? { modes: event.available.map((m) => m.id) } : {}) };
		} else if (event.type === 'model') {
			this.current = { ...this.current, modelId: event.modelId, ...(event.available ? { models: event.available.map((m) => m.id) } : {}) };
		} else {
			this.configOptions = event.options;
			if (this.settingsReady && this.laterOptions && event.options.some((o) => o.id in this.laterOptions!)) {
				// Options the chat had that the agent offers only now: put back once it has said what it offers.
				setTimeout(() => void this.restoreLaterOptions(), 0);
			}
		}
		this.reportSettings();
	}

	/**
	 * The chat's settings as the agent last reported them (a mode or model it offers as an option is in
	 * `options`), with those of the chat's options the agent has not offered (yet) since it restarted: they are
	 * kept, to be put back when it does. At most `maxKeptOptions`, values up to `maxKeptValue` characters.
	 */
	currentSettings(): AgentSettings {
		const reported = this.configOptions.filter((o) => o.currentValue !== '' && (typeof o.currentValue !== 'string' || o.currentValue.length <= maxKeptValue)).map((o) => [o.id, o.currentValue] as const);
		const options = Object.fromEntries([...Object.entries(this.laterOptions ?? {}), ...reported].slice(-maxKeptOptions));
		const { modeOption, modelOption } = this.settingOptions();
		return {
			...(this.current.modeId !== undefined && !modeOption ? { modeId: this.current.modeId } : {}),
			...(this.current.modelId !== undefined && !modelOption ? { modelId: this.current.modelId } : {}),
			...(Object.keys(options).length > 0 ? { options } : {}),
		};
	}

	/** The options through which the mode and the model are set, when the agent offers them so (as setMode and setModel pick). */
	private settingOptions(): { modeOption: ConfigOption | undefined; modelOption: ConfigOption | undefined } {
		return {
			modeOption: modeConfigOption(this.configOptions),
			modelOption: modelConfigOption(this.configOptions),
		};
	}

	private reportSettings(): void {
		if (!this.settingsReady) {
			return;
		}
		const settings = this.currentSettings();
		const json = JSON.stringify(settings);
		if (json !== this.reportedSettings) {
			this.reportedSettings = json;
			this._onDidChangeSettings.fire(settings);
		}
	}

	/**
	 * Puts the agent back to the settings its chat had (it restarted: idle timeout, crash, reload), each only
	 * where the agent still offers it: its mode and model first (another option's choices may depend on them),
	 * through the option that sets them if the agent now offers one, then the other options. An option the agent
	 * does not offer yet is kept and put back when it does (`restoreLaterOptions`). What cannot be put back, or
	 * did not stay as it was, is logged and said in the chat.
	 */
	private async restoreSettings(earlier: AgentSettings): Promise<boolean> {
		const notRestored: string[] = [];
		let allAnswered = true;
		const attempt = async (what: string, set: () => Promise<void>): Promise<void> => {
			try {
				await set();
			} catch (e) {
				this.logger.warn(`${this.tag} could not put back ${what}: ${errorMessage(e)}`);
				notRestored.push(what);
				allAnswered = false;
			}
		};
		const stored = { ...(earlier.options ?? {}) };
		const { modeOption, modelOption } = this.settingOptions();
		// The mode and the model, also when they were kept the other way (an agent that moved them to options).
		const mode = modeOption ? ((stored[modeOption.id] as string | undefined) ?? earlier.modeId) : earlier.modeId;
		if (modeOption) {
			delete stored[modeOption.id];
		}
		if (typeof mode === 'string' && mode !== (modeOption ? modeOption.currentValue : this.current.modeId)) {
			if (modeOption ? optionOffers(modeOption, mode) : this.current.modes.includes(mode)) {
				await attempt(`mode ${mode}`, () => this.setMode(mode));
			} else {
				notRestored.push(`mode ${mode}`);
			}
		}
		const model = modelOption ? ((stored[modelOption.id] as string | undefined) ?? earlier.modelId) : earlier.modelId;
		if (modelOption) {
			delete stored[modelOption.id];
		}
		if (typeof model === 'string' && model !== (modelOption ? modelOption.currentValue : this.current.modelId)) {
			if (modelOption ? optionOffers(modelOption, model) : this.legacyModels && this.current.models.includes(model)) {
				await attempt(`model ${model}`, () => this.setModel(model));
			} else {
				notRestored.push(`model ${model}`);
			}
		}
		const later: Record<string, string | boolean> = {};
		for (const [id, value] of Object.entries(stored)) {
			const option = this.configOptions.find((o) => o.id === id);
			if (!option) {
				later[id] = value; // not offered (yet): put back when it is
				continue;
			}
			allAnswered = (await this.restoreOption(option, value, notRestored)) && allAnswered;
		}
		this.laterOptions = Object.keys(later).length > 0 ? later : undefined;
		// A later choice can reset an earlier one (a model change resets effort): what did not stay is said too.
		for (const [id, value] of Object.entries(stored)) {
			const option = this.configOptions.find((o) => o.id === id);
			if (option && option.currentValue !== value && !notRestored.includes(option.name)) {
				notRestored.push(option.name);
			}
		}
		this.sayNotRestored(notRestored);
		return allAnswered;
	}

	/** Options the chat had that the agent offers only now (after its setup): put back, once each. */
	private async restoreLaterOptions(): Promise<void> {
		const later = this.laterOptions;
		if (!later || this.exitInfo) {
			return;
		}
		const notRestored: string[] = [];
		for (const option of this.configOptions.filter((o) => o.id in later)) {
			if (!(option.id in later)) {
				continue; // put back meanwhile, by a call its own update started
			}
			const value = later[option.id]!;
			delete later[option.id];
			await this.restoreOption(option, value, notRestored);
		}
		if (Object.keys(later).length === 0) {
			this.laterOptions = undefined;
		}
		this.sayNotRestored(notRestored);
		this.reportSettings();
	}

	/** Puts one option back; false when the agent's answer was an error (not: a value it no longer offers). */
	private async restoreOption(option: ConfigOption, value: string | boolean, notRestored: string[]): Promise<boolean> {
		if (option.currentValue === value || value === '') {
			return true;
		}
		if (!optionOffers(option, value)) {
			this.logger.info(`${this.tag} ${option.name}: ${String(value)} is no longer offered; left at ${String(option.currentValue)}`);
			notRestored.push(option.name);
			return true;
		}
		try {
			await this.setConfigOption(option.id, value);
			return true;
		} catch (e) {
			this.logger.warn(`${this.tag} could not put back ${option.name}: ${errorMessage(e)}`);
			notRestored.push(option.name);
			return false;
		}
	}

	private sayNotRestored(notRestored: string[]): void {
		if (notRestored.length > 0) {
			this.emit({
				type: 'notice',
				severity: 'warning',
				title: `${this.opts.definition.label} restarted without some of this chat's settings`,
				description: `Not put back: ${notRestored.map((n) => revealHidden(n)).join(', ')}. Check them in the tab's pickers.`,
			});
		}
	}

	private noteSessionSetup(result: { modes?: unknown; configOptions?: unknown; models?: unknown } | undefined): void {
		if (!result) {
			return;
		}
		const modes = result.modes as { currentModeId?: unknown; availableModes?: { id: string; name: string }[] } | null | undefined;
		if (modes && typeof modes.currentModeId === 'string') {
			this.emit({ type: 'mode', modeId: modes.currentModeId, available: (modes.availableModes ?? []).map((m) => ({ id: m.id, name: m.name })) });
		}
		this.configOptions = mapConfigOptions(result.configOptions);
		if (this.configOptions.length > 0) {
			this.emit({ type: 'config', options: this.configOptions });
		}
		const models = result.models as { currentModelId?: unknown; availableModels?: { modelId: string; name: string }[] } | null | undefined;
		if (models && typeof models.currentModelId === 'string') {
			this.legacyModels = true;
			this.emit({ type: 'model', modelId: models.currentModelId, available: (models.availableModels ?? []).map((m) => ({ id: m.modelId, name: m.name })) });
		}
	}

	/**
	 * Edits an agent reports as tool-call diffs are attributed directly, once the tool call has completed:
	 * agents show the diff with the pending call, before asking permission, and a refused call writes nothing.
	 */
	private noteToolDiffs(event: AgentEvent): void {
		if ((event.type !== 'tool_call' && event.type !== 'tool_update') || !this.turn) {
			return;
		}
		const { proposedDiffs, editedPaths } = this.turn;
		const proposed = proposedDiffs.get(event.toolCallId) ?? [];
		for (const c of event.content ?? []) {
			if (c.type !== 'diff') {
				continue;
			}
			let rel: string;
			try {
				rel = worktreeRelative(this.opts.cwd, resolveInsideWorktree(this.opts.cwd, c.path));
			} catch {
				continue;
			}
			// The first diff of a path tells whether the file was new before the call.
			if (!proposed.some((p) => p.path === rel)) {
				proposed.push({ path: rel, kind: c.oldText === null || c.oldText === undefined ? 'add' : 'modify' });
			}
		}
		if (event.status === 'completed') {
			for (const { path: rel, kind } of proposed) {
				if (!editedPaths.has(rel)) {
					editedPaths.add(rel);
					this.emit({ type: 'file_edit', path: rel, kind, source: 'tool_diff', toolCallId: event.toolCallId });
				}
			}
		}
		if (event.status === 'completed' || event.status === 'failed') {
			proposedDiffs.delete(event.toolCallId);
		} else if (proposed.length > 0) {
			proposedDiffs.set(event.toolCallId, proposed);
		}
	}

	/** Answers a request of the agent, telling the running turn (if any) it is under way until it is answered. */
	private async inTurn<T>(fn: () => T | Promise<T>): Promise<T> {
		const answered = this.turn?.ctx.onClientRequest?.();
		try {
			return await fn();
		} finally {
			answered?.();
		}
	}

	private guard<T>(fn: () => T): T {
		try {
			return fn();
		} catch (e) {
			throw new acp.RequestError(-32602, errorMessage(e));
		}
	}

	private async guardAsync<T>(fn: () => Promise<T>): Promise<T> {
		try {
			return await fn();
		} catch (e) {
			throw e instanceof acp.RequestError ? e : new acp.RequestError(-32602, errorMessage(e));
		}
	}

	private async onRead(params: { path: string; line?: number | null; limit?: number | null }): Promise<{ content: string }> {
		return this.guardAsync(async () => {
			const range = typeof params.line === 'number' || typeof params.limit === 'number' ? { ...(typeof params.line === 'number' ? { line: params.line } : {}), ...(typeof params.limit === 'number' ? { limit: params.limit } : {}) } : undefined;
			let content: string;
			try {
				content = await readFileInsideWorktree(this.opts.cwd, params.path, range);
			} catch (e) {
				const code = (e as NodeJS.ErrnoException).code;
				if (code !== 'ENOENT' && code !== 'ENOTDIR') {
					throw e;
				}
				if (this.readMissingFile === 'empty') {
					return { content: '' };
				}
				throw acp.RequestError.resourceNotFound(params.path);
			}
			return { content };
		});
	}

	private async onWrite(params: { path: string; content: string }): Promise<Record<string, never>> {
		return this.guardAsync(async () => {
			if (!this.turn) {
				// Every edit is attributed to the turn that made it; outside a turn (after a cancel, while idle)
				// there is none, so nothing is written, as with terminals.
				throw new acp.RequestError(-32602, `Refused: writing ${params.path} was asked for outside a turn; files are written only while the agent works on a prompt.`);
			}
			const turn = this.turn;
			const { abs, existed } = await writeFileInsideWorktree(this.opts.cwd, params.path, params.content);
			const rel = worktreeRelative(this.opts.cwd, abs);
			turn.editedPaths.add(rel);
			this.emit({ type: 'file_edit', path: rel, kind: existed ? 'modify' : 'add', source: 'fs_write' });
			// Answered once its record is on disk: the agent goes on as if the edit is known (and says so). The file
			// is written either way: a journal that fails is the turn's failure (the runner ends it), not the write's.
			await turn.ctx.recorded?.().catch((e: unknown) => this.logger.error(`${this.tag} the record of the write of ${rel} is not on disk: ${errorMessage(e)}`));
			return {};
		});
	}

	/** Asks the broker (policy or person), recording the request and the decision in the transcript. */
	private async ask(request: { title: string; toolCallId?: string; kind?: ToolKind; options: PermissionOption[] }, requestSignal?: AbortSignal): Promise<{ outcome: 'selected'; optionId: string } | { outcome: 'cancelled' }> {
		const requestEventId = `${request.toolCallId ?? 'perm'}:${Date.now()}`;
		this.emit({ type: 'permission_request', requestId: requestEventId, ...request });
		// Settled by a cancel of the turn, or by the agent withdrawing the request ($/cancel_request).
		const signals = [this.turn?.abort.signal, requestSignal].filter((s): s is AbortSignal => s !== undefined);
		const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
		// Put to a person (a notification and its buttons when the chat is not in view) as the transcript shows it:
		// without the keys it names. Option ids stay as the agent sent them: the answer goes back to it.
		const shown = {
			...request,
			title: this.redact(request.title),
			...(request.toolCallId !== undefined ? { toolCallId: this.redact(request.toolCallId) } : {}),
			options: request.options.map((o) => ({ ...o, name: this.redact(o.name) })),
		};
		const outcome = await this.opts.permissions.request({ chatId: this.opts.chatId, agent: this.opts.definition.id, ...shown }, signal);
		this.emit({
			type: 'permission_decision',
			requestId: requestEventId,
			outcome: outcome.outcome,
			...(outcome.outcome === 'selected' ? { optionId: outcome.optionId } : {}),
			decidedBy: outcome.decidedBy,
		});
		return outcome.outcome === 'selected' ? { outcome: 'selected', optionId: outcome.optionId } : { outcome: 'cancelled' };
	}

	private async onPermission(params: acp.RequestPermissionRequest, requestSignal?: AbortSignal): Promise<acp.RequestPermissionResponse> {
		// Nothing is allowed outside a turn or after its cancel (ACP: such requests are answered cancelled).
		if (!this.turn || this.turn.abort.signal.aborted) {
			this.logger.info(`${this.tag} asked for permission ${this.turn ? 'after its turn was cancelled' : 'outside a turn'}; answered cancelled: ${params.toolCall.title ?? params.toolCall.toolCallId}`);
			return { outcome: { outcome: 'cancelled' } };
		}
		const toolCall = params.toolCall as { toolCallId?: string; title?: string | null; kind?: string | null };
		// The request's tool call is an update of that call (ACP): an agent may announce the call only here, with
		// its diff. Taken as a tool_call_update would be, before asking, so its row has its title, kind, files
		// and status, and its diff is attributed once the call completes.
		const announced = mapPermissionToolCall(params.toolCall, toolCall.toolCallId !== undefined && this.toolCallsSeen.has(toolCall.toolCallId));
		if (announced) {
			this.takeUpdate(announced);
		}
		const options = params.options.map((o) => ({ optionId: o.optionId, name: o.name, kind: o.kind }));
		// The request carries only what changed about the tool call (often just its id): the rest as announced.
		const seen = toolCall.toolCallId ? this.toolCallsSeen.get(toolCall.toolCallId) : undefined;
		const kind = (toolCall.kind ?? seen?.kind ?? undefined) as ToolKind | undefined;
		const outcome = await this.ask({ title: toolCall.title ?? seen?.title ?? 'The agent asks for permission', toolCallId: toolCall.toolCallId, kind, options }, requestSignal);
		// Only a tool call known to run commands stands for its terminals; one of unknown kind does not.
		if (outcome.outcome === 'selected' && toolCall.toolCallId && this.turn && (kind === 'execute' || kind === 'other')) {
			if (options.find((o) => o.optionId === outcome.optionId)?.kind.startsWith('allow')) {
				this.allowedToolCalls.add(toolCall.toolCallId);
			}
		}
		return { outcome };
	}

	/**
	 * `terminal/create` runs a command, so it follows the permission policy like any tool call: with `reject`
	 * nothing runs; with `ask` a person decides, unless the agent already asked for the tool call this command
	 * belongs to (an allowed execute tool call that has not finished). It always starts inside the worktree.
	 */
	private async onTerminalCreate(params: TerminalRequest): Promise<{ terminalId: string }> {
		const terminals = this.terminals!;
		const cwd = this.guard(() => terminals.workingFolder(params));
		// Worked out once: what is put to a person is exactly what runs (see TerminalManager.create).
		const run = shellInvocation(params, cwd);
		const commandLine = [params.command, ...(params.args ?? [])].join(' ');
		const turn = this.turn;
		if (!turn) {
			throw new acp.RequestError(-32602, `Refused: ${commandLine} was asked for outside a turn; terminals run only while the agent works on a prompt.`);
		}
		if (turn.abort.signal.aborted) {
			throw new acp.RequestError(-32602, `Refused: ${commandLine} was asked for after the turn was cancelled.`);
		}
		// An allowed tool call stands for its command, unless running commands is rejected outright.
		if (this.allowedToolCalls.size === 0 || this.opts.permissions.policyFor('execute') === 'reject') {
			const options: PermissionOption[] = [
				{ optionId: 'allow', name: 'Run it', kind: 'allow_once' },
				{ optionId: 'reject', name: 'Do not run it', kind: 'reject_once' },
			];
			// Shown whole (what is cut off cannot be judged), with the variables it sets and its folder.
			const shown = describeCommand(params, this.opts.cwd, run);
			if (shown.length > maxShownCommand && this.opts.permissions.policyFor('execute') === 'ask') {
				throw new acp.RequestError(-32602, `Refused: the command is ${shown.length} characters long, too long to put to a person (at most ${maxShownCommand}); write it to a script in the worktree and run that.`);
			}
			const outcome = await this.ask({ title: `Run in a terminal: ${shown}`, kind: 'execute', options });
			if (outcome.outcome !== 'selected' || outcome.optionId !== 'allow') {
				throw new acp.RequestError(-32602, `Refused: the permission policy did not allow running ${commandLine}.`);
			}
		}
		// A cancel or the end of the turn while the person was asked: the command would outlive the turn's commands.
		if (turn.abort.signal.aborted) {
			throw new acp.RequestError(-32602, `Refused: ${commandLine} was asked for after the turn was cancelled.`);
		}
		if (this.turn !== turn) {
			throw new acp.RequestError(-32602, `Refused: ${commandLine} was allowed only after its turn had ended; terminals run only while the agent works on a prompt.`);
		}
		return this.guard(() => terminals.create(params, run, turn));
	}

	async prompt(input: PromptInput, ctx: TurnContext): Promise<TurnResult> {
		if (this.turn) {
			throw new AgentTabsError('agent/busy', 'This chat is already running a turn.');
		}
		if (!this.conn || this.exitInfo) {
			throw new AgentTabsError('agent/exited', 'The agent is not running.');
		}
		const blocks: acp.ContentBlock[] = [{ type: 'text', text: input.text }];
		for (const file of input.files ?? []) {
			const abs = resolveInsideWorktree(this.opts.cwd, file);
			blocks.push({ type: 'resource_link', uri: this.rawFileLinks ? `file://${abs}` : pathToFileURL(abs).href, name: path.basename(abs) });
		}
		let imagesLeftOut = 0;
		for (const image of input.images ?? []) {
			if (this.capabilities.images) {
				blocks.push({ type: 'image', data: image.data, mimeType: image.mimeType });
			} else {
				imagesLeftOut++;
			}
		}
		const abort = new AbortController();
		// Every open or waiting permission request of the turn listens to it (see PermissionBroker's limits).
		setMaxListeners(maxShownPerChat + maxWaitingPerChat + 16, abort.signal);
		this.turn = { ctx, abort, editedPaths: new Set(), proposedDiffs: new Map() };
		this.garbageLines = 0;
		this.allowedToolCalls.clear();
		this.toolCallsSeen.clear();
		if (imagesLeftOut > 0) {
			this.emit({ type: 'notice', severity: 'warning', title: `${this.opts.definition.label} does not take images, so ${imagesLeftOut === 1 ? 'the image was' : `${imagesLeftOut} images were`} not sent.` });
		}
		const proc = this.proc!;
		try {
			const crashed = proc.exited.then(({ code, signal }): TurnResult => {
				const why = this.fatal ?? `the agent process exited (code ${code}, signal ${signal})`;
				return { stopReason: 'interrupted', backendSessionId: this.backendSessionId, error: `The turn was interrupted: ${why}.${this.stderrHint()}` };
			});
			const answered = this.conn.agent.request(acp.methods.agent.session.prompt, { sessionId: this.backendSessionId, prompt: blocks }).then(
				(r): TurnResult => {
					const known = stopReasons.has(r.stopReason as StopReason);
					if (!known) {
						// A reason a newer protocol added: the turn did end, so it counts as ended; the log keeps the agent's word.
						this.logger.warn(`${this.tag} ended the turn with a stop reason this version does not know (${JSON.stringify(r.stopReason)}); taken as end_turn`);
					}
					const reason = known ? (r.stopReason as StopReason) : 'end_turn';
					return { stopReason: reason, backendSessionId: this.backendSessionId, usage: readUsage((r as { usage?: unknown }).usage) };
				},
				async (e): Promise<TurnResult> => {
					if (abort.signal.aborted) {
						return { stopReason: 'cancelled', backendSessionId: this.backendSessionId };
					}
					// The connection usually breaks a moment before the exit is reported: prefer the crash story.
					const exited = await Promise.race([proc.exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 1000))]);
					if (exited) {
						return crashed;
					}
					return { stopReason: 'error', backendSessionId: this.backendSessionId, error: errorMessage(e) };
				},
			);
			const cancelledHard = new Promise<TurnResult>((resolve) => {
				abort.signal.addEventListener('abort', () => {
					const timer = setTimeout(() => {
						this.logger.warn(`${this.tag} did not end the turn after cancel; killing it`);
						this.endedAfterCancel = true;
						void this.kill();
						resolve({ stopReason: 'cancelled', backendSessionId: this.backendSessionId, error: 'The agent did not stop when asked and was ended.' });
					}, this.backendOptions.cancelGraceMs ?? 5000);
					void answered.finally(() => clearTimeout(timer));
				});
			});
			return await Promise.race([answered, crashed, cancelledHard]);
		} finally {
			this.turn = undefined;
			// A late replay ends before the first turn does; later turns keep every id the agent sends.
			this.replayedToolCalls.clear();
		}
	}

	async cancel(): Promise<void> {
		const turn = this.turn;
		if (!turn || turn.abort.signal.aborted) {
			return;
		}
		turn.abort.abort();
		// What this turn started stops with it; a server an earlier turn left running is not its work.
		this.terminals?.killAll(turn);
		await this.conn?.agent.notify(acp.methods.agent.session.cancel, { sessionId: this.backendSessionId }).catch(() => undefined);
	}

	/** A settings request (mode, model, option) answered in time: an agent that never answers must not hold the start or a picker. */
	private settingRequest<T>(p: Promise<T>, what: string): Promise<T> {
		return withTimeout(p, this.backendOptions.startTimeoutMs ?? 30_000, `"${this.opts.definition.label}" (${what})`);
	}

	/**
	 * An agent that offers its mode as a config option (category `mode`) is set through that option: it may
	 * not implement `session/set_mode` at all (the newer ACP API), and the option is what its picker shows.
	 */
	async setMode(modeId: string): Promise<void> {
		const option = this.settingOptions().modeOption;
		if (option) {
			await this.setConfigOption(option.id, modeId);
		} else {
			await this.settingRequest(this.conn!.agent.request(acp.methods.agent.session.setMode, { sessionId: this.backendSessionId, modeId }), 'session/set_mode');
		}
		this.emit({ type: 'mode', modeId });
	}

	async setModel(modelId: string): Promise<void> {
		const option = this.settingOptions().modelOption;
		if (option) {
			await this.setConfigOption(option.id, modelId);
		} else if (this.legacyModels) {
			await this.settingRequest(this.conn!.agent.request('session/set_model', { sessionId: this.backendSessionId, modelId }), 'session/set_model');
		} else {
			throw new AgentTabsError('agent/noModels', 'This agent does not offer a choice of model.');
		}
		this.emit({ type: 'model', modelId });
	}

	async setConfigOption(configId: string, value: string | boolean): Promise<void> {
		const params = typeof value === 'boolean' ? { sessionId: this.backendSessionId, configId, type: 'boolean' as const, value } : { sessionId: this.backendSessionId, configId, value };
		const r = await this.settingRequest(this.conn!.agent.request(acp.methods.agent.session.setConfigOption, params as acp.SetSessionConfigOptionRequest), 'session/set_config_option');
		this.configOptions = mapConfigOptions((r as { configOptions?: unknown }).configOptions);
		this.emit({ type: 'config', options: this.configOptions });
	}

	private async kill(): Promise<void> {
		if (this.proc) {
			await terminate(this.proc, 0);
		}
	}

	async shutdown(): Promise<void> {
		this.shuttingDown = true;
		await this.cancel().catch(() => undefined);
		this.terminals?.dispose();
		this.conn?.close();
		if (this.proc) {
			await terminate(this.proc, this.backendOptions.killGraceMs ?? 2000);
		}
	}

	override dispose(): void {
		// Even when the agent itself has exited: children it left behind in its process group end too.
		if (this.proc) {
			this.shuttingDown = true;
			void terminate(this.proc, 0);
		}
		super.dispose();
	}
}

function readUsage(u: unknown): TurnUsage | undefined {
	if (typeof u !== 'object' || u === null) {
		return undefined;
	}
	const o = u as Record<string, unknown>;
	const n = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
	const usage: TurnUsage = { inputTokens: n(o.inputTokens) ?? n(o.input_tokens), outputTokens: n(o.outputTokens) ?? n(o.output_tokens) };
	return usage.inputTokens === undefined && usage.outputTokens === undefined ? undefined : usage;
}
