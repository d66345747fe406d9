/**
 * Elementwise operations with NumPy broadcasting; numbers act as scalars of the other
 * operand's dtype.
 *
 * @module
 */
import type { DType } from "../ir/dtype.ts";
import type { BinaryPrim } from "../ir/primitives.ts";
import { apply, Tensor } from "../tensor.ts";
import { scalar } from "./creation.ts";
import { broadcastShapes, broadcastTo } from "./movement.ts";

/** A tensor or a number. */
export type TensorLike = Tensor | number;

function pair(a: TensorLike, b: TensorLike): [Tensor, Tensor] {
  const dtype: DType = a instanceof Tensor ? a.dtype : b instanceof Tensor ? b.dtype : "float32";
  const ta = a instanceof Tensor ? a : scalar(a, dtype);
  const tb = b instanceof Tensor ? b : scalar(b, dtype);
  if (ta.dtype !== tb.dtype) {
    throw new TypeError(`Operands differ in dtype: ${ta.dtype} and ${tb.dtype}; cast one first`);
  }
  const shape = broadcastShapes(ta.shape, tb.shape);
  return [broadcastTo(ta, shape), broadcastTo(tb, shape)];
}

function binary(op: BinaryPrim, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  return apply(op, [x, y], {});
}

/**
 * `a + b`.
 *
 * @example
 * ```ts
 * import { add } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * await add(tensor([[1], [2]]), tensor([10, 20])).data(); // Float32Array [11, 21, 12, 22]
 * ```
 */
export function add(a: TensorLike, b: TensorLike): Tensor {
  return binary("add", a, b);
}
/** `a - b`; see {@link add} for broadcasting. */
export function sub(a: TensorLike, b: TensorLike): Tensor {
  return binary("sub", a, b);
}
/** `a * b`; see {@link add} for broadcasting. */
export function mul(a: TensorLike, b: TensorLike): Tensor {
  return binary("mul", a, b);
}
/** `a / b`; see {@link add} for broadcasting. */
export function div(a: TensorLike, b: TensorLike): Tensor {
  return binary("div", a, b);
}
/** `a ** b` (negative bases with integer exponents are fine). */
export function pow(a: TensorLike, b: TensorLike): Tensor {
  return binary("pow", a, b);
}
/**
 * The larger of `a` and `b`; at ties the gradient is split evenly.
 *
 * @example
 * ```ts
 * import { maximum } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * await maximum(tensor([1, 5]), 3).data(); // Float32Array [3, 5]
 * ```
 */
export function maximum(a: TensorLike, b: TensorLike): Tensor {
  return binary("max", a, b);
}
/** The smaller of `a` and `b`. */
export function minimum(a: TensorLike, b: TensorLike): Tensor {
  return neg(maximum(neg(asT(a, b)), neg(asT(b, a))));
}
function asT(x: TensorLike, other: TensorLike): Tensor {
  return x instanceof Tensor ? x : scalar(x, other instanceof Tensor ? other.dtype : "float32");
}
/** 1 where `a < b`, else 0 (in the operands' dtype). */
export function less(a: TensorLike, b: TensorLike): Tensor {
  return binary("cmplt", a, b);
}
/** 1 where `a > b`, else 0. */
export function greater(a: TensorLike, b: TensorLike): Tensor {
  return binary("cmplt", b, a);
}
/** 1 where `a <= b`, else 0. */
export function lessEqual(a: TensorLike, b: TensorLike): Tensor {
  return sub(1, greater(a, b));
}
/** 1 where `a >= b`, else 0. */
export function greaterEqual(a: TensorLike, b: TensorLike): Tensor {
  return sub(1, less(a, b));
}
/**
 * 1 where `a == b`, else 0.
 *
 * @example
 * ```ts
 * import { equal } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * await equal(tensor([1, 2]), 2).data(); // Float32Array [0, 1]
 * ```
 */
export function equal(a: TensorLike, b: TensorLike): Tensor {
  return binary("cmpeq", a, b);
}
/** 1 where `a != b`, else 0. */
export function notEqual(a: TensorLike, b: TensorLike): Tensor {
  return sub(1, equal(a, b));
}

/**
 * `cond != 0 ? a : b`, broadcasting all three.
 *
 * @example
 * ```ts
 * import { where } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * await where(tensor([1, 0]), tensor([5, 6]), 0).data(); // Float32Array [5, 0]
 * ```
 */
