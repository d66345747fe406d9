import assert from "node:assert/strict";

const here = (f: string) => new URL(`./${f}`, import.meta.url).pathname;
// ONNX Runtime is a test tool: pinned in deno.dev.lock, never in the root lock.
const DEV_LOCK = new URL("../deno.dev.lock", import.meta.url).pathname;

async function run(script: string, args: string[]): Promise<string> {
  const r = await new Deno.Command(Deno.execPath(), {
    args: ["run", `--lock=${DEV_LOCK}`, "-A", here(script), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  assert.ok(r.success, `${script} ${args.join(" ")}\n${text}`);
  return text;
}

Deno.test("--export writes an ONNX model that ONNX Runtime runs, face_cli uses and --init fine-tunes", async () => {
  const out = await Deno.makeTempDir();
  const tiny = ["--backend", "cpu", "--steps", "2", "--batch", "8", "--identities", "4"];
  const small = ["--images", "4", "--size", "16", "--pairs-per-fold", "5", "--read-every", "2"];
  try {
    await run("train_cosface.ts", [
      ...tiny,
      ...small,
      ...["--widths", "4,4,8,8", "--embedding", "8", "--baseline", "none", "--eval-every", "0"],
      ...["--out", out, "--export", `${out}/m.onnx`],
    ]);
    const check = await run("onnx_check.ts", [
      `${out}/m.onnx`,
      ...["--checkpoint", `${out}/cosface.safetensors`, "--backend", "cpu", "--images", "8"],
    ]);
    const d = Number(check.match(/largest difference (\S+)/)?.[1]);
    assert.ok(d <= 1e-5, check);
    const image = new URL("../test/fixtures/lfw/", import.meta.url).pathname;
    const files = [...Deno.readDirSync(image)].filter((e) => e.isDirectory).map((e) => e.name);
    const pick = (k: number) => {
      const dir = `${image}${files[k]}`;
      return `${dir}/${[...Deno.readDirSync(dir)][0].name}`;
    };
    const verify = (model: string) =>
      run("face_cli.ts", ["verify", pick(0), pick(1), "--checkpoint", model, "--backend", "cpu"]);
    const a = await verify(`${out}/m.onnx`), b = await verify(`${out}/cosface.safetensors`);
    assert.equal(a.match(/cosine similarity (\S+)/)?.[1], b.match(/cosine similarity (\S+)/)?.[1]);
    const ft = await run("train_cosface.ts", [
      ...tiny,
      ...small,
      ...["--out", `${out}/ft`, "--init", `${out}/m.onnx`, "--export", `${out}/ft.onnx`],
    ]);
    assert.match(ft, /fine-tuned 2 steps/);
    assert.ok((await Deno.stat(`${out}/ft.onnx`)).size > 0);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("train_cosface.ts names a bad --init or --export", async () => {
  const { parse } = await import("./train_cosface.ts");
  assert.throws(() => parse(["--export", "model.bin"]), /--export expects an \.onnx file/);
  assert.throws(() => parse(["--init", "model"]), /--init expects an \.onnx file, got "model"/);
  assert.throws(() => parse(["--init", "m.onnx", "--resume"]), /cannot be combined with --resume/);
  assert.equal(parse(["--init", "m.onnx", "--export", "n.onnx"])?.export, "n.onnx");
});
