/**
 * Training checkpoints: safetensors files with a SHA-256 checksum, written atomically and
 * durably (temporary file, fsync, rename, fsync of the directory), verified on load.
 *
 * The checksum covers everything a reader gets back: the metadata (other than the checksum),
 * every tensor's name, dtype and shape, and the tensor bytes. A file whose bytes were
 * overwritten, truncated or flipped is refused on load with an error that names the file;
 * nothing corrupt reaches the training loop. Temporary files left by a writer that was killed
 * (`.<name>.<random>.tmp` beside the checkpoint) are removed by {@linkcode saveCheckpoint} and
 * {@linkcode removeStaleTemporaries}.
 *
 * @module
 */
import { basename, dirname, join } from "node:path";
import { decodeSafetensors, encodeSafetensors, type TensorRecords } from "./safetensors.ts";

/** The metadata key holding the checksum (hex SHA-256). */
export const CHECKSUM_KEY = "cosgrad.sha256";

/** A checkpoint's contents: tensors by name and a string map of metadata. */
export interface Checkpoint {
  /** Tensors by name. */
  tensors: TensorRecords;
  /** Free-form metadata (without the checksum key). */
  metadata: Record<string, string>;
}

/**
 * A checkpoint that cannot be read: truncated, corrupt, or of another format. The message
 * names the file and what is wrong with it.
 *
 * @example
 * ```ts
 * import { CheckpointError } from "./checkpoint.ts";
 * const e = new CheckpointError("out/a.safetensors", "checksum mismatch");
 * if (!e.message.includes("out/a.safetensors")) throw new Error(e.message);
 * ```
 */
export class CheckpointError extends Error {
  /** The file that could not be read. */
  readonly path: string;
  /** Creates an error for `path` with the reason `reason`. */
  constructor(path: string, reason: string) {
    super(`Cannot load checkpoint ${path}: ${reason}`);
    this.name = "CheckpointError";
    this.path = path;
  }
}

/** The bytes the checksum covers: a canonical header (sorted) followed by the tensor bytes. */
function covered(bytes: Uint8Array, contents: Checkpoint): Uint8Array {
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  const meta = Object.entries(contents.metadata).filter(([k]) => k !== CHECKSUM_KEY).sort((
    a,
    b,
  ) => a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);
  const names = Object.keys(contents.tensors).sort();
  const header = new TextEncoder().encode(JSON.stringify({
    metadata: meta,
    tensors: names.map((k) => [k, contents.tensors[k].dtype, contents.tensors[k].shape]),
  }));
  const data = bytes.subarray(8 + n);
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Encodes a checkpoint: safetensors bytes whose metadata holds the checksum.
 *
 * @example
 * ```ts
 * import { decodeCheckpoint, encodeCheckpoint } from "./checkpoint.ts";
 * const w = { dtype: "float32" as const, shape: [2], data: new Float32Array([1, 2]) };
 * const bytes = await encodeCheckpoint({ w }, { step: "3" });
 * const back = await decodeCheckpoint(bytes, "memory");
 * if (back.metadata.step !== "3" || back.tensors.w.data[1] !== 2) throw new Error("round trip");
 * ```
 */
export async function encodeCheckpoint(
  tensors: TensorRecords,
  metadata: Record<string, string> = {},
): Promise<Uint8Array> {
  if (CHECKSUM_KEY in metadata) {
    throw new TypeError(`Invalid metadata key "${CHECKSUM_KEY}": the key is reserved`);
  }
  // The tensor bytes do not depend on the header, so the first encoding gives them.
  const first = encodeSafetensors(tensors, metadata);
  const sum = await sha256(covered(first, { tensors, metadata }));
  return encodeSafetensors(tensors, { ...metadata, [CHECKSUM_KEY]: sum });
}

/**
 * Decodes and verifies checkpoint bytes; `path` names the source in errors.
 *
 * @example
 * ```ts
 * import { decodeCheckpoint, encodeCheckpoint } from "./checkpoint.ts";
 * const w = { dtype: "float32" as const, shape: [1], data: new Float32Array([5]) };
 * const bytes = await encodeCheckpoint({ w });
 * bytes[bytes.length - 1] ^= 1; // one flipped bit in the tensor bytes
 * let message = "";
 * try { await decodeCheckpoint(bytes, "w.safetensors"); } catch (e) { message = String(e); }
 * if (!message.includes("w.safetensors") || !message.includes("checksum")) throw new Error(message);
 * ```
 */
export async function decodeCheckpoint(bytes: Uint8Array, path: string): Promise<Checkpoint> {
  let tensors: TensorRecords, metadata: Record<string, string> | undefined;
  try {
    ({ tensors, metadata } = decodeSafetensors(bytes));
  } catch (e) {
    throw new CheckpointError(path, `not a valid safetensors file (${(e as Error).message})`);
  }
  const expected = metadata?.[CHECKSUM_KEY];
  if (expected === undefined) {
    throw new CheckpointError(
      path,
      `no "${CHECKSUM_KEY}" checksum in its metadata (not written by saveCheckpoint)`,
    );
  }
  const rest = Object.fromEntries(
    Object.entries(metadata ?? {}).filter(([k]) => k !== CHECKSUM_KEY),
  );
  const actual = await sha256(covered(bytes, { tensors, metadata: rest }));
  if (actual !== expected) {
    throw new CheckpointError(
      path,
      `checksum mismatch (stored ${expected.slice(0, 16)}..., computed ${
        actual.slice(0, 16)
      }...): the file is corrupt`,
    );
  }
  return { tensors, metadata: rest };
}

function temporaryPrefix(path: string): string {
  return `.${basename(path)}.`;
}

/**
 * Removes temporary files a killed writer left beside `path` (`.<name>.<random>.tmp`);
 * returns the paths removed. A missing directory removes nothing.
 *
 * @example
 * ```ts
 * import { removeStaleTemporaries } from "./checkpoint.ts";
 * // (Not called here: doc examples do not touch the file system.)
 * async function clean(path: string): Promise<number> {
 *   return (await removeStaleTemporaries(path)).length;
 * }
 * ```
 */
export async function removeStaleTemporaries(path: string): Promise<string[]> {
  const dir = dirname(path);
  const prefix = temporaryPrefix(path);
  const removed: string[] = [];
  try {
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.startsWith(prefix) && e.name.endsWith(".tmp")) {
        const p = join(dir, e.name);
        await Deno.remove(p).catch((err) => {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
        });
        removed.push(p);
      }
    }
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return removed;
    throw e;
  }
  return removed;
}

