// Shared pieces of the losses: overflow-safe normalisation, label checks, and the
// cross-entropy over logits whose target entry is replaced by a margin function.
import { fmtShape } from "../ir/dtype.ts";
import { Tensor } from "../tensor.ts";
import { tensor } from "../ops/creation.ts";
import { abs, div, maximum, mul, sub, where } from "../ops/elementwise.ts";
import { logsumexp, max, mean, stopGradient, sum } from "../ops/reduce.ts";
import { expandDims, reshape } from "../ops/movement.ts";
import { oneHot } from "../ops/indexing.ts";
import { l2Normalize } from "../ops/functional.ts";

/** Labels: an Int32Array (checked on the host) or an int32 tensor of shape [B]. */
export type Labels = Int32Array | Tensor;

/**
 * `x / max(|x|, 1e-12)` along the last axis, like `l2Normalize`, but computed on `x / m`,
 * m = max(max|x|, 2e-12), so squares neither overflow (|x| > 1.8e19 in float32) nor
 * underflow. Dividing by a stopped-gradient scale is exact for a scale-invariant function:
 * the gradient is the same. For max|x| ≥ 2e-12, |x / m| ≥ 1 and the epsilon 0.5 never binds
 * (with epsilon 1 it would tie with |x / m| = 1 for one-hot-like vectors, and the maximum
 * would halve that part of the gradient); below, the result is x / max(|x|, 1e-12).
 */
export function safeNormalize(x: Tensor): Tensor {
  const m = stopGradient(maximum(max(abs(x), -1, { keepdims: true }), 2e-12));
  return l2Normalize(div(x, m), { epsilon: 0.5 });
}

/** `|x|` along the last axis (keepdims), overflow-safe and with a zero gradient at 0. */
export function safeNorm(x: Tensor): Tensor {
  return sum(mul(x, safeNormalize(x)), -1, { keepdims: true });
}

/** Checks the operands of a loss and returns the labels as an int32 tensor. */
export function checkOperands(
  what: string,
  emb: Tensor,
  weights: Tensor,
  labels: Labels,
): Tensor {
  if (emb.ndim !== 2) {
    throw new RangeError(`${what}: embeddings must be [B, d], got ${fmtShape(emb.shape)}`);
  }
  if (weights.ndim !== 2 || weights.shape[1] !== emb.shape[1]) {
    throw new RangeError(
      `${what}: class weights must be [C, ${emb.shape[1]}] to match embeddings ${
        fmtShape(emb.shape)
      }, got ${fmtShape(weights.shape)}`,
    );
  }
  if (emb.dtype !== weights.dtype) {
    throw new TypeError(
      `${what}: embeddings are ${emb.dtype} but class weights are ${weights.dtype}`,
    );
  }
  if (emb.dtype === "int32") throw new TypeError(`${what}: embeddings must be float, got int32`);
  return labelTensor(what, labels, emb.shape[0], weights.shape[0]);
}

/** Labels as an int32 tensor of shape [batch]; host labels are range-checked. */
export function labelTensor(what: string, labels: Labels, batch: number, classes: number): Tensor {
  if (labels instanceof Int32Array) {
    labels.forEach((l, i) => {
      if (l < 0 || l >= classes) {
        throw new RangeError(`${what}: label ${l} at index ${i} is outside [0, ${classes})`);
      }
    });
    labels = tensor(labels, [labels.length], { dtype: "int32" });
  }
  if (!(labels instanceof Tensor)) {
    throw new TypeError(`${what}: labels must be an Int32Array or an int32 tensor`);
  }
  if (labels.dtype !== "int32") {
    throw new TypeError(`${what}: labels must be int32, got ${labels.dtype}`);
  }
  if (labels.ndim !== 1 || labels.shape[0] !== batch) {
    throw new RangeError(
      `${what}: expected ${batch} labels (shape [${batch}]), got ${fmtShape(labels.shape)}`,
    );
  }
  return labels;
}

/** Checks that `v` is a finite number (or, for `s`, a positive one). */
export function checkNumber(what: string, name: string, v: number, positive = false): void {
  if (typeof v !== "number" || !Number.isFinite(v) || (positive && v <= 0)) {
    throw new RangeError(
      `${what}: ${name} must be a finite${positive ? " positive" : ""} number, got ${v}`,
    );
  }
}

/**
 * Mean cross-entropy of logits `scale * cos`, except that the target entry of row i is
 * `scale_i * target(cos_iy)`. The target function sees the target cosines [B] only, so margin
 * arithmetic (acos, cos, ...) runs on B values, not B x C. Rows whose label matched no class
 * (an int32 tensor label out of range) give an infinite or NaN loss instead of a silent one.
 */
export function marginCrossEntropy(
  cos: Tensor,
  labels: Tensor,
  options: { scale: number | Tensor; target: (t: Tensor) => Tensor },
): Tensor {
  const [, c] = cos.shape;
  const hot = oneHot(labels, c, cos.dtype);
  const t = sum(where(hot, cos, 0), 1);
  const scale = options.scale;
  const targetLogit = mul(
    options.target(t),
    typeof scale === "number" ? scale : reshape(scale, [-1]),
  );
  const logits = where(hot, expandDims(targetLogit, 1), mul(cos, scale));
  return crossEntropyRows(logits, targetLogit, hot);
}

/** Mean of `logsumexp(logits_i) - target_i`, divided by the label count of row i (1). */
export function crossEntropyRows(logits: Tensor, target: Tensor, hot: Tensor): Tensor {
  const valid = sum(hot, 1);
  return mean(div(sub(logsumexp(logits, 1), target), valid));
}
