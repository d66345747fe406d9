/**
 * Private core of the tiled GEMM kernels (matmul and implicit-GEMM conv2d).
 *
 * C[bz][row][col] = Σ_k A(bz, row, k) · B(bz, k, col), where the operands are described by
 * index functions, so transposes, broadcasts and the implicit im2col of a convolution are all
 * folded into the loads. Each workgroup computes a `bm x bn` tile of C; each thread keeps a
 * `tm x tn` register block in named `vec4<f32>` variables (unrolled, no indexed arrays).
 *
 * Two stagings:
 * - `"workgroup"` (discrete GPUs): `bk`-deep slices of A and B are staged in workgroup memory
 *   (k-major, as `vec4<f32>`), with the next slice's global loads issued into registers before
 *   the current slice is computed. A thread's rows are `ty*4 + q*(4*bm/tm) + {0..3}` and its
 *   columns `tx*4 + q*(4*bn/tn) + {0..3}`, so reads from workgroup memory are 16-byte aligned and
 *   conflict-free across a row of threads.
 * - `"registers"` (llvmpipe): no workgroup memory; each thread reads its `tm` rows of A and `tn`
 *   columns of B straight from the storage buffers, 4 steps of k at a time. Mesa 22's llvmpipe
 *   turns every non-constant load, from storage or workgroup memory alike, into a loop over the
 *   8 SIMD lanes, so staging only adds loads, stores and barriers (coroutine switches); measured
 *   on a 1024³ product: 4.5 GFLOP/s staged (64x64 tile, 8x8 per thread) vs 10-11 GFLOP/s
 *   unstaged with 16x16 per thread.
 *
 * With `splits > 1` the K range is cut into equal chunks (multiples of `bk`); step 1 writes
 * the partial sums to a scratch buffer `partial` laid out as `[split][output element]`, and
 * step 2 sums them in a fixed order, applies the epilogue and writes `out`.
 *
 * @module
 */
import type { BindingSplit, Epilogue, KernelPlan, KernelSource } from "./types.ts";
import {
  align16,
  declareBindings,
  epilogueBindings,
  epilogueFunction,
  foldWorkgroups,
  loadAt,
  storeAt,
} from "./_wgsl.ts";

/** Tile configuration of a GEMM kernel. */
export interface GemmTile {
  /** Rows of C per workgroup. */
  bm: number;
  /** Columns of C per workgroup. */
  bn: number;
  /** K-step staged in workgroup memory per iteration. */
  bk: number;
  /** Rows per thread (4 or 8). */
  tm: number;
  /** Columns per thread (4 or 8). */
  tn: number;
  /**
   * `"workgroup"` (default): stage `bk`-deep slices of A and B in workgroup memory (GPUs).
   * `"registers"`: each thread reads its own rows of A and columns of B straight from the
   * storage buffers, `bk` = 4 steps of k at a time, and relies on a big register block
   * (`tm`, `tn` up to 16) for reuse. Faster on llvmpipe, where every load from either memory
   * is a per-lane scalar loop and barriers are coroutine switches.
   */
  staging?: "workgroup" | "registers";
}

/** How to read one operand; `t` is the tile-dimension index (row of A, column of B). */
export interface GemmOperand {
  /** WGSL name of the storage binding. */
  binding: string;
  /**
   * Vector width of the global loads: `"tile"`: vec4 of 4 consecutive tile indices at one k;
   * `"k"`: vec4 of 4 consecutive k at one tile index; `"none"`: scalar loads.
   */
  vec: "tile" | "k" | "none";
  /** For scalar loads: map consecutive threads along the tile index or along k. */
  scalarOrder?: "tile" | "k";
  /** WGSL statements computed once per load slot before the K loop (names end in `s`). */
  hoist?: (t: string, s: string) => string;
  /** Extra validity condition of element (t, k), e.g. convolution padding; "" when none. */
  cond?: (t: string, k: string, s: string) => string;
  /** Flat element index of (t, k) in the binding (`bz` is in scope). */
  index: (t: string, k: string, s: string) => string;
  /** Set by {@linkcode gemmPlan} from {@linkcode GemmSpec.split}: the binding's parts. */
  split?: BindingSplit;
}

