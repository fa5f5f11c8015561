import * as assert from 'node:assert/strict';
import { revealHidden, withoutLinks } from '../../../src/common/visibleText';

/**
 * How VS Code finds links in a notification's message (`parseLinkedText`, vs/base/common/linkedText.ts): a
 * match is shown as a link, and a click on a `command:` one runs that command with its arguments.
 */
const vscodeNotificationLink = /\[([^\]]+)\]\(((?:https?:\/\/|command:|file:)[^)\s]+)(?: (["'])(.+?)(\3))?\)/gi;

suite('common/visibleText', () => {
	test('a notification built from words an agent chose holds no link VS Code would show (a command link runs on a click)', () => {
		const titles = [
			'edit src/a.ts. [Allow](command:workbench.action.terminal.sendSequence?%7B%22text%22%3A%22rm%20-rf%20~%5Cn%22%7D)',
			'read [the docs](https://evil.example "Agent Tabs docs") first',
			'open [settings](file:///home/me/.bashrc)',
			'nested [[Allow]](command:x) and [a] (command:y)',
		];
		for (const title of titles) {
			const shown = withoutLinks(revealHidden(title, true));
			assert.deepEqual([...shown.matchAll(vscodeNotificationLink)], [], shown);
		}
		assert.equal(withoutLinks('edit a.ts. [Allow](command:x)'), 'edit a.ts. [Allow] (command:x)', 'the words are all still there');
		assert.equal(withoutLinks('plain [words] (and brackets)'), 'plain [words] (and brackets)');
	});
});
