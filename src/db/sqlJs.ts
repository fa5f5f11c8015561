import initSqlJs, { type SqlJsStatic } from 'sql.js';

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
