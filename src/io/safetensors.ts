/**
 * The safetensors checkpoint format (https://github.com/huggingface/safetensors), written
 * byte for byte as the reference implementation (and so Python's `safetensors`) writes it:
 *
 * - 8 bytes: header length N, unsigned 64-bit little endian;
 * - N bytes: UTF-8 JSON `{"__metadata__": {...}, name: {"dtype", "shape", "data_offsets"}}`,
 *   padded with spaces to a multiple of 8 bytes;
 * - the tensor data, contiguous, little endian, row major, offsets relative to its start.
 *
 * Tensors are laid out by descending dtype (F64, F32, I32), then by name (code point order),
 * exactly as the reference does. Metadata keys keep their insertion order (the reference keeps
 * them in a hash map, so its order varies from run to run).
 * @module
 */

import { basename, dirname, join } from "node:path";

/** Element types this module reads and writes. */
export type SafetensorsDtype = "float32" | "float64" | "int32";

/** One tensor: its dtype, shape and row-major data. */
export interface TensorRecord {
  /** Element type; must match the class of `data`. */
  dtype: SafetensorsDtype;
  /** Dimensions, non-negative integers (`[]` for a scalar). */
  shape: number[];
  /** Row-major elements; `data.length` is the product of `shape`. */
  data: Float32Array | Float64Array | Int32Array;
}

/** The tensors of a checkpoint, by name. */
export type TensorRecords = Record<string, TensorRecord>;

/** A decoded file: its tensors and its `__metadata__` (undefined when absent). */
export interface SafetensorsContents {
  /** Tensors by name (own properties, in file order). */
  tensors: TensorRecords;
  /** The free-form string map stored under `__metadata__`. */
  metadata: Record<string, string> | undefined;
}

interface DtypeInfo {
  file: string;
  bytes: number;
  /** Rank in the reference implementation's dtype enum, which orders tensors in the file. */
  order: number;
}

const DTYPES: Record<SafetensorsDtype, DtypeInfo> = {
  float64: { file: "F64", bytes: 8, order: 2 },
  float32: { file: "F32", bytes: 4, order: 1 },
  int32: { file: "I32", bytes: 4, order: 0 },
};

const FROM_FILE: Record<string, SafetensorsDtype> = {
  F64: "float64",
  F32: "float32",
  I32: "int32",
};

/** Dtypes of the format this module does not convert (named in errors, unlike unknown ones). */
const OTHER_FILE_DTYPES = new Set([
  "BOOL",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "I16",
  "U16",
  "F16",
  "BF16",
  "U32",
  "C64",
  "I64",
  "U64",
]);

/** The reference implementation refuses headers larger than this. */
const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * Serializes tensors (and an optional string map stored as `__metadata__`) to safetensors
 * bytes.
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./safetensors.ts";
 * const bytes = encodeSafetensors({ w: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) } });
 * const { tensors } = decodeSafetensors(bytes);
 * if (tensors.w.data[1] !== 2 || bytes.length % 8 !== 0) throw new Error("round trip failed");
 * ```
 */
export function encodeSafetensors(
  tensors: TensorRecords,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = Object.entries(tensors);
  for (const [name, t] of entries) checkRecord(name, t);
  entries.sort(([an, a], [bn, b]) =>
    DTYPES[b.dtype].order - DTYPES[a.dtype].order || compareCodePoints(an, bn)
  );
  // The JSON is assembled by hand: a JS object would move integer-like names ("0") first.
  const parts: string[] = [];
  if (metadata !== undefined) {
    checkMetadata(metadata);
    const pairs = Object.entries(metadata).map(([k, v]) =>
      `${JSON.stringify(k)}:${JSON.stringify(v)}`
    );
    parts.push(`"__metadata__":{${pairs.join(",")}}`);
  }
  let offset = 0;
  for (const [name, t] of entries) {
    const size = t.data.length * DTYPES[t.dtype].bytes;
    const info = {
      dtype: DTYPES[t.dtype].file,
      shape: t.shape,
      data_offsets: [offset, offset + size],
    };
    parts.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
    offset += size;
  }
  const json = new TextEncoder().encode(`{${parts.join(",")}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n + offset);
  const view = new DataView(out.buffer);
  view.setUint32(0, n, true); // n < 2^32: the upper 4 bytes stay 0
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + n);
  let at = 8 + n;
  for (const [, t] of entries) {
    writeLittleEndian(out, at, t);
    at += t.data.length * DTYPES[t.dtype].bytes;
  }
  return out;
}

