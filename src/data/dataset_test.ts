import assert from "node:assert/strict";
import { batchSampler, imageFolderDataset, recordIODataset, syntheticDataset } from "./dataset.ts";

const FIXTURES = new URL("../../test/fixtures/", import.meta.url);

Deno.test("batchSampler() shuffles each epoch, flips, and is deterministic", async () => {
  const ds = syntheticDataset({ identities: 3, imagesPerIdentity: 4, size: 16 });
  const sample = batchSampler(ds, { batchSize: 4, seed: 5 });
  const epoch: number[] = [];
  for (let i = 0; i < 3; i++) epoch.push(...(await sample(i)).labels);
  // One epoch of 12 images covers each identity 4 times.
  assert.deepEqual([0, 1, 2].map((c) => epoch.filter((l) => l === c).length), [4, 4, 4]);
  const again = await batchSampler(ds, { batchSize: 4, seed: 5 })(1);
  assert.deepEqual(again.images, (await sample(1)).images);
});

Deno.test("imageFolderDataset() reads the LFW fixture and reports a corrupt file", async () => {
  const root = await Deno.makeTempDir();
  try {
    for (const who of ["Identity_Alpha", "Identity_Bravo"]) {
      await Deno.mkdir(`${root}/${who}`);
      await Deno.copyFile(new URL(`lfw/${who}/${who}_0001.jpg`, FIXTURES), `${root}/${who}/a.jpg`);
    }
    await Deno.writeFile(`${root}/Identity_Bravo/b.jpg`, new Uint8Array([0xff, 0xd8, 0xff, 0]));
    const ds = await imageFolderDataset(root, { size: 24 });
    assert.equal(ds.classes, 2);
    assert.equal(ds.count, 3);
    const out = new Float32Array(3 * 3 * 24 * 24);
    const labels = await ds.load(Int32Array.from([0, 2, 1]), out);
    assert.equal(ds.skipped.length, 1);
    assert.match(ds.skipped[0].path, /b\.jpg$/);
    // The corrupt image (index 2) is replaced by the next readable one (index 0).
    assert.deepEqual([...labels], [0, 0, 1]);
    assert.ok(out.every(Number.isFinite));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("imageFolderDataset() lets a read error through instead of substituting an image", async () => {
  const root = await Deno.makeTempDir();
  try {
    for (const who of ["Identity_Alpha", "Identity_Bravo"]) {
      await Deno.mkdir(`${root}/${who}`);
      await Deno.copyFile(new URL(`lfw/${who}/${who}_0001.jpg`, FIXTURES), `${root}/${who}/a.jpg`);
    }
    const ds = await imageFolderDataset(root, { size: 24 });
    // The file vanishes after the scan: an I/O error, not a bad image.
    await Deno.remove(`${root}/Identity_Bravo/a.jpg`);
    const out = new Float32Array(2 * 3 * 24 * 24);
    await assert.rejects(ds.load(Int32Array.from([1, 0]), out), Deno.errors.NotFound);
    assert.equal(ds.skipped.length, 0);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("recordIODataset() loads insightface's packed images", async () => {
  const ds = await recordIODataset(new URL("insightface/train.rec", FIXTURES).pathname, {
    size: 32,
  });
  assert.equal(ds.classes, 4);
  assert.equal(ds.count, 12);
  const out = new Float32Array(2 * 3 * 32 * 32);
  const labels = await ds.load(Int32Array.from([0, 11]), out, Uint8Array.from([0, 1]));
  assert.deepEqual([...labels], [0, 3]);
});
