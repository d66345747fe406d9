/**
 * jax-js 0.1.25 as a benchmark peer: backends webgpu and wasm, workloads M1, M4, C1 (forward,
 * forward+backward), L1, T1 and T2 of bench/WORKLOADS.md. Every workload is one `jit`ted
 * function. Its `cpu` backend is a debug interpreter (a 1024 matmul takes minutes): not run.
 *
 * jax-js counts references by hand: every function consumes its array arguments, `.ref` adds a
 * reference, and an output disposed before its pending work was submitted cancels that work. So
 * each call here submits its work (`blockUntilReady`) before its outputs are released.
 *
 * @module
 */

import {
  type Array as JArray,
  blockUntilReady,
  defaultDevice,
  getWebGPUDevice,
  init,
  jit,
  lax,
  nn,
  numpy as np,
  tree,
  valueAndGrad,
  vjp,
} from "npm:@jax-js/jax@0.1.25";
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

/** The jax-js version benchmarked (the one deno.json maps). */
export const JAXJS_VERSION = "0.1.25";

/** Backends of jax-js this peer runs (its `cpu` device is a debug interpreter). */
export type JaxBackend = "webgpu" | "wasm";

/** What was initialised: backend and (WebGPU) the adapter's description. */
export type JaxInfo = { version: string; backend: JaxBackend; adapter?: string; notes?: string };

/**
 * Initialises a jax-js device and makes it the default.
 *
 * @example
 * ```ts
 * import { jaxInit } from "./jaxjs.ts";
 * const info = await jaxInit("wasm");
 * info.backend; // "wasm"
 * ```
 */
export async function jaxInit(backend: JaxBackend): Promise<JaxInfo> {
  const devices = await init(backend);
  if (!devices.includes(backend)) {
    throw new TypeError(`jax-js device ${backend} is not available (found ${devices.join(", ")})`);
  }
  defaultDevice(backend);
  const info: JaxInfo = { version: JAXJS_VERSION, backend };
  if (backend === "webgpu") {
    const a = getWebGPUDevice().adapterInfo;
    info.adapter = a?.description || a?.vendor || "unknown adapter";
  } else {
    const threads = typeof SharedArrayBuffer !== "undefined" && typeof Worker !== "undefined";
    info.notes = threads
      ? `threads=${navigator.hardwareConcurrency} workers (SharedArrayBuffer)`
      : "threads=1";
  }
  return info;
}

function put(data: Float32Array | Int32Array, shape: readonly number[]): JArray {
  // The seeded arrays own plain ArrayBuffers; jax-js's typings ask for exactly that.
  return np.array(data as Float32Array<ArrayBuffer>, {
    shape: [...shape],
    dtype: data instanceof Int32Array ? np.int32 : np.float32,
  });
}

/** Tracks submitted calls: each output is kept until its work is done, then replaces `last`. */
class Flight<T> {
  #pending: Promise<void>[] = [];
  last: T | undefined;
  add(out: T): void {
    this.#pending.push(
      blockUntilReady(out).then(() => {
        if (this.last !== undefined) tree.dispose(this.last);
        this.last = out;
      }),
    );
  }
  async wait(): Promise<void> {
    await Promise.all(this.#pending);
    this.#pending = [];
  }
  dispose(): void {
    if (this.last !== undefined) tree.dispose(this.last);
    this.last = undefined;
  }
}

function l2normalize(x: JArray): JArray {
  const n = np.sqrt(np.sum(np.square(x.ref), 1, { keepdims: true }));
  return x.div(np.maximum(n, 1e-12));
}

/** CosFace loss (mean over the batch) of x [B, D], class weights w [C, D]; consumes all. */
function cosfaceLoss(x: JArray, w: JArray, oneHot: JArray, opts: { s: number; m: number }): JArray {
  const cos = np.clip(np.matmul(l2normalize(x), l2normalize(w).transpose()), -1, 1);
  const logits = cos.sub(oneHot.ref.mul(opts.m)).mul(opts.s);
  const target = logits.ref.mul(oneHot).sum(1);
  return nn.logsumexp(logits, 1).sub(target).mean();
}

/**
 * CosFace loss and its gradients with jax-js on the default device, for features [n, d], class
 * weights [classes, d] (one row per class) and integer labels.
 *
 * @example
 * ```ts
 * import { jaxCosface, jaxInit } from "./jaxjs.ts";
 * await jaxInit("wasm");
 * const r = await jaxCosface(
 *   { features: new Float32Array([1, 0, 0, 1]), weights: new Float32Array([1, 0, 0, 1]), labels: new Int32Array([0, 1]) },
 *   { n: 2, d: 2, classes: 2 },
 * );
 * r.loss > 0; // true
 * ```
 */
