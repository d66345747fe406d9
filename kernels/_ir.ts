/**
 * Private helpers of the kernel builders in `kernels/`: short constructors of kernel-IR
 * expressions and statements, the folded workgroup grid, the fused epilogue at a store, the
 * step of a plan made from a built kernel (rendered by the one WGSL renderer), argument checks.
 *
 * @module
 */
import {
  bin,
  type Binding,
  call,
  type Expr,
  type Kernel,
  letS,
  lit,
  load,
  name,
  type Shared,
  type Stmt,
  u32,
} from "../src/kernel/ir.ts";
import type { BindingSplit, Epilogue, KernelSource } from "./types.ts";
import { optimize } from "../src/kernel/passes.ts";

export { letS };

/** Largest workgroup count per dispatch dimension that every WebGPU adapter accepts. */
export const MAX_GROUPS_PER_DIM = 65535;

/**
 * The u32 literal `n` (shorthand of {@link u32}).
 *
 * @example
 * ```ts
 * import { U } from "./_ir.ts";
 * U(4).kind; // "lit"
 * ```
 */
export const U = (n: number): Expr => u32(n);

/**
 * The i32 literal `n`.
 *
 * @example
 * ```ts
 * import { I } from "./_ir.ts";
 * I(-1).type; // "i32"
 * ```
 */
export function I(n: number): Expr {
  return lit(n, "i32");
}

/**
 * A u32 name.
 *
 * @example
 * ```ts
 * import { v } from "./_ir.ts";
 * v("lid").type; // "u32"
 * ```
 */
export function v(n: string): Expr {
  return name(n, "u32");
}

/** `a + b`. */
export const add = (a: Expr, b: Expr): Expr => bin("+", a, b);
/** `a - b`. */
export const sub = (a: Expr, b: Expr): Expr => bin("-", a, b);
/** `a * b`. */
export const mul = (a: Expr, b: Expr): Expr => bin("*", a, b);
/** `a / b`. */
export const div = (a: Expr, b: Expr): Expr => bin("/", a, b);
/** `a % b`. */
export const mod = (a: Expr, b: Expr): Expr => bin("%", a, b);
/** `a < b`. */
export const lt = (a: Expr, b: Expr): Expr => bin("<", a, b);
/** `i32(x)`. */
export const toI32 = (x: Expr): Expr => call("i32", [x]);
/** `u32(x)`. */
export const toU32 = (x: Expr): Expr => call("u32", [x]);

/**
 * The conjunction of bool terms without short-circuit (`&`), or `&&` with `lazy`. With `&&`,
 * each bounds test of an implicit-GEMM load became a branch, and SwiftShader (Chromium's
 * software WebGPU) did not finish creating such pipelines in 15 minutes; with `&` they take
 * about 0.4 s there. Undefined when there are no terms.
 *
 * @example
 * ```ts
 * import { allOf, lt, U, v } from "./_ir.ts";
 * allOf([lt(v("i"), U(4)), lt(v("j"), U(4))])?.kind; // "binary"
 * ```
 */
export function allOf(terms: readonly Expr[], lazy = false): Expr | undefined {
  if (terms.length === 0) return undefined;
  return terms.reduce((a, b) => bin(lazy ? "&&" : "&", a, b));
}

/** `[0, size)` bounds test of an i32 expression, as one unsigned comparison. */
export function inRange(e: Expr, size: number): Expr {
  return lt(toU32(e), U(size));
}

/** `var name: type = init;` */
export function varS(n: string, init: Expr): Stmt {
  return { kind: "var", name: n, type: init.type, init };
}

/** `name = value;` */
export function assign(n: string, value: Expr): Stmt {
  return { kind: "assign", name: n, value };
}

/** `buf[index] = value;` */
export function store(buf: string, index: Expr, value: Expr): Stmt {
  return { kind: "store", buf, index, value };
}

/** `if (cond) { body }`, or the body alone when `cond` is undefined. */
export function when(cond: Expr | undefined, body: Stmt[]): Stmt[] {
  return cond === undefined ? body : [{ kind: "if", cond, body }];
}

/** `for (var index = from; index < to; index = index + step) { body }`. */
export function loop(index: string, from: Expr, to: Expr, step: number, body: Stmt[]): Stmt {
  return { kind: "for", index, from, to, step: U(step), body };
}

/** A load of a scalar f32 element. */
export function loadF(buf: string, index: Expr): Expr {
  return load(buf, index, "f32");
}

/** A load of a `vec4<f32>` element. */
export function loadV(buf: string, index: Expr): Expr {
  return load(buf, index, "vec4<f32>");
}

