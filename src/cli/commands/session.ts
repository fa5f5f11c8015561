import * as path from 'node:path';
import { AgentTabsError } from '../../common/errors';
import { errorMessage, type Logger } from '../../common/log';
import { SessionsRepo } from '../../db/sessionsRepo';
import { WorktreesRepo } from '../../db/worktreesRepo';
import { rebuildFromGit, worktreeToAttach, type RebuildInput } from '../../worktrees/rebuild';
import type { WorktreeService } from '../../worktrees/worktreeService';
import { flag, hasFlag, UsageError, type FlagTable, type ParsedArgs } from '../args';
import { describeRebuilt } from '../recovery';
import { openStore, out, rebuildInput, worktreeService, writeErr, type CliCommand } from '../shared';

async function sessionCommand(args: ParsedArgs<CliCommand>, logger: Logger, json: boolean): Promise<number> {
	const sub = args.command.words[1];
	const id = args.positionals[0];
	const store = await openStore(args, logger, { preferLock: sub === 'list' });
	try {
		const service = worktreeService(store, args, logger);
		// A start: finish or undo what an interrupted command left half-done before anything else.
		await service.recoverInterrupted().catch((e) => logger.error(`[cli][recover] ${errorMessage(e)}`));
		const sessions = new SessionsRepo(store);
		const need = (): string => {
			if (!id || !sessions.get(id)) {
				throw new AgentTabsError('session/unknown', id ? `There is no session ${id}.` : `session ${sub} needs a session id.`);
			}
			return id;
		};
		const worktrees = new WorktreesRepo(store);
		switch (sub) {
			case 'new': {
				const { session, worktree, note } = await service.createSession({ repo: path.resolve(flag(args, 'repo')!), title: flag(args, 'title') ?? 'New session', baseRef: flag(args, 'base'), carryChanges: hasFlag(args, 'carry') });
				if (note && !json) {
					writeErr(`agent-tabs: ${note}\n`);
				}
				await store.durable(); // success is reported only once it is on disk
				out(json, { sessionId: session.id, title: session.title, worktreePath: worktree.path, branch: worktree.branch, baseRef: worktree.base_ref, ...(note ? { note } : {}) }, `${session.id}  ${worktree.branch}  ${worktree.path}`);
				return 0;
			}
			case 'list': {
				// What a window does at start-up: compare the records with `git worktree list` first (only
				// with the lock: a snapshot read while another process writes shows what that process saved).
				// Also the repository named with --repo or the current folder is in: one moved by hand takes its sessions there.
				const here = await service.resolveRepository(path.resolve(flag(args, 'repo') ?? '.')).catch(() => null);
				for (const repo of store.readOnly ? [] : new Set([...(here ? [here] : []), ...worktrees.list().map((w) => w.repo_root)])) {
					await service.reconcile(repo).catch((e) => logger.warn(`[cli][reconcile] ${repo}: ${errorMessage(e)}`));
				}
				for (const s of sessions.list()) {
					out(json, s, `${s.id}  ${s.status.padEnd(8)} ${(s.branch ?? '-').padEnd(30)} ${s.worktree_state ?? '-'}  ${s.title}`);
				}
				for (const w of worktrees.detached()) {
					out(json, { detachedWorktree: w }, `(detached) ${w.id}  ${w.branch ?? '-'}  ${w.path}${w.state === 'removed' ? '  (folder removed; attach restores it)' : ''}`);
				}
				return 0;
			}
			case 'risk': {
				const wt = worktrees.forSession(need());
				if (!wt) {
					throw new AgentTabsError('worktree/none', `Session ${id} has no worktree.`);
				}
				const risk = await service.risk(wt.id);
				out(json, risk, risk.summary);
				return 0;
			}
			case 'delete':
			case 'archive': {
				const sessionId = need();
				const result = sub === 'delete' ? await service.deleteSession(sessionId) : await service.archiveSession(sessionId);
				const saved = result?.saved ?? null;
				await store.durable();
				out(
					json,
					{ sessionId, action: sub, saved, removedPath: result?.removedPath ?? null, risk: result?.risk.summary ?? null },
					saved
						? `Saved ${saved.files} changed files (${saved.staged} staged) and HEAD ${saved.head.slice(0, 12)} on ${saved.branch ?? 'a detached HEAD'} in ${saved.ref}; removed ${result!.removedPath}.`
						: result && !result.risk.exists
							? `The folder ${result.removedPath} was already gone (deleted outside Agent Tabs); the branch ${result.risk.branch ?? '-'} and any earlier saves are kept.`
							: `Nothing to save; removed ${result?.removedPath ?? 'nothing'}.`,
				);
				return 0;
			}
			case 'restore': {
				const wt = await service.restoreSession(need());
				await store.durable();
				const setup = wt.setupFailed ? ` Its setup step failed (${wt.setupFailed.replace(/\.$/, '')}); run it there yourself.` : '';
				out(
					json,
					{ sessionId: id, worktreePath: wt.path, branch: wt.onBranch, ...(wt.detached ? { detached: wt.detached } : {}), ...(wt.setupFailed ? { setupFailed: wt.setupFailed } : {}) },
					`${wt.detached ? `Restored ${wt.path}: ${wt.detached}.` : `Restored ${wt.path} on ${wt.onBranch ?? 'a detached HEAD, as it was saved'}.`}${setup}`,
				);
				return 0;
			}
			case 'merge': {
				const strategy = (flag(args, 'strategy') ?? 'merge') as 'merge' | 'squash' | 'rebase';
				const r = await service.mergeSession(need(), strategy);
				await store.durable();
				out(json, { sessionId: id, ...r }, r.message);
				return 0;
			}
			case 'attach':
				return await attachCommand(service, rebuildInput(store, args, logger), id, flag(args, 'title'), json);
			case 'rebuild':
				return await rebuildCommand(rebuildInput(store, args, logger), json);
			default:
				throw new UsageError(`Unknown session command "${sub ?? ''}".`, args.command);
		}
	} finally {
		await store.close();
	}
}

