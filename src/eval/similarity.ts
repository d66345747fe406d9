/**
 * Cosine similarity of face embeddings stored as row-major Float32Arrays `[n, d]`.
 *
 * All sums run in float64 (JavaScript numbers); results are stored as float32.
 * @module
 */

import { checkFinite, checkRows } from "./_check.ts";

/**
 * Divides every row of a row-major `[n, d]` matrix by its Euclidean norm.
 *
 * A zero row stays zero. Non-finite entries are rejected. (Sums run in float64, where the
 * squares of float32 values neither overflow nor underflow to zero.)
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { l2NormalizeRows } from "./similarity.ts";
 * const out = l2NormalizeRows(new Float32Array([3, 4, 0, 2]), 2);
 * ok(Math.abs(out[0] - 0.6) < 1e-7 && out[3] === 1);
 * ```
 */
export function l2NormalizeRows(emb: Float32Array, d: number): Float32Array {
  const n = checkRows(emb.length, d, "embeddings");
  checkFinite(emb, "embeddings");
  const out = new Float32Array(emb.length);
  for (let r = 0; r < n; r++) {
    const o = r * d;
    let ss = 0;
    for (let k = 0; k < d; k++) ss += emb[o + k] * emb[o + k];
    const inv = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    for (let k = 0; k < d; k++) out[o + k] = emb[o + k] * inv;
  }
  return out;
}

/**
 * Cosine similarity of two vectors of the same length, in [-1, 1] (0 if either is zero).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { cosineSimilarity } from "./similarity.ts";
 * ok(Math.abs(cosineSimilarity([1, 0], [1, 1]) - Math.SQRT1_2) < 1e-12);
 * ```
 */
export function cosineSimilarity(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new RangeError(`Cannot compare vectors of lengths ${a.length} and ${b.length}`);
  }
  checkFinite(a, "a");
  checkFinite(b, "b");
  return cosineAt(a, 0, b, 0, a.length);
}

/**
 * Cosine similarity of row i of `embA` with row i of `embB`, for every row: the verification
 * score of each pair.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { pairScores } from "./similarity.ts";
 * const s = pairScores(new Float32Array([1, 0, 0, 1]), new Float32Array([2, 0, 1, 0]), 2);
 * ok(s[0] === 1 && s[1] === 0);
 * ```
 */
export function pairScores(embA: Float32Array, embB: Float32Array, d: number): Float32Array {
  const n = checkRows(embA.length, d, "embA");
  if (embB.length !== embA.length) {
    throw new RangeError(
      `Invalid length ${embB.length} of embB: expected ${embA.length}, the length of embA`,
    );
  }
  checkFinite(embA, "embA");
  checkFinite(embB, "embB");
  const out = new Float32Array(n);
  for (let r = 0; r < n; r++) out[r] = cosineAt(embA, r * d, embB, r * d, d);
  return out;
}

/** Options of {@linkcode combineFlip}. */
export interface CombineFlipOptions {
  /**
   * `"sum"` (default): add the two features, then normalize (insightface's evaluation).
   * `"concat"`: normalize each, concatenate to `[n, 2d]`, normalize again (the CosFace paper's
   * wording); the cosine of two such rows is the mean of the two per-view cosines.
   */
  mode?: "sum" | "concat";
}

/**
 * Test-time flip augmentation: combines each image's features with those of its mirror image
 * and L2-normalizes the result. Returns `[n, d]` (sum) or `[n, 2d]` (concat) rows.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { combineFlip } from "./similarity.ts";
 * const out = combineFlip(new Float32Array([1, 0]), new Float32Array([0, 1]), 2);
 * ok(Math.abs(out[0] - Math.SQRT1_2) < 1e-7 && out[0] === out[1]);
 * ```
 */
export function combineFlip(
  emb: Float32Array,
  embFlipped: Float32Array,
  d: number,
  options: CombineFlipOptions = {},
): Float32Array {
  const n = checkRows(emb.length, d, "emb");
  if (embFlipped.length !== emb.length) {
    throw new RangeError(
      `Invalid length ${embFlipped.length} of embFlipped: expected ${emb.length}, the length of emb`,
    );
  }
  const mode = options.mode ?? "sum";
  if (mode === "sum") {
    const sum = new Float32Array(emb.length);
    for (let i = 0; i < emb.length; i++) sum[i] = emb[i] + embFlipped[i];
    checkFinite(sum, "emb + embFlipped");
    return l2NormalizeRows(sum, d);
  }
  if (mode !== "concat") {
    throw new TypeError(`Invalid mode "${String(mode)}": expected "sum" or "concat"`);
  }
  const a = l2NormalizeRows(emb, d);
  const b = l2NormalizeRows(embFlipped, d);
  const cat = new Float32Array(2 * emb.length);
  for (let r = 0; r < n; r++) {
    cat.set(a.subarray(r * d, (r + 1) * d), 2 * r * d);
    cat.set(b.subarray(r * d, (r + 1) * d), (2 * r + 1) * d);
  }
  return l2NormalizeRows(cat, 2 * d);
}

/** Cosine of a[ao..ao+d) and b[bo..bo+d), clamped to [-1, 1]. */
function cosineAt(
  a: ArrayLike<number>,
  ao: number,
  b: ArrayLike<number>,
  bo: number,
  d: number,
): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let k = 0; k < d; k++) {
    const x = a[ao + k];
    const y = b[bo + k];
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  const den = Math.sqrt(aa) * Math.sqrt(bb);
  if (den === 0) return 0;
  const c = ab / den;
  return c > 1 ? 1 : c < -1 ? -1 : c;
}
