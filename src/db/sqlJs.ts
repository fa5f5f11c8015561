import initSqlJs, { type Database, type SqlJsStatic } from 'sql.js';

const loaded = new Map<string, Promise<SqlJsStatic>>();

/**
 * Loads sql.js once per wasm file. The wasm path is always passed in: the extension ships it in `dist/`,
 * tests and benchmarks use the copy in `node_modules`.
 */
export function loadSqlJs(wasmPath: string): Promise<SqlJsStatic> {
	let p = loaded.get(wasmPath);
	if (!p) {
		p = initSqlJs({ locateFile: () => wasmPath });
		loaded.set(wasmPath, p);
		p.catch(() => loaded.delete(wasmPath));
	}
	return p;
}

/**
 * Opens a database file's bytes in sql.js without copying them: its in-memory file system takes
 * `bytes.slice()` of what it is given, and a Node Buffer's `slice` is a view, so the database keeps this
 * memory instead of a copy (a plain Uint8Array would be copied whole: the time of a second read of the
 * file, and the database twice in memory until the first is collected). The buffer belongs to the
 * database from then on: its writes change it, so the caller never reads it again.
 */
export function openDatabaseInPlace(SQL: SqlJsStatic, bytes: Buffer): Database {
	return new SQL.Database(bytes);
}
