#!/usr/bin/env node
// UI test of sessions as a user works with them, in the installed .vsix under code-server: create a session
// from the palette, see it in the Sessions view, put unsaved work in its worktree, delete it through the
// risk dialog ("Save and Delete"), check the work was saved and the branch kept, then restore it and find
// the work back. Screenshots in .test-output/e2e-sessions/. Writes .test-output/e2e-sessions.json.
// Expects dist/ built and the test VS Code installed (see sessionsView.e2e.mjs).
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
	quietSettings,
	repoRoot,
	sleep,
	runPaletteCommand,
	startCodeServer,
} from '../../scripts/lib/codeServer.mjs';

const outputDir = path.join(repoRoot, '.test-output');
const shotDir = path.join(outputDir, 'e2e-sessions');
const totalTimeoutMs = Number(process.env.AGENT_TABS_E2E_TIMEOUT_MS || 240_000);
const counts = { passed: 0, failed: 0, skipped: 0 };
const started = Date.now();
fs.rmSync(shotDir, { recursive: true, force: true });
fs.mkdirSync(shotDir, { recursive: true });
const runDir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-e2e-sessions-'));
const worktreesRoot = path.join(runDir, 'worktrees');
const logFile = path.join(runDir, 'code-server.log');
const state = {};
const title = 'E2E Feature';
const branch = 'agent-tabs/e2e-feature';
const worktree = path.join(worktreesRoot, 'e2e-feature');
const notes = `unsaved idea ${Date.now()}\n`;

setTimeout(() => {
	process.stdout.write(`  ✘ timed out after ${totalTimeoutMs / 1000} s\n`);
	counts.failed++;
	void finish();
}, totalTimeoutMs).unref();

const git = (...args) => execFileSync('git', args, { cwd: state.workspace, env: state.env, encoding: 'utf8' });

