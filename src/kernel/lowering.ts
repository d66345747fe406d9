/**
 * The lowering of every primitive to the kernel IR, in one table typed
 * `{ [P in Prim]: Lowering<P> }` so a new primitive fails `deno check` until it is lowered here.
 *
 * Elementwise and movement primitives lower to expressions at an index (movement ops are
 * index arithmetic and never touch memory); reductions and scatter-add lower to loops
 * ({@link LoopSpec}); matmul and the convolutions go to the GEMM family (`kernels/`).
 * Every rule follows the CPU interpreter's semantics (`src/backend/cpu/interpreter.ts`),
 * including NaN propagation in `max` and `pow` of negative bases.
 *
 * @module
 */
import type { DType } from "../ir/dtype.ts";
import type { Node } from "../ir/node.ts";
import type { Prim } from "../ir/primitives.ts";
import { dimsIndex, type Emitter, flatIndex, type Index, scalarOf, zeroOf } from "./emitter.ts";
import { bin, call, type Expr, lit, name, neg, select, u32 } from "./ir.ts";
import { THREEFRY_PARITY, THREEFRY_ROTATIONS } from "../ir/threefry.ts";

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
  /** A loop per output element (reductions, scatter-add): a kernel of its own. */
  | "loop"
  /** Matrix product or convolution through the GEMM family of `kernels/`. */
  | "gemm";

/** A loop computing each output element: `acc = combine(acc, term(r))` for `r < extent`. */
export interface LoopSpec {
  /** Number of terms per output element. */
  extent: number;
  /** Value of the empty loop. */
  init: Expr;
  /** New accumulator from the accumulator and one term. */
  combine: (acc: Expr, term: Expr) => Expr;
  /** The term `r` (a u32 expression) for the output element at `out`. */
  term: (e: Emitter, out: Index, r: Expr) => Expr;
  /** Whether consecutive `r` read consecutive memory (a row: threads share one output). */
  rowLike: boolean;
  /**
   * Present when the terms `4q .. 4q+3` read four consecutive elements of the input, starting
   * at a multiple of 4: the index at which term `r` reads the input.
   */
  vector?: (e: Emitter, out: Index, r: Expr) => Index;
}

/**
 * The primitives of kind `gemm`, computed by the GEMM family (`kernels/`). A primitive is of
 * kind `gemm` exactly when it is listed here (the type of {@link Lowering.kind} says so), and
 * the backend dispatches these through a table typed `{ [P in GemmPrim]: ... }`, so a new one
 * fails `deno check` until the GEMM family builds it.
 */
export type GemmPrim = "matmul" | "conv2d" | "conv2dBackInput" | "conv2dBackFilter";

/** The lowering of one primitive. */
export interface Lowering<P extends Prim> {
  /** How the scheduler treats the primitive (`gemm` for the {@link GemmPrim}s, and only them). */
  kind: P extends GemmPrim ? "gemm" : Exclude<LoweringKind, "gemm">;
  /** The value at `idx`, for primitives fused into a kernel as an expression. */
  inline?: (e: Emitter, node: Node<P>, idx: Index) => Expr;
  /** The loop, for primitives of kind `loop`. */
  loop?: (node: Node<P>) => LoopSpec;
  /** Relative arithmetic cost of one element (fusion heuristics); 1 when absent. */
  cost?: number;
}

/** NaN, a runtime expression (Chrome's WGSL compiler rejects a constant NaN). */
function nan(e: Emitter): Expr {
  return e.f32Bits(0x7fc00000);
}

const f32 = (v: number) => lit(v, "f32");

/**
 * -Infinity for a reduction's accumulator initializer, which has no emitter: a runtime
 * expression (Chrome's WGSL compiler rejects a constant infinity) through `lid`, the local
 * invocation index every kernel's `main` receives.
 */
const NEG_INF_INIT: Expr = call("bitcast<f32>", [
  bin(
    "|",
    { kind: "lit", type: "u32", value: 0xff800000, hex: true },
    bin("&", name("lid", "u32"), u32(0)),
  ),
]);

/** Test for NaN that survives fast-math assumptions (a bit test). */
function isNan(x: Expr): Expr {
  return bin(
    ">",
    bin("&", call("bitcast<u32>", [x]), { kind: "lit", type: "u32", value: 0x7fffffff, hex: true }),
    { kind: "lit", type: "u32", value: 0x7f800000, hex: true },
  );
}

