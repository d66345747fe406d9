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
import { dirname, join } from "node:path";
import * as cg from "../mod.ts";
import {
  batchSampler,
  imageFolderDataset,
  parsePairs,
  prepareImage,
  readVerifyBin,
  recordIODataset,
  syntheticDataset,
  syntheticPairs,
  TEST_IDENTITY_OFFSET,
} from "../src/data/mod.ts";
import type { ImageDataset } from "../src/data/mod.ts";
import { type LineChartOptions, lineChartSvg } from "../src/eval/mod.ts";
import { removeStaleTemporaries, writeFileAtomic } from "../src/io/mod.ts";
import { marginUpperBound } from "../src/losses/mod.ts";
import {
  choiceOption,
  type CliOption,
  type CliValues,
  intOption,
  listOption,
  numberOption,
  parseCli,
  runMain,
  UsageError,
} from "./_cli.ts";
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
import { exportEmbedding, fineTuneOnnx } from "./_onnx.ts";

const USAGE =
  `Usage: deno run --allow-read=. --allow-write=out --allow-env examples/train_cosface.ts [options]

Trains the small face network of bench/WORKLOADS.md with CosFace and a softmax baseline, and
evaluates both on unseen identities (LFW protocol: 10 folds).

Data
  --data SOURCE          "synthetic" (default: procedural faces generated in code), an image
                         folder root/<identity>/<image>.png|jpg, or an insightface train.rec
  --eval FILE            evaluate on your own pairs: an LFW pairs.txt (images under
                         --eval-root, default the file's folder, <name>/<name>_0001.jpg) or an
                         insightface verification .bin (lfw.bin, ...); without it, evaluation
                         uses procedural faces of unseen identities (and says so)
  --eval-root DIR        image root of a pairs.txt given to --eval
  --identities N         synthetic training identities, at least 2 (default 60)
  --images N             synthetic images per identity, at least 1 (default 24)
  --difficulty D         synthetic nuisance strength from 0 to 1 (default 0.4)
  --size N               image side in pixels, from 8 to 512 (default 32)
  --pairs-per-fold N     procedural test pairs per fold and kind (default 300, as LFW)
Model and loss
  --loss NAME            ${LOSSES.join(" | ")} (default cosface)
  --baseline NAME        also train this loss the same way, or "none" (default softmax)
  --s S --m M            scale (> 0) and margin (default 30 and 0.35); CosFace's m must lie
                         in [0, bound] with the paper's bound (Eq. 7) for the number of classes
                         and the embedding size; ArcFace's in [0, pi); SphereFace's is an
                         integer from 1 to 10
  --force                train with a margin outside those bounds anyway (an experiment)
  --widths a,b,c,d       stage widths (default 16,32,64,128; bench/WORKLOADS.md uses
                         32,64,128,256)
  --embedding N          embedding size, at least 2 (default 64)
Training
  --steps N              steps per run, at least 1 (default 500)
  --batch N              batch size, at least 2 (batch norm needs two) (default 32)
  --lr X                 base learning rate > 0 (default 0.01: about the paper's 0.1 at batch
                         512 scaled linearly to batch 32), cosine schedule, warm-up
  --warmup N             warm-up steps, at least 0 (default 20)
  --seed N               seed, from 0 to 2^32-1 (default 1)
  --backend NAME         auto | webgpu | wasm | cpu (default auto: webgpu when an adapter
                         exists, else wasm; COSGRAD_BACKEND sets it too)
  --out DIR              output folder (default out/train)
  --checkpoint-every X   checkpoint every X steps ("200") or seconds of training ("60s",
                         the default), and on Ctrl-C / SIGTERM; written atomically
  --resume               continue from DIR/<loss>.safetensors when it exists; options that
                         change the model, loss, data, optimizer settings or seed are refused,
                         --steps may grow
  --init FILE.onnx       fine-tune this imported backbone with --loss (frozen batch-norm
                         statistics, a fresh class head; no baseline run)
  --export FILE.onnx     write the trained embedding network of the --loss run as ONNX
  --read-every N         read metrics back every N steps, at least 1 (default 10)
  --eval-every N         evaluate on the unseen identities every N steps (default 100; 0: only
                         at the end)
  -h, --help             this text`;

