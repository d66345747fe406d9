/**
 * Memory of realized tensors, and the narrow interface every backend implements.
 *
 * @module
 */
import type { DType, TypedArray } from "../ir/dtype.ts";
import { dtypeOf } from "../ir/dtype.ts";
import type { Node } from "../ir/node.ts";
import type { StorageLike } from "../ir/primitives.ts";

/** Memory holding one realized tensor on some backend. */
export interface Storage extends StorageLike {
  /** Name of the backend that owns the memory. */
  readonly backend: string;
  /** Set when the memory was given up to a compiled function (see `compile`'s `donate`). */
  donated?: boolean;
  /** Copies the values to the host. */
  read(): Promise<TypedArray>;
}

/** Host memory: a typed array. */
export class HostStorage implements Storage {
  readonly backend = "cpu";
  donated = false;
  /** Element type. */
  readonly dtype: DType;
  /** Number of elements. */
  readonly size: number;
  /** Wraps `host` (kept, not copied). */
  constructor(public host: TypedArray) {
    this.dtype = dtypeOf(host);
    this.size = host.length;
  }
  /** Returns a copy of the values. */
  read(): Promise<TypedArray> {
    if (this.donated) return Promise.reject(donatedError());
    return Promise.resolve(this.host.slice());
  }
}

/** A graph compiled by a backend: runs with the inputs' storages, returns the outputs'. */
export interface Program {
  /**
   * Runs with the inputs' storages; the inputs at positions in `donated` may be overwritten
   * (their memory reused for outputs), and are marked donated afterwards.
   */
  run(inputs: readonly Storage[], donated?: ReadonlySet<number>): Storage[];
  /** Text of what the program does (kernels or a plan), for debugging. */
  describe(): string;
  /**
   * The device memory a run with the inputs at positions in `donated` given up would use,
   * from the program's buffer plan (backends without a plan leave this out).
   */
  memory?(donated?: ReadonlySet<number>): MemoryReport;
  /** The kernels one run dispatches, in order (backends that run node by node leave this out). */
  kernels?(): KernelSummary[];
}

/** One dispatch of a compiled program, as typed data (what `describe()` prints as text). */
export interface KernelSummary {
  /** The kernel's name, e.g. `map:add[4,8]` or `gemm:matmul[64,64,64]`. */
  name: string;
  /** Workgroups dispatched in x, y, z. */
  workgroups: readonly [number, number, number];
  /** Its storage bindings in binding order. */
  bindings: {
    /** A tensor (with its dtype and shape), scratch memory, or the index-error words. */
    kind: "tensor" | "scratch" | "errors";
    dtype?: string;
    shape?: readonly number[];
    /** Whether the kernel writes it. */
    write: boolean;
    /** For a tensor bound as several ranges of its buffer (split bindings): this range. */
    part?: { offset: number; size: number };
  }[];
}

/**
 * Device memory of one run of a compiled program, from its buffer plan (computed at compile
 * time, before anything runs). Every size is in bytes of buffers as allocated: a tensor's
 * buffer is its size rounded up to the buffer pool's size class (at most 19% more).
 */
export interface MemoryReport {
  /** Buffer bytes of each input, in binding order (a compiled function's captured constants last). */
  inputBytes: number[];
  /** Inputs given up (donated) whose buffer the plan reuses for later values, ascending. */
  reusedInputs: number[];
  /** Sum of `inputBytes` over `reusedInputs`. */
  donatedBytes: number;
  /** Sum of `inputBytes` over the other inputs (held by the caller before and after the run). */
  keptBytes: number;
  /** Constants compiled into the program (not inputs). */
  constBytes: number;
  /**
   * Buffers the run takes from the pool: the sum of the sizes of the plan's distinct slots,
   * which hold intermediates, outputs and scratch (split-K and split reductions' partial
   * sums). Slots are reused by liveness: a value may take a free slot of a larger size
   * class (outputs only one of their own).
   */
  intermediateBytes: number;
  /**
   * The most bytes of live values (each at its own size class) at one dispatch, values in
   * donated inputs' buffers included: the liveness lower bound of `intermediateBytes` plus
   * `donatedBytes`; the difference is what size classes and outputs (which keep slots of their
   * own size) keep from reusing.
   */
  liveIntermediateBytes: number;
  /** The largest single slot (the largest intermediate, output or scratch buffer). */
  largestSlotBytes: number;
  /** Distinct buffers holding the outputs (slots, or inputs returned as they are). */
  outputBytes: number;
  /**
   * Peak device bytes during the run: every input buffer (a reused donated input counted once),
   * the constants, and every slot, since a run holds all its slots from its first dispatch
   * to its last. Buffers left idle in the pool and the 16-byte error word are not counted.
   */
  peakBytes: number;
}

/** What a backend must provide. */
export interface Backend {
  /** The backend's name, as `setBackend` takes it. */
  readonly name: string;
  /**
   * Everything a program compiled now depends on besides the graph: the backend's identity
   * (a device), its kernel profile and limits. Programs are cached under it with the graph, so
   * a change of profile or limit compiles anew instead of reusing a program built for the old
   * values.
   */
  compileKey(): string;
  /** Compiles the graph from `inputs` (var nodes, in binding order) to `outputs`. */
  compile(inputs: readonly Node<"var">[], outputs: readonly Node[]): Program;
  /** Makes a storage of this backend from host values (the array may be kept). */
  fromHost(data: TypedArray): Storage;
  /** Returns a storage this backend can read: `s` itself, or a copy moved here. */
  adopt(s: Storage): Storage;
  /** Resolves when all submitted work has finished. */
  synchronize(): Promise<void>;
}

/** The error raised when a donated tensor is used again. */
export function donatedError(): TypeError {
  return new TypeError(
    "This tensor was donated to a compiled function (compile's donate option) and its memory reused: use the function's outputs instead",
  );
}
