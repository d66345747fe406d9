// The residual blocks and the three backbones: outputs against compositions of core ops,
// parameter counts against formulas computed by hand, state handling, and gradients.
// Published parameter counts: none is quoted here, because I know of no reliable published
// figure for exactly these configurations (the papers give depths and widths, not counts).
import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import { initIresBlock, initSphereUnit, iresBlock, sphereUnit } from "./residual.ts";
import { kaimingNormal } from "./init.ts";
import { smallNet } from "./small_net.ts";
import { sphere20 } from "./sphere20.ts";
import { iresnet, iresnet18 } from "./iresnet.ts";
import { paramCount } from "./params.ts";

type T = cg.Tensor;
const f64 = { dtype: "float64" as const };

async function near(a: T, b: T, tol: number): Promise<void> {
  const [x, y] = [await a.data(), await b.data()];
  assert.equal(x.length, y.length);
  x.forEach((v, i) =>
    assert.ok(Math.abs(v - y[i]) <= tol * Math.max(1, Math.abs(y[i])), `[${i}] ${v} != ${y[i]}`)
  );
}

/** PReLU from core ops, channels on axis 1. */
function refPrelu(a: T, x: T): T {
  return cg.where(cg.greater(x, 0), x, cg.mul(x, cg.reshape(a, [1, -1, 1, 1])));
}

/** Training-mode batch norm from core ops, γ = 1, β = 0. */
function refBn(x: T): T {
  const mu = cg.mean(x, [0, 2, 3], { keepdims: true });
  const v = cg.variance(x, [0, 2, 3], { keepdims: true });
  return cg.div(cg.sub(x, mu), cg.sqrt(cg.add(v, 1e-5)));
}

Deno.test("sphereUnit() is x + prelu(conv(prelu(conv(x)))) and its gradients check", async () => {
  const p = initSphereUnit(cg.randomKey(1), { channels: 2, init: kaimingNormal, ...f64 });
  const x = cg.normal(cg.randomKey(2), [2, 2, 4, 3], f64);
  const h = refPrelu(p.prelu1.weight, cg.conv2d(x, p.conv1.weight, { padding: 1 }));
  const want = cg.add(x, refPrelu(p.prelu2.weight, cg.conv2d(h, p.conv2.weight, { padding: 1 })));
  await near(sphereUnit(p, x), want, 1e-12);
  assert.equal(p.conv1.bias, undefined);
  await cg.checkGrad((q: typeof p, a: T) => sphereUnit(q, a), [p, x]);
});

Deno.test("iresBlock() is BN-conv-BN-PReLU-conv-BN plus the projection shortcut", async () => {
  const b = initIresBlock(cg.randomKey(3), { inChannels: 2, outChannels: 3, stride: 2, ...f64 });
  const x = cg.normal(cg.randomKey(4), [2, 2, 5, 4], f64);
  const p = b.params;
  const h1 = refBn(cg.conv2d(refBn(x), p.conv1.weight, { padding: 1 }));
  const h2 = refBn(
    cg.conv2d(refPrelu(p.prelu.weight, h1), p.conv2.weight, { padding: 1, stride: 2 }),
  );
  const sc = refBn(cg.conv2d(x, p.downsample!.conv.weight, { stride: 2 }));
  const r = iresBlock(p, b.state, x, { training: true, stride: 2 });
  await near(r.out, cg.add(h2, sc), 1e-9);
  assert.deepEqual(r.out.shape, [2, 3, 3, 2]);
  assert.ok(r.state.downsample !== undefined);
  await cg.checkGrad(
    (q: typeof p, a: T) => iresBlock(q, b.state, a, { training: true, stride: 2 }).out,
    [p, x],
  );
  // Same width and stride 1: the identity shortcut.
  const id = initIresBlock(cg.randomKey(5), { inChannels: 3, outChannels: 3, ...f64 });
  assert.equal(id.params.downsample, undefined);
  const y = cg.normal(cg.randomKey(6), [2, 3, 3, 3], f64);
  await cg.checkGrad(
    (q: typeof id.params, a: T) => iresBlock(q, id.state, a, { training: false }).out,
    [id.params, y],
  );
});

/** Parameters of one smallNet stage by hand: two 3x3 convolutions, two BNs, two PReLUs. */
function smallStage(cin: number, w: number): number {
  return 9 * cin * w + 9 * w * w + 2 * (2 * w) + 2 * w;
}

