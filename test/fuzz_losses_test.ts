// Fuzz suite of the losses: generated cases through every loss, forward and backward, on cpu
// and webgpu. A case is one embedding row with its label, drawn from the degenerate regimes
// (zero, tiny and huge embeddings, cosines of exactly +1 and -1 with the target and with
// another class, duplicate labels, zero and duplicate class weights), run at scales up to
// s = 1e3 and margins at their bounds. Valid inputs must give a finite loss and finite
// gradients; invalid ones (labels out of range, s <= 0, non-finite or out-of-range margins)
// a named error. CI runs 384 valid cases per backend; COSGRAD_FUZZ=full runs 14,976 per
// backend (COSGRAD_FAULT_OUT=file.json writes the figures).
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import * as L from "../src/losses/mod.ts";
import { cpuBackend, withBackendAsync } from "../src/backend/registry.ts";
import type { Backend } from "../src/backend/storage.ts";
import { gpu } from "../src/backend/webgpu/_gpu_test_util.ts";
import { mulberry32 } from "../src/eval/_random.ts";

type T = cg.Tensor;
const FULL = Deno.env.get("COSGRAD_FUZZ") === "full";
const SEED = Number(Deno.env.get("COSGRAD_PROPERTY_SEED") ?? 20180126);
/** Rows per call and calls per (loss, option) point. */
const ROWS = FULL ? 128 : 32;
const REPEATS = FULL ? 3 : 1;
const C = 6, D = 8;
/** CosFace's bound for C <= D + 1 (Eq. 7): C / (C - 1). */
const COSFACE_MAX = L.marginUpperBound(C, D);

interface Spec {
  name: string;
  /** Option points: every one in full runs, the first and last in CI. */
  options: Record<string, number>[];
  /**
   * The largest embedding norm of the loss's valid domain (default 1e30). SphereFace's logits
   * are |x| cos θ, so a zero class weight (gradient |x| / 1e-12, the normalisation's floor)
   * overflows float32 past |x| = 1e26: its huge rows are 1e20.
   */
  huge?: number;
  loss: (e: T, w: T, y: T | Int32Array, o: Record<string, number>) => T;
}

const S = [1, 64, 1000];
const SPECS: Spec[] = [
  {
    name: "softmaxCrossEntropy",
    options: [{}],
    loss: (e, w, y) => L.softmaxCrossEntropy(e, w, y),
  },
  { name: "nsl", options: S.map((s) => ({ s })), loss: (e, w, y, o) => L.nsl(e, w, y, o) },
  {
    name: "cosface",
    options: S.flatMap((s) => [0, 0.35, COSFACE_MAX].map((m) => ({ s, m }))),
    loss: (e, w, y, o) => L.cosface(e, w, y, o),
  },
  {
    name: "arcface",
    options: S.flatMap((s) => [0, 0.5, Math.PI - 1e-6].map((m) => ({ s, m }))),
    loss: (e, w, y, o) => L.arcface(e, w, y, o),
  },
  {
    name: "sphereface",
    options: [1, 2, 4, 10].flatMap((m) => [0, 5].map((lambda) => ({ m, lambda }))),
    loss: (e, w, y, o) => L.sphereface(e, w, y, o),
    huge: 1e20,
  },
  {
    name: "combinedMargin",
    options: S.flatMap((s) =>
      [[1, 0, 0], [0.9, 0.4, 0.15], [2, 0.5, 0.35]].map(([m1, m2, m3]) => ({ s, m1, m2, m3 }))
    ),
    loss: (e, w, y, o) => L.combinedMargin(e, w, y, o),
  },
];

const KINDS = [
  "random",
  "zero",
  "tiny (1e-30)",
  "subnormal (1e-40)",
  "huge (1e30, 1e20 for SphereFace)",
  "cos = +1 with its class",
  "cos = -1 with its class",
  "cos = +1 with another class",
] as const;

