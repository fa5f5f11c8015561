/**
 * The store's worker threads, so the extension host never waits on the disk while agents stream.
 *
 * - `journal`: appends the records the host posts, group-committing whatever arrived while the previous
 *   fdatasync ran (one write and one fdatasync per batch), and reports `durable` up to a sequence number.
 *   Past `foldJournalBytes` (or when asked) it starts a new journal file at the next write and reports
 *   `rotated`, so every older file is complete and can be folded.
 * - `fold`: started at the first fold and kept (idle, it holds no database). Per fold it loads the snapshot into its own sql.js, replays the complete journals up to
 *   `upTo`, exports, writes the new snapshot (temp file, fsync, rename) and removes the folded journals.
 *   sql.js cannot share a database across threads, so the worker rebuilds it from the files instead: the
 *   host pays nothing for the O(size) export, and no second copy of the database stays in memory between folds.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage } from '../common/log';
import { JournalWriter, frameRecords, journalHeader, readJournal } from './journal';
import { applyConnectionPragmas, exportSnapshot, replay, journalPath, journalStart, listJournals, readSnapshotSeq, storeFiles } from './snapshot';
import { loadSqlJs, openDatabaseInPlace } from './sqlJs';

/** Sent as the journal worker's first message (it starts while the host still loads the database). */
export interface JournalInit {
	type: 'init';
	dir: string;
	/** The journal file to create and append to (the next write's number; open checked that none is there). */
	file: string;
	/** A journal whose torn tail open dropped: cut back (durably) before anything new is written. */
	truncate?: { file: string; length: number };
	/** Sequence number of the last write already in the folder's files. */
	seq: number;
	foldJournalBytes: number;
}

export interface FoldWorkerData {
	role: 'fold';
	dir: string;
	wasmPath: string;
}

/** Fold every write up to `upTo`; the journals holding them are complete (rotated away). */
export interface ToFold {
	type: 'fold';
	upTo: number;
}

export type ToJournal = JournalInit | { type: 'append'; seq: number; json: string } | { type: 'rotate' } | { type: 'close' };

export type FromJournal =
	| { type: 'durable'; seq: number; bytes: number }
	| { type: 'rotated'; upTo: number; bytes: number }
	/** The system's message and error code (`ENOSPC`, `EFBIG`…), so the host can say it in plain words. */
	| { type: 'failed'; message: string; code?: string; file?: string }
	| { type: 'ready' }
	| { type: 'closed' };

export type FromFold = { type: 'folded'; seq: number; ms: { load: number; replay: number; exportAndWrite: number } } | { type: 'failed'; message: string };

function runJournal(data: JournalInit): void {
	const port = parentPort!;
	const post = (m: FromJournal): void => port.postMessage(m);
	if (data.truncate) {
		truncateDurably(data.truncate.file, data.truncate.length);
	}
	let writer = JournalWriter.create(data.file);
	post({ type: 'ready' });
	let durable = data.seq;
	let queue: { seq: number; json: string }[] = [];
	let scheduled = false;
	let rotateAsked = false;
	let closeAsked = false;
	let failed = false;

	const fail = (e: unknown): void => {
		failed = true;
		queue = [];
		post(journalFailure(e, writer.file));
	};

	const rotate = (): void => {
		if (writer.bytes > journalHeader.length) {
			const next = JournalWriter.create(journalPath(data.dir, durable + 1));
			writer.close();
			writer = next;
		}
		post({ type: 'rotated', upTo: durable, bytes: writer.bytes });
	};

	const flush = (): void => {
		scheduled = false;
		try {
			if (failed) {
				// Nothing more is written once an append failed: the host has been told, and its writes fail.
			} else if (queue.length > 0) {
				const batch = queue;
				queue = [];
				writer.append(frameRecords(batch.map((r) => r.json)));
				durable = batch[batch.length - 1]!.seq;
				post({ type: 'durable', seq: durable, bytes: writer.bytes });
			}
			if (!failed && (rotateAsked || writer.bytes >= data.foldJournalBytes)) {
				rotateAsked = false;
				rotate();
			}
		} catch (e) {
			fail(e);
		}
		if (closeAsked) {
			writer.close();
			post({ type: 'closed' });
			port.close();
		}
	};

	// setImmediate runs after every message already waiting has been delivered: that batch is one commit.
	const schedule = (): void => {
		if (!scheduled) {
			scheduled = true;
			setImmediate(flush);
		}
	};

	port.on('message', (m: ToJournal) => {
		switch (m.type) {
			case 'init':
				break;
			case 'append':
				if (!failed) {
					queue.push(m);
				}
				break;
			case 'rotate':
				rotateAsked = true;
				break;
			case 'close':
				closeAsked = true;
				break;
		}
		schedule();
	});
}

