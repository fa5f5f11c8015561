// The frame every UI test (test/e2e/*.e2e.mjs) shares: its output folders, a run folder, a total timeout, the
// steps run in order (the rest are skipped once one fails, with a screenshot of the failure), the packaged
// extension opened in code-server and Chromium, and the JSON result scripts/test.mjs reads.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
	assertInstalled,
	createGitRepo,
	freePort,
	hermeticEnv,
	indent,
	installVsix,
	launchChromium,
	node24,
	prepareProfile,
	repoRoot,
	seconds,
	sleep,
	startCodeServer,
} from './codeServer.mjs';

/** Thrown by a step that shows a known, reported defect: the step is skipped and says why. */
export class KnownDefect extends Error {}

const outputDir = path.join(repoRoot, '.test-output');

/**
 * Prepares one UI test run: `layer` names its result file (.test-output/<layer>.json), `shots` its screenshot
 * folder (emptied: a screenshot left by an earlier run must not pass for this one's).
 */
export function e2eRun({ layer, shots, timeoutMs }) {
	const shotDir = path.join(outputDir, shots);
	fs.rmSync(shotDir, { recursive: true, force: true });
	fs.mkdirSync(shotDir, { recursive: true });
	const runDir = fs.mkdtempSync(path.join(os.tmpdir(), `agent-tabs-${layer}-`));
	const run = {
		layer,
		shotDir,
		runDir,
		logFile: path.join(runDir, 'code-server.log'),
		counts: { passed: 0, failed: 0, skipped: 0 },
		started: Date.now(),
		/** server, browser, page, dirs, env, workspace once `openPackaged` ran; tests add their own. */
		state: {},
		/** Printed after the totals when the run passed. */
		summary: [],
		shot: (name) => run.state.page.screenshot({ path: path.join(shotDir, name) }),
	};
	const total = Number(process.env.AGENT_TABS_E2E_TIMEOUT_MS || timeoutMs);
	// A silent hang (a selector that never appears, a stuck browser) must fail, not wait forever.
	setTimeout(() => {
		process.stdout.write(`  ✘ timed out after ${total / 1000} s\n`);
		run.counts.failed++;
		void finish(run);
	}, total).unref();
	return run;
}

/** Runs `[title, fn]` steps in order and exits the process with the run's result. */
export async function runSteps(run, steps) {
	let broken = false;
	for (const [title, fn] of steps) {
		if (broken) {
			process.stdout.write(`  - ${title} (skipped: an earlier step failed)\n`);
			run.counts.skipped++;
			continue;
		}
		const t0 = Date.now();
		try {
			await fn();
			process.stdout.write(`  ✔ ${title} (${seconds(Date.now() - t0)})\n`);
			run.counts.passed++;
		} catch (e) {
			if (e instanceof KnownDefect) {
				process.stdout.write(`  - ${title} (skipped: ${e.message})\n`);
				run.counts.skipped++;
				continue;
			}
			process.stdout.write(`  ✘ ${title}\n${indent(e instanceof Error ? (e.stack ?? e.message) : String(e), '      ')}\n`);
			run.counts.failed++;
			broken = true;
			await run.state.page?.screenshot({ path: path.join(run.shotDir, 'failure.png') }).catch(() => undefined);
		}
	}
	await finish(run);
}

/** Packages the extension as a .vsix (vsce 4 wants Node >= 22, hence the cached Node 24). */
export function packageVsix(run) {
	const vsix = path.join(run.runDir, 'agent-tabs.vsix');
	// The README's relative links stay relative: there is no marketplace repository to point them at.
	execFileSync(node24, [path.join(repoRoot, 'node_modules', '@vscode', 'vsce', 'vsce'), 'package', '--no-dependencies', '--no-rewrite-relative-links', '-o', vsix], { cwd: repoRoot, stdio: 'pipe' });
	return vsix;
}

/**
 * The packaged extension installed into a fresh code-server, opened on a new git repository in Chromium.
 * `built` lists files the test needs built first; `settings` and `machineSettings` go to prepareProfile;
 * `files` (name to text) replaces the repository's first commit.
 */
