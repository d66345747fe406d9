/**
 * `vmap`: a function of one example turned into a function of a batch. The function is
 * traced once on placeholders of one example's shape; the graph is then rewritten node by
 * node with the batching rules (`batch_rules.ts`), every batched value carrying its batch axis
 * in front, and the result is realized in one program.
 *
 * @module
 */
import { fmtShape } from "../ir/dtype.ts";
import { makeNode, type Node, topoSort } from "../ir/node.ts";
import { substitute } from "../ir/graph.ts";
import { deferred, realizeAll, Tensor } from "../tensor.ts";
import { transpose } from "../ops/movement.ts";
import { flatten, unflatten } from "../tree/pytree.ts";
import { BATCH_RULES, type Batched, type BatchRule, withBatch } from "./batch_rules.ts";
import { placeholder } from "./transforms.ts";

/** Options of {@link vmap}. */
export interface VmapOptions {
  /**
   * The mapped axis of each argument, or null for an argument shared by the whole batch; one
   * number applies to every argument. An entry may also be a tree prefix of its argument
   * (JAX's convention): `{ w: null, x: 0 }` maps `x` and shares `w`. Default 0.
   */
  inAxes?: number | null | readonly AxisSpec[];
  /** Where the batch axis goes in each output leaf (one number for all). Default 0. */
  outAxes?: number | readonly number[];
}

/** The axis of one argument: a number, null, or a tree prefix of the argument. */
export type AxisSpec = number | null | readonly AxisSpec[] | { readonly [key: string]: AxisSpec };

let vmapCounter = 0;

/** One axis (or null) per leaf of `arg`, in `flatten`'s order, from a prefix spec. */
function leafAxes(arg: unknown, spec: AxisSpec, where: string): (number | null)[] {
  if (spec === null || typeof spec === "number") {
    return flatten(arg).leaves.map(() => spec);
  }
  if (Array.isArray(spec)) {
    if (!Array.isArray(arg) || arg.length !== spec.length) {
      throw new TypeError(
        `vmap: inAxes${where} is an array of ${spec.length}, but the argument is not an array of that length`,
      );
    }
    return arg.flatMap((a, i) => leafAxes(a, spec[i], `${where}[${i}]`));
  }
  const proto = arg === null || typeof arg !== "object" ? undefined : Object.getPrototypeOf(arg);
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(
      `vmap: inAxes${where} is an object, but the argument is not a plain object (give a number or null for a tensor or a registered class)`,
    );
  }
  const obj = arg as Record<string, unknown>, sp = spec as Record<string, AxisSpec>;
  const keys = Object.keys(obj).sort();
  const extra = Object.keys(sp).filter((k) => !(k in obj));
  if (extra.length > 0 || keys.some((k) => !(k in sp))) {
    throw new TypeError(
      `vmap: inAxes${where} has keys [${Object.keys(sp).sort()}], the argument [${keys}]`,
    );
  }
  return keys.flatMap((k) => leafAxes(obj[k], sp[k], `${where}.${k}`));
}

/** Moves axis `from` of `t` to `to`. */
function moveAxis(t: Tensor, from: number, to: number): Tensor {
  if (from === to) return t;
  const perm = t.shape.map((_, i) => i).filter((i) => i !== from);
  perm.splice(to, 0, from);
  return transpose(t, perm);
}

function normAxis(ax: number, rank: number, what: string): number {
  const a = ax < 0 ? ax + rank : ax;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new RangeError(`vmap: ${what} ${ax} is out of range for rank ${rank}`);
  }
  return a;
}

/**
 * Rewrites the graph of `outputs` (traced on one example) for a batch of `size`: `env` maps
 * each per-example placeholder to its batched value (batch axis in front).
 */
