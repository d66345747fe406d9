// The backend parity suite (test/parity/) on Deno's WebGPU (wgpu; llvmpipe on machines without
// a GPU) against the cpu oracle. CI runs the quick set (each case under its quick profiles, no
// tuning candidates: about a minute on a loaded 2-core machine); COSGRAD_PARITY=full runs every
// case under both kernel profiles and every tuning candidate of the convolution cases. The same
// cases run in headless Chromium (Dawn + Tint) in test/browser_parity_test.ts.
// COSGRAD_PARITY_CASES=prefix,... picks cases; COSGRAD_PARITY_LOG=1 prints every run.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { gpu } from "../src/backend/webgpu/_gpu_test_util.ts";
import { CASES } from "./parity/cases.ts";
import { type GpuUnderTest, runParity, summarize } from "./parity/run.ts";

const full = Deno.env.get("COSGRAD_PARITY") === "full";
const only = Deno.env.get("COSGRAD_PARITY_CASES");
const log = Deno.env.get("COSGRAD_PARITY_LOG") !== undefined;

Deno.test({
  name: "parity: every lowering path on Deno's WebGPU agrees with the cpu oracle",
  ignore: gpu === null,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const report = await runParity(CASES, {
      cg,
      gpu: gpu as unknown as GpuUnderTest,
      implementation: "deno",
      candidates: full ? "all" : "none",
      set: full ? "full" : "quick",
      filter: only === undefined
        ? undefined
        : (c) => only.split(",").some((p) => c.name.startsWith(p)),
      onResult: log
        ? (r) =>
          console.log(
            `${r.status} ${r.case} [${r.profile}] ${r.variant} ${r.ms.toFixed(0)} ms, ` +
              `${r.pipelines} pipelines${r.message === null ? "" : `: ${r.message}`}`,
          )
        : undefined,
    });
    const lines = summarize(report);
    console.log(lines.join("\n"));
    assert.equal(report.aborted, null, report.aborted ?? "");
    assert.equal(report.counts.fail + report.counts.timeout, 0, lines.join("\n"));
    // Every case ran (or was skipped as a known issue, with its reason printed above).
    const ran = new Set(report.results.map((r) => r.case));
    const missing = CASES.filter((c) => only === undefined && !ran.has(c.name));
    assert.deepEqual(missing.map((c) => c.name), []);
  },
});
