// Dependencies by use: the library and the examples download only what they import (protobufjs
// is the ONNX codec of src/io). The root
// deno.lock (used by `deno run` of mod.ts and the examples) holds their npm packages only; the
// benchmark peers and test tools (TensorFlow.js, jax-js, esbuild, playwright, fast-check) are
// imported by npm: specifiers where they are used and pinned in deno.dev.lock, which the
// test, bench, compare and build tasks use.
import assert from "node:assert/strict";

const ROOT = new URL("../", import.meta.url);
const LIBRARY_PACKAGES = ["fast-png", "jpeg-js", "protobufjs"];

async function json(name: string) {
  return JSON.parse(await Deno.readTextFile(new URL(name, ROOT)));
}

Deno.test("the root deno.json and deno.lock name only the library's npm packages", async () => {
  const config = await json("deno.json");
  assert.deepEqual(Object.keys(config.imports).sort(), LIBRARY_PACKAGES);
  const lock = await json("deno.lock");
  const direct = Object.keys(lock.specifiers ?? {}).map((s) => s.replace(/^npm:|@[^@]*$/g, ""));
  assert.deepEqual(direct.sort(), LIBRARY_PACKAGES);
  // Frozen: a bench or test run that forgets --lock=deno.dev.lock fails, naming the lockfile
  // changes, instead of adding the peers to the lockfile every user installs in full.
  assert.deepEqual(config.lock, { path: "./deno.lock", frozen: true });
  for (const task of ["test", "bench", "compare", "build"]) {
    assert.match(config.tasks[task], /--lock=deno\.dev\.lock/, `task ${task}`);
  }
});

Deno.test("the main example's module graph needs no npm package outside the root lock", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", new URL("examples/train_cosface.ts", ROOT).href],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    npmPackages?: Record<string, unknown>;
  };
  const lock = await json("deno.lock");
  for (const pkg of Object.keys(info.npmPackages ?? {})) {
    assert.ok(pkg in lock.npm, `${pkg} is not in the root deno.lock`);
  }
});
