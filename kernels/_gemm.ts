/**
 * Private core of the tiled GEMM kernels (matmul and implicit-GEMM conv2d).
 *
 * C[bz][row][col] = Σ_k A(bz, row, k) · B(bz, k, col), where the operands are described by
 * index functions, so transposes, broadcasts and the implicit im2col of a convolution are all
 * folded into the loads. Each workgroup computes a `bm x bn` tile of C; each thread keeps a
 * `tm x tn` register block in named `vec4<f32>` variables (unrolled, no indexed arrays). The
 * kernels are built as kernel IR (`src/kernel/ir.ts`) and rendered by its one WGSL renderer.
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
 * step 2 sums them in a fixed order, applies the epilogue and writes `out`. A thread tile of more
 * than 64 accumulators takes the same two steps (one split) when it has an epilogue, which
 * inlined would be compiled once per accumulator.
 *
 * @module
 */
import {
  bin,
  call,
  type Expr,
  lane,
  lit,
  load,
  name,
  select,
  type Shared,
  splat,
  type Stmt,
} from "../src/kernel/ir.ts";
import type { BindingSplit, Epilogue, KernelPlan, KernelSource } from "./types.ts";
import {
  add,
  align16,
  allOf,
  assign,
  type BindingDecl,
  div,
  epilogueInputs,
  epilogueStore,
  foldGrid,
  irStep,
  letS,
  loadF,
  loadV,
  loop,
  lt,
  mod,
  mul,
  store,
  sub,
  U,
  v,
  varS,
  when,
} from "./_ir.ts";

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
  /** Name of the storage binding. */
  binding: string;
  /**
   * Vector width of the global loads: `"tile"`: vec4 of 4 consecutive tile indices at one k;
   * `"k"`: vec4 of 4 consecutive k at one tile index; `"none"`: scalar loads.
   */
  vec: "tile" | "k" | "none";
  /** For scalar loads: map consecutive threads along the tile index or along k. */
  scalarOrder?: "tile" | "k";
  /**
   * Statements computed once per load slot before the K loop, from the slot's tile index `t`;
   * the names they define end in `_${s}` (the slot's suffix), so `cond` and `index` can use them.
   */
  hoist?: (t: Expr, s: string) => Stmt[];
  /** Extra validity condition of element (t, k), e.g. convolution padding; undefined when none. */
  cond?: (t: Expr, k: Expr, s: string) => Expr | undefined;
  /** Flat element index of (t, k) in the binding (the name `bz`, the batch entry, is defined). */
  index: (t: Expr, k: Expr, s: string) => Expr;
  /** Set by {@linkcode gemmPlan} from {@linkcode GemmSpec.split}: the binding's parts. */
  split?: BindingSplit;
}

/** Everything the GEMM core needs. */
export interface GemmSpec {
  /** Independent products (dispatched along z; the name `bz` in the kernel). */
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
  /** Flat output index of C[bz][row][col] (`bz` is defined). */
  outIndex: (row: Expr, col: Expr) => Expr;
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
 * Throws a `RangeError` unless the tile is one the builder supports.
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

const ZERO = lit(0, "f32");
const ZERO4 = splat(ZERO);
const f = (n: string): Expr => name(n, "f32");
const f4 = (n: string): Expr => name(n, "vec4<f32>");

/** A load of element `index` of an operand (a `vec4` of four consecutive ones with `quad`). */
function read(op: GemmOperand, index: Expr, quad: boolean): Expr {
  return quad ? loadV(op.binding, div(index, U(4))) : loadF(op.binding, index);
}

/** The register block's accumulators `acc_i_q`, one `vec4` per row and quad of columns. */
function accumulators(tm: number, tn: number): Stmt[] {
  const out: Stmt[] = [];
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < tn / 4; q++) out.push(varS(`acc_${i}_${q}`, ZERO4));
  }
  return out;
}

/** `acc_i_q = fma(vec4(a), b, acc_i_q)`. */
function fmaInto(i: number, q: number, a: Expr, b: Expr): Stmt {
  const acc = `acc_${i}_${q}`;
  return assign(acc, call("fma", [splat(a), b, f4(acc)]));
}

