/**
 * The GEMM family on WebAssembly SIMD128: `C[m0:m1, :] (+)= A @ B` for f32 matrices with any
 * element strides (transposes and im2col columns are strides), written as wasm functions.
 *
 * Blocking (GotoBLAS / BLIS): the reduction runs in chunks of `kc`; per chunk B is packed into
 * panels of {@link GemmShape.nr} columns (`kc x nr`, zero padded), and per `mr` rows A into a
 * `kc x mr` panel; the micro-kernel keeps an `mr x nr` block of C in `mr * nr / 4` v128
 * registers, and per step of the reduction loads `nr / 4` vectors of B, splats `mr` scalars of
 * A and does `mr * nr / 4` f32x4 multiply-adds (relaxed-SIMD `f32x4.relaxed_madd` when the
 * engine validates it, else `f32x4.mul` + `f32x4.add`). Edge blocks go through a small tile
 * in scratch memory.
 *
 * The function `gemm(p, m0, m1, n0, n1, scratch)` computes rows `[m0, m1)` and columns
 * `[n0, n1)` of C, reading its parameters from the i32 block at `p` ({@link GEMM_PARAMS});
 * `scratch` is at least {@link gemmScratchBytes} bytes of its own (one per worker), so workers
 * given disjoint blocks of C run concurrently.
 *
 * @module
 */
import { encodeModule, FunctionBuilder, OP, uleb } from "./wasm_writer.ts";

/**
 * The i32 fields of a GEMM parameter block, in order (bases and `*ImgStride` in bytes, other
 * strides in elements). An operand's inner index (A's k, B's and C's column) may run over
 * images: with `*Img` > 0, index `i` is at `(i / img) * imgStride + (i % img) * stride` (a
 * batch of NCHW images as one matrix); 0 means one plain stride.
 */
export const GEMM_PARAMS = [
  "aBase",
  "aRs",
  "aCs",
  "aKImg",
  "aKImgStride",
  "bBase",
  "bRs",
  "bCs",
  "bNImg",
  "bNImgStride",
  "cBase",
  "cRs",
  "cNImg",
  "cNImgStride",
  "n",
  "k",
  "accumulate",
] as const;

/** Register blocking of the micro-kernel. */
export interface GemmShape {
  /** Rows of C per block. */
  mr: number;
  /** Columns of C per block (a multiple of 4). */
  nr: number;
  /** Reduction chunk. */
  kc: number;
  /** Columns of B packed at once (a multiple of `nr`: packed B stays in cache). */
  nc: number;
  /** Whether to use relaxed-SIMD fused multiply-add. */
  fma: boolean;
  /** Steps of the reduction per iteration of the micro-kernel's loop (1, 2, 4 or 8; default 1). */
  unroll?: number;
  /**
   * How the micro-kernel splats A's values: one `v128.load32_splat` per row ("splat", the
   * default), or one `v128.load` per four rows and a lane shuffle per row ("shuffle": fewer
   * memory accesses, each of which an engine without guard pages bounds-checks).
   */
  aLoad?: "splat" | "shuffle";
}

/**
 * A short name of a blocking, e.g. `4x8 kc256 nc512 u4 shuffle fma`.
 *
 * @example
 * ```ts
 * import { gemmShapeName } from "./wasm_gemm.ts";
 * gemmShapeName({ mr: 6, nr: 8, kc: 256, nc: 512, fma: false }); // "6x8 kc256 nc512 u1 splat"
 * ```
 */
export function gemmShapeName(shape: GemmShape): string {
  return `${shape.mr}x${shape.nr} kc${shape.kc} nc${shape.nc} u${shape.unroll ?? 1} ${
    shape.aLoad ?? "splat"
  }${shape.fma ? " fma" : ""}`;
}

/**
 * Scratch bytes one `gemm` call needs: packed B (`kc x nc`, where the function places packed A
 * right after, whatever `n` is), packed A (`kc x mr`), an edge tile and the offsets of A's `kc`
 * columns.
 *
 * @example
 * ```ts
 * import { gemmScratchBytes } from "./wasm_gemm.ts";
 * gemmScratchBytes({ mr: 4, nr: 8, kc: 256, nc: 512, fma: false }); // 529600
 * ```
 */
