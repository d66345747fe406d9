/**
 * Import of ONNX models: `fromOnnx(bytes)` reads an `.onnx` file into a pytree of parameters
 * (the initializers, by name) and a pure `apply` built from cosgrad operations, so an imported
 * model runs on every backend and is trainable (`valueAndGrad` works through `apply`).
 *
 * @module
 */
import type { DType } from "../ir/dtype.ts";
import { fmtShape } from "../ir/dtype.ts";
import type { Tensor } from "../tensor.ts";
import { tensor } from "../ops/creation.ts";
import * as E from "../ops/elementwise.ts";
import * as M from "../ops/movement.ts";
import * as R from "../ops/reduce.ts";
import { conv2d, matmul } from "../ops/linalg.ts";
import { take } from "../ops/indexing.ts";
import { l2Normalize, softmax as softmaxOp } from "../ops/functional.ts";
import { batchNorm } from "../nn/batch_norm.ts";
import { avgPool2d, maxPool2d } from "../nn/pool.ts";
import type { Pad4 } from "../ir/primitives.ts";
import {
  ATTR_TYPE,
  DATA_TYPE,
  decodeModel,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxValueInfo,
} from "./_onnx_proto.ts";
import { type HostArray, readTensor, typeName } from "./_onnx_tensor.ts";

/** A graph input or output: its name, element type and shape (a string for a dynamic axis). */
export interface OnnxValue {
  /** The value's name in the model. */
  name: string;
  /** Element type of the tensor. */
  dtype: DType;
  /** Dimensions; a dynamic axis is its name (e.g. `"batch"`) or null when unnamed. */
  shape: (number | string | null)[];
}

/** A model read by {@link fromOnnx}. */
export interface OnnxModel {
  /** The float initializers by name: weights, biases and batch-norm running statistics. */
  params: Record<string, Tensor>;
  /**
   * The model's outputs for `inputs` (in the model's input order), in the model's output order.
   * Batch normalization uses the running statistics in `params`; dropout is the identity.
   */
  apply(params: Record<string, Tensor>, ...inputs: Tensor[]): Tensor[];
  /** The graph inputs that `apply` takes (initializers excluded). */
  inputs: OnnxValue[];
  /** The graph outputs that `apply` returns. */
  outputs: OnnxValue[];
  /** Names of the params that are running statistics (batch-norm means and variances). */
  statistics: string[];
  /** The default-domain opset the model imports. */
  opset: number;
}

type Value = { tensor: Tensor; host?: undefined } | { host: HostArray; tensor?: undefined };

interface Ctx {
  where: string;
  node: OnnxNode;
  opset: number;
  args: (Value | undefined)[];
  attrs: Map<string, OnnxAttribute>;
}

interface OpRule {
  /** Attributes the rule reads; any other is refused. */
  attrs: string[];
  /** Checks attribute values when the model is read (optional). */
  check?: (ctx: Omit<Ctx, "args">) => void;
  run: (ctx: Ctx) => Value[];
}

function fail(ctx: { where: string }, message: string): never {
  throw new TypeError(`${ctx.where}: ${message}`);
}

function attrInt(ctx: { attrs: Map<string, OnnxAttribute> }, name: string, dflt: number): number {
  const a = ctx.attrs.get(name);
  return a?.i !== undefined ? Number(a.i) : dflt;
}
function attrFloat(ctx: { attrs: Map<string, OnnxAttribute> }, name: string, dflt: number) {
  const a = ctx.attrs.get(name);
  return a?.f !== undefined ? a.f : dflt;
}
function attrInts(
  ctx: { attrs: Map<string, OnnxAttribute> },
  name: string,
): number[] | undefined {
  const a = ctx.attrs.get(name);
  return a === undefined ? undefined : (a.ints ?? []).map(Number);
}
function attrString(ctx: { attrs: Map<string, OnnxAttribute> }, name: string, dflt: string) {
  const a = ctx.attrs.get(name);
  return a?.s !== undefined ? new TextDecoder().decode(a.s) : dflt;
}

function dtypeOf(dataType: number, where: string): DType {
  if (dataType === DATA_TYPE.FLOAT) return "float32";
  if (dataType === DATA_TYPE.DOUBLE) return "float64";
  if (dataType === DATA_TYPE.INT32 || dataType === DATA_TYPE.INT64) return "int32";
  if (dataType === DATA_TYPE.BOOL) return "float32";
  throw new TypeError(`${where}: element type ${typeName(dataType)} is not supported`);
}

