/**
 * `deno task compare`: cosgrad against TensorFlow.js, jax-js and PyTorch on the standard
 * workloads of bench/WORKLOADS.md. Every framework/backend/workload runs in its own
 * subprocess with a time limit (cosgrad here, the peers through bench/peers/run_peers.ts), so a
 * hang or crash becomes a table entry. L1 runs first for every framework: its CosFace loss must
 * be 35.8995 on the seeded inputs before the framework's other times count. Prints a table of
 * medians, the ratio cosgrad-webgpu / peer per workload (same timing mode, same adapter), the
 * adapters and versions, and writes JSON.
 *
 * ```sh
 * deno task compare --workloads M1,L1 --frameworks cosgrad-webgpu,tfjs-webgpu --json out/compare.json
 * ```
 *
 * @module
 */

import {
  choiceOption,
  intOption,
  listOption,
  numberOption,
  parseCli,
  runMain,
  UsageError,
} from "../examples/_cli.ts";
import {
  formatTable,
  MODES,
  type Peer,
  PEERS,
  runPeers,
  spawn,
  timingModes,
} from "./peers/run_peers.ts";
import { errorText, type PeerResult, type Variant, VARIANTS, withRate } from "./peers/_result.ts";
import { WORKLOADS } from "./_inputs.ts";
import type { TimingMode } from "./_timing.ts";

/** cosgrad's framework-backend pairs. */
export const COSGRAD = ["cosgrad-webgpu", "cosgrad-wasm", "cosgrad-cpu"] as const;

/** The cosgrad backend of a framework-backend pair. */
function cosgradBackend(fw: string): "webgpu" | "wasm" | "cpu" {
  return fw === "cosgrad-webgpu" ? "webgpu" : fw === "cosgrad-wasm" ? "wasm" : "cpu";
}

/** Every framework-backend pair the comparison knows. */
export const FRAMEWORKS = [...COSGRAD, ...PEERS] as const;

/** One framework-backend pair of {@linkcode FRAMEWORKS}. */
export type Framework = typeof FRAMEWORKS[number];

const PREFIX = "COSGRAD_RESULT ";
/** The lockfile of the benchmark and test tools (the root deno.lock holds the library's only). */
const DEV_LOCK = decodeURIComponent(new URL("../deno.dev.lock", import.meta.url).pathname);
const DEFAULT_WORKLOADS: Variant[] = ["M1", "C1-fwd", "C1-fwdbwd", "L1", "T1"];
const GPU_ONLY = new Set<Variant>(["M4", "T2"]);

async function runCosgradSub(
  fw: typeof COSGRAD[number],
  workload: Variant,
  opts: { reps: number; maxCallMs: number; timeoutS: number; modes?: TimingMode[] },
): Promise<PeerResult[]> {
  const backend = cosgradBackend(fw);
  const base: PeerResult = { framework: "cosgrad", version: "0.1.0", backend, workload };
  if (GPU_ONLY.has(workload) && backend !== "webgpu") {
    return [{ ...base, error: "skipped: GPU-only workload" }];
  }
  const out = await spawn(Deno.execPath(), [
    "run",
    `--lock=${DEV_LOCK}`,
    "-A",
    new URL(import.meta.url).pathname,
    "--worker",
    fw,
    "--workloads",
    workload,
    "--reps",
    String(opts.reps),
    "--max-call-ms",
    String(opts.maxCallMs),
    ...(opts.modes ? ["--modes", opts.modes.join(",")] : []),
  ], { timeoutS: opts.timeoutS });
  const results: PeerResult[] = [];
  for (const line of out.lines) {
    if (!line.startsWith(PREFIX)) continue;
    try {
      results.push(withRate(JSON.parse(line.slice(PREFIX.length)) as PeerResult));
    } catch { /* not a result line */ }
  }
  if (out.timedOut) {
    results.push({ ...base, error: `timed out after ${opts.timeoutS} s (subprocess killed)` });
  } else if (results.length === 0) {
    results.push({ ...base, error: `exit code ${out.code}: ${out.stderr || "no result"}` });
  }
  return results;
}

