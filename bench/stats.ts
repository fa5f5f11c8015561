import * as fs from 'node:fs';

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

/** This thread's time on a CPU and time waiting for one (ns), from Linux's schedstat; undefined elsewhere. */
function schedStat(): { runNs: number; waitNs: number } | undefined {
	try {
		const [run, wait] = fs.readFileSync(`/proc/self/task/${process.pid}/schedstat`, 'utf8').split(' ').map(Number);
		return { runNs: run!, waitNs: wait! };
	} catch {
		return undefined;
	}
}

/** The longest stall a watch saw, and (on Linux) how much of it this thread ran and how much it waited for a CPU. */
export interface Stall {
	ms: number;
	hostRanMs?: number;
	waitedForCpuMs?: number;
}

/**
 * Watches the event loop with a chain of 1 ms timers and reports the longest gap between two of them (or
 * between the last one and `stop()`) beyond the 1 ms asked for: the longest time the thread could not run
 * anything else. On Linux it also says what the thread did in that gap: ran (work on this thread) or waited
 * for a CPU (the machine was busy).
 */
export function stallWatch(): { stop: () => Stall } {
	let last = nowMs();
	let lastSched = schedStat();
	let longest: Stall = { ms: 0 };
	const measure = (): void => {
		const now = nowMs();
		const sched = schedStat();
		if (now - last - 1 > longest.ms) {
			longest = { ms: now - last - 1 };
			if (sched && lastSched) {
				longest.hostRanMs = round((sched.runNs - lastSched.runNs) / 1e6, 2);
				longest.waitedForCpuMs = round((sched.waitNs - lastSched.waitNs) / 1e6, 2);
			}
		}
		last = now;
		lastSched = sched;
	};
	const tick = (): void => {
		measure();
		timer = setTimeout(tick, 1);
	};
	let timer = setTimeout(tick, 1);
	return {
		stop: () => {
			clearTimeout(timer);
			measure();
			return { ...longest, ms: Math.max(0, longest.ms) };
		},
	};
}
