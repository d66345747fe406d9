/**
 * The wasm GEMM's blocking chosen by measurement, as the WebGPU kernels' variants are: each
 * candidate blocking ({@link gemmCandidates}: rows of the register block, how A is splatted,
 * reduction steps per iteration, reduction chunk) is compiled and timed on this engine and CPU
 * ({@link measureGemm}: two problem shapes, a convolution's and a square one, candidates taken
 * in turns, the least of several trials), checked against the first candidate's result, and
 * the least `run + compile / horizon` is kept ({@link pick} of `kernels/tune.ts`). Records live
 * in the same {@link TuningTable} as the GPU's, under a profile of this engine and CPU, class
 * {@link GEMM_CLASS}: `COSGRAD_TUNE=on` measures when no record exists (about a second),
 * `deno task tune --backend wasm` measures and saves, `COSGRAD_TUNE=off` uses
 * {@link DEFAULT_GEMM}.
 *
 * @module
 */
import { type Measured, pick, type TuneRecord, variantName } from "../../../kernels/tune.ts";
import type { TuningTable } from "../../../kernels/tune_cache.ts";
import {
  GEMM_PARAMS,
  gemmFunction,
  gemmScratchBytes,
  type GemmShape,
  gemmShapeName,
} from "../../kernel/wasm_gemm.ts";
import { encodeModule } from "../../kernel/wasm_writer.ts";

/** The tuning table's class of the wasm GEMM's blocking. */
export const GEMM_CLASS = "wasm.gemm";

/**
 * The GEMM blocking used without a tuning record: a 4x8 block of C (eight accumulators), A's
 * four values per step in one load and splatted by lane shuffles, four reduction steps per loop
 * iteration. Measured on a 2-core AMD EPYC (Zen 4) under Deno 2.9.6, single thread, CPU time:
 * 45.0 GFLOP/s on a 1024^3 product and 38.6 on a 64 x 12544 x 576 convolution-shaped one, against
 * 37.4 and 30.7 for the earlier 6x8 block with one step per iteration.
 */
export const DEFAULT_GEMM: Omit<GemmShape, "fma"> = {
  mr: 4,
  nr: 8,
  kc: 256,
  nc: 512,
  unroll: 4,
  aLoad: "shuffle",
};

/**
 * The blockings tried: 4 or 6 rows of 8 columns (the register file holds 16 v128 values),
 * A splatted per row or by shuffles, 2 or 4 reduction steps per iteration, reduction chunks of
 * 128, 256 or 512; the default first.
 *
 * @example
 * ```ts
 * import { gemmCandidates } from "./tune.ts";
 * gemmCandidates().length; // 24
 * ```
 */
export function gemmCandidates(): Omit<GemmShape, "fma">[] {
  const out: Omit<GemmShape, "fma">[] = [DEFAULT_GEMM];
  for (const mr of [4, 6]) {
    for (const aLoad of ["shuffle", "splat"] as const) {
      for (const unroll of [4, 2]) {
        for (const kc of [256, 128, 512]) {
          const s = { mr, nr: 8, kc, nc: 512, unroll, aLoad };
          if (
            gemmShapeName({ ...s, fma: false }) !== gemmShapeName({ ...DEFAULT_GEMM, fma: false })
          ) {
            out.push(s);
          }
        }
      }
    }
  }
  return out;
}

/** The problems a candidate is timed on: `[m, n, k]`. */
const PROBLEMS: readonly (readonly [number, number, number])[] = [
  [64, 4096, 576], // a 3x3 convolution of 64 channels over 64x64 pixels
  [384, 384, 384],
];

/**
 * Times each blocking on {@link PROBLEMS} (one thread; candidates in turns, `trials` rounds,
 * the least time of each): steady milliseconds for all problems, compile milliseconds, and the
 * largest difference from the first candidate's results over their largest magnitude.
 *
 * @example
 * ```ts ignore
 * import { gemmCandidates, measureGemm } from "./tune.ts";
 * const measured = measureGemm(gemmCandidates().slice(0, 2), { fma: false, trials: 2 });
 * measured.length; // 2
 * ```
 */
