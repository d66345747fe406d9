/**
 * 2-D convolution kernel builders (NCHW input, OIHW weights) as implicit GEMMs: the
 * im2col matrix is never materialised, its elements are gathered inside the tiled GEMM's
 * loads (see `_gemm.ts`). Forward, gradient of the input, and gradient of the weights (a
 * reduction over `batch * outH * outW`, split into chunks with a second summing pass when
 * the output alone cannot fill the adapter).
 *
 * @module
 */
import type { BindingSplit, Epilogue, KernelPlan, KernelSource, ScratchBuffer } from "./types.ts";
import {
  conv2dRowsFilterKernel,
  conv2dRowsKernel,
  type Conv2dRowsSpec,
  filterTile,
  rowsTile,
} from "./conv2d_rows.ts";
import {
  checkTile,
  chooseGemmConfig,
  type GemmOperand,
  gemmPlan,
  type GemmTile,
  type KernelProfile,
  splitChunks,
  splitReduceKernel,
} from "./_gemm.ts";
import { bin, type Expr, lit, name, select, type Stmt } from "../src/kernel/ir.ts";
import {
  add,
  allOf,
  assign,
  checkInts,
  div,
  epilogueInputs,
  epilogueStore,
  foldGrid,
  I,
  inRange,
  irStep,
  letS,
  loadF,
  lt,
  mod,
  mul,
  store,
  sub,
  toI32,
  toU32,
  U,
  v,
  varS,
  when,
} from "./_ir.ts";

/** Padding of the input, in pixels, on each side. */
export interface Conv2dPadding {
  /** Rows added above. */
  top: number;
  /** Rows added below. */
  bottom: number;
  /** Columns added on the left. */
  left: number;
  /** Columns added on the right. */
  right: number;
}

/** Shape and options of a 2-D convolution `y = conv2d(x, w)`. */
export interface Conv2dSpec {
  /** Batch size N. */
  batch: number;
  /** Input channels C. */
  inChannels: number;
  /** Input height H. */
  height: number;
  /** Input width W. */
  width: number;
  /** Output channels O. */
  outChannels: number;
  /** Kernel height KH. */
  kernelH: number;
  /** Kernel width KW. */
  kernelW: number;
  /** Stride, one number for both axes or `[strideH, strideW]` (default 1). */
  stride?: number | [number, number];
  /** Padding, one number for every side or per side (default 0). */
  padding?: number | Conv2dPadding;
  /** Dilation, one number or `[dilationH, dilationW]` (default 1). */
  dilation?: number | [number, number];
  /** Groups: C and O are split into `groups` blocks convolved separately (default 1). */
  groups?: number;
  /**
   * Fused epilogue; `idx` is the flat index into the kernel's output: `y` (NCHW) for the
   * forward kernel, `dx` (NCHW) for the input gradient, `dw` (OIHW) for the weight gradient.
   */
  epilogue?: Epilogue;
  /** Tile configuration profile (default `"llvmpipe"`); ignored when `tile` is given. */
  profile?: KernelProfile;
  /** Override of the tile configuration. */
  tile?: GemmTile;
  /** Override of the split-K factor (1 disables split-K). */
  splitK?: number;
  /**
   * llvmpipe only: `"explicit"` unfolds chunks of images into a scratch column matrix and
   * multiplies it with vec4 loads (im2col; col2im for the input gradient), `"implicit"` gathers
   * inside the GEMM, `"auto"` (default) picks per kernel and shape from measurements. Explicit
   * needs `groups = 1`, `OH*OW` a multiple of 4 and no `split`, else the implicit form is used.
   * `"rows"` (also picked by `"auto"` where it applies): the three kernels of a 3x3, padding-1
   * convolution with stride 1 (or 2 on even sizes) by rows of pixels (`conv2d_rows.ts`; the
   * stride-2 input gradient by sub-pixels).
   */
  columns?: "auto" | "implicit" | "explicit" | "rows";
  /**
   * A measured choice of algorithm and tile (see `tune.ts`), replacing `columns` "auto" and the
   * size rules; a variant that does not apply to the shape throws a RangeError.
   */
  variant?: ConvVariant;
  /** Bytes of the explicit column scratch per chunk of images (default 120 MiB). */
  columnsBytes?: number;
  /**
   * Bindings (the kernel's operand names, `out`) bound as several parts, for tensors larger
   * than one storage binding (see {@linkcode BindingSplit}).
   */
  split?: Readonly<Record<string, BindingSplit>>;
}

/**
 * One algorithm and tile of a convolution kernel, as the tuner chooses among them: by rows
 * (`conv2d_rows.ts`; `tm` channels x `tn` pixels per thread for the forward and input-gradient
 * kernels, `to` x `tc` channels for the weight gradient), the implicit GEMM with register
 * blocks of at most `cap` rows and columns (32: tall 32-row blocks), or explicit columns.
 */
export type ConvVariant =
  | { algo: "rows"; tm: number; tn: number }
  | { algo: "rowsFilter"; to: number; tc: number; rh?: number }
  | { algo: "implicit"; cap: number }
  | { algo: "explicit" };

/** A spec with every default filled in and the output size computed. */
export interface Conv2dGeometry {
  /** Batch size. */
  n: number;
  /** Input channels. */
  c: number;
  /** Input height. */
  h: number;
  /** Input width. */
  w: number;
  /** Output channels. */
  o: number;
  /** Kernel height. */
  kh: number;
  /** Kernel width. */
  kw: number;
  /** Strides. */
  sh: number;
  /** Stride along the width. */
  sw: number;
  /** Dilations. */
  dh: number;
  /** Dilation along the width. */
  dw: number;
  /** Padding. */
  pad: Conv2dPadding;
  /** Groups. */
  groups: number;
  /** Output height. */
  oh: number;
  /** Output width. */
  ow: number;
}

