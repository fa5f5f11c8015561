import * as path from 'node:path';
import type { PromptInput } from '../../protocol/turns';
import type { AgentDefinition } from '../../agents/definitions';
import { modelConfigOption, type AgentEvent, type ConfigOption } from '../../protocol/agentEvents';
import type { PermissionBroker } from '../../agents/permissions';
import type { AgentPool } from '../../agents/pool';
import type { ChatEvent, TurnRunner } from '../../tasks/turnRunner';
import type { Dispatcher, TaskChange } from '../../tasks/dispatcher';
import { ChatNoticesRepo, type ChatNoticeContent } from '../../db/chatNoticesRepo';
import { taskInput, type TaskRow } from '../../db/tasksRepo';
import { AgentTabsError } from '../../common/errors';
import { Emitter, logListenerErrors, type Event } from '../../common/event';
import { newId } from '../../common/ids';
import { Disposable } from '../../common/lifecycle';
import { errorMessage, type Logger } from '../../common/log';
import { SessionsRepo } from '../../db/sessionsRepo';
import type { Store } from '../../db/store';
import { TranscriptRepo, type MessageRow, type TurnRow } from '../../db/transcriptRepo';
import { looseRowOrder, messageRow, noticeRow, parse, turnHeaderRow, turnRows } from './transcriptRows';
import { changesSinceCheckpoint } from '../../worktrees/checkpoints';
import { Git } from '../../worktrees/gitClient';
import type {
	ChatDraft,
	ChatMeta,
	ChatOpenResult,
	ChatRow,
	ChatSetting,
	ChatSnapshot,
	EarlierRows,
	Choice,
	CompletionItem,
	PromptAttachment,
	QueuedEdit,
	PromptPayload,
	QueuedPrompt,
	RewindPreview,
	RewindResult,
	RowUpdate,
	SlashCommandInfo,
} from '../../protocol/messages';
import { chatTabTitle } from '../../protocol/messages';
import type { ChatService } from './chatService';
import { chatServiceStrings, untranslated, type ChatServiceStrings, type VsCodeL10n } from './chatStrings';

export interface TaskChatServiceOptions {
	store: Store;
	/** Live agent sessions (modes, models, whether a context is alive). */
	pool: AgentPool;
	/** Numbers every chat event (the dispatcher runs the turns through it). */
	turns: Pick<TurnRunner, 'onDidEvent'>;
	/** Runs every prompt: a chat message is a task (creator `chat`); the chat's queue is its queued tasks. */
	dispatcher: Dispatcher;
	permissions: PermissionBroker;
	definitions: () => readonly AgentDefinition[];
	logger: Logger;
	/** Puts a worktree back to a checkpoint (WorktreeService.rewind). */
	rewind: (cwd: string, checkpointRef: string) => Promise<RewindResult>;
	/** How long after an agent event the transcript is read again; a little over the recorder's flush interval. */
	refreshDelayMs?: number;
	/** Translates what the tab is told (`vscode.l10n` in the extension); English when absent. */
	vscode?: VsCodeL10n;
	/** About how many rows a tab opening a long chat gets at first, whole turns (the rest come as `earlierRows`). */
	openRows?: number;
	/** About how many rows each `earlierRows` answer holds, whole turns. */
	earlierSliceRows?: number;
}

/**
 * Names the numbering views hold: the chat's sequence stored with its transcript rows (`row_seq`), the same
 * across reloads and restarts. A view from another numbering gets a snapshot.
 */
const storedEpoch = 'row_seq';
/**
 * About how many rows a tab gets when it opens a chat (whole turns): a screen's worth many times over, so a
 * chat of any length shows at once; the rest come in slices of `defaultEarlierSliceRows` as the tab asks.
 */
const defaultOpenRows = 300;
const defaultEarlierSliceRows = 1000;

/** Where the last turns holding at least `rows` rows (a header and its messages each) begin in `turns`. */
function firstOfLast(turns: readonly TurnRow[], messageCounts: ReadonlyMap<string, number>, rows: number): number {
	let count = 0;
	for (let i = turns.length - 1; i >= 0; i--) {
		count += 1 + (messageCounts.get(turns[i]!.id) ?? 0);
		if (count >= rows) {
			return i;
		}
	}
	return 0;
}

/** Chat-level rows the store refused to keep (it stopped accepting writes): shown from memory, the newest few. */
const unstoredRowLimit = 50;
/** Streamed rows whose last sent text is kept (to send only what they add): the newest few; others go whole. */
const sentTextLimit = 8;

interface ChatState {
	/** The stored seq of the last update sent (or the chat's seq when this host first followed it). */
	seq: number;
	/** Sending waits for the store's acknowledgement, in order: a view never holds a number a crash could reuse. */
	sending: Promise<void>;
	/** Rows sent or snapshotted, to tell "row appended" from "row changed". */
	sent: Set<string>;
	/** The text last sent live of the newest streamed (text, reasoning) rows, oldest first (`sentTextLimit`). */
	sentText: Map<string, string>;
	/** Chat-level rows the store refused, each numbered in memory; `order` puts it back where it happened. */
	unstoredRows: { row: ChatRow; seq: number }[];
	refreshTimer?: NodeJS.Timeout;
	/** An event came after the refresh timer was set: its text may be stored after that refresh reads. */
	eventsAfterRefreshSet?: boolean;
	commands?: SlashCommandInfo[];
	modes: { current?: string; available: Choice[] };
	models: { current?: string; available: Choice[] };
	/** The config options the agent offered last (the whole set: each update replaces it). */
	config: ConfigOption[];
	/** Permission requests as the transcript names them (event id) -> as the broker names them. */
	permissionIds: Map<string, string>;
	unmatchedPermissionEvents: { requestId: string; toolCallId?: string }[];
	draft?: ChatDraft;
	saidNewContext: boolean;
}

