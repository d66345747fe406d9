/**
 * Timing per bench/WORKLOADS.md: the first call (compilation: shader and pipeline creation,
 * tracing) is always excluded and reported on its own as `firstMs`; then steady warm-up calls
 * (default 1), also excluded; then at least 5 timed repetitions, median per call.
 * `latency`: one call, then wait for the device, per repetition.
 * `throughput`: N calls back to back, one wait at the end, time / N.
 *
 * "Too slow" is decided on the last steady warm-up call (never on the compiling first call): a
 * steady call slower than `maxCallMs` ends timing with `tooSlow`, and that one steady call is the
 * reported time. A first call slower than `maxFirstCallMs` (default 5 x `maxCallMs`) ends timing
 * before any steady call (`firstOnly`): the report then holds only the compiling call.
 *
 * @module
 */
import { median } from "../kernels/tune.ts";

/** How a repetition is timed. */
export type TimingMode = "latency" | "throughput";

/** A workload prepared for timing: its inputs already live where the framework wants them. */
export type Timed = {
  /** Enqueue one call (may run synchronously on CPU backends); owns its outputs' lifetimes. */
  run: () => void | Promise<void>;
  /** Wait until everything enqueued so far has finished on the device. */
  wait: () => Promise<void>;
};

/** Calls already made by the caller (or by an earlier timing in another mode). */
export type Warmed = {
  /** Time of the first (compiling) call, ms; undefined when it was not measured. */
  firstMs?: number;
  /** Times of the steady calls made after it, ms (the last one decides "too slow"). */
  steadyMs: number[];
};

/** Options of {@linkcode timeWorkload}. */
export type TimingOptions = {
  /** Timing mode; default "latency". */
  mode?: TimingMode;
  /** Timed repetitions, at least 5; default 5. */
  reps?: number;
  /** Steady warm-up calls after the first (compiling) call, at least 1; default 1. */
  warmup?: number;
  /** The workload is warm already: no first call and no warm-up calls are made. */
  warmed?: Warmed;
  /** Calls per throughput repetition; default: enough to fill 1 s, at least 2, at most 20. */
  calls?: number;
  /** A steady call slower than this (ms) ends timing with `tooSlow`; default 60000. */
  maxCallMs?: number;
  /** A first (compiling) call slower than this (ms) ends timing; default 5 x `maxCallMs`. */
  maxFirstCallMs?: number;
};

/** The outcome of {@linkcode timeWorkload}. */
export type Timing = {
  /** The mode used. */
  mode: TimingMode;
  /** Median of the per-call times of the repetitions, ms (the steady call when `tooSlow`). */
  ms: number;
  /** Per-call time of every repetition, ms. */
  samples: number[];
  /** Calls per repetition (1 in latency mode). */
  calls: number;
  /** Time of the first call, which includes compilation, ms (excluded from `ms`). */
  firstMs?: number;
  /** Times of the steady warm-up calls, ms (excluded from `ms`). */
  warmupMs: number[];
  /** True when a steady call exceeded `maxCallMs` (`ms` is that call's time), or `firstOnly`. */
  tooSlow?: boolean;
  /** True when the first call exceeded `maxFirstCallMs`: no steady call was made, `ms` is it. */
  firstOnly?: boolean;
};

async function once(t: Timed): Promise<number> {
  const t0 = performance.now();
  await t.run();
  await t.wait();
  return performance.now() - t0;
}

/**
 * Calls per throughput repetition for a call of `estimateMs`: enough to fill 1 s, at least 2
 * (so that calls really run back to back), at most 20.
 *
 * @example
 * ```ts
 * import { throughputCalls } from "./_timing.ts";
 * throughputCalls(10); // 20
 * throughputCalls(300); // 4
 * throughputCalls(5000); // 2
 * ```
 */
export function throughputCalls(estimateMs: number): number {
  return Math.max(2, Math.min(20, Math.ceil(1000 / Math.max(estimateMs, 1e-3))));
}

function positiveInt(what: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`${what} ${v} is not an integer of at least ${min}`);
  }
}

/**
 * Times a prepared workload: the first (compiling) call and the steady warm-up calls, both
 * excluded, then `reps` repetitions, median per call. Pass the result's `firstMs` and
 * `warmupMs` as `warmed` to time the same workload in another mode without warming it again.
 *
 * @example
 * ```ts
 * import { timeWorkload } from "./_timing.ts";
 * let n = 0;
 * const t = await timeWorkload({ run: () => { n++; }, wait: async () => {} });
 * [t.samples.length, t.warmupMs.length, n]; // [5, 1, 7]
 * ```
 */
export async function timeWorkload(t: Timed, opts: TimingOptions = {}): Promise<Timing> {
  const mode = opts.mode ?? "latency";
  const reps = opts.reps ?? 5;
  positiveInt("Repetitions", reps, 5);
  const maxCallMs = opts.maxCallMs ?? 60_000;
  const maxFirstCallMs = opts.maxFirstCallMs ?? 5 * maxCallMs;
  const warmups = opts.warmup ?? 1;
  positiveInt("Warm-up count", warmups, 1);
  let firstMs = opts.warmed?.firstMs;
  const warmupMs = [...(opts.warmed?.steadyMs ?? [])];
  const stop = (ms: number, firstOnly = false): Timing => ({
    mode,
    ms,
    samples: [],
    calls: 1,
    ...(firstMs === undefined ? {} : { firstMs }),
    warmupMs,
    tooSlow: true,
    ...(firstOnly ? { firstOnly } : {}),
  });
  if (opts.warmed === undefined) {
    firstMs = await once(t);
    if (firstMs > maxFirstCallMs) return stop(firstMs, true);
    for (let i = 0; i < warmups; i++) {
      const ms = await once(t);
      warmupMs.push(ms);
      if (ms > maxCallMs) return stop(ms);
    }
  } else if (warmupMs.length === 0) {
    throw new RangeError("Warmed workload has no steady call: expected at least one in steadyMs");
  } else if (warmupMs[warmupMs.length - 1] > maxCallMs) {
    return stop(warmupMs[warmupMs.length - 1]);
  }
  const calls = mode === "latency" ? 1 : (opts.calls ?? throughputCalls(warmupMs.at(-1)!));
  positiveInt("Calls per repetition", calls, 1);
  const samples: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    for (let i = 0; i < calls; i++) await t.run();
    await t.wait();
    samples.push((performance.now() - t0) / calls);
  }
  return {
    mode,
    ms: median(samples),
    samples,
    calls,
    ...(firstMs === undefined ? {} : { firstMs }),
    warmupMs,
  };
}
