/**
 * Backend choice: `COSGRAD_BACKEND=cpu|webgpu|wasm` in the environment, or `setBackend` in code.
 *
 * @module
 */
import { envVar } from "../_env.ts";
import { CpuBackend } from "./cpu/cpu_backend.ts";
import type { Backend } from "./storage.ts";

/** Names of the built-in backends. */
export type BackendName = "cpu" | "webgpu" | "wasm";

const factories = new Map<string, () => Promise<Backend>>();
const instances = new Map<string, Backend>();
const cpu = new CpuBackend();
instances.set("cpu", cpu);
let current: Backend | null = null;

/** The part of `AsyncLocalStorage` used here. */
interface BackendContext {
  getStore(): Backend | undefined;
  run<R>(store: Backend, fn: () => R): R;
}

/**
 * The backend of the running {@link withBackendAsync} call, carried through awaits by
 * `AsyncLocalStorage` (node:async_hooks, in Deno and Node). Loaded by a computed specifier so
 * that bundles for the browser, which lacks it, do not try to include it.
 */
async function backendContext(): Promise<BackendContext | null> {
  if (!("Deno" in globalThis) && !("process" in globalThis)) return null;
  try {
    const specifier = "node:async_hooks";
    const hooks = await import(specifier) as {
      AsyncLocalStorage: new () => BackendContext;
    };
    return new hooks.AsyncLocalStorage();
  } catch {
    return null;
  }
}
const context = await backendContext();
/** Backends of the {@link withBackendAsync} calls running where there is no context. */
const swapped: Backend[] = [];

/** Registers a backend factory under `name` (used by the WebGPU backend module). */
export function registerBackend(name: string, factory: () => Promise<Backend>): void {
  factories.set(name, factory);
}

/**
 * Makes `name` the backend of every following operation; resolves when it is ready.
 *
 * @example
 * ```ts
 * import { getBackend, setBackend } from "./registry.ts";
 * await setBackend("cpu");
 * getBackend().name; // "cpu"
 * ```
 */
export async function setBackend(name: BackendName | Backend): Promise<Backend> {
  if (typeof name !== "string") {
    current = name;
    return name;
  }
  current = await backendNamed(name);
  return current;
}

/** The backend called `name`, started on first use. */
export async function backendNamed(name: string): Promise<Backend> {
  const have = instances.get(name);
  if (have !== undefined) return have;
  const factory = factories.get(name);
  if (factory === undefined) {
    throw new RangeError(
      `Unknown backend "${name}": expected one of ${
        [...instances.keys(), ...factories.keys()].join(", ")
      }`,
    );
  }
  const backend = await factory();
  instances.set(name, backend);
  return backend;
}

/**
 * The current backend. Unless `setBackend` chose one, `COSGRAD_BACKEND` names it (importing
 * `mod.ts` starts a backend that needs starting, such as webgpu), and otherwise it is `cpu`.
 *
 * @example
 * ```ts
 * import { getBackend } from "./registry.ts";
 * typeof getBackend().name; // "string"
 * ```
 */
export function getBackend(): Backend {
  const scoped = context?.getStore();
  if (scoped !== undefined) return scoped;
  if (current !== null) return current;
  const want = envVar("COSGRAD_BACKEND");
  if (want !== undefined && want !== "" && want !== "cpu") {
    const have = instances.get(want);
    if (have === undefined) {
      throw new TypeError(
        `COSGRAD_BACKEND=${want} but that backend is not started: import cosgrad's mod.ts ` +
          `(which starts it) or call await setBackend("${want}") first`,
      );
    }
    current = have;
    return have;
  }
  current = cpu;
  return cpu;
}

/** The CPU interpreter backend. */
export function cpuBackend(): Backend {
  return cpu;
}

/**
 * Runs `fn` with `backend` as the current backend, then restores the previous one.
 *
 * @example
 * ```ts
 * import { cpuBackend, withBackend } from "./registry.ts";
 * withBackend(cpuBackend(), () => 1 + 1); // 2
 * ```
 */
export function withBackend<T>(backend: Backend, fn: () => T): T {
  if (context !== null) return context.run(backend, fn);
  const before = current;
  current = backend;
  try {
    return fn();
  } finally {
    current = before;
  }
}

/**
 * Like {@link withBackend} for an async `fn`: `backend` is current for `fn` and everything it
 * awaits, and only for them. Concurrent calls each see their own backend (the choice travels
 * with the async context, `AsyncLocalStorage`, not in a global swapped across an await). Where
 * no async context exists (browsers), concurrent calls with different backends are refused
 * rather than mixed.
 *
 * @example
 * ```ts
 * import { cpuBackend, getBackend, withBackendAsync } from "./registry.ts";
 * const name = await withBackendAsync(cpuBackend(), async () => {
 *   await Promise.resolve();
 *   return getBackend().name;
 * });
 * name; // "cpu"
 * ```
 */
export async function withBackendAsync<T>(backend: Backend, fn: () => Promise<T>): Promise<T> {
  if (context !== null) return await context.run(backend, fn);
  if (swapped.length > 0 && swapped.some((b) => b !== backend)) {
    throw new Error(
      `withBackendAsync(${backend.name}) while another call runs with ${
        swapped[0].name
      }: this runtime has no AsyncLocalStorage to keep them apart; await the first call`,
    );
  }
  const before = current;
  current = backend;
  swapped.push(backend);
  try {
    return await fn();
  } finally {
    swapped.pop();
    if (swapped.length === 0) current = before;
  }
}
