// Shared helpers of the WebGPU suites: the backend when an adapter exists (tests skip with a
// visible message otherwise), and float32 comparisons against the cpu backend.
import type { TypedArray } from "../../ir/dtype.ts";
import { startWebGpuBackend } from "./start.ts";
import type { WebGpuBackend } from "./webgpu_backend.ts";

/** The WebGPU backend, or null (with the reason printed) when there is no adapter. */
export const gpu: WebGpuBackend | null = await startWebGpuBackend().then(
  (b) => {
    console.log(`webgpu suites run on: ${b.description}`);
    return b;
  },
  (e) => {
    console.log(`%cwebgpu suites SKIPPED: ${(e as Error).message}`, "color: yellow");
    return null;
  },
);

/**
 * Asserts `actual` (webgpu) is within float32 tolerance of `expected` (cpu): each element
 * within `rtol * |expected| + atol * (1 + max |expected|)`; NaNs must match.
 */
export function assertClose(
  actual: TypedArray,
  expected: TypedArray,
  what: string,
  options: { rtol?: number; atol?: number } = {},
): void {
  const rtol = options.rtol ?? 2e-3;
  const atol = options.atol ?? 2e-4;
  if (actual.length !== expected.length) {
    throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  }
  let scale = 0;
  for (const v of expected) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(e) || Number.isNaN(a)) {
      if (Number.isNaN(e) && Number.isNaN(a)) continue;
      throw new Error(`${what}: element ${i} is ${a}, expected ${e}`);
    }
    if (!Number.isFinite(e) || !Number.isFinite(a)) {
      if (a === e) continue;
      throw new Error(`${what}: element ${i} is ${a}, expected ${e}`);
    }
    const tol = rtol * Math.abs(e) + atol * (1 + scale);
    if (Math.abs(a - e) > tol) {
      throw new Error(
        `${what}: element ${i} of ${expected.length} is ${a}, expected ${e} (tolerance ${
          tol.toExponential(2)
        })`,
      );
    }
  }
}