/** NaN-propagating maximum, as the interpreter computes it. */
function maxExpr(a: Expr, b: Expr, dtype: DType): Expr {
  if (scalarOf(dtype) === "i32") return call("max", [a, b]);
  return select(bin("||", bin(">", a, b), isNan(a)), a, b);
}

function one(dtype: DType): Expr {
  return lit(1, scalarOf(dtype));
}

function unary(
  f: (x: Expr, e: Emitter, node: Node) => Expr,
  cost = 1,
): Lowering<Exclude<Prim, GemmPrim>> {
  return {
    kind: "elementwise",
    inline: (e, node, idx) => f(e.value(node.inputs[0], idx), e, node),
    cost,
  };
}

function binary(
  f: (a: Expr, b: Expr, e: Emitter, node: Node) => Expr,
  cost = 1,
): Lowering<Exclude<Prim, GemmPrim>> {
  return {
    kind: "elementwise",
    inline: (e, node, idx) =>
      f(e.value(node.inputs[0], idx), e.value(node.inputs[1], idx), e, node),
    cost,
  };
}

/** `x ** y` with the interpreter's (Math.pow's) answers for negative and zero bases. */
function powExpr(x: Expr, y: Expr, e: Emitter): Expr {
  const r = e.let(call("exp2", [bin("*", y, call("log2", [call("abs", [x])]))]));
  const odd = bin("==", bin("%", call("abs", [y]), f32(2)), f32(1));
  const negative = e.let(
    select(bin("!=", call("floor", [y]), y), nan(e), select(odd, neg(r), r)),
  );
  const zeroBase = select(bin(">", y, f32(0)), f32(0), e.f32Bits(0x7f800000));
  return select(
    bin("==", y, f32(0)),
    f32(1),
    select(bin("==", x, f32(0)), zeroBase, select(bin(">", x, f32(0)), r, negative)),
  );
}

/**
 * Cast with the interpreter's answers: float to int32 truncates toward zero and wraps modulo
 * 2^32 like JavaScript's ToInt32 (exact: a float32 of magnitude >= 2^31 is a multiple of 256),
 * and NaN or an infinity gives 0.
 */
function castExpr(x: Expr, from: DType, to: DType, e: Emitter): Expr {
  if (scalarOf(from) === scalarOf(to)) return x;
  if (scalarOf(to) === "f32") return call("f32", [x]);
  const t = e.let(call("trunc", [x]), "c");
  const two32 = f32(4294967296);
  const wrapped = e.let(
    call("bitcast<i32>", [
      call("u32", [bin("-", t, bin("*", two32, call("floor", [bin("/", t, two32)])))]),
    ]),
    "c",
  );
  const inRange = call("i32", [call("clamp", [t, f32(-2147483648), f32(2147483520)])]);
  const finite = bin(
    "!=",
    bin("&", call("bitcast<u32>", [x]), { kind: "lit", type: "u32", value: 0x7f800000, hex: true }),
    { kind: "lit", type: "u32", value: 0x7f800000, hex: true },
  );
  return select(
    finite,
    select(bin(">=", call("abs", [t]), f32(2147483648)), wrapped, inRange),
    lit(0, "i32"),
  );
}

/** Row-major reduction loop over `axes` of the input, for `sum` and `reduceMax`. */
function reduceLoop(node: Node<"sum" | "reduceMax">, isMax: boolean): LoopSpec {
  const input = node.inputs[0];
  const axes = [...node.params.axes].sort((a, b) => a - b);
  const rshape = axes.map((a) => input.shape[a]);
  const extent = rshape.reduce((a, b) => a * b, 1);
  const dtype = node.dtype;
  const last = input.shape.length - 1;
  const at = (e: Emitter, out: Index, r: Expr): Index => {
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
    init: isMax
      ? (scalarOf(dtype) === "i32" ? lit(-2147483648, "i32") : NEG_INF_INIT)
      : zeroOf(dtype),
    combine: isMax ? (acc, t) => maxExpr(t, acc, dtype) : (acc, t) => bin("+", acc, t),
    term: (e, out, r) => e.value(input, at(e, out, r)),
    rowLike: axes.includes(last) && input.shape[last] > 1,
    vector: axes.includes(last) && input.shape[last] % 4 === 0 ? at : undefined,
  };
}