/**
 * Parses safetensors bytes, validating the header as the reference implementation does:
 * known dtypes, sizes matching shape x dtype, offsets that tile the data section exactly
 * (no overlap, gap or trailing bytes). Tensor data is copied into fresh typed arrays.
 *
 * @example
 * ```ts
 * import { decodeSafetensors } from "./safetensors.ts";
 * const json = '{"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}    ';
 * const bytes = new Uint8Array(8 + json.length + 4);
 * bytes[0] = json.length;
 * bytes.set(new TextEncoder().encode(json), 8);
 * bytes[8 + json.length] = 42;
 * if (decodeSafetensors(bytes).tensors.x.data[0] !== 42) throw new Error("decode failed");
 * ```
 *
 * @param options `path`: the file the bytes came from, named at the start of every error
 * (`Invalid safetensors file out/a.safetensors: ...`).
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  options: { path?: string } = {},
): SafetensorsContents {
  if (options.path === undefined) return decodeBytes(bytes);
  try {
    return decodeBytes(bytes);
  } catch (e) {
    if (!(e instanceof Error)) throw e;
    const named = `Invalid safetensors file ${options.path}: ${e.message}`;
    throw e instanceof RangeError
      ? new RangeError(named, { cause: e })
      : new TypeError(named, { cause: e });
  }
}

function decodeBytes(bytes: Uint8Array): SafetensorsContents {
  if (bytes.length < 8) {
    throw new RangeError(`Invalid safetensors data of ${bytes.length} bytes: expected at least 8`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const high = view.getUint32(4, true);
  const n = high * 2 ** 32 + view.getUint32(0, true);
  if (n > MAX_HEADER_BYTES) {
    throw new RangeError(`Invalid header length ${n}: expected at most ${MAX_HEADER_BYTES} bytes`);
  }
  if (8 + n > bytes.length) {
    throw new RangeError(
      `Invalid header length ${n}: only ${bytes.length - 8} bytes follow the length field`,
    );
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(
      bytes.subarray(8, 8 + n),
    );
  } catch {
    throw new TypeError("Invalid safetensors header: expected UTF-8 text");
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new TypeError(`Invalid safetensors header: expected JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) {
    throw new TypeError(`Invalid safetensors header ${text.slice(0, 40)}: expected a JSON object`);
  }
  let metadata: Record<string, string> | undefined;
  const infos: {
    name: string;
    dtype: SafetensorsDtype;
    shape: number[];
    begin: number;
    end: number;
  }[] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === "__metadata__") {
      if (typeof value !== "object" || value === null || Array.isArray(value)) {
        throw new TypeError(`Invalid __metadata__ ${JSON.stringify(value)}: expected a string map`);
      }
      checkMetadata(value as Record<string, unknown>);
      metadata = Object.fromEntries(Object.entries(value as Record<string, string>));
      continue;
    }
    infos.push(parseInfo(name, value));
  }
  const dataLength = bytes.length - 8 - n;
  const ordered = [...infos].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expected = 0;
  let previous = "";
  for (const info of ordered) {
    if (info.begin < expected) {
      throw new RangeError(
        `Tensor "${info.name}" with data_offsets [${info.begin}, ${info.end}] overlaps tensor "${previous}" ending at ${expected}`,
      );
    }
    if (info.begin > expected) {
      throw new RangeError(
        `Tensor "${info.name}" starts at ${info.begin}: expected ${expected}, the end of the previous tensor (no gaps)`,
      );
    }
    if (info.end > dataLength) {
      throw new RangeError(
        `Tensor "${info.name}" ends at ${info.end}, beyond the ${dataLength}-byte data section`,
      );
    }
    expected = info.end;
    previous = info.name;
  }
  if (expected !== dataLength) {
    throw new RangeError(
      `Invalid data section of ${dataLength} bytes: the tensors cover ${expected} bytes`,
    );
  }
  const entries = infos.map((info): [string, TensorRecord] => [
    info.name,
    {
      dtype: info.dtype,
      shape: info.shape,
      data: readLittleEndian(bytes, 8 + n + info.begin, info),
    },
  ]);
  return { tensors: Object.fromEntries(entries), metadata };
}

/**
 * Writes bytes to `path` atomically: to a temporary file in the same directory, flushed to
 * disk, then renamed over `path`, so readers see the old file or the new one, never half.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./safetensors.ts";
 * // (Not called here: doc examples do not touch the file system.)
 * async function saveReport(path: string, text: string): Promise<void> {
 *   await writeFileAtomic(path, new TextEncoder().encode(text));
 * }
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  const tmp = join(dirname(path), `.${basename(path)}.${suffix}.tmp`);
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.syncData();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
}

/**
 * Encodes tensors as safetensors and writes them atomically to `path`.
 *
 * @example
 * ```ts
 * import { loadSafetensors, saveSafetensors } from "./safetensors.ts";
 * // (Not called here: doc examples do not touch the file system.)
 * async function checkpoint(path: string, weights: Float32Array, step: number) {
 *   const tensors = { w: { dtype: "float32" as const, shape: [weights.length], data: weights } };
 *   await saveSafetensors(path, tensors, { step: String(step) });
 *   const loaded = await loadSafetensors(path);
 *   return loaded.metadata?.step === String(step);
 * }
 * ```
 */
