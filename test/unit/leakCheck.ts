import { createHook } from 'node:async_hooks';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnHelperForTests } from '../../src/worktrees/spawnHelper';

/**
 * Leak checks for a whole suite: call `checkNoLeaksAfterSuite()` at the top of a `suite`. After the suite (and
 * after every test's own teardown) it fails if the suite left behind
 *
 * - processes: a child of this test process, or any process that carries the suite's private `TMPDIR` in its
 *   environment (git, the CLI, agents and what they start inherit it; an agent's grandchild that outlived its
 *   process group leader is no longer our descendant, but it still carries the marker);
 * - timers and handles: created during the suite and neither cleared nor closed (tracked with async_hooks, so an
 *   `unref`'d interval counts too), and more of a kind keeping the event loop alive than at the start
 *   (`process.getActiveResourcesInfo()`);
 * - temp files: anything left in the suite's private `TMPDIR`. `os.tmpdir()` (and so `tempDir()`) reads `TMPDIR`
 *   on every call, so everything the suite and its processes put in the temp folder lands there. A private folder,
 *   not a listing of /tmp: other test runs on the same machine create folders with the same prefixes.
 *
 * Everything gets `settleMs` to end by itself (an agent's group takes a moment to exit after SIGKILL).
 * `othersTemp` names temp entries that programs we do not own (the real agent CLIs) keep there on purpose.
 */
export function checkNoLeaksAfterSuite(options: { settleMs?: number; othersTemp?: RegExp } = {}): void {
	const settleMs = options.settleMs ?? 5000;
	const tracker = new ResourceTracker();
	let privateTmp = '';
	let savedTmp: string | undefined;
	let baselineChildren = new Set<number>();
	let baselineActive = new Map<string, number>();
	let helperBefore: number | undefined;

	suiteSetup(async () => {
		// Mocha starts this hook's timer once the hook returns its promise: the baseline counts it, as the check
		// after the suite counts the timer of its own hook.
		await Promise.resolve();
		savedTmp = process.env.TMPDIR;
		privateTmp = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-leakcheck-'));
		// Open to other users as /tmp is: tests run processes as `nobody` on folders made inside it.
		fs.chmodSync(privateTmp, 0o755);
		process.env.TMPDIR = privateTmp;
		helperBefore = spawnHelperForTests.pid;
		baselineChildren = new Set(scanProcesses(privateTmp).descendants.map((p) => p.pid));
		baselineActive = countActive();
		tracker.start();
	});

	suiteTeardown(async function () {
		if (!privateTmp) {
			return; // the suite never started (a hook before ours failed or skipped it)
		}
		// The spawn helper is process-wide and kept between commands: one this suite started is stopped, as
		// the suite's own (it would carry the suite's TMPDIR into the next suite).
		if (spawnHelperForTests.pid !== undefined && spawnHelperForTests.pid !== helperBefore) {
			await spawnHelperForTests.stop();
		}
		// What starts from here on is the check's own (mocha's timer for this hook included).
		tracker.stopTracking();
		// Time to settle on top of whatever the suite allows.
		this.timeout(Math.max(this.timeout(), settleMs + 30_000));
		// Mocha starts this hook's timer once the hook returns its promise, as it did for `suiteSetup`'s.
		await Promise.resolve();
		const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
		const deadline = Date.now() + settleMs;
		let found: string[] = [];
		for (;;) {
			found = leaks();
			if (found.length === 0 || Date.now() > deadline) {
				break;
			}
			await sleep(50);
		}
		const leftProcesses = processLeaks().pids;
		tracker.stop();
		if (savedTmp === undefined) {
			delete process.env.TMPDIR;
		} else {
			process.env.TMPDIR = savedTmp;
		}
		// Clean up after a failure too, so one leaking suite does not fail the next.
		for (const pid of leftProcesses) {
			try {
				process.kill(pid, 'SIGKILL');
			} catch {
				// Already gone.
			}
		}
		fs.rmSync(privateTmp, { recursive: true, force: true, maxRetries: 10 });
		privateTmp = '';
		if (found.length > 0) {
			throw new Error(`The suite leaked:\n${found.join('\n')}`);
		}
	});

	function processLeaks(): { pids: number[]; lines: string[] } {
		const { descendants, marked } = scanProcesses(privateTmp);
		const left = new Map<number, ProcessInfo>();
		for (const p of descendants) {
			if (!baselineChildren.has(p.pid)) {
				left.set(p.pid, p);
			}
		}
		for (const p of marked) {
			left.set(p.pid, p);
		}
		const live = [...left.values()].filter((p) => p.state !== 'Z' || p.ppid === process.pid);
		return { pids: live.map((p) => p.pid), lines: live.map((p) => `process ${p.pid} (parent ${p.ppid}, group ${p.pgrp}, state ${p.state}): ${p.cmdline}`) };
	}

	function leaks(): string[] {
		const found = processLeaks().lines;
		for (const [kind, n] of countActive()) {
			const before = baselineActive.get(kind) ?? 0;
			if (n > before) {
				found.push(`${n - before} more active ${kind} than before the suite (process.getActiveResourcesInfo)`);
			}
		}
		found.push(...tracker.leftOver());
		let left: string[] = [];
		try {
			left = fs.readdirSync(privateTmp);
		} catch {
			found.push(`the suite's temp folder ${privateTmp} was removed`);
		}
		found.push(...left.filter((name) => !options.othersTemp?.test(name)).map((name) => `temp entry ${name} left in the temp folder`));
		return found;
	}
}