/**
 * Writes `bytes` to `path` atomically and durably: a temporary file in the same directory is
 * written and fsynced, renamed over `path`, and the directory is fsynced, so after a crash
 * (or `kill -9`) the file is the old one or the new one, never torn.
 */
async function writeDurable(path: string, bytes: Uint8Array): Promise<void> {
  const suffix = crypto.getRandomValues(new Uint32Array(2)).join("");
  const tmp = join(dirname(path), `${temporaryPrefix(path)}${suffix}.tmp`);
  try {
    const file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    try {
      let written = 0;
      while (written < bytes.length) written += await file.write(bytes.subarray(written));
      await file.sync();
    } finally {
      file.close();
    }
    await Deno.rename(tmp, path);
  } catch (e) {
    await Deno.remove(tmp).catch(() => {});
    throw e;
  }
  // The rename is durable once the directory is synced (not possible on every platform).
  try {
    const dir = await Deno.open(dirname(path), { read: true });
    try {
      await dir.sync();
    } finally {
      dir.close();
    }
  } catch { /* directories cannot be opened for sync on Windows */ }
}

/**
 * Saves tensors and metadata as a checkpoint at `path` (see the module documentation):
 * stale temporaries are removed first, the file is replaced atomically and durably.
 *
 * @example
 * ```ts
 * import { loadCheckpoint, saveCheckpoint } from "./checkpoint.ts";
 * // (Not called here: doc examples do not touch the file system.)
 * async function roundTrip(path: string) {
 *   const w = { dtype: "float32" as const, shape: [2], data: new Float32Array([1, 2]) };
 *   await saveCheckpoint(path, { w }, { step: "10" });
 *   return (await loadCheckpoint(path)).metadata.step; // "10"
 * }
 * ```
 */
export async function saveCheckpoint(
  path: string,
  tensors: TensorRecords,
  metadata: Record<string, string> = {},
): Promise<void> {
  await removeStaleTemporaries(path);
  await writeDurable(path, await encodeCheckpoint(tensors, metadata));
}

/**
 * Loads and verifies the checkpoint at `path`. A missing file is `Deno.errors.NotFound`
 * naming the path; a corrupt one a {@linkcode CheckpointError} naming it.
 *
 * @example
 * ```ts
 * import { CheckpointError, loadCheckpoint } from "./checkpoint.ts";
 * // (Not called here: doc examples do not touch the file system.)
 * async function tryLoad(path: string) {
 *   try {
 *     return await loadCheckpoint(path);
 *   } catch (e) {
 *     if (e instanceof Deno.errors.NotFound) return null; // start fresh
 *     throw e; // CheckpointError: corrupt, and says which file
 *   }
 * }
 * ```
 */
export async function loadCheckpoint(path: string): Promise<Checkpoint> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`No checkpoint at ${path}`);
    }
    throw new CheckpointError(path, (e as Error).message);
  }
  return await decodeCheckpoint(bytes, path);
}
