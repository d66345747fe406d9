/**
 * A compiled WebGPU program: the schedule's kernels as pipelines, a buffer plan by liveness,
 * and `run`, which records every dispatch into one command encoder and submits it once,
 * without waiting.
 *
 * @module
 */
import { sizeOf } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import {
  donatedError,
  type KernelSummary,
  type MemoryReport,
  type Program,
  type Storage,
} from "../storage.ts";
import { type MemoryPlan, MemoryPlanner, type Source as PlanSource } from "../plan.ts";
import { BufferHandle, GpuStorage, sizeClass } from "./buffers.ts";
import { type Dispatch, generate, slotOf, writes } from "./codegen.ts";
import { LOWERING } from "../../kernel/lowering.ts";
import { bindingParts } from "./split.ts";
import { type Schedule, schedule } from "./schedule.ts";
import type { CachedPipeline, WebGpuBackend } from "./webgpu_backend.ts";
import type { LocalJob } from "./compile_pool.ts";
import { classOf, type TunedKernel } from "../../../kernels/tune.ts";

/** Where a dispatch binding's memory comes from, once planned. */
type Source = PlanSource<GpuStorage>;

interface PlannedDispatch {
  dispatch: Dispatch;
  /** The backend's cache entry of the pipeline (with its layout); null for a buffer clear. */
  cached: CachedPipeline | null;
  sources: Source[];
  /** Whether the dispatch does any work (empty tensors skip it). */
  empty: boolean;
  /** Recent bind groups, keyed by the ids of the buffers bound. */
  bindGroups: Map<string, GPUBindGroup>;
}

const bufferIds = new WeakMap<GPUBuffer, number>();
let nextBufferId = 0;

function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) bufferIds.set(b, id = nextBufferId++);
  return id;
}

/** The memory plan of a donation set, with its dispatches' pipelines and sources. */
interface Plan extends MemoryPlan<GpuStorage> {
  dispatches: PlannedDispatch[];
  /** Whether it has run (so every pipeline it uses has been dispatched). */
  ran: boolean;
}

/** A graph compiled for the WebGPU backend. */
export class GpuProgram implements Program {
  private readonly sched: Schedule;
  private readonly dispatches: { kernel: number; dispatch: Dispatch }[] = [];
  /** The pipelines of the dispatches: their compile errors surface on this program's runs. */
  private readonly pipelines: CachedPipeline[] = [];
  private readonly plans = new Map<string, Plan>();
  private readonly planner: MemoryPlanner<GpuStorage>;
  private readonly consts = new Map<Node, GpuStorage>();
  private readonly inputIndex = new Map<Node, number>();
  /** The tuned kernel classes this program uses. */
  private readonly tuned = new Set<string>();
  /**
   * The predicted compile milliseconds of the tuned kernels whose pipelines this program
   * created, until its first run; null when it also created others (whose compile time is not
   * predicted) and after the first run.
   */
  private predictedCompileMs: number | null = 0;
  /** Milliseconds this program took to build (pipeline creation included). */
  private readonly buildMs: number;
  /** Compiles the graph from `vars` to `outputs`. */
  constructor(
    private readonly backend: WebGpuBackend,
    private readonly vars: readonly Node<"var">[],
    private readonly outputs: readonly Node[],
  ) {
    const built = performance.now();
    vars.forEach((v, i) => this.inputIndex.set(v, i));
    // Tensors over the binding limit are bound as several ranges of their buffer (split.ts).
    const limit = backend.bindingLimit;
    const maxBuffer = backend.gpu.limits.maxBufferSize;
    const checkBuffer = (n: Node) => {
      const bytes = sizeOf(n.shape) * 4;
      if (sizeClass(bytes) > maxBuffer) {
        throw new RangeError(
          `A ${n.dtype}[${n.shape.join(",")}] tensor (${bytes} bytes, a ${
            sizeClass(bytes)
          }-byte buffer) exceeds the adapter's maxBufferSize of ${maxBuffer} bytes (${backend.gpu.description}): split it, or use the cpu backend`,
        );
      }
    };
    // Inputs and outputs always live in buffers of their own: checked before scheduling, whose
    // binding arithmetic would otherwise report an oversized tensor as a binding-count problem.
    for (const n of [...vars, ...outputs]) checkBuffer(n);
    this.sched = schedule(outputs, {
      maxBindings: backend.gpu.limits.maxStorageBuffersPerShaderStage,
      bindingsOf: (n) => bindingParts(sizeOf(n.shape) * 4, limit).count,
    });
    for (const n of this.sched.order) {
      if (n.dtype === "float64") {
        throw new TypeError(
          `${n.op} computes float64, which runs on the cpu backend (WGSL has no float64): cast to float32, or use setBackend("cpu")`,
        );
      }
      if (n.op === "var" && !this.inputIndex.has(n)) {
        throw new TypeError(`Unbound variable ${(n.params as { id: string }).id}`);
      }
      if (n.op === "const") {
        this.consts.set(
          n,
          backend.adopt((n as Node<"const">).params.storage as Storage) as GpuStorage,
        );
      }
      if (n.op === "var" || n.op === "const" || this.sched.realized.has(n)) checkBuffer(n);
    }
    const isMem = (n: Node) => LOWERING[n.op].kind === "input" || this.sched.realized.has(n);
    const graph = { isMem, alias: this.sched.alias };
    this.sched.kernels.forEach((kernel, index) => {
      let cls: string | undefined;
      const options = {
        profile: backend.profile,
        maxBindingBytes: limit,
        choose: (k: TunedKernel) => {
          cls = classOf(k);
          this.tuned.add(cls);
          return backend.tuning.choose(cls, k);
        },
      };
      const before = backend.stats.pipelines;
      for (const dispatch of generate(kernel, graph, options)) {
        this.dispatches.push({ kernel: index, dispatch });
        if (!dispatch.clear) {
          this.pipelines.push(
            backend.pipeline(dispatch.code, dispatch.name, dispatch.bindings.map(slotOf)),
          );
        }
      }
      if (backend.stats.pipelines > before && this.predictedCompileMs !== null) {
        this.predictedCompileMs = cls === undefined
          ? null
          : this.predictedCompileMs + backend.tuning.predictedCompileMs(cls);
      }
    });
    this.planner = new MemoryPlanner(
      vars,
      outputs,
      this.sched.alias,
      this.consts,
      this.dispatches.map(({ kernel, dispatch }) => ({ kernel, refs: dispatch.bindings })),
      { bytes: (c) => c.handle.bytes, key: (c) => String(bufferId(c.buffer)) },
    );
    this.buildMs = performance.now() - built;
  }

