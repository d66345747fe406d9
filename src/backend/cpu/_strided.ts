// Strided copies over N-d index spaces, shared by the CPU interpreter's movement rules.
import type { TypedArray } from "../../ir/dtype.ts";

/** dst[i] = src[offset + Σ idx_k * strides_k] for every output multi-index, in row-major order. */
export function readStrided(
  src: TypedArray,
  dst: TypedArray,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): void {
  walk(shape, strides, offset, (o, i) => {
    dst[o] = src[i];
  });
}

/** dst[offset + Σ idx_k * strides_k] = src[i] for every source multi-index. */
export function writeStrided(
  src: TypedArray,
  dst: TypedArray,
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
): void {
  walk(shape, strides, offset, (o, i) => {
    dst[i] = src[o];
  });
}

/** Calls fn(flatIndex, stridedIndex) for every multi-index of `shape`; the last axis is fast. */
export function walk(
  shape: readonly number[],
  strides: readonly number[],
  offset: number,
  fn: (flat: number, strided: number) => void,
): void {
  const rank = shape.length;
  const total = shape.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  if (rank === 0) {
    fn(0, offset);
    return;
  }
  const idx = new Array<number>(rank).fill(0);
  const inner = shape[rank - 1];
  const innerStride = strides[rank - 1];
  let pos = offset;
  for (let flat = 0; flat < total; flat += inner) {
    for (let j = 0; j < inner; j++) fn(flat + j, pos + j * innerStride);
    for (let a = rank - 2; a >= 0; a--) {
      idx[a]++;
      pos += strides[a];
      if (idx[a] < shape[a]) break;
      pos -= strides[a] * shape[a];
      idx[a] = 0;
    }
  }
}
