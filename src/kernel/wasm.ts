/**
 * The WebAssembly renderer of the kernel IR: a {@link Kernel} becomes one function
 * `(args: i32, start: u32, end: u32)` of a module written by `wasm_writer.ts`. `args` points
 * at the kernel's binding table in linear memory (one i32 byte address per binding, in
 * binding order); the body refers to `start` and `end`, the range of work this call does (a
 * kernel is a function over a range of output indices, so a pool of workers splits it).
 *
 * Semantics follow the WGSL renderer's: u32 arithmetic wraps, integer division by zero gives
 * the dividend (no trap), float-to-int conversions saturate, every load's index is clamped
 * into its binding (WGSL's robust access: out-of-range reads behind `select` never trap).
 * Transcendentals (`exp`, `log`, `cos`, ...) call imported `Math` functions in float64.
 * Workgroup memory, barriers and early returns have no meaning here: the wasm lowerings
 * never emit them, and a kernel holding one is refused.
 *
 * @module
 */
import {
  type Binding,
  type Builtin,
  type Expr,
  freeNames,
  type Kernel,
  laneType,
  type Stmt,
} from "./ir.ts";
import { type FunctionBuilder, type FunctionImport, OP, uleb } from "./wasm_writer.ts";

/** The math functions kernels import (`math.<name>`, float64 to float64). */
export const MATH_IMPORTS: readonly FunctionImport[] = [
  "exp",
  "exp2",
  "log",
  "log2",
  "sin",
  "cos",
  "acos",
].map((n) => ({ module: "math", name: n, params: ["f64"], results: ["f64"] }));

/**
 * The JavaScript values of {@link MATH_IMPORTS}.
 *
 * @example
 * ```ts
 * import { mathImports } from "./wasm.ts";
 * mathImports().math.exp2(3); // 8
 * ```
 */
export function mathImports(): { math: Record<string, (x: number) => number> } {
  return {
    math: {
      exp: Math.exp,
      exp2: (x: number) => 2 ** x,
      log: Math.log,
      log2: Math.log2,
      sin: Math.sin,
      cos: Math.cos,
      acos: Math.acos,
    },
  };
}

const MATH_INDEX = new Map(MATH_IMPORTS.map((m, i) => [m.name as Builtin, i]));

type WasmType = "i32" | "f32" | "v128";

function wasmType(t: Expr["type"]): WasmType {
  return t === "f32" ? "f32" : t === "vec4<f32>" || t === "vec4<i32>" ? "v128" : "i32";
}

/** Options of {@link renderWasmFunction}. */
export interface WasmRenderOptions {
  /** Elements of each binding (loads are clamped into it). */
  elements: (b: Binding) => number;
  /**
   * Whether a map over `gid` may run four elements per step in SIMD128 lanes (default true;
   * kernels the vector renderer cannot express run one element at a time anyway).
   */
  simd?: boolean;
}

/**
 * How the values of one step of a vectorized loop over `gid` (four consecutive indices
 * `g .. g+3`, `g` a multiple of 4) vary across its lanes: `uniform` (one scalar), `affine`
 * (an i32 `s + lane`, held as its scalar `s`; `aligned`: `s` is a multiple of 4, so a division
 * by a multiple of 4 is uniform) or `vector` (a v128).
 */
type Lanes = { kind: "uniform" } | { kind: "affine"; aligned: boolean } | { kind: "vector" };

const UNIFORM: Lanes = { kind: "uniform" };
const VECTOR: Lanes = { kind: "vector" };

/**
 * Writes `kernel`'s body into `f`, a function of parameters `(args: i32, start: i32, end: i32)`;
 * says whether its loop over `gid` runs four elements a step (see {@link WasmRenderOptions.simd}).
 *
 * @example
 * ```ts
 * import { bin, load, name } from "./ir.ts";
 * import { MATH_IMPORTS, renderWasmFunction } from "./wasm.ts";
 * import { encodeModule, FunctionBuilder } from "./wasm_writer.ts";
 * const f = new FunctionBuilder(["i32", "i32", "i32"]);
 * const i = name("i", "u32");
 * renderWasmFunction({
 *   name: "double", comment: "", shared: [], threads: 1, workgroups: [1, 1, 1],
 *   bindings: [
 *     { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [] },
 *     { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] },
 *   ],
 *   body: [{ kind: "for", index: "i", from: name("start", "u32"), to: name("end", "u32"),
 *     step: { kind: "lit", type: "u32", value: 1 },
 *     body: [{ kind: "store", buf: "out0", index: i,
 *       value: bin("*", load("in0", i, "f32"), { kind: "lit", type: "f32", value: 2 }) }] }],
 * }, f, { elements: () => 16 });
 * WebAssembly.validate(encodeModule({
 *   imports: MATH_IMPORTS, memory: { initial: 1, maximum: 1, shared: false },
 *   functions: [{ name: "double", body: f }],
 * })); // true (the renderer calls the math imports by index: they come first)
 * ```
 */
export function renderWasmFunction(
  kernel: Kernel,
  f: FunctionBuilder,
  options: WasmRenderOptions,
): { vectorized: boolean } {
  return { vectorized: new Renderer(kernel, f, options).run() };
}

