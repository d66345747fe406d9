/**
 * The seeded inputs and workload shapes of bench/WORKLOADS.md, so that every framework
 * benchmarked side by side sees exactly the same numbers. bench/_inputs.py is the Python twin.
 *
 * @module
 */

/**
 * murmur3's 32-bit finaliser, on unsigned 32-bit integers.
 *
 * @example
 * ```ts
 * import { fmix32 } from "./_inputs.ts";
 * fmix32(0); // 0
 * ```
 */
export function fmix32(h: number): number {
  h = h >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The per-seed key: `fmix32(seed * 0x9E3779B9 mod 2^32)`.
 *
 * @example
 * ```ts
 * import { seedKey } from "./_inputs.ts";
 * seedKey(0); // 0
 * ```
 */
export function seedKey(seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
    throw new RangeError(`Seed ${seed} is not an integer in [0, 2^32)`);
  }
  return fmix32(Math.imul(seed >>> 0, 0x9e3779b9));
}

function checkCount(count: number): void {
  if (!Number.isInteger(count) || count < 0) {
    throw new RangeError(`Count ${count} is not a non-negative integer`);
  }
}

/**
 * `count` seeded float32 values uniform in [-scale, scale), element i from
 * `h = fmix32(key + i)` as `(2 * (h >>> 8) / 2^24 - 1) * scale`.
 *
 * @example
 * ```ts
 * import { seededValues } from "./_inputs.ts";
 * const a = seededValues(1, 4, 1);
 * a.length; // 4
 * ```
 */
export function seededValues(seed: number, count: number, scale = 1): Float32Array<ArrayBuffer> {
  checkCount(count);
  const key = seedKey(seed);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const h = fmix32((key + i) >>> 0);
    out[i] = (2 * (h >>> 8) / 16777216 - 1) * scale;
  }
  return out;
}

/**
 * `count` seeded labels in [0, classes): element i is `fmix32(key + i) mod classes`.
 *
 * @example
 * ```ts
 * import { seededLabels } from "./_inputs.ts";
 * const y = seededLabels(23, 3, 10);
 * y.every((v) => v >= 0 && v < 10); // true
 * ```
 */
export function seededLabels(
  seed: number,
  count: number,
  classes: number,
): Int32Array<ArrayBuffer> {
  checkCount(count);
  if (!Number.isInteger(classes) || classes < 1) {
    throw new RangeError(`Classes ${classes} is not a positive integer`);
  }
  const key = seedKey(seed);
  const out = new Int32Array(count);
  for (let i = 0; i < count; i++) out[i] = fmix32((key + i) >>> 0) % classes;
  return out;
}

/** One seeded input tensor of a workload. */
export type InputSpec = {
  /** Seed of the hash. */
  seed: number;
  /** Shape, row-major. */
  shape: readonly number[];
  /** Values lie in [-scale, scale); absent for labels. */
  scale?: number;
  /** Number of classes; present only for labels. */
  classes?: number;
};

/** Identifier of a standard workload. */
export type WorkloadId = "M1" | "M4" | "C1" | "L1" | "T1" | "T2";

/** A standard workload of WORKLOADS.md, as data. */
export type Workload = {
  /** Identifier (M1, ...). */
  id: WorkloadId;
  /** What it computes. */
  what: string;
  /** Only meaningful on a GPU. */
  gpuOnly: boolean;
  /** Seeded inputs by name. */
  inputs: Record<string, InputSpec>;
  /** Extra numeric parameters (s, m, batch, lr, ...). */
  params: Record<string, number>;
};

/** The T1/T2 network: four stages of widths 32, 64, 128, 256, then a 128-wide embedding. */
export const NETWORK = {
  stageWidths: [32, 64, 128, 256] as const,
  inChannels: 3,
  embedding: 128,
  s: 64,
  m: 0.35,
  lr: 0.1,
  momentum: 0.9,
  weightDecay: 5e-4,
  bnEps: 1e-5,
  prelu0: 0.25,
};

