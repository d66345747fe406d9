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
import { startWebGpuBackend } from "./start.ts";
import "../wasm/mod.ts";

export type { Backend } from "../storage.ts";

registerBackend("webgpu", startWebGpuBackend);

/**
 * Starts the WebGPU backend once (later calls return the same one) without making it
 * current; rejects with an error naming the cause and the cpu backend without an adapter.
 *
 * @example
 * ```ts ignore
 * import { startWebGpu } from "./mod.ts";
 * const gpu = await startWebGpu();
 * gpu.name; // "webgpu"
 * ```
 */
export function startWebGpu(): Promise<Backend> {
  return startWebGpuBackend();
}

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
export async function initWebGpu(): Promise<Backend> {
  const backend = await startWebGpuBackend();
  await setBackend(backend);
  return backend;
}

/**
 * Chooses the default backend: `cpu` when `COSGRAD_BACKEND=cpu`, `wasm` when
 * `COSGRAD_BACKEND=wasm`; `webgpu` when it is asked for (`COSGRAD_BACKEND=webgpu`, failing
 * clearly without an adapter) or, when nothing is asked, when an adapter exists; otherwise
 * `wasm` (WebAssembly SIMD on all cores; the `cpu` interpreter is the float64 oracle, far
 * slower). Resolves to the backend made current.
 *
 * @example
 * ```ts ignore
 * import { initDefaultBackend } from "./mod.ts";
 * (await initDefaultBackend()).name; // "webgpu", "wasm" or "cpu"
 * ```
 */
export async function initDefaultBackend(): Promise<Backend> {
  const want = envVar("COSGRAD_BACKEND");
  if (want === "cpu") return await setBackend("cpu");
  if (want === "wasm") return await setBackend("wasm");
  if (want === "webgpu") return await initWebGpu();
  try {
    return await initWebGpu();
  } catch {
    try {
      return await setBackend("wasm");
    } catch {
      return await setBackend(cpuBackend());
    }
  }
}
