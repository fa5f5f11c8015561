import type * as vscode from 'vscode';
import type { AgentDefinition } from '../agents/definitions';
import type { IDisposable } from '../common/lifecycle';
import type { SecretRedactor } from '../common/redact';

const keyPrefix = 'agentTabs.apiKey.';
/** The names of every key ever set here (SecretStorage cannot list its keys), so one no agent declares any more is still known. */
const namesKey = 'agentTabs.apiKeyNames';

/**
 * API keys live in VS Code's SecretStorage (the OS keychain on desktop), keyed by the environment variable
 * that carries them, and reach an agent only through its process environment. Never in settings, the
 * database or logs: every stored key is known to the window's redactor from activation on (`registerAll`,
 * `watch`), not only once an agent got it, so a key pasted into a prompt is never stored in clear.
 */
export class ApiKeys {
	constructor(
		private readonly secrets: vscode.SecretStorage,
		private readonly redactor?: SecretRedactor,
	) {}

	private key(envName: string): string {
		return `${keyPrefix}${envName}`;
	}

	async set(envName: string, value: string): Promise<void> {
		// Known before it is stored: from now on no prompt, event or log line holds it in clear.
		this.redactor?.add(envName, value);
		await this.secrets.store(this.key(envName), value);
		const names = await this.storedNames();
		if (!names.includes(envName)) {
			await this.secrets.store(namesKey, JSON.stringify([...names, envName]));
		}
	}

	async delete(envName: string): Promise<void> {
		// The redactor keeps the value: it may already be in text that is still shown or written.
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

	/**
	 * Gives the redactor every stored key: those the definitions declare and every one ever set here. Run at
	 * activation, before any prompt can be stored, and again when the definitions change.
	 */
	async registerAll(definitions: readonly AgentDefinition[]): Promise<void> {
		const names = new Set([...definitions.flatMap((d) => d.secretEnv ?? []), ...(await this.storedNames())]);
		// Read together: the store opens only after this, at activation.
		const values = await Promise.all([...names].map(async (name) => [name, await this.secrets.get(this.key(name))] as const));
		for (const [name, value] of values) {
			this.redactor?.add(name, value);
		}
	}

	/** A key stored later, here or in another window sharing this SecretStorage, is given to the redactor too. */
	watch(onError: (e: unknown) => void): IDisposable {
		return this.secrets.onDidChange((e) => {
			if (e.key.startsWith(keyPrefix)) {
				const name = e.key.slice(keyPrefix.length);
				this.secrets.get(e.key).then((value) => this.redactor?.add(name, value), onError);
			}
		});
	}

	private async storedNames(): Promise<string[]> {
		try {
			const names: unknown = JSON.parse((await this.secrets.get(namesKey)) ?? '[]');
			return Array.isArray(names) ? names.filter((n): n is string => typeof n === 'string') : [];
		} catch {
			// A damaged list: the definitions' names still cover every key an agent can be given.
			return [];
		}
	}
}
