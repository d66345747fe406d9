/**
 * Checkpoints in the safetensors format, written atomically. File access uses Deno's APIs,
 * so this module is a subpath of its own (`@cosgrad/cosgrad/io`).
 *
 * @example
 * ```ts
 * import { decodeSafetensors, encodeSafetensors } from "./mod.ts";
 * const bytes = encodeSafetensors({ w: { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) } });
 * decodeSafetensors(bytes).tensors.w.shape; // [2]
 * ```
 *
 * @module
 */
export {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  saveSafetensors,
  writeFileAtomic,
} from "./safetensors.ts";
export type {
  SafetensorsContents,
  SafetensorsDtype,
  TensorRecord,
  TensorRecords,
} from "./safetensors.ts";
export {
  CheckpointError,
  CHECKSUM_KEY,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  removeStaleTemporaries,
  saveCheckpoint,
} from "./checkpoint.ts";
export type { Checkpoint } from "./checkpoint.ts";
export { fromOnnx, splitStatistics } from "./onnx_import.ts";
export type { OnnxModel, OnnxValue } from "./onnx_import.ts";
export { toOnnx } from "./onnx_export.ts";
export type { ToOnnxOptions } from "./onnx_export.ts";
// Types the ONNX functions' signatures mention, so this subpath documents them.
export type { NestedArray, Tensor } from "../tensor.ts";
export type { DType, TypedArray } from "../ir/dtype.ts";
export type { Node } from "../ir/node.ts";
export type {
  ConvParams,
  CustomRule,
  Pad4,
  Prim,
  PrimParams,
  StorageLike,
} from "../ir/primitives.ts";
