/**
 * The memory plan by liveness that the compiling backends (webgpu, wasm) share: given a
 * program's steps in order and what each refers to, assigns every intermediate, output and
 * scratch buffer a slot of the backend's buffer pool (slots reused by liveness within one size
 * class), lets donated inputs hand their buffer to later values, and reports the plan as a
 * {@link MemoryReport}. The backends only turn slots into their own buffers.
 *
 * @module
 */
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
    const outs = new Set(this.outputs.map((o) => this.memOf(o)));
    const lastUse = new Map<Node, number>();
    this.steps.forEach(({ refs }, d) => {
      for (const r of refs) if (r.kind === "node") lastUse.set(this.memOf(r.node), d);
    });
    const slots: { bytes: number; input: number }[] = [];
    const free = new Map<number, number[]>();
    const slotOf = new Map<Node, number>();
    // Slots holding a value taken by `take`, for the liveness peak.
    const held = new Set<number>();
    let live = 0, livePeak = 0;
    const release = (slot: number) => {
      const bytes = slots[slot].bytes;
      if (held.delete(slot)) live -= bytes;
      let list = free.get(bytes);
      if (list === undefined) free.set(bytes, list = []);
      list.push(slot);
    };
    const take = (bytes: number): number => {
      let slot = free.get(bytes)?.pop();
      if (slot === undefined) {
        slots.push({ bytes, input: -1 });
        slot = slots.length - 1;
      }
      held.add(slot);
      live += bytes;
      livePeak = Math.max(livePeak, live);
      return slot;
    };
    // Donated inputs not needed after their last read give their buffer to later values.
    const donatedAt = new Map<number, number>();
    for (const i of donated) {
      const v = this.vars[i];
      slots.push({ bytes: tensorBytes(v), input: i });
      const slot = slots.length - 1;
      slotOf.set(v, slot);
      const last = lastUse.get(v);
      if (last === undefined) release(slot);
      else donatedAt.set(last, slot);
    }
    const scratch = new Map<string, number>();
    const source = (r: PlanRef): Source<C> => {
      if (r.kind === "errors") return { kind: "errors" };
      if (r.kind === "scratch") {
        let slot = scratch.get(r.name);
        if (slot === undefined) {
          slot = take(sizeClass(r.bytes));
          scratch.set(r.name, slot);
        }
        return { kind: "slot", slot };
      }
      const m = this.memOf(r.node);
      const c = this.consts.get(m);
      if (c !== undefined) return { kind: "const", storage: c };
      const have = slotOf.get(m);
      if (have !== undefined) return { kind: "slot", slot: have };
      const input = this.inputIndex.get(m);
      if (input !== undefined) return { kind: "input", index: input };
      if (r.write === false) {
        throw new TypeError(`Internal error: ${m.op} is read before it is written`);
      }
      const slot = take(tensorBytes(m));
      slotOf.set(m, slot);
      return { kind: "slot", slot };
    };
    const sources = this.steps.map(({ refs, kernel }, d) => {
      const src = refs.map(source);
      for (const r of refs) {
        if (r.kind !== "node") continue;
        const m = this.memOf(r.node);
        if (
          lastUse.get(m) === d && !outs.has(m) && slotOf.has(m) &&
          this.inputIndex.get(m) === undefined
        ) {
          release(slotOf.get(m)!);
          lastUse.delete(m);
        }
      }
      const donatedSlot = donatedAt.get(d);
      if (donatedSlot !== undefined) release(donatedSlot);
      // Scratch buffers live across the steps of one kernel (split-K partial sums).
      if (this.steps[d + 1]?.kernel !== kernel) {
        scratch.forEach(release);
        scratch.clear();
      }
      return src;
    });
    const outputs = this.outputs.map((o) => {
      const m = this.memOf(o);
      const input = this.inputIndex.get(m);
      if (input !== undefined && !slotOf.has(m)) {
        return { kind: "input" as const, index: input, alias: m !== o };
      }
      const c = this.consts.get(m);
      if (c !== undefined) return { kind: "const" as const, storage: c };
      let slot = slotOf.get(m);
      if (slot === undefined) {
        // An empty tensor no step writes gets a slot of its own; anything else is a bug.
        if (sizeOf(m.shape) !== 0) {
          throw new TypeError(`Internal error: output ${o.op} has no memory`);
        }
        slotOf.set(m, slot = take(sizeClass(4)));
      }
      return { kind: "slot" as const, slot };
    });
    const consumed = donated.filter((i) => slots.some((s) => s.input === i));
    const plan: MemoryPlan<C> = { sources, slots, outputs, consumed, livePeak };
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
