/**
 * SphereFace's 20-layer residual network (Liu et al., CVPR 2017, Table 2; also the CosFace
 * paper's small model): four stages of 64, 128, 256, 512 channels, each a stride-2 3x3
 * convolution + PReLU followed by 1, 2, 4, 1 residual units (two 3x3 convolutions with
 * PReLU), then a fully connected layer to the 512-d feature. 3 + 5 + 9 + 3 = 20 convolutions.
 *
 * As in the authors' released Caffe model: the stride-2 convolutions have biases and start
 * Xavier-uniform; the residual convolutions have no bias and start N(0, 0.01²). (The popular
 * PyTorch port `sphere20a` gives every convolution a bias: pass `residualBias: true`.)
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/dtype.ts";
import { flatten } from "../ops/movement.ts";
import { type RandomKey, split } from "../ops/random.ts";
import { conv2d, type Conv2dParams, initConv2d } from "./conv.ts";
import { initPrelu, prelu, type PreluParams } from "./prelu.ts";
import { initLinear, linear, type LinearParams } from "./linear.ts";
import { initSphereUnit, sphereUnit, type SphereUnitParams } from "./residual.ts";
import { xavierUniform } from "./init.ts";
import type { ApplyOptions, Model } from "./model.ts";
import { halve, positiveInt } from "./_util.ts";

/** Options of `sphere20.init`. */
export interface Sphere20Options {
  /** Input channels (default 3). */
  inChannels?: number;
  /** Input [height, width] or one number (default [112, 96], the paper's crops). */
  inputSize?: number | [number, number];
  /** Feature size (default 512). */
  embedding?: number;
  /** Biases on the residual convolutions (default false). */
  residualBias?: boolean;
  /** Element type (default float32). */
  dtype?: DType;
}

/** One stage of {@link sphere20}. */
export interface Sphere20Stage {
  /** Stride-2 convolution, with bias. */
  conv: Conv2dParams;
  /** Its PReLU. */
  prelu: PreluParams;
  /** Residual units. */
  units: SphereUnitParams[];
}

/** Parameters of {@link sphere20}. */
export interface Sphere20Params {
  /** The four stages. */
  stages: Sphere20Stage[];
  /** FC to the feature. */
  fc: LinearParams;
}

/** Stage widths of SphereFace-20. */
const WIDTHS = [64, 128, 256, 512];
/** Residual units per stage of SphereFace-20. */
const UNITS = [1, 2, 4, 1];

function init(key: RandomKey, options: Sphere20Options = {}) {
  const { inChannels = 3, embedding = 512, dtype = "float32" } = options;
  const size = options.inputSize ?? [112, 96];
  let [h, w] = typeof size === "number" ? [size, size] : size;
  for (const v of [inChannels, embedding, h, w]) positiveInt("sphere20", "sizes", v);
  const [kStages, kFc] = split(key);
  const stageKeys = split(kStages, WIDTHS.length);
  let cin = inChannels;
  const stages = WIDTHS.map((width, i) => {
    const [kc, ku] = split(stageKeys[i]);
    const unitKeys = split(ku, UNITS[i]);
    const stage: Sphere20Stage = {
      conv: initConv2d(kc, { inChannels: cin, outChannels: width, init: xavierUniform, dtype }),
      prelu: initPrelu(width, { dtype }),
      units: unitKeys.map((k) =>
        initSphereUnit(k, { channels: width, bias: options.residualBias ?? false, dtype })
      ),
    };
    cin = width;
    h = halve(h);
    w = halve(w);
    return stage;
  });
  const fc = initLinear(kFc, { inFeatures: cin * h * w, outFeatures: embedding, dtype });
  return { params: { stages, fc } as Sphere20Params, state: {} as Record<string, never> };
}

function apply(
  params: Sphere20Params,
  state: Record<string, never>,
  x: Tensor,
  _options: ApplyOptions,
): { out: Tensor; state: Record<string, never> } {
  let h = x;
  for (const s of params.stages) {
    h = prelu(s.prelu, conv2d(s.conv, h, { stride: 2, padding: 1 }));
    for (const u of s.units) h = sphereUnit(u, h);
  }
  const f = flatten(h);
  if (f.shape[1] !== params.fc.weight.shape[0]) {
    throw new RangeError(
      `sphere20: input ${fmtShape(x.shape)} gives ${
        f.shape[1]
      } features, but the parameters were made for ${params.fc.weight.shape[0]} (check inputSize)`,
    );
  }
  return { out: linear(params.fc, f), state };
}

/**
 * SphereFace-20 (see the module documentation): input [N, 3, 112, 96] by default, output the
 * [N, 512] feature. It has no batch norm, so its state is `{}` and `training` changes nothing.
 *
 * @example
 * ```ts
 * import { sphere20 } from "./sphere20.ts";
 * import { paramCount } from "./params.ts";
 * import { randomKey } from "../ops/random.ts";
 * // At 32x16 (2x1 after the stages); at the paper's 112x96 the count is 22,666,944, of which
 * // 11,010,560 in the FC layer.
 * const { params } = sphere20.init(randomKey(0), { inputSize: [32, 16] });
 * paramCount(params); // 12181184
 * ```
 */
export const sphere20: Model<Sphere20Options, Sphere20Params, Record<string, never>> = {
  init,
  apply,
};
