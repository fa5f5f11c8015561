/**
 * bench/store: the store's hot paths, each against a baseline measured in the same run, at about 1, 20 and
 * 100 MB of realistic rows (sessions, chats, turns, messages built through the real Store):
 *  - write: one small transaction (a streaming flush: upsert a ~300-byte message, update its turn) from
 *    `write()` until `durable()` resolves, against the floor: a raw positional append of the same number of
 *    bytes plus fdatasync to a plain file in the same folder, in blocks interleaved with the store's; and
 *    against the same append done off the host thread by a bare worker (`offThreadFloor`);
 *  - fold: the longest stall of the host's event loop while `foldJournal()` folds the journal into a new
 *    snapshot, against the longest stall over the same time with nothing running, and against what the old
 *    fold stalled (`db.export()` of the same database on the host thread);
 *  - open: `Store.open` of the folder (snapshot, checksum, journals) against a plain sql.js load of the same
 *    snapshot (read the file, `new SQL.Database` of its Buffer), alternated run by run, in this process and
 *    each in a fresh process (a window's start); and open after a crash, which replays the journal of the
 *    measured writes.
 * Targets (issue 13): write p99 <= 3x floor p99; fold's longest stall < 16 ms; open <= 1.5x plain load.
 *
 * Knobs (environment): BENCH_SIZES_MB (1,20,100), BENCH_WRITES (2000 per size), BENCH_BLOCK (25), BENCH_OPENS (5),
 * BENCH_COLD_OPENS (9).
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';
import { newId } from '../src/common/ids';
import { nullLogger } from '../src/common/log';
import { encodeParams, encodeRecord, type JournalRecord, type SqlParam } from '../src/db/journal';
import { SessionsRepo } from '../src/db/sessionsRepo';
import { loadSqlJs } from '../src/db/sqlJs';
import { Store, storeFiles, type WriteTx } from '../src/db/store';
import { TranscriptRepo, upsertMessageSql, utf8 } from '../src/db/transcriptRepo';
import { plainLoad } from './openChild';
import { log, nowMs, percentile, round, stallWatch, summary, type Stall } from './stats';

const wasmPath = path.resolve(__dirname, '..', '..', 'node_modules', 'sql.js', 'dist', 'sql-wasm.wasm');
const MiB = 1024 * 1024;

function envInt(name: string, fallback: number): number {
	const v = Number(process.env[name]);
	return Number.isFinite(v) && v > 0 ? Math.floor(v) : fallback;
}

const config = {
	sizesMb: (process.env.BENCH_SIZES_MB ?? '1,20,100')
		.split(',')
		.map(Number)
		.filter((n) => n > 0),
	// A p99 is decided by its top 1%: 2000 writes give 20 samples there, enough to keep two p99s of the same
	// operation within ~25% of each other on this shared VM.
	writes: envInt('BENCH_WRITES', 2000),
	block: envInt('BENCH_BLOCK', 25),
	opens: envInt('BENCH_OPENS', 5),
	// A fresh process per open moves more from run to run (page faults, lazily compiled code): more runs.
	coldOpens: envInt('BENCH_COLD_OPENS', 9),
};

export const targets = { writeP99OverFloorP99: 3, foldLongestStallMs: 16, openOverPlainLoad: 1.5 } as const;

// --- realistic rows -----------------------------------------------------------------------------------

/** A small seeded PRNG, so every run builds the same kind of text. */
function prng(seed: number): () => number {
	let a = seed >>> 0;
	return () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
}

const words = 'the a function returns value file test error build index store write journal session chat turn agent tool call read edit diff patch commit branch worktree because so then when if not with from into over'.split(' ');

function prose(rand: () => number, chars: number): string {
	let s = '';
	while (s.length < chars) {
		s += `${words[Math.floor(rand() * words.length)]!}${rand() < 0.08 ? '. ' : ' '}`;
	}
	return s.slice(0, chars);
}

