import type { Database, SqlValue as SqlJsValue, Statement } from 'sql.js';

type Params = readonly (string | number | null | Uint8Array)[];

/** Runs a query on a sql.js database and returns its rows as objects (the statement is always freed). */
export function allRows<T>(db: Database, sql: string, params: Params = []): T[] {
	const stmt = db.prepare(sql);
	try {
		return stepAll<T>(stmt, params);
	} finally {
		stmt.free();
	}
}

/**
 * Rows as objects, the column names read once per query: sql.js's `getAsObject` reads them from SQLite
 * again for every row (a string decoded per column per row), which made reading a chat of 10,000 rows three
 * times slower than reading its values. A later column of the same name wins, as with `getAsObject`.
 */
function stepAll<T>(stmt: Statement, params: Params): T[] {
	stmt.bind(params as SqlJsValue[]);
	const rows: T[] = [];
	let names: string[] | undefined;
	while (stmt.step()) {
		names ??= stmt.getColumnNames();
		const values = stmt.get();
		const row: Record<string, SqlJsValue> = {};
		for (let i = 0; i < names.length; i++) {
			row[names[i]!] = values[i]!;
		}
		rows.push(row as T);
	}
	return rows;
}

/**
 * Prepared statements kept by their SQL text, least recently used dropped past `capacity`. Preparing is most
 * of a small write's cost in sql.js: SQLite compiles a table's triggers into every statement that fires them
 * (a streamed message's upsert: about 0.4 ms prepared each time, 0.13 ms prepared once). A statement is
 * reset after every use, also when it throws, so none holds a read open across a transaction boundary.
 * SQLite re-prepares a kept statement by itself when the schema changed under it.
 */
export class StatementCache {
	private readonly statements = new Map<string, Statement>();

	constructor(
		private readonly db: Database,
		private readonly capacity = 256,
	) {}

	/** Runs a statement that returns no rows. */
	run(sql: string, params: Params = []): void {
		const stmt = this.statement(sql);
		try {
			stmt.bind(params as SqlJsValue[]);
			stmt.step();
		} finally {
			stmt.reset();
		}
	}

	all<T>(sql: string, params: Params = []): T[] {
		const stmt = this.statement(sql);
		try {
			return stepAll<T>(stmt, params);
		} finally {
			stmt.reset();
		}
	}

	/** Frees every kept statement (before the database closes, or to start over). */
	clear(): void {
		for (const stmt of this.statements.values()) {
			stmt.free();
		}
		this.statements.clear();
	}

	private statement(sql: string): Statement {
		let stmt = this.statements.get(sql);
		if (stmt) {
			// Most recently used last: a Map iterates in insertion order, so the first key is the one to drop.
			this.statements.delete(sql);
		} else {
			stmt = this.db.prepare(sql);
			if (this.statements.size >= this.capacity) {
				const [oldestSql, oldest] = this.statements.entries().next().value as [string, Statement];
				this.statements.delete(oldestSql);
				oldest.free();
			}
		}
		this.statements.set(sql, stmt);
		return stmt;
	}
}
