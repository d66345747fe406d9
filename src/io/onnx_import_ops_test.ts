// fromOnnx() on hand-built graphs of the operators insightface's models use (and the cheap
// others), each checked against ONNX Runtime on the same bytes, on cpu and webgpu.
import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import { cpuBackend, withBackendAsync } from "../backend/registry.ts";
import { gpu } from "../backend/webgpu/_gpu_test_util.ts";
import {
  ATTR_TYPE,
  DATA_TYPE,
  encodeModel,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxTensor,
} from "./_onnx_proto.ts";
import { writeTensor } from "./_onnx_tensor.ts";
import { maxAbsDiff, ortRun, ortSession } from "./_onnx_ort.ts";
import { fromOnnx } from "./onnx_import.ts";

const ints = (name: string, v: number[]): OnnxAttribute => ({
  name,
  type: ATTR_TYPE.INTS,
  ints: v,
});
const int = (name: string, v: number): OnnxAttribute => ({ name, type: ATTR_TYPE.INT, i: v });
const flt = (name: string, v: number): OnnxAttribute => ({ name, type: ATTR_TYPE.FLOAT, f: v });
const node = (
  opType: string,
  input: string[],
  output: string[],
  attribute: OnnxAttribute[] = [],
): OnnxNode => ({
  opType,
  input,
  output,
  name: `${opType}_${output[0]}`,
  attribute,
});

function wave(n: number, k: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.sin(i * k + 0.3) * 0.8);
}

interface Graph {
  name: string;
  input: number[];
  nodes: OnnxNode[];
  inits: OnnxTensor[];
  opset?: number;
}

