/// <reference lib="dom" />
/**
 * The chat tab's app in a real browser (the page and its host double are in chatPage.ts). Screenshots of the
 * main states go to .test-output/.
 */
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Page } from 'playwright-core';
import type { ChatDraft, ChatRow, ChatSetting, ChatSnapshot, ChatTabState, EarlierRows, HostToWebview, RowUpdate, WebviewToHost } from '../../../src/protocol/messages';
import { repoRoot } from '../helpers';
import { chromiumPath, type FakeHost, longChat, meta, nextFrame, openChatTab, startChatPageServer, strings, typeKeys, type ChatPageServer } from './chatPage';

const outputDir = path.join(repoRoot, '.test-output');

const hostile = 'Here is an image: <img src=x onerror="window.__xss=1"> and <b>bold</b>';

function allRows(): ChatRow[] {
	return [
		{ id: 't1', turnId: 't1', kind: 'turn', number: 1, agent: 'scripted', status: 'done', canRewind: true, startedAt: 1 },
		{ id: 'u1', turnId: 't1', kind: 'user', text: 'Make the parser accept trailing commas.\nKeep the tests green.' },
		{ id: 'r1', turnId: 't1', kind: 'reasoning', text: 'The grammar lives in src/parser.ts.' },
		{ id: 'p1', turnId: 't1', kind: 'plan', entries: [{ content: 'Read the grammar', priority: 'high', status: 'completed' }, { content: 'Allow trailing commas', priority: 'high', status: 'in_progress' }, { content: 'Run the tests', priority: 'medium', status: 'pending' }] },
		{ id: 'c1', turnId: 't1', kind: 'tool_call', toolCallId: 'w1', title: 'Write src/parser.ts', toolKind: 'edit', status: 'completed', files: ['src/parser.ts'] },
		{ id: 'f1', turnId: 't1', kind: 'file_edit', path: 'src/parser.ts', editKind: 'modify', source: 'fs_write' },
		{ id: 'a1', turnId: 't1', kind: 'text', text: hostile },
		{ id: 'g1', turnId: 't1', kind: 'usage', inputTokens: 1200, outputTokens: 340 },
		{ id: 'n1', turnId: null, kind: 'notice', severity: 'warning', title: 'Scripted stopped unexpectedly', description: 'It restarts on your next message.' },
		{ id: 't2', turnId: 't2', kind: 'turn', number: 2, agent: 'scripted', status: 'running', canRewind: true, startedAt: 2 },
		{ id: 'u2', turnId: 't2', kind: 'user', text: 'Now write the changelog entry.' },
		{ id: 'q1', turnId: 't2', kind: 'permission', requestId: 'perm-a', title: 'Write CHANGELOG.md', toolKind: 'edit', options: [{ optionId: 'allow', name: 'Allow once', kind: 'allow_once' }, { optionId: 'always', name: 'Always allow', kind: 'allow_always' }, { optionId: 'reject', name: 'Reject', kind: 'reject_once' }] },
		{ id: 'e1', turnId: null, kind: 'error', message: 'Scripted could not start: the command was not found.', retryable: true },
		{ id: 'x1', turnId: 't2', kind: 'raw', method: 'future_update' },
	];
}

