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
import { type GemmShape, relaxedSimd } from "../../kernel/wasm_gemm.ts";
import type { Backend, Program, Storage } from "../storage.ts";
import { wasmRangeError } from "./codegen.ts";
import { BARRIER_WORDS, type ProgramExports, runShare } from "./execute.ts";
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

/** Options of {@link WasmBackend}. */
export interface WasmBackendOptions {
  /** Worker threads (default `COSGRAD_THREADS`, else `navigator.hardwareConcurrency`). */
  threads?: number;
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
  /** The GEMM micro-kernel's blocking (relaxed-SIMD FMA when the engine validates it). */
  readonly gemmShape: GemmShape;
  /** Worker threads (1: the calling thread runs programs). */
  readonly threads: number;
  private readonly workers: Worker[] = [];
  private readonly id = ++backendCount;
  private readonly instances = new WeakMap<WebAssembly.Module, ProgramExports>();
  private readonly programIds = new WeakMap<WebAssembly.Module, number>();
  private scratch = { at: 0, bytes: 0 };
  private pending: Promise<void> = Promise.resolve();
  private jobs = 0;
  private readonly waiting = new Map<number, { left: number; done: (e: string | null) => void }>();
  /** Statistics, for tests and profiling. */
  readonly stats = { programs: 0, runs: 0 };
  /** Starts the backend (workers start when `threads > 1` and memory can be shared). */
  constructor(options: WasmBackendOptions = {}) {
    const want = options.threads ?? defaultThreads();
    const shared = canShare();
    this.threads = shared && typeof Worker !== "undefined" ? want : 1;
    this.heap = new WasmHeap(shared);
    this.gemmShape = { mr: 6, nr: 8, kc: 256, fma: relaxedSimd() };
    for (let i = 0; i < this.threads && this.threads > 1; i++) {
      const w = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
      w.onmessage = (ev: MessageEvent<{ id: number; error: string | null }>) => {
        const entry = this.waiting.get(ev.data.id);
        if (entry === undefined) return;
        entry.left--;
        if (ev.data.error !== null) entry.done(ev.data.error);
        if (entry.left === 0) {
          this.waiting.delete(ev.data.id);
          entry.done(null);
        }
      };
      w.postMessage({ type: "init", memory: this.heap.memory, index: i, threads: this.threads });
      this.workers.push(w);
    }
  }

  /** A short description: threads and SIMD features. */
  get description(): string {
    return `wasm simd128${this.gemmShape.fma ? " + relaxed fma" : ""}, ${this.threads} thread${
      this.threads === 1 ? "" : "s"
    }`;
  }

  compileKey(): string {
    const g = this.gemmShape;
    return `wasm#${this.id}|${this.threads}|gemm ${g.mr}x${g.nr}x${g.kc}${
      g.fma ? " fma" : ""
    }|shared ${this.heap.shared}`;
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
        const e = wasmRangeError(code, words[ERROR_WORDS / 4 + 1]);
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

/** The barrier words' address (for tests). */
export const BARRIER_ADDRESS = BARRIER_WORDS;
