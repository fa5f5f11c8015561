import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type Git, stdinPaths } from './gitClient';

/**
 * Git compares a file with its index entry only after converting it (a clean filter, line endings under
 * `text`/`eol`/`core.autocrlf`, `ident`, `working-tree-encoding`). An edit the conversion undoes (outputs a
 * notebook filter strips, CRLF in a `text=auto` file, LF in an `eol=crlf` one) is invisible to `git status`,
 * `git diff` and `git add`, yet a checkout would not write those bytes back. This module finds such files,
 * so a save keeps their bytes and the risk report counts them.
 */

/** An index or tree entry of a regular file. */
export interface FileEntry {
	mode: string;
	blob: string;
}

const attributes = ['text', 'eol', 'crlf', 'filter', 'ident', 'working-tree-encoding'] as const;
type Attributes = Partial<Record<(typeof attributes)[number], string>>;

const specified = (value: string | undefined): value is string => value !== undefined && value !== 'unspecified' && value !== 'unset';

/**
 * Of `files` (relative name to entry, read from the index `env` names or the worktree's own), those whose
 * bytes on disk are not what a checkout of their entry would write. Files git does not convert are left out:
 * for them `git diff` already sees every change.
 */
export async function checkoutDrift(git: Git, files: ReadonlyMap<string, FileEntry>, env?: NodeJS.ProcessEnv): Promise<string[]> {
	if (files.size === 0) {
		return [];
	}
	const startedAt = Date.now();
	const names = [...files.keys()];
	const [attrs, config] = await Promise.all([readAttributes(git, names, env), conversionConfig(git)]);
	const smudging: string[] = [];
	const cleaning: string[] = [];
	const crlf = new Map<string, { auto: boolean }>();
	for (const name of names) {
		const kind = conversion(attrs.get(name) ?? {}, config);
		if (kind === 'smudges') {
			smudging.push(name);
		} else if (kind === 'cleans') {
			cleaning.push(name);
		} else if (kind !== 'none') {
			crlf.set(name, kind);
		}
	}
	const verified = verifiedFiles(git.cwd);
	const onDisk = await regularFilesOnDisk(git.cwd, [...cleaning, ...crlf.keys(), ...smudging]);
	// A file found not to drift keeps that verdict while its entry, its conversion and its bytes (by their
	// stat) stay the same: a turn's checkpoint in a big repository that converts line endings (core.autocrlf
	// on Windows) checks only what changed since the last one, not every file.
	const verdictKey = (name: string, how: string): string => `${how} ${files.get(name)!.blob} ${onDisk.get(name)!.signature}`;
	const unverified = (list: readonly string[], how: (name: string) => string): string[] => list.filter((name) => onDisk.has(name) && verified.get(name) !== verdictKey(name, how(name)));
	const remember = (checked: readonly string[], drifting: readonly string[], how: (name: string) => string): void => {
		const drift = new Set(drifting);
		for (const name of checked) {
			// A file changed within the last moments could change again within its timestamps' granularity
			// and look the same: only older ones are remembered, as git treats "racily clean" index entries.
			if (drift.has(name) || onDisk.get(name)!.changedAt > startedAt - racyWindowMs) {
				verified.delete(name);
			} else {
				verified.set(name, verdictKey(name, how(name)));
			}
		}
	};
	const cleans = (): string => 'cleans';
	const crlfHow = (name: string): string => (crlf.get(name)!.auto ? 'crlf-auto' : 'crlf');
	// Written as stored: the bytes on disk are the blob's, or they differ.
	const checked = unverified(cleaning, cleans);
	const raw = await rawBlobIds(git, checked);
	const drift = checked.filter((name, i) => raw[i] !== files.get(name)!.blob);
	remember(checked, drift, cleans);
	// Only line endings on the way out (core.autocrlf=true, eol=crlf): what a checkout writes is worked out
	// from the blob as git does, and its id compared with the file's, without writing anything.
	const crlfChecked = unverified([...crlf.keys()], crlfHow);
	for (const batch of batches(crlfChecked.map((name) => ({ name, size: onDisk.get(name)!.size })))) {
		const differing = await crlfCheckoutDiffers(git, batch, files, crlf);
		drift.push(...differing);
		remember(batch, differing, crlfHow);
	}
	// Converted on the way out otherwise (filters, ident, encodings): compared with what a checkout writes,
	// every time (a filter's command or output can change while the file stays the same).
	for (const batch of batches(smudging.filter((name) => onDisk.has(name)).map((name) => ({ name, size: onDisk.get(name)!.size })))) {
		drift.push(...(await checkoutDiffers(git, batch, files, env)));
	}
	return drift;
}

