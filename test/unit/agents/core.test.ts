import * as assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { mapPermissionToolCall, mapSessionUpdate, maxCommands } from '../../../src/agents/acp/mapUpdate';
import { stdioStream } from '../../../src/agents/acp/transport';
import { maxOutputLimit, maxRetainedOutput, maxRunningTerminals, TerminalManager } from '../../../src/agents/acp/terminals';
import { maxReadBytes, OutsideWorktreeError, readFileInsideWorktree, resolveInsideWorktree, writeFileInsideWorktree } from '../../../src/agents/confine';
import { agentPresets, configHash, mergeDefinitions } from '../../../src/agents/definitions';
import { agentEnvironment } from '../../../src/agents/environment';
import { AgentTabsError } from '../../../src/common/errors';
import { redactingLogger, SecretRedactor } from '../../../src/common/redact';
import { maxShownPerChat, maxWaitingPerChat, PermissionBroker } from '../../../src/agents/permissions';
import { diffSnapshots, takeDirtySnapshot } from '../../../src/worktrees/dirtySnapshot';
import { makeRepo } from '../gitRepo';
import { ensureNoDisposablesLeaked, MemoryLogger, removeDir, tempDir } from '../helpers';

suite('agents/definitions', () => {
	test('presets cover claude, codex, gemini, opencode and goose; user entries merge by id', () => {
		assert.deepEqual(agentPresets.map((p) => p.id), ['claude', 'codex', 'gemini', 'opencode', 'goose']);
		const merged = mergeDefinitions([{ id: 'claude', defaultMode: 'default', env: { X: '1' } }, { id: 'mine', transport: 'acp', command: '/bin/mine', args: ['--acp'] }]);
		const claude = merged.find((d) => d.id === 'claude')!;
		assert.equal(claude.command, 'claude-agent-acp', 'fields not given keep the preset value');
		assert.equal(claude.defaultMode, 'default');
		assert.deepEqual(claude.env, { X: '1' });
		assert.deepEqual(merged.find((d) => d.id === 'mine'), { id: 'mine', label: 'mine', transport: 'acp', command: '/bin/mine', args: ['--acp'], env: {}, defaultMode: undefined, defaultModel: undefined, secretEnv: undefined, passEnv: undefined, install: undefined, readMissingFile: undefined, icon: undefined, keySignIn: undefined });
		assert.equal(mergeDefinitions([{ id: 'mine', command: 'm', transport: 'acp', readMissingFile: 'empty' }]).find((d) => d.id === 'mine')!.readMissingFile, 'empty');
	});

	test('the gemini preset starts `gemini --acp` with its key from the environment and empty reads for missing files', () => {
		const preset = mergeDefinitions(undefined).find((d) => d.id === 'gemini')!;
		assert.deepEqual([preset.transport, preset.command, preset.args, preset.secretEnv, preset.readMissingFile], ['acp', 'gemini', ['--acp'], ['GEMINI_API_KEY'], 'empty']);
		const overridden = mergeDefinitions([{ id: 'gemini', env: { GEMINI_CLI_NO_RELAUNCH: 'true' } }]).find((d) => d.id === 'gemini')!;
		assert.equal(overridden.readMissingFile, 'empty', 'overriding the environment keeps the preset quirk');
		assert.equal(mergeDefinitions([{ id: 'gemini', readMissingFile: 'notFound' }]).find((d) => d.id === 'gemini')!.readMissingFile, 'notFound');
		assert.equal(preset.keySignIn, undefined, 'gemini reads its key itself; its sign-in would clear a Google login');
		const codex = mergeDefinitions([{ id: 'codex', env: { CODEX_HOME: '/x' } }]).find((d) => d.id === 'codex')!;
		assert.deepEqual([codex.secretEnv, codex.keySignIn], [['OPENAI_API_KEY'], 'api-key'], 'codex is signed in with its key, also when overridden');
	});

	test('a bad definition is an error naming the agent and the field', () => {
		assert.throws(() => mergeDefinitions({}), /JSON array/);
		assert.throws(() => mergeDefinitions([{ id: 'x', transport: 'telnet', command: 'a' }]), /Agent "x": "transport" must be/);
		assert.throws(() => mergeDefinitions([{ id: 'x', transport: 'acp' }]), /Agent "x" needs a "command"/);
		assert.throws(() => mergeDefinitions([{ id: 'x', command: 'a', transport: 'acp', args: [1] }]), /"args" must be an array of strings/);
		assert.throws(() => mergeDefinitions([{ id: 'has space', command: 'a' }]), /needs an "id"/);
		assert.throws(() => mergeDefinitions([{ id: 'x', command: 'a', transport: 'acp', readMissingFile: 'ignore' }]), /Agent "x": "readMissingFile" must be "notFound" or "empty"/);
		assert.throws(() => mergeDefinitions([{ id: 'x', command: 'a', transport: 'acp', icon: 3 }]), /Agent "x": "icon" must be the path of an image file/);
		assert.throws(() => mergeDefinitions([{ id: 'x', command: 'a', transport: 'acp', keySignIn: ' ' }]), /Agent "x": "keySignIn" must be the id of the agent's API-key sign-in method/);
	});

	test('the config hash follows command, args, env names, model, mode and MCP servers, never env values', () => {
		const base = mergeDefinitions([{ id: 'a', transport: 'acp', command: 'x', args: [], env: { KEY: 'secret-1' } }]).find((d) => d.id === 'a')!;
		const h = configHash(base);
		assert.equal(configHash({ ...base, env: { KEY: 'secret-2' } }), h, 'a new secret value is not a new configuration');
		assert.notEqual(configHash({ ...base, env: { KEY: 'v', OTHER: 'v' } }), h);
		assert.notEqual(configHash({ ...base, args: ['--fast'] }), h);
		assert.notEqual(configHash({ ...base, command: 'y' }), h);
		assert.notEqual(configHash(base, { model: 'm2' }), h);
		assert.notEqual(configHash(base, { mode: 'plan' }), h);
		assert.notEqual(configHash(base, { envNames: ['ANTHROPIC_API_KEY'] }), h);
		assert.notEqual(configHash(base, { mcpServers: [{ name: 'tasks' }] }), h);
		assert.doesNotMatch(h, /secret/);
	});
});

suite('agents/confine', () => {
	let root: string;
	setup(() => {
		root = tempDir();
		fs.mkdirSync(path.join(root, 'wt', 'src'), { recursive: true });
		fs.mkdirSync(path.join(root, 'outside'));
		fs.symlinkSync(path.join(root, 'outside'), path.join(root, 'wt', 'link'));
		fs.symlinkSync(path.join(root, 'wt', 'src'), path.join(root, 'wt', 'inner-link'));
	});
	teardown(() => removeDir(root));

	test('paths inside the worktree resolve, absolute or relative, existing or new', () => {
		const wt = path.join(root, 'wt');
		assert.equal(resolveInsideWorktree(wt, 'src/a.ts'), path.join(wt, 'src', 'a.ts'));
		assert.equal(resolveInsideWorktree(wt, path.join(wt, 'new', 'deep', 'b.ts')), path.join(wt, 'new', 'deep', 'b.ts'));
		assert.equal(resolveInsideWorktree(wt, 'inner-link/c.ts'), path.join(wt, 'inner-link', 'c.ts'), 'a link that stays inside is fine');
		assert.equal(resolveInsideWorktree(wt, 'src/../src/d.ts'), path.join(wt, 'src', 'd.ts'));
	});

	test('.., other absolute paths and symlinks that lead out are refused', () => {
		const wt = path.join(root, 'wt');
		for (const p of ['../outside/x', path.join(root, 'outside', 'x'), '/etc/passwd', 'link/x', 'link', 'src/../../outside/y', '']) {
			assert.throws(() => resolveInsideWorktree(wt, p), OutsideWorktreeError, p);
		}
		assert.throws(() => resolveInsideWorktree(wt, 'link/x'), /symbolic link/);
	});

	test('a write through a dangling symlink (its target not there yet) is refused and creates nothing outside', async () => {
		const wt = path.join(root, 'wt');
		fs.symlinkSync(path.join(root, 'outside', 'new.txt'), path.join(wt, 'dangling'));
		fs.symlinkSync(path.join(root, 'outside', 'newdir'), path.join(wt, 'dangling-dir'));
		fs.symlinkSync('inner-dangling-target.txt', path.join(wt, 'src', 'inner-dangling'));
		for (const p of ['dangling', 'dangling-dir/a.txt']) {
			await assert.rejects(writeFileInsideWorktree(wt, p, 'escaped'), OutsideWorktreeError, p);
		}
		assert.deepEqual(fs.readdirSync(path.join(root, 'outside')), []);
		// A dangling link that stays inside creates its target, as a plain write through it would.
		assert.deepEqual(await writeFileInsideWorktree(wt, 'src/inner-dangling', 'inside'), { abs: path.join(wt, 'src', 'inner-dangling'), existed: false });
		assert.equal(fs.readFileSync(path.join(wt, 'src', 'inner-dangling-target.txt'), 'utf8'), 'inside');
		assert.equal(fs.lstatSync(path.join(wt, 'src', 'inner-dangling')).isSymbolicLink(), true, 'the link itself is left as it was');
	});

	test("git's own files are never written: the worktree's .git file, a repository's .git folder inside it, a link to them", async () => {
		const wt = path.join(root, 'wt');
		fs.writeFileSync(path.join(wt, '.git'), 'gitdir: /somewhere/.git/worktrees/wt\n');
		fs.mkdirSync(path.join(wt, 'vendor', '.git'), { recursive: true });
		fs.symlinkSync(path.join(wt, 'vendor', '.git'), path.join(wt, 'admin-link'));
		for (const p of ['.git', 'vendor/.git/config', 'vendor/.GIT/hooks/pre-commit', 'admin-link/config', path.join(wt, '.git')]) {
			await assert.rejects(writeFileInsideWorktree(wt, p, 'gitdir: evil'), /one of git's own files/, p);
		}
		assert.equal(fs.readFileSync(path.join(wt, '.git'), 'utf8'), 'gitdir: /somewhere/.git/worktrees/wt\n');
		assert.deepEqual(fs.readdirSync(path.join(wt, 'vendor', '.git')), []);
		assert.equal(await readFileInsideWorktree(wt, '.git'), 'gitdir: /somewhere/.git/worktrees/wt\n', 'reading them is fine');
	});

	test('a folder swapped for a link while writes make new folders under it creates no folder outside', async function () {
		if (process.platform !== 'linux') {
			this.skip(); // the check of where an opened folder is (/proc) is Linux-only
		}
		this.timeout(30_000);
		const wt = path.join(root, 'wt');
		fs.mkdirSync(path.join(wt, 'sub'));
		// A real process flips sub between a folder and a link out as fast as it can, as a hostile agent would.
		// `-T` everywhere: when a write has just made a new sub, a plain mv or ln would go inside it, and each
		// round would nest the folder one level deeper (until its path is too long to delete); the old folder
		// left beside a new one is dropped, so the flipping goes on.
		const flip = spawn('bash', ['-c', `cd "${wt}"; while true; do [ -d sub-real ] && rm -rf sub-real; mv -T sub sub-real; ln -sT "${path.join(root, 'outside')}" sub; rm -f sub; mv -T sub-real sub; done`], { stdio: 'ignore' });
		try {
			let written = 0;
			for (let i = 0; i < 3000 && fs.readdirSync(path.join(root, 'outside')).length === 0; i++) {
				written += await writeFileInsideWorktree(wt, `sub/d${i}/e/f.txt`, 'x').then(
					() => 1,
					() => 0,
				);
			}
			assert.deepEqual(fs.readdirSync(path.join(root, 'outside')), [], 'no folder was made outside the worktree');
			assert.ok(written > 0, 'writes that met the folder in place went through');
		} finally {
			flip.kill('SIGKILL');
			await new Promise((resolve) => flip.once('exit', resolve));
		}
	});

	test('a FIFO or a folder is refused at once, for reads and writes, without blocking a thread', async () => {
		const wt = path.join(root, 'wt');
		execFileSync('mkfifo', [path.join(wt, 'pipe')]);
		// More than the thread pool has: a blocking open of each would leave nothing for the rest of the host.
		const reads = Array.from({ length: 8 }, () => readFileInsideWorktree(wt, 'pipe'));
		for (const read of reads) {
			await assert.rejects(read, /is not a regular file/);
		}
		await assert.rejects(writeFileInsideWorktree(wt, 'pipe', 'x'), /is not a regular file/);
		await assert.rejects(writeFileInsideWorktree(wt, 'src', 'x'), /is not a regular file/);
		await assert.rejects(readFileInsideWorktree(wt, 'src'), /is not a regular file|EISDIR/);
		fs.writeFileSync(path.join(wt, 'src', 'plain.txt'), 'plain');
		const answered = await Promise.race([fs.promises.readFile(path.join(wt, 'src', 'plain.txt'), 'utf8'), new Promise((resolve) => setTimeout(() => resolve('blocked'), 5000))]);
		assert.equal(answered, 'plain', 'the thread pool still answers other reads');
	});
});

suite('agents/confine: reads of any size', () => {
	let wt: string;
	setup(() => {
		wt = tempDir();
	});
	teardown(() => removeDir(wt));

	test('lines asked for are exactly what content.split("\\n") gives, across 1 MB read chunks', async () => {
		// Lines from empty to 1.5 MB long, so some cross the 1 MB chunks the read takes; with and without a last newline.
		let seed = 7;
		const random = (n: number): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
		const lengths = Array.from({ length: 60 }, (_, i) => (i % 13 === 5 ? 1_500_000 : random(3) === 0 ? 0 : random(2000)));
		const body = lengths.map((n, i) => String.fromCharCode(97 + (i % 26)).repeat(n)).join('\n');
		for (const content of [body, `${body}\n`]) {
			fs.writeFileSync(path.join(wt, 'f.txt'), content);
			const lines = content.split('\n');
			for (const [line, limit] of [[1, 1], [1, 3], [5, 2], [6, 1], [6, undefined], [59, undefined], [60, 5], [61, 1], [62, 3], [100, 2], [3, 0], [undefined, 4], [0, 2], [-3, 2], [2, -1]] as const) {
				const start = Math.max(0, (line ?? 1) - 1);
				const want = lines.slice(start, limit === undefined ? undefined : start + Math.max(0, limit)).join('\n');
				const got = await readFileInsideWorktree(wt, 'f.txt', { ...(line === undefined ? {} : { line }), ...(limit === undefined ? {} : { limit }) });
				assert.ok(got === want, `line ${line}, limit ${limit}: ${got.length} characters, wanted ${want.length}`);
			}
		}
	});

	test('a file over 16 MB is refused whole, with what to do instead; a few lines of it still read, without loading it', async () => {
		const big = path.join(wt, 'big.bin');
		const fd = fs.openSync(big, 'w');
		fs.writeSync(fd, 'first line\nsecond line\n');
		fs.ftruncateSync(fd, 400 * 1024 * 1024); // sparse: 400 MB of NUL bytes after the two lines
		fs.closeSync(fd);
		await assert.rejects(readFileInsideWorktree(wt, 'big.bin'), (e: unknown) => e instanceof AgentTabsError && e.code === 'fs/tooLarge' && /is 400 MB; one read gives at most 16 MB\. Ask for part of it \(line and limit\)/.test(e.message));
		const before = process.memoryUsage().rss;
		assert.equal(await readFileInsideWorktree(wt, 'big.bin', { line: 2, limit: 1 }), 'second line');
		// The third line is the 400 MB of NULs: past the limit, refused after reading at most 16 MB of it.
		await assert.rejects(readFileInsideWorktree(wt, 'big.bin', { line: 3, limit: 1 }), (e: unknown) => e instanceof AgentTabsError && e.code === 'fs/tooLarge' && /ask for fewer lines/.test(e.message));
		assert.ok(process.memoryUsage().rss - before < 200 * 1024 * 1024, 'the reads never held the file');
		fs.writeFileSync(path.join(wt, 'exact.txt'), Buffer.alloc(maxReadBytes, 0x61));
		assert.equal((await readFileInsideWorktree(wt, 'exact.txt')).length, maxReadBytes, 'a file of exactly the limit is read');
	});
});

suite('agents/acp/mapUpdate', () => {
	test('every stable variant maps to an event', () => {
		const u = (update: Record<string, unknown>): unknown => ({ sessionId: 's', update });
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'agent_message_chunk', content: { type: 'text', text: 'hi' } })), [{ type: 'text', text: 'hi' }]);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'agent_thought_chunk', content: { type: 'text', text: 'hm' }, messageId: 'm1' })), [{ type: 'reasoning', text: 'hm', messageId: 'm1' }]);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'plan', entries: [{ content: 'a', priority: 'high', status: 'completed' }] })), [{ type: 'plan', entries: [{ content: 'a', priority: 'high', status: 'completed' }] }]);
		const [tool] = mapSessionUpdate(u({ sessionUpdate: 'tool_call', toolCallId: 't1', title: 'Write', kind: 'edit', status: 'pending', locations: [{ path: '/w/a', line: 3 }], content: [{ type: 'diff', path: '/w/a', oldText: null, newText: 'x' }] }));
		assert.deepEqual(tool, { type: 'tool_call', toolCallId: 't1', title: 'Write', kind: 'edit', status: 'pending', locations: [{ path: '/w/a', line: 3 }], content: [{ type: 'diff', path: '/w/a', oldText: null, newText: 'x' }], rawInput: undefined });
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'tool_call_update', toolCallId: 't1', status: 'completed' })), [{ type: 'tool_update', toolCallId: 't1', status: 'completed' }]);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'available_commands_update', availableCommands: [{ name: 'plan', description: 'Plan', input: { hint: 'what' } }] })), [{ type: 'commands', commands: [{ name: 'plan', description: 'Plan', hint: 'what' }] }]);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'current_mode_update', currentModeId: 'plan' })), [{ type: 'mode', modeId: 'plan' }]);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'usage_update', used: 10, size: 100, cost: { amount: 0.5, currency: 'USD' } })), [{ type: 'usage', usedTokens: 10, contextSize: 100, cost: { amount: 0.5, currency: 'USD' } }]);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'notice', severity: 'warning', title: 'T' })), [{ type: 'notice', severity: 'warning', title: 'T', description: undefined }]);
		// codex-acp's model-connection trouble, as it sends it (2.6.0): shown as a warning.
		assert.deepEqual(
			mapSessionUpdate(u({ sessionUpdate: 'session_info_update', _meta: { codex: { error: { message: 'Reconnecting... 2/5', additionalDetails: 'stream disconnected before completion', willRetry: true } } } })),
			[{ type: 'session_info', title: undefined }, { type: 'notice', severity: 'warning', title: 'Reconnecting... 2/5', description: 'stream disconnected before completion' }],
		);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'session_info_update', _meta: { codex: { threadStatus: { type: 'idle' } } } })), [{ type: 'session_info', title: undefined }]);
		// What an agent names things with is bounded (it is shown whole and stored with the chat), counts are counts.
		const [info] = mapSessionUpdate(u({ sessionUpdate: 'session_info_update', title: 't'.repeat(100_000) })) as unknown as [{ title: string }];
		assert.equal(info.title.length, 500);
		assert.ok(info.title.endsWith('…'));
		const [commands] = mapSessionUpdate(u({ sessionUpdate: 'available_commands_update', availableCommands: Array.from({ length: 50_000 }, (_, i) => ({ name: `c${i}${'n'.repeat(1000)}`, description: 'd'.repeat(10_000), input: { hint: 'h'.repeat(1000) } })) })) as unknown as [{ commands: { name: string; description: string; hint?: string }[] }];
		assert.equal(commands.commands.length, maxCommands);
		assert.ok(commands.commands.every((c) => c.name.length === 200 && c.description.length === 2000 && c.hint?.length === 200));
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'usage_update', used: -5, size: 1.5 })), [{ type: 'usage', usedTokens: undefined, contextSize: undefined }]);
		assert.equal(mapSessionUpdate(u({ sessionUpdate: 'config_option_update', configOptions: [{ id: 'model', name: 'Model', type: 'select', currentValue: 'a', options: [{ value: 'a', name: 'A' }] }] }))[0]!.type, 'config');
		// A setting's description (its picker's tooltip) and grouped values, flattened, as claude-agent-acp sends them.
		assert.deepEqual(
			mapSessionUpdate(u({ sessionUpdate: 'config_option_update', configOptions: [{ id: 'effort', name: 'Effort', description: 'How hard it thinks', category: 'thought_level', type: 'select', currentValue: 'low', options: [{ group: 'g', name: 'G', options: [{ value: 'low', name: 'Low' }, { value: 'high', name: 'High' }] }] }] })),
			[{ type: 'config', options: [{ id: 'effort', name: 'Effort', description: 'How hard it thinks', category: 'thought_level', type: 'select', currentValue: 'low', options: [{ value: 'low', name: 'Low' }, { value: 'high', name: 'High' }] }] }],
		);
	});

	test('tool statuses outside the spec read as the nearest one: an ended call never stays pending; nonsense is dropped', () => {
		const u = (status: unknown): unknown => ({ sessionId: 's', update: { sessionUpdate: 'tool_call_update', toolCallId: 't1', status } });
		const statusOf = (status: unknown): unknown => (mapSessionUpdate(u(status))[0] as { status?: unknown }).status;
		assert.deepEqual(['cancelled', 'Canceled', 'error', 'rejected', 'aborted', 'done', 'success', 'running'].map(statusOf), ['failed', 'failed', 'failed', 'failed', 'failed', 'completed', 'completed', 'in_progress']);
		assert.deepEqual(['constructor', '__proto__', 'toString', 'later', 7, null].map(statusOf), [undefined, undefined, undefined, undefined, undefined, undefined]);
	});

	test('compaction updates and summary chunks map to compaction events, with patch semantics', () => {
		const u = (update: Record<string, unknown>): unknown => ({ sessionId: 's', update });
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'compaction_update', compactionId: 'c1', status: 'in_progress' })), [{ type: 'compaction', compactionId: 'c1', status: 'in_progress' }]);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'compaction_summary_chunk', compactionId: 'c1', content: { type: 'text', text: 'So far' } })), [{ type: 'compaction', compactionId: 'c1', summaryChunk: 'So far' }]);
		assert.deepEqual(
			mapSessionUpdate(u({ sessionUpdate: 'compaction_update', compactionId: 'c1', status: 'failed', summary: [{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }], error: 'too big' })),
			[{ type: 'compaction', compactionId: 'c1', status: 'failed', summary: 'ab', error: 'too big' }],
		);
		assert.deepEqual(mapSessionUpdate(u({ sessionUpdate: 'compaction_update', compactionId: 'c1', status: 'completed', summary: null, error: null })), [{ type: 'compaction', compactionId: 'c1', status: 'completed', summary: null, error: null }]);
		assert.equal(mapSessionUpdate(u({ sessionUpdate: 'compaction_summary_chunk', content: { type: 'text', text: 'no id' } }))[0]!.type, 'raw');
	});

	test("a permission request's tool call is a tool_call when not announced before, else an update with what the request says", () => {
		const call = { toolCallId: 't9', title: 'Write a.txt', kind: 'edit', status: 'pending', locations: [{ path: '/w/a.txt' }], content: [{ type: 'diff', path: '/w/a.txt', oldText: null, newText: 'hi' }] };
		const diff = [{ type: 'diff', path: '/w/a.txt', oldText: null, newText: 'hi' }];
		assert.deepEqual(mapPermissionToolCall(call, false), { type: 'tool_call', toolCallId: 't9', title: 'Write a.txt', kind: 'edit', status: 'pending', locations: [{ path: '/w/a.txt' }], content: diff, rawInput: undefined });
		assert.deepEqual(mapPermissionToolCall(call, true), { type: 'tool_update', toolCallId: 't9', title: 'Write a.txt', kind: 'edit', status: 'pending', locations: [{ path: '/w/a.txt' }], content: diff });
		assert.equal(mapPermissionToolCall({ toolCallId: 't9' }, true), undefined, 'an id alone adds nothing to a call announced before');
		assert.equal((mapPermissionToolCall({ toolCallId: 't9' }, false) as { title?: string }).title, 'Tool call');
		assert.equal(mapPermissionToolCall({ title: 'no id' }, false), undefined);
	});

	test('unknown variants and unusable shapes are kept as raw events', () => {
		const future = { sessionId: 's', update: { sessionUpdate: 'future_update', stuff: [1, 2] } };
		assert.deepEqual(mapSessionUpdate(future), [{ type: 'raw', method: 'session/update', payload: future }]);
		assert.equal(mapSessionUpdate({ sessionId: 's', update: { sessionUpdate: 'tool_call' } })[0]!.type, 'raw');
		assert.equal(mapSessionUpdate(null)[0]!.type, 'raw');
	});
});

