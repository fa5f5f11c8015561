import { revealHidden } from '../../../common/visibleText';
import type { ChatRow, ChatStrings, PermissionOption, PromptAttachment, RewindPreview, ToolStatus, TurnStatus } from '../../../protocol/messages';
import { append, format, h } from './dom';

type Row<K extends ChatRow['kind']> = Extract<ChatRow, { kind: K }>;

/** What rows need from the app: strings, the agent's name, and the actions their buttons take. */
export interface RowContext {
	strings: ChatStrings;
	agentLabel(): string;
	/** Whether the turn is still running (a permission card of a finished turn can no longer be answered). */
	turnRunning(turnId: string | null): boolean;
	/** Whether the request waits for earlier ones to be settled before it can be answered (`ChatMeta.unshownPermissions`). */
	permissionNotYet(requestId: string): boolean;
	/** `accepted: false`: settled already; `waiting`: not answerable yet (the app shows the card waiting). */
	answerPermission(row: Row<'permission'>, option: PermissionOption): Promise<{ accepted: boolean; waiting?: boolean }>;
	retry(row: Row<'error'>): Promise<void>;
	rewindPreview(turnId: string): Promise<RewindPreview>;
	rewind(turnId: string): Promise<string>;
}

const turnStatusKey: Record<TurnStatus, keyof ChatStrings> = {
	running: 'turnRunning',
	done: 'turnDone',
	cancelled: 'turnCancelled',
	error: 'turnError',
	interrupted: 'turnInterrupted',
};
const stopReasonKey: ReadonlyMap<string, keyof ChatStrings> = new Map<string, keyof ChatStrings>([
	['max_tokens', 'stopMaxTokens'],
	['max_turn_requests', 'stopMaxTurnRequests'],
	['refusal', 'stopRefusal'],
]);
const compactionKey: ReadonlyMap<string, keyof ChatStrings> = new Map<string, keyof ChatStrings>([
	['in_progress', 'compactionRunning'],
	['completed', 'compactionDone'],
	['failed', 'compactionFailed'],
	['cancelled', 'compactionCancelled'],
]);
const toolStatusKey: Record<ToolStatus, keyof ChatStrings> = { pending: 'toolPending', in_progress: 'toolRunning', completed: 'toolDone', failed: 'toolFailed' };
const toolStatusGlyph: Record<ToolStatus, string> = { pending: '○', in_progress: '◐', completed: '✓', failed: '✗' };
const planGlyph = { pending: '○', in_progress: '◐', completed: '✓' } as const;
const planKey = { pending: 'planPending', in_progress: 'planInProgress', completed: 'planDone' } as const;

export function attachmentLabel(a: PromptAttachment, s: ChatStrings): string {
	return a.kind === 'file' ? a.path : format(s.selectionOf, a.path, a.startLine === a.endLine ? String(a.startLine) : `${a.startLine}–${a.endLine}`);
}

/** Builds the element of one row. Every text an agent wrote goes in as a text node. */
export function renderRow(row: ChatRow, ctx: RowContext): HTMLElement {
	const el = build(row, ctx);
	el.dataset.rowId = row.id;
	el.dataset.kind = row.kind;
	return el;
}

/**
 * Updates a row in place where that keeps screen readers and focus calm (streamed text); false: replace it.
 * Text that grows (a streamed reply) gets only its new part, as a text node after what is shown: the text
 * already there is not replaced, so a selection in it stays and a screen reader is not read it again. Text
 * that changed otherwise (a resync's exact copy from the database) replaces what is shown.
 */
export function updateRowInPlace(el: HTMLElement, row: ChatRow): boolean {
	if ((row.kind === 'text' || row.kind === 'reasoning' || row.kind === 'user') && el.dataset.kind === row.kind) {
		const body = el.querySelector('.body');
		if (body) {
			const shown = body.textContent ?? '';
			if (!row.text.startsWith(shown)) {
				body.textContent = row.text;
			} else if (row.text.length > shown.length) {
				body.append(document.createTextNode(row.text.slice(shown.length)));
				// A long reply is many appends: merged now and then (merging keeps a selection, as ranges follow it).
				if (body.childNodes.length > 64) {
					body.normalize();
				}
			}
			return true;
		}
	}
	return false;
}

