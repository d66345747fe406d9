// The transforms on WebGPU (and wasm) against the cpu interpreter: the traced random streams
// are the same integers bit for bit (and the same uniforms), a compiled loop draws fresh values
// per key without retracing, vmap(grad) and grad(compile) agree with the cpu, and checkpoint
// recomputes (more kernels) without changing values. The WebGPU tests skip themselves, visibly,
// without an adapter.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { cpuBackend, withBackend, withBackendAsync } from "../src/backend/registry.ts";
import { assertClose, gpu } from "../src/backend/webgpu/_gpu_test_util.ts";
import { WasmBackend } from "../src/backend/wasm/wasm_backend.ts";

type T = cg.Tensor;
const opts = { ignore: gpu === null, sanitizeResources: false, sanitizeOps: false };

function streams(seed: number): T[] {
  const key = cg.prngKey(seed);
  const [k1, k2] = [0, 1].map((i) =>
    cg.reshape(cg.slice(cg.splitKey(key), [i, 0], [i + 1, 2]), [2])
  );
  return [
    cg.randomBits(key, [1000]),
    cg.splitKey(key, 5),
    cg.uniform(k1, [1000]),
    cg.bernoulli(k2, 0.3, [257]),
    cg.permutation(key, 100),
    cg.normal(key, [300]),
  ];
}

Deno.test({
  name: "random streams are identical on cpu and webgpu (integers bit for bit)",
  ...opts,
  async fn() {
    for (const seed of [0, 1, 2 ** 40 + 7]) {
      const onCpu = withBackend(cpuBackend(), () => streams(seed));
      const onGpu = withBackend(gpu!, () => streams(seed));
      const names = ["randomBits", "splitKey", "uniform", "bernoulli", "permutation"];
      for (let i = 0; i < names.length; i++) {
        assert.deepEqual(
          await onGpu[i].data(),
          await onCpu[i].data(),
          `${names[i]} (seed ${seed}) differs between webgpu and cpu`,
        );
      }
      // normal goes through log, sqrt and cos: the backends' own float32 functions
      assertClose(await onGpu[5].data(), await onCpu[5].data(), `normal (seed ${seed})`, {
        rtol: 1e-5,
        atol: 1e-6,
      });
    }
  },
});

Deno.test({
  name: "sin is float32-correct near 0 on webgpu too",
  ...opts,
  async fn() {
    const [s] = await withBackend(gpu!, () => cg.sin(cg.tensor([1e-6]))).data();
    assert.ok(Math.abs(s - 1e-6) / 1e-6 < 1e-5, `sin(1e-6) = ${s} on webgpu`);
  },
});

Deno.test({
  name: "a compiled step on webgpu draws a fresh dropout mask per key, traced once",
  ...opts,
  async fn() {
    await withBackendAsync(gpu!, async () => {
      const step = cg.compile((key: T, x: T) => cg.nn.dropout(key, x, { rate: 0.5 }));
      const x = cg.ones([256]);
      const masks = new Set<string>();
      let key = cg.prngKey(5);
      for (let i = 0; i < 3; i++) {
        masks.add((await step(key, x).data()).join());
        key = cg.reshape(cg.slice(cg.splitKey(key), [1, 0], [2, 2]), [2]);
      }
      assert.equal(masks.size, 3);
      assert.equal(step.traces, 1);
    });
  },
});

Deno.test({
  name: "vmap(grad), grad(compile) and checkpoint on webgpu match the cpu",
  ...opts,
  async fn() {
    const w = cg.normal(cg.randomKey(1), [8, 8], { std: 0.3 });
    const xs = cg.normal(cg.randomKey(2), [4, 8]);
    const block = (x: T) => cg.tanh(cg.matmul(w, cg.sin(x)));
    const loss = (x: T) => cg.sum(block(block(x)));
    const lossCk = (x: T) => cg.sum(cg.checkpoint(block)(cg.checkpoint(block)(x)));
    const run = (backend: typeof gpu) =>
      withBackend(backend!, () => {
        const plain = cg.compile(cg.grad(loss)), ck = cg.compile(cg.grad(lossCk));
        const col = cg.reshape(cg.slice(xs, [0, 0], [1, 8]), [8, 1]);
        return {
          perExample: cg.vmap(cg.grad(loss))(cg.reshape(xs, [4, 8, 1])),
          gradCompile: cg.grad(cg.compile(loss))(col),
          plain: plain(col),
          ck: ck(col),
          kernels: backend === gpu ? [plain.dispatches(), ck.dispatches()] : [0, 0],
        };
      });
    const want = run(cpuBackend() as typeof gpu);
    const got = run(gpu);
    for (const k of ["perExample", "gradCompile", "plain", "ck"] as const) {
      assertClose(await got[k].data(), await want[k].data(), k);
    }
    assertClose(await got.ck.data(), await got.plain.data(), "checkpoint vs plain on webgpu");
    const [plainKernels, ckKernels] = got.kernels;
    assert.ok(
      ckKernels > plainKernels,
      `checkpoint recomputes: ${ckKernels} kernels against ${plainKernels}`,
    );
  },
});

Deno.test({
  name: "random streams are identical on cpu and wasm, and vmap(grad) agrees",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const wasm = await WasmBackend.create({ threads: 2 });
    try {
      const names = ["randomBits", "splitKey", "uniform", "bernoulli", "permutation"];
      const onCpu = withBackend(cpuBackend(), () => streams(3));
      const onWasm = withBackend(wasm, () => streams(3));
      for (let i = 0; i < names.length; i++) {
        assert.deepEqual(await onWasm[i].data(), await onCpu[i].data(), `${names[i]} on wasm`);
      }
      const xs = cg.normal(cg.randomKey(4), [3, 5]);
      const f = cg.vmap(cg.grad((x: T) => cg.sum(cg.sin(cg.mul(x, x)))));
      const want = await withBackend(cpuBackend(), () => f(xs)).data();
      assertClose(await withBackend(wasm, () => f(xs)).data(), want, "vmap(grad) on wasm");
    } finally {
      wasm.close();
    }
  },
});
