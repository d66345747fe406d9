/**
 * Residual blocks of the face networks: SphereFace's unit (two 3x3 convolutions with PReLU,
 * added to the input) and insightface's IResNet basic block (BN-conv-BN-PReLU-conv-BN, plus
 * a projection shortcut where the shape changes).
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { add } from "../ops/elementwise.ts";
import { type RandomKey, split } from "../ops/random.ts";
import { gaussian001, gaussian01 } from "./_util.ts";
import { conv2d, type Conv2dParams, initConv2d } from "./conv.ts";
import { initPrelu, prelu, type PreluParams } from "./prelu.ts";
import {
  batchNorm,
  type BatchNormParams,
  type BatchNormState,
  initBatchNorm,
} from "./batch_norm.ts";
import type { Initializer } from "./init.ts";

/** Parameters of {@link sphereUnit}. */
export interface SphereUnitParams {
  /** First 3x3 convolution. */
  conv1: Conv2dParams;
  /** First PReLU. */
  prelu1: PreluParams;
  /** Second 3x3 convolution. */
  conv2: Conv2dParams;
  /** Second PReLU. */
  prelu2: PreluParams;
}

/** Options of {@link initSphereUnit}. */
export interface SphereUnitInitOptions {
  /** Channels in and out. */
  channels: number;
  /** Convolution biases (default false, as the released Caffe model). */
  bias?: boolean;
  /** Weight initialiser (default N(0, 0.01²), as the released Caffe model). */
  init?: Initializer;
  /** Element type (default float32). */
  dtype?: DType;
}

/**
 * Parameters of a SphereFace residual unit.
 *
 * @example
 * ```ts
 * import { initSphereUnit } from "./residual.ts";
 * import { randomKey } from "../ops/random.ts";
 * initSphereUnit(randomKey(0), { channels: 8 }).conv1.weight.shape; // [8, 8, 3, 3]
 * ```
 */
export function initSphereUnit(key: RandomKey, options: SphereUnitInitOptions): SphereUnitParams {
  const { channels, dtype = "float32" } = options;
  const [k1, k2] = split(key);
  const conv = (k: RandomKey) =>
    initConv2d(k, {
      inChannels: channels,
      outChannels: channels,
      bias: options.bias ?? false,
      init: options.init ?? gaussian001,
      dtype,
    });
  return {
    conv1: conv(k1),
    prelu1: initPrelu(channels, { dtype }),
    conv2: conv(k2),
    prelu2: initPrelu(channels, { dtype }),
  };
}

/**
 * SphereFace's residual unit: `x + prelu2(conv2(prelu1(conv1(x))))`, 3x3 convolutions with
 * stride 1 and padding 1.
 *
 * @example
 * ```ts
 * import { initSphereUnit, sphereUnit } from "./residual.ts";
 * import { randomKey } from "../ops/random.ts";
 * import { ones } from "../ops/creation.ts";
 * const p = initSphereUnit(randomKey(0), { channels: 4 });
 * sphereUnit(p, ones([1, 4, 6, 6])).shape; // [1, 4, 6, 6]
 * ```
 */
export function sphereUnit(params: SphereUnitParams, x: Tensor): Tensor {
  const o = { padding: 1 };
  const h = prelu(params.prelu1, conv2d(params.conv1, x, o));
  return add(x, prelu(params.prelu2, conv2d(params.conv2, h, o)));
}

/** Parameters of {@link iresBlock}. */
export interface IresBlockParams {
  /** BN of the input. */
  bn1: BatchNormParams;
  /** 3x3 convolution, stride 1. */
  conv1: Conv2dParams;
  /** BN after conv1. */
  bn2: BatchNormParams;
  /** PReLU. */
  prelu: PreluParams;
  /** 3x3 convolution carrying the block's stride. */
  conv2: Conv2dParams;
  /** BN after conv2. */
  bn3: BatchNormParams;
  /** Projection shortcut (1x1 convolution with the stride, then BN), where shapes change. */
  downsample?: { conv: Conv2dParams; bn: BatchNormParams };
}

/** Running statistics of {@link iresBlock}. */
export interface IresBlockState {
  /** Of bn1. */
  bn1: BatchNormState;
  /** Of bn2. */
  bn2: BatchNormState;
  /** Of bn3. */
  bn3: BatchNormState;
  /** Of the shortcut's BN. */
  downsample?: { bn: BatchNormState };
}

