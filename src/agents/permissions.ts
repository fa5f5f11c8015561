import { Emitter, logListenerErrors, type Event } from '../common/event';
import { newId } from '../common/ids';
import { Disposable } from '../common/lifecycle';
import type { Logger } from '../common/log';
import type { PermissionOption, ToolKind } from '../protocol/agentEvents';

export interface PermissionRequest {
	id: string;
	chatId: string;
	agent: string;
	title: string;
	toolCallId?: string;
	kind?: ToolKind;
	options: PermissionOption[];
}

export type PermissionOutcome = { outcome: 'selected'; optionId: string; decidedBy: 'user' | 'policy' | 'timeout' } | { outcome: 'cancelled'; decidedBy: 'timeout' | 'cancel' };

/**
 * A no for `request`: the agent's reject-once option, or `cancelled` when it offers none. ACP reserves
 * `cancelled` for a cancelled turn (an agent may stop its whole turn on it), so a no that is not a cancel is
 * a reject; never "always reject", a standing rule nobody chose.
 */
function rejection(request: Pick<PermissionRequest, 'options'>, decidedBy: 'user' | 'policy' | 'timeout'): PermissionOutcome {
	const reject = request.options.find((o) => o.kind === 'reject_once');
	return reject ? { outcome: 'selected', optionId: reject.optionId, decidedBy } : { outcome: 'cancelled', decidedBy: decidedBy === 'timeout' ? 'timeout' : 'cancel' };
}

/** What to do without asking. `ask` leaves it to a person (the UI); nobody answering in time means reject. */
export type PermissionPolicy = 'ask' | 'allow' | 'reject';

export interface PermissionPolicySettings {
	/** Per tool kind; kinds not listed use `default`. */
	byKind?: Partial<Record<ToolKind, PermissionPolicy>>;
	default: PermissionPolicy;
	/** How long a request waits for a person before it is rejected. */
	timeoutMs: number;
}

/** Requests of one chat shown at once; later ones wait their turn (an agent flooding requests fills no screen). */
export const maxShownPerChat = 4;
/** Requests of one chat that may wait; past that an agent is flooding, and further requests are refused. */
export const maxWaitingPerChat = 64;

/**
 * Routes agents' permission requests: a policy answers at once where it can; otherwise the request waits for
 * a decision from the UI (`decide`) and is rejected when nobody decides in time or the turn is cancelled.
 */
export class PermissionBroker extends Disposable {
	private readonly _onDidRequest = this._register(new Emitter<PermissionRequest>((e) => logListenerErrors(this.logger, '[Permissions][onDidRequest]')(e)));
	/** A request that needs a person. The UI renders it and calls `decide`. */
	readonly onDidRequest: Event<PermissionRequest> = this._onDidRequest.event;
	private readonly _onDidSettle = this._register(new Emitter<{ id: string; outcome: PermissionOutcome }>((e) => logListenerErrors(this.logger, '[Permissions][onDidSettle]')(e)));
	readonly onDidSettle: Event<{ id: string; outcome: PermissionOutcome }> = this._onDidSettle.event;
	private readonly open = new Map<string, { request: PermissionRequest; resolve: (o: PermissionOutcome) => void; timer: NodeJS.Timeout }>();
	/** Requests waiting for one of their chat's `maxShownPerChat` places, oldest first, per chat. */
	private readonly waiting = new Map<string, { request: PermissionRequest; show: () => void; cancel: () => void }[]>();

	constructor(
		private settings: PermissionPolicySettings,
		private readonly logger: Logger,
	) {
		super();
		this._register({ dispose: () => this.cancelAll() });
	}

	updateSettings(settings: PermissionPolicySettings): void {
		this.settings = settings;
	}

	get pending(): PermissionRequest[] {
		return [...this.open.values()].map((o) => o.request);
	}

	/** The policy for a tool kind (the default for kinds not listed). */
	policyFor(kind: ToolKind | undefined): PermissionPolicy {
		return (kind && this.settings.byKind?.[kind]) ?? this.settings.default;
	}

