import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { Store, StoreReadOnlyError, storeFiles, type SnapshotOptions } from '../../../src/db/store';
import { MemoryLogger, openStore, removeDir, repoRoot, tempDir, wasmPath } from '../helpers';

function snapshot(dir: string, logger = new MemoryLogger()): Promise<Store> {
	return Store.openSnapshot({ dir, wasmPath, logger });
}

suite('db/store: read-only snapshots for commands that only read', function () {
	this.timeout(60_000);
	let dir: string;
	setup(() => {
		dir = tempDir('agent-tabs-snapshot-');
	});
	teardown(() => removeDir(dir));

	test('a snapshot sees journaled writes of a store that is still open, takes no lock and cannot write', async () => {
		const state = path.join(dir, 'state');
		const writer = await openStore(state);
		try {
			new SessionsRepo(writer).create({ title: 'only in the journal' });
			await writer.durable(); // a reader sees what is acknowledged: on disk in the journal
			const files = fs.readdirSync(state).sort();
			const reader = await snapshot(state);
			try {
				assert.deepEqual(new SessionsRepo(reader).list().map((s) => s.title), ['only in the journal']);
				assert.ok(reader.readOnly);
				assert.throws(() => new SessionsRepo(reader).create({ title: 'no' }), StoreReadOnlyError);
			} finally {
				await reader.close();
			}
			assert.deepEqual(fs.readdirSync(state).sort(), files, 'the reader created, renamed and removed nothing');
			new SessionsRepo(writer).create({ title: 'the writer still writes' });
		} finally {
			await writer.close();
		}
	});

	test('a missing state folder reads as empty and is not created', async () => {
		const state = path.join(dir, 'never-made');
		const reader = await snapshot(state);
		assert.deepEqual(new SessionsRepo(reader).list(), []);
		await reader.close();
		assert.ok(!fs.existsSync(state));
	});

	/**
	 * A real second process (test/fixtures/foldingWriter.ts) writes `count` sessions and, with `fold`, folds
	 * its journal into the snapshot and deletes the folded journals; synchronous, so it can run inside a
	 * reader's open, between two of its file reads.
	 */
	function writer(state: string, first: number, count: number, fold: boolean): void {
		execFileSync(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'foldingWriter.js'), state, wasmPath, String(first), String(count), ...(fold ? ['fold'] : [])], { stdio: 'pipe' });
	}

	/** Opens a snapshot while a writer folds right after the reader's `at` read (once, on the first attempt). */
	async function snapshotWithFoldAfter(state: string, at: Parameters<NonNullable<SnapshotOptions['afterRead']>>[0], logger: MemoryLogger): Promise<Store> {
		let folded = false;
		return Store.openSnapshot({
			dir: state,
			wasmPath,
			logger,
			afterRead: (what) => {
				if (what === at && !folded) {
					folded = true;
					writer(state, 6, 5, true);
				}
			},
		});
	}

	for (const [at, when] of [
		['snapshot', 'between reading the snapshot and listing the journals'],
		['journalList', 'between listing the journals and reading them'],
	] as const) {
		test(`a writer that folds ${when} makes the reader start over: it sees every acknowledged write`, async () => {
			const state = path.join(dir, 'state');
			// The snapshot at write 0 and a journal holding w1..w5 (small journals are not folded on close).
			writer(state, 1, 5, false);
			assert.ok(fs.readdirSync(state).some((n) => n.startsWith(storeFiles.journalPrefix)), 'the setup left a journal');
			const logger = new MemoryLogger();
			const reader = await snapshotWithFoldAfter(state, at, logger);
			try {
				const titles = new SessionsRepo(reader).list().map((s) => s.title).sort();
				// w1..w5 were acknowledged before the read began; the fold ran before the read finished, so w6..w10 too.
				assert.deepEqual(titles, ['w1', 'w10', 'w2', 'w3', 'w4', 'w5', 'w6', 'w7', 'w8', 'w9'], logger.lines.join('\n'));
				assert.deepEqual(reader.recovery.problems, []);
			} finally {
				await reader.close();
			}
		});
	}

	test('while another process writes and folds all the time, every snapshot is complete and gap-free', async () => {
		const state = path.join(dir, 'busy');
		// A small fold size: the writer folds its journal into the snapshot and deletes journals constantly.
		const child = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'crashWriter.js'), state, wasmPath, '1', '8000'], { stdio: ['ignore', 'pipe', 'inherit'] });
		let acked = 0;
		let buffer = '';
		child.stdout.on('data', (d: Buffer) => {
			buffer += d.toString('utf8');
			const lines = buffer.split('\n');
			buffer = lines.pop()!;
			for (const l of lines) {
				if (l.startsWith('ack ')) {
					acked = Number(l.slice(4));
				}
			}
		});
		try {
			const deadline = Date.now() + 10_000;
			while (acked < 200 && Date.now() < deadline) {
				await new Promise((r) => setTimeout(r, 20));
			}
			assert.ok(acked >= 200, 'the writer is writing');
			for (let round = 0; round < 40; round++) {
				const before = acked;
				const logger = new MemoryLogger();
				const reader = await snapshot(state, logger);
				try {
					const ids = reader.all<{ id: string }>('SELECT id FROM sessions').map((r) => Number(r.id.slice(1)));
					const max = Math.max(...ids);
					assert.ok(max >= before, `round ${round}: write ${before} was acknowledged before the read but is missing (read up to ${max})`);
					assert.equal(ids.length, max, `round ${round}: the snapshot has holes`);
					assert.deepEqual(reader.recovery.problems, [], `round ${round}: ${logger.lines.join('\n')}`);
				} finally {
					await reader.close();
				}
			}
		} finally {
			child.kill('SIGKILL');
		}
	});
});
