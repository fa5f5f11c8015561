import { newId } from '../common/ids';
import type { Store } from './store';

export type ChangeKind = 'add' | 'modify' | 'delete' | 'rename';
export type ChangeSource = 'protocol' | 'watcher' | 'imported';

export interface PendingChangeRow {
	id: string;
	session_id: string | null;
	worktree_id: string | null;
	chat_id: string | null;
	agent: string;
	turn_id: string | null;
	path: string;
	old_path: string | null;
	kind: ChangeKind;
	status: 'pending' | 'accepted' | 'rejected';
	shared: number;
	source: ChangeSource;
	created_at: number;
	updated_at: number;
}

/** Edits agents made, attributed to chat, agent and turn, waiting for review. */
export class PendingChangesRepo {
	constructor(
		private readonly store: Store,
		private readonly now: () => number = Date.now,
	) {}

	/**
	 * Records an edit. One row per turn and path: a second edit of the same file in the same turn updates
	 * the row (a file added then modified in one turn stays an addition).
	 */
	record(input: { sessionId: string | null; worktreeId: string | null; chatId: string | null; agent: string; turnId: string | null; path: string; kind: ChangeKind; source: ChangeSource; shared?: boolean }): string {
		const t = this.now();
		return this.store.write((tx) => {
			const existing = tx.get<{ id: string; kind: ChangeKind }>("SELECT id, kind FROM pending_changes WHERE turn_id IS ? AND path = ? AND status = 'pending'", [input.turnId, input.path]);
			if (existing) {
				const kind = existing.kind === 'add' && input.kind === 'modify' ? 'add' : input.kind;
				tx.run('UPDATE pending_changes SET kind = ?, updated_at = ? WHERE id = ?', [kind, t, existing.id]);
				return existing.id;
			}
			const id = newId('chg');
			tx.run(
				`INSERT INTO pending_changes (id, session_id, worktree_id, chat_id, agent, turn_id, path, kind, status, shared, source, created_at, updated_at)
				 VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)`,
				[id, input.sessionId, input.worktreeId, input.chatId, input.agent, input.turnId, input.path, input.kind, input.shared ? 1 : 0, input.source, t, t],
			);
			return id;
		});
	}

	listForSession(sessionId: string): PendingChangeRow[] {
		return this.store.all<PendingChangeRow>('SELECT * FROM pending_changes WHERE session_id = ? ORDER BY created_at, path', [sessionId]);
	}

	listForChat(chatId: string): PendingChangeRow[] {
		return this.store.all<PendingChangeRow>('SELECT * FROM pending_changes WHERE chat_id = ? ORDER BY created_at, path', [chatId]);
	}
}
