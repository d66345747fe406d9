/**
 * Compiling a program's new pipelines on several threads at once.
 *
 * Mesa's llvmpipe compiles a pipeline when its first dispatch is submitted, on the submitting
 * thread: a large convolution kernel takes 1-2 s, so a first training step is mostly compilation
 * on one core while the others wait. A compile pool is a few worker threads, each with its own
 * device on the same adapter. Before a program's first run, the main thread and the workers take
 * its new pipelines one at a time from a shared counter and compile each with a dispatch of one
 * workgroup over small scratch buffers; the workers' results reach this device through Mesa's
 * shader disk cache, so compiling them here takes a cache lookup (about 80 ms for a kernel that
 * takes 1.9 s to compile, measured on llvmpipe). Then the real run goes ahead with every
 * pipeline compiled.
 *
 * It is on by default only where that works: Deno (the workers are `node:worker_threads`,
 * unref'd once they have their device, so they never keep a process alive), a Mesa software
 * adapter, and the shader cache not disabled (`MESA_SHADER_CACHE_DISABLE`). The first pipeline a
 * worker took 100 ms or more to compile is timed again here: if this device did not find it in
 * the cache (it took over half the worker's time), the pool stops and the main thread compiles
 * alone.
 *
 * @module
 */
import { debugEnabled, envVar } from "../../_env.ts";
import type { GpuContext } from "./device.ts";
import type { Slot } from "../../kernel/wgsl.ts";

/** A pipeline to compile: its WGSL and its binding slots. */
export interface CompileJob {
  /** The kernel's name (for `COSGRAD_DEBUG=compile`). */
  name: string;
  /** The WGSL source. */
  code: string;
  /** One entry per binding slot: storage read or written, or uniform. */
  slots: readonly Slot[];
}

/** A job of this device: its pipeline and layout, created by the backend. */
export interface LocalJob extends CompileJob {
  /** The pipeline (created on this device, not yet dispatched). */
  pipeline: GPUComputePipeline;
  /** Its bind-group layout. */
  layout: GPUBindGroupLayout;
}

/** The message a worker gets: a batch of jobs and the shared state to claim them with. */
export interface CompileBatch {
  /** Int32 slots: see {@link NEXT}, {@link DEAD}, then a status and a time per job. */
  state: SharedArrayBuffer;
  /** The jobs. */
  jobs: CompileJob[];
  /** The main device's adapter description; a worker on another adapter compiles nothing. */
  adapter: string;
}

/** Slot of the next job to claim. */
export const NEXT = 0;
/** Slot set to 1 by a worker that cannot compile (no device, or another adapter). */
export const DEAD = 1;
/**
 * First of a status slot per job (0 waiting, 1 compiled by a worker, 2 failed there, 3 taken by
 * the main thread), followed by a slot per job for a worker's milliseconds.
 */
export const STATUS = 2;

/** The bind-group layout entries of a kernel's binding slots (buffers, in order). */
export function layoutEntries(slots: readonly Slot[]): GPUBindGroupLayoutEntry[] {
  return slots.map((slot, binding) => ({
    binding,
    visibility: GPUShaderStage.COMPUTE,
    buffer: { type: slot === "write" ? "storage" : slot === "read" ? "read-only-storage" : "uniform" },
  }));
}

/**
 * Bytes of each scratch buffer a compiling dispatch binds to a storage slot (a runtime array);
 * a uniform slot gets its declared size.
 */
const SCRATCH_BYTES = 256;

/**
 * Compiles `pipeline` by submitting one workgroup of it over scratch buffers (one per binding
 * slot, so that written slots never alias), inside an error scope: an invalid pipeline reports
 * its error where it is really used, not here. llvmpipe compiles during the submission.
 */
