/**
 * bench/store: acknowledged-write latency of the Store against (a) the naive way (export the whole database
 * and write it on every write) and (b) the floor, a raw append plus fdatasync of the same bytes, measured in
 * the same run on the same file system, at 1, 20 and 100 MB. Also the time to open each database.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { nullLogger } from '../src/common/log';
import { encodeParams, encodeRecord } from '../src/db/journal';
import { loadSqlJs } from '../src/db/sqlJs';
import { Store, storeFiles } from '../src/db/store';
import { log, nowMs, round, summary } from './stats';

const wasmPath = path.resolve(__dirname, '..', '..', 'node_modules', 'sql.js', 'dist', 'sql-wasm.wasm');
const writes = Number(process.env.BENCH_WRITES ?? 1000);
const naiveWrites = (mb: number): number => Number(process.env.BENCH_NAIVE_WRITES ?? (mb >= 100 ? 15 : mb >= 20 ? 30 : 60));
const sizesMb = (process.env.BENCH_SIZES_MB ?? '1,20,100').split(',').map(Number);

const payload = 'lorem ipsum dolor sit amet, '.repeat(12); // ~330 bytes, a folded chunk of agent text
const smallWriteSql = 'INSERT INTO messages (id, turn_id, seq, kind, content, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)';
const smallUpdateSql = 'UPDATE turns SET ended_at = ? WHERE id = ?';

/** Builds a state folder whose database is about `mb` MB: sessions, chats, turns and messages. */
async function buildDatabase(dir: string, mb: number): Promise<void> {
	const empty = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench' });
	await empty.close();
	const SQL = await loadSqlJs(wasmPath);
	const file = path.join(dir, storeFiles.snapshot);
	const db = new SQL.Database(new Uint8Array(fs.readFileSync(file)));
	db.exec('BEGIN');
	db.run("INSERT INTO sessions (id, title, status, created_at, updated_at) VALUES ('s', 'bench', 'active', 1, 1)");
	db.run("INSERT INTO chats (id, session_id, title, agent, created_at, updated_at) VALUES ('c', 's', 'bench', 'claude', 1, 1)");
	const turn = db.prepare("INSERT INTO turns (id, chat_id, agent, seq, prompt, status, started_at) VALUES (?, 'c', 'claude', ?, 'p', 'done', 1)");
	const msg = db.prepare(smallWriteSql);
	const rows = Math.ceil((mb * 1024 * 1024) / 520);
	for (let i = 0; i < rows; i++) {
		if (i % 50 === 0) {
			turn.run([`t${i / 50}`, i / 50 + 1]);
		}
		msg.run([`m${i}`, `t${Math.floor(i / 50)}`, i % 50, 'text', payload, i, i]);
	}
	turn.free();
	msg.free();
	db.run("INSERT INTO turns (id, chat_id, agent, seq, prompt, status, started_at) VALUES ('live', 'c', 'claude', 999999999, 'p', 'running', 1)");
	db.exec('COMMIT');
	fs.writeFileSync(file, db.export());
	db.close();
}

function fsyncedAppendLatencies(file: string, bytes: Buffer, n: number): number[] {
	const fd = fs.openSync(file, 'a');
	const out: number[] = [];
	try {
		for (let i = 0; i < n; i++) {
			const t0 = nowMs();
			fs.writeSync(fd, bytes);
			fs.fdatasyncSync(fd);
			out.push(nowMs() - t0);
		}
	} finally {
		fs.closeSync(fd);
	}
	return out;
}

export interface StoreBenchResult {
	sizeMb: number;
	actualMb: number;
	openMs: number;
	store: ReturnType<typeof summary>;
	floor: ReturnType<typeof summary>;
	naive: ReturnType<typeof summary>;
	checkpointsDuringRun: number;
	recordBytes: number;
	ratios: { storeP99OverFloorP99: number; storeP50OverFloorP50: number; naiveP99OverStoreP99: number };
}

