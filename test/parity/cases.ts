/**
 * The backend parity cases: small named programs of the cosgrad API, each built to reach one
 * lowering path of the WebGPU backend (map kernels scalar and `vec4`, reductions serial, in
 * quads, over a workgroup tree with barriers, split into two passes, longer than 65,536 terms,
 * sibling sums, scatter-add, split bindings, and the GEMM family: matmul with split-K and
 * epilogues, conv2d forward, input gradient and weight gradient by rows, implicit GEMM and
 * explicit columns), with the tolerance its values are held to against the cpu oracle.
 *
 * A case is a function of the cosgrad API handed in as an argument, never imported here, so
 * the same list runs under Deno (`test/parity_test.ts`) and in a browser page that receives
 * the library bundle `dist/cosgrad.js` (`scripts/browser_parity_page.ts`). `run.ts` runs them.
 *
 * @module
 */
import type * as Cosgrad from "../../mod.ts";

/** The cosgrad API as the cases see it (`mod.ts`; the browser bundle exports a superset). */
export type Cg = typeof Cosgrad;
type T = Cosgrad.Tensor;

/** The kernel profiles of the WebGPU backend's heuristics (the code forks on them). */
export type Profile = "llvmpipe" | "discrete";

/** How an input is made (on the host, the same numbers for every backend). */
export interface InputSpec {
  /** Shape. */
  shape: readonly number[];
  /** Seed of the host random key. */
  seed: number;
  /**
   * `uniform` in [-scale, scale) (default), `normal` with std `scale`, `ones`, or `int`:
   * int32 values in [0, `max`).
   */
  kind?: "uniform" | "normal" | "ones" | "int";
  /** Scale of `uniform` and `normal` values (default 1). */
  scale?: number;
  /** Exclusive upper bound of `int` values. */
  max?: number;
}

/** Element tolerance: `|got - want| <= rtol * |want| + atol * (1 + max |want|)`. */
export interface Tolerance {
  /** Relative to the element. */
  rtol: number;
  /** Relative to the largest magnitude of the output (plus one). */
  atol: number;
}

/** The default tolerance: float32 sums in another order. */
export const DEFAULT_TOLERANCE: Tolerance = { rtol: 2e-3, atol: 2e-4 };

/** One parity case. */
export interface ParityCase {
  /** A unique name, `family.what`. */
  name: string;
  /** The lowering paths it is built to reach (documentation and the report). */
  paths: readonly string[];
  /** Its inputs. */
  inputs: readonly InputSpec[];
  /** The program: outputs (any pytree of tensors) from the inputs. Compiled as one program. */
  fn: (cg: Cg, ...xs: T[]) => unknown;
  /** Tolerance of every output (default {@link DEFAULT_TOLERANCE}; `{0, 0}`: exact). */
  tolerance?: Tolerance;
  /** The kernel profiles to run it under (default both). */
  profiles?: readonly Profile[];
  /**
   * The profiles of the quick set (CI; default all of `profiles`): the GEMM family's discrete
   * profile compiles for seconds per kernel on software adapters, so most cases run it only in
   * the full set (`COSGRAD_PARITY=full`).
   */
  quick?: readonly Profile[];
  /** A storage-binding limit in bytes to compile under (split bindings), else the adapter's. */
  bindingLimit?: number;
  /** Whether the tuning candidates of its convolution kernel classes run too. */
  tune?: boolean;
}

/** `sum(tanh(y) * y)`-like scalar of several tensors, each weighted, for gradients. */
function scalarOf(cg: Cg, ...ys: T[]): T {
  let acc: T | null = null;
  ys.forEach((y, k) => {
    const term = cg.mul(cg.mean(cg.mul(cg.tanh(y), y)), 1 / (k + 1));
    acc = acc === null ? term : cg.add(acc, term);
  });
  return acc!;
}

