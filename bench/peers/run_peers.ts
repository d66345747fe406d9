/**
 * Runs the peer frameworks (TensorFlow.js, jax-js, PyTorch) on the standard workloads of
 * bench/WORKLOADS.md and prints a table and JSON. Each framework/backend/workload runs in its
 * own subprocess, bounded in time, so a hang or a crash becomes a table entry, not a gap.
 *
 * ```sh
 * deno run -A bench/peers/run_peers.ts --workloads M1,L1 --frameworks tfjs-webgpu,jax-webgpu,torch-cpu
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { errorText, type PeerResult, type Variant, VARIANTS, withRate } from "./_result.ts";
import type { TimingMode } from "../_timing.ts";

/** Framework-backend pairs the runner knows. */
export const PEERS = [
  "tfjs-cpu",
  "tfjs-wasm",
  "tfjs-webgpu",
  "jax-webgpu",
  "jax-wasm",
  "jax-cpu",
  "torch-cpu",
  "torch-cuda",
] as const;

/** One framework-backend pair. */
export type Peer = typeof PEERS[number];

/** Options of {@linkcode runPeers}. */
export type RunPeersOptions = {
  /** Workload variants; default M1, C1-fwd, C1-fwdbwd, L1, T1. */
  workloads?: Variant[];
  /** Framework-backend pairs; default all but torch-cuda. */
  frameworks?: Peer[];
  /** Timed repetitions (at least 5); default 5. */
  reps?: number;
  /** A steady call slower than this (ms) is reported as too slow; default 60000. */
  maxCallMs?: number;
  /** Timing modes of WebGPU backends; default latency and throughput (others: latency). */
  modes?: TimingMode[];
  /** Wall-clock limit of one subprocess (s); default 900. */
  timeoutS?: number;
  /** Called with each result as it arrives. */
  onResult?: (r: PeerResult) => void;
};

const HERE = new URL("./", import.meta.url);
const PREFIX = "PEER_RESULT ";
const DEFAULT_WORKLOADS: Variant[] = ["M1", "C1-fwd", "C1-fwdbwd", "L1", "T1"];
const GPU_ONLY = new Set<Variant>(["M4", "T2"]);

function splitPeer(p: Peer): { framework: string; backend: string } {
  const [f, b] = p.split("-");
  return { framework: f === "jax" ? "jax-js" : f, backend: b };
}

/**
 * Runs `cmd` with a wall-clock limit (SIGKILL when it passes); returns its stdout lines, exit
 * code, whether it timed out, and the last lines of stderr.
 *
 * @example
 * ```ts
 * import { spawn } from "./run_peers.ts";
 * typeof spawn; // "function"
 * ```
 */
