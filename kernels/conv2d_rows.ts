/**
 * 3x3, stride-1, padding-1 convolutions on llvmpipe, by rows: each thread computes `tm` output
 * channels at `tn` consecutive pixels of one image, four pixels per `vec4`. For every input
 * channel and kernel row it loads the input rows under its pixels as aligned `vec4`s once and
 * reads the three horizontal taps as shifted views of them (neighbour quads give the edges),
 * so one load serves three taps; the weights are first repacked to one `vec4` per output
 * channel, input channel and kernel row (`(kw0, kw1, kw2, 0)`). llvmpipe loads storage one
 * lane at a time, so loads, not multiply-adds, bound its convolutions: measured on T1's shapes
 * (llvmpipe, 2 cores) 1.5-2.4x the implicit GEMM's rate.
 *
 * The same kernel computes the input gradient of such a convolution, which is a convolution of
 * `dy` with the weights transposed and flipped (done by the repacking step).
 *
 * @module
 */
import type { Epilogue, KernelPlan, KernelSource } from "./types.ts";
import {
  checkInts,
  declareBindings,
  epilogueBindings,
  epilogueFunction,
  foldWorkgroups,
} from "./_wgsl.ts";
import { splitReduceKernel } from "./_gemm.ts";

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
  if (tile === null || cout % tile.tm !== 0 || !fits(tile.tn, n, h, w)) {
    throw new RangeError(
      `conv2dRowsKernel: no row tile${
        spec.tile ? ` ${spec.tile.tm}x${spec.tile.tn}` : ""
      } for ${cout} output channels of ${h}x${w} pixels (expected a width multiple of 4, threads of up to 64 pixels in whole quads covering whole images, whole rows or equal parts of a row, output channels a multiple of 8)`,
    );
  }
  return {
    algorithm: "rows",
    steps: [
      repackStep(cin, cout, mode),
      rowsStep(spec, tile),
      ...(spec.epilogue === undefined ? [] : [epilogueStep(n * cout * h * w, spec.epilogue)]),
    ],
    scratch: [{ name: "wq", size: cout * cin * 3 * 16 }],
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
  const grid = foldWorkgroups(colGroups * (cout / tm));
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
      ow: partRow ? `ow0 + ${4 * q}u` : `${at % w}u`,
      /** The static column (whole images or rows). */
      col: at % w,
      pix: at,
    };
  };
  const sameRow = (a: number, b: number) =>
    b >= 0 && b < quads && quad(a).img === quad(b).img && quad(a).row === quad(b).row;
  const L: string[] = [
    grid.prelude,
    `let seg = (lin % ${colGroups}u) * 8u + lid;`,
    `if (seg >= ${segs}u) { return; }`,
    `let o0 = (lin / ${colGroups}u) * ${tm}u;`,
    `let col0 = seg * ${tn}u;`,
    `let nb = col0 / ${p}u;`,
    `let p0 = col0 % ${p}u;`,
    `let oh0 = p0 / ${w}u;`,
    `let ow0 = p0 % ${w}u;`,
    `let xb = nb * ${(cin * p) / 4}u;`,
  ];
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < quads; q++) L.push(`var acc_${i}_${q} = vec4<f32>(0.0);`);
  }
  L.push(`for (var ci = 0u; ci < ${cin}u; ci = ci + 1u) {`);
  const B: string[] = [`let xc = xb + ci * ${p / 4}u;`];
  for (let kh = 0; kh < 3; kh++) {
    for (let q = 0; q < quads; q++) {
      const { img, row, ow, col } = quad(q);
      const base = `xc + ${(img * cin * p) / 4}u`;
      const xv = `xv_${kh}_${q}`;
      if (images) {
        // Every index is known: rows above or below the image are zeros.
        const ih = row + kh - 1;
        B.push(
          ih < 0 || ih >= h
            ? `let ${xv} = vec4<f32>(0.0);`
            : `let ${xv} = ${input}[${base} + ${(ih * w + col) / 4}u];`,
        );
        continue;
      }
      B.push(`let ih_${kh}_${q} = oh0 + ${row + kh}u - 1u;`);
      B.push(
        `let ${xv} = select(vec4<f32>(0.0), ${input}[${base} + (ih_${kh}_${q} * ${w}u + ${ow}) / 4u], ih_${kh}_${q} < ${h}u);`,
      );
    }
    for (let q = 0; q < quads; q++) {
      const ok = `ih_${kh}_${q} < ${h}u`;
      const at = (off: string) => `${input}[xc + (ih_${kh}_${q} * ${w}u + ow0 ${off}) / 4u]`;
      const left = sameRow(q, q - 1)
        ? `xv_${kh}_${q - 1}.w`
        : partRow
        ? `select(0.0, ${at("- 1u")}.w, ow0 > 0u && ${ok})`
        : "0.0";
      const right = sameRow(q, q + 1)
        ? `xv_${kh}_${q + 1}.x`
        : partRow
        ? `select(0.0, ${at(`+ ${tn}u`)}.x, ow0 + ${tn}u < ${w}u && ${ok})`
        : "0.0";
      const v = `xv_${kh}_${q}`;
      B.push(`let xl_${kh}_${q} = vec4<f32>(${left}, ${v}.x, ${v}.y, ${v}.z);`);
      B.push(`let xr_${kh}_${q} = vec4<f32>(${v}.y, ${v}.z, ${v}.w, ${right});`);
    }
    for (let i = 0; i < tm; i++) {
      B.push(`let w_${kh}_${i} = wq[((o0 + ${i}u) * ${cin}u + ci) * 3u + ${kh}u];`);
      for (let q = 0; q < quads; q++) {
        const wv = `w_${kh}_${i}`;
        B.push(
          `acc_${i}_${q} = acc_${i}_${q} + ${wv}.x * xl_${kh}_${q} + ${wv}.y * xv_${kh}_${q} + ${wv}.z * xr_${kh}_${q};`,
        );
      }
    }
  }
  L.push(...B.map((l) => "  " + l), `}`);
  for (let i = 0; i < tm; i++) {
    for (let q = 0; q < quads; q++) {
      const { img, pix } = quad(q);
      L.push(
        `out[(((nb + ${img}u) * ${cout}u + o0 + ${i}u) * ${p}u + p0 + ${pix}u) / 4u] = acc_${i}_${q};`,
      );
    }
  }
  const decls = declareBindings([
    { name: input, type: "vec4<f32>", access: "read" },
    { name: "wq", type: "vec4<f32>", access: "read" },
    { name: "out", type: "vec4<f32>", access: "read_write" },
  ]);
  const code =
    `// conv2d 3x3 by rows (${mode}): ${input} [${n}, ${cin}, ${h}, ${w}] -> out [${n}, ${cout}, ${h}, ${w}], ${tm} channels x ${tn} pixels per thread
${decls}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${L.join("\n  ")}
}
`;
  return { code, workgroups: grid.workgroups, bindings: [input, "wq", "out"], writes: ["out"] };
}