class Renderer {
  private readonly locals = new Map<string, { index: number; type: WasmType }>();
  private readonly bases = new Map<string, { local: number; binding: Binding }>();
  private readonly temps: Record<WasmType, number[]> = { i32: [], f32: [], v128: [] };
  private readonly err: string | undefined;
  constructor(
    readonly kernel: Kernel,
    readonly f: FunctionBuilder,
    readonly options: WasmRenderOptions,
  ) {
    this.err = kernel.bindings.find((b) => b.scalar === "atomic")?.name;
  }
  /** Renders the kernel; returns whether its loop runs four elements a step. */
  run(): boolean {
    const f = this.f;
    if (this.kernel.shared.length > 0) {
      throw new TypeError(
        `Internal error: kernel ${this.kernel.name} uses workgroup memory, which wasm has not`,
      );
    }
    this.locals.set("args", { index: 0, type: "i32" });
    this.locals.set("start", { index: 1, type: "i32" });
    this.locals.set("end", { index: 2, type: "i32" });
    this.kernel.bindings.forEach((b, i) => {
      if (b.split !== undefined) {
        throw new TypeError(
          `Internal error: binding ${b.name} is split (wasm binds whole tensors)`,
        );
      }
      const local = f.local("i32");
      f.get(0).mem(OP.i32_load, 2, 4 * i).set(local);
      this.bases.set(b.name, { local, binding: b });
    });
    // `lid` (the local invocation index) is 0: one "thread" runs a range.
    this.localFor("lid", "i32");
    this.stmts(this.kernel.body);
    return this.vectorized > 0;
  }

  /** Loops rendered four elements a step. */
  private vectorized = 0;

  /** Lanes of each name of the vectorized loop body (absent: uniform). */
  private readonly lanes = new Map<string, Lanes>();
  /** v128 locals of the vectorized loop body's `vector` names. */
  private readonly vlocals = new Map<string, number>();

  /**
   * Whether `loop` steps by 1 over a body the vector renderer expresses (lets and stores of
   * scalar bindings: an innermost loop, such as a map's loop over `gid` or im2col's over output
   * columns); fills {@link lanes}.
   */
  private vectorizable(loop: Extract<Stmt, { kind: "for" }>): boolean {
    if (loop.step.kind !== "lit" || loop.step.value !== 1 || this.options.simd === false) {
      return false;
    }
    this.lanes.clear();
    this.lanes.set(loop.index, { kind: "affine", aligned: true });
    for (const st of loop.body) {
      if (st.kind === "let") {
        const l = this.lanesOf(st.value);
        if (l === null) return false;
        this.lanes.set(st.name, l);
      } else if (st.kind === "store") {
        const b = this.bases.get(st.buf)?.binding;
        const i = this.lanesOf(st.index), v = this.lanesOf(st.value);
        if (b === undefined || b.lanes !== 1 || b.scalar === "atomic") return false;
        if (i === null || v === null || i.kind === "uniform" || st.lane !== undefined) {
          return false;
        }
      } else {
        return false;
      }
    }
    return true;
  }

  /**
   * For a loop with a {@link Stmt} `lanes` hint (a reduction unrolled four times): the
   * statements of group 0 (the accumulations into `accumulators[i][0]` and the lets they read)
   * when the vector renderer expresses them, with {@link lanes} filled (the index `let`
   * affine, the accumulators vectors); else null.
   */
  private reductionGroup(loop: Extract<Stmt, { kind: "for" }>): Stmt[] | null {
    const hint = loop.lanes!;
    if (this.options.simd === false || loop.step.kind !== "lit" || loop.step.value !== 1) {
      return null;
    }
    const accs = new Set(hint.accumulators.map((a) => a[0]));
    if (hint.accumulators.some((a) => a.length !== 4 || a.some((n) => !this.locals.has(n)))) {
      return null;
    }
    // Group 0, found backwards from its accumulations: the lets they read, transitively.
    const needed = new Set<string>();
    const group: Stmt[] = [];
    for (const st of [...loop.body].reverse()) {
      if (st.kind === "assign" && accs.has(st.name)) {
        freeNames(st.value).forEach((n) => needed.add(n));
        group.push(st);
      } else if (st.kind === "let" && needed.has(st.name)) {
        freeNames(st.value).forEach((n) => needed.add(n));
        group.push(st);
      } else if (st.kind !== "let" && st.kind !== "assign") {
        return null;
      }
    }
    group.reverse();
    if (group.filter((st) => st.kind === "assign").length !== accs.size) return null;
    this.lanes.clear();
    accs.forEach((n) => this.lanes.set(n, VECTOR));
    for (const st of group) {
      if (st.kind !== "let") continue;
      if (st.name === hint.index) {
        if (st.value.type !== "u32" && st.value.type !== "i32") return null;
        this.lanes.set(st.name, { kind: "affine", aligned: false });
        continue;
      }
      const l = this.lanesOf(st.value);
      if (l === null) return null;
      this.lanes.set(st.name, l);
    }
    for (const st of group) {
      if (st.kind === "assign" && this.lanesOf(st.value) === null) return null;
    }
    if (!group.some((st) => st.kind === "let" && st.name === hint.index)) return null;
    return group;
  }

  /**
   * A reduction unrolled four times run as its group 0 in SIMD lanes: accumulator `i`'s four
   * variables packed into one vector before the loop, unpacked after it (each lane sums the
   * same terms in the same order as its variable did).
   */
  private vectorReduction(loop: Extract<Stmt, { kind: "for" }>, group: readonly Stmt[]): void {
    const f = this.f;
    this.vectorized++;
    const packs = loop.lanes!.accumulators.map((names) => {
      const type = this.locals.get(names[0])!.type;
      const v = f.local("v128");
      f.get(this.locals.get(names[0])!.index);
      f.op(type === "f32" ? OP.f32x4_splat : OP.i32x4_splat);
      for (let j = 1; j < 4; j++) {
        f.get(this.locals.get(names[j])!.index);
        f.op(type === "f32" ? OP.f32x4_replace_lane : OP.i32x4_replace_lane, [j]);
      }
      f.set(v);
      this.vlocals.set(names[0], v);
      return { names, type, v };
    });
    const i = this.localFor(loop.index, "i32");
    this.expr(loop.from);
    f.set(i);
    f.op(OP.block, [0x40]).op(OP.loop, [0x40]);
    f.get(i);
    this.expr(loop.to);
    f.op(OP.i32_ge_u).op(OP.br_if, uleb(1));
    this.vectorBody(group);
    f.get(i).i32(1).op(OP.i32_add).set(i).op(OP.br, uleb(0));
    f.op(OP.end).op(OP.end);
    for (const { names, type, v } of packs) {
      names.forEach((n, j) => {
        f.get(v).op(type === "f32" ? OP.f32x4_extract_lane : OP.i32x4_extract_lane, [j]);
        f.set(this.locals.get(n)!.index);
      });
    }
  }

