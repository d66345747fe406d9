// The wasm binary writer, the kernel-IR renderer and the GEMM micro-kernel, checked by the
// engine (WebAssembly.validate, instantiation) and against plain JavaScript arithmetic.
import assert from "node:assert/strict";
import {
  bin,
  call,
  type Expr,
  type Kernel,
  lit,
  load,
  name,
  select,
  type Stmt,
  u32,
} from "./ir.ts";
import { MATH_IMPORTS, mathImports, renderWasmFunction } from "./wasm.ts";
import {
  GEMM_PARAMS,
  gemmFunction,
  gemmScratchBytes,
  type GemmShape,
  relaxedSimd,
} from "./wasm_gemm.ts";
import { encodeModule, FunctionBuilder, sleb, uleb } from "./wasm_writer.ts";
import { optimize } from "./passes.ts";
import { renderWgsl } from "./wgsl.ts";
import { interpret } from "./_interpret_test_util.ts";
import { INPUTS, OUTPUTS, randomKernel, rng } from "./_random_kernel_test_util.ts";

Deno.test("LEB128 encodes the spec's examples and 32-bit extremes", () => {
  assert.deepEqual(uleb(0), [0]);
  assert.deepEqual(uleb(624485), [0xe5, 0x8e, 0x26]);
  assert.deepEqual(sleb(-123456), [0xc0, 0xbb, 0x78]);
  assert.deepEqual(sleb(-1), [0x7f]);
  assert.deepEqual(sleb(64), [0xc0, 0x00]);
  assert.deepEqual(sleb(0xffffffff), [0x7f]);
  assert.deepEqual(sleb(-2147483648), [0x80, 0x80, 0x80, 0x80, 0x78]);
  assert.throws(() => uleb(-1), /Expected an unsigned integer, got -1/);
});

/**
 * Runs a one-binding kernel `out0[gid] = value(gid, in0)` over `[start, end)` of `n` elements
 * (outputs outside stay NaN), four elements a step where it vectorizes unless `simd` is false.
 */
function runKernel(
  value: (i: Expr) => Expr,
  input: Float32Array,
  n: number,
  range: { start?: number; end?: number; simd?: boolean; vectorized?: boolean } = {},
): Float32Array {
  const gid = name("gid", "u32");
  const kernel: Kernel = {
    name: "t",
    comment: "",
    shared: [],
    threads: 1,
    workgroups: [1, 1, 1],
    bindings: [
      { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [] },
      { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] },
    ],
    body: [{
      kind: "for",
      index: "gid",
      from: name("start", "u32"),
      to: name("end", "u32"),
      step: u32(1),
      body: [{ kind: "store", buf: "out0", index: gid, value: value(gid) }],
    }],
  };
  const f = new FunctionBuilder(["i32", "i32", "i32"]);
  const { vectorized } = renderWasmFunction(kernel, f, {
    elements: (b) => b.name === "in0" ? input.length : n,
    simd: range.simd,
  });
  if (range.vectorized !== undefined) assert.equal(vectorized, range.vectorized, "vectorized");
  const bytes = encodeModule({
    imports: MATH_IMPORTS,
    memory: { initial: 1, maximum: 1, shared: false },
    functions: [{ name: "k", body: f }],
  });
  assert.ok(WebAssembly.validate(bytes));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    env: { memory },
    ...mathImports(),
  });
  const i32 = new Int32Array(memory.buffer);
  i32[0] = 64;
  i32[1] = 64 + 4 * input.length;
  new Float32Array(memory.buffer, 64, input.length).set(input);
  new Float32Array(memory.buffer, 64 + 4 * input.length, n).fill(NaN);
  (inst.exports.k as (a: number, s: number, e: number) => void)(
    0,
    range.start ?? 0,
    range.end ?? n,
  );
  return new Float32Array(memory.buffer, 64 + 4 * input.length, n).slice();
}

