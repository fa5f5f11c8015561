#!/usr/bin/env node
// UI test of a chat tab as a user works with it, in the installed .vsix under code-server: a session from the
// palette, "New Chat" with the scripted ACP agent (a real child process, defined in the user settings), a
// prompt typed into the tab that streams a reply, asks a permission (answered on the card) and writes a file
// in the session's worktree, "Rewind to before this turn" (preview, then confirm), a window reload and a
// browser refresh that bring the tab back with its transcript and the agent's resumed context, and "Close Chat".
// With two agents in one session: the settings pickers (one agent offers its mode only as a setting), a fifth
// permission request behind the four shown, the reading place kept across hiding the tab, and a queued message
// edited while a turn runs, each checked against what the agent says it got. Screenshots in .test-output/e2e-chat/.
// Writes .test-output/e2e-chat.json. Expects dist/ and out/test built and the test VS Code installed.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { node24, quietSettings, repoRoot, runPaletteCommand, sleep } from '../../scripts/lib/codeServer.mjs';
import { chatFrame as chatFrameOf, clickMenuItem, e2eRun, openPackaged, pick, runSteps, toast as toastOn, workbench as workbenchOf } from '../../scripts/lib/e2eRunner.mjs';

const run = e2eRun({ layer: 'e2e-chat', shots: 'e2e-chat', timeoutMs: 420_000 });
const { state, shotDir } = run;
const worktreesRoot = path.join(run.runDir, 'worktrees');
const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');
const agentIcon = path.join(run.runDir, 'scripted-agent-icon.svg');
// Where the scripted agent keeps its conversations, so a new agent process can load one (session/load).
const agentState = path.join(run.runDir, 'scripted-agent-sessions');
const sessionTitle = 'E2E Chat';
const worktree = path.join(worktreesRoot, 'e2e-chat');
/** Written by a message that waits in the queue while the window reloads. */
const queuedFile = 'queued-across-reload.txt';
const agentLabel = 'Scripted';
const reviewerLabel = 'Reviewer';
const greeting = `hello from the scripted agent ${Date.now()}`;
const permissionTitle = 'Write the notes';
const secondPermission = 'Run the linter';
const unsentDraft = 'an idea I have not sent yet';
const backgroundDraft = 'a review note typed before the reload';
const quickDraft = 'typed and gone to another tab at once';
const file = 'notes.md';
const prompt = [`say ${greeting}`, 'stream 40', `permission ${permissionTitle}`, `write ${file} hi`];

const steps = [
	['the packaged extension opens in code-server, with the scripted agent in the user settings', open],
	['"Agent Tabs: New Session" creates the session\'s worktree', newSession],
	['"Agent Tabs: New Chat" asks for the agent and opens a chat tab in the session', newChat],
	['a prompt typed in the tab streams the reply and shows a permission card', sendPrompt],
	['clicking "Allow" on the card lets the turn finish; the file is in the worktree, not in the checkout', answerPermission],
	['"Rewind to before this turn" previews the file, and on confirm removes it', rewind],
	['a permission asked while the tab is out of view is a notification; answering it settles the card', notificationPermission],
	['after "Developer: Reload Window" the tab is back with its transcript and the unsent draft; the turn it cut off is interrupted and the queued message is sent', reload],
	['after a browser refresh (F5 on code-server) the tab is back with its transcript and the agent resumes its context', browserRefresh],
	['"Agent Tabs: Close Chat" closes the tab and ends its agent process; the chat is listed as closed', closeChat],
	['two tabs with two agents in one session share its worktree, one turn at a time; each file is attributed to its own chat and agent', twoAgents],
	["the agent's settings are pickers (its mode offered as a setting is the mode picker); a choice reaches the agent, a refused one goes back and says why", settingsPickers],
	['a permission request beyond the 4 a chat shows says it waits and offers no answer; once an earlier one is answered it can be answered', permissionsBeyondShown],
	['a tab hidden and shown again comes back at the row the reader was at, not at the bottom', scrollAnchorAcrossHide],
	['keys typed just before switching to another tab are in the message box when the tab is shown again', quickSwitchKeepsDraft],
	['a message queued while a turn runs can be edited (an unsaved edit survives hiding the tab): the agent gets the edit; an edit still open when the message starts goes to the message box', editQueued],
	['a tab left in the background across a reload and opened again from the palette before it was shown stays one tab, with its draft; its agent comes back with the settings chosen in the tab', backgroundTabAcrossReload],
	['"Close Chat" in the Sessions view on a tab VS Code has not restored since a reload closes that tab too', closeUnrestoredTab],
	['"Delete Session" (saved first) closes the session\'s chat tabs and ends their agents', deleteSession],
];
await runSteps(run, steps);

async function open() {
	// `agentTabs.agents` and the worktrees root are machine-scoped: in this remote window they are user
	// settings of the machine (the "Remote" tab of the Settings editor), where a user would put them.
	fs.writeFileSync(agentIcon, '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16"><rect width="16" height="16" fill="#08c"/></svg>');
	await openPackaged(run, {
		built: [agentScript],
		settings: quietSettings,
		machineSettings: {
			'agentTabs.worktrees.root': worktreesRoot,
			'agentTabs.agents': [
				{ id: 'scripted', label: agentLabel, transport: 'acp', command: node24, args: [agentScript], icon: agentIcon, env: { SCRIPTED_AGENT_STATE_DIR: agentState } },
				// The reviewer offers its mode only as a setting (category mode), as claude-agent-acp does.
				{ id: 'reviewer', label: reviewerLabel, transport: 'acp', command: node24, args: [agentScript], env: { SCRIPTED_AGENT_MODE_OPTION: '1' } },
			],
		},
	});
}

function workbench() {
	return workbenchOf(state.page);
}

async function newSession() {
	const { page } = state;
	await runPaletteCommand(page, 'Agent Tabs: New Session');
	const input = page.locator('.quick-input-widget .quick-input-box input');
	await input.waitFor({ state: 'visible', timeout: 15_000 });
	await input.fill(sessionTitle);
	await page.keyboard.press('Enter');
	await toast(`Session "${sessionTitle}" is ready`, 90_000);
	if (!fs.existsSync(path.join(worktree, '.git'))) {
		throw new Error(`${worktree} is not a git worktree`);
	}
	// The toast would hide the tab's toolbar in the screenshots, and a later toast must be a new one.
	await runPaletteCommand(page, 'Notifications: Clear All Notifications');
	await page.locator('.notifications-toasts .notification-toast').first().waitFor({ state: 'hidden', timeout: 15_000 });
}

