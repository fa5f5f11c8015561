import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { latestVersion, MigrationGateError } from '../../../src/db/migrations';
import { chatKeyedAgentSessions, orphanTasksSessionId } from '../../../src/db/migrations/m0002ChatKeyedAgentSessions';
import { sessionRepoRoot } from '../../../src/db/migrations/m0003SessionRepoRoot';
import { allRows } from '../../../src/db/rows';
import { loadSqlJs } from '../../../src/db/sqlJs';
import { storeFiles, type Store } from '../../../src/db/store';
import { ensureNoDisposablesLeaked, openStore, removeDir, tempDir, wasmPath } from '../helpers';
import { typicalLegacyRows, writeLegacyDatabase } from './legacyFixture';

function tables(store: Store): string[] {
	return store.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").map((r) => r.name);
}

function columns(store: Store, table: string): string[] {
	return store.all<{ name: string }>(`SELECT name FROM pragma_table_info('${table}')`).map((r) => r.name);
}

suite('db/migrations', () => {
	ensureNoDisposablesLeaked();
	let dir: string;
	setup(() => {
		dir = tempDir();
	});
	teardown(() => removeDir(dir));

	test('an empty folder migrates to the latest schema with every table of the design', async () => {
		const store = await openStore(dir);
		try {
			assert.equal(store.get<{ user_version: number }>('PRAGMA user_version')?.user_version, latestVersion);
			assert.deepEqual(store.recovery.migration.applied, ['earlier layout', 'chat-keyed agent sessions', 'session repository root', 'worktree intent states', 'task dispatch', 'chat row sequence', 'chat notices', 'agent settings']);
			assert.deepEqual(tables(store), ['_store_meta', 'agent_sessions', 'chat_notices', 'chats', 'messages', 'pending_changes', 'sessions', 'tasks', 'turns', 'worktrees']);
			assert.ok(columns(store, 'agent_sessions').includes('chat_id'));
			assert.ok(columns(store, 'tasks').includes('chat_id'));
			assert.ok(columns(store, 'pending_changes').includes('agent'));
			assert.ok(columns(store, 'worktrees').includes('path'));
			assert.equal(store.get<{ foreign_keys: number }>('PRAGMA foreign_keys')?.foreign_keys, 1);
		} finally {
			await store.close();
		}
	});

	test('CHECK constraints guard every status and kind column', async () => {
		const store = await openStore(dir);
		try {
			store.write((tx) => tx.run("INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES ('s', 't', 'active', 1, 1)"));
			store.write((tx) => tx.run("INSERT INTO chats (id, session_id, title, agent, created_at, updated_at) VALUES ('c', 's', 't', 'a', 1, 1)"));
			store.write((tx) => tx.run("INSERT INTO turns (id, chat_id, agent, seq, prompt, status, started_at) VALUES ('u', 'c', 'a', 1, 'p', 'running', 1)"));
			const bad: [string, string][] = [
				['sessions.status', "INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES ('x', 't', 'gone', 1, 1)"],
				['worktrees.state', "INSERT INTO worktrees (id, repo_root, path, state, created_at, updated_at) VALUES ('w', '/r', '/p', 'weird', 1, 1)"],
				['agent_sessions.status', "INSERT INTO agent_sessions (chat_id, agent, backend, status, created_at, updated_at) VALUES ('c', 'a', 'acp', 'dancing', 1, 1)"],
				['agent_sessions.backend', "INSERT INTO agent_sessions (chat_id, agent, backend, status, created_at, updated_at) VALUES ('c', 'a', 'telnet', 'ready', 1, 1)"],
				['turns.status', "INSERT INTO turns (id, chat_id, agent, seq, prompt, status, started_at) VALUES ('u2', 'c', 'a', 2, 'p', 'maybe', 1)"],
				['messages.kind', "INSERT INTO messages (id, turn_id, seq, kind, content, created_at, updated_at) VALUES ('m', 'u', 1, 'poem', '{}', 1, 1)"],
				['tasks.creator', "INSERT INTO tasks (id, seq, creator, agent, prompt, status, created_at, updated_at) VALUES ('t', 1, 'robot', 'a', 'p', 'queued', 1, 1)"],
				['tasks.status', "INSERT INTO tasks (id, seq, creator, agent, prompt, status, created_at, updated_at) VALUES ('t', 1, 'cli', 'a', 'p', 'lost', 1, 1)"],
				['pending_changes.kind', "INSERT INTO pending_changes (id, chat_id, agent, path, kind, created_at, updated_at) VALUES ('p', 'c', 'a', 'f', 'teleport', 1, 1)"],
				['pending_changes.status', "INSERT INTO pending_changes (id, chat_id, agent, path, kind, status, created_at, updated_at) VALUES ('p', 'c', 'a', 'f', 'add', 'meh', 1, 1)"],
			];
			for (const [what, sql] of bad) {
				assert.throws(() => store.write((tx) => tx.run(sql)), /CHECK constraint failed/, what);
			}
			const seqBefore = store.lastSeq;
			assert.equal(store.lastSeq, seqBefore, 'failed writes are not acknowledged');
		} finally {
			await store.close();
		}
	});

	test('the earlier layout is re-keyed by chat, with every row accounted for', async () => {
		const before = await writeLegacyDatabase(dir, typicalLegacyRows);
		const store = await openStore(dir);
		try {
			assert.deepEqual(store.recovery.migration, { from: 1, to: latestVersion, applied: ['chat-keyed agent sessions', 'session repository root', 'worktree intent states', 'task dispatch', 'chat row sequence', 'chat notices', 'agent settings'] });
			assert.deepEqual(store.all('SELECT id, repo_root FROM sessions ORDER BY id'), [
				{ id: orphanTasksSessionId, repo_root: null },
				{ id: 's1', repo_root: '/repo' },
				{ id: 's2', repo_root: null },
			]);
			assert.ok(!tables(store).includes('session_worktrees'));

			const wt = store.all('SELECT id, session_id, repo_root, path, branch, base_commit FROM worktrees');
			assert.deepEqual(wt, [{ id: 'wt-s1', session_id: 's1', repo_root: '/repo', path: '/wt/fix-login', branch: 'agent-tabs/fix-login', base_commit: 'abc123' }]);

			const chats = store.all<{ id: string; session_id: string; agent: string }>('SELECT id, session_id, agent FROM chats ORDER BY session_id, agent');
			assert.deepEqual(
				chats.map((c) => `${c.session_id}/${c.agent}`),
				['imported-tasks-without-session/claude', 's1/claude', 's1/codex', 's1/gemini', 's2/opencode'],
			);
			const chatOf = (session: string, agent: string): string => chats.find((c) => c.session_id === session && c.agent === agent)!.id;

			const agentSessions = store.all('SELECT chat_id, agent, backend, backend_session_id, config_hash, status, worktree_id, session_id FROM agent_sessions ORDER BY config_hash');
			assert.deepEqual(agentSessions, [
				{ chat_id: chatOf('s1', 'claude'), agent: 'claude', backend: 'acp', backend_session_id: 'claude-sess-1', config_hash: 'hash-claude-1', status: 'running', worktree_id: 'wt-s1', session_id: 's1' },
				{ chat_id: chatOf('s1', 'codex'), agent: 'codex', backend: 'acp', backend_session_id: 'codex-sess-1', config_hash: 'hash-codex-1', status: 'ended', worktree_id: 'wt-s1', session_id: 's1' },
				{ chat_id: chatOf('s2', 'opencode'), agent: 'opencode', backend: 'opencode-server', backend_session_id: null, config_hash: 'hash-oc-2', status: 'ready', worktree_id: null, session_id: 's2' },
			]);

			const tasks = store.all('SELECT id, chat_id, session_id, status FROM tasks ORDER BY id');
			assert.deepEqual(tasks, [
				{ id: 't1', chat_id: chatOf('s1', 'claude'), session_id: 's1', status: 'done' },
				{ id: 't2', chat_id: chatOf('s1', 'gemini'), session_id: 's1', status: 'queued' },
				{ id: 't3', chat_id: chatOf(orphanTasksSessionId, 'claude'), session_id: orphanTasksSessionId, status: 'done' },
			]);
			assert.equal(store.get<{ status: string }>('SELECT status FROM sessions WHERE id = ?', [orphanTasksSessionId])?.status, 'archived');

			const pending = store.all('SELECT id, chat_id, agent, worktree_id, source FROM pending_changes ORDER BY id');
			assert.deepEqual(pending, [
				{ id: 'p1', chat_id: chatOf('s1', 'claude'), agent: 'claude', worktree_id: 'wt-s1', source: 'imported' },
				{ id: 'p2', chat_id: chatOf('s1', 'codex'), agent: 'codex', worktree_id: 'wt-s1', source: 'imported' },
			]);

			const backup = path.join(dir, `${storeFiles.snapshot}.v1.bak`);
			assert.deepEqual(fs.readFileSync(backup), before, 'the pre-migration file is kept byte for byte');
			assert.deepEqual(store.all('PRAGMA foreign_key_check'), []);
		} finally {
			await store.close();
		}
		// And the migrated state is what a second open sees.
		const again = await openStore(dir);
		try {
			assert.deepEqual(again.recovery.migration.applied, []);
			assert.equal(again.all('SELECT * FROM agent_sessions').length, 3);
		} finally {
			await again.close();
		}
	});

	test('rows the backfill cannot map abort the migration and leave the file byte for byte', async () => {
		const before = await writeLegacyDatabase(dir, (db) => {
			typicalLegacyRows(db);
			// An agent session whose session no longer exists: it can be given no chat.
			db.exec("INSERT INTO agent_sessions (session_id, agent, backend, config_hash, status, created_at, updated_at) VALUES ('ghost', 'claude', 'acp', 'h', 'ready', 1, 1)");
			db.exec("INSERT INTO tasks (id, creator, session_id, agent, prompt, status, created_at) VALUES ('t-ghost', 'cli', 'ghost', 'claude', 'p', 'queued', 1)");
		});
		const mtime = fs.statSync(path.join(dir, storeFiles.snapshot)).mtimeMs;
		await assert.rejects(openStore(dir), (e: unknown) => {
			assert.ok(e instanceof MigrationGateError);
			assert.equal(e.counts['agent sessions without a chat'], 1);
			assert.equal(e.counts['tasks without a chat'], 1);
			assert.equal(e.counts['worktrees without a row'], 0);
			assert.match(e.message, /1 agent sessions without a chat, 1 tasks without a chat/);
			assert.match(e.message, /rolled back/);
			return true;
		});
		assert.deepEqual(fs.readFileSync(path.join(dir, storeFiles.snapshot)), before);
		assert.equal(fs.statSync(path.join(dir, storeFiles.snapshot)).mtimeMs, mtime);
		assert.deepEqual(fs.readdirSync(dir), [storeFiles.snapshot], 'no journal, backup or lock is left behind');
	});

	test('a worktree row that cannot be carried over fails the gate too', async () => {
		await writeLegacyDatabase(dir, (db) => {
			typicalLegacyRows(db);
			db.exec("INSERT INTO session_worktrees (session_id, repo_root, worktree_path, created_at) VALUES ('ghost', '/repo', '/wt/ghost', 1)");
		});
		await assert.rejects(openStore(dir), (e: unknown) => e instanceof MigrationGateError && e.counts['worktrees without a row'] === 1);
	});

	test('a step half-applied before a crash completes cleanly', async () => {
		await writeLegacyDatabase(dir, typicalLegacyRows, (db) => {
			// As if the upgrade had created and partly filled the new tables, then died before finishing.
			db.exec(`
CREATE TABLE worktrees (id TEXT PRIMARY KEY, session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL, repo_root TEXT NOT NULL,
	path TEXT NOT NULL UNIQUE, branch TEXT, base_ref TEXT, base_commit TEXT,
	state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN ('creating', 'ready', 'missing', 'removed', 'failed')), saved_ref TEXT,
	created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);
INSERT INTO worktrees (id, session_id, repo_root, path, created_at, updated_at) VALUES ('wt-s1', 's1', '/repo', '/wt/fix-login', 1, 1);
CREATE TABLE agent_sessions_new (chat_id TEXT);
INSERT INTO agent_sessions_new VALUES ('half');`);
		});
		const store = await openStore(dir);
		try {
			assert.equal(store.all('SELECT * FROM worktrees').length, 1);
			assert.equal(store.all('SELECT * FROM agent_sessions').length, 3);
			assert.equal(store.all("SELECT * FROM sqlite_master WHERE name LIKE '%_new'").length, 0);
		} finally {
			await store.close();
		}
	});

	test('opening an up-to-date database changes nothing', async () => {
		const first = await openStore(dir, { smallJournalRecords: 1 }); // close folds the write into the snapshot
		first.write((tx) => tx.run("INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES ('s', 't', 'active', 1, 1)"));
		await first.close();
		const snapshot = path.join(dir, storeFiles.snapshot);
		const bytes = fs.readFileSync(snapshot);
		const mtime = fs.statSync(snapshot).mtimeMs;
		for (let i = 0; i < 2; i++) {
			const s = await openStore(dir);
			assert.deepEqual(s.recovery.migration.applied, []);
			assert.equal(s.recovery.replayedRecords, 0);
			await s.close();
		}
		assert.deepEqual(fs.readFileSync(snapshot), bytes);
		assert.equal(fs.statSync(snapshot).mtimeMs, mtime);
	});

	test('worktree intent states: a version 3 database keeps every worktree row and then accepts removing and restoring', async () => {
		await writeLegacyDatabase(dir, typicalLegacyRows, (db) => {
			// Bring the earlier layout to version 3 with the real steps, then add rows of every old state.
			const mdb = { exec: (sql: string) => db.exec(sql), all: <T>(sql: string) => allRows<T>(db, sql), count: (sql: string) => Number(Object.values(allRows<Record<string, unknown>>(db, sql)[0] ?? { n: 0 })[0]) };
			for (const step of [chatKeyedAgentSessions, sessionRepoRoot]) {
				step.up(mdb);
			}
			db.exec(`PRAGMA user_version = 3;
INSERT INTO worktrees (id, session_id, repo_root, path, branch, state, saved_ref, created_at, updated_at) VALUES
	('w-missing', NULL, '/repo', '/wt/missing', 'agent-tabs/m', 'missing', 'refs/agent-tabs/saved/w-missing', 5, 6),
	('w-removed', 's2', '/repo', '/wt/removed', NULL, 'removed', NULL, 7, 8);`);
			assert.throws(() => db.exec("UPDATE worktrees SET state = 'removing' WHERE id = 'w-missing'"), /CHECK constraint failed/, 'version 3 cannot record the intent');
		});
		const store = await openStore(dir);
		try {
			assert.deepEqual(store.recovery.migration, { from: 3, to: latestVersion, applied: ['worktree intent states', 'task dispatch', 'chat row sequence', 'chat notices', 'agent settings'] });
			const rows = store.all<Record<string, unknown>>('SELECT id, session_id, path, branch, state, saved_ref, created_at, updated_at FROM worktrees ORDER BY id');
			assert.deepEqual(rows, [
				{ id: 'w-missing', session_id: null, path: '/wt/missing', branch: 'agent-tabs/m', state: 'missing', saved_ref: 'refs/agent-tabs/saved/w-missing', created_at: 5, updated_at: 6 },
				{ id: 'w-removed', session_id: 's2', path: '/wt/removed', branch: null, state: 'removed', saved_ref: null, created_at: 7, updated_at: 8 },
				{ id: 'wt-s1', session_id: 's1', path: '/wt/fix-login', branch: 'agent-tabs/fix-login', state: 'ready', saved_ref: null, created_at: 1001, updated_at: 1001 },
			]);
			assert.equal(store.all("SELECT * FROM pending_changes WHERE worktree_id = 'wt-s1'").length, 2, 'references to worktrees still resolve');
			store.write((tx) => tx.run("UPDATE worktrees SET state = 'removing' WHERE id = 'w-missing'"));
			store.write((tx) => tx.run("UPDATE worktrees SET state = 'restoring' WHERE id = 'w-removed'"));
			assert.throws(() => store.write((tx) => tx.run("UPDATE worktrees SET state = 'vanishing' WHERE id = 'wt-s1'")), /CHECK constraint failed/);
			assert.equal(store.all("SELECT * FROM sqlite_master WHERE name = 'worktrees_one_per_session'").length, 1);
		} finally {
			await store.close();
		}
	});

	test('a database from a newer version is refused and left untouched', async () => {
		const SQL = await loadSqlJs(wasmPath);
		const db = new SQL.Database();
		db.exec('CREATE TABLE future (x); PRAGMA user_version = 99;');
		const bytes = Buffer.from(db.export());
		db.close();
		fs.writeFileSync(path.join(dir, storeFiles.snapshot), bytes);
		await assert.rejects(openStore(dir), /schema version 99, newer than this version knows/);
		assert.deepEqual(fs.readFileSync(path.join(dir, storeFiles.snapshot)), bytes);
	});

	suite('foreign keys', () => {
		let store: Store;
		setup(async () => {
			store = await openStore(dir);
			store.write((tx) => {
				tx.run("INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES ('s', 't', 'active', 1, 1)");
				tx.run("INSERT INTO worktrees (id, session_id, repo_root, path, created_at, updated_at) VALUES ('w', 's', '/r', '/wt', 1, 1)");
				tx.run("INSERT INTO chats (id, session_id, title, agent, created_at, updated_at) VALUES ('c1', 's', 't', 'claude', 1, 1), ('c2', 's', 't', 'claude', 1, 1)");
				tx.run("INSERT INTO agent_sessions (chat_id, agent, backend, status, worktree_id, session_id, created_at, updated_at) VALUES ('c1', 'claude', 'acp', 'ready', 'w', 's', 1, 1), ('c2', 'claude', 'acp', 'ready', 'w', 's', 1, 1)");
				tx.run("INSERT INTO turns (id, chat_id, agent, seq, prompt, status, started_at) VALUES ('u1', 'c1', 'claude', 1, 'p', 'done', 1)");
			});
		});
		teardown(() => store.close());

		test('two chats with the same agent are two contexts', () => {
			assert.equal(store.all("SELECT * FROM agent_sessions WHERE agent = 'claude'").length, 2);
		});

		test('closing a chat removes its agent sessions and keeps its transcript', () => {
			store.write((tx) => tx.run("UPDATE chats SET closed_at = 5 WHERE id = 'c1'"));
			assert.deepEqual(store.all('SELECT chat_id FROM agent_sessions'), [{ chat_id: 'c2' }]);
			assert.equal(store.all("SELECT * FROM turns WHERE chat_id = 'c1'").length, 1);
		});

		test('deleting a chat cascades to its agent sessions and turns', () => {
			store.write((tx) => tx.run("DELETE FROM chats WHERE id = 'c1'"));
			assert.deepEqual(store.all('SELECT chat_id FROM agent_sessions'), [{ chat_id: 'c2' }]);
			assert.equal(store.all('SELECT * FROM turns').length, 0);
		});

		test('deleting a session keeps its worktree row, detached', () => {
			store.write((tx) => tx.run("DELETE FROM sessions WHERE id = 's'"));
			assert.deepEqual(store.all('SELECT id, session_id, path FROM worktrees'), [{ id: 'w', session_id: null, path: '/wt' }]);
			assert.equal(store.all('SELECT * FROM chats').length, 0);
		});

		test('a row pointing at a missing parent is refused', () => {
			assert.throws(
				() => store.write((tx) => tx.run("INSERT INTO chats (id, session_id, title, agent, created_at, updated_at) VALUES ('c3', 'nope', 't', 'a', 1, 1)")),
				/FOREIGN KEY constraint failed/,
			);
		});
	});
});