Deno.test("the renderer runs scoped blocks and names the GPU-only constructs it refuses", () => {
  const gid = name("gid", "u32");
  const kernel = (body: Kernel["body"]): Kernel => ({
    name: "gemm",
    comment: "",
    shared: [],
    threads: 1,
    workgroups: [1, 1, 1],
    bindings: [{ name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] }],
    body: [{ kind: "for", index: "gid", from: u32(0), to: u32(4), step: u32(1), body }],
  });
  const render = (k: Kernel) => {
    const f = new FunctionBuilder(["i32", "i32", "i32"]);
    renderWasmFunction(k, f, { elements: () => 4 });
    return f;
  };
  const value = call("f32", [gid]);
  const block = kernel([{
    kind: "block",
    body: [{ kind: "let", name: "v", value }, {
      kind: "store",
      buf: "out0",
      index: gid,
      value: name("v", "f32"),
    }],
  }]);
  // A block of its own (as the GEMM family's epilogues are) runs as its statements.
  const bytes = encodeModule({
    imports: MATH_IMPORTS,
    memory: { initial: 1, maximum: 1, shared: false },
    functions: [{ name: "k", body: render(block) }],
  });
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    env: { memory },
    ...mathImports(),
  });
  new Int32Array(memory.buffer)[0] = 64;
  (inst.exports.k as (a: number, s: number, e: number) => void)(0, 0, 4);
  assert.deepEqual([...new Float32Array(memory.buffer, 64, 4)], [0, 1, 2, 3]);
  const fma = call("fma", [value, value, value]);
  assert.throws(
    () => render(kernel([{ kind: "store", buf: "out0", index: gid, value: fma }])),
    /Cannot render kernel gemm to wasm: builtin fma/,
  );
  assert.throws(
    () => render(kernel([{ kind: "store", buf: "out0", index: gid, value, lane: u32(0) }])),
    /Cannot render kernel gemm to wasm: it stores a lane of out0/,
  );
});

Deno.test("the renderer computes arithmetic, selects, conversions and math calls", () => {
  const x = Float32Array.from([-2.5, -1, 0, 0.5, 3, 7.25]);
  const at = (i: Expr) => load("in0", i, "f32");
  const f32 = (v: number) => lit(v, "f32");
  const cases: [string, (i: Expr) => Expr, (v: number, i: number) => number][] = [
    ["a*2+1", (i) => bin("+", bin("*", at(i), f32(2)), f32(1)), (v) => v * 2 + 1],
    ["select", (i) => select(bin("<", at(i), f32(0)), f32(-1), at(i)), (v) => v < 0 ? -1 : v],
    ["exp", (i) => call("exp", [at(i)]), (v) => Math.fround(Math.exp(v))],
    ["floor", (i) => call("floor", [at(i)]), (v) => Math.floor(v)],
    ["f32 %", (i) => bin("%", at(i), f32(2)), (v) => v % 2],
    ["i32 trunc", (i) => call("f32", [call("i32", [at(i)])]), (v) => Math.trunc(v)],
    [
      "u32 index math",
      (i) => call("f32", [bin("%", bin("+", i, u32(7)), u32(4))]),
      (_, i) => (i + 7) % 4,
    ],
    [
      "i32 / 0 gives the dividend",
      (i) => call("f32", [bin("/", call("i32", [at(i)]), lit(0, "i32"))]),
      (v) => Math.trunc(v),
    ],
    // Reads past the binding are clamped to its last element (robust access).
    ["clamped load", (i) => at(bin("+", i, u32(1000))), () => 7.25],
  ];
  for (const [what, expr, want] of cases) {
    const got = runKernel(expr, x, x.length);
    x.forEach((v, i) => assert.equal(got[i], Math.fround(want(v, i)), `${what} at ${v}`));
  }
});

