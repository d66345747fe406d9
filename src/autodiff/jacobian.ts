/**
 * Jacobians and Hessians (JAX's `jacfwd`, `jacrev`, `hessian`): `vmap` of `jvp` over the
 * input's basis, or of the vjp's backward function over the output's basis, so a Jacobian is
 * one batched program, not a loop of programs.
 *
 * @module
 */
import { fmtShape, sizeOf } from "../ir/dtype.ts";
import { deferred, realizeAll, Tensor } from "../tensor.ts";
import { iota } from "../ops/indexing.ts";
import { cast, equal } from "../ops/elementwise.ts";
import { reshape, transpose } from "../ops/movement.ts";
import { jvp, vjp } from "./transforms.ts";
import { vmap } from "./vmap.ts";
import { zeros } from "../ops/creation.ts";

/** Options of the Jacobian transforms. */
export interface JacobianOptions {
  /** The argument to differentiate (default 0); it must be one float tensor. */
  argnums?: number;
}

/** The identity of `n` as a `[n, ...shape]` basis in `like`'s dtype. */
function basis(shape: readonly number[], like: Tensor): Tensor {
  const n = sizeOf(shape);
  const eye = cast(equal(iota([n, n], 0, "int32"), iota([n, n], 1, "int32")), like.dtype);
  return reshape(eye, [n, ...shape]);
}

function argOf(args: readonly unknown[], k: number, what: string): Tensor {
  if (!Number.isInteger(k) || k < 0 || k >= args.length) {
    throw new RangeError(`${what}: argnums ${k} is out of range for ${args.length} arguments`);
  }
  const x = args[k];
  if (!(x instanceof Tensor)) {
    throw new TypeError(`${what}: argument ${k} must be a tensor, got ${typeof x}`);
  }
  return x;
}

function outOf(y: unknown, what: string): Tensor {
  if (!(y instanceof Tensor)) {
    throw new TypeError(`${what}: the function must return one tensor, got ${typeof y}`);
  }
  return y;
}

/**
 * The Jacobian of `f` by forward mode: `jacfwd(f)(x)` has shape `[...out.shape,
 * ...x.shape]`, one `jvp` per input element, batched by `vmap`. Best when the input is
 * smaller than the output.
 *
 * @example
 * ```ts
 * import { jacfwd } from "./jacobian.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import type { Tensor } from "../tensor.ts";
 * const j = jacfwd((x: Tensor) => mul(x, x))(tensor([1, 2]));
 * await j.data(); // Float32Array [2, 0, 0, 4]
 * ```
 */
export function jacfwd<A extends unknown[]>(
  f: (...args: A) => Tensor,
  options: JacobianOptions = {},
): (...args: A) => Tensor {
  const k = options.argnums ?? 0;
  return (...args: A) => realizeAll([deferred(() => jacfwdAt(f, args, k))])[0];
}

function jacfwdAt<A extends unknown[]>(f: (...args: A) => Tensor, args: A, k: number): Tensor {
  const x = argOf(args, k, "jacfwd");
  const tangentsFor = (t: Tensor) => args.map((a, i) => i === k ? t : zerosLike(a)) as A;
  const column = (t: unknown) => outOf(jvp(f, args, tangentsFor(t as Tensor))[1], "jacfwd");
  const cols = vmap(column)(basis(x.shape, x)); // [n, ...out]
  const outRank = cols.ndim - 1;
  const perm = [...Array.from({ length: outRank }, (_, i) => i + 1), 0];
  return reshape(transpose(cols, perm), [...cols.shape.slice(1), ...x.shape]);
}

function zerosLike(a: unknown): unknown {
  if (a instanceof Tensor) return zeros(a.shape, { dtype: a.dtype });
  throw new TypeError(
    `jacfwd: every argument must be a tensor (forward mode needs a tangent for each), got ${typeof a}`,
  );
}

/**
 * The Jacobian of `f` by reverse mode: `jacrev(f)(x)` has shape `[...out.shape,
 * ...x.shape]`, one backward pass per output element, batched by `vmap` over the vjp's
 * backward function (the forward pass runs once). Best when the output is smaller.
 *
 * @example
 * ```ts
 * import { jacrev } from "./jacobian.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import type { Tensor } from "../tensor.ts";
 * const j = jacrev((x: Tensor) => mul(x, x))(tensor([1, 2]));
 * await j.data(); // Float32Array [2, 0, 0, 4]
 * ```
 */
export function jacrev<A extends unknown[]>(
  f: (...args: A) => Tensor,
  options: JacobianOptions = {},
): (...args: A) => Tensor {
  const k = options.argnums ?? 0;
  return (...args: A) => realizeAll([deferred(() => jacrevAt(f, args, k))])[0];
}

function jacrevAt<A extends unknown[]>(f: (...args: A) => Tensor, args: A, k: number): Tensor {
  const x = argOf(args, k, "jacrev");
  const [y, back] = vjp(f, args);
  const out = outOf(y, "jacrev");
  const rows = vmap((ct: unknown) => back(ct as Tensor)[k] as Tensor)(basis(out.shape, out));
  if (rows.shape.slice(1).join() !== x.shape.join()) {
    throw new Error(`jacrev: rows of ${fmtShape(rows.shape)} for input ${fmtShape(x.shape)}`);
  }
  return reshape(rows, [...out.shape, ...x.shape]);
}

/**
 * The Hessian of a scalar function: `hessian(f)(x)` has shape `[...x.shape, ...x.shape]`
 * (`jacfwd(jacrev(f))`, forward over reverse).
 *
 * @example
 * ```ts
 * import { hessian } from "./jacobian.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import { sum } from "../ops/reduce.ts";
 * import type { Tensor } from "../tensor.ts";
 * const h = hessian((x: Tensor) => sum(mul(mul(x, x), x)))(tensor([1, 2]));
 * await h.data(); // Float32Array [6, 0, 0, 12]
 * ```
 */
export function hessian<A extends unknown[]>(
  f: (...args: A) => Tensor,
  options: JacobianOptions = {},
): (...args: A) => Tensor {
  const k = options.argnums ?? 0;
  const scalarOut = (...args: A) => {
    const y = f(...args);
    if (y.size !== 1) {
      throw new TypeError(`hessian: the function must return a scalar, got ${fmtShape(y.shape)}`);
    }
    return reshape(y, []);
  };
  return jacfwd(jacrev(scalarOut, { argnums: k }), { argnums: k });
}
