/**
 * TensorFlow.js 4.22.0 as a benchmark peer: backends cpu, wasm and webgpu, workloads M1, M4,
 * C1 (forward, forward+backward), L1, T1 and T2 of bench/WORKLOADS.md.
 *
 * TensorFlow.js convolutions are NHWC: the seeded NCHW/OIHW inputs are transposed once when
 * uploaded (the same numbers, its native layout), and results are transposed back for checks.
 *
 * @module
 */

import * as tf from "npm:@tensorflow/tfjs@4.22.0";
import "npm:@tensorflow/tfjs-backend-webgpu@4.22.0";
import { setWasmPaths } from "npm:@tensorflow/tfjs-backend-wasm@4.22.0";
import { inputData, NETWORK, networkParams, WORKLOADS } from "../_inputs.ts";
import type { TimingMode } from "../_timing.ts";
import {
  compareSamples,
  conv2dAt,
  conv2dDwAt,
  conv2dDxAt,
  matmulAt,
  sampleIndices,
} from "./_reference.ts";
import {
  errorText,
  hostNorm,
  l1Check,
  type PeerResult,
  prepareVariant,
  type Prewarmed,
  timedResults,
  type Variant,
} from "./_result.ts";

/** Backends of TensorFlow.js this peer runs. */
export type TfjsBackend = "cpu" | "wasm" | "webgpu";

/** What was initialised: version, backend and (WebGPU) the adapter's description. */
export type TfjsInfo = { version: string; backend: TfjsBackend; adapter?: string; notes?: string };

let wasmPathsSet = false;

/**
 * Selects and initialises a TensorFlow.js backend. For wasm, the .wasm binaries are loaded from
 * the npm package's own folder in Deno's cache.
 *
 * @example
 * ```ts
 * import { tfjsInit } from "./tfjs.ts";
 * const info = await tfjsInit("cpu");
 * info.version; // "4.22.0"
 * ```
 */
export async function tfjsInit(backend: TfjsBackend): Promise<TfjsInfo> {
  if (backend === "wasm" && !wasmPathsSet) {
    const entry = import.meta.resolve("npm:@tensorflow/tfjs-backend-wasm@4.22.0");
    setWasmPaths(new URL("./", entry).pathname);
    wasmPathsSet = true;
  }
  const ok = await tf.setBackend(backend);
  await tf.ready();
  if (!ok || tf.getBackend() !== backend) {
    throw new TypeError(`TensorFlow.js backend ${backend} could not be initialised`);
  }
  const info: TfjsInfo = { version: tf.version_core, backend };
  if (backend === "webgpu") {
    // deno-lint-ignore no-explicit-any
    const dev = (tf.backend() as any).device as GPUDevice;
    info.adapter = dev.adapterInfo?.description || dev.adapterInfo?.vendor || "unknown adapter";
  }
  if (backend === "wasm") {
    info.notes = `simd=${tf.env().getBool("WASM_HAS_SIMD_SUPPORT")} threads=${
      tf.env().getBool("WASM_HAS_MULTITHREAD_SUPPORT")
    }`;
  }
  return info;
}

/** Waits until the backend has finished everything enqueued (WebGPU: submit + queue done). */
async function tfWait(): Promise<void> {
  if (tf.getBackend() !== "webgpu") return; // cpu and wasm kernels run synchronously
  // deno-lint-ignore no-explicit-any
  const b = tf.backend() as any;
  b.ensureCommandEncoderReady();
  b.endComputePassEncoder();
  b.submitQueue();
  await (b.device as GPUDevice).queue.onSubmittedWorkDone();
}

function nchwToNhwc(data: Float32Array, shape: readonly number[]): tf.Tensor4D {
  const [n, c, h, w] = shape;
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, [n, c, h, w]), [0, 2, 3, 1]));
}

function oihwToHwio(data: Float32Array, shape: readonly number[]): tf.Tensor4D {
  const [o, i, h, w] = shape;
  return tf.tidy(() => tf.transpose(tf.tensor4d(data, [o, i, h, w]), [2, 3, 1, 0]));
}

function l2normalize(x: tf.Tensor2D): tf.Tensor2D {
  return tf.div(x, tf.maximum(tf.sqrt(tf.sum(tf.square(x), 1, true)), 1e-12));
}

