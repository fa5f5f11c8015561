import type { Migration } from './migration';

/**
 * Sessions remember the repository they belong to: the agent runtime needs a working folder before a
 * session has a worktree of its own, and the worktree layer needs to know where to create one.
 */
export const sessionRepoRoot: Migration = {
	version: 3,
	name: 'session repository root',
	up(db) {
		if (db.count(`SELECT count(*) AS n FROM pragma_table_info('sessions') WHERE name = 'repo_root'`) === 0) {
			db.exec('ALTER TABLE sessions ADD COLUMN repo_root TEXT');
		}
		db.exec(`UPDATE sessions SET repo_root = (SELECT w.repo_root FROM worktrees w WHERE w.session_id = sessions.id) WHERE repo_root IS NULL`);
	},
};
