/**
 * The wasm backend: registration and start-up.
 *
 * ```ts ignore
 * import { startWasm } from "./mod.ts";
 * const backend = await startWasm();
 * console.log(backend.name); // "wasm"
 * ```
 *
 * @module
 */
import { registerBackend } from "../registry.ts";
import type { Backend } from "../storage.ts";
import { WasmBackend } from "./wasm_backend.ts";

let started: Promise<WasmBackend> | null = null;

/**
 * Starts the wasm backend once (later calls return the same one) without making it current.
 *
 * @example
 * ```ts ignore
 * import { startWasm } from "./mod.ts";
 * (await startWasm()).name; // "wasm"
 * ```
 */
export function startWasm(): Promise<Backend> {
  started ??= WasmBackend.create();
  return started;
}

registerBackend("wasm", startWasm);
