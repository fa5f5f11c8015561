import { newId } from '../common/ids';
import type { Store } from './store';

export type SessionStatus = 'active' | 'archived';

export interface SessionRow {
	id: string;
	title: string;
	base_ref: string | null;
	repo_root: string | null;
	status: SessionStatus;
	created_at: number;
	updated_at: number;
}

/** A session with what the Sessions view shows next to it. */
export interface SessionSummary extends SessionRow {
	chat_count: number;
	branch: string | null;
	worktree_path: string | null;
	worktree_state: string | null;
}

export interface ChatRow {
	id: string;
	session_id: string;
	title: string;
	agent: string;
	tab_order: number;
	opened_at: number | null;
	closed_at: number | null;
	created_at: number;
	updated_at: number;
}

/** Sessions and their chats. Every method is one acknowledged write or one read. */
export class SessionsRepo {
	constructor(
		private readonly store: Store,
		private readonly now: () => number = Date.now,
	) {}

	create(input: { title: string; baseRef?: string; repoRoot?: string; id?: string; status?: SessionStatus }): SessionRow {
		const t = this.now();
		const row: SessionRow = { id: input.id ?? newId('ses'), title: oneLineTitle(input.title) || 'New session', base_ref: input.baseRef ?? null, repo_root: input.repoRoot ?? null, status: input.status ?? 'active', created_at: t, updated_at: t };
		this.store.write((tx) => {
			tx.run('INSERT INTO sessions (id, title, base_ref, repo_root, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)', [row.id, row.title, row.base_ref, row.repo_root, row.status, t, t]);
		});
		return row;
	}

	get(id: string): SessionRow | undefined {
		return this.store.get<SessionRow>('SELECT * FROM sessions WHERE id = ?', [id]);
	}

	/**
	 * Active sessions first, newest first. By creation, not last use: a row that moves when a chat is made in
	 * its session makes VS Code refresh the whole tree and forget the rows a click was on.
	 */
	list(): SessionSummary[] {
		return this.store.all<SessionSummary>(`
SELECT s.*,
	(SELECT count(*) FROM chats c WHERE c.session_id = s.id) AS chat_count,
	w.branch AS branch, w.path AS worktree_path, w.state AS worktree_state
FROM sessions s LEFT JOIN worktrees w ON w.session_id = s.id
ORDER BY s.status = 'archived', s.created_at DESC, s.id`);
	}

	setStatus(id: string, status: SessionStatus): void {
		this.store.write((tx) => {
			tx.run('UPDATE sessions SET status = ?, updated_at = ? WHERE id = ?', [status, this.now(), id]);
		});
	}

	/** The repository the session works in moved (see WorktreeService.reconcile). */
	setRepoRoot(id: string, repoRoot: string): void {
		this.store.write((tx) => {
			tx.run('UPDATE sessions SET repo_root = ?, updated_at = ? WHERE id = ?', [repoRoot, this.now(), id]);
		});
	}

	/** Deletes the session row. Its chats (and their contexts) go with it; its worktree row stays, detached. */
	delete(id: string): void {
		this.store.write((tx) => {
			tx.run('DELETE FROM sessions WHERE id = ?', [id]);
		});
	}

	createChat(input: { sessionId: string; agent: string; title?: string; id?: string }): ChatRow {
		const t = this.now();
		return this.store.write((tx) => {
			const order = tx.get<{ n: number }>('SELECT COALESCE(max(tab_order) + 1, 0) AS n FROM chats WHERE session_id = ?', [input.sessionId])?.n ?? 0;
			const row: ChatRow = {
				id: input.id ?? newId('chat'),
				session_id: input.sessionId,
				title: oneLineTitle(input.title ?? '') || input.agent,
				agent: input.agent,
				tab_order: order,
				opened_at: t,
				closed_at: null,
				created_at: t,
				updated_at: t,
			};
			tx.run('INSERT INTO chats (id, session_id, title, agent, tab_order, opened_at, closed_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', [
				row.id, row.session_id, row.title, row.agent, row.tab_order, row.opened_at, null, t, t,
			]);
			tx.run('UPDATE sessions SET updated_at = ? WHERE id = ?', [t, input.sessionId]);
			return row;
		});
	}

	getChat(id: string): ChatRow | undefined {
		return this.store.get<ChatRow>('SELECT * FROM chats WHERE id = ?', [id]);
	}

	listChats(sessionId: string): ChatRow[] {
		return this.store.all<ChatRow>('SELECT * FROM chats WHERE session_id = ? ORDER BY tab_order, created_at', [sessionId]);
	}

	/** Every chat, newest session first (for the CLI's `chats`). */
	listAllChats(): (ChatRow & { session_title: string })[] {
		return this.store.all<ChatRow & { session_title: string }>('SELECT c.*, s.title AS session_title FROM chats c JOIN sessions s ON s.id = c.session_id ORDER BY s.updated_at DESC, c.tab_order');
	}

	/**
	 * The folder a chat's agents work in: its session's worktree while it is ready, else none (`cwd` null,
	 * `worktreeState` says why). Never the repository root: an agent works only inside its worktree.
	 */
	workingDirectory(chatId: string): { sessionId: string; worktreeId: string | null; worktreeState: string | null; cwd: string | null } | undefined {
		return this.store.get<{ sessionId: string; worktreeId: string | null; worktreeState: string | null; cwd: string | null }>(
			`SELECT s.id AS sessionId, w.id AS worktreeId, w.state AS worktreeState, CASE WHEN w.state = 'ready' THEN w.path END AS cwd
			 FROM chats c JOIN sessions s ON s.id = c.session_id
			 LEFT JOIN worktrees w ON w.id = (SELECT id FROM worktrees WHERE session_id = s.id ORDER BY state = 'ready' DESC, updated_at DESC LIMIT 1)
			 WHERE c.id = ?`,
			[chatId],
		);
	}

	/** A chat's new title, applied in memory at once; durable once `store.durable()` resolves. */
	renameChat(id: string, title: string): void {
		this.store.write((tx) => tx.run('UPDATE chats SET title = ?, updated_at = ? WHERE id = ?', [oneLineTitle(title), this.now(), id]));
	}

	/** Closing a tab ends its agent contexts (a trigger removes its agent_sessions); the transcript stays. */
	closeChat(id: string): void {
		const t = this.now();
		this.store.write((tx) => {
			tx.run('UPDATE chats SET closed_at = ?, updated_at = ? WHERE id = ? AND closed_at IS NULL', [t, t, id]);
		});
	}
}

/** A title on one line: line breaks and runs of white space become one space (lists show one row per title). */
export function oneLineTitle(title: string): string {
	return title.replace(/\s+/g, ' ').trim();
}
