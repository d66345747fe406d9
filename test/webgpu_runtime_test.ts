// The WebGPU runtime: one submission per compiled step, donation, large dispatches and
// reductions, errors (no adapter, WGSL compile errors, float64, out-of-range indices) and
// profiling. Every test skips itself, visibly, when there is no adapter.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { cpuBackend, withBackend, withBackendAsync } from "../src/backend/registry.ts";
import { requestGpu, setAdapterHookForTesting } from "../src/backend/webgpu/device.ts";
import { assertClose, gpu } from "../src/backend/webgpu/_gpu_test_util.ts";
import { TuningTable } from "../kernels/tune_cache.ts";

type T = cg.Tensor;
const opts = { ignore: gpu === null, sanitizeResources: false, sanitizeOps: false };

interface Mlp {
  w1: T;
  b1: T;
  w2: T;
}

function mlpStep(p: Mlp, x: T, labels: T): { p: Mlp; loss: T } {
  const [loss, g] = cg.valueAndGrad((q: Mlp) => {
    const h = cg.relu(cg.add(cg.matmul(x, q.w1), q.b1));
    const logits = cg.matmul(h, q.w2);
    return cg.neg(cg.mean(cg.sum(cg.mul(cg.logSoftmax(logits), cg.oneHot(labels, 4)), 1)));
  })(p) as [T, Mlp];
  const upd = (w: T, d: T) => cg.sub(w, cg.mul(d, 0.5));
  return { p: { w1: upd(p.w1, g.w1), b1: upd(p.b1, g.b1), w2: upd(p.w2, g.w2) }, loss };
}

function mlpInputs(): { p: Mlp; x: T; labels: T } {
  return {
    p: {
      w1: cg.normal(cg.randomKey(1), [8, 16], { std: 0.3 }),
      b1: cg.tensor(new Float32Array(16)),
      w2: cg.normal(cg.randomKey(2), [16, 4], { std: 0.3 }),
    },
    x: cg.normal(cg.randomKey(3), [32, 8]),
    labels: cg.tensor(Int32Array.from({ length: 32 }, (_, i) => (i * 7) % 4), [32]),
  };
}

Deno.test({
  name: "compile() runs a 2-layer MLP training step as one queue submission",
  ...opts,
  async fn() {
    await withBackendAsync(gpu!, async () => {
      const step = cg.compile(mlpStep, { donate: [0] });
      let { p } = mlpInputs();
      const { x, labels } = mlpInputs();
      const queue = gpu!.gpu.device.queue;
      const submit = queue.submit;
      let submits = 0;
      queue.submit = (buffers: GPUCommandBuffer[]) => {
        submits++;
        return submit.call(queue, buffers);
      };
      const losses: T[] = [];
      try {
        for (let i = 0; i < 4; i++) {
          const before = submits;
          const pipelines = gpu!.stats.pipelines;
          const r = step(p, x, labels);
          // The first step also compiles: with a compile pool, one submission per pipeline
          // this thread compiles (compile_pool.ts).
          const compiles = gpu!.compilePool === null ? 0 : gpu!.stats.pipelines - pipelines;
          const most = 1 + (i === 0 ? compiles : 0);
          assert.ok(
            submits - before >= 1 && submits - before <= most,
            `step ${i} submitted ${submits - before} times (at most ${most})`,
          );
          p = r.p;
          losses.push(r.loss);
        }
      } finally {
        queue.submit = submit;
      }
      const values = await Promise.all(losses.map((l) => l.item()));
      assert.ok(values[3] < values[0], `losses ${values}`);
      assert.ok(step.kernels().some((k) => k.name.startsWith("gemm:matmul")), "a matmul kernel");
    });
  },
});

Deno.test({
  name: "compile() with donation matches the cpu backend and reuses pooled buffers",
  ...opts,
  async fn() {
    const run = (backend: typeof gpu) =>
      withBackendAsync(backend ?? cpuBackend(), async () => {
        const step = cg.compile(mlpStep, { donate: [0] });
        let { p } = mlpInputs();
        const { x, labels } = mlpInputs();
        const first = p.w1;
        let created = 0;
        for (let i = 0; i < 6; i++) {
          if (i === 2) created = gpu!.pool.created;
          p = step(p, x, labels).p;
        }
        if (backend !== null) {
          // Parameters and intermediates reuse buffers; only the loss (until collected) is new.
          const grown = gpu!.pool.created - created;
          assert.ok(grown <= 4, `4 steps allocated ${grown} buffers`);
        }
        await assert.rejects(() => first.data(), /donated/);
        return [await p.w1.data(), await p.b1.data(), await p.w2.data()];
      });
    const actual = await run(gpu);
    const expected = await run(null);
    expected.forEach((e, i) => assertClose(actual[i], e, `parameter ${i}`));
  },
});

