// Tensors larger than one storage binding, bound as several ranges of their buffer: parity
// with the cpu backend on small tensors split into many parts (the backend's binding limit
// lowered, for tests), the clear error of the kernels that cannot split, and one real tensor
// over llvmpipe's 128 MiB limit. Every test skips itself, visibly, when there is no adapter.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { cpuBackend, withBackend, withBackendAsync } from "../src/backend/registry.ts";
import { assertClose, gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

type T = cg.Tensor;
const opts = { ignore: gpu === null, sanitizeResources: false, sanitizeOps: false };

/** Runs `fn` with the backend's binding limit lowered to `bytes`. */
async function withLimit<R>(bytes: number, fn: () => Promise<R>): Promise<R> {
  const saved = gpu!.bindingLimit;
  gpu!.bindingLimit = bytes;
  try {
    return await withBackendAsync(gpu!, fn);
  } finally {
    gpu!.bindingLimit = saved;
  }
}

/**
 * Asserts that some kernel binds one tensor (of `dtype`, read or written as `write` says) as
 * several ranges of its buffer: at least `parts` bindings with a `part` and that tensor's shape.
 */
function assertSplit(
  kernels: cg.KernelSummary[],
  want: { write: boolean; dtype: string; parts?: number },
): void {
  const found = kernels.some((k) => {
    const counts = new Map<string, number>();
    for (const b of k.bindings) {
      if (b.part === undefined || b.write !== want.write || b.dtype !== want.dtype) continue;
      const key = String(b.shape);
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return [...counts.values()].some((n) => n >= (want.parts ?? 2));
  });
  assert.ok(
    found,
    `no kernel ${want.write ? "writes" : "reads"} a ${want.dtype} tensor through ${
      want.parts ?? 2
    }+ split bindings: ${kernels.map((k) => k.name).join(", ")}`,
  );
}

interface Params {
  x: T;
  table: T;
  w: T;
}

/**
 * Elementwise ops, row and column reductions (sum, max), a gather and a small matmul; under a
 * 1 KiB binding limit x (4,800 bytes), table (4,000 bytes), the gathered rows and the
 * gradients of x and table are split into 4 or 5 parts.
 */
function loss(p: Params, idx: T): T {
  const a = cg.mul(cg.exp(cg.mul(p.x, 0.1)), p.x);
  const rows = cg.max(a, 1); // [40]
  const cols = cg.sum(cg.mul(a, a), 0); // [30]
  const e = cg.take(p.table, idx, 0); // [40, 20]
  const e2 = cg.sum(cg.reshape(e, [8, 5, 20]), 1); // [8, 20]
  const h = cg.tanh(cg.matmul(e2, p.w)); // [8, 8]
  return cg.add(
    cg.add(cg.mean(rows), cg.mul(cg.mean(cols), 0.01)),
    cg.mean(cg.mul(h, h)),
  );
}

function params(): { p: Params; idx: T } {
  return {
    p: {
      x: cg.normal(cg.randomKey(11), [40, 30]),
      table: cg.normal(cg.randomKey(12), [50, 20], { std: 0.5 }),
      w: cg.normal(cg.randomKey(13), [20, 8], { std: 0.3 }),
    },
    idx: cg.tensor(Int32Array.from({ length: 40 }, (_, i) => (i * 17 + 3) % 50), [40]),
  };
}

Deno.test({
  name: "compile() splits tensors over the binding limit: values and gradients as on the cpu",
  ...opts,
  async fn() {
    const { p, idx } = params();
    const vg = (q: Params, i: T) => cg.valueAndGrad((r: Params) => loss(r, i))(q) as [T, Params];
    const [v0, g0] = withBackend(cpuBackend(), () => vg(p, idx));
    await withLimit(1024, async () => {
      const f = cg.compile(vg);
      const [v, g] = f(p, idx);
      // Reads and writes through split bindings (a tensor bound as five or more ranges).
      assertSplit(f.kernels(), { write: false, dtype: "float32", parts: 5 });
      assertSplit(f.kernels(), { write: true, dtype: "float32" });
      assertClose(await v.data(), await v0.data(), "loss");
      assertClose(await g.x.data(), await g0.x.data(), "d/dx");
      assertClose(await g.table.data(), await g0.table.data(), "d/dtable");
      assertClose(await g.w.data(), await g0.w.data(), "d/dw");
    });
  },
});

Deno.test({
  name: "compile() splits int32 tensors and a donated step's parameters",
  ...opts,
  async fn() {
    const step = (x: T, k: T) => ({
      x: cg.add(cg.mul(x, 0.5), cg.cast(k, "float32")),
      k: cg.add(k, 1),
      s: cg.sum(x),
    });
    const x = cg.normal(cg.randomKey(21), [3000]);
    const k = cg.tensor(Int32Array.from({ length: 3000 }, (_, i) => i % 7 - 3), [3000]);
    const want = withBackend(cpuBackend(), () => step(step(x, k).x, step(x, k).k));
    const wx = await want.x.data(), wk = await want.k.data(), ws = await want.s.data();
    await withLimit(4096, async () => {
      const f = cg.compile(step, { donate: [0, 1] });
      const xs = await x.data(), ks = await k.data();
      const r1 = f(cg.tensor(xs, [3000]), cg.tensor(ks, [3000], { dtype: "int32" }));
      const r2 = f(r1.x, r1.k);
      assertSplit(f.kernels(), { write: true, dtype: "int32" });
      assertClose(await r2.x.data(), wx, "x");
      assert.deepEqual(await r2.k.data(), wk);
      assertClose(await r2.s.data(), ws, "sum");
    });
  },
});

interface GemmParams {
  a: T;
  b: T;
  b2: T;
  x: T;
  w: T;
}

/**
 * Matrix products (plain and with a transposed operand) and a convolution; under a 1 KiB
 * binding limit a (3,840 bytes), b2 (1,536), the products (2,560), x (2,400), y (3,200) and
 * the gradients of a, x and y are split: the tiled kernels read and write them in parts.
 */
function gemmLoss(p: GemmParams): T {
  const c = cg.matmul(p.a, p.b); // [40, 16]
  const d = cg.matmul(p.a, cg.transpose(p.b2)); // [40, 16]
  const y = cg.conv2d(p.x, p.w, { padding: 1 }); // [2, 4, 10, 10]
  return cg.add(cg.mean(cg.mul(c, d)), cg.mean(cg.tanh(y)));
}

Deno.test({
  name: "compile() splits the operands and outputs of matmul and conv2d kernels",
  ...opts,
  async fn() {
    const p: GemmParams = {
      a: cg.normal(cg.randomKey(31), [40, 24]),
      b: cg.normal(cg.randomKey(32), [24, 16], { std: 0.3 }),
      b2: cg.normal(cg.randomKey(33), [16, 24], { std: 0.3 }),
      x: cg.normal(cg.randomKey(34), [2, 3, 10, 10]),
      w: cg.normal(cg.randomKey(35), [4, 3, 3, 3], { std: 0.3 }),
    };
    const vg = (q: GemmParams) => cg.valueAndGrad(gemmLoss)(q) as [T, GemmParams];
    const [v0, g0] = withBackend(cpuBackend(), () => vg(p));
    await withLimit(1024, async () => {
      const f = cg.compile(vg);
      const [v, g] = f(p);
      // The GEMM kernels read their operands and write their output through split bindings.
      const gemms = f.kernels().filter((k) => k.name.startsWith("gemm:"));
      assertSplit(gemms, { write: false, dtype: "float32" });
      assertSplit(gemms, { write: true, dtype: "float32" });
      assertClose(await v.data(), await v0.data(), "loss");
      for (const k of ["a", "b", "b2", "x", "w"] as const) {
        assertClose(await g[k].data(), await g0[k].data(), `d/d${k}`);
      }
    });
  },
});

Deno.test({
  name: "compile() names the tensor and maxBufferSize when a tensor exceeds one buffer",
  ...opts,
  async fn() {
    const limits = gpu!.gpu.limits;
    const saved = limits.maxBufferSize;
    limits.maxBufferSize = 4096;
    try {
      await withBackendAsync(gpu!, async () => {
        const f = cg.compile((x: T) => cg.exp(x));
        assert.throws(
          () => f(cg.zeros([1500])),
          (e: Error) =>
            e instanceof RangeError &&
            /float32\[1500\] tensor \(6000 bytes, a 6144-byte buffer\) exceeds the adapter's maxBufferSize of 4096 bytes/
              .test(e.message),
        );
        await Promise.resolve();
      });
    } finally {
      limits.maxBufferSize = saved;
    }
  },
});

// 40M floats (160 MB): over llvmpipe's 128 MiB maxStorageBufferBindingSize.
const BIG = 40_000_000;
Deno.test({
  name: "compile() runs an elementwise op and a sum over a 160 MB tensor (real binding limit)",
  ...opts,
  ignore: gpu === null || gpu.bindingLimit >= BIG * 4,
  async fn() {
    await withBackendAsync(gpu!, async () => {
      const f = cg.compile((x: T) => {
        const y = cg.add(cg.mul(x, 2), 1);
        return { y, s: cg.sum(y) };
      });
      // x[i] = i mod 1000 - 500, so y[i] = 2 (i mod 1000) - 999 and each block of 1000
      // sums to 2 * 499500 - 999000 = 0.
      const xs = new Float32Array(BIG);
      for (let i = 0; i < BIG; i++) xs[i] = (i % 1000) - 500;
      const r = f(cg.tensor(xs, [BIG]));
      const y = await r.y.data() as Float32Array;
      assert.equal(y.length, BIG);
      for (const i of [0, 1, 33_554_431, 33_554_432, 33_554_433, BIG - 1]) {
        assert.equal(y[i], 2 * (i % 1000) - 999, `y[${i}]`);
      }
      assertClose(await r.s.data(), new Float32Array([0]), "sum", { atol: 1e-6 });
    });
  },
});
