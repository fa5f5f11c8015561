import * as vscode from 'vscode';
import type { AgentDefinition } from '../agents/definitions';
import { agentAvailability } from '../agents/installed';
import { Disposable, DisposableStore, type IDisposable } from '../common/lifecycle';
import type { Logger } from '../common/log';
import type { SessionsRepo } from '../db/sessionsRepo';
import type { Store } from '../db/store';
import type { TaskRow, TaskStatus } from '../db/tasksRepo';
import type { Dispatcher } from '../tasks/dispatcher';
import { registerCommands, type CommandHost } from './commands';
import { pickRepository } from './sessionCommands';
import { commandIds, settingIds, viewIds } from './ids';
import { TreeRows } from './treeRows';

/** A node of the Tasks tree; the task commands receive it as their first argument. */
export interface TaskNode {
	kind: 'task';
	task: TaskRow;
}

/** Ended tasks the view keeps showing, newest first, after the queued and running ones. */
const recentTasks = 50;

/**
 * The Tasks view: queued and running tasks first (in the order they run), then the most recent ended ones.
 * Empty until the dispatcher is attached (the store is open). Refreshes, debounced, on the dispatcher's changes:
 * only the rows that changed while the order stays (see TreeRows), the whole list when it changes.
 */
export class TasksView extends Disposable implements vscode.TreeDataProvider<TaskNode> {
	private readonly _onDidChangeTreeData = this._register(new vscode.EventEmitter<TaskNode | TaskNode[] | undefined>());
	readonly onDidChangeTreeData = this._onDidChangeTreeData.event;
	private readonly rows = this._register(
		new TreeRows<TaskNode>({
			keyOf: (node) => node.task.id,
			childrenOf: (parent) => this.childrenOf(parent),
			itemOf: (node) => this.itemOf(node),
			fire: (rows) => this._onDidChangeTreeData.fire(rows),
		}),
	);
	private dispatcher: Dispatcher | undefined;
	private sessions: SessionsRepo | undefined;
	readonly treeView: vscode.TreeView<TaskNode>;

	constructor() {
		super();
		this.treeView = this._register(vscode.window.createTreeView(viewIds.tasks, { treeDataProvider: this }));
	}

	/** Shows the dispatcher's tasks; a chat or session renamed (a store write) is renamed in the rows too. */
	attach(dispatcher: Dispatcher, sessions: SessionsRepo, store: Pick<Store, 'onDidWrite'>): void {
		this.dispatcher = dispatcher;
		this.sessions = sessions;
		this._register(dispatcher.onDidChange(() => this.rows.scheduleRefresh()));
		this._register(store.onDidWrite((e) => (e.tables.has('chats') || e.tables.has('sessions')) && this.rows.scheduleRefresh()));
		this.rows.refreshAll();
	}

	getChildren(element?: TaskNode): TaskNode[] {
		return this.rows.getChildren(element);
	}

	getTreeItem(node: TaskNode): vscode.TreeItem {
		return this.rows.getTreeItem(node);
	}

	private childrenOf(element: TaskNode | undefined): TaskNode[] {
		if (!this.dispatcher || element) {
			return [];
		}
		const live = this.dispatcher.list({ status: ['running', 'queued'] }).sort((a, b) => Number(b.status === 'running') - Number(a.status === 'running'));
		const ended = this.dispatcher.list({ status: ['done', 'failed', 'cancelled', 'interrupted'], limit: recentTasks }).reverse();
		return [...live, ...ended].map((task) => ({ kind: 'task', task }));
	}