Deno.test("smallNet: the T1 network's parameter count, shapes, state and gradients", async () => {
  // T1 (64x64): the stages, 256·4·4 -> 128 without bias, BatchNorm1d(128).
  const t1 = smallNet.init(cg.randomKey(0));
  const stages = smallStage(3, 32) + smallStage(32, 64) + smallStage(64, 128) +
    smallStage(128, 256);
  assert.equal(stages, 1174176);
  assert.equal(paramCount(t1.params), stages + 256 * 16 * 128 + 2 * 128);
  assert.equal(paramCount(t1.state), 2 * (2 * (32 + 64 + 128 + 256)) + 2 * 128);
  assert.deepEqual(t1.params.linear.weight.shape, [4096, 128]);
  assert.equal(t1.params.linear.bias, undefined);
  // A narrow copy for the forward pass (the CPU interpreter is slow).
  const net = smallNet.init(cg.randomKey(1), {
    inputSize: [12, 10],
    widths: [2, 3, 2, 2],
    embedding: 3,
    ...f64,
  });
  // 12x10 -> 6x5 -> 3x3 -> 2x2 -> 1x1
  assert.deepEqual(net.params.linear.weight.shape, [2, 3]);
  const x = cg.normal(cg.randomKey(2), [4, 3, 12, 10], f64);
  const r = smallNet.apply(net.params, net.state, x, { training: true });
  assert.deepEqual(r.out.shape, [4, 3]);
  // Training: the embedding BN output has zero mean per feature; the state moved.
  const e = await r.out.data();
  for (let j = 0; j < 3; j++) assert.ok(Math.abs(e[j] + e[3 + j] + e[6 + j] + e[9 + j]) < 1e-9);
  assert.notDeepEqual([...await r.state.bn.mean.data()], [0, 0, 0]);
  // Eval with the fresh state is deterministic and leaves the state alone.
  const ev = smallNet.apply(net.params, net.state, x, { training: false });
  assert.equal(ev.state.bn, net.state.bn);
  await cg.checkGrad(
    (p: typeof net.params, a: T) => smallNet.apply(p, net.state, a, { training: true }).out,
    [net.params, x],
    { directions: 2 },
  );
  assert.throws(
    () => smallNet.apply(net.params, net.state, cg.zeros([1, 3, 32, 32], f64), { training: false }),
    /gives 8 features, but the parameters were made for 2/,
  );
});

Deno.test("sphere20: parameter count by formula, and the forward pass", async () => {
  // Stage = stride-2 conv with bias + PReLU + units of two bias-free 3x3 convs and two PReLUs.
  const stage = (cin: number, w: number, units: number) =>
    9 * cin * w + w + w + units * (2 * 9 * w * w + 2 * w);
  const convs = stage(3, 64, 1) + stage(64, 128, 2) + stage(128, 256, 4) + stage(256, 512, 1);
  assert.equal(convs, 11656384);
  // At the paper's 112x96: 7x6 after four halvings, FC 512·42 -> 512 with bias.
  const paperFc = 512 * 7 * 6 * 512 + 512;
  assert.equal(convs + paperFc, 22666944);
  // Instantiate at 32x16 (2x1 after the stages) to keep the test fast: the FC differs only.
  const { params, state } = sphere20.init(cg.randomKey(0), { inputSize: [32, 16] });
  assert.equal(paramCount(params), convs + 512 * 2 * 512 + 512);
  assert.deepEqual(state, {});
  // 20 convolutions: 4 stride-2 + 2 per unit (1 + 2 + 4 + 1 units).
  const nConv = params.stages.reduce((a, s) => a + 1 + 2 * s.units.length, 0);
  assert.equal(nConv, 20);
  const out = sphere20.apply(params, state, cg.normal(cg.randomKey(1), [1, 3, 32, 16]), {
    training: true,
  }).out;
  assert.deepEqual(out.shape, [1, 512]);
  assert.ok((await out.data()).every(Number.isFinite));
});

Deno.test("iresnet18: parameter count by formula, forward pass, dropout", async () => {
  const bn = (c: number) => 2 * c;
  const block = (cin: number, w: number, down: boolean) =>
    bn(cin) + 9 * cin * w + bn(w) + w + 9 * w * w + bn(w) + (down ? cin * w + bn(w) : 0);
  const layers = [[64, 64], [64, 128], [128, 256], [256, 512]]
    .reduce((a, [cin, w]) => a + block(cin, w, true) + block(w, w, false), 0);
  const stem = 27 * 64 + bn(64) + 64;
  // After the stages: BN(512), FC 512·h·w -> 512 with bias, BatchNorm1d(512) with β only
  // (insightface freezes its γ at 1; PyTorch would count those 512 as well: 24,025,600).
  const head = (hw: number) => bn(512) + 512 * hw * 512 + 512 + 512;
  assert.equal(stem + layers + head(49), 24025088);
  // Instantiate at 8x8 (1x1 after the stages) to keep the test fast: the FC differs only.
  const { params, state } = iresnet18.init(cg.randomKey(0), { inputSize: 8 });
  assert.equal(paramCount(params), stem + layers + head(1));
  assert.equal(params.features.weight, undefined);
  const x = cg.normal(cg.randomKey(1), [2, 3, 8, 8]);
  const r = iresnet18.apply(params, state, x, { training: true });
  assert.deepEqual(r.out.shape, [2, 512]);
  assert.ok((await r.out.data()).every(Number.isFinite));
  // Dropout needs randomness in training, and accepts noise of [N, 512·h·w].
  const drop = iresnet([1, 1, 1, 1], { dropout: 0.4 });
  const small = drop.init(cg.randomKey(2), { inputSize: 8, embedding: 8 });
  assert.throws(
    () => drop.apply(small.params, small.state, x, { training: true }),
    /needs options.key/,
  );
  const noise = cg.uniform(cg.randomKey(3), [2, 512]);
  assert.deepEqual(
    drop.apply(small.params, small.state, x, { training: true, key: noise }).out.shape,
    [2, 8],
  );
  assert.throws(() => iresnet([2, 2, 2]), /4 stage depths/);
});
