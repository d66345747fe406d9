// Evaluating a learning rate for a step-count tensor, once per dtype of the parameters.
import { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { cast } from "../ops/elementwise.ts";
import type { LearningRate } from "./schedules.ts";

/** Returns `rate(dtype)`: the learning rate at `step` in that dtype (cached). */
export function rateAt(lr: LearningRate, step: Tensor): (dtype: DType) => number | Tensor {
  const cache = new Map<DType, number | Tensor>();
  return (dtype) => {
    if (typeof lr === "number") return lr;
    let r = cache.get(dtype);
    if (r === undefined) {
      r = (lr as (t: Tensor) => Tensor | number)(cast(step, dtype));
      if (r instanceof Tensor && r.size !== 1) {
        throw new RangeError(`A learning-rate schedule must return a scalar, got ${r}`);
      }
      cache.set(dtype, r);
    }
    return r;
  };
}

/** Checks a constant learning rate. */
export function checkRate(what: string, lr: LearningRate): void {
  if (typeof lr === "number" && !(Number.isFinite(lr) && lr >= 0)) {
    throw new RangeError(`${what}: lr must be a non-negative number or a schedule, got ${lr}`);
  }
  if (typeof lr !== "number" && typeof lr !== "function") {
    throw new TypeError(`${what}: lr must be a number or a schedule, got ${typeof lr}`);
  }
}
