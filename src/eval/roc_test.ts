import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { auc, equalErrorRate, rocCurve, tarAtFar } from "./roc.ts";
import { mulberry32 } from "./_random.ts";

const close = (a: number, b: number, tol = 1e-12) => ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

/** Random scores quantized to `levels` values, so positives and negatives tie often. */
function tiedScores(seed: number, n: number, levels: number) {
  const rand = mulberry32(seed);
  const issame = Array.from({ length: n }, () => rand() < 0.4);
  const scores = new Float32Array(issame.map((s) => Math.floor((rand() + (s ? 0.5 : 0)) * levels)));
  return { scores, issame };
}

Deno.test("rocCurve() lists every distinct threshold with exact rates", () => {
  const { scores, issame } = tiedScores(1, 200, 9);
  const roc = rocCurve(scores, issame);
  const P = issame.filter((s) => s).length;
  const N = issame.length - P;
  strictEqual(roc.positives, P);
  strictEqual(roc.negatives, N);
  const distinct = [...new Set(scores)].sort((a, b) => b - a);
  deepStrictEqual(Array.from(roc.thresholds), [Infinity, ...distinct]);
  for (let k = 0; k < roc.thresholds.length; k++) {
    const t = roc.thresholds[k];
    const tp = issame.filter((s, i) => s && scores[i] >= t).length;
    const fp = issame.filter((s, i) => !s && scores[i] >= t).length;
    strictEqual(roc.tpr[k], tp / P);
    strictEqual(roc.fpr[k], fp / N);
  }
  strictEqual(roc.tpr[roc.tpr.length - 1], 1);
  strictEqual(roc.fpr[roc.fpr.length - 1], 1);
});

Deno.test("auc() equals the Mann-Whitney statistic with ties counted 1/2", () => {
  for (const [seed, levels] of [[2, 5], [3, 40], [4, 1e6]]) {
    const { scores, issame } = tiedScores(seed, 300, levels);
    let u = 0;
    let pairs = 0;
    for (let i = 0; i < scores.length; i++) {
      if (!issame[i]) continue;
      for (let j = 0; j < scores.length; j++) {
        if (issame[j]) continue;
        pairs++;
        u += scores[i] > scores[j] ? 1 : scores[i] === scores[j] ? 0.5 : 0;
      }
    }
    close(auc(rocCurve(scores, issame)), u / pairs);
  }
  strictEqual(auc(rocCurve([1, 2], [false, true])), 1);
  strictEqual(auc(rocCurve([1, 2], [true, false])), 0);
  strictEqual(auc(rocCurve([1, 1], [true, false])), 0.5);
});

Deno.test("tarAtFar() matches a brute-force search over thresholds", () => {
  const { scores, issame } = tiedScores(5, 3000, 500);
  const roc = rocCurve(scores, issame);
  const N = roc.negatives;
  ok(N > 1000 && N < 10000);
  const fars = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6];
  const got = tarAtFar(roc);
  deepStrictEqual(got.map((r) => r.far), fars);
  const counts = [...new Set(scores)].map((t) => {
    let tp = 0;
    let fp = 0;
    for (let i = 0; i < scores.length; i++) {
      if (scores[i] >= t) issame[i] ? tp++ : fp++;
    }
    return { tp, fp };
  });
  for (const r of got.slice(0, 3)) {
    let best = 0;
    for (const { tp, fp } of counts) {
      if (fp / N <= r.far) best = Math.max(best, tp / roc.positives);
    }
    strictEqual(r.tar, best);
    ok(r.achievedFar !== null && r.achievedFar <= r.far);
    strictEqual(r.note, undefined);
  }
  // Fewer than 10^4 negatives: FAR 1e-4 and below cannot be measured.
  for (const r of got.slice(3)) {
    strictEqual(r.tar, null);
    strictEqual(r.threshold, null);
    ok(r.note?.includes(`have ${N}`), r.note);
  }
});

Deno.test("tarAtFar() measures FAR exactly 1/negatives and handles tied negatives", () => {
  // 10 negatives: FAR 0.1 allows one false accept; the top score ties a positive and 2 negatives.
  const scores = [0.9, 0.9, 0.9, 0.8, 0.7, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1];
  const issame = [1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0];
  const [r] = tarAtFar(rocCurve(scores, issame), { fars: [0.1] });
  deepStrictEqual(r, { far: 0.1, tar: 0, threshold: Infinity, achievedFar: 0 });
  const [s] = tarAtFar(rocCurve(scores, issame), { fars: [0.2] });
  deepStrictEqual(s, { far: 0.2, tar: 1, threshold: 0.7, achievedFar: 0.2 });
  throws(() => tarAtFar(rocCurve(scores, issame), { fars: [2] }), RangeError);
});

Deno.test("equalErrorRate() interpolates the crossing of FAR and FRR", () => {
  // Exact vertex: see the JSDoc example.
  const a = equalErrorRate(rocCurve([0.9, 0.6, 0.4, 0.7, 0.3, 0.2], [1, 1, 1, 0, 0, 0]));
  strictEqual(a.eer, 1 / 3);
  strictEqual(a.threshold, 0.6);
  // One positive, one negative tied: the diagonal segment crosses at 1/2.
  strictEqual(equalErrorRate(rocCurve([0.5, 0.5], [1, 0])).eer, 0.5);
  // Separable: 0; reversed: 1.
  strictEqual(equalErrorRate(rocCurve([0.9, 0.1], [1, 0])).eer, 0);
  strictEqual(equalErrorRate(rocCurve([0.1, 0.9], [1, 0])).eer, 1);
  // P = 2, N = 1: points (0,0) (0,1/2) (1,1/2) (1,1); the horizontal segment from (0,1/2)
  // to (1,1/2) crosses fpr = 1 - tpr at fpr = 1/2.
  strictEqual(equalErrorRate(rocCurve([0.9, 0.5, 0.1], [1, 0, 1])).eer, 0.5);
  // FRR at the EER equals FAR: check on random data by interpolating both along the curve.
  const { scores, issame } = tiedScores(9, 500, 30);
  const roc = rocCurve(scores, issame);
  const e = equalErrorRate(roc).eer;
  let k = 0;
  while (roc.fpr[k + 1] < e) k++;
  const s = roc.fpr[k + 1] === roc.fpr[k] ? 1 : (e - roc.fpr[k]) / (roc.fpr[k + 1] - roc.fpr[k]);
  const tpr = roc.tpr[k] + s * (roc.tpr[k + 1] - roc.tpr[k]);
  close(1 - tpr, e, 1e-9);
});

Deno.test("rocCurve() rejects one-class inputs and NaN scores", () => {
  throws(() => rocCurve([0.1, 0.2], [1, 1]), /2 positive and 0 negative/);
  throws(() => rocCurve([0.1, NaN], [1, 0]), /NaN/);
});
