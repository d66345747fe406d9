/**
 * The CosFace paper's toy experiment (Fig. 3 of arXiv 1801.09414) as a command: 8 identities,
 * 2-D features, trained with softmax and with LMCL (CosFace) at m = 0, 0.1 and 0.2 from the same
 * seed for the same number of steps. Writes, per setting, the features in Euclidean space and on
 * the unit circle (class weight directions as rays) as SVG, and prints the angular gaps between
 * neighbouring classes: they grow with the margin m.
 *
 * The model, data and gap measure are the browser page's (`examples/web/toy.ts`).
 *
 * ```sh
 * deno run --allow-read=. --allow-write=out --allow-env examples/toy_margin_2d.ts --steps 1000
 * ```
 *
 * @module
 */
import * as cg from "../mod.ts";
import { choiceOption, intOption, numberOption, parseCli, runMain, UsageError } from "./_cli.ts";
import { scatterSvg } from "../src/eval/report.ts";
import {
  angularGaps,
  type GapReport,
  initToyState,
  makeToyData,
  makeToyStep,
  toyFeatures,
  type ToyLossSpec,
  type ToyState,
} from "./web/toy.ts";

export type { ClassArc, GapReport, LossKind, NeighbourGap, ToyLossSpec } from "./web/toy.ts";

const USAGE =
  `Usage: deno run --allow-read=. --allow-write=out --allow-env examples/toy_margin_2d.ts [options]

Trains the CosFace paper's 2-D toy (8 identities) with softmax and with CosFace (LMCL) at
m = 0, 0.1, 0.2, writes feature plots as SVG and prints the angular gaps between neighbours.

Options:
  --steps N         training steps per setting (default 1000)
  --backend NAME    cpu, wasm or webgpu (default: webgpu on a hardware GPU, else wasm)
  --out DIR         output folder for the SVGs (default out/toy)
  --per-class N     samples per identity (default 32)
  --scale S         CosFace scale s (default 16)
  --lr LR           Adam learning rate (default 0.01)
  --seed N          seed of data and initial parameters (default 1)
  --quiet           print nothing but errors
  -h, --help        show this help`;

/** One trained setting of the experiment. */
export interface ToySetting {
  /** Short name, also the SVG file stem: `softmax`, `cosface_m0.1`, ... */
  name: string;
  /** The loss. */
  spec: ToyLossSpec;
}

/** Options of {@link runToyMargins}. */
export interface ToyMarginOptions {
  /** Training steps per setting (default 1000). */
  steps?: number;
  /** Samples per identity (default 32). */
  perClass?: number;
  /** CosFace scale s (default 16). */
  scale?: number;
  /** Adam learning rate (default 0.01). */
  lr?: number;
  /** Seed of the data and the initial parameters (default 1). */
  seed?: number;
  /** CosFace margins (default [0, 0.1, 0.2]); plain softmax is always trained first. */
  margins?: number[];
}

/** The outcome of one setting. */
export interface ToySettingResult extends ToySetting {
  /** Loss of the first and the last step. */
  firstLoss: number;
  /** Loss of the last step. */
  lastLoss: number;
  /** Features `[n, 2]` after training, row-major. */
  features: Float32Array;
  /** Class weights `[classes, 2]` after training, row-major. */
  weights: Float32Array;
  /** Labels of the features. */
  labels: Int32Array;
  /** Angular gaps between neighbouring classes (radians). */
  gaps: GapReport;
  /** Wall time of the training (ms). */
  ms: number;
}

/**
 * The settings of the experiment: softmax, then CosFace at each margin.
 *
 * @example
 * ```ts
 * import { toySettings } from "./toy_margin_2d.ts";
 * toySettings({ margins: [0, 0.2] }).map((s) => s.name); // ["softmax", "cosface_m0", "cosface_m0.2"]
 * ```
 */
export function toySettings(options: ToyMarginOptions = {}): ToySetting[] {
  const s = options.scale ?? 16;
  return [
    { name: "softmax", spec: { kind: "softmax", s, m: 0 } },
    ...(options.margins ?? [0, 0.1, 0.2]).map((m): ToySetting => ({
      name: `cosface_m${m}`,
      spec: { kind: "cosface", s, m },
    })),
  ];
}

