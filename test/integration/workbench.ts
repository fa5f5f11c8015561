/**
 * What the workbench shows, for tests inside the extension host, which cannot see the DOM: the runner
 * (scripts/run-vscode-tests.mjs) answers DOM questions written to `E2E_PROBE_DIR`. Notifications are read in
 * the notification center, because the smoke-test driver the runner needs turns their toasts off.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';

let probes = 0;

/** Whether a runner answers DOM questions (not under @vscode/test-electron). */
export const canProbeWorkbench = !!process.env.E2E_PROBE_DIR;

/** The text of every element of the workbench matching `selector`. */
export async function workbenchTexts(selector: string, timeoutMs = 10_000): Promise<string[]> {
	const dir = process.env.E2E_PROBE_DIR;
	if (!dir) {
		throw new Error('E2E_PROBE_DIR is not set: no runner answers questions about the workbench');
	}
	const id = `${process.pid}-${++probes}`;
	const response = path.join(dir, `${id}.response.json`);
	fs.writeFileSync(path.join(dir, `${id}.request.tmp`), JSON.stringify({ selector }));
	fs.renameSync(path.join(dir, `${id}.request.tmp`), path.join(dir, `${id}.request.json`));
	const deadline = Date.now() + timeoutMs;
	while (!fs.existsSync(response)) {
		if (Date.now() > deadline) {
			throw new Error(`the runner did not answer about ${selector} within ${timeoutMs} ms`);
		}
		await new Promise((r) => setTimeout(r, 50));
	}
	const answer = JSON.parse(fs.readFileSync(response, 'utf8')) as { texts?: string[]; error?: string };
	if (!answer.texts) {
		throw new Error(`the runner could not read ${selector}: ${answer.error}`);
	}
	return answer.texts;
}

/**
 * The messages of the notifications the workbench holds now, of one severity if given (by the icon VS Code
 * gives it). The notification center is opened to read them.
 */
export async function notificationMessages(severity?: 'error' | 'warning' | 'info'): Promise<string[]> {
	await vscode.commands.executeCommand('notifications.showList');
	const item = severity ? `.notification-list-item:has(.notification-list-item-icon.codicon-${severity})` : '.notification-list-item';
	return workbenchTexts(`.notifications-center ${item} .notification-list-item-message`);
}

/** Waits for a notification (of `severity`, if given) whose message matches `pattern`, and returns that message. */
export async function waitForNotification(pattern: RegExp, timeoutMs = 15_000, severity?: 'error' | 'warning' | 'info'): Promise<string> {
	const deadline = Date.now() + timeoutMs;
	let seen: string[] = [];
	while (Date.now() < deadline) {
		seen = await notificationMessages(severity);
		const found = seen.find((m) => pattern.test(m));
		if (found !== undefined) {
			return found;
		}
		await new Promise((r) => setTimeout(r, 250));
	}
	throw new Error(`no notification matches ${pattern} within ${timeoutMs} ms; the notifications are: ${JSON.stringify(seen)}`);
}
