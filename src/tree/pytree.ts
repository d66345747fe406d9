/**
 * Pytrees: nested plain objects and arrays whose leaves are Tensors. Parameters, optimizer
 * state, gradients and batches are all pytrees.
 *
 * @module
 */
import { fmtShape } from "../ir/dtype.ts";
import { Tensor } from "../tensor.ts";

/** A nested structure of plain objects and arrays with Tensor leaves (other values are static). */
export type Tree = Tensor | readonly Tree[] | { readonly [key: string]: Tree } | unknown;

/** The structure of a pytree without its leaves. */
export type TreeDef =
  | { kind: "leaf" }
  | { kind: "static"; value: unknown }
  | { kind: "array"; children: TreeDef[] }
  | { kind: "object"; keys: string[]; children: TreeDef[] }
  | { kind: "node"; node: PytreeNode<unknown>; aux: unknown; children: TreeDef[] };

/** How a registered class is taken apart into children (pytrees) and put back together. */
export interface PytreeNode<T> {
  /** A name for cache keys and messages (the class name by default). */
  readonly name: string;
  /** The children (pytrees themselves) and static auxiliary data of an instance. */
  readonly flatten: (x: T) => [children: unknown[], aux: unknown];
  /** A new instance from the auxiliary data and (transformed) children. */
  readonly unflatten: (aux: unknown, children: unknown[]) => T;
}

// deno-lint-ignore no-explicit-any
const nodeTypes = new Map<abstract new (...args: any[]) => unknown, PytreeNode<unknown>>();

/**
 * Registers a class as a pytree node, so its instances inside parameters, batches or outputs
 * are taken apart into leaves (not treated as one static value, which would retrace for each
 * instance). `flatten` returns the children and static data; `unflatten` rebuilds.
 *
 * @example
 * ```ts
 * import { flatten, registerPytreeNode, unflatten } from "./pytree.ts";
 * import { tensor } from "../ops/creation.ts";
 * import type { Tensor } from "../tensor.ts";
 * class Affine {
 *   constructor(readonly w: Tensor, readonly b: Tensor, readonly name: string) {}
 * }
 * registerPytreeNode(Affine, {
 *   flatten: (a) => [[a.w, a.b], a.name],
 *   unflatten: (name, [w, b]) => new Affine(w as Tensor, b as Tensor, name as string),
 * });
 * const { leaves, def } = flatten(new Affine(tensor([1]), tensor([2]), "fc"));
 * leaves.length; // 2
 * (unflatten(def, leaves) as Affine).name; // "fc"
 * ```
 */
// deno-lint-ignore no-explicit-any
export function registerPytreeNode<C extends abstract new (...args: any[]) => unknown>(
  cls: C,
  rules: {
    flatten: (x: InstanceType<C>) => [children: unknown[], aux: unknown];
    unflatten: (aux: unknown, children: unknown[]) => InstanceType<C>;
    name?: string;
  },
): void {
  if (typeof cls !== "function") {
    throw new TypeError(`registerPytreeNode: expected a class, got ${typeof cls}`);
  }
  if (nodeTypes.has(cls)) {
    throw new TypeError(`registerPytreeNode: class ${cls.name} is already registered`);
  }
  nodeTypes.set(cls, {
    name: rules.name ?? cls.name,
    flatten: rules.flatten as (x: unknown) => [unknown[], unknown],
    unflatten: rules.unflatten,
  });
}

function nodeTypeOf(x: object): PytreeNode<unknown> | undefined {
  if (nodeTypes.size === 0) return undefined;
  const ctor = (x as { constructor?: unknown }).constructor;
  // deno-lint-ignore no-explicit-any
  return typeof ctor === "function" ? nodeTypes.get(ctor as any) : undefined;
}

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== "object") return false;
  const proto = Object.getPrototypeOf(x);
  return proto === Object.prototype || proto === null;
}

/**
 * The leaves of `tree` in a fixed order (object keys sorted), and its structure.
 *
 * @example
 * ```ts
 * import { flatten } from "./pytree.ts";
 * import { tensor } from "../ops/creation.ts";
 * const { leaves } = flatten({ w: tensor([1]), b: [tensor([2]), 3] });
 * leaves.length; // 2
 * ```
 */
export function flatten(tree: unknown): { leaves: Tensor[]; def: TreeDef } {
  const leaves: Tensor[] = [];
  const go = (t: unknown): TreeDef => {
    if (t instanceof Tensor) {
      leaves.push(t);
      return { kind: "leaf" };
    }
    if (Array.isArray(t)) return { kind: "array", children: t.map(go) };
    if (isPlainObject(t)) {
      const keys = Object.keys(t).sort();
      return { kind: "object", keys, children: keys.map((k) => go(t[k])) };
    }
    if (t !== null && typeof t === "object") {
      const node = nodeTypeOf(t);
      if (node !== undefined) {
        const [children, aux] = node.flatten(t);
        return { kind: "node", node, aux, children: children.map(go) };
      }
    }
    return { kind: "static", value: t };
  };
  const def = go(tree);
  return { leaves, def };
}

