import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AgentDefinition } from '../agents/definitions';

/**
 * The icon of an agent's chat tabs: the definition's own `icon` (a user's image), else the built-in agent's
 * monogram in media/agents, else the Agent Tabs icon.
 */
export function agentIconUri(extensionUri: vscode.Uri, def: AgentDefinition | undefined): vscode.Uri {
	if (def?.icon) {
		const file = def.icon.startsWith('~/') ? path.join(os.homedir(), def.icon.slice(2)) : def.icon;
		if (path.isAbsolute(file) && fs.existsSync(file)) {
			return vscode.Uri.file(file);
		}
	}
	if (def && /^[A-Za-z0-9._-]+$/.test(def.id)) {
		const builtIn = vscode.Uri.joinPath(extensionUri, 'media', 'agents', `${def.id}.svg`);
		if (fs.existsSync(builtIn.fsPath)) {
			return builtIn;
		}
	}
	return vscode.Uri.joinPath(extensionUri, 'media', 'agent-tabs.svg');
}
