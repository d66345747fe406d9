/**
 * Runs an exported embedding model in ONNX Runtime (onnxruntime-node, CPU) and in cosgrad on the
 * same procedural face images, and prints the largest difference of the embeddings. cosgrad runs
 * the training checkpoint when one is given (what `--export` wrote the ONNX file from), and
 * otherwise its own import of the ONNX file.
 *
 * ```sh
 * deno run -A examples/train_cosface.ts --baseline none --export out/train/cosface.onnx
 * deno run --lock=deno.dev.lock -A examples/onnx_check.ts out/train/cosface.onnx \
 *   --checkpoint out/train/cosface.safetensors
 * ```
 *
 * @module
 */
import * as cg from "../mod.ts";
import { smallNet } from "../src/nn/mod.ts";
import { batchSampler, syntheticDataset } from "../src/data/mod.ts";
import { maxAbsDiff, ortRun, ortSession, ortVersion } from "../src/io/_onnx_ort.ts";
import { loadOnnxEmbedder } from "./_onnx.ts";
import { choiceOption, intOption, parseCli, UsageError } from "./_cli.ts";
import { loadModel } from "./face_cli.ts";

const USAGE = `Usage: deno run --lock=deno.dev.lock -A examples/onnx_check.ts MODEL.onnx [options]
  --checkpoint FILE   compare with this train_cosface.ts checkpoint (default: cosgrad's import
                      of MODEL.onnx)
  --images N          images to embed (default 64)
  --backend NAME      auto | webgpu | wasm | cpu (default auto: webgpu on a hardware GPU,
                      else wasm)
  -h, --help          this text`;

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseCli(argv, {
    checkpoint: { type: "string" },
    images: { type: "string", default: "64" },
    backend: { type: "string", default: "auto" },
    help: { type: "boolean", short: "h", default: false },
  }, { positionals: true });
  if (values.help || positionals.length !== 1) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const path = positionals[0];
  const n = intOption("images", values.images, { min: 1 });
  const backend = choiceOption(
    "backend",
    values.backend,
    ["auto", "cpu", "wasm", "webgpu"] as const,
  );
  if (backend === "cpu" || backend === "wasm") await cg.setBackend(backend);
  else if (backend === "webgpu") await cg.initWebGpu();
  else await cg.initDefaultBackend();
  const e = await loadOnnxEmbedder(path);
  const faces = syntheticDataset({ seed: 7, identities: 8, imagesPerIdentity: 8, size: e.size });
  const { images } = await batchSampler(faces, { batchSize: n, seed: 7 })(0);
  const shape = [n, 3, e.size, e.size];
  const session = await ortSession(await Deno.readFile(path));
  const [ref] = await ortRun(session, { [e.model.inputs[0].name]: { data: images, shape } });
  let ours: Float32Array, what: string;
  if (values.checkpoint !== undefined) {
    const { state } = await loadModel(values.checkpoint);
    const y = smallNet.apply(state.params.net, state.bn, cg.tensor(images, shape), {
      training: false,
    }).out;
    ours = await y.data() as Float32Array;
    what = `checkpoint ${values.checkpoint}`;
  } else {
    ours = await e.model.apply(e.model.params, cg.tensor(images, shape))[0].data() as Float32Array;
    what = `cosgrad's import of ${path}`;
  }
  const d = maxAbsDiff(ref.data, ours);
  const scale = Math.max(...ref.data.map(Math.abs));
  console.log(
    `ONNX Runtime ${ortVersion} (cpu) on ${path} vs cosgrad ${cg.getBackend().name} (${what}): ` +
      `${n} embeddings of ${ref.shape[1]}, largest |values| ${scale.toFixed(3)}, ` +
      `largest difference ${d.toExponential(2)}`,
  );
  return d <= 1e-4 * Math.max(1, scale) ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exit(e instanceof UsageError ? 2 : 1);
  }
}
