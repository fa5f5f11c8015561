import type { Event } from '../../common/event';
import type { ChatDraft, ChatMeta, ChatOpenResult, EarlierRows, PromptAttachment, ChatSnapshot, CompletionItem, PromptPayload, QueuedEdit, RewindPreview, RewindResult, RowUpdate } from '../../protocol/messages';

/**
 * The port between chat tabs and whatever runs chats: `TaskChatService`, over the task dispatcher (a message
 * is a task; the chat's queue is its queued tasks). Every method takes the chat's id; errors are
 * `AgentTabsError`s whose code and plain-words message reach the tab unchanged.
 */
export interface ChatService {
	/**
	 * The chat as the database has it, or only the rows changed after `since.seq` (the chat's stored sequence,
	 * which survives restarts) when the view knows that numbering; answered once it is on disk.
	 */
	open(chatId: string, since?: { seq: number; epoch: string }): Promise<ChatOpenResult>;
	/** The rows a long chat's snapshot left out (`ChatSnapshot.earlierBefore`): those just before turn `before`, a slice at a time. */
	earlierRows(chatId: string, before: number): EarlierRows;
	meta(chatId: string): ChatMeta;
	/** Runs the prompt now, or queues it (`queued: true`) behind the chat's running turn or the task limits. */
	send(chatId: string, prompt: PromptPayload): Promise<{ queued: boolean }>;
	/** Cancels the running turn; queued prompts stay queued. */
	cancel(chatId: string): Promise<void>;
	/**
	 * A person's answer to a permission request; `accepted: false` when it was already settled elsewhere, or
	 * (`waiting: true`) when it cannot be answered yet: it waits for earlier requests of the chat to be settled.
	 */
	answerPermission(chatId: string, requestId: string, optionId: string): { accepted: boolean; waiting?: boolean };
	/** Changes a queued message before it is sent; refused (`queue/gone`) once it was sent or removed. */
	editQueued(chatId: string, queueId: string, text: string): Promise<void>;
	removeQueued(chatId: string, queueId: string): Promise<void>;
	/** What "Rewind to before this turn" would replace; nothing changes yet. */
	rewindPreview(chatId: string, turnId: string): Promise<RewindPreview>;
	rewind(chatId: string, turnId: string): Promise<RewindResult>;
	/** Sends again the prompt of the turn (or failed send) that an error row belongs to. */
	retry(chatId: string, errorRowId: string): Promise<{ queued: boolean }>;
	setMode(chatId: string, modeId: string): Promise<void>;
	setModel(chatId: string, modelId: string): Promise<void>;
	/** Sets one of the agent's settings (`ChatMeta.settings`); refused unless the agent offered that option and value. */
	setConfigOption(chatId: string, configId: string, value: string): Promise<void>;
	completeCommands(chatId: string, query: string): CompletionItem[];
	completeFiles(chatId: string, query: string): Promise<CompletionItem[]>;
	/** The folder the chat's agent works in (its session's worktree), for checks such as "is this selection inside it". */
	workingDirectory(chatId: string): string | undefined;
	/**
	 * Keeps an unsent draft and what it attaches; returns them as they may be stored (known secrets redacted:
	 * a pasted key is never kept in clear, nor one in an attached selection).
	 */
	saveDraft(chatId: string, draft: string, attachments?: PromptAttachment[], queueEdit?: QueuedEdit): ChatDraft;
	/** The draft this window last kept for the chat (`saveDraft`), if any. */
	keptDraft(chatId: string): ChatDraft | undefined;
	rename(chatId: string, title: string): Promise<void>;
	/** The chats whose tab would show `tabTitle` (`chatTabTitle`), open or not. */
	chatsTitled(tabTitle: string): string[];
	/** The tab was closed by the user: end the chat's agent context and its process. The transcript stays. */
	closeContext(chatId: string): Promise<void>;
	/** Sequence-numbered row updates of every chat (filter by `chatId`). */
	readonly onDidUpdateRow: Event<RowUpdate>;
	readonly onDidChangeMeta: Event<ChatMeta>;
	/** A chat's rows changed in a way updates cannot say (a new epoch): views replace everything. */
	readonly onDidReset: Event<ChatSnapshot>;
}