suite('webview/app: the chat tab in headless Chromium', function () {
	this.timeout(60_000);
	let server: ChatPageServer;
	let page: Page;
	let host: FakeHost;
	let problems: string[];

	suiteSetup(async function () {
		if (!fs.existsSync(chromiumPath)) {
			this.skip();
		}
		server = await startChatPageServer();
		fs.mkdirSync(outputDir, { recursive: true });
	});

	suiteTeardown(async () => {
		await server?.close();
	});

	async function openTab(snapshot: ChatSnapshot, width = 900, state?: ChatTabState, handlers: FakeHost['handlers'] = {}): Promise<void> {
		({ page, host, problems } = await openChatTab(server, snapshot, width, state, handlers));
	}

	teardown(async () => {
		await page?.context().close();
	});

	const notify = (message: HostToWebview): Promise<void> => page.evaluate((m) => void window.dispatchEvent(new MessageEvent('message', { data: m })), message);
	const rowUpdate = (u: Omit<RowUpdate, 'chatId' | 'epoch'>): Promise<void> => notify({ kind: 'notify', method: 'chat/didUpdateRow', params: { chatId: 'chat-1', epoch: 'e1', ...u } });
	const posted = (): Promise<WebviewToHost[]> => page.evaluate(() => (window as unknown as { __posted: WebviewToHost[] }).__posted);
	const snap = (rows: ChatRow[], seq: number, m = meta()): ChatSnapshot => ({ chatId: 'chat-1', epoch: 'e1', seq, rows, meta: m });
	/**
	 * A chat of 300 turns (1,200 rows) open on its last 50 turns: the host reads each slice of 100 turns when
	 * asked, from `rows` (its database, which a test changes), once `release` lets it answer.
	 */
	async function openLongChat(state?: ChatTabState): Promise<{ rows: ChatRow[]; asked: number[]; release: () => void }> {
		const rows = longChat(300);
		const turnOf = (r: ChatRow): number => r.order![0];
		const asked: number[] = [];
		let release!: () => void;
		const gate = new Promise<void>((r) => (release = r));
		const earlierRows = async ({ before }: { before: number }): Promise<EarlierRows> => {
			asked.push(before);
			await gate;
			const from = Math.max(1, before - 100);
			return { rows: rows.filter((r) => turnOf(r) >= from && turnOf(r) < before), ...(from > 1 ? { earlierBefore: from } : {}) };
		};
		await openTab({ ...snap(rows.filter((r) => turnOf(r) >= 251), rows.length), earlierBefore: 251 }, 900, state, { 'chat/earlierRows': earlierRows });
		return { rows, asked, release };
	}

	const until = async (check: () => boolean | Promise<boolean>, what: string): Promise<void> => {
		const end = Date.now() + 5000;
		while (!(await check())) {
			if (Date.now() > end) {
				throw new Error(`timed out waiting for ${what}`);
			}
			await new Promise((r) => setTimeout(r, 20));
		}
	};

	test('renders every row kind as text, with roles and labels; agent markup stays text', async () => {
		await openTab(snap(allRows(), 14, meta({ status: 'waitingForPermission' })));
		const first = (await posted())[0];
		assert.deepEqual(first, { kind: 'ready', protocol: 4, view: 'chat' });
		assert.equal(await page.locator('[role="log"]').getAttribute('aria-label'), 'Transcript');
		assert.deepEqual(await page.locator('article').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label'))), ['You', 'Scripted (thinking)', 'Scripted', 'You']);
		const agentText = await page.locator('article[aria-label="Scripted"] .body').evaluate((e) => ({ text: e.textContent, children: e.children.length }));
		assert.deepEqual(agentText, { text: hostile, children: 0 });
		assert.equal(await page.locator('img, b').count(), 0, 'no markup from agent text');
		assert.equal(await page.evaluate(() => (window as unknown as { __xss?: number }).__xss), undefined);
		const log = (await page.locator('[role="log"]').innerText()).replace(/\s+/g, ' ');
		for (const expected of ['Turn 1 · done', 'Rewind to before this turn', 'Write src/parser.ts', 'edit', 'done', 'Read the grammar', 'Changed src/parser.ts', 'Tokens: 1200 in, 340 out', 'Scripted stopped unexpectedly', 'It restarts on your next message.', 'Write CHANGELOG.md', 'Allow once', 'Always allow', 'Reject', 'Could not start'.slice(0, 0), 'Retry', 'future_update']) {
			assert.ok(log.includes(expected), `"${expected}" in: ${log}`);
		}
		assert.equal(await page.locator('[role="group"][aria-label="Plan"] li').count(), 3);
		assert.equal(await page.locator('[role="note"]').first().innerText(), 'Scripted stopped unexpectedly\nIt restarts on your next message.');
		assert.equal(await page.locator('textarea.input').getAttribute('aria-label'), 'Message to Scripted');
		assert.equal(await page.locator('select[aria-label="Mode"]').inputValue(), 'code');
		assert.equal(await page.locator('.composer .status[role="status"]').innerText(), 'Waiting for your permission');
		assert.deepEqual(problems, []);
		await page.screenshot({ path: path.join(outputDir, 'chat-900.png'), fullPage: false });
	});

	test('a turn that stopped early, or a compaction, is said in the tab\'s own words, not the stored English', async () => {
		const rows: ChatRow[] = [
			{ id: 't1', turnId: 't1', kind: 'turn', number: 1, agent: 'scripted', status: 'done', stopReason: 'refusal', canRewind: false, startedAt: 1, endedAt: 2 },
			{ id: 'u1', turnId: 't1', kind: 'user', text: 'Do the forbidden thing.' },
			{ id: 'n1', turnId: 't1', kind: 'notice', severity: 'warning', title: 'stored English text', stopReason: 'refusal' },
			{ id: 'n2', turnId: 't1', kind: 'notice', severity: 'warning', title: 'a reason this view does not know', stopReason: 'constructor' },
			{ id: 'n3', turnId: 't1', kind: 'notice', severity: 'info', title: 'stored English compaction text', compaction: 'completed' },
			{ id: 'n4', turnId: 't1', kind: 'notice', severity: 'info', title: 'a compaction status this view does not know', compaction: 'paused' },
			{ id: 'c1', turnId: 't1', kind: 'tool_call', toolCallId: 'run', title: 'npm test', status: 'failed', stopped: true, files: [] },
			{ id: 'c2', turnId: 't1', kind: 'tool_call', toolCallId: 'bad', title: 'npm run lint', status: 'failed', files: [] },
		];
		await openTab(snap(rows, 7));
		assert.deepEqual(await page.locator('.tool-status').allInnerTexts(), [strings.toolStopped, strings.toolFailed], 'a call its turn stopped is not said to have failed');
		const notes = await page.locator('[role="log"] [role="note"]').allInnerTexts();
		assert.deepEqual(notes, [strings.stopRefusal, 'a reason this view does not know', strings.compactionDone, 'a compaction status this view does not know']);
		assert.match(strings.stopRefusal, /not in the agent's context/);
	});

	test("a tool call, permission request or error the agent gave no words for is said in the tab's own words", async () => {
		const rows: ChatRow[] = [
			{ id: 't1', turnId: 't1', kind: 'turn', number: 1, agent: 'scripted', status: 'error', canRewind: false, startedAt: 1, endedAt: 2 },
			{ id: 'c1', turnId: 't1', kind: 'tool_call', toolCallId: 'x', title: '', status: 'completed', files: [] },
			{ id: 'p1', turnId: 't1', kind: 'permission', requestId: 'r1', title: '', options: [{ optionId: 'a', name: 'Allow', kind: 'allow_once' }], decision: { optionId: 'a', outcome: 'selected' } as never },
			{ id: 'e1', turnId: 't1', kind: 'error', message: '', retryable: false },
		];
		await openTab(snap(rows, 4));
		assert.equal(await page.locator('.tool-title').innerText(), strings.toolCall);
		assert.equal(await page.locator('.tool').getAttribute('aria-label'), strings.toolCall);
		assert.equal(await page.locator('.permission-title').innerText(), strings.permissionUntitled);
		assert.equal(await page.locator('.error .body').innerText(), strings.errorUnknown);
		assert.deepEqual(problems, []);
	});

	test('file names and titles an agent gives show their hidden characters: a right-to-left override cannot make a .exe read as a .jpg', async () => {
		const spoof = 'photo\u202egpj.exe';
		const rows: ChatRow[] = [
			{ id: 't1', turnId: 't1', kind: 'turn', number: 1, agent: 'scripted', status: 'running', canRewind: false, startedAt: 1 },
			{ id: 'c1', turnId: 't1', kind: 'tool_call', toolCallId: 'w1', title: `Write ${spoof}`, toolKind: 'edit', status: 'completed', files: [spoof] },
			{ id: 'f1', turnId: 't1', kind: 'file_edit', path: `zero\u200bwidth\u2066.txt`, editKind: 'add', source: 'fs_write' },
			{ id: 'q1', turnId: 't1', kind: 'permission', requestId: 'perm-s', title: `Run ${spoof}\nsecond line`, toolKind: 'execute', options: [{ optionId: 'allow', name: 'Allow once', kind: 'allow_once' }] },
		];
		await openTab(snap(rows, 4, meta({ status: 'waitingForPermission' })));
		assert.equal(await page.locator('.tool-title').innerText(), 'Write photo\\u202egpj.exe');
		assert.equal(await page.locator('.tool .files li').innerText(), 'photo\\u202egpj.exe');
		assert.match(await page.locator('.file-edit').innerText(), /zero\\u200bwidth\\u2066\.txt/);
		assert.equal(await page.locator('.permission-title').evaluate((e) => e.textContent), 'Run photo\\u202egpj.exe\nsecond line', 'a line break stays a line break');
		assert.match((await page.locator('.permission').getAttribute('aria-label'))!, /photo\\u202egpj\.exe/);
	});

	test('a chat of 10,000 rows has them all in the page, lays out only those near the view (also while the user types), follows a reply at the end and comes back where the reader was', async function () {
		this.timeout(120_000);
		const rows = longChat(2500);
		const lastTurn = rows.length - 4;
		rows[lastTurn] = { ...rows[lastTurn]!, status: 'running' } as ChatRow;
		await openTab(snap(rows, rows.length));
		const log = page.locator('[role="log"]');
		const fromBottom = (): Promise<number> => log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight);
		// Rendered means laid out and painted: a row in a page out of view is skipped (and still found by
		// find-in-page and a screen reader, which a list that drops rows would not allow).
		const rendered = (id: string): Promise<boolean> => page.evaluate((rowId) => document.querySelector(`[data-row-id="${rowId}"]`)!.checkVisibility({ contentVisibilityAuto: true }), id);
		assert.equal(await page.locator('[role="log"] [data-row-id]').count(), 10_000);
		await nextFrame(page);
		assert.ok((await fromBottom()) < 2, `opens at the end, not ${await fromBottom()} px above it`);
		assert.equal(await rendered('a2499'), true, 'the last row is laid out');
		assert.equal(await rendered('u0'), false, 'the first row, 10,000 rows above the view, is not');
		// What a key costs is `npm run bench`'s (chat, key): here, that typing leaves the rows out of view alone.
		host.handlers['chat/saveDraft'] = (p) => ({ draft: p.draft });
		await page.locator('textarea.input').focus();
		await typeKeys(page, 5);
		assert.equal(await page.locator('textarea.input').inputValue(), 'aaaaa');
		assert.equal(await rendered('u0'), false, 'typing lays out no row far from the view');
		assert.ok((await fromBottom()) < 2, `still at the end after typing, not ${await fromBottom()} px above it`);
		// A reply streams into the last row and 60 more rows come (more than a page): the reader follows.
		for (let k = 1; k <= 20; k++) {
			await rowUpdate({ seq: rows.length + k, op: 'change', row: { id: 'a2499', turnId: 't2499', kind: 'text', text: `streamed line\n`.repeat(k) } });
			await nextFrame(page);
			assert.ok((await fromBottom()) < 2, `following the reply after chunk ${k}: ${await fromBottom()} px above the end`);
		}
		for (let k = 0; k < 60; k++) {
			await rowUpdate({ seq: rows.length + 21 + k, op: 'append', row: { id: `late${k}`, turnId: 't2499', kind: 'text', text: `late row ${k}\nsecond line` } });
		}
		await nextFrame(page);
		assert.ok((await fromBottom()) < 2, `following the rows appended: ${await fromBottom()} px above the end`);
		const tail = await page.locator('[role="log"] [data-row-id]').evaluateAll((els) => els.slice(-62).map((e) => (e as HTMLElement).dataset.rowId));
		assert.deepEqual(tail, ['c2499', 'a2499', ...Array.from({ length: 60 }, (_, k) => `late${k}`)]);
		// The host sends the whole chat again (a new epoch): rebuilt, it still opens at the end.
		await notify({ kind: 'notify', method: 'chat/didReset', params: snap(rows, rows.length + 100) });
		await nextFrame(page);
		await nextFrame(page);
		assert.ok((await fromBottom()) < 2, `at the end after a rebuild, not ${await fromBottom()} px above it`);
		// The reader goes far up, to a row never laid out until now, 10 px of it above the view; the tab is shown again.
		await log.evaluate((e) => {
			const row = e.querySelector('[data-row-id="u1234"]')!;
			e.scrollTop += row.getBoundingClientRect().top - e.getBoundingClientRect().top + 10;
		});
		await nextFrame(page);
		const offsetOf = (id: string): Promise<number> => log.evaluate((e, rowId) => Math.round(e.querySelector(`[data-row-id="${rowId}"]`)!.getBoundingClientRect().top - e.getBoundingClientRect().top), id);
		assert.equal(await offsetOf('u1234'), -10, 'scrolled to the row');
		await until(async () => JSON.stringify((await page.evaluate(() => (window as unknown as { __state: { scroll?: unknown } }).__state)).scroll) === JSON.stringify({ rowId: 'u1234', offset: -10 }), 'the anchor in the tab state');
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		await nextFrame(page);
		await nextFrame(page);
		assert.equal(await offsetOf('u1234'), -10, 'the same row at the same place');
		assert.equal(await rendered('u1234'), true);
		assert.deepEqual(problems, []);
	});

	test('a long chat shows its last rows at once and the earlier ones as they come, each in its place: the reader stays put, a row an update brought first is shown once, and a reader coming back to a row far up gets there', async function () {
		this.timeout(120_000);
		const { rows, asked, release } = await openLongChat();
		const log = page.locator('[role="log"]');
		const shownIds = (): Promise<(string | undefined)[]> => log.locator('[data-row-id]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.rowId));
		const offsetOf = (id: string): Promise<number> => log.evaluate((e, rowId) => Math.round(e.querySelector(`[data-row-id="${rowId}"]`)!.getBoundingClientRect().top - e.getBoundingClientRect().top), id);
		assert.equal((await shownIds()).length, 200, 'the last 50 turns at once');
		assert.equal(await log.getAttribute('aria-busy'), 'true', 'busy while the rest comes');
		// The reader scrolls up a little, to a row 10 px above the view; then a row of turn 200, not shown yet, changes.
		await log.evaluate((e) => {
			const row = e.querySelector('[data-row-id="u260"]')!;
			e.scrollTop += row.getBoundingClientRect().top - e.getBoundingClientRect().top + 10;
		});
		await nextFrame(page);
		const changedAt = rows.findIndex((r) => r.id === 'a199');
		rows[changedAt] = { ...rows[changedAt]!, text: 'changed before its slice came' } as ChatRow;
		await rowUpdate({ seq: rows.length + 1, op: 'change', row: rows[changedAt]! });
		release();
		await until(async () => (await log.getAttribute('aria-busy')) === 'false', 'the earlier rows');
		assert.deepEqual(asked, [251, 151, 51]);
		assert.deepEqual(await shownIds(), rows.map((r) => r.id), 'every row once, in order');
		assert.match((await page.locator('[data-row-id="a199"]').textContent()) ?? '', /changed before its slice came$/);
		assert.equal(await offsetOf('u260'), -10, 'the reader stays where they were');
		// Far up now, the reader leaves the tab and comes back: the row comes with the last slice, and the reader with it.
		await log.evaluate((e) => {
			const row = e.querySelector('[data-row-id="u10"]')!;
			e.scrollTop += row.getBoundingClientRect().top - e.getBoundingClientRect().top + 10;
		});
		await until(async () => JSON.stringify((await page.evaluate(() => (window as unknown as { __state: { scroll?: unknown } }).__state)).scroll) === JSON.stringify({ rowId: 'u10', offset: -10 }), 'the anchor in the tab state');
		await page.reload();
		await until(async () => (await log.getAttribute('aria-busy')) === 'false' && (await shownIds()).length === rows.length, 'the chat again');
		await nextFrame(page);
		assert.equal(await offsetOf('u10'), -10, 'the same row at the same place');
		assert.deepEqual(problems, []);
	});

	test('rows of turns not loaded yet that change before their slice comes (a checkpoint pruned from an old turn) are shown with that slice, in pages of their own size', async function () {
		this.timeout(120_000);
		const { rows, release } = await openLongChat();
		// The first turn's checkpoint is pruned: the host sends its header, never sent to this view, as an append.
		rows[0] = { ...rows[0]!, canRewind: false } as ChatRow;
		await rowUpdate({ seq: rows.length + 1, op: 'append', row: rows[0] });
		release();
		const log = page.locator('[role="log"]');
		await until(async () => (await log.getAttribute('aria-busy')) === 'false', 'the earlier rows');
		const pages = await log.evaluate((e) => Array.from(e.children, (p) => p.childElementCount));
		assert.deepEqual(
			await log.locator('[data-row-id]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.rowId)),
			rows.map((r) => r.id),
			'every row once, in order',
		);
		assert.ok(Math.max(...pages) <= 50, `pages of at most 50 rows: ${pages.join(' ')}`);
		assert.deepEqual(problems, []);
	});

	test('a tab shown again on a long chat, coming back to a row far up: hidden again meanwhile it still comes back there; a reader who scrolls before that row has come is left where they scrolled', async function () {
		this.timeout(120_000);
		const { rows, release } = await openLongChat({ v: 1, chatId: 'chat-1', scroll: { rowId: 'u10', offset: -10 } });
		const log = page.locator('[role="log"]');
		// Hidden again before the row came (its page thrown away, a blur first): the place to come back to is kept.
		await page.evaluate(() => window.dispatchEvent(new Event('blur')));
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		assert.deepEqual((await page.evaluate(() => (window as unknown as { __state: { scroll?: unknown } }).__state)).scroll, { rowId: 'u10', offset: -10 });
		await nextFrame(page);
		// The reader does not wait: they scroll up by the wheel and read the rows already shown.
		const box = (await log.boundingBox())!;
		await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
		await page.mouse.wheel(0, -1500);
		await until(async () => (await log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight)) > 1000, 'the wheel to scroll');
		await nextFrame(page);
		const firstInView = (): Promise<string | undefined> =>
			log.evaluate((e) => {
				const top = e.getBoundingClientRect().top;
				return Array.from(e.querySelectorAll<HTMLElement>('[data-row-id]')).find((r) => r.getBoundingClientRect().bottom > top)?.dataset.rowId;
			});
		const reading = await firstInView();
		assert.ok(reading && Number(/\d+/.exec(reading)![0]) >= 250, `reading the last turns: ${reading}`);
		release();
		await until(async () => (await log.getAttribute('aria-busy')) === 'false' && (await log.locator('[data-row-id]').count()) === rows.length, 'the earlier rows');
		await nextFrame(page);
		assert.equal(await firstInView(), reading, 'still reading what they scrolled to');
		assert.deepEqual(problems, []);
	});

	test("a long chat's transcript rebuilt from a new snapshot (another epoch) keeps a reader who was far up at their row, once its slice has come again", async function () {
		this.timeout(120_000);
		const { rows, asked, release } = await openLongChat();
		release();
		const log = page.locator('[role="log"]');
		await until(async () => (await log.getAttribute('aria-busy')) === 'false' && (await log.locator('[data-row-id]').count()) === rows.length, 'the earlier rows');
		const offsetOf = (id: string): Promise<number> => log.evaluate((e, rowId) => Math.round(e.querySelector(`[data-row-id="${rowId}"]`)!.getBoundingClientRect().top - e.getBoundingClientRect().top), id);
		await log.evaluate((e) => {
			const row = e.querySelector('[data-row-id="u10"]')!;
			e.scrollTop += row.getBoundingClientRect().top - e.getBoundingClientRect().top + 10;
		});
		await nextFrame(page);
		// Another numbering: the tab asks again and gets the chat's last turns, then its earlier rows again.
		const again = { ...snap(rows.filter((r) => r.order![0] >= 251), rows.length + 5), earlierBefore: 251, epoch: 'e2' };
		host.handlers['chat/open'] = () => ({ kind: 'snapshot', snapshot: again });
		await notify({ kind: 'notify', method: 'chat/didUpdateRow', params: { chatId: 'chat-1', epoch: 'e2', seq: rows.length + 5, op: 'change', row: rows.at(-1)! } });
		await until(() => asked.length === 6, 'the earlier rows asked for again');
		await until(async () => (await log.getAttribute('aria-busy')) === 'false' && (await log.locator('[data-row-id]').count()) === rows.length, 'the earlier rows again');
		await nextFrame(page);
		assert.equal(await offsetOf('u10'), -10, 'the reader is at the row they read');
		assert.deepEqual(problems, []);
	});

	test("a long chat whose earlier rows the host refuses (the chat deleted meanwhile) says why, stops being busy, and a reader coming back to a row among them is left at the end", async () => {
		const rows = longChat(100);
		await openTab({ ...snap(rows.filter((r) => r.order![0] >= 51), rows.length), earlierBefore: 51 }, 900, { v: 1, chatId: 'chat-1', scroll: { rowId: 'u10', offset: 0 } }, {
			'chat/earlierRows': () => {
				throw Object.assign(new Error('There is no chat chat-1.'), { code: 'chat/unknown' });
			},
		});
		const log = page.locator('[role="log"]');
		await until(async () => (await log.getAttribute('aria-busy')) === 'false', 'the load to end');
		assert.equal(await page.locator('[role="alert"]').textContent(), strings.earlierFailed.replace('{0}', 'There is no chat chat-1.'));
		assert.equal(await log.locator('[data-row-id]').count(), 200);
		assert.ok((await log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight)) < 2, 'at the end');
		assert.deepEqual(problems, []);
	});

	test("a reader who went up to the first row shown of a long chat stays at that row as the earlier rows come above it", async function () {
		this.timeout(120_000);
		const { rows, release } = await openLongChat();
		const log = page.locator('[role="log"]');
		const offset = (): Promise<number> => log.evaluate((e) => Math.round(e.querySelector('[data-row-id="t250"]')!.getBoundingClientRect().top - e.getBoundingClientRect().top));
		await log.evaluate((e) => (e.scrollTop = 0));
		await nextFrame(page);
		const before = await offset();
		release();
		await until(async () => (await log.getAttribute('aria-busy')) === 'false' && (await log.locator('[data-row-id]').count()) === rows.length, 'the earlier rows');
		await nextFrame(page);
		assert.equal(await offset(), before);
		assert.deepEqual(problems, []);
	});

	test("a long chat's tab shown again, coming back to a row gone since, ends at the bottom once every earlier row has come, and keeps no place", async function () {
		this.timeout(120_000);
		const { rows, release } = await openLongChat({ v: 1, chatId: 'chat-1', scroll: { rowId: 'gone', offset: 0 } });
		release();
		const log = page.locator('[role="log"]');
		await until(async () => (await log.getAttribute('aria-busy')) === 'false' && (await log.locator('[data-row-id]').count()) === rows.length, 'the earlier rows');
		await nextFrame(page);
		assert.ok((await log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight)) < 2, 'at the end');
		await page.evaluate(() => window.dispatchEvent(new Event('blur')));
		assert.equal((await page.evaluate(() => (window as unknown as { __state: { scroll?: unknown } }).__state)).scroll, undefined);
		assert.deepEqual(problems, []);
	});

	test("a long chat resynced to a new snapshot while a slice is on its way: the answer for the snapshot before is dropped, and the new one's slices make the chat once, in order", async function () {
		this.timeout(120_000);
		const { rows, asked, release } = await openLongChat();
		await until(() => asked.length === 1, 'the first slice asked for');
		// Another numbering begins; the new snapshot's last turn says something else.
		const last = rows.length - 1;
		rows[last] = { ...rows[last]!, text: 'said again' } as ChatRow;
		host.handlers['chat/open'] = () => ({ kind: 'snapshot', snapshot: { ...snap(rows.filter((r) => r.order![0] >= 251), rows.length + 1), earlierBefore: 251, epoch: 'e2' } });
		await notify({ kind: 'notify', method: 'chat/didUpdateRow', params: { chatId: 'chat-1', epoch: 'e2', seq: rows.length + 1, op: 'change', row: rows[last] } });
		await until(() => asked.length === 2, 'the slice asked for again');
		release();
		const log = page.locator('[role="log"]');
		await until(async () => (await log.getAttribute('aria-busy')) === 'false', 'the earlier rows');
		assert.deepEqual(asked, [251, 251, 151, 51]);
		assert.deepEqual(
			await log.locator('[data-row-id]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.rowId)),
			rows.map((r) => r.id),
		);
		assert.match((await page.locator(`[data-row-id="${rows[last]!.id}"]`).textContent()) ?? '', /said again/);
		assert.deepEqual(problems, []);
	});

	test("a reader at the end of a long chat stays at the end while the earlier rows come, following a reply that streams meanwhile", async function () {
		this.timeout(120_000);
		const { rows, release } = await openLongChat();
		const log = page.locator('[role="log"]');
		const fromBottom = (): Promise<number> => log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight);
		await nextFrame(page);
		const reply: ChatRow = { id: 'live', turnId: 't299', order: [300, 3], kind: 'text', text: 'streaming ' };
		await rowUpdate({ seq: rows.length + 1, op: 'append', row: reply });
		release();
		await until(async () => (await log.locator('[data-row-id]').count()) > 300, 'a slice');
		await rowUpdate({ seq: rows.length + 2, op: 'change', row: { ...reply, text: 'on and on\n'.repeat(40) }, textFrom: reply.text.length });
		await until(async () => (await log.getAttribute('aria-busy')) === 'false', 'the earlier rows');
		await nextFrame(page);
		assert.ok((await fromBottom()) < 2, `at the end: ${await fromBottom()} px above it`);
		assert.equal(await log.locator('[data-row-id]').last().getAttribute('data-row-id'), 'live');
		assert.equal(await log.locator('[data-row-id]').count(), rows.length + 1);
		assert.deepEqual(problems, []);
	});

	test("at the end of a long chat, what the reader opens stays where they clicked; rows that come after, on a page just begun, are followed", async () => {
		// 150 rows: the thinking is on the last page, and the next row begins a page.
		const rows = longChat(37);
		rows.push({ id: 'r9', turnId: 't36', kind: 'reasoning', text: 'thinking hard\n'.repeat(200) });
		rows.push({ id: 'z9', turnId: 't36', kind: 'text', text: 'done' });
		await openTab(snap(rows, rows.length));
		const log = page.locator('[role="log"]');
		const top = (selector: string): Promise<number> => log.evaluate((e, sel) => Math.round(e.querySelector(sel)!.getBoundingClientRect().top - e.getBoundingClientRect().top), selector);
		const fromBottom = (): Promise<number> => log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight);
		await nextFrame(page);
		assert.ok((await fromBottom()) < 2, 'opens at the end');
		// The reader opens the agent's thinking (200 lines): it opens below its summary, which stays under the pointer.
		const summary = '[data-row-id="r9"] summary';
		const before = await top(summary);
		await page.locator(summary).click();
		await nextFrame(page);
		await nextFrame(page);
		assert.equal(await top(summary), before, 'the thinking opened where it was clicked, not scrolled away to the end of the chat');
		// Back at the end, a page begun with a row longer than a page's estimate is followed to its end.
		await log.evaluate((e) => (e.scrollTop = e.scrollHeight));
		await nextFrame(page);
		for (let k = 0; k < 2; k++) {
			await rowUpdate({ seq: rows.length + 1 + k, op: 'append', row: { id: `big${k}`, turnId: 't36', kind: 'text', text: 'a long line\n'.repeat(300) } });
			await nextFrame(page);
			await nextFrame(page);
			assert.ok((await fromBottom()) < 2, `following the rows appended: ${await fromBottom()} px above the end`);
		}
		assert.deepEqual(problems, []);
	});

	test('rows longer than a page is estimated: a tab shown again, or rebuilt, shows the row the reader was at, where it was', async function () {
		this.timeout(120_000);
		// 2,000 rows, each answer many lines: a page of 50 rows is several times the size estimated for a page not yet shown.
		const rows = longChat(500).map((r) => (r.kind === 'text' ? { ...r, text: 'answer '.repeat(400) } : r));
		const log = (): ReturnType<Page['locator']> => page.locator('[role="log"]');
		const place = (id: string): Promise<{ offset: number; laidOut: boolean }> =>
			log().evaluate((e, rowId) => {
				const row = e.querySelector(`[data-row-id="${rowId}"]`)!;
				return { offset: Math.round(row.getBoundingClientRect().top - e.getBoundingClientRect().top), laidOut: row.checkVisibility({ contentVisibilityAuto: true }) };
			}, id);
		const settled = async (): Promise<void> => {
			for (let i = 0; i < 4; i++) {
				await nextFrame(page);
			}
		};
		// Near the end of page 30 (row 1,547, 47th of its page), and first on page 20 (row 1,000), just below the top.
		for (const scroll of [{ rowId: 'a386', offset: -40 }, { rowId: 't250', offset: 10 }]) {
			await openTab(snap(rows, rows.length), 900, { v: 1, chatId: 'chat-1', scroll });
			await settled();
			assert.deepEqual(await place(scroll.rowId), { offset: scroll.offset, laidOut: true }, `shown again at ${JSON.stringify(scroll)}`);
			assert.deepEqual((await page.evaluate(() => (window as unknown as { __state: ChatTabState }).__state)).scroll, scroll, 'the place kept is the one shown');
			assert.equal(await page.locator('.page.laid-out').count(), 0, 'the pages laid out to get there are skipped again when out of view');
			// The host sends the whole chat again (a resync), then the agent's name changes (every row is rebuilt).
			// Measured before the browser draws: the pages laid out to get back to the row are spaced as any others.
			const gaps = await page.evaluate((m) => {
				window.dispatchEvent(new MessageEvent('message', { data: m }));
				const shown = Array.from(document.querySelectorAll('[role="log"] [data-row-id]'), (r) => (r.checkVisibility({ contentVisibilityAuto: true }) ? r.getBoundingClientRect() : undefined));
				return [...new Set(shown.flatMap((r, i) => (r && shown[i - 1] ? [Math.round(r.top - shown[i - 1]!.bottom)] : [])))].sort((a, b) => a - b);
			}, { kind: 'notify', method: 'chat/didReset', params: snap(rows, rows.length + 1) } satisfies HostToWebview);
			assert.deepEqual(gaps, [6, 18], 'rows 6 px apart, a turn 18 px below what is before it');
			await settled();
			assert.deepEqual(await place(scroll.rowId), { offset: scroll.offset, laidOut: true }, `rebuilt at ${JSON.stringify(scroll)}`);
			await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ agentLabel: 'Renamed' }) });
			await settled();
			assert.deepEqual(await place(scroll.rowId), { offset: scroll.offset, laidOut: true }, `renamed at ${JSON.stringify(scroll)}`);
			assert.deepEqual(problems, []);
			await page.context().close();
		}
	});

	test('usable at 300 px: nothing overflows sideways', async () => {
		// A notice as long as the one said when an agent cannot restore its conversation.
		const long: ChatRow = { id: 'n2', turnId: null, kind: 'notice', severity: 'warning', title: "Scripted could not restore its earlier conversation, so this chat's agent context starts fresh. The transcript above is kept." };
		await openTab(snap([...allRows(), long], 15, meta({ status: 'running', queue: [{ id: 'q1', text: 'Then bump the version.', attachments: [] }] })), 300);
		const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
		assert.ok(overflow <= 0, `scrolls sideways by ${overflow}px`);
		// Nor inside the transcript: every row wraps to its width (a long notice was one line, cut off at the edge).
		const logOverflow = await page.locator('[role="log"]').evaluate((e) => e.scrollWidth - e.clientWidth);
		assert.ok(logOverflow <= 0, `the transcript scrolls sideways by ${logOverflow}px`);
		await page.screenshot({ path: path.join(outputDir, 'chat-300.png'), fullPage: false });
		await page.locator('[role="log"]').evaluate((e) => (e.scrollTop = 0));
		await page.screenshot({ path: path.join(outputDir, 'chat-300-top.png'), fullPage: false });
	});

	test('at 300 px a long address or path wraps in every row: none of it is cut off at the edge of the transcript', async () => {
		// A page of rows clips what overflows it (its paint is contained), so text that does not wrap cannot be scrolled to.
		const long = `https://example.com/${'x'.repeat(120)}`;
		const rows: ChatRow[] = [
			{ id: 't1', turnId: 't1', kind: 'turn', number: 1, agent: 'scripted', status: 'done', canRewind: true, startedAt: 1 },
			{ id: 'u1', turnId: 't1', kind: 'user', text: long, attachments: [{ kind: 'file', path: long }] },
			{ id: 'p1', turnId: 't1', kind: 'plan', entries: [{ content: `Read ${long}`, priority: 'high', status: 'pending' }] },
			{ id: 'c1', turnId: 't1', kind: 'tool_call', toolCallId: 'c', title: long, status: 'completed', files: [long] },
			{ id: 'f1', turnId: 't1', kind: 'file_edit', path: long, editKind: 'modify', source: 'fs_write' },
			{ id: 'q1', turnId: 't1', kind: 'permission', requestId: 'r', title: long, options: [{ optionId: 'a', name: 'Allow', kind: 'allow_once' }] },
			{ id: 'n1', turnId: null, kind: 'notice', severity: 'info', title: long, description: long },
			{ id: 'e1', turnId: null, kind: 'error', message: long, retryable: true },
		];
		await openTab(snap(rows, rows.length, meta({ status: 'waitingForPermission' })), 300);
		// And what a rewind says it replaced (a ref named after the chat).
		host.handlers['turn/rewindPreview'] = (p) => ({ turnId: p.turnId, number: 1, files: [long], laterTurns: 0 });
		host.handlers['turn/rewind'] = () => ({ files: [long], replacedRef: `refs/agent-tabs/checkpoints/${'c'.repeat(60)}-replaced-1` });
		await page.getByRole('button', { name: 'Rewind to before this turn' }).click();
		await page.locator('.rewind-confirm').getByRole('button', { name: 'Rewind', exact: true }).click();
		await until(async () => (await page.locator('.rewind-confirm').innerText()).includes('-replaced-1'), 'the rewind said');
		const beyond = await page.locator('[role="log"]').evaluate((e) => {
			const right = e.getBoundingClientRect().right;
			return Array.from(e.querySelectorAll<HTMLElement>('[data-row-id]'), (row) => {
				const text = document.createRange();
				text.selectNodeContents(row);
				return [row.dataset.rowId, Math.max(0, ...Array.from(text.getClientRects(), (r) => Math.round(r.right - right)))];
			}).filter(([, px]) => px !== 0);
		});
		assert.deepEqual(beyond, [], 'rows with text past the right edge of the transcript (px)');
		await page.screenshot({ path: path.join(outputDir, 'chat-300-long-words.png'), fullPage: false });
	});

	test('appends and in-place changes by seq; a gap resyncs from the seq it has', async () => {
		await openTab(snap(allRows().slice(0, 2), 2));
		await page.locator('textarea.input').focus();
		await rowUpdate({ seq: 3, op: 'append', row: { id: 'a9', turnId: 't1', kind: 'text', text: 'Hel' } });
		await rowUpdate({ seq: 4, op: 'change', row: { id: 'a9', turnId: 't1', kind: 'text', text: 'Hello, world' } });
		const bodyHandle = await page.locator('[data-row-id="a9"] .body').elementHandle();
		assert.equal(await page.locator('[data-row-id="a9"] .body').innerText(), 'Hello, world');
		await rowUpdate({ seq: 5, op: 'change', row: { id: 'a9', turnId: 't1', kind: 'text', text: 'Hello, world!' } });
		assert.equal(await bodyHandle!.evaluate((e) => e.isConnected && e.textContent), 'Hello, world!', 'streamed text grows in the same element');
		await rowUpdate({ seq: 4, op: 'change', row: { id: 'a9', turnId: 't1', kind: 'text', text: 'stale' } });
		assert.equal(await page.locator('[data-row-id="a9"] .body').innerText(), 'Hello, world!', 'an old seq is ignored');
		assert.equal(host.of('chat/open').length, 1);
		// seq 6 was dropped (a hidden tab): 7 reveals the gap, and the app asks for what came after 5.
		host.handlers['chat/open'] = (p) => {
			assert.deepEqual(p, { chatId: 'chat-1', sinceSeq: 5, epoch: 'e1' });
			return {
				kind: 'updates',
				meta: meta(),
				updates: [
					{ chatId: 'chat-1', epoch: 'e1', seq: 6, op: 'append', row: { id: 'm6', turnId: 't1', kind: 'text', text: 'missed' } },
					{ chatId: 'chat-1', epoch: 'e1', seq: 7, op: 'append', row: { id: 'm7', turnId: 't1', kind: 'text', text: 'seen after' } },
				],
			};
		};
		await rowUpdate({ seq: 7, op: 'append', row: { id: 'm7', turnId: 't1', kind: 'text', text: 'seen after' } });
		await until(async () => (await page.locator('[data-row-id="m6"]').count()) === 1, 'the missed row');
		assert.deepEqual(await page.locator('[role="log"] [data-row-id]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.rowId)), ['t1', 'u1', 'a9', 'm6', 'm7']);
		// Another epoch (the host restarted): a full snapshot replaces everything.
		host.handlers['chat/open'] = () => ({ kind: 'snapshot', snapshot: { ...snap(allRows().slice(0, 1), 1), epoch: 'e2' } });
		await notify({ kind: 'notify', method: 'chat/didUpdateRow', params: { chatId: 'chat-1', epoch: 'e2', seq: 9, op: 'append', row: { id: 'z', turnId: null, kind: 'text', text: 'z' } } });
		await until(async () => (await page.locator('[role="log"] [data-row-id]').count()) === 1, 'the snapshot of the new epoch');
		assert.equal(await page.evaluate(() => document.activeElement?.className), 'input', 'updates never take focus from the input');
	});

	test('a streamed reply grows by its new text only: a selection in it stays, nothing shown is replaced, and the log is busy while the turn streams', async () => {
		await openTab(snap(allRows().slice(0, 2), 2, meta({ status: 'running' })));
		const log = page.locator('[role="log"]');
		assert.equal(await log.getAttribute('aria-busy'), 'true', 'busy while the turn streams');
		await rowUpdate({ seq: 3, op: 'append', row: { id: 'a9', turnId: 't1', kind: 'text', text: 'The parser reads ' } });
		const body = page.locator('[data-row-id="a9"] .body');
		// The reader selects "parser" in the reply, and watches what changes in it.
		await body.evaluate((e) => {
			const range = document.createRange();
			range.setStart(e.firstChild!, 4);
			range.setEnd(e.firstChild!, 10);
			getSelection()!.removeAllRanges();
			getSelection()!.addRange(range);
			const w = window as unknown as { __mutations: string[] };
			w.__mutations = [];
			new MutationObserver((records) => {
				for (const r of records) {
					w.__mutations.push(`${r.type}:+${r.addedNodes.length}-${r.removedNodes.length}`);
				}
			}).observe(e, { childList: true, characterData: true, subtree: true });
		});
		let text = 'The parser reads ';
		for (let i = 0; i < 80; i++) {
			text += `word${i} `;
			await rowUpdate({ seq: 4 + i, op: 'change', row: { id: 'a9', turnId: 't1', kind: 'text', text } });
		}
		const seen = await body.evaluate((e) => ({ text: e.textContent, selected: getSelection()!.toString(), mutations: (window as unknown as { __mutations: string[] }).__mutations }));
		assert.equal(seen.text, text);
		assert.equal(seen.selected, 'parser', 'the selection stays');
		assert.deepEqual(
			seen.mutations.filter((m) => m !== 'childList:+1-0' && m !== 'childList:+0-1' && m !== 'characterData:+0-0'),
			[],
			'only new text was added (merging the pieces aside), nothing shown was replaced',
		);
		assert.ok(seen.mutations.filter((m) => m === 'childList:+1-0').length === 80, 'one added piece per update');
		// The host sends only what the reply adds (textFrom): the tab shows it after the text it has.
		await rowUpdate({ seq: 84, op: 'change', row: { id: 'a9', turnId: 't1', kind: 'text', text: 'and the end.' }, textFrom: text.length });
		assert.equal(await body.evaluate((e) => e.textContent), `${text}and the end.`);
		assert.equal(await body.evaluate(() => getSelection()!.toString()), 'parser');
		// A change that does not extend what is shown (the exact text from the database) replaces it.
		await rowUpdate({ seq: 85, op: 'change', row: { id: 'a9', turnId: 't1', kind: 'text', text: 'Rewritten.' } });
		assert.equal(await body.innerText(), 'Rewritten.');
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'waitingForPermission' }) });
		assert.equal(await log.getAttribute('aria-busy'), 'false', 'a permission card waiting is heard');
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta() });
		assert.equal(await log.getAttribute('aria-busy'), 'false');
		assert.deepEqual(problems, []);
	});

	test('a new row arriving after a later one is shown in its place in the transcript', async () => {
		const rows = allRows().slice(0, 2).map((r, i) => ({ ...r, order: [1, i - 1] as [number, number] }));
		await openTab(snap(rows, 2));
		await rowUpdate({ seq: 4, prevSeq: 2, op: 'append', row: { id: 'late', turnId: 't1', kind: 'text', text: 'second', order: [1, 2] } });
		await rowUpdate({ seq: 5, prevSeq: 4, op: 'append', row: { id: 'early', turnId: 't1', kind: 'text', text: 'first', order: [1, 1] } });
		await until(async () => (await page.locator('[data-row-id="early"]').count()) === 1, 'the early row');
		assert.deepEqual(await page.locator('[role="log"] [data-row-id]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.rowId)), ['t1', 'u1', 'early', 'late']);
		assert.equal(host.of('chat/open').length, 1, 'numbers that skip (3) are no gap when the update names the one before it');
	});

	test('a catch-up whose later update goes before earlier ones (a turn header numbered after its messages) shows every row in place', async () => {
		const rows = allRows().slice(0, 2).map((r, i) => ({ ...r, order: [1, i - 1] as [number, number] }));
		await openTab(snap(rows, 2));
		// The host sends a catch-up by each row's newest number: turn 2's header was numbered again (its status
		// changed) after its messages, so it comes last but belongs first.
		const t2: ChatRow = { id: 't2', turnId: 't2', kind: 'turn', number: 2, agent: 'scripted', status: 'done', canRewind: true, startedAt: 2, order: [2, -1] };
		const a3: ChatRow = { id: 'a3', turnId: 't2', kind: 'text', text: 'and more', order: [2, 2] };
		host.handlers['chat/open'] = (p) => {
			assert.deepEqual(p, { chatId: 'chat-1', sinceSeq: 2, epoch: 'e1' });
			const u = (seq: number, row: ChatRow): RowUpdate => ({ chatId: 'chat-1', epoch: 'e1', seq, op: 'append', row });
			return {
				kind: 'updates',
				meta: meta(),
				seq: 7,
				updates: [
					u(4, { id: 'u2', turnId: 't2', kind: 'user', text: 'Now the changelog.', order: [2, 0] }),
					u(5, { id: 'a2', turnId: 't2', kind: 'text', text: 'Done.', order: [2, 1] }),
					u(6, t2),
					u(7, a3),
				],
			};
		};
		// Seq 7 names 6 as the one before it: the tab missed 3 to 6 and catches up.
		await rowUpdate({ seq: 7, prevSeq: 6, op: 'append', row: a3 });
		await until(() => host.of('chat/open').length === 2, 'the catch-up');
		await until(async () => (await page.locator('[role="log"] [data-row-id]').count()) >= 6, 'every row');
		assert.deepEqual(await page.locator('[role="log"] [data-row-id]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.rowId)), ['t1', 'u1', 't2', 'u2', 'a2', 'a3']);
		assert.equal(await page.locator('[role="alert"]').innerText(), '', 'no error');
		assert.deepEqual(problems, []);
		// The next live update still lands in place.
		await rowUpdate({ seq: 8, op: 'append', row: { id: 'a4', turnId: 't2', kind: 'text', text: 'last', order: [2, 3] } });
		await until(async () => (await page.locator('[data-row-id="a4"]').count()) === 1, 'the next row');
		assert.deepEqual(await page.locator('[role="log"] [data-row-id]').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.rowId)), ['t1', 'u1', 't2', 'u2', 'a2', 'a3', 'a4']);
	});

	test('Enter sends, Shift+Enter breaks the line; the draft, as the host vetted it (no key in clear), lives in setState and survives a reload', async () => {
		await openTab(snap(allRows().slice(0, 2), 2));
		host.handlers['chat/send'] = () => ({ queued: false });
		host.handlers['chat/saveDraft'] = (p) => ({ draft: p.draft.replace('sk-pasted-key-123', '[redacted ANTHROPIC_API_KEY]') });
		const state = (): Promise<unknown> => page.evaluate(() => (window as unknown as { __state: unknown }).__state);
		const input = page.locator('textarea.input');
		await input.focus();
		await page.keyboard.type('hello');
		await page.keyboard.press('Shift+Enter');
		await page.keyboard.type('world sk-pasted-key-123');
		assert.ok(!JSON.stringify(await state()).includes('sk-pasted-key-123'), 'the key never reaches the tab state, not even before the host answers');
		await until(async () => JSON.stringify(await state()) === JSON.stringify({ v: 1, chatId: 'chat-1', draft: 'hello\nworld [redacted ANTHROPIC_API_KEY]' }), 'the vetted draft in the tab state');
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		assert.equal(await page.locator('textarea.input').inputValue(), 'hello\nworld [redacted ANTHROPIC_API_KEY]', 'the draft came back after a reload, the key redacted');
		await page.locator('textarea.input').fill('hello\nworld');
		await page.locator('textarea.input').focus();
		await page.keyboard.press('End');
		await page.keyboard.press('Enter');
		await until(() => host.of('chat/send').length === 1, 'the send');
		assert.deepEqual(host.of('chat/send')[0], { chatId: 'chat-1', prompt: { text: 'hello\nworld', attachments: [] } });
		await until(async () => (await page.locator('textarea.input').inputValue()) === '', 'the input to clear');
		assert.deepEqual(await page.evaluate(() => (window as unknown as { __state: unknown }).__state), { v: 1, chatId: 'chat-1' });
	});

	test('each change of the draft reaches the host at once (no blur comes before a hidden page is thrown away); a page shown again before its state kept the draft gets it from the host', async () => {
		await openTab(snap(allRows().slice(0, 2), 2));
		let hostDraft: ChatDraft | undefined;
		// The host keeps the draft as it hears it; its answer never reaches this page (it is hidden first).
		host.handlers['chat/saveDraft'] = (p) => ((hostDraft = { draft: p.draft, ...(p.attachments ? { attachments: p.attachments } : {}) }), new Promise<never>(() => undefined));
		// Two keys, and nothing else: VS Code throws a hidden tab's page away without a blur or visibilitychange.
		const savesAtOnce = await page.evaluate(() => {
			const input = document.querySelector('textarea.input') as HTMLTextAreaElement;
			input.value = 'half a though';
			input.dispatchEvent(new Event('input'));
			input.value = 'half a thought';
			input.dispatchEvent(new Event('input'));
			const w = window as unknown as { __posted: { kind: string; method?: string; params?: { draft?: string } }[] };
			return w.__posted.filter((m) => m.kind === 'request' && m.method === 'chat/saveDraft').map((m) => m.params?.draft);
		});
		assert.deepEqual(savesAtOnce, ['half a though', 'half a thought'], 'each change went to the host as it was made, not a quarter second later');
		await until(() => hostDraft?.draft === 'half a thought', 'the host to hear the draft');
		assert.deepEqual(await page.evaluate(() => (window as unknown as { __state: unknown }).__state), { v: 1, chatId: 'chat-1' }, 'the tab state never got it');
		// The tab is shown again: a new page, whose state has no draft; the host's copy comes with the chat.
		host.handlers['chat/open'] = () => ({ kind: 'snapshot', snapshot: snap(allRows().slice(0, 2), 2), draft: hostDraft });
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		await until(async () => (await page.locator('textarea.input').inputValue()) === 'half a thought', 'the draft back in the input');
		assert.deepEqual(await page.evaluate(() => (window as unknown as { __state: unknown }).__state), { v: 1, chatId: 'chat-1', draft: 'half a thought' });
	});

	test('a tab shown again (a new page) comes back at the row the reader was at, not at the bottom; a row gone since leaves it at the bottom', async () => {
		const rows: ChatRow[] = [allRows()[0]!, ...Array.from({ length: 60 }, (_, i): ChatRow => ({ id: `m${i}`, turnId: 't1', kind: 'text', text: `Paragraph ${i}\nline two\nline three` }))];
		await openTab(snap(rows, 61));
		const log = page.locator('[role="log"]');
		const atBottom = (): Promise<boolean> => log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight < 48);
		const offsetOf = (id: string): Promise<number> => log.evaluate((e, rowId) => Math.round(e.querySelector(`[data-row-id="${rowId}"]`)!.getBoundingClientRect().top - e.getBoundingClientRect().top), id);
		const scrollState = async (): Promise<unknown> => (await page.evaluate(() => (window as unknown as { __state: { scroll?: unknown } }).__state)).scroll;
		const readAt = async (id: string, offset: number): Promise<void> => {
			await log.evaluate((e, [rowId, off]) => {
				const row = e.querySelector(`[data-row-id="${rowId}"]`)!;
				e.scrollTop += row.getBoundingClientRect().top - e.getBoundingClientRect().top - Number(off);
			}, [id, String(offset)] as const);
			await until(async () => JSON.stringify(await scrollState()) === JSON.stringify({ rowId: id, offset }), `the anchor at ${id} in the tab state`);
		};
		assert.equal(await atBottom(), true, 'a tab opens at the bottom');
		// The reader scrolls up to paragraph 20 (10 px of it above the view), looks at a file, comes back: a new page.
		await readAt('m20', -10);
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		assert.equal(await offsetOf('m20'), -10, 'the same row at the same place');
		assert.equal(await atBottom(), false);
		assert.equal(host.of('chat/open').length, 2, 'the transcript came from the host again');
		// Back at the bottom, the tab state says so (and a new page follows new rows again).
		await log.evaluate((e) => (e.scrollTop = e.scrollHeight));
		await until(async () => (await scrollState()) === undefined, 'no anchor at the bottom');
		// The row the reader was at is gone when the page comes back (rewound, say): the tab opens at the bottom.
		await readAt('m30', 0);
		host.handlers['chat/open'] = () => ({ kind: 'snapshot', snapshot: snap(rows.filter((r) => r.id !== 'm30'), 62) });
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		assert.equal(await atBottom(), true, 'at the bottom');
		assert.deepEqual(problems, []);
	});

	test('a reader at the bottom stays there when the message box grows (a queued message, its edit box) and follows the rows that come next; one scrolled up stays put', async () => {
		const rows: ChatRow[] = [allRows()[0]!, ...Array.from({ length: 60 }, (_, i): ChatRow => ({ id: `m${i}`, turnId: 't1', kind: 'text', text: `Paragraph ${i}\nline two\nline three` }))];
		await openTab(snap(rows, 61, meta({ status: 'running' })));
		const log = page.locator('[role="log"]');
		const atBottom = (): Promise<boolean> => log.evaluate((e) => e.scrollHeight - e.scrollTop - e.clientHeight < 2);
		assert.equal(await atBottom(), true, 'a tab opens at the bottom');
		const queued = [{ id: 'q1', text: 'say second\nand more', attachments: [] }, { id: 'q2', text: 'say third', attachments: [] }];
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: queued }) });
		await until(atBottom, 'the last row in view with the queue shown');
		await page.locator('section[aria-label="Queued messages"]').getByRole('button', { name: 'Edit: say third' }).click();
		await until(atBottom, 'the last row in view with the edit box open');
		// The next rows are followed.
		await rowUpdate({ seq: 62, op: 'append', row: { id: 'm60', turnId: 't1', kind: 'text', text: 'the newest paragraph' } });
		await until(atBottom, 'the new row in view');
		// A reader who scrolled up is left where they are when the message box shrinks or grows.
		await log.evaluate((e) => (e.scrollTop = 300));
		await new Promise((r) => setTimeout(r, 300));
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: [] }) });
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: queued }) });
		await new Promise((r) => setTimeout(r, 300));
		assert.equal(await log.evaluate((e) => e.scrollTop), 300);
		assert.deepEqual(problems, []);
	});

	test('a failed send keeps the text and says why', async () => {
		await openTab(snap(allRows().slice(0, 2), 2));
		host.handlers['chat/send'] = () => {
			throw Object.assign(new Error('Scripted is not installed.'), { code: 'agent/unknown' });
		};
		await page.locator('textarea.input').fill('keep me');
		await page.locator('textarea.input').press('Enter');
		await until(async () => (await page.locator('[role="alert"]').innerText()).includes('Scripted is not installed.'), 'the error');
		assert.equal(await page.locator('textarea.input').inputValue(), 'keep me');
	});

	test('while a turn runs: Cancel, and queued messages can be edited or removed', async () => {
		await openTab(snap(allRows().slice(0, 2), 2, meta({ status: 'running', queue: [{ id: 'q1', text: 'say second', attachments: [] }, { id: 'q2', text: 'say third', attachments: [] }] })));
		host.handlers['chat/cancel'] = () => null;
		host.handlers['queue/edit'] = () => null;
		host.handlers['queue/remove'] = () => null;
		const queue = page.locator('section[aria-label="Queued messages"]');
		assert.equal(await queue.isVisible(), true);
		assert.deepEqual(await queue.locator('.queued-text').allInnerTexts(), ['say second', 'say third']);
		await queue.getByRole('button', { name: 'Remove: say third' }).click();
		await until(() => host.of('queue/remove').length === 1, 'remove');
		assert.deepEqual(host.of('queue/remove')[0], { chatId: 'chat-1', queueId: 'q2' });
		await queue.getByRole('button', { name: 'Edit: say second' }).click();
		const editor = queue.locator('textarea');
		assert.equal(await page.evaluate(() => document.activeElement?.tagName), 'TEXTAREA');
		// A meta update while editing keeps the edit in progress.
		await page.keyboard.press('End');
		await page.keyboard.type(', edited');
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: [{ id: 'q1', text: 'say second', attachments: [] }] }) });
		assert.equal(await editor.inputValue(), 'say second, edited');
		await editor.press('Enter');
		await until(() => host.of('queue/edit').length === 1, 'edit');
		assert.deepEqual(host.of('queue/edit')[0], { chatId: 'chat-1', queueId: 'q1', text: 'say second, edited' });
		await page.getByRole('button', { name: 'Cancel Turn' }).click();
		await until(() => host.of('chat/cancel').length === 1, 'cancel');
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta() });
		assert.equal(await page.getByRole('button', { name: 'Cancel Turn' }).isVisible(), false);
		assert.equal(await queue.isVisible(), false);
	});

	test('editing a queued message: meta updates keep the edit box, its caret and selection; a message sent meanwhile puts the edit in the message box, after the draft, and says so', async () => {
		const queued = [{ id: 'q1', text: 'say second', attachments: [] }, { id: 'q2', text: 'say third', attachments: [] }];
		await openTab(snap(allRows().slice(0, 2), 2, meta({ status: 'running', queue: queued })));
		host.handlers['chat/saveDraft'] = (p) => ({ draft: p.draft });
		const input = page.locator('textarea.input');
		await input.fill('my own draft');
		const queue = page.locator('section[aria-label="Queued messages"]');
		await queue.getByRole('button', { name: 'Edit: say second' }).click();
		const editor = await queue.locator('textarea').elementHandle();
		await page.keyboard.press('End');
		await page.keyboard.type(', edited');
		await editor!.evaluate((e) => (e as HTMLTextAreaElement).setSelectionRange(4, 10));
		// Meta updates (a permission settled, another task changed, a new message queued) while editing.
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'waitingForPermission', queue: queued }) });
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: [{ id: 'q0', text: 'say first', attachments: [] }, ...queued, { id: 'q3', text: 'say fourth', attachments: [] }] }) });
		const kept = await editor!.evaluate((e) => {
			const t = e as HTMLTextAreaElement;
			return { connected: t.isConnected, focused: document.activeElement === t, value: t.value, selection: [t.selectionStart, t.selectionEnd] };
		});
		assert.deepEqual(kept, { connected: true, focused: true, value: 'say second, edited', selection: [4, 10] }, 'the same edit box, caret and selection');
		assert.deepEqual(await queue.locator('li').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.queueId)), ['q0', 'q1', 'q2', 'q3']);
		await page.keyboard.press('End');
		await page.keyboard.type(' now');
		// The message starts before the edit is saved: what was sent is the old text; the edit is not lost.
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: [queued[1]!] }) });
		assert.equal(await queue.locator('textarea').count(), 0, 'the edit box is gone with the message');
		assert.equal(await input.inputValue(), 'my own draft\n\nsay second, edited now', 'the edit went into the message box after the draft');
		assert.match(await page.locator('.composer .note-text[role="status"]').innerText(), /already sent as it was .* your edited text is in the message box/);
		assert.equal(await page.evaluate(() => document.activeElement?.className), 'input', 'focus went with the text');
		await until(async () => JSON.stringify(await page.evaluate(() => (window as unknown as { __state: unknown }).__state)).includes('say second, edited now'), 'the draft kept');
		assert.deepEqual(problems, []);
	});

	test('an edit of a queued message not saved yet survives the tab being hidden (a new page), vetted by the host; one whose message was sent meanwhile goes into the message box', async () => {
		const queued = [{ id: 'q1', text: 'say second', attachments: [] }];
		await openTab(snap(allRows().slice(0, 2), 2, meta({ status: 'running', queue: queued })));
		host.handlers['chat/saveDraft'] = (p) => JSON.parse(JSON.stringify(p).replaceAll('sk-pasted-key-123', '[redacted]')) as ChatDraft;
		host.handlers['queue/edit'] = () => null;
		const state = (): Promise<string> => page.evaluate(() => JSON.stringify((window as unknown as { __state: unknown }).__state));
		const queue = page.locator('section[aria-label="Queued messages"]');
		await queue.getByRole('button', { name: 'Edit: say second' }).click();
		await page.keyboard.press('End');
		await page.keyboard.type(', edited sk-pasted-key-123');
		await until(async () => (await state()).includes('say second, edited [redacted]'), 'the vetted edit in the tab state');
		assert.ok(!(await state()).includes('sk-pasted-key-123'), 'the key never reaches the tab state');
		// The tab is hidden and shown again: a new page. The edit box is open again with the edit.
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		await queue.locator('textarea').waitFor();
		assert.equal(await queue.locator('textarea').inputValue(), 'say second, edited [redacted]');
		// Saved from the new page, it reaches the host as any edit does.
		await queue.locator('textarea').press('Enter');
		await until(() => host.of('queue/edit').length === 1, 'the edit saved');
		assert.deepEqual(host.of('queue/edit')[0], { chatId: 'chat-1', queueId: 'q1', text: 'say second, edited [redacted]' });
		await until(async () => !(await state()).includes('queueEdit'), 'the saved edit gone from the tab state');
		// An edit left open while the tab was hidden, and its message sent meanwhile: the edit goes into the message box.
		await queue.getByRole('button', { name: 'Edit: say second' }).click();
		await page.keyboard.press('End');
		await page.keyboard.type(' later');
		await until(async () => (await state()).includes('say second later'), 'the second edit in the tab state');
		host.handlers['chat/open'] = () => ({ kind: 'snapshot', snapshot: snap(allRows().slice(0, 2), 3, meta({ status: 'running', queue: [] })) });
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		await until(async () => (await page.locator('textarea.input').inputValue()) === 'say second later', 'the edit in the message box');
		assert.match(await page.locator('.composer .note-text[role="status"]').innerText(), /your edited text is in the message box/);
		assert.deepEqual(problems, []);
	});

	test('a queued edit saved just before its message starts is not reported as lost; one the host refuses is kept in the message box', async () => {
		const queued = [{ id: 'q1', text: 'say second', attachments: [] }];
		await openTab(snap(allRows().slice(0, 2), 2, meta({ status: 'running', queue: queued })));
		host.handlers['chat/saveDraft'] = (p) => ({ draft: p.draft });
		let answerSave!: (ok: boolean) => void;
		host.handlers['queue/edit'] = () => new Promise((resolve, reject) => (answerSave = (ok) => (ok ? resolve(null) : reject(Object.assign(new Error('That message was already sent.'), { code: 'task/notQueued' })))));
		const input = page.locator('textarea.input');
		const queue = page.locator('section[aria-label="Queued messages"]');
		await queue.getByRole('button', { name: 'Edit: say second' }).click();
		await page.keyboard.press('End');
		await page.keyboard.type(', edited');
		await page.keyboard.press('Enter');
		await until(async () => host.requests.some((r) => r.kind === 'request' && r.method === 'queue/edit'), 'the edit to be sent');
		// The host took the edit, and the message starts before its answer arrives.
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: [] }) });
		answerSave(true);
		await until(async () => (await queue.locator('textarea').count()) === 0, 'the edit box to go');
		assert.equal(await input.inputValue(), '', 'the edit went with the message: nothing to put back');
		assert.equal(await page.locator('.composer .note-text[role="status"]').innerText(), '');
		// Again, but the host refuses (the message had started first): the edit is kept.
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: [{ id: 'q2', text: 'say third', attachments: [] }] }) });
		await queue.getByRole('button', { name: 'Edit: say third' }).click();
		await page.keyboard.press('End');
		await page.keyboard.type(', edited');
		await page.keyboard.press('Enter');
		await until(async () => host.requests.filter((r) => r.kind === 'request' && r.method === 'queue/edit').length === 2, 'the second edit to be sent');
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'running', queue: [] }) });
		answerSave(false);
		await until(async () => (await input.inputValue()) === 'say third, edited', 'the refused edit to be kept in the message box');
	});

	test('permission cards answer by keyboard; a card settled elsewhere says "Already answered"', async () => {
		const rows = allRows().filter((r) => r.kind !== 'error');
		await openTab(snap(rows, 14, meta({ status: 'waitingForPermission' })));
		host.handlers['permission/answer'] = () => ({ accepted: false });
		const card = page.locator('section.permission');
		assert.equal(await card.getAttribute('aria-label'), 'Permission request: Write CHANGELOG.md');
		await card.focus();
		await page.keyboard.press('2');
		await until(() => host.of('permission/answer').length === 1, 'the answer');
		assert.deepEqual(host.of('permission/answer')[0], { chatId: 'chat-1', requestId: 'perm-a', optionId: 'always' });
		await until(async () => (await card.locator('.permission-status').innerText()) === 'Already answered.', 'already answered');
		// The host's row change (the decision) replaces the card; focus stays on the card, not the input.
		await rowUpdate({ seq: 15, op: 'change', row: { ...(rows.find((r) => r.id === 'q1') as Extract<ChatRow, { kind: 'permission' }>), decision: { outcome: 'selected', optionId: 'allow', decidedBy: 'user' } } });
		assert.equal(await page.locator('section.permission .permission-status').innerText(), 'Answered: Allow once');
		assert.equal(await page.evaluate(() => document.activeElement?.className), 'permission settled');
		// Alt+R from the input answers the open card with its reject option.
		host.handlers['permission/answer'] = () => ({ accepted: true });
		await rowUpdate({ seq: 16, op: 'append', row: { id: 'q2', turnId: 't2', kind: 'permission', requestId: 'perm-b', title: 'Run npm test', options: [{ optionId: 'ok', name: 'Allow', kind: 'allow_once' }, { optionId: 'no', name: 'Reject', kind: 'reject_once' }] } });
		await page.locator('textarea.input').focus();
		await page.keyboard.press('Alt+KeyR');
		await until(() => host.of('permission/answer').length === 2, 'the Alt+R answer');
		assert.deepEqual(host.of('permission/answer')[1], { chatId: 'chat-1', requestId: 'perm-b', optionId: 'no' });
		assert.equal(await page.locator('textarea.input').inputValue(), '', 'the shortcut typed nothing');
		// Two cards open: Alt+A twice answers the oldest, then the one after it (not the oldest again while
		// its decision is on its way back).
		const ask = (id: string, requestId: string): ChatRow => ({ id, turnId: 't2', kind: 'permission', requestId, title: `Step ${id}`, options: [{ optionId: 'ok', name: 'Allow', kind: 'allow_once' }, { optionId: 'no', name: 'Reject', kind: 'reject_once' }] });
		await rowUpdate({ seq: 17, op: 'append', row: ask('q3', 'perm-c') });
		await rowUpdate({ seq: 18, op: 'append', row: ask('q4', 'perm-d') });
		await page.keyboard.press('Alt+KeyA');
		await until(() => host.of('permission/answer').length === 3, 'the first Alt+A');
		await page.keyboard.press('Alt+KeyA');
		await until(() => host.of('permission/answer').length === 4, 'the second Alt+A');
		assert.deepEqual(host.of('permission/answer').slice(2).map((a) => a.requestId), ['perm-c', 'perm-d']);
		assert.equal(await page.locator('section.permission .permission-status', { hasText: 'Already answered' }).count(), 0, 'no card says its own answer was already given');
	});

	test('a request not shown yet says it waits for earlier ones and offers no answer; it can be answered once shown; Alt+A takes the oldest answerable', async () => {
		const ask = (id: string, requestId: string): ChatRow => ({ id, turnId: 't2', kind: 'permission', requestId, title: `Step ${id}`, options: [{ optionId: 'ok', name: 'Allow', kind: 'allow_once' }, { optionId: 'no', name: 'Reject', kind: 'reject_once' }] });
		const rows = [...allRows().filter((r) => r.kind !== 'error' && r.kind !== 'permission'), ask('q1', 'perm-a'), ask('q5', 'perm-e')];
		await openTab(snap(rows, 14, meta({ status: 'waitingForPermission', unshownPermissions: ['perm-e'] })));
		host.handlers['permission/answer'] = () => ({ accepted: true });
		const waiting = page.locator('section.permission[aria-label="Permission request: Step q5"]');
		assert.equal(await waiting.locator('.permission-status').innerText(), 'Waits until earlier requests are answered; then you can answer it.');
		assert.equal(await waiting.locator('button').count(), 0, 'no answer offered');
		// The number keys on it answer nothing; Alt+A and Alt+R go to the oldest card that can be answered.
		await waiting.focus();
		await page.keyboard.press('1');
		await page.keyboard.press('Alt+KeyA');
		await until(() => host.of('permission/answer').length === 1, 'the Alt+A answer');
		assert.deepEqual(host.of('permission/answer'), [{ chatId: 'chat-1', requestId: 'perm-a', optionId: 'ok' }]);
		await page.keyboard.press('Alt+KeyR');
		await new Promise((r) => setTimeout(r, 200));
		assert.equal(host.of('permission/answer').length, 1, 'the waiting card is not answered');
		assert.equal(await waiting.locator('.permission-status').innerText(), 'Waits until earlier requests are answered; then you can answer it.');
		// The broker shows it (the first was settled): the card offers its answers, and Alt+R answers it.
		await rowUpdate({ seq: 15, op: 'change', row: { ...ask('q1', 'perm-a'), decision: { outcome: 'selected', optionId: 'ok', decidedBy: 'user' } } as ChatRow });
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'waitingForPermission' }) });
		await until(async () => (await waiting.locator('button').count()) === 2, 'the answers on the shown card');
		assert.equal(await waiting.locator('.permission-status').innerText(), '');
		await page.keyboard.press('Alt+KeyR');
		await until(() => host.of('permission/answer').length === 2, 'the Alt+R answer');
		assert.deepEqual(host.of('permission/answer')[1], { chatId: 'chat-1', requestId: 'perm-e', optionId: 'no' });
		// A card answered before the tab heard it is not shown yet (the host says so) waits, never "Already answered".
		await rowUpdate({ seq: 16, op: 'append', row: ask('q6', 'perm-f') });
		host.handlers['permission/answer'] = () => ({ accepted: false, waiting: true });
		const late = page.locator('section.permission[aria-label="Permission request: Step q6"]');
		await late.getByRole('button', { name: 'Allow' }).click();
		await until(async () => (await late.locator('.permission-status').innerText()) === 'Waits until earlier requests are answered; then you can answer it.', 'the card to wait');
		assert.equal(await late.locator('button').count(), 0);
		assert.equal(await page.locator('section.permission .permission-status', { hasText: 'Already answered' }).count(), 0);
		// Then the meta says it is shown: it can be answered.
		host.handlers['permission/answer'] = () => ({ accepted: true });
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ status: 'waitingForPermission' }) });
		await until(async () => (await late.locator('button').count()) === 2, 'the answers back');
		await late.getByRole('button', { name: 'Allow' }).click();
		await until(() => host.of('permission/answer').length === 4, 'the answer');
		assert.deepEqual(host.of('permission/answer')[3], { chatId: 'chat-1', requestId: 'perm-f', optionId: 'ok' });
		assert.deepEqual(problems, []);
	});

	test('Alt+A / Alt+R never take a key that types a character (macOS Option, AltGr, an IME); Alt+A that types nothing answers', async () => {
		const rows = allRows().filter((r) => r.kind !== 'error');
		await openTab(snap(rows, 14, meta({ status: 'waitingForPermission' })));
		host.handlers['permission/answer'] = () => ({ accepted: true });
		await page.locator('textarea.input').focus();
		// Each key as the browser reports it, sent to the input; what the app does is seen at once (a request is posted synchronously).
		const keys: { what: string; init: { key: string; code: string; altKey: boolean; ctrlKey?: boolean; metaKey?: boolean; isComposing?: boolean } }[] = [
			{ what: 'macOS Option+A types å', init: { key: 'å', code: 'KeyA', altKey: true } },
			{ what: 'macOS Option+R types ®', init: { key: '®', code: 'KeyR', altKey: true } },
			{ what: 'Polish AltGr+A on Windows (Ctrl+Alt) types ą', init: { key: 'ą', code: 'KeyA', altKey: true, ctrlKey: true } },
			{ what: 'Ctrl+Alt+A', init: { key: 'a', code: 'KeyA', altKey: true, ctrlKey: true } },
			{ what: 'Cmd+Alt+A', init: { key: 'a', code: 'KeyA', altKey: true, metaKey: true } },
			{ what: 'Alt+A while an IME composes', init: { key: 'a', code: 'KeyA', altKey: true, isComposing: true } },
			{ what: 'Alt+Q on an AZERTY keyboard (the key where A is on QWERTY)', init: { key: 'q', code: 'KeyA', altKey: true } },
		];
		for (const { what, init } of keys) {
			const seen = await page.evaluate((i) => {
				const input = document.querySelector('textarea.input') as HTMLTextAreaElement;
				const notCancelled = input.dispatchEvent(new KeyboardEvent('keydown', { ...i, bubbles: true, cancelable: true }));
				const w = window as unknown as { __posted: { kind: string; method?: string }[] };
				return { notCancelled, answers: w.__posted.filter((m) => m.kind === 'request' && m.method === 'permission/answer').length };
			}, init);
			assert.deepEqual(seen, { notCancelled: true, answers: 0 }, `${what}: the key is left to type, nothing is answered`);
		}
		assert.equal(await page.locator('section.permission.open').count(), 1, 'the card is still open');
		// Outside a text field nothing is typed: on the card, Alt+Q on AZERTY still answers nothing, while a Mac's
		// Option+A ("å") does.
		const onCard = (init: { key: string; code: string; altKey: boolean }): Promise<number> =>
			page.evaluate((i) => {
				(document.querySelector('section.permission') as HTMLElement).dispatchEvent(new KeyboardEvent('keydown', { ...i, bubbles: true, cancelable: true }));
				const w = window as unknown as { __posted: { kind: string; method?: string }[] };
				return w.__posted.filter((m) => m.kind === 'request' && m.method === 'permission/answer').length;
			}, init);
		assert.equal(await onCard({ key: 'q', code: 'KeyA', altKey: true }), 0, 'AZERTY Alt+Q on the card');
		assert.equal(await onCard({ key: 'å', code: 'KeyA', altKey: true }), 1, 'macOS Option+A on the card answers');
		await until(() => host.of('permission/answer').length === 1, 'the Option+A answer');
		assert.deepEqual(host.of('permission/answer')[0], { chatId: 'chat-1', requestId: 'perm-a', optionId: 'allow' });
		host.requests.length = 0;
		await openTab(snap(rows, 14, meta({ status: 'waitingForPermission' })));
		host.handlers['permission/answer'] = () => ({ accepted: true });
		await page.locator('textarea.input').focus();
		// Alt+A on a layout where it types nothing (Windows, Linux) answers from the input; so does Alt+Shift+A.
		await page.keyboard.press('Alt+Shift+KeyA');
		await until(() => host.of('permission/answer').length === 1, 'the Alt+A answer');
		assert.deepEqual(host.of('permission/answer')[0], { chatId: 'chat-1', requestId: 'perm-a', optionId: 'allow' });
		assert.equal(await page.locator('textarea.input').inputValue(), '', 'the shortcut typed nothing');
	});

	test('in a high-contrast theme (no selection background, a contrast border) the chosen completion is outlined', async () => {
		await openTab(snap(allRows().slice(0, 2), 2));
		// As VS Code's high-contrast themes colour a webview: list and suggest selections have no background (each
		// undefined variable is one the theme does not set); the focused item is marked by the contrast border.
		await page.evaluate(() =>
			document.styleSheets[document.styleSheets.length - 1]!.insertRule(
				':root { --vscode-list-activeSelectionBackground: initial; --vscode-editorSuggestWidget-selectedBackground: initial; --vscode-list-activeSelectionForeground: initial; --vscode-contrastActiveBorder: rgb(243, 133, 24); --vscode-contrastBorder: rgb(111, 195, 223); --vscode-list-focusOutline: rgb(243, 133, 24); }',
				document.styleSheets[document.styleSheets.length - 1]!.cssRules.length,
			),
		);
		host.handlers['complete/commands'] = () => [
			{ insertText: 'plan', label: '/plan', detail: 'Make a plan' },
			{ insertText: 'plot', label: '/plot', detail: 'Draw' },
		];
		await page.locator('textarea.input').focus();
		await page.keyboard.type('/pl');
		await page.waitForSelector('[role="option"][aria-selected="true"]');
		const look = (i: number): Promise<string> =>
			page.locator('[role="option"]').nth(i).evaluate((li) => {
				const c = getComputedStyle(li);
				return `${c.backgroundColor} ${c.outlineStyle} ${c.outlineWidth} ${c.outlineColor}`;
			});
		const [chosen, other] = [await look(0), await look(1)];
		assert.notEqual(chosen, other, 'the chosen completion looks like any other');
		assert.match(chosen, /rgb\(243, 133, 24\)/, `not marked with the contrast border: ${chosen}`);
	});

	test('slash commands and @ mentions complete from the host; a mention becomes an attachment', async () => {
		await openTab(snap(allRows().slice(0, 2), 2));
		host.handlers['complete/commands'] = (p) => [{ insertText: 'plan', label: '/plan', detail: `Make a plan (${p.query})` }];
		host.handlers['complete/files'] = (p) => (p.query.startsWith('par') ? [{ insertText: 'src/parser.ts', label: 'parser.ts', detail: 'src/parser.ts' }] : []);
		host.handlers['chat/send'] = () => ({ queued: true });
		const input = page.locator('textarea.input');
		await input.focus();
		await page.keyboard.type('/pl');
		await page.waitForSelector('[role="listbox"] [role="option"]');
		assert.equal(await input.getAttribute('aria-activedescendant'), await page.locator('[role="option"]').first().getAttribute('id'));
		await page.keyboard.press('Enter');
		assert.equal(await input.inputValue(), '/plan ');
		await page.keyboard.type('fix @par');
		await page.waitForSelector('[role="option"]:has-text("parser.ts")');
		await page.keyboard.press('Tab');
		assert.equal(await input.inputValue(), '/plan fix @src/parser.ts ');
		assert.deepEqual(await page.locator('ul[aria-label="Attachments"] li').allInnerTexts(), ['src/parser.ts\n×']);
		await page.keyboard.press('Enter');
		await until(() => host.of('chat/send').length === 1, 'the send');
		assert.deepEqual(host.of('chat/send')[0]!.prompt, { text: '/plan fix @src/parser.ts ', attachments: [{ kind: 'file', path: 'src/parser.ts' }] });
	});

	test('attach selection adds a chip or says why not; a mode that cannot be set goes back', async () => {
		await openTab(snap(allRows().slice(0, 2), 2));
		let selections = 0;
		host.handlers['editor/attachSelection'] = () => {
			selections++;
			if (selections === 1) {
				throw Object.assign(new Error("The selection is in /elsewhere/a.ts, which is not in this session's worktree."), { code: 'selection/outsideWorktree' });
			}
			return { kind: 'selection', path: 'src/parser.ts', startLine: 3, endLine: 7, text: 'const x = 1;' };
		};
		host.handlers['chat/setMode'] = () => {
			throw Object.assign(new Error('Scripted does not offer modes.'), { code: 'agent/noModes' });
		};
		host.handlers['chat/send'] = () => ({ queued: false });
		const attach = page.getByRole('button', { name: 'Attach Selection' });
		await attach.click();
		await until(async () => (await page.locator('[role="alert"]').innerText()).includes('not in this session'), 'the reason');
		await attach.click();
		await page.locator('ul[aria-label="Attachments"] li').waitFor();
		assert.equal(await page.locator('ul[aria-label="Attachments"] li').innerText(), 'src/parser.ts, lines 3–7\n×');
		assert.equal(await page.locator('[role="alert"]').innerText(), '', 'the old error is gone');
		assert.equal(await page.evaluate(() => document.activeElement?.className), 'input', 'focus back in the input');
		host.handlers['chat/saveDraft'] = (p) => ({ draft: p.draft, ...(p.attachments ? { attachments: p.attachments } : {}) });
		await page.keyboard.type('explain');
		// The tab is hidden and shown again (a new page): the text and the attached selection are both back.
		await until(async () => JSON.stringify(await page.evaluate(() => (window as unknown as { __state: unknown }).__state)).includes('const x = 1;'), 'the attachment in the tab state');
		await page.reload();
		await page.waitForSelector('[role="log"] [data-row-id]');
		assert.equal(await page.locator('textarea.input').inputValue(), 'explain');
		assert.equal(await page.locator('ul[aria-label="Attachments"] li').innerText(), 'src/parser.ts, lines 3–7\n×');
		await page.locator('textarea.input').focus();
		await page.keyboard.press('End');
		await page.keyboard.press('Enter');
		await until(() => host.of('chat/send').length === 1, 'the send');
		assert.deepEqual(host.of('chat/send')[0]!.prompt.attachments, [{ kind: 'selection', path: 'src/parser.ts', startLine: 3, endLine: 7, text: 'const x = 1;' }]);
		await page.locator('select[aria-label="Mode"]').selectOption('ask');
		await until(() => host.of('chat/setMode').length === 1, 'set mode');
		await until(async () => (await page.locator('select[aria-label="Mode"]').inputValue()) === 'code', 'the picker to go back');
		assert.match(await page.locator('[role="alert"]').innerText(), /does not offer modes/);
	});

	test("the agent's settings are pickers under its names, a mode setting is the one mode picker; a refused choice goes back and says why; pickers follow the settings", async () => {
		const effort = (current: string): ChatSetting => ({ id: 'effort', name: 'Effort', description: 'How hard the model thinks', category: 'thought_level', current, available: [{ id: 'medium', name: 'Medium' }, { id: 'high', name: 'High' }, { id: 'max', name: 'Max' }] });
		const approval: ChatSetting = { id: 'mode', name: 'Approval', category: 'mode', current: 'default', available: [{ id: 'default', name: 'Ask first' }, { id: 'auto', name: 'Auto edit' }] };
		const context: ChatSetting = { id: 'context', name: 'Context', current: 'standard', available: [{ id: 'standard', name: 'Standard' }, { id: 'long', name: 'Long (1M)' }] };
		const models = { current: 'small', available: [{ id: 'small', name: 'Small' }, { id: 'large', name: 'Large' }] };
		// Legacy modes too (as agents that send both do): the mode setting's picker is the only one shown.
		await openTab(snap(allRows().slice(0, 2), 2, meta({ models, settings: [effort('medium'), approval] })), 300);
		const shown = (): Promise<(string | null)[]> => page.locator('.toolbar select:visible').evaluateAll((els) => els.map((e) => e.getAttribute('aria-label')));
		assert.deepEqual(await shown(), ['Approval', 'Model', 'Effort'], 'the mode setting where the mode picker was, the others after the model');
		assert.equal(await page.locator('select[aria-label="Effort"]').inputValue(), 'medium');
		assert.equal(await page.locator('select[aria-label="Effort"]').getAttribute('title'), 'How hard the model thinks');
		assert.equal(await page.locator('label.picker', { has: page.locator('select[aria-label="Effort"]') }).locator('.picker-label').innerText(), 'Effort', 'labelled with its name');
		const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
		assert.ok(overflow <= 0, `scrolls sideways by ${overflow}px at 300 px`);
		// Keyboard: Tab from the message box reaches the picker, and arrow keys choose.
		let calls = 0;
		host.handlers['chat/setConfigOption'] = (p) => {
			calls++;
			if (p.value === 'max') {
				throw Object.assign(new Error('Max effort needs the Large model'), { code: 'internal' });
			}
			// The agent answers with its whole new set: here, a setting that comes with the choice.
			void notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ models, settings: [effort(p.value), approval, context] }) });
			return null;
		};
		await page.locator('textarea.input').focus();
		for (let i = 0; i < 12 && (await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))) !== 'Effort'; i++) {
			await page.keyboard.press('Tab');
		}
		assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Effort', 'reachable with Tab');
		await page.locator('select[aria-label="Effort"]').selectOption('high');
		await until(() => calls === 1, 'the set');
		assert.deepEqual(host.of('chat/setConfigOption'), [{ chatId: 'chat-1', configId: 'effort', value: 'high' }]);
		await page.locator('select[aria-label="Context"]').waitFor();
		assert.deepEqual(await shown(), ['Approval', 'Model', 'Effort', 'Context']);
		assert.equal(await page.locator('select[aria-label="Effort"]').inputValue(), 'high');
		assert.equal(await page.evaluate(() => document.activeElement?.getAttribute('aria-label')), 'Effort', 'the picker keeps its focus across the update');
		await page.locator('select[aria-label="Effort"]').selectOption('max');
		await until(() => calls === 2, 'the refused set');
		await until(async () => (await page.locator('select[aria-label="Effort"]').inputValue()) === 'high', 'the picker to go back');
		assert.match(await page.locator('[role="alert"]').innerText(), /Max effort needs the Large model/);
		await page.locator('select[aria-label="Approval"]').selectOption('auto');
		await until(() => calls === 3, 'the mode set');
		assert.deepEqual(host.of('chat/setConfigOption')[2], { chatId: 'chat-1', configId: 'mode', value: 'auto' });
		assert.equal(host.of('chat/setMode').length, 0, 'the mode setting is set as a setting');
		// The agent no longer offers a setting: its picker goes.
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ models, settings: [effort('high'), approval] }) });
		await until(async () => (await page.locator('select[aria-label="Context"]').count()) === 0, 'the Context picker to go');
		assert.deepEqual(problems, []);
		await page.screenshot({ path: path.join(outputDir, 'chat-300-settings.png'), fullPage: false });
	});

	test('a choice refused after an earlier one was taken goes back to what the agent holds, not to what the picker showed before', async () => {
		const effort = (current: string): ChatSetting => ({ id: 'effort', name: 'Effort', category: 'thought_level', current, available: [{ id: 'medium', name: 'Medium' }, { id: 'high', name: 'High' }, { id: 'max', name: 'Max' }] });
		await openTab(snap(allRows().slice(0, 2), 2, meta({ settings: [effort('medium')] })));
		// Two choices in quick succession: the agent takes High (its new settings arrive while Max is asked), then refuses Max.
		let takeHigh!: () => void;
		let refuseMax!: () => void;
		host.handlers['chat/setConfigOption'] = (p) =>
			new Promise((resolve, reject) => {
				if (p.value === 'high') {
					takeHigh = () => resolve(null);
				} else {
					refuseMax = () => reject(Object.assign(new Error('Max effort needs the Large model'), { code: 'internal' }));
				}
			});
		const picker = page.locator('select[aria-label="Effort"]');
		await picker.selectOption('high');
		await picker.selectOption('max');
		await until(() => host.of('chat/setConfigOption').length === 2, 'both choices asked');
		await notify({ kind: 'notify', method: 'chat/didChangeMeta', params: meta({ settings: [effort('high')] }) });
		takeHigh();
		refuseMax();
		await until(async () => (await page.locator('[role="alert"]').innerText()).includes('Max effort needs the Large model'), 'the refusal said');
		await new Promise((r) => setTimeout(r, 100));
		assert.equal(await picker.inputValue(), 'high', 'the picker shows the effort the agent holds');
		assert.deepEqual(problems, []);
	});

	test('rewind shows what it would replace, and only a confirm rewinds', async () => {
		await openTab(snap(allRows().slice(0, 2), 2));
		host.handlers['turn/rewindPreview'] = (p) => ({ turnId: p.turnId, number: 1, files: ['src/parser.ts', 'CHANGELOG.md'], laterTurns: 1 });
		host.handlers['turn/rewind'] = () => ({ files: ['src/parser.ts', 'CHANGELOG.md'], replacedRef: 'refs/agent-tabs/checkpoints/x-replaced-1' });
		await page.getByRole('button', { name: 'Rewind to before this turn' }).click();
		const box = page.locator('.rewind-confirm');
		await box.getByRole('button', { name: 'Rewind', exact: true }).waitFor();
		const text = await box.innerText();
		assert.match(text, /before turn 1/);
		assert.match(text, /src\/parser\.ts/);
		assert.match(text, /1 later turn/);
		assert.equal(host.of('turn/rewind').length, 0, 'the preview changes nothing');
		assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Cancel', 'focus goes to the safe choice');
		await page.screenshot({ path: path.join(outputDir, 'chat-rewind.png') });
		await box.getByRole('button', { name: 'Rewind', exact: true }).click();
		await until(() => host.of('turn/rewind').length === 1, 'the rewind');
		await until(async () => (await box.innerText()).includes('Rewound 2 file(s)'), 'the result');
	});
});
