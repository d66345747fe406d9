/**
 * The normalized softmax loss (NSL) and CosFace's large margin cosine loss (LMCL).
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { sub } from "../ops/elementwise.ts";
import { checkNumber, checkOperands, type Labels, marginCrossEntropy } from "./_common.ts";
import { cosineLogits } from "./cosine.ts";

/** Options of {@link cosface}. */
export interface CosFaceOptions {
  /** Scale s of the cosines (default 64). */
  s?: number;
  /** Cosine margin m subtracted from the target cosine (default 0.35, the paper's value). */
  m?: number;
}

/**
 * CosFace's large margin cosine loss (Wang et al., CVPR 2018, Eq. 4), mean over the batch:
 * `L_i = -log(e^{s(cos θ_y - m)} / (e^{s(cos θ_y - m)} + Σ_{j≠y} e^{s cos θ_j}))`, with
 * cos θ_ij between the L2-normalised embedding [B, d] and class weight [C, d] (see
 * {@link cosineLogits}). Labels are an Int32Array or an int32 tensor [B] (inside a compiled
 * step, pass a tensor: typed arrays would be baked in as constants). Values and gradients are
 * finite for every finite input, zero vectors included.
 *
 * @example
 * ```ts
 * import { cosface } from "./cosface.ts";
 * import { tensor } from "../ops/creation.ts";
 * const w = tensor([[1, 0], [0, 1]]);
 * const loss = cosface(tensor([[1, 0]]), w, new Int32Array([0]), { s: 1, m: 0.5 });
 * await loss.data(); // Float32Array [0.4741] (= ln(1 + e^{-0.5}))
 * ```
 */
export function cosface(
  embeddings: Tensor,
  classWeights: Tensor,
  labels: Labels,
  options: CosFaceOptions = {},
): Tensor {
  const s = options.s ?? 64, m = options.m ?? 0.35;
  checkNumber("cosface", "s", s, true);
  checkNumber("cosface", "m", m);
  const y = checkOperands("cosface", embeddings, classWeights, labels);
  const cos = cosineLogits(embeddings, classWeights);
  return marginCrossEntropy(cos, y, { scale: s, target: (t) => sub(t, m) });
}

/** Options of {@link nsl}. */
export interface NslOptions {
  /** Scale s of the cosines (default 64). */
  s?: number;
}

/**
 * The normalized softmax loss: cross-entropy of `s cos θ_ij` (CosFace with m = 0).
 *
 * @example
 * ```ts
 * import { nsl } from "./cosface.ts";
 * import { tensor } from "../ops/creation.ts";
 * const w = tensor([[1, 0], [-1, 0]]);
 * const loss = nsl(tensor([[0, 1]]), w, new Int32Array([1]), { s: 10 });
 * await loss.data(); // Float32Array [0.6931] (orthogonal to both: ln 2)
 * ```
 */
export function nsl(
  embeddings: Tensor,
  classWeights: Tensor,
  labels: Labels,
  options: NslOptions = {},
): Tensor {
  const s = options.s ?? 64;
  checkNumber("nsl", "s", s, true);
  const y = checkOperands("nsl", embeddings, classWeights, labels);
  const cos = cosineLogits(embeddings, classWeights);
  return marginCrossEntropy(cos, y, { scale: s, target: (t) => t });
}
