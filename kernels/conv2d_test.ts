import assert from "node:assert/strict";
import { conv2dRowsFilterKernel, conv2dRowsKernel } from "./conv2d_rows.ts";
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
import { getTestDevice, hashFill, maxScaledError, runPlan } from "./_harness_test_util.ts";
import { bin, lit, load, name, u32 } from "../src/kernel/ir.ts";

const device = await getTestDevice();
const ignore = device === null;
const tolerance = { atol: 1e-6, rtol: 1e-5 };

function inputsFor(spec: Conv2dSpec) {
  const g = conv2dGeometry(spec);
  return {
    g,
    x: hashFill(g.n * g.c * g.h * g.w, 11),
    w: hashFill(g.o * (g.c / g.groups) * g.kh * g.kw, 12, 1 / 4),
    dy: hashFill(g.n * g.o * g.oh * g.ow, 13),
  };
}

async function checkForward(spec: Conv2dSpec, withBias = false) {
  const { g, x, w } = inputsFor(spec);
  const bias = hashFill(g.o, 14);
  const ohw = g.oh * g.ow;
  const epilogue = withBias
    ? {
      stmts: [{
        kind: "assign" as const,
        name: "acc",
        value: bin(
          "+",
          name("acc", "f32"),
          load("e0", bin("%", bin("/", name("idx", "u32"), u32(ohw)), u32(g.o)), "f32"),
        ),
      }],
      extraInputs: 1,
    }
    : undefined;
  const plan = conv2dForwardKernel({ ...spec, epilogue });
  const inputs: Record<string, Float32Array> = withBias ? { x, w, e0: bias } : { x, w };
  const { out } = await runPlan(device!, plan, { inputs, outputs: { out: g.n * g.o * ohw } });
  const ref = referenceForward(g, x, w);
  const want = withBias ? ref.value.map((v, i) => v + bias[Math.floor(i / ohw) % g.o]) : ref.value;
  const err = maxScaledError(out, want, { ...tolerance, scale: ref.scale });
  assert.ok(err <= 1, `forward ${JSON.stringify(spec)}: scaled error ${err}`);
  return plan;
}

async function checkBackwardInput(spec: Conv2dSpec) {
  const { g, w, dy } = inputsFor(spec);
  const plan = conv2dBackwardInputKernel(spec);
  const { out } = await runPlan(device!, plan, {
    inputs: { dy, w },
    outputs: { out: g.n * g.c * g.h * g.w },
  });
  const ref = referenceBackwardInput(g, dy, w);
  const err = maxScaledError(out, ref.value, { ...tolerance, scale: ref.scale });
  assert.ok(err <= 1, `backward input ${JSON.stringify(spec)}: scaled error ${err}`);
  return plan;
}

async function checkBackwardFilter(spec: Conv2dSpec) {
  const { g, x, dy } = inputsFor(spec);
  const plan = conv2dBackwardFilterKernel(spec);
  const { out } = await runPlan(device!, plan, {
    inputs: { x, dy },
    outputs: { out: g.o * (g.c / g.groups) * g.kh * g.kw },
  });
  const ref = referenceBackwardFilter(g, x, dy);
  const err = maxScaledError(out, ref.value, { ...tolerance, scale: ref.scale });
  assert.ok(err <= 1, `backward filter ${JSON.stringify(spec)}: scaled error ${err}`);
  return plan;
}

