import * as assert from 'node:assert/strict';
import { redactingLogger, SecretRedactor } from '../../../src/common/redact';
import { registerCommands, type CommandHost } from '../../../src/vscode/commands';
import { MemoryLogger } from '../helpers';

suite('registerCommands: a failed command is logged and shown, both without a known secret', () => {
	test('the error notification says what failed with every known secret redacted, as the log does', async () => {
		const secret = 'ghp_0123456789abcdefTOKEN';
		const redactor = new SecretRedactor();
		redactor.add('GITHUB_TOKEN', secret);
		const logger = new MemoryLogger();
		const commands = new Map<string, (...args: unknown[]) => unknown>();
		const shown: string[] = [];
		const host: CommandHost = {
			vscode: {
				commands: { registerCommand: (id: string, run: (...args: unknown[]) => unknown) => (commands.set(id, run), { dispose: () => commands.delete(id) }) },
				window: { showErrorMessage: (message: string) => (shown.push(message), Promise.resolve(undefined)) },
			} as unknown as CommandHost['vscode'],
			// The window's log is the same: a logger over the one redactor.
			logger: redactingLogger(logger, redactor),
			redactor,
		};
		const store = registerCommands(host, {
			'agentTabs.createPullRequest': () => {
				throw new Error(`git push failed: fatal: unable to access 'https://x-access-token:${secret}@github.com/o/r.git/': Could not resolve host`);
			},
		});
		try {
			assert.equal(await commands.get('agentTabs.createPullRequest')!(), undefined);
			assert.equal(shown.length, 1, 'one notification');
			assert.ok(!shown[0]!.includes(secret), `the notification shows the token: ${shown[0]}`);
			assert.match(shown[0]!, /git push failed: .*\[redacted GITHUB_TOKEN\]/, 'it still says what failed and which secret was there');
			assert.ok(!logger.lines.join('\n').includes(secret), 'nor does the log');
		} finally {
			store.dispose();
		}
		assert.equal(commands.size, 0, 'disposing unregisters the command');
	});
});
