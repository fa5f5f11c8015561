import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Database, SqlJsStatic } from 'sql.js';
import { AgentTabsError } from '../common/errors';
import { Emitter, logListenerErrors, type Event } from '../common/event';
import { Disposable, toDisposable } from '../common/lifecycle';
import { errorMessage, nullLogger, type Logger } from '../common/log';
import { Worker } from 'node:worker_threads';
import { crc32 } from './crc32';
import { makeFolders } from './folders';
import { encodeParams, fsyncDir, recordJson, readJournal, type JournalRecord, type SqlParam } from './journal';
import { StoreLock } from './lock';
import { StatementCache } from './rows';
import { latestVersion, migrate, type MigrationOutcome } from './migrations';
import {
	applyConnectionPragmas,
	replay,
	ensureMetaTable,
	exportSnapshot,
	journalPath,
	journalStart,
	listJournals,
	readDamageMarker,
	readSnapshotFile,
	readSnapshotSeq,
	snapshotMatchesSum,
	snapshotShapeProblem,
	storeFiles,
	writeDamageMarker,
	writeSnapshotSum,
	type DamageReport,
	type SnapshotRead,
} from './snapshot';
import { loadSqlJs, openDatabaseInPlace } from './sqlJs';
import type { FoldWorkerData, FromFold, FromJournal, ToFold, ToJournal } from './storeWorker';

export type { SqlParam } from './journal';
export { storeFiles, type DamageReport } from './snapshot';

export interface StoreOptions {
	/** The state folder: the extension's storage folder, or the CLI's `--state`. Created if missing. */
	dir: string;
	/** Path of `sql-wasm.wasm`. */
	wasmPath: string;
	logger: Logger;
	/** Who is opening, for the lock message a second process sees ("VS Code window", "agent-tabs CLI"). */
	owner: string;
	/**
	 * Journal size in bytes past which a background fold writes it into the snapshot (default 4 MiB). It bounds
	 * what an open after a crash replays (about 4,800 streaming flushes: about a second at 100 MB, at 0.1 to
	 * 0.2 ms a record), against how often the fold thread spends about 13 ms per MB of database on a fold.
	 */
	foldJournalBytes?: number;
	/**
	 * A journal under this many records (default 500) and bytes (default 1 MiB) is left as it is on open and
	 * close rather than folded: replaying it costs the next open a few milliseconds, a fold a full export.
	 */
	smallJournalRecords?: number;
	smallJournalBytes?: number;
}

const defaultFoldJournalBytes = 4 * 1024 * 1024;

/** Options of `Store.openSnapshot`. */
export interface SnapshotOptions extends Omit<StoreOptions, 'owner' | 'foldJournalBytes'> {
	/**
	 * Called after the reader read the snapshot file and after it listed the journals: a test seam that lets
	 * a real writer fold at exactly that moment (the race `openSnapshot` must survive).
	 */
	afterRead?: (what: 'snapshot' | 'journalList') => void;
}

/** What one write changed, for listeners that only care about some tables. */
export interface StoreWriteEvent {
	/** Names of the tables the write's statements inserted into, updated or deleted from. */
	readonly tables: ReadonlySet<string>;
}

/** What opening the store had to repair; the extension tells the user about anything moved aside. */
export interface RecoveryReport {
	/** Files that could not be used and were renamed aside (kept, never deleted). */
	movedAside: string[];
	/** Plain-words descriptions of each problem, for the user. */
	problems: string[];
	/** Journal records replayed on open. */
	replayedRecords: number;
	/** Bytes of a torn (never acknowledged) journal tail that were dropped. */
	droppedTornBytes: number;
	migration: MigrationOutcome;
	/**
	 * Set while state may have been lost to a damaged file (this open, or an earlier one whose rebuild was
	 * cut short): the files kept aside and what was wrong with them. Whoever opened the store rebuilds what
	 * git still knows, tells the user loudly, then calls `Store.rebuildDone()`.
	 */
	damaged: DamageReport | null;
}

/** A statement runner inside one write transaction. */
export interface WriteTx {
	/** Runs a write statement; returns the number of rows it changed. */
	run(sql: string, params?: readonly SqlParam[]): number;
	all<T = Record<string, SqlValue>>(sql: string, params?: readonly SqlParam[]): T[];
	get<T = Record<string, SqlValue>>(sql: string, params?: readonly SqlParam[]): T | undefined;
}

export type SqlValue = string | number | null | Uint8Array;

/** The store cannot accept writes any more (its journal failed); reads still work. */
export class StoreFailedError extends AgentTabsError {
	constructor(message: string, options?: { cause?: unknown }) {
		super('store/failed', message, options);
	}
}

/** A snapshot opened for reading only (`Store.openSnapshot`) was asked to write. */
export class StoreReadOnlyError extends AgentTabsError {
	constructor() {
		super('store/readOnly', 'This state was opened read-only (another process may be writing it); it cannot be changed from here.');
	}
}

