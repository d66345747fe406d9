/**
 * A compiled wasm program: the schedule's kernels as functions of one module, a memory plan by
 * liveness (as on WebGPU), and `run`, which allocates, writes the binding tables and GEMM
 * parameters of every step into a command block in the shared memory, and hands the block to
 * the executor (the worker pool, or this thread) at once, without waiting.
 *
 * @module
 */
import { sizeOf } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import type { Binding, Kernel as KernelAst } from "../../kernel/ir.ts";
import { MATH_IMPORTS, renderWasmFunction } from "../../kernel/wasm.ts";
import { renderWgsl } from "../../kernel/wgsl.ts";
import {
  GEMM_PARAMS,
  gemmFunction,
  gemmScratchBytes,
  type GemmShape,
} from "../../kernel/wasm_gemm.ts";
import { encodeModule, FunctionBuilder } from "../../kernel/wasm_writer.ts";
import { donatedError, type MemoryReport, type Program, type Storage } from "../storage.ts";
import { sizeClass } from "../webgpu/buffers.ts";
import { type Schedule, schedule } from "../webgpu/schedule.ts";
import { type Arg, FunctionTable, generateSteps, isInput, type Ref, type Step } from "./codegen.ts";
import { BlockHandle, ERROR_WORDS, MAX_PAGES, WasmStorage } from "./memory.ts";
import type { WasmBackend } from "./wasm_backend.ts";

/** Where a step's memory comes from, once planned. */
type Source =
  | { kind: "input"; index: number }
  | { kind: "const"; storage: WasmStorage }
  | { kind: "slot"; slot: number }
  | { kind: "errors" };

interface Plan {
  /** Per step, the source of each memory it refers to (args, or a/b/c of a GEMM). */
  sources: Source[][];
  slots: { bytes: number; input: number }[];
  outputs: (
    | { kind: "input"; index: number; alias: boolean }
    | { kind: "const"; storage: WasmStorage }
    | { kind: "slot"; slot: number }
  )[];
  consumed: number[];
  livePeak: number;
}

/** Command codes of a command block (i32 words). */
export const CMD = { kernel: 0, gemm: 1 } as const;
/**
 * i32 words per command: code, function (or GEMM parameter address), binding table address (or
 * n), range (or m), and the counter of chunks claimed so far (0 when written).
 */
export const CMD_WORDS = 5;

function refsOf(step: Step): Arg[] {
  return step.kind === "kernel" ? step.args : [step.a, step.b, step.c];
}

/** A graph compiled for the wasm backend. */
export class WasmProgram implements Program {
  private readonly sched: Schedule;
  private readonly steps: { kernel: number; step: Step }[] = [];
  private readonly table = new FunctionTable();
  /** The compiled module (kernel `k<i>` functions and `gemm`). */
  readonly module: WebAssembly.Module;
  /** Scratch bytes one worker's GEMM calls need. */
  readonly gemmScratch: number;
  private readonly plans = new Map<string, Plan>();
  private readonly consts = new Map<Node, WasmStorage>();
  private readonly inputIndex = new Map<Node, number>();
  /** Compiles the graph from `vars` to `outputs`. */
  constructor(
    private readonly backend: WasmBackend,
    private readonly vars: readonly Node<"var">[],
    private readonly outputs: readonly Node[],
  ) {
    vars.forEach((v, i) => this.inputIndex.set(v, i));
    this.sched = schedule(outputs, { maxBindings: 1 << 20 });
    for (const n of this.sched.order) {
      if (n.dtype === "float64") {
        throw new TypeError(
          `${n.op} computes float64, which runs on the cpu backend (the wasm kernels compute float32): cast to float32, or use setBackend("cpu")`,
        );
      }
      if (n.op === "var" && !this.inputIndex.has(n)) {
        throw new TypeError(`Unbound variable ${(n.params as { id: string }).id}`);
      }
      if (n.op === "const") {
        this.consts.set(
          n,
          backend.adopt((n as Node<"const">).params.storage as Storage) as WasmStorage,
        );
      }
    }
    const isMem = (n: Node) => isInput(n) || this.sched.realized.has(n);
    const graph = { isMem, alias: this.sched.alias };
    this.sched.kernels.forEach((kernel, i) => {
      for (const step of generateSteps(kernel, graph, this.table)) {
        this.steps.push({ kernel: i, step });
      }
    });
    const shape = backend.gemmShape;
    this.gemmScratch = Math.max(
      0,
      ...this.steps.map(({ step }) => step.kind === "gemm" ? gemmScratchBytes(shape) : 0),
    );
    this.module = compileModule(this.table, shape, backend.heap.shared);
  }

  /** The number of steps a run executes. */
  get stepCount(): number {
    return this.steps.length;
  }

  describe(): string {
    return this.steps.map(({ step }) =>
      step.kind === "kernel"
        ? `// ${step.name}: ${step.total} outputs, function k${step.fn}\n${
          describeKernel(this.table.functions[step.fn].kernel)
        }`
        : `// ${step.name}: gemm ${step.m}x${step.n}x${step.k}${
          step.accumulate ? " (accumulate)" : ""
        }`
    ).join("\n");
  }

