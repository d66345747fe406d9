/**
 * Face-verification and identification protocols over embeddings (plain Float32Arrays):
 * cosine scores with flip test-time augmentation, LFW 10-fold accuracy, ROC, AUC, TAR@FAR,
 * EER, rank-1 identification with distractors, and SVG charts for reports.
 *
 * @example
 * ```ts
 * import { kfoldVerification } from "./mod.ts";
 * const scores = Float32Array.from({ length: 20 }, (_, i) => i % 2 === 0 ? 0.9 : 0.1);
 * const same = Array.from({ length: 20 }, (_, i) => i % 2 === 0);
 * kfoldVerification(scores, same).accuracy; // 1
 * ```
 *
 * @module
 */
export { combineFlip, cosineSimilarity, l2NormalizeRows, pairScores } from "./similarity.ts";
export type { CombineFlipOptions } from "./similarity.ts";
export { bestThreshold, kfoldVerification, verificationAccuracy } from "./verification.ts";
export type { KFoldOptions, KFoldResult, PairLabels, ThresholdChoice } from "./verification.ts";
export { auc, equalErrorRate, rocCurve, tarAtFar } from "./roc.ts";
export type { EqualErrorRate, RocCurve, TarAtFar, TarAtFarOptions } from "./roc.ts";
export { evaluateIdentification } from "./identification.ts";
export type {
  Gallery,
  IdentificationOptions,
  IdentificationResult,
  LabeledEmbeddings,
} from "./identification.ts";
export { lineChartSvg, scatterSvg } from "./report.ts";
export type { LineChartOptions, LineSeries, ScatterOptions } from "./report.ts";
