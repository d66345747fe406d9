/**
 * The one node type of the tensor graph: immutable and hash-consed by structure, so building
 * the same node twice returns the same object and caches can key on identity.
 *
 * @module
 */
import type { DType } from "./dtype.ts";
import type { Prim, PrimParams } from "./primitives.ts";
import { SHAPE_RULES } from "./shape_rules.ts";

let nextId = 0;
let nextUid = 0;

/** A node of the IR: `{ op, dtype, shape, inputs, params }`, frozen. */
export class Node<P extends Prim = Prim> {
  /** Unique, increasing with creation order (so inputs have smaller ids). */
  readonly id: number;
  /** Structural key used for hash-consing. */
  readonly key: string;
  /** Whether a `var` (a traced placeholder) is reachable from this node. */
  readonly traced: boolean;
  /** Whether the node is computed from numbers and index ranges only (no memory, no var). */
  readonly symbolic: boolean;
  /** Builds a node; use `makeNode`, which checks shapes and hash-conses. */
  constructor(
    readonly op: P,
    readonly dtype: DType,
    readonly shape: readonly number[],
    readonly inputs: readonly Node[],
    readonly params: Readonly<PrimParams[P]>,
    key: string,
  ) {
    this.id = nextId++;
    this.key = key;
    this.traced = op === "var" || inputs.some((x) => x.traced);
    this.symbolic = op === "scalar" || op === "iota" ||
      (inputs.length > 0 && inputs.every((x) => x.symbolic));
    Object.freeze(this);
  }
}

const table = new Map<string, WeakRef<Node>>();
const registry = new FinalizationRegistry<string>((key) => {
  const ref = table.get(key);
  if (ref !== undefined && ref.deref() === undefined) table.delete(key);
});

function paramsKey(op: Prim, params: object): string {
  if (op === "const") return String((params as PrimParams["const"]).uid);
  if (op === "custom") {
    const p = params as PrimParams["custom"];
    return `${p.rule.id}:${p.index}`;
  }
  if (op === "scalar") {
    const p = params as PrimParams["scalar"];
    return `${Object.is(p.value, -0) ? "-0" : String(p.value)}:${p.dtype}`;
  }
  return JSON.stringify(params);
}

/**
 * Builds (or finds) the node `op(inputs; params)`, checking shapes and dtypes first.
 *
 * @example
 * ```ts
 * import { makeNode } from "./node.ts";
 * const i = makeNode("iota", [], { shape: [3], axis: 0, dtype: "float32" });
 * const twice = makeNode("add", [i, i], {});
 * twice === makeNode("add", [i, i], {}); // true: hash-consed
 * ```
 */
export function makeNode<P extends Prim>(
  op: P,
  inputs: readonly Node[],
  params: PrimParams[P],
): Node<P> {
  const key = `${op}(${inputs.map((n) => n.id).join(",")})${paramsKey(op, params)}`;
  const found = table.get(key)?.deref();
  if (found !== undefined) return found as Node<P>;
  const rule = SHAPE_RULES[op] as (
    inputs: readonly Node[],
    params: PrimParams[P],
  ) => { shape: number[]; dtype: DType };
  const { shape, dtype } = rule(inputs, params);
  const node = new Node(op, dtype, Object.freeze(shape), Object.freeze([...inputs]), params, key);
  Object.freeze(params);
  table.set(key, new WeakRef(node));
  registry.register(node, key);
  return node;
}

/** A fresh unique number for `const` leaves. */
export function freshUid(): number {
  return nextUid++;
}

/**
 * The nodes reachable from `outputs`, inputs before users (a topological order).
 *
 * @example
 * ```ts
 * import { makeNode, topoSort } from "./node.ts";
 * const i = makeNode("iota", [], { shape: [3], axis: 0, dtype: "float32" });
 * topoSort([makeNode("exp", [i], {})]).map((n) => n.op); // ["iota", "exp"]
 * ```
 */
export function topoSort(outputs: readonly Node[]): Node[] {
  const seen = new Set<Node>();
  const order: Node[] = [];
  const stack: [Node, number][] = [];
  for (const out of outputs) {
    if (seen.has(out)) continue;
    seen.add(out);
    stack.push([out, 0]);
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      const [node, i] = top;
      if (i < node.inputs.length) {
        top[1] = i + 1;
        const child = node.inputs[i];
        if (!seen.has(child)) {
          seen.add(child);
          stack.push([child, 0]);
        }
      } else {
        stack.pop();
        order.push(node);
      }
    }
  }
  return order;
}
