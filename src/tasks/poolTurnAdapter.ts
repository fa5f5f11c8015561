import type { AgentPool } from '../agents/pool';
import type { Store } from '../db/store';
import type { PromptInput } from '../protocol/turns';
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

/**
 * The dispatcher's turn runner over today's `AgentPool.prompt`/`cancel`, until the turn layer (TurnRunner)
 * replaces it. The pool does not say when a turn starts, so the turn id is learnt from the store: the first
 * `turns` write after the prompt that leaves a running turn of this chat and agent. The summary comes from the
 * turn's streamed text.
 */
export class PoolTurnAdapter implements TaskTurnRunner {
	constructor(
		private readonly pool: AgentPool,
		private readonly store: Store,
	) {}

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
		const events = this.pool.onDidEvent((e) => {
			if (e.chatId !== chatId || e.agent !== agent || !e.turnId) {
				return;
			}
			learnt(e.turnId);
			if (e.turnId === turnId && e.event.type === 'text') {
				text = (text + e.event.text).slice(-4 * summaryChars);
			}
		});
		// `prompt` registers its cancel ticket before its first await, so an abort from now on reaches the turn.
		const turn = this.pool.prompt(chatId, agent, input);
		const onAbort = (): void => {
			void this.pool.cancel(chatId, agent).catch(() => undefined);
		};
		options.signal.addEventListener('abort', onAbort, { once: true });
		try {
			const outcome = await turn;
			return { status: outcome.status, turnId: outcome.turn.id, summary: summarize(text), error: outcome.result.error };
		} finally {
			options.signal.removeEventListener('abort', onAbort);
			events.dispose();
			writes.dispose();
		}
	}
}
