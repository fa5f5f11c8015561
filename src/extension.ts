/**
 * Composition root. `activate` wires the parts together and returns fast; opening the store happens in the
 * background. Exactly one disposable, the ExtensionRoot, goes into `context.subscriptions`.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AcpBackend } from './agents/acp/acpBackend';
import type { AgentDefinition } from './agents/definitions';
import { PermissionBroker } from './agents/permissions';
import { AgentPool } from './agents/pool';
import { Disposable } from './common/lifecycle';
import { errorMessage } from './common/log';
import { AgentSessionsRepo } from './db/agentSessionsRepo';
import { SessionsRepo } from './db/sessionsRepo';
import { WorktreesRepo } from './db/worktreesRepo';
import { WorktreeService } from './worktrees/worktreeService';
import { sessionCommandHandlers } from './vscode/sessionCommands';
import { Store } from './db/store';
import { TranscriptRepo } from './db/transcriptRepo';
import { readDefinitions, readPermissionSettings, setApiKey, showAgents, showPermissionRequest } from './vscode/agentCommands';
import { ApiKeys } from './vscode/apiKeys';
import { registerCommands } from './vscode/commands';
import { commandIds, contextKeys, settingIds } from './vscode/ids';
import { OutputChannelLogger } from './vscode/logger';
import { SessionsView } from './vscode/sessionsView';

/** What `activate` returns in test mode, so integration tests reach the parts without globals. */
export interface AgentTabsTestApi {
	readonly stateDir: string;
	/** Resolves when the store is open (or rejects with why it could not be opened). */
	readonly ready: Promise<{ store: Store; sessions: SessionsRepo; pool: AgentPool; permissions: PermissionBroker }>;
}

class ExtensionRoot extends Disposable {
	readonly logger = this._register(new OutputChannelLogger('Agent Tabs'));
	readonly stateDir: string;
	readonly ready: Promise<{ store: Store; sessions: SessionsRepo; pool: AgentPool; permissions: PermissionBroker }>;
	private store: Store | undefined;
	private pool: AgentPool | undefined;
	private readonly apiKeys: ApiKeys;
	private definitions: AgentDefinition[];
	private readonly permissions: PermissionBroker;

	constructor(private readonly context: vscode.ExtensionContext) {
		super();
		this.apiKeys = new ApiKeys(context.secrets);
		this.definitions = readDefinitions(this.logger);
		this.permissions = this._register(new PermissionBroker(readPermissionSettings()));
		this._register(this.permissions.onDidRequest((request) => showPermissionRequest(this.permissions, request)));
		this._register(
			vscode.workspace.onDidChangeConfiguration((e) => {
				if (e.affectsConfiguration(`${settingIds.section}.${settingIds.agents}`)) {
					this.definitions = readDefinitions(this.logger);
				}
				if (e.affectsConfiguration(`${settingIds.section}.permissions`)) {
					this.permissions.updateSettings(readPermissionSettings());
				}
			}),
		);
		// Per workspace when a folder is open; otherwise the global storage, so a bare window still works.
		this.stateDir = (context.storageUri ?? context.globalStorageUri).fsPath;
		const view = this._register(new SessionsView());
		this._register(
			registerCommands(this.logger, {
				[commandIds.showLogs]: () => this.logger.channel.show(),
				[commandIds.showStateFolder]: () => this.showStateFolder(),
				[commandIds.refreshSessions]: () => view.refresh(),
				[commandIds.setApiKey]: () => setApiKey(this.apiKeys, this.definitions),
				[commandIds.showAgents]: () => showAgents(this.definitions),
			}),
		);
		this.ready = this.openStore();
		this.ready.then(
			({ store, sessions }) => {
				view.attach(store, sessions, new WorktreesRepo(store));
				void this.reconcileWorktrees(store);
			},
			() => undefined,
		);
		// Session commands are registered at once (so the palette always finds them) and wait for the store.
		let handlers: ReturnType<typeof sessionCommandHandlers> | undefined;
		const session =
			(name: keyof ReturnType<typeof sessionCommandHandlers>) =>
			async (...args: unknown[]): Promise<unknown> => {
				const { store, sessions } = await this.ready;
				handlers ??= sessionCommandHandlers({ service: () => this.worktreeService(store), sessions, worktrees: new WorktreesRepo(store), logger: this.logger });
				return handlers[name]!(...args);
			};
		this._register(
			registerCommands(this.logger, {
				[commandIds.newSession]: session('newSession'),
				[commandIds.deleteSession]: session('deleteSession'),
				[commandIds.archiveSession]: session('archiveSession'),
				[commandIds.restoreSession]: session('restoreSession'),
				[commandIds.openWorktreeInNewWindow]: session('openWorktreeInNewWindow'),
				[commandIds.revealWorktree]: session('revealWorktree'),
				[commandIds.mergeSession]: session('mergeSession'),
				[commandIds.createPullRequest]: session('createPullRequest'),
				[commandIds.showSessionRisk]: session('showSessionRisk'),
				[commandIds.attachWorktree]: session('attachWorktree'),
				[commandIds.removeWorktree]: session('removeWorktree'),
			}),
		);
	}

