/**
 * Runs the parity cases (`cases.ts`) on a WebGPU backend against the cpu oracle and returns one
 * result per run: each case under each kernel profile with the backend's own kernel choices,
 * and, for cases marked `tune`, once more per tuning candidate of each convolution kernel class
 * the case compiles (that candidate forced, the other classes at their default).
 *
 * Takes the cosgrad API and the started backend as arguments, so the same code runs under Deno
 * (`test/parity_test.ts`) and in the browser page (`scripts/browser_parity_page.ts`), where the
 * API is the library bundle. Only the backend's documented test knobs are used: `profile`,
 * `bindingLimit`, and its tuning table (`tuning`, whose `choose` is wrapped to record the
 * kernel classes and to force a candidate).
 *
 * @module
 */
import type * as Cosgrad from "../../mod.ts";
import { candidatesOf, type TunedKernel, type Variant, variantName } from "../../kernels/tune.ts";
import {
  type Cg,
  DEFAULT_TOLERANCE,
  type InputSpec,
  type ParityCase,
  type Profile,
  type Tolerance,
} from "./cases.ts";
import { type KnownIssue, knownIssue } from "./known_issues.ts";

type T = Cosgrad.Tensor;
type Values = Float32Array | Int32Array;

/** The tuning table as the runner sees it (`kernels/tune_cache.ts`'s `TuningTable`). */
interface TableLike {
  version: number;
  choose(cls: string, kernel: TunedKernel): Variant | null | undefined;
}

/** The WebGPU backend's knobs the runner turns (`src/backend/webgpu/webgpu_backend.ts`). */
export interface GpuUnderTest extends Cosgrad.Backend {
  /** The heuristic kernel family. */
  profile: Profile;
  /** Bytes one storage binding may cover when compiling. */
  bindingLimit: number;
  /** The measured kernel choices. */
  tuning: TableLike;
  /** The adapter's description. */
  readonly description: string;
  /** Pipelines compiled so far, with their kernels' names. */
  readonly stats: { pipelines: number; pipelineNames: string[] };
}

/** What happened to one run. */
export type Status = "pass" | "fail" | "skip" | "timeout";

/** One run of one case. */
export interface CaseResult {
  /** The case's name. */
  case: string;
  /** The kernel profile it was compiled under. */
  profile: Profile;
  /** `default` (the backend's choice), or the forced candidate: `<class> = <variant>`. */
  variant: string;
  /** The outcome. */
  status: Status;
  /** Why it failed or was skipped. */
  message: string | null;
  /** Largest |error| over its tolerance across the outputs (at most 1 passes). */
  worst: number | null;
  /** Pipelines this run compiled (kernels not compiled before). */
  pipelines: number;
  /** Wall time of the run (compile, run, read back), in milliseconds. */
  ms: number;
}

/** Options of {@link runParity}. */
export interface RunOptions {
  /** The cosgrad API (`mod.ts`, or the browser bundle). */
  cg: Cg;
  /** The WebGPU backend under test. */
  gpu: GpuUnderTest;
  /** The implementation's name in known issues and the report: `deno` or `chromium`. */
  implementation: string;
  /**
   * Tuning candidates of `tune` cases: `none`, `each-algorithm` (the first candidate of every
   * algorithm in each class: rows, implicit GEMM, explicit columns) or `all`.
   */
  candidates: "none" | "each-algorithm" | "all";
  /** `quick` runs each case under its `quick` profiles, `full` under all its profiles. */
  set: "quick" | "full";
  /** Only the cases this accepts (default all). */
  filter?: (c: ParityCase) => boolean;
  /** Limit of one run in milliseconds (default 60000); a run over it stops the suite. */
  timeoutMs?: number;
  /** Known issues to skip (default `KNOWN_ISSUES`). */
  known?: readonly KnownIssue[];
  /** Called after every run (progress). */
  onResult?: (r: CaseResult) => void;
}

