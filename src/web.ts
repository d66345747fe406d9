/**
 * The browser entry point: everything `mod.ts` exports, plus the WebGPU backend (importing this
 * module registers it, so `await cg.setBackend("webgpu")` works), and nothing that needs Deno.
 * `deno task build` bundles this file into `dist/cosgrad.js`.
 *
 * @example
 * ```ts
 * import * as cg from "./web.ts";
 * await cg.add(cg.tensor([1]), cg.tensor([2])).data(); // Float32Array [3]
 * ```
 *
 * @module
 */
export * from "../mod.ts";
export { initDefaultBackend, initWebGpu, startWebGpu } from "./backend/webgpu/mod.ts";
export * as losses from "./losses/mod.ts";