/**
 * The chat tab's port over the task dispatcher: every message is a task (creator `chat`), so the chat's queue
 * is its queued tasks (persisted: they survive a reload and run after it), one turn runs per chat, and the
 * dispatcher's limits apply to chats as to every other creator. Chat-level rows (a send that never became a
 * turn, an agent that stopped, a rewind) are stored with the transcript (`chat_notices`). Row updates are the
 * rows the database numbered after the last one sent (`TranscriptRepo.changedSince`), read shortly after
 * agent events; a view that reconnects asks for the rows changed since its number and gets exactly those,
 * across reloads and restarts.
 */
export class TaskChatService extends Disposable implements ChatService {
	private readonly _onDidUpdateRow = this._register(new Emitter<RowUpdate>((e) => logListenerErrors(this.options.logger, '[TaskChatService]')(e)));
	readonly onDidUpdateRow: Event<RowUpdate> = this._onDidUpdateRow.event;
	private readonly _onDidChangeMeta = this._register(new Emitter<ChatMeta>((e) => logListenerErrors(this.options.logger, '[TaskChatService]')(e)));
	readonly onDidChangeMeta: Event<ChatMeta> = this._onDidChangeMeta.event;
	private readonly _onDidReset = this._register(new Emitter<ChatSnapshot>((e) => logListenerErrors(this.options.logger, '[TaskChatService]')(e)));
	readonly onDidReset: Event<ChatSnapshot> = this._onDidReset.event;

	private readonly chats = new Map<string, ChatState>();
	private readonly sessions: SessionsRepo;
	private readonly transcript: TranscriptRepo;
	private readonly notices: ChatNoticesRepo;
	/** Queued messages as typed (attachments and all), for the tasks this process queued; the task row has the prompt sent. */
	private readonly typed = new Map<string, PromptPayload>();
	private readonly fileCache = new Map<string, { at: number; files: Promise<string[]> }>();
	/** What the tab is told, in the user's language. */
	private readonly say: ChatServiceStrings;

	constructor(private readonly options: TaskChatServiceOptions) {
		super();
		this.say = chatServiceStrings(options.vscode ?? untranslated);
		this.sessions = new SessionsRepo(options.store);
		this.transcript = new TranscriptRepo(options.store);
		this.notices = new ChatNoticesRepo(options.store);
		this._register(options.turns.onDidEvent((e) => this.onChatEvent(e)));
		this._register(options.dispatcher.onDidChange((e) => this.onTaskChange(e)));
		this._register(options.permissions.onDidRequest((r) => this.matchPermission(r.chatId, r.id, r.toolCallId)));
		this._register(options.permissions.onDidSettle(() => this.fireMetaForWaiting()));
		this._register({
			dispose: () => {
				for (const st of this.chats.values()) {
					clearTimeout(st.refreshTimer);
				}
			},
		});
	}

	private state(chatId: string): ChatState {
		let st = this.chats.get(chatId);
		if (!st) {
			st = {
				seq: this.transcript.chatSeq(chatId),
				sending: Promise.resolve(),
				sent: new Set(),
				sentText: new Map(),
				unstoredRows: [],
				modes: { available: [] },
				models: { available: [] },
				config: [],
				permissionIds: new Map(),
				unmatchedPermissionEvents: [],
				saidNewContext: false,
			};
			this.chats.set(chatId, st);
		}
		return st;
	}

	private chat(chatId: string): NonNullable<ReturnType<SessionsRepo['getChat']>> {
		const chat = this.sessions.getChat(chatId);
		if (!chat) {
			throw new AgentTabsError('chat/unknown', this.say.noChat(chatId));
		}
		return chat;
	}

	private agentLabel(agent: string): string {
		return this.options.definitions().find((d) => d.id === agent)?.label ?? agent;
	}

	// ---------------------------------------------------------------------------------------------------
	// Reading

	/**
	 * What `read` says, answered once the store has it on disk (so no view holds a number a crash could reuse).
	 * A long chat's snapshot holds its last turns only: the tab shows them at once and asks for the rest.
	 */
	async open(chatId: string, since?: { seq: number; epoch: string }): Promise<ChatOpenResult> {
		const result = this.read(chatId, since, this.options.openRows ?? defaultOpenRows);
		await this.options.store.durable();
		// The chat's status, queue and title may have changed while this waited, and their notices reached the
		// view first: the reply carries them as they are now, not as they were, or it would undo them.
		const meta = this.meta(chatId);
		const draft = this.keptDraft(chatId);
		return { ...(result.kind === 'updates' ? { ...result, meta } : { ...result, snapshot: { ...result.snapshot, meta } }), ...(draft !== undefined ? { draft } : {}) };
	}

	/**
	 * The chat from the database: the rows changed after `since.seq` when the view knows this numbering and
	 * is not ahead of the database, else a snapshot.
	 */
	read(chatId: string, since?: { seq: number; epoch: string }, snapshotRows = Infinity): ChatOpenResult {
		this.chat(chatId);
		const current = this.transcript.chatSeq(chatId);
		if (since && since.epoch === storedEpoch && since.seq <= current) {
			return { kind: 'updates', updates: this.changesSince(chatId, since.seq), meta: this.meta(chatId), seq: current };
		}
		return { kind: 'snapshot', snapshot: this.snapshot(chatId, current, snapshotRows) };
	}

	/** The chat's last turns, about `rows` rows of them (all of it when it is shorter), and what was left out. */
	private snapshot(chatId: string, seq: number, rows: number): ChatSnapshot {
		const st = this.state(chatId);
		const turns = this.transcript.listTurns(chatId);
		// Settings the agent reported live in notices of any turn, also of those left out.
		this.learnMeta(st, [...this.transcript.listChatMessages(chatId, { kind: 'notice' }).values()].flat());
		return { chatId, epoch: storedEpoch, seq, meta: this.meta(chatId), ...this.lastTurns(chatId, turns, rows, Infinity) };
	}

