/**
 * The 2-D convolution layer (NCHW input, OIHW weights).
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { add } from "../ops/elementwise.ts";
import { conv2d as conv2dOp, type Conv2dOptions } from "../ops/linalg.ts";
import { filled } from "./_util.ts";
import { reshape } from "../ops/movement.ts";
import type { RandomKey } from "../ops/random.ts";
import { type Initializer, kaimingUniform } from "./init.ts";

/** Parameters of {@link conv2d}: weight OIHW, optional bias [O]. */
export interface Conv2dParams {
  /** The kernel, [out channels, in channels / groups, kh, kw]. */
  weight: Tensor;
  /** The bias, [out channels]. */
  bias?: Tensor;
}

/** Options of {@link initConv2d}. */
export interface Conv2dInitOptions {
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Kernel size: one number or [height, width] (default 3). */
  kernel?: number | [number, number];
  /** Channel groups (default 1). */
  groups?: number;
  /** Whether to add a bias, initialised to zero (default true, as PyTorch). */
  bias?: boolean;
  /** Weight initialiser (default Kaiming uniform, gain √2). */
  init?: Initializer;
  /** Element type (default float32). */
  dtype?: DType;
}

/**
 * Parameters of a convolution layer.
 *
 * @example
 * ```ts
 * import { initConv2d } from "./conv.ts";
 * import { randomKey } from "../ops/random.ts";
 * const p = initConv2d(randomKey(0), { inChannels: 3, outChannels: 8, bias: false });
 * p.weight.shape; // [8, 3, 3, 3]
 * ```
 */
export function initConv2d(key: RandomKey, options: Conv2dInitOptions): Conv2dParams {
  const { inChannels, outChannels, groups = 1, dtype = "float32" } = options;
  const k = options.kernel ?? 3;
  const [kh, kw] = typeof k === "number" ? [k, k] : k;
  for (
    const [name, v] of [
      ["inChannels", inChannels],
      ["outChannels", outChannels],
      [
        "kernel",
        kh,
      ],
      ["kernel", kw],
      ["groups", groups],
    ] as const
  ) {
    if (!Number.isInteger(v) || v < 1) {
      throw new RangeError(`initConv2d: ${name} must be a positive integer, got ${v}`);
    }
  }
  if (inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new RangeError(
      `initConv2d: groups ${groups} must divide the channels ${inChannels} -> ${outChannels}`,
    );
  }
  const shape = [outChannels, inChannels / groups, kh, kw];
  const weight = (options.init ?? kaimingUniform)(key, shape, { dtype });
  return options.bias ?? true ? { weight, bias: filled([outChannels], 0, dtype) } : { weight };
}

/**
 * Convolution of x [N, C, H, W] with the layer's kernel, plus its bias. Options as
 * `cg.conv2d` (stride, padding, dilation, groups).
 *
 * @example
 * ```ts
 * import { conv2d, initConv2d } from "./conv.ts";
 * import { randomKey } from "../ops/random.ts";
 * import { ones } from "../ops/creation.ts";
 * const p = initConv2d(randomKey(0), { inChannels: 3, outChannels: 8 });
 * conv2d(p, ones([2, 3, 16, 16]), { stride: 2, padding: 1 }).shape; // [2, 8, 8, 8]
 * ```
 */
export function conv2d(params: Conv2dParams, x: Tensor, options: Conv2dOptions = {}): Tensor {
  const y = conv2dOp(x, params.weight, options);
  if (params.bias === undefined) return y;
  return add(y, reshape(params.bias, [1, -1, 1, 1]));
}
