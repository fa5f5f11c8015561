import * as assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CliRig, type Task } from './cliRig';
import { makeRepo } from './gitRepo';
import { openStore, repoRoot } from './helpers';
import { WorktreesRepo } from '../../src/db/worktreesRepo';
import { checkNoLeaksAfterSuite } from './leakCheck';

/** `agent-tabs task ...`: the queue from the command line, with the scripted agent. */
suite('cli: agent-tabs task', function () {
	this.timeout(120_000);
	checkNoLeaksAfterSuite();
	const rig = CliRig.inSuite('agent-tabs-cli-tasks-');
	const { run: cliRun, json, task } = rig;


	test('add without --wait queues (persisted); task work runs the queue until empty; list, show, cancel, retry', () => {
		const first = task(['task', 'add', '--agent', 'scripted', '--prompt', 'write first.txt one', '--repo', rig.repo, '--title', 'Queued work']);
		assert.deepEqual([first.status, first.creator, first.chat_id], ['queued', 'cli', null]);
		const cancelled = task(['task', 'add', '--agent', 'scripted', '--prompt', 'write never.txt x', '--repo', rig.repo]);
		const urgent = task(['task', 'add', '--agent', 'scripted', '--prompt', 'crash', '--repo', rig.repo, '--priority', '5']);
		assert.equal(task(['task', 'cancel', cancelled.id]).status, 'cancelled');
		assert.deepEqual(json(['task', 'list', '--status', 'queued']).map((t) => t.id), [first.id, urgent.id], 'the queue survived between processes');

		const worked = cliRun(['task', 'work']);
		assert.equal(worked.code, 1, 'one task it ran did not end done');
		assert.match(worked.stdout, /The queue is empty \(2 tasks ran\)/);
		assert.equal(worked.stdout.split('\n').filter((l) => l.startsWith('started ')).length, 2, `each task is said to start once:\n${worked.stdout}`);
		const ran = task(['task', 'show', first.id]);
		assert.equal(ran.status, 'done', ran.error ?? undefined);
		const sessions = json(['sessions']);
		const session = sessions.find((s) => s.id === ran.session_id)!;
		assert.equal(session.title, 'Queued work');
		const worktree = path.join(rig.dir, 'worktrees', fs.readdirSync(rig.worktrees).find((d) => fs.existsSync(path.join(rig.dir, 'worktrees', d, 'first.txt')))!);
		assert.equal(fs.readFileSync(path.join(worktree, 'first.txt'), 'utf8'), 'one');
		assert.ok(!fs.readdirSync(rig.worktrees).some((d) => fs.existsSync(path.join(rig.dir, 'worktrees', d, 'never.txt'))), 'a cancelled task never runs');
		assert.equal(task(['task', 'show', urgent.id]).status, 'failed');
		assert.match(cliRun(['task', 'show', first.id]).stdout, /task .* · done[\s\S]*created by cli[\s\S]*write first.txt one/);

		const retried = task(['task', 'retry', urgent.id]);
		assert.deepEqual([retried.status, retried.parent_task_id, retried.attempt, retried.chat_id], ['queued', urgent.id, 2, task(['task', 'show', urgent.id]).chat_id]);
		const again = cliRun(['task', 'retry', urgent.id]);
		assert.equal(again.code, 2);
		assert.match(again.stderr, /already|retried/i, 'a second retry of one task is refused in plain words');
		const cancelDone = cliRun(['task', 'cancel', first.id]);
		assert.equal(cancelDone.code, 2);
		assert.match(cancelDone.stderr, /has already ended \(done\)/);
	});

	test('add --wait runs the queue until its task ends and prints the result; exit 1 when it failed', () => {
		const made = json(['session', 'new', '--repo', rig.repo, '--title', 'Waiting'])[0]!;
		const lines = json(['task', 'add', '--agent', 'scripted', '--prompt', 'say all done here', '--session', String(made.sessionId), '--wait']);
		const end = lines.pop() as unknown as Task & { type: string };
		assert.deepEqual([end.type, end.status, end.session_id, end.result], ['task_end', 'done', made.sessionId, 'all done here']);
		assert.ok(lines.some((l) => l.type === 'event'), 'the agent\'s events stream while it waits');
		const chat = end.chat_id!;
		const failed = cliRun(['task', 'add', '--agent', 'scripted', '--prompt', 'crash', '--chat', chat, '--wait']);
		assert.equal(failed.code, 1, failed.stderr);
		assert.match(failed.stdout, /— task \S+ failed/);
		assert.deepEqual(json(['task', 'list']).map((t) => t.chat_id), [chat, chat], 'both ran in that chat');
		const silent = cliRun(['task', 'add', '--agent', 'scripted', '--prompt', 'say stuck\nsleep 60000', '--chat', chat, '--wait', '--silence-minutes', '0.01', '--json']);
		assert.equal(silent.code, 1, silent.stderr);
		const silentEnd = JSON.parse(silent.stdout.trim().split('\n').pop()!) as Task & { type: string };
		assert.equal(silentEnd.status, 'failed');
		assert.match(silentEnd.error ?? '', /Scripted sent nothing for 0\.6 seconds with no tool running, so the turn was stopped/);
	});

	test('run reports its own turn as soon as it ends; another task it started that hangs ends interrupted, and run exits', async () => {
		const other = task(['task', 'add', '--agent', 'scripted', '--prompt', 'say started\nhang', '--repo', rig.repo, '--title', 'Hangs']);
		const started = Date.now();
		const r = await new Promise<{ code: number | null; stdout: string; reportedAt: number }>((resolve) => {
			const child = rig.spawn(['run', '--repo', rig.repo, '--agent', 'scripted', '--prompt', 'sleep 300\nsay mine is done', '--json']);
			let stdout = '';
			let reportedAt = 0;
			child.stdout.on('data', (d: Buffer) => {
				stdout += d.toString('utf8');
				reportedAt ||= stdout.includes('"turn_end"') ? Date.now() : 0;
			});
			child.on('exit', (code) => resolve({ code, stdout, reportedAt }));
		});
		const end = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>).pop()!;
		assert.deepEqual([end.type, end.status, r.code], ['turn_end', 'done', 0], r.stdout);
		assert.ok(r.reportedAt > 0 && r.reportedAt - started < 20_000, `the result came ${r.reportedAt - started} ms after the start, not after the other task's grace`);
		const hung = task(['task', 'show', other.id]);
		assert.equal(hung.status, 'interrupted', 'the hanging task was stopped after a grace period, to be retried');
	});

	test('task work reports a task that failed before its turn could start (its folder is no repository) and exits 1', () => {
		// A repository when the task was queued, no longer one when it runs.
		const notRepo = makeRepo(path.join(rig.dir, 'not-a-repo'));
		const queued = task(['task', 'add', '--agent', 'scripted', '--prompt', 'say hi', '--repo', notRepo]);
		fs.rmSync(path.join(notRepo, '.git'), { recursive: true, force: true });
		const worked = cliRun(['task', 'work', '--json']);
		assert.equal(worked.code, 1, worked.stderr);
		const ends = worked.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Task & { type: string });
		assert.deepEqual(ends.map((e) => [e.type, e.id, e.status]), [['task_end', queued.id, 'failed']]);
		assert.match(ends[0]!.error ?? '', /not a git repository/);
	});

	test('bad input: plain words and exit 2, nothing queued', () => {
		const cases: [string[], RegExp][] = [
			[['task', 'add', '--agent', 'scripted', '--prompt', 'x'], /needs where the task runs: --chat <id>, --session <id>, or --repo <dir>/],
			[['task', 'add', '--agent', 'scripted', '--prompt', 'x', '--repo', rig.repo, '--session', 'ses-1'], /one of --chat, --session and --repo, not --session and --repo/],
			[['task', 'add', '--agent', 'scripted', '--prompt', 'x', '--session', 'ses-1', '--title', 't'], /--title names the new session a task starts, so it goes with --repo/],
			[['task', 'add', '--agent', 'scripted', '--prompt', 'x', '--repo', rig.repo, '--priority', 'high'], /--priority is a whole number \(higher runs first\), not "high"/],
			[['task', 'add', '--agent', 'nope', '--prompt', 'x', '--repo', rig.repo], /There is no agent "nope"/],
			[['task', 'add', '--agent', 'scripted', '--prompt', 'x', '--session', 'ses-missing'], /There is no session ses-missing/],
			[['task', 'add', '--agent', 'scripted', '--prompt', '   ', '--repo', rig.repo], /--prompt needs a value .*; it was given an empty one/],
			[['task', 'add', '--agent', 'scripted', '--prompt', 'x', '--repo', path.join(rig.dir, 'missing')], /does not exist/],
			[['task', 'show', 'task-nope'], /There is no task task-nope/],
			[['task', 'cancel', 'task-nope'], /There is no task task-nope/],
			[['task', 'list', '--status', 'sleeping'], /--status must be/],
			[['task', 'work', '--silence-minutes', 'soon'], /--silence-minutes is a number of minutes, 0 or more \(0 waits forever\), not "soon"/],
			[['task', 'work', '--silence-minutes=-1'], /--silence-minutes is a number of minutes/],
			[['task', 'frobnicate'], /Unknown command "task frobnicate"/],
		];
		for (const [args, message] of cases) {
			const r = cliRun(args);
			assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
			assert.match(r.stderr, message, args.join(' '));
		}
		assert.deepEqual(json(['task', 'list']), [], 'nothing was queued');
	});

	test('while another process holds the state: list and show read; add says plainly it cannot write', async () => {
		const queued = task(['task', 'add', '--agent', 'scripted', '--prompt', 'say later', '--repo', rig.repo]);
		const state = rig.state;
		const holder = spawn(process.execPath, [path.join(repoRoot, 'out', 'test', 'fixtures', 'lockHolder.js'), state, require.resolve('sql.js/dist/sql-wasm.wasm')], { stdio: ['ignore', 'pipe', 'inherit'] });
		try {
			await new Promise<void>((resolve) => holder.stdout.on('data', (d) => String(d).includes('ready') && resolve()));
			assert.deepEqual(json(['task', 'list']).map((t) => t.id), [queued.id]);
			assert.equal(task(['task', 'show', queued.id]).status, 'queued');
			const add = cliRun(['task', 'add', '--agent', 'scripted', '--prompt', 'x', '--repo', rig.repo]);
			assert.equal(add.code, 2);
			assert.match(add.stderr, /Cannot add a task while the lock-holder test process holds the state: .*is in use by/);
			const work = cliRun(['task', 'work']);
			assert.equal(work.code, 2);
			assert.match(work.stderr, /Cannot run the queue while/);
		} finally {
			holder.kill('SIGKILL');
		}
		assert.deepEqual(json(['task', 'list']).map((t) => t.id), [queued.id], 'nothing was added');
	});

	test('add --session of an archived session: queued with a warning on stderr, runs once it is restored; with --wait, and run, refused (exit 2), nothing made', () => {
		const made = json(['session', 'new', '--repo', rig.repo, '--title', 'Shelved'])[0]!;
		const sessionId = String(made.sessionId);
		const chat = task(['task', 'add', '--agent', 'scripted', '--prompt', 'say before', '--session', sessionId, '--wait']).chat_id!;
		assert.equal(cliRun(['session', 'archive', sessionId]).code, 0);
		const queued = cliRun(['task', 'add', '--agent', 'scripted', '--prompt', 'write later.txt l', '--session', sessionId, '--json']);
		assert.equal(queued.code, 0, queued.stderr);
		const later = JSON.parse(queued.stdout.trim()) as Task;
		assert.equal(later.status, 'queued');
		assert.match(queued.stderr, new RegExp(`warning: session ${sessionId} is archived; task ${later.id} runs only once it is restored \\(agent-tabs session restore ${sessionId}\\)`));
		for (const target of [['--session', sessionId], ['--chat', chat]]) {
			const now = cliRun(['task', 'add', '--agent', 'scripted', '--prompt', 'say now', ...target, '--wait']);
			assert.equal(now.code, 2, now.stdout + now.stderr);
			assert.match(now.stderr, new RegExp(`Session ${sessionId} is archived, so a task cannot run in it now: restore it first \\(agent-tabs session restore ${sessionId}\\), or queue the task without --wait`));
		}
		assert.deepEqual(json(['task', 'list', '--status', 'queued']).map((t) => t.id), [later.id], 'only the task queued for later');
		const tasksBefore = json(['task', 'list']).length;
		for (const target of [['--session', sessionId], ['--chat', chat]]) {
			const ran = cliRun(['run', '--repo', rig.repo, '--agent', 'scripted', '--prompt', 'say now', ...target]);
			assert.equal(ran.code, 2, ran.stdout + ran.stderr);
			assert.match(ran.stderr, new RegExp(`Session ${sessionId} is archived, so a turn cannot run in it now: restore it first`));
		}
		assert.deepEqual(json(['chats']).map((c) => c.id), [chat], 'run made no chat in the archived session');
		assert.equal(json(['task', 'list']).length, tasksBefore, 'nor a task');
		assert.equal(cliRun(['session', 'restore', sessionId]).code, 0);
		const worked = cliRun(['task', 'work']);
		assert.equal(worked.code, 0, worked.stdout + worked.stderr);
		assert.equal(task(['task', 'show', later.id]).status, 'done');
	});

	/** A session as a command killed in the middle of making it leaves it: its rows still say `creating`. */
	async function halfMadeSession(): Promise<Record<string, unknown>> {
		const made = json(['session', 'new', '--repo', rig.repo, '--title', 'Half made'])[0]!;
		const store = await openStore(rig.state);
		const worktrees = new WorktreesRepo(store);
		worktrees.update(worktrees.forSession(String(made.sessionId))!.id, { state: 'creating' });
		await store.close();
		return made;
	}

	function assertRolledBack(made: Record<string, unknown>): void {
		assert.ok(!json(['sessions']).some((s) => (s.id ?? s.sessionId) === made.sessionId), 'the half-made session is gone');
		assert.equal(fs.existsSync(String(made.worktreePath)), false, 'and its worktree');
		assert.equal(spawnSync('git', ['branch', '--list', String(made.branch)], { cwd: rig.repo, encoding: 'utf8' }).stdout, '', 'and its branch');
	}

	test('task work first rolls back a new session a killed command left half made, worktree and branch with it', async () => {
		const made = await halfMadeSession();
		const worked = cliRun(['task', 'work']);
		assert.equal(worked.code, 0, worked.stderr);
		assert.deepEqual(json(['sessions']), []);
		assertRolledBack(made);
	});

	test('task add --wait, which runs the queue, also first rolls back a new session a killed command left half made', async () => {
		const made = await halfMadeSession();
		const added = cliRun(['task', 'add', '--wait', '--agent', 'scripted', '--prompt', 'say fine', '--repo', rig.repo, '--json']);
		assert.equal(added.code, 0, added.stderr);
		assert.equal(json(['sessions']).length, 1, 'only the session made for the task is left');
		assertRolledBack(made);
	});

	test('help lists the task commands and says a window runs the queue itself', () => {
		const help = cliRun(['--help']);
		assert.equal(help.code, 0);
		for (const c of ['task add', 'task list', 'task show <taskId>', 'task cancel <taskId>', 'task retry <taskId>', 'task work']) {
			assert.ok(help.stdout.includes(`  ${c}`), c);
		}
		assert.match(help.stdout, /A VS Code window\s+holding the state runs the queue itself/);
	});
});
