// Fault suite of the device: no adapter (really none: a subprocess whose Vulkan loader finds no
// driver, and a simulated one), an allocation over the adapter's maxBufferSize, and a lost
// device (destroyed under a backend of its own, with work in flight and after): each must end
// in a named error within a second, never a hang. The lost-device and allocation cases skip
// themselves, visibly, without an adapter.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { withBackend, withBackendAsync } from "../src/backend/registry.ts";
import { requestGpu, setAdapterHookForTesting } from "../src/backend/webgpu/device.ts";
import { WebGpuBackend } from "../src/backend/webgpu/webgpu_backend.ts";
import { gpu } from "../src/backend/webgpu/_gpu_test_util.ts";

const LIMIT_MS = 1000;
const opts = { ignore: gpu === null, sanitizeResources: false, sanitizeOps: false };

/** Awaits `p`, failing if it takes more than `LIMIT_MS` (so a hang fails, not stalls). */
async function withinLimit<T>(
  p: Promise<T>,
  what: string,
): Promise<{ value?: T; error?: Error; ms: number }> {
  const t0 = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${what}: no answer within ${LIMIT_MS} ms`)),
      LIMIT_MS,
    );
  });
  try {
    const value = await Promise.race([p, limit]);
    return { value, ms: performance.now() - t0 };
  } catch (e) {
    if ((e as Error).message.endsWith(`no answer within ${LIMIT_MS} ms`)) throw e;
    return { error: e as Error, ms: performance.now() - t0 };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("no adapter (simulated): a named error within a second", async () => {
  setAdapterHookForTesting(() => Promise.resolve(null));
  try {
    const r = await withinLimit(requestGpu(), "requestGpu()");
    assert.ok(r.error, "requestGpu() succeeded without an adapter");
    assert.match(r.error.message, /No WebGPU adapter: .*found none.*cpu backend/);
  } finally {
    setAdapterHookForTesting(null);
  }
});

Deno.test("no adapter (no Vulkan driver): initWebGpu() fails by name within a second", async () => {
  const script = `import * as cg from "${new URL("../mod.ts", import.meta.url).href}";
const t0 = performance.now();
try {
  await cg.initWebGpu();
  console.log("started");
} catch (e) {
  console.log(\`error after \${Math.round(performance.now() - t0)} ms: \${(e as Error).message}\`);
}`;
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/s.ts`, script);
    const r = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `${dir}/s.ts`],
      // wgpu limited to Vulkan, whose loader finds no driver: navigator.gpu has no adapter.
      env: {
        DENO_WEBGPU_BACKEND: "vulkan",
        VK_ICD_FILENAMES: `${dir}/none.json`,
        VK_DRIVER_FILES: `${dir}/none.json`,
      },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const out = new TextDecoder().decode(r.stdout);
    const err = new TextDecoder().decode(r.stderr);
    const m = out.match(/^error after (\d+) ms: (.*)$/m);
    assert.ok(m, `expected a named error, got: ${out}${err}`);
    assert.match(m[2], /No WebGPU adapter/);
    assert.ok(Number(m[1]) < LIMIT_MS, `took ${m[1]} ms`);
    console.log(`no Vulkan driver: "${m[2].slice(0, 80)}..." after ${m[1]} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "an allocation over maxBufferSize: a named error within a second",
  ...opts,
  async fn() {
    const limit = gpu!.gpu.limits.maxBufferSize;
    // A broadcast makes the output on the device: nothing that large exists on the host.
    const n = Math.floor(limit / 4 / 1024) + 1;
    // The output of a compiled call is a buffer of its own, made on the device.
    const f = cg.compile((a: cg.Tensor, b: cg.Tensor) => cg.add(a, b));
    const r = await withinLimit(
      (async () => {
        const big = withBackend(gpu!, () => f(cg.zeros([n, 1]), cg.zeros([1, 1024])));
        return await withBackend(gpu!, () => cg.max(big)).item();
      })(),
      "allocation over maxBufferSize",
    );
    assert.ok(r.error, `an allocation of ${4 * n * 1024} bytes succeeded (limit ${limit})`);
    // Named as what it is (was: "Cannot fit kernel add into 16 storage bindings").
    assert.match(r.error.message, /tensor \(\d+ bytes.*exceeds the adapter's maxBufferSize/);
    console.log(`over maxBufferSize (${limit} bytes): named error after ${r.ms.toFixed(0)} ms`);
    // The backend is still usable afterwards.
    const ok = await withBackendAsync(gpu!, () => cg.sum(cg.ones([8])).item());
    assert.equal(ok, 8);
  },
});

Deno.test({
  name: "a lost device: work in flight and later calls end in a named error within a second",
  ...opts,
  async fn() {
    // A device of its own: the shared one stays alive for the other suites.
    const own = new WebGpuBackend(await requestGpu());
    const x = cg.normal(cg.randomKey(1), [256, 256]);
    const warm = await withBackendAsync(own, () => cg.sum(cg.matmul(x, x)).item());
    assert.ok(Number.isFinite(warm));
    const inFlight = withBackend(own, () => cg.sum(cg.matmul(x, cg.transpose(x))));
    const reading = inFlight.data();
    own.gpu.device.destroy();
    const a = await withinLimit(reading, "a read in flight when the device was lost");
    // A read already submitted may complete or fail; it must not hang, and must not be NaN junk.
    if (a.error) {
      // Named (was wgpu's bare "Parent device is lost").
      assert.match(a.error.message, /The WebGPU device \(.*\) was lost/);
    } else assert.ok(Number.isFinite((a.value as Float32Array)[0]));
    // Wait for the loss to be reported, then every new call fails by name.
    await withinLimit(own.gpu.device.lost, "device.lost");
    const b = await withinLimit(
      withBackendAsync(own, () => cg.sum(cg.add(x, 1)).item()),
      "a call after the loss",
    );
    assert.ok(b.error, "a call on a lost device succeeded");
    assert.match(b.error.message, /The WebGPU device .* was lost/);
    console.log(
      `lost device: in-flight read ${
        a.error ? `failed (${a.error.message.slice(0, 90)})` : "completed"
      } after ${a.ms.toFixed(0)} ms; next call: named error after ${b.ms.toFixed(0)} ms`,
    );
  },
});
