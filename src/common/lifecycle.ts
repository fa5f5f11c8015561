/**
 * Disposables, modelled on VS Code's own `lifecycle.ts`: everything that registers, spawns, watches or times
 * is a Disposable with exactly one owner. Shape-compatible with `vscode.Disposable` so VS Code handles can be
 * registered directly.
 */

export interface IDisposable {
	dispose(): void;
}

/** Optional tracker used by tests to find disposables that nobody disposed. */
export interface DisposableTracker {
	trackCreated(d: IDisposable): void;
	trackDisposed(d: IDisposable): void;
}

let tracker: DisposableTracker | undefined;

/** Installs (or removes) the leak tracker. Only tests call this. */
export function setDisposableTracker(next: DisposableTracker | undefined): void {
	tracker = next;
}

/** Wraps a callback as a disposable that runs at most once. */
export function toDisposable(fn: () => void): IDisposable {
	let done = false;
	const d: IDisposable = {
		dispose() {
			if (!done) {
				done = true;
				tracker?.trackDisposed(d);
				fn();
			}
		},
	};
	tracker?.trackCreated(d);
	return d;
}

/** Disposes every item, collecting errors so one failing dispose cannot skip the rest. */
export function disposeAll(items: Iterable<IDisposable>): void {
	const errors: unknown[] = [];
	for (const item of items) {
		try {
			item.dispose();
		} catch (e) {
			errors.push(e);
		}
	}
	if (errors.length === 1) {
		throw errors[0];
	}
	if (errors.length > 1) {
		throw new AggregateError(errors, 'Several disposables failed to dispose');
	}
}

/** A set of disposables disposed together. Adding to a disposed store disposes the item at once. */
export class DisposableStore implements IDisposable {
	private readonly items = new Set<IDisposable>();
	private disposed = false;

	constructor() {
		tracker?.trackCreated(this);
	}

	get isDisposed(): boolean {
		return this.disposed;
	}

	add<T extends IDisposable>(item: T): T {
		if (this.disposed) {
			item.dispose();
		} else {
			this.items.add(item);
		}
		return item;
	}

	/** Removes an item without disposing it (its ownership moves elsewhere). */
	delete(item: IDisposable): void {
		this.items.delete(item);
	}

	clear(): void {
		const items = [...this.items];
		this.items.clear();
		disposeAll(items);
	}

	dispose(): void {
		if (this.disposed) {
			return;
		}
		this.disposed = true;
		tracker?.trackDisposed(this);
		this.clear();
	}
}

/** Base class: subclasses `_register` what they own and it is disposed with them, in reverse order. */
export abstract class Disposable implements IDisposable {
	private readonly _store = new DisposableStore();

	constructor() {
		tracker?.trackCreated(this);
	}

	protected get isDisposed(): boolean {
		return this._store.isDisposed;
	}

	protected _register<T extends IDisposable>(item: T): T {
		return this._store.add(item);
	}

	dispose(): void {
		if (this._store.isDisposed) {
			return;
		}
		tracker?.trackDisposed(this);
		this._store.dispose();
	}
}

/** Holds at most one disposable; setting a new value disposes the old one. */
export class MutableDisposable<T extends IDisposable> implements IDisposable {
	private current: T | undefined;
	private disposed = false;

	get value(): T | undefined {
		return this.current;
	}

	set value(next: T | undefined) {
		if (this.disposed) {
			next?.dispose();
			return;
		}
		if (next === this.current) {
			return;
		}
		const old = this.current;
		this.current = next;
		old?.dispose();
	}

	clear(): void {
		this.value = undefined;
	}

	dispose(): void {
		this.disposed = true;
		const old = this.current;
		this.current = undefined;
		old?.dispose();
	}
}

/** Owned children by key; replacing or deleting a key disposes its old value. */
export class DisposableMap<K, V extends IDisposable> implements IDisposable {
	private readonly map = new Map<K, V>();
	private disposed = false;

	get size(): number {
		return this.map.size;
	}

	get(key: K): V | undefined {
		return this.map.get(key);
	}

	has(key: K): boolean {
		return this.map.has(key);
	}

	keys(): IterableIterator<K> {
		return this.map.keys();
	}

	values(): IterableIterator<V> {
		return this.map.values();
	}

	set(key: K, value: V): void {
		if (this.disposed) {
			value.dispose();
			return;
		}
		const old = this.map.get(key);
		this.map.set(key, value);
		if (old && old !== value) {
			old.dispose();
		}
	}

	deleteAndDispose(key: K): void {
		const old = this.map.get(key);
		this.map.delete(key);
		old?.dispose();
	}

	/** Removes the entry without disposing it. */
	deleteAndLeak(key: K): V | undefined {
		const old = this.map.get(key);
		this.map.delete(key);
		return old;
	}

	dispose(): void {
		if (this.disposed) {
			return;
		}
		this.disposed = true;
		const values = [...this.map.values()];
		this.map.clear();
		disposeAll(values);
	}
}
