import * as path from 'node:path';
import type { PromptInput } from '../../protocol/turns';
import type { AgentDefinition } from '../../agents/definitions';
import type { AgentEvent } from '../../protocol/agentEvents';
import type { PermissionBroker } from '../../agents/permissions';
import type { AgentPool } from '../../agents/pool';
import type { ChatEvent, TurnRunner } from '../../tasks/turnRunner';
import { AgentTabsError } from '../../common/errors';
import { Emitter, logListenerErrors, type Event } from '../../common/event';
import { newId } from '../../common/ids';
import { Disposable } from '../../common/lifecycle';
import { errorMessage, type Logger } from '../../common/log';
import { SessionsRepo } from '../../db/sessionsRepo';
import type { Store } from '../../db/store';
import { TranscriptRepo, type MessageRow, type TurnRow } from '../../db/transcriptRepo';
import { looseRowOrder, messageRow, parse, turnHeaderRow, turnRows } from './transcriptRows';
import { snapshotCommit } from '../../worktrees/checkpoints';
import { Git } from '../../worktrees/gitClient';
import type {
	ChatMeta,
	ChatOpenResult,
	ChatRow,
	ChatSnapshot,
	Choice,
	CompletionItem,
	PromptPayload,
	QueuedPrompt,
	RewindPreview,
	RewindResult,
	RowUpdate,
	SlashCommandInfo,
} from '../../protocol/messages';
import type { ChatService } from './chatService';

export interface PoolChatServiceOptions {
	store: Store;
	/** Live agent sessions (modes, models, whether a context is alive). */
	pool: AgentPool;
	/** Runs the turns and numbers every chat event. */
	turns: TurnRunner;
	permissions: PermissionBroker;
	definitions: () => readonly AgentDefinition[];
	logger: Logger;
	/** Puts a worktree back to a checkpoint (WorktreeService.rewind). */
	rewind: (cwd: string, checkpointRef: string) => Promise<RewindResult>;
	/** How long after an agent event the transcript is read again; a little over the recorder's flush interval. */
	refreshDelayMs?: number;
}

/**
 * Names the numbering views hold: the chat's sequence stored with its transcript rows (`row_seq`), the same
 * across reloads and restarts. A view from another numbering gets a snapshot.
 */
const storedEpoch = 'row_seq';
/** Chat-level rows (failed sends, an agent that stopped) that no turn holds; kept in memory only. */
const looseRowLimit = 50;

interface ChatState {
	/** The stored seq of the last update sent (or the chat's seq when this host first followed it). */
	seq: number;
	/** Sending waits for the store's acknowledgement, in order: a view never holds a number a crash could reuse. */
	sending: Promise<void>;
	/** Rows sent or snapshotted, to tell "row appended" from "row changed". */
	sent: Set<string>;
	/** Each with its number in the chat's sequence; `order` puts it back where it happened. */
	looseRows: { row: ChatRow; seq: number }[];
	failedPrompts: Map<string, PromptPayload>;
	queue: QueuedPrompt[];
	running: boolean;
	refreshTimer?: NodeJS.Timeout;
	commands?: SlashCommandInfo[];
	modes: { current?: string; available: Choice[] };
	models: { current?: string; available: Choice[] };
	/** Permission requests as the transcript names them (event id) -> as the broker names them. */
	permissionIds: Map<string, string>;
	unmatchedPermissionEvents: { requestId: string; toolCallId?: string }[];
	draft?: string;
	saidNewContext: boolean;
}

/**
 * THE ADAPTER TO BE REPLACED BY THE DISPATCHER (issues 11/12). It implements the chat tab's port directly
 * over the turn runner, the agent pool and the transcript, running one prompt at a time per chat the way `agent-tabs run`
 * does, with an in-memory queue. Row updates are the rows the database numbered after the last one sent
 * (`TranscriptRepo.changedSince`), read shortly after agent events; a view that reconnects asks for the rows
 * changed since its number and gets exactly those, across reloads and restarts.
 */
