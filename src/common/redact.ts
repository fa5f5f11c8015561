import type { Logger } from './log';

/** Names of environment variables whose values are treated as secret: keys, tokens, secrets, passwords. */
const secretName = /KEY|TOKEN|SECRET|PASSW(OR)?D|CREDENTIAL|PRIVATE|AUTH(?!OR)/i;
/** Shorter values would redact ordinary words and numbers everywhere; no real key is this short. */
const minSecretLength = 8;

export function looksSecret(name: string): boolean {
	return secretName.test(name);
}

/**
 * Every secret value Agent Tabs knows, and the one way to scrub them from text before it is stored, shown
 * or logged. Values are replaced by `[redacted NAME]` so a reader still sees which secret was there.
 */
export class SecretRedactor {
	private readonly values = new Map<string, string>();
	private pattern: RegExp | undefined;

	/** A value Agent Tabs handed out (an API key) under the variable `name`. */
	add(name: string, value: string | undefined): void {
		if (!value || value.length < minSecretLength || this.values.has(value)) {
			return;
		}
		this.values.set(value, name);
		this.pattern = undefined;
	}

	/** The values of every variable in `env` whose name looks secret, plus the named ones. */
	addEnv(env: Readonly<Record<string, string | undefined>>, alsoSecret: readonly string[] = []): void {
		for (const [name, value] of Object.entries(env)) {
			if (looksSecret(name) || alsoSecret.includes(name)) {
				this.add(name, value);
			}
		}
	}

	get size(): number {
		return this.values.size;
	}

	/**
	 * `redact` for text whose start was cut off: a secret cut in half leaves its end at the start, which
	 * `redact` would not know. An end of a secret at least 4 characters long is redacted too.
	 */
	redactCut(text: string): string {
		let longest = 0;
		let name = '';
		for (const [secret, secretName] of this.values) {
			for (let k = Math.min(secret.length - 1, text.length); k >= 4 && k > longest; k--) {
				if (text.startsWith(secret.slice(secret.length - k))) {
					longest = k;
					name = secretName;
					break;
				}
			}
		}
		return longest > 0 ? `[redacted ${name}]${this.redact(text.slice(longest))}` : this.redact(text);
	}

	/** How many characters at the end of `text` could be the start of a secret that the next chunk completes. */
	heldTail(text: string): number {
		if (this.values.size === 0) {
			return 0;
		}
		let longest = 0;
		for (const secret of this.values.keys()) {
			for (let k = Math.min(secret.length - 1, text.length); k > longest; k--) {
				if (text.endsWith(secret.slice(0, k))) {
					longest = k;
					break;
				}
			}
		}
		return longest;
	}

	/**
	 * Where the first secret in `text` starts: a whole one, or the start of one at its end (`heldTail`);
	 * `text.length` if there is none.
	 */
	secretStart(text: string): number {
		const tail = text.length - this.heldTail(text);
		if (this.values.size === 0 || text.length < minSecretLength) {
			return tail;
		}
		const pattern = this.secretPattern();
		pattern.lastIndex = 0;
		const whole = pattern.exec(text);
		return whole ? Math.min(whole.index, tail) : tail;
	}

	redact(text: string): string {
		if (this.values.size === 0 || text.length < minSecretLength) {
			return text;
		}
		return text.replace(this.secretPattern(), (v) => `[redacted ${this.values.get(v) ?? 'secret'}]`);
	}

	private secretPattern(): RegExp {
		// Longest first, so a secret that contains another is replaced whole.
		return (this.pattern ??= new RegExp(
			[...this.values.keys()]
				.sort((a, b) => b.length - a.length)
				.map((v) => v.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
				.join('|'),
			'g',
		));
	}

	/** A copy of `value` with every string in it (object keys included) redacted. */
	redactDeep<T>(value: T): T {
		if (this.values.size === 0) {
			return value;
		}
		return this.walk(value) as T;
	}

	private walk(value: unknown): unknown {
		if (typeof value === 'string') {
			return this.redact(value);
		}
		if (Array.isArray(value)) {
			return value.map((v) => this.walk(v));
		}
		if (typeof value === 'object' && value !== null) {
			const out: Record<string, unknown> = {};
			for (const [k, v] of Object.entries(value)) {
				out[this.redact(k)] = this.walk(v);
			}
			return out;
		}
		return value;
	}
}

/**
 * Redacts a stream of text chunks (an agent's streamed answer), where a secret may be split across chunks:
 * the end of a chunk that could begin a secret is held back until the next chunk or `flush` shows what it is.
 */
export class StreamRedactor {
	private pending = '';

	constructor(private readonly redactor: SecretRedactor) {}

	/** The text that is safe to pass on now. */
	push(chunk: string): string {
		const text = this.redactor.redact(this.pending + chunk);
		const hold = this.redactor.heldTail(text);
		this.pending = hold > 0 ? text.slice(text.length - hold) : '';
		return hold > 0 ? text.slice(0, text.length - hold) : text;
	}

	/** What is held back now, without taking it (it is only ever the start of a secret, never a whole one). */
	get held(): string {
		return this.pending;
	}

	/**
	 * The stream goes on in another message that starts with `next`: returns the part of what is held that
	 * cannot be the start of a secret `next` continues (it still ends the old message); the rest stays held and
	 * goes with `next`, so a key split where the agent started a new message is still redacted whole.
	 */
	handOver(next: string): string {
		const ours = Math.min(this.pending.length, this.redactor.secretStart(this.pending + next));
		const rest = this.pending.slice(0, ours);
		this.pending = this.pending.slice(ours);
		return rest;
	}

	/** What is still held back (the stream ended, or something else comes next). */
	flush(): string {
		const rest = this.pending;
		this.pending = '';
		return rest;
	}
}

/** A logger that redacts every known secret from messages and their arguments before passing them on. */
export function redactingLogger(inner: Logger, redactor: SecretRedactor): Logger {
	const scrub = (args: unknown[]): unknown[] => args.map((a) => (a instanceof Error ? redactor.redact(a.stack ?? a.message) : redactor.redactDeep(a)));
	return {
		trace: (m, ...a) => inner.trace(redactor.redact(m), ...scrub(a)),
		debug: (m, ...a) => inner.debug(redactor.redact(m), ...scrub(a)),
		info: (m, ...a) => inner.info(redactor.redact(m), ...scrub(a)),
		warn: (m, ...a) => inner.warn(redactor.redact(m), ...scrub(a)),
		error: (m, ...a) => inner.error(redactor.redact(m instanceof Error ? (m.stack ?? m.message) : m), ...scrub(a)),
	};
}
