/**
 * All cores for WebAssembly kernels: a pool of workers that share one `WebAssembly.Memory`
 * (a `SharedArrayBuffer`), each holding an instance of every kernel module, driven through
 * shared control words and `Atomics` (no message per run).
 *
 * A run is a list of calls; call `i` is the export `fn` of module `module` over `total` items,
 * cut into one contiguous range per thread, and called as `fn(begin, end, ...args)`. Every
 * thread finishes call `i` before any starts call `i + 1` (a barrier), so a call may read what
 * the previous ones wrote. The calling thread takes part (it is thread 0) and blocks until the
 * run is done: in Deno and in workers; where the calling thread may not block (a browser's main
 * thread) or shared memory is unavailable, {@link WasmThreads.create} gives a pool of one
 * thread that runs everything in place.
 *
 * @module
 */

/** One call of a run. */
export interface ThreadCall {
  /** A module id from {@link WasmThreads.load}. */
  module: number;
  /** Name of the exported function: `(begin: i32, end: i32, ...args: i32) -> ()`. */
  fn: string;
  /** Items to split between threads (`begin`/`end` index them). */
  total: number;
  /** Further i32 arguments (byte offsets of buffers, sizes). */
  args?: readonly number[];
  /** Fewest items worth a thread of their own (default 1): small calls use fewer threads. */
  grain?: number;
}

// Control words (Int32Array over a SharedArrayBuffer).
const GEN = 0; // bumped per run: workers wait on it
const ARRIVED = 1; // barrier: threads arrived at the current phase
const PHASE = 2; // barrier: bumped when all arrived
const FAILED = 3; // nonzero when a thread trapped
const LOADED = 4; // modules instantiated, summed over workers
const CALLS = 5; // calls in the current run
const ERR_LEN = 6; // bytes of the error message
const HEADER = 8;
const MAX_CALL_WORDS = 4 + 16; // module, fn, total, argc, args
const MAX_CALLS = 4096;
const ERR_BYTES = 1024;

/** The worker's code, as JavaScript source (it runs from a blob URL, bundler-independent). */
function workerMain(): void {
  // deno-lint-ignore no-explicit-any
  const scope = globalThis as any;
  // deno-lint-ignore no-explicit-any
  let memory: any, ctl: Int32Array, calls: Int32Array, err: Uint8Array, id = 0, threads = 1;
  // deno-lint-ignore no-explicit-any
  const instances: any[] = [];
  const names: string[][] = [];
  const barrier = () => {
    const phase = Atomics.load(ctl, 2);
    if (Atomics.add(ctl, 1, 1) === threads - 1) {
      Atomics.store(ctl, 1, 0);
      Atomics.add(ctl, 2, 1);
      Atomics.notify(ctl, 2);
    } else {
      while (Atomics.load(ctl, 2) === phase) Atomics.wait(ctl, 2, phase);
    }
  };
  const runJob = () => {
    const n = Atomics.load(ctl, 5);
    for (let c = 0; c < n; c++) {
      const base = c * 20;
      const [mod, fn, total, argc] = [
        calls[base],
        calls[base + 1],
        calls[base + 2],
        calls[base + 3],
      ];
      const used = calls[base + 4 + 16 - 1]; // threads used by this call (last word)
      if (Atomics.load(ctl, 3) === 0 && id < used) {
        const begin = Math.floor(total * id / used), end = Math.floor(total * (id + 1) / used);
        if (end > begin) {
          try {
            const args = Array.from(calls.subarray(base + 4, base + 4 + argc));
            instances[mod].exports[names[mod][fn]](begin, end, ...args);
          } catch (e) {
            if (Atomics.compareExchange(ctl, 3, 0, 1) === 0) {
              const bytes = new TextEncoder().encode(`thread ${id}: ${String(e)}`).slice(0, 1024);
              err.set(bytes);
              Atomics.store(ctl, 6, bytes.length);
            }
          }
        }
      }
      barrier();
    }
  };
  const idle = (gen: number) => {
    const r = Atomics.waitAsync(ctl, 0, gen);
    const next = () => {
      const now = Atomics.load(ctl, 0);
      if (now === -1) return scope.close();
      runJob();
      idle(now);
    };
    if (r.async) r.value.then(next);
    else next();
  };
  scope.onmessage = (ev: MessageEvent) => {
    const m = ev.data;
    if (m.kind === "init") {
      ({ memory, id, threads } = m);
      ctl = new Int32Array(m.ctl);
      calls = new Int32Array(m.calls);
      err = new Uint8Array(m.err);
      idle(Atomics.load(ctl, 0));
      scope.postMessage({ kind: "ready" });
    } else if (m.kind === "load") {
      try {
        const mod = new WebAssembly.Module(m.bytes);
        instances.push(new WebAssembly.Instance(mod, { env: { memory } }));
        names.push(m.names);
      } catch (e) {
        if (Atomics.compareExchange(ctl, 3, 0, 1) === 0) {
          const bytes = new TextEncoder().encode(`thread ${id}: ${String(e)}`).slice(0, 1024);
          err.set(bytes);
          Atomics.store(ctl, 6, bytes.length);
        }
      }
      Atomics.add(ctl, 4, 1);
      Atomics.notify(ctl, 4);
    }
  };
}

