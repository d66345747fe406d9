/**
 * Measures the kernels on the first WebGPU adapter with the standard workloads (WORKLOADS.md):
 * M1 (and 512³) matmul GFLOP/s, C1 conv2d forward / backward ms, in throughput mode (N runs
 * submitted back to back, one `onSubmittedWorkDone`; median and minimum of trials).
 *
 * Usage: `deno run -A kernels/_measure.ts [--profile llvmpipe|discrete] [--m4] [--trials 3]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { matmulKernel } from "./matmul.ts";
import {
  conv2dBackwardFilterKernel,
  conv2dBackwardInputKernel,
  conv2dForwardKernel,
  type Conv2dSpec,
} from "./conv2d.ts";
import type { KernelPlan } from "./types.ts";
import type { KernelProfile } from "./_gemm.ts";
import {
  adapterDescription,
  getTestDevice,
  hashFill,
  renameBindings,
  timePlan,
} from "./_harness_test_util.ts";

const USAGE = `Usage: deno run -A kernels/_measure.ts [options]

Options:
  --profile <p>   tile profile: llvmpipe (default) or discrete
  --m4            also run M4 (4096³, GPU only)
  --trials <n>    timed trials per workload, median reported (default 3)
  --help          show this help`;

/** C1: batch 16, 64 -> 64 channels, 56x56, 3x3, stride 1, pad 1. */
const C1: Conv2dSpec = {
  batch: 16,
  inChannels: 64,
  height: 56,
  width: 56,
  outChannels: 64,
  kernelH: 3,
  kernelW: 3,
  padding: 1,
};

/** Plans run back to back (named by the first's algorithm: the merged plan is only timed). */
function merge(...plans: KernelPlan[]): KernelPlan {
  return {
    algorithm: plans[0].algorithm,
    steps: plans.flatMap((p) => p.steps),
    scratch: plans.flatMap((p) => p.scratch),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      profile: { type: "string", default: "llvmpipe" },
      m4: { type: "boolean", default: false },
      trials: { type: "string", default: "3" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const profile = values.profile as KernelProfile;
  const trials = Number(values.trials);
  const device = await getTestDevice();
  if (!device) throw new Error("No WebGPU adapter: cannot measure kernels");
  console.log(`adapter: ${await adapterDescription()}, profile ${profile}`);

  const sizes = values.m4 ? [512, 1024, 4096] : [512, 1024];
  for (const n of sizes) {
    const plan = matmulKernel({ batch: 1, m: n, n, k: n, profile });
    const a = hashFill(n * n, 1);
    const b = hashFill(n * n, 2);
    const t = await timePlan(device, plan, {
      inputs: { a, b },
      outputs: { out: n * n },
      reps: 20,
      trials,
    });
    const gflops = (ms: number) => (2 * n ** 3 / ms / 1e6).toFixed(1);
    console.log(
      `matmul ${n}³: median ${t.median.toFixed(1)} ms (${gflops(t.median)} GFLOP/s), ` +
        `min ${t.min.toFixed(1)} ms (${gflops(t.min)} GFLOP/s)  ${plan.steps[0].kernel.comment}`,
    );
  }

  const spec = { ...C1, profile };
  const x = hashFill(16 * 64 * 56 * 56, 11);
  const w = hashFill(64 * 64 * 9, 12, 1 / 24);
  const dy = hashFill(16 * 64 * 56 * 56, 13);
  const fwd = renameBindings(conv2dForwardKernel(spec), { out: "y" });
  const bwdIn = renameBindings(conv2dBackwardInputKernel(spec), { out: "dx" });
  const bwdW = renameBindings(conv2dBackwardFilterKernel(spec), { out: "dw" });
  const outputs = { y: dy.length, dx: x.length, dw: w.length };
  const flops = 2 * 64 * 576 * 16 * 56 * 56;
  for (
    const [name, plan, passes] of [
      ["C1 forward", fwd, 1],
      ["C1 backward input", bwdIn, 1],
      ["C1 backward filter", bwdW, 1],
      ["C1 backward (input + filter)", merge(bwdIn, bwdW), 2],
      ["C1 forward + backward", merge(fwd, bwdIn, bwdW), 3],
    ] as const
  ) {
    // WORKLOADS.md: N >= 20, or enough for 1 s; these take ~0.5 s each on llvmpipe.
    const reps = profile === "llvmpipe" ? 3 : 20;
    const t = await timePlan(device, plan, { inputs: { x, w, dy }, outputs, reps, trials });
    const gflops = (ms: number) => (passes * flops / ms / 1e6).toFixed(1);
    console.log(
      `${name}: median ${t.median.toFixed(1)} ms (${gflops(t.median)} GFLOP/s), ` +
        `min ${t.min.toFixed(1)} ms (${gflops(t.min)} GFLOP/s)`,
    );
  }
}

if (import.meta.main) await main();
