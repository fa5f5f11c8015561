import * as path from 'node:path';
import * as vscode from 'vscode';
import { AgentTabsError } from '../../common/errors';
import { Disposable } from '../../common/lifecycle';
import type { Logger } from '../../common/log';
import { chatTabTitle, draftAttachments, isPromptPayload, queuedEdit, type ChatMeta, type PromptAttachment, type PromptPayload } from '../../protocol/messages';
import type { ChatService } from './chatService';
import { chatStrings, messengerStrings } from './chatStrings';
import { chatHtml, newNonce } from './html';
import { WebviewMessenger } from './messenger';

export const chatViewType = 'agentTabs.chat';

/** The editor selection a chat may attach: where it is (absolute path) and what it says. */
export interface EditorSelection {
	fsPath: string;
	startLine: number;
	endLine: number;
	text: string;
}

/** Options every chat webview gets, also when VS Code restores one: scripts on, nothing else reachable. */
export function chatWebviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
	return {
		enableScripts: true,
		enableCommandUris: false,
		localResourceRoots: [vscode.Uri.joinPath(extensionUri, 'dist', 'webview'), vscode.Uri.joinPath(extensionUri, 'media')],
	};
}

function checkedPrompt(prompt: unknown): PromptPayload {
	if (!isPromptPayload(prompt)) {
		throw new AgentTabsError('badRequest', vscode.l10n.t('The message was not in a form Agent Tabs understands; nothing was sent.'));
	}
	return prompt;
}


/**
 * One chat's editor tab: sets up the webview (HTML with CSP and nonce), answers the app's requests through
 * the `ChatService` port, and forwards that chat's row and meta updates. Owns nothing of the chat itself:
 * disposing the panel object never ends the agent context (the manager decides that).
 */
export class ChatPanel extends Disposable {
	private readonly messenger: WebviewMessenger;

	constructor(
		readonly chatId: string,
		readonly panel: vscode.WebviewPanel,
		private readonly service: ChatService,
		private readonly extensionUri: vscode.Uri,
		private readonly logger: Logger,
		private readonly selection: () => EditorSelection | undefined,
		/** The webview panel is gone (closed by the user, by code, or with the window); the owner decides what that means. */
		onDidDisposePanel: () => void,
		agentIcon?: (agent: string) => vscode.Uri,
	) {
		super();
		panel.webview.options = chatWebviewOptions(extensionUri);
		this.messenger = this._register(new WebviewMessenger(panel.webview, logger, `[ChatPanel][${chatId}]`, messengerStrings(vscode)));
		this.registerHandlers();
		this._register(
			this.messenger.onDidReady(({ protocolMatches }) => {
				if (!protocolMatches) {
					this.logger.info(`[ChatPanel][${chatId}] the page was built for another protocol; reloading it`);
					this.render();
				}
			}),
		);
		this._register(service.onDidUpdateRow((u) => u.chatId === chatId && this.messenger.notify('chat/didUpdateRow', u)));
		this._register(service.onDidReset((s) => s.chatId === chatId && this.messenger.notify('chat/didReset', s)));
		this._register(
			service.onDidChangeMeta((m) => {
				if (m.chatId === chatId) {
					this.updateTitle(m);
					this.messenger.notify('chat/didChangeMeta', m);
				}
			}),
		);
		this._register(panel.onDidDispose(onDidDisposePanel));
		const meta = service.meta(chatId);
		// A chat keeps its agent: the icon is looked up once, not on every title change.
		panel.iconPath = agentIcon?.(meta.agent) ?? vscode.Uri.joinPath(extensionUri, 'media', 'agent-tabs.svg');
		this.updateTitle(meta);
		this.render();
	}

	/** Whether the user can see the tab now (a permission request then needs no extra notification). */
	get visible(): boolean {
		return this.panel.visible;
	}

	reveal(preserveFocus = false): void {
		this.panel.reveal(undefined, preserveFocus);
	}