/** Everything the GEMM core needs. */
export interface GemmSpec {
  /** Independent products (dispatched along z; `bz` in WGSL). */
  batch: number;
  /** Rows of C. */
  m: number;
  /** Columns of C. */
  n: number;
  /** Reduction length. */
  k: number;
  /** Left operand, m x k. */
  a: GemmOperand;
  /** Right operand, k x n. */
  b: GemmOperand;
  /** Flat output index of C[bz][row][col] (`bz` is in scope). */
  outIndex: (row: string, col: string) => string;
  /** Number of elements of the output binding (every one is written exactly once). */
  outSize: number;
  /** Tile configuration. */
  tile: GemmTile;
  /** Split-K factor (1: no split). */
  splits: number;
  /** Fused epilogue. */
  epilogue?: Epilogue;
  /** A comment line for the generated source. */
  label: string;
  /** Declare `b`'s binding before `a`'s (binding order only; the math is unchanged). */
  bFirst?: boolean;
  /** Name of the output binding (default `"out"`), e.g. a scratch buffer of a larger plan. */
  outBinding?: string;
  /**
   * With split-K, the first split index this plan writes in `partial` and the total number of
   * splits of `partial` (default `0` and the plan's own count); with `splitOffset` given, the
   * plan leaves out its summing pass (the caller adds one over all splits).
   */
  splitOffset?: number;
  /** Total splits of `partial` when `splitOffset` is given. */
  splitTotal?: number;
  /**
   * Bindings (`a`'s and `b`'s binding names, `out`) bound as several parts, for tensors over
   * the storage binding limit (see {@linkcode BindingSplit}).
   */
  split?: Readonly<Record<string, BindingSplit>>;
}

/**
 * Threads of a workgroup for a tile.
 *
 * @example
 * ```ts
 * import { gemmThreads } from "./_gemm.ts";
 * import assert from "node:assert/strict";
 * assert(gemmThreads({ bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 }) === 256);
 * ```
 */
export function gemmThreads(tile: GemmTile): number {
  return (tile.bm / tile.tm) * (tile.bn / tile.tn);
}

/**
 * Throws a `RangeError` unless the tile is one the generator supports.
 *
 * @example
 * ```ts
 * import { checkTile } from "./_gemm.ts";
 * checkTile({ bm: 64, bn: 64, bk: 8, tm: 4, tn: 4 });
 * ```
 */
export function checkTile(tile: GemmTile): void {
  const { bm, bn, bk, tm, tn } = tile;
  if (tile.staging === "registers") {
    const ok = [1, 2, 4, 8, 16, 32].includes(tm) && [4, 8, 16, 32].includes(tn) && bk === 4 &&
      bm % tm === 0 && bn % tn === 0 && bm > 0 && bn > 0 && gemmThreads(tile) <= 256;
    if (!ok) {
      throw new RangeError(
        `Invalid tile ${
          JSON.stringify(tile)
        }: registers staging expects tm in {1, 2, 4, 8, 16, 32}, ` +
          `tn in {4, 8, 16, 32}, bk = 4, bm % tm == bn % tn == 0 and at most 256 threads`,
      );
    }
    return;
  }
  const ok = [4, 8].includes(tm) && [4, 8].includes(tn) && bk % 4 === 0 && bk > 0 &&
    bm % tm === 0 && bn % tn === 0 && bm > 0 && bn > 0;
  const threads = ok ? gemmThreads(tile) : 0;
  if (!ok || threads > 256 || (bm + bn) * bk * 4 > 16384) {
    throw new RangeError(
      `Invalid tile ${JSON.stringify(tile)}: expected tm, tn in {4, 8}, bk a multiple of 4, ` +
        `bm % tm == bn % tn == 0, at most 256 threads and 16 KiB of workgroup memory`,
    );
  }
}

/**
 * Effective split count and chunk length (a multiple of bk) for a K range.
 *
 * @example
 * ```ts
 * import { splitChunks } from "./_gemm.ts";
 * import assert from "node:assert/strict";
 * assert(splitChunks(100, 8, 4).join() === "4,32");
 * ```
 */
export function splitChunks(k: number, bk: number, splits: number): [number, number] {
  const steps = Math.ceil(k / bk);
  const chunk = Math.ceil(steps / Math.max(1, splits)) * bk;
  return [Math.ceil(k / chunk), chunk];
}

interface Slot {
  /** Statements before the K loop (index math, the register `v_*` holding the loaded value). */
  hoist: string;
  /** Statements loading the slot for the K-step starting at the given k into `v_*`. */
  load: (kBase: string) => string;
  /** Statements writing `v_*` to workgroup memory. */
  store: string;
}

function u(x: number): string {
  return `${x}u`;
}

