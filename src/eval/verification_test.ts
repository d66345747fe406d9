import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { bestThreshold, kfoldVerification, verificationAccuracy } from "./verification.ts";
import { mulberry32 } from "./_random.ts";

const close = (a: number, b: number, tol = 1e-12) => ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

Deno.test("bestThreshold() picks the lowest most accurate midpoint", () => {
  // Sorted: 0.2F 0.5T 0.5F 0.5T 0.9T. Candidates: below all (3/5), 0.35 (4/5), 0.7 (3/5), above (2/5).
  const r = bestThreshold([0.5, 0.5, 0.5, 0.2, 0.9], [true, false, true, false, true]);
  close(r.threshold, 0.35);
  strictEqual(r.accuracy, 4 / 5);
  // All positives: the threshold below every score is best.
  const all = bestThreshold([0.3, 0.1], [1, 1]);
  ok(all.threshold < 0.1);
  strictEqual(all.accuracy, 1);
  // All negatives: one above every score.
  const none = bestThreshold([0.3, 0.1], [0, 0]);
  ok(none.threshold > 0.3);
  strictEqual(none.accuracy, 1);
});

Deno.test("bestThreshold() matches a brute-force search on random tied scores", () => {
  const rand = mulberry32(7);
  for (let trial = 0; trial < 20; trial++) {
    const n = 1 + Math.floor(rand() * 60);
    const labels = Array.from({ length: n }, () => rand() < 0.5);
    const scores = labels.map((s) => Math.round((rand() + (s ? 0.3 : 0)) * 12) / 12);
    const uniq = [...new Set(scores)].sort((a, b) => a - b);
    const candidates = [uniq[0] - 1, ...uniq.slice(1).map((v, i) => (v + uniq[i]) / 2)];
    candidates.push(uniq[uniq.length - 1] + 1);
    let bestAcc = -1;
    for (const t of candidates) {
      bestAcc = Math.max(bestAcc, verificationAccuracy(scores, labels, t));
    }
    const got = bestThreshold(scores, labels);
    close(got.accuracy, bestAcc);
    close(verificationAccuracy(scores, labels, got.threshold), bestAcc);
    // No smaller candidate reaches the same accuracy.
    for (const t of candidates) {
      if (t < got.threshold - 1e-12) ok(verificationAccuracy(scores, labels, t) < bestAcc);
    }
  }
});

Deno.test("kfoldVerification() follows the LFW protocol on a hand-computed case", () => {
  // fold 0: (0.9 T, 0.3 F), fold 1: (0.8 T, 0.6 F), fold 2: (0.5 T, 0.4 F).
  const scores = new Float32Array([0.9, 0.3, 0.8, 0.6, 0.5, 0.4]);
  const issame = new Uint8Array([1, 0, 1, 0, 1, 0]);
  const r = kfoldVerification(scores, issame, { folds: new Int32Array([0, 0, 1, 1, 2, 2]) });
  // Held out 0: train {0.4F 0.5T 0.6F 0.8T} -> 0.45 (3/4, lowest of the ties); test 2/2.
  // Held out 1: train {0.3F 0.4F 0.5T 0.9T} -> 0.45; test: 0.6F is accepted -> 1/2.
  // Held out 2: train {0.3F 0.6F 0.8T 0.9T} -> 0.7; test: 0.5T is rejected -> 1/2.
  deepStrictEqual(r.foldAccuracies, [1, 0.5, 0.5]);
  close(r.thresholds[0], 0.45, 1e-7);
  close(r.thresholds[1], 0.45, 1e-7);
  close(r.thresholds[2], 0.7, 1e-7);
  close(r.accuracy, 2 / 3);
  close(r.std, Math.sqrt(1 / 12)); // deviations 1/3, -1/6, -1/6; divide by k - 1 = 2
  close(r.stdError, 1 / 6);
  strictEqual(r.folds, 3);
});

Deno.test("kfoldVerification() defaults to 10 contiguous folds", () => {
  const rand = mulberry32(3);
  const n = 63;
  const issame = Array.from({ length: n }, () => rand() < 0.5);
  const scores = issame.map((s) => rand() + (s ? 0.4 : 0));
  const ids = Array.from({ length: n }, (_, i) => {
    let f = 0;
    while (Math.floor(((f + 1) * n) / 10) <= i) f++;
    return f;
  });
  const byDefault = kfoldVerification(scores, issame);
  const explicit = kfoldVerification(scores, issame, { folds: ids });
  strictEqual(byDefault.folds, 10);
  deepStrictEqual(byDefault, explicit);
  // Each fold's threshold is the best one on the other nine folds.
  for (let f = 0; f < 10; f++) {
    const train = scores.map((_, i) => i).filter((i) => ids[i] !== f);
    const best = bestThreshold(train.map((i) => scores[i]), train.map((i) => issame[i]));
    strictEqual(byDefault.thresholds[f], best.threshold);
  }
});

Deno.test("kfoldVerification() rejects bad folds, labels and scores", () => {
  throws(() => kfoldVerification([0.1, 0.2], [1, 0]), /Cannot split 2 pairs into 10 folds/);
  throws(() => kfoldVerification([0.1, 0.2], [1, 0], { folds: 1 }), RangeError);
  throws(() => kfoldVerification([0.1, 0.2, 0.3], [1, 0, 1], { folds: [0, 2, 2] }), /fold 1/);
  throws(() => kfoldVerification([0.1, 0.2], [1, 2], { folds: 2 }), TypeError);
  throws(() => kfoldVerification([0.1, NaN], [1, 0], { folds: 2 }), /NaN at index 1/);
  throws(() => kfoldVerification([0.1, 0.2], [1], { folds: 2 }), /label count 1/);
});
