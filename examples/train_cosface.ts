/**
 * Trains a face-embedding network with CosFace (and, for comparison, a softmax baseline
 * trained the same way), then evaluates both on identities never seen in training with the
 * LFW protocol (10 folds, threshold chosen on 9), ROC, AUC and TAR@FAR. Writes checkpoints
 * (safetensors), a JSON and Markdown report and SVG pictures to the output folder.
 *
 * ```sh
 * deno run --allow-read=. --allow-write=out --allow-env examples/train_cosface.ts --help
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";
import {
  batchSampler,
  imageFolderDataset,
  recordIODataset,
  syntheticDataset,
  syntheticPairs,
  TEST_IDENTITY_OFFSET,
} from "../src/data/mod.ts";
import type { ImageDataset } from "../src/data/mod.ts";
import { type LineChartOptions, lineChartSvg } from "../src/eval/mod.ts";
import { writeFileAtomic } from "../src/io/mod.ts";
import {
  embedImages,
  initRun,
  loadCheckpoint,
  LOSSES,
  type LossName,
  progressLine,
  type RunConfig,
  saveCheckpoint,
  type TrainState,
  trainStep,
  verify,
} from "./_face.ts";

const USAGE =
  `Usage: deno run --allow-read=. --allow-write=out --allow-env examples/train_cosface.ts [options]

Trains the small face network of WORKLOADS.md with CosFace and a softmax baseline, and
evaluates both on unseen identities (LFW protocol: 10 folds).

Data
  --data SOURCE          "synthetic" (default: procedural faces generated in code), an image
                         folder root/<identity>/<image>.png|jpg, or an insightface train.rec
  --identities N         synthetic training identities (default 60)
  --images N             synthetic images per identity (default 24)
  --difficulty D         synthetic nuisance strength in [0, 1] (default 0.4)
  --size N               image side in pixels (default 32)
  --pairs-per-fold N     test pairs per fold and kind (default 300, as LFW)
Model and loss
  --loss NAME            ${LOSSES.join(" | ")} (default cosface)
  --baseline NAME        also train this loss the same way, or "none" (default softmax)
  --s S --m M            scale and margin (default 30 and 0.35)
  --widths a,b,c,d       stage widths (default 16,32,64,128; WORKLOADS.md uses 32,64,128,256)
  --embedding N          embedding size (default 64)
Training
  --steps N              steps per run (default 500)   --batch N   batch size (default 32)
  --lr X                 base learning rate (default 0.01: about the paper's 0.1 at batch 512
                         scaled linearly to batch 32), cosine schedule, warm-up
  --warmup N             warm-up steps (default 20)
  --seed N               seed (default 1)
  --backend NAME         webgpu | wasm | cpu (default: webgpu when an adapter exists, else wasm;
                         COSGRAD_BACKEND sets it too)
  --out DIR              output folder (default out/train)
  --resume               continue from DIR/<loss>.safetensors when it exists
  --read-every N         read metrics back every N steps (default 10)
  --eval-every N         evaluate on the unseen identities every N steps (default 100; 0: only
                         at the end)
  -h, --help             this text`;

export interface Args {
  data: string;
  identities: number;
  images: number;
  difficulty: number;
  size: number;
  pairsPerFold: number;
  loss: LossName;
  baseline: LossName | "none";
  s: number;
  m: number;
  widths: number[];
  embedding: number;
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  seed: number;
  backend: string;
  out: string;
  resume: boolean;
  readEvery: number;
  evalEvery: number;
}

export function parse(argv: string[]): Args | null {
  const { values } = parseArgs({
    args: argv,
    options: {
      data: { type: "string", default: "synthetic" },
      identities: { type: "string", default: "60" },
      images: { type: "string", default: "24" },
      difficulty: { type: "string", default: "0.4" },
      size: { type: "string", default: "32" },
      "pairs-per-fold": { type: "string", default: "300" },
      loss: { type: "string", default: "cosface" },
      baseline: { type: "string", default: "softmax" },
      s: { type: "string", default: "30" },
      m: { type: "string", default: "0.35" },
      widths: { type: "string", default: "16,32,64,128" },
      embedding: { type: "string", default: "64" },
      steps: { type: "string", default: "500" },
      batch: { type: "string", default: "32" },
      lr: { type: "string", default: "0.01" },
      warmup: { type: "string", default: "20" },
      seed: { type: "string", default: "1" },
      backend: { type: "string", default: "auto" },
      out: { type: "string", default: "out/train" },
      resume: { type: "boolean", default: false },
      "read-every": { type: "string", default: "10" },
      "eval-every": { type: "string", default: "100" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) return null;
  const num = (name: string, v: string, integer = false) => {
    const x = Number(v);
    if (!Number.isFinite(x) || (integer && !Number.isInteger(x))) {
      throw new RangeError(`--${name} expects ${integer ? "an integer" : "a number"}, got "${v}"`);
    }
    return x;
  };
  const nonNegative = (name: string, x: number) => {
    if (x < 0) throw new RangeError(`--${name} expects a number of at least 0, got ${x}`);
    return x;
  };
  const lossName = (name: string, v: string, allowNone: boolean) => {
    if ((LOSSES as readonly string[]).includes(v) || (allowNone && v === "none")) return v;
    throw new RangeError(`--${name} expects one of ${LOSSES.join(", ")}, got "${v}"`);
  };
  return {
    data: values.data!,
    identities: num("identities", values.identities!, true),
    images: num("images", values.images!, true),
    difficulty: num("difficulty", values.difficulty!),
    size: num("size", values.size!, true),
    pairsPerFold: num("pairs-per-fold", values["pairs-per-fold"]!, true),
    loss: lossName("loss", values.loss!, false) as LossName,
    baseline: lossName("baseline", values.baseline!, true) as LossName | "none",
    s: num("s", values.s!),
    m: num("m", values.m!),
    widths: values.widths!.split(",").map((w) => num("widths", w, true)),
    embedding: num("embedding", values.embedding!, true),
    steps: num("steps", values.steps!, true),
    batch: num("batch", values.batch!, true),
    lr: num("lr", values.lr!),
    warmup: num("warmup", values.warmup!, true),
    seed: num("seed", values.seed!, true),
    backend: values.backend!,
    out: values.out!,
    resume: values.resume!,
    readEvery: num("read-every", values["read-every"]!, true),
    evalEvery: nonNegative("eval-every", num("eval-every", values["eval-every"]!, true)),
  };
}

/** Switches to the backend `--backend` names ("auto": webgpu when an adapter exists). */
export async function useBackend(name: string): Promise<cg.Backend> {
  if (name === "cpu") return await cg.setBackend("cpu");
  if (name === "webgpu") return await cg.initWebGpu();
  if (name === "wasm") return await cg.setBackend("wasm");
  await cg.initDefaultBackend();
  return cg.getBackend();
}