function positiveInt(value: number, what: string): number {
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`Invalid ${what} ${value}: expected a positive integer`);
  }
  return value;
}

/**
 * Trains every setting of {@link toySettings} on the current backend from the same data and
 * initial parameters, and measures the angular gaps of the trained features.
 *
 * @example
 * ```ts
 * import { runToyMargins } from "./toy_margin_2d.ts";
 * const r = await runToyMargins({ steps: 2, perClass: 2, margins: [0.1] });
 * r.map((x) => x.name); // ["softmax", "cosface_m0.1"]
 * ```
 */
export async function runToyMargins(
  options: ToyMarginOptions = {},
): Promise<ToySettingResult[]> {
  const steps = positiveInt(options.steps ?? 1000, "step count");
  const perClass = positiveInt(options.perClass ?? 32, "samples per class");
  const seed = options.seed ?? 1;
  const data = makeToyData({ perClass, seed });
  const hyper = { lr: cg.scalar(options.lr ?? 0.01) };
  const results: ToySettingResult[] = [];
  for (const setting of toySettings(options)) {
    const step = makeToyStep(setting.spec);
    let state: ToyState = initToyState({ seed }, steps);
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) state = step(state, data.batch, hyper);
    const losses = await state.lossLog.data() as Float32Array;
    const features = await toyFeaturesOf(state, data.batch.x);
    const weights = await state.params.classW.data() as Float32Array;
    const ms = performance.now() - t0;
    results.push({
      ...setting,
      firstLoss: losses[0],
      lastLoss: losses[steps - 1],
      features,
      weights: Float32Array.from(weights),
      labels: data.labels,
      gaps: angularGaps(features, data.labels, data.classes),
      ms,
    });
  }
  return results;
}

async function toyFeaturesOf(state: ToyState, x: cg.Tensor): Promise<Float32Array> {
  return Float32Array.from(await toyFeatures(state.params, x).data() as Float32Array);
}

/**
 * Row-major `[n, 2]` points scaled to unit length (zero rows stay zero).
 *
 * @example
 * ```ts
 * import { normalizeRows2d } from "./toy_margin_2d.ts";
 * normalizeRows2d(new Float32Array([3, 4, 0, 0])); // Float32Array [0.6, 0.8, 0, 0]
 * ```
 */
export function normalizeRows2d(points: Float32Array): Float32Array {
  const out = new Float32Array(points.length);
  for (let i = 0; i < points.length; i += 2) {
    const r = Math.hypot(points[i], points[i + 1]);
    if (r > 0) {
      out[i] = points[i] / r;
      out[i + 1] = points[i + 1] / r;
    }
  }
  return out;
}

/**
 * Scales the unit vectors of `points` by radii spread evenly over [0.92, 1.08] (angles kept), so
 * a tight class does not hide under the marker where its weight ray crosses the unit circle.
 */
function jitterRadius(points: Float32Array): Float32Array {
  const n = points.length / 2;
  return points.map((v, i) => v * (0.92 + 0.16 * (((i >> 1) * 7) % n) / Math.max(1, n - 1)));
}

/**
 * The two pictures of one trained setting: features in Euclidean space and on the unit circle,
 * with the class weight directions as rays.
 *
 * @example
 * ```ts
 * import { settingSvgs } from "./toy_margin_2d.ts";
 * const f = new Float32Array([1, 0.1, -0.5, 0.9]);
 * const svgs = settingSvgs({ name: "softmax", features: f, weights: f, labels: new Int32Array([0, 1]) });
 * svgs.angular.startsWith("<svg"); // true
 * ```
 */
export function settingSvgs(
  r: Pick<ToySettingResult, "name" | "features" | "weights" | "labels">,
): { euclidean: string; angular: string } {
  const classNames = Array.from({ length: r.weights.length / 2 }, (_, c) => `id ${c}`);
  const rays = normalizeRows2d(r.weights);
  return {
    euclidean: scatterSvg({
      points: r.features,
      labels: r.labels,
      rays,
      classNames,
      title: `${r.name}: features in Euclidean space`,
    }),
    angular: scatterSvg({
      points: jitterRadius(normalizeRows2d(r.features)),
      labels: r.labels,
      rays,
      unitCircle: true,
      classNames,
      title: `${r.name}: normalized features (radius jittered ±8% to show them)`,
    }),
  };
}