/** Message content as TurnRecorder stores it: JSON of the folded event. */
function messageContent(rand: () => number, kind: string, i: number): string {
	switch (kind) {
		case 'tool_call':
			return JSON.stringify({ toolCallId: `call_${i}`, title: `Read src/module${i % 97}.ts`, kind: 'read', status: 'completed', rawInput: { path: `src/module${i % 97}.ts` }, content: prose(rand, 150 + Math.floor(rand() * 250)) });
		case 'user':
			return JSON.stringify({ text: prose(rand, 60 + Math.floor(rand() * 200)) });
		default:
			return JSON.stringify({ text: prose(rand, 200 + Math.floor(rand() * 400)), messageId: `m${i}` });
	}
}

const insertTurnSql = 'INSERT INTO turns (id, chat_id, agent, seq, prompt, status, stop_reason, input_tokens, output_tokens, started_at, ended_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)';
const updateTurnSql = 'UPDATE turns SET output_tokens = ? WHERE id = ?';

const agents = ['claude', 'codex', 'opencode'];
const turnsPerBatch = 10;
const messagesPerTurn = 20;
const kinds = ['text', 'reasoning', 'tool_call', 'text', 'text'];

function dbBytes(store: Store): number {
	return store.get<{ n: number }>('SELECT page_count * page_size AS n FROM pragma_page_count(), pragma_page_size()')?.n ?? 0;
}

interface Built {
	mb: number;
	dir: string;
	/** Filling plus the closing fold (export, write, fsync, rename). */
	buildMs: number;
	/** Size of the snapshot the measurement opens. */
	snapshotBytes: number;
	rows: Record<'sessions' | 'chats' | 'turns' | 'messages', number>;
	/** A chat of the last session, where the measured writes go. */
	chatId: string;
}

/**
 * Fills a state folder through the real Store to about `mb` MB: sessions and chats through SessionsRepo,
 * then turns and messages in batches of 210 rows per transaction. A huge fold threshold keeps the
 * build from exporting over and over; `close` writes the one snapshot the measurement then opens.
 */
async function build(dir: string, mb: number): Promise<Built> {
	const t0 = nowMs();
	const rand = prng(mb);
	let clock = Date.UTC(2026, 0, 1);
	const now = (): number => (clock += 7);
	const store = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench-build', foldJournalBytes: 2 ** 40 });
	const sessions = new SessionsRepo(store, now);
	let chatId = '';
	let s = 0;
	let rows: Built['rows'];
	try {
		while (dbBytes(store) < mb * MiB) {
			const session = sessions.create({ title: `Session ${s++}: ${prose(rand, 30)}`, baseRef: 'main', repoRoot: '/home/dev/project' });
			for (const agent of agents) {
				chatId = sessions.createChat({ sessionId: session.id, agent }).id;
				for (let batch = 0; batch < 3 && dbBytes(store) < mb * MiB; batch++) {
					store.write((tx) => {
						for (let t = 0; t < turnsPerBatch; t++) {
							const turnId = newId('turn');
							const started = now();
							const seq = batch * turnsPerBatch + t + 1;
							tx.run(insertTurnSql, [turnId, chatId, agent, seq, prose(rand, 40 + Math.floor(rand() * 160)), 'done', 'end_turn', 1000 + seq, 300 + seq, started, started + 5000]);
							for (let m = 0; m < messagesPerTurn; m++) {
								const kind = m === 0 ? 'user' : kinds[m % kinds.length]!;
								const at = now();
								tx.run(upsertMessageSql, [newId('msg'), turnId, m, kind, kind === 'tool_call' ? `call_${m}` : null, utf8(messageContent(rand, kind, m)), at, at]);
							}
						}
					});
				}
			}
		}
		const count = (table: string): number => store.get<{ n: number }>(`SELECT count(*) AS n FROM ${table}`)?.n ?? 0;
		rows = { sessions: count('sessions'), chats: count('chats'), turns: count('turns'), messages: count('messages') };
	} finally {
		await store.close();
	}
	return { mb, dir, buildMs: round(nowMs() - t0, 0), snapshotBytes: fs.statSync(path.join(dir, storeFiles.snapshot)).size, rows, chatId };
}

// --- the measured operations ------------------------------------------------------------------------

/** One small transaction, as a chat does per flush of streamed text: one ~300-byte message, its turn's counter. */
interface SmallWrite {
	message: SqlParam[];
	turn: SqlParam[];
}

