/**
 * Jacobians and Hessians (JAX's `jacfwd`, `jacrev`, `hessian`): `vmap` of `jvp` over the
 * inputs' basis, or of the vjp's backward function over the outputs' basis, so a Jacobian is
 * one batched program, not a loop of programs. Arguments and outputs may be pytrees: the
 * result is the output's structure with each leaf replaced by the differentiated argument's
 * structure (a list of them for several `argnums`), each block of shape
 * `[...outLeaf.shape, ...inLeaf.shape]`.
 *
 * @module
 */
import { fmtShape, isFloat, sizeOf } from "../ir/dtype.ts";
import { deferred, realizeAll, type Tensor } from "../tensor.ts";
import { iota } from "../ops/indexing.ts";
import { cast, equal } from "../ops/elementwise.ts";
import { reshape, slice, transpose } from "../ops/movement.ts";
import { flatten, type TreeDef, unflatten } from "../tree/pytree.ts";
import { type ArgGrads, type ArgnumsOf, jvp, vjp } from "./transforms.ts";
import { vmap } from "./vmap.ts";
import { zeros } from "../ops/creation.ts";

/** Options of the Jacobian transforms. */
export interface JacobianOptions {
  /**
   * The argument(s) to differentiate (default 0), like `grad`'s: one index gives each block
   * the argument's structure, a list gives a list of them. Their leaves must be float tensors.
   */
  argnums?: number | readonly number[];
}

/**
 * The Jacobian's type: `R` (the function's output) with every tensor replaced by `In` (the
 * differentiated argument's type, or a tuple of them).
 */
export type JacobianOf<R, In> = R extends Tensor ? In
  : R extends readonly unknown[] ? { -readonly [K in keyof R]: JacobianOf<R[K], In> }
  : R extends Record<string, unknown> ? { [K in keyof R]: JacobianOf<R[K], In> }
  : R;

/** The differentiated leaves of `args` at `argnums`, checked to be float tensors. */
interface Inputs {
  ks: number[];
  single: boolean;
  defs: TreeDef[];
  /** Per argnum, its leaves. */
  leaves: Tensor[][];
}

function inputsOf(
  args: readonly unknown[],
  argnums: number | readonly number[] | undefined,
  what: string,
): Inputs {
  const single = typeof argnums !== "object";
  const ks = argnums === undefined ? [0] : typeof argnums === "number" ? [argnums] : [...argnums];
  if (ks.length === 0) throw new RangeError(`${what}: argnums is an empty list`);
  if (new Set(ks).size !== ks.length) {
    throw new RangeError(`${what}: argnums [${ks}] names an argument twice`);
  }
  const defs: TreeDef[] = [], leaves: Tensor[][] = [];
  for (const k of ks) {
    if (!Number.isInteger(k) || k < 0 || k >= args.length) {
      throw new RangeError(`${what}: argnums ${k} is out of range for ${args.length} arguments`);
    }
    const fl = flatten(args[k]);
    if (fl.leaves.length === 0) {
      throw new TypeError(`${what}: argument ${k} holds no tensor, got ${typeof args[k]}`);
    }
    fl.leaves.forEach((l, i) => {
      if (!isFloat(l.dtype)) {
        throw new TypeError(
          `${what}: leaf ${i} of argument ${k} is ${l.dtype}${
            fmtShape(l.shape)
          }: Jacobians need float inputs`,
        );
      }
    });
    defs.push(fl.def);
    leaves.push(fl.leaves);
  }
  return { ks, single, defs, leaves };
}

/** The function's output leaves, checked to be float tensors. */
function outputsOf(y: unknown, what: string): { def: TreeDef; leaves: Tensor[] } {
  const fl = flatten(y);
  if (fl.leaves.length === 0) {
    throw new TypeError(`${what}: the function must return tensors, got ${typeof y}`);
  }
  fl.leaves.forEach((l, i) => {
    if (!isFloat(l.dtype)) {
      throw new TypeError(
        `${what}: output leaf ${i} is ${l.dtype}${fmtShape(l.shape)}: Jacobians need float outputs`,
      );
    }
  });
  return fl;
}

/**
 * The identity over `leaves` laid end to end, one `[n, ...leaf.shape]` block per leaf in its
 * dtype (n the total size): row r of the blocks together is the r-th unit vector.
 */
function basis(leaves: readonly Tensor[]): Tensor[] {
  const n = leaves.reduce((a, l) => a + l.size, 0);
  const eye = equal(iota([n, n], 0, "int32"), iota([n, n], 1, "int32"));
  let at = 0;
  return leaves.map((l) => {
    const block = slice(eye, [0, at], [n, at + l.size]);
    at += l.size;
    return reshape(cast(block, l.dtype), [n, ...l.shape]);
  });
}

/** Offsets of leaves laid end to end. */
function offsets(shapes: readonly (readonly number[])[]): number[] {
  let at = 0;
  return shapes.map((s) => (at += sizeOf(s)) - sizeOf(s));
}

