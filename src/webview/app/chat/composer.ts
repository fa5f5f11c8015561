import type { ChatMeta, ChatSetting, ChatStrings, CompletionItem, PromptAttachment, PromptPayload, QueuedEdit } from '../../../protocol/messages';
import { format, h, uniqueId } from './dom';
import { attachmentLabel } from './rows';

export interface ComposerActions {
	send(prompt: PromptPayload): Promise<void>;
	cancel(): Promise<void>;
	attachSelection(): Promise<PromptAttachment>;
	complete(kind: 'commands' | 'files', query: string): Promise<CompletionItem[]>;
	setMode(id: string): Promise<void>;
	setModel(id: string): Promise<void>;
	/** Sets one of the agent's other settings (`ChatMeta.settings`) to one of its values. */
	setConfigOption(id: string, value: string): Promise<void>;
	editQueued(id: string, text: string): Promise<void>;
	removeQueued(id: string): Promise<void>;
	/** The unsent text, what it attaches or an unsaved edit of a queued message changed (kept so a hidden or reloaded tab gets them back). */
	draftChanged(draft: string, attachments: PromptAttachment[], queueEdit?: QueuedEdit): void;
}

/** The trigger being completed: `/cmd` at the very start of the input, or `@path` after a space. */
function triggerAt(text: string, caret: number): { kind: 'commands' | 'files'; start: number; query: string } | undefined {
	const before = text.slice(0, caret);
	const command = /^\/(\S*)$/.exec(before);
	if (command) {
		return { kind: 'commands', start: 0, query: command[1]! };
	}
	const mention = /(^|\s)@(\S*)$/.exec(before);
	if (mention) {
		return { kind: 'files', start: before.length - mention[2]!.length - 1, query: mention[2]! };
	}
	return undefined;
}

/**
 * The input area: a labelled multi-line textbox (Enter sends, Shift+Enter breaks the line), slash-command
 * and `@` file completion, attachments, mode and model pickers and one for each other setting the agent offers, Cancel while a turn runs, and the queue of
 * messages waiting for the running turn (each editable and removable until it is sent).
 */
export class Composer {
	readonly element: HTMLElement;
	readonly input: HTMLTextAreaElement;
	private readonly queueSection: HTMLElement;
	private readonly queueList: HTMLUListElement;
	private readonly attachmentList: HTMLUListElement;
	private readonly completions: HTMLUListElement;
	private readonly statusLine: HTMLElement;
	private readonly errorLine: HTMLElement;
	/** Says what happened to text the user typed elsewhere (an edit of a message that was sent meanwhile). */
	private readonly noteLine: HTMLElement;
	private readonly cancelButton: HTMLButtonElement;
	private readonly sendButton: HTMLButtonElement;
	private readonly modeSelect: HTMLSelectElement;
	private readonly modelSelect: HTMLSelectElement;
	/** The pickers of the agent's settings (`ChatMeta.settings`) by option id: one of category mode goes where the mode picker is. */
	private readonly settingSelects = new Map<string, HTMLSelectElement>();
	private readonly modeSettings: HTMLElement;
	private readonly otherSettings: HTMLElement;
	private readonly closedNote: HTMLElement;
	private attachments: PromptAttachment[] = [];
	private items: CompletionItem[] = [];
	private active = -1;
	private trigger: ReturnType<typeof triggerAt>;
	private completionRequest = 0;
	private sending = false;
	private meta: ChatMeta | undefined;
	/**
	 * The queued message being edited: its text as queued, the text so far, and its item in the list, which
	 * re-rendering the queue keeps as it is (so its caret, selection, undo and an input method's composition).
	 */
	private editing: { id: string; original: string; text: string; element?: HTMLLIElement } | undefined;

