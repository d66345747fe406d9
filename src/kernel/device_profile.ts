/**
 * The device profile: what the kernel layer knows about an adapter, as plain data derived from
 * its limits, features and description. Kernel choices read it (not "is this llvmpipe"), and its
 * {@linkcode profileKey} is part of every program and pipeline cache key and of the tuning
 * cache's keys, so a changed limit or feature compiles and tunes anew.
 *
 * @module
 */

/** The adapter limits the kernel layer plans with (bytes, counts). */
export interface ProfileLimits {
  /** Bytes one storage binding may cover. */
  maxStorageBufferBindingSize: number;
  /** Bytes of one buffer. */
  maxBufferSize: number;
  /** Storage buffers one compute shader may bind. */
  maxStorageBuffersPerShaderStage: number;
  /** Bytes of workgroup memory. */
  maxComputeWorkgroupStorageSize: number;
  /** Invocations of one workgroup. */
  maxComputeInvocationsPerWorkgroup: number;
  /** Workgroup size in x. */
  maxComputeWorkgroupSizeX: number;
  /** Workgroups per dispatch dimension. */
  maxComputeWorkgroupsPerDimension: number;
}

/** What an adapter says about itself (a subset of `GPUAdapterInfo` and its features). */
export interface AdapterFacts {
  /** `adapter.info.description` (or vendor and architecture when empty). */
  description: string;
  /** `adapter.info.vendor`. */
  vendor?: string;
  /** `adapter.info.architecture`. */
  architecture?: string;
  /** `adapter.info.isFallbackAdapter`. */
  isFallbackAdapter?: boolean;
  /** Feature names granted to the device (`shader-f16`, `timestamp-query`, ...). */
  features: Iterable<string>;
  /** The limits granted to the device. */
  limits: ProfileLimits;
}

/**
 * How GEMM-family kernels stage their tiles: `"registers"` (each thread loads what it
 * multiplies; no workgroup memory, no barriers: a CPU running the shader, whose loads hit its
 * caches anyway) or `"workgroup"` (tiles shared through workgroup memory: a GPU).
 */
export type TileFamily = "registers" | "workgroup";

/** The device profile: data the kernel layer chooses by; see {@linkcode deviceProfile}. */
export interface DeviceProfile {
  /** The adapter's description. */
  readonly adapter: string;
  /** A software rasterizer running shaders on the CPU (llvmpipe, lavapipe, SwiftShader, WARP). */
  readonly software: boolean;
  /** Tile staging of the GEMM family (from `software` and the workgroup memory). */
  readonly tiles: TileFamily;
  /** Workgroups wanted in flight before split-K pays: CPU threads, or SMs times a few. */
  readonly targetGroups: number;
  /** Whether `shader-f16` is offered. */
  readonly shaderF16: boolean;
  /** Whether `timestamp-query` is offered (per-kernel GPU times; the tuner's clock). */
  readonly timestamps: boolean;
  /** The limits granted. */
  readonly limits: Readonly<ProfileLimits>;
}

const SOFTWARE = /llvmpipe|lavapipe|swiftshader|software|warp|microsoft basic render/i;

/** Workgroup memory a shared-tile GEMM needs: two 128x8 f32 tiles, double-buffered. */
const WORKGROUP_TILE_BYTES = 16 * 1024;

/**
 * Derives the profile of an adapter from its facts.
 *
 * @example
 * ```ts
 * import { deviceProfile } from "./device_profile.ts";
 * import assert from "node:assert/strict";
 * const limits = {
 *   maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 28,
 *   maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupStorageSize: 32768,
 *   maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256,
 *   maxComputeWorkgroupsPerDimension: 65535,
 * };
 * const p = deviceProfile({
 *   description: "llvmpipe (LLVM 15.0.6, 256 bits)", isFallbackAdapter: true,
 *   features: ["timestamp-query"], limits,
 * });
 * assert.equal(p.tiles, "registers");
 * assert.equal(p.timestamps, true);
 * ```
 */
export function deviceProfile(facts: AdapterFacts): DeviceProfile {
  const features = new Set(facts.features);
  const text = [facts.description, facts.vendor, facts.architecture].filter((s) => s).join(" ");
  const software = facts.isFallbackAdapter === true || SOFTWARE.test(text);
  const l = facts.limits;
  const shared = l.maxComputeWorkgroupStorageSize >= WORKGROUP_TILE_BYTES &&
    l.maxComputeInvocationsPerWorkgroup >= 256;
  return Object.freeze({
    adapter: facts.description,
    software,
    tiles: software || !shared ? "registers" : "workgroup",
    targetGroups: software ? 8 : 264,
    shaderF16: features.has("shader-f16"),
    timestamps: features.has("timestamp-query"),
    limits: Object.freeze({ ...l }),
  });
}

/**
 * A string naming everything in the profile, for cache keys (program, pipeline, tuning).
 *
 * @example
 * ```ts
 * import { deviceProfile, profileKey } from "./device_profile.ts";
 * const limits = {
 *   maxStorageBufferBindingSize: 2 ** 27, maxBufferSize: 2 ** 28,
 *   maxStorageBuffersPerShaderStage: 8, maxComputeWorkgroupStorageSize: 32768,
 *   maxComputeInvocationsPerWorkgroup: 256, maxComputeWorkgroupSizeX: 256,
 *   maxComputeWorkgroupsPerDimension: 65535,
 * };
 * const key = profileKey(deviceProfile({ description: "GPU", features: [], limits }));
 * key.startsWith("GPU|workgroup"); // true
 * ```
 */
export function profileKey(p: DeviceProfile): string {
  const l = p.limits;
  return [
    p.adapter,
    p.tiles,
    `groups ${p.targetGroups}`,
    p.shaderF16 ? "f16" : "no-f16",
    p.timestamps ? "timestamps" : "no-timestamps",
    `bind ${l.maxStorageBufferBindingSize}`,
    `buffer ${l.maxBufferSize}`,
    `storage ${l.maxStorageBuffersPerShaderStage}`,
    `wgmem ${l.maxComputeWorkgroupStorageSize}`,
    `inv ${l.maxComputeInvocationsPerWorkgroup}`,
    `x ${l.maxComputeWorkgroupSizeX}`,
    `groups/dim ${l.maxComputeWorkgroupsPerDimension}`,
  ].join("|");
}
