// Property tests of the margin geometry of the losses (float64, generated problems): scale
// invariance, gradients orthogonal to the rows, monotonicity in the margin, the equivalences
// inside the combined margin, the LMCL decision rule, and CosFace's lower bound on the scale.
import fc from "./_fast_check.ts";
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import * as losses from "../src/losses/mod.ts";
import { check } from "./_property.ts";
import {
  close,
  hostCosines,
  norm,
  type Problem,
  problemArb,
  rows,
  rowsAtLeast,
  tensors,
} from "./_margin_data.ts";

type T = cg.Tensor;
type Loss = (x: T, w: T, y: Int32Array | T) => T;

const sArb = fc.double({ min: 1, max: 64, noNaN: true });
const mArb = fc.double({ min: 0, max: 0.5, noNaN: true });

/** The normalised losses, at margins drawn per case. */
const marginArb = fc.record({
  s: sArb,
  m: mArb,
  m1: fc.double({ min: 1, max: 2, noNaN: true }),
  m2: fc.double({ min: 0, max: 0.5, noNaN: true }),
  m3: fc.double({ min: 0, max: 0.3, noNaN: true }),
});
type Margins = { s: number; m: number; m1: number; m2: number; m3: number };

function normalisedLosses(g: Margins): Record<string, Loss> {
  return {
    cosface: (x, w, y) => losses.cosface(x, w, y, { s: g.s, m: g.m }),
    nsl: (x, w, y) => losses.nsl(x, w, y, { s: g.s }),
    arcface: (x, w, y) => losses.arcface(x, w, y, { s: g.s, m: g.m }),
    combinedMargin: (x, w, y) =>
      losses.combinedMargin(x, w, y, { s: g.s, m1: g.m1, m2: g.m2, m3: g.m3 }),
  };
}

async function value(t: T): Promise<number> {
  return (await t.data())[0];
}

Deno.test("losses are unchanged when embeddings or class-weight rows are scaled by positive factors", async () => {
  const factors = (n: number) =>
    fc.array(fc.double({ min: 1e-3, max: 1e3, noNaN: true }), { minLength: n, maxLength: n });
  const arb = fc.tuple(problemArb, marginArb).chain(([p, g]) =>
    fc.tuple(fc.constant(p), fc.constant(g), factors(p.b), factors(p.c))
  );
  await check("scale invariance", arb, async ([p, g, fx, fw]) => {
    fc.pre(rowsAtLeast(p, 1e-6));
    const scaled: Problem = {
      ...p,
      x: p.x.map((v, i) => v * fx[Math.floor(i / p.d)]),
      w: p.w.map((v, i) => v * fw[Math.floor(i / p.d)]),
    };
    const a = tensors(p), b = tensors(scaled);
    for (const [name, f] of Object.entries(normalisedLosses(g))) {
      const la = await value(f(a.x, a.w, a.y)), lb = await value(f(b.x, b.w, b.y));
      assert.ok(close(la, lb, 1e-9), `${name}: ${la} != ${lb} after scaling`);
    }
  }, 25);
});

Deno.test("the gradient of each row (embedding or class weight) is orthogonal to that row", async () => {
  await check("orthogonal gradients", fc.tuple(problemArb, marginArb), async ([p, g]) => {
    fc.pre(rowsAtLeast(p, 1e-3));
    const { x, w, y } = tensors(p);
    const all: Record<string, Loss> = {
      ...normalisedLosses(g),
      // SphereFace normalises only the class weights: their gradients are orthogonal.
      sphereface: (a, b, l) => losses.sphereface(a, b, l, { m: 3, lambda: 5 }),
    };
    for (const [name, f] of Object.entries(all)) {
      const [gx, gw] = cg.grad((a: T, b: T) => f(a, b, y), { argnums: [0, 1] })(x, w) as T[];
      const pairs: [number[][], number[][], string][] = [
        [rows(p.w, p.d), rows([...await gw.data()], p.d), "class weight"],
      ];
      if (name !== "sphereface") {
        pairs.push([rows(p.x, p.d), rows([...await gx.data()], p.d), "embedding"]);
      }
      for (const [vs, gs, what] of pairs) {
        vs.forEach((v, i) => {
          const dot = v.reduce((a, vi, k) => a + vi * gs[i][k], 0);
          assert.ok(
            Math.abs(dot) <= 1e-10 * (norm(v) * norm(gs[i]) + 1e-300),
            `${name}: <row, grad> = ${dot} for ${what} ${i}`,
          );
        });
      }
    }
  }, 20);
});

