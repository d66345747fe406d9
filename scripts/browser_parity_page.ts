/// <reference lib="dom" />
/**
 * The parity page: runs the backend parity cases (`test/parity/`) on the browser's WebGPU
 * (Dawn + Tint; SwiftShader in headless Chromium) against the cpu oracle, through the library
 * bundle `cosgrad.js` (this module's import of `src/web.ts` becomes an import of it; see
 * `scripts/browser_parity.ts`, which builds, serves and drives it).
 *
 * URL parameters: `set` (`quick` (default): each case under its quick profiles, or `full`),
 * `candidates` (`none`, `each-algorithm` (default) or `all`: the tuning
 * candidates of the convolution cases), `cases` (comma-separated name prefixes), `from` (the
 * first case to run, by name), `skip` (a JSON list of `{case, profile, variant, reason}` runs
 * to skip, e.g. runs that timed out in an earlier page), `timeoutMs` (limit of one run,
 * default 60000). Progress and the report are published as
 * `window.__parity` ({@link ParityStatus}) and shown as a table.
 *
 * @module
 */
import * as cg from "../src/web.ts";
import { CASES, type Profile } from "../test/parity/cases.ts";
import { KNOWN_ISSUES, type KnownIssue } from "../test/parity/known_issues.ts";
import {
  type CaseResult,
  type GpuUnderTest,
  type ParityReport,
  runParity,
  summarize,
} from "../test/parity/run.ts";

/** What the page publishes as `window.__parity`. */
export interface ParityStatus {
  /** Set when the run ended (report or error). */
  done: boolean;
  /** Runs so far. */
  results: CaseResult[];
  /** The report, when done without an error. */
  report: ParityReport | null;
  /** An error that stopped the page (no adapter, a bug), with its stack. */
  error: string | null;
  /** The browser's user agent. */
  userAgent: string;
}

const status: ParityStatus = {
  done: false,
  results: [],
  report: null,
  error: null,
  userAgent: navigator.userAgent,
};
(globalThis as unknown as { __parity: ParityStatus }).__parity = status;

function line(text: string, cls = ""): void {
  const li = document.createElement("li");
  li.textContent = text;
  if (cls !== "") li.className = cls;
  document.getElementById("log")?.appendChild(li);
}

async function main(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const candidates = params.get("candidates") ?? "each-algorithm";
  if (candidates !== "none" && candidates !== "each-algorithm" && candidates !== "all") {
    throw new TypeError(
      `Invalid candidates "${candidates}": expected none, each-algorithm or all`,
    );
  }
  const set = params.get("set") ?? "quick";
  if (set !== "quick" && set !== "full") {
    throw new TypeError(`Invalid set "${set}": expected quick or full`);
  }
  const prefixes = (params.get("cases") ?? "").split(",").filter((s) => s !== "");
  const timeoutMs = Number(params.get("timeoutMs") ?? 60_000);
  const from = params.get("from");
  const start = from === null ? 0 : CASES.findIndex((c) => c.name === from);
  if (start < 0) throw new RangeError(`Unknown case "${from}" in from=`);
  const skips = JSON.parse(params.get("skip") ?? "[]") as {
    case: string;
    profile: Profile;
    variant: string;
    reason: string;
  }[];
  const known: KnownIssue[] = [
    ...KNOWN_ISSUES,
    ...skips.map((s) => ({ ...s, implementation: "chromium" })),
  ];
  const gpu = await cg.startWebGpu() as unknown as GpuUnderTest;
  line(`adapter: ${gpu.description}; candidates: ${candidates}`);
  status.report = await runParity(CASES.slice(start), {
    cg,
    gpu,
    implementation: "chromium",
    candidates,
    set,
    filter: prefixes.length === 0 ? undefined : (c) => prefixes.some((p) => c.name.startsWith(p)),
    timeoutMs,
    known,
    onResult: (r) => {
      status.results.push(r);
      line(
        `${r.status} ${r.case} [${r.profile}] ${r.variant} ${r.ms.toFixed(0)} ms` +
          (r.message === null ? "" : `: ${r.message}`),
        r.status,
      );
    },
  });
  for (const l of summarize(status.report).slice(-1)) line(l);
}

main().catch((e) => {
  status.error = e instanceof Error ? `${e.message}\n${e.stack}` : String(e);
  line(`error: ${status.error}`, "fail");
}).finally(() => status.done = true);
