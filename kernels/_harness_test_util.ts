/**
 * A tiny raw-WebGPU runner for the kernel tests and measurements: requests a device with the
 * adapter's limits, uploads `Float32Array`s, dispatches a {@linkcode KernelPlan} and reads
 * results back. Pipelines are cached by WGSL source.
 *
 * @module
 */
import type { KernelPlan, KernelSource } from "./types.ts";
import { layoutOf, renderWgsl, slotKey } from "../src/kernel/wgsl.ts";
import { layoutEntries } from "../src/backend/webgpu/compile_pool.ts";

let devicePromise: Promise<GPUDevice | null> | undefined;
const pipelines = new WeakMap<GPUDevice, Map<string, GPUComputePipeline>>();

/**
 * The shared test device, or `null` (after printing why) when `navigator.gpu` has no adapter.
 *
 * @example
 * ```ts
 * import { getTestDevice } from "./_harness_test_util.ts";
 * const device = await getTestDevice();
 * console.log(device === null ? "no adapter" : "adapter found");
 * ```
 */
export function getTestDevice(): Promise<GPUDevice | null> {
  devicePromise ??= (async () => {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    const adapter = gpu ? await gpu.requestAdapter() : null;
    if (!adapter) {
      console.warn("kernels: navigator.gpu has no adapter, skipping WebGPU kernel tests");
      return null;
    }
    const requiredLimits: Record<string, number> = {};
    for (const key in adapter.limits) {
      const value = (adapter.limits as unknown as Record<string, number>)[key];
      if (typeof value === "number") requiredLimits[key] = value;
    }
    return await adapter.requestDevice({ requiredLimits });
  })();
  return devicePromise;
}

/**
 * Description of the test adapter (`adapter.info.description`), or `"none"`.
 *
 * @example
 * ```ts
 * import { adapterDescription } from "./_harness_test_util.ts";
 * console.log(await adapterDescription());
 * ```
 */
export async function adapterDescription(): Promise<string> {
  const device = await getTestDevice();
  if (!device) return "none";
  const info = device.adapterInfo;
  return `${info.description || info.vendor} (fallback: ${info.isFallbackAdapter})`;
}

/** Buffers, pipelines and bind groups of a plan, ready to encode any number of times. */
export interface PreparedPlan {
  /** Records every step of the plan into one compute pass each. */
  encode(encoder: GPUCommandEncoder): void;
  /** All buffers by binding name. */
  buffers: Map<string, GPUBuffer>;
  /** Frees the buffers. */
  destroy(): void;
}

function pipelineFor(device: GPUDevice, step: KernelSource): GPUComputePipeline {
  const code = renderWgsl(step.kernel);
  let cache = pipelines.get(device);
  if (!cache) pipelines.set(device, cache = new Map());
  const slots = layoutOf(step.kernel);
  const key = `${slotKey(slots)}\n${code}`;
  let pipeline = cache.get(key);
  if (!pipeline) {
    const layout = device.createBindGroupLayout({ entries: layoutEntries(slots) });
    pipeline = device.createComputePipeline({
      layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
    });
    cache.set(key, pipeline);
  }
  return pipeline;
}

/**
 * Allocates the buffers of a plan (inputs uploaded, outputs and scratch zero-filled),
 * compiles its pipelines and builds its bind groups. Fails with the WebGPU validation message
 * when a kernel does not compile.
 *
 * @example
 * ```ts
 * import { getTestDevice, preparePlan } from "./_harness_test_util.ts";
 * const device = await getTestDevice();
 * if (device) {
 *   const plan = { algorithm: "gemm" as const, steps: [], scratch: [] };
 *   (await preparePlan(device, plan, { inputs: {}, outputs: {} })).destroy();
 * }
 * ```
 */
