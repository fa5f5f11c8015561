import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AgentDefinition } from '../../agents/definitions';
import { agentAvailability } from '../../agents/installed';
import { lostViewRow } from '../../common/commandArgs';
import type { SessionsRepo } from '../../db/sessionsRepo';
import type { ChatPanelManager } from './chatPanels';
import type { ChatService } from './chatService';

export interface ChatCommandDeps {
	manager: ChatPanelManager;
	service: () => Promise<ChatService>;
	sessions: () => Promise<SessionsRepo>;
	definitions: () => readonly AgentDefinition[];
	/** Whether a secret variable has a value in SecretStorage. */
	hasKey: (envName: string) => Promise<boolean>;
	/** Resolves when every write so far is on disk; a new chat's tab opens only after it (see Store.durable). */
	durable: () => Promise<void>;
}

/** Ids from a Sessions tree node or a plain string argument (commands run from the palette get none). */
function idFrom(arg: unknown, kind: 'session' | 'chat'): string | undefined {
	if (typeof arg === 'string') {
		return arg;
	}
	const node = arg as { kind?: string; session?: { id?: unknown }; chat?: { id?: unknown; session_id?: unknown } } | undefined;
	if (kind === 'chat' && node?.kind === 'chat' && typeof node.chat?.id === 'string') {
		return node.chat.id;
	}
	if (kind === 'session' && node?.kind === 'session' && typeof node.session?.id === 'string') {
		return node.session.id;
	}
	if (kind === 'session' && node?.kind === 'chat' && typeof node.chat?.session_id === 'string') {
		return node.chat.session_id;
	}
	return undefined;
}

/** The session the user is in: that of the active chat tab, else the one whose worktree holds the active editor's file. */
function currentSession(sessions: SessionsRepo, activeChatId: string | undefined): string | undefined {
	const fromTab = activeChatId ? sessions.getChat(activeChatId)?.session_id : undefined;
	if (fromTab) {
		return fromTab;
	}
	const file = vscode.window.activeTextEditor?.document.uri;
	if (file?.scheme !== 'file') {
		return undefined;
	}
	return sessions
		.list()
		.filter((s) => s.status === 'active' && s.worktree_path)
		.find((s) => {
			const rel = path.relative(s.worktree_path!, file.fsPath);
			return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
		})?.id;
}

/** "New Chat" (in the current session, or a chosen one), "Open Chat", "Rename Chat", "Close Chat". */
export function chatCommandHandlers(deps: ChatCommandDeps): Record<'newChat' | 'openChat' | 'renameChat' | 'closeChat', (arg?: unknown) => Promise<unknown>> {
	const pickChat = async (arg: unknown, placeHolder: string, onlyOpenTabs = false): Promise<string | undefined> => {
		const given = idFrom(arg, 'chat');
		if (given) {
			return given;
		}
		// A row the Sessions view lost was one chat the user clicked: ask which rather than take the active tab's.
		const active = arg === lostViewRow ? undefined : deps.manager.activeChatId;
		if (active && onlyOpenTabs) {
			return active;
		}
		const open = new Set(deps.manager.openChatIds);
		const chats = (await deps.sessions()).listAllChats().filter((c) => !onlyOpenTabs || open.has(c.id));
		if (chats.length === 0) {
			void vscode.window.showInformationMessage(onlyOpenTabs ? vscode.l10n.t('No chat tab is open.') : vscode.l10n.t('There are no chats yet. Start one with "Agent Tabs: New Chat".'));
			return undefined;
		}
		const items = chats.map((c) => ({
			label: c.title,
			description: `${c.session_title} · ${c.agent}`,
			detail: open.has(c.id) ? vscode.l10n.t('open') : c.closed_at ? vscode.l10n.t('closed') : undefined,
			id: c.id,
		}));
		return (await vscode.window.showQuickPick(items, { placeHolder, ignoreFocusOut: true }))?.id;
	};

	return {
		newChat: async (arg) => {
			const sessions = await deps.sessions();
			let sessionId = idFrom(arg, 'session');
			if (arg !== lostViewRow) {
				sessionId ??= currentSession(sessions, deps.manager.activeChatId);
			}
			if (!sessionId) {
				const active = sessions.list().filter((s) => s.status === 'active');
				if (active.length === 0) {
					void vscode.window.showInformationMessage(vscode.l10n.t('A chat lives in a session. Create one first with "Agent Tabs: New Session".'));
					return undefined;
				}
				sessionId =
					active.length === 1
						? active[0]!.id
						: (await vscode.window.showQuickPick(active.map((s) => ({ label: s.title, description: s.branch ?? '', id: s.id })), { placeHolder: vscode.l10n.t('Which session?'), ignoreFocusOut: true }))?.id;
			}
			if (!sessionId) {
				return undefined;
			}
			const defs = deps.definitions();
			const items = await Promise.all(
				agentAvailability(defs).map(async ({ definition, path }) => {
					const missingKeys: string[] = [];
					for (const env of definition.secretEnv ?? []) {
						if (!(await deps.hasKey(env))) {
							missingKeys.push(env);
						}
					}
					return {
						label: `${path ? '$(check)' : '$(circle-slash)'} ${definition.label}`,
						description: path ? vscode.l10n.t('installed') : vscode.l10n.t('not installed'),
						detail: !path
							? vscode.l10n.t('Install: {0}', definition.install ?? definition.command)
							: missingKeys.length
								? vscode.l10n.t('Needs a key: {0} (Agent Tabs: Set API Key)', missingKeys.join(', '))
								: undefined,
						definition,
						installed: !!path,
					};
				}),
			);
			items.sort((a, b) => Number(b.installed) - Number(a.installed));
			// Kept open when focus goes elsewhere: run from a chat tab, the tab takes focus back a moment after the
			// palette closes (VS Code gives a webview its focus back asynchronously), which closed this picker.
			const picked = await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t('Which agent?'), matchOnDetail: true, ignoreFocusOut: true });
			if (!picked) {
				return undefined;
			}
			if (!picked.installed) {
				void vscode.window.showWarningMessage(vscode.l10n.t('{0} is not installed. Install it with: {1}', picked.definition.label, picked.definition.install ?? picked.definition.command));
				return undefined;
			}
			const chat = sessions.createChat({ sessionId, agent: picked.definition.id, title: picked.definition.label });
			await deps.durable();
			await deps.manager.open(chat.id);
			return chat.id;
		},
		openChat: async (arg) => {
			const chatId = await pickChat(arg, vscode.l10n.t('Which chat?'));
			if (chatId) {
				await deps.manager.open(chatId);
			}
			return chatId;
		},
		renameChat: async (arg) => {
			const chatId = idFrom(arg, 'chat') ?? (arg === lostViewRow ? undefined : deps.manager.activeChatId) ?? (await pickChat(arg, vscode.l10n.t('Rename which chat?')));
			if (!chatId) {
				return undefined;
			}
			const service = await deps.service();
			const title = await vscode.window.showInputBox({
				title: vscode.l10n.t('Rename Chat'),
				value: service.meta(chatId).title,
				ignoreFocusOut: true,
				validateInput: (v) => (v.trim() === '' ? vscode.l10n.t('A chat needs a title.') : undefined),
			});
			if (title !== undefined) {
				await service.rename(chatId, title);
			}
			return title;
		},
		closeChat: async (arg) => {
			const chatId = await pickChat(arg, vscode.l10n.t('Close which chat?'), true);
			if (chatId) {
				await deps.manager.close(chatId);
			}
			return chatId;
		},
	};
}
