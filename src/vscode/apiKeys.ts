import type * as vscode from 'vscode';
import type { AgentDefinition } from '../agents/definitions';

/**
 * API keys live in VS Code's SecretStorage (the OS keychain on desktop), keyed by the environment variable
 * that carries them, and reach an agent only through its process environment. Never in settings, the
 * database or logs.
 */
export class ApiKeys {
	constructor(private readonly secrets: vscode.SecretStorage) {}

	private key(envName: string): string {
		return `agentTabs.apiKey.${envName}`;
	}

	async set(envName: string, value: string): Promise<void> {
		await this.secrets.store(this.key(envName), value);
	}

	async delete(envName: string): Promise<void> {
		await this.secrets.delete(this.key(envName));
	}

	async has(envName: string): Promise<boolean> {
		return (await this.secrets.get(this.key(envName))) !== undefined;
	}

	/** The environment for one agent: every key it declares that has been set. */
	async envFor(def: AgentDefinition): Promise<Record<string, string>> {
		const env: Record<string, string> = {};
		for (const name of def.secretEnv ?? []) {
			const value = await this.secrets.get(this.key(name));
			if (value) {
				env[name] = value;
			}
		}
		return env;
	}
}
