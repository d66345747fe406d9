/**
 * 3x3, stride-1, padding-1 convolutions on llvmpipe, by rows: each thread computes `tm` output
 * channels at `tn` consecutive pixels of one image, four pixels per `vec4`. For every input
 * channel and kernel row it loads the input rows under its pixels as aligned `vec4`s once and
 * reads the three horizontal taps as shifted views of them (neighbour quads give the edges),
 * so one load serves three taps; the weights are first repacked to one `vec4` per four output
 * channels, input channel and tap (every lane used). llvmpipe loads storage one
 * lane at a time, so loads, not multiply-adds, bound its convolutions: measured on T1's shapes
 * (llvmpipe, 2 cores) 1.5-2.4x the implicit GEMM's rate.
 *
 * The same kernel computes the input gradient of such a convolution, which is a convolution of
 * `dy` with the weights transposed and flipped (done by the repacking step).
 *
 * @module
 */
import {
  bin,
  call,
  type Expr,
  lane,
  lit,
  name,
  select,
  splat,
  type Stmt,
} from "../src/kernel/ir.ts";
import type { Epilogue, KernelPlan, KernelSource } from "./types.ts";
import {
  add,
  assign,
  checkInts,
  div,
  epilogueInputs,
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
  withEpilogue,
} from "./_ir.ts";
import { splitReduceKernel } from "./_gemm.ts";

const F0 = lit(0, "f32");
const ZERO4 = splat(F0);
const f4 = (n: string): Expr => name(n, "vec4<f32>");
const vec4 = (parts: Expr[]): Expr => ({ kind: "vec", parts, type: "vec4<f32>" });

/** A convolution the row kernel computes (see {@linkcode conv2dRowsKernel}). */
export interface Conv2dRowsSpec {
  /** Batch size N. */
  batch: number;
  /** Channels of the kernel's input (`x`, or `dy` for the input gradient). */
  inChannels: number;
  /** Channels of the kernel's output. */
  outChannels: number;
  /** Height H (input and output). */
  height: number;
  /** Width W (input and output), a multiple of 4. */
  width: number;
  /**
   * `"forward"`: `out = conv(x, w)` with `w` `[outChannels, inChannels, 3, 3]`. `"backInput"`:
   * `out = dx` from `dy` (`inChannels` channels) and the forward weights `w`
   * `[inChannels, outChannels, 3, 3]`.
   */
  mode: "forward" | "backInput";
  /** Fused epilogue on each output value (`idx`: its flat NCHW index). */
  epilogue?: Epilogue;
  /** Override of the thread tile: output channels and pixels per thread. */
  tile?: { tm: number; tn: number };
}

/** Pixels per thread, most first, in whole quads (see {@linkcode rowsTile}). */
const PIXELS = Array.from({ length: 16 }, (_, i) => 64 - 4 * i);

/**
 * The thread tile of a row convolution, or null when the kernel does not apply: the width must
 * be a multiple of 4, the output channels of 8, and threads of 64, 32 or 16 pixels must cover
 * whole images, whole rows of one image, or equal parts of one row.
 *
 * @example
 * ```ts
 * import { rowsTile } from "./conv2d_rows.ts";
 * rowsTile({ batch: 2, inChannels: 8, outChannels: 16, height: 8, width: 8, mode: "forward" });
 * // { tm: 8, tn: 16 }: a small convolution gets a small tile (quick to compile)
 * ```
 */
export function rowsTile(spec: Conv2dRowsSpec): { tm: number; tn: number } | null {
  const { batch: n, inChannels: c, outChannels: o, height: h, width: w } = spec;
  if (w % 4 !== 0 || o % 8 !== 0) return null;
  // Big tiles run faster but compile slower on llvmpipe (measured, cold shader cache: 16 x 64
  // about 7 s, 16 x 32 about 3 s, 8 x 32 about 1.2 s; 16 x 64 up to 1.8x the rate of 8 x 32 on
  // T1's 8x8 and 4x4 images), so small convolutions get small tiles.
  const macs = n * h * w * o * c * 9;
  const [tm, most] = macs >= 2 ** 28 && o % 16 === 0
    ? [16, 64]
    : macs >= 2 ** 24
    ? [8, 32]
    : [8, 16];
  const tn = PIXELS.find((t) => t <= most && fits(t, n, h, w));
  return tn === undefined ? null : { tm, tn };
}

