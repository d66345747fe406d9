/**
 * Embedding throughput of the imported ONNX fixture (test/fixtures/onnx/embed_public.onnx,
 * PyTorch's iresnet-style network, 32x32 input, 64-d output) at batch 64: cosgrad (fromOnnx,
 * compiled, on webgpu and on the cpu interpreter) against ONNX Runtime (onnxruntime-node, CPU
 * execution provider, and its WebGPU provider when it finds an adapter; onnxruntime-web's WebGPU
 * provider on Deno's own adapter with `--frameworks ortweb-webgpu`) in the same run, after
 * checking that all give the same embeddings. Timing: bench/_timing.ts, throughput mode (calls
 * back to back, one wait), first (compiling) call excluded, median of the repetitions.
 *
 * ```sh
 * export XDG_RUNTIME_DIR=/tmp/xdg; mkdir -p $XDG_RUNTIME_DIR
 * deno run --lock=deno.dev.lock -A bench/onnx_bench.ts [--batch 64] [--reps 5] [--frameworks cosgrad-webgpu,ort-cpu]
 * ```
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";
import { fromOnnx } from "../src/io/mod.ts";
import { maxAbsDiff, ortRun, ortSession, ortVersion } from "../src/io/_onnx_ort.ts";
import { type Timed, timeWorkload } from "./_timing.ts";

const FRAMEWORKS = [
  "cosgrad-webgpu",
  "cosgrad-cpu",
  "ort-cpu",
  "ort-webgpu",
  "ortweb-webgpu",
] as const;

/** onnxruntime-web's WebGPU provider on Deno's navigator.gpu (the same adapter as cosgrad's). */
async function ortWebSession(bytes: Uint8Array) {
  const ortweb = await import("npm:onnxruntime-web@1.30.0/webgpu");
  ortweb.env.wasm.numThreads = 1;
  const session = await ortweb.InferenceSession.create(bytes, { executionProviders: ["webgpu"] });
  return async (x: Float32Array, shape: number[]) => {
    const out = await session.run({ data: new ortweb.Tensor("float32", x, shape) });
    return Float32Array.from(await out[session.outputNames[0]].getData() as Float32Array);
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      batch: { type: "string", default: "64" },
      reps: { type: "string", default: "5" },
      // cosgrad-cpu (the interpreter, the correctness oracle) and ortweb-webgpu (its first call
      // compiled for about 3 minutes on llvmpipe) take minutes: ask for them by name.
      frameworks: { type: "string", default: "cosgrad-webgpu,ort-cpu,ort-webgpu" },
    },
  });
  const batch = Number(values.batch), reps = Number(values.reps);
  const wanted = values.frameworks!.split(",");
  for (const w of wanted) {
    if (!(FRAMEWORKS as readonly string[]).includes(w)) {
      throw new RangeError(`--frameworks: unknown "${w}"; expected ${FRAMEWORKS.join(", ")}`);
    }
  }
  const bytes = await Deno.readFile(
    new URL("../test/fixtures/onnx/embed_public.onnx", import.meta.url),
  );
  const shape = [batch, 3, 32, 32];
  const x = new Float32Array(batch * 3 * 32 * 32).map((_, i) => Math.sin(i * 0.37));
  const rows: string[] = [];
  let reference: Float32Array | undefined;
  const report = async (name: string, t: Timed, out: () => Promise<Float32Array>) => {
    const got = await out();
    reference ??= got;
    const diff = maxAbsDiff(got, reference);
    const timing = await timeWorkload(t, { mode: "throughput", reps });
    const ips = batch / (timing.ms / 1000);
    const line = `| ${name} | ${timing.ms.toFixed(1)} ms | ${ips.toFixed(0)} | ${
      timing.firstMs?.toFixed(0) ?? "-"
    } ms | ${diff.toExponential(1)} |`;
    console.log(line);
    rows.push(line);
    return ips;
  };
  console.log(`batch ${batch}, ${reps} repetitions; ONNX Runtime ${ortVersion}`);
  console.log(`| framework | ms per batch | images/s | first call | max diff vs first row |`);
  console.log(`| --- | --- | --- | --- | --- |`);
  for (const fw of wanted) {
    if (fw === "ortweb-webgpu") {
      const run = await ortWebSession(bytes);
      await report(
        "onnxruntime-web webgpu (Deno's adapter)",
        { run: async () => void await run(x, shape), wait: async () => {} },
        () => run(x, shape),
      );
    } else if (fw.startsWith("ort-")) {
      const provider = fw.slice(4);
      let session;
      try {
        session = await ortSession(bytes, [provider]);
      } catch (e) {
        const why = (e instanceof Error ? e.message : String(e)).split("\n")[0].slice(-160);
        console.log(`| ${fw} | not run: ${why} | | | |`);
        continue;
      }
      const feeds = { data: { data: x, shape } };
      // Each call is awaited (one batch at a time, as cosgrad's calls are ordered on the device).
      await report(
        `onnxruntime-node ${provider}`,
        { run: async () => void await ortRun(session, feeds), wait: async () => {} },
        async () => (await ortRun(session, feeds))[0].data,
      );
    } else {
      const backend = fw.slice(8);
      if (backend === "webgpu") await cg.initWebGpu();
      else await cg.setBackend("cpu");
      const adapter = (cg.getBackend() as unknown as { description?: string }).description;
      const model = await fromOnnx(bytes);
      const forward = cg.compile((p: Record<string, cg.Tensor>, xx: cg.Tensor) =>
        model.apply(p, xx)[0]
      );
      const input = cg.tensor(x, shape);
      let last: cg.Tensor | undefined;
      await report(
        `cosgrad ${backend}${adapter ? ` (${adapter})` : ""}`,
        {
          run: () => void (last = forward(model.params, input)),
          wait: async () => void await last?.data(),
        },
        async () => await forward(model.params, input).data() as Float32Array,
      );
    }
  }
}

if (import.meta.main) await main();
