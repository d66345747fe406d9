/**
 * MXNet RecordIO reader for insightface's packed training sets (`train.rec` + `train.idx`).
 *
 * File layout (dmlc-core `recordio.cc`): each record is a frame `uint32 magic 0xCED7230A`,
 * `uint32 (cflag << 29) | length`, `length` payload bytes, zero padding to 4 bytes. A payload
 * that contains the magic number at a 4-byte-aligned position is split there by the writer into
 * parts (cflag 1 = first, 2 = middle, 3 = last; 0 = whole record); reading joins the parts and
 * puts the removed magic number back between them, as dmlc's `RecordIOReader` does.
 *
 * A payload starts with an IRHeader, `uint32 flag, float32 label, uint64 id, uint64 id2`
 * (24 bytes, little-endian); when `flag > 0`, `flag` float32 labels follow it, then the data.
 * insightface's record 0 is a header whose labels are `[first identity record, end)`; records
 * `1 .. first identity record - 1` are the encoded images (label = identity); each identity
 * record holds the image-key range `[first, end)` of one identity.
 *
 * @module
 */

/** The RecordIO frame magic number, `0xCED7230A`. */
export const RECORDIO_MAGIC = 0xced7230a;

const MAGIC_BYTES = new Uint8Array([0x0a, 0x23, 0xd7, 0xce]);
const LENGTH_MASK = (1 << 29) - 1;
const IR_HEADER_SIZE = 24;

/** A parsed record payload: the IRHeader, its extra labels, and the data after them. */
export interface IRRecord {
  /** Number of float32 labels following the header (0: the single `label` is used). */
  readonly flag: number;
  /** The header's float32 label (for images: the identity). */
  readonly label: number;
  /** The `flag` extra float32 labels (empty when `flag` is 0). */
  readonly labels: Float32Array;
  /** The header's `id` (uint64). */
  readonly id: bigint;
  /** The header's `id2` (uint64). */
  readonly id2: bigint;
  /** The bytes after the header and labels (for images: the encoded JPEG/PNG). */
  readonly data: Uint8Array;
}

/** Options naming where bytes came from, for error messages. */
export interface SourceOptions {
  /** A file name to put in error messages. */
  readonly file?: string;
}

function named(file: string | undefined): string {
  return file === undefined ? "" : ` in ${file}`;
}

/**
 * Parses one record payload (what `mxnet.recordio.unpack` reads): the IRHeader, `flag` extra
 * float32 labels when `flag > 0`, and the remaining data. The returned arrays are views into
 * `payload` (the labels are copied).
 *
 * @param payload The record payload after RecordIO framing was removed.
 * @param options `file`: named in error messages.
 * @returns The header fields and the data.
 * @throws {RangeError} When the payload is shorter than its header and labels.
 *
 * @example Parse an identity-range record built by hand
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseRecord } from "./recordio.ts";
 * const payload = new Uint8Array(32);
 * const view = new DataView(payload.buffer);
 * view.setUint32(0, 2, true); // flag: two labels follow
 * view.setFloat32(24, 1, true);
 * view.setFloat32(28, 4, true);
 * const rec = parseRecord(payload);
 * assert.deepEqual(Array.from(rec.labels), [1, 4]);
 * assert.equal(rec.data.length, 0);
 * ```
 */
export function parseRecord(payload: Uint8Array, options: SourceOptions = {}): IRRecord {
  if (payload.length < IR_HEADER_SIZE) {
    throw new RangeError(
      `Record payload of ${payload.length} bytes${named(options.file)} is shorter than ` +
        `the ${IR_HEADER_SIZE}-byte IRHeader`,
    );
  }
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const flag = view.getUint32(0, true);
  const label = view.getFloat32(4, true);
  const id = view.getBigUint64(8, true);
  const id2 = view.getBigUint64(16, true);
  const labelsEnd = IR_HEADER_SIZE + 4 * flag;
  if (payload.length < labelsEnd) {
    throw new RangeError(
      `Record payload of ${payload.length} bytes${named(options.file)} has flag ${flag}, ` +
        `expected at least ${labelsEnd} bytes for its labels`,
    );
  }
  const labels = new Float32Array(flag);
  for (let i = 0; i < flag; i++) labels[i] = view.getFloat32(IR_HEADER_SIZE + 4 * i, true);
  return { flag, label, labels, id, id2, data: payload.subarray(labelsEnd) };
}

