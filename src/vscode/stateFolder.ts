import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * The state folder of a window: the extension's workspace storage, but always the workspace's own one. VS Code
 * gives an extension host `<workspace id>-1` (then `-2` …) when another live host holds `<workspace id>`; after a
 * browser refresh of a remote window the old host lives on for the reconnection grace, so the new window would
 * otherwise open an empty database beside the real one. The lock and handover of the store itself
 * (db/handover.ts) then decide which process writes.
 */
export function canonicalStateDir(storageDir: string): string {
	const workspaceDir = path.dirname(storageDir);
	const suffixed = /^(.+)-\d+$/.exec(path.basename(workspaceDir));
	if (!suffixed) {
		return storageDir;
	}
	const base = path.join(path.dirname(workspaceDir), suffixed[1]!);
	// Only a folder VS Code made for the same workspace (it writes meta.json there), not a look-alike name.
	return fs.existsSync(path.join(base, 'meta.json')) ? path.join(base, path.basename(storageDir)) : storageDir;
}
