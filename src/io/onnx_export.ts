/**
 * Export to ONNX: `toOnnx(f, params, exampleInputs)` traces a pure function and writes it as an
 * ONNX model (opset 17 by default): parameters become initializers named by their pytree path,
 * the batch axis is dynamic, and primitive patterns fold back into ONNX's fused operators where
 * ONNX has one (Conv with bias, Gemm, BatchNormalization, PRelu, Relu, LeakyRelu, ReduceMean,
 * GlobalAveragePool, and MaxPool / AveragePool where the stride is the window).
 *
 * @module
 */
import { fmtShape } from "../ir/dtype.ts";
import { makeNode, type Node, topoSort } from "../ir/node.ts";
import type { PrimParams } from "../ir/primitives.ts";
import { Tensor } from "../tensor.ts";
import { flatten, type TreeDef, unflatten } from "../tree/pytree.ts";
import {
  ATTR_TYPE,
  DATA_TYPE,
  encodeModel,
  type OnnxAttribute,
  type OnnxNode,
  type OnnxTensor,
  type OnnxValueInfo,
} from "./_onnx_proto.ts";
import { onnxType, writeTensor } from "./_onnx_tensor.ts";

/** Options of {@link toOnnx}. */
export interface ToOnnxOptions {
  /** Names of the graph inputs (default `input`, or `input0`, `input1`, ... for several). */
  inputNames?: string[];
  /** Names of the graph outputs (default `output`, or `output0`, ... for several). */
  outputNames?: string[];
  /** Axis 0 of every input is a dynamic `batch` axis (default true). */
  dynamicBatch?: boolean;
  /** The default-domain opset, 17 to 21 (default 17). */
  opset?: number;
  /** The graph's name (default `cosgrad`). */
  graphName?: string;
}

const BIG = 2 ** 62;

function pathNames(def: TreeDef, prefix: string, out: string[]): void {
  switch (def.kind) {
    case "leaf":
      out.push(prefix === "" ? "param" : prefix);
      return;
    case "static":
      return;
    case "array":
      def.children.forEach((c, i) => pathNames(c, prefix === "" ? `${i}` : `${prefix}.${i}`, out));
      return;
    case "object":
      def.keys.forEach((k, i) =>
        pathNames(def.children[i], prefix === "" ? k : `${prefix}.${k}`, out)
      );
  }
}

interface Trace {
  paramVars: Node[];
  inputVars: Node[];
  outputs: Node[];
}

let traceCount = 0;

function trace<P>(
  f: (params: P, ...inputs: Tensor[]) => unknown,
  leaves: Tensor[],
  def: TreeDef,
  inputs: { shape: number[]; dtype: Tensor["dtype"] }[],
): Trace {
  const tag = traceCount++;
  const paramVars = leaves.map((l, i) =>
    makeNode("var", [], { id: `onnx${tag}p${i}`, shape: l.shape, dtype: l.dtype })
  );
  const inputVars = inputs.map((x, i) =>
    makeNode("var", [], { id: `onnx${tag}x${i}`, shape: x.shape, dtype: x.dtype })
  );
  const result = f(
    unflatten<P>(def, paramVars.map((v) => new Tensor(v))),
    ...inputVars.map((v) => new Tensor(v)),
  );
  const outputs = flatten(result).leaves.map((t) => t.node);
  if (outputs.length === 0) throw new TypeError(`toOnnx: the function returned no tensor`);
  return { paramVars, inputVars, outputs };
}

/** Per node of the first trace, the axes whose size follows the batch size. */
function batchAxes(a: Trace, b: Trace): Map<Node, Set<number>> {
  const oa = topoSort(a.outputs), ob = topoSort(b.outputs);
  const mismatch = () =>
    new RangeError(
      `toOnnx: the function builds a different graph at another batch size, so its batch axis ` +
        `cannot be dynamic; export with dynamicBatch: false`,
    );
  if (oa.length !== ob.length) throw mismatch();
  const out = new Map<Node, Set<number>>();
  for (let i = 0; i < oa.length; i++) {
    const x = oa[i], y = ob[i];
    if (x.op !== y.op || x.shape.length !== y.shape.length) throw mismatch();
    const axes = new Set<number>();
    x.shape.forEach((d, k) => {
      if (d !== y.shape[k]) axes.add(k);
    });
    if (x.op === "slice") {
      const px = x.params as PrimParams["slice"], py = y.params as PrimParams["slice"];
      px.start.forEach((s, k) => {
        if (s !== py.start[k]) axes.add(k);
      });
    }
    out.set(x, axes);
  }
  return out;
}

