/**
 * The CosFace paper's toy experiment (Fig. 3 of arXiv 1801.09414), small enough to train live in
 * a browser: 8 identities, 2-D features. Inputs are noisy samples around one fixed random vector
 * per identity in R^16; a 2-layer MLP maps them to R^2; the class weights are an 8x2 matrix. The
 * loss is plain softmax, NSL, CosFace or ArcFace, and the measured quantity is the angular gap
 * between neighbouring classes on the unit circle.
 *
 * No DOM and no Deno APIs: the page (`main.ts`) and the tests both use this module.
 *
 * @module
 */
import * as cg from "../../src/web.ts";

/** The losses the page offers. */
export type LossKind = "softmax" | "nsl" | "cosface" | "arcface";

/** Every {@link LossKind}, in the order the page lists them. */
export const LOSS_KINDS: readonly LossKind[] = ["softmax", "nsl", "cosface", "arcface"];

/** Sizes and seed of the toy problem. */
export interface ToyOptions {
  /** Identities (default 8). */
  classes?: number;
  /** Samples per identity (default 32). */
  perClass?: number;
  /** Input dimension (default 16). */
  inputDim?: number;
  /** Hidden units of the MLP (default 32). */
  hidden?: number;
  /** Standard deviation of the noise around each identity's vector (default 0.6). */
  noise?: number;
  /** Seed of the data and the initial parameters (default 1). */
  seed?: number;
}

/** Inputs and labels: what a step trains on. */
export interface ToyBatch {
  /** Inputs, `[n, inputDim]`. */
  x: cg.Tensor;
  /** Labels, int32 `[n]`. */
  y: cg.Tensor;
}

/** The fixed training set. */
export interface ToyData {
  /** The whole set as one batch. */
  batch: ToyBatch;
  /** Labels on the host. */
  labels: Int32Array;
  /** Number of identities. */
  classes: number;
}

/** The model's parameters: the MLP and the class weights. */
export interface ToyParams {
  /** `[inputDim, hidden]`. */
  w1: cg.Tensor;
  /** `[hidden]`. */
  b1: cg.Tensor;
  /** `[hidden, 2]`. */
  w2: cg.Tensor;
  /** `[2]`. */
  b2: cg.Tensor;
  /** Class weights, `[classes, 2]`. */
  classW: cg.Tensor;
}

/** Adam's moments and step count. */
export interface ToyOptState {
  /** First moments, shaped like the parameters. */
  mu: ToyParams;
  /** Second moments, shaped like the parameters. */
  nu: ToyParams;
  /** Steps taken, a scalar. */
  t: cg.Tensor;
}

/** The loss and its constants (the losses take numbers: each choice is its own graph). */
export interface ToyLossSpec {
  /** Which loss. */
  kind: LossKind;
  /** Scale s of the normalized losses (unused by softmax). */
  s: number;
  /** Margin m: cosine margin for CosFace, angular margin (radians) for ArcFace. */
  m: number;
}

/** Values passed to each step as tensors, so changing them retraces nothing. */
export interface ToyHyper {
  /** Adam's learning rate, a scalar. */
  lr: cg.Tensor;
}

/** What one step returns. */
export interface ToyStepResult {
  /** Updated parameters. */
  params: ToyParams;
  /** Updated optimizer state. */
  opt: ToyOptState;
  /** The loss before the update, a scalar. */
  loss: cg.Tensor;
}

function sizes(options: ToyOptions) {
  return {
    classes: options.classes ?? 8,
    perClass: options.perClass ?? 32,
    inputDim: options.inputDim ?? 16,
    hidden: options.hidden ?? 32,
    noise: options.noise ?? 0.6,
    seed: options.seed ?? 1,
  };
}

/**
 * The training set: `perClass` samples around each identity's random unit-variance vector.
 *
 * @example
 * ```ts
 * import { makeToyData } from "./toy.ts";
 * const d = makeToyData({ perClass: 4 });
 * d.batch.x.shape; // [32, 16]
 * ```
 */
