import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

/** Writes `<dir>/<folder>/git`, a shell script whose body is made from the real git's path; returns the folder. */
export function writeGitShim(dir: string, folder: string, body: (realGit: string) => string): string {
	const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
	const bin = path.join(dir, folder);
	fs.mkdirSync(bin, { recursive: true });
	fs.writeFileSync(path.join(bin, 'git'), `#!/bin/sh\n${body(realGit)}`, { mode: 0o755 });
	return bin;
}

/**
 * A `git` earlier on PATH that runs the real git, except: the subcommand named in AGENT_TABS_SHIM_FAIL
 * fails as git fails (message on stderr, exit 128), and after the subcommand named in
 * AGENT_TABS_SHIM_TOUCH_AFTER it appends a line to the file AGENT_TABS_SHIM_TOUCH_FILE (a write landing
 * in the middle of a save). Works as root, where read-only folders do not stop anything.
 */
export function installGitShim(dir: string): { path: string; env(extra: Record<string, string>, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv } {
	const bin = writeGitShim(
		dir,
		'git-shim-bin',
		(realGit) => `if [ -n "$AGENT_TABS_SHIM_FAIL" ] && [ "$1" = "$AGENT_TABS_SHIM_FAIL" ]; then
	echo "fatal: unable to write $1 object (injected failure)" >&2
	exit 128
fi
if [ -n "$AGENT_TABS_SHIM_TOUCH_AFTER" ] && [ "$1" = "$AGENT_TABS_SHIM_TOUCH_AFTER" ]; then
	"${realGit}" "$@" || exit $?
	echo "written during the save" >> "$AGENT_TABS_SHIM_TOUCH_FILE"
	exit 0
fi
exec "${realGit}" "$@"
`,
	);
	return {
		path: bin,
		env: (extra, base) => ({ ...base, ...extra, PATH: `${bin}${path.delimiter}${base.PATH ?? process.env.PATH ?? ''}` }),
	};
}