  /** How `e` varies across the lanes of a vectorized step, or null when it cannot be rendered so. */
  private lanesOf(e: Expr): Lanes | null {
    const scalar = (t: Expr["type"]) => t === "f32" || t === "i32" || t === "u32" || t === "bool";
    if (!scalar(e.type)) return null;
    switch (e.kind) {
      case "lit":
      case "wid":
        return UNIFORM;
      case "name":
        return this.lanes.get(e.name) ?? UNIFORM;
      case "unary": {
        const x = this.lanesOf(e.x);
        return x === null ? null : x.kind === "uniform" ? UNIFORM : VECTOR;
      }
      case "binary": {
        const a = this.lanesOf(e.a), b = this.lanesOf(e.b);
        if (a === null || b === null || !scalar(e.a.type)) return null;
        if (a.kind === "uniform" && b.kind === "uniform") return UNIFORM;
        const operand = laneType(e.a.type);
        if (operand === "f32") return e.op === "%" ? null : VECTOR;
        const four = (x: Expr) => x.kind === "lit" && x.value % 4 === 0;
        if (e.op === "+" && a.kind === "affine" && b.kind === "uniform") {
          return { kind: "affine", aligned: a.aligned && four(e.b) };
        }
        if (e.op === "+" && a.kind === "uniform" && b.kind === "affine") {
          return { kind: "affine", aligned: b.aligned && four(e.a) };
        }
        if (e.op === "-" && a.kind === "affine" && b.kind === "uniform") {
          return { kind: "affine", aligned: a.aligned && four(e.b) };
        }
        if (e.op === "/" || e.op === "%") {
          // (s + lane) / d with s and d multiples of 4 is the same in every lane; the
          // remainder is s % d + lane. Other divisions by a positive literal run per lane.
          if (e.b.kind !== "lit" || e.b.value <= 0 || b.kind !== "uniform") return null;
          if (operand === "u32" && a.kind === "affine" && a.aligned && e.b.value % 4 === 0) {
            return e.op === "/" ? UNIFORM : { kind: "affine", aligned: true };
          }
          return VECTOR;
        }
        return VECTOR;
      }
      case "call": {
        const args = e.args.map((x) => this.lanesOf(x));
        if (args.some((x) => x === null)) return null;
        if (args.every((x) => x!.kind === "uniform")) return UNIFORM;
        const from = laneType(e.args[0].type);
        if (
          (e.fn === "f32" || e.fn === "i32" || e.fn === "u32" || e.fn.startsWith("bitcast")) &&
          from === "bool"
        ) {
          return null;
        }
        return e.fn === "select" || e.fn === "sqrt" || e.fn === "floor" || e.fn === "trunc" ||
            e.fn === "abs" || e.fn === "min" || e.fn === "max" || e.fn === "clamp" ||
            e.fn === "f32" || e.fn === "i32" || e.fn === "u32" || e.fn.startsWith("bitcast") ||
            MATH_INDEX.has(e.fn)
          ? VECTOR
          : null;
      }
      case "load": {
        const b = this.bases.get(e.buf)?.binding;
        if (b === undefined || b.lanes !== 1 || b.scalar === "atomic") return null;
        const i = this.lanesOf(e.index);
        return i === null ? null : i.kind === "uniform" ? UNIFORM : VECTOR;
      }
      default:
        return null;
    }
  }

  /**
   * The loop over `[start, end)` as a scalar head up to the first multiple of 4, a vector loop
   * of four elements a step, and a scalar tail: `head = min(align4(start), end)`, vectors over
   * `[align4(start), end & ~3)`, the tail over `[max(end & ~3, head), end)`.
   */
  private vectorLoops(loop: Extract<Stmt, { kind: "for" }>): void {
    const f = this.f;
    this.vectorized++;
    const gid = this.localFor(loop.index, "i32");
    const from = f.local("i32"), to = f.local("i32");
    const vs = f.local("i32"), ve = f.local("i32"), head = f.local("i32");
    this.expr(loop.from);
    f.set(from);
    this.expr(loop.to);
    f.set(to);
    f.get(from).i32(3).op(OP.i32_add).i32(-4).op(OP.i32_and).set(vs);
    f.get(to).i32(-4).op(OP.i32_and).set(ve);
    f.get(vs).get(to).get(vs).get(to).op(OP.i32_lt_u).op(OP.select).set(head);
    const range = (from: () => void, to: () => void, step: number, body: () => void) => {
      from();
      f.set(gid);
      f.op(OP.block, [0x40]).op(OP.loop, [0x40]);
      f.get(gid);
      to();
      f.op(OP.i32_ge_u).op(OP.br_if, uleb(1));
      body();
      f.get(gid).i32(step).op(OP.i32_add).set(gid).op(OP.br, uleb(0));
      f.op(OP.end).op(OP.end);
    };
    range(() => f.get(from), () => f.get(head), 1, () => this.stmts(loop.body));
    range(() => f.get(vs), () => f.get(ve), 4, () => this.vectorBody(loop.body));
    range(
      () => f.get(ve).get(head).get(ve).get(head).op(OP.i32_gt_u).op(OP.select),
      () => f.get(to),
      1,
      () => this.stmts(loop.body),
    );
  }

