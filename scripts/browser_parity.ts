/**
 * The backend parity suite in headless Chromium (Dawn + Tint, WebGPU on SwiftShader without a
 * GPU): builds the library bundle (`scripts/build.ts`) and the parity page
 * (`scripts/browser_parity_page.ts`, which imports the library as `./cosgrad.js`), serves them,
 * loads the page in Chromium through `playwright-core`, waits for the report and prints it as
 * JSON on stdout (progress on stderr). `test/browser_parity_test.ts` runs this file in its own
 * `deno run -A` process (playwright-core needs more than the test task's permissions).
 *
 * ```sh
 * deno run -A scripts/browser_parity.ts                       # quick set, JSON report
 * deno run -A scripts/browser_parity.ts --set full --candidates all --timeout-ms 3600000
 * ```
 *
 * @module
 */
import * as esbuild from "npm:esbuild@0.28.2";
import { chromium } from "npm:playwright-core@1.65.1";
import { parseArgs } from "node:util";
import { build } from "./build.ts";
import { serveSite } from "./serve.ts";
import { CHROMIUM_FLAGS } from "./browser_check.ts";
import type { ParityStatus } from "./browser_parity_page.ts";
import type { CaseResult, ParityReport, Status } from "../test/parity/run.ts";

const ROOT = new URL("../", import.meta.url);

function path(u: URL): string {
  return decodeURIComponent(u.pathname);
}

const PAGE_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <title>cosgrad · backend parity</title>
    <link rel="icon" href="data:,">
    <style>
      body { font: 13px/1.4 ui-monospace, monospace; margin: 1em; }
      .fail, .timeout { color: #b00; } .skip { color: #a60; }
    </style>
    <script type="module" src="parity.js"></script>
  </head>
  <body>
    <h1>cosgrad: backend parity against the cpu oracle</h1>
    <ul id="log"></ul>
  </body>
</html>
`;

/**
 * An esbuild plugin that leaves the library out of the page's bundle: imports of `mod.ts` or
 * `src/web.ts` become an import of `./cosgrad.js`, the library bundle `scripts/serve.ts`
 * serves at the site's root.
 */
function libraryAsExternal(): esbuild.Plugin {
  const entries = new Set([path(new URL("mod.ts", ROOT)), path(new URL("src/web.ts", ROOT))]);
  return {
    name: "cosgrad-external",
    setup(b) {
      b.onResolve({ filter: /(mod|web)\.ts$/ }, (args) => {
        const resolved = path(new URL(args.path, `file://${args.resolveDir}/`));
        return entries.has(resolved) ? { path: "./cosgrad.js", external: true } : undefined;
      });
    },
  };
}

/**
 * Writes the parity page into `outDir/web/` (`parity.html`, `parity.js`): served by
 * `scripts/serve.ts` at `/parity.html` beside the library bundle. Throws when the page's
 * bundle would carry library modules of its own (a second backend registry).
 *
 * @example
 * ```ts ignore
 * import { buildParityPage } from "./browser_parity.ts";
 * await buildParityPage("/tmp/site");
 * ```
 */
export async function buildParityPage(outDir: string): Promise<void> {
  await Deno.mkdir(`${outDir}/web`, { recursive: true });
  const out = `${outDir}/web/parity.js`;
  try {
    const result = await esbuild.build({
      entryPoints: [path(new URL("scripts/browser_parity_page.ts", ROOT))],
      outfile: out,
      bundle: true,
      format: "esm",
      platform: "browser",
      target: "es2022",
      sourcemap: true,
      legalComments: "none",
      logLevel: "warning",
      metafile: true,
      plugins: [libraryAsExternal()],
    });
    const inputs = Object.keys(result.metafile?.outputs[out]?.inputs ?? {});
    const leaked = inputs.filter((p) => p.includes("src/"));
    if (leaked.length > 0) {
      throw new TypeError(
        `The parity page bundles library modules ${leaked.join(", ")}: take them from the ` +
          `cosgrad API handed to the cases instead`,
      );
    }
  } finally {
    await esbuild.stop();
  }
  await Deno.writeTextFile(`${outDir}/web/parity.html`, PAGE_HTML);
}

