// The margin losses against float64 host references, their gradients against finite
// differences (checkGrad) at generated points and near the degenerate ones, and finite values
// and gradients at degenerate inputs: zero and huge rows, cosines of exactly ±1, huge s.
import fc from "./_fast_check.ts";
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import * as losses from "../src/losses/mod.ts";
import { check } from "./_property.ts";
import {
  hostCosines,
  norm,
  type Problem,
  problemArb,
  rows,
  rowsAtLeast,
  tensors,
} from "./_margin_data.ts";

type T = cg.Tensor;

/** Mean cross-entropy over rows of logits with a target logit per row (host, float64). */
function hostCe(logits: number[][], targets: number[]): number {
  let total = 0;
  logits.forEach((row, i) => {
    const mx = Math.max(...row);
    total += mx + Math.log(row.reduce((a, l) => a + Math.exp(l - mx), 0)) - targets[i];
  });
  return total / logits.length;
}

/** A margin loss given the target-cosine map and a per-row scale (host reference). */
function hostMargin(p: Problem, target: (t: number) => number, scale: (i: number) => number) {
  const cos = hostCosines(p);
  const tl = cos.map((row, i) => scale(i) * target(row[p.labels[i]]));
  return hostCe(
    cos.map((row, i) => row.map((c, j) => j === p.labels[i] ? tl[i] : scale(i) * c)),
    tl,
  );
}

function hostCombined(m1: number, m2: number, m3: number): (t: number) => number {
  const thetaMax = (Math.PI - m2) / m1;
  return (t) => {
    const theta = Math.acos(t);
    if (thetaMax >= Math.PI || theta <= thetaMax) return Math.cos(m1 * theta + m2) - m3;
    return t - m3 - 1 - Math.cos(thetaMax);
  };
}

function hostPsi(m: number): (t: number) => number {
  return (t) => {
    const theta = Math.acos(t);
    const k = Math.min(m - 1, Math.floor(m * theta / Math.PI));
    return (k % 2 === 0 ? 1 : -1) * Math.cos(m * theta) - 2 * k;
  };
}

const paramsArb = fc.record({
  s: fc.double({ min: 1, max: 64, noNaN: true }),
  m: fc.double({ min: 0, max: 0.6, noNaN: true }),
  m1: fc.double({ min: 0.8, max: 3, noNaN: true }),
  m2: fc.double({ min: 0, max: 0.8, noNaN: true }),
  m3: fc.double({ min: -0.1, max: 0.4, noNaN: true }),
  k: fc.integer({ min: 1, max: 5 }),
  lambda: fc.double({ min: 0, max: 20, noNaN: true }),
  easy: fc.boolean(),
});

Deno.test("every loss matches a float64 host reference", async () => {
  await check("host references", fc.tuple(problemArb, paramsArb), async ([p, g]) => {
    fc.pre(rowsAtLeast(p, 1e-3));
    const { x, w, y } = tensors(p);
    const bias = Array.from({ length: p.c }, (_, j) => 0.1 * j - 0.2);
    const xs = rows(p.x, p.d), ws = rows(p.w, p.d);
    const arcT = (t: number) => {
      if (g.easy && t <= 0) return t;
      return hostCombined(1, g.m, 0)(t);
    };
    const cases: [string, T, number][] = [
      [
        "softmaxCrossEntropy",
        losses.softmaxCrossEntropy(x, w, y, { bias: cg.tensor(bias, [p.c], { dtype: "float64" }) }),
        (() => {
          const logits = xs.map((r) =>
            ws.map((wr, j) => wr.reduce((a, v, q) => a + v * r[q], bias[j]))
          );
          return hostCe(logits, logits.map((row, i) => row[p.labels[i]]));
        })(),
      ],
      ["nsl", losses.nsl(x, w, y, { s: g.s }), hostMargin(p, (t) => t, () => g.s)],
      [
        "cosface",
        losses.cosface(x, w, y, { s: g.s, m: g.m }),
        hostMargin(p, (t) => t - g.m, () => g.s),
      ],
      [
        "arcface",
        losses.arcface(x, w, y, { s: g.s, m: g.m, easyMargin: g.easy }),
        hostMargin(p, arcT, () => g.s),
      ],
      [
        "combinedMargin",
        losses.combinedMargin(x, w, y, { s: g.s, m1: g.m1, m2: g.m2, m3: g.m3 }),
        hostMargin(p, hostCombined(g.m1, g.m2, g.m3), () => g.s),
      ],
      [
        "sphereface",
        losses.sphereface(x, w, y, { m: g.k, lambda: g.lambda }),
        hostMargin(
          p,
          (t) => (g.lambda * t + hostPsi(g.k)(t)) / (1 + g.lambda),
          (i) => norm(xs[i]),
        ),
      ],
    ];
    for (const [name, t, ref] of cases) {
      const v = (await t.data())[0];
      assert.ok(
        Math.abs(v - ref) <= 1e-9 * Math.max(1, Math.abs(ref)),
        `${name}: ${v} != host ${ref}`,
      );
    }
  }, 30);
});

