/**
 * The CPU interpreter: one evaluation rule per primitive, over typed arrays, the correctness
 * oracle of the WebGPU backend. Float64 tensors compute in float64. Float32 tensors round every
 * elementwise result to float32 (by storing it); accumulations (`sum`, `matmul`, the three
 * convolutions and `scatterAdd`) add their terms in float64 and round once, when the finished
 * sum is stored, so the oracle's only float32 error in a reduction is that one rounding.
 * Products are never skipped: `0 * Inf` and `0 * NaN` are NaN, as IEEE 754 (and WGSL) say.
 *
 * @module
 */
import { allocate, stridesOf, type TypedArray } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import type { ConvParams, Prim } from "../../ir/primitives.ts";
import { readStrided, walk, writeStrided } from "./_strided.ts";
import { threefry2x32 } from "../../ir/threefry.ts";

type CpuRule<P extends Prim> = (inputs: TypedArray[], node: Node<P>) => TypedArray;

function out(node: Node): TypedArray {
  return allocate(node.dtype, node.shape.reduce((a, b) => a * b, 1));
}

function unary(f: (x: number) => number): (inputs: TypedArray[], node: Node) => TypedArray {
  return ([a], node) => {
    const o = out(node);
    for (let i = 0; i < o.length; i++) o[i] = f(a[i]);
    return o;
  };
}

function binary(
  f: (x: number, y: number) => number,
): (inputs: TypedArray[], node: Node) => TypedArray {
  return ([a, b], node) => {
    const o = out(node);
    for (let i = 0; i < o.length; i++) o[i] = f(a[i], b[i]);
    return o;
  };
}

/** Sum over the reduced axes, accumulated in float64 and rounded once into the output. */
function sumRule([a]: TypedArray[], node: Node): TypedArray {
  const acc = new Float64Array(node.shape.reduce((x, y) => x * y, 1));
  const inShape = node.inputs[0].shape;
  const outStrides = stridesOf(node.shape).map((s, i) => node.shape[i] === 1 ? 0 : s);
  walk(inShape, outStrides, 0, (flat, oi) => {
    acc[oi] += a[flat];
  });
  const o = out(node);
  o.set(acc);
  return o;
}

function reduce(
  init: number,
  f: (acc: number, x: number) => number,
): (inputs: TypedArray[], node: Node) => TypedArray {
  return ([a], node) => {
    const o = out(node).fill(init);
    const inShape = node.inputs[0].shape;
    const outStrides = stridesOf(node.shape).map((s, i) => node.shape[i] === 1 ? 0 : s);
    walk(inShape, outStrides, 0, (flat, oi) => {
      o[oi] = f(o[oi], a[flat]);
    });
    return o;
  };
}

/** Loops of a direct convolution; `visit(xi, wi, yi)` is called for each product term. */
function convLoops(
  x: readonly number[],
  w: readonly number[],
  y: readonly number[],
  p: ConvParams,
  visit: (xi: number, wi: number, yi: number) => void,
): void {
  const [n, c, h, wd] = x;
  const [o, cg, kh, kw] = w;
  const [, , oh, ow] = y;
  const og = o / p.groups;
  for (let b = 0; b < n; b++) {
    for (let oc = 0; oc < o; oc++) {
      const g = Math.floor(oc / og);
      for (let ci = 0; ci < cg; ci++) {
        const ic = g * cg + ci;
        for (let ky = 0; ky < kh; ky++) {
          for (let kx = 0; kx < kw; kx++) {
            const wi = ((oc * cg + ci) * kh + ky) * kw + kx;
            for (let oy = 0; oy < oh; oy++) {
              const iy = oy * p.stride[0] - p.padding[0] + ky * p.dilation[0];
              if (iy < 0 || iy >= h) continue;
              const xrow = ((b * c + ic) * h + iy) * wd;
              const yrow = ((b * o + oc) * oh + oy) * ow;
              for (let ox = 0; ox < ow; ox++) {
                const ix = ox * p.stride[1] - p.padding[2] + kx * p.dilation[1];
                if (ix < 0 || ix >= wd) continue;
                visit(xrow + ix, wi, yrow + ox);
              }
            }
          }
        }
      }
    }
  }
}

function gatherIndex(
  node: Node,
  idxShape: readonly number[],
  dataShape: readonly number[],
  axis: number,
  idx: TypedArray,
  fn: (flat: number, dataIndex: number) => void,
): void {
  const ds = stridesOf(dataShape);
  const strides = ds.map((s, i) => i === axis ? 0 : s);
  const n = dataShape[axis];
  walk(idxShape, strides, 0, (flat, base) => {
    const j = idx[flat];
    if (!(j >= 0 && j < n)) {
      throw new RangeError(`${node.op}: index ${j} is out of range [0, ${n}) on axis ${axis}`);
    }
    fn(flat, base + j * ds[axis]);
  });
}