function build(row: ChatRow, ctx: RowContext): HTMLElement {
	const s = ctx.strings;
	switch (row.kind) {
		case 'turn':
			return turnHeader(row, ctx);
		case 'user':
			return h(
				'article',
				{ class: 'message user', attrs: { 'aria-label': s.you } },
				h('div', { class: 'author', attrs: { 'aria-hidden': 'true' } }, s.you),
				h('div', { class: 'body' }, row.text),
				row.attachments?.length ? h('ul', { class: 'attachments', attrs: { 'aria-label': s.attachments } }, ...row.attachments.map((a) => h('li', {}, attachmentLabel(a, s)))) : undefined,
			);
		case 'text':
			return h(
				'article',
				{ class: 'message agent', attrs: { 'aria-label': ctx.agentLabel() } },
				h('div', { class: 'author', attrs: { 'aria-hidden': 'true' } }, ctx.agentLabel()),
				h('div', { class: 'body' }, row.text),
			);
		case 'reasoning': {
			const label = format(s.thinking, ctx.agentLabel());
			return h('article', { class: 'message reasoning', attrs: { 'aria-label': label } }, h('details', {}, h('summary', {}, label), h('div', { class: 'body' }, row.text)));
		}
		case 'tool_call':
			return toolCall(row, s);
		case 'plan':
			return h(
				'div',
				{ class: 'plan', attrs: { role: 'group', 'aria-label': s.plan } },
				h('div', { class: 'label' }, s.plan),
				h(
					'ol',
					{},
					...row.entries.map((e) =>
						h(
							'li',
							{ class: `plan-${e.status}` },
							h('span', { class: 'glyph', attrs: { 'aria-hidden': 'true' } }, planGlyph[e.status] ?? '○'),
							h('span', { class: 'sr-only' }, `${s[planKey[e.status] ?? 'planPending']}: `),
							e.content,
						),
					),
				),
			);
		case 'permission':
			return permissionCard(row, ctx);
		case 'file_edit': {
			const key = row.editKind === 'add' ? 'fileAdded' : row.editKind === 'delete' ? 'fileDeleted' : 'fileModified';
			return h('div', { class: 'file-edit' }, h('span', { class: 'glyph', attrs: { 'aria-hidden': 'true' } }, row.editKind === 'add' ? '+' : row.editKind === 'delete' ? '−' : '~'), format(s[key], revealHidden(row.path)));
		}
		case 'usage':
			return h('div', { class: 'usage' }, format(s.usage, row.inputTokens ?? row.usedTokens ?? '?', row.outputTokens ?? '?'));
		case 'notice': {
			// A turn that stopped early, or a compaction, is said in the tab's own (translated) words; the stored title is English.
			const key = row.stopReason !== undefined ? stopReasonKey.get(row.stopReason) : row.compaction !== undefined ? compactionKey.get(row.compaction) : undefined;
			const title = key ? s[key] : row.title;
			return h('div', { class: `notice notice-${row.severity}`, attrs: { role: 'note' } }, h('span', { class: 'title' }, title), row.description ? h('div', { class: 'description' }, row.description) : undefined);
		}
		case 'error':
			return errorRow(row, ctx);
		case 'raw':
			return h('div', { class: 'raw' }, format(s.rawEvent, row.method));
	}
}

function turnHeader(row: Row<'turn'>, ctx: RowContext): HTMLElement {
	const s = ctx.strings;
	const el = h(
		'div',
		{ class: `turn turn-${row.status}` },
		// A turn's error is not repeated here: the recorder writes it as the turn's error row, with its Retry.
		h('span', { class: 'turn-label' }, `${format(s.turn, row.number)} · ${s[turnStatusKey[row.status]]}`),
	);
	if (row.canRewind && row.status !== 'running') {
		const button = h('button', { class: 'link rewind', attrs: { type: 'button', 'data-focus': 'rewind' } }, s.rewind);
		button.addEventListener('click', () => void openRewind(el, row, ctx, button));
		el.append(button);
	}
	return el;
}

