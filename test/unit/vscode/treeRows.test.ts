import * as assert from 'node:assert/strict';
import type * as vscode from 'vscode';
import { TreeRows } from '../../../src/vscode/treeRows';

/** A two-level tree as the Sessions view has it: sessions, each with chats. */
interface Node {
	id: string;
	title: string;
	updatedAt: number;
	children?: string[];
}

suite('TreeRows: a tree refreshes only the rows a change touched', () => {
	let data: Map<string, Node>;
	let top: string[];
	let trees: TreeRows<Node>[] = [];
	let fired: (Node[] | undefined)[] = [];
	const childrenOf = (parent: Node | undefined): Node[] => (parent ? (data.get(parent.id)!.children ?? []) : top).map((id) => ({ ...data.get(id)! }));
	// What a row shows: its title, not when it was last written.
	const itemOf = (node: Node): vscode.TreeItem => ({ id: node.id, label: node.title, command: { command: 'open', title: 'Open', arguments: [node] } });
	const rows = (itemOfRow: (node: Node) => vscode.TreeItem = itemOf): TreeRows<Node> => {
		const tree = new TreeRows<Node>({ keyOf: (n) => n.id, childrenOf, itemOf: itemOfRow, fire: (changed) => fired.push(changed) }, 10);
		trees.push(tree);
		return tree;
	};
	/** Shows the tree as VS Code does: asks for the top level, then for the children of the rows it expanded. */
	const render = (tree: TreeRows<Node>, expanded: string[]): Map<string, Node> => {
		const seen = new Map<string, Node>();
		const walk = (parent: Node | undefined): void => {
			for (const node of tree.getChildren(parent)) {
				tree.getTreeItem(node);
				seen.set(node.id, node);
				if (expanded.includes(node.id)) {
					walk(node);
				}
			}
		};
		walk(undefined);
		return seen;
	};

	teardown(() => {
		trees.forEach((t) => t.dispose());
		trees = [];
		fired = [];
	});

	setup(() => {
		data = new Map<string, Node>([
			['s1', { id: 's1', title: 'Session one', updatedAt: 1, children: ['c1', 'c2'] }],
			['s2', { id: 's2', title: 'Session two', updatedAt: 1, children: ['c3'] }],
			['c1', { id: 'c1', title: 'Reviewer', updatedAt: 1 }],
			['c2', { id: 'c2', title: 'Scripted', updatedAt: 1 }],
			['c3', { id: 'c3', title: 'Other', updatedAt: 1 }],
		]);
		top = ['s1', 's2'];
	});

	test('a change to one row refreshes that row alone, as the same object VS Code was given, with the new data', () => {
		const tree = rows();
		const shown = render(tree, ['s1']);
		data.get('c2')!.title = 'Scripted (renamed)';
		const changed = tree.changes();
		assert.ok(changed);
		assert.equal(changed.length, 1);
		assert.equal(changed[0], shown.get('c2'), 'the node VS Code knows, not a new object it would not find');
		assert.equal(changed[0]!.title, 'Scripted (renamed)');
	});

	test('a change only the hover shows (a MarkdownString, whose text is behind a getter) refreshes the row', () => {
		/** As vscode.MarkdownString is in the extension host: its text in a private field, read through `value`. */
		class Hover {
			readonly #text: string;
			constructor(text: string) {
				this.#text = text;
			}
			get value(): string {
				return this.#text;
			}
		}
		const hoverOf = (node: Node): vscode.TreeItem => ({ ...itemOf(node), tooltip: new Hover(`updated ${node.updatedAt}`) as unknown as vscode.MarkdownString });
		const tree = rows(hoverOf);
		const seen = render(tree, []);
		data.get('s2')!.updatedAt = 2;
		assert.deepEqual(tree.changes(), [seen.get('s2')]);
	});

	test('a write that changes nothing a row shows refreshes nothing', () => {
		const tree = rows();
		render(tree, ['s1', 's2']);
		for (const node of data.values()) {
			node.updatedAt = 2;
		}
		assert.deepEqual(tree.changes(), []);
	});

	test('a row whose children changed is refreshed itself; its children are asked for again', () => {
		const tree = rows();
		const shown = render(tree, ['s1', 's2']);
		data.set('c4', { id: 'c4', title: 'New chat', updatedAt: 1 });
		data.get('s2')!.children = ['c3', 'c4'];
		data.get('c1')!.title = 'Reviewer (renamed)';
		const changed = tree.changes();
		assert.deepEqual(new Set(changed), new Set([shown.get('s2'), shown.get('c1')]));
		const again = tree.getChildren(shown.get('s2'));
		assert.equal(again[0], shown.get('c3'), 'an unchanged child stays the same object');
		assert.deepEqual(
			again.map((n) => n.id),
			['c3', 'c4'],
		);
	});

	test('the children of a row VS Code never expanded are not looked at', () => {
		const tree = rows();
		render(tree, []);
		data.get('c3')!.title = 'Other (renamed)';
		assert.deepEqual(tree.changes(), []);
	});

	test('a change to the top level (a row added, removed or moved) refreshes the whole tree', () => {
		for (const change of [() => top.push('s3'), () => top.pop(), () => top.reverse()]) {
			data.set('s3', { id: 's3', title: 'Session three', updatedAt: 1 });
			top = ['s1', 's2'];
			const tree = rows();
			const before = render(tree, ['s1']);
			change();
			assert.equal(tree.changes(), undefined);
			const after = render(tree, ['s1']);
			assert.notEqual(after.get('s1'), before.get('s1'), 'after a whole refresh the rows are given anew');
		}
	});

	test('scheduled after writes, the refresh fires once when they pause, with the rows that changed; nothing when none did', async () => {
		const tree = rows();
		const shown = render(tree, ['s1']);
		for (const title of ['a', 'b', 'Reviewer (renamed)']) {
			data.get('c1')!.title = title;
			tree.scheduleRefresh();
		}
		await new Promise((r) => setTimeout(r, 50));
		assert.deepEqual(fired, [[shown.get('c1')]]);
		render(tree, ['s1']);
		tree.scheduleRefresh();
		await new Promise((r) => setTimeout(r, 50));
		assert.equal(fired.length, 1, 'a write that changed nothing shown fired a refresh');
	});

	test('before VS Code asked for anything, a change refreshes the whole tree', () => {
		assert.equal(rows().changes(), undefined);
	});
});
