import * as assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PendingChangesRepo } from '../../../src/db/pendingChangesRepo';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { TranscriptRepo } from '../../../src/db/transcriptRepo';
import { TurnRecorder } from '../../../src/tasks/turnRecorder';
import { Store } from '../../../src/db/store';
import { WorktreesRepo } from '../../../src/db/worktreesRepo';
import { snapshotCommit } from '../../../src/worktrees/checkpoints';
import { takeDirtySnapshot } from '../../../src/worktrees/dirtySnapshot';
import { Git, gitTimeouts } from '../../../src/worktrees/gitClient';
import { listSaves } from '../../../src/worktrees/savedRefs';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { installGitShim } from './gitShim';
import { fullState, snapshotFiles } from './worktreeState';
import { gitEnv, makeRepo } from '../gitRepo';
import { CancelledError } from '../../../src/common/errors';
import { MemoryLogger, openStore, removeDir, repoRoot, tempDir, waitFor, wasmPath } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

suite('worktrees: sessions that never lose work (real git)', function () {
	this.timeout(60_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	let repo: string;
	let store: Store;
	let service: WorktreeService;
	let running: string[];
	let env: NodeJS.ProcessEnv;
	const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
	const writeFiles = (dir: string, files: Record<string, string>): void => {
		for (const [name, content] of Object.entries(files)) {
			fs.writeFileSync(path.join(dir, name), content);
		}
	};
	const assertFiles = (dir: string, files: Record<string, string>): void => {
		for (const [name, content] of Object.entries(files)) {
			assert.equal(fs.readFileSync(path.join(dir, name), 'utf8'), content, name);
		}
	};

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

	test("a host started by git (`code --wait` as a commit's editor gets GIT_INDEX_FILE): the setup command and gh run git in the worktree, never on the main checkout's index", async () => {
		// What `git commit` hands the editor it starts, and VS Code's extension host then inherits.
		const inherited = { ...env, GIT_INDEX_FILE: path.join(repo, '.git', 'index'), GIT_DIR: path.join(repo, '.git'), GIT_WORK_TREE: repo };
		const mainIndex = git(repo, 'ls-files', '--stage');
		const gh = path.join(dir, 'gh');
		fs.writeFileSync(gh, `#!/bin/sh\ngit rev-parse --show-toplevel > gh-saw.txt && git ls-files > gh-index.txt && echo https://github.invalid/pull/1\n`, { mode: 0o755 });
		const remote = path.join(dir, 'remote.git');
		git(dir, 'init', '-q', '--bare', remote);
		git(repo, 'remote', 'add', 'origin', remote);
		const withHostEnv = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env: inherited, setupCommand: 'echo made > generated.txt && git add generated.txt && git status --porcelain > setup-status.txt' });
		const { session, worktree } = await withHostEnv.createSession({ repo, title: 'started by git' });
		assert.equal(git(repo, 'ls-files', '--stage'), mainIndex, "the main checkout's index is untouched");
		assert.equal(git(repo, 'status', '--porcelain'), '', 'the main checkout has nothing new');
		assert.equal(git(worktree.path, 'ls-files', 'generated.txt').trim(), 'generated.txt', "the setup command staged in the worktree's index");
		assert.match(fs.readFileSync(path.join(worktree.path, 'setup-status.txt'), 'utf8'), /^A {2}generated\.txt$/m);
		assert.equal(await withHostEnv.createPullRequest(session.id, gh), 'https://github.invalid/pull/1');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'gh-saw.txt'), 'utf8').trim(), fs.realpathSync(worktree.path), "gh's git sees the worktree");
		assert.match(fs.readFileSync(path.join(worktree.path, 'gh-index.txt'), 'utf8'), /^generated\.txt$/m, "gh's git reads the worktree's index");
	});

	test('a subfolder of the repository (a monorepo package opened on its own) starts its session in that repository, also inside another one', async () => {
		const { worktree } = await service.createSession({ repo: path.join(repo, 'src'), title: 'from a subfolder' });
		assert.equal(worktree.repo_root, fs.realpathSync(repo));
		// A repository inside another repository's folder: the inner one is meant, not the outer.
		const inner = makeRepo(path.join(repo, 'vendor', 'inner'), { 'lib/a.ts': 'export {};\n' });
		const { worktree: innerWt } = await service.createSession({ repo: path.join(inner, 'lib'), title: 'inner' });
		assert.equal(innerWt.repo_root, fs.realpathSync(inner));
		assert.ok(fs.existsSync(path.join(innerWt.path, 'lib', 'a.ts')));
		assert.equal(git(repo, 'branch', '--list', 'agent-tabs/inner').trim(), '', 'nothing was made in the outer repository');
	});

	test('a linked worktree of the user\'s own (opened as the window\'s folder) starts its session from its own branch and carries its own changes', async () => {
		const mine = path.join(dir, 'my feature');
		git(repo, 'worktree', 'add', '-q', '-b', 'feature', mine);
		fs.writeFileSync(path.join(mine, 'feature.txt'), 'committed on feature\n');
		git(mine, 'add', 'feature.txt');
		git(mine, 'commit', '-q', '-m', 'feature');
		fs.writeFileSync(path.join(mine, 'README.md'), '# edited in my feature worktree\n');
		fs.writeFileSync(path.join(mine, 'draft.txt'), 'untracked in my feature worktree\n');
		fs.writeFileSync(path.join(repo, 'main-only.txt'), 'untracked in the main checkout\n');
		fs.writeFileSync(path.join(mine, '.env.local'), 'SECRET=mine\n');
		const { session, worktree } = await service.createSession({ repo: path.join(mine, 'src'), title: 'from my feature', carryChanges: true });
		assert.equal(fs.readFileSync(path.join(worktree.path, '.env.local'), 'utf8'), 'SECRET=mine\n', "the setup step copies that checkout's .env files");
		assert.equal(worktree.repo_root, fs.realpathSync(repo), 'the sessions of every checkout of a repository are one list');
		assert.equal(new SessionsRepo(store).get(session.id)!.repo_root, fs.realpathSync(repo));
		assert.equal(worktree.base_ref, 'feature');
		assert.equal(worktree.base_commit, git(mine, 'rev-parse', 'HEAD').trim());
		assert.equal(fs.readFileSync(path.join(worktree.path, 'feature.txt'), 'utf8'), 'committed on feature\n');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'README.md'), 'utf8'), '# edited in my feature worktree\n');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'draft.txt'), 'utf8'), 'untracked in my feature worktree\n');
		assert.ok(!fs.existsSync(path.join(worktree.path, 'main-only.txt')), 'nothing of the main checkout is carried');
		assert.equal(fs.readFileSync(path.join(mine, 'README.md'), 'utf8'), '# edited in my feature worktree\n', 'carrying copies; the changes stay where they were');
		// A detached HEAD there: the session starts from its commit.
		git(mine, 'checkout', '-q', '--detach', 'HEAD~1');
		const { worktree: detached } = await service.createSession({ repo: mine, title: 'detached' });
		assert.equal(detached.base_commit, git(repo, 'rev-parse', 'main').trim());
	});

	test('a bare repository kept as proj/.git, worked on through worktrees of its own, starts sessions from the worktree opened', async () => {
		const proj = path.join(dir, 'proj');
		git(dir, 'clone', '-q', '--bare', repo, path.join(proj, '.git'));
		const mainTree = path.join(proj, 'main');
		git(path.join(proj, '.git'), 'worktree', 'add', '-q', mainTree, 'main');
		fs.writeFileSync(path.join(mainTree, '.env.local'), 'SECRET=bare\n');
		const { session, worktree } = await service.createSession({ repo: mainTree, title: 'from a bare layout' });
		assert.equal(worktree.repo_root, fs.realpathSync(proj));
		assert.equal(worktree.base_ref, 'main');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'README.md'), 'utf8'), '# r\n');
		assert.equal(fs.readFileSync(path.join(worktree.path, '.env.local'), 'utf8'), 'SECRET=bare\n');
		// Its work is saved and comes back as in any other repository.
		fs.writeFileSync(path.join(worktree.path, 'notes.txt'), 'unsaved\n');
		await service.archiveSession(session.id);
		assert.ok(!fs.existsSync(worktree.path));
		await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'notes.txt'), 'utf8'), 'unsaved\n');
	});

	test('every other repository layout is one repository whichever checkout a session starts from: proj/.bare, repo.git, a separate git folder', async () => {
		// proj/.bare with proj/.git pointing to it (the usual way to keep a bare clone beside its worktrees).
		const proj = path.join(dir, 'proj');
		git(dir, 'clone', '-q', '--bare', repo, path.join(proj, '.bare'));
		fs.writeFileSync(path.join(proj, '.git'), 'gitdir: ./.bare\n');
		git(proj, 'worktree', 'add', '-q', 'main', 'main');
		git(proj, 'worktree', 'add', '-q', '-b', 'feature', 'feature', 'main');
		const fromMain = await service.createSession({ repo: path.join(proj, 'main'), title: 'dot bare main' });
		const fromFeature = await service.createSession({ repo: path.join(proj, 'feature', 'src'), title: 'dot bare feature' });
		assert.deepEqual([fromMain.worktree.repo_root, fromFeature.worktree.repo_root], [fs.realpathSync(proj), fs.realpathSync(proj)]);
		assert.deepEqual([fromMain.worktree.base_ref, fromFeature.worktree.base_ref], ['main', 'feature'], 'each starts from the checkout opened');

		// repo.git beside its worktrees: the bare repository itself stands for them.
		const bareRepo = path.join(dir, 'r.git');
		git(dir, 'clone', '-q', '--bare', repo, bareRepo);
		git(bareRepo, 'worktree', 'add', '-q', path.join(dir, 'r-main'), 'main');
		git(bareRepo, 'worktree', 'add', '-q', '-b', 'other', path.join(dir, 'r-other'), 'main');
		const a = await service.createSession({ repo: path.join(dir, 'r-main'), title: 'repo dot git a' });
		const b = await service.createSession({ repo: path.join(dir, 'r-other'), title: 'repo dot git b' });
		assert.deepEqual([a.worktree.repo_root, b.worktree.repo_root], [fs.realpathSync(bareRepo), fs.realpathSync(bareRepo)]);
		// Work there is saved and comes back, as anywhere.
		fs.writeFileSync(path.join(a.worktree.path, 'notes.txt'), 'unsaved\n');
		await service.archiveSession(a.session.id);
		assert.ok(!fs.existsSync(a.worktree.path));
		await service.restoreSession(a.session.id);
		assert.equal(fs.readFileSync(path.join(a.worktree.path, 'notes.txt'), 'utf8'), 'unsaved\n');

		// A checkout whose git folder is kept apart (--separate-git-dir) is its own repository, never the git
		// folder (git lists that as the main checkout: it does not know where the checkout is).
		const sep = path.join(dir, 'sep');
		git(dir, 'clone', '-q', '--separate-git-dir', path.join(dir, 'store.git'), repo, sep);
		git(sep, 'worktree', 'add', '-q', '-b', 'side', path.join(dir, 'sep-side'), 'main');
		const fromSep = await service.createSession({ repo: sep, title: 'separate main' });
		const fromLinked = await service.createSession({ repo: path.join(dir, 'sep-side'), title: 'separate linked' });
		assert.deepEqual([fromSep.worktree.repo_root, fromLinked.worktree.repo_root], [fs.realpathSync(sep), fs.realpathSync(path.join(dir, 'sep-side'))]);
	});

	test('with safe.bareRepository=explicit in your git config (a hardened setup), repo.git beside its worktrees starts, saves, restores and merges sessions', async () => {
		const bareRepo = path.join(dir, 'r.git');
		git(dir, 'clone', '-q', '--bare', repo, bareRepo);
		git(bareRepo, 'worktree', 'add', '-q', path.join(dir, 'r-main'), 'main');
		fs.appendFileSync(path.join(dir, '.gitconfig'), '[safe]\n\tbareRepository = explicit\n');
		const { session, worktree } = await service.createSession({ repo: path.join(dir, 'r-main'), title: 'hardened' });
		assert.equal(worktree.repo_root, fs.realpathSync(bareRepo));
		fs.writeFileSync(path.join(worktree.path, 'notes.txt'), 'unsaved\n');
		assert.deepEqual((await service.risk(worktree.id)).untracked, ['notes.txt']);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'notes.txt'), 'utf8'), 'unsaved\n');
		git(worktree.path, 'add', '-A');
		git(worktree.path, 'commit', '-q', '-m', 'notes');
		await service.mergeSession(session.id, 'squash');
		assert.equal(fs.readFileSync(path.join(dir, 'r-main', 'notes.txt'), 'utf8'), 'unsaved\n');
	});

	test('in a bare repository a session merges into the worktree of yours that has its base checked out', async () => {
		const bareRepo = path.join(dir, 'm.git');
		git(dir, 'clone', '-q', '--bare', repo, bareRepo);
		const mainTree = path.join(dir, 'm-main');
		git(bareRepo, 'worktree', 'add', '-q', mainTree, 'main');
		const { session, worktree } = await service.createSession({ repo: mainTree, title: 'bare merge' });
		fs.writeFileSync(path.join(worktree.path, 'feature.txt'), 'made by the agent\n');
		git(worktree.path, 'add', '-A');
		git(worktree.path, 'commit', '-q', '-m', 'feature');
		git(mainTree, 'checkout', '-q', '-b', 'elsewhere');
		await assert.rejects(service.mergeSession(session.id, 'merge'), /is a bare repository and none of its worktrees has main checked out; check out main in one of them/);
		git(mainTree, 'checkout', '-q', 'main');
		fs.writeFileSync(path.join(mainTree, 'README.md'), '# dirty\n');
		await assert.rejects(service.mergeSession(session.id, 'merge'), new RegExp(`The checkout ${mainTree.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has uncommitted changes`));
		git(mainTree, 'checkout', '--', 'README.md');
		const merged = await service.mergeSession(session.id, 'merge');
		assert.equal(git(mainTree, 'rev-parse', 'HEAD').trim(), merged.commit);
		assert.equal(fs.readFileSync(path.join(mainTree, 'feature.txt'), 'utf8'), 'made by the agent\n');
	});

	test('a title with line breaks is kept on one line (lists show a row per title); a blank one is "New session"', async () => {
		const { session } = await service.createSession({ repo, title: 'Fix the\nparser  \t now' });
		assert.equal(session.title, 'Fix the parser now');
		assert.equal(new SessionsRepo(store).create({ title: ' \n ' }).title, 'New session');
		assert.equal(new SessionsRepo(store).createChat({ sessionId: session.id, agent: 'claude', title: 'a\nb' }).title, 'a b');
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
		// An untracked file whose name is not UTF-8 (Latin-1 `café.txt`) is carried too.
		const latin1Name = Buffer.from('caf\xe9.txt', 'latin1');
		fs.writeFileSync(Buffer.concat([Buffer.from(`${repo}/`), latin1Name]), 'latin-1 name\n');
		// Untracked symlinks stay as they are: made absolute, they would lead into the main checkout.
		fs.symlinkSync('README.md', path.join(repo, 'rel-link'));
		fs.symlinkSync('src', path.join(repo, 'dir-link'));
		// What is staged stays staged, what is not stays not.
		fs.writeFileSync(path.join(repo, 'src', 'app.ts'), 'export const staged = 1;\n');
		git(repo, 'add', 'src/app.ts');
		fs.writeFileSync(path.join(repo, 'src', 'app.ts'), 'export const staged = 1;\nexport const notYet = 2;\n');
		const mainStatus = git(repo, 'status', '--porcelain');
		const { worktree } = await service.createSession({ repo, title: 'carry', carryChanges: true });
		assert.equal(fs.readFileSync(Buffer.concat([Buffer.from(`${worktree.path}/`), latin1Name]), 'utf8'), 'latin-1 name\n');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'README.md'), 'utf8'), '# changed in main\n');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'new.txt'), 'utf8'), 'untracked in main\n');
		assert.equal(fs.readlinkSync(path.join(worktree.path, 'rel-link')), 'README.md');
		assert.equal(fs.readlinkSync(path.join(worktree.path, 'dir-link')), 'src');
		assert.equal(git(worktree.path, 'status', '--porcelain'), mainStatus, 'the same changes, staged and unstaged alike');
		assert.equal(git(worktree.path, 'diff', '--cached'), git(repo, 'diff', '--cached'));
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

	test('risk of an archived session says where its work is saved, not that its folder is gone', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'archived risk' });
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'uncommitted\n');
		await service.archiveSession(session.id);
		const savedRef = new WorktreesRepo(store).get(worktree.id)!.saved_ref!;
		const r = await service.risk(worktree.id);
		assert.equal(r.exists, false);
		assert.ok(r.summary.startsWith(`Archived: the work of its folder ${worktree.path} is saved in ${savedRef}, and Restore Session brings it back.`), r.summary);
		assert.doesNotMatch(r.summary, /is gone/);
	});

	test('an upstream deleted on the remote (a merged pull request) leaves risk and removal working: unpushed is what no remote has', async () => {
		const remote = path.join(dir, 'remote.git');
		git(dir, 'init', '-q', '--bare', remote);
		git(repo, 'remote', 'add', 'origin', remote);
		git(repo, 'push', '-q', 'origin', 'main');
		const { session, worktree } = await service.createSession({ repo, title: 'merged upstream' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'a.txt'), 'a\n');
		git(wt, 'add', '-A');
		git(wt, 'commit', '-q', '-m', 'a');
		git(wt, 'push', '-q', '-u', 'origin', 'agent-tabs/merged-upstream');
		// The pull request is merged on the remote and its branch deleted; a fetch prunes it here.
		git(repo, 'merge', '-q', '--no-ff', '-m', 'merge pr', 'agent-tabs/merged-upstream');
		git(repo, 'push', '-q', 'origin', 'main');
		git(wt, 'push', '-q', 'origin', '--delete', 'agent-tabs/merged-upstream');
		git(wt, 'fetch', '-q', '--prune', 'origin');
		assert.match(git(wt, 'status', '-sb'), /\[gone\]/, 'git itself says the upstream is gone');
		fs.writeFileSync(path.join(wt, 'b.txt'), 'b\n');
		git(wt, 'add', '-A');
		git(wt, 'commit', '-q', '-m', 'b');
		const r = await service.risk(worktree.id);
		assert.equal(r.upstream, null, 'a gone upstream is no upstream');
		assert.deepEqual(r.unpushed, [git(wt, 'rev-parse', 'HEAD').trim()], 'the commit made after the merge is on no remote; the merged one is');
		assert.match(r.summary, /1 commit not pushed/);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(wt, 'b.txt'), 'utf8'), 'b\n');
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

	for (const setting of ['logOutputEncoding', 'commitEncoding'] as const) {
		test(`with i18n.${setting} = ISO-8859-1 in your git config, a save keeps a title and folder that are not ASCII as they are`, async () => {
			fs.appendFileSync(path.join(dir, '.gitconfig'), `[i18n]\n\t${setting} = ISO-8859-1\n`);
			const inFolder = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'wörktrees'), env });
			const { session, worktree } = await inFolder.createSession({ repo, title: 'Grüße' });
			const result = await inFolder.deleteSession(session.id);
			// What a rebuild of a lost database reads, and what anyone's git shows.
			const message = execFileSync('git', ['log', '-1', '--format=%B', result!.saved!.ref], { cwd: repo, env: gitEnv(path.join(dir, 'elsewhere')), encoding: 'utf8' });
			assert.ok(message.includes('\nSession-Title: Grüße\n'), message);
			assert.ok(message.includes(`\nSession worktree ${worktree.path} on `), message);
			const attached = await inFolder.attachWorktree(worktree.id);
			assert.equal(attached.session.title, 'Grüße');
			assert.equal(attached.worktree.path, worktree.path);
		});
	}

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

	test('a removal that cannot save removes nothing (a failing git injected through PATH, also as root)', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'unsaveable' });
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'keep\n');
		const shim = installGitShim(dir);
		const failing = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env: shim.env({ AGENT_TABS_SHIM_FAIL: 'commit-tree' }, env) });
		await assert.rejects(failing.deleteSession(session.id), /Could not save the work in .*, so it was not removed: .*unable to write commit-tree object \(injected failure\)/);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'work.txt'), 'utf8'), 'keep\n');
		assert.ok(new SessionsRepo(store).get(session.id), 'the session is still there');
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'ready');
		assert.equal(git(repo, 'for-each-ref', 'refs/agent-tabs/saved/'), '', 'no save ref was made');
	});

	test('a save that does not match the folder (a write during the save) removes nothing and keeps the earlier save', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'moving target' });
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'first\n');
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		const firstSave = git(repo, 'rev-parse', `refs/agent-tabs/saved/${worktree.id}/1`).trim();
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'second\n');
		const shim = installGitShim(dir);
		const racing = new WorktreeService(store, new MemoryLogger(), {
			root: path.join(dir, 'worktrees'),
			env: shim.env({ AGENT_TABS_SHIM_TOUCH_AFTER: 'commit-tree', AGENT_TABS_SHIM_TOUCH_FILE: path.join(worktree.path, 'work.txt') }, env),
		});
		await assert.rejects(racing.archiveSession(session.id), /Could not save the work in .*, so it was not removed: The saved copy does not match the worktree \(files differ: work.txt\)/);
		assert.match(fs.readFileSync(path.join(worktree.path, 'work.txt'), 'utf8'), /^second\n(written during the save\n)+$/, 'the folder is untouched');
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'ready');
		assert.equal(git(repo, 'for-each-ref', '--format=%(refname) %(objectname)', `refs/agent-tabs/saved/${worktree.id}/`).trim(), `refs/agent-tabs/saved/${worktree.id}/1 ${firstSave}`, 'the earlier save is neither moved nor deleted, and no new one was made');
	});

	test('every save gets its own ref; a later save, even of a clean folder, never moves or deletes an earlier one', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'many saves' });
		fs.writeFileSync(path.join(worktree.path, 'draft.txt'), 'one\n');
		const first = (await service.archiveSession(session.id))!.saved!;
		assert.equal(first.ref, `refs/agent-tabs/saved/${worktree.id}/1`);
		await service.restoreSession(session.id);
		git(worktree.path, 'add', 'draft.txt');
		git(worktree.path, 'commit', '-q', '-m', 'draft');
		const second = (await service.archiveSession(session.id))!.saved!;
		assert.equal(second.ref, `refs/agent-tabs/saved/${worktree.id}/2`);
		assert.equal(second.files, 0, 'a clean folder: nothing uncommitted, HEAD recorded');
		assert.equal(git(repo, 'rev-parse', first.ref).trim(), first.commit, 'the first save is where it was');
		assert.equal(git(repo, 'show', `${first.ref}:draft.txt`), 'one\n');
		const restored = await service.restoreSession(session.id);
		assert.equal(git(restored.path, 'status', '--porcelain'), '');
		assert.equal(git(restored.path, 'log', '-1', '--format=%s'), 'draft\n');
	});

	test('a save of the old single-ref layout still restores, and the next save keeps it', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'old layout' });
		fs.writeFileSync(path.join(worktree.path, 'README.md'), 'changed before the upgrade\n');
		fs.writeFileSync(path.join(worktree.path, 'new.txt'), 'untracked\n');
		// What the previous version wrote: one commit on top of HEAD under refs/agent-tabs/saved/<id>.
		const legacyRef = `refs/agent-tabs/saved/${worktree.id}`;
		const legacy = await snapshotCommit(new Git(worktree.path, env), legacyRef, 'agent-tabs: saved work before the session was archived\n\nSession-Title: old layout');
		git(repo, 'worktree', 'remove', '--force', worktree.path);
		new WorktreesRepo(store).update(worktree.id, { state: 'removed', saved_ref: legacyRef });
		new SessionsRepo(store).setStatus(session.id, 'archived');
		const restored = await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(restored.path, 'README.md'), 'utf8'), 'changed before the upgrade\n');
		assert.equal(fs.readFileSync(path.join(restored.path, 'new.txt'), 'utf8'), 'untracked\n');
		assert.equal(git(restored.path, 'status', '--porcelain'), ' M README.md\n?? new.txt\n');
		assert.equal(git(restored.path, 'symbolic-ref', '--short', 'HEAD').trim(), 'agent-tabs/old-layout');
		const next = (await service.archiveSession(session.id))!.saved!;
		const refs = git(repo, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/agent-tabs/').trim().split('\n');
		assert.ok(refs.includes(`${legacyRef}/1 ${legacy.commit}`), `the old save became number 1: ${refs.join(', ')}`);
		assert.equal(next.ref, `${legacyRef}/2`);
		assert.deepEqual((await listSaves(new Git(repo, env), worktree.id)).map((e) => e.n), [1, 2]);
	});

	test('the index comes back: staged, partly staged and only-staged files, beside untracked ones', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'index' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'f.txt'), 'v1\n');
		git(wt, 'add', 'f.txt');
		fs.writeFileSync(path.join(wt, 'f.txt'), 'v2\n'); // partly staged: v1 in the index, v2 on disk
		fs.writeFileSync(path.join(wt, 'README.md'), 'staged only\n');
		git(wt, 'add', 'README.md');
		fs.writeFileSync(path.join(wt, 'src', 'app.ts'), 'unstaged only\n');
		git(wt, 'rm', '-q', '--cached', 'src/app.ts'); // staged deletion, file still on disk (untracked now)
		fs.writeFileSync(path.join(wt, 'loose.txt'), 'untracked\n');
		const before = fullState(wt);
		const saved = (await service.archiveSession(session.id))!.saved!;
		assert.equal(saved.staged, 3);
		await service.restoreSession(session.id);
		assert.deepEqual(fullState(wt), before);
		assert.equal(git(wt, 'show', ':f.txt'), 'v1\n', 'the staged version');
		assert.equal(fs.readFileSync(path.join(wt, 'f.txt'), 'utf8'), 'v2\n', 'the working version');
	});

	test('another branch checked out with its own commits: risk counts them, and restore comes back on it', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'branch hopper' });
		const wt = worktree.path;
		git(wt, 'checkout', '-q', '-b', 'experiment');
		fs.writeFileSync(path.join(wt, 'idea.txt'), 'committed on experiment\n');
		git(wt, 'add', 'idea.txt');
		git(wt, 'commit', '-q', '-m', 'experiment commit');
		fs.writeFileSync(path.join(wt, 'idea.txt'), 'and more, uncommitted\n');
		const experimentHead = git(wt, 'rev-parse', 'HEAD').trim();
		const risk = await service.risk(worktree.id);
		assert.equal(risk.branch, 'experiment');
		assert.deepEqual(risk.unmerged, [experimentHead], 'the commit on the checked-out branch is at risk');
		assert.match(risk.summary, /1 commit not merged/);
		const before = fullState(wt);
		const saved = (await service.archiveSession(session.id))!.saved!;
		assert.deepEqual([saved.branch, saved.head], ['experiment', experimentHead]);
		await service.restoreSession(session.id);
		assert.deepEqual(fullState(wt), before);
		assert.equal(git(wt, 'symbolic-ref', '--short', 'HEAD').trim(), 'experiment');
		assert.equal(git(repo, 'rev-parse', 'agent-tabs/branch-hopper').trim(), worktree.base_commit, 'the session branch is kept as it was');
	});

	test('a branch that moved on since the save: the worktree comes back detached at the saved commit, and the restore says so', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'moved on' });
		fs.writeFileSync(path.join(worktree.path, 'a.txt'), 'saved\n');
		await service.archiveSession(session.id);
		const plain = await service.restoreSession(session.id);
		assert.deepEqual([plain.detached, plain.onBranch], [undefined, 'agent-tabs/moved-on'], 'back on its branch: nothing to say');
		await service.archiveSession(session.id);
		// Someone commits on the session's branch meanwhile (from another worktree of theirs).
		const elsewhere = path.join(dir, 'elsewhere');
		git(repo, 'worktree', 'add', '-q', elsewhere, 'agent-tabs/moved-on');
		git(elsewhere, 'commit', '-q', '--allow-empty', '-m', 'later work');
		git(repo, 'worktree', 'remove', elsewhere);
		const tip = git(repo, 'rev-parse', 'agent-tabs/moved-on').trim();
		const restored = await service.restoreSession(session.id);
		assert.match(restored.detached ?? '', /agent-tabs\/moved-on moved on since the save .*back detached at the saved commit; check out agent-tabs\/moved-on/);
		assert.equal(restored.onBranch, null);
		assert.throws(() => git(worktree.path, 'symbolic-ref', '-q', 'HEAD'), 'HEAD is detached');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'a.txt'), 'utf8'), 'saved\n');
		assert.equal(git(repo, 'rev-parse', 'agent-tabs/moved-on').trim(), tip, 'the branch keeps its new commits');
	});

	test('a detached HEAD comes back detached at the same commit', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'detached' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'a.txt'), 'a\n');
		git(wt, 'add', 'a.txt');
		git(wt, 'commit', '-q', '-m', 'a');
		git(wt, 'checkout', '-q', '--detach');
		fs.writeFileSync(path.join(wt, 'b.txt'), 'b\n');
		git(wt, 'commit', '-q', '--allow-empty', '-m', 'only on the detached HEAD');
		const before = fullState(wt);
		assert.equal((await service.risk(worktree.id)).branch, null);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assert.deepEqual(fullState(wt), before);
	});

	const operations: { name: string; label?: string; start: (wt: string) => void; words: RegExp }[] = [
		{
			name: 'cherry-pick',
			label: 'cherry-pick of several commits, the one that stopped committed by hand',
			start: (wt) => {
				conflictingCommits(wt, () => git(wt, 'cherry-pick', 'other~1', 'other'), () => {
					fs.writeFileSync(path.join(wt, 'later.txt'), 'later\n');
					git(wt, 'add', 'later.txt');
					git(wt, 'commit', '-q', '-m', 'theirs, later');
				});
				fs.writeFileSync(path.join(wt, 'README.md'), 'resolved\n');
				git(wt, 'commit', '-q', '-am', 'resolved by hand'); // CHERRY_PICK_HEAD goes; the rest of the picks stay to do
			},
			words: /a cherry-pick in progress \(finish it with "git cherry-pick --continue" or abort it with "git cherry-pick --abort"\)/,
		},
		{
			name: 'revert',
			label: 'revert of several commits, the one that stopped committed by hand',
			start: (wt) => {
				for (const text of ['one', 'two', 'three']) {
					fs.writeFileSync(path.join(wt, 'README.md'), `${text}\n`);
					git(wt, 'commit', '-q', '-am', text);
				}
				assert.throws(() => git(wt, 'revert', '--no-edit', 'HEAD~1', 'HEAD~2'));
				fs.writeFileSync(path.join(wt, 'README.md'), 'resolved\n');
				git(wt, 'commit', '-q', '-am', 'resolved by hand');
			},
			words: /a revert in progress \(finish it with "git revert --continue" or abort it with "git revert --abort"\)/,
		},
		{ name: 'merge', start: (wt) => conflictingCommits(wt, () => git(wt, 'merge', 'other').toString()), words: /a merge in progress \(finish it with "git merge --continue" or abort it with "git merge --abort"\)/ },
		{ name: 'rebase', start: (wt) => conflictingCommits(wt, () => git(wt, 'rebase', 'other')), words: /a rebase in progress \(finish it with "git rebase --continue" or abort it with "git rebase --abort"\)/ },
		{ name: 'cherry-pick', start: (wt) => conflictingCommits(wt, () => git(wt, 'cherry-pick', 'other')), words: /a cherry-pick in progress \(finish it with "git cherry-pick --continue" or abort it with "git cherry-pick --abort"\)/ },
		{
			name: 'revert',
			start: (wt) => {
				fs.writeFileSync(path.join(wt, 'README.md'), 'one\n');
				git(wt, 'commit', '-q', '-am', 'one');
				fs.writeFileSync(path.join(wt, 'README.md'), 'two\n');
				git(wt, 'commit', '-q', '-am', 'two');
				git(wt, 'revert', '--no-edit', 'HEAD~1');
			},
			words: /a revert in progress \(finish it with "git revert --continue" or abort it with "git revert --abort"\)/,
		},
		{
			name: 'bisect',
			start: (wt) => {
				for (const n of [1, 2, 3]) {
					git(wt, 'commit', '-q', '--allow-empty', '-m', `later ${n}`);
				}
				git(wt, 'bisect', 'start', 'HEAD', 'HEAD~3');
			},
			words: /a bisect in progress \(end it with "git bisect reset"\)/,
		},
	];
	/** Two commits that conflict on README.md: `other` and the current branch; then `start` (which fails). */
	function conflictingCommits(wt: string, start: () => unknown, more?: () => void): void {
		git(wt, 'checkout', '-q', '-b', 'other');
		fs.writeFileSync(path.join(wt, 'README.md'), 'theirs\n');
		git(wt, 'commit', '-q', '-am', 'theirs');
		more?.();
		git(wt, 'checkout', '-q', '-');
		fs.writeFileSync(path.join(wt, 'README.md'), 'ours\n');
		git(wt, 'commit', '-q', '-am', 'ours');
		assert.throws(start, 'the operation stops on a conflict');
	}
	for (const op of operations) {
		test(`a ${op.label ?? op.name} in progress: risk names it and removal refuses, naming the command that ends it`, async () => {
			const { session, worktree } = await service.createSession({ repo, title: `during ${op.name}` });
			try {
				op.start(worktree.path);
			} catch (e) {
				if (!/conflict|CONFLICT/.test(String((e as { stdout?: unknown }).stdout ?? e))) {
					throw e;
				}
			}
			const before = fullState(worktree.path);
			const risk = await service.risk(worktree.id);
			assert.equal(risk.operation?.name, op.name);
			assert.equal(risk.clean, false);
			assert.match(risk.summary, op.words);
			for (const remove of [() => service.archiveSession(session.id), () => service.deleteSession(session.id)]) {
				await assert.rejects(remove(), (e: Error) => op.words.test(e.message) && /Nothing was removed/.test(e.message));
			}
			assert.deepEqual(fullState(worktree.path), before, 'the worktree is exactly as it was');
			assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'ready');
			assert.equal(git(repo, 'for-each-ref', 'refs/agent-tabs/saved/'), '');
		});
	}

	test('a folder deleted by hand: risk says so in plain words, and archive and delete go on from the branch', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'gone by hand' });
		fs.writeFileSync(path.join(worktree.path, 'c.txt'), 'c\n');
		git(worktree.path, 'add', 'c.txt');
		git(worktree.path, 'commit', '-q', '-m', 'committed work');
		fs.rmSync(worktree.path, { recursive: true, force: true });
		const risk = await service.risk(worktree.id);
		assert.equal(risk.exists, false);
		assert.match(risk.summary, /Its folder .*gone-by-hand is gone \(deleted or moved outside Agent Tabs\)/);
		assert.doesNotMatch(risk.summary, /not installed/);
		assert.equal(risk.unmerged.length, 1, 'the branch commits still count');
		const archived = await service.archiveSession(session.id);
		assert.deepEqual([archived!.saved, archived!.risk.exists], [null, false]);
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'removed');
		const restored = await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(restored.path, 'c.txt'), 'utf8'), 'c\n', 'back from the branch');
		fs.rmSync(worktree.path, { recursive: true, force: true });
		const deleted = await service.deleteSession(session.id);
		assert.equal(deleted!.risk.exists, false);
		assert.equal(new SessionsRepo(store).get(session.id), undefined);
		assert.ok(git(repo, 'rev-parse', '--verify', 'refs/heads/agent-tabs/gone-by-hand').trim(), 'the branch is kept');
	});

	test("a folder that is no longer this repository's worktree (.git deleted or replaced) is never saved elsewhere nor removed", async () => {
		// The worktrees root inside another repository (a home folder kept in git, say).
		const outer = makeRepo(path.join(dir, 'home in git'), { 'dotfile': 'x\n' });
		const inOuter = new WorktreeService(store, new MemoryLogger(), { root: path.join(outer, 'worktrees'), env });
		const cases: [string, WorktreeService, (wt: string) => void, RegExp][] = [
			['its .git replaced by a repository of its own (rm -rf .git && git init)', service, (wt) => (fs.rmSync(path.join(wt, '.git')), git(wt, 'init', '-q'), git(wt, 'commit', '-q', '--allow-empty', '-m', 'x')), /is a git repository of its own/],
			['its .git file deleted, the folder inside another repository', inOuter, (wt) => fs.rmSync(path.join(wt, '.git')), /lies inside another git repository .*home in git.* its \.git file is missing/],
			['its .git file deleted, no repository around it', service, (wt) => fs.rmSync(path.join(wt, '.git')), /is no longer a git worktree: its \.git file is missing/],
		];
		for (const [what, svc, damage, says] of cases) {
			const { session, worktree } = await svc.createSession({ repo, title: what.slice(0, 20) });
			fs.writeFileSync(path.join(worktree.path, 'precious.txt'), `${what}\n`);
			damage(worktree.path);
			const outerRefs = git(outer, 'for-each-ref');
			const risk = await svc.risk(worktree.id);
			assert.equal(risk.clean, false, what);
			assert.match(risk.foreign ?? '', says, what);
			assert.match(risk.summary, /At risk: everything in the folder/, what);
			for (const remove of [() => svc.archiveSession(session.id), () => svc.deleteSession(session.id)]) {
				await assert.rejects(remove(), (e: Error & { code?: string }) => e.code === 'worktree/notOurs' && /Nothing was removed/.test(e.message), what);
			}
			await assert.rejects(svc.save(worktree.id, 'test'), (e: Error & { code?: string }) => e.code === 'worktree/notOurs', what);
			assert.equal(fs.readFileSync(path.join(worktree.path, 'precious.txt'), 'utf8'), `${what}\n`, `${what}: the work is where it was`);
			assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'ready', what);
			assert.equal(git(outer, 'for-each-ref'), outerRefs, `${what}: nothing was saved into another repository`);
		}
		// Emptied by hand, the folder left: nothing in it to lose, so it counts as gone.
		const { session, worktree } = await service.createSession({ repo, title: 'emptied' });
		for (const name of fs.readdirSync(worktree.path)) {
			fs.rmSync(path.join(worktree.path, name), { recursive: true, force: true });
		}
		assert.equal((await service.risk(worktree.id)).foreign, null);
		assert.equal((await service.archiveSession(session.id))!.risk.exists, false);
		// The same inside another repository: gone, and nothing of it is looked up or written in that repository.
		const inside = await inOuter.createSession({ repo, title: 'emptied inside' });
		for (const name of fs.readdirSync(inside.worktree.path)) {
			fs.rmSync(path.join(inside.worktree.path, name), { recursive: true, force: true });
		}
		const outerRefs = git(outer, 'for-each-ref');
		const risk = await inOuter.risk(inside.worktree.id);
		assert.deepEqual([risk.exists, risk.foreign, risk.staged, risk.untracked], [false, null, [], []]);
		assert.equal((await inOuter.archiveSession(inside.session.id))!.risk.exists, false);
		assert.equal(git(outer, 'for-each-ref'), outerRefs, 'no ref was written into the other repository');
	});

	test('an interrupted removal (intent recorded, folder half deleted) is finished at the next start and restores exactly', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'half gone' });
		const wt = worktree.path;
		for (let i = 0; i < 50; i++) {
			fs.writeFileSync(path.join(wt, `file-${i}.txt`), `content ${i}\n`);
		}
		git(wt, 'add', 'file-1.txt');
		const before = fullState(wt);
		// What a kill during `git worktree remove` leaves: saved, intent recorded, half the files gone.
		await service.save(worktree.id, 'the session was archived');
		new WorktreesRepo(store).update(worktree.id, { state: 'removing' });
		for (let i = 0; i < 25; i++) {
			fs.rmSync(path.join(wt, `file-${i}.txt`));
		}
		fs.rmSync(path.join(wt, 'src'), { recursive: true });
		// An archive run again on it does not save the damaged folder over anything; it finishes the removal.
		const again = await service.archiveSession(session.id);
		assert.equal(again!.saved!.ref, `refs/agent-tabs/saved/${worktree.id}/1`);
		assert.equal(git(repo, 'for-each-ref', `refs/agent-tabs/saved/${worktree.id}/`).trim().split('\n').length, 1, 'no second save of the damaged folder');
		assert.ok(!fs.existsSync(wt));
		await service.restoreSession(session.id);
		assert.deepEqual(fullState(wt), before);

		// The same at start-up: the reconcile finishes it and the session shows as archived.
		await service.save(worktree.id, 'the session was archived');
		new WorktreesRepo(store).update(worktree.id, { state: 'removing' });
		fs.rmSync(path.join(wt, 'README.md'));
		const r = await service.reconcile(repo);
		assert.deepEqual(r.recovered.completedRemovals, [wt]);
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'removed');
		assert.equal(new SessionsRepo(store).get(session.id)!.status, 'archived');
		await service.restoreSession(session.id);
		assert.deepEqual(fullState(wt), before);
	});

	test('an interrupted create (locked worktree, temp index of a dead process) is rolled back at the next start', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'killed create' });
		// What a kill during `git worktree add` leaves: the row says creating, git's "initializing" lock is on.
		new WorktreesRepo(store).update(worktree.id, { state: 'creating' });
		git(repo, 'worktree', 'lock', '--reason', 'initializing', worktree.path);
		const deadPid = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
		const stale = path.join(os.tmpdir(), `agent-tabs-index-${deadPid}-1-x`);
		fs.writeFileSync(stale, 'half an index');
		const r = await service.recoverInterrupted();
		assert.deepEqual(r.rolledBackCreates, [worktree.path]);
		assert.ok(r.removedTempFiles.includes(path.basename(stale)));
		assert.ok(!fs.existsSync(stale));
		assert.ok(!fs.existsSync(worktree.path));
		assert.equal(new WorktreesRepo(store).get(worktree.id), undefined);
		assert.equal(new SessionsRepo(store).get(session.id), undefined);
		assert.equal(git(repo, 'branch', '--list', 'agent-tabs/killed-create'), '');
		assert.equal(git(repo, 'worktree', 'list').trim().split('\n').length, 1);
	});

	test('a read-only reader (another process holds the state) never undoes a create, restore or removal that process may be running', async () => {
		const { worktree } = await service.createSession({ repo, title: 'still creating' });
		// The writer is in the middle of a create: its row says creating, its folder and branch are there.
		new WorktreesRepo(store).update(worktree.id, { state: 'creating' });
		await store.durable();
		const reader = await Store.openSnapshot({ dir: store.dir, wasmPath, logger: new MemoryLogger() });
		try {
			assert.equal(reader.readOnly, true);
			const r = await new WorktreeService(reader, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env }).recoverInterrupted();
			assert.deepEqual([r.rolledBackCreates, r.undoneRestores, r.completedRemovals], [[], [], []]);
		} finally {
			await reader.close();
		}
		assert.ok(fs.existsSync(path.join(worktree.path, 'README.md')), 'the folder stays');
		assert.equal(git(repo, 'rev-parse', '--abbrev-ref', `${worktree.branch!}`).trim(), worktree.branch, 'the branch stays');
		assert.equal(new WorktreesRepo(store).get(worktree.id)?.state, 'creating', 'the writer finishes its own create');
	});

	test('an interrupted create that lost its folder\'s name to another window: the next start removes only its own record, never the other\'s worktree or branch', async () => {
		// Another state folder (another window) made this worktree; this store recorded a creation at the same
		// path and branch, then lost the race for the folder and was killed before forgetting it.
		const other = await openStore(path.join(dir, 'other state'));
		try {
			const theirs = await new WorktreeService(other, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env }).createSession({ repo, title: 'same name' });
			fs.writeFileSync(path.join(theirs.worktree.path, 'their-work.txt'), 'not committed\n');
			const session = new SessionsRepo(store).create({ title: 'same name', baseRef: 'main', repoRoot: repo });
			const ours = new WorktreesRepo(store).insert({ id: 'wt-ours', session_id: session.id, repo_root: repo, path: theirs.worktree.path, branch: theirs.worktree.branch, base_ref: 'main', base_commit: theirs.worktree.base_commit, state: 'creating' });
			const r = await service.recoverInterrupted();
			assert.deepEqual(r.rolledBackCreates, [ours.path]);
			assert.equal(new WorktreesRepo(store).get(ours.id), undefined, 'our record is gone');
			assert.equal(fs.readFileSync(path.join(theirs.worktree.path, 'their-work.txt'), 'utf8'), 'not committed\n', 'their worktree and its work stay');
			assert.equal(git(repo, 'rev-parse', `refs/heads/${theirs.worktree.branch!}`).trim(), theirs.worktree.base_commit, 'their branch stays');
			assert.equal(git(theirs.worktree.path, 'rev-parse', '--abbrev-ref', 'HEAD').trim(), theirs.worktree.branch);
		} finally {
			await other.close();
		}
	});

	test('a create that fails leaves nothing behind and says why in git\'s words', async () => {
		fs.writeFileSync(path.join(repo, 'README.md'), 'uncommitted in main\n');
		await new Promise((r) => setTimeout(r, 1100));
		git(repo, 'status'); // a fresh index: git would not even try to take the lock to refresh it
		fs.writeFileSync(path.join(repo, '.git', 'index.lock'), '');
		try {
			await assert.rejects(service.createSession({ repo, title: 'carry', carryChanges: true }), /Could not carry the uncommitted changes .* so it was not created: fatal: Unable to create '.*index\.lock': File exists/);
		} finally {
			fs.rmSync(path.join(repo, '.git', 'index.lock'));
		}
		const failingSetup = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env, setupCommand: 'exit 3' });
		await assert.rejects(failingSetup.createSession({ repo, title: 'setup fails' }), /The setup command "exit 3" failed with exit code 3/);
		assert.deepEqual(new SessionsRepo(store).list(), []);
		assert.deepEqual(new WorktreesRepo(store).list(), []);
		assert.deepEqual(fs.readdirSync(path.join(dir, 'worktrees')), []);
		assert.equal(git(repo, 'branch', '--list', 'agent-tabs/*'), '');
	});

	test('a repository with Git LFS files and no git-lfs on the PATH: New Session says so in plain words and leaves nothing behind', async () => {
		fs.writeFileSync(path.join(repo, '.gitattributes'), '*.bin filter=lfs diff=lfs merge=lfs -text\n');
		fs.writeFileSync(path.join(repo, 'model.bin'), 'version https://git-lfs.github.com/spec/v1\noid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n');
		git(repo, 'add', '-A');
		git(repo, 'commit', '-q', '-m', 'lfs');
		// What `git lfs install` writes into the global config, on a PATH that has git and no git-lfs.
		const bin = path.join(dir, 'bin-without-lfs');
		fs.mkdirSync(bin);
		fs.symlinkSync(execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim(), path.join(bin, 'git'));
		const noLfs = { ...env, PATH: bin };
		for (const [filters, title] of [[{ 'filter.lfs.process': 'git-lfs filter-process', 'filter.lfs.clean': 'git-lfs clean -- %f', 'filter.lfs.smudge': 'git-lfs smudge -- %f' }, 'process'], [{ 'filter.lfs.clean': 'git-lfs clean -- %f', 'filter.lfs.smudge': 'git-lfs smudge -- %f' }, 'smudge']] as const) {
			for (const [key, value] of Object.entries({ ...filters, 'filter.lfs.required': 'true' })) {
				git(repo, 'config', key, value);
			}
			const withoutLfs = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env: noLfs });
			await assert.rejects(withoutLfs.createSession({ repo, title: `lfs ${title}` }), (e: Error) => /stores files with Git LFS and git-lfs could not be run: install Git LFS, or put it on the PATH/.test(e.message));
			git(repo, 'config', '--remove-section', 'filter.lfs');
		}
		assert.deepEqual(new SessionsRepo(store).list(), []);
		assert.deepEqual(fs.readdirSync(path.join(dir, 'worktrees')), []);
		assert.equal(git(repo, 'branch', '--list', 'agent-tabs/*'), '');
	});

	test('a post-checkout hook that fails does not undo New Session (git keeps the worktree it made): the session is ready and the note gives the hook\'s words; a checkout that fails still leaves nothing', async () => {
		const hook = path.join(repo, '.git', 'hooks', 'post-checkout');
		// As a husky or lfs hook does when its tool is missing.
		fs.writeFileSync(hook, '#!/bin/sh\necho "post-checkout: lfs-tool was not found on your path" >&2\nexit 2\n', { mode: 0o755 });
		const { session, worktree, note } = await service.createSession({ repo, title: 'hooked' });
		assert.match(note ?? '', /^The post-checkout hook failed in the new worktree, which git made all the same: post-checkout: lfs-tool was not found on your path\.$/);
		assert.equal(worktree.state, 'ready');
		assert.equal(new SessionsRepo(store).get(session.id)?.status, 'active');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'README.md'), 'utf8'), fs.readFileSync(path.join(repo, 'README.md'), 'utf8'));
		assert.equal(git(worktree.path, 'rev-parse', '--abbrev-ref', 'HEAD').trim(), worktree.branch);
		assert.equal(git(worktree.path, 'status', '--porcelain'), '');
		// A checkout that fails (a required smudge filter) is no hook: git removes what it made, and so do we.
		fs.rmSync(hook);
		fs.writeFileSync(path.join(repo, '.gitattributes'), 'README.md filter=broken\n');
		git(repo, 'add', '.gitattributes');
		git(repo, 'commit', '-q', '-m', 'attributes');
		git(repo, 'config', 'filter.broken.smudge', 'false');
		git(repo, 'config', 'filter.broken.required', 'true');
		await assert.rejects(service.createSession({ repo, title: 'filter fails' }), /README\.md/);
		assert.deepEqual(
			new SessionsRepo(store).list().map((s) => s.title),
			['hooked'],
		);
		assert.deepEqual(fs.readdirSync(path.join(dir, 'worktrees')), [path.basename(worktree.path)]);
	});

	test('New Session is cancelled while a post-checkout hook or the setup command has not ended: each is stopped with what it started, and nothing is left behind', async () => {
		const marker = path.join(dir, 'still-running');
		const hook = path.join(repo, '.git', 'hooks', 'post-checkout');
		// A hook, and a setup command, that never end; each starts a child that would write the marker later.
		const hang = `(sleep 3; echo alive > '${marker}') & sleep 600`;
		fs.writeFileSync(hook, `#!/bin/sh\n${hang}\n`, { mode: 0o755 });
		const hanging = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env, setupCommand: hang });
		for (const stage of ['hook', 'setup'] as const) {
			const cancel = new AbortController();
			const creating = hanging.createSession({ repo, title: `cancelled in ${stage}`, signal: cancel.signal });
			// Cancelled once the stage runs: its process has started.
			const made = (): string[] => (fs.existsSync(path.join(dir, 'worktrees')) ? fs.readdirSync(path.join(dir, 'worktrees')) : []);
			await waitFor(() => made().some((name) => stage === 'hook' || fs.existsSync(path.join(dir, 'worktrees', name, 'README.md'))), `the ${stage} running`);
			await new Promise((r) => setTimeout(r, 300));
			const t0 = Date.now();
			cancel.abort();
			await assert.rejects(creating, (e: Error) => e instanceof CancelledError && new RegExp(`^Creating the session "cancelled in ${stage}" was cancelled; nothing was left behind\\.$`).test(e.message));
			assert.ok(Date.now() - t0 < 8000, `stopped in ${Date.now() - t0} ms`);
			assert.deepEqual(new SessionsRepo(store).list(), []);
			assert.deepEqual(new WorktreesRepo(store).list(), []);
			assert.deepEqual(fs.readdirSync(path.join(dir, 'worktrees')), []);
			assert.equal(git(repo, 'branch', '--list', 'agent-tabs/*'), '');
			if (stage === 'hook') {
				fs.rmSync(hook);
			}
		}
		await new Promise((r) => setTimeout(r, 3500));
		assert.ok(!fs.existsSync(marker), 'what the hook and the setup command started was stopped with them');
	});

	test('a restore is cancelled while the user\'s post-index-change hook has not ended: it is stopped with what it started, nothing is changed and the save stays; the restore works once the hook is gone', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'restore cancelled' });
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'saved before archive\n');
		await service.archiveSession(session.id);
		const marker = path.join(dir, 'still-running');
		const hook = path.join(repo, '.git', 'hooks', 'post-index-change');
		fs.writeFileSync(hook, `#!/bin/sh\n(sleep 3; echo alive > '${marker}') & sleep 600\n`, { mode: 0o755 });
		const cancel = new AbortController();
		const restoring = service.restoreSession(session.id, cancel.signal);
		await waitFor(() => fs.existsSync(path.join(worktree.path, 'work.txt')), 'the folder written, the hook running');
		await new Promise((r) => setTimeout(r, 300));
		const t0 = Date.now();
		cancel.abort();
		await assert.rejects(restoring, (e: Error) => e instanceof CancelledError && /^Restoring .* was cancelled\. Nothing was changed; the saved work is still in refs\/agent-tabs\//.test(e.message));
		assert.ok(Date.now() - t0 < 8000, `stopped in ${Date.now() - t0} ms`);
		assert.equal(new SessionsRepo(store).get(session.id)?.status, 'archived');
		assert.ok(!fs.existsSync(worktree.path), 'the half-written folder is removed');
		fs.rmSync(hook);
		const restored = await service.restoreSession(session.id);
		assert.equal(restored.state, 'ready');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'work.txt'), 'utf8'), 'saved before archive\n');
		await new Promise((r) => setTimeout(r, 3000));
		assert.ok(!fs.existsSync(marker), 'what the hook started was stopped with it');
	});

	test('a setup step that fails after a restore leaves the session restored, says so, and nothing later removes the folder; an .env link to nothing is not copied and fails nothing', async () => {
		fs.writeFileSync(path.join(repo, '.env'), 'A=1\n');
		fs.symlinkSync(path.join(dir, 'no-such-file'), path.join(repo, '.env.dangling'));
		const { session, worktree } = await service.createSession({ repo, title: 'setup later fails' });
		assert.equal(fs.readFileSync(path.join(worktree.path, '.env'), 'utf8'), 'A=1\n');
		assert.ok(!fs.existsSync(path.join(worktree.path, '.env.dangling')), 'the dangling link is not copied');
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'before archive\n');
		await service.archiveSession(session.id);
		const failingSetup = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env, setupCommand: 'exit 3' });
		const restored = await failingSetup.restoreSession(session.id);
		assert.match(restored.setupFailed ?? '', /The setup command "exit 3" failed with exit code 3/);
		assert.equal(restored.state, 'ready');
		assert.equal(new SessionsRepo(store).get(session.id)!.status, 'active');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'work.txt'), 'utf8'), 'before archive\n');
		// Work done since, then a start that recovers what was interrupted: the folder and the work stay.
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'after restore\n');
		await failingSetup.reconcile(repo);
		await service.reconcile(repo);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'work.txt'), 'utf8'), 'after restore\n');
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'ready');
		fs.rmSync(path.join(repo, '.env.dangling'));
		fs.rmSync(path.join(repo, '.env'));
	});

	test('removing and restoring sessions forget only their own worktree: one you moved by hand stays known to git, for `git worktree repair`', async () => {
		const mine = path.join(dir, 'mine');
		git(repo, 'worktree', 'add', '-q', '-b', 'mine', mine);
		fs.writeFileSync(path.join(mine, 'draft.txt'), 'my own work\n');
		fs.renameSync(mine, path.join(dir, 'mine-moved'));
		const known = (): boolean => git(repo, 'worktree', 'list', '--porcelain').split('\n').includes(`worktree ${mine}`);
		const { session, worktree } = await service.createSession({ repo, title: 'beside a moved one' });
		await service.archiveSession(session.id);
		assert.ok(known(), 'archive');
		await service.restoreSession(session.id);
		assert.ok(known(), 'restore');
		fs.rmSync(worktree.path, { recursive: true, force: true });
		await service.deleteSession(session.id);
		assert.ok(known(), 'delete of a session whose folder is gone');
		assert.ok(!git(repo, 'worktree', 'list', '--porcelain').includes(worktree.path), "the session's own record is gone");
		git(path.join(dir, 'mine-moved'), 'worktree', 'repair');
		assert.match(git(path.join(dir, 'mine-moved'), 'status', '--porcelain'), /\?\? draft\.txt/);
		git(repo, 'worktree', 'remove', '--force', path.join(dir, 'mine-moved'));
		git(repo, 'branch', '-D', 'mine');
	});

	test('a restore that cannot reproduce the save fails, names the difference and removes its partial folder', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'smudged' });
		fs.writeFileSync(path.join(worktree.path, '.gitattributes'), '*.txt filter=shout\n');
		fs.writeFileSync(path.join(worktree.path, 'quiet.txt'), 'quiet\n');
		await service.archiveSession(session.id);
		// A checkout filter configured since then changes files on the way out: the folder would differ.
		git(repo, 'config', 'filter.shout.smudge', 'tr a-z A-Z');
		await assert.rejects(service.restoreSession(session.id), /Could not restore .*: The restored folder .* does not match the save \(files differ: quiet.txt\)\. Nothing was changed; the saved work is still in refs\/agent-tabs\/saved\//);
		assert.ok(!fs.existsSync(worktree.path), 'the partial folder is gone');
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'removed');
		assert.equal(new SessionsRepo(store).get(session.id)!.status, 'archived');
		git(repo, 'config', '--unset', 'filter.shout.smudge');
		await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'quiet.txt'), 'utf8'), 'quiet\n');
	});

	test('a session folder moved by hand is followed, not rebuilt beside it: renamed, moved back, or moved far and repaired', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'wanderer' });
		fs.writeFileSync(path.join(worktree.path, 'draft.txt'), 'only here\n');
		const renamed = `${worktree.path}-renamed`;
		fs.renameSync(worktree.path, renamed);
		const r = await service.reconcile(repo);
		assert.deepEqual(r.moved, [{ from: worktree.path, to: renamed }]);
		assert.deepEqual(r.missing, []);
		assert.deepEqual(r.adopted, []);
		const row = (): { path: string; state: string } => new WorktreesRepo(store).get(worktree.id)!;
		assert.deepEqual({ path: row().path, state: row().state }, { path: renamed, state: 'ready' });
		assert.match(git(renamed, 'status', '--porcelain'), /\?\? draft\.txt/, "git's record is repaired: the folder works");
		assert.ok(git(repo, 'worktree', 'list', '--porcelain').includes(`worktree ${renamed}\n`));

		// Moved back without a start in between: a restore finds it instead of refusing a folder in the way.
		fs.renameSync(renamed, worktree.path);
		const restored = await service.restoreSession(session.id);
		assert.equal(restored.path, worktree.path);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'draft.txt'), 'utf8'), 'only here\n');
		assert.equal(git(worktree.path, 'status', '--porcelain'), '?? draft.txt\n');

		// Moved somewhere Agent Tabs does not look: missing, and its git record is kept until a restore...
		const far = path.join(dir, 'far away', 'wanderer');
		fs.mkdirSync(path.dirname(far));
		fs.renameSync(worktree.path, far);
		assert.deepEqual((await service.reconcile(repo)).missing, [worktree.path]);
		// ...so the user can say where it went; the next start follows it.
		git(far, 'worktree', 'repair');
		assert.deepEqual((await service.reconcile(repo)).moved, [{ from: worktree.path, to: far }]);
		assert.equal(row().state, 'ready');

		// A copy of the folder beside the sessions is not the folder: with the original moved far away, the copy
		// is left alone and the session is missing.
		const copyBeside = path.join(path.dirname(worktree.path), 'wanderer-copy');
		fs.cpSync(far, copyBeside, { recursive: true, verbatimSymlinks: true });
		const farther = path.join(dir, 'farther away', 'wanderer');
		fs.mkdirSync(path.dirname(farther));
		fs.renameSync(far, farther);
		assert.deepEqual((await service.reconcile(repo)).missing, [far]);
		assert.ok(fs.existsSync(copyBeside));
		fs.rmSync(copyBeside, { recursive: true, force: true });
		git(farther, 'worktree', 'repair');
		assert.deepEqual((await service.reconcile(repo)).moved, [{ from: far, to: farther }]);

		// Deleting a session whose folder was moved saves and removes that folder, not just git's record.
		const beside = path.join(path.dirname(worktree.path), 'wanderer-beside');
		fs.renameSync(farther, beside);
		const removed = (await service.deleteSession(session.id))!;
		assert.equal(removed.removedPath, beside);
		assert.ok(!fs.existsSync(beside));
		assert.equal(removed.saved!.files, 1, 'draft.txt was saved first');
	});

	test('a repository moved by hand takes its sessions along: live and archived ones work from the new place', async () => {
		const { session: live, worktree: liveWt } = await service.createSession({ repo, title: 'live one' });
		fs.writeFileSync(path.join(liveWt.path, 'draft.txt'), 'uncommitted\n');
		const { session: archived, worktree: archivedWt } = await service.createSession({ repo, title: 'archived one' });
		fs.writeFileSync(path.join(archivedWt.path, 'kept.txt'), 'saved\n');
		await service.archiveSession(archived.id);
		const { worktree: idle } = await service.createSession({ repo, title: 'idle one' });
		// A copy of the repository (a backup) opened in a window takes nothing over: the original is still there.
		const copy = path.join(dir, 'backup of my repo');
		fs.cpSync(repo, copy, { recursive: true, verbatimSymlinks: true });
		assert.deepEqual((await service.reconcile(copy)).rehomed, []);
		assert.equal(new WorktreesRepo(store).get(liveWt.id)!.repo_root, repo);
		assert.equal(git(liveWt.path, 'rev-parse', '--git-common-dir').trim(), path.join(repo, '.git'), 'the session folder still belongs to the original');
		fs.rmSync(copy, { recursive: true, force: true });
		const moved = path.join(dir, 'moved', 'my repo');
		fs.mkdirSync(path.dirname(moved));
		fs.renameSync(repo, moved);
		assert.throws(() => git(liveWt.path, 'status'), /not a git repository/, "the worktree's .git file points at the old place");

		const r = await service.reconcile(moved);
		assert.deepEqual([...r.rehomed].sort(), [archivedWt.path, liveWt.path, idle.path].sort());
		assert.deepEqual(r.missing, []);
		const rows = new WorktreesRepo(store);
		assert.equal(rows.get(liveWt.id)!.repo_root, moved);
		assert.equal(new SessionsRepo(store).get(live.id)!.repo_root, moved);
		assert.equal(new SessionsRepo(store).get(archived.id)!.repo_root, moved);
		assert.equal(git(liveWt.path, 'status', '--porcelain'), '?? draft.txt\n', 'git works in the worktree again');
		assert.deepEqual((await service.risk(liveWt.id)).untracked, ['draft.txt']);
		await service.restoreSession(archived.id);
		assert.equal(fs.readFileSync(path.join(archivedWt.path, 'kept.txt'), 'utf8'), 'saved\n');
		assert.deepEqual((await service.reconcile(moved)).rehomed, [], 'once is enough');
	});

	test('a locked worktree whose folder is away (an unplugged drive) keeps its git record and lock: risk, delete, archive and restore refuse', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'on a usb drive' });
		fs.writeFileSync(path.join(worktree.path, 'README.md'), '# staged\n');
		git(worktree.path, 'add', 'README.md');
		fs.writeFileSync(path.join(worktree.path, 'README.md'), '# staged, then changed\n');
		git(repo, 'worktree', 'lock', '--reason', 'on a USB drive', worktree.path);
		const away = path.join(dir, 'usb-mount', 'unplugged'); // not beside the other sessions: not followed
		fs.mkdirSync(path.dirname(away));
		fs.renameSync(worktree.path, away);
		const risk = await service.risk(worktree.id);
		assert.equal(risk.clean, false);
		assert.match(risk.summary, /is not there, but git keeps it locked \("on a USB drive"\)/);
		const refusal = /is not there, but git keeps it locked \("on a USB drive"\), as for a folder on a drive that is not connected\. Connect it; if it is really gone, run "git worktree unlock .*" first\. Nothing was changed\./;
		await assert.rejects(service.deleteSession(session.id), refusal);
		await assert.rejects(service.archiveSession(session.id), refusal);
		await service.reconcile(repo);
		await assert.rejects(service.restoreSession(session.id), refusal);
		assert.ok(new SessionsRepo(store).get(session.id), 'the session is still there');
		// The drive is back: everything is as it was, staged and unstaged.
		fs.renameSync(away, worktree.path);
		await service.restoreSession(session.id);
		assert.equal(git(worktree.path, 'status', '--porcelain'), 'MM README.md\n');
		assert.equal(git(worktree.path, 'show', ':README.md'), '# staged\n');
		assert.match(git(repo, 'worktree', 'list', '--porcelain'), /locked on a USB drive/);
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

	test('a git repository cloned into the worktree is never removed with it: risk names it, removal refuses until it is moved out', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'vendored' });
		// What an agent does when asked to vendor a library: clone it in, then commit there.
		const library = makeRepo(path.join(dir, 'library'), { 'lib.js': 'module.exports = 1;\n' });
		git(worktree.path, 'clone', '-q', library, 'vendor-lib');
		fs.writeFileSync(path.join(worktree.path, 'vendor-lib', 'lib.js'), 'module.exports = 2;\n');
		git(path.join(worktree.path, 'vendor-lib'), 'commit', '-q', '-am', 'a commit only this clone has');
		const commit = git(path.join(worktree.path, 'vendor-lib'), 'rev-parse', 'HEAD').trim();
		const risk = await service.risk(worktree.id);
		assert.equal(risk.clean, false);
		assert.deepEqual(risk.innerRepositories, ['vendor-lib/ (a separate git repository; its files and history are not part of this worktree)']);
		assert.match(risk.summary, /a git repository inside it that cannot be saved \(vendor-lib\//);
		await assert.rejects(service.archiveSession(session.id), (e: Error & { code?: string }) => e.code === 'worktree/innerRepositories' && /Move them out of the worktree/.test(e.message) && /Nothing was removed\.$/.test(e.message));
		assert.equal(git(path.join(worktree.path, 'vendor-lib'), 'rev-parse', 'HEAD').trim(), commit, 'the clone and its commit are still there');
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'ready');
		fs.renameSync(path.join(worktree.path, 'vendor-lib'), path.join(dir, 'vendor-lib-moved'));
		assert.ok((await service.archiveSession(session.id))!.saved);
	});

	/** A session of a repository with a submodule at `at` (a real repository beside it), checked out in the worktree. */
	async function sessionWithSubmodule(at: string, title: string): Promise<{ session: { id: string }; worktree: { id: string; path: string }; sub: string }> {
		const library = makeRepo(path.join(dir, 'library'), { 'lib.js': 'module.exports = 1;\n' });
		const fileProtocol = ['-c', 'protocol.file.allow=always'];
		git(repo, ...fileProtocol, 'submodule', 'add', '-q', library, at);
		git(repo, 'commit', '-q', '-m', `add ${at}`);
		const { session, worktree } = await service.createSession({ repo, title });
		git(worktree.path, ...fileProtocol, 'submodule', 'update', '-q', '--init');
		return { session, worktree, sub: path.join(worktree.path, at) };
	}

	test('a submodule with commits on no remote or uncommitted changes blocks removal; a clean one at a pushed commit does not', async () => {
		const { session, worktree, sub } = await sessionWithSubmodule('sublib', 'with a submodule');
		assert.ok(fs.existsSync(path.join(sub, 'lib.js')));
		assert.deepEqual((await service.risk(worktree.id)).innerRepositories, [], 'checked out at its recorded commit, which its remote has');
		fs.writeFileSync(path.join(sub, 'lib.js'), 'module.exports = 2;\n');
		assert.deepEqual((await service.risk(worktree.id)).innerRepositories, ['sublib (a submodule with uncommitted changes)']);
		git(sub, 'commit', '-q', '-am', 'only in the worktree');
		assert.deepEqual((await service.risk(worktree.id)).innerRepositories, ['sublib (a submodule with commits on none of its remotes)']);
		await assert.rejects(service.archiveSession(session.id), (e: Error & { code?: string }) => e.code === 'worktree/innerRepositories');
		assert.match(git(sub, 'log', '-1', '--format=%s'), /only in the worktree/);
		// Pushed to its remote, the commit can be fetched again: removal goes ahead.
		git(sub, 'push', '-q', 'origin', 'HEAD:refs/heads/pushed');
		git(sub, 'fetch', '-q', 'origin');
		assert.deepEqual((await service.risk(worktree.id)).innerRepositories, []);
		assert.ok((await service.archiveSession(session.id))!.saved);
	});

	test('a submodule whose only change is a new file is named by risk and blocks removal, also with status.showUntrackedFiles=no in your git config', async () => {
		fs.appendFileSync(path.join(dir, '.gitconfig'), '[status]\n\tshowUntrackedFiles = no\n');
		const { session, worktree, sub } = await sessionWithSubmodule('sublib', 'untracked in a submodule');
		fs.writeFileSync(path.join(sub, 'notes.md'), 'written by the agent, committed nowhere\n');
		assert.deepEqual((await service.risk(worktree.id)).innerRepositories, ['sublib (a submodule with uncommitted changes)']);
		await assert.rejects(service.archiveSession(session.id), (e: Error & { code?: string }) => e.code === 'worktree/innerRepositories');
		assert.equal(fs.readFileSync(path.join(sub, 'notes.md'), 'utf8'), 'written by the agent, committed nowhere\n');
	});

	test('with submodule.recurse=true in your git config, a session of a repository with a submodule is archived and restored', async () => {
		fs.appendFileSync(path.join(dir, '.gitconfig'), '[submodule]\n\trecurse = true\n');
		const { session, worktree, sub } = await sessionWithSubmodule('sublib', 'recurse into submodules');
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'keep me\n');
		const before = snapshotFiles(worktree.path);
		assert.ok((await service.archiveSession(session.id))!.saved);
		const restored = await service.restoreSession(session.id);
		// The submodule comes back as a fresh clone would have it (`git submodule update` checks it out).
		delete before['sublib/lib.js'];
		assert.deepEqual(snapshotFiles(restored.path), before);
		assert.ok(fs.existsSync(sub));
	});

	test('rewind leaves the files of a submodule whose commit moved during the turn alone, also with diff.submodule=diff in your git config', async () => {
		fs.appendFileSync(path.join(dir, '.gitconfig'), '[diff]\n\tsubmodule = diff\n');
		const { worktree, sub } = await sessionWithSubmodule('sublib', 'submodule moves');
		const ref = await service.checkpoint(worktree.path, 'chat-sm/turn-1-before');
		fs.writeFileSync(path.join(sub, 'lib.js'), 'module.exports = 2;\n');
		git(sub, 'commit', '-q', '-am', 'the agent moved the submodule on');
		fs.writeFileSync(path.join(worktree.path, 'README.md'), 'agent edit\n');
		await service.rewind(worktree.path, ref);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'README.md'), 'utf8'), '# r\n');
		assert.equal(fs.readFileSync(path.join(sub, 'lib.js'), 'utf8'), 'module.exports = 2;\n', "the submodule's files are its commit's");
		assert.equal(git(sub, 'status', '--porcelain'), '', 'nothing was written into the submodule');
	});

	test('a submodule deinitialized with commits on none of its remotes (its git folder stays in the worktree\'s admin folder) blocks removal', async () => {
		const { session, worktree, sub } = await sessionWithSubmodule('vendor/lib', 'deinit submodule');
		git(sub, 'checkout', '-q', '-b', 'feature');
		fs.writeFileSync(path.join(sub, 'lib.js'), 'module.exports = 2;\n');
		git(sub, 'commit', '-q', '-am', 'precious work');
		const precious = git(sub, 'rev-parse', 'HEAD').trim();
		git(sub, 'checkout', '-q', '--detach', 'HEAD~1');
		git(worktree.path, 'submodule', 'deinit', '-q', '-f', 'vendor/lib');
		assert.ok(!fs.existsSync(path.join(sub, 'lib.js')), 'nothing of it is checked out');
		const risk = await service.risk(worktree.id);
		assert.deepEqual(risk.innerRepositories, ['vendor/lib (a submodule that is not checked out, whose git folder holds commits on none of its remotes)']);
		assert.equal(risk.clean, false);
		await assert.rejects(service.archiveSession(session.id), (e: Error & { code?: string }) => e.code === 'worktree/innerRepositories');
		const moduleGitDir = path.resolve(worktree.path, git(worktree.path, 'rev-parse', '--git-path', 'modules/vendor/lib').trim());
		assert.equal(git(worktree.path, '--git-dir', moduleGitDir, 'cat-file', '-t', precious).trim(), 'commit', 'the commit is still there');
		// Pushed to its remote, the commit can be fetched again: removal goes ahead.
		git(worktree.path, '--git-dir', moduleGitDir, 'push', '-q', 'origin', 'feature:refs/heads/feature');
		git(worktree.path, '--git-dir', moduleGitDir, 'fetch', '-q', 'origin');
		assert.deepEqual((await service.risk(worktree.id)).innerRepositories, []);
		assert.ok((await service.archiveSession(session.id))!.saved);
	});

	for (const flag of ['--skip-worktree', '--assume-unchanged'] as const) {
		test(`a tracked file marked ${flag} and then edited (hidden local config) is reported, saved and restored exactly`, async () => {
			const { session, worktree } = await service.createSession({ repo, title: `hidden ${flag}` });
			git(worktree.path, 'update-index', flag, 'src/app.ts');
			fs.writeFileSync(path.join(worktree.path, 'src/app.ts'), 'export const token = "mine";\n');
			assert.equal(git(worktree.path, 'status', '--porcelain'), '', 'git itself does not show the change');
			const risk = await service.risk(worktree.id);
			assert.deepEqual(risk.unstaged, ['src/app.ts']);
			assert.equal(risk.clean, false);
			const result = await service.archiveSession(session.id);
			assert.equal(result!.saved!.files, 1);
			await service.restoreSession(session.id);
			assert.equal(fs.readFileSync(path.join(worktree.path, 'src/app.ts'), 'utf8'), 'export const token = "mine";\n');
			// The flag comes back too: git still does not show the local change, and `commit -a` would not take it.
			assert.equal(git(worktree.path, 'status', '--porcelain'), '', 'the file is hidden again, as it was');
			assert.match(git(worktree.path, 'ls-files', '-v', 'src/app.ts'), flag === '--skip-worktree' ? /^S src\/app\.ts/ : /^h src\/app\.ts/);
		});
	}

	test('a sparse checkout: its absent files are not "deleted"; archive and restore keep the change made', async () => {
		git(repo, 'sparse-checkout', 'set', 'src');
		const { session, worktree } = await service.createSession({ repo, title: 'sparse' });
		fs.writeFileSync(path.join(worktree.path, 'src/app.ts'), 'export const sparse = 1;\n');
		assert.deepEqual((await service.risk(worktree.id)).unstaged, ['src/app.ts']);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'src/app.ts'), 'utf8'), 'export const sparse = 1;\n');
	});

	test('a sparse checkout: a file the agent writes outside the cone is kept by checkpoints, rewind, archive, restore and delete', async () => {
		fs.mkdirSync(path.join(repo, 'docs'));
		fs.writeFileSync(path.join(repo, 'docs/guide.md'), '# guide\n');
		git(repo, 'add', 'docs/guide.md');
		git(repo, 'commit', '-q', '-m', 'docs');
		git(repo, 'sparse-checkout', 'set', '--cone', 'src');
		const { session, worktree } = await service.createSession({ repo, title: 'outside the cone' });
		const wt = worktree.path;
		assert.ok(!fs.existsSync(path.join(wt, 'docs/guide.md')), 'the session inherits the cone');
		const turn1 = await service.checkpoint(wt, 'chat-sp/turn-1-before');
		fs.mkdirSync(path.join(wt, 'out'));
		fs.writeFileSync(path.join(wt, 'out/agent.txt'), 'written by the agent\n');
		const turn2 = await service.checkpoint(wt, 'chat-sp/turn-2-before');
		assert.equal(git(wt, 'show', `${turn2}:out/agent.txt`), 'written by the agent\n');
		assert.equal(git(wt, 'show', `${turn2}:docs/guide.md`), '# guide\n', 'an absent file of the cone is not "deleted"');
		fs.writeFileSync(path.join(wt, 'src/app.ts'), 'export const turn2 = 1;\n');
		await service.rewind(wt, turn2);
		assertFiles(wt, { 'src/app.ts': 'export {};\n', 'out/agent.txt': 'written by the agent\n' });
		await service.rewind(wt, turn1);
		assert.ok(!fs.existsSync(path.join(wt, 'out/agent.txt')), 'before turn 1 there was no such file');
		fs.mkdirSync(path.join(wt, 'out'), { recursive: true });
		fs.writeFileSync(path.join(wt, 'out/agent.txt'), 'written again\n');
		assert.deepEqual((await service.risk(worktree.id)).untracked, ['out/agent.txt']);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assertFiles(wt, { 'out/agent.txt': 'written again\n' });
		assert.ok(!fs.existsSync(path.join(wt, 'docs/guide.md')), 'still outside the cone');
		const deleted = await service.deleteSession(session.id);
		assert.equal(git(repo, 'show', `${deleted!.saved!.ref}:out/agent.txt`), 'written again\n');
	});

	test("a worktree's own edit to a copied .env file survives archive and restore; other ignored files are not kept", async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'own port' });
		assert.equal(fs.readFileSync(path.join(worktree.path, '.env.local'), 'utf8'), 'SECRET=1\n', 'copied in by the setup step');
		fs.writeFileSync(path.join(worktree.path, '.env.local'), 'SECRET=1\nPORT=3001\n');
		fs.mkdirSync(path.join(worktree.path, 'node_modules'));
		fs.writeFileSync(path.join(worktree.path, 'node_modules', 'big.js'), 'build output\n');
		const risk = await service.risk(worktree.id);
		assert.equal(risk.ignoredCount, 1, 'node_modules/ is not kept; .env.local is');
		await service.archiveSession(session.id);
		fs.writeFileSync(path.join(repo, '.env.local'), 'SECRET=2\n'); // the main checkout's copy changes meanwhile
		await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(worktree.path, '.env.local'), 'utf8'), 'SECRET=1\nPORT=3001\n');
		assert.ok(!fs.existsSync(path.join(worktree.path, 'node_modules')));
		assert.equal(git(worktree.path, 'status', '--porcelain'), '', '.env.local is back as an ignored file, not staged or tracked');
	});

	test('line endings and clean filters: archive and restore give back the bytes that were on disk, not what git would commit', async () => {
		fs.writeFileSync(path.join(repo, '.gitattributes'), '* text=auto\n*.cfg filter=strip\n');
		git(repo, 'config', 'filter.strip.clean', 'sed s/hunter2/redacted/');
		git(repo, 'add', '.gitattributes');
		git(repo, 'commit', '-q', '-m', 'attributes');
		const { session, worktree } = await service.createSession({ repo, title: 'line endings' });
		const files: Record<string, string> = {
			'README.md': '# edited on Windows\r\nsecond line\r\n',
			'notes-crlf.txt': 'untracked\r\nwith CRLF\r\n',
			'app.cfg': 'SECRET=hunter2\n',
			'plain.txt': 'nothing to convert\n',
		};
		writeFiles(worktree.path, files);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assertFiles(worktree.path, files);
	});

	test('an edit git cannot see (a clean filter or line endings make it equal HEAD) counts as a change and comes back from a save', async () => {
		fs.writeFileSync(path.join(repo, '.gitattributes'), '* text=auto\n*.cfg filter=strip\n*.bat text eol=crlf\n');
		fs.writeFileSync(path.join(repo, 'app.cfg'), 'SECRET=redacted\n');
		fs.writeFileSync(path.join(repo, 'run.bat'), 'echo one\r\necho two\r\n');
		fs.writeFileSync(path.join(repo, 'mixed.bat'), 'a\r\nb\r\n');
		fs.writeFileSync(path.join(repo, 'untouched.bat'), 'x\r\n');
		fs.writeFileSync(path.join(repo, '"q".txt'), 'a name git would read as quoted\n');
		git(repo, 'config', 'filter.strip.clean', 'sed s/hunter2/redacted/');
		git(repo, 'add', '.');
		git(repo, 'commit', '-q', '-m', 'attributes');
		const { session, worktree } = await service.createSession({ repo, title: 'invisible edits' });
		const files: Record<string, string> = {
			'app.cfg': 'SECRET=hunter2\n', // what the clean filter hides: committed, it would read as HEAD
			'README.md': '# r\r\n', // only the line endings changed: text=auto commits it as HEAD
			'run.bat': 'echo one\necho two\n', // checked out with CRLF, saved as LF: the blob is HEAD's
			'mixed.bat': 'a\r\nb\nc\r\n', // a checkout would turn the lone LF into CRLF
		};
		writeFiles(worktree.path, files);
		git(worktree.path, 'status', '--porcelain'); // git refreshes its index: the invisible edits now look clean
		const risk = await service.risk(worktree.id);
		assert.deepEqual([...risk.unstaged, ...risk.invisible].sort(), ['README.md', 'app.cfg', 'mixed.bat', 'run.bat']);
		assert.ok(risk.invisible.includes('app.cfg'), 'the edit git status does not show is named as such');
		assert.match(risk.summary, /files? whose bytes differ from what git would check out/);
		assert.equal(risk.clean, false);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assertFiles(worktree.path, files);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'untouched.bat'), 'utf8'), 'x\r\n', 'an untouched file comes back as a checkout writes it');
	});

	test('core.autocrlf=true (as on Windows): a fresh session is clean; an edit to LF only, which git cannot see, is a change and comes back', async () => {
		fs.writeFileSync(path.join(repo, 'lines.txt'), 'one\ntwo\n');
		fs.writeFileSync(path.join(repo, 'has-crlf.txt'), 'committed\r\nwith CRLF\r\n'); // auto rules leave it alone
		fs.writeFileSync(path.join(repo, 'data.bin'), Buffer.from([0, 1, 2, 10, 3, 10])); // binary: left alone
		git(repo, 'add', '.');
		git(repo, 'commit', '-q', '-m', 'files');
		git(repo, 'config', 'core.autocrlf', 'true');
		const { session, worktree } = await service.createSession({ repo, title: 'windows line endings' });
		assert.equal(fs.readFileSync(path.join(worktree.path, 'lines.txt'), 'utf8'), 'one\r\ntwo\r\n', 'checked out with CRLF');
		const fresh = await service.risk(worktree.id);
		assert.deepEqual([fresh.unstaged, fresh.invisible, fresh.clean], [[], [], true], 'nothing to report in a fresh session');
		fs.writeFileSync(path.join(worktree.path, 'lines.txt'), 'one\ntwo\n'); // an editor saving with LF
		git(worktree.path, 'status', '--porcelain');
		assert.deepEqual((await service.risk(worktree.id)).invisible, ['lines.txt']);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'lines.txt'), 'utf8'), 'one\ntwo\n');
		assert.equal(fs.readFileSync(path.join(worktree.path, 'has-crlf.txt'), 'utf8'), 'committed\r\nwith CRLF\r\n');
		assert.deepEqual([...fs.readFileSync(path.join(worktree.path, 'data.bin'))], [0, 1, 2, 10, 3, 10]);
	});

	for (const [autocrlf, written, converted] of [['true', 'agent\nwrote LF\n', 'LF would be replaced by CRLF'], ['input', 'agent\r\nwrote CRLF\r\n', 'CRLF would be replaced by LF']] as const) {
		test(`core.safecrlf=true with core.autocrlf=${autocrlf}: a file an agent writes that git would convert ("${converted}") is checkpointed, rewound, saved and restored`, async () => {
			git(repo, 'config', 'core.autocrlf', autocrlf);
			git(repo, 'config', 'core.safecrlf', 'true');
			const { session, worktree } = await service.createSession({ repo, title: `safecrlf ${autocrlf}` });
			const wt = worktree.path;
			const ref = await service.checkpoint(wt, 'chat/turn1');
			fs.writeFileSync(path.join(wt, 'agent.txt'), written);
			const after = await service.checkpoint(wt, 'chat/turn2');
			assert.deepEqual(await service.changesSinceCheckpoint(wt, ref), [{ path: 'agent.txt', kind: 'add' }]);
			await service.rewind(wt, ref);
			assert.ok(!fs.existsSync(path.join(wt, 'agent.txt')), 'rewound to before the file');
			await service.rewind(wt, after);
			assert.ok(fs.existsSync(path.join(wt, 'agent.txt')), 'and forward again');
			fs.writeFileSync(path.join(wt, 'agent.txt'), written);
			const before = snapshotFiles(wt);
			await service.archiveSession(session.id);
			assert.ok(!fs.existsSync(wt));
			await service.restoreSession(session.id);
			assert.deepEqual(snapshotFiles(wt), before, 'the bytes the agent wrote come back');
		});
	}

	test('executable bits survive archive and restore when core.fileMode is false on a file system that keeps them', async () => {
		git(repo, 'config', 'core.fileMode', 'false');
		const { session, worktree } = await service.createSession({ repo, title: 'modes' });
		fs.writeFileSync(path.join(worktree.path, 'run.sh'), '#!/bin/sh\necho hi\n', { mode: 0o755 });
		fs.chmodSync(path.join(worktree.path, 'README.md'), 0o755);
		await service.archiveSession(session.id);
		await service.restoreSession(session.id);
		assert.equal(fs.statSync(path.join(worktree.path, 'run.sh')).mode & 0o111, 0o111, 'an untracked script stays executable');
		assert.equal(fs.statSync(path.join(worktree.path, 'README.md')).mode & 0o111, 0o111, 'a tracked file made executable stays so');
	});

	test('a worktrees folder reached through a symlink: sessions stay live across starts, archive and restore work', async () => {
		fs.mkdirSync(path.join(dir, 'real-root'));
		fs.symlinkSync(path.join(dir, 'real-root'), path.join(dir, 'link-root'));
		const linked = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'link-root'), env });
		const { session, worktree } = await linked.createSession({ repo, title: 'through a link' });
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'work\n');
		// A row written before paths were made real (the symlinked spelling), as a store from earlier versions has.
		const { worktree: older } = await linked.createSession({ repo, title: 'older row' });
		const olderLinkPath = path.join(dir, 'link-root', path.basename(older.path));
		store.write((tx) => tx.run('UPDATE worktrees SET path = ? WHERE id = ?', [olderLinkPath, older.id]));
		const r = await linked.reconcile(repo);
		assert.deepEqual(r.missing, [], 'git lists the real path; the session is not missing');
		assert.deepEqual(r.adopted, [], 'and not adopted a second time');
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.state, 'ready');
		assert.equal(new WorktreesRepo(store).get(older.id)!.state, 'ready');
		await linked.archiveSession(session.id);
		assert.ok(!fs.existsSync(worktree.path));
		await linked.restoreSession(session.id);
		assert.equal(fs.readFileSync(path.join(worktree.path, 'work.txt'), 'utf8'), 'work\n');
		await linked.archiveSession(older.session_id!);
		assert.ok(!fs.existsSync(older.path), 'the older row, spelled through the link, is removed too');
	});

	test('a window opened on a session worktree never adopts the worktrees another state folder owns', async () => {
		const { worktree } = await service.createSession({ repo, title: 'owned elsewhere' });
		const admin = git(worktree.path, 'rev-parse', '--absolute-git-dir').trim();
		assert.equal(JSON.parse(fs.readFileSync(path.join(admin, 'agent-tabs-owner.json'), 'utf8')).worktreeId, worktree.id, 'the mark is in the git admin folder, where every process sees it');
		const stray = path.join(dir, 'worktrees', 'stray');
		git(repo, 'worktree', 'add', '-q', '-b', 'agent-tabs/stray', stray);
		// The other window: its own state folder, opened on the session's worktree.
		const otherStore = await openStore(path.join(dir, 'other-window-state'));
		try {
			const other = new WorktreeService(otherStore, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env });
			const r = await other.reconcile(worktree.path);
			assert.deepEqual(r.adopted, [stray], 'only the unmarked worktree is adopted');
			assert.equal(new WorktreesRepo(otherStore).byPath(worktree.path), undefined);
		} finally {
			await otherStore.close();
		}
		// Archive and restore keep the mark (git drops the admin folder with the worktree).
		await service.archiveSession(worktree.session_id!);
		await service.restoreSession(worktree.session_id!);
		assert.equal(JSON.parse(fs.readFileSync(path.join(git(worktree.path, 'rev-parse', '--absolute-git-dir').trim(), 'agent-tabs-owner.json'), 'utf8')).sessionId, worktree.session_id);
	});

	test('removal refuses while an agent runs there in another process, and goes ahead once that process is gone', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'leased' });
		fs.writeFileSync(path.join(worktree.path, 'work.txt'), 'unsaved\n');
		const holder = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'leaseHolder.js'), worktree.path], { stdio: ['ignore', 'pipe', 'inherit'] });
		try {
			await new Promise<void>((resolve, reject) => {
				holder.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
				holder.once('exit', (code) => reject(new Error(`the lease holder exited with ${code}`)));
			});
			const risk = await service.risk(worktree.id);
			assert.deepEqual(risk.runningAgents, [`Scripted in chat other-window (the lease-holder test process, pid ${holder.pid})`]);
			await assert.rejects(service.archiveSession(session.id), /Agents are still running in .*Scripted in chat other-window.*nothing was removed/);
			assert.ok(fs.existsSync(path.join(worktree.path, 'work.txt')), 'nothing was removed');
		} finally {
			holder.kill('SIGKILL');
			await new Promise((r) => (holder.exitCode !== null || holder.signalCode !== null ? r(undefined) : holder.once('exit', r)));
		}
		const result = await service.archiveSession(session.id);
		assert.ok(result?.saved, 'the lease of a killed process is stale: the removal saves and goes ahead');
		assert.equal(fs.existsSync(worktree.path), false);
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

	test('with status.showUntrackedFiles=no in your git config, a new file still counts: in the main checkout (changes to carry) and in the session (merge refused until it is committed)', async () => {
		fs.appendFileSync(path.join(dir, '.gitconfig'), '[status]\n\tshowUntrackedFiles = no\n');
		fs.writeFileSync(path.join(repo, 'draft.txt'), 'only untracked\n');
		assert.equal(await service.hasUncommittedChanges(repo), true);
		fs.rmSync(path.join(repo, 'draft.txt'));
		const { session, worktree } = await service.createSession({ repo, title: 'new file only' });
		fs.writeFileSync(path.join(worktree.path, 'feature.ts'), 'export const feature = 1;\n');
		git(worktree.path, 'add', '-A');
		git(worktree.path, 'commit', '-q', '-m', 'feature');
		fs.writeFileSync(path.join(worktree.path, 'forgotten.ts'), 'not committed\n');
		await assert.rejects(service.mergeSession(session.id, 'merge'), /session's worktree has uncommitted work/);
		assert.equal(git(repo, 'log', '-1', '--format=%s').trim(), 'initial', 'nothing was merged');
	});

	test('a merge or squash keeps a session title that starts with # (an issue number) as the subject, with commit.cleanup=strip in your git config', async () => {
		fs.appendFileSync(path.join(dir, '.gitconfig'), '[commit]\n\tcleanup = strip\n');
		for (const strategy of ['squash', 'merge'] as const) {
			const { session, worktree } = await service.createSession({ repo, title: `#42 fix the login (${strategy})` });
			fs.writeFileSync(path.join(worktree.path, `${strategy}.ts`), 'export {};\n');
			git(worktree.path, 'add', '-A');
			git(worktree.path, 'commit', '-q', '-m', 'feature');
			await service.mergeSession(session.id, strategy);
			assert.match(git(repo, 'log', '-1', '--format=%s').trim(), strategy === 'squash' ? /^#42 fix the login \(squash\)$/ : /^Merge agent-tabs\/.*: #42 fix the login \(merge\)$/);
		}
	});

	test('a squash merge works whatever the user set for fast-forwards (merge.ff false or only, branch.main.mergeOptions)', async () => {
		for (const [key, value] of [['merge.ff', 'false'], ['merge.ff', 'only'], ['branch.main.mergeOptions', '--no-ff']] as const) {
			git(repo, 'config', key, value);
			const { session, worktree } = await service.createSession({ repo, title: `squash with ${key} ${value}` });
			fs.writeFileSync(path.join(worktree.path, `${value}.ts`), `export const ff = '${value}';\n`);
			git(worktree.path, 'add', '-A');
			git(worktree.path, 'commit', '-q', '-m', 'feature');
			// Main moved on, so the branch cannot be fast-forwarded to.
			fs.writeFileSync(path.join(repo, `main-${value}.txt`), 'main\n');
			git(repo, 'add', '-A');
			git(repo, 'commit', '-q', '-m', 'main moved');
			const before = git(repo, 'rev-parse', 'HEAD').trim();
			await service.mergeSession(session.id, 'squash');
			assert.equal(fs.readFileSync(path.join(repo, `${value}.ts`), 'utf8'), `export const ff = '${value}';\n`, `${key}=${value}`);
			assert.equal(git(repo, 'rev-parse', 'HEAD^').trim(), before, 'one squash commit on top of main, no merge commit');
			assert.equal(git(repo, 'rev-list', '--count', '--merges', `${before}..HEAD`).trim(), '0');
			git(repo, 'config', '--unset', key);
		}
	});

	test('a session branch renamed, swapped or deleted by hand, and a base branch deleted: merge and risk say what happened in plain words', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'renamed' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'feature.ts'), 'export const feature = 1;\n');
		git(wt, 'add', '-A');
		git(wt, 'commit', '-q', '-m', 'feature');
		const head = git(repo, 'rev-parse', 'HEAD').trim();

		// Another branch checked out in the session's worktree: merging (or rebasing) it instead is refused.
		git(wt, 'checkout', '-q', '-b', 'side');
		await assert.rejects(service.mergeSession(session.id, 'rebase'), /worktree .* has side checked out, not its branch agent-tabs\/renamed; check out agent-tabs\/renamed there first\. Nothing was changed\./);
		git(wt, 'checkout', '-q', '--detach');
		await assert.rejects(service.mergeSession(session.id, 'merge'), /is on a detached HEAD, not on its branch agent-tabs\/renamed/);
		assert.equal(git(repo, 'rev-parse', 'HEAD').trim(), head);
		// Another branch checked out and the session's deleted: not taken for a rename.
		git(wt, 'checkout', '-q', 'side');
		git(repo, 'branch', '-q', '-m', 'agent-tabs/renamed', 'parked');
		await assert.rejects(service.mergeSession(session.id, 'merge'), /has side checked out, not its branch agent-tabs\/renamed; that branch no longer exists; if side holds the session's work, give it the session's name there \("git branch -m side agent-tabs\/renamed"\)\. Nothing was changed\./);
		assert.equal(git(repo, 'rev-parse', 'HEAD').trim(), head);
		git(repo, 'branch', '-q', '-m', 'parked', 'agent-tabs/renamed');
		git(wt, 'checkout', '-q', 'agent-tabs/renamed');
		git(wt, 'branch', '-q', '-D', 'side');

		// Renamed where it is checked out: the session follows the new name.
		git(wt, 'branch', '-m', 'my-feature');
		const merged = await service.mergeSession(session.id, 'merge');
		assert.match(merged.message, /^my-feature is in main/);
		assert.equal(new WorktreesRepo(store).get(worktree.id)!.branch, 'my-feature');

		// The base branch deleted: risk counts commits no other branch has, and merge says why it cannot.
		fs.writeFileSync(path.join(wt, 'more.ts'), 'export const more = 2;\n');
		git(wt, 'add', '-A');
		git(wt, 'commit', '-q', '-m', 'more');
		git(repo, 'checkout', '-q', '-b', 'trunk');
		git(repo, 'branch', '-q', '-D', 'main');
		const risk = await service.risk(worktree.id);
		assert.equal(risk.unmerged.length, 1, 'only the commit no other branch has');
		assert.match(risk.summary, /1 commit not merged into main \(which no longer exists\) nor on any other branch/);
		await assert.rejects(service.mergeSession(session.id, 'merge'), /The session's base branch main no longer exists \(deleted or renamed\).*Nothing was merged\./);
		git(repo, 'branch', '-q', 'main', 'trunk');
		git(repo, 'checkout', '-q', 'main');

		// The branch deleted after the session was archived: nothing to merge, and where its work is.
		await service.archiveSession(session.id);
		git(repo, 'branch', '-q', '-D', 'my-feature');
		await assert.rejects(service.mergeSession(session.id, 'merge'), /The session's branch my-feature no longer exists \(deleted or renamed\), so there is nothing to merge\. Its folder's work is saved in refs\/agent-tabs\/saved\/.*Nothing was changed\./);
	});

	test('merging an archived session whose save holds uncommitted work is refused until that work is committed; a clean archived one merges', async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'archived with wip' });
		fs.writeFileSync(path.join(worktree.path, 'feature.ts'), 'export const feature = 1;\n');
		git(worktree.path, 'add', '-A');
		git(worktree.path, 'commit', '-q', '-m', 'feature');
		fs.writeFileSync(path.join(worktree.path, 'wip.ts'), 'half done\n');
		await service.archiveSession(session.id);
		const head = git(repo, 'rev-parse', 'HEAD').trim();
		await assert.rejects(service.mergeSession(session.id, 'merge'), /archived with uncommitted work \(saved in refs\/agent-tabs\/saved\/.*restore the session and commit that work first.*Nothing was merged/);
		assert.equal(git(repo, 'rev-parse', 'HEAD').trim(), head);
		await service.restoreSession(session.id);
		git(worktree.path, 'add', '-A');
		git(worktree.path, 'commit', '-q', '-m', 'wip done');
		await service.archiveSession(session.id);
		await service.mergeSession(session.id, 'merge');
		assert.equal(fs.readFileSync(path.join(repo, 'wip.ts'), 'utf8'), 'half done\n');
	});

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

	test("an untracked file of the main checkout in the merge's way: refused in git's own words, and neither main nor the session's branch moved", async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'in the way' });
		fs.writeFileSync(path.join(worktree.path, 'feat.txt'), 'from the session\n');
		git(worktree.path, 'add', '-A');
		git(worktree.path, 'commit', '-q', '-m', 'feat');
		// Main moved on, so a rebase has work to do before its fast-forward.
		fs.writeFileSync(path.join(repo, 'other.ts'), 'other\n');
		git(repo, 'add', '-A');
		git(repo, 'commit', '-q', '-m', 'other');
		fs.writeFileSync(path.join(repo, 'feat.txt'), 'mine, untracked\n');
		const mainHead = git(repo, 'rev-parse', 'HEAD').trim();
		const branchTip = git(repo, 'rev-parse', 'refs/heads/agent-tabs/in-the-way').trim();
		for (const strategy of ['merge', 'squash', 'rebase'] as const) {
			await assert.rejects(service.mergeSession(session.id, strategy), (e: Error) => /untracked working tree files would be overwritten/.test(e.message) && /Nothing was changed/.test(e.message), strategy);
			assert.equal(git(repo, 'rev-parse', 'HEAD').trim(), mainHead, `${strategy}: main did not move`);
			assert.equal(git(repo, 'rev-parse', 'refs/heads/agent-tabs/in-the-way').trim(), branchTip, `${strategy}: the session's branch did not move`);
			assert.equal(fs.readFileSync(path.join(repo, 'feat.txt'), 'utf8'), 'mine, untracked\n');
			assert.equal(git(worktree.path, 'status', '--porcelain').trim(), '', `${strategy}: the session's worktree is as it was`);
		}
	});

	test('carrying uncommitted changes that conflict with the base names the files, creates nothing and leaves the changes', async () => {
		git(repo, 'checkout', '-q', '-b', 'other');
		fs.writeFileSync(path.join(repo, 'README.md'), 'on other\n');
		git(repo, 'commit', '-q', '-am', 'other');
		git(repo, 'checkout', '-q', 'main');
		fs.writeFileSync(path.join(repo, 'README.md'), 'my uncommitted edit\n');
		await assert.rejects(service.createSession({ repo, title: 'carry', baseRef: 'other', carryChanges: true }), (e: Error & { code?: string }) => e.code === 'worktree/carry' && /conflict with the base in README\.md/.test(e.message));
		assert.equal(fs.readFileSync(path.join(repo, 'README.md'), 'utf8'), 'my uncommitted edit\n');
		assert.deepEqual(new SessionsRepo(store).list(), []);
		assert.equal(git(repo, 'branch', '--list', 'agent-tabs/*').trim(), '');
	});

	test('carrying changes from a main checkout in the middle of a merge with conflicts names the files, creates nothing and leaves the merge as it was', async () => {
		git(repo, 'checkout', '-q', '-b', 'other');
		fs.writeFileSync(path.join(repo, 'README.md'), 'on other\n');
		git(repo, 'commit', '-q', '-am', 'other');
		git(repo, 'checkout', '-q', 'main');
		fs.writeFileSync(path.join(repo, 'README.md'), 'on main\n');
		git(repo, 'commit', '-q', '-am', 'main');
		assert.equal(spawnSync('git', ['merge', '-q', 'other'], { cwd: repo, env }).status, 1, 'the merge stops on a conflict');
		const before = fullState(repo);
		await assert.rejects(service.createSession({ repo, title: 'carry mid-merge', carryChanges: true }), (e: Error & { code?: string }) => e.code === 'worktree/carry' && /README\.md has unresolved conflicts/.test(e.message) && !/unmerged \(/.test(e.message));
		assert.deepEqual(fullState(repo), before, 'the merge in progress is as it was');
		assert.ok(fs.existsSync(path.join(repo, '.git', 'MERGE_HEAD')));
		assert.deepEqual(new SessionsRepo(store).list(), []);
		assert.equal(git(repo, 'branch', '--list', 'agent-tabs/*').trim(), '');
	});

	test("a session worktree put on a branch with no commits yet (an agent's git checkout --orphan): checkpoint, save and archive say so in plain words and remove nothing", async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'orphan' });
		const wt = worktree.path;
		git(wt, 'checkout', '-q', '--orphan', 'gh-pages');
		fs.writeFileSync(path.join(wt, 'index.html'), '<h1>site</h1>\n');
		const before = snapshotFiles(wt);
		const plain = (what: RegExp) => (e: Error & { code?: string }): boolean => /gh-pages, a branch with no commits yet/.test(e.message) && what.test(e.message) && !/ambiguous argument/.test(e.message);
		await assert.rejects(service.checkpoint(wt, 'chat/turn'), plain(/No checkpoint was taken/));
		await assert.rejects(service.save(worktree.id, 'test'), plain(/Nothing was saved/));
		await assert.rejects(service.archiveSession(session.id), plain(/so it was not removed/));
		assert.deepEqual(snapshotFiles(wt), before, 'the folder is as it was');
		assert.equal(git(wt, 'symbolic-ref', 'HEAD').trim(), 'refs/heads/gh-pages');
	});

	test('a pull request without the GitHub CLI says what to do', async () => {
		const { session } = await service.createSession({ repo, title: 'pr' });
		await assert.rejects(service.createPullRequest(session.id, undefined), /needs the GitHub CLI \(gh\)/);
	});

	test('a pull request goes into the base branch as the remote names it: main for a session based on origin/main, the default branch for a tag', async () => {
		// GitHub is the edge these machines cannot reach: a gh that records what it was asked stands in for it.
		const ghArgs = path.join(dir, 'gh-args');
		const gh = path.join(dir, 'gh');
		fs.writeFileSync(gh, `#!/bin/sh\nprintf '%s\\n' "$@" > '${ghArgs}'\necho https://github.invalid/pull/1\n`, { mode: 0o755 });
		const remote = path.join(dir, 'remote.git');
		git(dir, 'init', '-q', '--bare', remote);
		git(repo, 'remote', 'add', 'origin', remote);
		git(repo, 'push', '-q', 'origin', 'main');
		git(repo, 'fetch', '-q', 'origin');
		git(repo, 'tag', 'v1');
		const baseOf = async (baseRef: string): Promise<string[]> => {
			const { session } = await service.createSession({ repo, title: `pr from ${baseRef}`, baseRef });
			assert.equal(await service.createPullRequest(session.id, gh), 'https://github.invalid/pull/1');
			const args = fs.readFileSync(ghArgs, 'utf8').split('\n');
			const at = args.indexOf('--base');
			return at >= 0 ? [args[at + 1]!] : [];
		};
		assert.deepEqual(await baseOf('origin/main'), ['main']);
		assert.deepEqual(await baseOf('main'), ['main']);
		assert.deepEqual(await baseOf('v1'), [], 'no branch to name: gh takes the default');
	});

	test('a pull request pushes to the remote your git would push to: the only one when it is not called origin, remote.pushDefault (your fork) when set', async () => {
		const gh = path.join(dir, 'gh');
		fs.writeFileSync(gh, '#!/bin/sh\necho https://github.invalid/pull/1\n', { mode: 0o755 });
		const bare = (name: string): string => {
			const remote = path.join(dir, `${name}.git`);
			git(dir, 'init', '-q', '--bare', remote);
			git(repo, 'remote', 'add', name, remote);
			return remote;
		};
		const has = (remote: string, branch: string): boolean => spawnSync('git', ['rev-parse', '--verify', '--quiet', `refs/heads/${branch}`], { cwd: remote, env }).status === 0;
		const upstream = bare('upstream');
		git(repo, 'push', '-q', 'upstream', 'main');
		const { session, worktree } = await service.createSession({ repo, title: 'only upstream' });
		assert.equal(await service.createPullRequest(session.id, gh), 'https://github.invalid/pull/1');
		assert.ok(has(upstream, worktree.branch!), 'pushed to the only remote');
		const origin = bare('origin');
		const fork = bare('fork');
		git(repo, 'config', 'remote.pushDefault', 'fork');
		const { session: second, worktree: secondWt } = await service.createSession({ repo, title: 'to my fork' });
		await service.createPullRequest(second.id, gh);
		assert.ok(has(fork, secondWt.branch!), 'pushed to remote.pushDefault');
		assert.ok(!has(origin, secondWt.branch!), 'not to origin');
		git(repo, 'config', '--unset', 'remote.pushDefault');
		git(repo, 'remote', 'remove', 'origin');
		const { session: third } = await service.createSession({ repo, title: 'which remote' });
		await assert.rejects(service.createPullRequest(third.id, gh), (e: Error) => /no remote called origin/.test(e.message) && /fork, upstream/.test(e.message) && /git config remote\.pushDefault/.test(e.message));
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

	test("your reference-transaction and post-index-change hooks are not run for Agent Tabs' own refs and temporary indexes: one that fails or hangs stops no checkpoint, rewind, save or restore", async () => {
		const { session, worktree } = await service.createSession({ repo, title: 'with hooks' });
		const wt = worktree.path;
		const ran = path.join(dir, 'hooks-ran.txt');
		// A hook that fails (git-branchless's with git-branchless missing from the PATH), and one that hangs on a
		// temporary index (git passes GIT_INDEX_FILE on to hooks): each writes what it was run for.
		fs.writeFileSync(path.join(repo, '.git', 'hooks', 'reference-transaction'), `#!/bin/sh\necho "reference-transaction $1" >> '${ran}'\nexit 1\n`, { mode: 0o755 });
		fs.writeFileSync(path.join(repo, '.git', 'hooks', 'post-index-change'), `#!/bin/sh\n[ -n "$GIT_INDEX_FILE" ] && echo "post-index-change of $GIT_INDEX_FILE" >> '${ran}' && sleep 30\nexit 0\n`, { mode: 0o755 });
		assert.match(spawnSync('git', ['branch', 'mine'], { cwd: wt, env, encoding: 'utf8' }).stderr, /ref updates aborted by hook/, 'the hooks are there for your own refs');
		fs.writeFileSync(ran, '');
		const defaultMs = gitTimeouts.defaultMs;
		gitTimeouts.defaultMs = 10_000;
		try {
			fs.writeFileSync(path.join(wt, 'a.txt'), 'before\n');
			const started = Date.now();
			const ref = await service.checkpoint(wt, 'chat-h/turn-1-before');
			assert.ok(Date.now() - started < 5000, 'the checkpoint waited for no hook');
			fs.writeFileSync(path.join(wt, 'a.txt'), 'after\n');
			await service.rewind(wt, ref);
			assert.equal(fs.readFileSync(path.join(wt, 'a.txt'), 'utf8'), 'before\n');
			const before = snapshotFiles(wt);
			assert.ok((await service.archiveSession(session.id))!.saved);
			assert.deepEqual(snapshotFiles((await service.restoreSession(session.id)).path), before);
		} finally {
			gitTimeouts.defaultMs = defaultMs;
		}
		assert.equal(fs.readFileSync(ran, 'utf8'), '', 'neither hook ran for Agent Tabs\' own refs or a temporary index');
	});

	test('checkpoints: rewind of an edit in the middle of a file works with diff.context = 0 in your git config or GIT_DIFF_OPTS=--unified=0 in the environment', async () => {
		fs.appendFileSync(path.join(dir, '.gitconfig'), '[diff]\n\tcontext = 0\n');
		const withDiffOpts = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env: { ...env, GIT_DIFF_OPTS: '--unified=0' } });
		for (const [which, svc] of [['config', service], ['environment', withDiffOpts]] as const) {
			const { worktree } = await svc.createSession({ repo, title: `context from ${which}` });
			const wt = worktree.path;
			fs.writeFileSync(path.join(wt, 'a.txt'), 'one\ntwo\nthree\nfour\nfive\n');
			const ref = await svc.checkpoint(wt, `chat-${which}/turn-1-before`);
			fs.writeFileSync(path.join(wt, 'a.txt'), 'one\ntwo\nTHREE\nfour\nfive, changed\n');
			await svc.rewind(wt, ref);
			assert.equal(fs.readFileSync(path.join(wt, 'a.txt'), 'utf8'), 'one\ntwo\nthree\nfour\nfive\n', which);
		}
	});

	test("risk, the picture of a worktree's changed files taken before and after each turn, and the checks for uncommitted work never write its index, whose lock an agent's or your own git may need at that moment", async () => {
		const { worktree } = await service.createSession({ repo, title: 'read only' });
		const wt = worktree.path;
		const wrote = path.join(dir, 'index-written.txt');
		fs.writeFileSync(path.join(repo, '.git', 'hooks', 'post-index-change'), `#!/bin/sh\nps -o args= $PPID >> '${wrote}'\n`, { mode: 0o755 });
		// Stat data git must refresh (same bytes, new times): a git that may write the index does so now.
		const later = new Date(Date.now() + 5000);
		for (const name of ['README.md', 'src/app.ts']) {
			fs.utimesSync(path.join(wt, name), later, later);
		}
		fs.writeFileSync(path.join(wt, 'new.txt'), 'new\n');
		await takeDirtySnapshot(wt, new Git(wt, env));
		assert.equal(await service.hasUncommittedChanges(wt), true);
		const risk = await service.risk(worktree.id);
		assert.deepEqual([risk.unstaged, risk.untracked], [[], ['new.txt']], 'files with new times and the same bytes are not changes');
		assert.equal(fs.existsSync(wrote) ? fs.readFileSync(wrote, 'utf8') : '', '', 'no git of Agent Tabs wrote the index');
		git(wt, 'status', '--porcelain');
		assert.match(fs.readFileSync(wrote, 'utf8'), /git status/, 'a git of your own would have written it');
	});

	test('checkpoints: rewind puts back what was staged too: an agent\'s `git add` is undone, the user\'s own staging before the turn stays', async () => {
		const { worktree } = await service.createSession({ repo, title: 'rewind staging' });
		const wt = worktree.path;
		fs.writeFileSync(path.join(wt, 'mine.txt'), 'staged by me\n');
		git(wt, 'add', 'mine.txt');
		fs.writeFileSync(path.join(wt, 'mine.txt'), 'staged by me\nand more, not staged\n');
		const ref = await service.checkpoint(wt, 'chat-x/turn-1-before');
		const statusBefore = git(wt, 'status', '--porcelain');
		// The turn: the agent edits and stages a tracked file, stages a new one, and restages mine.txt.
		fs.writeFileSync(path.join(wt, 'README.md'), 'agent edit\n');
		fs.writeFileSync(path.join(wt, 'new *file.txt'), 'agent file\n');
		fs.writeFileSync(path.join(wt, 'mine.txt'), 'agent rewrote it\n');
		git(wt, 'add', '-A');
		await service.rewind(wt, ref);
		assert.equal(fs.readFileSync(path.join(wt, 'README.md'), 'utf8'), '# r\n');
		assert.equal(git(wt, 'status', '--porcelain'), statusBefore, 'the staging is as it was before the turn');
		assert.equal(git(wt, 'show', ':mine.txt'), 'staged by me\n', 'my staged version is back in the index');
		assert.equal(git(wt, 'diff', '--cached', '--name-only'), 'mine.txt\n', 'nothing of the agent is staged');
	});

	test('checkpoints: a file the agent renamed (git mv) is unstaged by the rewind under its new name too, and both names are reported', async () => {
		const { worktree } = await service.createSession({ repo, title: 'rewind rename' });
		const wt = worktree.path;
		const ref = await service.checkpoint(wt, 'chat-x/turn-1-before');
		const statusBefore = git(wt, 'status', '--porcelain');
		git(wt, 'mv', 'src/app.ts', 'src/main.ts');
		const r = await service.rewind(wt, ref);
		assert.deepEqual([...r.files].sort(), ['src/app.ts', 'src/main.ts']);
		assert.ok(!fs.existsSync(path.join(wt, 'src', 'main.ts')));
		assert.equal(git(wt, 'status', '--porcelain'), statusBefore, 'nothing of the rename is staged: a commit would not bring src/main.ts back');
	});

	test('checkpoints: a rewind whose staging cannot be put back (a git holds the index lock) still puts the files back and says so in the log', async () => {
		const logger = new MemoryLogger();
		const withLog = new WorktreeService(store, logger, { root: path.join(dir, 'worktrees'), env });
		const { worktree } = await withLog.createSession({ repo, title: 'rewind locked' });
		const wt = worktree.path;
		const ref = await withLog.checkpoint(wt, 'chat-x/turn-1-before');
		fs.writeFileSync(path.join(wt, 'README.md'), 'agent edit\n');
		git(wt, 'add', 'README.md');
		const lock = path.resolve(wt, git(wt, 'rev-parse', '--git-path', 'index.lock').trim());
		fs.writeFileSync(lock, '');
		try {
			const r = await withLog.rewind(wt, ref);
			assert.deepEqual(r.files, ['README.md']);
			assert.equal(fs.readFileSync(path.join(wt, 'README.md'), 'utf8'), '# r\n', 'the files are back');
			assert.ok(logger.lines.some((l) => /the files are back, their staging is not/.test(l)), logger.lines.join('\n'));
		} finally {
			fs.rmSync(lock, { force: true });
		}
	});

	test('checkpoints: rewind refuses while an agent works in the worktree in another process, and goes ahead once it is gone', async () => {
		const { worktree } = await service.createSession({ repo, title: 'rewind leased' });
		const wt = worktree.path;
		const ref = await service.checkpoint(wt, 'chat-x/turn-1-before');
		fs.writeFileSync(path.join(wt, 'agent.txt'), 'being written\n');
		const holder = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'leaseHolder.js'), wt], { stdio: ['ignore', 'pipe', 'inherit'] });
		try {
			await new Promise<void>((resolve, reject) => {
				holder.stdout!.on('data', (d) => String(d).includes('ready') && resolve());
				holder.once('exit', (code) => reject(new Error(`the lease holder exited with ${code}`)));
			});
			await assert.rejects(service.rewind(wt, ref), (e: Error & { code?: string }) => e.code === 'worktree/busy' && /Scripted in chat other-window/.test(e.message));
			assert.equal(fs.readFileSync(path.join(wt, 'agent.txt'), 'utf8'), 'being written\n', 'nothing was put back under the agent');
		} finally {
			holder.kill('SIGKILL');
			await new Promise((r) => (holder.exitCode !== null || holder.signalCode !== null ? r(undefined) : holder.once('exit', r)));
		}
		await service.rewind(wt, ref);
		assert.ok(!fs.existsSync(path.join(wt, 'agent.txt')), 'the lease of a killed process is stale: the rewind goes ahead');
	});

	test('checkpoints: rewind restores the exact bytes of non-UTF-8 text and binary files', async () => {
		const { worktree } = await service.createSession({ repo, title: 'rewind bytes' });
		const wt = worktree.path;
		const latin1 = Buffer.from('caf\xe9\nna\xefve\n', 'latin1');
		const binary = Buffer.from([0, 1, 2, 0xc3, 0x28, 0xff, 0xfe, 10, 0x80, 0]);
		fs.writeFileSync(path.join(wt, 'latin1.txt'), latin1);
		fs.writeFileSync(path.join(wt, 'blob.bin'), binary);
		// A user's diff settings must not shape the patch the rewind applies.
		git(wt, 'config', 'diff.noprefix', 'true');
		git(wt, 'config', 'color.diff', 'always');
		// A file name that is not UTF-8 either (Latin-1 `café.txt`): fs takes it as bytes.
		const latin1Name = Buffer.concat([Buffer.from(`${wt}/`), Buffer.from('caf\xe9.txt', 'latin1')]);
		fs.writeFileSync(latin1Name, latin1);
		const ref = await service.checkpoint(wt, 'chat-x/turn-1-before');
		fs.writeFileSync(latin1Name, binary);
		fs.writeFileSync(path.join(wt, 'latin1.txt'), Buffer.from('caf\xe9 au lait\n\xa9\n', 'latin1'));
		fs.writeFileSync(path.join(wt, 'blob.bin'), Buffer.from([0xff, 0, 0xe9, 0xc0, 10]));
		await service.rewind(wt, ref);
		assert.deepEqual(fs.readFileSync(path.join(wt, 'latin1.txt')), latin1);
		assert.deepEqual(fs.readFileSync(path.join(wt, 'blob.bin')), binary);
		assert.deepEqual(fs.readFileSync(latin1Name), latin1);
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

	test("a repository git refuses as another user's (safe.directory) gives git's reason and the command that allows it, not \"not a git repository\"", async () => {
		// Git's own test switch makes it take every repository for another user's (no chown without root).
		const otherOwner = { ...env, GIT_TEST_ASSUME_DIFFERENT_OWNER: '1' };
		const strict = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'worktrees'), env: otherOwner });
		const error = await strict.createSession({ repo: path.join(repo, 'src'), title: 'not mine' }).then(
			() => assert.fail('git worked in a repository it takes for another user\'s'),
			(e: unknown) => e as Error & { code?: string },
		);
		assert.equal(error.code, 'repo/unsafe', error.message);
		const real = fs.realpathSync(repo);
		assert.equal(error.message, `Git refuses to work in ${real}: the repository belongs to another user ("detected dubious ownership"). If you trust it, allow it with "git config --global --add safe.directory '${real}'" and try again.`);
		// The command given is the fix: git works there once it ran (as the shell runs it, quotes and all).
		execFileSync('sh', ['-c', /"(git config --global --add safe\.directory .+)" and try again\.$/.exec(error.message)![1]!], { env });
		assert.equal(execFileSync('git', ['rev-parse', '--show-toplevel'], { cwd: repo, env: otherOwner, encoding: 'utf8' }).trim(), real);
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
		// An orphan branch checked out in a repository that has commits: a named base is used.
		git(repo, 'checkout', '-q', '--orphan', 'fresh-start');
		await assert.rejects(service.createSession({ repo, title: 'x' }), /is on a branch with no commits yet; name the branch to start from/);
		const fromMain = await service.createSession({ repo, title: 'from main on an orphan', baseRef: 'main' });
		assert.equal(fromMain.worktree.base_ref, 'main');
		git(repo, 'checkout', '-q', '-f', 'main');
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