	private updateTitle(meta: ChatMeta): void {
		this.panel.title = chatTabTitle(meta);
	}

	private render(): void {
		const webview = this.panel.webview;
		const dist = vscode.Uri.joinPath(this.extensionUri, 'dist', 'webview');
		this.panel.webview.html = chatHtml({
			cspSource: webview.cspSource,
			scriptUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'chat.js')).toString(),
			styleUri: webview.asWebviewUri(vscode.Uri.joinPath(dist, 'chat.css')).toString(),
			nonce: newNonce(),
			bootstrap: { chatId: this.chatId, strings: chatStrings(vscode) },
			lang: vscode.env.language,
		});
	}

	private registerHandlers(): void {
		const m = this.messenger;
		const s = this.service;
		const own = (chatId: string): string => {
			// A page only ever speaks for its own chat.
			if (chatId !== this.chatId) {
				throw new AgentTabsError('badRequest', vscode.l10n.t('This tab belongs to another chat.'));
			}
			return chatId;
		};
		m.handle('chat/open', (p) => s.open(own(p.chatId), p.sinceSeq !== undefined && p.epoch ? { seq: p.sinceSeq, epoch: p.epoch } : undefined));
		m.handle('chat/earlierRows', (p) => s.earlierRows(own(p.chatId), p.before));
		m.handle('chat/send', (p) => s.send(own(p.chatId), checkedPrompt(p.prompt)));
		m.handle('chat/cancel', async (p) => (await s.cancel(own(p.chatId)), null));
		m.handle('chat/setMode', async (p) => (await s.setMode(own(p.chatId), p.modeId), null));
		m.handle('chat/setModel', async (p) => (await s.setModel(own(p.chatId), p.modelId), null));
		m.handle('chat/setConfigOption', async (p) => (await s.setConfigOption(own(p.chatId), p.configId, p.value), null));
		m.handle('chat/saveDraft', (p) => s.saveDraft(own(p.chatId), p.draft, draftAttachments(p.attachments), queuedEdit(p.queueEdit)));
		m.handle('chat/retry', (p) => s.retry(own(p.chatId), p.rowId));
		m.handle('permission/answer', (p) => s.answerPermission(own(p.chatId), p.requestId, p.optionId));
		m.handle('queue/edit', async (p) => (await s.editQueued(own(p.chatId), p.queueId, p.text), null));
		m.handle('queue/remove', async (p) => (await s.removeQueued(own(p.chatId), p.queueId), null));
		m.handle('turn/rewindPreview', (p) => s.rewindPreview(own(p.chatId), p.turnId));
		m.handle('turn/rewind', (p) => s.rewind(own(p.chatId), p.turnId));
		m.handle('complete/commands', (p) => s.completeCommands(own(p.chatId), p.query));
		m.handle('complete/files', (p) => s.completeFiles(own(p.chatId), p.query));
		m.handle('editor/attachSelection', (p) => this.attachSelection(own(p.chatId)));
	}

	/** The last editor selection, if it is in this chat's worktree; otherwise says why not. */
	private attachSelection(chatId: string): PromptAttachment {
		const sel = this.selection();
		if (!sel || sel.text.length === 0) {
			throw new AgentTabsError('selection/none', vscode.l10n.t('Select some text in an editor first, then attach it.'));
		}
		const cwd = this.service.workingDirectory(chatId);
		if (!cwd) {
			throw new AgentTabsError('chat/noFolder', vscode.l10n.t('This chat has no worktree, so nothing can be attached.'));
		}
		const rel = path.relative(cwd, sel.fsPath);
		if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
			throw new AgentTabsError(
				'selection/outsideWorktree',
				vscode.l10n.t("The selection is in {0}, which is not in this session's worktree ({1}). Open the file from the worktree to attach it.", sel.fsPath, cwd),
			);
		}
		return { kind: 'selection', path: rel.split(path.sep).join('/'), startLine: sel.startLine, endLine: sel.endLine, text: sel.text };
	}
}
