/**
 * The margin-loss family for face recognition embeddings, all with class weights [C, d],
 * labels as an Int32Array or int32 tensor [B], and mean reduction: the plain softmax loss,
 * NSL, CosFace (LMCL), ArcFace, SphereFace (A-Softmax) and the combined margin; cosine
 * logits, predictions, accuracy and the margin decision rule; and the scale and margin bounds
 * of the CosFace paper.
 *
 * A complete CosFace training step (backbone, embedding, loss, SGD update):
 *
 * ```ts
 * import * as cg from "../../mod.ts";
 * import { cosface } from "./mod.ts";
 * import { smallNet } from "../nn/mod.ts";
 * import { type OptState, sgd } from "../optim/mod.ts";
 *
 * const [kNet, kHead, kData] = cg.split(cg.randomKey(0), 3);
 * // A narrow smallNet so the example runs in a moment; drop widths and embedding for T1's.
 * const net = smallNet.init(kNet, { inputSize: 16, widths: [8, 16, 16, 32], embedding: 32 });
 * const params = { net: net.params, head: cg.normal(kHead, [10, 32]) };
 * const opt = sgd({ lr: 0.1, momentum: 0.9, weightDecay: 5e-4 });
 * type P = typeof params;
 * type S = typeof net.state;
 *
 * const step = cg.compile((p: P, bn: S, o: OptState, x: cg.Tensor, y: cg.Tensor) => {
 *   const loss = (q: P) => {
 *     const r = smallNet.apply(q.net, bn, x, { training: true });
 *     return [cosface(r.out, q.head, y, { s: 64, m: 0.35 }), r.state];
 *   };
 *   const vg = cg.valueAndGrad(loss, { hasAux: true })(p) as unknown;
 *   const [[value, state], grads] = vg as [[cg.Tensor, S], P];
 *   const u = opt.update(grads, o, p);
 *   return { params: u.params, bn: state, opt: u.state, loss: value };
 * }, { donate: [0, 1, 2] });
 *
 * const x = cg.normal(kData, [8, 3, 16, 16]);
 * const y = cg.tensor(new Int32Array([0, 1, 2, 3, 4, 5, 6, 7]), [8], { dtype: "int32" });
 * let s = { params, bn: net.state, opt: opt.init(params) };
 * const losses: number[] = [];
 * for (let i = 0; i < 5; i++) {
 *   const r = step(s.params, s.bn, s.opt, x, y);
 *   s = r;
 *   losses.push(await r.loss.item());
 * }
 * losses; // [42.95, 38.25, 41.45, 34.92, 25.92]: falling, with momentum's overshoot
 * ```
 *
 * @module
 */
export { accuracy, cosineLogits, marginCorrect, predict } from "./cosine.ts";
export type { Labels, MarginCorrectOptions } from "./cosine.ts";
export { softmaxCrossEntropy } from "./softmax.ts";
export type { SoftmaxOptions } from "./softmax.ts";
export { cosface, nsl } from "./cosface.ts";
export type { CosFaceOptions, NslOptions } from "./cosface.ts";
export { arcface, combinedMargin, combinedTarget } from "./combined_margin.ts";
export type { ArcFaceOptions, CombinedMarginOptions } from "./combined_margin.ts";
export { sphereface, spherefaceLambda, spherefacePsi } from "./sphereface.ts";
export type { SpherefaceLambdaOptions, SphereFaceOptions } from "./sphereface.ts";
export { marginUpperBound, scaleLowerBound } from "./geometry.ts";
