import type { IDisposable } from '../common/lifecycle';
import type { AgentEvent } from '../protocol/agentEvents';

const maxTimeoutMs = 2 ** 31 - 1;

/**
 * Watches one turn for an agent that went silent: nothing at all for `timeoutMs` while no tool call runs, no
 * permission waits on a person and no request of the agent (a terminal command it waits for) is being
 * answered. A hung model connection or a wedged agent otherwise holds the chat (and its task slot) forever; a
 * long build or a person thinking about a permission is work, not silence. A tool call that never ends holds
 * it off for the rest of the turn: a long tool and a hung one look the same from here.
 */
export class SilenceWatchdog implements IDisposable {
	private lastActivity = Date.now();
	/** Tool calls announced and not finished: the agent is waiting on them, not on itself. */
	private readonly runningTools = new Set<string>();
	/**
	 * Requests of the agent being answered (a terminal's exit it waits for, a permission a person decides, a
	 * file): work no event shows.
	 */
	private requestsInFlight = 0;
	private timer: NodeJS.Timeout | undefined;
	private done = false;
	/** Whether it stopped the turn. */
	fired = false;

	constructor(
		readonly timeoutMs: number,
		private readonly onSilent: () => void,
	) {
		this.arm(timeoutMs);
	}

	/** Every event of the turn counts as a sign of life; tool calls hold it off until they end. */
	observe(event: AgentEvent): void {
		this.lastActivity = Date.now();
		if (event.type === 'tool_call' || event.type === 'tool_update') {
			if (event.status === 'completed' || event.status === 'failed') {
				this.runningTools.delete(event.toolCallId);
			} else if (event.type === 'tool_call' || event.status !== undefined) {
				// An update without a status says nothing about whether the call still runs.
				this.runningTools.add(event.toolCallId);
			}
		}
	}

	/** The agent asked the client for something: a sign of life, and work under way until it is answered. */
	requestStarted(): () => void {
		this.lastActivity = Date.now();
		this.requestsInFlight++;
		let answered = false;
		return () => {
			if (!answered) {
				answered = true;
				this.requestsInFlight--;
				this.lastActivity = Date.now();
			}
		};
	}

	private arm(ms: number): void {
		if (this.done) {
			return;
		}
		clearTimeout(this.timer);
		// Node fires a longer timeout at once; a huge setting is checked again at the longest one instead.
		this.timer = setTimeout(() => this.check(), Math.min(ms, maxTimeoutMs));
		// Never what keeps a process (the command line) alive: the turn it watches does that.
		this.timer.unref?.();
	}

	private check(): void {
		if (this.runningTools.size > 0 || this.requestsInFlight > 0) {
			// Silence counts from the moment the agent has nothing outstanding, not from before.
			this.lastActivity = Date.now();
			this.arm(this.timeoutMs);
			return;
		}
		const silentFor = Date.now() - this.lastActivity;
		if (silentFor < this.timeoutMs) {
			this.arm(this.timeoutMs - silentFor);
			return;
		}
		this.fired = true;
		this.dispose();
		this.onSilent();
	}

	dispose(): void {
		this.done = true;
		clearTimeout(this.timer);
	}
}
