/**
 * Named graph passes. Common-subexpression elimination is hash-consing itself (building a
 * node twice gives the same node) and dead-code elimination is reachability from the
 * outputs, so the passes here are the rewrites that remain; `COSGRAD_DEBUG=ir` prints the
 * graph after each.
 *
 * @module
 */
import { debugEnabled } from "../_env.ts";
import { makeNode, type Node, topoSort } from "../ir/node.ts";
import { printGraph } from "../ir/printer.ts";
import { isElementwise } from "../ir/primitives.ts";
import type { TypedArray } from "../ir/dtype.ts";
import { CPU_RULES } from "../backend/cpu/interpreter.ts";

/** A named rewrite of a whole graph. */
export interface Pass {
  name: string;
  run(outputs: readonly Node[]): Node[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** An elementwise op on numbers only becomes one number (computed as the CPU would). */
function foldScalars(node: Node): Node {
  if (!isElementwise(node.op) || node.shape.length !== 0) return node;
  if (!node.inputs.every((x) => x.op === "scalar")) return node;
  const args = node.inputs.map((x) => {
    const p = x.params as { value: number };
    return (x.dtype === "int32" ? Int32Array : x.dtype === "float32" ? Float32Array : Float64Array)
      .of(p.value) as TypedArray;
  });
  const rule = CPU_RULES[node.op] as (a: TypedArray[], n: Node) => TypedArray;
  return makeNode("scalar", [], { value: rule(args, node)[0], dtype: node.dtype });
}

/** Rewrites one node whose inputs are already simplified; returns it or a simpler node. */
function simplifyNode(node: Node): Node {
  node = foldScalars(node);
  const [a] = node.inputs;
  switch (node.op) {
    case "reshape":
      if (sameShape(a.shape, node.shape)) return a;
      if (a.op === "reshape") return makeNode("reshape", [a.inputs[0]], { shape: [...node.shape] });
      return node;
    case "broadcast":
      if (sameShape(a.shape, node.shape)) return a;
      return node;
    case "permute": {
      const perm = (node.params as { perm: number[] }).perm;
      if (perm.every((p, i) => p === i)) return a;
      if (a.op === "permute") {
        const inner = (a.params as { perm: number[] }).perm;
        return simplifyNode(
          makeNode("permute", [a.inputs[0]], { perm: perm.map((p) => inner[p]) }),
        );
      }
      return node;
    }
    case "cast":
      return a.dtype === node.dtype ? a : node;
    case "neg":
      return a.op === "neg" ? a.inputs[0] : node;
    case "stopGradient":
      return a;
    case "custom":
      // A user-given derivative matters only to autodiff; a barrier stays (remat).
      return (node.params as { rule: { kind: string } }).rule.kind === "barrier" ? node : a;
    case "sum":
    case "reduceMax": {
      const axes = (node.params as { axes: number[] }).axes;
      return axes.every((ax) => a.shape[ax] === 1) ? a : node;
    }
    default:
      return node;
  }
}

/**
 * Removes identity reshapes, broadcasts, permutes and casts, merges chains of them, and folds
 * arithmetic on numbers into one number.
 */
export const simplify: Pass = {
  name: "simplify",
  run(outputs) {
    const done = new Map<Node, Node>();
    for (const node of topoSort(outputs)) {
      let changed = false;
      const inputs = node.inputs.map((x) => {
        const y = done.get(x)!;
        if (y !== x) changed = true;
        return y;
      });
      const rebuilt = changed ? makeNode(node.op, inputs, node.params as never) : node;
      done.set(node, simplifyNode(rebuilt));
    }
    return outputs.map((o) => done.get(o)!);
  },
};

/** The passes every compiled graph goes through, in order. */
export const PASSES: readonly Pass[] = [simplify];

/**
 * Runs `passes` over the graph, printing it after each when `COSGRAD_DEBUG=ir`.
 *
 * @example
 * ```ts
 * import { makeNode } from "../ir/node.ts";
 * import { runPasses } from "./passes.ts";
 * const i = makeNode("iota", [], { shape: [3], axis: 0, dtype: "float32" });
 * const [y] = runPasses([makeNode("reshape", [i], { shape: [3] })]);
 * y === i; // true
 * ```
 */
export function runPasses(outputs: readonly Node[], passes: readonly Pass[] = PASSES): Node[] {
  const debug = debugEnabled("ir");
  let graph = [...outputs];
  if (debug) console.log(`== graph (${topoSort(graph).length} nodes)\n${printGraph(graph)}`);
  for (const pass of passes) {
    graph = pass.run(graph);
    if (debug) {
      console.log(`== after ${pass.name} (${topoSort(graph).length} nodes)\n${printGraph(graph)}`);
    }
  }
  return graph;
}
