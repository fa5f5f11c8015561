import { ChatRowModel, type ApplyOutcome } from '../../../protocol/chatSync';
import { readChatTabState, type ChatBootstrap, type ChatDraft, type ChatMeta, type ChatRow, type ChatScrollAnchor, type ChatSnapshot, type ChatTabState, type RowUpdate } from '../../../protocol/messages';
import { connect } from '../shared/rpc';
import { Composer } from './composer';
import { format, h } from './dom';
import { answerOldestPermission, renderRow, updateRowInPlace, type RowContext } from './rows';
import './chat.css';

/**
 * The chat tab. It keeps only identity, the draft and where the reader was (a row id and offset) in
 * `setState`; the transcript always comes from the host (the database). Rows arrive as seq-numbered appends
 * and changes; a gap or a new epoch makes the app ask again (`chat/open` from its seq), so a dropped message
 * is never a wrong transcript.
 */
const bootstrap = JSON.parse(document.getElementById('bootstrap')?.textContent ?? '{}') as ChatBootstrap;
const s = bootstrap.strings;
const { rpc, api } = connect('chat');
const saved = readChatTabState(api.getState());
const chatId = bootstrap.chatId;
let tabState: ChatTabState = saved?.chatId === chatId ? saved : { v: 1, chatId };
api.setState(tabState);

const model = new ChatRowModel();
const elements = new Map<string, HTMLElement>();
let meta: ChatMeta | undefined;
/** Permission requests not answerable yet (`ChatMeta.unshownPermissions`), kept apart to see which cards changed. */
let notYet = new Set<string>();

const title = h('h1', { class: 'title' });
const log = h('div', { class: 'transcript', attrs: { role: 'log', 'aria-label': s.transcript, 'aria-live': 'polite', tabindex: '0' } });

/** Counts the drafts sent to the host, so only the answer about the newest one goes into the tab's state. */
let draftsSent = 0;
/** Whether the input changed since this page loaded (then a draft the host kept is older than what is typed). */
let draftTouched = false;
/** The host's copy of the draft is looked at once, in the first answer to `chat/open`. */
let hostDraftSeen = false;

function keepDraft(kept: ChatDraft): void {
	tabState = {
		v: 1,
		chatId,
		...(kept.draft ? { draft: kept.draft } : {}),
		...(kept.attachments?.length ? { attachments: kept.attachments } : {}),
		...(tabState.scroll ? { scroll: tabState.scroll } : {}),
		...(kept.queueEdit ? { queueEdit: kept.queueEdit } : {}),
	};
	api.setState(tabState);
}

function keepScrollAnchor(scroll: ChatScrollAnchor | undefined): void {
	if (scroll?.rowId === tabState.scroll?.rowId && scroll?.offset === tabState.scroll?.offset) {
		return;
	}
	tabState = { ...tabState, scroll };
	if (!scroll) {
		delete tabState.scroll;
	}
	api.setState(tabState);
}

const composer = new Composer(
	s,
	{
		send: async (prompt) => void (await rpc.request('chat/send', { chatId, prompt })),
		cancel: async () => void (await rpc.request('chat/cancel', { chatId })),
		attachSelection: () => rpc.request('editor/attachSelection', { chatId }),
		complete: (kind, query) => rpc.request(kind === 'commands' ? 'complete/commands' : 'complete/files', { chatId, query }),
		setMode: async (modeId) => void (await rpc.request('chat/setMode', { chatId, modeId })),
		setModel: async (modelId) => void (await rpc.request('chat/setModel', { chatId, modelId })),
		setConfigOption: async (configId, value) => void (await rpc.request('chat/setConfigOption', { chatId, configId, value })),
		editQueued: async (queueId, text) => void (await rpc.request('queue/edit', { chatId, queueId, text })),
		removeQueued: async (queueId) => void (await rpc.request('queue/remove', { chatId, queueId })),
		draftChanged: (draft, attachments, queueEdit) => {
			draftTouched = true;
			if (!draft && attachments.length === 0 && !queueEdit) {
				keepDraft({ draft: '' });
			}
			// Every change goes to the host at once: a tab switched away from is thrown away by VS Code before
			// `blur` or `visibilitychange` runs, so a save left for later is lost (with the last keys typed).
			// The tab's state is kept on disk by VS Code: only a draft the host has checked goes there, with any
			// key pasted into it redacted. The host keeps its copy too, which a page that was hidden before the
			// answer came finds again (see `resync`).
			const sent = ++draftsSent;
			void rpc
				.request('chat/saveDraft', { chatId, draft, ...(attachments.length ? { attachments } : {}), ...(queueEdit ? { queueEdit } : {}) })
				.then((kept) => sent === draftsSent && keepDraft(kept))
				.catch(() => undefined);
		},
	},
	tabState.draft ?? '',
	tabState.attachments ?? [],
	tabState.queueEdit,
);

