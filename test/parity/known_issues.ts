/**
 * KNOWN_ISSUES: parity runs that are skipped on an implementation, each with the exact case,
 * the reason, and what was seen. A skipped run is reported as `skip` with its reason (never
 * silently). Keep this list short: a fix removes its entry. A run that does not finish within
 * its limit (60 s in the tests) is reported as `timeout`, and the browser driver starts
 * Chromium again after it, so one stuck kernel cannot hide the rest of the suite.
 *
 * Open: none (Chromium 150 with SwiftShader, Deno 2.9.6 with llvmpipe, 2026-12-03).
 *
 * Fixed, for the record:
 * - `conv.rows` with the forward candidate `implicit 8` and the weight-gradient candidates
 *   `implicit 8` and `implicit 16`, and `conv.stride2` under the discrete profile (its stride-2
 *   input gradient): SwiftShader did not create the pipelines within 60 s (the forward one not
 *   within 15 minutes); Tint accepted the WGSL. The cause was `&&` between the bounds tests of the
 *   implicit GEMM's loads (a branch per test); `kernels/conv2d.ts` now joins them with `&`
 *   (0.34 s and 0.40 s there).
 * - Not an issue of an implementation: the split-binding cases ran at a 1 KiB binding limit,
 *   which splits an elementwise op over more than SwiftShader's 10 storage buffers per stage
 *   (llvmpipe has 16); the scheduler refuses that with a clear error, so the cases now split at
 *   2 KiB (2 or 3 parts per tensor).
 *
 * @module
 */
import type { Profile } from "./cases.ts";

/** One known issue. */
export interface KnownIssue {
  /** The case's name. */
  case: string;
  /** The implementation: `deno` (wgpu on the host's adapter) or `chromium` (Dawn + Tint). */
  implementation: string;
  /** The kernel profile, when the issue is limited to one. */
  profile?: Profile;
  /** The variant (`default` or `<class> = <variant>`), when limited to one. */
  variant?: string;
  /** What goes wrong, measured where. */
  reason: string;
}

/** The known issues (see the module documentation). */
export const KNOWN_ISSUES: readonly KnownIssue[] = [];

/**
 * The known issue matching a run, or null.
 *
 * @example
 * ```ts
 * import { knownIssue } from "./known_issues.ts";
 * const list = [{ case: "a", implementation: "chromium", reason: "hangs" }];
 * knownIssue(list, { case: "a", implementation: "chromium", profile: "llvmpipe", variant: "default" })?.reason; // "hangs"
 * ```
 */
export function knownIssue(
  list: readonly KnownIssue[] | undefined,
  run: { case: string; implementation: string; profile: Profile; variant: string },
): KnownIssue | null {
  for (const k of list ?? KNOWN_ISSUES) {
    if (
      k.case === run.case && k.implementation === run.implementation &&
      (k.profile === undefined || k.profile === run.profile) &&
      (k.variant === undefined || k.variant === run.variant)
    ) {
      return k;
    }
  }
  return null;
}
