// Peak device memory of compiled programs, from the WebGPU buffer plan: slots reused by
// liveness, donated inputs reused, numbers checked against hand calculations. Every test
// skips itself, visibly, when there is no adapter.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { cpuBackend, withBackend, withBackendAsync } from "../src/backend/registry.ts";
import { assertClose, gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

type T = cg.Tensor;
const opts = { ignore: gpu === null, sanitizeResources: false, sanitizeOps: false };

/** Eight chained products x·w·w·…·w of 64x64 matrices: every product is realized. */
function chain(x: T, w: T): T {
  let h = x;
  for (let i = 0; i < 8; i++) h = cg.matmul(h, w);
  return h;
}

/** Bytes of one 64x64 float32 matrix (16,384: also its buffer size class). */
const M = 64 * 64 * 4;

function operands(): { x: T; w: T } {
  return {
    x: cg.normal(cg.randomKey(1), [64, 64], { std: 0.5 }),
    w: cg.normal(cg.randomKey(2), [64, 64], { std: 0.125 }),
  };
}

Deno.test({
  name: "memory() reports a product chain's plan: two slots, far below the naive sum",
  ...opts,
  async fn() {
    await withBackendAsync(gpu!, async () => {
      const f = cg.compile(chain);
      const { x, w } = operands();
      const y = f(x, w);
      const m = f.memory();
      // Naive: x, w and the eight products each in a buffer of their own: 10 M.
      // Plan: h1 and h2 in two slots, then h3 in h1's slot, h4 in h2's, ... (each product
      // reads the previous one while it writes).
      assert.deepEqual(m.inputBytes, [M, M]);
      assert.deepEqual(m.reusedInputs, []);
      assert.equal(m.donatedBytes, 0);
      assert.equal(m.keptBytes, 2 * M);
      assert.equal(m.constBytes, 0);
      assert.equal(m.intermediateBytes, 2 * M);
      assert.equal(m.liveIntermediateBytes, 2 * M);
      assert.equal(m.largestSlotBytes, M);
      assert.equal(m.outputBytes, M);
      assert.equal(m.peakBytes, 4 * M);
      const want = withBackend(cpuBackend(), () => chain(x, w));
      assertClose(await y.data(), await want.data(), "chain");
    });
  },
});

Deno.test({
  name: "memory() counts a donated input once and reuses its buffer",
  ...opts,
  async fn() {
    await withBackendAsync(gpu!, async () => {
      const f = cg.compile(chain, { donate: [0] });
      const { x, w } = operands();
      const want = await withBackend(cpuBackend(), () => chain(x, w)).data();
      const y = f(x, w);
      const m = f.memory();
      // x is last read by the first product, so h2 takes x's buffer, h3 h1's slot, and so
      // on: one pool slot instead of two.
      assert.deepEqual(m.reusedInputs, [0]);
      assert.equal(m.donatedBytes, M);
      assert.equal(m.keptBytes, M);
      assert.equal(m.intermediateBytes, M);
      assert.equal(m.liveIntermediateBytes, 2 * M);
      assert.equal(m.peakBytes, 3 * M);
      assertClose(await y.data(), want, "chain with donation");
      await assert.rejects(() => x.data(), /donated/);
    });
  },
});

Deno.test({
  name: "memory() of a fused elementwise chain is one slot",
  ...opts,
  fn() {
    withBackend(gpu!, () => {
      // 1000 floats: 4000 bytes, size class 4096.
      const f = cg.compile((x: T) => cg.exp(cg.neg(cg.mul(cg.add(x, 1), 2))));
      f(cg.zeros([1000]));
      const m = f.memory();
      assert.deepEqual(m.inputBytes, [4096]);
      assert.equal(m.intermediateBytes, 4096);
      assert.equal(m.peakBytes, 8192);
    });
  },
});

Deno.test("memory() explains that the cpu backend has no buffer plan", () => {
  withBackend(cpuBackend(), () => {
    const f = cg.compile((x: T) => cg.exp(x));
    assert.throws(() => f.memory(), /before its first call/);
    f(cg.zeros([4]));
    assert.throws(() => f.memory(), /buffer plan \(webgpu\), got the cpu backend/);
  });
});
