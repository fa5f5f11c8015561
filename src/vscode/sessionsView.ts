import * as vscode from 'vscode';
import { Disposable } from '../common/lifecycle';
import type { ChatRow, SessionSummary, SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import type { WorktreeRow, WorktreesRepo } from '../db/worktreesRepo';
import { commandIds, viewIds } from './ids';
import { TreeRows } from './treeRows';

/** Nodes of the Sessions tree; commands receive them as their first argument. */
export type SessionsNode =
	| { kind: 'session'; session: SessionSummary }
	| { kind: 'chat'; chat: ChatRow }
	| { kind: 'detachedGroup'; worktrees: WorktreeRow[] }
	| { kind: 'worktree'; worktree: WorktreeRow };

/** The tables whose rows the tree shows (sessions with their worktree state and chat count, chats, worktrees). */
const shownTables = ['sessions', 'chats', 'worktrees'];

/**
 * The Sessions tree: sessions (branch and worktree state), their chats, and worktrees whose session is gone
 * ("detached"). Empty until the store is ready, so VS Code shows the welcome content. Refreshes, debounced,
 * after writes to the tables it shows; the transcript writes of streaming agents (turns, messages) do not
 * touch them, so a busy chat costs the tree nothing. Only rows whose item changed are refreshed (see
 * TreeRows): a menu command run on a row while another changes still gets its row.
 */
export class SessionsView extends Disposable implements vscode.TreeDataProvider<SessionsNode> {
	private readonly _onDidChangeTreeData = this._register(new vscode.EventEmitter<SessionsNode | SessionsNode[] | undefined>());
	readonly onDidChangeTreeData = this._onDidChangeTreeData.event;
	private readonly rows = this._register(
		new TreeRows<SessionsNode>({
			keyOf: nodeKey,
			childrenOf: (parent) => this.childrenOf(parent),
			itemOf: (node) => this.itemOf(node),
			fire: (rows) => this._onDidChangeTreeData.fire(rows),
		}),
	);
	private repos: { sessions: SessionsRepo; worktrees: WorktreesRepo } | undefined;
	readonly treeView: vscode.TreeView<SessionsNode>;

	constructor() {
		super();
		this.treeView = this._register(vscode.window.createTreeView(viewIds.sessions, { treeDataProvider: this, showCollapseAll: true }));
	}

	/** Connects the view to the store once it is open. */
	attach(store: Store, sessions: SessionsRepo, worktrees: WorktreesRepo): void {
		this.repos = { sessions, worktrees };
		this._register(
			store.onDidWrite((e) => {
				if (shownTables.some((t) => e.tables.has(t))) {
					this.rows.scheduleRefresh();
				}
			}),
		);
		this.refresh();
	}

	/** Refreshes the whole tree ("Refresh" in the view's title). */
	refresh(): void {
		this.rows.refreshAll();
	}

	getChildren(element?: SessionsNode): SessionsNode[] {
		return this.rows.getChildren(element);
	}

	getParent(node: SessionsNode): SessionsNode | undefined {
		const parent =
			node.kind === 'chat'
				? this.childrenOf(undefined).find((n) => n.kind === 'session' && n.session.id === node.chat.session_id)
				: node.kind === 'worktree'
					? this.childrenOf(undefined).find((n) => n.kind === 'detachedGroup')
					: undefined;
		return parent && this.rows.node(parent);
	}

	/** The row of a chat, as VS Code knows it (for `treeView.reveal`). */
	chatNode(chatId: string): SessionsNode | undefined {
		const chat = this.repos?.sessions.getChat(chatId);
		return chat && this.rows.node({ kind: 'chat', chat });
	}

	getTreeItem(node: SessionsNode): vscode.TreeItem {
		return this.rows.getTreeItem(node);
	}

	private childrenOf(element: SessionsNode | undefined): SessionsNode[] {
		if (!this.repos) {
			return [];
		}
		if (!element) {
			const nodes: SessionsNode[] = this.repos.sessions.list().map((session) => ({ kind: 'session', session }));
			const detached = this.repos.worktrees.detached();
			if (detached.length > 0) {
				nodes.push({ kind: 'detachedGroup', worktrees: detached });
			}
			return nodes;
		}
		if (element.kind === 'session') {
			return this.repos.sessions.listChats(element.session.id).map((chat) => ({ kind: 'chat', chat }));
		}
		if (element.kind === 'detachedGroup') {
			return element.worktrees.map((worktree) => ({ kind: 'worktree', worktree }));
		}
		return [];
	}

	private itemOf(node: SessionsNode): vscode.TreeItem {
		switch (node.kind) {
			case 'session': {
				const s = node.session;
				const item = new vscode.TreeItem(s.title, s.chat_count > 0 ? vscode.TreeItemCollapsibleState.Collapsed : vscode.TreeItemCollapsibleState.None);
				item.id = s.id;
				item.contextValue = `session.${s.status}.${s.worktree_state ?? 'none'}`;
				const parts: string[] = [];
				if (s.branch) {
					parts.push(s.branch);
				}
				if (s.worktree_state && s.worktree_state !== 'ready') {
					parts.push(stateLabel(s.worktree_state));
				}
				if (s.status === 'archived') {
					parts.push(vscode.l10n.t('archived'));
				}
				item.description = parts.join(' · ');
				item.tooltip = new vscode.MarkdownString(
					[
						`**${escapeMarkdown(s.title)}**`,
						s.branch ? vscode.l10n.t('Branch: {0}', s.branch) : '',
						s.worktree_path ? vscode.l10n.t('Worktree: {0} ({1})', s.worktree_path, stateLabel(s.worktree_state ?? 'ready')) : vscode.l10n.t('No worktree'),
						vscode.l10n.t('{0} chats', s.chat_count),
					]
						.filter(Boolean)
						.join('\n\n'),
				);
				item.iconPath = new vscode.ThemeIcon(s.status === 'archived' ? 'archive' : s.worktree_state === 'missing' ? 'warning' : 'git-branch');
				return item;
			}
			case 'chat': {
				const item = new vscode.TreeItem(node.chat.title, vscode.TreeItemCollapsibleState.None);
				item.id = node.chat.id;
				item.description = node.chat.closed_at ? vscode.l10n.t('closed') : node.chat.agent;
				item.contextValue = 'chat';
				item.iconPath = new vscode.ThemeIcon('comment-discussion');
				item.command = { command: commandIds.openChat, title: vscode.l10n.t('Open Chat'), arguments: [node] };
				return item;
			}
			case 'detachedGroup': {
				const item = new vscode.TreeItem(vscode.l10n.t('Detached worktrees'), vscode.TreeItemCollapsibleState.Expanded);
				item.id = 'detached';
				item.description = String(node.worktrees.length);
				item.tooltip = vscode.l10n.t('Worktrees whose session was deleted. Their branches and saved work are kept: attach one to a new session to work in it again.');
				item.contextValue = 'detachedGroup';
				return item;
			}
			case 'worktree': {
				const w = node.worktree;
				const item = new vscode.TreeItem(w.branch ?? w.path, vscode.TreeItemCollapsibleState.None);
				item.id = w.id;
				item.description = `${stateLabel(w.state)} · ${w.path}`;
				item.contextValue = `worktree.detached.${w.state}`;
				item.iconPath = new vscode.ThemeIcon('git-branch');
				return item;
			}
		}
	}
}

function nodeKey(node: SessionsNode): string {
	switch (node.kind) {
		case 'session':
			return `session:${node.session.id}`;
		case 'chat':
			return `chat:${node.chat.id}`;
		case 'detachedGroup':
			return 'detached';
		case 'worktree':
			return `worktree:${node.worktree.id}`;
	}
}

function stateLabel(state: string): string {
	switch (state) {
		case 'ready':
			return vscode.l10n.t('ready');
		case 'creating':
			return vscode.l10n.t('creating');
		case 'missing':
			return vscode.l10n.t('folder missing');
		case 'removed':
			return vscode.l10n.t('removed, work saved');
		case 'failed':
			return vscode.l10n.t('failed');
		default:
			return state;
	}
}

function escapeMarkdown(text: string): string {
	return text.replace(/[\\`*_{}[\]()#+\-.!|]/g, '\\$&');
}