	constructor(
		private readonly s: ChatStrings,
		private readonly actions: ComposerActions,
		draft: string,
		attachments: PromptAttachment[] = [],
		queueEdit?: QueuedEdit,
	) {
		const hintId = uniqueId('hint');
		const listId = uniqueId('completions');
		this.input = h('textarea', {
			class: 'input',
			attrs: { rows: '3', 'aria-describedby': hintId, 'aria-autocomplete': 'list', 'aria-controls': listId, 'aria-multiline': 'true', spellcheck: 'true' },
		});
		this.input.value = draft;
		this.attachments = attachments.map((a) => ({ ...a }));
		this.restoreEdit(queueEdit);
		this.completions = h('ul', { class: 'completions', attrs: { id: listId, role: 'listbox', 'aria-label': s.suggestions, hidden: '' } });
		this.attachmentList = h('ul', { class: 'attachments', attrs: { 'aria-label': s.attachments, hidden: '' } });
		this.queueList = h('ul', { class: 'queue-list' });
		this.queueSection = h('section', { class: 'queue', attrs: { 'aria-label': s.queue, hidden: '' } }, h('div', { class: 'label' }, `${s.queue} · ${s.queuedNote}`), this.queueList);
		this.statusLine = h('span', { class: 'status', attrs: { role: 'status' } });
		this.errorLine = h('div', { class: 'error-text', attrs: { role: 'alert' } });
		this.noteLine = h('div', { class: 'note-text', attrs: { role: 'status' } });
		this.closedNote = h('div', { class: 'notice notice-info', attrs: { role: 'note', hidden: '' } }, s.closedNote);
		this.cancelButton = h('button', { class: 'secondary', attrs: { type: 'button', hidden: '' }, on: { click: () => void this.run(() => this.actions.cancel()) } }, s.cancelTurn);
		this.sendButton = h('button', { class: 'primary', attrs: { type: 'button' }, on: { click: () => void this.send() } }, s.send);
		this.modeSelect = this.picker(s.mode, (id) => this.actions.setMode(id));
		this.modelSelect = this.picker(s.model, (id) => this.actions.setModel(id));
		this.modeSettings = h('span', { class: 'settings' });
		this.otherSettings = h('span', { class: 'settings' });
		const attach = h('button', { class: 'secondary', attrs: { type: 'button' }, on: { click: () => void this.attachSelection() } }, s.attachSelection);
		this.element = h(
			'div',
			{ class: 'composer' },
			this.queueSection,
			this.closedNote,
			this.attachmentList,
			h('div', { class: 'input-wrap' }, this.input, this.completions),
			h('div', { class: 'hint', attrs: { id: hintId } }, s.inputHint),
			this.errorLine,
			this.noteLine,
			h('div', { class: 'toolbar' }, attach, this.modeSelect.parentElement!, this.modeSettings, this.modelSelect.parentElement!, this.otherSettings, h('span', { class: 'spacer' }), this.statusLine, this.cancelButton, this.sendButton),
		);
		this.input.addEventListener('keydown', (e) => this.onKeyDown(e));
		this.input.addEventListener('input', () => {
			this.draftChanged();
			this.updateCompletion();
		});
		this.input.addEventListener('blur', () => setTimeout(() => this.closeCompletion(), 150));
		this.renderAttachments();
	}

	private draftChanged(): void {
		const e = this.editing;
		this.actions.draftChanged(this.input.value, this.attachments.map((a) => ({ ...a })), e ? { queueId: e.id, original: e.original, text: e.text } : undefined);
	}

	/**
	 * Opens again an edit of a queued message that was not saved when the tab's page went (the tab was hidden):
	 * its edit box comes back with the text, or, if the message was sent meanwhile, the text goes into the message box.
	 */
	restoreEdit(edit: QueuedEdit | undefined): void {
		if (!edit || this.editing) {
			return;
		}
		this.editing = { id: edit.queueId, original: edit.original, text: edit.text };
		if (this.meta) {
			this.renderQueue(this.meta);
		}
	}

