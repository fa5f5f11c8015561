import * as assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, CliRig, interruptWhenJournaled, type Run, runCli, type Task } from './cliRig';
import { makeRepo } from './gitRepo';
import { waitFor } from './helpers';
import { checkNoLeaksAfterSuite } from './leakCheck';

/**
 * `agent-tabs` the way a careless user runs it: its output piped into `head`, Ctrl-C pressed twice, the task
 * commands run afterwards, odd folder names.
 */
suite('cli: careless use of the command line and its task queue', function () {
	this.timeout(120_000);
	checkNoLeaksAfterSuite();
	const rig = CliRig.inSuite('agent-tabs-cli-careless-');
	const { run: cliRun, json, task } = rig;

	/**
	 * A task left `running` by a command that ended mid-turn: `task add --wait` on an agent that ignores
	 * cancels, and Ctrl-C pressed twice (the second ends the command at once). Returns the task's id.
	 */
	async function orphanedTask(): Promise<string> {
		const child = rig.spawn(['task', 'add', '--agent', 'scripted', '--prompt', 'say started\nhang', '--repo', rig.repo, '--wait', '--json']);
		let stdout = '';
		let stderr = '';
		child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
		const exited = new Promise<number | null>((resolve) => child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : null))));
		await new Promise<void>((resolve) =>
			child.stdout.on('data', (d: Buffer) => {
				stdout += d.toString('utf8');
				if (stdout.includes('"text":"started"')) {
					resolve();
				}
			}),
		);
		child.kill('SIGINT');
		await new Promise((resolve) => setTimeout(resolve, 300));
		child.kill('SIGINT');
		assert.notEqual(await exited, 0, stderr);
		const [left] = json(['task', 'list']) as unknown as Task[];
		assert.equal(left!.status, 'running', 'the command ended before its task did: the store still says running');
		return left!.id;
	}



	test('output piped into a reader that stops early (| head -1): the turn still ends and is recorded, no crash, the state is released', async () => {
		const r = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
			const child = rig.spawn(['run', '--repo', rig.repo, '--agent', 'scripted', '--prompt', 'say hello\nsleep 1500\nstream 2000\nwrite after.txt still here', '--json']);
			let stderr = '';
			child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
			// What `| head -1` does: read the first line, then close the pipe.
			child.stdout.once('data', () => child.stdout.destroy());
			child.on('exit', (code) => resolve({ code, stderr }));
		});
		assert.doesNotMatch(r.stderr, /EPIPE|Unhandled 'error' event|at .+\.js:\d+/, r.stderr);
		assert.equal(r.code, 0, `the turn ended normally, so the exit code says so:\n${r.stderr}`);
		const [ran] = json(['task', 'list']) as unknown as Task[];
		assert.equal(ran!.status, 'done', ran!.error ?? undefined);
		assert.ok(!fs.existsSync(path.join(rig.state, 'agent-tabs.lock')), 'the lock was released');
		const worktrees = rig.worktrees;
		const folder = fs.readdirSync(worktrees).map((d) => path.join(worktrees, d)).find((d) => fs.existsSync(path.join(d, 'after.txt')));
		assert.ok(folder, 'the agent finished its work');
		// A reading command whose reader is already gone ends quietly too.
		const show = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
			const child = rig.spawn(['show', String(json(['chats'])[0]!.id), '--json']);
			let stderr = '';
			child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
			child.stdout.destroy();
			child.on('exit', (code) => resolve({ code, stderr }));
		});
		assert.doesNotMatch(show.stderr, /EPIPE|Unhandled 'error' event|at .+\.js:\d+/, show.stderr);
		assert.equal(show.code, 0, show.stderr);
	});

	test('the terminal closed mid-turn (SIGHUP): the turn is cancelled and recorded, the state released, as for Ctrl-C', async () => {
		const hangUpWhenSaid = async (child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string }> => {
			let stdout = '';
			const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
			await new Promise<void>((resolve) =>
				child.stdout.on('data', (d: Buffer) => {
					stdout += d.toString('utf8');
					if (stdout.includes('"text":"hi"')) {
						resolve();
					}
				}),
			);
			child.kill('SIGHUP');
			return { ...(await exited), stdout };
		};
		const args = ['run', '--repo', rig.repo, '--agent', 'scripted', '--prompt', 'say hi\nsleep 6000\nsay the end', '--json'];
		const closed = await hangUpWhenSaid(rig.spawn(args));
		assert.deepEqual([closed.code, closed.signal], [1, null], 'the command ended as for a cancelled turn, not killed by the signal');
		const [cancelled] = json(['task', 'list']) as unknown as Task[];
		assert.equal(cancelled!.status, 'cancelled', 'the task is not left running');
		assert.ok(!fs.existsSync(path.join(rig.state, 'agent-tabs.lock')), 'the lock was released');
		assert.match(closed.stdout, /"type":"turn_end","stopReason":"cancelled"/);
	});

	test('a real terminal closed mid-turn (SIGHUP, then every write fails with EIO): no crash, the turn is cancelled and recorded, the state released', async function () {
		// script(1) runs the command in a pseudo-terminal; killing script closes it, as closing a terminal window does.
		if (spawnSync('script', ['--version']).status !== 0) {
			this.skip();
		}
		const quote = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
		const stderrFile = path.join(rig.dir, 'stderr.txt');
		const command = [process.execPath, cli, 'run', '--repo', rig.repo, '--agent', 'scripted', '--prompt', 'say hi\nstream 3000\nsleep 3000\nsay the end', ...rig.common].map(quote).join(' ');
		const terminal = spawn('script', ['-qfec', `${command} 2>${quote(stderrFile)}`, '/dev/null'], { env: rig.env, stdio: ['pipe', 'pipe', 'ignore'] });
		let shown = '';
		await new Promise<void>((resolve) =>
			terminal.stdout.on('data', (d: Buffer) => {
				shown += d.toString('utf8');
				if (shown.includes('hi')) {
					resolve();
				}
			}),
		);
		const gone = new Promise((resolve) => terminal.on('exit', resolve));
		terminal.kill('SIGKILL');
		await gone;
		await waitFor(() => !fs.existsSync(path.join(rig.state, 'agent-tabs.lock')), 'the command to release the state', 30_000);
		const [ended] = json(['task', 'list']) as unknown as Task[];
		assert.equal(ended!.status, 'cancelled', 'the task is not left running');
		assert.doesNotMatch(fs.readFileSync(stderrFile, 'utf8'), /EIO|Unhandled 'error' event|at .+\.js:\d+/);
	});

	test('after Ctrl-C twice, task retry runs the task that was cut off again, and task cancel says it ended', async () => {
		const cut = await orphanedTask();
		const retry = cliRun(['task', 'retry', cut, '--json']);
		assert.equal(retry.code, 0, retry.stderr);
		const retried = JSON.parse(retry.stdout.trim().split('\n').pop()!) as Task & { parent_task_id: string; attempt: number };
		assert.deepEqual([retried.status, retried.parent_task_id, retried.attempt], ['queued', cut, 2]);
		assert.match(retry.stderr, new RegExp(`task ${cut} was running when Agent Tabs last ended; it is interrupted`));
		assert.equal(retry.stderr.split('was running when Agent Tabs last ended').length - 1, 1, `said once:\n${retry.stderr}`);
		assert.equal(task(['task', 'show', cut]).status, 'interrupted');
		const cancel = cliRun(['task', 'cancel', cut]);
		assert.equal(cancel.code, 2);
		assert.match(cancel.stderr, /has already ended \(interrupted\); there is nothing to cancel/);
	});

	test('task work after Ctrl-C twice: the task cut off earlier is reported interrupted, not counted as one it ran; exit 0 when its own tasks ended done', async () => {
		const cut = await orphanedTask();
		const queued = task(['task', 'add', '--agent', 'scripted', '--prompt', 'say fine', '--repo', rig.repo]);
		const worked = cliRun(['task', 'work', '--json']);
		assert.equal(worked.code, 0, `every task this command ran ended done:\n${worked.stdout}\n${worked.stderr}`);
		const ends = worked.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Task & { type: string });
		assert.deepEqual(ends.map((e) => [e.type, e.id, e.status]), [['task_end', queued.id, 'done']]);
		assert.match(worked.stderr, new RegExp(`task ${cut} was running when Agent Tabs last ended; it is interrupted \\(agent-tabs task retry ${cut} runs it again\\)`));
		assert.equal(worked.stderr.split(`task ${cut} was running when Agent Tabs last ended`).length - 1, 1, `the task cut off is said once on stderr:\n${worked.stderr}`);
		assert.equal(task(['task', 'show', cut]).status, 'interrupted');
		const idle = cliRun(['task', 'work']);
		assert.equal(idle.code, 0, idle.stderr);
		assert.match(idle.stdout, /The queue is empty \(0 tasks ran\)/);
	});

	test('a repository whose folder name ends in a space or holds a line break starts sessions, and its tasks run', () => {
		for (const name of ['ends in a space ', 'two\nlines', ' leading space']) {
			const odd = makeRepo(path.join(rig.dir, name));
			const made = cliRun(['session', 'new', '--repo', odd, '--title', 'Odd', '--json']);
			assert.equal(made.code, 0, `${JSON.stringify(name)}: ${made.stderr}`);
			const session = JSON.parse(made.stdout.trim()) as { sessionId: string; worktreePath: string };
			const listed = json(['session', 'list', '--repo', odd]).find((s) => s.id === session.sessionId)!;
			assert.equal(listed.repo_root, fs.realpathSync(odd), JSON.stringify(name));
			const ran = task(['task', 'add', '--agent', 'scripted', '--prompt', 'write made.txt yes', '--repo', odd, '--wait']);
			assert.equal(ran.status, 'done', `${JSON.stringify(name)}: ${ran.error}`);
		}
	});

	test('a state or worktrees folder still to be made on a read-only file system is said to be read-only, not "no such file"', function () {
		// A real read-only mount needs root with mount rights (a container's root has them); skipped elsewhere.
		const ro = path.join(rig.dir, 'ro');
		fs.mkdirSync(ro);
		if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', ro]).status !== 0) {
			this.skip();
		}
		try {
			const add = cliRun(['task', 'add', '--agent', 'scripted', '--prompt', 'say hi', '--repo', rig.repo, '--agents', rig.agents, '--state', path.join(ro, 'state', 'deeper')], true);
			assert.equal(add.code, 2, add.stderr);
			assert.match(add.stderr, /The state folder .*deeper cannot be written \(read-only file system\)/);
			assert.doesNotMatch(add.stderr, /ENOENT|no such file/);
			const made = cliRun(['session', 'new', '--repo', rig.repo, '--state', rig.state, '--worktrees', path.join(ro, 'worktrees')], true);
			assert.equal(made.code, 2, made.stderr);
			assert.match(made.stderr, /The worktrees folder .* cannot be created or written \(read-only file system\)/);
			assert.doesNotMatch(made.stderr, /ENOENT|no such file/);
		} finally {
			spawnSync('umount', [ro]);
		}
	});

	test('Ctrl-C while task add --wait is still queueing its task: the task never runs later (it is cancelled), whenever the key is pressed', async () => {
		const state = rig.state;
		for (let attempt = 0; attempt < 4; attempt++) {
			const marker = `say pressed-${attempt}`;
			const child = rig.spawn(['task', 'add', '--agent', 'scripted', '--prompt', `${marker}\nsleep 4000`, '--repo', rig.repo, '--wait']);
			let stderr = '';
			child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
			const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
			// The key is pressed the moment the task reaches the journal: the command is still waiting for the
			// disk to say so, before it has started to wait for the task.
			await interruptWhenJournaled(child, state, marker);
			await exited;
			const left = (json(['task', 'list']) as unknown as (Task & { prompt: string })[]).filter((t) => t.prompt.startsWith(marker));
			assert.deepEqual(left.map((t) => t.status), ['cancelled'], `attempt ${attempt}: the task Ctrl-C was pressed for is cancelled, not left queued to run later\n${stderr}`);
		}
	});

	test('Ctrl-C while run is still making its session or queueing its task: the turn never starts, nothing is left to run or kept, and the command exits 1 as for a cancelled turn', async () => {
		const state = rig.state;
		for (let attempt = 0; attempt < 3; attempt++) {
			const marker = `say run-pressed-${attempt}`;
			const child = rig.spawn(['run', '--agent', 'scripted', '--prompt', `${marker}\nsleep 4000`, '--repo', rig.repo]);
			let stderr = '';
			child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
			const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
			await interruptWhenJournaled(child, state, marker);
			assert.equal(await exited, 1, `attempt ${attempt}: ${stderr}`);
			const left = (json(['task', 'list']) as unknown as (Task & { prompt: string })[]).filter((t) => t.prompt.startsWith(marker));
			assert.ok(left.every((t) => t.status === 'cancelled'), `nothing is left to run later: ${JSON.stringify(left)}\n${stderr}`);
			const sessions = json(['sessions']) as unknown as { title: string }[];
			assert.ok(!sessions.some((s) => s.title.startsWith(marker)), `the session made for it goes again: ${JSON.stringify(sessions)}`);
		}
	});

	test('Ctrl-C while a task\'s new session is being made: the task is cancelled and the session made for it goes again', async () => {
		const worktrees = rig.worktrees;
		const child = rig.spawn(['task', 'add', '--agent', 'scripted', '--prompt', 'say never', '--repo', rig.repo, '--title', 'Cancelled early', '--wait', '--json']);
		let stdout = '';
		child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
		const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
		// The worktrees folder appears as the session's worktree is made, after the task is on disk.
		await new Promise<void>((resolve) => {
			const timer = setInterval(() => {
				if (fs.existsSync(worktrees)) {
					clearInterval(timer);
					child.kill('SIGINT');
					resolve();
				}
			}, 1);
		});
		assert.equal(await exited, 1);
		const end = JSON.parse(stdout.trim().split('\n').pop()!) as Task & { type: string };
		assert.deepEqual([end.type, end.status], ['task_end', 'cancelled']);
		assert.deepEqual(json(['sessions']), [], 'no session is left for a task that never ran');
		assert.deepEqual(fs.readdirSync(worktrees), [], 'nor its worktree');
	});

	test('flags with no command: an error that says so (in JSON too with --json), exit 2', () => {
		const onlyJson = cliRun(['--json'], true);
		assert.equal(onlyJson.code, 2);
		const error = JSON.parse(onlyJson.stdout.trim()) as { type: string; code: string; message: string };
		assert.deepEqual([error.type, error.code], ['error', 'cli/usage']);
		assert.match(error.message, /No command given/);
		const unknown = cliRun(['-x'], true);
		assert.equal(unknown.code, 2);
		assert.match(unknown.stderr, /^agent-tabs: No command given \(only "-x"\)\.\n\nUsage: agent-tabs <command>/);
		assert.equal(unknown.stdout, '');
		const nothing = cliRun([], true);
		assert.equal(nothing.code, 2);
		assert.match(nothing.stderr, /^agent-tabs: No command given\.\n\nUsage: agent-tabs <command>/);
	});

	test('task add --repo with a folder that is no repository, or a bare one, is refused at once (exit 2), nothing queued', () => {
		const notRepo = path.join(rig.dir, 'not-a-repo');
		fs.mkdirSync(notRepo);
		const bare = path.join(rig.dir, 'bare.git');
		spawnSync('git', ['init', '-q', '--bare', bare]);
		for (const [folder, message] of [
			[notRepo, /not-a-repo is not a git repository/],
			[bare, /bare\.git is a bare git repository/],
		] as const) {
			for (const wait of [[], ['--wait']]) {
				const r = cliRun(['task', 'add', '--agent', 'scripted', '--prompt', 'say hi', '--repo', folder, ...wait]);
				assert.equal(r.code, 2, r.stdout + r.stderr);
				assert.match(r.stderr, message);
			}
		}
		assert.deepEqual(json(['task', 'list']), [], 'nothing was queued');
	});

	test('a state folder whose database cannot be written in full (ulimit -f): plain words, and no partial temp file left in it', () => {
		const state = path.join(rig.dir, 'small-state');
		// A real RLIMIT_FSIZE: writes past it fail with EFBIG, as on a disk that fills up mid-write.
		const r = runCli(['task', 'add', '--agent', 'scripted', '--prompt', 'say hi', '--repo', rig.repo, '--agents', rig.agents, '--state', state], { env: rig.env, maxFileBytes: 20000 });
		assert.equal(r.code, 2, r.stderr);
		assert.match(r.stderr, /The state folder .*small-state cannot be written: .*largest size this process may write/);
		assert.doesNotMatch(r.stderr, /EFBIG/);
		assert.deepEqual(fs.readdirSync(state).filter((f) => f.includes('.tmp-')), [], 'the partial temp file was removed');
	});

	test('a flag given twice with different values is a usage error naming both, not the last one silently', () => {
		const r = cliRun(['task', 'add', '--agent', 'scripted', '--prompt', 'write the tests', '--repo', rig.repo, '--prompt', 'write the docs'], false);
		assert.equal(r.code, 2, r.stdout + r.stderr);
		assert.match(r.stderr, /--prompt is given twice \("write the tests" and "write the docs"\): give it once\./);
		assert.deepEqual(json(['task', 'list']), [], 'nothing was queued');
		const same = cliRun(['task', 'list', '--status', 'queued', '--status=queued', '--json', '--json']);
		assert.equal(same.code, 0, `the same value twice is harmless: ${same.stderr}`);
	});

	test('--prompt - reads the prompt from standard input (git diff | agent-tabs run ...): whole, as UTF-8; empty, not UTF-8 or a folder is a usage error', () => {
		const piped = (args: string[], input: string | Buffer): Run => cliRun(args, false, input);
		const ran = piped(['run', '--repo', rig.repo, '--agent', 'scripted', '--prompt', '-', '--json'], 'say from the pipe: ünï\nsay and its second line');
		assert.equal(ran.code, 0, ran.stderr);
		const said = ran.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { event?: { type: string; text?: string } }).event).filter((e) => e?.type === 'text').map((e) => e!.text).join('');
		assert.match(said, /from the pipe: ünï/);
		assert.match(said, /and its second line/, 'every line of the input is the prompt');
		const added = piped(['task', 'add', '--agent', 'scripted', '--prompt', '-', '--repo', rig.repo, '--json'], 'say queued from a pipe\n');
		assert.equal(added.code, 0, added.stderr);
		assert.equal((JSON.parse(added.stdout.trim().split('\n').pop()!) as { prompt: string }).prompt, 'say queued from a pipe\n');
		const queued = json(['task', 'list']).length;
		for (const [input, message] of [['  \n', /standard input is empty/], [Buffer.from([0x73, 0x61, 0x79, 0x20, 0xff, 0xfe]), /standard input is not UTF-8 text/]] as const) {
			const refused = piped(['task', 'add', '--agent', 'scripted', '--prompt', '-', '--repo', rig.repo], input);
			assert.equal(refused.code, 2, refused.stdout + refused.stderr);
			assert.match(refused.stderr, message);
		}
		const folder = fs.openSync(rig.dir, 'r');
		try {
			const fromFolder = spawnSync(process.execPath, [cli, 'task', 'add', '--agent', 'scripted', '--prompt', '-', '--repo', rig.repo, ...rig.common], { encoding: 'utf8', env: rig.env, stdio: [folder, 'pipe', 'pipe'] });
			assert.equal(fromFolder.status, 2, fromFolder.stderr);
			assert.match(fromFolder.stderr, /Standard input is a folder, not text/, '< folder is not called an empty prompt');
		} finally {
			fs.closeSync(folder);
		}
		assert.equal(json(['task', 'list']).length, queued, 'nothing more was queued');
	});
});
