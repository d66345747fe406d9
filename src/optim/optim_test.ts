// SGD and AdamW against host re-implementations of PyTorch's update rules, schedules on the
// host and in the graph, clipping, and an optimizer inside compile (traced once).
import fc from "../../test/_fast_check.ts";
import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import { sgd } from "./sgd.ts";
import { adamw } from "./adamw.ts";
import { cosine, linearWarmup, multiStep, type Schedule } from "./schedules.ts";
import { clipByGlobalNorm, globalNorm } from "./clip.ts";

type T = cg.Tensor;
const f64 = { dtype: "float64" as const };
const SEED = 20180126;

const vec = (n: number) =>
  fc.array(fc.integer({ min: -2000, max: 2000 }).map((i) => i / 1000), {
    minLength: n,
    maxLength: n,
  });

Deno.test("sgd() follows torch.optim.SGD (momentum, nesterov, weight decay, schedules)", async () => {
  const arb = fc.record({
    p: vec(3),
    grads: fc.array(vec(3), { minLength: 4, maxLength: 4 }),
    lr: fc.double({ min: 0.001, max: 0.5, noNaN: true }),
    momentum: fc.constantFrom(0, 0.5, 0.9),
    nesterov: fc.boolean(),
    weightDecay: fc.constantFrom(0, 5e-4, 0.1),
    scheduled: fc.boolean(),
  });
  await fc.assert(
    fc.asyncProperty(arb, async (c) => {
      const nesterov = c.nesterov && c.momentum > 0;
      const lrAt = (t: number) => c.scheduled ? c.lr * Math.pow(0.5, Math.min(t, 2)) : c.lr;
      const lr = c.scheduled ? (t: T) => cg.mul(c.lr, cg.pow(0.5, cg.minimum(t, 2))) : c.lr;
      const opt = sgd({ lr, momentum: c.momentum, nesterov, weightDecay: c.weightDecay });
      let params = { w: cg.tensor(c.p, [3], f64) };
      let state = opt.init(params);
      // Host: PyTorch's algorithm (buffer = g on the first step, then μ b + g).
      let p = [...c.p], buf: number[] | null = null;
      for (let t = 0; t < 4; t++) {
        const g = c.grads[t].map((v, i) => v + c.weightDecay * p[i]);
        let d = g;
        if (c.momentum > 0) {
          buf = buf === null ? g : buf.map((b, i) => c.momentum * b + g[i]);
          d = nesterov ? g.map((v, i) => v + c.momentum * buf![i]) : buf;
        }
        p = p.map((v, i) => v - lrAt(t) * d[i]);
        const r = opt.update({ w: cg.tensor(c.grads[t], [3], f64) }, state, params);
        params = r.params;
        state = r.state;
      }
      const got = await params.w.data();
      p.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-12, `${got[i]} != ${v}`));
      assert.equal(await state.step.item(), 4);
    }),
    { seed: SEED, numRuns: 30 },
  );
  assert.throws(() => sgd({ lr: 0.1, nesterov: true }), /nesterov needs a momentum/);
  assert.throws(() => sgd({ lr: -1 }), /lr must be a non-negative number/);
});

Deno.test("adamw() follows torch.optim.AdamW (decoupled weight decay, bias correction)", async () => {
  const arb = fc.record({
    p: vec(3),
    grads: fc.array(vec(3), { minLength: 4, maxLength: 4 }),
    lr: fc.double({ min: 1e-4, max: 0.1, noNaN: true }),
    b1: fc.constantFrom(0.9, 0.5),
    b2: fc.constantFrom(0.999, 0.9),
    weightDecay: fc.constantFrom(0, 0.01, 0.3),
  });
  await fc.assert(
    fc.asyncProperty(arb, async (c) => {
      const eps = 1e-8;
      const opt = adamw({ lr: c.lr, betas: [c.b1, c.b2], weightDecay: c.weightDecay });
      let params = { w: cg.tensor(c.p, [3], f64) };
      let state = opt.init(params);
      let p = [...c.p], m = [0, 0, 0], v = [0, 0, 0];
      for (let t = 1; t <= 4; t++) {
        const g = c.grads[t - 1];
        p = p.map((x) => x * (1 - c.lr * c.weightDecay));
        m = m.map((x, i) => c.b1 * x + (1 - c.b1) * g[i]);
        v = v.map((x, i) => c.b2 * x + (1 - c.b2) * g[i] * g[i]);
        const bc1 = 1 - c.b1 ** t, bc2 = 1 - c.b2 ** t;
        p = p.map((x, i) => x - (c.lr / bc1) * m[i] / (Math.sqrt(v[i]) / Math.sqrt(bc2) + eps));
        const r = opt.update({ w: cg.tensor(g, [3], f64) }, state, params);
        params = r.params;
        state = r.state;
      }
      const got = await params.w.data();
      p.forEach((x, i) => assert.ok(Math.abs(got[i] - x) < 1e-10, `${got[i]} != ${x}`));
    }),
    { seed: SEED, numRuns: 30 },
  );
});

