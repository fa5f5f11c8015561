import * as path from 'node:path';
import type { PermissionPolicy } from '../../agents/permissions';
import { AgentTabsError } from '../../common/errors';
import type { IDisposable } from '../../common/lifecycle';
import { errorMessage, type Logger } from '../../common/log';
import { StoreLockedError } from '../../db/lock';
import { endedTaskStatuses, TasksRepo, taskStatuses, type TaskRow, type TaskStatus } from '../../db/tasksRepo';
import type { AgentEvent } from '../../protocol/agentEvents';
import type { Core } from '../../tasks/core';
import type { Dispatcher } from '../../tasks/dispatcher';
import { commandName, flag, hasFlag, UsageError, type FlagTable, type ParsedArgs } from '../args';
import { loadDefinitions, onEndingSignal, openCore, openStore, out, promptOf, requireAgent, requireFolder, silenceFlag, writeErr, writeOut, type CliCommand } from '../shared';

/** What an agent event looks like in a terminal. */
function describe(event: AgentEvent): string | undefined {
	switch (event.type) {
		case 'text':
			return event.text;
		case 'reasoning':
			return `(thinking) ${event.text}`;
		case 'tool_call':
			return `[tool] ${event.title}${event.status ? ` (${event.status})` : ''}`;
		case 'tool_update':
			return event.status ? `[tool ${event.toolCallId}] ${event.status}` : undefined;
		case 'plan':
			return `[plan] ${event.entries.map((e) => `${e.status === 'completed' ? '✓' : '·'} ${e.content}`).join('; ')}`;
		case 'permission_request':
			return `[permission] ${event.title}`;
		case 'permission_decision':
			return `[permission] ${event.outcome === 'selected' ? event.optionId : 'cancelled'} (${event.decidedBy})`;
		case 'file_edit':
			return `[edit] ${event.kind} ${event.path} (${event.source})`;
		case 'error':
			return `[error] ${event.message}`;
		case 'notice':
			return `[${event.severity}] ${event.title}${event.description ? `: ${event.description}` : ''}`;
		case 'compaction':
			// Its summary streams in chunks: said once per change of status, not once per chunk.
			return event.status ? `[compaction] ${event.status}${event.error ? `: ${event.error}` : ''}` : undefined;
		default:
			return undefined;
	}
}

/** Streams the events of the chat `chatId()` names (known once a task has one) to stdout, as `run` always has. */
export function printEvents(turns: Core['turns'], chatId: () => string | null | undefined, json: boolean): IDisposable {
	return turns.onDidEvent((e) => {
		if (e.chatId !== chatId()) {
			return;
		}
		if (json) {
			out(true, { type: 'event', seq: e.seq, turnId: e.turnId, event: e.event }, '');
		} else {
			const line = describe(e.event);
			if (line !== undefined) {
				writeOut(e.event.type === 'text' ? e.event.text : `\n${line}\n`);
			}
		}
	});
}

/**
 * Runs the queue (this process holds the state, so no window does) until task `taskId` has ended, and reports
 * it at once (`onEnded`); then takes no new task and gives the turns it started for other tasks a while to
 * finish: those still running are then stopped and end interrupted, to be retried (`task work`).
 */
export async function runQueueUntilEnded(dispatcher: Dispatcher, taskId: string, onEnded: (ended: TaskRow) => Promise<void> | void, logger: Logger): Promise<TaskRow> {
	await dispatcher.start();
	const ended = await dispatcher.whenEnded(taskId);
	await onEnded(ended);
	const others = dispatcher.runningCount - (dispatcher.isRunning(taskId) ? 1 : 0);
	if (others > 0) {
		logger.info(`[cli] ${others} other task(s) this command started are still running: waiting up to ${otherTasksGraceMs / 1000} s, then they end interrupted (run them again with "agent-tabs task work")`);
	}
	await dispatcher.stop({ graceMs: otherTasksGraceMs });
	return ended;
}

/** How long a command that got what it waited for lets the other tasks' turns it started finish. */
const otherTasksGraceMs = 10_000;

function firstLine(text: string): string {
	const line = text.trim().split('\n', 1)[0]!.trim();
	return line.length > 60 ? `${line.slice(0, 59)}…` : line;
}

function describeTask(t: TaskRow): string {
	return `${t.id}  ${t.status.padEnd(11)} ${t.agent.padEnd(10)} ${String(t.priority).padStart(3)}  ${firstLine(t.prompt)}`;
}

