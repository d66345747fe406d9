/**
 * Closed-set identification with distractors (the MegaFace setting): each probe is ranked
 * against a gallery that holds its identity plus many distractor faces.
 * @module
 */

import { checkFinite, checkRows } from "./_check.ts";
import { l2NormalizeRows } from "./similarity.ts";

/** Embeddings `[n, d]` (row-major) with one integer label per row. */
export interface LabeledEmbeddings {
  /** Row-major `[n, d]` embeddings; `d = embeddings.length / labels.length`. */
  embeddings: Float32Array;
  /** One integer identity per row. */
  labels: ArrayLike<number>;
}

/** The gallery: labeled rows (label -1 marks a distractor) and optional extra distractors. */
export interface Gallery extends LabeledEmbeddings {
  /** More distractor rows `[m, d]`, none of them a probe's identity. */
  distractors?: Float32Array;
}

/** Options of {@linkcode evaluateIdentification}. */
export interface IdentificationOptions {
  /** Length of the CMC curve (ranks 1..maxRank); default 10. */
  maxRank?: number;
  /** Compare by cosine (normalize rows first, the default) or by raw dot product (`false`). */
  normalize?: boolean;
}

/** Result of {@linkcode evaluateIdentification}. */
export interface IdentificationResult {
  /** Fraction of probes whose best gallery match has their identity. */
  rank1: number;
  /** `cmc[r - 1]`: fraction of probes identified within the top r, for r = 1..maxRank. */
  cmc: Float64Array;
  /**
   * Rank of each probe: 1 + the number of gallery rows of other identities (distractors
   * included) scoring at least as high as its best same-identity row. Ties count against
   * the probe.
   */
  ranks: Int32Array;
  /** Number of gallery rows compared against, distractors included. */
  galleryRows: number;
}

/** Gallery rows per cache block (256 rows x 128 dims x 4 B = 128 KiB). */
const ROW_BLOCK = 256;

/**
 * Rank-1 accuracy and the CMC curve of probes against a gallery with distractors.
 *
 * Every probe label must occur in the gallery labels. Scores are computed block by block
 * (no `[probes, gallery]` matrix is kept), with float64 accumulation; 1000 probes against
 * 10,000 rows of dimension 128 take about a second.
 *
 * @example
 * ```ts
 * import { ok } from "node:assert/strict";
 * import { evaluateIdentification } from "./identification.ts";
 * const probes = { embeddings: new Float32Array([1, 0.05, 0, 1]), labels: [7, 8] };
 * const gallery = {
 *   embeddings: new Float32Array([1, 0, 0.2, 1, 1, 0.2]),
 *   labels: [7, 8, -1],
 *   distractors: new Float32Array([0.1, 1]),
 * };
 * const r = evaluateIdentification(probes, gallery, { maxRank: 3 });
 * // Probe 0 (label 7) beats the distractor [1, 0.2]; probe 1 loses to [0.1, 1].
 * ok(r.rank1 === 0.5 && r.ranks.join() === "1,2" && r.cmc[1] === 1);
 * ```
 */
export function evaluateIdentification(
  probes: LabeledEmbeddings,
  gallery: Gallery,
  options: IdentificationOptions = {},
): IdentificationResult {
  const maxRank = options.maxRank ?? 10;
  if (!Number.isInteger(maxRank) || maxRank < 1) {
    throw new RangeError(`Invalid maxRank ${maxRank}: expected a positive integer`);
  }
  const np = probes.labels.length;
  if (np === 0) throw new RangeError("Cannot evaluate identification with 0 probes");
  const d = probes.embeddings.length / np;
  checkRows(probes.embeddings.length, d, "probe embeddings");
  const ng = gallery.labels.length;
  if (gallery.embeddings.length !== ng * d) {
    throw new RangeError(
      `Invalid length ${gallery.embeddings.length} of gallery embeddings: expected ${ng} labels x ${d} dims = ${
        ng * d
      }`,
    );
  }
  const distractors = gallery.distractors ?? new Float32Array(0);
  const nd = checkRows(distractors.length, d, "distractors");
  checkLabels(probes.labels, "probe", 0);
  checkLabels(gallery.labels, "gallery", -1);
  const normalize = options.normalize ?? true;
  const prep = (x: Float32Array, name: string) => {
    if (normalize) return l2NormalizeRows(x, d);
    checkFinite(x, name);
    return x;
  };
  const P = prep(probes.embeddings, "probe embeddings");
  const G = prep(gallery.embeddings, "gallery embeddings");
  const D = prep(distractors, "distractors");

  // Best same-identity score per probe.
  const rowsOf = new Map<number, number[]>();
  for (let g = 0; g < ng; g++) {
    const l = gallery.labels[g];
    if (l === -1) continue;
    const rows = rowsOf.get(l);
    if (rows) rows.push(g);
    else rowsOf.set(l, [g]);
  }
  const genuine = new Float64Array(np);
  for (let p = 0; p < np; p++) {
    const rows = rowsOf.get(probes.labels[p]);
    if (!rows) {
      throw new RangeError(
        `Probe ${p} has label ${
          probes.labels[p]
        }, which no gallery row has: expected every probe identity in the gallery`,
      );
    }
    let best = -Infinity;
    for (const g of rows) {
      let s = 0;
      for (let k = 0; k < d; k++) s += P[p * d + k] * G[g * d + k];
      if (s > best) best = s;
    }
    genuine[p] = best;
  }

  // Impostors scoring >= the genuine score, over the labeled gallery and the distractors.
  const above = new Int32Array(np);
  const labels = { probe: Int32Array.from(probes.labels), row: Int32Array.from(gallery.labels) };
  countAbove(P, G, d, genuine, above, labels);
  countAbove(P, D, d, genuine, above, undefined);

  const ranks = new Int32Array(np);
  const hits = new Float64Array(maxRank); // hits[r]: probes of rank exactly r + 1
  for (let p = 0; p < np; p++) {
    ranks[p] = above[p] + 1;
    if (ranks[p] <= maxRank) hits[ranks[p] - 1]++;
  }
  const cmc = new Float64Array(maxRank);
  let within = 0;
  for (let r = 0; r < maxRank; r++) {
    within += hits[r];
    cmc[r] = within / np;
  }
  return { rank1: cmc[0], cmc, ranks, galleryRows: ng + nd };
}

