import * as assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { handoverFileName, requestHandover, watchHandoverRequests } from '../../../src/db/handover';
import { StoreLockedError } from '../../../src/db/lock';
import { journalHeader } from '../../../src/db/journal';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { type Store, storeFiles } from '../../../src/db/store';
import { ensureNoDisposablesLeaked, MemoryLogger, openStore, removeDir, repoRoot, tempDir, waitFor, wasmPath } from '../helpers';

function insertSession(store: Store, id: string, title = id): void {
	store.write((tx) => tx.run('INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', [id, title, 'active', 1, 1]));
}

function sessionIds(store: Store): string[] {
	return store.all<{ id: string }>('SELECT id FROM sessions ORDER BY id').map((r) => r.id);
}

function journals(dir: string): string[] {
	return fs.readdirSync(dir).filter((n) => n.startsWith(storeFiles.journalPrefix)).sort();
}

/** Copies the files a store left behind, without its lock, as a crashed process would leave them. */
function copyAsCrashed(from: string, to: string): void {
	fs.mkdirSync(to, { recursive: true });
	for (const name of fs.readdirSync(from)) {
		if (name !== storeFiles.lock && fs.statSync(path.join(from, name)).isFile()) {
			fs.copyFileSync(path.join(from, name), path.join(to, name));
		}
	}
}

