// Fault suite: `kill -9` at random moments of a training run (checkpoint writes included), then
// `--resume`. Every resume must succeed, no checkpoint may be torn, at most one checkpoint
// interval may be lost, and the resumed run must end with the parameters and loss curve of an
// uninterrupted run, bit for bit. CI runs 2 trials; COSGRAD_FUZZ=full runs 20;
// COSGRAD_FAULT_TRIALS=N runs N. The runs train on the cpu backend; COSGRAD_FAULT_BACKEND=webgpu
// (or wasm) trains on that one instead. With COSGRAD_FAULT_OUT=file.json the figures are written
// there (RELIABILITY.md quotes them).
import assert from "node:assert/strict";
import { loadCheckpoint } from "../src/io/mod.ts";
import { mulberry32 } from "../src/eval/_random.ts";

const FULL = Deno.env.get("COSGRAD_FUZZ") === "full";
const BACKEND = Deno.env.get("COSGRAD_FAULT_BACKEND") ?? "cpu";
if (!["cpu", "webgpu", "wasm"].includes(BACKEND)) {
  throw new Error(`COSGRAD_FAULT_BACKEND=${BACKEND}: expected cpu, webgpu or wasm`);
}
const TRIALS_TEXT = Deno.env.get("COSGRAD_FAULT_TRIALS");
const TRIALS = TRIALS_TEXT === undefined ? (FULL ? 20 : 2) : Number(TRIALS_TEXT);
if (!Number.isInteger(TRIALS) || TRIALS < 1) {
  throw new Error(`COSGRAD_FAULT_TRIALS=${TRIALS_TEXT}: expected a whole number of trials >= 1`);
}
const SEED = Number(Deno.env.get("COSGRAD_PROPERTY_SEED") ?? 20180126);
const SCRIPT = new URL("../examples/train_cosface.ts", import.meta.url).pathname;
const STEPS = 40;
const INTERVAL = 2;
const ARGS = [
  ...["--backend", BACKEND, "--steps", String(STEPS), "--batch", "8", "--identities", "4"],
  ...["--images", "4", "--size", "16", "--widths", "4,4,8,8", "--embedding", "8"],
  ...["--pairs-per-fold", "5", "--read-every", "1", "--eval-every", "0", "--baseline", "none"],
  ...["--checkpoint-every", String(INTERVAL)],
];

function command(out: string, extra: string[] = []): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", `--allow-write=${out}`, "--allow-env", SCRIPT, ...ARGS]
      .concat(["--out", out, ...extra]),
    stdout: "piped",
    stderr: "piped",
  });
}

async function run(out: string, extra: string[] = []) {
  const r = await command(out, extra).output();
  const text = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
  return { code: r.code, text };
}

/** The tensors of a checkpoint, as bytes by name (metadata left out). */
async function tensorBytes(path: string): Promise<Map<string, string>> {
  const { tensors } = await loadCheckpoint(path);
  const out = new Map<string, string>();
  for (const [k, t] of Object.entries(tensors)) {
    out.set(
      k,
      Array.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)).join(),
    );
  }
  return out;
}

async function temporaries(dir: string): Promise<number> {
  let n = 0;
  for await (const e of Deno.readDir(dir)) if (e.name.endsWith(".tmp")) n++;
  return n;
}

let referenceRun: Promise<{ tensors: Map<string, string>; curve: unknown }> | null = null;

/** The uninterrupted run (once per process): its final tensors and loss curve. */
function reference() {
  referenceRun ??= (async () => {
    const ref = await Deno.makeTempDir({ prefix: "cosgrad_reference_" });
    try {
      const r0 = await run(ref);
      assert.equal(r0.code, 0, r0.text);
      return {
        tensors: await tensorBytes(`${ref}/cosface.safetensors`),
        curve: JSON.parse(await Deno.readTextFile(`${ref}/report.json`)).runs[0].curve,
      };
    } finally {
      await Deno.remove(ref, { recursive: true });
    }
  })();
  return referenceRun;
}

/**
 * Starts a run and kills it with SIGKILL once it logged `target` steps: after `jitterMs`, or,
 * with `duringWrite`, as soon as a checkpoint's temporary file appears in `out`.
 */
async function killAt(out: string, target: number, jitterMs: number, duringWrite: boolean) {
  const child = command(out).spawn();
  let text = "";
  const decoder = new TextDecoder();
  let logged = 0;
  let resolveReached: () => void = () => {};
  const reached = new Promise<void>((r) => resolveReached = r);
  const pump = (async () => {
    for await (const chunk of child.stderr) {
      text += decoder.decode(chunk, { stream: true });
      for (const m of text.matchAll(/\] (\d+)\/\d+ loss/g)) logged = Math.max(logged, Number(m[1]));
      if (logged >= target) resolveReached();
    }
    resolveReached();
  })();
  const drain = child.stdout.pipeTo(new WritableStream());
  await reached;
  if (duringWrite) {
    const until = performance.now() + 3000;
    while (performance.now() < until) {
      let seen = false;
      for (const e of Deno.readDirSync(out)) if (e.name.endsWith(".tmp")) seen = true;
      if (seen) break;
    }
  } else await new Promise((r) => setTimeout(r, jitterMs));
  let killed = true;
  try {
    child.kill("SIGKILL");
  } catch {
    killed = false; // it had already finished
  }
  const status = await child.status;
  await pump;
  await drain;
  // Steps the run had reported when it died: re-read the whole log.
  for (const m of text.matchAll(/\] (\d+)\/\d+ loss/g)) logged = Math.max(logged, Number(m[1]));
  return { killed: killed && status.signal === "SIGKILL", logged };
}

