import * as assert from 'node:assert/strict';
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32, tableCrc32 } from '../../../src/db/crc32';
import type { JournalRecord } from '../../../src/db/journal';
import { growthRoom, readSnapshotFile, replay } from '../../../src/db/snapshot';
import { loadSqlJs, openDatabaseInPlace } from '../../../src/db/sqlJs';
import { removeDir, tempDir, wasmPath } from '../helpers';

suite('db/snapshot: replay, checksums and the snapshot read', () => {
	let dir: string;
	setup(() => {
		dir = tempDir('agent-tabs-replay-');
	});
	teardown(() => removeDir(dir));

	test('a record that fails half-way leaves no trace; the records before and after it stay', async () => {
		const SQL = await loadSqlJs(wasmPath);
		const db = new SQL.Database();
		try {
			db.exec('CREATE TABLE t (id TEXT PRIMARY KEY, v INTEGER NOT NULL)');
			const insert = 'INSERT INTO t (id, v) VALUES (?, ?)';
			const records: JournalRecord[] = [
				{ seq: 1, stmts: [[insert, ['a', 1]], [insert, ['b', 2]]] },
				// Its first statement applies, its second breaks the primary key: the whole record must go.
				{ seq: 2, stmts: [[insert, ['c', 3]], [insert, ['a', 4]]] },
				{ seq: 3, stmts: [[insert, ['d', 5]], ['UPDATE t SET v = v + 10 WHERE id = ?', ['b']]] },
			];
			const failures: number[] = [];
			replay(db, (apply) => {
				for (const record of records) {
					try {
						apply(record);
					} catch {
						failures.push(record.seq);
					}
				}
			});
			assert.deepEqual(failures, [2]);
			assert.deepEqual(db.exec('SELECT id, v FROM t ORDER BY id')[0]!.values, [
				['a', 1],
				['b', 12],
				['d', 5],
			]);
		} finally {
			db.close();
		}
	});

	test('a database opened in place uses the Buffer it was given (no copy), grows out of it when full, and exports exactly', async () => {
		const SQL = await loadSqlJs(wasmPath);
		const source = new SQL.Database();
		source.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('a'), ('b')");
		const exported = source.export();
		source.close();
		// Room to grow after the file, as the store's read brings it.
		const bytes = Buffer.alloc(exported.length + 64 * 1024);
		bytes.set(exported);
		const before = Buffer.from(bytes);
		const db = openDatabaseInPlace(SQL, bytes);
		try {
			db.exec("INSERT INTO t (v) VALUES ('c')");
			// The write landed in the Buffer itself: sql.js kept it rather than a copy (one copy of a large
			// database in memory, and no time spent copying it at open).
			assert.ok(!bytes.equals(before), 'the database writes into the Buffer it was opened from');
			// Past the room it has, the database moves to memory of its own and keeps every row.
			db.exec(`INSERT INTO t (v) SELECT hex(randomblob(1000)) FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200) SELECT i FROM n)`);
			assert.equal(db.exec('SELECT count(*) FROM t')[0]!.values[0]![0], 203);
			const again = new SQL.Database(db.export());
			assert.deepEqual(again.exec('SELECT v FROM t WHERE id <= 3 ORDER BY id')[0]!.values, [['a'], ['b'], ['c']]);
			again.close();
		} finally {
			db.close();
		}
	});

	test('the CRC-32 is the standard one, native or by table, whole or slice by slice', () => {
		const bytes = crypto.randomBytes(100_003);
		const whole = crc32(bytes);
		assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926, 'the check value of CRC-32/IEEE');
		assert.equal(tableCrc32(bytes), whole);
		assert.equal(crc32(bytes.subarray(40_000), crc32(bytes.subarray(0, 40_000))), whole);
		assert.equal(tableCrc32(bytes.subarray(40_000), tableCrc32(bytes.subarray(0, 40_000))), whole);
	});

	test('the snapshot read (in slices, checksummed as it goes) gives the file and its CRC; no file is undefined', async () => {
		const file = path.join(dir, 'big.sqlite');
		const bytes = crypto.randomBytes(19 * 1024 * 1024 + 7); // several slices, the last one short
		fs.writeFileSync(file, bytes);
		const read = await readSnapshotFile(file);
		assert.ok(read && read.bytes.equals(bytes));
		assert.equal(read.crc, crc32(bytes));
		const padded = read.withGrowthRoom!;
		assert.equal(padded.length, bytes.length + growthRoom(bytes.length), 'sql.js gets room to grow');
		assert.ok(padded.subarray(bytes.length).every((b) => b === 0));
		const whole = crypto.randomBytes(8 * 1024 * 1024); // slices that end exactly at the end of the file
		fs.writeFileSync(file, whole);
		const readWhole = await readSnapshotFile(file);
		assert.ok(readWhole && readWhole.bytes.equals(whole));
		assert.equal(readWhole.crc, crc32(whole));
		assert.equal(await readSnapshotFile(path.join(dir, 'missing.sqlite')), undefined);
	});
});