/** Options of {@link initIresBlock}. */
export interface IresBlockInitOptions {
  /** Input channels. */
  inChannels: number;
  /** Output channels. */
  outChannels: number;
  /** Stride of the block (default 1); a stride or a change of width adds the shortcut. */
  stride?: number;
  /** Convolution initialiser (default N(0, 0.1²), as insightface's iresnet). */
  init?: Initializer;
  /** Element type (default float32). */
  dtype?: DType;
}

/**
 * Parameters and state of an IResNet basic block (convolutions without bias).
 *
 * @example
 * ```ts
 * import { initIresBlock } from "./residual.ts";
 * import { randomKey } from "../ops/random.ts";
 * const b = initIresBlock(randomKey(0), { inChannels: 8, outChannels: 16, stride: 2 });
 * b.params.downsample?.conv.weight.shape; // [16, 8, 1, 1]
 * ```
 */
export function initIresBlock(
  key: RandomKey,
  options: IresBlockInitOptions,
): { params: IresBlockParams; state: IresBlockState } {
  const { inChannels, outChannels, stride = 1, dtype = "float32" } = options;
  const init = options.init ?? gaussian01;
  const [k1, k2, k3] = split(key, 3);
  const bn1 = initBatchNorm(inChannels, { dtype });
  const bn2 = initBatchNorm(outChannels, { dtype });
  const bn3 = initBatchNorm(outChannels, { dtype });
  const conv = (k: RandomKey, cin: number, kernel: number) =>
    initConv2d(k, { inChannels: cin, outChannels, kernel, bias: false, init, dtype });
  const params: IresBlockParams = {
    bn1: bn1.params,
    conv1: conv(k1, inChannels, 3),
    bn2: bn2.params,
    prelu: initPrelu(outChannels, { dtype }),
    conv2: conv(k2, outChannels, 3),
    bn3: bn3.params,
  };
  const state: IresBlockState = { bn1: bn1.state, bn2: bn2.state, bn3: bn3.state };
  if (stride !== 1 || inChannels !== outChannels) {
    const bn = initBatchNorm(outChannels, { dtype });
    params.downsample = { conv: conv(k3, inChannels, 1), bn: bn.params };
    state.downsample = { bn: bn.state };
  }
  return { params, state };
}

/** Options of {@link iresBlock}. */
export interface IresBlockOptions {
  /** Batch statistics (true) or running statistics (false). */
  training: boolean;
  /** The block's stride (default 1), as given to {@link initIresBlock}. */
  stride?: number;
}

/**
 * insightface's IBasicBlock: `bn3(conv2(prelu(bn2(conv1(bn1(x)))))) + shortcut(x)`, conv2 with
 * the stride; the shortcut is x, or `bn(conv1x1(x))` with the stride.
 *
 * @example
 * ```ts
 * import { initIresBlock, iresBlock } from "./residual.ts";
 * import { randomKey } from "../ops/random.ts";
 * import { ones } from "../ops/creation.ts";
 * const b = initIresBlock(randomKey(0), { inChannels: 4, outChannels: 8, stride: 2 });
 * const r = iresBlock(b.params, b.state, ones([2, 4, 8, 8]), { training: true, stride: 2 });
 * r.out.shape; // [2, 8, 4, 4]
 * ```
 */
export function iresBlock(
  params: IresBlockParams,
  state: IresBlockState,
  x: Tensor,
  options: IresBlockOptions,
): { out: Tensor; state: IresBlockState } {
  const training = options.training, stride = options.stride ?? 1;
  const a = batchNorm(params.bn1, state.bn1, x, { training });
  const b = batchNorm(params.bn2, state.bn2, conv2d(params.conv1, a.out, { padding: 1 }), {
    training,
  });
  const h = prelu(params.prelu, b.out);
  const c = batchNorm(params.bn3, state.bn3, conv2d(params.conv2, h, { padding: 1, stride }), {
    training,
  });
  const next: IresBlockState = { bn1: a.state, bn2: b.state, bn3: c.state };
  let shortcut = x;
  if (params.downsample !== undefined) {
    if (state.downsample === undefined) {
      throw new TypeError("iresBlock: the parameters have a shortcut but the state has none");
    }
    const d = batchNorm(
      params.downsample.bn,
      state.downsample.bn,
      conv2d(params.downsample.conv, x, { stride }),
      { training },
    );
    shortcut = d.out;
    next.downsample = { bn: d.state };
  }
  return { out: add(c.out, shortcut), state: next };
}
