/**
 * Face verification with the LFW protocol: pairs are "same" when their score exceeds a
 * threshold; the threshold is chosen on k-1 folds and accuracy measured on the held-out fold.
 * @module
 */

import { checkFinite, splitSorted, toBinaryLabels } from "./_check.ts";

/** Labels of pairs: `true`/`1` for a same-identity pair, `false`/`0` for a different one. */
export type PairLabels = ArrayLike<boolean> | ArrayLike<number>;

/** The best threshold on a set of scored pairs, and the accuracy it reaches there. */
export interface ThresholdChoice {
  /** Pairs with `score > threshold` are predicted "same". */
  threshold: number;
  /** Fraction of pairs predicted correctly at `threshold`. */
  accuracy: number;
}

/**
 * Chooses the threshold with the highest accuracy on the given pairs (rule: same iff
 * `score > threshold`). Candidates are the midpoints between consecutive distinct scores,
 * plus one below the smallest and one above the largest score; among equally accurate
 * candidates the smallest wins. O(n log n).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { bestThreshold } from "./verification.ts";
 * const best = bestThreshold([0.9, 0.7, 0.2, 0.4], [true, true, false, false]);
 * ok(Math.abs(best.threshold - 0.55) < 1e-12 && best.accuracy === 1);
 * ```
 */
export function bestThreshold(scores: ArrayLike<number>, issame: PairLabels): ThresholdChoice {
  checkFinite(scores, "scores");
  const labels = toBinaryLabels(issame, scores.length);
  if (scores.length === 0) throw new RangeError("Cannot choose a threshold from 0 pairs");
  const { pos, neg } = splitSorted(scores, labels);
  return sweep(pos, neg);
}

/**
 * Fraction of pairs where `score > threshold` agrees with the label.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { verificationAccuracy } from "./verification.ts";
 * ok(verificationAccuracy([0.9, 0.3, 0.6], [true, false, false], 0.5) === 2 / 3);
 * ```
 */
export function verificationAccuracy(
  scores: ArrayLike<number>,
  issame: PairLabels,
  threshold: number,
): number {
  checkFinite(scores, "scores");
  const labels = toBinaryLabels(issame, scores.length);
  if (Number.isNaN(threshold)) throw new RangeError(`Invalid threshold ${threshold}`);
  if (scores.length === 0) throw new RangeError("Cannot measure accuracy on 0 pairs");
  let correct = 0;
  for (let i = 0; i < scores.length; i++) {
    if ((scores[i] > threshold ? 1 : 0) === labels[i]) correct++;
  }
  return correct / scores.length;
}

/** Options of {@linkcode kfoldVerification}. */
export interface KFoldOptions {
  /**
   * Either the number of contiguous, nearly equal folds (default 10: LFW's `pairs.txt` lists
   * 10 consecutive sets of 600 pairs), or one fold id per pair, integers 0..k-1.
   */
  folds?: number | ArrayLike<number>;
}

/** Result of {@linkcode kfoldVerification}. */
export interface KFoldResult {
  /** Mean of the per-fold accuracies. */
  accuracy: number;
  /** Sample standard deviation of the per-fold accuracies (divides by k - 1, as LFW does). */
  std: number;
  /** Standard error of the mean: `std / sqrt(k)`. */
  stdError: number;
  /** Accuracy on each held-out fold, at the threshold chosen on the other folds. */
  foldAccuracies: number[];
  /** Threshold chosen for each fold (on the other k - 1 folds). */
  thresholds: number[];
  /** Number of folds k. */
  folds: number;
}

/**
 * The LFW verification protocol: for each of k folds, picks the most accurate threshold on
 * the other k - 1 folds ({@linkcode bestThreshold}) and measures accuracy on that fold;
 * reports mean accuracy ± standard error. O(k n log n).
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { kfoldVerification } from "./verification.ts";
 * const scores = [0.9, 0.1, 0.8, 0.2];
 * const r = kfoldVerification(scores, [1, 0, 1, 0], { folds: 2 });
 * ok(r.accuracy === 1 && r.stdError === 0 && r.foldAccuracies.length === 2);
 * ```
 */