Deno.test("cosface and arcface losses increase with the margin m", async () => {
  const arb = fc.tuple(problemArb, sArb, mArb, mArb);
  await check("monotone in m", arb, async ([p, s, ma, mb]) => {
    fc.pre(rowsAtLeast(p, 1e-6));
    const [lo, hi] = ma < mb ? [ma, mb] : [mb, ma];
    const { x, w, y } = tensors(p);
    for (const f of [losses.cosface, losses.arcface]) {
      const a = await value(f(x, w, y, { s, m: lo }));
      const b = await value(f(x, w, y, { s, m: hi }));
      assert.ok(
        b >= a - 1e-12 * Math.max(1, a),
        `${f.name}: L(m=${hi}) = ${b} < L(m=${lo}) = ${a}`,
      );
      // Strictly, wherever the loss is not saturated at 0 and the margins differ.
      if (a > 1e-6 && hi - lo > 1e-3) assert.ok(b > a, `${f.name}: not strictly increasing`);
    }
  }, 30);
});

Deno.test("cosface(m=0) = nsl, cosface = combinedMargin(1, 0, m), arcface = combinedMargin(1, m, 0)", async () => {
  await check(
    "combined margin equivalences",
    fc.tuple(problemArb, sArb, mArb),
    async ([p, s, m]) => {
      fc.pre(rowsAtLeast(p, 1e-6));
      const { x, w, y } = tensors(p);
      const pairs: [string, T, T][] = [
        ["cosface(m=0) vs nsl", losses.cosface(x, w, y, { s, m: 0 }), losses.nsl(x, w, y, { s })],
        [
          "cosface vs combined(1, 0, m)",
          losses.cosface(x, w, y, { s, m }),
          losses.combinedMargin(x, w, y, { s, m1: 1, m2: 0, m3: m }),
        ],
        [
          "arcface vs combined(1, m, 0)",
          losses.arcface(x, w, y, { s, m }),
          losses.combinedMargin(x, w, y, { s, m1: 1, m2: m, m3: 0 }),
        ],
      ];
      for (const [what, a, b] of pairs) {
        const va = await value(a), vb = await value(b);
        assert.ok(close(va, vb, 1e-12), `${what}: ${va} != ${vb}`);
      }
      // And the arcface target logit really is s cos(θ + m) where θ + m ≤ π: a host reference.
      const cos = hostCosines(p);
      let ref = 0;
      cos.forEach((row, i) => {
        const yi = p.labels[i];
        const theta = Math.acos(row[yi]);
        const t = theta + m <= Math.PI ? Math.cos(theta + m) : row[yi] - (1 - Math.cos(m));
        const logits = row.map((c, j) => s * (j === yi ? t : c));
        const mx = Math.max(...logits);
        ref += mx + Math.log(logits.reduce((a, l) => a + Math.exp(l - mx), 0)) - s * t;
      });
      ref /= p.b;
      const arc = await value(losses.arcface(x, w, y, { s, m }));
      assert.ok(close(arc, ref, 1e-9), `arcface ${arc} != host reference ${ref}`);
    },
    30,
  );
});

Deno.test("marginCorrect() is cos θ_y - m > max_{j≠y} cos θ_j, against a brute force", async () => {
  const arb = fc.tuple(problemArb, fc.double({ min: -0.2, max: 0.8, noNaN: true }));
  let positives = 0, negatives = 0;
  await check("margin decision rule", arb, async ([p, m]) => {
    fc.pre(rowsAtLeast(p, 1e-6));
    const cos = hostCosines(p);
    const gaps = cos.map((row, i) => {
      const others = row.filter((_, j) => j !== p.labels[i]);
      return row[p.labels[i]] - m - Math.max(...others);
    });
    // Too close to call in floating point: skip.
    fc.pre(gaps.every((g) => Math.abs(g) > 1e-9));
    const { x, w, y } = tensors(p);
    const got = [...await losses.marginCorrect(x, w, y, { m }).data()];
    assert.deepEqual(got, gaps.map((g) => g > 0 ? 1 : 0));
    positives += got.filter((v) => v === 1).length;
    negatives += got.filter((v) => v === 0).length;
  }, 50);
  // The generated cases exercise both outcomes.
  assert.ok(positives > 0 && negatives > 0, `${positives} correct, ${negatives} not`);
});

