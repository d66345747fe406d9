/**
 * The result record every peer (TensorFlow.js, jax-js, PyTorch) reports per workload run.
 *
 * @module
 */

import { type Timed, timeWorkload, type TimingMode, type Warmed } from "../_timing.ts";
import { WORKLOADS } from "../_inputs.ts";

/** Workload variants a peer runs (C1 splits into forward and forward+backward). */
export const VARIANTS = ["M1", "M4", "C1-fwd", "C1-fwdbwd", "L1", "T1", "T2"] as const;

/** One variant of {@linkcode VARIANTS}. */
export type Variant = typeof VARIANTS[number];

/** One measurement (or failure) of one framework/backend on one workload variant. */
export type PeerResult = {
  /** "tfjs", "jax-js" or "torch". */
  framework: string;
  /** Framework version. */
  version: string;
  /** Backend name as the framework calls it ("webgpu", "wasm", "cpu", "cuda"). */
  backend: string;
  /** Workload variant. */
  workload: Variant;
  /** Adapter description or device name, where one applies. */
  adapter?: string;
  /** Timing mode; absent when the run failed before timing. */
  mode?: TimingMode;
  /** Median per-call time, ms. */
  ms?: number;
  /** Per-call times of the repetitions, ms. */
  samples?: number[];
  /** Calls per repetition. */
  calls?: number;
  /** A steady warm-up call took longer than the limit: `ms` is that one call's time. */
  tooSlow?: boolean;
  /** The first (compiling) call took longer than its limit: `ms` is that call, no steady one. */
  firstOnly?: boolean;
  /** Time of the first call, which includes compilation (excluded from `ms`), ms. */
  firstMs?: number;
  /** Derived rate: "GFLOP/s" for M1/M4 and C1, "images/s" for T1/T2. */
  rate?: { value: number; unit: string };
  /** Loss value (L1: the CosFace loss; T1/T2: the loss of the first step). */
  loss?: number;
  /** Correctness check against an independent JS reference or the known loss. */
  check?: string;
  /** True when the check found a wrong result (the time is reported but marked). */
  wrong?: boolean;
  /** Other facts (loss after one step, gradient norms, ...). */
  extra?: Record<string, number | string | boolean>;
  /** Why no time was measured. */
  error?: string;
};

/**
 * Floating-point operations of a workload variant (for the rates), or undefined.
 *
 * @example
 * ```ts
 * import { flopsOf } from "./_result.ts";
 * flopsOf("M1"); // 2147483648
 * ```
 */
export function flopsOf(v: Variant): number | undefined {
  const conv = 2 * 16 * 56 * 56 * 64 * 64 * 9;
  switch (v) {
    case "M1":
      return 2 * 1024 ** 3;
    case "M4":
      return 2 * 4096 ** 3;
    case "C1-fwd":
      return conv;
    case "C1-fwdbwd":
      return 3 * conv;
    case "L1":
      return 3 * 2 * 256 * 10000 * 512;
    default:
      return undefined;
  }
}

/**
 * Fills `rate` from `ms`: GFLOP/s for M/C/L workloads, images/s for T workloads.
 *
 * @example
 * ```ts
 * import { withRate } from "./_result.ts";
 * withRate({ framework: "x", version: "1", backend: "cpu", workload: "M1", ms: 1000 }).rate;
 * // { value: 2.147483648, unit: "GFLOP/s" }
 * ```
 */
export function withRate(r: PeerResult): PeerResult {
  if (r.ms === undefined || r.error !== undefined) return r;
  if (r.workload === "T1" || r.workload === "T2") {
    const batch = r.workload === "T1" ? 128 : 256;
    return { ...r, rate: { value: batch / (r.ms / 1000), unit: "images/s" } };
  }
  const f = flopsOf(r.workload);
  return f === undefined ? r : { ...r, rate: { value: f / (r.ms / 1000) / 1e9, unit: "GFLOP/s" } };
}

/**
 * Short text of an error for a table cell.
 *
 * @example
 * ```ts
 * import { errorText } from "./_result.ts";
 * errorText(new Error("boom\nstack")); // "Error: boom"
 * ```
 */
export function errorText(e: unknown): string {
  const s = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  return s.split("\n")[0].slice(0, 200);
}

/**
 * Euclidean norm of a vector, accumulated in float64 on the host.
 *
 * @example
 * ```ts
 * import { hostNorm } from "./_result.ts";
 * hostNorm([3, 4]); // 5
 * ```
 */
export function hostNorm(v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < v.length; i++) s += v[i] * v[i];
  return Math.sqrt(s);
}

/**
 * The L1 check: the loss within 1e-3 of 35.8995 and both gradient norms within 1e-3
 * (relative) of PyTorch's float64 values.
 *
 * @example
 * ```ts
 * import { l1Check } from "./_result.ts";
 * l1Check(35.8995, 0.3113802, 0.3118896).wrong; // false
 * ```
 */
