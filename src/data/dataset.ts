/**
 * One interface over the training sources (the embedded procedural faces, image folders,
 * insightface RecordIO), and a batch sampler with epoch shuffling and flip augmentation.
 *
 * A file that cannot be read or decoded is reported with its path, counted in `skipped`, and
 * replaced in its batch by the next readable image; it never stops a run.
 *
 * @module
 */
import { centerCrop, decodeImage, ImageDecodeError, resizeBilinear, toCHW } from "./image.ts";
import { scanImageFolder } from "./image_folder.ts";
import { openRecordIO } from "./recordio.ts";
import { syntheticFaces, type SyntheticFacesOptions } from "./synthetic.ts";

/** A labelled image collection at a fixed square size. */
export interface ImageDataset {
  /** What it is, for logs and reports. */
  readonly description: string;
  /** Number of classes (identities); labels are 0..classes-1. */
  readonly classes: number;
  /** Number of images. */
  readonly count: number;
  /** Side of the square images. */
  readonly size: number;
  /** Label of each image. */
  readonly labels: Int32Array;
  /** Unreadable images met so far: path and reason. */
  readonly skipped: { path: string; reason: string }[];
  /**
   * Writes images `indices` into `out` ([n, 3, size, size], (p - 127.5) / 128), mirrored
   * where `flips[i]` is 1; returns the labels actually used (a skipped image is replaced).
   */
  load(indices: Int32Array, out: Float32Array, flips?: Uint8Array): Promise<Int32Array>;
}

/**
 * The embedded procedural-faces dataset as an {@link ImageDataset}.
 *
 * @example
 * ```ts
 * import { syntheticDataset } from "./dataset.ts";
 * const ds = syntheticDataset({ identities: 10, imagesPerIdentity: 4, size: 32 });
 * ds.count; // 40
 * ```
 */
export function syntheticDataset(options: SyntheticFacesOptions): ImageDataset {
  const faces = syntheticFaces(options);
  const per = faces.imagesPerIdentity;
  const labels = Int32Array.from({ length: faces.count }, (_, i) => Math.floor(i / per));
  const plane = 3 * faces.size * faces.size;
  return {
    description:
      `procedural faces: ${faces.identities} identities x ${per} images, ${faces.size}px, ` +
      `difficulty ${faces.difficulty}, seed ${faces.seed}`,
    classes: faces.identities,
    count: faces.count,
    size: faces.size,
    labels,
    skipped: [],
    load(indices, out, flips) {
      indices.forEach((i, k) => {
        faces.image(Math.floor(i / per), i % per, {
          out: out.subarray(k * plane, (k + 1) * plane),
          flip: flips !== undefined && flips[k] === 1,
        });
      });
      return Promise.resolve(Int32Array.from(indices, (i) => labels[i]));
    },
  };
}

/**
 * Decodes an image file's bytes, centre-crops it to a square, resizes it to `size` and maps it
 * to CHW floats ((p - 127.5) / 128), mirrored when `flip`.
 *
 * @example
 * ```ts
 * import { prepareImage } from "./dataset.ts";
 * typeof prepareImage; // "function"
 * ```
 */
export function prepareImage(
  bytes: Uint8Array,
  path: string,
  size: number,
  flip = false,
): Float32Array {
  let img = decodeImage(bytes, path);
  const side = Math.min(img.width, img.height);
  if (img.width !== img.height) img = centerCrop(img, side, side);
  if (side !== size) img = resizeBilinear(img, size, size);
  return toCHW(img, { flip });
}

/**
 * Loads with replacement of undecodable images by the next decodable one: an image whose bytes
 * are not a PNG or JPEG ({@link ImageDecodeError}) is reported in `skipped`, warned about once
 * and replaced; any other error (a file that cannot be read, a corrupt RecordIO frame, a bug)
 * propagates, so nothing but a bad image is ever substituted.
 */
function loader(
  count: number,
  size: number,
  labels: Int32Array,
  skipped: { path: string; reason: string }[],
  read: (i: number) => Promise<{ bytes: Uint8Array; path: string }>,
): ImageDataset["load"] {
  const bad = new Set<number>();
  const plane = 3 * size * size;
  return async (indices, out, flips) => {
    const used = new Int32Array(indices.length);
    for (let k = 0; k < indices.length; k++) {
      for (let tries = 0, i = indices[k]; tries < count; tries++, i = (i + 1) % count) {
        if (bad.has(i)) continue;
        const item = await read(i);
        try {
          out.set(prepareImage(item.bytes, item.path, size, flips?.[k] === 1), k * plane);
          used[k] = labels[i];
          break;
        } catch (e) {
          if (!(e instanceof ImageDecodeError)) throw e;
          bad.add(i);
          skipped.push({ path: item.path, reason: e.message });
          console.warn(`skipped unreadable image ${item.path}: ${e.message}`);
          if (bad.size === count) {
            throw new RangeError(`Every image of the dataset is unreadable (last: ${e.message})`);
          }
        }
      }
    }
    return used;
  };
}

