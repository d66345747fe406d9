/**
 * The tuner in headless Chromium (Dawn + Tint; WebGPU on SwiftShader without a GPU): builds
 * `scripts/browser_tune_page.ts`, serves it, and has it measure the candidates of the kernel
 * classes of the shipped llvmpipe table (T1's convolutions and matmuls, M1, L1, C1) with the tuner's own
 * timing; prints what the tuner picks per class ({@linkcode pick} with the default horizon) on
 * stderr and writes every record as JSON (`--out`).
 *
 * ```sh
 * deno run -A scripts/browser_tune.ts --out out/tune_swiftshader.json [--class-s 60]
 * ```
 *
 * @module
 */
import * as esbuild from "npm:esbuild@0.28.2";
import { chromium } from "npm:playwright-core@1.65.1";
import { parseArgs } from "node:util";
import { serveSite } from "./serve.ts";
import { CHROMIUM_FLAGS } from "./browser_check.ts";
import { pick, variantName } from "../kernels/tune.ts";
import { shippedTable, tuneHorizon } from "../kernels/tune_cache.ts";
import LLVMPIPE from "../kernels/tuned_llvmpipe.json" with { type: "json" };
import type { TuneStatus } from "./browser_tune_page.ts";

const ROOT = new URL("../", import.meta.url);

const USAGE = `Usage: deno run -A scripts/browser_tune.ts [--out FILE] [--class-s 60]
          [--classes N] [--match S,S] [--timeout-s 3600] [--chromium /usr/bin/chromium]

Measures the shipped llvmpipe table's kernel classes (T1's convolutions and matmuls, M1, L1, C1;
--match keeps those whose name contains one of the substrings) in headless Chromium with the tuner's timing and
prints each class's pick beside llvmpipe's (kernels/tuned_llvmpipe.json); --out writes the
records as JSON.`;

/** Builds the tuning page into `dir/web/` (`tune.html`, `tune.js`). */
async function buildPage(dir: string): Promise<void> {
  await Deno.mkdir(`${dir}/web`, { recursive: true });
  try {
    await esbuild.build({
      entryPoints: [decodeURIComponent(new URL("scripts/browser_tune_page.ts", ROOT).pathname)],
      outfile: `${dir}/web/tune.js`,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      logLevel: "warning",
    });
  } finally {
    await esbuild.stop();
  }
  await Deno.writeTextFile(
    `${dir}/web/tune.html`,
    `<!doctype html><meta charset="utf-8"><title>cosgrad · tune</title>` +
      `<link rel="icon" href="data:,"><script type="module" src="tune.js"></script>`,
  );
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      out: { type: "string" },
      "class-s": { type: "string", default: "60" },
      classes: { type: "string" },
      match: { type: "string" },
      "timeout-s": { type: "string", default: "3600" },
      chromium: { type: "string", default: "/usr/bin/chromium" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const classS = Number(values["class-s"]);
  const timeoutS = Number(values["timeout-s"]);
  for (const [flag, v] of [["--class-s", classS], ["--timeout-s", timeoutS]] as const) {
    if (!(v > 0)) {
      console.error(`error: ${flag} must be a positive number of seconds (got ${v})`);
      Deno.exit(2);
    }
  }
  const dir = await Deno.makeTempDir({ prefix: "cosgrad_tune_" });
  const site = serveSite({ root: dir, port: 0, log: false });
  const browser = await chromium.launch({
    executablePath: values.chromium,
    args: [...CHROMIUM_FLAGS],
  });
  const t0 = performance.now();
  try {
    await buildPage(dir);
    const page = await browser.newPage();
    page.on("pageerror", (e) => console.error(`page error: ${e}`));
    const url = new URL("tune.html", site.url);
    url.searchParams.set("classMs", String(classS * 1000));
    if (values.classes !== undefined) url.searchParams.set("classes", values.classes);
    if (values.match !== undefined) url.searchParams.set("match", values.match);
    await page.goto(url.href);
    const llvmpipe = shippedTable("kernels/tuned_llvmpipe.json", LLVMPIPE).records;
    const horizon = tuneHorizon();
    let status: TuneStatus | null = null;
    const shown = new Set<string>();
    for (;;) {
      status = await page.evaluate(() =>
        JSON.parse(JSON.stringify((globalThis as unknown as { __tune?: unknown }).__tune ?? null))
      ) as TuneStatus | null;
      for (const [cls, r] of Object.entries(status?.records ?? {})) {
        if (shown.has(cls)) continue;
        shown.add(cls);
        const there = llvmpipe[cls];
        console.error(
          `${cls}: ${variantName(pick(r, horizon).variant)} (llvmpipe: ${
            there === undefined ? "-" : variantName(pick(there, horizon).variant)
          }); ${
            r.candidates.map((m) => `${variantName(m.variant)} ${m.runMs.toFixed(1)}`).join(", ")
          } ms`,
        );
      }
      if (status?.done || status?.error) break;
      if (performance.now() - t0 > timeoutS * 1000) {
        console.error(`stopped after ${timeoutS} s (--timeout-s)`);
        break;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
    if (status?.error) console.error(`the page stopped: ${status.error}`);
    console.error(
      `${shown.size} of ${
        status?.total ?? "?"
      } classes on ${status?.adapter} (Chromium ${browser.version()}) in ${
        ((performance.now() - t0) / 1000).toFixed(0)
      } s`,
    );
    if (values.out !== undefined && status !== null) {
      await Deno.writeTextFile(
        values.out,
        JSON.stringify(
          { adapter: status.adapter, browser: browser.version(), records: status.records },
          null,
          1,
        ),
      );
    }
  } finally {
    await browser.close();
    await site.close();
    await Deno.remove(dir, { recursive: true });
  }
}
