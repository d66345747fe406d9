/**
 * 2-D convolution kernel generators (NCHW input, OIHW weights) as implicit GEMMs: the
 * im2col matrix is never materialised, its elements are gathered inside the tiled GEMM's
 * loads (see `_gemm.ts`). Forward, gradient of the input, and gradient of the weights (a
 * reduction over `batch * outH * outW`, split into chunks with a second summing pass when
 * the output alone cannot fill the adapter).
 *
 * @module
 */
import type { BindingSplit, Epilogue, KernelPlan } from "./types.ts";
import {
  checkTile,
  chooseGemmConfig,
  type GemmOperand,
  gemmPlan,
  type GemmTile,
  type KernelProfile,
} from "./_gemm.ts";
import { checkInts } from "./_wgsl.ts";

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
   * Bindings (the kernel's operand names, `out`) bound as several parts, for tensors larger
   * than one storage binding (see {@linkcode BindingSplit}).
   */
  split?: Readonly<Record<string, BindingSplit>>;
}

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
 * const g = conv2dGeometry({
 *   batch: 1, inChannels: 3, height: 32, width: 32, outChannels: 8, kernelH: 3, kernelW: 3,
 *   stride: 2, padding: 1,
 * });
 * console.assert(g.oh === 16 && g.ow === 16);
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

function u(x: number): string {
  return `${x}u`;
}

function i(x: number): string {
  return `${x}i`;
}

/** `[0, size)` bounds test of an i32 expression, as one unsigned comparison. */
function inRange(e: string, size: number): string {
  return `u32(${e}) < ${u(size)}`;
}

