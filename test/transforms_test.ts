// The JAX-style transforms on the cpu interpreter, in float64: vmap against a loop for every
// primitive, jacfwd = jacrev = finite differences, hessian symmetry, custom rules, compile
// composed with grad and vmap, checkpoint, traced randomness, typed results, pytree statics,
// and the count of programs a transform runs. Property cases use the suite's fixed seed
// (test/_property.ts) and print how many ran; a failure names the case (primitive) and seed.
import assert from "node:assert/strict";
import fc from "./_fast_check.ts";
import * as cg from "../mod.ts";
import type { Node } from "../src/ir/node.ts";
import { topoSort } from "../src/ir/node.ts";
import { PRIMS } from "../src/ir/primitives.ts";
import { threefry2x32 } from "../src/ir/threefry.ts";
import { cpuBackend, withBackend } from "../src/backend/registry.ts";
import type { Backend, Program } from "../src/backend/storage.ts";
import { check, SEED } from "./_property.ts";

type T = cg.Tensor;
const f64 = { dtype: "float64" as const };

/** Deterministic values in [lo, hi) (mulberry32 over `seed`). */
function values(seed: number, n: number, lo = 0.2, hi = 0.9): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return lo + (hi - lo) * (((t ^ (t >>> 14)) >>> 0) / 4294967296);
  });
}

function rand(seed: number, shape: number[], lo = 0.2, hi = 0.9): T {
  return cg.tensor(values(seed, shape.reduce((a, b) => a * b, 1), lo, hi), shape, f64);
}

