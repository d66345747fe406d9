/**
 * Independent reference values for checking peers' results: a few sampled entries of the
 * M1 product and of the C1 convolution and its gradients, computed in float64 plain loops
 * from the seeded inputs (all tensors row-major, NCHW / OIHW).
 *
 * @module
 */

import { fmix32 } from "../_inputs.ts";

/**
 * `count` deterministic indices in [0, size), including 0 and size - 1.
 *
 * @example
 * ```ts
 * import { sampleIndices } from "./_reference.ts";
 * sampleIndices(4, 10)[0]; // 0
 * ```
 */
export function sampleIndices(count: number, size: number): number[] {
  const out = [0, size - 1];
  for (let i = 0; out.length < count; i++) out.push(fmix32(0x5eed + i) % size);
  return out;
}

/** Shape of C1: batch, channels in/out, height, width. */
const C1 = { n: 16, c: 64, h: 56, w: 56 };

/**
 * Reference entry `k` (flat, row-major) of `a @ b` for square `n x n` matrices.
 *
 * @example
 * ```ts
 * import { matmulAt } from "./_reference.ts";
 * matmulAt(new Float32Array([1, 2, 3, 4]), new Float32Array([1, 0, 0, 1]), { n: 2, k: 1 }); // 2
 * ```
 */
export function matmulAt(a: Float32Array, b: Float32Array, at: { n: number; k: number }): number {
  const i = Math.floor(at.k / at.n), j = at.k % at.n;
  let s = 0;
  for (let t = 0; t < at.n; t++) s += a[i * at.n + t] * b[t * at.n + j];
  return s;
}

function unflat(k: number, dims: number[]): number[] {
  const out = new Array(dims.length);
  for (let d = dims.length - 1; d >= 0; d--) {
    out[d] = k % dims[d];
    k = Math.floor(k / dims[d]);
  }
  return out;
}

/**
 * Reference entry `k` of C1's forward output y = conv2d(x, w), 3x3, stride 1, pad 1.
 *
 * @example
 * ```ts
 * import { conv2dAt } from "./_reference.ts";
 * const x = new Float32Array(16 * 64 * 56 * 56).fill(1), w = new Float32Array(64 * 64 * 9).fill(1);
 * conv2dAt(x, w, 0); // 256 (corner: 4 taps x 64 channels)
 * ```
 */
export function conv2dAt(x: Float32Array, w: Float32Array, k: number): number {
  const { c, h, w: W } = C1;
  const [n, o, y, xx] = unflat(k, [C1.n, c, h, W]);
  let s = 0;
  for (let i = 0; i < c; i++) {
    for (let kh = 0; kh < 3; kh++) {
      const yy = y + kh - 1;
      if (yy < 0 || yy >= h) continue;
      for (let kw = 0; kw < 3; kw++) {
        const xc = xx + kw - 1;
        if (xc < 0 || xc >= W) continue;
        s += x[((n * c + i) * h + yy) * W + xc] * w[((o * c + i) * 3 + kh) * 3 + kw];
      }
    }
  }
  return s;
}

/**
 * Reference entry `k` of C1's input gradient dx for output gradient dy.
 *
 * @example
 * ```ts
 * import { conv2dDxAt } from "./_reference.ts";
 * const dy = new Float32Array(16 * 64 * 56 * 56).fill(1), w = new Float32Array(64 * 64 * 9).fill(1);
 * conv2dDxAt(dy, w, 0); // 256
 * ```
 */
export function conv2dDxAt(dy: Float32Array, w: Float32Array, k: number): number {
  const { c, h, w: W } = C1;
  const [n, i, y, xx] = unflat(k, [C1.n, c, h, W]);
  let s = 0;
  for (let o = 0; o < c; o++) {
    for (let kh = 0; kh < 3; kh++) {
      const yo = y - kh + 1;
      if (yo < 0 || yo >= h) continue;
      for (let kw = 0; kw < 3; kw++) {
        const xo = xx - kw + 1;
        if (xo < 0 || xo >= W) continue;
        s += dy[((n * c + o) * h + yo) * W + xo] * w[((o * c + i) * 3 + kh) * 3 + kw];
      }
    }
  }
  return s;
}

/**
 * Reference entry `k` of C1's weight gradient dw (OIHW) for input x and output gradient dy.
 *
 * @example
 * ```ts
 * import { conv2dDwAt } from "./_reference.ts";
 * const ones = new Float32Array(16 * 64 * 56 * 56).fill(1);
 * conv2dDwAt(ones, ones, 4); // 50176 (centre tap: every position)
 * ```
 */
export function conv2dDwAt(x: Float32Array, dy: Float32Array, k: number): number {
  const { c, h, w: W } = C1;
  const [o, i, kh, kw] = unflat(k, [c, c, 3, 3]);
  let s = 0;
  for (let n = 0; n < C1.n; n++) {
    for (let y = 0; y < h; y++) {
      const yy = y + kh - 1;
      if (yy < 0 || yy >= h) continue;
      const xrow = ((n * c + i) * h + yy) * W, drow = ((n * c + o) * h + y) * W;
      for (let xx = 0; xx < W; xx++) {
        const xc = xx + kw - 1;
        if (xc < 0 || xc >= W) continue;
        s += x[xrow + xc] * dy[drow + xx];
      }
    }
  }
  return s;
}

/**
 * Compares sampled entries of `got` with a reference, normwise: the error is
 * max |got - ref| / max |ref| over the samples. Returns "NAME ok (err E)" or a text naming the
 * worst entry.
 *
 * @example
 * ```ts
 * import { compareSamples } from "./_reference.ts";
 * compareSamples(new Float32Array([1, 2]), (k) => k + 1, { indices: [0, 1] }).ok; // true
 * ```
 */
export function compareSamples(
  got: ArrayLike<number>,
  ref: (k: number) => number,
  opts: { indices: number[]; rtol?: number; name?: string },
): { ok: boolean; text: string } {
  const rtol = opts.rtol ?? 1e-3;
  let worst = 0, worstK = -1, worstRef = 0, scale = 0;
  for (const k of opts.indices) {
    const r = ref(k);
    scale = Math.max(scale, Math.abs(r));
    const e = Math.abs(got[k] - r);
    if (!(e <= worst)) {
      worst = e;
      worstK = k;
      worstRef = r;
    }
  }
  const err = worst / (scale || 1);
  const name = opts.name ?? "value";
  if (err <= rtol) return { ok: true, text: `${name} ok (err ${err.toExponential(1)})` };
  return {
    ok: false,
    text: `${name} WRONG (err ${err.toExponential(1)}; at ${worstK}: ${got[worstK]} vs ${
      worstRef.toPrecision(6)
    })`,
  };
}