async function newChat() {
	const { page } = state;
	await runPaletteCommand(page, 'Agent Tabs: New Chat');
	// One session exists, so the only question is the agent; ours is installed (its command is an absolute path).
	const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: agentLabel }).first();
	await row.waitFor({ state: 'visible', timeout: 30_000 });
	const rowText = await row.innerText();
	if (!rowText.includes('installed') || rowText.includes('not installed')) {
		throw new Error(`the scripted agent is not offered as installed: ${JSON.stringify(rowText)}`);
	}
	await row.click();
	await chatTab().waitFor({ state: 'visible', timeout: 30_000 });
	const frame = await chatFrame();
	await frame.locator('textarea.input').waitFor({ state: 'visible', timeout: 30_000 });
	// The heading comes with the chat's first snapshot from the host.
	await frame.locator('h1.title', { hasText: agentLabel }).waitFor({ state: 'visible', timeout: 30_000 });
	// The tab shows the agent's own icon (from its definition), drawn by VS Code as the label's ::before.
	const icon = await chatTab().evaluate((tab) =>
		[tab, ...tab.querySelectorAll('*')]
			.flatMap((el) => [getComputedStyle(el).backgroundImage, getComputedStyle(el, '::before').backgroundImage, getComputedStyle(el, '::before').maskImage ?? ''])
			.filter((v) => v && v !== 'none')
			.join(' '),
	);
	if (!icon.includes(path.basename(agentIcon))) {
		throw new Error(`the chat tab does not show the agent's icon: ${JSON.stringify(icon)} in ${await chatTab().evaluate((t) => t.outerHTML)}`);
	}
	await page.screenshot({ path: path.join(shotDir, '1-chat-opened.png') });
}

async function sendPrompt() {
	const { page } = state;
	const frame = await chatFrame();
	const input = frame.locator('textarea.input');
	await input.click();
	// Enter sends, Shift+Enter adds a line: type it as a user would.
	for (const [i, line] of prompt.entries()) {
		await input.pressSequentially(line, { delay: 5 });
		if (i < prompt.length - 1) {
			await input.press('Shift+Enter');
		}
	}
	if ((await input.inputValue()) !== prompt.join('\n')) {
		throw new Error(`the input holds ${JSON.stringify(await input.inputValue())}, not the typed prompt`);
	}
	await input.press('Enter');
	await frame.locator('.message.user .body', { hasText: greeting }).waitFor({ state: 'visible', timeout: 30_000 });
	await frame.locator('.message.agent .body', { hasText: greeting }).waitFor({ state: 'visible', timeout: 90_000 });
	// `stream 40` sends 40 chunks "w0 w1 … w9 w0 …": all of them reach the reply, in order.
	const streamed = Array.from({ length: 40 }, (_, i) => `w${i % 10}`).join(' ');
	await frame.locator('.message.agent .body', { hasText: streamed }).first().waitFor({ state: 'visible', timeout: 60_000 });
	const card = frame.locator('section.permission.open', { hasText: permissionTitle });
	await card.waitFor({ state: 'visible', timeout: 60_000 });
	if ((await input.inputValue()) !== '') {
		throw new Error('the input was not cleared after sending');
	}
	const running = frame.locator('.turn.turn-running');
	if ((await running.count()) !== 1) {
		throw new Error('the turn is not shown as running while it waits for the permission');
	}
	await frame.locator('.composer .status', { hasText: 'Waiting for your permission' }).waitFor({ state: 'visible', timeout: 30_000 });
	if (fs.existsSync(path.join(worktree, file))) {
		throw new Error(`${file} was written before the permission was answered`);
	}
	// The tab is in view, so the card is the only place that asks: no notification as well.
	if ((await page.locator('.notifications-toasts .notification-toast', { hasText: permissionTitle }).count()) !== 0) {
		throw new Error('the permission was also asked in a notification while its tab was in view');
	}
	await sleep(300);
	await page.screenshot({ path: path.join(shotDir, '2-permission-card.png') });
}

async function answerPermission() {
	const { page } = state;
	const frame = await chatFrame();
	const card = frame.locator('section.permission', { hasText: permissionTitle });
	await card.getByRole('button', { name: /Allow/ }).click();
	await frame.locator('section.permission.settled', { hasText: permissionTitle }).waitFor({ state: 'visible', timeout: 60_000 });
	await frame.locator('.message.agent .body', { hasText: 'permission: allow' }).waitFor({ state: 'visible', timeout: 60_000 });
	await frame.locator('.turn.turn-done').waitFor({ state: 'visible', timeout: 90_000 });
	await frame.locator('.file-edit', { hasText: file }).waitFor({ state: 'visible', timeout: 30_000 });
	const written = path.join(worktree, file);
	if (!fs.existsSync(written) || fs.readFileSync(written, 'utf8') !== 'hi') {
		throw new Error(`${written} does not hold "hi"`);
	}
	if (fs.existsSync(path.join(state.workspace, file))) {
		throw new Error(`${file} was written into the main checkout`);
	}
	const status = await card.locator('.permission-status').innerText();
	if (!status.includes('Allow')) {
		throw new Error(`the card does not say how it was answered: ${JSON.stringify(status)}`);
	}
	await sleep(300);
	await page.screenshot({ path: path.join(shotDir, '3-turn-done.png') });
}

async function rewind() {
	const { page } = state;
	const frame = await chatFrame();
	await frame.getByRole('button', { name: 'Rewind to before this turn' }).click();
	const box = frame.locator('.rewind-confirm');
	await box.locator('ul.files li', { hasText: file }).waitFor({ state: 'visible', timeout: 60_000 });
	if (!fs.existsSync(path.join(worktree, file))) {
		throw new Error('the preview already changed the worktree');
	}
	await page.screenshot({ path: path.join(shotDir, '4-rewind-preview.png') });
	await box.getByRole('button', { name: 'Rewind', exact: true }).click();
	await box.getByRole('status').filter({ hasText: /Rewound 1 file/ }).waitFor({ state: 'visible', timeout: 60_000 });
	if (fs.existsSync(path.join(worktree, file))) {
		throw new Error(`${file} is still in the worktree after the rewind`);
	}
	await sleep(300);
	await page.screenshot({ path: path.join(shotDir, '5-rewound.png') });
}