/** CosFace loss (mean over the batch) of features x [B, D], class weights w [C, D]. */
function cosfaceLoss(
  x: tf.Tensor2D,
  w: tf.Tensor2D,
  oneHot: tf.Tensor2D,
  opts: { s: number; m: number },
): tf.Scalar {
  const cos = tf.clipByValue(tf.matMul(l2normalize(x), l2normalize(w), false, true), -1, 1);
  const logits = tf.mul(tf.sub(cos, tf.mul(oneHot, opts.m)), opts.s);
  const target = tf.sum(tf.mul(logits, oneHot), 1);
  return tf.mean(tf.sub(tf.logSumExp(logits, 1), target));
}

/**
 * CosFace loss and its gradients with TensorFlow.js on the current backend, for features
 * [n, d], class weights [classes, d] (one row per class) and integer labels.
 *
 * @example
 * ```ts
 * import { tfjsCosface, tfjsInit } from "./tfjs.ts";
 * await tfjsInit("cpu");
 * const r = await tfjsCosface(
 *   { features: new Float32Array([1, 0, 0, 1]), weights: new Float32Array([1, 0, 0, 1]), labels: new Int32Array([0, 1]) },
 *   { n: 2, d: 2, classes: 2 },
 * );
 * r.loss > 0; // true
 * ```
 */
export async function tfjsCosface(
  data: { features: Float32Array; weights: Float32Array; labels: Int32Array },
  opts: { n: number; d: number; classes: number; s?: number; m?: number },
): Promise<{ loss: number; gradFeatures: Float32Array; gradWeights: Float32Array }> {
  const s = opts.s ?? 64, m = opts.m ?? 0.35;
  const x = tf.tensor2d(data.features, [opts.n, opts.d]);
  const w = tf.tensor2d(data.weights, [opts.classes, opts.d]);
  const oh = tf.tidy(() => tf.oneHot(tf.tensor1d(data.labels, "int32"), opts.classes).toFloat());
  const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) =>
    cosfaceLoss(a as tf.Tensor2D, b as tf.Tensor2D, oh as tf.Tensor2D, { s, m })
  )([x, w]);
  const out = {
    loss: (await value.data())[0],
    gradFeatures: (await grads[0].data()) as Float32Array,
    gradWeights: (await grads[1].data()) as Float32Array,
  };
  tf.dispose([x, w, oh, value, ...grads]);
  return out;
}

/** Options of {@linkcode runTfjs}. */
export type TfjsRunOptions = {
  /** Backend. */
  backend: TfjsBackend;
  /** Timing modes; default ["latency"] (WebGPU: both). */
  modes?: TimingMode[];
  /** Timed repetitions (at least 5). */
  reps?: number;
  /** A call slower than this (ms) is reported as too slow after one call; default 60000. */
  maxCallMs?: number;
};

type Prepared = {
  run: () => void;
  wait: () => Promise<void>;
  /** Called once after warm-up: checks the last result; returns loss/check facts. */
  check?: () => Promise<Partial<PeerResult>>;
  dispose: () => void;
  /** Untimed calls done already (T1/T2), their facts, and the last call's time. */
  prewarmed?: Prewarmed;
};

function prepareMatmul(n: 1024 | 4096): Prepared {
  const spec = n === 1024 ? WORKLOADS.M1 : WORKLOADS.M4;
  const ad = inputData(spec.inputs.a) as Float32Array,
    bd = inputData(spec.inputs.b) as Float32Array;
  const a = tf.tensor2d(ad, [n, n]), b = tf.tensor2d(bd, [n, n]);
  let out: tf.Tensor | undefined;
  return {
    run: () => {
      out?.dispose();
      out = tf.matMul(a, b);
    },
    wait: tfWait,
    check: async () => {
      const got = await out!.data();
      const c = compareSamples(got, (k) => matmulAt(ad, bd, { n, k }), {
        indices: sampleIndices(16, n * n),
        name: "C",
      });
      return { check: c.text, wrong: !c.ok };
    },
    dispose: () => tf.dispose([a, b, out!]),
  };
}