function frameHeader(
  header: Uint8Array,
  offset: number,
  first: boolean,
  file: string | undefined,
): { cflag: number; length: number } {
  const view = new DataView(header.buffer, header.byteOffset, 8);
  const magic = view.getUint32(0, true);
  if (magic !== RECORDIO_MAGIC) {
    throw new RangeError(
      `Bad RecordIO magic 0x${magic.toString(16).padStart(8, "0")} at offset ${offset}` +
        `${named(file)}, expected 0xced7230a`,
    );
  }
  const lrec = view.getUint32(4, true);
  const cflag = lrec >>> 29;
  const ok = first ? cflag === 0 || cflag === 1 : cflag === 2 || cflag === 3;
  if (!ok) {
    throw new RangeError(
      `Bad RecordIO part flag ${cflag} at offset ${offset}${named(file)}, expected ` +
        (first ? "0 (whole record) or 1 (first part)" : "2 (middle part) or 3 (last part)"),
    );
  }
  return { cflag, length: lrec & LENGTH_MASK };
}

function concat(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Reads the record whose first frame starts at `offset` of an in-memory RecordIO file:
 * checks the magic numbers, joins multi-part records (re-inserting the magic number between
 * parts, as dmlc-core does), and skips the padding.
 *
 * @param bytes The RecordIO file contents (or a slice of it).
 * @param offset Byte offset of the record's first frame in `bytes`.
 * @param options `file`: named in error messages.
 * @returns `payload` (a view when the record has one part) and `end`, the offset after it.
 * @throws {RangeError} On a bad magic number or part flag (naming the offset) or a truncated frame.
 *
 * @example Unframe a single-part record of 3 bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { unframeRecord } from "./recordio.ts";
 * const bytes = new Uint8Array([0x0a, 0x23, 0xd7, 0xce, 3, 0, 0, 0, 7, 8, 9, 0]);
 * const { payload, end } = unframeRecord(bytes, 0);
 * assert.deepEqual(Array.from(payload), [7, 8, 9]);
 * assert.equal(end, 12);
 * ```
 */
export function unframeRecord(
  bytes: Uint8Array,
  offset: number,
  options: SourceOptions = {},
): { payload: Uint8Array; end: number } {
  const parts: Uint8Array[] = [];
  let pos = offset;
  for (let first = true;; first = false) {
    if (!Number.isSafeInteger(pos) || pos < 0 || pos + 8 > bytes.length) {
      throw new RangeError(
        `Truncated RecordIO frame at offset ${pos}${named(options.file)}: ` +
          `${bytes.length} bytes available`,
      );
    }
    const { cflag, length } = frameHeader(bytes.subarray(pos, pos + 8), pos, first, options.file);
    const start = pos + 8;
    if (start + length > bytes.length) {
      throw new RangeError(
        `Truncated RecordIO record at offset ${pos}${named(options.file)}: length ${length} ` +
          `runs past the end (${bytes.length} bytes)`,
      );
    }
    parts.push(bytes.subarray(start, start + length));
    pos = start + ((length + 3) & ~3);
    if (cflag === 0 || cflag === 3) break;
    parts.push(MAGIC_BYTES);
  }
  return { payload: concat(parts), end: Math.min(pos, bytes.length) };
}

/**
 * Parses a RecordIO index (`.idx`): one `key<TAB>offset` line per record.
 *
 * @param text The index file contents.
 * @param options `file`: named in error messages.
 * @returns Record key -> byte offset, in file order.
 * @throws {RangeError} On a malformed line or duplicate key, naming the line number.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIdx } from "./recordio.ts";
 * const idx = parseIdx("0\t0\n1\t40\n");
 * assert.equal(idx.get(1), 40);
 * ```
 */
export function parseIdx(text: string, options: SourceOptions = {}): Map<number, number> {
  const out = new Map<number, number>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i].trim();
    if (line === "") continue;
    const fields = line.split(/\s+/);
    const key = Number(fields[0]);
    const offset = Number(fields[1]);
    if (
      fields.length !== 2 || !/^\d+$/.test(fields[0]) || !/^\d+$/.test(fields[1]) ||
      !Number.isSafeInteger(key) || !Number.isSafeInteger(offset)
    ) {
      throw new RangeError(
        `Bad RecordIO index line ${i + 1}${named(options.file)}: ${JSON.stringify(line)}, ` +
          `expected "key<TAB>offset" with non-negative integers`,
      );
    }
    if (out.has(key)) {
      throw new RangeError(
        `Duplicate key ${key} at RecordIO index line ${i + 1}${named(options.file)}`,
      );
    }
    out.set(key, offset);
  }
  return out;
}

