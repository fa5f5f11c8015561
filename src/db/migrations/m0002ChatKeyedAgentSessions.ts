import { verifyBackfill, type Migration, type MigrationDb } from './migration';

/** Sessions whose tasks outlived them in the earlier layout are gathered here, archived, so no task is dropped. */
export const orphanTasksSessionId = 'imported-tasks-without-session';

function hasColumn(db: MigrationDb, table: string, column: string): boolean {
	return db.count(`SELECT count(*) AS n FROM pragma_table_info('${table}') WHERE name = '${column}'`) > 0;
}

function hasTable(db: MigrationDb, table: string): boolean {
	return db.count(`SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name = '${table}'`) > 0;
}

/**
 * The re-key: a chat tab, not a session, is the unit of agent context.
 * - `worktrees` takes over from `session_worktrees` (`worktree_path` becomes `path`) and outlives its session.
 * - `chats` appear; every earlier `(session, agent)` context is resolved to one chat per session and agent,
 *   shared by that pair's agent session, tasks and pending changes, so the three stay connected.
 * - `agent_sessions` is keyed `(chat_id, agent)`; `config_hash` and `backend_session_id` are kept.
 * - `tasks.chat_id` and `pending_changes.chat_id`/`worktree_id`/`turn_id` are added and backfilled.
 * - transcript tables `turns` and `messages` are created.
 * Then the gate: every earlier agent session, task, pending change and worktree must have landed; if not,
 * the whole step rolls back. Each part checks what is already there, so a half-applied step completes.
 */
