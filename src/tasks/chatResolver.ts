import { AgentTabsError } from '../common/errors';
import type { Logger } from '../common/log';
import { SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import { taskNewSession, type TaskRow } from '../db/tasksRepo';
import { WorktreesRepo } from '../db/worktreesRepo';
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

	constructor(
		store: Store,
		private readonly worktrees: WorktreeService,
		private readonly logger: Logger,
	) {
		this.sessions = new SessionsRepo(store);
		this.worktreeRows = new WorktreesRepo(store);
	}

	async ensureChat(task: TaskRow): Promise<ResolvedChat> {
		let sessionId = task.session_id;
		if (sessionId === null) {
			const request = taskNewSession(task);
			if (!request) {
				throw new AgentTabsError('task/noTarget', `Task ${task.id} names no chat, no session and no repository for a new session.`);
			}
			const created = await this.worktrees.createSession({ repo: request.repo, title: request.title ?? taskTitle(task), baseRef: request.baseRef });
			sessionId = created.session.id;
			this.logger.info(`[Tasks][resolve] task ${task.id}: new session ${sessionId} in ${created.worktree.path}`);
		} else if (!this.sessions.get(sessionId)) {
			throw new AgentTabsError('session/unknown', `Session ${sessionId} no longer exists.`);
		}
		const worktree = this.worktreeRows.forSession(sessionId);
		if (worktree?.state !== 'ready') {
			throw new AgentTabsError(
				'session/noWorktree',
				`Session ${sessionId} has ${worktree ? `its worktree in the state "${worktree.state}"` : 'no worktree'}, and agents work only inside their session's worktree. Restore the session first.`,
			);
		}
		// Not made durable here: the dispatcher records the chat on the task and then waits for both, so a kill
		// in between never leaves a chat on disk that its task does not know (it would make another one).
		const chat = this.sessions.createChat({ sessionId, agent: task.agent, title: taskTitle(task) });
		return { chatId: chat.id, sessionId, worktreePath: worktree.path };
	}
}
