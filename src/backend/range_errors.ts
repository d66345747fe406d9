/**
 * Out-of-range index reports of generated kernels (gather, scatter-add), shared by the WebGPU
 * and wasm backends: a kernel writes a small code and the offending index, and the host turns
 * them into the cpu interpreter's message.
 *
 * @module
 */
import type { Node } from "../ir/node.ts";

/**
 * Messages for out-of-range index reports, by code (from 1, never reused). At most
 * `maxRangeCodes` are kept, the least recently used dropped: a dropped code's report then
 * says less (no op, axis or size), never something wrong.
 */
const rangeReports = new Map<number, { op: string; axis: number; size: number }>();
const rangeCodes = new Map<string, number>();
let maxRangeCodes = 4096;
let nextRangeCode = 1;

/**
 * The code kernels report for an out-of-range index of `node` (a gather or scatter-add).
 *
 * @example
 * ```ts
 * import { rangeCode, rangeError } from "./range_errors.ts";
 * import * as cg from "../../mod.ts";
 * const node = cg.take(cg.zeros([3]), cg.zeros([1], { dtype: "int32" }), 0).node;
 * rangeError(rangeCode(node), 7).message; // "gather: index 7 is out of range [0, 3) on axis 0"
 * ```
 */
export function rangeCode(node: Node): number {
  const axis = (node.params as { axis: number }).axis;
  const size = node.op === "gather" ? node.inputs[0].shape[axis] : node.shape[axis];
  const key = `${node.op}|${axis}|${size}`;
  let code = rangeCodes.get(key);
  if (code !== undefined) {
    rangeCodes.delete(key);
  } else {
    code = nextRangeCode++;
    rangeReports.set(code, { op: node.op, axis, size });
  }
  rangeCodes.set(key, code);
  while (rangeCodes.size > maxRangeCodes) {
    const [oldKey, oldCode] = rangeCodes.entries().next().value!;
    rangeCodes.delete(oldKey);
    rangeReports.delete(oldCode);
  }
  return code;
}

/**
 * How many out-of-range report codes are kept; with `limit`, first sets the bound (tests).
 *
 * @example
 * ```ts
 * import { rangeCodeCount } from "./range_errors.ts";
 * rangeCodeCount() <= 4096; // true
 * ```
 */
export function rangeCodeCount(limit?: number): number {
  if (limit !== undefined) maxRangeCodes = limit;
  return rangeReports.size;
}

/**
 * The error for a reported out-of-range index (the same message as the cpu interpreter's).
 *
 * @example
 * ```ts
 * import { rangeError } from "./range_errors.ts";
 * rangeError(0, 5) instanceof RangeError; // true
 * ```
 */
export function rangeError(code: number, index: number): RangeError {
  const r = rangeReports.get(code);
  if (r === undefined) {
    return new RangeError(`An index is out of range (code ${code}, index ${index})`);
  }
  return new RangeError(`${r.op}: index ${index} is out of range [0, ${r.size}) on axis ${r.axis}`);
}
