/**
 * Shared command-line helpers of the examples and scripts: options are parsed and checked where
 * they are read, a bad one is a {@link UsageError} naming the flag, the value and the valid range,
 * and {@link runMain} prints it as `error: ...` and exits 2 (other failures exit 1), never with a
 * stack trace.
 *
 * ```ts ignore
 * import { intOption, parseCli, runMain } from "./_cli.ts";
 * async function main(argv: string[]) {
 *   const { values } = parseCli(argv, { steps: { type: "string", default: "100" } });
 *   const steps = intOption("steps", values.steps, { min: 1 });
 *   console.log(steps);
 * }
 * if (import.meta.main) await runMain(main, Deno.args);
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";

/**
 * A usage error: a bad flag, value or argument. {@link runMain} prints its message after
 * `error: ` and exits with status 2.
 *
 * @example
 * ```ts
 * import { UsageError } from "./_cli.ts";
 * const e = new UsageError("--steps expects an integer of at least 1, got \"0\"");
 * if (!(e instanceof Error)) throw new Error("not an Error");
 * ```
 */
export class UsageError extends Error {
  /** Creates a usage error with `message` (the flag, the bad value and what was expected). */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** One option of {@link parseCli}: the same shape as `node:util` `parseArgs` options. */
export type CliOption =
  | { type: "string"; short?: string; default?: string; multiple?: false }
  | { type: "string"; short?: string; default?: string[]; multiple: true }
  | { type: "boolean"; short?: string; default?: boolean; multiple?: false };

/** The parsed values of {@link parseCli}: strings or booleans by option name. */
export type CliValues<O extends Record<string, CliOption>> = {
  [K in keyof O]: O[K] extends { type: "boolean" } ? boolean
    : O[K] extends { multiple: true } ? string[] | undefined
    : O[K] extends { default: string } ? string
    : string | undefined;
};

/**
 * Parses `argv` with `node:util` `parseArgs` (strict), turning its errors (unknown option,
 * missing value, unexpected argument) into {@link UsageError}s.
 *
 * @example
 * ```ts
 * import { parseCli } from "./_cli.ts";
 * const { values, positionals } = parseCli(["a.png", "--steps", "5"], {
 *   steps: { type: "string", default: "10" },
 * }, { positionals: true });
 * if (values.steps !== "5" || positionals[0] !== "a.png") throw new Error("parse failed");
 * ```
 */
export function parseCli<O extends Record<string, CliOption>>(
  argv: string[],
  options: O,
  config: { positionals?: boolean } = {},
): { values: CliValues<O>; positionals: string[] } {
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options,
      allowPositionals: config.positionals ?? false,
      strict: true,
    });
    return { values: values as unknown as CliValues<O>, positionals };
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code.startsWith("ERR_PARSE_ARGS")) {
      throw new UsageError((e as Error).message);
    }
    throw e;
  }
}

/** Bounds of {@link numberOption} and {@link intOption}; `above` is an exclusive lower bound. */
export interface NumberRange {
  /** Smallest allowed value (inclusive). */
  min?: number;
  /** Largest allowed value (inclusive). */
  max?: number;
  /** The value must be greater than this (exclusive lower bound). */
  above?: number;
}

function describeRange(kind: string, range: NumberRange): string {
  const parts: string[] = [];
  if (range.above !== undefined) parts.push(`greater than ${range.above}`);
  if (range.min !== undefined && range.max !== undefined) {
    parts.push(`from ${range.min} to ${range.max}`);
  } else if (range.min !== undefined) parts.push(`of at least ${range.min}`);
  else if (range.max !== undefined) parts.push(`of at most ${range.max}`);
  return [kind, ...parts].join(" ");
}

function checkNumber(
  name: string,
  value: string,
  range: NumberRange,
  integer: boolean,
): number {
  const kind = integer ? "an integer" : "a number";
  const x = Number(value);
  const ok = value.trim() !== "" && Number.isFinite(x) && (!integer || Number.isInteger(x)) &&
    (range.min === undefined || x >= range.min) && (range.max === undefined || x <= range.max) &&
    (range.above === undefined || x > range.above);
  if (!ok) {
    throw new UsageError(`--${name} expects ${describeRange(kind, range)}, got "${value}"`);
  }
  return x;
}

