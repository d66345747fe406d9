import assert from "node:assert/strict";

const script = new URL("./face_cli.ts", import.meta.url).pathname;

async function cli(args: string[]): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", script, ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("face_cli.ts refuses bad options with exit 2, naming the flag and the range", async (t) => {
  const cases: [string[], RegExp][] = [
    [
      ["verify", "a.png", "b.png", "--checkpoint", "c", "--threshold", "abc"],
      /--threshold expects a number from -1 to 1, got "abc"/,
    ],
    [
      ["verify", "a.png", "b.png", "--checkpoint", "c", "--threshold", "2"],
      /--threshold expects a number from -1 to 1, got "2"/,
    ],
    [["verify", "a.png", "--checkpoint", "c"], /verify expects two image paths, got 1/],
    [["embed", "--checkpoint", "c"], /embed expects one folder, got 0/],
    [["verify", "a.png", "b.png"], /--checkpoint FILE is required/],
    [["bogus", "x"], /Unknown command "bogus"/],
    [
      ["verify", "a", "b", "--checkpoint", "c", "--backend", "gpu"],
      /--backend expects one of auto, cpu, wasm, webgpu, got "gpu"/,
    ],
    [["verify", "a", "b", "--nope"], /Unknown option '--nope'/],
  ];
  for (const [args, message] of cases) {
    await t.step(args.join(" "), async () => {
      const { code, stderr } = await cli(args);
      assert.equal(code, 2, stderr);
      assert.match(stderr, /^error: /);
      assert.match(stderr, message);
      assert.doesNotMatch(stderr, /\n\s+at /);
    });
  }
});

Deno.test("face_cli.ts names a missing checkpoint and exits 1", async () => {
  const { code, stderr } = await cli([
    "verify",
    "a",
    "b",
    "--checkpoint",
    "/nonexistent/c.safetensors",
    "--backend",
    "cpu",
  ]);
  assert.equal(code, 1);
  assert.match(stderr, /^error: .*nonexistent\/c\.safetensors/);
});
