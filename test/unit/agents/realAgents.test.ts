import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { mergeDefinitions } from '../../../src/agents/definitions';
import type { TurnRunner } from '../../../src/tasks/turnRunner';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import type { Store } from '../../../src/db/store';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { startFakeAnthropic, startFakeGemini, startFakeOpenAI, startFakeResponses, type FakeServer } from '../../fixtures/modelServers';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv } from '../gitRepo';
import { removeDir } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';
import { agentsOwnTemp, claudeDefinition, codexDefinition, geminiInstalled, geminiOverride, harness, installed, jsonLines, offlineEnv, opencodeDefinition, runCli, skipUnlessInstalled, withPool, type Harness } from './realAgentRig';

/**
 * The real agent CLIs from npm (installed by scripts/install-test-agents.sh into the test cache), driven
 * offline: their model is one of our scripted servers on 127.0.0.1, their home, config and data folders are
 * inside the test's temp folder, and their telemetry and update checks are off (see realAgentRig.ts).
 */
suite('agents: real claude-agent-acp, opencode and codex-acp, offline against scripted model servers', function () {
	this.timeout(180_000);
	checkNoLeaksAfterSuite({ othersTemp: agentsOwnTemp });
	suiteSetup(skipUnlessInstalled(installed, 'The real agents are'));

	const cases = [
		// How each agent's edit is attributed, as observed with the versions scripts/install-test-agents.sh pins.
		// Claude Code (claude-agent-acp) writes the file itself but reports the edit as a diff in its completed
		// tool call: attributed through the protocol (`tool_diff`). opencode (`opencode acp`) writes the file itself
		// too, reports only "Wrote file successfully." and does not call fs/write_text_file: only the worktree diff
		// after the turn (`watcher`) sees it. A new agent version that changes this fails here, on purpose.
		{ agent: 'claude', start: startFakeAnthropic, define: claudeDefinition, source: 'protocol', eventSource: 'tool_diff' },
		{ agent: 'opencode', start: startFakeOpenAI, define: opencodeDefinition, source: 'watcher', eventSource: 'watcher' },
		// Codex (codex-acp) applies its patch itself and shows the diff on the pending tool call.
		{ agent: 'codex', start: startFakeResponses, define: codexDefinition, source: 'protocol', eventSource: 'tool_diff' },
	] as const;

	for (const c of cases) {
		test(`${c.agent} through the CLI: a real edit with its own tool, attributed, transcript saved`, async () => {
			const h = harness();
			const server = await c.start({ targetFile: () => h.target, content: `hello from ${c.agent}\n` });
			try {
				const agentsFile = path.join(h.dir, 'agents.json');
				fs.writeFileSync(agentsFile, JSON.stringify([c.define(h, server.url)]));
				const state = path.join(h.dir, 'state');
				const env = { ...process.env, ...offlineEnv(h) };
				const created = await runCli(['session', 'new', '--repo', h.repo, '--title', `${c.agent} e2e`, '--state', state, '--worktrees', path.join(h.dir, 'worktrees'), '--json'], env);
				const session = JSON.parse(created.stdout) as { sessionId: string; worktreePath: string };
				h.target = path.join(session.worktreePath, 'hello.txt');
				const r = await runCli(['run', '--repo', h.repo, '--session', session.sessionId, '--agent', c.agent, '--prompt', 'Create hello.txt saying hello', '--agents', agentsFile, '--state', state, '--permissions', 'allow', '--json'], env);
				const lines = jsonLines(r.stdout);
				const end = lines[lines.length - 1]!;
				assert.equal(end.type, 'turn_end', `${r.stdout}\n${r.stderr}`);
				assert.equal(end.stopReason, 'end_turn', `${r.stdout}\n${r.stderr}`);
				assert.equal(r.code, 0);
				assert.equal(end.cwd, session.worktreePath, 'the agent worked in the session worktree');
				assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
				assert.equal(fs.readFileSync(h.target, 'utf8'), `hello from ${c.agent}\n`);
				assert.ok(server.requests.length >= 2, 'the agent asked the model twice: tool call, then the final answer');

				const pending = await runCli(['pending', String(end.sessionId), '--state', state, '--json'], env);
				const rows = jsonLines(pending.stdout);
				const row = rows.find((x) => x.path === 'hello.txt');
				assert.ok(row, pending.stdout);
				assert.equal(row.chat_id, end.chatId);
				assert.equal(row.agent, c.agent);
				assert.equal(row.source, c.source, `${c.agent}'s edit is attributed by ${c.source}`);
				assert.equal(rows.length, 1, 'one change, attributed once');

				const show = await runCli(['show', String(end.chatId), '--state', state, '--json'], env);
				const turns = show.stdout.trim().split('\n').map((l) => JSON.parse(l) as { turn: { status: string }; messages: { kind: string }[] });
				assert.equal(turns.length, 1);
				assert.equal(turns[0]!.turn.status, 'done');
				assert.ok(turns[0]!.messages.some((m) => m.kind === 'tool_call'), 'the tool call is in the transcript');
			} finally {
				await server.close();
				removeDir(h.dir);
			}
		});

		test(`${c.agent} through the pool: two chats are two contexts in one folder`, async () => {
			const h = harness();
			const server = await c.start({ targetFile: () => h.target, content: `pool ${c.agent}\n` });
			await withPool(h, server, c.define(h, server.url), async ({ pool, turns, store, logger }) => {
				const sessions = new SessionsRepo(store);
				const { session: s, worktree } = await new WorktreeService(store, logger, { root: path.join(h.dir, 'worktrees'), env: gitEnv(h.dir) }).createSession({ repo: h.repo, title: 'real' });
				h.target = path.join(worktree.path, 'hello.txt');
				const chatA = sessions.createChat({ sessionId: s.id, agent: c.agent }).id;
				const chatB = sessions.createChat({ sessionId: s.id, agent: c.agent }).id;
				const a = await turns.runTurn(chatA, c.agent, { text: 'Create hello.txt' });
				assert.equal(a.status, 'done', a.result.error);
				assert.equal(fs.readFileSync(h.target, 'utf8'), `pool ${c.agent}\n`);
				assert.equal(a.cwd, worktree.path, 'the agent worked in the session worktree');
				assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
				const b = await pool.ensure(chatB, c.agent);
				assert.notEqual(b.backendSessionId, a.result.backendSessionId);
				const pending = new PendingChangesRepo(store).listForChat(chatA);
				assert.deepEqual(pending.map((p) => [p.path, p.agent, p.turn_id, p.source]), [['hello.txt', c.agent, a.turn.id, c.source]]);
				assert.deepEqual(new PendingChangesRepo(store).listForChat(chatB), []);
				const messages = new TranscriptRepo(store).listMessages(a.turn.id);
				assert.ok(messages.length > 1);
				const edits = messages.filter((m) => m.kind === 'file_edit').map((m) => JSON.parse(m.content) as { path: string; source: string });
				assert.deepEqual(edits.map((e) => [e.path, e.source]), [['hello.txt', c.eventSource]], 'the transcript names how the edit was seen');
			});
		});
	}
});

