import type { TurnStatus } from '../protocol/turns';
import { newId } from '../common/ids';
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
	/** The chat's sequence number of this row's last change (`chats.row_seq`, numbered by triggers). */
	row_seq: number;
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
	/** The chat's sequence number of this row's last change (`chats.row_seq`, numbered by triggers). */
	row_seq: number;
}

/** One message row to write: `content` is its JSON text. */
export interface MessageWrite {
	id: string;
	seq: number;
	kind: MessageKind;
	toolCallId: string | null;
	content: string;
	createdAt: number;
}

/** How a turn ended, as its row keeps it. */
export interface TurnEnd {
	status: TurnStatus;
	stopReason: string;
	inputTokens?: number | null;
	outputTokens?: number | null;
	costUsd?: number | null;
	error?: string | null;
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
			const id = newId('turn');
			tx.run('INSERT INTO turns (id, chat_id, agent, seq, prompt, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [id, input.chatId, input.agent, seq, input.prompt, 'running', t]);
			const row = tx.get<TurnRow>('SELECT * FROM turns WHERE id = ?', [id])!;
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

	/**
	 * The messages of a chat's turns numbered from `fromTurn` up to (not with) `toTurn`, by turn, each turn's in
	 * order: one query for many turns, not one a turn. `kind` picks messages of one kind only.
	 */
	listChatMessages(chatId: string, range: { fromTurn?: number; toTurn?: number; kind?: MessageKind } = {}): Map<string, MessageRow[]> {
		const byTurn = new Map<string, MessageRow[]>();
		const sql = `SELECT m.* FROM messages m JOIN turns t ON t.id = m.turn_id WHERE t.chat_id = ? AND t.seq >= ? AND t.seq < ?${range.kind ? ' AND m.kind = ?' : ''} ORDER BY t.seq, m.seq`;
		const params = [chatId, range.fromTurn ?? 0, range.toTurn ?? Number.MAX_SAFE_INTEGER, ...(range.kind ? [range.kind] : [])];
		for (const m of this.store.all<MessageRow>(sql, params)) {
			const messages = byTurn.get(m.turn_id);
			if (messages) {
				messages.push(m);
			} else {
				byTurn.set(m.turn_id, [m]);
			}
		}
		return byTurn;
	}

	/** How many messages each turn of a chat has (turns without any are absent). */
	messageCounts(chatId: string): Map<string, number> {
		// Counted in the (turn_id, seq) index, turn by turn: no message is read, nothing is sorted.
		const rows = this.store.all<{ id: string; n: number }>('SELECT t.id, (SELECT count(*) FROM messages m WHERE m.turn_id = t.id) AS n FROM turns t WHERE t.chat_id = ?', [chatId]);
		return new Map(rows.filter((r) => r.n > 0).map((r) => [r.id, r.n]));
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

	/** Every checkpoint ref a turn records. */
	recordedCheckpoints(): Set<string> {
		const rows = this.store.all<{ ref: string }>('SELECT checkpoint_before AS ref FROM turns WHERE checkpoint_before IS NOT NULL UNION SELECT checkpoint_after FROM turns WHERE checkpoint_after IS NOT NULL');
		return new Set(rows.map((r) => r.ref));
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

	/**
	 * Writes message rows of a turn in one transaction: new ones are inserted, known ones (same id) get their
	 * new content. How events fold into rows is the turn layer's business (`tasks/turnRecorder.ts`).
	 */
	writeMessages(turnId: string, messages: readonly MessageWrite[]): void {
		if (messages.length === 0) {
			return;
		}
		const t = this.now();
		this.store.write((tx) => {
			for (const m of messages) {
				tx.run(upsertMessageSql, [m.id, turnId, m.seq, m.kind, m.toolCallId, utf8(m.content), m.createdAt, t]);
			}
		});
	}

	/** Closes a turn with its outcome. */
	endTurn(turnId: string, end: TurnEnd): void {
		const t = this.now();
		this.store.write((tx) => {
			tx.run('UPDATE turns SET status = ?, stop_reason = ?, input_tokens = ?, output_tokens = ?, cost_usd = ?, error = ?, ended_at = ? WHERE id = ?', [
				end.status,
				end.stopReason,
				end.inputTokens ?? null,
				end.outputTokens ?? null,
				end.costUsd ?? null,
				end.error ?? null,
				t,
				turnId,
			]);
		});
	}

	/** The chat's last sequence number: every row change so far is numbered at or below it. */
	chatSeq(chatId: string): number {
		return this.store.get<{ row_seq: number }>('SELECT row_seq FROM chats WHERE id = ?', [chatId])?.row_seq ?? 0;
	}

	/**
	 * The chat's turn and message rows changed (inserted or updated) after sequence number `seq`, with the
	 * turns they belong to, in transcript order. This is what a view that has seen everything up to `seq` lacks.
	 */
	changedSince(chatId: string, seq: number): { turn: TurnRow; changed: boolean; messages: MessageRow[] }[] {
		const turns = this.store.all<TurnRow>(
			`SELECT * FROM turns t WHERE chat_id = ? AND (row_seq > ? OR EXISTS (SELECT 1 FROM messages m WHERE m.turn_id = t.id AND m.row_seq > ?)) ORDER BY seq`,
			[chatId, seq, seq],
		);
		return turns.map((turn) => ({
			turn,
			changed: turn.row_seq > seq,
			messages: this.store.all<MessageRow>('SELECT * FROM messages WHERE turn_id = ? AND row_seq > ? ORDER BY seq', [turn.id, seq]),
		}));
	}

	/**
	 * Turns still marked running when nothing runs (after a crash of the host): they were interrupted. Each
	 * also gets an error message saying so, last in the turn, so a chat shows it with a Retry as it shows a
	 * turn that failed while the host lived. Returns the turns it marked.
	 */
	markRunningInterrupted(reason: string): string[] {
		const t = this.now();
		return this.store.write((tx) => {
			const cut = tx.all<{ id: string; next: number }>("SELECT t.id, COALESCE((SELECT max(seq) FROM messages WHERE turn_id = t.id), 0) + 1 AS next FROM turns t WHERE t.status = 'running'");
			for (const turn of cut) {
				tx.run("INSERT INTO messages (id, turn_id, seq, kind, content, created_at, updated_at) VALUES (?, ?, ?, 'error', ?, ?, ?)", [newId('msg'), turn.id, turn.next, JSON.stringify({ message: reason, code: 'turn/interrupted' }), t, t]);
				// Its unfinished tool calls are not running any more (as a turn that ends cancelled marks them).
				tx.run(
					`UPDATE messages SET content = json_set(content, '$.status', 'failed', '$.stoppedWithTurn', 'interrupted'), updated_at = ?
					 WHERE turn_id = ? AND kind = 'tool_call' AND json_valid(content) AND COALESCE(json_extract(content, '$.status'), 'pending') IN ('pending', 'in_progress')`,
					[t, turn.id],
				);
			}
			tx.run("UPDATE turns SET status = 'interrupted', stop_reason = 'interrupted', error = ?, ended_at = ? WHERE status = 'running'", [reason, t]);
			return cut.map((turn) => turn.id);
		});
	}
}

/**
 * How a message row is written (a streamed flush runs it per changed message; `bench/` runs it too). The
 * content goes in as UTF-8 bytes (`utf8`) and SQLite makes it text: sql.js encodes a string parameter
 * character by character in JavaScript, a third of the host's time for a streamed row's write (16 KB).
 */
export const upsertMessageSql =
	'INSERT INTO messages (id, turn_id, seq, kind, tool_call_id, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?, CAST(? AS TEXT), ?, ?) ON CONFLICT (id) DO UPDATE SET content = excluded.content, updated_at = excluded.updated_at';

/** A string as UTF-8 bytes, encoded natively (the content parameter of `upsertMessageSql`). */
export function utf8(text: string): Uint8Array {
	return Buffer.from(text, 'utf8');
}