export function gemmScratchBytes(shape: GemmShape): number {
  return 4 * (shape.kc * shape.nc + shape.kc * shape.mr + shape.mr * shape.nr + shape.kc) + 64;
}

/**
 * Whether the engine validates relaxed-SIMD `f32x4.relaxed_madd` (compiles a tiny module).
 *
 * @example
 * ```ts
 * import { relaxedSimd } from "./wasm_gemm.ts";
 * typeof relaxedSimd(); // "boolean"
 * ```
 */
export function relaxedSimd(): boolean {
  const f = new FunctionBuilder([], ["v128"]);
  const zero = [...new Array(16).fill(0)];
  f.op(OP.v128_const, zero).op(OP.v128_const, zero).op(OP.v128_const, zero);
  f.op(OP.f32x4_relaxed_madd);
  const bytes = encodeModule({
    imports: [],
    memory: { initial: 1, maximum: 1, shared: false },
    functions: [{ name: "f", body: f }],
  });
  try {
    return WebAssembly.validate(bytes);
  } catch {
    return false;
  }
}

/**
 * Writes the `gemm(p, m0, m1, n0, n1, scratch)` function of `shape`.
 *
 * @example
 * ```ts
 * import { gemmFunction } from "./wasm_gemm.ts";
 * import { encodeModule } from "./wasm_writer.ts";
 * const body = gemmFunction({ mr: 4, nr: 8, kc: 64, nc: 64, fma: false });
 * WebAssembly.validate(encodeModule({
 *   imports: [], memory: { initial: 1, maximum: 1, shared: false },
 *   functions: [{ name: "gemm", body }],
 * })); // true
 * ```
 */
