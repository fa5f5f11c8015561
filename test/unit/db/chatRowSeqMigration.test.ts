import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Database } from 'sql.js';
import { chatKeyedAgentSessions } from '../../../src/db/migrations/m0002ChatKeyedAgentSessions';
import { sessionRepoRoot } from '../../../src/db/migrations/m0003SessionRepoRoot';
import { worktreeIntentStates } from '../../../src/db/migrations/m0004WorktreeIntentStates';
import { taskDispatch } from '../../../src/db/migrations/m0005TaskDispatch';
import { allRows } from '../../../src/db/rows';
import { ChatNoticesRepo } from '../../../src/db/chatNoticesRepo';
import { storeFiles } from '../../../src/db/store';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { ensureNoDisposablesLeaked, openStore, removeDir, tempDir } from '../helpers';
import { migrationDb, typicalLegacyRows, writeLegacyDatabase } from './legacyFixture';

/**
 * The legacy rows brought to version 5 with the real steps, plus two chats with transcripts written out of
 * order (a later turn's rows first, messages before their turn's), as a crash-restarted writer could leave them.
 */
function toVersion5(extra = ''): (db: Database) => void {
	return (db) => {
		for (const step of [chatKeyedAgentSessions, sessionRepoRoot, worktreeIntentStates, taskDispatch]) {
			step.up(migrationDb(db));
		}
		db.exec(`PRAGMA user_version = 5;
INSERT INTO chats (id, session_id, title, agent, created_at, updated_at) VALUES ('ca', 's1', 'A', 'claude', 1, 1), ('cb', 's1', 'B', 'codex', 1, 1), ('empty', 's1', 'E', 'claude', 1, 1);
INSERT INTO turns (id, chat_id, agent, seq, prompt, status, started_at) VALUES ('a2', 'ca', 'claude', 2, 'p2', 'done', 20), ('a1', 'ca', 'claude', 1, 'p1', 'done', 10), ('b1', 'cb', 'codex', 1, 'q1', 'running', 15);
INSERT INTO messages (id, turn_id, seq, kind, content, created_at, updated_at) VALUES
	('a2m1', 'a2', 1, 'text', '{}', 21, 21), ('a2m0', 'a2', 0, 'user', '{}', 20, 20),
	('a1m2', 'a1', 2, 'text', '{}', 12, 12), ('a1m0', 'a1', 0, 'user', '{}', 10, 10), ('a1m1', 'a1', 1, 'tool_call', '{}', 11, 11),
	('b1m0', 'b1', 0, 'user', '{}', 15, 15);
${extra}`);
	};
}

suite('db/migrations: chat row sequence (step 6)', () => {
	ensureNoDisposablesLeaked();
	let dir: string;
	setup(() => {
		dir = tempDir();
	});
	teardown(() => removeDir(dir));

	test('a version 5 database numbers every transcript row per chat in transcript order, and then numbers each change', async () => {
		let before: Record<string, unknown>[] = [];
		await writeLegacyDatabase(dir, typicalLegacyRows, (db) => {
			toVersion5()(db);
			before = allRows(db, 'SELECT * FROM messages ORDER BY id');
		});
		const store = await openStore(dir);
		try {
			assert.deepEqual(store.recovery.migration.applied, ['chat row sequence', 'chat notices', 'agent settings']);
			const numbered = (chat: string): string[] =>
				store
					.all<{ id: string }>('SELECT id, row_seq FROM turns WHERE chat_id = ? UNION ALL SELECT m.id, m.row_seq FROM messages m JOIN turns t ON t.id = m.turn_id WHERE t.chat_id = ? ORDER BY row_seq', [chat, chat])
					.map((r) => r.id);
			assert.deepEqual(numbered('ca'), ['a1', 'a1m0', 'a1m1', 'a1m2', 'a2', 'a2m0', 'a2m1'], 'each turn, then its messages, turn by turn');
			assert.deepEqual(numbered('cb'), ['b1', 'b1m0']);
			assert.deepEqual(
				store.all('SELECT id, row_seq FROM chats WHERE id IN (\'ca\', \'cb\', \'empty\') ORDER BY id'),
				[
					{ id: 'ca', row_seq: 7 },
					{ id: 'cb', row_seq: 2 },
					{ id: 'empty', row_seq: 0 },
				],
			);
			assert.deepEqual(
				store.all('SELECT id, turn_id, seq, kind, tool_call_id, content, created_at, updated_at FROM messages ORDER BY id'),
				before.map(({ id, turn_id, seq, kind, tool_call_id, content, created_at, updated_at }) => ({ id, turn_id, seq, kind, tool_call_id, content, created_at, updated_at })),
				'every message is carried over unchanged',
			);

			// From now on every change takes the chat's next number.
			const repo = new TranscriptRepo(store);
			repo.writeMessages('a2', [{ id: 'a2m1', seq: 1, kind: 'text', toolCallId: null, content: '{"text":"more"}', createdAt: 21 }]);
			assert.equal(store.get<{ row_seq: number }>("SELECT row_seq FROM messages WHERE id = 'a2m1'")?.row_seq, 8, 'an update in place');
			repo.writeMessages('a2', [{ id: 'a2m1', seq: 1, kind: 'text', toolCallId: null, content: '{"text":"more"}', createdAt: 21 }]);
			assert.equal(repo.chatSeq('ca'), 8, 'writing the same content again is no change');
			repo.endTurn('b1', { status: 'done', stopReason: 'end_turn' });
			assert.equal(repo.getTurn('b1')?.row_seq, 3, 'a turn that ends changes its row');
			assert.equal(repo.chatSeq('cb'), 3, 'numbers are per chat');
			const turn = repo.startTurn({ chatId: 'empty', agent: 'claude', prompt: 'hi' });
			assert.equal(turn.row_seq, 1);
			assert.deepEqual(repo.listMessages(turn.id).map((m) => m.row_seq), [2]);
			assert.equal(new ChatNoticesRepo(store).add('empty', { kind: 'notice', severity: 'info', title: 'said' }).row_seq, 3, 'a chat-level row takes a number too');
			assert.deepEqual(
				repo.changedSince('ca', 7).map((c) => [c.turn.id, c.changed, c.messages.map((m) => m.id)]),
				[['a2', false, ['a2m1']]],
			);
		} finally {
			await store.close();
		}
	});

	test('a step half-applied before a crash completes cleanly', async () => {
		await writeLegacyDatabase(dir, typicalLegacyRows, toVersion5('ALTER TABLE chats ADD COLUMN row_seq INTEGER NOT NULL DEFAULT 0;'));
		const store = await openStore(dir);
		try {
			assert.equal(store.get<{ row_seq: number }>("SELECT row_seq FROM chats WHERE id = 'ca'")?.row_seq, 7);
		} finally {
			await store.close();
		}
	});

	test('a message whose turn is missing cannot be numbered: the step rolls back and leaves the file byte for byte', async () => {
		const bytes = await writeLegacyDatabase(dir, typicalLegacyRows, toVersion5("INSERT INTO messages (id, turn_id, seq, kind, content, created_at, updated_at) VALUES ('lost', 'no-such-turn', 0, 'text', '{}', 1, 1);"));
		await assert.rejects(openStore(dir), /could not account for every existing row \(1 messages without a number\)/);
		assert.deepEqual(fs.readFileSync(path.join(dir, storeFiles.snapshot)), bytes);
	});
});
