import * as assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as path from 'node:path';
import { openStore, removeDir, repoRoot, tempDir, wasmPath } from '../helpers';

const kills = Number(process.env.AGENT_TABS_CRASH_KILLS ?? 50);

interface WriterRun {
	acked: number[];
	opened: boolean;
}

/**
 * Starts the writer, lets it run for `runMs` after it opened the store, then SIGKILLs it. Returns the ids it
 * acknowledged on stdout before it died.
 */
function runWriterAndKill(dir: string, firstId: number, runMs: number): Promise<WriterRun> {
	const child = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'crashWriter.js'), dir, wasmPath, String(firstId), String(8 * 1024)], {
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	const acked: number[] = [];
	let opened = false;
	let buffered = '';
	let stderr = '';
	child.stderr.on('data', (d) => (stderr += String(d)));
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => child.kill('SIGKILL'), runMs + 5000);
		child.stdout.on('data', (chunk: Buffer) => {
			buffered += chunk.toString('utf8');
			let nl: number;
			while ((nl = buffered.indexOf('\n')) >= 0) {
				const line = buffered.slice(0, nl);
				buffered = buffered.slice(nl + 1);
				if (line === 'open' && !opened) {
					opened = true;
					setTimeout(() => child.kill('SIGKILL'), runMs);
				} else if (line.startsWith('ack ')) {
					acked.push(Number(line.slice(4)));
				}
			}
		});
		child.on('exit', (code, signal) => {
			clearTimeout(timer);
			if (signal !== 'SIGKILL') {
				reject(new Error(`writer exited on its own (code ${code}): ${stderr}`));
			} else {
				resolve({ acked, opened });
			}
		});
	});
}

suite('db/crash (SIGKILL at random moments)', function () {
	this.timeout(Math.max(60_000, kills * 6000)); // each round starts a writer process and folds on close: seconds on a busy 2-core machine

	test(`every acknowledged write survives ${kills} kills, and the database stays valid`, async () => {
		const dir = tempDir('agent-tabs-crash-');
		try {
			const allAcked = new Set<number>();
			let nextId = 1;
			let totalReplayed = 0;
			let tornTails = 0;
			for (let round = 0; round < kills; round++) {
				// Random moment: anywhere from right after open to well into a stream of writes and folds.
				const runMs = Math.floor(Math.random() * 250);
				const { acked } = await runWriterAndKill(dir, nextId, runMs);
				for (const id of acked) {
					allAcked.add(id);
				}
				const store = await openStore(dir);
				try {
					// Ids are never reused, even for writes that were made but not acknowledged: on a loaded machine a
					// whole group commit of thousands of writes can be on disk before any of its acknowledgements left
					// the writer (a margin of 1,000 ids made the next writer hit one of them).
					nextId = Math.max(nextId + acked.length, (store.get<{ n: number | null }>('SELECT max(created_at) AS n FROM sessions')?.n ?? 0) + 1);
					assert.equal(store.get<{ integrity_check: string }>('PRAGMA integrity_check')?.integrity_check, 'ok', `round ${round}`);
					assert.deepEqual(store.recovery.movedAside, [], `round ${round}: a crash is not damage`);
					const present = new Set(store.all<{ id: string }>('SELECT id FROM sessions').map((r) => Number(r.id.slice(1))));
					const missing = [...allAcked].filter((id) => !present.has(id));
					assert.deepEqual(missing, [], `round ${round}: acknowledged writes lost`);
					// Each write was one transaction of a session and its chat: never half of it.
					assert.equal(store.get<{ n: number }>('SELECT count(*) AS n FROM sessions s WHERE NOT EXISTS (SELECT 1 FROM chats c WHERE c.session_id = s.id)')?.n, 0);
					totalReplayed += store.recovery.replayedRecords;
					tornTails += store.recovery.droppedTornBytes > 0 ? 1 : 0;
				} finally {
					await store.close();
				}
			}
			assert.ok(allAcked.size > kills, `the writer acknowledged ${allAcked.size} writes in ${kills} rounds`);
			assert.ok(totalReplayed > 0, 'some rounds had to replay the journal');
			console.log(`      ${kills} kills, ${allAcked.size} acknowledged writes, ${totalReplayed} replayed, ${tornTails} torn tails dropped`);
		} finally {
			removeDir(dir);
		}
	});
});
