/**
 * The WebGPU device: adapter choice, limits, features, and clear reports of everything that can
 * go wrong (no adapter, device loss, validation and WGSL compile errors).
 *
 * @module
 */
import {
  type DeviceProfile,
  deviceProfile,
  type ProfileLimits,
} from "../../kernel/device_profile.ts";

/** What the backend knows about its device. */
export interface GpuContext {
  /** The device. */
  readonly device: GPUDevice;
  /** `adapter.info.description` (or vendor/architecture when empty), e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  readonly description: string;
  /** Whether the adapter is a software fallback (llvmpipe, SwiftShader). */
  readonly fallback: boolean;
  /** The limits granted to the device (the adapter's own). */
  readonly limits: GpuLimits;
  /** Whether `timestamp-query` was granted (per-kernel profiling). */
  readonly timestamps: boolean;
  /** The device profile (limits, features, adapter) kernels are chosen by. */
  readonly profile: DeviceProfile;
  /** Errors seen on the device and not yet reported (validation, out of memory, loss). */
  readonly errors: Error[];
  /** Set when the device was lost; every later use fails with it. */
  lost: Error | null;
}

/** The device limits the compiler plans with (the profile's). */
export type GpuLimits = ProfileLimits;

const LIMIT_NAMES: readonly (keyof GpuLimits)[] = [
  "maxStorageBufferBindingSize",
  "maxBufferSize",
  "maxStorageBuffersPerShaderStage",
  "maxComputeWorkgroupStorageSize",
  "maxComputeInvocationsPerWorkgroup",
  "maxComputeWorkgroupSizeX",
  "maxComputeWorkgroupsPerDimension",
];

/** Device errors kept until the next call reports them. */
const MAX_PENDING_ERRORS = 100;

type AdapterHook = () => Promise<GPUAdapter | null>;
let adapterHook: AdapterHook | null = null;

/**
 * Replaces the adapter request (tests simulate a machine without one); `null` restores it.
 *
 * @example
 * ```ts
 * import { setAdapterHookForTesting } from "./device.ts";
 * setAdapterHookForTesting(() => Promise.resolve(null));
 * setAdapterHookForTesting(null);
 * ```
 */
export function setAdapterHookForTesting(hook: AdapterHook | null): void {
  adapterHook = hook;
}

function noAdapter(cause: string): Error {
  return new Error(
    `No WebGPU adapter: ${cause}. Use the cpu backend instead (COSGRAD_BACKEND=cpu, or setBackend("cpu"))`,
  );
}

