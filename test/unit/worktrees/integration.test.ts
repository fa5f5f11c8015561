import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CancelledError } from '../../../src/common/errors';
import type { Store } from '../../../src/db/store';
import { WorktreesRepo } from '../../../src/db/worktreesRepo';
import { processAlive } from '../../../src/worktrees/gitProcess';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv, makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, tempDir, waitFor } from '../helpers';

suite('worktrees/integration: merge cancelled half-way (real git, a real hook)', function () {
	this.timeout(60_000);
	let dir: string;
	let store: Store;

	setup(async () => {
		dir = tempDir('agent-tabs-merge-');
		store = await openStore(path.join(dir, 'state'));
	});
	teardown(async () => {
		await store.close();
		removeDir(dir);
	});

	/** A repository with a session whose branch has one commit to merge. */
	async function sessionToMerge(): Promise<{ repo: string; sessionId: string; git: (cwd: string, ...args: string[]) => string; service: WorktreeService }> {
		const env = gitEnv(dir);
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n[commit]\n\tgpgsign = false\n');
		const repo = makeRepo(path.join(dir, 'repo'), { 'a.txt': 'a\n' });
		const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
		const service = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env });
		const { session, worktree } = await service.createSession({ repo, title: 'merge me' });
		fs.writeFileSync(path.join(worktree.path, 'b.txt'), 'b\n');
		git(worktree.path, 'add', 'b.txt');
		git(worktree.path, 'commit', '-q', '-m', 'b');
		return { repo, sessionId: session.id, git, service };
	}

	test('cancelling a merge while its hook runs ends the hook and leaves the main checkout as it was', async () => {
		const { repo, sessionId, git, service } = await sessionToMerge();
		const headBefore = git(repo, 'rev-parse', 'HEAD');
		// Runs after the merge has written the index and files, before the commit: the worst moment to stop.
		const marker = path.join(dir, 'hook-pid');
		fs.writeFileSync(path.join(repo, '.git', 'hooks', 'pre-merge-commit'), `#!/bin/sh\necho $$ > "${marker}"\nsleep 300\n`, { mode: 0o755 });
		const cancel = new AbortController();
		const merging = service.mergeSession(sessionId, 'merge', { signal: cancel.signal });
		await waitFor(() => fs.existsSync(marker) && fs.readFileSync(marker, 'utf8').endsWith('\n'), 'the merge hook to run');
		assert.ok(fs.existsSync(path.join(repo, 'b.txt')), 'the merge had changed the main checkout when it was cancelled');
		cancel.abort();
		await assert.rejects(merging, CancelledError);
		assert.equal(processAlive(Number(fs.readFileSync(marker, 'utf8'))), false, 'the hook was ended with git');
		assert.equal(git(repo, 'rev-parse', 'HEAD'), headBefore);
		assert.equal(git(repo, 'status', '--porcelain'), '');
		assert.ok(!fs.existsSync(path.join(repo, '.git', 'MERGE_HEAD')));
		assert.ok(!fs.existsSync(path.join(repo, 'b.txt')));
	});

	test('a squash whose commit a hook refuses changes nothing and says why', async () => {
		const { repo, sessionId, git, service } = await sessionToMerge();
		const headBefore = git(repo, 'rev-parse', 'HEAD');
		fs.writeFileSync(path.join(repo, '.git', 'hooks', 'pre-commit'), '#!/bin/sh\necho "lint failed: b.txt" >&2\nexit 1\n', { mode: 0o755 });
		await assert.rejects(service.mergeSession(sessionId, 'squash'), /^AgentTabsError: Committing the squash of agent-tabs\/merge-me into main failed: lint failed: b\.txt\. Nothing was changed\.$/);
		assert.equal(git(repo, 'rev-parse', 'HEAD'), headBefore);
		assert.equal(git(repo, 'status', '--porcelain'), '');
	});

	for (const strategy of ['merge', 'rebase'] as const) {
		test(`a ${strategy} whose commit cannot be signed says so in git's words, not "conflicts", and changes nothing`, async () => {
			const { repo, sessionId, git, service } = await sessionToMerge();
			// The base moved on, so a rebase has commits to rewrite (and sign).
			fs.writeFileSync(path.join(repo, 'c.txt'), 'c\n');
			git(repo, 'add', 'c.txt');
			git(repo, 'commit', '-q', '-m', 'c');
			const headBefore = git(repo, 'rev-parse', 'HEAD');
			// commit.gpgsign with a signing program that fails, as with a missing or locked key.
			const gpg = path.join(dir, 'gpg-fails');
			fs.writeFileSync(gpg, '#!/bin/sh\necho "gpg: signing failed: No secret key" >&2\nexit 2\n', { mode: 0o755 });
			git(repo, 'config', 'commit.gpgsign', 'true');
			git(repo, 'config', 'gpg.program', gpg);
			const error = await service.mergeSession(sessionId, strategy).then(
				() => assert.fail('the merge succeeded without a signature'),
				(e: unknown) => e as Error & { code?: string },
			);
			assert.equal(error.code, 'merge/failed', error.message);
			assert.match(error.message, /failed: .*gpg.* Nothing was changed\.$/);
			assert.doesNotMatch(error.message, /conflict/);
			assert.equal(git(repo, 'rev-parse', 'HEAD'), headBefore);
			assert.equal(git(repo, 'status', '--porcelain'), '');
		});
	}

	test('a merge a pre-merge-commit hook refuses names the hook\'s words and changes nothing', async () => {
		const { repo, sessionId, git, service } = await sessionToMerge();
		const headBefore = git(repo, 'rev-parse', 'HEAD');
		fs.writeFileSync(path.join(repo, '.git', 'hooks', 'pre-merge-commit'), '#!/bin/sh\necho "merges need a ticket number" >&2\nexit 1\n', { mode: 0o755 });
		await assert.rejects(service.mergeSession(sessionId, 'merge'), (e: Error & { code?: string }) => e.code === 'merge/failed' && /merges need a ticket number/.test(e.message) && !/conflict/.test(e.message));
		assert.equal(git(repo, 'rev-parse', 'HEAD'), headBefore);
		assert.equal(git(repo, 'status', '--porcelain'), '');
		assert.ok(!fs.existsSync(path.join(repo, '.git', 'MERGE_HEAD')));
	});

	test('a reference-transaction hook that protects main: its reason is said; when it also blocks the undo, what is left and how to finish is said', async () => {
		const { repo, sessionId, git, service } = await sessionToMerge();
		fs.writeFileSync(path.join(repo, 'c.txt'), 'c\n');
		git(repo, 'add', 'c.txt');
		git(repo, 'commit', '-q', '-m', 'c');
		const hook = path.join(repo, '.git', 'hooks', 'reference-transaction');
		// Refuses updates of main only: the rebase is undone (the session branch back where it was).
		fs.writeFileSync(hook, '#!/bin/sh\n[ "$1" = prepared ] || exit 0\nif grep -q " refs/heads/main$"; then echo "main is protected" >&2; exit 1; fi\nexit 0\n', { mode: 0o755 });
		await assert.rejects(service.mergeSession(sessionId, 'rebase'), (e: Error & { code?: string }) => e.code === 'merge/failed' && /main is protected/.test(e.message) && /Nothing was changed\.$/.test(e.message));
		assert.equal(git(repo, 'status', '--porcelain'), '', 'the main checkout is as it was');
		// Refuses every ref update: the rebase cannot be undone either, and the message says so instead of "nothing changed".
		fs.writeFileSync(hook, '#!/bin/sh\n[ "$1" = prepared ] || exit 0\necho "frozen for the release" >&2\nexit 1\n', { mode: 0o755 });
		const error = await service.mergeSession(sessionId, 'rebase').then(
			() => assert.fail('the rebase went through'),
			(e: unknown) => e as Error & { code?: string },
		);
		assert.equal(error.code, 'merge/undoFailed', error.message);
		assert.match(error.message, /frozen for the release.* Undoing it failed too: .* is left with a rebase in progress.*; once the cause is fixed, run "git rebase --abort" there\.$/);
		assert.doesNotMatch(error.message, /Nothing was changed/);
	});

	test('merge, squash and rebase commit as the user (their git identity), not as Agent Tabs', async () => {
		const { repo, sessionId, git, service } = await sessionToMerge();
		const who = (rev: string): string => git(repo, 'log', '-1', '--format=%an <%ae> / %cn <%ce>', rev).trim();
		const user = `${git(repo, 'config', 'user.name').trim()} <${git(repo, 'config', 'user.email').trim()}>`;
		await service.mergeSession(sessionId, 'merge');
		assert.equal(who('HEAD'), `${user} / ${user}`);
		const commitInSession = async (file: string): Promise<string> => {
			const { session, worktree } = await service.createSession({ repo, title: `then ${file}` });
			fs.writeFileSync(path.join(worktree.path, file), `${file}\n`);
			git(worktree.path, 'add', file);
			git(worktree.path, 'commit', '-q', '-m', file);
			return session.id;
		};
		await service.mergeSession(await commitInSession('c.txt'), 'squash');
		assert.equal(who('HEAD'), `${user} / ${user}`);
		const rebased = await commitInSession('d.txt');
		// The base moves on, so the rebase writes the session's commit anew.
		fs.writeFileSync(path.join(repo, 'e.txt'), 'e\n');
		git(repo, 'add', 'e.txt');
		git(repo, 'commit', '-q', '-m', 'e');
		await service.mergeSession(rebased, 'rebase');
		assert.equal(git(repo, 'log', '-1', '--format=%s', 'HEAD').trim(), 'd.txt');
		assert.equal(who('HEAD'), `${user} / ${user}`);
	});

	test('a session started from a linked worktree of the user\'s merges into that worktree, where its branch is checked out', async () => {
		const env = gitEnv(dir);
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n[commit]\n\tgpgsign = false\n');
		const repo = makeRepo(path.join(dir, 'repo'), { 'a.txt': 'a\n' });
		const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
		const mine = path.join(dir, 'mine');
		git(repo, 'worktree', 'add', '-q', '-b', 'mine', mine);
		const service = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env });
		const { session, worktree } = await service.createSession({ repo: mine, title: 'from my worktree' });
		assert.equal(worktree.base_ref, 'mine');
		fs.writeFileSync(path.join(worktree.path, 'b.txt'), 'b\n');
		git(worktree.path, 'add', 'b.txt');
		git(worktree.path, 'commit', '-q', '-m', 'b');
		await service.mergeSession(session.id, 'merge');
		assert.equal(fs.readFileSync(path.join(mine, 'b.txt'), 'utf8'), 'b\n', 'merged where mine is checked out');
		assert.equal(git(repo, 'symbolic-ref', '--short', 'HEAD').trim(), 'main', 'the main checkout stays on main');
		assert.ok(!fs.existsSync(path.join(repo, 'b.txt')));
	});

	for (const strategy of ['merge', 'squash', 'rebase'] as const) {
		test(`${strategy}: a hidden edit in the main checkout (assume-unchanged, skip-worktree) is refused, named and left as it is`, async () => {
			const env = gitEnv(dir);
			fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n[commit]\n\tgpgsign = false\n');
			const repo = makeRepo(path.join(dir, 'repo'), { 'config.txt': 'port=1\n', 'local.txt': 'x=1\n' });
			const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
			const service = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env });
			const { session, worktree } = await service.createSession({ repo, title: 'hidden edit' });
			fs.writeFileSync(path.join(worktree.path, 'config.txt'), 'port=2\n');
			fs.writeFileSync(path.join(worktree.path, 'local.txt'), 'x=2\n');
			git(worktree.path, 'commit', '-q', '-am', 'config');
			git(repo, 'update-index', '--assume-unchanged', 'config.txt');
			git(repo, 'update-index', '--skip-worktree', 'local.txt');
			fs.writeFileSync(path.join(repo, 'config.txt'), 'port=mine\n');
			fs.writeFileSync(path.join(repo, 'local.txt'), 'x=mine\n');
			const headBefore = git(repo, 'rev-parse', 'HEAD');
			const error = await service.mergeSession(session.id, strategy).then(
				() => assert.fail('the merge went ahead over hidden edits'),
				(e: unknown) => e as Error & { code?: string },
			);
			assert.equal(error.code, 'merge/dirtyMain', error.message);
			assert.match(error.message, /has changes git is told not to look at \(marked assume-unchanged or skip-worktree\) in (config\.txt, local\.txt|local\.txt, config\.txt);.* Nothing was merged\.$/);
			assert.equal(fs.readFileSync(path.join(repo, 'config.txt'), 'utf8'), 'port=mine\n');
			assert.equal(fs.readFileSync(path.join(repo, 'local.txt'), 'utf8'), 'x=mine\n');
			assert.equal(git(repo, 'rev-parse', 'HEAD'), headBefore);
			// With the edits undone and the marks cleared, the merge goes through.
			fs.writeFileSync(path.join(repo, 'config.txt'), 'port=1\n');
			fs.writeFileSync(path.join(repo, 'local.txt'), 'x=1\n');
			git(repo, 'update-index', '--no-assume-unchanged', 'config.txt');
			git(repo, 'update-index', '--no-skip-worktree', 'local.txt');
			await service.mergeSession(session.id, strategy);
			assert.equal(fs.readFileSync(path.join(repo, 'config.txt'), 'utf8'), 'port=2\n');
		});
	}

	test('a base that is a tag, a remote branch or a commit is refused in words that say what it is; a local branch spelled in full is merged into', async () => {
		const env = gitEnv(dir);
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n[commit]\n\tgpgsign = false\n');
		const repo = makeRepo(path.join(dir, 'repo'), { 'a.txt': 'a\n' });
		const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
		const service = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env });
		git(repo, 'tag', 'v1');
		// origin/main as a clone has it, followed by main.
		git(path.dirname(repo), 'clone', '-q', '--bare', repo, 'origin.git');
		git(repo, 'remote', 'add', 'origin', path.join(path.dirname(repo), 'origin.git'));
		git(repo, 'fetch', '-q', 'origin');
		git(repo, 'branch', '-q', '--set-upstream-to', 'origin/main', 'main');
		const startedFrom = async (baseRef: string): Promise<string> => {
			const { session, worktree } = await service.createSession({ repo, title: `from ${baseRef}`, baseRef });
			fs.writeFileSync(path.join(worktree.path, 'b.txt'), `${baseRef}\n`);
			git(worktree.path, 'add', 'b.txt');
			git(worktree.path, 'commit', '-q', '-m', 'b');
			return session.id;
		};
		const refusal = async (baseRef: string): Promise<Error & { code?: string }> => {
			const id = await startedFrom(baseRef);
			const headBefore = git(repo, 'rev-parse', 'HEAD');
			const error = await service.mergeSession(id, 'merge').then(
				() => assert.fail(`merged into ${baseRef}`),
				(e: unknown) => e as Error & { code?: string },
			);
			assert.equal(error.code, 'merge/baseNotBranch', error.message);
			assert.doesNotMatch(error.message, /no longer exists|git branch /, 'never advice to make a branch of that name');
			assert.match(error.message, /merging needs a local branch, checked out in the main checkout, to move\./);
			assert.match(error.message, /Nothing was merged\.$/);
			assert.equal(git(repo, 'rev-parse', 'HEAD'), headBefore);
			assert.equal(git(repo, 'status', '--porcelain'), '');
			return error;
		};
		assert.match((await refusal('v1')).message, /^The session's base v1 is a tag, not a branch, .* Merge agent-tabs\/from-v1 yourself where the branch it should go into is checked out \("git merge agent-tabs\/from-v1"\), or create a pull request\./);
		assert.match((await refusal('origin/main')).message, /^The session's base origin\/main is a remote branch, .* main follows it: check out main in the main checkout and run "git merge agent-tabs\/from-origin-main" there, or create a pull request\./);
		assert.match((await refusal('HEAD~0')).message, /^The session's base HEAD~0 names a commit \(the session started at [0-9a-f]{12}\), not a branch, /);
		// A session recorded with HEAD as its base (as before): HEAD is whatever is checked out now, so a commit too.
		const fromHead = await startedFrom('HEAD');
		assert.equal(new WorktreesRepo(store).forSession(fromHead)!.base_ref, 'main', '--base HEAD is the branch checked out');
		store.write((tx) => tx.run("UPDATE worktrees SET base_ref = 'HEAD' WHERE session_id = ?", [fromHead]));
		const headError = await service.mergeSession(fromHead, 'merge').then(
			() => assert.fail('merged into HEAD'),
			(e: unknown) => e as Error & { code?: string },
		);
		assert.equal(headError.code, 'merge/baseNotBranch', headError.message);
		assert.match(headError.message, /^The session's base HEAD names a commit \(the session started at [0-9a-f]{12}\), not a branch, /);
		// A remote branch pruned since: gone, and still never a branch to create under its name.
		git(repo, 'update-ref', 'refs/remotes/origin/feature', 'HEAD');
		const fromFeature = await startedFrom('origin/feature');
		git(repo, 'update-ref', '-d', 'refs/remotes/origin/feature');
		await assert.rejects(service.mergeSession(fromFeature, 'merge'), (e: Error & { code?: string }) => e.code === 'merge/noBase' && /^The session's base origin\/feature no longer exists \(a branch of the remote origin, deleted or pruned\), so there is nothing to merge into\. Merge .* yourself/.test(e.message) && !/git branch /.test(e.message));
		const merged = await service.mergeSession(await startedFrom('refs/heads/main'), 'merge');
		assert.match(merged.message, /is in main \(merge, /);
		assert.equal(fs.readFileSync(path.join(repo, 'b.txt'), 'utf8'), 'refs/heads/main\n');
	});

	test('no git identity: merge and squash say how to set one, in place of git\'s raw words; a session from a detached HEAD says it has no branch to merge into', async () => {
		const { repo, sessionId, git, service } = await sessionToMerge();
		fs.writeFileSync(path.join(repo, 'c.txt'), 'c\n');
		git(repo, 'add', 'c.txt');
		git(repo, 'commit', '-q', '-m', 'c');
		// No identity anywhere, and none guessed from the host name (which may or may not work on a machine).
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[commit]\n\tgpgsign = false\n[user]\n\tuseConfigOnly = true\n');
		git(repo, 'config', '--unset', 'user.name');
		git(repo, 'config', '--unset', 'user.email');
		for (const strategy of ['merge', 'squash'] as const) {
			await assert.rejects(service.mergeSession(sessionId, strategy), /git does not know who you are, so it cannot make the commit: run git config --global user\.name "Your Name" and git config --global user\.email "you@example\.com"\. Nothing was changed\./);
		}
		assert.equal(git(repo, 'status', '--porcelain'), '');
		git(repo, 'checkout', '-q', '--detach');
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n');
		const detached = await service.createSession({ repo, title: 'from a detached head' });
		await assert.rejects(service.mergeSession(detached.session.id, 'merge'), /The session was started from a detached HEAD \(commit [0-9a-f]{12}\), so it has no branch to merge into\./);
	});
});