/** C unit vectors in R^k (k ≥ C - 1) with pairwise cosine -1/(C-1), randomly rotated. */
function simplex(c: number, k: number, rotation: readonly number[]): number[][] {
  // e_i - 1/C in R^C lies in the hyperplane orthogonal to (1, ..., 1); express it in an
  // orthonormal basis of that hyperplane (Helmert), giving C - 1 coordinates.
  const basis: number[][] = [];
  for (let j = 1; j < c; j++) {
    const v = new Array(c).fill(0);
    for (let i = 0; i < j; i++) v[i] = 1;
    v[j] = -j;
    const n = norm(v);
    basis.push(v.map((x) => x / n));
  }
  const pts = Array.from({ length: c }, (_, i) => {
    const e = new Array(c).fill(-1 / c);
    e[i] += 1;
    const coords = basis.map((b) => b.reduce((a, bi, t) => a + bi * e[t], 0));
    const n = norm(coords);
    return [...coords.map((x) => x / n), ...new Array(k - (c - 1)).fill(0)];
  });
  return rotate(pts, k, rotation);
}

/** Applies the orthogonal matrix obtained by Gram-Schmidt on `raw` (k x k values). */
function rotate(pts: number[][], k: number, raw: readonly number[]): number[][] {
  const q: number[][] = [];
  for (let i = 0; i < k; i++) {
    let v = raw.slice(i * k, (i + 1) * k);
    for (const u of q) {
      const d = u.reduce((a, ui, t) => a + ui * v[t], 0);
      v = v.map((x, t) => x - d * u[t]);
    }
    const n = norm(v);
    q.push(n > 1e-6 ? v.map((x) => x / n) : Array.from({ length: k }, (_, t) => t === i ? 1 : 0));
  }
  // Rows of q may be degenerate in theory; re-check orthonormality and fall back to identity.
  const ok = q.every((u, i) =>
    q.every((v, j) => Math.abs(u.reduce((a, x, t) => a + x * v[t], 0) - (i === j ? 1 : 0)) < 1e-9)
  );
  const m = ok ? q : q.map((_, i) => Array.from({ length: k }, (_, t) => t === i ? 1 : 0));
  return pts.map((p) => m.map((row) => row.reduce((a, x, t) => a + x * p[t], 0)));
}

/** NSL loss (float64) with every sample at its class centre, scaled by `radii`. */
async function centreLoss(w: number[][], radii: number[], s: number): Promise<number> {
  const c = w.length, k = w[0].length;
  const x = w.flatMap((row, i) => row.map((v) => v * radii[i]));
  const loss = losses.nsl(
    cg.tensor(x, [c, k], { dtype: "float64" }),
    cg.tensor(w.flat(), [c, k], { dtype: "float64" }),
    Int32Array.from({ length: c }, (_, i) => i),
    { s },
  );
  return await value(loss);
}