/** Load slots of one operand (workgroup staging): hoisted index math, global load, workgroup store. */
interface Slot {
  /** Statements before the K loop (index math, the register `v_*` holding the loaded value). */
  hoist: Stmt[];
  /** Statements loading the slot for the K-step starting at `kBase` into `v_*`. */
  load: (kBase: Expr) => Stmt[];
  /** Statements writing `v_*` to workgroup memory. */
  store: Stmt[];
}

function operandSlots(
  op: GemmOperand,
  side: "a" | "b",
  dims: { tileDim: number; tileBase: Expr; k: number; bt: number; bk: number },
  threads: number,
): Slot[] {
  const { tileDim, tileBase, k, bt, bk } = dims;
  const quad = op.vec !== "none";
  const items = (bt * bk) / (quad ? 4 : 1);
  const perThread = Math.ceil(items / threads);
  const sh = side === "a" ? "As" : "Bs";
  const slots: Slot[] = [];
  for (let i = 0; i < perThread; i++) {
    const s = `${side}${i}`;
    const at = add(v("lid"), U(i * threads));
    let r: Expr, kk: Expr;
    if (op.vec === "tile") {
      kk = div(at, U(bt / 4));
      r = mul(mod(at, U(bt / 4)), U(4));
    } else if (op.vec === "k") {
      r = div(at, U(bk / 4));
      kk = mul(mod(at, U(bk / 4)), U(4));
    } else if ((op.scalarOrder ?? "tile") === "tile") {
      kk = div(at, U(bt));
      r = mod(at, U(bt));
    } else {
      r = div(at, U(bk));
      kk = mod(at, U(bk));
    }
    const partial = (i + 1) * threads > items;
    const t = v(`t_${s}`), kg = v(`k_${s}`), rs = v(`r_${s}`), kks = v(`kk_${s}`);
    const value = `v_${s}`;
    const zero = quad ? ZERO4 : ZERO;
    const hoist: Stmt[] = [
      letS(`r_${s}`, r),
      letS(`kk_${s}`, kk),
      letS(`t_${s}`, add(tileBase, rs)),
      ...(op.hoist ? op.hoist(t, s) : []),
      ...(partial ? [letS(`ok_${s}`, lt(at, U(items)))] : []),
      varS(value, zero),
    ];
    const conds: Expr[] = [];
    if (partial) conds.push(name(`ok_${s}`, "bool"));
    if (tileDim % bt !== 0) conds.push(lt(t, U(tileDim)));
    if (k % bk !== 0) conds.push(lt(kg, U(k)));
    const extra = op.cond?.(t, kg, s);
    if (extra !== undefined) conds.push(extra);
    const loaded = read(op, op.index(t, kg, s), quad);
    const cond = allOf(conds);
    const load = (kBase: Expr): Stmt[] => [{
      kind: "block",
      body: [
        letS(`k_${s}`, add(kBase, kks)),
        ...(cond === undefined
          ? [assign(value, loaded)]
          : [assign(value, zero), ...when(cond, [assign(value, loaded)])]),
      ],
    }];
    const slotAt = div(add(mul(kks, U(bt)), rs), U(4));
    let store: Stmt[];
    if (op.vec === "tile") {
      store = [{ kind: "store", buf: sh, index: slotAt, value: f4(value) }];
    } else if (op.vec === "k") {
      store = [0, 1, 2, 3].map((c): Stmt => ({
        kind: "store",
        buf: sh,
        index: div(add(mul(add(kks, U(c)), U(bt)), rs), U(4)),
        lane: mod(rs, U(4)),
        value: lane(f4(value), c),
      }));
    } else {
      store = [{ kind: "store", buf: sh, index: slotAt, lane: mod(rs, U(4)), value: f(value) }];
    }
    if (partial) store = when(name(`ok_${s}`, "bool"), store);
    slots.push({ hoist, load, store });
  }
  return slots;
}

/** Accumulators a thread may apply a fused epilogue to inline (see {@linkcode gemmPlan}). */
const EPILOGUE_INLINE = 64;

/** Element (i, j) of the register block held as `vec4` accumulators `acc_<row>_<column / 4>`. */
function accLane(i: number, j: number): Expr {
  return lane(f4(`acc_${i}_${Math.floor(j / 4)}`), j % 4);
}

