import * as fs from 'node:fs';
import * as path from 'node:path';
import { crc32 } from './crc32';

/**
 * The write-ahead journal: an append-only file of length-prefixed, checksummed records, one per write
 * transaction. A record is durable once `append` returns (written and fdatasync'ed); the store's journal
 * worker appends, so this never runs on the extension host's thread while agents stream. A record cut short by a crash fails its length or checksum and is recognised
 * as a torn tail: it was never acknowledged, so dropping it loses nothing.
 *
 * Layout: the 8-byte file header `ATJRNL01`, then records of
 *   u32le payloadLength | u32le crc32(payload) | payload (UTF-8 JSON of JournalRecord)
 */

export const journalHeader = Buffer.from('ATJRNL01', 'ascii');
const recordHeaderBytes = 8;
/** Larger than any record we write; a length past it can only come from garbage. */
const maxRecordBytes = 512 * 1024 * 1024;

/** A SQL parameter as stored in the journal: blobs are base64 so the payload stays JSON. */
export type JournalParam = string | number | null | { $b: string };
export type SqlParam = string | number | null | Uint8Array;

/** One write transaction: its sequence number and the statements it ran, in order. */
export interface JournalRecord {
	seq: number;
	stmts: [sql: string, params: JournalParam[]][];
}

export function encodeParams(params: readonly SqlParam[]): JournalParam[] {
	return params.map((p) => (p instanceof Uint8Array ? { $b: Buffer.from(p.buffer, p.byteOffset, p.byteLength).toString('base64') } : p));
}

export function decodeParams(params: readonly JournalParam[]): SqlParam[] {
	return params.map((p) => (p !== null && typeof p === 'object' ? new Uint8Array(Buffer.from(p.$b, 'base64')) : p));
}

/** A record as the journal stores it (UTF-8 JSON), made on the host: the journal thread frames it (`frameRecords`). */
export function recordJson(record: JournalRecord): string {
	return JSON.stringify(record);
}

/**
 * Records' bytes as they go into the journal file, one after another in one buffer: each its length, its
 * CRC-32 and its payload. The journal thread frames a batch from the JSON the host posts (posting a string
 * costs the host less than building and sending bytes).
 */
export function frameRecords(jsons: readonly string[]): Buffer {
	const lengths = jsons.map((json) => Buffer.byteLength(json, 'utf8'));
	const out = Buffer.allocUnsafe(lengths.reduce((sum, length) => sum + recordHeaderBytes + length, 0));
	let offset = 0;
	jsons.forEach((json, i) => {
		const length = lengths[i]!;
		const payload = offset + recordHeaderBytes;
		out.write(json, payload, 'utf8');
		out.writeUInt32LE(length, offset);
		out.writeUInt32LE(crc32(out.subarray(payload, payload + length)), offset + 4);
		offset = payload + length;
	});
	return out;
}

/** A record's bytes as they go into the journal file. */
export function encodeRecord(record: JournalRecord): Buffer {
	return frameRecords([recordJson(record)]);
}

/** What reading a journal file found. */
export interface JournalReadResult {
	records: JournalRecord[];
	/** Byte offset just past the last whole record. */
	validBytes: number;
	/** Bytes after `validBytes` that did not form a whole record. */
	trailingBytes: number;
	/**
	 * True when the damage is not a plain torn tail: a bad record followed by more data that parses as
	 * records, or a bad header. A torn tail (the last write cut short) is not corruption.
	 */
	corrupt: boolean;
	reason?: string;
}

