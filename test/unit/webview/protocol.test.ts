/**
 * The host <-> webview contract in plain Node: the row model's sequence rules, tab state, the page's CSP,
 * and the host messenger talking to the app's RPC client over an in-memory transport (both real code).
 */
import * as assert from 'node:assert/strict';
import { AgentTabsError } from '../../../src/common/errors';
import { Emitter } from '../../../src/common/event';
import { ChatRowModel, collapseUpdates } from '../../../src/protocol/chatSync';
import { draftAttachments, isPromptPayload, isWebviewToHost, maxAttachments, maxTextLength, protocolVersion, requestParamsProblem, readChatTabState, type ChatRow, type ChatSnapshot, type HostToWebview, type RowUpdate, type WebviewToHost } from '../../../src/protocol/messages';
import { RpcClient, RpcError } from '../../../src/protocol/rpcClient';
import { chatHtml, inlineJson, newNonce } from '../../../src/webview/host/html';
import { WebviewMessenger, type MessageTransport } from '../../../src/webview/host/messenger';
import { messengerStrings, untranslated, type VsCodeL10n } from '../../../src/webview/host/chatStrings';
import { ensureNoDisposablesLeaked, MemoryLogger } from '../helpers';

const meta = { chatId: 'c', title: 'T', agent: 'a', agentLabel: 'A', status: 'idle' as const, modes: { available: [] }, models: { available: [] }, commands: [], queue: [], closed: false };
const text = (id: string, t: string): ChatRow => ({ id, turnId: 't1', kind: 'text', text: t });
const snapshot = (rows: ChatRow[], seq: number, epoch = 'e1'): ChatSnapshot => ({ chatId: 'c', epoch, seq, rows, meta });
const update = (seq: number, row: ChatRow, op: RowUpdate['op'] = 'append', epoch = 'e1'): RowUpdate => ({ chatId: 'c', epoch, seq, op, row });

