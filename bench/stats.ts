/** Small statistics helpers shared by the benchmarks. Times are in milliseconds. */
export function percentile(values: number[], p: number): number {
	if (values.length === 0) {
		return NaN;
	}
	const sorted = [...values].sort((a, b) => a - b);
	const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
	return sorted[idx]!;
}

export function summary(values: number[]): { n: number; p50: number; p99: number; mean: number; max: number } {
	const mean = values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);
	return { n: values.length, p50: round(percentile(values, 50)), p99: round(percentile(values, 99)), mean: round(mean), max: round(Math.max(...values)) };
}

export function round(x: number, digits = 3): number {
	const f = 10 ** digits;
	return Math.round(x * f) / f;
}

export function nowMs(): number {
	return Number(process.hrtime.bigint()) / 1e6;
}

export function log(message: string): void {
	process.stderr.write(`[bench] ${message}\n`);
}
