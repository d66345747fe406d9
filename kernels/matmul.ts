/**
 * Batched matrix product kernel builder: `C[b] = op(A[b]) · op(B[b])`, register-blocked,
 * shape-specialised, with an optional fused epilogue and split-K for thin shapes with a long
 * reduction. See `_gemm.ts` for the kernel structure.
 *
 * @module
 */
import type { BindingSplit, Epilogue, KernelPlan } from "./types.ts";
import {
  checkTile,
  chooseGemmConfig,
  gemmPlan,
  type GemmTile,
  type KernelProfile,
} from "./_gemm.ts";
import { add, checkInts, mul, U, v } from "./_ir.ts";
import type { Expr } from "../src/kernel/ir.ts";

export { chooseGemmConfig };
export type { GemmConfig, GemmTile, KernelProfile } from "./_gemm.ts";

/** Shape and options of a batched matrix product. */
export interface MatmulSpec {
  /** Number of products; C has shape `[batch, m, n]`. */
  batch: number;
  /** Rows of op(A) and C. */
  m: number;
  /** Columns of op(B) and C. */
  n: number;
  /** Columns of op(A) = rows of op(B). */
  k: number;
  /** A is stored `[k, m]` (row-major) and used transposed; otherwise `[m, k]`. */
  transA?: boolean;
  /** B is stored `[n, k]` and used transposed; otherwise `[k, n]`. */
  transB?: boolean;
  /** One A for every batch entry (batch stride 0); otherwise stride `m*k`. */
  broadcastA?: boolean;
  /** One B for every batch entry (batch stride 0); otherwise stride `k*n`. */
  broadcastB?: boolean;
  /** Fused epilogue; `idx` is the flat index into C, `(b*m + row)*n + col`. */
  epilogue?: Epilogue;
  /** Tile configuration profile (default `"llvmpipe"`); ignored when `tile` is given. */
  profile?: KernelProfile;
  /** Override of the tile configuration. */
  tile?: GemmTile;
  /** Override of the split-K factor (1 disables split-K; default: chosen with the tile). */
  splitK?: number;
  /**
   * Bindings (`a`, `b`, `out`) bound as several parts, for tensors larger than one storage
   * binding (see {@linkcode BindingSplit}).
   */
  split?: Readonly<Record<string, BindingSplit>>;
}

/**
 * Generates the kernels of `C[b] = op(A[b]) · op(B[b])` (row-major float32).
 *
 * Bindings: `a`, `b`, then the epilogue inputs `e0..`, then `out` (`[batch, m, n]`).
 * `a` is declared `array<vec4<f32>>` when its contiguous dimension (k, or m when `transA`) is a
 * multiple of 4, else `array<f32>`; likewise `b` (n, or k when `transB`). The bytes are the same
 * either way. When split-K is used the plan has two steps and one scratch buffer `partial` of
 * `splitK * batch * m * n` floats (see {@linkcode KernelPlan.scratch}).
 *
 * @example
 * ```ts
 * import { matmulKernel } from "./matmul.ts";
 * import assert from "node:assert/strict";
 * const plan = matmulKernel({ batch: 1, m: 256, n: 256, k: 256, transB: true });
 * assert(plan.steps[0].bindings.join() === "a,b,out");
 * ```
 */
export function matmulKernel(spec: MatmulSpec): KernelPlan {
  const { batch, m, n, k } = spec;
  checkInts("matmulKernel", { batch, m, n, k });
  const largest = Math.max(
    batch * m * n,
    (spec.broadcastA ? 1 : batch) * m * k,
    (spec.broadcastB ? 1 : batch) * k * n,
  );
  if (largest >= 2 ** 31) {
    throw new RangeError(`Invalid matmulKernel shape with ${largest} elements: expected < 2^31`);
  }
  const transA = spec.transA ?? false;
  const transB = spec.transB ?? false;
  const auto = chooseGemmConfig(spec, {
    profile: spec.profile,
    tmMultipleOf4: transA && m % 4 === 0,
  });
  const tile = spec.tile ?? auto.tile;
  checkTile(tile);
  const splitK = spec.splitK ?? (spec.tile ? 1 : auto.splitK);
  checkInts("matmulKernel", { splitK });
  // bz * stride + x * dim + y, summed left to right.
  const aOff = (x: Expr, y: Expr) => add(spec.broadcastA ? x : add(mul(v("bz"), U(m * k)), x), y);
  const bOff = (x: Expr, y: Expr) => add(spec.broadcastB ? x : add(mul(v("bz"), U(k * n)), x), y);
  const vecAlongTileA = transA && m % 4 === 0 &&
    (tile.staging !== "registers" || tile.tm % 4 === 0);
  return gemmPlan({
    batch,
    m,
    n,
    k,
    a: transA
      ? {
        binding: "a",
        vec: vecAlongTileA ? "tile" : "none",
        scalarOrder: "tile",
        index: (t, kk) => aOff(mul(kk, U(m)), t),
      }
      : {
        binding: "a",
        vec: k % 4 === 0 ? "k" : "none",
        scalarOrder: "k",
        index: (t, kk) => aOff(mul(t, U(k)), kk),
      },
    b: transB
      ? {
        binding: "b",
        vec: k % 4 === 0 ? "k" : "none",
        scalarOrder: "k",
        index: (t, kk) => bOff(mul(t, U(k)), kk),
      }
      : {
        binding: "b",
        vec: n % 4 === 0 ? "tile" : "none",
        scalarOrder: "tile",
        index: (t, kk) => bOff(mul(kk, U(n)), t),
      },
    outIndex: (r, c) => add(mul(add(mul(v("bz"), U(m)), r), U(n)), c),
    outSize: batch * m * n,
    tile,
    splits: splitK,
    epilogue: spec.epilogue,
    split: spec.split,
    label: `matmul batch ${batch}, ${m}x${k} · ${k}x${n}, transA ${transA}, transB ${transB}`,
  });
}
