/**
 * The `wasm` backend: the scheduled kernels rendered to WebAssembly SIMD128 (see
 * `codegen.ts`, `src/kernel/wasm.ts`, `src/kernel/wasm_gemm.ts`), run on a pool of workers
 * over one shared `WebAssembly.Memory`. A run writes its command block and posts it to every
 * worker at once; the host waits only when a value is read (`await t.data()`) or on
 * `synchronize()`. Without `SharedArrayBuffer` (or with `COSGRAD_THREADS=1`) programs run on
 * the calling thread, synchronously.
 *
 * @module
 */
import { debugEnabled, envVar } from "../../_env.ts";
import type { TypedArray } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import { mathImports } from "../../kernel/wasm.ts";
import { type GemmShape, gemmShapeName, relaxedSimd } from "../../kernel/wasm_gemm.ts";
import { TuningTable } from "../../../kernels/tune_cache.ts";
import { gemmShapeFor, wasmProfileKey } from "./tune.ts";
import type { Backend, Program, Storage } from "../storage.ts";
import { rangeError } from "../range_errors.ts";
import { type ProgramExports, runShare } from "./execute.ts";
import { BlockHandle, canShare, ERROR_WORDS, WasmHeap, WasmStorage } from "./memory.ts";
import { type Job, WasmProgram } from "./program.ts";

let backendCount = 0;
let programCount = 0;

/** What a run keeps alive until it is over, and gives back afterwards. */
export interface RunResources {
  /** Inputs (kept from collection while the run reads them). */
  keep: readonly WasmStorage[];
  /** Outputs (an error the run reports is attached to them). */
  outputs: readonly WasmStorage[];
  /** Blocks freed when the run is over. */
  freed: { at: number; bytes: number }[];
}

/** A worker of the pool, whichever API started it. */
export interface PoolWorker {
  postMessage(msg: unknown): void;
  onMessage(fn: (data: { id: number; error: string | null }) => void): void;
  /** Lets the process exit while the worker idles (no-op in browsers). */
  unref(): void;
  /** Keeps the process alive while the worker has work. */
  ref(): void;
  terminate(): void;
}

/** Options of {@link WasmBackend}. */
export interface WasmBackendOptions {
  /** Worker threads (default `COSGRAD_THREADS`, else `navigator.hardwareConcurrency`). */
  threads?: number;
  /** Whether the GEMM uses relaxed-SIMD FMA (default: when the engine validates it). */
  fma?: boolean;
  /** The GEMM's blocking (default: chosen by the tuning table, see `tune.ts`). */
  gemm?: Omit<GemmShape, "fma">;
  /** The tuning table (default: this engine's and CPU's, from the cache). */
  tuning?: TuningTable;
  /** Starts a worker running `url` (none: one thread). See {@link WasmBackend.create}. */
  spawn?: (url: URL) => PoolWorker;
}

/**
 * The worker API of this engine: `node:worker_threads` under Deno, Web Workers on the bundle's
 * worker file in a cross-origin isolated page, else none (one thread).
 */
async function workerSpawner(): Promise<((url: URL) => PoolWorker) | undefined> {
  if ("Deno" in globalThis) {
    const nodeThreads = "node:worker_threads";
    type NodeWorker = {
      postMessage(m: unknown): void;
      on(e: "message", f: (d: { id: number; error: string | null }) => void): void;
      unref(): void;
      ref(): void;
      terminate(): void;
    };
    const { Worker: NodeWorkerClass } = await import(nodeThreads) as {
      Worker: new (url: URL) => NodeWorker;
    };
    return (url) => {
      const w = new NodeWorkerClass(url);
      return {
        postMessage: (m) => w.postMessage(m),
        onMessage: (f) => w.on("message", f),
        unref: () => w.unref(),
        ref: () => w.ref(),
        terminate: () => void w.terminate(),
      };
    };
  }
  return await browserSpawner();
}

/**
 * The worker file of the browser bundle (`deno task build` writes it beside `cosgrad.js`, whose
 * `import.meta.url` this resolves against once bundled).
 */
const BROWSER_WORKER = "./cosgrad_worker.js";

/**
 * Web Workers on the bundle's worker file, where the page is cross-origin isolated (shared
 * memory needs it) and the file is served; else undefined (one thread: a library bundled by
 * another tool has no worker file).
 */
async function browserSpawner(): Promise<((url: URL) => PoolWorker) | undefined> {
  const g = globalThis as { crossOriginIsolated?: boolean; Worker?: unknown };
  if (g.crossOriginIsolated !== true || typeof g.Worker !== "function") return undefined;
  const url = new URL(BROWSER_WORKER, import.meta.url);
  try {
    const head = await fetch(url, { method: "HEAD" });
    if (!head.ok) return undefined;
  } catch {
    return undefined;
  }
  // The module URL the backend passes is its source file, which a bundle does not have.
  return (_source) => {
    const w = new Worker(url, { type: "module", name: "cosgrad wasm" });
    w.onerror = (e) => console.error(`cosgrad: wasm worker ${url} failed: ${e.message}`);
    return {
      postMessage: (m) => w.postMessage(m),
      onMessage: (f) => {
        w.onmessage = (ev) => f(ev.data);
      },
      unref: () => {},
      ref: () => {},
      terminate: () => w.terminate(),
    };
  };
}

