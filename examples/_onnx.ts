// ONNX in the face examples: export the trained embedding network (train_cosface.ts --export),
// fine-tune an imported backbone with a margin loss (train_cosface.ts --init), and embed images
// with an .onnx model (face_cli.ts). Kept apart so the examples change in a few lines only.
import * as cg from "../mod.ts";
import { smallNet, type SmallNetParams, type SmallNetState } from "../src/nn/mod.ts";
import { cosine, linearWarmup, type OptState, sgd } from "../src/optim/mod.ts";
import * as L from "../src/losses/mod.ts";
import { batchSampler, type ImageDataset } from "../src/data/mod.ts";
import { combineFlip } from "../src/eval/mod.ts";
import {
  fromOnnx,
  type OnnxModel,
  splitStatistics,
  toOnnx,
  writeFileAtomic,
} from "../src/io/mod.ts";
import { type LossName, lossOf, progressLine, type RunConfig, verify } from "./_face.ts";
import type { Args, EvalSet, RunResult } from "./train_cosface.ts";

type Tensors = Record<string, cg.Tensor>;

/** Writes the embedding network of the main example (inference mode) as an ONNX model. */
export async function exportEmbedding(
  path: string,
  net: SmallNetParams,
  bn: SmallNetState,
  size: number,
): Promise<void> {
  const bytes = await toOnnx(
    (p: { net: SmallNetParams; bn: SmallNetState }, x: cg.Tensor) =>
      smallNet.apply(p.net, p.bn, x, { training: false }).out,
    { net, bn },
    [cg.zeros([2, 3, size, size])],
    { inputNames: ["data"], outputNames: ["embedding"] },
  );
  await writeFileAtomic(path, bytes);
  console.log(
    `wrote ${path} (${
      (bytes.length / 1024).toFixed(0)
    } KiB, input data [batch, 3, ${size}, ${size}])`,
  );
}

/** An imported embedding model: input `[batch, 3, size, size]`, output `[batch, dim]`. */
export interface OnnxEmbedder {
  model: OnnxModel;
  size: number;
  dim: number;
}

/** Reads an .onnx embedding model and checks it takes square RGB images and gives vectors. */
export async function loadOnnxEmbedder(path: string): Promise<OnnxEmbedder> {
  const model = await fromOnnx(await Deno.readFile(path));
  const [input] = model.inputs;
  const out = model.outputs[0];
  const [, c, h, w] = input?.shape ?? [];
  if (
    model.inputs.length !== 1 || input.shape.length !== 4 || c !== 3 || typeof h !== "number" ||
    h !== w || out?.shape.length !== 2 || typeof out.shape[1] !== "number"
  ) {
    throw new RangeError(
      `${path}: expected one input [batch, 3, S, S] and an output [batch, D], got ${
        JSON.stringify(model.inputs.map((i) => i.shape))
      } -> ${JSON.stringify(model.outputs.map((o) => o.shape))}`,
    );
  }
  return { model, size: h, dim: out.shape[1] as number };
}

/** Embeds `images` ([n, 3, S, S]) with an imported model, with flip test-time augmentation. */
export async function embedOnnx(
  e: OnnxEmbedder,
  params: Tensors,
  images: Float32Array,
  batch = 64,
): Promise<{ emb: Float32Array; dim: number }> {
  const plane = 3 * e.size * e.size, n = images.length / plane, dim = e.dim;
  const forward = cg.compile((p: Tensors, x: cg.Tensor) =>
    cg.stack([e.model.apply(p, x)[0], e.model.apply(p, cg.flip(x, 3))[0]])
  );
  batch = Math.min(batch, n);
  const emb = new Float32Array(n * dim), flipped = new Float32Array(n * dim);
  for (let i = 0; i < n; i += batch) {
    // The last batch is padded to the full size, so one compiled program serves all batches.
    const chunk = new Float32Array(batch * plane);
    chunk.set(images.subarray(i * plane, Math.min(n, i + batch) * plane));
    const v = await forward(params, cg.tensor(chunk, [batch, 3, e.size, e.size])).data();
    const k = Math.min(batch, n - i);
    emb.set(v.subarray(0, k * dim), i * dim);
    flipped.set(v.subarray(batch * dim, (batch + k) * dim), i * dim);
  }
  return { emb: combineFlip(emb, flipped, dim), dim };
}

interface FineTuneState {
  params: { net: Tensors; head: cg.Tensor };
  stats: Tensors;
  opt: OptState;
}

/**
 * Fine-tunes an imported backbone with `config.loss` and a fresh class head: SGD over the
 * backbone's weights and the head; batch normalization keeps the model's running statistics
 * (frozen, as when fine-tuning a published model on a small set). Optionally exports the result.
 */