  private memOf(n: Node): Node {
    return this.sched.alias.get(n) ?? n;
  }

  private plan(donated: readonly number[]): Plan {
    const key = donated.join(",");
    const have = this.plans.get(key);
    if (have !== undefined) return have;
    const outs = new Set(this.outputs.map((o) => this.memOf(o)));
    const lastUse = new Map<Node, number>();
    this.steps.forEach(({ step }, d) => {
      for (const a of refsOf(step)) {
        if (a.ref.kind === "node") lastUse.set(this.memOf(a.ref.node), d);
      }
    });
    const slots: { bytes: number; input: number }[] = [];
    const free = new Map<number, number[]>();
    const slotOf = new Map<Node, number>();
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
    const donatedAt = new Map<number, number>();
    for (const i of donated) {
      const v = this.vars[i];
      slots.push({ bytes: sizeClass(Math.max(4, sizeOf(v.shape) * 4)), input: i });
      const slot = slots.length - 1;
      slotOf.set(v, slot);
      const last = lastUse.get(v);
      if (last === undefined) release(slot);
      else donatedAt.set(last, slot);
    }
    const scratch = new Map<string, number>();
    const sources = this.steps.map(({ step, kernel }, d) => {
      const src = refsOf(step).map((a) => this.source(a.ref, slotOf, take, scratch));
      for (const a of refsOf(step)) {
        if (a.ref.kind !== "node") continue;
        const m = this.memOf(a.ref.node);
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
      // An output no step writes (an empty tensor): a slot of its own.
      if (slot === undefined) slotOf.set(m, slot = take(sizeClass(4)));
      return { kind: "slot" as const, slot };
    });
    const consumed = donated.filter((i) => slots.some((s) => s.input === i));
    const plan: Plan = { sources, slots, outputs, consumed, livePeak };
    this.plans.set(key, plan);
    return plan;
  }

  private source(
    r: Ref,
    slotOf: Map<Node, number>,
    take: (bytes: number) => number,
    scratch: Map<string, number>,
  ): Source {
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
    const slot = take(sizeClass(Math.max(4, sizeOf(m.shape) * 4)));
    slotOf.set(m, slot);
    return { kind: "slot", slot };
  }

  private reusable(
    donated: ReadonlySet<number> | undefined,
    shared: (i: number) => boolean,
  ): number[] {
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

  /** The memory of a run with the inputs at positions in `donated` given up (see MemoryReport). */
  memory(donated?: ReadonlySet<number>): MemoryReport {
    const plan = this.plan(this.reusable(donated, () => false));
    const inputBytes = this.vars.map((v) => sizeClass(Math.max(4, sizeOf(v.shape) * 4)));
    const reused = new Set(plan.consumed);
    const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
    const donatedBytes = sum(inputBytes.filter((_, i) => reused.has(i)));
    const keptBytes = sum(inputBytes.filter((_, i) => !reused.has(i)));
    const constBytes = sum([...new Set(this.consts.values())].map((c) => c.handle.bytes));
    const pool = plan.slots.filter((s) => s.input < 0);
    const intermediateBytes = sum(pool.map((s) => s.bytes));
    const outBuffers = new Map<string, number>();
    for (const o of plan.outputs) {
      if (o.kind === "slot") outBuffers.set(`s${o.slot}`, plan.slots[o.slot].bytes);
      else if (o.kind === "input") outBuffers.set(`i${o.index}`, inputBytes[o.index]);
      else outBuffers.set(`c${o.storage.at}`, o.storage.handle.bytes);
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

  run(inputs: readonly Storage[], donated?: ReadonlySet<number>): Storage[] {
    const backend = this.backend;
    if (inputs.length !== this.vars.length) {
      throw new TypeError(`Expected ${this.vars.length} inputs, got ${inputs.length}`);
    }
    const ins = inputs.map((s) => {
      if (s.donated) throw donatedError();
      return backend.adopt(s) as WasmStorage;
    });
    ins.forEach((s, i) => {
      const v = this.vars[i];
      if (s.size !== sizeOf(v.shape) || s.dtype !== v.dtype) {
        throw new TypeError(
          `Input ${i} holds ${s.size} ${s.dtype} values, expected ${v.dtype}[${v.shape.join(",")}]`,
        );
      }
    });
    const reusable = this.reusable(donated, (i) => {
      const s = ins[i];
      return s.handle.storages > 1 || s.handle.moved ||
        ins.some((t, j) => j !== i && t.handle === s.handle);
    });
    const plan = this.plan(reusable);
    const heap = backend.heap;
    const addrs = plan.slots.map((s) =>
      s.input >= 0 ? ins[s.input].handle.move() : heap.alloc(s.bytes)
    );
    // The command block: commands, then binding tables and GEMM parameter blocks.
    const words = this.steps.reduce(
      (a, { step }) =>
        a + CMD_WORDS + (step.kind === "kernel" ? step.args.length : GEMM_PARAMS.length),
      0,
    );
    const block = heap.alloc(words * 4);
    const mem = heap.i32(block, words);
    let extra = this.steps.length * CMD_WORDS;
    const addrOf = (src: Source, a: Arg): number => {
      const base = src.kind === "input"
        ? ins[src.index].at
        : src.kind === "const"
        ? src.storage.at
        : src.kind === "slot"
        ? addrs[src.slot]
        : ERROR_WORDS;
      return base + a.offset;
    };
    let count = 0;
    const names: string[] = [];
    this.steps.forEach(({ step }, d) => {
      const srcs = plan.sources[d];
      const at = count * CMD_WORDS;
      if (step.kind === "kernel") {
        if (step.total === 0) return;
        mem[at] = CMD.kernel;
        mem[at + 1] = step.fn;
        mem[at + 2] = block + extra * 4;
        mem[at + 3] = step.total;
        mem[at + 4] = 0;
        step.args.forEach((a, i) => mem[extra + i] = addrOf(srcs[i], a));
        extra += step.args.length;
      } else {
        mem[at] = CMD.gemm;
        mem[at + 1] = block + extra * 4;
        mem[at + 2] = step.n;
        mem[at + 3] = step.m;
        mem[at + 4] = 0;
        const p = [
          addrOf(srcs[0], step.a),
          step.a.rs,
          step.a.cs,
          step.a.img ?? 0,
          step.a.imgStride ?? 0,
          addrOf(srcs[1], step.b),
          step.b.rs,
          step.b.cs,
          step.b.img ?? 0,
          step.b.imgStride ?? 0,
          addrOf(srcs[2], step.c),
          step.c.rs,
          step.c.img ?? 0,
          step.c.imgStride ?? 0,
          step.n,
          step.k,
          step.accumulate ? 1 : 0,
        ];
        p.forEach((v, i) => mem[extra + i] = v);
        extra += GEMM_PARAMS.length;
      }
      names.push(step.name);
      count++;
    });
    // Outputs, then every block no output holds goes back to the heap after the run.
    const handles = new Map<number, BlockHandle>();
    const result: WasmStorage[] = this.outputs.map((o, k) => {
      const out = plan.outputs[k];
      if (out.kind === "const") {
        if (out.storage.size === sizeOf(o.shape) && o.op === "const") return out.storage;
        return new WasmStorage(o.dtype, sizeOf(o.shape), out.storage.handle, backend);
      }
      if (out.kind === "input") {
        const s = ins[out.index];
        if (!out.alias) return s;
        return new WasmStorage(o.dtype, sizeOf(o.shape), s.handle, backend);
      }
      let handle = handles.get(out.slot);
      if (handle === undefined) {
        handle = new BlockHandle(addrs[out.slot], plan.slots[out.slot].bytes, heap);
        handles.set(out.slot, handle);
      }
      return new WasmStorage(o.dtype, sizeOf(o.shape), handle, backend);
    });
    const freed = plan.slots.flatMap((s, i) =>
      handles.has(i) ? [] : [{ at: addrs[i], bytes: s.bytes }]
    );
    freed.push({ at: block, bytes: words * 4 });
    // Inputs stay referenced until the run is over (their blocks are not collected meanwhile).
    backend.execute(
      { module: this.module, block, count, gemmScratch: this.gemmScratch, names },
      { keep: ins, outputs: result, freed },
    );
    for (const i of donated ?? []) {
      if (result.includes(inputs[i] as WasmStorage) || result.includes(ins[i])) continue;
      ins[i].donated = true;
      if (inputs[i] !== ins[i]) inputs[i].donated = true;
      if (ins[i].origin !== null) ins[i].origin!.donated = true;
    }
    return result;
  }
}

/** A job for the executor: a module and a command block. */
export interface Job {
  module: WebAssembly.Module;
  /** Address of the command block. */
  block: number;
  /** Commands in it. */
  count: number;
  /** Scratch bytes each worker's GEMM calls need. */
  gemmScratch: number;
  /** Each command's name (for profiles). */
  names: readonly string[];
}

/** The kernel IR of a step, printed as WGSL-like text (its bindings and body). */
function describeKernel(k: KernelAst<Ref>): string {
  return renderWgsl(k);
}

function compileModule(
  table: FunctionTable,
  shape: GemmShape,
  shared: boolean,
): WebAssembly.Module {
  const functions = [{ name: "gemm", body: gemmFunction(shape) }];
  table.functions.forEach(({ kernel, elements }, i) => {
    const f = new FunctionBuilder(["i32", "i32", "i32"]);
    renderWasmFunction(kernel, f, {
      elements: (b) => elements[kernel.bindings.indexOf(b as Binding<Ref>)],
    });
    functions.push({ name: `k${i}`, body: f });
  });
  const bytes = encodeModule({
    imports: MATH_IMPORTS,
    memory: { initial: 1, maximum: MAX_PAGES, shared },
    functions,
  });
  return new WebAssembly.Module(bytes);
}