const steps = [
	['the packaged extension opens in code-server on a git repository', open],
	['"Agent Tabs: New Session" creates a worktree on agent-tabs/<name> outside the repository', newSession],
	['the Sessions view lists the session with its branch', seeSession],
	['"Delete Session" shows what would be lost; "Save and Delete" saves it, keeps the branch, removes the folder', deleteSession],
	['"Restore Session" brings the worktree back with the unsaved work', restoreSession],
];
let broken = false;
for (const [name, fn] of steps) {
	if (broken) {
		process.stdout.write(`  - ${name} (skipped: an earlier step failed)\n`);
		counts.skipped++;
		continue;
	}
	const t0 = Date.now();
	try {
		await fn();
		process.stdout.write(`  ✔ ${name} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
		counts.passed++;
	} catch (e) {
		process.stdout.write(`  ✘ ${name}\n      ${(e instanceof Error ? (e.stack ?? e.message) : String(e)).split('\n').join('\n      ')}\n`);
		counts.failed++;
		broken = true;
		await state.page?.screenshot({ path: path.join(shotDir, 'failure.png') }).catch(() => undefined);
	}
}
await finish();

async function open() {
	if (!fs.existsSync(path.join(repoRoot, 'dist', 'extension.js'))) {
		throw new Error('dist/extension.js is missing: run `node esbuild.mjs` first.');
	}
	assertInstalled();
	const vsix = path.join(runDir, 'agent-tabs.vsix');
	execFileSync(node24, [path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--no-rewrite-relative-links', '-o', vsix], { cwd: repoRoot, stdio: 'pipe' });
	// Machine-scoped: in this remote window it is a setting of the machine (see prepareProfile).
	state.dirs = prepareProfile(runDir, quietSettings, { 'agentTabs.worktrees.root': worktreesRoot });
	state.env = hermeticEnv(runDir);
	installVsix({ dirs: state.dirs, vsix, env: state.env });
	state.workspace = createGitRepo(path.join(runDir, 'workspace'));
	state.server = await startCodeServer({ dirs: state.dirs, workspace: state.workspace, port: await freePort(), env: state.env, log: (l) => fs.appendFileSync(logFile, `${l}\n`) });
	state.browser = await launchChromium({ profileDir: path.join(runDir, 'chromium'), env: state.env });
	const page = (state.page = state.browser.pages()[0] ?? (await state.browser.newPage()));
	await page.goto(`${state.server.origin}/?folder=${encodeURIComponent(state.workspace)}`);
	await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
	await page.locator('.statusbar').waitFor({ timeout: 30_000 });
}

async function newSession() {
	const { page } = state;
	await runPaletteCommand(page, 'Agent Tabs: New Session');
	const input = page.locator('.quick-input-widget .quick-input-box input');
	await input.waitFor({ state: 'visible', timeout: 10_000 });
	await input.fill(title);
	await page.keyboard.press('Enter');
	await toast(`Session "${title}" is ready on ${branch}.`, 60_000);
	if (!fs.existsSync(path.join(worktree, '.git'))) {
		throw new Error(`${worktree} is not a git worktree`);
	}
	const head = execFileSync('git', ['rev-parse', '--abbrev-ref', 'HEAD'], { cwd: worktree, env: state.env, encoding: 'utf8' }).trim();
	if (head !== branch) {
		throw new Error(`the worktree is on ${head}, not ${branch}`);
	}
}

async function seeSession() {
	const { page } = state;
	await page.locator('.part.activitybar .action-item a[aria-label^="Agent Tabs"]').click({ timeout: 15_000 });
	const row = page.locator('.part.sidebar .monaco-list-row', { hasText: title });
	await row.waitFor({ state: 'visible', timeout: 20_000 });
	const text = await row.innerText();
	if (!text.includes(branch)) {
		throw new Error(`the session row does not show its branch: ${JSON.stringify(text)}`);
	}
	await page.screenshot({ path: path.join(shotDir, 'session-created.png') });
}

async function deleteSession() {
	const { page } = state;
	fs.writeFileSync(path.join(worktree, 'notes.txt'), notes);
	await runPaletteCommand(page, 'Agent Tabs: Delete Session');
	await pick(page, title);
	const dialog = page.locator('.monaco-dialog-box');
	await dialog.waitFor({ state: 'visible', timeout: 20_000 });
	const text = await dialog.innerText();
	if (!text.includes('1 untracked file') || !text.includes('notes.txt')) {
		throw new Error(`the dialog does not say what would be lost: ${JSON.stringify(text)}`);
	}
	await page.screenshot({ path: path.join(shotDir, 'delete-risk-dialog.png') });
	await dialog.getByRole('button', { name: 'Save and Delete' }).click();
	const saved = await toast(`Saved 1 changed files (0 staged) and HEAD on ${branch} in refs/agent-tabs/saved/`, 60_000);
	const ref = /refs\/agent-tabs\/saved\/[\w-]+\/\d+/.exec(saved)?.[0];
	if (fs.existsSync(worktree)) {
		throw new Error('the worktree folder is still there');
	}
	git('rev-parse', '--verify', `refs/heads/${branch}`);
	if (git('show', `${ref}:notes.txt`) !== notes) {
		throw new Error(`${ref} does not hold notes.txt`);
	}
	await page.locator('.part.sidebar .monaco-list-row', { hasText: 'Detached worktrees' }).waitFor({ state: 'visible', timeout: 20_000 });
}

async function restoreSession() {
	const { page } = state;
	await runPaletteCommand(page, 'Agent Tabs: Restore Session');
	await pick(page, branch);
	await toast(`Restored ${worktree}`, 60_000);
	if (fs.readFileSync(path.join(worktree, 'notes.txt'), 'utf8') !== notes) {
		throw new Error('notes.txt did not come back');
	}
	await page.locator('.part.sidebar .monaco-list-row', { hasText: title }).first().waitFor({ state: 'visible', timeout: 20_000 });
	await sleep(500);
	await page.screenshot({ path: path.join(shotDir, 'session-restored.png') });
}

async function toast(text, timeout) {
	const t = state.page.locator('.notifications-toasts .notification-toast', { hasText: text });
	await t.first().waitFor({ state: 'visible', timeout });
	return t.first().innerText();
}

async function pick(page, label) {
	const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first();
	await row.waitFor({ state: 'visible', timeout: 15_000 });
	await row.click();
}

async function finish() {
	await state.browser?.close().catch(() => undefined);
	await state.server?.stop();
	fs.mkdirSync(outputDir, { recursive: true });
	fs.writeFileSync(path.join(outputDir, 'e2e-sessions.json'), JSON.stringify({ layer: 'e2e-sessions', ...counts }));
	process.stdout.write(`\ne2e-sessions: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
	if (counts.failed > 0 || process.env.AGENT_TABS_KEEP_RUN) {
		process.stdout.write(`run folder kept: ${runDir}\n`);
	} else {
		fs.rmSync(runDir, { recursive: true, force: true });
	}
	process.exit(counts.failed > 0 ? 1 : 0);
}