suite('agents/acp/transport', () => {
	async function collect(chunks: (string | Buffer)[]): Promise<{ messages: unknown[]; updates: unknown[]; garbage: string[]; fatal: string[] }> {
		const stdout = new PassThrough();
		const stdin = new PassThrough();
		const result = { messages: [] as unknown[], updates: [] as unknown[], garbage: [] as string[], fatal: [] as string[] };
		const stream = stdioStream(stdout, stdin, {
			onSessionUpdate: (p) => result.updates.push(p),
			onGarbage: (l) => result.garbage.push(l),
			onFatal: (e) => result.fatal.push(e.message),
		});
		const reader = stream.readable.getReader();
		const reading = (async () => {
			try {
				for (;;) {
					const { value, done } = await reader.read();
					if (done) {
						return;
					}
					result.messages.push(value);
				}
			} catch {
				// errored stream: reported through onFatal
			}
		})();
		for (const c of chunks) {
			stdout.write(c);
		}
		stdout.end();
		await reading;
		return result;
	}

	test('splits lines across chunks, takes session/update out in order, reports garbage', async () => {
		const r = await collect([
			'{"jsonrpc":"2.0","id":0,"res',
			'ult":{}}\n{"jsonrpc":"2.0","method":"session/update","params":{"n":1}}\nnot json at all\n',
			'[1,2]\n{"jsonrpc":"2.0","method":"session/update","params":{"n":2}}\n{"jsonrpc":"2.0","method":"_x/y","params":{}}',
		]);
		assert.deepEqual(r.messages, [{ jsonrpc: '2.0', id: 0, result: {} }, { jsonrpc: '2.0', method: '_x/y', params: {} }]);
		assert.deepEqual(r.updates, [{ n: 1 }, { n: 2 }]);
		assert.deepEqual(r.garbage, ['not json at all', '[1,2]']);
		assert.deepEqual(r.fatal, []);
	});

	test('a flood of lines is handled in slices: other tasks run in between, order and the end are kept', async () => {
		const stdout = new PassThrough();
		const updates: number[] = [];
		let ticksWhileFlooding = 0;
		const stream = stdioStream(stdout, new PassThrough(), { onSessionUpdate: (p) => updates.push((p as { n: number }).n), onGarbage: () => undefined, onFatal: () => undefined });
		const reader = stream.readable.getReader();
		const lines = 200_000;
		const flood = Array.from({ length: lines }, (_, n) => `{"jsonrpc":"2.0","method":"session/update","params":{"n":${n},"update":{"sessionUpdate":"agent_message_chunk","content":{"type":"text","text":"w "}}}}\n`).join('');
		const tick = setInterval(() => {
			if (updates.length > 0 && updates.length < lines) {
				ticksWhileFlooding++;
			}
		}, 0);
		stdout.end(`${flood}{"jsonrpc":"2.0","id":7,"result":{}}\n`);
		const first = await reader.read();
		const end = await reader.read();
		clearInterval(tick);
		assert.deepEqual(first.value, { jsonrpc: '2.0', id: 7, result: {} }, 'the response after the flood comes after every update');
		assert.equal(end.done, true, 'the stream ends once the backlog is handled');
		assert.equal(updates.length, lines);
		assert.ok(updates.every((n, i) => n === i), 'in order');
		assert.ok(ticksWhileFlooding > 0, 'timers ran while the backlog was handled: no single task took it all');
	});

	test('a message that cannot be encoded: an answer becomes an error answer and the stream lives on; anything else is fatal', async () => {
		const stdin = new PassThrough();
		const fatal: string[] = [];
		const stream = stdioStream(new PassThrough(), stdin, { onSessionUpdate: () => undefined, onGarbage: () => undefined, onFatal: (e) => fatal.push(e.message) });
		const written: string[] = [];
		stdin.on('data', (b: Buffer) => written.push(...b.toString('utf8').split('\n').filter(Boolean)));
		const writer = stream.writable.getWriter();
		// JSON.stringify throws on a BigInt as it does on a string past V8's limit (a huge file read as text).
		await writer.write({ jsonrpc: '2.0', id: 4, result: { content: 10n } } as never);
		await writer.write({ jsonrpc: '2.0', id: 5, result: { content: 'fine' } });
		await new Promise((r) => setImmediate(r));
		assert.equal(written.length, 2);
		const answer = JSON.parse(written[0]!) as { id: number; error: { code: number; message: string } };
		assert.equal(answer.id, 4);
		assert.equal(answer.error.code, -32603);
		assert.match(answer.error.message, /too large to send/);
		assert.deepEqual(JSON.parse(written[1]!), { jsonrpc: '2.0', id: 5, result: { content: 'fine' } }, 'the next message still goes');
		assert.deepEqual(fatal, []);
		await assert.rejects(writer.write({ jsonrpc: '2.0', id: 6, method: 'session/prompt', params: { n: 1n } } as never));
		assert.match(fatal[0] ?? '', /could not be encoded/);
	});

	test('a 10 MB line is fine; a line without end past the limit is a clear fatal error', async () => {
		const big = JSON.stringify({ jsonrpc: '2.0', method: 'session/update', params: { text: 'x'.repeat(10 * 1024 * 1024) } });
		const r = await collect([big.slice(0, 5_000_000), big.slice(5_000_000), '\n']);
		assert.equal(r.updates.length, 1);
		const chunk = Buffer.alloc(8 * 1024 * 1024, 0x61);
		const flood = await collect(Array.from({ length: 9 }, () => chunk));
		assert.match(flood.fatal[0] ?? '', /over 64 MB without a line break/);
	});
});

