/**
 * Scheduling: which nodes get memory, and which kernels compute them.
 *
 * Every chain of elementwise and movement ops is inlined into the kernel of the node that
 * consumes it; a node gets memory ("is realized") when it is an output, a loop (reduction,
 * scatter-add, convolution) or a matrix product, an operand a tiled kernel must read from
 * memory, or a value worth sharing between several kernels. A reduction or matrix product
 * whose only consumer is one elementwise chain of its own shape is fused into that chain's
 * kernel (the chain becomes the kernel's epilogue). Sums over the same domain of which none
 * depends on another run as one kernel with one accumulator each (`siblings.ts`), the graph's
 * order rearranged so they are adjacent. Kernels never bind more storage buffers
 * than the device allows: a kernel over the limit gets part of its inputs computed first, and
 * a concatenation of more inputs than one kernel can bind becomes a tree of partial
 * concatenations, each its own kernel (the original node then shares the memory of the tree's
 * root, as a realized reshape shares its input's).
 *
 * @module
 */
import { sizeOf } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import { makeNode, topoSort } from "../../ir/node.ts";
import { LOWERING, type LoweringKind } from "../../kernel/lowering.ts";
import type { PrimParams } from "../../ir/primitives.ts";
import { memoryOrder } from "../plan.ts";
import { contractOrder, siblingGroups } from "./siblings.ts";

/** How a matrix product reads its operands. */
export interface GemmOperands {
  /** Memory holding A (a realized node or input). */
  a: Node;
  /** Memory holding B. */
  b: Node;
  /** A is stored `[k, m]`. */
  transA: boolean;
  /** B is stored `[n, k]`. */
  transB: boolean;
  /** One A for every batch entry. */
  broadcastA: boolean;
  /** One B for every batch entry. */
  broadcastB: boolean;
  /** Number of products. */
  batch: number;
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** Reduction length. */
  k: number;
}

/** One kernel (or, for a split-K product, one short sequence of dispatches). */
export interface Kernel {
  /**
   * `map`: one thread per element; `loop`: a loop per element; `gemm`: a tiled product;
   * `zero`: an output of zeros no kernel reads (cleared by the command encoder, no shader).
   */
  kind: "map" | "loop" | "gemm" | "zero";
  /** The shape of every node the kernel writes. */
  shape: readonly number[];
  /** Nodes written, in order. */
  roots: Node[];
  /** The loop or product computed first; either a root or fused into `roots[0]`. */
  core: Node | null;
  /**
   * Sibling sums computed together (see `siblings.ts`): one per root, `cores[i]` being
   * `roots[i]`; absent for a kernel of one core.
   */
  cores?: Node[];
  /** Operands of a matrix product. */
  gemm?: GemmOperands;
  /** Memory the kernel reads (inputs and realized nodes, after aliasing). */
  reads: Node[];
  /** Whether the kernel reports out-of-range indices (gather, scatter-add). */
  checksRange: boolean;
  /**
   * Memory that must be written before the kernel runs although it reads none of it: the
   * ordering inputs of a rematerialization barrier that shares its input's memory.
   */
  after?: Node[];
}

/**
 * A kernel's name in profiles and generated code: kind, fused core, roots, shape.
 *
 * @example
 * ```ts ignore
 * kernelName(k); // e.g. "map:add+relu[2,3]"
 * ```
 */
export function kernelName(k: Kernel): string {
  const core = k.core !== null && !k.roots.includes(k.core) ? `${k.core.op}+` : "";
  return `${k.kind}:${core}${k.roots.map((r) => r.op).join("+")}[${k.shape.join(",")}]`;
}

/** The schedule of a graph. */
export interface Schedule {
  /** The graph in topological order. */
  order: Node[];
  /** Nodes with memory, other than inputs. */
  realized: Set<Node>;
  /**
   * A realized reshape shares the memory of the node given here, and so does a concatenation
   * too wide for one kernel (the root of the tree of partial concatenations computing it).
   */
  alias: Map<Node, Node>;
  /** Kernels in execution order. */
  kernels: Kernel[];
}

/** Options of {@link schedule}. */
export interface ScheduleOptions {
  /** Storage buffers one kernel may bind (the device limit). */
  maxBindings: number;
  /**
   * Bindings the memory of `n` takes (more than one for a tensor split across bindings, see
   * `split.ts`); 1 when absent.
   */
  bindingsOf?: (n: Node) => number;
}

/** Whether `n` is a rematerialization barrier (an identity the passes keep; `checkpoint`). */
function isBarrier(n: Node): boolean {
  return n.op === "custom" && (n.params as PrimParams["custom"]).rule.kind === "barrier";
}

