// Batch-norm statistics of the T1 network reduce over N*H*W = 131,072 terms per channel with
// 32 channels; on llvmpipe a one-thread-per-output loop over more than 65,536 terms came out
// short (66,560 ones summed to 65,533), which made T1's loss wrong on webgpu.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

Deno.test("long reductions over non-contiguous axes are exact on webgpu", async () => {
  if (gpu === null) return;
  await cg.setBackend(gpu);
  try {
    const ones = cg.tensor(new Float32Array(65 * 32 * 8 * 16).fill(1), [65, 32, 8, 16]);
    const big = cg.tensor(new Float32Array(130 * 32 * 32 * 16).fill(1), [130, 32, 32, 16]);
    assert.deepEqual([...await cg.sum(ones, [0, 2, 3]).data()], new Array(32).fill(65 * 128));
    assert.deepEqual([...await cg.sum(big, [0, 2, 3]).data()], new Array(32).fill(130 * 512));
  } finally {
    await cg.setBackend("cpu");
  }
});