	request(input: Omit<PermissionRequest, 'id'>, signal?: AbortSignal): Promise<PermissionOutcome> {
		const request: PermissionRequest = { ...input, id: newId('perm') };
		// ACP: once the turn is cancelled every request is answered cancelled, whatever a policy would allow.
		if (signal?.aborted) {
			return Promise.resolve({ outcome: 'cancelled', decidedBy: 'cancel' });
		}
		if (input.options.length === 0) {
			// Nothing a person (or a policy) could pick: a card without buttons would hold the turn until the timeout.
			this.logger.warn(`[Permissions][${input.chatId}] the agent asked permission for "${input.title.slice(0, 200)}" offering no option; answered cancelled`);
			const outcome: PermissionOutcome = { outcome: 'cancelled', decidedBy: 'cancel' };
			this._onDidSettle.fire({ id: request.id, outcome });
			return Promise.resolve(outcome);
		}
		const policy = this.policyFor(input.kind);
		if (policy !== 'ask') {
			const wanted = policy === 'allow' ? ['allow_once', 'allow_always'] : ['reject_once', 'reject_always'];
			const option = input.options.find((o) => o.kind === wanted[0]) ?? input.options.find((o) => o.kind === wanted[1]);
			if (option) {
				const outcome: PermissionOutcome = { outcome: 'selected', optionId: option.optionId, decidedBy: 'policy' };
				this._onDidSettle.fire({ id: request.id, outcome });
				return Promise.resolve(outcome);
			}
			if (policy === 'reject') {
				return Promise.resolve({ outcome: 'cancelled', decidedBy: 'cancel' });
			}
		}
		return new Promise((resolve) => {
			if (signal?.aborted) {
				resolve({ outcome: 'cancelled', decidedBy: 'cancel' });
				return;
			}
			const settle = (outcome: PermissionOutcome): void => {
				const entry = this.open.get(request.id);
				if (!entry) {
					return;
				}
				clearTimeout(entry.timer);
				this.open.delete(request.id);
				signal?.removeEventListener('abort', onAbort);
				this._onDidSettle.fire({ id: request.id, outcome });
				resolve(outcome);
				this.showNext(request.chatId);
			};
			const show = (): void => {
				// The time to answer starts when the request is shown.
				const timer = setTimeout(() => settle(rejection(request, 'timeout')), this.settings.timeoutMs);
				timer.unref?.();
				this.open.set(request.id, { request, resolve: settle, timer });
				this._onDidRequest.fire(request);
			};
			const onAbort = (): void => {
				const queue = this.waiting.get(request.chatId);
				const at = queue?.findIndex((w) => w.request.id === request.id) ?? -1;
				if (at >= 0) {
					queue!.splice(at, 1);
					resolve({ outcome: 'cancelled', decidedBy: 'cancel' });
					return;
				}
				settle({ outcome: 'cancelled', decidedBy: 'cancel' });
			};
			const queued = this.waiting.get(request.chatId)?.length ?? 0;
			if (queued >= maxWaitingPerChat) {
				this.logger.warn(`[Permissions] ${request.agent} in chat ${request.chatId} asked for more than ${maxShownPerChat + maxWaitingPerChat} permissions at once; refused: ${request.title}`);
				const outcome = rejection(request, 'policy');
				this._onDidSettle.fire({ id: request.id, outcome });
				resolve(outcome);
				return;
			}
			signal?.addEventListener('abort', onAbort, { once: true });
			if (this.shownFor(request.chatId) < maxShownPerChat) {
				show();
			} else {
				const queue = this.waiting.get(request.chatId) ?? [];
				queue.push({ request, show, cancel: onAbort });
				this.waiting.set(request.chatId, queue);
			}
		});
	}

	private shownFor(chatId: string): number {
		let n = 0;
		for (const entry of this.open.values()) {
			n += entry.request.chatId === chatId ? 1 : 0;
		}
		return n;
	}

	/** A place came free in a chat: its oldest waiting request is shown. */
	private showNext(chatId: string): void {
		const queue = this.waiting.get(chatId);
		const next = queue?.shift();
		if (queue && queue.length === 0) {
			this.waiting.delete(chatId);
		}
		next?.show();
	}

	/** A person's answer. Returns false when the request is no longer open (answered, timed out, cancelled). */
	decide(id: string, optionId: string): boolean {
		const entry = this.open.get(id);
		if (!entry || !entry.request.options.some((o) => o.optionId === optionId)) {
			return false;
		}
		entry.resolve({ outcome: 'selected', optionId, decidedBy: 'user' });
		return true;
	}

	/**
	 * The person dismissed the request without choosing: that is a no. Picks the agent's reject option (or
	 * cancels when it offers none). Returns false when the request is no longer open.
	 */
	dismiss(id: string): boolean {
		const entry = this.open.get(id);
		if (!entry) {
			return false;
		}
		entry.resolve(rejection(entry.request, 'user'));
		return true;
	}

	private cancelAll(): void {
		for (const queue of [...this.waiting.values()]) {
			for (const waiting of [...queue]) {
				waiting.cancel();
			}
		}
		this.waiting.clear();
		for (const entry of [...this.open.values()]) {
			entry.resolve({ outcome: 'cancelled', decidedBy: 'cancel' });
		}
	}
}