/** Load slots of one operand: hoisted index math, global load, and workgroup store. */
function operandSlots(
  op: GemmOperand,
  side: "a" | "b",
  dims: { tileDim: number; tileBase: string; k: number; bt: number; bk: number },
  threads: number,
): Slot[] {
  const { tileDim, tileBase, k, bt, bk } = dims;
  const vw = op.vec === "none" ? 1 : 4;
  const items = (bt * bk) / vw;
  const perThread = Math.ceil(items / threads);
  const sh = side === "a" ? "As" : "Bs";
  const slots: Slot[] = [];
  for (let i = 0; i < perThread; i++) {
    const s = `${side}${i}`;
    const uExpr = `(lid + ${u(i * threads)})`;
    let r: string, kk: string;
    if (op.vec === "tile") {
      kk = `${uExpr} / ${u(bt / 4)}`;
      r = `(${uExpr} % ${u(bt / 4)}) * 4u`;
    } else if (op.vec === "k") {
      r = `${uExpr} / ${u(bk / 4)}`;
      kk = `(${uExpr} % ${u(bk / 4)}) * 4u`;
    } else if ((op.scalarOrder ?? "tile") === "tile") {
      kk = `${uExpr} / ${u(bt)}`;
      r = `${uExpr} % ${u(bt)}`;
    } else {
      r = `${uExpr} / ${u(bk)}`;
      kk = `${uExpr} % ${u(bk)}`;
    }
    const partial = (i + 1) * threads > items;
    const t = `t_${s}`;
    const kg = `k_${s}`;
    const zero = vw === 4 ? "vec4<f32>(0.0)" : "0.0";
    const hoist = [
      `let r_${s} = ${r};`,
      `let kk_${s} = ${kk};`,
      `let ${t} = ${tileBase} + r_${s};`,
      op.hoist ? op.hoist(t, s) : "",
      partial ? `let ok_${s} = ${uExpr} < ${u(items)};` : "",
      `var v_${s} = ${zero};`,
    ].filter((x) => x).join("\n  ");
    const conds: string[] = [];
    if (partial) conds.push(`ok_${s}`);
    if (tileDim % bt !== 0) conds.push(`${t} < ${u(tileDim)}`);
    if (k % bk !== 0) conds.push(`${kg} < ${u(k)}`);
    const extra = op.cond ? op.cond(t, kg, s) : "";
    if (extra) conds.push(`(${extra})`);
    const idx = op.index(t, kg, s);
    const ref = { name: op.binding, split: op.split };
    const read = vw === 4 ? loadAt(ref, `(${idx}) / 4u`) : loadAt(ref, idx);
    const load = (kBase: string) =>
      `{\n      let ${kg} = ${kBase} + kk_${s};\n      ` +
      (conds.length
        // Non-short-circuit `&` (see conv2d.ts's allOf: `&&` hangs SwiftShader's compiler).
        ? `if (${
          conds.map((c) => `(${c})`).join(" & ")
        }) { v_${s} = ${read}; } else { v_${s} = ${zero}; }`
        : `v_${s} = ${read};`) +
      "\n    }";
    let store: string;
    if (op.vec === "tile") {
      store = `${sh}[(kk_${s} * ${u(bt)} + r_${s}) / 4u] = v_${s};`;
    } else if (op.vec === "k") {
      store = [0, 1, 2, 3].map((c) =>
        `${sh}[((kk_${s} + ${u(c)}) * ${u(bt)} + r_${s}) / 4u][r_${s} % 4u] = v_${s}[${c}];`
      ).join("\n    ");
    } else {
      store = `${sh}[(kk_${s} * ${u(bt)} + r_${s}) / 4u][r_${s} % 4u] = v_${s};`;
    }
    if (partial) store = `if (ok_${s}) {\n    ${store}\n    }`;
    slots.push({ hoist, load, store });
  }
  return slots;
}

/** WGSL of the output stores of a register block (bounds-checked, epilogue or partial sums). */
function storeBlock(
  spec: GemmSpec,
  rows: string[],
  cols: string[],
  value: (i: number, j: number) => string,
  split: boolean,
): string {
  const { m, n, tile } = spec;
  const lines: string[] = [];
  for (let i = 0; i < rows.length; i++) {
    for (let j = 0; j < cols.length; j++) {
      const conds: string[] = [];
      if (m % tile.bm !== 0) conds.push(`${rows[i]} < ${u(m)}`);
      if (n % tile.bn !== 0) conds.push(`${cols[j]} < ${u(n)}`);
      const idx = spec.outIndex(rows[i], cols[j]);
      const sk = spec.splitOffset ? `(sk + ${u(spec.splitOffset)})` : "sk";
      const body = split
        ? `partial[${sk} * ${u(spec.outSize)} + ${idx}] = ${value(i, j)};`
        : `let idx = ${idx}; ${
          storeAt({ name: spec.outBinding ?? "out", split: spec.split?.out }, {
            index: "idx",
            value: `epilogue(${value(i, j)}, idx)`,
          })
        }`;
      lines.push(conds.length ? `if (${conds.join(" && ")}) { ${body} }` : `{ ${body} }`);
    }
  }
  return lines.join("\n  ");
}

