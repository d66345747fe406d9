/**
 * Image folders in the CASIA-WebFace layout, `root/<identity>/<image>.png|jpg|jpeg`: a
 * deterministic scan (identities and files sorted by UTF-16 code units, identity -> label
 * index) and a loader that decodes, resizes and preprocesses every image into one float array.
 *
 * A file that cannot be read or decoded never stops the load and is never dropped silently: it
 * is listed with its reason in `skipped`.
 *
 * @module
 */

import { centerCrop, decodeImage, resizeBilinear, type RgbImage, toCHW } from "./image.ts";

/** One image file of a folder. */
export interface ImageFolderEntry {
  /** Path of the file (`<root>/<identity>/<file>`). */
  readonly path: string;
  /** Identity directory name. */
  readonly identity: string;
  /** Index of the identity in the sorted identity list. */
  readonly label: number;
}

/** Something under the root that is not used, and why. */
export interface IgnoredPath {
  /** The path. */
  readonly path: string;
  /** Why it is not used. */
  readonly reason: string;
}

/** The result of {@linkcode scanImageFolder}. */
export interface ImageFolderIndex {
  /** The root directory. */
  readonly root: string;
  /** Identity directory names holding at least one image file, sorted; label = position. */
  readonly identities: string[];
  /** Image files, sorted by identity then file name. */
  readonly entries: ImageFolderEntry[];
  /** Files and directories that are not images of an identity (with the reason). */
  readonly ignored: IgnoredPath[];
}

const IMAGE_EXT = /\.(png|jpe?g)$/i;

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function rootPath(root: string | URL): string {
  const p = root instanceof URL ? decodeURIComponent(root.pathname) : root;
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}

async function kind(path: string, entry: Deno.DirEntry): Promise<"file" | "dir" | "other"> {
  if (entry.isFile) return "file";
  if (entry.isDirectory) return "dir";
  if (entry.isSymlink) {
    try {
      const info = await Deno.stat(path);
      return info.isFile ? "file" : info.isDirectory ? "dir" : "other";
    } catch {
      return "other";
    }
  }
  return "other";
}

/**
 * Lists the images of a `root/<identity>/<image>` folder (extensions `.png`, `.jpg`, `.jpeg`,
 * any case), following symbolic links. Identities are the sub-directories holding at least
 * one image file; identities and files are sorted by UTF-16 code units, so labels do not
 * depend on the file system or the locale. Needs `--allow-read`.
 *
 * @param root The dataset root directory.
 * @returns Identities, entries with labels, and what was ignored.
 * @throws {Deno.errors.NotFound} When `root` does not exist.
 *
 * @example Label the identities of a folder (defined here, run on a real folder)
 * ```ts
 * import { scanImageFolder } from "./image_folder.ts";
 * async function classCount(root: string): Promise<number> {
 *   return (await scanImageFolder(root)).identities.length;
 * }
 * ```
 */
export async function scanImageFolder(root: string | URL): Promise<ImageFolderIndex> {
  const base = rootPath(root);
  const ignored: IgnoredPath[] = [];
  const dirs: string[] = [];
  for await (const e of Deno.readDir(base)) {
    const path = `${base}/${e.name}`;
    const k = await kind(path, e);
    if (k === "dir") dirs.push(e.name);
    else ignored.push({ path, reason: "not an identity directory" });
  }
  dirs.sort(byCodeUnit);
  const identities: string[] = [];
  const entries: ImageFolderEntry[] = [];
  for (const dir of dirs) {
    const files: string[] = [];
    for await (const e of Deno.readDir(`${base}/${dir}`)) {
      const path = `${base}/${dir}/${e.name}`;
      const k = await kind(path, e);
      if (k === "file" && IMAGE_EXT.test(e.name)) files.push(e.name);
      else {
        ignored.push({
          path,
          reason: k === "file" ? "not a .png, .jpg or .jpeg file" : "not a file",
        });
      }
    }
    if (files.length === 0) {
      ignored.push({ path: `${base}/${dir}`, reason: "no image files" });
      continue;
    }
    files.sort(byCodeUnit);
    const label = identities.length;
    identities.push(dir);
    for (const f of files) entries.push({ path: `${base}/${dir}/${f}`, identity: dir, label });
  }
  ignored.sort((a, b) => byCodeUnit(a.path, b.path));
  return { root: base, identities, entries, ignored };
}

/** Options of {@linkcode loadImageFolder}. */
export interface LoadImageFolderOptions {
  /** Output size: `n` for n x n, or `[height, width]` (e.g. `[112, 96]` as in the paper). */
  readonly size: number | readonly [number, number];
  /**
   * Centre-crop each image to the output's aspect ratio before resizing (default false:
   * resize the whole image, stretching when the aspect ratios differ).
   */
  readonly crop?: boolean;
}