/**
 * The number given to `--name`, checked against `range`; `undefined` stays `undefined`
 * (an option that was not given and has no default).
 *
 * @example
 * ```ts
 * import { numberOption } from "./_cli.ts";
 * const t = numberOption("threshold", "0.3", { min: -1, max: 1 });
 * if (t !== 0.3) throw new Error("wrong value");
 * let message = "";
 * try { numberOption("threshold", "abc", { min: -1, max: 1 }); } catch (e) { message = String(e); }
 * if (!message.includes("--threshold expects a number from -1 to 1")) throw new Error(message);
 * ```
 */
export function numberOption<V extends string | undefined>(
  name: string,
  value: V,
  range: NumberRange = {},
): V extends string ? number : number | undefined {
  type R = V extends string ? number : number | undefined;
  if (value === undefined) return undefined as R;
  return checkNumber(name, value, range, false) as R;
}

/**
 * The integer given to `--name`, checked against `range`; `undefined` stays `undefined`.
 *
 * @example
 * ```ts
 * import { intOption } from "./_cli.ts";
 * if (intOption("steps", "20", { min: 1 }) !== 20) throw new Error("wrong value");
 * let message = "";
 * try { intOption("steps", "0", { min: 1 }); } catch (e) { message = String(e); }
 * if (!message.includes('--steps expects an integer of at least 1, got "0"')) {
 *   throw new Error(message);
 * }
 * ```
 */
export function intOption<V extends string | undefined>(
  name: string,
  value: V,
  range: NumberRange = {},
): V extends string ? number : number | undefined {
  type R = V extends string ? number : number | undefined;
  if (value === undefined) return undefined as R;
  return checkNumber(name, value, range, true) as R;
}

/**
 * The value given to `--name` if it is one of `choices`, else a {@link UsageError} listing them.
 *
 * @example
 * ```ts
 * import { choiceOption } from "./_cli.ts";
 * const b = choiceOption("backend", "cpu", ["auto", "cpu", "webgpu"] as const);
 * if (b !== "cpu") throw new Error("wrong value");
 * ```
 */
export function choiceOption<C extends string, V extends string | undefined>(
  name: string,
  value: V,
  choices: readonly C[],
): V extends string ? C : C | undefined {
  type R = V extends string ? C : C | undefined;
  if (value === undefined) return undefined as R;
  if (!(choices as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} expects one of ${choices.join(", ")}, got "${value}"`);
  }
  return value as unknown as R;
}

/**
 * A comma-separated list given to `--name`, each item parsed by `item` (which throws a
 * {@link UsageError} for a bad one); an empty list or item is refused.
 *
 * @example
 * ```ts
 * import { intOption, listOption } from "./_cli.ts";
 * const widths = listOption("widths", "16,32", (s) => intOption("widths", s, { min: 1 }));
 * if (widths.join() !== "16,32") throw new Error("wrong list");
 * ```
 */
export function listOption<T>(name: string, value: string, item: (s: string) => T): T[] {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.some((s) => s === "")) {
    throw new UsageError(
      `--${name} expects a comma-separated list with no empty items, got "${value}"`,
    );
  }
  return parts.map(item);
}

/**
 * Runs a command's `main`: a {@link UsageError} prints `error: <message>` and exits 2; any other
 * error prints `error: <message>` and exits 1 (set `COSGRAD_DEBUG` to also print the stack);
 * success returns normally.
 *
 * @example
 * ```ts ignore
 * import { runMain } from "./_cli.ts";
 * if (import.meta.main) await runMain(async (argv) => console.log(argv), Deno.args);
 * ```
 */
export async function runMain(
  main: (argv: string[]) => unknown | Promise<unknown>,
  argv: string[],
): Promise<void> {
  try {
    await main(argv);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    console.error(`error: ${message}`);
    if (e instanceof UsageError) {
      console.error("(run with --help for usage)");
      Deno.exit(2);
    }
    let debug = false;
    try {
      debug = (Deno.env.get("COSGRAD_DEBUG") ?? "") !== "";
    } catch { /* no env permission: no stack */ }
    if (debug && e instanceof Error && e.stack) console.error(e.stack);
    Deno.exit(1);
  }
}
