import type { ChatRow, ChatSnapshot, RowUpdate } from './messages';

/**
 * What applying a row update did; `gap` and `epoch` mean the view missed something and must resync. It says
 * no index: a later update of the same catch-up can insert rows before this one, so a view places the row
 * where the model has it when it shows it (`indexOf`). `later`: the row is in a long chat's earlier rows not
 * taken in yet (`earlierBefore`), and comes with them as it is then.
 */
export type ApplyOutcome = { kind: 'appended' | 'changed'; row: ChatRow } | { kind: 'stale' } | { kind: 'later' } | { kind: 'gap' } | { kind: 'epoch' };

/**
 * A chat's rows as a view holds them, kept in step with the host by sequence number. Pure data, shared by
 * the webview (which renders each outcome) and the tests. An update whose `prevSeq` the view has reached
 * applies; one at or below seq was already seen (stale); one whose `prevSeq` is ahead, or from another
 * epoch, means messages were dropped and the view must ask the host (the database) again.
 */
export class ChatRowModel {
	private rowsInOrder: ChatRow[] = [];
	private readonly indexById = new Map<string, number>();
	epoch = '';
	seq = 0;
	/**
	 * The rows placed before this turn are not taken in yet (`ChatSnapshot.earlierBefore`): an update of one
	 * is not shown on its own, above everything, but with its slice, read after that update was sent.
	 */
	earlierBefore: number | undefined;

	get rows(): readonly ChatRow[] {
		return this.rowsInOrder;
	}

	get(id: string): ChatRow | undefined {
		const i = this.indexById.get(id);
		return i === undefined ? undefined : this.rowsInOrder[i];
	}

	/** Where the row is in `rows` now; undefined for a row the model does not hold. */
	indexOf(id: string): number | undefined {
		return this.indexById.get(id);
	}

	reset(snapshot: ChatSnapshot): void {
		this.rowsInOrder = [...snapshot.rows];
		this.indexById.clear();
		this.rowsInOrder.forEach((row, i) => this.indexById.set(row.id, i));
		this.epoch = snapshot.epoch;
		this.seq = snapshot.seq;
		this.earlierBefore = snapshot.earlierBefore;
	}

	apply(update: RowUpdate): ApplyOutcome {
		if (update.epoch !== this.epoch) {
			return { kind: 'epoch' };
		}
		if (update.seq <= this.seq) {
			return { kind: 'stale' };
		}
		if ((update.prevSeq ?? update.seq - 1) > this.seq) {
			return { kind: 'gap' };
		}
		if (this.comesLater(update.row)) {
			this.seq = update.seq;
			return { kind: 'later' };
		}
		const whole = this.wholeRow(update);
		if (!whole) {
			return { kind: 'gap' };
		}
		this.seq = update.seq;
		return this.put(whole);
	}

	/**
	 * The update with its row whole: a streamed row's new text (`textFrom`) after the text the model holds;
	 * undefined when the model's row is not the text it extends (something was missed).
	 */
	private wholeRow(update: RowUpdate): RowUpdate | undefined {
		if (update.textFrom === undefined) {
			return update;
		}
		const held = this.get(update.row.id);
		const row = update.row;
		if (!held || held.kind !== row.kind || (row.kind !== 'text' && row.kind !== 'reasoning') || (held.kind !== 'text' && held.kind !== 'reasoning') || held.text.length !== update.textFrom) {
			return undefined;
		}
		const whole: RowUpdate = { ...update, row: { ...row, text: held.text + row.text } };
		delete whole.textFrom;
		return whole;
	}

	/**
	 * Applies the host's answer to a resync from `seq`: the newest update of each row that changed since, so
	 * numbers skip. The host sends them by each row's newest number (a turn's header numbered again after its
	 * messages comes after them), `collapseUpdates` by where each row first appeared; either way each new row
	 * goes where its `order` says, so a later update may land before an earlier one. Outcomes of applied
	 * updates only, in the order applied: all are applied before the view shows any.
	 */
	catchUp(updates: readonly RowUpdate[], upTo?: number): ApplyOutcome[] {
		const outcomes: ApplyOutcome[] = [];
		const from = this.seq;
		for (const u of updates) {
			if (u.epoch !== this.epoch) {
				return [...outcomes, { kind: 'epoch' }];
			}
			if (u.seq > from && this.comesLater(u.row)) {
				this.seq = Math.max(this.seq, u.seq);
			} else if (u.seq > from) {
				const whole = this.wholeRow(u);
				if (!whole) {
					return [...outcomes, { kind: 'epoch' }];
				}
				outcomes.push(this.put(whole));
				this.seq = Math.max(this.seq, u.seq);
			}
		}
		// The host read everything up to `upTo`: numbers it had nothing to send for are seen too.
		this.seq = Math.max(this.seq, upTo ?? 0);
		return outcomes;
	}