Deno.test({
  name: "conv2d weight gradient is right when batch * height * width >= 65536",
  ...opts,
  async fn() {
    const x = cg.normal(cg.randomKey(11), [16, 4, 64, 64]);
    const w = cg.normal(cg.randomKey(12), [4, 4, 3, 3], { std: 1 / 6 });
    const dy = cg.normal(cg.randomKey(13), [16, 4, 64, 64]);
    const f = (w: T) => cg.sum(cg.mul(cg.conv2d(x, w, { padding: 1 }), dy));
    const expected = await (withBackend(cpuBackend(), () => cg.grad(f)(w)) as T).data();
    const actual = await (withBackend(gpu!, () => cg.grad(f)(w)) as T).data();
    assertClose(actual, expected, "dw", { rtol: 1e-3, atol: 1e-4 });
  },
});

Deno.test({
  name: "large dispatches fold workgroup counts over 65535 into y",
  ...opts,
  async fn() {
    await withBackendAsync(gpu!, async () => {
      // 2^24 + 5 elements: 65537 workgroups of 256 threads.
      const n = 2 ** 24 + 5;
      const y = await cg.cos(cg.mul(cg.iota([n], 0), 1e-6)).data();
      for (const i of [0, 1, 65535 * 256 + 3, n - 1]) {
        assert.ok(
          Math.abs(y[i] - Math.cos(Math.fround(Math.fround(i) * Math.fround(1e-6)))) < 1e-5,
        );
      }
      // 70000 row reductions, one workgroup each.
      const rows = cg.sum(cg.add(cg.iota([70000, 64], 0), cg.iota([70000, 64], 1)), 1);
      const s = await rows.data();
      for (const r of [0, 65535, 69999]) assert.equal(s[r], 64 * r + 2016);
    });
  },
});

Deno.test({
  name: "a reduction over 2^20 elements is accurate",
  ...opts,
  async fn() {
    const x = cg.normal(cg.randomKey(5), [1 << 20]);
    const values = await x.data();
    let sumSq = 0, max = -Infinity;
    for (const v of values) {
      sumSq += v * v;
      max = Math.max(max, v);
    }
    const [s, m] = withBackend(gpu!, () => [cg.sum(cg.mul(x, x)), cg.max(x)]);
    // Tree-ordered float32 sums stay within 1e-5 of the float64 sum here (a sequential
    // float32 loop, as the cpu interpreter runs it, is off by about 5e-4).
    assert.ok(Math.abs((await s.item()) - sumSq) < 1e-5 * sumSq, `${await s.item()} vs ${sumSq}`);
    assert.equal(await m.item(), max);
  },
});

Deno.test("requestGpu() without an adapter names the cause and the cpu backend", async () => {
  setAdapterHookForTesting(() => Promise.resolve(null));
  try {
    await assert.rejects(requestGpu(), (e: Error) => {
      assert.match(e.message, /No WebGPU adapter: navigator\.gpu\.requestAdapter\(\) found none/);
      assert.match(e.message, /cpu backend.*COSGRAD_BACKEND=cpu/);
      return true;
    });
  } finally {
    setAdapterHookForTesting(null);
  }
});

Deno.test({
  name: "a WGSL compile error is reported with the offending source lines",
  ...opts,
  async fn() {
    const code = [
      "@group(0) @binding(0) var<storage, read_write> out0: array<f32>;",
      "@compute @workgroup_size(1)",
      "fn main() {",
      "  let x: f32 = 1u;",
      "  out0[0] = x;",
      "}",
    ].join("\n");
    const broken = gpu!.pipeline(code, "broken_kernel", ["write"]);
    await broken.checked;
    // The error belongs to the pipeline (runs and reads that use it report it, see
    // webgpu_errors_test.ts); unrelated calls such as synchronize() are not affected.
    await gpu!.synchronize();
    assert.throws(() => gpu!.checkPipelines([broken]), (e: Error) => {
      assert.match(e.message, /WGSL compile error in kernel broken_kernel/);
      assert.match(e.message, / {3}4 \| {3}let x: f32 = 1u;/);
      return true;
    });
  },
});