function toTensor(v: Value, ctx: { where: string }): Tensor {
  if (v.tensor) return v.tensor;
  const h = v.host;
  const dtype = dtypeOf(h.dataType, ctx.where);
  if (dtype === "int32" && Array.from(h.values).some((x) => Math.abs(x) > 2147483647)) {
    fail(ctx, `int64 values beyond the int32 range cannot become a tensor`);
  }
  const values = dtype === "float64"
    ? Float64Array.from(h.values)
    : dtype === "int32"
    ? Int32Array.from(h.values)
    : Float32Array.from(h.values);
  return tensor(values, h.shape, { dtype });
}

function arg(ctx: Ctx, i: number): Tensor {
  const v = ctx.args[i];
  if (v === undefined) fail(ctx, `input ${i} is missing`);
  return toTensor(v, ctx);
}

function optArg(ctx: Ctx, i: number): Tensor | undefined {
  const v = ctx.args[i];
  return v === undefined ? undefined : toTensor(v, ctx);
}

/** A constant input as numbers (shapes, axes, pads): it must be known when the model runs. */
function hostArg(ctx: Ctx, i: number, what: string): number[] | undefined {
  const v = ctx.args[i];
  if (v === undefined) return undefined;
  if (v.host === undefined) {
    fail(ctx, `${what} (input ${i}) must be a constant (an initializer or a Constant node)`);
  }
  return Array.from(v.host.values);
}

function int64(values: number[], shape = [values.length]): Value {
  return { host: { dataType: DATA_TYPE.INT64, shape, values } };
}

function t(x: Tensor): Value[] {
  return [{ tensor: x }];
}

function normAxis(a: number, rank: number, ctx: { where: string }): number {
  const r = a < 0 ? a + rank : a;
  if (!Number.isInteger(r) || r < 0 || r >= rank) {
    fail(ctx, `axis ${a} is out of range for rank ${rank}`);
  }
  return r;
}

const unary = (f: (x: Tensor) => Tensor): OpRule => ({ attrs: [], run: (c) => t(f(arg(c, 0))) });
const binary = (f: (a: Tensor, b: Tensor) => Tensor): OpRule => ({
  attrs: [],
  run: (c) => t(f(arg(c, 0), arg(c, 1))),
});
const variadic = (f: (a: Tensor, b: Tensor) => Tensor): OpRule => ({
  attrs: [],
  run: (c) => {
    let acc = arg(c, 0);
    for (let i = 1; i < c.args.length; i++) acc = f(acc, arg(c, i));
    return t(acc);
  },
});

function spatialPads(c: Omit<Ctx, "args">, rank: number): number[] {
  const pads = attrInts(c, "pads") ?? new Array(2 * rank).fill(0);
  if (pads.length !== 2 * rank) {
    fail(c, `pads ${JSON.stringify(pads)} should have ${2 * rank} values`);
  }
  return pads;
}

function checkAutoPad(c: Omit<Ctx, "args">) {
  const autoPad = attrString(c, "auto_pad", "NOTSET");
  if (autoPad !== "NOTSET" && autoPad !== "VALID") {
    fail(c, `unsupported attribute auto_pad=${autoPad} (expected NOTSET or VALID; give pads)`);
  }
}

function pool(kind: "max" | "avg"): OpRule {
  return {
    attrs: [
      "kernel_shape",
      "strides",
      "pads",
      "auto_pad",
      "ceil_mode",
      "dilations",
      "storage_order",
      "count_include_pad",
    ],
    check: (c) => {
      checkAutoPad(c);
      const k = attrInts(c, "kernel_shape");
      if (k === undefined || k.length !== 2) {
        fail(c, `kernel_shape ${JSON.stringify(k)}: only 2-D pooling is supported`);
      }
      if (attrInt(c, "ceil_mode", 0) !== 0) fail(c, `unsupported attribute ceil_mode=1`);
      if ((attrInts(c, "dilations") ?? [1, 1]).some((d) => d !== 1)) {
        fail(c, `unsupported attribute dilations=${JSON.stringify(attrInts(c, "dilations"))}`);
      }
      if (attrInt(c, "storage_order", 0) !== 0) fail(c, `unsupported attribute storage_order=1`);
      const [pt, pl, pb, pr] = spatialPads(c, 2);
      if (pt !== pb || pl !== pr) {
        fail(c, `unsupported asymmetric pads ${JSON.stringify([pt, pl, pb, pr])}`);
      }
      if (kind === "avg" && (pt > 0 || pl > 0) && attrInt(c, "count_include_pad", 0) === 0) {
        fail(c, `unsupported attribute count_include_pad=0 with padding (cosgrad counts it)`);
      }
    },
    run: (c) => {
      const [kh, kw] = attrInts(c, "kernel_shape")!;
      const [sh, sw] = attrInts(c, "strides") ?? [1, 1];
      const [ph, pw] = spatialPads(c, 2);
      const options = {
        kernel: [kh, kw] as [number, number],
        stride: [sh, sw] as [number, number],
        padding: [ph, pw] as [number, number],
      };
      return t(kind === "max" ? maxPool2d(arg(c, 0), options) : avgPool2d(arg(c, 0), options));
    },
  };
}

