/**
 * A small WebAssembly assembler: modules importing one shared memory, functions of i32
 * parameters, and the scalar and SIMD128 instructions the kernels use, written as bytes by
 * TypeScript (no toolchain). Instructions are methods of {@link Code}; {@link wasmModule}
 * puts functions into a module.
 *
 * @module
 */

/** Value types. */
export const I32 = 0x7f, F32 = 0x7d, V128 = 0x7b;
type ValType = typeof I32 | typeof F32 | typeof V128;

/** Unsigned LEB128. */
export function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 of an i32. */
export function sleb(n: number): number[] {
  n |= 0;
  const out: number[] = [];
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const str = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];

/** A local variable of a function under construction. */
export type Local = number & { readonly __local: unique symbol };

/** The body of one function: locals and instructions. */
export class Code {
  readonly bytes: number[] = [];
  private readonly locals: ValType[] = [];
  constructor(readonly params: number) {}
  /** Parameter `i` (all parameters are i32). */
  param(i: number): Local {
    if (i >= this.params) throw new RangeError(`parameter ${i} of ${this.params}`);
    return i as Local;
  }
  /** A new local of type `t`. */
  local(t: ValType): Local {
    this.locals.push(t);
    return (this.params + this.locals.length - 1) as Local;
  }
  private op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  private simd(code: number, ...rest: number[]): this {
    return this.op(0xfd, ...uleb(code), ...rest);
  }
  get(l: Local): this {
    return this.op(0x20, ...uleb(l));
  }
  set(l: Local): this {
    return this.op(0x21, ...uleb(l));
  }
  tee(l: Local): this {
    return this.op(0x22, ...uleb(l));
  }
  i32(n: number): this {
    return this.op(0x41, ...sleb(n));
  }
  f32(x: number): this {
    return this.op(0x43, ...new Uint8Array(new Float32Array([x]).buffer));
  }
  add(): this {
    return this.op(0x6a);
  }
  sub(): this {
    return this.op(0x6b);
  }
  mul(): this {
    return this.op(0x6c);
  }
  divU(): this {
    return this.op(0x6e);
  }
  shl(): this {
    return this.op(0x74);
  }
  eqz(): this {
    return this.op(0x45);
  }
  ltU(): this {
    return this.op(0x49);
  }
  leU(): this {
    return this.op(0x4d);
  }
  geU(): this {
    return this.op(0x4f);
  }
  ne(): this {
    return this.op(0x47);
  }
  and(): this {
    return this.op(0x71);
  }
  or(): this {
    return this.op(0x72);
  }
  select(): this {
    return this.op(0x1b);
  }
  drop(): this {
    return this.op(0x1a);
  }
  unreachable(): this {
    return this.op(0x00);
  }
  f32Load(offset = 0): this {
    return this.op(0x2a, 2, ...uleb(offset));
  }
  f32Store(offset = 0): this {
    return this.op(0x38, 2, ...uleb(offset));
  }
  f32Add(): this {
    return this.op(0x92);
  }
  f32Mul(): this {
    return this.op(0x94);
  }
  v128Load(offset = 0): this {
    return this.simd(0x00, 0, ...uleb(offset));
  }
  v128Store(offset = 0): this {
    return this.simd(0x0b, 0, ...uleb(offset));
  }
  v128Load32Splat(offset = 0): this {
    return this.simd(0x09, 2, ...uleb(offset));
  }
  v128Zero(): this {
    return this.simd(0x0c, ...new Array(16).fill(0));
  }
  f32x4Splat(): this {
    return this.simd(0x13);
  }
  f32x4ExtractLane(lane: number): this {
    return this.simd(0x1f, lane);
  }
  f32x4ReplaceLane(lane: number): this {
    return this.simd(0x20, lane);
  }
  f32x4Add(): this {
    return this.simd(0xe4);
  }
  f32x4Mul(): this {
    return this.simd(0xe6);
  }
  /** `a * b + c` fused (relaxed SIMD; the engine may round once or twice). */
  f32x4RelaxedMadd(): this {
    return this.simd(0x105);
  }
  block(body: () => void): this {
    this.op(0x02, 0x40);
    body();
    return this.op(0x0b);
  }
  loop(body: () => void): this {
    this.op(0x03, 0x40);
    body();
    return this.op(0x0b);
  }
  /** `if` (the condition on the stack) with an optional `else`. */
  if(then: () => void, otherwise?: () => void): this {
    this.op(0x04, 0x40);
    then();
    if (otherwise !== undefined) {
      this.op(0x05);
      otherwise();
    }
    return this.op(0x0b);
  }
  br(depth: number): this {
    return this.op(0x0c, ...uleb(depth));
  }
  brIf(depth: number): this {
    return this.op(0x0d, ...uleb(depth));
  }
  /**
   * `for (i = from; i < to; i += step) body()` with `i`, `to` locals (unsigned compare);
   * `from` and `step` are pushed by callbacks. Inside `body`, depth 0 is the loop, 1 the block.
   */
  for(i: Local, from: () => void, to: Local, step: number, body: () => void): this {
    from();
    this.set(i);
    return this.block(() =>
      this.loop(() => {
        this.get(i).get(to).geU().brIf(1);
        body();
        this.get(i).i32(step).add().set(i).br(0);
      })
    );
  }
  /** The function body's bytes (locals declared, `end` appended). */
  finish(): number[] {
    const groups: number[][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const body = [...vec(groups.map(([n, t]) => [...uleb(n), t])), ...this.bytes, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

/** A function of a module: its export name, i32 parameter count and code. */
export interface WasmFunction {
  name: string;
  code: Code;
}

/**
 * A module importing `env.memory` (shared when `shared`, up to `maxPages` 64 KiB pages) and
 * exporting `fns`, each `(i32, ...) -> ()`.
 *
 * @example
 * ```ts
 * import { Code, wasmModule } from "./_asm.ts";
 * const c = new Code(2); // (begin, end) -> (): does nothing
 * WebAssembly.validate(wasmModule([{ name: "nop", code: c }], { shared: false, maxPages: 1 })); // true
 * ```
 */
export function wasmModule(
  fns: readonly WasmFunction[],
  memory: { shared: boolean; maxPages: number },
): Uint8Array<ArrayBuffer> {
  const arities = [...new Set(fns.map((f) => f.code.params))];
  const types = vec(arities.map((n) => [0x60, ...vec(Array(n).fill([I32])), 0]));
  const limits = memory.shared
    ? [0x03, 1, ...uleb(memory.maxPages)]
    : [0x01, 1, ...uleb(memory.maxPages)];
  const imports = vec([[...str("env"), ...str("memory"), 0x02, ...limits]]);
  const funcs = vec(fns.map((f) => uleb(arities.indexOf(f.code.params))));
  const exports = vec(fns.map((f, i) => [...str(f.name), 0x00, ...uleb(i)]));
  const code = vec(fns.map((f) => f.code.finish()));
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, code),
  ]);
}
