import type { AgentEvent, TurnResult } from '../protocol/agentEvents';
import type { TurnStatus } from '../protocol/turns';
import { newId } from '../common/ids';
import { errorMessage } from '../common/log';
import type { MessageKind, TranscriptRepo, TurnRow } from '../db/transcriptRepo';

/** Streamed text beyond this many characters continues in a new message row (marked `continued`). */
const maxMessageChars = 16 * 1024;
/**
 * Streamed text this long waiting for the timer is written at once (in its own macrotask) instead: a fast
 * stream then flushes about one full row at a time, and no single flush holds the host's event loop long.
 */
const flushSoonChars = maxMessageChars;

/**
 * Stop reasons that end a turn normally in the protocol's eyes but leave the work unfinished: said in a
 * warning at the turn's end, or the turn looks like any finished one. The tab says it in its own (translated)
 * words by `stopReason`; this English text is for everything else that reads the transcript.
 */
const stopReasonNotices: Partial<Record<TurnResult['stopReason'], string>> = {
	max_tokens: "The reply was cut off: the model reached its output limit. Ask the agent to continue if you need the rest.",
	max_turn_requests: 'The agent stopped: it reached its limit of model requests for one message. Send another message to let it go on.',
	refusal: 'The agent refused this message. It is not in the agent\'s context, so the agent will not remember it; rephrase it and send it again.',
};

interface OpenMessage {
	id: string;
	seq: number;
	kind: MessageKind;
	toolCallId: string | null;
	content: Record<string, unknown>;
	createdAt: number;
	dirty: boolean;
	key?: string;
}

/**
 * Folds a turn's events into message rows: streamed chunks append to one text message, tool updates merge
 * into their tool call, a plan replaces the plan. Streamed text is written at most every `flushMs` (one
 * small transaction, not one row per token); anything else is written at once. `finish` writes the rest.
 *
 * A write that fails in the deferred flush (on a timer, where nobody could catch it) is kept as `failure`
 * and reported to `onSaveFailure`; the messages stay dirty, so a later flush tries them again, and `finish`
 * ends the turn as failed.
 */
export class TurnRecorder {
	private readonly messages: OpenMessage[] = [];
	private readonly byKey = new Map<string, OpenMessage>();
	private nextSeq = 1;
	private timer: NodeJS.Timeout | undefined;
	private soon: NodeJS.Immediate | undefined;
	/** Streamed characters recorded since the last flush. */
	private unflushedChars = 0;
	private finished = false;
	private _failure: unknown;

	constructor(
		private readonly repo: TranscriptRepo,
		readonly turn: TurnRow,
		private readonly flushMs = 100,
		private readonly onSaveFailure: (error: unknown) => void = () => undefined,
	) {}

	/** The first write of this turn that failed, if any. */
	get failure(): unknown {
		return this._failure;
	}

	private failed(error: unknown): void {
		const first = this._failure === undefined;
		this._failure ??= error;
		if (first) {
			this.onSaveFailure(error);
		}
	}

	private open(kind: MessageKind, content: Record<string, unknown>, key?: string, toolCallId: string | null = null): OpenMessage {
		const m: OpenMessage = { id: newId('msg'), seq: this.nextSeq++, kind, toolCallId, content, createdAt: this.repo.now(), dirty: true, key };
		this.messages.push(m);
		if (key) {
			this.byKey.set(key, m);
		}
		return m;
	}

