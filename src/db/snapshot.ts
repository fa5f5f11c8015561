import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Database } from 'sql.js';
import { crc32 } from './crc32';
import { decodeParams, fsyncDir, type JournalRecord } from './journal';
import { StatementCache } from './rows';

/**
 * The files of a state folder and the steps shared by `Store.open` (host thread) and the fold worker
 * (`storeWorker.ts`): listing journals, replaying records, writing a snapshot with its checksum.
 */

/** File names inside a state folder. */
export const storeFiles = {
	snapshot: 'agent-tabs.sqlite',
	/** `{"size":n,"crc32":c}` of the snapshot as written; lets open skip `PRAGMA quick_check` on an intact file. */
	snapshotSum: 'agent-tabs.sqlite.sum',
	lock: 'agent-tabs.lock',
	journalPrefix: 'agent-tabs.journal.',
	/** Present from the moment a damaged file is moved aside until what git knows has been rebuilt. */
	rebuildNeeded: 'agent-tabs.rebuild-needed',
} as const;

/** A damaged database or journal: what was kept aside, and why. */
export interface DamageReport {
	/** Full paths of the files kept aside. */
	keptAs: string[];
	problems: string[];
}

/** The rebuild still owed after a damaged file was moved aside (`storeFiles.rebuildNeeded`), or null. */
export function readDamageMarker(dir: string): DamageReport | null {
	const file = path.join(dir, storeFiles.rebuildNeeded);
	if (!fs.existsSync(file)) {
		return null;
	}
	try {
		const parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as Partial<DamageReport>;
		return { keptAs: Array.isArray(parsed.keptAs) ? parsed.keptAs.map(String) : [], problems: Array.isArray(parsed.problems) ? parsed.problems.map(String) : [] };
	} catch {
		// Torn by a crash while it was written: the rebuild is still owed, the details are in the .bad-* files.
		return { keptAs: [], problems: [`An earlier start found damaged state files (see the *.bad-* files in ${dir}).`] };
	}
}

/** Writes and fsyncs the marker (file and folder), before the damaged file it describes is moved aside. */
export function writeDamageMarker(dir: string, report: DamageReport): void {
	const file = path.join(dir, storeFiles.rebuildNeeded);
	const fd = fs.openSync(file, 'w');
	try {
		fs.writeSync(fd, JSON.stringify(report));
		fs.fsyncSync(fd);
	} finally {
		fs.closeSync(fd);
	}
	fsyncDir(dir);
}

const sqliteMagic = 'SQLite format 3\0';
const sqliteHeaderBytes = 100;

/**
 * The file size an SQLite header promises (page size times page count), when the header's page count is
 * valid (its "version-valid-for" number matches the change counter, as in every file SQLite wrote itself).
 */
function sqliteSizeFromHeader(bytes: Uint8Array): number | undefined {
	const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
	const rawPageSize = view.getUint16(16);
	const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
	const pages = view.getUint32(28);
	if (pages === 0 || view.getUint32(92) !== view.getUint32(24)) {
		return undefined;
	}
	return pageSize * pages;
}

/**
 * What is wrong with a snapshot file's shape, or undefined when it looks whole. Every snapshot we write is a
 * whole database; SQLite would take an empty or cut-off-header file for a new empty database (every session
 * would vanish without a word), and reads a cut-off file without complaint as long as the pages it needs are
 * there. Checked before anything else, the checksum shortcut included.
 */
export function snapshotShapeProblem(bytes: Uint8Array): string | undefined {
	if (bytes.length < sqliteHeaderBytes || Buffer.from(bytes.buffer, bytes.byteOffset, sqliteMagic.length).toString('latin1') !== sqliteMagic) {
		return bytes.length === 0 ? 'the file is empty' : `the file does not start with an SQLite header (${bytes.length} bytes)`;
	}
	const expectedBytes = sqliteSizeFromHeader(bytes);
	if (expectedBytes !== undefined && expectedBytes !== bytes.length) {
		return `the file has ${bytes.length} bytes where its header says ${expectedBytes}: it was cut short or overwritten`;
	}
	return undefined;
}

export function journalPath(dir: string, startSeq: number): string {
	return path.join(dir, `${storeFiles.journalPrefix}${String(startSeq).padStart(12, '0')}`);
}

export function journalStart(file: string): number {
	return Number(path.basename(file).slice(storeFiles.journalPrefix.length));
}

/** The journal files of a folder, oldest first. */
export function listJournals(dir: string): string[] {
	return fs
		.readdirSync(dir)
		.filter((n) => n.startsWith(storeFiles.journalPrefix) && /^\d+$/.test(n.slice(storeFiles.journalPrefix.length)))
		.map((n) => path.join(dir, n))
		.sort((a, b) => journalStart(a) - journalStart(b));
}