	earlierRows(chatId: string, before: number): EarlierRows {
		this.chat(chatId);
		const turns = this.transcript.listTurns(chatId).filter((t) => t.seq < before);
		return this.lastTurns(chatId, turns, this.options.earlierSliceRows ?? defaultEarlierSliceRows, before);
	}

	/** The rows of the last of `turns` holding about `rows` rows (placed before turn `toTurn`), and where they begin when not all. */
	private lastTurns(chatId: string, turns: readonly TurnRow[], rows: number, toTurn: number): EarlierRows {
		const from = rows < Infinity ? firstOfLast(turns, this.transcript.messageCounts(chatId), rows) : 0;
		const shown = this.rowsOfTurns(chatId, turns.slice(from), from > 0 ? turns[from]!.seq : -Infinity, toTurn);
		return { rows: shown, ...(from > 0 ? { earlierBefore: turns[from]!.seq } : {}) };
	}

	/**
	 * The rows of `turns` (in order, numbered `fromTurn` and on) and the chat-level rows placed among them
	 * (`order[0]` from `fromTurn` up to, not with, `toTurn`), each after the turns that came before it; marked sent.
	 */
	private rowsOfTurns(chatId: string, turns: readonly TurnRow[], fromTurn: number, toTurn: number): ChatRow[] {
		const st = this.state(chatId);
		const cwd = this.workingDirectory(chatId);
		const rows: ChatRow[] = [];
		const messagesByTurn = turns.length ? this.transcript.listChatMessages(chatId, { fromTurn: turns[0]!.seq, toTurn: turns[turns.length - 1]!.seq + 1 }) : new Map<string, MessageRow[]>();
		for (const turn of turns) {
			rows.push(...turnRows(turn, messagesByTurn.get(turn.id) ?? [], cwd));
		}
		const placed = (row: ChatRow): boolean => {
			const at = row.order?.[0] ?? Infinity;
			return at >= fromTurn && at < toTurn;
		};
		for (const row of [...this.notices.list(chatId).map(noticeRow), ...st.unstoredRows.map((u) => u.row)].filter(placed)) {
			const next = rows.findIndex((r) => r.kind === 'turn' && r.number > (row.order?.[0] ?? Infinity));
			rows.splice(next < 0 ? rows.length : next, 0, row);
		}
		for (const row of rows) {
			st.sent.add(row.id);
		}
		return rows;
	}

	/** The rows changed after `seq`, each once with its newest content and number, in the order they were numbered. */
	private changesSince(chatId: string, seq: number): RowUpdate[] {
		const st = this.state(chatId);
		const cwd = this.workingDirectory(chatId);
		const changed: { seq: number; row: ChatRow }[] = [];
		for (const { turn, changed: headerChanged, messages } of this.transcript.changedSince(chatId, seq)) {
			if (headerChanged) {
				changed.push({ seq: turn.row_seq, row: turnHeaderRow(turn) });
			}
			for (const m of messages) {
				const row = messageRow(turn, m, cwd);
				if (row) {
					changed.push({ seq: m.row_seq, row });
				}
			}
		}
		changed.push(...this.notices.list(chatId, seq).map((n) => ({ seq: n.row_seq, row: noticeRow(n) })));
		changed.push(...st.unstoredRows.filter((l) => l.seq > seq));
		return changed
			.sort((a, b) => a.seq - b.seq)
			.map(({ seq: rowSeq, row }) => {
				const op = st.sent.has(row.id) ? 'change' : 'append';
				st.sent.add(row.id);
				return { chatId, epoch: storedEpoch, seq: rowSeq, op, row };
			});
	}

	meta(chatId: string): ChatMeta {
		const chat = this.chat(chatId);
		const st = this.state(chatId);
		const waiting = this.options.permissions.pending.some((p) => p.chatId === chatId);
		const settings = chatSettings(st.config, this.say);
		return {
			chatId,
			title: chat.title,
			agent: chat.agent,
			agentLabel: this.agentLabel(chat.agent),
			status: waiting ? 'waitingForPermission' : this.runningTask(chatId) ? 'running' : 'idle',
			// An agent offering its mode as a config option gets that option's picker only, not two mode pickers.
			modes: settings.some((o) => o.category === 'mode') ? { available: [] } : withCurrent(st.modes),
			models: withCurrent(st.models),
			...(settings.length > 0 ? { settings: settings.map(({ boolean: _, ...shown }) => shown) } : {}),
			commands: st.commands ?? [],
			queue: this.options.dispatcher.list({ chatId, status: 'queued' }).map((t) => this.queuedPrompt(t)),
			closed: this.isClosed(chat),
			// Not shown by the broker yet (it shows a chat's requests a few at a time): their cards offer no answer.
			unshownPermissions: st.unmatchedPermissionEvents.map((p) => p.requestId),
		};
	}

	/** Closed, and nothing sent since: a prompt after a close continues the chat (the close is history). */
	private isClosed(chat: { id: string; closed_at: number | null }): boolean {
		const closedAt = chat.closed_at;
		return closedAt !== null && !this.transcript.listTurns(chat.id).some((t) => t.started_at >= closedAt);
	}

	private fireMeta(chatId: string): void {
		try {
			this._onDidChangeMeta.fire(this.meta(chatId));
		} catch (e) {
			this.options.logger.debug(`[TaskChatService][meta] ${chatId}: ${errorMessage(e)}`);
		}
	}

	private fireMetaForWaiting(): void {
		for (const chatId of this.chats.keys()) {
			this.fireMeta(chatId);
		}
	}

	/** After a reload the pool has not said which commands and modes an agent offers; the transcript has. */
	private learnMeta(st: ChatState, messages: MessageRow[]): void {
		for (const m of messages) {
			if (m.kind === 'notice') {
				const c = parse(m.content);
				if (typeof c.state === 'string') {
					this.applyMetaEvent(st, { type: c.state, ...c } as unknown as AgentEvent);
				}
			}
		}
	}