Deno.test({
  name: "webgpu rejects float64 and reports out-of-range indices like the cpu backend",
  ...opts,
  async fn() {
    assert.throws(
      () => gpu!.fromHost(new Float64Array(2)),
      (e: Error) =>
        e instanceof TypeError && /float64 tensors run on the cpu backend/.test(e.message),
    );
    await withBackendAsync(gpu!, async () => {
      const x = cg.tensor([[1, 2, 3], [4, 5, 6]]);
      const bad = cg.takeAlongAxis(x, cg.tensor(new Int32Array([5, 0]), [2, 1]), 1);
      await assert.rejects(() => bad.data(), /gather: index 5 is out of range \[0, 3\) on axis 1/);
      const ok = cg.takeAlongAxis(x, cg.tensor(new Int32Array([2, 0]), [2, 1]), 1);
      assert.deepEqual([...await ok.data()], [3, 4]);
    });
  },
});

Deno.test({
  name: "COSGRAD_PROFILE=1 prints one line per kernel with its time",
  ...opts,
  async fn() {
    if (!gpu!.gpu.timestamps) return;
    const lines: string[] = [];
    const log = console.log;
    Deno.env.set("COSGRAD_PROFILE", "1");
    console.log = (...args: unknown[]) => lines.push(args.join(" "));
    try {
      await withBackendAsync(gpu!, async () => {
        const f = cg.compile((x: T) => cg.sum(cg.exp(x), 1));
        await f(cg.ones([3, 5])).data();
        await gpu!.synchronize();
        await new Promise((r) => setTimeout(r, 50));
      });
    } finally {
      console.log = log;
      Deno.env.delete("COSGRAD_PROFILE");
    }
    assert.ok(
      lines.some((l) => /^\[cosgrad profile\] loop:sum\[3,1\] +[0-9.]+ ms$/.test(l)),
      lines.join("\n"),
    );
  },
});

Deno.test({
  name: "kernels of both tuning profiles (llvmpipe, discrete GPUs) agree with the cpu backend",
  ...opts,
  async fn() {
    const x = cg.normal(cg.randomKey(21), [8, 1000]);
    const a = cg.normal(cg.randomKey(22), [40, 24]);
    const b = cg.normal(cg.randomKey(23), [24, 36]);
    const img = cg.normal(cg.randomKey(24), [2, 8, 9, 9]);
    const w = cg.normal(cg.randomKey(25), [8, 4, 3, 3], { std: 0.2 });
    const f = (x: T, a: T, b: T, img: T, w: T) => {
      const rows = cg.logsumexp(x, 1);
      const cols = cg.max(cg.mul(x, 2), 0);
      const mm = cg.relu(cg.matmul(a, b));
      const conv = cg.conv2d(img, w, { stride: 2, padding: 1, groups: 2 });
      return cg.add(
        cg.add(cg.sum(rows), cg.sum(cols)),
        cg.add(cg.sum(cg.square(mm)), cg.sum(cg.square(conv))),
      );
    };
    // A distinct graph per profile (times 1 or -1), so each profile's values are its own.
    const grads = (backend: typeof gpu, scale: number) =>
      withBackend(
        backend ?? cpuBackend(),
        () =>
          cg.valueAndGrad((...xs: T[]) => cg.mul(f(...(xs as [T, T, T, T, T])), scale), {
            argnums: [0, 1, 2, 3, 4],
          })(x, a, b, img, w),
      ) as unknown as [T, T[]];
    const [ev, eg] = grads(null, 1);
    const expected = [await ev.data(), ...await Promise.all(eg.map((g) => g.data()))];
    for (const [k, profile] of (["llvmpipe", "discrete"] as const).entries()) {
      const before = gpu!.profile;
      const compiled = gpu!.stats.programs;
      const sign = k === 0 ? 1 : -1;
      gpu!.profile = profile;
      try {
        const [v, g] = grads(gpu, sign);
        assert.ok(gpu!.stats.programs > compiled, `${profile}: a program was compiled`);
        const actual = [await v.data(), ...await Promise.all(g.map((t) => t.data()))];
        actual.forEach((t, i) =>
          assertClose(t.map((y) => sign * y), expected[i], `${profile} output ${i}`)
        );
      } finally {
        gpu!.profile = before;
      }
    }
  },
});