export class PoolChatService extends Disposable implements ChatService {
	private readonly _onDidUpdateRow = this._register(new Emitter<RowUpdate>((e) => logListenerErrors(this.options.logger, '[PoolChatService]')(e)));
	readonly onDidUpdateRow: Event<RowUpdate> = this._onDidUpdateRow.event;
	private readonly _onDidChangeMeta = this._register(new Emitter<ChatMeta>((e) => logListenerErrors(this.options.logger, '[PoolChatService]')(e)));
	readonly onDidChangeMeta: Event<ChatMeta> = this._onDidChangeMeta.event;
	private readonly _onDidReset = this._register(new Emitter<ChatSnapshot>((e) => logListenerErrors(this.options.logger, '[PoolChatService]')(e)));
	readonly onDidReset: Event<ChatSnapshot> = this._onDidReset.event;

	private readonly chats = new Map<string, ChatState>();
	private readonly sessions: SessionsRepo;
	private readonly transcript: TranscriptRepo;
	private readonly fileCache = new Map<string, { at: number; files: Promise<string[]> }>();

	constructor(private readonly options: PoolChatServiceOptions) {
		super();
		this.sessions = new SessionsRepo(options.store);
		this.transcript = new TranscriptRepo(options.store);
		this._register(options.turns.onDidEvent((e) => this.onChatEvent(e)));
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
				looseRows: [],
				failedPrompts: new Map(),
				queue: [],
				running: false,
				modes: { available: [] },
				models: { available: [] },
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
			throw new AgentTabsError('chat/unknown', `There is no chat ${chatId}; it may have been deleted with its session.`);
		}
		return chat;
	}

	private agentLabel(agent: string): string {
		return this.options.definitions().find((d) => d.id === agent)?.label ?? agent;
	}

	// ---------------------------------------------------------------------------------------------------
	// Reading

	/** What `read` says, answered once the store has it on disk (so no view holds a number a crash could reuse). */
	async open(chatId: string, since?: { seq: number; epoch: string }): Promise<ChatOpenResult> {
		const result = this.read(chatId, since);
		await this.options.store.durable();
		return result;
	}

	/**
	 * The chat from the database: the rows changed after `since.seq` when the view knows this numbering and
	 * is not ahead of the database, else a snapshot.
	 */
	read(chatId: string, since?: { seq: number; epoch: string }): ChatOpenResult {
		this.chat(chatId);
		const current = this.transcript.chatSeq(chatId);
		if (since && since.epoch === storedEpoch && since.seq <= current) {
			return { kind: 'updates', updates: this.changesSince(chatId, since.seq), meta: this.meta(chatId), seq: current };
		}
		return { kind: 'snapshot', snapshot: this.snapshot(chatId, current) };
	}

	private snapshot(chatId: string, seq: number): ChatSnapshot {
		const st = this.state(chatId);
		const rows: ChatRow[] = [];
		const cwd = this.workingDirectory(chatId);
		for (const turn of this.transcript.listTurns(chatId)) {
			const messages = this.transcript.listMessages(turn.id);
			this.learnMeta(st, messages);
			rows.push(...turnRows(turn, messages, cwd));
		}
		// Chat-level rows go after the turns that came before them.
		for (const { row } of st.looseRows) {
			const next = rows.findIndex((r) => r.kind === 'turn' && r.number > (row.order?.[0] ?? Infinity));
			rows.splice(next < 0 ? rows.length : next, 0, row);
		}
		for (const row of rows) {
			st.sent.add(row.id);
		}
		return { chatId, epoch: storedEpoch, seq, rows, meta: this.meta(chatId) };
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
		changed.push(...st.looseRows.filter((l) => l.seq > seq));
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
		return {
			chatId,
			title: chat.title,
			agent: chat.agent,
			agentLabel: this.agentLabel(chat.agent),
			status: waiting ? 'waitingForPermission' : st.running ? 'running' : 'idle',
			modes: st.modes,
			models: st.models,
			commands: st.commands ?? [],
			queue: st.queue.map((q) => ({ ...q })),
			closed: this.isClosed(chat),
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
			this.options.logger.debug(`[PoolChatService][meta] ${chatId}: ${errorMessage(e)}`);
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
		}
		if (e.turnId) {
			this.scheduleRefresh(e.chatId);
		} else if (e.event.type === 'notice' || e.event.type === 'error') {
			const row: ChatRow =
				e.event.type === 'notice'
					? { id: newId('note'), turnId: null, kind: 'notice', severity: e.event.severity, title: e.event.title, ...(e.event.description ? { description: e.event.description } : {}) }
					: { id: newId('note'), turnId: null, kind: 'error', message: e.event.message, retryable: false };
			this.addLooseRow(e.chatId, row);
		}
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

	private scheduleRefresh(chatId: string): void {
		const st = this.state(chatId);
		if (!st.refreshTimer) {
			st.refreshTimer = setTimeout(() => {
				st.refreshTimer = undefined;
				if (!this.isDisposed) {
					this.publishChanges(chatId);
				}
			}, this.options.refreshDelayMs ?? 120);
		}
	}

	/**
	 * Sends the rows the database numbered after the last one sent, in their order, each naming the one
	 * before it (`prevSeq`), once the store has acknowledged them.
	 */
	private publishChanges(chatId: string): void {
		try {
			const st = this.state(chatId);
			const updates = this.changesSince(chatId, st.seq);
			if (updates.length === 0) {
				return;
			}
			for (const u of updates) {
				u.prevSeq = st.seq;
				st.seq = u.seq;
			}
			st.sending = st.sending
				.then(() => this.options.store.durable())
				.catch((e) => this.options.logger.warn(`[PoolChatService][publish] ${chatId}: not acknowledged: ${errorMessage(e)}`))
				.then(() => {
					for (const u of updates) {
						this._onDidUpdateRow.fire(u);
					}
				});
		} catch (e) {
			this.options.logger.warn(`[PoolChatService][publish] ${chatId}: ${errorMessage(e)}`);
		}
	}

	/** Resolves once every row update read so far for the chat has been sent. */
	async sent(chatId: string): Promise<void> {
		await this.state(chatId).sending;
	}

	private addLooseRow(chatId: string, row: ChatRow): void {
		const st = this.state(chatId);
		let seq: number;
		let turns: number;
		try {
			turns = this.transcript.listTurns(chatId).length;
			seq = this.transcript.nextChatSeq(chatId);
		} catch (e) {
			// The store refuses writes (the row may be the error saying so): number it in memory, so it is still shown.
			this.options.logger.warn(`[PoolChatService][notice] ${chatId}: no stored number: ${errorMessage(e)}`);
			turns = Number.MAX_SAFE_INTEGER;
			seq = st.seq + 1;
		}
		const placed = { ...row, order: looseRowOrder(turns) } as ChatRow;
		st.looseRows.push({ row: placed, seq });
		if (st.looseRows.length > looseRowLimit) {
			st.looseRows.splice(0, st.looseRows.length - looseRowLimit);
		}
		this.publishChanges(chatId);
	}

	// ---------------------------------------------------------------------------------------------------
	// Acting

	async send(chatId: string, prompt: PromptPayload): Promise<{ queued: boolean }> {
		this.chat(chatId);
		if (prompt.text.trim() === '' && prompt.attachments.length === 0) {
			throw new AgentTabsError('prompt/empty', 'Type a message first.');
		}
		const st = this.state(chatId);
		if (st.running) {
			st.queue.push({ id: newId('queued'), text: prompt.text, attachments: prompt.attachments });
			this.fireMeta(chatId);
			return { queued: true };
		}
		void this.runQueue(chatId, prompt);
		return { queued: false };
	}

	private async runQueue(chatId: string, first: PromptPayload): Promise<void> {
		const st = this.state(chatId);
		st.running = true;
		this.fireMeta(chatId);
		try {
			let next: PromptPayload | undefined = first;
			while (next && !this.isDisposed) {
				await this.runOne(chatId, next);
				next = st.queue.shift();
				this.fireMeta(chatId);
			}
		} finally {
			st.running = false;
			this.fireMeta(chatId);
		}
	}

	private async runOne(chatId: string, prompt: PromptPayload): Promise<void> {
		const st = this.state(chatId);
		try {
			const chat = this.chat(chatId);
			const cwd = this.workingDirectory(chatId);
			// Closing ended the agent process and forgot its context, so a prompt after a close starts anew.
			if (this.isClosed(chat) && !st.saidNewContext) {
				st.saidNewContext = true;
				this.addLooseRow(chatId, { id: newId('note'), turnId: null, kind: 'notice', severity: 'info', title: 'This chat was closed earlier, so the agent starts a new conversation. The transcript above is kept.' });
			}
			const input = toPromptInput(prompt, cwd);
			// The turn runner says nothing until the agent's first event, which can take seconds while it starts:
			// show the new turn (the prompt, "running") as soon as the turn runner has written it.
			const earlier = new Set(this.transcript.listTurns(chatId).map((t) => t.id));
			const watch = setInterval(() => {
				const fresh = this.transcript.listTurns(chatId).find((t) => !earlier.has(t.id));
				if (fresh) {
					clearInterval(watch);
					this.publishChanges(chatId);
				}
			}, 50);
			try {
				await this.options.turns.runTurn(chatId, chat.agent, input);
			} finally {
				clearInterval(watch);
			}
			clearTimeout(st.refreshTimer);
			st.refreshTimer = undefined;
			this.publishChanges(chatId);
		} catch (e) {
			// The turn never started (the agent is not installed, needs a key, the worktree is gone): say so with Retry.
			const id = newId('err');
			st.failedPrompts.set(id, prompt);
			this.addLooseRow(chatId, { id, turnId: null, kind: 'error', message: errorMessage(e), code: e instanceof AgentTabsError ? e.code : undefined, retryable: true });
		}
	}

	async cancel(chatId: string): Promise<void> {
		const chat = this.chat(chatId);
		await this.options.turns.cancel(chatId, chat.agent);
	}

	answerPermission(chatId: string, requestId: string, optionId: string): { accepted: boolean } {
		const brokerId = this.state(chatId).permissionIds.get(requestId);
		const accepted = brokerId !== undefined && this.options.permissions.decide(brokerId, optionId);
		return { accepted };
	}

	private queued(chatId: string, queueId: string): QueuedPrompt {
		const q = this.state(chatId).queue.find((x) => x.id === queueId);
		if (!q) {
			throw new AgentTabsError('queue/gone', 'That message was already sent or removed.');
		}
		return q;
	}

	editQueued(chatId: string, queueId: string, text: string): void {
		if (text.trim() === '') {
			throw new AgentTabsError('prompt/empty', 'A queued message cannot be empty; remove it instead.');
		}
		this.queued(chatId, queueId).text = text;
		this.fireMeta(chatId);
	}

	removeQueued(chatId: string, queueId: string): void {
		const st = this.state(chatId);
		const q = this.queued(chatId, queueId);
		st.queue = st.queue.filter((x) => x !== q);
		this.fireMeta(chatId);
	}

	private rewindTarget(chatId: string, turnId: string): { turn: TurnRow; cwd: string; ref: string } {
		const turn = this.transcript.getTurn(turnId);
		if (!turn || turn.chat_id !== chatId) {
			throw new AgentTabsError('turn/unknown', 'That turn is not part of this chat.');
		}
		if (!turn.checkpoint_before) {
			throw new AgentTabsError('checkpoint/missing', `Turn ${turn.seq} has no checkpoint to rewind to (the folder was not a git worktree when it ran).`);
		}
		const cwd = this.workingDirectory(chatId);
		if (!cwd) {
			throw new AgentTabsError('chat/noFolder', 'This chat has no worktree to rewind.');
		}
		if (this.state(chatId).running) {
			throw new AgentTabsError('agent/busy', 'A turn is running; cancel it or wait before rewinding.');
		}
		return { turn, cwd, ref: turn.checkpoint_before };
	}

	async rewindPreview(chatId: string, turnId: string): Promise<RewindPreview> {
		const { turn, cwd, ref } = this.rewindTarget(chatId, turnId);
		const git = new Git(cwd);
		// Records the present state under a throwaway ref only to compare it; the worktree is not touched.
		const probe = `refs/agent-tabs/preview/${newId('p')}`;
		try {
			const now = await snapshotCommit(git, probe, 'agent-tabs: rewind preview');
			const files = await git.zlist(['diff', '--name-only', '-z', now.commit, ref]);
			const laterTurns = this.transcript.listTurns(chatId).filter((t) => t.seq > turn.seq).length;
			return { turnId, number: turn.seq, files, laterTurns };
		} finally {
			await git.run(['update-ref', '-d', probe]).catch(() => undefined);
		}
	}

	async rewind(chatId: string, turnId: string): Promise<RewindResult> {
		const { turn, cwd, ref } = this.rewindTarget(chatId, turnId);
		const result = await this.options.rewind(cwd, ref);
		const files = result.files.length === 1 ? '1 file' : `${result.files.length} files`;
		this.addLooseRow(chatId, {
			id: newId('note'),
			turnId: null,
			kind: 'notice',
			severity: 'info',
			title: `Rewound ${files} to before turn ${turn.seq}.`,
			description: `What the rewind replaced is kept in ${result.replacedRef}.`,
		});
		return result;
	}

	async retry(chatId: string, errorRowId: string): Promise<{ queued: boolean }> {
		const st = this.state(chatId);
		const failed = st.failedPrompts.get(errorRowId);
		if (failed) {
			st.failedPrompts.delete(errorRowId);
			return this.send(chatId, failed);
		}
		const turn = this.options.store.get<{ prompt: string; chat_id: string }>('SELECT t.prompt, t.chat_id FROM messages m JOIN turns t ON t.id = m.turn_id WHERE m.id = ?', [errorRowId]);
		if (!turn || turn.chat_id !== chatId) {
			throw new AgentTabsError('retry/unknown', 'There is nothing to retry for that message.');
		}
		return this.send(chatId, { text: turn.prompt, attachments: [] });
	}

	private async liveHandle(chatId: string): Promise<ReturnType<AgentPool['peek']>> {
		const chat = this.chat(chatId);
		return this.options.pool.peek(chatId, chat.agent) ?? (await this.options.pool.ensure(chatId, chat.agent));
	}

	async setMode(chatId: string, modeId: string): Promise<void> {
		const handle = await this.liveHandle(chatId);
		if (!handle?.setMode) {
			throw new AgentTabsError('agent/noModes', `${this.agentLabel(this.chat(chatId).agent)} does not offer modes.`);
		}
		await handle.setMode(modeId);
		const st = this.state(chatId);
		st.modes = { ...st.modes, current: modeId };
		this.fireMeta(chatId);
	}

	async setModel(chatId: string, modelId: string): Promise<void> {
		const handle = await this.liveHandle(chatId);
		if (!handle?.setModel) {
			throw new AgentTabsError('agent/noModels', `${this.agentLabel(this.chat(chatId).agent)} does not offer a choice of model.`);
		}
		await handle.setModel(modelId);
		const st = this.state(chatId);
		st.models = { ...st.models, current: modelId };
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
			throw new AgentTabsError('chat/noFolder', 'This chat has no worktree to mention files from.');
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

	saveDraft(chatId: string, draft: string): void {
		this.state(chatId).draft = draft;
	}

	async rename(chatId: string, title: string): Promise<void> {
		const clean = title.trim();
		if (clean === '') {
			throw new AgentTabsError('chat/emptyTitle', 'A chat needs a title.');
		}
		this.chat(chatId);
		// TODO(issue 12): SessionsRepo has no rename yet; this one statement moves there with the dispatcher.
		const write = this.options.store.writeDurable((tx) => tx.run('UPDATE chats SET title = ?, updated_at = ? WHERE id = ?', [clean, Date.now(), chatId]));
		this.fireMeta(chatId);
		// The tab shows the new title at once; the command reports done only once it is on disk.
		await write;
	}

	async closeContext(chatId: string): Promise<void> {
		const chat = this.sessions.getChat(chatId);
		if (!chat) {
			return;
		}
		const st = this.state(chatId);
		st.queue = [];
		await this.options.turns.cancel(chatId, chat.agent).catch((e) => this.options.logger.warn(`[PoolChatService][close] cancel: ${errorMessage(e)}`));
		// Closing the chat removes its agent_sessions rows (a trigger), so the next prompt starts a new context;
		// the agent process itself (its whole process group) ends now, not when the idle reaper finds it.
		this.sessions.closeChat(chatId);
		await this.options.pool.end(chatId, chat.agent).catch((e) => this.options.logger.warn(`[PoolChatService][close] end: ${errorMessage(e)}`));
		this.chats.delete(chatId);
		clearTimeout(st.refreshTimer);
		await this.options.store.durable();
	}
}

/** Mentioned files become absolute paths inside the worktree (resource links); a selection is quoted into the text. */
export function toPromptInput(prompt: PromptPayload, cwd: string | undefined): PromptInput {
	const files: string[] = [];
	let text = prompt.text;
	for (const a of prompt.attachments) {
		const abs = cwd ? path.resolve(cwd, a.path) : undefined;
		if (!abs || !cwd || (abs !== cwd && !abs.startsWith(cwd + path.sep))) {
			throw new AgentTabsError('prompt/outsideWorktree', `${a.path} is not inside this session's worktree, so it cannot be sent.`);
		}
		if (a.kind === 'file') {
			files.push(abs);
		} else {
			text += `\n\n${a.path}:${a.startLine}-${a.endLine}\n\`\`\`\n${a.text}\n\`\`\``;
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
