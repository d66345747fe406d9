/**
 * A small WebAssembly binary writer: LEB128 numbers, function bodies as byte code, and a
 * module of function types, imports (functions and one memory, shared when threads are
 * available), functions and exports. Enough for the kernels the wasm renderer and the GEMM
 * family write; no toolchain, nothing downloaded. The result is checked by the engine
 * (`WebAssembly.validate` / `new WebAssembly.Module`), never parsed back here.
 *
 * @module
 */

/** A value type. */
export type ValType = "i32" | "i64" | "f32" | "f64" | "v128";

const VALTYPE: Record<ValType, number> = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b };

/**
 * The unsigned LEB128 bytes of `n` (a non-negative integer below 2^53).
 *
 * @example
 * ```ts
 * import { uleb } from "./wasm_writer.ts";
 * uleb(624485); // [0xe5, 0x8e, 0x26]
 * ```
 */
export function uleb(n: number): number[] {
  if (!Number.isInteger(n) || n < 0) throw new RangeError(`Expected an unsigned integer, got ${n}`);
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/**
 * The signed LEB128 bytes of the 32-bit integer `n` (u32 values are taken modulo 2^32).
 *
 * @example
 * ```ts
 * import { sleb } from "./wasm_writer.ts";
 * sleb(-123456); // [0xc0, 0xbb, 0x78]
 * ```
 */
export function sleb(n: number): number[] {
  let v = n | 0;
  const out: number[] = [];
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

const utf8 = new TextEncoder();

function name(s: string): number[] {
  const b = utf8.encode(s);
  return [...uleb(b.length), ...b];
}

function vec(items: number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

/** Opcodes used by the renderers (one byte, or a prefix byte and a LEB128 index). */
export const OP = {
  unreachable: [0x00],
  block: [0x02],
  loop: [0x03],
  if: [0x04],
  else: [0x05],
  end: [0x0b],
  br: [0x0c],
  br_if: [0x0d],
  return: [0x0f],
  call: [0x10],
  drop: [0x1a],
  select: [0x1b],
  local_get: [0x20],
  local_set: [0x21],
  local_tee: [0x22],
  i32_load: [0x28],
  f32_load: [0x2a],
  i32_store: [0x36],
  f32_store: [0x38],
  i32_const: [0x41],
  f32_const: [0x43],
  i32_eqz: [0x45],
  i32_eq: [0x46],
  i32_ne: [0x47],
  i32_lt_s: [0x48],
  i32_lt_u: [0x49],
  i32_gt_s: [0x4a],
  i32_gt_u: [0x4b],
  i32_le_s: [0x4c],
  i32_le_u: [0x4d],
  i32_ge_s: [0x4e],
  i32_ge_u: [0x4f],
  f32_eq: [0x5b],
  f32_ne: [0x5c],
  f32_lt: [0x5d],
  f32_gt: [0x5e],
  f32_le: [0x5f],
  f32_ge: [0x60],
  i32_add: [0x6a],
  i32_sub: [0x6b],
  i32_mul: [0x6c],
  i32_div_s: [0x6d],
  i32_div_u: [0x6e],
  i32_rem_s: [0x6f],
  i32_rem_u: [0x70],
  i32_and: [0x71],
  i32_or: [0x72],
  i32_shl: [0x74],
  f32_abs: [0x8b],
  f32_neg: [0x8c],
  f32_floor: [0x8e],
  f32_trunc: [0x8f],
  f32_sqrt: [0x91],
  f32_add: [0x92],
  f32_sub: [0x93],
  f32_mul: [0x94],
  f32_div: [0x95],
  f32_min: [0x96],
  f32_max: [0x97],
  f32_convert_i32_s: [0xb2],
  f32_convert_i32_u: [0xb3],
  f32_demote_f64: [0xb6],
  f64_promote_f32: [0xbb],
  i32_reinterpret_f32: [0xbc],
  f32_reinterpret_i32: [0xbe],
  i32_trunc_sat_f32_s: [0xfc, 0x00],
  i32_trunc_sat_f32_u: [0xfc, 0x01],
  v128_load: [0xfd, 0x00],
  v128_load32_splat: [0xfd, 0x09],
  v128_store: [0xfd, 0x0b],
  f32x4_splat: [0xfd, 0x13],
  i32x4_extract_lane: [0xfd, 0x1b],
  i32x4_replace_lane: [0xfd, 0x1c],
  f32x4_extract_lane: [0xfd, 0x1f],
  f32x4_replace_lane: [0xfd, 0x20],
  v128_const: [0xfd, 0x0c],
  i8x16_shuffle: [0xfd, 0x0d],
  i32x4_eq: [0xfd, 0x37],
  i32x4_ne: [0xfd, 0x38],
  i32x4_lt_s: [0xfd, 0x39],
  i32x4_lt_u: [0xfd, 0x3a],
  i32x4_gt_s: [0xfd, 0x3b],
  i32x4_gt_u: [0xfd, 0x3c],
  i32x4_le_s: [0xfd, 0x3d],
  i32x4_le_u: [0xfd, 0x3e],
  i32x4_ge_s: [0xfd, 0x3f],
  i32x4_ge_u: [0xfd, 0x40],
  f32x4_eq: [0xfd, 0x41],
  f32x4_ne: [0xfd, 0x42],
  f32x4_lt: [0xfd, 0x43],
  f32x4_gt: [0xfd, 0x44],
  f32x4_le: [0xfd, 0x45],
  f32x4_ge: [0xfd, 0x46],
  v128_not: [0xfd, 0x4d],
  v128_and: [0xfd, 0x4e],
  v128_or: [0xfd, 0x50],
  v128_bitselect: [0xfd, 0x52],
  f32x4_floor: [0xfd, 0x68],
  f32x4_trunc: [0xfd, 0x69],
  f32x4_nearest: [0xfd, 0x6a],
  i32x4_shl: [0xfd, 0xab, 0x01],
  i32x4_shr_s: [0xfd, 0xac, 0x01],
  i32x4_shr_u: [0xfd, 0xad, 0x01],
  i32x4_abs: [0xfd, 0xa0, 0x01],
  i32x4_neg: [0xfd, 0xa1, 0x01],
  i32x4_add: [0xfd, 0xae, 0x01],
  i32x4_sub: [0xfd, 0xb1, 0x01],
  i32x4_mul: [0xfd, 0xb5, 0x01],
  i32x4_min_s: [0xfd, 0xb6, 0x01],
  i32x4_min_u: [0xfd, 0xb7, 0x01],
  i32x4_max_s: [0xfd, 0xb8, 0x01],
  i32x4_max_u: [0xfd, 0xb9, 0x01],
  f32x4_abs: [0xfd, 0xe0, 0x01],
  f32x4_neg: [0xfd, 0xe1, 0x01],
  f32x4_sqrt: [0xfd, 0xe3, 0x01],
  f32x4_add: [0xfd, 0xe4, 0x01],
  f32x4_sub: [0xfd, 0xe5, 0x01],
  f32x4_mul: [0xfd, 0xe6, 0x01],
  f32x4_div: [0xfd, 0xe7, 0x01],
  f32x4_min: [0xfd, 0xe8, 0x01],
  f32x4_max: [0xfd, 0xe9, 0x01],
  i32x4_trunc_sat_f32x4_s: [0xfd, 0xf8, 0x01],
  i32x4_trunc_sat_f32x4_u: [0xfd, 0xf9, 0x01],
  f32x4_convert_i32x4_s: [0xfd, 0xfa, 0x01],
  f32x4_convert_i32x4_u: [0xfd, 0xfb, 0x01],
  i32x4_splat: [0xfd, 0x11],
  f32x4_relaxed_madd: [0xfd, 0x85, 0x02],
  i32_atomic_rmw_add: [0xfe, 0x1e],
  i32_atomic_load: [0xfe, 0x10],
} as const;

/** A function body under construction: locals and byte code. */
export class FunctionBuilder {
  /** The code (without the locals header and final `end`). */
  readonly code: number[] = [];
  private readonly locals: ValType[] = [];
  /** Starts a function of `params` (locals 0 .. params.length-1). */
  constructor(readonly params: readonly ValType[], readonly results: readonly ValType[] = []) {}
  /** A new local of `type`; returns its index. */
  local(type: ValType): number {
    this.locals.push(type);
    return this.params.length + this.locals.length - 1;
  }
  /** Appends an opcode and its immediates. */
  op(code: readonly number[], ...imm: number[][]): this {
    this.code.push(...code, ...imm.flat());
    return this;
  }
  /** `local.get i`. */
  get(i: number): this {
    return this.op(OP.local_get, uleb(i));
  }
  /** `local.set i`. */
  set(i: number): this {
    return this.op(OP.local_set, uleb(i));
  }
  /** `i32.const v`. */
  i32(v: number): this {
    return this.op(OP.i32_const, sleb(v));
  }
  /** `f32.const v`. */
  f32(v: number): this {
    const b = new Uint8Array(new Float32Array([v]).buffer);
    return this.op(OP.f32_const, [...b]);
  }
  /** `v128.const 0`. */
  v128Zero(): this {
    return this.op(OP.v128_const, new Array(16).fill(0));
  }
  /** A memory access with alignment log2 `align` and constant `offset`. */
  mem(code: readonly number[], align: number, offset = 0): this {
    return this.op(code, uleb(align), uleb(offset));
  }
  /** The encoded body: locals (run-length grouped) and code, ending with `end`. */
  encode(): number[] {
    const groups: number[][] = [];
    for (let i = 0; i < this.locals.length;) {
      let j = i;
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++;
      groups.push([...uleb(j - i), VALTYPE[this.locals[i]]]);
      i = j;
    }
    const body = [...vec(groups), ...this.code, 0x0b];
    return [...uleb(body.length), ...body];
  }
}

/** A function import (`module`.`name`) of a signature. */
export interface FunctionImport {
  module: string;
  name: string;
  params: readonly ValType[];
  results: readonly ValType[];
}

/** A module: imported functions, one imported memory, defined functions, exports. */
export interface ModuleSpec {
  /** Imported functions (indices 0 .. imports.length-1). */
  imports: readonly FunctionImport[];
  /** The imported memory `env.memory`: pages, and whether it is shared. */
  memory: { initial: number; maximum: number; shared: boolean };
  /** Defined functions (indices after the imports), each exported under its name. */
  functions: readonly { name: string; body: FunctionBuilder }[];
}

function funcType(params: readonly ValType[], results: readonly ValType[]): number[] {
  return [0x60, ...vec(params.map((t) => [VALTYPE[t]])), ...vec(results.map((t) => [VALTYPE[t]]))];
}

function section(id: number, content: number[]): number[] {
  return [id, ...uleb(content.length), ...content];
}

/**
 * The bytes of a module.
 *
 * @example
 * ```ts
 * import { encodeModule, FunctionBuilder, OP } from "./wasm_writer.ts";
 * const f = new FunctionBuilder(["i32", "i32"], ["i32"]);
 * f.get(0).get(1).op(OP.i32_add);
 * const bytes = encodeModule({
 *   imports: [], memory: { initial: 1, maximum: 1, shared: false },
 *   functions: [{ name: "add", body: f }],
 * });
 * WebAssembly.validate(bytes); // true
 * ```
 */
export function encodeModule(spec: ModuleSpec): Uint8Array<ArrayBuffer> {
  const types: number[][] = [];
  const typeIndex = new Map<string, number>();
  const typeOf = (params: readonly ValType[], results: readonly ValType[]): number => {
    const t = funcType(params, results);
    const key = t.join(",");
    let i = typeIndex.get(key);
    if (i === undefined) {
      i = types.length;
      types.push(t);
      typeIndex.set(key, i);
    }
    return i;
  };
  const importEntries = spec.imports.map((im) => [
    ...name(im.module),
    ...name(im.name),
    0x00,
    ...uleb(typeOf(im.params, im.results)),
  ]);
  const m = spec.memory;
  importEntries.push([
    ...name("env"),
    ...name("memory"),
    0x02,
    m.shared ? 0x03 : 0x01,
    ...uleb(m.initial),
    ...uleb(m.maximum),
  ]);
  const funcs = spec.functions.map((f) => uleb(typeOf(f.body.params, f.body.results)));
  const exports = spec.functions.map((f, i) => [
    ...name(f.name),
    0x00,
    ...uleb(spec.imports.length + i),
  ]);
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    ...section(1, vec(types)),
    ...section(2, vec(importEntries)),
    ...section(3, vec(funcs)),
    ...section(7, vec(exports)),
    ...section(10, vec(spec.functions.map((f) => f.body.encode()))),
  ];
  return new Uint8Array(bytes);
}
