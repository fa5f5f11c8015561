/**
 * `npm run bench`: every benchmark, one JSON document on stdout (progress on stderr). Each compares against
 * a baseline measured in the same run, because these machines are shared and noisy. `BENCH_ONLY=store` (or a
 * comma-separated subset of store,agents,worktrees,tasks,chat) runs only those; each file documents its own knobs.
 */
import * as os from 'node:os';
import { runAgentBench } from './agentBench';
import { runChatBench } from './chatBench';
import { runStoreBench } from './storeBench';
import { runTaskBench } from './taskBench';
import { runWorktreeBench } from './worktreeBench';

async function main(): Promise<void> {
	const only = (process.env.BENCH_ONLY ?? 'store,agents,worktrees,tasks,chat').split(',');
	const result: Record<string, unknown> = { machine: { node: process.version, platform: process.platform, cpus: os.cpus().length }, when: new Date().toISOString() };
	if (only.includes('store')) {
		result.store = await runStoreBench();
	}
	if (only.includes('agents')) {
		result.agents = await runAgentBench();
	}
	if (only.includes('worktrees')) {
		result.worktrees = await runWorktreeBench();
	}
	if (only.includes('tasks')) {
		result.tasks = await runTaskBench();
	}
	if (only.includes('chat')) {
		result.chat = await runChatBench();
	}
	process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

main().catch((e) => {
	process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
	process.exit(1);
});
