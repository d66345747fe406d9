import assert from "node:assert/strict";
import * as cg from "../mod.ts";

type T = cg.Tensor;

Deno.test("compile() traces once per signature and matches eager results", async () => {
  const f = (p: { w: T }, x: T) => cg.tanh(cg.matmul(x, p.w));
  const cf = cg.compile(f);
  const p = { w: cg.normal(cg.randomKey(0), [3, 2]) };
  const x = cg.normal(cg.randomKey(1), [4, 3]);
  const a = await cf(p, x).data();
  await cf(p, cg.normal(cg.randomKey(2), [4, 3])).data();
  assert.equal(cf.traces, 1);
  await cf(p, cg.normal(cg.randomKey(2), [5, 3])).data();
  assert.equal(cf.traces, 2);
  assert.deepEqual(a, await f(p, x).data());
  assert.match(cf.describe(), /matmul/);
  // The cpu backend runs node by node: no kernels to list, and it says so.
  assert.throws(() => cf.kernels(), /runs node by node/);
  assert.throws(() => cg.compile((x: cg.Tensor) => x).dispatches(), /before its first call/);
});

Deno.test("compile() with donate marks given-up inputs and trains", async () => {
  const step = cg.compile((p: { w: T }, x: T) => {
    const [loss, g] = cg.valueAndGrad((q: { w: T }) => cg.mean(cg.square(cg.matmul(x, q.w))))(p);
    return { p: { w: cg.sub(p.w, cg.mul((g as { w: T }).w, 0.1)) }, loss };
  }, { donate: [0] });
  const x = cg.normal(cg.randomKey(1), [4, 3]);
  let p = { w: cg.normal(cg.randomKey(0), [3, 2]) };
  const first = p.w;
  const losses: number[] = [];
  for (let i = 0; i < 5; i++) {
    const r = step(p, x);
    p = r.p;
    losses.push(await r.loss.item());
  }
  assert.ok(losses.every((l, i) => i === 0 || l < losses[i - 1]), `losses ${losses}`);
  await assert.rejects(() => first.data(), /donated/);
});

Deno.test("shape errors name the shapes at the user's call", () => {
  assert.throws(
    () => cg.add(cg.zeros([2, 3]), cg.zeros([4])),
    /Cannot broadcast shapes \[2,3\] and \[4\]/,
  );
  assert.throws(
    () => cg.matmul(cg.zeros([2, 3]), cg.zeros([2, 3])),
    /cannot multiply \[2,3\] by \[2,3\]/,
  );
  assert.throws(() => cg.reshape(cg.zeros([2, 3]), [4]), /Cannot reshape \[2,3\] to \[4\]/);
  assert.throws(
    () => cg.conv2d(cg.zeros([1, 3, 8, 8]), cg.zeros([4, 2, 3, 3])),
    /input \[1,3,8,8\] and weights \[4,2,3,3\] do not match/,
  );
  assert.throws(() => cg.add(cg.zeros([2]), cg.zeros([2], { dtype: "int32" })), /differ in dtype/);
  assert.throws(() => cg.tensor([[1, 2], [3]]), /Ragged/);
  assert.throws(
    () => cg.takeAlongAxis(cg.zeros([2, 3]), cg.tensor(new Int32Array([5, 0]), [2, 1]), 1).data(),
    /index 5 is out of range \[0, 3\)/,
  );
});

Deno.test("the graph printer shows ops, shapes and outputs", () => {
  const text = cg.printGraph([cg.exp(cg.iota([3], 0)).node]);
  assert.match(text, /%0 = iota\(\) .* : float32\[3\]/);
  assert.match(text, /%1 = exp\(%0\) : float32\[3\] {3}<- output 0/);
});

Deno.test("hash-consing returns the same node for the same structure", () => {
  const x = cg.normal(cg.randomKey(0), [2]);
  const g = cg.grad((a: T) => {
    const y1 = cg.mul(a, 2);
    const y2 = cg.mul(a, 2);
    assert.equal(y1.node, y2.node);
    return cg.sum(y1);
  });
  g(x);
});

Deno.test("a program is recompiled when the backend's compile key changes, reused otherwise", async () => {
  const { cpuBackend, withBackend } = await import("../src/backend/registry.ts");
  const inner = cpuBackend();
  let key = "profile A";
  let compiles = 0;
  const backend = {
    name: "keyed",
    compileKey: () => `keyed|${key}`,
    compile: (...args: Parameters<typeof inner.compile>) => {
      compiles++;
      return inner.compile(...args);
    },
    fromHost: inner.fromHost.bind(inner),
    adopt: inner.adopt.bind(inner),
    synchronize: inner.synchronize.bind(inner),
  };
  const f = cg.compile((x: T) => cg.exp(cg.mul(x, 3)));
  const x = cg.tensor([1, 2, 3]);
  const run = () => withBackend(backend, () => f(x));
  await run().data();
  const afterFirst = compiles;
  assert.ok(afterFirst >= 1, "the first call compiles");
  await run().data();
  assert.equal(compiles, afterFirst, "same key: the cached program is reused");
  key = "profile B";
  const y = await run().data();
  assert.equal(compiles, afterFirst + 1, "a changed key compiles anew");
  assert.deepEqual([...y].map((v) => Math.round(v)), [20, 403, 8103]);
});