/**
 * Connection settings. Durability comes from our journal, not from SQLite's: the database lives in sql.js's
 * in-memory file system, so SQLite's own rollback journal can stay in memory, its syncs are no-ops anyway,
 * and a large page cache keeps a big database from being re-read page by page. The one connection holds its
 * lock for good (`locking_mode = EXCLUSIVE`): otherwise every transaction looks for a hot journal and
 * rereads the file's change counter through sql.js's JavaScript file system, a third of a small write's cost.
 */
export function applyConnectionPragmas(db: Database): void {
	db.exec('PRAGMA foreign_keys = ON; PRAGMA locking_mode = EXCLUSIVE; PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536;');
}

export function ensureMetaTable(db: Database): void {
	db.exec('CREATE TABLE IF NOT EXISTS _store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
}

export function readSnapshotSeq(db: Database): number {
	try {
		const r = db.exec("SELECT value FROM _store_meta WHERE key = 'journal_seq'");
		const v = r[0]?.values[0]?.[0];
		return v === undefined ? 0 : Number(v);
	} catch {
		return 0;
	}
}

/** Records which journal write the snapshot contains. Not journaled itself: it describes the snapshot. */
export function setSnapshotSeq(db: Database, seq: number): void {
	ensureMetaTable(db);
	db.run("INSERT INTO _store_meta (key, value) VALUES ('journal_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [String(seq)]);
}

/**
 * Replays journal records into a database in one transaction (sql.js commits cost about a millisecond
 * each, so a replay commits once, not once per record), with every statement prepared once: a journal
 * repeats the same few statements thousands of times. A record that fails leaves no trace: records are
 * applied without a savepoint each (which would double the cost of a replay), and when one throws the
 * transaction is rolled back and the records applied before it are applied again (statements are
 * deterministic), then the error is thrown for `fn` to handle.
 */
export function replay<T>(db: Database, fn: (apply: (record: JournalRecord) => void) => T): T {
	const statements = new StatementCache(db);
	const run = (record: JournalRecord): void => {
		for (const [sql, params] of record.stmts) {
			statements.run(sql, decodeParams(params));
		}
	};
	const applied: JournalRecord[] = [];
	const apply = (record: JournalRecord): void => {
		try {
			run(record);
		} catch (e) {
			try {
				db.exec('ROLLBACK');
			} catch {
				// SQLite already rolled the transaction back (it does on some errors, such as a full disk).
			}
			db.exec('BEGIN');
			for (const earlier of applied) {
				run(earlier);
			}
			throw e;
		}
		applied.push(record);
	};
	db.exec('BEGIN');
	try {
		return fn(apply);
	} finally {
		// What applied is kept, also when `fn` stopped early at a record that does not apply.
		statements.clear();
		db.exec('COMMIT');
	}
}

/** A snapshot file's bytes and their CRC-32. */
export interface SnapshotRead {
	bytes: Buffer;
	crc: number;
	/**
	 * The bytes followed by zeroes (`growthRoom`), to load into sql.js: its in-memory file is exactly as
	 * large as the array it is given and is copied whole into a new one the first time a write makes it
	 * grow, a stall of 100 to 200 ms on the host at 100 MB. A database larger than its header says is
	 * fine to SQLite (it goes by the header), and its export is exact. Absent: load `bytes`.
	 */
	withGrowthRoom?: Buffer;
}

/** Room to grow that the store's in-memory file gets on open: an eighth of the file, at least 64 KB. */
export function growthRoom(size: number): number {
	return Math.max(64 * 1024, Math.ceil(size / 8));
}

/** Bytes read per slice by `readSnapshotFile`. */
const readSliceBytes = 4 * 1024 * 1024;

/**
 * Slices `readSnapshotFile` reads at a time: two keep both cores of a small machine busy (as fast as
 * reading them all at once, measured), and leave the rest of the thread pool to the rest of the process.
 */
const parallelReads = 2;

/** Reads `length` bytes at `position` into `into` at `offset`, on the thread pool; resolves to the bytes read. */
function readAt(fd: number, into: Buffer, offset: number, length: number, position: number): Promise<number> {
	return new Promise((resolve, reject) => fs.read(fd, into, offset, length, position, (e, bytesRead) => (e ? reject(e) : resolve(bytesRead))));
}

/** Reads until `length` bytes are in or the file ends (a read may return fewer bytes than asked); resolves to the bytes read. */
async function readFullyAt(fd: number, into: Buffer, offset: number, length: number): Promise<number> {
	let done = 0;
	for (let n = -1; n !== 0 && done < length; done += n) {
		n = await readAt(fd, into, offset + done, length - done, offset + done);
	}
	return done;
}

/**
 * Reads a snapshot file with room to grow after it (`growthRoom`) and its checksum. A file larger than one
 * slice is read on the thread pool, two slices at a time, and each slice is checksummed on this thread as
 * soon as it and the ones before it are in: the reads (page faults, mostly) run on both cores, and the
 * checksum costs next to nothing beyond them, so this is faster than one `readFileSync` of the file. A small
 * file is read at once. Undefined when there is no file.
 */
export async function readSnapshotFile(file: string): Promise<SnapshotRead | undefined> {
	let fd: number;
	try {
		fd = fs.openSync(file, 'r');
	} catch (e) {
		if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
			return undefined;
		}
		throw e;
	}
	const slices: Promise<number>[] = [];
	try {
		const size = fs.fstatSync(fd).size;
		// Not zeroed but for the room to grow: zeroing the whole buffer costs a memset where the allocator
		// hands back memory it had.
		const padded = Buffer.allocUnsafe(size + growthRoom(size)).fill(0, size);
		const bytes = padded.subarray(0, size);
		let done = 0;
		let crc = 0;
		if (size <= readSliceBytes) {
			for (let n = -1; n !== 0 && done < size; done += n) {
				n = fs.readSync(fd, bytes, done, size - done, done);
			}
			crc = crc32(bytes.subarray(0, done));
		} else {
			for (let offset = 0, k = 0; offset < size; offset += readSliceBytes, k++) {
				const read = (): Promise<number> => readFullyAt(fd, bytes, offset, Math.min(readSliceBytes, size - offset));
				// A slice starts when the one `parallelReads` before it is in: that many reads at a time.
				const slice = k < parallelReads ? read() : slices[k - parallelReads]!.then(read);
				// A slice that fails while an earlier one is awaited is not an unhandled rejection: it is
				// thrown when the loop below reaches it.
				slice.catch(() => undefined);
				slices.push(slice);
			}
			for (const slice of slices) {
				const start = done;
				const bytesRead = await slice;
				crc = crc32(bytes.subarray(start, start + bytesRead), crc);
				done = start + bytesRead;
				if (bytesRead < Math.min(readSliceBytes, size - start)) {
					break; // the file is shorter than it was a moment ago: what was read up to here is all there is
				}
			}
		}
		return done === size ? { bytes, crc, withGrowthRoom: padded } : { bytes: bytes.subarray(0, done), crc };
	} finally {
		// The descriptor stays open until every read on it has finished (also after a failed one).
		await Promise.allSettled(slices);
		fs.closeSync(fd);
	}
}

/** Whether a snapshot is exactly the one the store last wrote (its size and checksum match the sum file). */
export function snapshotMatchesSum(dir: string, snapshot: SnapshotRead): boolean {
	try {
		const sum = JSON.parse(fs.readFileSync(path.join(dir, storeFiles.snapshotSum), 'utf8')) as { size?: unknown; crc32?: unknown };
		return sum.size === snapshot.bytes.length && sum.crc32 === snapshot.crc;
	} catch {
		return false;
	}
}

/** Writes the sum file for a snapshot (temp file and rename; losing it only costs the next open a quick_check). */
export function writeSnapshotSum(dir: string, bytes: Uint8Array): void {
	const target = path.join(dir, storeFiles.snapshotSum);
	const tmp = `${target}.tmp-${process.pid}`;
	fs.writeFileSync(tmp, JSON.stringify({ size: bytes.length, crc32: crc32(bytes) }));
	fs.renameSync(tmp, target);
}

/**
 * Replaces the snapshot with `bytes`: temp file, fsync, rename, then the sum file, then fsync the folder.
 * A crash at any point leaves the old snapshot or the new one, never a mix (a stale sum only means the next
 * open runs the full quick_check).
 */
export function writeSnapshotFileSync(dir: string, bytes: Uint8Array): void {
	const target = path.join(dir, storeFiles.snapshot);
	const tmp = `${target}.tmp-${process.pid}`;
	const fd = fs.openSync(tmp, 'w');
	try {
		try {
			let written = 0;
			while (written < bytes.length) {
				written += fs.writeSync(fd, bytes, written, bytes.length - written);
			}
			fs.fsyncSync(fd);
		} finally {
			fs.closeSync(fd);
		}
		fs.renameSync(tmp, target);
	} catch (e) {
		// A write the disk refused (full, a file size limit) leaves no partial copy taking up the room.
		fs.rmSync(tmp, { force: true });
		throw e;
	}
	writeSnapshotSum(dir, bytes);
	fsyncDir(dir);
}

/** Exports `db` as the snapshot of write `seq`. Export reopens the database, so the connection pragmas are set again. */
export function exportSnapshot(db: Database, dir: string, seq: number): void {
	setSnapshotSeq(db, seq);
	const exported = db.export();
	applyConnectionPragmas(db);
	// Exactly the database, never the zeroes of a store loaded with room to grow (a snapshot longer than
	// its header says would read as damaged).
	const size = sqliteSizeFromHeader(exported);
	writeSnapshotFileSync(dir, size !== undefined && size < exported.length ? exported.subarray(0, size) : exported);
}
