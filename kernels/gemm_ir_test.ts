// The GEMM family's kernel IR run by the reference interpreter (no device): every step of a
// plan in order, on host buffers, against float64 references. The device tests
// (matmul_test.ts, conv2d_test.ts) run the rendered WGSL; these check the IR itself.
import assert from "node:assert/strict";
import { interpret } from "../src/kernel/_interpret_test_util.ts";
import { bin, lit, load, name, u32 } from "../src/kernel/ir.ts";
import { matmulKernel, type MatmulSpec } from "./matmul.ts";
import {
  conv2dBackwardFilterKernel,
  conv2dBackwardInputKernel,
  conv2dForwardKernel,
  conv2dGeometry,
  type Conv2dSpec,
} from "./conv2d.ts";
import {
  referenceBackwardFilter,
  referenceBackwardInput,
  referenceForward,
} from "./_conv2d_reference_test_util.ts";
import { hashFill, maxScaledError } from "./_harness_test_util.ts";
import { conv2dRowsKernel } from "./conv2d_rows.ts";
import type { Epilogue, KernelPlan } from "./types.ts";

/** Runs every step of `plan` in the interpreter; returns `out`. */
function run(plan: KernelPlan, inputs: Record<string, Float32Array>, outSize: number) {
  const buffers: Record<string, Float32Array> = { ...inputs, out: new Float32Array(outSize) };
  for (const s of plan.scratch) buffers[s.name] = new Float32Array(s.size / 4);
  for (const step of plan.steps) {
    // A step binding a range of a buffer sees that range as the whole array.
    const views = { ...buffers };
    for (const [b, r] of Object.entries(step.ranges ?? {})) {
      views[b] = buffers[b].subarray(r.offset / 4, (r.offset + r.size) / 4);
    }
    interpret(step.kernel, views, { robust: true });
  }
  return buffers.out;
}

function matmulReference(spec: MatmulSpec, a: Float32Array, b: Float32Array) {
  const { batch, m, n, k } = spec;
  const value = new Float64Array(batch * m * n);
  const scale = new Float64Array(batch * m * n);
  for (let z = 0; z < batch; z++) {
    const ao = spec.broadcastA ? 0 : z * m * k;
    const bo = spec.broadcastB ? 0 : z * k * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        for (let p = 0; p < k; p++) {
          const av = spec.transA ? a[ao + p * m + i] : a[ao + i * k + p];
          const bv = spec.transB ? b[bo + j * k + p] : b[bo + p * n + j];
          value[(z * m + i) * n + j] += av * bv;
          scale[(z * m + i) * n + j] += Math.abs(av * bv);
        }
      }
    }
  }
  return { value, scale };
}

// acc = 0.5 * acc + e0[idx % 12u]
const EPILOGUE: Epilogue = {
  stmts: [{
    kind: "assign",
    name: "acc",
    value: bin(
      "+",
      bin("*", lit(0.5, "f32"), name("acc", "f32")),
      load("e0", bin("%", name("idx", "u32"), u32(12)), "f32"),
    ),
  }],
  extraInputs: 1,
};

Deno.test("matmulKernel() IR computes products in the interpreter", async (t) => {
  const cases: [string, MatmulSpec][] = [
    ["registers, vec4 along k and n, broadcast B", {
      batch: 2,
      m: 13,
      n: 12,
      k: 16,
      broadcastB: true,
    }],
    ["registers, scalar, ragged k tail", { batch: 1, m: 9, n: 10, k: 7 }],
    ["registers, transposed, vec4 along m", {
      batch: 1,
      m: 8,
      n: 6,
      k: 9,
      transA: true,
      transB: true,
    }],
    ["workgroup staging, ragged", { batch: 2, m: 10, n: 9, k: 11, profile: "discrete" }],
    ["workgroup staging, vec4 along k and tile", {
      batch: 1,
      m: 12,
      n: 16,
      k: 8,
      tile: { bm: 32, bn: 32, bk: 8, tm: 8, tn: 8 },
    }],
    ["split-K with an epilogue", { batch: 1, m: 4, n: 12, k: 520, splitK: 2, epilogue: EPILOGUE }],
    ["epilogue in place", { batch: 1, m: 5, n: 12, k: 6, epilogue: EPILOGUE }],
  ];
  for (const [label, spec] of cases) {
    await t.step(label, () => {
      const { batch, m, n, k } = spec;
      const a = hashFill((spec.broadcastA ? 1 : batch) * m * k, 1);
      const b = hashFill((spec.broadcastB ? 1 : batch) * k * n, 2);
      const e0 = hashFill(12, 3);
      const plan = matmulKernel(spec);
      if (spec.splitK !== undefined) assert.equal(plan.steps.length, 2);
      const out = run(plan, { a, b, e0 }, batch * m * n);
      const ref = matmulReference(spec, a, b);
      const want = spec.epilogue === undefined
        ? ref.value
        : ref.value.map((x, i) => 0.5 * x + e0[i % 12]);
      const err = maxScaledError(out, want, { atol: 1e-6, rtol: 1e-5, scale: ref.scale });
      assert.ok(err <= 1, `${label}: scaled error ${err}`);
    });
  }
});