function ints(name: string, values: readonly number[]): OnnxAttribute {
  return { name, type: ATTR_TYPE.INTS, ints: [...values] };
}
function int(name: string, value: number): OnnxAttribute {
  return { name, type: ATTR_TYPE.INT, i: value };
}
function float(name: string, value: number): OnnxAttribute {
  return { name, type: ATTR_TYPE.FLOAT, f: value };
}

const UNARY_OPS: Record<string, string> = {
  neg: "Neg",
  recip: "Reciprocal",
  exp: "Exp",
  log: "Log",
  sqrt: "Sqrt",
  cos: "Cos",
  acos: "Acos",
  floor: "Floor",
  stopGradient: "Identity",
};
const BINARY_OPS: Record<string, string> = {
  add: "Add",
  sub: "Sub",
  mul: "Mul",
  div: "Div",
  max: "Max",
  pow: "Pow",
};

class Emitter {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  /** Constants computed after tracing; `collapse`: batch axes kept at size 1 (uniform there). */
  readonly pending: { name: string; node: Node; collapse: number[] }[] = [];
  readonly names = new Map<Node, string>();
  readonly boolNames = new Map<Node, string>();
  readonly preferred = new Map<Node, string>();
  readonly used = new Set<string>();
  private count = 0;

  constructor(
    readonly opset: number,
    readonly dynamic: boolean,
    readonly batch: Map<Node, Set<number>>,
    readonly varNames: Map<Node, string>,
  ) {}

  fresh(node?: Node): string {
    const want = node === undefined ? undefined : this.preferred.get(node);
    if (want !== undefined && !this.used.has(want)) {
      this.used.add(want);
      return want;
    }
    let name: string;
    do name = `v${this.count++}`; while (this.used.has(name));
    this.used.add(name);
    return name;
  }

  add(opType: string, inputs: string[], attrs: OnnxAttribute[] = [], node?: Node): string {
    const out = this.fresh(node);
    this.nodes.push({
      opType,
      input: inputs,
      output: [out],
      name: `${opType}_${this.nodes.length}`,
      attribute: attrs,
    });
    return out;
  }

  constInts(values: readonly number[]): string {
    const name = this.fresh();
    this.initializers.push(writeTensor(name, DATA_TYPE.INT64, [values.length], values));
    return name;
  }

  constFloats(values: readonly number[], like: Node): string {
    const name = this.fresh();
    this.initializers.push(writeTensor(name, onnxType(like.dtype), [values.length], values));
    return name;
  }

  axesOf(n: Node): Set<number> {
    return this.dynamic ? this.batch.get(n) ?? new Set() : new Set();
  }

  /** A shape for Reshape: the batch-dependent axis becomes -1. */
  reshapeTarget(n: Node): string {
    const axes = this.axesOf(n);
    if (axes.size > 1) {
      throw new RangeError(
        `toOnnx: reshape to ${fmtShape(n.shape)} has ${axes.size} axes that depend on the batch ` +
          `size; export with dynamicBatch: false`,
      );
    }
    return this.constInts(n.shape.map((d, i) => (axes.has(i) ? -1 : d)));
  }

  emit(n: Node): string {
    const have = this.names.get(n);
    if (have !== undefined) return have;
    const name = this.emitNew(n);
    this.names.set(n, name);
    return name;
  }

  private emitNew(n: Node): string {
    const varName = this.varNames.get(n);
    if (varName !== undefined) return varName;
    if (!n.traced) {
      if (this.axesOf(n).size > 0) {
        throw new RangeError(
          `toOnnx: a constant of shape ${fmtShape(n.shape)} (${n.op}) depends on the batch size; ` +
            `build it from the inputs, or export with dynamicBatch: false`,
        );
      }
      const name = this.fresh();
      this.pending.push({ name, node: n, collapse: [] });
      return name;
    }
    const fused = this.fuse(n);
    if (fused !== undefined) return fused;
    return this.primitive(n);
  }

