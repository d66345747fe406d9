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
import { type Binding, type Builtin, type Expr, type Kernel, laneType, type Stmt } from "./ir.ts";
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
}

/**
 * Writes `kernel`'s body into `f`, a function of parameters `(args: i32, start: i32, end: i32)`.
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
): void {
  new Renderer(kernel, f, options).run();
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
  run(): void {
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
        for (let j = 1; j < 4; j++) {
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
      case "select":
        this.expr(e.args[1]);
        this.expr(e.args[0]);
        this.expr(e.args[2]);
        f.op(OP.select);
        return;
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
        throw new TypeError(`Internal error: builtin ${e.fn} is not rendered to wasm`);
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