async function notificationPermission() {
	const { page } = state;
	const frame = await chatFrame();
	const input = frame.locator('textarea.input');
	await input.click();
	// The agent waits first, so the request comes while another editor hides the tab.
	await input.fill(`sleep 6000\npermission ${secondPermission}`);
	await input.press('Enter');
	await frame.locator('.turn.turn-running').waitFor({ state: 'visible', timeout: 30_000 });
	await page.keyboard.press('Control+P');
	const quickOpen = page.locator('.quick-input-widget .quick-input-box input');
	await quickOpen.waitFor({ state: 'visible', timeout: 15_000 });
	await quickOpen.fill('README.md');
	await page.locator('.quick-input-widget .monaco-list-row', { hasText: 'README.md' }).first().waitFor({ state: 'visible', timeout: 15_000 });
	await page.keyboard.press('Enter');
	await page.locator('.tabs-container .tab.active', { hasText: 'README.md' }).waitFor({ state: 'visible', timeout: 15_000 });
	// A regular expression: hasText with a string ignores case, and the toast must name the agent by its label.
	const ask = page.locator('.notifications-toasts .notification-toast', { hasText: new RegExp(`${agentLabel} asks: ${secondPermission}`) });
	await ask.waitFor({ state: 'visible', timeout: 60_000 });
	await page.screenshot({ path: path.join(shotDir, '6-permission-notification.png') });
	await ask.getByRole('button', { name: 'Allow' }).click();
	await ask.waitFor({ state: 'hidden', timeout: 15_000 });
	await chatTab().click();
	const again = await chatFrame();
	await again.locator('section.permission.settled', { hasText: secondPermission }).locator('.permission-status', { hasText: 'Allow' }).waitFor({ state: 'visible', timeout: 60_000 });
	await again.locator('.turn.turn-done', { hasText: 'Turn 2' }).waitFor({ state: 'visible', timeout: 60_000 });
	if ((await again.locator('.message.agent .body', { hasText: 'permission: allow' }).count()) < 2) {
		throw new Error('the agent did not get the answer given in the notification');
	}
	// The tab was hidden, so it was rebuilt from a snapshot: the rewind notice is still between the two turns.
	const order = await again.locator('.transcript .page > .turn, .transcript .page > .notice').evaluateAll((els) => els.map((e) => (e.classList.contains('turn') ? e.querySelector('.turn-label')?.textContent?.split(' ·')[0] : 'notice')));
	if (JSON.stringify(order) !== JSON.stringify(['Turn 1', 'notice', 'Turn 2'])) {
		throw new Error(`the transcript is out of order after the tab was shown again: ${JSON.stringify(order)}`);
	}
	await sleep(300);
	await page.screenshot({ path: path.join(shotDir, '7-answered-from-notification.png') });
}

async function reload() {
	const { page } = state;
	const before = await chatFrame();
	const typing = before.locator('textarea.input');
	// A long turn runs and a message waits in the queue when the window reloads: the queue is the dispatcher's,
	// on disk, so the message is sent after the reload; the cut-off turn is marked interrupted, with a Retry.
	await typing.fill('sleep 120000\nsay never finished');
	await typing.press('Enter');
	await before.locator('.turn.turn-running', { hasText: 'Turn 3' }).waitFor({ state: 'visible', timeout: 60_000 });
	await typing.fill(`write ${queuedFile} sent after the reload`);
	await typing.press('Enter');
	await before.locator('.queue-list li .queued-text', { hasText: queuedFile }).waitFor({ state: 'visible', timeout: 30_000 });
	await page.screenshot({ path: path.join(shotDir, '8-queued-before-reload.png') });
	await typing.click();
	await typing.pressSequentially(unsentDraft, { delay: 5 });
	// The tab keeps a draft once the host has vetted it (each change goes to the host at once; a round trip).
	await sleep(2_000);
	await runPaletteCommand(page, 'Developer: Reload Window');
	await page.waitForEvent('load', { timeout: 60_000 }).catch(() => undefined);
	await workbench();
	await chatTab().waitFor({ state: 'visible', timeout: 90_000 });
	// A restored tab's webview loads only once it is shown; it is the active editor, as before the reload.
	const frame = await chatFrame(120_000);
	await frame.locator('.message.user .body', { hasText: greeting }).waitFor({ state: 'visible', timeout: 60_000 });
	await frame.locator('.message.agent .body', { hasText: greeting }).waitFor({ state: 'visible', timeout: 30_000 });
	await frame.locator('section.permission.settled', { hasText: permissionTitle }).waitFor({ state: 'visible', timeout: 30_000 });
	await frame.locator('.turn.turn-done', { hasText: 'Turn 2' }).waitFor({ state: 'visible', timeout: 30_000 });
	if ((await frame.locator('section.permission.open').count()) !== 0) {
		throw new Error('an answered permission card is open again after the reload');
	}
	await frame.locator('.turn.turn-interrupted', { hasText: 'Turn 3' }).waitFor({ state: 'visible', timeout: 60_000 });
	// Why it stopped is said once, in the error row with its Retry, not again in the turn's header.
	const reason = (await frame.locator('.error .body').first().textContent({ timeout: 30_000 }))?.trim() ?? '';
	const header = (await frame.locator('.turn.turn-interrupted', { hasText: 'Turn 3' }).textContent()) ?? '';
	if (!reason || header.includes(reason)) {
		throw new Error(`the interrupted turn's reason should show once, in its error row (row: "${reason}", header: "${header}")`);
	}
	await frame.locator('.turn.turn-done', { hasText: 'Turn 4' }).waitFor({ state: 'visible', timeout: 90_000 });
	if (!fs.existsSync(path.join(worktree, queuedFile))) {
		throw new Error(`the message queued before the reload ran, but ${queuedFile} is not in the worktree`);
	}
	if ((await frame.locator('.queue-list li').count()) !== 0) {
		throw new Error('the queue still shows the message after it was sent');
	}
	// The unsent draft comes back as it was; the messages sent earlier do not.
	const draft = await frame.locator('textarea.input').inputValue();
	if (draft !== unsentDraft) {
		throw new Error(`the composer holds ${JSON.stringify(draft)} after the reload, not the unsent draft`);
	}
	await sleep(500);
	await page.screenshot({ path: path.join(shotDir, '9-after-reload.png') });
}