/** The output stores of a register block (bounds-checked; epilogue or partial sums). */
function storeBlock(
  spec: GemmSpec,
  rows: Expr[],
  cols: Expr[],
  value: (i: number, j: number) => Expr,
  split: boolean,
): Stmt[] {
  const { m, n, tile } = spec;
  const out: Stmt[] = [];
  for (let i = 0; i < rows.length; i++) {
    for (let j = 0; j < cols.length; j++) {
      const conds: Expr[] = [];
      if (m % tile.bm !== 0) conds.push(lt(rows[i], U(m)));
      if (n % tile.bn !== 0) conds.push(lt(cols[j], U(n)));
      const idx = spec.outIndex(rows[i], cols[j]);
      const sk = add(v("sk"), U(spec.splitOffset ?? 0));
      const body = split
        ? [store("partial", add(mul(sk, U(spec.outSize)), idx), value(i, j))]
        : epilogueStore(spec.epilogue, spec.outBinding ?? "out", idx, value(i, j));
      out.push(...when(allOf(conds, true), body));
    }
  }
  return out;
}

/** Kernel body (after the tile decode) for workgroup-memory staging. */
function workgroupBody(spec: GemmSpec, split: boolean, kRange: [Expr, Expr]) {
  const { m, n, k, a, b, tile } = spec;
  const { bm, bn, bk, tm, tn } = tile;
  const [kBegin, kEnd] = kRange;
  const threads = gemmThreads(tile);
  const slots = [
    ...operandSlots(a, "a", { tileDim: m, tileBase: v("row0"), k, bt: bm, bk }, threads),
    ...operandSlots(b, "b", { tileDim: n, tileBase: v("col0"), k, bt: bn, bk }, threads),
  ];
  const compute: Stmt[] = [];
  for (let kk = 0; kk < bk; kk++) {
    const body: Stmt[] = [];
    for (let q = 0; q < tm / 4; q++) {
      body.push(letS(`a${q}`, loadV("As", add(U((kk * bm) / 4 + (q * bm) / tm), v("ty")))));
    }
    for (let q = 0; q < tn / 4; q++) {
      body.push(letS(`b${q}`, loadV("Bs", add(U((kk * bn) / 4 + (q * bn) / tn), v("tx")))));
    }
    for (let i = 0; i < tm; i++) {
      const av = lane(f4(`a${Math.floor(i / 4)}`), i % 4);
      for (let q = 0; q < tn / 4; q++) body.push(fmaInto(i, q, av, f4(`b${q}`)));
    }
    compute.push({ kind: "block", body });
  }
  const rows: Expr[] = [];
  const cols: Expr[] = [];
  const coords: Stmt[] = [];
  for (let i = 0; i < tm; i++) {
    const off = Math.floor(i / 4) * ((4 * bm) / tm) + (i % 4);
    coords.push(letS(`row_${i}`, add(add(v("row0"), mul(v("ty"), U(4))), U(off))));
    rows.push(v(`row_${i}`));
  }
  for (let j = 0; j < tn; j++) {
    const off = Math.floor(j / 4) * ((4 * bn) / tn) + (j % 4);
    coords.push(letS(`col_${j}`, add(add(v("col0"), mul(v("tx"), U(4))), U(off))));
    cols.push(v(`col_${j}`));
  }
  const next = add(v("k0"), U(bk));
  const body: Stmt[] = [
    ...slots.flatMap((s) => s.hoist),
    ...accumulators(tm, tn),
    // Global loads of the next K-step are issued before computing the current one (prefetch
    // into registers), so their latency overlaps the FMAs.
    ...slots.flatMap((s) => s.load(kBegin)),
    loop("k0", kBegin, kEnd, bk, [
      { kind: "barrier" },
      ...slots.flatMap((s) => s.store),
      { kind: "barrier" },
      ...when(lt(next, kEnd), slots.flatMap((s) => s.load(next))),
      ...compute,
    ]),
    ...coords,
    ...storeBlock(
      spec,
      rows,
      cols,
      accLane,
      split,
    ),
  ];
  const shared: Shared[] = [
    { name: "As", scalar: "f32", lanes: 4, size: (bk * bm) / 4 },
    { name: "Bs", scalar: "f32", lanes: 4, size: (bk * bn) / 4 },
  ];
  return { shared, body };
}

