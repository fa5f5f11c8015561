/**
 * `agent-tabs`: the same core as the extension, without VS Code, for terminals, scripts and CI.
 * Exit codes: 0 the turn ended normally (or the query succeeded), 1 the turn did not end normally,
 * 2 a usage or setup error (unknown agent, missing repository, locked state folder...), 3 the state
 * database was damaged (kept aside; sessions rebuilt from git; the command did nothing else).
 */
import { AgentTabsError } from '../common/errors';
import { errorMessage } from '../common/log';
import { forTerminal, jsonForTerminal } from '../common/visibleText';
import { redactingLogger, SecretRedactor } from '../common/redact';
import { CommandTable, commandUsage, flag, hasFlag, synopsis, UsageError, type ParsedArgs } from './args';
import { queryCommands } from './commands/queries';
import { rewindCommands } from './commands/rewind';
import { runCommands } from './commands/run';
import { sessionCommands } from './commands/session';
import { taskCommands } from './commands/task';
import { damagedStoreExitCode, StoreDamagedError } from './recovery';
import { globalFlags, StderrLogger, type CliCommand } from './shared';

export { defaultStateDir } from './shared';

/**
 * Every command, as data. To add one, add an entry: its words, arguments, flags and the function that
 * runs it; parsing, `--help` and the hints for mistyped flags follow from the entry.
 */
const commands = new CommandTable<CliCommand>(globalFlags).add(...runCommands, ...sessionCommands, ...rewindCommands, ...queryCommands, ...taskCommands);

function generalUsage(): string {
	const lines = ['Usage: agent-tabs <command> [options]     (agent-tabs <command> --help for one command)', '', 'Commands:'];
	for (const c of commands.all) {
		const head = `  ${synopsis(c)}`;
		lines.push(head.length <= 22 ? `${head.padEnd(24)}${c.summary}` : `${head}\n${' '.repeat(24)}${c.summary}`);
		if (c.details) {
			lines.push(`${' '.repeat(24)}${c.details}`);
		}
	}
	lines.push('', 'Options for every command:');
	lines.push(commandUsage({ words: [], summary: '' }, globalFlags).split('Options for every command:\n')[1]!.trimEnd());
	lines.push(
		'',
		'Flags are strict: an unknown flag, or a value given to a switch such as --json, is a usage error.',
		'Exit codes: 0 done (the turn ended normally, or the command succeeded); 1 the turn did not end',
		'normally; 2 a usage or setup error (unknown flag or agent, missing repository, a state folder',
		'another process writes...); 3 the state database was damaged: it was kept aside, sessions were',
		'rebuilt from git, and the command did nothing else. sessions, chats, show, pending and session list',
		'only read: they work while a window or another command holds the state folder.',
		'',
		'Tasks: every prompt is a task in one queue (run too: its task is created by cli). A VS Code window',
		'holding the state runs the queue itself; otherwise task work, task add --wait and run run it here.',
		'task list and task show only read, like the commands above.',
		'',
		'The command line never prompts: every removal saves the work first (a private ref, verified byte for',
		'byte; the branch is kept), so delete and archive are safe to run unattended.',
		'',
	);
	return lines.join('\n');
}

export async function main(argv: string[]): Promise<number> {
	const wantsJson = argv.includes('--json');
	const usageError = (e: UsageError): number => {
		if (wantsJson) {
			process.stdout.write(`${jsonForTerminal({ type: 'error', code: e.code, message: e.message })}\n`);
		}
		process.stderr.write(`agent-tabs: ${forTerminal(e.message)}\n\n${e.command ? commandUsage(e.command, globalFlags) : generalUsage()}`);
		return 2;
	};
	let args: ParsedArgs<CliCommand>;
	try {
		const found = commands.resolve(argv);
		if (!('spec' in found)) {
			const words = found.words;
			if (words[0] === 'help' && words.length > 1) {
				const inner = commands.resolve(words.slice(1));
				if ('spec' in inner) {
					process.stdout.write(commandUsage(inner.spec, globalFlags));
					return 0;
				}
				return usageError(commands.unknownCommand(words.slice(1)));
			}
			if (words.length === 0 || (words.length === 1 && words[0] === 'help')) {
				const asked = words.length === 1 || argv.includes('--help') || argv.includes('-h');
				if (asked) {
					process.stdout.write(generalUsage());
					return 0;
				}
				// Flags and no command (`agent-tabs --json`, `agent-tabs -x`): an error like any other, said in
				// words (and in JSON with --json), not the usage alone.
				return usageError(argv.length === 0 ? new UsageError('No command given.') : new UsageError(`No command given (only ${argv.map((a) => `"${a}"`).join(' ')}).`));
			}
			return usageError(commands.unknownCommand(words));
		}
		if (argv.includes('--help') || argv.includes('-h')) {
			process.stdout.write(commandUsage(found.spec, globalFlags));
			return 0;
		}
		args = commands.parse(found.spec, argv);
	} catch (e) {
		if (e instanceof UsageError) {
			return usageError(e);
		}
		throw e;
	}
	const json = hasFlag(args, 'json');
	const redactor = new SecretRedactor();
	redactor.addEnv(process.env);
	const logger = redactingLogger(new StderrLogger(flag(args, 'log-level') ?? 'warn'), redactor);
	try {
		return await args.command.run(args, logger, json);
	} catch (e) {
		if (e instanceof UsageError) {
			return usageError(e);
		}
		const code = e instanceof AgentTabsError ? e.code : 'error';
		// An error may quote a prompt or an agent's words: no known secret goes out with it.
		const message = redactor.redact(errorMessage(e));
		if (json) {
			process.stdout.write(`${jsonForTerminal({ type: 'error', code, message, ...(e instanceof StoreDamagedError ? e.details : {}) })}\n`);
		}
		process.stderr.write(forTerminal(`agent-tabs: ${e instanceof StoreDamagedError ? 'error: ' : ''}${message}\n`));
		// A task cancelled before its turn started (Ctrl-C) ended like a cancelled turn: exit 1, not a setup error.
		return e instanceof StoreDamagedError ? damagedStoreExitCode : e instanceof AgentTabsError && e.code === 'task/cancelled' ? 1 : 2;
	}
}

/**
 * A reader that goes away early (`agent-tabs run --json | head -1`, a closed terminal) is no reason to stop:
 * without a listener, the broken pipe was an uncaught error that killed the command mid-turn, leaving its task
 * and turn `running` and its lock behind. What is left to print is dropped; the command finishes its work
 * and records it, and its exit code says how it ended.
 */
export function ignoreClosedOutput(): void {
	for (const stream of [process.stdout, process.stderr]) {
		stream.on('error', (e: NodeJS.ErrnoException) => {
			// EIO: the terminal was closed (SIGHUP) and the command goes on to record how its work ended.
			if (e.code !== 'EPIPE' && e.code !== 'EIO' && e.code !== 'ERR_STREAM_DESTROYED') {
				throw e;
			}
		});
	}
}

if (require.main === module) {
	ignoreClosedOutput();
	void main(process.argv.slice(2)).then((code) => {
		process.exitCode = code;
	});
}
