import * as vscode from 'vscode';
import { agentPresets, mergeDefinitions, type AgentDefinition } from '../agents/definitions';
import { agentAvailability } from '../agents/installed';
import type { PermissionBroker, PermissionPolicySettings, PermissionRequest } from '../agents/permissions';
import { errorMessage, type Logger } from '../common/log';
import { revealHidden, withoutLinks } from '../common/visibleText';
import type { ApiKeys } from './apiKeys';
import { settingIds } from './ids';
import { userSetting } from './userSettings';

/** The agent definitions from settings, merged over the presets. A broken setting falls back to the presets and says why. */
export function readDefinitions(logger: Logger): AgentDefinition[] {
	// The commands agents start with: from the user's settings only, never a repository's.
	const raw = userSetting<unknown>(settingIds.agents, undefined);
	try {
		return mergeDefinitions(raw);
	} catch (e) {
		logger.error(`[Agents][settings] ${errorMessage(e)}`);
		void vscode.window.showErrorMessage(vscode.l10n.t('The agentTabs.agents setting is invalid: {0}. The built-in agents are used until it is fixed.', errorMessage(e)));
		return mergeDefinitions(undefined);
	}
}

export function readPermissionSettings(): PermissionPolicySettings {
	const c = vscode.workspace.getConfiguration(settingIds.section);
	return {
		default: userSetting<'ask' | 'allow' | 'reject'>(settingIds.permissionsDefault, 'ask'),
		timeoutMs: Math.max(5, c.get<number>(settingIds.permissionsTimeoutSeconds, 300)) * 1000,
	};
}

/** "Set API Key": pick an agent's key variable, type the key (hidden), stored in SecretStorage. */
export async function setApiKey(keys: ApiKeys, definitions: readonly AgentDefinition[]): Promise<void> {
	const names = [...new Set(definitions.flatMap((d) => (d.secretEnv ?? []).map((env) => ({ env, agent: d.label }))).map((x) => JSON.stringify(x)))].map(
		(s) => JSON.parse(s) as { env: string; agent: string },
	);
	const items = await Promise.all(
		names.map(async (n) => ({ label: n.env, description: n.agent, detail: (await keys.has(n.env)) ? vscode.l10n.t('set') : vscode.l10n.t('not set'), env: n.env })),
	);
	const picked = await vscode.window.showQuickPick(items, { title: vscode.l10n.t('Set API Key'), placeHolder: vscode.l10n.t('Which key?'), ignoreFocusOut: true });
	if (!picked) {
		return;
	}
	const value = await vscode.window.showInputBox({
		title: vscode.l10n.t('API key for {0}', picked.env),
		prompt: vscode.l10n.t('Stored in VS Code secret storage and given to the agent as {0}. Leave empty to remove it.', picked.env),
		password: true,
		ignoreFocusOut: true,
	});
	if (value === undefined) {
		return;
	}
	if (value.trim() === '') {
		await keys.delete(picked.env);
		void vscode.window.showInformationMessage(vscode.l10n.t('{0} removed.', picked.env));
	} else {
		await keys.set(picked.env, value.trim());
		void vscode.window.showInformationMessage(vscode.l10n.t('{0} saved. Agents started from now on receive it.', picked.env));
	}
}

/** "Show Agents": which agents are installed, and how to install the others. */
export async function showAgents(definitions: readonly AgentDefinition[]): Promise<void> {
	const items = agentAvailability(definitions).map(({ definition, path }) => ({
		label: `${path ? '$(check)' : '$(circle-slash)'} ${definition.label}`,
		description: `${definition.command} ${definition.args.join(' ')}`.trim(),
		detail: path ? vscode.l10n.t('Installed: {0}', path) : vscode.l10n.t('Not installed. {0}', definition.install ?? ''),
		install: path ? undefined : definition.install,
		preset: agentPresets.some((p) => p.id === definition.id),
	}));
	const picked = await vscode.window.showQuickPick(items, { title: vscode.l10n.t('Agents'), placeHolder: vscode.l10n.t('Pick an agent that is not installed to copy its install command'), ignoreFocusOut: true });
	if (picked?.install) {
		await vscode.env.clipboard.writeText(picked.install);
		void vscode.window.showInformationMessage(vscode.l10n.t('Copied: {0}', picked.install));
	}
}

/**
 * Until chat tabs render permission requests inline, a request that needs a person is shown as a
 * notification with the agent's options. Closing it without choosing rejects at once (the agent does not
 * wait for the timeout); a button pressed after the request was settled elsewhere (timeout, cancel, another
 * answer) changes nothing and says so.
 */
export function showPermissionRequest(broker: PermissionBroker, request: PermissionRequest, definitions: readonly AgentDefinition[]): void {
	const buttons = request.options.map((o) => o.name);
	// `request.agent` is the agent's id; people know it by its label, as the agent picker and the chat tab show it.
	const agent = definitions.find((d) => d.id === request.agent)?.label ?? request.agent;
	void vscode.window.showWarningMessage(vscode.l10n.t('{0} asks: {1}', withoutLinks(agent), withoutLinks(revealHidden(request.title, true))), ...buttons).then((choice) => {
		const option = request.options.find((o) => o.name === choice);
		const settled = option ? broker.decide(request.id, option.optionId) : broker.dismiss(request.id);
		if (option && !settled) {
			void vscode.window.showInformationMessage(vscode.l10n.t('That request from {0} was already answered; your choice changed nothing.', agent));
		}
	});
}