/** A dispatch of `total` workgroups folded into x, y, z, and the statements defining `lin`. */
export interface FoldedGrid {
  /** Workgroups per dimension. */
  workgroups: [number, number, number];
  /** `let lin = ...` (the linear workgroup id) and the early exit past `total`. */
  prelude: Stmt[];
}

/**
 * Folds a linear workgroup count into x/y/z with each at most 65535.
 *
 * @example
 * ```ts
 * import { foldGrid } from "./_ir.ts";
 * foldGrid(70000).workgroups; // [65535, 2, 1]
 * ```
 */
export function foldGrid(total: number): FoldedGrid {
  if (!Number.isSafeInteger(total) || total < 1) {
    throw new RangeError(`Cannot dispatch ${total} workgroups: expected a positive integer`);
  }
  const x = Math.min(total, MAX_GROUPS_PER_DIM);
  const rest = Math.ceil(total / x);
  const y = Math.min(rest, MAX_GROUPS_PER_DIM);
  const z = Math.ceil(rest / y);
  if (z > MAX_GROUPS_PER_DIM || total >= 2 ** 32) {
    throw new RangeError(`Cannot dispatch ${total} workgroups: expected at most 2^32 - 1`);
  }
  const wid = (axis: "x" | "y" | "z"): Expr => ({ kind: "wid", axis, type: "u32" });
  let lin = wid("x");
  if (y > 1) lin = add(lin, mul(wid("y"), U(x)));
  if (z > 1) lin = add(lin, mul(wid("z"), U(x * y)));
  // Workgroup ids are uniform, so this early exit keeps later barriers in uniform control flow.
  const prelude: Stmt[] = [letS("lin", lin)];
  if (x * y * z > total) {
    prelude.push({ kind: "exit", index: v("lin"), limit: total, unit: "workgroup" });
  }
  return { workgroups: [x, y, z], prelude };
}

/** One storage binding of a built kernel. */
export interface BindingDecl {
  /** Binding name (also the name in the kernel). */
  name: string;
  /** Element type: `vec4<f32>` declares an array of vectors. */
  type: "f32" | "i32" | "vec4<f32>";
  /** Whether the kernel writes it. */
  write?: boolean;
  /** Bound as several parts (see {@linkcode BindingSplit}); whole when absent. */
  split?: BindingSplit;
  /** Declared as a uniform array of this many elements (read-only, not split). */
  uniform?: number;
}

/**
 * The kernel-IR binding of a declaration (its runtime references are its name).
 *
 * @example
 * ```ts
 * import { binding } from "./_ir.ts";
 * binding({ name: "out", type: "f32", write: true }).write; // true
 * ```
 */
export function binding(d: BindingDecl): Binding<string> {
  if (d.split !== undefined) {
    const { parts, elements } = d.split;
    if (!Number.isInteger(parts) || parts < 2 || elements <= 0 || elements % 4 !== 0) {
      throw new RangeError(
        `Invalid split of binding ${d.name}: ${parts} parts of ${elements} elements, expected at least 2 parts of a positive multiple of 4`,
      );
    }
  }
  if (
    d.uniform !== undefined &&
    (d.write || d.split !== undefined || d.type !== "vec4<f32>" || !(d.uniform >= 1))
  ) {
    throw new RangeError(
      `Invalid uniform binding ${d.name}: ${d.uniform} elements of ${d.type}, expected a read-only, unsplit array of at least one vec4<f32>`,
    );
  }
  return {
    name: d.name,
    scalar: d.type === "i32" ? "i32" : "f32",
    write: d.write ?? false,
    lanes: d.type === "vec4<f32>" ? 4 : 1,
    ...(d.split === undefined ? {} : { split: d.split }),
    ...(d.uniform === undefined ? {} : { uniform: d.uniform }),
    refs: [d.name],
  };
}

/**
 * The bindings of an epilogue's extra inputs `e0, e1, ...`.
 *
 * @example
 * ```ts
 * import { epilogueInputs } from "./_ir.ts";
 * epilogueInputs({ stmts: [], extraInputs: 2 }).length; // 2
 * ```
 */