function taskDetails(t: TaskRow): string {
	const time = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString());
	return [
		`task ${t.id} · ${t.status}${t.attempt > 1 ? ` · attempt ${t.attempt} (retries ${t.parent_task_id})` : ''}`,
		`  agent ${t.agent} · priority ${t.priority} · created by ${t.creator}`,
		`  chat ${t.chat_id ?? '-'} · session ${t.session_id ?? '-'} · turn ${t.turn_id ?? '-'}`,
		`  created ${time(t.created_at)} · started ${time(t.started_at)} · ended ${time(t.ended_at)}`,
		...(t.error ? [`  error: ${t.error}`] : []),
		...(t.result ? [`  result: ${t.result}`] : []),
		'',
		t.prompt,
	].join('\n');
}

/**
 * The core for a command that writes tasks. Another process holding the state folder (a VS Code window, or a
 * command running the queue) is the only writer: say so plainly, and where a window runs the queue itself.
 */
async function openTaskCore(args: ParsedArgs<CliCommand>, logger: Logger, what: string, policy?: PermissionPolicy): Promise<Awaited<ReturnType<typeof openCore>>> {
	try {
		return await openCore(args, logger, { owner: `agent-tabs ${commandName(args.command)}`, policy });
	} catch (e) {
		if (!(e instanceof StoreLockedError)) {
			throw e;
		}
		const window = e.holder.owner.startsWith('a VS Code window');
		throw new AgentTabsError(
			'store/locked',
			`Cannot ${what} while ${e.holder.owner} holds the state: ${e.message}` +
				(window ? ' That window runs the queue itself: add and manage tasks there (Agent Tabs: New Task, the Tasks view).' : '') +
				' task list and task show work meanwhile.',
		);
	}
}

function policyOf(args: ParsedArgs<CliCommand>): PermissionPolicy {
	return (flag(args, 'permissions') ?? 'reject') as PermissionPolicy;
}

async function add(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const chatId = flag(args, 'chat');
	const sessionId = flag(args, 'session');
	const repo = flag(args, 'repo');
	const title = flag(args, 'title');
	const targets = [chatId && '--chat', sessionId && '--session', repo && '--repo'].filter(Boolean);
	if (targets.length !== 1) {
		throw new UsageError(
			targets.length === 0 ? '"task add" needs where the task runs: --chat <id>, --session <id>, or --repo <dir> for a new session.' : `"task add" takes one of --chat, --session and --repo, not ${targets.join(' and ')}.`,
			args.command,
		);
	}
	if (title !== undefined && !repo) {
		throw new UsageError('--title names the new session a task starts, so it goes with --repo.', args.command);
	}
	const priorityText = flag(args, 'priority');
	const priority = priorityText === undefined ? 0 : Number(priorityText);
	if (priorityText !== undefined && (!/^-?\d+$/.test(priorityText.trim()) || !Number.isSafeInteger(priority))) {
		throw new UsageError(`--priority is a whole number (higher runs first), not "${priorityText}".`, args.command);
	}
	const repoDir = repo === undefined ? undefined : path.resolve(repo);
	if (repoDir) {
		requireFolder(repoDir, 'The repository folder');
	}
	const agent = requireAgent(loadDefinitions(args), flag(args, 'agent')!).id;
	const wait = hasFlag(args, 'wait');
	const prompt = await promptOf(args);
	const { core, close } = await openTaskCore(args, logger, 'add a task', policyOf(args));
	if (repoDir) {
		// A folder that is no repository (or a bare one) is said now, not as the task's failure whenever it runs.
		await core.worktrees.resolveRepository(repoDir).catch(async (e: unknown) => {
			await close();
			throw e;
		});
	}
	// A task cannot run in an archived session (it has no worktree), but restoring it before the queue runs is
	// legitimate: a task queued for later is accepted with a warning; one to run now (--wait) is refused.
	const targetSession = sessionId ?? (chatId === undefined ? undefined : core.sessions.getChat(chatId)?.session_id);
	const archived = targetSession !== undefined && core.sessions.get(targetSession)?.status === 'archived' ? targetSession : undefined;
	if (archived && wait) {
		await close();
		throw new AgentTabsError(
			'task/sessionArchived',
			`Session ${archived} is archived, so a task cannot run in it now: restore it first (agent-tabs session restore ${archived}), or queue the task without --wait and restore the session before the queue runs.`,
		);
	}
	const { dispatcher } = core;
	let taskId: string | undefined;
	let interrupted = false;
	const onSignal = (): void => {
		interrupted = true;
		logger.warn('[cli] interrupted; cancelling the task');
		void (taskId ? dispatcher.cancel(taskId) : Promise.resolve()).catch(() => dispatcher.stop());
	};
	const reportEnd = (t: TaskRow): void => out(json, { type: 'task_end', ...t }, `\n— task ${t.id} ${t.status}${t.error ? `: ${t.error}` : ''}\n  chat ${t.chat_id ?? '-'} · session ${t.session_id ?? '-'}`);
	// Listening before the task is queued: Ctrl-C while it is being written cancels it once it is on disk,
	// instead of ending the command with the task left queued, to run whenever the queue next runs.
	const signals = onEndingSignal(onSignal);
	try {
		const task = await dispatcher.add({ creator: 'cli', agent, input: { text: prompt }, chatId, sessionId, newSession: repoDir ? { repo: repoDir, title } : undefined, priority });
		taskId = task.id;
		if (interrupted) {
			reportEnd(await dispatcher.cancel(task.id));
			return 1;
		}
		if (archived) {
			writeErr(`agent-tabs: warning: session ${archived} is archived; task ${task.id} runs only once it is restored (agent-tabs session restore ${archived}), and fails if the queue runs before that.\n`);
		}
		if (!wait) {
			out(json, { type: 'task', ...task }, `Task ${task.id} queued. It runs when a VS Code window holding this state opens, or with: agent-tabs task work`);
			return 0;
		}
		// Running the queue now, as task work does: a new session a killed command left half made is rolled back first.
		await core.worktrees.recoverInterrupted().catch((e: unknown) => logger.error(`[cli][recover] ${errorMessage(e)}`));
		const sub = printEvents(core.turns, () => dispatcher.get(task.id)?.chat_id, json);
		const ended = await runQueueUntilEnded(
			dispatcher,
			task.id,
			(t) => {
				sub.dispose();
				reportEnd(t);
			},
			logger,
		).finally(() => sub.dispose());
		return ended.status === 'done' ? 0 : 1;
	} finally {
		signals.dispose();
		await close();
	}
}

