/**
 * Whole-graph helpers: substitution of nodes (used by the transforms and the compiler).
 *
 * @module
 */
import { makeNode, type Node, topoSort } from "./node.ts";

/**
 * Rebuilds `outputs` with the nodes of `map` replaced, sharing every untouched subgraph.
 *
 * @example
 * ```ts
 * import { makeNode } from "./node.ts";
 * import { substitute } from "./graph.ts";
 * const v = makeNode("var", [], { id: "x", shape: [2], dtype: "float32" });
 * const i = makeNode("iota", [], { shape: [2], axis: 0, dtype: "float32" });
 * const [y] = substitute([makeNode("exp", [v], {})], new Map([[v, i]]));
 * y.inputs[0] === i; // true
 * ```
 */
export function substitute(outputs: readonly Node[], map: ReadonlyMap<Node, Node>): Node[] {
  if (map.size === 0) return [...outputs];
  const done = new Map<Node, Node>(map);
  for (const node of topoSort(outputs)) {
    if (done.has(node)) continue;
    let changed = false;
    const inputs = node.inputs.map((x) => {
      const y = done.get(x) ?? x;
      if (y !== x) changed = true;
      return y;
    });
    done.set(node, changed ? makeNode(node.op, inputs, node.params as never) : node);
  }
  return outputs.map((o) => done.get(o)!);
}