export function epilogueInputs(epilogue: Epilogue | undefined): BindingDecl[] {
  const n = epilogue?.extraInputs ?? 0;
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Invalid epilogue.extraInputs ${n}: expected a non-negative integer`);
  }
  return Array.from({ length: n }, (_, i) => ({ name: `e${i}`, type: "f32" }));
}

/**
 * Runs the fused epilogue on `value` at element `index`, then `finish` on the result: in a
 * block of its own, `let idx = index;` and `finish(epilogue(value, idx), idx)`, a call of the
 * kernel's epilogue function (pass the epilogue to {@link irStep}). Without an epilogue,
 * `finish(value, index)` alone.
 *
 * @example
 * ```ts
 * import { store, U, withEpilogue } from "./_ir.ts";
 * import { lit } from "../src/kernel/ir.ts";
 * withEpilogue(undefined, U(0), lit(1, "f32"), (x, i) => store("out", i, x))[0].kind; // "store"
 * ```
 */
export function withEpilogue(
  epilogue: Epilogue | undefined,
  index: Expr,
  value: Expr,
  finish: (value: Expr, index: Expr) => Stmt,
): Stmt[] {
  if (epilogue === undefined || epilogue.stmts.length === 0) return [finish(value, index)];
  return [{
    kind: "block",
    body: [letS("idx", index), finish(call("epilogue", [value, v("idx")]), v("idx"))],
  }];
}

/**
 * Stores `value` at element `index` of `out` after the fused epilogue (see
 * {@link withEpilogue}).
 *
 * @example
 * ```ts
 * import { epilogueStore, U } from "./_ir.ts";
 * import { lit } from "../src/kernel/ir.ts";
 * epilogueStore(undefined, "out", U(0), lit(1, "f32"))[0].kind; // "store"
 * ```
 */
export function epilogueStore(
  epilogue: Epilogue | undefined,
  out: string,
  index: Expr,
  value: Expr,
): Stmt[] {
  return withEpilogue(epilogue, index, value, (x, i) => store(out, i, x));
}

/** What a built kernel needs besides its body. */
export interface KernelParts {
  /** One line saying what it computes. */
  comment: string;
  /** Storage bindings, in binding order. */
  bindings: BindingDecl[];
  /** Workgroup arrays. */
  shared?: Shared[];
  /** Threads per workgroup. */
  threads: number;
  /** The folded grid (its prelude starts the body). */
  grid: FoldedGrid;
  /** The body after the grid's prelude. */
  body: Stmt[];
  /** The fused epilogue the body calls (see {@link withEpilogue}). */
  epilogue?: Epilogue;
}

/**
 * A plan step from a built kernel: the IR after the kernel passes ({@linkcode optimize}:
 * hoisting, common subexpressions, dead `let`s, bounds checks the grid makes redundant), the
 * grid, the binding names in order and the ones it writes.
 *
 * @example
 * ```ts
 * import { foldGrid, irStep, store, U } from "./_ir.ts";
 * import { lit } from "../src/kernel/ir.ts";
 * const step = irStep("fill", {
 *   comment: "one", threads: 1, grid: foldGrid(1),
 *   bindings: [{ name: "out", type: "f32", write: true }],
 *   body: [store("out", U(0), lit(1, "f32"))],
 * });
 * step.writes; // ["out"]
 * ```
 */
export function irStep(kernelName: string, parts: KernelParts): KernelSource {
  const kernel: Kernel<string> = optimize({
    name: kernelName,
    comment: parts.comment,
    bindings: parts.bindings.map(binding),
    shared: parts.shared ?? [],
    threads: parts.threads,
    workgroups: parts.grid.workgroups,
    body: [...parts.grid.prelude, ...parts.body],
    ...(parts.epilogue === undefined || parts.epilogue.stmts.length === 0
      ? {}
      : { epilogue: parts.epilogue.stmts }),
  });
  return {
    workgroups: parts.grid.workgroups,
    bindings: kernel.bindings.map((b) => b.name),
    writes: kernel.bindings.filter((b) => b.write).map((b) => b.name),
    kernel,
  };
}

/**
 * Checks that each named field is a positive (or, with `min: 0`, non-negative) safe integer.
 *
 * @example
 * ```ts
 * import { checkInts } from "./_ir.ts";
 * checkInts("matmulKernel", { m: 4, n: 2 });
 * ```
 */
export function checkInts(
  who: string,
  fields: Record<string, number>,
  options: { min?: number } = {},
): void {
  const min = options.min ?? 1;
  for (const [key, value] of Object.entries(fields)) {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(
        `Invalid ${who} ${key} ${value}: expected an integer ≥ ${min}`,
      );
    }
  }
}

/**
 * Rounds a byte size up to a multiple of 16.
 *
 * @example
 * ```ts
 * import { align16 } from "./_ir.ts";
 * import assert from "node:assert/strict";
 * assert(align16(20) === 32);
 * ```
 */
export function align16(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}