/** The options of train_cosface.ts (margin_sweep.ts adds its own). */
export const TRAIN_OPTIONS = {
  data: { type: "string", default: "synthetic" },
  eval: { type: "string" },
  "eval-root": { type: "string" },
  identities: { type: "string", default: "60" },
  images: { type: "string", default: "24" },
  difficulty: { type: "string", default: "0.4" },
  size: { type: "string", default: "32" },
  "pairs-per-fold": { type: "string", default: "300" },
  loss: { type: "string", default: "cosface" },
  baseline: { type: "string", default: "softmax" },
  s: { type: "string", default: "30" },
  m: { type: "string", default: "0.35" },
  force: { type: "boolean", default: false },
  widths: { type: "string", default: "16,32,64,128" },
  embedding: { type: "string", default: "64" },
  steps: { type: "string", default: "500" },
  batch: { type: "string", default: "32" },
  lr: { type: "string", default: "0.01" },
  warmup: { type: "string", default: "20" },
  seed: { type: "string", default: "1" },
  backend: { type: "string", default: "auto" },
  out: { type: "string", default: "out/train" },
  "checkpoint-every": { type: "string", default: "60s" },
  resume: { type: "boolean", default: false },
  "read-every": { type: "string", default: "10" },
  "eval-every": { type: "string", default: "100" },
  init: { type: "string" },
  export: { type: "string" },
  help: { type: "boolean", short: "h", default: false },
} as const satisfies Record<string, CliOption>;

/** When to write a checkpoint during training: every so many steps or seconds. */
export type CheckpointEvery = { steps: number } | { seconds: number };

export interface Args {
  data: string;
  eval: string | undefined;
  evalRoot: string | undefined;
  identities: number;
  images: number;
  difficulty: number;
  size: number;
  pairsPerFold: number;
  loss: LossName;
  baseline: LossName | "none";
  s: number;
  m: number;
  force: boolean;
  widths: number[];
  embedding: number;
  steps: number;
  batch: number;
  lr: number;
  warmup: number;
  seed: number;
  backend: "auto" | "webgpu" | "wasm" | "cpu";
  out: string;
  checkpointEvery: CheckpointEvery;
  resume: boolean;
  readEvery: number;
  evalEvery: number;
  /** An .onnx backbone to fine-tune. */
  init?: string;
  /** Where to write the trained embedding network as ONNX. */
  export?: string;
}

function checkpointEvery(value: string): CheckpointEvery {
  const seconds = value.endsWith("s");
  const body = seconds ? value.slice(0, -1) : value;
  const x = Number(body);
  if (body.trim() === "" || !Number.isFinite(x) || x <= 0 || (!seconds && !Number.isInteger(x))) {
    throw new UsageError(
      `--checkpoint-every expects a whole number of steps of at least 1 ("200") or a number of ` +
        `seconds greater than 0 ("60s"), got "${value}"`,
    );
  }
  return seconds ? { seconds: x } : { steps: x };
}

/** Checks the parsed values of {@link TRAIN_OPTIONS}; every bad one is a UsageError naming it. */
export function argsFrom(values: CliValues<typeof TRAIN_OPTIONS>): Args {
  const out = values.out;
  if (out.trim() === "") throw new UsageError(`--out expects a folder, got ""`);
  if (values["eval-root"] !== undefined && values.eval === undefined) {
    throw new UsageError(`--eval-root needs --eval pairs.txt`);
  }
  for (const flag of ["init", "export"] as const) {
    const v = values[flag];
    if (v !== undefined && !v.endsWith(".onnx")) {
      throw new UsageError(`--${flag} expects an .onnx file, got "${v}"`);
    }
  }
  if (values.init !== undefined && values.resume) {
    throw new UsageError(`--init starts from an .onnx model; it cannot be combined with --resume`);
  }
  const args: Args = {
    data: values.data,
    eval: values.eval,
    evalRoot: values["eval-root"],
    identities: intOption("identities", values.identities, { min: 2 }),
    images: intOption("images", values.images, { min: 1 }),
    difficulty: numberOption("difficulty", values.difficulty, { min: 0, max: 1 }),
    size: intOption("size", values.size, { min: 8, max: 512 }),
    pairsPerFold: intOption("pairs-per-fold", values["pairs-per-fold"], { min: 1 }),
    loss: choiceOption("loss", values.loss, LOSSES),
    baseline: choiceOption("baseline", values.baseline, [...LOSSES, "none"] as const),
    s: numberOption("s", values.s, { above: 0, max: 1e4 }),
    m: numberOption("m", values.m),
    force: values.force,
    widths: listOption("widths", values.widths, (w) => intOption("widths", w, { min: 1 })),
    embedding: intOption("embedding", values.embedding, { min: 2 }),
    steps: intOption("steps", values.steps, { min: 1 }),
    batch: intOption("batch", values.batch, { min: 2 }),
    lr: numberOption("lr", values.lr, { above: 0, max: 100 }),
    warmup: intOption("warmup", values.warmup, { min: 0 }),
    seed: intOption("seed", values.seed, { min: 0, max: 2 ** 32 - 1 }),
    backend: choiceOption("backend", values.backend, ["auto", "webgpu", "wasm", "cpu"] as const),
    out,
    checkpointEvery: checkpointEvery(values["checkpoint-every"]),
    resume: values.resume,
    readEvery: intOption("read-every", values["read-every"], { min: 1 }),
    evalEvery: intOption("eval-every", values["eval-every"], { min: 0 }),
    init: values.init,
    export: values.export,
  };
  if (args.data === "synthetic") {
    // The classes are known now: the margins are checked before anything is computed.
    const losses = [args.loss, ...(args.baseline === "none" ? [] : [args.baseline])];
    for (const l of losses) checkMargin(l, args.m, args.identities, args.embedding, args.force);
  }
  return args;
}

