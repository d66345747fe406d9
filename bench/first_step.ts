/**
 * T1's (or T2's) training steps one by one on WebGPU, each timed to the end of its device work:
 * the first (tracing, compiling, the driver compiling each kernel at its first dispatch), the
 * second, and `--steps` more, so that the cost of a first run and of the tuner's tiers shows
 * step by step. Run it with `MESA_SHADER_CACHE_DISABLE=true` and `COSGRAD_TUNE_CACHE` pointing
 * at a missing file to see a fresh machine.
 *
 * Usage: `deno run -A bench/first_step.ts [--workload T1] [--steps 8]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";
import { prepareTrain } from "./cosgrad.ts";

const USAGE = `Usage: deno run -A bench/first_step.ts [--workload T1|T2] [--steps N]`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      workload: { type: "string", default: "T1" },
      steps: { type: "string", default: "8" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const id = values.workload as "T1" | "T2";
  if (id !== "T1" && id !== "T2") {
    throw new TypeError(`Invalid --workload "${id}": expected T1 or T2`);
  }
  const steps = Number(values.steps);
  const backend = await cg.initWebGpu();
  const wait = () => backend.synchronize();
  const t0 = performance.now();
  const prep = await prepareTrain(id, wait, 600_000);
  const warm = prep.prewarmed;
  if (warm === undefined) throw new Error(`${id}: the first steps were not run`);
  const times: number[] = [warm.firstMs ?? NaN, ...warm.steadyMs ?? []];
  console.log(
    `${id} on ${(backend as unknown as { description: string }).description}: step 1 ${
      (times[0] / 1000).toFixed(1)
    } s, step 2 ${(times[1] / 1000).toFixed(1)} s (both with reading the loss)`,
  );
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    prep.run();
    await prep.wait();
    times.push(performance.now() - t);
    console.log(`step ${times.length}: ${(times.at(-1)! / 1000).toFixed(2)} s`);
  }
  const rest = times.slice(2).sort((a, b) => a - b);
  console.log(
    `total ${((performance.now() - t0) / 1000).toFixed(1)} s; median of steps 3-${times.length}: ${
      (rest[Math.floor(rest.length / 2)] / 1000).toFixed(2)
    } s`,
  );
}

if (import.meta.main) await main();
