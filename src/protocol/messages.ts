/**
 * THE host <-> webview contract. Only this file defines message shapes; the host side (`webview/host`) and
 * the app side (`webview/app/shared/rpc.ts`, over `protocol/rpcClient.ts`) each wrap it once. Requests are
 * answered exactly once; notifications are fire-and-forget and either complete snapshots or seq-numbered row
 * updates, because a hidden webview drops messages and must be able to resync from the database.
 *
 * Everything here is plain data (JSON-safe): no classes, no functions, no imports from db or agents. The row
 * types mirror the transcript rows (`db/transcriptRepo.ts`); the agent-event and turn types they carry come from
 * `protocol/agentEvents.ts` and `protocol/turns.ts` (pure types, so the browser bundle still needs nothing else).
 */

import type { PermissionOption, PlanEntry, ToolKind, ToolStatus } from './agentEvents';
import type { TurnStatus } from './turns';

export const protocolVersion = 4;

export type ViewKind = 'chat';

// ---------------------------------------------------------------------------------------------------------
// Transcript rows

// The agent-event and turn types the rows carry are the core's own, from this same folder.
export type { PermissionOption, PlanEntry, ToolKind, ToolStatus } from './agentEvents';
export type { TurnStatus } from './turns';

export interface PermissionDecision {
	outcome: 'selected' | 'cancelled';
	optionId?: string;
	decidedBy: 'user' | 'policy' | 'timeout' | 'cancel';
}

/** Fields every row has. `id` is stable: a later "row changed" with the same id replaces it in place. */
interface RowBase {
	id: string;
	/** The turn the row belongs to; null for chat-level rows (an agent that stopped between turns). */
	turnId: string | null;
	/**
	 * Where the row belongs in the transcript: [turn number, place in the turn] (the turn's header is -1;
	 * chat-level rows come after the turn before them). Updates arrive in the order rows changed, not the
	 * order they appear, so a row new to a view is put where this says. Without it, at the end.
	 */
	order?: [number, number];
}

/** One row of a chat's transcript. A turn row comes first, then that turn's messages in order. */
export type ChatRow =
	| (RowBase & {
			kind: 'turn';
			/** 1-based number of the turn in its chat. */
			number: number;
			agent: string;
			status: TurnStatus;
			stopReason?: string;
			error?: string;
			/** A checkpoint before the turn exists, so "Rewind to before this turn" can be offered. */
			canRewind: boolean;
			startedAt: number;
			endedAt?: number;
	  })
	| (RowBase & { kind: 'user'; text: string; attachments?: PromptAttachment[] })
	| (RowBase & { kind: 'text' | 'reasoning'; text: string })
	| (RowBase & {
			kind: 'tool_call';
			toolCallId: string;
			/** Empty when the agent gave none: the tab says "Tool call" in its own words. */
			title: string;
			toolKind?: ToolKind;
			status?: ToolStatus;
			/** It had not finished when its turn was cancelled, cut off or failed (its status is then `failed`). */
			stopped?: true;
			/** Worktree-relative paths the call touches (locations and diffs). */
			files: string[];
	  })
	| (RowBase & { kind: 'plan'; entries: PlanEntry[] })
	/** A permission's `title` is empty when the agent gave none: the tab says so in its own words. */
	| (RowBase & { kind: 'permission'; requestId: string; title: string; toolKind?: ToolKind; options: PermissionOption[]; decision?: PermissionDecision })
	| (RowBase & { kind: 'file_edit'; path: string; editKind: 'add' | 'modify' | 'delete'; source: 'fs_write' | 'tool_diff' | 'watcher' })
	| (RowBase & { kind: 'usage'; inputTokens?: number; outputTokens?: number; usedTokens?: number; contextSize?: number; costUsd?: number })
	| (RowBase & {
			kind: 'notice';
			severity: 'info' | 'warning' | 'error';
			title: string;
			description?: string;
			/** Set when the notice says why a turn stopped early (`max_tokens`, `refusal`…): the tab says it in its own words. */
			stopReason?: string;
			/** Set when the notice is a context compaction, to its status (`in_progress`, `completed`…): said in the tab's words too. */
			compaction?: string;
	  })
	/** An error's `message` is empty when the agent gave none: the tab says so in its own words. */
	| (RowBase & { kind: 'error'; message: string; code?: string; /** Retry sends the turn's prompt again. */ retryable: boolean })
	| (RowBase & { kind: 'raw'; method: string });

