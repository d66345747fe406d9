import assert from "node:assert/strict";
import { throughputCalls, timeWorkload } from "./_timing.ts";
import { timedResults } from "./peers/_result.ts";

/** A fake workload whose n-th call (0-based) "takes" `costs[n]` ms on a fake clock. */
function fake(costs: (n: number) => number) {
  let now = 0, calls = 0;
  const waits: number[] = [];
  const real = performance.now;
  performance.now = () => now;
  return {
    t: {
      run: () => {
        now += costs(calls++);
      },
      wait: () => {
        waits.push(calls);
        return Promise.resolve();
      },
    },
    calls: () => calls,
    waits,
    restore: () => {
      performance.now = real;
    },
  };
}

Deno.test("timeWorkload() excludes the first (compiling) call and reports it apart", async () => {
  const f = fake((n) => (n === 0 ? 5000 : 100));
  try {
    const t = await timeWorkload(f.t, { maxCallMs: 1000 });
    assert.equal(t.firstMs, 5000);
    assert.deepEqual(t.warmupMs, [100]);
    assert.equal(t.tooSlow, undefined);
    assert.deepEqual(t.samples, [100, 100, 100, 100, 100]);
    assert.equal(t.ms, 100);
    assert.equal(f.calls(), 7);
  } finally {
    f.restore();
  }
});

Deno.test("timeWorkload() decides too slow on the steady call, not the first", async () => {
  const f = fake((n) => (n === 0 ? 3000 : 1500));
  try {
    const t = await timeWorkload(f.t, { maxCallMs: 1000 });
    assert.equal(t.tooSlow, true);
    assert.equal(t.firstOnly, undefined);
    assert.equal(t.ms, 1500);
    assert.equal(t.firstMs, 3000);
    assert.equal(f.calls(), 2);
  } finally {
    f.restore();
  }
});

Deno.test("timeWorkload() stops after a first call over maxFirstCallMs", async () => {
  const f = fake(() => 6000);
  try {
    const t = await timeWorkload(f.t, { maxCallMs: 1000 });
    assert.equal(t.tooSlow, true);
    assert.equal(t.firstOnly, true);
    assert.equal(t.ms, 6000);
    assert.equal(f.calls(), 1);
  } finally {
    f.restore();
  }
});

Deno.test("timeWorkload() throughput runs N calls back to back with one wait each", async () => {
  const f = fake((n) => (n === 0 ? 900 : 300));
  try {
    const t = await timeWorkload(f.t, { mode: "throughput" });
    assert.equal(t.calls, 4); // 4 x 300 ms fill 1 s
    assert.equal(f.calls(), 2 + 5 * 4);
    // One wait after the first call, one after the warm-up, then one per repetition.
    assert.deepEqual(f.waits, [1, 2, 6, 10, 14, 18, 22]);
    assert.equal(t.ms, 300);
  } finally {
    f.restore();
  }
});

Deno.test("timeWorkload() with warmed makes no extra calls and rejects fewer than 5 reps", async () => {
  const f = fake(() => 50);
  try {
    const t = await timeWorkload(f.t, { warmed: { firstMs: 700, steadyMs: [50] } });
    assert.equal(f.calls(), 5);
    assert.equal(t.firstMs, 700);
    await assert.rejects(() => timeWorkload(f.t, { reps: 4 }), RangeError);
    await assert.rejects(
      () => timeWorkload(f.t, { warmed: { steadyMs: [] } }),
      /no steady call/,
    );
  } finally {
    f.restore();
  }
});

Deno.test("throughputCalls() fills 1 s with 2 to 20 calls", () => {
  assert.deepEqual([1, 60, 499, 501, 20000].map(throughputCalls), [20, 17, 3, 2, 2]);
});

Deno.test("timedResults() warms once for both modes and marks first-only rows", async () => {
  const f = fake((n) => (n === 0 ? 2000 : 100));
  try {
    const base = { framework: "x", version: "1", backend: "webgpu", workload: "T1" as const };
    const rs = await timedResults(base, f.t, { modes: ["latency", "throughput"] });
    assert.equal(f.calls(), 2 + 5 + 5 * 10);
    assert.deepEqual(rs.map((r) => [r.mode, r.calls, r.firstMs]), [
      ["latency", 1, 2000],
      ["throughput", 10, 2000],
    ]);
    assert.equal(rs[1].rate?.value, 1280); // 128 images per 100 ms
    const slow = await timedResults(base, {
      ...f.t,
      prewarmed: { firstMs: 9000, steadyMs: [], facts: { loss: 1 } },
    }, { modes: ["throughput"] });
    assert.equal(slow.length, 1);
    assert.equal(slow[0].firstOnly, true);
    assert.equal(slow[0].rate, undefined);
    assert.equal(slow[0].loss, 1);
  } finally {
    f.restore();
  }
});
