/**
 * Movement operations: reshape, transpose, broadcast, slice, pad, concat, stack, flip.
 *
 * @module
 */
import { fmtShape, sizeOf } from "../ir/dtype.ts";
import { apply, type Tensor } from "../tensor.ts";

function axis(a: number, rank: number, what = "axis"): number {
  const r = a < 0 ? a + rank : a;
  if (!Number.isInteger(r) || r < 0 || r >= rank) {
    throw new RangeError(`Bad ${what} ${a} for a tensor of rank ${rank}`);
  }
  return r;
}

/** Normalises axes (negative counts from the end); undefined means all. */
export function normAxes(axes: number | readonly number[] | undefined, rank: number): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, i) => i);
  const list = typeof axes === "number" ? [axes] : [...axes];
  return [...new Set(list.map((a) => axis(a, rank)))].sort((a, b) => a - b);
}

/**
 * The same values in a new shape; one dimension may be -1 (inferred).
 *
 * @example
 * ```ts
 * import { reshape } from "./movement.ts";
 * import { arange } from "./creation.ts";
 * reshape(arange(6), [2, -1]).shape; // [2, 3]
 * ```
 */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const s = [...shape];
  const unknown = s.indexOf(-1);
  if (unknown >= 0) {
    const rest = s.reduce((a, d, i) => i === unknown ? a : a * d, 1);
    if (rest === 0 || x.size % rest !== 0) {
      throw new RangeError(`Cannot reshape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
    }
    s[unknown] = x.size / rest;
  }
  return apply("reshape", [x], { shape: s });
}

/**
 * Permutes the axes (reverses them by default).
 *
 * @example
 * ```ts
 * import { transpose } from "./movement.ts";
 * import { zeros } from "./creation.ts";
 * transpose(zeros([2, 3, 4]), [0, 2, 1]).shape; // [2, 4, 3]
 * ```
 */
export function transpose(x: Tensor, perm?: readonly number[]): Tensor {
  const p = perm ? perm.map((a) => axis(a, x.ndim)) : x.shape.map((_, i) => x.ndim - 1 - i);
  return apply("permute", [x], { perm: p });
}

/** The shape two shapes broadcast to, NumPy style. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out = new Array<number>(r);
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new RangeError(`Cannot broadcast shapes ${fmtShape(a)} and ${fmtShape(b)}`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/**
 * Broadcasts `x` to `shape` (NumPy rules: leading axes added, size-1 axes expanded).
 *
 * @example
 * ```ts
 * import { broadcastTo } from "./movement.ts";
 * import { tensor } from "./creation.ts";
 * await broadcastTo(tensor([1, 2]), [2, 2]).data(); // Float32Array [1, 2, 1, 2]
 * ```
 */
export function broadcastTo(x: Tensor, shape: readonly number[]): Tensor {
  if (x.ndim > shape.length) {
    throw new RangeError(`Cannot broadcast shape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  }
  const padded = [...new Array(shape.length - x.ndim).fill(1), ...x.shape];
  if (padded.some((d, i) => d !== shape[i] && d !== 1)) {
    throw new RangeError(`Cannot broadcast shape ${fmtShape(x.shape)} to ${fmtShape(shape)}`);
  }
  const r = padded.length === x.ndim ? x : apply("reshape", [x], { shape: padded });
  if (padded.every((d, i) => d === shape[i])) return r;
  return apply("broadcast", [r], { shape: [...shape] });
}

/**
 * `x[start:end]` on each axis; `end` defaults to the size, negatives count from the end.
 *
 * @example
 * ```ts
 * import { slice } from "./movement.ts";
 * import { arange } from "./creation.ts";
 * await slice(arange(5), [1], [3]).data(); // Float32Array [1, 2]
 * ```
 */
export function slice(x: Tensor, start: readonly number[], end?: readonly number[]): Tensor {
  const s = x.shape.map((d, i) => {
    const v = start[i] ?? 0;
    return Math.min(d, Math.max(0, v < 0 ? v + d : v));
  });
  const e = x.shape.map((d, i) => {
    const v = end?.[i] ?? d;
    return Math.min(d, Math.max(s[i], v < 0 ? v + d : v));
  });
  if (s.every((v) => v === 0) && e.every((v, i) => v === x.shape[i])) return x;
  return apply("slice", [x], { start: s, end: e });
}

/**
 * Zero padding: `widths[i] = [before, after]` for axis i (missing axes unpadded).
 *
 * @example
 * ```ts
 * import { pad } from "./movement.ts";
 * import { ones } from "./creation.ts";
 * await pad(ones([2]), [[1, 0]]).data(); // Float32Array [0, 1, 1]
 * ```
 */
export function pad(x: Tensor, widths: readonly (readonly [number, number])[]): Tensor {
  const lo = x.shape.map((_, i) => widths[i]?.[0] ?? 0);
  const hi = x.shape.map((_, i) => widths[i]?.[1] ?? 0);
  if ([...lo, ...hi].every((v) => v === 0)) return x;
  return apply("pad", [x], { lo, hi });
}

/**
 * Joins tensors along an existing axis.
 *
 * @example
 * ```ts
 * import { concat } from "./movement.ts";
 * import { ones, zeros } from "./creation.ts";
 * concat([ones([2, 1]), zeros([2, 3])], 1).shape; // [2, 4]
 * ```
 */
export function concat(xs: readonly Tensor[], ax = 0): Tensor {
  if (xs.length === 0) throw new RangeError("concat: expected at least one tensor");
  if (xs.length === 1) return xs[0];
  return apply("concat", xs, { axis: axis(ax, xs[0].ndim) });
}

/**
 * Joins tensors of one shape along a new axis.
 *
 * @example
 * ```ts
 * import { stack } from "./movement.ts";
 * import { ones } from "./creation.ts";
 * stack([ones([3]), ones([3])]).shape; // [2, 3]
 * ```
 */
export function stack(xs: readonly Tensor[], ax = 0): Tensor {
  if (xs.length === 0) throw new RangeError("stack: expected at least one tensor");
  const a = axis(ax, xs[0].ndim + 1);
  return concat(xs.map((x) => expandDims(x, a)), a);
}

/**
 * Reverses the order of elements along `axes`.
 *
 * @example
 * ```ts
 * import { flip } from "./movement.ts";
 * import { arange } from "./creation.ts";
 * await flip(arange(3), 0).data(); // Float32Array [2, 1, 0]
 * ```
 */
export function flip(x: Tensor, axes: number | readonly number[]): Tensor {
  return apply("flip", [x], { axes: normAxes(axes, x.ndim) });
}

/**
 * Inserts a size-1 axis at `ax`.
 *
 * @example
 * ```ts
 * import { expandDims } from "./movement.ts";
 * import { ones } from "./creation.ts";
 * expandDims(ones([3]), 0).shape; // [1, 3]
 * ```
 */
export function expandDims(x: Tensor, ax: number): Tensor {
  const a = axis(ax, x.ndim + 1);
  const s = x.shape;
  s.splice(a, 0, 1);
  return apply("reshape", [x], { shape: s });
}

/**
 * Removes size-1 axes (all of them, or those listed).
 *
 * @example
 * ```ts
 * import { squeeze } from "./movement.ts";
 * import { ones } from "./creation.ts";
 * squeeze(ones([1, 3, 1])).shape; // [3]
 * ```
 */
export function squeeze(x: Tensor, axes?: number | readonly number[]): Tensor {
  const drop = axes === undefined
    ? x.shape.map((d, i) => d === 1 ? i : -1).filter((i) => i >= 0)
    : normAxes(axes, x.ndim);
  for (const a of drop) {
    if (x.shape[a] !== 1) {
      throw new RangeError(`squeeze: axis ${a} of ${fmtShape(x.shape)} is not 1`);
    }
  }
  return apply("reshape", [x], { shape: x.shape.filter((_, i) => !drop.includes(i)) });
}

/**
 * Flattens all axes from `start` on into one.
 *
 * @example
 * ```ts
 * import { flatten } from "./movement.ts";
 * import { ones } from "./creation.ts";
 * flatten(ones([2, 3, 4])).shape; // [2, 12]
 * ```
 */
export function flatten(x: Tensor, start = 1): Tensor {
  const s = axis(start, x.ndim);
  return apply("reshape", [x], { shape: [...x.shape.slice(0, s), sizeOf(x.shape.slice(s))] });
}