function prepareConv(backward: boolean): Prepared {
  const { x: xs, w: ws, dy: dys } = WORKLOADS.C1.inputs;
  const xd = inputData(xs) as Float32Array, wd = inputData(ws) as Float32Array;
  const dyd = inputData(dys) as Float32Array;
  const x = nchwToNhwc(xd, xs.shape), w = oihwToHwio(wd, ws.shape);
  const dy = nchwToNhwc(dyd, dys.shape);
  const conv = (a: tf.Tensor, b: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, 1, 1);
  const gradFn = tf.grads(conv);
  let outs: tf.Tensor[] = [];
  return {
    run: () => {
      tf.dispose(outs);
      outs = backward ? gradFn([x, w], dy) : [conv(x, w)];
    },
    wait: tfWait,
    check: async () => {
      const idx = sampleIndices(12, xd.length);
      if (!backward) {
        const y = tf.transpose(outs[0], [0, 3, 1, 2]);
        const c = compareSamples(await y.data(), (k) => conv2dAt(xd, wd, k), {
          indices: idx,
          name: "y",
        });
        y.dispose();
        return { check: c.text, wrong: !c.ok };
      }
      const dx = tf.transpose(outs[0], [0, 3, 1, 2]), dw = tf.transpose(outs[1], [3, 2, 0, 1]);
      const cx = compareSamples(await dx.data(), (k) => conv2dDxAt(dyd, wd, k), {
        indices: idx,
        name: "dx",
      });
      const cw = compareSamples(await dw.data(), (k) => conv2dDwAt(xd, dyd, k), {
        indices: sampleIndices(12, wd.length),
        name: "dw",
      });
      tf.dispose([dx, dw]);
      return { check: `${cx.text}; ${cw.text}`, wrong: !cx.ok || !cw.ok };
    },
    dispose: () => tf.dispose([x, w, dy, ...outs]),
  };
}

function prepareCosface(): Prepared {
  const { features, weights, labels } = WORKLOADS.L1.inputs;
  const { s, m } = WORKLOADS.L1.params;
  const x = tf.tensor2d(inputData(features) as Float32Array, [256, 512]);
  const w = tf.tensor2d(inputData(weights) as Float32Array, [10000, 512]);
  const oh = tf.tidy(() =>
    tf.oneHot(tf.tensor1d(inputData(labels) as Int32Array, "int32"), 10000).toFloat()
  );
  const f = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) =>
    cosfaceLoss(a as tf.Tensor2D, b as tf.Tensor2D, oh as tf.Tensor2D, { s, m })
  );
  let outs: tf.Tensor[] = [];
  return {
    run: () => {
      tf.dispose(outs);
      const { value, grads } = f([x, w]);
      outs = [value, ...grads];
    },
    wait: tfWait,
    check: async () => {
      const loss = (await outs[0].data())[0];
      const gx = hostNorm(await outs[1].data()), gw = hostNorm(await outs[2].data());
      return { loss, ...l1Check(loss, gx, gw) };
    },
    dispose: () => tf.dispose([x, w, oh, ...outs]),
  };
}

/** Permutes linear rows from NCHW flatten order (c, h, w) to NHWC order (h, w, c). */
function linearRowsToNhwc(data: Float32Array, c: number, hw: number, out: number): Float32Array {
  const res = new Float32Array(data.length);
  for (let ci = 0; ci < c; ci++) {
    for (let p = 0; p < hw; p++) {
      res.set(data.subarray((ci * hw + p) * out, (ci * hw + p + 1) * out), (p * c + ci) * out);
    }
  }
  return res;
}

