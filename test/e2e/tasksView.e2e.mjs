#!/usr/bin/env node
// UI test of tasks as a user works with them, in the installed .vsix under code-server: "Agent Tabs: New Task"
// from the palette (prompt, agent, new session), the task in the Tasks view until it is done with its result,
// its chat opened from the view; then a task queued behind a running one in the same session, cancelled from
// the view before it ran; a task that fails, retried from the view. Screenshots in .test-output/e2e-tasks/.
// Writes .test-output/e2e-tasks.json. Expects dist/ and out/test built and the test VS Code installed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { node24, quietSettings, repoRoot, runPaletteCommand, sleep } from '../../scripts/lib/codeServer.mjs';
import { chatFrame, e2eRun, openPackaged, pick, runSteps, toast, workbench } from '../../scripts/lib/e2eRunner.mjs';

const run = e2eRun({ layer: 'e2e-tasks', shots: 'e2e-tasks', timeoutMs: 360_000 });
const { state } = run;
const worktreesRoot = path.join(run.runDir, 'worktrees');
const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');
const agentLabel = 'Scripted';
const marker = `task result ${Date.now()}`;
const firstPrompt = `say ${marker}`;
const slowPrompt = 'sleep 60000';
const queuedPrompt = 'write never.txt this task was cancelled before it ran';
const failingPrompt = 'crash';

const steps = [
	['the packaged extension opens in code-server, with the scripted agent in the user settings', open],
	['the Tasks view is empty until a task is added', emptyView],
	['"Agent Tabs: New Task" asks for the prompt, the agent and the session; the task runs in a new session and is done with its result', newTask],
	["clicking the task opens its chat tab, with the prompt and the agent's answer", openChat],
	['a task queued behind a running one in the same session is cancelled from the view and never runs; the running one is cancelled too', cancelQueued],
	['a task that fails is retried from the view as a new task', retryFailed],
	['an API key set with "Set API Key" for an agent never started, pasted into a New Task prompt after a reload: the agent gets it, no file of the state or the logs holds it', pastedKey],
];
await runSteps(run, steps);

async function open() {
	await openPackaged(run, {
		built: [agentScript],
		settings: quietSettings,
		machineSettings: {
			'agentTabs.worktrees.root': worktreesRoot,
			'agentTabs.agents': [
				{ id: 'scripted', label: agentLabel, transport: 'acp', command: node24, args: [agentScript], env: { SCRIPTED_AGENT_STATE_DIR: path.join(run.runDir, 'agent-state') } },
				// Declares a key; never started here.
				{ id: 'cloud', label: 'Cloud', transport: 'acp', command: node24, args: [agentScript], secretEnv: ['CLOUD_API_KEY'] },
			],
		},
	});
	await state.page.locator('.part.activitybar .action-item a[aria-label^="Agent Tabs"]').click({ timeout: 15_000 });
	await tasksPane().locator('.pane-header').waitFor({ state: 'visible', timeout: 15_000 });
}

async function emptyView() {
	// The store is open once the Sessions view says it has none.
	await state.page.locator('.part.sidebar .welcome-view-content', { hasText: 'No sessions yet' }).waitFor({ state: 'visible', timeout: 60_000 });
	if ((await taskRows().count()) !== 0) {
		throw new Error(`the Tasks view lists tasks before any was added: ${await taskRows().allInnerTexts()}`);
	}
}

/** Runs "Agent Tabs: New Task" and answers its three questions; `session` is the label of the session row to pick. */
async function addTask(prompt, session) {
	const { page } = state;
	await runPaletteCommand(page, 'Agent Tabs: New Task');
	const input = page.locator('.quick-input-widget .quick-input-box input');
	await page.locator('.quick-input-widget', { hasText: 'What should the agent do?' }).waitFor({ state: 'visible', timeout: 15_000 });
	await input.fill(prompt);
	await page.keyboard.press('Enter');
	await question('Which agent?');
	await pick(page, agentLabel);
	await question('Run it in which session?');
	await pick(page, session);
	await page.locator('.quick-input-widget').waitFor({ state: 'hidden', timeout: 15_000 });
}

