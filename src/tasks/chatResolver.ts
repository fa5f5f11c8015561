import { AgentTabsError } from '../common/errors';
import type { Logger } from '../common/log';
import { SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import { taskNewSession, type TaskRow } from '../db/tasksRepo';
import { TranscriptRepo } from '../db/transcriptRepo';
import { WorktreesRepo, type WorktreeRow } from '../db/worktreesRepo';
import type { WorktreeService } from '../worktrees/worktreeService';
import type { ResolvedChat, TaskChatResolver } from './dispatcher';

/** A tab title from a task: its first line, shortened. */
export function taskTitle(task: Pick<TaskRow, 'prompt'>): string {
	const line = task.prompt.trim().split('\n', 1)[0]!.trim();
	return line.length > 48 ? `${line.slice(0, 47)}…` : line || 'Task';
}

/**
 * Resolve-or-create with the real sessions and worktrees: a task naming a session gets a new chat (tab) in
 * it, provided the session's worktree is ready; a task naming neither gets a new session with its own
 * worktree (WorktreeService.createSession, on its own branch) and a chat in it.
 */
export class SessionChatResolver implements TaskChatResolver {
	private readonly sessions: SessionsRepo;
	private readonly worktreeRows: WorktreesRepo;
	private readonly transcript: TranscriptRepo;

	constructor(
		store: Store,
		private readonly worktrees: WorktreeService,
		private readonly logger: Logger,
	) {
		this.sessions = new SessionsRepo(store);
		this.worktreeRows = new WorktreesRepo(store);
		this.transcript = new TranscriptRepo(store);
	}

	async ensureChat(task: TaskRow): Promise<ResolvedChat> {
		// The chat made for a task has an id derived from it: a resolve that a kill cut off after the chat was on
		// disk and before the task named it finds that chat again, instead of making another (and another session).
		const chatId = chatIdForTask(task.id);
		const made = this.sessions.getChat(chatId);
		// A task that named no session had that chat's session made for it too (by the resolve that was cut off).
		const sessionMadeBefore = made !== undefined && task.session_id === null;
		if (made && made.closed_at === null) {
			return { chatId, sessionId: made.session_id, worktreePath: this.readyWorktree(made.session_id).path, madeSession: sessionMadeBefore };
		}
		let sessionId = task.session_id ?? made?.session_id ?? null;
		let madeSession = sessionMadeBefore;
		if (sessionId === null) {
			const request = taskNewSession(task);
			if (!request) {
				// Every task is added with a target (see Dispatcher.validate); only a delete takes it away.
				throw new AgentTabsError('task/targetDeleted', 'its chat or session was deleted before it ran.');
			}
			// Its id is derived from the task's too: a resolve cut off after the session was on disk and before its
			// chat was finds that session again, instead of making another worktree and branch for the same task.
			// One cut off while its worktree was still being made is left to the recovery of interrupted creations.
			const ownId = sessionIdForTask(task.id);
			madeSession = true;
			if (this.sessions.get(ownId) && this.worktreeRows.forSession(ownId)?.state === 'ready') {
				sessionId = ownId;
				this.logger.info(`[Tasks][resolve] task ${task.id}: session ${sessionId}, made for it by a resolve that was cut off`);
			} else {
				const id = this.sessions.get(ownId) ? undefined : ownId;
				const created = await this.worktrees.createSession({ id, repo: request.repo, title: request.title ?? taskTitle(task), baseRef: request.baseRef });
				sessionId = created.session.id;
				this.logger.info(`[Tasks][resolve] task ${task.id}: new session ${sessionId} in ${created.worktree.path}${created.note ? `; ${created.note}` : ''}`);
			}
		} else if (!this.sessions.get(sessionId)) {
			throw new AgentTabsError('session/unknown', `Session ${sessionId} no longer exists.`);
		}
		const worktree = this.readyWorktree(sessionId);
		// The dispatcher records the chat on the task, then waits for both to be on disk.
		// A closed one (its tab closed before the task ran) is not reused; the new chat's id is then random.
		const chat = this.sessions.createChat({ id: made ? undefined : chatId, sessionId, agent: task.agent, title: taskTitle(task) });
		return { chatId: chat.id, sessionId, worktreePath: worktree.path, madeSession };
	}

	/** The session made for a cancelled task goes again (unless it somehow holds work); a chat made in a named session is closed. */
	async release(chat: ResolvedChat): Promise<void> {
		if (chat.madeSession && this.holdsOnly(chat) && (await this.worktrees.discardNewSession(chat.sessionId))) {
			this.logger.info(`[Tasks][resolve] removed session ${chat.sessionId}, made for a task cancelled before it ran`);
			return;
		}
		this.sessions.closeChat(chat.chatId);
	}

	/**
	 * The session holds nothing but the task's chat, and that chat no turn: true of a session made a moment ago,
	 * and of one an earlier resolve made that was cut off, unless someone used it meanwhile (a window shows it).
	 */
	private holdsOnly(chat: ResolvedChat): boolean {
		const chats = this.sessions.listChats(chat.sessionId);
		return chats.length === 1 && chats[0]!.id === chat.chatId && this.transcript.listTurns(chat.chatId).length === 0;
	}

	private readyWorktree(sessionId: string): WorktreeRow {
		const worktree = this.worktreeRows.forSession(sessionId);
		if (worktree?.state !== 'ready') {
			throw new AgentTabsError(
				'session/noWorktree',
				`Session ${sessionId} has ${worktree ? `its worktree in the state "${worktree.state}"` : 'no worktree'}, and agents work only inside their session's worktree. Restore the session first.`,
			);
		}
		return worktree;
	}
}

/** The id of the session made for a task that names none (it gets one of its own). */
function sessionIdForTask(taskId: string): string {
	return `ses-${taskId.startsWith('task-') ? taskId.slice('task-'.length) : taskId}`;
}

/** The id of the chat made for a task (a task that names no chat gets one of its own). */
function chatIdForTask(taskId: string): string {
	return `chat-${taskId.startsWith('task-') ? taskId.slice('task-'.length) : taskId}`;
}
