import { AgentTabsError } from '../../common/errors';
import type { Logger } from '../../common/log';
import { SessionsRepo } from '../../db/sessionsRepo';
import { TranscriptRepo } from '../../db/transcriptRepo';
import type { ParsedArgs } from '../args';
import { openStore, out, worktreeService, type CliCommand } from '../shared';

async function rewind(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const [chatId, seqText] = args.positionals;
	if (!/^[1-9]\d*$/.test(seqText ?? '')) {
		throw new AgentTabsError('cli/usage', `The turn to rewind to is a number (1 for the chat's first turn), not "${seqText ?? ''}".`);
	}
	const store = await openStore(args, logger);
	try {
		const sessions = new SessionsRepo(store);
		const chat = chatId ? sessions.getChat(chatId) : undefined;
		if (!chat) {
			throw new AgentTabsError('chat/unknown', chatId ? `There is no chat ${chatId}.` : 'rewind needs a chat id and a turn number.');
		}
		const turn = new TranscriptRepo(store).listTurns(chat.id).find((t) => t.seq === Number(seqText));
		if (!turn?.checkpoint_before) {
			throw new AgentTabsError('checkpoint/missing', `Chat ${chat.id} has no checkpoint before turn ${seqText ?? '?'}.`);
		}
		const where = sessions.workingDirectory(chat.id);
		const cwd = where?.cwd;
		if (!cwd) {
			const why =
				where?.worktreeState === 'removed'
					? `The session of chat ${chat.id} is archived (its work is saved): agent-tabs session restore ${where.sessionId}, then rewind.`
					: where?.worktreeState === 'missing'
						? `The worktree folder of chat ${chat.id} is gone (deleted or moved outside Agent Tabs), so there is nothing to rewind.`
						: 'The chat has no worktree to rewind.';
			throw new AgentTabsError('chat/noFolder', why);
		}
		const r = await worktreeService(store, args, logger).rewind(cwd, turn.checkpoint_before);
		await store.durable();
		out(json, { chatId: chat.id, turn: turn.seq, restoredFrom: turn.checkpoint_before, ...r }, `Rewound ${r.files.length} files to before turn ${turn.seq}; the replaced state is kept in ${r.replacedRef}.`);
		return 0;
	} finally {
		await store.close();
	}
}

/** `rewind`. */
export const rewindCommands: CliCommand[] = [
	{
		words: ['rewind'],
		args: ['chatId', 'turn'],
		summary: 'put the worktree back to how it was before turn <turn> of that chat',
		details: '(what it replaces is kept under a private ref first)',
		run: rewind,
	},
];
