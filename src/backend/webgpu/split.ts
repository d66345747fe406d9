/**
 * Tensors larger than one storage binding: such a tensor stays in one buffer and is bound as
 * several consecutive ranges ("parts") of it, each within the binding limit and starting at a
 * 256-byte aligned offset; kernels read and write it through accessor functions that pick the
 * part by index (`codegen.ts`).
 *
 * @module
 */

/** Alignment of a part's offset (the largest `minStorageBufferOffsetAlignment` WebGPU allows). */
export const PART_ALIGNMENT = 256;

/** How a tensor of some size is bound. */
export interface BindingParts {
  /** Number of bindings (1: bound whole, as usual). */
  count: number;
  /** Elements in every part but the last (a multiple of 64: 256-byte aligned offsets). */
  elements: number;
}

/**
 * The parts a tensor of `bytes` (4-byte elements) is bound as, under a binding limit of `limit`
 * bytes: one part when it fits, else parts of the largest 256-byte multiple within the limit.
 *
 * @example
 * ```ts
 * import { bindingParts } from "./split.ts";
 * bindingParts(1000, 4096); // { count: 1, elements: 250 }
 * bindingParts(4000, 1024); // { count: 4, elements: 256 }
 * ```
 */
export function bindingParts(bytes: number, limit: number): BindingParts {
  if (bytes <= limit) return { count: 1, elements: Math.max(1, bytes / 4) };
  const partBytes = Math.floor(limit / PART_ALIGNMENT) * PART_ALIGNMENT;
  if (partBytes < PART_ALIGNMENT) {
    throw new RangeError(
      `Cannot split a ${bytes}-byte tensor across bindings of at most ${limit} bytes: expected a binding limit of at least ${PART_ALIGNMENT} bytes`,
    );
  }
  return { count: Math.ceil(bytes / partBytes), elements: partBytes / 4 };
}
