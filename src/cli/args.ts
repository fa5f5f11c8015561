import { parseArgs as parseNodeArgs } from 'node:util';
import { AgentTabsError } from '../common/errors';

/** One flag of a command: `--name <value>` (string) or `--name` (boolean, which never takes a value). */
export interface FlagSpec {
	type: 'string' | 'boolean';
	/** How the value is shown in the usage, e.g. `<dir>`. Strings only. */
	value?: string;
	required?: boolean;
	/** The only values a string flag accepts. */
	choices?: readonly string[];
	help: string;
}

export type FlagTable = Readonly<Record<string, FlagSpec>>;

/**
 * One command of the command line, declared as data: its words (`['session', 'new']`), its positional
 * arguments (a trailing `?` marks an optional one) and its own flags. Parsing, usage text and the hints for
 * a mistyped flag all come from these tables, so a new command is one more entry.
 */
export interface CommandSpec {
	words: readonly string[];
	args?: readonly string[];
	flags?: FlagTable;
	summary: string;
	/** Further lines under the summary in the usage. */
	details?: string;
}

/** A usage error: exit code 2, with the command's usage (or the general one) after the message. */
export class UsageError extends AgentTabsError {
	constructor(
		message: string,
		readonly command?: CommandSpec,
	) {
		super('cli/usage', message);
	}
}

export interface ParsedArgs<T extends CommandSpec = CommandSpec> {
	command: T;
	/** Positional arguments after the command words, in order. */
	positionals: string[];
	flags: Map<string, string | true>;
}

export function commandName(spec: CommandSpec): string {
	return spec.words.join(' ');
}

/** `agent-tabs session new --repo <dir> [--title <t>]`: the one-line synopsis of a command. */
export function synopsis(spec: CommandSpec): string {
	const parts = [...spec.words];
	for (const a of spec.args ?? []) {
		parts.push(a.endsWith('?') ? `[<${a.slice(0, -1)}>]` : `<${a}>`);
	}
	for (const [name, f] of Object.entries(spec.flags ?? {})) {
		const text = f.type === 'boolean' ? `--${name}` : `--${name} ${f.choices ? f.choices.join('|') : (f.value ?? '<value>')}`;
		parts.push(f.required ? text : `[${text}]`);
	}
	return parts.join(' ');
}

export function commandUsage(spec: CommandSpec, globals: FlagTable): string {
	const lines = [`Usage: agent-tabs ${synopsis(spec)}`, '', `  ${spec.summary}`];
	if (spec.details) {
		lines.push(...spec.details.split('\n').map((l) => `  ${l}`));
	}
	const own = Object.entries(spec.flags ?? {});
	if (own.length > 0) {
		lines.push('', 'Options:', ...own.map(([n, f]) => flagLine(n, f)));
	}
	lines.push('', 'Options for every command:', ...Object.entries(globals).map(([n, f]) => flagLine(n, f)), '');
	return lines.join('\n');
}

function flagLine(name: string, f: FlagSpec): string {
	const head = f.type === 'boolean' ? `--${name}` : `--${name} ${f.value ?? '<value>'}`;
	const pad = head.length < 22 ? head.padEnd(22) : `${head}\n${' '.repeat(24)}`;
	return `  ${pad}${f.help.replace(/\n/g, `\n${' '.repeat(24)}`)}`;
}

