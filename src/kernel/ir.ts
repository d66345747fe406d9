/**
 * The kernel IR: typed ASTs of compute kernels, between the scheduled tensor graph and the
 * text a target compiles (WGSL today). Lowering rules build it (`src/backend/webgpu/`), small
 * passes transform it (`passes.ts`), one renderer per target prints it (`wgsl.ts`); nothing
 * reads printed code back, so every fact a later stage needs (which bindings a kernel reads
 * and writes, which loads are `vec4`, the dispatch size) is a field here.
 *
 * Expressions are immutable trees; sharing is explicit through `let` statements. The
 * constructors fold literal operands (constant folding happens as the tree is built, and
 * {@link fold} re-applies it after a pass substitutes names).
 *
 * @module
 */

/** A scalar type of the kernel language. */
export type Scalar = "f32" | "i32" | "u32" | "bool";

/** The type of an expression: a scalar, or a vector of 4 lanes (`vec4<f32>`, `vec4<i32>`). */
export type Type = Scalar | "vec4<f32>" | "vec4<i32>";

/** Binary operators. */
export type BinOp =
  | "+"
  | "-"
  | "*"
  | "/"
  | "%"
  | "<"
  | "<="
  | ">"
  | ">="
  | "=="
  | "!="
  | "&&"
  | "||"
  | "&"
  | "|";

/** Built-in functions and conversions. */
export type Builtin =
  | "exp"
  | "exp2"
  /** The kernel's fused epilogue, `epilogue(acc: f32, idx: u32) -> f32` ({@link Kernel.epilogue}). */
  | "epilogue"
  | "fma"
  | "dot"
  | "log"
  | "log2"
  | "sqrt"
  | "sin"
  | "cos"
  | "acos"
  | "floor"
  | "trunc"
  | "abs"
  | "max"
  | "min"
  | "clamp"
  | "select"
  | "f32"
  | "i32"
  | "u32"
  | "bitcast<f32>"
  | "bitcast<i32>"
  | "bitcast<u32>";

/** An expression. */
export type Expr =
  /** A finite literal (u32 literals may be written in hex: `hex`). */
  | { readonly kind: "lit"; readonly type: Scalar; readonly value: number; readonly hex?: boolean }
  /** A name: a `let`, a `var`, a loop index or a builtin input (`lid`, `wid`). */
  | { readonly kind: "name"; readonly name: string; readonly type: Type }
  /** Negation or logical not. */
  | { readonly kind: "unary"; readonly op: "-" | "!"; readonly x: Expr; readonly type: Type }
  | {
    readonly kind: "binary";
    readonly op: BinOp;
    readonly a: Expr;
    readonly b: Expr;
    readonly type: Type;
  }
  | {
    readonly kind: "call";
    readonly fn: Builtin;
    readonly args: readonly Expr[];
    readonly type: Type;
  }
  /** Element `index` of a binding or workgroup array (a `vec4` element of a vector binding). */
  | { readonly kind: "load"; readonly buf: string; readonly index: Expr; readonly type: Type }
  /** Lane `lane` of a vector. */
  | { readonly kind: "lane"; readonly x: Expr; readonly lane: number; readonly type: Scalar }
  /** A vector built from four scalars, or from one (every lane the same: a splat). */
  | { readonly kind: "vec"; readonly parts: readonly Expr[]; readonly type: Type }
  /** Field `x`, `y` or `z` of the workgroup id. */
  | { readonly kind: "wid"; readonly axis: "x" | "y" | "z"; readonly type: "u32" };