  /**
   * An operand of an elementwise node. A constant whose shape follows the batch size (say a
   * mask of ones like the input) is written with size 1 on the batch axes, for ONNX to
   * broadcast; it is checked to be the same along them when it is computed.
   */
  private operand(n: Node): string {
    const axes = this.axesOf(n);
    if (n.traced || axes.size === 0) return this.emit(n);
    const have = this.names.get(n);
    if (have !== undefined) return have;
    const name = this.fresh();
    this.pending.push({ name, node: n, collapse: [...axes] });
    this.names.set(n, name);
    return name;
  }

  /** Operands of an elementwise node, with broadcasts left to ONNX's own broadcasting. */
  private operands(n: Node): string[] {
    const stripped = n.inputs.map(stripBroadcast);
    const ok = n.shape.every((d, i) =>
      stripped.some((s) => s.shape[i] === d) &&
      stripped.every((s) => s.shape[i] === d || s.shape[i] === 1)
    ) && this.batchSafe(n, stripped);
    return (ok ? stripped : n.inputs).map((x) => this.operand(x));
  }

  /** Every batch-dependent axis of `n` is carried by some operand. */
  private batchSafe(n: Node, operands: Node[]): boolean {
    for (const ax of this.axesOf(n)) {
      if (!operands.some((o) => o.traced && this.axesOf(o).has(ax))) return false;
    }
    return true;
  }

  private primitive(n: Node): string {
    const x = (i: number) => this.emit(n.inputs[i]);
    const op = n.op;
    if (op in UNARY_OPS) return this.add(UNARY_OPS[op], [x(0)], [], n);
    if (op in BINARY_OPS) return this.add(BINARY_OPS[op], this.operands(n), [], n);
    switch (op) {
      case "cast":
        return this.add("Cast", [x(0)], [int("to", onnxType(n.dtype))], n);
      case "cmplt":
      case "cmpeq":
        return this.add("Cast", [this.emitBool(n)], [int("to", onnxType(n.dtype))], n);
      case "where": {
        const [, a, b] = this.operands(n);
        return this.add("Where", [this.condition(n.inputs[0]), a, b], [], n);
      }
      case "sum": {
        const axes = (n.params as PrimParams["sum"]).axes;
        if (axes.length === 0) return this.add("Identity", [x(0)], [], n);
        return this.add("ReduceSum", [x(0), this.constInts(axes)], [int("keepdims", 1)], n);
      }
      case "reduceMax": {
        const axes = (n.params as PrimParams["reduceMax"]).axes;
        if (axes.length === 0) return this.add("Identity", [x(0)], [], n);
        const win = poolWindow(n.inputs[0], axes);
        if (win !== undefined) {
          const pooled = this.add("MaxPool", [this.emit(win.x)], win.attrs);
          return this.add("Reshape", [pooled, this.reshapeTarget(n)], [], n);
        }
        return this.opset >= 18
          ? this.add("ReduceMax", [x(0), this.constInts(axes)], [int("keepdims", 1)], n)
          : this.add("ReduceMax", [x(0)], [ints("axes", axes), int("keepdims", 1)], n);
      }
      case "reshape":
        return this.add("Reshape", [x(0), this.reshapeTarget(n)], [], n);
      case "permute":
        return this.add("Transpose", [x(0)], [
          ints("perm", (n.params as PrimParams["permute"]).perm),
        ], n);
      case "broadcast": {
        const src = n.inputs[0];
        const inAxes = this.axesOf(src);
        const target = n.shape.map((d, i) => {
          if (!this.axesOf(n).has(i)) return d;
          if (inAxes.has(i)) return 1;
          throw new RangeError(
            `toOnnx: broadcast of ${fmtShape(src.shape)} to the batch axis of ${
              fmtShape(n.shape)
            } cannot be dynamic; export with dynamicBatch: false`,
          );
        });
        return this.add("Expand", [x(0), this.constInts(target)], [], n);
      }
      case "slice": {
        const p = n.params as PrimParams["slice"];
        const src = n.inputs[0];
        const axes: number[] = [], starts: number[] = [], ends: number[] = [];
        p.start.forEach((s, i) => {
          const e = p.end[i];
          if (s === 0 && e === src.shape[i]) return;
          if (this.axesOf(src).has(i) || this.axesOf(n).has(i)) {
            throw new RangeError(
              `toOnnx: a slice [${s}:${e}] of the batch axis cannot be dynamic; export with ` +
                `dynamicBatch: false`,
            );
          }
          axes.push(i);
          starts.push(s);
          ends.push(e);
        });
        if (axes.length === 0) return this.add("Identity", [x(0)], [], n);
        return this.add(
          "Slice",
          [x(0), this.constInts(starts), this.constInts(ends), this.constInts(axes)],
          [],
          n,
        );
      }
      case "pad": {
        const p = n.params as PrimParams["pad"];
        return this.add("Pad", [x(0), this.constInts([...p.lo, ...p.hi])], [], n);
      }
      case "concat":
        return this.add(
          "Concat",
          n.inputs.map((_, i) => x(i)),
          [int("axis", (n.params as PrimParams["concat"]).axis)],
          n,
        );
      case "flip": {
        const axes = (n.params as PrimParams["flip"]).axes;
        if (axes.length === 0) return this.add("Identity", [x(0)], [], n);
        return this.add(
          "Slice",
          [
            x(0),
            this.constInts(axes.map(() => -1)),
            this.constInts(axes.map(() => -BIG)),
            this.constInts(axes),
            this.constInts(axes.map(() => -1)),
          ],
          [],
          n,
        );
      }
      case "matmul":
        return this.add("MatMul", [x(0), x(1)], [], n);
      case "conv2d":
        return this.conv(n, []);
      case "gather":
        return this.add("GatherElements", [x(0), x(1)], [
          int("axis", (n.params as PrimParams["gather"]).axis),
        ], n);
      default:
        throw new TypeError(
          `toOnnx: primitive "${op}" (shape ${
            fmtShape(n.shape)
          }) has no ONNX export; export an inference function (no gradients, scatters or iota ` +
            `of traced sizes)`,
        );
    }
  }