/** One batch of cases: class weights (a zero row, a duplicated row) and rows of every kind. */
function problem(random: () => number, huge: number) {
  const normal = () => {
    const u = Math.max(random(), 1e-12), v = random();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const w = Float32Array.from({ length: C * D }, normal);
  w.fill(0, 0, D); // class 0: zero weights
  w.copyWithin(2 * D, D, 2 * D); // class 2 duplicates class 1
  const labels = Int32Array.from({ length: ROWS }, () => Math.floor(random() * C));
  const kinds = Int32Array.from({ length: ROWS }, () => Math.floor(random() * KINDS.length));
  const e = new Float32Array(ROWS * D);
  for (let i = 0; i < ROWS; i++) {
    const row = e.subarray(i * D, (i + 1) * D);
    const y = labels[i];
    const other = (y + 1 + Math.floor(random() * (C - 1))) % C;
    switch (KINDS[kinds[i]]) {
      case "random":
        row.set(Array.from({ length: D }, normal));
        break;
      case "zero":
        break;
      case "tiny (1e-30)":
        row.set(Array.from({ length: D }, () => normal() * 1e-30));
        break;
      case "subnormal (1e-40)":
        row.set(Array.from({ length: D }, () => normal() * 1e-40));
        break;
      case "huge (1e30, 1e20 for SphereFace)":
        row.set(Array.from({ length: D }, () => normal() * huge));
        break;
      case "cos = +1 with its class":
        row.set(w.subarray(y * D, (y + 1) * D));
        break;
      case "cos = -1 with its class":
        row.set(w.subarray(y * D, (y + 1) * D).map((v) => -v));
        break;
      case "cos = +1 with another class":
        row.set(w.subarray(other * D, (other + 1) * D));
        break;
    }
  }
  return { w, e, labels, kinds };
}

const finite = (a: ArrayLike<number>) => Array.prototype.every.call(a, Number.isFinite);

/** Runs every loss at its option points; returns the number of valid cases checked. */
async function fuzzValid(backend: Backend, label: string): Promise<number> {
  const random = mulberry32(SEED);
  let cases = 0;
  await withBackendAsync(backend, async () => {
    for (const spec of SPECS) {
      const points = FULL ? spec.options : [spec.options[0], spec.options.at(-1)!];
      for (const o of points) {
        const step = cg.compile((p: { e: T; w: T }, y: T) => {
          const [v, g] = cg.valueAndGrad((q: { e: T; w: T }) => spec.loss(q.e, q.w, y, o))(p) as [
            T,
            { e: T; w: T },
          ];
          return [v, g.e, g.w];
        });
        for (let r = 0; r < REPEATS; r++) {
          const pr = problem(random, spec.huge ?? 1e30);
          const [v, ge, gw] = step(
            { e: cg.tensor(pr.e, [ROWS, D]), w: cg.tensor(pr.w, [C, D]) },
            cg.tensor(pr.labels, [ROWS], { dtype: "int32" }),
          ) as T[];
          const [value, de, dw] = await Promise.all([v.data(), ge.data(), gw.data()]);
          const where = `${label} ${spec.name}(${JSON.stringify(o)})`;
          assert.ok(finite(value), `${where}: loss ${value[0]}`);
          for (let i = 0; i < ROWS; i++) {
            assert.ok(
              finite(de.subarray(i * D, (i + 1) * D)),
              `${where}: non-finite embedding gradient at row ${i} (${KINDS[pr.kinds[i]]})`,
            );
          }
          assert.ok(finite(dw), `${where}: non-finite class-weight gradient`);
          cases += ROWS;
        }
      }
    }
  });
  return cases;
}

/** Invalid inputs: each must be refused with a named error (or, for labels only known on the
 * device, give a non-finite loss rather than a silent one). Returns the number of cases. */
async function fuzzInvalid(backend: Backend): Promise<number> {
  let cases = 0;
  await withBackendAsync(backend, async () => {
    const e = cg.tensor(new Float32Array(4 * D).fill(1), [4, D]);
    const w = cg.tensor(Float32Array.from({ length: C * D }, (_, i) => Math.sin(i)), [C, D]);
    for (const spec of SPECS) {
      const o = spec.options.at(-1)!;
      const refuse = (y: Int32Array, opt: Record<string, number>, message: RegExp) => {
        assert.throws(
          () => spec.loss(e, w, y, opt),
          (err: Error) => err instanceof RangeError && message.test(err.message),
          `${spec.name}(${JSON.stringify(opt)}) labels ${y}`,
        );
        cases++;
      };
      for (const bad of [-1, C, 2 ** 31 - 1]) {
        const y = new Int32Array([0, 1, bad, 2]);
        refuse(y, o, new RegExp(`${spec.name}: label ${bad} at index 2 is outside \\[0, ${C}\\)`));
      }
      refuse(new Int32Array([0, 1, 2]), o, /expected 4 labels/);
      for (
        const key of Object.keys(o).filter((k) => ["s", "m", "m2", "m3", "lambda"].includes(k))
      ) {
        for (const v of [NaN, Infinity, -Infinity]) {
          refuse(
            new Int32Array([0, 1, 2, 3]),
            { ...o, [key]: v },
            new RegExp(`${spec.name}: ${key} must be`),
          );
        }
      }
      if ("s" in o) {
        for (const v of [0, -1]) {
          refuse(new Int32Array([0, 1, 2, 3]), { ...o, s: v }, /s must be a finite positive/);
        }
      }
      // Labels in a tensor are only known on the device: out of range, the loss is not finite.
      const y = cg.tensor(new Int32Array([0, 1, C, 2]), [4], { dtype: "int32" });
      const v = await spec.loss(e, w, y, o).data();
      assert.ok(!Number.isFinite(v[0]), `${spec.name}: out-of-range tensor label gave ${v[0]}`);
      cases++;
    }
    for (const m of [1.5, 0, -2]) {
      assert.throws(() => L.sphereface(e, w, new Int32Array(4), { m }), /m must be an integer/);
      cases++;
    }
    for (const m of [Math.PI, -0.1]) {
      // Named as the caller named it: arcface's option is m (was reported as "m2").
      assert.throws(
        () => L.arcface(e, w, new Int32Array(4), { m }),
        /arcface: m must be in \[0, π\)/,
      );
      cases++;
    }
  });
  return cases;
}

const figures: Record<string, number> = {};

async function writeFigures() {
  const file = Deno.env.get("COSGRAD_FAULT_OUT");
  if (file) await Deno.writeTextFile(file, JSON.stringify(figures, null, 1));
}

Deno.test("every loss, forward and backward, is finite on degenerate inputs (cpu)", async () => {
  const t0 = performance.now();
  figures.cpuValid = await fuzzValid(cpuBackend(), "cpu");
  figures.cpuInvalid = await fuzzInvalid(cpuBackend());
  figures.cpuSeconds = Math.round((performance.now() - t0) / 100) / 10;
  console.log(`cpu: ${figures.cpuValid} valid cases finite, ${figures.cpuInvalid} invalid refused`);
  await writeFigures();
});

Deno.test({
  name: "every loss, forward and backward, is finite on degenerate inputs (webgpu)",
  ignore: gpu === null,
  fn: async () => {
    const t0 = performance.now();
    figures.webgpuValid = await fuzzValid(gpu!, "webgpu");
    figures.webgpuInvalid = await fuzzInvalid(gpu!);
    figures.webgpuSeconds = Math.round((performance.now() - t0) / 100) / 10;
    console.log(
      `webgpu: ${figures.webgpuValid} valid cases finite, ${figures.webgpuInvalid} invalid refused`,
    );
    await writeFigures();
  },
});
