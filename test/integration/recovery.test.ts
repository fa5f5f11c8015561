/**
 * Inside a real VS Code (see index.ts and scripts/run-vscode-tests.mjs): what the user sees in notifications
 * and dialogs when the state is damaged, when an agent asks for permission, and when a repository proposes a
 * setup command. Notifications are read from the workbench through the runner (workbench.ts).
 *
 * The damaged-state test spans the phases: `write` leaves a live session and an archived one in git, the
 * runner folds the store and cuts agent-tabs.sqlite in half after `verify`, and `damaged` must say so in an
 * error naming the file kept aside and bring both sessions back from git.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { PermissionOutcome } from '../../src/agents/permissions';
import type { AgentTabsTestApi } from '../../src/extension';
import { slugify } from '../../src/worktrees/worktreeService';
import { canProbeWorkbench, waitForNotification } from './workbench';

const phase = process.env.E2E_PHASE;
const marker = process.env.E2E_MARKER;

/** Resolves to `value`, or rejects with `message` after `ms`: a wait that should be short must not hang the suite. */
function within<T>(promise: PromiseLike<T>, ms: number, message: string): Promise<T> {
	let timer: NodeJS.Timeout | undefined;
	return Promise.race([Promise.resolve(promise), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(message)), ms)))]).finally(() => clearTimeout(timer));
}

