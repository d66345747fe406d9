/**
 * Device memory of the WebGPU backend: a pool of storage buffers keyed by size class, handles
 * that give their buffer back to the pool when the last tensor using them is collected (users
 * never free), and the `Storage` of a tensor held on the device.
 *
 * @module
 */
import type { DType, TypedArray } from "../../ir/dtype.ts";
import { donatedError, type Storage } from "../storage.ts";

/** Usage of every tensor buffer: bound as storage, copied from (reads) and to (uploads). */
// UNIFORM too: a kernel may bind a slice of a scratch buffer as a uniform array.
const STORAGE_USAGE = 0x80 /* STORAGE */ | 0x40 /* UNIFORM */ | 0x04 /* COPY_SRC */ | 0x08; /* COPY_DST */

/**
 * The size class of a buffer of `bytes`: a multiple of 256 bytes up to 64 KiB, then four
 * classes per power of two (at most 19% unused).
 *
 * @example
 * ```ts
 * import { sizeClass } from "./buffers.ts";
 * sizeClass(10); // 256
 * sizeClass(1_000_000); // 1048576
 * ```
 */
export function sizeClass(bytes: number): number {
  if (bytes <= 256) return 256;
  if (bytes <= 65536) return Math.ceil(bytes / 256) * 256;
  const octave = 2 ** Math.floor(Math.log2(bytes));
  const step = octave / 4;
  return Math.ceil(bytes / step) * step;
}

/** Storage buffers reused by size class. */
export class BufferPool {
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Bytes held in the pool, unused. */
  pooledBytes = 0;
  /** Bytes of every buffer the pool created and has not destroyed. */
  allocatedBytes = 0;
  /** Buffers created (for tests and profiling). */
  created = 0;
  /** Builds a pool on `device` that keeps at most `maxPooledBytes` unused. */
  constructor(readonly device: GPUDevice, readonly maxPooledBytes = 2 ** 30) {}
  /** A buffer of exactly size class `bytes` (see {@link sizeClass}), reused when possible. */
  acquire(bytes: number): GPUBuffer {
    const list = this.free.get(bytes);
    const reused = list?.pop();
    if (reused !== undefined) {
      this.pooledBytes -= bytes;
      return reused;
    }
    this.created++;
    this.allocatedBytes += bytes;
    return this.device.createBuffer({ size: bytes, usage: STORAGE_USAGE });
  }
  /** Gives `buffer` (of size class `bytes`) back; work already queued on it stays valid. */
  release(buffer: GPUBuffer, bytes: number): void {
    if (this.pooledBytes + bytes > this.maxPooledBytes) {
      buffer.destroy();
      this.allocatedBytes -= bytes;
      return;
    }
    let list = this.free.get(bytes);
    if (list === undefined) {
      list = [];
      this.free.set(bytes, list);
    }
    list.push(buffer);
    this.pooledBytes += bytes;
  }
  /** Destroys every pooled buffer. */
  trim(): void {
    for (const [bytes, list] of this.free) {
      for (const b of list) {
        b.destroy();
        this.allocatedBytes -= bytes;
      }
    }
    this.free.clear();
    this.pooledBytes = 0;
  }
}

/** What the finalizer needs to give a buffer back (never the handle itself). */
interface Cell {
  buffer: GPUBuffer;
  bytes: number;
  pool: BufferPool;
  /** Set when the buffer was given to another owner (donation), so it is not pooled twice. */
  moved: boolean;
}

const finalizer = new FinalizationRegistry<Cell>((cell) => {
  if (!cell.moved) cell.pool.release(cell.buffer, cell.bytes);
});

/**
 * Owner of one pooled buffer; several storages may share it (a reshape is the same memory).
 * When the handle is collected, its buffer returns to the pool.
 */
export class BufferHandle {
  private readonly cell: Cell;
  /** Number of storages built on this handle. */
  storages = 0;
  /** Wraps `buffer` of size class `bytes`, owned by `pool`. */
  constructor(buffer: GPUBuffer, bytes: number, pool: BufferPool) {
    this.cell = { buffer, bytes, pool, moved: false };
    finalizer.register(this, this.cell);
  }
  /** The buffer. */
  get buffer(): GPUBuffer {
    return this.cell.buffer;
  }
  /** Its size class in bytes. */
  get bytes(): number {
    return this.cell.bytes;
  }
  /** Whether the buffer was given away (donated). */
  get moved(): boolean {
    return this.cell.moved;
  }
  /** Gives the buffer to a new owner: this handle no longer returns it to the pool. */
  move(): GPUBuffer {
    this.cell.moved = true;
    return this.cell.buffer;
  }
}

/** What a storage needs from its backend to read itself. */
export interface BufferReader {
  /** Copies `bytes` from the start of `buffer` to the host, after all submitted work. */
  readBuffer(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer>;
}

/** A tensor's memory on the WebGPU device. */
export class GpuStorage implements Storage {
  readonly backend = "webgpu";
  /** Set once the memory was given up to a compiled function. */
  donated = false;
  /** Host copy, filled by the first `read()` (so the cpu backend can adopt it). */
  host: TypedArray | null = null;
  /** The host storage this was uploaded from, if any (marked donated along with it). */
  origin: Storage | null = null;
  /** Wraps `handle` as a tensor of `size` elements of `dtype`. */
  constructor(
    readonly dtype: DType,
    readonly size: number,
    readonly handle: BufferHandle,
    readonly reader: BufferReader,
  ) {
    if (dtype === "float64") throw float64Error();
    handle.storages++;
  }
  /** The buffer. */
  get buffer(): GPUBuffer {
    return this.handle.buffer;
  }
  /** Copies the values to the host (one submit and one wait). */
  async read(): Promise<TypedArray> {
    if (this.donated) throw donatedError();
    if (this.host !== null) return this.host.slice();
    if (this.size === 0) return this.dtype === "int32" ? new Int32Array(0) : new Float32Array(0);
    const bytes = await this.reader.readBuffer(this.buffer, this.size * 4);
    const data = this.dtype === "int32" ? new Int32Array(bytes) : new Float32Array(bytes);
    this.host = data;
    return data.slice();
  }
}

/**
 * The error for float64 tensors on the WebGPU backend.
 *
 * @example
 * ```ts
 * import { float64Error } from "./buffers.ts";
 * float64Error() instanceof TypeError; // true
 * ```
 */
export function float64Error(): TypeError {
  return new TypeError(
    'float64 tensors run on the cpu backend (WGSL has no float64): cast to float32, or use setBackend("cpu")',
  );
}
