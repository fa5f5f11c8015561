import * as path from 'node:path';
import { AcpBackend } from '../../../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../../../src/agents/definitions';
import { PermissionBroker } from '../../../src/agents/permissions';
import { AgentPool } from '../../../src/agents/pool';
import type { Logger } from '../../../src/common/log';
import { SessionsRepo } from '../../../src/db/sessionsRepo';
import { Store } from '../../../src/db/store';
import { SessionChatResolver } from '../../../src/tasks/chatResolver';
import { Dispatcher, type DispatcherOptions } from '../../../src/tasks/dispatcher';
import { TaskTurnAdapter } from '../../../src/tasks/taskTurnAdapter';
import { TurnRunner } from '../../../src/tasks/turnRunner';
import { WorktreeService } from '../../../src/worktrees/worktreeService';
import { gitEnv } from '../gitRepo';

/** Where a test core keeps everything: one temp folder. */
export interface CoreFolders {
	/** The temp folder (git's HOME too). */
	dir: string;
	state: string;
	worktrees: string;
	agentScript: string;
	wasmPath: string;
}

export function coreFolders(dir: string, repoRootDir: string): CoreFolders {
	return {
		dir,
		state: path.join(dir, 'state'),
		worktrees: path.join(dir, 'worktrees'),
		agentScript: path.join(repoRootDir, 'out', 'test', 'fixtures', 'acpAgent.js'),
		wasmPath: path.join(repoRootDir, 'node_modules', 'sql.js', 'dist', 'sql-wasm.wasm'),
	};
}

export function scriptedAgent(folders: CoreFolders, id = 'scripted'): AgentDefinition {
	return { id, label: `Scripted ${id}`, transport: 'acp', command: process.execPath, args: [folders.agentScript], env: { SCRIPTED_AGENT_STATE_DIR: path.join(folders.dir, 'agent-state') } };
}

/**
 * The whole core as the factory will wire it, with real parts: store (sql.js + journal), worktrees (git),
 * pool (scripted ACP agents as child processes), the turn runner, the dispatcher over it and the session
 * resolver. Closing follows the shutdown order: dispatcher, turns, pool, store.
 */
export class TaskCore {
	private constructor(
		readonly store: Store,
		readonly pool: AgentPool,
		readonly turns: TurnRunner,
		readonly broker: PermissionBroker,
		readonly worktrees: WorktreeService,
		readonly dispatcher: Dispatcher,
		readonly sessions: SessionsRepo,
	) {}

	static async open(folders: CoreFolders, logger: Logger, options: { definitions?: () => AgentDefinition[]; dispatcher?: Partial<DispatcherOptions> } = {}): Promise<TaskCore> {
		const store = await Store.open({ dir: folders.state, wasmPath: folders.wasmPath, logger, owner: 'a task test core' });
		const broker = new PermissionBroker({ default: 'allow', timeoutMs: 2000 }, logger);
		const pool = new AgentPool({
			store,
			logger,
			backends: { acp: new AcpBackend({ logger, startTimeoutMs: 10_000, cancelGraceMs: 1000, killGraceMs: 1000 }) },
			definitions: options.definitions ?? (() => [scriptedAgent(folders)]),
			permissions: broker,
		});
		const turns = new TurnRunner({ store, pool, logger, flushMs: 20 });
		const worktrees = new WorktreeService(store, logger, { root: folders.worktrees, env: gitEnv(folders.dir) });
		const dispatcher = new Dispatcher({ store, logger, runner: new TaskTurnAdapter(turns, store), chats: new SessionChatResolver(store, worktrees, logger), stopTimeoutMs: 10_000, ...options.dispatcher });
		return new TaskCore(store, pool, turns, broker, worktrees, dispatcher, new SessionsRepo(store));
	}

	async close(): Promise<void> {
		await this.dispatcher.stop();
		this.dispatcher.dispose();
		await this.turns.shutdown();
		this.turns.dispose();
		await this.pool.shutdown();
		this.broker.dispose();
		await this.store.close();
	}
}