/** Options of {@link runInChromium}. */
export interface ChromiumParityOptions {
  /** The site's address (serving the library bundle and the parity page). */
  url: string;
  /** Page parameters: `candidates`, `cases`, `timeoutMs` (see the page). */
  query?: Record<string, string>;
  /** Chromium's executable (default `/usr/bin/chromium`). */
  executablePath?: string;
  /** Limit of the whole page in milliseconds (default 600000). */
  timeoutMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Where to save a screenshot of the page at the end (none when absent). */
  screenshot?: string;
}

/** What {@link runInChromium} returns. */
export interface ChromiumParityReport {
  /** Chromium's version. */
  browser: string;
  /** The flags Chromium ran with. */
  flags: string[];
  /** The page's report (null when it stopped with an error or timed out). */
  report: ParityReport | null;
  /** The page's status at the end. */
  status: ParityStatus;
  /** Console errors and uncaught exceptions of the page. */
  errors: string[];
  /** Whether the page did not finish within the limit. */
  timedOut: boolean;
}

/**
 * Loads the parity page in headless Chromium and waits for its report (see the module
 * documentation). A page that does not finish in time is reported with `timedOut` and the
 * runs it finished.
 *
 * @example
 * ```ts ignore
 * import { runInChromium } from "./browser_parity.ts";
 * const r = await runInChromium({ url: "http://127.0.0.1:8000/" });
 * r.report?.counts; // { pass: ..., fail: 0, skip: ..., timeout: 0 }
 * ```
 */
