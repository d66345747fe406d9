/**
 * `deno task tune`: tunes the convolution and matmul kernels the standard workloads use on this machine's
 * WebGPU adapter and saves the choices to the tuning cache (see `kernels/tune_cache.ts`), then
 * prints each choice with its candidates' times. Later runs read the cache and tune nothing.
 *
 * With `--backend wasm`, measures the wasm GEMM's blockings on this engine and CPU instead (see
 * `src/backend/wasm/tune.ts`) and saves the record.
 *
 * Usage: `deno task tune [--workloads T1,C1-fwdbwd] [--budget-s 900] [--shipped FILE]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";
import { startWebGpuBackend } from "../src/backend/webgpu/start.ts";
import { prepareCosgrad } from "./cosgrad.ts";
import type { Variant } from "./peers/_result.ts";
import { TuningTable } from "../kernels/tune_cache.ts";
import { gemmShapeName, relaxedSimd } from "../src/kernel/wasm_gemm.ts";
import { canShare } from "../src/backend/wasm/memory.ts";
import {
  chosenGemm,
  GEMM_CLASS,
  gemmCandidates,
  measureGemm,
  wasmProfileKey,
} from "../src/backend/wasm/tune.ts";

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
  --backend wasm     measure the wasm GEMM's blockings (about a second) and save the choice
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
      backend: { type: "string", default: "webgpu" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.backend === "wasm") {
    tuneWasm();
    return;
  }
  if (values.backend !== "webgpu") {
    throw new TypeError(`Invalid --backend "${values.backend}": expected webgpu or wasm`);
  }
  const budgetMs = Number(values["budget-s"]) * 1000;
  if (!(budgetMs >= 0)) throw new TypeError(`Invalid --budget-s "${values["budget-s"]}"`);
  const start = performance.now();
  const classes: string[] = [];
  const backend = await startWebGpuBackend();
  await cg.setBackend(backend);
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
      // T1 and T2 run their first steps when prepared; the others are run once here.
      const prep = await prepareCosgrad(w as Variant, () => backend.synchronize());
      if (prep.prewarmed === undefined) prep.run();
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

/** Measures the wasm GEMM's blockings, records them in the cache and prints them, best first. */
function tuneWasm(): void {
  const fma = relaxedSimd();
  const table = new TuningTable(wasmProfileKey(fma), "wasm");
  const t0 = performance.now();
  const candidates = measureGemm(gemmCandidates(), { fma, shared: canShare() });
  table.record(GEMM_CLASS, { candidates });
  const path = table.save();
  console.log(
    `wasm GEMM on ${table.key}: ${candidates.length} blockings in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s (steady ms of ${"64x4096x576 + 384^3"}, one thread)`,
  );
  const rows = [...candidates].sort((a, b) => a.runMs - b.runMs);
  for (const m of rows) {
    if (m.variant?.algo !== "wasmGemm") continue;
    const { algo: _algo, ...shape } = m.variant;
    console.log(
      `${m.runMs.toFixed(2).padStart(8)} ms  compile ${m.compileMs.toFixed(1).padStart(5)} ms  ${
        gemmShapeName({ ...shape, fma })
      }${m.error > 1e-4 ? `  wrong (error ${m.error.toExponential(1)})` : ""}`,
    );
  }
  console.log(`chosen: ${gemmShapeName({ ...chosenGemm(table.get(GEMM_CLASS)!, 500), fma })}`);
  console.log(path === null ? "not saved (no cache file)" : `saved to ${path}`);
}

if (import.meta.main) await main();
