import type * as acp from '@agentclientprotocol/sdk';
import type { Readable, Writable } from 'node:stream';

/** Lines longer than this are not ACP messages we can take; the connection is closed with an error. */
export const maxLineBytes = 64 * 1024 * 1024;

export interface TransportHooks {
	/**
	 * Every `session/update` notification, in arrival order, before anything else sees it. We handle these
	 * ourselves instead of through the SDK because the SDK's client drops variants it does not know.
	 */
	onSessionUpdate(params: unknown): void;
	/** A line that is not JSON-RPC: reported, then skipped. */
	onGarbage(line: string): void;
	/** The stream failed (a line over the limit, a read error). */
	onFatal(error: Error): void;
}

/**
 * An ACP stream over a child's stdio: newline-delimited JSON-RPC, as the SDK's ndJsonStream, but with the
 * session/update notifications taken out in order (see TransportHooks) and garbage lines reported instead of
 * silently answered.
 */
export function stdioStream(stdout: Readable, stdin: Writable, hooks: TransportHooks): acp.Stream {
	let pending: Buffer[] = [];
	let pendingBytes = 0;
	let closed = false;
	const readable = new ReadableStream<acp.AnyMessage>({
		start(controller) {
			const handleLine = (buf: Buffer): void => {
				const text = buf.toString('utf8').trim();
				if (!text) {
					return;
				}
				let msg: unknown;
				try {
					msg = JSON.parse(text);
				} catch {
					hooks.onGarbage(text);
					return;
				}
				if (typeof msg !== 'object' || msg === null || Array.isArray(msg) || (msg as { jsonrpc?: unknown }).jsonrpc !== '2.0') {
					hooks.onGarbage(text);
					return;
				}
				const m = msg as { method?: unknown; id?: unknown; params?: unknown };
				if (m.method === 'session/update' && m.id === undefined) {
					hooks.onSessionUpdate(m.params);
					return;
				}
				controller.enqueue(msg as acp.AnyMessage);
			};
			stdout.on('data', (chunk: Buffer) => {
				if (closed) {
					return;
				}
				let start = 0;
				let nl = chunk.indexOf(0x0a, start);
				while (nl !== -1) {
					const piece = chunk.subarray(start, nl);
					if (pending.length > 0) {
						pending.push(piece);
						handleLine(Buffer.concat(pending));
						pending = [];
						pendingBytes = 0;
					} else {
						handleLine(piece);
					}
					start = nl + 1;
					nl = chunk.indexOf(0x0a, start);
				}
				if (start < chunk.length) {
					const rest = chunk.subarray(start);
					pending.push(Buffer.from(rest));
					pendingBytes += rest.length;
					if (pendingBytes > maxLineBytes) {
						closed = true;
						pending = [];
						const error = new Error(`The agent sent a message over ${maxLineBytes / (1024 * 1024)} MB without a line break; the connection was closed.`);
						hooks.onFatal(error);
						controller.error(error);
					}
				}
			});
			stdout.on('end', () => {
				if (closed) {
					return;
				}
				closed = true;
				if (pending.length > 0) {
					handleLine(Buffer.concat(pending));
					pending = [];
				}
				controller.close();
			});
			stdout.on('error', (e) => {
				if (!closed) {
					closed = true;
					hooks.onFatal(e);
					controller.error(e);
				}
			});
		},
		cancel() {
			closed = true;
		},
	});
	const writable = new WritableStream<acp.AnyMessage>({
		write(message) {
			return new Promise<void>((resolve, reject) => {
				if (stdin.destroyed || !stdin.writable) {
					reject(new Error('The agent process is no longer accepting input.'));
					return;
				}
				stdin.write(`${JSON.stringify(message)}\n`, (e) => (e ? reject(e) : resolve()));
			});
		},
	});
	return { readable, writable };
}
