/**
 * Per-example gradient norms of a CosFace head with `vmap(grad(...))`: the gradient of each
 * example's loss with respect to the class weights, for a whole batch in one program, checked
 * against a loop of `grad` calls (one per example). Per-example gradient norms are what
 * differentially private training clips, and a way to find the examples that pull hardest.
 *
 * Usage: deno run -A examples/per_example_grads.ts [--batch 16] [--classes 50] [--dim 64]
 *
 * @module
 */
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";

type T = cg.Tensor;

const HELP = `Per-example gradient norms of a CosFace head, vmap(grad) against a loop.

Usage: deno run -A examples/per_example_grads.ts [options]

  --batch N     examples (default 16)
  --classes N   identities, rows of the class-weight matrix (default 50)
  --dim N       embedding size (default 64)
  --s X         CosFace scale (default 30)
  --m X         CosFace margin (default 0.35)
  --help        this text

The backend is COSGRAD_BACKEND's (cpu or webgpu; unset: webgpu when an adapter exists).`;

function usage(message: string): never {
  console.error(`error: ${message}\n\n${HELP}`);
  Deno.exit(2);
}

function positiveInt(flag: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usage(`--${flag} must be a positive integer, got ${v}`);
  return n;
}

function finite(flag: string, v: string, lo: number, hi: number): number {
  const x = Number(v);
  if (!(x >= lo && x <= hi)) usage(`--${flag} must be a number in [${lo}, ${hi}], got ${v}`);
  return x;
}

/** One example's CosFace loss: embedding [dim], label [] (int32). */
function exampleLoss(weights: T, embedding: T, label: T, s: number, m: number): T {
  const x = cg.reshape(embedding, [1, embedding.shape[0]]);
  return cg.losses.cosface(x, weights, cg.reshape(label, [1]), { s, m });
}

/** The norm of each example's gradient with respect to the class weights, as one program. */
export function perExampleNorms(weights: T, embeddings: T, labels: T, s: number, m: number): T {
  const g = cg.vmap(
    cg.grad((w: T, e: T, y: T) => exampleLoss(w, e, y, s, m)),
    { inAxes: [null, 0, 0] },
  )(weights, embeddings, labels); // [batch, classes, dim]
  return cg.sqrt(cg.sum(cg.mul(g, g), [1, 2]));
}

async function main(): Promise<void> {
  let values;
  try {
    ({ values } = parseArgs({
      args: Deno.args,
      options: {
        batch: { type: "string", default: "16" },
        classes: { type: "string", default: "50" },
        dim: { type: "string", default: "64" },
        s: { type: "string", default: "30" },
        m: { type: "string", default: "0.35" },
        help: { type: "boolean", default: false },
      },
    }));
  } catch (e) {
    usage((e as Error).message);
  }
  if (values.help) {
    console.log(HELP);
    return;
  }
  const batch = positiveInt("batch", values.batch);
  const classes = positiveInt("classes", values.classes);
  const dim = positiveInt("dim", values.dim);
  const s = finite("s", values.s, 1e-3, 1e3);
  const m = finite("m", values.m, 0, 1);
  const backend = await cg.initDefaultBackend();
  const weights = cg.normal(cg.randomKey(1), [classes, dim]);
  const embeddings = cg.normal(cg.randomKey(2), [batch, dim]);
  const labels = cg.tensor(
    Array.from({ length: batch }, (_, i) => (i * 7) % classes),
    [batch],
    { dtype: "int32" },
  );

  let t0 = performance.now();
  const norms = await perExampleNorms(weights, embeddings, labels, s, m).data();
  const vmapMs = performance.now() - t0;

  t0 = performance.now();
  const loop: number[] = [];
  for (let i = 0; i < batch; i++) {
    const e = cg.reshape(cg.slice(embeddings, [i, 0], [i + 1, dim]), [dim]);
    const y = cg.reshape(cg.slice(labels, [i], [i + 1]), []);
    const g = cg.grad((w: T) => exampleLoss(w, e, y, s, m))(weights);
    loop.push(await cg.sqrt(cg.sum(cg.mul(g, g))).item());
  }
  const loopMs = performance.now() - t0;

  let worst = 0;
  for (let i = 0; i < batch; i++) {
    worst = Math.max(worst, Math.abs(norms[i] - loop[i]) / Math.max(1e-12, Math.abs(loop[i])));
  }
  console.log(`backend ${backend.name}; batch ${batch}, ${classes} classes, dim ${dim}`);
  console.log("example  |grad W| (vmap)  |grad W| (loop)");
  for (let i = 0; i < batch; i++) {
    console.log(
      `${String(i).padStart(7)}  ${norms[i].toFixed(6).padStart(14)}  ${
        loop[i].toFixed(6).padStart(14)
      }`,
    );
  }
  console.log(
    `largest relative difference ${worst.toExponential(2)}; vmap(grad) ${
      vmapMs.toFixed(0)
    } ms (one program), loop ${loopMs.toFixed(0)} ms (${batch} programs)`,
  );
  if (!(worst < 1e-4)) {
    console.error(`error: vmap(grad) and the loop disagree (relative ${worst})`);
    Deno.exit(1);
  }
}

if (import.meta.main) await main();