/** A statement. */
export type Stmt =
  | { readonly kind: "let"; readonly name: string; readonly value: Expr }
  | { readonly kind: "var"; readonly name: string; readonly type: Type; readonly init: Expr }
  | { readonly kind: "assign"; readonly name: string; readonly value: Expr }
  /**
   * `buf[index] = value`, or with `lane` (workgroup arrays of `vec4` only) lane `lane` of
   * element `index`: `buf[index][lane] = value`.
   */
  | {
    readonly kind: "store";
    readonly buf: string;
    readonly index: Expr;
    readonly value: Expr;
    readonly lane?: Expr;
  }
  | {
    readonly kind: "for";
    readonly index: string;
    readonly from: Expr;
    readonly to: Expr;
    readonly step: Expr;
    readonly body: readonly Stmt[];
    /**
     * A hint for renderers with 4-lane SIMD (the wasm one): the body is a reduction unrolled
     * four times, group `j` repeating group 0 with the `let` named `index` plus `j` and
     * accumulating into `accumulators[i][j]` where group 0 accumulates into
     * `accumulators[i][0]`; group 0 alone, run in lanes with accumulator `i`'s four variables
     * as one vector, computes the same values. Renderers may ignore it.
     */
    readonly lanes?: {
      readonly index: string;
      readonly accumulators: readonly (readonly string[])[];
    };
  }
  | { readonly kind: "if"; readonly cond: Expr; readonly body: readonly Stmt[] }
  /** A scope of its own (`{ ... }`): names it defines are not seen after it. */
  | { readonly kind: "block"; readonly body: readonly Stmt[] }
  | { readonly kind: "return" }
  /**
   * `if (index >= limit) { return; }` where `index` counts the dispatch's threads (`unit`
   * `thread`) or workgroups (`workgroup`) in order: the bounds check of a grid rounded up.
   * {@link Kernel.workgroups} proves it unneeded when the grid has exactly `limit` of them.
   */
  | {
    readonly kind: "exit";
    readonly index: Expr;
    readonly limit: number;
    readonly unit: "thread" | "workgroup";
  }
  | { readonly kind: "barrier" }
  /** Records the first out-of-range index: `atomicMax(err[0], code)`, `atomicStore(err[1], value)`. */
  | { readonly kind: "report"; readonly cond: Expr; readonly code: number; readonly value: Expr };

/** A buffer binding of a kernel (storage, or uniform); `R` says what the runtime binds to it. */
export interface Binding<R = unknown> {
  /** Name in the kernel (split parts are `name_0`, `name_1`, ...). */
  readonly name: string;
  /** Element type (`atomic` for the index-error words). */
  readonly scalar: "f32" | "i32" | "atomic";
  /** Whether the kernel writes it. */
  readonly write: boolean;
  /** Lanes per array element: 4 for a binding loaded and stored as `vec4`. */
  readonly lanes: 1 | 4;
  /** Bound as several consecutive ranges of one buffer (each `elements` long but the last). */
  readonly split?: { readonly parts: number; readonly elements: number };
  /**
   * Declared `var<uniform>`: a fixed array of this many elements (read-only, never split). On
   * llvmpipe a load from a uniform buffer is a branch-free gather, or one load when every
   * invocation reads the same element, where a storage load is a per-lane loop.
   */
  readonly uniform?: number;
  /** What the runtime binds: one entry per part. */
  readonly refs: readonly R[];
}

/** An array in workgroup memory. */
export interface Shared {
  /** Name. */
  readonly name: string;
  /** Element type. */
  readonly scalar: "f32" | "i32";
  /** Lanes per element: 4 for an array of `vec4` (default 1). */
  readonly lanes?: 1 | 4;
  /** Elements. */
  readonly size: number;
}

/** A compute kernel: one dispatch. */
export interface Kernel<R = unknown> {
  /** Short name, for profiles and debug output. */
  readonly name: string;
  /** One line saying what it computes (rendered as a comment). */
  readonly comment: string;
  /** Storage bindings, in binding order. */
  readonly bindings: readonly Binding<R>[];
  /** Workgroup memory. */
  readonly shared: readonly Shared[];
  /** Threads per workgroup. */
  readonly threads: number;
  /** Workgroups in x, y, z. */
  readonly workgroups: readonly [number, number, number];
  /** The body of `main` (names `lid`, the local invocation index, and `wid` are defined). */
  readonly body: readonly Stmt[];
  /**
   * The fused epilogue as one function, called by the builtin `epilogue(value, idx)`: its
   * statements update `acc` (an f32 `var` starting at `value`) for the output element `idx`
   * (u32), and the call's value is `acc` after them. One function rather than a copy per
   * store: llvmpipe compiled a 16x16 register block with 256 inlined copies ~1.1-1.3x slower.
   */
  readonly epilogue?: readonly Stmt[];
}

