import { AgentTabsError } from '../common/errors';
import { newId } from '../common/ids';
import type { PromptInput } from '../protocol/turns';
import { taskCreators, taskStatuses } from './migrations/m0005TaskDispatch';
import type { Store, WriteTx } from './store';

export { taskCreators, taskStatuses };

/** Who asked for a task's prompt. */
export type TaskCreator = (typeof taskCreators)[number];

/**
 * `queued` → `running` → `done` | `failed` | `cancelled`; a queued task may be `cancelled` (it never runs) or
 * `failed` (it could not be given a chat); a task found `running` at start-up, or stopped by shutdown, is
 * `interrupted`. Failed and interrupted tasks can be retried once each (a new task, see `retry`).
 */
export type TaskStatus = (typeof taskStatuses)[number];

/** The statuses a task does not leave. */
export const endedTaskStatuses: readonly TaskStatus[] = ['done', 'failed', 'cancelled', 'interrupted'];

/** A task asks for a new session when it names no chat and no session. */
export interface NewSessionRequest {
	/** The repository (any folder inside it) the session's worktree is made from. */
	repo: string;
	title?: string;
	baseRef?: string;
}

export interface TaskRow {
	id: string;
	/** Creation order, FIFO within a priority. */
	seq: number;
	creator: TaskCreator;
	chat_id: string | null;
	session_id: string | null;
	agent: string;
	/** The prompt's text (the whole prompt is `input_json` when it carries files or images). */
	prompt: string;
	input_json: string | null;
	new_session_json: string | null;
	priority: number;
	status: TaskStatus;
	/** The task this one retries. */
	parent_task_id: string | null;
	attempt: number;
	/** The transcript turn that ran it. */
	turn_id: string | null;
	/** A short summary of what the agent answered. */
	result: string | null;
	error: string | null;
	created_at: number;
	updated_at: number;
	started_at: number | null;
	ended_at: number | null;
}

export interface NewTask {
	creator: TaskCreator;
	agent: string;
	input: PromptInput;
	chatId?: string;
	sessionId?: string;
	newSession?: NewSessionRequest;
	/** Higher runs first; default 0. */
	priority?: number;
	id?: string;
}

export interface TaskFilter {
	status?: TaskStatus | readonly TaskStatus[];
	chatId?: string;
	sessionId?: string;
	/** The newest this many (default: all). */
	limit?: number;
}

/** How a task that ran ended. */
export interface TaskEnd {
	status: 'done' | 'failed' | 'cancelled' | 'interrupted';
	result?: string;
	error?: string;
	turnId?: string;
}

/** The prompt a task row carries. */
export function taskInput(row: Pick<TaskRow, 'prompt' | 'input_json'>): PromptInput {
	return row.input_json ? (JSON.parse(row.input_json) as PromptInput) : { text: row.prompt };
}

export function taskNewSession(row: Pick<TaskRow, 'new_session_json'>): NewSessionRequest | undefined {
	return row.new_session_json ? (JSON.parse(row.new_session_json) as NewSessionRequest) : undefined;
}

/**
 * The `tasks` rows. Every transition is one conditional UPDATE (`WHERE status = …`), so a transition happens
 * at most once however often it is asked for: a task is claimed once, ended once, retried once.
 */
export class TasksRepo {
	constructor(
		private readonly store: Store,
		private readonly now: () => number = Date.now,
	) {}

	create(input: NewTask): TaskRow {
		return this.store.write((tx) => this.insert(tx, input, null, 1));
	}

	private insert(tx: WriteTx, input: NewTask, parent: string | null, attempt: number): TaskRow {
		const t = this.now();
		const seq = tx.get<{ n: number }>('SELECT COALESCE(max(seq), 0) + 1 AS n FROM tasks')!.n;
		const onlyText = !input.input.files?.length && !input.input.images?.length;
		const row: TaskRow = {
			id: input.id ?? newId('task'),
			seq,
			creator: input.creator,
			chat_id: input.chatId ?? null,
			session_id: input.sessionId ?? null,
			agent: input.agent,
			prompt: input.input.text,
			input_json: onlyText ? null : JSON.stringify(input.input),
			new_session_json: input.newSession ? JSON.stringify(input.newSession) : null,
			priority: input.priority ?? 0,
			status: 'queued',
			parent_task_id: parent,
			attempt,
			turn_id: null,
			result: null,
			error: null,
			created_at: t,
			updated_at: t,
			started_at: null,
			ended_at: null,
		};
		tx.run(
			`INSERT INTO tasks (id, seq, creator, chat_id, session_id, agent, prompt, input_json, new_session_json, priority, status, parent_task_id, attempt, created_at, updated_at)
			 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?)`,
			[row.id, seq, row.creator, row.chat_id, row.session_id, row.agent, row.prompt, row.input_json, row.new_session_json, row.priority, parent, attempt, t, t],
		);
		return row;
	}

