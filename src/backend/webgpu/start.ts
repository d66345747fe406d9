// Starting the WebGPU backend once per process (shared by mod.ts, the tests and the bench).
import { requestGpu } from "./device.ts";
import { WebGpuBackend } from "./webgpu_backend.ts";
import { CompilePool, compileThreads } from "./compile_pool.ts";

let starting: Promise<WebGpuBackend> | null = null;

/**
 * Starts the WebGPU backend once (later calls return the same one); rejects with an error
 * naming the cause and the cpu backend when there is no adapter.
 *
 * @example
 * ```ts ignore
 * import { startWebGpuBackend } from "./start.ts";
 * const gpu = await startWebGpuBackend();
 * console.log(gpu.description); // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
 * ```
 */
export function startWebGpuBackend(): Promise<WebGpuBackend> {
  if (starting === null) {
    starting = requestGpu().then(async (ctx) => {
      const backend = new WebGpuBackend(ctx);
      backend.compilePool = await CompilePool.start(ctx, compileThreads(ctx.description));
      return backend;
    });
    // A failed start may be retried (e.g. after a test's simulated missing adapter).
    starting.catch(() => starting = null);
  }
  return starting;
}