/** The state folder cannot be used: it is a file, cannot be created, or cannot be written. */
export class StoreFolderError extends AgentTabsError {
	constructor(code: string, message: string, options?: { cause?: unknown }) {
		super(code, message, options);
	}
}

/** Plain words for a file-system error on the state folder, or undefined when it is not one we can explain. */
function stateFolderProblem(dir: string, e: unknown): StoreFolderError | undefined {
	const code = (e as NodeJS.ErrnoException | undefined)?.code;
	switch (code) {
		case 'EEXIST':
		case 'ENOTDIR': {
			const file = firstFileOnPath(dir);
			return new StoreFolderError('store/notFolder', `The state folder ${dir} cannot be used: ${file ?? dir} is a file, not a folder. Pick a folder with --state (or AGENT_TABS_STATE).`, { cause: e });
		}
		case 'EACCES':
		case 'EPERM':
		case 'EROFS':
			return new StoreFolderError(
				'store/readOnlyFolder',
				`The state folder ${dir} cannot be written (${code === 'EROFS' ? 'read-only file system' : 'permission denied'}). Agent Tabs needs to write its database and lock file there: ` +
					'make it writable or pick another folder with --state (or AGENT_TABS_STATE). Commands that only read (sessions, chats, show, pending, session list) still work.',
				{ cause: e },
			);
		case 'ENOSPC':
		case 'EDQUOT':
			return new StoreFolderError('store/full', `The disk holding the state folder ${dir} is full; free some space and try again.`, { cause: e });
		case 'EFBIG':
			return new StoreFolderError('store/fileTooLarge', `The state folder ${dir} cannot be written: its database reached the largest size this process may write (see ulimit -f). Raise that limit and try again.`, { cause: e });
		default:
			return undefined;
	}
}

/** The first path on the way to `dir` (or `dir` itself) that exists and is not a folder. */
function firstFileOnPath(dir: string): string | undefined {
	const parts: string[] = [];
	for (let p = path.resolve(dir); ; p = path.dirname(p)) {
		parts.unshift(p);
		if (path.dirname(p) === p) {
			break;
		}
	}
	for (const p of parts) {
		try {
			if (!fs.statSync(p).isDirectory()) {
				return p;
			}
		} catch {
			return undefined;
		}
	}
	return undefined;
}

/** Why a journal append failed, in words a person can act on (the system's own message kept at the end). */
function writeFailureInWords(e: unknown): string {
	const why: Record<string, string> = {
		ENOSPC: 'the disk is full',
		EDQUOT: 'the disk quota is used up',
		EFBIG: 'the file reached the largest size this process may write (see ulimit -f)',
		EACCES: 'permission denied',
		EROFS: 'the file system is read-only',
		EIO: 'the disk reported an input/output error',
	};
	const code = (e as NodeJS.ErrnoException | undefined)?.code;
	return code && why[code] ? `${why[code]} (${errorMessage(e)})` : errorMessage(e);
}

/** Runs a file-system step on the state folder, turning the errors a person can fix into plain words. */
function onStateFolder<T>(dir: string, step: () => T): T {
	try {
		return step();
	} catch (e) {
		throw stateFolderProblem(dir, e) ?? e;
	}
}

/** The database was written by a newer Agent Tabs than this one. */
export class StoreTooNewError extends AgentTabsError {
	constructor(found: number) {
		super('store/tooNew', `The Agent Tabs database has schema version ${found}, newer than this version knows (${latestVersion}). Update Agent Tabs; the file was left untouched.`);
	}
}

/** Waiters for a sequence number to be reached (durable, or folded into the snapshot). */
class SeqWaiters {
	private waiters: { seq: number; resolve: () => void; reject: (e: Error) => void }[] = [];

	wait(seq: number): Promise<void> {
		return new Promise((resolve, reject) => this.waiters.push({ seq, resolve, reject }));
	}

	reached(seq: number): void {
		const done = this.waiters.filter((w) => w.seq <= seq);
		this.waiters = this.waiters.filter((w) => w.seq > seq);
		for (const w of done) {
			w.resolve();
		}
	}

	failAll(e: Error): void {
		const all = this.waiters;
		this.waiters = [];
		for (const w of all) {
			w.reject(e);
		}
	}
}

