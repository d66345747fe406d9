/**
 * The optimizer interface: pure functions over parameter pytrees.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { tensor } from "../ops/creation.ts";

/**
 * An optimizer: `init(params)` makes its state, `update(grads, state, params)` returns the
 * new parameters and state. Both are pure, so an update can run inside `compile` (donate the
 * parameters and state). The state holds the step count as an int32 scalar tensor.
 */
export interface Optimizer<S extends OptState = OptState> {
  /** The initial state for `params`. */
  init<P>(params: P): S;
  /** One update: gradients shaped like the parameters. */
  update<P>(grads: P, state: S, params: P): { params: P; state: S };
}

/** Every optimizer state has the step count: updates done so far, an int32 scalar tensor. */
export interface OptState {
  /** Updates done so far. */
  step: Tensor;
}

/**
 * A fresh step counter: int32 zero of shape [].
 *
 * @example
 * ```ts
 * import { stepCounter } from "./optimizer.ts";
 * await stepCounter().data(); // Int32Array [0]
 * ```
 */
export function stepCounter(): Tensor {
  return tensor(new Int32Array([0]), [], { dtype: "int32" });
}