export function gemmFunction(shape: GemmShape): FunctionBuilder {
  const { mr, nr, kc: KC, nc: NC } = shape;
  const U = shape.unroll ?? 1, shuffle = shape.aLoad === "shuffle";
  if (nr % 4 !== 0 || mr < 1 || NC % nr !== 0) {
    throw new RangeError(
      `Bad GEMM block ${mr}x${nr} (nc ${NC}): nr and nc must be multiples of 4 and nr`,
    );
  }
  if (![1, 2, 4, 8].includes(U)) {
    throw new RangeError(`Bad GEMM unroll ${U}: expected 1, 2, 4 or 8`);
  }
  const nv = nr / 4;
  const f = new FunctionBuilder(["i32", "i32", "i32", "i32", "i32", "i32"]);
  const [P, M0, M1, N0, N1, S] = [0, 1, 2, 3, 4, 5];
  const L = (t: "i32" | "v128" = "i32") => f.local(t);
  const field = (name: typeof GEMM_PARAMS[number]) => {
    const l = L();
    f.get(P).mem(OP.i32_load, 2, 4 * GEMM_PARAMS.indexOf(name)).set(l);
    return l;
  };
  const aBase = field("aBase"), aRs = field("aRs"), aCs = field("aCs");
  const aImg = field("aKImg"), aImgS = field("aKImgStride");
  const bBase = field("bBase"), bRs = field("bRs"), bCs = field("bCs");
  const bImg = field("bNImg"), bImgS = field("bNImgStride");
  const cBase = field("cBase"), cRs = field("cRs");
  const cImg = field("cNImg"), cImgS = field("cNImgStride");
  const k = field("k");
  const accum = field("accumulate");
  const packB = L(), packA = L(), tile = L();
  const jc = L(), jcEnd = L(), pc = L(), kc = L(), jp = L(), kk = L(), jj = L(), ip = L();
  const ii = L(), col = L(), src = L(), dst = L(), rows = L(), cols = L(), add = L();
  const pa = L(), pb = L(), t = L(), inPanel = L();
  // Byte strides; an image size of 0 (no images) becomes one larger than any index.
  const shl2 = (l: number) => f.get(l).i32(2).op(OP.i32_shl).set(l);
  [aRs, aCs, bRs, bCs, cRs].forEach(shl2);
  for (const img of [aImg, bImg, cImg]) {
    f.get(img).i32(0x7fffffff).get(img).op(OP.select).set(img);
  }
  // C's column stride in bytes.
  const c4 = L();
  f.i32(4).set(c4);
  f.get(S).set(packB);
  f.get(packB).i32(KC * NC * 4).op(OP.i32_add).set(packA);
  f.get(packA).i32(KC * mr * 4).op(OP.i32_add).set(tile);
  // The byte offsets of A's columns pc .. pc+kc-1 (one table per chunk of the reduction).
  const kOff = L();
  f.get(tile).i32(mr * nr * 4).op(OP.i32_add).set(kOff);
  /** Byte offsets of the current B panel's columns (0 for columns past jcEnd). */
  const colOff = Array.from({ length: nr }, () => L());

  /** Pushes the byte offset of inner index `i` (pushed by `index`) of an operand. */
  const offset = (index: () => void, img: number, imgS: number, stride: number) => {
    index();
    f.get(img).op(OP.i32_div_u).get(imgS).op(OP.i32_mul);
    index();
    f.get(img).op(OP.i32_rem_u).get(stride).op(OP.i32_mul).op(OP.i32_add);
  };
  /** for (l = from; l < to; l += step) body — `to` pushed by a callback. */
  const loop = (l: number, from: () => void, to: () => void, step: number, body: () => void) => {
    from();
    f.set(l);
    f.op(OP.block, [0x40]).op(OP.loop, [0x40]);
    f.get(l);
    to();
    f.op(OP.i32_ge_s).op(OP.br_if, uleb(1));
    body();
    f.get(l).i32(step).op(OP.i32_add).set(l).op(OP.br, uleb(0));
    f.op(OP.end).op(OP.end);
  };
  const zero = () => f.i32(0);
  const min = (a: () => void, b: () => void) => {
    a();
    b();
    a();
    b();
    f.op(OP.i32_lt_s).op(OP.select);
  };

  loop(jc, () => f.get(N0), () => f.get(N1), NC, () => {
    // jcEnd = min(jc + NC, n1)
    min(() => f.get(jc).i32(NC).op(OP.i32_add), () => f.get(N1));
    f.set(jcEnd);
    loop(pc, zero, () => f.get(k), KC, () => {
      min(() => f.get(k).get(pc).op(OP.i32_sub), () => f.i32(KC));
      f.set(kc);
      // add = accumulate || pc > 0
      f.get(accum).get(pc).i32(0).op(OP.i32_gt_s).op(OP.i32_or).set(add);
      // Pack B[pc : pc + kc, jc : jcEnd] into panels of nr columns (zeros past jcEnd). The
      // columns' offsets are worked out once per panel, so no division runs per element.
      f.get(packB).set(dst);
      loop(jp, () => f.get(jc), () => f.get(jcEnd), nr, () => {
        // Whether the panel's columns are consecutive in memory (unit stride, one image).
        f.get(bCs).i32(4).op(OP.i32_eq);
        f.get(jp).i32(nr).op(OP.i32_add).get(jcEnd).op(OP.i32_le_s).op(OP.i32_and);
        f.get(jp).get(bImg).op(OP.i32_rem_u).i32(nr).op(OP.i32_add).get(bImg).op(OP.i32_le_u);
        f.op(OP.i32_and).set(inPanel);
        for (let j = 0; j < nr; j++) {
          // Columns past jcEnd read B's first element (never past memory) and store 0.
          f.get(jp).i32(j).op(OP.i32_add).get(jcEnd).op(OP.i32_lt_s).op(OP.if, [0x7f]);
          offset(() => f.get(jp).i32(j).op(OP.i32_add), bImg, bImgS, bCs);
          f.op(OP.else).i32(0).op(OP.end).set(colOff[j]);
        }
        // src = bBase + pc * bRs: the chunk's first row.
        f.get(bBase).get(pc).get(bRs).op(OP.i32_mul).op(OP.i32_add).set(src);
        f.get(inPanel).op(OP.if, [0x40]);
        f.get(src).get(colOff[0]).op(OP.i32_add).set(t);
        loop(kk, zero, () => f.get(kc), 1, () => {
          for (let v = 0; v < nv; v++) {
            f.get(dst).get(t).mem(OP.v128_load, 2, 16 * v).mem(OP.v128_store, 4, 16 * v);
          }
          f.get(t).get(bRs).op(OP.i32_add).set(t);
          f.get(dst).i32(nr * 4).op(OP.i32_add).set(dst);
        });
        f.op(OP.else);
        loop(kk, zero, () => f.get(kc), 1, () => {
          for (let j = 0; j < nr; j++) {
            const inside = () => f.get(jp).i32(j).op(OP.i32_add).get(jcEnd).op(OP.i32_lt_s);
            f.get(dst);
            f.get(src).get(colOff[j]).op(OP.i32_add).mem(OP.f32_load, 2).f32(0);
            inside();
            f.op(OP.select).mem(OP.f32_store, 2, 4 * j);
          }
          f.get(src).get(bRs).op(OP.i32_add).set(src);
          f.get(dst).i32(nr * 4).op(OP.i32_add).set(dst);
        });
        f.op(OP.end);
      });
      // kOff[kk] = offset(pc + kk), for packing A.
      loop(kk, zero, () => f.get(kc), 1, () => {
        f.get(kOff).get(kk).i32(2).op(OP.i32_shl).op(OP.i32_add);
        offset(() => f.get(pc).get(kk).op(OP.i32_add), aImg, aImgS, aCs);
        f.mem(OP.i32_store, 2);
      });
      loop(ip, () => f.get(M0), () => f.get(M1), mr, () => {
        min(() => f.get(M1).get(ip).op(OP.i32_sub), () => f.i32(mr));
        f.set(rows);
        // Pack A: packA[kk * mr + ii] = ii < rows ? A[(ip + ii) * aRs + kOff[kk]] : 0.
        f.get(packA).set(dst);
        loop(kk, zero, () => f.get(kc), 1, () => {
          f.get(aBase).get(ip).get(aRs).op(OP.i32_mul).op(OP.i32_add);
          f.get(kOff).get(kk).i32(2).op(OP.i32_shl).op(OP.i32_add).mem(OP.i32_load, 2);
          f.op(OP.i32_add).set(src);
          for (let i = 0; i < mr; i++) {
            // Rows past m1 read A's first element (never past memory) and store 0.
            f.get(dst);
            f.get(src).get(aBase).i32(i).get(rows).op(OP.i32_lt_s).op(OP.select);
            f.mem(OP.f32_load, 2).f32(0).i32(i).get(rows).op(OP.i32_lt_s).op(OP.select);
            f.mem(OP.f32_store, 2, 4 * i);
            if (i < mr - 1) f.get(src).get(aRs).op(OP.i32_add).set(src);
          }
          f.get(dst).i32(mr * 4).op(OP.i32_add).set(dst);
        });
        loop(jp, () => f.get(jc), () => f.get(jcEnd), nr, () => {
          const acc = Array.from({ length: mr * nv }, () => L("v128"));
          const bv = Array.from({ length: nv }, () => L("v128"));
          const av = L("v128"), aq = L("v128");
          for (const a of acc) f.op(OP.v128_const, new Array(16).fill(0)).set(a);
          f.get(packA).set(pa);
          // pb = packB + ((jp - jc) / nr) * kc * nr * 4
          f.get(packB).get(jp).get(jc).op(OP.i32_sub).get(kc).op(OP.i32_mul).i32(4);
          f.op(OP.i32_mul).op(OP.i32_add).set(pb);
          /** One step of the reduction, `u` steps past `pa` and `pb`. */
          const step = (u: number) => {
            for (let v = 0; v < nv; v++) {
              f.get(pb).mem(OP.v128_load, 4, 4 * nr * u + 16 * v).set(bv[v]);
            }
            for (let i = 0; i < mr; i++) {
              if (!shuffle) {
                f.get(pa).mem(OP.v128_load32_splat, 2, 4 * (mr * u + i)).set(av);
              } else {
                // Rows 4q .. 4q+3 in one load (past the panel's last row: unused values).
                if (i % 4 === 0) f.get(pa).mem(OP.v128_load, 2, 4 * (mr * u + i)).set(aq);
                const l = 4 * (i % 4);
                const lanes = [0, 1, 2, 3].flatMap(() => [l, l + 1, l + 2, l + 3]);
                f.get(aq).get(aq).op(OP.i8x16_shuffle, lanes).set(av);
              }
              for (let v = 0; v < nv; v++) {
                const a = acc[i * nv + v];
                if (shape.fma) f.get(av).get(bv[v]).get(a).op(OP.f32x4_relaxed_madd).set(a);
                else f.get(a).get(av).get(bv[v]).op(OP.f32x4_mul).op(OP.f32x4_add).set(a);
              }
            }
          };
          // kEnd = kc rounded down to the unroll; U steps per iteration, then the rest.
          const kEnd = L();
          f.get(kc).i32(-U).op(OP.i32_and).set(kEnd);
          loop(kk, zero, () => f.get(kEnd), U, () => {
            for (let u = 0; u < U; u++) step(u);
            f.get(pa).i32(U * mr * 4).op(OP.i32_add).set(pa);
            f.get(pb).i32(U * nr * 4).op(OP.i32_add).set(pb);
          });
          if (U > 1) {
            loop(kk, () => f.get(kEnd), () => f.get(kc), 1, () => {
              step(0);
              f.get(pa).i32(mr * 4).op(OP.i32_add).set(pa);
              f.get(pb).i32(nr * 4).op(OP.i32_add).set(pb);
            });
          }
          min(() => f.get(jcEnd).get(jp).op(OP.i32_sub), () => f.i32(nr));
          f.set(cols);
          // dst = cBase + ip * cRs + offset(jp)
          f.get(cBase).get(ip).get(cRs).op(OP.i32_mul).op(OP.i32_add);
          offset(() => f.get(jp), cImg, cImgS, c4);
          f.op(OP.i32_add).set(dst);
          // A full block within one image: vector stores (adding C when accumulating).
          f.get(rows).i32(mr).op(OP.i32_eq).get(cols).i32(nr).op(OP.i32_eq).op(OP.i32_and);
          f.get(jp).get(cImg).op(OP.i32_rem_u).i32(nr).op(OP.i32_add).get(cImg).op(OP.i32_le_u);
          f.op(OP.i32_and);
          f.op(OP.if, [0x40]);
          for (let i = 0; i < mr; i++) {
            for (let v = 0; v < nv; v++) {
              const a = acc[i * nv + v];
              f.get(add).op(OP.if, [0x40]);
              f.get(a).get(dst).mem(OP.v128_load, 2, 16 * v).op(OP.f32x4_add).set(a);
              f.op(OP.end);
              f.get(dst).get(a).mem(OP.v128_store, 2, 16 * v);
            }
            if (i < mr - 1) f.get(dst).get(cRs).op(OP.i32_add).set(dst);
          }
          f.op(OP.else);
          // Edge block: through the tile, element by element.
          for (let i = 0; i < mr; i++) {
            for (let v = 0; v < nv; v++) {
              f.get(tile).get(acc[i * nv + v]).mem(OP.v128_store, 2, 16 * (i * nv + v));
            }
          }
          loop(ii, zero, () => f.get(rows), 1, () => {
            loop(jj, zero, () => f.get(cols), 1, () => {
              // t = cBase + (ip + ii) * cRs + offset(jp + jj)
              f.get(jp).get(jj).op(OP.i32_add).set(col);
              f.get(cBase).get(ip).get(ii).op(OP.i32_add).get(cRs).op(OP.i32_mul).op(OP.i32_add);
              offset(() => f.get(col), cImg, cImgS, c4);
              f.op(OP.i32_add).set(t);
              f.get(t);
              f.get(tile).get(ii).i32(nr).op(OP.i32_mul).get(jj).op(OP.i32_add).i32(2);
              f.op(OP.i32_shl).op(OP.i32_add).mem(OP.f32_load, 2);
              f.get(t).mem(OP.f32_load, 2).f32(0).get(add).op(OP.select);
              f.op(OP.f32_add).mem(OP.f32_store, 2);
            });
          });
          f.op(OP.end);
        });
      });
    });
  });
  return f;
}
