/**
 * `checkGrad`: compares reverse mode (`grad`) and forward mode (`jvp`) against central finite
 * differences in random directions, in float64 on the CPU interpreter.
 *
 * @module
 */
import { isFloat } from "../ir/dtype.ts";
import { cpuBackend, withBackendAsync } from "../backend/registry.ts";
import type { Tensor } from "../tensor.ts";
import { tensor } from "../ops/creation.ts";
import { add, mul } from "../ops/elementwise.ts";
import { sum } from "../ops/reduce.ts";
import { normal, randomKey, split } from "../ops/random.ts";
import { flatten, unflatten } from "../tree/pytree.ts";
import { grad, jvp } from "./transforms.ts";

/** Options of {@link checkGrad}. */
export interface CheckGradOptions {
  /** Number of random directions (default 3). */
  directions?: number;
  /** Finite-difference step along a unit direction (default 1e-5). */
  eps?: number;
  /** Largest accepted relative error (default 1e-5). */
  tolerance?: number;
  /** Seed of the random directions (default 0). */
  seed?: number;
  /** Throw a RangeError describing the failure (default true); otherwise just report. */
  throwOnFailure?: boolean;
}

/** What {@link checkGrad} measured, per direction. */
export interface CheckGradReport {
  /** Whether every error is within the tolerance. */
  ok: boolean;
  /** The worst relative error of reverse and forward mode against finite differences. */
  maxError: number;
  /** Central finite differences, one per direction. */
  numeric: number[];
  /** `<grad f, v>` from reverse mode, one per direction. */
  reverse: number[];
  /** `J v` from forward mode, one per direction. */
  forward: number[];
}

async function toHost64(t: Tensor): Promise<Tensor> {
  if (!isFloat(t.dtype)) return tensor(await t.data(), t.shape);
  return tensor(Float64Array.from(await t.data()), t.shape, { dtype: "float64" });
}

function relErr(a: number, b: number): number {
  return Math.abs(a - b) / Math.max(1e-3, Math.abs(a), Math.abs(b));
}

/**
 * Checks the derivatives of `f` at `args`: for random directions v, `<grad f, v>` (reverse
 * mode) and `J v` (forward mode) must match `(f(x + εv) - f(x - εv)) / 2ε`. Float arguments
 * are converted to float64 and everything runs on the CPU interpreter. Non-scalar outputs are
 * reduced with random weights first.
 *
 * @example
 * ```ts
 * import { checkGrad } from "./check_grad.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { exp, mul } from "../ops/elementwise.ts";
 * const report = await checkGrad((x: any) => mul(exp(x), x), [tensor([0.5, -1])]);
 * report.ok; // true
 * ```
 */
export async function checkGrad(
  f: (...args: never[]) => unknown,
  args: readonly unknown[],
  options: CheckGradOptions = {},
): Promise<CheckGradReport> {
  const eps = options.eps ?? 1e-5;
  const tol = options.tolerance ?? 1e-5;
  const n = options.directions ?? 3;
  const fl = flatten(args);
  const leaves = await Promise.all(fl.leaves.map(toHost64));
  const x = unflatten<unknown[]>(fl.def, leaves);
  const keys = split(randomKey(options.seed ?? 0), n + 1);
  return withBackendAsync(cpuBackend(), async () => {
    const call = f as (...a: unknown[]) => unknown;
    const outs = flatten(call(...x)).leaves;
    const wKeys = split(keys[n], outs.length);
    const weights = outs.map((o, i) => normal(wKeys[i], o.shape, { dtype: o.dtype }));
    const scalarF = (...a: unknown[]) => {
      const ys = flatten(call(...a)).leaves;
      return ys.map((y, i) => sum(mul(y, weights[i]))).reduce((p, q) => add(p, q));
    };
    const g = flatten(grad(scalarF, { argnums: x.map((_, i) => i) })(...x)).leaves;
    const report: CheckGradReport = {
      ok: true,
      maxError: 0,
      numeric: [],
      reverse: [],
      forward: [],
    };
    for (let d = 0; d < n; d++) {
      const vKeys = split(keys[d], leaves.length);
      const raw = leaves.map((l, i) =>
        isFloat(l.dtype) ? normal(vKeys[i], l.shape, { dtype: "float64" }) : l
      );
      let norm2 = 0;
      for (let i = 0; i < raw.length; i++) {
        if (!isFloat(leaves[i].dtype)) continue;
        for (const v of await raw[i].data()) norm2 += v * v;
      }
      const scale = 1 / Math.sqrt(norm2 || 1);
      const v = raw.map((r, i) => isFloat(leaves[i].dtype) ? mul(r, scale) : r);
      const shifted = (s: number) =>
        unflatten<unknown[]>(
          fl.def,
          leaves.map((l, i) => isFloat(l.dtype) ? add(l, mul(v[i], s)) : l),
        );
      const fp = await (scalarF(...shifted(eps)) as Tensor).item();
      const fm = await (scalarF(...shifted(-eps)) as Tensor).item();
      const numeric = (fp - fm) / (2 * eps);
      let reverse = 0;
      for (let i = 0; i < leaves.length; i++) {
        if (!isFloat(leaves[i].dtype)) continue;
        reverse += await sum(mul(g[i], v[i])).item();
      }
      const tangents = unflatten<unknown[]>(
        fl.def,
        leaves.map((l, i) => isFloat(l.dtype) ? v[i] : l),
      );
      const [, dy] = jvp(scalarF as (...a: unknown[]) => unknown, x, tangents);
      const forward = await (dy as Tensor).item();
      report.numeric.push(numeric);
      report.reverse.push(reverse);
      report.forward.push(forward);
      report.maxError = Math.max(
        report.maxError,
        relErr(reverse, numeric),
        relErr(forward, numeric),
      );
    }
    report.ok = report.maxError <= tol && Number.isFinite(report.maxError);
    if (!report.ok && (options.throwOnFailure ?? true)) {
      throw new RangeError(
        `checkGrad: derivatives differ from finite differences by ${
          report.maxError.toExponential(2)
        } ` +
          `(tolerance ${tol}): numeric [${report.numeric.join(", ")}], reverse [${
            report.reverse.join(", ")
          }], forward [${report.forward.join(", ")}]`,
      );
    }
    return report;
  });
}