suite('protocol: chat rows by sequence number', () => {
	test('appends the next seq, replaces a changed row in place, ignores what it has seen', () => {
		const m = new ChatRowModel();
		m.reset(snapshot([text('r1', 'a')], 3));
		assert.deepEqual(m.apply(update(4, text('r2', 'b'))), { kind: 'appended', row: text('r2', 'b') });
		assert.deepEqual(m.apply(update(5, text('r1', 'a longer'), 'change')), { kind: 'changed', row: text('r1', 'a longer') });
		assert.equal(m.apply(update(5, text('r1', 'old'), 'change')).kind, 'stale');
		assert.equal(m.apply(update(2, text('r9', 'old'))).kind, 'stale');
		assert.deepEqual(
			m.rows.map((r) => (r.kind === 'text' ? r.text : '')),
			['a longer', 'b'],
		);
		assert.equal(m.seq, 5);
	});

	test('a streamed row sent as what it adds (textFrom) applies after the text held; a view holding other text has a gap', () => {
		const m = new ChatRowModel();
		m.reset(snapshot([text('r1', 'Hello')], 3));
		assert.deepEqual(m.apply({ ...update(4, text('r1', ', world'), 'change'), textFrom: 5 }), { kind: 'changed', row: text('r1', 'Hello, world') });
		assert.equal(m.apply({ ...update(5, text('r1', '!'), 'change'), textFrom: 5 }).kind, 'gap', 'the view holds 12 characters, not 5');
		assert.equal(m.apply({ ...update(5, { id: 'r1', turnId: 't1', kind: 'reasoning', text: '!' }, 'change'), textFrom: 12 }).kind, 'gap', 'not the same kind of row');
		assert.equal(m.apply({ ...update(5, text('r9', '!'), 'change'), textFrom: 0 }).kind, 'gap', 'a row it does not hold');
		assert.equal(m.seq, 4, 'nothing applied');
		assert.deepEqual(m.catchUp([{ ...update(5, text('r1', '?'), 'change'), textFrom: 3 }]), [{ kind: 'epoch' }], 'in a catch-up: only a snapshot can say');
		assert.deepEqual(m.rows, [text('r1', 'Hello, world')]);
	});

	test("a long chat's rows not taken in yet: an update of one waits for its slice (numbered, not shown), a row held or after them applies", () => {
		const at = (row: ChatRow, turn: number, n: number): ChatRow => ({ ...row, order: [turn, n] });
		const m = new ChatRowModel();
		m.reset({ ...snapshot([at(text('b1', 'late'), 5, 0)], 3), earlierBefore: 5 });
		assert.equal(m.apply(update(4, at(text('a1', 'early'), 2, 0))).kind, 'later');
		assert.equal(m.apply({ ...update(5, at(text('a1', '!'), 2, 0), 'change'), textFrom: 5 }).kind, 'later', 'not a gap: its slice has its text');
		assert.deepEqual(m.catchUp([update(6, at(text('a2', 'x'), 3, 0)), update(7, at(text('b1', 'later'), 5, 0), 'change')]).map((o) => o.kind), ['changed']);
		assert.equal(m.seq, 7);
		assert.deepEqual(m.rows.map((r) => r.id), ['b1']);
		assert.deepEqual(m.addEarlier([at(text('a1', 'early!'), 2, 0), at(text('a2', 'x'), 3, 0)], 2), { added: [at(text('a1', 'early!'), 2, 0), at(text('a2', 'x'), 3, 0)], changed: [] });
		assert.equal(m.apply(update(8, at(text('a1', 'early!?'), 2, 0), 'change')).kind, 'changed', 'taken in now');
		assert.equal(m.apply(update(9, at(text('z1', 'first'), 1, 0))).kind, 'later');
		assert.deepEqual(m.rows.map((r) => r.id), ['a1', 'a2', 'b1']);
	});

	test('a gap or another epoch is reported, and changes nothing', () => {
		const m = new ChatRowModel();
		m.reset(snapshot([text('r1', 'a')], 3));
		assert.equal(m.apply(update(5, text('r2', 'b'))).kind, 'gap');
		assert.equal(m.apply(update(4, text('r2', 'b'), 'append', 'e2')).kind, 'epoch');
		assert.equal(m.seq, 3);
		assert.equal(m.rows.length, 1);
	});

	test('numbers may skip: an update applies when the view has the one before it (prevSeq), else it is a gap', () => {
		const m = new ChatRowModel();
		m.reset(snapshot([text('r1', 'a')], 3));
		assert.equal(m.apply({ ...update(7, text('r2', 'b')), prevSeq: 3 }).kind, 'appended', '4 to 6 were changes nobody sees');
		assert.equal(m.seq, 7);
		assert.equal(m.apply({ ...update(12, text('r3', 'c')), prevSeq: 9 }).kind, 'gap', 'the update numbered 9 was missed');
		assert.equal(m.rows.length, 2);
		// A resync read up to 10 answers the rows changed since 7, and the view has everything up to 10.
		m.catchUp([{ ...update(9, text('r2', 'b2'), 'change') }], 10);
		assert.equal(m.seq, 10);
		assert.equal(m.apply({ ...update(12, text('r3', 'c')), prevSeq: 9 }).kind, 'appended', 'what it waited for came with the resync');
	});

	test('a row new to the view goes where its order says, not where it arrives', () => {
		const at = (id: string, order: [number, number]): ChatRow => ({ ...text(id, id), order });
		const m = new ChatRowModel();
		m.reset(snapshot([at('turn1', [1, -1]), at('t1m0', [1, 0]), at('note', [1, Number.MAX_SAFE_INTEGER]), at('turn2', [2, -1])], 1));
		// Turn 1's message 1 was created before message 2 but changed after it, so it arrives last.
		assert.deepEqual(m.apply(update(2, at('t1m2', [1, 2]))), { kind: 'appended', row: at('t1m2', [1, 2]) });
		assert.equal(m.indexOf('t1m2'), 2);
		assert.deepEqual(m.apply(update(3, at('t1m1', [1, 1]))), { kind: 'appended', row: at('t1m1', [1, 1]) });
		assert.equal(m.indexOf('t1m1'), 2);
		assert.deepEqual(m.apply(update(4, at('t2m0', [2, 0]))).kind, 'appended');
		assert.deepEqual(
			m.rows.map((r) => r.id),
			['turn1', 't1m0', 't1m1', 't1m2', 'note', 'turn2', 't2m0'],
		);
		assert.equal(m.get('t1m2')?.id, 't1m2', 'rows moved by an insertion are still found by id');
		assert.deepEqual(m.apply(update(5, { ...at('t1m2', [1, 2]), text: 'changed' } as ChatRow, 'change')), { kind: 'changed', row: { ...at('t1m2', [1, 2]), text: 'changed' } });
		assert.equal(m.indexOf('t1m2'), 3);
		// A catch-up in the host's order (each row's newest number): turn 3's header, numbered again after its
		// message, comes last and goes first.
		m.catchUp([update(7, at('t3m0', [3, 0])), update(8, at('turn3', [3, -1]))], 8);
		assert.deepEqual(m.rows.slice(-2).map((r) => r.id), ['turn3', 't3m0']);
		assert.equal(m.indexOf('t3m0'), m.rows.length - 1, 'indexOf says where a row is after the whole catch-up');
	});

	test('collapseUpdates keeps the newest update per row after sinceSeq, in order', () => {
		const log = [update(1, text('a', '1')), update(2, text('b', '1')), update(3, text('a', '12'), 'change'), update(4, text('c', '1'))];
		// Row a changed after b appeared: it keeps its place (first) with its newest text and number.
		assert.deepEqual(
			collapseUpdates(log, 0).map((u) => [u.row.id, u.seq, u.op]),
			[['a', 3, 'append'], ['b', 2, 'append'], ['c', 4, 'append']],
		);
		assert.deepEqual(
			collapseUpdates(log, 1).map((u) => [u.row.id, u.seq, u.op]),
			[['b', 2, 'append'], ['a', 3, 'change'], ['c', 4, 'append']],
		);
		// Replaying the collapsed updates onto the state at seq 1 gives the same rows as replaying everything.
		const full = new ChatRowModel();
		full.reset(snapshot([], 0));
		log.forEach((u) => full.apply(u));
		const partial = new ChatRowModel();
		partial.reset(snapshot([text('a', '1')], 1));
		// A collapsed list skips seqs; catchUp accepts it because the host says these are all that is missing.
		assert.equal(partial.catchUp(collapseUpdates(log, 1)).length, 3);
		assert.deepEqual(partial.rows, full.rows);
		assert.equal(partial.seq, 4);
		const fresh = new ChatRowModel();
		fresh.reset(snapshot([], 0));
		fresh.catchUp(collapseUpdates(log, 0));
		assert.deepEqual(fresh.rows, full.rows, 'a row appended then changed keeps its place');
		assert.equal(partial.catchUp([update(9, text('z', 'x'), 'append', 'e2')]).at(-1)?.kind, 'epoch');
	});
});

