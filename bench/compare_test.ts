import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { cosgradL1 } from "./cosgrad.ts";
import { l1Agreement, ratioLines } from "./compare.ts";
import { seededLabels, seededValues, WORKLOADS } from "./_inputs.ts";

/** CosFace loss in float64, written out independently of cosgrad. */
function cosfaceF64(
  f: Float32Array,
  w: Float32Array,
  y: Int32Array,
  shape: { batch: number; dim: number; classes: number },
  s: number,
  m: number,
): number {
  const { batch, dim, classes } = shape;
  const norm = (a: Float32Array, i: number) => {
    let t = 0;
    for (let k = 0; k < dim; k++) t += a[i * dim + k] ** 2;
    return Math.sqrt(t);
  };
  const wn = Array.from({ length: classes }, (_, j) => norm(w, j));
  let total = 0;
  for (let i = 0; i < batch; i++) {
    const fn = norm(f, i);
    const logits: number[] = [];
    for (let j = 0; j < classes; j++) {
      let d = 0;
      for (let k = 0; k < dim; k++) d += f[i * dim + k] * w[j * dim + k];
      const c = d / (fn * wn[j]);
      logits.push(s * (j === y[i] ? c - m : c));
    }
    const mx = Math.max(...logits);
    const lse = mx + Math.log(logits.reduce((a, l) => a + Math.exp(l - mx), 0));
    total += lse - logits[y[i]];
  }
  return total / batch;
}

Deno.test("cosgradL1() matches a float64 CosFace reference on the seeded inputs, reduced shape", async () => {
  const shape = { batch: 8, dim: 16, classes: 50 };
  const { features, weights, labels } = WORKLOADS.L1.inputs;
  const expected = cosfaceF64(
    seededValues(features.seed, shape.batch * shape.dim),
    seededValues(weights.seed, shape.classes * shape.dim),
    seededLabels(labels.seed, shape.batch, shape.classes),
    shape,
    64,
    0.35,
  );
  await cg.setBackend("cpu");
  const r = await cosgradL1(shape);
  assert.ok(Math.abs(r.loss - expected) <= 1e-4 * Math.abs(expected), `${r.loss} vs ${expected}`);
  assert.ok(r.gradFeaturesNorm > 0 && r.gradWeightsNorm > 0);
});

Deno.test("l1Agreement() flags a loss off by more than 1e-3 and a failed run", () => {
  const base = { version: "1", backend: "cpu", workload: "L1" as const };
  const a = l1Agreement([
    { ...base, framework: "good", loss: 35.8999 },
    { ...base, framework: "bad", loss: 35.91 },
    { ...base, framework: "broken", error: "boom" },
  ]);
  assert.deepEqual(a.map((x) => x.ok), [true, false, false]);
  assert.match(a[2].text, /boom/);
});

Deno.test("ratioLines() prefers throughput, counts a steady too-slow call, never a first-only one", () => {
  const r = (framework: string, mode: "latency" | "throughput", ms: number, tooSlow = false) => ({
    framework,
    version: "1",
    backend: "webgpu",
    workload: "M1" as const,
    mode,
    ms,
    ...(tooSlow ? { tooSlow } : {}),
  });
  const lines = ratioLines([
    r("cosgrad", "latency", 30),
    r("cosgrad", "throughput", 10),
    r("tfjs", "latency", 60),
    r("tfjs", "throughput", 40),
    { ...r("jax-js", "latency", 100, true) },
  ]);
  assert.match(lines[0], /tfjs-webgpu\s+0\.25 \(throughput/);
  assert.match(
    lines[1],
    /jax-js-webgpu\s+0\.10 \(throughput 10\.0 ms vs one steady call 100\.0 ms\)/,
  );
  const first = ratioLines([
    r("cosgrad", "throughput", 10),
    { ...r("jax-js", "throughput", 100, true), firstOnly: true },
  ]);
  assert.match(first[0], /jax-js-webgpu\s+n\/a/);
});

Deno.test("compare.ts refuses bad options with error: naming the flag, exit 2", async (t) => {
  const cases: [string[], RegExp][] = [
    [["--reps", "2"], /--reps expects an integer of at least 5, got "2"/],
    [["--reps", "x"], /--reps expects an integer of at least 5, got "x"/],
    [["--max-call-ms", "0"], /--max-call-ms expects a number greater than 0, got "0"/],
    [["--timeout-s", "abc"], /--timeout-s expects a number greater than 0, got "abc"/],
    [["--workloads", "M1,Z9"], /--workloads expects one of .*M1.*, got "Z9"/],
    [["--frameworks", "tfjs"], /--frameworks expects one of .*, got "tfjs"/],
    [["--modes", "fast"], /--modes expects one of latency, throughput, got "fast"/],
    [["--skip", "cosgrad-cpu=slow"], /--skip expects FRAMEWORK:WORKLOAD/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          `--lock=${new URL("../deno.dev.lock", import.meta.url).pathname}`,
          "-A",
          new URL("./compare.ts", import.meta.url).pathname,
          ...args,
        ],
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      const stderr = new TextDecoder().decode(out.stderr);
      assert.equal(out.code, 2, stderr);
      assert.match(stderr, /^error: /);
      assert.match(stderr, message);
    });
  }
});