/**
 * Whether threads of `tn` pixels tile the batch: whole images, whole rows of one image, or
 * equal parts of one row.
 */
function fits(tn: number, n: number, h: number, w: number): boolean {
  const p = h * w;
  if (tn % 4 !== 0 || w % 4 !== 0) return false;
  if (tn % p === 0) return (n * p) % tn === 0;
  return p % tn === 0 && (tn % w === 0 || w % tn === 0);
}

/**
 * The plan of a 3x3, stride-1, padding-1 convolution (or its input gradient) by rows: step 1
 * repacks the weights into the scratch `wq`, step 2 convolves, and with an epilogue step 3
 * applies it in place. Bindings: step 1 `w`, `wq`; step 2 `x` (or `dy`) as
 * `array<vec4<f32>>`, `wq`, `out` as `array<vec4<f32>>` (NCHW); step 3 epilogue inputs `e0..`,
 * `out`. Throws a RangeError when {@linkcode rowsTile} finds no tile.
 *
 * @example
 * ```ts
 * import { conv2dRowsKernel } from "./conv2d_rows.ts";
 * import assert from "node:assert/strict";
 * const plan = conv2dRowsKernel({
 *   batch: 2, inChannels: 8, outChannels: 16, height: 8, width: 8, mode: "forward",
 * });
 * assert(plan.steps[1].bindings.join() === "x,wq,out");
 * ```
 */
export function conv2dRowsKernel(spec: Conv2dRowsSpec): KernelPlan {
  const { batch: n, inChannels: cin, outChannels: cout, height: h, width: w, mode } = spec;
  checkInts("conv2dRowsKernel", {
    batch: n,
    inChannels: cin,
    outChannels: cout,
    height: h,
    width: w,
  });
  if (mode !== "forward" && mode !== "backInput") {
    throw new TypeError(`Invalid conv2dRowsKernel mode "${mode}": expected forward or backInput`);
  }
  const tile = spec.tile ?? rowsTile(spec);
  if (tile === null || tile.tm % 4 !== 0 || cout % tile.tm !== 0 || !fits(tile.tn, n, h, w)) {
    throw new RangeError(
      `conv2dRowsKernel: no row tile${
        spec.tile ? ` ${spec.tile.tm}x${spec.tile.tn}` : ""
      } for ${cout} output channels of ${h}x${w} pixels (expected a width multiple of 4, threads of up to 64 pixels in whole quads covering whole images, whole rows or equal parts of a row, output channels a multiple of 8 and of the tile, itself a multiple of 4)`,
    );
  }
  return {
    algorithm: "rows",
    steps: [
      repackStep(cin, cout, mode),
      rowsStep(spec, tile),
      ...(spec.epilogue === undefined ? [] : [epilogueStep(n * cout * h * w, spec.epilogue)]),
    ],
    scratch: [{ name: "wq", size: cout * cin * 9 * 4 }],
  };
}

