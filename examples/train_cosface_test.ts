import assert from "node:assert/strict";

Deno.test("train_cosface.ts trains both losses end to end and writes its report", async () => {
  const out = await Deno.makeTempDir();
  try {
    const cmd = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        `--allow-write=${out}`,
        "--allow-env",
        new URL("./train_cosface.ts", import.meta.url).pathname,
        ...["--backend", "cpu", "--steps", "4", "--batch", "8", "--identities", "4"],
        ...["--images", "4", "--size", "16", "--widths", "4,4,8,8", "--embedding", "8"],
        ...["--pairs-per-fold", "5", "--read-every", "2", "--eval-every", "2"],
        ...["--out", out],
      ],
      stdout: "piped",
      stderr: "piped",
    });
    const r = await cmd.output();
    const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
    assert.ok(r.success, text);
    assert.match(text, /verification on procedural faces of unseen identities \(no --eval given\)/);
    const report = JSON.parse(await Deno.readTextFile(`${out}/report.json`));
    assert.deepEqual(report.runs.map((x: { loss: string }) => x.loss), ["cosface", "softmax"]);
    for (const run of report.runs) {
      assert.equal(run.curve.length, 4);
      assert.ok(run.accuracy >= 0 && run.accuracy <= 1);
      // Evaluated during training at step 2, and at the end (step 4) with the final numbers.
      assert.deepEqual(run.evals.map((e: { step: number }) => e.step), [2, 4]);
      assert.equal(run.evals[1].accuracy, run.accuracy);
    }
    for (const f of ["report.md", "loss.svg", "roc.svg", "eval.svg", "cosface.safetensors"]) {
      assert.ok((await Deno.stat(`${out}/${f}`)).size > 0, f);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
