import assert from "node:assert/strict";
import { seededLabels, seededValues } from "../_inputs.ts";
import { tfjsCosface, tfjsInit } from "./tfjs.ts";

/** Float64 CosFace loss in plain loops: the independent oracle. */
function cosface64(
  x: Float64Array,
  w: Float64Array,
  labels: Int32Array,
  dims: { n: number; d: number; c: number; s: number; m: number },
): number {
  const { n, d, c, s, m } = dims;
  const norm = (a: Float64Array, r: number) => {
    let q = 0;
    for (let k = 0; k < d; k++) q += a[r * d + k] ** 2;
    return Math.sqrt(q);
  };
  let total = 0;
  for (let i = 0; i < n; i++) {
    const logits: number[] = [];
    for (let j = 0; j < c; j++) {
      let dot = 0;
      for (let k = 0; k < d; k++) dot += x[i * d + k] * w[j * d + k];
      const cos = Math.min(1, Math.max(-1, dot / (norm(x, i) * norm(w, j))));
      logits.push(s * (cos - (j === labels[i] ? m : 0)));
    }
    const mx = Math.max(...logits);
    const lse = mx + Math.log(logits.reduce((a, l) => a + Math.exp(l - mx), 0));
    total += lse - logits[labels[i]];
  }
  return total / n;
}

function fdGrad(f: (a: Float64Array) => number, a: Float64Array): Float64Array {
  const g = new Float64Array(a.length), h = 1e-6;
  for (let k = 0; k < a.length; k++) {
    const v = a[k];
    a[k] = v + h;
    const up = f(a);
    a[k] = v - h;
    g[k] = (up - f(a)) / (2 * h);
    a[k] = v;
  }
  return g;
}

function normwiseErr(got: ArrayLike<number>, ref: ArrayLike<number>): number {
  let e = 0, s = 0;
  for (let k = 0; k < ref.length; k++) {
    e = Math.max(e, Math.abs(got[k] - ref[k]));
    s = Math.max(s, Math.abs(ref[k]));
  }
  return e / s;
}

Deno.test("tfjsCosface() agrees with a float64 CosFace oracle on a tiny shape (tfjs cpu)", async () => {
  await tfjsInit("cpu");
  const dims = { n: 4, d: 8, c: 10, s: 64, m: 0.35 };
  const features = seededValues(21, dims.n * dims.d), weights = seededValues(22, dims.c * dims.d);
  const labels = seededLabels(23, dims.n, dims.c);
  const r = await tfjsCosface({ features, weights, labels }, {
    n: dims.n,
    d: dims.d,
    classes: dims.c,
  });
  const x64 = Float64Array.from(features), w64 = Float64Array.from(weights);
  const ref = cosface64(x64, w64, labels, dims);
  assert.ok(Math.abs(r.loss - ref) <= 1e-4 * Math.abs(ref), `loss ${r.loss} vs ${ref}`);
  const gx = fdGrad((a) => cosface64(a, w64, labels, dims), x64);
  const gw = fdGrad((a) => cosface64(x64, a, labels, dims), w64);
  assert.ok(
    normwiseErr(r.gradFeatures, gx) < 1e-3,
    `features grad err ${normwiseErr(r.gradFeatures, gx)}`,
  );
  assert.ok(
    normwiseErr(r.gradWeights, gw) < 1e-3,
    `weights grad err ${normwiseErr(r.gradWeights, gw)}`,
  );
  // The margin matters: m = 0 gives a different (smaller) loss.
  const r0 = await tfjsCosface({ features, weights, labels }, { n: 4, d: 8, classes: 10, m: 0 });
  assert.ok(Math.abs(r0.loss - cosface64(x64, w64, labels, { ...dims, m: 0 })) <= 1e-4 * ref);
  assert.ok(r0.loss < r.loss);
});