suite('agents: real Codex (codex-acp) with the OpenAI key a user gives it, offline against a scripted Responses server', function () {
	this.timeout(180_000);
	checkNoLeaksAfterSuite({ othersTemp: agentsOwnTemp });
	suiteSetup(skipUnlessInstalled(installed, 'The real agents are'));

	test('codex asks for a sign-in; Agent Tabs signs it in with its API-key method; a new file, then an edit in the same chat with its context resumed, attributed; the key is stored nowhere of ours', async () => {
		const h = harness();
		let worktree = '';
		const key = `sk-openai-test-${Date.now()}`;
		const edit = { marker: 'EDIT-README', oldText: '# test', newText: '# test, edited by codex' };
		const server = await startFakeResponses({ targetFile: () => path.join(worktree, 'hello.txt'), content: 'hello from codex\n', edit: { ...edit, file: () => path.join(worktree, 'README.md') } });
		try {
			const codex = codexDefinition(h, server.url, 'openaiSignIn');
			const agentsFile = path.join(h.dir, 'agents.json');
			// The preset with its own command and folders: OPENAI_API_KEY is its secretEnv, passed from the user's environment.
			fs.writeFileSync(agentsFile, JSON.stringify([{ id: 'codex', command: codex.command, env: codex.env }]));
			const state = path.join(h.dir, 'state');
			const env = { ...process.env, ...offlineEnv(h), OPENAI_API_KEY: key };
			const created = await runCli(['session', 'new', '--repo', h.repo, '--title', 'codex sign-in', '--state', state, '--worktrees', path.join(h.dir, 'worktrees'), '--json'], env);
			const session = JSON.parse(created.stdout) as { sessionId: string; worktreePath: string };
			worktree = session.worktreePath;
			const run = async (prompt: string, chat?: string): Promise<{ end: Record<string, unknown>; stdout: string; stderr: string }> => {
				const r = await runCli(['run', '--repo', h.repo, '--session', session.sessionId, ...(chat ? ['--chat', chat] : []), '--agent', 'codex', '--prompt', prompt, '--agents', agentsFile, '--state', state, '--permissions', 'allow', '--json'], env);
				const end = jsonLines(r.stdout).pop()!;
				assert.equal(end.type, 'turn_end', `${r.stdout}\n${r.stderr}`);
				assert.equal(end.stopReason, 'end_turn', `${r.stdout}\n${r.stderr}`);
				assert.equal(r.code, 0);
				return { end, ...r };
			};
			const first = await run('Create hello.txt saying hello');
			const second = await run(`Change the title of README.md (${edit.marker})`, String(first.end.chatId));
			assert.equal(fs.readFileSync(path.join(worktree, 'hello.txt'), 'utf8'), 'hello from codex\n');
			assert.equal(fs.readFileSync(path.join(worktree, 'README.md'), 'utf8'), '# test, edited by codex\n');
			assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
			// The model saw the first prompt again with the second: the chat's context was resumed, not restarted.
			const lastRequest = JSON.stringify(server.requests.filter((r) => r.path === '/v1/responses').pop()?.body);
			assert.ok(lastRequest.includes('Create hello.txt saying hello'), 'the second turn carries the first one');
			const pending = jsonLines((await runCli(['pending', session.sessionId, '--state', state, '--json'], env)).stdout);
			assert.deepEqual(
				pending.map((r) => [r.path, r.kind, r.chat_id, r.agent, r.turn_id, r.source]),
				[
					['hello.txt', 'add', first.end.chatId, 'codex', first.end.turnId, 'protocol'],
					['README.md', 'modify', first.end.chatId, 'codex', second.end.turnId, 'protocol'],
				],
			);
			// Codex keeps the key in its own auth.json, as `codex login --with-api-key` does; Agent Tabs keeps it nowhere.
			const stateFiles = fs.readdirSync(state).map((f) => path.join(state, f)).filter((f) => fs.statSync(f).isFile()).map((f) => fs.readFileSync(f, 'latin1'));
			for (const text of [first.stdout, first.stderr, second.stdout, second.stderr, ...stateFiles]) {
				assert.ok(!text.includes(key), 'the key is not in the output, the database or the journal');
			}
		} finally {
			await server.close();
			removeDir(h.dir);
		}
	});
});