Deno.test("maps run four elements a step in SIMD lanes with the scalar loop's exact results", () => {
  const x = Float32Array.from({ length: 37 }, (_, i) => Math.sin(i * 1.7) * (i % 5 === 0 ? -3 : 2));
  const at = (i: Expr) => load("in0", i, "f32");
  const f32 = (v: number) => lit(v, "f32");
  const cases: [string, (i: Expr) => Expr][] = [
    ["arithmetic", (i) => bin("/", bin("-", at(i), f32(0.25)), bin("+", at(i), f32(4)))],
    // A per-channel value (uniform over each aligned group of 4), as batch norm reads it.
    [
      "channel",
      (i) =>
        bin("*", at(i), call("sqrt", [call("abs", [at(bin("%", bin("/", i, u32(8)), u32(3)))])])),
    ],
    ["prelu", (i) => select(bin(">", at(i), f32(0)), bin("*", at(i), f32(0.1)), at(i))],
    // Lanes read apart (one clamped load per lane), and past the end (the last element).
    ["gather", (i) => at(bin("*", i, u32(3)))],
    ["clamped", (i) => at(bin("+", i, u32(30)))],
    ["math", (i) => call("exp", [at(i)])],
    ["min max clamp", (i) => call("clamp", [call("max", [at(i), f32(-1)]), f32(-0.5), f32(0.75)])],
    ["u32", (i) => call("f32", [call("min", [bin("*", i, u32(7)), u32(100)])])],
    ["i32 trunc", (i) => call("f32", [call("i32", [bin("*", at(i), f32(3))])])],
    // Divisions by literals that differ per lane: one lane at a time.
    ["u32 / %", (i) => call("f32", [bin("+", bin("/", i, u32(3)), bin("%", i, u32(5)))])],
    ["i32 /", (i) => call("f32", [bin("/", call("i32", [at(i)]), lit(2, "i32"))])],
    // By powers of two: a shift and a mask.
    [
      "u32 / % by 2^k",
      (i) =>
        call("f32", [
          bin("+", bin("/", bin("+", i, u32(1)), u32(8)), bin("%", bin("+", i, u32(3)), u32(4))),
        ]),
    ],
    [
      "bool logic",
      (i) =>
        select(
          bin("&&", bin("<", at(i), f32(1)), bin("!=", bin("%", i, u32(4)), u32(1))),
          f32(1),
          f32(0),
        ),
    ],
  ];
  for (const [what, expr] of cases) {
    for (const [start, end] of [[0, 37], [1, 35], [3, 6], [2, 3], [4, 8], [0, 0]]) {
      const scalar = runKernel(expr, x, 37, { start, end, simd: false, vectorized: false });
      const vector = runKernel(expr, x, 37, { start, end, vectorized: true });
      assert.deepEqual(
        new Uint32Array(vector.buffer),
        new Uint32Array(scalar.buffer),
        `${what} over [${start}, ${end})`,
      );
      if (end > start) assert.ok(!Number.isNaN(scalar[start]) || what === "math", what);
    }
  }
});

Deno.test("exp is computed in wasm within 2 ulp of Math.exp, with its special values", () => {
  const xs: number[] = [0, -0, 1, -1, 88.72, 88.73, 89, 100, -87.3, -95, -103.9, -104, -110];
  xs.push(Infinity, -Infinity, NaN);
  for (let i = 0; i < 4000; i++) xs.push(-110 + 200 * i / 4000 + 1e-3 * Math.sin(i));
  const x = Float32Array.from(xs);
  const got = runKernel((i) => call("exp", [load("in0", i, "f32")]), x, x.length, {
    vectorized: true,
  });
  const bits = new Int32Array(got.buffer);
  x.forEach((v, i) => {
    const want = Math.fround(Math.exp(v));
    if (Number.isNaN(want) || !Number.isFinite(want) || want === 0) {
      assert.ok(Object.is(got[i], want), `exp(${v}) = ${got[i]}, expected ${want}`);
      return;
    }
    const ulps = Math.abs(bits[i] - new Int32Array(new Float32Array([want]).buffer)[0]);
    assert.ok(ulps <= 2, `exp(${v}) = ${got[i]}, expected ${want} (${ulps} ulp)`);
  });
});