	private applyMetaEvent(st: ChatState, event: AgentEvent): boolean {
		switch (event.type) {
			case 'commands':
				st.commands = (event.commands ?? []).map((c) => ({ name: c.name, description: c.description ?? '', ...(c.hint ? { hint: c.hint } : {}) }));
				return true;
			case 'mode':
				st.modes = { current: event.modeId, available: event.available ?? st.modes.available };
				return true;
			case 'model':
				st.models = { current: event.modelId, available: event.available ?? st.models.available };
				return true;
			case 'config': {
				// The whole set: an option the agent no longer offers goes. Agents of the newer API offer the model
				// as a config option (category "model"), which feeds the model picker.
				st.config = Array.isArray(event.options) ? event.options : [];
				const model = modelConfigOption(st.config);
				if (model) {
					st.models = { current: String(model.currentValue), available: (model.options ?? []).map((o) => ({ id: o.value, name: o.name })) };
				}
				return true;
			}
			default:
				return false;
		}
	}

	// ---------------------------------------------------------------------------------------------------
	// Following the turn runner (turn events and the pool's idle events, numbered per chat)

	private onChatEvent(e: ChatEvent): void {
		const st = this.state(e.chatId);
		if (this.applyMetaEvent(st, e.event)) {
			this.fireMeta(e.chatId);
		}
		if (e.event.type === 'permission_request') {
			st.unmatchedPermissionEvents.push({ requestId: e.event.requestId, toolCallId: e.event.toolCallId });
			// Not shown until the broker says so (`matchPermission`): the tab knows before the card arrives.
			this.fireMeta(e.chatId);
		} else if (e.event.type === 'permission_decision') {
			// Settled without being shown (a policy, a cancel, a flood refused while waiting): never matched later.
			const requestId = e.event.requestId;
			const unmatched = st.unmatchedPermissionEvents.length;
			st.unmatchedPermissionEvents = st.unmatchedPermissionEvents.filter((p) => p.requestId !== requestId);
			st.permissionIds.delete(requestId);
			if (st.unmatchedPermissionEvents.length !== unmatched) {
				this.fireMeta(e.chatId);
			}
		}
		if (e.turnId) {
			this.scheduleRefresh(e.chatId);
		} else if (e.event.type === 'notice' || e.event.type === 'error') {
			// Between turns (an agent that stopped, a context that was reset): said once, stored with the chat.
			this.addNotice(
				e.chatId,
				e.event.type === 'notice'
					? { kind: 'notice', severity: e.event.severity, title: e.event.title, ...(e.event.description ? { description: e.event.description } : {}) }
					: { kind: 'error', message: e.event.message, retryable: false },
			);
		}
	}

	/**
	 * Follows the chat's tasks: a message that starts running shows its turn at once (the agent may take
	 * seconds to say anything), every change updates the queue and status, and a send that ended without a
	 * turn (the agent is not installed, needs a key, the worktree is gone) says why, with a Retry.
	 */
	private onTaskChange({ task }: TaskChange): void {
		const chatId = task.chat_id;
		if (!chatId || this.isDisposed) {
			return;
		}
		if (task.status !== 'queued') {
			this.typed.delete(task.id);
		}
		if (task.status === 'failed' && !task.turn_id && task.creator === 'chat') {
			try {
				if (!this.notices.hasTask(task.id)) {
					this.addNotice(chatId, { kind: 'error', message: task.error ?? this.say.sendFailed(), retryable: true }, task.id);
				}
			} catch (e) {
				this.options.logger.warn(`[TaskChatService][task] ${task.id}: ${errorMessage(e)}`);
			}
		}
		if (task.turn_id || task.status !== 'queued') {
			const st = this.state(chatId);
			clearTimeout(st.refreshTimer);
			st.refreshTimer = undefined;
			this.publishChanges(chatId);
		}
		this.fireMeta(chatId);
	}

	/** The chat's task running now, if any. */
	private runningTask(chatId: string): TaskRow | undefined {
		return this.options.dispatcher.list({ chatId, status: 'running' })[0];
	}

	/** A queued task as the tab shows it: as typed when this process queued it, else from the task's prompt. */
	private queuedPrompt(task: TaskRow): QueuedPrompt {
		const typed = this.typed.get(task.id);
		if (typed) {
			return { id: task.id, text: typed.text, attachments: typed.attachments.map((a) => ({ ...a })) };
		}
		const cwd = this.workingDirectory(task.chat_id ?? '');
		const input = taskInput(task);
		return { id: task.id, text: input.text, attachments: (input.files ?? []).map((f) => ({ kind: 'file', path: cwd ? path.relative(cwd, f).split(path.sep).join('/') : f })) };
	}

	/** The broker names a request differently from the transcript; both come from one agent call, in this order. */
	private matchPermission(chatId: string, brokerId: string, toolCallId: string | undefined): void {
		const st = this.state(chatId);
		const i = st.unmatchedPermissionEvents.findIndex((p) => p.toolCallId === toolCallId);
		const [event] = st.unmatchedPermissionEvents.splice(i >= 0 ? i : 0, 1);
		if (event) {
			st.permissionIds.set(event.requestId, brokerId);
		}
		this.fireMeta(chatId);
	}

	/**
	 * Reads the chat's changed rows a moment after an event (the turn stores streamed text in batches), and
	 * once more after the last event of a burst: the text of an event that came after the timer was set may
	 * reach the database after that read, and an agent that then goes quiet would leave it unshown.
	 */
	private scheduleRefresh(chatId: string): void {
		const st = this.state(chatId);
		if (st.refreshTimer) {
			st.eventsAfterRefreshSet = true;
			return;
		}
		st.eventsAfterRefreshSet = false;
		st.refreshTimer = setTimeout(() => {
			st.refreshTimer = undefined;
			if (this.isDisposed) {
				return;
			}
			// Rows found now may be followed by the rest of their batch: look once more until a read finds nothing.
			if (this.publishChanges(chatId) > 0 || st.eventsAfterRefreshSet) {
				this.scheduleRefresh(chatId);
			}
		}, this.options.refreshDelayMs ?? 120);
	}

