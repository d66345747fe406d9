import assert from "node:assert/strict";
import { chooseGemmConfig, matmulKernel, type MatmulSpec } from "./matmul.ts";
import { getTestDevice, hashFill, maxScaledError, runPlan } from "./_harness_test_util.ts";
import type { Epilogue } from "./types.ts";
import { bin, lit, load, name, u32 } from "../src/kernel/ir.ts";

const device = await getTestDevice();
const ignore = device === null;

/** Float64 reference of op(A)·op(B) per batch, with Σ|terms| per element. */
function reference(spec: MatmulSpec, a: Float32Array, b: Float32Array) {
  const { batch, m, n, k } = spec;
  const value = new Float64Array(batch * m * n);
  const scale = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = spec.broadcastA ? 0 : z * m * k;
    const bo = spec.broadcastB ? 0 : z * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        let t = 0;
        for (let p = 0; p < k; p++) {
          const av = spec.transA ? a[ao + p * m + i] : a[ao + i * k + p];
          const bv = spec.transB ? b[bo + j * k + p] : b[bo + p * n + j];
          s += av * bv;
          t += Math.abs(av * bv);
        }
        value[(z * m + i) * n + j] = s;
        scale[(z * m + i) * n + j] = t;
      }
    }
  }
  return { value, scale };
}

async function check(spec: MatmulSpec, applyEpilogue?: (v: number, idx: number) => number) {
  const { batch, m, n, k } = spec;
  const a = hashFill((spec.broadcastA ? 1 : batch) * m * k, 1);
  const b = hashFill((spec.broadcastB ? 1 : batch) * k * n, 2);
  const e0 = hashFill(n, 3);
  const plan = matmulKernel(spec);
  const inputs: Record<string, Float32Array> = { a, b };
  if (spec.epilogue) inputs.e0 = e0;
  const { out } = await runPlan(device!, plan, { inputs, outputs: { out: batch * m * n } });
  const ref = reference(spec, a, b);
  const want = applyEpilogue ? ref.value.map((v, i) => applyEpilogue(v, i)) : ref.value;
  const err = maxScaledError(out, want, { atol: 1e-6, rtol: 1e-5, scale: ref.scale });
  assert.ok(err <= 1, `${JSON.stringify(spec)}: scaled error ${err}`);
  return plan;
}

Deno.test(
  { name: "matmulKernel() multiplies every transpose combination at ragged sizes", ignore },
  async (t) => {
    const cases: MatmulSpec[] = [
      { batch: 2, m: 37, n: 44, k: 52, broadcastB: true }, // vec4 along k for A, along n for B
      { batch: 1, m: 36, n: 45, k: 29, transA: true, transB: true }, // vec4 A along m, scalar B
      { batch: 1, m: 37, n: 45, k: 29 }, // all scalar
      { batch: 1, m: 40, n: 36, k: 64, transA: true, transB: true }, // vec4 everywhere
    ];
    for (const spec of cases) {
      await t.step(JSON.stringify(spec), async () => {
        await check(spec);
      });
    }
  },
);

Deno.test(
  { name: "matmulKernel() workgroup-staged discrete tiles are exact", ignore },
  async (t) => {
    await t.step("64x64 or 32x32 tiles, batch with broadcast A", async () => {
      await check({ batch: 2, m: 70, n: 36, k: 52, broadcastA: true, profile: "discrete" });
    });
    await t.step("8x8 per thread, K-step 8 (the 128x128 tile's code at 32x32)", async () => {
      const tile = { bm: 32, bn: 32, bk: 8, tm: 8, tn: 8 };
      const plan = await check({ batch: 1, m: 40, n: 36, k: 20, tile });
      // 32x32 tiles of a 40x36 product: 2 x 2 tiles, 4 workgroups (flattened in x).
      assert.deepEqual(plan.steps[0].workgroups, [4, 1, 1]);
    });
  },
);

Deno.test(
  { name: "matmulKernel() fuses an epilogue, directly and after split-K", ignore },
  async (t) => {
    // acc = 0.5 * acc + e0[idx % 12u]
    const value = bin(
      "+",
      bin("*", lit(0.5, "f32"), name("acc", "f32")),
      load("e0", bin("%", name("idx", "u32"), u32(12)), "f32"),
    );
    const epilogue: Epilogue = { stmts: [{ kind: "assign", name: "acc", value }], extraInputs: 1 };
    const bias = hashFill(12, 3);
    const apply = (v: number, idx: number) => 0.5 * v + bias[idx % 12];
    await t.step("single pass", async () => {
      const plan = await check({ batch: 1, m: 9, n: 12, k: 40, epilogue }, apply);
      assert.equal(plan.steps.length, 1);
      assert.deepEqual(plan.steps[0].bindings, ["a", "b", "e0", "out"]);
    });
    await t.step("split-K over a long reduction", async () => {
      const plan = await check({ batch: 1, m: 8, n: 12, k: 3000, epilogue }, apply);
      assert.equal(plan.steps.length, 2);
      assert.deepEqual(plan.steps[0].bindings, ["a", "b", "partial"]);
      assert.deepEqual(plan.steps[1].bindings, ["partial", "e0", "out"]);
      const splits = plan.scratch[0].size / (8 * 12 * 4);
      assert.ok(splits >= 2, `expected split-K, got scratch ${JSON.stringify(plan.scratch)}`);
    });
    await t.step("its own pass after a thread tile of over 64 accumulators", async () => {
      const tile = { bm: 32, bn: 32, bk: 4, tm: 16, tn: 8, staging: "registers" as const };
      const plan = await check({ batch: 1, m: 40, n: 12, k: 40, epilogue, tile }, apply);
      assert.deepEqual(plan.steps.map((s) => s.bindings.join()), ["a,b,partial", "partial,e0,out"]);
      assert.deepEqual(plan.scratch, [{ name: "partial", size: 40 * 12 * 4 }]);
      // 8 x 8 accumulators a thread: applied inline.
      const small = await check({
        batch: 1,
        m: 40,
        n: 12,
        k: 40,
        epilogue,
        tile: { ...tile, tm: 8 },
      }, apply);
      assert.equal(small.steps.length, 1);
    });
  },
);

Deno.test("chooseGemmConfig() picks big workgroup tiles for discrete GPUs and split-K for thin shapes", () => {
  const big = chooseGemmConfig({ batch: 1, m: 4096, n: 4096, k: 4096 }, { profile: "discrete" });
  assert.deepEqual(big, { tile: { bm: 128, bn: 128, bk: 8, tm: 8, tn: 8 }, splitK: 1 });
  const cpu = chooseGemmConfig({ batch: 1, m: 1024, n: 1024, k: 1024 });
  assert.equal(cpu.tile.staging, "registers");
  assert.equal(cpu.splitK, 1);
  const thin = chooseGemmConfig({ batch: 1, m: 64, n: 64, k: 65536 }, { profile: "discrete" });
  assert.ok(thin.splitK > 1);
});

Deno.test("matmulKernel() rejects invalid shapes and tiles", () => {
  assert.throws(() => matmulKernel({ batch: 1, m: 0, n: 4, k: 4 }), RangeError);
  assert.throws(() => matmulKernel({ batch: 1, m: 2.5, n: 4, k: 4 }), RangeError);
  assert.throws(
    () => matmulKernel({ batch: 1, m: 8, n: 8, k: 8, tile: { bm: 8, bn: 8, bk: 8, tm: 3, tn: 4 } }),
    RangeError,
  );
  assert.throws(
    () => matmulKernel({ batch: 1, m: 4, n: 4, k: 4, profile: "tpu" as "discrete" }),
    TypeError,
  );
});