function smallWrites(turnId: string, n: number, from: number): SmallWrite[] {
	const rand = prng(from + 7);
	const out: SmallWrite[] = [];
	for (let i = 0; i < n; i++) {
		const seq = from + i + 1;
		const at = Date.UTC(2026, 5, 1) + seq * 100;
		// ~300 bytes of content: {"text":"...","messageId":"..."}.
		const content = JSON.stringify({ text: prose(rand, 262), messageId: `bench-${seq}` });
		out.push({ message: [newId('msg'), turnId, seq, 'text', null, utf8(content), at, at], turn: [seq * 12, turnId] });
	}
	return out;
}

function runSmallWrite(run: (sql: string, params: SqlParam[]) => unknown, w: SmallWrite): void {
	run(upsertMessageSql, w.message);
	run(updateTurnSql, w.turn);
}

/** The journal record a small write produces (same statements, same parameter shapes, a realistic seq). */
function smallWriteRecordBytes(w: SmallWrite, seq: number): { bytes: number; record: JournalRecord } {
	const record: JournalRecord = { seq, stmts: [[upsertMessageSql, encodeParams(w.message)], [updateTurnSql, encodeParams(w.turn)]] };
	return { bytes: encodeRecord(record).length, record };
}

/** An append-only plain file that takes `bytes` per append and fdatasyncs each one, like the journal does. */
class FloorFile {
	private readonly fd: number;
	private position = 0;
	private readonly buffer: Buffer;

	constructor(file: string, bytes: number) {
		this.fd = fs.openSync(file, 'w');
		// JSON-like printable bytes; the content does not matter to the disk, the count does.
		this.buffer = Buffer.from(prose(prng(bytes), bytes), 'utf8');
	}

	append(): number {
		const t0 = nowMs();
		let written = 0;
		while (written < this.buffer.length) {
			written += fs.writeSync(this.fd, this.buffer, written, this.buffer.length - written, this.position + written);
		}
		fs.fdatasyncSync(this.fd);
		this.position += this.buffer.length;
		return nowMs() - t0;
	}

	close(): void {
		fs.closeSync(this.fd);
	}
}

/**
 * The same append+fdatasync done the way the durability contract asks (off the host thread): posted to a
 * worker thread that appends and syncs, then answers. Not the target's floor, a second reference: what the
 * two thread hops alone add on this machine, with no SQL and no store around them.
 */
class OffThreadFloorFile {
	private readonly worker: Worker;
	private readonly payload: string;
	private answered: (() => void) | undefined;

	constructor(file: string, bytes: number) {
		this.worker = new Worker(
			`const { parentPort, workerData } = require('node:worker_threads');
			const fs = require('node:fs');
			const fd = fs.openSync(workerData.file, 'w');
			let position = 0;
			parentPort.on('message', (m) => {
				if (m === 'close') { fs.closeSync(fd); parentPort.close(); return; }
				const bytes = Buffer.from(m, 'utf8');
				let written = 0;
				while (written < bytes.length) written += fs.writeSync(fd, bytes, written, bytes.length - written, position + written);
				fs.fdatasyncSync(fd);
				position += bytes.length;
				parentPort.postMessage('durable');
			});`,
			{ eval: true, workerData: { file } },
		);
		this.worker.on('message', () => this.answered?.());
		this.payload = prose(prng(bytes), bytes);
	}

	async append(): Promise<number> {
		const t0 = nowMs();
		const done = new Promise<void>((resolve) => (this.answered = resolve));
		this.worker.postMessage(this.payload);
		await done;
		return nowMs() - t0;
	}

	async close(): Promise<void> {
		this.worker.postMessage('close');
		await new Promise((resolve) => this.worker.once('exit', resolve));
	}
}

const warmupWrites = 20;

interface Size {
	built: Built;
	store: Store;
	writes: SmallWrite[];
	next: number;
	floor: FloorFile;
	offThreadFloor: OffThreadFloorFile;
	offThreadFloorLat: number[];
	recordBytes: number;
	storeLat: number[];
	floorLat: number[];
}

