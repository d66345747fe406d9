/**
 * A reference interpreter of the kernel IR, for tests: runs a {@link Kernel} on the host with
 * WGSL's semantics (f32 rounding after every operation, wrapping u32/i32 arithmetic, WGSL's
 * integer division by zero), one generator per invocation so that `workgroupBarrier()` is a
 * `yield`. Passes are checked by running a kernel before and after them; the renderer by
 * comparing with the device.
 *
 * @module
 */
import type { Builtin, Expr, Kernel, Scalar, Stmt, Type } from "./ir.ts";

/** A value: a number (bools as 0/1) or four lanes. */
type Value = number | readonly number[];

/** Buffers by binding name (split bindings by their base name, as one array). */
export type Buffers = Record<string, Float32Array | Int32Array | Uint32Array>;

const f32 = Math.fround;

function wrap(x: number, t: Scalar): number {
  return t === "u32" ? x >>> 0 : t === "i32" ? x | 0 : t === "f32" ? f32(x) : x ? 1 : 0;
}

const view = new DataView(new ArrayBuffer(4));
function bitcast(x: number, from: Scalar, to: Scalar): number {
  if (from === "f32") view.setFloat32(0, x, true);
  else view.setUint32(0, x >>> 0, true);
  return to === "f32"
    ? view.getFloat32(0, true)
    : to === "i32"
    ? view.getInt32(0, true)
    : view.getUint32(0, true);
}

function scalarOf(t: Type): Scalar {
  return t === "vec4<f32>" ? "f32" : t === "vec4<i32>" ? "i32" : t;
}

function binary(op: string, a: number, b: number, t: Scalar): number {
  switch (op) {
    case "+":
      return wrap(a + b, t);
    case "-":
      return wrap(a - b, t);
    case "*":
      return t === "f32" ? f32(a * b) : wrap(Math.imul(a, b), t);
    case "/":
      if (t === "f32") return f32(a / b);
      if (b === 0) return a; // WGSL: e1 / 0 is e1 for integers
      return wrap(Math.trunc(a / b), t);
    case "%":
      if (t === "f32") return f32(a % b);
      return b === 0 ? 0 : wrap(a % b, t);
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
      return wrap(a & b, t);
    case "|":
      return wrap(a | b, t);
  }
  throw new TypeError(`interpreter: unknown operator ${op}`);
}

function convert(x: number, to: Scalar): number {
  if (to === "f32") return f32(x);
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 0 : x > 0 ? wrapMax(to) : wrapMin(to);
  const t = Math.trunc(x);
  if (to === "i32") return Math.min(2147483647, Math.max(-2147483648, t));
  return Math.min(4294967295, Math.max(0, t));
}
const wrapMax = (t: Scalar) => t === "i32" ? 2147483647 : 4294967295;
const wrapMin = (t: Scalar) => t === "i32" ? -2147483648 : 0;

function builtin(fn: Builtin, args: number[], argTypes: Scalar[], t: Scalar): number {
  const [a, b, c] = args;
  switch (fn) {
    case "exp":
      return f32(Math.exp(a));
    case "exp2":
      return f32(2 ** a);
    case "fma":
      return f32(a * b + c);
    case "epilogue":
      throw new TypeError("interpreter: epilogue is the kernel's function");
    case "dot":
      throw new TypeError("interpreter: dot is not lane-wise");
    case "log":
      return f32(Math.log(a));
    case "log2":
      return f32(Math.log2(a));
    case "sqrt":
      return f32(Math.sqrt(a));
    case "sin":
      return f32(Math.sin(a));
    case "cos":
      return f32(Math.cos(a));
    case "acos":
      return f32(Math.acos(a));
    case "floor":
      return f32(Math.floor(a));
    case "trunc":
      return f32(Math.trunc(a));
    case "abs":
      return t === "f32" ? Math.abs(a) : wrap(Math.abs(a), t);
    case "max":
      return Math.max(a, b);
    case "min":
      return Math.min(a, b);
    case "clamp":
      return Math.min(Math.max(a, b), c);
    case "select":
      return c ? b : a;
    case "f32":
    case "i32":
    case "u32":
      // Between integer types a conversion keeps the bits; from f32 it saturates.
      return argTypes[0] === "f32" ? convert(a, fn) : wrap(a, fn);
    case "bitcast<f32>":
      return bitcast(a, argTypes[0], "f32");
    case "bitcast<i32>":
      return bitcast(a, argTypes[0], "i32");
    case "bitcast<u32>":
      return bitcast(a, argTypes[0], "u32");
  }
}

