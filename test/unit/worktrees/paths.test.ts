import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { gitDirOf, isSameOrInside, realPathLoose, refuseRootInsideCheckouts, repositoryAdminFolder, resolveWorktreesSetting } from '../../../src/worktrees/paths';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv, makeRepo } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, tempDir } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

suite('worktrees: where the worktrees folder may be', function () {
	this.timeout(60_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	setup(() => {
		dir = tempDir('agent-tabs-paths-');
	});
	teardown(() => removeDir(dir));

	test('the agentTabs.worktrees.root setting: empty is the default, ~ is home, relative is from the workspace folder', () => {
		assert.equal(resolveWorktreesSetting(undefined, '/work/repo', '/home/me'), undefined);
		assert.equal(resolveWorktreesSetting('  ', '/work/repo', '/home/me'), undefined);
		assert.equal(resolveWorktreesSetting('~', '/work/repo', '/home/me'), '/home/me');
		assert.equal(resolveWorktreesSetting('~/wts', '/work/repo', '/home/me'), '/home/me/wts');
		assert.equal(resolveWorktreesSetting('../wts', '/work/repo', '/home/me'), '/work/wts');
		assert.equal(resolveWorktreesSetting('wts', '/work/repo', '/home/me'), '/work/repo/wts');
		assert.equal(resolveWorktreesSetting('/abs/wts', '/work/repo', '/home/me'), '/abs/wts');
	});

	test('inside is decided on real paths: symlinks and .. in the part that exists, any name for the rest', () => {
		const repo = path.join(dir, 'repo');
		fs.mkdirSync(path.join(repo, 'sub'), { recursive: true });
		fs.symlinkSync(repo, path.join(dir, 'alias'));
		fs.symlinkSync(path.join(repo, 'sub'), path.join(dir, 'into-sub'));
		assert.equal(realPathLoose(path.join(dir, 'alias', 'not', 'yet')), path.join(fs.realpathSync(repo), 'not', 'yet'));
		for (const inside of [repo, path.join(repo, 'wts'), path.join(dir, 'alias', 'wts'), path.join(dir, 'into-sub', 'a', 'b'), path.join(dir, 'elsewhere', '..', 'repo', 'x')]) {
			assert.throws(() => refuseRootInsideCheckouts(inside, [repo]), /is inside the git checkout/, inside);
			assert.throws(() => refuseRootInsideCheckouts(inside, [path.join(dir, 'alias')]), /is inside the git checkout/, `${inside} against the checkout spelled through a symlink`);
		}
		for (const outside of [dir, path.join(dir, 'wts'), path.join(dir, 'repo-wts'), path.join(dir, 'repo..x')]) {
			refuseRootInsideCheckouts(outside, [repo]);
		}
		assert.equal(isSameOrInside('/a/..b', '/a'), true, 'a folder named "..b" is inside');
	});

	test('a session with the setting pointing into the repository is refused and makes nothing; beside it is fine', async () => {
		const env = gitEnv(dir);
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n');
		const repo = makeRepo(path.join(dir, 'repo'));
		const store = await openStore(path.join(dir, 'state'));
		try {
			const inside = new WorktreeService(store, new MemoryLogger(), { root: resolveWorktreesSetting('wts', repo), env });
			await assert.rejects(inside.createSession({ repo, title: 'Nope' }), /The worktrees folder .*wts is inside the git checkout/);
			assert.equal(execFileSync('git', ['status', '--porcelain', '--untracked-files=all'], { cwd: repo, env, encoding: 'utf8' }), '');
			assert.equal(execFileSync('git', ['branch', '--list', 'agent-tabs/*'], { cwd: repo, env, encoding: 'utf8' }), '');
			assert.deepEqual(new SessionsRepo(store).list(), []);
			const beside = new WorktreeService(store, new MemoryLogger(), { root: resolveWorktreesSetting('../wts', repo), env });
			const made = await beside.createSession({ repo, title: 'Yes' });
			assert.equal(made.worktree.path, path.join(dir, 'wts', 'yes'));
		} finally {
			await store.close();
		}
	});

	test('a linked worktree\'s .git file and commondir are read as git reads them: however many line breaks end them (LF or CRLF), nothing else', () => {
		const repo = makeRepo(path.join(dir, 'repo'));
		const env = gitEnv(dir);
		const wt = path.join(dir, 'linked');
		execFileSync('git', ['worktree', 'add', '-q', '-b', 'linked', wt], { cwd: repo, env });
		const gitDir = execFileSync('git', ['rev-parse', '--absolute-git-dir'], { cwd: wt, env, encoding: 'utf8' }).trim();
		const gitsAnswer = (): string[] => {
			const out = execFileSync('git', ['rev-parse', '--absolute-git-dir', '--git-common-dir'], { cwd: wt, env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim().split('\n');
			return [out[0]!, fs.realpathSync(path.resolve(wt, out[1]!))];
		};
		for (const ending of ['\n', '\n\n', '\r\n', '\r\n\r\n', '\n\r\n\n', '']) {
			// Hand-written, as a person or another tool might leave them.
			fs.writeFileSync(path.join(wt, '.git'), `gitdir: ${gitDir}${ending}`);
			fs.writeFileSync(path.join(gitDir, 'commondir'), `../..${ending}`);
			const [gitsDir, gitsCommon] = gitsAnswer();
			assert.equal(gitDirOf(wt), gitsDir, `the .git file ending in ${JSON.stringify(ending)}`);
			assert.equal(repositoryAdminFolder(wt), gitsCommon, `commondir ending in ${JSON.stringify(ending)}`);
		}
		// A trailing space is part of the path for git too: git then finds no repository there, and neither do we.
		fs.writeFileSync(path.join(gitDir, 'commondir'), '../.. \n');
		assert.throws(() => gitsAnswer());
		assert.equal(repositoryAdminFolder(wt), path.resolve(wt), 'the folder itself, as for anything that is not a checkout');
	});
});
