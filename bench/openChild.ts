/**
 * One open in a fresh process, as a window's start does it once: `node openChild.js <plain|store> <dir> <wasm>`.
 * sql.js is loaded (and its wasm compiled) before the clock starts, for both; prints the milliseconds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nullLogger } from '../src/common/log';
import { loadSqlJs } from '../src/db/sqlJs';
import { Store, storeFiles } from '../src/db/store';

async function main(): Promise<void> {
	const [mode, dir, wasmPath] = process.argv.slice(2) as [string, string, string];
	const SQL = await loadSqlJs(wasmPath);
	const t0 = performance.now();
	if (mode === 'plain') {
		// As sql.js documents it for Node: the file's Buffer, handed over.
		const db = new SQL.Database(fs.readFileSync(path.join(dir, storeFiles.snapshot)));
		db.exec('SELECT 1');
		process.stdout.write(String(performance.now() - t0));
		db.close();
	} else {
		const store = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench-cold-open' });
		process.stdout.write(String(performance.now() - t0));
		await store.close();
	}
}

main().catch((e) => {
	process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
	process.exit(1);
});