/** Runs every queued task (and those queued meanwhile) until none is left; exit 1 when one of them did not end done. */
async function work(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const { core, close } = await openTaskCore(args, logger, 'run the queue', policyOf(args));
	const { dispatcher } = core;
	const onSignal = (): void => {
		logger.warn('[cli] interrupted; stopping: running tasks end interrupted and can be retried');
		void dispatcher.stop();
	};
	let failed = false;
	const ended = new Set<string>();
	// A running task changes more than once (its turn is linked to it): it is said to have started once.
	const started = new Set<string>();
	const report = ({ task }: { task: TaskRow }): void => {
		if (task.status === 'running' && !json && !started.has(task.id)) {
			started.add(task.id);
			writeOut(`started  ${describeTask(task)}\n`);
		}
		// A task that failed before its turn started (its repository or session could not be had) counts too.
		if (endedTaskStatuses.includes(task.status) && (task.started_at !== null || task.status === 'failed') && !ended.has(task.id)) {
			ended.add(task.id);
			failed ||= task.status !== 'done';
			out(json, { type: 'task_end', ...task }, `ended    ${describeTask(task)}${task.error ? `\n         ${task.error}` : ''}`);
		}
	};
	let sub: IDisposable | undefined;
	let signals: IDisposable | undefined;
	try {
		signals = onEndingSignal(onSignal);
		// Tasks an earlier command left running are said to be interrupted, not reported as tasks this one ran.
		reportInterrupted(await dispatcher.reclaimInterrupted());
		// A new session a killed command left half made (a task's) is rolled back before tasks are given sessions.
		await core.worktrees.recoverInterrupted().catch((e: unknown) => logger.error(`[cli][recover] ${errorMessage(e)}`));
		sub = dispatcher.onDidChange(report);
		await dispatcher.start();
		await dispatcher.whenIdle();
		if (!json) {
			writeOut(`The queue is empty (${ended.size} task${ended.size === 1 ? '' : 's'} ran).\n`);
		}
		return failed ? 1 : 0;
	} catch (e) {
		if (e instanceof AgentTabsError && e.code === 'dispatcher/stopped') {
			return 1;
		}
		throw e;
	} finally {
		sub?.dispose();
		signals?.dispose();
		await close();
	}
}

