/**
 * The test entry VS Code loads in the extension host (`extensionTestsPath`), for code-server
 * (scripts/run-vscode-tests.mjs) and @vscode/test-electron (scripts/run-electron-tests.mjs) alike: both
 * `require` this CommonJS module and await `run()`. Mocha runs every `*.test.js` next to it.
 *
 * When `E2E_RESULT_FILE` is set, the outcome is also written there as JSON. The runner trusts that file over
 * the exit code, because a hang or a load error must not look like a pass.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Mocha from 'mocha';
import * as vscode from 'vscode';

/** What the runner reads back from `E2E_RESULT_FILE`. */
export interface IntegrationResult {
	passed: number;
	failed: number;
	skipped: number;
	failures: { title: string; error: string }[];
	tests: { title: string; state: 'passed' | 'failed' | 'skipped' }[];
	vscodeVersion: string;
	remoteName: string | null;
	uiKind: 'desktop' | 'web';
	pid: number;
	execPath: string;
}

function testFiles(dir: string): string[] {
	return fs
		.readdirSync(dir, { withFileTypes: true, recursive: true })
		.filter((e) => e.isFile() && e.name.endsWith('.test.js'))
		.map((e) => path.join(e.parentPath, e.name))
		.sort();
}

export async function run(): Promise<void> {
	const mocha = new Mocha({ ui: 'tdd', color: false, timeout: 30_000, reporter: 'spec', forbidOnly: !!process.env.CI });
	for (const file of testFiles(__dirname)) {
		mocha.addFile(file);
	}
	const result: IntegrationResult = {
		passed: 0,
		failed: 0,
		skipped: 0,
		failures: [],
		tests: [],
		vscodeVersion: vscode.version,
		remoteName: vscode.env.remoteName ?? null,
		uiKind: vscode.env.uiKind === vscode.UIKind.Web ? 'web' : 'desktop',
		pid: process.pid,
		execPath: process.execPath,
	};
	try {
		await new Promise<void>((resolve) => {
			const runner = mocha.run(() => resolve());
			runner.on('pass', (t) => {
				result.passed++;
				result.tests.push({ title: t.fullTitle(), state: 'passed' });
			});
			runner.on('pending', (t) => {
				result.skipped++;
				result.tests.push({ title: t.fullTitle(), state: 'skipped' });
			});
			// Also fires for failed hooks, which have no 'pass' or 'pending' of their own.
			runner.on('fail', (t, err: Error) => {
				result.failed++;
				result.failures.push({ title: t.fullTitle(), error: err.stack ?? String(err) });
				result.tests.push({ title: t.fullTitle(), state: 'failed' });
			});
		});
	} catch (e) {
		result.failed++;
		result.failures.push({ title: 'loading the test files', error: e instanceof Error ? (e.stack ?? e.message) : String(e) });
	}
	if (process.env.E2E_RESULT_FILE) {
		fs.writeFileSync(process.env.E2E_RESULT_FILE, JSON.stringify(result, null, '\t'));
	}
	if (result.failed > 0) {
		throw new Error(`${result.failed} integration test(s) failed.`);
	}
}
