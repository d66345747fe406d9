/**
 * The expression emitter of the WGSL code generator: the value of a node at an index, as WGSL
 * `let` statements, with movement ops folded into index arithmetic and every value computed
 * once per index (per scope).
 *
 * @module
 */
import { type DType, stridesOf } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import { float64Error } from "./buffers.ts";

/**
 * The WGSL scalar type of a dtype (float64 has none: a TypeError).
 *
 * @example
 * ```ts
 * import { wgslType } from "./emitter.ts";
 * wgslType("int32"); // "i32"
 * ```
 */
export function wgslType(dtype: DType): "f32" | "i32" {
  if (dtype === "float64") throw float64Error();
  return dtype === "int32" ? "i32" : "f32";
}

/**
 * The WGSL literal `n` of type u32.
 *
 * @example
 * ```ts
 * import { u32 } from "./emitter.ts";
 * u32(3); // "3u"
 * ```
 */
export function u32(n: number): string {
  return `${n}u`;
}

/**
 * A WGSL literal of `value` in `dtype` (f32 values are rounded to float32 first). Infinities
 * and NaN have no constant form every WGSL compiler accepts: {@link Emitter.literal} writes them.
 *
 * @example
 * ```ts
 * import { literal } from "./emitter.ts";
 * literal(2, "float32"); // "2.0"
 * literal(-3, "int32"); // "-3i"
 * ```
 */
export function literal(value: number, dtype: DType): string {
  if (wgslType(dtype) === "i32") {
    const v = value | 0;
    if (v === -2147483648) return "i32(-2147483648)";
    return `${v}i`;
  }
  const f = Math.fround(value);
  if (!Number.isFinite(f)) {
    // A constant NaN or infinity is rejected by Chrome's WGSL compiler (Tint).
    throw new RangeError(
      `Cannot write ${value} as a WGSL f32 literal: expected a finite value (use Emitter.literal)`,
    );
  }
  if (Object.is(f, -0)) return "-0.0";
  const s = String(f);
  return /[.e]/.test(s) ? s : `${s}.0`;
}

/**
 * `a - b` for u32 expressions; folds literal operands in JavaScript, because WGSL rejects a
 * constant expression that wraps.
 *
 * @example
 * ```ts
 * import { subU } from "./emitter.ts";
 * subU("0u", "1u"); // "4294967295u"
 * subU("i", "2u"); // "(i - 2u)"
 * ```
 */
export function subU(a: string, b: string): string {
  if (b === "0u") return a;
  const la = /^([0-9]+)u$/.exec(a), lb = /^([0-9]+)u$/.exec(b);
  if (la && lb) return `${(Number(la[1]) - Number(lb[1])) >>> 0}u`;
  return `(${a} - ${b})`;
}

/**
 * `x` in parentheses unless it is a name or literal.
 *
 * @example
 * ```ts
 * import { paren } from "./emitter.ts";
 * paren("a + b"); // "(a + b)"
 * ```
 */
export function paren(x: string): string {
  return isAtom(x) ? x : `(${x})`;
}

/**
 * The WGSL literal `0` of a dtype.
 *
 * @example
 * ```ts
 * import { zero } from "./emitter.ts";
 * zero("float32"); // "0.0"
 * ```
 */
export function zero(dtype: DType): string {
  return wgslType(dtype) === "i32" ? "0i" : "0.0";
}

/**
 * A multi-index into a tensor of `shape`: its flat row-major offset, its per-axis indices, or
 * both (WGSL u32 expressions); the other form is derived on demand.
 */
export interface Index {
  /** Shape of the tensor indexed. */
  readonly shape: readonly number[];
  /** Flat row-major offset. */
  readonly flat?: string;
  /** One index per axis. */
  readonly dims?: readonly string[];
}

/**
 * An index given by its flat offset.
 *
 * @example
 * ```ts
 * import { flatIndex } from "./emitter.ts";
 * flatIndex([2, 3], "gid").flat; // "gid"
 * ```
 */
export function flatIndex(shape: readonly number[], flat: string): Index {
  return { shape, flat };
}

/**
 * An index given per axis (size-1 axes are always `0u`).
 *
 * @example
 * ```ts
 * import { dimsIndex } from "./emitter.ts";
 * dimsIndex([1, 3], ["a", "b"]).dims; // ["0u", "b"]
 * ```
 */
export function dimsIndex(shape: readonly number[], dims: readonly string[]): Index {
  return { shape, dims: dims.map((d, i) => shape[i] === 1 ? "0u" : d) };
}