async function browserRefresh() {
	const { page } = state;
	// The old extension host lives on after a refresh (the remote's reconnection grace) holding the state; the
	// new window asks it to hand over, so the tab comes back on the same database.
	// Not asserted here: the draft. A browser refresh is not a clean shutdown, and VS Code web may keep an
	// older webview state (seen: a draft cut mid-word); "Developer: Reload Window" above keeps it exactly.
	await page.reload();
	await workbench();
	await chatTab().waitFor({ state: 'visible', timeout: 90_000 });
	const restored = await chatFrame(120_000);
	await restored.locator('.message.user .body', { hasText: greeting }).waitFor({ state: 'visible', timeout: 60_000 });
	await restored.locator('section.permission.settled', { hasText: secondPermission }).waitFor({ state: 'visible', timeout: 30_000 });
	await restored.locator('.turn.turn-done', { hasText: 'Turn 2' }).waitFor({ state: 'visible', timeout: 30_000 });
	// The new window drives the agent, and the agent's own context is resumed (session/load), not started anew:
	// it still holds the two earlier prompts.
	const input = restored.locator('textarea.input');
	await input.fill('recall');
	await input.press('Enter');
	await restored.locator('.turn.turn-done', { hasText: 'Turn 5' }).waitFor({ state: 'visible', timeout: 60_000 });
	// At least the two prompts from before the reloads (the cut-off and the queued one may count too).
	await restored.locator('.message.agent .body', { hasText: /recall: ([2-9]|\d\d+) earlier prompts/ }).waitFor({ state: 'visible', timeout: 30_000 });
	if ((await restored.locator('.notice', { hasText: 'could not restore' }).count()) !== 0) {
		throw new Error('the agent context was reset after the refresh instead of resumed');
	}
	await sleep(500);
	await page.screenshot({ path: path.join(shotDir, '10-after-browser-refresh.png') });
}

async function closeChat() {
	const { page } = state;
	// The only chat so far: its agent is the one scripted agent process working in the session's worktree.
	const agents = scriptedAgentPids();
	if (agents.length === 0) {
		throw new Error(`no scripted agent process runs in ${worktree} before closing`);
	}
	await runPaletteCommand(page, 'Agent Tabs: Close Chat');
	await chatTab().waitFor({ state: 'detached', timeout: 30_000 });
	// Closing the tab ends its agent process (not only "never resumed"; the idle reaper is minutes away).
	for (const deadline = Date.now() + 20_000; scriptedAgentPids().some((p) => agents.includes(p)); ) {
		if (Date.now() > deadline) {
			throw new Error(`the agent process ${JSON.stringify(scriptedAgentPids())} still runs after Close Chat`);
		}
		await sleep(250);
	}
	// Closing ends the conversation (after a short grace period): "Open Chat" then lists it as closed.
	const deadline = Date.now() + 60_000;
	for (;;) {
		await runPaletteCommand(page, 'Agent Tabs: Open Chat');
		const row = page.locator('.quick-input-widget .monaco-list-row', { hasText: agentLabel }).first();
		await row.waitFor({ state: 'visible', timeout: 15_000 });
		const text = await row.innerText();
		if (text.includes('closed')) {
			await page.screenshot({ path: path.join(shotDir, '11-closed-in-open-chat.png') });
			await page.keyboard.press('Escape');
			break;
		}
		await page.keyboard.press('Escape');
		if (Date.now() > deadline) {
			throw new Error(`"Open Chat" does not list the chat as closed: ${JSON.stringify(text)}`);
		}
		await sleep(2_000);
	}
}

async function twoAgents() {
	const { page } = state;
	const openChat = async (label) => {
		await runPaletteCommand(page, 'Agent Tabs: New Chat');
		await pick(page, label);
		await chatTab(label).waitFor({ state: 'visible', timeout: 30_000 });
		const frame = await chatFrame();
		await frame.locator('h1.title', { hasText: label }).waitFor({ state: 'visible', timeout: 30_000 });
		return frame;
	};
	const send = async (frame, text) => {
		const input = frame.locator('textarea.input');
		await input.fill(text);
		await input.press('Enter');
		// The turn may already be done when the tab is looked at: wait for the prompt to show in it.
		await frame.locator('.message.user .body', { hasText: text.split('\n').pop() }).waitFor({ state: 'visible', timeout: 30_000 });
	};
	// The reviewer starts a slow turn; the scripted agent's message waits for it (one turn per worktree by
	// default, `agentTabs.tasks.maxPerWorktree`), then writes in the same worktree.
	await send(await openChat(reviewerLabel), 'sleep 4000\nwrite review.md from the reviewer');
	const scripted = await openChat(agentLabel);
	await send(scripted, 'write scripted.md from the scripted agent');
	await scripted.locator('.turn.turn-done').waitFor({ state: 'visible', timeout: 60_000 });
	await scripted.locator('.file-edit', { hasText: 'scripted.md' }).waitFor({ state: 'visible', timeout: 30_000 });
	if ((await scripted.locator('.file-edit', { hasText: 'review.md' }).count()) !== 0) {
		throw new Error("the reviewer's file is shown in the scripted agent's tab");
	}
	await page.screenshot({ path: path.join(shotDir, '12-two-agents-scripted.png') });
	await chatTab(reviewerLabel).click();
	const reviewer = await chatFrame();
	await reviewer.locator('.turn.turn-done').waitFor({ state: 'visible', timeout: 60_000 });
	await reviewer.locator('.file-edit', { hasText: 'review.md' }).waitFor({ state: 'visible', timeout: 30_000 });
	if ((await reviewer.locator('.file-edit', { hasText: 'scripted.md' }).count()) !== 0) {
		throw new Error("the scripted agent's file is shown in the reviewer's tab");
	}
	await page.screenshot({ path: path.join(shotDir, '13-two-agents-reviewer.png') });
	for (const [file, text] of [['review.md', 'from the reviewer'], ['scripted.md', 'from the scripted agent']]) {
		if (fs.readFileSync(path.join(worktree, file), 'utf8') !== text) {
			throw new Error(`${file} in the worktree does not hold ${JSON.stringify(text)}`);
		}
	}
	// What the database says, read by the command line while the window holds the state (a read-only query).
	const stateDir = path.join(state.dirs.userDataDir, 'User', 'workspaceStorage');
	const storage = fs.readdirSync(stateDir).map((d) => path.join(stateDir, d, 'agent-tabs.agent-tabs')).find((d) => fs.existsSync(path.join(d, 'agent-tabs.sqlite')));
	// --json prints one JSON object per line.
	const cli = (...args) =>
		execFileSync(process.execPath, [path.join(repoRoot, 'dist', 'cli.js'), ...args, '--state', storage, '--json'], { env: state.env, encoding: 'utf8' })
			.split('\n')
			.filter(Boolean)
			.map((l) => JSON.parse(l));
	const [session] = cli('sessions');
	const chats = cli('chats');
	const pending = cli('pending', session.id);
	// Each change names its agent and its chat, and that chat is one of that agent's (written through ACP).
	const agentOf = (file) => {
		const change = pending.find((c) => c.path === file && c.source === 'protocol');
		return change && chats.find((c) => c.id === change.chat_id)?.agent === change.agent ? change.agent : undefined;
	};
	if (agentOf('review.md') !== 'reviewer' || agentOf('scripted.md') !== 'scripted') {
		throw new Error(`the pending changes are not attributed to their agents: ${JSON.stringify(pending)} (chats ${JSON.stringify(chats)})`);
	}
}