/** Kernel body (after the tile decode) for workgroup-memory staging. */
function workgroupBody(spec: GemmSpec, split: boolean): { decls: string; body: string } {
  const { m, n, k, a, b, tile } = spec;
  const { bm, bn, bk, tm, tn } = tile;
  const threads = gemmThreads(tile);
  const slots = [
    ...operandSlots(a, "a", { tileDim: m, tileBase: "row0", k, bt: bm, bk }, threads),
    ...operandSlots(b, "b", { tileDim: n, tileBase: "col0", k, bt: bn, bk }, threads),
  ];
  const accs: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < tn / 4; q++) accs.push(`var acc_${i}_${q} = vec4<f32>(0.0);`);
  }
  const compute: string[] = [];
  for (let kk = 0; kk < bk; kk++) {
    const lines: string[] = [];
    for (let q = 0; q < tm / 4; q++) {
      lines.push(`let a${q} = As[${u((kk * bm) / 4 + (q * bm) / tm)} + ty];`);
    }
    for (let q = 0; q < tn / 4; q++) {
      lines.push(`let b${q} = Bs[${u((kk * bn) / 4 + (q * bn) / tn)} + tx];`);
    }
    for (let i = 0; i < tm; i++) {
      const av = `a${Math.floor(i / 4)}[${i % 4}]`;
      for (let q = 0; q < tn / 4; q++) {
        lines.push(`acc_${i}_${q} = fma(vec4<f32>(${av}), b${q}, acc_${i}_${q});`);
      }
    }
    compute.push(`{\n      ${lines.join("\n      ")}\n    }`);
  }
  const rows: string[] = [];
  const cols: string[] = [];
  const rowVars: string[] = [];
  for (let i = 0; i < tm; i++) {
    const off = Math.floor(i / 4) * ((4 * bm) / tm) + (i % 4);
    rowVars.push(`let row_${i} = row0 + ty * 4u + ${u(off)};`);
    rows.push(`row_${i}`);
  }
  for (let j = 0; j < tn; j++) {
    const off = Math.floor(j / 4) * ((4 * bn) / tn) + (j % 4);
    rowVars.push(`let col_${j} = col0 + tx * 4u + ${u(off)};`);
    cols.push(`col_${j}`);
  }
  const store = storeBlock(
    spec,
    rows,
    cols,
    (i, j) => `acc_${i}_${Math.floor(j / 4)}[${j % 4}]`,
    split,
  );
  const decls = `var<workgroup> As: array<vec4<f32>, ${(bk * bm) / 4}>;
var<workgroup> Bs: array<vec4<f32>, ${(bk * bn) / 4}>;`;
  const body = `${slots.map((s) => s.hoist).join("\n  ")}
  ${accs.join("\n  ")}
  // Global loads of the next K-step are issued before computing the current one (prefetch
  // into registers), so their latency overlaps the FMAs.
  ${slots.map((s) => s.load("kBegin")).join("\n  ")}
  for (var k0 = kBegin; k0 < kEnd; k0 = k0 + ${u(bk)}) {
    workgroupBarrier();
    ${slots.map((s) => s.store).join("\n    ")}
    workgroupBarrier();
    if (k0 + ${u(bk)} < kEnd) {
      ${slots.map((s) => s.load(`k0 + ${u(bk)}`)).join("\n      ")}
    }
    ${compute.join("\n    ")}
  }
  ${rowVars.join("\n  ")}
  ${store}`;
  return { decls, body };
}

/** Loads of one operand in registers staging, as WGSL lines plus an accessor of the values. */
interface RegisterLoads {
  /** Statements before the K loop (clamped tile indices, hoisted index math). */
  hoist: string[];
  /** Statements loading the values for k0..k0+steps-1 (inside the loop). */
  load: (steps: number) => string[];
  /** Scalar value for tile element `i` at k step `kk` (A), or vec4 of 4 columns (B). */
  value: (i: number, kk: number) => string;
}