/** The number of threads asked for: `COSGRAD_THREADS`, else the cores the engine reports. */
export function defaultThreads(): number {
  const v = envVar("COSGRAD_THREADS");
  if (v !== undefined && v !== "") {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 256) {
      throw new RangeError(
        `COSGRAD_THREADS=${v}: expected a whole number of threads from 1 to 256`,
      );
    }
    return n;
  }
  return Math.max(1, globalThis.navigator?.hardwareConcurrency ?? 1);
}

/** The wasm backend over one memory and (where threads exist) a pool of workers. */
export class WasmBackend implements Backend {
  readonly name = "wasm";
  /** The memory all tensors live in. */
  readonly heap: WasmHeap;
  /**
   * The GEMM micro-kernel's blocking (relaxed-SIMD FMA when the engine validates it): the
   * tuning table's choice (see `tune.ts`), else the default.
   */
  readonly gemmShape: GemmShape;
  /** The tuning table of this engine and CPU (the GEMM's blocking). */
  readonly tuning: TuningTable;
  /** Worker threads (1: the calling thread runs programs). */
  readonly threads: number = 1;
  private readonly workers: PoolWorker[] = [];
  private readonly id = ++backendCount;
  private readonly instances = new WeakMap<WebAssembly.Module, ProgramExports>();
  private readonly programIds = new WeakMap<WebAssembly.Module, number>();
  private scratch = { at: 0, bytes: 0 };
  private pending: Promise<void> = Promise.resolve();
  private jobs = 0;
  private readonly waiting = new Map<number, { left: number; done: (e: string | null) => void }>();
  /**
   * Milliseconds per command name, summed over runs, when `COSGRAD_PROFILE=1` and programs
   * run on the calling thread (`COSGRAD_THREADS=1`); null otherwise.
   */
  readonly profile: Map<string, number> | null;
  /** The profile's clock in milliseconds (default wall time; a profiler may count CPU time). */
  profileClock: () => number = () => performance.now();
  /** Statistics, for tests and profiling. */
  readonly stats = { programs: 0, runs: 0 };
  /** Starts the backend (workers start when `threads > 1` and memory can be shared). */
  constructor(options: WasmBackendOptions = {}) {
    const want = options.threads ?? defaultThreads();
    const shared = canShare();
    this.threads = shared ? want : 1;
    this.heap = new WasmHeap(shared);
    const fma = (options.fma ?? true) && relaxedSimd();
    this.tuning = options.tuning ?? new TuningTable(wasmProfileKey(fma), "wasm");
    this.gemmShape = options.gemm === undefined
      ? gemmShapeFor(this.tuning, { fma, shared })
      : { ...options.gemm, fma };
    const prof = envVar("COSGRAD_PROFILE");
    this.profile = this.threads === 1 && prof !== undefined && prof !== "" && prof !== "0"
      ? new Map()
      : null;
    const spawn = options.spawn;
    if (this.threads > 1 && spawn === undefined) this.threads = 1;
    for (let i = 0; i < this.threads && this.threads > 1; i++) {
      const w = spawn!(new URL("./worker.ts", import.meta.url));
      w.onMessage((data) => {
        const entry = this.waiting.get(data.id);
        if (entry === undefined) return;
        entry.left--;
        if (data.error !== null) entry.done(data.error);
        if (entry.left === 0) {
          this.waiting.delete(data.id);
          entry.done(null);
          if (this.waiting.size === 0) this.workers.forEach((x) => x.unref());
        }
      });
      w.postMessage({ type: "init", memory: this.heap.memory, index: i, threads: this.threads });
      w.unref();
      this.workers.push(w);
    }
  }

  /**
   * Starts a backend with a worker pool where the engine can share memory: Deno's
   * `node:worker_threads` (unref'd while idle, so the pool never keeps a process alive); one
   * thread otherwise. In a browser: Web Workers on the bundle's `cosgrad_worker.js` where the
   * page is cross-origin isolated (served with `Cross-Origin-Opener-Policy: same-origin` and
   * `Cross-Origin-Embedder-Policy: require-corp`, as `deno task serve` does), one thread where
   * it is not.
   *
   * @example
   * ```ts ignore
   * import { WasmBackend } from "./wasm_backend.ts";
   * const b = await WasmBackend.create({ threads: 2 });
   * b.threads; // 2 where SharedArrayBuffer exists
   * b.close();
   * ```
   */
  static async create(options: Omit<WasmBackendOptions, "spawn"> = {}): Promise<WasmBackend> {
    return new WasmBackend({ ...options, spawn: await workerSpawner() });
  }

  /** A short description: threads and SIMD features. */
  get description(): string {
    return `wasm simd128${this.gemmShape.fma ? " + relaxed fma" : ""}, ${this.threads} thread${
      this.threads === 1 ? "" : "s"
    }`;
  }