// ---------------------------------------------------------------------------------------------
// Constructors (with literal folding)

/**
 * A literal.
 *
 * @example
 * ```ts
 * import { lit } from "./ir.ts";
 * lit(3, "u32"); // { kind: "lit", type: "u32", value: 3 }
 * ```
 */
export function lit(value: number, type: Scalar): Expr {
  if (type === "f32") {
    const f = Math.fround(value);
    if (!Number.isFinite(f)) {
      throw new RangeError(
        `Cannot write ${value} as an f32 literal: expected a finite value (use an f32 bit pattern)`,
      );
    }
    return { kind: "lit", type, value: f };
  }
  if (type === "u32") return { kind: "lit", type, value: value >>> 0 };
  if (type === "i32") return { kind: "lit", type, value: value | 0 };
  return { kind: "lit", type, value: value ? 1 : 0 };
}

/**
 * The u32 literal `n`.
 *
 * @example
 * ```ts
 * import { u32 } from "./ir.ts";
 * u32(7).kind; // "lit"
 * ```
 */
export function u32(n: number): Expr {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) {
    throw new RangeError(`Expected a u32 value, got ${n}`);
  }
  return lit(n, "u32");
}

/**
 * A reference to a name of type `type`.
 *
 * @example
 * ```ts
 * import { name } from "./ir.ts";
 * name("gid", "u32").kind; // "name"
 * ```
 */
export function name(n: string, type: Type): Expr {
  return { kind: "name", name: n, type };
}

/** The scalar type of lane values of `t`. */
export function laneType(t: Type): Scalar {
  return t === "vec4<f32>" ? "f32" : t === "vec4<i32>" ? "i32" : t;
}

/** Whether `e` is the literal `value`. */
export function isLit(e: Expr, value?: number): e is Extract<Expr, { kind: "lit" }> {
  return e.kind === "lit" && (value === undefined || e.value === value);
}

const RELATIONAL = new Set<BinOp>(["<", "<=", ">", ">=", "==", "!=", "&&", "||"]);

function foldBinary(op: BinOp, a: number, b: number, type: Scalar, operand: Scalar): number | null {
  const wrap = (x: number) =>
    operand === "u32" ? x >>> 0 : operand === "i32" ? x | 0 : Math.fround(x);
  switch (op) {
    case "+":
      return wrap(a + b);
    case "-":
      return wrap(a - b);
    case "*":
      return operand === "f32" ? Math.fround(a * b) : wrap(Math.imul(a, b));
    case "/":
      if (operand !== "f32") return b === 0 ? null : wrap(Math.trunc(a / b));
      return Number.isFinite(a / b) ? Math.fround(a / b) : null;
    case "%":
      return operand !== "f32" && b !== 0 ? wrap(a % b) : null;
    case "<":
      return a < b ? 1 : 0;
    case "<=":
      return a <= b ? 1 : 0;
    case ">":
      return a > b ? 1 : 0;
    case ">=":
      return a >= b ? 1 : 0;
    case "==":
      return a === b ? 1 : 0;
    case "!=":
      return a !== b ? 1 : 0;
    case "&&":
      return a && b ? 1 : 0;
    case "||":
      return a || b ? 1 : 0;
    case "&":
      return type === "u32" ? (a & b) >>> 0 : null;
    case "|":
      return type === "u32" ? (a | b) >>> 0 : null;
  }
}

/**
 * `a op b`. Literal operands are folded in JavaScript with WGSL's semantics (u32 wraps; WGSL
 * rejects a constant expression that overflows, so folding is also what makes `0u - 1u`
 * printable), and the identities `x + 0`, `x * 1`, `x - 0`, `x / 1` of integers are dropped.
 *
 * @example
 * ```ts
 * import { bin, u32 } from "./ir.ts";
 * bin("-", u32(0), u32(1)); // { kind: "lit", type: "u32", value: 4294967295 }
 * ```
 */
