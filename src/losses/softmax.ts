/**
 * The plain softmax loss: a linear classifier (no normalisation) and cross-entropy.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { add, where } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { transpose } from "../ops/movement.ts";
import { matmul } from "../ops/linalg.ts";
import { oneHot } from "../ops/indexing.ts";
import { fmtShape } from "../ir/dtype.ts";
import { checkOperands, crossEntropyRows, type Labels } from "./_common.ts";

/** Options of {@link softmaxCrossEntropy}. */
export interface SoftmaxOptions {
  /** Per-class bias [C] added to the logits (default none). */
  bias?: Tensor;
}

/**
 * Mean cross-entropy of the logits `x W^T + b` (embeddings [B, d], class weights [C, d]),
 * computed through a stable log-sum-exp: the "softmax loss" baseline of the margin papers.
 *
 * @example
 * ```ts
 * import { softmaxCrossEntropy } from "./softmax.ts";
 * import { tensor } from "../ops/creation.ts";
 * const loss = softmaxCrossEntropy(tensor([[0, 0]]), tensor([[1, 0], [0, 1]]), new Int32Array([0]));
 * await loss.data(); // Float32Array [0.6931] (= ln 2)
 * ```
 */
export function softmaxCrossEntropy(
  embeddings: Tensor,
  classWeights: Tensor,
  labels: Labels,
  options: SoftmaxOptions = {},
): Tensor {
  const y = checkOperands("softmaxCrossEntropy", embeddings, classWeights, labels);
  const c = classWeights.shape[0];
  let logits = matmul(embeddings, transpose(classWeights));
  if (options.bias !== undefined) {
    const b = options.bias;
    if (b.ndim !== 1 || b.shape[0] !== c || b.dtype !== embeddings.dtype) {
      throw new RangeError(
        `softmaxCrossEntropy: bias must be ${embeddings.dtype}[${c}], got ${b.dtype}${
          fmtShape(b.shape)
        }`,
      );
    }
    logits = add(logits, b);
  }
  const hot = oneHot(y, c, logits.dtype);
  return crossEntropyRows(logits, sum(where(hot, logits, 0), 1), hot);
}
