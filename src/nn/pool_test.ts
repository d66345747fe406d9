import fc from "../../test/_fast_check.ts";
import assert from "node:assert/strict";
import * as cg from "../../mod.ts";
import { avgPool2d, globalAvgPool, maxPool2d } from "./pool.ts";

/** Brute-force pooling over padded windows (max: padding never wins; avg: zeros count). */
function hostPool(
  kind: "max" | "avg",
  x: number[],
  [n, c, h, w]: number[],
  [kh, kw, sh, sw, ph, pw]: number[],
): number[] {
  const ho = Math.floor((h + 2 * ph - kh) / sh) + 1, wo = Math.floor((w + 2 * pw - kw) / sw) + 1;
  const out: number[] = [];
  for (let b = 0; b < n * c; b++) {
    for (let i = 0; i < ho; i++) {
      for (let j = 0; j < wo; j++) {
        let acc = kind === "max" ? -Infinity : 0;
        for (let di = 0; di < kh; di++) {
          for (let dj = 0; dj < kw; dj++) {
            const y = i * sh - ph + di, z = j * sw - pw + dj;
            const inside = y >= 0 && y < h && z >= 0 && z < w;
            const v = inside ? x[(b * h + y) * w + z] : 0;
            if (kind === "max") acc = inside ? Math.max(acc, v) : acc;
            else acc += v;
          }
        }
        out.push(kind === "max" ? acc : acc / (kh * kw));
      }
    }
  }
  return out;
}

const poolArb = fc.record({
  kh: fc.integer({ min: 1, max: 3 }),
  kw: fc.integer({ min: 1, max: 3 }),
  sh: fc.integer({ min: 1, max: 3 }),
  sw: fc.integer({ min: 1, max: 3 }),
  n: fc.integer({ min: 1, max: 2 }),
  c: fc.integer({ min: 1, max: 2 }),
  h: fc.integer({ min: 3, max: 7 }),
  w: fc.integer({ min: 3, max: 7 }),
  pad: fc.boolean(),
}).chain((p) => {
  const ph = p.pad ? Math.floor(p.kh / 2) : 0, pw = p.pad ? Math.floor(p.kw / 2) : 0;
  const size = p.n * p.c * p.h * p.w;
  return fc.record({
    p: fc.constant({ ...p, ph, pw }),
    x: fc.array(fc.integer({ min: -1000, max: 1000 }).map((i) => i / 100), {
      minLength: size,
      maxLength: size,
    }),
  });
});

Deno.test("maxPool2d() and avgPool2d() match brute force for any kernel, stride and padding", async () => {
  await fc.assert(
    fc.asyncProperty(poolArb, async ({ p, x }) => {
      const shape = [p.n, p.c, p.h, p.w];
      const t = cg.tensor(x, shape, { dtype: "float64" });
      const o = {
        kernel: [p.kh, p.kw] as [number, number],
        stride: [p.sh, p.sw] as [number, number],
        padding: [p.ph, p.pw] as [number, number],
      };
      const cfg = [p.kh, p.kw, p.sh, p.sw, p.ph, p.pw];
      for (const [kind, f] of [["max", maxPool2d], ["avg", avgPool2d]] as const) {
        const got = [...await f(t, o).data()];
        const want = hostPool(kind, x, shape, cfg);
        assert.equal(got.length, want.length);
        got.forEach((g, i) =>
          assert.ok(Math.abs(g - want[i]) < 1e-12, `${kind}[${i}] ${g} != ${want[i]}`)
        );
      }
    }),
    { seed: 20180126, numRuns: 40 },
  );
});

Deno.test("pooling gradients pass checkGrad (max with distinct values)", async () => {
  const x = cg.tensor(Array.from({ length: 2 * 1 * 5 * 5 }, (_, i) => Math.sin(i * 1.7) * 3), [
    2,
    1,
    5,
    5,
  ]);
  for (const o of [{ kernel: 2 }, { kernel: 3, stride: 2, padding: 1 }] as const) {
    await cg.checkGrad((a: cg.Tensor) => maxPool2d(a, o), [x]);
    await cg.checkGrad((a: cg.Tensor) => avgPool2d(a, o), [x]);
  }
  await cg.checkGrad((a: cg.Tensor) => globalAvgPool(a), [x]);
});

Deno.test("pooling shapes and errors", async () => {
  const x = cg.reshape(cg.arange(16), [1, 1, 4, 4]);
  assert.deepEqual([...await maxPool2d(x, { kernel: 2 }).data()], [5, 7, 13, 15]);
  assert.deepEqual(globalAvgPool(cg.ones([2, 3, 4, 4])).shape, [2, 3]);
  assert.deepEqual(maxPool2d(cg.ones([1, 1, 7, 7]), { kernel: 3, stride: 2, padding: 1 }).shape, [
    1,
    1,
    4,
    4,
  ]);
  assert.throws(() => maxPool2d(cg.ones([4, 4]), { kernel: 2 }), /\[N, C, H, W\]/);
  assert.throws(() => maxPool2d(x, { kernel: 2, padding: 2 }), /padding must be integers/);
  assert.throws(() => avgPool2d(x, { kernel: 5 }), /larger than the padded input/);
});
