// The backend parity suite (test/parity/) in headless Chromium: a second WebGPU implementation
// (Dawn + Tint; WebGPU on SwiftShader without a GPU), through the library bundle. The cases run
// in a page (scripts/browser_parity_page.ts) driven by scripts/browser_parity.ts in its own
// `deno run -A` process (playwright-core needs more than the test task's permissions). CI runs
// the quick set (under ~90 s on 2 cores); COSGRAD_PARITY=full runs every case under both
// kernel profiles with every tuning candidate (tens of minutes).
//
// Skips itself, with a message, where /usr/bin/chromium is missing (CI installs it with apt).
import assert from "node:assert/strict";
import { CASES } from "./parity/cases.ts";
import { summarize } from "./parity/run.ts";
import type { ChromiumSuiteReport } from "../scripts/browser_parity.ts";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = new URL("../", import.meta.url);
const full = Deno.env.get("COSGRAD_PARITY") === "full";

function hasChromium(): boolean {
  try {
    return Deno.statSync(CHROMIUM).isFile;
  } catch {
    return false;
  }
}

const available = hasChromium();
if (!available) {
  console.warn(
    `browser_parity_test: skipped, ${CHROMIUM} is missing (apt-get install chromium to run it)`,
  );
}

Deno.test({
  name: "parity: every lowering path in headless Chromium (Dawn + Tint) agrees with the cpu oracle",
  ignore: !available,
  async fn() {
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        `--lock=${decodeURIComponent(new URL("deno.dev.lock", ROOT).pathname)}`,
        "-A",
        decodeURIComponent(new URL("scripts/browser_parity.ts", ROOT).pathname),
        "--set",
        full ? "full" : "quick",
        "--candidates",
        full ? "all" : "none",
        "--run-timeout-ms",
        "60000",
        "--timeout-ms",
        full ? "7200000" : "300000",
      ],
      cwd: decodeURIComponent(ROOT.pathname),
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.ok(out.success, `browser_parity failed:\n${stderr}`);
    const r = JSON.parse(new TextDecoder().decode(out.stdout)) as ChromiumSuiteReport;
    const lines = summarize(r.report);
    console.log(`Chromium ${r.browser}\n${lines.join("\n")}`);
    assert.equal(r.pageError, null, `the page stopped: ${r.pageError}`);
    assert.deepEqual(r.errors, [], "page errors");
    assert.equal(r.timedOut, false, "the suite did not finish in time");
    assert.equal(r.report.counts.fail + r.report.counts.timeout, 0, lines.join("\n"));
    const ran = new Set(r.report.results.map((x) => x.case));
    assert.deepEqual(CASES.filter((c) => !ran.has(c.name)).map((c) => c.name), []);
  },
});