/** Every function call the scripted server answered a result for: the tool really ran and reported back. */
function functionResponses(server: FakeServer): string[] {
	const names: string[] = [];
	for (const r of server.requests) {
		const contents = (r.body as { contents?: { parts?: { functionResponse?: { name?: string } }[] }[] } | undefined)?.contents ?? [];
		const last = contents[contents.length - 1];
		for (const p of last?.parts ?? []) {
			if (p.functionResponse?.name) {
				names.push(p.functionResponse.name);
			}
		}
	}
	return names;
}

suite('agents: the real Gemini CLI (gemini --acp), offline against a scripted Gemini API server', function () {
	this.timeout(180_000);
	checkNoLeaksAfterSuite({ othersTemp: agentsOwnTemp });
	suiteSetup(skipUnlessInstalled(geminiInstalled, 'The Gemini CLI is'));

	const edit = { marker: 'EDIT-README', oldText: '# test', newText: '# test, edited by gemini' };
	/** The scripted Gemini server whose tool calls aim at the worktree `worktree()` returns once it exists. */
	const startServer = (worktree: () => string): Promise<FakeServer> =>
		startFakeGemini({ targetFile: () => path.join(worktree(), 'hello.txt'), content: 'hello from gemini\n', edit: { ...edit, file: () => path.join(worktree(), 'README.md') } });

	/** A session with its own worktree and one Gemini chat in it, driven through the pool. */
	async function withGeminiChat(policy: 'allow' | 'reject', body: (ctx: { h: Harness; turns: TurnRunner; store: Store; server: FakeServer; chat: string; worktree: string }) => Promise<void>): Promise<void> {
		const h = harness();
		let worktree = '';
		const server = await startServer(() => worktree);
		const def = mergeDefinitions([geminiOverride(h, server.url)]).find((d) => d.id === 'gemini')!;
		await withPool(
			h,
			server,
			def,
			async ({ turns, store, logger }) => {
				const created = await new WorktreeService(store, logger, { root: path.join(h.dir, 'worktrees'), env: gitEnv(h.dir) }).createSession({ repo: h.repo, title: `gemini ${policy}` });
				worktree = created.worktree.path;
				const chat = new SessionsRepo(store).createChat({ sessionId: created.session.id, agent: 'gemini' }).id;
				await body({ h, turns, store, server, chat, worktree });
			},
			policy,
		);
	}

	test('through the pool: creates a new file and edits an existing one in the session worktree, attributed, permission answered', async () => {
		await withGeminiChat('allow', async ({ h, turns, store, server, chat, worktree }) => {
			const a = await turns.runTurn(chat, 'gemini', { text: 'Create hello.txt saying hello' });
			assert.equal(a.status, 'done', a.result.error);
			assert.equal(a.result.stopReason, 'end_turn');
			assert.equal(a.cwd, worktree);
			assert.equal(fs.readFileSync(path.join(worktree, 'hello.txt'), 'utf8'), 'hello from gemini\n');
			assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');

			const b = await turns.runTurn(chat, 'gemini', { text: `Change the title of README.md (${edit.marker})` });
			assert.equal(b.status, 'done', b.result.error);
			assert.equal(fs.readFileSync(path.join(worktree, 'README.md'), 'utf8'), '# test, edited by gemini\n');
			assert.equal(fs.readFileSync(path.join(h.repo, 'README.md'), 'utf8'), '# test\n', 'the main checkout is untouched');
			assert.deepEqual(functionResponses(server), ['write_file', 'replace']);

			const pending = new PendingChangesRepo(store).listForChat(chat);
			assert.deepEqual(
				pending.map((p) => [p.path, p.kind, p.agent, p.turn_id, p.source]),
				[
					['hello.txt', 'add', 'gemini', a.turn.id, 'protocol'],
					['README.md', 'modify', 'gemini', b.turn.id, 'protocol'],
				],
			);
			const transcript = new TranscriptRepo(store);
			for (const turn of [a.turn, b.turn]) {
				const messages = transcript.listMessages(turn.id);
				assert.ok(messages.some((m) => m.kind === 'tool_call'), 'the tool call is in the transcript');
				const permissions = messages.filter((m) => m.kind === 'permission').map((m) => JSON.parse(m.content) as { decision?: { outcome: string; optionId?: string } });
				assert.equal(permissions.length, 1, 'Gemini asked once per edit');
				assert.equal(permissions[0]!.decision?.outcome, 'selected');
				assert.equal(permissions[0]!.decision?.optionId, 'proceed_once');
			}
		});
	});

	test('a mentioned file whose name has a space or a non-ASCII letter reaches the model with its content', async () => {
		await withGeminiChat('allow', async ({ turns, server, chat, worktree }) => {
			const names = ['notes.md', 'my notes.md', path.join('dossier été', 'nöte #1.md')];
			for (const [i, name] of names.entries()) {
				fs.mkdirSync(path.dirname(path.join(worktree, name)), { recursive: true });
				fs.writeFileSync(path.join(worktree, name), `content of mention ${i}\n`);
				const t = await turns.runTurn(chat, 'gemini', { text: `What does this say? (mention ${i})`, files: [path.join(worktree, name)] });
				assert.equal(t.status, 'done', t.result.error);
				// Gemini reads a mentioned file into the prompt itself: the model sees the file's text, not only its name.
				const request = server.requests.filter((r) => r.path.endsWith(':streamGenerateContent') && JSON.stringify(r.body).includes(`(mention ${i})`)).pop();
				assert.ok(request, `the model was asked about mention ${i}`);
				assert.ok(JSON.stringify(request.body).includes(`content of mention ${i}`), `the model got the content of ${name}`);
			}
		});
	});

	test('a rejected permission writes nothing and attributes nothing', async () => {
		await withGeminiChat('reject', async ({ turns, store, chat, worktree }) => {
			const a = await turns.runTurn(chat, 'gemini', { text: 'Create hello.txt saying hello' });
			const b = await turns.runTurn(chat, 'gemini', { text: `Change the title of README.md (${edit.marker})` });
			for (const turn of [a, b]) {
				const permissions = new TranscriptRepo(store)
					.listMessages(turn.turn.id)
					.filter((m) => m.kind === 'permission')
					.map((m) => (JSON.parse(m.content) as { decision?: { optionId?: string } }).decision?.optionId);
				assert.deepEqual(permissions, ['cancel'], 'Gemini asked and was told no');
			}
			assert.ok(!fs.existsSync(path.join(worktree, 'hello.txt')));
			assert.equal(fs.readFileSync(path.join(worktree, 'README.md'), 'utf8'), '# test\n');
			assert.deepEqual(new PendingChangesRepo(store).listForChat(chat), [], 'nothing was written, so nothing is attributed');
		});
	});

	test('through the CLI `run`: a new file, then an edit in the same chat, attributed exactly, transcript saved', async () => {
		const h = harness();
		let worktree = '';
		const server = await startServer(() => worktree);
		try {
			const agentsFile = path.join(h.dir, 'agents.json');
			// Only the environment: command, arguments and the missing-file answer come from the preset.
			fs.writeFileSync(agentsFile, JSON.stringify([geminiOverride(h, server.url)]));
			const state = path.join(h.dir, 'state');
			const env = { ...process.env, ...offlineEnv(h) };
			const created = await runCli(['session', 'new', '--repo', h.repo, '--title', 'gemini e2e', '--state', state, '--worktrees', path.join(h.dir, 'worktrees'), '--json'], env);
			const session = JSON.parse(created.stdout) as { sessionId: string; worktreePath: string };
			worktree = session.worktreePath;
			const run = async (prompt: string, chat?: string): Promise<Record<string, unknown>> => {
				const r = await runCli(['run', '--repo', h.repo, '--session', session.sessionId, ...(chat ? ['--chat', chat] : []), '--agent', 'gemini', '--prompt', prompt, '--agents', agentsFile, '--state', state, '--permissions', 'allow', '--json'], env);
				const end = jsonLines(r.stdout).pop()!;
				assert.equal(end.type, 'turn_end', `${r.stdout}\n${r.stderr}`);
				assert.equal(end.stopReason, 'end_turn', `${r.stdout}\n${r.stderr}`);
				assert.equal(r.code, 0);
				assert.equal(end.cwd, worktree, 'the agent worked in the session worktree');
				return end;
			};
			const first = await run('Create hello.txt saying hello');
			const second = await run(`Change the title of README.md (${edit.marker})`, String(first.chatId));
			assert.equal(second.chatId, first.chatId);
			assert.equal(fs.readFileSync(path.join(worktree, 'hello.txt'), 'utf8'), 'hello from gemini\n');
			assert.equal(fs.readFileSync(path.join(worktree, 'README.md'), 'utf8'), '# test, edited by gemini\n');
			assert.ok(!fs.existsSync(path.join(h.repo, 'hello.txt')), 'the main checkout is untouched');
			assert.equal(fs.readFileSync(path.join(h.repo, 'README.md'), 'utf8'), '# test\n');
			assert.deepEqual(functionResponses(server), ['write_file', 'replace']);

			const pending = jsonLines((await runCli(['pending', session.sessionId, '--state', state, '--json'], env)).stdout);
			assert.deepEqual(
				pending.map((r) => [r.path, r.kind, r.chat_id, r.agent, r.turn_id, r.source]),
				[
					['hello.txt', 'add', first.chatId, 'gemini', first.turnId, 'protocol'],
					['README.md', 'modify', first.chatId, 'gemini', second.turnId, 'protocol'],
				],
			);
			const turns = jsonLines((await runCli(['show', String(first.chatId), '--state', state, '--json'], env)).stdout) as { turn: { status: string }; messages: { kind: string }[] }[];
			assert.deepEqual(
				turns.map((t) => [t.turn.status, t.messages.some((m) => m.kind === 'tool_call'), t.messages.filter((m) => m.kind === 'permission').length]),
				[
					['done', true, 1],
					['done', true, 1],
				],
			);
		} finally {
			await server.close();
			removeDir(h.dir);
		}
	});
});
