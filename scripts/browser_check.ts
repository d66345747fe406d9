/**
 * Drives the margin explorer page in a real Chromium through `playwright-core`: loads the page
 * once per run (URL parameters choose loss, margin, steps), waits for `window.__toy.done`,
 * collects the page's status and saves screenshots. Prints one JSON report on stdout.
 *
 * playwright-core needs more than the test task's permissions (it reads the home folder,
 * `os.release()` and `/proc/sys/...` when imported), so `test/browser_test.ts` runs this file
 * in its own `deno run -A` process.
 *
 * ```sh
 * deno task build && deno task serve &
 * deno run -A scripts/browser_check.ts --url http://127.0.0.1:8000/ \
 *   --run "m0:loss=cosface&m=0&steps=300" --run "m02:loss=cosface&m=0.2&steps=300" \
 *   --screenshot-dir out/browser
 * ```
 *
 * @module
 */
import { chromium } from "npm:playwright-core@1.65.1";
import { intOption, parseCli, runMain, UsageError } from "../examples/_cli.ts";

/** The flags the browser test launches Chromium with (the list). */
export const CHROMIUM_FLAGS: readonly string[] = [
  "--headless",
  "--no-sandbox",
  "--enable-unsafe-webgpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

/** One page load. */
export interface PageRun {
  /** A name for the report and the screenshot file (`<name>.png`). */
  name: string;
  /** The page's URL parameters, e.g. `loss=cosface&m=0.2&steps=300&autostart=1`. */
  query: string;
}

/** Options of {@link checkInChromium}. */
export interface BrowserCheckOptions {
  /** The page's address. */
  url: string;
  /** The loads, in order. */
  runs: readonly PageRun[];
  /** Chromium's executable (default `/usr/bin/chromium`). */
  executablePath?: string;
  /** Flags added to {@link CHROMIUM_FLAGS}. */
  extraArgs?: readonly string[];
  /**
   * `false` launches Chromium with WebGPU off: without `--enable-unsafe-webgpu` and with the
   * `WebGPU` feature disabled, so pages see no adapter (default `true`).
   */
  webgpu?: boolean;
  /** Folder for `<name>.png` screenshots (none when absent). */
  screenshotDir?: string;
  /** Limit for one run, in milliseconds (default 60000). */
  timeoutMs?: number;
}

/** The report of one page load. */
export interface PageReport {
  /** The run's name. */
  name: string;
  /** The URL loaded. */
  url: string;
  /** `window.__toy` when the run ended (see examples/web/main.ts). */
  status: Record<string, unknown>;
  /** Wall time from navigation to the end of training, in milliseconds. */
  ms: number;
  /** Console errors and uncaught exceptions of the page. */
  errors: string[];
  /** The screenshot's path, when one was saved. */
  screenshot: string | null;
}

/** What {@link checkInChromium} returns. */
export interface BrowserReport {
  /** Chromium's version. */
  browser: string;
  /** The flags Chromium ran with. */
  flags: string[];
  /** One report per run. */
  runs: PageReport[];
}

/**
 * Runs each page load of `options.runs` in one headless Chromium and reports what the page
 * published; throws when a run does not finish within the time limit.
 *
 * @example
 * ```ts ignore
 * import { checkInChromium } from "./browser_check.ts";
 * const r = await checkInChromium({
 *   url: "http://127.0.0.1:8000/",
 *   runs: [{ name: "toy", query: "steps=100&autostart=1" }],
 * });
 * r.runs[0].status.done; // true
 * ```
 */
export async function checkInChromium(options: BrowserCheckOptions): Promise<BrowserReport> {
  const flags = [
    ...CHROMIUM_FLAGS.filter((f) => options.webgpu !== false || f !== "--enable-unsafe-webgpu"),
    ...(options.webgpu === false ? ["--disable-features=WebGPU"] : []),
    ...(options.extraArgs ?? []),
  ];
  const browser = await chromium.launch({
    executablePath: options.executablePath ?? "/usr/bin/chromium",
    args: flags,
  });
  try {
    const runs: PageReport[] = [];
    for (const run of options.runs) {
      const context = await browser.newContext({ viewport: { width: 1040, height: 760 } });
      const page = await context.newPage();
      const errors: string[] = [];
      page.on("console", (m) => {
        if (m.type() === "error") errors.push(m.text());
      });
      page.on("pageerror", (e) => errors.push(String(e)));
      const url = new URL(options.url);
      url.search = run.query;
      const t0 = performance.now();
      await page.goto(url.href);
      const timeout = options.timeoutMs ?? 60_000;
      try {
        await page.waitForFunction(
          () => {
            const s = (globalThis as unknown as { __toy?: { done: boolean; error: unknown } })
              .__toy;
            return s !== undefined && (s.done || s.error !== null);
          },
          undefined,
          { timeout, polling: 100 },
        );
      } catch (e) {
        const status = await page.evaluate(() => (globalThis as Record<string, unknown>).__toy)
          .catch(() => undefined);
        throw new RangeError(
          `Run ${run.name} did not finish within ${timeout} ms: ${(e as Error).message}; ` +
            `status ${JSON.stringify(status)}; page errors ${JSON.stringify(errors)}`,
        );
      }
      const ms = performance.now() - t0;
      const status = await page.evaluate(() =>
        JSON.parse(JSON.stringify((globalThis as Record<string, unknown>).__toy))
      ) as Record<string, unknown>;
      let screenshot: string | null = null;
      if (options.screenshotDir !== undefined) {
        await Deno.mkdir(options.screenshotDir, { recursive: true });
        screenshot = `${options.screenshotDir}/${run.name}.png`;
        await page.screenshot({ path: screenshot, fullPage: true });
      }
      runs.push({ name: run.name, url: url.href, status, ms, errors, screenshot });
      await context.close();
    }
    return { browser: browser.version(), flags, runs };
  } finally {
    await browser.close();
  }
}

const USAGE = `Usage: deno run -A scripts/browser_check.ts --url URL --run NAME:QUERY [--run ...]
          [--screenshot-dir DIR] [--chromium /usr/bin/chromium] [--flag --extra-flag ...]
          [--timeout-ms 60000] [--no-webgpu]

Loads the margin explorer at URL once per --run (QUERY: the page's URL parameters; autostart=1
is added), waits until training is done, prints a JSON report on stdout. --no-webgpu launches
Chromium with WebGPU off (the page falls back to the wasm backend).`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseCli(argv, {
    url: { type: "string" },
    run: { type: "string", multiple: true },
    "screenshot-dir": { type: "string" },
    chromium: { type: "string" },
    flag: { type: "string", multiple: true },
    "timeout-ms": { type: "string" },
    "no-webgpu": { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.url === undefined) throw new UsageError("--url URL is required");
  try {
    new URL(values.url);
  } catch {
    throw new UsageError(`--url expects an absolute URL, got "${values.url}"`);
  }
  if ((values.run ?? []).length === 0) {
    throw new UsageError("at least one --run NAME:QUERY is required");
  }
  const runs = (values.run ?? []).map((spec) => {
    const at = spec.indexOf(":");
    if (at <= 0) throw new UsageError(`--run expects NAME:QUERY, got "${spec}"`);
    const query = new URLSearchParams(spec.slice(at + 1));
    query.set("autostart", "1");
    return { name: spec.slice(0, at), query: query.toString() };
  });
  const report = await checkInChromium({
    url: values.url,
    runs,
    executablePath: values.chromium,
    extraArgs: values.flag,
    webgpu: !values["no-webgpu"],
    screenshotDir: values["screenshot-dir"],
    timeoutMs: intOption("timeout-ms", values["timeout-ms"], { min: 1 }),
  });
  console.log(JSON.stringify(report));
}

if (import.meta.main) await runMain(main, Deno.args);
