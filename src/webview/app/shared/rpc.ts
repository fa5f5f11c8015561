import type { HostToWebview, ViewKind, WebviewToHost } from '../../../protocol/messages';
import { RpcClient } from '../../../protocol/rpcClient';

export interface VsCodeApi {
	postMessage(message: WebviewToHost): void;
	getState(): unknown;
	setState(state: unknown): void;
}

declare function acquireVsCodeApi(): VsCodeApi;

/** The webview's one connection to the host: `RpcClient` over `acquireVsCodeApi` and the window's messages. */
export function connect(view: ViewKind): { rpc: RpcClient; api: VsCodeApi } {
	const api = acquireVsCodeApi();
	const rpc = new RpcClient((m) => api.postMessage(m));
	window.addEventListener('message', (e: MessageEvent<HostToWebview>) => rpc.receive(e.data));
	rpc.ready(view);
	return { rpc, api };
}
