/**
 * Image decoding (PNG, JPEG) to 8-bit RGB, resizing, cropping, and the CosFace preprocessing
 * (pixels mapped to (p - 127.5) / 128, optional horizontal mirror) into CHW float arrays.
 *
 * Images are plain typed arrays so the data readers need nothing from the tensor library.
 *
 * @module
 */

import { decode as decodePng } from "fast-png";
import jpeg from "jpeg-js";

/** An 8-bit RGB image stored row-major as height x width x 3 (HWC). */
export interface RgbImage {
  /** Width in pixels. */
  readonly width: number;
  /** Height in pixels. */
  readonly height: number;
  /** Always 3: red, green, blue. */
  readonly channels: 3;
  /** `height * width * 3` bytes, pixel (y, x) channel c at `(y * width + x) * 3 + c`. */
  readonly data: Uint8Array;
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_MAGIC = [0xff, 0xd8, 0xff];
const PNG_MAGIC_BYTES = Uint8Array.from(PNG_MAGIC);

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  if (bytes.length < magic.length) return false;
  return magic.every((b, i) => bytes[i] === b);
}

/**
 * The bytes of an image are not a decodable PNG or JPEG (unknown format, truncated or corrupt
 * data). The message names the path and the reason. Only this error marks an image as
 * unreadable; I/O and permission errors are not decode errors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeImage, ImageDecodeError } from "./image.ts";
 * assert.throws(() => decodeImage(new Uint8Array([1, 2, 3]), "x.png"), ImageDecodeError);
 * ```
 */
export class ImageDecodeError extends TypeError {
  /** Creates the error with `message` (path and reason). */
  constructor(message: string) {
    super(message);
    this.name = "ImageDecodeError";
  }
}

/** The reason in an error's message, never empty. */
function reason(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return m.trim() === "" ? `corrupt data (${e instanceof Error ? e.name : typeof e})` : m;
}

/**
 * Why a PNG stream is truncated, from its chunk framing alone (signature, then length, type,
 * data and CRC per chunk up to IEND), or undefined when the framing is whole.
 */
function pngTruncation(bytes: Uint8Array): string | undefined {
  const n = bytes.length;
  if (n < PNG_MAGIC.length) return `truncated: ${n} bytes, shorter than the 8-byte PNG signature`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, n);
  let p = PNG_MAGIC.length;
  while (p + 8 <= n) {
    const length = view.getUint32(p);
    const type = String.fromCharCode(...bytes.subarray(p + 4, p + 8));
    const end = p + 12 + length;
    if (end > n) {
      return `truncated: the ${type} chunk at byte ${p} needs ${length + 12} bytes, ` +
        `the file ends after ${n - p}`;
    }
    if (type === "IEND") return undefined;
    p = end;
  }
  return `truncated: the file ends at byte ${n}, ` +
    (p < n ? "inside a chunk header" : "before the IEND chunk");
}

function where(path?: string): string {
  return path === undefined ? "image data" : path;
}

function hexHead(bytes: Uint8Array): string {
  const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0"));
  return head.length === 0 ? "(empty)" : head.join(" ");
}

/**
 * Decodes PNG or JPEG bytes (detected by their magic bytes) into an 8-bit RGB image.
 *
 * PNG: gray, gray + alpha, RGB, RGBA, palette (with or without transparency), bit depths 1 to 16.
 * 16-bit samples are rounded to 8 bits (`round(v / 257)`), gray is replicated to three channels,
 * alpha is dropped (as Pillow's `convert("RGB")` does). JPEG: baseline and progressive, gray,
 * YCbCr, CMYK (through jpeg-js).
 *
 * @param bytes The encoded file contents.
 * @param path Named in error messages; optional.
 * @returns The decoded image, `channels` 3, HWC layout.
 * @throws {TypeError} When the data is neither PNG nor JPEG, or is corrupt or truncated.
 *
 * @example Decode a PNG written with fast-png
 * ```ts
 * import { encode } from "fast-png";
 * import assert from "node:assert/strict";
 * import { decodeImage } from "./image.ts";
 * const png = encode({ width: 2, height: 1, data: new Uint8Array([0, 128, 255, 10, 20, 30]), channels: 3 });
 * const img = decodeImage(png);
 * assert.ok(img.width === 2 && img.height === 1 && img.data[2] === 255);
 * ```
 */
export function decodeImage(bytes: Uint8Array, path?: string): RgbImage {
  if (startsWith(bytes, PNG_MAGIC)) return decodePngRgb(bytes, path);
  if (bytes.length > 0 && startsWith(PNG_MAGIC_BYTES, Array.from(bytes))) {
    throw new ImageDecodeError(`Cannot decode PNG ${where(path)}: ${pngTruncation(bytes)}`);
  }
  if (startsWith(bytes, JPEG_MAGIC)) return decodeJpegRgb(bytes, path);
  throw new ImageDecodeError(
    `Cannot decode ${where(path)}: first bytes ${hexHead(bytes)} are neither PNG nor JPEG`,
  );
}

