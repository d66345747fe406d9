/**
 * A training loop that keeps the device busy: steps are submitted back to back, at most
 * `maxInFlight` of them before the host waits, the next batch is prepared while the device
 * runs, and per-step metrics stay on the device until they are read, all at once, every
 * `readEvery` steps. No value is lost: every step's metrics are reported.
 *
 * @module
 */
import { getBackend } from "../backend/registry.ts";
import type { Tensor } from "../tensor.ts";
import { stack } from "../ops/movement.ts";

/** What a training step returns. */
export interface StepResult<S> {
  /** The new state (parameters, optimizer state, ...). */
  state: S;
  /** A small 1-D tensor of metrics of this step (e.g. [loss, accuracy]). */
  metrics: Tensor;
}

/** Options of {@link trainLoop}. */
export interface TrainLoopOptions<S, B> {
  /** The step, usually `compile`d with the state donated. */
  step: (state: S, batch: B) => StepResult<S>;
  /** The initial state. */
  init: S;
  /** Makes batch `i`; called while the device still runs step i - 1. */
  batch: (i: number) => B | Promise<B>;
  /** Number of steps. */
  steps: number;
  /** Read metrics back every this many steps (default 20). */
  readEvery?: number;
  /** Wait for the device when this many steps are unconfirmed (default 4 * readEvery). */
  maxInFlight?: number;
  /** Called after each read with the metrics of every step since the previous read. */
  onMetrics?: (firstStep: number, rows: Float32Array[], state: S) => void | Promise<void>;
  /**
   * Stops the loop early when aborted (e.g. on SIGINT/SIGTERM): the step in flight finishes,
   * its metrics are read (and given to `onMetrics`), and the loop returns with `stopped` set
   * and the state after the last step run, ready to be checkpointed.
   */
  signal?: AbortSignal;
}

/** What {@link trainLoop} returns. */
export interface TrainLoopResult<S> {
  /** The final state. */
  state: S;
  /** One row of metrics per step, in order. */
  metrics: Float32Array[];
  /** Host waits made: metric reads, synchronisations at `maxInFlight`, and the final one. */
  waits: number;
  /** Wall time in milliseconds, including the final wait for the device. */
  ms: number;
  /** True when `signal` stopped the loop before `steps` steps (`metrics.length` were run). */
  stopped: boolean;
}

/**
 * Runs `steps` training steps as described in the module documentation.
 *
 * @example
 * ```ts
 * import { trainLoop } from "./loop.ts";
 * import { compile, mul, sub, tensor, reshape } from "../../mod.ts";
 * const step = compile((w: any, x: any) => {
 *   const loss = mul(w, w);
 *   return { state: sub(w, mul(w, mul(x, 0.2))), metrics: reshape(loss, [1]) };
 * }, { donate: [0] });
 * const r = await trainLoop({ step, init: tensor([1]), batch: () => tensor([1]), steps: 5 });
 * r.metrics.length; // 5
 * ```
 */
export async function trainLoop<S, B>(
  options: TrainLoopOptions<S, B>,
): Promise<TrainLoopResult<S>> {
  const readEvery = Math.max(1, options.readEvery ?? 20);
  const maxInFlight = Math.max(1, options.maxInFlight ?? 4 * readEvery);
  const backend = getBackend();
  const start = performance.now();
  const all: Float32Array[] = [];
  let pending: Tensor[] = [];
  let firstPending = 0;
  let unconfirmed = 0;
  let waits = 0;
  let state = options.init;
  let next = options.batch(0);
  const read = async () => {
    if (pending.length === 0) return;
    const rows = pending;
    const width = rows[0].size;
    // One readback for all pending steps: the metrics are stacked on the device first (the
    // WebGPU scheduler splits a stack wider than the adapter's binding limit into a tree).
    const flat = await stack(rows).data();
    waits++;
    const out: Float32Array[] = [];
    for (let i = 0; i < rows.length; i++) {
      out.push(Float32Array.from(flat.subarray(i * width, (i + 1) * width)));
    }
    all.push(...out);
    pending = [];
    unconfirmed = 0;
    await options.onMetrics?.(firstPending, out, state);
    firstPending = all.length;
  };
  let stopped = false;
  for (let i = 0; i < options.steps; i++) {
    if (options.signal?.aborted) {
      stopped = true;
      break;
    }
    const batch = await next;
    const r = options.step(state, batch);
    state = r.state;
    pending.push(r.metrics);
    unconfirmed++;
    // Prepare the next batch while the device works on this step.
    if (i + 1 < options.steps) next = options.batch(i + 1);
    if (pending.length >= readEvery) await read();
    else if (unconfirmed >= maxInFlight) {
      await backend.synchronize();
      waits++;
      unconfirmed = 0;
    }
  }
  await read();
  // The final state must be on the device when this returns: one more (counted) wait.
  await backend.synchronize();
  waits++;
  return { state, metrics: all, waits, ms: performance.now() - start, stopped };
}