export function readJournal(file: string): JournalReadResult {
	const data = fs.readFileSync(file);
	if (data.length < journalHeader.length) {
		// A crash while creating the file: nothing in it was ever acknowledged.
		return { records: [], validBytes: 0, trailingBytes: data.length, corrupt: false };
	}
	if (!data.subarray(0, journalHeader.length).equals(journalHeader)) {
		return { records: [], validBytes: 0, trailingBytes: data.length, corrupt: true, reason: 'not an Agent Tabs journal (bad header)' };
	}
	const records: JournalRecord[] = [];
	let offset = journalHeader.length;
	while (offset < data.length) {
		const bad = (reason: string): JournalReadResult => {
			const corrupt = hasWholeRecordAfter(data, offset + 1);
			return { records, validBytes: offset, trailingBytes: data.length - offset, corrupt, reason: corrupt ? reason : undefined };
		};
		if (data.length - offset < recordHeaderBytes) {
			return bad('truncated record header');
		}
		const length = data.readUInt32LE(offset);
		const crc = data.readUInt32LE(offset + 4);
		if (length === 0 || length > maxRecordBytes || offset + recordHeaderBytes + length > data.length) {
			return bad(`record at byte ${offset} has an impossible length`);
		}
		const payload = data.subarray(offset + recordHeaderBytes, offset + recordHeaderBytes + length);
		if (crc32(payload) !== crc) {
			return bad(`record at byte ${offset} fails its checksum`);
		}
		let record: JournalRecord;
		try {
			record = JSON.parse(payload.toString('utf8')) as JournalRecord;
		} catch {
			return bad(`record at byte ${offset} is not valid JSON`);
		}
		if (typeof record.seq !== 'number' || !Array.isArray(record.stmts)) {
			return bad(`record at byte ${offset} has the wrong shape`);
		}
		records.push(record);
		offset += recordHeaderBytes + length;
	}
	return { records, validBytes: offset, trailingBytes: 0, corrupt: false };
}

/** Whether a whole, checksummed record starts anywhere at or after `from` (then the damage is not a torn tail). */
function hasWholeRecordAfter(data: Buffer, from: number): boolean {
	for (let o = from; o + recordHeaderBytes <= data.length; o++) {
		const length = data.readUInt32LE(o);
		if (length === 0 || length > data.length - o - recordHeaderBytes) {
			continue;
		}
		const payload = data.subarray(o + recordHeaderBytes, o + recordHeaderBytes + length);
		if (payload[0] === 0x7b /* { */ && crc32(payload) === data.readUInt32LE(o + 4)) {
			return true;
		}
	}
	return false;
}

/** fsyncs a directory so a create, rename or unlink in it is durable. */
export function fsyncDir(dir: string): void {
	let fd: number | undefined;
	try {
		fd = fs.openSync(dir, 'r');
		fs.fsyncSync(fd);
	} catch {
		// Some file systems refuse fsync on directories; the rename is still atomic there.
	} finally {
		if (fd !== undefined) {
			fs.closeSync(fd);
		}
	}
}

/** An open journal file that appends records durably. */
export class JournalWriter {
	private fd: number;
	private size: number;

	private constructor(
		readonly file: string,
		fd: number,
		size: number,
	) {
		this.fd = fd;
		this.size = size;
	}

	/** Creates a new, empty journal file (header only), durably. */
	static create(file: string): JournalWriter {
		const fd = fs.openSync(file, 'wx');
		try {
			writeFully(fd, journalHeader, 0);
			fs.fsyncSync(fd);
		} catch (e) {
			fs.closeSync(fd);
			throw e;
		}
		fsyncDir(path.dirname(file));
		return new JournalWriter(file, fd, journalHeader.length);
	}

	get bytes(): number {
		return this.size;
	}

	/**
	 * Appends one record (or several, concatenated: a group commit) and returns once it is on stable storage. If the write fails part way, the file is
	 * cut back to its previous length so no half record sits before later ones.
	 */
	append(record: Buffer): void {
		const before = this.size;
		try {
			writeFully(this.fd, record, before);
			fs.fdatasyncSync(this.fd);
			this.size = before + record.length;
		} catch (e) {
			try {
				fs.ftruncateSync(this.fd, before);
			} catch {
				// The caller marks the store failed; the next open treats the rest as a torn tail.
			}
			throw e;
		}
	}

	close(): void {
		if (this.fd >= 0) {
			fs.closeSync(this.fd);
			this.fd = -1;
		}
	}
}

function writeFully(fd: number, buf: Buffer, position: number): void {
	let written = 0;
	while (written < buf.length) {
		written += fs.writeSync(fd, buf, written, buf.length - written, position + written);
	}
}