function decodeJpegRgb(bytes: Uint8Array, path?: string): RgbImage {
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: false });
  } catch (e) {
    throw new ImageDecodeError(`Cannot decode JPEG ${where(path)}: ${reason(e)}`);
  }
  const { width, height, data } = decoded;
  if (!(width > 0 && height > 0) || data.length !== width * height * 3) {
    throw new ImageDecodeError(
      `Cannot decode JPEG ${
        where(path)
      }: decoder returned ${width}x${height} with ${data.length} bytes`,
    );
  }
  return { width, height, channels: 3, data };
}

function decodePngRgb(bytes: Uint8Array, path?: string): RgbImage {
  const truncated = pngTruncation(bytes);
  if (truncated !== undefined) {
    throw new ImageDecodeError(`Cannot decode PNG ${where(path)}: ${truncated}`);
  }
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(bytes, { checkCrc: true });
  } catch (e) {
    throw new ImageDecodeError(`Cannot decode PNG ${where(path)}: ${reason(e)}`);
  }
  const { width, height, depth, channels, palette } = png;
  const src = png.data;
  if (!(width > 0 && height > 0)) {
    throw new ImageDecodeError(`Cannot decode PNG ${where(path)}: size ${width}x${height}`);
  }
  const rowSamples = width * channels;
  // Packed depths (1, 2, 4) keep each row padded to a whole byte, as in the PNG stream.
  const rowBytes = depth < 8 ? Math.ceil((rowSamples * depth) / 8) : rowSamples;
  if (src.length < rowBytes * height) {
    throw new ImageDecodeError(
      `Cannot decode PNG ${where(path)}: ${src.length} samples, expected ${rowBytes * height}`,
    );
  }
  const sample = (y: number, i: number): number => {
    if (depth >= 8) return src[y * rowSamples + i];
    const bit = i * depth;
    const byte = src[y * rowBytes + (bit >> 3)];
    return (byte >> (8 - depth - (bit & 7))) & ((1 << depth) - 1);
  };
  const to8 = depth === 16
    ? (v: number) => Math.round(v / 257)
    : depth === 8
    ? (v: number) => v
    : (v: number) => Math.round((v * 255) / ((1 << depth) - 1));
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 3;
      if (palette !== undefined && channels === 1) {
        const entry = palette[sample(y, x)];
        if (entry === undefined) {
          throw new ImageDecodeError(
            `Cannot decode PNG ${where(path)}: palette index ${sample(y, x)} at (${x}, ${y}) ` +
              `is outside the ${palette.length}-entry palette`,
          );
        }
        out[o] = entry[0];
        out[o + 1] = entry[1];
        out[o + 2] = entry[2];
      } else if (channels <= 2) {
        const g = to8(sample(y, x * channels));
        out[o] = g;
        out[o + 1] = g;
        out[o + 2] = g;
      } else if (channels === 3 || channels === 4) {
        out[o] = to8(sample(y, x * channels));
        out[o + 1] = to8(sample(y, x * channels + 1));
        out[o + 2] = to8(sample(y, x * channels + 2));
      } else {
        throw new ImageDecodeError(`Cannot decode PNG ${where(path)}: ${channels} channels`);
      }
    }
  }
  return { width, height, channels: 3, data: out };
}