Deno.test({
  name: "int32 ops, casts and NaN/infinity edge cases match the cpu interpreter exactly",
  ...opts,
  async fn() {
    const a = cg.tensor(new Int32Array([3, -7, 2147483647, 0, 5, -1]), [2, 3]);
    const b = cg.tensor(new Int32Array([2, 2, 1, -4, 5, 9]), [2, 3]);
    const f = cg.tensor([
      [1.7, -2.5, NaN],
      [1e10, -1e10, 0.49],
      [Infinity, -3e9, 2147483520],
      [-2147483648, 4294967296 * 3 + 512, -0.5],
    ]);
    const cases: Record<string, () => T> = {
      intArithmetic: () => cg.add(cg.mul(a, b), cg.sub(cg.neg(a), b)),
      intCompare: () => cg.where(cg.less(a, b), cg.maximum(a, b), cg.equal(a, b)),
      intReduce: () => cg.concat([cg.sum(a, 1), cg.max(a, 1)], 0),
      castToInt: () => cg.cast(f, "int32"),
      indexing: () =>
        cg.scatterAdd(
          cg.take(a, cg.tensor(new Int32Array([2, 0, 1]), [3]), 1),
          cg.tensor(new Int32Array([1, 1, 0, 0, 2, 1]), [2, 3]),
          [2, 4],
          1,
        ),
      nanMax: () =>
        cg.concat([cg.maximum(f, cg.zeros([4, 3])), cg.max(f, 1, { keepdims: true })], 1),
      pow: () =>
        cg.pow(cg.tensor([-2, -2, 0, 0, 0, 4, NaN, 1]), cg.tensor([3, 0.5, 0, -1, 2, 0.5, 0, NaN])),
    };
    for (const [name, make] of Object.entries(cases)) {
      const expected = await withBackend(cpuBackend(), make).data();
      const actual = await withBackend(gpu!, make).data();
      assert.deepEqual([...actual], [...expected], name);
    }
  },
});

Deno.test({
  name: "changing the kernel profile or the binding limit recompiles the same graph",
  ...opts,
  async fn() {
    const f = cg.compile((x: T) => cg.sum(cg.exp(x), 1));
    const x = cg.normal(cg.randomKey(4), [4, 64]);
    const before = { profile: gpu!.profile, limit: gpu!.bindingLimit };
    try {
      await withBackendAsync(gpu!, async () => {
        const expected = await f(x).data();
        const programs = gpu!.stats.programs;
        await f(x).data();
        assert.equal(gpu!.stats.programs, programs, "unchanged: no new program");
        gpu!.profile = before.profile === "llvmpipe" ? "discrete" : "llvmpipe";
        assertClose(await f(x).data(), expected, "other profile");
        assert.equal(gpu!.stats.programs, programs + 1, "profile change: one new program");
        gpu!.bindingLimit = 256;
        assertClose(await f(x).data(), expected, "256-byte bindings");
        assert.equal(gpu!.stats.programs, programs + 2, "limit change: one new program");
      });
    } finally {
      gpu!.profile = before.profile;
      gpu!.bindingLimit = before.limit;
    }
  },
});

/** A compiled 3x3 padding-1 convolution (4 -> 8 channels) and inputs, `x` of `shape`. */
function convCase(seed: number, shape: number[]) {
  const f = cg.compile((x: T, w: T) => cg.conv2d(x, w, { padding: 1 }));
  const x = cg.normal(cg.randomKey(seed), shape);
  const w = cg.normal(cg.randomKey(seed + 1), [8, 4, 3, 3]);
  return { f, x, w };
}

/** The tuning miss of the kernel class whose key contains `tag` (asserted to exist). */
function missOf(tag: string) {
  const misses = gpu!.tuning.misses;
  const miss = [...misses.values()].find((m) => m.cls.includes(tag));
  assert.ok(miss !== undefined, `a miss for the convolution: ${[...misses.keys()]}`);
  return miss;
}