export type ChatRowKind = ChatRow['kind'];

// ---------------------------------------------------------------------------------------------------------
// Chat state

export type ChatStatus = 'idle' | 'running' | 'waitingForPermission';

export interface Choice {
	id: string;
	name: string;
}

export interface SlashCommandInfo {
	name: string;
	description: string;
	hint?: string;
}

/**
 * A session setting the agent offers as a choice (an ACP config option of type `select`), shown as a picker
 * labelled with its name. The model option is not one of these (it is `ChatMeta.models`); one of category
 * `mode` takes the place of the mode picker. An on/off (`boolean`) option is offered as the two choices
 * `"true"` and `"false"` (named On and Off).
 */
export interface ChatSetting {
	/** The agent's option id: what `chat/setConfigOption` names. */
	id: string;
	name: string;
	/** The agent's words for what it does (the picker's tooltip). */
	description?: string;
	category?: string;
	current: string;
	available: Choice[];
}

/** A message typed while a turn runs: it waits in the chat's queue and can be edited or removed until it is sent. */
export interface QueuedPrompt {
	id: string;
	text: string;
	attachments: PromptAttachment[];
}

/** Everything about a chat that is not a transcript row; always sent complete. */
export interface ChatMeta {
	chatId: string;
	title: string;
	/** The agent's id and the label to show. */
	agent: string;
	agentLabel: string;
	status: ChatStatus;
	modes: { current?: string; available: Choice[] };
	models: { current?: string; available: Choice[] };
	/**
	 * The agent's other settings (effort, its mode as a config option…), in the order it gives them. When one
	 * has category `mode`, `modes` offers nothing (one mode picker, the option's). Absent: none.
	 */
	settings?: ChatSetting[];
	commands: SlashCommandInfo[];
	queue: QueuedPrompt[];
	/** The chat was closed (its agent context ended); a new prompt starts a new context and says so. */
	closed: boolean;
	/**
	 * Permission requests (as their cards name them, `requestId`) not shown to be answered yet: the agent asked
	 * them while the chat already had as many open as are shown at once, and each waits for an earlier one to
	 * be settled. Their cards offer no answer until then. Absent: none.
	 */
	unshownPermissions?: string[];
}

/** A complete picture of a chat, always rebuilt from the database. */
export interface ChatSnapshot {
	chatId: string;
	/**
	 * Names the numbering. The sequence is the chat's, stored with its transcript rows (`row_seq`), so it
	 * holds across reloads and restarts; a webview that sees another epoch resyncs with a snapshot.
	 */
	epoch: string;
	/** The chat's sequence number the snapshot was read at: every row change up to it is included. */
	seq: number;
	rows: ChatRow[];
	meta: ChatMeta;
	/**
	 * A long chat's snapshot holds its last rows only: the rows placed before turn `earlierBefore`
	 * (`order[0]` below it) are not in `rows`, and the view asks for them (`chat/earlierRows`), so a tab shows
	 * at once whatever the chat's length. Absent: `rows` is the whole chat.
	 */
	earlierBefore?: number;
}

/** The answer to `chat/earlierRows`: the rows just before `before`, in order, read from the database now. */
export interface EarlierRows {
	rows: ChatRow[];
	/** Rows placed before this turn are still to come (ask again with it); absent: none are left. */
	earlierBefore?: number;
}

/**
 * "Row N appended" or "row N changed": `append` adds a row the view has not had (where `row.order` says),
 * `change` replaces the row with the same id in place. `seq` is the stored number of the row's change.
 */
export interface RowUpdate {
	chatId: string;
	epoch: string;
	seq: number;
	/**
	 * The seq of the update the host sent before this one for the chat (numbers skip: changes nobody sees,
	 * or several changes of one row read at once). A view that has not seen up to it missed something and
	 * resyncs. Without it, seq - 1.
	 */
	prevSeq?: number;
	op: 'append' | 'change';
	row: ChatRow;
	/**
	 * On a change of a streamed (text or reasoning) row whose text grew: `row.text` is only what follows the
	 * first `textFrom` characters, which the view has from the update before (a reply is not sent again whole
	 * each refresh). A view whose row is not exactly that long missed something and resyncs; a resync's
	 * updates and snapshots always carry whole rows, read from the database.
	 */
	textFrom?: number;
}