/** Parameters of the losses drawn per case. */
interface LossParams {
  s: number;
  m: number;
  m1: number;
  m2: number;
  m3: number;
  k: number;
  lambda: number;
  easy: boolean;
}

/** Every loss as a function of (x, w), at the given parameters. */
function allLosses(y: Int32Array, g: LossParams): Record<string, (x: T, w: T) => T> {
  return {
    softmaxCrossEntropy: (x, w) => losses.softmaxCrossEntropy(x, w, y),
    nsl: (x, w) => losses.nsl(x, w, y, { s: g.s }),
    cosface: (x, w) => losses.cosface(x, w, y, { s: g.s, m: g.m }),
    arcface: (x, w) => losses.arcface(x, w, y, { s: g.s, m: g.m, easyMargin: g.easy }),
    combinedMargin: (x, w) =>
      losses.combinedMargin(x, w, y, { s: g.s, m1: g.m1, m2: g.m2, m3: g.m3 }),
    sphereface: (x, w) => losses.sphereface(x, w, y, { m: g.k, lambda: g.lambda }),
  };
}

const LOSS_NAMES = [
  "softmaxCrossEntropy",
  "nsl",
  "cosface",
  "arcface",
  "combinedMargin",
  "sphereface",
] as const;

Deno.test("checkGrad() passes for every loss, at generated points and near degenerate ones", async () => {
  // kind: "generic" data; "near+1"/"near-1": each embedding within ~0.05 rad of its class
  // weight or of its antipode; "small": embeddings of norm ~1e-3; "linear": norm ~1e-14,
  // below l2Normalize's epsilon (1e-12), where normalisation is linear.
  const arb = fc.record({
    p: problemArb,
    g: paramsArb,
    noise: fc.array(fc.integer({ min: -1000, max: 1000 }).map((i) => i / 1000), {
      minLength: 24,
      maxLength: 24,
    }),
  });
  const kinds = ["generic", "near+1", "near-1", "small", "linear"] as const;
  // Every (loss, kind) pair in turn, on generated data.
  let turn = 0;
  const seen = new Set<string>();
  await check("loss gradients", arb, async ({ p, g, noise }) => {
    fc.pre(rowsAtLeast(p, 0.1));
    const which = LOSS_NAMES[turn % LOSS_NAMES.length];
    const kind = kinds[Math.floor(turn / LOSS_NAMES.length) % kinds.length];
    // A margin-free scale keeps the sharp curvature of s = 64 out of the finite differences.
    const gg = { ...g, s: Math.min(g.s, 16) };
    let x = p.x;
    const ws = rows(p.w, p.d);
    if (kind === "near+1" || kind === "near-1") {
      // x_i = ±u + 0.05 n, u the unit class weight and n a unit vector orthogonal to it:
      // 0.05 rad from the class weight (or its antipode).
      const sign = kind === "near+1" ? 1 : -1;
      x = p.labels.flatMap((l, i) => {
        const u = ws[l].map((v) => v / norm(ws[l]));
        const n = u.map((_, q) => noise[(i * p.d + q) % 24]);
        const along = n.reduce((a, v, q) => a + v * u[q], 0);
        const perp = n.map((v, q) => v - along * u[q]);
        fc.pre(norm(perp) > 0.2);
        return u.map((v, q) => sign * v + 0.05 * perp[q] / norm(perp));
      });
    } else if (kind === "small") x = p.x.map((v) => v * 1e-3);
    const linear = kind === "linear" && which !== "softmaxCrossEntropy" && which !== "sphereface";
    if (linear) x = p.x.map((v) => v * 1e-15);
    turn++;
    seen.add(`${which}/${kind}`);
    const y = Int32Array.from(p.labels);
    const f = allLosses(y, gg)[which];
    const eps = linear ? 1e-18 : kind === "small" ? 1e-8 : 1e-6;
    await cg.checkGrad(f, [
      cg.tensor(x, [p.b, p.d], { dtype: "float64" }),
      cg.tensor(p.w, [p.c, p.d], { dtype: "float64" }),
    ], { eps, tolerance: 1e-4, directions: 2 });
  }, 60);
  assert.equal(seen.size, LOSS_NAMES.length * kinds.length, [...seen].join(" "));
});

