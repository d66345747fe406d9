/**
 * The `webgpu` backend: compiles graphs to WGSL kernels (see `schedule.ts`, `codegen.ts`) and
 * runs them on the device, with a pipeline cache keyed by WGSL source, a buffer pool, and
 * reads that report device and index errors.
 *
 * @module
 */
import { debugEnabled, envVar } from "../../_env.ts";
import type { TypedArray } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import type { Backend, Program, Storage } from "../storage.ts";
import { BufferHandle, BufferPool, float64Error, GpuStorage, sizeClass } from "./buffers.ts";
import { rangeError } from "../range_errors.ts";
import { formatCompileMessages, type GpuContext, throwPendingError } from "./device.ts";
import { GpuProgram } from "./program.ts";
import { profileKey } from "../../kernel/device_profile.ts";
import { TuningTable } from "../../../kernels/tune_cache.ts";
import { candidatesOf, measureKernel } from "../../../kernels/tune.ts";
import { RunProfiler } from "./profile.ts";
import { type CompilePool, layoutEntries } from "./compile_pool.ts";
import { type Slot, slotKey } from "../../kernel/wgsl.ts";

let backendCount = 0;

/** Seconds one `COSGRAD_TUNE=on` tuning round may take (`COSGRAD_TUNE_BUDGET_S`, default 120). */
function tuneBudgetMs(): number {
  const v = envVar("COSGRAD_TUNE_BUDGET_S");
  const s = v === undefined || v === "" ? 120 : Number(v);
  if (!(s >= 0)) {
    throw new TypeError(`Invalid COSGRAD_TUNE_BUDGET_S "${v}": expected seconds (a number >= 0)`);
  }
  return s * 1000;
}

/** A compiled pipeline, and what the device said about its compilation. */
export interface CachedPipeline {
  /** The pipeline. */
  pipeline: GPUComputePipeline;
  /** Its bind-group layout. */
  layout: GPUBindGroupLayout;
  /** `pending` until the device answers, then `ok` or the compile error (with source lines). */
  status: "pending" | "ok" | Error;
  /** Settles when the device has answered. */
  checked: Promise<void>;
  /** Whether a run has dispatched it (so llvmpipe has compiled it). */
  dispatched: boolean;
}

/** Pipelines kept per backend; the least recently used beyond this are dropped (recompiled). */
const MAX_PIPELINES = 1024;

/** The WebGPU backend over one device. */
export class WebGpuBackend implements Backend {
  readonly name = "webgpu";
  /** The buffer pool. */
  readonly pool: BufferPool;
  /**
   * Heuristic kernel family, from the device profile's tile staging: `llvmpipe` (register
   * tiles, vec4 map kernels and reductions) or `discrete` (workgroup tiles). Programs compiled
   * after a change use the new value (tests run both).
   */
  profile: "llvmpipe" | "discrete";
  /**
   * Measured kernel choices for this device profile (`kernels/tune_cache.ts`); its version is
   * part of {@link WebGpuBackend.compileKey}, so new measurements recompile.
   */
  tuning: TuningTable;
  /**
   * Bytes one storage binding may cover when compiling: the adapter's
   * `maxStorageBufferBindingSize`. A tensor over it is bound as several ranges of its buffer
   * (see `split.ts`). Lower it only for tests and experiments (splitting small tensors into
   * many parts); programs compiled after a change use the new value (the program cache key holds it,
   * see {@link WebGpuBackend.compileKey}).
   */
  bindingLimit: number;
  private readonly pipelines = new Map<string, CachedPipeline>();
  /** Buffers written by pipelines whose compile result was not yet known (see markWritten). */
  private readonly unchecked = new WeakMap<GPUBuffer, CachedPipeline[]>();
  private readonly uploads = new WeakMap<Storage, GpuStorage>();
  private errors: GPUBuffer | null = null;
  /** Statistics, for tests and profiling. */
  readonly stats = { pipelines: 0, programs: 0, pipelineNames: [] as string[] };
  private tuningNow = false;
  /**
   * Worker threads compiling new pipelines beside the main thread (`compile_pool.ts`; set by
   * `startWebGpuBackend`), or null.
   */
  compilePool: CompilePool | null = null;
  /** Distinguishes backends over different devices in program cache keys. */
  private readonly id = ++backendCount;
  /** Starts the backend on a device from `requestGpu()`. */
  constructor(readonly gpu: GpuContext) {
    this.pool = new BufferPool(gpu.device);
    this.profile = gpu.profile.tiles === "registers" ? "llvmpipe" : "discrete";
    this.bindingLimit = gpu.limits.maxStorageBufferBindingSize;
    this.tuning = new TuningTable(profileKey(gpu.profile), gpu.profile.adapter);
  }

