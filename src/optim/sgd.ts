/**
 * Stochastic gradient descent with momentum, Nesterov momentum and weight decay, with
 * PyTorch's semantics (`torch.optim.SGD`, dampening 0).
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import { add, mul, sub } from "../ops/elementwise.ts";
import { tensor } from "../ops/creation.ts";
import { flatten, treeMap, unflatten } from "../tree/pytree.ts";
import type { LearningRate } from "./schedules.ts";
import { type Optimizer, type OptState, stepCounter } from "./optimizer.ts";
import { checkRate, rateAt } from "./_rate.ts";

/** Options of {@link sgd}. */
export interface SgdOptions {
  /** Learning rate or schedule of the step. */
  lr: LearningRate;
  /** Momentum μ (default 0). */
  momentum?: number;
  /** Nesterov momentum (default false; needs μ > 0). */
  nesterov?: boolean;
  /** L2 penalty added to the gradient, `g + λ p` (default 0). */
  weightDecay?: number;
}

/** State of {@link sgd}. */
export interface SgdState extends OptState {
  /** Momentum buffers shaped like the parameters (absent without momentum). */
  momentum?: unknown;
}

/**
 * Zeros shaped like each leaf of a pytree, as realized memory (so they can be donated and
 * updated): optimizer buffers.
 *
 * @example
 * ```ts
 * import { zerosTree } from "./sgd.ts";
 * import { ones } from "../ops/creation.ts";
 * await zerosTree({ w: ones([2]) }).w.data(); // Float32Array [0, 0]
 * ```
 */
export function zerosTree<P>(params: P): P {
  const { leaves, def } = flatten(params);
  return unflatten<P>(
    def,
    leaves.map((l) => tensor(new Float64Array(l.size), l.shape, { dtype: l.dtype })),
  );
}

function nonNegative(what: string, name: string, v: number): void {
  if (!(Number.isFinite(v) && v >= 0)) {
    throw new RangeError(`${what}: ${name} must be a non-negative number, got ${v}`);
  }
}

/**
 * SGD: `g = grad + weightDecay · p`; with momentum `b = μ b + g` and the step direction
 * `b` (or `g + μ b` with Nesterov); `p = p - lr · direction`. The momentum buffer starts at
 * zero, which equals PyTorch's first-step `b = g`.
 *
 * @example
 * ```ts
 * import { sgd } from "./sgd.ts";
 * import { tensor } from "../ops/creation.ts";
 * const opt = sgd({ lr: 0.1, momentum: 0.9 });
 * const params = { w: tensor([1, 2]) };
 * const state = opt.init(params);
 * const r = opt.update({ w: tensor([1, 1]) }, state, params);
 * await r.params.w.data(); // Float32Array [0.9, 1.9]
 * ```
 */
export function sgd(options: SgdOptions): Optimizer<SgdState> {
  const { lr, momentum = 0, nesterov = false, weightDecay = 0 } = options;
  checkRate("sgd", lr);
  nonNegative("sgd", "momentum", momentum);
  nonNegative("sgd", "weightDecay", weightDecay);
  if (nesterov && momentum === 0) {
    throw new RangeError("sgd: nesterov needs a momentum > 0, got 0");
  }
  return {
    init<P>(params: P): SgdState {
      const state: SgdState = { step: stepCounter() };
      if (momentum > 0) state.momentum = zerosTree(params);
      return state;
    },
    update<P>(grads: P, state: SgdState, params: P): { params: P; state: SgdState } {
      const rate = rateAt(lr, state.step);
      const decayed = (g: Tensor, p: Tensor) => weightDecay === 0 ? g : add(g, mul(p, weightDecay));
      const next: SgdState = { step: add(state.step, 1) };
      let direction: P;
      if (momentum > 0) {
        if (state.momentum === undefined) {
          throw new TypeError("sgd: the state has no momentum buffers; make it with init()");
        }
        const bufs = treeMap(
          (g: Tensor, p: Tensor, b: Tensor) => add(mul(b, momentum), decayed(g, p)),
          grads,
          params,
          state.momentum,
        );
        next.momentum = bufs;
        direction = nesterov
          ? treeMap((g, p, b) => add(decayed(g, p), mul(b, momentum)), grads, params, bufs)
          : bufs;
      } else {
        direction = treeMap((g, p) => decayed(g, p), grads, params);
      }
      const updated = treeMap((p, d) => sub(p, mul(d, rate(p.dtype))), params, direction);
      return { params: updated, state: next };
    },
  };
}
