import * as vscode from 'vscode';
import { Disposable, DisposableMap } from '../../common/lifecycle';
import { errorMessage, type Logger } from '../../common/log';
import { chatTabTitle, readChatTabState } from '../../protocol/messages';
import { ChatPanel, chatViewType, chatWebviewOptions, type EditorSelection } from './chatPanel';
import type { ChatService } from './chatService';
import { noticeHtml } from './html';

/**
 * Owns every open chat tab, one per chat (open-or-reveal), keyed by chat id.
 *
 * Closing versus going away: a tab the user closes ends the chat's agent context; a tab that disappears
 * because the window closes or reloads must not. The extension host gets `onDidDispose` in the first case;
 * in the second VS Code deactivates the extension, and `ExtensionRoot.shutdown` calls `beginShutdown()`
 * before anything else. A dispose is therefore only treated as a close after `closeGraceMs` without a
 * shutdown starting, which also covers a host that reports panel disposal just before deactivating. Losing
 * the race the other way only keeps an agent context alive until the idle reaper; it never loses data.
 */
export class ChatPanelManager extends Disposable {
	private readonly panels = this._register(new DisposableMap<string, ChatPanel>());
	private readonly pendingCloses = new Map<string, NodeJS.Timeout>();
	private shuttingDown = false;
	private lastSelection: EditorSelection | undefined;

	constructor(
		private readonly extensionUri: vscode.Uri,
		private readonly service: Promise<ChatService>,
		private readonly logger: Logger,
		private readonly closeGraceMs = 1000,
		/** The icon of an agent's tabs (the manager does not know the agent definitions). */
		private readonly agentIcon?: (agent: string) => vscode.Uri,
		/** The workspace's memory, for chats closed while VS Code still held a tab of theirs it had not restored. */
		private readonly memory?: vscode.Memento,
	) {
		super();
		service.catch(() => undefined);
		this._register({ dispose: () => this.pendingCloses.forEach((t) => clearTimeout(t)) });
		this.rememberSelection(vscode.window.activeTextEditor);
		// A tab takes focus from the editor, so the selection to attach is the last one an editor had.
		this._register(vscode.window.onDidChangeTextEditorSelection((e) => this.rememberSelection(e.textEditor)));
		this._register(vscode.window.onDidChangeActiveTextEditor((e) => this.rememberSelection(e)));
	}

	private rememberSelection(editor: vscode.TextEditor | undefined): void {
		if (!editor || editor.document.uri.scheme !== 'file') {
			return;
		}
		const s = editor.selection;
		this.lastSelection = { fsPath: editor.document.uri.fsPath, startLine: s.start.line + 1, endLine: s.end.line + 1, text: editor.document.getText(s) };
	}

	get openChatIds(): string[] {
		return [...this.panels.keys()];
	}

	get(chatId: string): ChatPanel | undefined {
		return this.panels.get(chatId);
	}

	/** The chat whose tab is active, if one is. */
	get activeChatId(): string | undefined {
		return [...this.panels.values()].find((p) => p.panel.active)?.chatId;
	}

	isVisible(chatId: string): boolean {
		return this.panels.get(chatId)?.visible ?? false;
	}

	/** Reveals the chat's tab, or opens one. */
	async open(chatId: string, options: { preserveFocus?: boolean; viewColumn?: vscode.ViewColumn } = {}): Promise<ChatPanel> {
		const existing = this.panels.get(chatId);
		if (existing) {
			existing.reveal(options.preserveFocus);
			return existing;
		}
		const service = await this.service;
		service.meta(chatId); // throws, in plain words, for a chat that does not exist
		await this.forgetClosedBeforeRestore(chatId);
		const again = this.panels.get(chatId);
		if (again) {
			again.reveal(options.preserveFocus);
			return again;
		}
		const panel = vscode.window.createWebviewPanel(
			chatViewType,
			'',
			{ viewColumn: options.viewColumn ?? vscode.ViewColumn.Active, preserveFocus: options.preserveFocus },
			{ ...chatWebviewOptions(this.extensionUri), retainContextWhenHidden: false },
		);
		return this.adopt(chatId, panel, service);
	}