function kindOf(n: Node): LoweringKind {
  return LOWERING[n.op].kind;
}

function swapsLastTwo(perm: readonly number[]): boolean {
  const r = perm.length;
  return r >= 2 && perm[r - 1] === r - 2 && perm[r - 2] === r - 1 &&
    perm.slice(0, r - 2).every((p, i) => p === i);
}

/** Finds the memory a product operand can be read from, with its layout flags. */
function gemmOperand(node: Node): { base: Node; trans: boolean; bcast: boolean } {
  const r = node.shape.length;
  const last2 = (s: readonly number[]) => [s[s.length - 2], s[s.length - 1]];
  let n = node;
  let bcast = false;
  if (n.op === "broadcast" && r > 2) {
    const src = n.inputs[0];
    if (
      src.shape.slice(0, r - 2).every((d) => d === 1) &&
      last2(src.shape).join() === last2(n.shape).join()
    ) {
      bcast = true;
      n = src;
      // Strip reshapes that only add leading ones ([m, k] -> [1, m, k]).
      while (
        n.op === "reshape" && n.inputs[0].shape.length >= 2 &&
        last2(n.inputs[0].shape).join() === last2(n.shape).join()
      ) n = n.inputs[0];
    }
  }
  let trans = false;
  if (n.op === "permute" && swapsLastTwo((n.params as { perm: number[] }).perm)) {
    trans = true;
    n = n.inputs[0];
  }
  return { base: n, trans, bcast };
}

/** Relative cost and memory reads of computing `n` inline (stopping at memory). */
function inlineStats(
  n: Node,
  isMem: (n: Node) => boolean,
): { cost: number; reads: number } {
  const seen = new Set<Node>();
  const reads = new Set<Node>();
  const size = sizeOf(n.shape);
  let cost = 0;
  const stack = [n];
  while (stack.length > 0 && seen.size < 200) {
    const x = stack.pop()!;
    if (seen.has(x)) continue;
    seen.add(x);
    if (x !== n && isMem(x)) {
      // Small operands (per-channel statistics, scalars) are cache hits, not memory traffic.
      if (8 * sizeOf(x.shape) >= size) reads.add(x);
      continue;
    }
    const kind = kindOf(x);
    if (kind === "elementwise") cost += LOWERING[x.op].cost ?? 1;
    if (kind === "movement") cost += LOWERING[x.op].cost ?? 0;
    stack.push(...x.inputs);
  }
  if (stack.length > 0) cost += 100;
  return { cost, reads: reads.size };
}

/** Whether `n` is zeros: a scalar 0 reshaped or broadcast. */
function isZeros(n: Node): boolean {
  while (n.op === "reshape" || n.op === "broadcast" || n.op === "stopGradient") n = n.inputs[0];
  return n.op === "scalar" && Object.is((n.params as { value: number }).value, 0);
}

/**
 * Groups the graph of `outputs` into kernels.
 *
 * @example
 * ```ts
 * import { makeNode } from "../../ir/node.ts";
 * import { schedule } from "./schedule.ts";
 * const x = makeNode("var", [], { id: "x", shape: [4, 8], dtype: "float32" });
 * const y = makeNode("exp", [makeNode("neg", [x], {})], {});
 * const s = schedule([makeNode("sum", [y], { axes: [1] })], { maxBindings: 8 });
 * s.kernels.length; // 1: the exp and neg run inside the reduction's loop
 * ```
 */