export const chatKeyedAgentSessions: Migration = {
	version: 2,
	name: 'chat-keyed agent sessions',
	up(db) {
		const now = `CAST(strftime('%s', 'now') AS INTEGER) * 1000`;
		const oldAgentSessions = !hasColumn(db, 'agent_sessions', 'chat_id');
		const oldTasks = !hasColumn(db, 'tasks', 'chat_id');
		const oldPending = !hasColumn(db, 'pending_changes', 'chat_id');
		const hasSessionWorktrees = hasTable(db, 'session_worktrees');

		// Worktrees.
		db.exec(`
CREATE TABLE IF NOT EXISTS worktrees (
	id TEXT PRIMARY KEY,
	session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
	repo_root TEXT NOT NULL,
	path TEXT NOT NULL UNIQUE,
	branch TEXT,
	base_ref TEXT,
	base_commit TEXT,
	state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('creating', 'ready', 'missing', 'removed', 'failed')),
	saved_ref TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS worktrees_one_per_session ON worktrees(session_id) WHERE session_id IS NOT NULL;`);
		if (hasSessionWorktrees) {
			db.exec(`
INSERT OR IGNORE INTO worktrees (id, session_id, repo_root, path, branch, base_ref, base_commit, state, created_at, updated_at)
SELECT 'wt-' || sw.session_id, sw.session_id, sw.repo_root, sw.worktree_path, sw.branch, s.base_ref, sw.base_commit, 'ready', sw.created_at, sw.created_at
FROM session_worktrees sw JOIN sessions s ON s.id = sw.session_id;`);
		}

		// Chats: one per (session, agent) context of the earlier layout.
		db.exec(`
CREATE TABLE IF NOT EXISTS chats (
	id TEXT PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	title TEXT NOT NULL,
	agent TEXT NOT NULL,
	tab_order INTEGER NOT NULL DEFAULT 0,
	opened_at INTEGER,
	closed_at INTEGER,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS chats_by_session ON chats(session_id, tab_order);
DROP TABLE IF EXISTS temp.context_pairs;
CREATE TEMP TABLE context_pairs (session_id TEXT NOT NULL, agent TEXT NOT NULL, created_at INTEGER, PRIMARY KEY (session_id, agent));`);
		if (oldTasks && db.count(`SELECT count(*) AS n FROM tasks WHERE session_id IS NULL`) > 0) {
			db.exec(`
INSERT OR IGNORE INTO sessions (id, title, status, created_at, updated_at)
VALUES ('${orphanTasksSessionId}', 'Tasks from deleted sessions', 'archived', ${now}, ${now});`);
		}
		const sources: string[] = [];
		if (oldAgentSessions) {
			sources.push(`SELECT session_id AS session_id, agent AS agent, created_at AS created_at FROM agent_sessions`);
		}
		if (oldTasks) {
			sources.push(`SELECT COALESCE(session_id, '${orphanTasksSessionId}') AS session_id, agent AS agent, created_at AS created_at FROM tasks`);
		}
		if (oldPending) {
			sources.push(`SELECT session_id AS session_id, agent AS agent, created_at AS created_at FROM pending_changes`);
		}
		for (const source of sources) {
			db.exec(`
INSERT INTO context_pairs (session_id, agent, created_at)
SELECT src.session_id, src.agent, min(src.created_at) FROM (${source}) AS src
WHERE src.session_id IN (SELECT id FROM sessions)
GROUP BY src.session_id, src.agent
ON CONFLICT (session_id, agent) DO UPDATE SET created_at = min(created_at, excluded.created_at);`);
		}
		db.exec(`
INSERT INTO chats (id, session_id, title, agent, tab_order, created_at, updated_at)
SELECT 'chat-' || lower(hex(randomblob(8))), p.session_id, p.agent, p.agent,
	(SELECT count(*) FROM context_pairs q WHERE q.session_id = p.session_id AND q.agent < p.agent),
	COALESCE(p.created_at, ${now}), COALESCE(p.created_at, ${now})
FROM context_pairs p
WHERE NOT EXISTS (SELECT 1 FROM chats c WHERE c.session_id = p.session_id AND c.agent = p.agent);`);

		const gate: Record<string, number> = {};

		// Agent sessions, re-keyed by chat.
		if (oldAgentSessions) {
			db.exec(`
DROP TABLE IF EXISTS agent_sessions_new;
CREATE TABLE agent_sessions_new (
	chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
	agent TEXT NOT NULL,
	backend TEXT NOT NULL CHECK (backend IN ('acp', 'opencode-server', 'claude-stream-json')),
	backend_session_id TEXT,
	config_hash TEXT,
	status TEXT NOT NULL CHECK (status IN ('starting', 'ready', 'running', 'idle', 'crashed', 'ended', 'error')),
	worktree_id TEXT REFERENCES worktrees(id) ON DELETE SET NULL,
	session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
	error TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (chat_id, agent)
);
INSERT INTO agent_sessions_new (chat_id, agent, backend, backend_session_id, config_hash, status, worktree_id, session_id, created_at, updated_at)
SELECT c.id, a.agent, a.backend, a.backend_session_id, a.config_hash,
	CASE a.status WHEN 'busy' THEN 'running' WHEN 'stopped' THEN 'ended' ELSE a.status END,
	(SELECT w.id FROM worktrees w WHERE w.session_id = a.session_id), a.session_id, a.created_at, a.updated_at
FROM agent_sessions a JOIN chats c ON c.session_id = a.session_id AND c.agent = a.agent;`);
			gate['agent sessions without a chat'] = db.count(`
SELECT count(*) AS n FROM agent_sessions a WHERE NOT EXISTS (
	SELECT 1 FROM agent_sessions_new n JOIN chats c ON c.id = n.chat_id
	WHERE c.session_id = a.session_id AND n.agent = a.agent AND n.config_hash IS a.config_hash)`);
		}

		// Tasks, with chat_id.
		if (oldTasks) {
			db.exec(`
DROP TABLE IF EXISTS tasks_new;
CREATE TABLE tasks_new (
	id TEXT PRIMARY KEY,
	creator TEXT NOT NULL CHECK (creator IN ('chat', 'skill', 'arena', 'mcp', 'new_task', 'cli', 'generic')),
	chat_id TEXT REFERENCES chats(id) ON DELETE SET NULL,
	session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
	agent TEXT NOT NULL,
	prompt TEXT NOT NULL,
	priority INTEGER NOT NULL DEFAULT 0,
	status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
	result TEXT,
	error TEXT,
	created_at INTEGER NOT NULL,
	started_at INTEGER,
	ended_at INTEGER
);
INSERT INTO tasks_new (id, creator, chat_id, session_id, agent, prompt, priority, status, result, created_at, started_at, ended_at)
SELECT t.id, t.creator,
	(SELECT c.id FROM chats c WHERE c.session_id = COALESCE(t.session_id, '${orphanTasksSessionId}') AND c.agent = t.agent),
	COALESCE(t.session_id, '${orphanTasksSessionId}'), t.agent, t.prompt, t.priority, t.status, t.result, t.created_at, t.started_at, t.ended_at
FROM tasks t;`);
			gate['tasks without a chat'] = db.count(`SELECT count(*) AS n FROM tasks_new WHERE chat_id IS NULL`);
			gate['tasks not carried over'] = db.count(`SELECT count(*) AS n FROM tasks t WHERE NOT EXISTS (SELECT 1 FROM tasks_new n WHERE n.id = t.id)`);
		}

		// Transcript.
		db.exec(`
CREATE TABLE IF NOT EXISTS turns (
	id TEXT PRIMARY KEY,
	chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
	agent TEXT NOT NULL,
	seq INTEGER NOT NULL,
	prompt TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('running', 'done', 'cancelled', 'error', 'interrupted')),
	stop_reason TEXT,
	input_tokens INTEGER,
	output_tokens INTEGER,
	cost_usd REAL,
	usage_json TEXT,
	checkpoint_before TEXT,
	checkpoint_after TEXT,
	error TEXT,
	started_at INTEGER NOT NULL,
	ended_at INTEGER,
	UNIQUE (chat_id, seq)
);
CREATE TABLE IF NOT EXISTS messages (
	id TEXT PRIMARY KEY,
	turn_id TEXT NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
	seq INTEGER NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('user', 'text', 'reasoning', 'tool_call', 'plan', 'permission', 'file_edit', 'usage', 'error', 'notice', 'raw')),
	tool_call_id TEXT,
	content TEXT NOT NULL,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	UNIQUE (turn_id, seq)
);`);

		// Pending changes, attributed to chat and agent.
		if (oldPending) {
			db.exec(`
DROP TABLE IF EXISTS pending_changes_new;
CREATE TABLE pending_changes_new (
	id TEXT PRIMARY KEY,
	session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
	worktree_id TEXT REFERENCES worktrees(id) ON DELETE CASCADE,
	chat_id TEXT REFERENCES chats(id) ON DELETE SET NULL,
	agent TEXT NOT NULL,
	turn_id TEXT REFERENCES turns(id) ON DELETE SET NULL,
	path TEXT NOT NULL,
	old_path TEXT,
	kind TEXT NOT NULL CHECK (kind IN ('add', 'modify', 'delete', 'rename')),
	status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
	shared INTEGER NOT NULL DEFAULT 0 CHECK (shared IN (0, 1)),
	source TEXT NOT NULL DEFAULT 'protocol' CHECK (source IN ('protocol', 'watcher', 'imported')),
	before_blob TEXT,
	after_blob TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
INSERT INTO pending_changes_new (id, session_id, worktree_id, chat_id, agent, path, kind, status, source, created_at, updated_at)
SELECT p.id, p.session_id, (SELECT w.id FROM worktrees w WHERE w.session_id = p.session_id),
	(SELECT c.id FROM chats c WHERE c.session_id = p.session_id AND c.agent = p.agent),
	p.agent, p.path, p.kind, p.status, 'imported', p.created_at, p.created_at
FROM pending_changes p;`);
			gate['pending changes without a chat'] = db.count(`SELECT count(*) AS n FROM pending_changes_new WHERE chat_id IS NULL`);
		}

		if (hasSessionWorktrees) {
			gate['worktrees without a row'] = db.count(`SELECT count(*) AS n FROM session_worktrees sw WHERE NOT EXISTS (SELECT 1 FROM worktrees w WHERE w.path = sw.worktree_path)`);
		}

		verifyBackfill(this.name, gate);

		// Swap in the new tables only after the gate passed.
		if (oldAgentSessions) {
			db.exec(`DROP TABLE agent_sessions; ALTER TABLE agent_sessions_new RENAME TO agent_sessions;`);
		}
		if (oldTasks) {
			db.exec(`DROP TABLE tasks; ALTER TABLE tasks_new RENAME TO tasks;`);
		}
		if (oldPending) {
			db.exec(`DROP TABLE pending_changes; ALTER TABLE pending_changes_new RENAME TO pending_changes;`);
		}
		if (hasSessionWorktrees) {
			db.exec(`DROP TABLE session_worktrees;`);
		}
		db.exec(`
DROP TABLE IF EXISTS temp.context_pairs;
CREATE INDEX IF NOT EXISTS sessions_by_status ON sessions(status, updated_at);
CREATE INDEX IF NOT EXISTS agent_sessions_by_session ON agent_sessions(session_id);
CREATE INDEX IF NOT EXISTS agent_sessions_by_worktree ON agent_sessions(worktree_id);
CREATE INDEX IF NOT EXISTS turns_by_chat ON turns(chat_id, seq);
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks(status, priority DESC, created_at);
CREATE INDEX IF NOT EXISTS tasks_by_chat ON tasks(chat_id);
CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks(session_id);
CREATE INDEX IF NOT EXISTS pending_by_session ON pending_changes(session_id, status);
CREATE INDEX IF NOT EXISTS pending_by_chat ON pending_changes(chat_id, agent);
CREATE INDEX IF NOT EXISTS pending_by_worktree ON pending_changes(worktree_id, path);
CREATE INDEX IF NOT EXISTS pending_by_turn ON pending_changes(turn_id);
CREATE TRIGGER IF NOT EXISTS chats_close_ends_agent_sessions
AFTER UPDATE OF closed_at ON chats WHEN NEW.closed_at IS NOT NULL AND OLD.closed_at IS NULL
BEGIN
	DELETE FROM agent_sessions WHERE chat_id = NEW.id;
END;`);
	},
};
