import type { Database } from 'sql.js';
import { AgentTabsError } from '../../common/errors';
import type { Logger } from '../../common/log';
import { allRows } from '../rows';
import { earlierLayout } from './m0001EarlierLayout';
import { chatKeyedAgentSessions } from './m0002ChatKeyedAgentSessions';
import { sessionRepoRoot } from './m0003SessionRepoRoot';
import { worktreeIntentStates } from './m0004WorktreeIntentStates';

/** One schema step. `up` runs inside a transaction with foreign keys off, and must be idempotent. */
export interface Migration {
	version: number;
	name: string;
	up(db: MigrationDb): void;
}

/** The part of sql.js a migration uses. */
export interface MigrationDb {
	exec(sql: string): void;
	/** Rows of a query as objects. */
	all<T = Record<string, unknown>>(sql: string): T[];
	count(sql: string): number;
}

/** Every migration, in order. The history starts at the layout of the system Agent Tabs replaces. */
export const migrations: readonly Migration[] = [earlierLayout, chatKeyedAgentSessions, sessionRepoRoot, worktreeIntentStates];

export const latestVersion = migrations[migrations.length - 1]!.version;

export interface MigrationOutcome {
	from: number;
	to: number;
	applied: string[];
}

/** What a migration's backfill could not account for. Any non-zero count aborts it. */
export type GateCounts = Record<string, number>;

/**
 * A migration moved data and then found rows it could not map. It was rolled back; nothing on disk changed.
 */
export class MigrationGateError extends AgentTabsError {
	constructor(
		readonly migration: string,
		readonly counts: GateCounts,
	) {
		const found = Object.entries(counts)
			.filter(([, n]) => n > 0)
			.map(([what, n]) => `${n} ${what}`)
			.join(', ');
		super('store/migrationGate', `The database upgrade "${migration}" could not account for every existing row (${found}). It was rolled back and the database file was left untouched.`);
	}
}

/** Throws `MigrationGateError` when any count is non-zero. Migrations call this after their backfill. */
export function verifyBackfill(migration: string, counts: GateCounts): void {
	if (Object.values(counts).some((n) => n !== 0)) {
		throw new MigrationGateError(migration, counts);
	}
}

function wrap(db: Database): MigrationDb {
	const all = <T>(sql: string): T[] => allRows<T>(db, sql);
	return {
		exec: (sql) => {
			db.exec(sql);
		},
		all,
		count: (sql) => Number(Object.values(all<Record<string, unknown>>(sql)[0] ?? { n: 0 })[0]),
	};
}

export function userVersion(db: Database): number {
	return Number(db.exec('PRAGMA user_version')[0]?.values[0]?.[0] ?? 0);
}

/**
 * Brings `db` to the latest schema, one migration per transaction. Foreign keys are switched off while a
 * step rebuilds tables (SQLite ignores that pragma inside a transaction, hence around it) and
 * `foreign_key_check` must come back empty before the step commits.
 */
export function migrate(db: Database, logger: Logger): MigrationOutcome {
	const from = userVersion(db);
	if (from > latestVersion) {
		throw new AgentTabsError(
			'store/tooNew',
			`The Agent Tabs database has schema version ${from}, newer than this version knows (${latestVersion}). Update Agent Tabs; the file was left untouched.`,
		);
	}
	const applied: string[] = [];
	const mdb = wrap(db);
	for (const m of migrations) {
		if (m.version <= userVersion(db)) {
			continue;
		}
		db.exec('PRAGMA foreign_keys = OFF');
		db.exec('BEGIN');
		try {
			m.up(mdb);
			const violations = mdb.all<{ table: string; parent: string }>('PRAGMA foreign_key_check');
			if (violations.length > 0) {
				const byTable: GateCounts = {};
				for (const v of violations) {
					const key = `rows of ${v.table} pointing at missing ${v.parent}`;
					byTable[key] = (byTable[key] ?? 0) + 1;
				}
				throw new MigrationGateError(m.name, byTable);
			}
			db.exec(`PRAGMA user_version = ${m.version}`);
			db.exec('COMMIT');
			applied.push(m.name);
			logger.info(`[Store][migrate] applied ${m.version} ${m.name}`);
		} catch (e) {
			db.exec('ROLLBACK');
			logger.error(`[Store][migrate] ${m.version} ${m.name} failed and was rolled back: ${e instanceof Error ? e.message : String(e)}`);
			throw e;
		} finally {
			db.exec('PRAGMA foreign_keys = ON');
		}
	}
	return { from, to: userVersion(db), applied };
}
