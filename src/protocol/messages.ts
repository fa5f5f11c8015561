/**
 * THE host <-> webview contract. Only this file defines message shapes; the host side (`webview/host`) and
 * the app side (`webview/app/shared/rpc.ts`) each wrap it once. Requests are answered exactly once;
 * notifications are fire-and-forget and either complete snapshots or seq-numbered appends, because a hidden
 * webview drops messages and must be able to resync from the database.
 */

export const protocolVersion = 1;

export type ViewKind = 'chat';

/** What a chat tab shows; always rebuilt from the database. */
export interface ChatSnapshot {
	chatId: string;
	title: string;
	agent: string;
	/** Sequence number of the last event included; appends continue from here. */
	seq: number;
	entries: TranscriptEntry[];
}

export interface TranscriptEntry {
	id: string;
	kind: 'user' | 'text' | 'reasoning' | 'notice' | 'error';
	text: string;
}

/** webview -> host requests: [params, result]. */
export interface Requests {
	'chat/open': [{ chatId: string }, ChatSnapshot];
}

/** host -> webview notifications. */
export interface Notifications {
	'chat/didChange': ChatSnapshot;
	'chat/didAppend': { chatId: string; seq: number; entry: TranscriptEntry };
}

type Req = { [M in keyof Requests]: { kind: 'request'; id: number; method: M; params: Requests[M][0] } }[keyof Requests];
type Note = { [M in keyof Notifications]: { kind: 'notify'; method: M; params: Notifications[M] } }[keyof Notifications];

export type WebviewToHost = { kind: 'ready'; protocol: number; view: ViewKind } | { kind: 'cancel'; id: number } | Req;

export type HostToWebview =
	| { kind: 'response'; id: number; ok: true; result: unknown }
	| { kind: 'response'; id: number; ok: false; error: { code: string; message: string } }
	| Note;

/** What a chat tab persists with `setState`: identity and UI state only, never the transcript. */
export interface ChatTabState {
	v: 1;
	chatId: string;
	draft?: string;
}

export function isChatTabState(value: unknown): value is ChatTabState {
	const v = value as Partial<ChatTabState> | null;
	return typeof v === 'object' && v !== null && v.v === 1 && typeof v.chatId === 'string';
}
