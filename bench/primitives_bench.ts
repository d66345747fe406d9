// Deno.bench suites of primitives and kernels (`deno task bench`), on the cpu backend and on
// webgpu when an adapter exists. Each WebGPU case reads one value back, so it includes one
// host wait (about 11 ms in Deno); `deno task compare` has the throughput figures.
import * as cg from "../mod.ts";

const key = cg.randomKey(0);
const a256 = cg.normal(key, [256, 256]);
const b256 = cg.normal(cg.split(key)[1], [256, 256]);
const x = cg.normal(key, [8, 16, 32, 32]);
const w = cg.normal(key, [16, 16, 3, 3], { std: 0.1 });
const emb = cg.normal(key, [64, 128]);
const head = cg.normal(key, [1000, 128]);
const labels = cg.tensor(Int32Array.from({ length: 64 }, (_, i) => (i * 37) % 1000));

const cases: Record<string, () => cg.Tensor> = {
  "matmul 256": () => cg.matmul(a256, b256),
  "elementwise chain 256x256": () => cg.tanh(cg.add(cg.mul(a256, b256), cg.exp(cg.neg(a256)))),
  "softmax rows 256x256": () => cg.softmax(a256),
  "conv2d 8x16x32x32 3x3": () => cg.conv2d(x, w, { padding: 1 }),
  "cosface fwd+bwd 64x128, 1000 classes": () => {
    const f = (e: cg.Tensor, h: cg.Tensor) => cg.losses.cosface(e, h, labels, { s: 64, m: 0.35 });
    return (cg.grad(f, { argnums: [0, 1] })(emb, head) as cg.Tensor[])[1];
  },
};

let gpu = false;
try {
  await cg.initWebGpu();
  gpu = true;
} catch (e) {
  console.log(`webgpu benches skipped: ${e instanceof Error ? e.message : e}`);
}
await cg.setBackend("cpu");

for (const [name, f] of Object.entries(cases)) {
  Deno.bench(`cpu: ${name}`, { group: name, baseline: true }, async () => {
    await cg.setBackend("cpu");
    await f().data();
  });
  if (gpu) {
    Deno.bench(`webgpu: ${name}`, { group: name }, async () => {
      await cg.setBackend("webgpu");
      await f().data();
    });
  }
}