/** Loads of one operand in registers staging, and an accessor of the loaded values. */
interface RegisterLoads {
  /** Statements before the K loop (clamped tile indices, hoisted index math). */
  hoist: Stmt[];
  /** Statements loading the values for k0..k0+steps-1 (inside the loop). */
  load: (steps: number) => Stmt[];
  /** Scalar value for tile element `i` at k step `kk` (A), or vec4 of 4 columns (B). */
  value: (i: number, kk: number) => Expr;
}

function registerLoads(
  op: GemmOperand,
  side: "a" | "b",
  dims: { tileDim: number; base: Expr; count: number; k: number },
): RegisterLoads {
  const { tileDim, base, count, k } = dims;
  const hoist: Stmt[] = [];
  // Tile indices are clamped into range, so loads never need a tile bound check; stores skip
  // the clamped rows/columns.
  const quads = op.vec === "tile";
  const nIdx = quads ? count / 4 : count;
  for (let q = 0; q < nIdx; q++) {
    const s = `${side}${q}`;
    const off = quads ? 4 * q : q;
    const last = quads ? tileDim - 4 : tileDim - 1;
    hoist.push(letS(`t_${s}`, call("min", [add(base, U(off)), U(last)])));
    if (op.hoist) hoist.push(...op.hoist(v(`t_${s}`), s));
  }
  const scalar = (q: number, kAt: Expr): Expr => {
    const s = `${side}${q}`;
    const t = v(`t_${s}`);
    const loaded = read(op, op.index(t, kAt, s), false);
    const cond = op.cond?.(t, kAt, s);
    return cond === undefined ? loaded : select(cond, loaded, ZERO);
  };
  const quadAt = (q: number, kAt: Expr) => {
    const s = `${side}${q}`;
    return read(op, op.index(v(`t_${s}`), kAt, s), true);
  };
  const kAt = (kk: number) => add(v("k0"), U(kk));
  const columns = (parts: Expr[]): Expr => ({ kind: "vec", parts, type: "vec4<f32>" });
  if (op.vec === "k") {
    if (k % 4 !== 0) {
      throw new RangeError(`Cannot use vec4 loads along k with k = ${k}: expected k % 4 == 0`);
    }
    return {
      hoist,
      load: () =>
        Array.from({ length: count }, (_, q) => letS(`${side}k_${q}`, quadAt(q, v("k0")))),
      value: side === "a"
        ? (i, kk) => lane(f4(`${side}k_${i}`), kk)
        : (q, kk) => columns([0, 1, 2, 3].map((e) => lane(f4(`${side}k_${4 * q + e}`), kk))),
    };
  }
  if (op.vec === "tile") {
    return {
      hoist,
      load: (steps) => {
        const out: Stmt[] = [];
        for (let kk = 0; kk < steps; kk++) {
          for (let q = 0; q < count / 4; q++) {
            out.push(letS(`${side}t_${kk}_${q}`, quadAt(q, kAt(kk))));
          }
        }
        return out;
      },
      value: side === "a"
        ? (i, kk) => lane(f4(`${side}t_${kk}_${Math.floor(i / 4)}`), i % 4)
        : (q, kk) => f4(`${side}t_${kk}_${q}`),
    };
  }
  return {
    hoist,
    load: (steps) => {
      const out: Stmt[] = [];
      for (let kk = 0; kk < steps; kk++) {
        for (let q = 0; q < count; q++) out.push(letS(`${side}s_${kk}_${q}`, scalar(q, kAt(kk))));
      }
      return out;
    },
    value: side === "a"
      ? (i, kk) => f(`${side}s_${kk}_${i}`)
      : (q, kk) => columns([0, 1, 2, 3].map((e) => f(`${side}s_${kk}_${4 * q + e}`))),
  };
}