/** Whether this thread may block in `Atomics.wait` (not a browser's main thread). */
function canBlock(): boolean {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0);
    return true;
  } catch {
    return false;
  }
}

/** The thread count from `COSGRAD_THREADS`, else the machine's cores. */
function defaultThreads(): number {
  let env: string | undefined;
  try {
    env = (globalThis as { Deno?: { env: { get(k: string): string | undefined } } }).Deno?.env
      .get("COSGRAD_THREADS");
  } catch {
    env = undefined; // no --allow-env: the default
  }
  if (env !== undefined && env !== "") {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > 256) {
      throw new RangeError(`COSGRAD_THREADS must be an integer from 1 to 256, got "${env}"`);
    }
    return n;
  }
  return Math.max(1, Math.min(64, navigator.hardwareConcurrency ?? 1));
}

/**
 * A pool of threads running WebAssembly kernels on one shared memory.
 *
 * @example
 * ```ts
 * import { WasmThreads } from "./threads.ts";
 * const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
 * const pool = await WasmThreads.create(memory, { threads: 2 });
 * pool.threads; // 2 (1 where shared memory or blocking waits are unavailable)
 * pool.close();
 * ```
 */
export class WasmThreads {
  private readonly ctl: Int32Array;
  private readonly calls: Int32Array;
  private readonly err: Uint8Array;
  private readonly instances: WebAssembly.Instance[] = [];
  private readonly names: string[][] = [];
  private closed = false;

  private constructor(
    /** The shared memory every kernel module imports as `env.memory`. */
    readonly memory: WebAssembly.Memory,
    private readonly workers: Worker[],
    buffers: { ctl: SharedArrayBuffer; calls: SharedArrayBuffer; err: SharedArrayBuffer },
  ) {
    this.ctl = new Int32Array(buffers.ctl);
    this.calls = new Int32Array(buffers.calls);
    this.err = new Uint8Array(buffers.err);
  }

  /** Threads running each call (the caller's included). */
  get threads(): number {
    return this.workers.length + 1;
  }