suite('db/store', () => {
	ensureNoDisposablesLeaked();
	let dir: string;
	setup(() => {
		dir = tempDir();
	});
	teardown(() => removeDir(dir));

	test('sessions keep their place in the list (newest first, archived last): a chat created in an older one does not move it', async () => {
		const store = await openStore(dir);
		try {
			let clock = 1000;
			const sessions = new SessionsRepo(store, () => ++clock);
			const older = sessions.create({ title: 'older' });
			const newer = sessions.create({ title: 'newer' });
			const archived = sessions.create({ title: 'archived' });
			sessions.setStatus(archived.id, 'archived');
			sessions.createChat({ sessionId: older.id, agent: 'scripted' });
			sessions.setRepoRoot(older.id, '/somewhere');
			assert.deepEqual(sessions.list().map((s) => s.id), [newer.id, older.id, archived.id]);
		} finally {
			await store.close();
		}
	});

	test('an acknowledged write survives a crash without any export', async () => {
		const store = await openStore(dir);
		const snapshotBefore = fs.readFileSync(path.join(dir, storeFiles.snapshot));
		insertSession(store, 'a');
		insertSession(store, 'b');
		await store.durable();
		// No close, no fold: the snapshot is unchanged and only the journal has the writes.
		assert.deepEqual(fs.readFileSync(path.join(dir, storeFiles.snapshot)), snapshotBefore);
		const crashed = path.join(dir, 'crashed');
		copyAsCrashed(dir, crashed);
		const reopened = await openStore(crashed);
		try {
			assert.deepEqual(sessionIds(reopened), ['a', 'b']);
			assert.equal(reopened.recovery.replayedRecords, 2);
			assert.equal(reopened.lastSeq, 2);
		} finally {
			await reopened.close();
			await store.close();
		}
	});

	test('write applies in memory and returns at once; durable() and writeDurable() acknowledge once on disk', async () => {
		const store = await openStore(dir);
		try {
			const seen: string[][] = [];
			const sub = store.onDidWrite((e) => seen.push([...e.tables].sort()));
			const result = store.write((tx) => {
				tx.run('INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', ['a', 'a', 'active', 1, 1]);
				tx.run('INSERT OR REPLACE INTO _store_meta (key, value) VALUES (?, ?)', ['k', 'v']);
				return 42;
			});
			assert.equal(result, 42, 'write still returns what fn returns');
			assert.deepEqual(sessionIds(store), ['a'], 'readable at once');
			assert.equal(store.lastSeq, 1);
			await store.durable();
			assert.equal(store.lastDurableSeq, 1);
			const rows = await store.writeDurable((tx) => tx.run("UPDATE sessions SET title = 'b' WHERE id = 'a'"));
			assert.equal(rows, 1);
			assert.equal(store.lastDurableSeq, 2);
			// Many writes without waiting, then one durable(): all of them are on disk (group commit).
			for (let i = 0; i < 200; i++) {
				insertSession(store, `g${String(i).padStart(3, '0')}`);
			}
			await store.durable();
			assert.equal(store.lastDurableSeq, 202);
			sub.dispose();
			assert.deepEqual(seen.slice(0, 2), [['_store_meta', 'sessions'], ['sessions']], 'each write says which tables it changed');
			const crashed = path.join(dir, 'crashed');
			copyAsCrashed(dir, crashed);
			const reopened = await openStore(crashed);
			try {
				assert.equal(sessionIds(reopened).length, 201);
				assert.equal(reopened.recovery.replayedRecords, 202);
			} finally {
				await reopened.close();
			}
		} finally {
			await store.close();
		}
	});

	test('an intact snapshot opens without quick_check; a snapshot that does not match its checksum is checked', async () => {
		const store = await openStore(dir);
		insertSession(store, 'a');
		await store.close();
		const sum = path.join(dir, storeFiles.snapshotSum);
		assert.ok(fs.existsSync(sum), 'the fold writes the checksum with the snapshot');
		// Damage inside the data that only quick_check or the checksum can see: the file stays a valid header.
		const snapshot = path.join(dir, storeFiles.snapshot);
		const bytes = fs.readFileSync(snapshot);
		const pageSize = bytes.readUInt16BE(16);
		for (let i = pageSize * 2; i < pageSize * 3 && i < bytes.length; i++) {
			bytes[i] = 0xa5;
		}
		fs.writeFileSync(snapshot, bytes);
		const reopened = await openStore(dir);
		try {
			assert.equal(reopened.recovery.movedAside.length, 1, 'the checksum mismatch led to quick_check, which found the damage');
		} finally {
			await reopened.close();
		}
	});

	test('a write that throws is rolled back and never journaled', async () => {
		const store = await openStore(dir);
		try {
			const bytes = store.journalBytes;
			assert.throws(() =>
				store.write((tx) => {
					tx.run("INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES ('x', 't', 'active', 1, 1)");
					throw new Error('changed my mind');
				}),
			/changed my mind/);
			assert.deepEqual(sessionIds(store), []);
			assert.equal(store.journalBytes, bytes);
			assert.equal(store.lastSeq, 0);
		} finally {
			await store.close();
		}
	});

	test('statements are prepared once and stay usable: after a statement that fails, a write that throws, and past the cache size', async () => {
		const store = await openStore(dir);
		try {
			const insert = 'INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)';
			insertSession(store, 'a');
			// The same prepared insert fails on a duplicate key, then works again with new values.
			assert.throws(() => store.write((tx) => tx.run(insert, ['a', 'dup', 'active', 1, 1])), /UNIQUE/);
			assert.throws(() => store.write((tx) => tx.run(insert, ['b', 't', 'not-a-status', 1, 1])), /CHECK/);
			store.write((tx) => tx.run(insert, ['b', 't', 'active', 1, 1]));
			// A read inside a write that then throws leaves no statement open: the next transaction begins.
			assert.throws(() =>
				store.write((tx) => {
					assert.equal(tx.all('SELECT id FROM sessions ORDER BY id').length, 2);
					tx.run(insert, ['c', 't', 'active', 1, 1]);
					throw new Error('undo');
				}),
			/undo/);
			// More distinct statements than the cache keeps: the oldest are dropped and prepared again when used.
			for (let i = 0; i < 300; i++) {
				assert.equal(store.get<{ n: number }>(`SELECT ${i} AS n`)?.n, i);
			}
			store.write((tx) => tx.run(insert, ['d', 't', 'active', 1, 1]));
			assert.deepEqual(sessionIds(store), ['a', 'b', 'd']);
			await store.durable();
			const crashed = path.join(dir, 'crashed');
			copyAsCrashed(dir, crashed);
			const reopened = await openStore(crashed);
			try {
				assert.deepEqual(sessionIds(reopened), ['a', 'b', 'd']);
			} finally {
				await reopened.close();
			}
		} finally {
			await store.close();
		}
	});

	test('nested writes are refused', async () => {
		const store = await openStore(dir);
		try {
			assert.throws(() => store.write(() => store.write(() => undefined)), /Nested Store.write/);
		} finally {
			await store.close();
		}
	});

	test('blobs and unicode round-trip through the journal', async () => {
		const store = await openStore(dir);
		const blob = new Uint8Array([0, 1, 2, 255, 254]);
		store.write((tx) => {
			tx.run("INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES ('s', 'ünï 🧪 \"q\"', 'active', 1, 1)");
			tx.run("INSERT INTO _store_meta (key, value) VALUES ('blob', ?)", [blob]);
		});
		await store.durable();
		const crashed = path.join(dir, 'crashed');
		copyAsCrashed(dir, crashed);
		const reopened = await openStore(crashed);
		try {
			assert.equal(reopened.get<{ title: string }>("SELECT title FROM sessions WHERE id = 's'")?.title, 'ünï 🧪 "q"');
			assert.deepEqual(reopened.get<{ value: Uint8Array }>("SELECT value FROM _store_meta WHERE key = 'blob'")?.value, blob);
		} finally {
			await reopened.close();
			await store.close();
		}
	});

	test('rows read by query carry each column by name (a later column of the same name wins); a chat\'s messages come by turn, each in order', async () => {
		const store = await openStore(dir);
		try {
			assert.deepEqual(store.all('SELECT 1 AS a, NULL AS b, \'x\' AS a UNION ALL SELECT 2, 3.5, \'y\''), [
				{ a: 'x', b: null },
				{ a: 'y', b: 3.5 },
			]);
			assert.deepEqual(store.all('SELECT 1 AS a WHERE 0'), []);
			const sessions = new SessionsRepo(store);
			const transcript = new TranscriptRepo(store);
			const session = sessions.create({ title: 't', baseRef: 'main', repoRoot: dir });
			const chatId = sessions.createChat({ sessionId: session.id, agent: 'a' }).id;
			const other = sessions.createChat({ sessionId: session.id, agent: 'a' }).id;
			const turns = [transcript.startTurn({ chatId, agent: 'a', prompt: 'first' }), transcript.startTurn({ chatId, agent: 'a', prompt: 'second' })];
			transcript.startTurn({ chatId: other, agent: 'a', prompt: 'elsewhere' });
			// Written out of order, in the second turn first: what comes back follows the turns and their seq.
			transcript.writeMessages(turns[1]!.id, [3, 1, 2].map((seq) => ({ id: `m2-${seq}`, seq, kind: 'text', toolCallId: null, content: '{}', createdAt: 1 })));
			transcript.writeMessages(turns[0]!.id, [2, 1].map((seq) => ({ id: `m1-${seq}`, seq, kind: 'text', toolCallId: null, content: '{}', createdAt: 1 })));
			const byTurn = transcript.listChatMessages(chatId);
			assert.deepEqual([...byTurn.keys()], turns.map((t) => t.id));
			for (const turn of turns) {
				assert.deepEqual(byTurn.get(turn.id), transcript.listMessages(turn.id));
			}
			assert.deepEqual(byTurn.get(turns[1]!.id)!.slice(-3).map((m) => m.id), ['m2-1', 'm2-2', 'm2-3']);
		} finally {
			await store.close();
		}
	});

	test('folds write the journal into the snapshot in the background', async () => {
		const store = await openStore(dir, { foldJournalBytes: 2048 });
		try {
			for (let i = 0; i < 40; i++) {
				insertSession(store, `s${String(i).padStart(2, '0')}`, 'x'.repeat(200));
			}
			await store.foldJournal();
			assert.equal(journals(dir).length, 1, 'old journals are removed once the snapshot holds them');
			assert.ok(store.journalBytes <= journalHeader.length + 1024);
			insertSession(store, 'after');
			await store.durable();
			const crashed = path.join(dir, 'crashed');
			copyAsCrashed(dir, crashed);
			const reopened = await openStore(crashed);
			try {
				assert.equal(sessionIds(reopened).length, 41);
				assert.equal(reopened.recovery.replayedRecords, 1, 'only the write after the fold is replayed');
			} finally {
				await reopened.close();
			}
		} finally {
			await store.close();
		}
	});

	test('by default a journal past 4 MiB is folded in the background, so a crash leaves at most that much to replay', async () => {
		const store = await openStore(dir);
		try {
			const title = 'x'.repeat(100_000);
			for (let i = 0; i < 70; i++) {
				insertSession(store, `s${String(i).padStart(2, '0')}`, title);
			}
			await store.durable();
			// The journal past the limit is folded and removed; the writes after it are in a journal of their own.
			const folded = (): boolean => {
				const names = journals(dir);
				return names.length === 1 && !names[0]!.endsWith('000000000001');
			};
			await waitFor(folded, 'a background fold of the first journal (past 4 MiB, the default)', 30_000);
			// Written after the fold: in the journal that goes on (a busy machine may have put all 70 in the first).
			for (let i = 70; i < 73; i++) {
				insertSession(store, `s${i}`, 'after the fold');
			}
			await store.durable();
			const crashed = path.join(dir, 'crashed');
			copyAsCrashed(dir, crashed);
			const reopened = await openStore(crashed);
			try {
				assert.equal(sessionIds(reopened).length, 73);
				const replayed = reopened.recovery.replayedRecords;
				assert.ok(replayed >= 3 && replayed < 3 + 70 - 40, `replayed ${replayed}: only the writes after the first 4 MiB`);
			} finally {
				await reopened.close();
			}
		} finally {
			await store.close();
		}
	});

	test('close folds a journal that is not small into a final snapshot, and releases the lock', async () => {
		const store = await openStore(dir, { smallJournalRecords: 1 });
		insertSession(store, 'a');
		await store.close();
		assert.ok(!fs.existsSync(path.join(dir, storeFiles.lock)));
		const again = await openStore(dir);
		try {
			assert.deepEqual(sessionIds(again), ['a']);
			assert.equal(again.recovery.replayedRecords, 0);
		} finally {
			await again.close();
		}
	});

	test('close leaves a small journal for the next open to replay (no fold), and nothing is lost', async () => {
		const store = await openStore(dir);
		insertSession(store, 'a');
		insertSession(store, 'b');
		await store.close();
		assert.ok(!fs.existsSync(path.join(dir, storeFiles.lock)));
		const again = await openStore(dir);
		try {
			assert.deepEqual(sessionIds(again), ['a', 'b']);
			assert.equal(again.recovery.replayedRecords, 2);
			insertSession(again, 'c');
		} finally {
			await again.close();
		}
		const third = await openStore(dir);
		try {
			assert.deepEqual(sessionIds(third), ['a', 'b', 'c']);
		} finally {
			await third.close();
		}
	});

	test('a torn journal tail (a write cut short) is dropped quietly; everything acknowledged stays', async () => {
		const store = await openStore(dir);
		insertSession(store, 'a');
		insertSession(store, 'b');
		await store.durable();
		const crashed = path.join(dir, 'crashed');
		copyAsCrashed(dir, crashed);
		await store.close();
		const [journal] = journals(crashed);
		// Half of a record header plus some payload: what a kill in the middle of write() leaves.
		fs.appendFileSync(path.join(crashed, journal!), Buffer.from([0x40, 0, 0, 0, 1, 2, 3, 4, 0x7b, 0x22]));
		const reopened = await openStore(crashed);
		try {
			assert.deepEqual(sessionIds(reopened), ['a', 'b']);
			assert.equal(reopened.recovery.droppedTornBytes, 10);
			assert.deepEqual(reopened.recovery.movedAside, []);
		} finally {
			await reopened.close();
		}
	});

	test('a damaged journal is moved aside, the writes before the damage are recovered', async () => {
		const store = await openStore(dir);
		for (const id of ['a', 'b', 'c', 'd']) {
			await store.writeDurable((tx) => tx.run('INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?)', [id, id, 'active', 1, 1]));
		}
		const crashed = path.join(dir, 'crashed');
		copyAsCrashed(dir, crashed);
		await store.close();
		const [journal] = journals(crashed);
		const file = path.join(crashed, journal!);
		const data = fs.readFileSync(file);
		// Flip a byte inside the third record's payload; the fourth record after it is intact.
		let offset = journalHeader.length;
		for (let i = 0; i < 2; i++) {
			offset += 8 + data.readUInt32LE(offset);
		}
		data[offset + 20] ^= 0xff;
		fs.writeFileSync(file, data);
		const logger = new MemoryLogger();
		const reopened = await openStore(crashed, { logger });
		try {
			assert.deepEqual(sessionIds(reopened), ['a', 'b']);
			assert.equal(reopened.recovery.movedAside.length, 1);
			assert.ok(fs.existsSync(reopened.recovery.movedAside[0]!), 'the damaged journal is kept');
			assert.match(reopened.recovery.problems[0]!, /is damaged .*checksum.*recovered/);
			assert.ok(logger.lines.some((l) => l.startsWith('error') && l.includes('moved aside')));
		} finally {
			await reopened.close();
		}
	});

	for (const [name, damage] of [
		['garbage', (_bytes: Buffer) => Buffer.from('this is not a database at all, just some text'.repeat(200))],
		['truncated', (bytes: Buffer) => bytes.subarray(0, Math.floor(bytes.length / 2))],
		['zeroed header', (bytes: Buffer) => Buffer.concat([Buffer.alloc(100), bytes.subarray(100)])],
		// SQLite itself opens these two as a new, empty database: every session would vanish without a word.
		['emptied', (_bytes: Buffer) => Buffer.alloc(0)],
		['cut inside its header', (bytes: Buffer) => bytes.subarray(0, 1)],
		['cut after its first page', (bytes: Buffer) => bytes.subarray(0, 4096)],
		['missing its last byte', (bytes: Buffer) => bytes.subarray(0, bytes.length - 1)],
	] as const) {
		test(`a ${name} database file is moved aside, kept, and the store starts with what it can recover`, async () => {
			const store = await openStore(dir, { smallJournalRecords: 1 }); // close folds: the snapshot alone holds the rows
			for (let i = 0; i < 50; i++) {
				insertSession(store, `s${i}`, 'y'.repeat(500));
			}
			await store.close();
			const snapshot = path.join(dir, storeFiles.snapshot);
			const damaged = damage(fs.readFileSync(snapshot));
			fs.writeFileSync(snapshot, damaged);
			const reopened = await openStore(dir);
			try {
				assert.equal(reopened.recovery.movedAside.length, 1);
				const kept = reopened.recovery.movedAside[0]!;
				assert.deepEqual(fs.readFileSync(kept), damaged, 'the damaged file is kept as it was');
				assert.match(reopened.recovery.problems[0]!, /agent-tabs\.sqlite is not a readable database .* it was kept as/);
				assert.deepEqual(reopened.recovery.damaged?.keptAs, [kept], 'the damage report names the file kept, by its full path');
				assert.ok(path.isAbsolute(kept));
				assert.deepEqual(sessionIds(reopened), []);
				insertSession(reopened, 'fresh');
				assert.deepEqual(sessionIds(reopened), ['fresh']);
			} finally {
				await reopened.close();
			}
		});
	}

	test('the damage stays reported until the rebuild from git is done, even across a crash; a healthy open reports none', async () => {
		const store = await openStore(dir);
		insertSession(store, 'a');
		await store.close();
		const healthy = await openStore(dir);
		assert.equal(healthy.recovery.damaged, null);
		await healthy.close();
		fs.writeFileSync(path.join(dir, storeFiles.snapshot), 'garbage that is not a database');
		const damaged = await openStore(dir);
		const report = damaged.recovery.damaged;
		assert.ok(report && report.keptAs.length === 1 && fs.existsSync(report.keptAs[0]!));
		// The process dies before it rebuilt anything: the next open must still say so.
		const crashed = path.join(dir, 'crashed');
		copyAsCrashed(dir, crashed);
		await damaged.close();
		const again = await openStore(crashed);
		try {
			assert.deepEqual(again.recovery.damaged, report, 'the same report, although nothing was moved aside this time');
			assert.deepEqual(again.recovery.movedAside, []);
			await again.rebuildDone();
		} finally {
			await again.close();
		}
		const quiet = await openStore(crashed);
		assert.equal(quiet.recovery.damaged, null);
		await quiet.close();
	});

	test('a damaged snapshot whose journal still starts at the first write is rebuilt from the journal', async () => {
		const store = await openStore(dir);
		insertSession(store, 'a');
		insertSession(store, 'b');
		await store.durable();
		const crashed = path.join(dir, 'crashed');
		copyAsCrashed(dir, crashed);
		await store.close();
		fs.writeFileSync(path.join(crashed, storeFiles.snapshot), 'garbage');
		const reopened = await openStore(crashed);
		try {
			assert.deepEqual(sessionIds(reopened), ['a', 'b']);
			assert.equal(reopened.recovery.movedAside.length, 1);
		} finally {
			await reopened.close();
		}
	});

	test('a journal append that fails in the worker (the file cannot grow): durable() rejects in plain words, later writes throw, every acknowledged write survives', async () => {
		const first = await openStore(dir);
		await first.close();
		const largest = Math.max(...fs.readdirSync(dir).map((n) => fs.statSync(path.join(dir, n)).size));
		// Room for a few 10 kB rows in the journal, not for a thousand.
		const limit = largest + 100_000;
		const r = spawnSync('prlimit', [`--fsize=${limit}:${limit}`, process.execPath, path.join(repoRoot, 'out', 'test', 'fixtures', 'fullDiskWriter.js'), dir, wasmPath], { encoding: 'utf8' });
		assert.equal(r.status, 0, r.stderr);
		const out = JSON.parse(r.stdout.trim()) as {
			acked: number[];
			durableError?: { storeFailed: boolean; message: string };
			writeError?: { storeFailed: boolean; message: string };
			durableAfter: string;
		};
		assert.ok(out.acked.length > 0 && out.acked.length < 1000, `some writes fit, not all (${out.acked.length})`);
		assert.ok(out.durableError?.storeFailed, 'durable() rejects with StoreFailedError');
		assert.match(out.durableError.message, /Could not save to .*agent-tabs\.journal\.\d+: the file reached the largest size this process may write/);
		assert.ok(out.writeError?.storeFailed, 'a write after the failure throws StoreFailedError');
		assert.match(out.writeError.message, /stopped accepting writes .*largest size this process may write/);
		assert.equal(out.durableAfter, 'rejected with StoreFailedError');
		assert.ok(!fs.existsSync(path.join(dir, storeFiles.lock)), 'close() after the failure finished and released the lock');
		const reopened = await openStore(dir);
		try {
			const ids = new Set(sessionIds(reopened));
			for (const n of out.acked) {
				assert.ok(ids.has(`s${n}`), `acknowledged write ${n} survives`);
			}
		} finally {
			await reopened.close();
		}
	});

	suite('one writer per folder', () => {
		const children: ChildProcess[] = [];
		teardown(() => {
			for (const c of children.splice(0)) {
				c.kill('SIGKILL');
			}
		});

		function startHolder(env: NodeJS.ProcessEnv = {}): Promise<ChildProcess> {
			const child = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'lockHolder.js'), dir, wasmPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
			children.push(child);
			return new Promise((resolve, reject) => {
				let err = '';
				child.stderr!.on('data', (d) => (err += String(d)));
				child.stdout!.on('data', (d) => String(d).includes('ready') && resolve(child));
				child.on('exit', (code) => reject(new Error(`lock holder exited ${code}: ${err}`)));
			});
		}

		test('a holder that hands over (a VS Code window) lets go when asked, its last write kept', async () => {
			const child = await startHolder({ AGENT_TABS_HANDOVER: '1' });
			const lockFile = path.join(dir, storeFiles.lock);
			await assert.rejects(openStore(dir), StoreLockedError);
			const exited = new Promise<number | null>((r) => child.on('exit', r));
			assert.equal(await requestHandover(dir, lockFile, 'a unit test', 20_000), true);
			assert.equal(await exited, 0, 'the holder closed its store and exited by itself');
			assert.ok(!fs.existsSync(path.join(dir, handoverFileName)), 'the request is cleaned up');
			const store = await openStore(dir);
			try {
				assert.deepEqual(
					new SessionsRepo(store).list().map((s) => s.title),
					[`handed to ${process.pid}`],
				);
			} finally {
				await store.close();
			}
		});

		test('a holder that does not hand over (the CLI) keeps the folder; the request times out and is removed', async () => {
			const child = await startHolder();
			assert.equal(await requestHandover(dir, path.join(dir, storeFiles.lock), 'a unit test', 1_500), false);
			assert.equal(child.exitCode, null, 'the holder still runs');
			assert.ok(!fs.existsSync(path.join(dir, handoverFileName)));
			await assert.rejects(openStore(dir), StoreLockedError);
		});

		test('a handover request from a process that is gone, or from the holder itself, is ignored', async () => {
			const store = await openStore(dir);
			let released = 0;
			const watcher = watchHandoverRequests(dir, async () => void released++, 20);
			try {
				const dead = spawnSync(process.execPath, ['-e', '']).pid;
				fs.writeFileSync(path.join(dir, handoverFileName), JSON.stringify({ pid: dead, host: os.hostname(), owner: 'gone', since: '', at: Date.now() }));
				await new Promise((r) => setTimeout(r, 200));
				fs.writeFileSync(path.join(dir, handoverFileName), JSON.stringify({ pid: process.pid, host: os.hostname(), owner: 'me', since: '', at: Date.now() }));
				await new Promise((r) => setTimeout(r, 200));
				assert.equal(released, 0);
			} finally {
				watcher.dispose();
				await store.close();
			}
		});

		test('a second opener in the same process gets a clear error', async () => {
			const store = await openStore(dir);
			try {
				await assert.rejects(openStore(dir, { owner: 'a second window' }), (e: unknown) => {
					assert.ok(e instanceof StoreLockedError);
					assert.equal(e.holder.pid, process.pid);
					assert.match(e.message, /is in use by a unit test \(pid \d+/);
					return true;
				});
			} finally {
				await store.close();
			}
		});

		test('another live process holding the folder is named in the error, and its data is untouched', async () => {
			const child = await startHolder();
			await assert.rejects(openStore(dir), (e: unknown) => {
				assert.ok(e instanceof StoreLockedError);
				assert.equal(e.holder.pid, child.pid);
				assert.match(e.message, /the lock-holder test process/);
				return true;
			});
			assert.ok(fs.existsSync(path.join(dir, storeFiles.lock)), 'the holder keeps its lock');
		});

		test('the lock of a killed process is stale and taken over', async () => {
			const child = await startHolder();
			const exited = new Promise((r) => child.on('exit', r));
			child.kill('SIGKILL');
			await exited;
			const store = await openStore(dir);
			try {
				assert.match(fs.readFileSync(path.join(dir, storeFiles.lock), 'utf8'), new RegExp(`"pid":${process.pid}`));
			} finally {
				await store.close();
			}
		});
	});
});