/** Step 2 of {@linkcode conv2dRowsKernel}: the convolution, `tm` channels x `tn` pixels a thread. */
function rowsStep(spec: Conv2dRowsSpec, { tm, tn }: { tm: number; tn: number }): KernelSource {
  const { batch: n, inChannels: cin, outChannels: cout, height: h, width: w, mode } = spec;
  const p = h * w;
  const quads = tn / 4;
  const input = mode === "forward" ? "x" : "dy";
  const segs = (n * p) / tn;
  const colGroups = Math.ceil(segs / 8);
  // Where quad q of a thread's pixels lies, relative to its first pixel: a thread covers
  // whole images (tn a multiple of H*W), whole rows of one image (tn a multiple of W) or part
  // of one row (W a multiple of tn).
  const images = tn % p === 0;
  const partRow = !images && tn % w !== 0;
  const quad = (q: number) => {
    const at = images ? (4 * q) % p : 4 * q;
    return {
      img: images ? Math.floor((4 * q) / p) : 0,
      row: partRow ? 0 : Math.floor(at / w),
      ow: partRow ? add(v("ow0"), U(4 * q)) : U(at % w),
      /** The static column (whole images or rows). */
      col: at % w,
      pix: at,
    };
  };
  const sameRow = (a: number, b: number) =>
    b >= 0 && b < quads && quad(a).img === quad(b).img && quad(a).row === quad(b).row;
  const body: Stmt[] = [
    letS("seg", add(mul(mod(v("lin"), U(colGroups)), U(8)), v("lid"))),
    { kind: "exit", index: v("seg"), limit: segs, unit: "thread" },
    letS("ot", div(v("lin"), U(colGroups))),
    letS("o0", mul(v("ot"), U(tm))),
    letS("g0", mul(v("ot"), U(tm / 4))),
    letS("col0", mul(v("seg"), U(tn))),
    letS("nb", div(v("col0"), U(p))),
    letS("p0", mod(v("col0"), U(p))),
    letS("oh0", div(v("p0"), U(w))),
    letS("ow0", mod(v("p0"), U(w))),
    letS("xb", mul(v("nb"), U((cin * p) / 4))),
  ];
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < quads; q++) body.push(varS(`acc_${i}_${q}`, ZERO4));
  }
  const B: Stmt[] = [letS("xc", add(v("xb"), mul(v("ci"), U(p / 4))))];
  for (let kh = 0; kh < 3; kh++) {
    for (let q = 0; q < quads; q++) {
      const { img, row, ow, col } = quad(q);
      const base = add(v("xc"), U((img * cin * p) / 4));
      const xv = `xv_${kh}_${q}`;
      if (images) {
        // Every index is known: rows above or below the image are zeros.
        const ih = row + kh - 1;
        B.push(
          letS(xv, ih < 0 || ih >= h ? ZERO4 : loadV(input, add(base, U((ih * w + col) / 4)))),
        );
        continue;
      }
      const ih = v(`ih_${kh}_${q}`);
      B.push(letS(`ih_${kh}_${q}`, sub(add(v("oh0"), U(row + kh)), U(1))));
      B.push(
        letS(
          xv,
          select(lt(ih, U(h)), loadV(input, add(base, div(add(mul(ih, U(w)), ow), U(4)))), ZERO4),
        ),
      );
    }
    for (let q = 0; q < quads; q++) {
      const ih = v(`ih_${kh}_${q}`);
      const ok = lt(ih, U(h));
      const at = (off: Expr) => loadV(input, add(v("xc"), div(add(mul(ih, U(w)), off), U(4))));
      const x = f4(`xv_${kh}_${q}`);
      const left = sameRow(q, q - 1)
        ? lane(f4(`xv_${kh}_${q - 1}`), 3)
        : partRow
        ? select(bin("&&", bin(">", v("ow0"), U(0)), ok), lane(at(sub(v("ow0"), U(1))), 3), F0)
        : F0;
      const right = sameRow(q, q + 1) ? lane(f4(`xv_${kh}_${q + 1}`), 0) : partRow
        ? select(
          bin("&&", lt(add(v("ow0"), U(tn)), U(w)), ok),
          lane(at(add(v("ow0"), U(tn))), 0),
          F0,
        )
        : F0;
      B.push(letS(`xl_${kh}_${q}`, vec4([left, lane(x, 0), lane(x, 1), lane(x, 2)])));
      B.push(letS(`xr_${kh}_${q}`, vec4([lane(x, 1), lane(x, 2), lane(x, 3), right])));
    }
    // The weights of four output channels at one tap are one vec4 (no lane wasted).
    for (let g = 0; g < tm / 4; g++) {
      for (let kw = 0; kw < 3; kw++) {
        const at = mul(add(mul(add(v("g0"), U(g)), U(cin)), v("ci")), U(9));
        B.push(letS(`w_${kh}_${g}_${kw}`, loadV("wq", add(at, U(kh * 3 + kw)))));
      }
    }
    for (let i = 0; i < tm; i++) {
      for (let q = 0; q < quads; q++) {
        const acc = f4(`acc_${i}_${q}`);
        const taps = ["xl", "xv", "xr"].map((x, kw) =>
          mul(lane(f4(`w_${kh}_${Math.floor(i / 4)}_${kw}`), i % 4), f4(`${x}_${kh}_${q}`))
        );
        B.push(assign(`acc_${i}_${q}`, taps.reduce(add, acc)));
      }
    }
  }
  body.push(loop("ci", U(0), U(cin), 1, B));
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < quads; q++) {
      const { img, pix } = quad(q);
      const at = add(
        add(mul(add(add(mul(add(v("nb"), U(img)), U(cout)), v("o0")), U(i)), U(p)), v("p0")),
        U(pix),
      );
      body.push(store("out", div(at, U(4)), f4(`acc_${i}_${q}`)));
    }
  }
  return irStep("conv2dRows", {
    comment:
      `conv2d 3x3 by rows (${mode}): ${input} [${n}, ${cin}, ${h}, ${w}] -> out [${n}, ${cout}, ${h}, ${w}], ${tm} channels x ${tn} pixels per thread`,
    bindings: [
      { name: input, type: "vec4<f32>" },
      { name: "wq", type: "vec4<f32>" },
      { name: "out", type: "vec4<f32>", write: true },
    ],
    threads: 8,
    grid: foldGrid(colGroups * (cout / tm)),
    body,
  });
}

