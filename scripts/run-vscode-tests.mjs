#!/usr/bin/env node
// Integration tests inside a real VS Code: code-server's remote Node extension host loads this repository as
// the development extension and runs out/test/integration/index.js (Recipe A of ../shared/docs/vscode-e2e.md).
//
// Expects dist/ (node esbuild.mjs) and out/ (npx tsc -p tsconfig.test.json) to be built.
// The suite runs three times against the same user data and workspace, each time in a fresh code-server and
// Chromium: E2E_PHASE=write, then E2E_PHASE=verify, which proves state survives a restart, then
// E2E_PHASE=damaged after the runner folded the store and truncated its database file, which proves a damaged
// database is reported and the sessions are rebuilt from git. The write phase ends with a hard kill (SIGKILL
// as soon as its results are written, before VS Code can deactivate the extension), so the verify phase must
// also take over the stale store lock; the later phases end with a normal shutdown, which must release it.
// While a phase runs, tests inside VS Code can read the workbench's DOM (the notification center: toasts
// are off under the smoke-test driver) through a folder of request and response files, E2E_PROBE_DIR.
// Writes .test-output/integration.json and exits non-zero on any failure or missing result.
// AGENT_TABS_KEEP_RUN=1 keeps the run folder (it is always kept after a failure).
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { format } from 'node:util';
import {
	assertInstalled,
	createGitRepo,
	freePort,
	hermeticEnv,
	indent,
	isNoise,
	launchChromium,
	prepareProfile,
	repoRoot,
	seconds,
	sleep,
	startCodeServer,
	withTimeout,
} from './lib/codeServer.mjs';

const phaseTimeoutMs = Number(process.env.AGENT_TABS_PHASE_TIMEOUT_MS || 120_000);
const testsEntry = path.join(repoRoot, 'out', 'test', 'integration', 'index.js');
const outputDir = path.join(repoRoot, '.test-output');

for (const [file, build] of [
	[path.join(repoRoot, 'dist', 'extension.js'), 'node esbuild.mjs'],
	[testsEntry, 'npx tsc -p tsconfig.test.json'],
]) {
	if (!fs.existsSync(file)) {
		fail(`${path.relative(repoRoot, file)} is missing: run \`${build}\` first.`);
	}
}
try {
	assertInstalled();
} catch (e) {
	fail(e.message);
}

const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-it-'));
const dirs = prepareProfile(runDir);
const workspace = createGitRepo(path.join(runDir, 'workspace'));
// The tests' temporary folders (worktrees of throwaway sessions) go inside the run folder, and with it.
const tmpDir = path.join(runDir, 'tmp');
fs.mkdirSync(tmpDir);
const env = hermeticEnv(runDir, { TMPDIR: tmpDir });
// One port for both phases: the workspace storage folder is keyed by the folder's vscode-remote URI, whose
// authority includes the port, so another port would be another storage folder.
const port = await freePort();
const marker = `e2e-session-${randomUUID()}`;
const logFile = path.join(runDir, 'vscode.log');
const totals = { passed: 0, failed: 0, skipped: 0 };
const started = Date.now();

for (const phase of ['write', 'verify', 'damaged']) {
	if (phase === 'damaged') {
		damageStore();
	}
	const t0 = Date.now();
	const outcome = await runPhase(phase);
	const { result } = outcome;
	const tag = `[${phase}]`;
	if (result) {
		for (const t of result.tests) {
			report(t.state, `${tag} ${t.title}`, false);
		}
		for (const f of result.failures) {
			process.stdout.write(`\n  ✘ ${tag} ${f.title}\n${indent(f.error, '      ')}\n\n`);
		}
		totals.passed += result.passed;
		totals.failed += result.failed;
		totals.skipped += result.skipped;
		process.stdout.write(
			`  ${tag} VS Code ${result.vscodeVersion}, remote ${result.remoteName}, ui ${result.uiKind}, extension host pid ${result.pid}; ` +
				`${outcome.exitCode === undefined ? 'killed' : `exit ${outcome.exitCode}`}, ${seconds(Date.now() - t0)}\n`,
		);
	}
	if (outcome.error || !result || (outcome.exitCode !== undefined && outcome.exitCode !== 0 && result.failed === 0)) {
		// The run itself broke (hang, crash, no result file): count it as one failure.
		report('failed', `${tag} ${outcome.error ?? `no usable result (exit code ${outcome.exitCode})`}; log: ${logFile}`);
		break;
	}
	checkLock(phase, result);
}

