/**
 * Composition root. `activate` wires the parts together and returns fast; opening the store happens in the
 * background. Exactly one disposable, the ExtensionRoot, goes into `context.subscriptions`.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { AcpBackend } from './agents/acp/acpBackend';
import type { AgentDefinition } from './agents/definitions';
import { PermissionBroker } from './agents/permissions';
import { AgentPool } from './agents/pool';
import { Disposable } from './common/lifecycle';
import { errorMessage } from './common/log';
import { SecretRedactor } from './common/redact';
import { AgentSessionsRepo } from './db/agentSessionsRepo';
import { SessionsRepo } from './db/sessionsRepo';
import { WorktreesRepo } from './db/worktreesRepo';
import { resolveWorktreesSetting } from './worktrees/paths';
import { rebuildFromGit } from './worktrees/rebuild';
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
import { applyGitProcessLimit, setupCommandFor, userSetting } from './vscode/userSettings';
import { chatCommandHandlers } from './webview/host/chatCommands';
import { chatViewType } from './webview/host/chatPanel';
import { ChatPanelManager, ChatPanelSerializer } from './webview/host/chatPanels';
import type { ChatService } from './webview/host/chatService';
import { PoolChatService } from './webview/host/poolChatService';

/** What `activate` returns in test mode, so integration tests reach the parts without globals. */
export interface AgentTabsTestApi {
	readonly stateDir: string;
	/** Resolves when the store is open (or rejects with why it could not be opened). */
	readonly ready: Promise<{ store: Store; sessions: SessionsRepo; pool: AgentPool; permissions: PermissionBroker }>;
	/** Chat tabs: open, restore (as the serializer would) and inspect panels; the port they talk to. */
	readonly chats: { manager: ChatPanelManager; serializer: ChatPanelSerializer; service: Promise<ChatService> };
}

class ExtensionRoot extends Disposable {
	/** Every secret value this window knows (the host's secret-looking variables, keys handed to agents). */
	private readonly redactor = new SecretRedactor();
	readonly logger = this._register(new OutputChannelLogger('Agent Tabs', this.redactor));
	readonly stateDir: string;
	readonly ready: Promise<{ store: Store; sessions: SessionsRepo; pool: AgentPool; permissions: PermissionBroker }>;
	private store: Store | undefined;
	private pool: AgentPool | undefined;
	private readonly apiKeys: ApiKeys;
	private definitions: AgentDefinition[];
	private readonly permissions: PermissionBroker;
	chats: AgentTabsTestApi['chats'] | undefined;

