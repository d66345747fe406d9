// Map kernels on llvmpipe: four elements per thread, vec4 loads of inputs read at the thread's
// own elements, scalar loads of broadcast and permuted inputs, vec4 stores of every output.
import assert from "node:assert/strict";
import * as cg from "../../../mod.ts";
import { makeNode, type Node } from "../../ir/node.ts";
import { withBackendAsync } from "../registry.ts";
import { gpu } from "./_gpu_test_util.ts";
import { generate } from "./codegen.ts";
import { schedule } from "./schedule.ts";
import { stmtExprs, walkExpr, walkStmts } from "../../kernel/ir.ts";

const opts = { ignore: gpu === null, sanitizeResources: false, sanitizeOps: false };

Deno.test("generate() computes four elements per thread with vec4 loads and stores", () => {
  const v = (id: string, shape: number[]) => makeNode("var", [], { id, shape, dtype: "float32" });
  const x = v("x", [8, 64]), y = v("y", [8, 64]), s = v("s", [64]);
  const sb = makeNode("broadcast", [makeNode("reshape", [s], { shape: [1, 64] })], {
    shape: [8, 64],
  });
  const root = makeNode("add", [makeNode("mul", [x, sb], {}), y], {});
  const sch = schedule([root], { maxBindings: 8 });
  const isMem = (n: Node) => n.op === "var" || sch.realized.has(n);
  const [d] = generate(sch.kernels[0], { isMem, alias: sch.alias }, { profile: "llvmpipe" });
  assert.deepEqual(d.workgroups, [1, 1, 1]);
  // x and y (read at the thread's own elements) and the output are vec4; s is broadcast.
  const lanes = (k: typeof d.kernel) => k!.bindings.map((b) => [b.name, b.lanes]);
  assert.deepEqual(lanes(d.kernel), [["in0", 4], ["in1", 1], ["in2", 4], ["out0", 4]]);
  const [g] = generate(sch.kernels[0], { isMem, alias: sch.alias }, { profile: "discrete" });
  assert.ok(g.kernel!.bindings.every((b) => b.lanes === 1), "no vec4 off llvmpipe");
});

Deno.test("generate() vec4 map kernels agree with host arithmetic", opts, async () => {
  const [n, c, h, w] = [2, 4, 6, 8];
  const size = n * c * h * w;
  const xs = Float32Array.from({ length: size }, (_, i) => Math.sin(i * 0.37) * 3);
  const ts = Float32Array.from({ length: size }, (_, i) => Math.cos(i * 0.11));
  const ss = Float32Array.from({ length: c }, (_, i) => i - 1.5);
  const got = await withBackendAsync(gpu!, async () => {
    const x = cg.tensor(xs, [n, c, h, w]);
    const t = cg.transpose(cg.tensor(ts, [n, c, w, h]), [0, 1, 3, 2]);
    const s = cg.reshape(cg.tensor(ss, [c]), [1, c, 1, 1]);
    const out = cg.where(cg.greater(x, 0), cg.mul(x, s), cg.add(x, t));
    const count = cg.cast(cg.greater(x, t), "int32");
    return [await out.data(), await count.data()];
  });
  for (let i = 0; i < size; i++) {
    const [ni, ci, hi, wi] = [
      Math.floor(i / (c * h * w)),
      Math.floor(i / (h * w)) % c,
      Math.floor(i / w) % h,
      i % w,
    ];
    const tv = ts[((ni * c + ci) * w + wi) * h + hi];
    const want = xs[i] > 0 ? Math.fround(xs[i] * ss[ci]) : Math.fround(xs[i] + tv);
    assert.equal(got[0][i], want, `out element ${i}`);
    assert.equal(got[1][i], xs[i] > tv ? 1 : 0, `count element ${i}`);
  }
});

Deno.test("generate() loads a per-channel value once per quad when a channel holds whole quads", async (t) => {
  const v = (id: string, shape: number[]) => makeNode("var", [], { id, shape, dtype: "float32" });
  const loadsOf = (shape: number[]) => {
    const x = v("x", shape), s = v("s", [shape[1]]);
    const sb = makeNode("broadcast", [makeNode("reshape", [s], { shape: [1, shape[1], 1] })], {
      shape,
    });
    const root = makeNode("mul", [makeNode("sqrt", [sb], {}), x], {});
    const sch = schedule([root], { maxBindings: 8 });
    const isMem = (n: Node) => n.op === "var" || sch.realized.has(n);
    const [d] = generate(sch.kernels[0], { isMem, alias: sch.alias }, { profile: "llvmpipe" });
    const s1 = d.kernel!.bindings.find((b) => b.lanes === 1)!.name;
    let loads = 0, roots = 0;
    walkStmts(d.kernel!.body, (st) =>
      stmtExprs(st).forEach((e) =>
        walkExpr(e, (x) => {
          if (x.kind === "load" && x.buf === s1) loads++;
          if (x.kind === "call" && x.fn === "sqrt") roots++;
        })
      ));
    return { loads, roots };
  };
  await t.step("8 elements a channel: one load and one square root a thread", () => {
    assert.deepEqual(loadsOf([16, 4, 8]), { loads: 1, roots: 1 });
  });
  await t.step("6 elements a channel: a quad may span two, so one a lane", () => {
    assert.deepEqual(loadsOf([16, 3, 6]), { loads: 4, roots: 4 });
  });
});

Deno.test(
  "generate() vec4 map kernels with channels of 6 elements agree with host arithmetic",
  opts,
  async () => {
    const [n, c, w] = [16, 3, 6];
    const xs = Float32Array.from({ length: n * c * w }, (_, i) => Math.sin(i * 0.37) * 3);
    const ss = Float32Array.from({ length: c }, (_, i) => i + 0.5);
    const got = await withBackendAsync(gpu!, async () => {
      const s = cg.reshape(cg.tensor(ss, [c]), [1, c, 1]);
      return await cg.mul(cg.tensor(xs, [n, c, w]), cg.sqrt(s)).data();
    });
    for (let i = 0; i < xs.length; i++) {
      const want = Math.fround(xs[i] * Math.fround(Math.sqrt(ss[Math.floor(i / w) % c])));
      assert.ok(
        Math.abs(got[i] - want) <= 1e-6 * Math.abs(want),
        `element ${i}: ${got[i]} vs ${want}`,
      );
    }
  },
);
