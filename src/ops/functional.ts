/**
 * Functions built from the primitives: softmax, log-softmax, L2 normalisation.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { maximum, mul, rsqrt, sqrt, sub } from "./elementwise.ts";
import { logsumexp, sum } from "./reduce.ts";
import { exp } from "./elementwise.ts";

/**
 * `log(softmax(x))` along `axis`, computed as `x - logsumexp(x)` (stable).
 *
 * @example
 * ```ts
 * import { logSoftmax } from "./functional.ts";
 * import { tensor } from "./creation.ts";
 * await logSoftmax(tensor([0, 0])).data(); // Float32Array [-0.6931, -0.6931]
 * ```
 */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return sub(x, logsumexp(x, axis, { keepdims: true }));
}

/**
 * Softmax along `axis`.
 *
 * @example
 * ```ts
 * import { softmax } from "./functional.ts";
 * import { tensor } from "./creation.ts";
 * await softmax(tensor([1000, 1000])).data(); // Float32Array [0.5, 0.5]
 * ```
 */
export function softmax(x: Tensor, axis = -1): Tensor {
  return exp(logSoftmax(x, axis));
}

/** Options of {@link l2Normalize}. */
export interface L2NormalizeOptions {
  /** Axis along which vectors lie (default -1). */
  axis?: number;
  /** Lower bound of the norm, so zero vectors give zeros, not NaN (default 1e-12). */
  epsilon?: number;
}

/**
 * `x / max(|x|, eps)` along `axis`: unit vectors, and zero vectors stay zero with a finite
 * gradient.
 *
 * @example
 * ```ts
 * import { l2Normalize } from "./functional.ts";
 * import { tensor } from "./creation.ts";
 * await l2Normalize(tensor([[3, 4]])).data(); // Float32Array [0.6, 0.8]
 * ```
 */
export function l2Normalize(x: Tensor, options: L2NormalizeOptions = {}): Tensor {
  const eps = options.epsilon ?? 1e-12;
  const sq = sum(mul(x, x), options.axis ?? -1, { keepdims: true });
  // max(|x|, eps) = sqrt(max(|x|^2, eps^2)); the max keeps the gradient finite at zero.
  return mul(x, rsqrt(maximum(sq, eps * eps)));
}

/**
 * Euclidean norm along `axis`.
 *
 * @example
 * ```ts
 * import { norm } from "./functional.ts";
 * import { tensor } from "./creation.ts";
 * await norm(tensor([[3, 4]])).data(); // Float32Array [5]
 * ```
 */
export function norm(x: Tensor, axis = -1, options: { keepdims?: boolean } = {}): Tensor {
  return sqrt(sum(mul(x, x), axis, options));
}
