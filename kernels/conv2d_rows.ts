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
  /**
   * The convolution's stride (default 1). With 2, `height` and `width` are the output's (dy's)
   * and the image (`x`, or `dx` for the input gradient) is `2 * height` by `2 * width`.
   */
  stride?: 1 | 2;
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
  // By sub-pixels (a stride-2 input gradient) a thread keeps four dx values per dy pixel, so
  // it gets fewer pixels; a stride-2 forward thread loads two vec4s per quad, so at most 32
  // (16 x 64 took 13.7 s to compile there, 16 x 32 3.8 s, running as fast: measured on T1).
  const subpixel = spec.stride === 2 && spec.mode === "backInput";
  const [tm, most] = subpixel
    ? [8, macs >= 2 ** 24 ? 16 : 8]
    : macs >= 2 ** 28 && o % 16 === 0
    ? [16, spec.stride === 2 ? 32 : 64]
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
  const stride = spec.stride ?? 1;
  if (stride !== 1 && stride !== 2) {
    throw new RangeError(`conv2dRowsKernel: stride ${stride} (expected 1 or 2)`);
  }
  const size = n * cout * h * w * (mode === "backInput" ? stride * stride : 1);
  const slice = weightSlice(tile.tm, cin);
  const slices = slice === null ? 1 : cout / tile.tm;
  const conv = stride === 2 && mode === "backInput"
    ? subpixelStep(spec, tile, slice !== null)
    : rowsStep(spec, tile, slice !== null);
  return {
    algorithm: "rows",
    steps: [
      repackStep(cin, cout, mode, slice === null ? null : { tm: tile.tm, vec4s: slice / 16 }),
      // With uniform weights, one dispatch per block of output channels, each binding its slice.
      ...Array.from({ length: slices }, (_, t) =>
        slice === null ? conv : { ...conv, ranges: { wq: { offset: t * slice, size: slice } } }),
      ...(spec.epilogue === undefined ? [] : [epilogueStep(size, spec.epilogue)]),
    ],
    scratch: [{ name: "wq", size: slice === null ? cout * cin * 9 * 4 : slices * slice }],
  };
}

/**
 * The bytes of one thread block's weights as a uniform slice (a header `vec4` holding the
 * block's index, then `tm / 4 * cin * 9` `vec4`s, rounded up to 256 bytes, the binding offset
 * alignment), or null when that exceeds 64 KiB, the uniform binding size every WebGPU device
 * offers. Every thread of a dispatch reads the same weights, and llvmpipe loads such a uniform
 * once for all its lanes where it loads storage lane by lane: the C1 forward's rows 16x28
 * kernel ran in 20.7 against 27.9 ms (medians of 9 in one process, 224 of its 896 workgroups).
 */
function weightSlice(tm: number, cin: number): number | null {
  const bytes = Math.ceil((1 + (tm / 4) * cin * 9) / 16) * 256;
  return bytes <= UNIFORM_BYTES ? bytes : null;
}

/** The largest uniform binding every WebGPU device allows (`maxUniformBufferBindingSize`). */
const UNIFORM_BYTES = 65536;

/**
 * The weights binding of a row step, and where the weights of block row `g` (four output
 * channels), input channel `ci` start in it: the whole repacked `wq` in storage, or this
 * dispatch's uniform slice (its block index in the header's first lane).
 */
function weightsOf(sliced: boolean, cin: number, tm: number) {
  return {
    decl: sliced
      ? { name: "wq", type: "vec4<f32>" as const, uniform: weightSlice(tm, cin)! / 16 }
      : { name: "wq", type: "vec4<f32>" as const },
    ot: sliced ? call("bitcast<u32>", [lane(loadV("wq", U(0)), 0)], "u32") : undefined,
    at: (g: number) =>
      sliced
        ? add(mul(add(U(g * cin), v("ci")), U(9)), U(1))
        : mul(add(mul(add(v("g0"), U(g)), U(cin)), v("ci")), U(9)),
  };
}

