/**
 * Tuning records measured on Mesa's llvmpipe (see `tune.ts`, `deno task tune`), shipped so a
 * fresh machine chooses without measuring.
 *
 * @module
 */
import type { TuneRecord } from "./tune.ts";

/** Records per kernel class, measured on llvmpipe. */
export const LLVMPIPE_RECORDS: Readonly<Record<string, TuneRecord>> = {};