	constructor(private readonly context: vscode.ExtensionContext) {
		super();
		this.apiKeys = new ApiKeys(context.secrets);
		this.definitions = readDefinitions(this.logger);
		this.permissions = this._register(new PermissionBroker(readPermissionSettings(), this.logger));
		this._register(applyGitProcessLimit());
		// A request whose chat tab is in view is answered on its card there; otherwise it is also a notification.
		this._register(this.permissions.onDidRequest((request) => this.chats?.manager.isVisible(request.chatId) || showPermissionRequest(this.permissions, request, this.definitions)));
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
				handlers ??= sessionCommandHandlers({ service: () => this.worktreeService(store), sessions, worktrees: new WorktreesRepo(store), logger: this.logger, durable: () => store.durable() });
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

		// Chat tabs (issue 14). PoolChatService is the adapter the task dispatcher replaces (issues 11/12).
		const chatService: Promise<ChatService> = this.ready.then(({ store, pool }) =>
			this._register(
				new PoolChatService({ store, pool, permissions: this.permissions, definitions: () => this.definitions, logger: this.logger, rewind: (cwd, ref) => this.worktreeService(store).rewind(cwd, ref) }),
			),
		);
		const chatManager = this._register(new ChatPanelManager(context.extensionUri, chatService, this.logger));
		const chatSerializer = new ChatPanelSerializer(chatManager);
		this.chats = { manager: chatManager, serializer: chatSerializer, service: chatService };
		this._register(vscode.window.registerWebviewPanelSerializer(chatViewType, chatSerializer));
		const chatCommands = chatCommandHandlers({
			manager: chatManager,
			service: () => chatService,
			sessions: () => this.ready.then((r) => r.sessions),
			definitions: () => this.definitions,
			hasKey: (env) => this.apiKeys.has(env),
			durable: () => this.ready.then((r) => r.store.durable()),
		});
		this._register(
			registerCommands(this.logger, {
				[commandIds.newChat]: chatCommands.newChat,
				[commandIds.openChat]: chatCommands.openChat,
				[commandIds.renameChat]: chatCommands.renameChat,
				[commandIds.closeChat]: chatCommands.closeChat,
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
				redactor: this.redactor,
				leaseOwner: `a VS Code window (${vscode.env.appName})`,
				permissions: this.permissions,
				idleTimeoutMs: idleMinutes * 60_000,
				checkpoint: (cwd, name) => this.worktreeService(store).checkpoint(cwd, name),
			});
			this._register(this.pool);
			if (store.recovery.damaged) {
				// Before anyone reads the sessions: bring back what git knows, then say so loudly.
				await this.rebuildDamagedState(store);
			}
			void vscode.commands.executeCommand('setContext', contextKeys.storeReady, true);
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

	/** `agentTabs.worktrees.root` as a folder (`~` and paths relative to the first workspace folder resolved). */
	private worktreesRoot(): string | undefined {
		// Machine-scoped: a repository's own settings cannot move worktrees (see userSettings.ts).
		const setting = userSetting<string>(settingIds.worktreesRoot, '');
		const base = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath ?? os.homedir();
		return resolveWorktreesSetting(setting, base);
	}

	/** A service reading the current worktree settings (root, files to copy, setup command). */
	private worktreeService(store: Store): WorktreeService {
		const c = vscode.workspace.getConfiguration(settingIds.section);
		return new WorktreeService(store, this.logger, {
			root: this.worktreesRoot(),
			copy: c.get<string[]>(settingIds.worktreesCopy, ['.env*']),
			setupCommandFor: (repo) => setupCommandFor(this.context.globalState, repo),
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
		// First what an interrupted window or command left half-done, in every repository the store knows.
		try {
			const r = await this.worktreeService(store).recoverInterrupted();
			if (r.completedRemovals.length > 0) {
				void vscode.window.showInformationMessage(
					vscode.l10n.t('Agent Tabs finished removing {0}, which was interrupted; its work was saved first. Restore Session brings it back.', r.completedRemovals.join(', ')),
				);
			}
		} catch (e) {
			this.logger.error(`[Worktrees][recover] ${errorMessage(e)}`);
		}
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

	/**
	 * The database (or its journal) was damaged: rebuild the sessions git still knows from the window's
	 * folders and the worktrees folder, then an error notification naming the files kept aside.
	 */
	private async rebuildDamagedState(store: Store): Promise<void> {
		const damaged = store.recovery.damaged!;
		let rebuilt = '';
		try {
			const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
			const report = await rebuildFromGit({ store, service: this.worktreeService(store), logger: this.logger, repos: folders, root: this.worktreesRoot() });
			store.rebuildDone();
			rebuilt = vscode.l10n.t('Rebuilt from git: {0} sessions and worktrees ({1}).', report.rebuilt.length, report.rebuilt.map((r) => r.title).join(', ') || '-');
			for (const problem of report.problems) {
				this.logger.error(`[ExtensionRoot][rebuild] ${problem}`);
			}
		} catch (e) {
			this.logger.error(`[ExtensionRoot][rebuild] ${errorMessage(e)}`);
			rebuilt = vscode.l10n.t('Rebuilding the sessions from git failed: {0}', errorMessage(e));
		}
		this.logger.error(`[ExtensionRoot][openStore] damaged state: ${damaged.problems.join(' ')}`);
		const message = vscode.l10n.t(
			'Agent Tabs\' database was damaged and could not be used; nothing was deleted. The damaged file is kept as {0}. {1} Chats and transcripts are not in git and were not rebuilt.',
			damaged.keptAs.join(', ') || this.stateDir,
			rebuilt,
		);
		const showFolder = vscode.l10n.t('Show State Folder');
		void vscode.window.showErrorMessage(message, showFolder, vscode.l10n.t('Show Logs')).then((choice) => {
			if (choice === showFolder) {
				void this.showStateFolder();
			} else if (choice) {
				this.logger.channel.show();
			}
		});
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

	/** Shutdown order: the agent pool (cancel, SIGTERM, SIGKILL), then the store (final fold, lock released). */
	async shutdown(): Promise<void> {
		// First: tabs that go away with the window from here on are not closes (their contexts survive).
		this.chats?.manager.beginShutdown();
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
		return { stateDir: root.stateDir, ready: root.ready, chats: root.chats! };
	}
	return undefined;
}

export async function deactivate(): Promise<void> {
	const r = root;
	root = undefined;
	await r?.shutdown();
}