/** Matches the table a write statement changes (`INSERT [OR x] INTO t`, `UPDATE [OR x] t`, `DELETE FROM t`). */
const changedTablePattern = /^\s*(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)\s+["`[]?(\w+)/i;

/** A snapshot read on this thread, with its checksum. */
function withChecksum(bytes: Buffer): SnapshotRead {
	return { bytes, crc: crc32(bytes) };
}

/** The journal file the journal worker starts, and a torn tail to cut back first. */
interface JournalFiles {
	file: string;
	truncate?: { file: string; length: number };
}

/** Where the store's worker script is: next to this module (out/src/db in tests, dist/ in the bundles). */
const workerScript = path.join(__dirname, 'storeWorker.js');

/**
 * The database: sql.js in memory, made durable by a write-ahead journal and periodic snapshots.
 *
 * **The durability contract.** `write(fn)` runs `fn` in one transaction, applies it in memory at once and
 * returns `fn`'s result; its journal record goes to the journal worker, which appends and fdatasyncs it off
 * the host thread (group commit: whatever arrived during one fdatasync goes into the next). A write is
 * **acknowledged** when `durable()` (called after it) resolves: from then on a `kill -9` cannot lose it, because
 * the next `open` loads the snapshot and replays every journal record past the snapshot's sequence number.
 * `writeDurable(fn)` is both in one call. Anything that reports success to a user or an agent awaits one of
 * them; a caller that only needs the in-memory state (a streaming flush, a view) need not. A write that throws
 * was rolled back and is never journaled. If the journal fails, `durable()` rejects for every write not yet on
 * disk and later writes throw `StoreFailedError`; reads keep working.
 *
 * The O(size) fold of the journal into a new snapshot runs in a worker of its own that rebuilds the database
 * from the files, so the host thread never exports.
 *
 * Statements must be deterministic (ids and timestamps are passed as parameters, never `random()` or
 * `CURRENT_TIMESTAMP`) because replay runs them again.
 *
 * One writer per folder: `open` takes `agent-tabs.lock` and throws `StoreLockedError` if a live process has it.
 */
export class Store extends Disposable {
	private readonly _onDidWrite = this._register(new Emitter<StoreWriteEvent>((e) => logListenerErrors(this.options.logger, '[Store][onDidWrite]')(e)));
	/** Fires after every write, once it is applied in memory (before it is durable). */
	readonly onDidWrite: Event<StoreWriteEvent> = this._onDidWrite.event;

	private seq: number;
	/** The last write when the store was opened. */
	private readonly openSeq: number;
	private durableSeq: number;
	private foldedSeq: number;
	private journalSize = 0;
	private inWrite = false;
	/** Set when the journal failed: later writes throw it (in words), durable() rejects with it. */
	private failed: StoreFailedError | undefined;
	private closed = false;
	private journalClosed: Promise<void> | undefined;
	private readonly durableWaiters = new SeqWaiters();
	private readonly foldWaiters = new SeqWaiters();
	private fold: { done: Promise<void> } | undefined;
	private foldWorkerInstance: Worker | undefined;
	/** A fold asked for while one ran: the highest write it must cover. */
	private foldWanted = 0;
	/** foldJournal() calls waiting: they keep the process alive like pending writes do. */
	private foldJournalWaiting = 0;
	private closing = false;
	private journalExited = false;
	/** The journal worker said it is up (before that, close() can simply stop it). */
	private journalReady = false;
	/** Bytes of the journals replayed on open, until a fold takes them in. */
	private openJournalBytes = 0;

	/** Whether the writes past the snapshot, up to `seq`, are worth a fold (see `StoreOptions.smallJournalRecords`). */
	private journalIsLarge(seq: number): boolean {
		const bytes = this.journalSize + (this.foldedSeq < this.openSeq ? this.openJournalBytes : 0);
		return seq - this.foldedSeq >= (this.options.smallJournalRecords ?? 500) || bytes >= (this.options.smallJournalBytes ?? 1024 * 1024);
	}

	/** The journal worker once started (`journalWorker()`); never for a read-only snapshot. */
	private journal: Worker | undefined;
	/** The files the journal worker starts with; absent for a read-only snapshot. */
	private readonly journalFiles: JournalFiles | undefined;
	/** Starts the journal worker right after open, unless a write needs it sooner. */
	private journalSoon: NodeJS.Immediate | undefined;
	/** Every statement the store runs, prepared once (see `StatementCache`). */
	private readonly statements: StatementCache;

	private constructor(
		private readonly db: Database,
		private readonly options: StoreOptions,
		/** Absent for a read-only snapshot, which never takes the lock nor writes. */
		private readonly lock: StoreLock | undefined,
		/** The files the journal worker starts with; absent for a read-only snapshot. */
		journalFiles: JournalFiles | undefined,
		seq: number,
		snapshotSeq: number,
		openJournalBytes: number,
		readonly recovery: RecoveryReport,
	) {
		super();
		this.statements = new StatementCache(db);
		this.seq = seq;
		this.openSeq = seq;
		this.durableSeq = seq;
		this.foldedSeq = snapshotSeq;
		this._register(toDisposable(() => this.closeSync()));
		this.openJournalBytes = openJournalBytes;
		this.journalFiles = journalFiles;
		if (!journalFiles) {
			return; // read-only: no journal worker, and no fold worker either
		}
		// The worker is started after open returns, or by the first write if that comes sooner: creating a
		// thread costs the host 1 to 10 ms, and its start-up (tens of milliseconds of CPU) would compete with
		// the load on a small machine.
		this.journalSoon = setImmediate(() => this.journalWorker());
		if (this.journalIsLarge(seq)) {
			// Journals replayed on open are folded in the background, so the next open does not replay them again.
			this.startFold(seq);
		}
	}

	/** The journal worker, started (and handed its files) the first time it is needed. */
	private journalWorker(): Worker {
		if (this.journal) {
			return this.journal;
		}
		clearImmediate(this.journalSoon);
		this.journalSoon = undefined;
		const journal = new Worker(workerScript, { workerData: { role: 'journal' } });
		this.journal = journal;
		// Writes made before the worker is up wait in its message queue; durable() covers them like any other.
		journal.on('message', (m: FromJournal) => this.onJournalMessage(m));
		journal.postMessage({ type: 'init', dir: this.options.dir, ...this.journalFiles!, seq: this.openSeq, foldJournalBytes: this.options.foldJournalBytes ?? defaultFoldJournalBytes } satisfies ToJournal);
		journal.on('error', (e) => this.fail(e));
		journal.on('exit', (code) => {
			this.journalExited = true;
			if (!this.closed && !this.closing) {
				this.fail(new Error(`the journal worker stopped (exit code ${code})`));
			}
		});
		this.updateRef(); // referenced only while writes wait for the disk
		return journal;
	}

	/** Path of the snapshot file. */
	get file(): string {
		return path.join(this.options.dir, storeFiles.snapshot);
	}

	get dir(): string {
		return this.options.dir;
	}

	/** Sequence number of the last write applied in memory. */
	get lastSeq(): number {
		return this.seq;
	}

	/** Sequence number of the last write known to be on disk. */
	get lastDurableSeq(): number {
		return this.durableSeq;
	}

	/** Size of the current journal file as of the last group commit. */
	get journalBytes(): number {
		return this.journalSize;
	}

	/** Whether this is a read-only snapshot (`openSnapshot`): no lock, no journal worker, no fold worker. */
	get readOnly(): boolean {
		return !this.lock;
	}

	/**
	 * After a damaged file: what git knows has been rebuilt into the store, so the next open is quiet again.
	 * The marker goes only once the rebuilt rows are on disk: a kill before that rebuilds again.
	 */
	async rebuildDone(): Promise<void> {
		await this.durable();
		fs.rmSync(path.join(this.dir, storeFiles.rebuildNeeded), { force: true });
		fsyncDir(this.dir);
	}

	static async open(options: StoreOptions): Promise<Store> {
		const { dir, logger } = options;
		onStateFolder(dir, () => makeFolders(dir));
		const SQL = await loadSqlJs(options.wasmPath);
		const lock = onStateFolder(dir, () => StoreLock.acquire(path.join(dir, storeFiles.lock), options.owner));
		let store: Store;
		try {
			const snapshot = await readSnapshotFile(path.join(dir, storeFiles.snapshot)).catch((e: unknown) => {
				throw stateFolderProblem(dir, e) ?? e;
			});
			store = onStateFolder(dir, () => Store.load(SQL, options, { lock, snapshot }, logger));
		} catch (e) {
			lock.release();
			throw e;
		}
		return store;
	}

	/**
	 * A consistent read-only view of the state, for commands that only read: the snapshot plus every
	 * acknowledged journal record, without taking the writer lock and without writing anything (not even to
	 * repair), so it works while a window or another command holds the folder, and on a read-only folder.
	 * A writer that folds meanwhile can delete a journal between our reads; a gap in the sequence
	 * numbers shows it, and the read starts over.
	 */
	static async openSnapshot(options: SnapshotOptions): Promise<Store> {
		const { dir, logger, afterRead } = options;
		if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
			throw stateFolderProblem(dir, Object.assign(new Error('not a folder'), { code: 'ENOTDIR' }))!;
		}
		const SQL = await loadSqlJs(options.wasmPath);
		const full: StoreOptions = { ...options, owner: 'a read-only command' };
		for (let attempt = 1; ; attempt++) {
			try {
				const store = Store.load(SQL, full, undefined, attempt < 5 ? nullLogger : logger, afterRead);
				if (store.recovery.problems.length === 0 || attempt >= 5) {
					return store;
				}
				store.closeSync();
			} catch (e) {
				const code = (e as NodeJS.ErrnoException).code;
				if (code === 'EACCES' || code === 'EPERM') {
					throw new StoreFolderError('store/unreadable', `The state folder ${dir} cannot be read (permission denied).`, { cause: e });
				}
				if (code !== 'ENOENT' || attempt >= 5) {
					throw stateFolderProblem(dir, e) ?? e;
				}
			}
			await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
		}
	}

	/**
	 * Loads snapshot and journals; with the lock (and the journal worker) it also repairs, writes a new
	 * snapshot where the files cannot simply be continued, and hands the worker its journal.
	 */
	private static load(
		SQL: SqlJsStatic,
		options: StoreOptions,
		writer: { lock: StoreLock; snapshot: SnapshotRead | undefined } | undefined,
		logger: Logger,
		afterRead?: SnapshotOptions['afterRead'],
	): Store {
		const { dir } = options;
		const readOnly = !writer;
		if (readOnly && !fs.existsSync(dir)) {
			const db = new SQL.Database();
			applyConnectionPragmas(db);
			ensureMetaTable(db);
			const migration = migrate(db, nullLogger);
			return new Store(db, options, undefined, undefined, 0, 0, 0, { movedAside: [], problems: [], replayedRecords: 0, droppedTornBytes: 0, migration, damaged: null });
		}
		const snapshotFile = path.join(dir, storeFiles.snapshot);
		// The writer read the snapshot before (`readSnapshotFile`, off this thread); a reader reads it here.
		const preread = writer ? (writer.snapshot ?? null) : undefined;
		const stamp = new Date().toISOString().replace(/[:.]/g, '-');
		const report: RecoveryReport = {
			movedAside: [],
			problems: [],
			replayedRecords: 0,
			droppedTornBytes: 0,
			migration: { from: 0, to: 0, applied: [] },
			damaged: readDamageMarker(dir),
		};
		const moveAside = (file: string, why: string): void => {
			if (readOnly) {
				// A reader never repairs: it reads what it can and says what it skipped.
				report.problems.push(`${path.basename(file)} ${why}.`);
				logger.warn(`[Store][openSnapshot] ${file} ${why}; read without it`);
				return;
			}
			const target = path.resolve(`${file}.bad-${stamp}`);
			const damaged: DamageReport = report.damaged ?? { keptAs: [], problems: [] };
			damaged.keptAs.push(target);
			damaged.problems.push(`${path.basename(file)} ${why}; it was kept as ${target}.`);
			// The marker first: a crash right after the rename must still lead to a rebuild and a loud report.
			writeDamageMarker(dir, damaged);
			report.damaged = damaged;
			fs.renameSync(file, target);
			report.movedAside.push(target);
			report.problems.push(`${path.basename(file)} ${why}; it was kept as ${path.basename(target)}.`);
			logger.error(`[Store][open] ${file} ${why}; moved aside to ${target}`);
		};

		// Leftovers of a fold cut short by a crash: never the live snapshot, safe to drop.
		for (const name of readOnly ? [] : fs.readdirSync(dir)) {
			if (name.startsWith(`${storeFiles.snapshot}.tmp-`) || name.startsWith(`${storeFiles.snapshotSum}.tmp-`)) {
				fs.rmSync(path.join(dir, name), { force: true });
			}
		}

		// 1. The snapshot. A file whose size and checksum match the sum written with it is exactly what a fold
		// exported, so the O(size) quick_check runs only when they do not (an old, foreign or damaged file).
		let db: Database | undefined;
		let snapshotSeq = 0;
		let checkedWithoutSum = false;
		const snapshot = preread !== undefined ? preread : fs.existsSync(snapshotFile) ? withChecksum(fs.readFileSync(snapshotFile)) : null;
		if (snapshot) {
			const { bytes } = snapshot;
			try {
				// The shape first: a damaged file is never trusted, whatever a (stale) sum file says.
				const shapeProblem = snapshotShapeProblem(bytes);
				if (shapeProblem) {
					throw new Error(shapeProblem);
				}
				const intact = snapshotMatchesSum(dir, snapshot);
				// The bytes become the database's in-memory file; the writer's read brings room to grow, so the
				// first writes do not copy that file into a larger one. Nothing reads `snapshot` after this.
				db = openDatabaseInPlace(SQL, snapshot.withGrowthRoom ?? bytes);
				if (!intact) {
					const check = db.exec('PRAGMA quick_check');
					const verdict = check[0]?.values[0]?.[0];
					if (verdict !== 'ok') {
						throw new Error(`integrity check says ${String(verdict)}`);
					}
					checkedWithoutSum = true;
				}
				snapshotSeq = readSnapshotSeq(db);
			} catch (e) {
				db?.close();
				db = undefined;
				moveAside(snapshotFile, `is not a readable database (${errorMessage(e)})`);
			}
		}
		afterRead?.('snapshot');
		const snapshotWasBad = report.movedAside.length > 0;
		const fresh = !db;
		db ??= new SQL.Database();
		applyConnectionPragmas(db);
		ensureMetaTable(db);
		const migrationOutcomes: MigrationOutcome[] = [];
		if (fresh) {
			// Without a snapshot, journal records (always written at the latest schema) apply on top of a
			// freshly migrated database, which is exactly what the first snapshot was.
			migrationOutcomes.push(migrate(db, readOnly ? nullLogger : logger));
		}

		// 2. The journals, oldest first. Records at or below the snapshot's sequence are already in it.
		const journals = listJournals(dir);
		afterRead?.('journalList');
		let seq = snapshotSeq;
		let replayBroken = false;
		let tornTail: { file: string; validBytes: number } | undefined;
		replay(db, (applyRecord) => {
			for (let i = 0; i < journals.length; i++) {
				const file = journals[i]!;
				const isLast = i === journals.length - 1;
				if (replayBroken) {
					moveAside(file, 'comes after a damaged journal and could not be applied');
					continue;
				}
				const start = journalStart(file);
				if (readOnly && start > seq + 1) {
					// Writes seq+1 to start-1 are in neither the snapshot read nor any journal: a writer folded them
					// into a newer snapshot between our reads. An idle writer's new journal has no record to show it.
					moveAside(file, `starts at write ${start}, after write ${seq} of the snapshot read before it (a fold happened meanwhile)`);
					replayBroken = true;
					continue;
				}
				const result = readJournal(file);
				let applied = 0;
				let problem: string | undefined;
				for (const record of result.records) {
					if (record.seq <= seq) {
						continue;
					}
					if (record.seq !== seq + 1) {
						problem = snapshotWasBad
							? `could not be applied because the database it belongs to was damaged (it starts at write ${record.seq})`
							: `is missing writes ${seq + 1} to ${record.seq - 1}`;
						break;
					}
					try {
						applyRecord(record);
					} catch (e) {
						problem = `has a write (${record.seq}) that no longer applies: ${errorMessage(e)}`;
						break;
					}
					seq = record.seq;
					applied++;
				}
				report.replayedRecords += applied;
				if (!problem && result.corrupt) {
					problem = `is damaged (${result.reason ?? 'unreadable'}); the writes before the damage were recovered`;
				} else if (!problem && result.trailingBytes > 0 && !isLast) {
					problem = `ends in an incomplete write although newer journals follow it`;
				}
				if (problem) {
					moveAside(file, problem);
					replayBroken = true;
				} else if (result.trailingBytes > 0) {
					report.droppedTornBytes += result.trailingBytes;
					tornTail = { file, validBytes: result.validBytes };
					logger.info(`[Store][open] dropped ${result.trailingBytes} bytes of an unacknowledged write at the end of ${path.basename(file)}`);
				}
			}
		});

		// 3. Migrations (in memory; nothing is written if they fail, so the old files stay byte for byte).
		try {
			migrationOutcomes.push(migrate(db, readOnly ? nullLogger : logger));
		} catch (e) {
			db.close();
			throw e;
		}
		report.migration = {
			from: migrationOutcomes[0]!.from,
			to: migrationOutcomes[migrationOutcomes.length - 1]!.to,
			applied: migrationOutcomes.flatMap((o) => o.applied),
		};
		if (!writer) {
			return new Store(db, options, undefined, undefined, seq, seq, 0, report);
		}

		// 4. A new snapshot only when the files cannot simply be continued: a fresh or damaged folder, or a
		// migration (not journaled). A plain replay keeps its journals; the fold worker folds them after open,
		// so opening costs no export.
		let keptJournalBytes = 0;
		if (fresh || report.migration.applied.length > 0 || report.movedAside.length > 0) {
			if (report.migration.applied.length > 0 && !fresh && report.migration.from > 0) {
				// Keep the pre-migration file (still untouched on disk): migrations are one-way.
				const backup = `${snapshotFile}.v${report.migration.from}.bak`;
				fs.copyFileSync(snapshotFile, backup);
				logger.info(`[Store][open] kept the version ${report.migration.from} database as ${backup}`);
			}
			exportSnapshot(db, dir, seq);
			snapshotSeq = seq;
			for (const file of listJournals(dir)) {
				fs.rmSync(file, { force: true });
			}
		} else {
			if (checkedWithoutSum) {
				// quick_check passed: record the file's checksum, so the next open can skip it.
				writeSnapshotSum(dir, fs.readFileSync(snapshotFile));
			}
			for (const file of listJournals(dir)) {
				if (journalStart(file) > seq) {
					// A journal that holds nothing past the last replayed write (an empty one a crash left behind).
					fs.rmSync(file, { force: true });
				} else {
					keptJournalBytes += fs.statSync(file).size;
				}
			}
		}
		// The journal worker cuts the torn tail back and creates the next journal (both fsynced, off this thread)
		// before it appends anything.
		const journalFile = journalPath(dir, seq + 1);
		logger.info(`[Store][open] ${snapshotFile}: schema ${latestVersion}, write ${seq}, replayed ${report.replayedRecords}`);
		const journalFiles = { file: journalFile, truncate: tornTail && !report.movedAside.length ? { file: tornTail.file, length: tornTail.validBytes } : undefined };
		return new Store(db, options, writer.lock, journalFiles, seq, snapshotSeq, keptJournalBytes, report);
	}

	/**
	 * Runs `fn` in one transaction, applies it in memory and returns `fn`'s result; the journal record is on
	 * its way to disk (see `durable()`). A throw rolls everything back and journals nothing.
	 */
	write<T>(fn: (tx: WriteTx) => T): T {
		if (this.closed) {
			throw new StoreFailedError('The store is closed.');
		}
		if (!this.journalFiles) {
			throw new StoreReadOnlyError();
		}
		const journal = this.journalWorker();
		if (this.failed) {
			throw new StoreFailedError(`The store stopped accepting writes after an earlier failure: ${this.failed.message}`, { cause: this.failed });
		}
		if (this.inWrite) {
			throw new AgentTabsError('store/nested', 'Nested Store.write calls are not allowed; pass the WriteTx down instead.');
		}
		this.inWrite = true;
		const stmts: JournalRecord['stmts'] = [];
		const tables = new Set<string>();
		const tx: WriteTx = {
			run: (sql, params = []) => {
				this.statements.run(sql, params);
				stmts.push([sql, encodeParams(params)]);
				const table = changedTablePattern.exec(sql)?.[1];
				if (table) {
					tables.add(table.toLowerCase());
				}
				return this.db.getRowsModified();
			},
			all: (sql, params) => this.all(sql, params),
			get: (sql, params) => this.get(sql, params),
		};
		let result: T;
		try {
			this.statements.run('BEGIN');
			try {
				result = fn(tx);
			} catch (e) {
				this.statements.run('ROLLBACK');
				throw e;
			}
			this.statements.run('COMMIT');
			if (stmts.length === 0) {
				return result;
			}
			const record: JournalRecord = { seq: this.seq + 1, stmts };
			this.seq = record.seq;
			journal.ref(); // keeps the process alive until the write is on disk (see updateRef)
			journal.postMessage({ type: 'append', seq: record.seq, json: recordJson(record) } satisfies ToJournal);
		} finally {
			this.inWrite = false;
		}
		this._onDidWrite.fire({ tables });
		return result;
	}

	/**
	 * Resolves once every write made before this call is on disk: the acknowledgement. Rejects with
	 * `StoreFailedError` if the journal failed first (the writes it covers may be lost).
	 */
	durable(): Promise<void> {
		if (this.failed) {
			return Promise.reject(this.failed);
		}
		if (this.durableSeq >= this.seq) {
			return Promise.resolve();
		}
		return this.durableWaiters.wait(this.seq);
	}

	/** `write(fn)`, then waits until it is on disk; resolves to `fn`'s result. */
	async writeDurable<T>(fn: (tx: WriteTx) => T): Promise<T> {
		const result = this.write(fn);
		await this.durable();
		return result;
	}

	all<T = Record<string, SqlValue>>(sql: string, params: readonly SqlParam[] = []): T[] {
		return this.statements.all<T>(sql, params);
	}

	get<T = Record<string, SqlValue>>(sql: string, params: readonly SqlParam[] = []): T | undefined {
		return this.all<T>(sql, params)[0];
	}

	private onJournalMessage(m: FromJournal): void {
		switch (m.type) {
			case 'durable':
				this.durableSeq = m.seq;
				this.journalSize = m.bytes;
				this.durableWaiters.reached(m.seq);
				this.updateRef();
				break;
			case 'rotated':
				this.journalSize = m.bytes;
				if (m.upTo > this.foldedSeq) {
					this.startFold(m.upTo);
				} else {
					this.foldWaiters.reached(this.foldedSeq);
				}
				break;
			case 'failed':
				// The worker's error crossed the thread as its message and code; the code gives the plain words.
				this.fail(Object.assign(new Error(m.message), m.code ? { code: m.code } : {}), m.file);
				break;
			case 'ready':
				this.journalReady = true;
				break;
			case 'closed':
				break;
		}
	}

	/**
	 * The journal worker keeps the process alive only while something waits on it; a close waits for it to
	 * exit also after a failure, so the lock is released and the caller's close() resolves.
	 */
	private updateRef(): void {
		if (!this.closed && (this.closing || (!this.failed && (this.durableSeq < this.seq || this.foldJournalWaiting > 0)))) {
			this.journal?.ref();
		} else {
			this.journal?.unref();
		}
	}

	/**
	 * The journal failed (an append, the worker itself): the store turns read-only. Writes not yet on disk
	 * may be lost, so every `durable()` waiting or still to come rejects, and later writes throw.
	 */
	private fail(e: unknown, journalFile?: string): void {
		if (this.failed || this.closed) {
			return;
		}
		this.failed = new StoreFailedError(`Could not save to ${journalFile ?? `the journal in ${this.dir}`}: ${writeFailureInWords(e)}`, { cause: e });
		this.options.logger.error(`[Store][journal] ${this.failed.message}; the store is now read-only (reads still work)`);
		this.journal?.unref();
		this.durableWaiters.failAll(this.failed);
		this.foldWaiters.failAll(this.failed);
	}

	/** Folds every write up to `upTo` (all in complete journals) into a new snapshot, in the fold worker. */
	private startFold(upTo: number): void {
		if (this.fold) {
			this.foldWanted = Math.max(this.foldWanted, upTo);
			return;
		}
		const worker = this.foldWorker();
		const done = new Promise<void>((resolve, reject) => {
			const onMessage = (m: FromFold): void => {
				cleanup();
				if (m.type === 'folded') {
					this.foldedSeq = Math.max(this.foldedSeq, m.seq);
					this.options.logger.debug(`[Store][fold] write ${m.seq}: load ${m.ms.load.toFixed(0)} ms, replay ${m.ms.replay.toFixed(0)} ms, export and write ${m.ms.exportAndWrite.toFixed(0)} ms`);
					resolve();
				} else {
					reject(new Error(m.message));
				}
			};
			const onExit = (code: number): void => {
				cleanup();
				this.foldWorkerInstance = undefined;
				reject(new Error(`the fold worker stopped (exit code ${code})`));
			};
			const cleanup = (): void => {
				worker.off('message', onMessage);
				worker.off('exit', onExit);
			};
			worker.on('message', onMessage);
			worker.on('exit', onExit);
			worker.postMessage({ type: 'fold', upTo } satisfies ToFold);
		});
		this.fold = { done };
		done.then(
			() => this.foldWaiters.reached(this.foldedSeq),
			(e: unknown) => {
				// The journals stay, so nothing is lost; the next fold (or open) tries again.
				this.options.logger.error(`[Store][fold] folding the journal into the snapshot failed: ${errorMessage(e)}`);
				this.foldWaiters.failAll(new StoreFailedError(`Could not fold the journal into ${this.file}: ${errorMessage(e)}`, { cause: e }));
			},
		).finally(() => {
			this.fold = undefined;
			const wanted = this.foldWanted;
			this.foldWanted = 0;
			if (wanted > this.foldedSeq && !this.closed) {
				this.startFold(wanted);
			}
		});
	}

	/** The fold worker, started at the first fold and kept: starting a thread costs the host more than a fold's messages. */
	private foldWorker(): Worker {
		if (!this.foldWorkerInstance) {
			const data: FoldWorkerData = { role: 'fold', dir: this.dir, wasmPath: this.options.wasmPath };
			this.foldWorkerInstance = new Worker(workerScript, { workerData: data });
			this.foldWorkerInstance.unref(); // never needed for correctness; close() and foldJournal() wait for folds themselves
			this.foldWorkerInstance.on('error', (e) => this.options.logger.error(`[Store][fold] ${errorMessage(e)}`));
		}
		return this.foldWorkerInstance;
	}

	/**
	 * Folds the journal into a new snapshot now (every write made before the call), in the fold worker;
	 * resolves when the snapshot is renamed into place and the folded journals are gone.
	 */
	async foldJournal(): Promise<void> {
		if (this.closed || this.failed || !this.journalFiles) {
			return; // a read-only snapshot never folds: it writes nothing
		}
		const target = this.seq;
		if (this.foldedSeq >= target) {
			return;
		}
		const journal = this.journalWorker();
		const folded = this.foldWaiters.wait(target);
		this.foldJournalWaiting++;
		this.updateRef();
		try {
			journal.postMessage({ type: 'rotate' } satisfies ToJournal);
			await folded;
		} finally {
			this.foldJournalWaiting--;
			this.updateRef();
		}
	}

	/** Waits until every write is on disk, folds the journal into a final snapshot and releases the lock. */
	async close(): Promise<void> {
		if (this.closed || this.journalClosed) {
			return this.journalClosed;
		}
		if (!this.journalFiles) {
			// A read-only snapshot: no worker to wait for, no lock to release.
			this.closeSync();
			this.dispose();
			return;
		}
		this.closing = true;
		this.updateRef();
		await this.durable().catch(() => undefined);
		if (!this.failed && this.foldedSeq < this.seq && this.journalIsLarge(this.seq)) {
			await this.foldJournal().catch((e) => this.options.logger.error(`[Store][close] final fold failed, the journal keeps every write: ${errorMessage(e)}`));
		}
		await this.fold?.done.catch(() => undefined);
		const journal = this.journal;
		if (!journal) {
			// Never started: nothing was written since open, so there is nothing to close.
			this.closeSync();
			this.dispose();
			return;
		}
		// A worker that is still starting has opened nothing yet and has nothing to write (durable() resolved):
		// stopping it is enough, and much quicker than waiting for it to start.
		const nothingToClose = this.journalExited || (!this.journalReady && this.durableSeq >= this.seq);
		if (nothingToClose && !this.journalExited) {
			this.journalExited = true;
			await journal.terminate();
		}
		this.journalClosed = nothingToClose
			? Promise.resolve()
			: new Promise<void>((resolve) => {
					journal.once('exit', () => resolve());
					journal.postMessage({ type: 'close' } satisfies ToJournal);
				});
		await this.journalClosed;
		this.closeSync();
		this.dispose();
	}

	private closeSync(): void {
		if (this.closed) {
			return;
		}
		this.closed = true;
		clearImmediate(this.journalSoon);
		if (this.journal && !this.journalClosed) {
			// Disposed without close(): the worker appends what it has, closes its file and exits on its own.
			this.journal.postMessage({ type: 'close' } satisfies ToJournal);
			this.journal.unref();
		}
		void this.foldWorkerInstance?.terminate();
		this.durableWaiters.failAll(new StoreFailedError('The store was closed before the write reached the disk.'));
		this.foldWaiters.failAll(new StoreFailedError('The store was closed.'));
		this.statements.clear();
		this.db.close();
		this.lock?.release();
	}
}
