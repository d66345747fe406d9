/**
 * The tuning cache: measured records of kernel classes ({@linkcode TuneRecord}) per device
 * profile, in memory, in a JSON file that persists across runs, and in tables shipped for known
 * adapters. A choice is made from a record when it is read ({@linkcode pick}, with compile time
 * spread over `COSGRAD_TUNE_HORIZON` runs, default 500), so the same measurements serve another
 * horizon.
 *
 * Environment: `COSGRAD_TUNE=off` (no cache, no shipped table, no tuning: heuristic defaults),
 * `COSGRAD_TUNE=on` (also measure untuned classes when the backend is next synchronized),
 * unset (use the cache and the shipped tables, measure nothing unless asked: `deno task tune`);
 * `COSGRAD_TUNE_CACHE=<file>` (the file; default {@linkcode tuneCachePath}).
 *
 * @module
 */
import {
  isConvVariant,
  type Measured,
  pick,
  recordKernel,
  TOLERANCE,
  type TunedKernel,
  type TuneRecord,
  type Variant,
  variantName,
} from "./tune.ts";
import LLVMPIPE_TABLE from "./tuned_llvmpipe.json" with { type: "json" };

/** What the tuning cache does (`COSGRAD_TUNE`). */
export type TuneMode = "off" | "cache" | "on";

const FORMAT = "cosgrad-tune-1";

let tableCount = 0;

/** The file's contents: records per device-profile key, then per kernel class. */
interface CacheFile {
  format: typeof FORMAT;
  profiles: Record<string, Record<string, TuneRecord>>;
}

/** Tables shipped with the package: records for adapters whose description starts with `prefix`. */
export interface ShippedTable {
  /** Start of `adapter.info.description`, e.g. `llvmpipe`. */
  prefix: string;
  /** Records per kernel class. */
  records: Readonly<Record<string, TuneRecord>>;
}

/** A shipped table file's contents (`tuned_llvmpipe.json`; written by `deno task tune --shipped`). */
interface ShippedFile {
  format: typeof FORMAT;
  /** The adapter measured, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)`. */
  adapter: string;
  /** Start of the adapter descriptions the records apply to. */
  prefix: string;
  records: Record<string, TuneRecord>;
}

/**
 * Checks a shipped table's contents (`tuned_llvmpipe.json`'s form): a malformed table is refused
 * with the file named, never used.
 *
 * @example
 * ```ts
 * import { shippedTable } from "./tune_cache.ts";
 * import assert from "node:assert/strict";
 * const t = shippedTable("t.json", { format: "cosgrad-tune-1", adapter: "a", prefix: "a", records: {} });
 * assert.equal(t.prefix, "a");
 * assert.throws(() => shippedTable("t.json", { prefix: "a" }), /t\.json/);
 * ```
 */
export function shippedTable(file: string, data: unknown): ShippedTable {
  const d = data as Partial<ShippedFile> | null;
  if (
    d?.format !== FORMAT || typeof d.prefix !== "string" || typeof d.records !== "object" ||
    d.records === null
  ) {
    throw new Error(
      `Malformed shipped tuning table ${file}: expected {"format": "${FORMAT}", "prefix", "records"}`,
    );
  }
  for (const [cls, r] of Object.entries(d.records)) {
    if (!isRecord(r)) {
      throw new Error(`Malformed shipped tuning table ${file}: bad record for ${cls}`);
    }
  }
  return { prefix: d.prefix, records: d.records };
}

const SHIPPED: readonly ShippedTable[] = [
  shippedTable("kernels/tuned_llvmpipe.json", LLVMPIPE_TABLE),
];

function env(name: string): string | undefined {
  const deno = Reflect.get(globalThis, "Deno") as
    | { env?: { get(name: string): string | undefined } }
    | undefined;
  try {
    return deno?.env?.get(name);
  } catch {
    return undefined;
  }
}

/** Whether `COSGRAD_DEBUG` lists `tune`. */
function debugTune(): boolean {
  return (env("COSGRAD_DEBUG") ?? "").split(",").map((s) => s.trim()).includes("tune");
}

/**
 * The tuning mode from `COSGRAD_TUNE`: `off`, `on`, or `cache` (unset or empty).
 *
 * @example
 * ```ts
 * import { tuneMode } from "./tune_cache.ts";
 * ["off", "cache", "on"].includes(tuneMode()); // true
 * ```
 */
