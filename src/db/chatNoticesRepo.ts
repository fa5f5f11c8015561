import { newId } from '../common/ids';
import type { Store } from './store';

/** A chat-level row as stored (m0007): said after `after_turns` turns, numbered in the chat's sequence. */
export interface ChatNoticeRow {
	id: string;
	chat_id: string;
	after_turns: number;
	kind: 'notice' | 'error';
	/** The row as the tab shows it, without its id and place. */
	row_json: string;
	/** The task whose send failed (Retry retries it). */
	task_id: string | null;
	created_at: number;
	row_seq: number;
}

/** What a notice says: the protocol's notice or error row without its id, turn and place. */
export type ChatNoticeContent =
	| { kind: 'notice'; severity: 'info' | 'warning' | 'error'; title: string; description?: string }
	| { kind: 'error'; message: string; code?: string; retryable: boolean };

/**
 * Chat-level rows that no turn holds (a failed send, an agent that stopped between turns, a rewind), stored
 * so a reloaded tab still shows them. A trigger numbers each in its chat's sequence, like transcript rows.
 */
export class ChatNoticesRepo {
	constructor(
		private readonly store: Store,
		private readonly now: () => number = Date.now,
	) {}

	/** Stores a notice after the chat's turns so far; returns it with its number. */
	add(chatId: string, content: ChatNoticeContent, taskId?: string): ChatNoticeRow {
		const id = newId(content.kind === 'error' ? 'err' : 'note');
		return this.store.write((tx) => {
			tx.run(
				`INSERT INTO chat_notices (id, chat_id, after_turns, kind, row_json, task_id, created_at)
				 VALUES (?, ?, (SELECT count(*) FROM turns WHERE chat_id = ?), ?, ?, ?, ?)`,
				[id, chatId, chatId, content.kind, JSON.stringify(content), taskId ?? null, this.now()],
			);
			return tx.get<ChatNoticeRow>('SELECT * FROM chat_notices WHERE id = ?', [id])!;
		});
	}

	get(id: string): ChatNoticeRow | undefined {
		return this.store.get<ChatNoticeRow>('SELECT * FROM chat_notices WHERE id = ?', [id]);
	}

	/** The chat's notices, in the order they were said; only those numbered after `seq` when given. */
	list(chatId: string, seq = 0): ChatNoticeRow[] {
		return this.store.all<ChatNoticeRow>('SELECT * FROM chat_notices WHERE chat_id = ? AND row_seq > ? ORDER BY row_seq', [chatId, seq]);
	}

	/** Whether a notice was already stored for the task (a failed send is said once). */
	hasTask(taskId: string): boolean {
		return this.store.get('SELECT 1 AS found FROM chat_notices WHERE task_id = ?', [taskId]) !== undefined;
	}
}
