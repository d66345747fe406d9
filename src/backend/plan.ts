/**
 * The memory plan by liveness that the compiling backends (webgpu, wasm) share. `memoryOrder`
 * orders a schedule's kernels so that values die early; `MemoryPlanner`, given a program's
 * steps in that order and what each refers to, assigns every intermediate, output and scratch
 * buffer a slot of the backend's buffer pool: each value is live from the step that writes it
 * to the last that reads it, and values are placed largest first into the smallest slot free
 * over their whole interval (a slot may be of a larger size class than the value; an output
 * only takes a slot of its own size class, since the caller keeps that buffer). Donated
 * inputs hand their buffer to later values. The plan is reported as a {@link MemoryReport};
 * `COSGRAD_DEBUG=plan` prints the values live at its peak. The backends only turn slots into
 * their own buffers.
 *
 * @module
 */
import { debugEnabled } from "../_env.ts";
import { sizeOf } from "../ir/dtype.ts";
import type { Node } from "../ir/node.ts";
import type { MemoryReport } from "./storage.ts";

import { sizeClass } from "./webgpu/buffers.ts";

/** What one step refers to. */
export type PlanRef =
  /** A tensor (`write`: whether the step writes it, where the backend knows). */
  | { kind: "node"; node: Node; write?: boolean }
  /** Scratch memory, live across the consecutive steps of one kernel. */
  | { kind: "scratch"; name: string; bytes: number }
  /** The index-error words. */
  | { kind: "errors" };

/** A step of a program: its kernel (scratch lives while it stays the same) and references. */
export interface PlanStep {
  kernel: number;
  refs: readonly PlanRef[];
}

/** Where a reference's memory comes from, once planned (`C`: the backend's constant storage). */
export type Source<C> =
  | { kind: "input"; index: number }
  | { kind: "const"; storage: C }
  | { kind: "slot"; slot: number }
  | { kind: "errors" };

/** A plan for one set of donated inputs. */
export interface MemoryPlan<C> {
  /** Per step, the source of each reference. */
  sources: Source<C>[][];
  /** Size class of each slot, and the donated input it starts from (or -1 for the pool). */
  slots: { bytes: number; input: number }[];
  /** Per output: how to build its storage. */
  outputs: (
    | { kind: "input"; index: number; alias: boolean }
    | { kind: "const"; storage: C }
    | { kind: "slot"; slot: number }
  )[];
  /** Donated inputs whose buffer the plan reuses. */
  consumed: number[];
  /** The most bytes of slots holding live values (not yet-unread donated inputs) at once. */
  livePeak: number;
}

/** A value the plan gives memory: a tensor or scratch, live from step `first` to `last`. */
interface Value {
  bytes: number;
  first: number;
  last: number;
  node?: Node;
  label?: string;
}

/** The plan as text (`COSGRAD_DEBUG=plan`): its slots, and the values live at its peak. */
function describePlan(
  values: readonly Value[],
  slotOf: readonly number[],
  slots: readonly { bytes: number; input: number }[],
  delta: readonly number[],
): string {
  const mib = (b: number) => `${(b / 2 ** 20).toFixed(2)} MiB`;
  let live = 0, peak = 0, at = 0;
  delta.forEach((x, d) => {
    live += x;
    if (live > peak) [peak, at] = [live, d];
  });
  const name = (v: Value) =>
    v.node === undefined ? `scratch ${v.label}` : `${v.node.op}[${v.node.shape}] #${v.node.id}`;
  const pool = slots.filter((s) => s.input < 0);
  const lines = [
    `memory plan: ${values.length} values in ${slots.length} slots (${pool.length} from the pool, ${
      mib(pool.reduce((a, s) => a + s.bytes, 0))
    }); live peak ${mib(peak)} at step ${at} of ${delta.length - 2}:`,
  ];
  values
    .map((v, i) => ({ v, slot: slotOf[i] }))
    .filter(({ v }) => v.first <= at && at <= v.last)
    .sort((a, b) => b.v.bytes - a.v.bytes)
    .forEach(({ v, slot }) => {
      const last = v.last === delta.length - 2 ? "end" : v.last;
      lines.push(`  ${mib(v.bytes)} ${name(v)} steps ${v.first}..${last}, slot ${slot}`);
    });
  return lines.join("\n");
}

/** Bytes of a tensor's buffer (its size class; empty tensors take 4 bytes). */
function tensorBytes(n: Node): number {
  return sizeClass(Math.max(4, sizeOf(n.shape) * 4));
}

