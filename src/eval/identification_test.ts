import { deepStrictEqual, ok, strictEqual, throws } from "node:assert/strict";
import { evaluateIdentification } from "./identification.ts";
import { gaussian, mulberry32 } from "./_random.ts";

/** Brute force: sort every gallery row by cosine, ties putting impostors first. */
function bruteRanks(
  probe: Float32Array,
  probeLabels: number[],
  gallery: Float32Array,
  galleryLabels: number[],
  d: number,
): number[] {
  const cos = (a: Float32Array, i: number, b: Float32Array, j: number) => {
    let ab = 0, aa = 0, bb = 0;
    for (let k = 0; k < d; k++) {
      ab += a[i * d + k] * b[j * d + k];
      aa += a[i * d + k] ** 2;
      bb += b[j * d + k] ** 2;
    }
    return ab / Math.sqrt(aa * bb);
  };
  return probeLabels.map((label, p) => {
    const rows = galleryLabels.map((l, g) => ({
      s: cos(probe, p, gallery, g),
      genuine: l === label,
    }));
    rows.sort((x, y) => y.s - x.s || Number(x.genuine) - Number(y.genuine));
    return rows.findIndex((r) => r.genuine) + 1;
  });
}

Deno.test("evaluateIdentification() matches brute-force ranks with distractors", () => {
  const rand = mulberry32(11);
  const normal = gaussian(rand);
  const d = 24;
  const ids = 9;
  const centers = Array.from({ length: ids * d }, normal);
  const sample = (id: number) =>
    Array.from({ length: d }, (_, k) => centers[id * d + k] + 1.2 * normal());
  // 13 probes (not a multiple of the 4-probe tile), 37 labeled gallery rows (odd), 300
  // distractors (more than one 256-row block), some distractors inside the gallery (-1).
  const probeLabels = Array.from({ length: 13 }, (_, i) => i % ids);
  const galleryLabels = Array.from({ length: 37 }, (_, i) => (i % 5 === 4 ? -1 : i % ids));
  const probe = new Float32Array(probeLabels.flatMap(sample));
  const gallery = new Float32Array(galleryLabels.map((l) => (l < 0 ? 0 : l)).flatMap(sample));
  const distractors = new Float32Array(Array.from({ length: 300 * d }, () => 1.6 * normal()));
  const r = evaluateIdentification(
    { embeddings: probe, labels: probeLabels },
    { embeddings: gallery, labels: galleryLabels, distractors },
    { maxRank: 20 },
  );
  const all = new Float32Array([...gallery, ...distractors]);
  const allLabels = [...galleryLabels, ...Array(300).fill(-1)];
  const expected = bruteRanks(probe, probeLabels, all, allLabels, d);
  deepStrictEqual(Array.from(r.ranks), expected);
  ok(new Set(expected).size > 3, "the case should spread ranks out");
  for (let k = 1; k <= 20; k++) {
    strictEqual(r.cmc[k - 1], expected.filter((x) => x <= k).length / 13);
  }
  strictEqual(r.rank1, r.cmc[0]);
  strictEqual(r.galleryRows, 337);
});

Deno.test("evaluateIdentification() counts a tie with an impostor against the probe", () => {
  const probes = { embeddings: new Float32Array([1, 0]), labels: [3] };
  const gallery = { embeddings: new Float32Array([2, 0, 1, 1, 5, 0]), labels: [3, 4, -1] };
  const r = evaluateIdentification(probes, gallery, { maxRank: 2 });
  deepStrictEqual(Array.from(r.ranks), [2]);
  deepStrictEqual(Array.from(r.cmc), [0, 1]);
  // Raw dot products: [5, 0] scores 5 > 2 and [1, 1] scores 1 < 2.
  const raw = evaluateIdentification(probes, gallery, { normalize: false });
  deepStrictEqual(Array.from(raw.ranks), [2]);
});

Deno.test("evaluateIdentification() uses the best of several genuine rows", () => {
  // Probe 0's first genuine row scores below both impostors; its second one wins.
  const probes = { embeddings: new Float32Array([1, 0, 0, 1]), labels: [0, 1] };
  const gallery = {
    embeddings: new Float32Array([-1, 0.2, 1, 0.1, 1, 1, 0.1, 1]),
    labels: [0, 0, 1, 1],
  };
  const r = evaluateIdentification(probes, gallery);
  deepStrictEqual(Array.from(r.ranks), [1, 1]);
});

Deno.test("evaluateIdentification() rejects unknown probe identities and bad shapes", () => {
  const g = { embeddings: new Float32Array([1, 0]), labels: [1] };
  throws(
    () => evaluateIdentification({ embeddings: new Float32Array([1, 0]), labels: [2] }, g),
    /Probe 0 has label 2/,
  );
  throws(
    () => evaluateIdentification({ embeddings: new Float32Array([1, 0, 0]), labels: [1] }, g),
    /gallery embeddings/,
  );
  throws(
    () => evaluateIdentification({ embeddings: new Float32Array([1, 0]), labels: [-1] }, g),
    /probe label -1/,
  );
  throws(
    () =>
      evaluateIdentification({ embeddings: new Float32Array([1, 0]), labels: [1] }, {
        ...g,
        distractors: new Float32Array(3),
      }),
    /distractors/,
  );
});
