// The "done when": a complete CosFace training step (backbone, embedding, loss, SGD
// update) in about 20 lines, compiled once, with the loss falling over 10 steps on the CPU.
import assert from "node:assert/strict";
import * as cg from "../mod.ts";
import { smallNet } from "../src/nn/mod.ts";
import { cosface } from "../src/losses/mod.ts";
import { type OptState, sgd } from "../src/optim/mod.ts";

Deno.test("a compiled CosFace training step of smallNet lowers the loss over 10 steps", async () => {
  const [kNet, kHead, kData] = cg.split(cg.randomKey(0), 3);
  // The T1 network at 3x16x16 and narrower widths, so that the CPU interpreter keeps up.
  const net = smallNet.init(kNet, { inputSize: 16, widths: [8, 16, 16, 32], embedding: 32 });
  const params = { net: net.params, head: cg.normal(kHead, [10, 32]) };
  const opt = sgd({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
  type P = typeof params;
  type S = typeof net.state;
  const step = cg.compile((p: P, bn: S, o: OptState, x: cg.Tensor, y: cg.Tensor) => {
    const loss = (q: P) => {
      const r = smallNet.apply(q.net, bn, x, { training: true });
      return [cosface(r.out, q.head, y, { s: 64, m: 0.35 }), r.state];
    };
    // valueAndGrad is typed [Tensor, unknown]; with hasAux the value is [loss, aux].
    const [[value, state], grads] = cg.valueAndGrad(loss, { hasAux: true })(p) as unknown as [
      [cg.Tensor, S],
      P,
    ];
    const u = opt.update(grads, o, p);
    return { params: u.params, bn: state, opt: u.state, loss: value };
  }, { donate: [0, 1, 2] });

  const x = cg.normal(kData, [8, 3, 16, 16]);
  const y = cg.tensor(new Int32Array([0, 1, 2, 3, 4, 5, 6, 7]), [8], { dtype: "int32" });
  let s = { params, bn: net.state, opt: opt.init(params) };
  const losses: cg.Tensor[] = [];
  for (let i = 0; i < 10; i++) {
    const r = step(s.params, s.bn, s.opt, x, y);
    s = r;
    losses.push(r.loss);
  }
  // One read for all ten losses.
  const l = [...await cg.stack(losses).data()];
  console.log(`losses: ${l.map((v) => v.toFixed(3)).join(" ")}`);
  assert.equal(step.traces, 1);
  assert.ok(l.every(Number.isFinite));
  assert.ok(l[9] < l[0] / 2, `loss ${l[0]} -> ${l[9]}`);
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  assert.ok(mean(l.slice(7)) < mean(l.slice(0, 3)) / 2);
  assert.equal(await s.opt.step.item(), 10);
});