/**
 * Plans the memory of one program's steps.
 *
 * @example
 * ```ts
 * import { makeNode } from "../ir/node.ts";
 * import { MemoryPlanner } from "./plan.ts";
 * const x = makeNode("var", [], { id: "x", shape: [256], dtype: "float32" });
 * const y = makeNode("exp", [x], {});
 * // Constants are numbers of bytes here (a backend passes its storages).
 * const planner = new MemoryPlanner<number>(
 *   [x], [y], new Map(), new Map(),
 *   [{ kernel: 0, refs: [{ kind: "node", node: x }, { kind: "node", node: y, write: true }] }],
 *   { bytes: (c) => c, key: String },
 * );
 * planner.memory().intermediateBytes; // 1024: y's buffer
 * ```
 */
export class MemoryPlanner<C> {
  private readonly plans = new Map<string, MemoryPlan<C>>();
  private readonly inputIndex = new Map<Node, number>();

  constructor(
    private readonly vars: readonly Node<"var">[],
    private readonly outputs: readonly Node[],
    private readonly alias: ReadonlyMap<Node, Node>,
    private readonly consts: ReadonlyMap<Node, C>,
    private readonly steps: readonly PlanStep[],
    /** The bytes of a constant's storage, and a key naming its buffer (shared buffers once). */
    private readonly constInfo: { bytes: (c: C) => number; key: (c: C) => string },
  ) {
    vars.forEach((v, i) => this.inputIndex.set(v, i));
  }

  private memOf(n: Node): Node {
    return this.alias.get(n) ?? n;
  }

  /** The plan for a set of reusable donated inputs (ascending; see {@link reusable}). */
  plan(donated: readonly number[]): MemoryPlan<C> {
    const key = donated.join(",");
    const have = this.plans.get(key);
    if (have !== undefined) return have;
    const end = this.steps.length;
    const outs = new Set(this.outputs.map((o) => this.memOf(o)));
    // 1. Every value the plan holds (intermediates, outputs, scratch) and its live interval
    // [first, last] in steps, inclusive: a step never writes a value into the memory of one it
    // reads.
    const values: Value[] = [];
    const valueOf = new Map<Node, number>();
    const slots: { bytes: number; input: number }[] = [];
    /** Occupied intervals of each slot. */
    const busy: [number, number][][] = [];
    const donatedSlot = new Map<Node, number>();
    for (const i of donated) {
      const v = this.vars[i];
      donatedSlot.set(v, slots.length);
      slots.push({ bytes: tensorBytes(v), input: i });
      busy.push([]);
    }
    /** Last read of each donated input still unread. */
    const donatedLast = new Map<number, number>();
    let scratch = new Map<string, number>();
    const refValues = this.steps.map(({ refs, kernel }, d) => {
      const ids = refs.map((r): number => {
        if (r.kind === "errors") return -1;
        if (r.kind === "scratch") {
          let id = scratch.get(r.name);
          if (id === undefined) {
            id = values.length;
            values.push({ bytes: sizeClass(r.bytes), first: d, last: d, label: r.name });
            scratch.set(r.name, id);
          }
          return id;
        }
        const m = this.memOf(r.node);
        if (this.consts.has(m)) return -1;
        const ds = donatedSlot.get(m);
        if (ds !== undefined) {
          donatedLast.set(ds, d);
          return -1;
        }
        if (this.inputIndex.has(m)) return -1;
        let id = valueOf.get(m);
        if (id === undefined) {
          if (r.write === false) {
            throw new TypeError(`Internal error: ${m.op} is read before it is written`);
          }
          id = values.length;
          values.push({ bytes: tensorBytes(m), first: d, last: d, node: m });
          valueOf.set(m, id);
        }
        values[id].last = outs.has(m) ? end : d;
        return id;
      });
      // Scratch buffers live across the steps of one kernel (split-K partial sums).
      if (this.steps[d + 1]?.kernel !== kernel) {
        for (const id of scratch.values()) values[id].last = d;
        scratch = new Map();
      }
      return ids;
    });
    // An empty output no step writes gets a slot of its own; anything else is a bug.
    for (const o of this.outputs) {
      const m = this.memOf(o);
      if (
        valueOf.has(m) || this.consts.has(m) || donatedSlot.has(m) || this.inputIndex.has(m)
      ) continue;
      if (sizeOf(m.shape) !== 0) {
        throw new TypeError(`Internal error: output ${o.op} has no memory`);
      }
      valueOf.set(m, values.length);
      values.push({ bytes: sizeClass(4), first: end, last: end, node: m });
    }
    // Donated inputs hold their slot until their last read.
    slots.forEach((_, s) => busy[s].push([-1, donatedLast.get(s) ?? -1]));
    // 2. Slots: largest values first, each into the smallest free slot that holds it (an output
    // only into one of its own size class: the caller keeps that buffer), else a new slot.
    const order = values.map((_, i) => i).sort((a, b) =>
      values[b].bytes - values[a].bytes || values[a].first - values[b].first
    );
    const slotOfValue = new Array<number>(values.length);
    for (const id of order) {
      const v = values[id];
      const output = v.node !== undefined && outs.has(v.node);
      let best = -1;
      slots.forEach((s, k) => {
        if (s.bytes < v.bytes || (output && s.bytes !== v.bytes)) return;
        if (best >= 0 && slots[best].bytes <= s.bytes) return;
        if (busy[k].some(([a, b]) => a <= v.last && v.first <= b)) return;
        best = k;
      });
      if (best < 0) {
        best = slots.length;
        slots.push({ bytes: v.bytes, input: -1 });
        busy.push([]);
      }
      busy[best].push([v.first, v.last]);
      slotOfValue[id] = best;
    }
    // 3. The liveness peak: bytes of the values live at each step.
    const delta = new Array<number>(end + 2).fill(0);
    for (const v of values) {
      delta[v.first] += v.bytes;
      delta[v.last + 1] -= v.bytes;
    }
    let live = 0, livePeak = 0;
    for (const x of delta) livePeak = Math.max(livePeak, live += x);
    const sources = this.steps.map(({ refs }, d) =>
      refs.map((r, i): Source<C> => {
        if (r.kind === "errors") return { kind: "errors" };
        const id = refValues[d][i];
        if (id >= 0) return { kind: "slot", slot: slotOfValue[id] };
        const m = this.memOf((r as { node: Node }).node);
        const c = this.consts.get(m);
        if (c !== undefined) return { kind: "const", storage: c };
        const ds = donatedSlot.get(m);
        if (ds !== undefined) return { kind: "slot", slot: ds };
        return { kind: "input", index: this.inputIndex.get(m)! };
      })
    );
    const outputs = this.outputs.map((o) => {
      const m = this.memOf(o);
      const input = this.inputIndex.get(m);
      if (input !== undefined) {
        return { kind: "input" as const, index: input, alias: m !== o };
      }
      const c = this.consts.get(m);
      if (c !== undefined) return { kind: "const" as const, storage: c };
      return { kind: "slot" as const, slot: slotOfValue[valueOf.get(m)!] };
    });
    const consumed = donated.filter((i) => slots.some((s) => s.input === i));
    const plan: MemoryPlan<C> = { sources, slots, outputs, consumed, livePeak };
    if (debugEnabled("plan")) console.log(describePlan(values, slotOfValue, slots, delta));
    this.plans.set(key, plan);
    return plan;
  }