function reduce(
  f: (x: Tensor, axes: number[], keepdims: boolean) => Tensor,
  axesInputFrom: number,
): OpRule {
  return {
    attrs: ["axes", "keepdims", "noop_with_empty_axes"],
    run: (c) => {
      const x = arg(c, 0);
      let axes = c.opset >= axesInputFrom ? hostArg(c, 1, "axes") : attrInts(c, "axes");
      if (axes === undefined || axes.length === 0) {
        if (attrInt(c, "noop_with_empty_axes", 0) === 1) return t(x);
        axes = x.shape.map((_, i) => i);
      }
      const ax = axes.map((a) => normAxis(a, x.ndim, c));
      return t(f(x, ax, attrInt(c, "keepdims", 1) === 1));
    },
  };
}

/** Shapes and indices computed on the host (PyTorch's exporter builds reshape targets so). */
function hostOrTensor(
  c: Ctx,
  host: (vals: HostArray[]) => HostArray,
  dev: () => Tensor,
): Value[] {
  if (c.args.every((a) => a === undefined || a.host !== undefined)) {
    return [{ host: host(c.args.filter((a) => a !== undefined).map((a) => a!.host!)) }];
  }
  return t(dev());
}

const RULES: Record<string, OpRule> = {
  Identity: { attrs: [], run: (c) => [c.args[0]!] },
  Dropout: {
    attrs: ["seed", "ratio", "is_test", "training_mode"],
    check: (c) => {
      if ((c.node.output ?? []).length > 1 && c.node.output![1] !== "") {
        fail(c, `the mask output of Dropout is not supported (inference only)`);
      }
    },
    run: (c) => [c.args[0]!],
  },
  Constant: {
    attrs: ["value", "value_float", "value_floats", "value_int", "value_ints"],
    check: (c) => {
      if (c.attrs.size !== 1) fail(c, `a Constant needs exactly one value attribute`);
    },
    run: (c) => {
      const [a] = [...c.attrs.values()];
      switch (a.name) {
        case "value":
          return [{ host: readTensor(a.t!, c.where) }];
        case "value_float":
          return [{ host: { dataType: DATA_TYPE.FLOAT, shape: [], values: [a.f ?? 0] } }];
        case "value_floats":
          return [{
            host: { dataType: DATA_TYPE.FLOAT, shape: [a.floats!.length], values: a.floats! },
          }];
        case "value_int":
          return [int64([Number(a.i ?? 0)], [])];
        default:
          return [int64((a.ints ?? []).map(Number))];
      }
    },
  },
  Conv: {
    attrs: ["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"],
    check: checkAutoPad,
    run: (c) => {
      const x = arg(c, 0), w = arg(c, 1), b = optArg(c, 2);
      if (x.ndim !== 4 || w.ndim !== 4) {
        fail(
          c,
          `only 2-D convolutions are supported, got input ${fmtShape(x.shape)} and weight ${
            fmtShape(w.shape)
          }`,
        );
      }
      const k = attrInts(c, "kernel_shape");
      if (k !== undefined && (k[0] !== w.shape[2] || k[1] !== w.shape[3])) {
        fail(c, `kernel_shape ${JSON.stringify(k)} differs from the weight ${fmtShape(w.shape)}`);
      }
      const [pt, pl, pb, pr] = spatialPads(c, 2);
      const padding: Pad4 = [pt, pb, pl, pr];
      const stride = (attrInts(c, "strides") ?? [1, 1]) as [number, number];
      const dilation = (attrInts(c, "dilations") ?? [1, 1]) as [number, number];
      const y = conv2d(x, w, { stride, padding, dilation, groups: attrInt(c, "group", 1) });
      return t(b === undefined ? y : E.add(y, M.reshape(b, [1, -1, 1, 1])));
    },
  },
  BatchNormalization: {
    attrs: ["epsilon", "momentum", "spatial", "training_mode", "is_test", "consumed_inputs"],
    check: (c) => {
      if (attrInt(c, "training_mode", 0) !== 0) {
        fail(c, `unsupported attribute training_mode=1 (inference batch normalization only)`);
      }
      if (attrInt(c, "spatial", 1) !== 1) fail(c, `unsupported attribute spatial=0`);
      if ((c.node.output ?? []).filter((o) => o !== "").length > 1) {
        fail(c, `the running-statistics outputs of BatchNormalization are not supported`);
      }
    },
    run: (c) => {
      const [x, weight, bias, mean, variance] = [0, 1, 2, 3, 4].map((i) => arg(c, i));
      return t(
        batchNorm({ weight, bias }, { mean, var: variance }, x, {
          training: false,
          epsilon: attrFloat(c, "epsilon", 1e-5),
        }).out,
      );
    },
  },
  PRelu: binary((x, slope) => E.where(E.greater(x, 0), x, E.mul(x, slope))),
  LeakyRelu: {
    attrs: ["alpha"],
    run: (c) => {
      const x = arg(c, 0);
      return t(E.where(E.greater(x, 0), x, E.mul(x, attrFloat(c, "alpha", 0.01))));
    },
  },
  Relu: unary(E.relu),
  Sigmoid: unary(E.sigmoid),
  Tanh: unary(E.tanh),
  Exp: unary(E.exp),
  Log: unary(E.log),
  Sqrt: unary(E.sqrt),
  Neg: unary(E.neg),
  Abs: unary(E.abs),
  Reciprocal: unary(E.reciprocal),
  Floor: unary(E.floor),
  Cos: unary(E.cos),
  Sin: unary(E.sin),
  Acos: unary(E.acos),
  Add: {
    attrs: [],
    run: (c) =>
      hostOrTensor(
        c,
        ([a, b]) => hostBinary(a, b, (x, y) => x + y, c),
        () => E.add(arg(c, 0), arg(c, 1)),
      ),
  },
  Sub: {
    attrs: [],
    run: (c) =>
      hostOrTensor(
        c,
        ([a, b]) => hostBinary(a, b, (x, y) => x - y, c),
        () => E.sub(arg(c, 0), arg(c, 1)),
      ),
  },
  Mul: {
    attrs: [],
    run: (c) =>
      hostOrTensor(
        c,
        ([a, b]) => hostBinary(a, b, (x, y) => x * y, c),
        () => E.mul(arg(c, 0), arg(c, 1)),
      ),
  },
  Div: {
    attrs: [],
    run: (c) =>
      hostOrTensor(
        c,
        ([a, b]) =>
          hostBinary(a, b, (x, y) => a.dataType === DATA_TYPE.INT64 ? Math.trunc(x / y) : x / y, c),
        () => E.div(arg(c, 0), arg(c, 1)),
      ),
  },
  Pow: binary(E.pow),
  Max: variadic(E.maximum),
  Min: variadic(E.minimum),
  Sum: variadic(E.add),
  Clip: {
    attrs: ["min", "max"],
    run: (c) => {
      let y = arg(c, 0);
      if (c.opset >= 11) {
        // min and max are inputs: initializers (tensors here) or constants.
        const lo = optArg(c, 1), hi = optArg(c, 2);
        if (lo !== undefined) y = E.maximum(y, lo);
        if (hi !== undefined) y = E.minimum(y, hi);
        return t(y);
      }
      const lo = attrFloat(c, "min", -Infinity), hi = attrFloat(c, "max", Infinity);
      if (lo > -Infinity) y = E.maximum(y, lo);
      if (hi < Infinity) y = E.minimum(y, hi);
      return t(y);
    },
  },
  Softmax: {
    attrs: ["axis"],
    run: (c) => {
      const x = arg(c, 0);
      const axis = normAxis(attrInt(c, "axis", c.opset >= 13 ? -1 : 1), x.ndim, c);
      if (c.opset >= 13 || axis === x.ndim - 1) return t(softmaxOp(x, axis));
      // Before opset 13 Softmax works on the input flattened to 2-D at `axis`.
      const flat = M.reshape(x, [x.shape.slice(0, axis).reduce((a, b) => a * b, 1), -1]);
      return t(M.reshape(softmaxOp(flat, 1), x.shape));
    },
  },
  LpNormalization: {
    attrs: ["axis", "p"],
    check: (c) => {
      if (attrInt(c, "p", 2) !== 2) {
        fail(c, `unsupported attribute p=${attrInt(c, "p", 2)} (p=2 only)`);
      }
    },
    run: (c) => {
      const x = arg(c, 0);
      return t(l2Normalize(x, { axis: normAxis(attrInt(c, "axis", -1), x.ndim, c) }));
    },
  },
  MatMul: binary(matmul),
  Gemm: {
    attrs: ["alpha", "beta", "transA", "transB", "broadcast"],
    run: (c) => {
      let a = arg(c, 0), b = arg(c, 1);
      if (attrInt(c, "transA", 0)) a = M.transpose(a);
      if (attrInt(c, "transB", 0)) b = M.transpose(b);
      let y = matmul(a, b);
      const alpha = attrFloat(c, "alpha", 1), beta = attrFloat(c, "beta", 1);
      if (alpha !== 1) y = E.mul(y, alpha);
      const bias = optArg(c, 2);
      if (bias !== undefined && beta !== 0) y = E.add(y, beta === 1 ? bias : E.mul(bias, beta));
      return t(y);
    },
  },
  Flatten: {
    attrs: ["axis"],
    run: (c) => {
      const x = arg(c, 0);
      const axis = attrInt(c, "axis", 1);
      const at = axis < 0 ? axis + x.ndim : axis;
      const lead = x.shape.slice(0, at).reduce((p, d) => p * d, 1);
      return t(M.reshape(x, [lead, -1]));
    },
  },
  Reshape: {
    attrs: ["allowzero", "shape"],
    run: (c) => {
      const x = arg(c, 0);
      const target = c.opset >= 5 ? hostArg(c, 1, "shape") : attrInts(c, "shape");
      if (target === undefined) fail(c, `Reshape needs a shape`);
      const zero = attrInt(c, "allowzero", 0) === 1;
      const shape = target.map((d, i) => (d === 0 && !zero ? x.shape[i] : d));
      return t(M.reshape(x, shape));
    },
  },
  Transpose: {
    attrs: ["perm"],
    run: (c) => {
      const x = arg(c, 0);
      return t(M.transpose(x, attrInts(c, "perm")));
    },
  },
  Concat: {
    attrs: ["axis"],
    run: (c) =>
      hostOrTensor(
        c,
        (hs) => ({
          dataType: hs[0].dataType,
          shape: [hs.reduce((n, h) => n + h.values.length, 0)],
          values: hs.flatMap((h) => Array.from(h.values)),
        }),
        () => {
          const xs = c.args.filter((a) => a !== undefined).map((a) => toTensor(a!, c));
          return M.concat(xs, normAxis(attrInt(c, "axis", 0), xs[0].ndim, c));
        },
      ),
  },
  GlobalAveragePool: {
    attrs: [],
    run: (c) => {
      const x = arg(c, 0);
      return t(R.mean(x, x.shape.map((_, i) => i).slice(2), { keepdims: true }));
    },
  },
  GlobalMaxPool: {
    attrs: [],
    run: (c) => {
      const x = arg(c, 0);
      return t(R.max(x, x.shape.map((_, i) => i).slice(2), { keepdims: true }));
    },
  },
  MaxPool: pool("max"),
  AveragePool: pool("avg"),
  ReduceMean: reduce((x, a, k) => R.mean(x, a, { keepdims: k }), 18),
  ReduceSum: reduce((x, a, k) => R.sum(x, a, { keepdims: k }), 13),
  ReduceMax: reduce((x, a, k) => R.max(x, a, { keepdims: k }), 18),
  ReduceMin: reduce((x, a, k) => R.min(x, a, { keepdims: k }), 18),
  Shape: {
    attrs: ["start", "end"],
    run: (c) => {
      const v = c.args[0]!;
      const shape = v.tensor ? v.tensor.shape : v.host!.shape;
      const r = shape.length;
      const s = attrInt(c, "start", 0), e = attrInt(c, "end", r);
      return [int64(shape.slice(s < 0 ? s + r : s, e < 0 ? e + r : e))];
    },
  },
  Gather: {
    attrs: ["axis"],
    run: (c) => {
      const axis = attrInt(c, "axis", 0);
      const idx = hostArg(c, 1, "indices")!;
      const iv = c.args[1]!.host!;
      const v = c.args[0]!;
      if (v.host && v.host.shape.length <= 1 && axis === 0) {
        const n = v.host.values.length;
        const vals = idx.map((i) => v.host!.values[i < 0 ? i + n : i]);
        return [{ host: { dataType: v.host.dataType, shape: iv.shape, values: vals } }];
      }
      const x = toTensor(v, c);
      const ax = normAxis(axis, x.ndim, c);
      const flat = Int32Array.from(idx, (i) => (i < 0 ? i + x.shape[ax] : i));
      const g = take(x, tensor(flat, [flat.length], { dtype: "int32" }), ax);
      const shape = [...x.shape.slice(0, ax), ...iv.shape, ...x.shape.slice(ax + 1)];
      return t(M.reshape(g, shape));
    },
  },
  Unsqueeze: {
    attrs: ["axes"],
    run: (c) => {
      const axes = c.opset >= 13 ? hostArg(c, 1, "axes")! : attrInts(c, "axes")!;
      const v = c.args[0]!;
      const inShape = v.tensor ? v.tensor.shape : v.host!.shape;
      const rank = inShape.length + axes.length;
      const ax = axes.map((a) => normAxis(a, rank, c));
      const shape: number[] = [];
      let k = 0;
      for (let i = 0; i < rank; i++) shape.push(ax.includes(i) ? 1 : inShape[k++]);
      if (v.host) return [{ host: { ...v.host, shape } }];
      return t(M.reshape(v.tensor!, shape));
    },
  },
  Squeeze: {
    attrs: ["axes"],
    run: (c) => {
      const axes = c.opset >= 13 ? hostArg(c, 1, "axes") : attrInts(c, "axes");
      const v = c.args[0]!;
      const inShape = v.tensor ? v.tensor.shape : v.host!.shape;
      const ax = axes === undefined
        ? inShape.flatMap((d, i) => (d === 1 ? [i] : []))
        : axes.map((a) => normAxis(a, inShape.length, c));
      const shape = inShape.filter((_, i) => !ax.includes(i));
      if (v.host) return [{ host: { ...v.host, shape } }];
      return t(M.reshape(v.tensor!, shape));
    },
  },
  Cast: {
    attrs: ["to", "saturate"],
    run: (c) => {
      const to = attrInt(c, "to", 0);
      const v = c.args[0]!;
      if (v.host) return [{ host: { ...v.host, dataType: to, values: Array.from(v.host.values) } }];
      return t(E.cast(v.tensor!, dtypeOf(to, c.where)));
    },
  },
  Slice: {
    attrs: [],
    run: (c) => {
      const x = arg(c, 0);
      const starts = hostArg(c, 1, "starts")!, ends = hostArg(c, 2, "ends")!;
      const axes = hostArg(c, 3, "axes") ?? starts.map((_, i) => i);
      const steps = hostArg(c, 4, "steps") ?? starts.map(() => 1);
      if (steps.some((s) => s !== 1)) {
        fail(c, `Slice steps ${JSON.stringify(steps)}: only 1 is supported`);
      }
      const s = x.shape.map(() => 0), e = [...x.shape];
      axes.forEach((a, i) => {
        const ax = normAxis(a, x.ndim, c);
        s[ax] = Math.max(-x.shape[ax], Math.min(starts[i], x.shape[ax]));
        e[ax] = Math.max(-x.shape[ax], Math.min(ends[i], x.shape[ax]));
      });
      return t(M.slice(x, s, e));
    },
  },
  Pad: {
    attrs: ["mode", "pads", "value"],
    check: (c) => {
      const mode = attrString(c, "mode", "constant");
      if (mode !== "constant") fail(c, `unsupported attribute mode=${mode} (constant only)`);
    },
    run: (c) => {
      const x = arg(c, 0);
      const pads = c.opset >= 11 ? hostArg(c, 1, "pads")! : attrInts(c, "pads")!;
      const value = c.opset >= 11
        ? hostArg(c, 2, "constant_value")?.[0] ?? 0
        : attrFloat(c, "value", 0);
      if (value !== 0) fail(c, `Pad with constant_value ${value}: only zero padding is supported`);
      const r = x.ndim;
      return t(M.pad(x, x.shape.map((_, i) => [pads[i], pads[i + r]] as [number, number])));
    },
  },
};