/**
 * The L1 agreement check: for every framework-backend pair that ran L1, whether its loss is
 * within 1e-3 of WORKLOADS.md's 35.8995.
 *
 * @example
 * ```ts
 * import { l1Agreement } from "./compare.ts";
 * l1Agreement([{ framework: "x", version: "1", backend: "cpu", workload: "L1", loss: 35.8995 }]);
 * // [{ who: "x-cpu", ok: true, text: "35.8995" }]
 * ```
 */
export function l1Agreement(results: PeerResult[]): { who: string; ok: boolean; text: string }[] {
  const expected = WORKLOADS.L1.params.expectedLoss;
  const seen = new Map<string, { who: string; ok: boolean; text: string }>();
  for (const r of results) {
    if (r.workload !== "L1") continue;
    const who = `${r.framework}-${r.backend}`;
    if (seen.has(who) && !r.error) continue;
    if (r.error || r.loss === undefined) {
      if (!seen.has(who)) seen.set(who, { who, ok: false, text: `no loss: ${r.error ?? "?"}` });
      continue;
    }
    seen.set(who, {
      who,
      ok: Math.abs(r.loss - expected) <= 1e-3,
      text: r.loss.toFixed(4),
    });
  }
  return [...seen.values()];
}

/** A figure in `mode` of a completed timing (not failed, not too slow); undefined if none. */
function figure(rs: PeerResult[], mode: TimingMode): PeerResult | undefined {
  return rs.find((r) => !r.error && !r.tooSlow && r.mode === mode && r.ms !== undefined);
}

/** Any steady figure: a timed one (throughput first), else one steady too-slow call. */
function anySteady(rs: PeerResult[]): PeerResult | undefined {
  return figure(rs, "throughput") ?? figure(rs, "latency") ??
    rs.find((r) => !r.error && r.tooSlow && !r.firstOnly && r.ms !== undefined);
}

function describe(r: PeerResult): string {
  const rate = r.rate?.unit === "images/s" ? `, ${r.rate.value.toPrecision(3)} images/s` : "";
  const what = r.tooSlow ? "one steady call" : r.mode === "throughput" ? "throughput" : "latency";
  return `${what} ${r.ms!.toFixed(1)} ms${rate}`;
}

/**
 * Ratios cosgrad-webgpu time / peer time per workload, in the same timing mode (throughput
 * where both have it, else latency), one line per peer and workload. Where no mode is timed on
 * both sides, a steady figure of each side is compared and both are named (a too-slow row's one
 * steady call counts; a row that stopped after its first, compiling call never does).
 *
 * @example
 * ```ts
 * import { ratioLines } from "./compare.ts";
 * const r = (framework: string, backend: string, ms: number) => ({
 *   framework, version: "1", backend, workload: "M1" as const, mode: "latency" as const, ms,
 * });
 * ratioLines([r("cosgrad", "webgpu", 10), r("tfjs", "webgpu", 20)]);
 * // ["M1         tfjs-webgpu     0.50 (latency: 10.0 ms vs 20.0 ms)"]
 * ```
 */
