// The WGSL renderer against the kernel IR's reference interpreter: random integer kernels
// (precedence, literal printing, folding, loops, branches, conversions) rendered, run on the
// WebGPU adapter, and compared exactly with the interpreter, before and after the passes.
import assert from "node:assert/strict";
import { layoutOf, renderWgsl } from "../src/kernel/wgsl.ts";
import { layoutEntries } from "../src/backend/webgpu/compile_pool.ts";
import { optimize } from "../src/kernel/passes.ts";
import type { Kernel } from "../src/kernel/ir.ts";
import { interpret } from "../src/kernel/_interpret_test_util.ts";
import { INPUTS, OUTPUTS, randomKernel, rng } from "../src/kernel/_random_kernel_test_util.ts";

const SEED = 20180126;
const KERNELS = 40;
const THREADS = 8;

const adapter = await navigator.gpu?.requestAdapter().catch(() => null);
const device = adapter ? await adapter.requestDevice() : null;
if (device === null) {
  console.log("%ckernel render test SKIPPED: no WebGPU adapter", "color: yellow");
}

async function onDevice(k: Kernel, input: Int32Array<ArrayBuffer>): Promise<Int32Array> {
  const d = device!;
  const layout = d.createBindGroupLayout({ entries: layoutEntries(layoutOf(k)) });
  d.pushErrorScope("validation");
  const module = d.createShaderModule({ code: renderWgsl(k) });
  const pipeline = d.createComputePipeline({
    layout: d.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module, entryPoint: "main" },
  });
  const error = await d.popErrorScope();
  if (error !== null) throw new Error(`${error.message}\n${renderWgsl(k)}`);
  const inBuf = d.createBuffer({
    size: input.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
  });
  d.queue.writeBuffer(inBuf, 0, input);
  const out = new Int32Array(THREADS * OUTPUTS).fill(-7);
  const outBuf = d.createBuffer({
    size: out.byteLength,
    usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  });
  d.queue.writeBuffer(outBuf, 0, out);
  const read = d.createBuffer({
    size: out.byteLength,
    usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
  });
  const enc = d.createCommandEncoder();
  const pass = enc.beginComputePass();
  pass.setPipeline(pipeline);
  pass.setBindGroup(
    0,
    d.createBindGroup({
      layout,
      entries: [inBuf, outBuf].map((buffer, binding) => ({ binding, resource: { buffer } })),
    }),
  );
  pass.dispatchWorkgroups(...k.workgroups);
  pass.end();
  enc.copyBufferToBuffer(outBuf, 0, read, 0, out.byteLength);
  d.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  const result = new Int32Array(read.getMappedRange().slice(0));
  read.unmap();
  for (const b of [inBuf, outBuf, read]) b.destroy();
  return result;
}

Deno.test({
  name:
    `random integer kernels rendered to WGSL match the interpreter (${KERNELS} kernels, seed ${SEED})`,
  ignore: device === null,
  fn: async () => {
    const r = rng(SEED);
    for (let n = 0; n < KERNELS; n++) {
      const seed = Math.floor(r() * 2 ** 31);
      const k = randomKernel(rng(seed), THREADS);
      const input = Int32Array.from({ length: INPUTS }, () => Math.floor(r() * 4294967296) | 0);
      const expected = new Int32Array(THREADS * OUTPUTS).fill(-7);
      interpret(k, { in0: input, out0: expected });
      for (const [label, kernel] of [["as built", k], ["optimized", optimize(k)]] as const) {
        const got = await onDevice(kernel, input);
        assert.deepEqual(
          got,
          expected,
          `kernel seed ${seed} (${label}) differs on the device:\n${renderWgsl(kernel)}`,
        );
      }
    }
    console.log(
      `${KERNELS} random kernels, as built and optimized: equal on ${
        adapter!.info.description || "the adapter"
      }`,
    );
  },
});
