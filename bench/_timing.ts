/**
 * Timing per WORKLOADS.md (shared/): warm-up excluded, at least 5 timed repetitions, median.
 * `latency`: one call, then wait for the device, per repetition.
 * `throughput`: N calls back to back, one wait at the end, time / N.
 *
 * @module
 */

/** How a repetition is timed. */
export type TimingMode = "latency" | "throughput";

/** A workload prepared for timing: its inputs already live where the framework wants them. */
export type Timed = {
  /** Enqueue one call (may run synchronously on CPU backends); owns its outputs' lifetimes. */
  run: () => void | Promise<void>;
  /** Wait until everything enqueued so far has finished on the device. */
  wait: () => Promise<void>;
};

/** Options of {@linkcode timeWorkload}. */
export type TimingOptions = {
  /** Timing mode; default "latency". */
  mode?: TimingMode;
  /** Timed repetitions, at least 5; default 5. */
  reps?: number;
  /** Warm-up calls; default 2 (only 1 when the first takes longer than 5 s); 0 when the caller
   * already warmed up (then give `estimateMs`). */
  warmup?: number;
  /** Estimated time of one call (ms), used to size throughput repetitions without warm-up. */
  estimateMs?: number;
  /** Calls per throughput repetition; default: 20, or fewer when they already fill 1 s. */
  calls?: number;
  /** A warm-up call slower than this (ms) ends timing with `tooSlow`; default 60000. */
  maxCallMs?: number;
};

/** The outcome of {@linkcode timeWorkload}. */
export type Timing = {
  /** The mode used. */
  mode: TimingMode;
  /** Median of the per-call times of the repetitions, ms. */
  ms: number;
  /** Per-call time of every repetition, ms. */
  samples: number[];
  /** Calls per repetition (1 in latency mode). */
  calls: number;
  /** Time of each warm-up call (first includes compilation), ms. */
  warmupMs: number[];
  /** True when a warm-up call exceeded `maxCallMs`; `ms` is then that call's time. */
  tooSlow?: boolean;
};

/**
 * Median of a non-empty list of numbers.
 *
 * @example
 * ```ts
 * import { median } from "./_timing.ts";
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("Cannot take the median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

async function once(t: Timed): Promise<number> {
  const t0 = performance.now();
  await t.run();
  await t.wait();
  return performance.now() - t0;
}

/**
 * Times a prepared workload: warm-up, then `reps` repetitions, median per call.
 *
 * @example
 * ```ts
 * import { timeWorkload } from "./_timing.ts";
 * let n = 0;
 * const t = await timeWorkload({ run: () => { n++; }, wait: async () => {} }, { warmup: 1 });
 * t.samples.length; // 5
 * ```
 */
export async function timeWorkload(t: Timed, opts: TimingOptions = {}): Promise<Timing> {
  const mode = opts.mode ?? "latency";
  const reps = opts.reps ?? 5;
  if (!Number.isInteger(reps) || reps < 5) {
    throw new RangeError(`Repetitions ${reps} is not an integer of at least 5`);
  }
  const maxCallMs = opts.maxCallMs ?? 60_000;
  const warmupMs: number[] = [];
  const warmups = opts.warmup ?? 2;
  if (!Number.isInteger(warmups) || warmups < 0) {
    throw new RangeError(`Warm-up count ${warmups} is not a non-negative integer`);
  }
  for (let i = 0; i < warmups; i++) {
    const ms = await once(t);
    warmupMs.push(ms);
    if (ms > maxCallMs) return { mode, ms, samples: [], calls: 1, warmupMs, tooSlow: true };
    if (ms > 5000 && opts.warmup === undefined) break;
  }
  const est = warmupMs.length ? warmupMs[warmupMs.length - 1] : (opts.estimateMs ?? 50);
  const calls = mode === "latency"
    ? 1
    : (opts.calls ?? Math.max(1, Math.min(20, Math.ceil(1000 / Math.max(est, 1e-3)))));
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await t.run();
    await t.wait();
    samples.push((performance.now() - t0) / calls);
  }
  return { mode, ms: median(samples), samples, calls, warmupMs };
}