/**
 * The epilogue as a pass of its own over `out` (in place, four values per thread). Inlined into
 * the convolution it would be compiled once per accumulator (tm x tn times): with batch norm and
 * PReLU at inference reading per-channel inputs, llvmpipe took over two minutes to compile such
 * a kernel (measured), against milliseconds for this pass.
 */
function epilogueStep(size: number, epilogue: Epilogue) {
  const items = size / 4;
  const grid = foldWorkgroups(Math.ceil(items / 64));
  const decls = declareBindings([
    ...epilogueBindings(epilogue),
    { name: "out", type: "vec4<f32>", access: "read_write" },
  ]);
  const e = (c: string, j: number) => `epilogue(v.${c}, i * 4u + ${j}u)`;
  return {
    code: `// conv2d 3x3 by rows: epilogue
${decls}
${epilogueFunction(epilogue)}
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${grid.prelude}
  let i = lin * 64u + lid;
  if (i >= ${items}u) { return; }
  let v = out[i];
  out[i] = vec4<f32>(${e("x", 0)}, ${e("y", 1)}, ${e("z", 2)}, ${e("w", 3)});
}
`,
    workgroups: grid.workgroups,
    bindings: [...epilogueBindings(epilogue).map((b) => b.name), "out"],
    writes: ["out"],
  };
}

