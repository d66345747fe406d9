import fc from "../../test/_fast_check.ts";
import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import { batchNorm, initBatchNorm } from "./batch_norm.ts";

const SEED = 20180126;

/** x [n, c, h, w] or [n, c] as float64 values on a grid, with per-channel values. */
const caseArb = fc.record({
  n: fc.integer({ min: 2, max: 4 }),
  c: fc.integer({ min: 1, max: 3 }),
  hw: fc.constantFrom<number[]>([], [1, 1], [2, 3], [3, 2]),
}).chain(({ n, c, hw }) => {
  const size = n * c * hw.reduce((a, b) => a * b, 1);
  const v = fc.integer({ min: -3000, max: 3000 }).map((i) => i / 1000);
  return fc.record({
    shape: fc.constant<number[]>([n, c, ...hw]),
    x: fc.array(v, { minLength: size, maxLength: size }),
    gamma: fc.array(v, { minLength: c, maxLength: c }),
    beta: fc.array(v, { minLength: c, maxLength: c }),
    mean: fc.array(v, { minLength: c, maxLength: c }),
    var: fc.array(fc.integer({ min: 1, max: 3000 }).map((i) => i / 1000), {
      minLength: c,
      maxLength: c,
    }),
  });
});

/** Values of channel ch of a flat [n, c, ...] array. */
function channel(x: ArrayLike<number>, shape: number[], ch: number): number[] {
  const c = shape[1], inner = shape.slice(2).reduce((a, b) => a * b, 1);
  const out: number[] = [];
  for (let i = 0; i < x.length; i++) if (Math.floor(i / inner) % c === ch) out.push(x[i]);
  return out;
}

function stats(v: number[]): { mean: number; variance: number } {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  return { mean, variance: v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length };
}

const f64 = (v: number[], shape: number[]) => cg.tensor(v, shape, { dtype: "float64" });

Deno.test("batchNorm() in training mode gives zero mean and unit variance per channel", async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, async (k) => {
      const c = k.shape[1];
      for (let ch = 0; ch < c; ch++) fc.pre(stats(channel(k.x, k.shape, ch)).variance > 1e-3);
      const bn = initBatchNorm(c, { dtype: "float64" });
      const { out } = batchNorm(bn.params, bn.state, f64(k.x, k.shape), { training: true });
      const y = await out.data();
      for (let ch = 0; ch < c; ch++) {
        const before = stats(channel(k.x, k.shape, ch)).variance;
        const s = stats(channel(y, k.shape, ch));
        assert.ok(Math.abs(s.mean) < 1e-12, `channel ${ch}: mean ${s.mean}`);
        // Unit variance up to the epsilon: σ² / (σ² + 1e-5).
        const expected = before / (before + 1e-5);
        assert.ok(Math.abs(s.variance - expected) < 1e-12, `channel ${ch}: var ${s.variance}`);
      }
    }),
    { seed: SEED, numRuns: 40 },
  );
});

Deno.test("batchNorm() updates the running statistics with momentum and the unbiased variance", async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, async (k) => {
      const c = k.shape[1];
      const params = { weight: f64(k.gamma, [c]), bias: f64(k.beta, [c]) };
      const state = { mean: f64(k.mean, [c]), var: f64(k.var, [c]) };
      const r = batchNorm(params, state, f64(k.x, k.shape), { training: true, momentum: 0.25 });
      const rm = await r.state.mean.data(), rv = await r.state.var.data();
      const y = await r.out.data();
      for (let ch = 0; ch < c; ch++) {
        const v = channel(k.x, k.shape, ch), s = stats(v), n = v.length;
        const em = 0.75 * k.mean[ch] + 0.25 * s.mean;
        const ev = 0.75 * k.var[ch] + 0.25 * s.variance * n / (n - 1);
        assert.ok(Math.abs(rm[ch] - em) < 1e-12 && Math.abs(rv[ch] - ev) < 1e-12);
        // Output: γ (x - μ) / √(σ² + ε) + β with the batch statistics.
        const out = channel(y, k.shape, ch);
        v.forEach((xi, i) => {
          const e = k.gamma[ch] * (xi - s.mean) / Math.sqrt(s.variance + 1e-5) + k.beta[ch];
          assert.ok(Math.abs(out[i] - e) < 1e-9, `${out[i]} != ${e}`);
        });
      }
    }),
    { seed: SEED, numRuns: 30 },
  );
});

Deno.test("batchNorm() in eval mode uses the running statistics and keeps the state", async () => {
  await fc.assert(
    fc.asyncProperty(caseArb, async (k) => {
      const c = k.shape[1];
      const params = { weight: f64(k.gamma, [c]), bias: f64(k.beta, [c]) };
      const state = { mean: f64(k.mean, [c]), var: f64(k.var, [c]) };
      const r = batchNorm(params, state, f64(k.x, k.shape), { training: false, epsilon: 1e-3 });
      assert.equal(r.state, state);
      const y = await r.out.data();
      for (let ch = 0; ch < c; ch++) {
        channel(k.x, k.shape, ch).forEach((xi, i) => {
          const e = k.gamma[ch] * (xi - k.mean[ch]) / Math.sqrt(k.var[ch] + 1e-3) + k.beta[ch];
          assert.ok(Math.abs(channel(y, k.shape, ch)[i] - e) < 1e-9);
        });
      }
    }),
    { seed: SEED, numRuns: 30 },
  );
});

Deno.test("batchNorm() without learned scale or shift, and its errors", async () => {
  const bn = initBatchNorm(2, { scale: false, shift: false });
  assert.deepEqual(bn.params, {});
  const x = cg.tensor([[1, 10], [3, 30]]);
  const { out } = batchNorm(bn.params, bn.state, x, { training: true, epsilon: 0 });
  assert.deepEqual([...await out.data()], [-1, -1, 1, 1]);
  assert.throws(
    () => batchNorm(bn.params, bn.state, cg.tensor([[1, 2]]), { training: true }),
    /more than one value per channel/,
  );
  assert.throws(
    () => batchNorm(bn.params, bn.state, cg.zeros([2, 3]), { training: true }),
    /has 3 channels, the layer has 2/,
  );
  assert.throws(() => initBatchNorm(0), /positive integer, got 0/);
});

Deno.test("batchNorm() gradients check in both modes, 1-D and 2-D", async () => {
  for (const shape of [[5, 3], [3, 2, 2, 3]]) {
    const c = shape[1];
    const bn = initBatchNorm(c, { dtype: "float64" });
    const params = {
      weight: cg.normal(cg.randomKey(1), [c], { dtype: "float64" }),
      bias: cg.normal(cg.randomKey(2), [c], { dtype: "float64" }),
    };
    const state = {
      mean: cg.normal(cg.randomKey(3), [c], { dtype: "float64" }),
      var: bn.state.var,
    };
    const x = cg.normal(cg.randomKey(4), shape, { dtype: "float64" });
    for (const training of [true, false]) {
      await cg.checkGrad(
        (p: typeof params, a: cg.Tensor) => batchNorm(p, state, a, { training }).out,
        [params, x],
      );
    }
  }
});
