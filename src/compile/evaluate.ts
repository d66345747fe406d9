/**
 * Realizes graphs without placeholders: the leaves that hold memory become positional inputs,
 * so structurally equal graphs share one compiled program from the cache.
 *
 * @module
 */
import { makeNode, type Node, topoSort } from "../ir/node.ts";
import { substitute } from "../ir/graph.ts";
import { getBackend } from "../backend/registry.ts";
import type { Backend, Program, Storage } from "../backend/storage.ts";
import { runPasses } from "./passes.ts";

const MAX_CACHE = 2048;
/** Programs by structure (node ids are never reused, so a key names one graph). */
const cache = new Map<string, Program>();

/** The positional input placeholder `a{i}`. */
export function argVar(i: number, like: Node): Node<"var"> {
  return makeNode("var", [], { id: `a${i}`, shape: [...like.shape], dtype: like.dtype });
}

/**
 * Compiles (or finds in the cache) the program computing `outputs` from `vars` on `backend`.
 * The vars must be positional (`a0`, `a1`, ...), so the cache key is the graph itself.
 */
export function programFor(
  backend: Backend,
  vars: readonly Node<"var">[],
  outputs: readonly Node[],
): Program {
  const key = `${backend.compileKey()}|${vars.map((v) => v.id).join(",")}|${
    outputs.map((o) => o.id).join(",")
  }`;
  const hit = cache.get(key);
  if (hit !== undefined) {
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const optimized = runPasses(outputs);
  const program = backend.compile(vars, optimized);
  cache.set(key, program);
  if (cache.size > MAX_CACHE) cache.delete(cache.keys().next().value!);
  return program;
}

/**
 * Runs the graph of `outputs` (which must contain no `var`) and returns their storages.
 *
 * @example
 * ```ts
 * import { makeNode } from "../ir/node.ts";
 * import { evaluate } from "./evaluate.ts";
 * const i = makeNode("iota", [], { shape: [3], axis: 0, dtype: "float32" });
 * const [s] = evaluate([makeNode("exp", [i], {})]);
 * await s.read(); // Float32Array [1, e, e^2]
 * ```
 */
export function evaluate(outputs: readonly Node[], backend: Backend = getBackend()): Storage[] {
  const leaves: Node<"const">[] = [];
  for (const n of topoSort(outputs)) {
    if (n.op === "var") {
      throw new TypeError(
        `Cannot compute a traced value (placeholder ${
          (n.params as { id: string }).id
        }) outside its transform: return it from the function instead`,
      );
    }
    if (n.op === "const") leaves.push(n as Node<"const">);
  }
  const map = new Map<Node, Node>();
  const vars = leaves.map((leaf, i) => {
    const v = argVar(i, leaf);
    map.set(leaf, v);
    return v;
  });
  const canonical = substitute(outputs, map);
  const program = programFor(backend, vars, canonical);
  return program.run(leaves.map((l) => backend.adopt(l.params.storage as Storage)));
}
