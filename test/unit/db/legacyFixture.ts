import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Database } from 'sql.js';
import { earlierLayout } from '../../../src/db/migrations/m0001EarlierLayout';
import { loadSqlJs } from '../../../src/db/sqlJs';
import type { MigrationDb } from '../../../src/db/migrations/migration';
import { allRows } from '../../../src/db/rows';
import { storeFiles } from '../../../src/db/store';
import { wasmPath } from '../helpers';

/** The rows a database of the earlier system might hold. */
/** A sql.js database as a migration step sees it, to run real steps on a fixture. */
export function migrationDb(db: Database): MigrationDb {
	return { exec: (sql) => db.exec(sql), all: <T>(sql: string) => allRows<T>(db, sql), count: (sql) => Number(Object.values(allRows<Record<string, unknown>>(db, sql)[0] ?? { n: 0 })[0]) };
}

export interface LegacySeed {
	(db: Database): void;
}

/** Two sessions, one with a worktree; three agent contexts; tasks (one whose session was deleted); pending changes. */
export const typicalLegacyRows: LegacySeed = (db) => {
	db.exec(`
INSERT INTO sessions (id, title, base_ref, status, created_at, updated_at) VALUES
	('s1', 'Fix login', 'main', 'active', 1000, 1100),
	('s2', 'Refactor', NULL, 'archived', 2000, 2100);
INSERT INTO session_worktrees (session_id, repo_root, worktree_path, branch, base_commit, created_at) VALUES
	('s1', '/repo', '/wt/fix-login', 'agent-tabs/fix-login', 'abc123', 1001);
INSERT INTO agent_sessions (session_id, agent, backend, backend_session_id, config_hash, worktree_path, status, created_at, updated_at) VALUES
	('s1', 'claude', 'acp', 'claude-sess-1', 'hash-claude-1', '/wt/fix-login', 'busy', 1002, 1003),
	('s1', 'codex', 'acp', 'codex-sess-1', 'hash-codex-1', '/wt/fix-login', 'stopped', 1004, 1005),
	('s2', 'opencode', 'opencode-server', NULL, 'hash-oc-2', NULL, 'ready', 2002, 2003);
INSERT INTO tasks (id, creator, session_id, agent, prompt, priority, status, result, created_at, started_at, ended_at) VALUES
	('t1', 'chat', 's1', 'claude', 'fix the login', 1, 'done', 'ok', 1010, 1011, 1012),
	('t2', 'cli', 's1', 'gemini', 'write tests', 0, 'queued', NULL, 1020, NULL, NULL),
	('t3', 'mcp', NULL, 'claude', 'from a deleted session', 0, 'done', 'ok', 900, 901, 902);
INSERT INTO pending_changes (id, session_id, agent, path, kind, status, created_at) VALUES
	('p1', 's1', 'claude', 'src/login.ts', 'modify', 'pending', 1030),
	('p2', 's1', 'codex', 'README.md', 'add', 'accepted', 1031);
`);
};

/** Writes a database in the earlier layout (user_version 1) into `dir` and returns its bytes. */
export async function writeLegacyDatabase(dir: string, seed: LegacySeed, prepare?: (db: Database) => void): Promise<Buffer> {
	const SQL = await loadSqlJs(wasmPath);
	const db = new SQL.Database();
	db.exec('BEGIN');
	earlierLayout.up({ exec: (sql) => db.exec(sql), all: () => [], count: () => 0 });
	db.exec('PRAGMA user_version = 1');
	db.exec('COMMIT');
	// The earlier system did not always enforce foreign keys; seeds may contain orphans on purpose.
	db.exec('PRAGMA foreign_keys = OFF');
	seed(db);
	prepare?.(db);
	const bytes = Buffer.from(db.export());
	db.close();
	fs.mkdirSync(dir, { recursive: true });
	fs.writeFileSync(path.join(dir, storeFiles.snapshot), bytes);
	return bytes;
}