suite('protocol: tab state and message shapes', () => {
	test('tab state of this version is read; anything else is discarded, never thrown', () => {
		assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', draft: 'hi' }), { v: 1, chatId: 'c', draft: 'hi' });
		assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', draft: '' }), { v: 1, chatId: 'c' });
		const attachments = [{ kind: 'file', path: 'src/a.ts' }, { kind: 'selection', path: 'b.ts', startLine: 1, endLine: 2, text: 'x' }];
		assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', draft: 'see', attachments }), { v: 1, chatId: 'c', draft: 'see', attachments });
		assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', attachments: [] }), { v: 1, chatId: 'c' });
		// Attachments that are not well formed are dropped; the tab keeps its chat and draft.
		assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', draft: 'see', attachments: [{ kind: 'selection', path: 'b.ts' }, attachments[0]] }), { v: 1, chatId: 'c', draft: 'see', attachments: [attachments[0]] });
		assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', draft: 'see', attachments: 'x' }), { v: 1, chatId: 'c', draft: 'see' });
		// Where the reader was: kept when well formed, dropped (the tab opens at the bottom) otherwise.
		assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', scroll: { rowId: 'r1', offset: -12 } }), { v: 1, chatId: 'c', scroll: { rowId: 'r1', offset: -12 } });
		for (const scroll of [{ rowId: '', offset: 0 }, { rowId: 'r1', offset: Number.NaN }, { rowId: 'r1' }, { rowId: 7, offset: 0 }, 'r1', null]) {
			assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', draft: 'see', scroll }), { v: 1, chatId: 'c', draft: 'see' }, JSON.stringify(scroll));
		}
		// An unsaved edit of a queued message: kept when well formed, dropped otherwise; a request carrying a bad one is refused.
		const queueEdit = { queueId: 'q1', original: 'say second', text: 'say second, edited' };
		assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', queueEdit }), { v: 1, chatId: 'c', queueEdit });
		for (const bad of [{ ...queueEdit, queueId: '' }, { ...queueEdit, text: 7 }, { queueId: 'q1', text: 'x' }, { ...queueEdit, text: 'x'.repeat(maxTextLength + 1) }, 'q1', null]) {
			assert.deepEqual(readChatTabState({ v: 1, chatId: 'c', draft: 'see', queueEdit: bad }), { v: 1, chatId: 'c', draft: 'see' }, JSON.stringify(bad).slice(0, 80));
			assert.match(requestParamsProblem('chat/saveDraft', { chatId: 'c', draft: '', queueEdit: bad }) ?? '', /queued edit/, JSON.stringify(bad).slice(0, 80));
		}
		assert.equal(requestParamsProblem('chat/saveDraft', { chatId: 'c', draft: '', queueEdit }), undefined);
		const huge = { kind: 'selection', path: 'b.ts', startLine: 1, endLine: 1, text: 'x'.repeat(maxTextLength + 1) };
		assert.deepEqual(draftAttachments([huge, attachments[1], 7]), [attachments[1]], 'a draft keeps what it can of its attachments');
		assert.equal(draftAttachments(Array.from({ length: maxAttachments + 5 }, () => attachments[0])).length, maxAttachments);
		for (const bad of [undefined, null, 'x', 3, {}, { v: 2, chatId: 'c' }, { v: 1 }, { v: 1, chatId: 7 }, { v: 1, chatId: 'c', draft: 5 }]) {
			assert.equal(readChatTabState(bad), undefined, JSON.stringify(bad));
		}
	});

	test('a prompt from a webview is checked field by field', () => {
		assert.ok(isPromptPayload({ text: 'hi', attachments: [] }));
		assert.ok(isPromptPayload({ text: '', attachments: [{ kind: 'file', path: 'a.ts' }, { kind: 'selection', path: 'a.ts', startLine: 1, endLine: 2, text: 'x' }] }));
		for (const bad of [null, 'hi', { text: 'hi' }, { text: 1, attachments: [] }, { text: 'hi', attachments: [null] }, { text: 'hi', attachments: [{ kind: 'file', path: '' }] }, { text: 'hi', attachments: [{ kind: 'selection', path: 'a', startLine: 1 }] }, { text: 'hi', attachments: [{ kind: 'image', path: 'a' }] }]) {
			assert.equal(isPromptPayload(bad), false, JSON.stringify(bad));
		}
	});

	test("a request's parameters are checked field by field, sizes included, before its handler runs", () => {
		assert.equal(requestParamsProblem('chat/setMode', { chatId: 'c', modeId: 'plan' }), undefined);
		assert.equal(requestParamsProblem('chat/setConfigOption', { chatId: 'c', configId: 'effort', value: 'high' }), undefined);
		assert.equal(requestParamsProblem('chat/open', { chatId: 'c', sinceSeq: 4, epoch: 'row_seq' }), undefined);
		assert.equal(requestParamsProblem('chat/earlierRows', { chatId: 'c', before: 251 }), undefined);
		assert.equal(requestParamsProblem('no/such', undefined), undefined, 'an unknown method is answered as unknown elsewhere');
		const cases: [string, unknown, RegExp][] = [
			['chat/cancel', undefined, /parameters are missing/],
			['chat/setMode', { chatId: 'c' }, /modeId is not text/],
			['chat/setModel', { chatId: 'c', modelId: 7 }, /modelId is not text/],
			['chat/setConfigOption', { chatId: 'c', configId: 'effort', value: true }, /value is not text/],
			['chat/setConfigOption', { chatId: 'c', value: 'high' }, /configId is not text/],
			['chat/open', { chatId: 'c', sinceSeq: '4' }, /sinceSeq is not a count/],
			['chat/open', { chatId: 'c', sinceSeq: -1 }, /sinceSeq is not a count/],
			['chat/earlierRows', { chatId: 'c' }, /before is not a turn number/],
			['chat/earlierRows', { chatId: 'c', before: 2.5 }, /before is not a turn number/],
			['chat/earlierRows', { chatId: 'c', before: '3' }, /before is not a turn number/],
			['chat/saveDraft', { chatId: 'c', draft: 'x', attachments: 'x' }, /attachments are not a list/],
			['queue/edit', { chatId: 'c', queueId: 'q', text: 'x'.repeat(maxTextLength + 1) }, /text is too long/],
			['permission/answer', { chatId: 'c', requestId: 'r'.repeat(5000), optionId: 'o' }, /requestId is too long/],
			['chat/send', { chatId: 'c', prompt: { text: 'x'.repeat(maxTextLength + 1), attachments: [] } }, /prompt/],
			['chat/send', { chatId: 'c', prompt: { text: 'x', attachments: Array.from({ length: maxAttachments + 1 }, () => ({ kind: 'file', path: 'a' })) } }, /prompt/],
		];
		for (const [method, params, problem] of cases) {
			assert.match(requestParamsProblem(method, params) ?? '', problem, `${method} ${JSON.stringify(params)?.slice(0, 80)}`);
		}
	});

	test('messages from a webview are shape-checked before dispatch', () => {
		assert.ok(isWebviewToHost({ kind: 'ready', protocol: 2, view: 'chat' }));
		assert.ok(isWebviewToHost({ kind: 'request', id: 1, method: 'chat/open', params: {} }));
		for (const bad of [null, 'ready', {}, { kind: 'request', id: '1', method: 'x' }, { kind: 'cancel' }, { kind: 'notify', method: 'x' }]) {
			assert.equal(isWebviewToHost(bad), false, JSON.stringify(bad));
		}
	});
});