/** Parses and checks the command line (null: --help). */
export function parse(argv: string[]): Args | null {
  const { values } = parseCli(argv, TRAIN_OPTIONS);
  if (values.help) return null;
  return argsFrom(values);
}

/**
 * Checks the margin `m` of `loss` for `classes` classes and `dim`-dimensional embeddings:
 * CosFace's against the paper's bound (Eq. 7: 1 - cos(2 pi / C) for K = 2, C / (C - 1) for
 * C <= K + 1, and below C / (C - 1) otherwise), ArcFace's in [0, pi), SphereFace's an integer
 * from 1 to 10. Outside: a UsageError, unless `force`.
 */
export function checkMargin(
  loss: LossName,
  m: number,
  classes: number,
  dim: number,
  force: boolean,
  flag = "--m",
): void {
  let bound: [number, number, string] | null = null;
  if (loss === "cosface") {
    const hi = dim === 2 || classes <= dim + 1
      ? marginUpperBound(classes, dim)
      : classes / (classes - 1);
    bound = [0, hi, `CosFace's range for ${classes} classes in ${dim} dimensions (Eq. 7)`];
  } else if (loss === "arcface") bound = [0, Math.PI, "ArcFace's range [0, pi)"];
  else if (loss === "sphereface") {
    if (!Number.isInteger(m) || m < 1 || m > 10) {
      throw new UsageError(`${flag} for sphereface expects an integer from 1 to 10, got ${m}`);
    }
    return;
  }
  if (bound === null || force) return;
  const [lo, hi, what] = bound;
  if (!(m >= lo && (loss === "arcface" ? m < hi : m <= hi))) {
    throw new UsageError(
      `${flag} ${m} is outside ${what}: expected from ${lo} to ${
        Number(hi.toFixed(4))
      }; add --force to train with it anyway`,
    );
  }
}

/** Switches to the backend `--backend` names ("auto": webgpu when an adapter exists). */
export async function useBackend(name: string): Promise<cg.Backend> {
  if (name === "cpu") return await cg.setBackend("cpu");
  if (name === "webgpu") return await cg.initWebGpu();
  if (name === "wasm") return await cg.setBackend("wasm");
  await cg.initDefaultBackend();
  return cg.getBackend();
}

