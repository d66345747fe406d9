// The backend parity suite (test/parity/) on Deno's WebGPU (wgpu; llvmpipe on machines without
// a GPU): every case under both kernel profiles against the cpu oracle, and the tuning
// candidates of the convolution cases (one per algorithm; all with COSGRAD_PARITY=full). The
// same cases run in headless Chromium (Dawn + Tint) in test/browser_parity_test.ts.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { gpu } from "../src/backend/webgpu/_testing.ts";
import { CASES } from "./parity/cases.ts";
import { type GpuUnderTest, runParity, summarize } from "./parity/run.ts";

const full = Deno.env.get("COSGRAD_PARITY") === "full";
const only = Deno.env.get("COSGRAD_PARITY_CASES");

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
      candidates: full ? "all" : "each-algorithm",
      filter: only === undefined
        ? undefined
        : (c) => only.split(",").some((p) => c.name.startsWith(p)),
      onResult: Deno.env.get("COSGRAD_PARITY_LOG") === undefined ? undefined : (r) =>
        console.log(
          `${r.status} ${r.case} [${r.profile}] ${r.variant} ${
            r.ms.toFixed(0)
          } ms, ${r.pipelines} pipelines${r.message ? `: ${r.message}` : ""}`,
        ),
    });
    const lines = summarize(report);
    console.log(lines.join("\n"));
    assert.equal(report.aborted, null, report.aborted ?? "");
    assert.equal(report.counts.fail + report.counts.timeout, 0, lines.join("\n"));
  },
});