/** Rows `[from, from + size(shape))` of `t` (leading axis), the leading axis moved last. */
function rowsLast(t: Tensor, from: number, shape: readonly number[]): Tensor {
  const m = sizeOf(shape);
  const rows = slice(t, [from, ...t.shape.slice(1).map(() => 0)], [from + m, ...t.shape.slice(1)]);
  const rank = rows.ndim;
  const moved = transpose(rows, [...Array.from({ length: rank - 1 }, (_, i) => i + 1), 0]);
  return reshape(moved, [...t.shape.slice(1), ...shape]);
}

/** Rows `[from, from + size(shape))` of `t` (leading axis), as `[...shape, ...rest]`. */
function rowsFirst(t: Tensor, from: number, shape: readonly number[]): Tensor {
  const m = sizeOf(shape);
  const rows = slice(t, [from, ...t.shape.slice(1).map(() => 0)], [from + m, ...t.shape.slice(1)]);
  return reshape(rows, [...shape, ...t.shape.slice(1)]);
}

/** The Jacobian's pytree from its blocks: `block(j, a, i)` for out leaf j, argnum a, leaf i. */
function assemble(
  out: { def: TreeDef; leaves: Tensor[] },
  ins: Inputs,
  block: (j: number, a: number, i: number) => Tensor,
): unknown {
  return unflatten(
    out.def,
    out.leaves.map((_, j) => {
      const trees = ins.defs.map((def, a) =>
        unflatten(def, ins.leaves[a].map((_, i) => block(j, a, i)))
      );
      return ins.single ? trees[0] : trees;
    }),
  );
}

/**
 * The Jacobian of `f` by forward mode: one `jvp` per input element, batched by `vmap`. For a
 * tensor argument and output, `jacfwd(f)(x)` has shape `[...out.shape, ...x.shape]`; for
 * pytrees, see the module documentation. Best when the input is smaller than the output.
 *
 * @example
 * ```ts
 * import { jacfwd } from "./jacobian.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import type { Tensor } from "../tensor.ts";
 * const j = jacfwd((x: Tensor) => mul(x, x))(tensor([1, 2]));
 * await j.data(); // Float32Array [2, 0, 0, 4]
 * const p = jacfwd((q: { a: Tensor; b: Tensor }) => mul(q.a, q.b))({
 *   a: tensor([1, 2]),
 *   b: tensor([3, 4]),
 * });
 * await p.b.data(); // Float32Array [1, 0, 0, 2]: d(a*b)/db = diag(a)
 * ```
 */
export function jacfwd<A extends unknown[], R, const O extends JacobianOptions = { argnums: 0 }>(
  f: (...args: A) => R,
  options?: O,
): (...args: A) => JacobianOf<R, ArgGrads<A, ArgnumsOf<O>>> {
  return (...args: A) =>
    realizeJacobian(() => jacfwdAt(f, args, options?.argnums)) as JacobianOf<
      R,
      ArgGrads<A, ArgnumsOf<O>>
    >;
}

/** Traces a Jacobian's blocks without running anything, realizes them as one program, nests them. */
function realizeJacobian(
  trace: () => [{ def: TreeDef; leaves: Tensor[] }, Inputs, Tensor[]],
): unknown {
  const [out, ins, flat] = deferred(trace);
  const realized = realizeAll(flat);
  let at = 0;
  return assemble(out, ins, () => realized[at++]);
}

function jacfwdAt<A extends unknown[], R>(
  f: (...args: A) => R,
  args: A,
  argnums: number | readonly number[] | undefined,
): [{ def: TreeDef; leaves: Tensor[] }, Inputs, Tensor[]] {
  const ins = inputsOf(args, argnums, "jacfwd");
  // The differentiated leaves in argument order (jvp's tangent order), with their basis rows.
  const byArg = ins.ks.map((k, a) => ({ k, a })).sort((x, y) => x.k - y.k);
  const inOrder = byArg.flatMap(({ a }) => ins.leaves[a]);
  const offs = offsets(inOrder.map((l) => l.shape));
  const offOf = new Map<string, number>();
  let n = 0;
  for (const { a } of byArg) ins.leaves[a].forEach((_, i) => offOf.set(`${a},${i}`, offs[n++]));
  let out: { def: TreeDef; leaves: Tensor[] } | null = null;
  const column = (tans: unknown) => {
    const ts = tans as Tensor[];
    let at = 0;
    const tangents = args.map((arg, k) => {
      const fl = flatten(arg);
      if (ins.ks.includes(k)) return unflatten(fl.def, fl.leaves.map(() => ts[at++]));
      return unflatten(fl.def, fl.leaves.map((l) => zeros(l.shape, { dtype: l.dtype })));
    }) as A;
    const [y, dy] = jvp(f, args, tangents);
    out ??= outputsOf(y, "jacfwd");
    return flatten(dy).leaves;
  };
  const cols = vmap(column)(basis(inOrder)) as Tensor[]; // per output leaf: [n, ...out]
  const flat: Tensor[] = [];
  out!.leaves.forEach((_, j) =>
    ins.leaves.forEach((ls, a) =>
      ls.forEach((l, i) => flat.push(rowsLast(cols[j], offOf.get(`${a},${i}`)!, l.shape)))
    )
  );
  return [out!, ins, flat];
}