/** One write at a time, each timed from write() until durable() resolves: what an acknowledgement costs. */
async function storeBlock(s: Size, n: number): Promise<void> {
	for (let i = 0; i < n; i++) {
		const w = s.writes[s.next++]!;
		const t0 = nowMs();
		s.store.write((tx: WriteTx) => runSmallWrite((sql, p) => tx.run(sql, p), w));
		await s.store.durable();
		s.storeLat.push(nowMs() - t0);
	}
}

function floorBlock(s: Size, n: number): void {
	for (let i = 0; i < n; i++) {
		s.floorLat.push(s.floor.append());
	}
}

async function offThreadFloorBlock(s: Size, n: number): Promise<void> {
	for (let i = 0; i < n; i++) {
		s.offThreadFloorLat.push(await s.offThreadFloor.append());
	}
}

/** p99 of the odd blocks over p99 of the even blocks of one series: the noise between two p99s of the same thing. */
function oddOverEvenBlocksP99(values: number[], block: number): number {
	const half = (parity: number): number[] => values.filter((_, i) => Math.floor(i / block) % 2 === parity);
	return round(percentile(half(1), 99) / percentile(half(0), 99), 2);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Copies a state folder's files (not its lock), as a crash would leave them. */
function copyAsCrashed(from: string, to: string): void {
	fs.mkdirSync(to, { recursive: true });
	for (const name of fs.readdirSync(from)) {
		if (name !== storeFiles.lock && name !== 'floor.bin') {
			fs.copyFileSync(path.join(from, name), path.join(to, name));
		}
	}
}

async function plainLoadMs(file: string): Promise<number> {
	const SQL = await loadSqlJs(wasmPath);
	const t0 = nowMs();
	const db = plainLoad(SQL, file);
	const ms = nowMs() - t0;
	db.close();
	return ms;
}

/** Store.open and a plain load of the same snapshot, alternated; medians and their ratio. */
async function measureOpen(dir: string, runs: number): Promise<{ openMs: number; plainLoadMs: number; ratio: number; replayedRecords: number }> {
	const open: number[] = [];
	const plain: number[] = [];
	let replayed = 0;
	for (let i = 0; i < runs; i++) {
		globalThis.gc?.();
		plain.push(await plainLoadMs(path.join(dir, storeFiles.snapshot)));
		globalThis.gc?.();
		const t0 = nowMs();
		const store = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench' });
		open.push(nowMs() - t0);
		replayed = Math.max(replayed, store.recovery.replayedRecords);
		await store.close();
	}
	const openMs = percentile(open, 50);
	const plainMs = percentile(plain, 50);
	return { openMs: round(openMs, 1), plainLoadMs: round(plainMs, 1), ratio: round(openMs / plainMs, 2), replayedRecords: replayed };
}

/** Milliseconds of one open in a fresh process (`openChild.ts`). */
function coldOpenMs(mode: 'plain' | 'store', dir: string): number {
	const out = execFileSync(process.execPath, [path.join(__dirname, 'openChild.js'), mode, dir, wasmPath], { encoding: 'utf8' });
	return Number(out);
}

/**
 * Store.open and a plain load, each in a fresh process, alternated: what a window's start pays, once. In
 * one long-lived process the plain load's buffer lands in memory the allocator already has from the run
 * before (below glibc's 32 MB threshold for a fresh mapping), while a window reads its file into fresh
 * memory; at 20 MB that alone moved the plain load from about 40 ms to 8.
 */
function measureColdOpen(dir: string, runs: number): { openMs: number; plainLoadMs: number; ratio: number; open: number[]; plain: number[] } {
	const open: number[] = [];
	const plain: number[] = [];
	for (let i = 0; i < runs; i++) {
		plain.push(coldOpenMs('plain', dir));
		open.push(coldOpenMs('store', dir));
	}
	const openMs = percentile(open, 50);
	const plainMs = percentile(plain, 50);
	return { openMs: round(openMs, 1), plainLoadMs: round(plainMs, 1), ratio: round(openMs / plainMs, 2), open: open.map((v) => round(v, 1)), plain: plain.map((v) => round(v, 1)) };
}

export interface StoreSizeResult {
	sizeMb: number;
	snapshotMb: number;
	rows: Built['rows'];
	buildMs: number;
	recordBytes: number;
	write: {
		store: ReturnType<typeof summary>;
		floor: ReturnType<typeof summary>;
		p99OverFloorP99: number;
		p50OverFloorP50: number;
		floorNoiseP99OddOverEven: number;
		offThreadFloor: ReturnType<typeof summary>;
		p99OverOffThreadFloorP99: number;
	};
	fold: { ms: number; longestStallMs: number; longestStall: Stall; idleLongestStallMs: number; oldFoldStallMs: number };
	open: Awaited<ReturnType<typeof measureOpen>>;
	openCold: ReturnType<typeof measureColdOpen>;
	openAfterCrash: Awaited<ReturnType<typeof measureOpen>> & { journalMb: number };
}

export async function runStoreBench(): Promise<Record<string, unknown>> {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-bench-store-'));
	const results: StoreSizeResult[] = [];
	try {
		for (const mb of config.sizesMb) {
			log(`store: building ${mb} MB`);
			const dir = path.join(root, `db-${mb}mb`);
			const built = await build(dir, mb);

			log(`store: open ${mb} MB against a plain sql.js load, ${config.opens} runs each`);
			const open = await measureOpen(dir, config.opens);
			log(`store: open ${mb} MB against a plain sql.js load, each in a fresh process, ${config.coldOpens} runs each`);
			const openCold = measureColdOpen(dir, config.coldOpens);

			// Writes, interleaved block by block with the floor so drift on this shared machine lands on both.
			const store = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench', foldJournalBytes: 2 ** 40 });
			const turnId = new TranscriptRepo(store).startTurn({ chatId: built.chatId, agent: 'claude', prompt: 'bench: stream a long answer' }).id;
			await store.durable();
			const rounds = Math.ceil(config.writes / config.block);
			const writes = smallWrites(turnId, warmupWrites + rounds * config.block, 0);
			const mid = writes[Math.floor(writes.length / 2)]!;
			const { bytes: recordBytes } = smallWriteRecordBytes(mid, store.lastSeq + Math.floor(writes.length / 2));
			const s: Size = { built, store, writes, next: 0, floor: new FloorFile(path.join(dir, 'floor.bin'), recordBytes), offThreadFloor: new OffThreadFloorFile(path.join(dir, 'floor-off-thread.bin'), recordBytes), offThreadFloorLat: [], recordBytes, storeLat: [], floorLat: [] };
			log(`store: ${rounds * config.block} writes at ${mb} MB, interleaved with the floor`);
			await storeBlock(s, warmupWrites);
			floorBlock(s, warmupWrites);
			await offThreadFloorBlock(s, warmupWrites);
			s.storeLat = [];
			s.floorLat = [];
			s.offThreadFloorLat = [];
			globalThis.gc?.();
			for (let r = 0; r < rounds; r++) {
				floorBlock(s, config.block);
				await storeBlock(s, config.block);
				await offThreadFloorBlock(s, config.block);
			}
			floorBlock(s, config.block);
			s.floor.close();
			await s.offThreadFloor.close();

			// A crash now: the journal holds every measured write. Open of that copy replays them.
			const crashed = path.join(root, `crashed-${mb}mb`);
			copyAsCrashed(dir, crashed);
			const journalMb = fs.readdirSync(crashed).filter((n) => n.startsWith(storeFiles.journalPrefix)).reduce((a, n) => a + fs.statSync(path.join(crashed, n)).size, 0) / MiB;

			// The fold, with the event loop watched; then the same watch over the same time with nothing running.
			log(`store: fold at ${mb} MB`);
			globalThis.gc?.();
			const watch = stallWatch();
			const f0 = nowMs();
			await store.foldJournal();
			const foldMs = nowMs() - f0;
			const longestStall = watch.stop();
			const longestStallMs = longestStall.ms;
			const idle = stallWatch();
			await sleep(foldMs);
			const idleLongestStallMs = idle.stop().ms;
			await store.close();

			// What the old fold stalled: db.export() of this database on this thread.
			const SQL = await loadSqlJs(wasmPath);
			const bytes = fs.readFileSync(path.join(dir, storeFiles.snapshot));
			const db = new SQL.Database(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.length));
			const e0 = nowMs();
			db.export();
			const oldFoldStallMs = nowMs() - e0;
			db.close();

			log(`store: open after a crash at ${mb} MB (replays ${rounds * config.block + warmupWrites + 1} writes)`);
			// Each run opens a fresh copy: an open folds what it replayed, so the copy is used up.
			const replayRuns: Awaited<ReturnType<typeof measureOpen>>[] = [];
			for (let i = 0; i < Math.min(3, config.opens); i++) {
				const copy = path.join(root, `crashed-${mb}mb-${i}`);
				copyAsCrashed(crashed, copy);
				replayRuns.push(await measureOpen(copy, 1));
				fs.rmSync(copy, { recursive: true, force: true });
			}
			fs.rmSync(crashed, { recursive: true, force: true });
			const mid2 = (k: 'openMs' | 'plainLoadMs'): number => round(percentile(replayRuns.map((r) => r[k]), 50), 1);
			const openAfterCrash = { openMs: mid2('openMs'), plainLoadMs: mid2('plainLoadMs'), ratio: round(mid2('openMs') / mid2('plainLoadMs'), 2), replayedRecords: replayRuns[0]!.replayedRecords, journalMb: round(journalMb, 2) };

			const st = summary(s.storeLat);
			const fl = summary(s.floorLat);
			const oft = summary(s.offThreadFloorLat);
			results.push({
				sizeMb: mb,
				snapshotMb: round(built.snapshotBytes / MiB, 1),
				rows: built.rows,
				buildMs: built.buildMs,
				recordBytes,
				write: {
					store: st,
					floor: fl,
					p99OverFloorP99: round(st.p99 / fl.p99, 2),
					p50OverFloorP50: round(st.p50 / fl.p50, 2),
					floorNoiseP99OddOverEven: oddOverEvenBlocksP99(s.floorLat, config.block),
					offThreadFloor: oft,
					p99OverOffThreadFloorP99: round(st.p99 / oft.p99, 2),
				},
				fold: { ms: round(foldMs, 1), longestStallMs: round(longestStallMs, 2), longestStall: { ...longestStall, ms: round(longestStall.ms, 2) }, idleLongestStallMs: round(idleLongestStallMs, 2), oldFoldStallMs: round(oldFoldStallMs, 1) },
				open,
				openCold,
				openAfterCrash,
			});
			fs.rmSync(dir, { recursive: true, force: true });
		}
		const largest = results[results.length - 1]!;
		const met = {
			writeP99Within3xFloor: Object.fromEntries(results.map((r) => [`${r.sizeMb}MB`, r.write.p99OverFloorP99 <= targets.writeP99OverFloorP99])),
			foldLongestStallUnder16ms: largest.fold.longestStallMs < targets.foldLongestStallMs,
			openWithin1_5xPlainLoad: Object.fromEntries(results.map((r) => [`${r.sizeMb}MB`, r.open.ratio <= targets.openOverPlainLoad])),
			openColdWithin1_5xPlainLoad: Object.fromEntries(results.map((r) => [`${r.sizeMb}MB`, r.openCold.ratio <= targets.openOverPlainLoad])),
		};
		return {
			config,
			targets,
			met,
			sizes: results,
			notes: [
				'Times in ms. write = Store.write of one small transaction until durable() resolves (the journal worker appended and fdatasynced it); floor = the same bytes appended to a plain file + fdatasync on this thread; offThreadFloor = the same append + fdatasync posted to a bare worker thread that answers when done (the two thread hops the contract asks for, nothing else).',
				'fold = store.foldJournal() with the measured writes in the journal; longestStallMs = the longest the host event loop could not run (1 ms timer chain), and in longestStall (Linux) how much of that gap the host thread ran (hostRanMs) and waited for a CPU (waitedForCpuMs); idleLongestStallMs = the same watch over the same time with nothing running; oldFoldStallMs = db.export() of the same database on the host thread, which the old fold did.',
				'open = Store.open + nothing else; plainLoadMs = readFileSync + new SQL.Database(the Buffer) of the same snapshot, as sql.js documents it; both with the file in the OS page cache, alternated in this process. openCold = the same two, each in a fresh process (sql.js loaded before the clock starts), as a window start pays it. openAfterCrash opens a copy of the folder taken before the fold (its journal holds the measured writes).',
			],
		};
	} finally {
		fs.rmSync(root, { recursive: true, force: true });
	}
}
