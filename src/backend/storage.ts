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
}

/** What a backend must provide. */
export interface Backend {
  /** The backend's name, as `setBackend` takes it. */
  readonly name: string;
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
