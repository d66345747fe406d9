/**
 * Matrix products and convolutions.
 *
 * @module
 */
import { fmtShape } from "../ir/dtype.ts";
import type { ConvParams, Pad4 } from "../ir/primitives.ts";
import { apply, type Tensor } from "../tensor.ts";
import { broadcastShapes, broadcastTo, reshape } from "./movement.ts";

/**
 * Matrix product with NumPy semantics: batch axes broadcast; a 1-D operand is a vector.
 *
 * @example
 * ```ts
 * import { matmul } from "./linalg.ts";
 * import { tensor } from "./creation.ts";
 * await matmul(tensor([[1, 2], [3, 4]]), tensor([[1], [1]])).data(); // Float32Array [3, 7]
 * ```
 */
export function matmul(a: Tensor, b: Tensor): Tensor {
  if (a.ndim === 0 || b.ndim === 0) {
    throw new RangeError(
      `matmul: operands must have rank >= 1, got ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`,
    );
  }
  const va = a.ndim === 1, vb = b.ndim === 1;
  const a2 = va ? reshape(a, [1, a.shape[0]]) : a;
  const b2 = vb ? reshape(b, [b.shape[0], 1]) : b;
  const [m, k] = a2.shape.slice(-2);
  const [k2, n] = b2.shape.slice(-2);
  if (k !== k2) {
    throw new RangeError(`matmul: cannot multiply ${fmtShape(a.shape)} by ${fmtShape(b.shape)}`);
  }
  const batch = broadcastShapes(a2.shape.slice(0, -2), b2.shape.slice(0, -2));
  const out = apply("matmul", [
    broadcastTo(a2, [...batch, m, k]),
    broadcastTo(b2, [...batch, k, n]),
  ], {});
  if (!va && !vb) return out;
  const shape = [...batch, ...(va ? [] : [m]), ...(vb ? [] : [n])];
  return reshape(out, shape);
}

/** Options of {@link conv2d}. */
export interface Conv2dOptions {
  /** Step between windows: one number or [height, width] (default 1). */
  stride?: number | [number, number];
  /**
   * Zero padding: one number, [height, width], [top, bottom, left, right], `"same"` (for
   * stride 1) or `"valid"` (default 0).
   */
  padding?: number | [number, number] | Pad4 | "same" | "valid";
  /** Spacing of kernel taps (default 1). */
  dilation?: number | [number, number];
  /** Channel groups (default 1; equal to the channels for a depthwise convolution). */
  groups?: number;
}

function pair(v: number | [number, number] | undefined, d: number, what: string): [number, number] {
  const r: [number, number] = v === undefined ? [d, d] : typeof v === "number" ? [v, v] : v;
  if (r.some((x) => !Number.isInteger(x) || x < 1)) {
    throw new RangeError(`conv2d: ${what} must be positive integers, got ${JSON.stringify(v)}`);
  }
  return r;
}

/** Resolves the options of {@link conv2d} for a kernel of height kh and width kw. */
export function convParams(kh: number, kw: number, o: Conv2dOptions = {}): ConvParams {
  const stride = pair(o.stride, 1, "stride");
  const dilation = pair(o.dilation, 1, "dilation");
  const groups = o.groups ?? 1;
  let padding: Pad4;
  const p = o.padding ?? 0;
  if (p === "valid") padding = [0, 0, 0, 0];
  else if (p === "same") {
    const th = dilation[0] * (kh - 1), tw = dilation[1] * (kw - 1);
    padding = [
      Math.floor(th / 2),
      th - Math.floor(th / 2),
      Math.floor(tw / 2),
      tw - Math.floor(tw / 2),
    ];
  } else if (typeof p === "number") padding = [p, p, p, p];
  else if (p.length === 2) padding = [p[0], p[0], p[1], p[1]];
  else padding = [...p] as Pad4;
  if (padding.some((x) => !Number.isInteger(x) || x < 0)) {
    throw new RangeError(`conv2d: padding must be non-negative integers, got ${JSON.stringify(p)}`);
  }
  if (!Number.isInteger(groups) || groups < 1) {
    throw new RangeError(`conv2d: groups must be a positive integer, got ${groups}`);
  }
  return { stride, padding, dilation, groups };
}

/**
 * 2-D convolution (cross-correlation, as in every deep learning framework) of an NCHW input
 * with OIHW weights.
 *
 * @example
 * ```ts
 * import { conv2d } from "./linalg.ts";
 * import { ones } from "./creation.ts";
 * const y = conv2d(ones([1, 3, 8, 8]), ones([4, 3, 3, 3]), { stride: 2, padding: 1 });
 * y.shape; // [1, 4, 4, 4]
 * ```
 */
export function conv2d(x: Tensor, w: Tensor, options: Conv2dOptions = {}): Tensor {
  if (w.ndim !== 4) throw new RangeError(`conv2d: weights must be OIHW, got ${fmtShape(w.shape)}`);
  return apply("conv2d", [x, w], convParams(w.shape[2], w.shape[3], options));
}