Deno.test("losses and gradients stay finite at degenerate inputs, in float32 and float64", async () => {
  // Rows of x: generic, zero, exactly its class weight (cos = 1) or its antipode (cos = -1),
  // huge (squares overflow), tiny (squares underflow); rows of W: generic, zero, huge, tiny.
  const arb = problemArb.chain((p) =>
    fc.record({
      p: fc.constant(p),
      xKinds: fc.array(fc.constantFrom("random", "zero", "plus", "minus", "huge", "tiny"), {
        minLength: p.b,
        maxLength: p.b,
      }),
      wKinds: fc.array(fc.constantFrom("random", "zero", "huge", "tiny"), {
        minLength: p.c,
        maxLength: p.c,
      }),
      s: fc.constantFrom(1, 64, 1e4, 1e6),
      m1: fc.constantFrom(1, 1.5, 4),
      k: fc.integer({ min: 1, max: 5 }),
      dtype: fc.constantFrom("float32" as const, "float64" as const),
    })
  );
  await check(
    "finite at degenerate inputs",
    arb,
    async ({ p, xKinds, wKinds, s, m1, k, dtype }) => {
      const big = dtype === "float32" ? 1e30 : 1e200, small = dtype === "float32" ? 1e-30 : 1e-200;
      const scale = (kind: string) =>
        kind === "zero" ? 0 : kind === "huge" ? big : kind === "tiny" ? small : 1;
      const ws = rows(p.w, p.d).map((r, j) => r.map((v) => v * scale(wKinds[j])));
      const xs = rows(p.x, p.d).map((r, i) => {
        const kind = xKinds[i], wy = ws[p.labels[i]];
        if (kind === "plus") return wy;
        if (kind === "minus") return wy.map((v) => -v);
        return r.map((v) => v * scale(kind));
      });
      const x = cg.tensor(xs.flat(), [p.b, p.d], { dtype });
      const w = cg.tensor(ws.flat(), [p.c, p.d], { dtype });
      const y = Int32Array.from(p.labels);
      const g = { s, m: 0.35, m1, m2: 0.5, m3: 0.2, k, lambda: 5, easy: false };
      const fs = allLosses(y, g);
      const fsEasy = { arcfaceEasy: allLosses(y, { ...g, easy: true }).arcface };
      const huge = [...xKinds, ...wKinds].includes("huge");
      for (const [name, f] of Object.entries({ ...fs, ...fsEasy })) {
        // The plain linear classifier has unnormalised logits x·W, which overflow for huge rows.
        if (name === "softmaxCrossEntropy" && huge) continue;
        const [v, grads] = cg.valueAndGrad(f, { argnums: [0, 1] })(x, w) as [T, T[]];
        const all = [...await v.data(), ...await grads[0].data(), ...await grads[1].data()];
        const bad = all.findIndex((a) => !Number.isFinite(a));
        assert.equal(
          bad,
          -1,
          `${name} (${dtype}, s=${s}): non-finite ${all[bad]} in value/gradients`,
        );
      }
    },
    30,
  );
});

Deno.test("labels out of range are an error, never a silent loss", async () => {
  const x = cg.tensor([[1, 0], [0, 1]]), w = cg.tensor([[1, 0], [0, 1], [1, 1]]);
  assert.throws(
    () => losses.cosface(x, w, new Int32Array([0, 3])),
    /label 3 at index 1 is outside \[0, 3\)/,
  );
  assert.throws(() => losses.cosface(x, w, new Int32Array([0])), /expected 2 labels/);
  assert.throws(
    () => losses.cosface(x, cg.tensor([[1, 0, 0]]), new Int32Array([0, 0])),
    /\[C, 2\]/,
  );
  assert.throws(
    () => losses.cosface(x, w, new Int32Array([0, 1]), { s: 0 }),
    /s must be a finite positive/,
  );
  assert.throws(() => losses.sphereface(x, w, new Int32Array([0, 1]), { m: 1.5 }), /integer ≥ 1/);
  assert.throws(() => losses.combinedMargin(x, w, new Int32Array([0, 1]), { m2: 4 }), /\[0, π\)/);
  // An int32 tensor cannot be checked on the host: the loss becomes non-finite instead.
  const bad = cg.tensor(new Int32Array([0, 7]), [2], { dtype: "int32" });
  for (const f of [losses.cosface, losses.nsl, losses.arcface, losses.softmaxCrossEntropy]) {
    const v = await f(x, w, bad).item();
    assert.ok(!Number.isFinite(v), `${f.name}: ${v}`);
  }
  const good = cg.tensor(new Int32Array([0, 2]), [2], { dtype: "int32" });
  assert.ok(Number.isFinite(await losses.cosface(x, w, good).item()));
});
