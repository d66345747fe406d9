/**
 * The transforms: `vjp`, `valueAndGrad`, `grad` (built on each other, as in JAX) and `jvp`,
 * all over pytrees. Each traces the function with placeholders, walks the graph backwards
 * with one rule per primitive, substitutes the real inputs back and computes the results as
 * one program.
 *
 * @module
 */
import { isFloat } from "../ir/dtype.ts";
import { makeNode, type Node, topoSort } from "../ir/node.ts";
import { substitute } from "../ir/graph.ts";
import { deferred, realizeAll, Tensor } from "../tensor.ts";
import { add } from "../ops/elementwise.ts";
import { zeros } from "../ops/creation.ts";
import { flatten, unflatten } from "../tree/pytree.ts";
import { VJP_RULES } from "./vjp_rules.ts";

let traceCounter = 0;

/** A fresh placeholder shaped like `t`. */
export function placeholder(t: Tensor, prefix = "t"): Tensor {
  return new Tensor(
    makeNode("var", [], { id: `${prefix}${traceCounter++}`, shape: t.shape, dtype: t.dtype }),
  );
}

/**
 * Cotangents of `wrt` given cotangents `cts` of `outputs`: the reverse walk. Returns null for
 * a node no gradient reaches. Rules are told which inputs need a cotangent (those on a path
 * to `wrt`), and build only those.
 */
export function backprop(
  outputs: readonly Node[],
  cts: readonly Tensor[],
  wrt: readonly Node[],
): (Tensor | null)[] {
  return deferred(() => reverseWalk(outputs, cts, wrt));
}

function reverseWalk(
  outputs: readonly Node[],
  cts: readonly Tensor[],
  wrt: readonly Node[],
): (Tensor | null)[] {
  const targets = new Set(wrt);
  const order = topoSort(outputs);
  // Only nodes that depend on a target carry gradients.
  const live = new Set<Node>();
  for (const n of order) {
    if (targets.has(n) || n.inputs.some((x) => live.has(x))) live.add(n);
  }
  const acc = new Map<Node, Tensor>();
  const accumulate = (n: Node, g: Tensor) => {
    const have = acc.get(n);
    acc.set(n, have === undefined ? g : add(have, g));
  };
  outputs.forEach((o, i) => {
    if (live.has(o)) accumulate(o, cts[i]);
  });
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    const ct = acc.get(node);
    if (ct === undefined || targets.has(node) || node.inputs.length === 0) continue;
    if (!isFloat(node.dtype)) continue;
    const rule = VJP_RULES[node.op] as (
      ct: Tensor,
      inputs: Tensor[],
      out: Tensor,
      node: Node,
      need: readonly boolean[],
    ) => (Tensor | null)[];
    const need = node.inputs.map((x) => live.has(x) && isFloat(x.dtype));
    const grads = rule(ct, node.inputs.map((x) => new Tensor(x)), new Tensor(node), node, need);
    node.inputs.forEach((x, k) => {
      const g = grads[k];
      if (g !== null && g !== undefined && live.has(x) && isFloat(x.dtype)) accumulate(x, g);
    });
    acc.delete(node);
  }
  return wrt.map((w) => acc.get(w) ?? null);
}

/** Options of the differentiating transforms. */
export interface GradOptions {
  /** Which positional arguments to differentiate (default 0). */
  argnums?: number | readonly number[];
  /** `f` returns `[output, aux]`; aux is passed through undifferentiated. */
  hasAux?: boolean;
}

/**
 * The gradient type for `argnums` `N` of arguments `A`: the argument's own type (a pytree
 * shaped like it; int32 leaves become null) for one argument, a tuple for a list.
 */
export type ArgGrads<A extends readonly unknown[], N> = N extends readonly number[]
  ? { -readonly [K in keyof N]: A[N[K] & number] }
  : N extends number ? A[N]
  : A[0];

/** The aux value of a function returning `[output, aux]`. */
export type AuxOf<R> = R extends readonly [unknown, infer X] ? X : never;

/** The `argnums` of options `O` (0 when absent). */
export type ArgnumsOf<O> = O extends { argnums: infer N } ? N : 0;

interface Traced {
  /** Output leaves over placeholders. */
  outLeaves: Tensor[];
  outDef: ReturnType<typeof flatten>["def"];
  aux: unknown;
  /** Per differentiated argument: its leaves, their placeholders (null for int leaves). */
  argLeaves: Tensor[][];
  argVars: (Tensor | null)[][];
  argDefs: ReturnType<typeof flatten>["def"][];
  /** placeholder node -> real leaf node */
  binding: Map<Node, Node>;
}