Deno.test({
  name: "a new tuning record recompiles a convolution with the measured variant",
  ...opts,
  async fn() {
    const { f, x, w } = convCase(5, [2, 4, 8, 8]);
    const expected = await withBackendAsync(cpuBackend(), () => f(x, w).data());
    await withBackendAsync(gpu!, async () => {
      assertClose(await f(x, w).data(), expected, "default variant");
      if (gpu!.tuning.mode === "off") return; // COSGRAD_TUNE=off: no records to add
      const miss = missOf("x2x4x8x8");
      const programs = gpu!.stats.programs;
      const pipelines = gpu!.stats.pipelines;
      gpu!.tuning.record(miss.cls, {
        candidates: [{ variant: { algo: "implicit", cap: 4 }, runMs: 1, compileMs: 0, error: 0 }],
      });
      assertClose(await f(x, w).data(), expected, "tuned variant");
      assert.equal(gpu!.stats.programs, programs + 1, "one new program");
      assert.ok(gpu!.stats.pipelines > pipelines, "the variant's kernel is a new pipeline");
    });
  },
});

Deno.test({
  name: "a tuned program's first run reports its build and run time to calibrate the tiers",
  ...opts,
  async fn() {
    const { f, x, w } = convCase(9, [2, 4, 6, 8]);
    const tuning = gpu!.tuning;
    if (tuning.mode === "off") return; // COSGRAD_TUNE=off: no records to add
    const observe = tuning.observeCompile;
    const seen: [number, number][] = [];
    try {
      await withBackendAsync(gpu!, async () => {
        await f(x, w).data();
        const miss = missOf("x2x4x6x8");
        tuning.record(miss.cls, {
          candidates: [{
            variant: { algo: "implicit", cap: 4 },
            runMs: 1,
            compileMs: 50,
            error: 0,
          }],
        });
        tuning.observeCompile = (predicted, actual) => {
          seen.push([predicted, actual]);
          observe.call(tuning, predicted, actual);
        };
        // The call builds the program (its new pipelines all the tuned kernel's) and submits it:
        // llvmpipe compiles in there, so the observed time must cover it.
        const t = performance.now();
        const y = f(x, w);
        const callMs = performance.now() - t;
        await y.data();
        await gpu!.synchronize();
        assert.equal(seen.length, 1, "one observation");
        assert.equal(seen[0][0], 50, "the record's compile time predicted");
        assert.ok(
          seen[0][1] + 5 >= 0.8 * callMs,
          `observed ${seen[0][1].toFixed(1)} ms, the call took ${callMs.toFixed(1)} ms`,
        );
      });
    } finally {
      tuning.observeCompile = observe;
    }
  },
});

Deno.test({
  name:
    "tunePending() measures the classes a program used, saves them, and the next call uses them",
  ...opts,
  async fn() {
    const dir = Deno.makeTempDirSync();
    const before = gpu!.tuning;
    const lines: string[] = [];
    let cls = "";
    try {
      gpu!.tuning = new TuningTable(before.key, before.adapter, {
        mode: "cache",
        path: `${dir}/tune.json`,
      });
      const f = cg.compile((x: T, w: T) => cg.conv2d(x, w, { padding: 1 }));
      const x = cg.normal(cg.randomKey(7), [1, 4, 4, 4]);
      const w = cg.normal(cg.randomKey(8), [8, 4, 3, 3]);
      const expected = await withBackendAsync(cpuBackend(), () => f(x, w).data());
      await withBackendAsync(gpu!, async () => {
        assertClose(await f(x, w).data(), expected, "untuned");
        assert.equal(gpu!.tuning.misses.size, 1);
        // A tiny budget: the first (cheapest) candidate of the class and no more.
        const done = await gpu!.tunePending({ classBudgetMs: 0, print: (l) => lines.push(l) });
        assert.equal(done.length, 1, lines.join("\n"));
        cls = done[0];
        assert.equal(gpu!.tuning.misses.size, 0);
        const programs = gpu!.stats.programs;
        assertClose(await f(x, w).data(), expected, "tuned");
        assert.equal(gpu!.stats.programs, programs + 1, "recompiled with the record");
      });
      const again = new TuningTable(before.key, before.adapter, {
        mode: "cache",
        path: `${dir}/tune.json`,
      });
      // A restart reads the record: nothing to tune.
      assert.ok(again.get(cls) !== undefined, `${cls} in the saved file`);
      assert.ok(lines.some((l) => l.includes("saved to")), lines.join("\n"));
    } finally {
      gpu!.tuning = before;
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
