import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type * as vscode from 'vscode';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../../../src/agents/definitions';
import { PermissionBroker } from '../../../src/agents/permissions';
import { Emitter } from '../../../src/common/event';
import { redactingLogger, SecretRedactor } from '../../../src/common/redact';
import { Core } from '../../../src/tasks/core';
import { ApiKeys } from '../../../src/vscode/apiKeys';
import { agentScript } from '../agentRig';
import { gitEnv, makeRepo } from '../gitRepo';
import { MemoryLogger, removeDir, tempDir, waitFor, wasmPath } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

/**
 * SecretStorage as VS Code gives it to the extension: strings under keys, and a change event for every store
 * and delete (from this window or another one). It holds them in memory: the OS keychain is VS Code's.
 */
class KeychainStorage implements vscode.SecretStorage {
	private readonly values = new Map<string, string>();
	private readonly changed = new Emitter<vscode.SecretStorageChangeEvent>((e) => {
		throw e;
	});
	readonly onDidChange = this.changed.event;

	get(key: string): Promise<string | undefined> {
		return Promise.resolve(this.values.get(key));
	}
	store(key: string, value: string): Promise<void> {
		this.values.set(key, value);
		this.changed.fire({ key });
		return Promise.resolve();
	}
	delete(key: string): Promise<void> {
		this.values.delete(key);
		this.changed.fire({ key });
		return Promise.resolve();
	}
}

/**
 * A key in SecretStorage that no agent was ever started with, pasted into a prompt: the window wires the
 * redactor as the extension does (every stored key registered before the store opens, later ones as they
 * are stored), so the key is in no byte the state folder holds, nor in the log; the agent gets the prompt
 * as typed.
 */
suite('vscode/apiKeys: every stored key is redacted from activation on', function () {
	this.timeout(30_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	let repo: string;
	let broker: PermissionBroker;
	let core: Core | undefined;

	setup(() => {
		dir = tempDir('agent-tabs-apikeys-');
		repo = makeRepo(path.join(dir, 'repo'));
		broker = new PermissionBroker({ default: 'allow', timeoutMs: 2000 }, new MemoryLogger());
	});
	teardown(async () => {
		await core?.shutdown();
		core = undefined;
		broker.dispose();
		removeDir(dir);
	});

	const scripted: AgentDefinition = { id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: {} };
	// Declares a key but is never started in these tests.
	const cloud: AgentDefinition = { id: 'cloud', label: 'Cloud', transport: 'acp', command: process.execPath, args: [agentScript], env: {}, secretEnv: ['CLOUD_API_KEY'] };

	/** Activation as in extension.ts: the redactor shared by the log and the core; keys registered, then the store opened. */
	async function activate(secrets: KeychainStorage, definitions: AgentDefinition[]): Promise<{ keys: ApiKeys; log: MemoryLogger; watching: { dispose(): void } }> {
		const redactor = new SecretRedactor();
		const log = new MemoryLogger();
		const logger = redactingLogger(log, redactor);
		const keys = new ApiKeys(secrets, redactor);
		const watching = keys.watch((e) => logger.error(String(e)));
		await keys.registerAll(definitions);
		core = await Core.open(
			{ dir: path.join(dir, 'state'), wasmPath },
			{
				logger,
				owner: 'an api keys test',
				interruptedTurnReason: 'the test host went away',
				worktrees: { root: path.join(dir, 'worktrees'), env: gitEnv(dir) },
				definitions: () => definitions,
				agentEnv: (def) => keys.envFor(def),
				redactor,
				permissions: broker,
				backends: { acp: new AcpBackend({ logger, startTimeoutMs: 5000, cancelGraceMs: 1000, killGraceMs: 1000 }) },
				flushMs: 20,
				hostEnv: { PATH: process.env.PATH },
			},
		);
		return { keys, log, watching };
	}

	/** Runs `prompt` as a task in a new session; returns the worktree it ran in. */
	async function runTask(prompt: string): Promise<string> {
		await core!.dispatcher.start();
		const task = await core!.dispatcher.add({ creator: 'new_task', agent: 'scripted', input: { text: prompt }, newSession: { repo, title: 'keys' } });
		const ended = await core!.dispatcher.whenEnded(task.id);
		assert.equal(ended.status, 'done', ended.error ?? undefined);
		return core!.worktreeRows.forSession(ended.session_id!)!.path;
	}

	/** Every file of the state folder (the database, its journal, the lock) after the store closed. */
	async function assertNotStored(secret: string, log: MemoryLogger): Promise<void> {
		await core!.shutdown();
		core = undefined;
		const state = path.join(dir, 'state');
		const files = fs.readdirSync(state).map((f) => path.join(state, f)).filter((f) => fs.statSync(f).isFile());
		assert.ok(files.some((f) => f.endsWith('.sqlite')), `the database is in ${JSON.stringify(files)}`);
		for (const file of files) {
			assert.ok(!fs.readFileSync(file, 'latin1').includes(secret), `${path.basename(file)} holds the key in clear`);
		}
		assert.ok(!log.lines.some((l) => l.includes(secret)), 'nor does the log');
	}

	test('a key stored before the window opened, declared by an agent never started, pasted in a task prompt and echoed by the agent', async () => {
		const secret = 'sk-cloud-0123456789abcdef';
		const secrets = new KeychainStorage();
		await new ApiKeys(secrets).set('CLOUD_API_KEY', secret); // an earlier window
		const { log, watching } = await activate(secrets, [scripted, cloud]);
		const worktree = await runTask(`write key.txt ${secret}\nsay the key is ${secret}`);
		watching.dispose();
		assert.equal(fs.readFileSync(path.join(worktree, 'key.txt'), 'utf8'), secret, 'the agent got the prompt as typed');
		const tasks = core!.dispatcher.list({ status: ['done'] });
		assert.equal(tasks[0]!.prompt, 'write key.txt [redacted CLOUD_API_KEY]\nsay the key is [redacted CLOUD_API_KEY]');
		assert.match(tasks[0]!.result ?? '', /the key is \[redacted CLOUD_API_KEY\]/, 'the echo is redacted in the result');
		await assertNotStored(secret, log);
	});

	test('a key set for an agent that no definition declares any more is still known', async () => {
		const secret = 'sk-removed-agent-9876543210';
		const secrets = new KeychainStorage();
		await new ApiKeys(secrets).set('OLD_PROVIDER_KEY', secret);
		const { log, watching } = await activate(secrets, [scripted]);
		await runTask(`say ${secret}`);
		watching.dispose();
		await assertNotStored(secret, log);
	});

	test('a key stored while the window runs (here with Set API Key, or by another window) is known from then on', async () => {
		const mine = 'sk-set-here-0123456789';
		const theirs = 'sk-other-window-0123456789';
		const secrets = new KeychainStorage();
		const { keys, log, watching } = await activate(secrets, [scripted, cloud]);
		await keys.set('CLOUD_API_KEY', mine);
		// Another window writes the same SecretStorage: this one hears of it through onDidChange.
		await secrets.store('agentTabs.apiKey.OTHER_API_KEY', theirs);
		await waitFor(() => core!.pool.redactor.redact(theirs) !== theirs, 'the other window\'s key to be known', 5000);
		await runTask(`say ${mine} and ${theirs}`);
		watching.dispose();
		await assertNotStored(mine, log);
		assert.ok(!fs.readFileSync(path.join(dir, 'state', 'agent-tabs.sqlite'), 'latin1').includes(theirs));
	});
});