function pair(value: number | [number, number] | undefined, name: string): [number, number] {
  const v = value ?? 1;
  const p: [number, number] = typeof v === "number" ? [v, v] : v;
  checkInts("conv2d", { [`${name}H`]: p[0], [`${name}W`]: p[1] });
  return p;
}

/**
 * Validates a convolution spec and computes its geometry, notably the output size
 * `outH = floor((H + top + bottom - dilationH*(KH-1) - 1) / strideH) + 1` (likewise `outW`).
 *
 * @example
 * ```ts
 * import { conv2dGeometry } from "./conv2d.ts";
 * import assert from "node:assert/strict";
 * const g = conv2dGeometry({
 *   batch: 1, inChannels: 3, height: 32, width: 32, outChannels: 8, kernelH: 3, kernelW: 3,
 *   stride: 2, padding: 1,
 * });
 * assert(g.oh === 16 && g.ow === 16);
 * ```
 */
export function conv2dGeometry(spec: Conv2dSpec): Conv2dGeometry {
  const { batch: n, inChannels: c, height: h, width: w, outChannels: o } = spec;
  const { kernelH: kh, kernelW: kw } = spec;
  checkInts("conv2d", { batch: n, inChannels: c, height: h, width: w, outChannels: o, kh, kw });
  const [sh, sw] = pair(spec.stride, "stride");
  const [dh, dw] = pair(spec.dilation, "dilation");
  const p = spec.padding ?? 0;
  const pad: Conv2dPadding = typeof p === "number"
    ? { top: p, bottom: p, left: p, right: p }
    : { top: p.top, bottom: p.bottom, left: p.left, right: p.right };
  checkInts("conv2d", { ...pad }, { min: 0 });
  const groups = spec.groups ?? 1;
  checkInts("conv2d", { groups });
  if (c % groups !== 0 || o % groups !== 0) {
    throw new RangeError(
      `Invalid conv2d groups ${groups}: expected a divisor of inChannels ${c} and outChannels ${o}`,
    );
  }
  const oh = Math.floor((h + pad.top + pad.bottom - dh * (kh - 1) - 1) / sh) + 1;
  const ow = Math.floor((w + pad.left + pad.right - dw * (kw - 1) - 1) / sw) + 1;
  if (oh < 1 || ow < 1) {
    throw new RangeError(
      `Invalid conv2d geometry: output ${oh}x${ow} from input ${h}x${w}, expected at least 1x1`,
    );
  }
  const biggest = Math.max(n * c * h * w, n * o * oh * ow, o * (c / groups) * kh * kw);
  if (biggest >= 2 ** 31) {
    throw new RangeError(`Invalid conv2d shape with ${biggest} elements: expected < 2^31`);
  }
  return { n, c, h, w, o, kh, kw, sh, sw, dh, dw, pad, groups, oh, ow };
}

/** An i32 name. */
const si = (n: string): Expr => name(n, "i32");
/** The f32 zero. */
const F0 = lit(0, "f32");

function config(
  spec: Conv2dSpec,
  shape: { batch: number; m: number; n: number; k: number },
  minSplit = 1,
): { tile: GemmTile; splits: number } {
  const cap = spec.variant?.algo === "implicit" ? spec.variant.cap : undefined;
  const auto = chooseGemmConfig(shape, { profile: spec.profile, tallRows: true, cap });
  const tile = spec.tile ?? auto.tile;
  checkTile(tile);
  const splits = spec.splitK ?? (spec.tile ? 1 : Math.max(auto.splitK, minSplit));
  checkInts("conv2d", { splitK: splits });
  return { tile, splits };
}

function describe(g: Conv2dGeometry, what: string): string {
  const p = g.pad;
  return `conv2d ${what}: x [${g.n}, ${g.c}, ${g.h}, ${g.w}], w [${g.o}, ${g.c / g.groups}, ` +
    `${g.kh}, ${g.kw}], y [${g.n}, ${g.o}, ${g.oh}, ${g.ow}], stride ${g.sh}x${g.sw}, ` +
    `pad ${p.top},${p.bottom},${p.left},${p.right}, dilation ${g.dh}x${g.dw}, groups ${g.groups}`;
}

/**
 * Forward convolution `y[n, o, oh, ow] = Σ_{c, kh, kw} w[o, c, kh, kw] · x[n, g*Cg + c,
 * oh*sh - top + kh*dh, ow*sw - left + kw*dw]` (zero outside the input), as one GEMM per group:
 * `[O/groups] x [C/groups*KH*KW]` weights times the implicit `[.. x N*OH*OW]` im2col matrix.
 *
 * Bindings: `x` (`array<f32>`), `w` (`array<vec4<f32>>` when `C/groups*KH*KW` is a multiple of
 * 4, else `array<f32>`), epilogue inputs `e0..`, `out` (`y`, NCHW).
 *
 * @example
 * ```ts
 * import { conv2dForwardKernel } from "./conv2d.ts";
 * import assert from "node:assert/strict";
 * const plan = conv2dForwardKernel({
 *   batch: 2, inChannels: 4, height: 8, width: 8, outChannels: 8, kernelH: 3, kernelW: 3,
 *   padding: 1, columns: "implicit",
 * });
 * assert.deepEqual(plan.steps.map((s) => s.bindings.join()), ["x,w,out"]);
 * // By default (a 3x3 stride-1 padding-1 kernel), by rows: weights repacked, then convolved.
 * const rows = conv2dForwardKernel({
 *   batch: 2, inChannels: 4, height: 8, width: 8, outChannels: 8, kernelH: 3, kernelW: 3,
 *   padding: 1,
 * });
 * assert.deepEqual(rows.steps.map((s) => s.bindings.join()), ["w,wq", "x,wq,out"]);
 * ```
 */