export async function jaxCosface(
  data: { features: Float32Array; weights: Float32Array; labels: Int32Array },
  opts: { n: number; d: number; classes: number; s?: number; m?: number },
): Promise<{ loss: number; gradFeatures: Float32Array; gradWeights: Float32Array }> {
  const s = opts.s ?? 64, m = opts.m ?? 0.35;
  const oh = nn.oneHot(put(data.labels, [opts.n]), opts.classes).astype(np.float32);
  const [value, [gx, gw]] = valueAndGrad(
    (x: JArray, w: JArray, o: JArray) => cosfaceLoss(x, w, o, { s, m }),
    { argnums: [0, 1] },
  )(put(data.features, [opts.n, opts.d]), put(data.weights, [opts.classes, opts.d]), oh);
  return {
    loss: (await value.data())[0],
    gradFeatures: (await gx.data()) as Float32Array,
    gradWeights: (await gw.data()) as Float32Array,
  };
}

/** Options of {@linkcode runJax}. */
export type JaxRunOptions = {
  /** Backend. */
  backend: JaxBackend;
  /** Timing modes; default ["latency"]. */
  modes?: TimingMode[];
  /** Timed repetitions (at least 5). */
  reps?: number;
  /** A call slower than this (ms) is reported as too slow after one call; default 60000. */
  maxCallMs?: number;
};

type Prepared = {
  run: () => void;
  wait: () => Promise<void>;
  check?: () => Promise<Partial<PeerResult>>;
  dispose: () => void;
  prewarmed?: Prewarmed;
};

async function readT(a: JArray): Promise<Float32Array> {
  return (await a.ref.data()) as Float32Array;
}

function prepareMatmul(n: 1024 | 4096): Prepared {
  const spec = n === 1024 ? WORKLOADS.M1 : WORKLOADS.M4;
  const ad = inputData(spec.inputs.a) as Float32Array,
    bd = inputData(spec.inputs.b) as Float32Array;
  const a = put(ad, [n, n]), b = put(bd, [n, n]);
  const f = jit((x: JArray, y: JArray) => np.matmul(x, y));
  const flight = new Flight<JArray>();
  return {
    run: () => flight.add(f(a.ref, b.ref)),
    wait: () => flight.wait(),
    check: async () => {
      const c = compareSamples(await readT(flight.last!), (k) => matmulAt(ad, bd, { n, k }), {
        indices: sampleIndices(16, n * n),
        name: "C",
      });
      return { check: c.text, wrong: !c.ok };
    },
    dispose: () => {
      flight.dispose();
      a.dispose();
      b.dispose();
      f.dispose();
    },
  };
}

function conv(x: JArray, w: JArray): JArray {
  return lax.conv(x, w, [1, 1], [[1, 1], [1, 1]]);
}

function prepareConv(backward: boolean): Prepared {
  const { x: xs, w: ws, dy: dys } = WORKLOADS.C1.inputs;
  const xd = inputData(xs) as Float32Array, wd = inputData(ws) as Float32Array;
  const dyd = inputData(dys) as Float32Array;
  const x = put(xd, xs.shape), w = put(wd, ws.shape), dy = put(dyd, dys.shape);
  const fwd = jit(conv);
  const bwd = jit((a: JArray, b: JArray, g: JArray) => {
    const [y, back] = vjp(conv, [a, b]);
    y.dispose();
    const grads = back(g);
    back.dispose();
    return grads;
  });
  const flight = new Flight<JArray[]>();
  return {
    run: () => flight.add(backward ? bwd(x.ref, w.ref, dy.ref) as JArray[] : [fwd(x.ref, w.ref)]),
    wait: () => flight.wait(),
    check: async () => {
      const idx = sampleIndices(12, xd.length);
      const outs = flight.last!;
      if (!backward) {
        const c = compareSamples(await readT(outs[0]), (k) => conv2dAt(xd, wd, k), {
          indices: idx,
          name: "y",
        });
        return { check: c.text, wrong: !c.ok };
      }
      const cx = compareSamples(await readT(outs[0]), (k) => conv2dDxAt(dyd, wd, k), {
        indices: idx,
        name: "dx",
      });
      const cw = compareSamples(await readT(outs[1]), (k) => conv2dDwAt(xd, dyd, k), {
        indices: sampleIndices(12, wd.length),
        name: "dw",
      });
      return { check: `${cx.text}; ${cw.text}`, wrong: !cx.ok || !cw.ok };
    },
    dispose: () => {
      flight.dispose();
      tree.dispose([x, w, dy]);
      fwd.dispose();
      bwd.dispose();
    },
  };
}

