import type { AgentEvent, TurnResult } from '../protocol/agentEvents';
import type { TurnStatus } from '../protocol/turns';
import { newId } from '../common/ids';
import { errorMessage } from '../common/log';
import type { Store } from './store';

export type MessageKind = 'user' | 'text' | 'reasoning' | 'tool_call' | 'plan' | 'permission' | 'file_edit' | 'usage' | 'error' | 'notice' | 'raw';

export interface TurnRow {
	id: string;
	chat_id: string;
	agent: string;
	seq: number;
	prompt: string;
	status: TurnStatus;
	stop_reason: string | null;
	input_tokens: number | null;
	output_tokens: number | null;
	cost_usd: number | null;
	checkpoint_before: string | null;
	checkpoint_after: string | null;
	error: string | null;
	started_at: number;
	ended_at: number | null;
}

export interface MessageRow {
	id: string;
	turn_id: string;
	seq: number;
	kind: MessageKind;
	tool_call_id: string | null;
	content: string;
	created_at: number;
	updated_at: number;
}

/** Turns and their messages: the transcript a reloaded window shows. */
export class TranscriptRepo {
	constructor(
		readonly store: Store,
		readonly now: () => number = Date.now,
	) {}

	startTurn(input: { chatId: string; agent: string; prompt: string }): TurnRow {
		const t = this.now();
		return this.store.write((tx) => {
			const seq = (tx.get<{ n: number }>('SELECT COALESCE(max(seq), 0) + 1 AS n FROM turns WHERE chat_id = ?', [input.chatId])?.n ?? 1) as number;
			const row: TurnRow = { id: newId('turn'), chat_id: input.chatId, agent: input.agent, seq, prompt: input.prompt, status: 'running', stop_reason: null, input_tokens: null, output_tokens: null, cost_usd: null, checkpoint_before: null, checkpoint_after: null, error: null, started_at: t, ended_at: null };
			tx.run('INSERT INTO turns (id, chat_id, agent, seq, prompt, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [row.id, row.chat_id, row.agent, row.seq, row.prompt, row.status, t]);
			tx.run("INSERT INTO messages (id, turn_id, seq, kind, content, created_at, updated_at) VALUES (?, ?, 0, 'user', ?, ?, ?)", [newId('msg'), row.id, JSON.stringify({ text: input.prompt }), t, t]);
			return row;
		});
	}

	getTurn(id: string): TurnRow | undefined {
		return this.store.get<TurnRow>('SELECT * FROM turns WHERE id = ?', [id]);
	}

	listTurns(chatId: string): TurnRow[] {
		return this.store.all<TurnRow>('SELECT * FROM turns WHERE chat_id = ? ORDER BY seq', [chatId]);
	}

	listMessages(turnId: string): MessageRow[] {
		return this.store.all<MessageRow>('SELECT * FROM messages WHERE turn_id = ? ORDER BY seq', [turnId]);
	}

	setCheckpoints(turnId: string, before: string | null, after: string | null): void {
		this.store.write((tx) => {
			tx.run('UPDATE turns SET checkpoint_before = COALESCE(?, checkpoint_before), checkpoint_after = COALESCE(?, checkpoint_after) WHERE id = ?', [before, after, turnId]);
		});
	}

	/**
	 * Checkpoint refs of a chat that may be pruned: those of turns older than its last `keepLast`, and only
	 * of turns with no pending change (their checkpoint is what a reject or rewind of that change needs).
	 */
	prunableCheckpoints(chatId: string, keepLast: number): string[] {
		const rows = this.store.all<{ checkpoint_before: string | null; checkpoint_after: string | null }>(
			`SELECT checkpoint_before, checkpoint_after FROM turns t
			 WHERE chat_id = ? AND status <> 'running' AND (checkpoint_before IS NOT NULL OR checkpoint_after IS NOT NULL)
			   AND seq <= (SELECT COALESCE(max(seq), 0) FROM turns WHERE chat_id = ?) - ?
			   AND NOT EXISTS (SELECT 1 FROM pending_changes p WHERE p.turn_id = t.id AND p.status = 'pending')`,
			[chatId, chatId, Math.max(0, keepLast)],
		);
		return rows.flatMap((r) => [r.checkpoint_before, r.checkpoint_after]).filter((r): r is string => r !== null);
	}

	/** Forgets pruned checkpoint refs, so no rewind to them is offered any more. */
	forgetCheckpoints(refs: readonly string[]): void {
		if (refs.length === 0) {
			return;
		}
		this.store.write((tx) => {
			for (const ref of refs) {
				tx.run('UPDATE turns SET checkpoint_before = NULL WHERE checkpoint_before = ?', [ref]);
				tx.run('UPDATE turns SET checkpoint_after = NULL WHERE checkpoint_after = ?', [ref]);
			}
		});
	}

	/** Turns still marked running when nothing runs (after a crash of the host): they were interrupted. */
	markRunningInterrupted(reason: string): number {
		const t = this.now();
		return this.store.write((tx) => tx.run("UPDATE turns SET status = 'interrupted', stop_reason = 'interrupted', error = ?, ended_at = ? WHERE status = 'running'", [reason, t]));
	}
}

/** Streamed text beyond this many characters continues in a new message row (marked `continued`). */
const maxMessageChars = 16 * 1024;

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
			case 'error':
				this.open('error', stripType(event));
				break;
			case 'raw':
				this.open('raw', { method: event.method, payload: event.payload });
				break;
		}
		if (urgent) {
			this.flush();
		} else if (!this.timer) {
			this.timer = setTimeout(() => {
				this.timer = undefined;
				try {
					this.flush();
				} catch (e) {
					this.failed(e);
				}
			}, this.flushMs);
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
		const dirty = this.messages.filter((m) => m.dirty);
		if (dirty.length === 0) {
			return;
		}
		const t = this.repo.now();
		this.repo.store.write((tx) => {
			for (const m of dirty) {
				tx.run(
					`INSERT INTO messages (id, turn_id, seq, kind, tool_call_id, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
					 ON CONFLICT (id) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at`,
					[m.id, this.turn.id, m.seq, m.kind, m.toolCallId, JSON.stringify(m.content), m.createdAt, t],
				);
			}
		});
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
		const t = this.repo.now();
		this.repo.store.write((tx) => {
			tx.run('UPDATE turns SET status = ?, stop_reason = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, error = ?, ended_at = ? WHERE id = ?', [
				status,
				result.stopReason,
				result.usage?.inputTokens ?? null,
				result.usage?.outputTokens ?? null,
				result.usage?.costUsd ?? null,
				error ?? null,
				t,
				this.turn.id,
			]);
		});
		return status;
	}
}

function stripType<T extends { type: string }>(event: T): Record<string, unknown> {
	const { type: _type, ...rest } = event;
	return rest;
}
