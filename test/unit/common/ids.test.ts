import * as assert from 'node:assert/strict';
import { newId } from '../../../src/common/ids';

suite('newId', () => {
	test('ids are the prefix and 20 hex digits, and never repeat across many refills of the random pool', () => {
		const seen = new Set<string>();
		// 4096 random bytes make 409 ids: 5,000 ids go through the pool a dozen times.
		for (let i = 0; i < 5000; i++) {
			const id = newId('msg');
			assert.match(id, /^msg-[0-9a-f]{20}$/);
			assert.ok(!seen.has(id), `id ${id} repeated after ${i} ids`);
			seen.add(id);
		}
	});

	test('the digits are spread evenly: each hex digit is about 1/16 of them', () => {
		const counts = new Map<string, number>();
		let total = 0;
		for (let i = 0; i < 4000; i++) {
			for (const c of newId('x').slice(2)) {
				counts.set(c, (counts.get(c) ?? 0) + 1);
				total++;
			}
		}
		assert.equal(counts.size, 16);
		for (const [digit, n] of counts) {
			// 80,000 digits: each expected 5,000, standard deviation about 68; 4.5 sigma either way.
			assert.ok(Math.abs(n / total - 1 / 16) < 0.004, `digit ${digit}: ${n} of ${total}`);
		}
	});
});
