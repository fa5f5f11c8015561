import type { Migration } from './migration';

/**
 * The layout of the system Agent Tabs replaces: one shared worktree per session (`session_worktrees`) and one
 * backend session per `(session_id, agent)`. Kept as step 1 so databases of that system upgrade through the
 * same verified path as ours, and so the upgrade is tested from real seeded rows.
 */
export const earlierLayout: Migration = {
	version: 1,
	name: 'earlier layout',
	up(db) {
		db.exec(`
CREATE TABLE IF NOT EXISTS sessions (
	id TEXT PRIMARY KEY,
	title TEXT NOT NULL,
	base_ref TEXT,
	status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'archived')),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS session_worktrees (
	session_id TEXT PRIMARY KEY REFERENCES sessions(id) ON DELETE CASCADE,
	repo_root TEXT NOT NULL,
	worktree_path TEXT NOT NULL UNIQUE,
	branch TEXT,
	base_commit TEXT,
	created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_sessions (
	session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	agent TEXT NOT NULL,
	backend TEXT NOT NULL CHECK (backend IN ('acp', 'opencode-server', 'claude-stream-json')),
	backend_session_id TEXT,
	config_hash TEXT,
	worktree_path TEXT,
	status TEXT NOT NULL CHECK (status IN ('starting', 'ready', 'busy', 'stopped', 'crashed')),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (session_id, agent)
);
CREATE TABLE IF NOT EXISTS pending_changes (
	id TEXT PRIMARY KEY,
	session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
	agent TEXT NOT NULL,
	path TEXT NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('add', 'modify', 'delete')),
	status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'accepted', 'rejected')),
	created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS tasks (
	id TEXT PRIMARY KEY,
	creator TEXT NOT NULL CHECK (creator IN ('chat', 'skill', 'arena', 'mcp', 'new_task', 'cli', 'generic')),
	session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
	agent TEXT NOT NULL,
	prompt TEXT NOT NULL,
	priority INTEGER NOT NULL DEFAULT 0,
	status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed', 'cancelled')),
	result TEXT,
	created_at INTEGER NOT NULL,
	started_at INTEGER,
	ended_at INTEGER
);
`);
	},
};