/** What {@link runParity} returns. */
export interface ParityReport {
  /** The implementation's name. */
  implementation: string;
  /** The adapter's description. */
  adapter: string;
  /** Every run, in order. */
  results: CaseResult[];
  /** Runs per status. */
  counts: Record<Status, number>;
  /** Cases run. */
  cases: number;
  /** Wall time in milliseconds. */
  ms: number;
  /** Why the suite stopped early (a run timed out), else null. */
  aborted: string | null;
}

/** The host values of an input (made on the cpu backend, the same for every backend). */
async function hostInput(cg: Cg, spec: InputSpec): Promise<Values> {
  const n = spec.shape.reduce((a, b) => a * b, 1);
  const key = cg.randomKey(spec.seed);
  const scale = spec.scale ?? 1;
  switch (spec.kind ?? "uniform") {
    case "ones":
      return new Float32Array(n).fill(1);
    case "normal":
      return await cg.normal(key, spec.shape, { std: scale }).data() as Float32Array;
    case "int": {
      if (spec.max === undefined) throw new TypeError(`An int input needs max, got ${spec}`);
      const u = await cg.uniform(key, spec.shape).data();
      return Int32Array.from(u, (v) => Math.min(spec.max! - 1, Math.floor(v * spec.max!)));
    }
    case "uniform":
      return await cg.uniform(key, spec.shape, { min: -scale, max: scale }).data() as Float32Array;
    default:
      throw new TypeError(
        `Unknown input kind "${spec.kind}": expected uniform, normal, ones or int`,
      );
  }
}

/** The tensors of a pytree, depth first. */
function leaves(cg: Cg, tree: unknown, out: T[] = []): T[] {
  if (tree instanceof cg.Tensor) out.push(tree);
  else if (Array.isArray(tree)) { for (const t of tree) leaves(cg, t, out); }
  else if (tree !== null && typeof tree === "object") {
    for (const k of Object.keys(tree).sort()) leaves(cg, (tree as Record<string, unknown>)[k], out);
  } else {throw new TypeError(
      `A case returned ${String(tree)}: expected tensors in arrays or objects`,
    );}
  return out;
}

/** Runs the case's program on the current backend: its outputs' values. */
async function evaluate(cg: Cg, c: ParityCase, host: readonly Values[]): Promise<Values[]> {
  const xs = host.map((v, i) =>
    cg.tensor(v, c.inputs[i].shape, { dtype: v instanceof Int32Array ? "int32" : "float32" })
  );
  const f = cg.compile((...args: T[]) => c.fn(cg, ...args));
  const out = leaves(cg, f(...xs));
  const values: Values[] = [];
  for (const t of out) values.push(await t.data() as Values);
  return values;
}

/**
 * The largest `|got - want| / tolerance` over the outputs (NaN and infinities must match), or
 * a message naming the first element out of tolerance.
 */
function compare(
  got: Values[],
  want: Values[],
  tol: Tolerance,
): { worst: number; error: string | null } {
  if (got.length !== want.length) {
    return { worst: Infinity, error: `${got.length} outputs, expected ${want.length}` };
  }
  let worst = 0;
  for (let o = 0; o < want.length; o++) {
    const a = got[o], e = want[o];
    if (a.length !== e.length) {
      return { worst: Infinity, error: `output ${o}: ${a.length} values, expected ${e.length}` };
    }
    if ((a instanceof Int32Array) !== (e instanceof Int32Array)) {
      return {
        worst: Infinity,
        error: `output ${o}: ${a.constructor.name}, expected ${e.constructor.name}`,
      };
    }
    let scale = 0;
    for (const v of e) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < e.length; i++) {
      const x = a[i], y = e[i];
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        if (Object.is(x, y) || (Number.isNaN(x) && Number.isNaN(y))) continue;
        return { worst: Infinity, error: `output ${o}, element ${i}: ${x}, expected ${y}` };
      }
      const bound = tol.rtol * Math.abs(y) + tol.atol * (1 + scale);
      const d = Math.abs(x - y);
      if (d > bound) {
        return {
          worst: bound === 0 ? Infinity : d / bound,
          error: `output ${o}, element ${i} of ${e.length}: ${x}, expected ${y} ` +
            `(tolerance ${bound.toExponential(2)})`,
        };
      }
      if (bound > 0) worst = Math.max(worst, d / bound);
    }
  }
  return { worst, error: null };
}