function registerLoads(
  op: GemmOperand,
  side: "a" | "b",
  dims: { tileDim: number; base: string; count: number; k: number },
): RegisterLoads {
  const { tileDim, base, count, k } = dims;
  const hoist: string[] = [];
  // Tile indices are clamped into range, so loads never need a tile bound check; stores skip
  // the clamped rows/columns.
  const quads = op.vec === "tile";
  const nIdx = quads ? count / 4 : count;
  for (let q = 0; q < nIdx; q++) {
    const s = `${side}${q}`;
    const t = `t_${s}`;
    const off = quads ? 4 * q : q;
    const last = quads ? tileDim - 4 : tileDim - 1;
    hoist.push(`let ${t} = min(${base} + ${u(off)}, ${u(last)});`);
    if (op.hoist) hoist.push(op.hoist(t, s));
  }
  const scalar = (q: number, kExpr: string) => {
    const s = `${side}${q}`;
    const idx = op.index(`t_${s}`, kExpr, s);
    const cond = op.cond ? op.cond(`t_${s}`, kExpr, s) : "";
    const read = loadAt({ name: op.binding, split: op.split }, idx);
    return cond ? `select(0.0, ${read}, ${cond})` : read;
  };
  const vec4At = (q: number, kExpr: string) => {
    const s = `${side}${q}`;
    return loadAt(
      { name: op.binding, split: op.split },
      `(${op.index(`t_${s}`, kExpr, s)}) / 4u`,
    );
  };
  const kAt = (kk: number) => (kk === 0 ? "k0" : `(k0 + ${u(kk)})`);
  if (op.vec === "k") {
    if (k % 4 !== 0) {
      throw new RangeError(`Cannot use vec4 loads along k with k = ${k}: expected k % 4 == 0`);
    }
    return {
      hoist,
      load: () =>
        Array.from({ length: count }, (_, q) => `let ${side}k_${q} = ${vec4At(q, "k0")};`),
      value: side === "a"
        ? (i, kk) => `${side}k_${i}[${kk}]`
        : (q, kk) =>
          `vec4<f32>(${[0, 1, 2, 3].map((e) => `${side}k_${4 * q + e}[${kk}]`).join(", ")})`,
    };
  }
  if (op.vec === "tile") {
    return {
      hoist,
      load: (steps) => {
        const lines: string[] = [];
        for (let kk = 0; kk < steps; kk++) {
          for (let q = 0; q < count / 4; q++) {
            lines.push(`let ${side}t_${kk}_${q} = ${vec4At(q, kAt(kk))};`);
          }
        }
        return lines;
      },
      value: side === "a"
        ? (i, kk) => `${side}t_${kk}_${Math.floor(i / 4)}[${i % 4}]`
        : (q, kk) => `${side}t_${kk}_${q}`,
    };
  }
  return {
    hoist,
    load: (steps) => {
      const lines: string[] = [];
      for (let kk = 0; kk < steps; kk++) {
        for (let q = 0; q < count; q++) {
          lines.push(`let ${side}s_${kk}_${q} = ${scalar(q, kAt(kk))};`);
        }
      }
      return lines;
    },
    value: side === "a"
      ? (i, kk) => `${side}s_${kk}_${i}`
      : (q, kk) =>
        `vec4<f32>(${[0, 1, 2, 3].map((e) => `${side}s_${kk}_${4 * q + e}`).join(", ")})`,
  };
}

/** Kernel body for registers staging (no workgroup memory, no barriers). */
function registersBody(spec: GemmSpec, split: boolean): { decls: string; body: string } {
  const { m, n, k, a, b, tile } = spec;
  const { tm, tn } = tile;
  const la = registerLoads(a, "a", { tileDim: m, base: "rowT", count: tm, k });
  const lb = registerLoads(b, "b", { tileDim: n, base: "colT", count: tn, k });
  const accs: string[] = [];
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < tn / 4; q++) accs.push(`var acc_${i}_${q} = vec4<f32>(0.0);`);
  }
  const fmas = (steps: number) => {
    const lines: string[] = [];
    for (let kk = 0; kk < steps; kk++) {
      for (let q = 0; q < tn / 4; q++) lines.push(`let bv_${kk}_${q} = ${lb.value(q, kk)};`);
      for (let i = 0; i < tm; i++) {
        for (let q = 0; q < tn / 4; q++) {
          lines.push(
            `acc_${i}_${q} = fma(vec4<f32>(${la.value(i, kk)}), bv_${kk}_${q}, acc_${i}_${q});`,
          );
        }
      }
    }
    return lines;
  };
  const rows = Array.from({ length: tm }, (_, i) => `(rowT + ${u(i)})`);
  const cols = Array.from({ length: tn }, (_, j) => `(colT + ${u(j)})`);
  const store = storeBlock(
    spec,
    rows,
    cols,
    (i, j) => `acc_${i}_${Math.floor(j / 4)}[${j % 4}]`,
    split,
  );
  const tail = k % 4 !== 0
    ? `for (var k0 = kMain; k0 < kEnd; k0 = k0 + 1u) {
    ${[...la.load(1), ...lb.load(1), ...fmas(1)].join("\n    ")}
  }`
    : "";
  const body = `let rowT = row0 + ty * ${u(tm)};
  let colT = col0 + tx * ${u(tn)};
  ${[...la.hoist, ...lb.hoist].join("\n  ")}
  ${accs.join("\n  ")}
  let kMain = kBegin + ((kEnd - kBegin) / 4u) * 4u;
  for (var k0 = kBegin; k0 < kMain; k0 = k0 + 4u) {
    ${[...la.load(4), ...lb.load(4), ...fmas(4)].join("\n    ")}
  }
  ${tail}
  ${store}`;
  return { decls: "", body };
}

