import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Database } from 'sql.js';
import { latestVersion } from '../../../src/db/migrations';
import { chatKeyedAgentSessions } from '../../../src/db/migrations/m0002ChatKeyedAgentSessions';
import { sessionRepoRoot } from '../../../src/db/migrations/m0003SessionRepoRoot';
import { worktreeIntentStates } from '../../../src/db/migrations/m0004WorktreeIntentStates';
import { allRows } from '../../../src/db/rows';
import { storeFiles } from '../../../src/db/store';
import { ensureNoDisposablesLeaked, openStore, removeDir, tempDir } from '../helpers';
import { migrationDb, typicalLegacyRows, writeLegacyDatabase } from './legacyFixture';

/** The legacy rows brought to version 4 with the real steps, plus tasks of every status version 4 knows. */
function toVersion4(extra = ''): (db: Database) => void {
	return (db) => {
		for (const step of [chatKeyedAgentSessions, sessionRepoRoot, worktreeIntentStates]) {
			step.up(migrationDb(db));
		}
		db.exec(`PRAGMA user_version = 4;
INSERT INTO tasks (id, creator, chat_id, session_id, agent, prompt, priority, status, result, error, created_at, started_at, ended_at)
SELECT 'r-' || status, 'skill', (SELECT chat_id FROM tasks WHERE id = 't1'), 's1', 'claude', 'p ' || status, 2, status, NULL, CASE status WHEN 'failed' THEN 'boom' END, ts, ts + 1, CASE status WHEN 'running' THEN NULL ELSE ts + 2 END
FROM (SELECT 'running' AS status, 3000 AS ts UNION ALL SELECT 'failed', 3000 UNION ALL SELECT 'cancelled', 2500);
${extra}`);
	};
}

suite('db/migrations: task dispatch (step 5)', () => {
	ensureNoDisposablesLeaked();
	let dir: string;
	setup(() => {
		dir = tempDir();
	});
	teardown(() => removeDir(dir));

	const columns = 'id, creator, chat_id, session_id, agent, prompt, priority, status, result, error, created_at, started_at, ended_at';

	test('a version 4 database keeps every task unchanged, numbered in creation order, and then accepts interrupted and retries', async () => {
		let before: Record<string, unknown>[] = [];
		await writeLegacyDatabase(dir, typicalLegacyRows, (db) => {
			toVersion4()(db);
			before = allRows(db, `SELECT ${columns} FROM tasks ORDER BY id`);
			assert.throws(() => db.exec("UPDATE tasks SET status = 'interrupted' WHERE id = 'r-running'"), /CHECK constraint failed/, 'version 4 cannot record interrupted');
		});
		assert.equal(before.length, 6);
		const store = await openStore(dir);
		try {
			assert.equal(latestVersion, 8);
			assert.deepEqual(store.recovery.migration.applied, ['task dispatch', 'chat row sequence', 'chat notices', 'agent settings']);
			assert.deepEqual(store.all(`SELECT ${columns} FROM tasks ORDER BY id`), before, 'every column of every row is carried over');
			assert.deepEqual(
				store.all<{ id: string }>('SELECT id FROM tasks ORDER BY seq').map((r) => r.id),
				['t3', 't1', 't2', 'r-cancelled', 'r-failed', 'r-running'],
				'seq follows creation time (ties by id)',
			);
			const running = store.get<{ updated_at: number; attempt: number; parent_task_id: string | null }>("SELECT updated_at, attempt, parent_task_id FROM tasks WHERE id = 'r-running'");
			assert.deepEqual(running, { updated_at: 3001, attempt: 1, parent_task_id: null });
			store.write((tx) => tx.run("UPDATE tasks SET status = 'interrupted' WHERE id = 'r-running'"));
			const chat = store.get<{ chat_id: string }>("SELECT chat_id FROM tasks WHERE id = 't1'")!.chat_id;
			store.write((tx) => tx.run(`INSERT INTO tasks (id, seq, creator, chat_id, agent, prompt, status, parent_task_id, attempt, created_at, updated_at) VALUES ('retry1', 100, 'skill', ?, 'claude', 'p', 'queued', 'r-running', 2, 4000, 4000)`, [chat]));
			assert.throws(
				() => store.write((tx) => tx.run(`INSERT INTO tasks (id, seq, creator, agent, prompt, status, parent_task_id, attempt, created_at, updated_at) VALUES ('retry2', 101, 'skill', 'claude', 'p', 'queued', 'r-running', 2, 4000, 4000)`)),
				/UNIQUE constraint failed/,
				'a task is retried at most once',
			);
			assert.throws(() => store.write((tx) => tx.run(`INSERT INTO tasks (id, seq, creator, agent, prompt, status, created_at, updated_at) VALUES ('dup', 100, 'cli', 'a', 'p', 'queued', 1, 1)`)), /UNIQUE constraint failed/, 'seq is unique');
			assert.throws(() => store.write((tx) => tx.run(`INSERT INTO tasks (id, seq, creator, agent, prompt, status, parent_task_id, created_at, updated_at) VALUES ('orphan', 102, 'cli', 'a', 'p', 'queued', 'nope', 1, 1)`)), /FOREIGN KEY constraint failed/);
			store.write((tx) => tx.run("DELETE FROM tasks WHERE id = 'r-running'"));
			assert.equal(store.get<{ parent_task_id: string | null }>("SELECT parent_task_id FROM tasks WHERE id = 'retry1'")?.parent_task_id, null, 'deleting a parent detaches its retry');
			const indexes = store.all<{ name: string }>("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' AND name NOT LIKE 'sqlite_%' ORDER BY name").map((r) => r.name);
			assert.deepEqual(indexes, ['tasks_by_chat', 'tasks_by_session', 'tasks_by_status', 'tasks_one_retry']);
		} finally {
			await store.close();
		}
	});

	test('a step half-applied before a crash completes cleanly', async () => {
		await writeLegacyDatabase(dir, typicalLegacyRows, toVersion4("CREATE TABLE tasks_new (id TEXT); INSERT INTO tasks_new VALUES ('half');"));
		const store = await openStore(dir);
		try {
			assert.equal(store.all('SELECT * FROM tasks').length, 6);
			assert.equal(store.all("SELECT * FROM sqlite_master WHERE name LIKE '%_new'").length, 0);
		} finally {
			await store.close();
		}
	});

	test('a row the new table refuses rolls the step back and leaves the file byte for byte', async () => {
		// A version 4 file whose tasks table lost its CHECK (edited by hand, say) and holds a status no version knows.
		const bytes = await writeLegacyDatabase(dir, typicalLegacyRows, (db) => {
			toVersion4()(db);
			db.exec(`ALTER TABLE tasks RENAME TO tasks_old;
CREATE TABLE tasks AS SELECT * FROM tasks_old; DROP TABLE tasks_old;
INSERT INTO tasks (id, creator, session_id, agent, prompt, priority, status, created_at) VALUES ('weird', 'cli', 's1', 'a', 'p', 0, 'paused', 5000);`);
		});
		await assert.rejects(openStore(dir), /CHECK constraint failed/);
		assert.deepEqual(fs.readFileSync(path.join(dir, storeFiles.snapshot)), bytes);
		const store = await openStore(dir).catch(() => undefined);
		assert.equal(store, undefined, 'it keeps refusing rather than half-upgrading');
	});
});
