import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { TranscriptRepo, TurnRecorder } from '../../../src/db/transcriptRepo';
import type { Store } from '../../../src/db/store';
import { WorktreesRepo } from '../../../src/db/worktreesRepo';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv, makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, tempDir } from '../helpers';

/** Every file under a folder (except .git) with its bytes and executable bit. */
function snapshotFiles(dir: string): Record<string, { data: string; exec: boolean }> {
	const out: Record<string, { data: string; exec: boolean }> = {};
	const walk = (d: string): void => {
		for (const e of fs.readdirSync(d, { withFileTypes: true })) {
			if (e.name === '.git') {
				continue;
			}
			const p = path.join(d, e.name);
			if (e.isDirectory()) {
				walk(p);
			} else {
				out[path.relative(dir, p)] = { data: fs.readFileSync(p).toString('base64'), exec: (fs.statSync(p).mode & 0o111) !== 0 };
			}
		}
	};
	walk(dir);
	return out;
}

suite('worktrees: sessions that never lose work (real git)', function () {
	this.timeout(60_000);
	let dir: string;
	let repo: string;
	let store: Store;
	let service: WorktreeService;
	let running: string[];
	let env: NodeJS.ProcessEnv;
	const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });

	setup(async () => {
		dir = tempDir('agent-tabs-wt-');
		env = gitEnv(dir);
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n[commit]\n\tgpgsign = false\n');
		repo = makeRepo(path.join(dir, 'my repo ü'), { 'README.md': '# r\n', 'src/app.ts': 'export {};\n', '.gitignore': 'node_modules/\n.env*\n' });
		fs.writeFileSync(path.join(repo, '.env.local'), 'SECRET=1\n');
		store = await openStore(path.join(dir, 'state'));
		running = [];
		service = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), runningAgents: () => running, env });
	});
	teardown(async () => {
		await store.close();
		removeDir(dir);
	});

	test('a session gets a worktree outside the repository on agent-tabs/<slug>, with .env copied and setup run', async () => {
		const withSetup = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env, setupCommand: 'echo ready > setup-ran.txt' });
		const { session, worktree } = await withSetup.createSession({ repo, title: 'Fix the Login bug!' });
		assert.equal(worktree.branch, 'agent-tabs/fix-the-login-bug');
		assert.equal(worktree.path, path.join(dir, 'worktrees', 'fix-the-login-bug'));
		assert.ok(!worktree.path.startsWith(repo + path.sep));
		assert.equal(worktree.state, 'ready');
		assert.equal(worktree.base_ref, 'main');
		assert.equal(fs.readFileSync(path.join(worktree.path, '.env.local'), 'utf8'), 'SECRET=1\n');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'setup-ran.txt'), 'utf8').trim(), 'ready');
		assert.equal(new SessionsRepo(store).get(session.id)!.repo_root, repo);
		assert.equal(git(worktree.path, 'rev-parse', '--abbrev-ref', 'HEAD').trim(), 'agent-tabs/fix-the-login-bug');
	});

	test('branch-name collisions are resolved; two sessions created at once get two worktrees', async () => {
		git(repo, 'branch', 'agent-tabs/same');
		const [a, b] = await Promise.all([service.createSession({ repo, title: 'same' }), service.createSession({ repo, title: 'same' })]);
		assert.notEqual(a.worktree.path, b.worktree.path);
		assert.deepEqual([a.worktree.branch, b.worktree.branch].sort(), ['agent-tabs/same-2', 'agent-tabs/same-3']);
	});

	test('carrying the main checkout\'s uncommitted changes into the new worktree', async () => {
		fs.writeFileSync(path.join(repo, 'README.md'), '# changed in main\n');
		fs.writeFileSync(path.join(repo, 'new.txt'), 'untracked in main\n');
		const { worktree } = await service.createSession({ repo, title: 'carry', carryChanges: true });
		assert.equal(fs.readFileSync(path.join(worktree.path, 'README.md'), 'utf8'), '# changed in main\n');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'new.txt'), 'utf8'), 'untracked in main\n');
	});

	test('risk reports each category on its own and together', async () => {
		const { worktree } = await service.createSession({ repo, title: 'risky' });
		const wt = worktree.path;
		assert.equal((await service.risk(worktree.id)).clean, true);
		fs.writeFileSync(path.join(wt, 'README.md'), 'unstaged\n');
		let r = await service.risk(worktree.id);
		assert.deepEqual([r.unstaged, r.staged, r.untracked, r.clean], [['README.md'], [], [], false]);
		fs.writeFileSync(path.join(wt, 'src', 'staged.ts'), 'x\n');
		git(wt, 'add', 'src/staged.ts');
		fs.writeFileSync(path.join(wt, 'untracked file.txt'), 'u\n');
		fs.mkdirSync(path.join(wt, 'node_modules'));
		fs.writeFileSync(path.join(wt, 'node_modules', 'x.js'), '');
		r = await service.risk(worktree.id);
		assert.deepEqual(r.staged, ['src/staged.ts']);
		assert.deepEqual(r.untracked, ['untracked file.txt']);
		assert.ok(r.ignoredCount >= 1);
		git(wt, 'stash', 'push', '-m', 'wip');
		r = await service.risk(worktree.id);
		assert.equal(r.stashes.length, 1);
		git(wt, 'stash', 'drop');
		fs.writeFileSync(path.join(wt, 'feature.ts'), 'feature\n');
		git(wt, 'add', '-A');
		git(wt, 'commit', '-q', '-m', 'feature');
		r = await service.risk(worktree.id);
		assert.equal(r.unmerged.length, 1, 'a commit not in main');
		assert.deepEqual(r.unpushed, [], 'no remote: nothing to push to');
		running = ['chat-1'];
		r = await service.risk(worktree.id);
		assert.deepEqual(r.runningAgents, ['chat-1']);
		assert.match(r.summary, /1 commit not merged into main.*1 agent running/);
	});

	test('unpushed is relative to the upstream; squash-merged and rebased work is not unmerged', async () => {
		const remote = path.join(dir, 'remote.git');
		git(dir, 'init', '-q', '--bare', remote);
		git(repo, 'remote', 'add', 'origin', remote);
		git(repo, 'push', '-q', 'origin', 'main');
		const { worktree } = await service.createSession({ repo, title: 'pushed' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'a.txt'), 'a\n');
		git(wt, 'add', '-A');
		git(wt, 'commit', '-q', '-m', 'a');
		git(wt, 'push', '-q', '-u', 'origin', 'agent-tabs/pushed');
		fs.writeFileSync(path.join(wt, 'b.txt'), 'b\n');
		git(wt, 'add', '-A');
		git(wt, 'commit', '-q', '-m', 'b');
		let r = await service.risk(worktree.id);
		assert.equal(r.upstream, 'origin/agent-tabs/pushed');
		assert.equal(r.unpushed.length, 1, 'one commit ahead of its upstream');
		assert.equal(r.unmerged.length, 2);
		// Squash-merge the branch into main in the main checkout.
		git(repo, 'merge', '-q', '--squash', 'agent-tabs/pushed');
		git(repo, 'commit', '-q', '-m', 'squashed');
		r = await service.risk(worktree.id);
		assert.deepEqual(r.unmerged, [], 'squash-merged work is merged');
		// Rebased: a cherry-pick of a new commit counts as merged too.
		fs.writeFileSync(path.join(wt, 'c.txt'), 'c\n');
		git(wt, 'add', '-A');
		git(wt, 'commit', '-q', '-m', 'c');
		git(repo, 'cherry-pick', 'agent-tabs/pushed');
		r = await service.risk(worktree.id);
		assert.deepEqual(r.unmerged, []);
	});

	test('save, remove, restore: every file comes back byte for byte', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'precious' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'README.md'), 'modified\n');
		fs.writeFileSync(path.join(wt, 'src', 'staged.ts'), 'staged\n');
		git(wt, 'add', 'src/staged.ts');
		fs.mkdirSync(path.join(wt, 'dir with spaces', 'ünïcødé'), { recursive: true });
		fs.writeFileSync(path.join(wt, 'dir with spaces', 'ünïcødé', 'naïve file.txt'), 'unicode\n');
		fs.writeFileSync(path.join(wt, 'binary.bin'), Buffer.from([0, 1, 2, 255, 0, 13, 10, 128]));
		fs.writeFileSync(path.join(wt, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
		fs.rmSync(path.join(wt, 'src', 'app.ts'));
		const before = snapshotFiles(wt);

		const result = await service.archiveSession(session.id);
		assert.ok(result?.saved, 'work was saved');
		assert.ok(!fs.existsSync(wt), 'the folder is gone');
		assert.equal(git(repo, 'rev-parse', '--verify', 'refs/heads/agent-tabs/precious').trim().length, 40, 'the branch is kept');
		assert.ok(git(repo, 'rev-parse', '--verify', result!.saved!.ref).trim());
		assert.equal(new SessionsRepo(store).get(session.id)!.status, 'archived');

		const restored = await service.restoreSession(session.id);
		assert.equal(restored.path, wt);
		assert.deepEqual(snapshotFiles(wt), before);
		assert.equal(new SessionsRepo(store).get(session.id)!.status, 'active');
	});

	test('deleting a session saves first, keeps the branch and leaves the worktree row detached', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'to delete' });
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'do not lose me\n');
		const result = await service.deleteSession(session.id);
		assert.equal(result!.saved!.files, 1);
		assert.equal(new SessionsRepo(store).get(session.id), undefined);
		const row = new WorktreesRepo(store).get(worktree.id)!;
		assert.deepEqual([row.session_id, row.state, row.saved_ref], [null, 'removed', result!.saved!.ref]);
		assert.equal(git(repo, 'show', `${result!.saved!.ref}:work.txt`), 'do not lose me\n');
		const attached = await service.attachWorktree(worktree.id);
		assert.equal(attached.session.title, 'to delete', 'a restored worktree gets its session title back');
		assert.equal(fs.readFileSync(path.join(attached.worktree.path, 'work.txt'), 'utf8'), 'do not lose me\n');
	});

	test('a removal that cannot save removes nothing', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'unsaveable' });
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'keep\n');
		// Make the object database read-only: the save commit cannot be written.
		const objects = path.join(repo, '.git', 'objects');
		const dirs = fs.readdirSync(objects).map((d) => path.join(objects, d));
		for (const d of [objects, ...dirs]) {
			fs.chmodSync(d, 0o555);
		}
		try {
			if (process.getuid?.() === 0) {
				// Root ignores permissions: simulate a failing git instead by breaking the index path.
				fs.chmodSync(objects, 0o755);
				running = ['chat-busy'];
				await assert.rejects(service.deleteSession(session.id), /Agents are still running/);
			} else {
				await assert.rejects(service.deleteSession(session.id), /Could not save the work .* so it was not removed/);
			}
		} finally {
			for (const d of [objects, ...dirs]) {
				fs.chmodSync(d, 0o755);
			}
		}
		assert.ok(fs.existsSync(path.join(worktree.path, 'work.txt')));
		assert.ok(new SessionsRepo(store).get(session.id), 'the session is still there');
	});

	test('start-up reconciliation: a folder deleted behind our back is missing, an unknown worktree is adopted', async () => {
		const { worktree } = await service.createSession({ repo, title: 'vanishing' });
		fs.rmSync(worktree.path, { recursive: true, force: true });
		const stray = path.join(dir, 'worktrees', 'stray');
		git(repo, 'worktree', 'add', '-q', '-b', 'agent-tabs/stray', stray);
		const r = await service.reconcile(repo);
		assert.deepEqual(r.missing, [worktree.path]);
		assert.deepEqual(r.adopted, [stray]);
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'missing');
		assert.ok(git(repo, 'rev-parse', '--verify', 'refs/heads/agent-tabs/vanishing').trim(), 'the branch of a missing worktree is kept');
		assert.deepEqual(new WorktreesRepo(store).detached().map((w) => w.path), [stray]);
	});

	for (const strategy of ['merge', 'squash', 'rebase'] as const) {
		test(`merge back with ${strategy}: the base gets the work; a dirty main checkout or a conflict changes nothing`, async () => {
			const { session, worktree } = await service.createSession({ repo, title: `merge ${strategy}` });
			const wt = worktree.path;
			fs.writeFileSync(path.join(wt, 'feature.ts'), 'export const feature = 1;\n');
			git(wt, 'add', '-A');
			git(wt, 'commit', '-q', '-m', 'feature');
			// Meanwhile main moved on (no conflict), so rebase and merge have real work to do.
			fs.writeFileSync(path.join(repo, 'other.ts'), 'other\n');
			git(repo, 'add', '-A');
			git(repo, 'commit', '-q', '-m', 'other');

			fs.writeFileSync(path.join(repo, 'README.md'), 'dirty main\n');
			await assert.rejects(service.mergeSession(session.id, strategy), /main checkout .* has uncommitted changes/);
			git(repo, 'checkout', '-q', '--', 'README.md');
			fs.writeFileSync(path.join(wt, 'wip.txt'), 'wip\n');
			await assert.rejects(service.mergeSession(session.id, strategy), /session's worktree has uncommitted work/);
			fs.rmSync(path.join(wt, 'wip.txt'));

			const mainBefore = git(repo, 'rev-parse', 'HEAD').trim();
			const r = await service.mergeSession(session.id, strategy);
			assert.equal(fs.readFileSync(path.join(repo, 'feature.ts'), 'utf8'), 'export const feature = 1;\n');
			assert.notEqual(r.commit, mainBefore);
			assert.equal((await service.risk(worktree.id)).unmerged.length, 0, 'after merging, nothing is unmerged');
			await assert.rejects(service.mergeSession(session.id, strategy), /has no commits that main does not have/);
		});
	}

	test('a merge conflict is refused with the files named and leaves main as it was', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'conflicting' });
		fs.writeFileSync(path.join(worktree.path, 'README.md'), 'session version\n');
		git(worktree.path, 'commit', '-q', '-am', 'session');
		fs.writeFileSync(path.join(repo, 'README.md'), 'main version\n');
		git(repo, 'commit', '-q', '-am', 'main');
		const head = git(repo, 'rev-parse', 'HEAD').trim();
		for (const strategy of ['merge', 'squash', 'rebase'] as const) {
			await assert.rejects(service.mergeSession(session.id, strategy), /conflicts in README.md; a person needs to resolve that/);
			assert.equal(git(repo, 'rev-parse', 'HEAD').trim(), head);
			assert.equal(git(repo, 'status', '--porcelain').trim(), '');
			assert.equal(fs.readFileSync(path.join(repo, 'README.md'), 'utf8'), 'main version\n');
		}
	});

	test('a pull request without the GitHub CLI says what to do', async () => {
		const { session } = await service.createSession({ repo, title: 'pr' });
		await assert.rejects(service.createPullRequest(session.id, undefined), /needs the GitHub CLI \(gh\)/);
	});

	test('checkpoints: rewind restores the files of a checkpoint and keeps what it replaced', async () => {
		const { worktree } = await service.createSession({ repo, title: 'rewind' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'a.txt'), 'before\n');
		const ref = await service.checkpoint(wt, 'chat-x/turn-1-before');
		fs.writeFileSync(path.join(wt, 'a.txt'), 'after\n');
		fs.writeFileSync(path.join(wt, 'b.bin'), Buffer.from([0, 255]));
		fs.rmSync(path.join(wt, 'README.md'));
		const before = snapshotFiles(wt);
		const r = await service.rewind(wt, ref);
		assert.equal(fs.readFileSync(path.join(wt, 'a.txt'), 'utf8'), 'before\n');
		assert.ok(!fs.existsSync(path.join(wt, 'b.bin')));
		assert.equal(fs.readFileSync(path.join(wt, 'README.md'), 'utf8'), '# r\n');
		// The replaced state is itself a checkpoint: rewinding to it brings everything back.
		await service.rewind(wt, r.replacedRef);
		assert.deepEqual(snapshotFiles(wt), before);
	});

	test('checkpoints: every git state of the worktree is recorded as it is on disk, and its own index is untouched', async () => {
		const { worktree } = await service.createSession({ repo, title: 'index states' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'staged.txt'), 'staged\n');
		git(wt, 'add', 'staged.txt');
		fs.writeFileSync(path.join(wt, 'src/app.ts'), 'export const a = 1;\n');
		git(wt, 'add', 'src/app.ts');
		fs.writeFileSync(path.join(wt, 'src/app.ts'), 'export const a = 2; // partly staged\n');
		fs.writeFileSync(path.join(wt, 'untracked.txt'), 'new\n');
		git(wt, 'rm', '-q', '--cached', 'README.md'); // staged deletion, file still on disk
		const statusBefore = git(wt, 'status', '--porcelain=v1', '-z');
		const cachedBefore = git(wt, 'diff', '--cached', '--binary');
		const ref = await service.checkpoint(wt, 'chat-s/turn-1-before');
		assert.equal(git(wt, 'status', '--porcelain=v1', '-z'), statusBefore, 'the worktree index is not changed');
		assert.equal(git(wt, 'diff', '--cached', '--binary'), cachedBefore);
		const files = git(wt, 'ls-tree', '-r', '--name-only', ref).trim().split('\n').sort();
		assert.deepEqual(files, ['.gitignore', 'README.md', 'src/app.ts', 'staged.txt', 'untracked.txt']);
		assert.equal(git(wt, 'show', `${ref}:src/app.ts`), 'export const a = 2; // partly staged\n', 'the working tree content, not the staged one');
		// A file deleted on disk but still in the index is absent from the checkpoint.
		fs.rmSync(path.join(wt, 'staged.txt'));
		const ref2 = await service.checkpoint(wt, 'chat-s/turn-2-before');
		assert.ok(!git(wt, 'ls-tree', '-r', '--name-only', ref2).includes('staged.txt'));
	});

	test('checkpoints during a merge with a conflict record the files as they are and leave the merge as it was', async () => {
		const { worktree } = await service.createSession({ repo, title: 'merge states' });
		const wt = worktree.path;
		git(wt, 'checkout', '-q', '-b', 'other');
		fs.writeFileSync(path.join(wt, 'README.md'), '# other\n');
		git(wt, 'commit', '-qam', 'other');
		git(wt, 'checkout', '-q', worktree.branch!);
		fs.writeFileSync(path.join(wt, 'README.md'), '# ours\n');
		git(wt, 'commit', '-qam', 'ours');
		assert.throws(() => execFileSync('git', ['merge', 'other'], { cwd: wt, env, stdio: 'ignore' }));
		const statusBefore = git(wt, 'status', '--porcelain=v1', '-z');
		assert.match(statusBefore, /^UU README\.md/);
		const ref = await service.checkpoint(wt, 'chat-m/turn-1-before');
		assert.equal(git(wt, 'status', '--porcelain=v1', '-z'), statusBefore, 'the conflict is still there, unresolved');
		assert.ok(fs.existsSync(path.join(git(wt, 'rev-parse', '--absolute-git-dir').trim(), 'MERGE_HEAD')));
		assert.match(git(wt, 'show', `${ref}:README.md`), /<<<<<<< HEAD\n# ours\n=======\n# other\n>>>>>>> other/);
	});

	test('checkpoints beyond the last N per chat are pruned, except turns with pending changes; saved refs stay', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'prune' });
		const wt = worktree.path;
		const sessions = new SessionsRepo(store);
		const chat = sessions.createChat({ sessionId: session.id, agent: 'claude' });
		const transcript = new TranscriptRepo(store);
		const keep2 = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env, checkpointsPerChat: 2 });
		git(wt, 'update-ref', 'refs/agent-tabs/saved/keep-me', 'HEAD');
		const turns: { id: string; before: string; after: string }[] = [];
		for (let i = 1; i <= 5; i++) {
			const turn = transcript.startTurn({ chatId: chat.id, agent: 'claude', prompt: `turn ${i}` });
			fs.writeFileSync(path.join(wt, `t${i}.txt`), `${i}\n`);
			const before = await keep2.checkpoint(wt, `${chat.id}/t${i}`);
			transcript.setCheckpoints(turn.id, before, null);
			if (i === 1) {
				new PendingChangesRepo(store).record({ sessionId: session.id, worktreeId: worktree.id, chatId: chat.id, agent: 'claude', turnId: turn.id, path: 't1.txt', kind: 'add', source: 'watcher', shared: false });
			}
			new TurnRecorder(transcript, turn).finish({ stopReason: 'end_turn', backendSessionId: 'b' });
			const after = await keep2.checkpoint(wt, `${chat.id}/t${i}-after`);
			transcript.setCheckpoints(turn.id, null, after);
			turns.push({ id: turn.id, before, after });
		}
		const refs = git(wt, 'for-each-ref', '--format=%(refname)', 'refs/agent-tabs/').trim().split('\n');
		const live = (r: string): boolean => refs.includes(r);
		// Turn 1 has a pending change; turns 4 and 5 are the last two; turns 2 and 3 are pruned.
		assert.deepEqual(turns.map((t) => [live(t.before), live(t.after)]), [[true, true], [false, false], [false, false], [true, true], [true, true]]);
		assert.ok(live('refs/agent-tabs/saved/keep-me'), 'saved work is never pruned');
		const rows = transcript.listTurns(chat.id);
		assert.deepEqual(rows.map((r) => r.checkpoint_before !== null), [true, false, false, true, true], 'no rewind is offered for pruned turns');
	});

	test('errors in plain words', async () => {
		const plain = path.join(dir, 'plain');
		fs.mkdirSync(plain);
		await assert.rejects(service.createSession({ repo: plain, title: 'x' }), /is not a git repository/);
		const bare = path.join(dir, 'bare.git');
		git(dir, 'init', '-q', '--bare', bare);
		await assert.rejects(service.createSession({ repo: bare, title: 'x' }), /bare git repository/);
		await assert.rejects(service.createSession({ repo, title: 'x', baseRef: 'no-such-branch' }), /"no-such-branch" is not a branch, tag or commit/);
		const empty = path.join(dir, 'empty');
		fs.mkdirSync(empty);
		git(empty, 'init', '-q');
		await assert.rejects(service.createSession({ repo: empty, title: 'x' }), /has no commits yet/);
		await assert.rejects(service.createSession({ repo: path.join(dir, 'nowhere'), title: 'x' }), /does not exist/);
		const noGit = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env: { ...env, PATH: path.join(dir, 'empty-path') } });
		await assert.rejects(noGit.createSession({ repo, title: 'x' }), /git is not installed or not on PATH/);
		const locked = await service.createSession({ repo, title: 'locked one' });
		git(repo, 'worktree', 'lock', '--reason', 'on a USB disk', locked.worktree.path);
		await assert.rejects(service.deleteSession(locked.session.id), /is locked in git \(git worktree lock\), so it is left alone. Unlock it with "git worktree unlock/);
		assert.ok(fs.existsSync(locked.worktree.path));
		git(repo, 'checkout', '-q', '--detach');
		const detached = await service.createSession({ repo, title: 'from detached head' });
		assert.match(detached.worktree.base_ref ?? '', /^[0-9a-f]{40}$/, 'a detached HEAD is based on its commit');
	});
});