/** One image record of a RecordIO dataset. */
export interface RecordIOImage {
  /** Image index, 0-based (`0 .. numImages - 1`). */
  readonly index: number;
  /** Record key in the `.idx` file. */
  readonly key: number;
  /** Identity label (an integer `0 .. numIdentities - 1`). */
  readonly label: number;
  /** The encoded image bytes (JPEG or PNG; decode with `decodeImage`). */
  readonly image: Uint8Array;
}

/** An opened RecordIO dataset; reads records by random access, never the whole file. */
export interface RecordIODataset {
  /** Path of the `.rec` file. */
  readonly path: string;
  /** Number of image records. */
  readonly numImages: number;
  /** Number of identities (classes). */
  readonly numIdentities: number;
  /** Identity label of each image, `labels[i]` for image index `i`. */
  readonly labels: Int32Array;
  /** Record key of each image, `keys[i]` for image index `i`. */
  readonly keys: Int32Array;
  /** Reads image `index` (0-based); checks that the record's label equals `labels[index]`. */
  read(index: number): Promise<RecordIOImage>;
  /** Reads and parses the record with `.idx` key `key` (any record, header included). */
  readRecord(key: number): Promise<IRRecord>;
  /** Closes the file; later reads throw. */
  close(): void;
}

/** Options of {@linkcode openRecordIO}. */
export interface OpenRecordIOOptions {
  /**
   * Where the per-image labels come from. `"identities"` (the default when record 0 is a
   * header): the identity records' image ranges, identity k = label k, read at open time (one
   * small record per identity). `"images"` (forced when there is no header record): every image
   * record's own label, which reads the whole file once at open time.
   */
  readonly labelsFrom?: "identities" | "images";
}

function pathOf(p: string | URL): string {
  return p instanceof URL ? decodeURIComponent(p.pathname) : p;
}

async function readExact(
  file: Deno.FsFile,
  n: number,
  offset: number,
  path: string,
): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await file.read(buf.subarray(got));
    if (r === null) {
      throw new RangeError(
        `Truncated RecordIO file ${path}: needed ${n} bytes at offset ${offset}, found ${got}`,
      );
    }
    got += r;
  }
  return buf;
}

async function readFramed(file: Deno.FsFile, offset: number, path: string): Promise<Uint8Array> {
  await file.seek(offset, Deno.SeekMode.Start);
  const parts: Uint8Array[] = [];
  let pos = offset;
  for (let first = true;; first = false) {
    const header = await readExact(file, 8, pos, path);
    const { cflag, length } = frameHeader(header, pos, first, path);
    const padded = (length + 3) & ~3;
    // The padding after the last part may be missing at the very end of a file.
    const body = await readExact(file, cflag === 0 || cflag === 3 ? length : padded, pos + 8, path);
    parts.push(body.subarray(0, length));
    if (cflag === 0 || cflag === 3) break;
    parts.push(MAGIC_BYTES);
    pos += 8 + padded;
  }
  return concat(parts);
}