suite('Agent Tabs in a real VS Code: notifications, dialogs and a damaged database', () => {
	let api: AgentTabsTestApi;
	const folder = (): string => vscode.workspace.workspaceFolders![0]!.uri.fsPath;
	// The distinguishing word first: branch names are cut to a few dozen characters.
	const liveTitle = `live ${marker}`;
	const archivedTitle = `archived ${marker}`;

	suiteSetup(async () => {
		const exports = await vscode.extensions.getExtension<AgentTabsTestApi | undefined>('agent-tabs.agent-tabs')!.activate();
		assert.ok(exports, 'activate() returned no test API');
		api = exports;
	});

	test('damaged database, part 1: a live session and an archived one are in git', async function () {
		if (phase !== 'write') {
			this.skip();
		}
		this.timeout(60_000);
		const { store } = await api.ready;
		const service = await api.worktreeService();
		const live = await service.createSession({ repo: folder(), title: liveTitle });
		fs.writeFileSync(path.join(live.worktree.path, 'work in progress.txt'), 'not committed\n');
		const archived = await service.createSession({ repo: folder(), title: archivedTitle });
		fs.writeFileSync(path.join(archived.worktree.path, 'saved work.txt'), 'kept in a saved ref\n');
		await service.archiveSession(archived.session.id);
		assert.ok(!fs.existsSync(archived.worktree.path));
		await store.durable(); // the runner kills this window hard right after the suite
	});

	test('damaged database, part 2: an error notification names the damaged file, kept aside', async function () {
		if (phase !== 'damaged') {
			this.skip();
		}
		const { store } = await api.ready;
		const damaged = store.recovery.damaged;
		assert.ok(damaged, 'the store did not find the damaged database');
		const kept = damaged.keptAs.find((f) => path.basename(f).startsWith('agent-tabs.sqlite.bad-'));
		assert.ok(kept, `the damaged database file is not among the files kept aside: ${JSON.stringify(damaged.keptAs)}`);
		assert.ok(fs.statSync(kept).size > 0, `${kept} is not there`);
		const message = await waitForNotification(/database was damaged/, 20_000, 'error');
		assert.ok(message.includes(kept), `the error does not name ${kept}: ${message}`);
	});

	test('damaged database, part 3: the sessions come back from git (the window\'s folder and the worktrees folder)', async function () {
		if (phase !== 'damaged') {
			this.skip();
		}
		assert.ok(marker, 'E2E_MARKER is not set');
		const { sessions } = await api.ready;
		const listed = sessions.list();
		// A rebuilt live session is named after its branch; an archived one after the title its save recorded.
		const live = listed.find((s) => s.branch === `agent-tabs/${slugify(liveTitle)}`);
		assert.ok(live, `the live session is not back: ${JSON.stringify(listed.map((s) => [s.title, s.branch, s.status]))}`);
		assert.equal(live.status, 'active');
		assert.equal(live.worktree_state, 'ready');
		assert.equal(fs.readFileSync(path.join(live.worktree_path!, 'work in progress.txt'), 'utf8'), 'not committed\n');
		const archived = listed.find((s) => s.title === archivedTitle);
		assert.ok(archived, `the archived session is not back: ${JSON.stringify(listed.map((s) => [s.title, s.branch, s.status]))}`);
		assert.equal(archived.status, 'archived');
		assert.equal(archived.branch, `agent-tabs/${slugify(archivedTitle)}`);
		// Restorable as before: its saved work comes back.
		const service = await api.worktreeService();
		await service.restoreSession(archived.id);
		const restored = sessions.list().find((s) => s.id === archived.id)!;
		assert.equal(fs.readFileSync(path.join(restored.worktree_path!, 'saved work.txt'), 'utf8'), 'kept in a saved ref\n');
	});

	suite('a permission request shown as a notification', () => {
		const options = [
			{ optionId: 'allow', name: 'Allow once', kind: 'allow_once' as const },
			{ optionId: 'reject', name: 'Reject', kind: 'reject_once' as const },
		];
		setup(async function () {
			if (phase === 'damaged') {
				this.skip(); // once is enough; the first two phases run it
			}
			await vscode.commands.executeCommand('notifications.clearAll');
		});

		test('dismissing it rejects the request at once, not after the timeout', async () => {
			const { permissions } = await api.ready;
			assert.ok(permissions.policyFor('edit') === 'ask');
			// No chat tab shows this chat, so the request is a notification.
			const outcome = permissions.request({ chatId: 'chat-without-a-tab', agent: 'scripted', title: `dismiss me ${Date.now()}`, kind: 'edit', options });
			let settled: PermissionOutcome | undefined;
			void outcome.then((o) => (settled = o));
			// Dismiss as the user does (the notification's close, or Clear All), until it has been shown and closed.
			for (let i = 0; i < 50 && !settled; i++) {
				await vscode.commands.executeCommand('notifications.clearAll');
				await new Promise((r) => setTimeout(r, 100));
			}
			assert.deepEqual(await within(outcome, 5_000, 'the dismissed request is still waiting (for the 300 s timeout)'), { outcome: 'selected', optionId: 'reject', decidedBy: 'user' });
			assert.deepEqual(permissions.pending, []);
		});

		test('its button, pressed after the request was answered elsewhere, changes nothing and says so', async function () {
			if (!canProbeWorkbench) {
				this.skip();
			}
			const { permissions } = await api.ready;
			const title = `answered elsewhere ${Date.now()}`;
			const outcome = permissions.request({ chatId: 'chat-without-a-tab', agent: 'scripted', title, kind: 'edit', options });
			await waitForNotification(new RegExp(`asks: ${title}`));
			const request = permissions.pending.find((r) => r.title === title)!;
			// Answered on the chat tab's card (or by another window's notification) first ...
			assert.equal(permissions.decide(request.id, 'reject'), true);
			assert.deepEqual(await outcome, { outcome: 'selected', optionId: 'reject', decidedBy: 'user' });
			// ... then the notification's first button, "Allow once", is pressed.
			await vscode.commands.executeCommand('notification.acceptPrimaryAction');
			await waitForNotification(/already answered; your choice changed nothing/);
			assert.deepEqual(await outcome, { outcome: 'selected', optionId: 'reject', decidedBy: 'user' });
		});
	});

	test('a repository\'s setup command is only a proposal: it asks first, and without an answer nothing runs', async function () {
		if (phase === 'damaged') {
			this.skip();
		}
		this.timeout(60_000);
		const { sessions } = await api.ready;
		const settingsDir = path.join(folder(), '.vscode');
		const settingsFile = path.join(settingsDir, 'settings.json');
		const markers = { own: path.join(os.tmpdir(), `agent-tabs-setup-own-${Date.now()}`), proposed: path.join(os.tmpdir(), `agent-tabs-setup-proposed-${Date.now()}`) };
		const touch = (file: string): string => `"${process.execPath}" -e "require('fs').writeFileSync(process.argv[1], 'ran')" "${file}"`;
		const hadDir = fs.existsSync(settingsDir);
		fs.mkdirSync(settingsDir, { recursive: true });
		fs.writeFileSync(
			settingsFile,
			JSON.stringify({
				// Machine-scoped: would run without a question if it were taken from the repository.
				'agentTabs.worktrees.setupCommand': touch(markers.own),
				'agentTabs.worktrees.proposedSetupCommand': touch(markers.proposed),
			}),
		);
		try {
			const config = (): vscode.WorkspaceConfiguration => vscode.workspace.getConfiguration('agentTabs');
			for (let i = 0; i < 100 && !config().inspect('worktrees.proposedSetupCommand')?.workspaceValue; i++) {
				await new Promise((r) => setTimeout(r, 100));
			}
			assert.equal(config().inspect('worktrees.proposedSetupCommand')?.workspaceValue, touch(markers.proposed), 'VS Code read the repository\'s proposal');
			assert.equal(config().inspect('worktrees.setupCommand')?.workspaceValue, undefined, 'a machine-scoped setting is not taken from the repository');
			const before = sessions.list().length;
			const service = await api.worktreeService();
			// The extension asks in a modal dialog; VS Code refuses dialogs while extension tests run, and the
			// refusal carries the dialog's text: the question was asked, and nobody said yes.
			await assert.rejects(within(service.createSession({ repo: folder(), title: `proposed setup ${phase ?? ''}` }), 20_000, 'no confirmation was asked'), /proposes a setup command/);
			assert.equal(fs.existsSync(markers.proposed), false, 'the proposed command ran without a confirmation');
			assert.equal(fs.existsSync(markers.own), false, 'the repository\'s own setupCommand ran');
			assert.equal(sessions.list().length, before, 'the failed creation left no session behind');
		} finally {
			fs.rmSync(settingsFile, { force: true });
			if (!hadDir) {
				fs.rmSync(settingsDir, { recursive: true, force: true });
			}
			for (const file of Object.values(markers)) {
				fs.rmSync(file, { force: true });
			}
		}
	});
});
