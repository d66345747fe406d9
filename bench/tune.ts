/**
 * `deno task tune`: tunes the convolution kernels the standard workloads use on this machine's
 * WebGPU adapter and saves the choices to the tuning cache (see `kernels/tune_cache.ts`), then
 * prints each choice with its candidates' times. Later runs read the cache and tune nothing.
 *
 * Usage: `deno task tune [--workloads T1,C1-fwdbwd] [--budget-s 900] [--shipped FILE]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { startWebGpuBackend } from "../src/backend/webgpu/start.ts";
import { prepareCosgradWebGpu } from "./cosgrad.ts";
import type { Variant } from "./peers/_result.ts";

const USAGE = `Usage: deno task tune [options]
  --workloads LIST   workloads whose kernels to tune (default T1): T1,T2,C1-fwd,C1-fwdbwd,...
  --budget-s S       stop starting new kernel classes after S seconds (default 1800)
  --class-s S        stop starting new candidates of a class after S seconds (default 60)
  --shipped FILE     also write the records as a shipped table (JSON, one line per kernel
                     class, e.g. kernels/tuned_llvmpipe.json), for adapters whose description
                     starts with its first word
  --help

The cache file is COSGRAD_TUNE_CACHE, else $XDG_CACHE_HOME/cosgrad/tune.json, else
~/.cache/cosgrad/tune.json. Classes already recorded (in the cache or a shipped table) are not measured again; --fresh
ignores the shipped records (point COSGRAD_TUNE_CACHE at a new file to ignore the cache too).
  --fresh            ignore shipped records
  --retune           measure again every class recorded in the cache file (no workloads run;
                     e.g. with MESA_SHADER_CACHE_DISABLE=true for cold compile times)`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      workloads: { type: "string", default: "T1" },
      "budget-s": { type: "string", default: "1800" },
      "class-s": { type: "string", default: "60" },
      shipped: { type: "string" },
      fresh: { type: "boolean", default: false },
      retune: { type: "boolean", default: false },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const budgetMs = Number(values["budget-s"]) * 1000;
  if (!(budgetMs >= 0)) throw new TypeError(`Invalid --budget-s "${values["budget-s"]}"`);
  const start = performance.now();
  const classes: string[] = [];
  const backend = await startWebGpuBackend();
  if (values.fresh) backend.tuning.forgetShipped();
  if (values.retune) {
    backend.tuning.requeue();
    console.log(`retuning ${backend.tuning.misses.size} kernel classes on ${backend.description}`);
    classes.push(
      ...await backend.tunePending({
        budgetMs,
        classBudgetMs: Number(values["class-s"]) * 1000,
        print: console.log,
      }),
    );
  }
  // The workloads are traced and compiled with submissions suppressed: their programs name
  // the kernel classes they use (and create pipelines) without running anything, so that no
  // kernel is compiled by the driver before it is measured.
  const queue = backend.gpu.device.queue;
  const submit = queue.submit;
  for (
    const w of values.retune
      ? []
      : values.workloads.split(",").map((s) => s.trim()).filter((s) => s)
  ) {
    const t0 = performance.now();
    queue.submit = () => {};
    try {
      await prepareCosgradWebGpu(w as Variant);
    } finally {
      queue.submit = submit;
    }
    console.log(
      `${w}: prepared in ${
        ((performance.now() - t0) / 1000).toFixed(1)
      } s on ${backend.description}; ` +
        `${backend.tuning.misses.size} kernel classes without a record`,
    );
    const left = budgetMs - (performance.now() - start);
    classes.push(
      ...await backend.tunePending({
        budgetMs: left,
        classBudgetMs: Number(values["class-s"]) * 1000,
        print: console.log,
      }),
    );
  }
  console.log(
    `tuned ${classes.length} kernel classes in ${
      ((performance.now() - start) / 1000).toFixed(1)
    } s`,
  );
  if (values.shipped !== undefined) {
    const tuning = backend.tuning;
    Deno.writeTextFileSync(values.shipped, tuning.shippedTable(tuning.adapter.split(" ")[0]));
    console.log(`wrote ${values.shipped}`);
  }
}

if (import.meta.main) await main();
