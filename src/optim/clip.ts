/**
 * Gradient clipping by the global norm.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { add, cast, div, minimum, mul, sqrt } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { scalar } from "../ops/creation.ts";
import { flatten, treeMap } from "../tree/pytree.ts";

/**
 * The Euclidean norm of all leaves of a pytree together, as a scalar tensor (in the dtype of
 * the first leaf).
 *
 * @example
 * ```ts
 * import { globalNorm } from "./clip.ts";
 * import { tensor } from "../ops/creation.ts";
 * await globalNorm({ a: tensor([3]), b: [tensor([4])] }).data(); // Float32Array [5]
 * ```
 */
export function globalNorm(tree: unknown): Tensor {
  const { leaves } = flatten(tree);
  if (leaves.length === 0) return scalar(0);
  const dtype = leaves[0].dtype;
  const sq = leaves.map((l) => cast(sum(mul(l, l)), dtype)).reduce((a, b) => add(a, b));
  return sqrt(sq);
}

/**
 * Scales all gradients by `min(1, maxNorm / (norm + 1e-6))`, norm being their
 * {@link globalNorm} (as PyTorch's `clip_grad_norm_`): their direction is kept and their joint
 * norm is at most `maxNorm`.
 *
 * @example
 * ```ts
 * import { clipByGlobalNorm } from "./clip.ts";
 * import { tensor } from "../ops/creation.ts";
 * const g = clipByGlobalNorm({ a: tensor([3]), b: tensor([4]) }, 1);
 * await g.a.data(); // Float32Array [0.6]
 * ```
 */
export function clipByGlobalNorm<T>(grads: T, maxNorm: number): T {
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) {
    throw new RangeError(`clipByGlobalNorm: maxNorm must be a positive number, got ${maxNorm}`);
  }
  const norm = globalNorm(grads);
  const factor = minimum(div(maxNorm, add(norm, 1e-6)), 1);
  return treeMap((g: Tensor) => mul(g, cast(factor, g.dtype)), grads);
}
