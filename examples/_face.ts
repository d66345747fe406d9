// Shared pieces of the face examples: the model and head, the compiled training step, the
// embedding of images with flip test-time augmentation, verification, and checkpoints.
import * as cg from "../mod.ts";
import { smallNet, type SmallNetParams, type SmallNetState } from "../src/nn/mod.ts";
import * as L from "../src/losses/mod.ts";
import { cosine, linearWarmup, type OptState, sgd } from "../src/optim/mod.ts";
import type { ImageDataset } from "../src/data/mod.ts";
import {
  auc,
  combineFlip,
  kfoldVerification,
  pairScores,
  rocCurve,
  tarAtFar,
} from "../src/eval/mod.ts";
import {
  loadCheckpoint as loadChecked,
  saveCheckpoint as saveChecked,
  type TensorRecords,
} from "../src/io/mod.ts";

/** The losses the examples train with. */
export const LOSSES = ["cosface", "softmax", "nsl", "arcface", "sphereface"] as const;
/** One of {@link LOSSES}. */
export type LossName = typeof LOSSES[number];

/** Parameters of a face model: backbone and class weights. */
export interface FaceParams {
  net: SmallNetParams;
  head: cg.Tensor;
}

/** Hyper-parameters of one training run. */
export interface RunConfig {
  loss: LossName;
  s: number;
  m: number;
  size: number;
  widths: number[];
  embedding: number;
  classes: number;
  batch: number;
  steps: number;
  lr: number;
  warmup: number;
  momentum: number;
  weightDecay: number;
  seed: number;
}

/** The loss value of `config.loss` for embeddings, class weights and labels. */
export function lossOf(
  config: RunConfig,
  emb: cg.Tensor,
  head: cg.Tensor,
  y: cg.Tensor,
  step: cg.Tensor,
): cg.Tensor {
  const { s, m } = config;
  switch (config.loss) {
    case "cosface":
      return L.cosface(emb, head, y, { s, m });
    case "nsl":
      return L.nsl(emb, head, y, { s });
    case "arcface":
      return L.arcface(emb, head, y, { s, m });
    case "sphereface":
      return L.sphereface(emb, head, y, {
        m: Math.max(1, Math.round(m)),
        lambda: cg.maximum(cg.mul(cg.pow(cg.add(cg.mul(step, 0.12), 1), -1), 1000), 5),
      });
    case "softmax":
      return L.softmaxCrossEntropy(emb, head, y);
  }
}

/** Fresh parameters, batch-norm state and optimizer of a run. */
export function initRun(config: RunConfig) {
  const [kNet, kHead] = cg.split(cg.randomKey(config.seed), 2);
  const net = smallNet.init(kNet, {
    inputSize: config.size,
    widths: config.widths,
    embedding: config.embedding,
  });
  const params: FaceParams = {
    net: net.params,
    head: cg.normal(kHead, [config.classes, config.embedding], {
      std: 1 / Math.sqrt(config.embedding),
    }),
  };
  const decay = cosine(config.lr, { steps: config.steps, minLr: config.lr * 0.01 });
  // --warmup 0: no warm-up (linearWarmup takes a positive number of steps).
  const lr = config.warmup > 0 ? linearWarmup(decay, { steps: config.warmup }) : decay;
  const opt = sgd({ lr, momentum: config.momentum, weightDecay: config.weightDecay });
  return { params, state: net.state, opt, optState: opt.init(params) as OptState };
}

/** State carried from step to step. */
export interface TrainState {
  params: FaceParams;
  bn: SmallNetState;
  opt: OptState;
}

/**
 * The compiled training step: forward, loss, backward, SGD update and batch-norm statistics
 * in one program; metrics = [loss, accuracy by cosine].
 */
export function trainStep(config: RunConfig, opt: ReturnType<typeof sgd>) {
  return cg.compile((st: TrainState, batch: { x: cg.Tensor; y: cg.Tensor }) => {
    const f = (p: FaceParams) => {
      const r = smallNet.apply(p.net, st.bn, batch.x, { training: true });
      const loss = lossOf(config, r.out, p.head, batch.y, cg.cast(st.opt.step, "float32"));
      return [loss, { bn: r.state, emb: r.out }];
    };
    const [[loss, aux], grads] = cg.valueAndGrad(f, { hasAux: true })(st.params) as unknown as [
      [cg.Tensor, { bn: SmallNetState; emb: cg.Tensor }],
      FaceParams,
    ];
    const acc = L.accuracy(cg.stopGradient(aux.emb), cg.stopGradient(st.params.head), batch.y);
    const u = opt.update(grads, st.opt, st.params);
    return {
      state: { params: u.params as FaceParams, bn: aux.bn, opt: u.state as OptState },
      metrics: cg.stack([loss, cg.reshape(acc, [])]),
    };
  }, { donate: [0] });
}