fs.mkdirSync(outputDir, { recursive: true });
fs.writeFileSync(path.join(outputDir, 'integration.json'), JSON.stringify({ layer: 'integration', ...totals }));
process.stdout.write(`\nintegration: ${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped (${seconds(Date.now() - started)})\n`);
if (totals.failed > 0 || process.env.AGENT_TABS_KEEP_RUN) {
	process.stdout.write(`run folder kept: ${runDir}\n`);
} else {
	fs.rmSync(runDir, { recursive: true, force: true });
}
process.exit(totals.failed > 0 ? 1 : 0);

/**
 * One fresh code-server + Chromium running the suite once; never throws. The write phase is killed hard as
 * soon as its result file is complete; the verify phase ends normally (VS Code reports the exit code).
 */
async function runPhase(phase) {
	const resultFile = path.join(runDir, `result-${phase}.json`);
	const hardKill = phase === 'write';
	const log = (line) => fs.appendFileSync(logFile, `[${phase}] ${line}\n`);
	const probeDir = fs.mkdtempSync(path.join(runDir, `probe-${phase}-`));
	let answering;
	let server;
	let browser;
	let exitCode;
	let error;
	let result;
	try {
		server = await startCodeServer({
			dirs,
			workspace,
			port,
			// Inherited by the extension host, where the tests read them.
			env: { ...env, E2E_PHASE: phase, E2E_MARKER: marker, E2E_RESULT_FILE: resultFile, E2E_USER_DATA_DIR: dirs.userDataDir, E2E_PROBE_DIR: probeDir },
			// Without it a built VS Code ignores the test payload and just opens the workbench.
			vscodeOptions: ['enable-smoke-test-driver'],
			log,
		});
		browser = await launchChromium({ profileDir: path.join(runDir, `chromium-${phase}`), env });
		const page = browser.pages()[0] ?? (await browser.newPage());
		// Both must be exposed before the workbench loads.
		const exited = new Promise((resolve) => void page.exposeFunction('codeAutomationExit', (code) => resolve(code)));
		await page.exposeFunction('codeAutomationLog', (type, args) => {
			const line = format(...(Array.isArray(args) ? args : [args]));
			if (!isNoise(line)) {
				log(`${type}: ${line}`);
			}
		});
		const payload = [
			['extensionDevelopmentPath', server.remoteUri(repoRoot)],
			['extensionTestsPath', server.remoteUri(testsEntry)],
			['skipWelcome', 'true'],
			['skipReleaseNotes', 'true'],
		];
		await page.goto(`${server.origin}/?folder=${encodeURIComponent(workspace)}&payload=${encodeURIComponent(JSON.stringify(payload))}`);
		answering = answerProbes(page, probeDir, log);
		const timeout = `the tests did not finish within ${phaseTimeoutMs / 1000} s`;
		if (hardKill) {
			result = await withTimeout(pollResult(resultFile, Date.now() + phaseTimeoutMs), phaseTimeoutMs, timeout);
			server.killNow();
		} else {
			exitCode = await withTimeout(exited, phaseTimeoutMs, timeout);
			// VS Code reports the exit code while the extension host is still deactivating: let it finish
			// (that is when the store writes its last checkpoint and releases its lock) before code-server goes.
			result = readJson(resultFile);
			if (result && !(await pidExited(result.pid, 15_000))) {
				log(`the extension host (pid ${result.pid}) was still running 15 s after the tests ended`);
			}
		}
	} catch (e) {
		error = e instanceof Error ? e.message : String(e);
	} finally {
		answering?.stop();
		await browser?.close().catch(() => undefined);
		await server?.stop();
	}
	result ??= readJson(resultFile);
	return { exitCode, error, result };
}

/**
 * Answers the DOM questions of the tests inside VS Code: `<id>.request.json` holds `{ selector }`, and
 * `<id>.response.json` gets the text of every element matching it (written whole, by a rename).
 */
