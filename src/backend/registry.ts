/**
 * Backend choice: `COSGRAD_BACKEND=cpu|webgpu` in the environment, or `setBackend` in code.
 *
 * @module
 */
import { envVar } from "../_env.ts";
import { CpuBackend } from "./cpu/cpu_backend.ts";
import type { Backend } from "./storage.ts";

/** Names of the built-in backends. */
export type BackendName = "cpu" | "webgpu";

const factories = new Map<string, () => Promise<Backend>>();
const instances = new Map<string, Backend>();
const cpu = new CpuBackend();
instances.set("cpu", cpu);
let current: Backend | null = null;

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
  const before = current;
  current = backend;
  try {
    return fn();
  } finally {
    current = before;
  }
}

/** Like {@link withBackend} for an async `fn`: the backend stays current until it settles. */
export async function withBackendAsync<T>(backend: Backend, fn: () => Promise<T>): Promise<T> {
  const before = current;
  current = backend;
  try {
    return await fn();
  } finally {
    current = before;
  }
}