export async function openPackaged(run, { built = [], settings, machineSettings, files } = {}) {
	for (const file of [path.join(repoRoot, 'dist', 'extension.js'), ...built]) {
		if (!fs.existsSync(file)) {
			throw new Error(`${path.relative(repoRoot, file)} is missing: run \`npx tsc -p tsconfig.test.json && node esbuild.mjs\` first.`);
		}
	}
	assertInstalled();
	const vsix = packageVsix(run);
	const { state } = run;
	state.dirs = prepareProfile(run.runDir, settings, machineSettings);
	state.env = hermeticEnv(run.runDir);
	installVsix({ dirs: state.dirs, vsix, env: state.env });
	state.workspace = createGitRepo(path.join(run.runDir, 'workspace'), files);
	state.server = await startCodeServer({ dirs: state.dirs, workspace: state.workspace, port: await freePort(), env: state.env, log: (l) => fs.appendFileSync(run.logFile, `${l}\n`) });
	state.browser = await launchChromium({ profileDir: path.join(run.runDir, 'chromium'), env: state.env });
	const page = (state.page = state.browser.pages()[0] ?? (await state.browser.newPage()));
	await page.goto(`${state.server.origin}/?folder=${encodeURIComponent(state.workspace)}`);
	await workbench(page);
	return page;
}

export async function workbench(page) {
	await page.locator('.monaco-workbench').waitFor({ timeout: 90_000 });
	await page.locator('.statusbar').waitFor({ timeout: 60_000 });
}

/** The notification toast holding `text`, once visible; returns its text. */
export async function toast(page, text, timeout) {
	const t = page.locator('.notifications-toasts .notification-toast', { hasText: text });
	await t.first().waitFor({ state: 'visible', timeout });
	return t.first().innerText();
}

/** Clicks the quick pick row holding `label`. */
export async function pick(page, label) {
	const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: label }).first();
	await row.waitFor({ state: 'visible', timeout: 15_000 });
	await row.click();
}

/**
 * Clicks the item holding `label` in the open context menu. VS Code listens for clicks on a menu's items only
 * from 100 ms after it showed the menu (so releasing the right button that opened it picks nothing); on a
 * busy machine that timer runs late, and a click before it is ignored with the menu left open. So: click
 * again while the menu stays open.
 */
export async function clickMenuItem(page, label, timeoutMs = 15_000) {
	const item = page.locator('.monaco-menu .action-item', { hasText: label }).first();
	const deadline = Date.now() + timeoutMs;
	for (let clicks = 1; ; clicks++) {
		await item.click({ timeout: Math.max(1_000, deadline - Date.now()) });
		if (await item.waitFor({ state: 'detached', timeout: 1_000 }).then(() => true, () => false)) {
			return;
		}
		if (Date.now() > deadline) {
			throw new Error(`the menu item "${label}" was clicked ${clicks} times and the menu is still open`);
		}
	}
}

/** The chat webview's inner frame; there may be other webviews, so it is the one with the chat composer. */
export async function chatFrame(page, timeout = 60_000) {
	const deadline = Date.now() + timeout;
	for (;;) {
		for (const frame of page.frames()) {
			if (frame.url().includes('/webview/') && (await frame.locator('.composer textarea.input').count().catch(() => 0)) > 0) {
				return frame;
			}
		}
		if (Date.now() > deadline) {
			throw new Error(`no chat webview appeared within ${timeout / 1000} s (frames: ${page.frames().map((f) => f.url().slice(0, 120)).join(', ')})`);
		}
		await sleep(500);
	}
}

async function finish(run) {
	const { state, counts } = run;
	await state.browser?.close().catch(() => undefined);
	await state.server?.stop();
	fs.mkdirSync(outputDir, { recursive: true });
	fs.writeFileSync(path.join(outputDir, `${run.layer}.json`), JSON.stringify({ layer: run.layer, ...counts }));
	process.stdout.write(`\n${run.layer}: ${counts.passed} passed, ${counts.failed} failed, ${counts.skipped} skipped (${seconds(Date.now() - run.started)})\n`);
	if (counts.failed === 0) {
		for (const line of run.summary) {
			process.stdout.write(`${line}\n`);
		}
	}
	if (counts.failed > 0 || process.env.AGENT_TABS_KEEP_RUN) {
		process.stdout.write(`run folder kept: ${run.runDir}\n`);
	} else {
		fs.rmSync(run.runDir, { recursive: true, force: true });
	}
	process.exit(counts.failed > 0 ? 1 : 0);
}