  private conv(n: Node, bias: string[], out: Node = n): string {
    const p = n.params as PrimParams["conv2d"];
    const w = n.inputs[1];
    const [t, b, l, r] = p.padding;
    return this.add("Conv", [this.emit(n.inputs[0]), this.emit(w), ...bias], [
      ints("kernel_shape", [w.shape[2], w.shape[3]]),
      ints("strides", p.stride),
      ints("pads", [t, l, b, r]),
      ints("dilations", p.dilation),
      int("group", p.groups),
    ], out);
  }

  /** A comparison as an ONNX bool tensor. */
  private emitBool(n: Node): string {
    const have = this.boolNames.get(n);
    if (have !== undefined) return have;
    const name = this.add(n.op === "cmplt" ? "Less" : "Equal", this.operands(n));
    this.boolNames.set(n, name);
    return name;
  }

  private condition(c: Node): string {
    const s = stripBroadcast(c);
    if (s.traced && (s.op === "cmplt" || s.op === "cmpeq") && sameShape(s, c)) {
      return this.emitBool(s);
    }
    return this.add("Cast", [this.operand(c)], [int("to", DATA_TYPE.BOOL)]);
  }

  /** A per-channel vector `[1, C, 1, ...]` (after broadcasts), or undefined. */
  private channelNode(n: Node, c: number, rank: number): Node | undefined {
    const s = stripBroadcast(n);
    if (s.shape.length !== rank || s.shape.some((d, i) => d !== (i === 1 ? c : 1))) {
      return undefined;
    }
    return this.axesOf(s).size > 0 ? undefined : s;
  }

  /** A node found by {@link channelNode} as a 1-D `[C]` value. */
  private channel(s: Node, c: number): string {
    if (s.op === "reshape" && s.inputs[0].shape.length === 1) return this.emit(s.inputs[0]);
    return this.add("Reshape", [this.emit(s), this.constInts([c])]);
  }