/** How recent a file's change may be for its verdict to be remembered (timestamps are coarse; clocks move). */
const racyWindowMs = 2000;
/** Worktrees whose verdicts are remembered, least recently checked dropped first. */
const maxRememberedWorktrees = 16;
/** Per worktree folder: file name to the key (conversion, blob, stat) under which it was found not to drift. */
const verdicts = new Map<string, Map<string, string>>();

function verifiedFiles(worktree: string): Map<string, string> {
	const known = verdicts.get(worktree) ?? new Map<string, string>();
	verdicts.delete(worktree);
	verdicts.set(worktree, known);
	for (const oldest of verdicts.keys()) {
		if (verdicts.size <= maxRememberedWorktrees) {
			break;
		}
		verdicts.delete(oldest);
	}
	return known;
}

/**
 * Of `names`, the regular files in the worktree folder: their size, and a signature any write, rename or
 * mode change alters (device, inode, size, and modification and change times to the nanosecond). Read off
 * the host thread, a slice at a time.
 */
async function regularFilesOnDisk(folder: string, names: readonly string[]): Promise<Map<string, { size: number; signature: string; changedAt: number }>> {
	const found = new Map<string, { size: number; signature: string; changedAt: number }>();
	for (let at = 0; at < names.length; at += 256) {
		const slice = names.slice(at, at + 256);
		const stats = await Promise.all(slice.map((name) => new Promise<fs.BigIntStats | undefined>((resolve) => fs.lstat(path.join(folder, name), { bigint: true }, (e, stat) => resolve(e ? undefined : stat)))));
		slice.forEach((name, i) => {
			const stat = stats[i];
			if (stat?.isFile()) {
				const changedAt = Number((stat.mtimeNs > stat.ctimeNs ? stat.mtimeNs : stat.ctimeNs) / 1_000_000n);
				found.set(name, { size: Number(stat.size), signature: `${stat.dev}:${stat.ino}:${stat.size}:${stat.mode}:${stat.mtimeNs}:${stat.ctimeNs}`, changedAt });
			}
		});
	}
	return found;
}

/**
 * `git hash-object --no-filters` of files in the worktree (relative names): the ids of their bytes as they
 * are; `write` also stores them as objects.
 */
export async function rawBlobIds(git: Git, names: readonly string[], write = false): Promise<string[]> {
	if (names.length === 0) {
		return [];
	}
	return (await git.run(['hash-object', '--no-filters', ...(write ? ['-w'] : []), '--stdin-paths'], { input: stdinPaths(names) })).split('\n').slice(0, names.length);
}

async function readAttributes(git: Git, names: readonly string[], env?: NodeJS.ProcessEnv): Promise<Map<string, Attributes>> {
	const out = await git.run(['check-attr', '-z', '--stdin', ...attributes], { env, input: `${names.join('\0')}\0` });
	const fields = out.split('\0');
	const result = new Map<string, Attributes>();
	for (let i = 0; i + 2 < fields.length; i += 3) {
		const [name = '', attr = '', value = ''] = [fields[i], fields[i + 1], fields[i + 2]];
		const entry = result.get(name) ?? {};
		entry[attr as keyof Attributes] = value;
		result.set(name, entry);
	}
	return result;
}

interface ConversionConfig {
	autocrlf: string;
	eol: string;
	/** Filter drivers with a smudge or process command (the others write the blob as it is). */
	smudgeFilters: Set<string>;
}

