// Shared generators and host helpers of the margin-loss suites (float64 data, small shapes).
import fc from "./_fast_check.ts";
import * as cg from "../mod.ts";

/** A classification problem: embeddings [b, d], class weights [c, d], labels [b]. */
export interface Problem {
  b: number;
  c: number;
  d: number;
  x: number[];
  w: number[];
  labels: number[];
}

/** Values on a grid of 1e-4 in [-2, 2] (fc.double favours tiny magnitudes and zero rows). */
function values(n: number): fc.Arbitrary<number[]> {
  const v = fc.integer({ min: -20000, max: 20000 }).map((i) => i / 10000);
  return fc.array(v, { minLength: n, maxLength: n });
}

/** Problems with b in 1..4, c in 2..5, d in 2..6 and values in [-2, 2]. */
export const problemArb: fc.Arbitrary<Problem> = fc.record({
  b: fc.integer({ min: 1, max: 4 }),
  c: fc.integer({ min: 2, max: 5 }),
  d: fc.integer({ min: 2, max: 6 }),
}).chain(({ b, c, d }) =>
  fc.record({
    b: fc.constant(b),
    c: fc.constant(c),
    d: fc.constant(d),
    x: values(b * d),
    w: values(c * d),
    labels: fc.array(fc.integer({ min: 0, max: c - 1 }), { minLength: b, maxLength: b }),
  })
);

/** The rows of a flat row-major matrix. */
export function rows(flat: readonly number[], d: number): number[][] {
  return Array.from({ length: flat.length / d }, (_, i) => flat.slice(i * d, (i + 1) * d));
}

/** Euclidean norm. */
export function norm(v: readonly number[]): number {
  return Math.hypot(...v);
}

/** Whether every row of the problem's embeddings and class weights has norm ≥ `min`. */
export function rowsAtLeast(p: Problem, min: number): boolean {
  return [...rows(p.x, p.d), ...rows(p.w, p.d)].every((r) => norm(r) >= min);
}

/** Cosines [b][c] computed on the host in float64. */
export function hostCosines(p: Problem): number[][] {
  const ws = rows(p.w, p.d).map((r) => r.map((v) => v / norm(r)));
  return rows(p.x, p.d).map((r) => {
    const u = r.map((v) => v / norm(r));
    return ws.map((w) => Math.max(-1, Math.min(1, w.reduce((a, v, i) => a + v * u[i], 0))));
  });
}

/** The problem as float64 tensors and an Int32Array of labels. */
export function tensors(p: Problem): { x: cg.Tensor; w: cg.Tensor; y: Int32Array } {
  return {
    x: cg.tensor(p.x, [p.b, p.d], { dtype: "float64" }),
    w: cg.tensor(p.w, [p.c, p.d], { dtype: "float64" }),
    y: Int32Array.from(p.labels),
  };
}

/** Relative closeness. */
export function close(a: number, b: number, tol: number): boolean {
  return Math.abs(a - b) <= tol * Math.max(1, Math.abs(a), Math.abs(b));
}
