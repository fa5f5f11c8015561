/**
 * bench/chat: what a long chat costs the chat tab's page, against a short chat measured in the same run, in
 * headless Chromium (the page and its host double are test/unit/webview/chatPage.ts). Main-thread time is
 * Chromium's own count (`TaskDuration`), so a busy machine slows both sides alike:
 *  - streamedUpdate: a streamed change to the last row, then a frame (layout and paint of what changed), per update;
 *  - key: a key typed in the message box, then a frame, per key;
 *  - show: a whole snapshot shown (`chat/didReset`, as when a tab is opened or resynced), per row.
 * Rounds of the short and the long chat alternate; medians of the rounds are compared.
 * Target (chat tabs on the host that never stalls): streamedUpdate and key in the long chat within 2× the short one.
 * `host` is the extension host's side of opening a long chat (`chatHostBench.ts`).
 *
 * Knobs (environment): BENCH_CHAT_TURNS (2,500 turns of four rows), BENCH_CHAT_ROUNDS (3).
 */
import * as fs from 'node:fs';
import type { Page } from 'playwright-core';
import type { ChatRow, ChatSnapshot } from '../src/protocol/messages';
import { chromiumPath, longChat, mainThreadClock, meta, nextFrame, openChatTab, startChatPageServer, typeKeys, type ChatPageServer } from '../test/unit/webview/chatPage';
import { runChatHostBench } from './chatHostBench';
import { log, percentile, round } from './stats';

const longTurns = Math.max(1, Number(process.env.BENCH_CHAT_TURNS ?? 2500));
const rounds = Math.max(1, Number(process.env.BENCH_CHAT_ROUNDS ?? 3));
const shortTurns = 10;
const repeats = 20;

export const targets = { streamedUpdateRatio: 2, keyRatio: 2 } as const;

const snapshotOf = (rows: ChatRow[], seq: number): ChatSnapshot => ({ chatId: 'chat-1', epoch: 'e1', seq, rows, meta: meta() });

interface Round {
	streamedUpdateMs: number;
	keyMs: number;
	showMsPerRow: number;
}

async function measure(server: ChatPageServer, turns: number): Promise<Round> {
	const rows = longChat(turns);
	const { page, host } = await openChatTab(server, snapshotOf(rows, rows.length));
	host.handlers['chat/saveDraft'] = (p) => ({ draft: p.draft });
	await nextFrame(page);
	const clock = await mainThreadClock(page);
	const last = rows[rows.length - 1] as ChatRow & { kind: 'text' };
	let start = await clock.ms();
	for (let k = 1; k <= repeats; k++) {
		await notify(page, { kind: 'notify', method: 'chat/didUpdateRow', params: { chatId: 'chat-1', epoch: 'e1', seq: rows.length + k, op: 'change', row: { ...last, text: 'streamed '.repeat(k) } } });
		await nextFrame(page);
	}
	const streamedUpdateMs = ((await clock.ms()) - start) / repeats;
	await page.locator('textarea.input').focus();
	start = await clock.ms();
	await typeKeys(page, repeats);
	const keyMs = ((await clock.ms()) - start) / repeats;
	// The snapshot is handed to the page first, so only showing it is counted.
	await page.evaluate((s) => void ((window as unknown as { __snapshot: unknown }).__snapshot = s), snapshotOf(rows, rows.length + 100));
	start = await clock.ms();
	await page.evaluate(() => void window.dispatchEvent(new MessageEvent('message', { data: { kind: 'notify', method: 'chat/didReset', params: (window as unknown as { __snapshot: unknown }).__snapshot } })));
	await nextFrame(page);
	const showMsPerRow = ((await clock.ms()) - start) / rows.length;
	await clock.detach();
	await page.context().close();
	return { streamedUpdateMs, keyMs, showMsPerRow };
}

function notify(page: Page, message: unknown): Promise<void> {
	return page.evaluate((m) => void window.dispatchEvent(new MessageEvent('message', { data: m })), message);
}

export async function runChatBench(): Promise<Record<string, unknown>> {
	const host = await runChatHostBench();
	if (!fs.existsSync(chromiumPath)) {
		return { host, page: { skipped: `no Chromium at ${chromiumPath}` } };
	}
	const server = await startChatPageServer();
	try {
		const short: Round[] = [];
		const long: Round[] = [];
		for (let r = 0; r < rounds; r++) {
			short.push(await measure(server, shortTurns));
			long.push(await measure(server, longTurns));
			log(`chat: round ${r + 1}/${rounds}: update ${long[r]!.streamedUpdateMs.toFixed(1)} ms at ${longTurns * 4} rows, ${short[r]!.streamedUpdateMs.toFixed(1)} ms at ${shortTurns * 4}`);
		}
		const median = (of: Round[], key: keyof Round): number => percentile(of.map((x) => x[key]), 50);
		const figure = (key: keyof Round): Record<string, number> => ({ longMs: round(median(long, key), 2), shortMs: round(median(short, key), 2), ratio: round(median(long, key) / median(short, key), 2) });
		return {
			rows: { long: longTurns * 4, short: shortTurns * 4 },
			streamedUpdate: { ...figure('streamedUpdateMs'), target: targets.streamedUpdateRatio },
			key: { ...figure('keyMs'), target: targets.keyRatio },
			showPerRow: { longMs: round(median(long, 'showMsPerRow'), 4), shortMs: round(median(short, 'showMsPerRow'), 4) },
			host,
		};
	} finally {
		await server.close();
	}
}
