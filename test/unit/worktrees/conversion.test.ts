import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkoutDrift, type FileEntry } from '../../../src/worktrees/conversion';
import { Git } from '../../../src/worktrees/gitClient';
import { gitEnv, makeRepo } from '../gitRepo';
import { removeDir, tempDir } from '../helpers';

/**
 * checkoutDrift remembers files it found not to drift, so a checkpoint per turn in a big repository that
 * converts line endings reads only what changed. What git runs is read from its own trace (GIT_TRACE), not
 * from a wrapped client.
 */
suite('worktrees: conversion checks remember what they verified', function () {
	this.timeout(60_000);
	let root: string;
	let worktree: string;
	let trace: string;
	let env: NodeJS.ProcessEnv;
	const git = (cwd: string, ...args: string[]): string => execFileSync('git', args, { cwd, env, encoding: 'utf8' });
	/** The index entries of the worktree, as the callers hand them to checkoutDrift. */
	const entries = (): Map<string, FileEntry> =>
		new Map(
			git(worktree, 'ls-files', '-s', '-z')
				.split('\0')
				.filter(Boolean)
				.map((record) => {
					const [meta = '', name = ''] = record.split('\t');
					const [mode = '', blob = ''] = meta.split(' ');
					return [name, { mode, blob }];
				}),
		);
	/** Runs a check and says which git commands that read file or blob content it ran (sorted: some run at once). */
	const check = async (files = entries()): Promise<{ drift: string[]; contentReads: string[] }> => {
		fs.writeFileSync(trace, '');
		const drift = await checkoutDrift(new Git(worktree, { ...env, GIT_TRACE: trace }), files);
		const contentReads = fs
			.readFileSync(trace, 'utf8')
			.split('\n')
			.map((line) => /trace: built-in: git (hash-object|cat-file|checkout-index)\b/.exec(line)?.[1])
			.filter((command): command is string => command !== undefined);
		return { drift: drift.sort(), contentReads: contentReads.sort() };
	};
	/** Files written earlier than this are old enough for a verdict on them to be remembered. */
	const letFilesAge = (): Promise<void> => sleep(2100);

	setup(() => {
		root = tempDir('agent-tabs-conversion-');
		env = gitEnv(root);
		trace = path.join(root, 'git-trace');
		const files: Record<string, string> = {};
		for (let i = 0; i < 30; i++) {
			files[`src/file${i}.txt`] = `line one of ${i}\nline two\n`;
		}
		const repo = makeRepo(path.join(root, 'repo'), files);
		git(repo, 'config', 'core.autocrlf', 'true'); // as Git for Windows sets it
		worktree = path.join(root, 'worktree');
		git(repo, 'worktree', 'add', '-q', '-b', 'session', worktree);
		assert.equal(fs.readFileSync(path.join(worktree, 'src/file0.txt'), 'utf8'), 'line one of 0\r\nline two\r\n', 'checked out with CRLF');
	});

	teardown(() => removeDir(root));

	test('a second check of an unchanged worktree reads no content; a file written since is read again, and an edit git cannot see is found', async () => {
		await letFilesAge();
		assert.deepEqual(await check(), { drift: [], contentReads: ['cat-file', 'hash-object'] }, 'the first check reads every file');
		assert.deepEqual(await check(), { drift: [], contentReads: [] }, 'nothing changed: nothing read');
		// An editor saving with LF: git's status cannot see it (it cleans to the same blob), a checkout would not write it.
		fs.writeFileSync(path.join(worktree, 'src/file3.txt'), 'line one of 3\nline two\n');
		git(worktree, 'status', '--porcelain'); // git refreshes its index: the edit now looks clean to it
		const afterEdit = await check();
		assert.deepEqual(afterEdit.drift, ['src/file3.txt']);
		assert.deepEqual(afterEdit.contentReads, ['cat-file', 'hash-object'], 'only the written file is read');
		assert.deepEqual((await check()).drift, ['src/file3.txt'], 'a drifting file is never taken as verified');
		// The same bytes written back (same size, same content as before): read again, and no drift.
		fs.writeFileSync(path.join(worktree, 'src/file3.txt'), 'line one of 3\r\nline two\r\n');
		assert.deepEqual((await check()).drift, []);
	});

	test('a verdict does not outlive the conversion or the entry it was made under', async () => {
		await letFilesAge();
		assert.deepEqual((await check()).drift, []);
		// The entry changes (another blob, e.g. after a commit or a rebase of the session), the file does not.
		const files = entries();
		const other = files.get('src/file1.txt')!;
		files.set('src/file0.txt', other);
		assert.deepEqual((await check(files)).drift, ['src/file0.txt'], 'checked against the new entry');
		// The conversion changes without touching the file: attributes now say LF on checkout.
		fs.writeFileSync(path.join(worktree, '.gitattributes'), 'src/file5.txt text eol=lf\n');
		assert.deepEqual((await check()).drift, ['src/file5.txt'], 'CRLF on disk is not what a checkout with eol=lf writes');
		git(worktree, 'config', 'core.autocrlf', 'false');
		fs.rmSync(path.join(worktree, '.gitattributes'));
		const unconverted = await check();
		assert.deepEqual(unconverted, { drift: [], contentReads: [] }, 'with no conversion at all, git sees every change itself');
	});

	test('a file written moments before a check is read again by the next one (its timestamps may not show a second write)', async () => {
		await letFilesAge();
		assert.deepEqual((await check()).drift, []);
		fs.writeFileSync(path.join(worktree, 'src/file7.txt'), 'line one of 7\r\nline two\r\n');
		assert.deepEqual(await check(), { drift: [], contentReads: ['cat-file', 'hash-object'] });
		assert.deepEqual(await check(), { drift: [], contentReads: ['cat-file', 'hash-object'] }, 'still too recent to be remembered');
		await letFilesAge();
		assert.deepEqual(await check(), { drift: [], contentReads: ['cat-file', 'hash-object'] }, 'read once more, now old enough');
		assert.deepEqual(await check(), { drift: [], contentReads: [] });
	});
});