export async function spawn(
  cmd: string,
  args: string[],
  opts: { env?: Record<string, string>; timeoutS: number },
): Promise<{ lines: string[]; code: number; timedOut: boolean; stderr: string }> {
  const child = new Deno.Command(cmd, {
    args,
    env: { XDG_RUNTIME_DIR: Deno.env.get("XDG_RUNTIME_DIR") ?? "/tmp/xdg", ...opts.env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
  }, opts.timeoutS * 1000);
  const out = await child.output();
  clearTimeout(timer);
  const dec = new TextDecoder();
  return {
    lines: dec.decode(out.stdout).split("\n"),
    code: out.code,
    timedOut,
    stderr: dec.decode(out.stderr).trim().split("\n").slice(-3).join(" | "),
  };
}

function failure(peer: Peer, workload: Variant, error: string): PeerResult {
  const { framework, backend } = splitPeer(peer);
  // The versions deno.json maps; PyTorch's is known only to its own process.
  const version = { tfjs: "4.22.0", "jax-js": "0.1.25" }[framework] ?? "?";
  return { framework, version, backend, workload, error };
}

async function runOne(peer: Peer, workload: Variant, opts: RunPeersOptions): Promise<PeerResult[]> {
  const timeoutS = opts.timeoutS ?? 900;
  const reps = String(opts.reps ?? 5), maxCallMs = String(opts.maxCallMs ?? 60_000);
  if (peer === "jax-cpu") {
    return [failure(peer, workload, "skipped: jax-js's cpu backend is a debug interpreter")];
  }
  if (GPU_ONLY.has(workload) && !peer.endsWith("webgpu") && peer !== "torch-cuda") {
    return [failure(peer, workload, "skipped: GPU-only workload")];
  }
  let res;
  if (peer.startsWith("torch")) {
    const blas = "/usr/lib/x86_64-linux-gnu/openblas-pthread";
    const debian = await Deno.stat("/usr/bin/python3").then(() => true, () => false);
    const hasBlas = await Deno.stat(blas).then(() => true, () => false);
    res = await spawn(debian ? "/usr/bin/python3" : "python3", [
      new URL("torch.py", HERE).pathname,
      "--workloads",
      workload,
      "--devices",
      peer === "torch-cuda" ? "cuda" : "cpu",
      "--reps",
      reps,
      "--max-call-ms",
      maxCallMs,
      ...(opts.modes && peer === "torch-cuda" ? ["--modes", opts.modes.join(",")] : []),
    ], { env: hasBlas ? { LD_LIBRARY_PATH: blas } : {}, timeoutS });
  } else {
    res = await spawn(Deno.execPath(), [
      "run",
      `--lock=${decodeURIComponent(new URL("../../deno.dev.lock", HERE).pathname)}`,
      "-A",
      new URL("run_peers.ts", HERE).pathname,
      "--worker",
      peer,
      "--workloads",
      workload,
      "--reps",
      reps,
      "--max-call-ms",
      maxCallMs,
      ...(opts.modes ? ["--modes", opts.modes.join(",")] : []),
    ], { timeoutS });
  }
  const results: PeerResult[] = [];
  for (const line of res.lines) {
    const t = line.trim();
    const json = t.startsWith(PREFIX) ? t.slice(PREFIX.length) : t.startsWith("{") ? t : "";
    if (!json) continue;
    try {
      results.push(withRate(JSON.parse(json) as PeerResult));
    } catch { /* not a result line */ }
  }
  if (res.timedOut) {
    results.push(failure(peer, workload, `timed out after ${timeoutS} s (subprocess killed)`));
  } else if (results.length === 0) {
    results.push(failure(peer, workload, `exit code ${res.code}: ${res.stderr || "no result"}`));
  }
  return results;
}

/**
 * Runs every requested framework-backend pair on every requested workload, each in its own
 * subprocess, and returns all results (failures included, as results with `error`).
 *
 * @example
 * ```ts ignore
 * import { runPeers } from "./run_peers.ts";
 * const results = await runPeers({ workloads: ["M1"], frameworks: ["tfjs-cpu"] });
 * ```
 */
export async function runPeers(opts: RunPeersOptions = {}): Promise<PeerResult[]> {
  const all: PeerResult[] = [];
  for (const peer of opts.frameworks ?? PEERS.filter((p) => p !== "torch-cuda")) {
    for (const w of opts.workloads ?? DEFAULT_WORKLOADS) {
      const rs = await runOne(peer, w, opts);
      for (const r of rs) opts.onResult?.(r);
      all.push(...rs);
    }
  }
  return all;
}

function fmtMs(ms: number): string {
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function cell(rs: PeerResult[]): string {
  if (rs.length === 0) return "-";
  const err = rs.find((r) => r.error);
  if (err && rs.every((r) => r.error)) return `ERROR ${err.error}`;
  const parts: string[] = [];
  for (const r of rs.filter((r) => !r.error)) {
    let s = `${r.mode === "throughput" ? `thr x${r.calls ?? "?"}` : "lat"} ${fmtMs(r.ms!)} ms`;
    if (r.firstOnly) {
      s = `TOO SLOW (first call, compiling: ${fmtMs(r.ms!)} ms; no steady call)`;
    } else if (r.tooSlow) {
      s = `TOO SLOW (one steady call ${fmtMs(r.ms!)} ms${
        r.rate ? `, ${r.rate.value.toPrecision(3)} ${r.rate.unit}` : ""
      })`;
    } else if (r.rate) {
      s += ` (${r.rate.value.toPrecision(3)} ${r.rate.unit})`;
    }
    parts.push(s);
  }
  const first = rs.find((r) => !r.error)!;
  if (first.firstMs !== undefined && !first.firstOnly) {
    parts.push(`first call (compiling) ${fmtMs(first.firstMs)} ms`);
  }
  if (first.wrong) parts.push(`WRONG: ${first.check}`);
  if (first.loss !== undefined && first.workload !== "L1") {
    parts.push(
      `loss ${first.loss.toFixed(4)}${
        first.extra?.loss1 !== undefined ? ` -> ${(first.extra.loss1 as number).toFixed(4)}` : ""
      }`,
    );
  }
  if (typeof first.extra?.peakMiB === "number") {
    const mib = (k: string) => (first.extra![k] as number).toFixed(1);
    parts.push(
      `peak device memory ${mib("peakMiB")} MiB (params ${mib("paramsMiB")} + momentum ${
        mib("momentumMiB")
      }; largest buffer ${mib("largestBufferMiB")})`,
    );
  }
  if (first.loss !== undefined && first.workload === "L1") {
    parts.push(`loss ${first.loss.toFixed(4)}`);
  }
  return parts.join("; ");
}

/**
 * A plain-text table, one row per framework/backend and workload, with the adapters named.
 *
 * @example
 * ```ts
 * import { formatTable } from "./run_peers.ts";
 * formatTable([{ framework: "tfjs", version: "4.22.0", backend: "cpu", workload: "M1", error: "boom" }])
 *   .includes("ERROR boom"); // true
 * ```
 */
export function formatTable(results: PeerResult[]): string {
  const groups = new Map<string, PeerResult[]>();
  for (const r of results) {
    const key = `${r.framework} ${r.version} ${r.backend}\t${r.workload}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  const rows = [...groups].map(([k, rs]) => {
    const [peer, w] = k.split("\t");
    return [peer, w, cell(rs)];
  });
  const w0 = Math.max(9, ...rows.map((r) => r[0].length)), w1 = 10;
  const lines = [`${"framework".padEnd(w0)}  ${"workload".padEnd(w1)}  result`];
  for (const r of rows) lines.push(`${r[0].padEnd(w0)}  ${r[1].padEnd(w1)}  ${r[2]}`);
  const adapters = new Set(
    results.filter((r) => r.adapter).map((r) => `${r.framework} ${r.backend}: ${r.adapter}`),
  );
  if (adapters.size) lines.push("", "adapters:", ...[...adapters].map((a) => `  ${a}`));
  return lines.join("\n");
}

async function worker(
  peer: Peer,
  workloads: Variant[],
  opts: { reps: number; maxCallMs: number; modes?: TimingMode[] },
) {
  const { reps, maxCallMs } = opts;
  const { backend } = splitPeer(peer);
  const modes = timingModes(backend, opts.modes);
  for (const w of workloads) {
    let rs: PeerResult[];
    try {
      if (peer.startsWith("tfjs")) {
        const { runTfjs } = await import("./tfjs.ts");
        rs = await runTfjs(w, { backend: backend as "cpu", modes, reps, maxCallMs });
      } else {
        const { runJax } = await import("./jaxjs.ts");
        rs = await runJax(w, { backend: backend as "wasm", modes, reps, maxCallMs });
      }
    } catch (e) {
      rs = [failure(peer, w, errorText(e))];
    }
    for (const r of rs) {
      r.extra = { ...r.extra, loadavg: Deno.loadavg()[0] };
      console.log(PREFIX + JSON.stringify(r));
    }
  }
}

/**
 * The timing modes a backend runs: `wanted` (from `--modes`) where it is a GPU backend, else
 * latency only (a CPU backend has nothing to overlap); default both on GPU backends.
 *
 * @example
 * ```ts
 * import { timingModes } from "./run_peers.ts";
 * timingModes("webgpu", ["throughput"]); // ["throughput"]
 * timingModes("wasm", ["throughput"]); // ["latency"]
 * ```
 */
export function timingModes(backend: string, wanted?: TimingMode[]): TimingMode[] {
  if (backend !== "webgpu" && backend !== "cuda") return ["latency"];
  return wanted && wanted.length ? wanted : ["latency", "throughput"];
}

/** Timing modes by name. */
export const MODES: readonly TimingMode[] = ["latency", "throughput"];

function list<T extends string>(
  s: string | undefined,
  known: readonly T[],
  what: string,
): T[] | undefined {
  if (!s) return undefined;
  return s.split(",").map((x) => {
    if (!known.includes(x as T)) {
      throw new RangeError(`Unknown ${what} ${x}, expected one of ${known.join(", ")}`);
    }
    return x as T;
  });
}

const USAGE = `Usage: deno run -A bench/peers/run_peers.ts [options]
  --workloads LIST    ${VARIANTS.join(",")} (default ${DEFAULT_WORKLOADS.join(",")})
  --frameworks LIST   ${PEERS.join(",")} (default all but torch-cuda)
  --reps N            timed repetitions, at least 5 (default 5)
  --modes LIST        timing modes of GPU backends: latency,throughput (default both)
  --max-call-ms MS    a steady call (after the first, compiling one) slower than this is
                      reported as too slow (default 60000); the first call may take 5x that
  --timeout-s S       limit of one subprocess (default 900)
  --json FILE         also write all results as JSON to FILE
  --help`;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      workloads: { type: "string" },
      frameworks: { type: "string" },
      reps: { type: "string" },
      "max-call-ms": { type: "string" },
      modes: { type: "string" },
      "timeout-s": { type: "string" },
      json: { type: "string" },
      worker: { type: "string" },
      help: { type: "boolean" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const modes = list(values.modes, MODES, "timing mode");
  const workloads = list(values.workloads, VARIANTS, "workload");
  const reps = Number(values.reps ?? 5), maxCallMs = Number(values["max-call-ms"] ?? 60_000);
  if (values.worker) {
    const [peer] = list(values.worker, PEERS, "framework")!;
    await worker(peer, workloads ?? DEFAULT_WORKLOADS, { reps, maxCallMs, modes });
    Deno.exit(0); // jax-js's wasm worker threads would keep the process alive
  }
  const results = await runPeers({
    workloads,
    frameworks: list(values.frameworks, PEERS, "framework"),
    reps,
    maxCallMs,
    modes,
    timeoutS: Number(values["timeout-s"] ?? 900),
    onResult: (r) =>
      console.error(
        `${r.framework}-${r.backend} ${r.workload} ${r.mode ?? ""} ${
          r.error ?? `${r.ms?.toFixed(1)} ms`
        }`,
      ),
  });
  console.log(formatTable(results));
  console.log(JSON.stringify(results));
  if (values.json) await Deno.writeTextFile(values.json, JSON.stringify(results, null, 2) + "\n");
}
