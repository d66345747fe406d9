// Linear, convolution, PReLU, dropout and the initialisers: values against host loops, and
// gradients against finite differences (checkGrad, float64).
import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import { initLinear, linear } from "./linear.ts";
import { conv2d, initConv2d } from "./conv.ts";
import { initPrelu, prelu } from "./prelu.ts";
import { dropout } from "./dropout.ts";
import { fans, kaimingNormal, kaimingUniform, xavierNormal, xavierUniform } from "./init.ts";

type T = cg.Tensor;
const key = cg.randomKey(7);
const f64 = { dtype: "float64" as const };

Deno.test("linear() is x W + b against host loops, and its gradients check", async () => {
  const p = initLinear(key, { inFeatures: 3, outFeatures: 2, ...f64 });
  p.bias = cg.tensor([0.5, -1], [2], f64);
  const x = cg.normal(cg.randomKey(1), [4, 3], f64);
  const [xs, ws, y] = [await x.data(), await p.weight.data(), await linear(p, x).data()];
  for (let i = 0; i < 4; i++) {
    for (let j = 0; j < 2; j++) {
      let e = [0.5, -1][j];
      for (let k = 0; k < 3; k++) e += xs[i * 3 + k] * ws[k * 2 + j];
      assert.ok(Math.abs(y[i * 2 + j] - e) < 1e-12);
    }
  }
  await cg.checkGrad((q: typeof p, a: T) => linear(q, a), [p, x]);
  assert.equal(initLinear(key, { inFeatures: 3, outFeatures: 2, bias: false }).bias, undefined);
  assert.throws(() => linear(p, cg.ones([2, 4])), /does not match weight \[3,2\]/);
  assert.throws(() => initLinear(key, { inFeatures: 0, outFeatures: 2 }), /positive integer/);
});

Deno.test("conv2d() layer adds the bias per channel (host loops) and its gradients check", async () => {
  const p = initConv2d(key, { inChannels: 2, outChannels: 3, kernel: [3, 2], ...f64 });
  p.bias = cg.tensor([1, -2, 0.5], [3], f64);
  const x = cg.normal(cg.randomKey(2), [2, 2, 4, 5], f64);
  const y = await conv2d(p, x, { stride: [2, 1], padding: 1 }).data();
  const [xs, ws] = [await x.data(), await p.weight.data()];
  const ho = Math.floor((4 + 2 - 3) / 2) + 1, wo = 5 + 2 - 2 + 1;
  let at = 0;
  for (let b = 0; b < 2; b++) {
    for (let o = 0; o < 3; o++) {
      for (let i = 0; i < ho; i++) {
        for (let j = 0; j < wo; j++) {
          let e = [1, -2, 0.5][o];
          for (let c = 0; c < 2; c++) {
            for (let di = 0; di < 3; di++) {
              for (let dj = 0; dj < 2; dj++) {
                const yy = i * 2 - 1 + di, zz = j - 1 + dj;
                if (yy < 0 || yy >= 4 || zz < 0 || zz >= 5) continue;
                e += xs[((b * 2 + c) * 4 + yy) * 5 + zz] * ws[((o * 2 + c) * 3 + di) * 2 + dj];
              }
            }
          }
          assert.ok(Math.abs(y[at++] - e) < 1e-12, `${y[at - 1]} != ${e}`);
        }
      }
    }
  }
  assert.equal(at, y.length);
  await cg.checkGrad((q: typeof p, a: T) => conv2d(q, a, { stride: 2, padding: 1 }), [p, x]);
  const grouped = initConv2d(key, { inChannels: 4, outChannels: 6, groups: 2, bias: false });
  assert.deepEqual(grouped.weight.shape, [6, 2, 3, 3]);
  assert.throws(() => initConv2d(key, { inChannels: 3, outChannels: 4, groups: 2 }), /divide/);
});

