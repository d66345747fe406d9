/**
 * Neural network layers as pure functions over parameter pytrees, their initialisers, and
 * the face-recognition backbones: `smallNet` (the T1/T2 benchmark network), `sphere20`
 * (SphereFace-20) and `iresnet18` (insightface's IResNet). A layer is an `init*` function
 * that makes parameters (and, for batch norm, state) and a function that applies them; a
 * model is `{ init(key, options) -> { params, state }, apply(params, state, x, { training })
 * -> { out, state } }`.
 *
 * ```ts
 * import { initLinear, linear, relu } from "./mod.ts";
 * import { normal, randomKey, split } from "../ops/random.ts";
 * const [k1, k2] = split(randomKey(0));
 * const l1 = initLinear(k1, { inFeatures: 4, outFeatures: 8 });
 * const l2 = initLinear(k2, { inFeatures: 8, outFeatures: 2 });
 * const y = linear(l2, relu(linear(l1, normal(randomKey(1), [3, 4]))));
 * y.shape; // [3, 2]
 * ```
 *
 * @module
 */
export { relu } from "../ops/elementwise.ts";
export { flatten } from "../ops/movement.ts";
export { fans, kaimingNormal, kaimingUniform, xavierNormal, xavierUniform } from "./init.ts";
export type { Initializer, InitOptions } from "./init.ts";
export { initLinear, linear } from "./linear.ts";
export type { LinearInitOptions, LinearParams } from "./linear.ts";
export { conv2d, initConv2d } from "./conv.ts";
export type { Conv2dInitOptions, Conv2dParams } from "./conv.ts";
export { batchNorm, initBatchNorm } from "./batch_norm.ts";
export type {
  BatchNormInitOptions,
  BatchNormOptions,
  BatchNormParams,
  BatchNormState,
} from "./batch_norm.ts";
export { initPrelu, prelu } from "./prelu.ts";
export type { PreluInitOptions, PreluParams } from "./prelu.ts";
export { avgPool2d, globalAvgPool, maxPool2d } from "./pool.ts";
export type { PoolOptions } from "./pool.ts";
export { dropout } from "./dropout.ts";
export type { DropoutOptions } from "./dropout.ts";
export { initIresBlock, initSphereUnit, iresBlock, sphereUnit } from "./residual.ts";
export type {
  IresBlockInitOptions,
  IresBlockOptions,
  IresBlockParams,
  IresBlockState,
  SphereUnitInitOptions,
  SphereUnitParams,
} from "./residual.ts";
export { paramCount } from "./params.ts";
export type { ApplyOptions, Model } from "./model.ts";
export { smallNet } from "./small_net.ts";
export type { SmallNetOptions, SmallNetParams, SmallNetStage, SmallNetState } from "./small_net.ts";
export { sphere20 } from "./sphere20.ts";
export type { Sphere20Options, Sphere20Params, Sphere20Stage } from "./sphere20.ts";
export { iresnet, iresnet18 } from "./iresnet.ts";
export type { IresnetArchOptions, IresnetOptions, IresnetParams, IresnetState } from "./iresnet.ts";
