import { type IDisposable, toDisposable, type DisposableStore } from './lifecycle';

/** A subscribable event, shape-compatible with `vscode.Event<T>`. */
export type Event<T> = (listener: (e: T) => unknown, thisArgs?: unknown, disposables?: IDisposable[] | DisposableStore) => IDisposable;

/**
 * The private side of an event: `fire` delivers to every listener; a throwing listener is reported to
 * `onListenerError` and does not stop delivery to the others.
 */
export class Emitter<T> implements IDisposable {
	private listeners: { fn: (e: T) => unknown; thisArgs: unknown }[] = [];
	private disposed = false;

	constructor(private readonly onListenerError: (error: unknown) => void = () => undefined) {}

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

/** Resolves with the next value of an event. */
export function eventToPromise<T>(event: Event<T>): Promise<T> {
	return new Promise((resolve) => {
		const d = event((e) => {
			d.dispose();
			resolve(e);
		});
	});
}