const maps: ParityCase[] = [
  {
    name: "map.scalar",
    paths: ["map kernel, one element per thread (under 256 elements)"],
    inputs: [{ shape: [7, 13], seed: 1 }, { shape: [13], seed: 2 }],
    fn: (cg, x, b) => {
      const y = cg.add(cg.mul(x, 3), b);
      return [
        cg.exp(cg.clip(y, -4, 4)),
        cg.log(cg.add(cg.abs(y), 1)),
        cg.sqrt(cg.add(cg.square(y), 0.1)),
        cg.where(cg.less(x, 0), cg.sigmoid(y), cg.tanh(y)),
        cg.pow(cg.add(cg.abs(x), 0.5), cg.clip(b, -2, 2)),
        cg.acos(cg.mul(cg.tanh(y), 0.9)),
        cg.maximum(cg.sin(y), cg.cos(y)),
        cg.div(x, cg.add(cg.abs(b), 0.5)),
      ];
    },
  },
  {
    name: "map.vec4",
    paths: ["map kernel, four elements per thread as vec4 (llvmpipe profile)", "broadcast reads"],
    inputs: [{ shape: [64, 32], seed: 3 }, { shape: [32], seed: 4 }, { shape: [64, 1], seed: 5 }],
    fn: (cg, x, row, col) => {
      const y = cg.add(cg.mul(x, row), col);
      return [cg.relu(y), cg.mul(cg.sigmoid(y), x), cg.sub(cg.exp(cg.clip(x, -3, 3)), y)];
    },
  },
  {
    name: "map.movement",
    paths: ["map kernel with transpose, pad, slice, flip, concat and broadcast indexing"],
    inputs: [{ shape: [6, 10, 12], seed: 6 }, { shape: [10, 1], seed: 7 }],
    fn: (cg, x, b) => {
      const t = cg.transpose(x, [2, 0, 1]); // [12, 6, 10]
      const p = cg.pad(t, [[1, 0], [0, 2], [3, 1]]); // [13, 8, 14]
      const s = cg.slice(p, [1, 0, 2], [13, 7, 12]); // [12, 7, 10]
      const f = cg.flip(s, [0, 2]);
      const c = cg.concat(
        [f, cg.tanh(f), cg.broadcastTo(cg.reshape(b, [1, 1, 10]), [12, 2, 10])],
        1,
      );
      return [c, cg.add(cg.reshape(x, [60, 12]), 1)];
    },
  },
  {
    name: "map.int32",
    paths: ["int32 map kernels (vec4<i32> stores on llvmpipe)", "casts and comparisons"],
    inputs: [{ shape: [16, 32], seed: 8, kind: "int", max: 50 }, { shape: [16, 32], seed: 9 }],
    fn: (cg, k, x) => {
      const j = cg.add(cg.mul(k, 3), 1);
      return [
        j,
        cg.where(cg.greater(k, 25), j, cg.neg(k)),
        cg.cast(cg.greaterEqual(x, 0), "int32"),
        cg.mul(cg.cast(k, "float32"), x),
        cg.cast(cg.mul(x, 10), "int32"),
      ];
    },
    tolerance: { rtol: 0, atol: 0 },
  },
  {
    name: "map.gather",
    paths: ["gather (take, takeAlongAxis) with index checks", "oneHot"],
    inputs: [
      { shape: [20, 24], seed: 10 },
      { shape: [30], seed: 11, kind: "int", max: 20 },
      { shape: [20, 5], seed: 12, kind: "int", max: 24 },
    ],
    fn: (cg, x, rows, cols) => [
      cg.take(x, rows, 0),
      cg.take(x, cg.reshape(cg.slice(cols, [0, 0], [20, 1]), [20]), 1),
      cg.takeAlongAxis(x, cols, 1),
      cg.mul(cg.oneHot(rows, 24), 2),
    ],
  },
];