export function tuneMode(): TuneMode {
  const v = (env("COSGRAD_TUNE") ?? "").trim().toLowerCase();
  if (v === "" || v === "cache") return "cache";
  if (v === "off" || v === "0" || v === "false") return "off";
  if (v === "on" || v === "1" || v === "true") return "on";
  throw new TypeError(`Invalid COSGRAD_TUNE "${v}": expected off, cache or on`);
}

/**
 * Runs over which a variant's compile time is spread when choosing (`COSGRAD_TUNE_HORIZON`,
 * default 500).
 *
 * @example
 * ```ts
 * import { tuneHorizon } from "./tune_cache.ts";
 * tuneHorizon() > 0; // true
 * ```
 */
export function tuneHorizon(): number {
  const v = env("COSGRAD_TUNE_HORIZON");
  if (v === undefined || v === "") return 500;
  const n = Number(v);
  if (!(n > 0)) {
    throw new TypeError(`Invalid COSGRAD_TUNE_HORIZON "${v}": expected a positive number of runs`);
  }
  return n;
}

/**
 * Seconds of compilation a run may spend promoting kernels from their first-run choice to the
 * full one (`COSGRAD_TUNE_STEP_S`, default 20; `inf` or `off`: no tiers, the full choice at once).
 *
 * @example
 * ```ts
 * import { tuneStepSeconds } from "./tune_cache.ts";
 * tuneStepSeconds() > 0; // true
 * ```
 */
export function tuneStepSeconds(): number {
  const v = (env("COSGRAD_TUNE_STEP_S") ?? "").trim();
  if (v === "") return 20;
  if (v === "off" || v === "inf") return Infinity;
  const n = Number(v);
  if (!(n >= 0)) {
    throw new TypeError(`Invalid COSGRAD_TUNE_STEP_S "${v}": expected seconds, or off`);
  }
  return n;
}

/**
 * The tuning cache file: `COSGRAD_TUNE_CACHE`, else `$XDG_CACHE_HOME/cosgrad/tune.json`, else
 * `$HOME/.cache/cosgrad/tune.json`; null where no environment is readable (a browser).
 *
 * @example
 * ```ts
 * import { tuneCachePath } from "./tune_cache.ts";
 * const path = tuneCachePath();
 * path === null || path.endsWith(".json") || path.length > 0; // true
 * ```
 */
export function tuneCachePath(): string | null {
  const own = env("COSGRAD_TUNE_CACHE");
  if (own !== undefined && own !== "") return own;
  const xdg = env("XDG_CACHE_HOME");
  if (xdg !== undefined && xdg !== "") return `${xdg}/cosgrad/tune.json`;
  const home = env("HOME");
  return home === undefined || home === "" ? null : `${home}/.cache/cosgrad/tune.json`;
}

interface DenoFs {
  permissions: { querySync(d: { name: "read" | "write"; path: string }): { state: string } };
  readTextFileSync(path: string): string;
  writeTextFileSync(path: string, data: string): void;
  mkdirSync(path: string, options: { recursive: boolean }): void;
  renameSync(from: string, to: string): void;
}

/** Deno's file API where `access` to `path` is granted (never a permission prompt), else null. */
function fs(access: "read" | "write", path: string): DenoFs | null {
  const deno = Reflect.get(globalThis, "Deno") as Partial<DenoFs> | undefined;
  if (deno?.readTextFileSync === undefined || deno.permissions?.querySync === undefined) {
    return null;
  }
  try {
    return deno.permissions.querySync({ name: access, path }).state === "granted"
      ? deno as DenoFs
      : null;
  } catch {
    return null;
  }
}

function isRecord(r: unknown): r is TuneRecord {
  if (typeof r !== "object" || r === null) return false;
  const c = (r as { candidates?: unknown }).candidates;
  return Array.isArray(c) && c.some((m: Measured) => m?.error <= TOLERANCE) &&
    c.every((m: Measured) =>
      typeof m === "object" && m !== null && typeof m.runMs === "number" &&
      typeof m.compileMs === "number" && typeof m.error === "number" &&
      (m.variant === null || typeof m.variant?.algo === "string")
    );
}

