/**
 * Batching rules, one per primitive, for `vmap`: given inputs that either carry a batch
 * axis in front (`batched`) or not, the node's value for every batch element, with the batch
 * axis in front. The table is typed `{ [P in Prim]: BatchRule<P> }`, so a new primitive fails
 * `deno check` until it has one.
 *
 * Every rule moves the batch into the primitive's own axes: elementwise ops, reductions and
 * movement shift their axes by one; a matmul whose right operand is shared folds the batch
 * into its rows; a convolution with shared filters folds it into the images, and one with
 * per-example filters (or a per-example filter gradient: `vmap(grad)`) into channel groups.
 *
 * @module
 */
import type { Node } from "../ir/node.ts";
import type { CustomRule, Prim, PrimParams } from "../ir/primitives.ts";
import { apply, type Tensor } from "../tensor.ts";
import { broadcastTo, reshape, transpose } from "../ops/movement.ts";
import { sum } from "../ops/reduce.ts";
import { freshRuleId } from "./custom.ts";

/** A value during batching: `t` has the batch axis in front when `batched`. */
export interface Batched {
  t: Tensor;
  batched: boolean;
}

/** A batching rule: inputs, the node of one element, the batch size; returns the batch. */
export type BatchRule<P extends Prim> = (
  inputs: readonly Batched[],
  node: Node<P>,
  size: number,
  vmap: VmapLike,
) => Tensor;

/** The `vmap` the rule of `custom` calls (passed in to keep the modules acyclic). */
export type VmapLike = (
  f: (...args: unknown[]) => unknown,
  inAxes: readonly (number | null)[],
) => (...args: unknown[]) => unknown;

/** `x` with a batch axis in front: broadcast when it has none. */
export function withBatch(x: Batched, size: number): Tensor {
  if (x.batched) return x.t;
  return broadcastTo(reshape(x.t, [1, ...x.t.shape]), [size, ...x.t.shape]);
}

function same<P extends Prim>(inputs: readonly Batched[], node: Node<P>, size: number): Tensor {
  return apply(node.op, inputs.map((x) => withBatch(x, size)), node.params as PrimParams[P]);
}

const shift = (axes: readonly number[]) => axes.map((a) => a + 1);

const leaf = (_: readonly Batched[], node: Node): Tensor => {
  throw new TypeError(`vmap: ${node.op} has no inputs and is never batched`);
};

/** Merges the batch axis into the next one: `[B, N, ...] -> [B*N, ...]`. */
function foldBatch(t: Tensor): Tensor {
  const [b, n, ...rest] = t.shape;
  return reshape(t, [b * n, ...rest]);
}

function unfoldBatch(t: Tensor, size: number): Tensor {
  const [bn, ...rest] = t.shape;
  return reshape(t, [size, bn / size, ...rest]);
}

/** `[B, N, C, H, W] -> [N, B*C, H, W]`: the batch as channel groups. */
function toGroups(t: Tensor): Tensor {
  const [b, n, c, h, w] = t.shape;
  return reshape(transpose(t, [1, 0, 2, 3, 4]), [n, b * c, h, w]);
}

/** `[N, B*O, H, W] -> [B, N, O, H, W]`. */
function fromGroups(t: Tensor, size: number): Tensor {
  const [n, bo, h, w] = t.shape;
  return transpose(reshape(t, [n, size, bo / size, h, w]), [1, 0, 2, 3, 4]);
}

/** Matrix product with a batched `a` and a shared `b`: the batch joins the rows of `a`. */
function matmulRows(a: Tensor, b: Tensor, size: number): Tensor {
  const r = a.ndim; // [B, ...batch, m, k]
  const perm = [...Array.from({ length: r - 3 }, (_, i) => i + 1), 0, r - 2, r - 1];
  const moved = transpose(a, perm); // [...batch, B, m, k]
  const m = a.shape[r - 2], k = a.shape[r - 1];
  const batchDims = a.shape.slice(1, r - 2);
  const rows = reshape(moved, [...batchDims, size * m, k]);
  const y = apply("matmul", [rows, b], {}); // [...batch, B*m, n]
  const n = y.shape[y.ndim - 1];
  const back = reshape(y, [...batchDims, size, m, n]);
  const inv = [batchDims.length, ...batchDims.map((_, i) => i), r - 2, r - 1];
  return transpose(back, inv);
}