export function compileByDispatch(
  device: GPUDevice,
  scratch: GPUBuffer[],
  pipeline: GPUComputePipeline,
  layout: GPUBindGroupLayout,
  slots: readonly Slot[],
): void {
  slots.forEach((slot, i) => {
    const size = typeof slot === "string" ? SCRATCH_BYTES : slot.uniform;
    if (scratch[i] === undefined || scratch[i].size < size) {
      const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM;
      scratch[i] = device.createBuffer({ size: Math.max(size, SCRATCH_BYTES), usage });
    }
  });
  device.pushErrorScope("validation");
  const group = device.createBindGroup({
    layout,
    entries: slots.map((_, binding) => ({ binding, resource: { buffer: scratch[binding] } })),
  });
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(0, group);
  pass.dispatchWorkgroups(1);
  pass.end();
  device.queue.submit([encoder.finish()]);
  device.popErrorScope().catch(() => {});
}

/**
 * Threads compiling beside the main one: `COSGRAD_COMPILE_THREADS` (0 turns the pool off), else
 * on a Mesa software adapter (llvmpipe, lavapipe) under Deno with the shader cache not disabled
 * one fewer than the cores, at most 3; else 0.
 *
 * @example
 * ```ts
 * import { compileThreads } from "./compile_pool.ts";
 * compileThreads("Apple M2") >= 0; // true (0 unless COSGRAD_COMPILE_THREADS asks for some)
 * ```
 */
export function compileThreads(adapter: string): number {
  const v = (envVar("COSGRAD_COMPILE_THREADS") ?? "").trim();
  if (v !== "") {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0 || n > 64) {
      throw new TypeError(
        `Invalid COSGRAD_COMPILE_THREADS "${v}": expected a whole number of threads from 0 to 64`,
      );
    }
    return n;
  }
  const disabled = /^(1|true|yes|on)$/i.test(envVar("MESA_SHADER_CACHE_DISABLE") ?? "");
  if (!("Deno" in globalThis) || !/llvmpipe|lavapipe/i.test(adapter) || disabled) return 0;
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return Math.max(0, Math.min(3, cores - 1));
}

interface PoolWorker {
  postMessage(m: CompileBatch): void;
  once(event: "message", f: () => void): void;
  on(event: "error", f: (e: unknown) => void): void;
  unref(): void;
  terminate(): void;
}

/** How long the main thread waits for a worker's job before compiling it itself. */
const WAIT_MS = 300_000;

/** Worker threads compiling pipelines for one device (see the module documentation). */
export class CompilePool {
  /** Pipelines the workers compiled, and batches shared with them (for tests and profiling). */
  readonly stats = { shared: 0, batches: 0 };
  private readonly scratch: GPUBuffer[] = [];
  private verified = false;
  private stopped = false;

  /** Settles when every worker has its device (or found none). */
  readonly ready: Promise<void>;

  private constructor(private readonly gpu: GpuContext, private readonly workers: PoolWorker[]) {
    // Each worker is unref'd (never keeps the process alive) once it has said it is ready.
    const ready = (w: PoolWorker) =>
      new Promise<void>((r) =>
        w.once("message", () => {
          w.unref();
          r();
        })
      );
    this.ready = Promise.all(workers.map(ready)).then(() => {});
    // A worker that fails stops the pool (its error would otherwise end the process).
    for (const w of workers) w.on("error", (e) => this.stop(`a worker failed: ${e}`));
  }

  /**
   * Starts `threads` workers for `gpu` (they request their devices at once, in the
   * background); null for 0 threads or where workers cannot start (no Deno).
   *
   * @example
   * ```ts ignore
   * import { requestGpu } from "./device.ts";
   * import { CompilePool } from "./compile_pool.ts";
   * const gpu = await requestGpu();
   * const pool = await CompilePool.start(gpu, 1);
   * ```
   */
  static async start(gpu: GpuContext, threads: number): Promise<CompilePool | null> {
    if (threads <= 0 || !("Deno" in globalThis)) return null;
    const nodeThreads = "node:worker_threads";
    const url = new URL("./compile_worker.ts", import.meta.url);
    const workers: PoolWorker[] = [];
    try {
      const { Worker } = await import(nodeThreads) as { Worker: new (url: URL) => PoolWorker };
      for (let i = 0; i < threads; i++) workers.push(new Worker(url));
    } catch (e) {
      // Only a speed-up: without it the main thread compiles alone.
      for (const w of workers) w.terminate();
      if (debugEnabled("compile")) console.log(`[cosgrad compile] no compile threads: ${e}`);
      return null;
    }
    return new CompilePool(gpu, workers);
  }