export function ratioLines(results: PeerResult[]): string[] {
  const lines: string[] = [];
  const workloads = [...new Set(results.map((r) => r.workload))];
  for (const w of workloads) {
    const ours = results.filter(
      (r) => r.framework === "cosgrad" && r.backend === "webgpu" && r.workload === w,
    );
    const peers = new Map<string, PeerResult[]>();
    for (const r of results) {
      if (r.workload !== w || (r.framework === "cosgrad" && r.backend === "webgpu")) continue;
      const k = `${r.framework}-${r.backend}`;
      peers.set(k, [...(peers.get(k) ?? []), r]);
    }
    for (const [k, rs] of peers) {
      let text = "n/a (no steady figure on one side)";
      const same = (["throughput", "latency"] as const).find((m) =>
        figure(ours, m) && figure(rs, m)
      );
      if (same) {
        const a = figure(ours, same)!, b = figure(rs, same)!;
        const rate = a.rate?.unit === "images/s"
          ? `; ${a.rate.value.toPrecision(3)} vs ${b.rate!.value.toPrecision(3)} images/s`
          : "";
        text = `${(a.ms! / b.ms!).toFixed(2)} (${same}: ${a.ms!.toFixed(1)} ms vs ${
          b.ms!.toFixed(1)
        } ms${rate})`;
      } else {
        const a = anySteady(ours), b = anySteady(rs);
        if (a && b) text = `${(a.ms! / b.ms!).toFixed(2)} (${describe(a)} vs ${describe(b)})`;
      }
      lines.push(`${w.padEnd(10)} ${k.padEnd(15)} ${text}`);
    }
  }
  return lines;
}

async function worker(
  fw: string,
  workloads: Variant[],
  opts: { reps: number; maxCallMs: number; modes?: TimingMode[] },
) {
  const { reps, maxCallMs } = opts;
  const { runCosgrad } = await import("./cosgrad.ts");
  const backend = cosgradBackend(fw);
  const modes = timingModes(backend, opts.modes);
  for (const w of workloads) {
    let rs: PeerResult[];
    try {
      rs = await runCosgrad(w, { backend, modes, reps, maxCallMs });
    } catch (e) {
      rs = [{ framework: "cosgrad", version: "0.1.0", backend, workload: w, error: errorText(e) }];
    }
    for (const r of rs) {
      r.extra = { ...r.extra, loadavg: Deno.loadavg()[0] };
      console.log(PREFIX + JSON.stringify(r));
    }
  }
}

function list<T extends string>(s: string | undefined, known: readonly T[], flag: string): T[] {
  if (s === undefined) return [];
  return listOption(flag, s, (x) => choiceOption(flag, x, known));
}