function prepareCosface(): Prepared {
  const { features, weights, labels } = WORKLOADS.L1.inputs;
  const { s, m } = WORKLOADS.L1.params;
  const x = put(inputData(features) as Float32Array, features.shape);
  const w = put(inputData(weights) as Float32Array, weights.shape);
  const oh = nn.oneHot(put(inputData(labels), labels.shape), 10000).astype(np.float32);
  const f = jit(valueAndGrad(
    (a: JArray, b: JArray, o: JArray) => cosfaceLoss(a, b, o, { s, m }),
    { argnums: [0, 1] },
  ));
  const flight = new Flight<[JArray, JArray[]]>();
  return {
    run: () => flight.add(f(x.ref, w.ref, oh.ref) as [JArray, JArray[]]),
    wait: () => flight.wait(),
    check: async () => {
      const [value, [gx, gw]] = flight.last!;
      const loss = (await readT(value))[0];
      // Norms on the host in float64: jax-js's WebGPU sum over millions of elements is no oracle.
      return { loss, ...l1Check(loss, hostNorm(await readT(gx)), hostNorm(await readT(gw))) };
    },
    dispose: () => {
      flight.dispose();
      tree.dispose([x, w, oh]);
      f.dispose();
    },
  };
}

type Params = {
  convs: JArray[];
  gammas: JArray[];
  betas: JArray[];
  slopes: JArray[];
  linear: JArray;
  classW: JArray;
};
type TrainState = {
  params: Params;
  bufs: Params;
  runMean: JArray[];
  runVar: JArray[];
  loss: JArray;
};

/** Batch norm in train mode over `axes` of x, channel axis 1; consumes x, gamma, beta. */
function batchNorm(
  x: JArray,
  gamma: JArray,
  beta: JArray,
  stats: JArray[],
): JArray {
  const axes = x.ndim === 4 ? [0, 2, 3] : [0];
  const bshape = x.ndim === 4 ? [1, -1, 1, 1] : [1, -1];
  const mean = np.mean(x.ref, axes, { keepdims: true });
  const centered = x.sub(mean.ref);
  const variance = np.mean(np.square(centered.ref), axes, { keepdims: true });
  stats.push(lax.stopGradient(mean.reshape([-1])), lax.stopGradient(variance.ref.reshape([-1])));
  const xhat = centered.mul(np.reciprocal(np.sqrt(variance.add(NETWORK.bnEps))));
  return xhat.mul(gamma.reshape(bshape)).add(beta.reshape(bshape));
}

function prelu(x: JArray, slope: JArray): JArray {
  return np.maximum(x.ref, 0).add(np.minimum(x, 0).mul(slope.reshape([1, -1, 1, 1])));
}