  /** Whether the pool still shares work (it stops when the shader cache is not shared). */
  get active(): boolean {
    return !this.stopped;
  }

  /**
   * Compiles `jobs` (this device's new pipelines, in dispatch order) with the workers' help and
   * returns when each is compiled on this device or given up to the run (a job a worker failed
   * or did not finish in time is compiled by the run, as without a pool). Blocks the thread.
   */
  compile(jobs: readonly LocalJob[]): void {
    const n = jobs.length;
    if (this.stopped || n < 2) return;
    const started = performance.now();
    const state = new SharedArrayBuffer(4 * (STATUS + 2 * n));
    const st = new Int32Array(state);
    const batch: CompileBatch = {
      state,
      jobs: jobs.map(({ name, code, slots }) => ({ name, code, slots })),
      adapter: this.gpu.description,
    };
    for (const w of this.workers) w.postMessage(batch);
    const device = this.gpu.device;
    const compile = (j: LocalJob) =>
      compileByDispatch(device, this.scratch, j.pipeline, j.layout, j.slots);
    const times: number[] = [];
    // A worker's pipeline, compiled here: a cache hit if the hand-over works. The first that took
    // the worker 100 ms or more is timed, as soon as one is done, to stop sharing early if not.
    const handOver = (i: number) => {
      const t = performance.now();
      compile(jobs[i]);
      const ms = performance.now() - t;
      const workerMs = st[STATUS + n + i];
      times[i] = workerMs;
      if (this.verified || workerMs < 100) return;
      this.verified = true;
      if (ms > 0.5 * workerMs) {
        this.stop(
          `this device compiled a worker's pipeline again (${
            ms.toFixed(0)
          } ms against ${workerMs} ms): the shader cache is not shared`,
        );
      }
    };
    const handed = new Set<number>();
    while (!this.stopped) {
      const i = Atomics.add(st, NEXT, 1);
      if (i >= n) break;
      Atomics.store(st, STATUS + i, 3);
      const t = performance.now();
      compile(jobs[i]);
      times[i] = performance.now() - t;
      if (this.verified) continue;
      for (let j = 0; j < n; j++) {
        if (Atomics.load(st, STATUS + j) !== 1 || st[STATUS + n + j] < 100) continue;
        handed.add(j);
        handOver(j);
        break;
      }
    }
    // Stopped: the jobs not compiled here or handed over are compiled by the run.
    let shared = handed.size;
    const deadline = performance.now() + WAIT_MS;
    for (let i = 0; i < n && !this.stopped; i++) {
      while (
        Atomics.load(st, STATUS + i) === 0 && Atomics.load(st, DEAD) === 0 &&
        performance.now() < deadline
      ) {
        Atomics.wait(st, STATUS + i, 0, 100);
      }
      if (Atomics.load(st, STATUS + i) !== 1 || handed.has(i)) continue;
      shared++;
      handOver(i);
    }
    this.stats.shared += shared;
    this.stats.batches++;
    if (debugEnabled("compile")) {
      console.log(
        `[cosgrad compile] ${n} new pipelines in ${
          ((performance.now() - started) / 1000).toFixed(1)
        } s: ${shared} compiled by ${this.workers.length} worker thread(s), ${
          n - shared
        } by this one`,
      );
      const slow = [...times.keys()].sort((a, b) => (times[b] ?? 0) - (times[a] ?? 0)).slice(0, 3);
      for (const i of slow) {
        if (times[i] !== undefined) console.log(`  ${jobs[i].name}: ${times[i].toFixed(0)} ms`);
      }
    }
  }

  /** Stops the workers; later batches compile on the main thread alone. */
  stop(reason?: string): void {
    if (this.stopped) return;
    this.stopped = true;
    for (const w of this.workers) w.terminate();
    if (reason !== undefined && debugEnabled("compile")) {
      console.log(`[cosgrad compile] pool stopped: ${reason}`);
    }
  }
}
