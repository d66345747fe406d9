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
export const BARRIER_WORDS = 32;

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

/**
 * Runs thread `t`'s share of the `count` commands at `block`; returns the first error thrown
 * (a trap), after running every barrier so the other threads never wait forever.
 */
export function runShare(
  exports: ProgramExports,
  memory: WebAssembly.Memory,
  job: { block: number; count: number; scratch: number; mr: number; nr: number },
  t: number,
  threads: number,
  onCommand?: (c: number, ms: number) => void,
): unknown {
  let error: unknown = null;
  for (let c = 0; c < job.count; c++) {
    const t0 = onCommand === undefined ? 0 : performance.now();
    const words = new Int32Array(memory.buffer);
    const at = job.block / 4 + c * CMD_WORDS;
    const code = words[at];
    try {
      if (error === null) {
        if (code === CMD.kernel) {
          const total = words[at + 3];
          const lo = Math.floor(total * t / threads), hi = Math.floor(total * (t + 1) / threads);
          if (hi > lo) exports[`k${words[at + 1]}`](words[at + 2], lo, hi);
        } else {
          // Split C by its longer side, in whole register blocks.
          const m = words[at + 3], n = words[at + 2];
          const share = (size: number, unit: number): [number, number] => {
            const blocks = Math.ceil(size / unit);
            return [
              Math.floor(blocks * t / threads) * unit,
              Math.min(size, Math.floor(blocks * (t + 1) / threads) * unit),
            ];
          };
          const [m0, m1] = m >= n ? share(m, job.mr) : [0, m];
          const [n0, n1] = m >= n ? [0, n] : share(n, job.nr);
          if (m1 > m0 && n1 > n0) exports.gemm(words[at + 1], m0, m1, n0, n1, job.scratch);
        }
      }
    } catch (e) {
      error = e;
    }
    barrier(words, threads);
    onCommand?.(c, performance.now() - t0);
  }
  return error;
}
