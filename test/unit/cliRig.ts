import * as assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { makeRepo } from './gitRepo';
import { removeDir, repoRoot, tempDir } from './helpers';

/** What the CLI test files share: the built `agent-tabs`, how to run it, and how to read what it printed. */

/** The built command line. */
export const cli = path.join(repoRoot, 'out', 'src', 'cli', 'main.js');
/** The scripted ACP agent the CLI tests talk to. */
export const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');

/** What one finished CLI process said. */
export interface Run {
	code: number | null;
	stdout: string;
	stderr: string;
}

/** A task as `task ... --json` prints it. */
export interface Task {
	id: string;
	status: string;
	creator: string;
	chat_id: string | null;
	session_id: string | null;
	prompt: string;
	priority: number;
	parent_task_id: string | null;
	attempt: number;
	result: string | null;
	error: string | null;
}

export interface RunOptions {
	cwd?: string;
	env?: NodeJS.ProcessEnv;
	/** What the command reads on standard input. */
	input?: string | Buffer;
	/** Runs it as `nobody` when the tests run as root (root ignores file modes). */
	asOtherUser?: boolean;
	/** Limits file sizes to this many bytes (prlimit, a real RLIMIT_FSIZE: writes past it fail with EFBIG). */
	maxFileBytes?: number;
}

/** Runs the built CLI as a child process and waits for it. */
export function runCli(args: string[], options: RunOptions = {}): Run {
	const other = options.asOtherUser && process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
	const [command, commandArgs] = options.maxFileBytes === undefined ? [process.execPath, [cli, ...args]] : ['prlimit', [`--fsize=${options.maxFileBytes}:${options.maxFileBytes}`, process.execPath, cli, ...args]];
	const r = spawnSync(command, commandArgs, { encoding: 'utf8', cwd: options.cwd, env: options.env ?? process.env, input: options.input, maxBuffer: 256 * 1024 * 1024, ...other });
	return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The JSON lines a command printed. */
export function jsonLines(stdout: string): Record<string, unknown>[] {
	return stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The file an agents list at `file` names the scripted agent in (`env`: its environment). */
export function writeScriptedAgents(file: string, env: Record<string, string> = {}, extra: Record<string, unknown> = {}): void {
	fs.writeFileSync(file, JSON.stringify([{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env, ...extra }]));
}

/**
 * A suite's folder for each test, with a repository, the scripted agent, and the flags that keep the CLI's
 * state and worktrees in it. Call it at the top of a `suite`: it adds the setup and teardown.
 */
export class CliRig {
	dir = '';
	repo = '';
	agents = '';
	state = '';
	worktrees = '';
	/** `--state`, `--worktrees` and `--agents` of this test's folder. */
	common: string[] = [];
	/** The environment the CLI runs in: worktrees made without --worktrees go into the test's folder too. */
	env: NodeJS.ProcessEnv = {};

	static inSuite(prefix: string): CliRig {
		const rig = new CliRig();
		setup(() => {
			rig.dir = tempDir(prefix);
			rig.repo = makeRepo(path.join(rig.dir, 'repo'));
			rig.agents = path.join(rig.dir, 'agents.json');
			writeScriptedAgents(rig.agents);
			rig.state = path.join(rig.dir, 'state');
			rig.worktrees = path.join(rig.dir, 'worktrees');
			rig.common = ['--state', rig.state, '--worktrees', rig.worktrees, '--agents', rig.agents];
			rig.env = { ...process.env, AGENT_TABS_WORKTREES: rig.worktrees };
		});
		teardown(() => removeDir(rig.dir));
		return rig;
	}

	/** Runs the CLI with this test's state, worktrees and agents (`own`: only the arguments given). */
	readonly run = (args: string[], own = false, input?: string | Buffer): Run => runCli([...args, ...(own ? [] : this.common)], { env: this.env, input });

	/** Runs the CLI with --json, asserts it succeeded, and returns the lines it printed. */
	readonly json = (args: string[]): Record<string, unknown>[] => {
		const r = this.run([...args, '--json']);
		assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
		return jsonLines(r.stdout);
	};

	/** The last task a `task ...` command printed. */
	readonly task = (args: string[]): Task => this.json(args).pop() as unknown as Task;

	/** Starts the CLI with this test's state, worktrees and agents, without waiting for it. */
	readonly spawn = (args: string[]): ChildProcessWithoutNullStreams => spawn(process.execPath, [cli, ...args, ...this.common], { env: this.env });
}

/** Presses Ctrl-C (SIGINT) for the command the moment `marker` reaches the state's journal. */
export function interruptWhenJournaled(child: ReturnType<typeof spawn>, state: string, marker: string): Promise<void> {
	return new Promise<void>((resolve) => {
		const timer = setInterval(() => {
			const journals = fs.existsSync(state) ? fs.readdirSync(state).filter((f) => f.startsWith('agent-tabs.journal.')) : [];
			if (journals.some((f) => fs.readFileSync(path.join(state, f)).includes(marker))) {
				clearInterval(timer);
				child.kill('SIGINT');
				resolve();
			}
		}, 1);
	});
}

/** The agent, in a process group of its own, outlives a killed command; it is not what these tests are about. */
export function killScriptedAgentsIn(cwd: string): void {
	for (const pid of fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
		try {
			if (fs.realpathSync(`/proc/${pid}/cwd`) === fs.realpathSync(cwd) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('acpAgent.js')) {
				process.kill(Number(pid), 'SIGKILL');
			}
		} catch {
			// gone, or not ours to read
		}
	}
}