	/** Puts a draft kept elsewhere (the host) into the input, as if it had been there from the start. */
	setDraft(draft: string, attachments: PromptAttachment[] = []): void {
		this.input.value = draft;
		this.attachments = attachments.map((a) => ({ ...a }));
		this.renderAttachments();
	}

	private picker(label: string, choose: (id: string) => Promise<void>): HTMLSelectElement {
		const select = h('select', { attrs: { 'aria-label': label } });
		h('label', { class: 'picker', attrs: { hidden: '' } }, h('span', { class: 'picker-label' }, label), select);
		select.addEventListener('change', () => {
			void this.run(() => choose(select.value)).then((ok) => {
				if (!ok) {
					// Back to what the agent holds now (its last settings): an earlier choice may have been taken meanwhile.
					select.value = select.dataset.current ?? '';
				}
			});
		});
		return select;
	}

	/** Runs an action, showing its failure in plain words next to the input; resolves to whether it worked. */
	private async run(action: () => Promise<unknown>): Promise<boolean> {
		this.errorLine.textContent = '';
		try {
			await action();
			return true;
		} catch (e) {
			this.errorLine.textContent = format(this.s.failed, (e as Error).message);
			return false;
		}
	}

	showError(message: string): void {
		this.errorLine.textContent = message;
	}

	setMeta(meta: ChatMeta): void {
		this.meta = meta;
		this.input.setAttribute('aria-label', format(this.s.input, meta.agentLabel));
		const busy = meta.status !== 'idle';
		this.cancelButton.hidden = !busy;
		this.statusLine.textContent = meta.status === 'running' ? this.s.statusRunning : meta.status === 'waitingForPermission' ? this.s.statusWaiting : '';
		this.closedNote.hidden = !meta.closed;
		this.fillPicker(this.modeSelect, meta.modes);
		this.fillPicker(this.modelSelect, meta.models);
		const settings = meta.settings ?? [];
		this.renderSettings(settings);
		if (settings.some((o) => o.category === 'mode')) {
			// The agent's mode is one of its settings: that picker is the mode picker.
			(this.modeSelect.parentElement as HTMLElement).hidden = true;
		}
		this.renderQueue(meta);
	}

	/**
	 * One picker per setting, labelled with its name (its description as the tooltip), showing its value. A
	 * picker is kept while its setting is offered (so it keeps focus across updates); one no longer offered goes.
	 */
	private renderSettings(settings: ChatSetting[]): void {
		const hadFocus = [...this.settingSelects.values()].some((sel) => sel === document.activeElement);
		const modeLabels: HTMLElement[] = [];
		const otherLabels: HTMLElement[] = [];
		for (const setting of settings) {
			let select = this.settingSelects.get(setting.id);
			if (!select) {
				const id = setting.id;
				select = this.picker(setting.name, (value) => this.actions.setConfigOption(id, value));
				select.dataset.setting = id;
				this.settingSelects.set(id, select);
			}
			const label = select.parentElement as HTMLElement;
			label.querySelector('.picker-label')!.textContent = setting.name;
			select.setAttribute('aria-label', setting.name);
			for (const el of [label, select]) {
				if (setting.description) {
					el.title = setting.description;
				} else {
					el.removeAttribute('title');
				}
			}
			this.fillPicker(select, { current: setting.current, available: setting.available });
			(setting.category === 'mode' ? modeLabels : otherLabels).push(label);
		}
		const offered = new Set(settings.map((o) => o.id));
		for (const [id, select] of this.settingSelects) {
			if (!offered.has(id)) {
				this.settingSelects.delete(id);
				select.parentElement!.remove();
			}
		}
		for (const [box, labels] of [[this.modeSettings, modeLabels], [this.otherSettings, otherLabels]] as const) {
			// Others are put around a kept picker, which is moved only when its place changed (a move takes its focus).
			labels.forEach((label, i) => {
				if (box.children[i] !== label) {
					box.insertBefore(label, box.children[i] ?? null);
				}
			});
			while (box.children.length > labels.length) {
				box.lastElementChild!.remove();
			}
		}
		if (hadFocus && !(document.activeElement instanceof HTMLSelectElement)) {
			this.input.focus(); // its picker went (the agent no longer offers it): focus is not lost to the page
		}
	}

