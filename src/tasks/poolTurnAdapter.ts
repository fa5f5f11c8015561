import type { AgentPool } from '../agents/pool';
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
 * replaces it. The turn id is learnt from the pool's first event of the turn; the summary from its text.
 */
export class PoolTurnAdapter implements TaskTurnRunner {
	constructor(private readonly pool: AgentPool) {}

	async runTurn(chatId: string, agent: string, input: PromptInput, options: { signal: AbortSignal; onTurnStarted?: (turnId: string) => void }): Promise<TaskTurnResult> {
		if (options.signal.aborted) {
			return { status: 'cancelled' };
		}
		let turnId: string | undefined;
		let text = '';
		const events = this.pool.onDidEvent((e) => {
			if (e.chatId !== chatId || e.agent !== agent || !e.turnId) {
				return;
			}
			if (turnId === undefined) {
				turnId = e.turnId;
				options.onTurnStarted?.(turnId);
			}
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
		}
	}
}
