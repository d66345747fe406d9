// Graphs wider than one kernel's storage bindings: stacks and concatenations of up to 40
// tensors (a tree of partial concatenations), sums of 30 realized values (intermediates
// realized), checked against the cpu backend, also under lowered binding limits (fewer
// bindings per kernel; tensors split into parts). The scheduling cases need no device.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { makeNode, type Node } from "../src/ir/node.ts";
import { schedule } from "../src/backend/webgpu/schedule.ts";
import { cpuBackend, withBackend, withBackendAsync } from "../src/backend/registry.ts";
import { assertClose, gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

type T = cg.Tensor;
const opts = { ignore: gpu === null, sanitizeResources: false, sanitizeOps: false };

function v(id: string, shape: number[]): Node {
  return makeNode("var", [], { id, shape, dtype: "float32" });
}

/** Asserts every kernel of the schedule binds at most `max` buffers (with `weight` each). */
function assertFits(
  outputs: Node[],
  max: number,
  weight: (n: Node) => number = () => 1,
): number {
  const s = schedule(outputs, { maxBindings: max, bindingsOf: weight });
  for (const k of s.kernels) {
    const b = [...k.reads, ...k.roots].reduce((a, n) => a + weight(n), 0) +
      (k.checksRange ? 1 : 0);
    assert.ok(b <= max, `kernel ${k.roots[0].op} binds ${b} buffers, expected at most ${max}`);
  }
  return s.kernels.length;
}

Deno.test("schedule() splits a concat of more inputs than a kernel binds into a tree", () => {
  const xs = Array.from({ length: 40 }, (_, i) => v(`c${i}`, [2, 1 + i % 3]));
  const c = makeNode("concat", xs, { axis: 1 });
  // 40 inputs, 15 per kernel at 16 bindings: three partial concats and their root.
  assert.equal(assertFits([c], 16), 4);
  // At 4: 13 partials of 3 (the 40th input joins as it is), then 5, then 2, then the root.
  assert.equal(assertFits([c], 4), 13 + 5 + 2 + 1);
  // Inputs that are expressions of two buffers each, and a concat inside a map.
  const ys = xs.map((x, i) => makeNode("mul", [x, v(`d${i}`, [...x.shape])], {}));
  assertFits([makeNode("exp", [makeNode("concat", ys, { axis: 1 })], {})], 8);
  // Parts of split tensors count: an input of weight 3 leaves fewer inputs per kernel.
  assertFits([c], 10, (n) => n.op === "var" && n.shape[1] === 3 ? 3 : 1);
});

Deno.test("schedule() keeps a concat that fits as one kernel", () => {
  const xs = Array.from({ length: 15 }, (_, i) => v(`e${i}`, [3]));
  const s = schedule([makeNode("concat", xs, { axis: 0 })], { maxBindings: 16 });
  assert.equal(s.kernels.length, 1);
  assert.equal(s.alias.size, 0);
});

Deno.test("schedule() names the operation when no split can fit it", () => {
  const xs = Array.from({ length: 4 }, (_, i) => v(`f${i}`, [3]));
  const c = makeNode("concat", xs, { axis: 0 });
  assert.throws(
    () => schedule([c], { maxBindings: 4, bindingsOf: (n) => n === c ? 1 : 3 }),
    /Cannot fit kernel concat into 4 storage bindings/,
  );
});

/** Inputs of shape `base`, with 1 to 3 times its size along `vary` (null: all alike). */
function inputs(n: number, vary: number | null, seed: number, base: number[]): T[] {
  return Array.from({ length: n }, (_, i) => {
    const shape = [...base];
    if (vary !== null) shape[vary] *= 1 + (i * 7 + seed) % 3;
    return cg.normal(cg.randomKey(seed * 100 + i), shape);
  });
}

/** The joined values and d/dx_i of sum(join(x_i * x_i) * w), on the backend in use. */
function joinedWithGrad(
  xs: T[],
  axis: number,
  stack: boolean,
): { y: T; value: T; grads: T[] } {
  const join = (zs: T[]) => stack ? cg.stack(zs, axis) : cg.concat(zs, axis);
  const y = join(xs);
  const w = cg.reshape(cg.cos(cg.iota([y.size], 0)), y.shape);
  const [value, grads] = cg.valueAndGrad((zs: T[]) =>
    cg.sum(cg.mul(join(zs.map((z) => cg.mul(z, z))), w))
  )(xs) as [T, T[]];
  return { y, value, grads };
}

/** Joins of `n` inputs, the `k`-th along `JOINS[k % JOINS.length]`, against the cpu. */
async function checkJoins(
  counts: number[],
  what: string,
  base = [2, 3, 2],
): Promise<void> {
  for (const [k, n] of counts.entries()) {
    const [axis, stack] = JOINS[k % JOINS.length];
    const xs = inputs(n, stack ? null : axis, n + axis, base);
    const want = withBackend(cpuBackend(), () => joinedWithGrad(xs, axis, stack));
    const got = joinedWithGrad(xs, axis, stack);
    const at = `${what}: ${stack ? "stack" : "concat"} of ${n} along axis ${axis}`;
    assert.deepEqual(await got.y.data(), await want.y.data(), at);
    assertClose(await got.value.data(), await want.value.data(), `${at}, value`);
    for (let i = 0; i < n; i++) {
      assertClose(await got.grads[i].data(), await want.grads[i].data(), `${at}, d/dx${i}`);
    }
  }
}

/** A sum of 30 inputs, and of 30 row sums (each realized by its own kernel), compiled. */
async function checkSums(what: string): Promise<void> {
  const xs = Array.from({ length: 30 }, (_, i) => cg.normal(cg.randomKey(500 + i), [4, 5]));
  const f = (zs: T[]) => ({
    plain: zs.reduce((a, b) => cg.add(a, b)),
    rows: zs.map((z) => cg.sum(z, 1)).reduce((a, b) => cg.add(a, cg.exp(b))),
  });
  const want = withBackend(cpuBackend(), () => f(xs));
  const got = cg.compile(f)(xs);
  assertClose(await got.plain.data(), await want.plain.data(), `${what}: sum of 30`);
  assertClose(await got.rows.data(), await want.rows.data(), `${what}: sum of 30 row sums`);
}

/** Axis and stack (true) or concat of the joins tested, in turn. */
const JOINS = [[0, false], [1, true], [2, false], [3, true], [1, false], [0, true]] as const;
const COUNTS = [1, 2, 15, 16, 17, 40];

Deno.test({
  name: "stack() and concat() of 1..40 tensors: values and gradients as on the cpu",
  ...opts,
  async fn() {
    await withBackendAsync(gpu!, () => checkJoins(COUNTS, "device limits"));
  },
});

Deno.test({
  name: "compile() sums 30 realized values as on the cpu",
  ...opts,
  async fn() {
    await withBackendAsync(gpu!, () => checkSums("device limits"));
  },
});

Deno.test({
  name: "wide joins and sums fit lowered limits: 5 bindings a kernel, 256-byte bindings",
  ...opts,
  async fn() {
    const limits = gpu!.gpu.limits;
    const savedCount = limits.maxStorageBuffersPerShaderStage;
    const savedBytes = gpu!.bindingLimit;
    try {
      limits.maxStorageBuffersPerShaderStage = 5;
      await withBackendAsync(gpu!, async () => {
        await checkJoins([4, 23], "5 bindings");
        await checkSums("5 bindings");
      });
      // 64-element parts: 23 inputs of 4 to 12 elements, joined into at most 276 (5 parts); 5
      // inputs of 32 to 96 elements (up to 2 parts each), joined into at most 480 (8 parts).
      // (A join of n parts needs n bindings to read and n to write in its last kernel.)
      limits.maxStorageBuffersPerShaderStage = savedCount;
      gpu!.bindingLimit = 256;
      await withBackendAsync(gpu!, async () => {
        await checkJoins([23], "256-byte bindings", [1, 2, 2]);
        await checkJoins([5, 5], "256-byte bindings", [2, 4, 4]);
      });
    } finally {
      limits.maxStorageBuffersPerShaderStage = savedCount;
      gpu!.bindingLimit = savedBytes;
    }
  },
});
