import type { IDisposable } from '../common/lifecycle';
import type { AgentEvent } from '../protocol/agentEvents';

const maxTimeoutMs = 2 ** 31 - 1;
/**
 * A tool call running holds the watchdog off this many times the limit, no longer: a long build is work, but
 * one that leaves the agent without a word for an hour (at the default 10 minutes) is a hung tool.
 */
export const toolSilenceFactor = 6;

/**
 * Watches one turn for an agent that went silent: nothing at all for `timeoutMs` while no tool call runs, no
 * permission waits on a person and no request of the agent (a terminal command it waits for) is being
 * answered. A hung model connection or a wedged agent otherwise holds the chat (and its task slot) forever; a
 * long build or a person thinking about a permission is work, not silence. A tool call that runs holds it off
 * for `toolSilenceFactor` times the limit with nothing at all from the agent, no longer: a tool call that
 * never ends, with no word about it, is hung (the limit of a request being answered, which this process runs
 * or a person decides, is never reached).
 */
export class SilenceWatchdog implements IDisposable {
	private lastActivity = Date.now();
	/** Tool calls announced and not finished, with their titles: the agent is waiting on them, not on itself. */
	private readonly runningTools = new Map<string, string>();
	/**
	 * Requests of the agent being answered (a terminal's exit it waits for, a permission a person decides, a
	 * file): work no event shows.
	 */
	private requestsInFlight = 0;
	private timer: NodeJS.Timeout | undefined;
	private done = false;
	/** Whether it stopped the turn. */
	fired = false;
	/** It stopped the turn while this tool call (its title) was running, silent for `toolTimeoutMs`. */
	stalledTool: string | undefined;
	/** How long a running tool call holds it off with nothing from the agent. */
	readonly toolTimeoutMs: number;

	constructor(
		readonly timeoutMs: number,
		private readonly onSilent: () => void,
	) {
		this.toolTimeoutMs = timeoutMs * toolSilenceFactor;
		this.arm(timeoutMs);
	}

	/** Every event of the turn counts as a sign of life; tool calls hold it off until they end. */
	observe(event: AgentEvent): void {
		this.lastActivity = Date.now();
		if (event.type === 'tool_call' || event.type === 'tool_update') {
			if (event.status === 'completed' || event.status === 'failed') {
				this.runningTools.delete(event.toolCallId);
			} else if (event.type === 'tool_call' || event.status !== undefined || (event.title !== undefined && this.runningTools.has(event.toolCallId))) {
				// An update without a status says nothing about whether the call still runs.
				this.runningTools.set(event.toolCallId, event.title ?? this.runningTools.get(event.toolCallId) ?? event.toolCallId);
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
		if (this.requestsInFlight > 0) {
			// Silence counts from the moment the agent has nothing outstanding, not from before.
			this.lastActivity = Date.now();
			this.arm(this.timeoutMs);
			return;
		}
		const silentFor = Date.now() - this.lastActivity;
		if (this.runningTools.size > 0) {
			if (silentFor < this.toolTimeoutMs) {
				this.arm(Math.min(this.timeoutMs, this.toolTimeoutMs - silentFor));
				return;
			}
			this.stalledTool = [...this.runningTools.values()].at(-1);
		} else if (silentFor < this.timeoutMs) {
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
