import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { storeFiles, type Store } from '../../../src/db/store';
import { WorktreesRepo } from '../../../src/db/worktreesRepo';
import { Git } from '../../../src/worktrees/gitClient';
import { describeSave, readWorktreeTrails } from '../../../src/worktrees/gitRecords';
import { rebuildFromGit, worktreeToAttach } from '../../../src/worktrees/rebuild';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv, makeRepo, snapshotFiles } from '../gitRepo';
import { MemoryLogger, openStore, removeDir, tempDir } from '../helpers';
import { checkNoLeaksAfterSuite } from '../leakCheck';

/** Sessions and detached worktrees as the Sessions view and `session list` show them. */
function visible(store: Store): string[] {
	const sessions = new SessionsRepo(store).list().map((s) => `${s.title}: ${s.status}, ${s.branch}, ${s.worktree_state}, ${path.basename(s.worktree_path ?? '-')}`);
	const detached = new WorktreesRepo(store).detached().map((w) => `(detached) ${w.branch}, ${w.state}, ${path.basename(w.path)}`);
	return [...sessions.sort(), ...detached.sort()];
}

suite('worktrees: getting back what git knows after the database is lost (real git, real store)', function () {
	this.timeout(120_000);
	checkNoLeaksAfterSuite();
	let dir: string;
	let repo: string;
	let root: string;
	let env: NodeJS.ProcessEnv;
	const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
	const service = (store: Store): WorktreeService => new WorktreeService(store, new MemoryLogger(), { root, env });

	setup(() => {
		dir = tempDir('agent-tabs-rebuild-');
		env = gitEnv(dir);
		fs.writeFileSync(path.join(dir, '.gitconfig'), '[user]\n\tname = T\n\temail = t@t\n[commit]\n\tgpgsign = false\n');
		repo = makeRepo(path.join(dir, 'repo'), { 'README.md': '# r\n', 'src/app.ts': 'export {};\n' });
		root = path.join(dir, 'worktrees');
	});
	teardown(() => removeDir(dir));

	test('both layouts of saved refs are read: the single legacy ref and numbered immutable ones, in save order', async () => {
		const head = git(repo, 'rev-parse', 'HEAD').trim();
		for (const ref of ['refs/agent-tabs/saved/wt-old', 'refs/agent-tabs/saved/wt-new/2', 'refs/agent-tabs/saved/wt-new/10', 'refs/agent-tabs/saved/wt-new/1', 'refs/agent-tabs/heads/wt-new', 'refs/agent-tabs/heads/wt-clean', 'refs/agent-tabs/checkpoints/chat-1/turn-1']) {
			git(repo, 'update-ref', ref, head);
		}
		const trails = await readWorktreeTrails(new Git(repo, env));
		assert.deepEqual(
			[...trails.values()].sort((a, b) => a.worktreeId.localeCompare(b.worktreeId)),
			[
				{ worktreeId: 'wt-clean', savedRefs: [], headRef: 'refs/agent-tabs/heads/wt-clean' },
				{ worktreeId: 'wt-new', savedRefs: ['refs/agent-tabs/saved/wt-new/1', 'refs/agent-tabs/saved/wt-new/2', 'refs/agent-tabs/saved/wt-new/10'], headRef: 'refs/agent-tabs/heads/wt-new' },
				{ worktreeId: 'wt-old', savedRefs: ['refs/agent-tabs/saved/wt-old'], headRef: null },
			],
		);
	});

	test('a save names its folder, branch, title and why it was made; a folder with " on " in its name is read right', async () => {
		const store = await openStore(path.join(dir, 'state'));
		try {
			const odd = new WorktreeService(store, new MemoryLogger(), { root: path.join(dir, 'work on it'), env });
			const { session, worktree } = await odd.createSession({ repo, title: 'Odd one' });
			fs.writeFileSync(path.join(worktree.path, 'x.txt'), 'x\n');
			const saved = (await odd.archiveSession(session.id))!.saved!;
			const save = await describeSave(new Git(repo, env), saved.ref);
			assert.deepEqual([save.path, save.branch, save.title, save.reason, save.commit], [worktree.path, 'agent-tabs/odd-one', 'Odd one', 'archived', saved.commit]);
		} finally {
			await store.close();
		}
	});

	test('after the database file is cut at any point: sessions come back from the worktrees and refs/agent-tabs, restorable byte for byte', async () => {
		const state = path.join(dir, 'state');
		// Every journal counts as large, so close folds: the snapshot alone holds the state, and cutting it loses it.
		const store = await openStore(state, { smallJournalRecords: 1 });
		const s = service(store);
		// A live session with unsaved work, a live clean one, an archived one, a deleted one.
		const alive = await s.createSession({ repo, title: 'Alive and dirty' });
		fs.writeFileSync(path.join(alive.worktree.path, 'draft.md'), 'not saved anywhere yet\n');
		await s.createSession({ repo, title: 'Clean' });
		const shelved = await s.createSession({ repo, title: 'Shelved' });
		fs.writeFileSync(path.join(shelved.worktree.path, 'README.md'), 'changed while shelved\n');
		fs.writeFileSync(path.join(shelved.worktree.path, 'tool.sh'), '#!/bin/sh\necho shelved\n', { mode: 0o755 });
		const shelvedFiles = snapshotFiles(shelved.worktree.path);
		const shelvedSave = (await s.archiveSession(shelved.session.id))!.saved!;
		assert.match(shelvedSave.ref, /^refs\/agent-tabs\/saved\/wt-\w+\/1$/, 'one immutable ref per save');
		const gone = await s.createSession({ repo, title: 'Gone' });
		fs.writeFileSync(path.join(gone.worktree.path, 'binary.bin'), Buffer.from([0, 1, 2, 255, 13, 10]));
		fs.rmSync(path.join(gone.worktree.path, 'src', 'app.ts'));
		const goneFiles = snapshotFiles(gone.worktree.path);
		const goneSave = (await s.deleteSession(gone.session.id))!.saved!;
		// The older layout: one moving ref per worktree. Move this save there to have both layouts in one repository.
		const legacyRef = goneSave.ref.replace(/\/1$/, '');
		git(repo, 'update-ref', '-d', goneSave.ref);
		git(repo, 'update-ref', legacyRef, goneSave.commit);
		await store.close();
		const aliveFiles = snapshotFiles(alive.worktree.path);

		const expected = [
			// Titles come from the saved work; a worktree never saved is named after its branch.
			'Shelved: archived, agent-tabs/shelved, removed, shelved',
			'alive-and-dirty: active, agent-tabs/alive-and-dirty, ready, alive-and-dirty',
			'clean: active, agent-tabs/clean, ready, clean',
			'(detached) agent-tabs/gone, removed, gone',
		];
		const bytes = fs.readFileSync(path.join(state, storeFiles.snapshot));
		// The worktrees' owner marks name `state`; each cut copy stands for it, so the original goes away (a
		// state folder that still has its database holds its sessions, see the next test).
		const original = path.join(dir, 'state-before-the-damage');
		fs.renameSync(state, original);
		let rebuiltState = '';
		for (const cut of [0, 1, 100, 4096, Math.floor(bytes.length / 2), bytes.length - 1]) {
			const copy = path.join(dir, `state-cut-${cut}`);
			fs.cpSync(original, copy, { recursive: true });
			fs.writeFileSync(path.join(copy, storeFiles.snapshot), bytes.subarray(0, cut));
			const damaged = await openStore(copy);
			try {
				assert.ok(damaged.recovery.damaged, `cut at ${cut}: reported as damaged`);
				assert.deepEqual(visible(damaged), [], `cut at ${cut}: the database itself has nothing left`);
				// Reached from the repository, and (with no repository given) from the worktrees folder alone.
				const report = await rebuildFromGit({ store: damaged, service: service(damaged), logger: new MemoryLogger(), repos: cut % 2 === 0 ? [repo] : [], root, env });
				await damaged.rebuildDone();
				assert.deepEqual(report.problems, []);
				assert.deepEqual(visible(damaged), expected, `cut at ${cut}`);
				const again = await rebuildFromGit({ store: damaged, service: service(damaged), logger: new MemoryLogger(), repos: [repo], root, env });
				assert.deepEqual(again.rebuilt, [], 'a second rebuild adds nothing');
				const shelvedRow = new WorktreesRepo(damaged).get(shelved.worktree.id);
				assert.equal(shelvedRow?.saved_ref, shelvedSave.ref, 'the worktree keeps its id and its newest save');
				assert.equal(new WorktreesRepo(damaged).get(gone.worktree.id)?.saved_ref, legacyRef, 'a save in the older layout is found too');
			} finally {
				await damaged.close();
			}
			rebuiltState = copy;
		}
		assert.deepEqual(snapshotFiles(alive.worktree.path), aliveFiles, 'the rebuild touches no file');

		const rebuilt = await openStore(rebuiltState);
		try {
			const r = service(rebuilt);
			const sessions = new SessionsRepo(rebuilt).list();
			const restored = await r.restoreSession(sessions.find((x) => x.title === 'Shelved')!.id);
			assert.deepEqual(snapshotFiles(restored.path), shelvedFiles, 'the archived session comes back byte for byte');
			const attached = await r.attachWorktree(new WorktreesRepo(rebuilt).detached()[0]!.id);
			assert.equal(attached.session.title, 'Gone');
			assert.deepEqual(snapshotFiles(attached.worktree.path), goneFiles, 'the deleted session comes back byte for byte');
		} finally {
			await rebuilt.close();
		}
	});

	test("a rebuild leaves alone the live sessions another state folder holds (another window's workspace), and takes back those of one that is gone", async () => {
		const other = await openStore(path.join(dir, 'other-window'));
		const { worktree: held } = await service(other).createSession({ repo, title: 'held by another window' });
		await other.close();
		const gone = await openStore(path.join(dir, 'gone-window'));
		const { worktree: orphan } = await service(gone).createSession({ repo, title: 'its state was deleted' });
		await gone.close();
		fs.rmSync(path.join(dir, 'gone-window'), { recursive: true, force: true });

		const fresh = await openStore(path.join(dir, 'rebuilt'));
		try {
			const report = await rebuildFromGit({ store: fresh, service: service(fresh), logger: new MemoryLogger(), repos: [repo], root, env });
			assert.deepEqual(
				report.rebuilt.map((r) => r.path),
				[orphan.path],
			);
			assert.equal(new WorktreesRepo(fresh).byPath(held.path), undefined, 'the held one stays with its own state');
			// Nor can it be attached by its folder while that state has its database.
			const input = { store: fresh, service: service(fresh), logger: new MemoryLogger(), repos: [repo], root, env };
			await assert.rejects(worktreeToAttach(input, held.path), (e: Error & { code?: string }) => e.code === 'worktree/heldElsewhere' && e.message.includes(path.join(dir, 'other-window')));
			assert.equal(new WorktreesRepo(fresh).byPath(held.path), undefined);
		} finally {
			await fresh.close();
		}
	});

	test('attach by saved ref into a state that never knew it, and by an older save', async () => {
		const first = await openStore(path.join(dir, 'state'));
		const s = service(first);
		const { session, worktree } = await s.createSession({ repo, title: 'Twice saved' });
		fs.writeFileSync(path.join(worktree.path, 'notes.txt'), 'version one\n');
		const older = snapshotFiles(worktree.path);
		const save1 = (await s.archiveSession(session.id))!.saved!;
		await s.restoreSession(session.id);
		fs.writeFileSync(path.join(worktree.path, 'notes.txt'), 'version two\n');
		const save2 = (await s.deleteSession(session.id))!.saved!;
		assert.deepEqual([save1.ref.endsWith('/1'), save2.ref.endsWith('/2')], [true, true], 'one immutable ref per save');
		await first.close();

		const fresh = await openStore(path.join(dir, 'fresh-state'));
		try {
			const input = { store: fresh, service: service(fresh), logger: new MemoryLogger(), repos: [repo], root, env };
			await assert.rejects(worktreeToAttach({ ...input, repos: [] }, save1.ref), /not in any repository in reach \(name the repository with --repo\)/);
			const id = await worktreeToAttach(input, save1.ref);
			assert.equal(id, worktree.id);
			const attached = await service(fresh).attachWorktree(id);
			assert.deepEqual(snapshotFiles(attached.worktree.path), older, 'the older save, as asked');
			assert.equal(attached.session.title, 'Twice saved');

			// A worktree folder the state never knew: attached as it is, nothing restored over it.
			const stray = path.join(root, 'stray');
			git(repo, 'worktree', 'add', '-q', '-b', 'agent-tabs/stray', stray);
			fs.writeFileSync(path.join(stray, 'mine.txt'), 'untouched\n');
			const strayFiles = snapshotFiles(stray);
			const byFolder = await service(fresh).attachWorktree(await worktreeToAttach(input, stray));
			assert.deepEqual([byFolder.worktree.path, byFolder.worktree.state, byFolder.session.title], [stray, 'ready', 'stray']);
			assert.deepEqual(snapshotFiles(stray), strayFiles);
			await assert.rejects(worktreeToAttach(input, 'wt-nothing-like-this'), /is not a detached worktree, a worktree folder, or a ref under refs\/agent-tabs\//);
		} finally {
			await fresh.close();
		}
	});
});
