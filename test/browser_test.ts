// The margin explorer in a real browser: builds the bundles, serves them on a free port, loads
// the page twice in Debian's Chromium (CosFace with m = 0 and m = 0.2, same seed and steps), and
// checks that the page found a WebGPU adapter, that the loss falls, and that the margin widens
// the angular gap between neighbouring classes. Screenshots go to out/browser/.
//
// Skips itself, with a message, where /usr/bin/chromium is missing (CI installs it with apt).
// playwright-core needs wider permissions than the test task grants (os.homedir, os.release,
// reads under /proc/sys), so the browser is driven from its own process: scripts/browser_check.ts.
import assert from "node:assert/strict";
import { build } from "../scripts/build.ts";
import { serveSite } from "../scripts/serve.ts";
import type { BrowserReport } from "../scripts/browser_check.ts";

const CHROMIUM = "/usr/bin/chromium";
const ROOT = new URL("../", import.meta.url);
const SHOTS = decodeURIComponent(new URL("out/browser", ROOT).pathname);
const STEPS = 300;
const WASM_STEPS = 150;

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
    `browser_test: skipped, ${CHROMIUM} is missing (apt-get install chromium to run it)`,
  );
}

interface ToyStatus {
  steps: number;
  losses: number[];
  gaps: { min: number; mean: number; meanWidth: number } | null;
  adapter: string | null;
  fallbackAdapter: boolean | null;
  backend: string;
  note: string | null;
  threads: number | null;
  msPerStep: number;
  done: boolean;
  error: string | null;
}

Deno.test("src/web.ts, the bundle's entry, and everything it imports stay off Deno", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("src/web.ts", ROOT).href],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  const files = info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"));
  assert.ok(
    files.some((f) => f.includes("/backend/webgpu/")),
    "the entry lacks the webgpu backend",
  );
  const offenders: string[] = [];
  for (const f of files) {
    const code = (await Deno.readTextFile(new URL(f)))
      .replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    if (/\bDeno\s*\.|from\s+["']node:/.test(code)) offenders.push(f);
  }
  assert.deepEqual(offenders, [], `modules of the browser bundle use Deno or node: APIs`);
});

/** Runs scripts/browser_check.ts (its own process: playwright needs wider permissions). */
function browserCheck(url: string, args: string[]): Promise<Deno.CommandOutput> {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      `--lock=${decodeURIComponent(new URL("deno.dev.lock", ROOT).pathname)}`,
      "-A",
      decodeURIComponent(new URL("scripts/browser_check.ts", ROOT).pathname),
      "--url",
      url,
      "--screenshot-dir",
      SHOTS,
      "--timeout-ms",
      "45000",
      ...args,
    ],
    cwd: decodeURIComponent(ROOT.pathname),
    stdout: "piped",
    stderr: "piped",
  }).output();
}

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