	/** Brings back a tab VS Code restored after a reload, or closes it when its chat is gone. */
	async restore(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
		const tab = readChatTabState(state);
		let service: ChatService;
		try {
			service = await this.service;
		} catch (e) {
			// The state could not be opened (another process holds it, say): the chat is not gone. The tab stays,
			// says why, and comes back whole at the next reload once the state is free.
			this.logger.warn(`[ChatPanels][restore] keeping a chat tab whose state cannot be opened now: ${errorMessage(e)}`);
			panel.webview.html = noticeHtml(vscode.l10n.t('This chat cannot be shown right now'), vscode.l10n.t('{0} Reload the window once that is resolved; the chat comes back.', errorMessage(e)), vscode.env.language);
			return;
		}
		let closed: boolean;
		try {
			if (!tab) {
				throw new Error('the tab kept no chat id');
			}
			closed = service.meta(tab.chatId).closed;
		} catch (e) {
			this.logger.info(`[ChatPanels][restore] closing a chat tab that cannot be restored: ${errorMessage(e)}`);
			panel.dispose();
			return;
		}
		// Closed from the Sessions view while this tab waited to be shown, and not continued since.
		if (closed && this.closedBeforeRestore().includes(tab.chatId)) {
			this.logger.info(`[ChatPanels][restore] ${tab.chatId} was closed before VS Code restored its tab; closing the tab`);
			panel.dispose();
			return;
		}
		const live = this.panels.get(tab.chatId);
		if (live) {
			// VS Code restores a tab that was in the background only once it is shown, so the chat may have
			// been opened in a second tab meanwhile (from the Sessions view, say). The tab shown now is the one
			// the user chose: it stays, with the draft it kept, unless the other one holds a draft of its own.
			const kept = service.keptDraft(tab.chatId);
			const liveHasDraft = Boolean(kept?.draft || kept?.attachments?.length);
			if ((tab.draft || tab.attachments?.length) && !liveHasDraft) {
				this.logger.info(`[ChatPanels][restore] ${tab.chatId}: a restored tab replaces the one opened before VS Code restored it`);
				// The host's copy becomes this tab's draft: an empty one the other tab left (it sent a message, say)
				// would otherwise replace it when the page asks for the chat.
				service.saveDraft(tab.chatId, tab.draft ?? '', tab.attachments, tab.queueEdit);
				this.adopt(tab.chatId, panel, service); // disposes the other tab's ChatPanel, so its close is not a close
				live.panel.dispose();
				return;
			}
			this.logger.info(`[ChatPanels][restore] ${tab.chatId} already has a tab; closing the restored one${tab.draft ? ' and its older draft' : ''}`);
			panel.dispose();
			live.reveal(true);
			return;
		}
		this.adopt(tab.chatId, panel, service);
	}

	private adopt(chatId: string, panel: vscode.WebviewPanel, service: ChatService): ChatPanel {
		const pending = this.pendingCloses.get(chatId);
		if (pending) {
			clearTimeout(pending);
			this.pendingCloses.delete(chatId);
		}
		const chatPanel: ChatPanel = new ChatPanel(chatId, panel, service, this.extensionUri, this.logger, () => this.lastSelection, () => this.onPanelGone(chatId, chatPanel), this.agentIcon);
		this.panels.set(chatId, chatPanel);
		return chatPanel;
	}

