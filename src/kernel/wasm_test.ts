// The wasm binary writer, the kernel-IR renderer and the GEMM micro-kernel, checked by the
// engine (WebAssembly.validate, instantiation) and against plain JavaScript arithmetic.
import assert from "node:assert/strict";
import { bin, call, type Expr, type Kernel, lit, load, name, select, u32 } from "./ir.ts";
import { MATH_IMPORTS, mathImports, renderWasmFunction } from "./wasm.ts";
import { GEMM_PARAMS, gemmFunction, gemmScratchBytes, relaxedSimd } from "./wasm_gemm.ts";
import { encodeModule, FunctionBuilder, sleb, uleb } from "./wasm_writer.ts";

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

/** Runs a one-binding kernel `out0[gid] = value(gid, in0)` over `n` elements. */
function runKernel(value: (i: Expr) => Expr, input: Float32Array, n: number): Float32Array {
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
  renderWasmFunction(kernel, f, { elements: (b) => b.name === "in0" ? input.length : n });
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
  (inst.exports.k as (a: number, s: number, e: number) => void)(0, 0, n);
  return new Float32Array(memory.buffer, 64 + 4 * input.length, n).slice();
}

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

Deno.test("the GEMM function agrees with float64 sums on odd shapes, layouts and row splits", () => {
  for (const fma of [false, ...(relaxedSimd() ? [true] : [])]) {
    for (const shape of [{ mr: 6, nr: 8, kc: 16, fma }, { mr: 4, nr: 8, kc: 256, fma }]) {
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
      for (
        const [m, n, k, transA, accumulate] of [[1, 1, 1, 0, 0], [7, 13, 33, 1, 0], [
          13,
          9,
          17,
          0,
          1,
        ]]
      ) {
        const A = 256, B = A + m * k * 4, C = B + k * n * 4, P = C + m * n * 4, S = P + 64;
        assert.ok(S + gemmScratchBytes(shape, n) < memory.buffer.byteLength);
        for (let i = 0; i < m * k; i++) f[A / 4 + i] = Math.sin(i + 1);
        for (let i = 0; i < k * n; i++) f[B / 4 + i] = Math.cos(i * 0.7);
        for (let i = 0; i < m * n; i++) f[C / 4 + i] = i % 3;
        const before = f.slice(C / 4, C / 4 + m * n);
        const [aRs, aCs] = transA ? [1, m] : [k, 1];
        const p = [A, aRs, aCs, B, n, 1, C, n, n, k, accumulate];
        assert.equal(p.length, GEMM_PARAMS.length);
        p.forEach((v, i) => w[P / 4 + i] = v);
        // Rows in two parts, the second one's columns in two parts again.
        gemm(P, 0, Math.ceil(m / 2), 0, n, S);
        gemm(P, Math.ceil(m / 2), m, 0, 8, S);
        gemm(P, Math.ceil(m / 2), m, 8, n, S);
        for (let i = 0; i < m; i++) {
          for (let j = 0; j < n; j++) {
            let s = accumulate ? before[i * n + j] : 0;
            for (let q = 0; q < k; q++) s += f[A / 4 + i * aRs + q * aCs] * f[B / 4 + q * n + j];
            const got = f[C / 4 + i * n + j];
            assert.ok(Math.abs(got - s) <= 1e-5 * (1 + Math.abs(s)), `${m}x${n}x${k} ${got} ${s}`);
          }
        }
      }
    }
  }
});
