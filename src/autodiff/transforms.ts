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
import { realizeAll, Tensor } from "../tensor.ts";
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
 * a node no gradient reaches.
 */
export function backprop(
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
    ) => (Tensor | null)[];
    const grads = rule(ct, node.inputs.map((x) => new Tensor(x)), new Tensor(node), node);
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
    if (k < 0 || k >= args.length) {
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
  let result = (f as (...a: unknown[]) => unknown)(...callArgs);
  let aux: unknown = undefined;
  if (hasAux) {
    if (!Array.isArray(result) || result.length !== 2) {
      throw new TypeError("hasAux: the function must return [output, aux]");
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

/**
 * Evaluates `f` and returns its output with a function mapping output cotangents to input
 * cotangents (a pytree per differentiated argument).
 *
 * @example
 * ```ts
 * import { vjp } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * const [y, back] = vjp((x: any) => mul(x, x), [tensor([3])]);
 * const [dx] = back(tensor([1])) as any[];
 * await dx.data(); // Float32Array [6]
 * ```
 */
export function vjp(
  f: (...args: never[]) => unknown,
  primals: readonly unknown[],
  options: Omit<GradOptions, "argnums"> = {},
): [unknown, (cotangents: unknown) => unknown[], unknown?] {
  const argnums = primals.map((_, i) => i);
  const t = trace(f, primals, argnums, options.hasAux ?? false);
  const out = unflatten(t.outDef, finish(t, t.outLeaves));
  const back = (cotangents: unknown) => {
    const cts = flatten(cotangents).leaves;
    if (cts.length !== t.outLeaves.length) {
      throw new TypeError(`vjp: expected ${t.outLeaves.length} cotangents, got ${cts.length}`);
    }
    const grads = finish(t, gradsTree(t, cts));
    return rebuild(t, grads, false) as unknown[];
  };
  return options.hasAux ? [out, back, t.aux] : [out, back];
}

/**
 * Turns `f` (returning a scalar) into a function returning `[value, gradients]`, the
 * gradients a pytree shaped like the argument (or a list, for several `argnums`). With
 * `hasAux`, it returns `[[value, aux], gradients]`.
 *
 * @example
 * ```ts
 * import { valueAndGrad } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import { sum } from "../ops/reduce.ts";
 * const f = (p: { w: any }) => sum(mul(p.w, p.w));
 * const [v, g] = valueAndGrad(f)({ w: tensor([1, 2]) });
 * await v.data();                   // Float32Array [5]
 * await (g as any).w.data();        // Float32Array [2, 4]
 * ```
 */
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options: GradOptions & { hasAux: true },
): (...args: A) => [[Tensor, unknown], unknown];
/** Without `hasAux`: `[value, gradients]`. */
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options?: GradOptions & { hasAux?: false },
): (...args: A) => [Tensor, unknown];
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
 * the argument(s) `argnums`.
 *
 * @example
 * ```ts
 * import { grad } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import { sum } from "../ops/reduce.ts";
 * const dx = grad((x: any) => sum(mul(x, x)))(tensor([3])) as any;
 * await dx.data(); // Float32Array [6]
 * ```
 */
export function grad<A extends unknown[]>(
  f: (...args: A) => unknown,
  options: GradOptions = {},
): (...args: A) => unknown {
  const vg = valueAndGrad(f, options);
  return (...args: A) => vg(...args)[1];
}

/**
 * Forward mode: the output of `f` at `primals` and its derivative along `tangents`
 * (pytrees shaped like the primals). It is computed as the transpose of the vjp, which is
 * linear in the cotangent, so every primitive needs only its vjp rule.
 *
 * @example
 * ```ts
 * import { jvp } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * const [y, dy] = jvp((x: any) => mul(x, x), [tensor([3])], [tensor([1])]);
 * await (dy as any).data(); // Float32Array [6]
 * ```
 */
export function jvp(
  f: (...args: never[]) => unknown,
  primals: readonly unknown[],
  tangents: readonly unknown[],
): [unknown, unknown] {
  const argnums = primals.map((_, i) => i);
  const t = trace(f, primals, argnums, false);
  const tanLeaves = tangents.flatMap((tree) => flatten(tree).leaves);
  const us = t.outLeaves.map((o) => placeholder(o, "u"));
  const wrt: Node[] = [];
  const tans: Tensor[] = [];
  let k = 0;
  t.argVars.forEach((vs) =>
    vs.forEach((v) => {
      const tan = tanLeaves[k++];
      if (tan === undefined) throw new TypeError("jvp: tangents and primals differ in structure");
      if (v !== null) {
        wrt.push(v.node);
        tans.push(tan);
      }
    })
  );
  if (k !== tanLeaves.length) throw new TypeError("jvp: tangents and primals differ in structure");
  const g = backprop(t.outLeaves.map((o) => o.node), us, wrt);
  const pairs = g.map((x, i) => [x, tans[i]] as const).filter(([x]) => x !== null);
  const jt = backprop(
    pairs.map(([x]) => x!.node),
    pairs.map(([, tan]) => tan),
    us.map((u) => u.node),
  );
  const dOut = jt.map((x, i) => x ?? zeros(t.outLeaves[i].shape, { dtype: t.outLeaves[i].dtype }));
  const all = finish(t, [...t.outLeaves, ...dOut]);
  const n = t.outLeaves.length;
  return [unflatten(t.outDef, all.slice(0, n)), unflatten(t.outDef, all.slice(n))];
}