function checkImage(img: RgbImage, what: string): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${what}: image size ${width}x${height}, expected positive integers`);
  }
  if (img.channels !== 3 || data.length !== width * height * 3) {
    throw new RangeError(
      `${what}: image ${width}x${height} has ${data.length} bytes and channels ${img.channels}, ` +
        `expected ${width * height * 3} bytes and channels 3`,
    );
  }
}

function checkSize(width: number, height: number, what: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new RangeError(`${what}: target size ${width}x${height}, expected positive integers`);
  }
}

/**
 * Resizes an RGB image with bilinear interpolation, pixel centres aligned as in OpenCV's
 * `INTER_LINEAR` and PyTorch's `align_corners=False` (source x = (x + 0.5) * sw / dw - 0.5,
 * clamped to the border), rounding to the nearest byte. No antialiasing filter is applied.
 *
 * @param img The source image.
 * @param width Target width in pixels.
 * @param height Target height in pixels.
 * @returns A new image of the target size (a copy when the size is unchanged).
 * @throws {RangeError} When the target size is not a positive integer.
 *
 * @example Upscale a 1x2 gradient
 * ```ts
 * import assert from "node:assert/strict";
 * import { resizeBilinear } from "./image.ts";
 * const img = { width: 2, height: 1, channels: 3 as const, data: new Uint8Array([0, 0, 0, 200, 200, 200]) };
 * const big = resizeBilinear(img, 4, 1);
 * assert.ok(big.data[0] === 0 && big.data[3] === 50 && big.data[6] === 150 && big.data[9] === 200);
 * ```
 */
export function resizeBilinear(img: RgbImage, width: number, height: number): RgbImage {
  checkImage(img, "resizeBilinear()");
  checkSize(width, height, "resizeBilinear()");
  const { width: sw, height: sh, data: src } = img;
  if (sw === width && sh === height) return { width, height, channels: 3, data: src.slice() };
  const out = new Uint8Array(width * height * 3);
  const sx = sw / width;
  const sy = sh / height;
  const x0s = new Int32Array(width);
  const x1s = new Int32Array(width);
  const fxs = new Float64Array(width);
  for (let x = 0; x < width; x++) {
    const fx = Math.min(Math.max((x + 0.5) * sx - 0.5, 0), sw - 1);
    x0s[x] = Math.floor(fx);
    x1s[x] = Math.min(x0s[x] + 1, sw - 1);
    fxs[x] = fx - x0s[x];
  }
  for (let y = 0; y < height; y++) {
    const fy = Math.min(Math.max((y + 0.5) * sy - 0.5, 0), sh - 1);
    const y0 = Math.floor(fy);
    const y1 = Math.min(y0 + 1, sh - 1);
    const wy = fy - y0;
    const r0 = y0 * sw * 3;
    const r1 = y1 * sw * 3;
    for (let x = 0; x < width; x++) {
      const a = x0s[x] * 3;
      const b = x1s[x] * 3;
      const wx = fxs[x];
      const o = (y * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        const top = src[r0 + a + c] + (src[r0 + b + c] - src[r0 + a + c]) * wx;
        const bot = src[r1 + a + c] + (src[r1 + b + c] - src[r1 + a + c]) * wx;
        out[o + c] = Math.round(top + (bot - top) * wy);
      }
    }
  }
  return { width, height, channels: 3, data: out };
}

/**
 * Cuts the central `width` x `height` region out of an image. When the margin is odd, the
 * extra pixel is left on the right / bottom (offsets `floor((W - width) / 2)`).
 *
 * @param img The source image.
 * @param width Crop width, at most the image width.
 * @param height Crop height, at most the image height.
 * @returns A new image of the crop size.
 * @throws {RangeError} When the crop is larger than the image or not a positive integer size.
 *
 * @example Crop the middle pixel of a 3x1 image
 * ```ts
 * import assert from "node:assert/strict";
 * import { centerCrop } from "./image.ts";
 * const img = { width: 3, height: 1, channels: 3 as const, data: new Uint8Array([1, 1, 1, 2, 2, 2, 3, 3, 3]) };
 * assert.ok(centerCrop(img, 1, 1).data[0] === 2);
 * ```
 */
export function centerCrop(img: RgbImage, width: number, height: number): RgbImage {
  checkImage(img, "centerCrop()");
  checkSize(width, height, "centerCrop()");
  if (width > img.width || height > img.height) {
    throw new RangeError(
      `centerCrop(): crop ${width}x${height} is larger than the image ${img.width}x${img.height}`,
    );
  }
  const left = Math.floor((img.width - width) / 2);
  const top = Math.floor((img.height - height) / 2);
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const start = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(start, start + width * 3), y * width * 3);
  }
  return { width, height, channels: 3, data: out };
}

/** Options of {@linkcode toCHW}. */
export interface ToCHWOptions {
  /** Mirror the image horizontally (the CosFace training augmentation). Default false. */
  readonly flip?: boolean;
}

/**
 * Converts an RGB image to a float32 array of shape [3, height, width] (channel-major, CHW)
 * with each pixel mapped to `(p - 127.5) / 128`, the CosFace paper's preprocessing
 * (range [-0.99609375, 0.99609375]).
 *
 * @param img The source image.
 * @param options `flip`: mirror horizontally.
 * @returns `3 * height * width` floats, element (c, y, x) at `(c * height + y) * width + x`.
 *
 * @example Map one white and one black pixel
 * ```ts
 * import assert from "node:assert/strict";
 * import { toCHW } from "./image.ts";
 * const img = { width: 2, height: 1, channels: 3 as const, data: new Uint8Array([255, 255, 255, 0, 0, 0]) };
 * const chw = toCHW(img, { flip: true });
 * assert.ok(chw[0] === -127.5 / 128 && chw[1] === 127.5 / 128);
 * ```
 */
export function toCHW(img: RgbImage, options: ToCHWOptions = {}): Float32Array {
  checkImage(img, "toCHW()");
  const { width, height, data } = img;
  const flip = options.flip ?? false;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const sx = flip ? width - 1 - x : x;
      const s = (y * width + sx) * 3;
      const o = y * width + x;
      out[o] = (data[s] - 127.5) / 128;
      out[plane + o] = (data[s + 1] - 127.5) / 128;
      out[2 * plane + o] = (data[s + 2] - 127.5) / 128;
    }
  }
  return out;
}