  private vectorBody(body: readonly Stmt[]): void {
    const f = this.f;
    for (const st of body) {
      if (st.kind === "let") {
        const l = this.lanes.get(st.name)!;
        if (l.kind === "vector") {
          this.vector(st.value);
          let v = this.vlocals.get(st.name);
          if (v === undefined) this.vlocals.set(st.name, v = f.local("v128"));
          f.set(v);
        } else {
          // Uniform values, and affine ones as their first lane: scalar code.
          this.expr(st.value);
          f.set(this.localFor(st.name, wasmType(st.value.type)));
        }
      } else if (st.kind === "assign") {
        this.vector(st.value);
        f.set(this.vlocals.get(st.name)!);
      } else if (st.kind === "store") {
        const { local } = this.base(st.buf);
        const index = this.lanesOf(st.index)!;
        if (index.kind === "affine") {
          f.get(local);
          this.expr(st.index);
          f.i32(2).op(OP.i32_shl).op(OP.i32_add);
          this.vector(st.value);
          f.mem(OP.v128_store, 2);
        } else {
          const iv = this.temp("v128"), vv = this.temp("v128");
          this.vector(st.index);
          f.set(iv);
          this.vector(st.value);
          f.set(vv);
          const isF = wasmType(st.value.type) === "f32";
          for (let l = 0; l < 4; l++) {
            f.get(local).get(iv).op(OP.i32x4_extract_lane, [l]).i32(2).op(OP.i32_shl);
            f.op(OP.i32_add).get(vv);
            f.op(isF ? OP.f32x4_extract_lane : OP.i32x4_extract_lane, [l]);
            f.mem(isF ? OP.f32_store : OP.i32_store, 2);
          }
          this.free("v128", iv);
          this.free("v128", vv);
        }
      }
    }
  }

  /** Pushes `e` as a v128 of its four lanes (f32x4, i32x4, or an i32x4 mask for a bool). */
  private vector(e: Expr): void {
    const f = this.f;
    const l = this.lanesOf(e)!;
    const type = laneType(e.type);
    if (l.kind === "uniform") {
      this.expr(e);
      if (type === "bool") {
        const t = this.temp("i32");
        f.set(t).i32(0).get(t).op(OP.i32_sub);
        this.free("i32", t);
      }
      f.op(type === "f32" ? OP.f32x4_splat : OP.i32x4_splat);
      return;
    }
    if (l.kind === "affine") {
      this.expr(e);
      f.op(OP.i32x4_splat).op(OP.v128_const, [0, 1, 2, 3].flatMap((i) => [i, 0, 0, 0]));
      f.op(OP.i32x4_add);
      return;
    }
    switch (e.kind) {
      case "name":
        f.get(this.vlocals.get(e.name)!);
        return;
      case "unary":
        this.vector(e.x);
        f.op(e.op === "!" ? OP.v128_not : type === "f32" ? OP.f32x4_neg : OP.i32x4_neg);
        return;
      case "binary":
        this.vectorBinary(e);
        return;
      case "call":
        this.vectorCall(e);
        return;
      case "load":
        this.vectorLoad(e);
        return;
      default:
        throw new TypeError(`Internal error: ${e.kind} in a vectorized loop`);
    }
  }

  private vectorBinary(e: Extract<Expr, { kind: "binary" }>): void {
    const f = this.f;
    const operand = laneType(e.a.type);
    const d = e.b.kind === "lit" ? e.b.value : 0;
    if ((e.op === "/" || e.op === "%") && operand === "u32" && d > 0 && (d & (d - 1)) === 0) {
      // An unsigned division by a power of two: a shift, or a mask for the remainder.
      this.vector(e.a);
      if (e.op === "/") f.i32(Math.log2(d)).op(OP.i32x4_shr_u);
      else f.i32(d - 1).op(OP.i32x4_splat).op(OP.v128_and);
      return;
    }
    if ((e.op === "/" || e.op === "%") && operand !== "f32") {
      // A division by a positive literal (see lanesOf), lane by lane.
      const x = this.temp("v128");
      this.vector(e.a);
      f.set(x);
      f.get(x);
      for (let l = 0; l < 4; l++) {
        f.get(x).op(OP.i32x4_extract_lane, [l]);
        this.expr(e.b);
        this.divOp(e.op, operand === "i32");
        f.op(OP.i32x4_replace_lane, [l]);
      }
      this.free("v128", x);
      return;
    }
    this.vector(e.a);
    this.vector(e.b);
    if (operand === "f32") {
      const ops: Partial<Record<typeof e.op, readonly number[]>> = {
        "+": OP.f32x4_add,
        "-": OP.f32x4_sub,
        "*": OP.f32x4_mul,
        "/": OP.f32x4_div,
        "<": OP.f32x4_lt,
        "<=": OP.f32x4_le,
        ">": OP.f32x4_gt,
        ">=": OP.f32x4_ge,
        "==": OP.f32x4_eq,
        "!=": OP.f32x4_ne,
      };
      f.op(ops[e.op]!);
      return;
    }
    const signed = operand === "i32";
    const ops: Partial<Record<typeof e.op, readonly number[]>> = {
      "+": OP.i32x4_add,
      "-": OP.i32x4_sub,
      "*": OP.i32x4_mul,
      "<": signed ? OP.i32x4_lt_s : OP.i32x4_lt_u,
      "<=": signed ? OP.i32x4_le_s : OP.i32x4_le_u,
      ">": signed ? OP.i32x4_gt_s : OP.i32x4_gt_u,
      ">=": signed ? OP.i32x4_ge_s : OP.i32x4_ge_u,
      "==": OP.i32x4_eq,
      "!=": OP.i32x4_ne,
      "&&": OP.v128_and,
      "||": OP.v128_or,
      "&": OP.v128_and,
      "|": OP.v128_or,
    };
    const op = ops[e.op];
    if (op === undefined) throw new TypeError(`Internal error: vector operator ${e.op}`);
    f.op(op);
  }

