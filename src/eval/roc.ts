/**
 * ROC analysis of verification scores: the exact curve, AUC, TAR at fixed FAR and EER.
 *
 * A pair is accepted ("same") when `score >= threshold`. The curve has one point per distinct
 * score, so tied scores of positive and negative pairs form one diagonal step (the AUC then
 * credits them 1/2, as the Mann-Whitney U statistic does).
 * @module
 */

import { checkFinite, splitSorted, toBinaryLabels } from "./_check.ts";
import type { PairLabels } from "./verification.ts";

/** An exact ROC curve, from (0, 0) at threshold +Infinity to (1, 1) at the lowest score. */
export interface RocCurve {
  /** Descending thresholds; `thresholds[0]` is `Infinity` (nothing accepted). */
  thresholds: Float64Array;
  /** True positive rate (TAR) at each threshold: `tp / positives`. */
  tpr: Float64Array;
  /** False positive rate (FAR) at each threshold: `fp / negatives`. */
  fpr: Float64Array;
  /** Accepted positive pairs at each threshold (integer counts). */
  tp: Float64Array;
  /** Accepted negative pairs at each threshold (integer counts). */
  fp: Float64Array;
  /** Number of positive (same) pairs. */
  positives: number;
  /** Number of negative (different) pairs. */
  negatives: number;
}

/**
 * Computes the exact ROC curve of scored pairs in O(n log n).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { rocCurve } from "./roc.ts";
 * const roc = rocCurve([0.9, 0.8, 0.3], [true, false, true]);
 * ok(roc.fpr.join() === "0,0,1,1" && roc.tpr.join() === "0,0.5,0.5,1");
 * ```
 */
export function rocCurve(scores: ArrayLike<number>, issame: PairLabels): RocCurve {
  checkFinite(scores, "scores");
  const labels = toBinaryLabels(issame, scores.length);
  const { pos, neg } = splitSorted(scores, labels);
  const P = pos.length;
  const N = neg.length;
  if (P === 0 || N === 0) {
    throw new RangeError(
      `Cannot compute a ROC curve from ${P} positive and ${N} negative pairs: expected at least one of each`,
    );
  }
  const thresholds = [Infinity];
  const tp = [0];
  const fp = [0];
  let i = P - 1;
  let j = N - 1;
  let t = 0;
  let f = 0;
  while (i >= 0 || j >= 0) {
    const v = Math.max(i >= 0 ? pos[i] : -Infinity, j >= 0 ? neg[j] : -Infinity);
    while (i >= 0 && pos[i] === v) {
      t++;
      i--;
    }
    while (j >= 0 && neg[j] === v) {
      f++;
      j--;
    }
    thresholds.push(v);
    tp.push(t);
    fp.push(f);
  }
  return {
    thresholds: Float64Array.from(thresholds),
    tpr: Float64Array.from(tp, (x) => x / P),
    fpr: Float64Array.from(fp, (x) => x / N),
    tp: Float64Array.from(tp),
    fp: Float64Array.from(fp),
    positives: P,
    negatives: N,
  };
}

/**
 * Area under the ROC curve by the trapezoid rule, computed from integer counts. It equals the
 * probability that a random positive pair outscores a random negative one, ties counting 1/2.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { auc, rocCurve } from "./roc.ts";
 * ok(auc(rocCurve([0.9, 0.8, 0.3], [1, 0, 1])) === 0.5);
 * ```
 */
export function auc(roc: RocCurve): number {
  let twice = 0;
  for (let k = 1; k < roc.tp.length; k++) {
    twice += (roc.fp[k] - roc.fp[k - 1]) * (roc.tp[k] + roc.tp[k - 1]);
  }
  return twice / (2 * roc.positives * roc.negatives);
}