	/**
	 * Sends the rows the database numbered after the last one sent, in their order, each naming the one
	 * before it (`prevSeq`), once the store has acknowledged them.
	 */
	private publishChanges(chatId: string): number {
		try {
			const st = this.state(chatId);
			const updates = this.changesSince(chatId, st.seq);
			if (updates.length === 0) {
				return 0;
			}
			for (const [i, u] of updates.entries()) {
				u.prevSeq = st.seq;
				st.seq = u.seq;
				updates[i] = this.onlyNewText(st, u);
			}
			st.sending = st.sending
				.then(() => this.options.store.durable())
				.catch((e) => this.options.logger.warn(`[TaskChatService][publish] ${chatId}: not acknowledged: ${errorMessage(e)}`))
				.then(() => {
					for (const u of updates) {
						this._onDidUpdateRow.fire(u);
					}
				});
			return updates.length;
		} catch (e) {
			this.options.logger.warn(`[TaskChatService][publish] ${chatId}: ${errorMessage(e)}`);
			return 0;
		}
	}

	/**
	 * A streamed row whose text grew from the text last sent goes as only what it adds (`textFrom`): a reply
	 * is reread from the database each refresh, but not posted whole each time. The view checks it holds that
	 * text and resyncs otherwise, so the database stays what every view shows.
	 */
	private onlyNewText(st: ChatState, u: RowUpdate): RowUpdate {
		const row = u.row;
		if (row.kind !== 'text' && row.kind !== 'reasoning') {
			return u;
		}
		const before = st.sentText.get(row.id);
		st.sentText.delete(row.id);
		st.sentText.set(row.id, row.text);
		for (const id of st.sentText.keys()) {
			if (st.sentText.size <= sentTextLimit) {
				break;
			}
			st.sentText.delete(id);
		}
		if (u.op !== 'change' || before === undefined || !row.text.startsWith(before)) {
			return u;
		}
		return { ...u, textFrom: before.length, row: { ...row, text: row.text.slice(before.length) } };
	}

	/** Resolves once every row update read so far for the chat has been sent. */
	async sent(chatId: string): Promise<void> {
		await this.state(chatId).sending;
	}

	/** Stores a chat-level row and sends it; when the store refuses, it is numbered and shown from memory. */
	private addNotice(chatId: string, content: ChatNoticeContent, taskId?: string): void {
		const st = this.state(chatId);
		try {
			this.notices.add(chatId, this.options.pool.redactForStorage(content), taskId);
		} catch (e) {
			// The store refuses writes (the row may be the error saying so): number it in memory, so it is still shown.
			this.options.logger.warn(`[TaskChatService][notice] ${chatId}: no stored number: ${errorMessage(e)}`);
			const row = { ...content, id: newId('note'), turnId: null, order: looseRowOrder(Number.MAX_SAFE_INTEGER) } as ChatRow;
			st.unstoredRows.push({ row, seq: Math.max(st.seq, ...st.unstoredRows.map((u) => u.seq)) + 1 });
			st.unstoredRows.splice(0, Math.max(0, st.unstoredRows.length - unstoredRowLimit));
		}
		this.publishChanges(chatId);
	}

	// ---------------------------------------------------------------------------------------------------
	// Acting

	/**
	 * Queues the message as a task of the chat; it runs now unless a turn of this chat (or the worktree's or
	 * the global limit) makes it wait. Answered once the task is on disk.
	 */
	async send(chatId: string, prompt: PromptPayload): Promise<{ queued: boolean }> {
		const chat = this.chat(chatId);
		if (prompt.text.trim() === '' && prompt.attachments.length === 0) {
			throw new AgentTabsError('prompt/empty', this.say.typeFirst());
		}
		const input = toPromptInput(prompt, this.workingDirectory(chatId));
		const st = this.state(chatId);
		// Closing ended the agent process and forgot its context, so a prompt after a close starts anew.
		if (this.isClosed(chat) && !st.saidNewContext) {
			st.saidNewContext = true;
			this.addNotice(chatId, { kind: 'notice', severity: 'info', title: this.say.newContextAfterClose() });
		}
		const task = await this.options.dispatcher.add({ creator: 'chat', chatId, agent: chat.agent, input });
		const queued = this.stillQueued(task.id);
		if (queued) {
			this.typed.set(task.id, { text: prompt.text, attachments: prompt.attachments.map((a) => ({ ...a })) });
		}
		this.fireMeta(chatId);
		return { queued };
	}

	/** A task's prompt as a tab would send it: its text, and its files (still inside the worktree) as links. */
	private payloadOf(task: TaskRow, chatId: string): PromptPayload {
		const input = taskInput(task);
		const cwd = this.workingDirectory(chatId);
		const attachments: PromptAttachment[] = [];
		for (const file of input.files ?? []) {
			const rel = cwd ? path.relative(cwd, file) : '';
			if (rel && !rel.startsWith('..') && !path.isAbsolute(rel)) {
				attachments.push({ kind: 'file', path: rel.split(path.sep).join('/') });
			}
		}
		return { text: input.text, attachments };
	}

	/** Whether a task just added waits (behind its chat's turn or a limit) rather than already running or ended. */
	private stillQueued(taskId: string): boolean {
		return !this.options.dispatcher.isRunning(taskId) && this.options.dispatcher.get(taskId)?.status === 'queued';
	}

	/** Cancels the chat's running turn (its task ends cancelled); queued messages stay queued. Every turn is a task's. */
	async cancel(chatId: string): Promise<void> {
		this.chat(chatId);
		const running = this.runningTask(chatId);
		if (running) {
			await this.options.dispatcher.cancel(running.id);
			await this.options.dispatcher.whenEnded(running.id).catch(() => undefined);
		}
	}

