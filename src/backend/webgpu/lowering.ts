/**
 * The WGSL lowering of every primitive, in one table typed `{ [P in Prim]: Lowering<P> }` so a
 * new primitive fails `deno check` until it is lowered here.
 *
 * Elementwise and movement primitives lower to expressions at an index (movement ops are
 * index arithmetic and never touch memory); reductions, scatter-add and the convolutions
 * lower to loops ({@link LoopSpec}); matmul and the convolutions go to the tiled generators of
 * `kernels/` (implicit GEMM).
 * Every rule follows the CPU interpreter's semantics (`src/backend/cpu/interpreter.ts`),
 * including NaN propagation in `max` and `pow` of negative bases.
 *
 * @module
 */
import type { DType } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import type { Prim } from "../../ir/primitives.ts";
import {
  dimsIndex,
  type Emitter,
  flatIndex,
  type Index,
  subU,
  u32,
  wgslType,
  zero,
} from "./emitter.ts";

/** How the scheduler treats a primitive. */
export type LoweringKind =
  /** Memory bound at run time (`var`, `const`). */
  | "input"
  /** Computed from nothing (`scalar`, `iota`): always inlined. */
  | "leaf"
  /** One output element from the same element of each input. */
  | "elementwise"
  /** Index arithmetic over one or more inputs. */
  | "movement"
  /** A loop per output element (reductions, scatter-add, convolutions): a kernel of its own. */
  | "loop"
  /** Matrix product or convolution through the tiled generators of `kernels/`. */
  | "gemm";

/** A loop computing each output element: `acc = combine(acc, term(r))` for `r < extent`. */
export interface LoopSpec {
  /** Number of terms per output element. */
  extent: number;
  /** WGSL value of the empty loop. */
  init: string;
  /** New accumulator from the accumulator and one term (WGSL expressions). */
  combine: (acc: string, term: string) => string;
  /** The term `r` (a u32 expression) for the output element at `out`. */
  term: (e: Emitter, out: Index, r: string) => string;
  /** Whether consecutive `r` read consecutive memory (a row: threads share one output). */
  rowLike: boolean;
  /**
   * Present when the terms `4q .. 4q+3` read four consecutive elements of the input, starting
   * at a multiple of 4: the index at which term `r` reads the input.
   */
  vector?: (e: Emitter, out: Index, r: string) => Index;
}

/** The lowering of one primitive. */
export interface Lowering<P extends Prim> {
  /** How the scheduler treats the primitive. */
  kind: LoweringKind;
  /** The value at `idx`, for primitives fused into a kernel as an expression. */
  inline?: (e: Emitter, node: Node<P>, idx: Index) => string;
  /** The loop, for primitives of kind `loop`. */
  loop?: (node: Node<P>) => LoopSpec;
  /** Relative arithmetic cost of one element (fusion heuristics); 1 when absent. */
  cost?: number;
}

/** NaN, a runtime expression (Chrome's WGSL compiler rejects a constant NaN). */
function nan(e: Emitter): string {
  return e.f32Bits(0x7fc00000);
}

/**
 * -Infinity for a reduction's accumulator initializer, which has no emitter: a runtime
 * expression (Chrome's WGSL compiler rejects a constant infinity) through `lid`, the local
 * invocation index every reduction kernel's `main` receives (`codegen.ts`).
 */
const NEG_INF_INIT = "bitcast<f32>(0xff800000u | (lid & 0u))";

/** WGSL test for NaN that survives fast-math assumptions (a bit test). */
function isNan(x: string): string {
  return `((bitcast<u32>(${x}) & 0x7fffffffu) > 0x7f800000u)`;
}

/** NaN-propagating maximum, as the interpreter computes it. */
function maxExpr(a: string, b: string, dtype: DType): string {
  if (wgslType(dtype) === "i32") return `max(${a}, ${b})`;
  return `select(${b}, ${a}, ${a} > ${b} || ${isNan(a)})`;
}

function one(dtype: DType): string {
  return wgslType(dtype) === "i32" ? "1i" : "1.0";
}

function unary(
  f: (x: string, e: Emitter, node: Node) => string,
  cost = 1,
): Lowering<Prim> {
  return {
    kind: "elementwise",
    inline: (e, node, idx) => f(e.value(node.inputs[0], idx), e, node),
    cost,
  };
}