document.body.append(h('header', { class: 'header' }, title), log, composer.element);

const ctx: RowContext = {
	strings: s,
	agentLabel: () => meta?.agentLabel ?? '',
	turnRunning: (turnId) => {
		const turn = turnId ? model.get(turnId) : undefined;
		return turn?.kind === 'turn' && turn.status === 'running';
	},
	permissionNotYet: (requestId) => notYet.has(requestId),
	answerPermission: async (row, option) => {
		const result = await rpc.request('permission/answer', { chatId, requestId: row.requestId, optionId: option.optionId });
		if (result.waiting) {
			// The meta that says so is on its way (the host sends one whenever this changes): wait as it will say.
			notYet.add(row.requestId);
			const current = model.get(row.id);
			if (current) {
				replaceRow(current);
			}
		}
		return result;
	},
	retry: async () => undefined,
	rewindPreview: (turnId) => rpc.request('turn/rewindPreview', { chatId, turnId }),
	rewind: async (turnId) => {
		const r = await rpc.request('turn/rewind', { chatId, turnId });
		return format(s.rewindDone, r.files.length, r.replacedRef);
	},
};
ctx.retry = async (row) => {
	try {
		await rpc.request('chat/retry', { chatId, rowId: row.id });
	} catch (e) {
		composer.showError(format(s.failed, (e as Error).message));
	}
};

// ---------------------------------------------------------------------------------------------------------
// Rendering

const nearBottom = (): boolean => log.scrollHeight - log.scrollTop - log.clientHeight < 48;

/** Where the reader is: the first row in view and its offset from the top of the view; undefined at the bottom. */
function scrollAnchor(): ChatScrollAnchor | undefined {
	if (nearBottom()) {
		return undefined;
	}
	const top = log.getBoundingClientRect().top;
	for (const page of log.children) {
		if (page.getBoundingClientRect().bottom <= top) {
			continue;
		}
		for (const el of page.children) {
			const rect = el.getBoundingClientRect();
			const rowId = (el as HTMLElement).dataset.rowId;
			if (rect.bottom > top && rowId) {
				return { rowId, offset: Math.round(rect.top - top) };
			}
		}
	}
	return undefined;
}

/** The anchor the tab state had when this page was built, put back once the first snapshot is shown. */
let anchorToRestore: ChatScrollAnchor | undefined = tabState.scroll;
/** Scrolling is only recorded once the transcript is shown (before, the empty log says nothing). */
let anchorRestored = false;
let scrollTimer: ReturnType<typeof setTimeout> | undefined;

function saveScrollNow(): void {
	clearTimeout(scrollTimer);
	scrollTimer = undefined;
	if (anchorRestored) {
		keepScrollAnchor(scrollAnchor());
	}
}

/**
 * Whether the reader is at the bottom, as of their last scroll. The log shrinks without a scroll when the
 * message box grows (a queued message, its edit box, a note): measured then, the reader would no longer be at
 * the bottom, and would stop following the reply.
 */
let atBottom = true;

// Saved as the reader scrolls (at most every 200 ms), and at once when the tab is left: its page is thrown away.
log.addEventListener('scroll', () => {
	atBottom = nearBottom();
	scrollTimer ??= setTimeout(saveScrollNow, 200);
});

