/**
 * Functions with derivatives the user gives: `customVjp` (a backward rule), `customJvp` (a
 * forward rule, transposed for reverse mode), and `checkpoint` (rematerialization: the
 * backward pass recomputes the function's forward values instead of keeping them).
 *
 * Each is a `custom` node per output (`src/ir/primitives.ts`): its value is the output, its
 * other inputs (arguments, residuals) feed only its rule. Autodiff calls the rule, `vmap`
 * batches it (`batch_rules.ts`), and the compiler's passes replace the node by its value.
 *
 * @module
 */
import { isFloat } from "../ir/dtype.ts";
import type { CustomRule } from "../ir/primitives.ts";
import { apply, type Tensor } from "../tensor.ts";
import { zeros } from "../ops/creation.ts";
import { sum } from "../ops/reduce.ts";
import { flatten, unflatten } from "../tree/pytree.ts";
import { backprop, placeholder, vjp } from "./transforms.ts";

let nextRule = 0;

/** A fresh rule id. */
export function freshRuleId(): number {
  return nextRule++;
}

function isTracing(leaves: readonly Tensor[]): boolean {
  return leaves.some((l) => l.node.traced);
}

/** Wraps each output leaf in a `custom` node of `rule`. */
function wrapOutputs(
  out: unknown,
  argLeaves: readonly Tensor[],
  resLeaves: readonly Tensor[],
  make: (outLeaves: Tensor[]) => CustomRule,
): unknown {
  const { leaves, def } = flatten(out);
  const rule = make(leaves);
  return unflatten(
    def,
    leaves.map((o, index) => apply("custom", [o, ...argLeaves, ...resLeaves], { rule, index })),
  );
}

/** Cotangent pytree of the outputs: zeros where no cotangent flows. */
function ctTree(
  outLeaves: readonly Tensor[],
  def: ReturnType<typeof flatten>["def"],
  cts: readonly unknown[],
): unknown {
  return unflatten(
    def,
    outLeaves.map((o, i) => (cts[i] as Tensor | null) ?? zeros(o.shape, { dtype: o.dtype })),
  );
}

/** Flattens the per-argument cotangents a rule returned, checking them against the args. */
function flatGrads(
  name: string,
  grads: unknown,
  args: readonly unknown[],
  argLeaves: readonly Tensor[],
): (Tensor | null)[] {
  if (!Array.isArray(grads) || grads.length !== args.length) {
    throw new TypeError(
      `${name}: the backward rule must return an array of ${args.length} cotangents (one per argument), got ${
        Array.isArray(grads) ? `${grads.length}` : typeof grads
      }`,
    );
  }
  const out: (Tensor | null)[] = [];
  grads.forEach((g, k) => {
    const n = flatten(args[k]).leaves.length;
    if (g === null || g === undefined) {
      for (let j = 0; j < n; j++) out.push(null);
      return;
    }
    const leaves = flatten(g).leaves;
    if (leaves.length !== n) {
      throw new TypeError(
        `${name}: the cotangent of argument ${k} has ${leaves.length} tensors, the argument ${n}`,
      );
    }
    out.push(...leaves);
  });
  out.forEach((g, i) => {
    const a = argLeaves[i];
    if (g !== null && g.shape.join() !== a.shape.join()) {
      throw new RangeError(
        `${name}: cotangent ${i} has shape [${g.shape}], expected [${a.shape}] like its argument`,
      );
    }
  });
  return out.map((g, i) => isFloat(argLeaves[i].dtype) ? g : null);
}

/**
 * `f` with a backward rule of your own: `fwd(...args)` returns `[out, residuals]` (out equal
 * to `f`'s), and `bwd(residuals, outCotangent)` returns one cotangent per argument (null for
 * none). Differentiating the result (`grad`, `vjp`, `jvp`, and under `vmap` or `compile`)
 * uses `bwd`; outside any transform `f` runs as it is.
 *
 * @example
 * ```ts
 * import { customVjp } from "./custom.ts";
 * import { grad } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { mul } from "../ops/elementwise.ts";
 * import { sum } from "../ops/reduce.ts";
 * import type { Tensor } from "../tensor.ts";
 * // a gradient clipped to [-1, 1] on the way back
 * const square = customVjp(
 *   (x: Tensor) => mul(x, x),
 *   (x: Tensor) => [mul(x, x), x],
 *   (x: Tensor, ct: Tensor) => [mul(ct, mul(x, 0))],
 * );
 * await grad((x: Tensor) => sum(square(x)))(tensor([3])).data(); // Float32Array [0]
 * ```
 */
export function customVjp<A extends unknown[], R, Res>(
  f: (...args: A) => R,
  fwd: (...args: A) => [R, Res],
  bwd: (residuals: Res, outCotangent: R) => unknown[],
): (...args: A) => R {
  const name = `customVjp(${f.name || "f"})`;
  return (...args: A): R => {
    const argLeaves = flatten(args).leaves;
    if (!isTracing(argLeaves)) return f(...args);
    const result = fwd(...args);
    if (!Array.isArray(result) || result.length !== 2) {
      throw new TypeError(`${name}: fwd must return [out, residuals]`);
    }
    const [out, res] = result;
    const resFlat = flatten(res);
    const outFlat = flatten(out);
    return wrapOutputs(out, argLeaves, resFlat.leaves, (outLeaves) => ({
      id: freshRuleId(),
      name,
      kind: "vjp",
      outputs: outLeaves.length,
      args: argLeaves.length,
      vjp: (cts, argTs, resTs) => {
        const grads = bwd(
          unflatten<Res>(resFlat.def, resTs),
          ctTree(outLeaves, outFlat.def, cts) as R,
        );
        return flatGrads(name, grads, args, argTs as Tensor[]);
      },
    })) as R;
  };
}

