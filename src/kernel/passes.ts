/**
 * Passes over the kernel IR, each small and testable without a device:
 *
 * - {@link hoist}: `let`s whose value does not change in a loop or branch move in front of it;
 * - {@link cse}: a `let` equal to one already in scope is replaced by that one's name;
 * - {@link vectorizeLanes}: bindings read only at four consecutive elements per thread become
 *   `vec4` bindings loaded once per thread (llvmpipe loads storage one lane at a time);
 * - {@link elideBounds}: a grid's bounds check goes where the grid has exactly that many
 *   threads or workgroups;
 * - {@link optimize} runs them in order. Constant folding happens in the IR's constructors
 *   (`ir.ts`), and again wherever a pass rebuilds an expression.
 *
 * @module
 */
import {
  bin,
  type Binding,
  type Expr,
  exprKey,
  freeNames,
  type Kernel,
  lane,
  load,
  loadedBuffers,
  mapExpr,
  mapStmt,
  name,
  type Stmt,
  stmtExprs,
  u32,
  walkStmts,
} from "./ir.ts";

/** Names a block defines directly (its `let`s, `var`s and, for a loop, the index). */
function defined(body: readonly Stmt[]): Set<string> {
  const out = new Set<string>();
  for (const s of body) if (s.kind === "let" || s.kind === "var") out.add(s.name);
  return out;
}

/** The names assigned anywhere in `body` (mutable `var`s). */
function mutableNames(body: readonly Stmt[]): Set<string> {
  const out = new Set<string>();
  walkStmts(body, (s) => {
    if (s.kind === "var") out.add(s.name);
  });
  return out;
}

/** Buffers whose contents change while the kernel runs: written bindings and workgroup arrays. */
function mutableBuffers(kernel: Kernel): Set<string> {
  return new Set([
    ...kernel.bindings.filter((b) => b.write).map((b) => b.name),
    ...kernel.shared.map((s) => s.name),
  ]);
}

/** Whether `e` may be computed anywhere its names are defined: no mutable name or buffer. */
function pure(e: Expr, mutable: ReadonlySet<string>, buffers: ReadonlySet<string>): boolean {
  for (const n of freeNames(e)) if (mutable.has(n)) return false;
  for (const b of loadedBuffers(e)) if (buffers.has(b)) return false;
  return true;
}

/**
 * Moves loop- and branch-invariant `let`s out of `for` and `if` blocks, to just before the
 * block (repeatedly, so a value rises as far as its names allow). Values reading a `var` or a
 * buffer the kernel writes stay where they are.
 *
 * @example
 * ```ts
 * import { bin, load, name, u32 } from "./ir.ts";
 * import { hoist } from "./passes.ts";
 * const k = hoist({
 *   name: "k", comment: "", shared: [], threads: 1, workgroups: [1, 1, 1],
 *   bindings: [{ name: "in0", scalar: "f32", write: false, lanes: 1, refs: [] }],
 *   body: [{ kind: "for", index: "r", from: u32(0), to: u32(4), step: u32(1), body: [
 *     { kind: "let", name: "a", value: load("in0", name("lid", "u32"), "f32") },
 *     { kind: "let", name: "b", value: bin("+", name("a", "f32"), load("in0", name("r", "u32"), "f32")) },
 *   ] }],
 * });
 * k.body[0].kind; // "let" (a moved in front of the loop)
 * ```
 */