export function bin(op: BinOp, a: Expr, b: Expr): Expr {
  const operand = laneType(a.type);
  // A scalar with a vector (`s * v`) is a vector.
  const type: Type = RELATIONAL.has(op) ? "bool" : laneType(a.type) === a.type ? b.type : a.type;
  if (a.kind === "lit" && b.kind === "lit") {
    const v = foldBinary(op, a.value, b.value, laneType(type), operand);
    if (v !== null && (operand !== "f32" || RELATIONAL.has(op) || Number.isFinite(v))) {
      return lit(v, laneType(type));
    }
  }
  if (op === "&&" && isLit(a, 1)) return b;
  if (op === "&&" && isLit(b, 1)) return a;
  if (operand === "u32" || operand === "i32") {
    if ((op === "+" || op === "-") && isLit(b, 0)) return a;
    if (op === "+" && isLit(a, 0)) return b;
    if ((op === "*" || op === "/") && isLit(b, 1)) return a;
    if (op === "*" && isLit(a, 1)) return b;
  }
  return { kind: "binary", op, a, b, type };
}

/**
 * A call of a built-in function; the result type is the first argument's unless given.
 *
 * @example
 * ```ts
 * import { call, name } from "./ir.ts";
 * call("exp", [name("x", "f32")]).type; // "f32"
 * ```
 */
export function call(fn: Builtin, args: readonly Expr[], type?: Type): Expr {
  const t: Type = type ??
    (fn === "dot"
      ? laneType(args[0].type)
      : fn === "epilogue" || fn === "f32" || fn === "bitcast<f32>"
      ? "f32"
      : fn === "i32" || fn === "bitcast<i32>"
      ? "i32"
      : fn === "u32" || fn === "bitcast<u32>"
      ? "u32"
      : fn === "select"
      ? args[0].type
      : args[0].type);
  // Conversions of a value already of the target type are dropped.
  if ((fn === "f32" || fn === "i32" || fn === "u32") && args[0].type === fn) return args[0];
  if (fn === "u32" && args[0].kind === "lit" && args[0].type === "i32" && args[0].value >= 0) {
    return u32(args[0].value);
  }
  return { kind: "call", fn, args, type: t };
}

/**
 * `cond ? a : b` (WGSL's `select(b, a, cond)`); folded when `cond` is a literal.
 *
 * @example
 * ```ts
 * import { lit, name, select } from "./ir.ts";
 * select(lit(1, "bool"), name("a", "f32"), name("b", "f32")); // { kind: "name", name: "a", type: "f32" }
 * ```
 */
export function select(cond: Expr, a: Expr, b: Expr): Expr {
  if (cond.kind === "lit") return cond.value ? a : b;
  return { kind: "call", fn: "select", args: [b, a, cond], type: a.type };
}

/**
 * Negation (`-x`), folded for literals.
 *
 * @example
 * ```ts
 * import { lit, neg } from "./ir.ts";
 * neg(lit(2, "f32")); // { kind: "lit", type: "f32", value: -2 }
 * ```
 */
export function neg(x: Expr): Expr {
  if (x.kind === "lit" && x.type !== "u32" && x.type !== "bool") return lit(-x.value, x.type);
  return { kind: "unary", op: "-", x, type: x.type };
}

/**
 * Element `index` of buffer `buf`.
 *
 * @example
 * ```ts
 * import { load, u32 } from "./ir.ts";
 * load("in0", u32(0), "f32").kind; // "load"
 * ```
 */
export function load(buf: string, index: Expr, type: Type): Expr {
  return { kind: "load", buf, index, type };
}

/**
 * Lane `j` of the vector `x`.
 *
 * @example
 * ```ts
 * import { lane, name } from "./ir.ts";
 * lane(name("v", "vec4<f32>"), 2).type; // "f32"
 * ```
 */