/** Rejects after `ms` unless `p` settles first, so a broken driver cannot hang the caller. */
function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(noAdapter(`${what} did not answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Requests a high-performance adapter and a device with the adapter's own limits (and
 * `timestamp-query` when offered). Without an adapter the error names the cause and the `cpu`
 * backend; it never hangs (a 20 s timeout).
 *
 * @example
 * ```ts ignore
 * import { requestGpu } from "./device.ts";
 * const gpu = await requestGpu();
 * console.log(gpu.description, gpu.limits.maxStorageBufferBindingSize);
 * ```
 */
export async function requestGpu(options: { timeoutMs?: number } = {}): Promise<GpuContext> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  let adapter: GPUAdapter | null;
  if (adapterHook !== null) {
    adapter = await adapterHook();
  } else {
    const gpu = (globalThis.navigator as { gpu?: GPU } | undefined)?.gpu;
    if (gpu === undefined) throw noAdapter("navigator.gpu is not available in this runtime");
    adapter = await withTimeout(
      gpu.requestAdapter({ powerPreference: "high-performance" }),
      timeoutMs,
      "navigator.gpu.requestAdapter()",
    );
  }
  if (adapter === null) {
    throw noAdapter(
      "navigator.gpu.requestAdapter() found none (no GPU driver, and no software adapter such as Mesa's llvmpipe)",
    );
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of LIMIT_NAMES) requiredLimits[name] = adapter.limits[name];
  const features: GPUFeatureName[] = [];
  for (const f of ["timestamp-query", "shader-f16"] as const) {
    if (adapter.features.has(f)) features.push(f);
  }
  const device = await withTimeout(
    adapter.requestDevice({ requiredFeatures: features, requiredLimits }),
    timeoutMs,
    "adapter.requestDevice()",
  );
  const info = adapter.info;
  const description = info.description ||
    [info.vendor, info.architecture, info.device].filter((s) => s).join(" ") || "unknown adapter";
  const limits = {} as GpuLimits;
  for (const name of LIMIT_NAMES) limits[name] = device.limits[name];
  const ctx: GpuContext = {
    device,
    description,
    fallback: info.isFallbackAdapter ?? false,
    limits,
    timestamps: device.features.has("timestamp-query"),
    profile: deviceProfile({
      description,
      vendor: info.vendor,
      architecture: info.architecture,
      isFallbackAdapter: info.isFallbackAdapter,
      features: [...device.features] as string[],
      limits,
    }),
    errors: [],
    lost: null,
  };
  device.addEventListener("uncapturederror", (event) => {
    const error = (event as GPUUncapturedErrorEvent).error;
    // Every error is kept until reported, up to a bound; the last entry counts the rest.
    if (ctx.errors.length < MAX_PENDING_ERRORS) {
      ctx.errors.push(new Error(`WebGPU error on ${description}: ${error.message}`));
    } else {
      const more = ctx.errors[MAX_PENDING_ERRORS] as Error & { more?: number } | undefined;
      if (more === undefined) {
        ctx.errors.push(Object.assign(new Error("1 more WebGPU error, not kept"), { more: 1 }));
      } else {
        more.more = (more.more ?? 1) + 1;
        more.message = `${more.more} more WebGPU errors, not kept`;
      }
    }
  });
  device.lost.then((info) => {
    ctx.lost = new Error(
      `The WebGPU device (${description}) was lost (${info.reason}): ${info.message}. ` +
        `Tensors on it are gone; start again, or use the cpu backend (COSGRAD_BACKEND=cpu)`,
    );
  });
  return ctx;
}

/**
 * Throws the pending device errors, all of them: one as itself, several as an
 * `AggregateError` whose message lists each; or the loss of the device.
 *
 * @example
 * ```ts ignore
 * import { requestGpu, throwPendingError } from "./device.ts";
 * const gpu = await requestGpu();
 * throwPendingError(gpu); // nothing pending: returns
 * ```
 */
export function throwPendingError(ctx: GpuContext): void {
  if (ctx.lost !== null) throw ctx.lost;
  if (ctx.errors.length === 0) return;
  const errors = ctx.errors.splice(0);
  if (errors.length === 1) throw errors[0];
  throw new AggregateError(
    errors,
    `${errors.length} WebGPU errors on ${ctx.description}:\n` +
      errors.map((e, i) => `${i + 1}. ${e.message}`).join("\n"),
  );
}

/**
 * Formats WGSL compilation messages with the offending source lines, numbered, and a caret.
 *
 * @example
 * ```ts
 * import { formatCompileMessages } from "./device.ts";
 * const text = formatCompileMessages("k", "let x = 1;\nlet y: f32 = 1u;", [
 *   { type: "error", lineNum: 2, linePos: 14, message: "type mismatch" },
 * ]);
 * text.includes("   2 | let y: f32 = 1u;"); // true
 * ```
 */
export function formatCompileMessages(
  name: string,
  code: string,
  messages: readonly { type: string; lineNum: number; linePos: number; message: string }[],
): string {
  const lines = code.split("\n");
  const parts = [`WGSL compile error in kernel ${name}:`];
  for (const m of messages) {
    if (m.type !== "error") continue;
    const first = m.message.trim().split("\n")[0];
    parts.push(`${m.type} at line ${m.lineNum}:${m.linePos}: ${first}`);
    for (let l = Math.max(1, m.lineNum - 2); l <= Math.min(lines.length, m.lineNum + 1); l++) {
      parts.push(`${String(l).padStart(4)} | ${lines[l - 1]}`);
      if (l === m.lineNum && m.linePos > 0) parts.push(`     | ${" ".repeat(m.linePos - 1)}^`);
    }
  }
  return parts.join("\n");
}
