import assert from "node:assert/strict";
import * as cg from "../mod.ts";

type T = cg.Tensor;

function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number): void {
  assert.equal(actual.length, expected.length, "lengths differ");
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i], e = expected[i];
    assert.ok(Math.abs(a - e) <= tol * Math.max(1, Math.abs(e)), `[${i}] ${a} != ${e}`);
  }
}

Deno.test("valueAndGrad() works over pytrees with argnums and hasAux", async () => {
  const params = { w: cg.tensor([[1, 2], [3, 4]]), b: [cg.tensor([0.5, -0.5])] };
  const x = cg.tensor([[1, 1]]);
  const f = (p: typeof params, input: T) => {
    const y = cg.add(cg.matmul(input, p.w), p.b[0]);
    return [cg.sum(cg.mul(y, y)), { y }] as [T, { y: T }];
  };
  const [[value, aux], g] = cg.valueAndGrad(f, { hasAux: true })(params, x) as unknown as [
    [T, { y: T }],
    typeof params,
  ];
  // y = [4.5, 5.5]; loss = 20.25 + 30.25
  close(await value.data(), [50.5], 1e-6);
  close(await aux.y.data(), [4.5, 5.5], 1e-6);
  close(await g.w.data(), [9, 11, 9, 11], 1e-6);
  close(await g.b[0].data(), [9, 11], 1e-6);
  const [gp, gx] = cg.grad((p: typeof params, input: T) => f(p, input)[0], { argnums: [0, 1] })(
    params,
    x,
  ) as [typeof params, T];
  close(await gx.data(), [2 * 4.5 * 1 + 2 * 5.5 * 2, 2 * 4.5 * 3 + 2 * 5.5 * 4], 1e-6);
  close(await gp.w.data(), [9, 11, 9, 11], 1e-6);
});

Deno.test("grad() of grad() gives second derivatives", async () => {
  const x = cg.tensor([0.3, -1.2, 2], [3], { dtype: "float64" });
  const f = (v: T) => cg.sum(cg.mul(cg.exp(v), cg.mul(v, v)));
  const g2 = cg.grad((v: T) => cg.sum(cg.grad(f)(v) as T))(x) as T;
  const expected = [0.3, -1.2, 2].map((v) => Math.exp(v) * (v * v + 4 * v + 2));
  close(await g2.data(), expected, 1e-12);
});

Deno.test("int32 inputs are not differentiated", async () => {
  const labels = cg.tensor(new Int32Array([1, 0]), [2]);
  const x = cg.tensor([[1, 2], [3, 4]]);
  const [gx, gl] = cg.grad(
    (a: T, l: T) => cg.sum(cg.mul(a, cg.oneHot(l, 2))),
    { argnums: [0, 1] },
  )(x, labels) as [T, T];
  close(await gx.data(), [0, 1, 1, 0], 0);
  assert.equal(gl, null);
});

Deno.test("stopGradient() blocks the gradient but keeps the value", async () => {
  const x = cg.tensor([3], [1], { dtype: "float64" });
  const [v, g] = cg.valueAndGrad((a: T) => cg.sum(cg.mul(a, cg.stopGradient(a))))(x);
  close(await v.data(), [9], 0);
  close(await (g as T).data(), [3], 0);
});

Deno.test("grad() requires a scalar output", () => {
  assert.throws(
    () => cg.grad((a: T) => cg.mul(a, 2))(cg.tensor([1, 2])),
    /must return a scalar, got Tensor\(float32\[2\]\)/,
  );
});

Deno.test("jvp() gives directional derivatives of pytree functions", async () => {
  const p = { a: cg.tensor([1, 2], [2], { dtype: "float64" }) };
  const [y, dy] = cg.jvp(
    (q: typeof p) => cg.mul(q.a, q.a),
    [p],
    [{ a: cg.tensor([1, 0], [2], { dtype: "float64" }) }],
  ) as [T, T];
  close(await y.data(), [1, 4], 0);
  close(await dy.data(), [2, 0], 0);
});

Deno.test("reading a traced value inside a transform is a clear error", () => {
  assert.throws(
    () => cg.grad((a: T) => (cg.sum(a).data(), cg.sum(a)))(cg.tensor([1])),
    /Cannot compute a traced value/,
  );
});

Deno.test("checkGrad() reports a wrong gradient", async () => {
  // A function whose derivative is hidden from autodiff: finite differences see it.
  const f = (x: T) => cg.add(cg.stopGradient(cg.mul(x, x)), x);
  const report = await cg.checkGrad(f, [cg.tensor([1, 2])], { throwOnFailure: false });
  assert.equal(report.ok, false);
  assert.ok(report.maxError > 0.1);
  await assert.rejects(
    () => cg.checkGrad(f, [cg.tensor([1, 2])]),
    /differ from finite differences/,
  );
});
