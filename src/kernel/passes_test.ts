import assert from "node:assert/strict";
import fc from "../../test/_fast_check.ts";
import {
  bin,
  type Binding,
  type Expr,
  exprKey,
  type Kernel,
  lit,
  load,
  name,
  type Stmt,
  stmtExprs,
  u32,
  walkExpr,
  walkStmts,
} from "./ir.ts";
import { cse, dce, elideBounds, hoist, optimize, vectorizeLanes } from "./passes.ts";
import { interpret } from "./_interpret_test_util.ts";
import { INPUTS, OUTPUTS, randomKernel, rng } from "./_random_kernel_test_util.ts";

const SEED = 20180126;
const RUNS = 300;
const THREADS = 3;

function inputs(seed: number): Int32Array {
  const r = rng(seed ^ 0x9e3779b9);
  return Int32Array.from({ length: INPUTS }, () => Math.floor(r() * 4294967296) | 0);
}

/** out0 after running `k` (every slot starts at a sentinel, so skipped stores show). */
function run(k: Kernel, seed: number): Int32Array {
  const out = new Int32Array(THREADS * OUTPUTS).fill(-7);
  interpret(k, { in0: inputs(seed), out0: out });
  return out;
}

function count(body: readonly Stmt[], kind: Stmt["kind"]): number {
  let n = 0;
  const walk = (b: readonly Stmt[]) =>
    b.forEach((s) => {
      if (s.kind === kind) n++;
      if (s.kind === "for" || s.kind === "if" || s.kind === "block") walk(s.body);
    });
  walk(body);
  return n;
}

for (
  const [label, pass] of [["hoist", hoist], ["cse", cse], ["dce", dce], [
    "optimize",
    optimize,
  ]] as const
) {
  Deno.test(`${label} preserves what random kernels compute (${RUNS} kernels, seed ${SEED})`, () => {
    let changed = 0;
    fc.assert(
      fc.property(fc.integer(), (seed) => {
        const k = randomKernel(rng(seed), THREADS);
        const after = pass(k);
        if (JSON.stringify(after.body) !== JSON.stringify(k.body)) changed++;
        assert.deepEqual(
          run(after, seed),
          run(k, seed),
          `${label} changed the results of kernel seed ${seed}`,
        );
      }),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`${label}: ${RUNS} random kernels, ${changed} changed by the pass, all equal`);
    // A pass that never fires would pass trivially.
    assert.ok(changed > RUNS / 10, `${label} changed only ${changed} of ${RUNS} kernels`);
  });
}

Deno.test("optimize never adds statements, and removes lets on random kernels", () => {
  let before = 0, after = 0;
  for (let seed = 0; seed < 100; seed++) {
    const k = randomKernel(rng(seed), THREADS);
    before += count(k.body, "let");
    after += count(optimize(k).body, "let");
  }
  assert.ok(after < before, `lets before ${before}, after ${after}`);
});

const base = {
  name: "k",
  comment: "",
  shared: [],
  threads: 4,
  workgroups: [1, 1, 1] as const,
};
const lid = name("lid", "u32");