const GRAPHS: Graph[] = [
  {
    name: "MaxPool, Relu, GlobalAveragePool, Flatten, MatMul, Sub, Mul, Dropout, Identity",
    input: [2, 3, 7, 7],
    nodes: [
      node("MaxPool", ["x"], ["a"], [
        ints("kernel_shape", [3, 3]),
        ints("strides", [2, 2]),
        ints("pads", [1, 1, 1, 1]),
      ]),
      node("Relu", ["a"], ["b"]),
      node("GlobalAveragePool", ["b"], ["c"]),
      node("Flatten", ["c"], ["d"], [int("axis", 1)]),
      node("MatMul", ["d", "w"], ["e"]),
      node("Sub", ["e", "k"], ["f"]),
      node("Mul", ["f", "k"], ["g"]),
      node("Dropout", ["g"], ["h"]),
      node("Identity", ["h"], ["y"]),
    ],
    inits: [
      writeTensor("w", DATA_TYPE.FLOAT, [3, 4], wave(12, 1.1)),
      writeTensor("k", DATA_TYPE.FLOAT, [4], [0.5, -1, 2, 0.25]),
    ],
  },
  {
    name: "Transpose, Constant, Concat, Reshape, Softmax, Sigmoid, Tanh, LeakyRelu, Clip",
    input: [2, 6],
    nodes: [
      node("Transpose", ["x"], ["t"], [ints("perm", [1, 0])]),
      node("Constant", [], ["c"], [{
        name: "value",
        type: ATTR_TYPE.TENSOR,
        t: writeTensor("", DATA_TYPE.FLOAT, [6, 2], wave(12, 0.7)),
      }]),
      node("Concat", ["t", "c"], ["u"], [int("axis", 1)]),
      node("Reshape", ["u", "shape"], ["v"]),
      node("Softmax", ["v"], ["s"], [int("axis", -1)]),
      node("Sigmoid", ["v"], ["g"]),
      node("Tanh", ["g"], ["h"]),
      node("LeakyRelu", ["v"], ["l"], [flt("alpha", 0.1)]),
      node("Add", ["s", "h"], ["m"]),
      node("Add", ["m", "l"], ["n"]),
      node("Clip", ["n", "lo", "hi"], ["y"]),
    ],
    inits: [
      writeTensor("shape", DATA_TYPE.INT64, [2], [3, -1]),
      writeTensor("lo", DATA_TYPE.FLOAT, [], [-0.2]),
      writeTensor("hi", DATA_TYPE.FLOAT, [], [1.1]),
    ],
  },
  {
    name: "Shape, Gather, Unsqueeze, Concat, Reshape (PyTorch's dynamic flatten), Gemm",
    input: [2, 2, 3, 3],
    nodes: [
      node("Shape", ["x"], ["s"]),
      node("Gather", ["s", "zero"], ["n"], [int("axis", 0)]),
      node("Unsqueeze", ["n", "axes0"], ["n1"]),
      node("Concat", ["n1", "minus1"], ["shape"], [int("axis", 0)]),
      node("Reshape", ["x", "shape"], ["f"]),
      node("Gemm", ["f", "w", "b"], ["y"], [int("transB", 1), flt("alpha", 0.5), flt("beta", 2)]),
    ],
    inits: [
      writeTensor("zero", DATA_TYPE.INT64, [], [0]),
      writeTensor("axes0", DATA_TYPE.INT64, [1], [0]),
      writeTensor("minus1", DATA_TYPE.INT64, [1], [-1]),
      writeTensor("w", DATA_TYPE.FLOAT, [5, 18], wave(90, 0.37)),
      writeTensor("b", DATA_TYPE.FLOAT, [5], wave(5, 2.1)),
    ],
  },
  {
    name: "AveragePool, Pad, Slice, ReduceMean, Squeeze, Div, Sqrt, Abs, Max",
    input: [2, 2, 6, 6],
    nodes: [
      node("AveragePool", ["x"], ["a"], [ints("kernel_shape", [2, 2]), ints("strides", [2, 2])]),
      node("Pad", ["a", "pads"], ["p"]),
      node("Slice", ["p", "starts", "ends", "axes"], ["s"]),
      node("ReduceMean", ["s"], ["r"], [ints("axes", [3]), int("keepdims", 1)]),
      node("Squeeze", ["r", "sq"], ["q"]),
      node("Abs", ["q"], ["q1"]),
      node("Sqrt", ["q1"], ["q2"]),
      node("Max", ["q2", "q"], ["q3"]),
      node("Div", ["q3", "two"], ["y"]),
    ],
    inits: [
      writeTensor("pads", DATA_TYPE.INT64, [8], [0, 0, 1, 0, 0, 0, 0, 1]),
      writeTensor("starts", DATA_TYPE.INT64, [2], [1, 0]),
      writeTensor("ends", DATA_TYPE.INT64, [2], [4, 3]),
      writeTensor("axes", DATA_TYPE.INT64, [2], [2, 3]),
      writeTensor("sq", DATA_TYPE.INT64, [1], [3]),
      writeTensor("two", DATA_TYPE.FLOAT, [], [2]),
    ],
  },
];

function model(g: Graph): Promise<Uint8Array> {
  const dims = (shape: (number | string)[]) =>
    shape.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d }));
  return encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: "", version: g.opset ?? 17 }],
    graph: {
      name: g.name,
      node: g.nodes,
      initializer: g.inits,
      input: [{
        name: "x",
        type: { tensorType: { elemType: 1, shape: { dim: dims(["batch", ...g.input.slice(1)]) } } },
      }],
      output: [{ name: "y", type: { tensorType: { elemType: 1 } } }],
    },
  });
}

Deno.test("fromOnnx() operators match ONNX Runtime on cpu and webgpu", async (t) => {
  for (const g of GRAPHS) {
    await t.step(g.name, async () => {
      const bytes = await model(g);
      const n = g.input.reduce((a, b) => a * b, 1);
      const x = Float32Array.from(wave(n, 0.91));
      const [ref] = await ortRun(await ortSession(bytes), { x: { data: x, shape: g.input } });
      for (const backend of [cpuBackend(), gpu]) {
        if (backend === null) continue;
        await withBackendAsync(backend, async () => {
          const m = await fromOnnx(bytes);
          const [y] = m.apply(m.params, cg.tensor(x, g.input));
          assert.deepEqual(y.shape, ref.shape);
          const d = maxAbsDiff(await y.data(), ref.data);
          assert.ok(d <= 1e-5, `${backend.name}: largest difference ${d}`);
        });
      }
    });
  }
});