export function hoist<R>(kernel: Kernel<R>): Kernel<R> {
  const mutable = mutableNames(kernel.body);
  const buffers = mutableBuffers(kernel);
  const block = (body: readonly Stmt[]): Stmt[] => {
    const out: Stmt[] = [];
    for (const s of body) {
      if (s.kind !== "for" && s.kind !== "if") {
        out.push(s);
        continue;
      }
      const inner = block(s.body);
      // Names the block defines, and those that depend on them, stay inside.
      const local = new Set<string>(s.kind === "for" ? [s.index] : []);
      const moved: Stmt[] = [];
      const kept: Stmt[] = [];
      for (const x of inner) {
        if (
          x.kind === "let" && pure(x.value, mutable, buffers) &&
          ![...freeNames(x.value)].some((n) => local.has(n))
        ) {
          moved.push(x);
          continue;
        }
        if (x.kind === "let" || x.kind === "var") local.add(x.name);
        if (x.kind === "for" || x.kind === "if" || x.kind === "block") {
          defined(x.body).forEach((n) => local.add(n));
        }
        kept.push(x);
      }
      out.push(...moved, { ...s, body: kept });
    }
    return out;
  };
  return { ...kernel, body: block(kernel.body) };
}

/**
 * Common subexpression elimination over `let`s: a `let` whose value equals one already in
 * scope (same structure, no mutable name or buffer) is dropped and its name replaced by the
 * earlier one.
 *
 * @example
 * ```ts
 * import { bin, name, u32 } from "./ir.ts";
 * import { cse } from "./passes.ts";
 * const i = name("lid", "u32");
 * const k = cse({
 *   name: "k", comment: "", shared: [], threads: 1, workgroups: [1, 1, 1], bindings: [],
 *   body: [
 *     { kind: "let", name: "a", value: bin("*", i, u32(4)) },
 *     { kind: "let", name: "b", value: bin("*", i, u32(4)) },
 *   ],
 * });
 * k.body.length; // 1
 * ```
 */
export function cse<R>(kernel: Kernel<R>): Kernel<R> {
  const mutable = mutableNames(kernel.body);
  const buffers = mutableBuffers(kernel);
  const block = (
    body: readonly Stmt[],
    seen: Map<string, string>,
    rename: Map<string, Expr>,
  ): Stmt[] => {
    const known = new Map(seen);
    const out: Stmt[] = [];
    const sub = (e: Expr) =>
      rename.size === 0 ? e : mapExpr(e, (x) => x.kind === "name" ? rename.get(x.name) ?? x : x);
    for (const s of body) {
      // The block's own expressions first (a loop's bounds), then its body.
      const nested = s.kind === "for" || s.kind === "if" || s.kind === "block";
      const head = mapStmt(nested ? { ...s, body: [] } : s, sub);
      const stmt: Stmt = nested ? { ...head, body: block(s.body, known, rename) } as Stmt : head;
      if (stmt.kind === "let" && pure(stmt.value, mutable, buffers)) {
        const key = exprKey(stmt.value);
        const have = known.get(key);
        if (have !== undefined) {
          rename.set(stmt.name, name(have, stmt.value.type));
          continue;
        }
      }
      if (stmt.kind === "let" || stmt.kind === "var") {
        // A name defined again (in an inner scope, shadowing) is its own value from here on:
        // no earlier rename of it applies, and no earlier value is known under it.
        rename.delete(stmt.name);
        for (const [k, n] of known) if (n === stmt.name) known.delete(k);
        if (stmt.kind === "let" && pure(stmt.value, mutable, buffers)) {
          known.set(exprKey(stmt.value), stmt.name);
        }
      }
      out.push(stmt);
    }
    return out;
  };
  return { ...kernel, body: block(kernel.body, new Map(), new Map()) };
}

/** Where {@link vectorizeLanes} finds a thread's four consecutive elements. */
export interface LaneGroup {
  /** The names holding the flat offsets of lanes 0..3 (lane j = lane 0 + j, lane 0 a multiple of 4). */
  lanes: readonly string[];
  /** The index of the `vec4` holding the four elements (lane 0's offset / 4). */
  vecIndex: Expr;
  /** The `let` after which the vector loads go (lane 0's offset, or none: the block's start). */
  after?: string;
}