suite('agents/permissions', () => {
	ensureNoDisposablesLeaked();
	const options = [
		{ optionId: 'yes', name: 'Allow', kind: 'allow_once' as const },
		{ optionId: 'no', name: 'Reject', kind: 'reject_once' as const },
	];

	test('policies answer at once; ask waits for a decision; silence and cancel reject', async () => {
		const broker = new PermissionBroker({ default: 'ask', byKind: { read: 'allow', execute: 'reject' }, timeoutMs: 100 }, new MemoryLogger());
		try {
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'read', kind: 'read', options }), { outcome: 'selected', optionId: 'yes', decidedBy: 'policy' });
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'run', kind: 'execute', options }), { outcome: 'selected', optionId: 'no', decidedBy: 'policy' });
			const seen: string[] = [];
			const sub = broker.onDidRequest((r) => {
				seen.push(r.title);
				if (r.title === 'edit') {
					assert.equal(broker.decide(r.id, 'bogus'), false, 'an option the agent did not offer is refused');
					assert.equal(broker.decide(r.id, 'yes'), true);
				}
			});
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'edit', kind: 'edit', options }), { outcome: 'selected', optionId: 'yes', decidedBy: 'user' });
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'ignored', kind: 'edit', options }), { outcome: 'selected', optionId: 'no', decidedBy: 'timeout' }, 'no answer in time is a reject, not a cancel of the turn');
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'no reject offered', kind: 'edit', options: options.filter((o) => o.kind === 'allow_once') }), { outcome: 'cancelled', decidedBy: 'timeout' });
			const alwaysOnly = [options[0]!, { optionId: 'never', name: 'Never allow', kind: 'reject_always' as const }];
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'only always-reject offered', kind: 'edit', options: alwaysOnly }), { outcome: 'cancelled', decidedBy: 'timeout' }, 'silence never becomes a standing "never"');
			const abort = new AbortController();
			const pending = broker.request({ chatId: 'c', agent: 'a', title: 'cancel me', options }, abort.signal);
			abort.abort();
			assert.deepEqual(await pending, { outcome: 'cancelled', decidedBy: 'cancel' });
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'read after the cancel', kind: 'read', options }, abort.signal), { outcome: 'cancelled', decidedBy: 'cancel' }, 'a policy allows nothing once the turn is cancelled');
			assert.deepEqual(seen, ['edit', 'ignored', 'no reject offered', 'only always-reject offered', 'cancel me']);
			assert.deepEqual(broker.pending, []);
			sub.dispose();
		} finally {
			broker.dispose();
		}
	});

	test('a dismissed request is a no at once, not a wait for the timeout; a late answer changes nothing', async () => {
		const broker = new PermissionBroker({ default: 'ask', timeoutMs: 60_000 }, new MemoryLogger());
		try {
			const sub = broker.onDidRequest((r) => assert.equal(broker.dismiss(r.id), true));
			const started = Date.now();
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'dismissed', options }), { outcome: 'selected', optionId: 'no', decidedBy: 'user' });
			assert.ok(Date.now() - started < 5000, 'answered without waiting for the timeout');
			sub.dispose();
			let id = '';
			const sub2 = broker.onDidRequest((r) => {
				id = r.id;
				broker.dismiss(r.id);
			});
			assert.deepEqual(await broker.request({ chatId: 'c', agent: 'a', title: 'no reject option', options: [options[0]!] }), { outcome: 'cancelled', decidedBy: 'cancel' });
			sub2.dispose();
			assert.equal(broker.decide(id, 'yes'), false, 'a button pressed after the request settled is refused');
			assert.equal(broker.dismiss(id), false);
		} finally {
			broker.dispose();
		}
	});

	test('a chat shows a few requests at once, the rest wait their turn, a flood past the queue is refused; other chats are not held up', async () => {
		const logger = new MemoryLogger();
		const broker = new PermissionBroker({ default: 'ask', timeoutMs: 60_000 }, logger);
		try {
			const shown: string[] = [];
			const sub = broker.onDidRequest((r) => shown.push(r.title));
			const abort = new AbortController();
			const total = maxShownPerChat + maxWaitingPerChat + 10;
			const flood = Array.from({ length: total }, (_, i) => broker.request({ chatId: 'flood', agent: 'a', title: `f${i}`, options }, abort.signal));
			const other = broker.request({ chatId: 'calm', agent: 'a', title: 'calm', options });
			assert.equal(shown.length, maxShownPerChat + 1, 'four of the flood are shown, and the other chat\'s request');
			assert.ok(shown.includes('calm'));
			const refused = await Promise.all(flood.slice(maxShownPerChat + maxWaitingPerChat));
			assert.ok(refused.every((o) => o.outcome === 'selected' && o.optionId === 'no' && o.decidedBy === 'policy'), 'past the queue, refused at once');
			assert.ok(logger.lines.some((l) => /asked for more than 68 permissions at once/.test(l)));
			// Answering the first shown one shows the next waiting one, in order.
			assert.equal(broker.decide(broker.pending.find((p) => p.title === 'f0')!.id, 'yes'), true);
			assert.deepEqual(await flood[0], { outcome: 'selected', optionId: 'yes', decidedBy: 'user' });
			assert.equal(shown[shown.length - 1], `f${maxShownPerChat}`);
			// A cancel settles shown and waiting ones alike.
			abort.abort();
			const rest = await Promise.all(flood.slice(1, maxShownPerChat + maxWaitingPerChat));
			assert.ok(rest.every((o) => o.outcome === 'cancelled'));
			assert.deepEqual(broker.pending.map((p) => p.title), ['calm']);
			broker.decide(broker.pending[0]!.id, 'no');
			assert.deepEqual(await other, { outcome: 'selected', optionId: 'no', decidedBy: 'user' });
			sub.dispose();
		} finally {
			broker.dispose();
		}
	});
});

