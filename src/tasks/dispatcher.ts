import { AgentTabsError } from '../common/errors';
import { Emitter, logListenerErrors, type Event } from '../common/event';
import { Disposable } from '../common/lifecycle';
import { errorMessage, type Logger } from '../common/log';
import { SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import { endedTaskStatuses, taskCreators, taskInput, TasksRepo, type NewTask, type TaskEnd, type TaskFilter, type TaskRow } from '../db/tasksRepo';
import { shutdownAbortReason, type PromptInput, type TurnStatus } from '../protocol/turns';

/** How a turn run for a task ended. `turnId` is absent when the turn never started (cancelled first). */
export interface TaskTurnResult {
	status: TurnStatus;
	turnId?: string;
	/** A short summary of the agent's answer, kept on the task. */
	summary?: string;
	error?: string;
}

/**
 * The turn layer as the dispatcher sees it: runs one turn of `agent` in an existing chat. Aborting `signal`
 * cancels the turn (before the agent has it, or through the protocol); the promise still resolves with how
 * the turn ended. `onTurnStarted` reports the transcript turn as soon as it is known.
 */
export interface TaskTurnRunner {
	runTurn(chatId: string, agent: string, input: PromptInput, options: { signal: AbortSignal; onTurnStarted?: (turnId: string) => void }): Promise<TaskTurnResult>;
}

export interface ResolvedChat {
	chatId: string;
	sessionId: string;
	/** The folder its agents work in (the session's ready worktree). */
	worktreePath: string;
	/** The session was made for this task (not one the task named). */
	madeSession?: boolean;
}

/**
 * Gives a task that has no chat one, before it runs: a new chat in the session it names, or a new session
 * (its own worktree) from its `new_session_json`. Throws in plain words when it cannot; the task then fails.
 */
export interface TaskChatResolver {
	ensureChat(task: TaskRow): Promise<ResolvedChat>;
	/** A chat made for a task that was cancelled meanwhile: undo what was made for it (a session with no work, the chat). */
	release?(chat: ResolvedChat): Promise<void>;
}

export interface DispatcherLimits {
	/** Turns running at once across everything (and chats being created for tasks). Default 4. */
	maxConcurrent: number;
	/** Turns running at once in one worktree (the chats of one session). Default 2. */
	maxPerWorktree: number;
}

export interface DispatcherOptions extends Partial<DispatcherLimits> {
	store: Store;
	logger: Logger;
	runner: TaskTurnRunner;
	chats: TaskChatResolver;
	/** A task that names no chat, no session and no new session gets a new session from this repository. */
	defaultRepo?: string;
	/** How long `stop` waits for a cancelled turn to end before leaving its task to the next start. Default 15 s. */
	stopTimeoutMs?: number;
	/**
	 * Takes the secrets this process knows out of a prompt before it is stored (API keys never reach the
	 * database). The agent still gets the prompt as given when it runs in the process that added it.
	 */
	redact?: (input: PromptInput) => PromptInput;
}

/** What `add` takes: the prompt and where it goes. Exactly one of chat, session or new session decides where. */
export type TaskRequest = Omit<NewTask, 'id'>;

export interface TaskChange {
	/** The task as it is now. */
	task: TaskRow;
}

interface Running {
	task: TaskRow;
	chatId: string;
	worktreeKey: string;
	abort: AbortController;
	/** Why it was aborted: a user's cancel ends it `cancelled`, shutdown ends it `interrupted` (retryable). */
	reason?: 'cancel' | 'shutdown';
	done: Promise<void>;
}

// One turn per worktree by default, as in the window: each turn's worktree diff is then exactly its own.
const defaultLimits: DispatcherLimits = { maxConcurrent: 4, maxPerWorktree: 1 };

/**
 * Runs every task, whoever created it, through the turn runner. Order and limits:
 *  - one running turn per chat; a chat's tasks run in the order they were created;
 *  - among chats, the higher priority first, then FIFO (a chat competes with the priority of its oldest task);
 *  - at most `maxPerWorktree` turns per worktree and `maxConcurrent` overall.
 * A task without a chat is given one by the resolver before it runs. Every transition is a conditional write
 * (see TasksRepo), so nothing runs twice: queued tasks survive a restart and run after `start()`; a task
 * found running at `start()` was cut off and becomes `interrupted`, offered for retry, never re-run by itself.
 */
export class Dispatcher extends Disposable {
	private readonly _onDidChange = this._register(new Emitter<TaskChange>((e) => logListenerErrors(this.options.logger, '[Dispatcher][onDidChange]')(e)));
	readonly onDidChange: Event<TaskChange> = this._onDidChange.event;

	readonly tasks: TasksRepo;
	private readonly sessions: SessionsRepo;
	private limits: DispatcherLimits;
	private readonly running = new Map<string, Running>();
	private readonly runningChats = new Set<string>();
	/** Tasks being given a chat, with the work doing it. */
	private readonly resolving = new Map<string, Promise<void>>();
	/** Prompts as given, for tasks added by this process (the row holds them redacted). */
	private readonly givenInputs = new Map<string, PromptInput>();
	/** Ends the store refused to record (it stopped accepting writes): `whenEnded` still learns them. */
	private readonly unrecordedEnds = new Map<string, TaskEnd>();
	private readonly waiters = new Set<{ check: () => boolean; resolve: () => void; reject: (e: Error) => void }>();
	private started = false;
	private reclaimed = false;
	private stopping = false;
	private pumping = false;
	private pumpAgain = false;
	/** Worktrees where work that must not share the folder with an agent runs (a rewind): no task starts there. */
	private readonly heldWorktrees = new Map<string, number>();

	constructor(private readonly options: DispatcherOptions) {
		super();
		this.tasks = new TasksRepo(options.store);
		this.sessions = new SessionsRepo(options.store);
		this.limits = checkedLimits({ maxConcurrent: options.maxConcurrent ?? defaultLimits.maxConcurrent, maxPerWorktree: options.maxPerWorktree ?? defaultLimits.maxPerWorktree });
	}

	/** The chats whose tasks run now in the chat's worktree (this chat's included); empty when none does. */
	runningInWorktreeOf(chatId: string): string[] {
		const key = this.worktreeKey(chatId);
		return [...this.running.values()].filter((r) => r.worktreeKey === key).map((r) => r.chatId);
	}

	/**
	 * Runs `work` with no task running in the chat's worktree and none starting there until it ends: for what
	 * changes the folder under every chat of the session at once (a rewind). Refuses (`worktree/busy`, naming
	 * the chats) while a task runs there.
	 */
	async exclusive<T>(chatId: string, work: () => Promise<T>): Promise<T> {
		const busy = this.runningInWorktreeOf(chatId);
		if (busy.length > 0) {
			const names = busy.map((id) => this.sessions.getChat(id)?.title ?? id);
			throw new AgentTabsError('worktree/busy', `An agent is working in this session's worktree (${names.map((n) => `"${n}"`).join(', ')}). Wait for its turn to end or cancel it, then try again.`);
		}
		const key = this.worktreeKey(chatId);
		this.heldWorktrees.set(key, (this.heldWorktrees.get(key) ?? 0) + 1);
		try {
			return await work();
		} finally {
			const n = (this.heldWorktrees.get(key) ?? 1) - 1;
			if (n > 0) {
				this.heldWorktrees.set(key, n);
			} else {
				this.heldWorktrees.delete(key);
			}
			this.pump();
		}
	}

	/** Turns running now. */
	get runningCount(): number {
		return this.running.size;
	}

	isRunning(taskId: string): boolean {
		return this.running.has(taskId);
	}

	/**
	 * Starts dispatching. Tasks still `running` in the store were cut off by the end of an earlier process:
	 * they become `interrupted` (returned) and wait for a retry. Queued tasks then run.
	 */
	async start(): Promise<string[]> {
		if (this.started) {
			return [];
		}
		this.started = true;
		const interrupted = await this.reclaimInterrupted();
		this.pump();
		return interrupted;
	}

	/**
	 * Tasks still `running` in the store were cut off by the end of an earlier process (this one holds the
	 * writer lock and has run nothing yet): they become `interrupted` (returned), offered for retry. `start()`
	 * does this first; a command that changes tasks without running the queue (`task retry`, `task cancel`)
	 * does it alone, so a task a killed command left `running` can be retried at once. Once per dispatcher.
	 */
	async reclaimInterrupted(): Promise<string[]> {
		if (this.reclaimed || this.running.size > 0) {
			return [];
		}
		this.reclaimed = true;
		const interrupted = this.tasks.markInterrupted();
		await this.options.store.durable();
		for (const id of interrupted) {
			// Info, not a warning: the surfaces say it to the person (the Tasks view, the CLI's own line with the retry command).
			this.options.logger.info(`[Dispatcher] task ${id} was running when Agent Tabs last ended; it is interrupted and can be retried`);
			this.changed(id);
		}
		return interrupted;
	}

	/** New limits (from settings); they apply to the next task started, running turns are not stopped. */
	setLimits(limits: Partial<DispatcherLimits>): void {
		this.limits = checkedLimits({ ...this.limits, ...limits });
		this.pump();
	}

	/** Queues a task; resolves once it is on disk (it may already be running). */
	async add(request: TaskRequest): Promise<TaskRow> {
		this.refuseWhenStopping();
		const valid = this.validate(request);
		const row = this.tasks.create({ ...valid, input: this.options.redact?.(valid.input) ?? valid.input });
		this.givenInputs.set(row.id, valid.input);
		await this.options.store.durable();
		this.options.logger.info(`[Dispatcher] task ${row.id} queued (${row.creator}, ${row.agent}${row.chat_id ? `, chat ${row.chat_id}` : ''}, priority ${row.priority})`);
		this.changed(row.id);
		this.pump();
		return this.tasks.get(row.id) ?? row;
	}

	/**
	 * Cancels a task: a queued one never runs; a running one has its turn cancelled and ends `cancelled` once
	 * the turn stops (wait with `whenEnded`). A task that already ended is refused in plain words.
	 */
	async cancel(taskId: string): Promise<TaskRow> {
		const run = this.running.get(taskId);
		this.options.logger.info(`[Dispatcher] task ${taskId}: cancel asked (${run ? 'running' : (this.tasks.get(taskId)?.status ?? 'unknown')})`);
		if (run) {
			run.reason ??= 'cancel';
			run.abort.abort();
			return this.tasks.get(taskId) ?? run.task;
		}
		const row = this.requireTask(taskId);
		if (row.status === 'cancelled') {
			return row;
		}
		if (row.status !== 'queued' || !this.tasks.cancelQueued(taskId)) {
			throw new AgentTabsError('task/ended', `Task ${taskId} has already ended (${row.status}); there is nothing to cancel.`);
		}
		this.givenInputs.delete(taskId);
		await this.options.store.durable();
		this.options.logger.info(`[Dispatcher] task ${taskId} cancelled before it ran`);
		this.changed(taskId);
		this.pump();
		return this.requireTask(taskId);
	}

	/**
	 * Changes the prompt of a task that has not started (a chat's queued message, edited). Refused in plain
	 * words once it left the queue: what runs is exactly what was shown.
	 */
	async editQueued(taskId: string, input: PromptInput): Promise<TaskRow> {
		if (typeof input.text !== 'string' || !input.text.trim()) {
			throw new AgentTabsError('task/noPrompt', 'A queued prompt cannot be empty; remove it instead.');
		}
		if (!this.tasks.editQueued(taskId, this.options.redact?.(input) ?? input)) {
			throw new AgentTabsError('task/notQueued', 'That message was already sent or removed.');
		}
		this.givenInputs.set(taskId, input);
		await this.options.store.durable();
		this.changed(taskId);
		return this.requireTask(taskId);
	}

	/** Cancels a task only while it is queued (a chat's queued message, removed); a running one is left alone. */
	async removeQueued(taskId: string): Promise<TaskRow> {
		if (this.running.has(taskId) || !this.tasks.cancelQueued(taskId)) {
			throw new AgentTabsError('task/notQueued', 'That message was already sent or removed.');
		}
		this.givenInputs.delete(taskId);
		await this.options.store.durable();
		this.changed(taskId);
		this.pump();
		return this.requireTask(taskId);
	}

	/** Retries a failed or interrupted task as a new queued task (see TasksRepo.retry); returns the new task. */
	async retry(taskId: string): Promise<TaskRow> {
		this.refuseWhenStopping();
		const row = this.tasks.retry(taskId);
		await this.options.store.durable();
		this.options.logger.info(`[Dispatcher] task ${taskId} retried as ${row.id} (attempt ${row.attempt})`);
		this.changed(row.id);
		this.pump();
		return this.tasks.get(row.id) ?? row;
	}

	get(taskId: string): TaskRow | undefined {
		return this.tasks.get(taskId);
	}

	list(filter?: TaskFilter): TaskRow[] {
		return this.tasks.list(filter);
	}

	/** Resolves with the task once it has ended (done, failed, cancelled or interrupted). */
	async whenEnded(taskId: string): Promise<TaskRow> {
		this.requireTask(taskId);
		await this.wait(() => this.unrecordedEnds.has(taskId) || endedTaskStatuses.includes(this.tasks.get(taskId)?.status ?? 'done'));
		const row = this.requireTask(taskId);
		const end = this.unrecordedEnds.get(taskId);
		// The store kept it `running` (the next start marks it interrupted); this process knows how it ended.
		return end && row.status === 'running' ? { ...row, status: end.status, result: end.result ?? null, error: end.error ?? null, turn_id: end.turnId ?? row.turn_id } : row;
	}

	/** Resolves once nothing is queued, being given a chat or running (the CLI's "run the queue until empty"). */
	whenIdle(): Promise<void> {
		return this.wait(() => this.running.size === 0 && this.resolving.size === 0 && this.tasks.queued().length === 0);
	}

	/**
	 * Shutdown, first of the core: takes and starts no more tasks, lets running turns finish for up to
	 * `graceMs` (default 0), then cancels the rest; they end `interrupted` (offered for retry). Resolves when
	 * they ended, or after `stopTimeoutMs`, leaving a turn that ignores its cancel to the next `start()`.
	 * Then the factory disposes the pool and closes the store.
	 */
	async stop(options: { graceMs?: number } = {}): Promise<void> {
		this.stopping = true;
		const all = (): Promise<unknown> => Promise.allSettled([...this.resolving.values(), ...[...this.running.values()].map((r) => r.done)]);
		if ((options.graceMs ?? 0) > 0) {
			await raceTimeout(all(), options.graceMs!);
		}
		for (const run of this.running.values()) {
			run.reason ??= 'shutdown';
			run.abort.abort(shutdownAbortReason);
		}
		const left = await raceTimeout(all(), this.options.stopTimeoutMs ?? 15_000);
		if (!left && this.running.size > 0) {
			this.options.logger.warn(`[Dispatcher] ${this.running.size} turn(s) did not stop in time; their tasks are marked interrupted on the next start`);
		}
		this.rejectWaiters();
	}

	override dispose(): void {
		this.stopping = true;
		for (const run of this.running.values()) {
			run.reason ??= 'shutdown';
			run.abort.abort(shutdownAbortReason);
		}
		this.rejectWaiters();
		super.dispose();
	}

	// --- choosing what runs -------------------------------------------------------------------------------

	private pump(): void {
		if (!this.started || this.stopping || this.isDisposed) {
			return;
		}
		// Listeners of onDidChange may add or cancel tasks while a pass runs: they ask for another pass rather
		// than start one inside it (whose counts would be stale).
		if (this.pumping) {
			this.pumpAgain = true;
			return;
		}
		this.pumping = true;
		try {
			do {
				this.pumpAgain = false;
				this.dispatchReady();
			} while (this.pumpAgain && !this.stopping);
		} catch (e) {
			this.options.logger.error(`[Dispatcher] could not start queued tasks: ${errorMessage(e)}`);
		} finally {
			this.pumping = false;
		}
	}

	private dispatchReady(): void {
		const queued = this.tasks.queued();
		// A chat's tasks run in creation order: only its oldest queued task may start.
		const headOfChat = new Map<string, number>();
		for (const task of queued) {
			if (task.chat_id && (headOfChat.get(task.chat_id) ?? Infinity) > task.seq) {
				headOfChat.set(task.chat_id, task.seq);
			}
		}
		const perWorktree = new Map<string, number>();
		for (const run of this.running.values()) {
			perWorktree.set(run.worktreeKey, (perWorktree.get(run.worktreeKey) ?? 0) + 1);
		}
		for (const task of queued) {
			if (this.running.size + this.resolving.size >= this.limits.maxConcurrent) {
				return;
			}
			if (this.resolving.has(task.id)) {
				continue;
			}
			const chatId = task.chat_id;
			if (!chatId) {
				if (task.creator === 'chat') {
					this.failUnresolvable(task, `The chat of task ${task.id} was deleted before it ran.`);
				} else {
					this.resolve(task);
				}
				continue;
			}
			if (this.runningChats.has(chatId) || headOfChat.get(chatId) !== task.seq) {
				continue;
			}
			const worktreeKey = this.worktreeKey(chatId);
			if ((perWorktree.get(worktreeKey) ?? 0) >= this.limits.maxPerWorktree || this.heldWorktrees.has(worktreeKey)) {
				continue;
			}
			const claimed = this.tasks.claim(task.id);
			if (!claimed) {
				continue;
			}
			perWorktree.set(worktreeKey, (perWorktree.get(worktreeKey) ?? 0) + 1);
			this.launch(claimed, chatId, worktreeKey);
		}
	}

	/** Chats of one session share its worktree; a chat whose session has none counts on its own. */
	private worktreeKey(chatId: string): string {
		const wd = this.sessions.workingDirectory(chatId);
		return wd?.worktreeId ? `worktree:${wd.worktreeId}` : wd ? `session:${wd.sessionId}` : `chat:${chatId}`;
	}

	private resolve(task: TaskRow): void {
		const work = (async () => {
			try {
				const chat = await this.options.chats.ensureChat(task);
				if (this.tasks.assignChat(task.id, chat.chatId, chat.sessionId)) {
					this.options.logger.info(`[Dispatcher] task ${task.id} was given chat ${chat.chatId} in session ${chat.sessionId}`);
				} else if (this.tasks.get(task.id)?.status === 'cancelled') {
					// Cancelled while its chat was being made: it never runs, so what was made for it goes again.
					this.options.logger.info(`[Dispatcher] task ${task.id} was cancelled while chat ${chat.chatId} was made for it; releasing it`);
					await this.options.chats.release?.(chat).catch((e) => this.options.logger.warn(`[Dispatcher] could not release chat ${chat.chatId} of cancelled task ${task.id}: ${errorMessage(e)}`));
				}
				await this.options.store.durable();
			} catch (e) {
				this.options.logger.warn(`[Dispatcher] task ${task.id} could not be given a chat: ${errorMessage(e)}`);
				this.failUnresolvable(task, `Task ${task.id} could not be given a chat to run in: ${errorMessage(e)}`);
			}
		})();
		this.resolving.set(task.id, work);
		void work.finally(() => {
			this.resolving.delete(task.id);
			this.changed(task.id);
			this.pump();
		});
	}

	private failUnresolvable(task: TaskRow, error: string): void {
		try {
			this.givenInputs.delete(task.id);
			if (this.tasks.failQueued(task.id, error)) {
				this.changed(task.id);
			}
		} catch (e) {
			this.options.logger.error(`[Dispatcher] could not record that task ${task.id} failed: ${errorMessage(e)}`);
		}
	}

	// --- running ----------------------------------------------------------------------------------------

	private launch(task: TaskRow, chatId: string, worktreeKey: string): void {
		const run: Running = { task, chatId, worktreeKey, abort: new AbortController(), done: Promise.resolve() };
		this.running.set(task.id, run);
		this.runningChats.add(chatId);
		this.options.logger.info(`[Dispatcher] task ${task.id} started in chat ${chatId}`);
		this.changed(task.id);
		run.done = this.execute(run).finally(() => {
			this.givenInputs.delete(task.id);
			this.running.delete(task.id);
			this.runningChats.delete(chatId);
			this.changed(task.id);
			this.pump();
		});
	}

	private async execute(run: Running): Promise<void> {
		const { task } = run;
		let end: TaskEnd;
		try {
			const result = await this.options.runner.runTurn(run.chatId, task.agent, this.givenInputs.get(task.id) ?? taskInput(task), {
				signal: run.abort.signal,
				onTurnStarted: (turnId) => {
					try {
						this.tasks.setTurn(task.id, turnId);
						this.changed(task.id);
					} catch (e) {
						this.options.logger.warn(`[Dispatcher] could not record the turn of task ${task.id}: ${errorMessage(e)}`);
					}
				},
			});
			end = taskEnd(result, run.reason);
		} catch (e) {
			end = { status: run.reason === 'shutdown' ? 'interrupted' : run.reason === 'cancel' ? 'cancelled' : 'failed', error: errorMessage(e) };
		}
		try {
			this.tasks.finish(task.id, end);
			await this.options.store.durable();
			this.options.logger.info(`[Dispatcher] task ${task.id} ${end.status}${end.error ? `: ${end.error}` : ''}`);
		} catch (e) {
			// Left `running` in the store: the next start marks it interrupted.
			this.unrecordedEnds.set(task.id, end);
			this.options.logger.error(`[Dispatcher] could not record the end (${end.status}) of task ${task.id}: ${errorMessage(e)}`);
		}
	}

	// --- helpers ----------------------------------------------------------------------------------------

	private validate(request: TaskRequest): Parameters<TasksRepo['create']>[0] {
		if (!taskCreators.includes(request.creator)) {
			throw new AgentTabsError('task/badCreator', `"${String(request.creator)}" is not a task creator; use one of ${taskCreators.join(', ')}.`);
		}
		if (typeof request.agent !== 'string' || !request.agent.trim()) {
			throw new AgentTabsError('task/noAgent', 'A task needs an agent to run it.');
		}
		if (typeof request.input?.text !== 'string' || !request.input.text.trim()) {
			throw new AgentTabsError('task/noPrompt', 'A task needs a prompt; this one is empty.');
		}
		const priority = request.priority ?? 0;
		if (!Number.isSafeInteger(priority)) {
			throw new AgentTabsError('task/badPriority', `A task's priority is a whole number (higher runs first), not "${String(request.priority)}".`);
		}
		let sessionId = request.sessionId;
		if (request.chatId !== undefined) {
			const chat = this.sessions.getChat(request.chatId);
			if (!chat) {
				throw new AgentTabsError('chat/unknown', `There is no chat ${request.chatId}.`);
			}
			if (sessionId !== undefined && sessionId !== chat.session_id) {
				throw new AgentTabsError('task/chatNotInSession', `Chat ${request.chatId} belongs to session ${chat.session_id}, not ${sessionId}.`);
			}
			sessionId = chat.session_id;
		} else if (request.creator === 'chat') {
			throw new AgentTabsError('task/noChat', 'A chat task needs the chat it was typed in.');
		}
		if (sessionId !== undefined && !this.sessions.get(sessionId)) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId}.`);
		}
		let newSession = request.newSession;
		if (newSession !== undefined && sessionId !== undefined) {
			throw new AgentTabsError('task/twoTargets', 'A task goes to a chat, a session or a new session, not several.');
		}
		if (sessionId === undefined) {
			newSession ??= this.options.defaultRepo ? { repo: this.options.defaultRepo } : undefined;
			if (!newSession || typeof newSession.repo !== 'string' || !newSession.repo.trim()) {
				throw new AgentTabsError('task/noTarget', 'A task needs a chat, a session, or a repository to start a new session in.');
			}
		}
		return { creator: request.creator, agent: request.agent.trim(), input: request.input, chatId: request.chatId, sessionId, newSession, priority };
	}

	private requireTask(taskId: string): TaskRow {
		const row = this.tasks.get(taskId);
		if (!row) {
			throw new AgentTabsError('task/unknown', `There is no task ${taskId}.`);
		}
		return row;
	}

	private refuseWhenStopping(): void {
		if (this.stopping || this.isDisposed) {
			throw new AgentTabsError('dispatcher/stopped', 'Agent Tabs is shutting down and takes no new tasks.');
		}
	}

	private changed(taskId: string): void {
		const task = this.tasks.get(taskId);
		if (task) {
			this._onDidChange.fire({ task });
		}
		for (const waiter of [...this.waiters]) {
			if (waiter.check()) {
				this.waiters.delete(waiter);
				waiter.resolve();
			}
		}
	}

	private wait(check: () => boolean): Promise<void> {
		if (check()) {
			return Promise.resolve();
		}
		if (this.stopping || this.isDisposed) {
			return Promise.reject(new AgentTabsError('dispatcher/stopped', 'Agent Tabs is shutting down; the task will not end in this run.'));
		}
		return new Promise((resolve, reject) => this.waiters.add({ check, resolve, reject }));
	}

	private rejectWaiters(): void {
		for (const waiter of [...this.waiters]) {
			this.waiters.delete(waiter);
			if (waiter.check()) {
				waiter.resolve();
			} else {
				waiter.reject(new AgentTabsError('dispatcher/stopped', 'Agent Tabs is shutting down; the task will not end in this run.'));
			}
		}
	}
}

function taskEnd(result: TaskTurnResult, reason: Running['reason']): TaskEnd {
	const common = { result: result.summary, turnId: result.turnId };
	switch (result.status) {
		case 'done':
			return { ...common, status: 'done' };
		case 'cancelled':
			return { ...common, status: reason === 'shutdown' ? 'interrupted' : 'cancelled', error: reason === 'shutdown' ? 'Agent Tabs shut down while this task was running.' : undefined };
		default:
			return { ...common, status: reason === 'shutdown' ? 'interrupted' : 'failed', error: result.error ?? `The turn ended as ${result.status}.` };
	}
}

function checkedLimits(limits: DispatcherLimits): DispatcherLimits {
	for (const [name, value] of Object.entries(limits)) {
		if (!Number.isSafeInteger(value) || value < 1) {
			throw new AgentTabsError('task/badLimit', `The task limit ${name} must be a whole number of at least 1, not ${String(value)}.`);
		}
	}
	return limits;
}

/** Resolves true when `work` settled within `ms`, false otherwise. */
async function raceTimeout(work: Promise<unknown>, ms: number): Promise<boolean> {
	let timer: NodeJS.Timeout | undefined;
	try {
		return await Promise.race([work.then(() => true), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)))]);
	} finally {
		clearTimeout(timer);
	}
}