export async function saveSafetensors(
  path: string,
  tensors: TensorRecords,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

/**
 * Reads and decodes a safetensors file (see {@linkcode decodeSafetensors}).
 *
 * @example
 * ```ts
 * import { loadSafetensors } from "./safetensors.ts";
 * // (Not called here: doc examples do not touch the file system.)
 * async function embeddingWeights(path: string): Promise<Float32Array> {
 *   const { tensors } = await loadSafetensors(path);
 *   if (tensors.w?.dtype !== "float32") throw new TypeError(`No float32 tensor "w" in ${path}`);
 *   return tensors.w.data as Float32Array;
 * }
 * ```
 */
export async function loadSafetensors(path: string): Promise<SafetensorsContents> {
  return decodeSafetensors(await Deno.readFile(path), { path });
}

function checkRecord(name: string, t: TensorRecord): void {
  if (name === "__metadata__") {
    throw new TypeError(`Invalid tensor name "__metadata__": the name is reserved for metadata`);
  }
  if (typeof t !== "object" || t === null || !Object.hasOwn(DTYPES, t.dtype)) {
    throw new TypeError(
      `Invalid dtype ${String(t?.dtype)} of tensor "${name}": expected float32, float64 or int32`,
    );
  }
  const expectedClass = t.dtype === "float32"
    ? Float32Array
    : t.dtype === "float64"
    ? Float64Array
    : Int32Array;
  if (!(t.data instanceof expectedClass)) {
    throw new TypeError(
      `Invalid data of tensor "${name}": expected a ${expectedClass.name} for dtype ${t.dtype}`,
    );
  }
  const count = checkShape(name, t.shape);
  if (count !== t.data.length) {
    throw new RangeError(
      `Invalid data length ${t.data.length} of tensor "${name}": expected ${count} for shape [${t.shape}]`,
    );
  }
}

function checkShape(name: string, shape: unknown): number {
  if (!Array.isArray(shape)) {
    throw new TypeError(
      `Invalid shape ${JSON.stringify(shape)} of tensor "${name}": expected an array`,
    );
  }
  let count = 1;
  for (const s of shape) {
    if (!Number.isSafeInteger(s) || s < 0) {
      throw new RangeError(
        `Invalid shape [${shape}] of tensor "${name}": expected non-negative integers`,
      );
    }
    count *= s;
  }
  if (!Number.isSafeInteger(count)) {
    throw new RangeError(`Invalid shape [${shape}] of tensor "${name}": too many elements`);
  }
  return count;
}

function checkMetadata(metadata: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== "string") {
      throw new TypeError(
        `Invalid metadata value ${JSON.stringify(v)} for key "${k}": expected a string`,
      );
    }
  }
}

