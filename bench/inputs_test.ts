import assert from "node:assert/strict";
import {
  fmix32,
  inputData,
  networkParams,
  seededLabels,
  seededValues,
  seedKey,
  WORKLOADS,
} from "./_inputs.ts";

Deno.test("fmix32() matches murmur3's finaliser on hand-computed values", () => {
  assert.equal(fmix32(0), 0);
  // 1 -> 0x514e28b7 is the known murmur3 fmix32(1); the others computed by hand in Python.
  assert.equal(fmix32(1), 0x514e28b7);
  assert.equal(fmix32(0xdeadbeef), 0x0de5c6a9);
  assert.equal(seedKey(1), 2462723854);
});

Deno.test("seededValues() and seededLabels() give the WORKLOADS.md numbers", () => {
  // key(1) = 2462723854; h0 = fmix32(key) = 2856213345; (2 * (h0 >>> 8) / 2^24 - 1) = 0.33002...
  assert.deepEqual(Array.from(seededValues(1, 3, 1)), [
    0.3300279378890991,
    -0.13247203826904297,
    0.32554829120635986,
  ]);
  assert.deepEqual(Array.from(seededLabels(23, 5, 10000)), [1256, 2467, 6487, 43, 7376]);
  const v = seededValues(12, 10000, 1 / 24);
  assert.ok(v.every((x) => x >= -1 / 24 && x < 1 / 24));
  assert.throws(() => seededValues(-1, 3), RangeError);
});

Deno.test("WORKLOADS and networkParams() have the documented shapes", () => {
  assert.equal(inputData(WORKLOADS.L1.inputs.weights).length, 10000 * 512);
  assert.deepEqual(WORKLOADS.C1.inputs.dy.shape, [16, 64, 56, 56]);
  const p = networkParams({ size: 64, classes: 1000 });
  assert.deepEqual(p.convs.map((c) => c.shape), [
    [32, 3, 3, 3],
    [32, 32, 3, 3],
    [64, 32, 3, 3],
    [64, 64, 3, 3],
    [128, 64, 3, 3],
    [128, 128, 3, 3],
    [256, 128, 3, 3],
    [256, 256, 3, 3],
  ]);
  assert.deepEqual(p.linear.shape, [4096, 128]);
  assert.deepEqual(p.classWeights.shape, [1000, 128]);
});

Deno.test("bench/_inputs.py agrees with bench/_inputs.ts", async (t) => {
  let out;
  try {
    out = await new Deno.Command("python3", {
      args: [new URL("./_inputs.py", import.meta.url).pathname],
      stdout: "piped",
      stderr: "piped",
    }).output();
  } catch {
    t.step({ name: "skipped: python3 not found", ignore: true, fn: () => {} });
    return;
  }
  assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
  const py = JSON.parse(new TextDecoder().decode(out.stdout));
  assert.deepEqual(py.fmix32, [fmix32(0), fmix32(1), fmix32(0xdeadbeef)]);
  assert.deepEqual(py.values["1"], Array.from(seededValues(1, 5, 1)));
  assert.deepEqual(py.values["12"], Array.from(seededValues(12, 5, 1 / 24)));
  assert.deepEqual(py.values["22"], Array.from(seededValues(22, 5, 1)));
  assert.deepEqual(py.labels, Array.from(seededLabels(23, 5, 10000)));
  if (py.values_np) assert.deepEqual(py.values_np["1"], Array.from(seededValues(1, 5, 1)));
});

Deno.test("the project carries its workload definitions: bench/WORKLOADS.md, no ../shared links", async () => {
  const root = new URL("../", import.meta.url);
  const workloads = await Deno.readTextFile(new URL("bench/WORKLOADS.md", root));
  assert.match(workloads, /35\.8995/);
  for (const file of ["README.md", "BENCHMARKS.md", "ARCHITECTURE.md"]) {
    const text = await Deno.readTextFile(new URL(file, root));
    assert.doesNotMatch(text, /\.\.\/shared\/|shared\/WORKLOADS\.md/, file);
  }
});
