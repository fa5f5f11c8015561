/// <reference lib="dom" />
/**
 * The chat tab's page in headless Chromium, for the tests and the benchmark: the bundle esbuild makes from
 * src/webview/app/chat, served from 127.0.0.1 with the page the host renders (same CSP and nonce).
 * `acquireVsCodeApi` is a double that records what the app posts and hands requests to a scripted host in
 * this process (`FakeHost`).
 */
import * as esbuild from 'esbuild';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import type { ChatMeta, ChatRow, ChatSnapshot, ChatTabState, HostToWebview, Requests, WebviewToHost } from '../../../src/protocol/messages';
import { chatStrings } from '../../../src/webview/host/chatStrings';
import { chatHtml, newNonce } from '../../../src/webview/host/html';
import { removeDir, repoRoot, tempDir } from '../helpers';

export const chromiumPath = process.env.AGENT_TABS_CHROMIUM ?? '/usr/bin/chromium';
export const strings = chatStrings({ l10n: { t: (message: string) => message } } as never);

/** Dark-theme values of the variables VS Code injects into webviews, so screenshots look like the real tab. */
const themeCss = `:root {
	--vscode-font-family: system-ui, sans-serif; --vscode-font-size: 13px; --vscode-editor-font-family: monospace;
	--vscode-foreground: #cccccc; --vscode-descriptionForeground: #9d9d9d; --vscode-errorForeground: #f85149;
	--vscode-editor-background: #1f1f1f; --vscode-editorWidget-background: #202020; --vscode-widget-border: #313131;
	--vscode-panel-border: #2b2b2b; --vscode-focusBorder: #0078d4; --vscode-textLink-foreground: #4daafc;
	--vscode-textLink-activeForeground: #4daafc; --vscode-input-background: #313131; --vscode-input-foreground: #cccccc;
	--vscode-input-border: #3c3c3c; --vscode-input-placeholderForeground: #989898; --vscode-button-background: #0078d4;
	--vscode-button-foreground: #ffffff; --vscode-button-hoverBackground: #026ec1; --vscode-button-secondaryBackground: #313131;
	--vscode-button-secondaryForeground: #cccccc; --vscode-button-secondaryHoverBackground: #3c3c3c; --vscode-badge-background: #616161;
	--vscode-badge-foreground: #f8f8f8; --vscode-dropdown-background: #313131; --vscode-dropdown-foreground: #cccccc;
	--vscode-dropdown-border: #3c3c3c; --vscode-editorWarning-foreground: #cca700; --vscode-editorInfo-foreground: #3794ff;
	--vscode-inputValidation-errorBorder: #be1100; --vscode-keybindingLabel-background: rgba(128,128,128,.17);
	--vscode-keybindingLabel-foreground: #cccccc; --vscode-list-activeSelectionBackground: #04395e; --vscode-list-activeSelectionForeground: #ffffff;
}`;

/** The page double: records posts and state, forwards requests to the scripted host, delivers its replies. */
const doubleJs = `(() => {
	window.__posted = [];
	window.__state = JSON.parse(sessionStorage.getItem('state') || 'null');
	window.acquireVsCodeApi = () => ({
		postMessage: (m) => {
			window.__posted.push(JSON.parse(JSON.stringify(m)));
			if (m.kind === 'request') {
				window.__host(m).then((reply) => window.dispatchEvent(new MessageEvent('message', { data: reply })));
			}
		},
		getState: () => window.__state,
		setState: (s) => { window.__state = s; sessionStorage.setItem('state', JSON.stringify(s)); },
	});
})();`;

export const meta = (over: Partial<ChatMeta> = {}): ChatMeta => ({
	chatId: 'chat-1',
	title: 'Fix the parser',
	agent: 'scripted',
	agentLabel: 'Scripted',
	status: 'idle',
	modes: { current: 'code', available: [{ id: 'code', name: 'Code' }, { id: 'ask', name: 'Ask' }] },
	models: { available: [] },
	commands: [{ name: 'plan', description: 'Make a plan' }],
	queue: [],
	closed: false,
	...over,
});

/** A scripted host: answers each request from `handlers`, records every request. */
export class FakeHost {
	readonly requests: WebviewToHost[] = [];
	handlers: { [M in keyof Requests]?: (params: Requests[M][0]) => Requests[M][1] | Promise<Requests[M][1]> } = {};

	async answer(msg: WebviewToHost): Promise<HostToWebview> {
		this.requests.push(msg);
		if (msg.kind !== 'request') {
			throw new Error('not a request');
		}
		const handler = this.handlers[msg.method] as ((p: unknown) => unknown) | undefined;
		try {
			if (!handler) {
				throw Object.assign(new Error(`no handler for ${msg.method}`), { code: 'unknownMethod' });
			}
			return { kind: 'response', id: msg.id, ok: true, result: (await handler(msg.params)) ?? null };
		} catch (e) {
			return { kind: 'response', id: msg.id, ok: false, error: { code: (e as { code?: string }).code ?? 'internal', message: (e as Error).message } };
		}
	}

	of<M extends keyof Requests>(method: M): Requests[M][0][] {
		return this.requests.flatMap((r) => (r.kind === 'request' && r.method === method ? [r.params as Requests[M][0]] : []));
	}
}

/** The page served, and the browser that shows it. */
export interface ChatPageServer {
	readonly origin: string;
	readonly browser: Browser;
	close(): Promise<void>;
}