	get(id: string): TaskRow | undefined {
		return this.store.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]);
	}

	/** Tasks matching the filter, in creation order (with `limit`: the newest that many, still in order). */
	list(filter: TaskFilter = {}): TaskRow[] {
		const where: string[] = [];
		const params: (string | number)[] = [];
		if (filter.status !== undefined) {
			const statuses = typeof filter.status === 'string' ? [filter.status] : filter.status;
			where.push(`status IN (${statuses.map(() => '?').join(', ')})`);
			params.push(...statuses);
		}
		if (filter.chatId !== undefined) {
			where.push('chat_id = ?');
			params.push(filter.chatId);
		}
		if (filter.sessionId !== undefined) {
			where.push('session_id = ?');
			params.push(filter.sessionId);
		}
		const clause = where.length ? `WHERE ${where.join(' AND ')}` : '';
		if (filter.limit !== undefined) {
			params.push(filter.limit);
			return this.store.all<TaskRow>(`SELECT * FROM (SELECT * FROM tasks ${clause} ORDER BY seq DESC LIMIT ?) ORDER BY seq`, params);
		}
		return this.store.all<TaskRow>(`SELECT * FROM tasks ${clause} ORDER BY seq`, params);
	}

	/** Queued tasks in the order the dispatcher considers them: higher priority first, then FIFO. */
	queued(): TaskRow[] {
		return this.store.all<TaskRow>(`SELECT * FROM tasks WHERE status = 'queued' ORDER BY priority DESC, seq`);
	}

	/** Ended tasks, the most recently ended first. */
	recent(limit = 50): TaskRow[] {
		return this.store.all<TaskRow>(`SELECT * FROM tasks WHERE status IN ('done', 'failed', 'cancelled', 'interrupted') ORDER BY COALESCE(ended_at, updated_at) DESC, seq DESC LIMIT ?`, [limit]);
	}

	/** queued → running. Returns the claimed row, or nothing when the task is not (any more) queued. */
	claim(id: string): TaskRow | undefined {
		const t = this.now();
		return this.store.write((tx) => {
			if (tx.run(`UPDATE tasks SET status = 'running', started_at = ?, updated_at = ? WHERE id = ? AND status = 'queued'`, [t, t, id]) === 0) {
				return undefined;
			}
			return tx.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]);
		});
	}

	/** Records the chat a chat-less task was given (while it is queued). */
	assignChat(id: string, chatId: string, sessionId: string): boolean {
		return this.update(`chat_id = ?, session_id = ?`, [chatId, sessionId], id, ['queued']);
	}

	/** Records the turn running a task, as soon as it is known. */
	setTurn(id: string, turnId: string): boolean {
		return this.update('turn_id = ?', [turnId], id, ['running']);
	}

	/** running → an end. False when the task was not running (ended already). */
	finish(id: string, end: TaskEnd): boolean {
		const t = this.now();
		return this.update('status = ?, result = ?, error = ?, turn_id = COALESCE(?, turn_id), ended_at = ?', [end.status, end.result ?? null, end.error ?? null, end.turnId ?? null, t], id, ['running']);
	}

	/** A queued task's prompt, changed before it runs (a chat's queued message edited). False once it left the queue. */
	editQueued(id: string, input: PromptInput): boolean {
		const onlyText = !input.files?.length && !input.images?.length;
		return this.update('prompt = ?, input_json = ?', [input.text, onlyText ? null : JSON.stringify(input)], id, ['queued']);
	}

	/** queued → cancelled: it never runs. False when it was no longer queued. */
	cancelQueued(id: string): boolean {
		return this.update(`status = 'cancelled', ended_at = ?`, [this.now()], id, ['queued']);
	}

	/** queued → failed, for a task that could not be given a chat. */
	failQueued(id: string, error: string): boolean {
		return this.update(`status = 'failed', error = ?, ended_at = ?`, [error, this.now()], id, ['queued']);
	}

	/**
	 * Every `running` task becomes `interrupted`: called at start-up, when no turn of this process can be
	 * running yet, so those rows were left by a process that ended mid-turn. Returns their ids.
	 */
	markInterrupted(): string[] {
		const t = this.now();
		return this.store.write((tx) => {
			const ids = tx.all<{ id: string }>(`SELECT id FROM tasks WHERE status = 'running' ORDER BY seq`).map((r) => r.id);
			tx.run(`UPDATE tasks SET status = 'interrupted', error = COALESCE(error, 'Agent Tabs ended while this task was running.'), ended_at = ?, updated_at = ? WHERE status = 'running'`, [t, t]);
			return ids;
		});
	}

	/**
	 * A failed or interrupted task is retried as a NEW queued task (`parent_task_id` = it, `attempt` + 1, the
	 * same chat, agent, prompt and priority); the old row stays as it ended, so the history shows both. A task is
	 * retried at most once (a unique index): retrying it again names the retry, so two clicks never run it twice.
	 */
	retry(id: string): TaskRow {
		return this.store.write((tx) => {
			const old = tx.get<TaskRow>('SELECT * FROM tasks WHERE id = ?', [id]);
			if (!old) {
				throw new AgentTabsError('task/unknown', `There is no task ${id}.`);
			}
			if (old.status !== 'failed' && old.status !== 'interrupted') {
				throw new AgentTabsError('task/notRetryable', `Task ${id} is ${old.status}; only failed or interrupted tasks can be retried.`);
			}
			const earlier = tx.get<{ id: string; status: string }>('SELECT id, status FROM tasks WHERE parent_task_id = ?', [id]);
			if (earlier) {
				throw new AgentTabsError('task/alreadyRetried', `Task ${id} was already retried as task ${earlier.id} (${earlier.status}); retry that one instead if it failed too.`);
			}
			return this.insert(
				tx,
				{
					creator: old.creator,
					agent: old.agent,
					input: taskInput(old),
					chatId: old.chat_id ?? undefined,
					sessionId: old.session_id ?? undefined,
					newSession: taskNewSession(old),
					priority: old.priority,
				},
				old.id,
				old.attempt + 1,
			);
		});
	}

	private update(set: string, params: (string | number | null)[], id: string, from: readonly TaskStatus[]): boolean {
		const t = this.now();
		return this.store.write((tx) => tx.run(`UPDATE tasks SET ${set}, updated_at = ? WHERE id = ? AND status IN (${from.map(() => '?').join(', ')})`, [...params, t, id, ...from]) > 0);
	}
}
