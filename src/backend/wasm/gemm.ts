/**
 * Matrix products in WebAssembly SIMD128 on all cores: C = A·B (+ C), f32, with A and B in
 * either orientation and any leading dimensions.
 *
 * The shape of the code is BLIS's, small: B is packed once into panels of {@link NR} columns
 * (`k x 8`, contiguous), A into panels of {@link MR} rows (`k x 6`); a micro-kernel keeps a
 * `6 x 8` block of C in twelve `f32x4` registers and, for each step of k, loads two vectors of
 * B, splats six values of A and does twelve multiply-adds (`f32x4.relaxed_madd` where the
 * engine validates relaxed SIMD, else a multiply and an add). Twelve accumulators, two B
 * vectors and one splat fit the sixteen vector registers V8 uses on x64. Loops block k by
 * {@link KC} (a B micro-panel stays in L1 across the A panels) and rows by {@link MC} (the A
 * block stays in L2). Threads take contiguous ranges of A panels; B is packed first by all
 * threads, then a barrier, then each thread packs its A panels and computes their rows of C.
 *
 * @module
 */
import { Code, I32, type Local, V128, wasmModule } from "./_asm.ts";
import type { ThreadCall, WasmThreads } from "./threads.ts";

/** Rows of a micro-tile (and of an A panel). */
export const MR = 6;
/** Columns of a micro-tile (and of a B panel). */
export const NR = 8;
/** Steps of k per block. */
export const KC = 256;
/** Steps of k per iteration of the micro-kernel's loop. */
const UNROLL = 4;
/** A panels per row block. */
export const MC = 16;

/** One product: C[m x n] = op(A)[m x k] · op(B)[k x n] (+ C). */
export interface GemmProblem {
  m: number;
  n: number;
  k: number;
  /** A is stored k x m (A[i][p] at `p * lda + i`) instead of m x k. */
  transA?: boolean;
  /** B is stored n x k instead of k x n. */
  transB?: boolean;
  /** Leading dimension of A as stored (default: its row length). */
  lda?: number;
  /** Leading dimension of B as stored. */
  ldb?: number;
  /** Leading dimension of C (default n). */
  ldc?: number;
  /** Add to C instead of overwriting it. */
  accumulate?: boolean;
}

/** Byte offsets in the shared memory: operands, output, and scratch of {@link gemmScratchBytes}. */
export interface GemmBuffers {
  a: number;
  b: number;
  c: number;
  scratch: number;
}

const panels = (x: number, w: number) => Math.ceil(x / w);

/**
 * Scratch bytes a product needs (packed A and B), 16-byte aligned.
 *
 * @example
 * ```ts
 * import { gemmScratchBytes } from "./gemm.ts";
 * gemmScratchBytes({ m: 6, n: 8, k: 2 }); // 6*2*4 + 8*2*4 = 112
 * ```
 */
export function gemmScratchBytes(p: GemmProblem): number {
  const a = panels(p.m, MR) * MR * p.k * 4;
  const b = panels(p.n, NR) * NR * p.k * 4;
  return Math.ceil(a / 16) * 16 + b;
}

/** packB(begin, end, b, ldb, transB, k, n, dst): packs B panels [begin, end) (zeros beyond n). */
function packBFunction(): Code {
  const c = new Code(8);
  const [begin, end, b, ldb, transB, k, n, dst] = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => c.param(i));
  const p = c.local(I32), kk = c.local(I32), base = c.local(I32), out = c.local(I32);
  const step = c.local(I32), colStep = c.local(I32), col0 = c.local(I32);
  c.get(transB).if(() => {
    c.i32(4).set(step).get(ldb).i32(2).shl().set(colStep);
  }, () => {
    c.get(ldb).i32(2).shl().set(step).i32(4).set(colStep);
  });
  c.for(p, () => c.get(begin), end, 1, () => {
    c.get(dst).get(p).get(k).mul().i32(NR * 4).mul().add().set(out);
    c.get(p).i32(NR).mul().set(col0);
    // base = b + col0 * colStep: element (kk, col0 + j) at base + kk * step + j * colStep.
    c.get(b).get(col0).get(colStep).mul().add().set(base);
    c.for(kk, () => c.i32(0), k, 1, () => {
      for (let jj = 0; jj < NR; jj++) {
        // out[jj] = col0 + jj < n ? load(base + jj * colStep) : 0
        c.get(col0).i32(jj).add().get(n).ltU().if(() => {
          c.get(out).get(base).get(colStep).i32(jj).mul().add().f32Load().f32Store(jj * 4);
        }, () => {
          c.get(out).f32(0).f32Store(jj * 4);
        });
      }
      c.get(base).get(step).add().set(base);
      c.get(out).i32(NR * 4).add().set(out);
    });
  });
  return c;
}

/**
 * gemm(begin, end, a, lda, transA, packA, packB, c, ldc, m, n, k, accumulate): packs A panels
 * [begin, end) and computes their rows of C.
 */
