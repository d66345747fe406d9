/**
 * Additive angular margins: ArcFace, and the combined margin `cos(m1 θ + m2) - m3` that
 * contains SphereFace-like (m1), ArcFace (m2) and CosFace (m3) margins.
 *
 * Beyond θ = (π - m2) / m1, `cos(m1 θ + m2)` would rise again (the target logit would grow as
 * the sample moves away from its class). There the target cosine continues as
 * `cos θ - m3 - (1 + cos θ_max)`, the CosFace curve that meets the margin curve at θ_max: the
 * result is continuous and decreasing in θ. For ArcFace (m1 = 1, m2 = m) that is
 * `cos θ - (1 - cos m)`. insightface uses `cos θ - m sin m` there instead, which jumps by
 * `cos m + m sin m - 1` (0.117 at m = 0.5); both agree wherever θ + m ≤ π, i.e. for every
 * sample not within m of the antipode of its class.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import {
  acos,
  add,
  clip,
  cos,
  greater,
  maximum,
  mul,
  sqrt,
  sub,
  where,
} from "../ops/elementwise.ts";
import { checkNumber, checkOperands, type Labels, marginCrossEntropy } from "./_common.ts";
import { cosineLogits } from "./cosine.ts";

/** Margins of {@link combinedMargin}. */
export interface CombinedMarginOptions {
  /** Multiplicative angular margin, positive (default 1). */
  m1?: number;
  /** Additive angular margin, radians, in [0, π) (default 0). */
  m2?: number;
  /** Additive cosine margin (default 0). */
  m3?: number;
  /** Scale (default 64). */
  s?: number;
}

/** Clip distance from ±1 before acos (its derivative is infinite at ±1). */
function acosGuard(t: Tensor): number {
  return t.dtype === "float64" ? 1e-15 : 1e-7;
}

/**
 * The target cosine with combined margins, `cos(m1 θ + m2) - m3`, continued past θ_max (see
 * the module documentation). `t` holds cosines in [-1, 1]; useful to plot margin curves.
 *
 * @example
 * ```ts
 * import { combinedTarget } from "./combined_margin.ts";
 * import { tensor } from "../ops/creation.ts";
 * const t = tensor([1, 0, -1]); // θ = 0, π/2, π
 * await combinedTarget(t, { m1: 1, m2: 0.5, m3: 0 }).data(); // [0.8776, -0.4794, -1.1224]
 * ```
 */
export function combinedTarget(
  t: Tensor,
  margins: { m1: number; m2: number; m3: number },
): Tensor {
  const { m1, m2, m3 } = margins;
  let phi: Tensor;
  if (m1 === 1) {
    // cos(θ + m2) = cos θ cos m2 - sin θ sin m2, without acos; sin θ >= 1e-15 keeps the
    // derivative of the square root finite at θ = 0 and π.
    const sin = sqrt(maximum(sub(1, mul(t, t)), 1e-30));
    phi = sub(sub(mul(t, Math.cos(m2)), mul(sin, Math.sin(m2))), m3);
  } else {
    const g = acosGuard(t);
    const theta = acos(clip(t, -1 + g, 1 - g));
    phi = sub(cos(add(mul(theta, m1), m2)), m3);
  }
  const thetaMax = (Math.PI - m2) / m1;
  if (thetaMax >= Math.PI) return phi;
  const cosMax = Math.cos(thetaMax);
  return where(greater(t, cosMax), phi, sub(t, m3 + 1 + cosMax));
}

/** Checks the margins; `m2Name` is the name the caller knows the angular margin by. */
function checkMargins(
  what: string,
  m1: number,
  m2: number,
  m3: number,
  s: number,
  m2Name = "m2",
): void {
  checkNumber(what, "s", s, true);
  checkNumber(what, "m1", m1, true);
  checkNumber(what, "m3", m3);
  checkNumber(what, m2Name, m2);
  if (m2 < 0 || m2 >= Math.PI) {
    throw new RangeError(`${what}: ${m2Name} must be in [0, π), got ${m2}`);
  }
}

/**
 * The combined margin loss (insightface's CombinedMargin): cross-entropy of `s cos θ_j`, the
 * target logit replaced by `s (cos(m1 θ_y + m2) - m3)`. `{ m1: 1, m2: 0, m3: m }` is CosFace,
 * `{ m1: 1, m2: m, m3: 0 }` ArcFace. Defaults: m1 = 1, m2 = 0, m3 = 0, s = 64 (NSL).
 *
 * @example
 * ```ts
 * import { combinedMargin } from "./combined_margin.ts";
 * import { tensor } from "../ops/creation.ts";
 * const w = tensor([[1, 0], [0, 1]]);
 * const x = tensor([[1, 1]]); // θ = π/4 from both classes
 * const loss = combinedMargin(x, w, new Int32Array([0]), { m1: 1, m2: 0.3, m3: 0.2, s: 8 });
 * await loss.data(); // Float32Array [3.5534]
 * ```
 */
export function combinedMargin(
  embeddings: Tensor,
  classWeights: Tensor,
  labels: Labels,
  options: CombinedMarginOptions = {},
): Tensor {
  const { m1 = 1, m2 = 0, m3 = 0, s = 64 } = options;
  checkMargins("combinedMargin", m1, m2, m3, s);
  const y = checkOperands("combinedMargin", embeddings, classWeights, labels);
  const c = cosineLogits(embeddings, classWeights);
  return marginCrossEntropy(c, y, { scale: s, target: (t) => combinedTarget(t, { m1, m2, m3 }) });
}

/** Options of {@link arcface}. */
export interface ArcFaceOptions {
  /** Scale (default 64). */
  s?: number;
  /** Additive angular margin, radians (default 0.5). */
  m?: number;
  /**
   * Apply the margin only where cos θ_y > 0 and keep cos θ_y elsewhere (ArcFace's "easy
   * margin"; default false).
   */
  easyMargin?: boolean;
}

/**
 * ArcFace's additive angular margin loss (Deng et al., CVPR 2019): the target logit is
 * `s cos(θ_y + m)`, continued monotonically past θ_y = π - m as the module documentation
 * describes (or, with `easyMargin`, `s cos θ_y` wherever cos θ_y ≤ 0).
 *
 * @example
 * ```ts
 * import { arcface } from "./combined_margin.ts";
 * import { tensor } from "../ops/creation.ts";
 * const w = tensor([[1, 0], [0, 1]]);
 * const loss = arcface(tensor([[1, 0]]), w, new Int32Array([0]), { s: 2, m: Math.PI / 2 });
 * await loss.data(); // Float32Array [0.6931] (cos(0 + π/2) = 0 = cos θ of the other class)
 * ```
 */
export function arcface(
  embeddings: Tensor,
  classWeights: Tensor,
  labels: Labels,
  options: ArcFaceOptions = {},
): Tensor {
  const { m = 0.5, s = 64 } = options;
  checkMargins("arcface", 1, m, 0, s, "m");
  const y = checkOperands("arcface", embeddings, classWeights, labels);
  const c = cosineLogits(embeddings, classWeights);
  const target = (t: Tensor) => {
    const phi = combinedTarget(t, { m1: 1, m2: m, m3: 0 });
    return options.easyMargin ? where(greater(t, 0), phi, t) : phi;
  };
  return marginCrossEntropy(c, y, { scale: s, target });
}