function trace(
  f: (...args: never[]) => unknown,
  args: readonly unknown[],
  argnums: readonly number[],
  hasAux: boolean,
): Traced {
  const binding = new Map<Node, Node>();
  const callArgs = [...args];
  const argLeaves: Tensor[][] = [], argVars: (Tensor | null)[][] = [], argDefs = [];
  for (const k of argnums) {
    if (!Number.isInteger(k) || k < 0 || k >= args.length) {
      throw new RangeError(`argnums ${k} is out of range for ${args.length} arguments`);
    }
    const { leaves, def } = flatten(args[k]);
    const vars = leaves.map((l) => {
      if (!isFloat(l.dtype)) return null;
      const v = placeholder(l);
      binding.set(v.node, l.node);
      return v;
    });
    argLeaves.push(leaves);
    argVars.push(vars);
    argDefs.push(def);
    callArgs[k] = unflatten(def, vars.map((v, i) => v ?? leaves[i]));
  }
  let result = deferred(() => (f as (...a: unknown[]) => unknown)(...callArgs));
  let aux: unknown = undefined;
  if (hasAux) {
    if (!Array.isArray(result) || result.length !== 2) {
      throw new TypeError(
        `hasAux: the function must return [output, aux], got ${
          Array.isArray(result) ? `an array of ${result.length}` : typeof result
        }`,
      );
    }
    [result, aux] = result;
  }
  const { leaves: outLeaves, def: outDef } = flatten(result);
  return { outLeaves, outDef, aux, argLeaves, argVars, argDefs, binding };
}

function argnumList(argnums: number | readonly number[] | undefined): number[] {
  return argnums === undefined ? [0] : typeof argnums === "number" ? [argnums] : [...argnums];
}

/** Substitutes the real inputs back and realizes everything in one program. */
function finish(t: Traced, tensors: readonly Tensor[]): Tensor[] {
  const nodes = substitute(tensors.map((x) => x.node), t.binding);
  return realizeAll(nodes.map((n) => new Tensor(n)));
}

/** Gradients of the float leaves of the differentiated arguments, in leaf order. */
function gradsTree(t: Traced, cts: readonly Tensor[]): Tensor[] {
  const wrt: Node[] = [];
  const like: Tensor[] = [];
  t.argVars.forEach((vs) =>
    vs.forEach((v) => {
      if (v === null) return;
      wrt.push(v.node);
      like.push(v);
    })
  );
  const g = backprop(t.outLeaves.map((o) => o.node), cts, wrt);
  return g.map((x, i) => x ?? zeros(like[i].shape, { dtype: like[i].dtype }));
}

/** Gradient pytrees from the float-leaf gradients; int32 leaves get null. */
function rebuild(t: Traced, flat: readonly Tensor[], single: boolean): unknown {
  let at = 0;
  const trees = t.argDefs.map((def, a) =>
    unflatten(def, t.argVars[a].map((v) => v === null ? null : flat[at++]))
  );
  return single ? trees[0] : trees;
}

/** Ops that only move or view memory: a residual behind them is taken at their input. */
const VIEWS = new Set(["reshape", "broadcast", "permute", "slice", "pad", "flip", "stopGradient"]);

/**
 * The residuals of a graph split into known and unknown parts: the nodes computable from the
 * known values alone (no node of `unknowns` upstream) that the unknown part reads, looked
 * through views (a broadcast input is kept, not the broadcast). Realizing them once lets the
 * unknown part run later without recomputing the known part (JAX's partial evaluation).
 */
export function residualsOf(outputs: readonly Node[], unknowns: ReadonlySet<Node>): Node[] {
  const dep = new Set<Node>();
  const order = topoSort(outputs);
  for (const n of order) if (unknowns.has(n) || n.inputs.some((x) => dep.has(x))) dep.add(n);
  const res = new Set<Node>();
  const take = (x: Node): void => {
    if (x.op === "var" || x.op === "const" || x.symbolic || res.has(x)) return;
    if (VIEWS.has(x.op)) {
      for (const y of x.inputs) take(y);
      return;
    }
    res.add(x);
  };
  for (const n of order) {
    if (!dep.has(n)) continue;
    for (const x of n.inputs) if (!dep.has(x)) take(x);
  }
  return [...res];
}