const DEG = 180 / Math.PI;

/**
 * The printed table: per setting, the min and mean angular gap between neighbouring classes
 * and the mean angular width of a class (degrees), and the losses.
 *
 * @example
 * ```ts
 * import { gapTable } from "./toy_margin_2d.ts";
 * const gaps = { arcs: [], gaps: [], min: 0.1, mean: 0.2, meanWidth: 0.3 };
 * gapTable([{ name: "softmax", firstLoss: 2, lastLoss: 1, gaps, ms: 5 }]).includes("softmax"); // true
 * ```
 */
export function gapTable(
  results: Pick<ToySettingResult, "name" | "firstLoss" | "lastLoss" | "gaps" | "ms">[],
): string {
  const head = ["setting", "min gap°", "mean gap°", "class width°", "loss 1st", "loss last", "s"];
  const rows = results.map((r) => [
    r.name,
    (r.gaps.min * DEG).toFixed(1),
    (r.gaps.mean * DEG).toFixed(1),
    (r.gaps.meanWidth * DEG).toFixed(1),
    r.firstLoss.toFixed(3),
    r.lastLoss.toFixed(3),
    (r.ms / 1000).toFixed(1),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join("  ");
  return [line(head), ...rows.map(line)].join("\n");
}

async function chooseBackend(name: "cpu" | "wasm" | "webgpu" | undefined): Promise<string> {
  if (name === undefined) return (await cg.initDefaultBackend()).name;
  if (name === "cpu" || name === "wasm") return (await cg.setBackend(name)).name;
  return (await cg.initWebGpu()).name;
}

/**
 * The command: parses `args`, trains, writes the SVGs and prints the gap table.
 *
 * @example
 * ```ts ignore
 * import { main } from "./toy_margin_2d.ts";
 * await main(["--steps", "50", "--backend", "cpu"]);
 * ```
 */
export async function main(args: string[]): Promise<ToySettingResult[]> {
  const { values } = parseCli(args, {
    steps: { type: "string" },
    backend: { type: "string" },
    out: { type: "string", default: "out/toy" },
    "per-class": { type: "string" },
    scale: { type: "string" },
    lr: { type: "string" },
    seed: { type: "string" },
    quiet: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return [];
  }
  const log = values.quiet ? () => {} : console.log;
  const options: ToyMarginOptions = {
    steps: intOption("steps", values.steps, { min: 1 }),
    perClass: intOption("per-class", values["per-class"], { min: 1 }),
    scale: numberOption("scale", values.scale, { above: 0 }),
    lr: numberOption("lr", values.lr, { above: 0 }),
    seed: intOption("seed", values.seed, { min: 0, max: 2 ** 32 - 1 }),
  };
  if (values.out === "") throw new UsageError(`--out expects a folder path, got ""`);
  const backend = await chooseBackend(
    choiceOption("backend", values.backend, ["cpu", "wasm", "webgpu"]),
  );
  const description = backend === "webgpu"
    ? ` (${(cg.getBackend() as unknown as { description?: string }).description ?? "?"})`
    : "";
  log(`backend ${backend}${description}, ${options.steps ?? 1000} steps per setting`);
  const results = await runToyMargins(options);
  const out = values.out;
  await Deno.mkdir(out, { recursive: true });
  for (const r of results) {
    const svgs = settingSvgs(r);
    await Deno.writeTextFile(`${out}/${r.name}_euclidean.svg`, svgs.euclidean);
    await Deno.writeTextFile(`${out}/${r.name}_angular.svg`, svgs.angular);
  }
  log(gapTable(results));
  log(`gaps: empty arc between neighbouring classes' angular extents (negative: overlap)`);
  log(`SVGs in ${out}/ (<setting>_euclidean.svg, <setting>_angular.svg)`);
  return results;
}

if (import.meta.main) await runMain(main, Deno.args);