function scatterLoop(node: Node<"scatterAdd">): LoopSpec {
  const [upd, idx] = node.inputs;
  const axis = node.params.axis;
  const n = node.shape[axis];
  return {
    extent: upd.shape[axis],
    init: zeroOf(node.dtype),
    combine: (acc, t) => bin("+", acc, t),
    term: (e, out, r) => {
      const od = e.dims(out);
      const at = dimsIndex(upd.shape, od.map((d, k) => k === axis ? r : d));
      const j = e.value(idx, at);
      const bad = e.let(bin(">=", call("u32", [j]), u32(n)), "c");
      e.reportRange(node, bad, j);
      const v = e.value(upd, at);
      return select(bin("==", j, call("i32", [od[axis]])), v, zeroOf(node.dtype));
    },
    rowLike: false,
  };
}

const hex = (v: number): Expr => ({ kind: "lit", type: "u32", value: v >>> 0, hex: true });

/** `a ^ b` of u32 expressions, as `(a | b) - (a & b)` (the kernel IR has no xor). */
function xor(a: Expr, b: Expr): Expr {
  return bin("-", bin("|", a, b), bin("&", a, b));
}

/** `x` rotated left by `r` bits: `(x * 2^r) | (x / 2^(32-r))`, u32 multiply wrapping. */
function rotl(x: Expr, r: number): Expr {
  return bin("|", bin("*", x, hex(2 ** r)), bin("/", x, hex(2 ** (32 - r))));
}

