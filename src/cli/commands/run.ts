import * as path from 'node:path';
import { AgentTabsError } from '../../common/errors';
import type { IDisposable } from '../../common/lifecycle';
import { errorMessage, type Logger } from '../../common/log';
import type { PermissionPolicy } from '../../agents/permissions';
import type { TurnOutcome } from '../../tasks/turnRunner';
import { samePath } from '../../worktrees/paths';
import { flag, type ParsedArgs } from '../args';
import { loadDefinitions, onEndingSignal, openCore, out, promptOf, requireAgent, requireFolder, silenceFlag, writeErr, type CliCommand } from '../shared';
import { printEvents, runQueueUntilEnded } from './task';

async function run(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const repoDir = path.resolve(flag(args, 'repo')!);
	const agentId = flag(args, 'agent')!;
	requireFolder(repoDir, 'The repository folder');
	const definitions = loadDefinitions(args);
	const def = requireAgent(definitions, agentId);
	// After the checks: someone typing the prompt learns of a wrong folder or agent first.
	const prompt = await promptOf(args);
	const { core, close } = await openCore(args, logger, { owner: 'agent-tabs run', policy: (flag(args, 'permissions') ?? 'reject') as PermissionPolicy, definitions });
	const { sessions, worktrees, turns, dispatcher } = core;
	let taskId: string | undefined;
	let interrupted = false;
	const onSignal = (): void => {
		interrupted = true;
		logger.warn('[cli] interrupted; cancelling the turn');
		if (taskId) {
			void dispatcher.cancel(taskId).catch(() => dispatcher.stop());
		}
	};
	let chatId = '';
	let signals: IDisposable | undefined;
	try {
		// Listening from the start: Ctrl-C while the session is being made ends the command cleanly (what it made
		// goes again), not by the signal's default in the middle of a git command.
		signals = onEndingSignal(onSignal);
		let sessionId = flag(args, 'session');
		if (sessionId && !sessions.get(sessionId)) {
			throw new AgentTabsError('session/unknown', `There is no session ${sessionId}.`);
		}
		const givenChat = flag(args, 'chat');
		if (givenChat) {
			const chat = sessions.getChat(givenChat);
			if (!chat) {
				throw new AgentTabsError('chat/unknown', `There is no chat ${givenChat}.`);
			}
			if (sessionId && chat.session_id !== sessionId) {
				throw new AgentTabsError('cli/usage', `Chat ${givenChat} belongs to session ${chat.session_id}, not ${sessionId}.`);
			}
			if (chat.agent !== def.id) {
				// --chat continues the chat's conversation, which is its agent's: another agent would start it anew.
				throw new AgentTabsError('cli/usage', `Chat ${givenChat} is a conversation with ${chat.agent}, not ${def.id}; --chat continues it, so run it with --agent ${chat.agent} (or leave out --chat for a new chat).`);
			}
			sessionId = chat.session_id;
			chatId = chat.id;
		}
		const session = sessionId ? sessions.get(sessionId) : undefined;
		if (session?.repo_root && !samePath(await worktrees.resolveRepository(repoDir).catch(() => repoDir), session.repo_root)) {
			throw new AgentTabsError('cli/usage', `Session ${session.id} works in ${session.repo_root}, not in ${repoDir}; name its repository with --repo (or leave out --session for a new session in ${repoDir}).`);
		}
		if (session?.status === 'archived') {
			// Said before a chat and a task are made for a turn that cannot run (its session has no worktree).
			throw new AgentTabsError('task/sessionArchived', `Session ${session.id} is archived, so a turn cannot run in it now: restore it first (agent-tabs session restore ${session.id}).`);
		}
		await worktrees.recoverInterrupted().catch((e) => logger.error(`[cli][recover] ${errorMessage(e)}`));
		let createdSession: string | undefined;
		if (!sessionId) {
			const created = await worktrees.createSession({ repo: repoDir, title: prompt.split('\n')[0]!.slice(0, 60) || 'agent-tabs run' });
			sessionId = created.session.id;
			if (created.note) {
				writeErr(`agent-tabs: ${created.note}\n`);
			}
			createdSession = sessionId;
		}
		if (!chatId) {
			chatId = sessions.createChat({ sessionId, agent: def.id, title: def.label }).id;
		}
		if (interrupted) {
			if (createdSession && (await worktrees.discardNewSession(createdSession).catch(() => false))) {
				logger.info(`[cli][run] removed the session ${createdSession} made for this run`);
			}
			throw new AgentTabsError('task/cancelled', 'Cancelled before the turn started; nothing was queued.');
		}
		const sub = printEvents(turns, () => chatId, json);
		let outcome: TurnOutcome | undefined;
		const ran = core.taskTurns.onDidRunTurn((e) => e.chatId === chatId && (outcome = e.outcome));
		// The turn is a task (creator `cli`) like every prompt: the queue runs, and this command waits for its task.
		const task = await dispatcher.add({ creator: 'cli', agent: def.id, input: { text: prompt }, chatId });
		taskId = task.id;
		if (interrupted) {
			// Ctrl-C while the task was being written: it never runs (the queue would run it next time).
			await dispatcher.cancel(task.id);
		}
		// Reported as soon as this task ends, not after the other tasks this command started.
		let code = 1;
		let notStarted: AgentTabsError | undefined;
		await runQueueUntilEnded(
			dispatcher,
			task.id,
			async (ended) => {
				sub.dispose();
				ran.dispose();
				if (!outcome) {
					// The agent never ran: the session this run made for it goes again, unless it somehow holds work.
					if (createdSession && (await worktrees.discardNewSession(createdSession).catch(() => false))) {
						logger.info(`[cli][run] removed the session ${createdSession} made for this run`);
					}
					// Cancelled (Ctrl-C before the turn started): exit 1, as a cancelled turn; otherwise a setup error.
					notStarted = new AgentTabsError(ended.status === 'cancelled' ? 'task/cancelled' : 'task/notStarted', ended.error ?? `The turn never started (its task ended ${ended.status}).`);
					return;
				}
				code = reportTurnEnd(outcome, ended.id);
			},
			logger,
		).finally(() => {
			sub.dispose();
			ran.dispose();
		});
		if (notStarted) {
			throw notStarted;
		}
		return code;
	} finally {
		signals?.dispose();
		await close();
	}

	function reportTurnEnd(outcome: TurnOutcome, taskId: string): number {
		const end = {
			type: 'turn_end',
			stopReason: outcome.result.stopReason,
			status: outcome.status,
			error: outcome.result.error,
			chatId,
			sessionId: outcome.sessionId,
			turnId: outcome.turn.id,
			cwd: outcome.cwd,
			backendSessionId: outcome.result.backendSessionId,
			taskId,
		};
		out(json, end, `\n— ${outcome.status} (${outcome.result.stopReason})${outcome.result.error ? `: ${outcome.result.error}` : ''}\n  chat ${chatId} · session ${outcome.sessionId} · ${outcome.cwd}`);
		return outcome.status === 'done' && outcome.result.stopReason === 'end_turn' ? 0 : 1;
	}
}

/** `run`. */
export const runCommands: CliCommand[] = [
	{
		words: ['run'],
		flags: {
			repo: { type: 'string', value: '<dir>', required: true, help: 'the repository' },
			agent: { type: 'string', value: '<id>', required: true, help: 'the agent (see --agents)' },
			prompt: { type: 'string', value: '<text>', required: true, help: 'the prompt; - reads it from standard input (a prompt starting with a dash: --prompt=-text)' },
			session: { type: 'string', value: '<id>', help: 'run in this existing session' },
			chat: { type: 'string', value: '<id>', help: 'continue this chat' },
			permissions: { type: 'string', value: 'reject|allow', choices: ['reject', 'allow'], help: 'how agents\' permission requests are answered (default reject): the command line never prompts' },
			'silence-minutes': silenceFlag,
		},
		summary: 'run one turn of an agent (in a new session and worktree unless --session/--chat)',
		run,
	},
];
