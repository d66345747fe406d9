// The WebGPU backend's compile pool: worker threads compile a program's new pipelines beside the
// main thread, the results are the same, and the environment variable is checked.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { withBackendAsync } from "../src/backend/registry.ts";
import { requestGpu } from "../src/backend/webgpu/device.ts";
import { CompilePool, compileThreads } from "../src/backend/webgpu/compile_pool.ts";
import { WebGpuBackend } from "../src/backend/webgpu/webgpu_backend.ts";
import { gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

const opts = { ignore: gpu === null, sanitizeResources: false, sanitizeOps: false };

function withEnv<T>(vars: Record<string, string | undefined>, f: () => T): T {
  const old = Object.fromEntries(Object.keys(vars).map((k) => [k, Deno.env.get(k)]));
  const set = (k: string, v: string | undefined) =>
    v === undefined ? Deno.env.delete(k) : Deno.env.set(k, v);
  for (const [k, v] of Object.entries(vars)) set(k, v);
  try {
    return f();
  } finally {
    for (const [k, v] of Object.entries(old)) set(k, v);
  }
}

Deno.test("compileThreads() reads COSGRAD_COMPILE_THREADS, else helps only Mesa with its cache on", () => {
  const llvmpipe = "llvmpipe (LLVM 15.0.6, 256 bits)";
  withEnv({ COSGRAD_COMPILE_THREADS: "2" }, () => assert.equal(compileThreads("Apple M2"), 2));
  withEnv({ COSGRAD_COMPILE_THREADS: "0" }, () => assert.equal(compileThreads(llvmpipe), 0));
  withEnv({ COSGRAD_COMPILE_THREADS: "two" }, () => {
    assert.throws(
      () => compileThreads(llvmpipe),
      /COSGRAD_COMPILE_THREADS "two": expected a whole number/,
    );
  });
  withEnv({ COSGRAD_COMPILE_THREADS: undefined, MESA_SHADER_CACHE_DISABLE: undefined }, () => {
    assert.equal(compileThreads("NVIDIA H100"), 0);
    const cores = navigator.hardwareConcurrency;
    assert.equal(compileThreads(llvmpipe), Math.max(0, Math.min(3, cores - 1)));
  });
  withEnv({ COSGRAD_COMPILE_THREADS: undefined, MESA_SHADER_CACHE_DISABLE: "true" }, () => {
    assert.equal(compileThreads(llvmpipe), 0);
  });
});

Deno.test({
  name:
    "a compile pool's worker compiles some of a first run's pipelines; the results are the same",
  ...opts,
  async fn() {
    // A device of its own, so that every pipeline is new to it; scales unique to this run, so
    // that no shader cache knows them and each compile takes a while.
    const backend = new WebGpuBackend(await requestGpu());
    const pool = await CompilePool.start(backend.gpu, 1);
    assert.ok(pool !== null);
    backend.compilePool = pool;
    await pool.ready;
    try {
      const salt = Math.random();
      const scales = Array.from({ length: 6 }, (_, i) => 1 + i + salt);
      const a = cg.normal(cg.randomKey(1), [24, 40]);
      const b = cg.normal(cg.randomKey(2), [40, 36]);
      const f = cg.compile((a: cg.Tensor, b: cg.Tensor) =>
        scales.map((s, i) => cg.tanh(cg.mul(cg.matmul(cg.add(a, i), b), s)))
      );
      const got = await withBackendAsync(backend, async () => {
        const outs = f(a, b);
        return await Promise.all(outs.map((o) => o.data()));
      });
      const want = await Promise.all(f(a, b).map((o) => o.data()));
      got.forEach((g, i) => {
        const w = want[i];
        for (let j = 0; j < w.length; j++) {
          assert.ok(Math.abs(Number(g[j]) - Number(w[j])) < 1e-4, `output ${i}[${j}]`);
        }
      });
      assert.equal(pool.stats.batches, 1);
      assert.ok(pool.stats.shared >= 1, `the worker compiled ${pool.stats.shared} pipelines`);
      if (!/^(1|true|yes|on)$/i.test(Deno.env.get("MESA_SHADER_CACHE_DISABLE") ?? "")) {
        assert.ok(pool.active, "this device found the worker's pipelines in the shader cache");
      }
      // A second call compiles nothing new.
      await withBackendAsync(backend, async () => await f(a, b)[0].data());
      assert.equal(pool.stats.batches, 1);
    } finally {
      pool.stop();
    }
  },
});
