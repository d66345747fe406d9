/**
 * Threefry-2x32 with 20 rounds (Salmon, Moraes, Dror, Shaw: "Parallel random numbers: as easy
 * as 1, 2, 3", SC 2011), the counter-based generator behind the `threefry` primitive. This is
 * the reference in JavaScript (the CPU interpreter uses it); the WGSL lowering follows it
 * step by step with u32 arithmetic.
 *
 * @module
 */

/** Rotation distances of Threefry-2x32, one per round modulo 8. */
export const THREEFRY_ROTATIONS: readonly number[] = [13, 15, 26, 6, 17, 29, 16, 24];

/** The key-schedule parity constant of Threefish. */
export const THREEFRY_PARITY = 0x1bd11bda;

/**
 * The two output words of Threefry-2x32-20 for key `(k0, k1)` and counter `(x0, x1)`, all
 * read as unsigned 32-bit integers.
 *
 * @example
 * ```ts
 * import { threefry2x32 } from "./threefry.ts";
 * // Random123's known answer for a zero key and counter
 * threefry2x32(0, 0, 0, 0).map((w) => w.toString(16)); // ["6b200159", "99ba4efe"]
 * ```
 */
export function threefry2x32(k0: number, k1: number, x0: number, x1: number): [number, number] {
  const ks = [k0 >>> 0, k1 >>> 0, (THREEFRY_PARITY ^ k0 ^ k1) >>> 0];
  let a = (x0 + ks[0]) >>> 0;
  let b = (x1 + ks[1]) >>> 0;
  for (let round = 0; round < 20; round++) {
    const r = THREEFRY_ROTATIONS[round % 8];
    a = (a + b) >>> 0;
    b = ((b << r) | (b >>> (32 - r))) >>> 0;
    b = (b ^ a) >>> 0;
    if (round % 4 === 3) {
      const s = (round + 1) / 4;
      a = (a + ks[s % 3]) >>> 0;
      b = (b + ks[(s + 1) % 3] + s) >>> 0;
    }
  }
  return [a, b];
}