async function conversionConfig(git: Git): Promise<ConversionConfig> {
	const read = async (key: string): Promise<string> => (await git.run(['config', '--get', key]).catch(() => '')).trim().toLowerCase();
	const [autocrlf, eol, filters] = await Promise.all([read('core.autocrlf'), read('core.eol'), git.run(['config', '--get-regexp', '^filter\\..*\\.(smudge|process)$']).catch(() => '')]);
	const smudgeFilters = new Set(
		filters
			.split('\n')
			.map((line) => /^filter\.(.*)\.(smudge|process) /i.exec(line)?.[1])
			.filter((name): name is string => name !== undefined),
	);
	return { autocrlf: autocrlf === 'true' || autocrlf === 'yes' || autocrlf === 'on' || autocrlf === '1' ? 'true' : autocrlf, eol, smudgeFilters };
}

/**
 * How a file is converted: `none`; `cleans` (only on the way in: a checkout writes the blob as it is); or
 * `smudges` (on the way out too). Git LFS is left to git: its pointer names the content by hash, so a file
 * that cleans to its pointer is the content a checkout writes.
 */
function conversion(attrs: Attributes, config: ConversionConfig): 'none' | 'cleans' | 'smudges' | { auto: boolean } {
	const filter = specified(attrs.filter) && attrs.filter !== 'set' ? attrs.filter : undefined;
	if (filter === 'lfs') {
		return 'none';
	}
	const lineEndings = attrs.text !== 'unset' && attrs.crlf !== 'unset' && (specified(attrs.text) || specified(attrs.eol) || specified(attrs.crlf) || config.autocrlf === 'true' || config.autocrlf === 'input');
	// core.eol's default, `native`, is CRLF on Windows.
	const nativeCrlf = config.eol === 'crlf' || ((config.eol === '' || config.eol === 'native') && process.platform === 'win32');
	const crlfOut = lineEndings && (attrs.eol === 'crlf' || (attrs.eol !== 'lf' && attrs.crlf !== 'input' && config.autocrlf !== 'input' && (config.autocrlf === 'true' || nativeCrlf)));
	if ((filter !== undefined && config.smudgeFilters.has(filter)) || attrs.ident === 'set' || specified(attrs['working-tree-encoding'])) {
		return 'smudges';
	}
	if (crlfOut) {
		// git's "auto" rules (text=auto, or core.autocrlf with no text attribute) leave some files alone.
		return { auto: attrs.text === 'auto' || (!specified(attrs.text) && !specified(attrs.eol) && !specified(attrs.crlf)) };
	}
	return filter !== undefined || lineEndings ? 'cleans' : 'none';
}

/**
 * Which of `names` (converted to CRLF on checkout, nothing else) differ from what a checkout writes: the blob
 * with each lone LF made CRLF, unless git leaves it as it is (no lone LF; under the auto rules also a blob
 * that has CR already or looks binary), as git's convert.c decides. Compared by object id with the file.
 */
async function crlfCheckoutDiffers(git: Git, names: readonly string[], files: ReadonlyMap<string, FileEntry>, crlf: ReadonlyMap<string, { auto: boolean }>): Promise<string[]> {
	const [raw, format, out] = await Promise.all([
		rawBlobIds(git, names),
		git.run(['rev-parse', '--show-object-format']).then((f) => f.trim() || 'sha1', () => 'sha1'),
		git.runBytes(['cat-file', '--batch'], { input: Buffer.from(names.map((name) => `${files.get(name)!.blob}\n`).join('')) }),
	]);
	const differing: string[] = [];
	let at = 0;
	names.forEach((name, i) => {
		const headerEnd = out.indexOf(0x0a, at);
		const size = Number(out.subarray(at, headerEnd).toString('latin1').split(' ')[2]);
		const blob = out.subarray(headerEnd + 1, headerEnd + 1 + size);
		at = headerEnd + 1 + size + 1;
		const written = Number.isInteger(size) ? crlfCheckout(blob, crlf.get(name)!.auto) : undefined;
		if (!written || objectId(format, written) !== raw[i]) {
			differing.push(name);
		}
	});
	return differing;
}