	private fillPicker(select: HTMLSelectElement, choices: ChatMeta['modes']): void {
		const label = select.parentElement as HTMLElement;
		label.hidden = choices.available.length === 0;
		const same = select.options.length === choices.available.length && choices.available.every((c, i) => select.options[i]?.value === c.id);
		if (!same) {
			select.replaceChildren(...choices.available.map((c) => h('option', { attrs: { value: c.id } }, c.name)));
		}
		select.value = choices.current ?? '';
		select.dataset.current = choices.current ?? '';
	}

	/**
	 * Shows the queue. Items are rebuilt, except the one being edited: its element stays in the list untouched
	 * (meta updates come with every task change and settled permission, and rebuilding it would move the caret
	 * to the end and lose undo and an input method's composition).
	 */
	private renderQueue(meta: ChatMeta): void {
		this.queueSection.hidden = meta.queue.length === 0;
		const active = document.activeElement as HTMLElement | null;
		const focusedId = active?.closest<HTMLElement>('.queue-list li')?.dataset.queueId;
		const focusKey = active?.dataset.focus;
		if (this.editing && !meta.queue.some((q) => q.id === this.editing!.id)) {
			this.editLeftQueue(this.editing);
		}
		const items = meta.queue.map((q) => (this.editing?.id === q.id ? (this.editing.element ??= this.editorItem(q.id)) : this.queuedItem(q)));
		for (const child of [...this.queueList.children]) {
			if (!items.includes(child as HTMLLIElement)) {
				child.remove();
			}
		}
		// Only new items are inserted, before or after the kept one, which therefore never leaves the document.
		items.forEach((li, i) => {
			if (this.queueList.children[i] !== li) {
				this.queueList.insertBefore(li, this.queueList.children[i] ?? null);
			}
		});
		if (focusedId && active && !active.isConnected) {
			const li = this.queueList.querySelector<HTMLElement>(`li[data-queue-id="${CSS.escape(focusedId)}"]`);
			(li?.querySelector<HTMLElement>(`[data-focus="${focusKey ?? ''}"]`) ?? li?.querySelector<HTMLElement>('button, textarea') ?? this.input).focus();
		}
	}

	/**
	 * The message being edited left the queue (it started, or was removed elsewhere) before the edit was saved:
	 * what was sent is the old text. The edited text goes into the message box (after a draft already there)
	 * and the tab says so, instead of vanishing with the edit box.
	 */
	private editLeftQueue(editing: NonNullable<Composer['editing']>): void {
		const hadFocus = editing.element?.contains(document.activeElement) ?? false;
		this.editing = undefined;
		this.draftChanged();
		this.keepUnsentEdit(editing);
		if (hadFocus) {
			this.input.focus();
			this.input.setSelectionRange(this.input.value.length, this.input.value.length);
		}
	}

	/** An edit the queued message did not get goes into the message box (after a draft there), and the tab says so. */
	private keepUnsentEdit(editing: NonNullable<Composer['editing']>): void {
		if (editing.text.trim() !== '' && editing.text !== editing.original) {
			const draft = this.input.value;
			this.input.value = draft.trim() === '' ? editing.text : `${draft.replace(/\s+$/, '')}\n\n${editing.text}`;
			this.draftChanged();
			this.noteLine.textContent = this.s.queuedEditMoved;
		}
	}

