/**
 * Does `checkpoint` (rematerialization) save device memory on T1's network? Builds the T1
 * training step (WORKLOADS.md: the small network, CosFace head, SGD with momentum) twice,
 * once plain and once with every stage under `cg.checkpoint`, compiles both on WebGPU, runs
 * one step of each from the same parameters, and prints the buffer plans' `memory()` figures
 * and both losses (which must agree).
 *
 * Usage: deno run -A bench/checkpoint_memory.ts [--batch 128] [--size 64] [--classes 1000]
 *   [--backend webgpu|wasm]
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "node:util";
import * as cg from "../mod.ts";

type T = cg.Tensor;
type Params = cg.nn.SmallNetParams;
type State = cg.nn.SmallNetState;

const HELP = `Usage: deno run -A bench/checkpoint_memory.ts [options]

  --batch N     images per step (default 128, T1's)
  --size N      image height and width (default 64, T1's)
  --classes N   CosFace classes (default 1000, T1's)
  --only V      run one variant: plain or checkpoint (default both)
  --backend B   webgpu or wasm (default webgpu)
  --steps N     after the first call, time N steady steps (default 0: none)
  --warmup N    untimed steps before those (default 3; WebGPU compiles tuned kernels there)
  --help        this text`;

/** The network of smallNet.apply, with each stage optionally under checkpoint. */
function forward(p: Params, s: State, x: T, remat: boolean): { out: T; state: State } {
  let h = x;
  const stages = p.stages.map((sp, i) => {
    const stage = (q: cg.nn.SmallNetStage, st: State["stages"][number], hin: T) => {
      const a = cg.nn.batchNorm(
        q.bn1,
        st.bn1,
        cg.nn.conv2d(q.conv1, hin, { stride: 2, padding: 1 }),
        {
          training: true,
        },
      );
      const h1 = cg.nn.prelu(q.prelu1, a.out);
      const b = cg.nn.batchNorm(q.bn2, st.bn2, cg.nn.conv2d(q.conv2, h1, { padding: 1 }), {
        training: true,
      });
      return { h: cg.nn.prelu(q.prelu2, b.out), state: { bn1: a.state, bn2: b.state } };
    };
    const r = (remat ? cg.checkpoint(stage) : stage)(sp, s.stages[i], h);
    h = r.h;
    return r.state;
  });
  const e = cg.nn.batchNorm(p.bn, s.bn, cg.nn.linear(p.linear, cg.flatten(h)), { training: true });
  return { out: e.out, state: { stages, bn: e.state } };
}

const MIB = 2 ** 20;

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      batch: { type: "string", default: "128" },
      size: { type: "string", default: "64" },
      classes: { type: "string", default: "1000" },
      only: { type: "string" },
      backend: { type: "string", default: "webgpu" },
      steps: { type: "string", default: "0" },
      warmup: { type: "string", default: "3" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return;
  }
  const int = (flag: string, v: string, min = 1) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) {
      console.error(`error: --${flag} must be an integer >= ${min}, got ${v}`);
      Deno.exit(2);
    }
    return n;
  };
  const batch = int("batch", values.batch), size = int("size", values.size);
  const classes = int("classes", values.classes);
  const steps = int("steps", values.steps, 0), warmup = int("warmup", values.warmup, 0);
  if (values.backend !== "webgpu" && values.backend !== "wasm") {
    console.error(`error: --backend must be webgpu or wasm, got ${values.backend}`);
    Deno.exit(2);
  }
  const backend = await cg.setBackend(values.backend);
  const net = cg.nn.smallNet.init(cg.randomKey(0), { inputSize: size });
  const head = cg.normal(cg.randomKey(1), [classes, 128], { std: 0.1 });
  const x = cg.normal(cg.randomKey(2), [batch, 3, size, size]);
  const y = cg.tensor(
    Array.from({ length: batch }, (_, i) => (i * 7919) % classes),
    [batch],
    { dtype: "int32" },
  );
  const opt = cg.optim.sgd({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  const params = { net: net.params, head };
  type P = typeof params;
  const rows: string[] = [];
  if (values.only !== undefined && values.only !== "plain" && values.only !== "checkpoint") {
    console.error(`error: --only must be plain or checkpoint, got ${values.only}`);
    Deno.exit(2);
  }
  const variants = values.only === undefined ? [false, true] : [values.only === "checkpoint"];
  for (const remat of variants) {
    const step = cg.compile((p: P, bn: State, o: cg.optim.OptState, xb: T, yb: T) => {
      const loss = (q: P) => {
        const r = forward(q.net, bn, xb, remat);
        return [cg.losses.cosface(r.out, q.head, yb, { s: 64, m: 0.35 }), r.state] as const;
      };
      const [[value, state], grads] = cg.valueAndGrad(loss, { hasAux: true })(p);
      const u = opt.update(grads, o, p);
      return { params: u.params, bn: state, opt: u.state, loss: value };
    });
    const t0 = performance.now();
    let out = step(params, net.state, opt.init(params) as cg.optim.OptState, x, y);
    const loss = await out.loss.item();
    const ms = performance.now() - t0;
    // Steady steps: each feeds the last one's parameters and state back, and ends when its
    // loss (computed after every other value of its submission) is read.
    // Process CPU time (every thread: wasm workers, llvmpipe's) is reported beside wall time:
    // on a shared machine it varies less with load.
    const times: number[] = [], cpu: number[] = [];
    for (let i = 0; i < warmup + steps; i++) {
      const t = performance.now(), c = process.cpuUsage();
      out = step(out.params, out.bn, out.opt, x, y);
      await out.loss.item();
      const dc = process.cpuUsage(c);
      if (i >= warmup) {
        times.push(performance.now() - t);
        cpu.push((dc.user + dc.system) / 1000);
      }
    }
    const med = (xs: number[]) =>
      xs.length === 0 ? "-" : (xs.sort((a, b) => a - b)[xs.length >> 1] / 1000).toFixed(3);
    const median = `${med(times)} | ${med(cpu)}`;
    const m = step.memory();
    let kernels = "-";
    try {
      kernels = String(step.dispatches());
    } catch {
      // The wasm backend's programs list no kernels.
    }
    rows.push(
      `| ${remat ? "checkpoint per stage" : "plain"} | ${(m.peakBytes / MIB).toFixed(1)} | ${
        (m.liveIntermediateBytes / MIB).toFixed(1)
      } | ${(m.intermediateBytes / MIB).toFixed(1)} | ${kernels} | ${loss.toFixed(5)} | ${
        (ms / 1000).toFixed(1)
      } | ${median} |`,
    );
  }
  console.log(
    `T1 network, batch ${batch}, ${size}x${size}, ${classes} classes, on ${backend.name}: ${
      (backend as unknown as { description?: string }).description ?? ""
    }`,
  );
  console.log(
    "| step | peak MiB | live intermediates MiB | intermediates MiB | kernels | loss | first call s | median step s | median step CPU s |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const r of rows) console.log(r);
}

if (import.meta.main) await main();