export function conv2dForwardKernel(spec: Conv2dSpec): KernelPlan {
  const g = conv2dGeometry(spec);
  // Measured on llvmpipe (T1 shapes, 4x4 to 16x16 outputs): never faster than the implicit
  // GEMM with 32-row register blocks, so only on request.
  const rows = rowsPlan(spec, g, "forward");
  if (rows !== null) return rows;
  const chunks = explicitChunks(spec, g, false);
  if (chunks !== null) return explicitForward(spec, g, chunks);
  const cg = g.c / g.groups;
  const og = g.o / g.groups;
  const khw = g.kh * g.kw;
  const ohw = g.oh * g.ow;
  const m = og;
  const n = g.n * ohw;
  const k = cg * khw;
  const { tile, splits } = config(spec, { batch: g.groups, m, n, k });
  const w: GemmOperand = {
    binding: "w",
    vec: k % 4 === 0 ? "k" : "none",
    scalarOrder: "k",
    index: (t, kk) => add(mul(add(mul(v("bz"), U(og)), t), U(k)), kk),
  };
  // k = (c, kh, kw) decoding; the compiler shares it between the columns of a thread.
  const ih = (kk: Expr, s: string) =>
    add(si(`ih0_${s}`), mul(toI32(div(mod(kk, U(khw)), U(g.kw))), I(g.dh)));
  const iw = (kk: Expr, s: string) => add(si(`iw0_${s}`), mul(toI32(mod(kk, U(g.kw))), I(g.dw)));
  const x: GemmOperand = {
    binding: "x",
    vec: "none",
    scalarOrder: "tile",
    hoist: (t, s) => [
      letS(`nb_${s}`, div(t, U(ohw))),
      letS(`p_${s}`, mod(t, U(ohw))),
      letS(`ih0_${s}`, sub(mul(toI32(div(v(`p_${s}`), U(g.ow))), I(g.sh)), I(g.pad.top))),
      letS(`iw0_${s}`, sub(mul(toI32(mod(v(`p_${s}`), U(g.ow))), I(g.sw)), I(g.pad.left))),
      letS(`xb_${s}`, mul(add(mul(v(`nb_${s}`), U(g.c)), mul(v("bz"), U(cg))), U(g.h * g.w))),
    ],
    cond: (_t, kk, s) => allOf([inRange(ih(kk, s), g.h), inRange(iw(kk, s), g.w)]),
    index: (_t, kk, s) =>
      add(
        add(add(v(`xb_${s}`), mul(div(kk, U(khw)), U(g.h * g.w))), mul(toU32(ih(kk, s)), U(g.w))),
        toU32(iw(kk, s)),
      ),
  };
  return gemmPlan({
    batch: g.groups,
    m,
    n,
    k,
    a: w,
    b: x,
    bFirst: true,
    outIndex: (r, c) =>
      add(
        mul(add(add(mul(div(c, U(ohw)), U(g.o)), mul(v("bz"), U(og))), r), U(ohw)),
        mod(c, U(ohw)),
      ),
    outSize: g.n * g.o * ohw,
    tile,
    splits,
    epilogue: spec.epilogue,
    split: spec.split,
    label: describe(g, "forward"),
  });
}

/**
 * Gradient of the input: `dx[n, c, ih, iw] = Σ_{o, kh, kw} w[o, c, kh, kw] · dy[n, o, oh, ow]`
 * over the `(oh, ow)` with `oh*sh - top + kh*dh = ih` (likewise for the width), as one GEMM per
 * group: `[C/groups] x [O/groups*KH*KW]` (transposed weights) times an implicit gather of `dy`.
 * With stride > 1 the terms that fall between output pixels are masked to zero.
 *
 * Bindings: `dy` (`array<f32>`, NCHW `[N, O, OH, OW]`), `w` (`array<f32>`), epilogue inputs,
 * `out` (`dx`, NCHW `[N, C, H, W]`).
 *
 * @example
 * ```ts
 * import { conv2dBackwardInputKernel } from "./conv2d.ts";
 * import assert from "node:assert/strict";
 * const plan = conv2dBackwardInputKernel({
 *   batch: 2, inChannels: 4, height: 8, width: 8, outChannels: 8, kernelH: 3, kernelW: 3,
 *   stride: 2, padding: 1, columns: "implicit",
 * });
 * assert.deepEqual(plan.steps.map((s) => s.bindings.join()), ["dy,w,out"]);
 * // With stride 2 and 4 input channels (rows need multiples of 8): explicit columns (a GEMM
 * // into `cols`, then col2im).
 * const cols = conv2dBackwardInputKernel({
 *   batch: 2, inChannels: 4, height: 8, width: 8, outChannels: 8, kernelH: 3, kernelW: 3,
 *   stride: 2, padding: 1,
 * });
 * assert.deepEqual(cols.steps.map((s) => s.bindings.join()), ["dy,w,cols", "cols,out"]);
 * ```
 */
