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
import {
  openDataset,
  parse,
  type RunResult,
  testSet,
  train,
  useBackend,
  writeChart,
  writeText,
} from "./train_cosface.ts";

function take(argv: string[], name: string, fallback: string): [string, string[]] {
  const i = argv.indexOf(`--${name}`);
  if (i < 0) return [fallback, argv];
  return [argv[i + 1], [...argv.slice(0, i), ...argv.slice(i + 2)]];
}

async function main(argv: string[]): Promise<void> {
  let rest = argv;
  let margins: string, family: string;
  [margins, rest] = take(rest, "margins", "0,0.1,0.2,0.3,0.35,0.45");
  [family, rest] = take(rest, "family", "softmax,nsl,arcface,sphereface");
  // Each run is evaluated once, at its end, unless --eval-every is given.
  const args = parse(["--eval-every", "0", ...rest, "--baseline", "none"]);
  if (args === null) {
    console.log(
      "Usage: margin_sweep.ts [--margins 0,0.1,...] [--family softmax,nsl,...] " +
        "[train_cosface.ts options]",
    );
    return;
  }
  if (args.out === "out/train") args.out = "out/sweep";
  await useBackend(args.backend);
  await Deno.mkdir(args.out, { recursive: true });
  const dataset = await openDataset(args);
  const test = await testSet(args);
  const rows: { label: string; m: number | null; run: RunResult }[] = [];
  for (const m of margins.split(",").map(Number)) {
    const run = await train({ ...args, m }, "cosface", dataset, test);
    rows.push({ label: `cosface m=${m}`, m, run });
  }
  for (const loss of family.split(",").filter((x) => x !== "") as LossName[]) {
    const m = loss === "arcface" ? 0.5 : loss === "sphereface" ? 4 : args.m;
    const run = await train({ ...args, m }, loss, dataset, test);
    rows.push({
      label: loss === "softmax" || loss === "nsl" ? loss : `${loss} m=${m}`,
      m: null,
      run,
    });
  }
  const lines = [
    `| run | verification accuracy (unseen identities) | AUC |`,
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

if (import.meta.main) {
  try {
    await main(Deno.args);
  } catch (e) {
    console.error(`error: ${e instanceof Error ? e.message : e}`);
    Deno.exit(1);
  }
}
