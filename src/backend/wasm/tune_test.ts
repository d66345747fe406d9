// The wasm GEMM's blocking chosen by measurement through the shared tuning table.
import assert from "node:assert/strict";
import { TuningTable } from "../../../kernels/tune_cache.ts";
import type { GemmShape } from "../../kernel/wasm_gemm.ts";
import {
  chosenGemm,
  DEFAULT_GEMM,
  GEMM_CLASS,
  gemmCandidates,
  gemmShapeFor,
  measureGemm,
} from "./tune.ts";
import { WasmBackend } from "./wasm_backend.ts";

Deno.test("measureGemm times blockings that agree with the first one's results", () => {
  const shapes = gemmCandidates().filter((s) => s.kc === 128).slice(0, 3);
  assert.equal(shapes.length, 3);
  const measured = measureGemm(shapes, { fma: false, trials: 1 });
  assert.equal(measured.length, 3);
  for (const m of measured) {
    assert.ok(m.runMs > 0 && m.compileMs >= 0, JSON.stringify(m));
    // Different blockings sum in a different order: close, not equal, to the reference.
    assert.ok(m.error <= 1e-5, `error ${m.error}`);
  }
  assert.equal(measured[0].error, 0);
});

Deno.test("the tuning table's record chooses the backend's blocking; a wrong candidate never", () => {
  const variant = (s: Omit<GemmShape, "fma">) => ({ algo: "wasmGemm" as const, ...s });
  const fast = { mr: 6, nr: 8, kc: 128, nc: 512, unroll: 2, aLoad: "splat" as const };
  const wrong = { ...fast, kc: 512 };
  const table = new TuningTable("test|wasm", "wasm", { mode: "cache", path: null });
  assert.deepEqual(gemmShapeFor(table, { fma: false }), { ...DEFAULT_GEMM, fma: false });
  table.record(GEMM_CLASS, {
    candidates: [
      { variant: variant(DEFAULT_GEMM), runMs: 10, compileMs: 1, error: 0 },
      { variant: variant(fast), runMs: 5, compileMs: 1, error: 1e-7 },
      { variant: variant(wrong), runMs: 1, compileMs: 1, error: 0.5 },
    ],
  });
  assert.deepEqual(chosenGemm(table.get(GEMM_CLASS)!, 500), fast);
  const backend = new WasmBackend({ threads: 1, tuning: table, fma: false });
  assert.deepEqual(backend.gemmShape, { ...fast, fma: false });
  backend.close();
  const off = new TuningTable("test|wasm", "wasm", { mode: "off", path: null });
  assert.deepEqual(gemmShapeFor(off, { fma: true }), { ...DEFAULT_GEMM, fma: true });
});