export function makeToyData(options: ToyOptions = {}): ToyData {
  const o = sizes(options);
  const n = o.classes * o.perClass;
  const [kc, kn] = cg.split(cg.randomKey(o.seed));
  const centers = cg.normal(kc, [o.classes, o.inputDim]);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) labels[i] = Math.floor(i / o.perClass);
  const y = cg.tensor(labels, [n], { dtype: "int32" });
  const noise = cg.normal(kn, [n, o.inputDim], { std: o.noise });
  return {
    batch: { x: cg.add(cg.take(centers, y, 0), noise), y },
    labels,
    classes: o.classes,
  };
}

/**
 * Initial parameters (scaled normal weights, zero biases).
 *
 * @example
 * ```ts
 * import { initToyParams } from "./toy.ts";
 * initToyParams().classW.shape; // [8, 2]
 * ```
 */
export function initToyParams(options: ToyOptions = {}): ToyParams {
  const o = sizes(options);
  const [k1, k2, k3] = cg.split(cg.randomKey(o.seed + 1000), 3);
  return {
    w1: cg.normal(k1, [o.inputDim, o.hidden], { std: 1 / Math.sqrt(o.inputDim) }),
    b1: cg.zeros([o.hidden]),
    w2: cg.normal(k2, [o.hidden, 2], { std: 1 / Math.sqrt(o.hidden) }),
    b2: cg.zeros([2]),
    classW: cg.normal(k3, [o.classes, 2]),
  };
}

/**
 * Adam's initial state for `params` (zero moments).
 *
 * @example
 * ```ts
 * import { initToyOpt, initToyParams } from "./toy.ts";
 * initToyOpt(initToyParams()).mu.w1.shape; // [16, 32]
 * ```
 */
export function initToyOpt(params: ToyParams): ToyOptState {
  const zeros = cg.treeMap((p) => cg.zerosLike(p), params);
  return { mu: zeros, nu: cg.treeMap((p) => cg.zerosLike(p), params), t: cg.scalar(0) };
}

/**
 * The 2-D features of inputs `x` (not normalized).
 *
 * @example
 * ```ts
 * import { initToyParams, makeToyData, toyFeatures } from "./toy.ts";
 * toyFeatures(initToyParams(), makeToyData({ perClass: 2 }).batch.x).shape; // [16, 2]
 * ```
 */
export function toyFeatures(params: ToyParams, x: cg.Tensor): cg.Tensor {
  const h = cg.tanh(cg.add(cg.matmul(x, params.w1), params.b1));
  return cg.add(cg.matmul(h, params.w2), params.b2);
}

/**
 * The mean loss on features `f` with class weights `w` and labels `y`, computed by
 * cosgrad's losses (`cg.losses`): softmax cross-entropy, NSL, CosFace or ArcFace.
 *
 * @example
 * ```ts
 * import { toyLoss } from "./toy.ts";
 * import * as cg from "../../src/web.ts";
 * const f = cg.tensor([[1, 0]]), w = cg.tensor([[1, 0], [0, 1]]);
 * const y = cg.tensor(new Int32Array([0]), [1], { dtype: "int32" });
 * await toyLoss({ kind: "nsl", s: 1, m: 0 }, { f, w, y }).data();
 * // Float32Array [0.3133] = log(1 + e^-1)
 * ```
 */
export function toyLoss(
  spec: ToyLossSpec,
  inputs: { f: cg.Tensor; w: cg.Tensor; y: cg.Tensor },
): cg.Tensor {
  const { f, w, y } = inputs;
  switch (spec.kind) {
    case "softmax":
      return cg.losses.softmaxCrossEntropy(f, w, y);
    case "nsl":
      return cg.losses.nsl(f, w, y, { s: spec.s });
    case "cosface":
      return cg.losses.cosface(f, w, y, { s: spec.s, m: spec.m });
    case "arcface":
      return cg.losses.arcface(f, w, y, { s: spec.s, m: spec.m });
  }
}

const BETA1 = 0.9, BETA2 = 0.999, ADAM_EPS = 1e-8;

/**
 * One training step with the loss `spec` and Adam (not compiled: wrap it with `cg.compile`, donating the
 * training state, as {@link makeToyStep} does).
 *
 * @example
 * ```ts
 * import { initToyOpt, initToyParams, makeToyData, toyStep } from "./toy.ts";
 * import * as cg from "../../src/web.ts";
 * const d = makeToyData({ perClass: 2 }), p = initToyParams();
 * const spec = { kind: "cosface" as const, s: 8, m: 0.2 };
 * const r = toyStep(spec, p, initToyOpt(p), d.batch, { lr: cg.scalar(0.01) });
 * r.loss.shape; // []
 * ```
 */
