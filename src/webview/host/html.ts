import * as crypto from 'node:crypto';
import type { ChatBootstrap } from '../../protocol/messages';

/** A fresh CSP nonce from the CSPRNG (never Math.random). */
export function newNonce(): string {
	return crypto.randomBytes(16).toString('base64');
}

/** JSON that is safe inside a `<script>` element: no `<` can close it, and U+2028/9 cannot break it. */
export function inlineJson(value: unknown): string {
	return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

const escapeAttribute = (s: string): string => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');

export interface ChatHtmlInput {
	/** `webview.cspSource`. */
	cspSource: string;
	/** Webview URIs (`asWebviewUri`) of the bundled app and its styles. */
	scriptUri: string;
	styleUri: string;
	nonce: string;
	bootstrap: ChatBootstrap;
	lang?: string;
}

/**
 * A page that only says something (no script): a restored tab whose state cannot be opened right now keeps its
 * place and its saved state, and says why, instead of vanishing.
 */
export function noticeHtml(title: string, text: string, lang = 'en'): string {
	return `<!DOCTYPE html>
<html lang="${escapeAttribute(lang)}">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none';">
<title>${escapeAttribute(title)}</title>
</head>
<body role="alert"><h1>${escapeAttribute(title)}</h1><p>${escapeAttribute(text)}</p></body>
</html>`;
}

/**
 * The only HTML the chat tab gets: a strict CSP (nothing by default; styles, fonts and images only from the
 * extension's own folders; scripts only with this page's nonce), the bootstrap as inert JSON, one script.
 * Everything else is built by the app with DOM calls, never from HTML strings.
 */
export function chatHtml(input: ChatHtmlInput): string {
	const csp = [
		"default-src 'none'",
		`img-src ${input.cspSource} data:`,
		`style-src ${input.cspSource}`,
		`font-src ${input.cspSource}`,
		`script-src 'nonce-${input.nonce}'`,
	].join('; ');
	return `<!DOCTYPE html>
<html lang="${escapeAttribute(input.lang ?? 'en')}">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeAttribute(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${escapeAttribute(input.styleUri)}">
<title>Agent Tabs</title>
</head>
<body>
<script nonce="${escapeAttribute(input.nonce)}" type="application/json" id="bootstrap">${inlineJson(input.bootstrap)}</script>
<script nonce="${escapeAttribute(input.nonce)}" src="${escapeAttribute(input.scriptUri)}"></script>
</body>
</html>`;
}