/** Reads the cache file: its profiles, or an empty table (with a warning naming the file when it is corrupt). */
function readCache(path: string, warn: (s: string) => void): CacheFile["profiles"] {
  const deno = fs("read", path);
  if (deno === null) return {};
  let text: string;
  try {
    text = deno.readTextFileSync(path);
  } catch {
    return {}; // no file yet, or no permission to read it
  }
  try {
    const data = JSON.parse(text) as CacheFile;
    if (data?.format !== FORMAT || typeof data.profiles !== "object" || data.profiles === null) {
      throw new Error(`expected {"format": "${FORMAT}", "profiles": {...}}`);
    }
    for (const [key, records] of Object.entries(data.profiles)) {
      for (const [cls, r] of Object.entries(records)) {
        if (!isRecord(r)) throw new Error(`bad record for ${cls} under ${key}`);
      }
    }
    return data.profiles;
  } catch (e) {
    warn(
      `cosgrad: ignoring the corrupt tuning cache ${path} (${
        e instanceof Error ? e.message : e
      }); it is rewritten at the next tuning`,
    );
    return {};
  }
}

/** A kernel class that was used without a record (to tune later): the kernel and its class key. */
export type Miss = TunedKernel & { cls: string };

/**
 * The tuning table of one device profile: records from the shipped table for its adapter, the
 * cache file, and measurements of this process. `version` grows with every new record, so it
 * belongs in program cache keys.
 *
 * @example
 * ```ts
 * import { TuningTable } from "./tune_cache.ts";
 * import assert from "node:assert/strict";
 * const t = new TuningTable("test|profile", "test adapter", { mode: "cache", path: null });
 * const k = { direction: "forward", spec: { batch: 1, inChannels: 1, height: 4, width: 4, outChannels: 8, kernelH: 3, kernelW: 3 } } as const;
 * assert.equal(t.choose("conv2d.forward x1", k), undefined);
 * t.record("conv2d.forward x1", { candidates: [{ variant: { algo: "implicit", cap: 8 }, runMs: 1, compileMs: 1, error: 0 }] });
 * assert.deepEqual(t.choose("conv2d.forward x1", k), { algo: "implicit", cap: 8 });
 * ```
 */
export class TuningTable {
  /** Grows with every record added or promotion. */
  version = 0;
  /** Distinguishes tables (a backend given another table must not reuse its programs). */
  readonly id = ++tableCount;
  /** Classes looked up without a record, by class key. */
  readonly misses = new Map<string, Miss>();
  /** Where the records of this process go (null: memory only). */
  readonly path: string | null;
  /** The mode it was made with. */
  readonly mode: TuneMode;
  private readonly records = new Map<string, TuneRecord>();
  private readonly sources = new Map<string, "shipped" | "file" | "measured">();
  private readonly horizon: number;
  private readonly stepCompileMs: number;
  /** Actual over predicted compile time, from the latest observed run ({@linkcode observeCompile}). */
  private compileScale = 1;
  private readonly promoted = new Set<string>();
  private readonly shown = new Set<string>();
  private readonly warn: (s: string) => void;

  /** A table for the profile `key` of adapter `adapter`. */
  constructor(
    readonly key: string,
    readonly adapter: string,
    options: {
      mode?: TuneMode;
      path?: string | null;
      horizon?: number;
      stepCompileS?: number;
      warn?: (s: string) => void;
    } = {},
  ) {
    this.mode = options.mode ?? tuneMode();
    this.path = options.path === undefined ? tuneCachePath() : options.path;
    this.horizon = options.horizon ?? tuneHorizon();
    this.stepCompileMs = 1000 * (options.stepCompileS ?? tuneStepSeconds());
    this.warn = options.warn ?? ((s) => console.warn(s));
    if (this.mode === "off") return;
    for (const t of SHIPPED) {
      if (!adapter.startsWith(t.prefix)) continue;
      for (const [cls, r] of Object.entries(t.records)) this.put(cls, r, "shipped");
    }
    if (this.path !== null) {
      const own = readCache(this.path, this.warn)[key] ?? {};
      for (const [cls, r] of Object.entries(own)) this.put(cls, r, "file");
    }
  }

