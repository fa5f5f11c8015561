import * as vscode from 'vscode';
import type { Logger } from '../common/log';

/** The Logger over a LogOutputChannel ("Agent Tabs" in the Output view); the user picks the level there. */
export class OutputChannelLogger implements Logger, vscode.Disposable {
	readonly channel: vscode.LogOutputChannel;

	constructor(name: string) {
		this.channel = vscode.window.createOutputChannel(name, { log: true });
	}

	trace(message: string, ...args: unknown[]): void {
		this.channel.trace(message, ...args);
	}
	debug(message: string, ...args: unknown[]): void {
		this.channel.debug(message, ...args);
	}
	info(message: string, ...args: unknown[]): void {
		this.channel.info(message, ...args);
	}
	warn(message: string, ...args: unknown[]): void {
		this.channel.warn(message, ...args);
	}
	error(message: string | Error, ...args: unknown[]): void {
		this.channel.error(message, ...args);
	}

	dispose(): void {
		this.channel.dispose();
	}
}
