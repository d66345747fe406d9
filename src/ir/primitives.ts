/**
 * The closed set of primitives of the cosgrad IR, and the typed parameters of each.
 *
 * Everything else (softmax, l2Normalize, batchNorm, the losses) is composed from these in
 * the frontend. Every per-primitive rule table (shape rules, vjp rules, the CPU interpreter,
 * the WGSL lowering) is typed `{ [P in Prim]: ... }`, so adding a primitive here fails
 * `deno check` until every stage handles it.
 *
 * @module
 */
import type { DType, TypedArray } from "./dtype.ts";

/** Device or host memory of a realized tensor; see `src/backend/storage.ts`. */
export interface StorageLike {
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Host copy when one exists (always for the CPU backend). */
  host: TypedArray | null;
}

/** Padding of a 2-D convolution: top, bottom, left, right. */
export type Pad4 = [number, number, number, number];

/** Parameters shared by the three convolution primitives. */
export interface ConvParams {
  /** Step between windows (height, width). */
  stride: [number, number];
  /** Zero padding: top, bottom, left, right. */
  padding: Pad4;
  /** Spacing of kernel taps (height, width). */
  dilation: [number, number];
  /** Channel groups. */
  groups: number;
}

/**
 * The rule of a `custom` node (see `src/autodiff/custom.ts`): how cotangents flow to the
 * arguments of a function whose derivative the user gave (`customVjp`, `customJvp`), or an
 * identity that passes must keep (`barrier`, used by `checkpoint`). Held by reference: the
 * node's structural key is the rule's `id` and the output `index`.
 */
export interface CustomRule {
  /** Unique per rule: the key of the node. */
  readonly id: number;
  /** For messages and the printer. */
  readonly name: string;
  /**
   * `vjp`: inputs are `[out, ...args, ...residuals]`; `barrier`: `[x, ...after]`, the value
   * x, available only once the `after` values are (an ordering, not data).
   */
  readonly kind: "vjp" | "barrier";
  /** Number of outputs (one node each) and of arguments. */
  readonly outputs: number;
  /** Number of differentiable arguments after the output input. */
  readonly args: number;
  /**
   * Cotangents of the arguments from the outputs' cotangents (null: none flows to that
   * output), the arguments and the residuals.
   */
  readonly vjp: (
    cts: readonly (unknown | null)[],
    args: readonly unknown[],
    residuals: readonly unknown[],
  ) => (unknown | null)[];
}