Deno.test("a reduction unrolled four times runs in SIMD lanes with the scalar loop's exact results", () => {
  // out0[gid] = Σ exp(in0[gid*21 + r]) and max(in0[...]) over r < 21: four accumulators each,
  // terms at 4q + j into accumulator j (the hint), the rest into accumulator 0.
  const u = (n: string) => name(n, "u32");
  const f = (n: string) => name(n, "f32");
  const group = (j: number): Stmt[] => [
    { kind: "let", name: `r${j}`, value: bin("+", bin("*", u("rq"), u32(4)), u32(j)) },
    { kind: "let", name: `x${j}`, value: load("in0", bin("+", u("row"), u(`r${j}`)), "f32") },
    { kind: "let", name: `e${j}`, value: call("exp", [f(`x${j}`)]) },
  ];
  const assigns = (j: number): Stmt[] => [
    { kind: "assign", name: `s${j}`, value: bin("+", f(`s${j}`), f(`e${j}`)) },
    {
      kind: "assign",
      name: `m${j}`,
      value: select(bin(">", f(`x${j}`), f(`m${j}`)), f(`x${j}`), f(`m${j}`)),
    },
  ];
  const vars: Stmt[] = [0, 1, 2, 3].flatMap((j): Stmt[] => [
    { kind: "var", name: `s${j}`, type: "f32", init: lit(0, "f32") },
    { kind: "var", name: `m${j}`, type: "f32", init: lit(-3e38, "f32") },
  ]);
  const kernel: Kernel = {
    name: "sums",
    comment: "",
    shared: [],
    threads: 1,
    workgroups: [1, 1, 1],
    bindings: [
      { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [] },
      { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] },
    ],
    body: [{
      kind: "for",
      index: "gid",
      from: name("start", "u32"),
      to: name("end", "u32"),
      step: u32(1),
      body: [
        { kind: "let", name: "row", value: bin("*", u("gid"), u32(21)) },
        ...vars,
        {
          kind: "for",
          index: "rq",
          from: u32(0),
          to: u32(5),
          step: u32(1),
          body: [0, 1, 2, 3].flatMap(group).concat([0, 1, 2, 3].flatMap(assigns)),
          lanes: {
            index: "r0",
            accumulators: [["s0", "s1", "s2", "s3"], ["m0", "m1", "m2", "m3"]],
          },
        },
        {
          kind: "let",
          name: "x20",
          value: load("in0", bin("+", u("row"), u32(20)), "f32"),
        },
        { kind: "assign", name: "s0", value: bin("+", f("s0"), call("exp", [f("x20")])) },
        {
          kind: "store",
          buf: "out0",
          index: bin("*", u("gid"), u32(2)),
          value: bin("+", bin("+", f("s0"), f("s1")), bin("+", f("s2"), f("s3"))),
        },
        {
          kind: "store",
          buf: "out0",
          index: bin("+", bin("*", u("gid"), u32(2)), u32(1)),
          value: call("max", [call("max", [f("m0"), f("m1")]), call("max", [f("m2"), f("m3")])]),
        },
      ],
    }],
  };
  const input = Float32Array.from({ length: 63 }, (_, i) => Math.sin(i * 2.3) * 4);
  const run = (simd: boolean) => {
    const fb = new FunctionBuilder(["i32", "i32", "i32"]);
    const r = renderWasmFunction(kernel, fb, { elements: (b) => b.name === "in0" ? 63 : 6, simd });
    assert.equal(r.vectorized, simd);
    const bytes = encodeModule({
      imports: MATH_IMPORTS,
      memory: { initial: 1, maximum: 1, shared: false },
      functions: [{ name: "k", body: fb }],
    });
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
      env: { memory },
      ...mathImports(),
    });
    const i32 = new Int32Array(memory.buffer);
    i32[0] = 64;
    i32[1] = 64 + 4 * 63;
    new Float32Array(memory.buffer, 64, 63).set(input);
    (inst.exports.k as (a: number, s: number, e: number) => void)(0, 0, 3);
    return new Float32Array(memory.buffer, 64 + 4 * 63, 6).slice();
  };
  const scalar = run(false);
  const want = [0, 1, 2].map((g) => input.slice(g * 21, g * 21 + 21));
  want.forEach((xs, g) => {
    assert.equal(scalar[2 * g + 1], Math.max(...xs));
    const sum = xs.reduce((a, x) => a + Math.exp(x), 0);
    assert.ok(Math.abs(scalar[2 * g] - sum) <= 1e-5 * sum, `${scalar[2 * g]} vs ${sum}`);
  });
  assert.deepEqual(new Uint32Array(run(true).buffer), new Uint32Array(scalar.buffer));
});

