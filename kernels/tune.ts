/**
 * Kernels chosen by measurement. Each convolution kernel class (direction and shape) has a
 * search space of variants ({@linkcode convCandidates}: rows with several thread tiles, the
 * implicit GEMM with several register blocks, explicit columns); {@linkcode measureConv} times
 * each on the device (pipeline creation and first dispatch, where llvmpipe compiles, counted
 * apart from the steady run time), checks it against the first candidate's result, and
 * {@linkcode pick} keeps the one with the least `run + compile / horizon` milliseconds.
 *
 * Choices live in a {@linkcode TuningTable}: in memory, in a JSON file that persists across runs
 * ({@linkcode tuneCachePath}: `COSGRAD_TUNE_CACHE`, else `$XDG_CACHE_HOME/cosgrad/tune.json`,
 * else `~/.cache/cosgrad/tune.json`), and in tables shipped with the package for known adapters
 * (`tuned_llvmpipe.json`). `COSGRAD_TUNE=off` uses none of them (heuristic defaults from the
 * device profile); `COSGRAD_DEBUG=tune` prints each choice with its candidates' times.
 *
 * @module
 */
import {
  conv2dBackwardFilterKernel,
  conv2dBackwardInputKernel,
  conv2dForwardKernel,
  conv2dGeometry,
  type Conv2dSpec,
  type ConvVariant,
} from "./conv2d.ts";
import type { KernelPlan } from "./types.ts";
import { renderWgsl } from "../src/kernel/wgsl.ts";
import type { GemmShape } from "../src/kernel/wasm_gemm.ts";
import { hashFill, preparePlan, readBuffer } from "./_harness_test_util.ts";

/** The three convolution kernels. */
export type ConvDirection = "forward" | "backInput" | "backFilter";

/** The wasm backend's GEMM blocking as a tuning variant (`src/backend/wasm/tune.ts`). */
export type WasmGemmVariant = { algo: "wasmGemm" } & Omit<GemmShape, "fma">;

/** What a tuning record chooses among: a convolution kernel's variant or the wasm GEMM's blocking. */
export type Variant = ConvVariant | WasmGemmVariant;

/** One candidate's measurement. */
export interface Measured {
  /** The variant (`null`: the heuristic default). */
  variant: Variant | null;
  /** Steady milliseconds per run (minimum of trials). */
  runMs: number;
  /** Milliseconds of pipeline creation and first dispatch beyond one run (the compilation). */
  compileMs: number;
  /** Largest |difference| from the first candidate's result over its largest |value|. */
  error: number;
}

/** A kernel class's tuning record: every candidate measured, in the order tried. */
export interface TuneRecord {
  /** The candidates' measurements, in the order tried (the first is the reference). */
  candidates: Measured[];
  /** The kernel's direction (kept so that the class can be measured again). */
  direction?: ConvDirection;
  /** The kernel's shape (no epilogue or split). */
  spec?: Conv2dSpec;
}

/** The kernel's plan for `direction`. */
export function convPlan(direction: ConvDirection, spec: Conv2dSpec): KernelPlan {
  return direction === "forward"
    ? conv2dForwardKernel(spec)
    : direction === "backInput"
    ? conv2dBackwardInputKernel(spec)
    : conv2dBackwardFilterKernel(spec);
}

/**
 * The class of a convolution kernel: its direction and everything of the shape (not the
 * epilogue, binding splits or overrides), e.g. `conv2d.forward x128x3x64x64 w32x3x3x3 s2x2
 * p1,1,1,1 d1x1 g1`.
 *
 * @example
 * ```ts
 * import { convClass } from "./tune.ts";
 * import assert from "node:assert/strict";
 * const spec = {
 *   batch: 2, inChannels: 3, height: 8, width: 8, outChannels: 4, kernelH: 3, kernelW: 3,
 *   padding: 1,
 * };
 * assert.equal(convClass("forward", spec), "conv2d.forward x2x3x8x8 w4x3x3x3 s1x1 p1,1,1,1 d1x1 g1");
 * ```
 */
export function convClass(direction: ConvDirection, spec: Conv2dSpec): string {
  const g = conv2dGeometry(spec);
  const p = g.pad;
  return `conv2d.${direction} x${g.n}x${g.c}x${g.h}x${g.w} w${g.o}x${
    g.c / g.groups
  }x${g.kh}x${g.kw} ` +
    `s${g.sh}x${g.sw} p${p.top},${p.bottom},${p.left},${p.right} d${g.dh}x${g.dw} g${g.groups}`;
}

