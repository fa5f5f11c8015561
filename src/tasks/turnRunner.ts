import * as fs from 'node:fs';
import * as path from 'node:path';
import { AgentTabsError } from '../common/errors';
import { Emitter, logListenerErrors, type Event } from '../common/event';
import { Disposable } from '../common/lifecycle';
import { errorMessage, type Logger } from '../common/log';
import { redactingLogger, StreamRedactor, type SecretRedactor } from '../common/redact';
import { PendingChangesRepo } from '../db/pendingChangesRepo';
import { SessionsRepo } from '../db/sessionsRepo';
import { StoreFailedError, type Store } from '../db/store';
import { TranscriptRepo, type TurnRow } from '../db/transcriptRepo';
import type { AgentEvent, TurnResult } from '../protocol/agentEvents';
import { shutdownAbortReason, type PromptInput, type TurnStatus } from '../protocol/turns';
import { diffSnapshots, hashFile, takeDirtySnapshot, type DirtySnapshot } from '../worktrees/dirtySnapshot';
import { acquireLease } from '../worktrees/ownership';
import { noWorktreeError, type AgentPool, type AgentPoolEvent } from '../agents/pool';
import { SilenceWatchdog, toolSilenceFactor } from './silenceWatchdog';
import { TurnRecorder } from './turnRecorder';

export interface TurnRunnerOptions {
	store: Store;
	/** The agent sessions turns run in; its redactor is this layer's too. */
	pool: AgentPool;
	logger: Logger;
	/** How often streamed text is written to the transcript. */
	flushMs?: number;
	/** Who runs these turns, written into the worktree lease every process honours ("a VS Code window"). */
	leaseOwner?: string;
	/** Records the worktree state under a private ref before and after each turn, so a chat can rewind. */
	checkpoint?: (cwd: string, name: string) => Promise<string>;
	/** Deletes a checkpoint taken for a turn that then never started. */
	dropCheckpoint?: (cwd: string, ref: string) => Promise<void>;
	/**
	 * A turn whose agent sends nothing for this long, with no tool call running and no permission waiting, is
	 * stopped (cancelled, then ended) and ends as failed, saying so. Read at each turn's start; 0 or none: never.
	 */
	silenceTimeoutMs?: number | (() => number);
}

/** An event of a chat, numbered per chat so a view can notice gaps and resync from the database. */
export interface ChatEvent {
	chatId: string;
	agent: string;
	/** The turn it belongs to; none for what an agent says between turns (idle updates, a crash notice). */
	turnId?: string;
	seq: number;
	event: AgentEvent;
}

/** How a turn ended, with where it ran. */
export interface TurnOutcome {
	turn: TurnRow;
	status: TurnStatus;
	result: TurnResult;
	cwd: string;
	sessionId: string;
}

export interface RunTurnOptions {
	/** Aborting it cancels the turn, as `cancel` does (before the agent has it, or while it runs). */
	signal?: AbortSignal;
}

/** A running turn in a folder: whether another turn overlapped it, and what other turns reported writing meanwhile. */
interface TurnMark {
	overlapped: boolean;
	/**
	 * Paths that overlapping turns reported writing through the protocol, with the file's hash right after:
	 * theirs, not this turn's, unless the file changed again after that.
	 */
	othersWrote: Map<string, Promise<string | null>>;
}

/** A turn asked for; `cancelled` is read before the prompt goes to the agent. */
interface Ticket {
	chatId: string;
	agent: string;
	cancelled: boolean;
	/** Cancelled because Agent Tabs is shutting down: the turn ends `interrupted` (retryable), not `cancelled`. */
	interrupted?: boolean;
	/** Stopped because its agent went silent (`silenceTimeoutMs`), before anyone cancelled it. */
	silenced?: boolean;
}

/** "10 minutes", "1.5 minutes", "30 seconds". */
function describeDuration(ms: number): string {
	if (ms >= 60_000) {
		const minutes = Math.round(ms / 6_000) / 10;
		return `${minutes} minute${minutes === 1 ? '' : 's'}`;
	}
	const seconds = Math.round(ms / 100) / 10;
	return `${seconds} second${seconds === 1 ? '' : 's'}`;
}