Deno.test("an innermost loop runs four elements a step (im2col's rows) with the scalar results", () => {
  // out0[gid * 11 + ox] = ox*2 + gid - 1 < 9 ? in0[gid * 9 + ox*2 - 1] : 0, for ox in [0, 11).
  const u = (n: string) => name(n, "u32");
  const kernel: Kernel = {
    name: "rows",
    comment: "",
    shared: [],
    threads: 1,
    workgroups: [1, 1, 1],
    bindings: [
      { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [] },
      { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] },
    ],
    body: [{
      kind: "for",
      index: "gid",
      from: name("start", "u32"),
      to: name("end", "u32"),
      step: u32(1),
      body: [
        { kind: "let", name: "row", value: bin("*", u("gid"), u32(11)) },
        {
          kind: "for",
          index: "ox",
          from: u32(0),
          to: u32(11),
          step: u32(1),
          body: [
            {
              kind: "let",
              name: "ix",
              value: bin("-", bin("+", bin("*", u("ox"), u32(2)), u("gid")), u32(1)),
            },
            {
              kind: "store",
              buf: "out0",
              index: bin("+", u("row"), u("ox")),
              value: select(
                bin("<", u("ix"), u32(9)),
                load("in0", bin("+", bin("*", u("gid"), u32(9)), u("ix")), "f32"),
                lit(0, "f32"),
              ),
            },
          ],
        },
      ],
    }],
  };
  const run = (simd: boolean) => {
    const f = new FunctionBuilder(["i32", "i32", "i32"]);
    const r = renderWasmFunction(kernel, f, { elements: (b) => b.name === "in0" ? 45 : 55, simd });
    assert.equal(r.vectorized, simd);
    const bytes = encodeModule({
      imports: MATH_IMPORTS,
      memory: { initial: 1, maximum: 1, shared: false },
      functions: [{ name: "k", body: f }],
    });
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
      env: { memory },
      ...mathImports(),
    });
    const i32 = new Int32Array(memory.buffer);
    i32[0] = 64;
    i32[1] = 64 + 4 * 45;
    new Float32Array(memory.buffer, 64, 45).set(Array.from({ length: 45 }, (_, i) => i + 0.5));
    (inst.exports.k as (a: number, s: number, e: number) => void)(0, 0, 5);
    return new Float32Array(memory.buffer, 64 + 4 * 45, 55).slice();
  };
  const scalar = run(false);
  assert.equal(scalar[11 + 1], 11.5); // gid 1, ox 1: in0[9 + 2]
  assert.deepEqual(run(true), scalar);
});

Deno.test("the GEMM function agrees with float64 sums on odd shapes, layouts and row splits", () => {
  for (const fma of [false, ...(relaxedSimd() ? [true] : [])]) {
    const shapes: GemmShape[] = [
      { mr: 6, nr: 8, kc: 16, nc: 16, fma },
      { mr: 4, nr: 8, kc: 256, nc: 512, fma },
      // Unrolled reductions (kc not a multiple of the unroll: the rest one step at a time) and
      // A's rows loaded four at a time (mr 5 and 6: a second load past the panel's rows).
      { mr: 4, nr: 8, kc: 19, nc: 16, fma, unroll: 4, aLoad: "shuffle" },
      { mr: 6, nr: 8, kc: 16, nc: 32, fma, unroll: 8, aLoad: "shuffle" },
      { mr: 5, nr: 12, kc: 13, nc: 24, fma, unroll: 2, aLoad: "splat" },
    ];
    for (const shape of shapes) {
      const bytes = encodeModule({
        imports: [],
        memory: { initial: 64, maximum: 64, shared: false },
        functions: [{ name: "gemm", body: gemmFunction(shape) }],
      });
      const memory = new WebAssembly.Memory({ initial: 64, maximum: 64 });
      const gemm = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } })
        .exports.gemm as (
          p: number,
          m0: number,
          m1: number,
          n0: number,
          n1: number,
          s: number,
        ) => void;
      const f = new Float32Array(memory.buffer), w = new Int32Array(memory.buffer);
      // [m, n, k, transA, accumulate, images]: with images, A's k, B's and C's columns run
      // over `images` blocks laid out apart (a batch of NCHW images as one matrix).
      const cases = [
        [1, 1, 1, 0, 0, 0],
        [7, 13, 33, 1, 0, 0],
        [13, 9, 17, 0, 1, 0],
        [6, 24, 42, 0, 0, 3],
        [5, 30, 21, 1, 1, 3],
      ];
      for (const [m, n, k, transA, accumulate, images] of cases) {
        // Operand layouts: element (r, i) of an operand at base + r*rs + blockOf(i).
        const layout = (rows: number, inner: number, trans: boolean, blocks: number) => {
          const img = blocks > 0 ? inner / blocks : 0;
          const [rs, cs] = trans ? [1, rows] : [blocks > 0 ? img : inner, 1];
          const imgStride = blocks > 0 ? rows * img * 4 + 32 : 0;
          const at = (r: number, i: number) =>
            r * rs * 4 +
            (img > 0 ? Math.floor(i / img) * imgStride + (i % img) * cs * 4 : i * cs * 4);
          const bytes = blocks > 0 ? blocks * imgStride : rows * inner * 4;
          return { rs, cs, img, imgStride, at, bytes };
        };
        const la = layout(m, k, transA === 1 && images === 0, images);
        const lb = layout(k, n, false, images);
        const lc = layout(m, n, false, images);
        const A = 256, B = A + la.bytes + 64, C = B + lb.bytes + 64, P = C + lc.bytes + 64;
        const S = P + 128;
        assert.ok(S + gemmScratchBytes(shape) < memory.buffer.byteLength);
        for (let r = 0; r < m; r++) {
          for (let q = 0; q < k; q++) f[(A + la.at(r, q)) / 4] = Math.sin(r * k + q + 1);
        }
        for (let q = 0; q < k; q++) {
          for (let j = 0; j < n; j++) f[(B + lb.at(q, j)) / 4] = Math.cos((q * n + j) * 0.7);
        }
        const before = new Float64Array(m * n);
        for (let r = 0; r < m; r++) {
          for (let j = 0; j < n; j++) f[(C + lc.at(r, j)) / 4] = before[r * n + j] = (r + j) % 3;
        }
        const p = [
          ...[A, la.rs, la.cs, la.img, la.imgStride],
          ...[B, lb.rs, lb.cs, lb.img, lb.imgStride],
          ...[C, lc.rs, lc.img, lc.imgStride],
          ...[n, k, accumulate],
        ];
        assert.equal(p.length, GEMM_PARAMS.length);
        p.forEach((v, i) => w[P / 4 + i] = v);
        // Rows in two parts, the second one's columns in two parts again.
        gemm(P, 0, Math.ceil(m / 2), 0, n, S);
        gemm(P, Math.ceil(m / 2), m, 0, 8, S);
        gemm(P, Math.ceil(m / 2), m, 8, n, S);
        for (let r = 0; r < m; r++) {
          for (let j = 0; j < n; j++) {
            let s = accumulate ? before[r * n + j] : 0;
            for (let q = 0; q < k; q++) {
              s += f[(A + la.at(r, q)) / 4] * f[(B + lb.at(q, j)) / 4];
            }
            const got = f[(C + lc.at(r, j)) / 4];
            assert.ok(
              Math.abs(got - s) <= 1e-5 * (1 + Math.abs(s)),
              `${m}x${n}x${k} images ${images}: C[${r},${j}] = ${got}, expected ${s}`,
            );
          }
        }
      }
    }
  }
});