/**
 * Generates the GEMM plan: one tiled kernel, plus a reduction kernel when `splits > 1`.
 *
 * @example
 * ```ts
 * import { gemmPlan } from "./_gemm.ts";
 * import assert from "node:assert/strict";
 * const plan = gemmPlan({
 *   batch: 1, m: 8, n: 8, k: 8, label: "8x8x8", splits: 1, outSize: 64,
 *   tile: { bm: 16, bn: 16, bk: 8, tm: 4, tn: 4 },
 *   a: { binding: "a", vec: "k", index: (t, k) => `${t} * 8u + ${k}` },
 *   b: { binding: "b", vec: "tile", index: (t, k) => `${k} * 8u + ${t}` },
 *   outIndex: (r, c) => `${r} * 8u + ${c}`,
 * });
 * assert(plan.steps.length === 1);
 * ```
 */
export function gemmPlan(spec: GemmSpec): KernelPlan {
  if (spec.split !== undefined) {
    spec = {
      ...spec,
      a: { ...spec.a, split: spec.split[spec.a.binding] },
      b: { ...spec.b, split: spec.split[spec.b.binding] },
    };
  }
  const { batch, m, n, k, a, b, tile, epilogue } = spec;
  checkTile(tile);
  const registers = tile.staging === "registers";
  for (const op of [a, b]) {
    if (op.vec !== "none" && op.cond) {
      throw new TypeError(
        `Operand "${op.binding}" has a load condition: expected scalar loads with it`,
      );
    }
  }
  if (
    registers &&
    ((a.vec === "tile" && tile.tm % 4 !== 0) || (a.vec === "tile" && m < 4) ||
      (b.vec === "tile" && n < 4))
  ) {
    throw new RangeError(
      `Invalid tile ${JSON.stringify(tile)} for vec4 loads along the tile: expected tm % 4 == 0`,
    );
  }
  const { bm, bn, bk } = tile;
  const threads = gemmThreads(tile);
  const [splits, chunk] = splitChunks(k, bk, spec.splits);
  const tilesM = Math.ceil(m / bm);
  const tilesN = Math.ceil(n / bn);
  const grid = foldWorkgroups(tilesM * tilesN * batch * splits);
  const ep = epilogueBindings(epilogue);
  const external = spec.splitOffset !== undefined;
  const split = splits > 1 || external;
  const totalSplits = external ? (spec.splitTotal ?? 0) : splits;
  if (external && (spec.splitOffset! < 0 || spec.splitOffset! + splits > totalSplits)) {
    throw new RangeError(
      `Invalid splitOffset ${spec.splitOffset} with ${splits} splits: expected the splits ` +
        `within splitTotal ${spec.splitTotal}`,
    );
  }
  if ((split ? totalSplits : 1) * spec.outSize >= 2 ** 32) {
    throw new RangeError(`Output of ${spec.outSize} elements is too large: expected < 2^32`);
  }
  const { decls: shared, body } = registers
    ? registersBody(spec, split)
    : workgroupBody(spec, split);
  const kRange = split
    ? `let kBegin = sk * ${u(chunk)};\n  let kEnd = min(kBegin + ${u(chunk)}, ${u(k)});`
    : `let kBegin = 0u;\n  let kEnd = ${u(k)};`;
  const inputs = (spec.bFirst ? [b, a] : [a, b]).map((op) => ({
    name: op.binding,
    type: op.vec === "none" ? "f32" as const : "vec4<f32>" as const,
    access: "read" as const,
    split: op.split,
  }));
  const decls = declareBindings([
    ...inputs,
    ...(split ? [] : ep),
    split ? { name: "partial", type: "f32", access: "read_write" } : {
      name: spec.outBinding ?? "out",
      type: "f32",
      access: "read_write",
      split: spec.split?.out,
    },
  ]);
  const code = `// ${spec.label}
// tile ${bm}x${bn}x${bk}, ${tile.tm}x${tile.tn} per thread, ${threads} threads, ` +
    `${registers ? "registers" : "workgroup"} staging, split-K ${splits}
${decls}
${shared}
${split ? "" : epilogueFunction(epilogue)}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${grid.prelude}
  let tn_ = lin % ${u(tilesN)};
  let tm_ = (lin / ${u(tilesN)}) % ${u(tilesM)};
  let zz = lin / ${u(tilesN * tilesM)};
  let bz = zz % ${u(batch)};
  let sk = zz / ${u(batch)};
  let tx = lid % ${u(bn / tile.tn)};
  let ty = lid / ${u(bn / tile.tn)};
  let row0 = tm_ * ${u(bm)};
  let col0 = tn_ * ${u(bn)};
  ${kRange}
  ${body}
}
`;
  const main: KernelSource = {
    code,
    workgroups: grid.workgroups,
    bindings: [
      ...inputs.map((i) => i.name),
      ...(split ? [] : ep.map((e) => e.name)),
      split ? "partial" : spec.outBinding ?? "out",
    ],
    writes: [split ? "partial" : spec.outBinding ?? "out"],
  };
  if (!split) return { algorithm: "gemm", steps: [main], scratch: [] };
  if (external) {
    return {
      algorithm: "gemm",
      steps: [main],
      scratch: [{ name: "partial", size: align16(totalSplits * spec.outSize * 4) }],
    };
  }
  return {
    algorithm: "gemm",
    steps: [
      main,
      splitReduceKernel(spec.outSize, splits, epilogue, spec.label, { out: spec.split?.out }),
    ],
    scratch: [{ name: "partial", size: align16(splits * spec.outSize * 4) }],
  };
}