async function settingsPickers() {
	const { page } = state;
	const frame = await chatFrameShowing(reviewerLabel);
	const shown = () => frame.locator('.toolbar select:visible').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
	// The reviewer offers its mode only as a setting: that is the one mode picker, named as the agent names it.
	await frame.locator('select[aria-label="Effort"]').waitFor({ state: 'visible', timeout: 30_000 });
	if (JSON.stringify(await shown()) !== JSON.stringify(['Approval', 'Model', 'Effort', 'Fast mode'])) {
		throw new Error(`the reviewer's tab shows the pickers ${JSON.stringify(await shown())}, not Approval, Model, Effort and Fast mode`);
	}
	const effort = frame.locator('select[aria-label="Effort"]');
	if ((await effort.inputValue()) !== 'medium') {
		throw new Error(`the Effort picker shows ${await effort.inputValue()}, not the agent's current medium`);
	}
	await frame.locator('select[aria-label="Approval"]').selectOption({ label: 'Plan only' });
	await effort.selectOption({ label: 'High' });
	// The agent refuses Max with the Small model: the picker goes back, and the tab says the agent's reason.
	await effort.selectOption({ label: 'Max' });
	await frame.locator('[role="alert"]', { hasText: 'Max effort needs the Large model' }).waitFor({ state: 'visible', timeout: 30_000 });
	for (const until = Date.now() + 10_000; (await effort.inputValue()) !== 'high'; await sleep(100)) {
		if (Date.now() > until) {
			throw new Error(`the refused Effort picker shows ${await effort.inputValue()}, not the high the agent kept`);
		}
	}
	// An on/off setting is a picker of On and Off, set as the boolean the agent gave.
	await frame.locator('select[aria-label="Fast mode"]').selectOption({ label: 'On' });
	await page.screenshot({ path: path.join(shotDir, '14a-settings-refused.png') });
	// What the agent holds now: the mode and the effort chosen in the tab, set as settings (session/set_config_option).
	const input = frame.locator('textarea.input');
	await input.fill('settings');
	await input.press('Enter');
	await frame.locator('.message.agent .body', { hasText: 'settings: mode=plan model=small effort=high fast=true' }).waitFor({ state: 'visible', timeout: 60_000 });
	if ((await frame.locator('select[aria-label="Approval"]').inputValue()) !== 'plan' || (await effort.inputValue()) !== 'high') {
		throw new Error('the pickers do not show the settings the agent holds after the turn');
	}
	// The scripted agent offers modes as well as settings: a Mode picker with its settings after the model.
	await chatTab(agentLabel).click();
	const scripted = await chatFrameShowing(agentLabel);
	await scripted.locator('select[aria-label="Effort"]').waitFor({ state: 'visible', timeout: 30_000 });
	const scriptedPickers = await scripted.locator('.toolbar select:visible').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
	if (JSON.stringify(scriptedPickers) !== JSON.stringify(['Mode', 'Model', 'Effort', 'Fast mode'])) {
		throw new Error(`the scripted agent's tab shows the pickers ${JSON.stringify(scriptedPickers)}, not Mode, Model, Effort and Fast mode`);
	}
	await page.screenshot({ path: path.join(shotDir, '14b-settings-pickers.png') });
}

async function permissionsBeyondShown() {
	const { page } = state;
	const frame = await chatFrameShowing(agentLabel);
	const input = frame.locator('textarea.input');
	await input.fill('permissions 5 Step');
	await input.press('Enter');
	const card = (i) => frame.locator(`section.permission[aria-label="Permission request: Step ${i}"]`);
	const waitsText = 'Waits until earlier requests are answered; then you can answer it.';
	await card(5).locator('.permission-status', { hasText: waitsText }).waitFor({ state: 'visible', timeout: 60_000 });
	for (const i of [1, 2, 3, 4]) {
		await card(i).getByRole('button', { name: /Allow/ }).waitFor({ state: 'visible', timeout: 30_000 });
	}
	if ((await card(5).locator('button').count()) !== 0) {
		throw new Error('the fifth request offers an answer while the 4 before it are shown');
	}
	await card(5).scrollIntoViewIfNeeded();
	await page.screenshot({ path: path.join(shotDir, '14c-fifth-permission-waits.png') });
	// One answered: the fifth is shown now, and can be answered.
	await card(1).getByRole('button', { name: /Allow/ }).click();
	await card(5).getByRole('button', { name: /Reject/ }).waitFor({ state: 'visible', timeout: 30_000 });
	if (await card(5).locator('.permission-status', { hasText: waitsText }).count()) {
		throw new Error('the fifth card still says it waits once it can be answered');
	}
	await card(5).getByRole('button', { name: /Reject/ }).click();
	for (const i of [2, 3, 4]) {
		await card(i).getByRole('button', { name: /Allow/ }).click();
	}
	await frame.locator('.message.agent .body', { hasText: 'permissions: allow allow allow allow reject' }).waitFor({ state: 'visible', timeout: 60_000 });
	await page.screenshot({ path: path.join(shotDir, '14d-permissions-answered.png') });
}

