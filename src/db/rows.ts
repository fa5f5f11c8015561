import type { Database, SqlValue as SqlJsValue } from 'sql.js';

/** Runs a query on a sql.js database and returns its rows as objects (the statement is always freed). */
export function allRows<T>(db: Database, sql: string, params: readonly (string | number | null | Uint8Array)[] = []): T[] {
	const stmt = db.prepare(sql);
	try {
		stmt.bind(params as SqlJsValue[]);
		const rows: T[] = [];
		while (stmt.step()) {
			rows.push(stmt.getAsObject() as T);
		}
		return rows;
	} finally {
		stmt.free();
	}
}