async function prepareTrain(id: "T1" | "T2", maxCallMs: number): Promise<Prepared> {
  const wl = WORKLOADS[id];
  const { batch, size, classes } = wl.params;
  const p0 = networkParams({ size, classes });
  const widths = p0.convs.map((c) => c.shape[0]).concat([NETWORK.embedding]);
  const init: Params = {
    convs: p0.convs.map((c) => put(c.data, c.shape)),
    gammas: widths.map((c) => np.ones([c])),
    betas: widths.map((c) => np.zeros([c])),
    slopes: p0.convs.map((c) => np.full([c.shape[0]], NETWORK.prelu0)),
    linear: put(p0.linear.data, p0.linear.shape),
    classW: put(p0.classWeights.data, p0.classWeights.shape),
  };
  const images = put(inputData(wl.inputs.images), wl.inputs.images.shape);
  const oh = nn.oneHot(put(inputData(wl.inputs.labels), wl.inputs.labels.shape), classes)
    .astype(np.float32);
  const { lr, momentum, weightDecay } = NETWORK;
  const count = (k: number) => k < 8 ? batch * (size / 2) ** 2 / 4 ** Math.floor(k / 2) : batch;

  function lossFn(p: Params, x: JArray, o: JArray): [JArray, JArray[]] {
    const stats: JArray[] = [];
    let h = x;
    for (let k = 0; k < p.convs.length; k++) {
      const s = k % 2 === 0 ? 2 : 1;
      h = lax.conv(h, p.convs[k], [s, s], [[1, 1], [1, 1]]);
      h = prelu(batchNorm(h, p.gammas[k], p.betas[k], stats), p.slopes[k]);
    }
    const emb = batchNorm(
      np.matmul(h.reshape([batch, -1]), p.linear),
      p.gammas[8],
      p.betas[8],
      stats,
    );
    return [cosfaceLoss(emb, p.classW, o, NETWORK), stats];
  }
  const step = jit((p: Params, bufs: Params, rm: JArray[], rv: JArray[], x: JArray, o: JArray) => {
    const [[loss, stats], grads] = valueAndGrad(lossFn, { hasAux: true })(tree.ref(p), x, o);
    const [pl, def] = tree.flatten(p), [gl] = tree.flatten(grads), [bl] = tree.flatten(bufs);
    const newP: JArray[] = [], newB: JArray[] = [];
    for (let i = 0; i < pl.length; i++) {
      const g = gl[i].add(pl[i].ref.mul(weightDecay));
      const b = bl[i].mul(momentum).add(g);
      newP.push(pl[i].sub(b.ref.mul(lr)));
      newB.push(b);
    }
    const runMean = rm.map((r, k) => r.mul(0.9).add(stats[2 * k].mul(0.1)));
    const runVar = rv.map((r, k) =>
      r.mul(0.9).add(stats[2 * k + 1].mul(0.1 * count(k) / (count(k) - 1)))
    );
    return {
      params: tree.unflatten(def, newP) as Params,
      bufs: tree.unflatten(def, newB) as Params,
      runMean,
      runVar,
      loss,
    };
  });
  let state: TrainState = {
    params: init,
    bufs: tree.map((a: JArray) => np.zerosLike(a.ref), init) as Params,
    runMean: widths.map((c) => np.zeros([c])),
    runVar: widths.map((c) => np.ones([c])),
    loss: np.zeros([]),
  };
  const run = () => {
    state.loss.dispose();
    state = step(
      state.params,
      state.bufs,
      state.runMean,
      state.runVar,
      images.ref,
      oh.ref,
    ) as TrainState;
  };
  const wait = async () => {
    await blockUntilReady(state);
  };
  // Two untimed steps: the first compiles, and both read their losses (cross-peer check). The
  // second is skipped when the first took more than 5x the limit of a steady call.
  let t0 = performance.now();
  run();
  const facts: Partial<PeerResult> = { loss: (await readT(state.loss))[0] };
  await wait();
  const firstMs = performance.now() - t0;
  const steadyMs: number[] = [];
  if (firstMs <= 5 * maxCallMs) {
    t0 = performance.now();
    run();
    facts.extra = { loss1: (await readT(state.loss))[0] };
    await wait();
    steadyMs.push(performance.now() - t0);
  }
  return {
    run,
    wait,
    dispose: () => {
      tree.dispose(state);
      tree.dispose([images, oh]);
      step.dispose();
    },
    prewarmed: { facts, firstMs, steadyMs },
  };
}

/**
 * Runs one workload variant with jax-js on one backend: one result per timing mode, or one
 * result with `error` when the backend cannot run it.
 *
 * @example
 * ```ts ignore
 * import { runJax } from "./jaxjs.ts";
 * const [r] = await runJax("M1", { backend: "wasm" });
 * console.log(r.ms, r.check);
 * ```
 */
export async function runJax(workload: Variant, opts: JaxRunOptions): Promise<PeerResult[]> {
  const base: PeerResult = {
    framework: "jax-js",
    version: JAXJS_VERSION,
    backend: opts.backend,
    workload,
  };
  const modes = opts.modes ?? ["latency"];
  const maxCallMs = opts.maxCallMs ?? 60_000;
  let prep: Prepared | undefined;
  try {
    const info = await jaxInit(opts.backend);
    if (info.adapter) base.adapter = info.adapter;
    if (info.notes) base.extra = { notes: info.notes };
    prep = await prepareVariant(workload, {
      matmul: (n) => prepareMatmul(n),
      conv: (backward) => prepareConv(backward),
      cosface: () => prepareCosface(),
      train: (id) => prepareTrain(id, maxCallMs),
    });
    return await timedResults(base, prep, {
      modes,
      reps: opts.reps,
      maxCallMs,
      checkTooSlow: false,
    });
  } catch (e) {
    return [{ ...base, error: errorText(e) }];
  } finally {
    try {
      prep?.dispose();
    } catch { /* a failed run may leave nothing to dispose */ }
  }
}
