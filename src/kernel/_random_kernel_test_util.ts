/**
 * Random integer kernels for property tests of the passes and the renderers: lets, vars,
 * loops, branches, scoped blocks, loads and stores, with i32/u32/bool arithmetic only, so results are exact
 * on every implementation. Built through the IR's constructors (which fold literals), with
 * repeated subexpressions and loop invariants on purpose so CSE and hoisting have work.
 *
 * @module
 */
import { mulberry32 } from "../eval/_random.ts";
import { bin, call, type Expr, type Kernel, lit, name, neg, select, type Stmt, u32 } from "./ir.ts";

/** Elements of the input buffer `in0` (i32). */
export const INPUTS = 16;
/** Outputs each invocation writes to `out0` (i32), at `lid * OUTPUTS + k`. */
export const OUTPUTS = 6;

/** A small deterministic generator (mulberry32). */
export const rng: (seed: number) => () => number = mulberry32;

type IntType = "i32" | "u32" | "bool";

class Gen {
  private count = 0;
  readonly scope: { name: string; type: IntType }[] = [];
  /** Expressions made earlier, reused to create common subexpressions. */
  private readonly made: Expr[] = [];
  constructor(readonly r: () => number, readonly threads: number) {}
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.r() * xs.length)];
  }
  fresh(): string {
    return `t${this.count++}`;
  }
  literal(t: IntType): Expr {
    if (t === "bool") return lit(this.r() < 0.5 ? 1 : 0, "bool");
    const small = Math.floor(this.r() * 9) - (t === "i32" ? 4 : 0);
    const big = Math.floor(this.r() * 4294967296);
    return lit(this.r() < 0.8 ? small : big, t);
  }
  expr(t: IntType, depth: number): Expr {
    const reuse = this.made.filter((e) => e.type === t);
    if (reuse.length > 0 && this.r() < 0.15) return this.pick(reuse);
    const e = this.build(t, depth);
    this.made.push(e);
    return e;
  }
  private build(t: IntType, depth: number): Expr {
    const names = this.scope.filter((s) => s.type === t);
    if (depth <= 0 || this.r() < 0.2) {
      if (names.length > 0 && this.r() < 0.7) {
        const n = this.pick(names);
        return name(n.name, n.type);
      }
      if (t === "u32" && this.r() < 0.4) return name("lid", "u32");
      return this.literal(t);
    }
    const d = depth - 1;
    if (t === "bool") {
      const k = this.r();
      if (k < 0.5) {
        const ot: IntType = this.r() < 0.5 ? "i32" : "u32";
        return bin(
          this.pick(["<", "<=", ">", ">=", "==", "!="] as const),
          this.expr(ot, d),
          this.expr(ot, d),
        );
      }
      if (k < 0.8) {
        return bin(this.pick(["&&", "||"] as const), this.expr("bool", d), this.expr("bool", d));
      }
      return { kind: "unary", op: "!", x: this.expr("bool", d), type: "bool" };
    }
    const k = this.r();
    if (k < 0.55) {
      const ops = ["+", "-", "*", "/", "%", "&", "|"] as const;
      const op = this.pick(ops);
      const b = this.expr(t, d);
      // Division and remainder by a runtime zero, and i32 MIN / -1, are defined by WGSL but
      // differ on wgpu + llvmpipe (`lid / lid` at lid 0 gives 0xffffffff, and LLVM then folds
      // what follows as if it could not happen): divisors are made odd, numerators of i32
      // divisions kept above MIN, i32 divisors positive (wgpu gives `x % -1i` = x, not 0), and
      // i32 remainders of nonnegative numerators (wgpu computes `-1492605010i % 761316897i` as
      // an unsigned remainder, 518411595).
      // (cosgrad's kernels divide by positive shape extents only.)
      if (op === "/" || op === "%") {
        const a = this.expr(t, d);
        const num = t !== "i32" ? a : call("max", [a, lit(op === "%" ? 0 : -2147483647, "i32")]);
        const odd = bin("|", b, lit(1, t));
        return bin(op, num, t === "i32" ? call("max", [odd, lit(1, "i32")]) : odd);
      }
      const divisor = b;
      return bin(op, this.expr(t, d), divisor);
    }
    if (k < 0.65) return select(this.expr("bool", d), this.expr(t, d), this.expr(t, d));
    if (k < 0.75) {
      return call(this.pick(["min", "max"] as const), [this.expr(t, d), this.expr(t, d)]);
    }
    if (k < 0.85) {
      // A load at an index kept in range.
      const i = bin("%", call("u32", [this.expr("i32", d)]), u32(INPUTS));
      const v = { kind: "load", buf: "in0", index: i, type: "i32" } as const;
      return t === "i32" ? v : call("bitcast<u32>", [v]);
    }
    if (k < 0.92) {
      return t === "i32" ? neg(this.expr("i32", d)) : call("u32", [this.expr("i32", d)]);
    }
    // (Not abs of a u32: wgpu takes it as a signed abs, abs(0xffffffffu) = 1, where WGSL says
    // the identity; cosgrad takes abs of f32 only.)
    return t === "i32" ? call("bitcast<i32>", [this.expr("u32", d)]) : call("bitcast<u32>", [
      this.expr("i32", d),
    ]);
  }
  /** A block of statements; stores land in `slots`. */
  block(depth: number, slots: number[]): Stmt[] {
    const out: Stmt[] = [];
    const mark = this.scope.length, madeMark = this.made.length;
    const n = 2 + Math.floor(this.r() * 4);
    for (let i = 0; i < n; i++) {
      const k = this.r();
      const t: IntType = this.pick(["i32", "u32", "bool"] as const);
      if (k < 0.45 || depth <= 0) {
        const nm = this.fresh();
        out.push({ kind: "let", name: nm, value: this.expr(t, 3) });
        this.scope.push({ name: nm, type: t });
      } else if (k < 0.6 && slots.length > 0) {
        out.push(this.store(slots.shift()!));
      } else if (k < 0.8) {
        // A loop accumulating into a var, then storing it.
        const acc = this.fresh(), idx = this.fresh();
        const at: "i32" | "u32" = this.pick(["i32", "u32"] as const);
        out.push({ kind: "var", name: acc, type: at, init: this.expr(at, 2) });
        const madeMark = this.made.length;
        // The loop body may read the accumulator it changes (what hoisting must respect).
        this.scope.push({ name: acc, type: at }, { name: idx, type: "u32" });
        const body = this.block(depth - 1, []);
        // The accumulator takes a value of the body when there is one (so a wrongly hoisted
        // or merged value shows in the result).
        const lets = body.filter((x) => x.kind === "let" && x.value.type === at);
        const term = lets.length > 0 && this.r() < 0.7
          ? name((this.pick(lets) as { name: string }).name, at)
          : this.expr(at, 3);
        body.push({ kind: "assign", name: acc, value: bin("+", name(acc, at), term) });
        this.scope.splice(this.scope.findIndex((s) => s.name === idx), 1);
        this.scope.splice(this.scope.findIndex((s) => s.name === acc), 1);
        this.made.splice(madeMark);
        out.push({
          kind: "for",
          index: idx,
          from: u32(Math.floor(this.r() * 2)),
          to: u32(1 + Math.floor(this.r() * 4)),
          step: u32(1),
          body,
        });
        this.scope.push({ name: acc, type: at });
        if (slots.length > 0 && this.r() < 0.6) {
          out.push({
            kind: "store",
            buf: "out0",
            index: this.slot(slots.shift()!),
            value: this.asI32(name(acc, at)),
          });
        }
      } else {
        const inner = slots.length > 0 && this.r() < 0.5 ? [slots.shift()!] : [];
        // A branch, or a scoped block (as the GEMM family's epilogues are).
        out.push(
          this.r() < 0.75
            ? { kind: "if", cond: this.expr("bool", 2), body: this.block(depth - 1, inner) }
            : { kind: "block", body: this.block(depth - 1, inner) },
        );
      }
    }
    for (const s of slots.splice(0)) out.push(this.store(s));
    // A block's names are local to it, and so are expressions built from them.
    this.scope.splice(mark);
    this.made.splice(madeMark);
    return out;
  }
  store(slot: number): Stmt {
    const t: IntType = this.pick(["i32", "u32", "bool"] as const);
    return {
      kind: "store",
      buf: "out0",
      index: this.slot(slot),
      value: this.asI32(this.expr(t, 3)),
    };
  }
  slot(k: number): Expr {
    return bin("+", bin("*", name("lid", "u32"), u32(OUTPUTS)), u32(k));
  }
  asI32(v: Expr): Expr {
    return v.type === "i32"
      ? v
      : v.type === "u32"
      ? call("bitcast<i32>", [v])
      : select(v, lit(1, "i32"), lit(0, "i32"));
  }
}

/**
 * A random kernel of `threads` invocations in one workgroup reading `in0` (i32, {@link INPUTS}
 * elements) and writing `out0` (i32, `threads * OUTPUTS`), every output written once.
 *
 * @example
 * ```ts
 * import { randomKernel, rng } from "./_random_kernel_test_util.ts";
 * randomKernel(rng(1), 4).bindings.length; // 2
 * ```
 */
export function randomKernel(r: () => number, threads: number): Kernel {
  const g = new Gen(r, threads);
  const body = g.block(3, Array.from({ length: OUTPUTS }, (_, k) => k));
  return {
    name: "random",
    comment: "a random integer kernel",
    shared: [],
    threads,
    workgroups: [1, 1, 1],
    bindings: [
      { name: "in0", scalar: "i32", write: false, lanes: 1, refs: [] },
      { name: "out0", scalar: "i32", write: true, lanes: 1, refs: [] },
    ],
    body,
  };
}
