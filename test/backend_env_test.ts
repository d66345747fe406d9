// COSGRAD_BACKEND alone selects and starts the backend of a plain script, with no
// initDefaultBackend() or setBackend() call; a bad value is refused naming the variable.
import assert from "node:assert/strict";
import { gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

const mod = new URL("../mod.ts", import.meta.url).href;
const script = `import * as cg from "${mod}";
const y = cg.sum(cg.mul(cg.tensor([1, 2, 3]), 2));
console.log(cg.getBackend().name, (await y.data())[0]);`;

async function runWith(value: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", script],
    env: { COSGRAD_BACKEND: value, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test({
  name: "COSGRAD_BACKEND=webgpu alone runs a plain script on webgpu",
  ignore: gpu === null,
  fn: async () => {
    const r = await runWith("webgpu");
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), "webgpu 12");
  },
});

Deno.test("COSGRAD_BACKEND=cpu runs on cpu; an unknown value is refused naming it", async () => {
  const cpu = await runWith("cpu");
  assert.equal(cpu.code, 0, cpu.stderr);
  assert.equal(cpu.stdout.trim(), "cpu 12");
  const bad = await runWith("tpu");
  assert.notEqual(bad.code, 0);
  assert.match(bad.stderr, /Invalid COSGRAD_BACKEND=tpu: expected cpu, wasm or webgpu/);
});

Deno.test("initDefaultBackend() says why WebGPU did not start when it falls back", async () => {
  const device = new URL("../src/backend/webgpu/device.ts", import.meta.url).href;
  const code = `import * as cg from "${mod}";
import { setAdapterHookForTesting } from "${device}";
setAdapterHookForTesting(() => Promise.resolve(null));
console.log((await cg.initDefaultBackend()).name);`;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", code],
    env: { COSGRAD_BACKEND: "", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const d = new TextDecoder();
  assert.equal(out.code, 0, d.decode(out.stderr));
  const name = d.decode(out.stdout).trim();
  assert.ok(name === "wasm" || name === "cpu", name);
  assert.match(
    d.decode(out.stderr),
    new RegExp(
      `cosgrad: using the ${name} backend; WebGPU did not start:? \\(?No WebGPU adapter: .*found none`,
    ),
  );
});
