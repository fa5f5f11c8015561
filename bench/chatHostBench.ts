/**
 * bench/chat, host side: what reading a long chat costs the extension host when its tab opens (the rows of
 * its snapshot: turns, their messages, each made a row), on a real store of 2,500 turns of 21 messages, against
 * sql.js reading the same messages' values in the same process (`Statement.get`, no objects made), rounds
 * alternated. For comparison, the same read through sql.js's `getAsObject`, which the store used before.
 *
 * Knobs (environment): BENCH_CHAT_HOST_TURNS (500), BENCH_CHAT_ROUNDS (3).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Database } from 'sql.js';
import { newId } from '../src/common/ids';
import { nullLogger } from '../src/common/log';
import { SessionsRepo } from '../src/db/sessionsRepo';
import { loadSqlJs } from '../src/db/sqlJs';
import { Store, storeFiles } from '../src/db/store';
import { TranscriptRepo } from '../src/db/transcriptRepo';
import type { ChatRow } from '../src/protocol/messages';
import { turnRows } from '../src/webview/host/transcriptRows';
import { log, nowMs, percentile, round } from './stats';

const wasmPath = path.resolve(__dirname, '..', '..', 'node_modules', 'sql.js', 'dist', 'sql-wasm.wasm');
const turns = Math.max(1, Number(process.env.BENCH_CHAT_HOST_TURNS ?? 500));
const rounds = Math.max(1, Number(process.env.BENCH_CHAT_ROUNDS ?? 3));
const messagesPerTurn = 20;
const chatMessagesSql = 'SELECT * FROM messages WHERE turn_id IN (SELECT id FROM turns WHERE chat_id = ?) ORDER BY turn_id, seq';

async function fill(dir: string): Promise<string> {
	const store = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench-build' });
	try {
		const sessions = new SessionsRepo(store);
		const transcript = new TranscriptRepo(store);
		const session = sessions.create({ title: 'bench', baseRef: 'main', repoRoot: '/home/dev/project' });
		const chatId = sessions.createChat({ sessionId: session.id, agent: 'claude' }).id;
		for (let t = 0; t < turns; t++) {
			const turn = transcript.startTurn({ chatId, agent: 'claude', prompt: `question ${t}` });
			const messages = Array.from({ length: messagesPerTurn }, (_, m) => {
				const tool = m % 4 === 1;
				const content = tool ? { toolCallId: `call-${m}`, title: `Read src/file${m}.ts`, status: 'completed', kind: 'read' } : { text: `answer ${t}.${m} `.repeat(16) };
				return { id: newId('msg'), seq: m + 1, kind: tool ? ('tool_call' as const) : ('text' as const), toolCallId: tool ? `call-${m}` : null, content: JSON.stringify(content), createdAt: t };
			});
			transcript.writeMessages(turn.id, messages);
			transcript.endTurn(turn.id, { status: 'done', stopReason: 'end_turn' });
		}
		return chatId;
	} finally {
		await store.close();
	}
}

/** The rows a tab's snapshot is made of, read as the chat service reads them. */
function storeRead(transcript: TranscriptRepo, chatId: string): number {
	const rows: ChatRow[] = [];
	const messagesByTurn = transcript.listChatMessages(chatId);
	for (const turn of transcript.listTurns(chatId)) {
		rows.push(...turnRows(turn, messagesByTurn.get(turn.id) ?? [], '/home/dev/project'));
	}
	return rows.length;
}

function rawRead(db: Database, chatId: string, asObjects: boolean): number {
	const stmt = db.prepare(chatMessagesSql, [chatId]);
	let n = 0;
	try {
		while (stmt.step()) {
			n += asObjects ? Object.keys(stmt.getAsObject()).length : stmt.get().length;
		}
	} finally {
		stmt.free();
	}
	return n;
}

const timed = (fn: () => unknown): number => {
	const t0 = nowMs();
	fn();
	return nowMs() - t0;
};

export async function runChatHostBench(): Promise<Record<string, unknown>> {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-bench-chat-host-'));
	try {
		const chatId = await fill(dir);
		const SQL = await loadSqlJs(wasmPath);
		const raw = new SQL.Database(fs.readFileSync(path.join(dir, storeFiles.snapshot)));
		const store = await Store.open({ dir, wasmPath, logger: nullLogger, owner: 'bench' });
		const transcript = new TranscriptRepo(store);
		const measured = { store: [] as number[], values: [] as number[], objects: [] as number[] };
		let rows = 0;
		try {
			for (let r = 0; r < rounds + 1; r++) {
				globalThis.gc?.();
				const values = timed(() => rawRead(raw, chatId, false));
				const objects = timed(() => rawRead(raw, chatId, true));
				const own = timed(() => (rows = storeRead(transcript, chatId)));
				// The first round warms both up (the wasm's compiled code, SQLite's page cache).
				if (r > 0) {
					measured.values.push(values);
					measured.objects.push(objects);
					measured.store.push(own);
					log(`chat host: round ${r}/${rounds}: ${rows} rows in ${own.toFixed(1)} ms; sql.js values ${values.toFixed(1)} ms, getAsObject ${objects.toFixed(1)} ms`);
				}
			}
		} finally {
			raw.close();
			await store.close();
		}
		const median = (xs: number[]): number => percentile(xs, 50);
		return {
			rows,
			snapshotRowsMs: round(median(measured.store), 1),
			sqlJsValuesMs: round(median(measured.values), 1),
			sqlJsGetAsObjectMs: round(median(measured.objects), 1),
			ratioToValues: round(median(measured.store) / median(measured.values), 2),
		};
	} finally {
		fs.rmSync(dir, { recursive: true, force: true });
	}
}
