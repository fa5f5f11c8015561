/** Typed errors shared by every layer. Each carries a stable `code` that crosses the webview boundary. */

export class AgentTabsError extends Error {
	constructor(
		readonly code: string,
		message: string,
		options?: { cause?: unknown },
	) {
		super(message, options);
		this.name = new.target.name;
	}
}

export class CancelledError extends AgentTabsError {
	constructor(message = 'Cancelled') {
		super('cancelled', message);
	}
}
