/**
 * Seeded, functional random numbers: a key is split, never mutated (as in JAX).
 *
 * Two kinds of key:
 * - a key tensor (`prngKey(seed)`: int32 `[2]`): the numbers are made in the program by the
 *   `threefry` primitive (Threefry-2x32-20), so a compiled step that takes the key as an
 *   argument draws fresh numbers for each new key without retracing, and the same key gives
 *   the same integers on every backend (bit for bit);
 * - a host `RandomKey` (`randomKey(seed)`): the numbers are made on the host by a
 *   counter-based hash and uploaded (parameter initialisation, data order).
 *
 * @module
 */
import { type DType, fmtShape } from "../ir/dtype.ts";
import { sizeOf } from "../ir/dtype.ts";
import { apply, Tensor } from "../tensor.ts";
import { tensor } from "./creation.ts";
import { add, cast, cos, less, log, mul, sqrt, sub } from "./elementwise.ts";
import { broadcastTo, reshape, slice, stack } from "./movement.ts";
import { iota } from "./indexing.ts";
import { sum } from "./reduce.ts";

/** A random key: two 32-bit words. */
export interface RandomKey {
  /** The key's state. */
  readonly words: readonly [number, number];
}

/** murmur3's 32-bit finaliser. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mix(a: number, b: number): number {
  return fmix32((Math.imul(a, 0x9e3779b9) ^ fmix32(b + 0x7f4a7c15)) >>> 0);
}

/**
 * A key from an integer seed.
 *
 * @example
 * ```ts
 * import { normal, randomKey } from "./random.ts";
 * normal(randomKey(0), [2, 3]).shape; // [2, 3]
 * ```
 */
export function randomKey(seed: number): RandomKey {
  if (!Number.isInteger(seed)) {
    throw new TypeError(`randomKey: seed must be an integer, got ${seed}`);
  }
  const lo = seed >>> 0, hi = Math.floor(seed / 2 ** 32) >>> 0;
  return { words: [fmix32(lo ^ 0x3c6ef372), fmix32(hi + 0x2545f491 + lo)] };
}

/**
 * `n` new independent keys derived from `key` (2 by default).
 *
 * @example
 * ```ts
 * import { randomKey, split } from "./random.ts";
 * const [a, b] = split(randomKey(1));
 * a.words[0] !== b.words[0]; // true
 * ```
 */
export function split(key: RandomKey, n = 2): RandomKey[] {
  return Array.from({ length: n }, (_, i) => ({
    words: [mix(key.words[0], 2 * i + 1), mix(key.words[1], 2 * i + 2)] as [number, number],
  }));
}

/**
 * A key tensor (int32 `[2]`: the high and low 32 bits of `seed`) for the traced generator.
 *
 * @example
 * ```ts
 * import { prngKey } from "./random.ts";
 * await prngKey(42).data(); // Int32Array [0, 42]
 * ```
 */
export function prngKey(seed: number): Tensor {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new TypeError(`prngKey: seed must be a non-negative safe integer, got ${seed}`);
  }
  return tensor([Math.floor(seed / 2 ** 32) | 0, seed | 0], [2], { dtype: "int32" });
}

function checkKey(key: Tensor, what: string): void {
  if (key.dtype !== "int32" || key.ndim !== 1 || key.shape[0] !== 2) {
    throw new TypeError(
      `${what}: expected a key tensor int32[2] (from prngKey or splitKey), got ${key.dtype}${
        fmtShape(key.shape)
      }`,
    );
  }
}

/** Threefry of `key` over counters `(i, stream)` for the elements i of `shape`. */
function threefry(
  key: Tensor,
  shape: readonly number[],
  stream: number,
  word: 0 | 1,
  output: "bits" | "uniform",
): Tensor {
  const n = sizeOf(shape);
  const k = (j: number) => broadcastTo(reshape(slice(key, [j], [j + 1]), [1]), [n]);
  const x0 = iota([n], 0, "int32");
  const x1 = broadcastTo(tensor([stream], [1], { dtype: "int32" }), [n]);
  return reshape(apply("threefry", [k(0), k(1), x0, x1], { word, output }), shape);
}