/**
 * Kinds `getActiveResourcesInfo` reports that are not leaks: requests in flight (fs, dns, writes) end by
 * themselves and belong to a handle or a promise we check anyway; the terminal's stdout/stderr are mocha's.
 */
const transientKinds = /ReqCallback|ReqWrap|ReqPromise|^TTYWrap$|WriteWrap|ShutdownWrap/;

function countActive(): Map<string, number> {
	const counts = new Map<string, number>();
	for (const kind of process.getActiveResourcesInfo()) {
		if (!transientKinds.test(kind)) {
			counts.set(kind, (counts.get(kind) ?? 0) + 1);
		}
	}
	return counts;
}

/**
 * Async resources that must end explicitly (cleared or closed), whether or not they keep the event loop alive.
 * Promises, ticks and requests are left out: they end by themselves or on garbage collection.
 */
// Not FILEHANDLE: node reports a FileHandle's end only when it is garbage collected, closed or not.
const trackedTypes = new Set(['Timeout', 'Immediate', 'TCPWRAP', 'TCPSERVERWRAP', 'PIPEWRAP', 'PIPESERVERWRAP', 'PROCESSWRAP', 'UDPWRAP', 'FSEVENTWRAP', 'STATWATCHER', 'SIGNALWRAP', 'WORKER']);

class ResourceTracker {
	private readonly live = new Map<number, { type: string; stack: string }>();
	private tracking = false;
	private readonly hook = createHook({
		init: (asyncId, type) => {
			if (this.tracking && trackedTypes.has(type)) {
				const holder: { stack?: string } = {};
				const limit = Error.stackTraceLimit;
				Error.stackTraceLimit = 40; // past node's own frames (net, child_process) to the caller
				Error.captureStackTrace(holder);
				Error.stackTraceLimit = limit;
				this.live.set(asyncId, { type, stack: holder.stack ?? '' });
			}
		},
		destroy: (asyncId) => {
			this.live.delete(asyncId);
		},
	});

	start(): void {
		this.live.clear();
		this.tracking = true;
		this.hook.enable();
	}

	/** Stops noting new resources (the check's own), keeps noting ends. */
	stopTracking(): void {
		this.tracking = false;
	}

	stop(): void {
		this.hook.disable();
	}

	leftOver(): string[] {
		return [...this.live.values()].map((r) => `${r.type} not ended, created at:\n${creationSite(r.stack)}`);
	}
}

/** The first frames of a creation stack that are not node's internals or this file. */
function creationSite(stack: string): string {
	return stack
		.split('\n')
		.slice(1)
		.filter((l) => !l.includes('node:') && !l.includes('leakCheck'))
		.slice(0, 6)
		.join('\n');
}

interface ProcessInfo {
	pid: number;
	ppid: number;
	pgrp: number;
	state: string;
	cmdline: string;
}

/** This process's descendants, and every process whose environment has `TMPDIR=marker` (Linux /proc). */
function scanProcesses(marker: string): { descendants: ProcessInfo[]; marked: ProcessInfo[] } {
	if (process.platform !== 'linux') {
		return { descendants: [], marked: [] };
	}
	const all: ProcessInfo[] = [];
	const marked: ProcessInfo[] = [];
	const needle = `TMPDIR=${marker}\0`;
	for (const entry of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(entry) || Number(entry) === process.pid) {
			continue;
		}
		let info: ProcessInfo;
		let environ = '';
		try {
			const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
			// After "pid (comm) ": state, ppid, pgrp, ... (comm may hold spaces and parentheses).
			const [state, ppid, pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
			const cmdline = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
			info = { pid: Number(entry), ppid: Number(ppid), pgrp: Number(pgrp), state: state!, cmdline: cmdline || stat.slice(stat.indexOf('('), stat.lastIndexOf(')') + 1) };
		} catch {
			continue; // exited while we looked
		}
		try {
			environ = fs.readFileSync(`/proc/${entry}/environ`, 'latin1');
		} catch {
			// Not ours to read: then not started by us either.
		}
		all.push(info);
		if (`${environ}\0`.includes(needle)) {
			marked.push(info);
		}
	}
	const descendants: ProcessInfo[] = [];
	const parents = new Set([process.pid]);
	for (let grew = true; grew; ) {
		grew = false;
		for (const p of all) {
			if (parents.has(p.ppid) && !parents.has(p.pid)) {
				parents.add(p.pid);
				descendants.push(p);
				grew = true;
			}
		}
	}
	return { descendants, marked };
}