let forcedVersion = 0;

/**
 * Runs `fn` with the backend's tuning table wrapped: every kernel class looked up is recorded
 * in `seen`, and the classes in `force` get that variant. The wrapper's version is negative
 * and new (real tables count up from 0), so every program compiles afresh under it.
 */
async function withTable<R>(
  gpu: GpuUnderTest,
  force: ReadonlyMap<string, Variant>,
  seen: Map<string, TunedKernel>,
  fn: () => Promise<R>,
): Promise<R> {
  const saved = gpu.tuning;
  const table = Object.create(saved) as TableLike;
  table.version = --forcedVersion;
  table.choose = (cls, kernel) => {
    if (!seen.has(cls)) seen.set(cls, kernel);
    return force.has(cls) ? force.get(cls) : saved.choose(cls, kernel);
  };
  gpu.tuning = table;
  try {
    return await fn();
  } finally {
    gpu.tuning = saved;
  }
}

class Timeout extends Error {}

function withTimeout<R>(p: Promise<R>, ms: number, what: string): Promise<R> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Timeout(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * The candidates to force for a class under `mode` (the default, `null`, already ran); the
 * representative set has one convolution variant per algorithm and every matmul tile.
 */
function chosen(all: readonly (Variant | null)[], mode: RunOptions["candidates"]): Variant[] {
  const forced = all.filter((v): v is Variant => v !== null);
  if (mode === "all") return forced;
  if (mode === "none") return [];
  const kinds = new Set<string>();
  const out: Variant[] = [];
  for (const v of forced) {
    const kind = v.algo === "matmul" ? variantName(v) : v.algo;
    if (kinds.has(kind)) continue;
    kinds.add(kind);
    out.push(v);
  }
  return out;
}

/**
 * Runs `cases` on `options.gpu` against the cpu oracle (see the module documentation).
 *
 * @example
 * ```ts ignore
 * import * as cg from "../../mod.ts";
 * import { CASES } from "./cases.ts";
 * import { type GpuUnderTest, runParity } from "./run.ts";
 * const gpu = await cg.startWebGpu() as GpuUnderTest;
 * const report = await runParity(CASES, { cg, gpu, implementation: "deno", candidates: "none", set: "quick" });
 * report.counts.fail; // 0
 * ```
 */
export async function runParity(
  cases: readonly ParityCase[],
  options: RunOptions,
): Promise<ParityReport> {
  const { cg, gpu } = options;
  const t0 = performance.now();
  const timeoutMs = options.timeoutMs ?? 60_000;
  const results: CaseResult[] = [];
  const counts: Record<Status, number> = { pass: 0, fail: 0, skip: 0, timeout: 0 };
  let aborted: string | null = null;
  let ran = 0;
  const push = (r: CaseResult) => {
    results.push(r);
    counts[r.status]++;
    options.onResult?.(r);
  };
  const saved = { profile: gpu.profile, limit: gpu.bindingLimit };
  const cpu = await cg.setBackend("cpu");
  try {
    for (const c of cases) {
      if (options.filter !== undefined && !options.filter(c)) continue;
      ran++;
      const host: Values[] = [];
      for (const spec of c.inputs) host.push(await hostInput(cg, spec));
      await cg.setBackend(cpu);
      const want = await evaluate(cg, c, host);
      const tol = c.tolerance ?? DEFAULT_TOLERANCE;
      const profiles = c.profiles ?? (["llvmpipe", "discrete"] as const);
      const chosenProfiles = options.set === "quick" ? (c.quick ?? profiles) : profiles;
      for (const profile of chosenProfiles) {
        const one = async (variant: string, force: Map<string, Variant>) => {
          const base = { case: c.name, profile, variant };
          const known = knownIssue(options.known, {
            case: c.name,
            implementation: options.implementation,
            profile,
            variant,
          });
          if (known !== null) {
            push({
              ...base,
              status: "skip",
              message: known.reason,
              worst: null,
              pipelines: 0,
              ms: 0,
            });
            return new Map<string, TunedKernel>();
          }
          const seen = new Map<string, TunedKernel>();
          const p0 = gpu.stats.pipelines;
          const start = performance.now();
          gpu.profile = profile;
          gpu.bindingLimit = c.bindingLimit ?? saved.limit;
          let result: CaseResult;
          try {
            await cg.setBackend(gpu);
            const got = await withTimeout(
              withTable(gpu, force, seen, () => evaluate(cg, c, host)),
              timeoutMs,
              `${c.name} (${profile}, ${variant})`,
            );
            const { worst, error } = compare(got, want, tol);
            result = {
              ...base,
              status: error === null ? "pass" : "fail",
              message: error,
              worst: Number.isFinite(worst) ? worst : null,
              pipelines: gpu.stats.pipelines - p0,
              ms: performance.now() - start,
            };
          } catch (e) {
            const timeout = e instanceof Timeout;
            if (timeout) aborted = (e as Error).message;
            result = {
              ...base,
              status: timeout ? "timeout" : "fail",
              message: e instanceof Error ? e.message : String(e),
              worst: null,
              pipelines: gpu.stats.pipelines - p0,
              ms: performance.now() - start,
            };
          } finally {
            gpu.profile = saved.profile;
            gpu.bindingLimit = saved.limit;
            await cg.setBackend(cpu);
          }
          push(result);
          return seen;
        };
        const seen = await one("default", new Map());
        if (aborted !== null) break;
        if (!c.tune || options.candidates === "none") continue;
        for (const [cls, kernel] of seen) {
          for (const v of chosen(candidatesOf(kernel), options.candidates)) {
            await one(`${cls} = ${variantName(v)}`, new Map([[cls, v]]));
            if (aborted !== null) break;
          }
          if (aborted !== null) break;
        }
        if (aborted !== null) break;
      }
      if (aborted !== null) break;
    }
  } finally {
    gpu.profile = saved.profile;
    gpu.bindingLimit = saved.limit;
  }
  return {
    implementation: options.implementation,
    adapter: gpu.description,
    results,
    counts,
    cases: ran,
    ms: performance.now() - t0,
    aborted,
  };
}

/**
 * One line per run that did not pass, and a summary line, for logs.
 *
 * @example
 * ```ts
 * import { summarize } from "./run.ts";
 * const lines = summarize({
 *   implementation: "deno", adapter: "llvmpipe", results: [], cases: 0, ms: 1, aborted: null,
 *   counts: { pass: 0, fail: 0, skip: 0, timeout: 0 },
 * });
 * lines[lines.length - 1].startsWith("parity on deno"); // true
 * ```
 */
export function summarize(report: ParityReport): string[] {
  const lines = report.results.filter((r) => r.status !== "pass").map((r) =>
    `  ${r.status.toUpperCase()} ${r.case} [${r.profile}] ${r.variant}: ${r.message}`
  );
  const c = report.counts;
  lines.push(
    `parity on ${report.implementation} (${report.adapter}): ${report.cases} cases, ` +
      `${report.results.length} runs: ${c.pass} passed, ${c.fail} failed, ${c.skip} skipped ` +
      `(known issues), ${c.timeout} timed out; ${(report.ms / 1000).toFixed(1)} s` +
      (report.aborted === null ? "" : `; stopped: ${report.aborted}`),
  );
  return lines;
}