/**
 * An image folder in the CASIA-WebFace layout (`root/<identity>/<image>.png|jpg`), decoded
 * batch by batch, centre-cropped to a square and resized to `size`.
 *
 * @example
 * ```ts
 * import { imageFolderDataset } from "./dataset.ts";
 * // const ds = await imageFolderDataset("faces/", { size: 112 });
 * typeof imageFolderDataset; // "function"
 * ```
 */
export async function imageFolderDataset(
  root: string,
  options: { size: number },
): Promise<ImageDataset> {
  const index = await scanImageFolder(root);
  if (index.entries.length === 0) {
    throw new RangeError(
      `No images found under ${root} (expected root/<identity>/<image>.png|jpg)`,
    );
  }
  const labels = Int32Array.from(index.entries, (e) => e.label);
  const skipped: { path: string; reason: string }[] = [];
  return {
    description:
      `image folder ${root}: ${index.identities.length} identities, ${labels.length} images`,
    classes: index.identities.length,
    count: labels.length,
    size: options.size,
    labels,
    skipped,
    load: loader(labels.length, options.size, labels, skipped, async (i) => {
      const path = index.entries[i].path;
      return { bytes: await Deno.readFile(path), path };
    }),
  };
}

/**
 * insightface's packed training set (`train.rec` + `train.idx`).
 *
 * @example
 * ```ts
 * import { recordIODataset } from "./dataset.ts";
 * // const ds = await recordIODataset("faces_emore/train.rec", { size: 112 });
 * typeof recordIODataset; // "function"
 * ```
 */
export async function recordIODataset(
  recPath: string,
  options: { size: number; idxPath?: string },
): Promise<ImageDataset> {
  const rec = await openRecordIO(recPath, options.idxPath);
  const skipped: { path: string; reason: string }[] = [];
  return {
    description: `RecordIO ${recPath}: ${rec.numIdentities} identities, ${rec.numImages} images`,
    classes: rec.numIdentities,
    count: rec.numImages,
    size: options.size,
    labels: rec.labels,
    skipped,
    load: loader(rec.numImages, options.size, rec.labels, skipped, async (i) => {
      const r = await rec.read(i);
      return { bytes: r.image, path: `${recPath}#${r.key}` };
    }),
  };
}

/** Options of {@link batchSampler}. */
export interface BatchSamplerOptions {
  /** Images per batch. */
  batchSize: number;
  /** Seed of the shuffling and flips. */
  seed?: number;
  /** Mirror each image with probability 1/2 (default true). */
  flip?: boolean;
}

function hash(a: number, b: number): number {
  let h = (Math.imul(a ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(b + 0x27d4eb2f, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x2c1b3c6d);
  h ^= h >>> 12;
  return h >>> 0;
}

/**
 * Batch `i` of a shuffled pass over `dataset` (a new permutation each epoch), with random
 * horizontal flips: `{ images: [n, 3, S, S], labels }`. Deterministic in (seed, i).
 *
 * @example
 * ```ts
 * import { batchSampler, syntheticDataset } from "./dataset.ts";
 * const ds = syntheticDataset({ identities: 4, imagesPerIdentity: 4, size: 16 });
 * const batch = batchSampler(ds, { batchSize: 8 });
 * const b = await batch(0);
 * b.labels.length; // 8
 * ```
 */
export function batchSampler(
  dataset: ImageDataset,
  options: BatchSamplerOptions,
): (i: number) => Promise<{ images: Float32Array; labels: Int32Array }> {
  const { batchSize } = options;
  const seed = options.seed ?? 0;
  const n = dataset.count;
  let epoch = -1;
  let perm = new Int32Array(0);
  const permutation = (e: number) => {
    const p = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = hash(seed * 7919 + e, i) % (i + 1);
      [p[i], p[j]] = [p[j], p[i]];
    }
    return p;
  };
  return async (i) => {
    const idx = new Int32Array(batchSize);
    const flips = new Uint8Array(batchSize);
    for (let k = 0; k < batchSize; k++) {
      const global = i * batchSize + k;
      const e = Math.floor(global / n);
      if (e !== epoch) {
        epoch = e;
        perm = permutation(e);
      }
      idx[k] = perm[global % n];
      flips[k] = options.flip === false ? 0 : hash(seed + 1, global) & 1;
    }
    const images = new Float32Array(batchSize * 3 * dataset.size * dataset.size);
    const labels = await dataset.load(idx, images, flips);
    return { images, labels };
  };
}