  private fuse(n: Node): string | undefined {
    if (n.op === "add") {
      return this.batchNorm(n) ?? this.convBias(n) ?? this.gemm(n);
    }
    if (n.op === "mul") return this.batchNorm(n) ?? this.reduceMean(n);
    if (n.op === "where") return this.relu(n);
    return undefined;
  }

  /** `(x - mean) * rsqrt(var + eps) * weight + bias` of batch normalization (running stats). */
  private batchNorm(root: Node): string | undefined {
    let bias: Node | undefined, inner = root;
    if (root.op === "add") {
      const [a, b] = root.inputs;
      if (b.op === "broadcast" && a.op === "mul") [inner, bias] = [a, b];
      else if (a.op === "broadcast" && b.op === "mul") [inner, bias] = [b, a];
      else return undefined;
    }
    let weight: Node | undefined;
    let parts = matchNormCore(inner);
    if (parts === undefined && inner.op === "mul" && inner.inputs[1].op === "broadcast") {
      weight = inner.inputs[1];
      parts = matchNormCore(inner.inputs[0]);
    }
    if (parts === undefined) return undefined;
    const { x, mean, variance, eps } = parts;
    const rank = x.shape.length, c = x.shape[1];
    if (rank < 2 || !sameShape(x, root)) return undefined;
    const found = [mean, variance, weight, bias].map((v) =>
      v === undefined ? null : this.channelNode(v, c, rank)
    );
    if (found.some((v) => v === undefined)) return undefined;
    const [m, v, w, b] = found.map((k) => (k ? this.channel(k, c) : null));
    return this.add(
      "BatchNormalization",
      [
        this.emit(x),
        w ?? this.constFloats(new Array(c).fill(1), x),
        b ?? this.constFloats(new Array(c).fill(0), x),
        m!,
        v!,
      ],
      [float("epsilon", eps)],
      root,
    );
  }

  private convBias(n: Node): string | undefined {
    const [a, b] = n.inputs;
    const [conv, bias] = a.op === "conv2d" ? [a, b] : b.op === "conv2d" ? [b, a] : [];
    if (conv === undefined || bias === undefined || !sameShape(conv, n)) return undefined;
    const s = this.channelNode(bias, conv.shape[1], 4);
    return s === undefined ? undefined : this.conv(conv, [this.channel(s, conv.shape[1])], n);
  }

  private gemm(n: Node): string | undefined {
    const [a, b] = n.inputs;
    const [mm, bias] = a.op === "matmul" ? [a, b] : b.op === "matmul" ? [b, a] : [];
    if (mm === undefined || bias === undefined || mm.shape.length !== 2) return undefined;
    const s = stripBroadcast(bias);
    if (s.shape.length !== 2 || s.shape[0] !== 1 || this.axesOf(s).size > 0) return undefined;
    const c = s.op === "reshape" && s.inputs[0].shape.length === 1 ? s.inputs[0] : s;
    return this.add(
      "Gemm",
      [this.emit(mm.inputs[0]), this.emit(mm.inputs[1]), this.emit(c)],
      [],
      n,
    );
  }

