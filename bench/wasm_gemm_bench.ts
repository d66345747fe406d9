/**
 * M1 (a 1024 x 1024 x 1024 f32 matmul, WORKLOADS.md) on the wasm backend (packed SIMD GEMM) with 1 and
 * all threads, FMA on and off, beside TensorFlow.js's wasm backend (SIMD, its default threads)
 * in the same run. Median of `--reps` calls after a warm-up; GFLOP/s = 2 n^3 / time.
 *
 *   deno run -A bench/wasm_gemm_bench.ts [--reps 10] [--n 1024]
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";
import { relaxedSimd } from "../src/kernel/wasm_gemm.ts";
import { WasmBackend } from "../src/backend/wasm/wasm_backend.ts";
import { withBackendAsync } from "../src/backend/registry.ts";

const { values } = parseArgs({
  options: { reps: { type: "string", default: "10" }, n: { type: "string", default: "1024" } },
});
const reps = Number(values.reps), n = Number(values.n);
for (const [flag, v] of [["--reps", reps], ["--n", n]] as const) {
  if (!Number.isInteger(v) || v < 1) {
    console.error(`error: ${flag} must be a positive integer, got ${v}`);
    Deno.exit(2);
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gflops = (ms: number) => (2 * n ** 3 / (ms / 1000) / 1e9).toFixed(1);

/** A compiled n^3 matmul on a wasm backend of `threads` threads: median ms of `reps` calls. */
async function cosgrad(threads: number, fma: boolean): Promise<number> {
  const backend = await WasmBackend.create({ threads, fma });
  try {
    return await withBackendAsync(backend, async () => {
      const a = cg.normal(cg.randomKey(1), [n, n]), b = cg.normal(cg.randomKey(2), [n, n]);
      const mm = cg.compile((a: cg.Tensor, b: cg.Tensor) => [cg.matmul(a, b)]);
      const call = async () => {
        const t0 = performance.now();
        mm(a, b);
        await backend.synchronize();
        return performance.now() - t0;
      };
      await call();
      await call();
      const times: number[] = [];
      for (let r = 0; r < reps; r++) times.push(await call());
      return median(times);
    });
  } finally {
    backend.close();
  }
}

async function tfjsWasm(): Promise<{ ms: number; notes: string }> {
  const { tfjsInit } = await import("./peers/tfjs.ts");
  const tf = await import("npm:@tensorflow/tfjs@4.22.0");
  const info = await tfjsInit("wasm");
  const a = tf.randomUniform([n, n]), b = tf.randomUniform([n, n]);
  const run = async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  };
  await run();
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  return { ms: median(times), notes: info.notes ?? "" };
}

const cores = navigator.hardwareConcurrency;
console.log(
  `M1 matmul ${n}^3 f32, ${reps} reps, ${cores} cores, relaxed SIMD: ${relaxedSimd()}`,
);
const rows: [string, number][] = [];
for (const fma of relaxedSimd() ? [true, false] : [false]) {
  for (const t of [1, cores]) {
    const ms = await cosgrad(t, fma);
    rows.push([`cosgrad-wasm ${t} thread${t > 1 ? "s" : ""}${fma ? ", FMA" : ", mul+add"}`, ms]);
    console.log(`${rows.at(-1)![0]}: ${ms.toFixed(1)} ms (${gflops(ms)} GFLOP/s)`);
  }
}
const tf = await tfjsWasm();
console.log(`tfjs-wasm (${tf.notes}): ${tf.ms.toFixed(1)} ms (${gflops(tf.ms)} GFLOP/s)`);
const best = Math.min(...rows.map(([, ms]) => ms));
console.log(`best cosgrad-wasm / tfjs-wasm time: ${(best / tf.ms).toFixed(2)}x`);
Deno.exit(0);
