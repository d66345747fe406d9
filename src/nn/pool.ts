/**
 * Pooling, built from movement primitives and reductions: non-overlapping windows are a
 * reshape plus a reduction; general windows stack strided slices (a strided slice is a
 * slice, a reshape that splits off the stride, and a slice of the first column).
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { fmtShape } from "../ir/dtype.ts";
import { mul, where } from "../ops/elementwise.ts";
import { onesLike } from "../ops/creation.ts";
import { max, mean, sum } from "../ops/reduce.ts";
import { pad, reshape, slice, stack } from "../ops/movement.ts";

/** Options of the pooling functions. */
export interface PoolOptions {
  /** Window size: one number or [height, width]. */
  kernel: number | [number, number];
  /** Step between windows (default: the window size). */
  stride?: number | [number, number];
  /** Padding on each side (default 0); at most half the window. */
  padding?: number | [number, number];
}

/** The lowest finite float32, used as the padding of max pooling (WGSL has no -inf). */
const LOWEST = -3.4028234663852886e38;

function pair(v: number | [number, number]): [number, number] {
  return typeof v === "number" ? [v, v] : v;
}

/** Rows start, start + step, ... (count of them) along `axis`. */
function strided(x: Tensor, axis: number, start: number, step: number, count: number): Tensor {
  const s = x.shape.map((_, i) => i === axis ? start : 0);
  const e = x.shape.map((d, i) => i === axis ? start + step * count : d);
  const cut = slice(x, s, e);
  if (step === 1) return cut;
  const split = [...x.shape.slice(0, axis), count, step, ...x.shape.slice(axis + 1)];
  const first = slice(reshape(cut, split), [], split.map((d, i) => i === axis + 1 ? 1 : d));
  return reshape(first, split.filter((_, i) => i !== axis + 1));
}

function pool(kind: "max" | "avg", x: Tensor, options: PoolOptions): Tensor {
  const what = kind === "max" ? "maxPool2d" : "avgPool2d";
  if (x.ndim !== 4) {
    throw new RangeError(`${what}: expected [N, C, H, W], got ${fmtShape(x.shape)}`);
  }
  const [kh, kw] = pair(options.kernel);
  const [sh, sw] = pair(options.stride ?? options.kernel);
  const [ph, pw] = pair(options.padding ?? 0);
  for (const v of [kh, kw, sh, sw]) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`${what}: kernel and stride must be positive integers, got ${v}`);
    }
  }
  if (
    !Number.isInteger(ph) || !Number.isInteger(pw) || ph < 0 || pw < 0 || 2 * ph > kh ||
    2 * pw > kw
  ) {
    throw new RangeError(
      `${what}: padding must be integers in [0, kernel / 2], got [${ph}, ${pw}] for kernel [${kh}, ${kw}]`,
    );
  }
  const [n, c, h, w] = x.shape;
  const ho = Math.floor((h + 2 * ph - kh) / sh) + 1;
  const wo = Math.floor((w + 2 * pw - kw) / sw) + 1;
  if (ho < 1 || wo < 1) {
    throw new RangeError(
      `${what}: window [${kh}, ${kw}] is larger than the padded input ${h}x${w}`,
    );
  }
  if (kh === sh && kw === sw && ph === 0 && pw === 0 && h % kh === 0 && w % kw === 0) {
    const r = reshape(x, [n, c, ho, kh, wo, kw]);
    return kind === "max" ? max(r, [3, 5]) : mean(r, [3, 5]);
  }
  // Pad, plus extra rows/columns at the end so every strided slice has whole steps.
  const widths: [number, number][] = [[0, 0], [0, 0], [ph, ph + sh], [pw, pw + sw]];
  let xp = pad(x, widths);
  if (kind === "max" && (ph > 0 || pw > 0)) {
    xp = where(pad(onesLike(x), widths), xp, LOWEST);
  }
  const windows: Tensor[] = [];
  for (let i = 0; i < kh; i++) {
    const rows = strided(xp, 2, i, sh, ho);
    for (let j = 0; j < kw; j++) windows.push(strided(rows, 3, j, sw, wo));
  }
  const all = stack(windows, 0);
  // Average pooling counts the zero padding (PyTorch's count_include_pad default).
  return kind === "max" ? max(all, 0) : mul(sum(all, 0), 1 / (kh * kw));
}

/**
 * Max pooling of x [N, C, H, W] (ties share the gradient evenly).
 *
 * @example
 * ```ts
 * import { maxPool2d } from "./pool.ts";
 * import { arange } from "../ops/creation.ts";
 * import { reshape } from "../ops/movement.ts";
 * const x = reshape(arange(16), [1, 1, 4, 4]);
 * await maxPool2d(x, { kernel: 2 }).data(); // Float32Array [5, 7, 13, 15]
 * maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }).shape; // [1, 1, 2, 2]
 * ```
 */
export function maxPool2d(x: Tensor, options: PoolOptions): Tensor {
  return pool("max", x, options);
}

/**
 * Average pooling of x [N, C, H, W]; padding counts as zeros in the average.
 *
 * @example
 * ```ts
 * import { avgPool2d } from "./pool.ts";
 * import { arange } from "../ops/creation.ts";
 * import { reshape } from "../ops/movement.ts";
 * const x = reshape(arange(16), [1, 1, 4, 4]);
 * await avgPool2d(x, { kernel: 2 }).data(); // Float32Array [2.5, 4.5, 10.5, 12.5]
 * ```
 */
export function avgPool2d(x: Tensor, options: PoolOptions): Tensor {
  return pool("avg", x, options);
}

/**
 * Mean over the spatial axes: [N, C, H, W] -> [N, C].
 *
 * @example
 * ```ts
 * import { globalAvgPool } from "./pool.ts";
 * import { ones } from "../ops/creation.ts";
 * globalAvgPool(ones([2, 3, 4, 4])).shape; // [2, 3]
 * ```
 */
export function globalAvgPool(x: Tensor): Tensor {
  if (x.ndim !== 4) {
    throw new RangeError(`globalAvgPool: expected [N, C, H, W], got ${fmtShape(x.shape)}`);
  }
  return mean(x, [2, 3]);
}