function answerProbes(page, dir, log) {
	let stopped = false;
	const answered = new Set();
	const loop = async () => {
		while (!stopped) {
			for (const name of fs.readdirSync(dir)) {
				const id = name.endsWith('.request.json') ? name.slice(0, -'.request.json'.length) : undefined;
				const request = id && !answered.has(id) ? readJson(path.join(dir, name)) : undefined;
				if (!request) {
					continue;
				}
				answered.add(id);
				const response = await page
					.locator(request.selector)
					.evaluateAll((elements) => elements.map((e) => e.textContent ?? ''))
					.then((texts) => ({ texts }), (e) => ({ error: String(e) }));
				const target = path.join(dir, `${id}.response.json`);
				fs.writeFileSync(`${target}.tmp`, JSON.stringify(response));
				fs.renameSync(`${target}.tmp`, target);
			}
			await sleep(50);
		}
	};
	loop().catch((e) => log(`probe answering stopped: ${e}`));
	return { stop: () => void (stopped = true) };
}

/**
 * Between the verify and the damaged phase: everything folded into agent-tabs.sqlite (as a long-lived state
 * folder has it, so the journal cannot bring anything back) with the store's own code, then that file cut in
 * half. Only git still knows the sessions.
 */
function damageStore() {
	const stateDir = stateDirs()[0];
	if (!stateDir) {
		return; // the verify phase reports the missing state folder
	}
	const folder = spawnSync(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'foldingWriter.js'), stateDir, path.join(repoRoot, 'dist', 'sql-wasm.wasm'), '1', '0', 'fold'], {
		encoding: 'utf8',
	});
	if (folder.status !== 0) {
		process.stdout.write(`  ✘ [runner] folding the store before damaging it failed: ${folder.stderr}\n`);
		totals.failed++;
	}
	const file = path.join(stateDir, 'agent-tabs.sqlite');
	fs.truncateSync(file, Math.floor(fs.statSync(file).size / 2));
	process.stdout.write(`  · [runner] ${file} folded and cut to half its size\n`);
}

function stateDirs() {
	const storage = path.join(dirs.userDataDir, 'User', 'workspaceStorage');
	return fs.existsSync(storage)
		? fs.readdirSync(storage).map((d) => path.join(storage, d, 'agent-tabs.agent-tabs')).filter((d) => fs.existsSync(d))
		: [];
}

async function pollResult(file, deadline) {
	while (Date.now() < deadline) {
		const r = readJson(file); // undefined while missing or half written
		if (r) {
			return r;
		}
		await sleep(25);
	}
	return undefined;
}

async function pidExited(pid, timeoutMs) {
	const deadline = Date.now() + timeoutMs;
	while (Date.now() < deadline) {
		try {
			process.kill(pid, 0);
		} catch {
			return true;
		}
		await sleep(50);
	}
	return false;
}

/** Runner-side checks of the store lock between and after the phases. */
function checkLock(phase, result) {
	const found = stateDirs();
	if (phase !== 'write') {
		report(found.length === 1 ? 'passed' : 'failed', `[runner] the phases up to ${phase} used one state folder (found ${found.length})`);
	}
	const lockFile = found.length === 1 ? path.join(found[0], 'agent-tabs.lock') : undefined;
	const lock = lockFile && readJson(lockFile);
	if (phase === 'write') {
		// Not counted: it depends on winning a race with VS Code's own shutdown, and only says which path ran.
		process.stdout.write(
			lock?.pid === result.pid
				? `  · [runner] the killed extension host left a stale lock (pid ${lock.pid}): the verify phase must take it over\n`
				: '  · [runner] the extension host released the lock before the kill: the stale-lock takeover was not exercised\n',
		);
	} else {
		const held = lockFile !== undefined && fs.existsSync(lockFile);
		report(lockFile && !held ? 'passed' : 'failed', `[runner] a normal shutdown released the store lock (${phase})${held ? ` (still held: ${JSON.stringify(lock)})` : ''}`);
	}
}

function report(state, title, count = true) {
	process.stdout.write(`  ${{ passed: '✔', failed: '✘', skipped: '-' }[state]} ${title}${state === 'skipped' ? ' (skipped)' : ''}\n`);
	if (count) {
		totals[state]++;
	}
}

function readJson(file) {
	try {
		return JSON.parse(fs.readFileSync(file, 'utf8'));
	} catch {
		return undefined;
	}
}

function fail(message) {
	process.stderr.write(`${message}\n`);
	fs.mkdirSync(outputDir, { recursive: true });
	fs.writeFileSync(path.join(outputDir, 'integration.json'), JSON.stringify({ layer: 'integration', passed: 0, failed: 1, skipped: 0 }));
	process.exit(1);
}