/** git's crlf_to_worktree: the bytes a checkout writes for `blob` when the file's output line ending is CRLF. */
export function crlfCheckout(blob: Buffer, auto: boolean): Buffer {
	let lonelf = 0;
	let lonecr = 0;
	let crlfs = 0;
	let nul = 0;
	let printable = 0;
	let nonprintable = 0;
	for (let i = 0; i < blob.length; i++) {
		const c = blob[i]!;
		if (c === 0x0d) {
			if (blob[i + 1] === 0x0a) {
				crlfs++;
				i++;
			} else {
				lonecr++;
			}
		} else if (c === 0x0a) {
			lonelf++;
		} else if (c === 0x7f) {
			nonprintable++;
		} else if (c < 0x20) {
			if (c === 0x08 || c === 0x09 || c === 0x1b || c === 0x0c) {
				printable++;
			} else {
				nonprintable++;
				nul += c === 0 ? 1 : 0;
			}
		} else {
			printable++;
		}
	}
	if (blob.length > 0 && blob[blob.length - 1] === 0x1a) {
		nonprintable--; // a DOS end-of-file mark
	}
	const binary = lonecr > 0 || nul > 0 || printable >> 7 < nonprintable;
	if (lonelf === 0 || (auto && (lonecr > 0 || crlfs > 0 || binary))) {
		return blob;
	}
	const written = Buffer.alloc(blob.length + lonelf);
	let o = 0;
	for (let i = 0; i < blob.length; i++) {
		if (blob[i] === 0x0a && (i === 0 || blob[i - 1] !== 0x0d)) {
			written[o++] = 0x0d;
		}
		written[o++] = blob[i]!;
	}
	return written;
}

function objectId(format: string, content: Buffer): string {
	return createHash(format === 'sha256' ? 'sha256' : 'sha1')
		.update(`blob ${content.length}\0`)
		.update(content)
		.digest('hex');
}

/** Groups files into batches of at most 64 MiB (one larger file alone) and 20,000 files. */
function* batches(files: readonly { name: string; size: number }[]): Generator<string[]> {
	let batch: string[] = [];
	let bytes = 0;
	for (const { name, size } of files) {
		if (batch.length > 0 && (bytes + size > 64 * 1024 * 1024 || batch.length >= 20000)) {
			yield batch;
			batch = [];
			bytes = 0;
		}
		batch.push(name);
		bytes += size;
	}
	if (batch.length > 0) {
		yield batch;
	}
}

/**
 * Which of `names` differ from what `git checkout-index` writes for their entries (in the index `env` names,
 * whose entries `files` lists) into a temporary folder. If the checkout fails (a filter command that is
 * gone), a file counts when its bytes are not the blob's: keeping a file that needed no keeping costs an
 * object, missing one costs the edit.
 */
async function checkoutDiffers(git: Git, names: readonly string[], files: ReadonlyMap<string, FileEntry>, env?: NodeJS.ProcessEnv): Promise<string[]> {
	const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'agent-tabs-checkout-'));
	try {
		try {
			// Read-only: without --index, checkout-index leaves the index file alone.
			await git.run(['checkout-index', '-f', '-z', '--stdin', `--prefix=${folder}${path.sep}`], { env, input: `${names.join('\0')}\0` });
		} catch {
			const raw = await rawBlobIds(git, names);
			return names.filter((name, i) => raw[i] !== files.get(name)!.blob);
		}
		return names.filter((name) => !sameBytes(path.join(git.cwd, name), path.join(folder, name)));
	} finally {
		fs.rmSync(folder, { recursive: true, force: true });
	}
}

function sameBytes(a: string, b: string): boolean {
	try {
		return fs.readFileSync(a).equals(fs.readFileSync(b));
	} catch {
		return false;
	}
}