export function toyStep(
  spec: ToyLossSpec,
  params: ToyParams,
  opt: ToyOptState,
  data: ToyBatch,
  hyper: ToyHyper,
): ToyStepResult {
  const lossOf = (p: ToyParams) =>
    toyLoss(spec, { f: toyFeatures(p, data.x), w: p.classW, y: data.y });
  const [loss, g] = cg.valueAndGrad(lossOf)(params) as [cg.Tensor, ToyParams];
  const t = cg.add(opt.t, 1);
  // Adam with bias correction folded into the step size.
  const stepSize = cg.div(
    cg.mul(hyper.lr, cg.sqrt(cg.sub(1, cg.pow(BETA2, t)))),
    cg.sub(1, cg.pow(BETA1, t)),
  );
  const mu = cg.treeMap((m, gi) => cg.add(cg.mul(m, BETA1), cg.mul(gi, 1 - BETA1)), opt.mu, g);
  const nu = cg.treeMap(
    (v, gi) => cg.add(cg.mul(v, BETA2), cg.mul(cg.square(gi), 1 - BETA2)),
    opt.nu,
    g,
  );
  const next = cg.treeMap(
    (p, m, v) => cg.sub(p, cg.div(cg.mul(stepSize, m), cg.add(cg.sqrt(v), ADAM_EPS))),
    params,
    mu,
    nu,
  );
  return { params: next, opt: { mu, nu, t }, loss };
}

/** What the compiled step carries from one call to the next. */
export interface ToyState {
  /** The parameters. */
  params: ToyParams;
  /** Adam's state. */
  opt: ToyOptState;
  /**
   * The losses of the latest steps, oldest first (`[logLength]`): kept on the device, so one
   * read every few steps returns all of them.
   */
  lossLog: cg.Tensor;
}

/**
 * The initial training state: parameters, zero Adam moments and a loss log of `logLength`
 * entries (NaN until filled).
 *
 * @example
 * ```ts
 * import { initToyState } from "./toy.ts";
 * initToyState({}, 10).lossLog.shape; // [10]
 * ```
 */
export function initToyState(options: ToyOptions = {}, logLength = 10): ToyState {
  const params = initToyParams(options);
  return { params, opt: initToyOpt(params), lossLog: cg.full([logLength], NaN) };
}

/**
 * {@link toyStep} for the loss `spec`, compiled once (per backend), with the state donated; the step's
 * loss is appended to the state's loss log (the oldest entry drops out).
 *
 * @example
 * ```ts
 * import { initToyState, makeToyData, makeToyStep } from "./toy.ts";
 * import * as cg from "../../src/web.ts";
 * const step = makeToyStep({ kind: "nsl", s: 8, m: 0 });
 * const d = makeToyData({ perClass: 2 });
 * const state = step(initToyState({}, 4), d.batch, { lr: cg.scalar(0.01) });
 * (await state.lossLog.data())[3] > 0; // true: the first step's loss
 * ```
 */
export function makeToyStep(
  spec: ToyLossSpec,
): cg.CompiledFunction<[ToyState, ToyBatch, ToyHyper], ToyState> {
  return cg.compile(
    (state: ToyState, batch: ToyBatch, hyper: ToyHyper): ToyState => {
      const r = toyStep(spec, state.params, state.opt, batch, hyper);
      const lossLog = cg.concat([cg.slice(state.lossLog, [1]), cg.reshape(r.loss, [1])]);
      return { params: r.params, opt: r.opt, lossLog };
    },
    { donate: [0] },
  );
}

/** The extent of one class's features on the unit circle. */
export interface ClassArc {
  /** The class. */
  label: number;
  /** Angle (radians, in [0, 2π)) where the arc starts, going counterclockwise. */
  start: number;
  /** Angular width of the arc (radians); the class's features all lie on it. */
  width: number;
}

