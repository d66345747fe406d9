/**
 * The tuning page (`scripts/browser_tune.ts` builds and drives it): measures the candidates of
 * each kernel class it is given on the page's WebGPU adapter with the tuner's own
 * {@linkcode measureKernel} (the timing `deno task tune` does under Deno), and publishes the
 * records on `globalThis.__tune` as they finish. The classes come from the shipped llvmpipe table
 * (T1's kernels), so both adapters are measured on the same kernels.
 *
 * Query: `match` (comma-separated substrings: only classes whose name contains one), `classes`
 * (how many, default all), `classMs` (a class's budget after its first two
 * candidates, default 60000).
 *
 * @module
 */
import { candidatesOf, measureKernel, recordKernel, type TuneRecord } from "../kernels/tune.ts";
import { shippedTable } from "../kernels/tune_cache.ts";
import LLVMPIPE from "../kernels/tuned_llvmpipe.json" with { type: "json" };

/** What the page publishes. */
export interface TuneStatus {
  /** The adapter measured (vendor, architecture, description). */
  adapter: string;
  /** Records per kernel class, in the order measured. */
  records: Record<string, TuneRecord>;
  /** Classes to measure in all. */
  total: number;
  /** Whether every class is measured. */
  done: boolean;
  /** An error that stopped the page, else null. */
  error: string | null;
}

const status: TuneStatus = { adapter: "", records: {}, total: 0, done: false, error: null };
(globalThis as unknown as { __tune: TuneStatus }).__tune = status;

async function main(): Promise<void> {
  const query = new URLSearchParams(location.search);
  const adapter = await navigator.gpu?.requestAdapter();
  if (!adapter) throw new Error("navigator.gpu.requestAdapter() found no adapter");
  const info = adapter.info;
  status.adapter = [info.vendor, info.architecture, info.description].filter((s) => s).join(" · ");
  const device = await adapter.requestDevice({
    requiredLimits: {
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      maxBufferSize: adapter.limits.maxBufferSize,
      maxComputeWorkgroupStorageSize: adapter.limits.maxComputeWorkgroupStorageSize,
      maxComputeInvocationsPerWorkgroup: adapter.limits.maxComputeInvocationsPerWorkgroup,
      maxStorageBuffersPerShaderStage: adapter.limits.maxStorageBuffersPerShaderStage,
    },
  });
  const classMs = Number(query.get("classMs") ?? 60_000);
  const match = (query.get("match") ?? "").split(",").filter((m) => m !== "");
  const classes = Object.entries(shippedTable("tuned_llvmpipe.json", LLVMPIPE).records)
    .filter(([cls]) => match.length === 0 || match.some((m) => cls.includes(m)))
    .slice(0, Number(query.get("classes") ?? Infinity));
  status.total = classes.length;
  for (const [cls, r] of classes) {
    const kernel = recordKernel(r);
    if (kernel === undefined) continue;
    status.records[cls] = await measureKernel(device, kernel, candidatesOf(kernel), {
      budgetMs: classMs,
      trials: 2,
      minBatchMs: 50,
    });
  }
  status.done = true;
}

main().catch((e) => {
  status.error = e instanceof Error ? `${e.message}\n${e.stack}` : String(e);
});
