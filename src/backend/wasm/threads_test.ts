import assert from "node:assert/strict";
import { WasmThreads } from "./threads.ts";
import { Code, I32, type Local, wasmModule } from "./_asm.ts";

/**
 * A module importing shared `env.memory` with `scale(begin, end, src, dst)`: dst[i] = 2 src[i]
 * (f32) for i in [begin, end), `addOne(begin, end, buf)`: buf[i] += 1, and `boom`, which traps.
 */
function testModule(): Uint8Array {
  const each = (params: number, body: (c: Code, i: Local) => void) => {
    const c = new Code(params);
    const i = c.local(I32);
    c.for(i, () => c.get(c.param(0)), c.param(1), 1, () => body(c, i));
    return c;
  };
  const at = (c: Code, base: Local, i: Local) => c.get(base).get(i).i32(2).shl().add();
  const scale = each(4, (c, i) => {
    at(c, c.param(3), i);
    at(c, c.param(2), i).f32Load().f32(2).f32Mul().f32Store();
  });
  const addOne = each(3, (c, i) => {
    at(c, c.param(2), i);
    at(c, c.param(2), i).f32Load().f32(1).f32Add().f32Store();
  });
  const boom = new Code(2);
  boom.unreachable();
  return wasmModule([
    { name: "scale", code: scale },
    { name: "addOne", code: addOne },
    { name: "boom", code: boom },
  ], { shared: true, maxPages: 64 });
}

const opts = { sanitizeResources: false, sanitizeOps: false };

Deno.test(
  "WasmThreads runs calls split across threads, in order, on shared memory",
  opts,
  async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
    const pool = await WasmThreads.create(memory, { threads: 3 });
    try {
      assert.equal(pool.threads, 3);
      const m = pool.load(testModule());
      const n = 1001;
      const f = new Float32Array(memory.buffer, 0, 3 * n);
      for (let i = 0; i < n; i++) f[i] = i;
      // dst = 2 src, then dst += 1 twice: each call reads what the one before wrote.
      pool.run([
        { module: m, fn: "scale", total: n, args: [0, 4 * n] },
        { module: m, fn: "addOne", total: n, args: [4 * n] },
        { module: m, fn: "addOne", total: n, args: [4 * n], grain: 600 },
        { module: m, fn: "scale", total: n, args: [4 * n, 8 * n] },
      ]);
      for (let i = 0; i < n; i++) {
        assert.equal(f[n + i], 2 * i + 2, `element ${i}`);
        assert.equal(f[2 * n + i], 4 * i + 4, `element ${i}`);
      }
      // Many runs back to back (the control words wrap around phases correctly).
      for (let r = 0; r < 200; r++) {
        pool.run([{
          module: m,
          fn: "addOne",
          total: n,
          args: [4 * n],
        }]);
      }
      assert.equal(f[n + 10], 22 + 200);
    } finally {
      pool.close();
    }
  },
);

Deno.test(
  "WasmThreads reports a trap in any thread, names the call, and keeps working",
  opts,
  async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
    const pool = await WasmThreads.create(memory, { threads: 2 });
    try {
      const m = pool.load(testModule());
      assert.throws(
        () => pool.run([{ module: m, fn: "boom", total: 10 }]),
        /WebAssembly kernel failed while running 1 kernel calls: thread [01]: .*(unreachable|boom)/,
      );
      assert.throws(
        () => pool.run([{ module: m, fn: "nope", total: 1 }]),
        /exports no function "nope"/,
      );
      assert.throws(() => pool.run([{ module: 7, fn: "scale", total: 1 }]), /no module 7/);
      assert.throws(
        () => pool.load(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 99])),
        /WebAssembly|section/,
      );
      const f = new Float32Array(memory.buffer, 0, 8);
      f.fill(1);
      pool.run([{ module: m, fn: "addOne", total: 8, args: [0] }]);
      assert.deepEqual([...f], Array(8).fill(2));
    } finally {
      pool.close();
    }
    assert.throws(() => pool.run([]), /closed/);
  },
);

Deno.test("WasmThreads falls back to one thread on memory that is not shared", opts, async () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const pool = await WasmThreads.create(memory, { threads: 4 });
  assert.equal(pool.threads, 1);
  pool.close();
});

Deno.test({
  name: "WasmThreads: cost of one run with a pool of 2 (a benchmark's figure, printed)",
  ...opts,
  fn: async () => {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 64, shared: true });
    const pool = await WasmThreads.create(memory, { threads: 2 });
    try {
      const m = pool.load(testModule());
      const t0 = performance.now();
      const runs = 2000;
      for (let r = 0; r < runs; r++) pool.run([{ module: m, fn: "addOne", total: 64, args: [0] }]);
      const us = (performance.now() - t0) / runs * 1000;
      console.log(`one run of one small call on 2 threads: ${us.toFixed(1)} µs`);
      assert.ok(Number.isFinite(us));
    } finally {
      pool.close();
    }
  },
});