  /** A bind group of `pd` over `buffers`, from a small per-dispatch cache. */
  private bindGroup(pd: PlannedDispatch, buffers: GPUBuffer[]): GPUBindGroup {
    const key = buffers.map(bufferId).join(",");
    const have = pd.bindGroups.get(key);
    if (have !== undefined) return have;
    const group = this.backend.gpu.device.createBindGroup({
      layout: pd.cached!.layout,
      entries: buffers.map((buffer, binding) => {
        const b = pd.dispatch.bindings[binding];
        const part = b.kind === "node" || b.kind === "scratch" ? b.part : undefined;
        if (part !== undefined) {
          return { binding, resource: { buffer, offset: part.offset, size: part.size } };
        }
        // The plan may give a value a slot larger than its own size class: past the binding
        // limit, bind the tensor's bytes (whole vec4s) instead of the whole buffer.
        if (b.kind !== "node" || buffer.size <= this.backend.bindingLimit) {
          return { binding, resource: { buffer } };
        }
        const size = Math.min(
          buffer.size,
          Math.ceil(Math.max(4, sizeOf(b.node.shape) * 4) / 16) * 16,
        );
        return { binding, resource: { buffer, offset: 0, size } };
      }),
    });
    pd.bindGroups.set(key, group);
    if (pd.bindGroups.size > 8) pd.bindGroups.delete(pd.bindGroups.keys().next().value!);
    return group;
  }

  kernels(): KernelSummary[] {
    return this.dispatches.map(({ dispatch }) => ({
      name: dispatch.name,
      workgroups: dispatch.workgroups,
      bindings: dispatch.bindings.map((b) =>
        b.kind === "node"
          ? {
            kind: "tensor" as const,
            dtype: b.node.dtype,
            shape: b.node.shape,
            write: b.write,
            ...(b.part === undefined ? {} : { part: b.part }),
          }
          : { kind: b.kind, write: writes(b) }
      ),
    }));
  }

  describe(): string {
    return this.dispatches.map(({ dispatch }) =>
      `// ${dispatch.name}: workgroups ${dispatch.workgroups.join("x")}\n${dispatch.code}`
    ).join("\n");
  }