/** A journal failure as a message: an Error's own properties (its code) do not cross the thread. */
function journalFailure(e: unknown, file: string): FromJournal {
	const code = (e as NodeJS.ErrnoException | undefined)?.code;
	return { type: 'failed', message: errorMessage(e), file, ...(typeof code === 'string' ? { code } : {}) };
}

function runFolds(data: FoldWorkerData): void {
	const port = parentPort!;
	try {
		// On Linux the nice value is per thread and 0 means this one: a fold yields the CPU to the extension
		// host's thread (and the journal worker) on a busy machine. Elsewhere this may affect the process or fail.
		if (process.platform === 'linux') {
			os.setPriority(0, 19);
		}
	} catch {
		// Not allowed here: folds run at normal priority.
	}
	// One fold at a time, in the order asked.
	let queue = Promise.resolve();
	port.on('message', (m: ToFold) => {
		queue = queue.then(() => fold(data, m.upTo, (r) => port.postMessage(r)));
	});
}

/** Cuts a journal back to its last whole record (a torn tail was never acknowledged) so later journals can follow it. */
function truncateDurably(file: string, length: number): void {
	let fd: number;
	try {
		fd = fs.openSync(file, 'r+');
	} catch (e) {
		if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
			return; // already folded into the snapshot and removed
		}
		throw e;
	}
	try {
		fs.ftruncateSync(fd, length);
		fs.fsyncSync(fd);
	} finally {
		fs.closeSync(fd);
	}
}

async function fold(data: FoldWorkerData, upTo: number, post: (m: FromFold) => void): Promise<void> {
	try {
		const t0 = performance.now();
		const SQL = await loadSqlJs(data.wasmPath);
		const bytes = fs.readFileSync(path.join(data.dir, storeFiles.snapshot));
		const db = openDatabaseInPlace(SQL, bytes);
		try {
			applyConnectionPragmas(db);
			let seq = readSnapshotSeq(db);
			const t1 = performance.now();
			const journals = listJournals(data.dir).filter((f) => journalStart(f) <= upTo);
			replay(db, (applyRecord) => {
				for (const file of journals) {
					for (const record of readJournal(file).records) {
						if (record.seq <= seq || record.seq > upTo) {
							continue;
						}
						if (record.seq !== seq + 1) {
							throw new Error(`${path.basename(file)} is missing writes ${seq + 1} to ${record.seq - 1}`);
						}
						applyRecord(record);
						seq = record.seq;
					}
				}
			});
			if (seq < upTo) {
				throw new Error(`the journals end at write ${seq}, before ${upTo}`);
			}
			const t2 = performance.now();
			exportSnapshot(db, data.dir, seq);
			const t3 = performance.now();
			// A journal is folded when the next one starts at or before the write after the fold.
			const all = listJournals(data.dir);
			for (let i = 0; i + 1 < all.length; i++) {
				if (journalStart(all[i + 1]!) <= seq + 1) {
					fs.rmSync(all[i]!, { force: true });
				}
			}
			post({ type: 'folded', seq, ms: { load: t1 - t0, replay: t2 - t1, exportAndWrite: t3 - t2 } });
		} finally {
			db.close();
		}
	} catch (e) {
		post({ type: 'failed', message: errorMessage(e) });
	}
}

const data = workerData as { role: 'journal' } | FoldWorkerData | undefined;
if (parentPort && data?.role === 'journal') {
	parentPort.once('message', (m: ToJournal) => {
		if (m.type === 'init') {
			try {
				runJournal(m);
			} catch (e) {
				parentPort!.postMessage(journalFailure(e, m.file) satisfies FromJournal);
			}
		}
	});
} else if (parentPort && data?.role === 'fold') {
	runFolds(data);
}
