import type { Database } from 'sql.js';
import { AgentTabsError } from '../../common/errors';
import type { Logger } from '../../common/log';
import { allRows } from '../rows';
import { earlierLayout } from './m0001EarlierLayout';
import { chatKeyedAgentSessions } from './m0002ChatKeyedAgentSessions';
import { sessionRepoRoot } from './m0003SessionRepoRoot';
import { worktreeIntentStates } from './m0004WorktreeIntentStates';
import { taskDispatch } from './m0005TaskDispatch';
import { chatRowSeq } from './m0006ChatRowSeq';
import { chatNotices } from './m0007ChatNotices';
import { agentSettings } from './m0008AgentSettings';
import { MigrationGateError, type GateCounts, type Migration, type MigrationDb } from './migration';

export { MigrationGateError, type GateCounts, type Migration } from './migration';

/** Every migration, in order. The history starts at the layout of the system Agent Tabs replaces. */
export const migrations: readonly Migration[] = [earlierLayout, chatKeyedAgentSessions, sessionRepoRoot, worktreeIntentStates, taskDispatch, chatRowSeq, chatNotices, agentSettings];

export const latestVersion = migrations[migrations.length - 1]!.version;

export interface MigrationOutcome {
	from: number;
	to: number;
	applied: string[];
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
	if (from === latestVersion) {
		return { from, to: from, applied }; // the usual open: one pragma, not one per migration
	}
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