function gemmFunction(fma: boolean): Code {
  const c = new Code(13);
  const [begin, end, a, lda, transA, packA, packBuf, cBuf, ldc, m, n, k, accumulate] = [
    0,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
  ].map((i) => c.param(i));
  const ip = c.local(I32), jp = c.local(I32), kk = c.local(I32), np = c.local(I32);
  const ic0 = c.local(I32), icEnd = c.local(I32), kc0 = c.local(I32), kcLen = c.local(I32);
  const pa = c.local(I32), pb = c.local(I32), paEnd = c.local(I32), first = c.local(I32);
  const src = c.local(I32), dst = c.local(I32), step = c.local(I32), rowStep = c.local(I32);
  const row0 = c.local(I32), col0 = c.local(I32), addr = c.local(I32);
  const acc: Local[][] = Array.from({ length: MR }, () => [c.local(V128), c.local(V128)]);
  const b0 = c.local(V128), b1 = c.local(V128), av = c.local(V128);

  // Along k, A moves transA ? lda * 4 : 4 bytes; along rows, transA ? 4 : lda * 4.
  c.get(transA).if(() => {
    c.get(lda).i32(2).shl().set(step).i32(4).set(rowStep);
  }, () => {
    c.i32(4).set(step).get(lda).i32(2).shl().set(rowStep);
  });
  c.get(n).i32(NR - 1).add().i32(NR).divU().set(np);

  // Pack A panels [begin, end): panel ip at packA + ip * k * MR * 4, element (kk, r) at + (kk * MR + r) * 4.
  c.for(ip, () => c.get(begin), end, 1, () => {
    for (let r = 0; r < MR; r++) {
      c.get(packA).get(ip).get(k).mul().i32(MR * 4).mul().add().i32(r * 4).add().set(dst);
      c.get(ip).i32(MR).mul().i32(r).add().tee(row0).get(m).ltU().if(() => {
        c.get(a).get(row0).get(rowStep).mul().add().set(src);
        c.for(kk, () => c.i32(0), k, 1, () => {
          c.get(dst).get(src).f32Load().f32Store();
          c.get(src).get(step).add().set(src);
          c.get(dst).i32(MR * 4).add().set(dst);
        });
      }, () => {
        c.for(kk, () => c.i32(0), k, 1, () => {
          c.get(dst).f32(0).f32Store();
          c.get(dst).i32(MR * 4).add().set(dst);
        });
      });
    }
  });

  const micro = () => {
    for (const row of acc) for (const x of row) c.v128Zero().set(x);
    // pa = packA + (ip * k + kc0) * MR * 4; pb = packB + (jp * k + kc0) * NR * 4
    c.get(packA).get(ip).get(k).mul().get(kc0).add().i32(MR * 4).mul().add().tee(pa);
    c.get(kcLen).i32(MR * 4).mul().add().set(paEnd);
    c.get(packBuf).get(jp).get(k).mul().get(kc0).add().i32(NR * 4).mul().add().set(pb);
    // One step of k at byte offsets `da` (A) and `db` (B) from the panel pointers.
    const step = (da: number, db: number) => {
      c.get(pb).v128Load(db).set(b0);
      c.get(pb).v128Load(db + 16).set(b1);
      for (let r = 0; r < MR; r++) {
        c.get(pa).v128Load32Splat(da + r * 4).set(av);
        for (const [q, bv] of [[0, b0], [1, b1]] as const) {
          if (fma) c.get(av).get(bv).get(acc[r][q]).f32x4RelaxedMadd().set(acc[r][q]);
          else c.get(av).get(bv).f32x4Mul().get(acc[r][q]).f32x4Add().set(acc[r][q]);
        }
      }
    };
    // Steps by UNROLL while that many remain, then one at a time.
    c.block(() =>
      c.loop(() => {
        c.get(pa).i32((UNROLL - 1) * MR * 4).add().get(paEnd).geU().brIf(1);
        for (let u = 0; u < UNROLL; u++) step(u * MR * 4, u * NR * 4);
        c.get(pa).i32(UNROLL * MR * 4).add().set(pa);
        c.get(pb).i32(UNROLL * NR * 4).add().set(pb);
        c.br(0);
      })
    );
    c.block(() =>
      c.loop(() => {
        c.get(pa).get(paEnd).geU().brIf(1);
        step(0, 0);
        c.get(pa).i32(MR * 4).add().set(pa);
        c.get(pb).i32(NR * 4).add().set(pb);
        c.br(0);
      })
    );
    // Store: full tiles with vector loads and stores, edge tiles lane by lane.
    c.get(ip).i32(MR).mul().set(row0);
    c.get(jp).i32(NR).mul().set(col0);
    c.get(row0).i32(MR).add().get(m).leU().get(col0).i32(NR).add().get(n).leU().and().if(() => {
      for (let r = 0; r < MR; r++) {
        c.get(cBuf).get(row0).i32(r).add().get(ldc).mul().get(col0).add().i32(2).shl().add()
          .set(addr);
        for (let q = 0; q < 2; q++) {
          c.get(first).if(() => {
            c.get(addr).get(acc[r][q]).v128Store(q * 16);
          }, () => {
            c.get(addr).get(acc[r][q]).get(addr).v128Load(q * 16).f32x4Add().v128Store(q * 16);
          });
        }
      }
    }, () => {
      for (let r = 0; r < MR; r++) {
        c.get(row0).i32(r).add().get(m).ltU().if(() => {
          c.get(cBuf).get(row0).i32(r).add().get(ldc).mul().get(col0).add().i32(2).shl().add()
            .set(addr);
          for (let j = 0; j < NR; j++) {
            const lane = () => c.get(addr).get(acc[r][j >> 2]).f32x4ExtractLane(j & 3);
            c.get(col0).i32(j).add().get(n).ltU().if(() => {
              c.get(first).if(() => {
                lane();
                c.f32Store(j * 4);
              }, () => {
                lane();
                c.get(addr).f32Load(j * 4).f32Add().f32Store(j * 4);
              });
            });
          }
        });
      }
    });
  };

  c.for(ic0, () => c.get(begin), end, MC, () => {
    c.get(ic0).i32(MC).add().tee(icEnd).get(end).get(icEnd).get(end).ltU().select().set(icEnd);
    c.for(kc0, () => c.i32(0), k, KC, () => {
      c.get(k).get(kc0).sub().tee(kcLen).i32(KC).get(kcLen).i32(KC).leU().select().set(kcLen);
      // Overwrite C on the first block unless accumulating.
      c.get(kc0).eqz().get(accumulate).eqz().and().set(first);
      c.for(jp, () => c.i32(0), np, 1, () => {
        c.for(ip, () => c.get(ic0), icEnd, 1, micro);
      });
    });
  });
  return c;
}

