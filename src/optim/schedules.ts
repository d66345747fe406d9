/**
 * Learning-rate schedules. A schedule maps the step count to a learning rate, and works on
 * both a number (on the host: logging, plots) and a scalar tensor (inside a compiled step).
 * The optimizers keep the step count as a scalar tensor in their state and evaluate the
 * schedule in the graph, so a compiled training step is traced once and never waits for the
 * host to compute a rate. Schedules compose: `linearWarmup(cosine(0.1, { steps }), ...)`.
 *
 * @module
 */
import { Tensor } from "../tensor.ts";
import { add, cos, greaterEqual, minimum, mul, pow } from "../ops/elementwise.ts";

/** A learning rate as a function of the step (0 for the first update). */
export interface Schedule {
  /** On the host. */
  (step: number): number;
  /** In a graph: a scalar float tensor in, a scalar tensor of its dtype out. */
  (step: Tensor): Tensor;
}

/**
 * A learning rate: a constant, a {@link Schedule}, or any function of the step tensor built
 * from tensor operations (e.g. `(t) => cg.mul(0.1, cg.pow(0.999, t))`).
 */
export type LearningRate = number | Schedule | ((step: Tensor) => Tensor | number);

function dual(host: (t: number) => number, graph: (t: Tensor) => Tensor): Schedule {
  return ((t: number | Tensor) => t instanceof Tensor ? graph(t) : host(t)) as Schedule;
}

function evalRate(lr: number | Schedule, t: number | Tensor): number | Tensor {
  if (typeof lr === "number") return lr;
  return t instanceof Tensor ? lr(t) : lr(t);
}

function positive(what: string, name: string, v: number): void {
  if (!(Number.isFinite(v) && v > 0)) {
    throw new RangeError(`${what}: ${name} must be a positive number, got ${v}`);
  }
}

/** Options of {@link multiStep}. */
export interface MultiStepOptions {
  /** Steps at which the rate is multiplied by gamma, increasing. */
  milestones: readonly number[];
  /** The factor (default 0.1: divide by 10, as in the SphereFace and CosFace papers). */
  gamma?: number;
}

/**
 * `base · gamma^(number of milestones ≤ step)`: the step decay of the face papers (e.g. lr
 * 0.1 divided by 10 at a few fixed iteration counts).
 *
 * @example
 * ```ts
 * import { multiStep } from "./schedules.ts";
 * const lr = multiStep(0.1, { milestones: [100, 150] });
 * [lr(0), lr(99), lr(100), lr(150)]; // [0.1, 0.1, 0.01, 0.001] (up to rounding)
 * ```
 */
export function multiStep(base: number, options: MultiStepOptions): Schedule {
  const { milestones, gamma = 0.1 } = options;
  positive("multiStep", "base", base);
  positive("multiStep", "gamma", gamma);
  milestones.forEach((m, i) => {
    if (!Number.isFinite(m) || (i > 0 && m <= milestones[i - 1])) {
      throw new RangeError(
        `multiStep: milestones must be increasing numbers, got [${milestones.join(", ")}]`,
      );
    }
  });
  const ms = [...milestones];
  return dual(
    (t) => base * Math.pow(gamma, ms.filter((m) => t >= m).length),
    (t) => {
      if (ms.length === 0) return add(mul(t, 0), base);
      const count = ms.map((m) => greaterEqual(t, m)).reduce((a, b) => add(a, b));
      return mul(pow(gamma, count), base);
    },
  );
}

/** Options of {@link cosine}. */
export interface CosineOptions {
  /** Steps of the decay; the rate stays at `minLr` afterwards. */
  steps: number;
  /** The final rate (default 0). */
  minLr?: number;
}

/**
 * Cosine decay (Loshchilov and Hutter's SGDR without restarts):
 * `minLr + (base - minLr) (1 + cos(π min(step, steps) / steps)) / 2`.
 *
 * @example
 * ```ts
 * import { cosine } from "./schedules.ts";
 * const lr = cosine(0.1, { steps: 100 });
 * [lr(0), lr(50), lr(100), lr(200)]; // [0.1, 0.05, 0, 0]
 * ```
 */
export function cosine(base: number, options: CosineOptions): Schedule {
  const { steps, minLr = 0 } = options;
  positive("cosine", "base", base);
  positive("cosine", "steps", steps);
  if (!(Number.isFinite(minLr) && minLr >= 0)) {
    throw new RangeError(`cosine: minLr must be a non-negative number, got ${minLr}`);
  }
  const span = base - minLr;
  return dual(
    (t) => minLr + span * (1 + Math.cos(Math.PI * Math.min(t, steps) / steps)) / 2,
    (t) => add(mul(add(cos(mul(minimum(t, steps), Math.PI / steps)), 1), span / 2), minLr),
  );
}

/** Options of {@link linearWarmup}. */
export interface WarmupOptions {
  /** Length of the warm-up. */
  steps: number;
  /** Factor at step 0 (default 0). */
  startFactor?: number;
}

/**
 * Multiplies a rate (or schedule) by a factor rising linearly from `startFactor` at step 0
 * to 1 at `steps`, and 1 afterwards. The inner schedule sees the same step count.
 *
 * @example
 * ```ts
 * import { cosine, linearWarmup } from "./schedules.ts";
 * const lr = linearWarmup(cosine(0.1, { steps: 1000 }), { steps: 100 });
 * lr(0);  // 0
 * lr(50); // 0.0497.. (half of cosine's 0.0994..)
 * ```
 */
export function linearWarmup(schedule: number | Schedule, options: WarmupOptions): Schedule {
  const { steps, startFactor = 0 } = options;
  positive("linearWarmup", "steps", steps);
  if (!(startFactor >= 0 && startFactor <= 1)) {
    throw new RangeError(`linearWarmup: startFactor must be in [0, 1], got ${startFactor}`);
  }
  const slope = (1 - startFactor) / steps;
  return dual(
    (t) => (evalRate(schedule, t) as number) * (startFactor + slope * Math.min(t, steps)),
    (t) => mul(evalRate(schedule, t), add(mul(minimum(t, steps), slope), startFactor)),
  );
}
