import * as vscode from 'vscode';
import { viewRowArgs } from '../common/commandArgs';
import { errorMessage, type Logger } from '../common/log';
import { DisposableStore } from '../common/lifecycle';
import { withoutLinks } from '../common/visibleText';
import type { commandIds } from './ids';

type CommandId = (typeof commandIds)[keyof typeof commandIds];

/**
 * Registers every command through one wrapper that logs and shows failures, so no command handler needs its
 * own try/catch and no error disappears silently. A row a view's menu lost reaches the handler as
 * `lostViewRow` (common/commandArgs).
 */
export function registerCommands(logger: Logger, handlers: Partial<Record<CommandId, (...args: unknown[]) => unknown>>): DisposableStore {
	const store = new DisposableStore();
	for (const [id, handler] of Object.entries(handlers)) {
		if (!handler) {
			continue;
		}
		store.add(
			vscode.commands.registerCommand(id, async (...args: unknown[]) => {
				try {
					return await handler(...viewRowArgs(args));
				} catch (e) {
					logger.error(`[Commands][${id}] ${errorMessage(e)}`);
					void vscode.window.showErrorMessage(withoutLinks(errorMessage(e)));
					return undefined;
				}
			}),
		);
	}
	return store;
}
