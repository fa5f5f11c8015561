import { createHash } from 'node:crypto';
import { AgentTabsError } from '../common/errors';

export type AgentTransport = 'acp' | 'opencode-server' | 'claude-stream-json';

/**
 * How to start one agent. The same shape serves the `agentTabs.agents` setting and the CLI's `--agents`
 * file; user definitions are merged over the built-in presets by `id`.
 */
export interface AgentDefinition {
	id: string;
	label: string;
	transport: AgentTransport;
	command: string;
	args: string[];
	/** Extra environment. Values here are not secret; API keys come from SecretStorage (see `secretEnv`). */
	env: Record<string, string>;
	defaultMode?: string;
	defaultModel?: string;
	/** Environment variable names that carry this agent's API key, filled from SecretStorage. */
	secretEnv?: string[];
	/**
	 * Host variables passed through to this agent beyond the standard list (see `hostPassThrough`): names, or
	 * prefixes ending in `*` such as `AWS_*` for a cloud provider. Their secret-looking values are redacted.
	 */
	passEnv?: string[];
	/** How to install it, for the "not installed" message. */
	install?: string;
	/**
	 * How `fs/read_text_file` answers for a file that does not exist. `notFound` (the default) is the ACP
	 * spec's resource-not-found error. `empty` answers an empty text, for agents that cannot tell that error
	 * from a real failure: Gemini CLI (0.61) then refuses to create any new file.
	 */
	readMissingFile?: ReadMissingFile;
	/** An image for its chat tabs (an absolute path or `~/…`); the built-in agents have their own. */
	icon?: string;
	/**
	 * The id of the `authenticate` method that signs this agent in with the key in its `secretEnv`, for an
	 * agent that answers "auth required" until told to use it (codex-acp: `api-key`). Only that method, only
	 * when such a key is set, once per start. Other agents are never signed in by Agent Tabs: their methods
	 * may open a browser or replace a login the user has (gemini-cli's clears a Google login).
	 */
	keySignIn?: string;
}

export type ReadMissingFile = 'notFound' | 'empty';

/** Built-in presets; each is a normal definition a user can override field by field. */
export const agentPresets: readonly AgentDefinition[] = [
	{
		id: 'claude',
		label: 'Claude',
		transport: 'acp',
		command: 'claude-agent-acp',
		args: [],
		env: {},
		secretEnv: ['ANTHROPIC_API_KEY'],
		passEnv: ['ANTHROPIC_*', 'CLAUDE_*'],
		install: 'npm install -g @agentclientprotocol/claude-agent-acp',
	},
	{
		id: 'codex',
		label: 'Codex',
		transport: 'acp',
		command: 'codex-acp',
		args: [],
		env: {},
		secretEnv: ['OPENAI_API_KEY'],
		passEnv: ['OPENAI_*', 'CODEX_*'],
		keySignIn: 'api-key',
		install: 'npm install -g @agentclientprotocol/codex-acp',
	},
	{
		id: 'gemini',
		label: 'Gemini',
		transport: 'acp',
		command: 'gemini',
		args: ['--acp'],
		env: {},
		secretEnv: ['GEMINI_API_KEY'],
		passEnv: ['GEMINI_*', 'GOOGLE_*'],
		install: 'npm install -g @google/gemini-cli',
		readMissingFile: 'empty',
	},
	{
		id: 'opencode',
		label: 'opencode',
		transport: 'acp',
		command: 'opencode',
		args: ['acp'],
		env: { OPENCODE_DISABLE_AUTOUPDATE: '1', OPENCODE_DISABLE_SHARE: '1' },
		// opencode talks to many providers; their usual variables pass, the rest through the user's passEnv.
		passEnv: ['OPENCODE_*', 'ANTHROPIC_*', 'OPENAI_*', 'GEMINI_*', 'GOOGLE_*', 'OPENROUTER_*', 'GROQ_*', 'MISTRAL_*'],
		install: 'npm install -g opencode-ai',
	},
	{
		id: 'goose',
		label: 'goose',
		transport: 'acp',
		command: 'goose',
		args: ['acp'],
		env: {},
		passEnv: ['GOOSE_*', 'ANTHROPIC_*', 'OPENAI_*', 'GEMINI_*', 'GOOGLE_*', 'OPENROUTER_*'],
		install: 'Install goose from its releases page (it is not on npm), then make sure `goose` is on your PATH.',
	},
];

function isStringRecord(v: unknown): v is Record<string, string> {
	return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string');
}

/**
 * Validates user definitions (from settings or a JSON file) and merges them over the presets by id.
 * A bad entry is an error naming the entry and the field, never silently skipped.
 */
