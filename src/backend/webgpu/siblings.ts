/**
 * Sibling reductions: sums over the same domain (same input shape, same axes, same output
 * shape) of which none depends on another can run as one kernel, one accumulator each, so the
 * values they share are read and computed once. Batch normalization's backward pass has four
 * (the gradients of its scale and shift, of the variance and of the PReLU slope after it),
 * each over a whole activation.
 *
 * @module
 */
import type { Node } from "../../ir/node.ts";

/** Groups of sibling sums (each of 2 or more, in graph order), by member. */
export type SiblingGroups = Map<Node, Node[]>;

/** Accumulators one kernel may hold (workgroup memory: 16 KiB at 256 threads of 4 bytes). */
export const MAX_SIBLINGS = 8;

/**
 * Groups `candidates` (sum nodes of `order`, the graph in topological order) into sets of
 * independent siblings: a candidate joins the first earlier group of its domain none of whose
 * members it depends on.
 *
 * @example
 * ```ts
 * import { makeNode, topoSort } from "../../ir/node.ts";
 * import { siblingGroups } from "./siblings.ts";
 * const x = makeNode("var", [], { id: "x", shape: [4, 8], dtype: "float32" });
 * const a = makeNode("sum", [x], { axes: [1] });
 * const b = makeNode("sum", [makeNode("exp", [x], {})], { axes: [1] });
 * const order = topoSort([a, b]);
 * siblingGroups(order, [a, b]).get(a)?.length; // 2
 * ```
 */
export function siblingGroups(order: readonly Node[], candidates: readonly Node[]): SiblingGroups {
  const pos = new Map<Node, number>();
  order.forEach((n, i) => pos.set(n, i));
  const groups = new Map<string, Node[][]>();
  const out: SiblingGroups = new Map();
  for (const c of [...candidates].sort((a, b) => pos.get(a)! - pos.get(b)!)) {
    const key = domainKey(c);
    let list = groups.get(key);
    if (list === undefined) groups.set(key, list = []);
    const g = list.find((g) => g.length < MAX_SIBLINGS && !dependsOn(c, g, pos));
    if (g === undefined) list.push([c]);
    else g.push(c);
  }
  for (const list of groups.values()) {
    for (const g of list) if (g.length >= 2) { for (const n of g) out.set(n, g); }
  }
  return out;
}

function domainKey(n: Node): string {
  const axes = [...(n.params as { axes: number[] }).axes].sort((a, b) => a - b);
  return `${n.inputs[0].shape.join(",")}|${axes.join(",")}|${n.shape.join(",")}|${n.dtype}`;
}

/** Whether `c` is computed from a member of `group` (searching no earlier than the first). */
function dependsOn(c: Node, group: readonly Node[], pos: ReadonlyMap<Node, number>): boolean {
  const members = new Set(group);
  const floor = Math.min(...group.map((m) => pos.get(m)!));
  const seen = new Set<Node>();
  const stack = [...c.inputs];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (seen.has(x)) continue;
    seen.add(x);
    if (members.has(x)) return true;
    if ((pos.get(x) ?? -1) > floor) stack.push(...x.inputs);
  }
  return false;
}

/**
 * `order` rearranged so that the members of each group are adjacent (a group runs as one
 * kernel), keeping every node after its inputs and otherwise as close to `order` as possible;
 * null when the groups together form a cycle (a member of one group needs a member of another
 * that needs the first), in which case they cannot all be merged.
 *
 * @example
 * ```ts
 * import { makeNode, topoSort } from "../../ir/node.ts";
 * import { contractOrder, siblingGroups } from "./siblings.ts";
 * const x = makeNode("var", [], { id: "x", shape: [4, 8], dtype: "float32" });
 * const a = makeNode("sum", [x], { axes: [1] });
 * const y = makeNode("exp", [a], {});
 * const b = makeNode("sum", [makeNode("neg", [x], {})], { axes: [1] });
 * const order = topoSort([y, b]);
 * const merged = contractOrder(order, siblingGroups(order, [a, b]))!;
 * merged.indexOf(b) === merged.indexOf(a) + 1; // true
 * ```
 */
export function contractOrder(order: readonly Node[], groups: SiblingGroups): Node[] | null {
  const pos = new Map<Node, number>();
  order.forEach((n, i) => pos.set(n, i));
  const unit = (n: Node): Node => groups.get(n)?.[0] ?? n;
  const membersOf = (u: Node): readonly Node[] => groups.get(u) ?? [u];
  const succ = new Map<Node, Set<Node>>();
  const indeg = new Map<Node, number>();
  for (const n of order) {
    const u = unit(n);
    if (!indeg.has(u)) indeg.set(u, 0);
    for (const x of n.inputs) {
      const v = unit(x);
      if (v === u) continue;
      let s = succ.get(v);
      if (s === undefined) succ.set(v, s = new Set());
      if (!s.has(u)) {
        s.add(u);
        indeg.set(u, (indeg.get(u) ?? 0) + 1);
      }
    }
  }
  // Ready units by their earliest position (a binary min-heap).
  const heap: Node[] = [];
  const key = (u: Node) => pos.get(u)!;
  const push = (u: Node) => {
    heap.push(u);
    for (let i = heap.length - 1; i > 0;) {
      const p = (i - 1) >> 1;
      if (key(heap[p]) <= key(heap[i])) break;
      [heap[p], heap[i]] = [heap[i], heap[p]];
      i = p;
    }
  };
  const pop = (): Node => {
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      for (let i = 0;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < heap.length && key(heap[l]) < key(heap[m])) m = l;
        if (r < heap.length && key(heap[r]) < key(heap[m])) m = r;
        if (m === i) break;
        [heap[m], heap[i]] = [heap[i], heap[m]];
        i = m;
      }
    }
    return top;
  };
  for (const [u, d] of indeg) if (d === 0) push(u);
  const out: Node[] = [];
  while (heap.length > 0) {
    const u = pop();
    out.push(...membersOf(u));
    for (const v of succ.get(u) ?? []) {
      const d = indeg.get(v)! - 1;
      indeg.set(v, d);
      if (d === 0) push(v);
    }
  }
  return out.length === order.length ? out : null;
}
