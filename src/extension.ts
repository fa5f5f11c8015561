/**
 * Composition root. `activate` wires the parts together and returns fast; opening the store happens in the
 * background. Exactly one disposable goes into `context.subscriptions`: one that starts the root's shutdown.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AgentDefinition } from './agents/definitions';
import { PermissionBroker } from './agents/permissions';
import { AgentTabsError } from './common/errors';
import { Disposable } from './common/lifecycle';
import { errorMessage } from './common/log';
import { SecretRedactor } from './common/redact';
import type { SessionsRepo } from './db/sessionsRepo';
import type { Store } from './db/store';
import { Core, defaultSilenceTimeoutMs } from './tasks/core';
import { resolveWorktreesSetting } from './worktrees/paths';
import { rebuildFromGit } from './worktrees/rebuild';
import type { WorktreeOptions } from './worktrees/worktreeService';
import { sessionCommandHandlers } from './vscode/sessionCommands';
import { readDefinitions, readPermissionSettings, setApiKey, showAgents, showPermissionRequest } from './vscode/agentCommands';
import { ApiKeys } from './vscode/apiKeys';
import { agentIconUri } from './vscode/agentIcons';
import { canonicalStateDir } from './vscode/stateFolder';
import { requestHandover, watchHandoverRequests, type HandoverRequest } from './db/handover';
import { StoreLockedError } from './db/lock';
import { registerCommands, type CommandHost } from './vscode/commands';
import { commandIds, contextKeys, settingIds } from './vscode/ids';
import { OutputChannelLogger } from './vscode/logger';
import { SessionsView } from './vscode/sessionsView';
import { startTasks, TasksView } from './vscode/tasksView';
import { applyGitProcessLimit, setupCommandFor, userSetting } from './vscode/userSettings';
import { chatCommandHandlers } from './webview/host/chatCommands';
import { chatViewType } from './webview/host/chatPanel';
import { ChatPanelManager, ChatPanelSerializer } from './webview/host/chatPanels';
import type { ChatService } from './webview/host/chatService';
import { TaskChatService } from './webview/host/taskChatService';

/** What `activate` returns in test mode, so integration tests reach the parts without globals. */
export interface AgentTabsTestApi {
	readonly stateDir: string;
	/** Resolves when the store is open (or rejects with why it could not be opened). */
	readonly ready: Promise<CoreParts>;
	/** The worktree service the session commands use, with this window's settings (root, setup command). */
	worktreeService(): Promise<Core['worktrees']>;
	/** Chat tabs: open, restore (as the serializer would) and inspect panels; the port they talk to. */
	readonly chats: { manager: ChatPanelManager; serializer: ChatPanelSerializer; service: Promise<ChatService> };
	/** The Tasks view's tree data provider. */
	readonly tasksView: TasksView;
	/** The Sessions view's tree data provider (its TreeView as `treeView`). */
	readonly sessionsView: SessionsView;
}

/** The core's parts, once the store is open (`pool` for agent sessions, `turns` to run turns). */
export interface CoreParts {
	store: Store;
	sessions: SessionsRepo;
	pool: Core['pool'];
	turns: Core['turns'];
	permissions: PermissionBroker;
	/** Runs every task; started by this window once the store is open. */
	dispatcher: Core['dispatcher'];
}

/** How this window names itself as the holder of the state and of worktree leases. */
const windowOwnerPrefix = 'a VS Code window';
const windowOwner = `${windowOwnerPrefix} (${vscode.env.appName})`;

class ExtensionRoot extends Disposable {
	/** Every secret value this window knows (the host's secret-looking variables, keys handed to agents). */
	private readonly redactor = new SecretRedactor();
	readonly logger = this._register(new OutputChannelLogger('Agent Tabs', this.redactor));
	/** How every command reports a failure: logged, and a notification, both without a known secret. */
	private readonly commandHost: CommandHost = { vscode, logger: this.logger, redactor: this.redactor };
	readonly stateDir: string;
	private readonly handsOver: boolean;
	/** Replaced by a rejection once this window handed its state to another one. */
	ready: Promise<CoreParts>;
	private core: Core | undefined;
	private readonly apiKeys: ApiKeys;
	/** Settles once the redactor knows every key in SecretStorage; the store opens after it. */
	private readonly keysKnown: Promise<void>;
	private definitions: AgentDefinition[];
	private readonly permissions: PermissionBroker;
	chats: AgentTabsTestApi['chats'] | undefined;
	tasksView: TasksView | undefined;
	sessionsView: SessionsView | undefined;

