/**
 * Creating tensors: from values, filled, and index ranges.
 *
 * @module
 */
import { type DType, dtypeOf, fmtShape, sizeOf, type TypedArray } from "../ir/dtype.ts";
import { HostStorage } from "../backend/storage.ts";
import { apply, fromStorage, type NestedArray, Tensor } from "../tensor.ts";

/** Options of the creation functions. */
export interface DTypeOptions {
  /** Element type; float32 unless the values say otherwise. */
  dtype?: DType;
}

function flatten(values: NestedArray, shape: number[], out: number[], depth: number): void {
  if (typeof values === "number") {
    if (depth !== shape.length) throw new RangeError(`Ragged nested array at depth ${depth}`);
    out.push(values);
    return;
  }
  if (!Array.isArray(values)) {
    throw new TypeError(`Expected a number or an array, got ${typeof values}`);
  }
  if (depth === shape.length) shape.push(values.length);
  else if (shape[depth] !== values.length) {
    throw new RangeError(
      `Ragged nested array: length ${values.length} at depth ${depth}, expected ${shape[depth]}`,
    );
  }
  for (const v of values) flatten(v, shape, out, depth + 1);
}

function convert(values: ArrayLike<number>, dtype: DType): TypedArray {
  switch (dtype) {
    case "float32":
      return Float32Array.from(values);
    case "float64":
      return Float64Array.from(values);
    case "int32":
      return Int32Array.from(values);
  }
}

/**
 * A tensor from nested arrays, or from a flat array or typed array plus a shape.
 *
 * @example
 * ```ts
 * import { tensor } from "./creation.ts";
 * const a = tensor([[1, 2], [3, 4]]);            // float32 [2, 2]
 * const b = tensor(new Int32Array([0, 2]), [2]); // int32 [2]
 * a.shape; // [2, 2]
 * ```
 */
export function tensor(
  values: NestedArray | TypedArray | readonly number[],
  shape?: readonly number[],
  options: DTypeOptions = {},
): Tensor {
  let flat: ArrayLike<number>;
  let dims: number[];
  let dtype: DType = options.dtype ?? "float32";
  if (ArrayBuffer.isView(values)) {
    flat = values as TypedArray;
    dtype = options.dtype ?? dtypeOf(values as TypedArray);
    dims = shape ? [...shape] : [flat.length];
  } else {
    const found: number[] = [];
    const out: number[] = [];
    flatten(values as NestedArray, found, out, 0);
    flat = out;
    dims = shape ? [...shape] : found;
  }
  if (sizeOf(dims) !== flat.length) {
    throw new RangeError(`Cannot shape ${flat.length} values as ${fmtShape(dims)}`);
  }
  const data = ArrayBuffer.isView(values) && dtypeOf(values as TypedArray) === dtype
    ? (values as TypedArray).slice()
    : convert(flat, dtype);
  return fromStorage(new HostStorage(data), dims);
}

/**
 * A tensor of `shape` filled with `value`.
 *
 * @example
 * ```ts
 * import { full } from "./creation.ts";
 * await full([2], 7).data(); // Float32Array [7, 7]
 * ```
 */
export function full(shape: readonly number[], value: number, options: DTypeOptions = {}): Tensor {
  const s = apply("scalar", [], { value, dtype: options.dtype ?? "float32" });
  const r = apply("reshape", [s], { shape: shape.map(() => 1) });
  return apply("broadcast", [r], { shape: [...shape] });
}

/**
 * Zeros of `shape`.
 *
 * @example
 * ```ts
 * import { zeros } from "./creation.ts";
 * zeros([2, 3]).shape; // [2, 3]
 * ```
 */
export function zeros(shape: readonly number[], options: DTypeOptions = {}): Tensor {
  return full(shape, 0, options);
}

/**
 * Ones of `shape`.
 *
 * @example
 * ```ts
 * import { ones } from "./creation.ts";
 * await ones([2]).data(); // Float32Array [1, 1]
 * ```
 */
export function ones(shape: readonly number[], options: DTypeOptions = {}): Tensor {
  return full(shape, 1, options);
}

/**
 * `start, start + step, ...` below `stop`; with one argument, `0 .. n-1`.
 *
 * @example
 * ```ts
 * import { arange } from "./creation.ts";
 * await arange(3).data();       // Float32Array [0, 1, 2]
 * await arange(1, 7, 2).data(); // Float32Array [1, 3, 5]
 * ```
 */
export function arange(
  start: number,
  stop?: number,
  step = 1,
  options: DTypeOptions = {},
): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  if (step === 0) throw new RangeError("arange: step must not be 0");
  const n = Math.max(0, Math.ceil((stop - start) / step));
  const dtype = options.dtype ?? "float32";
  const values = Array.from({ length: n }, (_, i) => start + i * step);
  return tensor(values, [n], { dtype });
}

/** Zeros shaped like `t`. */
export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, { dtype: t.dtype });
}

/** Ones shaped like `t`. */
export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, { dtype: t.dtype });
}

/** `value` as a tensor of shape [] in `dtype`, kept symbolic (inlined into kernels). */
export function scalar(value: number, dtype: DType = "float32"): Tensor {
  return apply("scalar", [], { value, dtype });
}

/** `x` if it is a tensor; a number becomes a scalar of `dtype`. */
export function asTensor(x: Tensor | number, dtype: DType = "float32"): Tensor {
  return x instanceof Tensor ? x : scalar(x, dtype);
}
