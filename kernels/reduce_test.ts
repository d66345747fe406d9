import assert from "node:assert/strict";
import { reduceRowsKernel, type ReduceRowsSpec } from "./reduce.ts";
import { getTestDevice, hashFill, maxScaledError, runPlan } from "./_harness_test_util.ts";

const device = await getTestDevice();
const ignore = device === null;

async function check(spec: ReduceRowsSpec) {
  const { rows, cols, op } = spec;
  const x = hashFill(rows * cols, 7);
  const plan = reduceRowsKernel(spec);
  const { out } = await runPlan(device!, plan, { inputs: { x }, outputs: { out: rows } });
  const want = new Float64Array(rows);
  const scale = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let acc = op === "sum" ? 0 : -Infinity;
    for (let c = 0; c < cols; c++) {
      const v = x[r * cols + c];
      acc = op === "sum" ? acc + v : Math.max(acc, v);
      scale[r] += Math.abs(v);
    }
    want[r] = acc;
  }
  // max is exact; a float32 sum is within a few ulps of Σ|x| per element added.
  const tol = op === "max" ? { atol: 0, rtol: 0 } : { atol: 1e-6, rtol: 1e-6, scale };
  const err = maxScaledError(out, want, op === "max" ? { atol: 1e-30, rtol: 0 } : tol);
  assert.ok(err <= 1, `${JSON.stringify(spec)}: scaled error ${err}`);
  return plan;
}

Deno.test({ name: "reduceRowsKernel() sums and maxes rows of 1, 7 and 256", ignore }, async (t) => {
  for (const [rows, cols] of [[5, 1], [9, 7], [33, 256]]) {
    for (const op of ["sum", "max"] as const) {
      await t.step(`${op} [${rows}, ${cols}]`, async () => {
        const plan = await check({ rows, cols, op });
        assert.equal(plan.steps.length, 1);
      });
    }
  }
});

Deno.test({ name: "reduceRowsKernel() reduces rows of 70,000 in chunks", ignore }, async (t) => {
  await t.step("sum, chunks chosen automatically", async () => {
    const plan = await check({ rows: 3, cols: 70000, op: "sum" });
    assert.equal(plan.steps.length, 2);
  });
  await t.step("max, one workgroup per row", async () => {
    const plan = await check({ rows: 8, cols: 70000, op: "max" });
    assert.equal(plan.steps.length, 1);
  });
  await t.step("sum, 66,000 chunks: workgroups folded into x and y", async () => {
    const plan = await check({ rows: 1, cols: 70001, op: "sum", splits: 66000 });
    assert.deepEqual(plan.steps[0].workgroups, [65535, 2, 1]);
    assert.deepEqual(plan.scratch, [{ name: "partial", size: 66000 * 4 }]);
  });
});

Deno.test(
  { name: "reduceRowsKernel() fuses a prologue and an epilogue (logsumexp)", ignore },
  async () => {
    const rows = 6;
    const cols = 300;
    const x = hashFill(rows * cols, 8, 10);
    const rowMax = new Float32Array(rows);
    for (let r = 0; r < rows; r++) rowMax[r] = Math.max(...x.subarray(r * cols, (r + 1) * cols));
    const plan = reduceRowsKernel({
      rows,
      cols,
      op: "sum",
      prologue: { code: "exp(x - p0[row])", extraInputs: 1 },
      epilogue: { code: "acc = log(acc) + e0[idx];", extraInputs: 1 },
    });
    assert.deepEqual(plan.steps[0].bindings, ["x", "p0", "e0", "out"]);
    const { out } = await runPlan(device!, plan, {
      inputs: { x, p0: rowMax, e0: rowMax },
      outputs: { out: rows },
    });
    const want = Array.from({ length: rows }, (_, r) => {
      let s = 0;
      for (let c = 0; c < cols; c++) s += Math.exp(x[r * cols + c] - rowMax[r]);
      return Math.log(s) + rowMax[r];
    });
    assert.ok(maxScaledError(out, want, { atol: 1e-5, rtol: 1e-6 }) <= 1, `${out} vs ${want}`);
  },
);

Deno.test("reduceRowsKernel() rejects invalid specs", () => {
  assert.throws(() => reduceRowsKernel({ rows: 0, cols: 4, op: "sum" }), RangeError);
  assert.throws(() => reduceRowsKernel({ rows: 2, cols: 4, op: "min" as "sum" }), TypeError);
  assert.throws(() => reduceRowsKernel({ rows: 2, cols: 4, op: "sum", splits: 0 }), RangeError);
});