	private itemOf(node: TaskNode): vscode.TreeItem {
		const t = node.task;
		const item = new vscode.TreeItem(firstLine(t.prompt), vscode.TreeItemCollapsibleState.None);
		item.id = t.id;
		// Where it runs, as the user named it: the chat's tab title, else the session's title, else the id.
		const chatTitle = t.chat_id ? this.sessions?.getChat(t.chat_id)?.title : undefined;
		const sessionTitle = t.session_id ? this.sessions?.get(t.session_id)?.title : undefined;
		const where = t.chat_id
			? vscode.l10n.t('chat "{0}"', chatTitle ?? t.chat_id)
			: t.session_id
				? vscode.l10n.t('session "{0}"', sessionTitle ?? t.session_id)
				: vscode.l10n.t('new session');
		item.description = `${t.agent} · ${statusLabel(t.status)} · ${where}`;
		item.tooltip = new vscode.MarkdownString(
			// The description is cut off in a narrow sidebar; the hover says it whole.
			[item.description, vscode.l10n.t('Task {0}, created by {1}, priority {2}', t.id, t.creator, t.priority), t.error ? vscode.l10n.t('Error: {0}', t.error) : '', t.result ? vscode.l10n.t('Result: {0}', t.result) : '']
				.filter(Boolean)
				.map((line) => line.replace(/[\\`*_{}[\]()#+\-.!|]/g, '\\$&'))
				.join('\n\n'),
		);
		// task.<status>.<chat|nochat>: menus offer cancel, retry and open chat only where they apply.
		item.contextValue = `task.${t.status}.${t.chat_id ? 'chat' : 'nochat'}`;
		item.iconPath = new vscode.ThemeIcon(statusIcon(t.status));
		if (t.chat_id) {
			item.command = { command: commandIds.openTaskChat, title: vscode.l10n.t('Open Chat'), arguments: [node] };
		}
		return item;
	}
}

function firstLine(text: string): string {
	const line = text.trim().split('\n', 1)[0]!.trim();
	return line.length > 80 ? `${line.slice(0, 79)}…` : line;
}

function statusLabel(status: TaskStatus): string {
	switch (status) {
		case 'queued':
			return vscode.l10n.t('queued');
		case 'running':
			return vscode.l10n.t('running');
		case 'done':
			return vscode.l10n.t('done');
		case 'failed':
			return vscode.l10n.t('failed');
		case 'cancelled':
			return vscode.l10n.t('cancelled');
		case 'interrupted':
			return vscode.l10n.t('interrupted');
	}
}

function statusIcon(status: TaskStatus): string {
	return { queued: 'clock', running: 'sync~spin', done: 'check', failed: 'error', cancelled: 'circle-slash', interrupted: 'debug-pause' }[status];
}

export interface TaskCommandDeps {
	dispatcher: () => Promise<Dispatcher>;
	sessions: () => Promise<SessionsRepo>;
	definitions: () => readonly AgentDefinition[];
	/** Opens a chat's tab (the chat command). */
	openChat: (chatId: string) => Thenable<unknown>;
	/** The repository a new session starts in (undefined: none, said already, or cancelled). */
	defaultRepo: () => Thenable<string | undefined> | string | undefined;
}

/** A task id from a Tasks view node, an id, or undefined. */
function taskIdFrom(arg: unknown): string | undefined {
	if (typeof arg === 'string') {
		return arg;
	}
	const node = arg as Partial<TaskNode> | undefined;
	return node?.kind === 'task' && typeof node.task?.id === 'string' ? node.task.id : undefined;
}

/** New Task, Cancel Task, Retry Task, Open Chat (of a task). */
export function taskCommandHandlers(deps: TaskCommandDeps): Record<'newTask' | 'cancelTask' | 'retryTask' | 'openTaskChat', (arg?: unknown) => Promise<unknown>> {
	const pickTask = async (arg: unknown, statuses: TaskStatus[], placeHolder: string): Promise<string | undefined> => {
		const given = taskIdFrom(arg);
		if (given) {
			return given;
		}
		const tasks = (await deps.dispatcher()).list({ status: statuses });
		if (tasks.length === 0) {
			void vscode.window.showInformationMessage(vscode.l10n.t('No task can be picked for this.'));
			return undefined;
		}
		return (await vscode.window.showQuickPick(tasks.map((t) => ({ label: firstLine(t.prompt), description: `${t.agent} · ${statusLabel(t.status)}`, id: t.id })), { placeHolder, ignoreFocusOut: true }))?.id;
	};
	return {
		newTask: async (arg) => {
			const prompt = await vscode.window.showInputBox({
				title: vscode.l10n.t('New Task'),
				prompt: vscode.l10n.t('What should the agent do?'),
				// A prompt typed out is not lost when focus goes elsewhere (a chat tab takes it back after the palette closes).
				ignoreFocusOut: true,
				validateInput: (v) => (v.trim() === '' ? vscode.l10n.t('A task needs a prompt.') : undefined),
			});
			if (prompt === undefined) {
				return undefined;
			}
			const installed = agentAvailability(deps.definitions()).filter((a) => a.path);
			if (installed.length === 0) {
				void vscode.window.showWarningMessage(vscode.l10n.t('No agent is installed. Agent Tabs: Show Agents lists them and how to install them.'));
				return undefined;
			}
			const agent = await vscode.window.showQuickPick(
				installed.map(({ definition }) => ({ label: definition.label, description: definition.id, id: definition.id })),
				{ placeHolder: vscode.l10n.t('Which agent?'), ignoreFocusOut: true },
			);
			if (!agent) {
				return undefined;
			}
			const sessions = await deps.sessions();
			const givenSession = (arg as { kind?: string; session?: { id?: string } } | undefined)?.kind === 'session' ? (arg as { session: { id: string } }).session.id : undefined;
			const newSession = { label: vscode.l10n.t('$(add) New session'), description: vscode.l10n.t('its own worktree and branch'), id: '' };
			const target =
				givenSession ??
				(
					await vscode.window.showQuickPick(
						[newSession, ...sessions.list().filter((s) => s.status === 'active').map((s) => ({ label: s.title, description: s.branch ?? '', id: s.id }))],
						{ placeHolder: vscode.l10n.t('Run it in which session?'), ignoreFocusOut: true },
					)
				)?.id;
			if (target === undefined) {
				return undefined;
			}
			let repo: string | undefined;
			if (target === '') {
				repo = await deps.defaultRepo();
				if (!repo) {
					return undefined;
				}
			}
			const task = await (await deps.dispatcher()).add({ creator: 'new_task', agent: agent.id, input: { text: prompt }, sessionId: target || undefined, newSession: repo ? { repo } : undefined });
			return task.id;
		},
		cancelTask: async (arg) => {
			const id = await pickTask(arg, ['queued', 'running'], vscode.l10n.t('Cancel which task?'));
			return id ? (await deps.dispatcher()).cancel(id) : undefined;
		},
		retryTask: async (arg) => {
			const id = await pickTask(arg, ['failed', 'interrupted'], vscode.l10n.t('Retry which task?'));
			return id ? (await (await deps.dispatcher()).retry(id)).id : undefined;
		},
		openTaskChat: async (arg) => {
			const id = await pickTask(arg, ['queued', 'running', 'done', 'failed', 'cancelled', 'interrupted'], vscode.l10n.t('Open the chat of which task?'));
			const chatId = id ? (await deps.dispatcher()).get(id)?.chat_id : undefined;
			if (id && !chatId) {
				void vscode.window.showInformationMessage(vscode.l10n.t('This task has no chat yet: it gets one when it starts.'));
				return undefined;
			}
			return chatId ? deps.openChat(chatId).then(() => chatId) : undefined;
		},
	};
}

/** The dispatcher's limits from the settings. */
function readLimits(): { maxConcurrent: number; maxPerWorktree: number } {
	const config = vscode.workspace.getConfiguration(settingIds.section);
	const whole = (id: string, fallback: number): number => {
		const v = config.get<number>(id, fallback);
		return Number.isSafeInteger(v) && v >= 1 ? v : fallback;
	};
	return { maxConcurrent: whole(settingIds.tasksMaxConcurrent, 4), maxPerWorktree: whole(settingIds.tasksMaxPerWorktree, 1) };
}

/**
 * The window's part of tasks: the commands (registered at once, waiting for the store), and once the store is
 * open: limits from settings (live), the view attached, and the queue started (tasks left running are marked
 * interrupted, queued ones run).
 */
export function startTasks(deps: {
	logger: Logger;
	commandHost: CommandHost;
	view: TasksView;
	ready: () => Promise<{ dispatcher: Dispatcher; sessions: SessionsRepo; store: Store }>;
	definitions: () => readonly AgentDefinition[];
	openChat: (chatId: string) => Thenable<unknown>;
}): IDisposable {
	const store = new DisposableStore();
	const handlers = taskCommandHandlers({
		dispatcher: () => deps.ready().then((r) => r.dispatcher),
		sessions: () => deps.ready().then((r) => r.sessions),
		definitions: deps.definitions,
		openChat: deps.openChat,
		defaultRepo: pickRepository,
	});
	store.add(
		registerCommands(deps.commandHost, {
			[commandIds.newTask]: handlers.newTask,
			[commandIds.cancelTask]: handlers.cancelTask,
			[commandIds.retryTask]: handlers.retryTask,
			[commandIds.openTaskChat]: handlers.openTaskChat,
		}),
	);
	void deps.ready().then(
		async ({ dispatcher, sessions, store: db }) => {
			if (store.isDisposed) {
				return;
			}
			dispatcher.setLimits(readLimits());
			store.add(
				vscode.workspace.onDidChangeConfiguration((e) => {
					if (e.affectsConfiguration(`${settingIds.section}.tasks`)) {
						dispatcher.setLimits(readLimits());
					}
				}),
			);
			deps.view.attach(dispatcher, sessions, db);
			// A chat's own interrupted turn shows in its tab (with Retry); the warning names the other tasks.
			const interrupted = (await dispatcher.start()).filter((id) => dispatcher.get(id)?.creator !== 'chat');
			if (interrupted.length > 0) {
				void vscode.window.showWarningMessage(vscode.l10n.t('{0} task(s) were running when VS Code last closed. They are marked interrupted; Retry Task in the Tasks view runs them again.', interrupted.length));
			}
		},
		() => undefined,
	);
	return store;
}
