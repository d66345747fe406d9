/**
 * Prints a graph as readable text, one node a line.
 *
 * @module
 */
import { fmtShape } from "./dtype.ts";
import { type Node, topoSort } from "./node.ts";

function fmtParams(node: Node): string {
  if (node.op === "const") {
    const p = node.params as { uid: number };
    return ` #${p.uid}`;
  }
  if (node.op === "custom") {
    const p = node.params as { rule: { name: string; id: number }; index: number };
    return ` ${p.rule.name}#${p.rule.id} index=${p.index}`;
  }
  const entries = Object.entries(node.params);
  if (entries.length === 0) return "";
  return " " + entries.map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" ");
}

/**
 * Prints the graph reachable from `outputs`, inputs first.
 *
 * @example
 * ```ts
 * import { makeNode } from "./node.ts";
 * import { printGraph } from "./printer.ts";
 * const i = makeNode("iota", [], { shape: [3], axis: 0, dtype: "float32" });
 * console.log(printGraph([makeNode("exp", [i], {})]));
 * // %0 = iota() shape=[3] axis=0 dtype="float32" : float32[3]
 * // %1 = exp(%0) : float32[3]   <- output 0
 * ```
 */
export function printGraph(outputs: readonly Node[]): string {
  const order = topoSort(outputs);
  const names = new Map<Node, string>();
  order.forEach((n, i) => names.set(n, `%${i}`));
  return order.map((n) => {
    const args = n.inputs.map((x) => names.get(x)).join(", ");
    const outs = outputs.map((o, i) => o === n ? i : -1).filter((i) => i >= 0);
    const mark = outs.length > 0 ? `   <- output ${outs.join(",")}` : "";
    return `${names.get(n)} = ${n.op}(${args})${fmtParams(n)} : ${n.dtype}${
      fmtShape(n.shape)
    }${mark}`;
  }).join("\n");
}
