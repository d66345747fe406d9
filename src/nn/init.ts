/**
 * Weight initialisers: Kaiming (He et al., 2015) and Xavier (Glorot and Bengio, 2010), in
 * uniform and normal forms. Fans follow this package's layouts: linear weights are
 * [in, out], convolution weights OIHW (fan in = I·H·W, fan out = O·H·W).
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/dtype.ts";
import { normal, type RandomKey, uniform } from "../ops/random.ts";

/**
 * Makes an initial weight tensor of `shape` from `key`; the layers pass `{ dtype }`. Every
 * initialiser of this module is one.
 */
export type Initializer = (
  key: RandomKey,
  shape: readonly number[],
  options?: InitOptions,
) => Tensor;

/** Options of the initialisers. */
export interface InitOptions {
  /** Element type (default float32). */
  dtype?: DType;
  /**
   * Gain: √2 for ReLU (Kaiming's default), √(2 / (1 + a²)) for a leaky slope a, 1 for linear
   * (Xavier's default).
   */
  gain?: number;
  /** Kaiming only: scale by the fan in (default, preserves forward variance) or fan out. */
  mode?: "fanIn" | "fanOut";
}

/**
 * Fan in and fan out of a weight shape: [in, out] for rank 2, OIHW for rank 4 (the
 * receptive field multiplies both), [n] for biases.
 *
 * @example
 * ```ts
 * import { fans } from "./init.ts";
 * fans([64, 3, 3, 3]); // { fanIn: 27, fanOut: 576 }
 * fans([512, 128]);    // { fanIn: 512, fanOut: 128 }
 * ```
 */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length === 1) return { fanIn: shape[0], fanOut: shape[0] };
  if (shape.length === 2) return { fanIn: shape[0], fanOut: shape[1] };
  if (shape.length >= 3) {
    const field = shape.slice(2).reduce((a, b) => a * b, 1);
    return { fanIn: shape[1] * field, fanOut: shape[0] * field };
  }
  throw new RangeError(`fans: expected a weight shape of rank ≥ 1, got ${fmtShape(shape)}`);
}

function fanFor(shape: readonly number[], mode: "fanIn" | "fanOut" | undefined): number {
  const f = fans(shape);
  return mode === "fanOut" ? f.fanOut : f.fanIn;
}

/**
 * Kaiming (He) uniform: U(-b, b) with b = gain · √(3 / fan), gain √2 by default.
 *
 * @example
 * ```ts
 * import { kaimingUniform } from "./init.ts";
 * import { randomKey } from "../ops/random.ts";
 * kaimingUniform(randomKey(0), [16, 3, 3, 3]).shape; // [16, 3, 3, 3]
 * ```
 */
export function kaimingUniform(
  key: RandomKey,
  shape: readonly number[],
  options: InitOptions = {},
): Tensor {
  const b = (options.gain ?? Math.SQRT2) * Math.sqrt(3 / fanFor(shape, options.mode));
  return uniform(key, shape, { min: -b, max: b, dtype: options.dtype });
}

/**
 * Kaiming (He) normal: N(0, σ²) with σ = gain / √fan, gain √2 by default.
 *
 * @example
 * ```ts
 * import { kaimingNormal } from "./init.ts";
 * import { randomKey } from "../ops/random.ts";
 * kaimingNormal(randomKey(0), [64, 32], { mode: "fanOut" }).shape; // [64, 32]
 * ```
 */
export function kaimingNormal(
  key: RandomKey,
  shape: readonly number[],
  options: InitOptions = {},
): Tensor {
  const std = (options.gain ?? Math.SQRT2) / Math.sqrt(fanFor(shape, options.mode));
  return normal(key, shape, { std, dtype: options.dtype });
}

/**
 * Xavier (Glorot) uniform: U(-b, b) with b = gain · √(6 / (fanIn + fanOut)), gain 1.
 *
 * @example
 * ```ts
 * import { xavierUniform } from "./init.ts";
 * import { randomKey } from "../ops/random.ts";
 * xavierUniform(randomKey(0), [128, 10]).shape; // [128, 10]
 * ```
 */
export function xavierUniform(
  key: RandomKey,
  shape: readonly number[],
  options: InitOptions = {},
): Tensor {
  const f = fans(shape);
  const b = (options.gain ?? 1) * Math.sqrt(6 / (f.fanIn + f.fanOut));
  return uniform(key, shape, { min: -b, max: b, dtype: options.dtype });
}

/**
 * Xavier (Glorot) normal: N(0, σ²) with σ = gain · √(2 / (fanIn + fanOut)), gain 1.
 *
 * @example
 * ```ts
 * import { xavierNormal } from "./init.ts";
 * import { randomKey } from "../ops/random.ts";
 * xavierNormal(randomKey(0), [8, 4, 3, 3], { dtype: "float64" }).dtype; // "float64"
 * ```
 */
export function xavierNormal(
  key: RandomKey,
  shape: readonly number[],
  options: InitOptions = {},
): Tensor {
  const f = fans(shape);
  const std = (options.gain ?? 1) * Math.sqrt(2 / (f.fanIn + f.fanOut));
  return normal(key, shape, { std, dtype: options.dtype });
}
