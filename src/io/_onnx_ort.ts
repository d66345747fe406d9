// ONNX Runtime (onnxruntime-node) as the independent reference for the ONNX tests, the bench and
// examples/onnx_check.ts. Only those import this module: the library itself never loads ONNX
// Runtime. It needs --allow-ffi (a native addon).
// Imported by its npm specifier here only (pinned in deno.dev.lock), as the project's test tools are.
import * as ort from "npm:onnxruntime-node@1.30.0";

/** Float32 inputs by name: values and shape. */
export type OrtFeeds = Record<string, { data: Float32Array; shape: readonly number[] }>;

/** An ONNX Runtime session on `bytes`, with the given execution providers (default cpu). */
export function ortSession(
  bytes: Uint8Array,
  providers: string[] = ["cpu"],
): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    executionProviders: providers,
    graphOptimizationLevel: "all",
  });
}

/** Runs a session and returns its outputs as float32 arrays with their shapes, in output order. */
export async function ortRun(
  session: ort.InferenceSession,
  feeds: OrtFeeds,
): Promise<{ data: Float32Array; shape: number[] }[]> {
  const inputs: Record<string, ort.Tensor> = {};
  for (const [name, v] of Object.entries(feeds)) {
    inputs[name] = new ort.Tensor("float32", v.data, [...v.shape]);
  }
  const out = await session.run(inputs);
  return session.outputNames.map((n) => ({
    data: Float32Array.from(out[n].data as Float32Array),
    shape: [...out[n].dims],
  }));
}

/** The version of ONNX Runtime loaded. */
export const ortVersion: string = ort.env.versions.node ?? "unknown";

/** The largest absolute difference of two arrays of one length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) {
    throw new RangeError(`maxAbsDiff: lengths differ, ${a.length} and ${b.length}`);
  }
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}