/**
 * The epilogue as a pass of its own over `out` (in place, four values per thread). Inlined into
 * the convolution it would be compiled once per accumulator (tm x tn times): with batch norm and
 * PReLU at inference reading per-channel inputs, llvmpipe took over two minutes to compile such
 * a kernel (measured), against milliseconds for this pass.
 */
function epilogueStep(size: number, epilogue: Epilogue): KernelSource {
  const items = size / 4;
  const lanes: Stmt[] = [0, 1, 2, 3].flatMap((j) => [
    varS(`r${j}`, F0),
    ...withEpilogue(
      epilogue,
      add(mul(v("i"), U(4)), U(j)),
      lane(f4("v"), j),
      (x) => assign(`r${j}`, x),
    ),
  ]);
  return irStep("conv2dRowsEpilogue", {
    epilogue,
    comment: "conv2d 3x3 by rows: epilogue",
    bindings: [...epilogueInputs(epilogue), { name: "out", type: "vec4<f32>", write: true }],
    threads: 64,
    grid: foldGrid(Math.ceil(items / 64)),
    body: [
      letS("i", add(mul(v("lin"), U(64)), v("lid"))),
      { kind: "exit", index: v("i"), limit: items, unit: "thread" },
      letS("v", loadV("out", v("i"))),
      ...lanes,
      store("out", v("i"), vec4([0, 1, 2, 3].map((j) => name(`r${j}`, "f32")))),
    ],
  });
}

/**
 * Step 1: `wq[((g * cin + ci) * 3 + kh) * 3 + kw]` holds the weights of the kernel's output
 * channels `4g .. 4g + 3` at input channel `ci` and tap `(kh, kw)`, one `vec4`; for the input
 * gradient the weights are transposed and flipped (`w'[c, o, kh, kw] = w[o, c, 2 - kh, 2 - kw]`).
 */