/** A short name of a variant, e.g. `rows 16x64`, `implicit 16`, `default`. */
export function variantName(v: Variant | null): string {
  if (v === null) return "default";
  if (v.algo === "wasmGemm") {
    return `wasm ${v.mr}x${v.nr} kc ${v.kc} nc ${v.nc} x${v.unroll} ${v.aLoad}`;
  }
  if (v.algo === "rows") return `rows ${v.tm}x${v.tn}`;
  if (v.algo === "rowsFilter") return `rows ${v.to}x${v.tc}`;
  if (v.algo === "implicit") return `implicit ${v.cap}`;
  return "explicit";
}

/** The first code of a plan, or null when the variant does not apply (RangeError). */
function planOrNull(direction: ConvDirection, spec: Conv2dSpec): KernelPlan | null {
  try {
    return convPlan(direction, spec);
  } catch (e) {
    if (e instanceof RangeError) return null;
    throw e;
  }
}

/**
 * The search space of a convolution kernel class: the variants that apply to the shape, each
 * producing a different kernel (variants that generate the same code as an earlier one are
 * dropped): the cheapest to compile first (the reference), the heuristic default (`null`)
 * second, then the others, cheapest first.
 *
 * @example
 * ```ts
 * import { convCandidates } from "./tune.ts";
 * const spec = {
 *   batch: 8, inChannels: 16, height: 16, width: 16, outChannels: 16, kernelH: 3, kernelW: 3,
 *   padding: 1,
 * };
 * const vs = convCandidates("forward", spec);
 * vs[0]?.algo === "implicit" && vs.some((v) => v?.algo === "rows"); // true
 * ```
 */
export function convCandidates(
  direction: ConvDirection,
  spec: Conv2dSpec,
): (ConvVariant | null)[] {
  const base = { ...spec, epilogue: undefined, split: undefined };
  // Cheapest to compile first (llvmpipe compiles a 32x16 register block for a minute or
  // more): the first is the reference the others are checked against, then the heuristic
  // default (always measured, so tuning never loses the hand-picked path), then the rest in
  // order of compile cost, which a spent tuning budget cuts short.
  const space: ConvVariant[] = [{ algo: "implicit", cap: 8 }];
  if (direction === "backFilter") {
    for (const [to, tc] of [[4, 1], [4, 2], [8, 1], [8, 2], [8, 4]]) {
      space.push({ algo: "rowsFilter", to, tc });
    }
  } else {
    for (const [tm, most] of [[8, 16], [8, 32], [16, 32], [8, 64], [16, 64]]) {
      // The widest thread of at most `most` pixels that tiles the batch.
      for (let tn = most; tn >= 4; tn -= 4) {
        const v: ConvVariant = { algo: "rows", tm, tn };
        if (planOrNull(direction, { ...base, variant: v }) !== null) {
          space.push(v);
          break;
        }
      }
    }
  }
  space.push({ algo: "explicit" }, { algo: "implicit", cap: 16 }, { algo: "implicit", cap: 32 });
  const seen = new Set<string>();
  const out: (ConvVariant | null)[] = [];
  for (const v of [space[0], null, ...space.slice(1)]) {
    const plan = planOrNull(direction, v === null ? base : { ...base, variant: v });
    if (plan === null) continue;
    const code = plan.steps.map((s) => renderWgsl(s.kernel)).join("\n");
    if (seen.has(code)) continue;
    seen.add(code);
    out.push(v);
  }
  return out;
}

/** Input and output bindings of a convolution kernel, with seeded values. */
function convBuffers(
  direction: ConvDirection,
  spec: Conv2dSpec,
): { inputs: Record<string, Float32Array>; out: number } {
  const g = conv2dGeometry(spec);
  const xLen = g.n * g.c * g.h * g.w;
  const wLen = g.o * (g.c / g.groups) * g.kh * g.kw;
  const yLen = g.n * g.o * g.oh * g.ow;
  if (direction === "forward") {
    return { inputs: { x: hashFill(xLen, 11), w: hashFill(wLen, 12, 1 / 24) }, out: yLen };
  }
  if (direction === "backInput") {
    return { inputs: { dy: hashFill(yLen, 13), w: hashFill(wLen, 12, 1 / 24) }, out: xLen };
  }
  return { inputs: { x: hashFill(xLen, 11), dy: hashFill(yLen, 13) }, out: wLen };
}

