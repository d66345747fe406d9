/**
 * Element types of cosgrad tensors.
 *
 * @module
 */

/** The element types a tensor can hold. `float64` runs on the CPU interpreter only. */
export type DType = "float32" | "float64" | "int32";

/** A typed array holding the elements of one tensor. */
export type TypedArray = Float32Array | Float64Array | Int32Array;

/**
 * Allocates a zero-filled typed array for `dtype`.
 *
 * @example
 * ```ts
 * import { allocate } from "./dtype.ts";
 * allocate("int32", 3); // Int32Array [0, 0, 0]
 * ```
 */
export function allocate(dtype: DType, size: number): TypedArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(size);
    case "float64":
      return new Float64Array(size);
    case "int32":
      return new Int32Array(size);
  }
}

/** Whether `dtype` holds floating-point values (and so can be differentiated). */
export function isFloat(dtype: DType): boolean {
  return dtype !== "int32";
}

/** The dtype of the given typed array. */
export function dtypeOf(array: TypedArray): DType {
  if (array instanceof Float32Array) return "float32";
  if (array instanceof Float64Array) return "float64";
  return "int32";
}

/** Number of elements of a shape. */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Formats a shape the way error messages print it: `[2,3]`. */
export function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(",")}]`;
}