Deno.test("conv2d IR (implicit GEMM, explicit columns, rows) matches the reference in the interpreter", async (t) => {
  const base: Conv2dSpec = {
    batch: 2,
    inChannels: 3,
    height: 7,
    width: 6,
    outChannels: 4,
    kernelH: 3,
    kernelW: 3,
    stride: 2,
    padding: 1,
    columns: "implicit",
  };
  const rows: Conv2dSpec = {
    ...base,
    inChannels: 8,
    height: 4,
    width: 8,
    outChannels: 8,
    stride: 1,
    columns: "rows",
  };
  const cases: [string, Conv2dSpec][] = [
    ["implicit, stride 2", base],
    ["implicit, groups 2, dilation 2", {
      ...base,
      inChannels: 4,
      groups: 2,
      dilation: 2,
      padding: 2,
      stride: 1,
    }],
    ["implicit, workgroup staging", { ...base, profile: "discrete" }],
    ["explicit columns (im2col, col2im), one chunk", { ...base, columns: "explicit" }],
    ["explicit columns, chunks of one image", {
      ...base,
      columns: "explicit",
      columnsBytes: 3 * 9 * 12 * 4,
    }],
    ["rows, whole images per thread", { ...rows }],
    ["rows, parts of a row per thread", { ...rows, height: 2, width: 32, outChannels: 16 }],
    ["rows, stride 2, whole images per thread", { ...rows, stride: 2, height: 8, width: 8 }],
    ["rows, stride 2, whole rows per thread", { ...rows, stride: 2, height: 8, width: 16 }],
    ["rows, weights in two uniform slices", { ...rows, inChannels: 16, outChannels: 16 }],
    ["rows, stride 2, weights in two uniform slices", {
      ...rows,
      stride: 2,
      height: 8,
      width: 8,
      inChannels: 16,
      outChannels: 16,
    }],
    ["rows, stride 2, parts of a row per thread", {
      ...rows,
      stride: 2,
      height: 4,
      width: 64,
      outChannels: 16,
    }],
    ["explicit columns, dilation 2 (col2im by taps)", {
      ...base,
      columns: "explicit",
      dilation: 2,
      padding: 2,
    }],
  ];
  for (const [label, spec] of cases) {
    await t.step(label, () => {
      const g = conv2dGeometry(spec);
      const x = hashFill(g.n * g.c * g.h * g.w, 11);
      const w = hashFill(g.o * (g.c / g.groups) * g.kh * g.kw, 12, 1 / 4);
      const dy = hashFill(g.n * g.o * g.oh * g.ow, 13);
      const tol = { atol: 1e-6, rtol: 1e-5 };
      const fwd = referenceForward(g, x, w);
      const plans = [conv2dForwardKernel, conv2dBackwardInputKernel, conv2dBackwardFilterKernel]
        .map((f) => f(spec).algorithm);
      const want = spec.columns === "explicit"
        ? ["explicit", "explicit", "explicit"]
        : spec.columns === "rows"
        ? ["rows", "rows", "rowsFilter"]
        : ["gemm", "gemm", "gemm"];
      assert.deepEqual(plans, want);
      const y = run(conv2dForwardKernel(spec), { x, w }, g.n * g.o * g.oh * g.ow);
      assert.ok(maxScaledError(y, fwd.value, { ...tol, scale: fwd.scale }) <= 1, "forward");
      const bi = referenceBackwardInput(g, dy, w);
      const dx = run(conv2dBackwardInputKernel(spec), { dy, w }, g.n * g.c * g.h * g.w);
      assert.ok(maxScaledError(dx, bi.value, { ...tol, scale: bi.scale }) <= 1, "input gradient");
      const bf = referenceBackwardFilter(g, x, dy);
      const dw = run(conv2dBackwardFilterKernel(spec), { x, dy }, w.length);
      assert.ok(maxScaledError(dw, bf.value, { ...tol, scale: bf.scale }) <= 1, "weight gradient");
    });
  }
});

