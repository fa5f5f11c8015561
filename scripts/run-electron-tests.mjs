#!/usr/bin/env node
// `npm run test:electron`: the same integration suite (out/test/integration/index.js) in desktop VS Code,
// through @vscode/test-electron. It downloads VS Code (VSCODE_VERSION, default stable) into the test cache,
// so it needs the internet, unlike scripts/run-vscode-tests.mjs (code-server, offline). On Linux without a
// display run it under `xvfb-run -a`.
//
// Expects dist/ (node esbuild.mjs) and out/ (npx tsc -p tsconfig.test.json) to be built. Like the
// code-server runner it runs the suite twice against one user data folder and workspace (E2E_PHASE=write,
// then verify), so the reload test runs here too; VS Code quits normally between the phases.
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runTests } from '@vscode/test-electron';
import { cacheDir, createGitRepo, repoRoot } from './lib/codeServer.mjs';

const testsEntry = path.join(repoRoot, 'out', 'test', 'integration', 'index.js');
for (const [file, build] of [
	[path.join(repoRoot, 'dist', 'extension.js'), 'node esbuild.mjs'],
	[testsEntry, 'npx tsc -p tsconfig.test.json'],
]) {
	if (!fs.existsSync(file)) {
		process.stderr.write(`${path.relative(repoRoot, file)} is missing: run \`${build}\` first.\n`);
		process.exit(1);
	}
}
if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
	process.stderr.write('No display: if VS Code fails to start, run this under `xvfb-run -a`.\n');
}

const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-electron-'));
const userDataDir = path.join(runDir, 'user-data');
const workspace = createGitRepo(path.join(runDir, 'workspace'));
const marker = `e2e-session-${randomUUID()}`;
let failed = 0;

for (const phase of ['write', 'verify']) {
	const resultFile = path.join(runDir, `result-${phase}.json`);
	let exitedBadly = false;
	try {
		await runTests({
			version: process.env.VSCODE_VERSION || 'stable',
			cachePath: cacheDir,
			extensionDevelopmentPath: repoRoot,
			extensionTestsPath: testsEntry,
			extensionTestsEnv: { E2E_PHASE: phase, E2E_MARKER: marker, E2E_RESULT_FILE: resultFile, E2E_USER_DATA_DIR: userDataDir },
			// The workspace first (VS Code opens it); other extensions off so only ours is tested.
			launchArgs: [workspace, '--disable-extensions', '--disable-workspace-trust', `--user-data-dir=${userDataDir}`, `--extensions-dir=${path.join(runDir, 'extensions')}`],
		});
	} catch (e) {
		process.stdout.write(`  ✘ [${phase}] VS Code exited with a failure: ${e instanceof Error ? e.message : String(e)}\n`);
		exitedBadly = true;
	}
	let result;
	try {
		result = JSON.parse(fs.readFileSync(resultFile, 'utf8'));
	} catch {
		process.stdout.write(`  ✘ [${phase}] the suite wrote no result file\n`);
		failed++;
		continue;
	}
	for (const t of result.tests) {
		process.stdout.write(`  ${{ passed: '✔', failed: '✘', skipped: '-' }[t.state]} [${phase}] ${t.title}\n`);
	}
	for (const f of result.failures) {
		process.stdout.write(`\n  ✘ [${phase}] ${f.title}\n${f.error}\n\n`);
	}
	process.stdout.write(`  [${phase}] VS Code ${result.vscodeVersion}: ${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped\n`);
	// A bad exit with no failed test (a crash after the suite, say) still fails the run.
	failed += result.failed || (exitedBadly ? 1 : 0);
}

if (failed === 0) {
	fs.rmSync(runDir, { recursive: true, force: true });
} else {
	process.stdout.write(`run folder kept: ${runDir}\n`);
}
process.exit(failed > 0 ? 1 : 0);