/** `session attach`: a detached worktree, a worktree folder or a saved ref to a new session, restored if removed. */
async function attachCommand(service: WorktreeService, input: RebuildInput, target: string | undefined, title: string | undefined, json: boolean): Promise<number> {
	if (!target) {
		const detached = new WorktreesRepo(input.store).detached();
		throw new AgentTabsError(
			'cli/usage',
			`session attach needs a detached worktree (its id or folder) or a saved ref. ${detached.length ? `Detached worktrees: ${detached.map((w) => `${w.id} (${w.branch ?? w.path})`).join(', ')}.` : 'There are no detached worktrees; "git for-each-ref refs/agent-tabs/saved/" in the repository lists saved work.'}`,
		);
	}
	const worktreeId = await worktreeToAttach(input, target);
	const { session, worktree } = await service.attachWorktree(worktreeId, title);
	await input.store.durable();
	out(json, { sessionId: session.id, title: session.title, worktreeId: worktree.id, worktreePath: worktree.path, branch: worktree.branch, savedRef: worktree.saved_ref }, `${session.id}  ${worktree.branch ?? '-'}  ${worktree.path}  "${session.title}"`);
	return 0;
}

/** `session rebuild`: sessions back from git, for a lost or replaced state folder. Adds nothing twice. */
async function rebuildCommand(input: RebuildInput, json: boolean): Promise<number> {
	if (input.repos.length === 0 && !input.root) {
		throw new AgentTabsError('cli/usage', 'session rebuild needs --repo (and --worktrees if the sessions were made with one).');
	}
	// A repository named on the command line that is none is a mistake: said before anything is rebuilt.
	for (const repo of input.repos) {
		await input.service.resolveRepository(repo);
	}
	const report = await rebuildFromGit(input);
	await input.store.rebuildDone();
	out(json, report, [`Rebuilt ${report.rebuilt.length} from ${report.repos.join(', ') || 'no repository'}.`, ...describeRebuilt(report), ...report.problems.map((p) => `Not rebuilt: ${p}`)].join('\n'));
	return 0;
}

const sessionId = (sub: string, summary: string, run: CliCommand['run'] = sessionCommand, flags?: FlagTable): CliCommand => ({ words: ['session', sub], args: ['sessionId'], summary, run, flags });

/** `session new|list|risk|delete|archive|restore|merge|attach|rebuild`. */
export const sessionCommands: CliCommand[] = [
	{
		words: ['session', 'new'],
		flags: {
			repo: { type: 'string', value: '<dir>', required: true, help: 'the repository' },
			title: { type: 'string', value: '<t>', help: 'what the session is for; names its branch (default "New session")' },
			base: { type: 'string', value: '<ref>', help: 'branch, tag or commit to start from (default, or HEAD: the current branch); merge goes only into a local branch' },
			carry: { type: 'boolean', help: 'carry the main checkout\'s uncommitted changes into the new worktree' },
		},
		summary: 'a new session with its own worktree on agent-tabs/<slug>',
		run: sessionCommand,
	},
	{
		words: ['session', 'list'],
		flags: { repo: { type: 'string', value: '<dir>', help: 'a repository to compare with git first (default: the one the current folder is in)' } },
		summary: 'sessions with their branch and worktree (read-only while another process holds the state)',
		run: sessionCommand,
		access: 'read',
	},
	sessionId('risk', 'what removing the session\'s worktree would lose'),
	sessionId('delete', 'save the work, remove the worktree (the branch stays), delete the session'),
	sessionId('archive', 'save the work and remove the worktree; restore brings it back'),
	sessionId('restore', 'recreate the worktree exactly as it was'),
	sessionId('merge', 'merge the session branch into its base branch in the main checkout', sessionCommand, {
		strategy: { type: 'string', value: 'merge|squash|rebase', choices: ['merge', 'squash', 'rebase'], help: 'how (default merge)' },
	}),
	{
		words: ['session', 'attach'],
		// Optional so that a bare `session attach` can list what there is to attach.
		args: ['target?'],
		flags: {
			repo: { type: 'string', value: '<dir>', help: 'the repository of a saved ref the state folder does not know' },
			title: { type: 'string', value: '<t>', help: 'the new session\'s title (default: the title it was saved with)' },
		},
		summary: 'a new session for a detached worktree (id or folder, see session list) or a saved ref',
		details: '(refs/agent-tabs/saved/...; a removed folder is restored byte for byte on the way)',
		run: sessionCommand,
	},
	{
		words: ['session', 'rebuild'],
		flags: { repo: { type: 'string', value: '<dir>', required: true, help: 'the repository whose sessions come back' } },
		summary: 'sessions back from git: worktrees under the worktrees folder and refs/agent-tabs/*',
		details: '(done by itself after a damaged database; adds nothing twice)',
		run: sessionCommand,
	},
];