Deno.test("hoist keeps values that read a var or a written buffer inside the loop", () => {
  const k: Kernel = {
    ...base,
    bindings: [
      { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [] },
      { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] },
    ],
    body: [
      { kind: "var", name: "acc", type: "f32", init: lit(0, "f32") },
      {
        kind: "for",
        index: "r",
        from: u32(0),
        to: u32(3),
        step: u32(1),
        body: [
          { kind: "let", name: "inv", value: load("in0", lid, "f32") },
          { kind: "let", name: "seen", value: load("out0", lid, "f32") },
          { kind: "let", name: "a", value: name("acc", "f32") },
          { kind: "assign", name: "acc", value: bin("+", name("a", "f32"), name("inv", "f32")) },
          {
            kind: "store",
            buf: "out0",
            index: lid,
            value: bin("+", name("seen", "f32"), name("acc", "f32")),
          },
        ],
      },
    ],
  };
  const h = hoist(k);
  assert.deepEqual(h.body.map((s) => s.kind), ["var", "let", "for"]);
  assert.equal((h.body[1] as { name: string }).name, "inv");
  const loop = h.body[2] as Extract<Stmt, { kind: "for" }>;
  assert.deepEqual(loop.body.map((s) => s.kind === "let" ? s.name : s.kind), [
    "seen",
    "a",
    "assign",
    "store",
  ]);
  const inp = Float32Array.from([1, 2, 3, 4]);
  const o1 = new Float32Array(4), o2 = new Float32Array(4);
  interpret(k, { in0: inp, out0: o1 });
  interpret(h, { in0: inp, out0: o2 });
  assert.deepEqual(o2, o1);
});

Deno.test("cse replaces a repeated value by the earlier name, not across blocks that end", () => {
  const v = bin("*", lid, u32(3));
  const k: Kernel = {
    ...base,
    bindings: [{ name: "out0", scalar: "i32", write: true, lanes: 1, refs: [] }],
    body: [
      { kind: "if", cond: bin("<", lid, u32(2)), body: [{ kind: "let", name: "x", value: v }] },
      { kind: "let", name: "y", value: v },
      { kind: "let", name: "z", value: v },
      {
        kind: "store",
        buf: "out0",
        index: lid,
        value: {
          kind: "call",
          fn: "i32",
          args: [bin("+", name("y", "u32"), name("z", "u32"))],
          type: "i32",
        },
      },
    ],
  };
  const c = cse(k);
  // y is kept (x is out of scope there), z becomes y.
  assert.deepEqual(c.body.map((s) => s.kind === "let" ? s.name : s.kind), ["if", "y", "store"]);
  const o = new Int32Array(4);
  interpret(c, { out0: o });
  assert.deepEqual([...o], [0, 6, 12, 18]);
});

Deno.test("cse respects names defined again in sibling and inner blocks (shadowing)", () => {
  const i32 = (x: Expr): Expr => ({ kind: "call", fn: "i32", args: [x], type: "i32" });
  const at = (j: number) => bin("+", bin("*", lid, u32(4)), u32(j));
  const put = (j: number, n: string): Stmt => ({
    kind: "store",
    buf: "out0",
    index: at(j),
    value: i32(name(n, "u32")),
  });
  const let_ = (n: string, value: Expr): Stmt => ({ kind: "let", name: n, value });
  const k: Kernel = {
    ...base,
    bindings: [{ name: "out0", scalar: "i32", write: true, lanes: 1, refs: [] }],
    body: [
      let_("w", bin("*", lid, u32(3))),
      let_("a", bin("+", lid, u32(5))),
      // As the GEMM family's epilogues: the same name in sibling blocks.
      { kind: "block", body: [let_("idx", bin("*", lid, u32(3))), put(0, "idx")] },
      { kind: "block", body: [let_("idx", bin("+", lid, u32(2))), put(1, "idx")] },
      // An inner name shadowing an outer one whose value is repeated inside.
      {
        kind: "block",
        body: [let_("a", bin("*", lid, u32(7))), let_("b", bin("+", lid, u32(5))), put(2, "b")],
      },
      put(3, "a"),
    ],
  };
  const want = [0, 1, 2, 3].flatMap((l) => [3 * l, l + 2, l + 5, l + 5]);
  for (const kernel of [k, cse(k), optimize(k)]) {
    const o = new Int32Array(16);
    interpret(kernel, { out0: o });
    assert.deepEqual([...o], want);
  }
});

