// Device errors surface where they belong: a pipeline's compile error on the runs and reads that
// use it (not on an unrelated later call), and every pending device error, not only the first.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { withBackendAsync } from "../src/backend/registry.ts";
import { rangeCodeCount } from "../src/backend/range_errors.ts";
import { gpu } from "../src/backend/webgpu/_gpu_test_util.ts";
import type { GpuStorage } from "../src/backend/webgpu/buffers.ts";

const ignore = gpu === null;

/** A device tensor with no host copy, as a program's output is: its read goes to the device. */
function onDevice(values: number[]): GpuStorage {
  const s = gpu!.fromHost(new Float32Array(values)) as GpuStorage;
  s.host = null;
  return s;
}

Deno.test({
  name: "a WGSL compile error surfaces on the read of what the pipeline wrote, not elsewhere",
  ignore,
  fn: async () => {
    const b = gpu!;
    const bad = b.pipeline("fn main( { not wgsl", "k_broken", ["write"]);
    const written = onDevice([1, 2]);
    b.markWritten([written.buffer], [bad], []);
    // A tensor the broken pipeline never touched reads back fine.
    const other = onDevice([3, 4]);
    assert.deepEqual(Array.from(await other.read()), [3, 4]);
    // What the pipeline wrote reports its compile error, with the kernel's name.
    await assert.rejects(written.read(), /WGSL compile error in kernel k_broken/);
    // So does the next program that asks for the same pipeline, and a run that uses it.
    assert.throws(() => b.pipeline("fn main( { not wgsl", "k_broken", ["write"]), /k_broken/);
    assert.throws(() => b.checkPipelines([bad]), /k_broken/);
    // Unrelated work still runs and reads.
    const again = onDevice([5]);
    assert.deepEqual(Array.from(await again.read()), [5]);
  },
});

Deno.test({
  name: "a read of a tensor computed from a broken pipeline's output reports the error too",
  ignore,
  fn: async () => {
    const b = gpu!;
    const bad = b.pipeline("fn main( { still not wgsl", "k_broken_2", ["write"]);
    const first = onDevice([1]);
    const second = onDevice([2]);
    b.markWritten([first.buffer], [bad], []);
    b.markWritten([second.buffer], [], [first.buffer]); // a clean program read `first`
    await assert.rejects(second.read(), /k_broken_2/);
  },
});

Deno.test({
  name: "every pending device error is reported, not only the first",
  ignore,
  fn: () => {
    const b = gpu!;
    b.gpu.errors.push(new Error("first problem"), new Error("second problem"));
    assert.throws(() => b.checkUsable(), (e: Error) => {
      assert.ok(e instanceof AggregateError);
      assert.equal(e.errors.length, 2);
      assert.match(e.message, /2 WebGPU errors on .*\n1\. first problem\n2\. second problem/);
      return true;
    });
    b.checkUsable(); // reported once, then clear
  },
});

Deno.test({
  name: "out-of-range reports stay bounded and exact for the kernels in use",
  ignore,
  fn: async () => {
    const before = rangeCodeCount(3);
    try {
      await withBackendAsync(gpu!, async () => {
        for (let n = 2; n < 10; n++) {
          const x = cg.reshape(cg.iota([n], 0), [1, n]);
          const bad = cg.takeAlongAxis(x, cg.tensor(new Int32Array([n + 1]), [1, 1]), 1);
          await assert.rejects(
            () => bad.data(),
            new RegExp(`gather: index ${n + 1} is out of range \\[0, ${n}\\) on axis 1`),
          );
          assert.ok(rangeCodeCount() <= 3, `${rangeCodeCount()} codes kept`);
        }
      });
    } finally {
      rangeCodeCount(4096);
    }
    assert.ok(before <= 4096);
  },
});
