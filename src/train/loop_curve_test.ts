// Issue 7, "training curves unchanged": trainLoop's back-to-back schedule (reads every 20 steps)
// must train exactly like a loop that waits for the host after every step: the same compiled,
// donated program on the same inputs, so every step's metrics and the final state must be
// float32 bit-equal. Also checks trainLoop's claims: no metric row lost, host waits counted,
// and the next batch made while the previous step is still in flight.
import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import { cpuBackend, withBackendAsync } from "../backend/registry.ts";
import type { Backend } from "../backend/storage.ts";
import { gpu } from "../backend/webgpu/_gpu_test_util.ts";
import { trainLoop } from "./loop.ts";

type T = cg.Tensor;
const { nn, optim } = cg;

/** A small real model: conv (stride 2) -> BN -> PReLU -> linear -> BN1d -> CosFace head. */
interface Params {
  conv: cg.nn.Conv2dParams;
  bn1: cg.nn.BatchNormParams;
  act: cg.nn.PreluParams;
  fc: cg.nn.LinearParams;
  bn2: cg.nn.BatchNormParams;
  head: T;
}
interface State {
  params: Params;
  bn: { bn1: cg.nn.BatchNormState; bn2: cg.nn.BatchNormState };
  opt: cg.optim.OptState;
}
interface Batch {
  x: T;
  y: T;
}

const BATCH = 16, CLASSES = 10, EMB = 16, STEPS = 200, READ_EVERY = 20;
const opt = optim.sgd({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });

/** The initial state from a fixed seed (fresh tensors each call: the loops donate them). */
function init(): State {
  const [k1, k2, k3] = cg.split(cg.randomKey(7), 3);
  const b1 = nn.initBatchNorm(8), b2 = nn.initBatchNorm(EMB);
  const params: Params = {
    conv: nn.initConv2d(k1, { inChannels: 3, outChannels: 8, bias: false }),
    bn1: b1.params,
    act: nn.initPrelu(8),
    fc: nn.initLinear(k2, { inFeatures: 8 * 4 * 4, outFeatures: EMB }),
    bn2: b2.params,
    head: cg.normal(k3, [CLASSES, EMB]),
  };
  return { params, bn: { bn1: b1.state, bn2: b2.state }, opt: opt.init(params) };
}

/** Five distinct seeded batches; step i uses batch i mod 5. */
function batches(): Batch[] {
  return Array.from({ length: 5 }, (_, j) => ({
    x: cg.normal(cg.randomKey(100 + j), [BATCH, 3, 8, 8]),
    y: cg.tensor(
      Int32Array.from({ length: BATCH }, (_, i) => (i * 3 + j) % CLASSES),
      [BATCH],
      { dtype: "int32" },
    ),
  }));
}

function trainStep(s: State, b: Batch): { state: State; metrics: T } {
  const loss = (p: Params) => {
    let h = nn.conv2d(p.conv, b.x, { stride: 2, padding: 1 });
    const r1 = nn.batchNorm(p.bn1, s.bn.bn1, h, { training: true });
    h = nn.flatten(nn.prelu(p.act, r1.out));
    const r2 = nn.batchNorm(p.bn2, s.bn.bn2, nn.linear(p.fc, h), { training: true });
    const l = cg.losses.cosface(r2.out, p.head, b.y, { s: 64, m: 0.35 });
    return [l, { bn1: r1.state, bn2: r2.state }] as [T, State["bn"]];
  };
  const [[value, bn], grads] = cg.valueAndGrad(loss, { hasAux: true })(s.params) as [
    [T, State["bn"]],
    Params,
  ];
  const u = opt.update(grads, s.opt, s.params);
  // Two metrics per row (the loss and the mean |head weight|), so rows are sliced right.
  const metrics = cg.stack([value, cg.mean(cg.abs(u.params.head))]);
  return { state: { params: u.params as Params, bn, opt: u.state }, metrics };
}

/** Bits of every leaf of a state, in tree order. */
async function bits(s: State): Promise<Uint32Array[]> {
  const { leaves } = cg.treeFlatten(s);
  const out: Uint32Array[] = [];
  for (const l of leaves) {
    const d = await l.data();
    out.push(new Uint32Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength)));
  }
  return out;
}

function rowBits(r: Float32Array): number[] {
  return [...new Uint32Array(Float32Array.from(r).buffer)];
}