	constructor(private readonly context: vscode.ExtensionContext) {
		super();
		// Every stored key is known to the redactor (logs, transcripts, task rows) before the store opens.
		this.apiKeys = new ApiKeys(context.secrets, this.redactor);
		this.definitions = readDefinitions(this.logger);
		this._register(this.apiKeys.watch((e) => this.logger.error(`[ExtensionRoot][apiKeys] ${errorMessage(e)}`)));
		this.keysKnown = this.registerApiKeys();
		this.permissions = this._register(new PermissionBroker(readPermissionSettings(), this.logger));
		this._register(applyGitProcessLimit());
		// A request whose chat tab is in view is answered on its card there; otherwise it is also a notification.
		this._register(this.permissions.onDidRequest((request) => this.chats?.manager.isVisible(request.chatId) || showPermissionRequest(this.permissions, request, this.definitions)));
		this._register(
			vscode.workspace.onDidChangeConfiguration((e) => {
				if (e.affectsConfiguration(`${settingIds.section}.${settingIds.agents}`)) {
					this.definitions = readDefinitions(this.logger);
					void this.registerApiKeys();
				}
				if (e.affectsConfiguration(`${settingIds.section}.permissions`)) {
					this.permissions.updateSettings(readPermissionSettings());
				}
			}),
		);
		// Per workspace when a folder is open (its own folder, even when VS Code gave this host `<id>-1`);
		// otherwise the global storage, so a bare window still works.
		this.stateDir = context.storageUri ? canonicalStateDir(context.storageUri.fsPath) : context.globalStorageUri.fsPath;
		// Windows of one workspace hand its state to the newest (a refreshed browser tab leaves the old host
		// running); bare windows share the global storage and do not take it from each other.
		this.handsOver = context.storageUri !== undefined;
		const view = (this.sessionsView = this._register(new SessionsView()));
		this._register(
			registerCommands(this.commandHost, {
				[commandIds.showLogs]: () => this.logger.channel.show(),
				[commandIds.showStateFolder]: () => this.showStateFolder(),
				[commandIds.refreshSessions]: () => view.refresh(),
				[commandIds.setApiKey]: () => setApiKey(this.apiKeys, this.definitions),
				[commandIds.showAgents]: () => showAgents(this.definitions),
			}),
		);
		this.ready = this.openStore();
		this.ready.then(
			() => {
				const core = this.core!;
				view.attach(core.store, core.sessions, core.worktreeRows);
				void this.reconcileWorktrees(core);
			},
			() => undefined,
		);
		// Tasks (issue 12): the view, its commands, and this window runs the queue once the store is open.
		const tasksView = (this.tasksView = this._register(new TasksView()));
		this._register(
			startTasks({
				logger: this.logger,
				commandHost: this.commandHost,
				view: tasksView,
				ready: () => this.ready,
				definitions: () => this.definitions,
				openChat: (chatId) => vscode.commands.executeCommand(commandIds.openChat, chatId),
			}),
		);
		// Session commands are registered at once (so the palette always finds them) and wait for the store.
		let handlers: ReturnType<typeof sessionCommandHandlers> | undefined;
		const session =
			(name: keyof ReturnType<typeof sessionCommandHandlers>) =>
			async (...args: unknown[]): Promise<unknown> => {
				await this.ready;
				const core = this.core!;
				handlers ??= sessionCommandHandlers({
					service: () => core.worktrees,
					sessions: core.sessions,
					worktrees: core.worktreeRows,
					logger: this.logger,
					durable: () => core.store.durable(),
					closeChatTabs: (chatIds) => chatIds.forEach((id) => this.chats?.manager.get(id)?.panel.dispose()),
				});
				return handlers[name]!(...args);
			};
		this._register(
			registerCommands(this.commandHost, {
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

		// Chat tabs (issue 14): every message is a task of the one dispatcher (issue 12).
		const chatService: Promise<ChatService> = this.ready.then(({ store, pool, turns, dispatcher }) =>
			this._register(
				new TaskChatService({ store, pool, turns, dispatcher, permissions: this.permissions, definitions: () => this.definitions, logger: this.logger, rewind: (cwd, ref) => this.core!.worktrees.rewind(cwd, ref), vscode }),
			),
		);
		const chatManager = this._register(
			new ChatPanelManager(context.extensionUri, chatService, this.logger, undefined, (agent) => agentIconUri(context.extensionUri, this.definitions.find((d) => d.id === agent)), context.workspaceState),
		);
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
			registerCommands(this.commandHost, {
				[commandIds.newChat]: chatCommands.newChat,
				[commandIds.openChat]: chatCommands.openChat,
				[commandIds.renameChat]: chatCommands.renameChat,
				[commandIds.closeChat]: chatCommands.closeChat,
			}),
		);
	}

	/** Gives the redactor every stored key; a failure is logged (agents then cannot get the key either). */
	private registerApiKeys(): Promise<void> {
		return this.apiKeys.registerAll(this.definitions).catch((e: unknown) => this.logger.error(`[ExtensionRoot][apiKeys] could not read the stored API keys: ${errorMessage(e)}`));
	}

	private async openStore(): Promise<CoreParts> {
		try {
			// No prompt is stored before the redactor knows every key a user might paste into one.
			await this.keysKnown;
			const idleMinutes = vscode.workspace.getConfiguration(settingIds.section).get<number>(settingIds.idleMinutes, 30);
			const core = await this.openCoreTakingOver(
				{ dir: this.stateDir, wasmPath: path.join(this.context.extensionPath, 'dist', 'sql-wasm.wasm') },
				{
					logger: this.logger,
					owner: windowOwner,
					interruptedTurnReason: vscode.l10n.t('VS Code closed or crashed while this turn was running.'),
					worktrees: this.worktreeOptions(),
					definitions: () => this.definitions,
					agentEnv: (def) => this.apiKeys.envFor(def),
					redactor: this.redactor,
					permissions: this.permissions,
					idleTimeoutMs: idleMinutes * 60_000,
					// Read at each turn's start, so a changed setting counts from the next turn on.
					silenceTimeoutMs: () => Math.max(0, vscode.workspace.getConfiguration(settingIds.section).get<number>(settingIds.silenceMinutes, defaultSilenceTimeoutMs / 60_000)) * 60_000,
				},
			);
			if (this.isDisposed) {
				await core.shutdown();
				throw new Error('Agent Tabs was deactivated while its store was opening.');
			}
			this.core = core;
			// Shutdown ends it in order; this ends its agent processes if the root is disposed without one.
			this._register(core);
			if (core.store.recovery.damaged) {
				// Before anyone reads the sessions: bring back what git knows, then say so loudly.
				await this.rebuildDamagedState(core);
			}
			void vscode.commands.executeCommand('setContext', contextKeys.storeReady, true);
			return { store: core.store, sessions: core.sessions, pool: core.pool, turns: core.turns, permissions: this.permissions, dispatcher: core.dispatcher };
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

	/** Opens the core; a live VS Code window of this workspace that holds the store is asked to hand it over first. */
	private async openCoreTakingOver(...args: Parameters<typeof Core.open>): Promise<Core> {
		let core: Core;
		try {
			core = await Core.open(...args);
		} catch (e) {
			if (!(e instanceof StoreLockedError) || !this.handsOver || !e.holder.owner.startsWith(windowOwnerPrefix)) {
				throw e;
			}
			this.logger.info(`[ExtensionRoot][openStore] ${e.holder.owner} (pid ${e.holder.pid}) holds the state; asking it to hand over`);
			if (!(await requestHandover(this.stateDir, e.lockFile, windowOwner))) {
				throw e;
			}
			core = await Core.open(...args);
		}
		if (this.handsOver) {
			this._register(watchHandoverRequests(this.stateDir, (request) => this.handOver(request)));
		}
		return core;
	}

	/** Another window of this workspace asked for the state: stop, close the store, and say so here. */
	private async handOver(request: HandoverRequest): Promise<void> {
		this.logger.warn(`[ExtensionRoot][handOver] ${request.owner} (pid ${request.pid}) takes over the state; this window lets go`);
		const moved = new AgentTabsError('store/handedOver', vscode.l10n.t('Agent Tabs now runs in another window of this workspace. Reload this window to use it here.'));
		this.ready = Promise.reject(moved);
		this.ready.catch(() => undefined);
		void vscode.commands.executeCommand('setContext', contextKeys.storeReady, false);
		await this.shutdownParts();
		const reload = vscode.l10n.t('Reload Window');
		void vscode.window.showWarningMessage(moved.message, reload).then((choice) => choice && vscode.commands.executeCommand('workbench.action.reloadWindow'));
	}

	/** `agentTabs.worktrees.root` as a folder (`~` and paths relative to the first workspace folder resolved). */
	private worktreesRoot(): string | undefined {
		// Machine-scoped: a repository's own settings cannot move worktrees (see userSettings.ts).
		const setting = userSetting<string>(settingIds.worktreesRoot, '');
		const base = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file')?.uri.fsPath ?? os.homedir();
		return resolveWorktreesSetting(setting, base);
	}

	/**
	 * The options of the window's one worktree service: each field reads the current setting when the service
	 * uses it, so a changed setting applies to the next operation without a new service.
	 */
	private worktreeOptions(): WorktreeOptions {
		const config = (): vscode.WorkspaceConfiguration => vscode.workspace.getConfiguration(settingIds.section);
		const worktreesRoot = (): string | undefined => this.worktreesRoot();
		return {
			get root() {
				return worktreesRoot();
			},
			get copy() {
				return config().get<string[]>(settingIds.worktreesCopy, ['.env*']);
			},
			get checkpointsPerChat() {
				return config().get<number>(settingIds.checkpointsKeepPerChat);
			},
			setupCommandFor: (repo) => setupCommandFor(this.context.globalState, repo),
			onSetupOutput: (line) => this.logger.info(`[Worktrees][setup] ${line}`),
			runningAgents: (sessionId) => this.core?.runningChats(sessionId) ?? [],
		};
	}

	/** The window's one worktree service (once the store is open). */
	worktrees(): Core['worktrees'] {
		if (!this.core) {
			throw new AgentTabsError('store/notOpen', 'Agent Tabs has no open state in this window.');
		}
		return this.core.worktrees;
	}

	/** Start-up reconciliation for each repository in the workspace: vanished folders, unknown worktrees. */
	private async reconcileWorktrees(core: Core): Promise<void> {
		// First what an interrupted window or command left half-done, in every repository the store knows.
		try {
			const r = await core.worktrees.recoverInterrupted();
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
				const r = await core.worktrees.reconcile(folder.uri.fsPath);
				if (r.missing.length || r.adopted.length || r.moved.length || r.rehomed.length) {
					this.logger.info(`[Worktrees][reconcile] missing: ${r.missing.join(', ') || '-'}; adopted: ${r.adopted.join(', ') || '-'}; moved: ${r.moved.map((m) => `${m.from} -> ${m.to}`).join(', ') || '-'}; repository moved: ${r.rehomed.join(', ') || '-'}`);
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
	private async rebuildDamagedState(core: Core): Promise<void> {
		const store = core.store;
		const damaged = store.recovery.damaged!;
		let rebuilt = '';
		try {
			const folders = (vscode.workspace.workspaceFolders ?? []).filter((f) => f.uri.scheme === 'file').map((f) => f.uri.fsPath);
			const report = await rebuildFromGit({ store, service: core.worktrees, logger: this.logger, repos: folders, root: this.worktreesRoot() });
			await store.rebuildDone();
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

	private shutdownDone: Promise<void> | undefined;

	/**
	 * Shutdown order: the chat tabs stop counting closes, then the core (turns, agent processes, store), and
	 * only then everything the root registered (the log last of all). Once, whoever asks first.
	 */
	shutdown(): Promise<void> {
		this.shutdownDone ??= (async () => {
			try {
				await this.shutdownParts();
			} finally {
				this.dispose();
			}
		})();
		return this.shutdownDone;
	}

	private async shutdownParts(): Promise<void> {
		// First: tabs that go away with the window from here on are not closes (their contexts survive).
		this.chats?.manager.beginShutdown();
		const core = this.core;
		this.core = undefined;
		await core?.shutdown();
	}
}

let root: ExtensionRoot | undefined;

export function activate(context: vscode.ExtensionContext): AgentTabsTestApi | undefined {
	root = new ExtensionRoot(context);
	const r = root;
	// VS Code disposes the subscriptions right after calling deactivate, without waiting for it: disposing the
	// root there would end agents and the store in the middle of the ordered shutdown. Both start the same one.
	context.subscriptions.push({ dispose: () => void r.shutdown() });
	if (context.extensionMode === vscode.ExtensionMode.Test) {
		return {
			stateDir: r.stateDir,
			ready: r.ready,
			chats: r.chats!,
			tasksView: r.tasksView!,
			sessionsView: r.sessionsView!,
			worktreeService: async () => {
				await r.ready;
				return r.worktrees();
			},
		};
	}
	return undefined;
}

export async function deactivate(): Promise<void> {
	const r = root;
	root = undefined;
	await r?.shutdown();
}