	answerPermission(chatId: string, requestId: string, optionId: string): { accepted: boolean; waiting?: boolean } {
		const st = this.state(chatId);
		const brokerId = st.permissionIds.get(requestId);
		if (brokerId === undefined && st.unmatchedPermissionEvents.some((p) => p.requestId === requestId)) {
			// Still pending, not settled: the broker shows it once an earlier request of the chat is settled.
			return { accepted: false, waiting: true };
		}
		const accepted = brokerId !== undefined && this.options.permissions.decide(brokerId, optionId);
		return { accepted };
	}

	/** A queued message of this chat, or a plain-words refusal once it was sent or removed. */
	private queuedTask(chatId: string, queueId: string): TaskRow {
		const task = this.options.dispatcher.get(queueId);
		if (!task || task.chat_id !== chatId || task.status !== 'queued') {
			throw new AgentTabsError('queue/gone', this.say.queueGone());
		}
		return task;
	}

	async editQueued(chatId: string, queueId: string, text: string): Promise<void> {
		if (text.trim() === '') {
			throw new AgentTabsError('prompt/empty', this.say.queuedEmpty());
		}
		const task = this.queuedTask(chatId, queueId);
		const before = this.queuedPrompt(task);
		const edited: PromptPayload = { text, attachments: before.attachments };
		await this.options.dispatcher.editQueued(task.id, toPromptInput(edited, this.workingDirectory(chatId))).catch(queueGone);
		this.typed.set(task.id, edited);
		this.fireMeta(chatId);
	}

	async removeQueued(chatId: string, queueId: string): Promise<void> {
		const task = this.queuedTask(chatId, queueId);
		await this.options.dispatcher.removeQueued(task.id).catch(queueGone);
		this.typed.delete(task.id);
		this.fireMeta(chatId);
	}

	private rewindTarget(chatId: string, turnId: string): { turn: TurnRow; cwd: string; ref: string } {
		const turn = this.transcript.getTurn(turnId);
		if (!turn || turn.chat_id !== chatId) {
			throw new AgentTabsError('turn/unknown', this.say.turnNotInChat());
		}
		if (!turn.checkpoint_before) {
			throw new AgentTabsError('checkpoint/missing', this.say.noCheckpoint(turn.seq));
		}
		const where = this.sessions.workingDirectory(chatId);
		const cwd = where?.cwd;
		if (!cwd) {
			throw new AgentTabsError('chat/noFolder', this.say.noFolderToRewind(where?.worktreeState ?? null));
		}
		if (this.runningTask(chatId)) {
			throw new AgentTabsError('agent/busy', this.say.turnRunning());
		}
		// A rewind puts back the whole worktree, which the session's other chats share.
		const others = this.options.dispatcher.runningInWorktreeOf(chatId).filter((id) => id !== chatId);
		if (others.length > 0) {
			const names = others.map((id) => `"${this.sessions.getChat(id)?.title ?? id}"`).join(', ');
			throw new AgentTabsError('worktree/busy', this.say.otherChatRunning(names));
		}
		return { turn, cwd, ref: turn.checkpoint_before };
	}

	async rewindPreview(chatId: string, turnId: string): Promise<RewindPreview> {
		const { turn, cwd, ref } = this.rewindTarget(chatId, turnId);
		// What a rewind would change back: everything that changed since the checkpoint (the worktree is not touched).
		const files = (await changesSinceCheckpoint(new Git(cwd), ref)).map((c) => c.path);
		// The worktree is the session's: a rewind also undoes what turns of its other chats changed since.
		const later = this.sessionTurnsAfter(chatId, turn);
		const laterInOtherChats = later.filter((t) => t.chat_id !== chatId).length;
		return { turnId, number: turn.seq, files, laterTurns: later.length, ...(laterInOtherChats > 0 ? { laterTurnsInOtherChats: laterInOtherChats } : {}) };
	}

	/** Turns of any chat of the chat's session that started after `turn` (this chat's later turns included). */
	private sessionTurnsAfter(chatId: string, turn: TurnRow): TurnRow[] {
		const sessionId = this.chat(chatId).session_id;
		return this.sessions
			.listChats(sessionId)
			.flatMap((c) => this.transcript.listTurns(c.id))
			.filter((t) => t.id !== turn.id && (t.chat_id === chatId ? t.seq > turn.seq : t.started_at > turn.started_at));
	}

	async rewind(chatId: string, turnId: string): Promise<RewindResult> {
		const { turn, cwd, ref } = this.rewindTarget(chatId, turnId);
		// No task of the session starts while the folder is being put back.
		const result = await this.options.dispatcher.exclusive(chatId, () => this.options.rewind(cwd, ref));
		this.addNotice(chatId, {
			kind: 'notice',
			severity: 'info',
			title: this.say.rewound(result.files.length, turn.seq),
			description: this.say.rewindKeptIn(result.replacedRef),
		});
		// The notice is the only place the chat names the ref that holds what the rewind replaced. The rewind
		// itself is done either way: a store that fails now is said in the log, not as a failed rewind.
		await this.options.store.durable().catch((e: unknown) => this.options.logger.error(`[TaskChatService][rewind] the notice naming ${result.replacedRef} may be lost: ${errorMessage(e)}`));
		return result;
	}