/** The parameters of each primitive. */
export interface PrimParams {
  /** A realized tensor: a leaf holding memory. */
  const: { storage: StorageLike; uid: number; shape: number[] };
  /** A placeholder bound when a traced graph runs. */
  var: { id: string; shape: number[]; dtype: DType };
  /** A number, inlined by the backends (shape []). */
  scalar: { value: number; dtype: DType };
  /** Index along `axis`, broadcast over the rest of `shape`. */
  iota: { shape: number[]; axis: number; dtype: DType };
  /** Negation. */
  neg: Record<never, never>;
  /** Reciprocal `1 / x`. */
  recip: Record<never, never>;
  /** Natural exponential. */
  exp: Record<never, never>;
  /** Natural logarithm. */
  log: Record<never, never>;
  /** Square root. */
  sqrt: Record<never, never>;
  /** Cosine. */
  cos: Record<never, never>;
  /** Sine, primitive because `cos(x - pi/2)` loses all precision near 0 in float32. */
  sin: Record<never, never>;
  /** Arc cosine; inputs outside [-1, 1] give NaN, so callers clamp first. */
  acos: Record<never, never>;
  /** Identity whose gradient is zero. */
  stopGradient: Record<never, never>;
  /** Round down; gradient zero. */
  floor: Record<never, never>;
  /** Conversion to `dtype`. */
  cast: { dtype: DType };
  /** Sum of two tensors of one shape. */
  add: Record<never, never>;
  /** Difference. */
  sub: Record<never, never>;
  /** Product. */
  mul: Record<never, never>;
  /** Quotient. */
  div: Record<never, never>;
  /** Elementwise maximum; ties split the gradient. */
  max: Record<never, never>;
  /** `x ** y`, kept primitive because `exp(y log x)` is wrong for negative `x`. */
  pow: Record<never, never>;
  /** 1 where `a < b`, else 0, in the dtype of the inputs. */
  cmplt: Record<never, never>;
  /** 1 where `a == b`, else 0, in the dtype of the inputs. */
  cmpeq: Record<never, never>;
  /** `cond != 0 ? a : b`. */
  where: Record<never, never>;
  /** Sum over `axes`, keeping them as size 1. */
  sum: { axes: number[] };
  /** Maximum over `axes`, keeping them as size 1. */
  reduceMax: { axes: number[] };
  /** The same elements in a new shape. */
  reshape: { shape: number[] };
  /** Axes reordered: output axis i is input axis `perm[i]`. */
  permute: { perm: number[] };
  /** Expand size-1 dimensions to `shape` (same rank). */
  broadcast: { shape: number[] };
  /** `x[start:end]` per axis, step 1. */
  slice: { start: number[]; end: number[] };
  /** Zero padding: `lo` before and `hi` after each axis. */
  pad: { lo: number[]; hi: number[] };
  /** Inputs joined along `axis`. */
  concat: { axis: number };
  /** Elements reversed along `axes`. */
  flip: { axes: number[] };
  /** `[..., m, k] @ [..., k, n]` with equal batch dimensions. */
  matmul: Record<never, never>;
  /** NCHW input, OIHW weights. */
  conv2d: ConvParams;
  /** Gradient of conv2d with respect to its input: inputs (dy, w). */
  conv2dBackInput: ConvParams & { inputShape: number[] };
  /** Gradient of conv2d with respect to its weights: inputs (x, dy). */
  conv2dBackFilter: ConvParams & { weightShape: number[] };
  /** Take along axis: `out[.., i, ..] = x[.., idx[.., i, ..], ..]`; idx has x's shape but on `axis`. */
  gather: { axis: number };
  /** The transpose of gather: zeros of `shape`, then `out[.., idx[i], ..] += upd[i]`. */
  scatterAdd: { axis: number; shape: number[] };
  /**
   * Output `index` of a function with a user-given derivative: the value of input 0, the
   * other inputs (arguments, residuals) only feed its `rule`. Passes replace it by input 0
   * (a `barrier` stays, as an identity that keeps recomputed values distinct).
   */
  custom: { rule: CustomRule; index: number };
  /**
   * Threefry-2x32 with 20 rounds (Salmon et al., SC 2011) of int32 inputs (key words k0, k1,
   * counter words x0, x1) read as unsigned: word `word` of the output block, as int32 bits,
   * or as float32 `(bits >>> 8) * 2^-24` in [0, 1) (`uniform`: exact in float32, and
   * primitive because the IR has no shifts). A primitive because its 32-bit rotations and
   * xors have no decomposition into the float-minded ops above.
   */
  threefry: { word: 0 | 1; output: "bits" | "uniform" };
}

/** A primitive's name. */
export type Prim = keyof PrimParams;

/** Every primitive, in a fixed order. */
export const PRIMS: readonly Prim[] = [
  "const",
  "var",
  "scalar",
  "iota",
  "neg",
  "recip",
  "exp",
  "log",
  "sqrt",
  "cos",
  "sin",
  "acos",
  "floor",
  "stopGradient",
  "cast",
  "add",
  "sub",
  "mul",
  "div",
  "max",
  "pow",
  "cmplt",
  "cmpeq",
  "where",
  "sum",
  "reduceMax",
  "reshape",
  "permute",
  "broadcast",
  "slice",
  "pad",
  "concat",
  "flip",
  "matmul",
  "conv2d",
  "conv2dBackInput",
  "conv2dBackFilter",
  "gather",
  "scatterAdd",
  "custom",
  "threefry",
];

/** Elementwise primitives of one input. */
export const UNARY: readonly [
  "neg",
  "recip",
  "exp",
  "log",
  "sqrt",
  "cos",
  "sin",
  "acos",
  "floor",
  "cast",
] = [
  "neg",
  "recip",
  "exp",
  "log",
  "sqrt",
  "cos",
  "sin",
  "acos",
  "floor",
  "cast",
] as const;
/** Elementwise primitives of two inputs. */
export const BINARY: readonly ["add", "sub", "mul", "div", "max", "pow", "cmplt", "cmpeq"] = [
  "add",
  "sub",
  "mul",
  "div",
  "max",
  "pow",
  "cmplt",
  "cmpeq",
] as const;

/** An elementwise binary primitive. */
export type BinaryPrim = typeof BINARY[number];

/** Whether `op` is elementwise (output element i depends on input elements i only). */
export function isElementwise(op: Prim): boolean {
  return (UNARY as readonly string[]).includes(op) || (BINARY as readonly string[]).includes(op) ||
    op === "where";
}
