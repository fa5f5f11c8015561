import * as vscode from 'vscode';
import type { Logger } from '../common/log';
import { SecretRedactor } from '../common/redact';

/**
 * The Logger over a LogOutputChannel ("Agent Tabs" in the Output view); the user picks the level there.
 * Every line passes through the redactor first, so no known secret reaches the log.
 */
export class OutputChannelLogger implements Logger, vscode.Disposable {
	readonly channel: vscode.LogOutputChannel;

	constructor(
		name: string,
		private readonly redactor = new SecretRedactor(),
	) {
		this.channel = vscode.window.createOutputChannel(name, { log: true });
	}

	trace(message: string, ...args: unknown[]): void {
		this.channel.trace(this.redactor.redact(message), ...args.map((a) => this.redactor.redactDeep(a)));
	}
	debug(message: string, ...args: unknown[]): void {
		this.channel.debug(this.redactor.redact(message), ...args.map((a) => this.redactor.redactDeep(a)));
	}
	info(message: string, ...args: unknown[]): void {
		this.channel.info(this.redactor.redact(message), ...args.map((a) => this.redactor.redactDeep(a)));
	}
	warn(message: string, ...args: unknown[]): void {
		this.channel.warn(this.redactor.redact(message), ...args.map((a) => this.redactor.redactDeep(a)));
	}
	error(message: string | Error, ...args: unknown[]): void {
		this.channel.error(this.redactor.redact(message instanceof Error ? (message.stack ?? message.message) : message), ...args.map((a) => this.redactor.redactDeep(a)));
	}

	dispose(): void {
		this.channel.dispose();
	}
}