/** Writes `text` to `path` atomically. */
export async function writeText(path: string, text: string): Promise<void> {
  await writeFileAtomic(path, new TextEncoder().encode(text));
}

/** Writes a line chart (SVG) to `path` atomically. */
export async function writeChart(
  path: string,
  chart: LineChartOptions,
): Promise<void> {
  await writeText(path, lineChartSvg(chart));
}

export async function openDataset(args: Args): Promise<ImageDataset> {
  if (args.data === "synthetic") {
    return syntheticDataset({
      seed: args.seed,
      identities: args.identities,
      imagesPerIdentity: args.images,
      size: args.size,
      difficulty: args.difficulty,
    });
  }
  if (args.data.endsWith(".rec")) return await recordIODataset(args.data, { size: args.size });
  return await imageFolderDataset(args.data, { size: args.size });
}

/** The unseen-identity verification set: procedural faces of test identities, LFW layout. */
export function testSet(args: Args) {
  const t0 = performance.now();
  const protocol = syntheticPairs({
    seed: args.seed + 1000,
    folds: 10,
    pairsPerFold: args.pairsPerFold,
    identitiesPerFold: Math.max(10, Math.ceil(args.pairsPerFold / 3)),
    imagesPerIdentity: 4,
    size: args.size,
    difficulty: args.difficulty,
    identityOffset: TEST_IDENTITY_OFFSET,
  });
  const index = new Map<string, number>();
  const refs: { identity: number; index: number }[] = [];
  const id = (r: { identity: number; index: number }) => {
    const key = `${r.identity}/${r.index}`;
    let i = index.get(key);
    if (i === undefined) {
      i = refs.length;
      index.set(key, i);
      refs.push(r);
    }
    return i;
  };
  const pairs = protocol.pairs.map((p) => ({ a: id(p.a), b: id(p.b), same: p.same, fold: p.fold }));
  const plane = 3 * args.size * args.size;
  const images = new Float32Array(refs.length * plane);
  refs.forEach((r, i) =>
    protocol.faces.image(r.identity, r.index, { out: images.subarray(i * plane, (i + 1) * plane) })
  );
  console.log(
    `test set: ${pairs.length} pairs over ${refs.length} images of unseen identities ` +
      `(rendered in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  return { pairs, images };
}

export interface RunResult {
  loss: LossName;
  config: RunConfig;
  curve: { step: number; loss: number; acc: number }[];
  /** Unseen-identity verification during training (every --eval-every steps, and the end). */
  evals: { step: number; accuracy: number; auc: number }[];
  imagesPerSecond: number;
  seconds: number;
  accuracy: number;
  stdError: number;
  auc: number;
  tar: { far: number; tar: number | null }[];
  roc: { fpr: number[]; tpr: number[] };
}

export async function train(
  args: Args,
  loss: LossName,
  dataset: ImageDataset,
  test: Awaited<ReturnType<typeof testSet>>,
): Promise<RunResult> {
  const config: RunConfig = {
    loss,
    s: args.s,
    m: args.m,
    size: args.size,
    widths: args.widths,
    embedding: args.embedding,
    classes: dataset.classes,
    batch: args.batch,
    steps: args.steps,
    lr: args.lr,
    warmup: args.warmup,
    momentum: 0.9,
    weightDecay: 5e-4,
    seed: args.seed,
  };
  const run = initRun(config);
  let init: TrainState = { params: run.params, bn: run.state, opt: run.optState };
  const ckpt = `${args.out}/${loss}.safetensors`;
  let startStep = 0;
  if (args.resume) {
    try {
      const loaded = await loadCheckpoint(ckpt, init);
      init = loaded.state;
      startStep = Number(loaded.metadata.step ?? 0);
      console.log(`${loss}: resumed from ${ckpt} at step ${startStep}`);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      console.log(`${loss}: no checkpoint at ${ckpt}, starting fresh`);
    }
  }
  const step = trainStep(config, run.opt);
  const sample = batchSampler(dataset, { batchSize: args.batch, seed: args.seed });
  const curve: RunResult["curve"] = [];
  const evals: RunResult["evals"] = [];
  const evaluate = async (state: TrainState) => {
    const { emb, dim } = await embedImages(state.params, state.bn, test.images, args.size);
    return verify(emb, dim, test.pairs);
  };
  const started = performance.now();
  let last = started;
  let lastStep = startStep;
  let evalMs = 0;
  const remaining = Math.max(0, args.steps - startStep);
  const result = await cg.trainLoop({
    step,
    init,
    steps: remaining,
    readEvery: args.readEvery,
    batch: async (i) => {
      const b = await sample(startStep + i);
      return {
        x: cg.tensor(b.images, [args.batch, 3, args.size, args.size]),
        y: cg.tensor(b.labels, [args.batch]),
      };
    },
    onMetrics: async (first, rows, state) => {
      rows.forEach((r, k) =>
        curve.push({ step: startStep + first + k + 1, loss: r[0], acc: r[1] })
      );
      const now = performance.now();
      const before = lastStep;
      const done = startStep + first + rows.length;
      const ips = ((done - lastStep) * args.batch) / ((now - last) / 1000);
      const eta = ((args.steps - done) * args.batch) / ips;
      const tail = rows[rows.length - 1];
      const line = progressLine(loss.padEnd(8), done, args.steps, tail[0], tail[1], ips, eta);
      Deno.stderr.writeSync(new TextEncoder().encode(`\r${line}`));
      last = now;
      lastStep = done;
      const every = args.evalEvery;
      if (every > 0 && done < args.steps && Math.floor(done / every) > Math.floor(before / every)) {
        // The state is read before the next step is submitted (and donated), so this is the
        // model after step `done`; the time spent here is left out of images/s.
        const t0 = performance.now();
        const v = await evaluate(state);
        evals.push({ step: done, accuracy: v.kfold.accuracy, auc: v.auc });
        Deno.stderr.writeSync(new TextEncoder().encode(
          `\r${loss.padEnd(8)} step ${done}: unseen-identity verification ${
            (v.kfold.accuracy * 100).toFixed(2)
          }%, AUC ${v.auc.toFixed(4)}`.padEnd(line.length + 1) + "\n",
        ));
        last = performance.now();
        evalMs += last - t0;
      }
    },
  });
  Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  const seconds = (result.ms - evalMs) / 1000;
  const bad = curve.find((c) => !Number.isFinite(c.loss));
  if (bad) throw new RangeError(`${loss}: the loss became ${bad.loss} at step ${bad.step}`);
  await saveCheckpoint(ckpt, result.state, {
    loss,
    step: String(args.steps),
    config: JSON.stringify(config),
  });
  const v = await evaluate(result.state);
  evals.push({ step: args.steps, accuracy: v.kfold.accuracy, auc: v.auc });
  const ips = (remaining * args.batch) / seconds;
  console.log(
    `${loss}: ${remaining} steps in ${seconds.toFixed(1)} s (${ips.toFixed(0)} img/s, ` +
      `${result.waits} host waits); unseen-identity verification ${
        (v.kfold.accuracy * 100).toFixed(2)
      }% ± ${(v.kfold.stdError * 100).toFixed(2)}, AUC ${v.auc.toFixed(4)}`,
  );
  return {
    loss,
    config,
    curve,
    evals,
    imagesPerSecond: ips,
    seconds,
    accuracy: v.kfold.accuracy,
    stdError: v.kfold.stdError,
    auc: v.auc,
    tar: v.tar.map((t) => ({ far: t.far, tar: t.tar })),
    roc: { fpr: [...v.roc.fpr], tpr: [...v.roc.tpr] },
  };
}

function markdown(args: Args, adapter: string, dataset: ImageDataset, runs: RunResult[]): string {
  const pct = (x: number) => (x * 100).toFixed(2);
  const fars = runs[0].tar.map((t) => t.far);
  const lines = [
    `# cosgrad training report`,
    ``,
    `- date: ${new Date().toISOString()}`,
    `- backend: ${cg.getBackend().name}, adapter: ${adapter}`,
    `- training data: ${dataset.description}`,
    `- model: small network, widths ${args.widths.join(",")}, embedding ${args.embedding}, ` +
    `input ${args.size}x${args.size}`,
    `- ${args.steps} steps of batch ${args.batch}, SGD momentum 0.9, weight decay 5e-4, ` +
    `lr ${args.lr} cosine with ${args.warmup} warm-up steps; s = ${args.s}, m = ${args.m}`,
    `- test: unseen identities, 10 folds of ${args.pairsPerFold} same + ${args.pairsPerFold} ` +
    `different pairs, flip test-time augmentation`,
    ``,
    `| loss | verification accuracy | AUC | ${
      fars.map((f) => `TAR@FAR=${f}`).join(" | ")
    } | train img/s | final train loss |`,
    `| --- | --- | --- | ${fars.map(() => "---").join(" | ")} | --- | --- |`,
    ...runs.map((r) =>
      `| ${r.loss} | ${pct(r.accuracy)}% ± ${pct(r.stdError)} | ${r.auc.toFixed(4)} | ${
        r.tar.map((t) => t.tar === null ? "n/a" : pct(t.tar) + "%").join(" | ")
      } | ${r.imagesPerSecond.toFixed(0)} | ${r.curve.at(-1)?.loss.toFixed(3) ?? "-"} |`
    ),
    ``,
    `Unseen-identity verification accuracy during training:`,
    ``,
    `| step | ${runs.map((r) => r.loss).join(" | ")} |`,
    `| --- | ${runs.map(() => "---").join(" | ")} |`,
    ...[...new Set(runs.flatMap((r) => r.evals.map((e) => e.step)))].sort((a, b) => a - b).map(
      (step) =>
        `| ${step} | ${
          runs.map((r) => {
            const e = r.evals.find((x) => x.step === step);
            return e === undefined ? "-" : `${pct(e.accuracy)}%`;
          }).join(" | ")
        } |`,
    ),
    ``,
    `![loss](loss.svg) ![roc](roc.svg) ![evaluation](eval.svg)`,
    ``,
  ];
  return lines.join("\n");
}

