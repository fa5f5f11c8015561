#!/usr/bin/env node
// UI test of sessions as a user works with them, in the installed .vsix under code-server: create a session
// from the palette, see it in the Sessions view, put unsaved work in its worktree, delete it through the
// risk dialog ("Save and Delete"), check the work was saved and the branch kept, then restore it and find
// the work back. Screenshots in .test-output/e2e-sessions/. Writes .test-output/e2e-sessions.json.
// Expects dist/ built and the test VS Code installed (see sessionsView.e2e.mjs).
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { quietSettings, runPaletteCommand, sleep } from '../../scripts/lib/codeServer.mjs';
import { e2eRun, openPackaged, pick, runSteps, toast as toastOn } from '../../scripts/lib/e2eRunner.mjs';

const run = e2eRun({ layer: 'e2e-sessions', shots: 'e2e-sessions', timeoutMs: 240_000 });
const { state, shotDir } = run;
const worktreesRoot = path.join(run.runDir, 'worktrees');
const title = 'E2E Feature';
const branch = 'agent-tabs/e2e-feature';
const worktree = path.join(worktreesRoot, 'e2e-feature');
const notes = `unsaved idea ${Date.now()}\n`;
// The repository proposes a setup command in its own settings; it writes a file outside the worktree, so the
// test sees whether it ran without adding work to the session.
const setupRan = path.join(run.runDir, 'setup-ran');

const git = (...args) => execFileSync('git', args, { cwd: state.workspace, env: state.env, encoding: 'utf8' });

const steps = [
	['the packaged extension opens in code-server on a git repository', open],
	['"Agent Tabs: New Session" asks about the repository\'s proposed setup command, runs it once confirmed, and creates a worktree on agent-tabs/<name> outside the repository', newSession],
	['the Sessions view lists the session with its branch', seeSession],
	['"Delete Session" shows what would be lost; "Save and Delete" saves it, keeps the branch, removes the folder', deleteSession],
	['"Restore Session" brings the worktree back with the unsaved work', restoreSession],
];
await runSteps(run, steps);

async function open() {
	// Machine-scoped: in this remote window it is a setting of the machine (see prepareProfile).
	await openPackaged(run, {
		settings: quietSettings,
		machineSettings: { 'agentTabs.worktrees.root': worktreesRoot },
		files: {
			'README.md': '# Sample\n',
			'.vscode/settings.json': JSON.stringify({ 'agentTabs.worktrees.proposedSetupCommand': `pwd > '${setupRan}'`, 'agentTabs.worktrees.setupCommand': `touch '${setupRan}.unconfirmed'` }),
		},
	});
}

async function newSession() {
	const { page } = state;
	await runPaletteCommand(page, 'Agent Tabs: New Session');
	const input = page.locator('.quick-input-widget .quick-input-box input');
	await input.waitFor({ state: 'visible', timeout: 10_000 });
	await input.fill(title);
	await page.keyboard.press('Enter');
	// The repository's proposal is asked about once, in a modal dialog; its own `setupCommand` is ignored.
	const dialog = page.locator('.monaco-dialog-box', { hasText: 'proposes a setup command' });
	await dialog.waitFor({ state: 'visible', timeout: 60_000 });
	if (fs.existsSync(setupRan)) {
		throw new Error('the proposed setup command ran before it was confirmed');
	}
	await run.shot('setup-command-proposed.png');
	await dialog.getByRole('button', { name: 'Run It', exact: true }).click();
	await toast(`Session "${title}" is ready on ${branch}.`, 60_000);
	if (!fs.existsSync(path.join(worktree, '.git'))) {
		throw new Error(`${worktree} is not a git worktree`);
	}
	if (!fs.existsSync(setupRan) || fs.readFileSync(setupRan, 'utf8').trim() !== worktree) {
		throw new Error(`the confirmed setup command did not run in the worktree ${worktree}`);
	}
	if (fs.existsSync(`${setupRan}.unconfirmed`)) {
		throw new Error("the repository's own agentTabs.worktrees.setupCommand ran");
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

function toast(text, timeout) {
	return toastOn(state.page, text, timeout);
}
