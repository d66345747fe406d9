/**
 * The T1/T2 network of bench/WORKLOADS.md: four stages, each conv3x3 stride 2 (no bias) -> BN ->
 * PReLU -> conv3x3 stride 1 (no bias) -> BN -> PReLU, widths 32, 64, 128, 256; then
 * flatten -> linear to 128 (no bias: the BN after it would cancel one) -> BatchNorm1d, the
 * embedding.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/dtype.ts";
import { flatten } from "../ops/movement.ts";
import { type RandomKey, split } from "../ops/random.ts";
import { conv2d, type Conv2dParams, initConv2d } from "./conv.ts";
import {
  batchNorm,
  type BatchNormParams,
  type BatchNormState,
  initBatchNorm,
} from "./batch_norm.ts";
import { initPrelu, prelu, type PreluParams } from "./prelu.ts";
import { initLinear, linear, type LinearParams } from "./linear.ts";
import type { ApplyOptions, Model } from "./model.ts";
import { halve, positiveInt } from "./_util.ts";

/** Options of `smallNet.init`. */
export interface SmallNetOptions {
  /** Input channels (default 3). */
  inChannels?: number;
  /** Input height and width: one number or [height, width] (default 64, T1's size). */
  inputSize?: number | [number, number];
  /** Stage widths (default [32, 64, 128, 256]). */
  widths?: number[];
  /** Embedding size (default 128). */
  embedding?: number;
  /** Element type (default float32). */
  dtype?: DType;
}

/** Parameters of one stage of {@link smallNet}. */
export interface SmallNetStage {
  /** Stride-2 convolution. */
  conv1: Conv2dParams;
  /** Its BN. */
  bn1: BatchNormParams;
  /** Its PReLU. */
  prelu1: PreluParams;
  /** Stride-1 convolution. */
  conv2: Conv2dParams;
  /** Its BN. */
  bn2: BatchNormParams;
  /** Its PReLU. */
  prelu2: PreluParams;
}

/** Parameters of {@link smallNet}. */
export interface SmallNetParams {
  /** The four stages. */
  stages: SmallNetStage[];
  /** Flattened features to the embedding. */
  linear: LinearParams;
  /** BatchNorm1d of the embedding. */
  bn: BatchNormParams;
}

/** State (BN running statistics) of {@link smallNet}. */
export interface SmallNetState {
  /** Per stage. */
  stages: { bn1: BatchNormState; bn2: BatchNormState }[];
  /** Of the embedding BN. */
  bn: BatchNormState;
}

function init(key: RandomKey, options: SmallNetOptions = {}) {
  const { inChannels = 3, widths = [32, 64, 128, 256], embedding = 128, dtype = "float32" } =
    options;
  const size = options.inputSize ?? 64;
  let [h, w] = typeof size === "number" ? [size, size] : size;
  for (const v of [inChannels, embedding, h, w, ...widths]) positiveInt("smallNet", "sizes", v);
  const keys = split(key, 2 * widths.length + 1);
  const stages: SmallNetStage[] = [];
  const stageState: SmallNetState["stages"] = [];
  let cin = inChannels;
  widths.forEach((width, i) => {
    const conv = (k: RandomKey, c: number) =>
      initConv2d(k, { inChannels: c, outChannels: width, bias: false, dtype });
    const bn1 = initBatchNorm(width, { dtype }), bn2 = initBatchNorm(width, { dtype });
    stages.push({
      conv1: conv(keys[2 * i], cin),
      bn1: bn1.params,
      prelu1: initPrelu(width, { dtype }),
      conv2: conv(keys[2 * i + 1], width),
      bn2: bn2.params,
      prelu2: initPrelu(width, { dtype }),
    });
    stageState.push({ bn1: bn1.state, bn2: bn2.state });
    cin = width;
    h = halve(h);
    w = halve(w);
  });
  const bn = initBatchNorm(embedding, { dtype });
  const params: SmallNetParams = {
    stages,
    linear: initLinear(keys[keys.length - 1], {
      inFeatures: cin * h * w,
      outFeatures: embedding,
      bias: false,
      dtype,
    }),
    bn: bn.params,
  };
  return { params, state: { stages: stageState, bn: bn.state } as SmallNetState };
}

function apply(
  params: SmallNetParams,
  state: SmallNetState,
  x: Tensor,
  options: ApplyOptions,
): { out: Tensor; state: SmallNetState } {
  const training = options.training;
  let h = x;
  const stages = params.stages.map((p, i) => {
    const s = state.stages[i];
    const a = batchNorm(p.bn1, s.bn1, conv2d(p.conv1, h, { stride: 2, padding: 1 }), { training });
    h = prelu(p.prelu1, a.out);
    const b = batchNorm(p.bn2, s.bn2, conv2d(p.conv2, h, { padding: 1 }), { training });
    h = prelu(p.prelu2, b.out);
    return { bn1: a.state, bn2: b.state };
  });
  const f = flatten(h);
  const need = params.linear.weight.shape[0];
  if (f.shape[1] !== need) {
    throw new RangeError(
      `smallNet: input ${fmtShape(x.shape)} gives ${
        f.shape[1]
      } features, but the parameters were made for ${need} (check inputSize)`,
    );
  }
  const e = batchNorm(params.bn, state.bn, linear(params.linear, f), { training });
  return { out: e.out, state: { stages, bn: e.state } };
}

/**
 * The T1/T2 benchmark network (see the module documentation): input [N, C, H, W], output
 * the [N, 128] embedding. Convolutions and the linear layer start Kaiming-uniform (gain √2),
 * as the benchmark's seeded weights are distributed.
 *
 * @example
 * ```ts
 * import { smallNet } from "./small_net.ts";
 * import { paramCount } from "./params.ts";
 * import { normal, randomKey } from "../ops/random.ts";
 * const { params, state } = smallNet.init(randomKey(0), { inputSize: 16 });
 * const x = normal(randomKey(1), [2, 3, 16, 16]);
 * smallNet.apply(params, state, x, { training: true }).out.shape; // [2, 128]
 * paramCount(params); // 1207200: stages 1174176, linear 256 x 128, BN 256
 * ```
 */
export const smallNet: Model<SmallNetOptions, SmallNetParams, SmallNetState> = { init, apply };
