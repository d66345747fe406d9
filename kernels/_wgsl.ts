/**
 * Private helpers shared by the kernel generators: workgroup folding, binding declarations,
 * the epilogue function, argument checks.
 *
 * @module
 */
import { bindingDeclarations } from "../src/kernel/wgsl.ts";
import type { BindingSplit, Epilogue } from "./types.ts";

/** Largest workgroup count per dispatch dimension that every WebGPU adapter accepts. */
export const MAX_GROUPS_PER_DIM = 65535;

/** A dispatch of `total` workgroups folded into x, y, z, and the WGSL to recover the linear id. */
export interface FoldedGrid {
  /** Workgroups per dimension. */
  workgroups: [number, number, number];
  /** WGSL statements defining `lin: u32` from `wid` and returning early past `total`. */
  prelude: string;
}

/**
 * Folds a linear workgroup count into x/y/z with each ≤ 65535.
 *
 * @example
 * ```ts
 * import { foldWorkgroups } from "./_wgsl.ts";
 * import assert from "node:assert/strict";
 * assert(foldWorkgroups(70000).workgroups[1] === 2);
 * ```
 */
export function foldWorkgroups(total: number): FoldedGrid {
  if (!Number.isSafeInteger(total) || total < 1) {
    throw new RangeError(`Cannot dispatch ${total} workgroups: expected a positive integer`);
  }
  const x = Math.min(total, MAX_GROUPS_PER_DIM);
  const rest = Math.ceil(total / x);
  const y = Math.min(rest, MAX_GROUPS_PER_DIM);
  const z = Math.ceil(rest / y);
  if (z > MAX_GROUPS_PER_DIM || total >= 2 ** 32) {
    throw new RangeError(`Cannot dispatch ${total} workgroups: expected at most 2^32 - 1`);
  }
  const lines = [`let lin = wid.x + wid.y * ${x}u + wid.z * ${x * y}u;`];
  // Workgroup ids are uniform, so this early return keeps later barriers in uniform control flow.
  if (x * y * z > total) lines.push(`if (lin >= ${total}u) { return; }`);
  return { workgroups: [x, y, z], prelude: lines.join("\n  ") };
}

/** One storage binding declaration. */
export interface BindingDecl {
  /** Binding name (also the WGSL variable name). */
  name: string;
  /** Element type of the runtime-sized array. */
  type: "f32" | "i32" | "vec4<f32>";
  /** Access mode. */
  access: "read" | "read_write";
  /** Bound as several parts (see {@linkcode BindingSplit}); whole when absent. */
  split?: BindingSplit;
}

/**
 * WGSL declarations for bindings in `@group(0)`, numbered from 0 in order; a split binding
 * takes one number per part and gets its accessor function (see {@linkcode BindingSplit}).
 *
 * @example
 * ```ts
 * import { declareBindings } from "./_wgsl.ts";
 * import assert from "node:assert/strict";
 * const code = declareBindings([{ name: "out", type: "f32", access: "read_write" }]);
 * assert(code.includes("@binding(0) var<storage, read_write> out: array<f32>;"));
 * const split = declareBindings([
 *   { name: "a", type: "f32", access: "read", split: { parts: 2, elements: 64 } },
 * ]);
 * assert(split.includes("@binding(1) var<storage, read> a_1: array<f32>;"));
 * assert(split.includes("fn a_at(i: u32) -> f32"));
 * ```
 */
export function declareBindings(decls: BindingDecl[]): string {
  for (const d of decls) {
    if (d.split === undefined) continue;
    const { parts, elements } = d.split;
    if (!Number.isInteger(parts) || parts < 2 || elements <= 0 || elements % 4 !== 0) {
      throw new RangeError(
        `Invalid split of binding ${d.name}: ${parts} parts of ${elements} elements, expected at least 2 parts of a positive multiple of 4`,
      );
    }
  }
  return bindingDeclarations(decls.map((d) => ({
    name: d.name,
    scalar: d.type === "i32" ? "i32" : "f32",
    lanes: d.type === "vec4<f32>" ? 4 : 1,
    write: d.access === "read_write",
    ...(d.split === undefined ? {} : { split: d.split }),
    refs: [],
  }))).join("\n");
}

