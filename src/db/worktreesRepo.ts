import type { Store } from './store';

/**
 * `removing` and `restoring` record an intent before the folder is touched, so a start-up after an
 * interruption can complete or reverse it (see WorktreeService.recoverInterrupted).
 */
export type WorktreeState = 'creating' | 'ready' | 'missing' | 'removing' | 'restoring' | 'removed' | 'failed';

export interface WorktreeRow {
	id: string;
	session_id: string | null;
	repo_root: string;
	path: string;
	branch: string | null;
	base_ref: string | null;
	base_commit: string | null;
	state: WorktreeState;
	saved_ref: string | null;
	created_at: number;
	updated_at: number;
}

/** The `worktrees` rows. A row outlives its session (session_id becomes null: a detached worktree). */
export class WorktreesRepo {
	constructor(
		private readonly store: Store,
		private readonly now: () => number = Date.now,
	) {}

	insert(row: Omit<WorktreeRow, 'created_at' | 'updated_at' | 'saved_ref'> & { saved_ref?: string | null }): WorktreeRow {
		const t = this.now();
		this.store.write((tx) => {
			tx.run(
				'INSERT INTO worktrees (id, session_id, repo_root, path, branch, base_ref, base_commit, state, saved_ref, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
				[row.id, row.session_id, row.repo_root, row.path, row.branch, row.base_ref, row.base_commit, row.state, row.saved_ref ?? null, t, t],
			);
		});
		return { ...row, saved_ref: row.saved_ref ?? null, created_at: t, updated_at: t };
	}

	get(id: string): WorktreeRow | undefined {
		return this.store.get<WorktreeRow>('SELECT * FROM worktrees WHERE id = ?', [id]);
	}

	forSession(sessionId: string): WorktreeRow | undefined {
		return this.store.get<WorktreeRow>('SELECT * FROM worktrees WHERE session_id = ?', [sessionId]);
	}

	byPath(p: string): WorktreeRow | undefined {
		return this.store.get<WorktreeRow>('SELECT * FROM worktrees WHERE path = ?', [p]);
	}

	list(): WorktreeRow[] {
		return this.store.all<WorktreeRow>('SELECT * FROM worktrees ORDER BY created_at');
	}

	/**
	 * Worktrees whose session was deleted (or that were adopted): listed as detached, with actions to attach
	 * (which restores a removed one from its branch and saved ref), open or remove.
	 */
	detached(): WorktreeRow[] {
		return this.store.all<WorktreeRow>('SELECT * FROM worktrees WHERE session_id IS NULL ORDER BY created_at');
	}

	delete(id: string): void {
		this.store.write((tx) => {
			tx.run('DELETE FROM worktrees WHERE id = ?', [id]);
		});
	}

	update(id: string, fields: Partial<Pick<WorktreeRow, 'state' | 'saved_ref' | 'session_id' | 'path' | 'branch' | 'base_commit' | 'repo_root'>>): void {
		const keys = Object.keys(fields) as (keyof typeof fields)[];
		if (keys.length === 0) {
			return;
		}
		this.store.write((tx) => {
			tx.run(`UPDATE worktrees SET ${keys.map((k) => `${k} = ?`).join(', ')}, updated_at = ? WHERE id = ?`, [...keys.map((k) => fields[k] ?? null), this.now(), id]);
		});
	}
}