export function kfoldVerification(
  scores: ArrayLike<number>,
  issame: PairLabels,
  options: KFoldOptions = {},
): KFoldResult {
  checkFinite(scores, "scores");
  const n = scores.length;
  const labels = toBinaryLabels(issame, n);
  const { foldOf, k } = foldIds(options.folds ?? 10, n);
  const foldAccuracies: number[] = [];
  const thresholds: number[] = [];
  for (let f = 0; f < k; f++) {
    const { pos, neg } = splitSorted(scores, labels, (i) => foldOf[i] !== f);
    const { threshold } = sweep(pos, neg);
    let correct = 0;
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (foldOf[i] !== f) continue;
      count++;
      if ((scores[i] > threshold ? 1 : 0) === labels[i]) correct++;
    }
    foldAccuracies.push(correct / count);
    thresholds.push(threshold);
  }
  const mean = foldAccuracies.reduce((a, b) => a + b, 0) / k;
  const ss = foldAccuracies.reduce((a, b) => a + (b - mean) * (b - mean), 0);
  const std = Math.sqrt(ss / (k - 1));
  return {
    accuracy: mean,
    std,
    stdError: std / Math.sqrt(k),
    foldAccuracies,
    thresholds,
    folds: k,
  };
}

/** Resolves the folds option to one fold id per pair, checking every fold is non-empty. */
function foldIds(folds: number | ArrayLike<number>, n: number): { foldOf: Int32Array; k: number } {
  const foldOf = new Int32Array(n);
  if (typeof folds === "number") {
    if (!Number.isInteger(folds) || folds < 2) {
      throw new RangeError(`Invalid fold count ${folds}: expected an integer of at least 2`);
    }
    if (n < folds) {
      throw new RangeError(
        `Cannot split ${n} pairs into ${folds} folds: expected at least one each`,
      );
    }
    for (let f = 0; f < folds; f++) {
      foldOf.fill(f, Math.floor((f * n) / folds), Math.floor(((f + 1) * n) / folds));
    }
    return { foldOf, k: folds };
  }
  if (folds.length !== n) {
    throw new RangeError(`Invalid fold id count ${folds.length}: expected ${n}, one per score`);
  }
  let k = 0;
  for (let i = 0; i < n; i++) {
    const f = folds[i];
    if (!Number.isInteger(f) || f < 0) {
      throw new RangeError(`Invalid fold id ${f} at index ${i}: expected an integer >= 0`);
    }
    foldOf[i] = f;
    if (f + 1 > k) k = f + 1;
  }
  if (k < 2) throw new RangeError(`Invalid fold ids: found ${k} fold(s), expected at least 2`);
  const sizes = new Int32Array(k);
  for (let i = 0; i < n; i++) sizes[foldOf[i]]++;
  const empty = sizes.indexOf(0);
  if (empty >= 0) throw new RangeError(`Invalid fold ids: fold ${empty} of 0..${k - 1} is empty`);
  return { foldOf, k };
}

/** Sweeps thresholds upward over ascending positive and negative scores (see bestThreshold). */
function sweep(pos: Float64Array, neg: Float64Array): ThresholdChoice {
  const total = pos.length + neg.length;
  const lo = Math.min(pos.length ? pos[0] : Infinity, neg.length ? neg[0] : Infinity);
  // Below every score: all pairs predicted "same".
  let correct = pos.length;
  let bestCorrect = correct;
  let bestThresholdValue = lo - Math.max(1, Math.abs(lo));
  let i = 0;
  let j = 0;
  while (i < pos.length || j < neg.length) {
    const v = Math.min(i < pos.length ? pos[i] : Infinity, j < neg.length ? neg[j] : Infinity);
    while (i < pos.length && pos[i] === v) {
      correct--;
      i++;
    }
    while (j < neg.length && neg[j] === v) {
      correct++;
      j++;
    }
    if (correct > bestCorrect) {
      const next = Math.min(i < pos.length ? pos[i] : Infinity, j < neg.length ? neg[j] : Infinity);
      bestCorrect = correct;
      bestThresholdValue = next === Infinity ? v + Math.max(1, Math.abs(v)) : between(v, next);
    }
  }
  return { threshold: bestThresholdValue, accuracy: bestCorrect / total };
}

/** Midpoint of a < b; falls back to a where the midpoint rounds onto an endpoint. */
function between(a: number, b: number): number {
  const m = a + (b - a) / 2;
  return m > a && m < b ? m : a;
}
