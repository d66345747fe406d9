/**
 * Kernels chosen by measurement. Each kernel class (a convolution's direction and shape, or a
 * matmul's shape: a {@linkcode TunedKernel}) has a search space of variants
 * ({@linkcode candidatesOf}: for convolutions rows with several thread tiles, the implicit GEMM
 * with several register blocks, explicit columns; for matmul the tiles and split-K factors);
 * {@linkcode measureKernel} times each on the device (pipeline creation and first dispatch,
 * where llvmpipe compiles, counted apart from the steady run time), checks it against the first
 * candidate's result, and {@linkcode pick} keeps the one with the least
 * `run + compile / horizon` milliseconds.
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
import { type GemmConfig, gemmConfigs } from "./_gemm.ts";
import { matmulKernel, type MatmulSpec } from "./matmul.ts";
import type { KernelPlan } from "./types.ts";
import { renderWgsl } from "../src/kernel/wgsl.ts";
import type { GemmShape } from "../src/kernel/wasm_gemm.ts";
import { hashFill, type PreparedPlan, preparePlan, readBuffer } from "./_harness_test_util.ts";

/** The three convolution kernels. */
export type ConvDirection = "forward" | "backInput" | "backFilter";

/** The wasm backend's GEMM blocking as a tuning variant (`src/backend/wasm/tune.ts`). */
export type WasmGemmVariant = { algo: "wasmGemm" } & Omit<GemmShape, "fma">;

/** A matmul's tile and split-K factor as a tuning variant. */
export type MatmulVariant = { algo: "matmul" } & GemmConfig;

/**
 * What a tuning record chooses among: a convolution kernel's variant, a matmul's tile, or the
 * wasm GEMM's blocking.
 */
export type Variant = ConvVariant | MatmulVariant | WasmGemmVariant;

/** A matmul's shape as tuned (no epilogue, split bindings or tile). */
export type MatmulShape = Pick<
  MatmulSpec,
  "batch" | "m" | "n" | "k" | "transA" | "transB" | "broadcastA" | "broadcastB" | "profile"
>;

/** A kernel the tuner chooses for: a convolution in one direction, or a matmul. */
export type TunedKernel =
  | { direction: ConvDirection; spec: Conv2dSpec }
  | { direction: "matmul"; spec: MatmulShape };

/** One candidate's measurement. */
export interface Measured {
  /** The variant (`null`: the heuristic default). */
  variant: Variant | null;
  /** Steady milliseconds per run (median of trials). */
  runMs: number;
  /** Milliseconds of pipeline creation and first dispatch beyond one run (the compilation). */
  compileMs: number;
  /** Largest |difference| from the first candidate's result over its largest |value|. */
  error: number;
}

/**
 * A kernel class's tuning record: every candidate measured, in the order tried (the first is
 * the reference), and the kernel's direction and shape, kept so that the class can be measured
 * again.
 */
export type TuneRecord = { candidates: Measured[] } & Partial<TunedKernel>;

/**
 * The kernel a record was measured on, when it names one.
 *
 * @example
 * ```ts
 * import { recordKernel } from "./tune.ts";
 * import assert from "node:assert/strict";
 * const spec = { batch: 1, m: 2, n: 2, k: 2 };
 * assert.deepEqual(recordKernel({ candidates: [], direction: "matmul", spec }), { direction: "matmul", spec });
 * assert.equal(recordKernel({ candidates: [] }), undefined);
 * ```
 */
