import assert from "node:assert/strict";
import { decodeImage } from "./image.ts";
import { formatPairs, lfwImagePath, parsePairs } from "./pairs.ts";

const lfwRoot = new URL("../../test/fixtures/lfw/", import.meta.url);
const pairsUrl = new URL("pairs.txt", lfwRoot);
const expected = JSON.parse(
  await Deno.readTextFile(new URL("../../test/fixtures/expected.json", import.meta.url)),
).lfw as { folds: number; pairs_per_fold_each_kind: number; identities: string[] };

Deno.test("parsePairs() reads the LFW fixture: folds, kinds, paths that exist", async () => {
  const text = await Deno.readTextFile(pairsUrl);
  const p = parsePairs(text, { file: "pairs.txt" });
  assert.equal(p.folds, expected.folds);
  assert.equal(p.pairsPerFold, expected.pairs_per_fold_each_kind);
  assert.equal(p.pairs.length, expected.folds * 2 * expected.pairs_per_fold_each_kind);
  assert.deepEqual(p.pairs.map((x) => x.same), [
    true,
    true,
    false,
    false,
    true,
    true,
    false,
    false,
  ]);
  assert.deepEqual(p.pairs.map((x) => x.fold), [0, 0, 0, 0, 1, 1, 1, 1]);
  assert.deepEqual(p.pairs.map((x) => x.line), [2, 3, 4, 5, 6, 7, 8, 9]);
  assert.deepEqual(p.pairs[0], {
    nameA: "Identity_Alpha",
    indexA: 1,
    nameB: "Identity_Alpha",
    indexB: 2,
    fold: 0,
    a: "Identity_Alpha/Identity_Alpha_0001.jpg",
    b: "Identity_Alpha/Identity_Alpha_0002.jpg",
    same: true,
    line: 2,
  });
  assert.equal(p.pairs[7].a, "Identity_Charlie/Identity_Charlie_0001.jpg");
  assert.equal(p.pairs[7].b, "Identity_Delta/Identity_Delta_0002.jpg");
  const names = new Set(p.pairs.flatMap((x) => [x.nameA, x.nameB]));
  assert.deepEqual([...names].sort(), expected.identities);
  for (const path of new Set(p.pairs.flatMap((x) => [x.a, x.b]))) {
    const img = decodeImage(await Deno.readFile(new URL(path, lfwRoot)), path);
    assert.ok(img.width > 0 && img.height > 0);
  }
  // Writing the parsed pairs back gives the original file.
  assert.equal(formatPairs(p.pairs), text);
});

Deno.test("parsePairs() accepts the unambiguous variants", () => {
  // pairsDevTrain.txt style: one number, one fold.
  const dev = parsePairs("2\r\nA 1 2\r\nB 1 3\r\nA 1 B 1\r\nB 2 C 4\r\n");
  assert.equal(dev.folds, 1);
  assert.equal(dev.pairsPerFold, 2);
  assert.deepEqual(dev.pairs.map((x) => x.b), [
    "A/A_0002.jpg",
    "B/B_0003.jpg",
    "B/B_0001.jpg",
    "C/C_0004.jpg",
  ]);
  // No header: one fold, balanced.
  const bare = parsePairs("\nA 1 B 2\nA 1 2\n\n", { ext: ".png" });
  assert.deepEqual(bare.pairs.map((x) => [x.same, x.a, x.line]), [
    [false, "A/A_0001.png", 2],
    [true, "A/A_0001.png", 3],
  ]);
  assert.equal(bare.pairsPerFold, 1);
  // Different lines before same lines inside a fold: the kind comes from the field count.
  const swapped = parsePairs("2 1\nA 1 B 2\nA 1 2\nC 3 4\nC 1 D 1\n");
  assert.deepEqual(swapped.pairs.map((x) => [x.same, x.fold]), [
    [false, 0],
    [true, 0],
    [true, 1],
    [false, 1],
  ]);
  assert.equal(lfwImagePath("X", 12345), "X/X_12345.jpg");
});

Deno.test("parsePairs() names the line of each problem", () => {
  assert.throws(() => parsePairs("1 1\nA 1 2\nA x B 2\n"), /Bad image index at line 3: "A x B 2"/);
  assert.throws(() => parsePairs("1 1\nA 1 2\nC 1 2 3 4\n"), /Bad pair at line 3: "C 1 2 3 4"/);
  assert.throws(
    () => parsePairs("1 1\nA 1 2\nA 1 B 2\nA 3 4\n", { file: "p.txt" }),
    /p\.txt has 3 pair lines after the header "1 1" \(line 1\), expected 2 .*first extra one is line 4/,
  );
  assert.throws(
    () => parsePairs("2 1\nA 1 2\nA 1 B 2\nA 3 4\n"),
    /has 3 pair lines .* expected 4 \(2 folds x 2 x 1\); the last one is line 4/,
  );
  assert.throws(
    () => parsePairs("2 1\nA 1 2\nA 1 B 2\nA 3 4\nC 1 2\n"),
    /Fold 1 \(lines 4-5\) has 2 same and 0 different pairs, expected 1 of each/,
  );
  assert.throws(() => parsePairs("10 x\nA 1 2\n"), /Bad header at line 1: "10 x"/);
  assert.throws(() => parsePairs("A 1 2\nB 1 2\nA 1 B 1\n"), /no header and 2 same \/ 1 different/);
  assert.throws(
    () => parsePairs("1 1\nA 1 2\nA 1 A 2\n"),
    /Line 3 is a different-identity line naming A twice/,
  );
  assert.throws(() => parsePairs("1 1\nA 0 2\nA 1 B 2\n"), /Bad image index at line 2/);
  assert.throws(() => parsePairs("\n\n"), /is empty/);
});

Deno.test("formatPairs() groups by fold and kind and refuses unbalanced folds", () => {
  const text = formatPairs([
    { nameA: "A", indexA: 1, nameB: "B", indexB: 1, fold: 1 },
    { nameA: "A", indexA: 1, nameB: "A", indexB: 2, fold: 0 },
    { nameA: "C", indexA: 2, nameB: "C", indexB: 3, fold: 1 },
    { nameA: "B", indexA: 2, nameB: "A", indexB: 3, fold: 0 },
  ]);
  assert.equal(text, "2 1\nA 1 2\nB 2 A 3\nC 2 3\nA 1 B 1\n");
  const p = parsePairs(text);
  assert.deepEqual(p.pairs.map((x) => [x.nameA, x.fold, x.same]), [
    ["A", 0, true],
    ["B", 0, false],
    ["C", 1, true],
    ["A", 1, false],
  ]);
  assert.throws(
    () => formatPairs([{ nameA: "A", indexA: 1, nameB: "A", indexB: 2, fold: 0 }]),
    /Fold 0 has 1 same and 0 different pairs/,
  );
  assert.throws(
    () =>
      formatPairs([
        { nameA: "A", indexA: 1, nameB: "A", indexB: 2, fold: 1 },
        { nameA: "A", indexA: 1, nameB: "B", indexB: 2, fold: 1 },
      ]),
    /Fold 0 has 0 same and 0 different pairs, expected at least one of each/,
  );
  assert.throws(
    () => formatPairs([{ nameA: "A b", indexA: 1, nameB: "A b", indexB: 2, fold: 0 }]),
    /Pair 0 has name "A b", expected no whitespace/,
  );
  assert.throws(
    () => formatPairs([{ nameA: "A", indexA: 1.5, nameB: "A", indexB: 2, fold: 0 }]),
    /image index 1\.5/,
  );
  assert.throws(() => formatPairs([]), /Cannot format 0 pairs/);
});
