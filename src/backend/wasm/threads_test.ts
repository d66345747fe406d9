import assert from "node:assert/strict";
import { WasmThreads } from "./threads.ts";

/** LEB128 of an unsigned value. */
function uleb(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}
const section = (id: number, body: number[]) => [id, ...uleb(body.length), ...body];
const vec = (items: number[][]) => [...uleb(items.length), ...items.flat()];
const str = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];

/**
 * A module importing shared `env.memory` with `scale(begin, end, src, dst)`: dst[i] = 2 src[i]
 * (f32) for i in [begin, end), `addOne(begin, end, buf)`: buf[i] += 1, and `boom`, which traps.
 */
function testModule(): Uint8Array {
  const i32 = 0x7f;
  const types = vec([
    [0x60, ...vec([[i32], [i32], [i32], [i32]]), 0],
    [0x60, ...vec([[i32], [i32], [i32]]), 0],
    [0x60, ...vec([[i32], [i32]]), 0],
  ]);
  const imports = vec([[...str("env"), ...str("memory"), 0x02, 0x03, 1, ...uleb(64)]]);
  const funcs = vec([[0], [1], [2]]);
  const exports = vec([
    [...str("scale"), 0x00, 0],
    [...str("addOne"), 0x00, 1],
    [...str("boom"), 0x00, 2],
  ]);
  const addr = (base: number) => [0x20, base, 0x20, 0, 0x41, 2, 0x74, 0x6a];
  const loop = (body: number[]) => [
    0x02,
    0x40,
    0x03,
    0x40,
    0x20,
    0,
    0x20,
    1,
    0x4e,
    0x0d,
    1,
    ...body,
    0x20,
    0,
    0x41,
    1,
    0x6a,
    0x21,
    0,
    0x0c,
    0,
    0x0b,
    0x0b,
  ];
  const two = [...new Uint8Array(new Float32Array([2]).buffer)];
  const one = [...new Uint8Array(new Float32Array([1]).buffer)];
  const scale = [
    0,
    ...loop([...addr(3), ...addr(2), 0x2a, 2, 0, 0x43, ...two, 0x94, 0x38, 2, 0]),
    0x0b,
  ];
  const addOne = [
    0,
    ...loop([...addr(2), ...addr(2), 0x2a, 2, 0, 0x43, ...one, 0x92, 0x38, 2, 0]),
    0x0b,
  ];
  const boom = [0, 0x00, 0x0b];
  const code = vec([scale, addOne, boom].map((b) => [...uleb(b.length), ...b]));
  return new Uint8Array([
    0x00,
    0x61,
    0x73,
    0x6d,
    1,
    0,
    0,
    0,
    ...section(1, types),
    ...section(2, imports),
    ...section(3, funcs),
    ...section(7, exports),
    ...section(10, code),
  ]);
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