/**
 * Bindings that the kernel reads only at a lane group's offsets (read-only, unsplit, scalar)
 * are declared `vec4` and loaded once per group, each lane read becoming a lane of that load.
 * Measured on llvmpipe (T1's batch norm and PReLU, 4M elements): 1.5-1.9x, since it loads
 * storage one lane at a time. `eligible` may refuse bindings (e.g. a tensor of another size).
 * And since lane 0's offset is a multiple of 4, a lane's offset divided by a multiple of 4 is
 * lane 0's quotient: written so, the lanes share one index, load and computation of a
 * broadcast value once {@link cse} runs (T1's batch-norm maps, per-channel statistics: 199-291
 * ms a step before, 113-133 ms after, on llvmpipe).
 *
 * @example
 * ```ts
 * import { load, name, u32 } from "./ir.ts";
 * import { vectorizeLanes } from "./passes.ts";
 * const g = ["g0", "g1", "g2", "g3"];
 * const k = vectorizeLanes({
 *   name: "k", comment: "", shared: [], threads: 1, workgroups: [1, 1, 1],
 *   bindings: [{ name: "in0", scalar: "f32", write: false, lanes: 1, refs: [] }],
 *   body: g.map((x) => ({ kind: "let", name: `v${x}`, value: load("in0", name(x, "u32"), "f32") })),
 * }, { lanes: g, vecIndex: name("q", "u32") });
 * k.bindings[0].lanes; // 4
 * ```
 */
export function vectorizeLanes<R>(
  kernel: Kernel<R>,
  group: LaneGroup,
  eligible: (b: Binding<R>) => boolean = () => true,
): Kernel<R> {
  const laneOf = new Map(group.lanes.map((n, j) => [n, j]));
  const first = name(group.lanes[0], "u32");
  const quotient = (x: Expr): Expr =>
    x.kind === "binary" && x.op === "/" && x.a.kind === "name" && laneOf.has(x.a.name) &&
      x.b.kind === "lit" && x.b.type === "u32" && x.b.value > 0 && x.b.value % 4 === 0
      ? bin("/", first, x.b)
      : x;
  const shared = kernel.body.map((s) => mapStmt(s, (e) => mapExpr(e, quotient)));
  const ok = new Set(
    kernel.bindings.filter((b) =>
      !b.write && b.split === undefined && b.lanes === 1 && b.scalar !== "atomic" && eligible(b)
    ).map((b) => b.name),
  );
  const visitLoads = (e: Expr) =>
    mapExpr(e, (x) => {
      if (x.kind !== "load" || !ok.has(x.buf)) return x;
      if (x.index.kind !== "name" || !laneOf.has(x.index.name)) ok.delete(x.buf);
      return x;
    });
  walkStmts(shared, (s) => stmtExprs(s).forEach(visitLoads));
  if (ok.size === 0) return { ...kernel, body: shared };
  const vec = (b: string) => `${b}_v`;
  const types = new Map<string, Expr["type"]>();
  const rewrite = (e: Expr) =>
    mapExpr(e, (x) => {
      if (x.kind !== "load" || !ok.has(x.buf) || x.index.kind !== "name") return x;
      types.set(x.buf, x.type);
      return lane(
        name(vec(x.buf), x.type === "i32" ? "vec4<i32>" : "vec4<f32>"),
        laneOf.get(x.index.name)!,
      );
    });
  let body = shared.map((s) => mapStmt(s, rewrite));
  const used = [...ok].filter((b) => types.has(b));
  const loads: Stmt[] = used.map((b) => ({
    kind: "let",
    name: vec(b),
    value: load(b, group.vecIndex, types.get(b) === "i32" ? "vec4<i32>" : "vec4<f32>"),
  }));
  const insert = (block: readonly Stmt[]): Stmt[] | null => {
    const at = block.findIndex((s) => s.kind === "let" && s.name === group.after);
    if (at >= 0) return [...block.slice(0, at + 1), ...loads, ...block.slice(at + 1)];
    for (let i = 0; i < block.length; i++) {
      const s = block[i];
      if (s.kind !== "for" && s.kind !== "if") continue;
      const inner = insert(s.body);
      if (inner !== null) {
        return [...block.slice(0, i), { ...s, body: inner }, ...block.slice(i + 1)];
      }
    }
    return null;
  };
  if (group.after === undefined) body = [...loads, ...body];
  else {
    const placed = insert(body);
    if (placed === null) {
      throw new TypeError(
        `Internal error: lane offset ${group.after} is not defined in ${kernel.name}`,
      );
    }
    body = placed;
  }
  return {
    ...kernel,
    body,
    bindings: kernel.bindings.map((b) => used.includes(b.name) ? { ...b, lanes: 4 } : b),
  };
}