Deno.test({
  name: "the margin explorer trains in Chromium: the loss falls and m widens the angular gap",
  ignore: !available,
  async fn() {
    const t0 = performance.now();
    const dist = await Deno.makeTempDir({ prefix: "cosgrad_dist_" });
    const site = serveSite({ root: dist, port: 0, log: false });
    try {
      const built = await build({ outDir: dist, log: false });
      const lib = built.files.find((f) => f.path === "cosgrad.js");
      assert.ok(lib !== undefined && lib.bytes > 10_000, "the library bundle was not written");
      // The server answers with the right types, and the page imports the library bundle.
      const js = await fetch(`${site.url}cosgrad.js`);
      assert.equal(js.headers.get("content-type"), "text/javascript; charset=utf-8");
      await js.body?.cancel();
      const html = await fetch(site.url);
      assert.equal(html.headers.get("content-type"), "text/html; charset=utf-8");
      assert.match(await html.text(), /<script type="module" src="main.js">/);

      const common = `loss=cosface&s=16&seed=1&steps=${STEPS}`;
      const out = await browserCheck(site.url, [
        "--run",
        `toy_m0:${common}&m=0`,
        "--run",
        `toy:${common}&m=0.2`,
      ]);
      const stderr = new TextDecoder().decode(out.stderr);
      assert.ok(out.success, `browser_check failed:\n${stderr}`);
      const report = JSON.parse(new TextDecoder().decode(out.stdout)) as BrowserReport;
      const [m0, m2] = report.runs.map((r) => r.status as unknown as ToyStatus);

      for (const s of [m0, m2]) {
        assert.equal(s.error, null);
        assert.ok(s.done);
        assert.equal(s.steps, STEPS);
        assert.equal(s.losses.length, STEPS);
        assert.ok(s.losses.every(Number.isFinite), "a loss was not finite");
        // The page found the browser's WebGPU adapter (SwiftShader in headless Chromium) and
        // trained on it: a fallback to the CPU interpreter fails the test, naming the cause.
        assert.ok(s.adapter !== null, `no WebGPU adapter: ${s.note}`);
        assert.equal(s.backend, "webgpu", `trained on ${s.backend}: ${s.note}`);
      }
      for (const r of report.runs) assert.deepEqual(r.errors, [], `page errors in ${r.name}`);
      for (const s of [m0, m2]) {
        // The loss falls: the last 20 steps' mean is under a quarter of the first 20 steps'.
        const first = mean(s.losses.slice(0, 20)), last = mean(s.losses.slice(-20));
        assert.ok(last < first / 4, `the loss did not fall: ${first} -> ${last}`);
      }
      // Every class is apart from its neighbours with the margin, and the smallest gap is
      // clearly larger than without it (the paper's Fig. 3). In degrees.
      assert.ok(m0.gaps !== null && m2.gaps !== null);
      assert.ok(m2.gaps.min > 0, `classes overlap with m=0.2: min gap ${m2.gaps.min}°`);
      assert.ok(
        m2.gaps.min > m0.gaps.min + 5,
        `m=0.2 min gap ${m2.gaps.min}° is not above m=0's ${m0.gaps.min}° by 5°`,
      );
      assert.ok(m2.gaps.meanWidth < m0.gaps.meanWidth, "the margin did not make classes compact");

      // WebGPU off: the page trains on the wasm backend (a bundle without navigator.gpu).
      const off = await browserCheck(site.url, [
        "--run",
        `toy_wasm:loss=cosface&s=16&seed=1&steps=${WASM_STEPS}&m=0.2`,
        "--no-webgpu",
      ]);
      assert.ok(
        off.success,
        `browser_check --no-webgpu failed:\n${new TextDecoder().decode(off.stderr)}`,
      );
      const offReport = JSON.parse(new TextDecoder().decode(off.stdout)) as BrowserReport;
      const w = offReport.runs[0].status as unknown as ToyStatus;
      assert.deepEqual(offReport.runs[0].errors, [], "page errors with WebGPU off");
      assert.equal(w.error, null);
      assert.equal(w.adapter, null, "WebGPU was not off");
      assert.equal(w.backend, "wasm", `trained on ${w.backend} without WebGPU: ${w.note}`);
      // The site is cross-origin isolated (scripts/serve.ts), so the pool runs on Web Workers
      // over the bundle's cosgrad_worker.js: as many threads as the machine has cores.
      const cores = navigator.hardwareConcurrency;
      assert.equal(w.threads, cores, `wasm threads ${w.threads} of ${cores} cores`);
      assert.equal(w.losses.length, WASM_STEPS);
      assert.ok(w.losses.every(Number.isFinite), "a loss was not finite on wasm");
      const wFirst = mean(w.losses.slice(0, 20)), wLast = mean(w.losses.slice(-20));
      assert.ok(wLast < wFirst / 2, `the loss did not fall on wasm: ${wFirst} -> ${wLast}`);

      const deg = (x: number) => `${x.toFixed(1)}°`;
      console.log(
        `browser_test: Chromium ${report.browser}, adapter ${m2.adapter} ` +
          `(fallback adapter: ${m2.fallbackAdapter}), trained on ${m2.backend}` +
          (m2.note === null ? "" : ` (${m2.note})`) +
          `; ${m2.msPerStep.toFixed(1)} ms/step; min gap m=0 ${deg(m0.gaps.min)}, ` +
          `m=0.2 ${deg(m2.gaps.min)}; screenshot ${SHOTS}/toy.png` +
          `; WebGPU off: ${w.backend} on ${w.threads} threads, ${
            w.msPerStep.toFixed(1)
          } ms/step (${w.note}); ` +
          `${((performance.now() - t0) / 1000).toFixed(1)} s`,
      );
    } finally {
      await site.close();
      await Deno.remove(dist, { recursive: true });
    }
  },
});
