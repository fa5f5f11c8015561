/**
 * Random bytes drawn from the system in blocks: one `getRandomValues` call costs about as much as the rest of
 * a streamed write's host work (Node checks and copies per call), and a turn makes an id per message.
 */
const pool = new Uint8Array(4096);
let poolUsed = pool.length;

const hexOf = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Random ids for rows. Generated in code (never by SQL) so journal replay is deterministic. */
export function newId(prefix: string): string {
	const size = 10;
	if (poolUsed + size > pool.length) {
		globalThis.crypto.getRandomValues(pool);
		poolUsed = 0;
	}
	let hex = '';
	for (let i = poolUsed; i < poolUsed + size; i++) {
		hex += hexOf[pool[i]!]!;
	}
	// Used bytes are never handed out twice: the next id starts after them, and a refill overwrites them all.
	poolUsed += size;
	return `${prefix}-${hex}`;
}
