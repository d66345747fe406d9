// Sibling reductions (src/backend/webgpu/siblings.ts): independent sums over one domain run as
// one kernel with an accumulator each; dependent ones, and groups that would need each other,
// stay apart. With an adapter, every loop layout (one thread per output, a workgroup per
// output, split over workgroups; scalar and vec4 loads) is checked against the cpu backend,
// under both kernel profiles.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { makeNode, type Node, topoSort } from "../src/ir/node.ts";
import { schedule } from "../src/backend/webgpu/schedule.ts";
import { contractOrder, siblingGroups } from "../src/backend/webgpu/siblings.ts";
import { cpuBackend, withBackend } from "../src/backend/registry.ts";
import { assertClose, gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

function v(id: string, shape: number[]): Node {
  return makeNode("var", [], { id, shape, dtype: "float32" });
}

function sum(x: Node, axes: number[]): Node {
  return makeNode("sum", [x], { axes });
}

function bcast(x: Node, shape: number[]): Node {
  return makeNode("broadcast", [x], { shape });
}

Deno.test("schedule() runs a batch norm's backward sums as one kernel", () => {
  const x = v("x", [8, 4, 8, 8]), g = v("g", [8, 4, 8, 8]), a = v("a", [8, 4, 8, 8]);
  const axes = [0, 2, 3];
  const sums = [
    sum(g, axes),
    sum(makeNode("mul", [g, x], {}), axes),
    sum(makeNode("mul", [makeNode("exp", [a], {}), g], {}), axes),
  ];
  const s = schedule(sums, { maxBindings: 16 });
  assert.equal(s.kernels.length, 1);
  const [k] = s.kernels;
  assert.equal(k.kind, "loop");
  assert.deepEqual(k.roots, sums);
  assert.deepEqual(k.cores, sums);
  // g is read once for all three.
  assert.deepEqual(new Set(k.reads), new Set([g, x, a]));
});

Deno.test("schedule() keeps a sum apart from the sibling it depends on", () => {
  const x = v("x", [6, 16]);
  const mean = sum(x, [1]);
  const centered = makeNode("sub", [x, bcast(mean, [6, 16])], {});
  const sq = sum(makeNode("mul", [centered, centered], {}), [1]);
  const s = schedule([mean, sq], { maxBindings: 16 });
  assert.equal(s.kernels.length, 2);
  assert.ok(s.kernels.every((k) => k.cores === undefined));
});

Deno.test("contractOrder() refuses groups that need each other", () => {
  // a, b over one domain; c, d over another; b needs c and d needs a.
  const x1 = v("x1", [4, 8]), x2 = v("x2", [4, 16]);
  const a = sum(x1, [1]);
  const c = sum(x2, [1]);
  const b = sum(makeNode("mul", [x1, bcast(c, [4, 8])], {}), [1]);
  const d = sum(makeNode("mul", [x2, bcast(a, [4, 16])], {}), [1]);
  const order = topoSort([b, d]);
  const groups = siblingGroups(order, [a, b, c, d]);
  assert.deepEqual(new Set(groups.get(a)), new Set([a, b]));
  assert.deepEqual(new Set(groups.get(c)), new Set([c, d]));
  assert.equal(contractOrder(order, groups), null);
  // The scheduler then runs them apart, in an order that respects every dependency.
  const s = schedule([b, d], { maxBindings: 16 });
  assert.ok(s.kernels.every((k) => k.cores === undefined));
  const done = new Set<Node>([x1, x2]);
  for (const k of s.kernels) {
    for (const r of k.reads) assert.ok(done.has(r), `${k.roots[0].op} reads before it is written`);
    k.roots.forEach((r) => done.add(r));
  }
});

Deno.test("contractOrder() puts each group's members next to each other", () => {
  const x = v("x", [4, 8]);
  const a = sum(x, [1]);
  const y = makeNode("exp", [bcast(a, [4, 8])], {});
  const b = sum(makeNode("neg", [x], {}), [1]);
  const order = topoSort([sum(y, [1]), b]);
  const merged = contractOrder(order, siblingGroups(order, [a, b]))!;
  assert.equal(merged.length, order.length);
  assert.equal(merged.indexOf(b), merged.indexOf(a) + 1);
  // Still a topological order.
  const pos = new Map(merged.map((n, i) => [n, i]));
  for (const n of merged) for (const i of n.inputs) assert.ok(pos.get(i)! < pos.get(n)!);
});

for (
  const [shape, what] of [
    [[128, 4, 16, 16], "few long outputs (split over workgroups, vec4 loads)"],
    [[16, 8, 8, 8], "a workgroup per output (vec4 loads)"],
    [[4, 40, 8, 8], "one thread per output (vec4 loads)"],
    [[6, 40, 5, 6], "one thread per output (scalar loads)"],
    [[32, 12, 6, 6], "a workgroup per output (scalar loads)"],
    [[64, 3, 10, 10], "few long outputs (split over workgroups, scalar loads)"],
  ] as const
) {
  Deno.test({
    name: `sibling sums match the cpu backend: ${what}`,
    ignore: gpu === null,
    sanitizeResources: false,
    sanitizeOps: false,
    async fn() {
      const x = cg.normal(cg.randomKey(1), [...shape]);
      const g = cg.normal(cg.randomKey(2), [...shape]);
      const axes = [0, 2, 3];
      // Batch norm's backward sums, with an epilogue on one of them; its factor differs per
      // profile so that each profile compiles its own program.
      const f = (k: number) => (x: cg.Tensor, g: cg.Tensor) => [
        cg.sum(g, axes),
        cg.mul(cg.sum(cg.mul(g, x), axes), 0.5 * k),
        cg.sum(cg.where(cg.greater(x, 0), g, cg.mul(g, 0.25)), axes),
        cg.sum(cg.mul(cg.exp(cg.mul(x, 0.1)), g), axes),
      ];
      for (const [k, profile] of (["llvmpipe", "discrete"] as const).entries()) {
        const before = gpu!.profile;
        gpu!.profile = profile;
        try {
          const expected = await withBackend(cpuBackend(), () => cg.compile(f(k + 1))(x, g));
          const actual = await withBackend(gpu!, () => cg.compile(f(k + 1))(x, g));
          for (let i = 0; i < expected.length; i++) {
            assertClose(
              await actual[i].data(),
              await expected[i].data(),
              `${profile}: sum ${i} of ${shape}`,
            );
          }
        } finally {
          gpu!.profile = before;
        }
      }
    },
  });
}