export async function preparePlan(
  device: GPUDevice,
  plan: KernelPlan,
  options: { inputs: Record<string, Float32Array>; outputs: Record<string, number> },
): Promise<PreparedPlan> {
  const buffers = new Map<string, GPUBuffer>();
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_SRC |
    GPUBufferUsage.COPY_DST;
  const make = (name: string, bytes: number) => {
    const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(bytes / 16) * 16), usage });
    buffers.set(name, buffer);
    return buffer;
  };
  for (const [name, data] of Object.entries(options.inputs)) {
    const buffer = make(name, data.byteLength);
    device.queue.writeBuffer(
      buffer,
      0,
      data.buffer as ArrayBuffer,
      data.byteOffset,
      data.byteLength,
    );
  }
  for (const [name, length] of Object.entries(options.outputs)) make(name, length * 4);
  // Steps run in order, so plans merged into one may share a scratch name: allocate the largest.
  const scratch = new Map<string, number>();
  for (const s of plan.scratch) scratch.set(s.name, Math.max(s.size, scratch.get(s.name) ?? 0));
  for (const [name, size] of scratch) make(name, size);
  device.pushErrorScope("validation");
  const steps = plan.steps.map((step) => {
    const pipeline = pipelineFor(device, step);
    const bindGroup = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: step.bindings.map((name, i) => {
        const buffer = buffers.get(name);
        if (!buffer) {
          throw new TypeError(`No buffer for binding "${name}": pass it as input or output`);
        }
        const range = step.ranges?.[name];
        return { binding: i, resource: range === undefined ? { buffer } : { buffer, ...range } };
      }),
    });
    return { pipeline, bindGroup, workgroups: step.workgroups };
  });
  const error = await device.popErrorScope();
  if (error) throw new Error(`WebGPU validation failed: ${error.message}`);
  return {
    buffers,
    encode(encoder) {
      for (const s of steps) {
        const pass = encoder.beginComputePass();
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(...s.workgroups);
        pass.end();
      }
    },
    destroy() {
      for (const b of buffers.values()) b.destroy();
    },
  };
}

/**
 * Reads a buffer back as a `Float32Array` of `length` elements.
 *
 * @example
 * ```ts
 * import { getTestDevice, readBuffer } from "./_harness_test_util.ts";
 * import assert from "node:assert/strict";
 * const device = await getTestDevice();
 * if (device) {
 *   const buffer = device.createBuffer({ size: 16, usage: GPUBufferUsage.COPY_SRC });
 *   assert((await readBuffer(device, buffer, 4)).length === 4);
 * }
 * ```
 */
