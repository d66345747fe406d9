// Small helpers of the layers.
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { tensor } from "../ops/creation.ts";
import { normal } from "../ops/random.ts";
import type { Initializer } from "./init.ts";

/** A realized (memory-backed, not symbolic) tensor of `shape` filled with `value`. */
export function filled(shape: readonly number[], value: number, dtype: DType): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return tensor(new Float64Array(n).fill(value), shape, { dtype });
}

/** Throws unless `v` is a positive integer. */
export function positiveInt(what: string, name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1) {
    throw new RangeError(`${what}: ${name} must be a positive integer, got ${v}`);
  }
}

/** Output size of a 3x3 convolution with stride 2 and padding 1. */
export function halve(n: number): number {
  return Math.floor((n - 1) / 2) + 1;
}

/** N(0, 0.01²): the initialiser of SphereFace's residual convolutions. */
export const gaussian001: Initializer = (key, shape, options) =>
  normal(key, shape, { std: 0.01, dtype: options?.dtype });

/** N(0, 0.1²): insightface's iresnet convolution initialiser. */
export const gaussian01: Initializer = (key, shape, options) =>
  normal(key, shape, { std: 0.1, dtype: options?.dtype });