/** A tool call's title in a sentence: one line, at most 80 characters. */
function truncateTitle(title: string): string {
	const line = title.replace(/\s+/g, ' ').trim();
	return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

const turnKey = (chatId: string, agent: string): string => `${chatId}:${agent}`;

/**
 * The turn: one prompt of a chat to its agent, from the transcript row to the turn's end on disk. It takes
 * the agent session from the pool, a lease on the worktree, a git checkpoint and a picture of the worktree
 * before and after; it streams, redacts and records every event (`TurnRecorder`), attributes every edit
 * (reported by the protocol, or seen on disk when the agent wrote itself) into pending changes, and numbers
 * each chat's events, the pool's included, for the views.
 */
export class TurnRunner extends Disposable {
	private readonly _onDidEvent = this._register(new Emitter<ChatEvent>((e) => logListenerErrors(this.options.logger, '[TurnRunner][onDidEvent]')(e)));
	/** Every event of every chat, redacted and numbered per chat. */
	readonly onDidEvent: Event<ChatEvent> = this._onDidEvent.event;

	/** Turns asked for, by `chatId:agent`, from the moment `runTurn` is called. */
	private readonly tickets = new Map<string, Ticket>();
	private readonly seqByChat = new Map<string, number>();
	/** Turns not yet ended: shutdown lets them write their end before the store closes. */
	private readonly turnsInFlight = new Set<Promise<TurnOutcome>>();
	/** Running turns by working folder, to tell when only the watcher saw a write and two turns overlapped. */
	private readonly activeByCwd = new Map<string, Set<TurnMark>>();
	private readonly sessions: SessionsRepo;
	private readonly transcript: TranscriptRepo;
	private readonly pending: PendingChangesRepo;
	private readonly pool: AgentPool;
	private readonly redactor: SecretRedactor;
	private readonly logger: Logger;
	private closing = false;

	constructor(private readonly options: TurnRunnerOptions) {
		super();
		this.pool = options.pool;
		this.redactor = options.pool.redactor;
		this.logger = redactingLogger(options.logger, this.redactor);
		this.sessions = new SessionsRepo(options.store);
		this.transcript = new TranscriptRepo(options.store);
		this.pending = new PendingChangesRepo(options.store);
		this._register(this.pool.onDidEvent((e: AgentPoolEvent) => this.fire(e.chatId, e.agent, e.event)));
	}

	/** Whether the chat's agent has a turn asked for or running (`AgentPool.isRunning`: the agent has it). */
	isRunning(chatId: string, agent: string): boolean {
		return this.tickets.has(turnKey(chatId, agent));
	}

	/** Sends an event that is already redacted, with the chat's next number. */
	private fire(chatId: string, agent: string, event: AgentEvent, turnId?: string): void {
		const seq = (this.seqByChat.get(chatId) ?? 0) + 1;
		this.seqByChat.set(chatId, seq);
		this._onDidEvent.fire({ chatId, agent, turnId, seq, event });
	}

	/**
	 * Runs one turn: starts the agent session if needed, streams and persists its events, attributes every
	 * edit, takes the checkpoints, and closes the turn. Resolves once the turn's end is on disk; rejects only
	 * when the turn never started (unknown agent or chat, no worktree, the agent could not start, busy).
	 */
	async runTurn(chatId: string, agent: string, input: PromptInput, options: RunTurnOptions = {}): Promise<TurnOutcome> {
		if (this.closing || this.isDisposed) {
			throw new AgentTabsError('pool/closed', 'Agent Tabs is shutting down.');
		}
		const key = turnKey(chatId, agent);
		if (this.tickets.has(key)) {
			throw new AgentTabsError('agent/busy', 'This chat is already running a turn; wait for it or cancel it.');
		}
		// Registered before the first await, so a cancel that comes while the agent is still starting counts.
		const ticket: Ticket = { chatId, agent, cancelled: options.signal?.aborted ?? false };
		this.tickets.set(key, ticket);
		const onAbort = (): void => {
			ticket.interrupted ||= options.signal?.reason === shutdownAbortReason;
			void this.cancel(chatId, agent).catch(() => undefined);
		};
		options.signal?.addEventListener('abort', onAbort, { once: true });
		const turn = this.run(chatId, agent, input, ticket);
		this.turnsInFlight.add(turn);
		try {
			return await turn;
		} finally {
			options.signal?.removeEventListener('abort', onAbort);
			this.turnsInFlight.delete(turn);
			this.tickets.delete(key);
		}
	}

	/** Cancels the chat's turn: before the agent has it (it never starts) or while it runs (session/cancel). */
	async cancel(chatId: string, agent: string): Promise<void> {
		const ticket = this.tickets.get(turnKey(chatId, agent));
		if (ticket) {
			ticket.cancelled = true;
		}
		await this.pool.cancel(chatId, agent);
	}

	/**
	 * Refuses new turns, cancels the running ones and waits (not forever) for them to record their end
	 * (checkpoint, transcript, status): the pool shuts down after this, and the store after the pool.
	 */
	async shutdown(): Promise<void> {
		this.closing = true;
		for (const ticket of this.tickets.values()) {
			ticket.cancelled = true;
			ticket.interrupted = true;
		}
		await Promise.allSettled([...this.tickets.values()].map((t) => this.pool.cancel(t.chatId, t.agent)));
		let timer: NodeJS.Timeout | undefined;
		await Promise.race([Promise.allSettled([...this.turnsInFlight]), new Promise((resolve) => (timer = setTimeout(resolve, 10_000)))]);
		clearTimeout(timer);
		this.dispose();
	}

	/** Registers a turn as running in `cwd` (so overlapping turns see each other); returns the folder. */
	private markRunning(cwd: string, mark: TurnMark): string {
		const active = this.activeByCwd.get(cwd) ?? new Set();
		this.activeByCwd.set(cwd, active);
		for (const other of active) {
			other.overlapped = true;
			mark.overlapped = true;
		}
		active.add(mark);
		return cwd;
	}

	private unmarkRunning(cwd: string | undefined, mark: TurnMark): void {
		const active = cwd === undefined ? undefined : this.activeByCwd.get(cwd);
		if (active?.delete(mark) && active.size === 0) {
			this.activeByCwd.delete(cwd!);
		}
	}

	private async run(chatId: string, agent: string, input: PromptInput, ticket: Ticket): Promise<TurnOutcome> {
		// The "before" picture of the worktree is taken while the agent starts, not after: starting takes far
		// longer than `git status`, and the agent cannot write anything before it has the prompt.
		const early = this.sessions.workingDirectory(chatId);
		// The turn counts as running in its folder from its "before" picture on: what another turn reports
		// writing from then on is that turn's, even while this one's agent is still starting.
		const mark: TurnMark = { overlapped: false, othersWrote: new Map() };
		let markedIn = early?.cwd ? this.markRunning(early.cwd, mark) : undefined;
		const beforePromise = early?.cwd ? this.snapshot(early.cwd) : Promise.resolve(undefined);
		beforePromise.catch(() => undefined);
		const checkpointName = `${chatId}/${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
		const checkpointBefore = early?.cwd ? this.takeCheckpoint(early.cwd, `${checkpointName}-before`) : Promise.resolve(undefined);
		// A turn that never starts leaves no git running after it rejects, and no checkpoint no turn records.
		const abandon = async (): Promise<void> => {
			await beforePromise;
			const ref = await checkpointBefore;
			if (ref && early?.cwd) {
				await this.options.dropCheckpoint?.(early.cwd, ref).catch((e: unknown) => this.logger.debug(`[TurnRunner][checkpoint] ${ref}: ${errorMessage(e)}`));
			}
		};
		let session: Awaited<ReturnType<AgentPool['beginTurn']>>;
		try {
			session = await this.pool.beginTurn(chatId, agent);
		} catch (e) {
			this.unmarkRunning(markedIn, mark);
			await abandon();
			throw e;
		}
		const agentId = session.definition.id;
		const wd = this.sessions.workingDirectory(chatId);
		const cwd = wd?.cwd;
		if (!wd || !cwd || !fs.existsSync(cwd)) {
			// The worktree was archived or went missing after the agent started: never follow it elsewhere.
			this.unmarkRunning(markedIn, mark);
			session.release(undefined);
			await this.pool.end(chatId, agentId);
			await abandon();
			throw !wd
				? new AgentTabsError('chat/unknown', `There is no chat ${chatId}.`)
				: !cwd
					? noWorktreeError(wd)
					: new AgentTabsError('session/noWorktree', `The worktree folder ${cwd} of session ${wd.sessionId} is gone (removed by another window, the command line or by hand). Restore the session first; agents never work anywhere else.`);
		}
		const releaseLease = this.lease(cwd, `${session.definition.label} in chat ${chatId}`);
		const tag = `[TurnRunner][${chatId}:${agentId}]`;
		let turn: TurnRow;
		try {
			turn = this.transcript.startTurn({ chatId, agent: agentId, prompt: this.redactor.redact(input.text) });
		} catch (e) {
			this.unmarkRunning(markedIn, mark);
			releaseLease();
			session.release(undefined);
			await abandon();
			throw e;
		}
		const recorder = new TurnRecorder(this.transcript, turn, this.options.flushMs ?? 100, (e) => {
			this.logger.error(`${tag} could not save turn ${turn.id}: ${errorMessage(e)}`);
			if (e instanceof StoreFailedError) {
				// Nothing more of this turn can be saved: stop the agent rather than let it work unrecorded.
				void this.cancel(chatId, agentId).catch(() => undefined);
			}
		});
		if (markedIn !== cwd) {
			// The session's folder changed while the agent started (rare): the picture is retaken there below.
			this.unmarkRunning(markedIn, mark);
			markedIn = this.markRunning(cwd, mark);
		}
		const active = this.activeByCwd.get(cwd)!;
		let watchdog: SilenceWatchdog | undefined;
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
		// A compaction's summary streams too, in chunks the transcript joins by compaction (other events between).
		const summaries = new Map<string, StreamRedactor>();
		const releaseSummary = (compactionId: string): void => {
			const rest = summaries.get(compactionId)?.flush();
			summaries.delete(compactionId);
			if (rest) {
				deliver({ type: 'compaction', compactionId: this.redactor.redact(compactionId), summaryChunk: rest });
			}
		};
		const onEvent = (raw: AgentEvent): void => {
			watchdog?.observe(raw);
			if (raw.type === 'compaction') {
				if (raw.summaryChunk !== undefined) {
					let summary = summaries.get(raw.compactionId);
					if (!summary) {
						summary = new StreamRedactor(this.redactor);
						summaries.set(raw.compactionId, summary);
					}
					const chunk = summary.push(raw.summaryChunk);
					if (chunk) {
						deliver({ ...this.redactor.redactDeep(raw), summaryChunk: chunk });
					}
					return;
				}
				releaseSummary(raw.compactionId);
			}
			if (raw.type === 'text' || raw.type === 'reasoning') {
				let stream = streams.get(raw.type);
				if (stream && stream.messageId !== raw.messageId) {
					// A new message: the old one keeps what it held unless that begins a secret this chunk goes on with.
					const rest = stream.redactor.handOver(raw.text);
					if (rest) {
						deliver({ type: raw.type, text: rest, ...(stream.messageId !== undefined ? { messageId: stream.messageId } : {}) });
					}
					stream.messageId = raw.messageId;
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
							other.othersWrote.set(event.path, hashFile(path.join(cwd, event.path)));
						}
					}
					this.pending.record({ sessionId: wd.sessionId, worktreeId: wd.worktreeId, chatId, agent: agentId, turnId: turn.id, path: event.path, kind: event.kind, source: 'protocol' });
				}
			} catch (e) {
				this.logger.error(`${tag} could not save an event: ${errorMessage(e)}`);
			}
			this.fire(chatId, agentId, event, turn.id);
		};
		let result: TurnResult = { stopReason: 'error', backendSessionId: session.handle.backendSessionId };
		// Everything between the turn's start and its end is in this try: whatever throws, the turn is ended
		// (as failed) below, never left `running`.
		try {
			session.recordRunning();
			if (session.contextResetNotice) {
				onEvent({ type: 'notice', severity: 'warning', title: session.contextResetNotice });
			}
			const before = early?.cwd === cwd ? await beforePromise : await this.snapshot(cwd);
			const checkpointRef = early?.cwd === cwd ? await checkpointBefore : undefined;
			if (checkpointRef) {
				this.transcript.setCheckpoints(turn.id, checkpointRef, null);
			}
			try {
				// The turn, its task's claim and its checkpoint are on disk before the agent has the prompt: after a
				// kill the next start finds the turn interrupted (its edits attributed), and never runs it again.
				await this.options.store.durable();
				// A cancel that came while the turn was being set up ends it before the agent sees it.
				if (ticket.cancelled || session.cancelled) {
					result = { stopReason: 'cancelled', backendSessionId: session.handle.backendSessionId };
				} else {
					const silence = this.watchSilence(chatId, agentId, tag, ticket);
					watchdog = silence;
					result = await session.handle.prompt(input, { turnId: turn.id, onEvent, recorded: () => this.options.store.durable(), ...(silence ? { onClientRequest: () => silence.requestStarted() } : {}) });
				}
			} catch (e) {
				result = { stopReason: 'error', backendSessionId: session.handle.backendSessionId, error: errorMessage(e) };
			}
			watchdog?.dispose();
			// Stopped for its silence: the turn failed, and says why, unless the agent answered all the same or a
			// person had cancelled first. A shutdown during the stop does not make it a retryable interruption.
			if (watchdog && ticket.silenced && (result.stopReason === 'cancelled' || result.stopReason === 'error')) {
				result = {
					...result,
					stopReason: 'error',
					error:
						watchdog.stalledTool !== undefined
							? `${session.definition.label} sent nothing for ${describeDuration(watchdog.toolTimeoutMs)} while its tool call "${truncateTitle(watchdog.stalledTool)}" ran, so the turn was stopped as hung (a tool call may run ${toolSilenceFactor} times the silence limit with no word from the agent; the limit is the setting agentTabs.agents.silenceMinutes, or --silence-minutes).${result.error ? ` ${result.error}` : ''}`
							: `${session.definition.label} sent nothing for ${describeDuration(watchdog.timeoutMs)} with no tool running, so the turn was stopped (the limit is the setting agentTabs.agents.silenceMinutes, or --silence-minutes).${result.error ? ` ${result.error}` : ''}`,
				};
			}
			if (ticket.interrupted && result.stopReason === 'cancelled') {
				result = { ...result, stopReason: 'interrupted', error: 'Agent Tabs shut down while this turn was running; Retry runs it again.' };
			}
			release('text');
			release('reasoning');
			for (const compactionId of [...summaries.keys()]) {
				releaseSummary(compactionId);
			}
			const after = before ? await this.snapshot(cwd) : undefined;
			if (before && after) {
				for (const change of diffSnapshots(cwd, before, after)) {
					// A file name can hold a secret too; protocol paths were redacted the same way before they were kept.
					const changedPath = this.redactor.redact(change.path);
					if (protocolPaths.has(changedPath)) {
						continue;
					}
					// Another turn reported writing it: theirs if the file is as they left it; changed again since,
					// this turn may have written it too, so it is recorded here as well, shared.
					const theirs = mark.othersWrote.get(changedPath);
					if (theirs && (await theirs) === (after.get(change.path)?.hash ?? null)) {
						continue;
					}
					onEvent({ type: 'file_edit', path: changedPath, kind: change.kind, source: 'watcher' });
					this.pending.record({ sessionId: wd.sessionId, worktreeId: wd.worktreeId, chatId, agent: agentId, turnId: turn.id, path: changedPath, kind: change.kind, source: 'watcher', shared: mark.overlapped || theirs !== undefined });
				}
			}
		} catch (e) {
			this.logger.error(`${tag} turn ${turn.id} failed: ${errorMessage(e)}`);
			result = { ...result, stopReason: 'error', error: `Agent Tabs failed during this turn: ${errorMessage(e)}` };
		} finally {
			this.unmarkRunning(cwd, mark);
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
		session.release(result.backendSessionId);
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
		this.fire(chatId, agentId, this.redactor.redactDeep({ type: 'notice', severity: status === 'error' ? 'error' : 'info', title: `turn ${status}` }), turn.id);
		const recorded = this.transcript.getTurn(turn.id) ?? { ...turn, status };
		return { turn: saved ? recorded : { ...recorded, status, error: result.error ?? null }, status, result, cwd, sessionId: wd.sessionId };
	}

	/** Stops the turn once its agent has gone silent (`silenceTimeoutMs`); none when that is off. */
	private watchSilence(chatId: string, agentId: string, tag: string, ticket: Ticket): SilenceWatchdog | undefined {
		const setting = this.options.silenceTimeoutMs;
		const timeoutMs = typeof setting === 'function' ? setting() : (setting ?? 0);
		if (!(timeoutMs > 0)) {
			return undefined;
		}
		const watchdog = new SilenceWatchdog(timeoutMs, () => {
			if (ticket.cancelled) {
				return;
			}
			ticket.silenced = true;
			this.logger.warn(
				watchdog.stalledTool !== undefined
					? `${tag} the agent sent nothing for ${watchdog.toolTimeoutMs} ms while its tool call "${truncateTitle(watchdog.stalledTool)}" ran; stopping the turn as hung`
					: `${tag} the agent sent nothing for ${timeoutMs} ms with no tool running; stopping the turn`,
			);
			void this.pool.cancel(chatId, agentId).catch(() => undefined);
		});
		return watchdog;
	}

	/** A lease on the worktree for this turn, so no process removes it while the agent works there. */
	private lease(cwd: string, what: string): () => void {
		try {
			return acquireLease(cwd, { owner: this.options.leaseOwner ?? `process ${process.pid}`, what });
		} catch (e) {
			this.logger.warn(`[TurnRunner][lease] ${cwd}: ${errorMessage(e)}; other processes cannot see that an agent works there`);
			return () => undefined;
		}
	}

	private async snapshot(cwd: string): Promise<DirtySnapshot | undefined> {
		try {
			return await takeDirtySnapshot(cwd);
		} catch (e) {
			this.logger.debug(`[TurnRunner][snapshot] ${cwd}: ${errorMessage(e)} (edits an agent writes itself cannot be seen here)`);
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
			// A warning: without the checkpoint the turn offers no rewind, and git's reason is what the user can act on.
			this.logger.warn(`[TurnRunner][checkpoint] could not take checkpoint ${name} in ${cwd}: ${errorMessage(e)}`);
			return undefined;
		}
	}
}