/** Runs a kernel of `threads` invocations (`lid` = 0 .. threads-1) rendered to wasm. */
function runThreads(kernel: Kernel, input: Int32Array, threads: number): Int32Array {
  // One invocation per value of `lid`: the kernel body inside a loop over the range.
  const wrapped: Kernel = {
    ...kernel,
    body: [{
      kind: "for",
      index: "lid",
      from: name("start", "u32"),
      to: name("end", "u32"),
      step: u32(1),
      body: kernel.body,
    }],
  };
  const f = new FunctionBuilder(["i32", "i32", "i32"]);
  const sizes: Record<string, number> = { in0: INPUTS, out0: threads * OUTPUTS };
  renderWasmFunction(wrapped, f, { elements: (b) => sizes[b.name] });
  const bytes = encodeModule({
    imports: MATH_IMPORTS,
    memory: { initial: 1, maximum: 1, shared: false },
    functions: [{ name: "k", body: f }],
  });
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), {
    env: { memory },
    ...mathImports(),
  });
  const i32 = new Int32Array(memory.buffer);
  const inAt = 64, outAt = inAt + 4 * INPUTS;
  i32[0] = inAt;
  i32[1] = outAt;
  i32.set(input, inAt / 4);
  i32.fill(-7, outAt / 4, outAt / 4 + threads * OUTPUTS);
  (inst.exports.k as (a: number, s: number, e: number) => void)(0, 0, threads);
  return i32.slice(outAt / 4, outAt / 4 + threads * OUTPUTS);
}

Deno.test("random integer kernels rendered to wasm match the interpreter, built and optimized", () => {
  const SEED = Number(Deno.env.get("COSGRAD_PROPERTY_SEED") ?? 20180126), KERNELS = 60;
  const THREADS = 8;
  const r = rng(SEED);
  for (let n = 0; n < KERNELS; n++) {
    const seed = Math.floor(r() * 2 ** 31);
    const k = randomKernel(rng(seed), THREADS);
    const input = Int32Array.from({ length: INPUTS }, () => Math.floor(r() * 4294967296) | 0);
    const expected = new Int32Array(THREADS * OUTPUTS).fill(-7);
    interpret(k, { in0: input, out0: expected });
    for (const [label, kernel] of [["as built", k], ["optimized", optimize(k)]] as const) {
      assert.deepEqual(
        runThreads(kernel, input, THREADS),
        expected,
        `kernel seed ${seed} (${label}) differs in wasm:\n${renderWgsl(kernel)}`,
      );
    }
  }
});
