/**
 * cosgrad: a purely functional tensor framework for Deno with reverse-mode autodiff and a
 * WebGPU compiler, built to train face-recognition embeddings with the CosFace loss.
 *
 * ```ts
 * import * as cg from "./mod.ts";
 * const x = cg.tensor([[1, 2], [3, 4]]);
 * const y = cg.matmul(x, cg.transpose(x));
 * await y.data(); // Float32Array [5, 11, 11, 25]
 * const g = cg.grad((w: cg.Tensor) => cg.sum(cg.mul(w, w)))(x);
 * ```
 *
 * @module
 */
export { Tensor } from "./src/tensor.ts";
export type { NestedArray } from "./src/tensor.ts";
export type { DType, TypedArray } from "./src/ir/dtype.ts";
export {
  arange,
  full,
  ones,
  onesLike,
  scalar,
  tensor,
  zeros,
  zerosLike,
} from "./src/ops/creation.ts";
export type { DTypeOptions } from "./src/ops/creation.ts";
export {
  abs,
  acos,
  add,
  cast,
  clip,
  cos,
  div,
  equal,
  exp,
  floor,
  greater,
  greaterEqual,
  less,
  lessEqual,
  log,
  maximum,
  minimum,
  mul,
  neg,
  notEqual,
  pow,
  reciprocal,
  relu,
  rsqrt,
  sigmoid,
  sign,
  sin,
  sqrt,
  square,
  sub,
  tanh,
  where,
} from "./src/ops/elementwise.ts";
export type { TensorLike } from "./src/ops/elementwise.ts";
export {
  argmax,
  argmin,
  logsumexp,
  max,
  mean,
  min,
  stopGradient,
  sum,
  variance,
} from "./src/ops/reduce.ts";
export type { Axes, ReduceOptions } from "./src/ops/reduce.ts";
export {
  broadcastShapes,
  broadcastTo,
  concat,
  expandDims,
  flatten,
  flip,
  pad,
  reshape,
  slice,
  squeeze,
  stack,
  transpose,
} from "./src/ops/movement.ts";
export { conv2d, matmul } from "./src/ops/linalg.ts";
export type { Conv2dOptions } from "./src/ops/linalg.ts";
export { iota, oneHot, scatterAdd, take, takeAlongAxis } from "./src/ops/indexing.ts";
export { l2Normalize, logSoftmax, norm, softmax } from "./src/ops/functional.ts";
export type { L2NormalizeOptions } from "./src/ops/functional.ts";
export {
  bernoulli,
  MAX_TRACED_PERMUTATION,
  normal,
  permutation,
  prngKey,
  randomBits,
  randomKey,
  split,
  splitKey,
  uniform,
} from "./src/ops/random.ts";
export type { RandomKey, SampleOptions } from "./src/ops/random.ts";
export { grad, jvp, linearize, valueAndGrad, vjp } from "./src/autodiff/transforms.ts";
export type { ArgGrads, ArgnumsOf, AuxOf, GradOptions } from "./src/autodiff/transforms.ts";
export { vmap } from "./src/autodiff/vmap.ts";
export type { AxisSpec, VmapOptions } from "./src/autodiff/vmap.ts";
export { checkpoint, customJvp, customVjp } from "./src/autodiff/custom.ts";
export { hessian, jacfwd, jacrev } from "./src/autodiff/jacobian.ts";
export type { JacobianOf, JacobianOptions } from "./src/autodiff/jacobian.ts";
export { checkGrad } from "./src/autodiff/check_grad.ts";
export type { CheckGradOptions, CheckGradReport } from "./src/autodiff/check_grad.ts";
export {
  flatten as treeFlatten,
  registerPytreeNode,
  treeMap,
  unflatten as treeUnflatten,
} from "./src/tree/pytree.ts";
export type { PytreeNode, TreeDef } from "./src/tree/pytree.ts";
export type { CustomRule } from "./src/ir/primitives.ts";
export { getBackend, setBackend } from "./src/backend/registry.ts";
export type { BackendName } from "./src/backend/registry.ts";
export { printGraph } from "./src/ir/printer.ts";
export { compile } from "./src/compile/compile.ts";
export type { CompiledFunction, CompileOptions } from "./src/compile/compile.ts";
export type {
  Backend,
  KernelSummary,
  MemoryReport,
  Program,
  Storage,
} from "./src/backend/storage.ts";
export type { Node } from "./src/ir/node.ts";
export type { ConvParams, Pad4, Prim, PrimParams, StorageLike } from "./src/ir/primitives.ts";
export * as evaluation from "./src/eval/mod.ts";
export * as nn from "./src/nn/mod.ts";
export * as losses from "./src/losses/mod.ts";
export * as optim from "./src/optim/mod.ts";
export { initDefaultBackend, initWebGpu, startWebGpu } from "./src/backend/webgpu/mod.ts";
export { startWasm } from "./src/backend/wasm/mod.ts";
export { trainLoop } from "./src/train/loop.ts";
export type { StepResult, TrainLoopOptions, TrainLoopResult } from "./src/train/loop.ts";
