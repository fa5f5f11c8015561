import type { Store } from './store';

export type AgentSessionStatus = 'starting' | 'ready' | 'running' | 'idle' | 'crashed' | 'ended' | 'error';

export interface AgentSessionRow {
	chat_id: string;
	agent: string;
	backend: 'acp' | 'opencode-server' | 'claude-stream-json';
	backend_session_id: string | null;
	config_hash: string | null;
	status: AgentSessionStatus;
	worktree_id: string | null;
	session_id: string | null;
	error: string | null;
	/** The agent's mode, model and option values as it last reported them (JSON), put back when it restarts. */
	settings_json: string | null;
	created_at: number;
	updated_at: number;
}

/** The `agent_sessions` rows: one per `(chat, agent)`, recording every transition of its backend session. */
export class AgentSessionsRepo {
	constructor(
		private readonly store: Store,
		private readonly now: () => number = Date.now,
	) {}

	get(chatId: string, agent: string): AgentSessionRow | undefined {
		return this.store.get<AgentSessionRow>('SELECT * FROM agent_sessions WHERE chat_id = ? AND agent = ?', [chatId, agent]);
	}

	list(): AgentSessionRow[] {
		return this.store.all<AgentSessionRow>('SELECT * FROM agent_sessions ORDER BY updated_at DESC');
	}

	/** Creates or updates the row; fields not given keep their value. */
	upsert(row: Pick<AgentSessionRow, 'chat_id' | 'agent' | 'backend' | 'status'> & Partial<Pick<AgentSessionRow, 'backend_session_id' | 'config_hash' | 'worktree_id' | 'session_id' | 'error'>>): void {
		const t = this.now();
		this.store.write((tx) => {
			tx.run(
				`INSERT INTO agent_sessions (chat_id, agent, backend, backend_session_id, config_hash, status, worktree_id, session_id, error, created_at, updated_at)
				 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
				 ON CONFLICT (chat_id, agent) DO UPDATE SET
					backend = excluded.backend,
					backend_session_id = COALESCE(excluded.backend_session_id, agent_sessions.backend_session_id),
					config_hash = COALESCE(excluded.config_hash, agent_sessions.config_hash),
					status = excluded.status,
					worktree_id = COALESCE(excluded.worktree_id, agent_sessions.worktree_id),
					session_id = COALESCE(excluded.session_id, agent_sessions.session_id),
					error = excluded.error,
					updated_at = excluded.updated_at`,
				[row.chat_id, row.agent, row.backend, row.backend_session_id ?? null, row.config_hash ?? null, row.status, row.worktree_id ?? null, row.session_id ?? null, row.error ?? null, t, t],
			);
		});
	}

	setStatus(chatId: string, agent: string, status: AgentSessionStatus, error: string | null = null): void {
		this.store.write((tx) => {
			tx.run('UPDATE agent_sessions SET status = ?, error = ?, updated_at = ? WHERE chat_id = ? AND agent = ?', [status, error, this.now(), chatId, agent]);
		});
	}

	/** Forgets the backend session and its settings (a changed configuration starts a fresh one, with its defaults). */
	resetBackendSession(chatId: string, agent: string, configHash: string): void {
		this.store.write((tx) => {
			tx.run("UPDATE agent_sessions SET backend_session_id = NULL, config_hash = ?, settings_json = NULL, status = 'ended', updated_at = ? WHERE chat_id = ? AND agent = ?", [configHash, this.now(), chatId, agent]);
		});
	}

	/** Records the agent's current settings (JSON), to put back when it restarts. */
	setSettings(chatId: string, agent: string, settingsJson: string): void {
		this.store.write((tx) => {
			tx.run('UPDATE agent_sessions SET settings_json = ?, updated_at = ? WHERE chat_id = ? AND agent = ?', [settingsJson, this.now(), chatId, agent]);
		});
	}

	/** On start-up nothing is running any more: live states become `idle` (resumable). */
	markAllStopped(): number {
		return this.store.write((tx) => tx.run("UPDATE agent_sessions SET status = 'idle', updated_at = ? WHERE status IN ('starting', 'ready', 'running')", [this.now()]));
	}
}