  /** `sum(x, axes) * (1 / n)`: ReduceMean, or GlobalAveragePool over all spatial axes. */
  private reduceMean(n: Node): string | undefined {
    const isSum = (v: Node) =>
      v.op === "sum" || (v.op === "reshape" && v.inputs[0].op === "sum" &&
        dropsReduced(v.inputs[0], v));
    const [a, b] = n.inputs;
    const [top, k] = isSum(a) ? [a, b] : isSum(b) ? [b, a] : [];
    if (top === undefined || k === undefined) return undefined;
    const s = top.op === "sum" ? top : top.inputs[0];
    const keep = top === s;
    const axes = (s.params as PrimParams["sum"]).axes;
    const x = s.inputs[0];
    const count = axes.reduce((p, i) => p * x.shape[i], 1);
    const v = scalarValue(k);
    if (v === undefined || Math.abs(v * count - 1) > 1e-6 || axes.length === 0) return undefined;
    if (axes.some((i) => this.axesOf(x).has(i))) return undefined;
    const spatial = x.shape.length >= 3 && axes.length === x.shape.length - 2 &&
      axes.every((ax, i) => ax === i + 2);
    const win = poolWindow(x, axes);
    if (win !== undefined) {
      const pooled = this.add("AveragePool", [this.emit(win.x)], win.attrs, keep ? undefined : n);
      return keep ? this.add("Reshape", [pooled, this.reshapeTarget(n)], [], n) : pooled;
    }
    if (spatial) {
      if (keep) return this.add("GlobalAveragePool", [this.emit(x)], [], n);
      const pooled = this.add("GlobalAveragePool", [this.emit(x)]);
      return this.add("Reshape", [pooled, this.reshapeTarget(n)], [], n);
    }
    const keepdims = int("keepdims", keep ? 1 : 0);
    return this.opset >= 18
      ? this.add("ReduceMean", [this.emit(x), this.constInts(axes)], [keepdims], n)
      : this.add("ReduceMean", [this.emit(x)], [ints("axes", axes), keepdims], n);
  }

  /** `where(0 < x, x, 0)`: Relu; `where(0 < x, x, x * a)`: PRelu (LeakyRelu for a number). */
  private relu(n: Node): string | undefined {
    const [c, a, b] = n.inputs.map(stripBroadcast);
    if (c.op !== "cmplt" || scalarValue(c.inputs[0]) !== 0) return undefined;
    const x = stripBroadcast(c.inputs[1]);
    if (a !== x || !sameShape(x, n)) return undefined;
    if (scalarValue(b) === 0) return this.add("Relu", [this.emit(x)], [], n);
    if (b.op !== "mul") return undefined;
    const [p, q] = b.inputs.map(stripBroadcast);
    const slope = p === x ? q : q === x ? p : undefined;
    if (slope === undefined) return undefined;
    const alpha = scalarValue(slope);
    if (alpha !== undefined) {
      return this.add("LeakyRelu", [this.emit(x)], [float("alpha", alpha)], n);
    }
    if (slope.shape.length !== x.shape.length || this.axesOf(slope).size > 0) return undefined;
    return this.add("PRelu", [this.emit(x), this.emit(slope)], [], n);
  }
}

/** The values of `node` at index 0 of the `collapse` axes, checked equal along them. */
function uniformPart(values: ArrayLike<number>, node: Node, collapse: number[]): number[] {
  if (collapse.length === 0) return Array.from(values);
  const shape = node.shape;
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const out: number[] = [];
  const firstOf = (flat: number) => {
    let base = 0;
    for (let i = 0; i < shape.length; i++) {
      const idx = Math.floor(flat / strides[i]) % shape[i];
      if (!collapse.includes(i)) base += idx * strides[i];
    }
    return base;
  };
  for (let k = 0; k < values.length; k++) {
    const base = firstOf(k);
    if (!Object.is(values[k], values[base]) && values[k] !== values[base]) {
      throw new RangeError(
        `toOnnx: a constant of shape ${fmtShape(shape)} (${node.op}) changes along the batch ` +
          `axis; build it from the inputs, or export with dynamicBatch: false`,
      );
    }
    if (base === k) out.push(values[k]);
  }
  return out;
}

function stripBroadcast(n: Node): Node {
  while (n.op === "broadcast") n = n.inputs[0];
  return n;
}

/**
 * `reshape(x, [n, c, h / kh, kh, w / kw, kw])` reduced over axes 3 and 5: non-overlapping 2-D
 * pooling windows of `x` (how `maxPool2d` and `avgPool2d` pool when the stride is the window).
 */
function poolWindow(
  r: Node,
  axes: readonly number[],
): { x: Node; attrs: OnnxAttribute[] } | undefined {
  if (r.op !== "reshape" || axes.length !== 2 || axes[0] !== 3 || axes[1] !== 5) return undefined;
  const x = r.inputs[0];
  if (x.shape.length !== 4 || r.shape.length !== 6) return undefined;
  const [n, c, ho, kh, wo, kw] = r.shape;
  const ok = n === x.shape[0] && c === x.shape[1] && ho * kh === x.shape[2] &&
    wo * kw === x.shape[3];
  if (!ok) return undefined;
  return { x, attrs: [ints("kernel_shape", [kh, kw]), ints("strides", [kh, kw])] };
}