	private async openStore(): Promise<{ store: Store; sessions: SessionsRepo; pool: AgentPool; permissions: PermissionBroker }> {
		try {
			const store = await Store.open({
				dir: this.stateDir,
				wasmPath: path.join(this.context.extensionPath, 'dist', 'sql-wasm.wasm'),
				logger: this.logger,
				owner: `a VS Code window (${vscode.env.appName})`,
			});
			if (this.isDisposed) {
				await store.close();
				throw new Error('Agent Tabs was deactivated while its store was opening.');
			}
			this.store = store;
			// Nothing runs yet in this window: turns left running by a crash were interrupted.
			new TranscriptRepo(store).markRunningInterrupted(vscode.l10n.t('VS Code closed or crashed while this turn was running.'));
			new AgentSessionsRepo(store).markAllStopped();
			const idleMinutes = vscode.workspace.getConfiguration(settingIds.section).get<number>(settingIds.idleMinutes, 30);
			this.pool = new AgentPool({
				store,
				logger: this.logger,
				backends: { acp: new AcpBackend({ logger: this.logger }) },
				definitions: () => this.definitions,
				agentEnv: (def) => this.apiKeys.envFor(def),
				permissions: this.permissions,
				idleTimeoutMs: idleMinutes * 60_000,
				checkpoint: (cwd, name) => this.worktreeService(store).checkpoint(cwd, name),
			});
			this._register(this.pool);
			void vscode.commands.executeCommand('setContext', contextKeys.storeReady, true);
			if (store.recovery.movedAside.length > 0) {
				void this.reportRecovery(store);
			}
			return { store, sessions: new SessionsRepo(store), pool: this.pool, permissions: this.permissions };
		} catch (e) {
			this.logger.error(`[ExtensionRoot][openStore] ${errorMessage(e)}`);
			void vscode.commands.executeCommand('setContext', contextKeys.storeFailed, true);
			void vscode.window.showErrorMessage(vscode.l10n.t('Agent Tabs could not open its state: {0}', errorMessage(e)), vscode.l10n.t('Show Logs')).then((choice) => {
				if (choice) {
					this.logger.channel.show();
				}
			});
			throw e;
		}
	}

	/** A service reading the current worktree settings (root, files to copy, setup command). */
	private worktreeService(store: Store): WorktreeService {
		const c = vscode.workspace.getConfiguration(settingIds.section);
		return new WorktreeService(store, this.logger, {
			root: c.get<string>(settingIds.worktreesRoot) || undefined,
			copy: c.get<string[]>(settingIds.worktreesCopy, ['.env*']),
			setupCommand: c.get<string>(settingIds.worktreesSetupCommand) || undefined,
			checkpointsPerChat: c.get<number>(settingIds.checkpointsKeepPerChat),
			onSetupOutput: (line) => this.logger.info(`[Worktrees][setup] ${line}`),
			runningAgents: (sessionId) =>
				new SessionsRepo(store)
					.listChats(sessionId)
					.filter((chat) => this.pool?.isRunning(chat.id, chat.agent))
					.map((chat) => chat.title),
		});
	}

	/** Start-up reconciliation for each repository in the workspace: vanished folders, unknown worktrees. */
	private async reconcileWorktrees(store: Store): Promise<void> {
		for (const folder of vscode.workspace.workspaceFolders ?? []) {
			if (folder.uri.scheme !== 'file') {
				continue;
			}
			try {
				const r = await this.worktreeService(store).reconcile(folder.uri.fsPath);
				if (r.missing.length || r.adopted.length) {
					this.logger.info(`[Worktrees][reconcile] missing: ${r.missing.join(', ') || '-'}; adopted: ${r.adopted.join(', ') || '-'}`);
				}
			} catch (e) {
				this.logger.debug(`[Worktrees][reconcile] ${folder.uri.fsPath}: ${errorMessage(e)}`);
			}
		}
	}

	private async reportRecovery(store: Store): Promise<void> {
		const message = vscode.l10n.t(
			'Agent Tabs found damaged state files and started with what it could recover. Nothing was deleted: {0}',
			store.recovery.problems.join(' '),
		);
		const choice = await vscode.window.showWarningMessage(message, vscode.l10n.t('Show State Folder'));
		if (choice) {
			await this.showStateFolder();
		}
	}

	private async showStateFolder(): Promise<string> {
		const uri = vscode.Uri.file(this.stateDir);
		if (vscode.env.remoteName === undefined && vscode.env.uiKind === vscode.UIKind.Desktop) {
			await vscode.commands.executeCommand('revealFileInOS', uri);
		} else {
			// The folder is on the remote machine: the OS file manager cannot show it, so offer its path.
			const copy = vscode.l10n.t('Copy Path');
			const choice = await vscode.window.showInformationMessage(vscode.l10n.t('Agent Tabs keeps its state in {0}', this.stateDir), copy);
			if (choice === copy) {
				await vscode.env.clipboard.writeText(this.stateDir);
			}
		}
		return this.stateDir;
	}

	/** Shutdown order: the agent pool (cancel, SIGTERM, SIGKILL), then the store (final checkpoint, lock released). */
	async shutdown(): Promise<void> {
		const pool = this.pool;
		this.pool = undefined;
		await pool?.shutdown().catch((e) => this.logger.error(`[ExtensionRoot][shutdown] pool: ${errorMessage(e)}`));
		const store = this.store;
		this.store = undefined;
		if (store) {
			await store.close().catch((e) => this.logger.error(`[ExtensionRoot][shutdown] ${errorMessage(e)}`));
		}
		this.dispose();
	}
}

let root: ExtensionRoot | undefined;

export function activate(context: vscode.ExtensionContext): AgentTabsTestApi | undefined {
	root = new ExtensionRoot(context);
	context.subscriptions.push(root);
	if (context.extensionMode === vscode.ExtensionMode.Test) {
		return { stateDir: root.stateDir, ready: root.ready };
	}
	return undefined;
}

export async function deactivate(): Promise<void> {
	const r = root;
	root = undefined;
	await r?.shutdown();
}