Deno.test("conv2d row kernels read their weights from uniform slices up to 64 KiB", () => {
  const spec = { batch: 1, height: 8, width: 8, mode: "forward" as const };
  // 64 input channels, 16 output channels a thread: a header vec4 and 2304 of weights, rounded
  // up to 2320 (256-byte offsets); two blocks of channels, one dispatch each.
  const plan = conv2dRowsKernel({
    ...spec,
    inChannels: 64,
    outChannels: 32,
    tile: { tm: 16, tn: 16 },
  });
  assert.equal(plan.steps.length, 3);
  assert.deepEqual(plan.steps.slice(1).map((s) => s.ranges?.wq), [
    { offset: 0, size: 37120 },
    { offset: 37120, size: 37120 },
  ]);
  assert.equal(plan.steps[1].kernel, plan.steps[2].kernel);
  assert.equal(plan.steps[1].kernel.bindings[1].uniform, 2320);
  assert.deepEqual(plan.scratch, [{ name: "wq", size: 2 * 37120 }]);
  // 256 input channels: 16 channels' weights take 147 KiB, so one dispatch reads storage.
  const big = conv2dRowsKernel({
    ...spec,
    inChannels: 256,
    outChannels: 32,
    tile: { tm: 16, tn: 16 },
  });
  assert.equal(big.steps.length, 2);
  assert.equal(big.steps[1].ranges, undefined);
  assert.equal(big.steps[1].kernel.bindings[1].uniform, undefined);
  assert.deepEqual(big.scratch, [{ name: "wq", size: 32 * 256 * 9 * 4 }]);
});

Deno.test("conv2d row kernels fuse an epilogue in the interpreter", () => {
  const spec: Conv2dSpec = {
    batch: 2,
    inChannels: 3,
    height: 4,
    width: 8,
    outChannels: 8,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
    columns: "rows",
    epilogue: EPILOGUE,
  };
  const g = conv2dGeometry(spec);
  const x = hashFill(g.n * g.c * g.h * g.w, 11);
  const w = hashFill(g.o * g.c * 9, 12, 1 / 4);
  const dy = hashFill(g.n * g.o * g.h * g.w, 13);
  const e0 = hashFill(12, 3);
  const tol = { atol: 1e-6, rtol: 1e-5 };
  const apply = (r: { value: Float64Array }) => r.value.map((x, i) => 0.5 * x + e0[i % 12]);
  const fwd = referenceForward(g, x, w);
  const y = run(conv2dForwardKernel(spec), { x, w, e0 }, g.n * g.o * g.h * g.w);
  assert.ok(maxScaledError(y, apply(fwd), { ...tol, scale: fwd.scale }) <= 1, "forward");
  // Stride-2 input gradients: by explicit columns (4 channels; the epilogue runs in col2im) and
  // by sub-pixels (8 channels; the epilogue runs over dx, four times dy's size).
  const strided = (inChannels: number, columns: "explicit" | "rows", label: string) => {
    const s2 = { ...spec, inChannels, stride: 2, columns };
    const gs = conv2dGeometry(s2);
    const ws = hashFill(gs.o * gs.c * 9, 12, 1 / 4);
    const dys = hashFill(gs.n * gs.o * gs.oh * gs.ow, 13);
    const ref = referenceBackwardInput(gs, dys, ws);
    const plan = conv2dBackwardInputKernel(s2);
    assert.equal(plan.algorithm, columns);
    const dx = run(plan, { dy: dys, w: ws, e0 }, gs.n * gs.c * gs.h * gs.w);
    assert.ok(maxScaledError(dx, apply(ref), { ...tol, scale: ref.scale }) <= 1, label);
  };
  strided(4, "explicit", "col2im");
  strided(8, "rows", "sub-pixels");
  const bf = referenceBackwardFilter(g, x, dy);
  const plan = conv2dBackwardFilterKernel(spec);
  assert.equal(plan.steps.length, 2);
  const dw = run(plan, { x, dy, e0 }, w.length);
  assert.ok(maxScaledError(dw, apply(bf), { ...tol, scale: bf.scale }) <= 1, "weight gradient");
});