  /**
   * `exp` of the f32x4 on the stack, in wasm (no call to the host: a call per element cost
   * more than the rest of a softmax): Cephes' `expf`, `x = n ln 2 + r` with `|r| <= ln 2 / 2`,
   * a degree-7 polynomial for `e^r` (about 1 ulp), and `2^n` applied as two powers of two so
   * that results below the normal range round to denormals as `Math.exp` does; `x` clamped to
   * `[-105, 88.8]` (0 and infinity beyond), NaN kept.
   */
  private expVector(): void {
    const f = this.f;
    const x = this.temp("v128"), fx = this.temp("v128"), r = this.temp("v128");
    const y = this.temp("v128"), n = this.temp("v128");
    const k = (v: number) =>
      f.op(OP.v128_const, [...new Uint8Array(new Float32Array(4).fill(v).buffer)]);
    f.set(x);
    f.get(x);
    k(88.8);
    f.op(OP.f32x4_min);
    k(-105);
    f.op(OP.f32x4_max).set(x);
    f.get(x);
    k(1.44269504088896341);
    f.op(OP.f32x4_mul).op(OP.f32x4_nearest).set(fx);
    // r = (x - fx * 0.693359375) - fx * -2.12194440e-4 (the first product is exact)
    f.get(x).get(fx);
    k(0.693359375);
    f.op(OP.f32x4_mul).op(OP.f32x4_sub).get(fx);
    k(-2.12194440e-4);
    f.op(OP.f32x4_mul).op(OP.f32x4_sub).set(r);
    k(1.9875691500e-4);
    for (const c of [1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1]) {
      f.get(r).op(OP.f32x4_mul);
      k(c);
      f.op(OP.f32x4_add);
    }
    f.get(r).op(OP.f32x4_mul);
    k(5.0000001201e-1);
    f.op(OP.f32x4_add).set(y);
    // y = y * r^2 + r + 1
    f.get(y).get(r).get(r).op(OP.f32x4_mul).op(OP.f32x4_mul).get(r).op(OP.f32x4_add);
    k(1);
    f.op(OP.f32x4_add).set(y);
    // 2^n = 2^(n >> 1) * 2^(n - (n >> 1)), each a normal number for n in [-152, 128].
    f.get(fx).op(OP.i32x4_trunc_sat_f32x4_s).set(n);
    f.get(y);
    f.get(n).i32(1).op(OP.i32x4_shr_s);
    f.i32(127).op(OP.i32x4_splat).op(OP.i32x4_add).i32(23).op(OP.i32x4_shl);
    f.op(OP.f32x4_mul);
    f.get(n).get(n).i32(1).op(OP.i32x4_shr_s).op(OP.i32x4_sub);
    f.i32(127).op(OP.i32x4_splat).op(OP.i32x4_add).i32(23).op(OP.i32x4_shl);
    f.op(OP.f32x4_mul);
    for (const t of [x, fx, r, y, n]) this.free("v128", t);
  }

  private vectorCall(e: Extract<Expr, { kind: "call" }>): void {
    const f = this.f;
    const from = laneType(e.args[0].type);
    const isF = from === "f32", signed = from === "i32";
    if (e.fn === "exp") {
      this.vector(e.args[0]);
      this.expVector();
      return;
    }
    const math = MATH_INDEX.get(e.fn);
    if (math !== undefined) {
      const x = this.temp("v128"), r = this.temp("v128");
      this.vector(e.args[0]);
      f.set(x);
      f.get(x).set(r);
      for (let l = 0; l < 4; l++) {
        f.get(r).get(x).op(OP.f32x4_extract_lane, [l]).op(OP.f64_promote_f32);
        f.op(OP.call, uleb(math)).op(OP.f32_demote_f64).op(OP.f32x4_replace_lane, [l]).set(r);
      }
      f.get(r);
      this.free("v128", x);
      this.free("v128", r);
      return;
    }
    switch (e.fn) {
      case "select":
        this.vector(e.args[1]);
        this.vector(e.args[0]);
        this.vector(e.args[2]);
        f.op(OP.v128_bitselect);
        return;
      case "sqrt":
      case "floor":
      case "trunc":
        this.vector(e.args[0]);
        f.op(e.fn === "sqrt" ? OP.f32x4_sqrt : e.fn === "floor" ? OP.f32x4_floor : OP.f32x4_trunc);
        return;
      case "abs":
        this.vector(e.args[0]);
        f.op(isF ? OP.f32x4_abs : OP.i32x4_abs);
        return;
      case "min":
      case "max":
      case "clamp": {
        const max = isF ? OP.f32x4_max : signed ? OP.i32x4_max_s : OP.i32x4_max_u;
        const min = isF ? OP.f32x4_min : signed ? OP.i32x4_min_s : OP.i32x4_min_u;
        this.vector(e.args[0]);
        this.vector(e.args[1]);
        if (e.fn === "clamp") {
          f.op(max);
          this.vector(e.args[2]);
        }
        f.op(e.fn === "max" ? max : min);
        return;
      }
      case "f32":
        this.vector(e.args[0]);
        if (!isF) f.op(signed ? OP.f32x4_convert_i32x4_s : OP.f32x4_convert_i32x4_u);
        return;
      case "i32":
      case "u32":
        this.vector(e.args[0]);
        if (isF) {
          f.op(e.fn === "i32" ? OP.i32x4_trunc_sat_f32x4_s : OP.i32x4_trunc_sat_f32x4_u);
        }
        return;
      default:
        // Bitcasts: the same bits.
        this.vector(e.args[0]);
        return;
    }
  }