/**
 * Where a row thread's pixels lie: `tn` consecutive pixels (whole quads) of an `n x h x w`
 * batch, covering whole images (tn a multiple of h*w), whole rows of one image (tn a multiple
 * of w) or part of one row (w a multiple of tn). `head` finds the thread's segment (`seg`,
 * exiting past the last), channel block (`o0`, `g0`: `tm` channels), image `nb` and first pixel
 * (`p0` = `oh0 * w + ow0`); `quad(q)` places quad q relative to that pixel.
 */
function threadPixels(n: number, h: number, w: number, tm: number, tn: number, ot?: Expr) {
  const p = h * w;
  const quads = tn / 4;
  const segs = (n * p) / tn;
  const colGroups = Math.ceil(segs / 8);
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
  const head: Stmt[] = [
    letS("seg", add(mul(ot ? v("lin") : mod(v("lin"), U(colGroups)), U(8)), v("lid"))),
    { kind: "exit", index: v("seg"), limit: segs, unit: "thread" },
    letS("ot", ot ?? div(v("lin"), U(colGroups))),
    letS("o0", mul(v("ot"), U(tm))),
    letS("g0", mul(v("ot"), U(tm / 4))),
    letS("col0", mul(v("seg"), U(tn))),
    letS("nb", div(v("col0"), U(p))),
    letS("p0", mod(v("col0"), U(p))),
    letS("oh0", div(v("p0"), U(w))),
    letS("ow0", mod(v("p0"), U(w))),
  ];
  return { p, quads, colGroups, images, partRow, quad, sameRow, head };
}

/**
 * The taps of input row `oh0 + row + kh - 1` under each quad of a stride-1 row thread (`geo`),
 * channel base `xc`: `t1_kh_q` the row's `vec4`, `t0_kh_q` and `t2_kh_q` its lanes shifted by
 * one pixel right and left, with the neighbouring quads' lanes (or loads, for part of a row) at
 * the edges; rows outside the image are zeros. Taps a kernel does not read are removed by DCE.
 */
function rowTaps(
  B: Stmt[],
  input: string,
  cin: number,
  h: number,
  w: number,
  tn: number,
  geo: ReturnType<typeof threadPixels>,
  kh: number,
): void {
  const { p, quads, images, partRow, quad, sameRow } = geo;
  for (let q = 0; q < quads; q++) {
    const { img, row, ow, col } = quad(q);
    const base = add(v("xc"), U((img * cin * p) / 4));
    const xv = `t1_${kh}_${q}`;
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
    const x = f4(`t1_${kh}_${q}`);
    const left = sameRow(q, q - 1)
      ? lane(f4(`t1_${kh}_${q - 1}`), 3)
      : partRow
      ? select(bin("&&", bin(">", v("ow0"), U(0)), ok), lane(at(sub(v("ow0"), U(1))), 3), F0)
      : F0;
    const right = sameRow(q, q + 1) ? lane(f4(`t1_${kh}_${q + 1}`), 0) : partRow
      ? select(
        bin("&&", lt(add(v("ow0"), U(tn)), U(w)), ok),
        lane(at(add(v("ow0"), U(tn))), 0),
        F0,
      )
      : F0;
    B.push(letS(`t0_${kh}_${q}`, vec4([left, lane(x, 0), lane(x, 1), lane(x, 2)])));
    B.push(letS(`t2_${kh}_${q}`, vec4([lane(x, 1), lane(x, 2), lane(x, 3), right])));
  }
}

