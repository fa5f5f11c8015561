import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AgentDefinition } from './definitions';

/** Finds a command on PATH (or checks an explicit path), as a shell would. */
export function findCommand(command: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
	const executable = (p: string): boolean => {
		try {
			fs.accessSync(p, fs.constants.X_OK);
			return fs.statSync(p).isFile();
		} catch {
			return false;
		}
	};
	if (command.includes('/') || command.includes(path.sep)) {
		return executable(command) ? path.resolve(command) : undefined;
	}
	const exts = process.platform === 'win32' ? (env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';') : [''];
	for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
		for (const ext of exts) {
			const candidate = path.join(dir, command + ext);
			if (executable(candidate)) {
				return candidate;
			}
		}
	}
	return undefined;
}

export interface AgentAvailability {
	definition: AgentDefinition;
	/** Where the command was found, or undefined when it is not installed. */
	path?: string;
}

/** Which agents can be started here, and for the rest how to install them. */
export function agentAvailability(definitions: readonly AgentDefinition[], env: NodeJS.ProcessEnv = process.env): AgentAvailability[] {
	return definitions.map((definition) => ({ definition, path: findCommand(definition.command, env) }));
}
