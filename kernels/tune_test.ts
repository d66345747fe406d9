import assert from "node:assert/strict";
import type { Conv2dSpec } from "./conv2d.ts";
import {
  convCandidates,
  convClass,
  matmulCandidates,
  matmulClass,
  measureKernel,
  pick,
  TOLERANCE,
  type TunedKernel,
  variantName,
} from "./tune.ts";
import { shippedTable, TuningTable } from "./tune_cache.ts";
import { getTestDevice } from "./_harness_test_util.ts";

const SPEC: Conv2dSpec = {
  batch: 2,
  inChannels: 8,
  height: 8,
  width: 8,
  outChannels: 16,
  kernelH: 3,
  kernelW: 3,
  padding: 1,
};
const CLS = convClass("forward", SPEC);
const KERNEL: TunedKernel = { direction: "forward", spec: SPEC };
const RECORD = {
  candidates: [
    { variant: null, runMs: 2, compileMs: 100, error: 0 },
    { variant: { algo: "rows", tm: 8, tn: 16 } as const, runMs: 1, compileMs: 100, error: 0 },
  ],
};

Deno.test("TuningTable: a second run reads the cache file and tunes nothing", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/sub/tune.json`;
  try {
    const first = new TuningTable("p", "test adapter", { mode: "cache", path });
    assert.equal(first.choose(CLS, KERNEL), undefined);
    assert.deepEqual([...first.misses.keys()], [CLS]);
    first.record(CLS, RECORD);
    assert.equal(first.misses.size, 0);
    assert.equal(first.save(), path);
    const second = new TuningTable("p", "test adapter", { mode: "cache", path });
    assert.deepEqual(second.choose(CLS, KERNEL), { algo: "rows", tm: 8, tn: 16 });
    assert.equal(second.misses.size, 0);
    assert.equal(second.source(CLS), "file");
    // Another profile's records are kept apart (and kept in the file).
    const other = new TuningTable("q", "test adapter", { mode: "cache", path });
    assert.equal(other.choose(CLS, KERNEL), undefined);
    other.record(CLS, { candidates: [RECORD.candidates[0]] });
    other.save();
    assert.deepEqual(
      new TuningTable("p", "test adapter", { mode: "cache", path }).choose(CLS, KERNEL),
      { algo: "rows", tm: 8, tn: 16 },
    );
    // Tuning off: no cache, heuristic defaults.
    const off = new TuningTable("p", "test adapter", { mode: "off", path });
    assert.equal(off.choose(CLS, KERNEL), undefined);
    assert.equal(off.misses.size, 0);
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("TuningTable: a corrupt cache file is named and ignored, then rewritten", () => {
  const dir = Deno.makeTempDirSync();
  const path = `${dir}/tune.json`;
  try {
    for (
      const text of [
        "{ not json",
        '{"format": "other"}',
        '{"format": "cosgrad-tune-1", "profiles": {"p": {"c": {"candidates": [{"runMs": "x"}]}}}}',
      ]
    ) {
      Deno.writeTextFileSync(path, text);
      const warnings: string[] = [];
      const t = new TuningTable("p", "test adapter", {
        mode: "cache",
        path,
        warn: (s) => warnings.push(s),
      });
      assert.equal(warnings.length, 1, text);
      assert.match(warnings[0], /corrupt tuning cache/);
      assert.ok(warnings[0].includes(path), warnings[0]);
      assert.equal(t.choose(CLS, KERNEL), undefined);
      t.record(CLS, RECORD);
      t.save();
      const again: string[] = [];
      new TuningTable("p", "x", { mode: "cache", path, warn: (s) => again.push(s) });
      assert.deepEqual(again, []);
    }
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
});

Deno.test("pick() skips candidates outside the tolerance and counts compile time", () => {
  const bad = { variant: { algo: "explicit" } as const, runMs: 0.1, compileMs: 0, error: 1e-2 };
  assert.equal(pick({ candidates: [...RECORD.candidates, bad] }, 500), RECORD.candidates[1]);
  const slowCompile = { ...RECORD.candidates[1], compileMs: 10_000 };
  assert.equal(
    pick({ candidates: [RECORD.candidates[0], slowCompile] }, 500),
    RECORD.candidates[0],
  );
  assert.throws(() => pick({ candidates: [bad] }, 500), /within tolerance/);
});

Deno.test("measureKernel() times every candidate of a small convolution, all matching", async (t) => {
  const device = await getTestDevice();
  if (device === null) {
    console.warn("skipped: no WebGPU adapter");
    return;
  }
  for (const direction of ["forward", "backInput", "backFilter"] as const) {
    await t.step(direction, async () => {
      const all = convCandidates(direction, SPEC);
      assert.ok(all.length >= 3, `${all.map(variantName)}`);
      // Big row tiles take llvmpipe seconds to compile: CI measures the default and the
      // smallest-register variants; COSGRAD_TEST_ALL_VARIANTS=1 measures every one.
      const candidates = Deno.env.get("COSGRAD_TEST_ALL_VARIANTS") === "1"
        ? all
        : all.filter((v) =>
          v === null || v.algo === "explicit" || (v.algo === "implicit" && v.cap === 8) ||
          (v.algo === "rowsFilter" && v.to * v.tc <= 8) || (v.algo === "rows" && v.tn <= 16)
        );
      const r = await measureKernel(device, { direction, spec: SPEC }, candidates, {
        trials: 1,
        minBatchMs: 1,
      });
      assert.equal(r.candidates.length, candidates.length);
      for (const m of r.candidates) {
        assert.ok(m.error <= TOLERANCE, `${variantName(m.variant)}: error ${m.error}`);
        assert.ok(m.runMs > 0 && m.compileMs >= 0, `${variantName(m.variant)}: ${m.runMs}`);
      }
    });
  }
});

Deno.test("TuningTable tiers: the quickest first, the tuned choice after a run", () => {
  const slowCompile = {
    variant: { algo: "implicit", cap: 32 } as const,
    runMs: 100,
    compileMs: 60_000,
    error: 0,
  };
  const quick = {
    variant: { algo: "implicit", cap: 8 } as const,
    runMs: 300,
    compileMs: 1_000,
    error: 0,
  };
  const t = new TuningTable("p", "a", {
    mode: "cache",
    path: null,
    horizon: 500,
    stepCompileS: 20,
  });
  t.record(CLS, { candidates: [quick, slowCompile] });
  const other = "conv2d.other";
  t.record(other, { candidates: [quick, { ...slowCompile, compileMs: 30_000 }] });
  assert.deepEqual(t.choose(CLS, KERNEL), quick.variant);
  const v = t.version;
  assert.equal(t.afterRun([CLS, other]), true);
  assert.equal(t.version, v + 1);
  // One class per run past the 20 s budget: the one saving the most first (a tie: in order).
  const promoted = [CLS, other].filter((c) =>
    t.choose(c, KERNEL)?.algo === "implicit" &&
    (t.choose(c, KERNEL) as { cap: number }).cap === 32
  );
  assert.equal(promoted.length, 1);
  assert.equal(t.afterRun([CLS, other]), true);
  assert.deepEqual(t.choose(other, KERNEL), slowCompile.variant);
  assert.deepEqual(t.choose(CLS, KERNEL), slowCompile.variant);
  assert.equal(t.afterRun([CLS, other]), false);
  const flat = new TuningTable("p", "a", {
    mode: "cache",
    path: null,
    horizon: 500,
    stepCompileS: Infinity,
  });
  flat.record(CLS, { candidates: [quick, slowCompile] });
  assert.deepEqual(flat.choose(CLS, KERNEL), slowCompile.variant);
});

Deno.test("TuningTable tiers: observed compile times scale the promotions' predictions", () => {
  const quick = { variant: null, runMs: 300, compileMs: 500, error: 0 };
  const full = {
    variant: { algo: "implicit", cap: 32 } as const,
    runMs: 100,
    compileMs: 8_000,
    error: 0,
  };
  const make = () => {
    const t = new TuningTable("p", "a", {
      mode: "cache",
      path: null,
      horizon: 500,
      stepCompileS: 20,
    });
    for (const c of ["a", "b", "c"]) t.record(c, { candidates: [quick, full] });
    return t;
  };
  const promotedAfterOneRun = (t: TuningTable) => {
    t.afterRun(["a", "b", "c"]);
    return ["a", "b", "c"].filter((c) => t.choose(c, KERNEL) !== null).length;
  };
  // Predicted 8 s each: two fit a 20 s step.
  assert.equal(make().predictedCompileMs("a"), 500);
  assert.equal(promotedAfterOneRun(make()), 2);
  // A run predicted to compile in 8 s took 24 s: each now counts 24 s, so one per step.
  const slow = make();
  slow.observeCompile(8_000, 24_000);
  assert.equal(promotedAfterOneRun(slow), 1);
  assert.equal(slow.predictedCompileMs("a") + slow.predictedCompileMs("b"), 8_500);
  // A faster machine: all three in one step; nonsense observations are ignored.
  const fast = make();
  fast.observeCompile(8_000, 2_000);
  fast.observeCompile(0, 5_000);
  fast.observeCompile(8_000, Number.NaN);
  assert.equal(promotedAfterOneRun(fast), 3);
});

Deno.test("TuningTable: shippedTable writes a table that shippedTable reads back", () => {
  const t = new TuningTable("p", "test adapter", { mode: "cache", path: null });
  t.record(CLS, RECORD);
  const text = t.shippedTable("test");
  assert.equal(text.split("\n").filter((l) => l.includes(CLS)).length, 1);
  const back = shippedTable("x.json", JSON.parse(text));
  assert.equal(back.prefix, "test");
  assert.deepEqual(back.records[CLS], RECORD);
  const bad = JSON.parse(text);
  bad.records[CLS].candidates[0].runMs = "fast";
  assert.throws(() => shippedTable("x.json", bad), /x\.json: bad record for conv2d\.forward/);
});

Deno.test("TuningTable: the shipped llvmpipe table is read for an llvmpipe adapter only", () => {
  const llvm = new TuningTable("k", "llvmpipe (LLVM 15.0.6, 256 bits)", {
    mode: "cache",
    path: null,
  });
  const cls = "conv2d.forward x128x3x64x64 w32x3x3x3 s2x2 p1,1,1,1 d1x1 g1";
  assert.equal(llvm.source(cls), "shipped");
  const other = new TuningTable("k", "NVIDIA H200", { mode: "cache", path: null });
  assert.equal(other.source(cls), undefined);
});

Deno.test("TuningTable.choose refuses a conv class whose record holds a wasm GEMM blocking", () => {
  const t = new TuningTable("p", "test adapter", {
    mode: "cache",
    path: null,
    stepCompileS: Infinity,
  });
  const blocking = { algo: "wasmGemm", mr: 4, nr: 8, kc: 256, nc: 512, unroll: 4 } as const;
  t.record(CLS, {
    candidates: [{ variant: { ...blocking, aLoad: "shuffle" }, runMs: 1, compileMs: 1, error: 0 }],
  });
  assert.throws(
    () => t.choose(CLS, KERNEL),
    /holds a wasm 4x8 kc 256 nc 512 x4 shuffle variant, not one for a convolution/,
  );
  assert.equal(
    variantName({ ...blocking, aLoad: "splat" }),
    "wasm 4x8 kc 256 nc 512 x4 splat",
  );
});

Deno.test("matmul classes: register blocks and split-K as candidates, measured against the first", async () => {
  const shape = { batch: 1, m: 40, n: 36, k: 1024, transB: true, profile: "llvmpipe" } as const;
  assert.equal(matmulClass(shape), "matmul x1 40x1024·1024x36 tA0 tB1 bA0 bB0");
  const all = matmulCandidates(shape);
  const names = all.map(variantName);
  assert.deepEqual(names, [...new Set(names)]);
  assert.ok(names.some((n) => n.includes("split")) && names.includes("matmul 4x4"), `${names}`);
  const device = await getTestDevice();
  if (device === null) {
    console.warn("skipped: no WebGPU adapter");
    return;
  }
  const r = await measureKernel(device, { direction: "matmul", spec: shape }, all, {
    trials: 1,
    minBatchMs: 1,
  });
  assert.equal(r.candidates.length, all.length);
  assert.equal(r.direction, "matmul");
  for (const m of r.candidates) {
    assert.ok(m.error <= TOLERANCE, `${variantName(m.variant)}: error ${m.error}`);
  }
  // Timed on the device where the adapter offers timestamps (llvmpipe does under Deno).
  const adapter = await navigator.gpu.requestAdapter();
  if (adapter?.features.has("timestamp-query")) {
    const timed = await adapter.requestDevice({ requiredFeatures: ["timestamp-query"] });
    try {
      const s = await measureKernel(timed, { direction: "matmul", spec: shape }, all.slice(0, 2), {
        trials: 2,
        minBatchMs: 1,
      });
      for (const m of s.candidates) {
        assert.ok(Number.isFinite(m.runMs) && m.runMs > 0, `${variantName(m.variant)}: ${m.runMs}`);
        assert.ok(m.error <= TOLERANCE);
      }
    } finally {
      timed.destroy();
    }
  }
});

Deno.test("TuningTable.choose refuses a matmul class whose record holds a conv variant", () => {
  const t = new TuningTable("p", "test adapter", {
    mode: "cache",
    path: null,
    stepCompileS: Infinity,
  });
  const spec = { batch: 1, m: 8, n: 8, k: 8 };
  const cls = matmulClass(spec);
  t.record(cls, {
    candidates: [{ variant: { algo: "implicit", cap: 8 }, runMs: 1, compileMs: 1, error: 0 }],
  });
  assert.throws(
    () => t.choose(cls, { direction: "matmul", spec }),
    /holds a implicit 8 variant, not one for a matmul/,
  );
  const tile = { bm: 8, bn: 8, bk: 4, tm: 4, tn: 4, staging: "registers" } as const;
  t.record(cls, {
    candidates: [{
      variant: { algo: "matmul", tile, splitK: 1 },
      runMs: 1,
      compileMs: 1,
      error: 0,
    }],
  });
  assert.deepEqual(t.choose(cls, { direction: "matmul", spec }), {
    algo: "matmul",
    tile,
    splitK: 1,
  });
});
