import assert from "node:assert/strict";
import * as cg from "../../../mod.ts";

await cg.setBackend("cpu");

Deno.test("cpu matmul() never skips a zero: 0 * Inf and 0 * NaN are NaN", async () => {
  const a = cg.tensor([[0, 1]]);
  const b = cg.tensor([[Infinity], [1]]);
  assert.ok(Number.isNaN((await cg.matmul(a, b).data())[0]));
  const c = cg.tensor([[NaN], [1]]);
  assert.ok(Number.isNaN((await cg.matmul(a, c).data())[0]));
  // The same in the batched path.
  const a3 = cg.tensor([[[0, 1]], [[1, 0]]]);
  const b3 = cg.tensor([[[Infinity], [1]], [[2], [Infinity]]]);
  const got = Array.from(await cg.matmul(a3, b3).data());
  assert.ok(got.every(Number.isNaN), String(got));
});

Deno.test("cpu conv2d() multiplies a zero weight by Inf to NaN", async () => {
  const x = cg.tensor([[[[Infinity, 1], [1, 1]]]]);
  const w = cg.tensor([[[[0]]]]);
  const y = Array.from(await cg.conv2d(x, w).data());
  assert.ok(Number.isNaN(y[0]));
  assert.deepEqual(y.slice(1), [0, 0, 0]);
});

// 1 + 2^-24 + 2^-24 + ... : each 2^-24 is lost when added to 1 in float32 (ties to even), so a
// float32 running sum stays 1; a float64 sum rounded once is 1 + 2^-21 (8 terms of 2^-24).
const tiny = 2 ** -24;
const terms = [1, ...Array(8).fill(tiny)];
const once = Math.fround(1 + 8 * tiny);

Deno.test("cpu sum() of float32 accumulates in float64 and rounds once", async () => {
  assert.notEqual(once, 1);
  assert.equal((await cg.sum(cg.tensor(terms)).data())[0], once);
  const rows = cg.tensor([terms, terms.map((t) => -t)]);
  assert.deepEqual(Array.from(await cg.sum(rows, 1).data()), [once, -once]);
});

Deno.test("cpu matmul(), conv2d() and scatterAdd() of float32 round once, like sum()", async () => {
  const ones = cg.tensor([Array(terms.length).fill(1)]);
  const col = cg.reshape(cg.tensor(terms), [terms.length, 1]);
  assert.equal((await cg.matmul(ones, col).data())[0], once);
  const x = cg.reshape(cg.tensor(terms), [1, terms.length, 1, 1]);
  const w = cg.reshape(cg.tensor(Array(terms.length).fill(1)), [1, terms.length, 1, 1]);
  assert.equal((await cg.conv2d(x, w).data())[0], once);
  const idx = cg.tensor(new Int32Array(terms.length));
  assert.equal((await cg.scatterAdd(cg.tensor(terms), idx, [1], 0).data())[0], once);
});
