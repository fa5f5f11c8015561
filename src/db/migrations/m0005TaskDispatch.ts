import { verifyBackfill, type Migration } from './migration';

/** Every value `tasks.status` may take from this step on. */
export const taskStatuses = ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'] as const;

/** Every value `tasks.creator` may take: whoever asked for the prompt. */
export const taskCreators = ['chat', 'skill', 'arena', 'mcp', 'new_task', 'cli', 'generic'] as const;

/**
 * What the dispatcher needs of a task row: `interrupted` (running when the process ended, offered for retry),
 * `parent_task_id` and `attempt` (a retry is a new row pointing at the one it retries; a unique index lets a
 * task be retried once), `seq` (creation order, FIFO within a priority even when two tasks share a
 * millisecond), the full prompt (`input_json`: files and images), a requested new session
 * (`new_session_json`), the turn that ran it, and `updated_at`. SQLite cannot change a CHECK in place, so the
 * table is rebuilt; every row must arrive unchanged or the step rolls back.
 */
export const taskDispatch: Migration = {
	version: 5,
	name: 'task dispatch',
	up(db) {
		const current = db.all<{ sql: string }>(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'tasks'`)[0]?.sql ?? '';
		if (current.includes(`'interrupted'`)) {
			return;
		}
		const list = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(', ');
		db.exec(`
DROP TABLE IF EXISTS tasks_new;
CREATE TABLE tasks_new (
	id TEXT PRIMARY KEY,
	seq INTEGER NOT NULL UNIQUE,
	creator TEXT NOT NULL CHECK (creator IN (${list(taskCreators)})),
	chat_id TEXT REFERENCES chats(id) ON DELETE SET NULL,
	session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
	agent TEXT NOT NULL,
	prompt TEXT NOT NULL,
	input_json TEXT,
	new_session_json TEXT,
	priority INTEGER NOT NULL DEFAULT 0,
	status TEXT NOT NULL CHECK (status IN (${list(taskStatuses)})),
	parent_task_id TEXT REFERENCES tasks(id) ON DELETE SET NULL,
	attempt INTEGER NOT NULL DEFAULT 1 CHECK (attempt >= 1),
	turn_id TEXT REFERENCES turns(id) ON DELETE SET NULL,
	result TEXT,
	error TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	started_at INTEGER,
	ended_at INTEGER
);
INSERT INTO tasks_new (id, seq, creator, chat_id, session_id, agent, prompt, priority, status, result, error, created_at, updated_at, started_at, ended_at)
SELECT id, ROW_NUMBER() OVER (ORDER BY created_at, id), creator, chat_id, session_id, agent, prompt, priority, status, result, error,
	created_at, COALESCE(ended_at, started_at, created_at), started_at, ended_at
FROM tasks;`);
		verifyBackfill(this.name, {
			'tasks not carried over unchanged': db.count(`
SELECT count(*) AS n FROM tasks o WHERE NOT EXISTS (
	SELECT 1 FROM tasks_new n WHERE n.id = o.id AND n.creator = o.creator AND n.chat_id IS o.chat_id AND n.session_id IS o.session_id
	AND n.agent = o.agent AND n.prompt = o.prompt AND n.priority = o.priority AND n.status = o.status AND n.result IS o.result
	AND n.error IS o.error AND n.created_at = o.created_at AND n.started_at IS o.started_at AND n.ended_at IS o.ended_at)`),
			'tasks added': db.count(`SELECT (SELECT count(*) FROM tasks_new) - (SELECT count(*) FROM tasks) AS n`),
		});
		db.exec(`
DROP TABLE tasks;
ALTER TABLE tasks_new RENAME TO tasks;
CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks(status, priority DESC, seq);
CREATE INDEX IF NOT EXISTS tasks_by_chat ON tasks(chat_id, seq);
CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks(session_id);
CREATE UNIQUE INDEX IF NOT EXISTS tasks_one_retry ON tasks(parent_task_id) WHERE parent_task_id IS NOT NULL;`);
	},
};
