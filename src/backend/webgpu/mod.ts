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
 * clearly without an adapter) or, when nothing is asked, when a hardware adapter exists;
 * otherwise (no adapter, or only a software one such as llvmpipe or SwiftShader) `wasm`
 * (WebAssembly SIMD on all cores; the `cpu` interpreter is the float64 oracle, far slower).
 * Resolves to the backend made current.
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
    const gpu = await startWebGpuBackend();
    // A software adapter (llvmpipe, SwiftShader) ran M1, L1 and T1 slower than the wasm backend
    // in the same run on a 2-core machine (BENCHMARKS.md, run 11; C1 about even), and compiles
    // T1 in minutes against seconds: without a hardware adapter, wasm is the default.
    if (gpu.gpu.fallback) {
      try {
        return await setBackend("wasm");
      } catch {
        // wasm did not start: the software adapter it is.
      }
    }
    await setBackend(gpu);
    return gpu;
  } catch (e) {
    // Falling back is the point of this function, but never silently: say why.
    const why = e instanceof Error ? e.message : String(e);
    try {
      const wasm = await setBackend("wasm");
      console.warn(`cosgrad: using the wasm backend; WebGPU did not start: ${why}`);
      return wasm;
    } catch (w) {
      console.warn(
        `cosgrad: using the cpu backend; WebGPU did not start (${why}), nor wasm (${
          w instanceof Error ? w.message : String(w)
        })`,
      );
      return await setBackend(cpuBackend());
    }
  }
}

/**
 * `COSGRAD_BACKEND` alone chooses the backend of a plain script: `webgpu` starts it when this
 * module loads (an error without an adapter, naming the cause), `cpu` selects the interpreter,
 * anything else is refused naming the variable. Empty or unset leaves the choice to the code.
 */
async function backendFromEnvironment(): Promise<void> {
  const want = envVar("COSGRAD_BACKEND");
  if (want === undefined || want === "") return;
  if (want === "webgpu") await initWebGpu();
  else if (want === "cpu" || want === "wasm") await setBackend(want);
  else throw new RangeError(`Invalid COSGRAD_BACKEND=${want}: expected cpu, wasm or webgpu`);
}

await backendFromEnvironment();