  /** The donated inputs whose buffer a plan may reuse (not outputs, not `shared`), ascending. */
  reusable(donated: ReadonlySet<number> | undefined, shared: (i: number) => boolean): number[] {
    const outMem = new Set(this.outputs.map((o) => this.memOf(o)));
    const reusable: number[] = [];
    for (const i of donated ?? []) {
      if (!Number.isInteger(i) || i < 0 || i >= this.vars.length) {
        throw new RangeError(`Donated input ${i} is out of range [0, ${this.vars.length})`);
      }
      if (!shared(i) && !outMem.has(this.vars[i])) reusable.push(i);
    }
    return reusable.sort((a, b) => a - b);
  }

  /**
   * The memory of a run with the inputs at positions in `donated` given up (and not shared
   * with another input), from the plan `run` uses for that donation set: see
   * {@link MemoryReport} for what each number counts. Nothing runs.
   */
  memory(donated?: ReadonlySet<number>): MemoryReport {
    const plan = this.plan(this.reusable(donated, () => false));
    const inputBytes = this.vars.map(tensorBytes);
    const reused = new Set(plan.consumed);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const donatedBytes = sum(inputBytes.filter((_, i) => reused.has(i)));
    const keptBytes = sum(inputBytes.filter((_, i) => !reused.has(i)));
    const constBytes = sum([...new Set(this.consts.values())].map(this.constInfo.bytes));
    const pool = plan.slots.filter((s) => s.input < 0);
    const intermediateBytes = sum(pool.map((s) => s.bytes));
    const outBuffers = new Map<string, number>();
    for (const o of plan.outputs) {
      if (o.kind === "slot") outBuffers.set(`s${o.slot}`, plan.slots[o.slot].bytes);
      else if (o.kind === "input") outBuffers.set(`i${o.index}`, inputBytes[o.index]);
      else outBuffers.set(`c${this.constInfo.key(o.storage)}`, this.constInfo.bytes(o.storage));
    }
    return {
      inputBytes,
      reusedInputs: [...plan.consumed],
      donatedBytes,
      keptBytes,
      constBytes,
      intermediateBytes,
      liveIntermediateBytes: plan.livePeak,
      largestSlotBytes: Math.max(0, ...pool.map((s) => s.bytes)),
      outputBytes: sum([...outBuffers.values()]),
      peakBytes: donatedBytes + keptBytes + constBytes + intermediateBytes,
    };
  }
}