suite('webview/host: the page', () => {
	test('a strict CSP with a fresh nonce, and a bootstrap no agent text can break out of', () => {
		const nonce = newNonce();
		assert.equal(Buffer.from(nonce, 'base64').length, 16);
		assert.notEqual(newNonce(), nonce);
		const hostile = '</script><script>alert(1)</script>\u2028';
		const html = chatHtml({
			cspSource: 'vscode-webview://x',
			scriptUri: 'vscode-webview://x/chat.js',
			styleUri: 'vscode-webview://x/chat.css',
			nonce,
			bootstrap: { chatId: hostile, strings: {} as never },
		});
		const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)?.[1] ?? '';
		assert.match(csp, /^default-src 'none'; /);
		assert.match(csp, new RegExp(`script-src 'nonce-${nonce.replace(/[+/]/g, '\\$&')}'`));
		assert.doesNotMatch(csp, /unsafe-(inline|eval)/);
		assert.equal(html.match(/<script/g)?.length, 2, 'only the bootstrap and the app script');
		assert.ok(!html.includes('</script><script>alert'), 'the bootstrap closed its script element');
		assert.deepEqual(JSON.parse(inlineJson({ s: hostile })), { s: hostile });
	});
});

/** A webview and its host joined in memory: each side's posts arrive at the other asynchronously, as JSON. */
class Pair {
	private readonly toHost = new Emitter<unknown>((e) => { throw e; });
	client: RpcClient;
	readonly fromHost: HostToWebview[] = [];
	connected = true;
	readonly transport: MessageTransport = {
		postMessage: (m) => {
			const copy = JSON.parse(JSON.stringify(m)) as HostToWebview;
			this.fromHost.push(copy);
			if (this.connected) {
				setImmediate(() => this.client.receive(copy));
			}
			return Promise.resolve(true);
		},
		onDidReceiveMessage: (listener) => this.toHost.event(listener),
	};