/**
 * Evaluates `f` and returns its output with a function mapping output cotangents to input
 * cotangents (one pytree per argument, shaped like it; int32 leaves get null). The forward
 * values the backward pass needs are computed with the output, in one program, and kept:
 * calling the backward function runs only the backward part.
 *
 * @example
 * ```ts
 * import { vjp } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * const [y, back] = vjp((x: any) => mul(x, x), [tensor([3])]);
 * const [dx] = back(tensor([1]));
 * await dx.data(); // Float32Array [6]
 * ```
 */
export function vjp<A extends unknown[], R>(
  f: (...args: A) => [R, unknown],
  primals: A,
  options: { hasAux: true },
): [R, (cotangents: R) => A, unknown];
/** Without `hasAux`. */
export function vjp<A extends unknown[], R>(
  f: (...args: A) => R,
  primals: A,
  options?: { hasAux?: false },
): [R, (cotangents: R) => A];
export function vjp<A extends unknown[], R>(
  f: (...args: A) => R,
  primals: A,
  options: { hasAux?: boolean } = {},
): [R, (cotangents: R) => A] | [R, (cotangents: R) => A, unknown] {
  const argnums = primals.map((_, i) => i);
  const t = trace(f as (...args: never[]) => unknown, primals, argnums, options.hasAux ?? false);
  const us = t.outLeaves.map((o) => placeholder(o, "u"));
  const grads = gradsTree(t, us);
  const residuals = residualsOf(grads.map((g) => g.node), new Set(us.map((u) => u.node)));
  const auxLeaves = options.hasAux ? flatten(t.aux) : null;
  const nOut = t.outLeaves.length, nRes = residuals.length;
  const all = finish(t, [
    ...t.outLeaves,
    ...residuals.map((r) => new Tensor(r)),
    ...(auxLeaves?.leaves ?? []),
  ]);
  const out = unflatten<R>(t.outDef, all.slice(0, nOut));
  const saved = new Map<Node, Node>();
  residuals.forEach((r, i) => saved.set(r, all[nOut + i].node));
  const back = (cotangents: R): A => {
    const cts = flatten(cotangents).leaves;
    if (cts.length !== nOut) {
      throw new TypeError(`vjp: expected ${nOut} cotangents, got ${cts.length}`);
    }
    cts.forEach((c, i) => {
      const o = t.outLeaves[i];
      if (c.shape.join() !== o.shape.join()) {
        throw new RangeError(
          `vjp: cotangent ${i} has shape [${c.shape}], expected [${o.shape}] like the output`,
        );
      }
    });
    const map = new Map(saved);
    us.forEach((u, i) => map.set(u.node, cts[i].node));
    for (const [k, v] of t.binding) map.set(k, v);
    const nodes = substitute(grads.map((g) => g.node), map);
    const flat = realizeAll(nodes.map((n) => new Tensor(n)));
    return rebuild(t, flat, false) as A;
  };
  if (auxLeaves) {
    return [out, back, unflatten(auxLeaves.def, all.slice(nOut + nRes))];
  }
  return [out, back];
}

/**
 * Turns `f` (returning a scalar) into a function returning `[value, gradients]`, the
 * gradients a pytree shaped like the argument (or a list, for several `argnums`). With
 * `hasAux`, it returns `[[value, aux], gradients]`. Value, gradients and aux are computed
 * in one program.
 *
 * @example
 * ```ts
 * import { valueAndGrad } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import { sum } from "../ops/reduce.ts";
 * import type { Tensor } from "../tensor.ts";
 * const f = (p: { w: Tensor }) => sum(mul(p.w, p.w));
 * const [v, g] = valueAndGrad(f)({ w: tensor([1, 2]) });
 * await v.data();   // Float32Array [5]
 * await g.w.data(); // Float32Array [2, 4]
 * ```
 */
export function valueAndGrad<
  A extends unknown[],
  R,
  const O extends GradOptions & { hasAux: true },
>(
  f: (...args: A) => R,
  options: O,
): (...args: A) => [[Tensor, AuxOf<R>], ArgGrads<A, ArgnumsOf<O>>];
/** Without `hasAux`: `[value, gradients]`. */
export function valueAndGrad<
  A extends unknown[],
  const O extends GradOptions & { hasAux?: false } = Record<never, never>,
