// A thread of the WebGPU backend's compile pool (compile_pool.ts): with a device of its own on
// the main device's adapter, it claims jobs of each batch from the shared counter, compiles
// each by a one-workgroup dispatch, and marks it done (with its time) for the main thread.
import { requestGpu } from "./device.ts";
import {
  type CompileBatch,
  compileByDispatch,
  DEAD,
  layoutEntries,
  NEXT,
  STATUS,
} from "./compile_pool.ts";

interface Port {
  on(event: "message", fn: (batch: CompileBatch) => void): void;
  postMessage(m: unknown): void;
}

const gpu = requestGpu().catch(() => null);
const scratch: GPUBuffer[] = [];

async function run(batch: CompileBatch): Promise<void> {
  const st = new Int32Array(batch.state);
  const n = batch.jobs.length;
  const ctx = await gpu;
  if (ctx === null || ctx.description !== batch.adapter) {
    Atomics.store(st, DEAD, 1);
    for (let i = 0; i < n; i++) Atomics.notify(st, STATUS + i);
    return;
  }
  const device = ctx.device;
  for (;;) {
    const i = Atomics.add(st, NEXT, 1);
    if (i >= n) return;
    const started = performance.now();
    let status = 1;
    try {
      const job = batch.jobs[i];
      const layout = device.createBindGroupLayout({ entries: layoutEntries(job.slots) });
      device.pushErrorScope("validation");
      const pipeline = device.createComputePipeline({
        layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: device.createShaderModule({ code: job.code }), entryPoint: "main" },
      });
      const invalid = device.popErrorScope();
      compileByDispatch(device, scratch, pipeline, layout, job.slots);
      await device.queue.onSubmittedWorkDone();
      if (await invalid !== null) status = 2;
    } catch {
      status = 2;
    }
    Atomics.store(st, STATUS + n + i, Math.round(performance.now() - started));
    Atomics.store(st, STATUS + i, status);
    Atomics.notify(st, STATUS + i);
  }
}

const nodeThreads = "node:worker_threads";
const port = ((await import(nodeThreads)) as { parentPort: Port | null }).parentPort;
port?.on("message", (batch) => void run(batch));
// Tells the pool this thread is ready (with a device, or without one: then it compiles nothing).
port?.postMessage({ ready: (await gpu) !== null });