/** An image that was not loaded, and why. */
export interface SkippedImage {
  /** The file. */
  readonly path: string;
  /** The read or decode error. */
  readonly reason: string;
}

/** The result of {@linkcode loadImageFolder}. */
export interface ImageFolderData {
  /** Identity names; `labels` index into it (as in {@linkcode scanImageFolder}). */
  readonly identities: string[];
  /** Number of images loaded. */
  readonly count: number;
  /** Output height. */
  readonly height: number;
  /** Output width. */
  readonly width: number;
  /**
   * `count` images, shape [count, 3, height, width], pixels `(p - 127.5) / 128`: image i is
   * `images.subarray(i * 3 * height * width, (i + 1) * 3 * height * width)`.
   */
  readonly images: Float32Array;
  /** Label of each loaded image. */
  readonly labels: Int32Array;
  /** File of each loaded image. */
  readonly paths: string[];
  /** Images that could not be read or decoded, with the reason; they keep no slot. */
  readonly skipped: SkippedImage[];
  /** Paths under the root that are not images of an identity (from the scan). */
  readonly ignored: IgnoredPath[];
}

function cropToAspect(img: RgbImage, width: number, height: number): RgbImage {
  // Largest centred region with the target aspect ratio.
  if (img.width * height > width * img.height) {
    const w = Math.max(1, Math.round((img.height * width) / height));
    return w === img.width ? img : centerCrop(img, w, img.height);
  }
  const h = Math.max(1, Math.round((img.width * height) / width));
  return h === img.height ? img : centerCrop(img, img.width, h);
}

/**
 * Loads a `root/<identity>/<image>` folder: scans it ({@linkcode scanImageFolder}), decodes
 * each image, resizes it (bilinear, optionally after a centre crop to the output aspect ratio)
 * and maps it to CHW floats `(p - 127.5) / 128`, all in one array. A file that cannot be read or
 * decoded is listed in `skipped` with its reason and the load goes on; labels stay those of the
 * scan, so an identity whose images were all skipped keeps its label. Needs `--allow-read`.
 *
 * Memory is `count * 3 * height * width * 4` bytes: for large datasets, use
 * {@linkcode scanImageFolder} and decode per batch instead.
 *
 * @param root The dataset root directory.
 * @param options `size`, `crop`.
 * @returns The images, labels, paths and what was skipped.
 * @throws {RangeError} On a bad size or when the images do not fit in one array.
 *
 * @example Load a folder at 112 x 96 (defined here, run on a real folder)
 * ```ts
 * import { loadImageFolder } from "./image_folder.ts";
 * async function load(root: string) {
 *   const data = await loadImageFolder(root, { size: [112, 96] });
 *   for (const s of data.skipped) console.warn(`skipped ${s.path}: ${s.reason}`);
 *   return data;
 * }
 * ```
 */
export async function loadImageFolder(
  root: string | URL,
  options: LoadImageFolderOptions,
): Promise<ImageFolderData> {
  const [height, width] = typeof options.size === "number"
    ? [options.size, options.size]
    : options.size;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0) {
    throw new RangeError(
      `loadImageFolder(): size ${JSON.stringify(options.size)}, expected a positive integer ` +
        `or [height, width] of positive integers`,
    );
  }
  const index = await scanImageFolder(root);
  const per = 3 * height * width;
  const n = index.entries.length;
  let images: Float32Array;
  try {
    images = new Float32Array(n * per);
  } catch (e) {
    throw new RangeError(
      `loadImageFolder(): ${n} images of ${height}x${width} need ${(n * per * 4) / 2 ** 30} GiB ` +
        `in one array (${(e as Error).message}); use scanImageFolder() and decode per batch`,
    );
  }
  const labels = new Int32Array(n);
  const paths: string[] = [];
  const skipped: SkippedImage[] = [];
  let count = 0;
  for (const entry of index.entries) {
    let img: RgbImage;
    try {
      img = decodeImage(await Deno.readFile(entry.path), entry.path);
    } catch (e) {
      skipped.push({ path: entry.path, reason: (e as Error).message });
      continue;
    }
    if (options.crop) img = cropToAspect(img, width, height);
    images.set(toCHW(resizeBilinear(img, width, height)), count * per);
    labels[count] = entry.label;
    paths.push(entry.path);
    count++;
  }
  return {
    identities: index.identities,
    count,
    height,
    width,
    images: count === n ? images : images.subarray(0, count * per),
    labels: count === n ? labels : labels.slice(0, count),
    paths,
    skipped,
    ignored: index.ignored,
  };
}