/**
 * The answer to `chat/open`: the whole chat, or (when `sinceSeq` is still known) the rows changed after it,
 * read from the database up to `seq`.
 */
export type ChatOpenResult = ({ kind: 'snapshot'; snapshot: ChatSnapshot } | { kind: 'updates'; updates: RowUpdate[]; meta: ChatMeta; seq?: number }) & {
	/**
	 * The unsent draft this window's host last heard from the chat's tab (redacted), if it heard one: newer
	 * than the tab's own state when the tab was hidden before it could keep it, or when the tab is new.
	 */
	draft?: ChatDraft;
};

/** An unsent message: its text and what it attaches. */
export interface ChatDraft {
	draft: string;
	attachments?: PromptAttachment[];
	/** An edit of a queued message not saved yet, kept with the draft (the tab's page goes when it is hidden). */
	queueEdit?: QueuedEdit;
}

/** An open edit of a queued message: which message, its text when the edit began (or was last saved), the text so far. */
export interface QueuedEdit {
	queueId: string;
	original: string;
	text: string;
}

/** A well-formed queued edit, or undefined (a webview and the state VS Code keeps for it are not trusted). */
export function queuedEdit(value: unknown): QueuedEdit | undefined {
	const v = value as Partial<QueuedEdit> | null | undefined;
	return typeof v === 'object' &&
		v !== null &&
		typeof v.queueId === 'string' &&
		v.queueId.length > 0 &&
		v.queueId.length <= maxIdLength &&
		typeof v.original === 'string' &&
		v.original.length <= maxTextLength &&
		typeof v.text === 'string' &&
		v.text.length <= maxTextLength
		? { queueId: v.queueId, original: v.original, text: v.text }
		: undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Prompts and completion

/** Something sent with a prompt. Paths are relative to the session's worktree (sent to the agent as resource links). */
export type PromptAttachment =
	| { kind: 'file'; path: string }
	| { kind: 'selection'; path: string; startLine: number; endLine: number; text: string };

export interface PromptPayload {
	text: string;
	attachments: PromptAttachment[];
}

export interface CompletionItem {
	/** What the input gets (a command name without the slash, a worktree-relative path). */
	insertText: string;
	label: string;
	detail?: string;
}

export interface RewindPreview {
	turnId: string;
	number: number;
	/** Worktree-relative files the rewind would put back. */
	files: string[];
	/** Later turns whose changes the rewind undoes (the transcript keeps them), of every chat of the session. */
	laterTurns: number;
	/** How many of `laterTurns` are turns of the session's other chats (they share its worktree). */
	laterTurnsInOtherChats?: number;
}

export interface RewindResult {
	files: string[];
	/** Where what the rewind replaced is kept (a private git ref), so the rewind itself loses nothing. */
	replacedRef: string;
}

// ---------------------------------------------------------------------------------------------------------
// Messages

/** webview -> host requests: [params, result]. */
export interface Requests {
	'chat/open': [{ chatId: string; sinceSeq?: number; epoch?: string }, ChatOpenResult];
	/** The rows placed before turn `before` (`ChatSnapshot.earlierBefore`), the last of them first in line: a slice at a time. */
	'chat/earlierRows': [{ chatId: string; before: number }, EarlierRows];
	'chat/send': [{ chatId: string; prompt: PromptPayload }, { queued: boolean }];
	'chat/cancel': [{ chatId: string }, null];
	'chat/setMode': [{ chatId: string; modeId: string }, null];
	'chat/setModel': [{ chatId: string; modelId: string }, null];
	/** Sets one of `ChatMeta.settings` to one of its values; refused unless the agent offers both. The new settings come as meta. */
	'chat/setConfigOption': [{ chatId: string; configId: string; value: string }, null];
	/** Answers with the draft (and what it attaches) as the tab may keep it in its state (known secrets redacted). */
	'chat/saveDraft': [{ chatId: string; draft: string; attachments?: PromptAttachment[]; queueEdit?: QueuedEdit }, ChatDraft];
	/** `accepted: false`: settled already; with `waiting`, not settled but not answerable yet (`ChatMeta.unshownPermissions`). */
	'permission/answer': [{ chatId: string; requestId: string; optionId: string }, { accepted: boolean; waiting?: boolean }];
	'queue/edit': [{ chatId: string; queueId: string; text: string }, null];
	'queue/remove': [{ chatId: string; queueId: string }, null];
	'turn/rewindPreview': [{ chatId: string; turnId: string }, RewindPreview];
	'turn/rewind': [{ chatId: string; turnId: string }, RewindResult];
	/** Sends again the prompt whose error row this is. */
	'chat/retry': [{ chatId: string; rowId: string }, { queued: boolean }];
	'complete/commands': [{ chatId: string; query: string }, CompletionItem[]];
	'complete/files': [{ chatId: string; query: string }, CompletionItem[]];
	'editor/attachSelection': [{ chatId: string }, PromptAttachment];
}

/** host -> webview notifications. */
export interface Notifications {
	/** A complete snapshot: replaces everything the webview shows (after a rewind, a new epoch). */
	'chat/didReset': ChatSnapshot;
	'chat/didUpdateRow': RowUpdate;
	'chat/didChangeMeta': ChatMeta;
}

export type RequestMethod = keyof Requests;
export type NotificationMethod = keyof Notifications;

type Req = { [M in RequestMethod]: { kind: 'request'; id: number; method: M; params: Requests[M][0] } }[RequestMethod];
type Note = { [M in NotificationMethod]: { kind: 'notify'; method: M; params: Notifications[M] } }[NotificationMethod];

export type WebviewToHost = { kind: 'ready'; protocol: number; view: ViewKind } | { kind: 'cancel'; id: number } | Req;

/** Error codes a reply can carry; anything else the host throws arrives as `internal` with its message. */
export type ErrorCode = 'internal' | 'unknownMethod' | 'badRequest' | 'cancelled' | (string & {});

export interface ErrorReply {
	code: ErrorCode;
	message: string;
}

export type HostToWebview = { kind: 'response'; id: number; ok: true; result: unknown } | { kind: 'response'; id: number; ok: false; error: ErrorReply } | Note;

// ---------------------------------------------------------------------------------------------------------
// Tab state

/** What a chat tab persists with `setState`: identity and UI state only, never the transcript. */
export interface ChatTabState {
	v: 1;
	chatId: string;
	draft?: string;
	/** What the draft has attached (selections, files), as the host vetted them with the draft. */
	attachments?: PromptAttachment[];
	/** Where the reader was in the transcript; absent: at the bottom (following new rows). */
	scroll?: ChatScrollAnchor;
	/** An edit of a queued message not saved yet, as the host vetted it with the draft. */
	queueEdit?: QueuedEdit;
}

/**
 * A place in the transcript that survives the page being rebuilt (a hidden tab's page is thrown away): the
 * first row in view and how far its top is below the top of the transcript's view (negative: partly scrolled
 * past). Rows are re-read from the database, so an id, not a pixel offset of the whole log, is what stays true.
 */
export interface ChatScrollAnchor {
	rowId: string;
	offset: number;
}

/** The title of a chat's tab: its title, and the agent when the title does not already say it. */
export function chatTabTitle(meta: Pick<ChatMeta, 'title' | 'agentLabel'>): string {
	return meta.title === meta.agentLabel ? meta.title : `${meta.title} · ${meta.agentLabel}`;
}

export function isChatTabState(value: unknown): value is ChatTabState {
	const v = value as Partial<ChatTabState> | null;
	return (
		typeof v === 'object' &&
		v !== null &&
		v.v === 1 &&
		typeof v.chatId === 'string' &&
		(v.draft === undefined || typeof v.draft === 'string')
	);
}

/**
 * The well-formed attachments of a draft, at most `maxAttachments`; anything else in `value` is dropped
 * (a draft is kept even when what it attached is not: a tab never loses its text over an attachment).
 */
export function draftAttachments(value: unknown): PromptAttachment[] {
	if (!Array.isArray(value)) {
		return [];
	}
	return value.filter((a: unknown) => isPromptPayload({ text: '', attachments: [a] })).slice(0, maxAttachments) as PromptAttachment[];
}

/** Reads persisted tab state of any version this code knows; anything else is discarded (undefined), never a crash. */
export function readChatTabState(value: unknown): ChatTabState | undefined {
	if (isChatTabState(value)) {
		const attachments = draftAttachments(value.attachments);
		const scroll = scrollAnchor(value.scroll);
		const edit = queuedEdit(value.queueEdit);
		return { v: 1, chatId: value.chatId, ...(value.draft ? { draft: value.draft } : {}), ...(attachments.length ? { attachments } : {}), ...(scroll ? { scroll } : {}), ...(edit ? { queueEdit: edit } : {}) };
	}
	return undefined;
}

/** A well-formed scroll anchor, or undefined (then the tab opens at the bottom). */
function scrollAnchor(value: unknown): ChatScrollAnchor | undefined {
	const v = value as Partial<ChatScrollAnchor> | null | undefined;
	return typeof v === 'object' && v !== null && typeof v.rowId === 'string' && v.rowId.length > 0 && v.rowId.length <= maxIdLength && typeof v.offset === 'number' && Number.isFinite(v.offset)
		? { rowId: v.rowId, offset: v.offset }
		: undefined;
}

/** The longest text a webview may send in one field (a prompt, a draft, a queued message's new text). */
export const maxTextLength = 1024 * 1024;
/** The longest id, option or query a webview may send. */
const maxIdLength = 4096;
/** The most attachments one prompt may carry. */
export const maxAttachments = 100;

/** Each request's string fields (all required), and which of them are long text rather than ids. */
const requestFields: { [M in keyof Requests]: readonly (keyof Requests[M][0] & string)[] } = {
	'chat/open': ['chatId'],
	'chat/earlierRows': ['chatId'],
	'chat/send': ['chatId'],
	'chat/cancel': ['chatId'],
	'chat/setMode': ['chatId', 'modeId'],
	'chat/setModel': ['chatId', 'modelId'],
	'chat/setConfigOption': ['chatId', 'configId', 'value'],
	'chat/saveDraft': ['chatId', 'draft'],
	'permission/answer': ['chatId', 'requestId', 'optionId'],
	'queue/edit': ['chatId', 'queueId', 'text'],
	'queue/remove': ['chatId', 'queueId'],
	'turn/rewindPreview': ['chatId', 'turnId'],
	'turn/rewind': ['chatId', 'turnId'],
	'chat/retry': ['chatId', 'rowId'],
	'complete/commands': ['chatId', 'query'],
	'complete/files': ['chatId', 'query'],
	'editor/attachSelection': ['chatId'],
};
const textFields = new Set(['draft', 'text']);

/**
 * What is wrong with a request's parameters, in words, or undefined when they have the shape its method
 * needs: every field of the right type and within its size (a webview renders agent text; it is not trusted).
 */
export function requestParamsProblem(method: string, params: unknown): string | undefined {
	const fields = (requestFields as Record<string, readonly string[] | undefined>)[method];
	if (!fields) {
		return undefined; // an unknown method is answered as such
	}
	if (typeof params !== 'object' || params === null || Array.isArray(params)) {
		return 'its parameters are missing';
	}
	const p = params as Record<string, unknown>;
	for (const field of fields) {
		const value = p[field];
		if (typeof value !== 'string') {
			return `${field} is not text`;
		}
		if (value.length > (textFields.has(field) ? maxTextLength : maxIdLength)) {
			return `${field} is too long`;
		}
	}
	if (method === 'chat/open') {
		if (p.sinceSeq !== undefined && !(Number.isSafeInteger(p.sinceSeq) && (p.sinceSeq as number) >= 0)) {
			return 'sinceSeq is not a count';
		}
		if (p.epoch !== undefined && (typeof p.epoch !== 'string' || p.epoch.length > maxIdLength)) {
			return 'epoch is not an id';
		}
	}
	if (method === 'chat/earlierRows' && !(Number.isSafeInteger(p.before) && (p.before as number) >= 0)) {
		return 'before is not a turn number';
	}
	if (method === 'chat/saveDraft' && p.attachments !== undefined && !Array.isArray(p.attachments)) {
		return 'the attachments are not a list'; // each is checked by the host, which keeps the draft without a bad one
	}
	if (method === 'chat/saveDraft' && p.queueEdit !== undefined && !queuedEdit(p.queueEdit)) {
		return 'the queued edit is not in the form of one, or is too large';
	}
	if (method === 'chat/send' && !isPromptPayload(p.prompt)) {
		return 'the prompt is not in the form of one, or is too large';
	}
	return undefined;
}

/** Checks the shape of a message from a webview before the host dispatches it (a webview is not trusted). */
export function isWebviewToHost(value: unknown): value is WebviewToHost {
	const m = value as { kind?: unknown; id?: unknown; method?: unknown; protocol?: unknown } | null;
	if (typeof m !== 'object' || m === null) {
		return false;
	}
	switch (m.kind) {
		case 'ready':
			return typeof m.protocol === 'number';
		case 'cancel':
			return typeof m.id === 'number';
		case 'request':
			return typeof m.id === 'number' && typeof m.method === 'string';
		default:
			return false;
	}
}

// ---------------------------------------------------------------------------------------------------------
// Bootstrap

/**
 * Every string the chat tab shows. The host fills it with `vscode.l10n.t` (so the l10n export finds each
 * literal) and passes it in the page's bootstrap; `{0}` placeholders are filled in by the app.
 */
export interface ChatStrings {
	transcript: string;
	you: string;
	thinking: string;
	turn: string;
	statusIdle: string;
	statusRunning: string;
	statusWaiting: string;
	closedNote: string;
	rewind: string;
	rewindPreview: string;
	rewindLaterTurns: string;
	rewindLaterTurnsOtherChats: string;
	rewindNoFiles: string;
	rewindConfirm: string;
	rewindDone: string;
	cancel: string;
	toolCall: string;
	plan: string;
	permission: string;
	permissionShortcuts: string;
	permissionNotYet: string;
	alreadyAnswered: string;
	answered: string;
	decidedByPolicy: string;
	decidedByTimeout: string;
	decidedByCancel: string;
	noLongerWaiting: string;
	fileAdded: string;
	fileModified: string;
	fileDeleted: string;
	toolPending: string;
	toolRunning: string;
	toolDone: string;
	toolFailed: string;
	turnRunning: string;
	turnDone: string;
	turnCancelled: string;
	turnError: string;
	turnInterrupted: string;
	planPending: string;
	planInProgress: string;
	planDone: string;
	attachments: string;
	selectionOf: string;
	usage: string;
	error: string;
	/** An error row whose agent gave no message. */
	errorUnknown: string;
	/** A permission request whose agent gave it no title. */
	permissionUntitled: string;
	retry: string;
	rawEvent: string;
	/** Why a turn stopped early, by stop reason (a notice row's `stopReason`). */
	stopMaxTokens: string;
	stopMaxTurnRequests: string;
	stopRefusal: string;
	/** A context compaction's notice, by its status. */
	/** A tool call its turn's end stopped before it finished. */
	toolStopped: string;
	compactionRunning: string;
	compactionDone: string;
	compactionFailed: string;
	compactionCancelled: string;
	input: string;
	inputHint: string;
	send: string;
	cancelTurn: string;
	attachSelection: string;
	removeAttachment: string;
	mode: string;
	model: string;
	queue: string;
	queuedNote: string;
	/** A queued message being edited was sent (or removed) before the edit was saved; the edit went to the input. */
	queuedEditMoved: string;
	edit: string;
	remove: string;
	save: string;
	suggestions: string;
	loading: string;
	failed: string;
	/** A long chat's earlier rows could not be had (`chat/earlierRows` failed): the transcript shown begins later. */
	earlierFailed: string;
}

/** What the host inlines into the page (a JSON script element) for the app's first paint. */
export interface ChatBootstrap {
	chatId: string;
	strings: ChatStrings;
}

/** Checks a prompt from a webview: text, and attachments of the known kinds with the fields each needs. */
export function isPromptPayload(value: unknown): value is PromptPayload {
	const p = value as Partial<PromptPayload> | null;
	if (typeof p !== 'object' || p === null || typeof p.text !== 'string' || p.text.length > maxTextLength || !Array.isArray(p.attachments) || p.attachments.length > maxAttachments) {
		return false;
	}
	return p.attachments.every((a: Partial<PromptAttachment> | null) => {
		if (typeof a !== 'object' || a === null || typeof a.path !== 'string' || a.path === '' || a.path.length > maxIdLength) {
			return false;
		}
		if (a.kind === 'file') {
			return true;
		}
		const s = a as Partial<Extract<PromptAttachment, { kind: 'selection' }>>;
		return a.kind === 'selection' && typeof s.text === 'string' && s.text.length <= maxTextLength && Number.isInteger(s.startLine) && Number.isInteger(s.endLine);
	});
}
