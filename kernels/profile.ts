/**
 * Picking a tile profile from the adapter.
 *
 * @module
 */
import type { KernelProfile } from "./_gemm.ts";

export type { KernelProfile } from "./_gemm.ts";

/**
 * The tile profile for an adapter: `"llvmpipe"` (register-blocked, no workgroup memory) for
 * CPU fallback adapters such as Mesa's llvmpipe, `"discrete"` (128x128 workgroup tiles) else.
 *
 * @example
 * ```ts
 * import { kernelProfileFor } from "./profile.ts";
 * console.assert(kernelProfileFor({ isFallbackAdapter: true, description: "llvmpipe" }) === "llvmpipe");
 * console.assert(kernelProfileFor({ isFallbackAdapter: false, description: "NVIDIA H100" }) === "discrete");
 * ```
 */
export function kernelProfileFor(
  info: { isFallbackAdapter?: boolean; description?: string },
): KernelProfile {
  const cpu = info.isFallbackAdapter === true ||
    /llvmpipe|lavapipe|swiftshader|software/i.test(info.description ?? "");
  return cpu ? "llvmpipe" : "discrete";
}