	/**
	 * Sends again what an error row belongs to: a failed send (its task is retried: a new task, once) or a
	 * turn that failed (its task retried when it has one that may be, else its prompt sent again).
	 */
	async retry(chatId: string, errorRowId: string): Promise<{ queued: boolean }> {
		this.chat(chatId);
		const notice = this.notices.get(errorRowId);
		let taskId: string | null | undefined;
		let prompt: PromptPayload | undefined;
		if (notice && notice.chat_id === chatId && notice.task_id) {
			taskId = notice.task_id;
		} else {
			const turn = this.options.store.get<{ id: string; prompt: string; chat_id: string }>('SELECT t.id, t.prompt, t.chat_id FROM messages m JOIN turns t ON t.id = m.turn_id WHERE m.id = ?', [errorRowId]);
			if (!turn || turn.chat_id !== chatId) {
				throw new AgentTabsError('retry/unknown', this.say.nothingToRetry());
			}
			const task = this.options.dispatcher.list({ chatId }).find((t) => t.turn_id === turn.id);
			const retried = task && this.options.store.get('SELECT 1 AS found FROM tasks WHERE parent_task_id = ?', [task.id]);
			if (task && (task.status === 'failed' || task.status === 'interrupted') && !retried) {
				taskId = task.id;
			} else {
				// Sent again as it was sent: its text and the files it linked (the turn keeps only the text).
				prompt = task ? this.payloadOf(task, chatId) : { text: turn.prompt, attachments: [] };
			}
		}
		if (prompt) {
			return this.send(chatId, prompt);
		}
		const task = await this.options.dispatcher.retry(taskId!);
		this.fireMeta(chatId);
		return { queued: this.stillQueued(task.id) };
	}

	private async liveHandle(chatId: string): Promise<ReturnType<AgentPool['peek']>> {
		const chat = this.chat(chatId);
		return this.options.pool.peek(chatId, chat.agent) ?? (await this.options.pool.ensure(chatId, chat.agent));
	}

	async setMode(chatId: string, modeId: string): Promise<void> {
		// The tab is not trusted to name a mode: one the agent offered, once it has said which.
		const offered = this.state(chatId).modes.available;
		if (offered.length > 0 && !offered.some((m) => m.id === modeId)) {
			throw new AgentTabsError('agent/noSuchValue', this.say.noSuchMode(this.agentLabel(this.chat(chatId).agent)));
		}
		const handle = await this.liveHandle(chatId);
		if (!handle?.setMode) {
			throw new AgentTabsError('agent/noModes', this.say.noModes(this.agentLabel(this.chat(chatId).agent)));
		}
		await handle.setMode(modeId);
		const st = this.state(chatId);
		st.modes = { ...st.modes, current: modeId };
		this.fireMeta(chatId);
	}

	async setModel(chatId: string, modelId: string): Promise<void> {
		const offered = this.state(chatId).models.available;
		if (offered.length > 0 && !offered.some((m) => m.id === modelId)) {
			throw new AgentTabsError('agent/noSuchValue', this.say.noSuchModel(this.agentLabel(this.chat(chatId).agent)));
		}
		const handle = await this.liveHandle(chatId);
		if (!handle?.setModel) {
			throw new AgentTabsError('agent/noModels', this.say.noModels(this.agentLabel(this.chat(chatId).agent)));
		}
		await handle.setModel(modelId);
		const st = this.state(chatId);
		st.models = { ...st.models, current: modelId };
		this.fireMeta(chatId);
	}

	/**
	 * Sets one of the agent's settings (a config option it offered, to a value it offered for it: the tab is not
	 * trusted to name either); the agent answers with its whole new set, which the tab gets as meta.
	 */
	async setConfigOption(chatId: string, configId: string, value: string): Promise<void> {
		const agent = this.agentLabel(this.chat(chatId).agent);
		const st = this.state(chatId);
		const setting = chatSettings(st.config, this.say).find((o) => o.id === configId);
		if (!setting) {
			throw new AgentTabsError('agent/noSuchSetting', this.say.noSuchSetting(agent));
		}
		if (!setting.available.some((c) => c.id === value)) {
			throw new AgentTabsError('agent/noSuchValue', this.say.noSuchValue(agent, setting.name));
		}
		const handle = await this.liveHandle(chatId);
		if (!handle?.setConfigOption) {
			throw new AgentTabsError('agent/noSuchSetting', this.say.noSuchSetting(agent));
		}
		// An on/off setting is offered as the choices "true" and "false" and set as the boolean the agent gave.
		await handle.setConfigOption(configId, setting.boolean ? value === 'true' : value);
		this.fireMeta(chatId);
	}

	completeCommands(chatId: string, query: string): CompletionItem[] {
		const q = query.toLowerCase();
		return (this.state(chatId).commands ?? [])
			.filter((c) => c.name.toLowerCase().startsWith(q) || (q.length > 1 && c.name.toLowerCase().includes(q)))
			.slice(0, 50)
			.map((c) => ({ insertText: c.name, label: `/${c.name}`, detail: c.description }));
	}

	async completeFiles(chatId: string, query: string): Promise<CompletionItem[]> {
		const cwd = this.workingDirectory(chatId);
		if (!cwd) {
			throw new AgentTabsError('chat/noFolder', this.say.noFolderToMention());
		}
		return rankFiles(await this.listFiles(cwd), query).map((f) => ({ insertText: f, label: path.posix.basename(f), detail: f }));
	}

	/** The worktree's files (tracked and untracked, not ignored), read at most every few seconds while typing. */
	private listFiles(cwd: string): Promise<string[]> {
		const cached = this.fileCache.get(cwd);
		if (cached && Date.now() - cached.at < 5000) {
			return cached.files;
		}
		const files = new Git(cwd).zlist(['ls-files', '-z', '--cached', '--others', '--exclude-standard', '--deduplicate']);
		this.fileCache.set(cwd, { at: Date.now(), files });
		files.catch(() => this.fileCache.delete(cwd));
		return files;
	}

	workingDirectory(chatId: string): string | undefined {
		return this.sessions.workingDirectory(chatId)?.cwd ?? undefined;
	}

	saveDraft(chatId: string, draft: string, attachments?: PromptAttachment[], queueEdit?: QueuedEdit): ChatDraft {
		const safe: ChatDraft = this.options.pool.redactForStorage({ draft, ...(attachments?.length ? { attachments: attachments.map((a) => ({ ...a })) } : {}), ...(queueEdit ? { queueEdit: { ...queueEdit } } : {}) });
		this.state(chatId).draft = safe;
		return safe;
	}