export function conv2dBackwardInputKernel(spec: Conv2dSpec): KernelPlan {
  const g = conv2dGeometry(spec);
  // Explicit columns, measured on llvmpipe against the implicit GEMM: 3-6x faster with stride 2
  // (no masked taps), 1.3-1.45x up to 16x16 outputs with stride 1, slower on larger stride-1
  // outputs (32x32: 0.6x). Rows (sub-pixels with stride 2) beat both where they apply.
  const rows = rowsPlan(spec, g, "backInput");
  if (rows !== null) return rows;
  const chunks = explicitChunks(spec, g, g.sh * g.sw > 1 || g.oh * g.ow <= 256);
  if (chunks !== null) return explicitBackwardInput(spec, g, chunks);
  const cg = g.c / g.groups;
  const og = g.o / g.groups;
  const khw = g.kh * g.kw;
  const ohw = g.oh * g.ow;
  const hw = g.h * g.w;
  const m = cg;
  const n = g.n * hw;
  const k = og * khw;
  const { tile, splits } = config(spec, { batch: g.groups, m, n, k });
  const w: GemmOperand = {
    binding: "w",
    vec: "none",
    scalarOrder: "k",
    index: (t, kk) =>
      add(
        mul(add(mul(add(mul(v("bz"), U(og)), div(kk, U(khw))), U(cg)), t), U(khw)),
        mod(kk, U(khw)),
      ),
  };
  const kh = (kk: Expr) => toI32(div(mod(kk, U(khw)), U(g.kw)));
  const kw = (kk: Expr) => toI32(mod(kk, U(g.kw)));
  // th = oh * sh for the tap (kh); valid when divisible by the stride and inside the output.
  const th = (kk: Expr, s: string) => sub(si(`ihp_${s}`), mul(kh(kk), I(g.dh)));
  const tw = (kk: Expr, s: string) => sub(si(`iwp_${s}`), mul(kw(kk), I(g.dw)));
  const ohE = (kk: Expr, s: string) => div(th(kk, s), I(g.sh));
  const owE = (kk: Expr, s: string) => div(tw(kk, s), I(g.sw));
  const dy: GemmOperand = {
    binding: "dy",
    vec: "none",
    scalarOrder: "tile",
    hoist: (t, s) => [
      letS(`nb_${s}`, div(t, U(hw))),
      letS(`p_${s}`, mod(t, U(hw))),
      letS(`ihp_${s}`, add(toI32(div(v(`p_${s}`), U(g.w))), I(g.pad.top))),
      letS(`iwp_${s}`, add(toI32(mod(v(`p_${s}`), U(g.w))), I(g.pad.left))),
      letS(`db_${s}`, mul(add(mul(v(`nb_${s}`), U(g.o)), mul(v("bz"), U(og))), U(ohw))),
    ],
    cond: (_t, kk, s) => {
      const parts = [inRange(ohE(kk, s), g.oh), inRange(owE(kk, s), g.ow)];
      // i32 division truncates toward zero, so also require th >= 0 (and divisibility).
      if (g.sh > 1) {
        parts.push(bin(">=", th(kk, s), I(0)), bin("==", mod(th(kk, s), I(g.sh)), I(0)));
      }
      if (g.sw > 1) {
        parts.push(bin(">=", tw(kk, s), I(0)), bin("==", mod(tw(kk, s), I(g.sw)), I(0)));
      }
      return allOf(parts);
    },
    index: (_t, kk, s) =>
      add(
        add(add(v(`db_${s}`), mul(div(kk, U(khw)), U(ohw))), mul(toU32(ohE(kk, s)), U(g.ow))),
        toU32(owE(kk, s)),
      ),
  };
  return gemmPlan({
    batch: g.groups,
    m,
    n,
    k,
    a: w,
    b: dy,
    bFirst: true,
    outIndex: (r, c) =>
      add(mul(add(add(mul(div(c, U(hw)), U(g.c)), mul(v("bz"), U(cg))), r), U(hw)), mod(c, U(hw))),
    outSize: g.n * g.c * hw,
    tile,
    splits,
    epilogue: spec.epilogue,
    split: spec.split,
    label: describe(g, "backward input"),
  });
}

/**
 * Gradient of the weights: `dw[o, c, kh, kw] = Σ_{n, oh, ow} dy[n, o, oh, ow] · x[n, g*Cg + c,
 * oh*sh - top + kh*dh, ow*sw - left + kw*dw]`, as one GEMM per group with the long reduction
 * `K = N*OH*OW` (50,176 for the C1 workload). The reduction is cut into chunks (split-K) when
 * the `[O/groups] x [C/groups*KH*KW]` output alone gives too few workgroups, and in any case into
 * chunks of at most 16,384 terms; a second pass sums the chunks in a fixed order. Every
 * index is computed in u32 with each buffer under 2^31 elements, so nothing wraps at 65,536.
 *
 * Bindings: `x` (`array<f32>`), `dy` (`array<vec4<f32>>` when `OH*OW` is a multiple of 4, else
 * `array<f32>`), epilogue inputs, `out` (`dw`, OIHW `[O, C/groups, KH, KW]`); with split-K one
 * scratch buffer `partial`.
 *
 * @example
 * ```ts
 * import { conv2dBackwardFilterKernel } from "./conv2d.ts";
 * import assert from "node:assert/strict";
 * const plan = conv2dBackwardFilterKernel({
 *   batch: 16, inChannels: 64, height: 56, width: 56, outChannels: 64, kernelH: 3, kernelW: 3,
 *   padding: 1,
 * });
 * assert(plan.steps.length === 2 && plan.scratch[0].name === "partial");
 * ```
 */