function binary(
  f: (a: string, b: string, e: Emitter, node: Node) => string,
  cost = 1,
): Lowering<Prim> {
  return {
    kind: "elementwise",
    inline: (e, node, idx) =>
      f(e.value(node.inputs[0], idx), e.value(node.inputs[1], idx), e, node),
    cost,
  };
}

/** `x ** y` with the interpreter's (Math.pow's) answers for negative and zero bases. */
function powExpr(x: string, y: string, e: Emitter): string {
  const r = e.let(`exp2(${y} * log2(abs(${x})))`);
  const negative = e.let(
    `select(select(${r}, -(${r}), abs(${y}) % 2.0 == 1.0), ${nan(e)}, floor(${y}) != ${y})`,
  );
  const zeroBase = `select(${e.f32Bits(0x7f800000)}, 0.0, ${y} > 0.0)`;
  return `select(select(select(${negative}, ${r}, ${x} > 0.0), ${zeroBase}, ${x} == 0.0), 1.0, ${y} == 0.0)`;
}

/**
 * Cast with the interpreter's answers: float to int32 truncates toward zero and wraps modulo
 * 2^32 like JavaScript's ToInt32 (exact: a float32 of magnitude >= 2^31 is a multiple of 256),
 * and NaN or an infinity gives 0.
 */
function castExpr(x: string, from: DType, to: DType, e: Emitter): string {
  if (wgslType(from) === wgslType(to)) return x;
  if (wgslType(to) === "f32") return `f32(${x})`;
  const t = e.let(`trunc(${x})`, "c");
  const wrapped = e.let(
    `bitcast<i32>(u32(${t} - 4294967296.0 * floor(${t} / 4294967296.0)))`,
    "c",
  );
  const inRange = `i32(clamp(${t}, -2147483648.0, 2147483520.0))`;
  const finite = `(bitcast<u32>(${x}) & 0x7f800000u) != 0x7f800000u`;
  return `select(0i, select(${inRange}, ${wrapped}, abs(${t}) >= 2147483648.0), ${finite})`;
}

/** Row-major reduction loop over `axes` of the input, for `sum` and `reduceMax`. */
function reduceLoop(node: Node<"sum" | "reduceMax">, isMax: boolean): LoopSpec {
  const input = node.inputs[0];
  const axes = [...node.params.axes].sort((a, b) => a - b);
  const rshape = axes.map((a) => input.shape[a]);
  const extent = rshape.reduce((a, b) => a * b, 1);
  const dtype = node.dtype;
  const last = input.shape.length - 1;
  const at = (e: Emitter, out: Index, r: string): Index => {
    const od = e.dims(out);
    const rd = e.dims(flatIndex(rshape, r));
    const dims = input.shape.map((_, k) => {
      const j = axes.indexOf(k);
      return j >= 0 ? rd[j] : od[k];
    });
    return dimsIndex(input.shape, dims);
  };
  return {
    extent,
    init: isMax ? (wgslType(dtype) === "i32" ? "i32(-2147483648)" : NEG_INF_INIT) : zero(dtype),
    combine: isMax ? (acc, t) => maxExpr(t, acc, dtype) : (acc, t) => `${acc} + ${t}`,
    term: (e, out, r) => e.value(input, at(e, out, r)),
    rowLike: axes.includes(last) && input.shape[last] > 1,
    vector: axes.includes(last) && input.shape[last] % 4 === 0 ? at : undefined,
  };
}

function addU(...terms: string[]): string {
  const t = terms.filter((x) => x !== "0u");
  return t.length === 0 ? "0u" : t.length === 1 ? t[0] : `(${t.join(" + ")})`;
}

function scatterLoop(node: Node<"scatterAdd">): LoopSpec {
  const [upd, idx] = node.inputs;
  const axis = node.params.axis;
  const n = node.shape[axis];
  return {
    extent: upd.shape[axis],
    init: zero(node.dtype),
    combine: (acc, t) => `${acc} + ${t}`,
    term: (e, out, r) => {
      const od = e.dims(out);
      const at = dimsIndex(upd.shape, od.map((d, k) => k === axis ? r : d));
      const j = e.value(idx, at);
      const bad = e.let(`u32(${j}) >= ${u32(n)}`, "c");
      e.kernel.reportRange?.(e, node, bad, j);
      const v = e.value(upd, at);
      return `select(${zero(node.dtype)}, ${v}, ${j} == i32(${od[axis]}))`;
    },
    rowLike: false,
  };
}

