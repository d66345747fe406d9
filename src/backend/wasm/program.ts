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
import { MemoryPlanner, type Source as PlanSource } from "../plan.ts";
import { type Schedule, schedule } from "../webgpu/schedule.ts";
import { type Arg, FunctionTable, generateSteps, isInput, type Ref, type Step } from "./codegen.ts";
import { BlockHandle, ERROR_WORDS, MAX_PAGES, WasmStorage } from "./memory.ts";
import type { WasmBackend } from "./wasm_backend.ts";

type Source = PlanSource<WasmStorage>;

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
  private readonly planner: MemoryPlanner<WasmStorage>;
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
    this.planner = new MemoryPlanner(
      vars,
      outputs,
      this.sched.alias,
      this.consts,
      this.steps.map(({ kernel, step }) => ({ kernel, refs: refsOf(step).map((a) => a.ref) })),
      { bytes: (c) => c.handle.bytes, key: (c) => String(c.at) },
    );
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

  /** The memory of a run with the inputs at positions in `donated` given up (see MemoryReport). */
  memory(donated?: ReadonlySet<number>): MemoryReport {
    return this.planner.memory(donated);
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
    const reusable = this.planner.reusable(donated, (i) => {
      const s = ins[i];
      return s.handle.storages > 1 || s.handle.moved ||
        ins.some((t, j) => j !== i && t.handle === s.handle);
    });
    const plan = this.planner.plan(reusable);
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