Deno.test({
  name:
    `kill -9 at random moments, then --resume: ${TRIALS} trials on ${BACKEND} end as an uninterrupted run`,
  sanitizeResources: false,
  fn: async () => {
    const root = await Deno.makeTempDir({ prefix: "cosgrad_kill_" });
    const random = mulberry32(SEED);
    const figures = {
      backend: BACKEND,
      trials: TRIALS,
      killed: 0,
      killedDuringWrite: 0,
      killedBeforeFirstCheckpoint: 0,
      resumesSucceeded: 0,
      tornFiles: 0,
      maxStepsLost: 0,
      interval: INTERVAL,
      finalEqual: 0,
      curveEqual: 0,
    };
    try {
      const { tensors: refTensors, curve: refCurve } = await reference();
      for (let t = 0; t < TRIALS; t++) {
        const out = `${root}/trial${t}`;
        await Deno.mkdir(out);
        const target = Math.floor(random() * (STEPS - 2));
        // Odd trials aim at a checkpoint write: killed when its temporary file appears.
        const k = await killAt(out, target, random() * 40, t % 2 === 1);
        if (!k.killed) continue; // finished before the kill: nothing to resume (not counted)
        figures.killed++;
        if (await temporaries(out) > 0) figures.killedDuringWrite++;
        const ckpt = `${out}/cosface.safetensors`;
        let saved = 0;
        try {
          saved = Number((await loadCheckpoint(ckpt)).metadata.step);
        } catch (e) {
          if (e instanceof Deno.errors.NotFound) figures.killedBeforeFirstCheckpoint++;
          else {
            figures.tornFiles++;
            throw e;
          }
        }
        const lost = k.logged - saved;
        figures.maxStepsLost = Math.max(figures.maxStepsLost, lost);
        assert.ok(
          lost <= INTERVAL,
          `trial ${t}: ${lost} steps lost (logged ${k.logged}, saved ${saved})`,
        );
        const r = await run(out, ["--resume"]);
        assert.equal(r.code, 0, `trial ${t}: resume failed\n${r.text}`);
        figures.resumesSucceeded++;
        assert.equal(await temporaries(out), 0, `trial ${t}: a temporary file survived the resume`);
        const tensors = await tensorBytes(ckpt);
        assert.deepEqual(tensors, refTensors, `trial ${t}: final parameters differ`);
        figures.finalEqual++;
        const curve = JSON.parse(await Deno.readTextFile(`${out}/report.json`)).runs[0].curve;
        assert.deepEqual(curve, refCurve, `trial ${t}: loss curve differs`);
        figures.curveEqual++;
      }
      console.log(`kill -9 trials: ${JSON.stringify(figures)}`);
      assert.ok(figures.killed > 0, "no trial was killed before it finished");
      const file = Deno.env.get("COSGRAD_FAULT_OUT");
      if (file) await Deno.writeTextFile(file, JSON.stringify(figures, null, 1));
    } finally {
      await Deno.remove(root, { recursive: true });
    }
  },
});

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.test({
    name: `${signal} saves a checkpoint after the step in flight and exits ${
      signal === "SIGINT" ? 130 : 143
    }; --resume ends as an uninterrupted run`,
    sanitizeResources: false,
    fn: async () => {
      const ref = await reference();
      const out = await Deno.makeTempDir({ prefix: "cosgrad_signal_" });
      try {
        const child = command(out).spawn();
        let text = "";
        const decoder = new TextDecoder();
        let sent = false;
        const drain = child.stdout.pipeTo(new WritableStream());
        for await (const chunk of child.stderr) {
          text += decoder.decode(chunk, { stream: true });
          if (!sent && /\] 5\/\d+ loss/.test(text)) {
            child.kill(signal);
            sent = true;
          }
        }
        const status = await child.status;
        await drain;
        assert.equal(status.code, signal === "SIGINT" ? 130 : 143, text);
        const m = text.match(
          /interrupted at step (\d+); checkpoint saved to .*cosface\.safetensors/,
        );
        assert.ok(m, text);
        const saved = await loadCheckpoint(`${out}/cosface.safetensors`);
        // Saved where it stopped, not at the last periodic checkpoint.
        assert.equal(saved.metadata.step, m[1]);
        assert.ok(Number(m[1]) >= 5 && Number(m[1]) < STEPS, m[1]);
        const r = await run(out, ["--resume"]);
        assert.equal(r.code, 0, r.text);
        assert.deepEqual(await tensorBytes(`${out}/cosface.safetensors`), ref.tensors);
        const curve = JSON.parse(await Deno.readTextFile(`${out}/report.json`)).runs[0].curve;
        assert.deepEqual(curve, ref.curve);
      } finally {
        await Deno.remove(out, { recursive: true });
      }
    },
  });
}