/** The CPU evaluation rule of every primitive (leaves are bound by the caller). */
export const CPU_RULES: { [P in Prim]: CpuRule<P> } = {
  const: (_, node) => node.params.storage.host!,
  var: (_, node) => {
    throw new TypeError(`Unbound variable ${node.params.id}`);
  },
  scalar: (_, node) => {
    const o = out(node);
    o[0] = node.params.value;
    return o;
  },
  iota: (_, node) => {
    const o = out(node);
    const { shape, axis } = node.params;
    const strides = stridesOf(shape);
    for (let i = 0; i < o.length; i++) o[i] = Math.floor(i / strides[axis]) % shape[axis];
    return o;
  },
  neg: unary((x) => -x),
  recip: unary((x) => 1 / x),
  exp: unary(Math.exp),
  log: unary(Math.log),
  sqrt: unary(Math.sqrt),
  cos: unary(Math.cos),
  sin: unary(Math.sin),
  acos: unary(Math.acos),
  floor: unary(Math.floor),
  stopGradient: ([a]) => a,
  cast: ([a], node) => {
    const o = out(node);
    if (node.dtype === "int32") { for (let i = 0; i < o.length; i++) o[i] = Math.trunc(a[i]); }
    else o.set(a);
    return o;
  },
  add: binary((x, y) => x + y),
  sub: binary((x, y) => x - y),
  mul: binary((x, y) => x * y),
  div: binary((x, y) => x / y),
  max: binary((x, y) => (x > y || Number.isNaN(x)) ? x : y),
  pow: binary(Math.pow),
  cmplt: binary((x, y) => x < y ? 1 : 0),
  cmpeq: binary((x, y) => x === y ? 1 : 0),
  where: ([c, a, b], node) => {
    const o = out(node);
    for (let i = 0; i < o.length; i++) o[i] = c[i] !== 0 ? a[i] : b[i];
    return o;
  },
  sum: sumRule,
  reduceMax: reduce(-Infinity, (acc, x) => (x > acc || Number.isNaN(x)) ? x : acc),
  reshape: ([a]) => a,
  permute: ([a], node) => {
    const o = out(node);
    const s = stridesOf(node.inputs[0].shape);
    readStrided(a, o, node.shape, node.params.perm.map((i) => s[i]), 0);
    return o;
  },
  broadcast: ([a], node) => {
    const o = out(node);
    const inShape = node.inputs[0].shape;
    const s = stridesOf(inShape).map((v, i) => inShape[i] === 1 ? 0 : v);
    readStrided(a, o, node.shape, s, 0);
    return o;
  },
  slice: ([a], node) => {
    const o = out(node);
    const s = stridesOf(node.inputs[0].shape);
    const offset = node.params.start.reduce((acc, v, i) => acc + v * s[i], 0);
    readStrided(a, o, node.shape, s, offset);
    return o;
  },
  pad: ([a], node) => {
    const o = out(node);
    const s = stridesOf(node.shape);
    const offset = node.params.lo.reduce((acc, v, i) => acc + v * s[i], 0);
    writeStrided(a, o, node.inputs[0].shape, s, offset);
    return o;
  },
  concat: (xs, node) => {
    const o = out(node);
    const s = stridesOf(node.shape);
    let at = 0;
    xs.forEach((x, k) => {
      const shape = node.inputs[k].shape;
      writeStrided(x, o, shape, s, at * s[node.params.axis]);
      at += shape[node.params.axis];
    });
    return o;
  },
  flip: ([a], node) => {
    const o = out(node);
    const s = stridesOf(node.shape);
    let offset = 0;
    const strides = s.map((v, i) => {
      if (!node.params.axes.includes(i)) return v;
      offset += (node.shape[i] - 1) * v;
      return -v;
    });
    readStrided(a, o, node.shape, strides, offset);
    return o;
  },
  matmul: ([a, b], node) => {
    const o = out(node);
    const r = node.shape.length;
    const m = node.shape[r - 2], n = node.shape[r - 1], k = node.inputs[0].shape[r - 1];
    const batch = o.length / (m * n || 1);
    const row = new Float64Array(n);
    for (let t = 0; t < batch; t++) {
      for (let i = 0; i < m; i++) {
        row.fill(0);
        for (let p = 0; p < k; p++) {
          const av = a[(t * m + i) * k + p];
          const bo = (t * k + p) * n;
          for (let j = 0; j < n; j++) row[j] += av * b[bo + j];
        }
        o.set(row, (t * m + i) * n);
      }
    }
    return o;
  },
  conv2d: ([x, w], node) => {
    const acc = new Float64Array(out(node).length);
    convLoops(node.inputs[0].shape, node.inputs[1].shape, node.shape, node.params, (xi, wi, yi) => {
      acc[yi] += x[xi] * w[wi];
    });
    const o = out(node);
    o.set(acc);
    return o;
  },
  conv2dBackInput: ([dy, w], node) => {
    const acc = new Float64Array(out(node).length);
    convLoops(node.shape, node.inputs[1].shape, node.inputs[0].shape, node.params, (xi, wi, yi) => {
      acc[xi] += dy[yi] * w[wi];
    });
    const o = out(node);
    o.set(acc);
    return o;
  },
  conv2dBackFilter: ([x, dy], node) => {
    const acc = new Float64Array(out(node).length);
    convLoops(node.inputs[0].shape, node.shape, node.inputs[1].shape, node.params, (xi, wi, yi) => {
      acc[wi] += x[xi] * dy[yi];
    });
    const o = out(node);
    o.set(acc);
    return o;
  },
  gather: ([x, idx], node) => {
    const o = out(node);
    gatherIndex(node, node.shape, node.inputs[0].shape, node.params.axis, idx, (f, d) => {
      o[f] = x[d];
    });
    return o;
  },
  scatterAdd: ([upd, idx], node) => {
    const acc = new Float64Array(out(node).length);
    gatherIndex(node, node.inputs[0].shape, node.shape, node.params.axis, idx, (f, d) => {
      acc[d] += upd[f];
    });
    const o = out(node);
    o.set(acc);
    return o;
  },
  // Only reached when a graph is run without the passes (they replace it by input 0).
  custom: ([a]) => a,
  threefry: ([k0, k1, x0, x1], node) => {
    const o = out(node);
    const { word, output } = node.params;
    for (let i = 0; i < o.length; i++) {
      const w = threefry2x32(k0[i], k1[i], x0[i], x1[i])[word];
      o[i] = output === "bits" ? w | 0 : (w >>> 8) * 2 ** -24;
    }
    return o;
  },
};