/** A unit of work to order (one kernel): the memory it writes and reads. */
export interface OrderUnit {
  /** Memory it writes. */
  writes: readonly Node[];
  /** Memory it reads. */
  reads: readonly Node[];
  /** Memory that must be written before it runs although it does not read it. */
  after?: readonly Node[];
}

/**
 * An order of `units` (given in a valid order, each after the units writing what it reads or
 * waits `after`) that keeps less memory live: a unit that frees at least as many bytes as it
 * writes (it is the last reader of values no later unit needs) runs as soon as it can, the one
 * freeing most first; otherwise the first unit not yet run in the given order runs. Values
 * `keep` holds (outputs) are never freed. Returns the units' indices in the new order.
 *
 * Reverse-mode graphs are the case in point: a weight gradient that is the last reader of an
 * activation runs as soon as its cotangent exists, not when the walk from the outputs reaches
 * its parameter, and a rematerialized forward (`checkpoint`) is not held across the backward
 * passes of other stages.
 *
 * @example
 * ```ts
 * import { makeNode } from "../ir/node.ts";
 * import { memoryOrder } from "./plan.ts";
 * const x = makeNode("var", [], { id: "x", shape: [1024], dtype: "float32" });
 * const a = makeNode("exp", [x], {}), b = makeNode("sin", [x], {});
 * const sa = makeNode("sum", [a], { axes: [0] }), sb = makeNode("sum", [b], { axes: [0] });
 * // Given order: a, b, sum(a), sum(b) holds a and b at once; sum(a) frees a first.
 * memoryOrder([
 *   { writes: [a], reads: [x] },
 *   { writes: [b], reads: [x] },
 *   { writes: [sa], reads: [a] },
 *   { writes: [sb], reads: [b] },
 * ], (n) => n === sa || n === sb); // [0, 2, 1, 3]
 * ```
 */
export function memoryOrder(units: readonly OrderUnit[], keep: (n: Node) => boolean): number[] {
  const producer = new Map<Node, number>();
  units.forEach((u, i) => u.writes.forEach((n) => producer.set(n, i)));
  const pending = units.map(() => 0);
  const next: number[][] = units.map(() => []);
  const readers = new Map<Node, number>();
  const reads = units.map((u) => [...new Set(u.reads)]);
  units.forEach((u, i) => {
    const preds = new Set<number>();
    for (const n of [...u.reads, ...(u.after ?? [])]) {
      const p = producer.get(n);
      if (p !== undefined && p !== i) preds.add(p);
    }
    for (const p of preds) {
      if (p > i) {
        throw new TypeError(`Internal error: unit ${i} reads what unit ${p} writes later`);
      }
      next[p].push(i);
    }
    pending[i] = preds.size;
    for (const n of reads[i]) readers.set(n, (readers.get(n) ?? 0) + 1);
  });
  const written = units.map((u) => u.writes.reduce((a, n) => a + tensorBytes(n), 0));
  const gain = (i: number) => {
    let freed = 0;
    for (const n of reads[i]) {
      if (readers.get(n) === 1 && producer.has(n) && !keep(n)) freed += tensorBytes(n);
    }
    return freed > 0 && freed >= written[i] ? freed - written[i] : -1;
  };
  const ready = new Set<number>();
  units.forEach((_, i) => pending[i] === 0 && ready.add(i));
  const done = units.map(() => false);
  const out: number[] = [];
  let first = 0;
  while (out.length < units.length) {
    let pick = -1, best = -1;
    for (const i of ready) {
      const g = gain(i);
      if (g >= 0 && (g > best || (g === best && i < pick))) [pick, best] = [i, g];
    }
    if (best < 0) {
      while (done[first]) first++;
      pick = first;
    }
    ready.delete(pick);
    done[pick] = true;
    out.push(pick);
    for (const n of reads[pick]) readers.set(n, readers.get(n)! - 1);
    for (const s of next[pick]) if (--pending[s] === 0) ready.add(s);
  }
  return out;
}
