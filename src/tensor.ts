/**
 * The Tensor: an immutable handle on an IR node. Operations on realized tensors run at once
 * (queued on the device, never waited for); operations inside a transform (`grad`,
 * `compile`, ...) build a graph that is compiled as a whole.
 *
 * @module
 */
import { type DType, fmtShape, type TypedArray } from "./ir/dtype.ts";
import { freshUid, makeNode, type Node } from "./ir/node.ts";
import type { Prim, PrimParams } from "./ir/primitives.ts";
import { evaluate } from "./compile/evaluate.ts";
import type { Storage } from "./backend/storage.ts";

/** Nested arrays of numbers, as `Tensor.array()` returns them. */
export type NestedArray = number | NestedArray[];

/** An n-dimensional array of float32, float64 or int32 values. */
export class Tensor {
  /** The node this tensor stands for. */
  readonly node: Node;
  /** Wraps a node; users build tensors with `tensor()` and the ops instead. */
  constructor(node: Node) {
    this.node = node;
  }
  /** The dimensions. */
  get shape(): number[] {
    return [...this.node.shape];
  }
  /** The element type. */
  get dtype(): DType {
    return this.node.dtype;
  }
  /** The number of dimensions. */
  get ndim(): number {
    return this.node.shape.length;
  }
  /** The number of elements. */
  get size(): number {
    return this.node.shape.reduce((a, b) => a * b, 1);
  }
  /**
   * The values, after everything this tensor depends on has run.
   *
   * @example
   * ```ts
   * import { tensor } from "../mod.ts";
   * await tensor([1, 2]).data(); // Float32Array [1, 2]
   * ```
   */
  data(): Promise<TypedArray> {
    return storageOf(this).read();
  }
  /** The values as nested arrays. */
  async array(): Promise<NestedArray> {
    const flat = await this.data();
    const build = (axis: number, offset: number): NestedArray => {
      if (axis === this.ndim) return flat[offset];
      const stride = this.node.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
      return Array.from(
        { length: this.node.shape[axis] },
        (_, i) => build(axis + 1, offset + i * stride),
      );
    };
    return build(0, 0);
  }
  /** The single value of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1) {
      throw new RangeError(
        `item() needs a tensor of one element, got shape ${fmtShape(this.shape)}`,
      );
    }
    return (await this.data())[0];
  }
  /** `Tensor(float32[2,3])`. */
  toString(): string {
    return `Tensor(${this.dtype}${fmtShape(this.shape)})`;
  }
}

/** The storage of a tensor, computing it first if needed. */
export function storageOf(t: Tensor): Storage {
  const n = t.node;
  if (n.op === "const") return (n as Node<"const">).params.storage as Storage;
  return evaluate([n])[0];
}

/** Wraps a storage as a realized tensor of `shape`. */
export function fromStorage(storage: Storage, shape: readonly number[]): Tensor {
  return new Tensor(makeNode("const", [], { storage, uid: freshUid(), shape: [...shape] }));
}

let deferDepth = 0;

/**
 * Runs `fn` with eager evaluation off: operations on realized tensors build graph nodes
 * instead of running, so a transform that traces a function does no work while tracing (its
 * results are realized together afterwards, in one program). Used by the transforms.
 *
 * @example
 * ```ts
 * import { deferred } from "./tensor.ts";
 * import { tensor } from "./ops/creation.ts";
 * import { exp } from "./ops/elementwise.ts";
 * deferred(() => exp(tensor([1]))).node.op; // "exp" (not computed yet)
 * ```
 */
export function deferred<T>(fn: () => T): T {
  deferDepth++;
  try {
    return fn();
  } finally {
    deferDepth--;
  }
}

/**
 * Applies primitive `op`. Outside a transform the result is computed at once; inside one
 * (any input traced) the node joins the graph.
 */
export function apply<P extends Prim>(
  op: P,
  inputs: readonly Tensor[],
  params: PrimParams[P],
): Tensor {
  const node = makeNode(op, inputs.map((t) => t.node), params);
  if (node.traced || node.symbolic || node.op === "const" || deferDepth > 0) {
    return new Tensor(node);
  }
  return fromStorage(evaluate([node])[0], node.shape);
}

/**
 * Realizes many tensors in one program (used by the transforms for their outputs); inside
 * {@link deferred} it returns them unrealized.
 */
export function realizeAll(tensors: readonly Tensor[]): Tensor[] {
  // Inside a transform's trace nothing runs: the outer transform realizes what it needs.
  if (deferDepth > 0) return [...tensors];
  const pending: number[] = [];
  tensors.forEach((t, i) => {
    if (!t.node.traced && !t.node.symbolic && t.node.op !== "const") pending.push(i);
  });
  if (pending.length === 0) return [...tensors];
  const storages = evaluate(pending.map((i) => tensors[i].node));
  const out = [...tensors];
  pending.forEach((i, k) => out[i] = fromStorage(storages[k], tensors[i].shape));
  return out;
}

/** Whether `x` is a Tensor. */
export function isTensor(x: unknown): x is Tensor {
  return x instanceof Tensor;
}