/** Edit distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
	const row = Array.from({ length: b.length + 1 }, (_, i) => i);
	for (let i = 1; i <= a.length; i++) {
		let diagonal = row[0]!;
		row[0] = i;
		for (let j = 1; j <= b.length; j++) {
			const above = row[j]!;
			row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
			diagonal = above;
		}
	}
	return row[b.length]!;
}

/** The closest candidate to a mistyped word, if one is close enough to be a likely typo. */
export function closest(word: string, candidates: Iterable<string>): string | undefined {
	let best: string | undefined;
	let bestDistance = Infinity;
	for (const c of candidates) {
		const d = c.startsWith(word) || word.startsWith(c) ? Math.min(1, distance(word, c)) : distance(word, c);
		if (d < bestDistance) {
			best = c;
			bestDistance = d;
		}
	}
	return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

/**
 * The command line's grammar: the commands, and the flags every command takes. Flags are strict: an unknown
 * flag, a value given to a boolean flag (`--json=false`), a missing value or a value outside a flag's choices
 * is a `UsageError` that says what was meant, never silently ignored.
 */
export class CommandTable<T extends CommandSpec = CommandSpec> {
	private readonly commands: T[] = [];

	constructor(readonly globals: FlagTable) {}

	add(...specs: T[]): this {
		for (const spec of specs) {
			for (const [name, f] of Object.entries(spec.flags ?? {})) {
				const other = this.flagType(name);
				if (other && other !== f.type) {
					throw new Error(`--${name} is a ${other} flag elsewhere; one name, one type.`);
				}
			}
			this.commands.push(spec);
		}
		return this;
	}

	get all(): readonly T[] {
		return this.commands;
	}

	private flagType(name: string): FlagSpec['type'] | undefined {
		return this.globals[name]?.type ?? this.commands.map((c) => c.flags?.[name]?.type).find((t) => t !== undefined);
	}

	/** Every flag name any command knows, with its type: enough to tell values from positionals before the command is known. */
	private allFlags(): Record<string, { type: FlagSpec['type'] }> {
		const options: Record<string, { type: FlagSpec['type'] }> = {};
		for (const table of [this.globals, ...this.commands.map((c) => c.flags ?? {})]) {
			for (const [name, f] of Object.entries(table)) {
				options[name] = { type: f.type };
			}
		}
		return options;
	}

	/** Finds the command named by the leading positional words. Undefined when argv names none (help). */
	resolve(argv: readonly string[]): { spec: T } | { words: string[] } {
		const { positionals } = parseNodeArgs({ args: [...argv], options: this.allFlags(), strict: false, allowPositionals: true });
		const words = positionals.filter((p): p is string => typeof p === 'string');
		const matches = this.commands.filter((c) => c.words.every((w, i) => words[i] === w));
		// The longest match: `session new` over a hypothetical `session`.
		const spec = matches.sort((a, b) => b.words.length - a.words.length)[0];
		return spec ? { spec } : { words };
	}

	/** The error for words that name no command, with the closest command as a hint. */
	unknownCommand(words: readonly string[]): UsageError {
		const group = this.commands.filter((c) => c.words.length > 1 && c.words[0] === words[0]);
		if (group.length > 0) {
			const subs = group.map((c) => c.words[1]!);
			const hint = words[1] ? closest(words[1], subs) : undefined;
			return new UsageError(`${words[1] ? `Unknown command "${words[0]} ${words[1]}"` : `"${words[0]}" needs a subcommand`}: ${subs.join(', ')}.${hint ? ` Did you mean "${words[0]} ${hint}"?` : ''}`);
		}
		const hint = words[0] ? closest(words[0], new Set(this.commands.map((c) => c.words[0]!))) : undefined;
		return new UsageError(`Unknown command "${words[0] ?? ''}".${hint ? ` Did you mean "${hint}"?` : ''}`);
	}

	/** Parses argv for one command, strictly. */
	parse(spec: T, argv: readonly string[]): ParsedArgs<T> {
		const table: FlagTable = { ...this.globals, ...spec.flags };
		const name = commandName(spec);
		const fail = (message: string): never => {
			throw new UsageError(message, spec);
		};
		// A lenient pass first, to explain each mistake in words; then node's strict parser as the authority.
		const { tokens } = parseNodeArgs({ args: [...argv], options: this.allFlags(), strict: false, allowPositionals: true, tokens: true });
		// A value given twice: node keeps the last, silently; two different prompts or folders mean a mistake.
		const given = new Map<string, string>();
		for (const t of tokens) {
			if (t.kind !== 'option') {
				continue;
			}
			const f = table[t.name];
			if (!f) {
				const hint = closest(t.name, Object.keys(table));
				const owners = this.commands.filter((c) => c.flags?.[t.name]).map(commandName);
				fail(
					`Unknown option ${t.rawName} for "${name}".` +
						(hint ? ` Did you mean --${hint}?` : owners.length > 0 ? ` (--${t.name} belongs to ${owners.map((o) => `"${o}"`).join(', ')}.)` : ''),
				);
			} else if (f.type === 'boolean' && t.value !== undefined) {
				fail(`--${t.name} is a switch and takes no value (got "${t.value}"): write --${t.name} to turn it on, or leave it out.`);
			} else if (f.type === 'string' && t.value === undefined) {
				fail(`--${t.name} needs a value${f.value ? ` ${f.value}` : ''}.`);
			} else if (f.type === 'string' && !t.inlineValue && t.value!.startsWith('-') && t.value !== '-') {
				fail(`--${t.name} needs a value, but the next word is "${t.value}". For a value that starts with a dash write --${t.name}=${t.value}.`);
			} else if (f.type === 'string') {
				const earlier = given.get(t.name);
				if (earlier !== undefined && earlier !== t.value) {
					fail(`--${t.name} is given twice (${JSON.stringify(earlier)} and ${JSON.stringify(t.value)}): give it once.`);
				}
				given.set(t.name, t.value!);
			}
		}
		const options: Record<string, { type: FlagSpec['type'] }> = {};
		for (const [n, f] of Object.entries(table)) {
			options[n] = { type: f.type };
		}
		let parsed: ReturnType<typeof parseNodeArgs>;
		try {
			parsed = parseNodeArgs({ args: [...argv], options, strict: true, allowPositionals: true });
		} catch (e) {
			return fail(e instanceof Error ? e.message : String(e));
		}
		const flags = new Map<string, string | true>();
		for (const [n, v] of Object.entries(parsed.values)) {
			if (v === true || typeof v === 'string') {
				flags.set(n, v);
			}
		}
		for (const [n, f] of Object.entries(table)) {
			const v = flags.get(n);
			if (f.required && v === undefined && !flags.has('help')) {
				fail(`"${name}" needs --${n}${f.value ? ` ${f.value}` : ''}.`);
			}
			if (typeof v === 'string' && v.trim() === '') {
				// An empty --state would be the current folder, an empty --title no title: a value was meant.
				fail(`--${n} needs a value${f.value ? ` ${f.value}` : ''}; it was given an empty one.`);
			}
			if (typeof v === 'string' && f.choices && !f.choices.includes(v)) {
				fail(`--${n} must be ${f.choices.slice(0, -1).join(', ')}${f.choices.length > 1 ? ' or ' : ''}${f.choices[f.choices.length - 1]} (got "${v}").`);
			}
		}
		const positionals = parsed.positionals.slice(spec.words.length);
		const declared = spec.args ?? [];
		if (positionals.length > declared.length) {
			fail(`"${name}" takes ${declared.length === 0 ? 'no arguments' : `at most ${declared.map((a) => `<${a.replace(/\?$/, '')}>`).join(' ')}`}; "${positionals.slice(declared.length).join(' ')}" is extra.`);
		}
		const missing = declared.find((a, i) => !a.endsWith('?') && positionals[i] === undefined);
		if (missing && !flags.has('help')) {
			fail(`"${name}" needs <${missing}>.`);
		}
		return { command: spec, positionals, flags };
	}
}

export function flag(args: ParsedArgs, name: string): string | undefined {
	const v = args.flags.get(name);
	return typeof v === 'string' ? v : undefined;
}

export function hasFlag(args: ParsedArgs, name: string): boolean {
	return args.flags.get(name) === true;
}