/**
 * Rebuilds a tree of structure `def` from `leaves`.
 *
 * @example
 * ```ts
 * import { flatten, unflatten } from "./pytree.ts";
 * import { tensor } from "../ops/creation.ts";
 * const { leaves, def } = flatten({ a: tensor([1]) });
 * unflatten(def, leaves); // { a: Tensor }
 * ```
 */
export function unflatten<T = unknown>(def: TreeDef, leaves: readonly unknown[]): T {
  let i = 0;
  const go = (d: TreeDef): unknown => {
    switch (d.kind) {
      case "leaf":
        return leaves[i++];
      case "static":
        return d.value;
      case "array":
        return d.children.map(go);
      case "object": {
        const o: Record<string, unknown> = {};
        d.keys.forEach((k, j) => o[k] = go(d.children[j]));
        return o;
      }
      case "node":
        return d.node.unflatten(d.aux, d.children.map(go));
    }
  };
  const out = go(def);
  if (i !== leaves.length) {
    throw new RangeError(`unflatten: structure has ${i} leaves, got ${leaves.length}`);
  }
  return out as T;
}

/**
 * Applies `f` to each leaf of `tree` (and the matching leaves of `rest`, which must have the
 * same structure).
 *
 * @example
 * ```ts
 * import { treeMap } from "./pytree.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { add } from "../ops/elementwise.ts";
 * const sum = treeMap((a, b) => add(a, b), { w: tensor([1]) }, { w: tensor([2]) });
 * ```
 */
export function treeMap<T = unknown>(
  f: (...leaves: Tensor[]) => Tensor,
  tree: T,
  ...rest: unknown[]
): T {
  const { leaves, def } = flatten(tree);
  const others = rest.map((r) => {
    const fl = flatten(r);
    if (fl.leaves.length !== leaves.length || defKey(fl.def) !== defKey(def)) {
      throw new TypeError("treeMap: trees have different structures");
    }
    return fl.leaves;
  });
  return unflatten<T>(def, leaves.map((l, i) => f(l, ...others.map((o) => o[i]))));
}

/** A string that identifies a structure (static values included). */
export function defKey(def: TreeDef): string {
  switch (def.kind) {
    case "leaf":
      return "*";
    case "static":
      return `=${staticKey(def.value)}`;
    case "array":
      return `[${def.children.map(defKey).join(",")}]`;
    case "object":
      return `{${
        def.keys.map((k, i) => `${JSON.stringify(k)}:${defKey(def.children[i])}`).join(",")
      }}`;
    case "node":
      return `${identityKey(def.node)}:${JSON.stringify(def.node.name)}(${staticKey(def.aux)})[${
        def.children.map(defKey).join(",")
      }]`;
  }
}

const identities = new WeakMap<object, number>();
let nextIdentity = 0;

/** `#n`, a number naming one object or function for as long as it lives. */
function identityKey(v: object): string {
  let id = identities.get(v);
  if (id === undefined) {
    id = nextIdentity++;
    identities.set(v, id);
  }
  return `#${id}`;
}

/**
 * The cache key of a static value: numbers, strings, booleans, null, undefined and bigints by
 * value (NaN, -0 and the infinities distinct); arrays and plain objects by their contents;
 * functions and other objects (class instances, Maps, ...) by identity, so two different
 * lambdas never share a trace. Typed arrays and symbols are refused.
 */
function staticKey(v: unknown): string {
  switch (typeof v) {
    case "number":
      return Object.is(v, -0) ? "-0" : String(v);
    case "string":
      return JSON.stringify(v);
    case "boolean":
    case "undefined":
      return String(v);
    case "bigint":
      return `${v}n`;
    case "function":
      return `fn${identityKey(v)}`;
    case "symbol":
      throw new TypeError(
        `A symbol (${String(v)}) inside a traced function's arguments cannot key a trace`,
      );
  }
  if (v === null) return "null";
  if (ArrayBuffer.isView(v)) {
    throw new TypeError(
      "A typed array inside a traced function's arguments: wrap it with tensor() so it is an input, not a constant",
    );
  }
  if (Array.isArray(v)) return `[${v.map(staticKey).join(",")}]`;
  if (isPlainObject(v)) {
    return `{${
      Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${staticKey(v[k])}`).join(",")
    }}`;
  }
  return `obj${identityKey(v as object)}`;
}

/** Shapes and dtypes of the leaves, for error messages and cache keys. */
export function leavesSignature(leaves: readonly Tensor[]): string {
  return leaves.map((l) => `${l.dtype}${fmtShape(l.shape)}`).join(";");
}