	keptDraft(chatId: string): ChatDraft | undefined {
		return this.chats.get(chatId)?.draft;
	}

	async rename(chatId: string, title: string): Promise<void> {
		const clean = title.trim();
		if (clean === '') {
			throw new AgentTabsError('chat/emptyTitle', this.say.needsTitle());
		}
		this.chat(chatId);
		this.sessions.renameChat(chatId, clean);
		this.fireMeta(chatId);
		// The tab shows the new title at once; the command reports done only once it is on disk.
		await this.options.store.durable();
	}

	chatsTitled(tabTitle: string): string[] {
		return this.sessions
			.listAllChats()
			.filter((c) => chatTabTitle({ title: c.title, agentLabel: this.agentLabel(c.agent) }) === tabTitle)
			.map((c) => c.id);
	}

	async closeContext(chatId: string): Promise<void> {
		const chat = this.sessions.getChat(chatId);
		if (!chat) {
			return;
		}
		const st = this.state(chatId);
		// What was queued in the tab goes with it; the running turn is cancelled (its task ends cancelled).
		for (const task of this.options.dispatcher.list({ chatId, status: 'queued' })) {
			await this.options.dispatcher.removeQueued(task.id).catch(() => undefined);
		}
		await this.cancel(chatId).catch((e) => this.options.logger.warn(`[TaskChatService][close] cancel: ${errorMessage(e)}`));
		// Closing the chat removes its agent_sessions rows (a trigger), so the next prompt starts a new context;
		// the agent process itself (its whole process group) ends now, not when the idle reaper finds it.
		this.sessions.closeChat(chatId);
		// Closed on disk before the agent ends: a kill in between never brings back a tab whose context went.
		const closed = this.options.store.durable();
		await closed.catch(() => undefined);
		await this.options.pool.end(chatId, chat.agent).catch((e) => this.options.logger.warn(`[TaskChatService][close] end: ${errorMessage(e)}`));
		this.chats.delete(chatId);
		clearTimeout(st.refreshTimer);
		await closed;
	}
}

/**
 * A picker's choices with the current one among them: an agent may switch to a mode (or model) it never
 * offered (a `current_mode_update` naming it), and a picker whose value is none of its choices shows blank.
 */
function withCurrent(choices: ChatMeta['modes']): ChatMeta['modes'] {
	const { current } = choices;
	if (current === undefined || current === '' || choices.available.length === 0 || choices.available.some((c) => c.id === current)) {
		return choices;
	}
	return { current, available: [...choices.available, { id: current, name: current }] };
}

/**
 * The agent's options other than the model's, as the tab shows them: a select as its choices, an on/off
 * (boolean) option as the choices On and Off (values "true" and "false"), so both are a picker.
 */
function chatSettings(options: readonly ConfigOption[], say: Pick<ChatServiceStrings, 'settingOn' | 'settingOff'>): (ChatSetting & { boolean?: true })[] {
	const model = modelConfigOption(options);
	return options
		.filter((o) => o !== model && ((o.type === 'select' && (o.options ?? []).length > 0) || (o.type === 'boolean' && typeof o.currentValue === 'boolean')))
		.map((o) => ({
			id: o.id,
			name: o.name,
			...(o.description ? { description: o.description } : {}),
			...(o.category ? { category: o.category } : {}),
			current: String(o.currentValue),
			...(o.type === 'boolean'
				? { boolean: true as const, available: [{ id: 'true', name: say.settingOn() }, { id: 'false', name: say.settingOff() }] }
				: { available: (o.options ?? []).map((c) => ({ id: c.value, name: c.name })) }),
		}));
}

/** The dispatcher's "no longer queued" (a race with the task starting) in the chat port's words. */
function queueGone(e: unknown): never {
	throw e instanceof AgentTabsError && e.code === 'task/notQueued' ? new AgentTabsError('queue/gone', e.message) : e;
}

/** Mentioned files become absolute paths inside the worktree (resource links); a selection is quoted into the text. */
export function toPromptInput(prompt: PromptPayload, cwd: string | undefined): PromptInput {
	const files: string[] = [];
	let text = prompt.text;
	for (const a of prompt.attachments) {
		const abs = cwd ? path.resolve(cwd, a.path) : undefined;
		// A file inside the worktree, not the worktree itself ("." would send the whole folder as one link).
		if (!abs || !cwd || !abs.startsWith(cwd + path.sep)) {
			throw new AgentTabsError('prompt/outsideWorktree', `${a.path} is not inside this session's worktree, so it cannot be sent.`);
		}
		if (a.kind === 'file') {
			files.push(abs);
		} else {
			// A fence longer than any run of backticks in the selection, so the selection cannot close it.
			const fence = '`'.repeat(Math.max(3, ...[...a.text.matchAll(/`+/g)].map((m) => m[0].length + 1)));
			text += `\n\n${a.path}:${a.startLine}-${a.endLine}\n${fence}\n${a.text}\n${fence}`;
		}
	}
	return { text, ...(files.length ? { files } : {}) };
}

/** Files matching a query, best first: a basename that starts with it, then a basename containing it, then the path. */
export function rankFiles(files: readonly string[], query: string, limit = 50): string[] {
	const q = query.toLowerCase();
	const score = (f: string): number => {
		const lower = f.toLowerCase();
		const base = path.posix.basename(lower);
		return base.startsWith(q) ? 0 : base.includes(q) ? 1 : lower.includes(q) ? 2 : -1;
	};
	return files
		.map((f) => ({ f, s: score(f) }))
		.filter((x) => x.s >= 0)
		.sort((a, b) => a.s - b.s || a.f.length - b.f.length || a.f.localeCompare(b.f))
		.slice(0, limit)
		.map((x) => x.f);
}