export function mergeDefinitions(user: unknown, presets: readonly AgentDefinition[] = agentPresets): AgentDefinition[] {
	const byId = new Map(presets.map((p) => [p.id, { ...p, args: [...p.args], env: { ...p.env } }]));
	if (user === undefined || user === null) {
		return [...byId.values()];
	}
	if (!Array.isArray(user)) {
		throw new AgentTabsError('agents/invalid', 'Agent definitions must be a JSON array of objects.');
	}
	user.forEach((raw: unknown, i) => {
		const where = `agent definition ${i + 1}`;
		if (typeof raw !== 'object' || raw === null) {
			throw new AgentTabsError('agents/invalid', `${where} is not an object.`);
		}
		const d = raw as Record<string, unknown>;
		if (typeof d.id !== 'string' || !/^[A-Za-z0-9._-]+$/.test(d.id)) {
			throw new AgentTabsError('agents/invalid', `${where} needs an "id" of letters, digits, ".", "_" or "-".`);
		}
		const base = byId.get(d.id);
		const transport = d.transport ?? base?.transport;
		if (transport !== 'acp' && transport !== 'opencode-server' && transport !== 'claude-stream-json') {
			throw new AgentTabsError('agents/invalid', `Agent "${d.id}": "transport" must be "acp", "opencode-server" or "claude-stream-json".`);
		}
		const command = d.command ?? base?.command;
		if (typeof command !== 'string' || command.length === 0) {
			throw new AgentTabsError('agents/invalid', `Agent "${d.id}" needs a "command".`);
		}
		if (d.args !== undefined && !(Array.isArray(d.args) && d.args.every((a) => typeof a === 'string'))) {
			throw new AgentTabsError('agents/invalid', `Agent "${d.id}": "args" must be an array of strings.`);
		}
		for (const field of ['secretEnv', 'passEnv'] as const) {
			const v = d[field];
			if (v !== undefined && !(Array.isArray(v) && v.every((a) => typeof a === 'string' && /^[A-Za-z_][A-Za-z0-9_()]*\*?$/.test(a)))) {
				throw new AgentTabsError('agents/invalid', `Agent "${d.id}": "${field}" must be an array of environment variable names${field === 'passEnv' ? ' (a trailing * matches a prefix)' : ''}.`);
			}
		}
		if (d.env !== undefined && !isStringRecord(d.env)) {
			throw new AgentTabsError('agents/invalid', `Agent "${d.id}": "env" must map names to string values.`);
		}
		if (d.keySignIn !== undefined && (typeof d.keySignIn !== 'string' || d.keySignIn.trim() === '')) {
			throw new AgentTabsError('agents/invalid', `Agent "${d.id}": "keySignIn" must be the id of the agent's API-key sign-in method.`);
		}
		if (d.icon !== undefined && typeof d.icon !== 'string') {
			throw new AgentTabsError('agents/invalid', `Agent "${d.id}": "icon" must be the path of an image file.`);
		}
		if (d.readMissingFile !== undefined && d.readMissingFile !== 'notFound' && d.readMissingFile !== 'empty') {
			throw new AgentTabsError('agents/invalid', `Agent "${d.id}": "readMissingFile" must be "notFound" or "empty".`);
		}
		const merged: AgentDefinition = {
			id: d.id,
			label: typeof d.label === 'string' ? d.label : (base?.label ?? d.id),
			transport,
			command,
			args: (d.args as string[] | undefined) ?? base?.args ?? [],
			env: { ...(base?.env ?? {}), ...((d.env as Record<string, string> | undefined) ?? {}) },
			defaultMode: typeof d.defaultMode === 'string' ? d.defaultMode : base?.defaultMode,
			defaultModel: typeof d.defaultModel === 'string' ? d.defaultModel : base?.defaultModel,
			secretEnv: Array.isArray(d.secretEnv) ? (d.secretEnv as string[]) : base?.secretEnv,
			passEnv: Array.isArray(d.passEnv) ? (d.passEnv as string[]) : base?.passEnv,
			install: typeof d.install === 'string' ? d.install : base?.install,
			readMissingFile: (d.readMissingFile as ReadMissingFile | undefined) ?? base?.readMissingFile,
			icon: (d.icon as string | undefined) ?? base?.icon,
			keySignIn: (d.keySignIn as string | undefined) ?? base?.keySignIn,
		};
		byId.set(d.id, merged);
	});
	return [...byId.values()];
}

/**
 * A fingerprint of an agent's effective configuration: command, arguments, environment variable NAMES (never
 * values, which may be secret), model, mode and MCP servers. When it changes, the pool ends the old backend
 * session and starts a new one.
 */
export function configHash(def: AgentDefinition, extra: { envNames?: string[]; mcpServers?: unknown[]; model?: string; mode?: string } = {}): string {
	const envNames = [...new Set([...Object.keys(def.env), ...(extra.envNames ?? []), ...(def.passEnv ?? []).map((p) => `pass:${p}`)])].sort();
	const material = JSON.stringify({
		transport: def.transport,
		command: def.command,
		args: def.args,
		envNames,
		model: extra.model ?? def.defaultModel ?? null,
		mode: extra.mode ?? def.defaultMode ?? null,
		mcpServers: extra.mcpServers ?? [],
	});
	return createHash('sha256').update(material).digest('hex').slice(0, 16);
}
