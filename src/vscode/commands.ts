import type * as vscode from 'vscode';
import { viewRowArgs } from '../common/commandArgs';
import { errorMessage, type Logger } from '../common/log';
import { DisposableStore } from '../common/lifecycle';
import type { SecretRedactor } from '../common/redact';
import { withoutLinks } from '../common/visibleText';
import type { commandIds } from './ids';

type CommandId = (typeof commandIds)[keyof typeof commandIds];

/** What the command wrapper uses: VS Code (passed in, so tests run it without VS Code), the log and the window's redactor. */
export interface CommandHost {
	vscode: { commands: Pick<typeof vscode.commands, 'registerCommand'>; window: Pick<typeof vscode.window, 'showErrorMessage'> };
	logger: Logger;
	/** Scrubs known secrets from a failure's message before the notification shows it, as the log does. */
	redactor: Pick<SecretRedactor, 'redact'>;
}

/**
 * Registers every command through one wrapper that logs and shows failures, so no command handler needs its
 * own try/catch and no error disappears silently. A row a view's menu lost reaches the handler as
 * `lostViewRow` (common/commandArgs).
 */
export function registerCommands(host: CommandHost, handlers: Partial<Record<CommandId, (...args: unknown[]) => unknown>>): DisposableStore {
	const store = new DisposableStore();
	for (const [id, handler] of Object.entries(handlers)) {
		if (!handler) {
			continue;
		}
		store.add(
			host.vscode.commands.registerCommand(id, async (...args: unknown[]) => {
				try {
					return await handler(...viewRowArgs(args));
				} catch (e) {
					host.logger.error(`[Commands][${id}] ${errorMessage(e)}`);
					// A message may quote what a tool printed (a git remote's URL with its token, say): the
					// notification shows no more of it than the log does.
					void host.vscode.window.showErrorMessage(withoutLinks(host.redactor.redact(errorMessage(e))));
					return undefined;
				}
			}),
		);
	}
	return store;
}