export function l1Check(
  loss: number,
  gradFeaturesNorm: number,
  gradWeightsNorm: number,
): Pick<PeerResult, "check" | "wrong" | "extra"> {
  const p = WORKLOADS.L1.params;
  const lossOk = Math.abs(loss - p.expectedLoss) <= 1e-3;
  const gxErr = Math.abs(gradFeaturesNorm / p.gradFeaturesNorm - 1);
  const gwErr = Math.abs(gradWeightsNorm / p.gradWeightsNorm - 1);
  const gradsOk = gxErr <= 1e-3 && gwErr <= 1e-3;
  return {
    check: `loss ${loss.toFixed(4)} ${lossOk ? "==" : "!="} ${p.expectedLoss}; grad norms ${
      gradsOk ? "ok" : "WRONG"
    } (rel err ${gxErr.toExponential(1)}, ${gwErr.toExponential(1)})`,
    wrong: !lossOk || !gradsOk,
    extra: { gradFeaturesNorm, gradWeightsNorm },
  };
}

/** Calls a peer made before timing (T1/T2: two untimed steps that read the losses). */
export type Prewarmed = Warmed & { facts: Partial<PeerResult> };

/** A workload prepared by a peer module: timing hooks, a check, calls made already. */
export type PreparedRun = Timed & {
  /** Checks the last call's outputs; returns loss/check facts. Called after the first timing. */
  check?: () => Promise<Partial<PeerResult>>;
  /** Calls made before timing and their facts. */
  prewarmed?: Prewarmed;
};

/** How one framework prepares each kind of workload (see {@linkcode prepareVariant}). */
export type Preparers<P> = {
  /** M1 (n = 1024) and M4 (n = 4096). */
  matmul: (n: 1024 | 4096) => P;
  /** C1 forward, or forward + backward. */
  conv: (backward: boolean) => P;
  /** L1. */
  cosface: () => P;
  /** T1 and T2. */
  train: (id: "T1" | "T2") => P | Promise<P>;
};

/**
 * Prepares `workload` with the framework's preparer for its kind.
 *
 * @example
 * ```ts
 * import { prepareVariant } from "./_result.ts";
 * const p = { matmul: (n: 1024 | 4096) => `mm${n}`, conv: (b: boolean) => `conv${b}`,
 *   cosface: () => "l1", train: (id: string) => id };
 * await prepareVariant("M4", p); // "mm4096"
 * ```
 */
export async function prepareVariant<P>(workload: Variant, p: Preparers<P>): Promise<P> {
  switch (workload) {
    case "M1":
      return p.matmul(1024);
    case "M4":
      return p.matmul(4096);
    case "C1-fwd":
      return p.conv(false);
    case "C1-fwdbwd":
      return p.conv(true);
    case "L1":
      return p.cosface();
    default:
      return await p.train(workload);
  }
}

/** Options of {@linkcode timedResults}. */
export type TimedResultsOptions = {
  /** Timing modes, in order; the workload is warmed once for all of them. */
  modes: TimingMode[];
  /** Timed repetitions (at least 5). */
  reps?: number;
  /** A steady call slower than this (ms) ends timing as too slow; default 60000. */
  maxCallMs?: number;
  /** Run the check after a too-slow steady call too (its outputs exist); default true. */
  checkTooSlow?: boolean;
};

/**
 * Times a prepared workload in each mode (the first, compiling call excluded and reported as
 * `firstMs`; "too slow" decided on a steady call) and makes one result per mode, or a single
 * result marked `tooSlow` (and `firstOnly` when no steady call was made).
 *
 * @example
 * ```ts
 * import { timedResults } from "./_result.ts";
 * const base = { framework: "x", version: "1", backend: "cpu", workload: "M1" as const };
 * const rs = await timedResults(base, { run: () => {}, wait: async () => {} }, {
 *   modes: ["latency", "throughput"],
 * });
 * rs.map((r) => [r.mode, r.samples?.length]); // [["latency", 5], ["throughput", 5]]
 * ```
 */
export async function timedResults(
  base: PeerResult,
  prep: PreparedRun,
  opts: TimedResultsOptions,
): Promise<PeerResult[]> {
  const maxCallMs = opts.maxCallMs ?? 60_000;
  let facts: Partial<PeerResult> = prep.prewarmed?.facts ?? {};
  let warmed: Warmed | undefined = prep.prewarmed;
  if (warmed !== undefined && warmed.steadyMs.length === 0) {
    // The first (compiling) call passed its limit and no steady call was made: no rate.
    return [{
      ...base,
      ...facts,
      mode: opts.modes[0],
      ms: warmed.firstMs,
      firstMs: warmed.firstMs,
      tooSlow: true,
      firstOnly: true,
    }];
  }
  const results: PeerResult[] = [];
  for (const mode of opts.modes) {
    const t = await timeWorkload(prep, { mode, reps: opts.reps, maxCallMs, warmed });
    if (prep.check && results.length === 0 && (!t.tooSlow || (opts.checkTooSlow ?? true))) {
      facts = { ...facts, ...await prep.check() };
    }
    const r: PeerResult = {
      ...base,
      ...facts,
      extra: {
        ...base.extra,
        ...facts.extra,
        warmupMs: t.warmupMs.map((x) => x.toFixed(1)).join(" "),
      },
      mode,
      ms: t.ms,
      samples: t.samples,
      calls: t.calls,
      ...(t.firstMs === undefined ? {} : { firstMs: t.firstMs }),
      ...(t.tooSlow ? { tooSlow: true } : {}),
      ...(t.firstOnly ? { firstOnly: true } : {}),
    };
    results.push(t.firstOnly ? r : withRate(r));
    if (t.tooSlow) break;
    warmed = { firstMs: t.firstMs, steadyMs: [...t.warmupMs, t.ms] };
  }
  return results;
}
