/**
 * Memory of the wasm backend: one `WebAssembly.Memory` (shared, on a `SharedArrayBuffer`,
 * where the engine offers threads) holding every tensor; a heap of blocks reused by size
 * class; handles that give their block back when the last tensor using them is collected
 * (users never free), and the `Storage` of a tensor held there.
 *
 * @module
 */
import type { DType, TypedArray } from "../../ir/dtype.ts";
import { donatedError, type Storage } from "../storage.ts";
import { sizeClass } from "../webgpu/buffers.ts";

/** Bytes of one wasm page. */
const PAGE = 65536;
/** The largest memory (2 GiB: byte addresses stay positive i32 values). */
export const MAX_PAGES = 32768;
/** Bytes below the heap: address 0 stays unused; the error words live at 16. */
export const HEAP_START = 4096;
/** Byte address of the error words (code, value) kernels report out-of-range indices into. */
export const ERROR_WORDS = 16;
/** Bytes kept free past the top of the heap, so edge reads past a tensor never trap. */
const SLACK = 65536;

/** Whether this engine can share wasm memory between workers. */
export function canShare(): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  try {
    new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    return true;
  } catch {
    return false;
  }
}

/** Blocks of one memory, reused by size class. */
export class WasmHeap {
  /** The memory. */
  readonly memory: WebAssembly.Memory;
  private top = HEAP_START;
  private readonly free = new Map<number, number[]>();
  /** Bytes handed out and not returned. */
  usedBytes = 0;
  /** Makes a heap of `initialPages` (shared when `shared`). */
  constructor(readonly shared: boolean, initialPages = 256) {
    this.memory = new WebAssembly.Memory({ initial: initialPages, maximum: MAX_PAGES, shared });
  }
  /** The memory's current pages. */
  get pages(): number {
    return this.memory.buffer.byteLength / PAGE;
  }
  /** A block of `sizeClass(bytes)` bytes, 64-byte aligned; returns its address. */
  alloc(bytes: number): number {
    const cls = sizeClass(Math.max(bytes, 4));
    const reuse = this.free.get(cls)?.pop();
    this.usedBytes += cls;
    if (reuse !== undefined) return reuse;
    const at = this.top;
    this.top += cls;
    const need = Math.ceil((this.top + SLACK) / PAGE);
    if (need > this.pages) {
      if (need > MAX_PAGES) {
        this.top -= cls;
        this.usedBytes -= cls;
        throw new RangeError(
          `The wasm backend cannot hold ${cls} more bytes: its memory would exceed ${
            MAX_PAGES * PAGE
          } bytes (${this.usedBytes} in use)`,
        );
      }
      this.memory.grow(need - this.pages);
    }
    return at;
  }
  /** Gives back the block at `at` of `sizeClass(bytes)`. */
  release(at: number, bytes: number): void {
    const cls = sizeClass(Math.max(bytes, 4));
    let list = this.free.get(cls);
    if (list === undefined) this.free.set(cls, list = []);
    list.push(at);
    this.usedBytes -= cls;
  }
  /** A float32 view of `size` elements at `at` (valid until the memory grows). */
  f32(at: number, size: number): Float32Array {
    return new Float32Array(this.memory.buffer, at, size);
  }
  /** An int32 view of `size` elements at `at` (valid until the memory grows). */
  i32(at: number, size: number): Int32Array {
    return new Int32Array(this.memory.buffer, at, size);
  }
}

interface Cell {
  at: number;
  bytes: number;
  heap: WasmHeap;
  moved: boolean;
}

const finalizer = new FinalizationRegistry<Cell>((cell) => {
  if (!cell.moved) cell.heap.release(cell.at, cell.bytes);
});

/** Owner of one heap block; several storages may share it (a reshape is the same memory). */
export class BlockHandle {
  private readonly cell: Cell;
  /** Number of storages built on this handle. */
  storages = 0;
  /** Wraps the block at `at` of `bytes` (its size class) of `heap`. */
  constructor(at: number, bytes: number, heap: WasmHeap) {
    this.cell = { at, bytes, heap, moved: false };
    finalizer.register(this, this.cell);
  }
  /** The block's address. */
  get at(): number {
    return this.cell.at;
  }
  /** The block's size class in bytes. */
  get bytes(): number {
    return this.cell.bytes;
  }
  /** Whether the block was given away (donated). */
  get moved(): boolean {
    return this.cell.moved;
  }
  /** Gives the block to a new owner: this handle no longer returns it. */
  move(): number {
    this.cell.moved = true;
    return this.cell.at;
  }
}

/** What a storage needs from its backend to read itself. */
export interface BlockReader {
  /** The heap. */
  readonly heap: WasmHeap;
  /** Resolves when the work writing memory so far has finished (rejects with its errors). */
  settled(): Promise<void>;
}

/** A tensor's memory on the wasm backend. */
export class WasmStorage implements Storage {
  readonly backend = "wasm";
  /** Set once the memory was given up to a compiled function. */
  donated = false;
  /** Host copy, filled by the first `read()`. */
  host: TypedArray | null = null;
  /** The host storage this was copied from, if any (marked donated along with it). */
  origin: Storage | null = null;
  /** An error the run that wrote this reported (an out-of-range index). */
  error: Error | null = null;
  /** Wraps `handle` as a tensor of `size` elements of `dtype`. */
  constructor(
    readonly dtype: DType,
    readonly size: number,
    readonly handle: BlockHandle,
    readonly reader: BlockReader,
  ) {
    if (dtype === "float64") throw wasmFloat64Error();
    handle.storages++;
  }
  /** The block's address. */
  get at(): number {
    return this.handle.at;
  }
  /** Copies the values to the host (after the work writing them). */
  async read(): Promise<TypedArray> {
    if (this.donated) throw donatedError();
    await this.reader.settled();
    if (this.error !== null) throw this.error;
    if (this.host !== null) return this.host.slice();
    const heap = this.reader.heap;
    const data = this.dtype === "int32"
      ? heap.i32(this.at, this.size).slice()
      : heap.f32(this.at, this.size).slice();
    this.host = data;
    return data.slice();
  }
}

/**
 * The error for float64 tensors on the wasm backend.
 *
 * @example
 * ```ts
 * import { wasmFloat64Error } from "./memory.ts";
 * wasmFloat64Error() instanceof TypeError; // true
 * ```
 */
export function wasmFloat64Error(): TypeError {
  return new TypeError(
    'float64 tensors run on the cpu backend (the wasm kernels compute float32): cast to float32, or use setBackend("cpu")',
  );
}
