/**
 * The expression emitter of the lowering: the value of a tensor-graph node at an index, as
 * kernel-IR `let` statements, with movement ops folded into index arithmetic and every value
 * computed once per index and scope. Placement is simple (each `let` goes in the scope that
 * asked for it); the {@link hoist} and {@link cse} passes move invariant values out of loops
 * and merge repeats afterwards.
 *
 * @module
 */
import { type DType, stridesOf } from "../ir/dtype.ts";
import type { Node } from "../ir/node.ts";
import { bin, call, type Expr, exprKey, isLit, lit, name, type Stmt, u32 } from "./ir.ts";

/**
 * The kernel scalar type of a dtype (float64 has none on the GPU: a TypeError).
 *
 * @example
 * ```ts
 * import { scalarOf } from "./emitter.ts";
 * scalarOf("int32"); // "i32"
 * ```
 */
export function scalarOf(dtype: DType): "f32" | "i32" {
  if (dtype === "float64") {
    throw new TypeError(
      'float64 runs on the cpu backend only (WGSL has no float64): cast to float32, or use setBackend("cpu")',
    );
  }
  return dtype === "int32" ? "i32" : "f32";
}

/**
 * The literal `value` in `dtype` (f32 values rounded to float32; must be finite: NaN and the
 * infinities go through {@link Emitter.literal}).
 *
 * @example
 * ```ts
 * import { literalOf } from "./emitter.ts";
 * literalOf(-3, "int32"); // { kind: "lit", type: "i32", value: -3 }
 * ```
 */
export function literalOf(value: number, dtype: DType): Expr {
  return lit(value, scalarOf(dtype));
}

/**
 * The zero of a dtype.
 *
 * @example
 * ```ts
 * import { zeroOf } from "./emitter.ts";
 * zeroOf("float32"); // { kind: "lit", type: "f32", value: 0 }
 * ```
 */
export function zeroOf(dtype: DType): Expr {
  return literalOf(0, dtype);
}

/**
 * A multi-index into a tensor of `shape`: its flat row-major offset, its per-axis indices, or
 * both (u32 expressions); the other form is derived on demand.
 */
export interface Index {
  /** Shape of the tensor indexed. */
  readonly shape: readonly number[];
  /** Flat row-major offset. */
  readonly flat?: Expr;
  /** One index per axis. */
  readonly dims?: readonly Expr[];
}

/**
 * An index given by its flat offset.
 *
 * @example
 * ```ts
 * import { flatIndex } from "./emitter.ts";
 * import { name } from "./ir.ts";
 * flatIndex([2, 3], name("gid", "u32")).shape; // [2, 3]
 * ```
 */
export function flatIndex(shape: readonly number[], flat: Expr): Index {
  return { shape, flat };
}

/**
 * An index given per axis (size-1 axes are always `0u`).
 *
 * @example
 * ```ts
 * import { dimsIndex } from "./emitter.ts";
 * import { name } from "./ir.ts";
 * dimsIndex([1, 3], [name("a", "u32"), name("b", "u32")]).dims![0]; // { kind: "lit", type: "u32", value: 0 }
 * ```
 */
export function dimsIndex(shape: readonly number[], dims: readonly Expr[]): Index {
  return { shape, dims: dims.map((d, i) => shape[i] === 1 ? u32(0) : d) };
}

function isAtom(e: Expr): boolean {
  return e.kind === "name" || e.kind === "lit";
}

/** How a kernel reads a realized node. */
export interface BufferRead {
  /** Binding name. */
  name: string;
  /** Whether the binding is declared `array<f32>` but holds int32 (GEMM epilogues). */
  bitcastI32?: boolean;
}

/** What the emitter needs from the kernel it writes. */
export interface KernelScope {
  /** How to read `node` if this kernel reads it from memory, or null to compute it inline. */
  read(node: Node): BufferRead | null;
  /** The error code of an out-of-range index of `node`, or null when the kernel cannot report. */
  reportCode?(node: Node): number | null;
  /** Unique name with `prefix`. */
  fresh(prefix: string): string;
}

/** Lowers `node` at `idx` to an expression, emitting helper `let`s into `e` as needed. */
export type InlineRule = (e: Emitter, node: Node, idx: Index) => Expr;

/**
 * Emits kernel-IR statements computing node values at indices. A child emitter (loop or
 * branch body) sees its parent's values but keeps its own.
 */