  /**
   * A pool of `threads` threads (default `COSGRAD_THREADS`, else the machine's cores) on
   * `memory`. Gives one thread (no workers) where `memory` is not shared, `Worker` is missing or
   * the calling thread may not block.
   */
  static async create(
    memory: WebAssembly.Memory,
    options: { threads?: number } = {},
  ): Promise<WasmThreads> {
    const want = options.threads ?? defaultThreads();
    if (!Number.isInteger(want) || want < 1) {
      throw new RangeError(`threads must be a positive integer, got ${want}`);
    }
    const shared = typeof SharedArrayBuffer !== "undefined" &&
      memory.buffer instanceof SharedArrayBuffer;
    const n = shared && typeof Worker !== "undefined" && canBlock() ? want : 1;
    const Shared = shared ? SharedArrayBuffer : ArrayBuffer;
    const buffers = {
      ctl: new Shared(HEADER * 4) as SharedArrayBuffer,
      calls: new Shared(MAX_CALLS * MAX_CALL_WORDS * 4) as SharedArrayBuffer,
      err: new Shared(ERR_BYTES) as SharedArrayBuffer,
    };
    const workers: Worker[] = [];
    if (n > 1) {
      const src = `(${workerMain.toString()})();`;
      const url = URL.createObjectURL(new Blob([src], { type: "text/javascript" }));
      try {
        const ready: Promise<void>[] = [];
        for (let id = 1; id < n; id++) {
          const w = new Worker(url, { type: "module" });
          workers.push(w);
          ready.push(
            new Promise<void>((resolve, reject) => {
              const timer = setTimeout(
                () => reject(new Error(`WebAssembly thread ${id} did not start within 10 s`)),
                10_000,
              );
              w.onmessage = () => {
                clearTimeout(timer);
                resolve();
              };
              w.onerror = (e) => {
                clearTimeout(timer);
                e.preventDefault();
                reject(new Error(`WebAssembly thread ${id} failed to start: ${e.message}`));
              };
            }),
          );
          w.postMessage({ kind: "init", memory, id, threads: n, ...buffers });
        }
        await Promise.all(ready);
      } catch (e) {
        for (const w of workers) w.terminate();
        throw e;
      } finally {
        URL.revokeObjectURL(url);
      }
    }
    return new WasmThreads(memory, workers, buffers);
  }

  /**
   * Compiles `bytes` (a module importing `env.memory`) on every thread; returns its id.
   * Blocks until all threads hold an instance; a module that fails to compile is an error.
   */
  load(bytes: Uint8Array): number {
    this.check();
    const module = new WebAssembly.Module(bytes as Uint8Array<ArrayBuffer>);
    const instance = new WebAssembly.Instance(module, { env: { memory: this.memory } });
    const names = WebAssembly.Module.exports(module).filter((e) => e.kind === "function")
      .map((e) => e.name);
    if (this.workers.length > 0) {
      const target = Atomics.load(this.ctl, LOADED) + this.workers.length;
      for (const w of this.workers) w.postMessage({ kind: "load", bytes, names });
      for (;;) {
        const now = Atomics.load(this.ctl, LOADED);
        if (now >= target) break;
        Atomics.wait(this.ctl, LOADED, now, 10_000);
      }
      this.raiseFailure("loading a kernel module");
    }
    this.instances.push(instance);
    this.names.push(names);
    return this.instances.length - 1;
  }