/** Whether reshape `r` of sum `s` only drops the summed (size-1) axes. */
function dropsReduced(s: Node, r: Node): boolean {
  const axes = (s.params as PrimParams["sum"]).axes;
  const kept = s.shape.filter((_, i) => !axes.includes(i));
  return kept.length === r.shape.length && kept.every((d, i) => d === r.shape[i]);
}

function sameShape(a: Node, b: Node): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
}

/** The number a node holds when it is a scalar, reshaped or broadcast. */
function scalarValue(n: Node): number | undefined {
  while (n.op === "broadcast" || n.op === "reshape") n = n.inputs[0];
  return n.op === "scalar" ? (n.params as PrimParams["scalar"]).value : undefined;
}

/** `(x - mean) * rsqrt(var + eps)`, with mean and var per channel. */
function matchNormCore(
  core: Node,
): { x: Node; mean: Node; variance: Node; eps: number } | undefined {
  if (core.op !== "mul") return undefined;
  const [d, r] = core.inputs;
  if (d.op !== "sub" || r.op !== "broadcast") return undefined;
  const rs = stripBroadcast(r);
  if (rs.op !== "recip" || rs.inputs[0].op !== "sqrt") return undefined;
  const sum = rs.inputs[0].inputs[0];
  if (sum.op !== "add") return undefined;
  const eps = scalarValue(sum.inputs[1]);
  if (eps === undefined) return undefined;
  const [x, mean] = d.inputs;
  if (mean.op !== "broadcast" || x.shape.length < 2) return undefined;
  return { x, mean, variance: sum.inputs[0], eps };
}

function valueInfo(
  name: string,
  n: Node,
  axes: Set<number>,
  batch: number,
): OnnxValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType: onnxType(n.dtype),
        shape: {
          dim: n.shape.map((d, i) =>
            !axes.has(i) ? { dimValue: d } : d === batch ? { dimParam: "batch" } : {}
          ),
        },
      },
    },
  };
}

function irVersion(opset: number): number {
  return opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
}

/**
 * Traces `f(params, ...inputs)` (an inference function: batch norm with running statistics)
 * and writes it as an ONNX model: initializers named by the pytree path of each parameter
 * (`stem.conv.weight`), named inputs and outputs, and a dynamic batch axis. Patterns of
 * primitives fold into Conv (with bias), Gemm, BatchNormalization, PRelu, Relu, LeakyRelu,
 * ReduceMean, GlobalAveragePool, and MaxPool / AveragePool where the stride is the window (padded
 * or overlapping pooling stays as Pad, Slice and ReduceMax); a primitive with no ONNX form is an
 * error naming it.
 *
 * @example
 * ```ts
 * import { toOnnx } from "./onnx_export.ts";
 * import { fromOnnx } from "./onnx_import.ts";
 * import { add, matmul, ones, relu, tensor } from "../../mod.ts";
 * const params = { w: tensor([[1, -1], [2, 0]]), b: tensor([0.5, 0]) };
 * const f = (p: typeof params, x: ReturnType<typeof ones>) => relu(add(matmul(x, p.w), p.b));
 * const bytes = await toOnnx(f, params, [ones([3, 2])], { inputNames: ["x"] });
 * const model = await fromOnnx(bytes); // Gemm + Relu, batch axis dynamic
 * await model.apply(model.params, ones([1, 2]))[0].data(); // Float32Array [3.5, 0]
 * ```
 */