suite('worktrees/dirtySnapshot', () => {
	test('a large file (streamed) changed in place at the same size, and many files at once, are told apart', async () => {
		const dir = tempDir();
		try {
			const repo = makeRepo(path.join(dir, 'r'));
			const big = Buffer.alloc(3 * 1024 * 1024, 7);
			fs.writeFileSync(path.join(repo, 'big.bin'), big);
			for (let i = 0; i < 60; i++) {
				fs.writeFileSync(path.join(repo, `f${String(i).padStart(2, '0')}.txt`), `${i}\n`);
			}
			const before = await takeDirtySnapshot(repo);
			big[big.length - 2] = 8; // one byte near the end, beyond the first chunk of the stream
			fs.writeFileSync(path.join(repo, 'big.bin'), big);
			fs.writeFileSync(path.join(repo, 'f59.txt'), 'x\n');
			const after = await takeDirtySnapshot(repo);
			assert.equal(after.size, 61);
			assert.deepEqual(diffSnapshots(repo, before, after), [
				{ path: 'big.bin', kind: 'modify' },
				{ path: 'f59.txt', kind: 'modify' },
			]);
		} finally {
			removeDir(dir);
		}
	});

	test('tells additions, modifications and deletions made between two snapshots', async () => {
		const dir = tempDir();
		try {
			const repo = makeRepo(path.join(dir, 'r'), { 'a.txt': 'a\n', 'b.txt': 'b\n', 'dirty.txt': 'd\n' });
			fs.writeFileSync(path.join(repo, 'dirty.txt'), 'dirty before\n');
			fs.writeFileSync(path.join(repo, 'untracked-before.txt'), 'u\n');
			const before = await takeDirtySnapshot(repo);
			fs.writeFileSync(path.join(repo, 'a.txt'), 'changed\n');
			fs.rmSync(path.join(repo, 'b.txt'));
			fs.mkdirSync(path.join(repo, 'new dir'));
			fs.writeFileSync(path.join(repo, 'new dir', 'ünï.txt'), 'n\n');
			fs.writeFileSync(path.join(repo, 'dirty.txt'), 'dirty and changed again\n');
			const after = await takeDirtySnapshot(repo);
			assert.deepEqual(diffSnapshots(repo, before, after), [
				{ path: 'a.txt', kind: 'modify' },
				{ path: 'b.txt', kind: 'delete' },
				{ path: 'dirty.txt', kind: 'modify' },
				{ path: 'new dir/ünï.txt', kind: 'add' },
			]);
		} finally {
			removeDir(dir);
		}
	});
});