export class Emitter {
  /** Statements, in order. */
  readonly stmts: Stmt[] = [];
  private readonly cache = new Map<string, Expr>();
  private readonly guards: Expr[] = [];
  /** Builds an emitter for `kernel`, nested in `parent` when given. */
  constructor(
    readonly kernel: KernelScope,
    readonly rules: (op: Node["op"]) => InlineRule,
    readonly parent: Emitter | null = null,
  ) {
    if (parent !== null) this.guards.push(...parent.guards);
  }
  /** A nested scope (a loop or `if` body). */
  child(): Emitter {
    return new Emitter(this.kernel, this.rules, this);
  }
  private lookup(key: string): Expr | undefined {
    return this.cache.get(key) ?? this.parent?.lookup(key);
  }
  /** Binds `expr` to a fresh `let` (unless it is a name or literal) and returns the name. */
  let(expr: Expr, prefix = "v", force = false): Expr {
    if (!force && isAtom(expr)) return expr;
    const n = this.kernel.fresh(prefix);
    this.stmts.push({ kind: "let", name: n, value: expr });
    return name(n, expr.type);
  }
  /**
   * The f32 with IEEE bits `bits`, as a runtime expression: a bitcast of a `let` holding the
   * bits. A constant NaN or infinity is rejected by Chrome's WGSL compiler (Tint); an
   * identifier bound by `let` is never a constant expression.
   */
  f32Bits(bits: number): Expr {
    if (!Number.isInteger(bits) || bits < 0 || bits > 0xffffffff) {
      throw new RangeError(`Expected a 32-bit unsigned bit pattern, got ${bits}`);
    }
    const held = this.memo(
      `bits:${bits}`,
      () => this.let({ kind: "lit", type: "u32", value: bits, hex: true }, "cg_bits", true),
    );
    return call("bitcast<f32>", [held]);
  }
  /** {@link literalOf}, with NaN and infinities as runtime expressions ({@link Emitter.f32Bits}). */
  literal(value: number, dtype: DType): Expr {
    const f = Math.fround(value);
    if (scalarOf(dtype) === "i32" || Number.isFinite(f)) return literalOf(value, dtype);
    return this.f32Bits(Number.isNaN(f) ? 0x7fc00000 : f > 0 ? 0x7f800000 : 0xff800000);
  }
  /** Emits a statement. */
  push(s: Stmt): void {
    this.stmts.push(s);
  }
  /** Caches `make()` under `key` in this scope. */
  memo(key: string, make: () => Expr): Expr {
    const have = this.lookup(key);
    if (have !== undefined) return have;
    const v = make();
    this.cache.set(key, v);
    return v;
  }
  /** Makes `node` at `idx` evaluate to `expr` in this scope (a fused reduction's result). */
  seed(node: Node, idx: Index, expr: Expr): void {
    this.cache.set(this.valueKey(node, idx), expr);
  }
  /** The flat offset of `idx`. */
  flat(idx: Index): Expr {
    if (idx.flat !== undefined) return idx.flat;
    const dims = idx.dims!;
    const strides = stridesOf(idx.shape);
    let sum: Expr | null = null;
    dims.forEach((d, k) => {
      if (idx.shape[k] === 1 || isLit(d, 0)) return;
      const term = bin("*", d, u32(strides[k]));
      sum = sum === null ? term : bin("+", sum, term);
    });
    if (sum === null) return u32(0);
    const total: Expr = sum;
    if (isAtom(total)) return total;
    return this.memo(`flat:${exprKey(total)}`, () => this.let(total, "f"));
  }
  /** The per-axis indices of `idx`. */
  dims(idx: Index): Expr[] {
    if (idx.dims !== undefined) return [...idx.dims];
    const flat = idx.flat!;
    const strides = stridesOf(idx.shape);
    return idx.shape.map((d, k) => {
      if (d === 1) return u32(0);
      let e = bin("/", flat, u32(strides[k]));
      // The leading axis needs no modulo (the flat offset is in range), nor do axes after
      // leading axes of size 1.
      if (idx.shape.slice(0, k).some((x) => x !== 1)) e = bin("%", e, u32(d));
      const expr = e;
      return this.memo(`dim:${exprKey(expr)}`, () => this.let(expr, "i"));
    });
  }
  private valueKey(node: Node, idx: Index): string {
    const at = idx.flat !== undefined
      ? `f${exprKey(idx.flat)}`
      : `d${idx.dims!.map(exprKey).join(",")}`;
    return `${node.id}@${at}|${this.guards.map(exprKey).join("&")}`;
  }
  /** The value of `node` at `idx`, as a name or literal. */
  value(node: Node, idx: Index): Expr {
    const key = this.valueKey(node, idx);
    const have = this.lookup(key);
    if (have !== undefined) return have;
    let expr: Expr;
    const buf = this.kernel.read(node);
    if (buf !== null) {
      const type = buf.bitcastI32 === true ? "f32" : scalarOf(node.dtype);
      const at: Expr = { kind: "load", buf: buf.name, index: this.flat(idx), type };
      expr = buf.bitcastI32 === true ? call("bitcast<i32>", [at]) : at;
    } else {
      expr = this.rules(node.op)(this, node, idx);
    }
    // Literals get a name too: an operation on two literals would be a WGSL constant
    // expression, and one that overflows (1.0 / 0.0) fails to compile.
    const v = this.let(expr, "v", node.op === "scalar");
    this.cache.set(key, v);
    return v;
  }
  /** Runs `fn` with `cond` known to hold for the values it computes (pad and concat). */
  guarded<T>(cond: Expr, fn: () => T): T {
    if (isLit(cond, 1)) return fn();
    this.guards.push(cond);
    try {
      return fn();
    } finally {
      this.guards.pop();
    }
  }
  /** The conjunction of the active guards (the literal `true` when none). */
  guard(): Expr {
    return this.guards.reduce<Expr>(
      (a, g) => isLit(a, 1) ? g : bin("&&", a, g),
      lit(1, "bool"),
    );
  }
  /** Emits a report of an out-of-range index `value` where `bad` holds (and the guards). */
  reportRange(node: Node, bad: Expr, value: Expr): void {
    const code = this.kernel.reportCode?.(node) ?? null;
    if (code === null) return;
    const g = this.guard();
    this.push({ kind: "report", cond: isLit(g, 1) ? bad : bin("&&", bad, g), code, value });
  }
}