async function scrollAnchorAcrossHide() {
	const { page } = state;
	const frame = await chatFrameShowing(agentLabel);
	const input = frame.locator('textarea.input');
	// Enough rows to scroll: a tool call with its output each.
	await input.fill(Array.from({ length: 30 }, (_, i) => `toolout output ${i}`).join('\n'));
	await input.press('Enter');
	for (const until = Date.now() + 60_000; (await frame.locator('.transcript .page > .tool').count()) < 30 || (await frame.locator('.turn.turn-running').count()) > 0; await sleep(250)) {
		if (Date.now() > until) {
			throw new Error(`the turn of 30 tool calls shows ${await frame.locator('.transcript .page > .tool').count()} of them`);
		}
	}
	const log = frame.locator('[role="log"]');
	// The reader scrolls up to a row in the middle, 10 px of it above the top of the view. As a reader does, in
	// steps the page follows: a page of rows out of view has an estimated size until it is shown, so a row in it
	// measured at once is not where its page is. Its page comes into view first, then the row to its place.
	const rowId = await log.evaluate(async (e) => {
		const rows = [...e.querySelectorAll('.page > [data-row-id]')];
		const row = rows[Math.floor(rows.length / 2)];
		const frame = () => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
		e.scrollTop += row.parentElement.getBoundingClientRect().top - e.getBoundingClientRect().top;
		for (let i = 0; i < 5; i++) {
			await frame();
			e.scrollTop += row.getBoundingClientRect().top - e.getBoundingClientRect().top + 10;
		}
		return row.dataset.rowId;
	});
	// Where the row is, if it is shown (a row in a page out of view is measured in its page's estimate, not seen).
	const offsetOf = (f) => f.locator('[role="log"]').evaluate((e, id) => {
		const row = e.querySelector(`[data-row-id="${id}"]`);
		return row?.checkVisibility({ contentVisibilityAuto: true }) ? Math.round(row.getBoundingClientRect().top - e.getBoundingClientRect().top) : undefined;
	}, rowId);
	await sleep(500);
	const before = await offsetOf(frame);
	if (before !== -10) {
		throw new Error(`the row is at ${before} px after scrolling, not -10`);
	}
	await page.screenshot({ path: path.join(shotDir, '14e-scrolled-up.png') });
	// Another editor hides the tab (its page is thrown away); clicking the tab shows it again.
	await chatTab(reviewerLabel).click();
	await chatFrameShowing(reviewerLabel);
	await chatTab(agentLabel).click();
	let after;
	for (const until = Date.now() + 30_000; ; await sleep(250)) {
		const shown = await chatFrameShowing(agentLabel);
		after = await offsetOf(shown).catch(() => undefined);
		if (after === before || Date.now() > until) {
			break;
		}
	}
	if (after !== before) {
		throw new Error(`shown again, the row the reader was at is at ${after} px, not ${before}`);
	}
	await page.screenshot({ path: path.join(shotDir, '14f-shown-again.png') });
	// Back at the bottom for what follows.
	await (await chatFrameShowing(agentLabel)).locator('[role="log"]').evaluate((e) => (e.scrollTop = e.scrollHeight));
}

async function quickSwitchKeepsDraft() {
	const { page } = state;
	const frame = await chatFrameShowing(agentLabel);
	const input = frame.locator('textarea.input');
	await input.click();
	await input.pressSequentially(quickDraft, { delay: 5 });
	// No pause: the user clicks another tab right after the last key (VS Code throws the hidden tab's page away).
	await chatTab(reviewerLabel).click();
	await chatFrameShowing(reviewerLabel);
	await chatTab(agentLabel).click();
	let draft;
	for (const until = Date.now() + 15_000; ; await sleep(250)) {
		draft = await (await chatFrameShowing(agentLabel)).locator('textarea.input').inputValue().catch(() => undefined);
		if (draft === quickDraft || Date.now() > until) {
			break;
		}
	}
	if (draft !== quickDraft) {
		throw new Error(`shown again, the message box holds ${JSON.stringify(draft)}, not the text typed just before switching tabs`);
	}
	await page.screenshot({ path: path.join(shotDir, '14f2-draft-after-quick-switch.png') });
	await (await chatFrameShowing(agentLabel)).locator('textarea.input').fill('');
}

