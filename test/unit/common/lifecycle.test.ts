import * as assert from 'node:assert/strict';
import { Emitter } from '../../../src/common/event';
import { Disposable, DisposableMap, DisposableStore, MutableDisposable, toDisposable } from '../../../src/common/lifecycle';
import { ensureNoDisposablesLeaked } from '../helpers';

suite('common/lifecycle', () => {
	ensureNoDisposablesLeaked();

	test('a Disposable disposes what it registered, once', () => {
		const log: string[] = [];
		class Owner extends Disposable {
			constructor() {
				super();
				this._register(toDisposable(() => log.push('a')));
				this._register(toDisposable(() => log.push('b')));
			}
		}
		const o = new Owner();
		o.dispose();
		o.dispose();
		assert.deepEqual(log, ['a', 'b']);
	});

	test('registering on a disposed owner disposes the item at once', () => {
		const store = new DisposableStore();
		store.dispose();
		let disposed = false;
		store.add(toDisposable(() => (disposed = true)));
		assert.ok(disposed);
	});

	test('one failing dispose does not skip the others', () => {
		const store = new DisposableStore();
		let second = false;
		store.add(toDisposable(() => {
			throw new Error('boom');
		}));
		store.add(toDisposable(() => (second = true)));
		assert.throws(() => store.dispose(), /boom/);
		assert.ok(second);
	});

	test('MutableDisposable and DisposableMap dispose replaced values', () => {
		const log: string[] = [];
		const m = new MutableDisposable();
		m.value = toDisposable(() => log.push('first'));
		m.value = toDisposable(() => log.push('second'));
		m.dispose();
		const map = new DisposableMap<string, { dispose(): void }>();
		map.set('k', toDisposable(() => log.push('k1')));
		map.set('k', toDisposable(() => log.push('k2')));
		map.deleteAndDispose('k');
		map.set('j', toDisposable(() => log.push('j')));
		map.dispose();
		assert.deepEqual(log, ['first', 'second', 'k1', 'k2', 'j']);
	});

	test('an Emitter keeps delivering when one listener throws', () => {
		const errors: unknown[] = [];
		const e = new Emitter<number>((err) => errors.push(err));
		const got: number[] = [];
		const store = new DisposableStore();
		e.event(() => {
			throw new Error('bad listener');
		}, undefined, store);
		e.event((n) => got.push(n), undefined, store);
		e.fire(1);
		store.dispose();
		e.fire(2);
		assert.deepEqual(got, [1]);
		assert.equal(errors.length, 1);
		e.dispose();
	});
});
