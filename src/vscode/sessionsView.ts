import * as vscode from 'vscode';
import { Disposable } from '../common/lifecycle';
import type { SessionSummary, SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import { viewIds } from './ids';

type Node = { kind: 'session'; session: SessionSummary };

/**
 * The Sessions tree. Empty until the store is ready, so the welcome content (which VS Code shows for an
 * empty tree) explains what to do. Refreshes after every acknowledged write, debounced.
 */
export class SessionsView extends Disposable implements vscode.TreeDataProvider<Node> {
	private readonly _onDidChangeTreeData = this._register(new vscode.EventEmitter<Node | undefined>());
	readonly onDidChangeTreeData = this._onDidChangeTreeData.event;
	private repo: SessionsRepo | undefined;
	private refreshTimer: NodeJS.Timeout | undefined;
	readonly treeView: vscode.TreeView<Node>;

	constructor() {
		super();
		this.treeView = this._register(vscode.window.createTreeView(viewIds.sessions, { treeDataProvider: this, showCollapseAll: false }));
		this._register({ dispose: () => clearTimeout(this.refreshTimer) });
	}

	/** Connects the view to the store once it is open. */
	attach(store: Store, repo: SessionsRepo): void {
		this.repo = repo;
		this._register(store.onDidWrite(() => this.scheduleRefresh()));
		this.refresh();
	}

	refresh(): void {
		this._onDidChangeTreeData.fire(undefined);
	}

	private scheduleRefresh(): void {
		clearTimeout(this.refreshTimer);
		this.refreshTimer = setTimeout(() => this.refresh(), 100);
	}

	getChildren(element?: Node): Node[] {
		if (element || !this.repo) {
			return [];
		}
		return this.repo.list().map((session) => ({ kind: 'session', session }));
	}

	getTreeItem(node: Node): vscode.TreeItem {
		const s = node.session;
		const item = new vscode.TreeItem(s.title, vscode.TreeItemCollapsibleState.None);
		item.id = s.id;
		item.contextValue = `session.${s.status}`;
		const parts: string[] = [];
		if (s.branch) {
			parts.push(s.branch);
		}
		parts.push(vscode.l10n.t('{0} chats', s.chat_count));
		if (s.status === 'archived') {
			parts.push(vscode.l10n.t('archived'));
		}
		item.description = parts.join(' · ');
		item.tooltip = new vscode.MarkdownString(
			[`**${escapeMarkdown(s.title)}**`, s.worktree_path ? vscode.l10n.t('Worktree: {0}', s.worktree_path) : vscode.l10n.t('No worktree')].join('\n\n'),
		);
		item.iconPath = new vscode.ThemeIcon(s.status === 'archived' ? 'archive' : 'git-branch');
		return item;
	}
}

function escapeMarkdown(text: string): string {
	return text.replace(/[\\`*_{}[\]()#+\-.!|]/g, '\\$&');
}