/** Whether the engine validates relaxed SIMD's `f32x4.relaxed_madd`. */
export function hasRelaxedSimd(): boolean {
  const c = new Code(0);
  c.v128Zero().v128Zero().v128Zero().f32x4RelaxedMadd().drop();
  return WebAssembly.validate(wasmModule([{ name: "f", code: c }], { shared: false, maxPages: 1 }));
}

/**
 * The GEMM kernels loaded into a thread pool.
 *
 * @example
 * ```ts
 * import { WasmThreads } from "./threads.ts";
 * import { WasmGemm } from "./gemm.ts";
 * const memory = new WebAssembly.Memory({ initial: 1, maximum: 1024, shared: true });
 * const pool = await WasmThreads.create(memory, { threads: 1 });
 * const gemm = WasmGemm.load(pool);
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4], 0); // A (2x2)
 * f.set([5, 6, 7, 8], 4); // B (2x2)
 * pool.run(gemm.calls({ m: 2, n: 2, k: 2 }, { a: 0, b: 16, c: 32, scratch: 64 }));
 * [...f.subarray(8, 12)]; // [19, 22, 43, 50]
 * pool.close();
 * ```
 */
export class WasmGemm {
  private constructor(
    private readonly module: number,
    /** Whether the micro-kernel uses fused multiply-add (relaxed SIMD). */
    readonly fma: boolean,
  ) {}

  /** Compiles the kernels for `pool` (with FMA where the engine offers it, unless `fma: false`). */
  static load(pool: WasmThreads, options: { fma?: boolean } = {}): WasmGemm {
    const fma = options.fma ?? hasRelaxedSimd();
    const shared = typeof SharedArrayBuffer !== "undefined" &&
      pool.memory.buffer instanceof SharedArrayBuffer;
    const bytes = wasmModule([
      { name: "packB", code: packBFunction() },
      { name: "gemm", code: gemmFunction(fma) },
    ], { shared, maxPages: 65536 });
    return new WasmGemm(pool.load(bytes), fma);
  }

  /** The calls computing `p` on `buffers` (run them with the pool, after earlier work). */
  calls(p: GemmProblem, buffers: GemmBuffers): ThreadCall[] {
    const { m, n, k } = p;
    for (const [name, v] of [["m", m], ["n", n], ["k", k]] as const) {
      if (!Number.isInteger(v) || v < 0) {
        throw new RangeError(`gemm: ${name} must be a nonnegative integer, got ${v}`);
      }
    }
    if (m === 0 || n === 0) return [];
    const lda = p.lda ?? (p.transA ? m : k);
    const ldb = p.ldb ?? (p.transB ? k : n);
    const ldc = p.ldc ?? n;
    const packA = buffers.scratch;
    const packB = packA + Math.ceil(panels(m, MR) * MR * k * 4 / 16) * 16;
    if (k === 0) {
      throw new RangeError("gemm: k = 0 (an empty product) is the caller's to fill with zeros");
    }
    return [
      {
        module: this.module,
        fn: "packB",
        total: panels(n, NR),
        args: [buffers.b, ldb, p.transB ? 1 : 0, k, n, packB],
        grain: Math.max(1, Math.ceil(4096 / k)),
      },
      {
        module: this.module,
        fn: "gemm",
        total: panels(m, MR),
        args: [
          buffers.a,
          lda,
          p.transA ? 1 : 0,
          packA,
          packB,
          buffers.c,
          ldc,
          m,
          n,
          k,
          p.accumulate ? 1 : 0,
        ],
        // A thread is worth about 64k multiply-adds.
        grain: Math.max(1, Math.ceil(65536 / (MR * n * k))),
      },
    ];
  }
}
