import { verifyBackfill, type Migration } from './migration';

/** The columns of a turn row a chat tab shows; a change to any of them is a change of the row. */
const turnShownColumns = ['agent', 'prompt', 'status', 'stop_reason', 'input_tokens', 'output_tokens', 'cost_usd', 'usage_json', 'checkpoint_before', 'checkpoint_after', 'error', 'started_at', 'ended_at'];
const messageShownColumns = ['kind', 'tool_call_id', 'content'];

const changed = (columns: readonly string[]): string => columns.map((c) => `NEW.${c} IS NOT OLD.${c}`).join(' OR ');

/**
 * A per-chat sequence stored with the transcript rows, so a chat tab that missed updates (hidden, reloaded,
 * the window restarted) asks for "rows changed since N" and gets exactly those from the database.
 * `chats.row_seq` is the chat's last number; every insert of a turn or message row, and every update that
 * changes what it shows, takes the next one and writes it on the row (`row_seq`). Triggers do the numbering,
 * so every writer (the recorder, start-up's "interrupted", the command line) numbers alike and a journal
 * replay numbers the same. Existing rows are numbered in transcript order: each turn, then its messages.
 */
export const chatRowSeq: Migration = {
	version: 6,
	name: 'chat row sequence',
	up(db) {
		const hasColumn = (table: string): boolean => db.all<{ name: string }>(`PRAGMA table_info(${table})`).some((c) => c.name === 'row_seq');
		for (const table of ['chats', 'turns', 'messages']) {
			if (!hasColumn(table)) {
				db.exec(`ALTER TABLE ${table} ADD COLUMN row_seq INTEGER NOT NULL DEFAULT 0`);
			}
		}
		db.exec(`
DROP TABLE IF EXISTS temp.row_seq_order;
CREATE TEMP TABLE row_seq_order AS
SELECT kind, id, chat_id, ROW_NUMBER() OVER (PARTITION BY chat_id ORDER BY turn_seq, part, created_at, id) AS n FROM (
	SELECT 'turn' AS kind, id, chat_id, seq AS turn_seq, -1 AS part, started_at AS created_at FROM turns
	UNION ALL
	SELECT 'message', m.id, t.chat_id, t.seq, m.seq, m.created_at FROM messages m JOIN turns t ON t.id = m.turn_id
);
UPDATE turns SET row_seq = COALESCE((SELECT n FROM row_seq_order o WHERE o.kind = 'turn' AND o.id = turns.id), 0);
UPDATE messages SET row_seq = COALESCE((SELECT n FROM row_seq_order o WHERE o.kind = 'message' AND o.id = messages.id), 0);
UPDATE chats SET row_seq = COALESCE((SELECT max(n) FROM row_seq_order o WHERE o.chat_id = chats.id), 0);
DROP TABLE temp.row_seq_order;`);
		verifyBackfill(this.name, {
			'turns without a number': db.count(`SELECT count(*) AS n FROM turns WHERE row_seq < 1`),
			'messages without a number': db.count(`SELECT count(*) AS n FROM messages WHERE row_seq < 1`),
			'numbers used twice in a chat': db.count(`
SELECT count(*) AS n FROM (
	SELECT chat_id, row_seq FROM (SELECT chat_id, row_seq FROM turns UNION ALL SELECT t.chat_id, m.row_seq FROM messages m JOIN turns t ON t.id = m.turn_id)
	GROUP BY chat_id, row_seq HAVING count(*) > 1)`),
			'chats whose last number is not their highest row': db.count(`
SELECT count(*) AS n FROM chats c WHERE c.row_seq <> COALESCE((SELECT max(s) FROM (
	SELECT row_seq AS s FROM turns WHERE chat_id = c.id UNION ALL SELECT m.row_seq FROM messages m JOIN turns t ON t.id = m.turn_id WHERE t.chat_id = c.id)), 0)`),
		});
		const bump = (chatOf: string, table: string): string => `
	UPDATE chats SET row_seq = row_seq + 1 WHERE id = ${chatOf};
	UPDATE ${table} SET row_seq = (SELECT row_seq FROM chats WHERE id = ${chatOf}) WHERE id = NEW.id;`;
		const turnChat = 'NEW.chat_id';
		const messageChat = '(SELECT chat_id FROM turns WHERE id = NEW.turn_id)';
		db.exec(`
DROP TRIGGER IF EXISTS turns_row_seq_insert;
DROP TRIGGER IF EXISTS turns_row_seq_update;
DROP TRIGGER IF EXISTS messages_row_seq_insert;
DROP TRIGGER IF EXISTS messages_row_seq_update;
CREATE TRIGGER turns_row_seq_insert AFTER INSERT ON turns BEGIN${bump(turnChat, 'turns')}
END;
CREATE TRIGGER turns_row_seq_update AFTER UPDATE OF ${turnShownColumns.join(', ')} ON turns WHEN ${changed(turnShownColumns)} BEGIN${bump(turnChat, 'turns')}
END;
CREATE TRIGGER messages_row_seq_insert AFTER INSERT ON messages BEGIN${bump(messageChat, 'messages')}
END;
CREATE TRIGGER messages_row_seq_update AFTER UPDATE OF ${messageShownColumns.join(', ')} ON messages WHEN ${changed(messageShownColumns)} BEGIN${bump(messageChat, 'messages')}
END;
CREATE INDEX IF NOT EXISTS turns_by_row_seq ON turns(chat_id, row_seq);
CREATE INDEX IF NOT EXISTS messages_by_row_seq ON messages(turn_id, row_seq);`);
	},
};