// A reader who scrolls (or clicks or types in the log) before the row to come back to is shown (it is in a long
// chat's earlier rows, still coming) has moved on: they stay where they went, and that place is kept from now on.
for (const type of ['wheel', 'touchmove', 'keydown', 'pointerdown'] as const) {
	log.addEventListener(
		type,
		() => {
			if (!anchorRestored) {
				anchorToRestore = undefined;
				anchorRestored = true;
			}
		},
		{ passive: true },
	);
}

// A reader at the bottom stays there when the log changes size (the message box grows or shrinks, the tab is resized).
// Not when a page does: the last one is always laid out (chat.css), so a row added or changed is followed by
// `keepScroll`, and what the reader opens (an agent's thinking) stays where they clicked.
new ResizeObserver(() => {
	if (atBottom) {
		log.scrollTop = log.scrollHeight;
	}
}).observe(log);

/** Brings the reader back to the saved row at its offset; a row that is gone leaves the log at the bottom. */
function restoreAnchor(): void {
	const anchor = anchorToRestore;
	anchorToRestore = undefined;
	anchorRestored = true;
	if (!backTo(anchor)) {
		log.scrollTop = log.scrollHeight;
	}
	atBottom = nearBottom();
	saveScrollNow();
}

/** Takes the reader back to the anchor's row, when it is shown; whether it was. */
function backTo(anchor: ChatScrollAnchor | undefined): boolean {
	const el = anchor ? elements.get(anchor.rowId) : undefined;
	if (!anchor || !isShown(el)) {
		return false;
	}
	scrollRowTo(el, anchor.offset);
	return true;
}

/**
 * Puts a row `offset` px below the top of the view, with the pages around it laid out first: a page never
 * shown has only an estimated size (chat.css), so a row measured in it would be put where its page is not, and
 * the pages coming into view would then move it (a tab shown again opened rows away from where the reader was).
 * The pages go back to being skipped when out of view once the browser has shown them (and kept their sizes).
 */
function scrollRowTo(el: HTMLElement, offset: number): void {
	const page = el.parentElement!;
	const laidOut: Element[] = [];
	const layOut = (p: Element): number => {
		p.classList.add('laid-out');
		laidOut.push(p);
		return p.getBoundingClientRect().height;
	};
	layOut(page);
	// The pages a view's height above the row (the browser lays them out as they near the view) and two views' below.
	const view = log.clientHeight;
	let above = el.getBoundingClientRect().top - page.getBoundingClientRect().top;
	for (let p = page.previousElementSibling; p && above < view; p = p.previousElementSibling) {
		above += layOut(p);
	}
	let below = page.getBoundingClientRect().bottom - el.getBoundingClientRect().top;
	for (let p = page.nextElementSibling; p && below < 2 * view; p = p.nextElementSibling) {
		below += layOut(p);
	}
	log.scrollTop += el.getBoundingClientRect().top - log.getBoundingClientRect().top - offset;
	requestAnimationFrame(() => setTimeout(() => laidOut.forEach((p) => p.classList.remove('laid-out')), 0));
}

/** Keeps the reader where they are: follows new rows only when already at the bottom. */
function keepScroll(update: () => void): void {
	const follow = atBottom || nearBottom();
	update();
	if (follow) {
		log.scrollTop = log.scrollHeight;
		atBottom = true;
	}
}

/** Whether the whole log is being rebuilt (then, as while a reply streams, it is marked busy). */
let renderingAll = false;

/**
 * `aria-busy` on the log while a turn streams and while it is rebuilt: a screen reader then waits for the
 * log to settle instead of announcing each streamed piece or every row of a rebuild. Not while the agent
 * waits for a permission: its card must be heard.
 */
function updateBusy(): void {
	log.setAttribute('aria-busy', String(renderingAll || loadingEarlier || meta?.status === 'running'));
}

function renderAll(): void {
	renderingAll = true;
	updateBusy();
	// A reader scrolled up keeps the row they read: rebuilt, the pages have only estimated sizes until shown.
	const anchor = atBottom || nearBottom() ? undefined : scrollAnchor();
	keepScroll(() => {
		elements.clear();
		log.replaceChildren(...pagesOf(model.rows.map((row) => place(row))));
	});
	backTo(anchor);
	setTimeout(() => {
		renderingAll = false;
		updateBusy();
	}, 0);
}

