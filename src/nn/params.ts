/**
 * Counting parameters.
 *
 * @module
 */
import { flatten } from "../tree/pytree.ts";

/**
 * The number of scalars in a pytree of tensors (parameters, state, gradients, ...).
 *
 * @example
 * ```ts
 * import { paramCount } from "./params.ts";
 * import { zeros } from "../ops/creation.ts";
 * paramCount({ w: zeros([3, 4]), b: [zeros([4])] }); // 16
 * ```
 */
export function paramCount(tree: unknown): number {
  return flatten(tree).leaves.reduce((a, t) => a + t.size, 0);
}
