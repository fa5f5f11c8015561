/**
 * Where the time of one `Store.write` goes, measured on the real Store without changing it: for the length of
 * a profiling pass, the functions `write` reaches are wrapped with timers (sql.js `Database.prototype.exec` and
 * `run`, the journal's `encodeRecord`, and Node's `fs.writeSync` / `fs.fdatasyncSync`). That works because the
 * compiled CommonJS calls them through their module objects (`journal_1.encodeRecord`, a getter onto `fs`) and
 * the sql.js prototype. Never active while the headline numbers are measured: the wrappers cost a little.
 */
// The default import is Node's real `fs` object (esModuleInterop); `import * as` would be a read-only copy.
import fs from 'node:fs';
import type { Database, SqlJsStatic } from 'sql.js';
import { crc32 } from '../src/db/crc32';
import * as journal from '../src/db/journal';
import { nowMs, percentile, round } from './stats';

export const phases = ['begin', 'statements', 'encode', 'writeSync', 'fdatasync', 'commit', 'other'] as const;
export type Phase = (typeof phases)[number];

type PhaseTimes = Record<Phase, number>;

export interface PhaseSummary {
	mean: number;
	p50: number;
	p99: number;
}

export interface WriteProfile {
	writes: number;
	/** Per phase, ms per write. `other` is the rest: the WriteTx wrapper, parameter encoding, the event, ... */
	phasesMs: Record<Phase, PhaseSummary>;
	total: PhaseSummary;
	/** Mean ms per phase over the slowest 1% of the profiled writes: what a tail write is made of. */
	slowestOnePercentMs: Record<Phase, number>;
}

interface Patchable {
	writeSync: typeof fs.writeSync;
	fdatasyncSync: typeof fs.fdatasyncSync;
}

interface PatchableJournal {
	encodeRecord: typeof journal.encodeRecord;
}

function zero(): PhaseTimes {
	return { begin: 0, statements: 0, encode: 0, writeSync: 0, fdatasync: 0, commit: 0, other: 0 };
}

/** Times each phase of the writes done inside `measure`, and puts every wrapped function back in `dispose`. */
export class WriteProfiler {
	private current: PhaseTimes = zero();
	private readonly samples: { phases: PhaseTimes; total: number }[] = [];
	private active = false;
	private readonly restore: (() => void)[] = [];

	constructor(SQL: SqlJsStatic) {
		const proto = SQL.Database.prototype;
		const exec = proto.exec;
		const run = proto.run;
		// The prototype wrappers need sql.js's `this`, so they reach the profiler through this arrow.
		const add = (phase: Phase, ms: number): void => this.add(phase, ms);
		proto.exec = function (this: Database, sql: string, params?: Parameters<Database['exec']>[1]) {
			const t0 = nowMs();
			try {
				return exec.call(this, sql, params);
			} finally {
				add(sql === 'BEGIN' ? 'begin' : sql === 'COMMIT' ? 'commit' : 'other', nowMs() - t0);
			}
		};
		proto.run = function (this: Database, sql: string, params?: Parameters<Database['run']>[1]) {
			const t0 = nowMs();
			try {
				return run.call(this, sql, params);
			} finally {
				add('statements', nowMs() - t0);
			}
		};
		this.restore.push(() => {
			proto.exec = exec;
			proto.run = run;
		});

		const j = journal as PatchableJournal;
		const encodeRecord = j.encodeRecord;
		j.encodeRecord = (record) => {
			const t0 = nowMs();
			try {
				return encodeRecord(record);
			} finally {
				this.add('encode', nowMs() - t0);
			}
		};
		this.restore.push(() => {
			j.encodeRecord = encodeRecord;
		});

		const f = fs as Patchable;
		const writeSync = f.writeSync;
		const fdatasyncSync = f.fdatasyncSync;
		f.writeSync = ((...args: Parameters<typeof fs.writeSync>) => {
			const t0 = nowMs();
			try {
				return (writeSync as (...a: Parameters<typeof fs.writeSync>) => number)(...args);
			} finally {
				this.add('writeSync', nowMs() - t0);
			}
		}) as typeof fs.writeSync;
		f.fdatasyncSync = (fd: number) => {
			const t0 = nowMs();
			try {
				fdatasyncSync(fd);
			} finally {
				this.add('fdatasync', nowMs() - t0);
			}
		};
		this.restore.push(() => {
			f.writeSync = writeSync;
			f.fdatasyncSync = fdatasyncSync;
		});
	}

	private add(phase: Phase, ms: number): void {
		if (this.active) {
			this.current[phase] += ms;
		}
	}

	/** Runs one write and records its phases. */
	measure(write: () => void): void {
		this.current = zero();
		this.active = true;
		const t0 = nowMs();
		try {
			write();
		} finally {
			this.active = false;
		}
		const total = nowMs() - t0;
		const known = phases.filter((p) => p !== 'other').reduce((s, p) => s + this.current[p], 0);
		this.current.other += Math.max(0, total - known);
		this.samples.push({ phases: this.current, total });
	}

	/** Whether the wrappers saw the calls (if not, the compiled code no longer goes through them). */
	get sawJournalCalls(): boolean {
		return this.samples.some((s) => s.phases.fdatasync > 0 && s.phases.encode > 0);
	}

	result(): WriteProfile {
		const sum = (values: number[]): PhaseSummary => ({
			mean: round(values.reduce((a, b) => a + b, 0) / Math.max(1, values.length), 4),
			p50: round(percentile(values, 50), 4),
			p99: round(percentile(values, 99), 4),
		});
		const phasesMs = {} as Record<Phase, PhaseSummary>;
		const slowestOnePercentMs = {} as Record<Phase, number>;
		const slow = [...this.samples].sort((a, b) => b.total - a.total).slice(0, Math.max(1, Math.ceil(this.samples.length / 100)));
		for (const p of phases) {
			phasesMs[p] = sum(this.samples.map((s) => s.phases[p]));
			slowestOnePercentMs[p] = round(slow.reduce((a, s) => a + s.phases[p], 0) / slow.length, 4);
		}
		return { writes: this.samples.length, phasesMs, total: sum(this.samples.map((s) => s.total)), slowestOnePercentMs };
	}

	dispose(): void {
		for (const r of this.restore.splice(0).reverse()) {
			r();
		}
	}
}

/** Splits `encodeRecord` of one record into its two parts, JSON (stringify + UTF-8) and CRC-32, in ms per call. */
export function encodeSplit(record: journal.JournalRecord, iterations = 2000): { jsonMs: number; crcMs: number; encodeRecordMs: number } {
	const time = (fn: () => void): number => {
		for (let i = 0; i < 100; i++) {
			fn(); // warm-up for the JIT
		}
		const t0 = nowMs();
		for (let i = 0; i < iterations; i++) {
			fn();
		}
		return round((nowMs() - t0) / iterations, 5);
	};
	const payload = Buffer.from(JSON.stringify(record), 'utf8');
	return {
		jsonMs: time(() => Buffer.from(JSON.stringify(record), 'utf8')),
		crcMs: time(() => crc32(payload)),
		encodeRecordMs: time(() => journal.encodeRecord(record)),
	};
}