function isAtom(expr: string): boolean {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(expr) || /^-?[0-9.]+(e[-+]?[0-9]+)?[uif]?$/.test(expr);
}

/** How a kernel reads a realized node: binding name and element access. */
export interface BufferRead {
  /** Binding name. */
  name: string;
  /** Whether the binding is declared `array<f32>` but holds int32 (kernel epilogues). */
  bitcastI32?: boolean;
  /**
   * Whether the tensor is split across bindings: read through the accessor `<name>_at(i)`
   * instead of indexing `<name>[i]`.
   */
  split?: boolean;
}

/** What the emitter needs from the kernel it writes. */
export interface KernelScope {
  /** How to read `node` if this kernel reads it from memory, or null to compute it inline. */
  read(node: Node): BufferRead | null;
  /** Emits (into `e`) a report of an out-of-range index; null when the kernel cannot report. */
  reportRange?(e: Emitter, node: Node, bad: string, value: string): void;
  /** Unique name with `prefix`. */
  fresh(prefix: string): string;
}

/** Lowers `node` at `idx` to a WGSL expression, emitting helper lets into `e` as needed. */
export type InlineRule = (e: Emitter, node: Node, idx: Index) => string;

/**
 * Emits WGSL statements computing node values at indices. A child emitter (loop or branch
 * body) sees its parent's values but keeps its own. A `let` lands in the outermost scope
 * where every name it uses is defined, so loop-invariant values are computed before the loop.
 */
