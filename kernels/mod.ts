/**
 * Hand-written, shape-specialised WGSL kernel generators: each takes a shape spec and returns a
 * {@linkcode KernelPlan} (WGSL sources, dispatch sizes, binding names, scratch buffers).
 *
 * ```ts
 * import { kernelProfileFor, matmulKernel } from "./mod.ts";
 * const plan = matmulKernel({
 *   batch: 1, m: 1024, n: 1024, k: 1024,
 *   profile: kernelProfileFor({ isFallbackAdapter: true }),
 * });
 * console.assert(plan.steps.length === 1);
 * ```
 *
 * @module
 */
export type { Epilogue, KernelPlan, KernelSource, ScratchBuffer } from "./types.ts";
export { chooseGemmConfig, matmulKernel } from "./matmul.ts";
export type { GemmConfig, GemmTile, MatmulSpec } from "./matmul.ts";
export {
  conv2dBackwardFilterKernel,
  conv2dBackwardInputKernel,
  conv2dForwardKernel,
  conv2dGeometry,
} from "./conv2d.ts";
export type { Conv2dGeometry, Conv2dPadding, Conv2dSpec } from "./conv2d.ts";
export { conv2dRowsKernel, rowsTile } from "./conv2d_rows.ts";
export type { Conv2dRowsSpec } from "./conv2d_rows.ts";
export { reduceRowsKernel } from "./reduce.ts";
export type { ReduceOp, ReducePrologue, ReduceRowsSpec } from "./reduce.ts";
export { kernelProfileFor } from "./profile.ts";
export type { KernelProfile } from "./profile.ts";