function hostBinary(
  a: HostArray,
  b: HostArray,
  f: (x: number, y: number) => number,
  c: { where: string },
): HostArray {
  const n = Math.max(a.values.length, b.values.length);
  if (
    a.values.length !== n && a.values.length !== 1 || b.values.length !== n && b.values.length !== 1
  ) {
    fail(c, `constant operands of shapes [${a.shape}] and [${b.shape}] do not broadcast`);
  }
  const at = (h: HostArray, i: number) => h.values[h.values.length === 1 ? 0 : i];
  return {
    dataType: a.dataType,
    shape: a.values.length === n ? a.shape : b.shape,
    values: Array.from({ length: n }, (_, i) => f(at(a, i), at(b, i))),
  };
}

function valueOf(info: OnnxValueInfo, where: string): OnnxValue {
  const tt = info.type?.tensorType;
  if (tt === undefined) throw new TypeError(`${where}: "${info.name}" is not a tensor`);
  return {
    name: info.name,
    dtype: dtypeOf(tt.elemType ?? 0, `${where}: "${info.name}"`),
    shape: (tt.shape?.dim ?? []).map((d) =>
      d.dimValue !== undefined ? Number(d.dimValue) : d.dimParam ?? null
    ),
  };
}

/**
 * Reads an ONNX model: its float initializers become `params` and its graph a pure function
 * over cosgrad operations (Conv, BatchNormalization, PRelu, Relu, Gemm, MatMul, pooling,
 * Reshape, Flatten, Transpose, Concat, the elementwise operators and more). An operator or
 * attribute value it does not support is an error naming it and the node.
 *
 * @example
 * ```ts
 * import { fromOnnx } from "./onnx_import.ts";
 * import { ones } from "../ops/creation.ts";
 * const model = await fromOnnx(await Deno.readFile("test/fixtures/onnx/embed_public.onnx"));
 * model.inputs[0].shape; // ["batch", 3, 32, 32]
 * const [embedding] = model.apply(model.params, ones([1, 3, 32, 32]));
 * embedding.shape; // [1, 64]
 * ```
 */
