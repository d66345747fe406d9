// Golden WGSL: the generated source of a few canonical kernels, compared with files under
// test/golden/ (UPDATE_GOLDEN=1 rewrites them). Code generation needs no device, so these run
// everywhere; a diff here is a change to review, not necessarily a bug.
import assert from "node:assert/strict";
import { makeNode, type Node } from "../src/ir/node.ts";
import { LOWERING } from "../src/kernel/lowering.ts";
import { schedule } from "../src/backend/webgpu/schedule.ts";
import { type Dispatch, generate } from "../src/backend/webgpu/codegen.ts";

const GOLDEN = new URL("./golden/", import.meta.url);

function v(id: string, shape: number[]): Node {
  return makeNode("var", [], { id, shape, dtype: "float32" });
}

function bcast(x: Node, shape: number[]): Node {
  const r = makeNode("reshape", [x], {
    shape: shape.map((d, i) => i < shape.length - x.shape.length ? 1 : d),
  });
  return makeNode("broadcast", [r], { shape });
}

/** The dispatches of the graph of `outputs`. */
function dispatches(outputs: Node[]): Dispatch[] {
  const s = schedule(outputs, { maxBindings: 16 });
  const isMem = (n: Node) => LOWERING[n.op].kind === "input" || s.realized.has(n);
  return s.kernels.flatMap((k) => generate(k, { isMem, alias: s.alias }, { profile: "llvmpipe" }));
}

/** The WGSL of every kernel of the graph of `outputs`, and how many kernels there are. */
function wgsl(outputs: Node[]): { code: string; kernels: number; shared: number } {
  const ds = dispatches(outputs);
  return {
    code: ds.map((d) => `// ${d.name}: workgroups ${d.workgroups.join("x")}\n${d.code}`).join("\n"),
    kernels: ds.length,
    shared: ds.reduce((n, d) => n + (d.kernel?.shared.length ?? 0), 0),
  };
}

async function golden(name: string, code: string): Promise<void> {
  const file = new URL(`${name}.wgsl`, GOLDEN);
  if (Deno.env.get("UPDATE_GOLDEN") === "1") {
    await Deno.writeTextFile(file, code);
    return;
  }
  const want = await Deno.readTextFile(file);
  assert.equal(code, want, `${name}.wgsl differs (rerun with UPDATE_GOLDEN=1 to accept)`);
}

Deno.test("codegen fuses an elementwise chain with broadcasts into one kernel", async () => {
  // relu(x * w + b) with w and b broadcast over rows: one map kernel, three reads.
  const x = v("x", [4, 8]), w = v("w", [8]), b = v("b", [8]);
  const y = makeNode("add", [makeNode("mul", [x, bcast(w, [4, 8])], {}), bcast(b, [4, 8])], {});
  const zero = bcast(makeNode("scalar", [], { value: 0, dtype: "float32" }), [4, 8]);
  const relu = makeNode("where", [makeNode("cmplt", [zero, y], {}), y, zero], {});
  const { code, kernels } = wgsl([relu]);
  assert.equal(kernels, 1);
  await golden("elementwise_chain", code);
});

Deno.test("codegen runs a row reduction with its prologue in workgroup memory", async () => {
  // sum(exp(x - m)) over rows of 128, m broadcast per row: the logsumexp denominator.
  const x = v("x", [8, 128]), m = v("m", [8, 1]);
  const e = makeNode("exp", [
    makeNode("sub", [x, makeNode("broadcast", [m], { shape: [8, 128] })], {}),
  ], {});
  const s = makeNode("sum", [e], { axes: [1] });
  const { code, kernels, shared } = wgsl([makeNode("log", [s], {})]);
  assert.equal(shared, 1, "one workgroup array");
  assert.equal(kernels, 1);
  await golden("row_reduction_prologue", code);
});

Deno.test("codegen runs a column reduction one output per thread", async () => {
  // mean over the batch axis of a transposed input: the loop reads across rows.
  const x = v("x", [16, 6]);
  const t = makeNode("permute", [x], { perm: [1, 0] });
  const s = makeNode("sum", [t], { axes: [1] });
  const mean = makeNode("mul", [
    s,
    bcast(makeNode("scalar", [], { value: 1 / 16, dtype: "float32" }), [6, 1]),
  ], {});
  const { code, shared } = wgsl([mean]);
  assert.equal(shared, 0, "no workgroup memory, so no barriers");
  await golden("column_reduction", code);
});
