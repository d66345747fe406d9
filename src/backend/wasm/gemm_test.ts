import assert from "node:assert/strict";
import { WasmThreads } from "./threads.ts";
import { type GemmProblem, gemmScratchBytes, hasRelaxedSimd, WasmGemm } from "./gemm.ts";
import { rng } from "../../kernel/_random_kernel_test_util.ts";

const opts = { sanitizeResources: false, sanitizeOps: false };

/** Runs `p` with random operands; returns the largest error relative to sum |a||b| per element. */
function check(pool: WasmThreads, gemm: WasmGemm, p: GemmProblem, seed: number): number {
  const r = rng(seed);
  const { m, n, k } = p;
  const lda = p.lda ?? (p.transA ? m : k), ldb = p.ldb ?? (p.transB ? k : n), ldc = p.ldc ?? n;
  const aLen = (p.transA ? k : m) * lda, bLen = (p.transB ? n : k) * ldb, cLen = m * ldc;
  const a = Float32Array.from({ length: aLen }, () => r() * 2 - 1);
  const b = Float32Array.from({ length: bLen }, () => r() * 2 - 1);
  const c0 = Float32Array.from({ length: cLen }, () => r() * 2 - 1);
  const at = { a: 0, b: aLen * 4, c: (aLen + bLen) * 4, scratch: (aLen + bLen + cLen) * 4 };
  const need = at.scratch + gemmScratchBytes(p);
  const mem = pool.memory;
  if (mem.buffer.byteLength < need) mem.grow(Math.ceil((need - mem.buffer.byteLength) / 65536));
  const f = new Float32Array(mem.buffer);
  f.set(a, 0);
  f.set(b, aLen);
  f.set(c0, aLen + bLen);
  pool.run(gemm.calls(p, at));
  const c = f.slice(aLen + bLen, aLen + bLen + cLen);
  let worst = 0;
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = p.accumulate ? c0[i * ldc + j] : 0, mag = Math.abs(s);
      for (let q = 0; q < k; q++) {
        const x = p.transA ? a[q * lda + i] : a[i * lda + q];
        const y = p.transB ? b[j * ldb + q] : b[q * ldb + j];
        s += x * y;
        mag += Math.abs(x * y);
      }
      worst = Math.max(worst, Math.abs(c[i * ldc + j] - s) / (mag + 1e-30));
    }
    // Padding columns of C (ldc > n) are untouched.
    for (let j = n; j < ldc; j++) {
      assert.equal(c[i * ldc + j], c0[i * ldc + j], "C padding written");
    }
  }
  return worst;
}

for (const fma of [false, true]) {
  Deno.test({
    name: `wasm gemm (${
      fma ? "relaxed FMA" : "mul + add"
    }) matches float64 on random shapes, orientations, strides`,
    ignore: fma && !hasRelaxedSimd(),
    ...opts,
    fn: async () => {
      const memory = new WebAssembly.Memory({ initial: 16, maximum: 4096, shared: true });
      const pool = await WasmThreads.create(memory, { threads: 2 });
      try {
        const gemm = WasmGemm.load(pool, { fma });
        const r = rng(fma ? 7 : 8);
        const shapes: GemmProblem[] = [
          { m: 1, n: 1, k: 1 },
          { m: 6, n: 8, k: 3 },
          { m: 7, n: 9, k: 300 }, // k over one block
          { m: 100, n: 17, k: 5 }, // rows over one row block
          { m: 13, n: 40, k: 513, transA: true, transB: true },
          { m: 5, n: 3, k: 4, lda: 9, ldb: 7, ldc: 6, accumulate: true },
        ];
        for (let i = 0; i < 40; i++) {
          const m = 1 + Math.floor(r() * 30),
            n = 1 + Math.floor(r() * 30),
            k = 1 + Math.floor(r() * 40);
          shapes.push({ m, n, k, transA: r() < 0.5, transB: r() < 0.5, accumulate: r() < 0.3 });
        }
        shapes.forEach((p, i) => {
          const err = check(pool, gemm, p, i);
          assert.ok(err < 1e-5, `shape ${JSON.stringify(p)}: relative error ${err}`);
        });
        console.log(`${shapes.length} products within 1e-5 of float64 (relative to sum |a b|)`);
      } finally {
        pool.close();
      }
    },
  });
}

Deno.test("wasm gemm refuses bad sizes and k = 0", opts, async () => {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
  const pool = await WasmThreads.create(memory, { threads: 1 });
  try {
    const gemm = WasmGemm.load(pool);
    assert.throws(
      () => gemm.calls({ m: -1, n: 2, k: 2 }, { a: 0, b: 0, c: 0, scratch: 0 }),
      /m must be/,
    );
    assert.throws(
      () => gemm.calls({ m: 2, n: 2, k: 0 }, { a: 0, b: 0, c: 0, scratch: 0 }),
      /k = 0/,
    );
    assert.deepEqual(gemm.calls({ m: 0, n: 2, k: 2 }, { a: 0, b: 0, c: 0, scratch: 0 }), []);
  } finally {
    pool.close();
  }
});