/** Tasks found cut off by the end of an earlier process, now interrupted: said on stderr, with how to run them again. */
function reportInterrupted(ids: readonly string[]): void {
	for (const id of ids) {
		writeErr(`agent-tabs: task ${id} was running when Agent Tabs last ended; it is interrupted (agent-tabs task retry ${id} runs it again).\n`);
	}
}

async function cancelOrRetry(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const retry = args.command.words[1] === 'retry';
	const taskId = args.positionals[0]!;
	const { core, close } = await openTaskCore(args, logger, retry ? 'retry a task' : 'cancel a task');
	try {
		// This process holds the writer lock, so no task runs anywhere: one the store says is running was cut off
		// with the process that ran it (Ctrl-C twice, a kill), and can be retried now.
		reportInterrupted(await core.dispatcher.reclaimInterrupted());
		const row = core.dispatcher.get(taskId);
		if (!row) {
			throw new AgentTabsError('task/unknown', `There is no task ${taskId}.`);
		}
		if (retry) {
			const task = await core.dispatcher.retry(taskId);
			out(json, { type: 'task', ...task }, `Task ${taskId} is retried as task ${task.id} (attempt ${task.attempt}), queued. It runs when a VS Code window holding this state opens, or with: agent-tabs task work`);
		} else {
			const task = await core.dispatcher.cancel(taskId);
			out(json, { type: 'task', ...task }, `Task ${taskId} is cancelled; it will not run.`);
		}
		return 0;
	} finally {
		await close();
	}
}

async function read(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const store = await openStore(args, logger);
	try {
		const tasks = new TasksRepo(store);
		if (args.command.words[1] === 'show') {
			const taskId = args.positionals[0]!;
			const task = tasks.get(taskId);
			if (!task) {
				throw new AgentTabsError('task/unknown', `There is no task ${taskId}.`);
			}
			out(json, task, taskDetails(task));
		} else {
			const status = flag(args, 'status') as TaskStatus | undefined;
			for (const task of tasks.list(status ? { status } : {})) {
				out(json, task, describeTask(task));
			}
		}
		return 0;
	} finally {
		await store.close();
	}
}

const permissionsFlag: FlagTable[string] = { type: 'string', value: 'reject|allow', choices: ['reject', 'allow'], help: "how agents' permission requests are answered (default reject): the command line never prompts" };

/** `task add|list|show|cancel|retry|work`. */
export const taskCommands: CliCommand[] = [
	{
		words: ['task', 'add'],
		flags: {
			agent: { type: 'string', value: '<id>', required: true, help: 'the agent (see --agents)' },
			prompt: { type: 'string', value: '<text>', required: true, help: 'the prompt; - reads it from standard input (a prompt starting with a dash: --prompt=-text)' },
			chat: { type: 'string', value: '<id>', help: 'run in this chat (after its earlier tasks)' },
			session: { type: 'string', value: '<id>', help: 'run in a new chat of this session' },
			repo: { type: 'string', value: '<dir>', help: 'run in a new session (its own worktree) of this repository' },
			title: { type: 'string', value: '<t>', help: 'the new session\'s title (with --repo; default: the prompt\'s first line)' },
			priority: { type: 'string', value: '<n>', help: 'a whole number; higher runs first (default 0)' },
			wait: { type: 'boolean', help: 'run the queue here until this task ends, print its result (exit 1 unless it ended done)' },
			permissions: permissionsFlag,
			'silence-minutes': silenceFlag,
		},
		summary: 'queue a prompt for an agent as a task',
		details: 'A VS Code window holding the state runs the queue itself; otherwise task work (or --wait) runs it.',
		run: add,
	},
	{
		words: ['task', 'list'],
		flags: { status: { type: 'string', value: '<status>', choices: taskStatuses, help: `only tasks in this status: ${taskStatuses.join(', ')}` } },
		summary: 'list tasks (oldest first)',
		run: read,
		access: 'read',
	},
	{ words: ['task', 'show'], args: ['taskId'], summary: 'print a task: its prompt, where it ran and how it ended', run: read, access: 'read' },
	{ words: ['task', 'cancel'], args: ['taskId'], summary: 'cancel a queued task (it never runs)', run: cancelOrRetry },
	{ words: ['task', 'retry'], args: ['taskId'], summary: 'queue a failed or interrupted task again', run: cancelOrRetry },
	{
		words: ['task', 'work'],
		flags: { permissions: permissionsFlag, 'silence-minutes': silenceFlag },
		summary: 'run queued tasks until the queue is empty',
		details: 'Only without a VS Code window holding the state: such a window runs the queue itself.',
		run: work,
	},
];
