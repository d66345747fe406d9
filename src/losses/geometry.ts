/**
 * The margin geometry of CosFace (Wang et al., CVPR 2018, Section 3.3): how large the scale
 * s must be, and how large the margin m can be.
 *
 * @module
 */

function checkClasses(what: string, c: number): void {
  if (!Number.isInteger(c) || c < 2) {
    throw new RangeError(`${what}: the number of classes must be an integer ≥ 2, got ${c}`);
  }
}

/**
 * CosFace's lower bound on the scale (Eq. 6): `s ≥ (C-1)/C · ln((C-1) P_W / (1 - P_W))`.
 * With features at their class centres and class weights summing to zero, the target
 * posterior cannot reach P_W with a smaller s; weights on a regular simplex attain the bound.
 * It is negative (no constraint) for P_W ≤ 1/C.
 *
 * @example
 * ```ts
 * import { scaleLowerBound } from "./geometry.ts";
 * scaleLowerBound(10, 0.9);     // 3.955.. (= 0.9 ln 81)
 * scaleLowerBound(10000, 0.99); // 13.8..
 * ```
 */
export function scaleLowerBound(classes: number, pW: number): number {
  checkClasses("scaleLowerBound", classes);
  if (!(pW > 0 && pW < 1)) {
    throw new RangeError(`scaleLowerBound: the posterior P_W must be in (0, 1), got ${pW}`);
  }
  const c = classes;
  return (c - 1) / c * Math.log((c - 1) * pW / (1 - pW));
}

/**
 * CosFace's upper bound on the cosine margin (Eq. 7) for C classes and K-dimensional
 * features: `1 - cos(2π/C)` for K = 2, `C/(C-1)` for C ≤ K + 1 (the two agree where both
 * apply). For C > K + 1 with K > 2 the paper gives only an inequality (the bound is below
 * C/(C-1)), with no closed form, and this function throws a RangeError.
 *
 * @example
 * ```ts
 * import { marginUpperBound } from "./geometry.ts";
 * marginUpperBound(4, 2);   // 1       (1 - cos(π/2))
 * marginUpperBound(10, 512); // 1.11.. (10/9)
 * ```
 */
export function marginUpperBound(classes: number, featureDim: number): number {
  checkClasses("marginUpperBound", classes);
  const c = classes, k = featureDim;
  if (!Number.isInteger(k) || k < 1) {
    throw new RangeError(
      `marginUpperBound: the feature dimension must be an integer ≥ 1, got ${k}`,
    );
  }
  if (k === 2) return 1 - Math.cos(2 * Math.PI / c);
  if (c <= k + 1) return c / (c - 1);
  throw new RangeError(
    `marginUpperBound: no closed form for C = ${c} classes in K = ${k} dimensions (C > K + 1, K > 2); the paper only bounds m by C/(C-1) = ${
      c / (c - 1)
    } from above`,
  );
}
