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
import { FunctionBuilder, OP, uleb } from "./wasm_writer.ts";

/** The i32 fields of a GEMM parameter block, in order (bases in bytes, strides in elements). */
export const GEMM_PARAMS = [
  "aBase",
  "aRs",
  "aCs",
  "bBase",
  "bRs",
  "bCs",
  "cBase",
  "cRs",
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
  /** Whether to use relaxed-SIMD fused multiply-add. */
  fma: boolean;
}

/**
 * Scratch bytes one `gemm` call needs for `n` columns: packed B (`kc x n` rounded up to whole
 * panels), packed A (`kc x mr`) and an edge tile.
 *
 * @example
 * ```ts
 * import { gemmScratchBytes } from "./wasm_gemm.ts";
 * gemmScratchBytes({ mr: 4, nr: 8, kc: 256, fma: false }, 8); // 12416
 * ```
 */
export function gemmScratchBytes(shape: GemmShape, n: number): number {
  const panels = Math.ceil(Math.max(n, 1) / shape.nr);
  return 4 * (shape.kc * panels * shape.nr + shape.kc * shape.mr + shape.mr * shape.nr) + 64;
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
  const bytes = [
    0x00,
    0x61,
    0x73,
    0x6d,
    0x01,
    0x00,
    0x00,
    0x00,
    0x01,
    0x05,
    0x01,
    0x60,
    0x00,
    0x01,
    0x7b,
    0x03,
    0x02,
    0x01,
    0x00,
    0x0a,
    ...(() => {
      const body = f.encode();
      return [...uleb(body.length + 1), 0x01, ...body];
    })(),
  ];
  try {
    return WebAssembly.validate(new Uint8Array(bytes));
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
 * const body = gemmFunction({ mr: 4, nr: 8, kc: 64, fma: false });
 * WebAssembly.validate(encodeModule({
 *   imports: [], memory: { initial: 1, maximum: 1, shared: false },
 *   functions: [{ name: "gemm", body }],
 * })); // true
 * ```
 */
export function gemmFunction(shape: GemmShape): FunctionBuilder {
  const { mr, nr, kc: KC } = shape;
  if (nr % 4 !== 0 || mr < 1) throw new RangeError(`Bad GEMM block ${mr}x${nr}`);
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
  const bBase = field("bBase"), bRs = field("bRs"), bCs = field("bCs");
  const cBase = field("cBase"), cRs = field("cRs"), n = field("n"), k = field("k");
  const accum = field("accumulate");
  const panels = L(), packB = L(), packA = L(), tile = L();
  const pc = L(), kc = L(), jp = L(), kk = L(), jj = L(), ip = L(), ii = L();
  const src = L(), dst = L(), rows = L(), cols = L(), add = L(), pa = L(), pb = L(), t = L();
  // Byte strides.
  const shl2 = (l: number) => f.get(l).i32(2).op(OP.i32_shl).set(l);
  [aRs, aCs, bRs, bCs, cRs].forEach(shl2);
  // Columns [n0, n1): B and C start at column n0.
  f.get(bBase).get(N0).get(bCs).op(OP.i32_mul).op(OP.i32_add).set(bBase);
  f.get(cBase).get(N0).i32(2).op(OP.i32_shl).op(OP.i32_add).set(cBase);
  f.get(N1).get(N0).op(OP.i32_sub).set(n);
  // panels = ceil(n / nr); packB = scratch; packA after it; tile after that.
  f.get(n).i32(nr - 1).op(OP.i32_add).i32(nr).op(OP.i32_div_u).set(panels);
  f.get(S).set(packB);
  f.get(packB).get(panels).i32(KC * nr * 4).op(OP.i32_mul).op(OP.i32_add).set(packA);
  f.get(packA).i32(KC * mr * 4).op(OP.i32_add).set(tile);

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

  loop(pc, zero, () => f.get(k), KC, () => {
    // kc = min(KC, k - pc)
    f.get(k).get(pc).op(OP.i32_sub).set(kc);
    f.get(kc).i32(KC).get(kc).i32(KC).op(OP.i32_lt_s).op(OP.select).set(kc);
    // add = accumulate || pc > 0
    f.get(accum).get(pc).i32(0).op(OP.i32_gt_s).op(OP.i32_or).set(add);
    // Pack B: packB[((jp * kc) + kk) * nr + jj] = j < n ? B[(pc + kk) * bRs + j * bCs] : 0.
    f.get(packB).set(dst);
    loop(jp, zero, () => f.get(panels), 1, () => {
      loop(kk, zero, () => f.get(kc), 1, () => {
        // src = bBase + (pc + kk) * bRs + jp * nr * bCs
        f.get(bBase).get(pc).get(kk).op(OP.i32_add).get(bRs).op(OP.i32_mul).op(OP.i32_add);
        f.get(jp).i32(nr).op(OP.i32_mul).get(bCs).op(OP.i32_mul).op(OP.i32_add).set(src);
        // A whole panel of contiguous columns: vector copies.
        f.get(bCs).i32(4).op(OP.i32_eq);
        f.get(jp).i32(1).op(OP.i32_add).i32(nr).op(OP.i32_mul).get(n).op(OP.i32_le_s);
        f.op(OP.i32_and).op(OP.if, [0x40]);
        for (let v = 0; v < nv; v++) {
          f.get(dst).get(src).mem(OP.v128_load, 2, 16 * v).mem(OP.v128_store, 4, 16 * v);
        }
        f.op(OP.else);
        for (let j = 0; j < nr; j++) {
          // Columns past n read B's first element (never past memory) and store 0.
          const inside = () =>
            f.get(jp).i32(nr).op(OP.i32_mul).i32(j).op(OP.i32_add).get(n).op(OP.i32_lt_s);
          f.get(dst);
          f.get(src).get(bBase);
          inside();
          f.op(OP.select).mem(OP.f32_load, 2).f32(0);
          inside();
          f.op(OP.select).mem(OP.f32_store, 2, 4 * j);
          f.get(src).get(bCs).op(OP.i32_add).set(src);
        }
        f.op(OP.end);
        f.get(dst).i32(nr * 4).op(OP.i32_add).set(dst);
      });
    });
    loop(ip, () => f.get(M0), () => f.get(M1), mr, () => {
      // rows = min(mr, m1 - ip)
      f.get(M1).get(ip).op(OP.i32_sub).set(rows);
      f.get(rows).i32(mr).get(rows).i32(mr).op(OP.i32_lt_s).op(OP.select).set(rows);
      // Pack A: packA[kk * mr + ii] = ii < rows ? A[(ip + ii) * aRs + (pc + kk) * aCs] : 0.
      f.get(packA).set(dst);
      loop(kk, zero, () => f.get(kc), 1, () => {
        f.get(aBase).get(ip).get(aRs).op(OP.i32_mul).op(OP.i32_add);
        f.get(pc).get(kk).op(OP.i32_add).get(aCs).op(OP.i32_mul).op(OP.i32_add).set(src);
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
      loop(jp, zero, () => f.get(panels), 1, () => {
        const acc = Array.from({ length: mr * nv }, () => L("v128"));
        const bv = Array.from({ length: nv }, () => L("v128"));
        const av = L("v128");
        for (const a of acc) f.op(OP.v128_const, new Array(16).fill(0)).set(a);
        f.get(packA).set(pa);
        f.get(packB).get(jp).get(kc).op(OP.i32_mul).i32(nr * 4).op(OP.i32_mul).op(OP.i32_add);
        f.set(pb);
        loop(kk, zero, () => f.get(kc), 1, () => {
          for (let v = 0; v < nv; v++) f.get(pb).mem(OP.v128_load, 4, 16 * v).set(bv[v]);
          for (let i = 0; i < mr; i++) {
            f.get(pa).mem(OP.v128_load32_splat, 2, 4 * i).set(av);
            for (let v = 0; v < nv; v++) {
              const a = acc[i * nv + v];
              if (shape.fma) f.get(av).get(bv[v]).get(a).op(OP.f32x4_relaxed_madd).set(a);
              else f.get(a).get(av).get(bv[v]).op(OP.f32x4_mul).op(OP.f32x4_add).set(a);
            }
          }
          f.get(pa).i32(mr * 4).op(OP.i32_add).set(pa);
          f.get(pb).i32(nr * 4).op(OP.i32_add).set(pb);
        });
        // cols = min(nr, n - jp * nr)
        f.get(n).get(jp).i32(nr).op(OP.i32_mul).op(OP.i32_sub).set(cols);
        f.get(cols).i32(nr).get(cols).i32(nr).op(OP.i32_lt_s).op(OP.select).set(cols);
        // dst = cBase + ip * cRs + jp * nr * 4
        f.get(cBase).get(ip).get(cRs).op(OP.i32_mul).op(OP.i32_add);
        f.get(jp).i32(nr * 4).op(OP.i32_mul).op(OP.i32_add).set(dst);
        // Full block: vector stores (adding C when accumulating).
        f.get(rows).i32(mr).op(OP.i32_eq).get(cols).i32(nr).op(OP.i32_eq).op(OP.i32_and);
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
            // t = dst + ii * cRs + jj * 4
            f.get(dst).get(ii).get(cRs).op(OP.i32_mul).op(OP.i32_add);
            f.get(jj).i32(2).op(OP.i32_shl).op(OP.i32_add).set(t);
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
  return f;
}
