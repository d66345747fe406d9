import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import {
  accuracy,
  cosface,
  cosineLogits,
  predict,
  softmaxCrossEntropy,
  sphereface,
  spherefaceLambda,
} from "./mod.ts";

const f64 = { dtype: "float64" as const };

Deno.test("predict() and accuracy() use the largest cosine, not the largest dot product", async () => {
  // Class 1 has the longer weight, but embedding 0 points closer to class 0.
  const w = cg.tensor([[1, 0], [0, 10]]);
  const x = cg.tensor([[1, 0.5], [0.2, 1], [-1, -0.1]]);
  assert.deepEqual([...await predict(x, w).data()], [0, 1, 1]);
  assert.deepEqual(
    [...await accuracy(x, w, new Int32Array([0, 0, 1])).data()],
    [2 / 3].map(Math.fround),
  );
  const cos = await cosineLogits(x, w).data();
  assert.ok(Math.abs(cos[0] - 1 / Math.hypot(1, 0.5)) < 1e-6);
  assert.throws(() => cosineLogits(cg.ones([2]), w), /expected embeddings \[B, d\]/);
});

Deno.test("sphereface() takes λ as a number or a scalar tensor, and spherefaceLambda() anneals it", async () => {
  const x = cg.normal(cg.randomKey(1), [3, 4], f64), w = cg.normal(cg.randomKey(2), [5, 4], f64);
  const y = new Int32Array([4, 0, 2]);
  for (const lambda of [0, 5, 1000]) {
    const a = await sphereface(x, w, y, { lambda }).item();
    const b = await sphereface(x, w, y, { lambda: cg.tensor([lambda], [], f64) }).item();
    assert.ok(Math.abs(a - b) < 1e-12, `λ = ${lambda}: ${a} != ${b}`);
  }
  // λ → ∞ is the normalised-weight softmax (|x| cos θ for every class): m = 1 is the same.
  const big = await sphereface(x, w, y, { lambda: 1e12 }).item();
  const m1 = await sphereface(x, w, y, { m: 1 }).item();
  assert.ok(Math.abs(big - m1) < 1e-9);
  assert.equal(spherefaceLambda(0), 1000);
  assert.ok(Math.abs(spherefaceLambda(100) - 1000 / 13) < 1e-12);
  assert.equal(spherefaceLambda(1e6), 5);
  assert.equal(spherefaceLambda(10, { base: 10, gamma: 0.1, power: 2, lambdaMin: 0 }), 2.5);
  assert.throws(
    () => sphereface(x, w, y, { lambda: cg.tensor([1]) }),
    /lambda is float32 but the embeddings are float64/,
  );
  assert.throws(() => spherefaceLambda(-1), /non-negative/);
});

Deno.test("softmaxCrossEntropy() checks its bias; cosface() checks dtypes", () => {
  const x = cg.ones([2, 3]), w = cg.ones([4, 3]), y = new Int32Array([0, 1]);
  assert.throws(
    () => softmaxCrossEntropy(x, w, y, { bias: cg.ones([3]) }),
    /bias must be float32\[4\]/,
  );
  assert.throws(
    () => cosface(x, cg.ones([4, 3], f64), y),
    /embeddings are float32 but class weights are float64/,
  );
  assert.throws(() => cosface(x, w, cg.tensor([0, 1])), /labels must be int32, got float32/);
});
