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
  | { kind: "object"; keys: string[]; children: TreeDef[] };

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
  }
}

function staticKey(v: unknown): string {
  if (typeof v === "function") return `fn:${v.name}`;
  if (ArrayBuffer.isView(v)) {
    throw new TypeError(
      "A typed array inside a traced function's arguments: wrap it with tensor() so it is an input, not a constant",
    );
  }
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Shapes and dtypes of the leaves, for error messages and cache keys. */
export function leavesSignature(leaves: readonly Tensor[]): string {
  return leaves.map((l) => `${l.dtype}${fmtShape(l.shape)}`).join(";");
}