/**
 * Rows are kept in pages of this many. A page out of view is skipped by the browser's style, layout and paint
 * (`content-visibility: auto` in chat.css), so a streamed change or a key typed costs what the pages in view
 * cost, not what the whole chat does: with every row a child of the log, each change to a chat of 10,000 rows
 * made the browser lay out, observe and cull all of them again (45 ms of main-thread time on 2 cores).
 */
const rowsPerPage = 50;

/** Row elements, in order, in pages of `rowsPerPage`. */
function pagesOf(rows: readonly HTMLElement[]): HTMLElement[] {
	const pages: HTMLElement[] = [];
	for (let i = 0; i < rows.length; i += rowsPerPage) {
		pages.push(h('div', { class: 'page' }, ...rows.slice(i, i + rowsPerPage)));
	}
	return pages;
}

function place(row: ChatRow): HTMLElement {
	const el = renderRow(row, ctx);
	elements.set(row.id, el);
	return el;
}

/**
 * Adds a row's element where the model has the row now: before the next row already in the log. A catch-up
 * applies all its updates before showing any, so rows after this one may be in the model and not yet shown.
 */
function insertRow(row: ChatRow): void {
	const rows = model.rows;
	let before: HTMLElement | undefined;
	for (let i = (model.indexOf(row.id) ?? rows.length - 1) + 1; i < rows.length && !before; i++) {
		const el = elements.get(rows[i]!.id);
		before = isShown(el) ? el : undefined;
	}
	if (before) {
		before.before(place(row));
		return;
	}
	let last = log.lastElementChild;
	if (!last || last.childElementCount >= rowsPerPage) {
		last = log.appendChild(h('div', { class: 'page' }));
	}
	last.append(place(row));
}

/** Whether a row's element is in the log now (in one of its pages). */
function isShown(el: HTMLElement | undefined): el is HTMLElement {
	return el?.parentElement?.parentElement === log;
}

/** Replaces one row's element; focus inside it moves to the same control in the new one, never to the input. */
function replaceRow(row: ChatRow): void {
	const old = elements.get(row.id);
	if (!old) {
		insertRow(row);
		return;
	}
	if (updateRowInPlace(old, row)) {
		return;
	}
	const focused = old.contains(document.activeElement) ? (document.activeElement as HTMLElement) : undefined;
	const next = place(row);
	old.replaceWith(next);
	if (focused && document.hasFocus()) {
		const key = focused.dataset.focus;
		const target = (key && next.querySelector<HTMLElement>(`[data-focus="${key}"]:not([disabled])`)) || next.querySelector<HTMLElement>('[data-focus="card"]') || next;
		if (!target.hasAttribute('tabindex') && !target.matches('button, textarea, select, a, input')) {
			target.setAttribute('tabindex', '-1');
		}
		target.focus();
	}
}

function showSnapshot(snapshot: ChatSnapshot): void {
	// A reader scrolled up to a row a long chat's new snapshot leaves out (a resync) is taken back to it once it comes.
	const reading = anchorRestored && !atBottom && snapshot.earlierBefore !== undefined ? scrollAnchor() : undefined;
	model.reset(snapshot);
	meta = snapshot.meta; // rows are labelled with the agent's name, so it must be known first
	notYet = new Set(snapshot.meta.unshownPermissions);
	renderAll();
	showMeta(snapshot.meta);
	if (reading && !isShown(elements.get(reading.rowId))) {
		anchorToRestore = reading;
		anchorRestored = false;
	}
	void loadEarlier(snapshot.earlierBefore);
	if (!anchorRestored && (snapshot.earlierBefore === undefined || anchorShown())) {
		restoreAnchor();
	}
}

/** Counts the loads of a long chat's earlier rows: a newer snapshot ends the one before. */
let earlierLoads = 0;
/** Whether the earlier rows of a long chat are still coming (the log is busy meanwhile). */
let loadingEarlier = false;