/** Step 2 of {@linkcode conv2dRowsKernel}: the convolution, `tm` channels x `tn` pixels a thread. */
function rowsStep(
  spec: Conv2dRowsSpec,
  { tm, tn }: { tm: number; tn: number },
  sliced: boolean,
): KernelSource {
  const { batch: n, inChannels: cin, outChannels: cout, height: h, width: w, mode } = spec;
  const stride = spec.stride ?? 1;
  const weights = weightsOf(sliced, cin, tm);
  const geo = threadPixels(n, h, w, tm, tn, weights.ot);
  const { p, quads, colGroups, images, partRow, quad, sameRow, head } = geo;
  // The input image's plane: with stride 2 the input is 2h x 2w.
  const pin = p * stride * stride;
  const input = mode === "forward" ? "x" : "dy";
  // Stride 2: output pixels 4k..4k+3 read input columns 8k-1..8k+7, two aligned vec4s (x0,
  // x1) and the last lane of the pair to the left; the taps are lanes of them.
  const wi = 2 * w;
  const stridedTaps = (B: Stmt[], kh: number) => {
    for (let q = 0; q < quads; q++) {
      const { img, row, ow, col } = quad(q);
      const base = add(v("xc"), U((img * cin * pin) / 4));
      const x0 = `x0_${kh}_${q}`;
      const x1 = `x1_${kh}_${q}`;
      let left: Expr = F0;
      if (images) {
        const ih = 2 * row + kh - 1;
        const at = (d: number) => loadV(input, add(base, U((ih * wi + 2 * col) / 4 + d)));
        B.push(letS(x0, ih < 0 ? ZERO4 : at(0)), letS(x1, ih < 0 ? ZERO4 : at(1)));
      } else {
        const ih = v(`ih_${kh}_${q}`);
        const ok = lt(ih, U(2 * h));
        B.push(letS(`ih_${kh}_${q}`, sub(add(mul(v("oh0"), U(2)), U(2 * row + kh)), U(1))));
        const at = (d: number) =>
          loadV(input, add(base, add(div(add(mul(ih, U(wi)), mul(ow, U(2))), U(4)), U(d))));
        B.push(letS(x0, select(ok, at(0), ZERO4)), letS(x1, select(ok, at(1), ZERO4)));
        if (partRow && q === 0) {
          left = select(
            bin("&&", bin(">", v("ow0"), U(0)), ok),
            lane(
              loadV(input, sub(add(base, div(add(mul(ih, U(wi)), mul(ow, U(2))), U(4))), U(1))),
              3,
            ),
            F0,
          );
        }
      }
      if (sameRow(q, q - 1)) left = lane(f4(`x1_${kh}_${q - 1}`), 3);
      const [a, b] = [f4(x0), f4(x1)];
      B.push(
        letS(`t0_${kh}_${q}`, vec4([left, lane(a, 1), lane(a, 3), lane(b, 1)])),
        letS(`t1_${kh}_${q}`, vec4([lane(a, 0), lane(a, 2), lane(b, 0), lane(b, 2)])),
        letS(`t2_${kh}_${q}`, vec4([lane(a, 1), lane(a, 3), lane(b, 1), lane(b, 3)])),
      );
    }
  };
  const body: Stmt[] = [
    ...head,
    letS("xb", mul(v("nb"), U((cin * pin) / 4))),
  ];
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < quads; q++) body.push(varS(`acc_${i}_${q}`, ZERO4));
  }
  const B: Stmt[] = [letS("xc", add(v("xb"), mul(v("ci"), U(pin / 4))))];
  for (let kh = 0; kh < 3; kh++) {
    if (stride === 2) stridedTaps(B, kh);
    else rowTaps(B, input, cin, h, w, tn, geo, kh);
    // The weights of four output channels at one tap are one vec4 (no lane wasted).
    for (let g = 0; g < tm / 4; g++) {
      for (let kw = 0; kw < 3; kw++) {
        B.push(letS(`w_${kh}_${g}_${kw}`, loadV("wq", add(weights.at(g), U(kh * 3 + kw)))));
      }
    }
    for (let i = 0; i < tm; i++) {
      for (let q = 0; q < quads; q++) {
        const acc = f4(`acc_${i}_${q}`);
        const taps = [0, 1, 2].map((kw) =>
          mul(lane(f4(`w_${kh}_${Math.floor(i / 4)}_${kw}`), i % 4), f4(`t${kw}_${kh}_${q}`))
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
    comment: `conv2d 3x3 stride ${stride} by rows (${mode}): ${input} [${n}, ${cin}, ${
      h * stride
    }, ${w * stride}] -> out [${n}, ${cout}, ${h}, ${w}], ${tm} channels x ${tn} pixels per thread`,
    bindings: [
      { name: input, type: "vec4<f32>" },
      weights.decl,
      { name: "out", type: "vec4<f32>", write: true },
    ],
    threads: 8,
    grid: foldGrid(colGroups * (sliced ? 1 : cout / tm)),
    body,
  });
}

/**
 * Step 2 of {@linkcode conv2dRowsKernel} for the input gradient of a stride-2 convolution, by
 * sub-pixels: a `dy` quad at row `oh`, columns `4k..4k+3` feeds `dx` rows `2oh` and `2oh + 1`,
 * columns `8k..8k+7`. Even `dx` rows take kernel row 1 of `dy` row `oh`; odd rows kernel row 0
 * of row `oh + 1` and row 2 of row `oh` (likewise for columns), so each thread keeps its `dx`
 * values as even and odd columns of two rows, four `vec4`s a quad, and every multiply-add is
 * one that the gradient needs (no masked taps, no columns buffer). The weights come repacked
 * for the input gradient (transposed and flipped), so tap `(kh, kw)` is read at `(2-kh, 2-kw)`.
 */
function subpixelStep(
  spec: Conv2dRowsSpec,
  { tm, tn }: { tm: number; tn: number },
  sliced: boolean,
): KernelSource {
  const { batch: n, inChannels: cin, outChannels: cout, height: h, width: w } = spec;
  const weights = weightsOf(sliced, cin, tm);
  const geo = threadPixels(n, h, w, tm, tn, weights.ot);
  const { p, quads, colGroups, quad, head } = geo;
  const body: Stmt[] = [...head, letS("xb", mul(v("nb"), U((cin * p) / 4)))];
  const acc = (i: number, q: number, r: number, e: number) => `acc_${i}_${q}_${r}_${e}`;
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < quads; q++) {
      for (const [r, e] of [[0, 0], [0, 1], [1, 0], [1, 1]]) {
        body.push(varS(acc(i, q, r, e), ZERO4));
      }
    }
  }
  // dy rows oh and oh + 1 under each quad (the taps of kernel rows 1 and 2 of a stride-1 row
  // thread: t1 the row, t2 the row shifted by one pixel).
  const B: Stmt[] = [letS("xc", add(v("xb"), mul(v("ci"), U(p / 4))))];
  for (const kh of [1, 2]) rowTaps(B, "dy", cin, h, w, tn, geo, kh);
  const wt = (g: number, kh: number, kw: number) => f4(`w_${g}_${kh}_${kw}`);
  for (let g = 0; g < tm / 4; g++) {
    for (let kh = 0; kh < 3; kh++) {
      for (let kw = 0; kw < 3; kw++) {
        const at = add(weights.at(g), U((2 - kh) * 3 + 2 - kw));
        B.push(letS(`w_${g}_${kh}_${kw}`, loadV("wq", at)));
      }
    }
  }
  for (let i = 0; i < tm; i++) {
    const k = (kh: number, kw: number) => lane(wt(Math.floor(i / 4), kh, kw), i % 4);
    for (let q = 0; q < quads; q++) {
      const [y0, y1, s0, s1] = [`t1_1_${q}`, `t1_2_${q}`, `t2_1_${q}`, `t2_2_${q}`].map(f4);
      const terms: [number, number, [Expr, Expr][]][] = [
        [0, 0, [[k(1, 1), y0]]],
        [0, 1, [[k(1, 0), s0], [k(1, 2), y0]]],
        [1, 0, [[k(0, 1), y1], [k(2, 1), y0]]],
        [1, 1, [[k(0, 0), s1], [k(0, 2), y1], [k(2, 0), s0], [k(2, 2), y0]]],
      ];
      for (const [r, e, ts] of terms) {
        const a = acc(i, q, r, e);
        B.push(assign(a, ts.map(([x, y]) => mul(x, y)).reduce(add, f4(a))));
      }
    }
  }
  body.push(loop("ci", U(0), U(cin), 1, B));
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < quads; q++) {
      const { img, row, ow } = quad(q);
      for (const r of [0, 1]) {
        const [ev, od] = [f4(acc(i, q, r, 0)), f4(acc(i, q, r, 1))];
        // The dx plane holds 4p values, p vec4s; row dxRow, column 2 * ow is vec4
        // (dxRow * 2w + 2 * ow) / 4 = (dxRow * w + ow) / 2 of it.
        const dxRow = add(mul(add(v("oh0"), U(row)), U(2)), U(r));
        const vi = add(
          mul(add(mul(add(v("nb"), U(img)), U(cout)), add(v("o0"), U(i))), U(p)),
          div(add(mul(dxRow, U(w)), ow), U(2)),
        );
        body.push(
          store("out", vi, vec4([lane(ev, 0), lane(od, 0), lane(ev, 1), lane(od, 1)])),
          store("out", add(vi, U(1)), vec4([lane(ev, 2), lane(od, 2), lane(ev, 3), lane(od, 3)])),
        );
      }
    }
  }
  return irStep("conv2dSubpixel", {
    comment:
      `conv2d 3x3 stride 2 input gradient by sub-pixels: dy [${n}, ${cin}, ${h}, ${w}] -> dx [${n}, ${cout}, ${
        2 * h
      }, ${2 * w}], ${tm} channels x ${tn} dy pixels per thread`,
    bindings: [
      { name: "dy", type: "vec4<f32>" },
      weights.decl,
      { name: "out", type: "vec4<f32>", write: true },
    ],
    threads: 8,
    grid: foldGrid(colGroups * (sliced ? 1 : cout / tm)),
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
 * With `slices`, each block of `tm` output channels gets a uniform slice of `vec4s`: its index
 * (as bits, in lane 0) then its weights in that order (see {@linkcode weightSlice}).
 */
function repackStep(
  cin: number,
  cout: number,
  mode: "forward" | "backInput",
  slices: { tm: number; vec4s: number } | null,
): KernelSource {
  const total = (cout / 4) * cin * 9;
  // Sliced: block t's vec4s start at t * vec4s, its index first, then its weights.
  const per = slices === null ? 0 : (slices.tm / 4) * cin * 9;
  const dst = slices === null
    ? v("i")
    : add(add(mul(div(v("i"), U(per)), U(slices.vec4s)), mod(v("i"), U(per))), U(1));
  const headers = slices === null ? [] : [{
    kind: "if" as const,
    cond: lt(v("i"), U(cout / slices.tm)),
    body: [
      store(
        "wq",
        mul(v("i"), U(slices.vec4s)),
        vec4([call("bitcast<f32>", [v("i")], "f32"), F0, F0, F0]),
      ),
    ],
  }];
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
      store("wq", dst, vec4([src(0), src(1), src(2), src(3)])),
      ...headers,
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
  /**
   * The convolution's stride (default 1). With 2, `height` and `width` are dy's and `x` is
   * `2 * height` by `2 * width`.
   */
  stride?: 1 | 2;
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
  const stride = spec.stride ?? 1;
  if (stride !== 1 && stride !== 2) {
    throw new RangeError(`conv2dRowsFilterKernel: stride ${stride} (expected 1 or 2)`);
  }
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
  // above the first; with stride 2, 2rh + 1 rows): each input row loaded serves up to three
  // kernel rows.
  const hi = h * stride;
  const qwi = qw * stride;
  const inRows = stride === 1 ? rh + 2 : 2 * rh + 1;
  const R: Stmt[] = [
    letS("nb", div(v("r"), U(h / rh))),
    letS("oh", mul(mod(v("r"), U(h / rh)), U(rh))),
    letS("dyb", add(mul(add(mul(v("nb"), U(o)), v("o0")), U(p / 4)), mul(v("oh"), U(qw)))),
  ];
  // The x row k of channel c0 + j: its start (in vec4s) and whether it exists.
  const ok = (j: number, k: number) => name(`ok_${j}_${k}`, "bool");
  for (let j = 0; j < tc; j++) {
    for (let k = 0; k < inRows; k++) {
      const ih = v(`ih_${j}_${k}`);
      R.push(
        letS(`ih_${j}_${k}`, sub(add(mul(v("oh"), U(stride)), U(k)), U(1))),
        letS(`ok_${j}_${k}`, lt(ih, U(hi))),
        letS(
          `xb_${j}_${k}`,
          mul(add(mul(add(add(mul(v("nb"), U(c)), v("c0")), U(j)), U(hi)), ih), U(qwi)),
        ),
        ...(stride === 1
          ? [varS(`cur_${j}_${k}`, select(ok(j, k), loadV("x", v(`xb_${j}_${k}`)), ZERO4))]
          : []),
        varS(`prev_${j}_${k}`, F0),
      );
    }
  }
  const Q: Stmt[] = stride === 1 ? [letS("more", lt(add(v("q"), U(1)), U(qw)))] : [];
  for (let rr = 0; rr < rh; rr++) {
    for (let i = 0; i < to; i++) {
      Q.push(
        letS(`d_${i}_${rr}`, loadV("dy", add(add(v("dyb"), U((i * p) / 4 + rr * qw)), v("q")))),
      );
    }
  }
  for (let j = 0; j < tc; j++) {
    for (let k = 0; k < inRows; k++) {
      const prev = name(`prev_${j}_${k}`, "f32");
      let taps: Expr[];
      let last: Expr;
      if (stride === 1) {
        const cur = f4(`cur_${j}_${k}`);
        const next = f4(`next_${j}_${k}`);
        const nextAt = add(v(`xb_${j}_${k}`), call("min", [add(v("q"), U(1)), U(qw - 1)]));
        Q.push(
          letS(
            `next_${j}_${k}`,
            select(bin("&&", name("more", "bool"), ok(j, k)), loadV("x", nextAt), ZERO4),
          ),
          letS(`s0_${j}_${k}`, vec4([prev, lane(cur, 0), lane(cur, 1), lane(cur, 2)])),
          letS(`s2_${j}_${k}`, vec4([lane(cur, 1), lane(cur, 2), lane(cur, 3), lane(next, 0)])),
        );
        taps = [f4(`s0_${j}_${k}`), cur, f4(`s2_${j}_${k}`)];
        last = lane(cur, 3);
      } else {
        // Stride 2: dy pixels 4q..4q+3 read x columns 8q-1..8q+7 (two vec4s and the last
        // lane of the pair before).
        const at = add(v(`xb_${j}_${k}`), mul(v("q"), U(2)));
        const [a, b] = [f4(`xa_${j}_${k}`), f4(`xc_${j}_${k}`)];
        Q.push(
          letS(`xa_${j}_${k}`, select(ok(j, k), loadV("x", at), ZERO4)),
          letS(`xc_${j}_${k}`, select(ok(j, k), loadV("x", add(at, U(1))), ZERO4)),
          letS(`s0_${j}_${k}`, vec4([prev, lane(a, 1), lane(a, 3), lane(b, 1)])),
          letS(`s1_${j}_${k}`, vec4([lane(a, 0), lane(a, 2), lane(b, 0), lane(b, 2)])),
          letS(`s2_${j}_${k}`, vec4([lane(a, 1), lane(a, 3), lane(b, 1), lane(b, 3)])),
        );
        taps = [0, 1, 2].map((kw) => f4(`s${kw}_${j}_${k}`));
        last = lane(b, 3);
      }
      // Output row rr reads this input row at kernel row kh = k - stride * rr.
      for (let rr = 0; rr < rh; rr++) {
        const kh = k - stride * rr;
        if (kh < 0 || kh > 2) continue;
        for (let i = 0; i < to; i++) {
          const d = f4(`d_${i}_${rr}`);
          taps.forEach((x, kw) => {
            const a = acc(i, j, kh, kw);
            Q.push(assign(a, add(name(a, "f32"), call("dot", [d, x]))));
          });
        }
      }
      Q.push(assign(`prev_${j}_${k}`, last));
      if (stride === 1) Q.push(assign(`cur_${j}_${k}`, f4(`next_${j}_${k}`)));
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
    comment: `conv2d 3x3 stride ${stride} by rows (weight gradient): x [${n}, ${c}, ${
      h * stride
    }, ${w * stride}], dy [${n}, ${o}, ${h}, ${w}], ${to}x${tc} channels per thread${
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