export function conv2dBackwardFilterKernel(spec: Conv2dSpec): KernelPlan {
  const g = conv2dGeometry(spec);
  const rows = rowsFilterPlan(spec, g);
  if (rows !== null) return rows;
  // Measured on llvmpipe (T1 shapes): at best even with the implicit GEMM, so only on request.
  const chunks = explicitChunks(spec, g, false);
  if (chunks !== null) return explicitBackwardFilter(spec, g, chunks);
  const cg = g.c / g.groups;
  const og = g.o / g.groups;
  const khw = g.kh * g.kw;
  const ohw = g.oh * g.ow;
  const hw = g.h * g.w;
  const m = og;
  const n = cg * khw;
  const k = g.n * ohw;
  const { tile, splits } = config(spec, { batch: g.groups, m, n, k }, Math.ceil(k / 16384));
  const dyVec = ohw % 4 === 0;
  const dy: GemmOperand = {
    binding: "dy",
    vec: dyVec ? "k" : "none",
    scalarOrder: "k",
    index: (t, kk) =>
      add(
        mul(add(add(mul(div(kk, U(ohw)), U(g.o)), mul(v("bz"), U(og))), t), U(ohw)),
        mod(kk, U(ohw)),
      ),
  };
  const oh = (kk: Expr) => toI32(div(mod(kk, U(ohw)), U(g.ow)));
  const ow = (kk: Expr) => toI32(mod(kk, U(g.ow)));
  const ih = (kk: Expr, s: string) => add(mul(oh(kk), I(g.sh)), si(`kh_${s}`));
  const iw = (kk: Expr, s: string) => add(mul(ow(kk), I(g.sw)), si(`kw_${s}`));
  const x: GemmOperand = {
    binding: "x",
    vec: "none",
    scalarOrder: "k",
    hoist: (t, s) => [
      letS(`xc_${s}`, mul(add(mul(v("bz"), U(cg)), div(t, U(khw))), U(hw))),
      letS(`kh_${s}`, sub(mul(toI32(div(mod(t, U(khw)), U(g.kw))), I(g.dh)), I(g.pad.top))),
      letS(`kw_${s}`, sub(mul(toI32(mod(t, U(g.kw))), I(g.dw)), I(g.pad.left))),
    ],
    cond: (_t, kk, s) => allOf([inRange(ih(kk, s), g.h), inRange(iw(kk, s), g.w)]),
    index: (_t, kk, s) =>
      add(
        add(add(mul(div(kk, U(ohw)), U(g.c * hw)), v(`xc_${s}`)), mul(toU32(ih(kk, s)), U(g.w))),
        toU32(iw(kk, s)),
      ),
  };
  return gemmPlan({
    batch: g.groups,
    m,
    n,
    k,
    a: dy,
    b: x,
    bFirst: true,
    outIndex: (r, c) => add(mul(add(mul(v("bz"), U(og)), r), U(n)), c),
    outSize: g.o * n,
    tile,
    splits,
    epilogue: spec.epilogue,
    split: spec.split,
    label: describe(g, "backward filter"),
  });
}

// ---------------------------------------------------------------------------------------------
// Explicit-columns path (llvmpipe). The implicit GEMM gathers its im2col operand with one
// bounds-checked scalar load per element and tap; on llvmpipe every such load is a per-lane
// loop, so the convolutions ran at ~30% of the matmul rate. Instead, chunks of whole images
// are unfolded once into a dense scratch matrix `cols` (rows `(c, kh, kw)`, columns
// `(image, oh, ow)`), and the products read it with vec4 loads like a plain matmul:
// forward `y = w · cols`, weight gradient `dw = dy · colsᵀ`, input gradient
// `cols = wᵀ · dy` followed by a gather-sum back to `dx` (col2im), which for stride 2 also
// skips the masked taps the implicit formulation multiplies by zero.
// ---------------------------------------------------------------------------------------------

/**
 * Bytes of the `cols` scratch matrix per chunk: under 128 MiB, WebGPU's minimum
 * `maxStorageBufferBindingSize` (also llvmpipe's).
 */
const COLS_BYTES = 120 * 2 ** 20;

interface ImageChunk {
  /** First image. */
  n0: number;
  /** Images in the chunk. */
  images: number;
}

/**
 * Chunks of whole images for the explicit-columns path, or `null` where it does not apply:
 * another profile, an explicit tile or split-K, groups, `OH*OW` not a multiple of 4, or one
 * image's columns over the scratch budget.
 */
function explicitChunks(
  spec: Conv2dSpec,
  g: Conv2dGeometry,
  auto: boolean,
): ImageChunk[] | null {
  const mode = spec.columns ?? "auto";
  if (mode !== "auto" && mode !== "implicit" && mode !== "explicit" && mode !== "rows") {
    throw new TypeError(
      `Invalid conv2d columns "${mode}": expected auto, implicit, explicit or rows`,
    );
  }
  const budget = spec.columnsBytes ?? COLS_BYTES;
  checkInts("conv2d", { columnsBytes: budget });
  if (spec.variant !== undefined) {
    if (spec.variant.algo !== "explicit") return null;
    const chunks = explicitChunks({ ...spec, ...ANY, columns: "explicit" }, g, true);
    if (chunks === null) throw variantError(spec.variant, g);
    return chunks;
  }
  if (
    (spec.profile ?? "llvmpipe") !== "llvmpipe" || spec.tile !== undefined ||
    spec.splitK !== undefined || g.groups !== 1 || mode === "implicit" || mode === "rows" ||
    // A split binding means a binding limit below the 128 MiB every WebGPU adapter offers
    // (the scratch is sized for that minimum).
    spec.split !== undefined ||
    (mode === "auto" && !auto)
  ) {
    return null;
  }
  const ohw = g.oh * g.ow;
  const perImage = g.c * g.kh * g.kw * ohw * 4;
  if (ohw % 4 !== 0 || perImage > budget) return null;
  const count = Math.ceil(g.n / Math.floor(budget / perImage));
  const images = Math.ceil(g.n / count);
  const chunks: ImageChunk[] = [];
  for (let n0 = 0; n0 < g.n; n0 += images) {
    chunks.push({ n0, images: Math.min(images, g.n - n0) });
  }
  return chunks;
}

/**
 * The row kernel's plan (`conv2d_rows.ts`) when it applies ({@link rowsApply}, a row tile for
 * the shape); else null.
 */
function rowsPlan(
  spec: Conv2dSpec,
  g: Conv2dGeometry,
  mode: "forward" | "backInput",
): KernelPlan | null {
  const v = spec.variant;
  if (v !== undefined && v.algo !== "rows") return null;
  if (!rowsApply(v === undefined ? spec : { ...spec, ...ANY }, g)) {
    if (v !== undefined) throw variantError(v, g);
    return null;
  }
  const rows: Conv2dRowsSpec = {
    batch: g.n,
    inChannels: mode === "forward" ? g.c : g.o,
    outChannels: mode === "forward" ? g.o : g.c,
    height: g.oh,
    width: g.ow,
    mode,
    epilogue: spec.epilogue,
    stride: g.sh as 1 | 2,
  };
  if (v !== undefined) return conv2dRowsKernel({ ...rows, tile: { tm: v.tm, tn: v.tn } });
  return rowsTile(rows) === null ? null : conv2dRowsKernel(rows);
}