/**
 * Measures the candidates of a convolution kernel class on `device`: for each, the pipeline
 * creation and first dispatch (llvmpipe compiles there) and the steady time per run (the
 * minimum of `trials` batches of back-to-back runs, at least `minBatchMs` each), and its result
 * against the first candidate's. Candidates after the time budget is spent are not measured.
 *
 * @example
 * ```ts ignore
 * import { convCandidates, measureConv } from "./tune.ts";
 * const spec = { batch: 8, inChannels: 16, height: 16, width: 16, outChannels: 16, kernelH: 3, kernelW: 3, padding: 1 };
 * const record = await measureConv(device, "forward", spec, convCandidates("forward", spec));
 * ```
 */
export async function measureConv(
  device: GPUDevice,
  direction: ConvDirection,
  spec: Conv2dSpec,
  candidates: readonly (ConvVariant | null)[],
  options: { budgetMs?: number; trials?: number; minBatchMs?: number } = {},
): Promise<TuneRecord> {
  const start = performance.now();
  const budget = options.budgetMs ?? Infinity;
  const trials = options.trials ?? 3;
  const minBatch = options.minBatchMs ?? 100;
  const { inputs, out } = convBuffers(direction, spec);
  const base = { ...spec, epilogue: undefined, split: undefined };
  let reference: Float32Array | null = null;
  const measured: Measured[] = [];
  for (const variant of candidates) {
    // The reference and the default are always measured; the budget cuts the rest.
    if (measured.length > 1 && performance.now() - start > budget) break;
    const plan = convPlan(direction, variant === null ? base : { ...base, variant });
    const t0 = performance.now();
    const prepared = await preparePlan(device, plan, { inputs, outputs: { out } });
    try {
      const submit = (n: number) => {
        for (let i = 0; i < n; i++) {
          const encoder = device.createCommandEncoder();
          prepared.encode(encoder);
          device.queue.submit([encoder.finish()]);
        }
        return device.queue.onSubmittedWorkDone();
      };
      await submit(1);
      const firstMs = performance.now() - t0;
      let t = performance.now();
      await submit(1);
      let single = performance.now() - t;
      const reps = Math.max(1, Math.min(50, Math.ceil(minBatch / Math.max(single, 0.01))));
      let runMs = Infinity;
      for (let i = 0; i < trials; i++) {
        t = performance.now();
        await submit(reps);
        runMs = Math.min(runMs, (performance.now() - t) / reps);
      }
      single = Math.min(single, runMs);
      const got = await readBuffer(device, prepared.buffers.get("out")!, out);
      reference ??= got;
      measured.push({
        variant,
        runMs,
        compileMs: Math.max(0, firstMs - single),
        error: relativeError(got, reference),
      });
    } finally {
      prepared.destroy();
    }
  }
  const { epilogue: _e, split: _s, variant: _v, ...shape } = spec;
  return { candidates: measured, direction, spec: shape };
}

function relativeError(got: Float32Array, want: Float32Array): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return scale === 0 ? diff : diff / scale;
}

/** Largest relative error a candidate may show against the default (float32 sums in another order). */
export const TOLERANCE = 1e-4;

/**
 * The candidate with the least `runMs + compileMs / horizon` among those within
 * {@linkcode TOLERANCE} of the reference: compile time counts, spread over `horizon` runs (a
 * variant that saves 5 ms a run but takes a minute to compile loses over 500 runs).
 *
 * @example
 * ```ts
 * import { pick } from "./tune.ts";
 * import assert from "node:assert/strict";
 * const fast = { variant: { algo: "implicit", cap: 16 } as const, runMs: 10, compileMs: 60_000, error: 0 };
 * const slow = { variant: null, runMs: 15, compileMs: 100, error: 0 };
 * assert.equal(pick({ candidates: [slow, fast] }, 500), slow);
 * assert.equal(pick({ candidates: [slow, fast] }, 100_000), fast);
 * ```
 */
export function pick(record: TuneRecord, horizon: number): Measured {
  let best: Measured | null = null;
  const cost = (m: Measured) => m.runMs + m.compileMs / horizon;
  for (const m of record.candidates) {
    if (!(m.error <= TOLERANCE)) continue;
    if (best === null || cost(m) < cost(best)) best = m;
  }
  if (best === null) throw new RangeError("No candidate matches the default within tolerance");
  return best;
}
