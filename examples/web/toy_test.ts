import assert from "node:assert/strict";
import * as cg from "../../src/web.ts";
import { angularGaps, initToyState, makeToyData, makeToyStep, maxMargin2d } from "./toy.ts";

const DEG = Math.PI / 180;

function onCircle(degrees: number[]): Float32Array {
  return new Float32Array(degrees.flatMap((d) => [Math.cos(d * DEG), Math.sin(d * DEG)]));
}

Deno.test("angularGaps() measures arcs and gaps across the 0°/360° seam", () => {
  // Class 0 spans 350°..10° (across the seam), class 1 90°..100°, class 2 200°..230°.
  const f = onCircle([350, 10, 0, 90, 100, 200, 230, 215]);
  const r = angularGaps(f, new Int32Array([0, 0, 0, 1, 1, 2, 2, 2]), 3);
  assert.deepEqual(r.arcs.map((a) => a.label), [0, 1, 2]);
  assert.deepEqual(r.arcs.map((a) => Math.round(a.width / DEG)), [20, 10, 30]);
  assert.deepEqual(r.gaps.map((g) => [g.from, g.to, Math.round(g.gap / DEG)]), [
    [0, 1, 80],
    [1, 2, 100],
    [2, 0, 120],
  ]);
  assert.equal(Math.round(r.min / DEG), 80);
  assert.equal(Math.round(r.mean / DEG), 100);
  assert.equal(Math.round(r.meanWidth / DEG), 20);
});

Deno.test("angularGaps() reports overlapping classes as negative gaps", () => {
  // Class 0 spans 10°..20°, class 1 spans 5°..60°: they overlap by 15°.
  const f = onCircle([10, 20, 5, 60]);
  const r = angularGaps(f, new Int32Array([0, 0, 1, 1]), 2);
  assert.equal(Math.round(r.gaps[0].gap / DEG), -15);
  assert.equal(Math.round(r.min / DEG), -15);
});

Deno.test("angularGaps() rejects mismatched features and out-of-range labels", () => {
  assert.throws(() => angularGaps(new Float32Array(3), new Int32Array(2), 2), RangeError);
  assert.throws(() => angularGaps(onCircle([0]), new Int32Array([2]), 2), /label 2/);
});

Deno.test("maxMargin2d() is 1 - cos(2π/C)", () => {
  assert.ok(Math.abs(maxMargin2d(4) - 1) < 1e-12);
  assert.ok(Math.abs(maxMargin2d(8) - (1 - Math.SQRT1_2)) < 1e-12);
});

Deno.test("makeToyStep() lowers the CosFace loss and logs every step's loss", async () => {
  const data = makeToyData({ perClass: 8 });
  const step = makeToyStep({ kind: "cosface", s: 16, m: 0.2 });
  const hyper = { lr: cg.tensor(0.01) };
  let state = initToyState({}, 30);
  for (let i = 0; i < 30; i++) state = step(state, data.batch, hyper);
  const log = Array.from(await state.lossLog.data());
  assert.equal(log.length, 30);
  assert.ok(log.every(Number.isFinite));
  assert.ok(log[29] < log[0] / 2, `loss ${log[0]} -> ${log[29]}`);
  assert.equal(step.traces, 1);
});