  compileKey(): string {
    const g = this.gemmShape;
    return `wasm#${this.id}|${this.threads}|gemm ${gemmShapeName(g)}|shared ${this.heap.shared}`;
  }

  compile(inputs: readonly Node<"var">[], outputs: readonly Node[]): Program {
    const program = new WasmProgram(this, inputs, outputs);
    this.stats.programs++;
    if (debugEnabled("wasm")) console.log(program.describe());
    return program;
  }

  /** Ensures per-worker GEMM scratch of `bytes`; returns its address. */
  private scratchFor(bytes: number): number {
    if (bytes <= this.scratch.bytes) return this.scratch.at;
    // The old block may still be in use by queued jobs: keep it (scratch only grows).
    const each = Math.ceil(bytes / 64) * 64;
    const at = this.heap.alloc(each * this.threads);
    this.scratch = { at, bytes: each };
    return at;
  }

  /** Runs a job (a program's command block) now or on the pool; see {@link RunResources}. */
  execute(job: Job, res: RunResources): void {
    this.stats.runs++;
    const scratch = job.gemmScratch > 0 ? this.scratchFor(job.gemmScratch) : 0;
    const finish = (error: unknown) => {
      const words = this.heap.i32(0, 16);
      const code = words[ERROR_WORDS / 4];
      if (code !== 0) {
        const e = rangeError(code, words[ERROR_WORDS / 4 + 1]);
        words[ERROR_WORDS / 4] = 0;
        for (const o of res.outputs) o.error = e;
      }
      for (const f of res.freed) this.heap.release(f.at, f.bytes);
      if (error !== null) {
        const e = new Error(`A wasm kernel failed: ${String(error)}`);
        for (const o of res.outputs) o.error = e;
      }
    };
    if (this.threads <= 1) {
      let exports = this.instances.get(job.module);
      if (exports === undefined) {
        const instance = new WebAssembly.Instance(job.module, {
          env: { memory: this.heap.memory },
          ...mathImports(),
        });
        exports = instance.exports as unknown as ProgramExports;
        this.instances.set(job.module, exports);
      }
      const error = runShare(
        exports,
        this.heap.memory,
        {
          block: job.block,
          count: job.count,
          scratch,
          mr: this.gemmShape.mr,
          nr: this.gemmShape.nr,
        },
        0,
        1,
        this.profile === null ? undefined : (c, ms) => {
          const name = job.names[c];
          this.profile!.set(name, (this.profile!.get(name) ?? 0) + ms);
        },
        this.profileClock,
      );
      finish(error);
      return;
    }
    let program = this.programIds.get(job.module);
    if (program === undefined) this.programIds.set(job.module, program = ++programCount);
    const id = ++this.jobs;
    const keep = res.keep;
    const done = new Promise<void>((resolve) => {
      let firstError: string | null = null;
      this.waiting.set(id, {
        left: this.threads,
        done: (e) => {
          if (e !== null) {
            firstError ??= e;
            return;
          }
          finish(firstError);
          void keep;
          resolve();
        },
      });
    });
    this.pending = this.pending.then(() => done);
    for (const w of this.workers) {
      w.ref();
      w.postMessage({
        type: "job",
        id,
        program,
        module: job.module,
        block: job.block,
        count: job.count,
        scratch,
        scratchStride: this.scratch.bytes,
        mr: this.gemmShape.mr,
        nr: this.gemmShape.nr,
        bytes: this.heap.memory.buffer.byteLength,
      });
    }
  }

  /** Resolves when every job posted so far has finished. */
  settled(): Promise<void> {
    return this.pending;
  }

  fromHost(data: TypedArray): Storage {
    if (data instanceof Float64Array) {
      throw new TypeError(
        'float64 tensors run on the cpu backend (the wasm kernels compute float32): cast to float32, or use setBackend("cpu")',
      );
    }
    const bytes = Math.max(4, data.length * 4);
    const at = this.heap.alloc(bytes);
    if (data instanceof Int32Array) this.heap.i32(at, data.length).set(data);
    else this.heap.f32(at, data.length).set(data);
    const s = new WasmStorage(
      data instanceof Int32Array ? "int32" : "float32",
      data.length,
      new BlockHandle(at, bytes, this.heap),
      this,
    );
    s.host = data;
    return s;
  }

  adopt(s: Storage): Storage {
    if (s instanceof WasmStorage && s.reader === this) return s;
    if (s.dtype === "float64") return this.fromHost(s.host ?? new Float64Array(0));
    if (s.host === null) {
      throw new TypeError(
        `A tensor held on the ${s.backend} backend has no host copy; read it with await t.data() first`,
      );
    }
    const w = this.fromHost(s.host) as WasmStorage;
    w.origin = s;
    if (s.donated) w.donated = true;
    return w;
  }

  async synchronize(): Promise<void> {
    await this.pending;
  }

  /** Stops the workers (the backend runs nothing afterwards). */
  close(): void {
    for (const w of this.workers) w.terminate();
    this.workers.length = 0;
  }
}