export async function fineTuneOnnx(
  args: Args,
  loss: LossName,
  dataset: ImageDataset,
  test: EvalSet,
): Promise<RunResult> {
  const path = args.init!;
  const e = await loadOnnxEmbedder(path);
  const config: RunConfig = {
    loss,
    s: args.s,
    m: args.m,
    size: args.size,
    widths: [],
    embedding: e.dim,
    classes: dataset.classes,
    batch: args.batch,
    steps: args.steps,
    lr: args.lr,
    warmup: args.warmup,
    momentum: 0.9,
    weightDecay: 5e-4,
    seed: args.seed,
  };
  if (e.size !== config.size) {
    throw new RangeError(`${path} takes ${e.size}x${e.size} images; pass --size ${e.size}`);
  }
  const { trainable, statistics } = splitStatistics(e.model, e.model.params);
  console.log(
    `${config.loss}: fine-tuning ${path} (${Object.keys(trainable).length} trainable tensors, ` +
      `${Object.keys(statistics).length} frozen running statistics, embedding ${e.dim})`,
  );
  const head = cg.normal(cg.randomKey(config.seed), [config.classes, e.dim], {
    std: 1 / Math.sqrt(e.dim),
  });
  const lr = linearWarmup(cosine(config.lr, { steps: config.steps, minLr: config.lr * 0.01 }), {
    steps: config.warmup,
  });
  const opt = sgd({ lr, momentum: config.momentum, weightDecay: config.weightDecay });
  const params = { net: trainable, head };
  const init: FineTuneState = { params, stats: statistics, opt: opt.init(params) as OptState };
  const step = cg.compile((st: FineTuneState, b: { x: cg.Tensor; y: cg.Tensor }) => {
    const f = (p: FineTuneState["params"]) => {
      const emb = e.model.apply({ ...p.net, ...st.stats }, b.x)[0];
      return [lossOf(config, emb, p.head, b.y, cg.cast(st.opt.step, "float32")), emb];
    };
    const [[loss, emb], grads] = cg.valueAndGrad(f, { hasAux: true })(st.params) as unknown as [
      [cg.Tensor, cg.Tensor],
      FineTuneState["params"],
    ];
    const acc = L.accuracy(cg.stopGradient(emb), cg.stopGradient(st.params.head), b.y);
    const u = opt.update(grads, st.opt, st.params);
    return {
      state: {
        params: u.params as FineTuneState["params"],
        stats: st.stats,
        opt: u.state as OptState,
      },
      metrics: cg.stack([loss, cg.reshape(acc, [])]),
    };
  }, { donate: [0] });
  const sample = batchSampler(dataset, { batchSize: config.batch, seed: config.seed });
  const curve: { step: number; loss: number; acc: number }[] = [];
  const t0 = performance.now();
  const result = await cg.trainLoop({
    step,
    init,
    steps: config.steps,
    readEvery: args.readEvery,
    batch: async (i) => {
      const s = await sample(i);
      return {
        x: cg.tensor(s.images, [config.batch, 3, config.size, config.size]),
        y: cg.tensor(s.labels, [config.batch]),
      };
    },
    onMetrics: (first, rows) => {
      rows.forEach((r, k) => curve.push({ step: first + k + 1, loss: r[0], acc: r[1] }));
      const done = first + rows.length, tail = rows[rows.length - 1];
      const ips = (done * config.batch) / ((performance.now() - t0) / 1000);
      const line = progressLine(
        config.loss.padEnd(8),
        done,
        config.steps,
        tail[0],
        tail[1],
        ips,
        ((config.steps - done) * config.batch) / ips,
      );
      Deno.stderr.writeSync(new TextEncoder().encode(`\r${line}`));
    },
  });
  Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  const seconds = result.ms / 1000;
  const bad = curve.find((c) => !Number.isFinite(c.loss));
  if (bad) throw new RangeError(`${config.loss}: the loss became ${bad.loss} at step ${bad.step}`);
  const net = { ...result.state.params.net, ...result.state.stats };
  const { emb, dim } = await embedOnnx(e, net, test.images);
  const v = verify(emb, dim, test.pairs);
  if (args.export !== undefined) {
    const bytes = await toOnnx(
      (p: Tensors, x: cg.Tensor) => e.model.apply(p, x)[0],
      net,
      [cg.zeros([2, 3, e.size, e.size])],
      { inputNames: [e.model.inputs[0].name], outputNames: [e.model.outputs[0].name] },
    );
    await writeFileAtomic(args.export, bytes);
    console.log(`wrote ${args.export}`);
  }
  const ips = (config.steps * config.batch) / seconds;
  console.log(
    `${config.loss}: fine-tuned ${config.steps} steps in ${seconds.toFixed(1)} s (${
      ips.toFixed(0)
    } img/s); unseen-identity verification ${(v.kfold.accuracy * 100).toFixed(2)}% ± ${
      (v.kfold.stdError * 100).toFixed(2)
    }, AUC ${v.auc.toFixed(4)}`,
  );
  return {
    loss: config.loss,
    config,
    curve,
    evals: [{ step: config.steps, accuracy: v.kfold.accuracy, auc: v.auc }],
    resumedAt: [],
    checkpoint: "",
    imagesPerSecond: ips,
    seconds,
    accuracy: v.kfold.accuracy,
    stdError: v.kfold.stdError,
    auc: v.auc,
    tar: v.tar.map((t) => ({ far: t.far, tar: t.tar })),
    roc: { fpr: [...v.roc.fpr], tpr: [...v.roc.tpr] },
  };
}