/** Threefry-2x32-20, step for step as `src/ir/threefry.ts`, in u32 arithmetic. */
function threefryExpr(e: Emitter, node: Node<"threefry">, idx: Index): Expr {
  const [k0, k1, x0, x1] = node.inputs.map((x) =>
    e.let(call("bitcast<u32>", [e.value(x, idx)]), "tf")
  );
  const ks = [k0, k1, e.let(xor(hex(THREEFRY_PARITY), xor(k0, k1)), "tf")];
  let a = e.let(bin("+", x0, ks[0]), "tf");
  let b = e.let(bin("+", x1, ks[1]), "tf");
  for (let round = 0; round < 20; round++) {
    a = e.let(bin("+", a, b), "tf");
    b = e.let(xor(rotl(b, THREEFRY_ROTATIONS[round % 8]), a), "tf");
    if (round % 4 === 3) {
      const s = (round + 1) / 4;
      a = e.let(bin("+", a, ks[s % 3]), "tf");
      b = e.let(bin("+", bin("+", b, ks[(s + 1) % 3]), u32(s)), "tf");
    }
  }
  const w = node.params.word === 0 ? a : b;
  if (node.params.output === "bits") return call("bitcast<i32>", [w]);
  return bin("*", call("f32", [bin("/", w, hex(256))]), f32(2 ** -24));
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
      return call(scalarOf(node.dtype), [d]);
    },
  },
  neg: unary((x) => neg(x)),
  recip: unary((x) => bin("/", f32(1), x), 2),
  exp: unary((x) => call("exp", [x]), 4),
  log: unary((x, e) => select(bin("<", x, f32(0)), nan(e), call("log", [x])), 4),
  sqrt: unary((x, e) => select(bin("<", x, f32(0)), nan(e), call("sqrt", [x])), 2),
  cos: unary((x) => call("cos", [x]), 4),
  sin: unary((x) => call("sin", [x]), 4),
  acos: unary((x, e) => select(bin(">", call("abs", [x]), f32(1)), nan(e), call("acos", [x])), 4),
  floor: unary((x) => call("floor", [x])),
  stopGradient: { kind: "movement", inline: (e, node, idx) => e.value(node.inputs[0], idx) },
  cast: unary((x, e, node) => castExpr(x, node.inputs[0].dtype, node.dtype, e)),
  add: binary((a, b) => bin("+", a, b)),
  sub: binary((a, b) => bin("-", a, b)),
  mul: binary((a, b) => bin("*", a, b)),
  div: binary((a, b) => bin("/", a, b), 2),
  max: binary((a, b, _, node) => maxExpr(a, b, node.dtype)),
  pow: binary((a, b, e) => powExpr(a, b, e), 8),
  cmplt: binary((a, b, _, node) => select(bin("<", a, b), one(node.dtype), zeroOf(node.dtype))),
  cmpeq: binary((a, b, _, node) => select(bin("==", a, b), one(node.dtype), zeroOf(node.dtype))),
  where: {
    kind: "elementwise",
    inline: (e, node, idx) => {
      const [c, a, b] = node.inputs.map((x) => e.value(x, idx));
      return select(bin("!=", c, zeroOf(node.inputs[0].dtype)), a, b);
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
      const dims = new Array<Expr>(od.length);
      node.params.perm.forEach((p, i) => dims[p] = od[i]);
      return e.value(node.inputs[0], dimsIndex(node.inputs[0].shape, dims));
    },
  },
  broadcast: {
    kind: "movement",
    inline: (e, node, idx) => {
      const src = node.inputs[0];
      if (src.shape.every((d) => d === 1)) return e.value(src, flatIndex(src.shape, u32(0)));
      const od = e.dims(idx);
      return e.value(
        src,
        dimsIndex(src.shape, od.map((d, k) => src.shape[k] === 1 ? u32(0) : d)),
      );
    },
  },
  slice: {
    kind: "movement",
    inline: (e, node, idx) => {
      const od = e.dims(idx);
      const dims = od.map((d, k) => bin("+", d, u32(node.params.start[k])));
      return e.value(node.inputs[0], dimsIndex(node.inputs[0].shape, dims));
    },
  },
  pad: {
    kind: "movement",
    inline: (e, node, idx) => {
      const src = node.inputs[0];
      if (src.shape.some((d) => d === 0)) return zeroOf(node.dtype);
      const od = e.dims(idx);
      const conds: Expr[] = [];
      const dims = od.map((d, k) => {
        const { lo, hi } = node.params;
        if (lo[k] === 0 && hi[k] === 0) return d;
        const s = e.let(bin("-", d, u32(lo[k])), "p");
        conds.push(bin("<", s, u32(src.shape[k])));
        return s;
      });
      if (conds.length === 0) return e.value(src, dimsIndex(src.shape, dims));
      const ok = e.let(conds.reduce((a, b) => bin("&&", a, b)), "p");
      const v = e.guarded(ok, () => e.value(src, dimsIndex(src.shape, dims)));
      return select(ok, v, zeroOf(node.dtype));
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
      let out: Expr | null = null;
      for (let k = parts.length - 1; k >= 0; k--) {
        const { x, off, n } = parts[k];
        const local = e.let(bin("-", od[axis], u32(off)), "p");
        const ok = k === parts.length - 1 ? lit(1, "bool") : e.let(bin("<", local, u32(n)), "p");
        const guard = off === 0 ? ok : e.let(bin("&&", bin(">=", od[axis], u32(off)), ok), "p");
        const v = e.guarded(
          guard,
          () => e.value(x, dimsIndex(x.shape, od.map((d, j) => j === axis ? local : d))),
        );
        out = out === null ? v : select(ok, v, out);
        if (k > 0 && out.kind === "call") out = e.let(out);
      }
      return out ?? zeroOf(node.dtype);
    },
  },
  flip: {
    kind: "movement",
    inline: (e, node, idx) => {
      const od = e.dims(idx);
      const dims = od.map((d, k) =>
        node.params.axes.includes(k) ? bin("-", u32(node.shape[k] - 1), d) : d
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
      const bad = e.let(bin(">=", call("u32", [j]), u32(x.shape[axis])), "g");
      e.reportRange(node, bad, j);
      const od = e.dims(idx);
      const v = e.value(
        x,
        dimsIndex(x.shape, od.map((d, k) => k === axis ? call("u32", [j]) : d)),
      );
      return select(bad, scalarOf(node.dtype) === "i32" ? lit(0, "i32") : nan(e), v);
    },
  },
  scatterAdd: { kind: "loop", loop: scatterLoop },
  // Replaced by input 0 in the passes; a `barrier` is an identity.
  custom: { kind: "movement", inline: (e, node, idx) => e.value(node.inputs[0], idx) },
  threefry: { kind: "elementwise", inline: threefryExpr, cost: 24 },
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
export function inlineRule(op: Prim): (e: Emitter, node: Node, idx: Index) => Expr {
  const rule = LOWERING[op].inline as ((e: Emitter, node: Node, idx: Index) => Expr) | undefined;
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
 * import { makeNode } from "../ir/node.ts";
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