/**
 * A WGSL read of element `index` of binding `name`: `name[index]`, or through its accessor
 * when split.
 *
 * @example
 * ```ts
 * import { loadAt } from "./_wgsl.ts";
 * import assert from "node:assert/strict";
 * assert(loadAt({ name: "a" }, "i") === "a[i]");
 * assert(loadAt({ name: "a", split: { parts: 2, elements: 4 } }, "i") === "a_at(i)");
 * ```
 */
export function loadAt(binding: SplitRef, index: string): string {
  return binding.split === undefined ? `${binding.name}[${index}]` : `${binding.name}_at(${index})`;
}

/** A binding name, and its split when it has one. */
export interface SplitRef {
  /** Binding name. */
  name: string;
  /** Its parts, when split. */
  split?: BindingSplit;
}

/**
 * A WGSL statement storing `value` at element `index` of binding `name` (through its accessor
 * when split).
 *
 * @example
 * ```ts
 * import { storeAt } from "./_wgsl.ts";
 * import assert from "node:assert/strict";
 * assert(storeAt({ name: "out" }, { index: "i", value: "1.0" }) === "out[i] = 1.0;");
 * ```
 */
export function storeAt(binding: SplitRef, store: { index: string; value: string }): string {
  return binding.split === undefined
    ? `${binding.name}[${store.index}] = ${store.value};`
    : `${binding.name}_put(${store.index}, ${store.value});`;
}

/**
 * Binding declarations of an epilogue's extra inputs `e0, e1, ...`.
 *
 * @example
 * ```ts
 * import { epilogueBindings } from "./_wgsl.ts";
 * import assert from "node:assert/strict";
 * assert(epilogueBindings({ code: "", extraInputs: 2 }).length === 2);
 * ```
 */
export function epilogueBindings(epilogue: Epilogue | undefined): BindingDecl[] {
  const n = epilogue?.extraInputs ?? 0;
  if (!Number.isInteger(n) || n < 0) {
    throw new RangeError(`Invalid epilogue.extraInputs ${n}: expected a non-negative integer`);
  }
  return Array.from({ length: n }, (_, i) => ({ name: `e${i}`, type: "f32", access: "read" }));
}

/**
 * The WGSL function `epilogue(acc, idx) -> f32` wrapping the snippet (identity when absent).
 *
 * @example
 * ```ts
 * import { epilogueFunction } from "./_wgsl.ts";
 * import assert from "node:assert/strict";
 * assert(epilogueFunction({ code: "acc = 2.0 * acc;", extraInputs: 0 }).includes("2.0 * acc"));
 * ```
 */
export function epilogueFunction(epilogue: Epilogue | undefined): string {
  const body = epilogue?.code ?? "";
  return `fn epilogue(acc_in: f32, idx: u32) -> f32 {
  var acc = acc_in;
  ${body}
  return acc;
}`;
}

/**
 * Checks that each named field is a positive (or, with `min: 0`, non-negative) safe integer.
 *
 * @example
 * ```ts
 * import { checkInts } from "./_wgsl.ts";
 * checkInts("matmulKernel", { m: 4, n: 2 });
 * ```
 */
export function checkInts(
  who: string,
  fields: Record<string, number>,
  options: { min?: number } = {},
): void {
  const min = options.min ?? 1;
  for (const [key, value] of Object.entries(fields)) {
    if (!Number.isSafeInteger(value) || value < min) {
      throw new RangeError(
        `Invalid ${who} ${key} ${value}: expected an integer ≥ ${min}`,
      );
    }
  }
}

/**
 * Rounds a byte size up to a multiple of 16.
 *
 * @example
 * ```ts
 * import { align16 } from "./_wgsl.ts";
 * import assert from "node:assert/strict";
 * assert(align16(20) === 32);
 * ```
 */
export function align16(bytes: number): number {
  return Math.ceil(bytes / 16) * 16;
}
