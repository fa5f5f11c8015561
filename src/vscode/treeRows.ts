import type * as vscode from 'vscode';
import { Disposable } from '../common/lifecycle';

/**
 * The rows a tree view has shown, kept as the same node objects from one refresh to the next, so that a
 * change refreshes only the rows it touched.
 *
 * Why not refresh the whole tree: when the whole tree (or a row with children) is refreshed, VS Code forgets
 * the rows under it until the view asks for them again, and a menu command run on one of them in that moment
 * gets `undefined` instead of its node (microsoft/vscode#144250). A row refreshed on its own keeps its node.
 * `getChildren` takes every call for what the view holds; `treeView.reveal` also fetches children in the
 * extension host, so reveal only rows the view already shows the parents of.
 */
/** What a view gives its TreeRows: its nodes' keys, children and items, and its change event. */
export interface TreeRowsSource<N> {
	keyOf(node: N): string;
	childrenOf(parent: N | undefined): readonly N[];
	itemOf(node: N): vscode.TreeItem;
	/** The view's `onDidChangeTreeData`: the rows to refresh, or `undefined` for the whole tree. */
	fire(rows: N[] | undefined): void;
}

export class TreeRows<N extends object> extends Disposable {
	private readonly nodes = new Map<string, N>();
	/** What each row's tree item showed when VS Code last asked for it. */
	private readonly shown = new Map<string, string>();
	/** The keys of each parent's children ('' for the top level) as VS Code was last given them. */
	private readonly given = new Map<string, string[]>();
	private refreshTimer: NodeJS.Timeout | undefined;

	constructor(
		private readonly source: TreeRowsSource<N>,
		/** How long `scheduleRefresh` waits for more writes. */
		private readonly delayMs = 100,
	) {
		super();
		this._register({ dispose: () => clearTimeout(this.refreshTimer) });
	}

	/** The view's getChildren: the same objects as before for the same keys, carrying the fresh data. */
	getChildren(parent: N | undefined): N[] {
		const nodes = this.source.childrenOf(parent).map((n) => this.adopt(n));
		this.given.set(parent ? this.source.keyOf(parent) : '', nodes.map((n) => this.source.keyOf(n)));
		return nodes;
	}

	/** The view's getTreeItem, noting what the row shows. */
	getTreeItem(node: N): vscode.TreeItem {
		const item = this.source.itemOf(node);
		this.shown.set(this.source.keyOf(node), itemShows(item));
		return item;
	}

	/** The row's node: the object VS Code knows for its key, carrying the fresh data. */
	node(fresh: N): N {
		return this.adopt(fresh);
	}

	/**
	 * After the data changed: the rows to refresh (none when nothing shown changed), or `undefined` when the
	 * top level changed and the whole tree must be refreshed. A row whose children changed is refreshed itself;
	 * VS Code then asks for its children again.
	 */
	changes(): N[] | undefined {
		const { keyOf, childrenOf, itemOf } = this.source;
		const top = childrenOf(undefined);
		const givenTop = this.given.get('');
		if (!givenTop || !sameKeys(givenTop, top.map((n) => keyOf(n)))) {
			this.forget();
			return undefined;
		}
		const refresh: N[] = [];
		const visit = (fresh: readonly N[]): void => {
			for (const node of fresh.map((n) => this.adopt(n))) {
				const key = keyOf(node);
				const before = this.shown.get(key);
				let changed = before !== undefined && before !== itemShows(itemOf(node));
				const givenChildren = this.given.get(key);
				if (givenChildren) {
					const children = childrenOf(node);
					if (sameKeys(givenChildren, children.map((n) => keyOf(n)))) {
						visit(children);
					} else {
						changed = true;
						this.given.delete(key);
					}
				}
				if (changed) {
					refresh.push(node);
				}
			}
		};
		visit(top);
		return refresh;
	}

	/** After writes: refreshes what they changed (the rows, the whole tree, or nothing), once they pause. */
	scheduleRefresh(): void {
		clearTimeout(this.refreshTimer);
		this.refreshTimer = setTimeout(() => {
			const changed = this.changes();
			if (changed === undefined || changed.length > 0) {
				this.source.fire(changed);
			}
		}, this.delayMs);
	}

	/** Refreshes the whole tree now: VS Code asks for every row again. */
	refreshAll(): void {
		clearTimeout(this.refreshTimer);
		this.forget();
		this.source.fire(undefined);
	}

	private forget(): void {
		this.nodes.clear();
		this.shown.clear();
		this.given.clear();
	}

	private adopt(fresh: N): N {
		const key = this.source.keyOf(fresh);
		const known = this.nodes.get(key);
		if (!known) {
			this.nodes.set(key, fresh);
			return fresh;
		}
		if (known !== fresh) {
			for (const field of Object.keys(known)) {
				delete (known as Record<string, unknown>)[field];
			}
			Object.assign(known, fresh);
		}
		return known;
	}
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
	return a.length === b.length && a.every((k, i) => k === b[i]);
}

/**
 * What a tree item shows, as one string; a command's arguments (the node itself) are not shown. A hover's
 * MarkdownString keeps its text behind a getter (JSON would see `{}`), so its `value` is taken; an icon is
 * its theme id and colour, or its path.
 */
function itemShows(item: vscode.TreeItem): string {
	const command = item.command ? { command: item.command.command, title: item.command.title } : undefined;
	const tooltip = typeof item.tooltip === 'string' || item.tooltip === undefined ? item.tooltip : item.tooltip.value;
	return JSON.stringify({ ...item, command, tooltip, iconPath: iconShows(item.iconPath) });
}

function iconShows(icon: vscode.TreeItem['iconPath']): unknown {
	if (icon === undefined || typeof icon === 'string') {
		return icon;
	}
	if ('id' in icon && typeof icon.id === 'string') {
		return [icon.id, icon.color?.id];
	}
	if ('light' in icon) {
		return [String(icon.light), String(icon.dark)];
	}
	return String(icon);
}