/** Applies a scalar function lane by lane when any operand is a vector. */
function lanes(args: Value[], f: (xs: number[]) => number): Value {
  if (!args.some((a) => typeof a !== "number")) return f(args as number[]);
  return [0, 1, 2, 3].map((j) => f(args.map((a) => typeof a === "number" ? a : a[j])));
}

class Invocation {
  readonly env = new Map<string, Value>();
  constructor(
    private readonly kernel: Kernel,
    private readonly buffers: Buffers,
    private readonly shared: Map<string, Float32Array | Int32Array>,
    private readonly robust: boolean,
    lid: number,
    wid: readonly [number, number, number],
  ) {
    this.env.set("lid", lid);
    this.wid = wid;
  }
  readonly wid: readonly [number, number, number];

  array(buf: string): Float32Array | Int32Array | Uint32Array {
    const a = this.shared.get(buf) ?? this.buffers[buf];
    if (a === undefined) throw new RangeError(`interpreter: no buffer ${buf}`);
    return a;
  }
  lanesOf(buf: string): number {
    return this.kernel.bindings.find((b) => b.name === buf)?.lanes ??
      this.kernel.shared.find((s) => s.name === buf)?.lanes ?? 1;
  }
  expr(e: Expr): Value {
    switch (e.kind) {
      case "lit":
        return e.value;
      case "name": {
        const v = this.env.get(e.name);
        if (v === undefined) throw new ReferenceError(`interpreter: ${e.name} is not defined`);
        return v;
      }
      case "wid":
        return this.wid[e.axis === "x" ? 0 : e.axis === "y" ? 1 : 2];
      case "unary": {
        const x = this.expr(e.x);
        const t = scalarOf(e.type);
        return lanes([x], ([v]) => e.op === "!" ? (v ? 0 : 1) : wrap(-v, t));
      }
      case "binary": {
        const t = scalarOf(e.a.type);
        return lanes([this.expr(e.a), this.expr(e.b)], ([a, b]) => binary(e.op, a, b, t));
      }
      case "call": {
        if (e.fn === "epilogue") return this.epilogue(e.args);
        if (e.fn === "dot") {
          const [a, b] = e.args.map((x) => this.expr(x) as readonly number[]);
          return f32(a.reduce((s, v, j) => f32(s + f32(v * b[j])), 0));
        }
        const argTypes = e.args.map((a) => scalarOf(a.type));
        return lanes(
          e.args.map((a) => this.expr(a)),
          (xs) => builtin(e.fn, xs, argTypes, scalarOf(e.type)),
        );
      }
      case "load": {
        const i = this.expr(e.index) as number;
        const a = this.array(e.buf);
        const w = this.lanesOf(e.buf);
        if (i < 0 || (i + 1) * w > a.length) {
          if (this.robust) return w === 1 ? 0 : [0, 0, 0, 0];
          throw new RangeError(`interpreter: ${e.buf}[${i}] is out of range (${a.length / w})`);
        }
        return w === 1 ? a[i] : Array.from(a.subarray(i * 4, i * 4 + 4));
      }
      case "lane":
        return (this.expr(e.x) as readonly number[])[e.lane];
      case "vec": {
        const parts = e.parts.map((p) => this.expr(p) as number);
        return parts.length === 1 ? [parts[0], parts[0], parts[0], parts[0]] : parts;
      }
    }
  }
  /** Calls the kernel's epilogue function on (value, idx). */
  epilogue(args: readonly Expr[]): number {
    const body = this.kernel.epilogue;
    if (body === undefined) throw new ReferenceError("interpreter: the kernel has no epilogue");
    const [value, idx] = args.map((a) => this.expr(a) as number);
    const saved = ["acc", "idx"].map((n) => [n, this.env.get(n)] as const);
    this.env.set("acc", value);
    this.env.set("idx", idx);
    const run = this.run(body);
    while (!run.next().done) { /* no barriers in an epilogue */ }
    const acc = this.env.get("acc") as number;
    for (const [n, v] of saved) v === undefined ? this.env.delete(n) : this.env.set(n, v);
    return acc;
  }
  /**
   * Runs `body` as a scope (the names it defines are restored after it, as WGSL's inner
   * declarations shadow outer ones); returns true when the invocation returned. Yields at
   * barriers.
   */
  *run(body: readonly Stmt[]): Generator<void, boolean> {
    const outer = new Map<string, Value | undefined>();
    const define = (n: string, v: Value) => {
      if (!outer.has(n)) outer.set(n, this.env.get(n));
      this.env.set(n, v);
    };
    try {
      return yield* this.scope(body, define);
    } finally {
      for (const [n, v] of outer) {
        if (v === undefined) this.env.delete(n);
        else this.env.set(n, v);
      }
    }
  }
  private *scope(
    body: readonly Stmt[],
    define: (n: string, v: Value) => void,
  ): Generator<void, boolean> {
    for (const s of body) {
      switch (s.kind) {
        case "let":
        case "var":
          define(s.name, this.expr(s.kind === "let" ? s.value : s.init));
          break;
        case "assign":
          this.env.set(s.name, this.expr(s.value));
          break;
        case "store": {
          const i = this.expr(s.index) as number;
          const a = this.array(s.buf);
          const v = this.expr(s.value);
          if (s.lane !== undefined) {
            const j = this.expr(s.lane) as number;
            if (i < 0 || j < 0 || j > 3 || i * 4 + j >= a.length) {
              throw new RangeError(`interpreter: store ${s.buf}[${i}][${j}] is out of range`);
            }
            a[i * 4 + j] = v as number;
          } else if (typeof v === "number") {
            if (i < 0 || i >= a.length) {
              throw new RangeError(`interpreter: store ${s.buf}[${i}] is out of range`);
            }
            a[i] = v;
          } else a.set(v, i * 4);
          break;
        }
        case "for": {
          const to = () => this.expr(s.to) as number;
          const step = this.expr(s.step) as number;
          for (let i = this.expr(s.from) as number; i < to(); i = wrap(i + step, "u32")) {
            define(s.index, i);
            if (yield* this.run(s.body)) return true;
          }
          break;
        }
        case "if":
          if (this.expr(s.cond) && (yield* this.run(s.body))) return true;
          break;
        case "block":
          if (yield* this.run(s.body)) return true;
          break;
        case "return":
          return true;
        case "exit": {
          if ((this.expr(s.index) as number) >= s.limit) return true;
          break;
        }
        case "barrier":
          yield;
          break;
        case "report":
          if (this.expr(s.cond)) {
            throw new RangeError(`interpreter: kernel reported index error ${s.code}`);
          }
          break;
      }
    }
    return false;
  }
}

