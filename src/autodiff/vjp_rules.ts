/**
 * Reverse-mode rules, one per primitive: given the output's cotangent, the cotangents of the
 * inputs (null where none flows). Broadcasting is undone in one place, the rule of the
 * `broadcast` primitive, because binary operations see operands of equal shape.
 *
 * @module
 */
import type { Node } from "../ir/node.ts";
import type { Prim } from "../ir/primitives.ts";
import { apply, type Tensor } from "../tensor.ts";
import {
  cast,
  cos,
  div,
  equal,
  greater,
  log,
  mul,
  neg,
  sin,
  sqrt,
  sub,
  where,
} from "../ops/elementwise.ts";
import { matmul } from "../ops/linalg.ts";
import { flip, pad, reshape, slice, transpose } from "../ops/movement.ts";
import { broadcastTo } from "../ops/movement.ts";
import { sum } from "../ops/reduce.ts";
import { isFloat } from "../ir/dtype.ts";

/**
 * A vjp rule: output cotangent, input tensors, output tensor, the node, and which inputs need
 * a cotangent (a rule may return null for the others instead of building it).
 */
export type VjpRule<P extends Prim> = (
  ct: Tensor,
  inputs: Tensor[],
  out: Tensor,
  node: Node<P>,
  need: readonly boolean[],
) => (Tensor | null)[];

/** `make()` where input `i` needs a cotangent, else null. */
function ifNeed(need: readonly boolean[], i: number, make: () => Tensor): Tensor | null {
  return need[i] ? make() : null;
}

function swapLast(x: Tensor): Tensor {
  const p = x.shape.map((_, i) => i);
  const r = p.length;
  [p[r - 2], p[r - 1]] = [p[r - 1], p[r - 2]];
  return transpose(x, p);
}

const none = (): (Tensor | null)[] => [];