	record(event: AgentEvent): void {
		if (this.finished) {
			return;
		}
		let urgent = true;
		switch (event.type) {
			case 'text':
			case 'reasoning': {
				const last = this.messages[this.messages.length - 1];
				const kind = event.type;
				const sameMessage = !!last && last.kind === kind && (last.content.messageId ?? null) === (event.messageId ?? null);
				if (sameMessage && String(last.content.text).length < maxMessageChars) {
					last.content.text = `${String(last.content.text)}${event.text}`;
					last.dirty = true;
				} else {
					// A long stream continues in a new row, so each flush writes a bounded amount, not the whole text.
					this.open(kind, { text: event.text, ...(event.messageId ? { messageId: event.messageId } : {}), ...(sameMessage ? { continued: true } : {}) });
				}
				this.unflushedChars += event.text.length;
				urgent = false;
				break;
			}
			case 'user_text':
				break;
			case 'tool_call': {
				const existing = this.byKey.get(`tool:${event.toolCallId}`);
				const { type: _t, ...fields } = event;
				if (existing) {
					Object.assign(existing.content, fields);
					existing.dirty = true;
				} else {
					this.open('tool_call', fields, `tool:${event.toolCallId}`, event.toolCallId);
				}
				break;
			}
			case 'tool_update': {
				const { type: _t, ...fields } = event;
				const existing = this.byKey.get(`tool:${event.toolCallId}`);
				if (existing) {
					for (const [k, v] of Object.entries(fields)) {
						if (v !== undefined) {
							existing.content[k] = v;
						}
					}
					existing.dirty = true;
				} else {
					this.open('tool_call', { title: 'Tool call', ...fields }, `tool:${event.toolCallId}`, event.toolCallId);
				}
				break;
			}
			case 'plan':
				this.replace('plan', 'plan', { entries: event.entries });
				break;
			case 'usage':
				this.replace('usage', 'usage', { ...(this.byKey.get('usage')?.content ?? {}), ...stripType(event) });
				urgent = false;
				break;
			case 'commands':
			case 'mode':
			case 'model':
			case 'config':
			case 'session_info':
				this.replace(`state:${event.type}`, 'notice', { state: event.type, ...stripType(event) });
				urgent = false;
				break;
			case 'permission_request':
				this.open('permission', stripType(event), `perm:${event.requestId}`, event.toolCallId ?? null);
				break;
			case 'permission_decision': {
				const m = this.byKey.get(`perm:${event.requestId}`) ?? this.open('permission', {}, `perm:${event.requestId}`);
				m.content.decision = stripType(event);
				m.dirty = true;
				break;
			}
			case 'file_edit':
				this.open('file_edit', stripType(event));
				break;
			case 'notice':
				this.open('notice', stripType(event));
				break;
			case 'compaction': {
				// One notice per compaction, updated in place: its summary streams in chunks, not a row each.
				const key = `compaction:${event.compactionId}`;
				const m = this.byKey.get(key) ?? this.open('notice', { compactionId: event.compactionId, status: 'in_progress', summary: '' }, key);
				const c = m.content;
				if (event.status !== undefined) {
					c.status = event.status;
				}
				if (event.summary !== undefined) {
					c.summary = (event.summary ?? '').slice(0, maxMessageChars);
				}
				if (event.summaryChunk !== undefined && String(c.summary).length < maxMessageChars) {
					c.summary = `${String(c.summary)}${event.summaryChunk}`;
				}
				if (event.error !== undefined) {
					c.error = event.error ?? undefined;
				}
				Object.assign(c, compactionNotice(String(c.status), String(c.summary), typeof c.error === 'string' ? c.error : undefined));
				m.dirty = true;
				// Summary chunks stream like text (written on the timer); a change of status is written at once.
				urgent = event.summaryChunk === undefined;
				break;
			}
			case 'error':
				this.open('error', stripType(event));
				break;
			case 'raw':
				this.open('raw', { method: event.method, payload: event.payload });
				break;
		}
		if (urgent) {
			this.flush();
		} else if (this.unflushedChars >= flushSoonChars) {
			this.soon ??= setImmediate(() => this.deferredFlush());
		} else {
			this.timer ??= setTimeout(() => this.deferredFlush(), this.flushMs);
		}
	}

	/** A flush nobody waits for (timer or immediate): a failure is kept, not thrown. */
	private deferredFlush(): void {
		try {
			this.flush();
		} catch (e) {
			this.failed(e);
		}
	}

	private replace(key: string, kind: MessageKind, content: Record<string, unknown>): void {
		const existing = this.byKey.get(key);
		if (existing) {
			existing.content = content;
			existing.dirty = true;
		} else {
			this.open(kind, content, key);
		}
	}

