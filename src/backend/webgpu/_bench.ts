/**
 * Micro-benchmarks of the WebGPU backend (a script, not a test):
 * `deno run -A src/backend/webgpu/_bench.ts [--reps 20] [--only m1,c1,l1,ew]`.
 *
 * - M1: 1024x1024 @ 1024x1024 (seeded inputs), throughput: `reps` calls of a compiled
 *   function back to back, one wait; ms per call and GFLOP/s.
 * - C1: conv2d 3x3, stride 1, pad 1, batch 16, 64 -> 64 channels, 56x56: forward, and
 *   forward+backward (gradients of input and weights), throughput.
 * - L1: CosFace loss forward+backward (features 256x512, class weights 10000x512), throughput.
 * - EW: an elementwise chain over 4M elements (fused into one kernel), throughput, and the
 *   same chain with every op realized (one kernel per op) for comparison.
 *
 * Inputs follow bench/WORKLOADS.md (seeds, scales). Numbers are printed with the adapter.
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as cg from "../../../mod.ts";
import { withBackendAsync } from "../registry.ts";
import { startWebGpuBackend } from "./start.ts";
import { cosface } from "../../losses/cosface.ts";
import { fmix32 } from "../../ops/random.ts";
import type { WebGpuBackend } from "./webgpu_backend.ts";

type T = cg.Tensor;

/** Seeded values of WORKLOADS.md: element i of seed s, uniform in [-scale, scale). */
function seeded(seed: number, shape: number[], scale = 1): T {
  const n = shape.reduce((a, b) => a * b, 1);
  const key = fmix32(Math.imul(seed >>> 0, 0x9e3779b9));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    const h = fmix32((key + i) >>> 0);
    out[i] = (2 * (h >>> 8) / 2 ** 24 - 1) * scale;
  }
  return cg.tensor(out, shape);
}

/** Seeded labels of WORKLOADS.md: `h mod classes`. */
function seededLabels(seed: number, n: number, classes: number): T {
  const key = fmix32(Math.imul(seed >>> 0, 0x9e3779b9));
  return cg.tensor(Int32Array.from({ length: n }, (_, i) => fmix32((key + i) >>> 0) % classes), [
    n,
  ]);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Median ms per call of `reps` calls back to back followed by one wait, over `rounds`. */
async function throughput(
  backend: WebGpuBackend,
  call: () => T[],
  reps: number,
  rounds = 5,
): Promise<number> {
  // Warm up: compile, first runs.
  for (let i = 0; i < 2; i++) await Promise.all(call().map((t) => t.data()));
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t0 = performance.now();
    let last: T[] = [];
    for (let i = 0; i < reps; i++) last = call();
    await backend.synchronize();
    times.push((performance.now() - t0) / reps);
    void last;
  }
  return median(times);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      reps: { type: "string", default: "20" },
      only: { type: "string", default: "m1,c1,l1,ew" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log("usage: deno run -A src/backend/webgpu/_bench.ts [--reps 20] [--only m1,c1,l1,ew]");
    return;
  }
  const reps = Number(values.reps);
  const only = new Set(values.only.split(","));
  const gpu = await startWebGpuBackend();
  console.log(`adapter: ${gpu.description} (deno ${Deno.version.deno}), ${reps} calls per round`);
  await withBackendAsync(gpu, async () => {
    if (only.has("m1")) {
      const a = seeded(1, [1024, 1024]), b = seeded(2, [1024, 1024]);
      const mm = cg.compile((a: T, b: T) => [cg.matmul(a, b)]);
      const ms = await throughput(gpu, () => mm(a, b), reps);
      console.log(
        `M1 matmul 1024: ${ms.toFixed(2)} ms, ${(2 * 1024 ** 3 / ms / 1e6).toFixed(1)} GFLOP/s`,
      );
    }
    if (only.has("c1")) {
      const x = seeded(11, [16, 64, 56, 56]);
      const w = seeded(12, [64, 64, 3, 3], 1 / 24);
      const dy = seeded(13, [16, 64, 56, 56]);
      const fwd = cg.compile((x: T, w: T) => [cg.conv2d(x, w, { padding: 1 })]);
      const fms = await throughput(gpu, () => fwd(x, w), Math.max(2, reps / 4));
      const flops = 2 * 16 * 64 * 56 * 56 * 64 * 9;
      console.log(
        `C1 conv forward: ${fms.toFixed(1)} ms, ${(flops / fms / 1e6).toFixed(1)} GFLOP/s`,
      );
      const both = cg.compile((x: T, w: T, dy: T) => {
        const [y, back] = cg.vjp((x: T, w: T) => cg.conv2d(x, w, { padding: 1 }), [x, w]);
        return [y as T, ...back(dy) as T[]];
      });
      const bms = await throughput(gpu, () => both(x, w, dy), Math.max(2, reps / 4));
      console.log(`C1 conv forward+backward: ${bms.toFixed(1)} ms (3 convolutions)`);
    }
    if (only.has("l1")) {
      const f = seeded(21, [256, 512]), w = seeded(22, [10000, 512]);
      const labels = seededLabels(23, 256, 10000);
      const step = cg.compile((f: T, w: T, y: T) => {
        const [loss, g] = cg.valueAndGrad(
          (f: T, w: T) => cosface(f, w, y, { s: 64, m: 0.35 }),
          { argnums: [0, 1] },
        )(f, w) as [T, T[]];
        return [loss, ...g];
      });
      const loss = await step(f, w, labels)[0].item();
      const ms = await throughput(gpu, () => step(f, w, labels), Math.max(2, reps / 4));
      const kernels = step.dispatches();
      console.log(
        `L1 CosFace forward+backward: ${ms.toFixed(1)} ms (${kernels} kernels), loss ${
          loss.toFixed(4)
        } (expected 35.8995)`,
      );
    }
    if (only.has("ew")) {
      const n = 1 << 22;
      const x = seeded(31, [n]), y = seeded(32, [n]);
      const chain = (x: T, y: T) =>
        cg.mul(cg.sigmoid(cg.add(cg.mul(x, 1.5), y)), cg.tanh(cg.sub(x, cg.mul(y, y))));
      const fused = cg.compile((x: T, y: T) => [chain(x, y)]);
      const fms = await throughput(gpu, () => fused(x, y), reps);
      // The same ops eagerly: each op is its own program and kernel.
      const ems = await throughput(gpu, () => [chain(x, y)], Math.max(2, reps / 4));
      const kernels = fused.dispatches();
      console.log(
        `EW chain (12 ops, 4M elements): fused ${fms.toFixed(2)} ms (${kernels} kernel), ` +
          `one kernel per op ${ems.toFixed(2)} ms`,
      );
    }
  });
}

if (import.meta.main) await main();
