/**
 * cosgrad's implementations of the standard workloads of bench/WORKLOADS.md: M1, M4, C1
 * (forward, forward+backward), L1, T1 and T2, on the `webgpu`, `wasm` and `cpu` backends, reporting
 * {@linkcode PeerResult} rows like the peers in bench/peers/ do, so that one table holds all.
 *
 * @module
 */

import * as cg from "../mod.ts";
import {
  inputData,
  NETWORK,
  networkParams,
  seededLabels,
  seededValues,
  WORKLOADS,
} from "./_inputs.ts";
import type { TimingMode } from "./_timing.ts";
import {
  errorText,
  hostNorm,
  l1Check,
  type PeerResult,
  type PreparedRun,
  prepareVariant,
  timedResults,
  type Variant,
} from "./peers/_result.ts";
import {
  compareSamples,
  conv2dAt,
  conv2dDwAt,
  conv2dDxAt,
  matmulAt,
  sampleIndices,
} from "./peers/_reference.ts";

type T = cg.Tensor;

/** cosgrad's backends the comparison runs. */
export type CosgradBackend = "webgpu" | "wasm" | "cpu";

/** Options of {@linkcode runCosgrad}. */
export type CosgradRunOptions = {
  /** Backend. */
  backend: CosgradBackend;
  /** Timing modes; default ["latency"]. */
  modes?: TimingMode[];
  /** Timed repetitions (at least 5). */
  reps?: number;
  /** A call slower than this (ms) is reported as too slow after one call; default 60000. */
  maxCallMs?: number;
};

type Prepared = PreparedRun;

function f32(spec: { seed: number; shape: readonly number[]; scale?: number }): T {
  return cg.tensor(inputData(spec) as Float32Array, [...spec.shape]);
}

function labelsTensor(data: Int32Array): T {
  return cg.tensor(data, [data.length], { dtype: "int32" });
}

function prepareMatmul(n: 1024 | 4096, wait: () => Promise<void>): Prepared {
  const spec = n === 1024 ? WORKLOADS.M1 : WORKLOADS.M4;
  const ad = inputData(spec.inputs.a) as Float32Array;
  const bd = inputData(spec.inputs.b) as Float32Array;
  const a = cg.tensor(ad, [n, n]), b = cg.tensor(bd, [n, n]);
  const mm = cg.compile((a: T, b: T) => [cg.matmul(a, b)]);
  let out: T[] = [];
  return {
    run: () => {
      out = mm(a, b);
    },
    wait,
    check: async () => {
      const got = await out[0].data() as Float32Array;
      const c = compareSamples(got, (k) => matmulAt(ad, bd, { n, k }), {
        indices: sampleIndices(16, n * n),
        name: "C",
      });
      return { check: c.text, wrong: !c.ok };
    },
  };
}

function prepareConv(backward: boolean, wait: () => Promise<void>): Prepared {
  const { x: xs, w: ws, dy: dys } = WORKLOADS.C1.inputs;
  const xd = inputData(xs) as Float32Array, wd = inputData(ws) as Float32Array;
  const dyd = inputData(dys) as Float32Array;
  const x = cg.tensor(xd, [...xs.shape]), w = cg.tensor(wd, [...ws.shape]);
  const dy = cg.tensor(dyd, [...dys.shape]);
  const fwd = cg.compile((x: T, w: T) => [cg.conv2d(x, w, { padding: 1 })]);
  const both = cg.compile((x: T, w: T, dy: T) => {
    const [y, back] = cg.vjp((x: T, w: T) => cg.conv2d(x, w, { padding: 1 }), [x, w]);
    return [y as T, ...back(dy) as T[]];
  });
  let outs: T[] = [];
  return {
    run: () => {
      outs = backward ? both(x, w, dy) : fwd(x, w);
    },
    wait,
    check: async () => {
      const idx = sampleIndices(12, xd.length);
      if (!backward) {
        const c = compareSamples(await outs[0].data() as Float32Array, (k) => conv2dAt(xd, wd, k), {
          indices: idx,
          name: "y",
        });
        return { check: c.text, wrong: !c.ok };
      }
      const cx = compareSamples(
        await outs[1].data() as Float32Array,
        (k) => conv2dDxAt(dyd, wd, k),
        {
          indices: idx,
          name: "dx",
        },
      );
      const cw = compareSamples(
        await outs[2].data() as Float32Array,
        (k) => conv2dDwAt(xd, dyd, k),
        {
          indices: sampleIndices(12, wd.length),
          name: "dw",
        },
      );
      return { check: `${cx.text}; ${cw.text}`, wrong: !cx.ok || !cw.ok };
    },
  };
}