Deno.test("elideBounds drops a check only where the grid has exactly that many threads", () => {
  const exit = (limit: number): Stmt => ({ kind: "exit", index: lid, limit, unit: "thread" });
  assert.equal(elideBounds({ ...base, bindings: [], body: [exit(4)] }).body.length, 0);
  assert.equal(elideBounds({ ...base, bindings: [], body: [exit(3)] }).body.length, 1);
  const wg: Stmt = {
    kind: "exit",
    index: { kind: "wid", axis: "x", type: "u32" },
    limit: 2,
    unit: "workgroup",
  };
  assert.equal(
    elideBounds({ ...base, workgroups: [2, 1, 1], bindings: [], body: [wg] }).body.length,
    0,
  );
  assert.equal(
    elideBounds({ ...base, workgroups: [3, 1, 1], bindings: [], body: [wg] }).body.length,
    1,
  );
});

/** Lane offsets `o_j = 4 lid + j` and a store of `value(o_j, j)` to `out0` per lane. */
function laneKernel(
  threads: number,
  reads: string[],
  value: (o: Expr, j: number) => Expr,
): { k: Kernel; q: Expr; offs: string[] } {
  const q = name("lid", "u32");
  const offs = [0, 1, 2, 3].map((j) => `o${j}`);
  const body: Stmt[] = [
    ...offs.map((o, j): Stmt => ({
      kind: "let",
      name: o,
      value: bin("+", bin("*", q, u32(4)), u32(j)),
    })),
    ...offs.map((o, j): Stmt => ({
      kind: "store",
      buf: "out0",
      index: name(o, "u32"),
      value: value(name(o, "u32"), j),
    })),
  ];
  const k: Kernel = {
    ...base,
    threads,
    bindings: [
      ...reads.map((r): Binding => ({ name: r, scalar: "f32", write: false, lanes: 1, refs: [] })),
      { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] },
    ],
    body,
  };
  return { k, q, offs };
}

Deno.test("vectorizeLanes loads each eligible binding once per quad and keeps the values", () => {
  const { k, q, offs } = laneKernel(
    2,
    ["in0", "in1"],
    (o, j) => bin("+", load("in0", o, "f32"), load("in1", u32(j), "f32")),
  );
  const v = vectorizeLanes(k, { lanes: offs, vecIndex: q, after: "o3" });
  // in0 is read at the lane offsets only; in1 at other indices, so it stays scalar.
  assert.deepEqual(v.bindings.map((b) => b.lanes), [4, 1, 1]);
  const in0 = Float32Array.from({ length: 8 }, (_, i) => i * 10);
  const in1 = Float32Array.from([1, 2, 3, 4]);
  const a = new Float32Array(8), b = new Float32Array(8);
  interpret(k, { in0, in1, out0: a });
  interpret(v, { in0, in1, out0: b });
  assert.deepEqual(b, a);
});

Deno.test("vectorizeLanes gives lanes divided by a multiple of 4 lane 0's quotient (one load after cse)", () => {
  // out0[o_j] = in1[o_j / 8] + in1[o_j / 6]: the first index is lane 0's for every lane, the
  // second is not (6 is not a multiple of 4).
  const { k, q, offs } = laneKernel(
    4,
    ["in1"],
    (o) =>
      bin("+", load("in1", bin("/", o, u32(8)), "f32"), load("in1", bin("/", o, u32(6)), "f32")),
  );
  const v = vectorizeLanes(k, { lanes: offs, vecIndex: q, after: "o3" });
  const indices = new Set<string>();
  walkStmts(v.body, (s) =>
    stmtExprs(s).forEach((e) =>
      walkExpr(e, (x) => {
        if (x.kind === "load") indices.add(exprKey(x.index));
      })
    ));
  // One index for / 8 (lane 0's), four for / 6.
  assert.equal(indices.size, 5);
  const in1 = Float32Array.from({ length: 4 }, (_, i) => i + 0.5);
  const a = new Float32Array(16), b = new Float32Array(16);
  interpret(k, { in1, out0: a });
  interpret(v, { in1, out0: b });
  assert.deepEqual(b, a);
});