Deno.test("prelu() has one slope per channel (init 0.25) and its gradients check", async () => {
  const p = initPrelu(2, f64);
  assert.deepEqual([...await p.weight.data()], [0.25, 0.25]);
  p.weight = cg.tensor([0.25, -0.5], [2], f64);
  // x [2, 2, 1]: channel 0 holds -4 and -1, channel 1 holds 2 and -3.
  const x = cg.tensor([-4, 2, -1, -3], [2, 2, 1], f64);
  assert.deepEqual([...await prelu(p, x).data()], [-1, 2, -0.25, 1.5]);
  const z = cg.normal(cg.randomKey(3), [3, 2, 2, 2], f64);
  await cg.checkGrad((q: typeof p, a: T) => prelu(q, a), [p, z]);
  assert.throws(() => prelu(p, cg.ones([2, 3])), /expected \[N, 2, \.\.\.\]/);
});

Deno.test("dropout() keeps 1 - rate of the values, scaled, and is the identity in eval", async () => {
  const x = cg.ones([20000]);
  const y = [...await dropout(cg.randomKey(4), x, { rate: 0.3 }).data()];
  const kept = y.filter((v) => v !== 0);
  assert.ok(kept.every((v) => Math.abs(v - 1 / 0.7) < 1e-6));
  // Binomial(20000, 0.7): standard deviation 65.
  assert.ok(Math.abs(kept.length - 14000) < 400, `${kept.length} kept`);
  assert.equal(dropout(cg.randomKey(4), x, { rate: 0.3, training: false }), x);
  assert.deepEqual([...await dropout(key, cg.ones([3]), { rate: 1 }).data()], [0, 0, 0]);
  // Explicit noise: the mask is noise >= rate, and gradients flow through the kept values.
  const noise = cg.tensor([0.1, 0.9, 0.5, 0.2], [4], f64);
  const v = cg.tensor([1, 2, 3, 4], [4], f64);
  assert.deepEqual([...await dropout(noise, v, { rate: 0.4 }).data()], [0, 2 / 0.6, 3 / 0.6, 0]);
  await cg.checkGrad((a: T) => dropout(noise, a, { rate: 0.4 }), [v]);
  assert.throws(() => dropout(key, v, { rate: 1.5 }), /\[0, 1\], got 1.5/);
  assert.throws(() => dropout(cg.ones([3]), v, { rate: 0.5 }), /noise must be float64\[4\]/);
});

/** Sample mean, standard deviation and largest magnitude of a tensor. */
async function moments(t: T): Promise<{ mean: number; std: number; max: number }> {
  const v = [...await t.data()];
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const std = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length);
  return { mean, std, max: v.reduce((a, b) => Math.max(a, Math.abs(b)), 0) };
}

Deno.test("initialisers have the Kaiming and Xavier scales", async () => {
  assert.deepEqual(fans([64, 3, 3, 3]), { fanIn: 27, fanOut: 576 });
  assert.deepEqual(fans([512, 128]), { fanIn: 512, fanOut: 128 });
  const shape = [64, 32, 3, 3]; // fan in 288, fan out 576; 18432 samples
  const cases: [string, T, number, number | null][] = [
    // [name, sample, expected std, bound of a uniform]
    ["kaimingNormal", kaimingNormal(key, shape), Math.sqrt(2 / 288), null],
    [
      "kaimingNormal fanOut",
      kaimingNormal(key, shape, { mode: "fanOut" }),
      Math.sqrt(2 / 576),
      null,
    ],
    ["kaimingUniform", kaimingUniform(key, shape), Math.sqrt(2 / 288), Math.sqrt(6 / 288)],
    ["xavierNormal", xavierNormal(key, shape), Math.sqrt(2 / 864), null],
    [
      "xavierUniform",
      xavierUniform(key, shape, { gain: 2 }),
      2 * Math.sqrt(2 / 864),
      2 * Math.sqrt(6 / 864),
    ],
  ];
  for (const [name, t, std, bound] of cases) {
    const m = await moments(t);
    assert.ok(Math.abs(m.mean) < 0.03 * std, `${name}: mean ${m.mean}`);
    assert.ok(Math.abs(m.std / std - 1) < 0.03, `${name}: std ${m.std}, expected ${std}`);
    if (bound !== null) assert.ok(m.max <= bound && m.max > 0.99 * bound, `${name}: max ${m.max}`);
  }
  assert.equal(kaimingNormal(key, [3, 3], f64).dtype, "float64");
  assert.throws(() => fans([]), /rank ≥ 1/);
});