/** The compiled L1 step: CosFace loss and its gradients of features and class weights. */
function cosfaceStep(s: number, m: number) {
  return cg.compile((f: T, w: T, y: T) => {
    const [loss, g] = cg.valueAndGrad(
      (f: T, w: T) => cg.losses.cosface(f, w, y, { s, m }),
      { argnums: [0, 1] },
    )(f, w) as [T, T[]];
    return [loss, ...g];
  });
}

/**
 * L1 (CosFace forward+backward) with cosgrad on the current backend, on the seeded inputs of
 * WORKLOADS.md at any shape (the standard one is batch 256, dim 512, classes 10000): the loss
 * and the norms of both gradients (accumulated in float64 on the host).
 *
 * @example
 * ```ts
 * import { cosgradL1 } from "./cosgrad.ts";
 * const r = await cosgradL1({ batch: 4, dim: 8, classes: 10 });
 * r.loss > 0; // true
 * ```
 */
export async function cosgradL1(
  shape: { batch: number; dim: number; classes: number },
): Promise<{ loss: number; gradFeaturesNorm: number; gradWeightsNorm: number }> {
  const { features, weights, labels } = WORKLOADS.L1.inputs;
  const { s, m } = WORKLOADS.L1.params;
  const f = cg.tensor(seededValues(features.seed, shape.batch * shape.dim), [
    shape.batch,
    shape.dim,
  ]);
  const w = cg.tensor(seededValues(weights.seed, shape.classes * shape.dim), [
    shape.classes,
    shape.dim,
  ]);
  const y = labelsTensor(seededLabels(labels.seed, shape.batch, shape.classes));
  const [loss, gf, gw] = cosfaceStep(s, m)(f, w, y);
  return {
    loss: (await loss.data())[0],
    gradFeaturesNorm: hostNorm(await gf.data()),
    gradWeightsNorm: hostNorm(await gw.data()),
  };
}

function prepareCosface(wait: () => Promise<void>): Prepared {
  const { features, weights, labels } = WORKLOADS.L1.inputs;
  const { s, m } = WORKLOADS.L1.params;
  const f = f32(features), w = f32(weights);
  const y = labelsTensor(inputData(labels) as Int32Array);
  const step = cosfaceStep(s, m);
  let outs: T[] = [];
  return {
    run: () => {
      outs = step(f, w, y);
    },
    wait,
    check: async () => {
      const loss = (await outs[0].data())[0];
      const gx = hostNorm(await outs[1].data()), gw = hostNorm(await outs[2].data());
      return { loss, ...l1Check(loss, gx, gw) };
    },
  };
}

export async function prepareTrain(
  id: "T1" | "T2",
  wait: () => Promise<void>,
  maxCallMs: number,
): Promise<Prepared> {
  const wl = WORKLOADS[id];
  const { size, classes } = wl.params;
  const p0 = networkParams({ size, classes });
  const net = cg.nn.smallNet.init(cg.randomKey(0), { inputSize: size });
  // The shared seeded weights replace the random ones, so every framework starts alike.
  net.params.stages.forEach((st, i) => {
    for (const [j, conv] of [st.conv1, st.conv2].entries()) {
      const c = p0.convs[2 * i + j];
      conv.weight = cg.tensor(c.data as Float32Array<ArrayBuffer>, c.shape);
    }
  });
  net.params.linear.weight = cg.tensor(
    p0.linear.data as Float32Array<ArrayBuffer>,
    p0.linear.shape,
  );
  const params = {
    net: net.params,
    head: cg.tensor(p0.classWeights.data as Float32Array<ArrayBuffer>, p0.classWeights.shape),
  };
  const opt = cg.optim.sgd({
    lr: NETWORK.lr,
    momentum: NETWORK.momentum,
    weightDecay: NETWORK.weightDecay,
  });
  type P = typeof params;
  type S = typeof net.state;
  const step = cg.compile((p: P, bn: S, o: cg.optim.OptState, x: T, y: T) => {
    const loss = (q: P) => {
      const r = cg.nn.smallNet.apply(q.net, bn, x, { training: true });
      return [cg.losses.cosface(r.out, q.head, y, { s: NETWORK.s, m: NETWORK.m }), r.state];
    };
    const [[value, state], grads] = cg.valueAndGrad(loss, { hasAux: true })(p) as unknown as [
      [T, S],
      P,
    ];
    const u = opt.update(grads, o, p);
    return { params: u.params, bn: state, opt: u.state, loss: value };
  }, { donate: [0, 1, 2] });
  const x = f32(wl.inputs.images);
  const y = labelsTensor(inputData(wl.inputs.labels) as Int32Array);
  let s = { params, bn: net.state, opt: opt.init(params) as cg.optim.OptState, loss: x };
  const run = () => {
    s = step(s.params, s.bn, s.opt, x, y);
  };
  // Two untimed steps, as the peers do: the first compiles, and both read their losses. The
  // second is skipped when the first took more than 5x the limit of a steady call.
  let t0 = performance.now();
  run();
  const loss0 = (await s.loss.data())[0];
  await wait();
  const firstMs = performance.now() - t0;
  const facts: Partial<PeerResult> = { loss: loss0, extra: memoryFacts(step.memory(), params) };
  const steadyMs: number[] = [];
  if (firstMs <= 5 * maxCallMs) {
    t0 = performance.now();
    run();
    facts.extra = { ...facts.extra, loss1: (await s.loss.data())[0] };
    await wait();
    steadyMs.push(performance.now() - t0);
  }
  return { run, wait, prewarmed: { facts, firstMs, steadyMs } };
}

