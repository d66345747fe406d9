import assert from "node:assert/strict";
import { parse } from "./train_cosface.ts";
import { UsageError } from "./_cli.ts";
import { loadCheckpoint } from "../src/io/mod.ts";

const TINY = [
  ...["--backend", "cpu", "--batch", "8", "--identities", "4", "--images", "4", "--size", "16"],
  ...["--widths", "4,4,8,8", "--embedding", "8", "--pairs-per-fold", "5", "--read-every", "2"],
];

async function run(script: string, out: string, args: string[]) {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      `--allow-write=${out}`,
      "--allow-env",
      new URL(script, import.meta.url).pathname,
      ...["--out", out],
      ...args,
    ],
    stdout: "piped",
    stderr: "piped",
  });
  const r = await cmd.output();
  return {
    code: r.code,
    stdout: new TextDecoder().decode(r.stdout),
    stderr: new TextDecoder().decode(r.stderr),
  };
}

Deno.test("train_cosface.ts trains both losses end to end and writes its report", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await run("./train_cosface.ts", out, [
      ...TINY,
      ...["--steps", "4", "--eval-every", "2"],
    ]);
    const text = r.stdout + r.stderr;
    assert.equal(r.code, 0, text);
    assert.match(text, /verification on procedural faces of unseen identities \(no --eval given\)/);
    // Not a terminal: the progress is plain lines, no carriage returns.
    assert.doesNotMatch(r.stderr, /\r/);
    assert.match(r.stderr, /^cosface +\[#+\.*\] 2\/4 loss/m);
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

Deno.test("train_cosface.ts parse() refuses bad options naming the flag and the range", () => {
  const cases: [string[], RegExp][] = [
    [["--m=1.5"], /--m 1\.5 is outside CosFace's range .*from 0 to 1\.0169; add --force/],
    [["--m=-0.35"], /--m -0\.35 is outside CosFace's range/],
    [["--batch", "0"], /--batch expects an integer of at least 2, got "0"/],
    [["--batch", "1"], /--batch expects an integer of at least 2, got "1"/],
    [["--lr=-1"], /--lr expects a number greater than 0/],
    [["--steps=0"], /--steps expects an integer of at least 1, got "0"/],
    [["--warmup=-5"], /--warmup expects an integer of at least 0, got "-5"/],
    [["--s", "0"], /--s expects a number greater than 0/],
    [["--size", "abc"], /--size expects an integer from 8 to 512, got "abc"/],
    [["--difficulty", "2"], /--difficulty expects a number from 0 to 1/],
    [["--widths", "16,,32"], /--widths expects a comma-separated list with no empty items/],
    [["--loss", "bogus"], /--loss expects one of cosface, softmax/],
    [["--baseline", "sphereface"], /--m for sphereface expects an integer from 1 to 10, got 0\.35/],
    [["--checkpoint-every=-2"], /--checkpoint-every expects a whole number of steps/],
    [["--eval-root", "x"], /--eval-root needs --eval/],
    [["--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [argv, message] of cases) {
    assert.throws(
      () => parse(argv),
      (e: Error) => e instanceof UsageError && message.test(e.message),
      argv.join(" "),
    );
  }
  // --force trains outside the paper's bound (an experiment); within it, no --force needed.
  assert.equal(parse(["--m=1.5", "--force"])?.m, 1.5);
  assert.equal(parse(["--m", "1.01"])?.m, 1.01);
  assert.deepEqual(parse(["--checkpoint-every", "200"])?.checkpointEvery, { steps: 200 });
  assert.deepEqual(parse([])?.checkpointEvery, { seconds: 60 });
});

Deno.test("usage errors exit 2 with one error line and no stack trace, before any training", async () => {
  const out = await Deno.makeTempDir();
  try {
    for (
      const [script, args, message] of [
        ["./train_cosface.ts", ["--m=1.5"], /^error: --m 1\.5 is outside/],
        ["./margin_sweep.ts", ["--margins"], /^error: Option '--margins <value>' argument missing/],
        ["./margin_sweep.ts", ["--family", "bogus"], /^error: --family expects one of softmax/],
        ["./margin_sweep.ts", ["--margins", "0,1.2"], /^error: --margins 1\.2 is outside/],
      ] as const
    ) {
      const r = await run(script, out, [...args]);
      assert.equal(r.code, 2, `${script} ${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.doesNotMatch(r.stderr, /\bat .*\.ts:\d+/);
      assert.equal(r.stdout, "");
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("--resume refuses options that change the model or loss, allows more steps", async () => {
  const out = await Deno.makeTempDir();
  try {
    const base = [...TINY, "--baseline", "none", "--eval-every", "0"];
    const first = await run("./train_cosface.ts", out, [...base, "--steps", "3"]);
    assert.equal(first.code, 0, first.stderr);
    const refused = await run("./train_cosface.ts", out, [
      ...base,
      ...["--steps", "3", "--m", "0.1", "--resume"],
    ]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /was trained with --m 0\.35, this run asks for 0\.1/);
    const fewer = await run("./train_cosface.ts", out, [...base, "--steps", "2", "--resume"]);
    assert.equal(fewer.code, 2);
    assert.match(fewer.stderr, /--steps 2 is below the step 3/);
    const more = await run("./train_cosface.ts", out, [...base, "--steps", "5", "--resume"]);
    assert.equal(more.code, 0, more.stderr);
    assert.match(more.stdout, /resumed from .* at step 3/);
    const report = JSON.parse(await Deno.readTextFile(`${out}/report.json`));
    // The whole curve across the resume, the resume point recorded.
    assert.deepEqual(report.runs[0].curve.map((c: { step: number }) => c.step), [1, 2, 3, 4, 5]);
    assert.deepEqual(report.runs[0].resumedAt, [3]);
    // A checkpoint whose tensor bytes were overwritten is refused, naming the file.
    const path = `${out}/cosface.safetensors`;
    const bytes = await Deno.readFile(path);
    bytes.fill(0, bytes.length - 64);
    await Deno.writeFile(path, bytes);
    const corrupt = await run("./train_cosface.ts", out, [...base, "--steps", "6", "--resume"]);
    assert.equal(corrupt.code, 1);
    assert.match(
      corrupt.stderr,
      /^error: Cannot load checkpoint .*cosface\.safetensors: checksum/m,
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("margin_sweep.ts gives every run its own checkpoint and resumes each", async () => {
  const out = await Deno.makeTempDir();
  try {
    const args = [
      ...TINY,
      ...["--steps", "2", "--margins", "0,0.35", "--family", "softmax", "--warmup", "0"],
    ];
    const r = await run("./margin_sweep.ts", out, args);
    assert.equal(r.code, 0, r.stderr);
    const m0 = await loadCheckpoint(`${out}/cosface_m0.safetensors`);
    const m35 = await loadCheckpoint(`${out}/cosface_m0.35.safetensors`);
    assert.equal(JSON.parse(m0.metadata.config).m, 0);
    assert.equal(JSON.parse(m35.metadata.config).m, 0.35);
    assert.notDeepEqual(m0.tensors["params.head"].data, m35.tensors["params.head"].data);
    await loadCheckpoint(`${out}/softmax.safetensors`);
    const sweep = JSON.parse(await Deno.readTextFile(`${out}/sweep.json`));
    const again = await run("./margin_sweep.ts", out, [...args, "--resume"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal((again.stdout.match(/resumed from/g) ?? []).length, 3);
    // Each row is its own model: resuming (with nothing left to train) reports the same numbers.
    const resumed = JSON.parse(await Deno.readTextFile(`${out}/sweep.json`));
    assert.deepEqual(
      resumed.map((x: { label: string; accuracy: number }) => [x.label, x.accuracy]),
      sweep.map((x: { label: string; accuracy: number }) => [x.label, x.accuracy]),
    );
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("--eval evaluates on the user's pairs (.bin and pairs.txt), and says so", async () => {
  const out = await Deno.makeTempDir();
  const fixtures = new URL("../test/fixtures/", import.meta.url).pathname;
  try {
    const base = [...TINY, "--steps", "1", "--baseline", "none", "--eval-every", "0"];
    for (
      const [file, described, pairs] of [
        ["insightface/verify.bin", /verify\.bin \(insightface \.bin, 6 folds\)/, 6],
        ["lfw/pairs.txt", /pairs\.txt \(pairs\.txt, images under .*lfw, 2 folds\)/, 8],
      ] as const
    ) {
      const r = await run("./train_cosface.ts", out, [...base, "--eval", `${fixtures}${file}`]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^evaluation: .*${described.source}, ${pairs} pairs`, "m"));
      assert.doesNotMatch(r.stdout, /evaluation: procedural|verification on procedural/);
    }
    // Training on the user's data without --eval: the log says evaluation is procedural.
    const r = await run("./train_cosface.ts", out, [
      ...base,
      ...["--data", `${fixtures}insightface/train.rec`, "--pairs-per-fold", "5"],
    ]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /note: training on your data but evaluating on procedural faces/);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("a loss that becomes NaN stops the run at once; the checkpoint keeps the last good step", async () => {
  const out = await Deno.makeTempDir();
  try {
    const r = await run("./train_cosface.ts", out, [
      ...TINY,
      ...["--loss", "softmax", "--baseline", "none", "--lr", "100", "--warmup", "0"],
      ...["--steps", "40", "--read-every", "1", "--checkpoint-every", "2", "--eval-every", "0"],
    ]);
    assert.equal(r.code, 1, r.stderr);
    const m = r.stderr.match(/^error: softmax: the loss became NaN at step (\d+)/m);
    assert.ok(m, r.stderr);
    const { metadata } = await loadCheckpoint(`${out}/softmax.safetensors`);
    assert.ok(Number(metadata.step) < Number(m[1]));
    for (const c of JSON.parse(metadata.curve)) assert.ok(Number.isFinite(c.loss));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