/**
 * Step 1: `wq[(co * cin + ci) * 3 + kh] = (w(kw 0), w(kw 1), w(kw 2), 0)` of the kernel's output
 * channel `co` and input channel `ci`; for the input gradient the weights are transposed and
 * flipped (`w'[c, o, kh, kw] = w[o, c, 2 - kh, 2 - kw]`).
 */
function repackStep(cin: number, cout: number, mode: "forward" | "backInput") {
  const total = cout * cin * 3;
  const grid = foldWorkgroups(Math.ceil(total / 64));
  const src = (kw: number) =>
    mode === "forward"
      ? `w[i * 3u + ${kw}u]`
      : `w[((ci * ${cout}u + co) * 3u + 2u - kh) * 3u + ${2 - kw}u]`;
  return {
    code: `// conv2d 3x3 by rows: weights repacked (${mode})
@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read_write> wq: array<vec4<f32>>;
@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${grid.prelude}
  let i = lin * 64u + lid;
  if (i >= ${total}u) { return; }
  let co = i / ${cin * 3}u;
  let ci = (i / 3u) % ${cin}u;
  let kh = i % 3u;
  wq[i] = vec4<f32>(${src(0)}, ${src(1)}, ${src(2)}, 0.0);
}
`,
    workgroups: grid.workgroups,
    bindings: ["w", "wq"],
    writes: ["wq"],
  };
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
  /** Override of the thread tile: output and input channels per thread. */
  tile?: { to: number; tc: number };
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
  const tile = spec.tile ?? filterTile(spec);
  if (tile === null || w % 4 !== 0 || o % tile.to !== 0 || c % tile.tc !== 0) {
    throw new RangeError(
      `conv2dRowsFilterKernel: no tile for ${o}x${c} channels of width ${w} (expected a width multiple of 4 and channels multiples of the tile)`,
    );
  }
  const { to, tc } = tile;
  const rows = n * h;
  const tiles = (o / to) * (c / tc);
  const splits = spec.splits ??
    Math.max(1, Math.min(rows, Math.ceil(FILTER_THREADS / tiles)));
  checkInts("conv2dRowsFilterKernel", { splits });
  const size = o * c * 9;
  const p = h * w;
  const qw = w / 4;
  const threads = tiles * splits;
  const grid = foldWorkgroups(Math.ceil(threads / 8));
  const acc = (i: number, j: number, kh: number, kw: number) => `a_${i}_${j}_${kh}_${kw}`;
  const L: string[] = [
    grid.prelude,
    `let t = lin * 8u + lid;`,
    `if (t >= ${threads}u) { return; }`,
    `let tile = t % ${tiles}u;`,
    `let sp = t / ${tiles}u;`,
    `let o0 = (tile / ${c / tc}u) * ${to}u;`,
    `let c0 = (tile % ${c / tc}u) * ${tc}u;`,
  ];
  for (let i = 0; i < to; i++) {
    for (let j = 0; j < tc; j++) {
      for (let kh = 0; kh < 3; kh++) {
        for (let kw = 0; kw < 3; kw++) L.push(`var ${acc(i, j, kh, kw)} = 0.0;`);
      }
    }
  }
  const R: string[] = [
    `let nb = r / ${h}u;`,
    `let oh = r % ${h}u;`,
    `let dyb = (nb * ${o}u + o0) * ${p / 4}u + oh * ${qw}u;`,
  ];
  // The x row of channel c0 + j at kernel row kh: its start (in vec4s) and whether it exists.
  for (let j = 0; j < tc; j++) {
    for (let kh = 0; kh < 3; kh++) {
      R.push(`let ih_${j}_${kh} = oh + ${kh}u - 1u;`);
      R.push(`let ok_${j}_${kh} = ih_${j}_${kh} < ${h}u;`);
      R.push(`let xb_${j}_${kh} = ((nb * ${c}u + c0 + ${j}u) * ${h}u + ih_${j}_${kh}) * ${qw}u;`);
      R.push(`var cur_${j}_${kh} = select(vec4<f32>(0.0), x[xb_${j}_${kh}], ok_${j}_${kh});`);
      R.push(`var prev_${j}_${kh} = 0.0;`);
    }
  }
  const Q: string[] = [`let more = q + 1u < ${qw}u;`];
  for (let i = 0; i < to; i++) Q.push(`let d_${i} = dy[dyb + ${(i * p) / 4}u + q];`);
  for (let j = 0; j < tc; j++) {
    for (let kh = 0; kh < 3; kh++) {
      const cur = `cur_${j}_${kh}`;
      Q.push(
        `let next_${j}_${kh} = select(vec4<f32>(0.0), x[xb_${j}_${kh} + min(q + 1u, ${
          qw - 1
        }u)], more && ok_${j}_${kh});`,
        `let s0_${j}_${kh} = vec4<f32>(prev_${j}_${kh}, ${cur}.x, ${cur}.y, ${cur}.z);`,
        `let s2_${j}_${kh} = vec4<f32>(${cur}.y, ${cur}.z, ${cur}.w, next_${j}_${kh}.x);`,
      );
      for (let i = 0; i < to; i++) {
        Q.push(
          `${acc(i, j, kh, 0)} = ${acc(i, j, kh, 0)} + dot(d_${i}, s0_${j}_${kh});`,
          `${acc(i, j, kh, 1)} = ${acc(i, j, kh, 1)} + dot(d_${i}, ${cur});`,
          `${acc(i, j, kh, 2)} = ${acc(i, j, kh, 2)} + dot(d_${i}, s2_${j}_${kh});`,
        );
      }
      Q.push(`prev_${j}_${kh} = ${cur}.w;`, `${cur} = next_${j}_${kh};`);
    }
  }
  L.push(
    `for (var r = sp; r < ${rows}u; r = r + ${splits}u) {`,
    ...R.map((l) => "  " + l),
    `  for (var q = 0u; q < ${qw}u; q = q + 1u) {`,
    ...Q.map((l) => "    " + l),
    `  }`,
    `}`,
  );
  // With an epilogue the shares always go through the summing pass, which applies it once per
  // value (inlined into this kernel it would be compiled to x tc x 9 times).
  const direct = splits === 1 && spec.epilogue === undefined;
  for (let i = 0; i < to; i++) {
    for (let j = 0; j < tc; j++) {
      for (let kh = 0; kh < 3; kh++) {
        for (let kw = 0; kw < 3; kw++) {
          const at = `((o0 + ${i}u) * ${c}u + c0 + ${j}u) * 9u + ${kh * 3 + kw}u`;
          L.push(
            direct
              ? `out[${at}] = epilogue(${acc(i, j, kh, kw)}, ${at});`
              : `partial[sp * ${size}u + ${at}] = ${acc(i, j, kh, kw)};`,
          );
        }
      }
    }
  }
  const target = direct
    ? [...epilogueBindings(spec.epilogue), {
      name: "out",
      type: "f32" as const,
      access: "read_write" as const,
    }]
    : [{ name: "partial", type: "f32" as const, access: "read_write" as const }];
  const decls = declareBindings([
    { name: "x", type: "vec4<f32>", access: "read" },
    { name: "dy", type: "vec4<f32>", access: "read" },
    ...target,
  ]);
  const code =
    `// conv2d 3x3 by rows (weight gradient): x [${n}, ${c}, ${h}, ${w}], dy [${n}, ${o}, ${h}, ${w}], ${to}x${tc} channels per thread, ${splits} splits
${decls}
${direct ? epilogueFunction(spec.epilogue) : ""}
@compute @workgroup_size(8)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${L.join("\n  ")}
}
`;
  const first = {
    code,
    workgroups: grid.workgroups,
    bindings: ["x", "dy", ...target.map((b) => b.name)],
    writes: [target[target.length - 1].name],
  };
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
