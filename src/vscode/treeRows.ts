import type * as vscode from 'vscode';

/**
 * The rows a tree view has shown, kept as the same node objects from one refresh to the next, so that a
 * change refreshes only the rows it touched.
 *
 * Why not refresh the whole tree: when the whole tree (or a row with children) is refreshed, VS Code forgets
 * the rows under it until the view asks for them again, and a menu command run on one of them in that moment
 * gets `undefined` instead of its node (microsoft/vscode#144250). A row refreshed on its own keeps its node.
 * `give` takes every getChildren call for what the view holds; `treeView.reveal` also fetches children in the
 * extension host, so reveal only rows the view already shows the parents of.
 */
export class TreeRows<N extends object> {
	private readonly nodes = new Map<string, N>();
	/** What each row's tree item showed when VS Code last asked for it. */
	private readonly shown = new Map<string, string>();
	/** The keys of each parent's children ('' for the top level) as VS Code was last given them. */
	private readonly given = new Map<string, string[]>();

	constructor(private readonly keyOf: (node: N) => string) {}

	/** The children to hand VS Code: the same objects as before for the same keys, carrying the fresh data. */
	give(parent: N | undefined, fresh: readonly N[]): N[] {
		const nodes = fresh.map((n) => this.adopt(n));
		this.given.set(parent ? this.keyOf(parent) : '', nodes.map(this.keyOf));
		return nodes;
	}

	/** The row's node: the object VS Code knows for its key, carrying the fresh data. */
	node(fresh: N): N {
		return this.adopt(fresh);
	}

	/** Notes what a row's item shows (call it from getTreeItem). */
	showing(node: N, item: vscode.TreeItem): vscode.TreeItem {
		this.shown.set(this.keyOf(node), itemShows(item));
		return item;
	}

	/**
	 * After the data changed: the rows to refresh (none when nothing shown changed), or `undefined` when the
	 * top level changed and the whole tree must be refreshed. A row whose children changed is refreshed itself;
	 * VS Code then asks for its children again.
	 */
	changes(childrenOf: (parent: N | undefined) => readonly N[], itemOf: (node: N) => vscode.TreeItem): N[] | undefined {
		const top = childrenOf(undefined);
		const givenTop = this.given.get('');
		if (!givenTop || !sameKeys(givenTop, top.map(this.keyOf))) {
			this.forget();
			return undefined;
		}
		const refresh: N[] = [];
		const visit = (fresh: readonly N[]): void => {
			for (const node of fresh.map((n) => this.adopt(n))) {
				const key = this.keyOf(node);
				const before = this.shown.get(key);
				let changed = before !== undefined && before !== itemShows(itemOf(node));
				const givenChildren = this.given.get(key);
				if (givenChildren) {
					const children = childrenOf(node);
					if (sameKeys(givenChildren, children.map(this.keyOf))) {
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

	/** Fires the view's change event for what changed: the rows, the whole tree (`undefined`), or nothing. */
	refresh(fire: (rows: N[] | undefined) => void, childrenOf: (parent: N | undefined) => readonly N[], itemOf: (node: N) => vscode.TreeItem): void {
		const changed = this.changes(childrenOf, itemOf);
		if (changed === undefined || changed.length > 0) {
			fire(changed);
		}
	}

	/** The whole tree is refreshed: VS Code asks for every row again. */
	forget(): void {
		this.nodes.clear();
		this.shown.clear();
		this.given.clear();
	}

	private adopt(fresh: N): N {
		const key = this.keyOf(fresh);
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