  private put(cls: string, r: TuneRecord, source: "shipped" | "file" | "measured"): void {
    this.records.set(cls, r);
    this.sources.set(cls, source);
  }

  /**
   * The chosen variant of a class (`null`: the default measured best), or undefined when the
   * class has no record (or tuning is off); a miss is remembered for {@linkcode misses}. A
   * record whose variant is of another kind of kernel (a matmul tile for a convolution, a wasm
   * blocking for either) is refused with the class named.
   */
  choose(cls: string, kernel: TunedKernel): Variant | null | undefined {
    if (this.mode === "off") return undefined;
    const r = this.records.get(cls);
    if (r === undefined) {
      if (!this.misses.has(cls)) this.misses.set(cls, { ...kernel, cls });
      return undefined;
    }
    if (!this.shown.has(cls) && debugTune()) {
      this.shown.add(cls);
      for (const line of this.describe(cls)) console.log(`[cosgrad tune] ${line}`);
    }
    const v = this.current(cls, r).variant;
    const fits = v === null ||
      (kernel.direction === "matmul" ? v.algo === "matmul" : isConvVariant(v));
    if (!fits) {
      throw new TypeError(
        `The tuning record of ${cls} holds a ${variantName(v)} variant, not one for a ${
          kernel.direction === "matmul" ? "matmul" : "convolution"
        }`,
      );
    }
    return v;
  }

  /**
   * After a run of a program using `classes`: promotes classes still on their first-run
   * choice to the full choice, the most saving per step first, up to `COSGRAD_TUNE_STEP_S`
   * seconds of predicted compilation (at least one class) per run. Returns whether any was
   * promoted (the version grows, so the next call compiles the promoted kernels).
   */
  afterRun(classes: Iterable<string>): boolean {
    const waiting: { cls: string; saves: number; compileMs: number }[] = [];
    for (const cls of classes) {
      const r = this.records.get(cls);
      if (r === undefined || this.promoted.has(cls) || this.mode === "off") continue;
      const full = pick(r, this.horizon);
      const quick = pick(r, 1);
      if (full === quick) {
        this.promoted.add(cls);
        continue;
      }
      waiting.push({ cls, saves: quick.runMs - full.runMs, compileMs: full.compileMs });
    }
    waiting.sort((a, b) => b.saves - a.saves);
    let spent = 0;
    for (const w of waiting) {
      const ms = w.compileMs * this.compileScale;
      if (spent > 0 && spent + ms > this.stepCompileMs) continue;
      this.promoted.add(w.cls);
      spent += ms;
    }
    if (waiting.length === 0) return false;
    this.version++;
    return true;
  }

  /**
   * The predicted compile milliseconds of a class's current choice (its first-run or its full
   * choice), from its record; 0 without one.
   *
   * @example
   * ```ts
   * import { TuningTable } from "./tune_cache.ts";
   * const t = new TuningTable("p", "a", { mode: "cache", path: null });
   * t.record("c", { candidates: [{ variant: null, runMs: 1, compileMs: 40, error: 0 }] });
   * t.predictedCompileMs("c"); // 40
   * ```
   */
  predictedCompileMs(cls: string): number {
    const r = this.records.get(cls);
    return r === undefined || this.mode === "off" ? 0 : this.current(cls, r).compileMs;
  }

  /**
   * The candidate a class runs on now. Tiers: until a program using the class has run, the one
   * quickest to compile and run once (the least `run + compile`), so that a first step is not
   * spent compiling; then the full choice.
   */
  private current(cls: string, r: TuneRecord): Measured {
    const full = this.stepCompileMs === Infinity || this.promoted.has(cls);
    return pick(r, full ? this.horizon : 1);
  }

  /**
   * Calibrates the tiers' predictions: a run whose only new pipelines were tuned classes'
   * choices, predicted to compile in `predictedMs`, took `actualMs` to build and run once
   * (pipeline creation, submission and completion). Later promotions count predicted compile
   * times times the latest ratio (within 0.25-10), so a machine slower than the one the records
   * came from (or kernels whose fused epilogues compile longer than the measured ones) spreads
   * the compiling over more runs instead of overrunning `COSGRAD_TUNE_STEP_S`.
   *
   * @example
   * ```ts
   * import { TuningTable } from "./tune_cache.ts";
   * const t = new TuningTable("p", "a", { mode: "cache", path: null });
   * t.observeCompile(10_000, 25_000); // later promotions count 2.5x their predicted compile time
   * ```
   */
  observeCompile(predictedMs: number, actualMs: number): void {
    if (!(predictedMs > 0) || !(actualMs > 0)) return;
    this.compileScale = Math.min(10, Math.max(0.25, actualMs / predictedMs));
  }