async function curves(backend: Backend): Promise<void> {
  await withBackendAsync(backend, async () => {
    const step = cg.compile(trainStep, { donate: [0] });
    const pool = batches();

    // Reference: a host wait (metrics read back) after every step.
    let s = init();
    const ref: Float32Array[] = [];
    for (let i = 0; i < STEPS; i++) {
      const r = step(s, pool[i % pool.length]);
      s = r.state;
      ref.push(Float32Array.from(await r.metrics.data()));
    }
    const refBits = await bits(s);

    // trainLoop: back to back, one read every 20 steps; the order of calls is logged.
    const log: string[] = [];
    const sync = backend.synchronize.bind(backend);
    let syncs = 0;
    backend.synchronize = () => {
      syncs++;
      log.push("sync");
      return sync();
    };
    const reads: number[] = [];
    const chunks: Float32Array[] = [];
    let r;
    try {
      r = await trainLoop<State, Batch>({
        step: (st, b) => {
          log.push(`step ${pool.indexOf(b)}`);
          return step(st, b);
        },
        init: init(),
        batch: (i) => {
          log.push(`batch ${i % pool.length}`);
          return pool[i % pool.length];
        },
        steps: STEPS,
        readEvery: READ_EVERY,
        onMetrics: (first, rows) => {
          log.push(`read ${first}`);
          reads.push(first);
          chunks.push(...rows);
        },
      });
    } finally {
      delete (backend as Partial<Backend>).synchronize; // back to the prototype's method
    }
    assert.equal(backend.synchronize, Object.getPrototypeOf(backend).synchronize);

    // No row lost, in order, and each handed to onMetrics once.
    assert.equal(r.metrics.length, STEPS);
    assert.deepEqual(reads, Array.from({ length: STEPS / READ_EVERY }, (_, k) => k * READ_EVERY));
    assert.deepEqual(chunks.map(rowBits), r.metrics.map(rowBits));
    // Waits: one read per 20 steps and the final synchronisation, each counted.
    assert.equal(r.waits, reads.length + syncs);
    assert.equal(syncs, 1);
    // Batch i + 1 is made right after step i is enqueued, before any host wait.
    const expected: string[] = ["batch 0"];
    for (let i = 0; i < STEPS; i++) {
      expected.push(`step ${i % 5}`);
      if (i + 1 < STEPS) expected.push(`batch ${(i + 1) % 5}`);
      if ((i + 1) % READ_EVERY === 0) expected.push(`read ${i + 1 - READ_EVERY}`);
    }
    expected.push("sync");
    assert.deepEqual(log, expected);

    // The same training curve, bit for bit, and the same final state.
    for (let i = 0; i < STEPS; i++) {
      assert.deepEqual(
        rowBits(r.metrics[i]),
        rowBits(ref[i]),
        `step ${i}: ${r.metrics[i]} vs ${ref[i]}`,
      );
    }
    const got = await bits(r.state);
    assert.equal(got.length, refBits.length);
    for (let k = 0; k < got.length; k++) assert.deepEqual(got[k], refBits[k], `state leaf ${k}`);
    assert.equal(step.traces, 1);
    console.log(`${backend.name}: loss ${ref[0][0]} -> ${ref[STEPS - 1][0]}, ${r.waits} waits`);
    // It is a real training run: the loss falls.
    const mean = (a: Float32Array[]) => a.reduce((t, x) => t + x[0], 0) / a.length;
    assert.ok(mean(ref.slice(-20)) < mean(ref.slice(0, 20)) / 2, `${ref[0][0]} -> ${ref[199][0]}`);
  });
}

Deno.test({
  name: "trainLoop() reproduces a per-step-wait training run bit for bit on webgpu",
  ignore: gpu === null,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: () => curves(gpu!),
});

Deno.test("trainLoop() counts every host wait and loses no row when maxInFlight < readEvery", async () => {
  const backend = cpuBackend();
  await withBackendAsync(backend, async () => {
    const step = cg.compile((w: T, x: T) => ({
      state: cg.sub(w, cg.mul(x, 0.5)),
      metrics: cg.reshape(w, [1]),
    }), { donate: [0] });
    let syncs = 0;
    const sync = backend.synchronize.bind(backend);
    backend.synchronize = () => {
      syncs++;
      return sync();
    };
    let reads = 0;
    try {
      const r = await trainLoop({
        step,
        init: cg.tensor([0]),
        batch: () => cg.tensor([-2]),
        steps: 45,
        readEvery: 20,
        maxInFlight: 5,
        onMetrics: () => {
          reads++;
        },
      });
      assert.deepEqual(r.metrics.map((m) => m[0]), Array.from({ length: 45 }, (_, i) => i));
      assert.equal(reads, 3);
      // Syncs after 5, 10, 15 unconfirmed steps in each block of 20, at step 45, and the final.
      assert.equal(syncs, 3 + 3 + 1 + 1);
      assert.equal(r.waits, reads + syncs);
    } finally {
      delete (backend as Partial<Backend>).synchronize;
    }
  });
});

Deno.test("trainLoop() stops when its signal aborts: metrics read, state after the last step", async () => {
  await withBackendAsync(cpuBackend(), async () => {
    const step = cg.compile((w: T, x: T) => ({
      state: cg.sub(w, x),
      metrics: cg.reshape(w, [1]),
    }), { donate: [0] });
    const stop = new AbortController();
    const r = await trainLoop({
      step,
      init: cg.tensor([0]),
      batch: (i) => {
        if (i === 7) stop.abort();
        return cg.tensor([-1]);
      },
      steps: 100,
      readEvery: 5,
      signal: stop.signal,
    });
    // Batch 7 was prepared while step 6 ran; the loop stops before running step 7.
    assert.equal(r.stopped, true);
    assert.deepEqual(r.metrics.map((m) => m[0]), [0, 1, 2, 3, 4, 5, 6]);
    assert.deepEqual(Array.from(await r.state.data()), [7]);
  });
});
