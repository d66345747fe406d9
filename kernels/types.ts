/**
 * Shared types of the kernel builders in `kernels/`.
 *
 * A builder takes a shape spec and returns a {@linkcode KernelPlan}: one or more
 * {@linkcode KernelSource} steps to dispatch in order, plus the scratch buffers the steps
 * share. Every binding lives in `@group(0)`, numbered in the order of
 * {@linkcode KernelSource.bindings}; a binding name refers to the same buffer in every step of
 * a plan (a main input such as `"a"`, an epilogue input `"e0"`, the output `"out"`, or a
 * scratch buffer named in {@linkcode KernelPlan.scratch}).
 *
 * @module
 */
import type { Kernel, Stmt } from "../src/kernel/ir.ts";

/**
 * One compute dispatch: its kernel IR (the backend renders it to WGSL with the one renderer),
 * workgroup count and the names of its bindings.
 */
export interface KernelSource {
  /** Number of workgroups to dispatch in x, y, z (each ≤ 65535; larger counts are folded into y/z). */
  workgroups: [number, number, number];
  /** Names of the bindings in binding order, e.g. `["a", "b", "out"]`. */
  bindings: string[];
  /** The bindings this step writes (declared `read_write`; all others are `read`). */
  writes: readonly string[];
  /**
   * Byte ranges of scratch buffers this step binds instead of the whole buffer, by binding name
   * (offsets multiples of 256): one kernel dispatched once per slice of a buffer, e.g. a uniform
   * binding of at most 64 KiB over a larger buffer.
   */
  ranges?: Readonly<Record<string, { offset: number; size: number }>>;
  /**
   * The kernel, its bindings in `@group(0)` in this order (inputs, then the output; lanes say
   * `array<f32>` or `array<vec4<f32>>` as each builder documents), its references the binding
   * names. Rendered, its entry point is `main`.
   */
  kernel: Kernel<string>;
}

/**
 * A fused epilogue: kernel-IR statements run on each output value before it is stored.
 *
 * They see `acc: f32` (a mutable `var`, assign the result to it) and `idx: u32`, the flat
 * row-major index of the value in the output tensor; they may read `extraInputs` extra
 * bindings named `e0, e1, ...` (read-only f32 arrays, declared after the main inputs and before
 * the output). Example, a bias per output column of an `m x 64` product:
 * `{ stmts: [{ kind: "assign", name: "acc", value: bin("+", name("acc", "f32"),
 * load("e0", bin("%", name("idx", "u32"), u32(64)), "f32")) }], extraInputs: 1 }`.
 */
export interface Epilogue {
  /** Statements that update `acc` (f32) for the output element at flat index `idx` (u32). */
  stmts: readonly Stmt[];
  /** Number of extra read-only `array<f32>` bindings `e0..e{n-1}` the statements read. */
  extraInputs: number;
}

/**
 * A binding split into parts: a tensor larger than one storage binding is bound as `parts`
 * consecutive ranges of its buffer (`name_0`, `name_1`, ... in consecutive binding slots, in
 * place of `name`), read through the accessor `name_at(i)` or written through `name_put(i, v)`
 * (`i` in units of the declared element type). In {@linkcode KernelSource.bindings} the name
 * still appears once and stands for all its parts.
 */
export interface BindingSplit {
  /** Number of parts (at least 2). */
  parts: number;
  /** f32 elements in every part but the last (a multiple of 4: vec4 arrays split alike). */
  elements: number;
}

/** A scratch buffer the steps of a plan share (for example split-K partial sums). */
export interface ScratchBuffer {
  /** Binding name used in {@linkcode KernelSource.bindings}. */
  name: string;
  /** Size in bytes (a multiple of 16). Contents need no initialisation. */
  size: number;
}

/**
 * What every builder returns: steps to dispatch in order (one compute pass or several,
 * the caller must keep them in order) and the scratch buffers to allocate for them.
 */
export interface KernelPlan {
  /**
   * The algorithm that produced the plan (typed, so tests and tools never read it out of the
   * WGSL): `gemm` (the tiled GEMM core: matmul, implicit-GEMM convolutions), `rows` (3x3
   * convolutions by rows), `rowsFilter` (their weight gradient), `explicit` (im2col / col2im
   * columns and a GEMM).
   */
  algorithm: "gemm" | "rows" | "rowsFilter" | "explicit";
  /** Dispatches, in order. */
  steps: KernelSource[];
  /** Scratch buffers referenced by name in the steps' bindings; empty when none. */
  scratch: ScratchBuffer[];
}