export function schedule(outputs: readonly Node[], options: ScheduleOptions): Schedule {
  let order = topoSort(outputs);
  const users = new Map<Node, Node[]>();
  const findUsers = () => {
    users.clear();
    for (const n of order) {
      for (const x of new Set(n.inputs)) {
        let list = users.get(x);
        if (list === undefined) users.set(x, list = []);
        list.push(n);
      }
    }
  };
  findUsers();
  /** Concatenations too wide for one kernel, and the equal node whose memory they share. */
  const replaced = new Map<Node, Node>();
  const outSet = new Set(outputs);
  const realized = new Set<Node>();
  /** Nodes that must keep their own memory (outputs, operands of tiled kernels). */
  const pinned = new Set<Node>();
  const isInput = (n: Node) => kindOf(n) === "input";
  const realize = (n: Node, pin: boolean) => {
    if (isInput(n)) return;
    realized.add(n);
    if (pin) pinned.add(n);
  };
  for (const o of outputs) realize(o, true);
  const gemms = new Map<Node, GemmOperands>();
  for (const n of order) {
    const kind = kindOf(n);
    if (kind === "loop" || kind === "gemm") realize(n, false);
    if (kind === "gemm" && n.op !== "matmul") {
      // Convolutions read their operands from memory.
      for (const x of n.inputs) realize(x, true);
    }
    if (n.op === "matmul") {
      const [a, b] = n.inputs.map(gemmOperand);
      realize(a.base, true);
      realize(b.base, true);
      const r = n.shape.length;
      const m = n.shape[r - 2], nn = n.shape[r - 1], k = n.inputs[0].shape[r - 1];
      gemms.set(n, {
        a: a.base,
        b: b.base,
        transA: a.trans,
        transB: b.trans,
        broadcastA: a.bcast,
        broadcastB: b.bcast,
        batch: n.shape.slice(0, r - 2).reduce((x, y) => x * y, 1),
        m,
        n: nn,
        k,
      });
    }
    // Scatter-add reads each input element many times: give its inputs memory.
    if (n.op === "scatterAdd") {
      for (const x of n.inputs) realize(x, true);
    }
  }
  const isMem = (n: Node) => isInput(n) || realized.has(n);
  // Sibling sums: one kernel each group, its members adjacent in the order.
  let groupOf = siblingGroups(
    order,
    order.filter((n) => n.op === "sum" && realized.has(n) && n.dtype === "float32"),
  );
  const contracted = contractOrder(order, groupOf);
  if (contracted === null) groupOf = new Map();
  else order = contracted;
  findUsers();
  /** The node standing for the kernel that computes `n` (a group's first member). */
  const unit = (n: Node): Node => groupOf.get(n)?.[0] ?? n;
  const weight = options.bindingsOf ?? (() => 1);
  const weigh = (nodes: readonly Node[]) => nodes.reduce((a, n) => a + weight(n), 0);

  // Kernels that would compute `n` inline: the memory nodes reached upward through
  // non-memory nodes (a product reads its operands from memory, never inline). With
  // `realizeShared`, a costly node that several kernels would recompute is realized instead
  // (it becomes memory, so the nodes above it see it as a kernel of its own).
  const inlinedBy = (realizeShared = false): Map<Node, Set<Node>> => {
    const roots = new Map<Node, Set<Node>>();
    for (let i = order.length - 1; i >= 0; i--) {
      const n = order[i];
      if (isMem(n)) continue;
      const s = new Set<Node>();
      for (const u of users.get(n) ?? []) {
        if (isMem(u)) {
          if (kindOf(u) !== "gemm") s.add(unit(u));
        } else {
          for (const r of roots.get(u) ?? []) s.add(r);
        }
      }
      const kind = kindOf(n);
      if (realizeShared && s.size >= 2 && (kind === "elementwise" || kind === "movement")) {
        const { cost, reads } = inlineStats(n, isMem);
        if (reads >= 3 || (reads === 2 && s.size >= 3) || cost >= 32) {
          realize(n, false);
          continue;
        }
      }
      roots.set(n, s);
    }
    return roots;
  };

  // Shared values: realize a costly node that several kernels would otherwise recompute.
  inlinedBy(true);

  for (let iter = 0;; iter++) {
    const kernels = buildKernels();
    const over = kernels.find((k) => bindingsOf(k) > options.maxBindings);
    if (over === undefined) {
      // Kernels in an order that frees memory early (weight gradients as soon as their
      // cotangent exists, rematerialized values just before their backward use).
      const alias = aliases();
      const keep = new Set(outputs.map((o) => alias.get(o) ?? o));
      const units = kernels.map((k) => ({ writes: k.roots, reads: k.reads, after: k.after }));
      const ordered = memoryOrder(units, (n) => keep.has(n)).map((i) => kernels[i]);
      return { order, realized, alias, kernels: ordered };
    }
    if (iter > order.length) {
      throw new RangeError(
        `Cannot fit a kernel into ${options.maxBindings} storage bindings (device limit)`,
      );
    }
    splitKernel(over);
  }

  function bindingsOf(k: Kernel): number {
    return weigh(k.reads) + weigh(k.roots) + (k.checksRange ? 1 : 0);
  }

  function aliases(): Map<Node, Node> {
    const alias = new Map<Node, Node>();
    for (const n of order) {
      // The replacement precedes `n` in `order`, so its own alias is known.
      const r = replaced.get(n);
      if (r !== undefined) alias.set(n, alias.get(r) ?? r);
      else if (
        realized.has(n) && (n.op === "reshape" || isBarrier(n)) && isMem(n.inputs[0])
      ) {
        alias.set(n, alias.get(n.inputs[0]) ?? n.inputs[0]);
      }
    }
    return alias;
  }

  /**
   * Memory nodes read by computing `from` inline, whether range checks occur, and the memory a
   * barrier read through its input's memory waits for (`after`).
   */
  function readsOf(from: readonly Node[], own: ReadonlySet<Node>): {
    reads: Node[];
    checksRange: boolean;
    nodes: Node[];
    after: Node[];
  } {
    const alias = aliases();
    const reads = new Set<Node>();
    const after = new Set<Node>();
    const seen = new Set<Node>();
    const nodes: Node[] = [];
    let checksRange = false;
    const read = (m: Node) => {
      const base = alias.get(m) ?? m;
      reads.add(base);
      // A barrier sharing its input's memory has no kernel: what it waits for orders the
      // kernels that read it.
      if (base !== m && isBarrier(m)) {
        const gate = readsOf(m.inputs.slice(1), new Set());
        for (const g of [...gate.reads, ...gate.after]) after.add(g);
      }
    };
    const stack = [...from];
    while (stack.length > 0) {
      const x = stack.pop()!;
      if (seen.has(x)) continue;
      seen.add(x);
      if (!own.has(x) && isMem(x)) {
        read(x);
        continue;
      }
      nodes.push(x);
      if (x.op === "gather" || x.op === "scatterAdd") checksRange = true;
      if (kindOf(x) === "gemm" && own.has(x)) {
        const g = gemms.get(x);
        for (const m of g === undefined ? x.inputs : [g.a, g.b]) read(m);
        continue;
      }
      stack.push(...x.inputs);
    }
    return { reads: [...reads], checksRange, nodes, after: [...after] };
  }

  /** The single elementwise root fusing `core` as its prologue, or null. */
  function fusionTarget(core: Node, roots: Map<Node, Set<Node>>): Node | null {
    if (pinned.has(core) || outSet.has(core)) return null;
    const targets = new Set<Node>();
    const stack = [...(users.get(core) ?? [])];
    const seen = new Set<Node>();
    while (stack.length > 0) {
      const u = stack.pop()!;
      if (seen.has(u)) continue;
      seen.add(u);
      // Elementwise ops and reshapes keep the flat index, so the core's value is `acc`.
      if (kindOf(u) !== "elementwise" && u.op !== "reshape") return null;
      if (isMem(u)) targets.add(u);
      else {
        // Every kernel computing u inline must be reached the same way.
        for (const r of roots.get(u) ?? []) {
          if (kindOf(r) !== "elementwise" && r.op !== "reshape") return null;
        }
        stack.push(...(users.get(u) ?? []));
      }
    }
    if (targets.size !== 1) return null;
    const [k] = targets;
    return k.op !== "reshape" ? k : null;
  }

  function buildKernels(): Kernel[] {
    const roots = inlinedBy();
    const alias = aliases();
    const fusedInto = new Map<Node, Node>();
    const claimed = new Set<Node>();
    for (const n of order) {
      const kind = kindOf(n);
      const fusible = (kind === "loop" && (n.op === "sum" || n.op === "reduceMax")) ||
        kind === "gemm";
      // A sibling writes its sum as is (an epilogue could need another sibling's result).
      if (!fusible || !realized.has(n) || groupOf.has(n)) continue;
      const k = fusionTarget(n, roots);
      if (k === null || claimed.has(k)) continue;
      if (kind === "gemm") {
        // The tiled kernel's epilogue binds extra inputs as plain f32 arrays and cannot
        // report index errors.
        // Tiled kernels bind their epilogue inputs whole: none may be split.
        const { reads, checksRange } = readsOf([k], new Set([k, n]));
        if (checksRange || reads.length + 3 > options.maxBindings) continue;
        if (reads.some((r) => weight(r) > 1)) continue;
      }
      claimed.add(k);
      fusedInto.set(n, k);
    }
    const kernels: Kernel[] = [];
    for (const n of order) {
      if (!realized.has(n) || alias.has(n) || fusedInto.has(n)) continue;
      const group = groupOf.get(n);
      if (group !== undefined) {
        if (group[0] !== n) continue;
        const { reads, checksRange, after } = readsOf(group, new Set(group));
        kernels.push({
          kind: "loop",
          shape: n.shape,
          roots: [...group],
          core: n,
          cores: [...group],
          reads,
          checksRange,
          ...(after.length > 0 ? { after } : {}),
        });
        continue;
      }
      const core = [...fusedInto].find(([, k]) => k === n)?.[0] ??
        (kindOf(n) === "loop" || kindOf(n) === "gemm" ? n : null);
      const kind = core === null
        ? (isZeros(n) && !readByKernel(n) ? "zero" : "map")
        : kindOf(core) === "gemm"
        ? "gemm"
        : "loop";
      const own = new Set<Node>([n]);
      if (core !== null) own.add(core);
      const { reads, checksRange, after } = readsOf([n], own);
      kernels.push({
        kind,
        shape: n.shape,
        roots: [n],
        core,
        gemm: core !== null && kind === "gemm" ? gemms.get(core) : undefined,
        reads,
        checksRange,
        ...(after.length > 0 ? { after } : {}),
      });
    }
    return kernels;
  }

  /** Whether a kernel reads `n` from memory (inline readers or a tiled kernel's operands). */
  function readByKernel(n: Node): boolean {
    return (users.get(n)?.length ?? 0) > 0;
  }

  /** Bindings a kernel computing `n` (a root) would take. */
  function bindingsAlone(n: Node): number {
    const { reads, checksRange } = readsOf([n], new Set([n]));
    return weigh(reads) + weight(n) + (checksRange ? 1 : 0);
  }

  /**
   * Replaces a concatenation that no kernel can compute by a concatenation of partial ones,
   * each as wide as one kernel allows (inputs grouped in order, greedily, by the bindings they
   * read); false when no group would hold two inputs. A root over the limit is split again.
   */
  function splitConcat(c: Node<"concat">): boolean {
    const axis = c.params.axis;
    const parts: Node[] = [];
    let group: Node[] = [];
    const close = () => {
      if (group.length === 1) parts.push(group[0]);
      else if (group.length > 1) {
        const p = makeNode("concat", group, { axis });
        realize(p, true);
        parts.push(p);
      }
      group = [];
    };
    for (const x of c.inputs) {
      if (group.length > 0) {
        const wider = makeNode("concat", [...group, x], { axis });
        if (bindingsAlone(wider) > options.maxBindings) close();
      }
      group.push(x);
    }
    close();
    if (parts.length === c.inputs.length) return false;
    const root = makeNode("concat", parts, { axis });
    realize(c, true);
    realize(root, true);
    replaced.set(c, root);
    // The tree's new nodes go right before `c`: their inputs all precede it (a partial that
    // was already in the graph, later, moves up).
    const at = order.indexOf(c);
    const before = new Set(order.slice(0, at));
    const tree = topoSort([root]).filter((n) => !before.has(n));
    const inTree = new Set(tree);
    const after = order.slice(at).filter((n) => !inTree.has(n));
    order.splice(at, order.length - at, ...tree, ...after);
    findUsers();
    return true;
  }

  /** Realizes part of an over-wide kernel's inline graph so it binds fewer buffers. */
  function splitKernel(k: Kernel): void {
    if (k.cores !== undefined) {
      // Siblings reading too many buffers together run apart.
      for (const c of k.cores) groupOf.delete(c);
      return;
    }
    const own = new Set<Node>(k.roots);
    if (k.core !== null) own.add(k.core);
    const { nodes, reads: readNodes } = readsOf(k.roots, own);
    // A concatenation no kernel can compute becomes a tree of narrower ones.
    let widest: Node<"concat"> | null = null, widestBindings = options.maxBindings;
    for (const x of nodes) {
      if (x.op !== "concat" || replaced.has(x)) continue;
      const b = bindingsAlone(x);
      if (b > widestBindings) [widest, widestBindings] = [x as Node<"concat">, b];
    }
    if (widest !== null && splitConcat(widest)) return;
    const total = weigh(readNodes);
    let best: Node | null = null;
    // Realizing x replaces the bindings it reads by its own.
    let bestGain = 0;
    for (const x of nodes) {
      if (own.has(x) || isMem(x)) continue;
      const kind = kindOf(x);
      if (kind !== "elementwise" && kind !== "movement") continue;
      const r = weigh(readsOf([x], new Set([x])).reads);
      if (r - weight(x) > bestGain && r < total) {
        best = x;
        bestGain = r - weight(x);
      }
    }
    if (best === null) {
      // A fused core can always be given its own kernel.
      if (k.core !== null && !k.roots.includes(k.core)) {
        pinned.add(k.core);
        return;
      }
      throw new RangeError(
        `Cannot fit kernel ${k.roots.map((r) => r.op).join(",")} into ${options.maxBindings} ` +
          `storage bindings (device limit): one operation reads ${total} bindings (a tensor over ` +
          `the binding limit takes one per part)`,
      );
    }
    realize(best, false);
  }
}