suite('agents/environment and secret redaction', () => {
	const host = {
		PATH: '/usr/bin',
		HOME: '/home/u',
		LANG: 'C.UTF-8',
		LC_TIME: 'de_DE.UTF-8',
		AWS_ACCESS_KEY_ID: 'AKIA-host-access-key',
		AWS_REGION: 'eu-west-1',
		GITHUB_TOKEN: 'ghp-host-token-0000',
		RANDOM_HOST_VAR: 'x',
		ANTHROPIC_API_KEY: 'sk-ant-from-the-host',
	};

	test('an agent gets the pass-through list, its passEnv, its env, its declared keys, and nothing else', () => {
		const [def] = mergeDefinitions([{ id: 'a', transport: 'acp', command: 'a', env: { OWN: '1', LANG: 'en_US.UTF-8' }, secretEnv: ['ANTHROPIC_API_KEY'], passEnv: ['AWS_*'] }], []);
		const { env, secretNames } = agentEnvironment(def!, host, { OTHER_KEY: 'handed-out-key-1234' });
		assert.deepEqual(env, {
			PATH: '/usr/bin',
			HOME: '/home/u',
			LANG: 'en_US.UTF-8',
			LC_TIME: 'de_DE.UTF-8',
			AWS_ACCESS_KEY_ID: 'AKIA-host-access-key',
			AWS_REGION: 'eu-west-1',
			OWN: '1',
			ANTHROPIC_API_KEY: 'sk-ant-from-the-host',
			OTHER_KEY: 'handed-out-key-1234',
		});
		assert.deepEqual(secretNames.sort(), ['ANTHROPIC_API_KEY', 'AWS_ACCESS_KEY_ID', 'OTHER_KEY']);
		const [plain] = mergeDefinitions([{ id: 'b', transport: 'acp', command: 'b' }], []);
		assert.deepEqual(Object.keys(agentEnvironment(plain!, host).env).sort(), ['HOME', 'LANG', 'LC_TIME', 'PATH']);
		assert.throws(() => mergeDefinitions([{ id: 'c', transport: 'acp', command: 'c', passEnv: 'AWS_*' }], []), /"passEnv" must be an array of environment variable names/);
	});

	test('the redactor scrubs every known value from text, nested events and log lines, and leaves ordinary words alone', () => {
		const r = new SecretRedactor();
		r.addEnv({ ...host, GIT_AUTHOR_NAME: 'Ada Lovelace', PASSWORD: 'short', DB_PASSWORD: 'correct-horse-battery' });
		r.add('SECRET_IN_SECRET', 'ghp-host-token-0000-and-more');
		assert.equal(r.redact('GITHUB_TOKEN=ghp-host-token-0000 by Ada Lovelace'), 'GITHUB_TOKEN=[redacted GITHUB_TOKEN] by Ada Lovelace');
		assert.equal(r.redact('x ghp-host-token-0000-and-more'), 'x [redacted SECRET_IN_SECRET]', 'the longer secret wins');
		assert.equal(r.redact('short'), 'short', 'values too short to be keys are not redacted everywhere');
		assert.deepEqual(r.redactDeep({ a: ['sk-ant-from-the-host'], b: { 'correct-horse-battery': 1 }, n: 3 }), { a: ['[redacted ANTHROPIC_API_KEY]'], b: { '[redacted DB_PASSWORD]': 1 }, n: 3 });
		const inner = new MemoryLogger();
		redactingLogger(inner, r).warn('agent said AKIA-host-access-key');
		assert.deepEqual(inner.lines, ['warn agent said [redacted AWS_ACCESS_KEY_ID]']);
	});
});

