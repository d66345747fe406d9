/**
 * Dropout (Srivastava et al., 2014), inverted: kept values are scaled by 1 / (1 - rate).
 *
 * @module
 */
import { Tensor } from "../tensor.ts";
import { fmtShape } from "../ir/dtype.ts";
import { greaterEqual, mul, where } from "../ops/elementwise.ts";
import { type RandomKey, uniform } from "../ops/random.ts";

/** Options of {@link dropout}. */
export interface DropoutOptions {
  /** Probability of zeroing an element, in [0, 1]. */
  rate: number;
  /** Drop only in training (default true); otherwise x is returned as is. */
  training?: boolean;
}

/**
 * Zeroes each element with probability `rate` and scales the rest by 1 / (1 - rate).
 * The randomness is a key tensor (`prngKey`, `splitKey`: the mask is drawn in the program, so
 * a compiled step that takes the key as an argument draws a fresh mask for each key), a host
 * key (drawn on the host: inside a compiled step it would be baked into the program), or a
 * tensor of uniform [0, 1) noise shaped like x.
 *
 * @example
 * ```ts
 * import { dropout } from "./dropout.ts";
 * import { randomKey } from "../ops/random.ts";
 * import { ones } from "../ops/creation.ts";
 * const y = dropout(randomKey(0), ones([1000]), { rate: 0.5 });
 * // about half zeros, the rest 2
 * ```
 */
export function dropout(key: RandomKey | Tensor, x: Tensor, options: DropoutOptions): Tensor {
  const rate = options.rate;
  if (!(rate >= 0 && rate <= 1)) {
    throw new RangeError(`dropout: rate must be in [0, 1], got ${rate}`);
  }
  if (!(options.training ?? true) || rate === 0) return x;
  if (rate === 1) return mul(x, 0);
  let noise: Tensor;
  if (key instanceof Tensor && key.dtype === "int32" && key.shape.join() === "2") {
    noise = uniform(key, x.shape, { dtype: x.dtype });
  } else if (key instanceof Tensor) {
    if (key.shape.join() !== x.shape.join() || key.dtype !== x.dtype) {
      throw new RangeError(
        `dropout: noise must be ${x.dtype}${fmtShape(x.shape)} like the input, got ${key.dtype}${
          fmtShape(key.shape)
        }`,
      );
    }
    noise = key;
  } else {
    noise = uniform(key, x.shape, { dtype: x.dtype });
  }
  return where(greaterEqual(noise, rate), mul(x, 1 / (1 - rate)), 0);
}