export async function readBuffer(
  device: GPUDevice,
  buffer: GPUBuffer,
  length: number,
): Promise<Float32Array> {
  const bytes = Math.ceil((length * 4) / 16) * 16;
  const staging = device.createBuffer({
    size: bytes,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const encoder = device.createCommandEncoder();
  encoder.copyBufferToBuffer(buffer, 0, staging, 0, bytes);
  device.queue.submit([encoder.finish()]);
  await staging.mapAsync(GPUMapMode.READ);
  const out = new Float32Array(staging.getMappedRange().slice(0, length * 4));
  staging.unmap();
  staging.destroy();
  return out;
}

/**
 * Runs a plan once and returns the named outputs (lengths in elements).
 *
 * @example
 * ```ts
 * import { getTestDevice, runPlan } from "./_harness_test_util.ts";
 * import { matmulKernel } from "./matmul.ts";
 * const device = await getTestDevice();
 * if (device) {
 *   const plan = matmulKernel({ batch: 1, m: 1, n: 1, k: 3 });
 *   const { out } = await runPlan(device, plan, {
 *     inputs: { a: new Float32Array([1, 2, 3]), b: new Float32Array([1, 1, 1]) },
 *     outputs: { out: 1 },
 *   });
 *   if (out[0] !== 6) throw new Error(`expected 6, got ${out[0]}`);
 * }
 * ```
 */
export async function runPlan(
  device: GPUDevice,
  plan: KernelPlan,
  options: { inputs: Record<string, Float32Array>; outputs: Record<string, number> },
): Promise<Record<string, Float32Array>> {
  const prepared = await preparePlan(device, plan, options);
  try {
    const encoder = device.createCommandEncoder();
    prepared.encode(encoder);
    device.queue.submit([encoder.finish()]);
    const result: Record<string, Float32Array> = {};
    for (const [name, length] of Object.entries(options.outputs)) {
      result[name] = await readBuffer(device, prepared.buffers.get(name)!, length);
    }
    return result;
  } finally {
    prepared.destroy();
  }
}

/**
 * Throughput timing: `reps` runs of the plan submitted back to back (one command buffer each),
 * one `onSubmittedWorkDone` at the end; returns the median and the minimum over `trials` of
 * milliseconds per run (the minimum is the figure least disturbed by other processes on a
 * shared machine). Warm-up (compilation, first runs) is excluded.
 *
 * @example
 * ```ts
 * import { getTestDevice, timePlan } from "./_harness_test_util.ts";
 * import { matmulKernel } from "./matmul.ts";
 * const device = await getTestDevice();
 * if (device) {
 *   const plan = matmulKernel({ batch: 1, m: 4, n: 4, k: 4 });
 *   const { median } = await timePlan(device, plan, {
 *     inputs: { a: new Float32Array(16), b: new Float32Array(16) }, outputs: { out: 16 },
 *     reps: 2, trials: 1,
 *   });
 *   if (!(median >= 0)) throw new Error(`bad time ${median}`);
 * }
 * ```
 */
export async function timePlan(
  device: GPUDevice,
  plan: KernelPlan,
  options: {
    inputs: Record<string, Float32Array>;
    outputs: Record<string, number>;
    reps?: number;
    trials?: number;
  },
): Promise<{ median: number; min: number }> {
  const reps = options.reps ?? 20;
  const trials = options.trials ?? 5;
  const prepared = await preparePlan(device, plan, options);
  try {
    const submitAll = (n: number) => {
      for (let i = 0; i < n; i++) {
        const encoder = device.createCommandEncoder();
        prepared.encode(encoder);
        device.queue.submit([encoder.finish()]);
      }
      return device.queue.onSubmittedWorkDone();
    };
    await submitAll(2);
    const times: number[] = [];
    for (let t = 0; t < trials; t++) {
      const start = performance.now();
      await submitAll(reps);
      times.push((performance.now() - start) / reps);
    }
    times.sort((x, y) => x - y);
    return { median: times[Math.floor(times.length / 2)], min: times[0] };
  } finally {
    prepared.destroy();
  }
}

/**
 * Deterministic inputs as in WORKLOADS.md: murmur3's finaliser over a counter,
 * values uniform in [-scale, scale).
 *
 * @example
 * ```ts
 * import { hashFill } from "./_harness_test_util.ts";
 * import assert from "node:assert/strict";
 * const x = hashFill(4, 1);
 * assert(x.length === 4 && Math.abs(x[0]) <= 1);
 * ```
 */
export function hashFill(length: number, seed: number, scale = 1): Float32Array {
  const fmix = (h: number) => {
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  };
  const key = fmix(Math.imul(seed, 0x9e3779b9) >>> 0);
  const out = new Float32Array(length);
  for (let i = 0; i < length; i++) {
    const h = fmix((key + i) >>> 0);
    out[i] = (2 * (h >>> 8) / 2 ** 24 - 1) * scale;
  }
  return out;
}

/**
 * Largest |got - want| / (atol + rtol * scale_i) over all elements (≤ 1 means within
 * tolerance), where `scale_i` is the given per-element magnitude (e.g. Σ|terms|) or |want_i|.
 *
 * @example
 * ```ts
 * import { maxScaledError } from "./_harness_test_util.ts";
 * import assert from "node:assert/strict";
 * assert(maxScaledError([1, 2], [1, 2.001], { atol: 0, rtol: 1e-3 }) <= 1);
 * ```
 */
export function maxScaledError(
  got: ArrayLike<number>,
  want: ArrayLike<number>,
  options: { atol: number; rtol: number; scale?: ArrayLike<number> },
): number {
  if (got.length !== want.length) {
    throw new RangeError(`Length ${got.length} does not match expected length ${want.length}`);
  }
  let worst = 0;
  for (let i = 0; i < got.length; i++) {
    const s = options.scale ? options.scale[i] : Math.abs(want[i]);
    const e = Math.abs(got[i] - want[i]) / (options.atol + options.rtol * s);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

/**
 * Renames bindings of a plan's steps and scratch buffers (names not in `names` are kept),
 * so several plans can share one buffer set, e.g. to time a forward and backward pass together.
 *
 * @example
 * ```ts
 * import { renameBindings } from "./_harness_test_util.ts";
 * import { matmulKernel } from "./matmul.ts";
 * const plan = renameBindings(matmulKernel({ batch: 1, m: 2, n: 2, k: 8 }), { out: "s" });
 * plan.steps[0].bindings.at(-1); // "s"
 * ```
 */
export function renameBindings(plan: KernelPlan, names: Record<string, string>): KernelPlan {
  const rename = (name: string) => names[name] ?? name;
  return {
    algorithm: plan.algorithm,
    steps: plan.steps.map((s) => ({
      ...s,
      bindings: s.bindings.map(rename),
      writes: s.writes.map(rename),
      ...(s.ranges === undefined ? {} : {
        ranges: Object.fromEntries(Object.entries(s.ranges).map(([k, r]) => [rename(k), r])),
      }),
    })),
    scratch: plan.scratch.map((s) => ({ ...s, name: rename(s.name) })),
  };
}
