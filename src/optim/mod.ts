/**
 * Optimizers as pure functions over parameter pytrees (SGD with momentum and weight decay,
 * AdamW), learning-rate schedules that run inside compiled steps, and gradient clipping.
 *
 * ```ts
 * import { linearWarmup, multiStep, sgd } from "./mod.ts";
 * import { tensor } from "../ops/creation.ts";
 * const lr = linearWarmup(multiStep(0.1, { milestones: [16000, 24000, 28000] }), { steps: 500 });
 * const opt = sgd({ lr, momentum: 0.9, weightDecay: 5e-4 });
 * const params = { w: tensor([1, 2]) };
 * let state = opt.init(params);
 * const r = opt.update({ w: tensor([0.5, 0.5]) }, state, params);
 * state = r.state; // step 1
 * ```
 *
 * @module
 */
export { adamw } from "./adamw.ts";
export type { AdamWOptions, AdamWState } from "./adamw.ts";
export { sgd, zerosTree } from "./sgd.ts";
export type { SgdOptions, SgdState } from "./sgd.ts";
export { cosine, linearWarmup, multiStep } from "./schedules.ts";
export type {
  CosineOptions,
  LearningRate,
  MultiStepOptions,
  Schedule,
  WarmupOptions,
} from "./schedules.ts";
export { clipByGlobalNorm, globalNorm } from "./clip.ts";
export { stepCounter } from "./optimizer.ts";
export type { Optimizer, OptState } from "./optimizer.ts";