/** The batching rule of every primitive. */
export const BATCH_RULES: { [P in Prim]: BatchRule<P> } = {
  const: leaf,
  var: leaf,
  scalar: leaf,
  iota: leaf,
  neg: same,
  recip: same,
  exp: same,
  log: same,
  sqrt: same,
  cos: same,
  sin: same,
  acos: same,
  floor: same,
  stopGradient: same,
  cast: same,
  add: same,
  sub: same,
  mul: same,
  div: same,
  max: same,
  pow: same,
  cmplt: same,
  cmpeq: same,
  where: same,
  threefry: same,
  sum: ([x], node) => apply("sum", [x.t], { axes: shift(node.params.axes) }),
  reduceMax: ([x], node) => apply("reduceMax", [x.t], { axes: shift(node.params.axes) }),
  reshape: ([x], node, size) => apply("reshape", [x.t], { shape: [size, ...node.params.shape] }),
  permute: ([x], node) => apply("permute", [x.t], { perm: [0, ...shift(node.params.perm)] }),
  broadcast: ([x], node, size) =>
    apply("broadcast", [x.t], { shape: [size, ...node.params.shape] }),
  slice: ([x], node, size) =>
    apply("slice", [x.t], { start: [0, ...node.params.start], end: [size, ...node.params.end] }),
  pad: ([x], node) =>
    apply("pad", [x.t], { lo: [0, ...node.params.lo], hi: [0, ...node.params.hi] }),
  concat: (xs, node, size) =>
    apply("concat", xs.map((x) => withBatch(x, size)), { axis: node.params.axis + 1 }),
  flip: ([x], node) => apply("flip", [x.t], { axes: shift(node.params.axes) }),
  matmul: ([a, b], _, size) => {
    if (a.batched && !b.batched) return matmulRows(a.t, b.t, size);
    return apply("matmul", [withBatch(a, size), withBatch(b, size)], {});
  },
  conv2d: ([x, w], node, size) => {
    if (!w.batched) return unfoldBatch(apply("conv2d", [foldBatch(x.t), w.t], node.params), size);
    // Per-example filters: the batch becomes groups of one convolution.
    const p = { ...node.params, groups: node.params.groups * size };
    return fromGroups(apply("conv2d", [toGroups(withBatch(x, size)), foldBatch(w.t)], p), size);
  },
  conv2dBackInput: ([dy, w], node, size) => {
    const [n, c, h, wd] = node.params.inputShape;
    if (!w.batched) {
      const p = { ...node.params, inputShape: [size * n, c, h, wd] };
      return unfoldBatch(apply("conv2dBackInput", [foldBatch(dy.t), w.t], p), size);
    }
    const p = {
      ...node.params,
      groups: node.params.groups * size,
      inputShape: [n, size * c, h, wd],
    };
    const g = apply("conv2dBackInput", [toGroups(withBatch(dy, size)), foldBatch(w.t)], p);
    return fromGroups(g, size);
  },
  conv2dBackFilter: ([x, dy], node, size) => {
    // Per-example filter gradients (vmap of grad): the batch becomes groups.
    const [o, ...rest] = node.params.weightShape;
    const p = {
      ...node.params,
      groups: node.params.groups * size,
      weightShape: [size * o, ...rest],
    };
    const g = apply("conv2dBackFilter", [
      toGroups(withBatch(x, size)),
      toGroups(withBatch(dy, size)),
    ], p);
    return unfoldBatch(g, size);
  },
  gather: (xs, node, size) =>
    apply("gather", xs.map((x) => withBatch(x, size)), { axis: node.params.axis + 1 }),
  scatterAdd: (xs, node, size) =>
    apply("scatterAdd", xs.map((x) => withBatch(x, size)), {
      axis: node.params.axis + 1,
      shape: [size, ...node.params.shape],
    }),
  custom: (inputs, node, size, vmap) => {
    const { rule, index } = node.params;
    const out = withBatch(inputs[0], size);
    if (rule.kind === "barrier") {
      return apply("custom", [out, ...inputs.slice(1).map((x) => x.t)], { rule, index });
    }
    const rest = inputs.slice(1);
    const flags = rest.map((x) => x.batched);
    const batchedRule: CustomRule = {
      ...rule,
      id: freshRuleId(),
      name: `vmap(${rule.name})`,
      vjp: (cts, args, res) => {
        const all = [...cts, ...args, ...res];
        const axes = [...cts.map((c) => c === null ? null : 0), ...flags.map((f) => f ? 0 : null)];
        const nc = cts.length, na = args.length;
        const per = vmap(
          (...xs: unknown[]) => rule.vjp(xs.slice(0, nc), xs.slice(nc, nc + na), xs.slice(nc + na)),
          axes,
        )(...all) as (Tensor | null)[];
        return per.map((g, i) => {
          if (g === null || flags[i]) return g;
          return reshape(sum(g, [0]), g.shape.slice(1));
        });
      },
    };
    return apply("custom", [out, ...rest.map((x) => x.t)], { rule: batchedRule, index });
  },
};