/**
 * `f` with a forward-mode rule of your own: `jvpRule(primals, tangents)` returns
 * `[out, outTangent]`, linear in the tangents. Forward mode uses it; reverse mode uses its
 * transpose (so the rule must be linear in the tangents: a rule that is not fails with an
 * error when differentiated in reverse mode).
 *
 * @example
 * ```ts
 * import { customJvp } from "./custom.ts";
 * import { jvp } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { exp, mul } from "../ops/elementwise.ts";
 * import type { Tensor } from "../tensor.ts";
 * const e = customJvp(
 *   (x: Tensor) => exp(x),
 *   ([x]: [Tensor], [t]: [Tensor]) => [exp(x), mul(t, exp(x))],
 * );
 * const [, dy] = jvp(e, [tensor([0])], [tensor([3])]);
 * await dy.data(); // Float32Array [3]
 * ```
 */
export function customJvp<A extends unknown[], R>(
  f: (...args: A) => R,
  jvpRule: (primals: A, tangents: A) => [R, R],
): (...args: A) => R {
  const name = `customJvp(${f.name || "f"})`;
  return (...args: A): R => {
    const argFlat = flatten(args);
    const argLeaves = argFlat.leaves;
    if (!isTracing(argLeaves)) return f(...args);
    const out = f(...args);
    return wrapOutputs(out, argLeaves, [], (outLeaves) => ({
      id: freshRuleId(),
      name,
      kind: "vjp",
      outputs: outLeaves.length,
      args: argLeaves.length,
      vjp: (cts, argTs) => {
        const primals = argTs as Tensor[];
        const tans = primals.map((p) =>
          isFloat(p.dtype) ? placeholder(p, "j") : zeros(p.shape, { dtype: p.dtype })
        );
        const result = jvpRule(unflatten<A>(argFlat.def, primals), unflatten<A>(argFlat.def, tans));
        if (!Array.isArray(result) || result.length !== 2) {
          throw new TypeError(`${name}: the jvp rule must return [out, outTangent]`);
        }
        const tOut = flatten(result[1]).leaves;
        if (tOut.length !== outLeaves.length) {
          throw new TypeError(
            `${name}: the jvp rule returned ${tOut.length} tangents for ${outLeaves.length} outputs`,
          );
        }
        const seeds = outLeaves.map((o, i) =>
          (cts[i] as Tensor | null) ?? zeros(o.shape, { dtype: o.dtype })
        );
        const floatVars = tans.filter((_, i) => isFloat(primals[i].dtype));
        const g = backprop(tOut.map((t) => t.node), seeds, floatVars.map((v) => v.node));
        const varSet = new Set(floatVars.map((v) => v.node));
        let at = 0;
        return primals.map((p) => {
          if (!isFloat(p.dtype)) return null;
          const gi = g[at++];
          if (gi !== null && dependsOn(gi, varSet)) {
            throw new TypeError(
              `${name}: the jvp rule is not linear in the tangents, so reverse mode cannot transpose it`,
            );
          }
          return gi;
        });
      },
    })) as R;
  };
}

function dependsOn(t: Tensor, vars: ReadonlySet<unknown>): boolean {
  const seen = new Set<unknown>();
  const stack = [t.node];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (vars.has(n)) return true;
    if (seen.has(n)) continue;
    seen.add(n);
    stack.push(...n.inputs);
  }
  return false;
}

/**
 * `f` under rematerialization: differentiating it keeps only its arguments, and the backward
 * pass recomputes `f`'s forward values (behind an identity the passes keep, so the recomputed
 * values are not merged with the first ones, and that waits for `f`'s output cotangent, so the
 * compiling backends recompute just before `f`'s backward pass). Values equal `f`'s;
 * `compiled.memory()` shows what it saves (on T1's network, every stage checkpointed: about a
 * quarter of the planned peak).
 *
 * @example
 * ```ts
 * import { checkpoint } from "./custom.ts";
 * import { grad } from "./transforms.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { exp, sin } from "../ops/elementwise.ts";
 * import { sum } from "../ops/reduce.ts";
 * import type { Tensor } from "../tensor.ts";
 * const g = checkpoint((x: Tensor) => sin(exp(x)));
 * await grad((x: Tensor) => sum(g(x)))(tensor([0])).data(); // Float32Array [0.5403023]
 * ```
 */
export function checkpoint<A extends unknown[], R>(f: (...args: A) => R): (...args: A) => R {
  return customVjp(
    f,
    (...args: A) => [f(...args), args],
    (args: A, ct: R) => {
      const rule: CustomRule = {
        id: freshRuleId(),
        name: "checkpoint",
        kind: "barrier",
        outputs: 1,
        args: 0,
        vjp: () => [],
      };
      // The barrier also depends on the cotangent (through its sum: one number, so kernels
      // that inline the barrier bind a scalar, not the cotangent), so the recomputation
      // cannot be scheduled before the backward pass reaches this point (JAX's
      // optimization_barrier orders remat the same way).
      const first = flatten(ct).leaves.find((c) => isFloat(c.dtype));
      const cts = first === undefined ? [] : [sum(first)];
      const { leaves, def } = flatten(args);
      const guarded = leaves.map((l) =>
        isFloat(l.dtype) ? apply("custom", [l, ...cts], { rule, index: 0 }) : l
      );
      const [, back] = vjp(f, unflatten<A>(def, guarded));
      return back(ct);
    },
  );
}