  /** The memory plan of a set of reusable donated inputs, with the dispatches' pipelines. */
  private plan(donated: readonly number[]): Plan {
    const key = donated.join(",");
    const have = this.plans.get(key);
    if (have !== undefined) return have;
    const mem = this.planner.plan(donated);
    const dispatches = this.dispatches.map(({ dispatch }, d): PlannedDispatch => {
      const cached = dispatch.clear
        ? null
        : this.backend.pipeline(dispatch.code, dispatch.name, dispatch.bindings.map(slotOf));
      const empty = dispatch.clear === true ||
        dispatch.bindings.some((b) => b.kind === "node" && b.write && sizeOf(b.node.shape) === 0);
      return { dispatch, cached, sources: mem.sources[d], empty, bindGroups: new Map() };
    });
    const plan: Plan = { ...mem, dispatches, ran: false };
    this.plans.set(key, plan);
    return plan;
  }

  /**
   * The device memory of a run with the inputs at positions in `donated` given up (and not
   * shared with another input), from the buffer plan: see {@link MemoryReport} for what each
   * number counts. Nothing runs; the plan is the one `run` uses for that donation set.
   *
   * @example
   * ```ts ignore
   * import { makeNode } from "../../ir/node.ts";
   * import { startWebGpuBackend } from "./start.ts";
   * const backend = await startWebGpuBackend();
   * const x = makeNode("var", [], { id: "a0", shape: [1024], dtype: "float32" });
   * const y = makeNode("exp", [makeNode("exp", [x], {})], {});
   * const program = backend.compile([x], [y]);
   * program.memory!(new Set([0])).peakBytes; // 8192: x's buffer and y's
   * ```
   */
  memory(donated?: ReadonlySet<number>): MemoryReport {
    return this.planner.memory(donated);
  }

  /**
   * Compiles the plan's pipelines that no run has dispatched yet with the backend's compile
   * pool (main thread and workers at once, `compile_pool.ts`), where there is one.
   */
  private precompile(plan: Plan): void {
    const pool = this.backend.compilePool;
    if (plan.ran || pool === null || !pool.active) return;
    const fresh = new Map<CachedPipeline, LocalJob>();
    for (const pd of plan.dispatches) {
      const c = pd.cached;
      if (pd.empty || c === null || c.dispatched || fresh.has(c)) continue;
      const { name, code } = pd.dispatch;
      const job = { name, code, slots: pd.dispatch.bindings.map(slotOf) };
      fresh.set(c, { ...job, pipeline: c.pipeline, layout: c.layout });
    }
    pool.compile([...fresh.values()]);
  }

