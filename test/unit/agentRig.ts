import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { AcpBackend } from '../../src/agents/acp/acpBackend';
import type { AgentDefinition } from '../../src/agents/definitions';
import { PermissionBroker, type PermissionPolicySettings } from '../../src/agents/permissions';
import { AgentPool, type AgentPoolOptions } from '../../src/agents/pool';
import { SessionsRepo } from '../../src/db/sessionsRepo';
import type { Store } from '../../src/db/store';
import { TranscriptRepo } from '../../src/db/transcriptRepo';
import { TurnRunner, type TurnRunnerOptions } from '../../src/tasks/turnRunner';
import { WorktreeService } from '../../src/worktrees/worktreeService';
import { gitEnv, makeRepo } from './gitRepo';
import { MemoryLogger, openStore, removeDir, repoRoot, tempDir } from './helpers';

export const agentScript = path.join(repoRoot, 'out', 'test', 'fixtures', 'acpAgent.js');

/** The scripted agent's process id, from its session id. */
export function pidOf(backendSessionId: string): number {
	const m = /^scripted-(\d+)-/.exec(backendSessionId);
	assert.ok(m, `unexpected session id ${backendSessionId}`);
	return Number(m[1]);
}

export function alive(pid: number): boolean {
	try {
		process.kill(pid, 0);
		return true;
	} catch {
		return false;
	}
}

/** A pool and the turn runner over it, as the core builds them. */
export interface Rig {
	pool: AgentPool;
	turns: TurnRunner;
	broker: PermissionBroker;
	/** Turns first, then the agent processes: the core's order. */
	shutdown(): Promise<void>;
}

export type RigOptions = Partial<AgentPoolOptions> & Partial<Pick<TurnRunnerOptions, 'checkpoint' | 'leaseOwner' | 'silenceTimeoutMs'>> & { permissionSettings?: PermissionPolicySettings; defs?: () => AgentDefinition[] };

/**
 * A real store, a real git repository with one session and its worktree, and pools with turn runners over
 * the scripted ACP agent (a real child process). Registers setup and teardown in the calling suite.
 */
export class AgentRig {
	dir!: string;
	repo!: string;
	/** The real worktree of the test's session: where agents work. */
	work!: string;
	sessionId!: string;
	store!: Store;
	sessions!: SessionsRepo;
	logger!: MemoryLogger;
	agentEnv!: Record<string, string>;
	private rigs: Rig[] = [];

	constructor() {
		setup(async () => {
			this.dir = tempDir('agent-tabs-pool-');
			this.repo = makeRepo(path.join(this.dir, 'repo'));
			this.agentEnv = { SCRIPTED_AGENT_STATE_DIR: path.join(this.dir, 'agent-state') };
			this.logger = new MemoryLogger();
			this.store = await openStore(path.join(this.dir, 'state'));
			this.sessions = new SessionsRepo(this.store);
			const created = await this.worktreeService().createSession({ repo: this.repo, title: 't' });
			this.work = created.worktree.path;
			this.sessionId = created.session.id;
			this.rigs = [];
		});
		teardown(async () => {
			for (const r of this.rigs) {
				await r.shutdown();
				r.broker.dispose();
			}
			await this.store.close();
			removeDir(this.dir);
		});
	}

	worktreeService(): WorktreeService {
		return new WorktreeService(this.store, this.logger, { root: path.join(this.dir, 'worktrees'), env: gitEnv(this.dir) });
	}

	definitions(extraEnv: Record<string, string> = {}): AgentDefinition[] {
		return [{ id: 'scripted', label: 'Scripted', transport: 'acp', command: process.execPath, args: [agentScript], env: { ...this.agentEnv, ...extraEnv } }];
	}

	make(options: RigOptions = {}): Rig {
		const broker = new PermissionBroker(options.permissionSettings ?? { default: 'allow', timeoutMs: 2000 }, this.logger);
		const defs = options.defs ?? (() => this.definitions());
		const pool = new AgentPool({
			store: this.store,
			logger: this.logger,
			backends: { acp: new AcpBackend({ logger: this.logger, startTimeoutMs: 5000, cancelGraceMs: 1000, killGraceMs: 1000 }) },
			definitions: defs,
			permissions: broker,
			...options,
		});
		const turns = new TurnRunner({ store: this.store, pool, logger: this.logger, flushMs: 20, checkpoint: options.checkpoint, leaseOwner: options.leaseOwner, silenceTimeoutMs: options.silenceTimeoutMs });
		const rig: Rig = {
			pool,
			turns,
			broker,
			shutdown: async () => {
				await turns.shutdown();
				await pool.shutdown();
			},
		};
		this.rigs.push(rig);
		return rig;
	}

	/** A new tab in the test's session (every chat works in the session's real worktree). */
	newChat(): string {
		return this.sessions.createChat({ sessionId: this.sessionId, agent: 'scripted' }).id;
	}

	messages(turnId: string): { kind: string; content: Record<string, unknown> }[] {
		return new TranscriptRepo(this.store).listMessages(turnId).map((m) => ({ kind: m.kind, content: JSON.parse(m.content) as Record<string, unknown> }));
	}

	agentText(turnId: string): string {
		return this.messages(turnId)
			.filter((m) => m.kind === 'text')
			.map((m) => String(m.content.text))
			.join('');
	}
}