/**
 * Second pass of split-K: `out[i] = epilogue(Σ_s partial[s * size + i], i)`, summed in split order.
 *
 * @example
 * ```ts
 * import { splitReduceKernel } from "./_gemm.ts";
 * import assert from "node:assert/strict";
 * assert(splitReduceKernel(64, 4, undefined, "x").bindings.join() === "partial,out");
 * ```
 */
export function splitReduceKernel(
  size: number,
  splits: number,
  epilogue: Epilogue | undefined,
  label: string,
  options: { out?: BindingSplit } = {},
): KernelSource {
  const vec = size % 4 === 0;
  const items = vec ? size / 4 : size;
  const threads = 256;
  const grid = foldWorkgroups(Math.ceil(items / threads));
  const ep = epilogueBindings(epilogue);
  const decls = declareBindings([
    { name: "partial", type: vec ? "vec4<f32>" : "f32", access: "read" },
    ...ep,
    { name: "out", type: "f32", access: "read_write", split: options.out },
  ]);
  const out = { name: "out", split: options.out };
  const writes = vec
    ? [0, 1, 2, 3].map((c) =>
      storeAt(out, { index: `v * 4u + ${c}u`, value: `epilogue(s[${c}], v * 4u + ${c}u)` })
    ).join("\n  ")
    : storeAt(out, { index: "v", value: "epilogue(s, v)" });
  const code = `// split-K reduction for ${label}: ${splits} partial sums of ${size} elements
${decls}
${epilogueFunction(epilogue)}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${grid.prelude}
  let v = lin * ${threads}u + lid;
  if (v >= ${items}u) { return; }
  var s = partial[v];
  for (var sp = 1u; sp < ${splits}u; sp = sp + 1u) {
    s = s + partial[sp * ${items}u + v];
  }
  ${writes}
}
`;
  return {
    code,
    workgroups: grid.workgroups,
    bindings: ["partial", ...ep.map((e) => e.name), "out"],
    writes: ["out"],
  };
}

/** Tuning profile: register tiles for CPU-emulated adapters, workgroup tiles for discrete GPUs. */
export type KernelProfile = "llvmpipe" | "discrete";

/** A tile and split-K factor. */
export interface GemmConfig {
  /** Tile configuration. */
  tile: GemmTile;
  /** Number of K chunks (1: single pass). */
  splitK: number;
}

/** Workgroups a profile wants in flight before split-K pays (cores or SMs times a few). */
const TARGET_GROUPS: Record<KernelProfile, number> = { llvmpipe: 8, discrete: 264 };

