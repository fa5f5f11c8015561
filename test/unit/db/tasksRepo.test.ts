import * as assert from 'node:assert/strict';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import type { Store } from '../../../src/db/store';
import { taskInput, taskNewSession, TasksRepo } from '../../../src/db/tasksRepo';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { openStore, removeDir, tempDir } from '../helpers';

suite('db/tasksRepo', () => {
	let dir: string;
	let store: Store;
	let tasks: TasksRepo;
	let chatId: string;
	let sessionId: string;
	let clock: number;

	setup(async () => {
		dir = tempDir();
		store = await openStore(dir);
		clock = 1000;
		tasks = new TasksRepo(store, () => clock++);
		const sessions = new SessionsRepo(store);
		sessionId = sessions.create({ title: 's' }).id;
		chatId = sessions.createChat({ sessionId, agent: 'a' }).id;
	});

	teardown(async () => {
		await store.close();
		removeDir(dir);
	});

	test('each transition happens once: claim, end, cancel', () => {
		const t = tasks.create({ creator: 'cli', agent: 'a', chatId, sessionId, input: { text: 'p' } });
		assert.equal(t.status, 'queued');
		assert.equal(tasks.claim(t.id)?.status, 'running');
		assert.equal(tasks.claim(t.id), undefined, 'a task is claimed once');
		assert.equal(tasks.cancelQueued(t.id), false, 'a running task is not cancelled as if queued');
		const turn = new TranscriptRepo(store).startTurn({ chatId, agent: 'a', prompt: 'p' });
		assert.equal(tasks.setTurn(t.id, turn.id), true);
		assert.equal(tasks.finish(t.id, { status: 'done', result: 'ok' }), true);
		assert.equal(tasks.finish(t.id, { status: 'failed', error: 'late' }), false, 'a task ends once');
		const row = tasks.get(t.id)!;
		assert.deepEqual({ status: row.status, result: row.result, error: row.error, turn: row.turn_id }, { status: 'done', result: 'ok', error: null, turn: turn.id });
		assert.ok(row.started_at! < row.ended_at!);

		const q = tasks.create({ creator: 'cli', agent: 'a', chatId, input: { text: 'q' } });
		assert.equal(tasks.cancelQueued(q.id), true);
		assert.equal(tasks.claim(q.id), undefined, 'a cancelled task is never claimed');
		assert.equal(tasks.assignChat(q.id, chatId, sessionId), false);
		const f = tasks.create({ creator: 'mcp', agent: 'a', input: { text: 'f' }, newSession: { repo: '/r' } });
		assert.equal(tasks.failQueued(f.id, 'no chat'), true);
		assert.equal(tasks.get(f.id)?.status, 'failed');
	});

	test('ordering: queued by priority then creation order; list filters; recent is newest ended first', () => {
		const ids = [0, 2, 1, 2].map((priority, i) => tasks.create({ creator: 'skill', agent: 'a', chatId, input: { text: `t${i}` }, priority }).id);
		assert.deepEqual(tasks.queued().map((t) => t.id), [ids[1], ids[3], ids[2], ids[0]]);
		assert.deepEqual(tasks.list().map((t) => t.seq), [1, 2, 3, 4]);
		tasks.claim(ids[0]!);
		tasks.finish(ids[0]!, { status: 'failed', error: 'x' });
		tasks.cancelQueued(ids[2]!);
		assert.deepEqual(tasks.list({ status: ['failed', 'cancelled'] }).map((t) => t.id), [ids[0], ids[2]]);
		assert.deepEqual(tasks.list({ status: 'queued', chatId }).map((t) => t.id), [ids[1], ids[3]]);
		assert.deepEqual(tasks.list({ sessionId: 'nope' }), []);
		assert.deepEqual(tasks.list({ limit: 2 }).map((t) => t.id), [ids[2], ids[3]], 'the newest two, in order');
		assert.deepEqual(tasks.recent().map((t) => t.id), [ids[2], ids[0]]);
	});

	test('the whole prompt and the new-session request round-trip', () => {
		const input = { text: 'look', files: ['/w/a.ts'], images: [{ data: 'AAAA', mimeType: 'image/png' }] };
		const t = tasks.create({ creator: 'new_task', agent: 'a', input, newSession: { repo: '/repo', title: 'T', baseRef: 'main' } });
		const row = tasks.get(t.id)!;
		assert.equal(row.prompt, 'look');
		assert.deepEqual(taskInput(row), input);
		assert.deepEqual(taskNewSession(row), { repo: '/repo', title: 'T', baseRef: 'main' });
		const plain = tasks.get(tasks.create({ creator: 'cli', agent: 'a', chatId, input: { text: 'just text' } }).id)!;
		assert.equal(plain.input_json, null);
		assert.deepEqual(taskInput(plain), { text: 'just text' });
	});

	test('markInterrupted turns every running task interrupted, with a reason, and survives a reopen', async () => {
		const a = tasks.create({ creator: 'cli', agent: 'a', chatId, input: { text: 'a' } });
		const b = tasks.create({ creator: 'cli', agent: 'a', chatId, input: { text: 'b' } });
		tasks.claim(a.id);
		await store.durable();
		await store.close();
		store = await openStore(dir);
		tasks = new TasksRepo(store, () => clock++);
		assert.deepEqual(tasks.markInterrupted(), [a.id]);
		assert.deepEqual(tasks.markInterrupted(), [], 'a second call finds nothing');
		const row = tasks.get(a.id)!;
		assert.equal(row.status, 'interrupted');
		assert.match(row.error ?? '', /ended while this task was running/);
		assert.equal(tasks.get(b.id)?.status, 'queued');
	});

	test('retry: a new task pointing at the old one, once; only failed or interrupted tasks', () => {
		const t = tasks.create({ creator: 'arena', agent: 'a', chatId, sessionId, input: { text: 'go', files: ['/w/x'] }, priority: 4 });
		assert.throws(() => tasks.retry(t.id), /is queued; only failed or interrupted/);
		assert.throws(() => tasks.retry('task-nope'), /There is no task task-nope/);
		tasks.claim(t.id);
		tasks.finish(t.id, { status: 'failed', error: 'boom' });
		const r = tasks.retry(t.id);
		assert.deepEqual(
			{ status: r.status, parent: r.parent_task_id, attempt: r.attempt, chat: r.chat_id, session: r.session_id, priority: r.priority, creator: r.creator, input: taskInput(r) },
			{ status: 'queued', parent: t.id, attempt: 2, chat: chatId, session: sessionId, priority: 4, creator: 'arena', input: { text: 'go', files: ['/w/x'] } },
		);
		assert.throws(() => tasks.retry(t.id), new RegExp(`already retried as task ${r.id} \\(queued\\)`));
		assert.equal(tasks.list().length, 2);
		tasks.claim(r.id);
		tasks.finish(r.id, { status: 'interrupted' });
		assert.equal(tasks.retry(r.id).attempt, 3, 'a retry that was interrupted is retried in turn');
	});
});
