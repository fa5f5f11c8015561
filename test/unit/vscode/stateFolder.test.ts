import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { canonicalStateDir } from '../../../src/vscode/stateFolder';
import { removeDir, tempDir } from '../helpers';

suite('vscode/stateFolder', () => {
	let root: string;
	setup(() => (root = tempDir('agent-tabs-statefolder-')));
	teardown(() => removeDir(root));

	const storage = (workspace: string): string => path.join(root, 'workspaceStorage', workspace, 'agent-tabs.agent-tabs');

	test("a second host's `<id>-1` storage maps back to the workspace's own folder", () => {
		fs.mkdirSync(path.join(root, 'workspaceStorage', '0f3c9a'), { recursive: true });
		fs.writeFileSync(path.join(root, 'workspaceStorage', '0f3c9a', 'meta.json'), '{}');
		assert.equal(canonicalStateDir(storage('0f3c9a-1')), storage('0f3c9a'));
		assert.equal(canonicalStateDir(storage('0f3c9a-12')), storage('0f3c9a'));
		assert.equal(canonicalStateDir(storage('0f3c9a')), storage('0f3c9a'));
	});

	test('a name that only looks suffixed, with no workspace folder behind it, is kept', () => {
		fs.mkdirSync(path.join(root, 'workspaceStorage', 'abc'), { recursive: true }); // no meta.json
		assert.equal(canonicalStateDir(storage('abc-1')), storage('abc-1'));
		assert.equal(canonicalStateDir(storage('1700000000000-1')), storage('1700000000000-1'));
	});
});
