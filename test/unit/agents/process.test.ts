import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnAgent, terminate, type SpawnedAgent } from '../../../src/agents/process';
import { removeDir, tempDir } from '../helpers';

/** Whether `pid` runs: a zombie (dead, waiting to be reaped) does not. */
function running(pid: number): boolean {
	try {
		process.kill(pid, 0);
	} catch {
		return false;
	}
	if (process.platform !== 'linux') {
		return true;
	}
	try {
		const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		return !['Z', 'X'].includes(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]);
	} catch {
		return false;
	}
}

/**
 * A real agent process that starts a child of its own in its process group, as claude-agent-acp starts the
 * native `claude`: the child prints its pid, then behaves on SIGTERM as `onTerm` (node code) says. With
 * `leaderExits`, the agent exits by itself once the child runs, leaving it behind.
 */
async function agentWithChild(onTerm: string, leaderExits = false): Promise<{ agent: SpawnedAgent; childPid: number }> {
	const grandchild = `process.on('SIGTERM', () => { ${onTerm} }); setInterval(() => {}, 1000); process.stdout.write(process.pid + '\\n');`;
	const leader = `
		const g = require('node:child_process').spawn(process.execPath, ['-e', ${JSON.stringify(grandchild)}], { stdio: ['ignore', 'pipe', 'inherit'] });
		g.stdout.once('data', (d) => process.stdout.write(d, () => { if (${leaderExits}) { process.exit(0); } }));
		setInterval(() => {}, 1000);`;
	const agent = await spawnAgent(process.execPath, ['-e', leader], { cwd: process.cwd(), env: process.env });
	const childPid = await new Promise<number>((resolve, reject) => {
		agent.child.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
		agent.child.once('exit', () => reject(new Error(`the agent exited before its child ran: ${agent.stderr.toString()}`)));
	});
	assert.ok(running(childPid));
	return { agent, childPid };
}

suite('agents/process: ending an agent ends its whole process tree', function () {
	this.timeout(20_000);
	if (process.platform === 'win32') {
		return; // process groups are a POSIX notion
	}
	let dir = '';
	let leftover: number | undefined;
	setup(() => {
		dir = tempDir();
		leftover = undefined;
	});
	teardown(() => {
		if (leftover !== undefined && running(leftover)) {
			process.kill(leftover, 'SIGKILL');
		}
		removeDir(dir);
	});

	test('a child still finishing its SIGTERM work is waited for: nothing writes in the folder after terminate', async () => {
		const marker = path.join(dir, 'written-on-exit');
		const { agent, childPid } = await agentWithChild(`setTimeout(() => { require('node:fs').writeFileSync(${JSON.stringify(marker)}, 'late'); process.exit(0); }, 400);`);
		leftover = childPid;
		await terminate(agent, 5000);
		assert.ok(!running(childPid), 'the child has exited');
		assert.ok(fs.existsSync(marker), 'the child finished its exit before terminate returned');
	});

	test('a child that ignores SIGTERM is killed after the grace period, though the agent itself exited at once', async () => {
		const { agent, childPid } = await agentWithChild('');
		leftover = childPid;
		await terminate(agent, 300);
		assert.ok(!running(childPid));
	});

	test('an agent that already exited by itself has the children it left behind ended', async () => {
		const { agent, childPid } = await agentWithChild('', true);
		leftover = childPid;
		await agent.exited;
		assert.ok(running(childPid), 'the child outlived its agent');
		await terminate(agent, 300);
		assert.ok(!running(childPid));
	});

	test('terminate of an agent whose tree has ended returns at once', async () => {
		const agent = await spawnAgent(process.execPath, ['-e', ''], { cwd: process.cwd(), env: process.env });
		await agent.exited;
		await terminate(agent, 60_000);
	});
});