export async function runStoreBench(): Promise<{ sizes: StoreBenchResult[]; flatness: number; targets: Record<string, boolean>; notes: string[] }> {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-bench-'));
	const results: StoreBenchResult[] = [];
	try {
		for (const mb of sizesMb) {
			const dir = path.join(root, `db-${mb}`);
			log(`store: building ${mb} MB`);
			await buildDatabase(dir, mb);
			const actualMb = fs.statSync(path.join(dir, storeFiles.snapshot)).size / (1024 * 1024);

			const t0 = nowMs();
			const store = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench' });
			const openMs = nowMs() - t0;

			const params = (i: number): (string | number)[] => [`bench-${i}`, 'live', 1000 + i, 'text', payload, i, i];
			const recordBytes = encodeRecord({ seq: 1, stmts: [[smallWriteSql, encodeParams(params(0))], [smallUpdateSql, encodeParams([1, 'live'])]] }).length;
			const floorFile = path.join(dir, 'floor.bin');
			const floorBytes = Buffer.alloc(recordBytes, 0x61);

			// Warm-up, not measured: the first writes after open fault in pages and compile code paths.
			for (let i = 0; i < 20; i++) {
				store.write((tx) => {
					tx.run(smallWriteSql, params(50_000 + i));
					tx.run(smallUpdateSql, [i, 'live']);
				});
			}
			fsyncedAppendLatencies(floorFile, floorBytes, 20);
			// Alternate floor and store in blocks so machine noise hits both alike.
			const storeLat: number[] = [];
			const floorLat: number[] = [];
			let checkpoints = 0;
			const block = 50;
			for (let done = 0; done < writes; done += block) {
				floorLat.push(...fsyncedAppendLatencies(floorFile, floorBytes, block));
				for (let i = done; i < done + block; i++) {
					const before = store.journalBytes;
					const w0 = nowMs();
					store.write((tx) => {
						tx.run(smallWriteSql, params(i));
						tx.run(smallUpdateSql, [i, 'live']);
					});
					storeLat.push(nowMs() - w0);
					if (store.journalBytes < before) {
						checkpoints++;
					}
				}
				// Let background work (a checkpoint, if one was due) run between blocks, as in real use.
				await new Promise((r) => setImmediate(r));
			}
			await store.close();

			log(`store: naive writes at ${mb} MB`);
			const SQL = await loadSqlJs(wasmPath);
			const db = new SQL.Database(new Uint8Array(fs.readFileSync(path.join(dir, storeFiles.snapshot))));
			const naiveLat: number[] = [];
			const naiveFile = path.join(dir, 'naive.sqlite');
			for (let i = 0; i < naiveWrites(mb); i++) {
				const w0 = nowMs();
				db.run(smallWriteSql, params(100_000 + i));
				db.run(smallUpdateSql, [i, 'live']);
				const bytes = db.export();
				const tmp = `${naiveFile}.tmp`;
				const fd = fs.openSync(tmp, 'w');
				fs.writeSync(fd, bytes);
				fs.fsyncSync(fd);
				fs.closeSync(fd);
				fs.renameSync(tmp, naiveFile);
				naiveLat.push(nowMs() - w0);
			}
			db.close();

			const s = summary(storeLat);
			const f = summary(floorLat);
			const n = summary(naiveLat);
			results.push({
				sizeMb: mb,
				actualMb: round(actualMb, 1),
				openMs: round(openMs, 1),
				store: s,
				floor: f,
				naive: n,
				checkpointsDuringRun: checkpoints,
				recordBytes,
				ratios: { storeP99OverFloorP99: round(s.p99 / f.p99, 2), storeP50OverFloorP50: round(s.p50 / f.p50, 2), naiveP99OverStoreP99: round(n.p99 / s.p99, 1) },
			});
			fs.rmSync(dir, { recursive: true, force: true });
		}
	} finally {
		fs.rmSync(root, { recursive: true, force: true });
	}
	const first = results[0]!;
	const last = results[results.length - 1]!;
	// "Flat" compares p99 at 100 MB to 1 MB, each normalised by its own floor measured alongside, so a noisy
	// disk moment in one block does not read as growth; 1.5 leaves room for that noise on a shared machine.
	const flatness = round(last.ratios.storeP99OverFloorP99 / first.ratios.storeP99OverFloorP99, 2);
	const targets: Record<string, boolean> = { flat: flatness <= 1.5 };
	for (const r of results) {
		targets[`p99Within3xFloor@${r.sizeMb}MB`] = r.ratios.storeP99OverFloorP99 <= 3;
	}
	return {
		sizes: results,
		flatness,
		targets,
		notes: [
			'Latencies in ms per acknowledged write (one small transaction: insert a message, update its turn).',
			'floor = raw write + fdatasync of the same number of bytes as the journal record, interleaved with the store writes.',
			'naive = run the same statements, export the whole database, write a temp file, fsync, rename.',
			'flatness = (store p99 / floor p99 at the largest size) / (the same at the smallest size); target <= 1.5.',
		],
	};
}
