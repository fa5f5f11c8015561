import { AgentTabsError } from '../../common/errors';
import { Emitter, logListenerErrors, type Event } from '../../common/event';
import { Disposable, type IDisposable } from '../../common/lifecycle';
import { errorMessage, type Logger } from '../../common/log';
import {
	isWebviewToHost,
	requestParamsProblem,
	protocolVersion,
	type ErrorReply,
	type HostToWebview,
	type Notifications,
	type Requests,
	type ViewKind,
	type WebviewToHost,
} from '../../protocol/messages';
import { messengerStrings, untranslated, type MessengerStrings } from './chatStrings';

/** The part of a `vscode.Webview` the messenger uses, so tests can run it over an in-memory pair. */
export interface MessageTransport {
	postMessage(message: HostToWebview): PromiseLike<boolean> | boolean | void;
	onDidReceiveMessage(listener: (message: unknown) => unknown): IDisposable;
}

type Handler<M extends keyof Requests> = (params: Requests[M][0], signal: AbortSignal) => Requests[M][1] | Promise<Requests[M][1]>;

/**
 * The host side of the protocol over one webview: typed handlers answer each request exactly once (a thrown
 * `AgentTabsError` keeps its code, anything else is `internal`), `cancel` aborts a request's signal, and
 * notifications are posted only after the app said `ready`. Nothing is buffered for a hidden webview: the
 * app resyncs by sequence number when it comes back.
 */
export class WebviewMessenger extends Disposable {
	private readonly handlers = new Map<string, (params: unknown, signal: AbortSignal) => unknown>();
	private readonly inflight = new Map<number, AbortController>();
	private isReady = false;
	/**
	 * Counts the app's loads (each `ready`). A reloaded app numbers its requests from 1 again, so a reply to
	 * the page before would answer the new page's request of the same number: replies go only to the page
	 * that asked.
	 */
	private pageLoad = 0;
	private readonly _onDidReady = this._register(new Emitter<{ view: ViewKind; protocolMatches: boolean }>((e) => logListenerErrors(this.logger, '[WebviewMessenger]')(e)));
	/** The app (re)started and is listening. `protocolMatches` false: it was built for another protocol (reload its HTML). */
	readonly onDidReady: Event<{ view: ViewKind; protocolMatches: boolean }> = this._onDidReady.event;

	constructor(
		private readonly transport: MessageTransport,
		private readonly logger: Logger,
		private readonly tag = '[Messenger]',
		private readonly say: MessengerStrings = messengerStrings(untranslated),
	) {
		super();
		this._register(transport.onDidReceiveMessage((m) => this.receive(m)));
		this._register({ dispose: () => this.abortAll() });
	}

	get ready(): boolean {
		return this.isReady;
	}

	handle<M extends keyof Requests>(method: M, fn: Handler<M>): void {
		this.handlers.set(method, fn as (params: unknown, signal: AbortSignal) => unknown);
	}

	/** Posts a notification if the app is listening; returns false when it was not delivered. */
	notify<M extends keyof Notifications>(method: M, params: Notifications[M]): boolean {
		if (!this.isReady || this.isDisposed) {
			return false;
		}
		this.post({ kind: 'notify', method, params } as HostToWebview);
		return true;
	}

	private post(message: HostToWebview): void {
		try {
			const r = this.transport.postMessage(message);
			if (r && typeof (r as PromiseLike<boolean>).then === 'function') {
				(r as PromiseLike<boolean>).then(undefined, (e: unknown) => this.logger.debug(`${this.tag} post failed: ${errorMessage(e)}`));
			}
		} catch (e) {
			// A disposed webview throws; the app resyncs when it comes back, so this is not an error.
			this.logger.debug(`${this.tag} post failed: ${errorMessage(e)}`);
		}
	}

	private receive(raw: unknown): void {
		if (!isWebviewToHost(raw)) {
			this.logger.warn(`${this.tag} ignored a malformed message from the webview`);
			return;
		}
		const message: WebviewToHost = raw;
		switch (message.kind) {
			case 'ready':
				// A reloaded app says ready again: whatever it asked before is gone with it.
				this.abortAll();
				this.inflight.clear();
				this.pageLoad++;
				this.isReady = true;
				this._onDidReady.fire({ view: message.view, protocolMatches: message.protocol === protocolVersion });
				return;
			case 'cancel':
				this.inflight.get(message.id)?.abort();
				return;
			case 'request':
				void this.answer(message.id, message.method, message.params);
				return;
		}
	}

	private async answer(id: number, method: string, params: unknown): Promise<void> {
		const page = this.pageLoad;
		const reply = (message: Extract<HostToWebview, { kind: 'response' }>): void => {
			if (page === this.pageLoad) {
				this.post(message);
			}
		};
		const handler = this.handlers.get(method);
		if (!handler) {
			reply({ kind: 'response', id, ok: false, error: { code: 'unknownMethod', message: this.say.unknownMethod(method) } });
			return;
		}
		const problem = requestParamsProblem(method, params);
		if (problem) {
			this.logger.warn(`${this.tag}[${method}] refused a request: ${problem}`);
			reply({ kind: 'response', id, ok: false, error: { code: 'badRequest', message: this.say.badRequest(problem) } });
			return;
		}
		const abort = new AbortController();
		this.inflight.set(id, abort);
		try {
			const result = await handler(params, abort.signal);
			if (abort.signal.aborted) {
				reply({ kind: 'response', id, ok: false, error: { code: 'cancelled', message: this.say.cancelled() } });
			} else {
				reply({ kind: 'response', id, ok: true, result: result ?? null });
			}
		} catch (e) {
			const error = toErrorReply(e);
			if (error.code === 'internal') {
				this.logger.error(`${this.tag}[${method}] ${error.message}`);
			}
			reply({ kind: 'response', id, ok: false, error });
		} finally {
			// The number may already belong to a request of the page loaded since.
			if (this.inflight.get(id) === abort) {
				this.inflight.delete(id);
			}
		}
	}

	private abortAll(): void {
		for (const a of this.inflight.values()) {
			a.abort();
		}
	}
}

/** Maps anything thrown to what crosses the boundary: a code and plain words, never a stack. */
export function toErrorReply(e: unknown): ErrorReply {
	if (e instanceof AgentTabsError) {
		return { code: e.code, message: e.message };
	}
	return { code: 'internal', message: errorMessage(e) };
}