export function where(cond: Tensor, a: TensorLike, b: TensorLike): Tensor {
  const [x, y] = pair(a, b);
  const shape = broadcastShapes(cond.shape, x.shape);
  return apply(
    "where",
    [broadcastTo(cond, shape), broadcastTo(x, shape), broadcastTo(y, shape)],
    {},
  );
}

function unary(
  op: "neg" | "recip" | "exp" | "log" | "sqrt" | "cos" | "sin" | "acos" | "floor",
  x: Tensor,
) {
  return apply(op, [x], {});
}
/** `-x`. */
export function neg(x: Tensor): Tensor {
  return unary("neg", x);
}
/** `1 / x`. */
export function reciprocal(x: Tensor): Tensor {
  return unary("recip", x);
}
/**
 * `e ** x`.
 *
 * @example
 * ```ts
 * import { exp } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * await exp(tensor([0])).data(); // Float32Array [1]
 * ```
 */
export function exp(x: Tensor): Tensor {
  return unary("exp", x);
}
/** Natural logarithm. */
export function log(x: Tensor): Tensor {
  return unary("log", x);
}
/** Square root. */
export function sqrt(x: Tensor): Tensor {
  return unary("sqrt", x);
}
/** `1 / sqrt(x)`. */
export function rsqrt(x: Tensor): Tensor {
  return reciprocal(sqrt(x));
}
/** Cosine. */
export function cos(x: Tensor): Tensor {
  return unary("cos", x);
}
/** Sine (a primitive: `cos(x - π/2)` is 9% wrong at `sin(1e-6)` in float32). */
export function sin(x: Tensor): Tensor {
  return unary("sin", x);
}
/** Arc cosine; values outside [-1, 1] give NaN, so clamp first. */
export function acos(x: Tensor): Tensor {
  return unary("acos", x);
}
/** Rounds down (gradient zero). */
export function floor(x: Tensor): Tensor {
  return unary("floor", x);
}
/** `x * x`. */
export function square(x: Tensor): Tensor {
  return mul(x, x);
}
/**
 * `|x|`, built from a select so the gradient at 0 is 0.
 *
 * @example
 * ```ts
 * import { abs } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * await abs(tensor([-2, 3])).data(); // Float32Array [2, 3]
 * ```
 */
export function abs(x: Tensor): Tensor {
  return where(less(x, 0), neg(x), x);
}
/** -1, 0 or 1 by the sign of `x`. */
export function sign(x: Tensor): Tensor {
  return sub(greater(x, 0), less(x, 0));
}
/**
 * `max(x, 0)`, as a select (not `maximum(x, 0)`, which would split the gradient at 0).
 *
 * @example
 * ```ts
 * import { relu } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * await relu(tensor([-1, 2])).data(); // Float32Array [0, 2]
 * ```
 */
export function relu(x: Tensor): Tensor {
  return where(greater(x, 0), x, 0);
}
/** `1 / (1 + e^-x)`, saturating cleanly at both ends. */
export function sigmoid(x: Tensor): Tensor {
  return reciprocal(add(exp(neg(x)), 1));
}
/** Hyperbolic tangent, as `1 - 2 / (e^{2x} + 1)` (finite for every finite x). */
export function tanh(x: Tensor): Tensor {
  return sub(1, div(2, add(exp(mul(x, 2)), 1)));
}
/**
 * Limits values to `[lo, hi]`.
 *
 * @example
 * ```ts
 * import { clip } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * await clip(tensor([-2, 0.5, 3]), -1, 1).data(); // Float32Array [-1, 0.5, 1]
 * ```
 */
export function clip(x: Tensor, lo: number, hi: number): Tensor {
  return where(less(x, lo), lo, where(greater(x, hi), hi, x));
}
/**
 * Converts to another dtype (float to int32 truncates toward zero).
 *
 * @example
 * ```ts
 * import { cast } from "./elementwise.ts";
 * import { tensor } from "./creation.ts";
 * cast(tensor([1.5]), "int32").dtype; // "int32"
 * ```
 */
export function cast(x: Tensor, dtype: DType): Tensor {
  if (x.dtype === dtype) return x;
  return apply("cast", [x], { dtype });
}
