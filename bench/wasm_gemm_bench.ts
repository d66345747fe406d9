/**
 * M1 (a 1024 x 1024 x 1024 f32 matmul, WORKLOADS.md) on cosgrad's WebAssembly GEMM with 1 and
 * all threads, FMA on and off, beside TensorFlow.js's wasm backend (SIMD, its default threads)
 * in the same run. Median of `--reps` calls after a warm-up; GFLOP/s = 2 n^3 / time.
 *
 *   deno run -A bench/wasm_gemm_bench.ts [--reps 10] [--n 1024]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { WasmThreads } from "../src/backend/wasm/threads.ts";
import { gemmScratchBytes, hasRelaxedSimd, WasmGemm } from "../src/backend/wasm/gemm.ts";

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

async function cosgrad(threads: number, fma: boolean): Promise<number> {
  const bytes = 3 * n * n * 4 + gemmScratchBytes({ m: n, n, k: n });
  const memory = new WebAssembly.Memory({
    initial: Math.ceil(bytes / 65536) + 1,
    maximum: 65536,
    shared: true,
  });
  const pool = await WasmThreads.create(memory, { threads });
  try {
    const gemm = WasmGemm.load(pool, { fma });
    const f = new Float32Array(memory.buffer);
    for (let i = 0; i < 2 * n * n; i++) f[i] = Math.sin(i) * 0.5;
    const calls = gemm.calls({ m: n, n, k: n }, {
      a: 0,
      b: n * n * 4,
      c: 2 * n * n * 4,
      scratch: 3 * n * n * 4,
    });
    pool.run(calls);
    const times: number[] = [];
    for (let r = 0; r < reps; r++) {
      const t0 = performance.now();
      pool.run(calls);
      times.push(performance.now() - t0);
    }
    return median(times);
  } finally {
    pool.close();
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
  `M1 matmul ${n}^3 f32, ${reps} reps, ${cores} cores, relaxed SIMD: ${hasRelaxedSimd()}`,
);
const rows: [string, number][] = [];
for (const fma of hasRelaxedSimd() ? [true, false] : [false]) {
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
