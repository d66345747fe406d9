/**
 * AdamW (Loshchilov and Hutter, 2019): Adam with decoupled weight decay, with PyTorch's
 * semantics (`torch.optim.AdamW`, no amsgrad).
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { add, cast, div, mul, pow, sqrt, sub } from "../ops/elementwise.ts";
import { treeMap } from "../tree/pytree.ts";
import type { LearningRate } from "./schedules.ts";
import { type Optimizer, type OptState, stepCounter } from "./optimizer.ts";
import { checkRate, rateAt } from "./_rate.ts";
import { zerosTree } from "./sgd.ts";

/** Options of {@link adamw}. */
export interface AdamWOptions {
  /** Learning rate or schedule (default 1e-3). */
  lr?: LearningRate;
  /** Decay rates of the first and second moments (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the root of the second moment (default 1e-8). */
  epsilon?: number;
  /** Decoupled weight decay: `p = p (1 - lr λ)` before the Adam step (default 0.01). */
  weightDecay?: number;
}

/** State of {@link adamw}. */
export interface AdamWState extends OptState {
  /** First moments, shaped like the parameters. */
  m: unknown;
  /** Second moments, shaped like the parameters. */
  v: unknown;
}

/**
 * AdamW: `p = p (1 - lr λ)`, then `m = β1 m + (1 - β1) g`, `v = β2 v + (1 - β2) g²`,
 * `p = p - lr m̂ / (√v̂ + ε)` with the bias corrections `m̂ = m / (1 - β1^t)`,
 * `v̂ = v / (1 - β2^t)`, t the 1-based step.
 *
 * @example
 * ```ts
 * import { adamw } from "./adamw.ts";
 * import { tensor } from "../ops/creation.ts";
 * const opt = adamw({ lr: 0.1, weightDecay: 0 });
 * const params = { w: tensor([1, -1]) };
 * const r = opt.update({ w: tensor([3, -0.5]) }, opt.init(params), params);
 * await r.params.w.data(); // Float32Array [0.9, -0.9] (the first step moves by lr · sign)
 * ```
 */
export function adamw(options: AdamWOptions = {}): Optimizer<AdamWState> {
  const { lr = 1e-3, betas = [0.9, 0.999], epsilon = 1e-8, weightDecay = 0.01 } = options;
  checkRate("adamw", lr);
  const [b1, b2] = betas;
  for (const [name, v] of [["betas[0]", b1], ["betas[1]", b2]] as const) {
    if (!(v >= 0 && v < 1)) throw new RangeError(`adamw: ${name} must be in [0, 1), got ${v}`);
  }
  if (!(epsilon >= 0) || !(weightDecay >= 0)) {
    throw new RangeError(
      `adamw: epsilon and weightDecay must be non-negative, got ${epsilon} and ${weightDecay}`,
    );
  }
  return {
    init<P>(params: P): AdamWState {
      return { step: stepCounter(), m: zerosTree(params), v: zerosTree(params) };
    },
    update<P>(grads: P, state: AdamWState, params: P): { params: P; state: AdamWState } {
      const rate = rateAt(lr, state.step);
      const t = add(state.step, 1);
      const m = treeMap(
        (g: Tensor, mm: Tensor) => add(mul(mm, b1), mul(g, 1 - b1)),
        grads,
        state.m,
      );
      const v = treeMap(
        (g: Tensor, vv: Tensor) => add(mul(vv, b2), mul(mul(g, g), 1 - b2)),
        grads,
        state.v,
      );
      const updated = treeMap(
        (p: Tensor, mm: Tensor, vv: Tensor) => {
          const r = rate(p.dtype);
          const tf = cast(t, p.dtype);
          // A number rate stays a number: mul(number, number) would make a float32 scalar.
          const keep = typeof r === "number" ? 1 - r * weightDecay : sub(1, mul(r, weightDecay));
          const decayed = weightDecay === 0 ? p : mul(p, keep);
          const mHat = div(mm, sub(1, pow(b1, tf)));
          const vHat = div(vv, sub(1, pow(b2, tf)));
          return sub(decayed, mul(div(mHat, add(sqrt(vHat), epsilon)), r));
        },
        params,
        m,
        v,
      );
      return { params: updated, state: { step: t, m, v } };
    },
  };
}
