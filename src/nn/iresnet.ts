/**
 * insightface's IResNet (arcface_torch `iresnet.py`), the ResNet variant of the ArcFace
 * paper for 112x112 faces: conv3x3 (stride 1) -> BN -> PReLU, four stages of IBasicBlocks
 * (BN-conv-BN-PReLU-conv-BN, the first block of each stage with stride 2 and a projection
 * shortcut), widths 64, 128, 256, 512; then BN -> flatten -> dropout -> FC -> BatchNorm1d
 * with a fixed scale of 1 (insightface freezes that γ; here it is simply absent).
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
import { initIresBlock, iresBlock, type IresBlockParams, type IresBlockState } from "./residual.ts";
import { dropout } from "./dropout.ts";
import { kaimingUniform } from "./init.ts";
import type { ApplyOptions, Model } from "./model.ts";
import { gaussian01, halve, positiveInt } from "./_util.ts";

/** Options of an IResNet's `init`. */
export interface IresnetOptions {
  /** Input channels (default 3). */
  inChannels?: number;
  /** Input [height, width] or one number (default 112). */
  inputSize?: number | [number, number];
  /** Embedding size (default 512). */
  embedding?: number;
  /** Element type (default float32). */
  dtype?: DType;
}

/** Options of {@link iresnet}. */
export interface IresnetArchOptions {
  /** Dropout rate before the FC layer in training (default 0, insightface's default). */
  dropout?: number;
}

/** Parameters of an IResNet. */
export interface IresnetParams {
  /** Stem convolution. */
  conv1: Conv2dParams;
  /** Stem BN. */
  bn1: BatchNormParams;
  /** Stem PReLU. */
  prelu: PreluParams;
  /** Blocks of each stage. */
  layers: IresBlockParams[][];
  /** BN after the last stage. */
  bn2: BatchNormParams;
  /** FC to the embedding. */
  fc: LinearParams;
  /** Embedding BN (shift only). */
  features: BatchNormParams;
}

/** State of an IResNet. */
export interface IresnetState {
  /** Stem BN. */
  bn1: BatchNormState;
  /** Blocks of each stage. */
  layers: IresBlockState[][];
  /** BN after the last stage. */
  bn2: BatchNormState;
  /** Embedding BN. */
  features: BatchNormState;
}

const WIDTHS = [64, 128, 256, 512];

/**
 * An IResNet with `blocks[i]` basic blocks in stage i: [2, 2, 2, 2] is IResNet-18,
 * [3, 4, 6, 3] IResNet-34; `options.dropout` adds dropout before the FC layer. Its noise for a compiled step (`options.key` as a tensor) is
 * uniform [0, 1) of shape [N, 512 · h · w], h x w the last stage's size (7 x 7 at 112).
 *
 * @example
 * ```ts
 * import { iresnet } from "./iresnet.ts";
 * import { randomKey } from "../ops/random.ts";
 * const r34 = iresnet([3, 4, 6, 3]);
 * const { params } = r34.init(randomKey(0), { inputSize: 16, embedding: 64 });
 * params.layers.map((l) => l.length); // [3, 4, 6, 3]
 * ```
 */
