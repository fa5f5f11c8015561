import { looksSecret } from '../common/redact';
import type { AgentDefinition } from './definitions';

/**
 * Host variables every agent (and every command it runs in a terminal) gets: what a shell, a compiler and a
 * package manager need to work, and nothing that carries credentials by convention. Anything else from the
 * host reaches an agent only through its definition's `passEnv`.
 */
export const hostPassThrough: readonly string[] = [
	'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'TERM', 'COLORTERM', 'LANG', 'LANGUAGE', 'LC_*', 'TZ',
	'TMPDIR', 'TMP', 'TEMP', 'XDG_CONFIG_HOME', 'XDG_CACHE_HOME', 'XDG_DATA_HOME', 'XDG_STATE_HOME', 'XDG_RUNTIME_DIR',
	'SSL_CERT_FILE', 'SSL_CERT_DIR', 'NODE_EXTRA_CA_CERTS', 'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy',
	// Windows needs these to start most programs.
	'SystemRoot', 'SYSTEMROOT', 'windir', 'COMSPEC', 'PATHEXT', 'USERPROFILE', 'APPDATA', 'LOCALAPPDATA', 'ProgramData', 'ProgramFiles', 'ProgramFiles(x86)', 'HOMEDRIVE', 'HOMEPATH',
];

/** `NAME` matches itself; `PREFIX_*` matches every name starting with `PREFIX_`. */
export function matchesName(pattern: string, name: string): boolean {
	return pattern.endsWith('*') ? name.startsWith(pattern.slice(0, -1)) : pattern === name;
}

export interface AgentEnvironment {
	env: Record<string, string>;
	/** Names whose values are secret (keys handed to the agent, `secretEnv`, names that look secret). */
	secretNames: string[];
}

/**
 * The whole environment of an agent process and of its terminals, in order of precedence (later wins):
 * the host pass-through list, the definition's `passEnv` (for example `AWS_*` for a cloud provider), the
 * definition's `env`, its `secretEnv` variables as set on the host, and the keys Agent Tabs hands it.
 */
export function agentEnvironment(def: AgentDefinition, host: Readonly<Record<string, string | undefined>>, keys: Readonly<Record<string, string>> = {}): AgentEnvironment {
	const env: Record<string, string> = {};
	const patterns = [...hostPassThrough, ...(def.passEnv ?? [])];
	for (const [name, value] of Object.entries(host)) {
		if (value !== undefined && patterns.some((p) => matchesName(p, name))) {
			env[name] = value;
		}
	}
	Object.assign(env, def.env);
	for (const name of def.secretEnv ?? []) {
		const value = host[name];
		if (value !== undefined) {
			env[name] = value;
		}
	}
	Object.assign(env, keys);
	const secretNames = Object.keys(env).filter((name) => looksSecret(name) || (def.secretEnv ?? []).includes(name) || name in keys);
	return { env, secretNames };
}