const DISCRETE_TILES: GemmTile[] = [
  { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 },
  { bm: 64, bn: 64, bk: 8, tm: 4, tn: 4 },
  { bm: 32, bn: 32, bk: 8, tm: 4, tn: 4 },
];

function pow2Floor(x: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, x)));
}

/**
 * Chooses the tile and split-K factor for `batch` GEMMs of `m x n` with reduction length `k`.
 *
 * - `"llvmpipe"`: registers staging, 16x16 outputs per thread for products of at least 2^26
 *   multiply-adds, 8x8 from 2^21, else 4x4 (smaller for thin shapes); 8 threads per workgroup
 *   (one SIMD row of llvmpipe's 256-bit lanes). With `tallRows` (implicit convolutions), 32x16
 *   from 2^28 multiply-adds when `m >= 32`.
 * - `"discrete"`: workgroup staging, 128x128 tiles with 8x8 per thread and K-step 8 when the
 *   shape yields enough workgroups, else 64x64 or 32x32 with 4x4 per thread.
 *
 * Split-K is used when the output has fewer workgroups than the profile wants in flight and
 * `k` is long (chunks of at least 256).
 *
 * @example
 * ```ts
 * import { chooseGemmConfig } from "./_gemm.ts";
 * import assert from "node:assert/strict";
 * assert(chooseGemmConfig({ batch: 1, m: 16, n: 16, k: 65536 }).splitK > 1);
 * ```
 */
export function chooseGemmConfig(
  shape: { batch: number; m: number; n: number; k: number },
  options: {
    profile?: KernelProfile;
    tmMultipleOf4?: boolean;
    tallRows?: boolean;
    /** Register block cap (4, 8, 16, or 32 with `tallRows`), replacing the size rule (tuning). */
    cap?: number;
  } = {},
): GemmConfig {
  const profile = options.profile ?? "llvmpipe";
  if (profile !== "llvmpipe" && profile !== "discrete") {
    throw new TypeError(`Unknown profile "${profile}": expected "llvmpipe" or "discrete"`);
  }
  const { batch, m, n, k } = shape;
  let tile: GemmTile;
  if (profile === "llvmpipe") {
    // Bigger register blocks run faster but compile slower (llvmpipe: 16x16 ~3 s, 8x8
    // ~0.5 s, 4x4 ~0.15 s per pipeline), so small products get small blocks.
    const macs = batch * m * n * k;
    const cap = options.cap ?? (macs >= 2 ** 26 ? 16 : macs >= 2 ** 21 ? 8 : 4);
    if (![4, 8, 16, 32].includes(cap)) {
      throw new RangeError(`Invalid register block cap ${cap}: expected 4, 8, 16 or 32`);
    }
    const tn = Math.min(cap, n >= 16 ? 16 : n > 4 ? 8 : 4);
    let tm = Math.min(cap, m >= 16 ? 16 : pow2Floor(m));
    // 32 rows per thread from 2^28 multiply-adds (compiles in ~1 s): measured 1.4-1.5x faster
    // than 16 on the C1 convolution (scalar gathers of B), 1.4x slower on a 1024³ matmul.
    const tall = options.cap === undefined ? macs >= 2 ** 28 : cap === 32;
    if (options.tallRows && tall && m >= 32) tm = 32;
    if (options.tmMultipleOf4) tm = Math.max(4, tm);
    // 8 threads, 4 x 2 when the shape allows (a squarer footprint reuses cache lines better).
    const colBlocks = pow2Floor(Math.ceil(n / tn));
    const ty = Math.min(8 / Math.min(4, colBlocks), pow2Floor(Math.ceil(m / tm)));
    const tx = Math.min(8 / ty, colBlocks);
    tile = { bm: tm * ty, bn: tn * tx, bk: 4, tm, tn, staging: "registers" };
  } else {
    tile = DISCRETE_TILES[2];
    for (const t of DISCRETE_TILES.slice(0, 2)) {
      const groups = batch * Math.ceil(m / t.bm) * Math.ceil(n / t.bn);
      const waste = (Math.ceil(m / t.bm) * t.bm * Math.ceil(n / t.bn) * t.bn) / (m * n);
      if (groups >= TARGET_GROUPS.discrete / 2 && waste < 1.3) {
        tile = t;
        break;
      }
    }
  }
  const target = TARGET_GROUPS[profile];
  const groups = batch * Math.ceil(m / tile.bm) * Math.ceil(n / tile.bn);
  const minChunk = 256;
  let splitK = 1;
  if (groups < target && k >= 2 * minChunk) {
    splitK = Math.min(Math.ceil(target / groups), Math.floor(k / minChunk), 256);
  }
  return { tile, splitK };
}