async function editQueued() {
	const { page } = state;
	let frame = await chatFrameShowing(agentLabel);
	let input = frame.locator('textarea.input');
	let queue = frame.locator('section[aria-label="Queued messages"]');
	await input.fill('sleep 8000\nsay the slow turn ends');
	await input.press('Enter');
	await frame.locator('.message.user .body', { hasText: 'the slow turn ends' }).waitFor({ state: 'visible', timeout: 30_000 });
	await input.fill('say queued as first typed');
	await input.press('Enter');
	await queue.getByRole('button', { name: 'Edit: say queued as first typed' }).click();
	const editor = queue.locator('textarea');
	await editor.fill('say queued and edited');
	// The queue and its edit box take room from the transcript: the reader at the bottom still sees the running turn.
	await assertInView(frame.locator('.message.user .body', { hasText: 'the slow turn ends' }), 'the running turn while a queued message is edited');
	await page.screenshot({ path: path.join(shotDir, '14g-editing-queued.png') });
	// Before saving, the user looks at another tab and comes back: the page was thrown away, the edit is not
	// (it is kept as a draft is: each change goes to the host at once).
	await chatTab(reviewerLabel).click();
	await chatFrameShowing(reviewerLabel);
	await chatTab(agentLabel).click();
	frame = await chatFrameShowing(agentLabel);
	input = frame.locator('textarea.input');
	queue = frame.locator('section[aria-label="Queued messages"]');
	const editorAgain = queue.locator('textarea');
	if (!(await editorAgain.waitFor({ state: 'visible', timeout: 5_000 }).then(() => true, () => false)) || (await editorAgain.inputValue()) !== 'say queued and edited') {
		throw new Error(`shown again, the tab lost the unsaved edit of the queued message (queue: ${JSON.stringify(await queue.innerText().catch(() => ''))})`);
	}
	await editorAgain.press('Enter');
	await queue.locator('.queued-text', { hasText: 'say queued and edited' }).waitFor({ state: 'visible', timeout: 15_000 });
	// A second message waits behind it; its edit is still open when it starts, so it goes as it was.
	await input.fill('sleep 1500\nsay sent as it was');
	await input.press('Enter');
	await queue.getByRole('button', { name: /Edit: sleep 1500/ }).click();
	await queue.locator('textarea').fill('say an edit too late');
	await frame.locator('.message.agent .body', { hasText: 'queued and edited' }).waitFor({ state: 'visible', timeout: 60_000 });
	await frame.locator('.message.agent .body', { hasText: 'sent as it was' }).waitFor({ state: 'visible', timeout: 60_000 });
	await frame.locator('.composer .note-text[role="status"]', { hasText: /your edited text is in the message box/ }).waitFor({ state: 'visible', timeout: 15_000 });
	// The reader never left the bottom: the transcript followed the queued messages' replies.
	await assertInView(frame.locator('.message.agent .body', { hasText: 'sent as it was' }), 'the last reply');
	if ((await input.inputValue()) !== 'say an edit too late') {
		throw new Error(`the message box holds ${JSON.stringify(await input.inputValue())}, not the edit that came too late`);
	}
	if ((await frame.locator('.message.agent .body', { hasText: 'queued as first typed' }).count()) !== 0 || (await frame.locator('.message.user .body', { hasText: 'say queued and edited' }).count()) !== 1) {
		throw new Error('the agent got the queued message as first typed, not as edited');
	}
	await page.screenshot({ path: path.join(shotDir, '14h-late-edit-in-message-box.png') });
	await input.fill('');
	// The reviewer's tab is in view for the next step; shown again, its pickers say what the agent holds.
	await chatTab(reviewerLabel).click();
	const reviewer = await chatFrameShowing(reviewerLabel);
	await reviewer.locator('select[aria-label="Effort"]').waitFor({ state: 'visible', timeout: 30_000 });
	const values = [await reviewer.locator('select[aria-label="Approval"]').inputValue(), await reviewer.locator('select[aria-label="Effort"]').inputValue()];
	if (JSON.stringify(values) !== JSON.stringify(['plan', 'high'])) {
		throw new Error(`shown again, the reviewer's Approval and Effort pickers show ${JSON.stringify(values)}, not what its agent holds (plan, high)`);
	}
}

/** Fails unless the element is inside the transcript's visible part (within a few seconds: a scroll may follow). */
async function assertInView(locator, what) {
	let where;
	for (const until = Date.now() + 3_000; ; await sleep(100)) {
		where = await locator.evaluate((el) => {
			const log = el.closest('[role="log"]').getBoundingClientRect();
			const r = el.getBoundingClientRect();
			return { top: Math.round(r.top - log.top), bottom: Math.round(log.bottom - r.bottom) };
		});
		if ((where.top >= 0 && where.bottom >= 0) || Date.now() > until) {
			break;
		}
	}
	if (where.top < 0 || where.bottom < 0) {
		throw new Error(`${what} is not in view: ${where.top} px from the top of the transcript, ${where.bottom} px from its bottom`);
	}
}

/**
 * The frame of the chat tab whose heading names `label`. Opening or switching tabs replaces webview frames,
 * so a frame found a moment earlier may be detached: look again until the right one answers.
 */
async function chatFrameShowing(label, timeout = 60_000) {
	const deadline = Date.now() + timeout;
	for (;;) {
		for (const frame of state.page.frames()) {
			if (!frame.isDetached() && frame.url().includes('/webview/') && (await frame.locator('h1.title', { hasText: label }).count().catch(() => 0)) > 0) {
				return frame;
			}
		}
		if (Date.now() > deadline) {
			throw new Error(`no chat tab showing ${label} within ${timeout / 1000} s`);
		}
		await sleep(250);
	}
}

/** Shows the chat's tab (the others go to the background), reloads the window and waits for that tab. */
async function reloadShowing(label) {
	await chatTab(label).click();
	await chatFrameShowing(label);
	await runPaletteCommand(state.page, 'Developer: Reload Window');
	await state.page.waitForEvent('load', { timeout: 60_000 }).catch(() => undefined);
	await workbench();
	await chatFrameShowing(label, 120_000);
}