export async function toOnnx<P>(
  f: (params: P, ...inputs: Tensor[]) => Tensor | readonly Tensor[],
  params: P,
  exampleInputs: readonly Tensor[],
  options: ToOnnxOptions = {},
): Promise<Uint8Array> {
  const opset = options.opset ?? 17;
  if (!Number.isInteger(opset) || opset < 17 || opset > 21) {
    throw new RangeError(`toOnnx: opset must be an integer from 17 to 21, got ${opset}`);
  }
  if (exampleInputs.length === 0) throw new RangeError(`toOnnx: give at least one example input`);
  const dynamic = options.dynamicBatch ?? true;
  const inputNames = options.inputNames ??
    (exampleInputs.length === 1 ? ["input"] : exampleInputs.map((_, i) => `input${i}`));
  if (inputNames.length !== exampleInputs.length) {
    throw new RangeError(
      `toOnnx: ${inputNames.length} input names for ${exampleInputs.length} inputs`,
    );
  }
  const { leaves, def } = flatten(params);
  const paramNames: string[] = [];
  pathNames(def, "", paramNames);
  const shapes = exampleInputs.map((x) => ({ shape: x.shape, dtype: x.dtype }));
  if (dynamic && shapes.some((s) => s.shape.length === 0)) {
    throw new RangeError(`toOnnx: a dynamic batch needs inputs of rank >= 1`);
  }
  const b1 = dynamic ? Math.max(2, shapes[0].shape[0]) : shapes[0].shape[0];
  const atBatch = (b: number) => shapes.map((s) => ({ ...s, shape: [b, ...s.shape.slice(1)] }));
  const first = trace(f, leaves, def, dynamic ? atBatch(b1) : shapes);
  const batch = dynamic
    ? batchAxes(first, trace(f, leaves, def, atBatch(2 * b1 + 1)))
    : new Map<Node, Set<number>>();
  const outputNames = options.outputNames ??
    (first.outputs.length === 1 ? ["output"] : first.outputs.map((_, i) => `output${i}`));
  if (outputNames.length !== first.outputs.length) {
    throw new RangeError(
      `toOnnx: ${outputNames.length} output names for ${first.outputs.length} outputs`,
    );
  }
  const varNames = new Map<Node, string>();
  first.paramVars.forEach((v, i) => varNames.set(v, paramNames[i]));
  first.inputVars.forEach((v, i) => varNames.set(v, inputNames[i]));
  const em = new Emitter(opset, dynamic, batch, varNames);
  for (const name of [...paramNames, ...inputNames]) em.used.add(name);
  first.outputs.forEach((o, i) => {
    if (!em.preferred.has(o)) em.preferred.set(o, outputNames[i]);
  });
  const outNames = first.outputs.map((o, i) => {
    const name = em.emit(o);
    if (name === outputNames[i]) return name;
    em.used.add(outputNames[i]);
    em.nodes.push({
      opType: "Identity",
      input: [name],
      output: [outputNames[i]],
      name: `Identity_${em.nodes.length}`,
    });
    return outputNames[i];
  });
  // Parameters the graph reads become initializers; folded constants are computed now.
  const usedNames = new Set(em.nodes.flatMap((n) => n.input ?? []));
  outNames.forEach((n) => usedNames.add(n));
  const inits: OnnxTensor[] = [];
  for (let i = 0; i < leaves.length; i++) {
    if (!usedNames.has(paramNames[i])) continue;
    const l = leaves[i];
    inits.push(writeTensor(paramNames[i], onnxType(l.dtype), l.shape, await l.data()));
  }
  for (const { name, node, collapse } of em.pending) {
    const values = await new Tensor(node).data();
    const shape = node.shape.map((d, i) => (collapse.includes(i) ? 1 : d));
    inits.push(writeTensor(name, onnxType(node.dtype), shape, uniformPart(values, node, collapse)));
  }
  const bytes = await encodeModel({
    irVersion: irVersion(opset),
    opsetImport: [{ domain: "", version: opset }],
    producerName: "cosgrad",
    producerVersion: "0.1.0",
    graph: {
      name: options.graphName ?? "cosgrad",
      node: em.nodes,
      initializer: [...inits, ...em.initializers],
      input: first.inputVars.map((v, i) =>
        valueInfo(inputNames[i], v, dynamic ? new Set([0]) : new Set(), b1)
      ),
      output: first.outputs.map((o, i) => valueInfo(outNames[i], o, em.axesOf(o), b1)),
    },
  });
  return bytes;
}
