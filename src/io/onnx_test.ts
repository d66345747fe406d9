// ONNX export and import, checked against ONNX Runtime (onnxruntime-node, cpu provider) and
// PyTorch's output for the fixture model: every layer type exported by toOnnx runs in ONNX
// Runtime at another batch size than it was traced with (the batch axis is dynamic) and matches
// cosgrad on cpu and on webgpu; the PyTorch-exported fixture imports and matches PyTorch; an
// export-import round trip keeps values and gradients; unsupported things are named errors.
import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import { cpuBackend, withBackendAsync } from "../backend/registry.ts";
import type { Backend } from "../backend/storage.ts";
import { gpu } from "../backend/webgpu/_gpu_test_util.ts";
import * as nn from "../nn/mod.ts";
import { decodeModel, encodeModel, type OnnxAttribute, type OnnxModel } from "./_onnx_proto.ts";
import { writeTensor } from "./_onnx_tensor.ts";
import { maxAbsDiff, ortRun, ortSession } from "./_onnx_ort.ts";
import { toOnnx } from "./onnx_export.ts";
import { fromOnnx, splitStatistics } from "./onnx_import.ts";

type T = cg.Tensor;
type Params = Record<string, unknown>;

const FIXTURES = new URL("../../test/fixtures/onnx/", import.meta.url);

/** Deterministic values in [lo, hi) (mulberry32). */
function values(n: number, seed: number, lo = -1, hi = 1): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  });
}

function rand(shape: number[], seed: number, lo = -1, hi = 1): T {
  return cg.tensor(values(shape.reduce((a, b) => a * b, 1), seed, lo, hi), shape);
}

function bn(c: number, seed: number) {
  return {
    params: { weight: rand([c], seed, 0.6, 1.4), bias: rand([c], seed + 1, -0.2, 0.2) },
    state: { mean: rand([c], seed + 2, -0.2, 0.2), var: rand([c], seed + 3, 0.5, 1.5) },
  };
}

interface Case {
  name: string;
  /** Input shape at batch 2 (the export example); ONNX Runtime runs it at batch 3. */
  input: number[];
  /** Parameters, built under the backend that runs the case. */
  params: () => Params;
  f: (p: Params, x: T) => T;
  /** Operators the exported graph must contain. */
  ops: string[];
  /** Operators it must not contain (the pattern was folded). */
  not?: string[];
}

// deno-lint-ignore no-explicit-any
const P = (p: Params) => p as any;