function checkLabels(labels: ArrayLike<number>, name: string, min: number): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i];
    if (!Number.isInteger(l) || l < min || l > 0x7fffffff) {
      throw new RangeError(
        `Invalid ${name} label ${l} at index ${i}: expected an integer in [${min}, 2^31)${
          min < 0 ? " (-1 marks a distractor)" : ""
        }`,
      );
    }
  }
}

/**
 * For each probe p, adds to `above[p]` the number of rows r with dot(P_p, R_r) >= thr[p],
 * skipping rows whose label equals the probe's (when labels are given). Tiles: ROW_BLOCK rows
 * stay in cache while every probe visits them; 4 probes x 2 rows share each load in the
 * inner loop, and the sums of one row pair are compared at once (no score matrix is kept).
 */
function countAbove(
  P: Float32Array,
  R: Float32Array,
  d: number,
  thr: Float64Array,
  above: Int32Array,
  labels: { probe: Int32Array; row: Int32Array } | undefined,
): void {
  const np = thr.length;
  const nr = (R.length / d) | 0; // an integer, so index arithmetic stays in small integers
  for (let r0 = 0; r0 < nr; r0 += ROW_BLOCK) {
    const r1 = Math.min(nr, r0 + ROW_BLOCK);
    for (let p0 = 0; p0 < np; p0 += 4) countTile(P, R, d, p0, r0, r1, thr, above, labels);
  }
}

/**
 * The micro-kernel of countAbove for probes p0..p0+3 and rows r0..r1-1. A separate small
 * function so V8 optimizes it whole (an on-stack-replaced inner loop kept deoptimizing);
 * a private hot loop, hence the positional arguments.
 */
function countTile(
  P: Float32Array,
  R: Float32Array,
  d: number,
  p0: number,
  r0: number,
  r1: number,
  thr: Float64Array,
  above: Int32Array,
  labels: { probe: Int32Array; row: Int32Array } | undefined,
): void {
  const last = thr.length - 1;
  // A short last tile repeats its last probe, with a threshold nothing reaches.
  const a0 = p0 * d;
  const a1 = Math.min(p0 + 1, last) * d;
  const a2 = Math.min(p0 + 2, last) * d;
  const a3 = Math.min(p0 + 3, last) * d;
  const t0 = thr[p0];
  const t1 = p0 + 1 <= last ? thr[p0 + 1] : Infinity;
  const t2 = p0 + 2 <= last ? thr[p0 + 2] : Infinity;
  const t3 = p0 + 3 <= last ? thr[p0 + 3] : Infinity;
  const l0 = labels ? labels.probe[p0] : 0;
  const l1 = labels ? labels.probe[Math.min(p0 + 1, last)] : 0;
  const l2 = labels ? labels.probe[Math.min(p0 + 2, last)] : 0;
  const l3 = labels ? labels.probe[Math.min(p0 + 3, last)] : 0;
  let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
  for (let r = r0; r < r1; r += 2) {
    const pair = r + 1 < r1;
    const b0 = r * d;
    const b1 = pair ? b0 + d : b0;
    let s00 = 0, s01 = 0, s10 = 0, s11 = 0, s20 = 0, s21 = 0, s30 = 0, s31 = 0;
    for (let k = 0; k < d; k++) {
      const x0 = R[b0 + k];
      const x1 = R[b1 + k];
      const q0 = P[a0 + k];
      const q1 = P[a1 + k];
      const q2 = P[a2 + k];
      const q3 = P[a3 + k];
      s00 += q0 * x0;
      s01 += q0 * x1;
      s10 += q1 * x0;
      s11 += q1 * x1;
      s20 += q2 * x0;
      s21 += q2 * x1;
      s30 += q3 * x0;
      s31 += q3 * x1;
    }
    if (!pair) {
      s01 =
        s11 =
        s21 =
        s31 =
          -Infinity;
    }
    if (labels) {
      const m0 = labels.row[r];
      const m1 = pair ? labels.row[r + 1] : -2;
      if (m0 === l0) s00 = -Infinity;
      if (m1 === l0) s01 = -Infinity;
      if (m0 === l1) s10 = -Infinity;
      if (m1 === l1) s11 = -Infinity;
      if (m0 === l2) s20 = -Infinity;
      if (m1 === l2) s21 = -Infinity;
      if (m0 === l3) s30 = -Infinity;
      if (m1 === l3) s31 = -Infinity;
    }
    c0 += (s00 >= t0 ? 1 : 0) + (s01 >= t0 ? 1 : 0);
    c1 += (s10 >= t1 ? 1 : 0) + (s11 >= t1 ? 1 : 0);
    c2 += (s20 >= t2 ? 1 : 0) + (s21 >= t2 ? 1 : 0);
    c3 += (s30 >= t3 ? 1 : 0) + (s31 >= t3 ? 1 : 0);
  }
  above[p0] += c0;
  if (p0 + 1 <= last) above[p0 + 1] += c1;
  if (p0 + 2 <= last) above[p0 + 2] += c2;
  if (p0 + 3 <= last) above[p0 + 3] += c3;
}