/** The gap between a class and the next one counterclockwise. */
export interface NeighbourGap {
  /** The class before the gap. */
  from: number;
  /** The class after it. */
  to: number;
  /** Angle (radians) between `from`'s last feature and `to`'s first; negative if they overlap. */
  gap: number;
}

/** What {@link angularGaps} measures. */
export interface GapReport {
  /** Each class's arc, ordered counterclockwise by the arc's middle. */
  arcs: ClassArc[];
  /** The gaps between neighbouring arcs, in the same order. */
  gaps: NeighbourGap[];
  /** The smallest gap (radians). */
  min: number;
  /** The mean gap (radians). */
  mean: number;
  /** The mean arc width (radians): how compact the classes are. */
  meanWidth: number;
}

const TAU = 2 * Math.PI;

function wrap(a: number): number {
  return ((a % TAU) + TAU) % TAU;
}

/**
 * Measures the angular gaps between neighbouring classes of 2-D features: each class's
 * features span the shortest arc that holds them all (the circle minus the largest empty gap
 * between its angles), the arcs are ordered by their middles, and the gap between neighbours is
 * the angle from one arc's end to the next arc's start (negative when they overlap).
 *
 * @example
 * ```ts
 * import { angularGaps } from "./toy.ts";
 * // Two classes at 0°±5° and 180°±5°: both gaps are 170°.
 * const d = Math.PI / 180;
 * const f = new Float32Array([
 *   Math.cos(-5 * d), Math.sin(-5 * d), Math.cos(5 * d), Math.sin(5 * d),
 *   Math.cos(175 * d), Math.sin(175 * d), Math.cos(185 * d), Math.sin(185 * d),
 * ]);
 * Math.round(angularGaps(f, new Int32Array([0, 0, 1, 1]), 2).min / d); // 170
 * ```
 */
export function angularGaps(
  features: Float32Array,
  labels: Int32Array,
  classes: number,
): GapReport {
  if (features.length !== 2 * labels.length) {
    throw new RangeError(
      `angularGaps: expected ${
        2 * labels.length
      } feature values (2 per label), got ${features.length}`,
    );
  }
  const angles: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) {
    const c = labels[i];
    if (!(c >= 0 && c < classes)) {
      throw new RangeError(`angularGaps: label ${c} at ${i} is outside [0, ${classes})`);
    }
    angles[c].push(wrap(Math.atan2(features[2 * i + 1], features[2 * i])));
  }
  const arcs: ClassArc[] = [];
  angles.forEach((a, label) => {
    if (a.length === 0) return;
    a.sort((x, y) => x - y);
    // The largest empty gap between consecutive angles (circularly) is outside the arc.
    let best = TAU - a[a.length - 1] + a[0], start = a[0];
    for (let i = 1; i < a.length; i++) {
      if (a[i] - a[i - 1] > best) {
        best = a[i] - a[i - 1];
        start = a[i];
      }
    }
    arcs.push({ label, start, width: TAU - best });
  });
  arcs.sort((p, q) => wrap(p.start + p.width / 2) - wrap(q.start + q.width / 2));
  const gaps: NeighbourGap[] = arcs.map((a, i) => {
    const b = arcs[(i + 1) % arcs.length];
    // The middles are ordered, so the signed gap is their distance less the half-widths.
    const gap = wrap(b.start + b.width / 2 - (a.start + a.width / 2)) - (a.width + b.width) / 2;
    return { from: a.label, to: b.label, gap };
  });
  const min = gaps.length > 1 ? Math.min(...gaps.map((g) => g.gap)) : NaN;
  const mean = gaps.length > 1 ? gaps.reduce((s, g) => s + g.gap, 0) / gaps.length : NaN;
  const meanWidth = arcs.reduce((s, a) => s + a.width, 0) / Math.max(1, arcs.length);
  return { arcs, gaps, min, mean, meanWidth };
}

/**
 * The largest margin CosFace allows for `classes` classes of 2-D features (DESIGN.md):
 * `1 - cos(2π / classes)`.
 *
 * @example
 * ```ts
 * import { maxMargin2d } from "./toy.ts";
 * maxMargin2d(8).toFixed(3); // "0.293"
 * ```
 */
export function maxMargin2d(classes: number): number {
  return 1 - Math.cos(TAU / classes);
}