export async function fromOnnx(bytes: Uint8Array): Promise<OnnxModel> {
  const model = await decodeModel(bytes);
  const g = model.graph;
  if (g === undefined) throw new TypeError(`fromOnnx: the model has no graph`);
  const opsets = model.opsetImport ?? [];
  const opset = Number(
    opsets.find((o) => (o.domain ?? "") === "" || o.domain === "ai.onnx")?.version ?? 0,
  );
  if (opset < 1) throw new TypeError(`fromOnnx: the model imports no default-domain opset`);
  if ((g.sparseInitializer?.length ?? 0) > 0) {
    throw new TypeError(`fromOnnx: sparse initializers are not supported`);
  }
  const params: Record<string, Tensor> = {};
  const hostConsts = new Map<string, HostArray>();
  for (const init of g.initializer ?? []) {
    const name = init.name ?? "";
    const h = readTensor(init, `fromOnnx: initializer "${name}"`);
    if (h.dataType === DATA_TYPE.FLOAT || h.dataType === DATA_TYPE.DOUBLE) {
      params[name] = toTensor({ host: h }, { where: `fromOnnx: initializer "${name}"` });
    } else {
      hostConsts.set(name, h);
    }
  }
  const nodes = (g.node ?? []).map((node, k) => {
    const where = `fromOnnx: node ${k} "${node.name ?? ""}" (${node.opType})`;
    if ((node.domain ?? "") !== "" && node.domain !== "ai.onnx") {
      throw new TypeError(`${where}: operator domain "${node.domain}" is not supported`);
    }
    const rule = RULES[node.opType];
    if (rule === undefined) {
      throw new TypeError(
        `${where}: unsupported operator ${node.opType}; supported: ${
          Object.keys(RULES).sort().join(", ")
        }`,
      );
    }
    const attrs = new Map((node.attribute ?? []).map((a) => [a.name, a]));
    for (const a of attrs.values()) {
      if (!rule.attrs.includes(a.name)) {
        throw new TypeError(`${where}: unsupported attribute ${a.name}`);
      }
      if (a.type === ATTR_TYPE.GRAPH || a.type === ATTR_TYPE.GRAPHS || a.refAttrName) {
        throw new TypeError(
          `${where}: attribute ${a.name} holds a subgraph, which is not supported`,
        );
      }
    }
    const ctx = { where, node, opset, attrs };
    rule.check?.(ctx);
    return { ...ctx, rule };
  });
  const inputs = (g.input ?? []).filter((i) => !(i.name in params) && !hostConsts.has(i.name))
    .map((i) => valueOf(i, "fromOnnx: graph input"));
  const outputs = (g.output ?? []).map((o) => valueOf(o, "fromOnnx: graph output"));
  const statistics = new Set<string>();
  for (const n of nodes) {
    if (n.node.opType === "BatchNormalization") {
      for (const i of [3, 4]) {
        const name = n.node.input?.[i];
        if (name !== undefined && name in params) statistics.add(name);
      }
    }
  }
  const apply = (p: Record<string, Tensor>, ...xs: Tensor[]): Tensor[] => {
    if (xs.length !== inputs.length) {
      throw new RangeError(
        `apply: the model takes ${inputs.length} inputs (${
          inputs.map((i) => i.name).join(", ")
        }), got ${xs.length}`,
      );
    }
    const env = new Map<string, Value>();
    for (const [name, h] of hostConsts) env.set(name, { host: h });
    for (const [name, v] of Object.entries(p)) env.set(name, { tensor: v });
    inputs.forEach((info, i) => {
      const x = xs[i];
      const bad = info.shape.length !== x.ndim ||
        info.shape.some((d, k) => typeof d === "number" && d !== x.shape[k]);
      if (bad) {
        throw new RangeError(
          `apply: input "${info.name}" should have shape [${
            info.shape.map((d) => d ?? "?")
          }], got ${fmtShape(x.shape)}`,
        );
      }
      env.set(info.name, { tensor: x });
    });
    for (const n of nodes) {
      const args = (n.node.input ?? []).map((name) => {
        if (name === "") return undefined;
        const v = env.get(name);
        if (v === undefined) throw new TypeError(`${n.where}: input "${name}" is not defined`);
        return v;
      });
      let outs: Value[];
      try {
        outs = n.rule.run({ ...n, args });
      } catch (e) {
        // Shape errors of the cosgrad ops name the op; say which node of the model it was.
        if (!(e instanceof Error) || e.message.startsWith(n.where)) throw e;
        const Kind = e instanceof RangeError ? RangeError : TypeError;
        throw new Kind(`${n.where}: ${e.message}`, { cause: e });
      }
      (n.node.output ?? []).forEach((name, i) => {
        if (name !== "" && outs[i] !== undefined) env.set(name, outs[i]);
      });
    }
    return outputs.map((o) => {
      const v = env.get(o.name);
      if (v === undefined) throw new TypeError(`apply: output "${o.name}" is never computed`);
      return toTensor(v, { where: `apply: output "${o.name}"` });
    });
  };
  return { params, apply, inputs, outputs, statistics: [...statistics], opset };
}

/**
 * Splits the params of an imported model into the trainable ones and the running statistics,
 * so an optimizer sees only the former: `apply({ ...trainable, ...statistics }, x)`.
 *
 * @example
 * ```ts
 * import { fromOnnx, splitStatistics } from "./onnx_import.ts";
 * const model = await fromOnnx(await Deno.readFile("test/fixtures/onnx/embed_public.onnx"));
 * const { trainable, statistics } = splitStatistics(model, model.params);
 * Object.keys(statistics).length; // 8: four batch norms' running means and variances
 * "8.weight" in trainable; // true
 * ```
 */
export function splitStatistics(
  model: Pick<OnnxModel, "statistics">,
  params: Record<string, Tensor>,
): { trainable: Record<string, Tensor>; statistics: Record<string, Tensor> } {
  const trainable: Record<string, Tensor> = {}, statistics: Record<string, Tensor> = {};
  const stats = new Set(model.statistics);
  for (const [k, v] of Object.entries(params)) (stats.has(k) ? statistics : trainable)[k] = v;
  return { trainable, statistics };
}