suite('agents/acp/terminals', () => {
	let root: string;
	setup(() => {
		root = tempDir();
	});
	teardown(() => removeDir(root));

	test('what a command left running in the background is killed with it: on kill, release, cancel and dispose', async () => {
		const marker = (n: number): string => `${317 + n}.${process.pid % 1000}`;
		const running = (n: number): boolean => {
			for (const entry of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
				try {
					if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8') === `sleep\0${marker(n)}\0`) {
						return true;
					}
				} catch {
					// gone while read
				}
			}
			return false;
		};
		const gone = async (n: number): Promise<boolean> => {
			for (let i = 0; i < 100 && running(n); i++) {
				await new Promise((r) => setTimeout(r, 50));
			}
			return !running(n);
		};
		const terminals = new TerminalManager(root, { PATH: process.env.PATH ?? '' });
		try {
			const started = async (n: number): Promise<string> => {
				const { terminalId } = terminals.create({ command: 'sh', args: ['-c', `sleep ${marker(n)} & echo started`] });
				assert.deepEqual(await terminals.waitForExit(terminalId), { exitCode: 0, signal: null }, 'the command itself ended');
				// The background child may not have become `sleep` yet (a loaded machine): wait for it to.
				for (let i = 0; i < 100 && !running(n); i++) {
					await new Promise((r) => setTimeout(r, 50));
				}
				assert.ok(running(n), 'what it started in the background runs on');
				return terminalId;
			};
			terminals.kill(await started(1));
			assert.ok(await gone(1), 'kill');
			terminals.release(await started(2));
			assert.ok(await gone(2), 'release');
			await started(3);
			terminals.killAll();
			assert.ok(await gone(3), 'cancel (killAll)');
			await started(4);
			terminals.dispose();
			assert.ok(await gone(4), 'dispose');
		} finally {
			terminals.dispose();
		}
	});

	test('at most 32 commands of a session run at once; all its terminals together keep at most 64 MiB of output', async function () {
		this.timeout(120_000);
		const terminals = new TerminalManager(root, { PATH: process.env.PATH ?? '' });
		try {
			const sleepers = Array.from({ length: maxRunningTerminals }, () => terminals.create({ command: 'sleep', args: ['30'] }).terminalId);
			assert.throws(() => terminals.create({ command: 'sleep', args: ['30'] }), (e: unknown) => e instanceof AgentTabsError && e.code === 'terminal/tooMany' && /32 commands this agent started are still running/.test(e.message));
			terminals.kill(sleepers[0]!);
			await terminals.waitForExit(sleepers[0]!);
			sleepers.slice(1).forEach((id) => terminals.release(id));
			// Six commands print 16 MiB each and ask to keep all of it.
			const loud = Array.from({ length: 6 }, (_, i) => terminals.create({ command: process.execPath, args: ['-e', `const b = Buffer.alloc(1024 * 1024, 97); for (let i = 0; i < 16; i++) process.stdout.write(b); process.stdout.write("END${i}")`], outputByteLimit: 1e15 }).terminalId);
			for (const id of loud) {
				await terminals.waitForExit(id);
			}
			const outputs = loud.map((id) => terminals.output(id));
			const total = outputs.reduce((n, o) => n + o.output.length, 0);
			assert.ok(total <= maxRetainedOutput + 6 * 128 * 1024, `all terminals together keep ${total} bytes`);
			outputs.forEach((o, i) => assert.ok(o.output.endsWith(`END${i}`) && o.output.length >= 64 * 1024, `terminal ${i} keeps its newest output`));
			assert.ok(outputs.some((o) => o.truncated));
		} finally {
			terminals.dispose();
		}
	});

	test("an exit is reported with all of the command's output: what reaches the pipe as it ends, or just after from what it left running", async () => {
		const terminals = new TerminalManager(root, { PATH: process.env.PATH ?? '' });
		try {
			// The shell ends at once; what it started prints a moment later and ends (closing the output).
			const late = terminals.create({ command: 'sh', args: ['-c', '(sleep 0.05; printf late) & printf early'] });
			assert.deepEqual(await terminals.waitForExit(late.terminalId), { exitCode: 0, signal: null });
			assert.equal(terminals.output(late.terminalId).output, 'earlylate');
			// A dev server left running holds the output open and prints nothing more: the exit is still reported.
			const server = terminals.create({ command: 'sh', args: ['-c', 'sleep 30 & printf started'] });
			assert.deepEqual(await terminals.waitForExit(server.terminalId), { exitCode: 0, signal: null });
			assert.deepEqual(terminals.output(server.terminalId), { output: 'started', truncated: false, exitStatus: { exitCode: 0, signal: null } });
		} finally {
			terminals.dispose();
		}
	});

	test('a wait for a command the agent withdraws ends without an exit status; the command runs on', async () => {
		const terminals = new TerminalManager(root, { PATH: process.env.PATH ?? '' });
		try {
			const { terminalId } = terminals.create({ command: 'sleep 2; echo done' });
			const withdraw = new AbortController();
			setTimeout(() => withdraw.abort(), 100);
			assert.equal(await terminals.waitForExit(terminalId, withdraw.signal), undefined, 'no exit to report: the command has not ended');
			assert.equal(terminals.output(terminalId).exitStatus, undefined);
			assert.deepEqual(await terminals.waitForExit(terminalId), { exitCode: 0, signal: null });
			assert.equal(terminals.output(terminalId).output, 'done\n');
		} finally {
			terminals.dispose();
		}
	});

	test('output past the limit keeps its newest bytes at a character boundary; an agent cannot ask the host to keep more than 16 MiB', async () => {
		const terminals = new TerminalManager(root, { PATH: process.env.PATH ?? '' });
		try {
			// 24 MiB of "é" (two bytes each), asked to keep 10^15 bytes.
			const { terminalId } = terminals.create({ command: process.execPath, args: ['-e', 'const b = Buffer.from("é".repeat(512 * 1024)); for (let i = 0; i < 24; i++) process.stdout.write(b); process.stdout.write("END")'], outputByteLimit: 1e15 });
			assert.deepEqual(await terminals.waitForExit(terminalId), { exitCode: 0, signal: null });
			const out = terminals.output(terminalId);
			assert.equal(out.truncated, true);
			assert.equal(Buffer.byteLength(out.output), maxOutputLimit - 1, 'cut at a character boundary');
			assert.ok(out.output.endsWith('ééEND') && !out.output.includes('\uFFFD'));
			const small = terminals.create({ command: process.execPath, args: ['-e', 'process.stdout.write("a".repeat(100) + "tail")'], outputByteLimit: 10 });
			await terminals.waitForExit(small.terminalId);
			assert.deepEqual(terminals.output(small.terminalId), { output: 'aaaaaatail', truncated: true, exitStatus: { exitCode: 0, signal: null } });
		} finally {
			terminals.dispose();
		}
	});

	test('a cut through a secret in the output does not leave its end unredacted', async () => {
		const key = 'ghp_cut-through-by-the-limit-7777';
		const redactor = new SecretRedactor();
		redactor.add('GITHUB_TOKEN', key);
		const terminals = new TerminalManager(root, { PATH: process.env.PATH ?? '' }, (t, cut) => (cut ? redactor.redactCut(t) : redactor.redact(t)));
		try {
			for (const kept of [key.length - 4, key.length - 20]) {
				const { terminalId } = terminals.create({ command: process.execPath, args: ['-e', `process.stdout.write("before ${key} after")`], outputByteLimit: kept + ' after'.length });
				await terminals.waitForExit(terminalId);
				const out = terminals.output(terminalId);
				assert.equal(out.truncated, true);
				assert.equal(out.output, '[redacted GITHUB_TOKEN] after', `kept ${kept} characters of the key`);
			}
			const whole = terminals.create({ command: process.execPath, args: ['-e', `process.stdout.write("${key.slice(-6)} is not cut")`] });
			await terminals.waitForExit(whole.terminalId);
			assert.equal(terminals.output(whole.terminalId).output, `${key.slice(-6)} is not cut`, 'uncut output is left alone');
		} finally {
			terminals.dispose();
		}
	});
});
