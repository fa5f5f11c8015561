import type * as acp from '@agentclientprotocol/sdk';
import type { Readable, Writable } from 'node:stream';

/** Lines longer than this are not ACP messages we can take; the connection is closed with an error. */
export const maxLineBytes = 64 * 1024 * 1024;

/**
 * The largest message an agent takes: agents on the ACP SDK drop the connection (and exit) on a longer line
 * (its DEFAULT_MAX_MESSAGE_BYTES). A longer message of ours is never written: an answer becomes an error
 * answer, a request fails as if the agent had answered it with an error.
 */
export const maxMessageToAgentBytes = 32 * 1024 * 1024;

const megabytes = (bytes: number): string => `${Math.round(bytes / (1024 * 1024))} MB`;

/** The longest stretch (ms) one macrotask spends handling an agent's lines before it yields to the event loop. */
const sliceMs = 1;

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
	let incoming: ReadableStreamDefaultController<acp.AnyMessage> | undefined;
	const readable = new ReadableStream<acp.AnyMessage>({
		start(controller) {
			incoming = controller;
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
			// Lines are handled in slices of at most `sliceMs`: an agent that floods its stdout (libuv reads up to
			// 32 × 64 KB in one go) must not hold the host's event loop for one long stretch. While a backlog is
			// handled the stream is paused (backpressure on the agent), and its end or error waits its turn.
			const backlog: Buffer[] = [];
			let offset = 0;
			let draining = false;
			let pausedByUs = false;
			/** The stream's end or error, held until the lines received before it are handled. */
			const afterwards: (() => void)[] = [];
			const takeLines = (chunk: Buffer, deadline: number): boolean => {
				let nl = chunk.indexOf(0x0a, offset);
				let n = 0;
				while (nl !== -1) {
					const piece = chunk.subarray(offset, nl);
					if (pending.length > 0) {
						pending.push(piece);
						handleLine(Buffer.concat(pending));
						pending = [];
						pendingBytes = 0;
					} else {
						handleLine(piece);
					}
					offset = nl + 1;
					if (closed) {
						return true;
					}
					if (++n % 16 === 0 && performance.now() > deadline) {
						return false;
					}
					nl = chunk.indexOf(0x0a, offset);
				}
				if (offset < chunk.length) {
					const rest = chunk.subarray(offset);
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
				return true;
			};
			const drain = (): void => {
				draining = false;
				const deadline = performance.now() + sliceMs;
				while (backlog.length > 0 && !closed) {
					if (!takeLines(backlog[0]!, deadline)) {
						draining = true;
						if (!pausedByUs && !stdout.isPaused()) {
							pausedByUs = true;
							stdout.pause();
						}
						setImmediate(drain);
						return;
					}
					backlog.shift();
					offset = 0;
				}
				backlog.length = 0;
				if (pausedByUs) {
					pausedByUs = false;
					stdout.resume();
				}
				for (const step of afterwards.splice(0)) {
					step();
				}
			};
			/** Runs `step` once every line received before it is handled. */
			const afterBacklog = (step: () => void): void => {
				if (draining) {
					afterwards.push(step);
				} else {
					step();
				}
			};
			stdout.on('data', (chunk: Buffer) => {
				if (closed) {
					return;
				}
				backlog.push(chunk);
				if (!draining) {
					// Not at once: libuv hands over up to 32 chunks in one poll, each as its own 'data' event, and
					// a drain per event would give each its own slice. The check phase right after the poll handles
					// them all in one slice.
					draining = true;
					setImmediate(drain);
				}
			});
			stdout.on('end', () =>
				afterBacklog(() => {
					if (closed) {
						return;
					}
					closed = true;
					if (pending.length > 0) {
						handleLine(Buffer.concat(pending));
						pending = [];
					}
					controller.close();
				}),
			);
			stdout.on('error', (e) =>
				afterBacklog(() => {
					if (!closed) {
						closed = true;
						hooks.onFatal(e);
						controller.error(e);
					}
				}),
			);
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
				let line: string;
				try {
					line = `${JSON.stringify(message)}\n`;
				} catch (e) {
					// Too large for one string (a file read as text that is mostly escapes, say). A failed write
					// would break the stream for every later message while the agent lives on: an answer becomes an
					// error answer, anything else ends the connection (the agent is restarted on the next turn).
					const id = (message as { id?: unknown; method?: unknown }).method === undefined ? (message as { id?: unknown }).id : undefined;
					if (typeof id !== 'number' && typeof id !== 'string') {
						const error = new Error(`A message for the agent could not be encoded: ${e instanceof Error ? e.message : String(e)}`);
						hooks.onFatal(error);
						reject(error);
						return;
					}
					line = `${JSON.stringify({ jsonrpc: '2.0', id, error: { code: -32603, message: `The answer was too large to send (${e instanceof Error ? e.message : String(e)}).` } })}\n`;
				}
				const bytes = Buffer.byteLength(line) - 1;
				if (bytes > maxMessageToAgentBytes) {
					const m = message as { id?: unknown; method?: unknown };
					const limit = `(${megabytes(bytes)}; an agent takes at most ${megabytes(maxMessageToAgentBytes)} in one message)`;
					if ((typeof m.id === 'number' || typeof m.id === 'string') && m.method !== undefined) {
						// Our request (a prompt): it fails as if the agent had refused it, and the connection goes on.
						if (!closed) {
							incoming?.enqueue({ jsonrpc: '2.0', id: m.id, error: { code: -32603, message: `The message was too large to send to the agent ${limit}.` } });
						}
						resolve();
						return;
					}
					if (typeof m.id === 'number' || typeof m.id === 'string') {
						line = `${JSON.stringify({ jsonrpc: '2.0', id: m.id, error: { code: -32603, message: `The answer was too large to send ${limit}.` } })}\n`;
					} else {
						const error = new Error(`A message for the agent was too large to send ${limit}.`);
						hooks.onFatal(error);
						reject(error);
						return;
					}
				}
				stdin.write(line, (e) => (e ? reject(e) : resolve()));
			});
		},
	});
	return { readable, writable };
}
