import { AgentTabsError } from '../common/errors';

export interface ParsedArgs {
	positionals: string[];
	flags: Map<string, string | true>;
}

/** `--name value`, `--name=value` and boolean `--name` (for names in `booleans`). */
export function parseArgs(argv: string[], booleans: ReadonlySet<string>): ParsedArgs {
	const positionals: string[] = [];
	const flags = new Map<string, string | true>();
	for (let i = 0; i < argv.length; i++) {
		const a = argv[i]!;
		if (a === '--') {
			positionals.push(...argv.slice(i + 1));
			break;
		}
		if (!a.startsWith('--')) {
			positionals.push(a);
			continue;
		}
		const eq = a.indexOf('=');
		const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
		if (eq >= 0) {
			flags.set(name, a.slice(eq + 1));
		} else if (booleans.has(name)) {
			flags.set(name, true);
		} else {
			const value = argv[i + 1];
			if (value === undefined || value.startsWith('--')) {
				throw new AgentTabsError('cli/usage', `--${name} needs a value.`);
			}
			flags.set(name, value);
			i++;
		}
	}
	return { positionals, flags };
}

export function flag(args: ParsedArgs, name: string): string | undefined {
	const v = args.flags.get(name);
	return typeof v === 'string' ? v : undefined;
}