/** Whether the row to come back to is in the log now (or there is none to come back to). */
function anchorShown(): boolean {
	return !anchorToRestore || isShown(elements.get(anchorToRestore.rowId));
}

/**
 * Asks for the rows a long chat's snapshot left out, a slice at a time, newest first, and shows each above
 * what is shown; the reader's place is kept, and a reader coming back to a row further up gets there once
 * that row has come.
 */
async function loadEarlier(before: number | undefined): Promise<void> {
	const load = ++earlierLoads;
	loadingEarlier = before !== undefined;
	updateBusy();
	try {
		while (before !== undefined) {
			const result = await rpc.request('chat/earlierRows', { chatId, before });
			if (load !== earlierLoads) {
				return;
			}
			before = result.earlierBefore;
			showEarlier(result.rows, before);
			if (!anchorRestored && anchorShown()) {
				restoreAnchor();
			}
		}
	} catch (e) {
		if (load === earlierLoads) {
			composer.showError(format(s.earlierFailed, (e as Error).message));
		}
	} finally {
		if (load === earlierLoads) {
			loadingEarlier = false;
			updateBusy();
			if (!anchorRestored) {
				restoreAnchor();
			}
		}
	}
}

/** Shows earlier rows: those above every row shown go in pages of their own at the top, any other in its place. */
function showEarlier(rows: ChatRow[], earlierBefore: number | undefined): void {
	const anchor = atBottom ? undefined : scrollAnchor();
	const { added, changed } = model.addEarlier(rows, earlierBefore);
	const firstShown = (log.firstElementChild?.firstElementChild as HTMLElement | null | undefined)?.dataset.rowId;
	const firstIndex = firstShown === undefined ? Infinity : (model.indexOf(firstShown) ?? Infinity);
	const above: HTMLElement[] = [];
	for (const row of added) {
		if ((model.indexOf(row.id) ?? Infinity) < firstIndex) {
			above.push(place(row));
		} else {
			insertRow(row);
		}
	}
	log.prepend(...pagesOf(above));
	for (const row of changed) {
		replaceRow(row);
	}
	if (atBottom) {
		log.scrollTop = log.scrollHeight;
		return;
	}
	backTo(anchor);
}

function showMeta(next: ChatMeta): void {
	const labelChanged = meta?.agentLabel !== next.agentLabel;
	meta = next;
	updateBusy();
	title.textContent = next.title === next.agentLabel ? next.title : `${next.title} · ${next.agentLabel}`;
	composer.setMeta(next);
	const wasNotYet = notYet;
	notYet = new Set(next.unshownPermissions);
	if (labelChanged && model.rows.length) {
		renderAll();
		return;
	}
	// A card the broker now shows becomes answerable (and one not shown yet, after a reply said so, waits).
	for (const row of model.rows) {
		if (row.kind === 'permission' && !row.decision && wasNotYet.has(row.requestId) !== notYet.has(row.requestId)) {
			replaceRow(row);
		}
	}
}

/** Applies one update; returns false when the app missed something and must resync. */
function applyUpdate(update: RowUpdate): boolean {
	return show(model.apply(update));
}

function show(outcome: ApplyOutcome): boolean {
	switch (outcome.kind) {
		case 'appended':
			keepScroll(() => insertRow(outcome.row));
			break;
		case 'changed':
			keepScroll(() => replaceRow(outcome.row));
			break;
		case 'stale':
		case 'later':
			return true;
		case 'gap':
		case 'epoch':
			return false;
	}
	if (outcome.row.kind === 'turn') {
		refreshPermissionCards(outcome.row.id);
	}
	return true;
}

/** A turn that ended leaves its unanswered cards unanswerable: re-render them to say so. */
function refreshPermissionCards(turnId: string): void {
	for (const row of model.rows) {
		if (row.kind === 'permission' && row.turnId === turnId && !row.decision) {
			replaceRow(row);
		}
	}
}

// ---------------------------------------------------------------------------------------------------------
// Sync

let syncing = false;
let syncAgain = false;

