/**
 * Batch normalisation (Ioffe and Szegedy, 2015) with PyTorch's conventions: statistics over
 * every axis but the channel axis 1, biased variance to normalise, unbiased variance for the
 * running estimate, `running = (1 - momentum) running + momentum batch`.
 *
 * @module
 */
import type { Tensor } from "../tensor.ts";
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/dtype.ts";
import { add, mul, rsqrt, sub } from "../ops/elementwise.ts";
import { filled } from "./_util.ts";
import { mean, stopGradient } from "../ops/reduce.ts";
import { reshape } from "../ops/movement.ts";

/** Learned parameters of {@link batchNorm}: scale γ and shift β, [C] each (either optional). */
export interface BatchNormParams {
  /** γ (omit for a layer without learned scale, i.e. γ = 1). */
  weight?: Tensor;
  /** β (omit for a layer without learned shift). */
  bias?: Tensor;
}

/** Running statistics of {@link batchNorm}, [C] each. */
export interface BatchNormState {
  /** Running mean. */
  mean: Tensor;
  /** Running (unbiased) variance. */
  var: Tensor;
}

/** Options of {@link initBatchNorm}. */
export interface BatchNormInitOptions {
  /** Learn γ (default true). */
  scale?: boolean;
  /** Learn β (default true). */
  shift?: boolean;
  /** Element type (default float32). */
  dtype?: DType;
}

/**
 * Parameters (γ = 1, β = 0) and state (mean 0, variance 1) of a batch norm over `channels`.
 *
 * @example
 * ```ts
 * import { initBatchNorm } from "./batch_norm.ts";
 * const { params, state } = initBatchNorm(16);
 * params.weight?.shape; // [16]
 * ```
 */
export function initBatchNorm(
  channels: number,
  options: BatchNormInitOptions = {},
): { params: BatchNormParams; state: BatchNormState } {
  if (!Number.isInteger(channels) || channels < 1) {
    throw new RangeError(`initBatchNorm: channels must be a positive integer, got ${channels}`);
  }
  const dtype = options.dtype ?? "float32";
  const params: BatchNormParams = {};
  if (options.scale ?? true) params.weight = filled([channels], 1, dtype);
  if (options.shift ?? true) params.bias = filled([channels], 0, dtype);
  return {
    params,
    state: { mean: filled([channels], 0, dtype), var: filled([channels], 1, dtype) },
  };
}

/** Options of {@link batchNorm}. */
export interface BatchNormOptions {
  /** Batch statistics and a state update (true), or the running statistics (false). */
  training: boolean;
  /** Weight of the new batch statistics in the running ones (default 0.1). */
  momentum?: number;
  /** Added to the variance (default 1e-5). */
  epsilon?: number;
}

/**
 * Normalises x [N, C] or [N, C, ...spatial] per channel. In training mode it uses the batch
 * statistics (over N and the spatial axes) and returns the updated running statistics; in
 * eval mode it uses the running statistics and returns the state unchanged.
 *
 * @example
 * ```ts
 * import { batchNorm, initBatchNorm } from "./batch_norm.ts";
 * import { tensor } from "../ops/creation.ts";
 * const bn = initBatchNorm(1);
 * const { out, state } = batchNorm(bn.params, bn.state, tensor([[1], [3]]), { training: true });
 * await out.data();       // Float32Array [-1, 1] (nearly: ε = 1e-5)
 * await state.mean.data(); // Float32Array [0.2]
 * ```
 */
export function batchNorm(
  params: BatchNormParams,
  state: BatchNormState,
  x: Tensor,
  options: BatchNormOptions,
): { out: Tensor; state: BatchNormState } {
  const eps = options.epsilon ?? 1e-5;
  const momentum = options.momentum ?? 0.1;
  if (x.ndim < 2) {
    throw new RangeError(`batchNorm: expected [N, C, ...], got ${fmtShape(x.shape)}`);
  }
  const c = x.shape[1];
  if (state.mean.shape[0] !== c) {
    throw new RangeError(
      `batchNorm: input ${fmtShape(x.shape)} has ${c} channels, the layer has ${
        state.mean.shape[0]
      }`,
    );
  }
  const view = x.shape.map((d, i) => i === 1 ? d : 1);
  const axes = x.shape.map((_, i) => i).filter((i) => i !== 1);
  let mu: Tensor, v: Tensor, newState = state;
  if (options.training) {
    const n = axes.reduce((a, i) => a * x.shape[i], 1);
    if (n < 2) {
      throw new RangeError(
        `batchNorm: training needs more than one value per channel, got ${fmtShape(x.shape)}`,
      );
    }
    mu = mean(x, axes, { keepdims: true });
    const d = sub(x, mu);
    v = mean(mul(d, d), axes, { keepdims: true });
    const blend = (run: Tensor, batch: Tensor) =>
      add(mul(run, 1 - momentum), mul(stopGradient(reshape(batch, [c])), momentum));
    newState = { mean: blend(state.mean, mu), var: blend(state.var, mul(v, n / (n - 1))) };
  } else {
    mu = reshape(state.mean, view);
    v = reshape(state.var, view);
  }
  let out = mul(sub(x, mu), rsqrt(add(v, eps)));
  if (params.weight !== undefined) out = mul(out, reshape(params.weight, view));
  if (params.bias !== undefined) out = add(out, reshape(params.bias, view));
  return { out, state: newState };
}
