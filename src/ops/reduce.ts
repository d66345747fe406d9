/**
 * Reductions over any axes, with `keepdims`.
 *
 * @module
 */
import { apply, type Tensor } from "../tensor.ts";
import { iota } from "./indexing.ts";
import { add, cast, equal, exp, log, mul, neg, sub, where } from "./elementwise.ts";
import { normAxes, reshape } from "./movement.ts";

/** Options of the reductions. */
export interface ReduceOptions {
  /** Keep reduced axes as size 1 (default false). */
  keepdims?: boolean;
}

/** Axes to reduce: a number, a list, or undefined for all. */
export type Axes = number | readonly number[] | undefined;

function finish(x: Tensor, r: Tensor, axes: number[], keepdims: boolean | undefined): Tensor {
  if (keepdims) return r;
  return reshape(r, x.shape.filter((_, i) => !axes.includes(i)));
}

/**
 * Sum over `axes` (all by default).
 *
 * @example
 * ```ts
 * import { sum } from "./reduce.ts";
 * import { tensor } from "./creation.ts";
 * await sum(tensor([[1, 2], [3, 4]]), 1).data(); // Float32Array [3, 7]
 * ```
 */
export function sum(x: Tensor, axes?: Axes, options: ReduceOptions = {}): Tensor {
  const ax = normAxes(axes, x.ndim);
  return finish(x, apply("sum", [x], { axes: ax }), ax, options.keepdims);
}

/**
 * Mean over `axes` (all by default).
 *
 * @example
 * ```ts
 * import { mean } from "./reduce.ts";
 * import { tensor } from "./creation.ts";
 * await mean(tensor([1, 2, 3, 6])).data(); // Float32Array [3]
 * ```
 */
export function mean(x: Tensor, axes?: Axes, options: ReduceOptions = {}): Tensor {
  const ax = normAxes(axes, x.ndim);
  const n = ax.reduce((a, i) => a * x.shape[i], 1);
  return mul(sum(x, ax, options), 1 / n);
}

/**
 * Maximum over `axes`; ties share the gradient evenly.
 *
 * @example
 * ```ts
 * import { max } from "./reduce.ts";
 * import { tensor } from "./creation.ts";
 * await max(tensor([[1, 5], [7, 2]]), 0).data(); // Float32Array [7, 5]
 * ```
 */
export function max(x: Tensor, axes?: Axes, options: ReduceOptions = {}): Tensor {
  const ax = normAxes(axes, x.ndim);
  return finish(x, apply("reduceMax", [x], { axes: ax }), ax, options.keepdims);
}

/** Minimum over `axes`. */
export function min(x: Tensor, axes?: Axes, options: ReduceOptions = {}): Tensor {
  return neg(max(neg(x), axes, options));
}

/**
 * `log Σ exp(x)` over `axes`, computed stably (the maximum is subtracted first and kept out
 * of the gradient, which does not depend on it).
 *
 * @example
 * ```ts
 * import { logsumexp } from "./reduce.ts";
 * import { tensor } from "./creation.ts";
 * await logsumexp(tensor([1000, 1000])).data(); // Float32Array [1000.6931]
 * ```
 */
export function logsumexp(x: Tensor, axes?: Axes, options: ReduceOptions = {}): Tensor {
  const ax = normAxes(axes, x.ndim);
  const m = stopGradient(max(x, ax, { keepdims: true }));
  const r = add(log(sum(exp(sub(x, m)), ax, { keepdims: true })), m);
  return finish(x, r, ax, options.keepdims);
}

/**
 * Variance over `axes` (population variance, divided by n).
 *
 * @example
 * ```ts
 * import { variance } from "./reduce.ts";
 * import { tensor } from "./creation.ts";
 * await variance(tensor([1, 3])).data(); // Float32Array [1]
 * ```
 */
export function variance(x: Tensor, axes?: Axes, options: ReduceOptions = {}): Tensor {
  const ax = normAxes(axes, x.ndim);
  const d = sub(x, mean(x, ax, { keepdims: true }));
  return mean(mul(d, d), ax, options);
}

/**
 * Index of the largest value along `axis` (the first one at ties), as int32.
 *
 * @example
 * ```ts
 * import { argmax } from "./reduce.ts";
 * import { tensor } from "./creation.ts";
 * await argmax(tensor([[1, 9, 3], [7, 0, 7]]), 1).data(); // Int32Array [1, 0]
 * ```
 */
export function argmax(x: Tensor, axis = -1, options: ReduceOptions = {}): Tensor {
  const [ax] = normAxes(axis, x.ndim);
  const m = max(x, ax, { keepdims: true });
  const idx = iota(x.shape, ax, x.dtype);
  const n = x.shape[ax];
  // The first index where x equals the maximum: the minimum over (x == max ? i : n).
  const first = neg(max(neg(where(equal(x, m), idx, n)), ax, options));
  return cast(stopGradient(first), "int32");
}

/** Index of the smallest value along `axis`, as int32. */
export function argmin(x: Tensor, axis = -1, options: ReduceOptions = {}): Tensor {
  return argmax(neg(x), axis, options);
}

/**
 * `x` with no gradient flowing through it.
 *
 * @example
 * ```ts
 * import { stopGradient } from "./reduce.ts";
 * import { tensor } from "./creation.ts";
 * stopGradient(tensor([1])).shape; // [1]
 * ```
 */
export function stopGradient(x: Tensor): Tensor {
  return apply("stopGradient", [x], {});
}
