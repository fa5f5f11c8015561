import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Store } from '../../../src/db/store';
import { decideSetupCommand, type SetupCommandAnswer } from '../../../src/worktrees/setupCommand';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv, makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, tempDir } from '../helpers';

/**
 * A repository's proposed setup command (`agentTabs.worktrees.proposedSetupCommand`): real sessions in real git
 * repositories, with the person's answers scripted in place of VS Code's modal dialog (src/vscode/userSettings.ts
 * is that dialog's adapter); the command is real and leaves a file in the worktree when it runs.
 */
suite('worktrees: a repository\'s proposed setup command runs only once the user confirmed it', function () {
	this.timeout(60_000);
	let dir: string;
	let store: Store;
	let env: NodeJS.ProcessEnv;
	/** Remembered answers, as VS Code's global state keeps them across windows. */
	let memory: Map<string, unknown>;
	/** Every question asked, and the answers still to give (in order). */
	let asked: { repo: string; command: string }[];
	let answers: SetupCommandAnswer[];
	let own: string;
	let proposals: Map<string, string>;
	const proposal = 'echo proposed > setup-ran.txt';

	setup(async () => {
		dir = tempDir('agent-tabs-setup-');
		env = gitEnv(dir);
		store = await openStore(path.join(dir, 'state'));
		memory = new Map();
		asked = [];
		answers = [];
		own = '';
		proposals = new Map();
	});
	teardown(async () => {
		await store.close();
		removeDir(dir);
	});

	function repository(name: string, proposed = proposal): string {
		const repo = makeRepo(path.join(dir, name));
		proposals.set(repo, proposed);
		return repo;
	}

	const service = (): WorktreeService =>
		new WorktreeService(store, new MemoryLogger(), {
			root: path.join(dir, 'worktrees'),
			env,
			setupCommandFor: (repo) =>
				decideSetupCommand(repo, {
					own,
					proposed: proposals.get(repo),
					memory: { get: (key) => memory.get(key), update: async (key, value) => void memory.set(key, value) },
					confirm: async (repo, command) => {
						asked.push({ repo, command });
						assert.ok(answers.length > 0, `asked about ${command} in ${repo} although no question was expected`);
						return answers.shift();
					},
				}),
		});

	/** A new session in `repo`; whether the setup command ran in its worktree. */
	async function newSessionRan(repo: string, title: string): Promise<boolean> {
		const { worktree } = await service().createSession({ repo, title });
		const marker = path.join(worktree.path, 'setup-ran.txt');
		return fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').trim() === 'proposed';
	}

	test('confirmed once, it runs for that and every later session of the repository without asking again', async () => {
		const repo = repository('repo');
		answers = ['run'];
		assert.equal(await newSessionRan(repo, 'first'), true);
		assert.deepEqual(asked, [{ repo, command: proposal }]);
		assert.equal(await newSessionRan(repo, 'second'), true);
		assert.equal(asked.length, 1, 'asked once per repository');
	});

	test('declined, it never runs and the answer is remembered', async () => {
		const repo = repository('repo');
		answers = ['skip'];
		assert.equal(await newSessionRan(repo, 'first'), false);
		assert.equal(await newSessionRan(repo, 'second'), false);
		assert.equal(asked.length, 1);
	});

	test('a question closed without an answer runs nothing and is asked again next time', async () => {
		const repo = repository('repo');
		answers = [undefined, undefined];
		assert.equal(await newSessionRan(repo, 'first'), false);
		assert.equal(await newSessionRan(repo, 'second'), false);
		assert.equal(asked.length, 2);
		assert.equal(memory.size, 0, 'no answer is remembered');
	});

	test('a changed proposal, or another repository proposing the same command, is asked about again', async () => {
		const repo = repository('repo');
		const other = repository('other');
		answers = ['run', 'skip'];
		assert.equal(await newSessionRan(repo, 'first'), true);
		assert.equal(await newSessionRan(other, 'elsewhere'), false, 'the confirmation of one repository is not another\'s');
		const changed = 'echo proposed > setup-ran.txt; echo changed > changed.txt';
		proposals.set(repo, changed);
		answers = [undefined];
		assert.equal(await newSessionRan(repo, 'after the change'), false, 'a changed proposal does not run on the old answer');
		assert.deepEqual(
			asked.map((a) => [path.basename(a.repo), a.command]),
			[
				['repo', proposal],
				['other', proposal],
				['repo', changed],
			],
		);
	});

	test('a restored worktree runs the confirmed proposal again, without asking', async () => {
		const runs = path.join(dir, 'runs.log');
		const repo = repository('repo', `echo ran >> "${runs}"`);
		answers = ['run'];
		const { session } = await service().createSession({ repo, title: 'restored' });
		await service().archiveSession(session.id);
		await service().restoreSession(session.id);
		assert.equal(fs.readFileSync(runs, 'utf8'), 'ran\nran\n', 'once at creation, once at the restore');
		assert.equal(asked.length, 1);
	});

	test('the user\'s own setup command wins without a question; no proposal means no question', async () => {
		const repo = repository('repo');
		own = 'echo own > own-ran.txt';
		const { worktree } = await service().createSession({ repo, title: 'own' });
		assert.equal(fs.readFileSync(path.join(worktree.path, 'own-ran.txt'), 'utf8').trim(), 'own');
		assert.ok(!fs.existsSync(path.join(worktree.path, 'setup-ran.txt')));
		own = '';
		const quiet = repository('quiet', '   ');
		assert.equal(await newSessionRan(quiet, 'nothing proposed'), false);
		assert.deepEqual(asked, []);
	});
});
