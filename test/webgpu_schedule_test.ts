// Scheduling decisions of the WebGPU compiler (pure: no device needed): what fuses into one
// kernel, what gets memory, transposes folded into matrix products, and the storage-binding
// limit. With an adapter, the split kernels are also run against the cpu backend.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { makeNode, type Node } from "../src/ir/node.ts";
import { schedule } from "../src/backend/webgpu/schedule.ts";
import { cpuBackend, withBackend } from "../src/backend/registry.ts";
import { assertClose, gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

function v(id: string, shape: number[]): Node {
  return makeNode("var", [], { id, shape, dtype: "float32" });
}

function kinds(outputs: Node[], maxBindings = 16): string[] {
  return schedule(outputs, { maxBindings }).kernels.map((k) =>
    `${k.kind}:${k.core && !k.roots.includes(k.core) ? k.core.op + "+" : ""}${k.roots[0].op}`
  );
}

Deno.test("schedule() fuses elementwise and movement chains into their consumer", () => {
  const x = v("x", [4, 6]);
  const t = makeNode("permute", [makeNode("exp", [x], {})], { perm: [1, 0] });
  const y = makeNode("mul", [t, makeNode("neg", [t], {})], {});
  assert.deepEqual(kinds([y]), ["map:mul"]);
  // A reduction's prologue and its elementwise consumer (log) run in the loop's kernel.
  const s = makeNode("sum", [makeNode("exp", [x], {})], { axes: [1] });
  assert.deepEqual(kinds([makeNode("log", [s], {})]), ["loop:sum+log"]);
});

Deno.test("schedule() folds transposes into matrix products and fuses their epilogue", () => {
  const a = v("a", [5, 3]), b = v("b", [4, 3]), c = v("c", [5, 4]);
  const mm = makeNode("matmul", [a, makeNode("permute", [b], { perm: [1, 0] })], {});
  const out = makeNode("add", [mm, c], {});
  const s = schedule([out], { maxBindings: 16 });
  assert.equal(s.kernels.length, 1);
  const k = s.kernels[0];
  assert.equal(k.kind, "gemm");
  assert.equal(k.core, mm);
  assert.deepEqual([k.gemm!.transA, k.gemm!.transB, k.gemm!.a, k.gemm!.b], [false, true, a, b]);
});

Deno.test("schedule() gives shared costly values memory and keeps cheap ones inline", () => {
  const x = v("x", [8]), y = v("y", [8]), z = v("z", [8]);
  const costly = makeNode("add", [makeNode("mul", [x, y], {}), z], {});
  const s1 = makeNode("sum", [costly], { axes: [0] });
  const s2 = makeNode("reduceMax", [costly], { axes: [0] });
  assert.ok(schedule([s1, s2], { maxBindings: 16 }).realized.has(costly));
  const cheap = makeNode("neg", [x], {});
  const t1 = makeNode("sum", [cheap], { axes: [0] });
  const t2 = makeNode("reduceMax", [cheap], { axes: [0] });
  assert.ok(!schedule([t1, t2], { maxBindings: 16 }).realized.has(cheap));
});

Deno.test("schedule() outputs of zeros need no kernel", () => {
  const zero = makeNode("scalar", [], { value: 0, dtype: "float32" });
  const z = makeNode("broadcast", [makeNode("reshape", [zero], { shape: [1, 1] })], {
    shape: [3, 4],
  });
  assert.deepEqual(kinds([z]), ["zero:broadcast"]);
});

Deno.test("schedule() splits a kernel that would bind more buffers than the device allows", () => {
  const xs = Array.from({ length: 20 }, (_, i) => v(`x${i}`, [6]));
  let total = xs[0];
  for (const x of xs.slice(1)) total = makeNode("add", [total, makeNode("exp", [x], {})], {});
  const s = schedule([total], { maxBindings: 8 });
  assert.ok(s.kernels.length >= 3);
  for (const k of s.kernels) {
    assert.ok(k.reads.length + k.roots.length <= 8, `${k.reads.length} reads`);
  }
});

Deno.test({
  name: "split kernels compute the same sum as the cpu backend",
  ignore: gpu === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const xs = Array.from({ length: 24 }, (_, i) => cg.normal(cg.randomKey(i), [3, 5]));
    const f = (...ts: cg.Tensor[]) => ts.reduce((a, t, i) => cg.add(a, cg.mul(cg.exp(t), i + 1)));
    const expected = await withBackend(cpuBackend(), () => cg.compile(f)(...xs)).data();
    const actual = await withBackend(gpu!, () => cg.compile(f)(...xs)).data();
    assertClose(actual, expected, "sum of 24 inputs");
  },
});