const CASES: Case[] = [
  {
    name: "conv with bias (stride 2, padding 1)",
    input: [2, 3, 9, 9],
    params: () => ({ weight: rand([8, 3, 3, 3], 1), bias: rand([8], 2) }),
    f: (p, x) => nn.conv2d(P(p), x, { stride: 2, padding: 1 }),
    ops: ["Conv"],
    not: ["Add"],
  },
  {
    name: "grouped dilated conv without bias",
    input: [2, 4, 10, 10],
    params: () => ({ weight: rand([6, 2, 3, 3], 3) }),
    f: (p, x) => nn.conv2d(P(p), x, { groups: 2, dilation: 2, padding: 2 }),
    ops: ["Conv"],
  },
  {
    name: "batch norm (running statistics), 4-D",
    input: [2, 5, 4, 4],
    params: () => bn(5, 10),
    f: (p, x) => nn.batchNorm(P(p).params, P(p).state, x, { training: false }).out,
    ops: ["BatchNormalization"],
    not: ["Mul", "Sub"],
  },
  {
    name: "batch norm, 2-D (embedding)",
    input: [2, 7],
    params: () => bn(7, 20),
    f: (p, x) => nn.batchNorm(P(p).params, P(p).state, x, { training: false }).out,
    ops: ["BatchNormalization"],
    not: ["Mul"],
  },
  {
    name: "PReLU",
    input: [2, 4, 3, 3],
    params: () => ({ weight: rand([4], 30, 0, 0.5) }),
    f: (p, x) => nn.prelu(P(p), x),
    ops: ["PRelu"],
    not: ["Where"],
  },
  {
    name: "ReLU, sigmoid, tanh",
    input: [2, 6],
    params: () => ({}),
    f: (_, x) => cg.add(cg.relu(x), cg.mul(cg.sigmoid(x), cg.tanh(x))),
    ops: ["Relu", "Exp"],
  },
  {
    name: "residual block (iresnet, downsampling shortcut)",
    input: [2, 4, 8, 8],
    params: () => ({
      bn1: bn(4, 40).params,
      conv1: { weight: rand([6, 4, 3, 3], 41, -0.3, 0.3) },
      bn2: bn(6, 42).params,
      prelu: { weight: rand([6], 43, 0, 0.4) },
      conv2: { weight: rand([6, 6, 3, 3], 44, -0.3, 0.3) },
      bn3: bn(6, 45).params,
      downsample: { conv: { weight: rand([6, 4, 1, 1], 46) }, bn: bn(6, 47).params },
      state: {
        bn1: bn(4, 40).state,
        bn2: bn(6, 42).state,
        bn3: bn(6, 45).state,
        downsample: { bn: bn(6, 47).state },
      },
    }),
    f: (p, x) => nn.iresBlock(P(p), P(p).state, x, { training: false, stride: 2 }).out,
    ops: ["Conv", "BatchNormalization", "PRelu", "Add"],
  },
  {
    name: "linear with bias",
    input: [2, 12],
    params: () => ({ weight: rand([12, 5], 50), bias: rand([5], 51) }),
    f: (p, x) => nn.linear(P(p), x),
    ops: ["Gemm"],
    not: ["MatMul", "Add"],
  },
  {
    name: "linear without bias",
    input: [2, 12],
    params: () => ({ weight: rand([12, 5], 52) }),
    f: (p, x) => nn.linear(P(p), x),
    ops: ["MatMul"],
  },
  {
    name: "max pooling 3x3 stride 2 padding 1",
    input: [2, 3, 9, 9],
    params: () => ({}),
    f: (_, x) => nn.maxPool2d(x, { kernel: 3, stride: 2, padding: 1 }),
    ops: ["ReduceMax"],
  },
  {
    name: "max pooling 2x2, average pooling 2x2",
    input: [2, 3, 8, 8],
    params: () => ({}),
    f: (_, x) => cg.add(nn.maxPool2d(x, { kernel: 2 }), nn.avgPool2d(x, { kernel: 2 })),
    ops: ["MaxPool", "AveragePool"],
    not: ["ReduceMax", "ReduceMean", "ReduceSum"],
  },
  {
    name: "global average pooling",
    input: [2, 5, 6, 6],
    params: () => ({}),
    f: (_, x) => nn.globalAvgPool(x),
    ops: ["GlobalAveragePool"],
  },
  {
    name: "transpose, reshape, flatten",
    input: [2, 3, 4, 5],
    params: () => ({}),
    f: (_, x) => cg.flatten(cg.reshape(cg.transpose(x, [0, 2, 3, 1]), [-1, 4, 15])),
    ops: ["Transpose", "Reshape"],
  },
  {
    name: "L2 normalization and softmax",
    input: [2, 9],
    params: () => ({}),
    f: (_, x) => cg.add(cg.l2Normalize(x), cg.softmax(x)),
    ops: ["ReduceSum", "ReduceMax", "Exp"],
  },
  {
    name: "concat, slice, pad, flip",
    input: [2, 3, 5, 5],
    params: () => ({}),
    f: (_, x) =>
      cg.concat([
        cg.pad(cg.slice(x, [0, 0, 1, 1], [x.shape[0], 3, 4, 4]), [[0, 0], [0, 0], [1, 1], [1, 1]]),
        cg.flip(x, 3),
      ], 1),
    ops: ["Concat", "Slice", "Pad"],
  },
  {
    name: "the small network of the main example (inference)",
    input: [2, 3, 16, 16],
    params: () => {
      const { params, state } = nn.smallNet.init(cg.randomKey(3), {
        inputSize: 16,
        widths: [8, 16],
        embedding: 32,
      });
      let k = 100;
      const stats = cg.treeMap((t: T) => rand(t.shape, k++, 0.5, 1.5), state);
      return { params, state: stats };
    },
    f: (p, x) => nn.smallNet.apply(P(p).params, P(p).state, x, { training: false }).out,
    ops: ["Conv", "BatchNormalization", "PRelu", "MatMul"],
    not: ["Where", "Sub"],
  },
];