function parseInfo(
  name: string,
  value: unknown,
): { name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number } {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new TypeError(
      `Invalid entry ${JSON.stringify(value)} for tensor "${name}": expected an object`,
    );
  }
  const { dtype: fileDtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
  if (typeof fileDtype !== "string") {
    throw new TypeError(
      `Invalid dtype ${JSON.stringify(fileDtype)} of tensor "${name}": expected a string`,
    );
  }
  const dtype = Object.hasOwn(FROM_FILE, fileDtype) ? FROM_FILE[fileDtype] : undefined;
  if (dtype === undefined) {
    throw new TypeError(
      OTHER_FILE_DTYPES.has(fileDtype)
        ? `Unsupported dtype ${fileDtype} of tensor "${name}": expected F32, F64 or I32`
        : `Unknown dtype ${
          JSON.stringify(fileDtype)
        } of tensor "${name}": expected F32, F64 or I32`,
    );
  }
  const count = checkShape(name, shape);
  if (
    !Array.isArray(offsets) || offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]
  ) {
    throw new RangeError(
      `Invalid data_offsets ${
        JSON.stringify(offsets)
      } of tensor "${name}": expected [begin, end] with 0 <= begin <= end`,
    );
  }
  const [begin, end] = offsets as [number, number];
  const bytes = DTYPES[dtype].bytes;
  if (end - begin !== count * bytes) {
    throw new RangeError(
      `Invalid data_offsets [${begin}, ${end}] of tensor "${name}": ${
        end - begin
      } bytes, expected ${count * bytes} for shape [${shape as number[]}] of ${fileDtype}`,
    );
  }
  return { name, dtype, shape: [...(shape as number[])], begin, end };
}

function writeLittleEndian(out: Uint8Array, at: number, t: TensorRecord): void {
  const d = t.data;
  if (LITTLE_ENDIAN) {
    out.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength), at);
    return;
  }
  const view = new DataView(out.buffer, out.byteOffset + at, d.byteLength);
  for (let i = 0; i < d.length; i++) {
    if (t.dtype === "float64") view.setFloat64(8 * i, d[i], true);
    else if (t.dtype === "float32") view.setFloat32(4 * i, d[i], true);
    else view.setInt32(4 * i, d[i], true);
  }
}

function readLittleEndian(
  bytes: Uint8Array,
  at: number,
  info: { dtype: SafetensorsDtype; begin: number; end: number },
): Float32Array | Float64Array | Int32Array {
  const size = info.end - info.begin;
  const Ctor = info.dtype === "float64"
    ? Float64Array
    : info.dtype === "float32"
    ? Float32Array
    : Int32Array;
  const count = size / DTYPES[info.dtype].bytes;
  if (LITTLE_ENDIAN) return new Ctor(bytes.slice(at, at + size).buffer, 0, count);
  const out = new Ctor(count);
  const view = new DataView(bytes.buffer, bytes.byteOffset + at, size);
  for (let i = 0; i < count; i++) {
    out[i] = info.dtype === "float64"
      ? view.getFloat64(8 * i, true)
      : info.dtype === "float32"
      ? view.getFloat32(4 * i, true)
      : view.getInt32(4 * i, true);
  }
  return out;
}

/** Orders strings by Unicode code point (= UTF-8 byte order, as Rust compares names). */
function compareCodePoints(a: string, b: string): number {
  const x = Array.from(a, (c) => c.codePointAt(0)!);
  const y = Array.from(b, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}