export function batchGraph(
  outputs: readonly Node[],
  env: ReadonlyMap<Node, Tensor>,
  size: number,
): Batched[] {
  const done = new Map<Node, Batched>();
  for (const [k, v] of env) done.set(k, { t: v, batched: true });
  for (const node of topoSort(outputs)) {
    if (done.has(node)) continue;
    const inputs = node.inputs.map((x) => done.get(x)!);
    if (!inputs.some((x) => x.batched)) {
      done.set(node, { t: new Tensor(node), batched: false });
      continue;
    }
    const rule = BATCH_RULES[node.op] as BatchRule<typeof node.op>;
    const t = rule(inputs, node as never, size, (f, inAxes) => vmap(f, { inAxes }));
    const want = [size, ...node.shape];
    if (t.shape.join() !== want.join()) {
      throw new Error(
        `vmap: the batching rule of ${node.op} gave ${fmtShape(t.shape)}, expected ${
          fmtShape(want)
        }`,
      );
    }
    done.set(node, { t, batched: true });
  }
  return outputs.map((o) => done.get(o)!);
}

/**
 * Maps `f` over an axis of its arguments (JAX's `vmap`): `vmap(f)(xs)` equals stacking
 * `f(x)` for each `x` along axis 0 of `xs`, computed as one batched program rather than a
 * loop. `inAxes` picks the mapped axis per argument (null: shared), `outAxes` where the batch
 * axis goes in the outputs. Composes with `grad`, `jvp`, `compile` and itself:
 * `vmap(grad(f))` gives per-example gradients.
 *
 * @example
 * ```ts
 * import { vmap } from "./vmap.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { matmul } from "../ops/linalg.ts";
 * import type { Tensor } from "../tensor.ts";
 * const w = tensor([[1, 0], [0, 2]]);
 * const f = (x: Tensor, m: Tensor) => matmul(m, x); // one vector
 * const ys = vmap(f, { inAxes: [0, null] })(tensor([[1, 1], [2, 3]]), w);
 * await ys.data(); // Float32Array [1, 2, 2, 6]
 * ```
 */
export function vmap<A extends unknown[], R>(
  f: (...args: A) => R,
  options: VmapOptions = {},
): (...args: A) => R {
  return (...args: A): R => {
    const inAxes = options.inAxes ?? 0;
    const axes: readonly AxisSpec[] = Array.isArray(inAxes)
      ? inAxes
      : args.map(() => inAxes as number | null);
    if (axes.length !== args.length) {
      throw new TypeError(`vmap: inAxes has ${axes.length} entries for ${args.length} arguments`);
    }
    let size: number | undefined;
    const env = new Map<Node, Tensor>();
    const binding = new Map<Node, Node>();
    const callArgs = args.map((arg, k) => {
      const { leaves, def } = flatten(arg);
      const perLeaf = leafAxes(arg, axes[k], `[${k}]`);
      const per = leaves.map((l, j) => {
        const full = placeholder(l, "m");
        binding.set(full.node, l.node);
        const ax = perLeaf[j];
        if (ax === null) return full;
        const a = normAxis(ax, l.ndim, `inAxes[${k}] =`);
        if (size === undefined) size = l.shape[a];
        else if (l.shape[a] !== size) {
          throw new RangeError(
            `vmap: argument ${k} leaf ${j} has size ${
              l.shape[a]
            } on axis ${a}, expected ${size} like the others`,
          );
        }
        const shape = l.shape.filter((_, i) => i !== a);
        const v = new Tensor(
          makeNode("var", [], { id: `vm${vmapCounter++}`, shape, dtype: l.dtype }),
        );
        env.set(v.node, moveAxis(full, a, 0));
        return v;
      });
      return unflatten(def, per);
    });
    if (size === undefined) {
      throw new TypeError(
        "vmap: no argument is mapped (every inAxes entry is null or has no tensors)",
      );
    }
    const n = size;
    const out = deferred(() => (f as (...a: unknown[]) => unknown)(...callArgs));
    const { leaves, def } = flatten(out);
    const outAxes = options.outAxes ?? 0;
    const oax = typeof outAxes === "number" ? leaves.map(() => outAxes) : outAxes;
    if (oax.length !== leaves.length) {
      throw new TypeError(`vmap: outAxes has ${oax.length} entries for ${leaves.length} outputs`);
    }
    const results = deferred(() =>
      batchGraph(leaves.map((l) => l.node), env, n).map((b, i) => {
        const t = withBatch(b, n);
        return moveAxis(t, 0, normAxis(oax[i], t.ndim, "outAxes"));
      })
    );
    const nodes = substitute(results.map((t) => t.node), binding);
    return unflatten<R>(def, realizeAll(nodes.map((x) => new Tensor(x))));
  };
}