	/**
	 * Takes in rows a long chat's snapshot left out (`chat/earlierRows`), in order. They were read after every
	 * update the view has had, so a row held already (an update brought it first) takes the version read; the
	 * others go where their `order` puts them. Returns the rows added and the rows replaced.
	 */
	addEarlier(rows: readonly ChatRow[], earlierBefore: number | undefined): { added: ChatRow[]; changed: ChatRow[] } {
		this.earlierBefore = earlierBefore;
		const added: ChatRow[] = [];
		const changed: ChatRow[] = [];
		for (const row of rows) {
			const existing = this.indexById.get(row.id);
			if (existing !== undefined) {
				this.rowsInOrder[existing] = row;
				changed.push(row);
			} else {
				added.push(row);
			}
		}
		if (added.length) {
			// Both lists are in order: merge them (a row without a place stays after every placed one).
			const merged: ChatRow[] = [];
			const held = this.rowsInOrder;
			let i = 0;
			for (const row of added) {
				while (i < held.length && placedBefore(held[i]!, row)) {
					merged.push(held[i++]!);
				}
				merged.push(row);
			}
			this.rowsInOrder = merged.concat(held.slice(i));
			this.indexById.clear();
			this.rowsInOrder.forEach((row, index) => this.indexById.set(row.id, index));
		}
		return { added, changed };
	}

	/** Whether the row is one of the earlier rows not taken in yet (then it comes with them). */
	private comesLater(row: ChatRow): boolean {
		return this.earlierBefore !== undefined && row.order !== undefined && row.order[0] < this.earlierBefore && !this.indexById.has(row.id);
	}

	private put(update: RowUpdate): ApplyOutcome & { kind: 'appended' | 'changed' } {
		const existing = this.indexById.get(update.row.id);
		// An append of a row we already hold (or a change of one we never saw) is folded into what it means.
		if (existing !== undefined) {
			this.rowsInOrder[existing] = update.row;
			return { kind: 'changed', row: update.row };
		}
		const index = insertionIndex(this.rowsInOrder, update.row.order);
		this.rowsInOrder.splice(index, 0, update.row);
		for (let i = index; i < this.rowsInOrder.length; i++) {
			this.indexById.set(this.rowsInOrder[i]!.id, i);
		}
		return { kind: 'appended', row: update.row };
	}
}

const compareOrder = (a: readonly [number, number], b: readonly [number, number]): number => a[0] - b[0] || a[1] - b[1];

/** Whether `held` goes before `row` (rows without a place go last). */
const placedBefore = (held: ChatRow, row: ChatRow): boolean => (held.order ? !row.order || compareOrder(held.order, row.order) <= 0 : false);

/** Where a new row goes: after every row placed at or before its `order` (at the end without one). */
function insertionIndex(rows: readonly ChatRow[], order: [number, number] | undefined): number {
	if (!order) {
		return rows.length;
	}
	let i = rows.length;
	while (i > 0) {
		const before = rows[i - 1]!.order;
		if (!before || compareOrder(before, order) <= 0) {
			break;
		}
		i--;
	}
	return i;
}

/**
 * What a resync from `sinceSeq` must send: one update per row that changed since, carrying its newest
 * content and number, placed where the row first appeared (a row appended and then changed is still an
 * append at its first place, or a turn would move below its own messages).
 */
export function collapseUpdates(updates: readonly RowUpdate[], sinceSeq: number): RowUpdate[] {
	const byRow = new Map<string, RowUpdate>();
	for (const u of updates) {
		if (u.seq <= sinceSeq) {
			continue;
		}
		const first = byRow.get(u.row.id);
		// Map keeps the first insertion's position; the value becomes the newest row.
		byRow.set(u.row.id, first ? { ...u, op: first.op === 'append' ? 'append' : u.op } : u);
	}
	return [...byRow.values()];
}
