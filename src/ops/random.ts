/**
 * Seeded, functional random numbers: a key is split, never mutated (as in JAX). Values come
 * from a counter-based hash, so the same key gives the same numbers on every backend.
 *
 * @module
 */
import type { DType } from "../ir/dtype.ts";
import { sizeOf } from "../ir/dtype.ts";
import type { Tensor } from "../tensor.ts";
import { tensor } from "./creation.ts";

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
 * Uniform samples in [min, max).
 *
 * @example
 * ```ts
 * import { randomKey, uniform } from "./random.ts";
 * uniform(randomKey(3), [4], { min: -1, max: 1 }).shape; // [4]
 * ```
 */
export function uniform(
  key: RandomKey,
  shape: readonly number[],
  options: SampleOptions & { min?: number; max?: number } = {},
): Tensor {
  const lo = options.min ?? 0, hi = options.max ?? 1;
  const u = uniformArray(key, sizeOf(shape));
  for (let i = 0; i < u.length; i++) u[i] = lo + (hi - lo) * u[i];
  return tensor(u, shape, { dtype: options.dtype ?? "float32" });
}

/**
 * Normal samples (Box-Muller) with the given mean and standard deviation.
 *
 * @example
 * ```ts
 * import { normal, randomKey } from "./random.ts";
 * normal(randomKey(3), [2, 2], { std: 0.1 }).dtype; // "float32"
 * ```
 */
export function normal(
  key: RandomKey,
  shape: readonly number[],
  options: SampleOptions & { mean?: number; std?: number } = {},
): Tensor {
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
export function bernoulli(key: RandomKey, p: number, shape: readonly number[]): Tensor {
  const u = uniformArray(key, sizeOf(shape));
  for (let i = 0; i < u.length; i++) u[i] = u[i] < p ? 1 : 0;
  return tensor(u, shape);
}

/**
 * A random permutation of 0..n-1 (Fisher-Yates), as a plain Int32Array.
 *
 * @example
 * ```ts
 * import { permutation, randomKey } from "./random.ts";
 * permutation(randomKey(0), 5).length; // 5
 * ```
 */
export function permutation(key: RandomKey, n: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  const u = uniformArray(key, n);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(u[i] * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}