export function recordKernel(r: TuneRecord): TunedKernel | undefined {
  if (r.direction === "matmul") return r.spec && { direction: "matmul", spec: r.spec };
  const spec = r.spec;
  if (r.direction === undefined || spec === undefined || !("inChannels" in spec)) return undefined;
  return { direction: r.direction, spec };
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

/**
 * The class of a matmul: its shape and operand layout, e.g.
 * `matmul x1 128x4096·4096x128 tA0 tB0 bA0 bB0`.
 *
 * @example
 * ```ts
 * import { matmulClass } from "./tune.ts";
 * import assert from "node:assert/strict";
 * assert.equal(matmulClass({ batch: 1, m: 2, n: 3, k: 4, transB: true }), "matmul x1 2x4·4x3 tA0 tB1 bA0 bB0");
 * ```
 */
export function matmulClass(s: MatmulShape): string {
  const f = (b: boolean | undefined) => b ? 1 : 0;
  return `matmul x${s.batch} ${s.m}x${s.k}·${s.k}x${s.n} tA${f(s.transA)} tB${f(s.transB)} bA${
    f(s.broadcastA)
  } bB${f(s.broadcastB)}`;
}

/**
 * The class key of a tuned kernel ({@linkcode convClass} or {@linkcode matmulClass}).
 *
 * @example
 * ```ts
 * import { classOf } from "./tune.ts";
 * classOf({ direction: "matmul", spec: { batch: 1, m: 2, n: 3, k: 4 } }); // "matmul x1 2x4·4x3 tA0 tB0 bA0 bB0"
 * ```
 */
export function classOf(k: TunedKernel): string {
  return k.direction === "matmul" ? matmulClass(k.spec) : convClass(k.direction, k.spec);
}

/**
 * Whether a variant is a convolution's (not a matmul tile or a wasm blocking).
 *
 * @example
 * ```ts
 * import { isConvVariant } from "./tune.ts";
 * isConvVariant({ algo: "rows", tm: 8, tn: 16 }); // true
 * ```
 */
export function isConvVariant(v: Variant): v is ConvVariant {
  return v.algo !== "matmul" && v.algo !== "wasmGemm";
}

/** A short name of a variant, e.g. `rows 16x64`, `implicit 16`, `matmul 8x8 split 4`, `default`. */
export function variantName(v: Variant | null): string {
  if (v === null) return "default";
  if (v.algo === "matmul") {
    const t = v.tile;
    return `matmul ${t.tm}x${t.tn}${t.staging === "registers" ? "" : ` of ${t.bm}x${t.bn}`}${
      v.splitK > 1 ? ` split ${v.splitK}` : ""
    }`;
  }
  if (v.algo === "wasmGemm") {
    return `wasm ${v.mr}x${v.nr} kc ${v.kc} nc ${v.nc} x${v.unroll} ${v.aLoad}`;
  }
  if (v.algo === "rows") return `rows ${v.tm}x${v.tn}`;
  if (v.algo === "rowsFilter") return `rows ${v.to}x${v.tc}${v.rh ? ` by ${v.rh}` : ""}`;
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
    // Two or four rows per step: each input row loaded serves up to three output rows, and
    // the accumulators stay as many (llvmpipe loads storage one lane at a time, so fewer loads
    // per multiply-add is what a bigger tile buys; 8x4 by 4 rows measured 12-17% faster than
    // by 2 on C1's weight gradient).
    for (
      const [to, tc, rh] of [
        [4, 1],
        [4, 2],
        [8, 1],
        [8, 2],
        [8, 2, 2],
        [16, 1],
        [8, 4],
        [8, 4, 2],
        [8, 4, 4],
      ]
    ) {
      space.push(
        rh === undefined ? { algo: "rowsFilter", to, tc } : { algo: "rowsFilter", to, tc, rh },
      );
    }
  } else {
    // By sub-pixels (a stride-2 input gradient) a thread keeps four values per pixel.
    const subpixel = direction === "backInput" && conv2dGeometry(spec).sh === 2;
    const tiles = subpixel
      ? [[8, 4], [8, 8], [8, 16], [16, 8], [16, 16]]
      : [[8, 16], [8, 32], [16, 32], [8, 64], [16, 64]];
    for (const [tm, most] of tiles) {
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
  return distinct(
    [space[0], null, ...space.slice(1)],
    (v) => planOrNull(direction, v === null ? base : { ...base, variant: v }),
  );
}

/**
 * The search space of a matmul class: its tiles and split-K factors ({@linkcode gemmConfigs}),
 * the cheapest to compile first (the reference), the heuristic default (`null`) second, then
 * the rest; variants that generate the same code as an earlier one are dropped.
 *
 * @example
 * ```ts
 * import { matmulCandidates } from "./tune.ts";
 * const vs = matmulCandidates({ batch: 1, m: 512, n: 512, k: 512, profile: "llvmpipe" });
 * vs[0]?.algo === "matmul" && vs[1] === null; // true
 * ```
 */
export function matmulCandidates(spec: MatmulShape): (MatmulVariant | null)[] {
  const configs = gemmConfigs(spec, {
    profile: spec.profile,
    tmMultipleOf4: (spec.transA ?? false) && spec.m % 4 === 0,
  });
  const space = configs.map((c): MatmulVariant => ({ algo: "matmul", ...c }));
  return distinct(
    [space[0], null, ...space.slice(1)],
    (v) => planOf({ direction: "matmul", spec }, v),
  );
}

/**
 * The candidates of a tuned kernel class ({@linkcode convCandidates}, {@linkcode matmulCandidates}).
 *
 * @example
 * ```ts
 * import { candidatesOf } from "./tune.ts";
 * candidatesOf({ direction: "matmul", spec: { batch: 1, m: 64, n: 64, k: 64 } }).length > 0; // true
 * ```
 */
export function candidatesOf(k: TunedKernel): (Variant | null)[] {
  return k.direction === "matmul" ? matmulCandidates(k.spec) : convCandidates(k.direction, k.spec);
}

/** The variants whose plans exist and differ in code, in order. */
function distinct<V>(variants: readonly V[], plan: (v: V) => KernelPlan | null): V[] {
  const seen = new Set<string>();
  const out: V[] = [];
  for (const v of variants) {
    const p = plan(v);
    if (p === null) continue;
    const code = p.steps.map((s) => renderWgsl(s.kernel)).join("\n");
    if (seen.has(code)) continue;
    seen.add(code);
    out.push(v);
  }
  return out;
}

/** The plan of a tuned kernel with `variant` (null: the default), or null where it does not apply. */
function planOf(k: TunedKernel, variant: Variant | null): KernelPlan | null {
  if (k.direction === "matmul") {
    if (variant !== null && variant.algo !== "matmul") return null;
    const chosen = variant === null ? {} : { tile: variant.tile, splitK: variant.splitK };
    return matmulKernel({ ...k.spec, ...chosen });
  }
  if (variant !== null && !isConvVariant(variant)) return null;
  const base = { ...k.spec, epilogue: undefined, split: undefined };
  return planOrNull(k.direction, variant === null ? base : { ...base, variant });
}

/** Input and output bindings of a tuned kernel, with seeded values (the workloads' seeds). */
function kernelBuffers(k: TunedKernel): { inputs: Record<string, Float32Array>; out: number } {
  if (k.direction === "matmul") {
    const { batch, m, n } = k.spec;
    const aLen = (k.spec.broadcastA ? 1 : batch) * m * k.spec.k;
    const bLen = (k.spec.broadcastB ? 1 : batch) * k.spec.k * n;
    return { inputs: { a: hashFill(aLen, 1), b: hashFill(bLen, 2) }, out: batch * m * n };
  }
  const g = conv2dGeometry(k.spec);
  const xLen = g.n * g.c * g.h * g.w;
  const wLen = g.o * (g.c / g.groups) * g.kh * g.kw;
  const yLen = g.n * g.o * g.oh * g.ow;
  if (k.direction === "forward") {
    return { inputs: { x: hashFill(xLen, 11), w: hashFill(wLen, 12, 1 / 24) }, out: yLen };
  }
  if (k.direction === "backInput") {
    return { inputs: { dy: hashFill(yLen, 13), w: hashFill(wLen, 12, 1 / 24) }, out: xLen };
  }
  return { inputs: { x: hashFill(xLen, 11), dy: hashFill(yLen, 13) }, out: wLen };
}

/**
 * Measures the candidates of a kernel class on `device`: for each, the pipeline creation and
 * first dispatch (llvmpipe compiles there) and its result against the first candidate's; then
 * the steady time per run, the median over `trials` rounds (5), each round timing every
 * candidate once in turn (a batch of back-to-back runs of at least `minBatchMs`), so that a slow
 * spell of a shared machine weighs on all candidates alike. The median, not the minimum: on a
 * shared 2-core VM one lucky batch made a candidate 1.7x slower than the default look faster
 * (C1's weight gradient, rows 8x1). A batch is timed on the device with
 * `timestamp-query` where the device has it (one submission, no host round trips counted), else
 * on the host. Candidates after the time budget is spent
 * are not measured.
 *
 * @example
 * ```ts ignore
 * import { candidatesOf, measureKernel } from "./tune.ts";
 * const k = { direction: "forward", spec: { batch: 8, inChannels: 16, height: 16, width: 16, outChannels: 16, kernelH: 3, kernelW: 3, padding: 1 } } as const;
 * const record = await measureKernel(device, k, candidatesOf(k));
 * ```
 */
export async function measureKernel(
  device: GPUDevice,
  kernel: TunedKernel,
  candidates: readonly (Variant | null)[],
  options: { budgetMs?: number; trials?: number; minBatchMs?: number } = {},
): Promise<TuneRecord> {
  const start = performance.now();
  const budget = options.budgetMs ?? Infinity;
  const trials = options.trials ?? 5;
  const minBatch = options.minBatchMs ?? 100;
  const { inputs, out } = kernelBuffers(kernel);
  let reference: Float32Array | null = null;
  // Per candidate: its first dispatch, runs per batch (from one steady run), batches' times.
  const measured: {
    variant: Variant | null;
    error: number;
    firstMs: number;
    reps: number;
    prepared: PreparedPlan;
    batchMs: number[];
  }[] = [];
  const submit = (prepared: PreparedPlan, n: number) => {
    for (let i = 0; i < n; i++) {
      const encoder = device.createCommandEncoder();
      prepared.encode(encoder);
      device.queue.submit([encoder.finish()]);
    }
    return device.queue.onSubmittedWorkDone();
  };
  const stamps = device.features.has("timestamp-query") ? new BatchStamps(device) : null;
  try {
    for (const variant of candidates) {
      // The reference and the default are always measured; the budget cuts the rest.
      if (measured.length > 1 && performance.now() - start > budget) break;
      const plan = planOf(kernel, variant);
      if (plan === null) {
        throw new RangeError(
          `The variant ${variantName(variant)} does not apply to ${classOf(kernel)}`,
        );
      }
      const t0 = performance.now();
      const prepared = await preparePlan(device, plan, { inputs, outputs: { out } });
      try {
        await submit(prepared, 1);
        const firstMs = performance.now() - t0;
        const t = performance.now();
        await submit(prepared, 1);
        const singleMs = performance.now() - t;
        const got = await readBuffer(device, prepared.buffers.get("out")!, out);
        reference ??= got;
        measured.push({
          variant,
          error: relativeError(got, reference),
          firstMs,
          reps: Math.max(1, Math.min(50, Math.ceil(minBatch / Math.max(singleMs, 0.01)))),
          prepared,
          batchMs: [],
        });
      } catch (e) {
        prepared.destroy();
        throw e;
      }
    }
    for (let i = 0; i < trials; i++) {
      for (const m of measured) {
        const t = performance.now();
        const deviceMs = stamps === null
          ? await submit(m.prepared, m.reps).then(() => null)
          : await stamps.time((e) => {
            for (let r = 0; r < m.reps; r++) m.prepared.encode(e);
          });
        m.batchMs.push((deviceMs ?? performance.now() - t) / m.reps);
      }
    }
  } finally {
    stamps?.destroy();
    for (const m of measured) m.prepared.destroy();
  }
  const candidatesOut = measured.map((m): Measured => {
    const runMs = median(m.batchMs);
    // Compilation: the first dispatch's time beyond one steady run.
    return { variant: m.variant, runMs, compileMs: Math.max(0, m.firstMs - runMs), error: m.error };
  });
  if (kernel.direction === "matmul") {
    return { candidates: candidatesOut, direction: "matmul", spec: shapeOf(kernel.spec) };
  }
  const { epilogue: _e, split: _s, variant: _v, ...shape } = kernel.spec;
  return { candidates: candidatesOut, direction: kernel.direction, spec: shape };
}

/**
 * Median of a non-empty list of numbers (the tuner's rounds, the benchmarks' repetitions).
 *
 * @example
 * ```ts
 * import { median } from "./tune.ts";
 * median([3, 1, 2]); // 2
 * ```
 */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError("Cannot take the median of an empty list");
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

/**
 * Device time of a batch of work from `timestamp-query`: empty compute passes before and after
 * it write the two timestamps, so the time excludes the submission and the readback on the host.
 */
class BatchStamps {
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;
  private readonly read: GPUBuffer;
  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: "timestamp", count: 2 });
    this.resolved = device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.read = device.createBuffer({
      size: 16,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }
  /** Milliseconds between the end of the pass before `record`'s work and the start of the one after; null when the timestamps are not increasing (an implementation that writes zeros). */
  async time(record: (encoder: GPUCommandEncoder) => void): Promise<number | null> {
    const encoder = this.device.createCommandEncoder();
    const qs = this.querySet;
    encoder.beginComputePass({ timestampWrites: { querySet: qs, endOfPassWriteIndex: 0 } }).end();
    record(encoder);
    encoder.beginComputePass({ timestampWrites: { querySet: qs, beginningOfPassWriteIndex: 1 } })
      .end();
    encoder.resolveQuerySet(qs, 0, 2, this.resolved, 0);
    encoder.copyBufferToBuffer(this.resolved, 0, this.read, 0, 16);
    this.device.queue.submit([encoder.finish()]);
    await this.read.mapAsync(GPUMapMode.READ);
    const t = new BigInt64Array(this.read.getMappedRange().slice(0));
    this.read.unmap();
    const ns = Number(t[1] - t[0]);
    return ns > 0 ? ns / 1e6 : null;
  }
  destroy(): void {
    this.querySet.destroy();
    this.resolved.destroy();
    this.read.destroy();
  }
}

/** A matmul spec's shape fields only (what a record keeps). */
function shapeOf(s: MatmulShape): MatmulShape {
  const { batch, m, n, k, transA, transB, broadcastA, broadcastB, profile } = s;
  return { batch, m, n, k, transA, transB, broadcastA, broadcastB, profile };
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