async function runCase(c: Case, backend: Backend, x3: Float32Array, shape3: number[]) {
  return await withBackendAsync(backend, async () => {
    const p = c.params();
    const y = cg.compile((pp: Params, x: T) => c.f(pp, x))(p, cg.tensor(x3, shape3));
    return { p, y: await y.data() as Float32Array };
  });
}

function opsOf(m: OnnxModel): string[] {
  return (m.graph?.node ?? []).map((n) => n.opType);
}

Deno.test("toOnnx() layers run in ONNX Runtime and match cosgrad on cpu and webgpu", async (t) => {
  for (const c of CASES) {
    await t.step(c.name, async () => {
      const bytes = await withBackendAsync(cpuBackend(), () => {
        const p = c.params();
        return toOnnx(c.f, p, [rand(c.input, 7)], { inputNames: ["x"], outputNames: ["y"] });
      });
      const ops = opsOf(await decodeModel(bytes));
      for (const op of c.ops) assert.ok(ops.includes(op), `${op} missing from ${ops}`);
      for (const op of c.not ?? []) assert.ok(!ops.includes(op), `${op} left in ${ops}`);
      const shape3 = [3, ...c.input.slice(1)];
      const x3 = values(shape3.reduce((a, b) => a * b, 1), 9);
      const [ref] = await ortRun(await ortSession(bytes), { x: { data: x3, shape: shape3 } });
      const scale = Math.max(1, ...ref.data.map(Math.abs));
      const cpu = await runCase(c, cpuBackend(), x3, shape3);
      assert.ok(maxAbsDiff(ref.data, cpu.y) <= 1e-4 * scale, `cpu: ${maxAbsDiff(ref.data, cpu.y)}`);
      if (gpu !== null) {
        const g = await runCase(c, gpu, x3, shape3);
        assert.ok(
          maxAbsDiff(ref.data, g.y) <= 1e-4 * scale,
          `webgpu: ${maxAbsDiff(ref.data, g.y)}`,
        );
      }
    });
  }
});

async function fixture() {
  const meta = JSON.parse(await Deno.readTextFile(new URL("embed_public.json", FIXTURES)));
  const read = async (name: string) =>
    new Float32Array((await Deno.readFile(new URL(name, FIXTURES))).slice().buffer);
  return {
    bytes: await Deno.readFile(new URL(meta.model, FIXTURES)),
    x: await read(meta.input),
    y: await read(meta.output),
    shape: meta.input_shape as number[],
  };
}

Deno.test("fromOnnx() imports PyTorch's fixture and matches PyTorch within 1e-4", async (t) => {
  const fx = await fixture();
  for (const [name, backend] of [["cpu", cpuBackend()], ["webgpu", gpu]] as const) {
    if (backend === null) continue;
    await t.step(name, async () => {
      await withBackendAsync(backend, async () => {
        const m = await fromOnnx(fx.bytes);
        assert.deepEqual(m.inputs, [{
          name: "data",
          dtype: "float32",
          shape: ["batch", 3, 32, 32],
        }]);
        assert.deepEqual(m.outputs.map((o) => o.name), ["fc1"]);
        assert.equal(m.statistics.length, 8); // 4 batch norms x (mean, var)
        const [y] = m.apply(m.params, cg.tensor(fx.x, fx.shape));
        const d = maxAbsDiff(await y.data(), fx.y);
        assert.ok(d <= 1e-4, `${name}: largest difference ${d}`);
      });
    });
  }
  await t.step("ONNX Runtime agrees on the same file", async () => {
    const [ref] = await ortRun(await ortSession(fx.bytes), {
      data: { data: fx.x, shape: fx.shape },
    });
    assert.ok(maxAbsDiff(ref.data, fx.y) <= 1e-4);
  });
});