export function lane(x: Expr, j: number): Expr {
  return { kind: "lane", x, lane: j, type: laneType(x.type) };
}

/**
 * The vector with `x` in every lane (`vec4<f32>(x)`).
 *
 * @example
 * ```ts
 * import { name, splat } from "./ir.ts";
 * splat(name("a", "f32")).type; // "vec4<f32>"
 * ```
 */
export function splat(x: Expr): Expr {
  const t = laneType(x.type);
  if (t !== "f32" && t !== "i32") {
    throw new TypeError(`Cannot splat a ${x.type} value: expected f32 or i32`);
  }
  return { kind: "vec", parts: [x], type: t === "f32" ? "vec4<f32>" : "vec4<i32>" };
}

/** `let name = value;` */
export function letS(n: string, value: Expr): Stmt {
  return { kind: "let", name: n, value };
}

// ---------------------------------------------------------------------------------------------
// Queries

/**
 * A structural key of `e`: equal keys mean equal expressions (what CSE and caches compare).
 *
 * @example
 * ```ts
 * import { bin, exprKey, name, u32 } from "./ir.ts";
 * exprKey(bin("+", name("i", "u32"), u32(1))); // "(+ i 1u)"
 * ```
 */
export function exprKey(e: Expr): string {
  switch (e.kind) {
    case "lit":
      return `${e.value}${
        e.type === "f32" ? "f" : e.type === "i32" ? "i" : e.type === "u32" ? "u" : "b"
      }`;
    case "name":
      return e.name;
    case "unary":
      return `(${e.op} ${exprKey(e.x)})`;
    case "binary":
      return `(${e.op} ${exprKey(e.a)} ${exprKey(e.b)})`;
    case "call":
      return `(${e.fn} ${e.args.map(exprKey).join(" ")})`;
    case "load":
      return `(@${e.buf} ${exprKey(e.index)})`;
    case "lane":
      return `(. ${exprKey(e.x)} ${e.lane})`;
    case "vec":
      return `(vec ${e.parts.map(exprKey).join(" ")})`;
    case "wid":
      return `wid.${e.axis}`;
  }
}

/**
 * Calls `visit` on `e` and every sub-expression, parents first.
 *
 * @example
 * ```ts
 * import { bin, name, u32, walkExpr } from "./ir.ts";
 * let n = 0;
 * walkExpr(bin("+", name("i", "u32"), u32(1)), () => n++);
 * n; // 3
 * ```
 */
export function walkExpr(e: Expr, visit: (e: Expr) => void): void {
  visit(e);
  switch (e.kind) {
    case "unary":
    case "lane":
      walkExpr(e.x, visit);
      return;
    case "binary":
      walkExpr(e.a, visit);
      walkExpr(e.b, visit);
      return;
    case "call":
      e.args.forEach((a) => walkExpr(a, visit));
      return;
    case "vec":
      e.parts.forEach((a) => walkExpr(a, visit));
      return;
    case "load":
      walkExpr(e.index, visit);
      return;
    default:
      return;
  }
}

/**
 * The names `e` refers to.
 *
 * @example
 * ```ts
 * import { bin, freeNames, name } from "./ir.ts";
 * [...freeNames(bin("*", name("a", "f32"), name("b", "f32")))]; // ["a", "b"]
 * ```
 */
export function freeNames(e: Expr): Set<string> {
  const out = new Set<string>();
  walkExpr(e, (x) => {
    if (x.kind === "name") out.add(x.name);
  });
  return out;
}

/** The buffers `e` loads from. */
export function loadedBuffers(e: Expr): Set<string> {
  const out = new Set<string>();
  walkExpr(e, (x) => {
    if (x.kind === "load") out.add(x.buf);
  });
  return out;
}

/**
 * `e` with every sub-expression replaced by `f`'s answer (bottom-up; `f` returns its argument
 * to keep it), re-folding literals.
 *
 * @example
 * ```ts
 * import { bin, mapExpr, name, u32 } from "./ir.ts";
 * const e = mapExpr(bin("+", name("i", "u32"), u32(2)), (x) => x.kind === "name" ? u32(3) : x);
 * e; // { kind: "lit", type: "u32", value: 5 }
 * ```
 */