/** The lowering of every primitive. */
export const LOWERING: { [P in Prim]: Lowering<P> } = {
  const: { kind: "input" },
  var: { kind: "input" },
  scalar: { kind: "leaf", inline: (e, node) => e.literal(node.params.value, node.dtype) },
  iota: {
    kind: "leaf",
    inline: (e, node, idx) => {
      const d = e.dims(idx)[node.params.axis];
      return wgslType(node.dtype) === "i32" ? `i32(${d})` : `f32(${d})`;
    },
  },
  neg: unary((x) => `-(${x})`),
  recip: unary((x) => `1.0 / ${x}`, 2),
  exp: unary((x) => `exp(${x})`, 4),
  log: unary((x, e) => `select(log(${x}), ${nan(e)}, ${x} < 0.0)`, 4),
  sqrt: unary((x, e) => `select(sqrt(${x}), ${nan(e)}, ${x} < 0.0)`, 2),
  cos: unary((x) => `cos(${x})`, 4),
  acos: unary((x, e) => `select(acos(${x}), ${nan(e)}, abs(${x}) > 1.0)`, 4),
  floor: unary((x) => `floor(${x})`),
  stopGradient: { kind: "movement", inline: (e, node, idx) => e.value(node.inputs[0], idx) },
  cast: unary((x, e, node) => castExpr(x, node.inputs[0].dtype, node.dtype, e)),
  add: binary((a, b) => `${a} + ${b}`),
  sub: binary((a, b) => `${a} - ${b}`),
  mul: binary((a, b) => `${a} * ${b}`),
  div: binary((a, b) => `${a} / ${b}`, 2),
  max: binary((a, b, _, node) => maxExpr(a, b, node.dtype)),
  pow: binary((a, b, e) => powExpr(a, b, e), 8),
  cmplt: binary((a, b, _, node) => `select(${zero(node.dtype)}, ${one(node.dtype)}, ${a} < ${b})`),
  cmpeq: binary((a, b, _, node) => `select(${zero(node.dtype)}, ${one(node.dtype)}, ${a} == ${b})`),
  where: {
    kind: "elementwise",
    inline: (e, node, idx) => {
      const [c, a, b] = node.inputs.map((x) => e.value(x, idx));
      return `select(${b}, ${a}, ${c} != ${zero(node.inputs[0].dtype)})`;
    },
  },
  sum: { kind: "loop", loop: (node) => reduceLoop(node, false) },
  reduceMax: { kind: "loop", loop: (node) => reduceLoop(node, true) },
  reshape: {
    kind: "movement",
    inline: (e, node, idx) => e.value(node.inputs[0], flatIndex(node.inputs[0].shape, e.flat(idx))),
  },
  permute: {
    kind: "movement",
    inline: (e, node, idx) => {
      const od = e.dims(idx);
      const dims = new Array<string>(od.length);
      node.params.perm.forEach((p, i) => dims[p] = od[i]);
      return e.value(node.inputs[0], dimsIndex(node.inputs[0].shape, dims));
    },
  },
  broadcast: {
    kind: "movement",
    inline: (e, node, idx) => {
      const src = node.inputs[0];
      if (src.shape.every((d) => d === 1)) return e.value(src, flatIndex(src.shape, "0u"));
      const od = e.dims(idx);
      return e.value(src, dimsIndex(src.shape, od.map((d, k) => src.shape[k] === 1 ? "0u" : d)));
    },
  },
  slice: {
    kind: "movement",
    inline: (e, node, idx) => {
      const od = e.dims(idx);
      const dims = od.map((d, k) => addU(d, u32(node.params.start[k])));
      return e.value(node.inputs[0], dimsIndex(node.inputs[0].shape, dims));
    },
  },
  pad: {
    kind: "movement",
    inline: (e, node, idx) => {
      const src = node.inputs[0];
      if (src.shape.some((d) => d === 0)) return zero(node.dtype);
      const od = e.dims(idx);
      const conds: string[] = [];
      const dims = od.map((d, k) => {
        const { lo, hi } = node.params;
        if (lo[k] === 0 && hi[k] === 0) return d;
        const s = e.let(subU(d, u32(lo[k])), "p");
        conds.push(`${s} < ${u32(src.shape[k])}`);
        return s;
      });
      if (conds.length === 0) return e.value(src, dimsIndex(src.shape, dims));
      const ok = e.let(conds.join(" && "), "p");
      const v = e.guarded(ok, () => e.value(src, dimsIndex(src.shape, dims)));
      return `select(${zero(node.dtype)}, ${v}, ${ok})`;
    },
  },
  concat: {
    kind: "movement",
    inline: (e, node, idx) => {
      const axis = node.params.axis;
      const od = e.dims(idx);
      const parts = node.inputs.map((x, k) => {
        const off = node.inputs.slice(0, k).reduce((a, y) => a + y.shape[axis], 0);
        return { x, off, n: x.shape[axis] };
      }).filter((p) => p.n > 0);
      let out = "";
      for (let k = parts.length - 1; k >= 0; k--) {
        const { x, off, n } = parts[k];
        const local = e.let(subU(od[axis], u32(off)), "p");
        const ok = k === parts.length - 1 ? "true" : e.let(`${local} < ${u32(n)}`, "p");
        const guard = off === 0 ? ok : e.let(`${od[axis]} >= ${u32(off)} && ${ok}`, "p");
        const v = e.guarded(
          guard,
          () => e.value(x, dimsIndex(x.shape, od.map((d, j) => j === axis ? local : d))),
        );
        out = out === "" ? v : `select(${out}, ${v}, ${ok})`;
        if (k > 0 && out.length > 40) out = e.let(out);
      }
      return out;
    },
  },
  flip: {
    kind: "movement",
    inline: (e, node, idx) => {
      const od = e.dims(idx);
      const dims = od.map((d, k) =>
        node.params.axes.includes(k) ? subU(u32(node.shape[k] - 1), d) : d
      );
      return e.value(node.inputs[0], dimsIndex(node.inputs[0].shape, dims));
    },
  },
  matmul: { kind: "gemm" },
  conv2d: { kind: "gemm" },
  conv2dBackInput: { kind: "gemm" },
  conv2dBackFilter: { kind: "gemm" },
  gather: {
    kind: "movement",
    cost: 2,
    inline: (e, node, idx) => {
      const [x, ix] = node.inputs;
      const axis = node.params.axis;
      const j = e.value(ix, idx);
      const bad = e.let(`u32(${j}) >= ${u32(x.shape[axis])}`, "g");
      e.kernel.reportRange?.(e, node, bad, j);
      const od = e.dims(idx);
      const v = e.value(x, dimsIndex(x.shape, od.map((d, k) => k === axis ? `u32(${j})` : d)));
      return `select(${v}, ${wgslType(node.dtype) === "i32" ? "0i" : nan(e)}, ${bad})`;
    },
  },
  scatterAdd: { kind: "loop", loop: scatterLoop },
};

/**
 * The inline rule of `op` (throws for primitives that are never inlined).
 *
 * @example
 * ```ts
 * import { inlineRule } from "./lowering.ts";
 * typeof inlineRule("exp"); // "function"
 * ```
 */
export function inlineRule(op: Prim): (e: Emitter, node: Node, idx: Index) => string {
  const rule = LOWERING[op].inline as ((e: Emitter, node: Node, idx: Index) => string) | undefined;
  if (rule === undefined) {
    return (_, node) => {
      throw new TypeError(`Internal error: ${node.op} must be computed in a kernel of its own`);
    };
  }
  return rule;
}

/**
 * The loop of a node of kind `loop`.
 *
 * @example
 * ```ts
 * import { makeNode } from "../../ir/node.ts";
 * import { loopOf } from "./lowering.ts";
 * const x = makeNode("var", [], { id: "x", shape: [4, 8], dtype: "float32" });
 * loopOf(makeNode("sum", [x], { axes: [1] })).extent; // 8
 * ```
 */
export function loopOf(node: Node): LoopSpec {
  const rule = LOWERING[node.op].loop as ((n: Node) => LoopSpec) | undefined;
  if (rule === undefined) throw new TypeError(`Internal error: ${node.op} has no loop`);
  return rule(node);
}