export function measureGemm(
  shapes: readonly Omit<GemmShape, "fma">[],
  options: { fma: boolean; trials?: number; shared?: boolean },
): Measured[] {
  const trials = options.trials ?? 5;
  const shared = options.shared ?? false;
  // Each problem's A, B and C apart from the others'.
  const sizes = PROBLEMS.map(([m, n, k]) => m * k + k * n + m * n + 16);
  const bases = sizes.map((_, q) => 4096 + 4 * sizes.slice(0, q).reduce((a, b) => a + b, 0));
  const elems = sizes.reduce((a, b) => a + b, 0);
  const scratch = Math.max(...shapes.map((s) => gemmScratchBytes({ ...s, fma: options.fma })));
  const bytes = 4096 + 4 * elems + scratch + 65536;
  const pages = Math.ceil(bytes / 65536);
  const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared });
  const f32 = new Float32Array(memory.buffer), i32 = new Int32Array(memory.buffer);
  const P = 1024;
  for (let i = 0; i < elems; i++) f32[1024 + i] = Math.sin(i * 0.37) * 0.5;
  const compiled = shapes.map((s) => {
    const t0 = performance.now();
    const mod = new WebAssembly.Module(encodeModule({
      imports: [],
      memory: { initial: pages, maximum: pages, shared },
      functions: [{ name: "gemm", body: gemmFunction({ ...s, fma: options.fma }) }],
    }));
    const gemm = new WebAssembly.Instance(mod, { env: { memory } }).exports.gemm as (
      ...a: number[]
    ) => void;
    return { gemm, compileMs: performance.now() - t0, best: PROBLEMS.map(() => Infinity) };
  });
  /** Runs problem `q` with a candidate; returns its milliseconds and C's address and size. */
  const run = (c: (typeof compiled)[number], q: number) => {
    const [m, n, k] = PROBLEMS[q];
    const A = bases[q], B = A + 4 * m * k, C = B + 4 * k * n, S = 4096 + 4 * elems + 64;
    const p: Record<(typeof GEMM_PARAMS)[number], number> = {
      aBase: A,
      aRs: k,
      aCs: 1,
      aKImg: 0,
      aKImgStride: 0,
      bBase: B,
      bRs: n,
      bCs: 1,
      bNImg: 0,
      bNImgStride: 0,
      cBase: C,
      cRs: n,
      cNImg: 0,
      cNImgStride: 0,
      n,
      k,
      accumulate: 0,
    };
    GEMM_PARAMS.forEach((name, i) => i32[P / 4 + i] = p[name]);
    const t0 = performance.now();
    c.gemm(P, 0, m, 0, n, S);
    return { ms: performance.now() - t0, C, size: m * n };
  };
  // Results of the first candidate, then each one's largest relative difference from them.
  const reference = PROBLEMS.map((_, q) => {
    const r = run(compiled[0], q);
    return f32.slice(r.C / 4, r.C / 4 + r.size);
  });
  const errors = compiled.map((c) => {
    let err = 0;
    PROBLEMS.forEach((_, q) => {
      const r = run(c, q), ref = reference[q];
      let scale = 0, diff = 0;
      for (let i = 0; i < r.size; i++) {
        scale = Math.max(scale, Math.abs(ref[i]));
        diff = Math.max(diff, Math.abs(f32[r.C / 4 + i] - ref[i]));
      }
      err = Math.max(err, diff / Math.max(scale, 1e-30));
    });
    return err;
  });
  for (let t = 0; t < trials; t++) {
    for (const c of compiled) {
      PROBLEMS.forEach((_, q) => c.best[q] = Math.min(c.best[q], run(c, q).ms));
    }
  }
  return compiled.map((c, i) => ({
    variant: { algo: "wasmGemm", ...shapes[i] },
    runMs: c.best.reduce((a, b) => a + b, 0),
    compileMs: c.compileMs,
    error: errors[i],
  }));
}

/** The blocking a record chooses (its least `run + compile / horizon` within tolerance). */
export function chosenGemm(record: TuneRecord, horizon: number): Omit<GemmShape, "fma"> {
  const v = pick(record, horizon).variant;
  if (v?.algo !== "wasmGemm") {
    throw new TypeError(`The wasm GEMM's tuning record chose ${variantName(v)}, not a blocking`);
  }
  const { algo: _algo, ...shape } = v;
  return shape;
}

/**
 * The blocking for a backend: the tuning table's record of {@link GEMM_CLASS} when it has one;
 * else, when `measure` is set (`COSGRAD_TUNE=on`), measures the candidates now and records them
 * (saved to the cache file); else {@link DEFAULT_GEMM}.
 *
 * @example
 * ```ts
 * import { TuningTable } from "../../../kernels/tune_cache.ts";
 * import { DEFAULT_GEMM, gemmShapeFor } from "./tune.ts";
 * const table = new TuningTable("test|wasm", "wasm", { mode: "off", path: null });
 * gemmShapeFor(table, { fma: false }).mr === DEFAULT_GEMM.mr; // true
 * ```
 */
export function gemmShapeFor(
  table: TuningTable,
  options: { fma: boolean; measure?: boolean; shared?: boolean; horizon?: number },
): GemmShape {
  if (table.mode === "off") return { ...DEFAULT_GEMM, fma: options.fma };
  let record = table.get(GEMM_CLASS);
  if (record === undefined && (options.measure ?? table.mode === "on")) {
    record = { candidates: measureGemm(gemmCandidates(), options) };
    table.record(GEMM_CLASS, record);
    table.save();
  }
  if (record === undefined) return { ...DEFAULT_GEMM, fma: options.fma };
  return { ...chosenGemm(record, options.horizon ?? 500), fma: options.fma };
}

/**
 * The tuning profile of this engine and CPU: the user agent, the cores, SIMD features and (where
 * readable) the CPU's model name, e.g. `wasm|Deno/2.9.6|2 cores|fma|AMD EPYC`.
 *
 * @example
 * ```ts
 * import { wasmProfileKey } from "./tune.ts";
 * wasmProfileKey(true).startsWith("wasm|"); // true
 * ```
 */
export function wasmProfileKey(fma: boolean): string {
  const nav = globalThis.navigator;
  return `wasm|${nav?.userAgent ?? "unknown engine"}|${nav?.hardwareConcurrency ?? 1} cores|${
    fma ? "fma" : "no fma"
  }|${cpuModel()}`;
}

/** The CPU's model name from /proc/cpuinfo where Deno may read it, else "unknown cpu". */
function cpuModel(): string {
  const deno = Reflect.get(globalThis, "Deno") as {
    readTextFileSync?: (p: string) => string;
    permissions?: { querySync?: (d: { name: "read"; path: string }) => { state: string } };
  } | undefined;
  try {
    const path = "/proc/cpuinfo";
    if (deno?.permissions?.querySync?.({ name: "read", path }).state !== "granted") {
      return "unknown cpu";
    }
    const line = deno.readTextFileSync!(path).split("\n").find((l) => l.startsWith("model name"));
    return line?.split(":")[1]?.trim() ?? "unknown cpu";
  } catch {
    return "unknown cpu";
  }
}