/**
 * `n` new keys from a key tensor, as int32 `[n, 2]` (row j is key j: `slice` it, or `vmap`
 * over the rows).
 *
 * @example
 * ```ts
 * import { prngKey, splitKey } from "./random.ts";
 * splitKey(prngKey(0), 3).shape; // [3, 2]
 * ```
 */
export function splitKey(key: Tensor, n = 2): Tensor {
  checkKey(key, "splitKey");
  if (!Number.isInteger(n) || n < 1) {
    throw new RangeError(`splitKey: n must be a positive integer, got ${n}`);
  }
  return stack([threefry(key, [n], 1, 0, "bits"), threefry(key, [n], 1, 1, "bits")], 1);
}

/**
 * Random 32-bit integers (int32 bits of Threefry-2x32-20 of the key over counters
 * `(i, 0)`): the same key gives the same integers on every backend.
 *
 * @example
 * ```ts
 * import { prngKey, randomBits } from "./random.ts";
 * randomBits(prngKey(0), [2, 3]).dtype; // "int32"
 * ```
 */
export function randomBits(key: Tensor, shape: readonly number[]): Tensor {
  checkKey(key, "randomBits");
  return threefry(key, shape, 0, 0, "bits");
}

/** Uniform 32-bit words for elements 0..n-1 of `key`. */
function words(key: RandomKey, n: number, stream: number): Uint32Array {
  const out = new Uint32Array(n);
  const k = mix(key.words[0], key.words[1] + stream);
  for (let i = 0; i < n; i++) out[i] = fmix32((k + Math.imul(i, 0x9e3779b9) + fmix32(i)) >>> 0);
  return out;
}

/** Uniform doubles in [0, 1) with 32 bits of randomness. */
export function uniformArray(key: RandomKey, n: number): Float64Array {
  const w = words(key, n, 0);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = w[i] / 2 ** 32;
  return out;
}

/** Options of the sampling functions. */
export interface SampleOptions {
  /** Element type of the samples (default float32). */
  dtype?: DType;
}

/**
 * Uniform samples in [min, max). With a key tensor they are made in the program (24 random
 * bits each, `(bits >>> 8) * 2^-24`), with a host key on the host (32 bits).
 *
 * @example
 * ```ts
 * import { randomKey, uniform } from "./random.ts";
 * uniform(randomKey(3), [4], { min: -1, max: 1 }).shape; // [4]
 * ```
 */
export function uniform(
  key: RandomKey | Tensor,
  shape: readonly number[],
  options: SampleOptions & { min?: number; max?: number } = {},
): Tensor {
  const lo = options.min ?? 0, hi = options.max ?? 1;
  if (key instanceof Tensor) {
    checkKey(key, "uniform");
    const u = threefry(key, shape, 0, 0, "uniform");
    const scaled = lo === 0 && hi === 1 ? u : add(mul(u, hi - lo), lo);
    return cast(scaled, options.dtype ?? "float32");
  }
  const u = uniformArray(key, sizeOf(shape));
  for (let i = 0; i < u.length; i++) u[i] = lo + (hi - lo) * u[i];
  return tensor(u, shape, { dtype: options.dtype ?? "float32" });
}

/**
 * Normal samples (Box-Muller) with the given mean and standard deviation; in the program for
 * a key tensor (integers bit-identical across backends, the floats up to each backend's
 * `log`, `sqrt` and `cos`).
 *
 * @example
 * ```ts
 * import { normal, randomKey } from "./random.ts";
 * normal(randomKey(3), [2, 2], { std: 0.1 }).dtype; // "float32"
 * ```
 */
