import { Emitter, type Event } from '../common/event';
import type { IDisposable } from '../common/lifecycle';
import type { Store } from '../db/store';
import type { AgentEvent } from '../protocol/agentEvents';
import type { PromptInput, TurnStatus } from '../protocol/turns';
import type { TaskTurnResult, TaskTurnRunner } from './dispatcher';

const summaryChars = 280;

/** The end of an answer, on one line: the part that usually says what was done. */
export function summarize(text: string): string | undefined {
	const flat = text.replace(/\s+/g, ' ').trim();
	if (!flat) {
		return undefined;
	}
	return flat.length > summaryChars ? `…${flat.slice(-(summaryChars - 1))}` : flat;
}

/** How a turn ended, as much as the adapter needs of the turn layer's `TurnOutcome`. */
export interface TurnSourceOutcome {
	turn: { id: string };
	status: TurnStatus;
	result: { error?: string };
}

/** What runs turns, as the adapter needs it: the turn layer's `TurnRunner`. */
export interface TurnSource<O extends TurnSourceOutcome = TurnSourceOutcome> {
	readonly onDidEvent: Event<{ chatId: string; agent: string; turnId?: string; event: AgentEvent }>;
	runTurn(chatId: string, agent: string, input: PromptInput, options: { signal: AbortSignal }): Promise<O>;
}

/**
 * The dispatcher's turn runner over a TurnSource. The source does not say when a turn starts, so the turn id
 * is learnt from the store (the first `turns` write after the prompt that leaves a running turn of this chat
 * and agent) or from the first event of the turn, whichever comes first; the summary from its streamed text.
 */
export class TaskTurnAdapter<O extends TurnSourceOutcome = TurnSourceOutcome> implements TaskTurnRunner, IDisposable {
	private readonly _onDidRunTurn = new Emitter<{ chatId: string; agent: string; outcome: O }>(() => undefined);
	/** The whole outcome of each turn run for a task, before the task's end is recorded (`agent-tabs run` prints it). */
	readonly onDidRunTurn: Event<{ chatId: string; agent: string; outcome: O }> = this._onDidRunTurn.event;

	constructor(
		private readonly turns: TurnSource<O>,
		private readonly store: Store,
	) {}

	dispose(): void {
		this._onDidRunTurn.dispose();
	}

	async runTurn(chatId: string, agent: string, input: PromptInput, options: { signal: AbortSignal; onTurnStarted?: (turnId: string) => void }): Promise<TaskTurnResult> {
		if (options.signal.aborted) {
			return { status: 'cancelled' };
		}
		let turnId: string | undefined;
		let text = '';
		const learnt = (id: string): void => {
			if (turnId === undefined) {
				turnId = id;
				options.onTurnStarted?.(id);
			}
		};
		const writes = this.store.onDidWrite(({ tables }) => {
			if (turnId === undefined && tables.has('turns')) {
				const row = this.store.get<{ id: string }>(`SELECT id FROM turns WHERE chat_id = ? AND agent = ? AND status = 'running' ORDER BY seq DESC LIMIT 1`, [chatId, agent]);
				if (row) {
					learnt(row.id);
				}
			}
		});
		const events = this.turns.onDidEvent((e) => {
			if (e.chatId !== chatId || e.agent !== agent || !e.turnId) {
				return;
			}
			learnt(e.turnId);
			if (e.turnId === turnId && e.event.type === 'text') {
				text = (text + e.event.text).slice(-4 * summaryChars);
			}
		});
		try {
			const outcome = await this.turns.runTurn(chatId, agent, input, { signal: options.signal });
			this._onDidRunTurn.fire({ chatId, agent, outcome });
			return { status: outcome.status, turnId: outcome.turn.id, summary: summarize(text), error: outcome.result.error };
		} finally {
			events.dispose();
			writes.dispose();
		}
	}
}