	private editorItem(id: string): HTMLLIElement {
		const li = h('li', { attrs: { 'data-queue-id': id } });
		const editor = h('textarea', { attrs: { rows: '2', 'aria-label': this.s.edit, 'data-focus': 'editor' } });
		editor.value = this.editing?.text ?? '';
		editor.addEventListener('input', () => {
			if (this.editing?.id === id) {
				this.editing.text = editor.value;
				this.draftChanged();
			}
		});
		const stop = (): void => {
			this.editing = undefined;
			this.draftChanged();
			this.renderQueue(this.meta!);
		};
		const save = (): void => {
			const text = editor.value;
			const editing = this.editing?.id === id ? this.editing : undefined;
			const before = editing?.original;
			// Taken by the host unless it answers otherwise: a message that starts before that answer comes went
			// with this text, and must not be reported as sent without it.
			if (editing) {
				editing.original = text;
			}
			void this.run(() => this.actions.editQueued(id, text)).then((ok) => {
				if (!ok && editing && before !== undefined) {
					editing.original = before;
					if (this.editing !== editing) {
						this.keepUnsentEdit(editing); // it left the queue meanwhile, without this edit
					}
				}
				if (ok && this.editing?.id === id) {
					stop();
					this.input.focus();
				}
			});
		};
		editor.addEventListener('keydown', (e) => {
			if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
				e.preventDefault();
				save();
			} else if (e.key === 'Escape') {
				e.preventDefault();
				stop();
				this.input.focus();
			}
		});
		li.append(
			editor,
			h(
				'div',
				{ class: 'actions' },
				h('button', { attrs: { type: 'button', 'data-focus': 'save' }, on: { click: save } }, this.s.save),
				h('button', { class: 'secondary', attrs: { type: 'button', 'data-focus': 'cancel' }, on: { click: stop } }, this.s.cancel),
			),
		);
		return li;
	}

	private queuedItem(q: ChatMeta['queue'][number]): HTMLLIElement {
		return h(
			'li',
			{ attrs: { 'data-queue-id': q.id } },
			h('span', { class: 'queued-text' }, q.text),
			...q.attachments.map((a) => h('span', { class: 'chip' }, attachmentLabel(a, this.s))),
			h(
				'span',
				{ class: 'actions' },
				h('button', { class: 'link', attrs: { type: 'button', 'data-focus': 'edit', 'aria-label': `${this.s.edit}: ${q.text.slice(0, 40)}` }, on: { click: () => this.startEdit(q.id, q.text) } }, this.s.edit),
				h('button', { class: 'link', attrs: { type: 'button', 'data-focus': 'remove', 'aria-label': `${this.s.remove}: ${q.text.slice(0, 40)}` }, on: { click: () => void this.run(() => this.actions.removeQueued(q.id)) } }, this.s.remove),
			),
		);
	}

	private startEdit(id: string, text: string): void {
		this.editing = { id, original: text, text };
		this.draftChanged();
		this.renderQueue(this.meta!);
		this.editing?.element?.querySelector('textarea')?.focus();
	}

	private renderAttachments(): void {
		this.attachmentList.hidden = this.attachments.length === 0;
		this.attachmentList.replaceChildren(
			...this.attachments.map((a, i) => {
				const label = attachmentLabel(a, this.s);
				return h(
					'li',
					{ class: 'chip' },
					label,
					h(
						'button',
						{
							class: 'icon',
							attrs: { type: 'button', 'aria-label': format(this.s.removeAttachment, label) },
							on: {
								click: () => {
									this.attachments.splice(i, 1);
									this.renderAttachments();
									this.draftChanged();
									this.input.focus();
								},
							},
						},
						'×',
					),
				);
			}),
		);
	}

	private async attachSelection(): Promise<void> {
		await this.run(async () => {
			const a = await this.actions.attachSelection();
			this.attachments.push(a);
			this.renderAttachments();
			this.draftChanged();
		});
		this.input.focus();
	}

	private onKeyDown(e: KeyboardEvent): void {
		const open = !this.completions.hidden && this.items.length > 0;
		if (open && (e.key === 'ArrowDown' || e.key === 'ArrowUp')) {
			e.preventDefault();
			this.setActive((this.active + (e.key === 'ArrowDown' ? 1 : -1) + this.items.length) % this.items.length);
			return;
		}
		if (open && (e.key === 'Enter' || e.key === 'Tab') && !e.shiftKey) {
			e.preventDefault();
			this.accept(this.items[Math.max(0, this.active)]!);
			return;
		}
		if (open && e.key === 'Escape') {
			e.preventDefault();
			this.closeCompletion();
			return;
		}
		if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !e.altKey && !e.ctrlKey && !e.metaKey) {
			e.preventDefault();
			void this.send();
		}
	}

	private async send(): Promise<void> {
		const text = this.input.value;
		if (this.sending || (text.trim() === '' && this.attachments.length === 0)) {
			return;
		}
		// A mention the user deleted from the text is not sent.
		const attachments = this.attachments.filter((a) => a.kind !== 'file' || text.includes(`@${a.path}`));
		this.sending = true;
		this.closeCompletion();
		const ok = await this.run(() => this.actions.send({ text, attachments }));
		this.sending = false;
		if (ok && this.input.value === text) {
			this.noteLine.textContent = '';
			this.input.value = '';
			this.attachments = [];
			this.renderAttachments();
			this.draftChanged();
		}
	}

	private updateCompletion(): void {
		const trigger = triggerAt(this.input.value, this.input.selectionStart ?? this.input.value.length);
		this.trigger = trigger;
		if (!trigger) {
			this.closeCompletion();
			return;
		}
		const ticket = ++this.completionRequest;
		this.actions.complete(trigger.kind, trigger.query).then(
			(items) => {
				if (ticket === this.completionRequest) {
					this.showCompletion(items);
				}
			},
			() => ticket === this.completionRequest && this.closeCompletion(),
		);
	}

	private showCompletion(items: CompletionItem[]): void {
		this.items = items;
		if (items.length === 0) {
			this.closeCompletion();
			return;
		}
		this.completions.replaceChildren(
			...items.map((item, i) =>
				h(
					'li',
					{ attrs: { role: 'option', id: `${this.completions.id}-${i}`, 'aria-selected': 'false' }, on: { mousedown: (e) => (e.preventDefault(), this.accept(item)) } },
					h('span', { class: 'completion-label' }, item.label),
					item.detail ? h('span', { class: 'completion-detail' }, item.detail) : undefined,
				),
			),
		);
		this.completions.hidden = false;
		this.input.setAttribute('aria-expanded', 'true');
		this.setActive(0);
	}

	private setActive(i: number): void {
		this.active = i;
		this.completions.querySelectorAll('li').forEach((li, j) => li.setAttribute('aria-selected', String(i === j)));
		this.input.setAttribute('aria-activedescendant', `${this.completions.id}-${i}`);
		this.completions.children[i]?.scrollIntoView({ block: 'nearest' });
	}

	private closeCompletion(): void {
		this.items = [];
		this.active = -1;
		this.completions.hidden = true;
		this.completions.replaceChildren();
		this.input.setAttribute('aria-expanded', 'false');
		this.input.removeAttribute('aria-activedescendant');
	}

	private accept(item: CompletionItem): void {
		const trigger = this.trigger;
		if (!trigger) {
			return;
		}
		const value = this.input.value;
		const caret = this.input.selectionStart ?? value.length;
		const inserted = trigger.kind === 'commands' ? `/${item.insertText} ` : `@${item.insertText} `;
		this.input.value = value.slice(0, trigger.start) + inserted + value.slice(caret);
		const at = trigger.start + inserted.length;
		this.input.setSelectionRange(at, at);
		if (trigger.kind === 'files' && !this.attachments.some((a) => a.kind === 'file' && a.path === item.insertText)) {
			this.attachments.push({ kind: 'file', path: item.insertText });
			this.renderAttachments();
		}
		this.closeCompletion();
		this.draftChanged();
		this.input.focus();
	}
}