async function prepareTrain(id: "T1" | "T2", maxCallMs: number): Promise<Prepared> {
  const wl = WORKLOADS[id];
  const { batch, size, classes } = wl.params;
  const p0 = networkParams({ size, classes });
  const convs = p0.convs.map((c) => tf.variable(oihwToHwio(c.data, c.shape)));
  const widths = p0.convs.map((c) => c.shape[0]).concat([NETWORK.embedding]);
  const gammas = widths.map((c) => tf.variable(tf.ones([c])));
  const betas = widths.map((c) => tf.variable(tf.zeros([c])));
  const slopes = p0.convs.map((c) => tf.variable(tf.fill([c.shape[0]], NETWORK.prelu0)));
  const last = NETWORK.stageWidths[3], hw = (size / 16) ** 2;
  const linear = tf.variable(
    tf.tensor2d(linearRowsToNhwc(p0.linear.data, last, hw, NETWORK.embedding), p0.linear.shape),
  );
  const classW = tf.variable(tf.tensor2d(p0.classWeights.data, p0.classWeights.shape));
  const vars = [...convs, ...gammas, ...betas, ...slopes, linear, classW];
  const bufs = vars.map((v) => tf.variable(tf.zerosLike(v)));
  const runMean = widths.map((c) => tf.variable(tf.zeros([c])));
  const runVar = widths.map((c) => tf.variable(tf.ones([c])));
  const images = nchwToNhwc(inputData(wl.inputs.images) as Float32Array, wl.inputs.images.shape);
  const oh = tf.tidy(() =>
    tf.oneHot(tf.tensor1d(inputData(wl.inputs.labels) as Int32Array, "int32"), classes).toFloat()
  ) as tf.Tensor2D;
  const eps = NETWORK.bnEps;
  const { lr, momentum, weightDecay } = NETWORK;

  function bn(x: tf.Tensor, k: number, axes: number[], stats: tf.Tensor[]): tf.Tensor {
    const { mean, variance } = tf.moments(x, axes);
    stats.push(tf.keep(mean), tf.keep(variance));
    return tf.add(
      tf.mul(tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps))), gammas[k]),
      betas[k],
    );
  }
  function lossFn(stats: tf.Tensor[]): tf.Scalar {
    let h: tf.Tensor = images;
    for (let k = 0; k < convs.length; k++) {
      h = tf.conv2d(h as tf.Tensor4D, convs[k] as tf.Variable<tf.Rank.R4>, k % 2 === 0 ? 2 : 1, 1);
      h = tf.prelu(bn(h, k, [0, 1, 2], stats), slopes[k]);
    }
    const flat = tf.reshape(h, [batch, -1]);
    const emb = bn(
      tf.matMul(flat as tf.Tensor2D, linear as tf.Variable<tf.Rank.R2>),
      8,
      [0],
      stats,
    );
    return cosfaceLoss(emb as tf.Tensor2D, classW as tf.Variable<tf.Rank.R2>, oh, NETWORK);
  }
  let lossT: tf.Tensor | undefined;
  const n = batch * (size / 2) ** 2;
  function step(): void {
    lossT?.dispose();
    const stats: tf.Tensor[] = [];
    const { value, grads } = tf.variableGrads(() => lossFn(stats), vars);
    tf.tidy(() => {
      vars.forEach((v, i) => {
        const g = tf.add(grads[v.name], tf.mul(v, weightDecay));
        bufs[i].assign(tf.add(tf.mul(bufs[i], momentum), g));
        v.assign(tf.sub(v, tf.mul(bufs[i], lr)));
      });
      widths.forEach((_, k) => {
        const cnt = k < 8 ? n / 4 ** Math.floor(k / 2) : batch;
        runMean[k].assign(tf.add(tf.mul(runMean[k], 0.9), tf.mul(stats[2 * k], 0.1)));
        runVar[k].assign(
          tf.add(tf.mul(runVar[k], 0.9), tf.mul(stats[2 * k + 1], 0.1 * cnt / (cnt - 1))),
        );
      });
    });
    tf.dispose([...Object.values(grads), ...stats]);
    lossT = value;
  }
  // Two untimed steps: the first compiles, and both read their losses (cross-peer check). The
  // second is skipped when the first took more than 5x the limit of a steady call.
  let t0 = performance.now();
  step();
  const loss0 = (await lossT!.data())[0];
  await tfWait();
  const firstMs = performance.now() - t0;
  const facts: Partial<PeerResult> = { loss: loss0 };
  const steadyMs: number[] = [];
  if (firstMs <= 5 * maxCallMs) {
    t0 = performance.now();
    step();
    facts.extra = { loss1: (await lossT!.data())[0] };
    await tfWait();
    steadyMs.push(performance.now() - t0);
  }
  return {
    run: step,
    wait: tfWait,
    dispose: () => tf.dispose([...vars, ...bufs, ...runMean, ...runVar, images, oh, lossT!]),
    prewarmed: { facts, firstMs, steadyMs },
  };
}

/**
 * Runs one workload variant with TensorFlow.js on one backend: one result per timing mode, or
 * one result with `error` when the backend cannot run it.
 *
 * @example
 * ```ts ignore
 * import { runTfjs } from "./tfjs.ts";
 * const [r] = await runTfjs("M1", { backend: "cpu" });
 * console.log(r.ms, r.check);
 * ```
 */
export async function runTfjs(workload: Variant, opts: TfjsRunOptions): Promise<PeerResult[]> {
  const base: PeerResult = {
    framework: "tfjs",
    version: tf.version_core,
    backend: opts.backend,
    workload,
  };
  const modes = opts.modes ?? ["latency"];
  const maxCallMs = opts.maxCallMs ?? 60_000;
  let prep: Prepared | undefined;
  try {
    const info = await tfjsInit(opts.backend);
    if (info.adapter) base.adapter = info.adapter;
    if (info.notes) base.extra = { notes: info.notes };
    prep = await prepareVariant(workload, {
      matmul: (n) => prepareMatmul(n),
      conv: (backward) => prepareConv(backward),
      cosface: () => prepareCosface(),
      train: (id) => prepareTrain(id, maxCallMs),
    });
    return await timedResults(base, prep, { modes, reps: opts.reps, maxCallMs });
  } catch (e) {
    return [{ ...base, error: errorText(e) }];
  } finally {
    try {
      prep?.dispose();
    } catch { /* a failed run may leave nothing to dispose */ }
  }
}
