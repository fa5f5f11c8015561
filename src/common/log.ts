/**
 * The logger every layer writes to. The VS Code layer implements it over a LogOutputChannel; the CLI over
 * stderr; tests over a buffer. Lines are tagged `[Component][method] message`. Never log secrets.
 */
export interface Logger {
	trace(message: string, ...args: unknown[]): void;
	debug(message: string, ...args: unknown[]): void;
	info(message: string, ...args: unknown[]): void;
	warn(message: string, ...args: unknown[]): void;
	error(message: string | Error, ...args: unknown[]): void;
}

/** A logger that drops everything (for code paths where logging is optional). */
export const nullLogger: Logger = {
	trace: () => undefined,
	debug: () => undefined,
	info: () => undefined,
	warn: () => undefined,
	error: () => undefined,
};

/** Renders an unknown thrown value as a one-line message. */
export function errorMessage(e: unknown): string {
	if (e instanceof Error) {
		return e.message;
	}
	return String(e);
}
