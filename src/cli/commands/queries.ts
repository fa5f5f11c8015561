import { AgentTabsError } from '../../common/errors';
import type { Logger } from '../../common/log';
import { PendingChangesRepo } from '../../db/pendingChangesRepo';
import { SessionsRepo } from '../../db/sessionsRepo';
import { TranscriptRepo } from '../../db/transcriptRepo';
import { commandName, type ParsedArgs } from '../args';
import { openStore, out, writeOut, type CliCommand } from '../shared';

async function query(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const command = commandName(args.command);
	const store = await openStore(args, logger);
	try {
		const sessions = new SessionsRepo(store);
		if (command === 'sessions') {
			for (const s of sessions.list()) {
				out(json, s, `${s.id}  ${s.status.padEnd(8)} ${s.chat_count} chats  ${s.title}`);
			}
		} else if (command === 'chats') {
			for (const c of sessions.listAllChats()) {
				out(json, c, `${c.id}  ${c.agent.padEnd(10)} ${c.closed_at ? 'closed' : 'open  '}  ${c.session_title} / ${c.title}`);
			}
		} else if (command === 'show') {
			const chatId = args.positionals[0];
			const chat = chatId ? sessions.getChat(chatId) : undefined;
			if (!chat) {
				throw new AgentTabsError('chat/unknown', chatId ? `There is no chat ${chatId}.` : 'show needs a chat id.');
			}
			const transcript = new TranscriptRepo(store);
			for (const turn of transcript.listTurns(chat.id)) {
				const messages = transcript.listMessages(turn.id).map((m) => ({ ...m, content: JSON.parse(m.content) as Record<string, unknown> }));
				if (json) {
					out(true, { turn, messages }, '');
					continue;
				}
				writeOut(`\n## turn ${turn.seq} · ${turn.status}${turn.stop_reason ? ` (${turn.stop_reason})` : ''}\n`);
				let previousKind = '';
				for (const m of messages) {
					const c = m.content;
					if (c.continued === true && m.kind === previousKind) {
						writeOut(String(c.text)); // the rest of a long streamed message
						continue;
					}
					const text = m.kind === 'user' ? `> ${String(c.text)}` : m.kind === 'text' ? String(c.text) : m.kind === 'reasoning' ? `(thinking) ${String(c.text)}` : `[${m.kind}] ${JSON.stringify(c)}`;
					writeOut(`${previousKind ? '\n' : ''}${text}`);
					previousKind = m.kind;
				}
				writeOut('\n');
			}
		} else if (command === 'pending') {
			const sessionId = args.positionals[0];
			if (!sessionId || !sessions.get(sessionId)) {
				throw new AgentTabsError('session/unknown', sessionId ? `There is no session ${sessionId}.` : 'pending needs a session id.');
			}
			for (const p of new PendingChangesRepo(store).listForSession(sessionId)) {
				out(json, p, `${p.status.padEnd(8)} ${p.kind.padEnd(6)} ${p.path}  (${p.agent}, chat ${p.chat_id ?? '-'}${p.shared ? ', shared' : ''}, ${p.source})`);
			}
		}
		return 0;
	} finally {
		await store.close();
	}
}

/** `sessions`, `chats`, `show`, `pending`: reading commands. */
export const queryCommands: CliCommand[] = [
	{ words: ['sessions'], summary: 'list sessions', run: query, access: 'read' },
	{ words: ['chats'], summary: 'list chats', run: query, access: 'read' },
	{ words: ['show'], args: ['chatId'], summary: 'print a chat\'s transcript', run: query, access: 'read' },
	{ words: ['pending'], args: ['sessionId'], summary: 'list a session\'s pending changes', run: query, access: 'read' },
];
