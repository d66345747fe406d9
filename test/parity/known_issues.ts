/**
 * KNOWN_ISSUES: parity runs that are skipped on an implementation, each with the exact case,
 * the reason, and what was seen. A skipped run is reported as `skip` with its reason (never
 * silently). Keep this list short: a fix removes its entry.
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