export function mapExpr(e: Expr, f: (e: Expr) => Expr): Expr {
  switch (e.kind) {
    case "unary": {
      const x = mapExpr(e.x, f);
      return f(x === e.x ? e : e.op === "-" ? neg(x) : { ...e, x });
    }
    case "lane": {
      const x = mapExpr(e.x, f);
      return f(x === e.x ? e : { ...e, x });
    }
    case "binary": {
      const a = mapExpr(e.a, f), b = mapExpr(e.b, f);
      return f(a === e.a && b === e.b ? e : bin(e.op, a, b));
    }
    case "call": {
      const args = e.args.map((x) => mapExpr(x, f));
      if (args.every((x, i) => x === e.args[i])) return f(e);
      return f(
        e.fn === "select" ? select(args[2], args[1], args[0]) : call(e.fn, args, e.type),
      );
    }
    case "vec": {
      const parts = e.parts.map((x) => mapExpr(x, f));
      return f(parts.every((x, i) => x === e.parts[i]) ? e : { ...e, parts });
    }
    case "load": {
      const index = mapExpr(e.index, f);
      return f(index === e.index ? e : { ...e, index });
    }
    default:
      return f(e);
  }
}

/** The expressions a statement holds directly (not those of nested blocks). */
export function stmtExprs(s: Stmt): Expr[] {
  switch (s.kind) {
    case "let":
    case "assign":
      return [s.value];
    case "var":
      return [s.init];
    case "store":
      return s.lane === undefined ? [s.index, s.value] : [s.index, s.value, s.lane];
    case "for":
      return [s.from, s.to, s.step];
    case "if":
      return [s.cond];
    case "report":
      return [s.cond, s.value];
    case "exit":
      return [s.index];
    default:
      return [];
  }
}

/**
 * `s` with `f` applied to each of its expressions and, recursively, to nested blocks.
 *
 * @example
 * ```ts
 * import { letS, mapStmt, u32 } from "./ir.ts";
 * mapStmt(letS("a", u32(1)), () => u32(2)); // { kind: "let", name: "a", value: { kind: "lit", type: "u32", value: 2 } }
 * ```
 */
export function mapStmt(s: Stmt, f: (e: Expr) => Expr): Stmt {
  switch (s.kind) {
    case "let":
    case "assign":
      return { ...s, value: f(s.value) };
    case "var":
      return { ...s, init: f(s.init) };
    case "store":
      return {
        ...s,
        index: f(s.index),
        value: f(s.value),
        ...(s.lane === undefined ? {} : { lane: f(s.lane) }),
      };
    case "for":
      return {
        ...s,
        from: f(s.from),
        to: f(s.to),
        step: f(s.step),
        body: s.body.map((x) => mapStmt(x, f)),
      };
    case "if":
      return { ...s, cond: f(s.cond), body: s.body.map((x) => mapStmt(x, f)) };
    case "block":
      return { ...s, body: s.body.map((x) => mapStmt(x, f)) };
    case "report":
      return { ...s, cond: f(s.cond), value: f(s.value) };
    case "exit":
      return { ...s, index: f(s.index) };
    default:
      return s;
  }
}

/**
 * Calls `visit` on every statement of `body`, nested blocks included (parents first).
 *
 * @example
 * ```ts
 * import { letS, u32, walkStmts } from "./ir.ts";
 * let n = 0;
 * walkStmts([letS("a", u32(1)), { kind: "if", cond: u32(1), body: [{ kind: "return" }] }], () => n++);
 * n; // 3
 * ```
 */
export function walkStmts(body: readonly Stmt[], visit: (s: Stmt) => void): void {
  for (const s of body) {
    visit(s);
    if (s.kind === "for" || s.kind === "if" || s.kind === "block") walkStmts(s.body, visit);
  }
}
