import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Database, SqlJsStatic } from 'sql.js';
import { AgentTabsError } from '../common/errors';
import { Emitter, logListenerErrors, type Event } from '../common/event';
import { Disposable, toDisposable } from '../common/lifecycle';
import { errorMessage, nullLogger, type Logger } from '../common/log';
import {
	decodeParams,
	encodeParams,
	encodeRecord,
	fsyncDir,
	JournalWriter,
	readJournal,
	type JournalRecord,
	type SqlParam,
} from './journal';
import { StoreLock } from './lock';
import { allRows } from './rows';
import { latestVersion, migrate, type MigrationOutcome } from './migrations';
import { loadSqlJs } from './sqlJs';

export type { SqlParam } from './journal';

/** File names inside a state folder. */
export const storeFiles = {
	snapshot: 'agent-tabs.sqlite',
	lock: 'agent-tabs.lock',
	journalPrefix: 'agent-tabs.journal.',
	/** Present from the moment a damaged file is moved aside until what git knows has been rebuilt. */
	rebuildNeeded: 'agent-tabs.rebuild-needed',
} as const;

export interface StoreOptions {
	/** The state folder: the extension's storage folder, or the CLI's `--state`. Created if missing. */
	dir: string;
	/** Path of `sql-wasm.wasm`. */
	wasmPath: string;
	logger: Logger;
	/** Who is opening, for the lock message a second process sees ("VS Code window", "agent-tabs CLI"). */
	owner: string;
	/** Journal size in bytes past which a background checkpoint folds it into the snapshot. */
	checkpointBytes?: number;
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

/** A damaged database or journal: what was kept aside, and why. */
export interface DamageReport {
	/** Full paths of the files kept aside. */
	keptAs: string[];
	problems: string[];
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

/**
 * The database: sql.js in memory, made durable by a write-ahead journal and periodic snapshots.
 *
 * **Acknowledged** means: `write(fn)` returned normally. By then the transaction's statements are in the
 * journal and fdatasync'ed, so a `kill -9` at any later instant cannot lose it: the next `open` loads the
 * snapshot and replays every journal record past the snapshot's sequence number. A write that throws was
 * rolled back and is not in the journal. The cost of a write is one append and one fdatasync, independent of
 * the database size; the O(size) export happens only in checkpoints, off the write path.
 *
 * Statements must be deterministic (ids and timestamps are passed as parameters, never `random()` or
 * `CURRENT_TIMESTAMP`) because replay runs them again.
 *
 * One writer per folder: `open` takes `agent-tabs.lock` and throws `StoreLockedError` if a live process has it.
 */
export class Store extends Disposable {
	private readonly _onDidWrite = this._register(new Emitter<void>((e) => logListenerErrors(this.options.logger, '[Store][onDidWrite]')(e)));
	/** Fires after every acknowledged write. */
	readonly onDidWrite: Event<void> = this._onDidWrite.event;

	private writer: JournalWriter | undefined;
	private seq: number;
	private inWrite = false;
	private failed: Error | undefined;
	private checkpointing: Promise<void> | undefined;
	private checkpointTimer: NodeJS.Timeout | undefined;
	private closed = false;
	private readonly checkpointBytes: number;

	private constructor(
		private readonly db: Database,
		private readonly options: StoreOptions,
		/** Absent for a read-only snapshot, which never takes the lock nor writes. */
		private readonly lock: StoreLock | undefined,
		writer: JournalWriter | undefined,
		seq: number,
		readonly recovery: RecoveryReport,
	) {
		super();
		this.writer = writer;
		this.seq = seq;
		this.checkpointBytes = options.checkpointBytes ?? 16 * 1024 * 1024;
		this._register(toDisposable(() => this.closeSync()));
	}

	/** Path of the snapshot file. */
	get file(): string {
		return path.join(this.options.dir, storeFiles.snapshot);
	}

	get dir(): string {
		return this.options.dir;
	}

	/** Sequence number of the last acknowledged write. */
	get lastSeq(): number {
		return this.seq;
	}

	get journalBytes(): number {
		return this.writer?.bytes ?? 0;
	}

	/** Whether this is a read-only snapshot (`openSnapshot`). */
	get readOnly(): boolean {
		return !this.lock;
	}

	/** After a damaged file: what git knows has been rebuilt into the store, so the next open is quiet again. */
	rebuildDone(): void {
		fs.rmSync(path.join(this.dir, storeFiles.rebuildNeeded), { force: true });
		fsyncDir(this.dir);
	}

	static async open(options: StoreOptions): Promise<Store> {
		const { dir, logger } = options;
		onStateFolder(dir, () => fs.mkdirSync(dir, { recursive: true }));
		const SQL = await loadSqlJs(options.wasmPath);
		const lock = onStateFolder(dir, () => StoreLock.acquire(path.join(dir, storeFiles.lock), options.owner));
		try {
			return onStateFolder(dir, () => Store.load(SQL, options, lock, logger));
		} catch (e) {
			lock.release();
			throw e;
		}
	}