  /**
   * The device's identity and profile (limits, features), the heuristic kernel family, the
   * binding limit and the tuning table's version: a program is reused only while all of them
   * are unchanged. (Pipelines are cached per backend, so per device, by WGSL source.)
   */
  compileKey(): string {
    const l = this.gpu.limits;
    return `webgpu#${this.id}|${this.profile}|bind ${this.bindingLimit}|` +
      `buffers ${l.maxStorageBuffersPerShaderStage}|max ${l.maxBufferSize}|` +
      `tune#${this.tuning.id} ${this.tuning.mode} v${this.tuning.version}|${
        profileKey(this.gpu.profile)
      }`;
  }

  /**
   * Measures the convolution and matmul kernel classes that programs used without a tuning record, keeps
   * each one's best variant (in memory, and in the tuning cache file), and returns the
   * classes tuned. Stops starting candidates after `classBudgetMs` in a class (default 60 s)
   * and classes after `budgetMs` (a candidate started is finished); programs compiled afterwards use the choices. `COSGRAD_DEBUG=tune`
   * prints each choice with its candidates' times.
   *
   * @example
   * ```ts ignore
   * import { initWebGpu } from "../../../mod.ts";
   * const backend = await initWebGpu();
   * // ... run a step, then:
   * await backend.tunePending({ budgetMs: 60_000 });
   * ```
   */
  async tunePending(
    options: { budgetMs?: number; classBudgetMs?: number; print?: (line: string) => void } = {},
  ): Promise<string[]> {
    const budget = options.budgetMs ?? Infinity;
    const perClass = options.classBudgetMs ?? 60_000;
    const print = options.print ?? (debugEnabled("tune") ? console.log : null);
    if (this.tuningNow) return [];
    this.tuningNow = true;
    try {
      return await this.measurePending(budget, perClass, print);
    } finally {
      this.tuningNow = false;
    }
  }

  private async measurePending(
    budget: number,
    perClass: number,
    print: ((line: string) => void) | null,
  ): Promise<string[]> {
    const start = performance.now();
    const done: string[] = [];
    this.checkUsable();
    await this.gpu.device.queue.onSubmittedWorkDone();
    let path: string | null = null;
    for (const miss of [...this.tuning.misses.values()]) {
      const left = budget - (performance.now() - start);
      if (left <= 0) break;
      const t0 = performance.now();
      const candidates = candidatesOf(miss);
      const record = await measureKernel(this.gpu.device, miss, candidates, {
        budgetMs: Math.min(left, perClass),
      });
      this.checkUsable();
      this.tuning.record(miss.cls, record);
      done.push(miss.cls);
      path = this.tuning.save(); // after each class: an interrupted tuning keeps what it measured
      if (print !== null) {
        for (const line of this.tuning.describe(miss.cls)) print(`[cosgrad tune] ${line}`);
        print(
          `[cosgrad tune] ${miss.cls}: ${record.candidates.length}/${candidates.length} candidates in ${
            ((performance.now() - t0) / 1000).toFixed(1)
          } s`,
        );
      }
    }
    if (done.length > 0) {
      print?.(
        `[cosgrad tune] ${done.length} classes in ${
          ((performance.now() - start) / 1000).toFixed(1)
        } s${path === null ? "" : `, saved to ${path}`}`,
      );
    }
    return done;
  }