function integerLabel(value: number, what: string, path: string): number {
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw new RangeError(`${what} in ${path} has label ${value}, expected a non-negative integer`);
  }
  return value;
}

/**
 * Opens an insightface RecordIO training set for random access (`Deno.open` + seek; the
 * `.rec` file is never loaded whole). Needs `--allow-read`.
 *
 * With a header record 0 (flag > 0, labels `[a, b)`): images are keys `1 .. a - 1`, identities
 * are records `a .. b - 1`. Without one: every key of the index, in index order, is an image,
 * and `numIdentities` is the largest label + 1.
 *
 * @param recPath The `.rec` file.
 * @param idxPath The `.idx` file; default: `recPath` with `.rec` replaced by `.idx`.
 * @param options `labelsFrom`: see {@linkcode OpenRecordIOOptions}.
 * @returns The dataset; call `close()` when done.
 * @throws {RangeError} On malformed files, naming the file and offset or line.
 *
 * @example Read the first image of a training set (defined here, run on a real file)
 * ```ts
 * import { openRecordIO } from "./recordio.ts";
 * async function firstImage(rec: string): Promise<{ label: number; bytes: number }> {
 *   const ds = await openRecordIO(rec, rec.replace(/\.rec$/, ".idx"));
 *   try {
 *     const { label, image } = await ds.read(0);
 *     return { label, bytes: image.length };
 *   } finally {
 *     ds.close();
 *   }
 * }
 * ```
 */