export class Emitter {
  /** Statements, in order. */
  readonly lines: string[] = [];
  private readonly cache = new Map<string, string>();
  private readonly guards: string[] = [];
  /** Nesting depth (0 for the kernel body). */
  readonly depth: number;
  /** Depth at which each emitted or declared name is defined (shared by a kernel's scopes). */
  private readonly depths: Map<string, number>;
  /** Builds an emitter for `kernel`, nested in `parent` when given. */
  constructor(
    readonly kernel: KernelScope,
    readonly rules: (op: Node["op"]) => InlineRule,
    readonly parent: Emitter | null = null,
  ) {
    if (parent !== null) this.guards.push(...parent.guards);
    this.depth = parent === null ? 0 : parent.depth + 1;
    this.depths = parent === null ? new Map() : parent.depths;
  }
  /** A nested scope (a loop or `if` body). */
  child(): Emitter {
    return new Emitter(this.kernel, this.rules, this);
  }
  /** Declares `name` (a loop variable, an accumulator) as defined in this scope. */
  declare(name: string): void {
    this.depths.set(name, this.depth);
  }
  private lookup(key: string): string | undefined {
    const v = this.cache.get(key);
    if (v !== undefined) return v;
    return this.parent?.lookup(key);
  }
  /** The outermost enclosing scope where every name `expr` uses is defined. */
  private home(expr: string): Emitter {
    let depth = 0;
    for (const m of expr.matchAll(/[A-Za-z_][A-Za-z0-9_]*/g)) {
      depth = Math.max(depth, this.depths.get(m[0]) ?? 0);
    }
    return this.ancestor(depth);
  }
  /** The enclosing scope at `depth` (this one when it is that deep or shallower). */
  private ancestor(depth: number): Emitter {
    return this.depth > depth && this.parent !== null ? this.parent.ancestor(depth) : this;
  }
  /** Binds `expr` to a fresh `let` (unless it is a name or literal) and returns the name. */
  let(expr: string, prefix = "v", force = false): string {
    if (!force && isAtom(expr)) return expr;
    const name = this.kernel.fresh(prefix);
    const home = this.home(expr);
    home.lines.push(`let ${name} = ${expr};`);
    this.depths.set(name, home.depth);
    return name;
  }
  /**
   * The f32 with IEEE bits `bits`, as a runtime WGSL expression: a bitcast of a kernel-level
   * `let` holding the bits. `bitcast<f32>(0x7fc00000u)` would be a constant expression, and
   * Chrome's WGSL compiler (Tint) rejects a constant NaN or infinity ("value nan cannot be
   * represented as 'f32'"); an identifier bound by `let` is never a constant expression.
   */
  f32Bits(bits: number): string {
    if (!Number.isInteger(bits) || bits < 0 || bits > 0xffffffff) {
      throw new RangeError(`Expected a 32-bit unsigned bit pattern, got ${bits}`);
    }
    const hex = `0x${bits.toString(16).padStart(8, "0")}u`;
    return `bitcast<f32>(${this.memo(`bits:${hex}`, () => this.let(hex, "cg_bits", true))})`;
  }
  /** {@link literal}, with NaN and infinities as runtime expressions ({@link Emitter.f32Bits}). */
  literal(value: number, dtype: DType): string {
    const f = Math.fround(value);
    if (wgslType(dtype) === "i32" || Number.isFinite(f)) return literal(value, dtype);
    return this.f32Bits(Number.isNaN(f) ? 0x7fc00000 : f > 0 ? 0x7f800000 : 0xff800000);
  }
  /** Emits a raw statement. */
  stmt(line: string): void {
    this.lines.push(line);
  }
  /** The scope that defines `name` (this one for names it does not know). */
  private owner(name: string): Emitter {
    const depth = this.depths.get(name);
    if (depth === undefined || !isAtom(name)) return this;
    return this.ancestor(depth);
  }
  /** Caches `make()` under `key`, in the scope that defines the result. */
  memo(key: string, make: () => string): string {
    const have = this.lookup(key);
    if (have !== undefined) return have;
    const v = make();
    this.owner(v).cache.set(key, v);
    return v;
  }
  /** Makes `node` at `idx` evaluate to `expr` in this scope (a fused reduction's result). */
  seed(node: Node, idx: Index, expr: string): void {
    this.declare(expr);
    this.cache.set(this.valueKey(node, idx), expr);
  }
  /** The flat offset of `idx`. */
  flat(idx: Index): string {
    if (idx.flat !== undefined) return idx.flat;
    const dims = idx.dims!;
    const strides = stridesOf(idx.shape);
    const terms: string[] = [];
    dims.forEach((d, k) => {
      if (idx.shape[k] === 1 || d === "0u") return;
      terms.push(strides[k] === 1 ? d : `${paren(d)} * ${u32(strides[k])}`);
    });
    if (terms.length === 0) return "0u";
    if (terms.length === 1 && isAtom(terms[0])) return terms[0];
    return this.memo(`flat:${terms.join("+")}`, () => this.let(terms.join(" + "), "f"));
  }
  /** The per-axis indices of `idx`. */
  dims(idx: Index): string[] {
    if (idx.dims !== undefined) return [...idx.dims];
    const flat = idx.flat!;
    const strides = stridesOf(idx.shape);
    return idx.shape.map((d, k) => {
      if (d === 1) return "0u";
      let expr = strides[k] === 1 ? flat : `${paren(flat)} / ${u32(strides[k])}`;
      // The leading axis needs no modulo (the flat offset is in range), nor do axes after
      // leading axes of size 1.
      if (idx.shape.slice(0, k).some((x) => x !== 1)) expr = `${paren(expr)} % ${u32(d)}`;
      return this.memo(`dim:${expr}`, () => this.let(expr, "i"));
    });
  }
  private valueKey(node: Node, idx: Index): string {
    const at = idx.flat !== undefined ? `f${idx.flat}` : `d${idx.dims!.join(",")}`;
    return `${node.id}@${at}|${this.guards.join("&")}`;
  }
  /** The value of `node` at `idx`, as a WGSL name or literal. */
  value(node: Node, idx: Index): string {
    const key = this.valueKey(node, idx);
    const have = this.lookup(key);
    if (have !== undefined) return have;
    let expr: string;
    const buf = this.kernel.read(node);
    if (buf !== null) {
      const at = buf.split === true
        ? `${buf.name}_at(${this.flat(idx)})`
        : `${buf.name}[${this.flat(idx)}]`;
      expr = buf.bitcastI32 ? `bitcast<i32>(${at})` : at;
    } else {
      expr = this.rules(node.op)(this, node, idx);
    }
    // Literals get a name too: an operation on two literals would be a WGSL constant
    // expression, and one that overflows (1.0 / 0.0) fails to compile.
    const name = this.let(expr, "v", node.op === "scalar");
    this.owner(name).cache.set(key, name);
    return name;
  }
  /** Runs `fn` with `cond` known to hold for the values it computes (pad and concat). */
  guarded<T>(cond: string, fn: () => T): T {
    if (cond === "true") return fn();
    this.guards.push(cond);
    try {
      return fn();
    } finally {
      this.guards.pop();
    }
  }
  /** The conjunction of the active guards (`true` when none). */
  guard(): string {
    return this.guards.length === 0 ? "true" : this.guards.join(" && ");
  }
}