	/**
	 * A consistent read-only view of the state, for commands that only read: the snapshot plus every
	 * acknowledged journal record, without taking the writer lock and without writing anything (not even to
	 * repair), so it works while a window or another command holds the folder, and on a read-only folder.
	 * A writer that checkpoints meanwhile can delete a journal between our reads; a gap in the sequence
	 * numbers shows it, and the read starts over.
	 */
	static async openSnapshot(options: Omit<StoreOptions, 'owner' | 'checkpointBytes'>): Promise<Store> {
		const { dir, logger } = options;
		if (fs.existsSync(dir) && !fs.statSync(dir).isDirectory()) {
			throw stateFolderProblem(dir, Object.assign(new Error('not a folder'), { code: 'ENOTDIR' }))!;
		}
		const SQL = await loadSqlJs(options.wasmPath);
		const full: StoreOptions = { ...options, owner: 'a read-only command' };
		for (let attempt = 1; ; attempt++) {
			try {
				const store = Store.load(SQL, full, undefined, attempt < 5 ? nullLogger : logger);
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

	/** Loads snapshot and journals; with a lock it also repairs, checkpoints and starts a fresh journal. */
	private static load(SQL: SqlJsStatic, options: StoreOptions, lock: StoreLock | undefined, logger: Logger): Store {
		const { dir } = options;
		const readOnly = !lock;
		if (readOnly && !fs.existsSync(dir)) {
			const db = new SQL.Database();
			applyConnectionPragmas(db);
			ensureMetaTable(db);
			const migration = migrate(db, nullLogger);
			return new Store(db, options, undefined, undefined, 0, { movedAside: [], problems: [], replayedRecords: 0, droppedTornBytes: 0, migration, damaged: null });
		}
		const snapshotFile = path.join(dir, storeFiles.snapshot);
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

		// Leftovers of a checkpoint cut short by a crash: never the live snapshot, safe to drop.
		for (const name of readOnly ? [] : fs.readdirSync(dir)) {
			if (name.startsWith(`${storeFiles.snapshot}.tmp-`)) {
				fs.rmSync(path.join(dir, name), { force: true });
			}
		}

		// 1. The snapshot.
		let db: Database | undefined;
		let snapshotSeq = 0;
		let snapshotBytes: Buffer | undefined;
		if (fs.existsSync(snapshotFile)) {
			snapshotBytes = fs.readFileSync(snapshotFile);
			try {
				// Every snapshot we write is a whole database; SQLite would take an empty or cut-off-header file
				// for a new empty database and every session would vanish without a word.
				if (snapshotBytes.length < sqliteHeaderBytes || snapshotBytes.toString('latin1', 0, sqliteMagic.length) !== sqliteMagic) {
					throw new Error(snapshotBytes.length === 0 ? 'the file is empty' : `the file does not start with an SQLite header (${snapshotBytes.length} bytes)`);
				}
				const expectedBytes = sqliteSizeFromHeader(snapshotBytes);
				if (expectedBytes !== undefined && expectedBytes !== snapshotBytes.length) {
					// SQLite reads a cut-off file without complaint as long as the pages it needs are there.
					throw new Error(`the file has ${snapshotBytes.length} bytes where its header says ${expectedBytes}: it was cut short or overwritten`);
				}
				// sql.js may keep using the array it is given as its in-memory file: give it a copy.
				db = new SQL.Database(new Uint8Array(snapshotBytes));
				const check = db.exec('PRAGMA quick_check');
				const verdict = check[0]?.values[0]?.[0];
				if (verdict !== 'ok') {
					throw new Error(`integrity check says ${String(verdict)}`);
				}
				snapshotSeq = readSnapshotSeq(db);
			} catch (e) {
				db?.close();
				db = undefined;
				snapshotBytes = undefined;
				moveAside(snapshotFile, `is not a readable database (${errorMessage(e)})`);
			}
		}
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
		let seq = snapshotSeq;
		let replayBroken = false;
		for (let i = 0; i < journals.length; i++) {
			const file = journals[i]!;
			const isLast = i === journals.length - 1;
			if (replayBroken) {
				moveAside(file, 'comes after a damaged journal and could not be applied');
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
					applyRecord(db, record);
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
				logger.info(`[Store][open] dropped ${result.trailingBytes} bytes of an unacknowledged write at the end of ${path.basename(file)}`);
			}
		}

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
		if (readOnly) {
			return new Store(db, options, undefined, undefined, seq, report);
		}

		// 4. Make the recovered state the new baseline when anything changed, then start a fresh journal.
		const changed = report.replayedRecords > 0 || report.migration.applied.length > 0 || report.movedAside.length > 0 || report.droppedTornBytes > 0;
		if (changed) {
			if (report.migration.applied.length > 0 && snapshotBytes && report.migration.from > 0) {
				// Keep the pre-migration file: migrations are one-way.
				const backup = `${snapshotFile}.v${report.migration.from}.bak`;
				fs.writeFileSync(backup, snapshotBytes);
				logger.info(`[Store][open] kept the version ${report.migration.from} database as ${backup}`);
			}
			writeSnapshotSync(db, dir, seq);
		}
		for (const file of listJournals(dir)) {
			fs.rmSync(file, { force: true });
		}
		const writer = JournalWriter.create(journalPath(dir, seq + 1));
		logger.info(`[Store][open] ${snapshotFile}: schema ${latestVersion}, write ${seq}, replayed ${report.replayedRecords}`);
		return new Store(db, options, lock, writer, seq, report);
	}

	/**
	 * Runs `fn` in one transaction and makes it durable before returning. Returning normally is the
	 * acknowledgement; a throw rolls everything back and journals nothing.
	 */
	write<T>(fn: (tx: WriteTx) => T): T {
		if (this.closed) {
			throw new StoreFailedError('The store is closed.');
		}
		if (!this.writer) {
			throw new StoreReadOnlyError();
		}
		if (this.failed) {
			throw new StoreFailedError(`The store stopped accepting writes after an earlier failure: ${this.failed.message}`, { cause: this.failed });
		}
		if (this.inWrite) {
			throw new AgentTabsError('store/nested', 'Nested Store.write calls are not allowed; pass the WriteTx down instead.');
		}
		const writer = this.writer;
		this.inWrite = true;
		const stmts: JournalRecord['stmts'] = [];
		const tx: WriteTx = {
			run: (sql, params = []) => {
				this.db.run(sql, params as SqlParam[]);
				stmts.push([sql, encodeParams(params)]);
				return this.db.getRowsModified();
			},
			all: (sql, params) => this.all(sql, params),
			get: (sql, params) => this.get(sql, params),
		};
		let result: T;
		try {
			this.db.exec('BEGIN');
			try {
				result = fn(tx);
			} catch (e) {
				this.db.exec('ROLLBACK');
				throw e;
			}
			if (stmts.length === 0) {
				this.db.exec('COMMIT');
				return result;
			}
			const record: JournalRecord = { seq: this.seq + 1, stmts };
			try {
				writer.append(encodeRecord(record));
			} catch (e) {
				this.db.exec('ROLLBACK');
				this.failed = e as Error;
				this.options.logger.error(`[Store][write] journal append failed, store is now read-only: ${errorMessage(e)}`);
				throw new StoreFailedError(`Could not save to ${writer.file}: ${writeFailureInWords(e)}`, { cause: e });
			}
			this.db.exec('COMMIT');
			this.seq = record.seq;
		} finally {
			this.inWrite = false;
		}
		this._onDidWrite.fire();
		if (writer.bytes >= this.checkpointBytes) {
			this.scheduleCheckpoint();
		}
		return result;
	}

	all<T = Record<string, SqlValue>>(sql: string, params: readonly SqlParam[] = []): T[] {
		return allRows<T>(this.db, sql, params);
	}

	get<T = Record<string, SqlValue>>(sql: string, params: readonly SqlParam[] = []): T | undefined {
		return this.all<T>(sql, params)[0];
	}

	private scheduleCheckpoint(): void {
		if (this.checkpointTimer || this.checkpointing || this.closed) {
			return;
		}
		this.checkpointTimer = setTimeout(() => {
			this.checkpointTimer = undefined;
			this.checkpoint().catch((e) => this.options.logger.error(`[Store][checkpoint] ${errorMessage(e)}`));
		}, 0);
		this.checkpointTimer.unref?.();
	}

	/**
	 * Folds the journal into a new snapshot: export (the only O(size) step, synchronous, in memory), switch
	 * new writes to a fresh journal, then write temp file, fsync, rename and drop the old journals without
	 * blocking writes. A crash at any point leaves either the old snapshot plus all journals or the new one.
	 */
	checkpoint(): Promise<void> {
		if (this.checkpointing) {
			return this.checkpointing;
		}
		if (this.closed || this.failed || !this.writer) {
			return Promise.resolve();
		}
		const seq = this.seq;
		setSnapshotSeq(this.db, seq);
		const bytes = this.db.export();
		applyConnectionPragmas(this.db); // export() reopens the database, resetting connection pragmas
		const oldWriter = this.writer;
		this.writer = JournalWriter.create(journalPath(this.dir, seq + 1));
		oldWriter.close();
		const dir = this.dir;
		const keep = this.writer.file;
		const run = async (): Promise<void> => {
			await writeSnapshot(bytes, dir);
			for (const file of listJournals(dir)) {
				if (file !== keep && journalStart(file) <= seq) {
					await fs.promises.rm(file, { force: true });
				}
			}
		};
		this.checkpointing = run().finally(() => {
			this.checkpointing = undefined;
		});
		return this.checkpointing;
	}

	/** Waits for a running checkpoint, writes a final one and releases the lock. */
	async close(): Promise<void> {
		if (this.closed) {
			return;
		}
		if (this.checkpointing) {
			await this.checkpointing.catch(() => undefined);
		}
		if (!this.failed && this.writer && this.seq > 0 && this.writer.bytes > 8) {
			await this.checkpoint().catch((e) => this.options.logger.error(`[Store][close] final checkpoint failed, the journal keeps every write: ${errorMessage(e)}`));
		}
		this.closeSync();
		this.dispose();
	}

	private closeSync(): void {
		if (this.closed) {
			return;
		}
		this.closed = true;
		if (this.checkpointTimer) {
			clearTimeout(this.checkpointTimer);
			this.checkpointTimer = undefined;
		}
		this.writer?.close();
		this.db.close();
		this.lock?.release();
	}
}

function readDamageMarker(dir: string): DamageReport | null {
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

function writeDamageMarker(dir: string, report: DamageReport): void {
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
function sqliteSizeFromHeader(bytes: Buffer): number | undefined {
	const rawPageSize = bytes.readUInt16BE(16);
	const pageSize = rawPageSize === 1 ? 65536 : rawPageSize;
	const pages = bytes.readUInt32BE(28);
	if (pages === 0 || bytes.readUInt32BE(92) !== bytes.readUInt32BE(24)) {
		return undefined;
	}
	return pageSize * pages;
}

function journalPath(dir: string, startSeq: number): string {
	return path.join(dir, `${storeFiles.journalPrefix}${String(startSeq).padStart(12, '0')}`);
}

function journalStart(file: string): number {
	return Number(path.basename(file).slice(storeFiles.journalPrefix.length));
}

function listJournals(dir: string): string[] {
	return fs
		.readdirSync(dir)
		.filter((n) => n.startsWith(storeFiles.journalPrefix) && /^\d+$/.test(n.slice(storeFiles.journalPrefix.length)))
		.map((n) => path.join(dir, n))
		.sort((a, b) => journalStart(a) - journalStart(b));
}

/**
 * Connection settings. Durability comes from our journal, not from SQLite's: the database lives in sql.js's
 * in-memory file system, so SQLite's own rollback journal can stay in memory, its syncs are no-ops anyway,
 * and a large page cache keeps a big database from being re-read page by page on every transaction.
 */
function applyConnectionPragmas(db: Database): void {
	db.exec('PRAGMA foreign_keys = ON; PRAGMA journal_mode = MEMORY; PRAGMA synchronous = OFF; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -65536;');
}

function ensureMetaTable(db: Database): void {
	db.exec('CREATE TABLE IF NOT EXISTS _store_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
}

function readSnapshotSeq(db: Database): number {
	try {
		const r = db.exec("SELECT value FROM _store_meta WHERE key = 'journal_seq'");
		const v = r[0]?.values[0]?.[0];
		return v === undefined ? 0 : Number(v);
	} catch {
		return 0;
	}
}

/** Records which journal write the snapshot contains. Not journaled itself: it describes the snapshot. */
function setSnapshotSeq(db: Database, seq: number): void {
	ensureMetaTable(db);
	db.run("INSERT INTO _store_meta (key, value) VALUES ('journal_seq', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value", [String(seq)]);
}

function applyRecord(db: Database, record: JournalRecord): void {
	db.exec('BEGIN');
	try {
		for (const [sql, params] of record.stmts) {
			db.run(sql, decodeParams(params));
		}
		db.exec('COMMIT');
	} catch (e) {
		db.exec('ROLLBACK');
		throw e;
	}
}

function writeSnapshotSync(db: Database, dir: string, seq: number): void {
	setSnapshotSeq(db, seq);
	const bytes = db.export();
	applyConnectionPragmas(db);
	const target = path.join(dir, storeFiles.snapshot);
	const tmp = `${target}.tmp-${process.pid}`;
	const fd = fs.openSync(tmp, 'w');
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
	fsyncDir(dir);
}

async function writeSnapshot(bytes: Uint8Array, dir: string): Promise<void> {
	const target = path.join(dir, storeFiles.snapshot);
	const tmp = `${target}.tmp-${process.pid}`;
	const handle = await fs.promises.open(tmp, 'w');
	try {
		await handle.writeFile(bytes);
		await handle.sync();
	} finally {
		await handle.close();
	}
	await fs.promises.rename(tmp, target);
	fsyncDir(dir);
}
