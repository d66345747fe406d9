/**
 * The fully connected layer.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/dtype.ts";
import { add } from "../ops/elementwise.ts";
import { matmul } from "../ops/linalg.ts";
import { filled, positiveInt } from "./_util.ts";
import type { RandomKey } from "../ops/random.ts";
import { type Initializer, kaimingUniform } from "./init.ts";

/** Parameters of {@link linear}: weight [in, out], optional bias [out]. */
export interface LinearParams {
  /** The weight, [inFeatures, outFeatures]. */
  weight: Tensor;
  /** The bias, [outFeatures]. */
  bias?: Tensor;
}

/** Options of {@link initLinear}. */
export interface LinearInitOptions {
  /** Input features. */
  inFeatures: number;
  /** Output features. */
  outFeatures: number;
  /** Whether to add a bias, initialised to zero (default true). */
  bias?: boolean;
  /** Weight initialiser (default Kaiming uniform, gain √2). */
  init?: Initializer;
  /** Element type (default float32). */
  dtype?: DType;
}

/**
 * Parameters of a fully connected layer.
 *
 * @example
 * ```ts
 * import { initLinear } from "./linear.ts";
 * import { randomKey } from "../ops/random.ts";
 * const p = initLinear(randomKey(0), { inFeatures: 4, outFeatures: 2 });
 * p.weight.shape; // [4, 2]
 * ```
 */
export function initLinear(key: RandomKey, options: LinearInitOptions): LinearParams {
  const { inFeatures, outFeatures, dtype = "float32" } = options;
  positiveInt("initLinear", "inFeatures", inFeatures);
  positiveInt("initLinear", "outFeatures", outFeatures);
  const weight = (options.init ?? kaimingUniform)(key, [inFeatures, outFeatures], { dtype });
  return options.bias ?? true ? { weight, bias: filled([outFeatures], 0, dtype) } : { weight };
}

/**
 * `x W + b` for x [..., in].
 *
 * @example
 * ```ts
 * import { linear } from "./linear.ts";
 * import { tensor } from "../ops/creation.ts";
 * const y = linear({ weight: tensor([[1, 0], [0, 2]]), bias: tensor([1, 1]) }, tensor([[3, 4]]));
 * await y.data(); // Float32Array [4, 9]
 * ```
 */
export function linear(params: LinearParams, x: Tensor): Tensor {
  const w = params.weight;
  if (x.shape[x.ndim - 1] !== w.shape[0]) {
    throw new RangeError(
      `linear: input ${fmtShape(x.shape)} does not match weight ${fmtShape(w.shape)} ([in, out])`,
    );
  }
  const y = matmul(x, w);
  return params.bias === undefined ? y : add(y, params.bias);
}