Deno.test("fromOnnx() gradients pass checkGrad and leave statistics out of training", async () => {
  const fx = await fixture();
  const m = await withBackendAsync(cpuBackend(), () => fromOnnx(fx.bytes));
  const { trainable, statistics } = splitStatistics(m, m.params);
  assert.ok(
    Object.keys(statistics).every((k) => k.endsWith("running_mean") || k.endsWith("running_var")),
  );
  assert.ok("8.weight" in trainable && !("8.weight" in statistics));
  const x = cg.tensor(fx.x.subarray(0, 3 * 32 * 32), [1, 3, 32, 32]);
  const report = await cg.checkGrad(
    (p: Record<string, T>, s: Record<string, T>, xx: T) => m.apply({ ...p, ...s }, xx)[0],
    [trainable, statistics, x],
    { directions: 2, tolerance: 1e-5 },
  );
  assert.ok(report.ok, `largest error ${report.maxError}`);
});

Deno.test("toOnnx() then fromOnnx() keeps values and gradients", async () => {
  await withBackendAsync(cpuBackend(), async () => {
    const c = CASES[CASES.length - 1];
    const p = c.params() as { params: unknown; state: unknown };
    const x = rand([2, 3, 16, 16], 5);
    const bytes = await toOnnx(c.f, p, [x]);
    const m = await fromOnnx(bytes);
    const want = await c.f(p, x).data();
    const [got] = m.apply(m.params, x);
    assert.ok(maxAbsDiff(await got.data(), want) <= 1e-5);
    // Gradients of one loss through both, compared by parameter name.
    const r = rand([2, 32], 6);
    const loss = (y: T) => cg.sum(cg.mul(y, r));
    const g0 = cg.grad((pp: Params) => loss(c.f(pp, x)))(p);
    const g1 = cg.grad((pp: Record<string, T>) => loss(m.apply(pp, x)[0]))(m.params) as Record<
      string,
      T
    >;
    const named = new Map<string, T>();
    const walk = (tree: unknown, prefix: string) => {
      if (tree instanceof cg.Tensor) named.set(prefix, tree);
      else if (tree && typeof tree === "object") {
        for (const [k, v] of Object.entries(tree)) walk(v, prefix ? `${prefix}.${k}` : k);
      }
    };
    walk(g0, "");
    assert.deepEqual(Object.keys(g1).sort(), Object.keys(m.params).sort());
    for (const [name, g] of Object.entries(g1)) {
      const ref = named.get(name);
      assert.ok(ref !== undefined, `no gradient named ${name}`);
      const a = await g.data(), b = await ref.data();
      const scale = Math.max(1e-3, ...Array.from(b, Math.abs));
      assert.ok(maxAbsDiff(a, b) <= 1e-4 * scale, `${name}: ${maxAbsDiff(a, b)}`);
    }
  });
});

Deno.test("toOnnx() and fromOnnx() name what they cannot do", async (t) => {
  await t.step("an unsupported primitive", async () => {
    const f = (_: Params, x: T) =>
      cg.scatterAdd(x, cg.tensor(new Int32Array([0, 0]), [2], { dtype: "int32" }), [4], 0);
    await assert.rejects(
      () =>
        withBackendAsync(
          cpuBackend(),
          () => toOnnx(f, {}, [rand([2], 1)], { dynamicBatch: false }),
        ),
      /primitive "scatterAdd" \(shape \[4\]\) has no ONNX export/,
    );
  });
  const model = (op: string, attribute: OnnxAttribute[] = []) =>
    encodeModel({
      irVersion: 8,
      opsetImport: [{ domain: "", version: 17 }],
      graph: {
        node: [{ opType: op, name: "n0", input: ["x", "w"], output: ["y"], attribute }],
        initializer: [writeTensor("w", 1, [2, 2, 1, 1], [1, 0, 0, 1])],
        input: [{
          name: "x",
          type: {
            tensorType: {
              elemType: 1,
              shape: { dim: [{ dimValue: 1 }, { dimValue: 2 }, { dimValue: 3 }, { dimValue: 3 }] },
            },
          },
        }],
        output: [{ name: "y", type: { tensorType: { elemType: 1 } } }],
      },
    });
  await t.step("an unsupported operator", async () => {
    await assert.rejects(
      async () => fromOnnx(await model("Einsum")),
      /node 0 "n0" \(Einsum\): unsupported operator Einsum/,
    );
  });
  await t.step("an unsupported attribute value", async () => {
    const bytes = await model("Conv", [
      { name: "auto_pad", type: 3, s: new TextEncoder().encode("SAME_UPPER") },
    ]);
    await assert.rejects(
      () => fromOnnx(bytes),
      /node 0 "n0" \(Conv\): unsupported attribute auto_pad=SAME_UPPER/,
    );
  });
});