/**
 * Runs `kernel` over its whole grid on `buffers` (modified in place). Invocations of a
 * workgroup run in lockstep between barriers; workgroups run one after another. An
 * out-of-range load throws, or with `robust` gives zero (one of the values WGSL's robust
 * buffer access allows: kernels that select away such loads rely on it).
 *
 * @example
 * ```ts
 * import { bin, load, name, u32 } from "./ir.ts";
 * import { interpret } from "./_interpret_test_util.ts";
 * const out = new Float32Array(4);
 * interpret({
 *   name: "k", comment: "", shared: [], threads: 4, workgroups: [1, 1, 1],
 *   bindings: [{ name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] }],
 *   body: [{ kind: "store", buf: "out0", index: name("lid", "u32"),
 *     value: { kind: "call", fn: "f32", args: [bin("*", name("lid", "u32"), u32(2))], type: "f32" } }],
 * }, { out0: out });
 * out; // Float32Array [0, 2, 4, 6]
 * ```
 */
export function interpret(
  kernel: Kernel,
  buffers: Buffers,
  options: { robust?: boolean } = {},
): void {
  const [gx, gy, gz] = kernel.workgroups;
  for (let z = 0; z < gz; z++) {
    for (let y = 0; y < gy; y++) {
      for (let x = 0; x < gx; x++) {
        const shared = new Map(
          kernel.shared.map((s) => [
            s.name,
            s.scalar === "f32"
              ? new Float32Array(s.size * (s.lanes ?? 1))
              : new Int32Array(s.size * (s.lanes ?? 1)),
          ]),
        );
        const threads = Array.from(
          { length: kernel.threads },
          (_, lid) =>
            new Invocation(kernel, buffers, shared, options.robust ?? false, lid, [x, y, z]).run(
              kernel.body,
            ),
        );
        let live = threads;
        while (live.length > 0) live = live.filter((t) => !t.next().done);
      }
    }
  }
}