export async function startChatPageServer(): Promise<ChatPageServer> {
	const dir = tempDir('agent-tabs-chat-app-');
	await esbuild.build({
		entryPoints: { chat: path.join(repoRoot, 'src/webview/app/chat/main.ts') },
		outdir: dir,
		bundle: true,
		platform: 'browser',
		format: 'iife',
		target: 'es2022',
		logLevel: 'silent',
	});
	fs.writeFileSync(path.join(dir, 'theme.css'), themeCss);
	fs.writeFileSync(path.join(dir, 'double.js'), doubleJs);
	const server = http.createServer((req, res) => {
		const name = path.basename(new URL(req.url ?? '/', 'http://x').pathname) || 'page.html';
		const file = path.join(dir, name);
		if (name === 'favicon.ico') {
			res.writeHead(204).end();
			return;
		}
		if (!fs.existsSync(file)) {
			res.writeHead(404).end();
			return;
		}
		const type = name.endsWith('.js') ? 'text/javascript' : name.endsWith('.css') ? 'text/css' : 'text/html';
		res.writeHead(200, { 'content-type': `${type}; charset=utf-8` }).end(fs.readFileSync(file));
	});
	await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
	const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
	// The page exactly as the host renders it, with the double's script (same nonce) and theme added.
	const nonce = newNonce();
	const html = chatHtml({ cspSource: origin, scriptUri: `${origin}/chat.js`, styleUri: `${origin}/chat.css`, nonce, bootstrap: { chatId: 'chat-1', strings } })
		.replace('<script nonce', `<link rel="stylesheet" href="${origin}/theme.css">\n<script nonce="${nonce}" src="${origin}/double.js"></script>\n<script nonce`);
	fs.writeFileSync(path.join(dir, 'page.html'), html);
	const browser = await chromium.launch({ executablePath: chromiumPath, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
	return {
		origin,
		browser,
		close: async () => {
			await browser.close();
			await new Promise((r) => server.close(r));
			removeDir(dir);
		},
	};
}

/** A chat tab open on `snapshot` in a page of its own; `problems` collects the page's errors and CSP refusals. */
export interface ChatTab {
	readonly page: Page;
	readonly host: FakeHost;
	readonly problems: string[];
}

/**
 * `state`: the tab's state as VS Code keeps it (`getState`), as when a hidden tab is shown again; `handlers`
 * answer requests the page makes as it opens (before the test could set them).
 */
export async function openChatTab(server: ChatPageServer, snapshot: ChatSnapshot, width = 900, state?: ChatTabState, handlers: FakeHost['handlers'] = {}): Promise<ChatTab> {
	const host = new FakeHost();
	host.handlers = { ...handlers, 'chat/open': () => ({ kind: 'snapshot', snapshot }) };
	const problems: string[] = [];
	const context = await server.browser.newContext({ viewport: { width, height: 900 } });
	const page = await context.newPage();
	page.on('console', (m) => (m.type() === 'error' || /Refused|Content Security Policy/i.test(m.text())) && problems.push(m.text()));
	page.on('pageerror', (e) => problems.push(e.message));
	await page.exposeFunction('__host', (m: WebviewToHost) => host.answer(m));
	if (state) {
		await page.addInitScript((kept) => sessionStorage.setItem('state', JSON.stringify(kept)), state);
	}
	await page.goto(`${server.origin}/page.html`);
	await page.waitForSelector('[role="log"] [data-row-id]');
	return { page, host, problems };
}

/** A finished chat of `turns` turns, four rows each (the turn, the question, a tool call, the answer), placed as the host places them. */
export function longChat(turns: number): ChatRow[] {
	const rows: ChatRow[] = [];
	for (let i = 0; i < turns; i++) {
		const turnId = `t${i}`;
		const turn = i + 1;
		rows.push({ id: turnId, turnId, order: [turn, -1], kind: 'turn', number: turn, agent: 'scripted', status: 'done', canRewind: true, startedAt: 1, endedAt: 2 });
		rows.push({ id: `u${i}`, turnId, order: [turn, 0], kind: 'user', text: `question ${i}` });
		rows.push({ id: `c${i}`, turnId, order: [turn, 1], kind: 'tool_call', toolCallId: `c${i}`, title: `Read file ${i}`, status: 'completed', files: [`src/f${i}.ts`] });
		rows.push({ id: `a${i}`, turnId, order: [turn, 2], kind: 'text', text: `answer ${i} `.repeat(20) });
	}
	return rows;
}

/** Types `keys` characters into the message box as a user does, each followed by a frame (layout and paint of what changed). */
export function typeKeys(page: Page, keys: number): Promise<void> {
	return page.evaluate(async (n) => {
		const input = document.querySelector('textarea.input') as HTMLTextAreaElement;
		for (let i = 0; i < n; i++) {
			input.value += 'a';
			input.dispatchEvent(new Event('input'));
			await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
		}
	}, keys);
}

/** After the page has laid out and painted what changed (a frame), and run what that queued. */
export const nextFrame = (page: Page): Promise<unknown> => page.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));

/**
 * The renderer's main-thread time so far, in ms (Chromium's own count, `TaskDuration`), not the wall clock:
 * a busy machine slows both alike.
 */
export async function mainThreadClock(page: Page): Promise<{ ms: () => Promise<number>; detach: () => Promise<void> }> {
	const cdp = await page.context().newCDPSession(page);
	await cdp.send('Performance.enable');
	return {
		ms: async () => (await cdp.send('Performance.getMetrics')).metrics.find((m) => m.name === 'TaskDuration')!.value * 1000,
		detach: () => cdp.detach(),
	};
}
