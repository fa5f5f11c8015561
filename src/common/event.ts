import { type IDisposable, toDisposable, type DisposableStore } from './lifecycle';
import type { Logger } from './log';

/** A subscribable event, shape-compatible with `vscode.Event<T>`. */
export type Event<T> = (listener: (e: T) => unknown, thisArgs?: unknown, disposables?: IDisposable[] | DisposableStore) => IDisposable;

/**
 * The private side of an event: `fire` delivers to every listener; a throwing listener is reported to
 * `onListenerError` and does not stop delivery to the others. There is no default: every owner says where a
 * listener's error goes (usually `logListenerErrors`), so none is swallowed unseen.
 */
export class Emitter<T> implements IDisposable {
	private listeners: { fn: (e: T) => unknown; thisArgs: unknown }[] = [];
	private disposed = false;

	constructor(private readonly onListenerError: (error: unknown) => void) {}

	readonly event: Event<T> = (fn, thisArgs, disposables) => {
		if (this.disposed) {
			return toDisposable(() => undefined);
		}
		const entry = { fn, thisArgs };
		this.listeners.push(entry);
		const d = toDisposable(() => {
			this.listeners = this.listeners.filter((l) => l !== entry);
		});
		if (Array.isArray(disposables)) {
			disposables.push(d);
		} else if (disposables) {
			disposables.add(d);
		}
		return d;
	};

	fire(value: T): void {
		for (const { fn, thisArgs } of [...this.listeners]) {
			try {
				fn.call(thisArgs, value);
			} catch (e) {
				this.onListenerError(e);
			}
		}
	}

	get hasListeners(): boolean {
		return this.listeners.length > 0;
	}

	dispose(): void {
		this.disposed = true;
		this.listeners = [];
	}
}

/** An `onListenerError` that logs the error, with its stack, under `tag` (`[Component][onDidX]`). */
export function logListenerErrors(logger: Logger, tag: string): (error: unknown) => void {
	return (error) => logger.error(`${tag} a listener failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
}

/** Resolves with the next value of an event. */
export function eventToPromise<T>(event: Event<T>): Promise<T> {
	return new Promise((resolve) => {
		const d = event((e) => {
			d.dispose();
			resolve(e);
		});
	});
}
