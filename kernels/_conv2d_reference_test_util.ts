/**
 * Float64 CPU references of 2-D convolution and its two gradients, written as direct scatter
 * loops (independent of the gather formulation the kernels use), with per-element sums of
 * |terms| for tolerances.
 *
 * @module
 */
import type { Conv2dGeometry } from "./conv2d.ts";

/** A reference result: values and Σ|terms| per element. */
export interface Reference {
  /** Exact-as-float64 values. */
  value: Float64Array;
  /** Sum of the absolute values of the terms of each element. */
  scale: Float64Array;
}

/**
 * Visits every (output pixel, tap) pair with a valid input pixel; `f` gets flat indices of
 * x (NCHW), w (OIHW) and y (NCHW).
 */
function forEachTerm(g: Conv2dGeometry, f: (xi: number, wi: number, yi: number) => void): void {
  const cg = g.c / g.groups;
  const og = g.o / g.groups;
  for (let n = 0; n < g.n; n++) {
    for (let o = 0; o < g.o; o++) {
      const grp = Math.floor(o / og);
      for (let c = 0; c < cg; c++) {
        const ci = grp * cg + c;
        for (let kh = 0; kh < g.kh; kh++) {
          for (let kw = 0; kw < g.kw; kw++) {
            const wi = ((o * cg + c) * g.kh + kh) * g.kw + kw;
            for (let oh = 0; oh < g.oh; oh++) {
              const ih = oh * g.sh - g.pad.top + kh * g.dh;
              if (ih < 0 || ih >= g.h) continue;
              const xrow = ((n * g.c + ci) * g.h + ih) * g.w;
              const yrow = ((n * g.o + o) * g.oh + oh) * g.ow;
              for (let ow = 0; ow < g.ow; ow++) {
                const iw = ow * g.sw - g.pad.left + kw * g.dw;
                if (iw < 0 || iw >= g.w) continue;
                f(xrow + iw, wi, yrow + ow);
              }
            }
          }
        }
      }
    }
  }
}

/**
 * Reference forward convolution.
 *
 * @example
 * ```ts
 * import { conv2dGeometry } from "./conv2d.ts";
 * import { referenceForward } from "./_conv2d_reference_test_util.ts";
 * import assert from "node:assert/strict";
 * const g = conv2dGeometry({ batch: 1, inChannels: 1, height: 1, width: 1, outChannels: 1, kernelH: 1, kernelW: 1 });
 * assert(referenceForward(g, new Float32Array([2]), new Float32Array([3])).value[0] === 6);
 * ```
 */
export function referenceForward(g: Conv2dGeometry, x: Float32Array, w: Float32Array): Reference {
  const size = g.n * g.o * g.oh * g.ow;
  const value = new Float64Array(size);
  const scale = new Float64Array(size);
  forEachTerm(g, (xi, wi, yi) => {
    const p = x[xi] * w[wi];
    value[yi] += p;
    scale[yi] += Math.abs(p);
  });
  return { value, scale };
}

/**
 * Reference gradient of the input.
 *
 * @example
 * ```ts
 * import { conv2dGeometry } from "./conv2d.ts";
 * import { referenceBackwardInput } from "./_conv2d_reference_test_util.ts";
 * import assert from "node:assert/strict";
 * const g = conv2dGeometry({ batch: 1, inChannels: 1, height: 1, width: 1, outChannels: 1, kernelH: 1, kernelW: 1 });
 * assert(referenceBackwardInput(g, new Float32Array([2]), new Float32Array([3])).value[0] === 6);
 * ```
 */
export function referenceBackwardInput(
  g: Conv2dGeometry,
  dy: Float32Array,
  w: Float32Array,
): Reference {
  const size = g.n * g.c * g.h * g.w;
  const value = new Float64Array(size);
  const scale = new Float64Array(size);
  forEachTerm(g, (xi, wi, yi) => {
    const p = dy[yi] * w[wi];
    value[xi] += p;
    scale[xi] += Math.abs(p);
  });
  return { value, scale };
}

/**
 * Reference gradient of the weights (a tight loop: fast enough for the C1 shape).
 *
 * @example
 * ```ts
 * import { conv2dGeometry } from "./conv2d.ts";
 * import { referenceBackwardFilter } from "./_conv2d_reference_test_util.ts";
 * import assert from "node:assert/strict";
 * const g = conv2dGeometry({ batch: 1, inChannels: 1, height: 1, width: 1, outChannels: 1, kernelH: 1, kernelW: 1 });
 * assert(referenceBackwardFilter(g, new Float32Array([2]), new Float32Array([3])).value[0] === 6);
 * ```
 */
export function referenceBackwardFilter(
  g: Conv2dGeometry,
  x: Float32Array,
  dy: Float32Array,
): Reference {
  const cg = g.c / g.groups;
  const og = g.o / g.groups;
  const size = g.o * cg * g.kh * g.kw;
  const value = new Float64Array(size);
  const scale = new Float64Array(size);
  const x64 = Float64Array.from(x);
  const dy64 = Float64Array.from(dy);
  for (let o = 0; o < g.o; o++) {
    const grp = Math.floor(o / og);
    for (let c = 0; c < cg; c++) {
      const ci = grp * cg + c;
      for (let kh = 0; kh < g.kh; kh++) {
        for (let kw = 0; kw < g.kw; kw++) {
          let s = 0;
          let a = 0;
          const owLo = Math.max(0, Math.ceil((g.pad.left - kw * g.dw) / g.sw));
          const owHi = Math.min(g.ow, Math.floor((g.w - 1 + g.pad.left - kw * g.dw) / g.sw) + 1);
          for (let n = 0; n < g.n; n++) {
            for (let oh = 0; oh < g.oh; oh++) {
              const ih = oh * g.sh - g.pad.top + kh * g.dh;
              if (ih < 0 || ih >= g.h) continue;
              const xrow = ((n * g.c + ci) * g.h + ih) * g.w - g.pad.left + kw * g.dw;
              const yrow = ((n * g.o + o) * g.oh + oh) * g.ow;
              for (let ow = owLo; ow < owHi; ow++) {
                const p = dy64[yrow + ow] * x64[xrow + ow * g.sw];
                s += p;
                a += Math.abs(p);
              }
            }
          }
          const wi = ((o * cg + c) * g.kh + kh) * g.kw + kw;
          value[wi] = s;
          scale[wi] = a;
        }
      }
    }
  }
  return { value, scale };
}