export async function openRecordIO(
  recPath: string | URL,
  idxPath?: string | URL,
  options: OpenRecordIOOptions = {},
): Promise<RecordIODataset> {
  const path = pathOf(recPath);
  const idxFile = idxPath === undefined ? path.replace(/(\.rec)?$/, ".idx") : pathOf(idxPath);
  const index = parseIdx(await Deno.readTextFile(idxFile), { file: idxFile });
  if (index.size === 0) {
    // An empty (or truncated to nothing) index would open as an empty dataset, silently.
    throw new RangeError(
      `RecordIO index ${idxFile} lists no records: expected key<TAB>offset lines`,
    );
  }
  const file = await Deno.open(path, { read: true });
  try {
    const recBytes = (await file.stat()).size;
    let queue: Promise<unknown> = Promise.resolve();
    let closed = false;
    // One file position is shared, so reads run one after another.
    const serial = <T>(job: () => Promise<T>): Promise<T> => {
      const next = queue.then(() => {
        if (closed) throw new TypeError(`RecordIO file ${path} is closed`);
        return job();
      });
      queue = next.catch(() => {});
      return next;
    };
    const offsetOf = (key: number): number => {
      const off = index.get(key);
      if (off === undefined) {
        throw new RangeError(`Record key ${key} is not in the index ${idxFile}`);
      }
      if (off + 8 > recBytes) {
        throw new RangeError(
          `Index ${idxFile} gives record key ${key} the offset ${off}, past the end of ${path} ` +
            `(${recBytes} bytes): the index does not belong to this file, or the file is truncated`,
        );
      }
      return off;
    };
    const loadRecord = async (key: number): Promise<IRRecord> =>
      // A bad frame at an index offset means the index or the file is damaged: name both.
      parseRecord(
        await readFramed(
          file,
          offsetOf(key),
          `${path} (record key ${key}, offset from ${idxFile})`,
        ),
        {
          file: `${path} (key ${key}, offset ${offsetOf(key)})`,
        },
      );

    const header = index.has(0) ? await loadRecord(0) : undefined;
    let keys: Int32Array;
    let labels: Int32Array;
    let numIdentities: number;
    if (header !== undefined && header.flag > 0) {
      if (header.flag < 2) {
        throw new RangeError(
          `Header record 0 in ${path} has flag ${header.flag}, expected at least 2 labels`,
        );
      }
      const a = integerLabel(header.labels[0], "Header record 0", path);
      const b = integerLabel(header.labels[1], "Header record 0", path);
      if (a < 1 || b < a) {
        throw new RangeError(
          `Header record 0 in ${path} has identity range [${a}, ${b}), expected 1 <= first <= end`,
        );
      }
      keys = Int32Array.from({ length: a - 1 }, (_, i) => i + 1);
      for (const k of keys) offsetOf(k);
      numIdentities = b - a;
      if ((options.labelsFrom ?? "identities") === "identities") {
        labels = new Int32Array(keys.length).fill(-1);
        for (let id = 0; id < numIdentities; id++) {
          const rec = await loadRecord(a + id);
          const what = `Identity record ${a + id}`;
          if (rec.flag < 2) {
            throw new RangeError(
              `${what} in ${path} has flag ${rec.flag}, expected 2 labels [first image, end)`,
            );
          }
          const lo = integerLabel(rec.labels[0], what, path);
          const hi = integerLabel(rec.labels[1], what, path);
          if (lo < 1 || hi < lo || hi > a) {
            throw new RangeError(
              `${what} in ${path} has image range [${lo}, ${hi}), expected within [1, ${a})`,
            );
          }
          for (let k = lo; k < hi; k++) {
            if (labels[k - 1] !== -1) {
              throw new RangeError(
                `Image key ${k} in ${path} belongs to identities ${labels[k - 1]} and ${id}`,
              );
            }
            labels[k - 1] = id;
          }
        }
        const missing = labels.indexOf(-1);
        if (missing >= 0) {
          throw new RangeError(
            `Image key ${missing + 1} in ${path} is in no identity record's range; ` +
              `open with { labelsFrom: "images" } to use the image records' own labels`,
          );
        }
      } else {
        labels = new Int32Array(keys.length);
        for (let i = 0; i < keys.length; i++) {
          labels[i] = imageLabel(await loadRecord(keys[i]), keys[i], path);
          if (labels[i] >= numIdentities) {
            throw new RangeError(
              `Image record ${keys[i]} in ${path} has label ${labels[i]}, expected below ` +
                `the header's ${numIdentities} identities`,
            );
          }
        }
      }
    } else {
      keys = Int32Array.from(index.keys());
      labels = new Int32Array(keys.length);
      for (let i = 0; i < keys.length; i++) {
        labels[i] = imageLabel(await loadRecord(keys[i]), keys[i], path);
      }
      numIdentities = keys.length === 0 ? 0 : Math.max(...labels) + 1;
    }

    const numImages = keys.length;
    return {
      path,
      numImages,
      numIdentities,
      labels,
      keys,
      read(i: number): Promise<RecordIOImage> {
        if (!Number.isInteger(i) || i < 0 || i >= numImages) {
          return Promise.reject(
            new RangeError(`Image index ${i} is out of range for ${numImages} images in ${path}`),
          );
        }
        return serial(async () => {
          const key = keys[i];
          const rec = await loadRecord(key);
          const label = imageLabel(rec, key, path);
          if (label !== labels[i]) {
            throw new RangeError(
              `Image record ${key} in ${path} has label ${label}, but its identity record ` +
                `says ${labels[i]}; open with { labelsFrom: "images" }`,
            );
          }
          return { index: i, key, label, image: rec.data };
        });
      },
      readRecord(key: number): Promise<IRRecord> {
        return serial(() => loadRecord(key));
      },
      close(): void {
        if (!closed) {
          closed = true;
          file.close();
        }
      },
    };
  } catch (e) {
    file.close();
    throw e;
  }
}

function imageLabel(rec: IRRecord, key: number, path: string): number {
  const value = rec.flag > 0 ? rec.labels[0] : rec.label;
  return integerLabel(value, `Image record ${key}`, path);
}