/** The standard workloads with their seeds, shapes and scales. */
export const WORKLOADS: Readonly<Record<WorkloadId, Workload>> = {
  M1: {
    id: "M1",
    what: "matmul 1024x1024 @ 1024x1024",
    gpuOnly: false,
    inputs: {
      a: { seed: 1, shape: [1024, 1024], scale: 1 },
      b: { seed: 2, shape: [1024, 1024], scale: 1 },
    },
    params: { n: 1024 },
  },
  M4: {
    id: "M4",
    what: "matmul 4096x4096 @ 4096x4096",
    gpuOnly: true,
    inputs: {
      a: { seed: 1, shape: [4096, 4096], scale: 1 },
      b: { seed: 2, shape: [4096, 4096], scale: 1 },
    },
    params: { n: 4096 },
  },
  C1: {
    id: "C1",
    what: "conv2d 3x3 s1 p1 NCHW, 16x64x56x56 -> 64 channels",
    gpuOnly: false,
    inputs: {
      x: { seed: 11, shape: [16, 64, 56, 56], scale: 1 / 24 },
      w: { seed: 12, shape: [64, 64, 3, 3], scale: 1 / 24 },
      dy: { seed: 13, shape: [16, 64, 56, 56], scale: 1 },
    },
    params: { stride: 1, pad: 1 },
  },
  L1: {
    id: "L1",
    what: "CosFace loss fwd+bwd, features 256x512, class weights 10000x512",
    gpuOnly: false,
    inputs: {
      features: { seed: 21, shape: [256, 512], scale: 1 },
      weights: { seed: 22, shape: [10000, 512], scale: 1 },
      labels: { seed: 23, shape: [256], classes: 10000 },
    },
    // expectedLoss from WORKLOADS.md; the gradient norms are PyTorch float64 values.
    params: {
      s: 64,
      m: 0.35,
      expectedLoss: 35.8995,
      gradFeaturesNorm: 0.3113802,
      gradWeightsNorm: 0.3118896,
    },
  },
  // WORKLOADS.md fixes no seeds for T1/T2: images 31 / 41, labels 32 / 42, and the network's
  // parameters seeds 100 + k (networkParams) are this file's choice, shared by every peer.
  T1: {
    id: "T1",
    what: "SGD step, CosFace head, 3x64x64, batch 128, 1000 classes",
    gpuOnly: false,
    inputs: {
      images: { seed: 31, shape: [128, 3, 64, 64], scale: 1 },
      labels: { seed: 32, shape: [128], classes: 1000 },
    },
    params: { batch: 128, size: 64, classes: 1000 },
  },
  T2: {
    id: "T2",
    what: "SGD step, CosFace head, 3x112x112, batch 256, 10000 classes",
    gpuOnly: true,
    inputs: {
      images: { seed: 41, shape: [256, 3, 112, 112], scale: 1 },
      labels: { seed: 42, shape: [256], classes: 10000 },
    },
    params: { batch: 256, size: 112, classes: 10000 },
  },
};

/**
 * Number of elements of a shape.
 *
 * @example
 * ```ts
 * import { sizeOf } from "./_inputs.ts";
 * sizeOf([2, 3]); // 6
 * ```
 */
export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * The seeded data of one input spec: Float32Array for values, Int32Array for labels.
 *
 * @example
 * ```ts
 * import { inputData, WORKLOADS } from "./_inputs.ts";
 * inputData(WORKLOADS.L1.inputs.labels).length; // 256
 * ```
 */
export function inputData(spec: InputSpec): Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> {
  const n = sizeOf(spec.shape);
  if (spec.classes !== undefined) return seededLabels(spec.seed, n, spec.classes);
  return seededValues(spec.seed, n, spec.scale ?? 1);
}

/**
 * Deterministic parameters of the T1/T2 network (He-uniform-like scales from the seeded
 * hash, seeds 100 + k), in the layout every peer uses: conv weights OIHW, linear [in, out],
 * class weights [classes, embedding] (one row per class).
 *
 * @example
 * ```ts
 * import { networkParams } from "./_inputs.ts";
 * const p = networkParams({ size: 16, classes: 10 });
 * p.convs.length; // 8
 * ```
 */
export function networkParams(
  opts: { size: number; classes: number },
): {
  convs: { shape: [number, number, number, number]; data: Float32Array }[];
  linear: { shape: [number, number]; data: Float32Array };
  classWeights: { shape: [number, number]; data: Float32Array };
} {
  if (opts.size % 16 !== 0) {
    throw new RangeError(`Image size ${opts.size} is not a multiple of 16`);
  }
  const convs: { shape: [number, number, number, number]; data: Float32Array }[] = [];
  let cin = NETWORK.inChannels;
  let seed = 100;
  for (const w of NETWORK.stageWidths) {
    for (const ci of [cin, w]) {
      const shape: [number, number, number, number] = [w, ci, 3, 3];
      convs.push({ shape, data: seededValues(seed++, sizeOf(shape), Math.sqrt(6 / (ci * 9))) });
    }
    cin = w;
  }
  const flat = cin * (opts.size / 16) ** 2;
  const linShape: [number, number] = [flat, NETWORK.embedding];
  const cwShape: [number, number] = [opts.classes, NETWORK.embedding];
  return {
    convs,
    linear: { shape: linShape, data: seededValues(seed++, sizeOf(linShape), Math.sqrt(6 / flat)) },
    classWeights: { shape: cwShape, data: seededValues(seed++, sizeOf(cwShape), 1) },
  };
}
