import assert from "node:assert/strict";
import { setBackend } from "../mod.ts";
import {
  gapTable,
  main,
  normalizeRows2d,
  runToyMargins,
  settingSvgs,
  toySettings,
} from "./toy_margin_2d.ts";

Deno.test("toySettings() lists softmax then CosFace at each margin", () => {
  const s = toySettings({ scale: 8 });
  assert.deepEqual(s.map((x) => x.name), ["softmax", "cosface_m0", "cosface_m0.1", "cosface_m0.2"]);
  assert.deepEqual(s[3].spec, { kind: "cosface", s: 8, m: 0.2 });
});

Deno.test("normalizeRows2d() scales rows to unit length and keeps zero rows", () => {
  const n = normalizeRows2d(new Float32Array([3, 4, 0, 0, 0, -2]));
  assert.deepEqual(Array.from(n), [0.6000000238418579, 0.800000011920929, 0, 0, 0, -1]);
});

Deno.test("runToyMargins() trains every setting on cpu with finite losses and measured gaps", async () => {
  await setBackend("cpu");
  const results = await runToyMargins({ steps: 30, perClass: 8 });
  assert.equal(results.length, 4);
  for (const r of results) {
    assert.ok(Number.isFinite(r.firstLoss) && Number.isFinite(r.lastLoss), r.name);
    assert.ok(r.lastLoss < r.firstLoss, `${r.name}: loss ${r.firstLoss} -> ${r.lastLoss}`);
    assert.equal(r.features.length, 2 * 64);
    assert.equal(r.gaps.gaps.length, 8);
    assert.ok(Number.isFinite(r.gaps.min) && r.gaps.min <= r.gaps.mean, r.name);
    // Every gap is an arc of the circle, less than a full turn.
    for (const g of r.gaps.gaps) assert.ok(Math.abs(g.gap) < 2 * Math.PI);
  }
  // Same seed and data: the first step's loss depends only on the loss, not the run.
  assert.equal(results[0].firstLoss, (await runToyMargins({ steps: 1, perClass: 8 }))[0].firstLoss);
  const table = gapTable(results);
  assert.equal(table.split("\n").length, 5);
  assert.match(table, /cosface_m0\.2\s+-?[0-9]+\.[0-9]/);
  const svgs = settingSvgs(results[3]);
  for (const svg of [svgs.euclidean, svgs.angular]) {
    assert.ok(svg.startsWith("<svg") && !svg.includes("NaN"));
  }
});

Deno.test("main() writes two SVGs per setting", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await main([
      "--backend",
      "cpu",
      "--steps",
      "5",
      "--per-class",
      "4",
      "--out",
      out,
      "--quiet",
    ]);
    assert.equal(r.length, 4);
    const files = [...Deno.readDirSync(out)].map((e) => e.name).sort();
    assert.deepEqual(files, [
      "cosface_m0.1_angular.svg",
      "cosface_m0.1_euclidean.svg",
      "cosface_m0.2_angular.svg",
      "cosface_m0.2_euclidean.svg",
      "cosface_m0_angular.svg",
      "cosface_m0_euclidean.svg",
      "softmax_angular.svg",
      "softmax_euclidean.svg",
    ]);
    const svg = await Deno.readTextFile(`${out}/softmax_angular.svg`);
    assert.match(svg, /^<svg[\s\S]*<\/svg>$/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("main() rejects bad options with usage errors naming the flag and the range", async () => {
  const cases: [string[], RegExp][] = [
    [["--backend", "tpu"], /--backend expects one of cpu, wasm, webgpu, got "tpu"/],
    [["--steps", "0"], /--steps expects an integer of at least 1, got "0"/],
    [["--steps", "abc"], /--steps expects an integer of at least 1, got "abc"/],
    [["--per-class", "2.5"], /--per-class expects an integer of at least 1, got "2.5"/],
    [["--scale=-1"], /--scale expects a number greater than 0, got "-1"/],
    [["--lr", "0"], /--lr expects a number greater than 0, got "0"/],
    [["--seed=-3"], /--seed expects an integer from 0 to 4294967295, got "-3"/],
    [["--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    await assert.rejects(() => main([...args, "--quiet"]), (e: Error) => {
      assert.equal(e.name, "UsageError");
      assert.match(e.message, message);
      return true;
    });
  }
});

Deno.test("toy_margin_2d.ts exits 2 with error: and no stack trace on a bad option", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-env",
      new URL("./toy_margin_2d.ts", import.meta.url).pathname,
      "--steps",
      "x",
    ],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 2, stderr);
  assert.match(stderr, /^error: --steps expects an integer of at least 1, got "x"/);
  assert.doesNotMatch(stderr, /\n\s+at /);
});
