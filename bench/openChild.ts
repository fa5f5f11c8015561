/**
 * One open in a fresh process, as a window's start does it once: `node openChild.js <plain|store> <dir> <wasm>`.
 * sql.js is loaded (and its wasm compiled) before the clock starts, for both; prints the milliseconds.
 * `plainLoad` is the baseline the store bench also uses in its own process.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Database, SqlJsStatic } from 'sql.js';
import { nullLogger } from '../src/common/log';
import { loadSqlJs } from '../src/db/sqlJs';
import { Store, storeFiles } from '../src/db/store';

/** A plain load as sql.js documents it for Node: read the file, hand its Buffer to `new SQL.Database`. */
export function plainLoad(SQL: SqlJsStatic, file: string): Database {
	const db = new SQL.Database(fs.readFileSync(file));
	db.exec('SELECT 1');
	return db;
}

async function main(): Promise<void> {
	const [mode, dir, wasmPath] = process.argv.slice(2) as [string, string, string];
	const SQL = await loadSqlJs(wasmPath);
	const t0 = performance.now();
	if (mode === 'plain') {
		const db = plainLoad(SQL, path.join(dir, storeFiles.snapshot));
		process.stdout.write(String(performance.now() - t0));
		db.close();
	} else {
		const store = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench-cold-open' });
		process.stdout.write(String(performance.now() - t0));
		await store.close();
	}
}

if (require.main === module) {
	main().catch((e) => {
		process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
		process.exit(1);
	});
}
