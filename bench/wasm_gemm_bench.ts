/**
 * M1 (a 1024 x 1024 x 1024 f32 matmul, WORKLOADS.md) on the wasm backend (packed SIMD GEMM) with 1 and
 * all threads, FMA on and off, beside TensorFlow.js's wasm backend (SIMD, its default threads)
 * in the same run. Median of `--reps` calls after a warm-up; GFLOP/s = 2 n^3 / time. Also the
 * engine's SIMD peak on one thread, measured (register-only `f32x4.relaxed_madd` chains, see
 * {@linkcode simdPeak}), and each row's fraction of it times its threads.
 *
 *   deno run -A bench/wasm_gemm_bench.ts [--reps 10] [--n 1024]
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";
import { relaxedSimd } from "../src/kernel/wasm_gemm.ts";
import { encodeModule, FunctionBuilder, OP, uleb } from "../src/kernel/wasm_writer.ts";
import { WasmBackend } from "../src/backend/wasm/wasm_backend.ts";
import { withBackendAsync } from "../src/backend/registry.ts";
import { median } from "../kernels/tune.ts";

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

/**
 * The engine's f32x4 multiply-add peak on one thread in GFLOP/s: twelve independent accumulator
 * chains of register operands (no memory), eight steps per loop iteration; the best of 7 runs of
 * 1.5 GFLOP each (FMA when `fma`, else mul + add, counted as 8 flops a lane pair as well).
 */
function simdPeak(fma: boolean): number {
  const f = new FunctionBuilder(["i32"], ["f32"]);
  const acc = Array.from({ length: 12 }, () => f.local("v128"));
  const b0 = f.local("v128"), b1 = f.local("v128"), a = f.local("v128");
  const tiny = [...new Uint8Array(new Float32Array([1e-7, 1e-7, 1e-7, 1e-7]).buffer)];
  for (const r of [...acc, b0, b1, a]) f.op(OP.v128_const, tiny).set(r);
  f.op(OP.block, [0x40]).op(OP.loop, [0x40]);
  f.get(0).op(OP.i32_eqz).op(OP.br_if, uleb(1));
  for (let u = 0; u < 8; u++) {
    acc.forEach((c, i) => {
      if (fma) f.get(a).get(i % 2 ? b1 : b0).get(c).op(OP.f32x4_relaxed_madd).set(c);
      else f.get(c).get(a).get(i % 2 ? b1 : b0).op(OP.f32x4_mul).op(OP.f32x4_add).set(c);
    });
  }
  f.get(0).i32(1).op(OP.i32_sub).set(0).op(OP.br, uleb(0));
  f.op(OP.end).op(OP.end);
  f.get(acc[0]);
  for (let i = 1; i < 12; i++) f.get(acc[i]).op(OP.f32x4_add);
  f.op(OP.f32x4_extract_lane, [0]);
  const mod = new WebAssembly.Module(encodeModule({
    imports: [],
    memory: { initial: 1, maximum: 1, shared: false },
    functions: [{ name: "peak", body: f }],
  }));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1 });
  const peak = new WebAssembly.Instance(mod, { env: { memory } }).exports.peak as (
    n: number,
  ) => number;
  const iters = 2_000_000, flops = iters * 8 * 12 * 8;
  let best = Infinity;
  for (let r = 0; r < 8; r++) {
    const t0 = performance.now();
    peak(iters);
    if (r > 0) best = Math.min(best, performance.now() - t0);
  }
  return flops / best / 1e6;
}

const cores = navigator.hardwareConcurrency;
console.log(
  `M1 matmul ${n}^3 f32, ${reps} reps, ${cores} cores, relaxed SIMD: ${relaxedSimd()}`,
);
const peaks = new Map<boolean, number>();
for (const fma of relaxedSimd() ? [true, false] : [false]) {
  peaks.set(fma, simdPeak(fma));
  console.log(
    `SIMD peak, one thread, ${fma ? "relaxed FMA" : "mul+add"}: ${
      peaks.get(fma)!.toFixed(1)
    } GFLOP/s (measured)`,
  );
}
const rows: [string, number][] = [];
for (const fma of relaxedSimd() ? [true, false] : [false]) {
  for (const t of [1, cores]) {
    const ms = await cosgrad(t, fma);
    rows.push([`cosgrad-wasm ${t} thread${t > 1 ? "s" : ""}${fma ? ", FMA" : ", mul+add"}`, ms]);
    const rate = 2 * n ** 3 / (ms / 1000) / 1e9;
    console.log(
      `${rows.at(-1)![0]}: ${ms.toFixed(1)} ms (${gflops(ms)} GFLOP/s, ${
        (100 * rate / (t * peaks.get(fma)!)).toFixed(0)
      }% of ${t} x the peak)`,
    );
  }
}
const tf = await tfjsWasm();
console.log(`tfjs-wasm (${tf.notes}): ${tf.ms.toFixed(1)} ms (${gflops(tf.ms)} GFLOP/s)`);
const best = Math.min(...rows.map(([, ms]) => ms));
console.log(`best cosgrad-wasm / tfjs-wasm time: ${(best / tf.ms).toFixed(2)}x`);
Deno.exit(0);