  /**
   * A vector load, clamped like the scalar one: four consecutive elements in one `v128.load`
   * when the affine index's last lane is in range, else one clamped load per lane.
   */
  private vectorLoad(e: Extract<Expr, { kind: "load" }>): void {
    const f = this.f;
    const { local, binding } = this.base(e.buf);
    const n = Math.max(1, this.options.elements(binding));
    const isF = wasmType(e.type) === "f32";
    const index = this.lanesOf(e.index)!;
    const iv = this.temp("v128");
    const gather = () => {
      f.v128Zero();
      for (let l = 0; l < 4; l++) {
        const t = this.temp("i32");
        f.get(local).get(iv).op(OP.i32x4_extract_lane, [l]).set(t);
        f.get(t).i32(n - 1).get(t).i32(n).op(OP.i32_lt_u).op(OP.select);
        this.free("i32", t);
        f.i32(2).op(OP.i32_shl).op(OP.i32_add).mem(isF ? OP.f32_load : OP.i32_load, 2);
        f.op(isF ? OP.f32x4_replace_lane : OP.i32x4_replace_lane, [l]);
      }
    };
    if (index.kind === "affine" && n >= 4) {
      const s = this.hold(e.index);
      f.get(s).i32(n - 4).op(OP.i32_le_u).op(OP.if, [0x7b]);
      f.get(local).get(s).i32(2).op(OP.i32_shl).op(OP.i32_add).mem(OP.v128_load, 2);
      f.op(OP.else);
      this.vector(e.index);
      f.set(iv);
      gather();
      f.op(OP.end);
      this.free("i32", s);
    } else {
      this.vector(e.index);
      f.set(iv);
      gather();
    }
    this.free("v128", iv);
  }
  private localFor(n: string, type: WasmType): number {
    const have = this.locals.get(n);
    if (have !== undefined) {
      if (have.type !== type) {
        throw new TypeError(`Internal error: local ${n} is both ${have.type} and ${type}`);
      }
      return have.index;
    }
    const index = this.f.local(type);
    this.locals.set(n, { index, type });
    return index;
  }
  private temp(type: WasmType): number {
    return this.temps[type].pop() ?? this.f.local(type);
  }
  private free(type: WasmType, i: number): void {
    this.temps[type].push(i);
  }
  private stmts(body: readonly Stmt[]): void {
    for (const s of body) this.stmt(s);
  }
  private stmt(s: Stmt): void {
    const f = this.f;
    switch (s.kind) {
      case "let":
      case "assign":
      case "var": {
        const value = s.kind === "var" ? s.init : s.value;
        const type = s.kind === "var" ? wasmType(s.type) : wasmType(value.type);
        this.expr(value);
        f.set(this.localFor(s.name, type));
        return;
      }
      case "store": {
        if (s.lane !== undefined) {
          throw new TypeError(
            `Cannot render kernel ${this.kernel.name} to wasm: it stores a lane of ${s.buf} (a workgroup-array construct)`,
          );
        }
        const { local, binding } = this.base(s.buf);
        f.get(local);
        this.expr(s.index);
        const shift = binding.lanes === 4 ? 4 : 2;
        f.i32(shift).op(OP.i32_shl).op(OP.i32_add);
        this.expr(s.value);
        const vt = wasmType(s.value.type);
        f.mem(vt === "v128" ? OP.v128_store : vt === "f32" ? OP.f32_store : OP.i32_store, 2);
        return;
      }
      case "for": {
        if (this.vectorizable(s)) {
          this.vectorLoops(s);
          return;
        }
        if (s.lanes !== undefined && this.reductionGroup(s) !== null) {
          this.vectorReduction(s, this.reductionGroup(s)!);
          return;
        }
        const i = this.localFor(s.index, "i32");
        this.expr(s.from);
        f.set(i);
        f.op(OP.block, [0x40]).op(OP.loop, [0x40]);
        f.get(i);
        this.expr(s.to);
        f.op(OP.i32_ge_u).op(OP.br_if, uleb(1));
        this.stmts(s.body);
        f.get(i);
        this.expr(s.step);
        f.op(OP.i32_add).set(i).op(OP.br, uleb(0));
        f.op(OP.end).op(OP.end);
        return;
      }
      case "if":
        this.expr(s.cond);
        f.op(OP.if, [0x40]);
        this.stmts(s.body);
        f.op(OP.end);
        return;
      case "block":
        this.stmts(s.body);
        return;
      case "report": {
        if (this.err === undefined) {
          throw new TypeError(`Internal error: kernel ${this.kernel.name} reports without cg_err`);
        }
        const e = this.base(this.err).local;
        // Not atomic: concurrent reports may mix codes and values, but never clear one.
        this.expr(s.cond);
        f.op(OP.if, [0x40]);
        f.i32(s.code).get(e).mem(OP.i32_load, 2).op(OP.i32_gt_u).op(OP.if, [0x40]);
        f.get(e).i32(s.code).mem(OP.i32_store, 2);
        f.get(e);
        this.expr(s.value);
        if (wasmType(s.value.type) === "f32") f.op(OP.i32_reinterpret_f32);
        f.mem(OP.i32_store, 2, 4);
        f.op(OP.end).op(OP.end);
        return;
      }
      case "return":
      case "exit":
      case "barrier":
        throw new TypeError(
          `Internal error: kernel ${this.kernel.name} holds a ${s.kind} statement (a GPU grid construct)`,
        );
    }
  }
  private base(buf: string): { local: number; binding: Binding } {
    const b = this.bases.get(buf);
    if (b === undefined) throw new TypeError(`Internal error: unknown binding ${buf}`);
    return b;
  }
  /** Pushes `e` evaluated into a fresh temp; returns the temp (free it after use). */
  private hold(e: Expr): number {
    const t = this.temp(wasmType(e.type));
    this.expr(e);
    this.f.set(t);
    return t;
  }
  private expr(e: Expr): void {
    const f = this.f;
    switch (e.kind) {
      case "lit":
        if (e.type === "f32") f.f32(e.value);
        else f.i32(e.value | 0);
        return;
      case "name": {
        const l = this.locals.get(e.name);
        if (l === undefined) throw new TypeError(`Internal error: ${e.name} is not defined`);
        f.get(l.index);
        return;
      }
      case "wid":
        f.i32(0);
        return;
      case "unary":
        if (e.op === "!") {
          this.expr(e.x);
          f.op(OP.i32_eqz);
        } else if (wasmType(e.type) === "f32") {
          this.expr(e.x);
          f.op(OP.f32_neg);
        } else {
          f.i32(0);
          this.expr(e.x);
          f.op(OP.i32_sub);
        }
        return;
      case "binary":
        this.binary(e);
        return;
      case "call":
        this.call(e);
        return;
      case "load": {
        const { local, binding } = this.base(e.buf);
        const n = Math.max(1, this.options.elements(binding) / binding.lanes);
        f.get(local);
        // Clamp the index (robust access): i < n ? i : n - 1.
        const t = this.hold(e.index);
        f.get(t).i32(n - 1).get(t).i32(n).op(OP.i32_lt_u).op(OP.select);
        this.free("i32", t);
        f.i32(binding.lanes === 4 ? 4 : 2).op(OP.i32_shl).op(OP.i32_add);
        const vt = wasmType(e.type);
        f.mem(vt === "v128" ? OP.v128_load : vt === "f32" ? OP.f32_load : OP.i32_load, 2);
        return;
      }
      case "lane":
        this.expr(e.x);
        f.op(e.type === "f32" ? OP.f32x4_extract_lane : OP.i32x4_extract_lane, [e.lane]);
        return;
      case "vec": {
        const isF = e.type === "vec4<f32>";
        this.expr(e.parts[0]);
        f.op(isF ? OP.f32x4_splat : OP.i32x4_splat);
        for (let j = 1; j < e.parts.length; j++) {
          this.expr(e.parts[j]);
          f.op(isF ? OP.f32x4_replace_lane : OP.i32x4_replace_lane, [j]);
        }
        return;
      }
    }
  }
  private binary(e: Extract<Expr, { kind: "binary" }>): void {
    const f = this.f;
    const operand = laneType(e.a.type);
    if (e.type === "vec4<f32>" || e.type === "vec4<i32>") {
      throw new TypeError(`Internal error: vector arithmetic (${e.op}) is not rendered to wasm`);
    }
    if (operand === "f32") {
      if (e.op === "%") {
        // WGSL's float remainder: a - trunc(a / b) * b.
        const a = this.hold(e.a), b = this.hold(e.b);
        f.get(a).get(a).get(b).op(OP.f32_div).op(OP.f32_trunc).get(b).op(OP.f32_mul);
        f.op(OP.f32_sub);
        this.free("f32", a);
        this.free("f32", b);
        return;
      }
      this.expr(e.a);
      this.expr(e.b);
      const ops: Partial<Record<typeof e.op, readonly number[]>> = {
        "+": OP.f32_add,
        "-": OP.f32_sub,
        "*": OP.f32_mul,
        "/": OP.f32_div,
        "<": OP.f32_lt,
        "<=": OP.f32_le,
        ">": OP.f32_gt,
        ">=": OP.f32_ge,
        "==": OP.f32_eq,
        "!=": OP.f32_ne,
      };
      const op = ops[e.op];
      if (op === undefined) throw new TypeError(`Internal error: f32 operator ${e.op}`);
      f.op(op);
      return;
    }
    const signed = operand === "i32";
    if (e.op === "/" || e.op === "%") {
      if (e.b.kind === "lit" && e.b.value !== 0 && !(signed && e.b.value === -1)) {
        this.expr(e.a);
        this.expr(e.b);
      } else {
        // WGSL: a / 0 = a, a % 0 = 0; dividing by 1 instead gives both. A signed divisor
        // of -1 also divides by 1 (i32 min / -1 would trap), then negates the quotient.
        const a = this.hold(e.a), b = this.hold(e.b);
        f.get(a);
        f.i32(1).get(b).get(b).op(OP.i32_eqz);
        if (signed) f.get(b).i32(-1).op(OP.i32_eq).op(OP.i32_or);
        f.op(OP.select);
        this.divOp(e.op, signed);
        if (signed && e.op === "/") {
          const q = this.temp("i32");
          f.set(q);
          f.i32(0).get(q).op(OP.i32_sub).get(q).get(b).i32(-1).op(OP.i32_eq).op(OP.select);
          this.free("i32", q);
        }
        this.free("i32", a);
        this.free("i32", b);
        return;
      }
      this.divOp(e.op, signed);
      return;
    }
    this.expr(e.a);
    this.expr(e.b);
    const ops: Partial<Record<typeof e.op, readonly number[]>> = {
      "+": OP.i32_add,
      "-": OP.i32_sub,
      "*": OP.i32_mul,
      "<": signed ? OP.i32_lt_s : OP.i32_lt_u,
      "<=": signed ? OP.i32_le_s : OP.i32_le_u,
      ">": signed ? OP.i32_gt_s : OP.i32_gt_u,
      ">=": signed ? OP.i32_ge_s : OP.i32_ge_u,
      "==": OP.i32_eq,
      "!=": OP.i32_ne,
      "&&": OP.i32_and,
      "||": OP.i32_or,
      "&": OP.i32_and,
      "|": OP.i32_or,
    };
    const op = ops[e.op];
    if (op === undefined) throw new TypeError(`Internal error: integer operator ${e.op}`);
    f.op(op);
  }
  private divOp(op: "/" | "%", signed: boolean): void {
    this.f.op(
      op === "/" ? (signed ? OP.i32_div_s : OP.i32_div_u) : (signed ? OP.i32_rem_s : OP.i32_rem_u),
    );
  }
  private call(e: Extract<Expr, { kind: "call" }>): void {
    const f = this.f;
    const [x] = e.args;
    const from = x === undefined ? "f32" : laneType(x.type);
    if (e.fn === "exp") {
      // The vector code in lane 0: the same bits as a vectorized loop's.
      this.expr(x);
      f.op(OP.f32x4_splat);
      this.expVector();
      f.op(OP.f32x4_extract_lane, [0]);
      return;
    }
    const math = MATH_INDEX.get(e.fn);
    if (math !== undefined) {
      this.expr(x);
      f.op(OP.f64_promote_f32).op(OP.call, uleb(math)).op(OP.f32_demote_f64);
      return;
    }
    switch (e.fn) {
      case "sqrt":
      case "floor":
      case "trunc":
        this.expr(x);
        f.op(e.fn === "sqrt" ? OP.f32_sqrt : e.fn === "floor" ? OP.f32_floor : OP.f32_trunc);
        return;
      case "abs":
        if (from === "f32") {
          this.expr(x);
          f.op(OP.f32_abs);
        } else {
          const t = this.hold(x);
          f.get(t).i32(0).get(t).op(OP.i32_sub).get(t).i32(0).op(OP.i32_ge_s).op(OP.select);
          this.free("i32", t);
        }
        return;
      case "max":
      case "min":
        this.minMax(e.fn, e.args[0], e.args[1], from);
        return;
      case "clamp": {
        if (from === "f32") {
          this.expr(e.args[0]);
          this.expr(e.args[1]);
          f.op(OP.f32_max);
          this.expr(e.args[2]);
          f.op(OP.f32_min);
          return;
        }
        const lo = this.hold(e.args[1]), hi = this.hold(e.args[2]);
        const t = this.hold(e.args[0]);
        const signed = from === "i32";
        f.get(t).get(lo).get(t).get(lo).op(signed ? OP.i32_gt_s : OP.i32_gt_u).op(OP.select);
        f.set(t);
        f.get(t).get(hi).get(t).get(hi).op(signed ? OP.i32_lt_s : OP.i32_lt_u).op(OP.select);
        [lo, hi, t].forEach((i) => this.free("i32", i));
        return;
      }
      case "select": {
        // An f32 select is chosen on its bits: V8 compiles an f32 `select` to a branch (a
        // mispredicted one per element where the condition varies, e.g. PReLU's), an i32
        // `select` to a conditional move.
        const isF = wasmType(e.type) === "f32";
        this.expr(e.args[1]);
        if (isF) f.op(OP.i32_reinterpret_f32);
        this.expr(e.args[0]);
        if (isF) f.op(OP.i32_reinterpret_f32);
        this.expr(e.args[2]);
        f.op(OP.select);
        if (isF) f.op(OP.f32_reinterpret_i32);
        return;
      }
      case "f32":
        this.expr(x);
        if (from === "i32") f.op(OP.f32_convert_i32_s);
        else if (from !== "f32") f.op(OP.f32_convert_i32_u);
        return;
      case "i32":
      case "u32":
        this.expr(x);
        if (from === "f32") {
          f.op(e.fn === "i32" ? OP.i32_trunc_sat_f32_s : OP.i32_trunc_sat_f32_u);
        }
        return;
      case "bitcast<f32>":
        this.expr(x);
        if (from !== "f32") f.op(OP.f32_reinterpret_i32);
        return;
      case "bitcast<i32>":
      case "bitcast<u32>":
        this.expr(x);
        if (from === "f32") f.op(OP.i32_reinterpret_f32);
        return;
      default:
        throw new TypeError(
          `Cannot render kernel ${this.kernel.name} to wasm: builtin ${e.fn} has no wasm form (expected a map or loop kernel's builtins)`,
        );
    }
  }
  private minMax(fn: "max" | "min", a: Expr, b: Expr, type: string): void {
    const f = this.f;
    if (type === "f32") {
      this.expr(a);
      this.expr(b);
      f.op(fn === "max" ? OP.f32_max : OP.f32_min);
      return;
    }
    const ta = this.hold(a), tb = this.hold(b);
    const signed = type === "i32";
    f.get(ta).get(tb).get(ta).get(tb);
    f.op(
      fn === "max" ? (signed ? OP.i32_gt_s : OP.i32_gt_u) : (signed ? OP.i32_lt_s : OP.i32_lt_u),
    );
    f.op(OP.select);
    this.free("i32", ta);
    this.free("i32", tb);
  }
}