const reductions: ParityCase[] = [
  {
    name: "reduce.serial",
    paths: ["loop kernel, one thread per output, short terms (under 64)"],
    inputs: [{ shape: [512, 12], seed: 20 }],
    fn: (cg, x) => [cg.sum(x, 1), cg.max(x, 1), cg.min(x, [1], { keepdims: true })],
  },
  {
    name: "reduce.quads",
    paths: [
      "loop kernel over quads of terms with vec4 loads (llvmpipe profile)",
      "one workgroup per output, tree in workgroup memory with barriers (discrete profile)",
    ],
    inputs: [{ shape: [300, 64], seed: 21 }],
    fn: (cg, x) => [cg.sum(cg.mul(x, x), 1), cg.max(x, 1), cg.mean(cg.exp(x), 1)],
  },
  {
    name: "reduce.columns",
    paths: ["column reductions (terms not contiguous)"],
    inputs: [{ shape: [256, 96], seed: 22 }],
    fn: (cg, x) => [cg.sum(x, 0), cg.max(cg.tanh(x), 0), cg.variance(x, 0)],
  },
  {
    name: "reduce.tree64",
    paths: ["one workgroup of 64 per output, tree with barriers", "fused epilogue after the tree"],
    inputs: [{ shape: [8, 1000], seed: 23 }],
    fn: (cg, x) => [cg.sum(x, 1), cg.max(x, 1), cg.logsumexp(cg.mul(x, 4), 1), cg.softmax(x, 1)],
  },
  {
    name: "reduce.tree256",
    paths: ["one workgroup of 256 per output, tree with barriers"],
    inputs: [{ shape: [20, 5000], seed: 24 }],
    fn: (cg, x) => [cg.sum(x, 1), cg.min(x, 1), cg.argmax(x, 1)],
  },
  {
    name: "reduce.split",
    paths: ["split loop: workgroups per output write partials, a second pass combines them"],
    inputs: [{ shape: [4, 70000], seed: 25 }],
    fn: (cg, x) => [cg.sum(x, 1), cg.max(x, 1), cg.sum(cg.mul(x, x), 1)],
  },
  {
    name: "reduce.long-ones",
    paths: [
      "reductions over 66,560 terms per output, not contiguous (exact on ones)",
      "workgroup tree (llvmpipe profile), split loop (discrete profile)",
    ],
    inputs: [{ shape: [130, 32, 32, 16], seed: 26, kind: "ones" }],
    fn: (cg, x) => [cg.sum(x, [0, 2, 3]), cg.sum(cg.reshape(x, [130 * 32, 512]), 0)],
    tolerance: { rtol: 0, atol: 0 },
  },
  {
    name: "reduce.long",
    paths: ["reductions over 66,560 terms per output of random values"],
    inputs: [{ shape: [130, 32, 32, 16], seed: 27 }],
    fn: (cg, x) => [cg.sum(x, [0, 2, 3]), cg.max(x, [0, 2, 3])],
  },
  {
    name: "reduce.siblings",
    paths: ["sibling sums as one multi-output loop kernel (batch-norm statistics and gradients)"],
    inputs: [{ shape: [8, 16, 10, 10], seed: 28 }, { shape: [16], seed: 29 }],
    fn: (cg, x, g) =>
      cg.valueAndGrad((x: T, g: T) => {
        const m = cg.mean(x, [0, 2, 3], { keepdims: true });
        const v = cg.mean(cg.square(cg.sub(x, m)), [0, 2, 3], { keepdims: true });
        const y = cg.mul(
          cg.div(cg.sub(x, m), cg.sqrt(cg.add(v, 1e-5))),
          cg.reshape(g, [1, 16, 1, 1]),
        );
        return scalarOf(cg, y);
      }, { argnums: [0, 1] })(x, g),
  },
  {
    name: "reduce.scatter",
    paths: ["scatter-add loop kernels (gradient of take, scatterAdd)"],
    inputs: [
      { shape: [50, 20], seed: 30 },
      { shape: [40], seed: 31, kind: "int", max: 50 },
      { shape: [40, 20], seed: 32 },
      { shape: [40, 20], seed: 33, kind: "int", max: 50 },
    ],
    fn: (cg, table, idx, upd, along) => [
      cg.grad((t: T) => scalarOf(cg, cg.take(t, idx, 0)))(table),
      cg.scatterAdd(upd, along, [50, 20], 0),
    ],
  },
];