export function normal(
  key: RandomKey | Tensor,
  shape: readonly number[],
  options: SampleOptions & { mean?: number; std?: number } = {},
): Tensor {
  if (key instanceof Tensor) {
    checkKey(key, "normal");
    // Box-Muller from the two words of one block; 1 - u1 is in (0, 1], so the log is finite.
    const u1 = threefry(key, shape, 2, 0, "uniform"), u2 = threefry(key, shape, 2, 1, "uniform");
    const r = sqrt(mul(log(sub(1, u1)), -2));
    const z = mul(r, cos(mul(u2, 2 * Math.PI)));
    const m = options.mean ?? 0, sd = options.std ?? 1;
    return cast(m === 0 && sd === 1 ? z : add(mul(z, sd), m), options.dtype ?? "float32");
  }
  const n = sizeOf(shape);
  const a = words(key, n, 1), b = words(key, n, 2);
  const out = new Float64Array(n);
  const mean = options.mean ?? 0, std = options.std ?? 1;
  for (let i = 0; i < n; i++) {
    const u1 = (a[i] + 1) / (2 ** 32 + 1);
    const u2 = b[i] / 2 ** 32;
    out[i] = mean + std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }
  return tensor(out, shape, { dtype: options.dtype ?? "float32" });
}

/**
 * 1 with probability `p`, else 0.
 *
 * @example
 * ```ts
 * import { bernoulli, randomKey } from "./random.ts";
 * bernoulli(randomKey(0), 0.5, [8]).shape; // [8]
 * ```
 */
export function bernoulli(key: RandomKey | Tensor, p: number, shape: readonly number[]): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`bernoulli: p must be in [0, 1], got ${p}`);
  if (key instanceof Tensor) {
    checkKey(key, "bernoulli");
    return less(threefry(key, shape, 3, 0, "uniform"), p);
  }
  const u = uniformArray(key, sizeOf(shape));
  for (let i = 0; i < u.length; i++) u[i] = u[i] < p ? 1 : 0;
  return tensor(u, shape);
}

/** The largest `n` of a traced {@link permutation} (it compares all pairs: n^2 work). */
export const MAX_TRACED_PERMUTATION = 16384;

/**
 * A random permutation of 0..n-1 as an int32 tensor. With a host key: Fisher-Yates on the
 * host. With a key tensor: in the program, by ranking random 32-bit integers (ties broken by
 * position): element i goes to the place of its rank. That compares all pairs, so `n` is
 * limited to {@link MAX_TRACED_PERMUTATION}.
 *
 * @example
 * ```ts
 * import { permutation, prngKey, randomKey } from "./random.ts";
 * permutation(randomKey(0), 5).shape; // [5]
 * permutation(prngKey(0), 5).dtype; // "int32"
 * ```
 */
export function permutation(key: RandomKey | Tensor, n: number): Tensor {
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`permutation: n must be a non-negative integer, got ${n}`);
  }
  if (key instanceof Tensor) {
    checkKey(key, "permutation");
    if (n > MAX_TRACED_PERMUTATION) {
      throw new RangeError(
        `permutation: n = ${n} is over ${MAX_TRACED_PERMUTATION} for a key tensor (all pairs are compared); use a host key (randomKey)`,
      );
    }
    const bits = randomBits(key, [n]);
    const bi = broadcastTo(reshape(bits, [n, 1]), [n, n]);
    const bj = broadcastTo(reshape(bits, [1, n]), [n, n]);
    const i = iota([n, n], 0, "int32"), j = iota([n, n], 1, "int32");
    // rank_i = #{j : (b_j, j) < (b_i, i)}
    const before = add(less(bj, bi), mul(apply("cmpeq", [bj, bi], {}), less(j, i)));
    const rank = reshape(sum(before, [1]), [n]);
    return apply("scatterAdd", [iota([n], 0, "int32"), rank], { axis: 0, shape: [n] });
  }
  const p = Int32Array.from({ length: n }, (_, i) => i);
  const u = uniformArray(key, n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u[i] * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return tensor(p, [n], { dtype: "int32" });
}
