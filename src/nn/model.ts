/**
 * The interface every model of this package implements: `init` makes parameters and state
 * (batch-norm running statistics), `apply` is a pure function of both.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { RandomKey } from "../ops/random.ts";

/** Options of {@link Model.apply}. */
export interface ApplyOptions {
  /** Training mode: batch statistics (and dropout, where a model has it). */
  training: boolean;
  /**
   * Randomness for dropout: a key, or (in a compiled step) a tensor of uniform noise of the
   * shape the model documents.
   */
  key?: RandomKey | Tensor;
}

/** A model: parameters and state from `init`, outputs and new state from `apply`. */
export interface Model<O, P, S> {
  /** Fresh parameters and state. */
  init(key: RandomKey, options?: O): { params: P; state: S };
  /** The output for input x, and the new state (unchanged in eval mode). */
  apply(params: P, state: S, x: Tensor, options: ApplyOptions): { out: Tensor; state: S };
}