/** Maps, reductions, a gather and a matmul with every tensor over 1 KiB split into parts. */
const splits: ParityCase[] = [
  {
    name: "split.maps-reductions",
    quick: ["llvmpipe"],
    paths: ["split bindings: accessors over parts in map, loop and gather kernels, and gradients"],
    inputs: [
      { shape: [40, 30], seed: 40, kind: "normal" },
      { shape: [50, 20], seed: 41, kind: "normal", scale: 0.5 },
      { shape: [20, 8], seed: 42, kind: "normal", scale: 0.3 },
      { shape: [40], seed: 43, kind: "int", max: 50 },
    ],
    fn: (cg, x, table, w, idx) =>
      cg.valueAndGrad((x: T, table: T, w: T) => {
        const a = cg.mul(cg.exp(cg.mul(x, 0.1)), x);
        const rows = cg.max(a, 1);
        const cols = cg.sum(cg.mul(a, a), 0);
        const e = cg.take(table, idx, 0);
        const e2 = cg.sum(cg.reshape(e, [8, 5, 20]), 1);
        const h = cg.tanh(cg.matmul(e2, w));
        return cg.add(cg.add(cg.mean(rows), cg.mul(cg.mean(cols), 0.01)), cg.mean(cg.mul(h, h)));
      }, { argnums: [0, 1, 2] })(x, table, w),
    bindingLimit: 2048,
  },
  {
    name: "split.gemm",
    quick: ["llvmpipe"],
    paths: ["split bindings: matmul and conv2d operands and outputs in parts"],
    inputs: [
      { shape: [40, 24], seed: 44 },
      { shape: [24, 16], seed: 45 },
      { shape: [16, 24], seed: 46 },
      { shape: [2, 3, 10, 10], seed: 47 },
      { shape: [4, 3, 3, 3], seed: 48, scale: 0.3 },
    ],
    fn: (cg, a, b, b2, x, w) =>
      cg.valueAndGrad((a: T, b: T, b2: T, x: T, w: T) => {
        const c = cg.matmul(a, b);
        const d = cg.matmul(a, cg.transpose(b2));
        const y = cg.conv2d(x, w, { padding: 1 });
        return cg.add(cg.mean(cg.mul(c, d)), cg.mean(cg.tanh(y)));
      }, { argnums: [0, 1, 2, 3, 4] })(a, b, b2, x, w),
    bindingLimit: 2048,
  },
  {
    name: "split.int32",
    paths: ["split bindings of int32 tensors"],
    inputs: [{ shape: [3000], seed: 49 }, { shape: [3000], seed: 50, kind: "int", max: 7 }],
    fn: (cg, x, k) => [cg.add(cg.mul(x, 0.5), cg.cast(k, "float32")), cg.add(k, 1), cg.sum(x)],
    bindingLimit: 4096,
  },
];

const matmuls: ParityCase[] = [
  {
    name: "matmul.epilogue",
    paths: ["tiled matmul", "fused epilogue (bias, relu)", "matmul tuning candidates"],
    inputs: [{ shape: [64, 48], seed: 60 }, { shape: [48, 40], seed: 61 }, {
      shape: [40],
      seed: 62,
    }],
    fn: (cg, a, b, bias) => [cg.relu(cg.add(cg.matmul(a, b), bias)), cg.matmul(a, b)],
    tune: true,
  },
  {
    name: "matmul.odd",
    quick: ["llvmpipe"],
    paths: ["tiled matmul with edges (sizes not multiples of 4)", "transposed operands"],
    inputs: [{ shape: [37, 29], seed: 63 }, { shape: [29, 23], seed: 64 }, {
      shape: [23, 29],
      seed: 65,
    }],
    fn: (cg, a, b, c) => [
      cg.matmul(a, b),
      cg.matmul(a, cg.transpose(c)),
      cg.matmul(cg.transpose(a), cg.transpose(cg.transpose(a))),
    ],
    tune: true,
  },
  {
    name: "matmul.batched",
    quick: ["llvmpipe"],
    paths: ["batched matmul, one operand broadcast"],
    inputs: [{ shape: [3, 20, 16], seed: 66 }, { shape: [16, 12], seed: 67 }, {
      shape: [3, 16, 12],
      seed: 68,
    }],
    fn: (
      cg,
      a,
      b,
      c,
    ) => [
      cg.matmul(a, b),
      cg.matmul(a, c),
      cg.matmul(cg.transpose(c, [0, 2, 1]), cg.transpose(a, [0, 2, 1])),
    ],
  },
  {
    name: "matmul.splitK",
    quick: ["llvmpipe"],
    paths: ["split-K matmul (thin output, long reduction) and its reduction pass"],
    inputs: [{ shape: [8, 4096], seed: 69 }, { shape: [4096, 8], seed: 70 }],
    fn: (cg, a, b) => [cg.matmul(a, b), cg.tanh(cg.matmul(a, b))],
    tune: true,
  },
  {
    name: "matmul.grad",
    quick: ["llvmpipe"],
    paths: ["matmul gradients (both transposed products)"],
    inputs: [{ shape: [32, 24], seed: 71 }, { shape: [24, 20], seed: 72 }],
    fn: (cg, a, b) =>
      cg.valueAndGrad((a: T, b: T) => scalarOf(cg, cg.matmul(a, b)), { argnums: [0, 1] })(a, b),
  },
];

/** `valueAndGrad` of a convolution: forward, input gradient and weight gradient kernels. */
function convGrad(cg: Cg, x: T, w: T, options: Cosgrad.Conv2dOptions): unknown {
  return cg.valueAndGrad((x: T, w: T) => scalarOf(cg, cg.conv2d(x, w, options)), {
    argnums: [0, 1],
  })(x, w);
}

