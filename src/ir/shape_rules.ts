/**
 * Shape and dtype rules, one per primitive. They run when a node is built, so a bad shape is
 * reported at the user's call.
 *
 * @module
 */
import { type DType, fmtShape, isFloat } from "./dtype.ts";
import type { Node } from "./node.ts";
import type { ConvParams, Prim, PrimParams } from "./primitives.ts";

/** The result of a shape rule. */
export interface ShapeDType {
  shape: number[];
  dtype: DType;
}

type ShapeRule<P extends Prim> = (inputs: readonly Node[], params: PrimParams[P]) => ShapeDType;

function same(op: string, a: Node, b: Node): void {
  if (a.dtype !== b.dtype) {
    throw new TypeError(`${op}: dtypes differ: ${a.dtype} and ${b.dtype}`);
  }
  if (a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) {
    throw new RangeError(
      `${op}: shapes differ: ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`,
    );
  }
}

function float(op: string, a: Node): void {
  if (!isFloat(a.dtype)) throw new TypeError(`${op}: expected a float tensor, got ${a.dtype}`);
}

function checkAxes(op: string, axes: readonly number[], rank: number): void {
  const seen = new Set<number>();
  for (const a of axes) {
    if (!Number.isInteger(a) || a < 0 || a >= rank || seen.has(a)) {
      throw new RangeError(`${op}: bad axes [${axes.join(",")}] for rank ${rank}`);
    }
    seen.add(a);
  }
}

function unaryFloat(op: string): (inputs: readonly Node[]) => ShapeDType {
  return ([a]) => {
    float(op, a);
    return { shape: [...a.shape], dtype: a.dtype };
  };
}

function binary(op: string, needFloat: boolean): (inputs: readonly Node[]) => ShapeDType {
  return ([a, b]) => {
    same(op, a, b);
    if (needFloat) float(op, a);
    return { shape: [...a.shape], dtype: a.dtype };
  };
}

/** Output size of one spatial axis of a convolution. */
export function convOutSize(
  size: number,
  kernel: number,
  stride: number,
  padLo: number,
  padHi: number,
  dilation: number,
): number {
  return Math.floor((size + padLo + padHi - dilation * (kernel - 1) - 1) / stride) + 1;
}

/** Output shape of conv2d for an NCHW input and OIHW weights, with checks. */
export function convShape(x: readonly number[], w: readonly number[], p: ConvParams): number[] {
  if (x.length !== 4 || w.length !== 4) {
    throw new RangeError(
      `conv2d: expected NCHW input and OIHW weights, got ${fmtShape(x)} and ${fmtShape(w)}`,
    );
  }
  const [n, c, h, wd] = x;
  const [o, ci, kh, kw] = w;
  if (c !== ci * p.groups || o % p.groups !== 0) {
    throw new RangeError(
      `conv2d: input ${fmtShape(x)} and weights ${
        fmtShape(w)
      } do not match with groups ${p.groups}`,
    );
  }
  const oh = convOutSize(h, kh, p.stride[0], p.padding[0], p.padding[1], p.dilation[0]);
  const ow = convOutSize(wd, kw, p.stride[1], p.padding[2], p.padding[3], p.dilation[1]);
  if (oh <= 0 || ow <= 0) {
    throw new RangeError(`conv2d: input ${fmtShape(x)} is smaller than the kernel ${fmtShape(w)}`);
  }
  return [n, o, oh, ow];
}

