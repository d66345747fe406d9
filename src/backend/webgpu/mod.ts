/**
 * The WebGPU backend: registration, start-up, and the default-backend choice.
 *
 * ```ts ignore
 * import { initDefaultBackend } from "./mod.ts";
 * const backend = await initDefaultBackend(); // webgpu when an adapter exists, else cpu
 * console.log(backend.name);
 * ```
 *
 * @module
 */
import { envVar } from "../../_env.ts";
import { cpuBackend, registerBackend, setBackend } from "../registry.ts";
import type { Backend } from "../storage.ts";
import { requestGpu } from "./device.ts";
import { WebGpuBackend } from "./webgpu_backend.ts";

export { WebGpuBackend } from "./webgpu_backend.ts";
export { setAdapterHookForTesting } from "./device.ts";

let starting: Promise<WebGpuBackend> | null = null;

/**
 * Starts the WebGPU backend once (later calls return the same one); rejects with an error
 * naming the cause and the cpu backend when there is no adapter.
 *
 * @example
 * ```ts ignore
 * import { startWebGpu } from "./mod.ts";
 * const gpu = await startWebGpu();
 * console.log(gpu.description); // e.g. "llvmpipe (LLVM 15.0.6, 256 bits)"
 * ```
 */
export function startWebGpu(): Promise<WebGpuBackend> {
  if (starting === null) {
    starting = requestGpu().then((ctx) => new WebGpuBackend(ctx));
    // A failed start may be retried (e.g. after a test's simulated missing adapter).
    starting.catch(() => starting = null);
  }
  return starting;
}

registerBackend("webgpu", startWebGpu);

/**
 * Starts the WebGPU backend and makes it the current backend.
 *
 * @example
 * ```ts ignore
 * import { initWebGpu } from "./mod.ts";
 * const backend = await initWebGpu();
 * backend.name; // "webgpu"
 * ```
 */
export async function initWebGpu(): Promise<WebGpuBackend> {
  const backend = await startWebGpu();
  await setBackend(backend);
  return backend;
}

/**
 * Chooses the default backend: `cpu` when `COSGRAD_BACKEND=cpu`; `webgpu` when it is asked
 * for (`COSGRAD_BACKEND=webgpu`, failing clearly without an adapter) or, when nothing is
 * asked, when an adapter exists; otherwise `cpu`. Resolves to the backend made current.
 *
 * @example
 * ```ts ignore
 * import { initDefaultBackend } from "./mod.ts";
 * (await initDefaultBackend()).name; // "webgpu" or "cpu"
 * ```
 */
export async function initDefaultBackend(): Promise<Backend> {
  const want = envVar("COSGRAD_BACKEND");
  if (want === "cpu") return await setBackend("cpu");
  if (want === "webgpu") return await initWebGpu();
  try {
    return await initWebGpu();
  } catch {
    return await setBackend(cpuBackend());
  }
}