/**
 * Whether a row kernel may serve `spec`: llvmpipe, `columns` "auto" or "rows", no tile,
 * split-K or split binding, one group, and a 3x3 kernel with dilation 1, padding 1 on every
 * side and stride 1, or stride 2 with an even input (twice the output's size).
 */
function rowsApply(spec: Conv2dSpec, g: Conv2dGeometry): boolean {
  const columns = spec.columns ?? "auto";
  const p = g.pad;
  return (spec.profile ?? "llvmpipe") === "llvmpipe" &&
    (columns === "auto" || columns === "rows") && spec.tile === undefined &&
    spec.splitK === undefined && spec.split === undefined && g.groups === 1 && g.kh === 3 &&
    g.kw === 3 && g.dh === 1 && g.dw === 1 && p.top === 1 &&
    ((g.sh === 1 && g.sw === 1) ||
      (g.sh === 2 && g.sw === 2 && g.h === 2 * g.oh && g.w === 2 * g.ow)) &&
    p.bottom === 1 && p.left === 1 && p.right === 1;
}

/**
 * The row weight gradient (`conv2d_rows.ts`) where it applies ({@link rowsApply}, a filter
 * tile) and, under "auto", rows of 16 pixels or more: measured on llvmpipe (T1 shapes) 2-2.6x
 * the implicit GEMM at widths 32, 1.35x at 16, even below.
 */
function rowsFilterPlan(spec: Conv2dSpec, g: Conv2dGeometry): KernelPlan | null {
  const v = spec.variant;
  if (v !== undefined) {
    if (v.algo !== "rowsFilter") return null;
    if (!rowsApply({ ...spec, ...ANY }, g)) throw variantError(v, g);
  } else if (!rowsApply(spec, g) || ((spec.columns ?? "auto") === "auto" && g.w < 16)) {
    return null;
  }
  const rows = {
    batch: g.n,
    inChannels: g.c,
    outChannels: g.o,
    height: g.oh,
    width: g.ow,
    epilogue: spec.epilogue,
    stride: g.sh as 1 | 2,
  };
  if (v !== undefined) {
    return conv2dRowsFilterKernel({ ...rows, tile: { to: v.to, tc: v.tc, rh: v.rh } });
  }
  return filterTile(rows) === null ? null : conv2dRowsFilterKernel(rows);
}

/** A variant applies on any adapter: the kernel-profile and `columns` conditions are lifted. */
const ANY = { variant: undefined, profile: "llvmpipe", columns: "auto" } as const;

function variantError(v: ConvVariant, g: Conv2dGeometry): RangeError {
  return new RangeError(
    `Conv2d variant ${JSON.stringify(v)} does not apply to ${describe(g, "")}: rows need a ` +
      `3x3 padding-1 kernel with stride 1 (or 2 on an even input) without groups, split ` +
      `bindings, tile or split-K; explicit ` +
      `columns need OH*OW a multiple of 4 and no groups or split bindings`,
  );
}

/** Unique scratch buffers by name, each with the largest size asked for. */
function mergeScratch(list: ScratchBuffer[]): ScratchBuffer[] {
  const sizes = new Map<string, number>();
  for (const s of list) sizes.set(s.name, Math.max(sizes.get(s.name) ?? 0, s.size));
  return [...sizes].map(([name, size]) => ({ name, size }));
}

/**
 * im2col of one chunk: `cols[(c*KH + kh)*KW + kw][j] = x[n0 + j / (OH*OW), c, ih, iw]` (zero in
 * the padding), one vec4 of 4 consecutive columns per thread.
 */
function im2colStep(
  g: Conv2dGeometry,
  chunk: ImageChunk,
  split: BindingSplit | undefined,
  label: string,
): KernelSource {
  const khw = g.kh * g.kw;
  const ohw = g.oh * g.ow;
  const ncols = chunk.images * ohw;
  const quads = (g.c * khw * ncols) / 4;
  const threads = 64;
  const lanes: Stmt[] = [0, 1, 2, 3].flatMap((e) => {
    const j = add(v("j0"), U(e));
    const ih = si(`ih${e}`), iw = si(`iw${e}`);
    return [
      letS(`p${e}`, mod(j, U(ohw))),
      letS(`ih${e}`, add(mul(toI32(div(v(`p${e}`), U(g.ow))), I(g.sh)), si("dh"))),
      letS(`iw${e}`, add(mul(toI32(mod(v(`p${e}`), U(g.ow))), I(g.sw)), si("dw"))),
      letS(
        `xi${e}`,
        add(
          add(
            mul(add(mul(add(U(chunk.n0), div(j, U(ohw))), U(g.c)), v("c")), U(g.h * g.w)),
            mul(toU32(ih), U(g.w)),
          ),
          toU32(iw),
        ),
      ),
      letS(
        `v${e}`,
        select(allOf([inRange(ih, g.h), inRange(iw, g.w)], true)!, loadF("x", v(`xi${e}`)), F0),
      ),
    ];
  });
  return irStep("im2col", {
    comment: `im2col of images ${chunk.n0}..${chunk.n0 + chunk.images - 1} for ${label}`,
    bindings: [
      { name: "x", type: "f32", split },
      { name: "cols", type: "vec4<f32>", write: true },
    ],
    threads,
    grid: foldGrid(Math.ceil(quads / threads)),
    body: [
      letS("q", add(mul(v("lin"), U(threads)), v("lid"))),
      { kind: "exit", index: v("q"), limit: quads, unit: "thread" },
      letS("row", div(v("q"), U(ncols / 4))),
      letS("j0", mul(mod(v("q"), U(ncols / 4)), U(4))),
      letS("c", div(v("row"), U(khw))),
      letS("dh", sub(mul(toI32(div(mod(v("row"), U(khw)), U(g.kw))), I(g.dh)), I(g.pad.top))),
      letS("dw", sub(mul(toI32(mod(v("row"), U(g.kw))), I(g.dw)), I(g.pad.left))),
      ...lanes,
      store("cols", v("q"), {
        kind: "vec",
        parts: [0, 1, 2, 3].map((e) => name(`v${e}`, "f32")),
        type: "vec4<f32>",
      }),
    ],
  });
}