/** The rewind preview: what would change, then a confirm. Nothing changes until the user confirms. */
async function openRewind(container: HTMLElement, row: Row<'turn'>, ctx: RowContext, opener: HTMLButtonElement): Promise<void> {
	const s = ctx.strings;
	container.querySelector('.rewind-confirm')?.remove();
	const box = h('div', { class: 'rewind-confirm', attrs: { role: 'group', 'aria-label': s.rewind } }, h('div', { attrs: { role: 'status' } }, s.loading));
	container.append(box);
	const close = (): void => {
		box.remove();
		opener.focus();
	};
	let preview: RewindPreview;
	try {
		preview = await ctx.rewindPreview(row.id);
	} catch (e) {
		box.replaceChildren(h('div', { class: 'error-text', attrs: { role: 'alert' } }, format(s.failed, (e as Error).message)), h('button', { attrs: { type: 'button' }, on: { click: close } }, s.cancel));
		return;
	}
	const shown = preview.files.slice(0, 20);
	const cancel = h('button', { class: 'secondary', attrs: { type: 'button' }, on: { click: close } }, s.cancel);
	const confirm = h('button', { attrs: { type: 'button' } }, s.rewindConfirm);
	confirm.addEventListener('click', () => {
		confirm.disabled = true;
		ctx.rewind(row.id).then(
			(message) => box.replaceChildren(h('div', { attrs: { role: 'status' } }, message)),
			(e: Error) => {
				confirm.disabled = false;
				box.append(h('div', { class: 'error-text', attrs: { role: 'alert' } }, format(s.failed, e.message)));
			},
		);
	});
	box.replaceChildren();
	append(
		box,
		h('p', {}, preview.files.length ? format(s.rewindPreview, preview.number) : format(s.rewindNoFiles, preview.number)),
		preview.files.length ? h('ul', { class: 'files' }, ...shown.map((f) => h('li', {}, revealHidden(f))), preview.files.length > shown.length ? h('li', {}, `… +${preview.files.length - shown.length}`) : undefined) : undefined,
		preview.laterTurns > 0
			? h('p', {}, preview.laterTurnsInOtherChats ? format(s.rewindLaterTurnsOtherChats, preview.laterTurns, preview.laterTurnsInOtherChats) : format(s.rewindLaterTurns, preview.laterTurns))
			: undefined,
		h('div', { class: 'actions' }, confirm, cancel),
	);
	box.addEventListener('keydown', (e) => {
		if (e.key === 'Escape') {
			e.stopPropagation();
			close();
		}
	});
	cancel.focus();
}

function toolCall(row: Row<'tool_call'>, s: ChatStrings): HTMLElement {
	const status = row.status ?? 'pending';
	// An agent that names no tool call gets the tab's own words for it.
	const title = row.title === '' ? s.toolCall : revealHidden(row.title);
	return h(
		'div',
		{ class: `tool tool-${status}`, attrs: { role: 'group', 'aria-label': row.title === '' ? s.toolCall : `${s.toolCall}: ${title}` } },
		h(
			'div',
			{ class: 'tool-head' },
			h('span', { class: 'glyph', attrs: { 'aria-hidden': 'true' } }, toolStatusGlyph[status]),
			row.toolKind ? h('span', { class: 'badge' }, row.toolKind) : undefined,
			h('span', { class: 'tool-title' }, title),
			h('span', { class: 'tool-status' }, row.stopped ? s.toolStopped : s[toolStatusKey[status]]),
		),
		row.files.length ? h('ul', { class: 'files' }, ...row.files.map((f) => h('li', {}, revealHidden(f)))) : undefined,
	);
}

function decisionText(row: Row<'permission'>, s: ChatStrings): string | undefined {
	const d = row.decision;
	if (!d) {
		return undefined;
	}
	const name = row.options.find((o) => o.optionId === d.optionId)?.name ?? d.optionId ?? '';
	if (d.outcome === 'selected') {
		return d.decidedBy === 'timeout' ? s.decidedByTimeout : d.decidedBy === 'policy' ? format(s.decidedByPolicy, name) : format(s.answered, name);
	}
	return d.decidedBy === 'timeout' ? s.decidedByTimeout : s.decidedByCancel;
}