/** Writes `text` to `path` atomically (removing temporaries a killed writer left). */
export async function writeText(path: string, text: string): Promise<void> {
  await removeStaleTemporaries(path);
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

/** An evaluation set: images (CHW floats) and pairs of indices into them, with folds. */
export interface EvalSet {
  /** What the pairs are, for the log and the report. */
  description: string;
  pairs: { a: number; b: number; same: boolean; fold: number }[];
  images: Float32Array;
}

/**
 * The verification set: the user's pairs (`--eval` pairs.txt or .bin) or, without `--eval`,
 * procedural faces of unseen identities in the LFW layout (the log says which).
 */
export async function testSet(args: Args): Promise<EvalSet> {
  const t0 = performance.now();
  const set = args.eval === undefined ? proceduralPairs(args) : await userPairs(args, args.eval);
  console.log(
    `evaluation: ${set.description}, ${set.pairs.length} pairs over ${
      set.images.length / (3 * args.size * args.size)
    } images (prepared in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  if (args.eval === undefined && args.data !== "synthetic") {
    console.log(
      "note: training on your data but evaluating on procedural faces; give --eval pairs.txt " +
        "or --eval lfw.bin to evaluate on your own pairs",
    );
  }
  return set;
}

function proceduralPairs(args: Args): EvalSet {
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
  return {
    description: "procedural faces of unseen identities (no --eval given), 10 folds",
    pairs,
    images,
  };
}

async function userPairs(args: Args, file: string): Promise<EvalSet> {
  const plane = 3 * args.size * args.size;
  if (file.endsWith(".bin")) {
    const bin = await readVerifyBin(file);
    const n = bin.issame.length;
    if (n < 2) throw new RangeError(`${file} has ${n} pairs: expected at least 2 (two folds)`);
    const folds = Math.min(10, n);
    const images = new Float32Array(bin.images.length * plane);
    bin.images.forEach((bytes, i) =>
      images.set(prepareImage(bytes, `${file} image ${i}`, args.size), i * plane)
    );
    // insightface's protocol: 10 contiguous folds (fewer for a file of under 10 pairs), pair k
    // is images 2k and 2k + 1.
    const pairs = bin.issame.map((same, k) => ({
      a: 2 * k,
      b: 2 * k + 1,
      same,
      fold: Math.floor((k * folds) / n),
    }));
    return { description: `${file} (insightface .bin, ${folds} folds)`, pairs, images };
  }
  const parsed = parsePairs(await Deno.readTextFile(file), { file });
  const root = args.evalRoot ?? dirname(file);
  const index = new Map<string, number>();
  const paths: string[] = [];
  const id = (p: string) => {
    let i = index.get(p);
    if (i === undefined) {
      i = paths.length;
      index.set(p, i);
      paths.push(p);
    }
    return i;
  };
  const pairs = parsed.pairs.map((p) => ({ a: id(p.a), b: id(p.b), same: p.same, fold: p.fold }));
  const images = new Float32Array(paths.length * plane);
  for (let i = 0; i < paths.length; i++) {
    const path = join(root, paths[i]);
    images.set(prepareImage(await Deno.readFile(path), path, args.size), i * plane);
  }
  return {
    description: `${file} (pairs.txt, images under ${root}, ${parsed.folds} folds)`,
    pairs,
    images,
  };
}

export interface RunResult {
  loss: LossName;
  config: RunConfig;
  /** Every step's metrics, across resumes. */
  curve: { step: number; loss: number; acc: number }[];
  /** Verification during training (every --eval-every steps, and the end), across resumes. */
  evals: { step: number; accuracy: number; auc: number }[];
  /** Steps this process resumed from (one entry per resume), empty for a fresh run. */
  resumedAt: number[];
  /** The checkpoint file of this run. */
  checkpoint: string;
  /** Training speed of this process's steps; null when it ran none (resumed at the end). */
  imagesPerSecond: number | null;
  seconds: number;
  accuracy: number;
  stdError: number;
  auc: number;
  tar: { far: number; tar: number | null }[];
  roc: { fpr: number[]; tpr: number[] };
}

/** A run stopped by SIGINT/SIGTERM after saving its checkpoint. */
export class Interrupted extends Error {
  constructor(readonly step: number, readonly checkpoint: string) {
    super(`interrupted at step ${step}; checkpoint saved to ${checkpoint}; continue with --resume`);
    this.name = "Interrupted";
  }
}

/** Options of {@link train}. */
export interface TrainOptions {
  /** Name of the checkpoint file (default: the loss name): `<out>/<tag>.safetensors`. */
  tag?: string;
  /** Stops training (then a checkpoint is written and {@link Interrupted} thrown). */
  signal?: AbortSignal;
}

/** The options on which a run's identity depends, by config key, with their flags. */
const FIXED: [keyof RunConfig, string][] = [
  ["loss", "--loss"],
  ["s", "--s"],
  ["m", "--m"],
  ["size", "--size"],
  ["widths", "--widths"],
  ["embedding", "--embedding"],
  ["classes", "number of classes (--data / --identities)"],
  ["batch", "--batch"],
  ["lr", "--lr"],
  ["warmup", "--warmup"],
  ["momentum", "momentum"],
  ["weightDecay", "weight decay"],
  ["seed", "--seed"],
];

function dataOf(args: Args): Record<string, string | number> {
  return args.data === "synthetic"
    ? {
      data: args.data,
      identities: args.identities,
      images: args.images,
      difficulty: args.difficulty,
    }
    : { data: args.data };
}

function show(v: unknown): string {
  return Array.isArray(v) ? v.join(",") : String(v);
}

/**
 * Refuses to resume a checkpoint with options that define another run: the model, the loss,
 * the data, the optimizer's settings or the seed (--steps may grow).
 */
function checkResume(
  path: string,
  metadata: Record<string, string>,
  config: RunConfig,
  data: Record<string, string | number>,
): { step: number; saved: RunConfig } {
  let saved: RunConfig, savedData: Record<string, string | number>;
  try {
    saved = JSON.parse(metadata.config);
    savedData = JSON.parse(metadata.data ?? "{}");
  } catch {
    throw new UsageError(`--resume: ${path} has no run configuration (not a training checkpoint)`);
  }
  for (const [key, flag] of FIXED) {
    if (show(saved[key]) !== show(config[key])) {
      throw new UsageError(
        `--resume: ${path} was trained with ${flag} ${show(saved[key])}, this run asks for ` +
          `${show(config[key])}; the model, loss, data, optimizer settings and seed cannot ` +
          `change on resume (use another --out to start a new run)`,
      );
    }
  }
  for (const key of new Set([...Object.keys(savedData), ...Object.keys(data)])) {
    if (show(savedData[key]) !== show(data[key])) {
      throw new UsageError(
        `--resume: ${path} was trained with --${key} ${show(savedData[key])}, this run asks ` +
          `for ${show(data[key])}; the training data cannot change on resume`,
      );
    }
  }
  const step = Number(metadata.step);
  if (!Number.isInteger(step) || step < 0) {
    throw new UsageError(`--resume: ${path} has no valid step (${metadata.step})`);
  }
  if (config.steps < step) {
    throw new UsageError(
      `--steps ${config.steps} is below the step ${step} ${path} was saved at: expected at least ${step}`,
    );
  }
  return { step, saved };
}

export async function train(
  args: Args,
  loss: LossName,
  dataset: ImageDataset,
  test: EvalSet,
  options: TrainOptions = {},
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
  checkMargin(loss, args.m, dataset.classes, args.embedding, args.force);
  const run = initRun(config);
  let init: TrainState = { params: run.params, bn: run.state, opt: run.optState };
  const ckpt = `${args.out}/${options.tag ?? loss}.safetensors`;
  const stale = await removeStaleTemporaries(ckpt);
  if (stale.length > 0) console.log(`${loss}: removed ${stale.length} stale temporary file(s)`);
  let startStep = 0;
  const curve: RunResult["curve"] = [];
  const evals: RunResult["evals"] = [];
  const resumedAt: number[] = [];
  const data = dataOf(args);
  if (args.resume) {
    let loaded: Awaited<ReturnType<typeof loadCheckpoint>> | null = null;
    try {
      // The configuration is checked before the tensors are fitted to this model.
      loaded = await loadCheckpoint(ckpt, init, (metadata) => {
        const { step, saved } = checkResume(ckpt, metadata, config, data);
        startStep = step;
        if (saved.steps !== config.steps) {
          console.log(
            `${loss}: --steps ${config.steps} (the checkpoint was trained toward ${saved.steps}): ` +
              `the learning-rate schedule now spans ${config.steps} steps`,
          );
        }
      });
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      console.log(`${loss}: no checkpoint at ${ckpt}, starting fresh`);
    }
    if (loaded !== null) {
      init = loaded.state;
      curve.push(...JSON.parse(loaded.metadata.curve ?? "[]"));
      evals.push(...JSON.parse(loaded.metadata.evals ?? "[]"));
      resumedAt.push(...JSON.parse(loaded.metadata.resumedAt ?? "[]"), startStep);
      console.log(`${loss}: resumed from ${ckpt} at step ${startStep}`);
    }
  }
  const save = (state: TrainState, step: number) =>
    saveCheckpoint(ckpt, state, {
      loss,
      step: String(step),
      config: JSON.stringify(config),
      data: JSON.stringify(data),
      curve: JSON.stringify(curve.filter((c) => c.step <= step)),
      evals: JSON.stringify(evals.filter((e) => e.step <= step)),
      resumedAt: JSON.stringify(resumedAt),
    });
  const step = trainStep(config, run.opt);
  const sample = batchSampler(dataset, { batchSize: args.batch, seed: args.seed });
  const evaluate = async (state: TrainState) => {
    const { emb, dim } = await embedImages(state.params, state.bn, test.images, args.size);
    return verify(emb, dim, test.pairs);
  };
  const tty = Deno.stderr.isTerminal();
  const print = (line: string, width = 0) =>
    Deno.stderr.writeSync(
      new TextEncoder().encode(tty ? `\r${line.padEnd(width)}` : `${line}\n`),
    );
  const started = performance.now();
  let last = started;
  let lastStep = startStep;
  let lastSave = { step: startStep, at: started };
  let evalMs = 0;
  let saveMs = 0;
  let lineWidth = 0;
  const remaining = Math.max(0, args.steps - startStep);
  const result = await cg.trainLoop({
    step,
    init,
    steps: remaining,
    readEvery: args.readEvery,
    signal: options.signal,
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
      // A non-finite loss stops the run at once, and the last checkpoint stays the last good one.
      const bad = curve.find((c) => !Number.isFinite(c.loss));
      if (bad) {
        throw new RangeError(
          `${loss}: the loss became ${bad.loss} at step ${bad.step}` +
            (lastSave.step > 0 ? ` (${ckpt} holds step ${lastSave.step})` : ""),
        );
      }
      const now = performance.now();
      const before = lastStep;
      const done = startStep + first + rows.length;
      const ips = ((done - lastStep) * args.batch) / ((now - last) / 1000);
      const eta = ((args.steps - done) * args.batch) / ips;
      const tail = rows[rows.length - 1];
      const line = progressLine(loss.padEnd(8), done, args.steps, tail[0], tail[1], ips, eta);
      lineWidth = Math.max(lineWidth, line.length);
      print(line);
      last = now;
      lastStep = done;
      const every = args.evalEvery;
      if (every > 0 && done < args.steps && Math.floor(done / every) > Math.floor(before / every)) {
        // The state is read before the next step is submitted (and donated), so this is the
        // model after step `done`; the time spent here is left out of images/s.
        const t0 = performance.now();
        const v = await evaluate(state);
        evals.push({ step: done, accuracy: v.kfold.accuracy, auc: v.auc });
        print(
          `${loss.padEnd(8)} step ${done}: verification ${
            (v.kfold.accuracy * 100).toFixed(2)
          }%, AUC ${v.auc.toFixed(4)}`,
          lineWidth,
        );
        if (tty) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
        last = performance.now();
        evalMs += last - t0;
      }
      const due = "steps" in args.checkpointEvery
        ? done - lastSave.step >= args.checkpointEvery.steps
        : now - lastSave.at >= args.checkpointEvery.seconds * 1000;
      if (due && done < args.steps && !options.signal?.aborted) {
        // As for evaluation, `state` is the model after step `done`, not yet donated.
        const t0 = performance.now();
        await save(state, done);
        lastSave = { step: done, at: performance.now() };
        saveMs += lastSave.at - t0;
        last += lastSave.at - t0;
      }
    },
  });
  if (tty) Deno.stderr.writeSync(new TextEncoder().encode("\n"));
  const reached = startStep + result.metrics.length;
  await save(result.state, reached);
  if (result.stopped) throw new Interrupted(reached, ckpt);
  const seconds = (result.ms - evalMs - saveMs) / 1000;
  if (args.export !== undefined && loss === args.loss) {
    await exportEmbedding(args.export, result.state.params.net, result.state.bn, args.size);
  }
  const v = await evaluate(result.state);
  evals.push({ step: args.steps, accuracy: v.kfold.accuracy, auc: v.auc });
  const ips = remaining > 0 ? (remaining * args.batch) / seconds : null;
  console.log(
    `${loss}: ${remaining} steps in ${seconds.toFixed(1)} s (${ips?.toFixed(0) ?? "-"} img/s, ` +
      `${result.waits} host waits); verification ${(v.kfold.accuracy * 100).toFixed(2)}% ± ${
        (v.kfold.stdError * 100).toFixed(2)
      }, AUC ${v.auc.toFixed(4)}`,
  );
  return {
    loss,
    config,
    curve,
    evals,
    resumedAt,
    checkpoint: ckpt,
    imagesPerSecond: ips,
    seconds,
    accuracy: v.kfold.accuracy,
    stdError: v.kfold.stdError,
    auc: v.auc,
    tar: v.tar.map((t) => ({ far: t.far, tar: t.tar })),
    roc: { fpr: [...v.roc.fpr], tpr: [...v.roc.tpr] },
  };
}

/**
 * Aborts `controller` on the first SIGINT or SIGTERM (training stops after the step in flight
 * and saves a checkpoint); a second signal exits at once. Returns a function that removes the
 * listeners and the signal's name, if one came.
 */
export function stopOnSignals(
  controller: AbortController,
): { remove: () => void; got: () => string | null } {
  let got: string | null = null;
  const listeners: [Deno.Signal, () => void][] = [];
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    const f = () => {
      if (got !== null) Deno.exit(sig === "SIGINT" ? 130 : 143);
      got = sig;
      console.error(`\n${sig}: stopping after the step in flight and saving a checkpoint`);
      controller.abort();
    };
    try {
      Deno.addSignalListener(sig, f);
      listeners.push([sig, f]);
    } catch { /* SIGTERM cannot be listened to on Windows */ }
  }
  return {
    remove: () => listeners.forEach(([sig, f]) => Deno.removeSignalListener(sig, f)),
    got: () => got,
  };
}

function markdown(
  args: Args,
  adapter: string,
  dataset: ImageDataset,
  test: string,
  runs: RunResult[],
): string {
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
    `- test: ${test}, flip test-time augmentation`,
    ...runs.filter((r) => r.resumedAt.length > 0).map((r) =>
      `- ${r.loss}: resumed from its checkpoint at step ${
        r.resumedAt.join(", ")
      } (the curve covers every step)`
    ),
    ``,
    `| loss | verification accuracy | AUC | ${
      fars.map((f) => `TAR@FAR=${f}`).join(" | ")
    } | train img/s | final train loss |`,
    `| --- | --- | --- | ${fars.map(() => "---").join(" | ")} | --- | --- |`,
    ...runs.map((r) =>
      `| ${r.loss} | ${pct(r.accuracy)}% ± ${pct(r.stdError)} | ${r.auc.toFixed(4)} | ${
        r.tar.map((t) => t.tar === null ? "n/a" : pct(t.tar) + "%").join(" | ")
      } | ${r.imagesPerSecond?.toFixed(0) ?? "-"} | ${r.curve.at(-1)?.loss.toFixed(3) ?? "-"} |`
    ),
    ``,
    `Verification accuracy during training:`,
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
  const losses: LossName[] = [args.loss];
  if (args.baseline !== "none" && args.baseline !== args.loss) losses.push(args.baseline);
  // Every run's margin is checked before any training (the classes are known now).
  for (const l of losses) checkMargin(l, args.m, dataset.classes, args.embedding, args.force);
  const test = await testSet(args);
  const runs: RunResult[] = [];
  await withSignals(async (signal) => {
    if (args.init !== undefined) runs.push(await fineTuneOnnx(args, args.loss, dataset, test));
    else for (const l of losses) runs.push(await train(args, l, dataset, test, { signal }));
  });
  if (dataset.skipped.length > 0) {
    console.log(`skipped ${dataset.skipped.length} unreadable images (listed in report.json)`);
  }
  console.log(`\nverification on ${test.description}:`);
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
  await writeText(
    `${args.out}/report.md`,
    markdown(args, adapter, dataset, test.description, runs),
  );
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

/**
 * Runs `body` with a signal that SIGINT/SIGTERM abort; a run stopped that way has saved its
 * checkpoint, and the process exits 130 (SIGINT) or 143 (SIGTERM) with a line saying how to
 * continue.
 */
export async function withSignals(body: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  const signals = stopOnSignals(controller);
  try {
    await body(controller.signal);
  } catch (e) {
    if (!(e instanceof Interrupted)) throw e;
    console.error(e.message);
    Deno.exit(signals.got() === "SIGTERM" ? 143 : 130);
  } finally {
    signals.remove();
  }
}

if (import.meta.main) await runMain(main, Deno.args);