export async function runInChromium(
  options: ChromiumParityOptions,
): Promise<ChromiumParityReport> {
  const flags = [...CHROMIUM_FLAGS];
  const browser = await chromium.launch({
    executablePath: options.executablePath ?? "/usr/bin/chromium",
    args: flags,
  });
  try {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(String(e)));
    const url = new URL("parity.html", options.url);
    for (const [k, v] of Object.entries(options.query ?? {})) url.searchParams.set(k, v);
    await page.goto(url.href);
    const limit = options.timeoutMs ?? 600_000;
    const start = performance.now();
    let seen = 0;
    let timedOut = false;
    const read = () =>
      page.evaluate(() =>
        JSON.parse(
          JSON.stringify((globalThis as unknown as { __parity?: unknown }).__parity ?? null),
        )
      ) as Promise<ParityStatus | null>;
    let status: ParityStatus | null = null;
    for (;;) {
      status = await read();
      if (status !== null) {
        for (const r of status.results.slice(seen)) {
          options.log?.(
            `${r.status} ${r.case} [${r.profile}] ${r.variant} ${r.ms.toFixed(0)} ms` +
              (r.message === null ? "" : `: ${r.message}`),
          );
        }
        seen = status.results.length;
        if (status.done) break;
      }
      if (performance.now() - start > limit) {
        timedOut = true;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (options.screenshot !== undefined) {
      await page.screenshot({ path: options.screenshot, fullPage: true });
    }
    const final = status ?? {
      done: false,
      results: [],
      report: null,
      error: "the page published no status",
      userAgent: "",
    };
    return {
      browser: browser.version(),
      flags,
      report: final.report,
      status: final,
      errors,
      timedOut,
    };
  } finally {
    await browser.close();
  }
}

/** What {@link runSuiteInChromium} returns. */
export interface ChromiumSuiteReport {
  /** Chromium's version. */
  browser: string;
  /** The flags Chromium ran with. */
  flags: string[];
  /** Every run of every page load, merged (a run timed out in one load, skipped in the next). */
  report: ParityReport;
  /** Page loads after the first, each after a run that timed out. */
  restarts: number;
  /** An error that stopped a page (no adapter, a bug), else null. */
  pageError: string | null;
  /** Console errors and uncaught exceptions of the pages. */
  errors: string[];
  /** Whether the suite did not finish within its limit. */
  timedOut: boolean;
}

/**
 * Runs the whole suite in Chromium: when a run times out (a kernel whose pipeline does not
 * compile in time keeps the browser's GPU process busy), the browser is started again and the
 * page continues from that case with the run skipped; the run is reported as `timeout`.
 *
 * @example
 * ```ts ignore
 * import { runSuiteInChromium } from "./browser_parity.ts";
 * const r = await runSuiteInChromium({ url: "http://127.0.0.1:8000/", maxRestarts: 3 });
 * r.report.counts; // { pass: ..., fail: 0, skip: ..., timeout: 0 }
 * ```
 */
export async function runSuiteInChromium(
  options: ChromiumParityOptions & { maxRestarts?: number },
): Promise<ChromiumSuiteReport> {
  const t0 = performance.now();
  const limit = options.timeoutMs ?? 600_000;
  const results: CaseResult[] = [];
  const keys = new Set<string>();
  const skip: { case: string; profile: string; variant: string; reason: string }[] = [];
  const errors: string[] = [];
  let from: string | null = null;
  let restarts = 0;
  let last: ChromiumParityReport;
  for (;;) {
    const query = { ...options.query };
    if (from !== null) query.from = from;
    if (skip.length > 0) query.skip = JSON.stringify(skip);
    last = await runInChromium({
      ...options,
      query,
      timeoutMs: Math.max(1, limit - (performance.now() - t0)),
    });
    errors.push(...last.errors);
    for (const r of last.status.results) {
      const key = `${r.case}|${r.profile}|${r.variant}`;
      if (keys.has(key)) continue;
      keys.add(key);
      results.push(r);
    }
    const stuck = last.status.results.at(-1);
    if (
      last.report?.aborted != null && stuck?.status === "timeout" &&
      restarts < (options.maxRestarts ?? 3)
    ) {
      restarts++;
      skip.push({
        case: stuck.case,
        profile: stuck.profile,
        variant: stuck.variant,
        reason: `timed out in an earlier page load: ${stuck.message}`,
      });
      from = stuck.case;
      options.log?.(`restarting Chromium after ${stuck.case} [${stuck.profile}] ${stuck.variant}`);
      continue;
    }
    break;
  }
  const counts: Record<Status, number> = { pass: 0, fail: 0, skip: 0, timeout: 0 };
  for (const r of results) counts[r.status]++;
  return {
    browser: last.browser,
    flags: last.flags,
    report: {
      implementation: "chromium",
      adapter: last.report?.adapter ?? "unknown (the page stopped before reporting)",
      results,
      counts,
      cases: new Set(results.map((r) => r.case)).size,
      ms: performance.now() - t0,
      aborted: last.report?.aborted ?? (last.timedOut ? "the suite did not finish in time" : null),
    },
    restarts,
    pageError: last.status.error,
    errors,
    timedOut: last.timedOut,
  };
}

const USAGE = `Usage: deno run -A scripts/browser_parity.ts [--set quick|full]
          [--candidates none|each-algorithm|all]
          [--cases PREFIX,...] [--run-timeout-ms 60000] [--timeout-ms 600000]
          [--chromium /usr/bin/chromium] [--screenshot FILE] [--url URL] [--max-restarts 3]

Builds the library bundle and the parity page into a temporary folder, serves it (or uses the
site at --url), runs the backend parity cases in headless Chromium and prints the report as
JSON on stdout; progress goes to stderr. A run over --run-timeout-ms is reported as a timeout
and the browser is started again after it (at most --max-restarts times).`;

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      candidates: { type: "string", default: "each-algorithm" },
      set: { type: "string", default: "quick" },
      cases: { type: "string" },
      "run-timeout-ms": { type: "string", default: "60000" },
      "timeout-ms": { type: "string", default: "600000" },
      chromium: { type: "string" },
      screenshot: { type: "string" },
      url: { type: "string" },
      "max-restarts": { type: "string", default: "3" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(USAGE);
    Deno.exit(0);
  }
  const t0 = performance.now();
  let dir: string | null = null;
  let site: { url: string; close(): Promise<void> } | null = null;
  try {
    let url = values.url;
    if (url === undefined) {
      dir = await Deno.makeTempDir({ prefix: "cosgrad_parity_" });
      await build({ outDir: dir, log: false });
      await buildParityPage(dir);
      site = serveSite({ root: dir, port: 0, log: false });
      url = site.url;
      console.error(`built and serving in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    }
    const query: Record<string, string> = {
      candidates: values.candidates,
      set: values.set,
      timeoutMs: values["run-timeout-ms"],
    };
    if (values.cases !== undefined) query.cases = values.cases;
    const result = await runSuiteInChromium({
      url,
      query,
      executablePath: values.chromium,
      timeoutMs: Number(values["timeout-ms"]),
      screenshot: values.screenshot,
      log: (l) => console.error(l),
      maxRestarts: Number(values["max-restarts"]),
    });
    console.log(JSON.stringify(result));
  } finally {
    await site?.close();
    if (dir !== null) await Deno.remove(dir, { recursive: true });
  }
}