export function iresnet(
  blocks: readonly number[],
  options: IresnetArchOptions = {},
): Model<IresnetOptions, IresnetParams, IresnetState> {
  if (blocks.length !== 4) {
    throw new RangeError(`iresnet: expected 4 stage depths, got [${blocks.join(", ")}]`);
  }
  for (const b of blocks) positiveInt("iresnet", "stage depths", b);
  const rate = options.dropout ?? 0;
  if (!(rate >= 0 && rate < 1)) {
    throw new RangeError(`iresnet: dropout must be in [0, 1), got ${rate}`);
  }

  const init = (key: RandomKey, options: IresnetOptions = {}) => {
    const { inChannels = 3, embedding = 512, dtype = "float32" } = options;
    const size = options.inputSize ?? 112;
    let [h, w] = typeof size === "number" ? [size, size] : size;
    for (const v of [inChannels, embedding, h, w]) positiveInt("iresnet", "sizes", v);
    const [kStem, kLayers, kFc] = split(key, 3);
    const bn1 = initBatchNorm(64, { dtype });
    const layerKeys = split(kLayers, 4);
    let cin = 64;
    const layers = WIDTHS.map((width, i) => {
      const keys = split(layerKeys[i], blocks[i]);
      const made = keys.map((k, j) => {
        const b = initIresBlock(k, {
          inChannels: j === 0 ? cin : width,
          outChannels: width,
          stride: j === 0 ? 2 : 1,
          dtype,
        });
        return b;
      });
      cin = width;
      h = halve(h);
      w = halve(w);
      return made;
    });
    const bn2 = initBatchNorm(512, { dtype });
    const features = initBatchNorm(embedding, { scale: false, dtype });
    const params: IresnetParams = {
      conv1: initConv2d(kStem, {
        inChannels,
        outChannels: 64,
        bias: false,
        init: gaussian01,
        dtype,
      }),
      bn1: bn1.params,
      prelu: initPrelu(64, { dtype }),
      layers: layers.map((l) => l.map((b) => b.params)),
      bn2: bn2.params,
      // PyTorch's Linear default: U(±1/√fan_in), i.e. Kaiming uniform with gain 1/√3.
      fc: initLinear(kFc, {
        inFeatures: 512 * h * w,
        outFeatures: embedding,
        init: (k, s, o) => kaimingUniform(k, s, { ...o, gain: Math.sqrt(1 / 3) }),
        dtype,
      }),
      features: features.params,
    };
    const state: IresnetState = {
      bn1: bn1.state,
      layers: layers.map((l) => l.map((b) => b.state)),
      bn2: bn2.state,
      features: features.state,
    };
    return { params, state };
  };

  const apply = (
    params: IresnetParams,
    state: IresnetState,
    x: Tensor,
    options: ApplyOptions,
  ): { out: Tensor; state: IresnetState } => {
    const training = options.training;
    const a = batchNorm(params.bn1, state.bn1, conv2d(params.conv1, x, { padding: 1 }), {
      training,
    });
    let h = prelu(params.prelu, a.out);
    const layers = params.layers.map((layer, i) =>
      layer.map((p, j) => {
        const r = iresBlock(p, state.layers[i][j], h, { training, stride: j === 0 ? 2 : 1 });
        h = r.out;
        return r.state;
      })
    );
    const b = batchNorm(params.bn2, state.bn2, h, { training });
    let f = flatten(b.out);
    if (f.shape[1] !== params.fc.weight.shape[0]) {
      throw new RangeError(
        `iresnet: input ${fmtShape(x.shape)} gives ${
          f.shape[1]
        } features, but the parameters were made for ${
          params.fc.weight.shape[0]
        } (check inputSize)`,
      );
    }
    if (training && rate > 0) {
      if (options.key === undefined) {
        throw new TypeError(`iresnet: dropout ${rate} in training needs options.key`);
      }
      f = dropout(options.key, f, { rate });
    }
    const e = batchNorm(params.features, state.features, linear(params.fc, f), { training });
    return {
      out: e.out,
      state: { bn1: a.state, layers, bn2: b.state, features: e.state },
    };
  };
  return { init, apply };
}

/**
 * IResNet-18 ([2, 2, 2, 2]) for 112x112 faces, 512-d embedding.
 *
 * @example
 * ```ts
 * import { iresnet18 } from "./iresnet.ts";
 * import { paramCount } from "./params.ts";
 * import { randomKey } from "../ops/random.ts";
 * // At 8x8 (1x1 after the stages); at 112x112 the count is 24,025,088 (PyTorch's count adds
 * // the 512 frozen γ of the last BN: 24,025,600).
 * const { params } = iresnet18.init(randomKey(0), { inputSize: 8 });
 * paramCount(params); // 11442176
 * ```
 */
export const iresnet18: Model<IresnetOptions, IresnetParams, IresnetState> = iresnet([2, 2, 2, 2]);