async function newTask() {
	const { page } = state;
	// An empty prompt is refused in the input itself, in plain words.
	await runPaletteCommand(page, 'Agent Tabs: New Task');
	const input = page.locator('.quick-input-widget .quick-input-box input');
	await input.waitFor({ state: 'visible', timeout: 15_000 });
	await input.fill(' ');
	await page.locator('.quick-input-widget', { hasText: 'A task needs a prompt.' }).waitFor({ state: 'visible', timeout: 15_000 });
	await page.keyboard.press('Escape');

	await addTask(firstPrompt, 'New session');
	const row = taskRow(firstPrompt);
	await row.waitFor({ state: 'visible', timeout: 30_000 });
	await row.filter(status('done')).waitFor({ state: 'visible', timeout: 120_000 });
	const text = await row.innerText();
	if (!text.includes('scripted')) {
		throw new Error(`the task row does not name its agent: ${JSON.stringify(text)}`);
	}
	// It ran in a new session with its own worktree, named after the task.
	const worktrees = fs.existsSync(worktreesRoot) ? fs.readdirSync(worktreesRoot) : [];
	if (worktrees.length !== 1) {
		throw new Error(`expected one new worktree under ${worktreesRoot}, found ${JSON.stringify(worktrees)}`);
	}
	await page.locator('.part.sidebar .monaco-list-row', { hasText: firstPrompt }).first().waitFor({ state: 'visible', timeout: 30_000 });
	// The result summary is the task's hover. A hover shows only after the pointer rests on the row, and a
	// pointer already there (or a refresh of the row under it) may not start one: move away and back until it does.
	const hover = page.locator('.workbench-hover, .monaco-hover').filter({ hasText: 'Result:' });
	for (let attempt = 1; ; attempt++) {
		await page.mouse.move(0, 0);
		await sleep(300);
		await row.first().hover({ position: { x: 40, y: 10 } });
		const shown = await hover
			.first()
			.waitFor({ state: 'visible', timeout: 8_000 })
			.then(() => true)
			.catch(() => false);
		if (shown) {
			break;
		}
		if (attempt === 4) {
			throw new Error("the task's hover with its result did not show after hovering the row four times");
		}
	}
	const said = await hover.first().innerText();
	if (!said.includes(marker) || !said.includes('created by new_task')) {
		throw new Error(`the task's hover does not show its result and creator: ${JSON.stringify(said)}`);
	}
	await sleep(300);
	await run.shot('1-task-done.png');
	await page.mouse.move(0, 0);
}

async function openChat() {
	const { page } = state;
	await taskRow(firstPrompt).click();
	await page.locator('.tabs-container .tab', { hasText: firstPrompt }).waitFor({ state: 'visible', timeout: 30_000 });
	const frame = await chatFrame(page);
	await frame.locator('.message.user .body', { hasText: marker }).waitFor({ state: 'visible', timeout: 30_000 });
	await frame.locator('.message.agent .body', { hasText: marker }).waitFor({ state: 'visible', timeout: 30_000 });
	await frame.locator('.turn.turn-done').waitFor({ state: 'visible', timeout: 30_000 });
	await sleep(300);
	await run.shot('2-task-chat.png');
	// The chat's composer takes the focus as its webview settles, which would close a quick pick opened then.
	await runPaletteCommand(page, 'View: Close All Editors');
	await page.locator('.tabs-container .tab').first().waitFor({ state: 'detached', timeout: 15_000 });
}

async function cancelQueued() {
	const { page } = state;
	// One turn per worktree by default: the second task in the session waits for the first.
	await addTask(slowPrompt, firstPrompt);
	await taskRow(slowPrompt).filter(status('running')).waitFor({ state: 'visible', timeout: 60_000 });
	await addTask(queuedPrompt, firstPrompt);
	const queued = taskRow(queuedPrompt);
	await queued.filter(status('queued')).waitFor({ state: 'visible', timeout: 30_000 });
	await sleep(300);
	await run.shot('3-running-and-queued.png');
	await rowAction(queued, 'Cancel Task');
	await queued.filter(status('cancelled')).waitFor({ state: 'visible', timeout: 30_000 });
	// Ending the running one starts nothing more: the cancelled task stays cancelled.
	await rowAction(taskRow(slowPrompt), 'Cancel Task');
	await taskRow(slowPrompt).filter(status('cancelled')).waitFor({ state: 'visible', timeout: 60_000 });
	await sleep(2_000);
	if (!(await queued.innerText()).includes(' · cancelled · ')) {
		throw new Error(`the cancelled task changed status: ${JSON.stringify(await queued.innerText())}`);
	}
	const worktree = path.join(worktreesRoot, fs.readdirSync(worktreesRoot)[0]);
	if (fs.existsSync(path.join(worktree, 'never.txt'))) {
		throw new Error('the task cancelled while queued ran anyway');
	}
	await run.shot('4-cancelled.png');
}

