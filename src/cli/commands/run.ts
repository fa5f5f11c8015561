import * as path from 'node:path';
import { AgentTabsError } from '../../common/errors';
import { errorMessage, type Logger } from '../../common/log';
import type { AgentEvent } from '../../protocol/agentEvents';
import { PermissionBroker, type PermissionPolicy } from '../../agents/permissions';
import { Core } from '../../tasks/core';
import { flag, type ParsedArgs } from '../args';
import { loadDefinitions, openStore, out, requireFolder, worktreeOptions, type CliCommand } from '../shared';

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
		default:
			return undefined;
	}
}

async function run(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const repoDir = path.resolve(flag(args, 'repo')!);
	const agentId = flag(args, 'agent')!;
	const prompt = flag(args, 'prompt')!;
	requireFolder(repoDir, 'The repository folder');
	const definitions = loadDefinitions(args);
	const def = definitions.find((d) => d.id === agentId);
	if (!def) {
		throw new AgentTabsError('agent/unknown', `There is no agent "${agentId}". Known agents: ${definitions.map((d) => d.id).join(', ')}.`);
	}
	const policy = (flag(args, 'permissions') ?? 'reject') as PermissionPolicy;
	const store = await openStore(args, logger);
	const permissions = new PermissionBroker({ default: policy, timeoutMs: 1 }, logger);
	let core: Core;
	try {
		core = new Core(store, {
			logger,
			owner: 'agent-tabs run',
			interruptedTurnReason: 'Agent Tabs stopped while this turn was running.',
			worktrees: worktreeOptions(args),
			definitions: () => definitions,
			permissions,
		});
	} catch (e) {
		permissions.dispose();
		await store.close();
		throw e;
	}
	const { sessions, worktrees, turns } = core;
	const onSignal = (): void => {
		logger.warn('[cli] interrupted; cancelling the turn');
		void turns.cancel(chatId, def.id);
	};
	let chatId = '';
	try {
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
			sessionId = chat.session_id;
			chatId = chat.id;
		}
		await worktrees.recoverInterrupted().catch((e) => logger.error(`[cli][recover] ${errorMessage(e)}`));
		let createdSession: string | undefined;
		if (!sessionId) {
			const created = await worktrees.createSession({ repo: repoDir, title: prompt.split('\n')[0]!.slice(0, 60) || 'agent-tabs run' });
			sessionId = created.session.id;
			if (created.note) {
				process.stderr.write(`agent-tabs: ${created.note}\n`);
			}
			createdSession = sessionId;
		}
		if (!chatId) {
			chatId = sessions.createChat({ sessionId, agent: def.id, title: def.label }).id;
		}
		process.once('SIGINT', onSignal);
		process.once('SIGTERM', onSignal);
		const sub = turns.onDidEvent((e) => {
			if (e.chatId !== chatId) {
				return;
			}
			if (json) {
				out(true, { type: 'event', seq: e.seq, turnId: e.turnId, event: e.event }, '');
			} else {
				const line = describe(e.event);
				if (line !== undefined) {
					process.stdout.write(e.event.type === 'text' ? e.event.text : `\n${line}\n`);
				}
			}
		});
		const outcome = await turns.runTurn(chatId, def.id, { text: prompt }).catch(async (e: unknown) => {
			// The agent never ran: the session this run made for it goes again, unless it somehow holds work.
			if (createdSession && (await worktrees.discardNewSession(createdSession).catch(() => false))) {
				logger.info(`[cli][run] removed the session ${createdSession} made for this run`);
			}
			throw e;
		});
		sub.dispose();
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
		};
		out(json, end, `\n— ${outcome.status} (${outcome.result.stopReason})${outcome.result.error ? `: ${outcome.result.error}` : ''}\n  chat ${chatId} · session ${outcome.sessionId} · ${outcome.cwd}`);
		return outcome.status === 'done' && outcome.result.stopReason === 'end_turn' ? 0 : 1;
	} finally {
		process.off('SIGINT', onSignal);
		process.off('SIGTERM', onSignal);
		await core.shutdown();
		permissions.dispose();
	}
}

/** `run`. */
export const runCommands: CliCommand[] = [
	{
		words: ['run'],
		flags: {
			repo: { type: 'string', value: '<dir>', required: true, help: 'the repository' },
			agent: { type: 'string', value: '<id>', required: true, help: 'the agent (see --agents)' },
			prompt: { type: 'string', value: '<text>', required: true, help: 'the prompt (a prompt starting with a dash: --prompt=-text)' },
			session: { type: 'string', value: '<id>', help: 'run in this existing session' },
			chat: { type: 'string', value: '<id>', help: 'continue this chat' },
			permissions: { type: 'string', value: 'reject|allow', choices: ['reject', 'allow'], help: 'how agents\' permission requests are answered (default reject): the command line never prompts' },
		},
		summary: 'run one turn of an agent (in a new session and worktree unless --session/--chat)',
		run,
	},
];