const SMALL: [string, Conv2dSpec][] = [
  ["3x3, stride 1, pad 1, ragged sizes", {
    batch: 2,
    inChannels: 3,
    height: 7,
    width: 6,
    outChannels: 5,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
  ["3x2 kernel, stride 2, dilation 2, asymmetric padding", {
    batch: 2,
    inChannels: 4,
    height: 11,
    width: 10,
    outChannels: 6,
    kernelH: 3,
    kernelW: 2,
    stride: 2,
    dilation: 2,
    padding: { top: 1, bottom: 2, left: 2, right: 0 },
  }],
  ["groups 2, stride [2, 1]", {
    batch: 2,
    inChannels: 4,
    height: 6,
    width: 7,
    outChannels: 6,
    kernelH: 3,
    kernelW: 3,
    stride: [2, 1],
    padding: 1,
    groups: 2,
  }],
  ["depthwise (groups = channels = 8)", {
    batch: 2,
    inChannels: 8,
    height: 6,
    width: 7,
    outChannels: 8,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
    groups: 8,
  }],
];

Deno.test(
  { name: "conv2d kernels match a float64 reference on small shapes", ignore },
  async (t) => {
    for (const [name, spec] of SMALL) {
      await t.step(name, async () => {
        await checkForward(spec, name.startsWith("3x3"));
        await checkBackwardInput(spec);
        await checkBackwardFilter(spec);
      });
    }
  },
);

Deno.test(
  { name: "conv2d kernels with discrete (workgroup-staged) tiles match the reference", ignore },
  async () => {
    const spec = { ...SMALL[2][1], profile: "discrete" as const };
    await checkForward(spec);
    await checkBackwardFilter(spec);
  },
);

Deno.test(
  { name: "conv2dBackwardFilterKernel() is exact over 69,696-term reductions", ignore },
  async () => {
    // batch * outH * outW = 16 * 66 * 66 ≥ 65,536, where TensorFlow.js's WebGPU backend fails.
    await checkBackwardFilter({
      batch: 16,
      inChannels: 8,
      height: 66,
      width: 66,
      outChannels: 8,
      kernelH: 3,
      kernelW: 3,
      padding: 1,
    });
  },
);

Deno.test(
  { name: "conv2dBackwardFilterKernel() is exact on the C1 workload", ignore },
  async () => {
    // C1: batch 16, 64 -> 64 channels, 56x56, 3x3, stride 1, pad 1 (50,176-term reductions).
    const plan = await checkBackwardFilter({
      batch: 16,
      inChannels: 64,
      height: 56,
      width: 56,
      outChannels: 64,
      kernelH: 3,
      kernelW: 3,
      padding: 1,
    });
    assert.equal(plan.steps.length, 2, "expected split-K with a summing pass");
  },
);

/** Shapes with `OH*OW` a multiple of 4, where the explicit-columns path applies. */
const EXPLICIT: [string, Conv2dSpec][] = [
  ["stride 2, pad 1, odd input 7x15", {
    batch: 2,
    inChannels: 3,
    height: 7,
    width: 15,
    outChannels: 5,
    kernelH: 3,
    kernelW: 3,
    stride: 2,
    padding: 1,
  }],
  ["stride 2, pad 0, input column no tap reaches", {
    batch: 3,
    inChannels: 4,
    height: 9,
    width: 8,
    outChannels: 6,
    kernelH: 3,
    kernelW: 3,
    stride: 2,
  }],
  ["3x2 kernel, stride [2, 1], dilation 2, asymmetric padding", {
    batch: 2,
    inChannels: 4,
    height: 11,
    width: 12,
    outChannels: 8,
    kernelH: 3,
    kernelW: 2,
    stride: [2, 1],
    dilation: 2,
    padding: { top: 1, bottom: 2, left: 2, right: 0 },
  }],
  ["stride 3, 1x1 kernel", {
    batch: 2,
    inChannels: 5,
    height: 12,
    width: 6,
    outChannels: 3,
    kernelH: 1,
    kernelW: 1,
    stride: 3,
  }],
];

Deno.test(
  { name: "conv2d kernels with explicit columns (im2col, col2im) match the reference", ignore },
  async (t) => {
    for (const [name, base] of EXPLICIT) {
      // One chunk, then one image per chunk (columnsBytes of a single image's columns).
      const g = conv2dGeometry(base);
      const one = (g.c * g.kh * g.kw * g.oh * g.ow) * 4;
      for (const columnsBytes of [undefined, one]) {
        await t.step(`${name}, ${columnsBytes ? "chunked" : "one chunk"}`, async () => {
          const spec = { ...base, columns: "explicit" as const, columnsBytes };
          const plans = [
            await checkForward(spec, true),
            await checkBackwardInput(spec),
            await checkBackwardFilter(spec),
          ];
          for (const plan of plans) {
            assert.equal(plan.algorithm, "explicit");
            if (columnsBytes) assert.ok(plan.steps.length >= 2 * g.n, "expected chunks");
          }
        });
      }
    }
  },
);

/** 3x3, stride-1, padding-1 shapes where the row kernel applies, one per pixel tile. */
const ROWS: [string, Conv2dSpec][] = [
  ["16 output channels, 8 images of 4x4 (64 pixels: 4 whole images per thread)", {
    batch: 8,
    inChannels: 8,
    height: 4,
    width: 4,
    outChannels: 16,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
  ["8 output channels, 6 images of 2x4 (16 pixels: 2 whole images)", {
    batch: 6,
    inChannels: 8,
    height: 2,
    width: 4,
    outChannels: 8,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
  ["8 output channels, 4x4 (16 pixels: one whole image per thread)", {
    batch: 3,
    inChannels: 8,
    height: 4,
    width: 4,
    outChannels: 8,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
  ["16 output channels, 12x8 (32 pixels: 4 whole rows)", {
    batch: 2,
    inChannels: 16,
    height: 12,
    width: 8,
    outChannels: 16,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
  ["24 output channels, 6x32 (64 pixels: 2 whole rows)", {
    batch: 2,
    inChannels: 8,
    height: 6,
    width: 32,
    outChannels: 24,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
  ["8 output channels, 5x12 (60 pixels: one whole image of 3-quad rows)", {
    batch: 2,
    inChannels: 8,
    height: 5,
    width: 12,
    outChannels: 8,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
  ["8 output channels, 3x120 (60 pixels: half rows of 15 quads)", {
    batch: 1,
    inChannels: 8,
    height: 3,
    width: 120,
    outChannels: 8,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
  ["16 output channels, 5x128 (half rows: edges loaded from the neighbour pixels)", {
    batch: 1,
    inChannels: 8,
    height: 5,
    width: 128,
    outChannels: 16,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  }],
];

Deno.test({ name: "conv2d by rows matches the reference", ignore }, async (t) => {
  for (const [name, spec] of ROWS) {
    await t.step(name, async () => {
      const fwd = await checkForward(spec, true);
      assert.equal(fwd.algorithm, "rows");
      const plan = await checkBackwardInput(spec);
      assert.equal(plan.algorithm, "rows");
      const filter = await checkBackwardFilter({ ...spec, columns: "rows" });
      assert.equal(filter.algorithm, "rowsFilter");
    });
  }
});

/** A 3x3 stride-1 weight gradient, `inChannels` -> 8 on `height`x8 images: inputs, reference, row spec. */
function rowsFilterCase(inChannels: number, height: number) {
  const spec: Conv2dSpec = {
    batch: 2,
    inChannels,
    height,
    width: 8,
    outChannels: 8,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  };
  const { g, x, dy } = inputsFor(spec);
  const rows = { batch: g.n, inChannels: g.c, outChannels: g.o, height: g.h, width: g.w };
  return { x, dy, size: g.o * g.c * 9, ref: referenceBackwardFilter(g, x, dy), rows };
}

Deno.test(
  { name: "conv2dRowsFilterKernel() with one share: direct, or summed for its epilogue", ignore },
  async () => {
    const { x, dy, size, ref, rows } = rowsFilterCase(6, 5);
    const direct = conv2dRowsFilterKernel({ ...rows, splits: 1 });
    assert.equal(direct.steps.length, 1);
    const got = await runPlan(device!, direct, { inputs: { x, dy }, outputs: { out: size } });
    const err0 = maxScaledError(got.out, ref.value, { ...tolerance, scale: ref.scale });
    assert.ok(err0 <= 1, `direct: scaled error ${err0}`);
    const plan = conv2dRowsFilterKernel({
      ...rows,
      splits: 1,
      epilogue: {
        stmts: [{
          kind: "assign",
          name: "acc",
          value: bin(
            "+",
            bin("*", lit(2, "f32"), name("acc", "f32")),
            load("e0", name("idx", "u32"), "f32"),
          ),
        }],
        extraInputs: 1,
      },
    });
    assert.equal(plan.steps.length, 2);
    const e0 = hashFill(size, 5);
    const { out } = await runPlan(device!, plan, { inputs: { x, dy, e0 }, outputs: { out: size } });
    const want = ref.value.map((v, i) => 2 * v + e0[i]);
    const err = maxScaledError(out, want, { ...tolerance, scale: ref.scale.map((v) => 2 * v) });
    assert.ok(err <= 1, `with epilogue: scaled error ${err}`);
  },
);

Deno.test(
  { name: "conv2dRowsFilterKernel() walking several rows per step matches the reference", ignore },
  async () => {
    // Height 6: two, three and six rows per step; edges above and below each group come from
    // the neighbouring rows (or zeros at the image border).
    const { x, dy, size, ref, rows } = rowsFilterCase(4, 6);
    for (
      const tile of [{ to: 8, tc: 2, rh: 2 }, { to: 4, tc: 4, rh: 3 }, { to: 8, tc: 1, rh: 6 }]
    ) {
      const plan = conv2dRowsFilterKernel({ ...rows, tile });
      const got = await runPlan(device!, plan, { inputs: { x, dy }, outputs: { out: size } });
      const err = maxScaledError(got.out, ref.value, { ...tolerance, scale: ref.scale });
      assert.ok(err <= 1, `${JSON.stringify(tile)}: scaled error ${err}`);
    }
    assert.throws(
      () => conv2dRowsFilterKernel({ ...rows, tile: { to: 8, tc: 1, rh: 4 } }),
      /4 rows per step do not divide the height 6/,
    );
  },
);

Deno.test(
  { name: "conv2dRowsKernel() with the big tile (16 x 64) matches the reference", ignore },
  async () => {
    // Auto picks 16 x 64 only for big convolutions; force it on a small one (whole images of 4x4).
    const spec: Conv2dSpec = {
      batch: 8,
      inChannels: 4,
      height: 4,
      width: 4,
      outChannels: 16,
      kernelH: 3,
      kernelW: 3,
      padding: 1,
    };
    const { g, x, w } = inputsFor(spec);
    const plan = conv2dRowsKernel({
      batch: g.n,
      inChannels: g.c,
      outChannels: g.o,
      height: g.h,
      width: g.w,
      mode: "forward",
      tile: { tm: 16, tn: 64 },
    });
    assert.equal(plan.algorithm, "rows"); // the explicit tile is used or refused (RangeError)
    const { out } = await runPlan(device!, plan, {
      inputs: { x, w },
      outputs: { out: g.n * g.o * 16 },
    });
    const ref = referenceForward(g, x, w);
    const err = maxScaledError(out, ref.value, { ...tolerance, scale: ref.scale });
    assert.ok(err <= 1, `scaled error ${err}`);
  },
);

Deno.test("conv2d picks the row kernel only where it applies", () => {
  const spec: Conv2dSpec = {
    batch: 4,
    inChannels: 16,
    height: 8,
    width: 8,
    outChannels: 32,
    kernelH: 3,
    kernelW: 3,
    padding: 1,
  };
  const rows = (s: Conv2dSpec) => conv2dForwardKernel(s).algorithm === "rows";
  assert.ok(rows(spec));
  // The weight gradient by rows from rows of 16 pixels (or on request).
  const filterRows = (s: Conv2dSpec) => conv2dBackwardFilterKernel(s).algorithm === "rowsFilter";
  assert.ok(!filterRows(spec));
  assert.ok(filterRows({ ...spec, width: 16 }));
  assert.ok(filterRows({ ...spec, columns: "rows" }));
  // Stride 2 on an even input: rows too (by sub-pixels for the input gradient).
  assert.ok(filterRows({ ...spec, width: 16, stride: 2 }));
  assert.ok(!filterRows({ ...spec, width: 8, stride: 2 }));
  assert.ok(rows({ ...spec, stride: 2 }));
  assert.equal(conv2dBackwardInputKernel({ ...spec, stride: 2 }).algorithm, "rows");
  assert.ok(rows({ ...spec, columns: "rows" }));
  for (
    const other of [
      { ...spec, profile: "discrete" as const },
      { ...spec, columns: "implicit" as const },
      { ...spec, stride: 2, height: 7 }, // odd input
      { ...spec, stride: 3 },
      { ...spec, padding: 0 },
      { ...spec, dilation: 2, padding: 2 },
      { ...spec, groups: 2 },
      { ...spec, kernelH: 5, kernelW: 5, padding: 2 },
      { ...spec, width: 6 }, // not a multiple of 4
      { ...spec, outChannels: 12 }, // not a multiple of 8
      { ...spec, splitK: 2 },
    ]
  ) {
    assert.ok(!rows(other), JSON.stringify(other));
  }
});

Deno.test("conv2d kernels pick rows for stride 2 on llvmpipe, else explicit columns for input gradients", () => {
  const spec: Conv2dSpec = {
    batch: 128,
    inChannels: 64,
    height: 16,
    width: 16,
    outChannels: 128,
    kernelH: 3,
    kernelW: 3,
    stride: 2,
    padding: 1,
  };
  assert.equal(conv2dBackwardInputKernel(spec).algorithm, "rows");
  assert.equal(conv2dForwardKernel(spec).algorithm, "rows");
  assert.equal(conv2dBackwardFilterKernel(spec).algorithm, "rowsFilter");
  // Where rows do not apply (input channels not a multiple of 8): explicit columns.
  assert.equal(conv2dBackwardInputKernel({ ...spec, inChannels: 12 }).algorithm, "explicit");
  // Forward and weight gradient keep the implicit GEMM on 16x16 outputs (122 output channels:
  // not a multiple of 4, so no rows).
  const large = { ...spec, height: 32, width: 32, outChannels: 122 };
  assert.equal(conv2dForwardKernel(large).algorithm, "gemm");
  assert.equal(conv2dBackwardFilterKernel(large).algorithm, "gemm");
  assert.equal(conv2dForwardKernel({ ...large, columns: "explicit" }).algorithm, "explicit");
  for (
    const other of [
      { ...spec, profile: "discrete" as const },
      { ...spec, groups: 2 },
      { ...spec, columns: "implicit" as const },
      { ...spec, height: 14, width: 14 }, // 7x7 outputs: not a multiple of 4
    ]
  ) {
    assert.notEqual(conv2dBackwardInputKernel(other).algorithm, "explicit");
  }
  assert.throws(
    () => conv2dForwardKernel({ ...spec, columns: "both" as "auto" }),
    TypeError,
  );
});

Deno.test("conv2dGeometry() computes output sizes and rejects bad specs", () => {
  const base = {
    batch: 1,
    inChannels: 4,
    height: 10,
    width: 9,
    outChannels: 6,
    kernelH: 3,
    kernelW: 3,
  };
  const g = conv2dGeometry({ ...base, stride: 2, dilation: 2, padding: 2 });
  assert.deepEqual([g.oh, g.ow], [5, 5]);
  const a = conv2dGeometry({ ...base, padding: { top: 0, bottom: 1, left: 2, right: 0 } });
  assert.deepEqual([a.oh, a.ow], [9, 9]);
  assert.throws(() => conv2dGeometry({ ...base, groups: 4 }), RangeError);
  assert.throws(() => conv2dGeometry({ ...base, height: 1, width: 1 }), RangeError);
  assert.throws(() => conv2dGeometry({ ...base, stride: 0 }), RangeError);
  assert.throws(() => conv2dGeometry({ ...base, padding: -1 }), RangeError);
});
