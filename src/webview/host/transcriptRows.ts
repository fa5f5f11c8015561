/**
 * Transcript rows (as the recorder writes them) in the protocol's shape. Kept apart from the pool adapter
 * because whatever runs chats later (the dispatcher) shows the same rows.
 */
import * as path from 'node:path';
import type { ChatNoticeRow } from '../../db/chatNoticesRepo';
import type { MessageRow, TurnRow } from '../../db/transcriptRepo';
import type { ChatRow } from '../../protocol/messages';

/** A stored message's JSON content; anything damaged reads as empty rather than failing the whole chat. */
export function parse(content: string): Record<string, unknown> {
	try {
		const v = JSON.parse(content) as unknown;
		return typeof v === 'object' && v !== null ? (v as Record<string, unknown>) : {};
	} catch {
		return {};
	}
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/**
 * What the agent layer stores when an agent names no tool call or permission request (English, in the
 * transcript): the tab gets an empty title instead and says it in VS Code's language.
 */
const untitledToolCall = 'Tool call';
const untitledPermission = 'The agent asks for permission';
const titled = (v: unknown, untitled: string): string => {
	const title = str(v);
	return title === undefined || title === untitled ? '' : title;
};
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** A turn as rows: its header, then each message the recorder wrote (meta notices are not rows). */
export function turnRows(turn: TurnRow, messages: readonly MessageRow[], cwd?: string): ChatRow[] {
	const rows: ChatRow[] = [turnHeaderRow(turn)];
	for (const m of messages) {
		const row = messageRow(turn, m, cwd);
		if (row) {
			rows.push(row);
		}
	}
	return rows;
}

/** A turn's header row (its number, agent, status and whether it can be rewound), first of its rows. */
export function turnHeaderRow(turn: TurnRow): ChatRow {
	return {
		id: turn.id,
		turnId: turn.id,
		order: [turn.seq, -1],
		kind: 'turn',
		number: turn.seq,
		agent: turn.agent,
		status: turn.status,
		...(turn.stop_reason ? { stopReason: turn.stop_reason } : {}),
		...(turn.error ? { error: turn.error } : {}),
		canRewind: turn.checkpoint_before !== null,
		startedAt: turn.started_at,
		...(turn.ended_at !== null ? { endedAt: turn.ended_at } : {}),
	};
}

/** Where a chat-level row shown after the first `turns` turns goes (`ChatRow.order`): after all of their rows. */
export function looseRowOrder(turns: number): [number, number] {
	return [turns, Number.MAX_SAFE_INTEGER];
}

/** Paths as the user knows them: relative to the worktree when inside it (agents report absolute ones). */
function shownPath(p: string, cwd: string | undefined): string {
	if (!cwd || !path.isAbsolute(p)) {
		return p;
	}
	const rel = path.relative(cwd, p);
	return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : p;
}

/** One stored message as a row, or undefined for what is not shown (meta notices: modes, commands). */
export function messageRow(turn: TurnRow, m: MessageRow, cwd: string | undefined): ChatRow | undefined {
	const c = parse(m.content);
	const base = { id: m.id, turnId: turn.id, order: [turn.seq, m.seq] as [number, number] };
	switch (m.kind) {
		case 'user':
			return { ...base, kind: 'user', text: str(c.text) ?? '' };
		case 'text':
		case 'reasoning':
			return { ...base, kind: m.kind, text: str(c.text) ?? '' };
		case 'tool_call': {
			const files = new Set<string>();
			for (const loc of Array.isArray(c.locations) ? c.locations : []) {
				const p = str((loc as { path?: unknown }).path);
				if (p) {
					files.add(shownPath(p, cwd));
				}
			}
			for (const part of Array.isArray(c.content) ? c.content : []) {
				const p = (part as { type?: unknown; path?: unknown }).type === 'diff' ? str((part as { path?: unknown }).path) : undefined;
				if (p) {
					files.add(shownPath(p, cwd));
				}
			}
			return {
				...base,
				kind: 'tool_call',
				toolCallId: m.tool_call_id ?? str(c.toolCallId) ?? m.id,
				title: titled(c.title, untitledToolCall),
				...(str(c.kind) ? { toolKind: c.kind as never } : {}),
				...(str(c.status) ? { status: c.status as never } : {}),
				...(str(c.stoppedWithTurn) ? { stopped: true as const } : {}),
				files: [...files],
			};
		}
		case 'plan':
			return { ...base, kind: 'plan', entries: Array.isArray(c.entries) ? (c.entries as never) : [] };
		case 'permission':
			return {
				...base,
				kind: 'permission',
				requestId: str(c.requestId) ?? m.id,
				title: titled(c.title, untitledPermission),
				...(str(c.kind) ? { toolKind: c.kind as never } : {}),
				options: Array.isArray(c.options) ? (c.options as never) : [],
				...(c.decision && typeof c.decision === 'object' ? { decision: c.decision as never } : {}),
			};
		case 'file_edit':
			return { ...base, kind: 'file_edit', path: shownPath(str(c.path) ?? '', cwd), editKind: (str(c.kind) ?? 'modify') as never, source: (str(c.source) ?? 'watcher') as never };
		case 'usage':
			return {
				...base,
				kind: 'usage',
				...(num(c.inputTokens) !== undefined ? { inputTokens: num(c.inputTokens) } : {}),
				...(num(c.outputTokens) !== undefined ? { outputTokens: num(c.outputTokens) } : {}),
				...(num(c.usedTokens) !== undefined ? { usedTokens: num(c.usedTokens) } : {}),
				...(num(c.contextSize) !== undefined ? { contextSize: num(c.contextSize) } : {}),
			};
		case 'notice':
			if (typeof c.state === 'string') {
				return undefined;
			}
			return {
				...base,
				kind: 'notice',
				severity: (str(c.severity) ?? 'info') as never,
				title: str(c.title) ?? '',
				...(str(c.description) ? { description: str(c.description) } : {}),
				...(str(c.stopReason) ? { stopReason: str(c.stopReason) } : {}),
				...(str(c.compactionId) ? { compaction: str(c.status) ?? 'in_progress' } : {}),
			};
		case 'error':
			return { ...base, kind: 'error', message: str(c.message) ?? '', ...(str(c.code) ? { code: str(c.code) } : {}), retryable: true };
		case 'raw':
			return { ...base, kind: 'raw', method: str(c.method) ?? 'unknown' };
		default:
			return undefined;
	}
}

/** A stored chat-level row (`chat_notices`) as the tab shows it, after the turns that came before it. */
export function noticeRow(n: ChatNoticeRow): ChatRow {
	const c = parse(n.row_json);
	const place = { id: n.id, turnId: null, order: looseRowOrder(n.after_turns) };
	if (c.kind === 'error' && typeof c.message === 'string') {
		return { ...place, kind: 'error', message: c.message, ...(typeof c.code === 'string' ? { code: c.code } : {}), retryable: c.retryable === true };
	}
	if (c.kind === 'notice' && typeof c.title === 'string') {
		const severity = c.severity === 'warning' || c.severity === 'error' ? c.severity : 'info';
		return { ...place, kind: 'notice', severity, title: c.title, ...(typeof c.description === 'string' ? { description: c.description } : {}) };
	}
	return { ...place, kind: 'notice', severity: 'warning', title: 'A stored notice of this chat could not be read.' };
}