  /** Where a class's record came from, or undefined. */
  source(cls: string): "shipped" | "file" | "measured" | undefined {
    return this.sources.get(cls);
  }

  /** The record of a class, or undefined. */
  get(cls: string): TuneRecord | undefined {
    return this.records.get(cls);
  }

  /**
   * Adds a measured record (and forgets the miss); bumps the version. A class measured again
   * gets the new record only: measurements from different times are not compared (on a shared
   * machine the load between them changes run times several fold).
   */
  record(cls: string, r: TuneRecord): void {
    this.put(cls, r, "measured");
    this.misses.delete(cls);
    this.version++;
  }

  /**
   * Writes the measured records into the cache file (merged with what it holds, other profiles
   * kept; written to a temporary file, then renamed). Returns the path, or null when there is
   * no file to write (no path, no Deno, or tuning off).
   */
  save(): string | null {
    if (this.path === null || this.mode === "off") return null;
    const deno = fs("write", this.path);
    if (deno === null) return null;
    const profiles = readCache(this.path, this.warn);
    const mine: Record<string, TuneRecord> = { ...profiles[this.key] };
    for (const [cls, r] of this.records) {
      if (this.sources.get(cls) === "measured") mine[cls] = r;
    }
    profiles[this.key] = mine;
    const data: CacheFile = { format: FORMAT, profiles };
    const dir = this.path.includes("/") ? this.path.slice(0, this.path.lastIndexOf("/")) : ".";
    deno.mkdirSync(dir, { recursive: true });
    const tmp = `${this.path}.${Date.now()}.tmp`;
    deno.writeTextFileSync(tmp, JSON.stringify(data, null, 1) + "\n");
    deno.renameSync(tmp, this.path);
    return this.path;
  }

  /** Marks every record that names its shape as a miss, to measure it again (`deno task tune --retune`). */
  requeue(): void {
    for (const [cls, r] of this.records) {
      const kernel = recordKernel(r);
      if (kernel !== undefined) this.misses.set(cls, { ...kernel, cls });
    }
  }

  /** Drops the records that came from a shipped table (to measure those classes anew); bumps the version. */
  forgetShipped(): void {
    for (const [cls, source] of [...this.sources]) {
      if (source !== "shipped") continue;
      this.records.delete(cls);
      this.sources.delete(cls);
    }
    this.version++;
  }

  /**
   * The measured and cached records as a shipped table (`tuned_llvmpipe.json`'s form: one line per
   * kernel class), for adapters whose description starts with `prefix`.
   */
  shippedTable(prefix: string): string {
    const lines = [...this.records.keys()].sort()
      .filter((cls) => this.sources.get(cls) !== "shipped")
      .map((cls) =>
        `  ${JSON.stringify(cls)}: ${
          JSON.stringify(
            this.records.get(cls),
            (_k, v) => typeof v === "number" ? Number(v.toPrecision(4)) : v,
          )
        }`
      );
    return `{\n "format": "${FORMAT}",\n "adapter": ${JSON.stringify(this.adapter)},\n "prefix": ${
      JSON.stringify(prefix)
    },\n "records": {\n${lines.join(",\n")}\n }\n}\n`;
  }

  /** One line per candidate of a class's record: name, run and compile ms, error, the choice marked. */
  describe(cls: string): string[] {
    const r = this.records.get(cls);
    if (r === undefined) return [`${cls}: no record`];
    const chosen = pick(r, this.horizon);
    return [
      `${cls} (${this.sources.get(cls)}): ${variantName(chosen.variant)}`,
      ...r.candidates.map((m) =>
        `  ${m === chosen ? "*" : " "} ${variantName(m.variant).padEnd(14)} run ${
          m.runMs.toFixed(2).padStart(9)
        } ms  compile ${m.compileMs.toFixed(0).padStart(6)} ms  error ${m.error.toExponential(1)}`
      ),
    ];
  }
}
