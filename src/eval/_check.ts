// Private argument checks shared by the evaluation modules (not exported from mod.ts).

type PairLabels = ArrayLike<boolean> | ArrayLike<number>;

/** Throws unless `d` is a positive integer and `length` is a multiple of it; returns rows. */
export function checkRows(length: number, d: number, name: string): number {
  if (!Number.isInteger(d) || d <= 0) {
    throw new RangeError(`Invalid dimension ${d} for ${name}: expected a positive integer`);
  }
  if (length % d !== 0) {
    throw new RangeError(
      `Invalid length ${length} of ${name}: expected a multiple of the dimension ${d}`,
    );
  }
  return length / d;
}

/** Throws on the first non-finite entry of `values`. */
export function checkFinite(values: ArrayLike<number>, name: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new RangeError(`Non-finite value ${values[i]} at index ${i} of ${name}`);
    }
  }
}

/** Converts pair labels to a 0/1 byte array, rejecting anything but booleans and 0/1. */
export function toBinaryLabels(issame: PairLabels, n: number): Uint8Array {
  if (issame.length !== n) {
    throw new RangeError(`Invalid label count ${issame.length}: expected ${n}, one per score`);
  }
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const v = issame[i] as unknown;
    if (v === true || v === 1) out[i] = 1;
    else if (v !== false && v !== 0) {
      throw new TypeError(`Invalid label ${String(v)} at index ${i}: expected a boolean or 0/1`);
    }
  }
  return out;
}

/**
 * Splits the scores by label into two ascending Float64Arrays (positives, negatives),
 * keeping only indices where `keep(i)` is true.
 */
export function splitSorted(
  scores: ArrayLike<number>,
  labels: Uint8Array,
  keep?: (i: number) => boolean,
): { pos: Float64Array; neg: Float64Array } {
  let np = 0;
  let nn = 0;
  for (let i = 0; i < scores.length; i++) {
    if (keep && !keep(i)) continue;
    if (labels[i]) np++;
    else nn++;
  }
  const pos = new Float64Array(np);
  const neg = new Float64Array(nn);
  np = 0;
  nn = 0;
  for (let i = 0; i < scores.length; i++) {
    if (keep && !keep(i)) continue;
    // +0 turns -0 into 0 so equal scores always merge into one group.
    if (labels[i]) pos[np++] = scores[i] + 0;
    else neg[nn++] = scores[i] + 0;
  }
  pos.sort();
  neg.sort();
  return { pos, neg };
}