/** The vjp rule of every primitive. */
export const VJP_RULES: { [P in Prim]: VjpRule<P> } = {
  const: none,
  var: none,
  scalar: none,
  iota: none,
  neg: (ct) => [neg(ct)],
  recip: (ct, _, y) => [neg(mul(ct, mul(y, y)))],
  exp: (ct, _, y) => [mul(ct, y)],
  log: (ct, [x]) => [div(ct, x)],
  sqrt: (ct, _, y) => [div(mul(ct, 0.5), y)],
  cos: (ct, [x]) => [neg(mul(ct, sin(x)))],
  sin: (ct, [x]) => [mul(ct, cos(x))],
  acos: (ct, [x]) => [neg(div(ct, sqrt(sub(1, mul(x, x)))))],
  floor: () => [null],
  stopGradient: () => [null],
  cast: (ct, [x]) => [isFloat(x.dtype) && isFloat(ct.dtype) ? cast(ct, x.dtype) : null],
  add: (ct) => [ct, ct],
  sub: (ct) => [ct, neg(ct)],
  mul: (ct, [a, b], _, __, need) => [
    ifNeed(need, 0, () => mul(ct, b)),
    ifNeed(need, 1, () => mul(ct, a)),
  ],
  div: (ct, [, b], y, _, need) => [
    ifNeed(need, 0, () => div(ct, b)),
    ifNeed(need, 1, () => neg(div(mul(ct, y), b))),
  ],
  max: (ct, [a, b]) => {
    const ga = where(greater(a, b), ct, where(equal(a, b), mul(ct, 0.5), 0));
    return [ga, sub(ct, ga)];
  },
  pow: (ct, [a, b], y, _, need) => [
    ifNeed(need, 0, () => mul(ct, mul(b, apply("pow", [a, sub(b, 1)], {})))),
    ifNeed(need, 1, () => {
      const logA = where(greater(a, 0), log(where(greater(a, 0), a, 1)), 0);
      return mul(ct, mul(y, logA));
    }),
  ],
  cmplt: () => [null, null],
  cmpeq: () => [null, null],
  where: (ct, [c]) => [null, where(c, ct, 0), where(c, 0, ct)],
  sum: (ct, [x]) => [broadcastTo(ct, x.shape)],
  reduceMax: (ct, [x], y, node) => {
    const mask = equal(x, broadcastTo(y, x.shape));
    const count = sum(mask, node.params.axes, { keepdims: true });
    return [mul(broadcastTo(div(ct, count), x.shape), mask)];
  },
  reshape: (ct, [x]) => [reshape(ct, x.shape)],
  permute: (ct, _, __, node) => {
    const inv = new Array<number>(node.params.perm.length);
    node.params.perm.forEach((p, i) => inv[p] = i);
    return [transpose(ct, inv)];
  },
  broadcast: (ct, [x]) => {
    const axes = x.shape.map((d, i) => d === 1 && ct.shape[i] !== 1 ? i : -1).filter((i) => i >= 0);
    return [axes.length === 0 ? ct : sum(ct, axes, { keepdims: true })];
  },
  slice: (ct, [x], _, node) => {
    const { start, end } = node.params;
    return [pad(ct, x.shape.map((d, i) => [start[i], d - end[i]] as [number, number]))];
  },
  pad: (
    ct,
    [x],
    _,
    node,
  ) => [slice(ct, node.params.lo, node.params.lo.map((l, i) => l + x.shape[i]))],
  concat: (ct, xs, _, node) => {
    const ax = node.params.axis;
    let at = 0;
    return xs.map((x) => {
      const start = x.shape.map((_, i) => i === ax ? at : 0);
      at += x.shape[ax];
      return slice(ct, start, x.shape.map((d, i) => i === ax ? at : d));
    });
  },
  flip: (ct, _, __, node) => [flip(ct, node.params.axes)],
  matmul: (ct, [a, b], _, __, need) => [
    ifNeed(need, 0, () => matmul(ct, swapLast(b))),
    ifNeed(need, 1, () => matmul(swapLast(a), ct)),
  ],
  conv2d: (ct, [x, w], _, node, need) => [
    ifNeed(
      need,
      0,
      () => apply("conv2dBackInput", [ct, w], { ...node.params, inputShape: x.shape }),
    ),
    ifNeed(
      need,
      1,
      () => apply("conv2dBackFilter", [x, ct], { ...node.params, weightShape: w.shape }),
    ),
  ],
  conv2dBackInput: (ct, [dy, w], _, node, need) => {
    const { inputShape: _i, ...p } = node.params;
    return [
      ifNeed(need, 0, () => apply("conv2d", [ct, w], p)),
      ifNeed(need, 1, () => apply("conv2dBackFilter", [ct, dy], { ...p, weightShape: w.shape })),
    ];
  },
  conv2dBackFilter: (ct, [x, dy], _, node, need) => {
    const { weightShape: _w, ...p } = node.params;
    return [
      ifNeed(need, 0, () => apply("conv2dBackInput", [dy, ct], { ...p, inputShape: x.shape })),
      ifNeed(need, 1, () => apply("conv2d", [x, ct], p)),
    ];
  },
  gather: (ct, [x, idx], _, node) => [
    apply("scatterAdd", [ct, idx], { axis: node.params.axis, shape: x.shape }),
    null,
  ],
  scatterAdd: (
    ct,
    [, idx],
    _,
    node,
  ) => [apply("gather", [ct, idx], { axis: node.params.axis }), null],
  custom: (ct, inputs, _, node) => {
    const { rule, index } = node.params;
    if (rule.kind === "barrier") return [ct, ...inputs.slice(1).map(() => null)];
    const cts: (Tensor | null)[] = Array.from({ length: rule.outputs }, () => null);
    cts[index] = ct;
    const args = inputs.slice(1, 1 + rule.args), res = inputs.slice(1 + rule.args);
    const grads = rule.vjp(cts, args, res) as (Tensor | null)[];
    if (grads.length !== rule.args) {
      throw new TypeError(
        `${rule.name}: the backward rule returned ${grads.length} cotangents for ${rule.args} arguments`,
      );
    }
    return [null, ...grads, ...res.map(() => null)];
  },
  threefry: () => [null, null, null, null],
};
