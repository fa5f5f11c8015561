#!/usr/bin/env node
// UI test of the packaged extension (Recipe B of ../shared/docs/vscode-e2e.md): package the .vsix, install it
// into a fresh code-server, open a temp git repository in headless Chromium and drive the workbench as a
// user does: the command palette, the notification toast, the activity bar and the Sessions view.
//
// Expects dist/ to be built (`node esbuild.mjs`, or `node esbuild.mjs --production` for the shipped
// bundle; the .vsix takes whatever dist/ holds) and the test VS Code installed
// (scripts/install-test-vscode.sh). Runs on Node 20 or 24.
// Writes .test-output/e2e.json and keeps .test-output/e2e/sessions-view.png; exits non-zero on failure.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
	assertInstalled,
	createGitRepo,
	freePort,
	hermeticEnv,
	installVsix,
	launchChromium,
	node24,
	prepareProfile,
	repoRoot,
	runPaletteCommand,
	startCodeServer,
} from '../../scripts/lib/codeServer.mjs';

const outputDir = path.join(repoRoot, '.test-output');
const shotDir = path.join(outputDir, 'e2e');
const screenshot = path.join(shotDir, 'sessions-view.png');
const totalTimeoutMs = Number(process.env.AGENT_TABS_E2E_TIMEOUT_MS || 180_000);
const counts = { passed: 0, failed: 0, skipped: 0 };
const started = Date.now();

// A screenshot left by an earlier run must not pass for this one's.
fs.rmSync(shotDir, { recursive: true, force: true });
fs.mkdirSync(shotDir, { recursive: true });
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-e2e-'));
const logFile = path.join(runDir, 'code-server.log');
const state = { server: undefined, browser: undefined, page: undefined };

// A silent hang (a selector that never appears, a stuck browser) must fail, not wait forever.
setTimeout(() => {
	process.stdout.write(`  ✘ timed out after ${totalTimeoutMs / 1000} s\n`);
	counts.failed++;
	finish();
}, totalTimeoutMs).unref();

const steps = [
	['the packaged .vsix installs into code-server', installStep],
	['the workbench opens the repository with the extension', openWorkbench],
	['"Agent Tabs: Show State Folder" from the command palette says where the state is kept', showStateFolder],
	['the Agent Tabs activity bar item opens the Sessions view with its welcome text', openSessionsView],
];
let broken = false;
for (const [title, fn] of steps) {
	if (broken) {
		process.stdout.write(`  - ${title} (skipped: an earlier step failed)\n`);
		counts.skipped++;
		continue;
	}
	const t0 = Date.now();
	try {
		await fn();
		process.stdout.write(`  ✔ ${title} (${seconds(Date.now() - t0)})\n`);
		counts.passed++;
	} catch (e) {
		process.stdout.write(`  ✘ ${title}\n${indent(e instanceof Error ? (e.stack ?? e.message) : String(e), '      ')}\n`);
		counts.failed++;
		broken = true;
		await state.page?.screenshot({ path: path.join(shotDir, 'failure.png') }).catch(() => undefined);
	}
}
await finish();

async function installStep() {
	if (!fs.existsSync(path.join(repoRoot, 'dist', 'extension.js'))) {
		throw new Error('dist/extension.js is missing: run `node esbuild.mjs --production` first.');
	}
	assertInstalled();
	const vsix = path.join(runDir, 'agent-tabs.vsix');
	// vsce 4 wants Node >= 22, hence the cached Node 24. The README's relative links stay relative: there is
	// no marketplace repository to point them at.
	execFileSync(node24, [path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--no-rewrite-relative-links', '-o', vsix], {
		cwd: repoRoot,
		stdio: 'pipe',
	});
	state.dirs = prepareProfile(runDir);
	state.env = hermeticEnv(runDir);
	installVsix({ dirs: state.dirs, vsix, env: state.env });
	const installed = fs.readdirSync(state.dirs.extensionsDir).filter((d) => d.startsWith('agent-tabs.agent-tabs-'));
	if (installed.length !== 1) {
		throw new Error(`expected agent-tabs.agent-tabs-<version> in ${state.dirs.extensionsDir}, found ${JSON.stringify(fs.readdirSync(state.dirs.extensionsDir))}`);
	}
}

async function openWorkbench() {
	const workspace = createGitRepo(path.join(runDir, 'workspace'));
	// No enable-smoke-test-driver here: it suppresses the notification toasts this test looks at.
	state.server = await startCodeServer({ dirs: state.dirs, workspace, port: await freePort(), env: state.env, log: (l) => fs.appendFileSync(logFile, `${l}\n`) });
	state.browser = await launchChromium({ profileDir: path.join(runDir, 'chromium'), env: state.env });
	const page = (state.page = state.browser.pages()[0] ?? (await state.browser.newPage()));
	await page.goto(`${state.server.origin}/?folder=${encodeURIComponent(workspace)}`);
	await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
	await page.locator('.statusbar').waitFor({ timeout: 30_000 });
}

async function showStateFolder() {
	const { page } = state;
	await runPaletteCommand(page, 'Agent Tabs: Show State Folder');
	const toast = page.locator('.notifications-toasts .notification-toast', { hasText: 'keeps its state' });
	await toast.waitFor({ state: 'visible', timeout: 20_000 });
	const text = await toast.innerText();
	// The path is the workspace storage folder on the server, not the browser's machine.
	const expected = path.join(state.dirs.userDataDir, 'User', 'workspaceStorage');
	if (!text.includes(expected) || !text.includes('agent-tabs.agent-tabs')) {
		throw new Error(`the toast does not name the state folder under ${expected}: ${JSON.stringify(text)}`);
	}
	await toast.getByRole('button', { name: 'Copy Path' }).waitFor({ state: 'visible', timeout: 5_000 });
}

async function openSessionsView() {
	const { page } = state;
	await page.locator('.part.activitybar .action-item a[aria-label^="Agent Tabs"]').click({ timeout: 15_000 });
	const view = page.locator('.part.sidebar');
	// A container with one view shows that view's name in the side bar title, not in a pane header.
	await view.locator('.composite.title', { hasText: 'Agent Tabs: Sessions' }).waitFor({ state: 'visible', timeout: 15_000 });
	// Shown once the store has opened (the agentTabs.storeReady context key) and it holds no sessions.
	await view.locator('.welcome-view-content', { hasText: 'No sessions yet' }).waitFor({ state: 'visible', timeout: 30_000 });
	await page.screenshot({ path: screenshot });
}

async function finish() {
	await state.browser?.close().catch(() => undefined);
	await state.server?.stop();
	fs.mkdirSync(outputDir, { recursive: true });
	fs.writeFileSync(path.join(outputDir, 'e2e.json'), JSON.stringify({ layer: 'e2e', ...counts }));
	process.stdout.write(`\ne2e: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (${seconds(Date.now() - started)})\n`);
	if (fs.existsSync(screenshot) && counts.failed === 0) {
		process.stdout.write(`screenshot: ${path.relative(repoRoot, screenshot)}\n`);
	}
	if (counts.failed > 0 || process.env.AGENT_TABS_KEEP_RUN) {
		process.stdout.write(`run folder kept: ${runDir}\n`);
	} else {
		fs.rmSync(runDir, { recursive: true, force: true });
	}
	process.exit(counts.failed > 0 ? 1 : 0);
}

function indent(text, prefix) {
	return text
		.split('\n')
		.map((l) => prefix + l)
		.join('\n');
}

function seconds(ms) {
	return `${(ms / 1000).toFixed(1)} s`;
}