const MIB = 2 ** 20;

/**
 * Device memory of a training step (issue 7): the planned peak beside what a step cannot do
 * without (parameters, their momentum, the largest single buffer), in MiB.
 */
function memoryFacts(m: cg.MemoryReport, params: unknown): Record<string, number> {
  const paramBytes = cg.treeFlatten(params).leaves.reduce(
    (a: number, t: cg.Tensor) => a + 4 * t.size,
    0,
  );
  return {
    peakMiB: m.peakBytes / MIB,
    liveIntermediateMiB: m.liveIntermediateBytes / MIB,
    paramsMiB: paramBytes / MIB,
    momentumMiB: paramBytes / MIB,
    largestBufferMiB: m.largestSlotBytes / MIB,
  };
}

/**
 * Prepares one workload variant on the WebGPU backend (compiling it and running its first
 * calls, as the timed runs do) and returns the backend: the tuner's way to learn which kernel
 * classes a workload uses.
 *
 * @example
 * ```ts ignore
 * import { prepareCosgradWebGpu } from "./cosgrad.ts";
 * const backend = await prepareCosgradWebGpu("T1");
 * ```
 */
export async function prepareCosgradWebGpu(workload: Variant): Promise<cg.Backend> {
  const backend = await cg.initWebGpu();
  const wait = () => backend.synchronize();
  await prepareVariant(workload, {
    matmul: (n) => prepareMatmul(n, wait),
    conv: (backward) => prepareConv(backward, wait),
    cosface: () => prepareCosface(wait),
    train: (id) => prepareTrain(id, wait, 60_000),
  });
  await wait();
  return backend;
}

/**
 * Prepares one workload variant on the current backend (as the timed runs do; T1 and T2 run
 * their two untimed steps): the profilers' way to run a workload's compiled program.
 *
 * @example
 * ```ts ignore
 * import * as cg from "../mod.ts";
 * import { prepareCosgrad } from "./cosgrad.ts";
 * const backend = await cg.setBackend("wasm");
 * const prep = await prepareCosgrad("C1-fwd", () => backend.synchronize());
 * prep.run();
 * await prep.wait();
 * ```
 */
export function prepareCosgrad(workload: Variant, wait: () => Promise<void>): Promise<Prepared> {
  return prepareVariant(workload, {
    matmul: (n) => prepareMatmul(n, wait),
    conv: (backward) => prepareConv(backward, wait),
    cosface: () => prepareCosface(wait),
    train: (id) => prepareTrain(id, wait, 60_000),
  });
}

/**
 * Runs one workload variant with cosgrad on one backend: one result per timing mode, or one
 * result with `error`. On WebGPU the wait is the backend's `synchronize` (the queue finished).
 *
 * @example
 * ```ts ignore
 * import { runCosgrad } from "./cosgrad.ts";
 * const [r] = await runCosgrad("M1", { backend: "webgpu", modes: ["throughput"] });
 * console.log(r.ms, r.check);
 * ```
 */
export async function runCosgrad(
  workload: Variant,
  opts: CosgradRunOptions,
): Promise<PeerResult[]> {
  const version = "0.1.0";
  const base: PeerResult = { framework: "cosgrad", version, backend: opts.backend, workload };
  const modes = opts.modes ?? ["latency"];
  const maxCallMs = opts.maxCallMs ?? 60_000;
  try {
    let backend: cg.Backend;
    if (opts.backend === "webgpu") {
      backend = await cg.initWebGpu();
      base.adapter = (backend as unknown as { description: string }).description;
    } else if (opts.backend === "wasm") {
      backend = await cg.setBackend("wasm");
      base.adapter = (backend as unknown as { description: string }).description;
    } else {
      backend = await cg.setBackend("cpu");
    }
    const wait = () => backend.synchronize();
    const prep = await prepareVariant(workload, {
      matmul: (n) => prepareMatmul(n, wait),
      conv: (backward) => prepareConv(backward, wait),
      cosface: () => prepareCosface(wait),
      train: (id) => prepareTrain(id, wait, maxCallMs),
    });
    return await timedResults(base, prep, { modes, reps: opts.reps, maxCallMs });
  } catch (e) {
    return [{ ...base, error: errorText(e) }];
  }
}