/** Asks the host for what this view is missing: the updates after its seq, or a whole snapshot. */
async function resync(): Promise<void> {
	if (syncing) {
		syncAgain = true;
		return;
	}
	syncing = true;
	try {
		do {
			syncAgain = false;
			const since = model.epoch ? { sinceSeq: model.seq, epoch: model.epoch } : {};
			const result = await rpc.request('chat/open', { chatId, ...since });
			if (!hostDraftSeen) {
				hostDraftSeen = true;
				const kept = result.draft;
				if (kept !== undefined && !draftTouched && (kept.draft !== composer.input.value || JSON.stringify(kept.attachments ?? []) !== JSON.stringify(tabState.attachments ?? []) || (kept.queueEdit && !tabState.queueEdit))) {
					composer.setDraft(kept.draft, kept.attachments);
					composer.restoreEdit(kept.queueEdit);
					keepDraft(kept.queueEdit || !tabState.queueEdit ? kept : { ...kept, queueEdit: tabState.queueEdit });
				}
			}
			if (result.kind === 'snapshot') {
				showSnapshot(result.snapshot);
			} else {
				if (!model.catchUp(result.updates, result.seq).every(show)) {
					// Another epoch began meanwhile: only a snapshot can say what is true now.
					syncAgain = true;
					model.epoch = '';
				}
				showMeta(result.meta);
			}
		} while (syncAgain);
	} catch (e) {
		composer.showError(format(s.failed, (e as Error).message));
	} finally {
		syncing = false;
	}
}

rpc.on('chat/didReset', (snapshot) => snapshot.chatId === chatId && showSnapshot(snapshot));
rpc.on('chat/didChangeMeta', (m) => m.chatId === chatId && showMeta(m));
rpc.on('chat/didUpdateRow', (u) => {
	if (u.chatId !== chatId) {
		return;
	}
	if (syncing) {
		// Applied if it fits; anything it reveals missing is fetched by the sync in flight.
		if (!applyUpdate(u)) {
			syncAgain = true;
		}
		return;
	}
	if (!applyUpdate(u)) {
		void resync();
	}
});

// Leaving the tab (another editor, another window) saves the reading place now: a hidden tab's page is thrown away.
window.addEventListener('blur', () => saveScrollNow());
document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && saveScrollNow());

// Alt+A / Alt+R answer the oldest answerable permission card from anywhere in the tab, but never take a key that types
// something. Matched on e.key, not e.code: where Alt with the letter types a character (macOS Option+A is "å",
// Polish AltGr+A is "ą"; AltGr is Ctrl+Alt on Windows) that character is the key, and it is typed. Outside a text
// field nothing is typed, so there the key's place counts when its character is not a Latin letter (Option+A on
// a Mac answers from a card or the transcript; Alt+Q on AZERTY, whose key sits where A does, never does).
document.addEventListener('keydown', (e) => {
	if (!e.altKey || e.ctrlKey || e.metaKey || e.isComposing || e.getModifierState('AltGraph')) {
		return;
	}
	const key = e.key.toLowerCase();
	const target = e.target instanceof HTMLElement ? e.target : null;
	const typing = target !== null && (target.isContentEditable || target instanceof HTMLTextAreaElement || target instanceof HTMLInputElement || target instanceof HTMLSelectElement);
	const letter = key === 'a' || key === 'r' ? key : !typing && !/^[a-z]$/.test(key) && (e.code === 'KeyA' || e.code === 'KeyR') ? e.code.slice(3).toLowerCase() : undefined;
	if (letter && answerOldestPermission(log, letter === 'a' ? 'allow' : 'reject')) {
		e.preventDefault();
	}
});

// Ready to type when the tab is shown, but never taking focus from elsewhere: a tab rebuilt while a picker or
// another editor has focus (a tab's view is rebuilt each time it is shown) would close or leave it.
if (document.hasFocus()) {
	composer.input.focus();
}
window.addEventListener('focus', () => {
	if (document.activeElement === document.body || document.activeElement === null) {
		composer.input.focus();
	}
});
void resync();