async function graphRate(s: Schedule, t: number): Promise<number> {
  return await s(cg.tensor([t], [], f64)).item();
}

Deno.test("schedules agree on the host and in the graph, and have their shapes", async () => {
  const ms = multiStep(0.1, { milestones: [10, 20, 30] });
  const cs = cosine(0.1, { steps: 40, minLr: 0.001 });
  const wu = linearWarmup(cs, { steps: 5, startFactor: 0.2 });
  for (const t of [0, 1, 4, 5, 9, 10, 11, 19, 20, 29, 30, 39, 40, 100]) {
    for (const s of [ms, cs, wu]) {
      const host = s(t), graph = await graphRate(s, t);
      assert.ok(Math.abs(host - graph) < 1e-15, `step ${t}: ${host} != ${graph}`);
    }
  }
  assert.deepEqual([0, 9, 10, 19, 20, 30, 1000].map((t) => +ms(t).toPrecision(12)), [
    0.1,
    0.1,
    0.01,
    0.01,
    0.001,
    0.0001,
    0.0001,
  ]);
  assert.ok(Math.abs(cs(0) - 0.1) < 1e-15 && Math.abs(cs(40) - 0.001) < 1e-15);
  assert.ok(Math.abs(cs(20) - (0.001 + 0.099 / 2)) < 1e-15);
  assert.ok(Math.abs(wu(0) - 0.2 * cs(0)) < 1e-15 && wu(5) === cs(5) && wu(7) === cs(7));
  assert.ok(Math.abs(linearWarmup(0.5, { steps: 4 })(1) - 0.125) < 1e-15);
  assert.equal(await graphRate(multiStep(0.3, { milestones: [] }), 5), 0.3);
  assert.throws(() => multiStep(0.1, { milestones: [20, 10] }), /increasing/);
  assert.throws(() => cosine(0.1, { steps: 0 }), /steps must be a positive number/);
});

Deno.test("clipByGlobalNorm() scales all leaves together to the maximum norm", async () => {
  const g = { a: cg.tensor([3, 0], [2], f64), b: [cg.tensor([[4]], [1, 1], f64)] };
  assert.equal(await globalNorm(g).item(), 5);
  const c = clipByGlobalNorm(g, 1);
  assert.ok(Math.abs(await globalNorm(c).item() - 1) < 1e-6);
  assert.ok(Math.abs((await c.a.data())[0] - 0.6) < 1e-6);
  // Below the maximum: unchanged.
  const same = clipByGlobalNorm(g, 10);
  assert.deepEqual([...await same.b[0].data()], [4]);
  assert.throws(() => clipByGlobalNorm(g, 0), /positive number, got 0/);
});

Deno.test("an optimizer inside compile() traces once; the schedule runs in the graph", async () => {
  const opt = sgd({ lr: multiStep(0.5, { milestones: [2] }), momentum: 0.5 });
  type P = { w: T };
  const step = cg.compile((p: P, s: ReturnType<typeof opt.init>) => {
    const g = cg.grad((q: P) => cg.sum(cg.mul(q.w, q.w)))(p) as P;
    return opt.update(g, s, p);
  }, { donate: [0, 1] });
  let params: P = { w: cg.tensor([1, -2]) };
  let state = opt.init(params);
  let p = [1, -2], buf = [0, 0];
  for (let t = 0; t < 4; t++) {
    const r = step(params, state);
    params = r.params;
    state = r.state;
    const lr = t < 2 ? 0.5 : 0.05;
    buf = buf.map((b, i) => 0.5 * b + 2 * p[i]);
    p = p.map((v, i) => v - lr * buf[i]);
  }
  assert.equal(step.traces, 1);
  const got = await params.w.data();
  p.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-6, `${got[i]} != ${v}`));
  assert.equal(await state.step.item(), 4);
});
