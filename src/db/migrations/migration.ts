import { AgentTabsError } from '../../common/errors';

// The contract between the migration runner (`index.ts`) and the numbered steps (`m000N*.ts`): the steps
// import only this file, so the runner can list them without an import cycle.

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