function permissionCard(row: Row<'permission'>, ctx: RowContext): HTMLElement {
	const s = ctx.strings;
	const settled = decisionText(row, s) ?? (ctx.turnRunning(row.turnId) ? undefined : s.noLongerWaiting);
	// Not settled, but not shown to be answered yet: it says so and offers no answer until it is.
	const notYet = !settled && ctx.permissionNotYet(row.requestId);
	const answerable = !settled && !notYet;
	const title = row.title === '' ? s.permissionUntitled : revealHidden(row.title);
	const statusLine = h('div', { class: 'permission-status', attrs: { role: 'status' } }, settled ?? (notYet ? s.permissionNotYet : ''));
	// One primary action (the first "allow"), so the card does not shout every option at once.
	const primary = row.options.findIndex((o) => o.kind.startsWith('allow'));
	const buttons = row.options.map((option, i) =>
		h(
			'button',
			{ class: i === primary ? 'primary' : 'secondary', attrs: { type: 'button', 'data-focus': `option-${i}`, 'aria-keyshortcuts': String(i + 1) } },
			h('span', { class: 'key', attrs: { 'aria-hidden': 'true' } }, String(i + 1)),
			option.name,
		),
	);
	const card = h(
		'section',
		{ class: `permission ${settled ? 'settled' : notYet ? 'not-yet' : 'open'}`, attrs: { 'aria-label': `${s.permission}: ${title}`, tabindex: '-1', 'data-focus': 'card' } },
		h('div', { class: 'label' }, s.permission),
		h('div', { class: 'permission-title' }, title),
		answerable ? h('div', { class: 'actions' }, ...buttons) : undefined,
		answerable ? h('div', { class: 'hint' }, format(s.permissionShortcuts, row.options.length)) : undefined,
		statusLine,
	);
	const answer = async (option: PermissionOption): Promise<void> => {
		if (!card.classList.contains('open') || card.classList.contains('answering')) {
			return;
		}
		// Answered: the card waits for the decision to come back; Alt+A / Alt+R go to the next card meanwhile.
		card.classList.add('answering');
		buttons.forEach((b) => (b.disabled = true));
		const result = await ctx.answerPermission(row, option).catch(() => ({ accepted: false, waiting: false }));
		if (result.waiting) {
			return; // the app shows the card again, waiting
		}
		if (!result.accepted) {
			card.classList.replace('open', 'settled');
			statusLine.textContent = s.alreadyAnswered;
		}
	};
	buttons.forEach((b, i) => b.addEventListener('click', () => void answer(row.options[i]!)));
	card.addEventListener('keydown', (e) => {
		const n = Number(e.key);
		if (!e.altKey && !e.ctrlKey && !e.metaKey && Number.isInteger(n) && n >= 1 && n <= row.options.length) {
			e.preventDefault();
			void answer(row.options[n - 1]!);
		}
	});
	(card as HTMLElement & { answerByKind?: (kind: 'allow' | 'reject') => boolean }).answerByKind = (kind) => {
		const option = row.options.find((o) => o.kind === `${kind}_once`) ?? row.options.find((o) => o.kind.startsWith(kind));
		if (!option || !card.classList.contains('open') || card.classList.contains('answering')) {
			return false;
		}
		void answer(option);
		return true;
	};
	return card;
}

function errorRow(row: Row<'error'>, ctx: RowContext): HTMLElement {
	const s = ctx.strings;
	const el = h('div', { class: 'error', attrs: { role: 'group', 'aria-label': s.error } }, h('div', { class: 'label' }, s.error), h('div', { class: 'body' }, row.message === '' ? s.errorUnknown : row.message));
	if (row.retryable) {
		const retry = h('button', { class: 'secondary', attrs: { type: 'button', 'data-focus': 'retry' } }, s.retry);
		retry.addEventListener('click', () => {
			retry.disabled = true;
			ctx.retry(row).finally(() => (retry.disabled = false));
		});
		el.append(h('div', { class: 'actions' }, retry));
	}
	return el;
}

/**
 * Answers the oldest permission card that can be answered with allow or reject (Alt+A / Alt+R); false when
 * none can. The oldest, as the broker shows them: it has waited longest (its time runs out first), and a
 * request that arrives just before the key is pressed is not the one answered unread.
 */
export function answerOldestPermission(log: HTMLElement, kind: 'allow' | 'reject'): boolean {
	const card = log.querySelector<HTMLElement & { answerByKind?: (k: 'allow' | 'reject') => boolean }>('section.permission.open:not(.answering)');
	return card?.answerByKind?.(kind) ?? false;
}
