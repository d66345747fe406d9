// Shared settings of the property-based suites: a fixed seed in CI (printed on failure), more
// runs with COSGRAD_PROPERTY_RUNS, and a count of the cases that ran.
import fc from "./_fast_check.ts";

/** The seed: COSGRAD_PROPERTY_SEED, or a fixed one so CI is reproducible. */
export const SEED = Number(Deno.env.get("COSGRAD_PROPERTY_SEED") ?? 20180126);
/** Runs per property: COSGRAD_PROPERTY_RUNS, or `fallback`. */
export function runs(fallback: number): number {
  const v = Deno.env.get("COSGRAD_PROPERTY_RUNS");
  return v === undefined ? fallback : Number(v);
}

/** Runs an async property with the suite's seed, reporting how many cases ran. */
export async function check<T>(
  name: string,
  arb: fc.Arbitrary<T>,
  predicate: (value: T) => Promise<void>,
  numRuns: number,
): Promise<number> {
  let cases = 0;
  await fc.assert(
    fc.asyncProperty(arb, async (v) => {
      cases++;
      await predicate(v);
    }),
    { seed: SEED, numRuns: runs(numRuns), endOnFailure: true },
  );
  console.log(`${name}: ${cases} generated cases passed (seed ${SEED})`);
  return cases;
}

/** A shape of rank 0..maxRank with dimensions 1..maxDim. */
export function shapeArb(maxRank = 3, maxDim = 4): fc.Arbitrary<number[]> {
  return fc.array(fc.integer({ min: 1, max: maxDim }), { minLength: 0, maxLength: maxRank });
}

/** A shape that broadcasts against `shape` (some axes set to 1, some leading axes dropped). */
export function broadcastPartner(shape: number[]): fc.Arbitrary<number[]> {
  return fc.tuple(
    fc.integer({ min: 0, max: shape.length }),
    fc.array(fc.boolean(), { minLength: shape.length, maxLength: shape.length }),
  ).map(([drop, ones]) => shape.map((d, i) => ones[i] ? 1 : d).slice(drop));
}