/** Kernel body for registers staging (no workgroup memory, no barriers). */
function registersBody(spec: GemmSpec, split: boolean, kRange: [Expr, Expr]) {
  const { m, n, k, a, b, tile } = spec;
  const { tm, tn } = tile;
  const [kBegin, kEnd] = kRange;
  const la = registerLoads(a, "a", { tileDim: m, base: v("rowT"), count: tm, k });
  const lb = registerLoads(b, "b", { tileDim: n, base: v("colT"), count: tn, k });
  const fmas = (steps: number): Stmt[] => {
    const out: Stmt[] = [];
    for (let kk = 0; kk < steps; kk++) {
      for (let q = 0; q < tn / 4; q++) out.push(letS(`bv_${kk}_${q}`, lb.value(q, kk)));
      for (let i = 0; i < tm; i++) {
        for (let q = 0; q < tn / 4; q++) {
          out.push(fmaInto(i, q, la.value(i, kk), f4(`bv_${kk}_${q}`)));
        }
      }
    }
    return out;
  };
  const rows = Array.from({ length: tm }, (_, i) => add(v("rowT"), U(i)));
  const cols = Array.from({ length: tn }, (_, j) => add(v("colT"), U(j)));
  const kMain = add(kBegin, mul(div(sub(kEnd, kBegin), U(4)), U(4)));
  const body: Stmt[] = [
    letS("rowT", add(v("row0"), mul(v("ty"), U(tm)))),
    letS("colT", add(v("col0"), mul(v("tx"), U(tn)))),
    ...la.hoist,
    ...lb.hoist,
    ...accumulators(tm, tn),
    letS("kMain", kMain),
    loop("k0", kBegin, v("kMain"), 4, [...la.load(4), ...lb.load(4), ...fmas(4)]),
    ...(k % 4 !== 0
      ? [loop("k0", v("kMain"), kEnd, 1, [...la.load(1), ...lb.load(1), ...fmas(1)])]
      : []),
    ...storeBlock(
      spec,
      rows,
      cols,
      accLane,
      split,
    ),
  ];
  return { shared: [] as Shared[], body };
}

/**
 * Builds the GEMM plan: one tiled kernel, plus a reduction kernel when `splits > 1`.
 *
 * @example
 * ```ts
 * import { gemmPlan } from "./_gemm.ts";
 * import { add, mul, U } from "./_ir.ts";
 * import assert from "node:assert/strict";
 * const plan = gemmPlan({
 *   batch: 1, m: 8, n: 8, k: 8, label: "8x8x8", splits: 1, outSize: 64,
 *   tile: { bm: 16, bn: 16, bk: 8, tm: 4, tn: 4 },
 *   a: { binding: "a", vec: "k", index: (t, k) => add(mul(t, U(8)), k) },
 *   b: { binding: "b", vec: "tile", index: (t, k) => add(mul(k, U(8)), t) },
 *   outIndex: (r, c) => add(mul(r, U(8)), c),
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
  const grid = foldGrid(tilesM * tilesN * batch * splits);
  const external = spec.splitOffset !== undefined;
  // A fused epilogue is compiled once per accumulator: past EPILOGUE_INLINE accumulators a
  // thread, it runs as its own pass over the output instead (the SGD update of T1's 64->128
  // weight gradient, 32x16 a thread, took llvmpipe 31 s to compile inline).
  const deferred = epilogue !== undefined && tile.tm * tile.tn > EPILOGUE_INLINE;
  const split = splits > 1 || external || deferred;
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
  const kRange: [Expr, Expr] = split ? [v("kBegin"), v("kEnd")] : [U(0), U(k)];
  const { shared, body } = registers
    ? registersBody(spec, split, kRange)
    : workgroupBody(spec, split, kRange);
  const inputs = (spec.bFirst ? [b, a] : [a, b]).map((op): BindingDecl => ({
    name: op.binding,
    type: op.vec === "none" ? "f32" : "vec4<f32>",
    split: op.split,
  }));
  const output: BindingDecl[] = split
    ? [{ name: "partial", type: "f32", write: true }]
    : [...epilogueInputs(epilogue), {
      name: spec.outBinding ?? "out",
      type: "f32",
      write: true,
      split: spec.split?.out,
    }];
  const main = irStep("gemm", {
    epilogue: split ? undefined : epilogue,
    comment: `${spec.label}; tile ${bm}x${bn}x${bk}, ${tile.tm}x${tile.tn} per thread, ` +
      `${threads} threads, ${registers ? "registers" : "workgroup"} staging, split-K ${splits}`,
    bindings: [...inputs, ...output],
    shared,
    threads,
    grid,
    body: [
      letS("tn_", mod(v("lin"), U(tilesN))),
      letS("tm_", mod(div(v("lin"), U(tilesN)), U(tilesM))),
      letS("zz", div(v("lin"), U(tilesN * tilesM))),
      letS("bz", mod(v("zz"), U(batch))),
      letS("sk", div(v("zz"), U(batch))),
      letS("tx", mod(v("lid"), U(bn / tile.tn))),
      letS("ty", div(v("lid"), U(bn / tile.tn))),
      letS("row0", mul(v("tm_"), U(bm))),
      letS("col0", mul(v("tn_"), U(bn))),
      ...(split
        ? [
          letS("kBegin", mul(v("sk"), U(chunk))),
          letS("kEnd", call("min", [add(v("kBegin"), U(chunk)), U(k)])),
        ]
        : []),
      ...body,
    ],
  });
  if (!split) return { algorithm: "gemm", steps: [main], scratch: [] };
  const scratch = [{ name: "partial", size: align16(totalSplits * spec.outSize * 4) }];
  if (external) return { algorithm: "gemm", steps: [main], scratch };
  return {
    algorithm: "gemm",
    steps: [
      main,
      splitReduceKernel(spec.outSize, splits, epilogue, spec.label, { out: spec.split?.out }),
    ],
    scratch,
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
  const quad = size % 4 === 0;
  const items = quad ? size / 4 : size;
  const threads = 256;
  const type = quad ? "vec4<f32>" : "f32";
  const s = name("s", type);
  const at = (i: Expr) => load("partial", i, type);
  const writes = quad
    ? [0, 1, 2, 3].flatMap((c) =>
      epilogueStore(epilogue, "out", add(mul(v("v"), U(4)), U(c)), lane(s, c))
    )
    : epilogueStore(epilogue, "out", v("v"), s);
  return irStep("splitReduce", {
    epilogue,
    comment: `split-K reduction for ${label}: ${splits} partial sums of ${size} elements`,
    bindings: [
      { name: "partial", type },
      ...epilogueInputs(epilogue),
      { name: "out", type: "f32", write: true, split: options.out },
    ],
    threads,
    grid: foldGrid(Math.ceil(items / threads)),
    body: [
      letS("v", add(mul(v("lin"), U(threads)), v("lid"))),
      { kind: "exit", index: v("v"), limit: items, unit: "thread" },
      varS("s", at(v("v"))),
      loop("sp", U(1), U(splits), 1, [
        assign("s", bin("+", s, at(add(mul(v("sp"), U(items)), v("v"))))),
      ]),
      ...writes,
    ],
  });
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
  return { tile, splitK: splitKFor(shape, tile, profile) };
}

/** The split-K factor of `tile`: enough workgroups for the profile, in chunks of at least 256. */
function splitKFor(
  shape: { batch: number; m: number; n: number; k: number },
  tile: GemmTile,
  profile: KernelProfile,
): number {
  const { batch, m, n, k } = shape;
  const target = TARGET_GROUPS[profile];
  const groups = batch * Math.ceil(m / tile.bm) * Math.ceil(n / tile.bn);
  const minChunk = 256;
  if (groups >= target || k < 2 * minChunk) return 1;
  return Math.min(Math.ceil(target / groups), Math.floor(k / minChunk), 256);
}