async function main(argv: string[]): Promise<void> {
  const args = parse(argv);
  if (args === null) {
    console.log(USAGE);
    return;
  }
  const backend = await useBackend(args.backend);
  const adapter = (backend as unknown as { description?: string }).description ??
    (backend.name === "cpu" ? "none (CPU interpreter)" : "unknown");
  console.log(`backend: ${backend.name} (${adapter})`);
  await Deno.mkdir(args.out, { recursive: true });
  const dataset = await openDataset(args);
  console.log(`training data: ${dataset.description}`);
  const test = await testSet(args);
  const losses: LossName[] = [args.loss];
  if (args.baseline !== "none" && args.baseline !== args.loss) losses.push(args.baseline);
  const runs: RunResult[] = [];
  for (const l of losses) runs.push(await train(args, l, dataset, test));
  if (dataset.skipped.length > 0) {
    console.log(`skipped ${dataset.skipped.length} unreadable images (listed in report.json)`);
  }
  console.log("\nunseen-identity verification (LFW protocol, 10 folds):");
  for (const r of runs) {
    console.log(
      `  ${r.loss.padEnd(10)} ${(r.accuracy * 100).toFixed(2)}% ± ${
        (r.stdError * 100).toFixed(2)
      }` +
        `   AUC ${r.auc.toFixed(4)}`,
    );
  }
  await writeText(
    `${args.out}/report.json`,
    JSON.stringify(
      { args, backend: backend.name, adapter, skipped: dataset.skipped, runs },
      null,
      1,
    ),
  );
  await writeText(`${args.out}/report.md`, markdown(args, adapter, dataset, runs));
  await writeChart(`${args.out}/loss.svg`, {
    title: "training loss",
    xLabel: "step",
    yLabel: "loss",
    series: runs.map((r) => ({
      name: r.loss,
      x: r.curve.map((c) => c.step),
      y: r.curve.map((c) => c.loss),
    })),
  });
  await writeChart(`${args.out}/roc.svg`, {
    title: "ROC on unseen identities",
    xLabel: "false accept rate",
    yLabel: "true accept rate",
    logX: true,
    series: runs.map((r) => ({ name: r.loss, x: r.roc.fpr, y: r.roc.tpr })),
  });
  await writeChart(`${args.out}/eval.svg`, {
    title: "unseen-identity verification during training",
    xLabel: "step",
    yLabel: "accuracy",
    series: runs.map((r) => ({
      name: r.loss,
      x: r.evals.map((e) => e.step),
      y: r.evals.map((e) => e.accuracy),
    })),
  });
  console.log(
    `report: ${args.out}/report.md, ${args.out}/report.json, loss.svg, roc.svg, eval.svg`,
  );
}

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