  /** The adapter's description, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  get description(): string {
    return this.gpu.description;
  }

  /** Throws if the device is lost or reported an error. */
  checkUsable(): void {
    throwPendingError(this.gpu);
  }

  compile(inputs: readonly Node<"var">[], outputs: readonly Node[]): Program {
    this.checkUsable();
    const program = new GpuProgram(this, inputs, outputs);
    this.stats.programs++;
    if (debugEnabled("wgsl")) console.log(program.describe());
    return program;
  }

  /**
   * The pipeline of a WGSL source, compiled once (compile errors come with source lines).
   * `slots` holds one entry per binding slot, in order: storage read or written, or uniform
   * (the bind-group layout, from the kernel's typed bindings).
   */
  pipeline(code: string, name: string, slots: readonly Slot[]): CachedPipeline {
    const key = `${slotKey(slots)}\n${code}`;
    const have = this.pipelines.get(key);
    if (have !== undefined) {
      if (have.status instanceof Error) throw have.status;
      this.pipelines.delete(key);
      this.pipelines.set(key, have);
      return have;
    }
    const device = this.gpu.device;
    const layout = device.createBindGroupLayout({ entries: layoutEntries(slots), label: name });
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code, label: name });
    const pipeline = device.createComputePipeline({
      label: name,
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
    });
    const cached: CachedPipeline = {
      pipeline,
      layout,
      status: "pending",
      checked: Promise.resolve(),
      dispatched: false,
    };
    // A compile error belongs to this pipeline: it is thrown by the runs and reads that use it
    // (see checkPipelines, markWritten, readBuffer), never by an unrelated later call.
    cached.checked = device.popErrorScope().then(async (error) => {
      if (error === null) {
        cached.status = "ok";
        return;
      }
      const info = await module.getCompilationInfo();
      const text = info.messages.some((m) => m.type === "error")
        ? formatCompileMessages(name, code, info.messages)
        : `Cannot create the pipeline of kernel ${name}: ${error.message}\n${code}`;
      cached.status = new Error(text);
    }, (e) => {
      cached.status = e instanceof Error ? e : new Error(String(e));
    });
    this.pipelines.set(key, cached);
    if (this.pipelines.size > MAX_PIPELINES) {
      this.pipelines.delete(this.pipelines.keys().next().value!);
    }
    this.stats.pipelines++;
    this.stats.pipelineNames.push(name);
    return cached;
  }

  /** Throws the compile error of the first of `used` known to have failed. */
  checkPipelines(used: readonly CachedPipeline[]): void {
    for (const p of used) if (p.status instanceof Error) throw p.status;
  }

  /**
   * Records that a run of the pipelines `used` over `inputs` wrote `outputs`: a read of an
   * output waits for the compile results of those pipelines (and of the unchecked ones that
   * wrote the inputs) and throws a compile error among them.
   */
  markWritten(
    outputs: readonly GPUBuffer[],
    used: readonly CachedPipeline[],
    inputs: readonly GPUBuffer[],
  ): void {
    const pending = new Set<CachedPipeline>();
    for (const p of used) if (p.status !== "ok") pending.add(p);
    for (const b of inputs) {
      for (const p of this.unchecked.get(b) ?? []) if (p.status !== "ok") pending.add(p);
    }
    for (const b of outputs) {
      if (pending.size > 0) this.unchecked.set(b, [...pending]);
      else this.unchecked.delete(b);
    }
  }

  /** A run profiler when `COSGRAD_PROFILE=1` and the device has timestamps, else null. */
  profiler(dispatches: number): RunProfiler | null {
    const want = envVar("COSGRAD_PROFILE");
    if (want === undefined || want === "" || want === "0" || dispatches === 0) return null;
    if (!this.gpu.timestamps) return null;
    return new RunProfiler(this.gpu.device, dispatches);
  }

  /** The 16-byte buffer kernels report out-of-range indices into (code, index). */
  errorBuffer(): GPUBuffer {
    if (this.errors === null) {
      this.errors = this.gpu.device.createBuffer({
        size: 16,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
        label: "cosgrad index errors",
      });
    }
    return this.errors;
  }

  fromHost(data: TypedArray): Storage {
    if (data instanceof Float64Array) throw float64Error();
    const bytes = data.length * 4;
    const cls = sizeClass(Math.max(bytes, 4));
    const buffer = this.pool.acquire(cls);
    this.unchecked.delete(buffer);
    if (bytes > 0) {
      this.gpu.device.queue.writeBuffer(
        buffer,
        0,
        data as Float32Array<ArrayBuffer>,
        0,
        data.length,
      );
    }
    const s = new GpuStorage(
      data instanceof Int32Array ? "int32" : "float32",
      data.length,
      new BufferHandle(buffer, cls, this.pool),
      this,
    );
    s.host = data;
    return s;
  }

  adopt(s: Storage): Storage {
    if (s instanceof GpuStorage && s.reader === this) return s;
    if (s.dtype === "float64") throw float64Error();
    const cached = this.uploads.get(s);
    if (cached !== undefined) return cached;
    if (s.host === null) {
      throw new TypeError(
        `A tensor held on the ${s.backend} backend has no host copy; read it with await t.data() first`,
      );
    }
    const g = this.fromHost(s.host) as GpuStorage;
    g.origin = s;
    if (s.donated) g.donated = true;
    this.uploads.set(s, g);
    return g;
  }

  async synchronize(): Promise<void> {
    this.checkUsable();
    await this.gpu.device.queue.onSubmittedWorkDone();
    this.checkUsable();
    // COSGRAD_TUNE=on: kernels used without a record are measured while the queue is idle.
    if (this.tuning.mode === "on" && this.tuning.misses.size > 0) {
      await this.tunePending({ budgetMs: tuneBudgetMs() });
    }
  }

  /** Copies `bytes` of `buffer` to the host after all submitted work; reports kernel errors. */
  async readBuffer(buffer: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    this.checkUsable();
    const writers = this.unchecked.get(buffer);
    if (writers !== undefined) {
      await Promise.all(writers.map((p) => p.checked));
      this.checkPipelines(writers);
      this.unchecked.delete(buffer);
    }
    const device = this.gpu.device;
    const size = Math.ceil(bytes / 4) * 4;
    const withErrors = this.errors !== null;
    // The error words go at a 16-byte offset (mapped ranges start at multiples of 8).
    const errAt = Math.ceil(size / 16) * 16;
    const staging = device.createBuffer({
      size: withErrors ? errAt + 16 : size,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    const encoder = device.createCommandEncoder();
    encoder.copyBufferToBuffer(buffer, 0, staging, 0, size);
    if (withErrors) encoder.copyBufferToBuffer(this.errors!, 0, staging, errAt, 16);
    device.queue.submit([encoder.finish()]);
    let data: ArrayBuffer;
    let code = 0, index = 0;
    try {
      await staging.mapAsync(GPUMapMode.READ);
      data = staging.getMappedRange(0, size).slice(0, bytes);
      if (withErrors) {
        const words = new Uint32Array(staging.getMappedRange(errAt, 16));
        code = words[0];
        index = words[1] | 0;
      }
      staging.unmap();
    } catch (e) {
      // A read that fails as the device goes away ("Parent device is lost", or a validation
      // error) is reported as the loss once the device says so: within milliseconds when idle,
      // later on a loaded machine, so wait up to 500 ms (inside the one-second bound the fault
      // suite checks); a read failing on a healthy device pays that wait once.
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.gpu.device.lost,
        new Promise((resolve) => timer = setTimeout(resolve, 500)),
      ]);
      clearTimeout(timer);
      await null; // the context records the loss in its own handler of `lost`
      this.checkUsable();
      throw new Error(
        `Cannot read a result back from the WebGPU device (${this.gpu.description}): ${
          (e as Error).message
        }`,
        { cause: e },
      );
    } finally {
      staging.destroy();
    }
    this.checkUsable();
    if (code !== 0) {
      device.queue.writeBuffer(this.errors!, 0, new Uint32Array(4));
      throw rangeError(code, index);
    }
    return data;
  }
}
