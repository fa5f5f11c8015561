import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Makes a folder and the folders on its way (`mkdir -p`), failing with the real reason. Node's recursive
 * mkdir reports ENOENT ("no such file or directory") for a folder on a read-only file system, whose reason is
 * EROFS; making each missing folder in turn gives EROFS, EACCES, ENOSPC, or EEXIST/ENOTDIR for a file on the way.
 */
export function makeFolders(dir: string): void {
	const missing: string[] = [];
	for (let p = path.resolve(dir); ; p = path.dirname(p)) {
		let stat: fs.Stats | undefined;
		try {
			stat = fs.statSync(p);
		} catch (e) {
			if ((e as NodeJS.ErrnoException).code !== 'ENOENT') {
				throw e;
			}
		}
		if (stat?.isDirectory()) {
			break;
		}
		// Missing, or a file (mkdir then says EEXIST).
		missing.push(p);
		if (stat || path.dirname(p) === p) {
			break;
		}
	}
	for (const p of missing.reverse()) {
		try {
			fs.mkdirSync(p);
		} catch (e) {
			// Made meanwhile by another process: fine when it is a folder.
			if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(p).isDirectory()) {
				throw e;
			}
		}
	}
}
