/**
 * Parametric ReLU (He et al., 2015): one learned negative slope per channel.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/dtype.ts";
import { greater, mul, where } from "../ops/elementwise.ts";
import { reshape } from "../ops/movement.ts";
import { filled, positiveInt } from "./_util.ts";

/** Parameters of {@link prelu}: the slopes [C]. */
export interface PreluParams {
  /** Negative slope of each channel. */
  weight: Tensor;
}

/** Options of {@link initPrelu}. */
export interface PreluInitOptions {
  /** Initial slope (default 0.25, as in the paper and PyTorch). */
  slope?: number;
  /** Element type (default float32). */
  dtype?: DType;
}

/**
 * Slopes of a PReLU over `channels`.
 *
 * @example
 * ```ts
 * import { initPrelu } from "./prelu.ts";
 * await initPrelu(2).weight.data(); // Float32Array [0.25, 0.25]
 * ```
 */
export function initPrelu(channels: number, options: PreluInitOptions = {}): PreluParams {
  positiveInt("initPrelu", "channels", channels);
  return { weight: filled([channels], options.slope ?? 0.25, options.dtype ?? "float32") };
}

/**
 * `x` where positive, `a_c x` elsewhere, with channel c on axis 1 of x [N, C, ...].
 *
 * @example
 * ```ts
 * import { initPrelu, prelu } from "./prelu.ts";
 * import { tensor } from "../ops/creation.ts";
 * await prelu(initPrelu(1), tensor([[-4], [2]])).data(); // Float32Array [-1, 2]
 * ```
 */
export function prelu(params: PreluParams, x: Tensor): Tensor {
  const c = params.weight.shape[0];
  if (x.ndim < 2 || x.shape[1] !== c) {
    throw new RangeError(`prelu: expected [N, ${c}, ...], got ${fmtShape(x.shape)}`);
  }
  const a = reshape(params.weight, x.shape.map((d, i) => i === 1 ? d : 1));
  return where(greater(x, 0), x, mul(x, a));
}
