#!/usr/bin/env node
// UI test of the packaged extension (Recipe B of ../shared/docs/vscode-e2e.md): package the .vsix, install it
// into a fresh code-server, open a temp git repository in headless Chromium and drive the workbench as a
// user does: the command palette, the notification toast, the activity bar and the Sessions view.
//
// Expects dist/ to be built (`node esbuild.mjs`, or `node esbuild.mjs --production` for the shipped
// bundle; the .vsix takes whatever dist/ holds) and the test VS Code installed
// (scripts/install-test-vscode.sh). Runs on Node 20 or 24.
// Writes .test-output/e2e.json and keeps .test-output/e2e/sessions-view.png; exits non-zero on failure.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createGitRepo, freePort, hermeticEnv, installVsix, launchChromium, prepareProfile, assertInstalled, repoRoot, runPaletteCommand, startCodeServer } from '../../scripts/lib/codeServer.mjs';
import { e2eRun, packageVsix, runSteps, workbench } from '../../scripts/lib/e2eRunner.mjs';

const run = e2eRun({ layer: 'e2e', shots: 'e2e', timeoutMs: 180_000 });
const { state } = run;
const screenshot = path.join(run.shotDir, 'sessions-view.png');
run.summary.push(`screenshot: ${path.relative(repoRoot, screenshot)}`);

const steps = [
	['the packaged .vsix installs into code-server', installStep],
	['the workbench opens the repository with the extension', openWorkbench],
	['"Agent Tabs: Show State Folder" from the command palette says where the state is kept', showStateFolder],
	['the Agent Tabs activity bar item opens the Sessions view with its welcome text', openSessionsView],
];
await runSteps(run, steps);

async function installStep() {
	if (!fs.existsSync(path.join(repoRoot, 'dist', 'extension.js'))) {
		throw new Error('dist/extension.js is missing: run `node esbuild.mjs --production` first.');
	}
	assertInstalled();
	const vsix = packageVsix(run);
	state.dirs = prepareProfile(run.runDir);
	state.env = hermeticEnv(run.runDir);
	installVsix({ dirs: state.dirs, vsix, env: state.env });
	const installed = fs.readdirSync(state.dirs.extensionsDir).filter((d) => d.startsWith('agent-tabs.agent-tabs-'));
	if (installed.length !== 1) {
		throw new Error(`expected agent-tabs.agent-tabs-<version> in ${state.dirs.extensionsDir}, found ${JSON.stringify(fs.readdirSync(state.dirs.extensionsDir))}`);
	}
}

async function openWorkbench() {
	const workspace = createGitRepo(path.join(run.runDir, 'workspace'));
	// No enable-smoke-test-driver here: it suppresses the notification toasts this test looks at.
	state.server = await startCodeServer({ dirs: state.dirs, workspace, port: await freePort(), env: state.env, log: (l) => fs.appendFileSync(run.logFile, `${l}\n`) });
	state.browser = await launchChromium({ profileDir: path.join(run.runDir, 'chromium'), env: state.env });
	const page = (state.page = state.browser.pages()[0] ?? (await state.browser.newPage()));
	await page.goto(`${state.server.origin}/?folder=${encodeURIComponent(workspace)}`);
	await workbench(page);
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
	// The container holds two views (Sessions and Tasks), each under its own pane header.
	await view.locator('.composite.title', { hasText: 'Agent Tabs' }).waitFor({ state: 'visible', timeout: 15_000 });
	for (const name of ['Sessions', 'Tasks']) {
		await view.locator('.pane-header', { hasText: name }).first().waitFor({ state: 'visible', timeout: 15_000 });
	}
	// Shown once the store has opened (the agentTabs.storeReady context key) and it holds no sessions.
	await view.locator('.welcome-view-content', { hasText: 'No sessions yet' }).waitFor({ state: 'visible', timeout: 30_000 });
	await page.screenshot({ path: screenshot });
}