/** One entry of {@linkcode tarAtFar}. */
export interface TarAtFar {
  /** The requested false accept rate. */
  far: number;
  /**
   * Highest true accept rate whose false accept rate is at most `far`; `null` when
   * `far < 1 / negatives`, too few negative pairs to measure such a rate (see `note`).
   */
  tar: number | null;
  /** Threshold reaching `tar` (accept when `score >= threshold`); `null` with `tar`. */
  threshold: number | null;
  /** False accept rate actually reached at `threshold` (<= `far`); `null` with `tar`. */
  achievedFar: number | null;
  /** Why `tar` is `null`; absent otherwise. */
  note?: string;
}

/** Options of {@linkcode tarAtFar}. */
export interface TarAtFarOptions {
  /** False accept rates to report; default `[1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6]`. */
  fars?: number[];
}

/**
 * True accept rate at fixed false accept rates, read off the exact ROC curve without
 * interpolation: the best TAR among thresholds with FAR <= the target. A FAR below
 * `1 / negatives` cannot be measured with that many negative pairs: its entry has
 * `tar: null` and a `note` saying how many negatives it would need.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { rocCurve, tarAtFar } from "./roc.ts";
 * const roc = rocCurve([0.9, 0.7, 0.5, 0.6, 0.2], [1, 1, 1, 0, 0]);
 * const [a, b] = tarAtFar(roc, { fars: [0.5, 0.1] });
 * ok(a.tar === 1 && a.threshold === 0.5 && a.achievedFar === 0.5);
 * ok(b.tar === null); // 2 negative pairs cannot measure a FAR of 0.1
 * ```
 */
export function tarAtFar(roc: RocCurve, options: TarAtFarOptions = {}): TarAtFar[] {
  const fars = options.fars ?? [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
  const N = roc.negatives;
  return fars.map((far) => {
    if (!(far >= 0 && far <= 1)) {
      throw new RangeError(`Invalid false accept rate ${far}: expected a number in [0, 1]`);
    }
    // A relative tolerance keeps e.g. 1e-3 * 1000 from rounding below 1.
    const maxFp = Math.floor(far * N * (1 + 1e-12));
    if (maxFp < 1) {
      const need = far > 0 ? Math.ceil(1 / far - 1e-9) : Infinity;
      return {
        far,
        tar: null,
        threshold: null,
        achievedFar: null,
        note: `FAR ${far} needs at least ${need} negative pairs, have ${N}`,
      };
    }
    // fp is non-decreasing along the curve: take the last point with fp <= maxFp.
    let k = 0;
    while (k + 1 < roc.fp.length && roc.fp[k + 1] <= maxFp) k++;
    return { far, tar: roc.tpr[k], threshold: roc.thresholds[k], achievedFar: roc.fpr[k] };
  });
}

/** Result of {@linkcode equalErrorRate}. */
export interface EqualErrorRate {
  /** The rate where false accept rate = false reject rate, on the piecewise-linear ROC. */
  eer: number;
  /** Threshold of the first ROC point at or past the crossing (accept when `score >= it`). */
  threshold: number;
}

/**
 * Equal error rate: where the ROC polyline crosses FAR = 1 - TAR (linear interpolation
 * inside the crossing segment).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { equalErrorRate, rocCurve } from "./roc.ts";
 * const roc = rocCurve([0.9, 0.6, 0.4, 0.7, 0.3, 0.2], [1, 1, 1, 0, 0, 0]);
 * ok(Math.abs(equalErrorRate(roc).eer - 1 / 3) < 1e-15);
 * ```
 */
export function equalErrorRate(roc: RocCurve): EqualErrorRate {
  const P = roc.positives;
  const N = roc.negatives;
  // g = (fpr + tpr - 1) * P * N, exact in integers; it rises from -P*N to +P*N.
  const g = (k: number) => roc.fp[k] * P + roc.tp[k] * N - P * N;
  let k = 0;
  while (g(k) < 0) k++;
  if (g(k) === 0 || k === 0) return { eer: roc.fpr[k], threshold: roc.thresholds[k] };
  const g0 = g(k - 1);
  const s = -g0 / (g(k) - g0);
  const fp = roc.fp[k - 1] + s * (roc.fp[k] - roc.fp[k - 1]);
  return { eer: fp / N, threshold: roc.thresholds[k] };
}
