/**
 * Running a command block (see `program.ts`) on one thread's share: thread `t` of `T` runs
 * the `t`-th part of every command's range (GEMM rows in whole register blocks), and waits at
 * a barrier in shared memory after each command, so a command's outputs are complete before
 * the next one reads them. Used by the workers of the pool and, with `T = 1` and no barrier,
 * by the host thread.
 *
 * @module
 */
import { CMD, CMD_WORDS } from "./program.ts";

/** Byte address of the barrier words (count, generation). */
const BARRIER_WORDS = 32;

/** The exports of a program's instance. */
export interface ProgramExports {
  gemm: (p: number, m0: number, m1: number, n0: number, n1: number, scratch: number) => void;
  [fn: string]: (...args: number[]) => void;
}

/** Waits until all `threads` reach the barrier (spins briefly, then sleeps on the word). */
export function barrier(words: Int32Array, threads: number): void {
  if (threads <= 1) return;
  const count = BARRIER_WORDS / 4, gen = count + 1;
  const g = Atomics.load(words, gen);
  if (Atomics.add(words, count, 1) === threads - 1) {
    Atomics.store(words, count, 0);
    Atomics.add(words, gen, 1);
    Atomics.notify(words, gen);
    return;
  }
  for (let spin = 0; spin < 2000; spin++) if (Atomics.load(words, gen) !== g) return;
  while (Atomics.load(words, gen) === g) Atomics.wait(words, gen, g, 50);
}

/** Chunks per thread a kernel's range is cut into (claimed one at a time). */
const KERNEL_CHUNKS = 8;
/**
 * Chunks per thread of a GEMM: each chunk packs the whole of the operand it does not split
 * again, so two a thread (for balance when the OS holds one back) only while a chunk keeps at
 * least {@link GEMM_MIN_SPLIT} rows or columns of C, else one.
 */
const GEMM_CHUNKS = 2;
/** Fewest rows or columns of C per GEMM chunk beyond one chunk a thread. */
const GEMM_MIN_SPLIT = 128;

/**
 * Runs one thread's share of the `count` commands at `block` (`_thread`, its index, is kept
 * for the callers' logs; chunks are claimed, not assigned): each command's range is cut into
 * chunks that the threads claim one at a time (an atomic counter in the command), so a thread
 * the OS holds back does less instead of making the others wait at the barrier. Returns the
 * first error thrown (a trap), after running every barrier so the other threads never wait
 * forever. `onCommand` gets each command's milliseconds by `clock` (default: wall time).
 */
export function runShare(
  exports: ProgramExports,
  memory: WebAssembly.Memory,
  job: { block: number; count: number; scratch: number; mr: number; nr: number },
  _thread: number,
  threads: number,
  onCommand?: (c: number, ms: number) => void,
  clock: () => number = () => performance.now(),
): unknown {
  let error: unknown = null;
  for (let c = 0; c < job.count; c++) {
    const t0 = onCommand === undefined ? 0 : clock();
    const words = new Int32Array(memory.buffer);
    const at = job.block / 4 + c * CMD_WORDS;
    const code = words[at];
    /** Calls `run(lo, hi)` for each claimed chunk of `units` units of `unit` elements. */
    const claim = (
      size: number,
      unit: number,
      perThread: number,
      run: (lo: number, hi: number) => void,
    ) => {
      const units = Math.ceil(size / unit);
      const chunks = threads === 1 ? 1 : Math.min(units, threads * perThread);
      for (;;) {
        const k = threads === 1 ? words[at + 4]++ : Atomics.add(words, at + 4, 1);
        if (k >= chunks) return;
        const lo = Math.floor(units * k / chunks) * unit;
        const hi = Math.min(size, Math.floor(units * (k + 1) / chunks) * unit);
        if (hi > lo) run(lo, hi);
      }
    };
    try {
      if (error === null) {
        if (code === CMD.kernel) {
          const fn = exports[`k${words[at + 1]}`], args = words[at + 2];
          claim(words[at + 3], 1, KERNEL_CHUNKS, (lo, hi) => fn(args, lo, hi));
        } else {
          // Split C by its longer side, in whole register blocks.
          const m = words[at + 3], n = words[at + 2], p = words[at + 1];
          const side = Math.max(m, n);
          const per = side >= threads * GEMM_CHUNKS * GEMM_MIN_SPLIT ? GEMM_CHUNKS : 1;
          if (m >= n) {
            claim(m, job.mr, per, (lo, hi) => exports.gemm(p, lo, hi, 0, n, job.scratch));
          } else {
            claim(n, job.nr, per, (lo, hi) => exports.gemm(p, 0, m, lo, hi, job.scratch));
          }
        }
      }
    } catch (e) {
      error = e;
    }
    barrier(words, threads);
    onCommand?.(c, clock() - t0);
  }
  return error;
}