/**
 * Drops bounds checks ({@link Stmt} `exit`) that the grid makes unneeded: exactly `limit`
 * threads (or workgroups) are dispatched.
 *
 * @example
 * ```ts
 * import { name } from "./ir.ts";
 * import { elideBounds } from "./passes.ts";
 * elideBounds({
 *   name: "k", comment: "", shared: [], threads: 64, workgroups: [4, 1, 1], bindings: [],
 *   body: [{ kind: "exit", index: name("gid", "u32"), limit: 256, unit: "thread" }],
 * }).body.length; // 0
 * ```
 */
export function elideBounds<R>(kernel: Kernel<R>): Kernel<R> {
  const groups = kernel.workgroups[0] * kernel.workgroups[1] * kernel.workgroups[2];
  const needed = (s: Stmt) =>
    s.kind !== "exit" || (s.unit === "thread" ? groups * kernel.threads : groups) > s.limit;
  const block = (body: readonly Stmt[]): Stmt[] =>
    body.filter(needed).map((s) =>
      s.kind === "for" || s.kind === "if" || s.kind === "block" ? { ...s, body: block(s.body) } : s
    );
  return { ...kernel, body: block(kernel.body) };
}

/**
 * Dead-code elimination: drops `let`s whose names nothing reads (repeatedly, so a chain of
 * unused values goes entirely).
 *
 * @example
 * ```ts
 * import { name, u32 } from "./ir.ts";
 * import { dce } from "./passes.ts";
 * dce({
 *   name: "k", comment: "", shared: [], threads: 1, workgroups: [1, 1, 1], bindings: [],
 *   body: [{ kind: "let", name: "a", value: u32(1) }, { kind: "let", name: "b", value: name("a", "u32") }],
 * }).body.length; // 0
 * ```
 */
export function dce<R>(kernel: Kernel<R>): Kernel<R> {
  let body = kernel.body;
  for (;;) {
    const used = new Set<string>();
    walkStmts(body, (s) => stmtExprs(s).forEach((e) => freeNames(e).forEach((n) => used.add(n))));
    let removed = false;
    const block = (b: readonly Stmt[]): Stmt[] =>
      b.flatMap((s): Stmt[] => {
        if (s.kind === "let" && !used.has(s.name)) {
          removed = true;
          return [];
        }
        return s.kind === "for" || s.kind === "if" || s.kind === "block"
          ? [{ ...s, body: block(s.body) }]
          : [s];
      });
    body = block(body);
    if (!removed) return { ...kernel, body };
  }
}

/**
 * The standard pipeline: {@link hoist}, {@link cse}, {@link dce}, then {@link elideBounds}.
 * (Vectorization needs to know the lane groups, so the lowering that made them runs it.)
 *
 * @example
 * ```ts
 * import { optimize } from "./passes.ts";
 * optimize({
 *   name: "k", comment: "", shared: [], threads: 1, workgroups: [1, 1, 1], bindings: [], body: [],
 * }).body; // []
 * ```
 */
export function optimize<R>(kernel: Kernel<R>): Kernel<R> {
  return elideBounds(dce(cse(hoist(kernel))));
}

/**
 * `base * 4 + j`, lane `j`'s offset of the quad at `base` (a helper of the lowering).
 *
 * @example
 * ```ts
 * import { name } from "./ir.ts";
 * import { quadOffset } from "./passes.ts";
 * quadOffset(name("q", "u32"), 0).kind; // "binary"
 * ```
 */
export function quadOffset(base: Expr, j: number): Expr {
  return bin("+", bin("*", base, u32(4)), u32(j));
}