/**
 * The tiles and split-K factors a GEMM of this shape can use, cheapest to compile first (the
 * tuner's search space for matmul): on llvmpipe register blocks capped at 4, 8 and 16, each
 * with its split-K factor and without split-K; on discrete GPUs each workgroup tile with its
 * split-K factor.
 *
 * @example
 * ```ts
 * import { gemmConfigs } from "./_gemm.ts";
 * import assert from "node:assert/strict";
 * const c = gemmConfigs({ batch: 1, m: 1024, n: 1024, k: 1024 }, { profile: "llvmpipe" });
 * assert.deepEqual(c.map((g) => g.tile.tm), [4, 8, 16]);
 * ```
 */
export function gemmConfigs(
  shape: { batch: number; m: number; n: number; k: number },
  options: { profile?: KernelProfile; tmMultipleOf4?: boolean } = {},
): GemmConfig[] {
  const profile = options.profile ?? "llvmpipe";
  const out: GemmConfig[] = [];
  if (profile === "discrete") {
    for (const tile of DISCRETE_TILES) {
      out.push({ tile, splitK: splitKFor(shape, tile, profile) });
    }
    return out;
  }
  for (const cap of [4, 8, 16]) {
    const c = chooseGemmConfig(shape, { ...options, profile, cap });
    out.push(c);
    if (c.splitK > 1) out.push({ tile: c.tile, splitK: 1 });
  }
  return out;
}