const USAGE = `Usage: deno task compare [options]
  --workloads LIST    ${VARIANTS.join(",")} (default ${DEFAULT_WORKLOADS.join(",")})
  --frameworks LIST   ${FRAMEWORKS.join(",")} (default all but torch-cuda)
  --skip LIST         framework:workload pairs not to run, each with a reason after '=':
                      e.g. "cosgrad-cpu:T1=one step takes minutes"
  --reps N            timed repetitions, at least 5 (default 5)
  --modes LIST        timing modes of GPU backends: latency,throughput (default both)
  --max-call-ms MS    a steady call (after the first, compiling one, which is timed and shown
                      apart) slower than this is reported as too slow (default 60000); the
                      first call may take up to 5x that before the row stops
  --timeout-s S       limit of one subprocess (default 900)
  --json FILE         also write all results as JSON to FILE
  --help`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseCli(argv, {
    workloads: { type: "string" },
    frameworks: { type: "string" },
    skip: { type: "string", multiple: true },
    reps: { type: "string", default: "5" },
    "max-call-ms": { type: "string", default: "60000" },
    modes: { type: "string" },
    "timeout-s": { type: "string", default: "900" },
    json: { type: "string" },
    worker: { type: "string" },
    help: { type: "boolean", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const wanted = list(values.workloads, VARIANTS, "workloads");
  const workloads = wanted.length ? wanted : DEFAULT_WORKLOADS;
  const reps = intOption("reps", values.reps, { min: 5 });
  const maxCallMs = numberOption("max-call-ms", values["max-call-ms"], { above: 0 });
  const timeoutS = numberOption("timeout-s", values["timeout-s"], { above: 0 });
  const modesAsked = list(values.modes, MODES, "modes");
  const modes = modesAsked.length ? modesAsked : undefined;
  if (values.json === "") throw new UsageError(`--json expects a file path, got ""`);
  if (values.worker) {
    await worker(choiceOption("worker", values.worker, COSGRAD), workloads, {
      reps,
      maxCallMs,
      modes,
    });
    Deno.exit(0);
  }
  const fws = list(values.frameworks, FRAMEWORKS, "frameworks");
  const frameworks = fws.length ? fws : FRAMEWORKS.filter((f) => f !== "torch-cuda");
  const skips = new Map<string, string>();
  for (const s of values.skip ?? []) {
    const [key, ...why] = s.split("=");
    const [fw, w, ...more] = key.split(":");
    if (
      more.length > 0 || !(FRAMEWORKS as readonly string[]).includes(fw) ||
      !(VARIANTS as readonly string[]).includes(w)
    ) {
      throw new UsageError(
        `--skip expects FRAMEWORK:WORKLOAD[=reason] with FRAMEWORK one of ${
          FRAMEWORKS.join(", ")
        } and WORKLOAD one of ${VARIANTS.join(", ")}, got "${s}"`,
      );
    }
    skips.set(key, why.join("=") || "skipped by --skip");
  }
  // L1 first (the agreement check), then the other workloads in the order asked.
  const order: Variant[] = workloads.includes("L1")
    ? ["L1", ...workloads.filter((w) => w !== "L1")]
    : workloads;
  const results: PeerResult[] = [];
  const log = (r: PeerResult) =>
    console.error(
      `${r.framework}-${r.backend} ${r.workload} ${r.mode ?? ""} ${
        r.error ?? `${r.ms?.toFixed(1)} ms${r.tooSlow ? " (too slow)" : ""}`
      }`,
    );
  for (const w of order) {
    for (const fw of frameworks) {
      const skip = skips.get(`${fw}:${w}`);
      if (skip !== undefined) {
        const [f, b] = fw.split("-");
        const r: PeerResult = {
          framework: f === "jax" ? "jax-js" : f,
          version: "",
          backend: b,
          workload: w,
          error: `skipped: ${skip}`,
        };
        log(r);
        results.push(r);
        continue;
      }
      const rs = (COSGRAD as readonly string[]).includes(fw)
        ? await runCosgradSub(fw as typeof COSGRAD[number], w, {
          reps,
          maxCallMs,
          timeoutS,
          modes,
        })
        : await runPeers({
          workloads: [w],
          frameworks: [fw as Peer],
          reps,
          maxCallMs,
          timeoutS,
          modes,
        });
      for (const r of rs) log(r);
      results.push(...rs);
    }
  }
  const agree = l1Agreement(results);
  const lines = [
    `cosgrad compare: ${
      new Date().toISOString()
    }, Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs, load average ${
      Deno.loadavg().map((x) => x.toFixed(2)).join(" ")
    }`,
    "",
    ...(agree.length
      ? [
        `L1 agreement (CosFace loss, expected ${WORKLOADS.L1.params.expectedLoss}):`,
        ...agree.map((a) => `  ${a.who.padEnd(15)} ${a.ok ? "agrees" : "DISAGREES"} ${a.text}`),
      ]
      : ["L1 not run: no loss agreement check in this run"]),
    "",
    formatTable(results),
    "",
    "ratios cosgrad-webgpu / peer (time; < 1 means cosgrad is faster):",
    ...ratioLines(results).map((l) => `  ${l}`),
  ];
  console.log(lines.join("\n"));
  if (values.json) {
    const dir = values.json.includes("/") ? values.json.slice(0, values.json.lastIndexOf("/")) : "";
    if (dir) await Deno.mkdir(dir, { recursive: true });
    await Deno.writeTextFile(
      values.json,
      JSON.stringify(
        { date: new Date().toISOString(), deno: Deno.version.deno, results },
        null,
        2,
      ) +
        "\n",
    );
  }
}

if (import.meta.main) await runMain(main, Deno.args);
