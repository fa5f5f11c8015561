import * as vscode from 'vscode';
import * as path from 'node:path';
import { findCommand } from '../agents/installed';
import { AgentTabsError, CancelledError } from '../common/errors';
import type { Logger } from '../common/log';
import type { SessionsRepo } from '../db/sessionsRepo';
import type { WorktreeRow, WorktreesRepo } from '../db/worktreesRepo';
import type { RiskReport } from '../worktrees/risk';
import type { RemoveResult, WorktreeService } from '../worktrees/worktreeService';
import type { SessionsNode } from './sessionsView';

export interface SessionCommandDeps {
	service: () => WorktreeService;
	sessions: SessionsRepo;
	worktrees: WorktreesRepo;
	logger: Logger;
	/** Resolves when every write so far is on disk; success is reported only after it (see Store.durable). */
	durable: () => Promise<void>;
	/** Closes the tabs of chats that no longer exist (a deleted session's). */
	closeChatTabs?: (chatIds: readonly string[]) => void;
}

/** The session a command is about: the tree node it was run on, or one the user picks. */
async function pickSession(deps: SessionCommandDeps, node: unknown, filter: (status: string) => boolean = () => true): Promise<string | undefined> {
	const n = node as SessionsNode | undefined;
	if (n?.kind === 'session') {
		return n.session.id;
	}
	if (typeof node === 'string' && deps.sessions.get(node)) {
		return node;
	}
	const items = deps.sessions
		.list()
		.filter((s) => filter(s.status))
		.map((s) => ({ label: s.title, description: [s.branch, s.status === 'archived' ? vscode.l10n.t('archived') : ''].filter(Boolean).join(' · '), id: s.id }));
	if (items.length === 0) {
		void vscode.window.showInformationMessage(vscode.l10n.t('There are no sessions for this.'));
		return undefined;
	}
	// Kept open when focus goes elsewhere, like every picker here: run from the palette over a chat tab, the
	// tab takes focus back a moment later (VS Code refocuses a webview asynchronously), which closed it.
	return (await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t('Which session?'), ignoreFocusOut: true }))?.id;
}

/**
 * The detached worktree a command is about: the tree node it was run on, or one the user picks (a menu whose
 * row VS Code lost while the view refreshed gives no node).
 */
async function pickDetached(deps: SessionCommandDeps, node: unknown, filter: (w: WorktreeRow) => boolean): Promise<WorktreeRow | undefined> {
	const n = node as SessionsNode | undefined;
	if (n?.kind === 'worktree') {
		return n.worktree;
	}
	const items = deps.worktrees
		.detached()
		.filter(filter)
		.map((w) => ({ label: w.branch ?? path.basename(w.path), description: w.path, worktree: w }));
	if (items.length === 0) {
		void vscode.window.showInformationMessage(vscode.l10n.t('There are no detached worktrees for this.'));
		return undefined;
	}
	return (await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t('Which detached worktree?'), ignoreFocusOut: true }))?.worktree;
}

/** The repository a new session starts in: the only workspace folder, or the one picked; says so when there is none. */
export async function pickRepository(): Promise<string | undefined> {
	const folders = vscode.workspace.workspaceFolders?.filter((f) => f.uri.scheme === 'file') ?? [];
	if (folders.length === 0) {
		void vscode.window.showErrorMessage(vscode.l10n.t('Open a folder with a git repository to start a session.'));
		return undefined;
	}
	if (folders.length === 1) {
		return folders[0]!.uri.fsPath;
	}
	return (await vscode.window.showWorkspaceFolderPick({ placeHolder: vscode.l10n.t('Start the session in which repository?') }))?.uri.fsPath;
}

function riskDetail(risk: RiskReport): string {
	const lines: string[] = [risk.summary];
	const list = (title: string, items: string[]): void => {
		if (items.length > 0) {
			lines.push(`${title}: ${items.slice(0, 8).join(', ')}${items.length > 8 ? ` … (+${items.length - 8})` : ''}`);
		}
	};
	list(vscode.l10n.t('Staged'), risk.staged);
	list(vscode.l10n.t('Unstaged'), risk.unstaged);
	list(vscode.l10n.t('Bytes differ from a checkout (git status does not show them)'), risk.invisible);
	list(vscode.l10n.t('Untracked'), risk.untracked);
	list(vscode.l10n.t('Unresolved conflicts'), risk.conflicts);
	list(vscode.l10n.t('Git repositories inside it (move them out first)'), risk.innerRepositories);
	list(vscode.l10n.t('Not pushed'), risk.unpushed.map((c) => c.slice(0, 8)));
	list(vscode.l10n.t('Not merged'), risk.unmerged.map((c) => c.slice(0, 8)));
	list(vscode.l10n.t('Stashes'), risk.stashes);
	list(vscode.l10n.t('Agents running'), risk.runningAgents);
	return lines.join('\n');
}