async function backgroundTabAcrossReload() {
	const { page } = state;
	// The reviewer's tab keeps a draft, then goes to the background: VS Code restores such a tab after a
	// reload only once it is shown again.
	const reviewer = await chatFrameShowing(reviewerLabel);
	const input = reviewer.locator('textarea.input');
	await input.click();
	await input.pressSequentially(backgroundDraft, { delay: 5 });
	await sleep(2_000);
	await reloadShowing(agentLabel);
	// Before that tab was shown, the reviewer's chat is opened from the palette: a second tab for it.
	await runPaletteCommand(page, 'Agent Tabs: Open Chat');
	await pick(page, reviewerLabel);
	await chatFrameShowing(reviewerLabel);
	const tabs = await chatTab(reviewerLabel).count();
	if (tabs !== 2) {
		throw new Error(`expected the restored tab and the one just opened, found ${tabs} tabs named ${reviewerLabel}`);
	}
	// A message sent from the new tab (which leaves an empty draft behind it) must not cost the old tab its draft.
	const second = await chatFrameShowing(reviewerLabel);
	const secondInput = second.locator('textarea.input');
	await secondInput.fill('say sent from the second tab');
	await secondInput.press('Enter');
	await second.locator('.message.agent .body', { hasText: 'sent from the second tab' }).waitFor({ state: 'visible', timeout: 60_000 });
	// Its agent started again after the reload with the settings chosen in the tab earlier, not its defaults.
	await second.locator('select[aria-label="Fast mode"]').waitFor({ state: 'visible', timeout: 30_000 });
	const restored = [];
	for (const picker of ['Approval', 'Effort', 'Fast mode']) {
		restored.push(await second.locator(`select[aria-label="${picker}"]`).inputValue());
	}
	if (JSON.stringify(restored) !== JSON.stringify(['plan', 'high', 'true'])) {
		throw new Error(`after the reload the reviewer's Approval, Effort and Fast mode pickers show ${JSON.stringify(restored)}, not the settings its chat had (plan, high, true)`);
	}
	await sleep(1_000);
	// The user clicks the tab from before the reload (new tabs open to the right of the active one).
	await chatTab(reviewerLabel).first().click();
	const deadline = Date.now() + 30_000;
	while ((await chatTab(reviewerLabel).count()) !== 1) {
		if (Date.now() > deadline) {
			throw new Error(`the chat still has ${await chatTab(reviewerLabel).count()} tabs`);
		}
		await sleep(250);
	}
	// The closed tab's frame may linger a moment: read the one tab that is left until it answers.
	let draft;
	for (const until = Date.now() + 30_000; ; await sleep(250)) {
		const shown = await chatFrameShowing(reviewerLabel);
		draft = await shown.locator('textarea.input').inputValue({ timeout: 5_000 }).catch(() => undefined);
		if (draft === backgroundDraft || Date.now() > until) {
			break;
		}
	}
	if (draft !== backgroundDraft) {
		throw new Error(`the reviewer's one tab holds ${JSON.stringify(draft)}, not the draft typed before the reload`);
	}
	await page.screenshot({ path: path.join(shotDir, '14-background-tab-after-reload.png') });
	// The tab that stayed works: a message sent from it runs (and its agent runs again for the next step).
	const frame = await chatFrameShowing(reviewerLabel);
	const input2 = frame.locator('textarea.input');
	await input2.fill('say the restored tab answers');
	await input2.press('Enter');
	await frame.locator('.message.agent .body', { hasText: 'the restored tab answers' }).waitFor({ state: 'visible', timeout: 60_000 });
}

async function closeUnrestoredTab() {
	const { page } = state;
	// The reviewer's tab goes to the background; after the reload VS Code keeps it unrestored until shown.
	await reloadShowing(agentLabel);
	await chatTab(reviewerLabel).waitFor({ state: 'visible', timeout: 10_000 });
	await page.locator('.part.activitybar .action-item a[aria-label^="Agent Tabs"]').click({ timeout: 15_000 });
	// The Sessions pane only: the Tasks pane lists the reviewer's tasks by its chat's name too.
	const sessions = page.locator('.part.sidebar .pane', { has: page.locator('.pane-header', { hasText: /^Sessions/ }) });
	const chatRow = sessions.locator('.monaco-list-row', { hasText: reviewerLabel });
	if (!(await chatRow.first().isVisible())) {
		await sessions.locator('.monaco-list-row', { hasText: sessionTitle }).first().click();
	}
	await chatRow.first().waitFor({ state: 'visible', timeout: 20_000 });
	await chatRow.first().click({ button: 'right' });
	await clickMenuItem(page, 'Close Chat');
	await chatTab(reviewerLabel).waitFor({ state: 'detached', timeout: 20_000 });
	await chatRow.filter({ hasText: 'closed' }).first().waitFor({ state: 'visible', timeout: 20_000 });
	await page.screenshot({ path: path.join(shotDir, '15-unrestored-tab-closed.png') });
	// The other chat's tab is untouched and works (its agent runs again for the next step).
	await chatTab(agentLabel).click();
	const frame = await chatFrameShowing(agentLabel);
	const input = frame.locator('textarea.input');
	await input.fill('say still here after the other tab closed');
	await input.press('Enter');
	await frame.locator('.message.agent .body', { hasText: 'still here after the other tab closed' }).waitFor({ state: 'visible', timeout: 60_000 });
}

async function deleteSession() {
	const { page } = state;
	await chatTab(agentLabel).waitFor({ state: 'visible', timeout: 10_000 });
	const agents = scriptedAgentPids();
	if (agents.length === 0) {
		throw new Error('no agent process of the session runs before the delete');
	}
	await runPaletteCommand(page, 'Agent Tabs: Delete Session');
	await pick(page, sessionTitle);
	const dialog = page.locator('.monaco-dialog-box');
	await dialog.waitFor({ state: 'visible', timeout: 30_000 });
	const text = await dialog.innerText();
	if (!text.includes('review.md') || !text.includes('scripted.md')) {
		throw new Error(`the dialog does not name the agents' files: ${JSON.stringify(text)}`);
	}
	await dialog.getByRole('button', { name: 'Save and Delete' }).click();
	await toast('refs/agent-tabs/saved/', 60_000);
	// Its chats went with the session: their tabs close instead of failing at the next message.
	for (const label of [agentLabel, reviewerLabel]) {
		await chatTab(label).waitFor({ state: 'detached', timeout: 20_000 });
	}
	if (fs.existsSync(worktree)) {
		throw new Error('the worktree folder is still there');
	}
	const alive = (pid) => {
		try {
			process.kill(pid, 0);
			return true;
		} catch {
			return false;
		}
	};
	for (let i = 0; i < 100 && agents.some(alive); i++) {
		await sleep(100);
	}
	if (agents.some(alive)) {
		throw new Error(`agent processes of the deleted session still run: ${agents.filter(alive).join(', ')}`);
	}
	await page.screenshot({ path: path.join(shotDir, '16-deleted-session-tabs-closed.png') });
}

/** Processes of the scripted agent working in the session's worktree (Linux: read from /proc). */
function scriptedAgentPids() {
	const pids = [];
	for (const entry of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(entry)) {
			continue;
		}
		try {
			const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
			if (cmdline.includes(agentScript) && fs.realpathSync(`/proc/${entry}/cwd`) === fs.realpathSync(worktree)) {
				pids.push(Number(entry));
			}
		} catch {
			// The process ended while being read, or is not ours to read.
		}
	}
	return pids;
}

/** The editor tab of a chat (the tab strip, not the webview). */
function chatTab(label = agentLabel) {
	return state.page.locator('.tabs-container .tab', { hasText: label });
}

/** The chat webview's inner frame. */
function chatFrame(timeout) {
	return chatFrameOf(state.page, timeout);
}

function toast(text, timeout) {
	return toastOn(state.page, text, timeout);
}