  run(inputs: readonly Storage[], donated?: ReadonlySet<number>): Storage[] {
    const started = performance.now();
    const backend = this.backend;
    backend.checkUsable();
    backend.checkPipelines(this.pipelines);
    if (inputs.length !== this.vars.length) {
      throw new TypeError(`Expected ${this.vars.length} inputs, got ${inputs.length}`);
    }
    const gpuInputs = inputs.map((s) => {
      if (s.donated) throw donatedError();
      return backend.adopt(s) as GpuStorage;
    });
    gpuInputs.forEach((s, i) => {
      const v = this.vars[i];
      if (s.size !== sizeOf(v.shape) || s.dtype !== v.dtype) {
        throw new TypeError(
          `Input ${i} holds ${s.size} ${s.dtype} values, expected ${v.dtype}[${v.shape.join(",")}]`,
        );
      }
    });
    // Donated inputs whose buffer may be reused: not shared with another storage or input,
    // and not returned as an output.
    const reusable = this.planner.reusable(donated, (i) => {
      const s = gpuInputs[i];
      return s.handle.storages > 1 || s.handle.moved ||
        gpuInputs.some((t, j) => j !== i && t.handle === s.handle);
    });
    const plan = this.plan(reusable);
    this.precompile(plan);
    const pool = backend.pool;
    const buffers = plan.slots.map((s) =>
      s.input >= 0 ? gpuInputs[s.input].handle.move() : pool.acquire(s.bytes)
    );
    const device = backend.gpu.device;
    const encoder = device.createCommandEncoder();
    const profiler = backend.profiler(plan.dispatches.filter((d) => !d.empty).length);
    let pass: GPUComputePassEncoder | null = null;
    let at = 0;
    for (const pd of plan.dispatches) {
      if (pd.empty) continue;
      const bound = pd.sources.map((src) => {
        if (src.kind === "input") return gpuInputs[src.index].buffer;
        if (src.kind === "const") return src.storage.buffer;
        if (src.kind === "slot") return buffers[src.slot];
        return backend.errorBuffer();
      });
      const bindGroup = this.bindGroup(pd, bound);
      if (profiler !== null) {
        pass = encoder.beginComputePass({ timestampWrites: profiler.writes(at) });
      } else if (pass === null) {
        pass = encoder.beginComputePass();
      }
      pass.setPipeline(pd.cached!.pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...pd.dispatch.workgroups);
      if (profiler !== null) {
        pass.end();
        pass = null;
      }
      at++;
    }
    if (pass !== null) pass.end();
    // Outputs of zeros no kernel reads: cleared last (their slots are never reused).
    for (const pd of plan.dispatches) {
      if (!pd.dispatch.clear) continue;
      const b = pd.dispatch.bindings[0];
      const src = pd.sources[0];
      if (b.kind !== "node" || src.kind !== "slot") continue;
      const bytes = sizeOf(b.node.shape) * 4;
      if (bytes > 0) encoder.clearBuffer(buffers[src.slot], 0, bytes);
    }
    profiler?.resolve(encoder);
    device.queue.submit([encoder.finish()]);
    if (!plan.ran) {
      for (const pd of plan.dispatches) {
        if (pd.cached !== null && !pd.empty) pd.cached.dispatched = true;
      }
      plan.ran = true;
    }
    // A first run whose new pipelines are all tuned kernels calibrates the tiers' compile-time
    // predictions: its build and its first run, submission included (llvmpipe may compile when
    // the pipeline is created, when the work is submitted, or when it runs; timing from after
    // the submission once saw 12 ms for 20 s of compilation, and the next step took 89 s).
    const predicted = this.predictedCompileMs;
    this.predictedCompileMs = null;
    if (predicted !== null && predicted > 0) {
      const tuning = backend.tuning;
      const buildMs = this.buildMs;
      device.queue.onSubmittedWorkDone().then(
        () => tuning.observeCompile(predicted, buildMs + performance.now() - started),
        () => {},
      );
    }
    // Kernels run on their first-run choice are promoted to the tuned one (recompiled at the
    // next call, a few per run).
    if (this.tuned.size > 0) backend.tuning.afterRun(this.tuned);
    profiler?.report(plan.dispatches.filter((d) => !d.empty).map((d) => d.dispatch.name));

    // Outputs, then every buffer no output holds goes back to the pool.
    const handles = new Map<number, BufferHandle>();
    const result: Storage[] = this.outputs.map((o, k) => {
      const out = plan.outputs[k];
      if (out.kind === "const") {
        if (out.storage.size === sizeOf(o.shape) && o.op === "const") return out.storage;
        return new GpuStorage(o.dtype, sizeOf(o.shape), out.storage.handle, backend);
      }
      if (out.kind === "input") {
        const s = gpuInputs[out.index];
        if (!out.alias) return s;
        return new GpuStorage(o.dtype, sizeOf(o.shape), s.handle, backend);
      }
      let handle = handles.get(out.slot);
      if (handle === undefined) {
        handle = new BufferHandle(buffers[out.slot], plan.slots[out.slot].bytes, pool);
        handles.set(out.slot, handle);
      }
      return new GpuStorage(o.dtype, sizeOf(o.shape), handle, backend);
    });
    backend.markWritten(
      [...handles.keys()].map((slot) => buffers[slot]),
      this.pipelines,
      gpuInputs.map((s) => s.buffer),
    );
    // Released last slot first, so the next run's acquires (last in, first out) hand every
    // slot the same buffer again and the bind groups come from the cache.
    for (let i = plan.slots.length - 1; i >= 0; i--) {
      if (!handles.has(i)) pool.release(buffers[i], plan.slots[i].bytes);
    }
    for (const i of donated ?? []) {
      if (result.includes(inputs[i]) || result.includes(gpuInputs[i])) continue;
      gpuInputs[i].donated = true;
      if (inputs[i] !== gpuInputs[i]) inputs[i].donated = true;
      if (gpuInputs[i].origin !== null) gpuInputs[i].origin!.donated = true;
    }
    return result;
  }
}
