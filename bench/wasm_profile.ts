/**
 * Where a workload's milliseconds go on the wasm backend: runs one workload of
 * bench/WORKLOADS.md (M1, C1-fwd, C1-fwdbwd, L1, T1) on one thread with `COSGRAD_PROFILE=1`
 * (each command of a program timed on the calling thread), then prints the time per command
 * name and per kind of command (GEMM by operation, im2col, col2im, epilogues, maps and
 * reductions), per call, and the wall time per call beside their sum. Commands are timed in
 * this process's CPU time (`--clock cpu`, the default: time the OS gives other processes on a
 * shared machine is not counted) or wall time (`--clock wall`).
 *
 *   COSGRAD_THREADS=1 COSGRAD_PROFILE=1 deno run -A bench/wasm_profile.ts --workload T1 [--calls 3] [--top 30]
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";
import type { WasmBackend } from "../src/backend/wasm/wasm_backend.ts";
import { prepareCosgrad } from "./cosgrad.ts";
import { type Variant, VARIANTS } from "./peers/_result.ts";

/** The kind of a profiled command, from its name (see `codegen.ts`). */
export function commandKind(name: string): string {
  for (const tail of ["im2col", "col2im", "flip", "epilogue"]) {
    if (name.endsWith(` ${tail}`)) return tail;
  }
  if (name.startsWith("gemm:")) {
    const op = name.slice(5).split(/[+[#]/)[0];
    return `gemm ${op}`;
  }
  return name.split(":")[0];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      workload: { type: "string", default: "T1" },
      calls: { type: "string", default: "3" },
      top: { type: "string", default: "30" },
      clock: { type: "string", default: "cpu" },
    },
  });
  const workload = values.workload as Variant;
  if (!VARIANTS.includes(workload)) {
    throw new RangeError(`--workload ${workload}: expected one of ${VARIANTS.join(", ")}`);
  }
  const calls = Number(values.calls), top = Number(values.top);
  if (!Number.isInteger(calls) || calls < 1) {
    throw new RangeError(`--calls ${values.calls}: expected a positive integer`);
  }
  const backend = await cg.setBackend("wasm") as unknown as WasmBackend;
  if (backend.profile === null) {
    throw new TypeError(
      `The wasm backend runs ${backend.threads} threads without a profile: set COSGRAD_THREADS=1 COSGRAD_PROFILE=1`,
    );
  }
  if (values.clock === "cpu") {
    backend.profileClock = () => {
      const u = process.cpuUsage();
      return (u.user + u.system) / 1000;
    };
  } else if (values.clock !== "wall") {
    throw new RangeError(`--clock ${values.clock}: expected cpu or wall`);
  }
  const wait = () => backend.synchronize();
  const prep = await prepareCosgrad(workload, wait);
  prep.run();
  await prep.wait();
  backend.profile.clear();
  const walls: number[] = [], cpus: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t0 = performance.now(), c0 = process.cpuUsage();
    prep.run();
    await prep.wait();
    walls.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpus.push((c.user + c.system) / 1000);
  }
  const rows = [...backend.profile.entries()].map(([n, ms]) => ({ n, ms: ms / calls }));
  rows.sort((a, b) => b.ms - a.ms);
  const total = rows.reduce((a, r) => a + r.ms, 0);
  const kinds = new Map<string, number>();
  for (const r of rows) kinds.set(commandKind(r.n), (kinds.get(commandKind(r.n)) ?? 0) + r.ms);
  const pct = (ms: number) => `${(100 * ms / total).toFixed(1).padStart(5)}%`;
  console.log(
    `${workload} on ${backend.description}: ${calls} calls, wall ${
      walls.map((w) => w.toFixed(1)).join(", ")
    } ms, cpu ${cpus.map((w) => w.toFixed(1)).join(", ")} ms; commands sum to ${
      total.toFixed(1)
    } ms (${values.clock}) a call`,
  );
  console.log("\nby kind (ms a call):");
  for (const [k, ms] of [...kinds.entries()].sort((a, b) => b[1] - a[1])) {
    console.log(`${ms.toFixed(2).padStart(9)} ${pct(ms)}  ${k}`);
  }
  console.log(`\ntop ${top} commands (ms a call):`);
  for (const r of rows.slice(0, top)) {
    console.log(`${r.ms.toFixed(2).padStart(9)} ${pct(r.ms)}  ${r.n}`);
  }
}

if (import.meta.main) await main();
