import { verifyBackfill, type Migration } from './migration';

/** Every value `worktrees.state` may take from this step on. */
export const worktreeStates = ['creating', 'ready', 'missing', 'removing', 'restoring', 'removed', 'failed'] as const;

/**
 * A worktree records what is being done to its folder before the folder is touched: `removing` (saved and
 * verified, the folder is being deleted) and `restoring` (being rebuilt from its save). A start-up after an
 * interruption finds them and completes or reverses the step. SQLite cannot change a CHECK in place, so the
 * table is rebuilt; every row must arrive unchanged or the step rolls back.
 */
export const worktreeIntentStates: Migration = {
	version: 4,
	name: 'worktree intent states',
	up(db) {
		const current = db.all<{ sql: string }>(`SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'worktrees'`)[0]?.sql ?? '';
		if (current.includes(`'removing'`)) {
			return;
		}
		db.exec(`
DROP TABLE IF EXISTS worktrees_new;
CREATE TABLE worktrees_new (
	id TEXT PRIMARY KEY,
	session_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
	repo_root TEXT NOT NULL,
	path TEXT NOT NULL UNIQUE,
	branch TEXT,
	base_ref TEXT,
	base_commit TEXT,
	state TEXT NOT NULL DEFAULT 'ready' CHECK (state IN (${worktreeStates.map((s) => `'${s}'`).join(', ')})),
	saved_ref TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
);
INSERT INTO worktrees_new (id, session_id, repo_root, path, branch, base_ref, base_commit, state, saved_ref, created_at, updated_at)
SELECT id, session_id, repo_root, path, branch, base_ref, base_commit, state, saved_ref, created_at, updated_at FROM worktrees;`);
		verifyBackfill(this.name, {
			'worktrees not carried over unchanged': db.count(`
SELECT count(*) AS n FROM worktrees o WHERE NOT EXISTS (
	SELECT 1 FROM worktrees_new n WHERE n.id = o.id AND n.session_id IS o.session_id AND n.repo_root = o.repo_root AND n.path = o.path
	AND n.branch IS o.branch AND n.base_ref IS o.base_ref AND n.base_commit IS o.base_commit AND n.state = o.state
	AND n.saved_ref IS o.saved_ref AND n.created_at = o.created_at AND n.updated_at = o.updated_at)`),
			'worktrees added': db.count(`SELECT (SELECT count(*) FROM worktrees_new) - (SELECT count(*) FROM worktrees) AS n`),
		});
		db.exec(`
DROP TABLE worktrees;
ALTER TABLE worktrees_new RENAME TO worktrees;
CREATE UNIQUE INDEX IF NOT EXISTS worktrees_one_per_session ON worktrees(session_id) WHERE session_id IS NOT NULL;`);
	},
};
