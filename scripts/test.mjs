#!/usr/bin/env node
// `npm test`: every layer, in the order copilot-chat's CI uses (types, lint, build, unit, integration, UI),
// then one closing line `N passed, N failed, N skipped` counting every test of every layer.
// AGENT_TABS_TEST_LAYERS=unit,integration,e2e picks layers (default: all).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(root);
const outputDir = path.join(root, '.test-output');
fs.mkdirSync(outputDir, { recursive: true });
const layers = (process.env.AGENT_TABS_TEST_LAYERS ?? 'unit,integration,e2e').split(',').map((s) => s.trim()).filter(Boolean);
const totals = { passed: 0, failed: 0, skipped: 0 };
const summary = [];

function step(title, command, args, env = {}) {
	process.stdout.write(`\n▶ ${title}\n`);
	const r = spawnSync(command, args, { stdio: 'inherit', env: { ...process.env, ...env } });
	if (r.status !== 0) {
		process.stdout.write(`✘ ${title} failed (exit ${r.status ?? r.signal})\n`);
	}
	return r.status === 0;
}

function finish() {
	process.stdout.write('\nLayers:\n');
	for (const s of summary) {
		process.stdout.write(`  ${s.layer.padEnd(12)} ${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped${s.note ? ` (${s.note})` : ''}\n`);
	}
	process.stdout.write(`\n${totals.passed} passed, ${totals.failed} failed, ${totals.skipped} skipped\n`);
	process.exit(totals.failed > 0 ? 1 : 0);
}

function record(layer, counts, note) {
	summary.push({ layer, ...counts, note });
	totals.passed += counts.passed;
	totals.failed += counts.failed;
	totals.skipped += counts.skipped;
}

// Tests compile into out/ afresh: a test file moved or deleted since the last build must not run from there.
fs.rmSync(path.join(root, 'out'), { recursive: true, force: true });

// Static checks and the build are prerequisites of every layer; a failure counts as one failed test.
const npx = (args) => ['npx', ['--no-install', ...args]];
for (const [title, [cmd, args]] of [
	['type check (host and webview)', npx(['tsc', '--noEmit', '-p', 'tsconfig.json'])],
	['type check (webview)', npx(['tsc', '--noEmit', '-p', 'src/webview/app/tsconfig.json'])],
	['lint (layer rules)', npx(['eslint', 'src', 'test', 'bench'])],
	['build (esbuild)', ['node', ['esbuild.mjs']]],
	['compile tests', npx(['tsc', '-p', 'tsconfig.test.json'])],
]) {
	if (!step(title, cmd, args)) {
		record(title, { passed: 0, failed: 1, skipped: 0 });
		finish();
	}
}

async function runUnit() {
	process.stdout.write('\n▶ unit tests (plain Node: real sql.js, real child processes, real git)\n');
	const Mocha = require('mocha');
	const mocha = new Mocha({ ui: 'tdd', timeout: 20000, reporter: 'spec', forbidOnly: !!process.env.CI });
	const files = [];
	const walk = (dir) => {
		for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
			const p = path.join(dir, e.name);
			if (e.isDirectory()) {
				walk(p);
			} else if (e.name.endsWith('.test.js')) {
				files.push(p);
			}
		}
	};
	walk(path.join(root, 'out', 'test', 'unit'));
	files.sort().forEach((f) => mocha.addFile(f));
	const stats = await new Promise((resolve) => {
		const runner = mocha.run(() => resolve(runner.stats));
	});
	const counts = { passed: stats.passes, failed: stats.failures, skipped: stats.pending };
	fs.writeFileSync(path.join(outputDir, 'unit.json'), JSON.stringify({ layer: 'unit', ...counts }));
	record('unit', counts);
}

function runScriptLayer(layer, title, script) {
	const resultFile = path.join(outputDir, `${layer}.json`);
	fs.rmSync(resultFile, { force: true });
	const ok = step(title, 'node', [script]);
	let counts;
	try {
		counts = JSON.parse(fs.readFileSync(resultFile, 'utf8'));
	} catch {
		record(layer, { passed: 0, failed: 1, skipped: 0 }, 'the runner wrote no result');
		return;
	}
	const failed = counts.failed + (ok || counts.failed > 0 ? 0 : 1);
	record(layer, { passed: counts.passed, failed, skipped: counts.skipped ?? 0 }, ok ? undefined : 'runner exited non-zero');
}

if (layers.includes('unit')) {
	// The real agent CLIs (Claude's ACP adapter, opencode, Gemini CLI) for the offline end-to-end agent tests.
	if (!step('real agents for the agent tests (cached)', 'bash', ['scripts/install-test-agents.sh'])) {
		record('real agents install', { passed: 0, failed: 1, skipped: 0 });
		finish();
	}
	await runUnit();
}
if (layers.includes('integration') || layers.includes('e2e')) {
	if (!step('test VS Code (code-server + Node 24, cached)', 'bash', ['scripts/install-test-vscode.sh'])) {
		record('test VS Code install', { passed: 0, failed: 1, skipped: 0 });
		finish();
	}
}
if (layers.includes('integration')) {
	runScriptLayer('integration', 'integration tests (mocha inside a real VS Code extension host)', 'scripts/run-vscode-tests.mjs');
}
if (layers.includes('e2e')) {
	runScriptLayer('e2e', 'UI tests (Playwright drives the installed .vsix in code-server)', 'test/e2e/sessionsView.e2e.mjs');
	runScriptLayer('e2e-sessions', 'UI tests: a session from the palette, deleted through the risk dialog, restored', 'test/e2e/sessionsLifecycle.e2e.mjs');
	runScriptLayer('e2e-chat', 'UI tests: a chat tab with the scripted agent: stream, permissions, settings, queue, rewind, reload, close', 'test/e2e/chatTab.e2e.mjs');
	runScriptLayer('e2e-tasks', 'UI tests: New Task from the palette, the Tasks view (done with its result, its chat, cancel, retry)', 'test/e2e/tasksView.e2e.mjs');
}
finish();