Deno.test("fromOnnx() apply names the node whose shapes do not fit", async () => {
  const bytes = await encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    graph: {
      node: [{ opType: "MatMul", name: "proj", input: ["x", "w"], output: ["y"] }],
      initializer: [writeTensor("w", 1, [3, 2], [1, 2, 3, 4, 5, 6])],
      input: [{
        name: "x",
        type: {
          tensorType: { elemType: 1, shape: { dim: [{ dimParam: "n" }, { dimParam: "k" }] } },
        },
      }],
      output: [{ name: "y", type: { tensorType: { elemType: 1 } } }],
    },
  });
  const m = await withBackendAsync(cpuBackend(), () => fromOnnx(bytes));
  assert.throws(
    () => m.apply(m.params, rand([2, 4], 1)),
    /node 0 "proj" \(MatMul\): matmul: cannot multiply \[2,4\] by \[3,2\]/,
  );
});

Deno.test("toOnnx() opsets 18 to 21 and a static batch run in ONNX Runtime", async (t) => {
  // Opset 18 moved ReduceMax's and ReduceMean's axes from attributes to inputs.
  const f = (_: Params, x: T) =>
    cg.add(
      cg.softmax(cg.flatten(nn.avgPool2d(x, { kernel: 2 }))),
      cg.max(cg.flatten(x), 1, { keepdims: true }),
    );
  const input = [2, 3, 4, 4];
  const x3 = values(3 * 3 * 4 * 4, 4);
  const want = await withBackendAsync(
    cpuBackend(),
    () => f({}, cg.tensor(x3, [3, 3, 4, 4])).data(),
  );
  for (const opset of [18, 19, 21]) {
    await t.step(`opset ${opset}`, async () => {
      const bytes = await withBackendAsync(
        cpuBackend(),
        () => toOnnx(f, {}, [rand(input, 1)], { opset, inputNames: ["x"] }),
      );
      const m = await decodeModel(bytes);
      assert.equal(m.opsetImport?.[0].version, opset);
      const [ref] = await ortRun(await ortSession(bytes), { x: { data: x3, shape: [3, 3, 4, 4] } });
      assert.ok(maxAbsDiff(ref.data, want) <= 1e-5);
    });
  }
  await t.step("dynamicBatch: false", async () => {
    const bytes = await withBackendAsync(
      cpuBackend(),
      () => toOnnx(f, {}, [rand(input, 1)], { dynamicBatch: false, inputNames: ["x"] }),
    );
    const m = await decodeModel(bytes);
    assert.deepEqual(m.graph?.input?.[0].type?.tensorType?.shape?.dim?.[0], { dimValue: 2 });
    const x2 = x3.subarray(0, 2 * 3 * 4 * 4);
    const [ref] = await ortRun(await ortSession(bytes), { x: { data: x2, shape: input } });
    assert.ok(maxAbsDiff(ref.data, want.subarray(0, ref.data.length)) <= 1e-5);
  });
  await t.step("an opset out of range", async () => {
    await assert.rejects(
      () => toOnnx(f, {}, [rand(input, 1)], { opset: 13 }),
      /opset must be an integer from 17 to 21, got 13/,
    );
  });
});