function config(
  spec: Conv2dSpec,
  shape: { batch: number; m: number; n: number; k: number },
  minSplit = 1,
): { tile: GemmTile; splits: number } {
  const auto = chooseGemmConfig(shape, { profile: spec.profile });
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
 * const plan = conv2dForwardKernel({
 *   batch: 2, inChannels: 4, height: 8, width: 8, outChannels: 8, kernelH: 3, kernelW: 3,
 *   padding: 1,
 * });
 * console.assert(plan.steps[0].bindings.join() === "x,w,out");
 * ```
 */
export function conv2dForwardKernel(spec: Conv2dSpec): KernelPlan {
  const g = conv2dGeometry(spec);
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
    index: (t, kk) => `(bz * ${u(og)} + ${t}) * ${u(k)} + ${kk}`,
  };
  const x: GemmOperand = {
    binding: "x",
    vec: "none",
    scalarOrder: "tile",
    hoist: (t, s) =>
      [
        `let nb_${s} = ${t} / ${u(ohw)};`,
        `let p_${s} = ${t} % ${u(ohw)};`,
        `let ih0_${s} = i32(p_${s} / ${u(g.ow)}) * ${i(g.sh)} - ${i(g.pad.top)};`,
        `let iw0_${s} = i32(p_${s} % ${u(g.ow)}) * ${i(g.sw)} - ${i(g.pad.left)};`,
        `let xb_${s} = (nb_${s} * ${u(g.c)} + bz * ${u(cg)}) * ${u(g.h * g.w)};`,
      ].join("\n  "),
    cond: (_t, kk, s) =>
      `${inRange(`ih0_${s} + ${dec(kk, "kh")} * ${i(g.dh)}`, g.h)} && ` +
      inRange(`iw0_${s} + ${dec(kk, "kw")} * ${i(g.dw)}`, g.w),
    index: (_t, kk, s) =>
      `xb_${s} + ${dec(kk, "c")} * ${u(g.h * g.w)} + ` +
      `u32(ih0_${s} + ${dec(kk, "kh")} * ${i(g.dh)}) * ${u(g.w)} + ` +
      `u32(iw0_${s} + ${dec(kk, "kw")} * ${i(g.dw)})`,
  };
  // k = (c, kh, kw) decoding; the compiler shares it between the columns of a thread.
  function dec(kk: string, part: "c" | "kh" | "kw"): string {
    if (part === "c") return `(${kk} / ${u(khw)})`;
    if (part === "kh") return `i32((${kk} % ${u(khw)}) / ${u(g.kw)})`;
    return `i32(${kk} % ${u(g.kw)})`;
  }
  return gemmPlan({
    batch: g.groups,
    m,
    n,
    k,
    a: w,
    b: x,
    bFirst: true,
    outIndex: (r, c) =>
      `((${c}) / ${u(ohw)} * ${u(g.o)} + bz * ${u(og)} + ${r}) * ${u(ohw)} + (${c}) % ${u(ohw)}`,
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
 * const plan = conv2dBackwardInputKernel({
 *   batch: 2, inChannels: 4, height: 8, width: 8, outChannels: 8, kernelH: 3, kernelW: 3,
 *   stride: 2, padding: 1,
 * });
 * console.assert(plan.steps[0].bindings.join() === "dy,w,out");
 * ```
 */
export function conv2dBackwardInputKernel(spec: Conv2dSpec): KernelPlan {
  const g = conv2dGeometry(spec);
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
      `((bz * ${u(og)} + ${kk} / ${u(khw)}) * ${u(cg)} + ${t}) * ${u(khw)} + ${kk} % ${u(khw)}`,
  };
  const kh = (kk: string) => `i32((${kk} % ${u(khw)}) / ${u(g.kw)})`;
  const kw = (kk: string) => `i32(${kk} % ${u(g.kw)})`;
  // th = oh * sh for the tap (kh); valid when divisible by the stride and inside the output.
  const th = (kk: string, s: string) => `(ihp_${s} - ${kh(kk)} * ${i(g.dh)})`;
  const tw = (kk: string, s: string) => `(iwp_${s} - ${kw(kk)} * ${i(g.dw)})`;
  const dy: GemmOperand = {
    binding: "dy",
    vec: "none",
    scalarOrder: "tile",
    hoist: (t, s) =>
      [
        `let nb_${s} = ${t} / ${u(hw)};`,
        `let p_${s} = ${t} % ${u(hw)};`,
        `let ihp_${s} = i32(p_${s} / ${u(g.w)}) + ${i(g.pad.top)};`,
        `let iwp_${s} = i32(p_${s} % ${u(g.w)}) + ${i(g.pad.left)};`,
        `let db_${s} = (nb_${s} * ${u(g.o)} + bz * ${u(og)}) * ${u(ohw)};`,
      ].join("\n  "),
    cond: (_t, kk, s) => {
      const parts = [
        inRange(g.sh === 1 ? th(kk, s) : `${th(kk, s)} / ${i(g.sh)}`, g.oh),
        inRange(g.sw === 1 ? tw(kk, s) : `${tw(kk, s)} / ${i(g.sw)}`, g.ow),
      ];
      // i32 division truncates toward zero, so also require th >= 0 (and divisibility).
      if (g.sh > 1) parts.push(`${th(kk, s)} >= 0i`, `${th(kk, s)} % ${i(g.sh)} == 0i`);
      if (g.sw > 1) parts.push(`${tw(kk, s)} >= 0i`, `${tw(kk, s)} % ${i(g.sw)} == 0i`);
      return parts.join(" && ");
    },
    index: (_t, kk, s) => {
      const ohE = g.sh === 1 ? th(kk, s) : `${th(kk, s)} / ${i(g.sh)}`;
      const owE = g.sw === 1 ? tw(kk, s) : `${tw(kk, s)} / ${i(g.sw)}`;
      return `db_${s} + (${kk} / ${u(khw)}) * ${u(ohw)} + u32(${ohE}) * ${u(g.ow)} + u32(${owE})`;
    },
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
      `((${c}) / ${u(hw)} * ${u(g.c)} + bz * ${u(cg)} + ${r}) * ${u(hw)} + (${c}) % ${u(hw)}`,
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
 * const plan = conv2dBackwardFilterKernel({
 *   batch: 16, inChannels: 64, height: 56, width: 56, outChannels: 64, kernelH: 3, kernelW: 3,
 *   padding: 1,
 * });
 * console.assert(plan.steps.length === 2 && plan.scratch[0].name === "partial");
 * ```
 */
export function conv2dBackwardFilterKernel(spec: Conv2dSpec): KernelPlan {
  const g = conv2dGeometry(spec);
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
      `((${kk} / ${u(ohw)}) * ${u(g.o)} + bz * ${u(og)} + ${t}) * ${u(ohw)} + ${kk} % ${u(ohw)}`,
  };
  const oh = (kk: string) => `i32((${kk} % ${u(ohw)}) / ${u(g.ow)})`;
  const ow = (kk: string) => `i32(${kk} % ${u(g.ow)})`;
  const ih = (kk: string, s: string) => `(${oh(kk)} * ${i(g.sh)} + kh_${s})`;
  const iw = (kk: string, s: string) => `(${ow(kk)} * ${i(g.sw)} + kw_${s})`;
  const x: GemmOperand = {
    binding: "x",
    vec: "none",
    scalarOrder: "k",
    hoist: (t, s) =>
      [
        `let xc_${s} = (bz * ${u(cg)} + ${t} / ${u(khw)}) * ${u(hw)};`,
        `let kh_${s} = i32((${t} % ${u(khw)}) / ${u(g.kw)}) * ${i(g.dh)} - ${i(g.pad.top)};`,
        `let kw_${s} = i32(${t} % ${u(g.kw)}) * ${i(g.dw)} - ${i(g.pad.left)};`,
      ].join("\n  "),
    cond: (_t, kk, s) => `${inRange(ih(kk, s), g.h)} && ${inRange(iw(kk, s), g.w)}`,
    index: (_t, kk, s) =>
      `(${kk} / ${u(ohw)}) * ${u(g.c * hw)} + xc_${s} + u32(${ih(kk, s)}) * ${u(g.w)} + ` +
      `u32(${iw(kk, s)})`,
  };
  return gemmPlan({
    batch: g.groups,
    m,
    n,
    k,
    a: dy,
    b: x,
    bFirst: true,
    outIndex: (r, c) => `(bz * ${u(og)} + ${r}) * ${u(n)} + ${c}`,
    outSize: g.o * n,
    tile,
    splits,
    epilogue: spec.epilogue,
    split: spec.split,
    label: describe(g, "backward filter"),
  });
}
