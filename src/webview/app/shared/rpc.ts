import { protocolVersion, type HostToWebview, type Notifications, type Requests, type ViewKind, type WebviewToHost } from '../../../protocol/messages';

interface VsCodeApi {
	postMessage(message: WebviewToHost): void;
	getState(): unknown;
	setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** The webview side of the protocol: typed requests with replies, typed notification handlers, ready handshake. */
export class Rpc {
	readonly api: VsCodeApi = acquireVsCodeApi();
	private nextId = 1;
	private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
	private readonly handlers = new Map<string, (params: unknown) => void>();

	constructor(view: ViewKind) {
		window.addEventListener('message', (e: MessageEvent<HostToWebview>) => this.receive(e.data));
		this.api.postMessage({ kind: 'ready', protocol: protocolVersion, view });
	}

	request<M extends keyof Requests>(method: M, params: Requests[M][0]): Promise<Requests[M][1]> {
		const id = this.nextId++;
		return new Promise((resolve, reject) => {
			this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
			this.api.postMessage({ kind: 'request', id, method, params } as WebviewToHost);
		});
	}

	on<M extends keyof Notifications>(method: M, fn: (params: Notifications[M]) => void): void {
		this.handlers.set(method, fn as (params: unknown) => void);
	}

	private receive(msg: HostToWebview): void {
		if (msg.kind === 'response') {
			const p = this.pending.get(msg.id);
			this.pending.delete(msg.id);
			if (p && msg.ok) {
				p.resolve(msg.result);
			} else if (p && !msg.ok) {
				p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
			}
			return;
		}
		this.handlers.get(msg.method)?.(msg.params);
	}
}