/**
 * The Jacobian of `f` by reverse mode: one backward pass per output element, batched by
 * `vmap` over the vjp's backward function (the forward pass runs once). For a tensor argument
 * and output, `jacrev(f)(x)` has shape `[...out.shape, ...x.shape]`; for pytrees, see the
 * module documentation. Best when the output is smaller.
 *
 * @example
 * ```ts
 * import { jacrev } from "./jacobian.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul, sin } from "../ops/elementwise.ts";
 * import type { Tensor } from "../tensor.ts";
 * const j = jacrev((x: Tensor) => mul(x, x))(tensor([1, 2]));
 * await j.data(); // Float32Array [2, 0, 0, 4]
 * const both = jacrev((x: Tensor, y: Tensor) => [mul(x, y), sin(y)], { argnums: [0, 1] })(
 *   tensor([1]),
 *   tensor([0]),
 * );
 * await both[1][1].data(); // Float32Array [1]: d sin(y)/dy at 0
 * ```
 */
export function jacrev<A extends unknown[], R, const O extends JacobianOptions = { argnums: 0 }>(
  f: (...args: A) => R,
  options?: O,
): (...args: A) => JacobianOf<R, ArgGrads<A, ArgnumsOf<O>>> {
  return (...args: A) =>
    realizeJacobian(() => jacrevAt(f, args, options?.argnums)) as JacobianOf<
      R,
      ArgGrads<A, ArgnumsOf<O>>
    >;
}

function jacrevAt<A extends unknown[], R>(
  f: (...args: A) => R,
  args: A,
  argnums: number | readonly number[] | undefined,
): [{ def: TreeDef; leaves: Tensor[] }, Inputs, Tensor[]] {
  const ins = inputsOf(args, argnums, "jacrev");
  const [y, back] = vjp(f, args);
  const out = outputsOf(y, "jacrev");
  const outShapes = out.leaves.map((l) => l.shape);
  const row = (cts: unknown) => {
    const grads = back(unflatten<R>(out.def, cts as Tensor[])) as unknown[];
    return ins.ks.flatMap((k, a) => {
      const g = flatten(grads[k]).leaves;
      if (g.length !== ins.leaves[a].length) {
        throw new Error(`jacrev: ${g.length} cotangents for ${ins.leaves[a].length} leaves`);
      }
      return g;
    });
  };
  const rows = vmap(row)(basis(out.leaves)) as Tensor[]; // per input leaf: [m, ...in]
  const offs = offsets(outShapes);
  const flat: Tensor[] = [];
  out.leaves.forEach((o, j) => {
    let at = 0;
    ins.leaves.forEach((ls) =>
      ls.forEach(() => flat.push(rowsFirst(rows[at++], offs[j], o.shape)))
    );
  });
  return [out, ins, flat];
}

/**
 * The Hessian of a scalar function (`jacfwd(jacrev(f))`, forward over reverse): for a tensor
 * argument, `hessian(f)(x)` has shape `[...x.shape, ...x.shape]`; for a pytree argument (or
 * several `argnums`) a block per pair of leaves, nested like JAX's. Every output leaf must
 * hold one value (a pytree of scalars gives a pytree of Hessians).
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
 * const hp = hessian((p: { a: Tensor; b: Tensor }) => sum(mul(p.a, p.b)))({
 *   a: tensor([1]),
 *   b: tensor([2]),
 * });
 * await hp.a.b.data(); // Float32Array [1]: d2(ab)/da db
 * ```
 */
export function hessian<A extends unknown[], R, const O extends JacobianOptions = { argnums: 0 }>(
  f: (...args: A) => R,
  options?: O,
): (...args: A) => JacobianOf<JacobianOf<R, ArgGrads<A, ArgnumsOf<O>>>, ArgGrads<A, ArgnumsOf<O>>> {
  const scalarOut = (...args: A) => {
    const y = flatten(f(...args));
    return unflatten<R>(
      y.def,
      y.leaves.map((l) => {
        if (l.size !== 1) {
          throw new TypeError(
            `hessian: the function must return scalars, got ${fmtShape(l.shape)}`,
          );
        }
        return reshape(l, []);
      }),
    );
  };
  const argnums = options?.argnums ?? 0;
  return jacfwd(jacrev(scalarOut, { argnums }), { argnums }) as (
    ...args: A
  ) => JacobianOf<JacobianOf<R, ArgGrads<A, ArgnumsOf<O>>>, ArgGrads<A, ArgnumsOf<O>>>;
}
