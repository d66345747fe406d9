import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { combineFlip, cosineSimilarity, l2NormalizeRows, pairScores } from "./similarity.ts";

const close = (a: number, b: number, tol = 1e-6) => ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

Deno.test("l2NormalizeRows() scales each row to unit length and keeps zero rows", () => {
  const out = l2NormalizeRows(new Float32Array([3, 4, 0, 0, 0, -2]), 2);
  deepStrictEqual(Array.from(out), [0.6000000238418579, 0.800000011920929, 0, 0, 0, -1]);
});

Deno.test("l2NormalizeRows() rejects bad shapes and non-finite values", () => {
  throws(() => l2NormalizeRows(new Float32Array(5), 2), RangeError);
  throws(() => l2NormalizeRows(new Float32Array(4), 0), RangeError);
  throws(() => l2NormalizeRows(new Float32Array([1, NaN]), 2), /Non-finite value NaN at index 1/);
});

Deno.test("cosineSimilarity() matches hand-computed angles", () => {
  strictEqual(cosineSimilarity([1, 0], [5, 0]), 1);
  strictEqual(cosineSimilarity([1, 0], [-2, 0]), -1);
  strictEqual(cosineSimilarity([1, 0], [0, 3]), 0);
  close(cosineSimilarity([1, 2, 2], [2, 1, 2]), 8 / 9, 1e-15);
  strictEqual(cosineSimilarity([0, 0], [1, 1]), 0);
  throws(() => cosineSimilarity([1], [1, 2]), /lengths 1 and 2/);
});

Deno.test("pairScores() scores row i of A against row i of B", () => {
  const a = new Float32Array([1, 0, 0, 1, 1, 1]);
  const b = new Float32Array([1, 1, 0, -1, 2, 2]);
  const s = pairScores(a, b, 2);
  strictEqual(s.length, 3);
  close(s[0], Math.SQRT1_2);
  strictEqual(s[1], -1);
  strictEqual(s[2], 1);
  throws(() => pairScores(a, b.subarray(2), 2), RangeError);
});

Deno.test("combineFlip() sums then normalizes, or concatenates normalized views", () => {
  const e = new Float32Array([2, 0, 0, 1]);
  const f = new Float32Array([0, 2, 0, 3]);
  const sum = combineFlip(e, f, 2);
  close(sum[0], Math.SQRT1_2);
  close(sum[1], Math.SQRT1_2);
  deepStrictEqual(Array.from(sum.subarray(2)), [0, 1]);
  const cat = combineFlip(e, f, 2, { mode: "concat" });
  strictEqual(cat.length, 8);
  close(cat[0], Math.SQRT1_2);
  close(cat[3], Math.SQRT1_2);
  // The cosine of two concatenated rows is the mean of the two per-view cosines.
  const g = new Float32Array([1, 1, 3, -1]);
  const h = new Float32Array([0, 1, 1, 1]);
  const ca = combineFlip(e.subarray(0, 2), g.subarray(0, 2), 2, { mode: "concat" });
  const cb = combineFlip(h.subarray(0, 2), f.subarray(0, 2), 2, { mode: "concat" });
  const expected = (cosineSimilarity([2, 0], [0, 1]) + cosineSimilarity([1, 1], [0, 2])) / 2;
  close(cosineSimilarity(ca, cb), expected);
  throws(() => combineFlip(e, f.subarray(1), 2), RangeError);
});
