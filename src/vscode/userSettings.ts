import * as vscode from 'vscode';
import { decideSetupCommand } from '../worktrees/setupCommand';
import { defaultMaxGitProcesses, setMaxGitProcesses } from '../worktrees/gitClient';
import { settingIds } from './ids';

/**
 * A setting that names a command or weakens permissions, read from the user's own settings only. The
 * manifest already gives these `"scope": "machine"`, so VS Code ignores them in a repository's
 * `.vscode/settings.json`; reading the user value explicitly keeps that true on any host.
 */
export function userSetting<T>(key: string, fallback: T): T {
	const inspected = vscode.workspace.getConfiguration(settingIds.section).inspect<T>(key);
	return inspected?.globalValue ?? inspected?.defaultValue ?? fallback;
}

/**
 * Applies `agentTabs.git.maxConcurrentProcesses` (git processes at once, for the whole extension host) now
 * and whenever it changes. Machine-scoped, read from the user's settings like the others here: what a
 * machine can carry is not a repository's to decide.
 */
export function applyGitProcessLimit(): vscode.Disposable {
	const apply = (): void => {
		const value = userSetting<number>(settingIds.gitMaxConcurrentProcesses, defaultMaxGitProcesses);
		setMaxGitProcesses(Number.isInteger(value) && value >= 1 ? value : defaultMaxGitProcesses);
	};
	apply();
	return vscode.workspace.onDidChangeConfiguration((e) => {
		if (e.affectsConfiguration(`${settingIds.section}.${settingIds.gitMaxConcurrentProcesses}`)) {
			apply();
		}
	});
}

/**
 * The setup command for new and restored worktrees of `repo` (see `decideSetupCommand`): the user's own
 * `worktrees.setupCommand`, or else the repository's `worktrees.proposedSetupCommand` once the user confirmed
 * it for this repository in a modal dialog, remembered in `state`.
 */
export function setupCommandFor(state: vscode.Memento, repo: string): Promise<string | undefined> {
	const folder = vscode.workspace.workspaceFolders?.find((f) => f.uri.scheme === 'file' && f.uri.fsPath === repo)?.uri;
	return decideSetupCommand(repo, {
		own: userSetting<string>(settingIds.worktreesSetupCommand, ''),
		proposed: vscode.workspace.getConfiguration(settingIds.section, folder).get<string>(settingIds.worktreesProposedSetupCommand, ''),
		memory: state,
		confirm: async (where, command) => {
			const run = vscode.l10n.t('Run It');
			const skip = vscode.l10n.t('Do Not Run It');
			const choice = await vscode.window.showWarningMessage(
				vscode.l10n.t('The repository {0} proposes a setup command for each new worktree:', where),
				{ modal: true, detail: vscode.l10n.t('{0}\n\nIt runs with your permissions. Your answer is remembered for this repository until the command changes.', command) },
				run,
				skip,
			);
			return choice === undefined ? undefined : choice === run ? 'run' : 'skip';
		},
	});
}