/** The shape rule of every primitive. */
export const SHAPE_RULES: { [P in Prim]: ShapeRule<P> } = {
  const: (_, p) => {
    if (p.shape.reduce((x, y) => x * y, 1) !== p.storage.size) {
      throw new RangeError(`Shape ${fmtShape(p.shape)} does not fit ${p.storage.size} elements`);
    }
    return { shape: [...p.shape], dtype: p.storage.dtype };
  },
  var: (_, p) => ({ shape: [...p.shape], dtype: p.dtype }),
  scalar: (_, p) => ({ shape: [], dtype: p.dtype }),
  iota: (_, p) => {
    checkAxes("iota", [p.axis], p.shape.length);
    return { shape: [...p.shape], dtype: p.dtype };
  },
  neg: ([a]) => ({ shape: [...a.shape], dtype: a.dtype }),
  recip: unaryFloat("recip"),
  exp: unaryFloat("exp"),
  log: unaryFloat("log"),
  sqrt: unaryFloat("sqrt"),
  cos: unaryFloat("cos"),
  sin: unaryFloat("sin"),
  acos: unaryFloat("acos"),
  floor: unaryFloat("floor"),
  stopGradient: ([a]) => ({ shape: [...a.shape], dtype: a.dtype }),
  cast: ([a], p) => ({ shape: [...a.shape], dtype: p.dtype }),
  add: binary("add", false),
  sub: binary("sub", false),
  mul: binary("mul", false),
  div: binary("div", true),
  max: binary("max", false),
  pow: binary("pow", true),
  cmplt: binary("cmplt", false),
  cmpeq: binary("cmpeq", false),
  where: ([c, a, b]) => {
    same("where", a, b);
    if (c.shape.length !== a.shape.length || c.shape.some((d, i) => d !== a.shape[i])) {
      throw new RangeError(
        `where: condition shape ${fmtShape(c.shape)} differs from ${fmtShape(a.shape)}`,
      );
    }
    return { shape: [...a.shape], dtype: a.dtype };
  },
  sum: ([a], p) => {
    checkAxes("sum", p.axes, a.shape.length);
    return { shape: a.shape.map((d, i) => p.axes.includes(i) ? 1 : d), dtype: a.dtype };
  },
  reduceMax: ([a], p) => {
    checkAxes("max", p.axes, a.shape.length);
    for (const ax of p.axes) {
      if (a.shape[ax] === 0) throw new RangeError(`max: cannot reduce an empty axis ${ax}`);
    }
    return { shape: a.shape.map((d, i) => p.axes.includes(i) ? 1 : d), dtype: a.dtype };
  },
  reshape: ([a], p) => {
    const n = a.shape.reduce((x, y) => x * y, 1);
    const m = p.shape.reduce((x, y) => x * y, 1);
    if (n !== m || p.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new RangeError(`Cannot reshape ${fmtShape(a.shape)} to ${fmtShape(p.shape)}`);
    }
    return { shape: [...p.shape], dtype: a.dtype };
  },
  permute: ([a], p) => {
    if (p.perm.length !== a.shape.length) {
      throw new RangeError(
        `transpose: permutation [${p.perm.join(",")}] does not fit shape ${fmtShape(a.shape)}`,
      );
    }
    checkAxes("transpose", p.perm, a.shape.length);
    return { shape: p.perm.map((i) => a.shape[i]), dtype: a.dtype };
  },
  broadcast: ([a], p) => {
    if (
      p.shape.length !== a.shape.length ||
      a.shape.some((d, i) => d !== p.shape[i] && d !== 1)
    ) {
      throw new RangeError(`Cannot broadcast shape ${fmtShape(a.shape)} to ${fmtShape(p.shape)}`);
    }
    return { shape: [...p.shape], dtype: a.dtype };
  },
  slice: ([a], p) => {
    if (
      p.start.length !== a.shape.length || p.end.length !== a.shape.length ||
      p.start.some((s, i) => s < 0 || s > p.end[i] || p.end[i] > a.shape[i])
    ) {
      throw new RangeError(
        `slice: start [${p.start.join(",")}] and end [${p.end.join(",")}] do not fit shape ${
          fmtShape(a.shape)
        }`,
      );
    }
    return { shape: p.start.map((s, i) => p.end[i] - s), dtype: a.dtype };
  },
  pad: ([a], p) => {
    if (
      p.lo.length !== a.shape.length || p.hi.length !== a.shape.length ||
      [...p.lo, ...p.hi].some((v) => !Number.isInteger(v) || v < 0)
    ) {
      throw new RangeError(
        `pad: widths lo [${p.lo.join(",")}] hi [${p.hi.join(",")}] do not fit shape ${
          fmtShape(a.shape)
        }`,
      );
    }
    return { shape: a.shape.map((d, i) => d + p.lo[i] + p.hi[i]), dtype: a.dtype };
  },
  concat: (xs, p) => {
    const a = xs[0];
    if (a === undefined) throw new RangeError("concat: expected at least one tensor");
    checkAxes("concat", [p.axis], a.shape.length);
    let total = 0;
    for (const x of xs) {
      if (
        x.dtype !== a.dtype || x.shape.length !== a.shape.length ||
        x.shape.some((d, i) => i !== p.axis && d !== a.shape[i])
      ) {
        throw new RangeError(
          `concat: shapes ${fmtShape(a.shape)} and ${fmtShape(x.shape)} differ off axis ${p.axis}`,
        );
      }
      total += x.shape[p.axis];
    }
    return { shape: a.shape.map((d, i) => i === p.axis ? total : d), dtype: a.dtype };
  },
  flip: ([a], p) => {
    checkAxes("flip", p.axes, a.shape.length);
    return { shape: [...a.shape], dtype: a.dtype };
  },
  matmul: ([a, b]) => {
    const r = a.shape.length;
    if (
      a.dtype !== b.dtype || r < 2 || b.shape.length !== r ||
      a.shape[r - 1] !== b.shape[r - 2] ||
      a.shape.slice(0, r - 2).some((d, i) => d !== b.shape[i])
    ) {
      throw new RangeError(
        `matmul: cannot multiply ${fmtShape(a.shape)} (${a.dtype}) by ${
          fmtShape(b.shape)
        } (${b.dtype})`,
      );
    }
    float("matmul", a);
    return { shape: [...a.shape.slice(0, r - 1), b.shape[r - 1]], dtype: a.dtype };
  },
  conv2d: ([x, w], p) => {
    if (x.dtype !== w.dtype) throw new TypeError(`conv2d: dtypes differ: ${x.dtype}, ${w.dtype}`);
    float("conv2d", x);
    return { shape: convShape(x.shape, w.shape, p), dtype: x.dtype };
  },
  conv2dBackInput: ([dy, w], p) => {
    const out = convShape(p.inputShape, w.shape, p);
    if (out.some((d, i) => d !== dy.shape[i])) {
      throw new RangeError(`conv2dBackInput: dy ${fmtShape(dy.shape)} expected ${fmtShape(out)}`);
    }
    return { shape: [...p.inputShape], dtype: dy.dtype };
  },
  conv2dBackFilter: ([x, dy], p) => {
    const out = convShape(x.shape, p.weightShape, p);
    if (out.some((d, i) => d !== dy.shape[i])) {
      throw new RangeError(`conv2dBackFilter: dy ${fmtShape(dy.shape)} expected ${fmtShape(out)}`);
    }
    return { shape: [...p.weightShape], dtype: x.dtype };
  },
  gather: ([x, idx], p) => {
    checkAxes("gather", [p.axis], x.shape.length);
    if (idx.dtype !== "int32") {
      throw new TypeError(`gather: indices must be int32, got ${idx.dtype}`);
    }
    if (
      idx.shape.length !== x.shape.length ||
      idx.shape.some((d, i) => i !== p.axis && d !== x.shape[i])
    ) {
      throw new RangeError(
        `gather: indices ${fmtShape(idx.shape)} do not fit ${fmtShape(x.shape)} on axis ${p.axis}`,
      );
    }
    return { shape: [...idx.shape], dtype: x.dtype };
  },
  scatterAdd: ([upd, idx], p) => {
    checkAxes("scatterAdd", [p.axis], p.shape.length);
    if (idx.dtype !== "int32") {
      throw new TypeError(`scatterAdd: indices must be int32, got ${idx.dtype}`);
    }
    if (
      upd.shape.length !== p.shape.length || idx.shape.some((d, i) => d !== upd.shape[i]) ||
      p.shape.some((d, i) => i !== p.axis && d !== upd.shape[i])
    ) {
      throw new RangeError(
        `scatterAdd: updates ${fmtShape(upd.shape)} do not fit ${
          fmtShape(p.shape)
        } on axis ${p.axis}`,
      );
    }
    return { shape: [...p.shape], dtype: upd.dtype };
  },
  custom: (xs, p) => {
    const a = xs[0];
    const want = p.rule.kind === "barrier" ? 1 : 1 + p.rule.args;
    if (a === undefined || xs.length < want || p.index < 0 || p.index >= p.rule.outputs) {
      throw new RangeError(
        `custom ${p.rule.name}: output ${p.index} of ${p.rule.outputs} with ${xs.length} inputs`,
      );
    }
    return { shape: [...a.shape], dtype: a.dtype };
  },
  threefry: (xs, p) => {
    if (xs.length !== 4 || xs.some((x) => x.dtype !== "int32")) {
      throw new TypeError(
        `threefry: expected 4 int32 tensors (k0, k1, x0, x1), got ${
          xs.map((x) => x.dtype).join(", ")
        }`,
      );
    }
    for (const x of xs) same("threefry", xs[0], x);
    return { shape: [...xs[0].shape], dtype: p.output === "bits" ? "int32" : "float32" };
  },
};