const convs: ParityCase[] = [
  {
    name: "conv.rows",
    quick: ["llvmpipe"],
    paths: [
      "3x3 stride-1 padding-1 forward and input gradient by rows (llvmpipe profile)",
      "forward weights in two uniform slices",
      "weight gradient by implicit GEMM (rows under 16 pixels)",
      "every tuning candidate of the three kernel classes",
    ],
    inputs: [{ shape: [2, 8, 12, 12], seed: 80 }, { shape: [16, 8, 3, 3], seed: 81, scale: 0.2 }],
    fn: (cg, x, w) => convGrad(cg, x, w, { padding: 1 }),
    tune: true,
  },
  {
    name: "conv.rowsFilter",
    quick: ["llvmpipe"],
    paths: ["3x3 stride-1 padding-1 weight gradient by rows (16 pixels wide)", "tuning candidates"],
    inputs: [{ shape: [2, 4, 16, 16], seed: 82 }, { shape: [8, 4, 3, 3], seed: 83, scale: 0.3 }],
    fn: (cg, x, w) => convGrad(cg, x, w, { padding: 1 }),
    tune: true,
  },
  {
    name: "conv.epilogue",
    quick: ["llvmpipe"],
    paths: ["convolution with a fused epilogue (bias, relu): rows in three steps, implicit GEMM"],
    inputs: [
      { shape: [2, 8, 8, 8], seed: 84 },
      { shape: [16, 8, 3, 3], seed: 85, scale: 0.2 },
      { shape: [16], seed: 86 },
    ],
    fn: (cg, x, w, b) => [
      cg.relu(cg.add(cg.conv2d(x, w, { padding: 1 }), cg.reshape(b, [1, 16, 1, 1]))),
      cg.tanh(cg.conv2d(x, w, { padding: 0 })),
    ],
  },
  {
    name: "conv.stride2",
    paths: [
      "stride-2 forward by rows, weight gradient by rows (llvmpipe profile) or implicit GEMM",
      "stride-2 input gradient by explicit columns and col2im (4 channels: no sub-pixels)",
      "tuning candidates",
    ],
    inputs: [{ shape: [2, 4, 16, 16], seed: 87 }, { shape: [8, 4, 3, 3], seed: 88, scale: 0.3 }],
    fn: (cg, x, w) => convGrad(cg, x, w, { stride: 2, padding: 1 }),
    tune: true,
  },
  {
    name: "conv.stride2.rows",
    paths: [
      "stride-2 forward and weight gradient by rows (pairs of vec4s, even and odd lanes)",
      "stride-2 input gradient by sub-pixels",
      "weights in two uniform slices, one dispatch each (forward and input gradient)",
      "tuning candidates",
    ],
    inputs: [{ shape: [2, 16, 16, 32], seed: 95 }, { shape: [16, 16, 3, 3], seed: 96, scale: 0.2 }],
    fn: (cg, x, w) => convGrad(cg, x, w, { stride: 2, padding: 1 }),
    tune: true,
  },
  {
    name: "conv.groups",
    quick: ["llvmpipe"],
    paths: ["grouped, dilated 5x5 convolution: implicit GEMM in all three directions"],
    inputs: [{ shape: [2, 4, 11, 11], seed: 89 }, { shape: [6, 2, 5, 5], seed: 90, scale: 0.2 }],
    fn: (cg, x, w) => convGrad(cg, x, w, { padding: [2, 1, 1, 2], dilation: 2, groups: 2 }),
  },
  {
    name: "conv.odd",
    quick: ["llvmpipe"],
    paths: ["output pixels not a multiple of 4: implicit input gradient, scalar loads"],
    inputs: [{ shape: [3, 3, 9, 9], seed: 91 }, { shape: [5, 3, 3, 3], seed: 92, scale: 0.3 }],
    fn: (cg, x, w) => convGrad(cg, x, w, {}),
    tune: true,
  },
  {
    name: "conv.splitK",
    quick: ["llvmpipe"],
    paths: ["weight gradient over 18,000 terms: split-K chunks and their sum"],
    inputs: [{ shape: [5, 3, 60, 60], seed: 93 }, { shape: [4, 3, 1, 1], seed: 94, scale: 0.5 }],
    fn: (cg, x, w) => convGrad(cg, x, w, {}),
  },
];

/** Every parity case, in the order they run. */
export const CASES: readonly ParityCase[] = [
  ...maps,
  ...reductions,
  ...splits,
  ...matmuls,
  ...convs,
];