async function retryFailed() {
	await addTask(failingPrompt, firstPrompt);
	const failed = taskRow(failingPrompt).filter(status('failed'));
	await failed.first().waitFor({ state: 'visible', timeout: 60_000 });
	await sleep(300);
	await run.shot('5-failed.png');
	await rowAction(failed.first(), 'Retry Task');
	// The retry is a new task with the same prompt; it fails the same way, so two failed rows remain.
	const deadline = Date.now() + 60_000;
	while ((await taskRow(failingPrompt).count()) < 2) {
		if (Date.now() > deadline) {
			throw new Error(`Retry Task added no new task: ${JSON.stringify(await taskRows().allInnerTexts())}`);
		}
		await sleep(250);
	}
	await sleep(300);
	await run.shot('6-retried.png');
}

/** The quick pick asking `placeholder`. */
function question(placeholder) {
	return state.page.locator(`.quick-input-widget .quick-input-box input[placeholder="${placeholder}"]`).waitFor({ state: 'visible', timeout: 15_000 });
}

async function pastedKey() {
	const { page } = state;
	const secret = `sk-cloud-${Date.now()}-e2e-secret`;
	await runPaletteCommand(page, 'Agent Tabs: Set API Key');
	await question('Which key?');
	await pick(page, 'CLOUD_API_KEY');
	const input = page.locator('.quick-input-widget .quick-input-box input[type="password"]');
	await input.waitFor({ state: 'visible', timeout: 15_000 });
	await input.fill(secret);
	await page.keyboard.press('Enter');
	await toast(page, 'CLOUD_API_KEY saved', 15_000);
	// A new window knows it from activation on, before any agent was given it.
	await runPaletteCommand(page, 'Developer: Reload Window');
	await page.waitForEvent('load', { timeout: 60_000 }).catch(() => undefined);
	await workbench(page);
	await page.locator('.part.sidebar .monaco-list-row', { hasText: firstPrompt }).first().waitFor({ state: 'visible', timeout: 90_000 });
	const prompt = `write key.txt ${secret}`;
	await addTask(prompt, firstPrompt);
	const row = taskRows().filter({ hasText: 'write key.txt [redacted CLOUD_API_KEY]' });
	await row.filter(status('done')).waitFor({ state: 'visible', timeout: 60_000 });
	const worktree = path.join(worktreesRoot, fs.readdirSync(worktreesRoot)[0]);
	if (fs.readFileSync(path.join(worktree, 'key.txt'), 'utf8') !== secret) {
		throw new Error('the agent did not get the prompt as typed');
	}
	if ((await taskRows().allInnerTexts()).some((t) => t.includes(secret))) {
		throw new Error('the Tasks view shows the key');
	}
	await sleep(300);
	await run.shot('7-pasted-key-redacted.png');
	// The state folder (database, journal) and the logs live under the user data folder of the server.
	const holding = filesHolding(state.dirs.userDataDir, secret);
	if (holding.length > 0) {
		throw new Error(`the key is stored in clear in ${JSON.stringify(holding)}`);
	}
}

/** Files under `dir` whose bytes contain `text`. */
function filesHolding(dir, text) {
	const found = [];
	for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
		const file = path.join(entry.parentPath ?? entry.path, entry.name);
		if (entry.isFile() && fs.readFileSync(file, 'latin1').includes(text)) {
			found.push(file);
		}
	}
	return found;
}

function tasksPane() {
	return state.page.locator('.part.sidebar .pane', { has: state.page.locator('.pane-header', { hasText: /^Tasks/ }) });
}

function taskRows() {
	return tasksPane().locator('.monaco-list-row');
}

function taskRow(prompt) {
	return taskRows().filter({ hasText: prompt });
}

/**
 * A filter for rows whose description shows `name` as the status ("agent · status · where"), never a prompt
 * that happens to hold the word (the queued task's prompt says "cancelled").
 */
function status(name) {
	return { hasText: ` · ${name} · ` };
}

/** Clicks a task row's inline action (shown on hover), by its title. */
async function rowAction(row, title) {
	await row.first().hover();
	const action = row.first().locator(`.actions .action-label[aria-label="${title}"]`);
	await action.waitFor({ state: 'visible', timeout: 15_000 });
	await action.click();
}
