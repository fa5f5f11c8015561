import { protocolVersion, type ErrorReply, type HostToWebview, type Notifications, type Requests, type ViewKind, type WebviewToHost } from './messages';

/** An error the host replied with: `code` says what kind, `message` is plain words for the user. */
export class RpcError extends Error {
	constructor(
		readonly code: string,
		message: string,
	) {
		super(message);
		this.name = 'RpcError';
	}
}

/**
 * The webview side of the protocol, independent of the DOM so plain Node tests can drive it: typed requests
 * with replies (a host error becomes an `RpcError`), typed notification handlers, and the ready handshake.
 * `webview/app/shared/rpc.ts` wires it to `acquireVsCodeApi` and `window`.
 */
export class RpcClient {
	private nextId = 1;
	private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
	private readonly handlers = new Map<string, (params: unknown) => void>();

	constructor(private readonly post: (message: WebviewToHost) => void) {}

	/** Tells the host the app is listening; the host posts nothing before this. */
	ready(view: ViewKind): void {
		this.post({ kind: 'ready', protocol: protocolVersion, view });
	}

	request<M extends keyof Requests>(method: M, params: Requests[M][0]): Promise<Requests[M][1]> {
		const id = this.nextId++;
		return new Promise((resolve, reject) => {
			this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
			this.post({ kind: 'request', id, method, params } as WebviewToHost);
		});
	}

	on<M extends keyof Notifications>(method: M, fn: (params: Notifications[M]) => void): void {
		this.handlers.set(method, fn as (params: unknown) => void);
	}

	receive(msg: HostToWebview): void {
		if (msg.kind === 'response') {
			const p = this.pending.get(msg.id);
			this.pending.delete(msg.id);
			if (p && msg.ok) {
				p.resolve(msg.result);
			} else if (p && !msg.ok) {
				p.reject(toRpcError(msg.error));
			}
			return;
		}
		this.handlers.get(msg.method)?.(msg.params);
	}
}

function toRpcError(error: ErrorReply): RpcError {
	return new RpcError(error.code, error.message);
}