function repackStep(cin: number, cout: number, mode: "forward" | "backInput"): KernelSource {
  const total = (cout / 4) * cin * 9;
  const src = (j: number) => {
    const co = add(mul(v("g"), U(4)), U(j));
    return loadF(
      "w",
      mode === "forward"
        ? add(mul(add(mul(add(mul(co, U(cin)), v("ci")), U(3)), v("kh")), U(3)), v("kw"))
        : add(
          mul(sub(add(mul(add(mul(v("ci"), U(cout)), co), U(3)), U(2)), v("kh")), U(3)),
          sub(U(2), v("kw")),
        ),
    );
  };
  return irStep("conv2dRowsRepack", {
    comment: `conv2d 3x3 by rows: weights repacked (${mode})`,
    bindings: [{ name: "w", type: "f32" }, { name: "wq", type: "vec4<f32>", write: true }],
    threads: 64,
    grid: foldGrid(Math.ceil(total / 64)),
    body: [
      letS("i", add(mul(v("lin"), U(64)), v("lid"))),
      { kind: "exit", index: v("i"), limit: total, unit: "thread" },
      letS("g", div(v("i"), U(cin * 9))),
      letS("ci", mod(div(v("i"), U(9)), U(cin))),
      letS("kh", mod(div(v("i"), U(3)), U(3))),
      letS("kw", mod(v("i"), U(3))),
      store("wq", v("i"), vec4([src(0), src(1), src(2), src(3)])),
    ],
  });
}

/** A weight gradient the row kernel computes (see {@linkcode conv2dRowsFilterKernel}). */
export interface Conv2dRowsFilterSpec {
  /** Batch size N. */
  batch: number;
  /** Input channels C of the convolution. */
  inChannels: number;
  /** Output channels O of the convolution. */
  outChannels: number;
  /** Height H (input and output). */
  height: number;
  /** Width W (input and output), a multiple of 4. */
  width: number;
  /** Fused epilogue on each gradient value (`idx`: its flat OIHW index). */
  epilogue?: Epilogue;
  /**
   * Override of the thread tile: output and input channels per thread, and image rows per step
   * (`rh`, default 1; it must divide the height).
   */
  tile?: { to: number; tc: number; rh?: number };
  /** Override of the number of partial sums (workgroup splits of the pixels). */
  splits?: number;
}

/** Threads a weight gradient wants in flight on llvmpipe (lanes x cores, with slack). */
const FILTER_THREADS = 2048;

/**
 * The plan of the weight gradient `dw[o, c, kh, kw] = Σ dy[n, o, oh, ow] · x[n, c, oh+kh-1,
 * ow+kw-1]` of a 3x3, stride-1, padding-1 convolution by rows: each thread sums `to x tc x 9`
 * gradients over a share of the image rows, walking each row four pixels at a time with one
 * `vec4` of `dy` per output channel and one of `x` per input channel and kernel row (the
 * horizontal taps are shifted views of consecutive `vec4`s); a second step adds the shares in
 * a fixed order. Bindings: step 1 `x`, `dy` (`array<vec4<f32>>`), `partial`; step 2 `partial`,
 * epilogue inputs, `out`. Needs `W` a multiple of 4 and the channels multiples of the tile.
 *
 * @example
 * ```ts
 * import { conv2dRowsFilterKernel } from "./conv2d_rows.ts";
 * import assert from "node:assert/strict";
 * const plan = conv2dRowsFilterKernel({
 *   batch: 2, inChannels: 8, outChannels: 16, height: 8, width: 8,
 * });
 * assert(plan.steps[0].bindings.join() === "x,dy,partial");
 * ```
 */
