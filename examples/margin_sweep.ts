/**
 * The paper's sweep over the margin m (CosFace, m from 0 to 0.45) and the comparison of the
 * loss family (softmax, NSL, CosFace, ArcFace, SphereFace) on unseen identities of the
 * embedded dataset, every run trained the same way. Prints a table and writes
 * `sweep.md`, `sweep.json` and `sweep.svg` to the output folder.
 *
 * ```sh
 * deno run --allow-read=. --allow-write=out --allow-env examples/margin_sweep.ts --steps 200
 * ```
 *
 * Every option of `train_cosface.ts` applies (data, size, steps, batch, s, ...), plus
 * `--margins 0,0.1,...` and `--family softmax,nsl,arcface,sphereface`.
 *
 * @module
 */
import type { LossName } from "./_face.ts";
import { choiceOption, listOption, numberOption, parseCli, runMain, UsageError } from "./_cli.ts";
import {
  argsFrom,
  checkMargin,
  openDataset,
  type RunResult,
  testSet,
  train,
  TRAIN_OPTIONS,
  useBackend,
  withSignals,
  writeChart,
  writeText,
} from "./train_cosface.ts";

const USAGE =
  `Usage: deno run --allow-read=. --allow-write=out --allow-env examples/margin_sweep.ts [options]

Trains CosFace at each margin of --margins and each loss of --family the same way, and
compares them on unseen identities. Each run has its own checkpoint in the output folder
(cosface_m0.35.safetensors, arcface_m0.5.safetensors, ...), so --resume continues each one.

  --margins LIST         CosFace margins (default 0,0.1,0.2,0.3,0.35,0.45), each within the
                         paper's bound (Eq. 7) unless --force
  --family LIST          other losses to compare, from softmax, nsl, arcface, sphereface, or
                         "" for none (default softmax,nsl,arcface,sphereface)
  --out DIR              output folder (default out/sweep)
  --eval-every N         evaluate every N steps (default 0: only at the end)

Every other option of train_cosface.ts applies (--data, --eval, --size, --steps, --batch,
--s, --checkpoint-every, --resume, ...); see train_cosface.ts --help.`;

const FAMILY = ["softmax", "nsl", "arcface", "sphereface"] as const;

/** The margin of each family member in the sweep (ArcFace 0.5, SphereFace 4, as published). */
function familyMargin(loss: LossName, m: number): number {
  return loss === "arcface" ? 0.5 : loss === "sphereface" ? 4 : m;
}

function tagOf(loss: LossName, m: number): string {
  return loss === "softmax" || loss === "nsl" ? loss : `${loss}_m${m}`;
}

async function main(argv: string[]): Promise<void> {
  const { values } = parseCli(argv, {
    ...TRAIN_OPTIONS,
    margins: { type: "string", default: "0,0.1,0.2,0.3,0.35,0.45" },
    family: { type: "string", default: FAMILY.join(",") },
    out: { type: "string", default: "out/sweep" },
    "eval-every": { type: "string", default: "0" },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  if (values.baseline !== TRAIN_OPTIONS.baseline.default) {
    throw new UsageError(`--baseline does not apply to margin_sweep.ts: use --family`);
  }
  const { margins: rawMargins, family: rawFamily, ...rest } = values;
  const args = argsFrom({ ...rest, baseline: "none" });
  const margins = listOption("margins", rawMargins, (v) => numberOption("margins", v));
  const family = rawFamily.trim() === ""
    ? []
    : listOption("family", rawFamily, (v) => choiceOption("family", v, FAMILY));
  const plan: { loss: LossName; m: number; label: string; sweep: boolean }[] = [
    ...margins.map((m) => ({ loss: "cosface" as const, m, label: `cosface m=${m}`, sweep: true })),
    ...family.map((loss) => {
      const m = familyMargin(loss, args.m);
      return {
        loss,
        m,
        label: loss === "softmax" || loss === "nsl" ? loss : `${loss} m=${m}`,
        sweep: false,
      };
    }),
  ];
  if (new Set(plan.map((p) => tagOf(p.loss, p.m))).size !== plan.length) {
    throw new UsageError(`--margins ${rawMargins} repeats a margin: expected distinct values`);
  }
  const check = (classes: number) => {
    for (const p of plan) {
      const flag = p.sweep ? "--margins" : `the ${p.loss} margin of the sweep`;
      checkMargin(p.loss, p.m, classes, args.embedding, args.force, flag);
    }
  };
  if (args.data === "synthetic") check(args.identities);
  await useBackend(args.backend);
  await Deno.mkdir(args.out, { recursive: true });
  const dataset = await openDataset(args);
  check(dataset.classes);
  const test = await testSet(args);
  const rows: { label: string; m: number | null; run: RunResult }[] = [];
  await withSignals(async (signal) => {
    for (const p of plan) {
      const run = await train({ ...args, m: p.m }, p.loss, dataset, test, {
        tag: tagOf(p.loss, p.m),
        signal,
      });
      rows.push({ label: p.label, m: p.sweep ? p.m : null, run });
    }
  });
  const lines = [
    `| run | verification accuracy (${test.description}) | AUC |`,
    `| --- | --- | --- |`,
    ...rows.map((r) =>
      `| ${r.label} | ${(r.run.accuracy * 100).toFixed(2)}% ± ${
        (r.run.stdError * 100).toFixed(2)
      } | ${r.run.auc.toFixed(4)} |`
    ),
  ];
  console.log(`\n${lines.join("\n")}`);
  await writeText(`${args.out}/sweep.md`, lines.join("\n") + "\n");
  await writeText(
    `${args.out}/sweep.json`,
    JSON.stringify(rows.map((r) => ({ label: r.label, m: r.m, ...r.run })), null, 1),
  );
  const sweep = rows.filter((r) => r.m !== null);
  await writeChart(`${args.out}/sweep.svg`, {
    title: "CosFace: verification accuracy on unseen identities against m",
    xLabel: "margin m",
    yLabel: "accuracy",
    series: [{
      name: "cosface",
      x: sweep.map((r) => r.m!),
      y: sweep.map((r) => r.run.accuracy),
    }],
  });
  console.log(`wrote ${args.out}/sweep.md, sweep.json, sweep.svg`);
}

if (import.meta.main) await runMain(main, Deno.args);