Deno.test("scaleLowerBound(): on a regular simplex the posterior reaches P_W exactly from the bound on", async () => {
  const arb = fc.record({
    c: fc.integer({ min: 2, max: 8 }),
    extra: fc.integer({ min: 0, max: 3 }),
    u: fc.double({ min: 0.01, max: 0.99, noNaN: true }),
  }).chain(({ c, extra, u }) => {
    const k = c - 1 + extra;
    return fc.record({
      c: fc.constant(c),
      k: fc.constant(k),
      // P_W above 1/C (below it the bound is negative: any s > 0 reaches it).
      pW: fc.constant(1 / c + (1 - 1 / c) * u),
      rotation: fc.array(fc.double({ min: -1, max: 1, noNaN: true }), {
        minLength: k * k,
        maxLength: k * k,
      }),
      radii: fc.array(fc.double({ min: 0.1, max: 10, noNaN: true }), {
        minLength: c,
        maxLength: c,
      }),
    });
  });
  await check("scale lower bound on the simplex", arb, async ({ c, k, pW, rotation, radii }) => {
    const w = simplex(c, k, rotation);
    // The construction really is a regular simplex.
    w.forEach((a, i) =>
      w.forEach((b, j) => {
        const d = a.reduce((t, x, q) => t + x * b[q], 0);
        assert.ok(Math.abs(d - (i === j ? 1 : -1 / (c - 1))) < 1e-9, `cos(W${i}, W${j}) = ${d}`);
      })
    );
    const bound = losses.scaleLowerBound(c, pW);
    assert.ok(bound > 0);
    // Every sample is symmetric, so the mean loss is each sample's -log P_W.
    const target = -Math.log(pW);
    const above = await centreLoss(w, radii, bound * (1 + 1e-6));
    const below = await centreLoss(w, radii, bound * (1 - 1e-6));
    const at = await centreLoss(w, radii, bound);
    assert.ok(above < target, `s above the bound: loss ${above} should be < ${target}`);
    assert.ok(below > target, `s below the bound: loss ${below} should be > ${target}`);
    assert.ok(close(at, target, 1e-9), `at the bound: loss ${at} != -ln P_W = ${target}`);
  }, 30);
});

Deno.test("scaleLowerBound() is necessary for any zero-sum class weights (antipodal pairs)", async () => {
  // The paper's assumptions: features at their class centres, unit class weights summing to
  // zero. By Jensen the posterior is then at most the simplex value, so below the bound it
  // stays below P_W. Antipodal pairs {v, -v} are zero-sum configurations for any even C.
  const arb = fc.record({
    pairs: fc.integer({ min: 1, max: 4 }),
    k: fc.integer({ min: 2, max: 5 }),
    u: fc.double({ min: 0.01, max: 0.99, noNaN: true }),
  }).chain(({ pairs, k, u }) =>
    fc.record({
      pairs: fc.constant(pairs),
      k: fc.constant(k),
      pW: fc.constant(1 / (2 * pairs) + (1 - 1 / (2 * pairs)) * u),
      dirs: fc.array(fc.integer({ min: -1000, max: 1000 }).map((i) => i / 1000), {
        minLength: pairs * k,
        maxLength: pairs * k,
      }),
      shrink: fc.double({ min: 0.05, max: 0.999, noNaN: true }),
    })
  );
  await check("scale bound is necessary", arb, async ({ pairs, k, pW, dirs, shrink }) => {
    const vs = rows(dirs, k);
    fc.pre(vs.every((v) => norm(v) > 0.1));
    const w = vs.flatMap((v) => {
      const u = v.map((x) => x / norm(v));
      return [u, u.map((x) => -x)];
    });
    const c = 2 * pairs;
    const s = losses.scaleLowerBound(c, pW) * shrink;
    const loss = await centreLoss(w, new Array(c).fill(1), s);
    // The mean of -log P_i over samples is at least -log of the simplex posterior > -log P_W,
    // so at least one sample misses P_W; the mean loss exceeds -log P_W.
    assert.ok(loss > -Math.log(pW), `s = ${s} below the bound, loss ${loss} <= ${-Math.log(pW)}`);
  }, 30);
});

Deno.test("marginUpperBound() follows Eq. 7 and refuses the case without closed form", () => {
  assert.ok(Math.abs(losses.marginUpperBound(4, 2) - 1) < 1e-15);
  assert.ok(Math.abs(losses.marginUpperBound(6, 2) - 0.5) < 1e-15);
  assert.equal(losses.marginUpperBound(10, 512), 10 / 9);
  // K = 2 and C ≤ 3 are both cases; the formulas agree.
  assert.ok(Math.abs(losses.marginUpperBound(3, 2) - 1.5) < 1e-15);
  assert.equal(losses.marginUpperBound(3, 3), 1.5);
  assert.throws(() => losses.marginUpperBound(10, 3), RangeError);
  assert.throws(() => losses.marginUpperBound(1, 3), /integer ≥ 2, got 1/);
  assert.throws(() => losses.scaleLowerBound(10, 1), /\(0, 1\), got 1/);
  // Eq. 6 by hand: C = 10, P_W = 0.9 -> 0.9 ln 81.
  assert.ok(Math.abs(losses.scaleLowerBound(10, 0.9) - 0.9 * Math.log(81)) < 1e-15);
});
