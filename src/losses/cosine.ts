/**
 * Cosine logits between embeddings and class weights, and what they decide: the predicted
 * class, the accuracy, and the large-margin decision rule of CosFace.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { cast, clip, equal, greater, sub, where } from "../ops/elementwise.ts";
import { argmax, max, mean, sum } from "../ops/reduce.ts";
import { transpose } from "../ops/movement.ts";
import { matmul } from "../ops/linalg.ts";
import { oneHot } from "../ops/indexing.ts";
import { checkNumber, checkOperands, type Labels, safeNormalize } from "./_common.ts";
import { fmtShape } from "../ir/dtype.ts";

export type { Labels } from "./_common.ts";

/**
 * `cos θ_ij` between embedding i and class weight j: both sides L2-normalised (a zero vector
 * gives cosine 0), the product clipped to [-1, 1]. Embeddings [B, d], class weights [C, d];
 * the result is [B, C].
 *
 * @example
 * ```ts
 * import { cosineLogits } from "./cosine.ts";
 * import { tensor } from "../ops/creation.ts";
 * const cos = cosineLogits(tensor([[2, 0]]), tensor([[1, 0], [0, 3], [-1, 1]]));
 * await cos.data(); // Float32Array [1, 0, -0.7071]
 * ```
 */
export function cosineLogits(embeddings: Tensor, classWeights: Tensor): Tensor {
  if (embeddings.ndim !== 2 || classWeights.ndim !== 2) {
    throw new RangeError(
      `cosineLogits: expected embeddings [B, d] and class weights [C, d], got ${
        fmtShape(embeddings.shape)
      } and ${fmtShape(classWeights.shape)}`,
    );
  }
  const x = safeNormalize(embeddings);
  const w = safeNormalize(classWeights);
  return clip(matmul(x, transpose(w)), -1, 1);
}

/**
 * The predicted class of each embedding: the class weight of largest cosine (int32 [B]).
 *
 * @example
 * ```ts
 * import { predict } from "./cosine.ts";
 * import { tensor } from "../ops/creation.ts";
 * const w = tensor([[1, 0], [0, 1]]);
 * await predict(tensor([[0.1, 3], [5, -1]]), w).data(); // Int32Array [1, 0]
 * ```
 */
export function predict(embeddings: Tensor, classWeights: Tensor): Tensor {
  return argmax(cosineLogits(embeddings, classWeights), 1);
}

/**
 * The fraction of embeddings whose predicted class (largest cosine) is their label, as a
 * scalar tensor in the embeddings' dtype.
 *
 * @example
 * ```ts
 * import { accuracy } from "./cosine.ts";
 * import { tensor } from "../ops/creation.ts";
 * const w = tensor([[1, 0], [0, 1]]);
 * const x = tensor([[0.1, 3], [5, -1]]);
 * await accuracy(x, w, new Int32Array([1, 1])).data(); // Float32Array [0.5]
 * ```
 */
export function accuracy(embeddings: Tensor, classWeights: Tensor, labels: Labels): Tensor {
  const y = checkOperands("accuracy", embeddings, classWeights, labels);
  const hit = equal(predict(embeddings, classWeights), y);
  return mean(cast(hit, embeddings.dtype));
}

/** Options of {@link marginCorrect}. */
export interface MarginCorrectOptions {
  /** The cosine margin m (default 0.35). */
  m?: number;
}

/**
 * The CosFace (LMCL) decision rule: 1 for each sample with `cos θ_y - m > max_{j≠y} cos θ_j`
 * (correct with margin m to spare), else 0; a [B] tensor in the embeddings' dtype. With
 * m = 0 it is "strictly closest to its own class".
 *
 * @example
 * ```ts
 * import { marginCorrect } from "./cosine.ts";
 * import { tensor } from "../ops/creation.ts";
 * const w = tensor([[1, 0], [0, 1]]);
 * const x = tensor([[1, 0.1], [1, 0.9]]);
 * await marginCorrect(x, w, new Int32Array([0, 0]), { m: 0.35 }).data(); // Float32Array [1, 0]
 * ```
 */
export function marginCorrect(
  embeddings: Tensor,
  classWeights: Tensor,
  labels: Labels,
  options: MarginCorrectOptions = {},
): Tensor {
  const m = options.m ?? 0.35;
  checkNumber("marginCorrect", "m", m);
  const y = checkOperands("marginCorrect", embeddings, classWeights, labels);
  const cos = cosineLogits(embeddings, classWeights);
  const hot = oneHot(y, classWeights.shape[0], cos.dtype);
  const target = sum(where(hot, cos, 0), 1);
  // Cosines lie in [-1, 1], so -2 stands for "no other class".
  const other = max(where(hot, -2, cos), 1);
  return greater(sub(target, m), other);
}
