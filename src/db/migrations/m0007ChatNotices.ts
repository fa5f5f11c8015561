import type { Migration } from './migration';

/**
 * Chat-level rows that no turn holds: a send that never became a turn (the agent is not installed, needs a
 * key), an agent that stopped between turns, "rewound N files", "a new conversation starts". They were kept
 * in memory and lost on a reload; stored here, numbered in the chat's sequence by the same kind of trigger as
 * the transcript rows (m0006), so a tab resyncs them like any other row. `after_turns` is how many turns the
 * chat had when it was said (where it shows); `row_json` is the row as the tab shows it; `task_id` is the
 * task a failed send belongs to (Retry).
 */
export const chatNotices: Migration = {
	version: 7,
	name: 'chat notices',
	up(db) {
		const bump = `
	UPDATE chats SET row_seq = row_seq + 1 WHERE id = NEW.chat_id;
	UPDATE chat_notices SET row_seq = (SELECT row_seq FROM chats WHERE id = NEW.chat_id) WHERE id = NEW.id;`;
		db.exec(`
CREATE TABLE IF NOT EXISTS chat_notices (
	id TEXT PRIMARY KEY,
	chat_id TEXT NOT NULL REFERENCES chats(id) ON DELETE CASCADE,
	after_turns INTEGER NOT NULL,
	kind TEXT NOT NULL CHECK (kind IN ('notice', 'error')),
	row_json TEXT NOT NULL,
	task_id TEXT REFERENCES tasks(id) ON DELETE SET NULL,
	created_at INTEGER NOT NULL,
	row_seq INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS chat_notices_by_row_seq ON chat_notices(chat_id, row_seq);
DROP TRIGGER IF EXISTS chat_notices_row_seq_insert;
DROP TRIGGER IF EXISTS chat_notices_row_seq_update;
CREATE TRIGGER chat_notices_row_seq_insert AFTER INSERT ON chat_notices BEGIN${bump}
END;
CREATE TRIGGER chat_notices_row_seq_update AFTER UPDATE OF row_json ON chat_notices WHEN NEW.row_json IS NOT OLD.row_json BEGIN${bump}
END;`);
	},
};
