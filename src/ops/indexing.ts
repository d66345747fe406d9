/**
 * Indexing: index ranges, take-along-axis, one-hot, and the scatter that undoes a gather.
 *
 * @module
 */
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/dtype.ts";
import { apply, type Tensor } from "../tensor.ts";
import { cast, equal } from "./elementwise.ts";
import { broadcastTo, expandDims, normAxes } from "./movement.ts";

/**
 * A tensor of `shape` whose values are the index along `axis`.
 *
 * @example
 * ```ts
 * import { iota } from "./indexing.ts";
 * await iota([2, 3], 1).data(); // Float32Array [0, 1, 2, 0, 1, 2]
 * ```
 */
export function iota(shape: readonly number[], axis: number, dtype: DType = "float32"): Tensor {
  const [ax] = normAxes(axis, shape.length);
  return apply("iota", [], { shape: [...shape], axis: ax, dtype });
}

function int32(idx: Tensor, what: string): Tensor {
  if (idx.dtype !== "int32") {
    throw new TypeError(`${what}: indices must be int32, got ${idx.dtype}`);
  }
  return idx;
}

/**
 * Take along an axis: `out[..., i, ...] = x[..., idx[..., i, ...], ...]`; `idx` has the rank
 * of `x` and broadcasts against it off `axis`.
 *
 * @example
 * ```ts
 * import { takeAlongAxis } from "./indexing.ts";
 * import { tensor } from "./creation.ts";
 * const x = tensor([[10, 11, 12], [20, 21, 22]]);
 * const idx = tensor(new Int32Array([2, 0]), [2, 1]);
 * await takeAlongAxis(x, idx, 1).data(); // Float32Array [12, 20]
 * ```
 */
export function takeAlongAxis(x: Tensor, idx: Tensor, axis: number): Tensor {
  const [ax] = normAxes(axis, x.ndim);
  int32(idx, "takeAlongAxis");
  if (idx.ndim !== x.ndim) {
    throw new RangeError(
      `takeAlongAxis: indices ${fmtShape(idx.shape)} must have the rank of ${fmtShape(x.shape)}`,
    );
  }
  const shape = x.shape.map((d, i) => i === ax ? idx.shape[ax] : d);
  return apply("gather", [x, broadcastTo(idx, shape)], { axis: ax });
}

/**
 * Rows (or slices along `axis`) of `x` picked by a 1-D int32 index.
 *
 * @example
 * ```ts
 * import { take } from "./indexing.ts";
 * import { tensor } from "./creation.ts";
 * const x = tensor([[1, 2], [3, 4], [5, 6]]);
 * await take(x, tensor(new Int32Array([2, 0])), 0).data(); // Float32Array [5, 6, 1, 2]
 * ```
 */
export function take(x: Tensor, indices: Tensor, axis = 0): Tensor {
  const [ax] = normAxes(axis, x.ndim);
  int32(indices, "take");
  if (indices.ndim !== 1) {
    throw new RangeError(`take: expected 1-D indices, got ${fmtShape(indices.shape)}`);
  }
  const shape = x.shape.map((d, i) => i === ax ? indices.shape[0] : d);
  const view = x.shape.map((_, i) => i === ax ? indices.shape[0] : 1);
  const idx = broadcastTo(apply("reshape", [indices], { shape: view }), shape);
  return apply("gather", [x, idx], { axis: ax });
}

/**
 * The transpose of a gather: zeros of `shape`, then `out[..., idx[i], ...] += updates[i]`.
 *
 * @example
 * ```ts
 * import { scatterAdd } from "./indexing.ts";
 * import { tensor } from "./creation.ts";
 * const idx = tensor(new Int32Array([1, 1]), [2]);
 * await scatterAdd(tensor([1, 2]), idx, [3], 0).data(); // Float32Array [0, 3, 0]
 * ```
 */
export function scatterAdd(
  updates: Tensor,
  idx: Tensor,
  shape: readonly number[],
  axis: number,
): Tensor {
  int32(idx, "scatterAdd");
  const [ax] = normAxes(axis, shape.length);
  return apply("scatterAdd", [updates, idx], { axis: ax, shape: [...shape] });
}

/**
 * One-hot rows: `out[i, c] = labels[i] == c`, as float32 (or `dtype`).
 *
 * @example
 * ```ts
 * import { oneHot } from "./indexing.ts";
 * import { tensor } from "./creation.ts";
 * await oneHot(tensor(new Int32Array([1, 0])), 2).data(); // Float32Array [0, 1, 1, 0]
 * ```
 */
export function oneHot(labels: Tensor, classes: number, dtype: DType = "float32"): Tensor {
  int32(labels, "oneHot");
  const shape = [...labels.shape, classes];
  const lab = broadcastTo(expandDims(labels, labels.ndim), shape);
  return cast(equal(lab, iota(shape, labels.ndim, "int32")), dtype);
}