/**
 * col2im of one chunk for the input gradient: `dx[n, c, ih, iw] = Σ_{kh, kw} cols[(c*KH + kh)*KW
 * + kw][(n - n0)*OH*OW + oh*OW + ow]` over the taps with `oh*sh - top + kh*dh = ih` (likewise
 * for the width), then the epilogue; one output element per thread.
 */
function col2imStep(
  g: Conv2dGeometry,
  chunk: ImageChunk,
  spec: Conv2dSpec,
  label: string,
): KernelSource {
  const hw = g.h * g.w;
  const ohw = g.oh * g.ow;
  const ncols = chunk.images * ohw;
  const total = chunk.images * g.c * hw;
  const threads = 64;
  const sum = name("sum", "f32");
  const tap = (row: Expr, oh: Expr, ow: Expr) =>
    loadF(
      "cols",
      add(add(add(mul(row, U(ncols)), v("jb")), mul(toU32(oh), U(g.ow))), toU32(ow)),
    );
  const taps: Stmt[] = [];
  if (g.dh === 1 && g.dw === 1) {
    // Without dilation, the taps reaching input row ih are kh = (ih + top) % sh + t*sh with
    // oh = (ih + top) / sh - t: only ceil(KH/sh) candidates per axis (2 of 3 for a 3x3 kernel
    // with stride 2), with no division in the loop, and branch-free (select) loads.
    const th = Math.ceil(g.kh / g.sh);
    const tw = Math.ceil(g.kw / g.sw);
    for (let a = 0; a < th; a++) {
      taps.push(
        letS(`khA${a}`, add(v("kh0"), U(a * g.sh))),
        letS(`ohA${a}`, sub(si("ohb"), I(a))),
        letS(`okh${a}`, bin("&&", lt(v(`khA${a}`), U(g.kh)), inRange(si(`ohA${a}`), g.oh))),
      );
    }
    for (let b = 0; b < tw; b++) {
      taps.push(
        letS(`kwB${b}`, add(v("kw0"), U(b * g.sw))),
        letS(`owB${b}`, sub(si("owb"), I(b))),
        letS(`okw${b}`, bin("&&", lt(v(`kwB${b}`), U(g.kw)), inRange(si(`owB${b}`), g.ow))),
      );
    }
    for (let a = 0; a < th; a++) {
      for (let b = 0; b < tw; b++) {
        const row = add(add(v("cb"), mul(v(`khA${a}`), U(g.kw))), v(`kwB${b}`));
        const ok = bin("&&", name(`okh${a}`, "bool"), name(`okw${b}`, "bool"));
        taps.push(
          assign("sum", add(sum, select(ok, tap(row, si(`ohA${a}`), si(`owB${b}`)), F0))),
        );
      }
    }
  } else {
    for (let kh = 0; kh < g.kh; kh++) {
      const th = sub(si("ihp"), I(kh * g.dh));
      const ohE = div(th, I(g.sh));
      const condH = [inRange(ohE, g.oh)];
      if (g.sh > 1) condH.push(bin(">=", th, I(0)), bin("==", mod(th, I(g.sh)), I(0)));
      for (let kw = 0; kw < g.kw; kw++) {
        const tw = sub(si("iwp"), I(kw * g.dw));
        const owE = div(tw, I(g.sw));
        const cond = [...condH, inRange(owE, g.ow)];
        if (g.sw > 1) cond.push(bin(">=", tw, I(0)), bin("==", mod(tw, I(g.sw)), I(0)));
        const row = add(v("cb"), U(kh * g.kw + kw));
        taps.push(...when(allOf(cond, true), [assign("sum", add(sum, tap(row, ohE, owE)))]));
      }
    }
  }
  return irStep("col2im", {
    epilogue: spec.epilogue,
    comment: `col2im of images ${chunk.n0}..${chunk.n0 + chunk.images - 1} for ${label}`,
    bindings: [
      { name: "cols", type: "f32" },
      ...epilogueInputs(spec.epilogue),
      { name: "out", type: "f32", write: true, split: spec.split?.out },
    ],
    threads,
    grid: foldGrid(Math.ceil(total / threads)),
    body: [
      letS("e", add(mul(v("lin"), U(threads)), v("lid"))),
      { kind: "exit", index: v("e"), limit: total, unit: "thread" },
      letS("nl", div(v("e"), U(g.c * hw))),
      letS("c", mod(div(v("e"), U(hw)), U(g.c))),
      letS("p", mod(v("e"), U(hw))),
      letS("ihp", add(toI32(div(v("p"), U(g.w))), I(g.pad.top))),
      letS("iwp", add(toI32(mod(v("p"), U(g.w))), I(g.pad.left))),
      letS("cb", mul(v("c"), U(g.kh * g.kw))),
      letS("kh0", mod(toU32(si("ihp")), U(g.sh))),
      letS("ohb", div(si("ihp"), I(g.sh))),
      letS("kw0", mod(toU32(si("iwp")), U(g.sw))),
      letS("owb", div(si("iwp"), I(g.sw))),
      letS("jb", mul(v("nl"), U(ohw))),
      varS("sum", F0),
      ...taps,
      ...epilogueStore(spec.epilogue, "out", add(U(chunk.n0 * g.c * hw), v("e")), sum),
    ],
  });
}