async function assertNear(actual: T, expected: T, what: string, tol = 1e-9): Promise<void> {
  assert.deepEqual(actual.shape, expected.shape, `${what}: shape`);
  const a = await actual.data(), e = await expected.data();
  for (let i = 0; i < e.length; i++) {
    const err = Math.abs(a[i] - e[i]);
    if (!(err <= tol * (1 + Math.abs(e[i])))) {
      throw new Error(`${what}: element ${i} is ${a[i]}, expected ${e[i]} (seed ${SEED})`);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// vmap equals stacking f over the batch, for every primitive.

interface VmapCase {
  /** The primitives the case exercises (the coverage test checks every one has a case). */
  prims: string[];
  /** Per-example shapes of the float arguments. */
  shapes: number[][];
  f: (...xs: T[]) => T;
}

const idx = cg.tensor([2, 0, 1], [3, 1], { dtype: "int32" });
const cv = cg.customVjp(
  (x: T) => cg.mul(x, cg.exp(x)),
  (x: T) => [cg.mul(x, cg.exp(x)), x],
  (x: T, ct: T) => [cg.mul(ct, cg.mul(cg.add(x, 1), cg.exp(x)))],
);
const convOpts = { stride: 1, padding: 1 };

const VMAP_CASES: Record<string, VmapCase> = {
  unary: {
    prims: ["neg", "recip", "exp", "log", "sqrt", "cos", "sin", "acos", "floor", "stopGradient"],
    shapes: [[2, 3]],
    f: (x) =>
      cg.add(
        cg.add(cg.neg(cg.reciprocal(x)), cg.exp(cg.log(cg.sqrt(x)))),
        cg.add(
          cg.add(cg.cos(x), cg.sin(x)),
          cg.add(cg.acos(x), cg.add(cg.floor(cg.mul(x, 3)), cg.stopGradient(x))),
        ),
      ),
  },
  castIota: {
    prims: ["cast", "iota", "scalar", "const"],
    shapes: [[4]],
    f: (x) =>
      cg.add(
        cg.cast(cg.cast(cg.mul(x, 10), "int32"), "float64"),
        cg.add(cg.cast(cg.arange(4), "float64"), cg.tensor([1, 2, 3, 4], [4], f64)),
      ),
  },
  binary: {
    prims: ["add", "sub", "mul", "div", "max", "pow", "cmplt", "cmpeq", "where", "broadcast"],
    shapes: [[2, 3], [2, 3]],
    f: (a, b) =>
      cg.where(
        cg.less(a, b),
        cg.add(cg.sub(a, b), cg.mul(cg.div(a, b), cg.pow(a, b))),
        cg.add(cg.maximum(a, b), cg.equal(a, a)),
      ),
  },
  sharedBinary: {
    prims: ["mul", "broadcast", "reshape"],
    shapes: [[3], [2, 3]],
    f: (a, b) => cg.mul(a, b),
  },
  reduce: {
    prims: ["sum", "reduceMax"],
    shapes: [[2, 3]],
    f: (x) => cg.add(cg.sum(x, [0]), cg.max(x, [0])),
  },
  movement: {
    prims: ["reshape", "permute", "slice", "pad", "concat", "flip"],
    shapes: [[2, 3], [2, 3]],
    f: (a, b) =>
      cg.flip(
        cg.concat([
          cg.pad(cg.slice(cg.transpose(a), [1, 0]), [[1, 0], [0, 0]]),
          cg.reshape(b, [3, 2]),
        ]),
        [1],
      ),
  },
  matmul: { prims: ["matmul"], shapes: [[2, 3], [3, 4]], f: (a, b) => cg.matmul(a, b) },
  batchedMatmul: {
    prims: ["matmul"],
    shapes: [[2, 2, 3], [2, 3, 2]],
    f: (a, b) => cg.matmul(a, b),
  },
  conv: {
    prims: ["conv2d", "conv2dBackInput", "conv2dBackFilter"],
    shapes: [[1, 2, 4, 4], [3, 2, 3, 3]],
    f: (x, w) => {
      const loss = (xx: T, ww: T) => {
        const y = cg.conv2d(xx, ww, convOpts);
        return cg.sum(cg.mul(y, y));
      };
      const [gx, gw] = cg.grad(loss, { argnums: [0, 1] })(x, w);
      return cg.add(cg.sum(cg.conv2d(x, w, convOpts)), cg.add(cg.sum(gx), cg.sum(gw)));
    },
  },
  gatherScatter: {
    prims: ["gather", "scatterAdd"],
    shapes: [[3, 4]],
    f: (x) => cg.scatterAdd(cg.takeAlongAxis(x, idx, 1), idx, [3, 4], 1),
  },
  custom: {
    prims: ["custom"],
    shapes: [[3]],
    f: (x) => cg.add(cv(x), cg.grad((y: T) => cg.sum(cv(y)))(x)),
  },
};

Deno.test("vmap: every primitive has a batching case", () => {
  const covered = new Set(Object.values(VMAP_CASES).flatMap((c) => c.prims));
  covered.add("var"); // every traced function uses placeholders
  covered.add("threefry"); // its own test below (integer keys)
  assert.deepEqual(PRIMS.filter((p) => !covered.has(p)), []);
});

/** Slice b of axis `ax`. */
function take(x: T, b: number, ax: number): T {
  const start = x.shape.map((_, i) => i === ax ? b : 0);
  const end = x.shape.map((d, i) => i === ax ? b + 1 : d);
  return cg.squeeze(cg.slice(x, start, end), ax);
}

for (const [name, c] of Object.entries(VMAP_CASES)) {
  Deno.test(`vmap(${name}) equals stacking over the batch (${c.prims.join(", ")})`, async () => {
    const arb = fc.record({
      size: fc.integer({ min: 1, max: 3 }),
      mapped: fc.array(fc.boolean(), { minLength: c.shapes.length, maxLength: c.shapes.length }),
      last: fc.boolean(),
      seed: fc.integer({ min: 0, max: 1e6 }),
    }).filter((r) => r.mapped.some((m) => m));
    await check(`vmap ${name} [${c.prims}]`, arb, async ({ size, mapped, last, seed }) => {
      const axes = c.shapes.map((s, i) => mapped[i] ? (last ? s.length : 0) : null);
      const args = c.shapes.map((s, i) => {
        const ax = axes[i];
        if (ax === null) return rand(seed + i, s);
        const full = [...s];
        full.splice(ax, 0, size);
        return rand(seed + i, full);
      });
      const got = cg.vmap(c.f, { inAxes: axes })(...args);
      const rows = Array.from(
        { length: size },
        (_, b) => c.f(...args.map((a, i) => axes[i] === null ? a : take(a, b, axes[i]!))),
      );
      await assertNear(got, cg.stack(rows, 0), `vmap ${name} (inAxes ${JSON.stringify(axes)})`);
    }, 6);
  });
}

Deno.test("vmap: outAxes, nested vmap and a pytree argument", async () => {
  const x = rand(1, [2, 3]);
  const f = (p: { a: T; b: T }) => cg.mul(p.a, p.b);
  const y = cg.vmap(f, { outAxes: 1 })({ a: x, b: x });
  await assertNear(y, cg.transpose(cg.mul(x, x)), "outAxes 1");
  const shared = rand(9, [3]);
  await assertNear(
    cg.vmap(f, { inAxes: [{ a: 1, b: null }] })({ a: cg.transpose(x), b: shared }),
    cg.mul(x, cg.reshape(shared, [1, 3])),
    "inAxes as a tree prefix",
  );
  assert.throws(
    () => cg.vmap(f, { inAxes: [{ a: 0 }] })({ a: x, b: x }),
    /inAxes\[0\] has keys \[a\], the argument \[a,b\]/,
  );
  const outer = cg.vmap(cg.vmap((v: T) => cg.exp(v)));
  await assertNear(outer(x), cg.exp(x), "vmap of vmap");
  assert.throws(
    () => cg.vmap((a: T, b: T) => cg.add(a, b))(rand(1, [2]), rand(2, [3])),
    /size 3 on axis 0, expected 2/,
  );
});

Deno.test("vmap(grad(f)) gives per-example gradients", async () => {
  const w = rand(3, [3]);
  const xs = rand(4, [5, 3]);
  const loss = (wt: T, x: T) => cg.sum(cg.sin(cg.mul(wt, x)));
  const per = cg.vmap(cg.grad(loss), { inAxes: [null, 0] })(w, xs);
  const rows = Array.from({ length: 5 }, (_, b) => cg.grad(loss)(w, take(xs, b, 0)));
  await assertNear(per, cg.stack(rows), "per-example gradients");
});

Deno.test("vmap of convolutions: per-example filters and per-example filter gradients", async () => {
  const xs = rand(11, [3, 2, 4, 4, 5], -1, 1), ws = rand(12, [3, 4, 2, 3, 3], -1, 1);
  const x0 = rand(13, [2, 4, 4, 5], -1, 1);
  const opts = { padding: 1, groups: 2 };
  const conv = (x: T, w: T) => cg.conv2d(x, w, opts);
  const loss = (w: T, x: T) => cg.sum(cg.square(conv(x, w)));
  for (const [name, axes] of [["filters", [null, 0]], ["both", [0, 0]]] as const) {
    const x = axes[0] === null ? x0 : xs;
    const got = cg.vmap(conv, { inAxes: [...axes] })(x, ws);
    const rows = [0, 1, 2].map((b) => conv(axes[0] === null ? x : take(x, b, 0), take(ws, b, 0)));
    await assertNear(got, cg.stack(rows), `conv2d, batched ${name}`);
    const g = cg.vmap(cg.grad(loss, { argnums: [0, 1] }), { inAxes: [0, axes[0]] })(ws, x);
    for (const k of [0, 1]) {
      const want = [0, 1, 2].map((b) =>
        cg.grad(loss, { argnums: [0, 1] })(take(ws, b, 0), axes[0] === null ? x : take(x, b, 0))[k]
      );
      await assertNear(g[k], cg.stack(want), `per-example gradient ${k}, batched ${name}`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// Jacobians and Hessians.

const A = rand(7, [3, 4], -1, 1);
const JAC_CASES: Record<string, (x: T) => T> = {
  sinTimes: (x) => cg.mul(cg.sin(x), x),
  affineTanh: (x) => cg.tanh(cg.matmul(A, x)),
  softmax: (x) => cg.softmax(x),
  l2Normalize: (x) => cg.l2Normalize(x),
};

async function finiteJacobian(f: (x: T) => T, x: T): Promise<T> {
  const xv = await x.data();
  const n = xv.length, eps = 1e-6;
  const cols: T[] = [];
  for (let j = 0; j < n; j++) {
    const plus = Float64Array.from(xv), minus = Float64Array.from(xv);
    plus[j] += eps;
    minus[j] -= eps;
    const fp = f(cg.tensor(plus, x.shape, f64)), fm = f(cg.tensor(minus, x.shape, f64));
    cols.push(cg.div(cg.sub(fp, fm), 2 * eps));
  }
  return cg.stack(cols, -1);
}

for (const [name, f] of Object.entries(JAC_CASES)) {
  Deno.test(`jacrev(${name}) equals jacfwd and finite differences in float64`, async () => {
    await check(`jacobian ${name}`, fc.integer({ min: 0, max: 1e6 }), async (seed) => {
      const x = rand(seed, [4], -1, 1);
      const jr = cg.jacrev(f)(x), jf = cg.jacfwd(f)(x);
      await assertNear(jr, jf, `${name}: jacrev vs jacfwd`, 1e-10);
      await assertNear(jr, await finiteJacobian(f, x), `${name}: jacrev vs differences`, 1e-6);
    }, 4);
  });
}

Deno.test("jacobian shapes follow [...out.shape, ...x.shape]", () => {
  const x = rand(1, [2, 3]);
  assert.deepEqual(cg.jacrev((v: T) => cg.sum(v, [1]))(x).shape, [2, 2, 3]);
  assert.deepEqual(cg.jacfwd((v: T) => cg.sum(v, [1]))(x).shape, [2, 2, 3]);
  assert.deepEqual(cg.hessian((v: T) => cg.sum(cg.mul(v, v)))(x).shape, [2, 3, 2, 3]);
});

Deno.test("hessian is symmetric and matches the analytic one", async () => {
  await check("hessian symmetric", fc.integer({ min: 0, max: 1e6 }), async (seed) => {
    const x = rand(seed, [4], -1, 1);
    const f = (v: T) => cg.add(cg.sum(cg.exp(cg.matmul(A, v))), cg.sum(cg.mul(cg.sin(v), v)));
    const h = cg.hessian(f)(x);
    await assertNear(h, cg.transpose(h), "H = H^T", 1e-10);
    // analytic: A^T diag(exp(Ax)) A + diag(2 cos x - x sin x)
    const e = cg.exp(cg.matmul(A, x));
    const hA = cg.matmul(cg.transpose(A), cg.mul(cg.reshape(e, [3, 1]), A));
    const d = cg.sub(cg.mul(cg.cos(x), 2), cg.mul(x, cg.sin(x)));
    const eye = cg.cast(cg.equal(cg.iota([4, 4], 0), cg.iota([4, 4], 1)), "float64");
    await assertNear(h, cg.add(hA, cg.mul(eye, cg.reshape(d, [1, 4]))), "analytic", 1e-10);
  }, 4);
});

// Pytree arguments and outputs: blocks nested as out-tree of in-tree (a list of in-trees for
// several argnums), each [...outLeaf.shape, ...inLeaf.shape], as JAX nests them.

interface PyArg {
  a: T;
  b: T;
}

/** A function of a pytree and a tensor returning a pytree (float64). */
function pyF(p: PyArg, c: T): [{ u: T; v: T }, T] {
  return [
    { u: cg.mul(cg.sin(p.a), cg.sum(p.b)), v: cg.matmul(p.b, cg.tanh(c)) },
    cg.mul(cg.exp(c), cg.sum(cg.mul(p.a, p.a))),
  ];
}

/** Central differences of `f`'s output leaves by each leaf of `args[k]` for k in `ks`. */
async function finiteBlocks(
  f: (...args: [PyArg, T]) => unknown,
  args: [PyArg, T],
  ks: number[],
): Promise<T[][]> {
  const eps = 1e-6;
  const outLeaves = (xs: [PyArg, T]) => cg.treeFlatten(f(...xs)).leaves;
  const base = outLeaves(args);
  // blocks[j][q]: output leaf j by the q-th differentiated leaf (argnums in ks order).
  const blocks: T[][] = base.map(() => []);
  for (const k of ks) {
    const fl = cg.treeFlatten(args[k]);
    for (const [i, leaf] of fl.leaves.entries()) {
      const xv = await leaf.data();
      const cols: T[][] = base.map(() => []);
      for (let e = 0; e < xv.length; e++) {
        const shifted = (d: number) => {
          const v = Float64Array.from(xv);
          v[e] += d;
          const leaves = fl.leaves.map((l, m) => m === i ? cg.tensor(v, l.shape, f64) : l);
          const xs = [...args] as [PyArg, T];
          xs[k] = cg.treeUnflatten(fl.def, leaves);
          return outLeaves(xs);
        };
        const plus = shifted(eps), minus = shifted(-eps);
        plus.forEach((p, j) => cols[j].push(cg.div(cg.sub(p, minus[j]), 2 * eps)));
      }
      cols.forEach((c, j) =>
        blocks[j].push(cg.reshape(cg.stack(c, -1), [...base[j].shape, ...leaf.shape]))
      );
    }
  }
  return blocks;
}

Deno.test("jacfwd and jacrev take pytrees and argnums, nested out-tree of in-tree", async () => {
  const cases: { argnums: number | number[]; ks: number[] }[] = [
    { argnums: 0, ks: [0] },
    { argnums: 1, ks: [1] },
    { argnums: [0, 1], ks: [0, 1] },
    { argnums: [1, 0], ks: [1, 0] },
  ];
  await check("jacobian pytrees", fc.integer({ min: 0, max: 1e6 }), async (seed) => {
    const p = { a: rand(seed, [3], -1, 1), b: rand(seed + 1, [2, 2], -1, 1) };
    const c = rand(seed + 2, [2], -1, 1);
    for (const { argnums, ks } of cases) {
      const what = `argnums ${JSON.stringify(argnums)}`;
      const jr = cg.jacrev(pyF, { argnums })(p, c), jf = cg.jacfwd(pyF, { argnums })(p, c);
      // Structure: the output's, each leaf replaced by the argument's (or a list of them).
      const inner = (t: unknown) => typeof argnums === "number" ? [t] : t as unknown[];
      const rLeaves = cg.treeFlatten(jr).leaves, fLeaves = cg.treeFlatten(jf).leaves;
      assert.equal(
        cg.treeFlatten(inner((jr as unknown[])[1])).leaves.length,
        ks.length === 2 ? 3 : ks[0] === 0 ? 2 : 1,
        what,
      );
      const want = (await finiteBlocks(pyF, [p, c], ks)).flat();
      assert.equal(rLeaves.length, want.length, `${what}: blocks`);
      for (let q = 0; q < want.length; q++) {
        await assertNear(rLeaves[q], fLeaves[q], `${what}: jacrev vs jacfwd, block ${q}`, 1e-10);
        await assertNear(rLeaves[q], want[q], `${what}: jacrev vs differences, block ${q}`, 1e-6);
      }
    }
  }, 3);
  const p = { a: rand(1, [3], -1, 1), b: rand(2, [2, 2], -1, 1) }, c = rand(3, [2]);
  const j = cg.jacrev(pyF)(p, c);
  assert.deepEqual(j[0].u.b.shape, [3, 2, 2]);
  assert.deepEqual(j[1].a.shape, [2, 3]);
  const both = cg.jacfwd(pyF, { argnums: [1, 0] })(p, c);
  assert.deepEqual(both[0].v[0].shape, [2, 2]);
  assert.deepEqual(both[0].v[1].b.shape, [2, 2, 2]);
  const int = { a: p.a, b: cg.tensor([1, 2], [2], { dtype: "int32" }) };
  assert.throws(
    () => cg.jacrev((q: typeof int) => cg.sum(q.a))(int),
    /leaf 1 of argument 0 is int32\[2\]/,
  );
  assert.throws(() => cg.jacfwd(pyF, { argnums: [0, 0] })(p, c), /names an argument twice/);
  assert.throws(() => cg.jacfwd(pyF, { argnums: 2 })(p, c), /argnums 2 is out of range/);
});

Deno.test("hessian of a pytree argument is symmetric block by block", async () => {
  await check("hessian pytree", fc.integer({ min: 0, max: 1e6 }), async (seed) => {
    const p = { a: rand(seed, [3], -1, 1), b: rand(seed + 1, [2], -1, 1) };
    const g = (q: { a: T; b: T }) =>
      cg.add(cg.mul(cg.sum(cg.exp(q.a)), cg.sum(cg.mul(q.b, q.b))), cg.sum(cg.sin(q.a)));
    const h = cg.hessian(g)(p);
    const keys = ["a", "b"] as const;
    for (const x of keys) {
      for (const y of keys) {
        const hxy = h[x][y], hyx = h[y][x];
        assert.deepEqual(hxy.shape, [...p[x].shape, ...p[y].shape]);
        await assertNear(hxy, cg.transpose(hyx), `H[${x}][${y}] = H[${y}][${x}]^T`, 1e-10);
      }
    }
    // Analytic cross block: d2/da db = exp(a) (2b)^T.
    const cross = cg.mul(cg.reshape(cg.exp(p.a), [3, 1]), cg.reshape(cg.mul(p.b, 2), [1, 2]));
    await assertNear(h.a.b, cross, "H[a][b] analytic", 1e-10);
    // Several argnums: a list of lists, H[i][j] = d2 g / d args[i] d args[j].
    const g2 = (a: T, b: T) => g({ a, b });
    const hl = cg.hessian(g2, { argnums: [0, 1] })(p.a, p.b);
    await assertNear(hl[0][1], h.a.b, "H[0][1] = H[a][b]", 1e-10);
    await assertNear(hl[1][0], cg.transpose(hl[0][1]), "H[1][0] = H[0][1]^T", 1e-10);
    await assertNear(hl[1][1], h.b.b, "H[1][1] = H[b][b]", 1e-10);
  }, 3);
});

Deno.test("linearize gives the jvp, and its linear map runs without the forward ops", async () => {
  const x = rand(2, [3]);
  const f = (v: T) => cg.exp(cg.sin(v));
  const t = rand(3, [3]);
  const [y2, dy] = cg.jvp(f, [x], [t]);
  const rec = recording();
  const [y, tangent] = withBackend(rec.backend, () => {
    const [out, lin] = cg.linearize(f, x);
    return [out, lin(t)];
  });
  await assertNear(y, y2, "linearize output");
  await assertNear(tangent, dy, "linearize tangent");
  assert.equal(rec.runs, 2, "one program for the output and residuals, one for the tangent");
  const ops = topoSort(rec.graphs[1]).map((n) => n.op);
  assert.ok(!ops.includes("exp") && !ops.includes("sin"), `recomputed: ${ops.join(" ")}`);
});

// ---------------------------------------------------------------------------------------------
// Custom rules.

Deno.test("a customVjp whose backward is deliberately different is the one used", async () => {
  // f = x^2, but the rule says 10 * ct: every transform must see 10.
  const f = cg.customVjp(
    (x: T) => cg.mul(x, x),
    (x: T) => [cg.mul(x, x), null],
    (_: null, ct: T) => [cg.mul(ct, 10)],
  );
  const x = rand(5, [3]);
  const loss = (v: T) => cg.sum(f(v));
  const ten = cg.full([3], 10, f64);
  await assertNear(f(x), cg.mul(x, x), "value");
  await assertNear(cg.grad(loss)(x), ten, "grad");
  await assertNear(cg.grad(cg.compile(loss))(x), ten, "grad(compile)");
  await assertNear(cg.compile(cg.grad(loss))(x), ten, "compile(grad)");
  const per = cg.vmap(cg.grad(loss))(rand(6, [2, 3]));
  await assertNear(per, cg.full([2, 3], 10, f64), "vmap(grad)");
  const [, dy] = cg.jvp(loss, [x], [cg.ones([3], f64)]);
  await assertNear(dy, cg.scalar(30, "float64"), "jvp (the transposed rule)");
  assert.throws(
    () => cg.grad((v: T) => cg.sum(cg.customVjp((a: T) => a, (a: T) => [a, null], () => [])(v)))(x),
    /must return an array of 1 cotangents/,
  );
});

Deno.test("customJvp: forward mode uses the rule, reverse mode its transpose", async () => {
  // the rule claims d/dx = 3 (not exp): both modes must see 3
  const f = cg.customJvp(
    (x: T) => cg.exp(x),
    ([x]: [T], [t]: [T]) => [cg.exp(x), cg.mul(t, 3)],
  );
  const x = rand(1, [2]);
  const [, dy] = cg.jvp(f, [x], [cg.ones([2], f64)]);
  await assertNear(dy, cg.full([2], 3, f64), "jvp");
  await assertNear(cg.grad((v: T) => cg.sum(f(v)))(x), cg.full([2], 3, f64), "grad");
  const bad = cg.customJvp((v: T) => v, ([v]: [T], [t]: [T]) => [v, cg.mul(t, t)]);
  assert.throws(() => cg.grad((v: T) => cg.sum(bad(v)))(x), /not linear in the tangents/);
});

Deno.test("checkpoint changes no value or gradient, and keeps its recomputation apart", async () => {
  const w = rand(1, [3, 3], -1, 1);
  const block = (x: T) => cg.tanh(cg.matmul(w, cg.sin(x)));
  const loss = (x: T) => cg.sum(block(block(x)));
  const lossCk = (x: T) => cg.sum(cg.checkpoint(block)(cg.checkpoint(block)(x)));
  const x = rand(2, [3, 2]);
  await assertNear(lossCk(x), loss(x), "value");
  await assertNear(cg.grad(lossCk)(x), cg.grad(loss)(x), "grad", 1e-12);
  await assertNear(cg.compile(cg.grad(lossCk))(x), cg.grad(loss)(x), "compile(grad)", 1e-12);
});

// ---------------------------------------------------------------------------------------------
// compile composes with the transforms, tracing once per signature.

Deno.test("compile composes with grad, vmap and jvp in any order, tracing once", async () => {
  const f = (x: T) => cg.sum(cg.mul(cg.sin(x), cg.exp(x)));
  const cf = cg.compile(f);
  const x = rand(3, [4]);
  await assertNear(cg.grad(cf)(x), cg.grad(f)(x), "grad(compile(f))");
  await assertNear(cg.grad(cf)(rand(4, [4])), cg.grad(f)(rand(4, [4])), "second call");
  assert.equal(cf.traces, 1);
  const cg2 = cg.compile(cg.grad(f));
  await assertNear(cg2(x), cg.grad(f)(x), "compile(grad(f))");
  const xs = rand(5, [3, 4]);
  await assertNear(cg.vmap(cf)(xs), cg.vmap(f)(xs), "vmap(compile(f))");
  await assertNear(cg.compile(cg.vmap(f))(xs), cg.vmap(f)(xs), "compile(vmap(f))");
  assert.equal(cf.traces, 1);
  const [, dy] = cg.jvp(cf, [x], [cg.ones([4], f64)]);
  const [, dy0] = cg.jvp(f, [x], [cg.ones([4], f64)]);
  await assertNear(dy, dy0, "jvp(compile(f))");
  const outer = cg.compile((v: T) => cg.mul(cf(v), 2));
  await assertNear(outer(x), cg.mul(f(x), 2), "compile(compile(f))");
  assert.equal(cf.traces, 1);
});

// ---------------------------------------------------------------------------------------------
// Traced randomness.

Deno.test("threefry matches Random123's known answers through the primitive", async () => {
  const known: [number[], number[]][] = [
    [[0, 0, 0, 0], [0x6b200159, 0x99ba4efe]],
    [[-1, -1, -1, -1], [0x1cb996fc, 0xbb002be7]],
    [[0x13198a2e, 0x03707344, 0x243f6a88, 0x85a308d3 | 0], [0xc4923a9c, 0x483df7a0]],
  ];
  for (const [[k0, k1, x0, x1], want] of known) {
    assert.deepEqual(threefry2x32(k0, k1, x0, x1), want);
    const t = (v: number) => cg.tensor([v], [1], { dtype: "int32" });
    const ins = [t(k0), t(k1), t(x0), t(x1)];
    const { apply } = await import("../src/tensor.ts");
    const w0 = await apply("threefry", ins, { word: 0, output: "bits" }).data();
    const w1 = await apply("threefry", ins, { word: 1, output: "bits" }).data();
    assert.deepEqual([w0[0] >>> 0, w1[0] >>> 0], want);
  }
});

Deno.test("random streams: a compiled loop draws fresh values per key without retracing", async () => {
  const step = cg.compile((key: T, x: T) => {
    const [k1, k2] = [cg.reshape(cg.slice(cg.splitKey(key), [0, 0], [1, 2]), [2]), key];
    return { y: cg.nn.dropout(k1, x, { rate: 0.5 }), n: cg.normal(k2, [4]) };
  });
  const x = cg.ones([64]);
  let key = cg.prngKey(0);
  const seen = new Set<string>();
  for (let i = 0; i < 4; i++) {
    const { y } = step(key, x);
    seen.add((await y.data()).join());
    key = cg.reshape(cg.slice(cg.splitKey(key), [1, 0], [2, 2]), [2]);
  }
  assert.equal(seen.size, 4, "every step drew a different mask");
  assert.equal(step.traces, 1, "one trace for all keys");
  const again = step(cg.prngKey(0), x).y;
  const first = step(cg.prngKey(0), x).y;
  assert.deepEqual(await again.data(), await first.data(), "same key, same numbers");
  const u = await cg.uniform(cg.prngKey(1), [10000]).data();
  const mean = Array.from(u).reduce((a, b) => a + b, 0) / u.length;
  assert.ok(Math.abs(mean - 0.5) < 0.01 && Math.min(...u) >= 0 && Math.max(...u) < 1, `${mean}`);
  const p = await cg.permutation(cg.prngKey(3), 50).data();
  assert.deepEqual(Array.from(p).sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i));
  assert.throws(() => cg.uniform(cg.tensor([1, 2]), [2]), /expected a key tensor int32\[2\]/);
});

Deno.test("vmap over keys: per-example random streams (threefry batching)", async () => {
  const keys = cg.splitKey(cg.prngKey(9), 3);
  const draws = cg.vmap((k: T) => cg.randomBits(k, [4]))(keys);
  for (let b = 0; b < 3; b++) {
    const row = cg.randomBits(cg.reshape(cg.slice(keys, [b, 0], [b + 1, 2]), [2]), [4]);
    assert.deepEqual(await take(draws, b, 0).data(), await row.data());
  }
});

// ---------------------------------------------------------------------------------------------
// Typed results, pytrees and statics.

Deno.test("grad with hasAux returns [grads, aux]; result types follow the arguments", async () => {
  const params = { w: rand(1, [2]), b: rand(2, [1]) };
  const loss = (p: typeof params, x: T) => {
    const y = cg.add(cg.mul(p.w, x), p.b);
    return [cg.sum(cg.mul(y, y)), { y }] as const;
  };
  const [g, aux] = cg.grad(loss, { hasAux: true })(params, rand(3, [2]));
  // typed: g.w and aux.y are Tensors to the compiler
  const gw: T = g.w, y: T = aux.y;
  assert.deepEqual([gw.shape, y.shape], [[2], [2]]);
  const [gx, gp] = cg.grad((x: T, p: typeof params) => cg.sum(cg.mul(x, p.w)), {
    argnums: [0, 1],
  })(rand(3, [2]), params);
  const typedX: T = gx, typedB: T = gp.b;
  await assertNear(typedX, params.w, "argnums [0, 1]");
  assert.deepEqual(typedB.shape, [1]);
});

class Affine {
  constructor(readonly w: T, readonly b: T, readonly tag: string) {}
}
cg.registerPytreeNode(Affine, {
  flatten: (a) => [[a.w, a.b], a.tag],
  unflatten: (tag, [w, b]) => new Affine(w as T, b as T, tag as string),
});

Deno.test("registered pytree nodes are taken apart; statics are keyed by identity", async () => {
  const layer = new Affine(rand(1, [2]), rand(2, [2]), "fc");
  const g = cg.grad((a: Affine, x: T) => cg.sum(cg.add(cg.mul(a.w, x), a.b)))(layer, rand(3, [2]));
  assert.ok(g instanceof Affine && g.tag === "fc");
  const apply = cg.compile((a: Affine, x: T) => cg.mul(a.w, x));
  apply(layer, rand(3, [2]));
  apply(new Affine(rand(4, [2]), rand(5, [2]), "fc"), rand(3, [2]));
  assert.equal(apply.traces, 1, "a new instance with the same structure reuses the trace");
  // Two lambdas with the same name (none) must not share a trace.
  const call = cg.compile((x: T, fn: (t: T) => T) => fn(x));
  const x = cg.tensor([1, 2, 3]);
  assert.deepEqual([...await call(x, (t) => cg.mul(t, 2)).data()], [2, 4, 6]);
  assert.deepEqual([...await call(x, (t) => cg.neg(t)).data()], [-1, -2, -3]);
  const stat = cg.compile((x: T, s: unknown) => cg.mul(x, s === null ? 2 : 3));
  assert.deepEqual([...await stat(x, null).data()], [2, 4, 6]);
  assert.deepEqual([...await stat(x, NaN).data()], [3, 6, 9], "NaN is not null");
  assert.throws(() => stat(x, Symbol("s")), /symbol/);
});

Deno.test("sin is a float32-correct primitive (not cos(x - pi/2))", async () => {
  const [s] = await cg.sin(cg.tensor([1e-6])).data();
  assert.ok(Math.abs(s - 1e-6) / 1e-6 < 1e-6, `sin(1e-6) = ${s}`);
});

// ---------------------------------------------------------------------------------------------
// No wasted work: count the programs a transform runs, and look at what they compute.

interface Recording {
  backend: Backend;
  /** Graphs compiled, in order. */
  graphs: Node[][];
  /** Programs run. */
  runs: number;
}

let recordings = 0;

function recording(): Recording {
  const cpu = cpuBackend();
  const rec: Recording = { backend: cpu, graphs: [], runs: 0 };
  const key = `recording${recordings++}:${cpu.compileKey()}`;
  rec.backend = {
    name: "cpu",
    compileKey: () => key,
    fromHost: (data) => cpu.fromHost(data),
    adopt: (s) => cpu.adopt(s),
    synchronize: () => cpu.synchronize(),
    compile(vars, outputs) {
      rec.graphs.push([...outputs]);
      const p = cpu.compile(vars, outputs);
      return {
        describe: () => p.describe(),
        run: (...a: Parameters<Program["run"]>) => {
          rec.runs++;
          return p.run(...a);
        },
      };
    },
  };
  return rec;
}

Deno.test("transforms run one program and nothing while tracing", () => {
  const w = rand(1, [3]), m = rand(2, [3, 3]);
  const x = rand(3, [3]);
  const cases: [string, () => unknown][] = [
    ["valueAndGrad(x => sum(mul(w, x)))", () => cg.valueAndGrad((v: T) => cg.sum(cg.mul(w, v)))(x)],
    ["valueAndGrad(matmul)", () => cg.valueAndGrad((v: T) => cg.sum(cg.matmul(m, v)))(x)],
    ["vmap(grad)", () => cg.vmap(cg.grad((v: T) => cg.sum(cg.exp(cg.mul(w, v)))))(m)],
    ["jacrev", () => cg.jacrev((v: T) => cg.sin(v))(x)],
    ["jvp", () => cg.jvp((v: T) => cg.exp(cg.mul(w, v)), [x], [x])],
  ];
  for (const [name, run] of cases) {
    const rec = recording();
    withBackend(rec.backend, run);
    assert.equal(rec.runs, 1, `${name}: ${rec.runs} programs`);
  }
});

Deno.test("vjp's backward program reuses forward values instead of recomputing them", () => {
  const rec = recording();
  withBackend(rec.backend, () => {
    const [, back] = cg.vjp((v: T) => cg.exp(cg.exp(v)), [rand(1, [4])]);
    assert.equal(rec.runs, 1, "forward: one program");
    back(cg.ones([4], f64));
    assert.equal(rec.runs, 2, "backward: one program");
  });
  const backward = rec.graphs[rec.graphs.length - 1];
  const ops = topoSort(backward).map((n) => n.op);
  assert.ok(!ops.includes("exp"), `the backward program recomputes exp: ${ops.join(" ")}`);
});