function savedMessage(result: RemoveResult | null): string {
	if (!result) {
		return vscode.l10n.t('The session had no worktree.');
	}
	if (result.saved) {
		return vscode.l10n.t(
			'Saved {0} changed files ({1} staged) and HEAD on {2} in {3}; the branch is kept. Restore Session brings it all back.',
			result.saved.files,
			result.saved.staged,
			result.saved.branch ?? vscode.l10n.t('a detached HEAD'),
			result.saved.ref,
		);
	}
	if (!result.risk.exists) {
		return vscode.l10n.t('The folder {0} was already gone (deleted outside Agent Tabs); the branch {1} and any earlier saves are kept.', result.removedPath, result.risk.branch ?? '-');
	}
	return vscode.l10n.t('Nothing needed saving; branch kept.');
}

export function sessionCommandHandlers(deps: SessionCommandDeps): Record<string, (...args: unknown[]) => unknown> {
	/** The result of a change to the state, once it is durable: only then may the user be told it is done. */
	const durably = async <T>(work: Promise<T>): Promise<T> => {
		const result = await work;
		await deps.durable();
		return result;
	};
	const removeWithRisk = async (sessionId: string, action: 'delete' | 'archive'): Promise<RemoveResult | null | undefined> => {
		const session = deps.sessions.get(sessionId)!;
		const wt = deps.worktrees.forSession(sessionId);
		const risk = wt && wt.state !== 'removed' ? await deps.service().risk(wt.id) : undefined;
		const verb = action === 'delete' ? vscode.l10n.t('Delete') : vscode.l10n.t('Archive');
		const saveVerb = action === 'delete' ? vscode.l10n.t('Save and Delete') : vscode.l10n.t('Save and Archive');
		if (risk && risk.runningAgents.length > 0) {
			void vscode.window.showWarningMessage(vscode.l10n.t('Agents are still running in "{0}". Stop them first.', session.title), { modal: true, detail: riskDetail(risk) });
			return undefined;
		}
		if (risk && (risk.foreign || risk.operation || risk.conflicts.length > 0 || risk.innerRepositories.length > 0)) {
			// Refused before asking: a save cannot hold a half-done merge or rebase, nor a repository inside the
			// worktree, nor a folder that is no longer this repository's worktree (see WorktreeService.remove).
			void vscode.window.showWarningMessage(vscode.l10n.t('"{0}" cannot be saved and removed right now.', session.title), { modal: true, detail: riskDetail(risk) });
			return undefined;
		}
		const title = action === 'delete' ? vscode.l10n.t('Delete the session "{0}"?', session.title) : vscode.l10n.t('Archive the session "{0}"?', session.title);
		const detail = risk
			? risk.clean
				? vscode.l10n.t('Nothing would be lost. The worktree folder is removed and the branch {0} is kept.', risk.branch ?? '-')
				: `${riskDetail(risk)}\n\n${vscode.l10n.t('All of it (working files, untracked files, the staged index, HEAD and its branch) is saved in a private git ref first and verified; the branch is kept. Then the worktree folder is removed.')}`
			: vscode.l10n.t('The session has no worktree folder.');
		const choice = await vscode.window.showWarningMessage(title, { modal: true, detail }, risk && !risk.clean ? saveVerb : verb);
		if (!choice) {
			return undefined;
		}
		const chatIds = deps.sessions.listChats(sessionId).map((c) => c.id);
		const result = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Saving the work of "{0}"…', session.title) }, () =>
			durably(action === 'delete' ? deps.service().deleteSession(sessionId) : deps.service().archiveSession(sessionId)),
		);
		if (action === 'delete') {
			// Its chats went with it: their tabs could only fail now. (An archived session's tabs stay; a message
			// there says to restore the session.)
			deps.closeChatTabs?.(chatIds);
		}
		return result;
	};

	const worktreeOf = (sessionId: string): { path: string; id: string } => {
		const wt = deps.worktrees.forSession(sessionId);
		if (!wt || wt.state !== 'ready') {
			throw new AgentTabsError('worktree/none', vscode.l10n.t('This session has no worktree folder right now (restore it first).'));
		}
		return wt;
	};

	return {
		newSession: async () => {
			const repo = await pickRepository();
			if (!repo) {
				return undefined;
			}
			const title = await vscode.window.showInputBox({ title: vscode.l10n.t('New Session'), prompt: vscode.l10n.t('What is this session for? It names the branch agent-tabs/<name>.'), placeHolder: vscode.l10n.t('Fix the login redirect'), ignoreFocusOut: true, validateInput: (v) => (v.trim() ? undefined : vscode.l10n.t('Give the session a name.')) });
			if (!title) {
				return undefined;
			}
			const service = deps.service();
			// The checkout the window shows (a linked worktree of the user's own, say): the session starts from it.
			const { checkout } = await service.resolveCheckout(repo);
			let carryChanges = false;
			if (await service.hasUncommittedChanges(checkout)) {
				const carry = vscode.l10n.t('Carry them over');
				const leave = vscode.l10n.t('Leave them where they are');
				const pick = await vscode.window.showQuickPick([carry, leave], { placeHolder: vscode.l10n.t('{0} has uncommitted changes. Carry them into the new worktree?', path.basename(checkout)), ignoreFocusOut: true });
				if (!pick) {
					return undefined;
				}
				carryChanges = pick === carry;
			}
			// Cancellable: a post-checkout hook or a setup command (an install, say) can take long, or never end.
			let created: Awaited<ReturnType<typeof service.createSession>>;
			try {
				created = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Creating the worktree for "{0}"…', title), cancellable: true }, (_progress, token) => {
					const cancel = new AbortController();
					token.onCancellationRequested(() => cancel.abort());
					return durably(service.createSession({ repo: checkout, title: title.trim(), carryChanges, signal: cancel.signal }));
				});
			} catch (e) {
				if (e instanceof CancelledError) {
					void vscode.window.showInformationMessage(vscode.l10n.t('Creating the session "{0}" was cancelled; nothing was left behind.', title.trim()));
					return undefined;
				}
				throw e;
			}
			if (created.note) {
				// Something the user should know about the new worktree (a hook that failed in it, another branch name).
				void vscode.window.showWarningMessage(vscode.l10n.t('Session "{0}" is ready on {1}. {2}', created.session.title, created.worktree.branch ?? '', created.note));
			} else {
				void vscode.window.showInformationMessage(vscode.l10n.t('Session "{0}" is ready on {1}.', created.session.title, created.worktree.branch ?? ''));
			}
			return created.session.id;
		},
		deleteSession: async (node?: unknown) => {
			const id = await pickSession(deps, node);
			if (!id) {
				return undefined;
			}
			const result = await removeWithRisk(id, 'delete');
			if (result !== undefined) {
				void vscode.window.showInformationMessage(savedMessage(result));
			}
			return result;
		},
		archiveSession: async (node?: unknown) => {
			const id = await pickSession(deps, node, (s) => s === 'active');
			if (!id) {
				return undefined;
			}
			const result = await removeWithRisk(id, 'archive');
			if (result !== undefined) {
				void vscode.window.showInformationMessage(savedMessage(result));
			}
			return result;
		},
		restoreSession: async (node?: unknown) => {
			const n = node as SessionsNode | undefined;
			if (n?.kind === 'worktree') {
				return (await durably(deps.service().attachWorktree(n.worktree.id))).session.id;
			}
			let id: string | undefined;
			if (n?.kind === 'session' || typeof node === 'string') {
				id = await pickSession(deps, node);
			} else {
				// From the palette: archived sessions, and worktrees whose session was deleted.
				const items = [
					...deps.sessions.list().filter((x) => x.status === 'archived' || (x.worktree_state && x.worktree_state !== 'ready')).map((x) => ({ label: x.title, description: x.branch ?? '', sessionId: x.id as string | undefined, worktreeId: undefined as string | undefined })),
					...deps.worktrees.detached().map((w) => ({ label: w.branch ?? w.path, description: vscode.l10n.t('deleted session · {0}', w.path), sessionId: undefined, worktreeId: w.id as string | undefined })),
				];
				if (items.length === 0) {
					void vscode.window.showInformationMessage(vscode.l10n.t('There is nothing to restore: no archived sessions and no detached worktrees.'));
					return undefined;
				}
				const pick = await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t('Which session or worktree?'), ignoreFocusOut: true });
				if (pick?.worktreeId) {
					const attached = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Restoring the worktree…') }, () => durably(deps.service().attachWorktree(pick.worktreeId!)));
					void vscode.window.showInformationMessage(vscode.l10n.t('Restored {0} on {1}.', attached.worktree.path, attached.worktree.branch ?? ''));
					return attached.session.id;
				}
				id = pick?.sessionId;
			}
			if (!id) {
				return undefined;
			}
			const restoreId = id;
			let wt: Awaited<ReturnType<WorktreeService['restoreSession']>>;
			try {
				wt = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Restoring the worktree…'), cancellable: true }, (_progress, token) => {
					const cancel = new AbortController();
					token.onCancellationRequested(() => cancel.abort());
					return durably(deps.service().restoreSession(restoreId, cancel.signal));
				});
			} catch (e) {
				if (e instanceof CancelledError) {
					void vscode.window.showInformationMessage(vscode.l10n.t('Restoring the session was cancelled; nothing was changed, and its saved work is kept.'));
					return undefined;
				}
				throw e;
			}
			if (wt.setupFailed) {
				void vscode.window.showWarningMessage(vscode.l10n.t('Restored {0}, but its setup step failed: {1} Run it there yourself.', wt.path, wt.setupFailed.replace(/([^.!?])$/, '$1.')));
			}
			if (wt.detached) {
				void vscode.window.showWarningMessage(vscode.l10n.t('Restored {0}: {1}.', wt.path, wt.detached));
			} else if (!wt.setupFailed) {
				void vscode.window.showInformationMessage(vscode.l10n.t('Restored {0} on {1}.', wt.path, wt.onBranch ?? vscode.l10n.t('a detached HEAD, as it was saved')));
			}
			return id;
		},
		attachWorktree: async (node?: unknown) => {
			const worktree = await pickDetached(deps, node, () => true);
			return worktree ? (await durably(deps.service().attachWorktree(worktree.id))).session.id : undefined;
		},
		removeWorktree: async (node?: unknown) => {
			const worktree = await pickDetached(deps, node, (w) => w.state === 'ready');
			if (!worktree) {
				return undefined;
			}
			const risk = await deps.service().risk(worktree.id);
			const choice = await vscode.window.showWarningMessage(vscode.l10n.t('Remove the worktree {0}?', worktree.path), { modal: true, detail: `${riskDetail(risk)}\n\n${vscode.l10n.t('Its work is saved in a private git ref first; the branch is kept.')}` }, vscode.l10n.t('Save and Remove'));
			if (!choice) {
				return undefined;
			}
			const result = await durably(deps.service().remove(worktree.id, 'it was removed from the Sessions view'));
			void vscode.window.showInformationMessage(savedMessage(result));
			return result;
		},
		openWorktreeInNewWindow: async (node?: unknown) => {
			const n = node as SessionsNode | undefined;
			const folder = n?.kind === 'worktree' ? n.worktree.path : await pickSession(deps, node, (s) => s === 'active').then((id) => (id ? worktreeOf(id).path : undefined));
			if (folder) {
				await vscode.commands.executeCommand('vscode.openFolder', vscode.Uri.file(folder), { forceNewWindow: true });
			}
		},
		revealWorktree: async (node?: unknown) => {
			const id = await pickSession(deps, node, (s) => s === 'active');
			if (!id) {
				return undefined;
			}
			const folder = worktreeOf(id).path;
			if (vscode.env.remoteName === undefined && vscode.env.uiKind === vscode.UIKind.Desktop) {
				await vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(folder));
			} else {
				const copy = vscode.l10n.t('Copy Path');
				if ((await vscode.window.showInformationMessage(vscode.l10n.t('The worktree is at {0}', folder), copy)) === copy) {
					await vscode.env.clipboard.writeText(folder);
				}
			}
			return folder;
		},
		showSessionRisk: async (node?: unknown) => {
			const id = await pickSession(deps, node, (s) => s === 'active');
			if (!id) {
				return undefined;
			}
			const risk = await deps.service().risk(worktreeOf(id).id);
			void vscode.window.showInformationMessage(vscode.l10n.t('Risk for "{0}"', deps.sessions.get(id)!.title), { modal: true, detail: riskDetail(risk) });
			return risk;
		},
		mergeSession: async (node?: unknown) => {
			const id = await pickSession(deps, node, (s) => s === 'active');
			if (!id) {
				return undefined;
			}
			const items = [
				{ label: vscode.l10n.t('Merge'), description: vscode.l10n.t('a merge commit'), strategy: 'merge' as const },
				{ label: vscode.l10n.t('Squash'), description: vscode.l10n.t('one commit with all the changes'), strategy: 'squash' as const },
				{ label: vscode.l10n.t('Rebase'), description: vscode.l10n.t('replay the commits on the base, then fast-forward'), strategy: 'rebase' as const },
			];
			const pick = await vscode.window.showQuickPick(items, { placeHolder: vscode.l10n.t('How should the session branch go into its base?'), ignoreFocusOut: true });
			if (!pick) {
				return undefined;
			}
			const r = await durably(deps.service().mergeSession(id, pick.strategy));
			void vscode.window.showInformationMessage(r.message);
			return r;
		},
		createPullRequest: async (node?: unknown) => {
			const id = await pickSession(deps, node, (s) => s === 'active');
			if (!id) {
				return undefined;
			}
			const url = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: vscode.l10n.t('Creating the pull request…') }, () => durably(deps.service().createPullRequest(id, findCommand('gh'))));
			const open = vscode.l10n.t('Open');
			if ((await vscode.window.showInformationMessage(vscode.l10n.t('Pull request created: {0}', url), open)) === open) {
				await vscode.env.openExternal(vscode.Uri.parse(url));
			}
			return url;
		},
	};
}