	private onPanelGone(chatId: string, chatPanel: ChatPanel): void {
		if (this.panels.get(chatId) === chatPanel) {
			this.panels.deleteAndDispose(chatId);
		}
		if (this.shuttingDown || this.isDisposed) {
			return;
		}
		this.pendingCloses.set(
			chatId,
			setTimeout(() => {
				this.pendingCloses.delete(chatId);
				if (this.shuttingDown || this.isDisposed || this.panels.has(chatId)) {
					return;
				}
				void this.service
					.then((s) => s.closeContext(chatId))
					.catch((e) => this.logger.warn(`[ChatPanels][close] ${chatId}: ${errorMessage(e)}`));
			}, this.closeGraceMs),
		);
	}

	/**
	 * Closes the chat's tab (ending its context), or ends the context directly when no tab is open. A tab
	 * VS Code has not restored yet (it restores a background tab only once shown) is closed too: at once when
	 * its title names no other chat without a live tab, else when VS Code restores it.
	 */
	async close(chatId: string): Promise<void> {
		const panel = this.panels.get(chatId);
		if (panel) {
			panel.panel.dispose();
			return;
		}
		const service = await this.service;
		const title = chatTabTitle(service.meta(chatId));
		await service.closeContext(chatId);
		const unrestored = allTabs().filter((t) => t.input instanceof vscode.TabInputWebview && isChatViewType(t.input.viewType) && t.label === title);
		const live = [...this.panels.values()].filter((p) => p.panel.title === title).length;
		if (unrestored.length <= live) {
			return;
		}
		await this.rememberClosedBeforeRestore(chatId);
		const otherChats = service.chatsTitled(title).filter((id) => id !== chatId && !this.panels.has(id));
		if (live === 0 && otherChats.length === 0) {
			await vscode.window.tabGroups.close(unrestored).then(undefined, (e: unknown) => this.logger.warn(`[ChatPanels][close] ${chatId}: closing its tab: ${errorMessage(e)}`));
		}
	}

	private closedBeforeRestore(): string[] {
		const ids = this.memory?.get<unknown>(closedBeforeRestoreKey);
		return Array.isArray(ids) ? ids.filter((id): id is string => typeof id === 'string') : [];
	}

	private async rememberClosedBeforeRestore(chatId: string): Promise<void> {
		const ids = [...this.closedBeforeRestore().filter((id) => id !== chatId), chatId].slice(-maxClosedBeforeRestore);
		await this.memory?.update(closedBeforeRestoreKey, ids).then(undefined, (e: unknown) => this.logger.warn(`[ChatPanels][close] ${chatId}: ${errorMessage(e)}`));
	}

	/** The chat is opened again: a tab of it that VS Code restores later is the user's again. */
	private async forgetClosedBeforeRestore(chatId: string): Promise<void> {
		const ids = this.closedBeforeRestore();
		if (ids.includes(chatId)) {
			await this.memory?.update(closedBeforeRestoreKey, ids.filter((id) => id !== chatId)).then(undefined, (e: unknown) => this.logger.warn(`[ChatPanels][open] ${chatId}: ${errorMessage(e)}`));
		}
	}

	/** The window is closing or reloading: panels going away from now on are not closes. */
	beginShutdown(): void {
		this.shuttingDown = true;
		this.pendingCloses.forEach((t) => clearTimeout(t));
		this.pendingCloses.clear();
	}
}

const closedBeforeRestoreKey = 'agentTabs.chatsClosedBeforeTabRestored';
const maxClosedBeforeRestore = 200;

function allTabs(): vscode.Tab[] {
	return vscode.window.tabGroups.all.flatMap((g) => g.tabs);
}

/** A webview tab's view type as the tab API reports it (VS Code prefixes its own marker to the panel's). */
function isChatViewType(viewType: string): boolean {
	return viewType === chatViewType || viewType.endsWith(`-${chatViewType}`);
}

/** Restores chat tabs after a reload from their `{ v, chatId }` state (`onWebviewPanel:agentTabs.chat`). */
export class ChatPanelSerializer implements vscode.WebviewPanelSerializer<unknown> {
	constructor(private readonly manager: ChatPanelManager) {}

	deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown): Promise<void> {
		return this.manager.restore(panel, state);
	}
}
