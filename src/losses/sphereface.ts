/**
 * SphereFace's A-Softmax loss with the multiplicative angular margin (Liu et al., CVPR 2017),
 * and the annealing schedule of λ from the authors' Caffe code.
 *
 * @module
 */
import { Tensor } from "../tensor.ts";
import { add, div, floor, lessEqual, mul, sub } from "../ops/elementwise.ts";
import { fmtShape } from "../ir/dtype.ts";
import { reshape } from "../ops/movement.ts";
import {
  checkNumber,
  checkOperands,
  type Labels,
  marginCrossEntropy,
  safeNorm,
} from "./_common.ts";
import { cosineLogits } from "./cosine.ts";

/** Options of {@link sphereface}. */
export interface SphereFaceOptions {
  /** The integer angular margin m ≥ 1 (default 4, the paper's choice). */
  m?: number;
  /**
   * The annealing weight λ ≥ 0 (default 0: the pure A-Softmax target ψ(θ)): a number, or a
   * scalar tensor so that a compiled step can take the current value of
   * {@link spherefaceLambda} as an argument without tracing again.
   */
  lambda?: number | Tensor;
}

/** `cos(m θ)` from `cos θ` by Chebyshev's recurrence T_{n+1} = 2 c T_n - T_{n-1}. */
function chebyshev(c: Tensor, m: number): Tensor {
  let prev: Tensor | number = 1;
  let cur: Tensor = c;
  for (let n = 1; n < m; n++) [prev, cur] = [cur, sub(mul(mul(c, cur), 2), prev)];
  return cur;
}

/**
 * ψ(θ) = (-1)^k cos(mθ) - 2k for θ in [kπ/m, (k+1)π/m]: decreasing in θ and continuously
 * differentiable, computed from cos θ without acos (k counts the thresholds cos(jπ/m) at or
 * above cos θ, and carries no gradient).
 *
 * @example
 * ```ts
 * import { spherefacePsi } from "./sphereface.ts";
 * import { tensor } from "../ops/creation.ts";
 * const t = tensor([1, Math.SQRT1_2, 0, -1]); // θ = 0, π/4, π/2, π
 * await spherefacePsi(t, 4).data(); // [1, -1, -3, -7]
 * ```
 */
export function spherefacePsi(c: Tensor, m: number): Tensor {
  let k: Tensor | number = 0;
  for (let j = 1; j < m; j++) k = add(lessEqual(c, Math.cos(j * Math.PI / m)), k);
  if (typeof k === "number") return chebyshev(c, m);
  const odd = sub(k, mul(floor(mul(k, 0.5)), 2));
  const sign = sub(1, mul(odd, 2));
  return sub(mul(sign, chebyshev(c, m)), mul(k, 2));
}

/**
 * SphereFace (A-Softmax), mean over the batch. Class weights are normalised, embeddings are
 * not: logit j is `|x| cos θ_j`, and the target logit is
 * `|x| (λ cos θ_y + ψ(θ_y)) / (1 + λ)` with ψ(θ) = (-1)^k cos(mθ) - 2k. Training anneals λ
 * from large values (nearly plain softmax) down to a floor, see {@link spherefaceLambda}.
 *
 * @example
 * ```ts
 * import { sphereface } from "./sphereface.ts";
 * import { tensor } from "../ops/creation.ts";
 * const w = tensor([[1, 0], [0, 1]]);
 * // θ_y = π/4, m = 4: ψ = cos(π) = -1, target logit -2√2 (|x| = 2√2), other logit 2
 * const loss = sphereface(tensor([[2, 2]]), w, new Int32Array([0]), { m: 4 });
 * await loss.data(); // Float32Array [4.8364] (= ln(1 + e^{2 + 2√2}))
 * ```
 */
export function sphereface(
  embeddings: Tensor,
  classWeights: Tensor,
  labels: Labels,
  options: SphereFaceOptions = {},
): Tensor {
  const m = options.m ?? 4;
  if (!Number.isInteger(m) || m < 1) {
    throw new RangeError(`sphereface: m must be an integer ≥ 1, got ${m}`);
  }
  const lambda = options.lambda ?? 0;
  if (typeof lambda === "number") {
    checkNumber("sphereface", "lambda", lambda);
    if (lambda < 0) throw new RangeError(`sphereface: lambda must be ≥ 0, got ${lambda}`);
  } else if (!(lambda instanceof Tensor) || lambda.size !== 1) {
    throw new TypeError(
      `sphereface: lambda must be a number or a one-element tensor, got ${
        lambda instanceof Tensor ? fmtShape(lambda.shape) : typeof lambda
      }`,
    );
  }
  const y = checkOperands("sphereface", embeddings, classWeights, labels);
  const cos = cosineLogits(embeddings, classWeights);
  let target: (t: Tensor) => Tensor;
  if (lambda instanceof Tensor) {
    if (lambda.dtype !== embeddings.dtype) {
      throw new TypeError(
        `sphereface: lambda is ${lambda.dtype} but the embeddings are ${embeddings.dtype}`,
      );
    }
    const lam = reshape(lambda, []);
    target = (t) => div(add(mul(t, lam), spherefacePsi(t, m)), add(lam, 1));
  } else {
    target = (t) => mul(add(mul(t, lambda), spherefacePsi(t, m)), 1 / (1 + lambda));
  }
  return marginCrossEntropy(cos, y, { scale: safeNorm(embeddings), target });
}

/** Options of {@link spherefaceLambda}. */
export interface SpherefaceLambdaOptions {
  /** λ at step 0 (default 1000). */
  base?: number;
  /** Decay rate (default 0.12). */
  gamma?: number;
  /** Decay power (default 1). */
  power?: number;
  /** The floor (default 5). */
  lambdaMin?: number;
}

/**
 * The annealed λ of SphereFace's Caffe layer (`margin_inner_product_layer`):
 * `max(lambdaMin, base (1 + gamma step)^(-power))`; defaults are the released model's
 * (base 1000, gamma 0.12, power 1, lambdaMin 5).
 *
 * @example
 * ```ts
 * import { spherefaceLambda } from "./sphereface.ts";
 * spherefaceLambda(0);     // 1000
 * spherefaceLambda(100);   // 76.92...
 * spherefaceLambda(10000); // 5
 * ```
 */
export function spherefaceLambda(step: number, options: SpherefaceLambdaOptions = {}): number {
  const { base = 1000, gamma = 0.12, power = 1, lambdaMin = 5 } = options;
  if (!Number.isFinite(step) || step < 0) {
    throw new RangeError(`spherefaceLambda: step must be a non-negative number, got ${step}`);
  }
  return Math.max(lambdaMin, base * Math.pow(1 + gamma * step, -power));
}