	/** Writes every changed message in one transaction. */
	flush(): void {
		if (this.timer) {
			clearTimeout(this.timer);
			this.timer = undefined;
		}
		if (this.soon) {
			clearImmediate(this.soon);
			this.soon = undefined;
		}
		this.unflushedChars = 0;
		const dirty = this.messages.filter((m) => m.dirty);
		if (dirty.length === 0) {
			return;
		}
		this.repo.writeMessages(
			this.turn.id,
			dirty.map((m) => ({ id: m.id, seq: m.seq, kind: m.kind, toolCallId: m.toolCallId, content: JSON.stringify(m.content), createdAt: m.createdAt })),
		);
		for (const m of dirty) {
			m.dirty = false;
		}
	}

	/**
	 * Writes the rest and closes the turn with its outcome. A turn part of whose transcript could not be
	 * saved ends as `error`, whatever the agent said. The closing write is attempted even when the messages
	 * cannot be written; only when that fails too (the store is broken) does it throw, and the turn stays
	 * `running` until the next start marks it interrupted.
	 */
	finish(result: TurnResult): TurnStatus {
		if (this.finished) {
			return 'done';
		}
		if (result.error) {
			try {
				this.record({ type: 'error', message: result.error, code: `turn/${result.stopReason}` });
			} catch (e) {
				this.failed(e);
			}
		}
		// A tool call the turn left unfinished (cancelled, cut off, failed) is not running any more: without this it
		// would show as running for good. One a finished turn left open stays as the agent said.
		if (result.stopReason === 'cancelled' || result.stopReason === 'interrupted' || result.stopReason === 'error') {
			for (const [key, m] of this.byKey) {
				const status = m.content.status;
				if (key.startsWith('tool:') && (status === undefined || status === 'pending' || status === 'in_progress')) {
					m.content.status = 'failed';
					m.content.stoppedWithTurn = result.stopReason;
					m.dirty = true;
				} else if (key.startsWith('compaction:') && status === 'in_progress') {
					// A compaction under way stopped with the turn: it would say "is compacting" for good.
					Object.assign(m.content, { status: 'cancelled' }, compactionNotice('cancelled', String(m.content.summary), undefined));
					m.dirty = true;
				}
			}
		}
		const stopped = stopReasonNotices[result.stopReason];
		if (stopped) {
			this.open('notice', { severity: 'warning', title: stopped, stopReason: result.stopReason });
		}
		try {
			this.flush();
		} catch (e) {
			this.failed(e);
		}
		this.finished = true;
		const status: TurnStatus =
			this._failure !== undefined
				? 'error'
				: result.stopReason === 'cancelled'
					? 'cancelled'
					: result.stopReason === 'interrupted'
						? 'interrupted'
						: result.stopReason === 'error'
							? 'error'
							: 'done';
		const error = this._failure !== undefined ? [result.error, `Part of this turn could not be saved: ${errorMessage(this._failure)}`].filter(Boolean).join(' ') : result.error;
		this.repo.endTurn(this.turn.id, {
			status,
			stopReason: result.stopReason,
			inputTokens: result.usage?.inputTokens,
			outputTokens: result.usage?.outputTokens,
			costUsd: result.usage?.costUsd,
			error,
		});
		return status;
	}
}

/** What a compaction's notice says (severity, title, description), from its status, summary and error. */
function compactionNotice(status: string, summary: string, error: string | undefined): { severity: 'info' | 'warning'; title: string; description: string | undefined } {
	const title =
		status === 'completed'
			? 'The agent compacted its context: it goes on from a summary of the conversation so far.'
			: status === 'failed'
				? 'The agent could not compact its context.'
				: status === 'cancelled'
					? 'The agent stopped compacting its context.'
					: 'The agent is compacting its context (summarising the conversation so far).';
	const description = [error, summary.trim() ? summary : undefined].filter(Boolean).join('\n\n') || undefined;
	return { severity: status === 'failed' ? 'warning' : 'info', title, description };
}

function stripType<T extends { type: string }>(event: T): Record<string, unknown> {
	const { type: _type, ...rest } = event;
	return rest;
}