export function conv2dRowsFilterKernel(spec: Conv2dRowsFilterSpec): KernelPlan {
  const { batch: n, inChannels: c, outChannels: o, height: h, width: w } = spec;
  checkInts("conv2dRowsFilterKernel", {
    batch: n,
    inChannels: c,
    outChannels: o,
    height: h,
    width: w,
  });
  const tile: { to: number; tc: number; rh?: number } | null = spec.tile ?? filterTile(spec);
  if (tile === null || w % 4 !== 0 || o % tile.to !== 0 || c % tile.tc !== 0) {
    throw new RangeError(
      `conv2dRowsFilterKernel: no tile for ${o}x${c} channels of width ${w} (expected a width multiple of 4 and channels multiples of the tile)`,
    );
  }
  const { to, tc } = tile;
  const rh = tile.rh ?? 1;
  checkInts("conv2dRowsFilterKernel", { rows: rh });
  if (h % rh !== 0) {
    throw new RangeError(
      `conv2dRowsFilterKernel: ${rh} rows per step do not divide the height ${h}`,
    );
  }
  const rows = (n * h) / rh;
  const tiles = (o / to) * (c / tc);
  const splits = spec.splits ??
    Math.max(1, Math.min(rows, Math.ceil(FILTER_THREADS / tiles)));
  checkInts("conv2dRowsFilterKernel", { splits });
  const size = o * c * 9;
  const p = h * w;
  const qw = w / 4;
  const threads = tiles * splits;
  const acc = (i: number, j: number, kh: number, kw: number) => `a_${i}_${j}_${kh}_${kw}`;
  const body: Stmt[] = [
    letS("t", add(mul(v("lin"), U(8)), v("lid"))),
    { kind: "exit", index: v("t"), limit: threads, unit: "thread" },
    letS("tile", mod(v("t"), U(tiles))),
    letS("sp", div(v("t"), U(tiles))),
    letS("o0", mul(div(v("tile"), U(c / tc)), U(to))),
    letS("c0", mul(mod(v("tile"), U(c / tc)), U(tc))),
  ];
  for (let i = 0; i < to; i++) {
    for (let j = 0; j < tc; j++) {
      for (let kh = 0; kh < 3; kh++) {
        for (let kw = 0; kw < 3; kw++) body.push(varS(acc(i, j, kh, kw), F0));
      }
    }
  }
  // A step covers `rh` output rows of one image, which read rh + 2 input rows (k = 0 is the row
  // above the first): each input row loaded serves up to three kernel rows.
  const R: Stmt[] = [
    letS("nb", div(v("r"), U(h / rh))),
    letS("oh", mul(mod(v("r"), U(h / rh)), U(rh))),
    letS("dyb", add(mul(add(mul(v("nb"), U(o)), v("o0")), U(p / 4)), mul(v("oh"), U(qw)))),
  ];
  // The x row k of channel c0 + j: its start (in vec4s) and whether it exists.
  const ok = (j: number, k: number) => name(`ok_${j}_${k}`, "bool");
  for (let j = 0; j < tc; j++) {
    for (let k = 0; k < rh + 2; k++) {
      const ih = v(`ih_${j}_${k}`);
      R.push(
        letS(`ih_${j}_${k}`, sub(add(v("oh"), U(k)), U(1))),
        letS(`ok_${j}_${k}`, lt(ih, U(h))),
        letS(
          `xb_${j}_${k}`,
          mul(add(mul(add(add(mul(v("nb"), U(c)), v("c0")), U(j)), U(h)), ih), U(qw)),
        ),
        varS(`cur_${j}_${k}`, select(ok(j, k), loadV("x", v(`xb_${j}_${k}`)), ZERO4)),
        varS(`prev_${j}_${k}`, F0),
      );
    }
  }
  const Q: Stmt[] = [letS("more", lt(add(v("q"), U(1)), U(qw)))];
  for (let rr = 0; rr < rh; rr++) {
    for (let i = 0; i < to; i++) {
      Q.push(
        letS(`d_${i}_${rr}`, loadV("dy", add(add(v("dyb"), U((i * p) / 4 + rr * qw)), v("q")))),
      );
    }
  }
  for (let j = 0; j < tc; j++) {
    for (let k = 0; k < rh + 2; k++) {
      const cur = f4(`cur_${j}_${k}`);
      const next = f4(`next_${j}_${k}`);
      const nextAt = add(v(`xb_${j}_${k}`), call("min", [add(v("q"), U(1)), U(qw - 1)]));
      Q.push(
        letS(
          `next_${j}_${k}`,
          select(bin("&&", name("more", "bool"), ok(j, k)), loadV("x", nextAt), ZERO4),
        ),
        letS(
          `s0_${j}_${k}`,
          vec4([name(`prev_${j}_${k}`, "f32"), lane(cur, 0), lane(cur, 1), lane(cur, 2)]),
        ),
        letS(`s2_${j}_${k}`, vec4([lane(cur, 1), lane(cur, 2), lane(cur, 3), lane(next, 0)])),
      );
      const taps = [f4(`s0_${j}_${k}`), cur, f4(`s2_${j}_${k}`)];
      // Output row rr reads this input row at kernel row kh = k - rr.
      for (let rr = Math.max(0, k - 2); rr <= Math.min(rh - 1, k); rr++) {
        for (let i = 0; i < to; i++) {
          const d = f4(`d_${i}_${rr}`);
          taps.forEach((x, kw) => {
            const a = acc(i, j, k - rr, kw);
            Q.push(assign(a, add(name(a, "f32"), call("dot", [d, x]))));
          });
        }
      }
      Q.push(assign(`prev_${j}_${k}`, lane(cur, 3)), assign(`cur_${j}_${k}`, next));
    }
  }
  body.push(loop("r", v("sp"), U(rows), splits, [...R, loop("q", U(0), U(qw), 1, Q)]));
  // With an epilogue the shares always go through the summing pass, which applies it once per
  // value (inlined into this kernel it would be compiled to x tc x 9 times).
  const direct = splits === 1 && spec.epilogue === undefined;
  for (let i = 0; i < to; i++) {
    for (let j = 0; j < tc; j++) {
      for (let kh = 0; kh < 3; kh++) {
        for (let kw = 0; kw < 3; kw++) {
          const at = add(
            mul(add(add(mul(add(v("o0"), U(i)), U(c)), v("c0")), U(j)), U(9)),
            U(kh * 3 + kw),
          );
          const value = name(acc(i, j, kh, kw), "f32");
          body.push(
            direct
              ? store("out", at, value)
              : store("partial", add(mul(v("sp"), U(size)), at), value),
          );
        }
      }
    }
  }
  const first = irStep("conv2dRowsFilter", {
    comment:
      `conv2d 3x3 by rows (weight gradient): x [${n}, ${c}, ${h}, ${w}], dy [${n}, ${o}, ${h}, ${w}], ${to}x${tc} channels per thread${
        rh > 1 ? `, ${rh} rows per step` : ""
      }, ${splits} splits`,
    bindings: [
      { name: "x", type: "vec4<f32>" },
      { name: "dy", type: "vec4<f32>" },
      { name: direct ? "out" : "partial", type: "f32", write: true },
    ],
    threads: 8,
    grid: foldGrid(Math.ceil(threads / 8)),
    body,
  });
  if (direct) return { algorithm: "rowsFilter", steps: [first], scratch: [] };

  return {
    algorithm: "rowsFilter",
    steps: [
      first,
      splitReduceKernel(size, splits, spec.epilogue, "conv2d 3x3 by rows (weight gradient)"),
    ],
    scratch: [{ name: "partial", size: splits * size * 4 }],
  };
}

/**
 * The channel tile of a row weight gradient (`to` output by `tc` input channels per thread), or
 * null when the width is not a multiple of 4 or the output channels not of 4.
 *
 * @example
 * ```ts
 * import { filterTile } from "./conv2d_rows.ts";
 * filterTile({ batch: 2, inChannels: 3, outChannels: 32, height: 32, width: 32 });
 * // { to: 8, tc: 1 }
 * ```
 */
export function filterTile(
  spec: Pick<
    Conv2dRowsFilterSpec,
    "batch" | "inChannels" | "outChannels" | "height" | "width"
  >,
): { to: number; tc: number } | null {
  const { batch: n, inChannels: c, outChannels: o, height: h, width: w } = spec;
  if (w % 4 !== 0) return null;
  // 8 x 4 compiles in about 2.4 s on llvmpipe (cold shader cache), 8 x 2 in 1.2 s, 4 x 2 in
  // 0.9 s (measured); the bigger tiles pay off on big gradients only.
  const big = n * h * w * o * c * 9 >= 2 ** 28;
  const to = [8, 4].find((t) => o % t === 0);
  const tc = [big ? 4 : 2, 2, 1].find((t) => c % t === 0)!;
  return to === undefined ? null : { to, tc };
}
