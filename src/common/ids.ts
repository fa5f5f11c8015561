/** Random ids for rows. Generated in code (never by SQL) so journal replay is deterministic. */
export function newId(prefix: string): string {
	const bytes = new Uint8Array(10);
	globalThis.crypto.getRandomValues(bytes);
	let hex = '';
	for (const b of bytes) {
		hex += b.toString(16).padStart(2, '0');
	}
	return `${prefix}-${hex}`;
}
