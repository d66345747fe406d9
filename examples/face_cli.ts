/**
 * Uses a model trained by `train_cosface.ts`: embed a folder of images into a safetensors
 * file, or verify whether two images show the same identity.
 *
 * ```sh
 * deno run --allow-read=. --allow-write=out --allow-env examples/face_cli.ts embed faces/ \
 *   --checkpoint out/train/cosface.safetensors --out out/embeddings.safetensors
 * deno run --allow-read=. --allow-env examples/face_cli.ts verify a.jpg b.jpg \
 *   --checkpoint out/train/cosface.safetensors
 * ```
 *
 * @module
 */
import * as cg from "../mod.ts";
import { ImageDecodeError, prepareImage, scanImageFolder } from "../src/data/mod.ts";
import { cosineSimilarity } from "../src/eval/mod.ts";
import { decodeSafetensors, saveSafetensors } from "../src/io/mod.ts";
import { choiceOption, numberOption, parseCli, runMain, UsageError } from "./_cli.ts";
import { embedImages, initRun, loadCheckpoint, type RunConfig, type TrainState } from "./_face.ts";
import { embedOnnx, loadOnnxEmbedder } from "./_onnx.ts";

const USAGE = `Usage:
  face_cli.ts embed <folder> --checkpoint FILE [--out FILE]   embeddings of root/<identity>/<image>
  face_cli.ts verify <image1> <image2> --checkpoint FILE [--threshold T]
Options:
  --checkpoint FILE   a checkpoint written by examples/train_cosface.ts, or an .onnx embedding
                      model (input [batch, 3, S, S], output [batch, D]; e.g. from --export)
  --out FILE          where embed writes (default out/embeddings.safetensors)
  --threshold T       cosine threshold of verify, from -1 to 1 (default 0.3)
  --backend NAME      auto | webgpu | wasm | cpu (default auto: webgpu on a hardware GPU,
                      else wasm)
  -h, --help          this text`;

/** The image size and an embedding function (flip test-time augmentation) of a model file. */
async function openEmbedder(path: string): Promise<{
  size: number;
  embed: (images: Float32Array) => Promise<{ emb: Float32Array; dim: number }>;
}> {
  if (path.endsWith(".onnx")) {
    const e = await loadOnnxEmbedder(path);
    return { size: e.size, embed: (images) => embedOnnx(e, e.model.params, images) };
  }
  const { state, config } = await loadModel(path);
  return {
    size: config.size,
    embed: (images) => embedImages(state.params, state.bn, images, config.size),
  };
}

export async function loadModel(
  path: string,
): Promise<{ state: TrainState; config: RunConfig; meta: Record<string, string> }> {
  const { metadata } = decodeSafetensors(await Deno.readFile(path), { path });
  if (metadata?.config === undefined) {
    throw new TypeError(`${path} has no "config" metadata: was it written by train_cosface.ts?`);
  }
  const config = JSON.parse(metadata.config) as RunConfig;
  const run = initRun(config);
  const like: TrainState = { params: run.params, bn: run.state, opt: run.optState };
  const { state } = await loadCheckpoint(path, like);
  return { state, config, meta: metadata };
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseCli(argv, {
    checkpoint: { type: "string" },
    out: { type: "string", default: "out/embeddings.safetensors" },
    threshold: { type: "string", default: "0.3" },
    backend: { type: "string", default: "auto" },
    help: { type: "boolean", short: "h", default: false },
  }, { positionals: true });
  const [command, ...rest] = positionals;
  if (values.help || command === undefined) {
    console.log(USAGE);
    return;
  }
  if (command !== "embed" && command !== "verify") {
    throw new UsageError(`Unknown command "${command}": expected embed or verify`);
  }
  if (command === "embed" && rest.length !== 1) {
    throw new UsageError(`embed expects one folder, got ${rest.length} arguments`);
  }
  if (command === "verify" && rest.length !== 2) {
    throw new UsageError(`verify expects two image paths, got ${rest.length}`);
  }
  const threshold = numberOption("threshold", values.threshold, { min: -1, max: 1 });
  const backend = choiceOption(
    "backend",
    values.backend,
    ["auto", "cpu", "wasm", "webgpu"] as const,
  );
  if (values.out === "") throw new UsageError(`--out expects a file path, got ""`);
  if (values.checkpoint === undefined) throw new UsageError("--checkpoint FILE is required");
  if (backend === "cpu" || backend === "wasm") await cg.setBackend(backend);
  else if (backend === "webgpu") await cg.initWebGpu();
  else await cg.initDefaultBackend();
  const { size, embed } = await openEmbedder(values.checkpoint);
  const plane = 3 * size * size;
  if (command === "embed") {
    const index = await scanImageFolder(rest[0]);
    const images = new Float32Array(index.entries.length * plane);
    const kept: number[] = [];
    const skipped: string[] = [];
    for (const [i, e] of index.entries.entries()) {
      const bytes = await Deno.readFile(e.path);
      try {
        images.set(prepareImage(bytes, e.path, size), kept.length * plane);
        kept.push(i);
      } catch (err) {
        // Only an undecodable image is skipped; read errors and bugs end the command.
        if (!(err instanceof ImageDecodeError)) throw err;
        skipped.push(e.path);
        console.warn(`skipped ${e.path}: ${err.message}`);
      }
    }
    const { emb, dim } = await embed(images.subarray(0, kept.length * plane));
    await saveSafetensors(values.out!, {
      embeddings: { dtype: "float32", shape: [kept.length, dim], data: emb },
      labels: {
        dtype: "int32",
        shape: [kept.length],
        data: Int32Array.from(kept, (i) => index.entries[i].label),
      },
    }, {
      paths: JSON.stringify(kept.map((i) => index.entries[i].path)),
      identities: JSON.stringify(index.identities),
    });
    console.log(
      `wrote ${kept.length} embeddings of size ${dim} to ${values.out}` +
        (skipped.length ? ` (${skipped.length} unreadable images skipped)` : ""),
    );
  } else {
    const images = new Float32Array(2 * plane);
    for (let i = 0; i < 2; i++) {
      images.set(prepareImage(await Deno.readFile(rest[i]), rest[i], size), i * plane);
    }
    const { emb, dim } = await embed(images);
    const score = cosineSimilarity(emb.subarray(0, dim), emb.subarray(dim));
    console.log(
      `cosine similarity ${score.toFixed(4)}: ${
        score > threshold ? "same identity" : "different identities"
      } (threshold ${threshold})`,
    );
  }
}

if (import.meta.main) await runMain(main, Deno.args);