  /**
   * Runs `calls` in order across the pool, each split into one range per thread, with a
   * barrier between calls; returns when every thread is done. A trap in any thread is an
   * error naming the thread and the call.
   */
  run(calls: readonly ThreadCall[]): void {
    this.check();
    if (calls.length > MAX_CALLS) {
      // Long programs run as consecutive runs (each ends with a barrier already).
      for (let i = 0; i < calls.length; i += MAX_CALLS) this.run(calls.slice(i, i + MAX_CALLS));
      return;
    }
    const fns = calls.map((c, i) => this.resolve(c, i));
    if (this.workers.length === 0) {
      calls.forEach((c, i) => this.callRange(fns[i], c, 0, c.total, i));
      return;
    }
    const T = this.threads;
    calls.forEach((c, i) => {
      const base = i * MAX_CALL_WORDS;
      const args = c.args ?? [];
      this.calls[base] = c.module;
      this.calls[base + 1] = this.names[c.module].indexOf(c.fn);
      this.calls[base + 2] = c.total;
      this.calls[base + 3] = args.length;
      this.calls.set(args, base + 4);
      this.calls[base + MAX_CALL_WORDS - 1] = Math.max(
        1,
        Math.min(T, Math.floor(c.total / Math.max(1, c.grain ?? 1))),
      );
    });
    Atomics.store(this.ctl, CALLS, calls.length);
    Atomics.store(this.ctl, FAILED, 0);
    Atomics.add(this.ctl, GEN, 1);
    Atomics.notify(this.ctl, GEN);
    for (let i = 0; i < calls.length; i++) {
      const c = calls[i];
      const used = this.calls[i * MAX_CALL_WORDS + MAX_CALL_WORDS - 1];
      if (Atomics.load(this.ctl, FAILED) === 0) {
        try {
          this.callRange(fns[i], c, 0, Math.floor(c.total / used), i);
        } catch (e) {
          if (Atomics.compareExchange(this.ctl, FAILED, 0, 1) === 0) {
            const bytes = new TextEncoder().encode(`thread 0: ${(e as Error).message}`);
            this.err.set(bytes.slice(0, ERR_BYTES));
            Atomics.store(this.ctl, ERR_LEN, Math.min(bytes.length, ERR_BYTES));
          }
        }
      }
      this.barrier(T);
    }
    this.raiseFailure(`running ${calls.length} kernel calls`);
  }

  /** Stops the workers; the pool cannot run afterwards. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.ctl, GEN, -1);
    Atomics.notify(this.ctl, GEN);
    for (const w of this.workers) w.terminate();
  }

  private check(): void {
    if (this.closed) throw new TypeError("This WebAssembly thread pool was closed");
  }

  private resolve(c: ThreadCall, i: number): (...xs: number[]) => void {
    const inst = this.instances[c.module];
    if (inst === undefined) {
      throw new RangeError(`Call ${i}: no module ${c.module} (load() returns module ids)`);
    }
    const f = inst.exports[c.fn];
    if (typeof f !== "function") {
      throw new RangeError(
        `Call ${i}: module ${c.module} exports no function "${c.fn}" (it has ${
          this.names[c.module].join(", ")
        })`,
      );
    }
    if (!Number.isInteger(c.total) || c.total < 0 || c.total > 0x7fffffff) {
      throw new RangeError(`Call ${i} (${c.fn}): total must be an i32 count, got ${c.total}`);
    }
    if ((c.args?.length ?? 0) > MAX_CALL_WORDS - 5) {
      throw new RangeError(`Call ${i} (${c.fn}): at most ${MAX_CALL_WORDS - 5} arguments`);
    }
    return f as (...xs: number[]) => void;
  }

  private callRange(
    f: (...xs: number[]) => void,
    c: ThreadCall,
    begin: number,
    end: number,
    i: number,
  ): void {
    if (end <= begin) return;
    try {
      f(begin, end, ...(c.args ?? []));
    } catch (e) {
      throw new Error(`${c.fn} (call ${i}) trapped: ${(e as Error).message}`, { cause: e });
    }
  }

  private barrier(T: number): void {
    const phase = Atomics.load(this.ctl, PHASE);
    if (Atomics.add(this.ctl, ARRIVED, 1) === T - 1) {
      Atomics.store(this.ctl, ARRIVED, 0);
      Atomics.add(this.ctl, PHASE, 1);
      Atomics.notify(this.ctl, PHASE);
    } else {
      while (Atomics.load(this.ctl, PHASE) === phase) Atomics.wait(this.ctl, PHASE, phase);
    }
  }

  private raiseFailure(what: string): void {
    if (Atomics.load(this.ctl, FAILED) === 0) return;
    const msg = new TextDecoder().decode(this.err.slice(0, Atomics.load(this.ctl, ERR_LEN)));
    Atomics.store(this.ctl, FAILED, 0);
    throw new Error(`WebAssembly kernel failed while ${what}: ${msg}`);
  }
}