	constructor() {
		this.client = this.newPage();
	}

	/** A new page in the same webview (a hidden tab shown again): a fresh client numbering requests from 1. */
	reload(): RpcClient {
		this.client = this.newPage();
		return this.client;
	}

	private newPage(): RpcClient {
		return new RpcClient((m: WebviewToHost) => setImmediate(() => this.toHost.fire(JSON.parse(JSON.stringify(m)))));
	}

	send(raw: unknown): void {
		this.toHost.fire(raw);
	}

	dispose(): void {
		this.toHost.dispose();
	}
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

suite('webview/host: messenger and app client over an in-memory transport', () => {
	let pair: Pair;
	let messenger: WebviewMessenger;
	let logger: MemoryLogger;

	// Registered before the leak check so it runs first (mocha runs teardowns in order).
	teardown(() => {
		messenger.dispose();
		pair.dispose();
	});
	ensureNoDisposablesLeaked();
	setup(() => {
		pair = new Pair();
		logger = new MemoryLogger();
		messenger = new WebviewMessenger(pair.transport, logger);
	});

	test('a request gets its typed result; host errors keep their code and plain words', async () => {
		messenger.handle('chat/send', (p) => ({ queued: p.prompt.text === 'later' }));
		messenger.handle('queue/remove', () => {
			throw new AgentTabsError('queue/gone', 'That message was already sent or removed.');
		});
		messenger.handle('chat/cancel', () => {
			throw new Error('boom at /secret/path');
		});
		assert.deepEqual(await pair.client.request('chat/send', { chatId: 'c', prompt: { text: 'later', attachments: [] } }), { queued: true });
		await assert.rejects(pair.client.request('queue/remove', { chatId: 'c', queueId: 'q' }), (e: unknown) => e instanceof RpcError && e.code === 'queue/gone' && e.message === 'That message was already sent or removed.');
		await assert.rejects(pair.client.request('chat/cancel', { chatId: 'c' }), (e: unknown) => e instanceof RpcError && e.code === 'internal' && !('stack' in (pair.fromHost.at(-1) as { error: object }).error));
		assert.ok(logger.lines.some((l) => l.startsWith('error') && l.includes('boom')), 'an internal error is logged');
		await assert.rejects(pair.client.request('turn/rewind', { chatId: 'c', turnId: 't' }), (e: unknown) => e instanceof RpcError && e.code === 'unknownMethod');
	});

	test("the messenger's own answers are in the user's language", async () => {
		messenger.dispose();
		// A translation that marks every string, as vscode.l10n would with a language pack.
		const marked = { l10n: { t: (message: string, ...args: unknown[]) => `«${untranslated.l10n.t(message, ...(args as string[]))}»` } } as unknown as VsCodeL10n;
		messenger = new WebviewMessenger(pair.transport, logger, '[test]', messengerStrings(marked));
		await assert.rejects(pair.client.request('turn/rewind', { chatId: 'c', turnId: 't' }), (e: unknown) => e instanceof RpcError && e.code === 'unknownMethod' && e.message === '«Unknown request "turn/rewind".»');
		messenger.handle('chat/cancel', () => null);
		await assert.rejects(pair.client.request('chat/cancel', { chatId: 42 } as never), (e: unknown) => e instanceof RpcError && e.code === 'badRequest' && e.message.startsWith('«The request was not in a form') && e.message.endsWith('nothing was done.»'));
	});

	test('each request is answered exactly once, in any order', async () => {
		let release: () => void = () => undefined;
		messenger.handle('complete/files', async (p) => {
			if (p.query === 'slow') {
				await new Promise<void>((r) => (release = r));
			}
			return [{ insertText: p.query, label: p.query }];
		});
		const slow = pair.client.request('complete/files', { chatId: 'c', query: 'slow' });
		const fast = await pair.client.request('complete/files', { chatId: 'c', query: 'fast' });
		assert.equal(fast[0]!.label, 'fast');
		release();
		assert.equal((await slow)[0]!.label, 'slow');
		assert.equal(pair.fromHost.filter((m) => m.kind === 'response').length, 2);
	});

	test('notifications wait for ready; a protocol mismatch is reported; malformed input is ignored', async () => {
		const readies: boolean[] = [];
		const sub = messenger.onDidReady((r) => readies.push(r.protocolMatches));
		assert.equal(messenger.notify('chat/didChangeMeta', meta), false, 'nothing is posted before the app said ready');
		pair.client.ready('chat');
		await tick();
		assert.equal(messenger.notify('chat/didChangeMeta', meta), true);
		pair.send({ kind: 'ready', protocol: protocolVersion - 1, view: 'chat' });
		pair.send({ kind: 'request', id: 'x' });
		pair.send('garbage');
		await tick();
		assert.deepEqual(readies, [true, false]);
		assert.equal(logger.lines.filter((l) => l.includes('malformed')).length, 2);
		assert.equal(pair.fromHost.filter((m) => m.kind === 'notify').length, 1);
		sub.dispose();
	});

	test('cancel aborts the handler and the reply says cancelled', async () => {
		let aborted = false;
		messenger.handle('turn/rewindPreview', (_p, signal) => new Promise((resolve) => signal.addEventListener('abort', () => ((aborted = true), resolve({ turnId: 't', number: 1, files: [], laterTurns: 0 })))));
		const pending = pair.client.request('turn/rewindPreview', { chatId: 'c', turnId: 't' });
		await tick();
		await tick();
		pair.send({ kind: 'cancel', id: 1 });
		await assert.rejects(pending, (e: unknown) => e instanceof RpcError && e.code === 'cancelled');
		assert.ok(aborted);
	});

	test("a reloaded page gets only its own replies, never the page before's under the same number", async () => {
		let release: () => void = () => undefined;
		let sends = 0;
		// A handler that does not watch its signal (an agent starting): it ends after the page that asked is gone.
		messenger.handle('chat/setModel', () => new Promise<null>((resolve) => (release = () => resolve(null))));
		messenger.handle('chat/send', () => ({ queued: ++sends > 0 }));
		pair.client.ready('chat');
		const old = pair.client;
		void old.request('chat/setModel', { chatId: 'c', modelId: 'm' }).catch(() => undefined); // request 1 of the old page
		await tick();
		await tick();
		const page = pair.reload();
		page.ready('chat');
		await tick();
		// The new page's request 1, while the old page's request 1 is still being answered (then cancelled).
		const sent = page.request('chat/send', { chatId: 'c', prompt: { text: 'hi', attachments: [] } });
		release();
		assert.deepEqual(await sent, { queued: true }, 'the send is answered as sent, not "Cancelled." (which would have the user send it again)');
		await tick();
		await tick();
		const replies = pair.fromHost.filter((m) => m.kind === 'response');
		assert.equal(replies.length, 1, `one reply, the new page's: ${JSON.stringify(replies)}`);
		assert.equal(sends, 1);
	});

	test('a view that misses a row update notices the gap and resyncs from the host', async () => {
		// The host side: rows in a log with seq numbers, answering chat/open like the chat service does.
		const log: RowUpdate[] = [];
		let rows: ChatRow[] = [];
		const publish = (row: ChatRow): void => {
			const op = rows.some((r) => r.id === row.id) ? 'change' : 'append';
			rows = op === 'change' ? rows.map((r) => (r.id === row.id ? row : r)) : [...rows, row];
			const u = update(log.length + 1, row, op);
			log.push(u);
			messenger.notify('chat/didUpdateRow', u);
		};
		messenger.handle('chat/open', (p) =>
			p.sinceSeq !== undefined && p.epoch === 'e1' ? { kind: 'updates', updates: collapseUpdates(log, p.sinceSeq), meta } : { kind: 'snapshot', snapshot: snapshot(rows, log.length) },
		);
		// The view side: the same model and resync rule as the app.
		const model = new ChatRowModel();
		let resyncs = 0;
		const resync = async (): Promise<void> => {
			resyncs++;
			const r = await pair.client.request('chat/open', { chatId: 'c', sinceSeq: model.seq, epoch: model.epoch });
			if (r.kind === 'snapshot') {
				model.reset(r.snapshot);
			} else {
				model.catchUp(r.updates);
			}
		};
		pair.client.on('chat/didUpdateRow', (u) => {
			if (['gap', 'epoch'].includes(model.apply(u).kind)) {
				void resync();
			}
		});
		pair.client.ready('chat');
		await tick();
		const first = await pair.client.request('chat/open', { chatId: 'c' });
		assert.equal(first.kind, 'snapshot');
		model.reset((first as { snapshot: ChatSnapshot }).snapshot);

		publish(text('r1', 'Hel'));
		publish(text('r1', 'Hello'));
		await tick();
		pair.connected = false; // hidden: these are dropped
		publish(text('r2', 'lost'));
		publish(text('r1', 'Hello there'));
		pair.connected = true;
		publish(text('r3', 'after'));
		await new Promise((r) => setTimeout(r, 20));
		assert.equal(resyncs, 1);
		assert.deepEqual(model.rows, rows);
		assert.equal(model.seq, log.length);
	});
});