>(
  f: (...args: A) => Tensor,
  options?: O,
): (...args: A) => [Tensor, ArgGrads<A, ArgnumsOf<O>>];
/** `hasAux` known only at run time: `[value, gradients]` or `[[value, aux], gradients]`. */
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options?: GradOptions,
): (...args: A) => [Tensor | [Tensor, unknown], unknown];
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options: GradOptions = {},
): (...args: A) => [Tensor | [Tensor, unknown], unknown] {
  const argnums = argnumList(options.argnums);
  const hasAux = options.hasAux ?? false;
  return (...args: A) => {
    const t = trace(f as (...args: never[]) => unknown, args, argnums, hasAux);
    if (t.outLeaves.length !== 1 || t.outLeaves[0].size !== 1) {
      throw new TypeError(
        `grad: the function must return a scalar, got ${t.outLeaves.map(String).join(", ")}`,
      );
    }
    const value = t.outLeaves[0];
    if (!isFloat(value.dtype)) {
      throw new TypeError(`grad: output must be float, got ${value.dtype}`);
    }
    const seed = new Tensor(
      makeNode("reshape", [makeNode("scalar", [], { value: 1, dtype: value.dtype })], {
        shape: value.shape,
      }),
    );
    const grads = gradsTree(t, [seed]);
    const auxLeaves = hasAux ? flatten(t.aux) : null;
    const all = finish(t, [value, ...grads, ...(auxLeaves?.leaves ?? [])]);
    const g = rebuild(t, all.slice(1, 1 + grads.length), typeof options.argnums !== "object");
    if (auxLeaves) {
      const aux = unflatten(auxLeaves.def, all.slice(1 + grads.length));
      return [[all[0], aux], g];
    }
    return [all[0], g];
  };
}

/**
 * Turns `f` (returning a scalar) into a function returning its gradient with respect to
 * the argument(s) `argnums`: a pytree shaped like the argument, typed like it. With
 * `hasAux` (`f` returns `[scalar, aux]`), it returns `[gradients, aux]`.
 *
 * @example
 * ```ts
 * import { grad } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import { sum } from "../ops/reduce.ts";
 * import type { Tensor } from "../tensor.ts";
 * const dx = grad((x: Tensor) => sum(mul(x, x)))(tensor([3]));
 * await dx.data(); // Float32Array [6]
 * const [g, aux] = grad((x: Tensor) => [sum(x), { n: 3 }] as const, { hasAux: true })(tensor([1]));
 * aux.n; // 3
 * ```
 */
export function grad<A extends unknown[], R, const O extends GradOptions & { hasAux: true }>(
  f: (...args: A) => R,
  options: O,
): (...args: A) => [ArgGrads<A, ArgnumsOf<O>>, AuxOf<R>];
/** Without `hasAux`: the gradients. */
export function grad<
  A extends unknown[],
  const O extends GradOptions & { hasAux?: false } = Record<never, never>,
>(
  f: (...args: A) => Tensor,
  options?: O,
): (...args: A) => ArgGrads<A, ArgnumsOf<O>>;
/** `hasAux` known only at run time. */
export function grad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options?: GradOptions,
): (...args: A) => unknown;
export function grad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options: GradOptions = {},
): (...args: A) => unknown {
  const vg = valueAndGrad(f, options);
  if (options.hasAux) {
    return (...args: A) => {
      const [[, aux], g] = vg(...args) as [[Tensor, unknown], unknown];
      return [g, aux];
    };
  }
  return (...args: A) => vg(...args)[1];
}

/** A traced linear map: tangent placeholders, output tangents, and what to bind. */
interface Linear {
  tanVars: Tensor[];
  /** Per primal leaf: its tangent placeholder, or null for int32 leaves. */
  perLeaf: (Tensor | null)[];
  t: Traced;
  dOut: Tensor[];
}

/** The jvp of `f` at `primals` with tangent placeholders, as a graph (transpose of the vjp). */
function linearTrace(f: (...args: never[]) => unknown, primals: readonly unknown[]): Linear {
  const argnums = primals.map((_, i) => i);
  const t = trace(f, primals, argnums, false);
  const us = t.outLeaves.map((o) => placeholder(o, "u"));
  const wrt: Node[] = [];
  const tanVars: Tensor[] = [];
  const perLeaf: (Tensor | null)[] = [];
  t.argVars.forEach((vs) =>
    vs.forEach((v) => {
      if (v === null) {
        perLeaf.push(null);
        return;
      }
      const tan = placeholder(v, "d");
      wrt.push(v.node);
      tanVars.push(tan);
      perLeaf.push(tan);
    })
  );
  const g = backprop(t.outLeaves.map((o) => o.node), us, wrt);
  const pairs = g.map((x, i) => [x, tanVars[i]] as const).filter(([x]) => x !== null);
  const jt = backprop(
    pairs.map(([x]) => x!.node),
    pairs.map(([, tan]) => tan),
    us.map((u) => u.node),
  );
  const dOut = jt.map((x, i) => x ?? zeros(t.outLeaves[i].shape, { dtype: t.outLeaves[i].dtype }));
  return { tanVars, perLeaf, t, dOut };
}