/** Embeds `images` ([n, 3, S, S] CHW floats) with flip test-time augmentation. */
export async function embedImages(
  params: FaceParams,
  bn: SmallNetState,
  images: Float32Array,
  size: number,
  batch = 128,
): Promise<{ emb: Float32Array; dim: number }> {
  const plane = 3 * size * size;
  const n = images.length / plane;
  const forward = cg.compile((p: SmallNetParams, st: SmallNetState, x: cg.Tensor) =>
    cg.stack([
      smallNet.apply(p, st, x, { training: false }).out,
      smallNet.apply(p, st, cg.flip(x, 3), { training: false }).out,
    ])
  );
  const parts: cg.Tensor[] = [];
  batch = Math.min(batch, n);
  for (let i = 0; i < n; i += batch) {
    // The last batch is padded to the full size, so one compiled program serves all batches.
    const chunk = new Float32Array(batch * plane);
    chunk.set(images.subarray(i * plane, Math.min(n, i + batch) * plane));
    parts.push(forward(params.net, bn, cg.tensor(chunk, [batch, 3, size, size])));
  }
  const dim = parts[0].shape[2];
  const emb = new Float32Array(n * dim), flipped = new Float32Array(n * dim);
  let at = 0;
  for (const part of parts) {
    const v = await part.data() as Float32Array;
    const k = Math.min(batch, n - at);
    emb.set(v.subarray(0, k * dim), at * dim);
    flipped.set(v.subarray(batch * dim, (batch + k) * dim), at * dim);
    at += k;
  }
  return { emb: combineFlip(emb, flipped, dim), dim };
}

/** Verification over pairs of embedded images (indices into `emb`). */
export function verify(
  emb: Float32Array,
  dim: number,
  pairs: { a: number; b: number; same: boolean; fold: number }[],
) {
  const ea = new Float32Array(pairs.length * dim), eb = new Float32Array(pairs.length * dim);
  pairs.forEach((p, i) => {
    ea.set(emb.subarray(p.a * dim, (p.a + 1) * dim), i * dim);
    eb.set(emb.subarray(p.b * dim, (p.b + 1) * dim), i * dim);
  });
  const scores = pairScores(ea, eb, dim);
  const same = pairs.map((p) => p.same);
  const kfold = kfoldVerification(scores, same, { folds: Int32Array.from(pairs, (p) => p.fold) });
  const roc = rocCurve(scores, same);
  return { kfold, roc, auc: auc(roc), tar: tarAtFar(roc) };
}

/** Leaves of a pytree with dotted path names (`net.stages.0.conv1.w`). */
export function namedLeaves(tree: unknown, prefix = ""): [string, cg.Tensor][] {
  if (tree instanceof cg.Tensor) return [[prefix, tree]];
  if (Array.isArray(tree)) return tree.flatMap((t, i) => namedLeaves(t, `${prefix}${i}.`));
  if (tree !== null && typeof tree === "object") {
    return Object.keys(tree).sort().flatMap((k) =>
      namedLeaves((tree as Record<string, unknown>)[k], `${prefix}${k}.`)
    );
  }
  return [];
}

/**
 * Saves a training state as a checkpoint (safetensors with a SHA-256 checksum, written
 * atomically and durably), with run metadata.
 */
export async function saveCheckpoint(
  path: string,
  state: TrainState,
  metadata: Record<string, string>,
): Promise<void> {
  const records: TensorRecords = {};
  for (const [name, t] of namedLeaves(state)) {
    const key = name.replace(/\.$/, "");
    const data = await t.data();
    records[key] = {
      dtype: t.dtype === "int32" ? "int32" : "float32",
      shape: t.shape,
      data: data as Float32Array,
    };
  }
  await saveChecked(path, records, metadata);
}

/**
 * Loads a checkpoint (checksum verified) into a state of the same structure; names, shapes
 * and dtypes must match. Every error names the file. `check` sees the metadata first (and
 * throws to refuse the checkpoint).
 */
export async function loadCheckpoint(
  path: string,
  like: TrainState,
  check?: (metadata: Record<string, string>) => void,
): Promise<{ state: TrainState; metadata: Record<string, string> }> {
  const { tensors, metadata } = await loadChecked(path);
  check?.(metadata);
  const leaves = namedLeaves(like);
  const values = leaves.map(([name, t]) => {
    const key = name.replace(/\.$/, "");
    const rec = tensors[key];
    const dtype = t.dtype === "int32" ? "int32" : "float32";
    if (rec === undefined || rec.shape.join(",") !== t.shape.join(",") || rec.dtype !== dtype) {
      throw new RangeError(
        `Checkpoint ${path} does not fit this model: ${key} is ${
          rec ? `${rec.dtype} [${rec.shape}]` : "missing"
        }, expected ${dtype} [${t.shape}]`,
      );
    }
    return cg.tensor(rec.data, rec.shape, { dtype: t.dtype });
  });
  const { def } = cg.treeFlatten(like);
  // namedLeaves sorts keys like treeFlatten does, so the orders agree.
  return { state: cg.treeUnflatten<TrainState>(def, values), metadata };
}

/** Renders every image a list of pairs needs, once, and maps pairs to indices. */
export async function pairImages(
  refs: { key: string; render: (out: Float32Array) => void | Promise<void> }[],
  size: number,
): Promise<Float32Array> {
  const plane = 3 * size * size;
  const out = new Float32Array(refs.length * plane);
  for (let i = 0; i < refs.length; i++) {
    await refs[i].render(out.subarray(i * plane, (i + 1) * plane));
  }
  return out;
}

/** A one-line progress bar. */
export function progressLine(
  label: string,
  step: number,
  total: number,
  loss: number,
  acc: number,
  imagesPerSecond: number,
  etaSeconds: number,
): string {
  const width = 24;
  const filled = Math.round((width * step) / total);
  const eta = Number.isFinite(etaSeconds)
    ? `${Math.floor(etaSeconds / 60)}:${String(Math.round(etaSeconds % 60)).padStart(2, "0")}`
    : "?";
  return `${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${step}/${total} ` +
    `loss ${loss.toFixed(3)} acc ${(acc * 100).toFixed(1)}% ${
      imagesPerSecond.toFixed(0)
    } img/s ETA ${eta}`;
}

/** The dataset type re-exported for the examples. */
export type { ImageDataset };