/** Forward convolution through `cols` (see the section comment). */
function explicitForward(spec: Conv2dSpec, g: Conv2dGeometry, chunks: ImageChunk[]): KernelPlan {
  const ohw = g.oh * g.ow;
  const k = g.c * g.kh * g.kw;
  const label = describe(g, "forward, explicit columns");
  const steps: KernelSource[] = [];
  const scratch: ScratchBuffer[] = [];
  for (const chunk of chunks) {
    const ncols = chunk.images * ohw;
    steps.push(im2colStep(g, chunk, spec.split?.x, label));
    scratch.push({ name: "cols", size: k * ncols * 4 });
    const { tile, splitK } = chooseGemmConfig({ batch: 1, m: g.o, n: ncols, k });
    const plan = gemmPlan({
      batch: 1,
      m: g.o,
      n: ncols,
      k,
      a: {
        binding: "w",
        vec: k % 4 === 0 ? "k" : "none",
        scalarOrder: "k",
        index: (t, kk) => add(mul(t, U(k)), kk),
      },
      b: { binding: "cols", vec: "tile", index: (t, kk) => add(mul(kk, U(ncols)), t) },
      bFirst: true,
      outIndex: (r, c) =>
        add(
          add(mul(add(U(chunk.n0), div(c, U(ohw))), U(g.o * ohw)), mul(r, U(ohw))),
          mod(c, U(ohw)),
        ),
      outSize: g.n * g.o * ohw,
      tile,
      // The summing pass of split-K covers the whole output, so only a single chunk splits.
      splits: chunks.length > 1 ? 1 : splitK,
      epilogue: spec.epilogue,
      split: spec.split,
      label: `${label}, images ${chunk.n0}..${chunk.n0 + chunk.images - 1}`,
    });
    steps.push(...plan.steps);
    scratch.push(...plan.scratch);
  }
  return { algorithm: "explicit", steps, scratch: mergeScratch(scratch) };
}

/** Input gradient through `cols = wᵀ · dy` and col2im (see the section comment). */
function explicitBackwardInput(
  spec: Conv2dSpec,
  g: Conv2dGeometry,
  chunks: ImageChunk[],
): KernelPlan {
  const ohw = g.oh * g.ow;
  const kc = g.c * g.kh * g.kw;
  const label = describe(g, "backward input, explicit columns");
  const steps: KernelSource[] = [];
  const scratch: ScratchBuffer[] = [];
  for (const chunk of chunks) {
    const ncols = chunk.images * ohw;
    const wVec = kc % 4 === 0;
    const { tile } = chooseGemmConfig({ batch: 1, m: kc, n: ncols, k: g.o }, {
      tmMultipleOf4: wVec,
    });
    const name = `${label}, images ${chunk.n0}..${chunk.n0 + chunk.images - 1}`;
    const plan = gemmPlan({
      batch: 1,
      m: kc,
      n: ncols,
      k: g.o,
      a: {
        binding: "w",
        vec: wVec && tile.tm % 4 === 0 ? "tile" : "none",
        index: (t, kk) => add(mul(kk, U(kc)), t),
      },
      b: {
        binding: "dy",
        vec: "tile",
        index: (t, kk) =>
          add(
            add(mul(add(U(chunk.n0), div(t, U(ohw))), U(g.o * ohw)), mul(kk, U(ohw))),
            mod(t, U(ohw)),
          ),
      },
      bFirst: true,
      outIndex: (r, c) => add(mul(r, U(ncols)), c),
      outSize: kc * ncols,
      outBinding: "cols",
      tile,
      splits: 1,
      label: name,
    });
    steps.push(...plan.steps, col2imStep(g, chunk, spec, name));
    scratch.push({ name: "cols", size: kc * ncols * 4 });
  }
  return { algorithm: "explicit", steps, scratch: mergeScratch(scratch) };
}

/** Weight gradient through `dw = dy · colsᵀ` (see the section comment). */
function explicitBackwardFilter(
  spec: Conv2dSpec,
  g: Conv2dGeometry,
  chunks: ImageChunk[],
): KernelPlan {
  const ohw = g.oh * g.ow;
  const kc = g.c * g.kh * g.kw;
  const outSize = g.o * kc;
  const label = describe(g, "backward filter, explicit columns");
  const parts = chunks.map((chunk) => {
    const ncols = chunk.images * ohw;
    const auto = chooseGemmConfig({ batch: 1, m: g.o, n: kc, k: ncols });
    // Per-thread reductions of at most 16,384 terms (see conv2dBackwardFilterKernel).
    const want = Math.max(auto.splitK, Math.ceil(ncols / 16384));
    return { chunk, ncols, tile: auto.tile, splits: splitChunks(ncols, 4, want)[0] };
  });
  const total = parts.reduce((s, p) => s + p.splits, 0);
  const steps: KernelSource[] = [];
  const scratch: ScratchBuffer[] = [];
  let offset = 0;
  for (const { chunk, ncols, tile, splits } of parts) {
    steps.push(im2colStep(g, chunk, spec.split?.x, label));
    scratch.push({ name: "cols", size: kc * ncols * 4 });
    const plan = gemmPlan({
      batch: 1,
      m: g.o,
      n: kc,
      k: ncols,
      a: {
        binding: "dy",
        vec: "k",
        index: (t, kk) =>
          add(
            add(mul(add(U(chunk.n0), div(kk, U(ohw))), U(g.o * ohw)), mul(t, U(ohw))),
            mod(kk, U(ohw)),
          ),
      },
      b: { binding: "cols", vec: "k", index: (t, kk) => add(mul(t, U(ncols)), kk) },
      bFirst: true,
      outIndex: (r, c) => add(mul(r, U(kc)), c),
      outSize,
      tile,
      splits,
      ...(total > 1 ? { splitOffset: offset, splitTotal: total } : {}),
      epilogue: spec.epilogue,
      label: `${label}, images ${chunk.n0}..${chunk.n0 + chunk.images - 1}`,
    });
    steps.push(...plan.steps);
    scratch.push(...plan.scratch);
    offset += splits;
  }
  if (total > 1) {
    steps.push(splitReduceKernel(outSize, total, spec.epilogue, label, { out: spec.split?.out }));
  }
  return { algorithm: "explicit", steps, scratch: mergeScratch(scratch) };
}