function tangentLeaves(primals: readonly unknown[], tangents: readonly unknown[]): Tensor[] {
  if (tangents.length !== primals.length) {
    throw new TypeError(
      `jvp: ${tangents.length} tangents for ${primals.length} primals (one per argument)`,
    );
  }
  return tangents.flatMap((tree) => flatten(tree).leaves);
}

function bindTangents(lin: Linear, tanLeaves: readonly Tensor[], map: Map<Node, Node>): void {
  if (tanLeaves.length !== lin.perLeaf.length) {
    throw new TypeError(
      `jvp: tangents and primals differ in structure (${tanLeaves.length} and ${lin.perLeaf.length} leaves)`,
    );
  }
  lin.perLeaf.forEach((v, i) => {
    if (v === null) return;
    const tan = tanLeaves[i];
    if (tan.shape.join() !== v.shape.join() || tan.dtype !== v.dtype) {
      throw new RangeError(
        `jvp: tangent leaf ${i} is ${tan.dtype}[${tan.shape}], expected ${v.dtype}[${v.shape}] like its primal`,
      );
    }
    map.set(v.node, tan.node);
  });
}

/**
 * Forward mode: the output of `f` at `primals` and its derivative along `tangents`
 * (pytrees shaped like the primals), computed in one program. It is the transpose of the
 * vjp, which is linear in the cotangent, so every primitive needs only its vjp rule.
 *
 * @example
 * ```ts
 * import { jvp } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import type { Tensor } from "../tensor.ts";
 * const [y, dy] = jvp((x: Tensor) => mul(x, x), [tensor([3])], [tensor([1])]);
 * await dy.data(); // Float32Array [6]
 * ```
 */
export function jvp<A extends unknown[], R>(
  f: (...args: A) => R,
  primals: A,
  tangents: A,
): [R, R] {
  const tanLeaves = tangentLeaves(primals, tangents);
  const lin = linearTrace(f as (...args: never[]) => unknown, primals);
  const map = new Map(lin.t.binding);
  bindTangents(lin, tanLeaves, map);
  const t = lin.t;
  const nodes = substitute([...t.outLeaves, ...lin.dOut].map((x) => x.node), map);
  const all = realizeAll(nodes.map((n) => new Tensor(n)));
  const n = t.outLeaves.length;
  return [unflatten<R>(t.outDef, all.slice(0, n)), unflatten<R>(t.outDef, all.slice(n))];
}

/**
 * The output of `f` at `primals` and its linearization there: a function of tangents (one
 * per argument, like `jvp`'s) returning the output tangent. The forward values the linear
 * map needs are computed once, with the output; each call of the linear map runs only the
 * linear part.
 *
 * @example
 * ```ts
 * import { linearize } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { exp } from "../ops/elementwise.ts";
 * import type { Tensor } from "../tensor.ts";
 * const [y, lin] = linearize((x: Tensor) => exp(x), tensor([0]));
 * await lin(tensor([2])).data(); // Float32Array [2]
 * ```
 */
export function linearize<A extends unknown[], R>(
  f: (...args: A) => R,
  ...primals: A
): [R, (...tangents: A) => R] {
  const lin = linearTrace(f as (...args: never[]) => unknown, primals);
  const t = lin.t;
  const residuals = residualsOf(
    lin.dOut.map((d) => d.node),
    new Set(lin.tanVars.map((v) => v.node)),
  );
  const nOut = t.outLeaves.length;
  const all = finish(t, [...t.outLeaves, ...residuals.map((r) => new Tensor(r))]);
  const saved = new Map<Node, Node>(t.binding);
  residuals.forEach((r, i) => saved.set(r, all[nOut + i].node));
  const apply = (...tangents: A): R => {
    const map = new Map(saved);
    bindTangents(lin, tangentLeaves(primals, tangents), map);
    const nodes = substitute(lin.dOut.map((d) => d.node), map);
    return unflatten<R>(t.outDef, realizeAll(nodes.map((n) => new Tensor(n))));
  };
  return [unflatten<R>(t.outDef, all.slice(0, nOut)), apply];
}
