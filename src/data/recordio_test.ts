import assert from "node:assert/strict";
import { decodeImage } from "./image.ts";
import { openRecordIO, parseIdx, parseRecord, RECORDIO_MAGIC, unframeRecord } from "./recordio.ts";

const recUrl = new URL("../../test/fixtures/insightface/train.rec", import.meta.url);
const idxUrl = new URL("../../test/fixtures/insightface/train.idx", import.meta.url);
const expected = JSON.parse(
  await Deno.readTextFile(new URL("../../test/fixtures/expected.json", import.meta.url)),
).recordio as { images: number; identities: number; labels_of_records_1_to_n: number[] };

/** An IRHeader (24 bytes) followed by float32 labels and data, built independently. */
function payload(flag: number, label: number, id: number, extra: number[], data: number[]) {
  const out = new Uint8Array(24 + 4 * extra.length + data.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, flag, true);
  v.setFloat32(4, label, true);
  v.setBigUint64(8, BigInt(id), true);
  v.setBigUint64(16, 99n, true);
  extra.forEach((x, i) => v.setFloat32(24 + 4 * i, x, true));
  out.set(data, 24 + 4 * extra.length);
  return out;
}

/** One frame: magic, (cflag << 29) | length, bytes, zero padding to 4. */
function frame(cflag: number, bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + ((bytes.length + 3) & ~3));
  const v = new DataView(out.buffer);
  v.setUint32(0, RECORDIO_MAGIC, true);
  v.setUint32(4, (cflag << 29) | bytes.length, true);
  out.set(bytes, 8);
  return out;
}

function cat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

Deno.test("openRecordIO() reads the insightface fixture: counts, labels, images", async () => {
  const ds = await openRecordIO(recUrl, idxUrl);
  try {
    assert.equal(ds.numImages, expected.images);
    assert.equal(ds.numIdentities, expected.identities);
    assert.deepEqual(Array.from(ds.labels), expected.labels_of_records_1_to_n);
    assert.deepEqual(Array.from(ds.keys), expected.labels_of_records_1_to_n.map((_, i) => i + 1));
    const whole = await Deno.readFile(recUrl);
    const idx = parseIdx(await Deno.readTextFile(idxUrl));
    // Concurrent reads are serialised internally; each must get its own record.
    const images = await Promise.all(Array.from({ length: ds.numImages }, (_, i) => ds.read(i)));
    for (const [i, rec] of images.entries()) {
      assert.equal(rec.index, i);
      assert.equal(rec.key, i + 1);
      assert.equal(rec.label, expected.labels_of_records_1_to_n[i]);
      // Same bytes as the pure in-memory path.
      const pure = parseRecord(unframeRecord(whole, idx.get(i + 1)!).payload);
      assert.deepEqual(rec.image, pure.data);
      assert.equal(pure.id, BigInt(i + 1));
    }
    const img = decodeImage(images[0].image, "record 1");
    assert.equal(img.width, 112);
    assert.equal(img.height, 112);
    // Identity 0's background is (40, 50, 70); identity 3's is (130, 50, 70).
    assert.ok(Math.abs(img.data[0] - 40) <= 4);
    assert.ok(Math.abs(decodeImage(images[11].image).data[0] - 130) <= 4);
    const header = await ds.readRecord(0);
    assert.equal(header.flag, 2);
    assert.deepEqual(Array.from(header.labels), [13, 17]);
    const id2 = await ds.readRecord(15);
    assert.deepEqual(Array.from(id2.labels), [7, 10]);
    await assert.rejects(ds.read(12), /Image index 12 is out of range for 12 images/);
  } finally {
    ds.close();
  }
  await assert.rejects(ds.read(0), /is closed/);
});

Deno.test("openRecordIO() with labelsFrom images agrees with the identity records", async () => {
  const ds = await openRecordIO(recUrl, idxUrl, { labelsFrom: "images" });
  try {
    assert.deepEqual(Array.from(ds.labels), expected.labels_of_records_1_to_n);
    assert.equal(ds.numIdentities, 4);
  } finally {
    ds.close();
  }
});

Deno.test("parseRecord() reads the IRHeader, extra labels and data", () => {
  const r = parseRecord(payload(0, 7, 42, [], [1, 2, 3]));
  assert.equal(r.flag, 0);
  assert.equal(r.label, 7);
  assert.equal(r.id, 42n);
  assert.equal(r.id2, 99n);
  assert.equal(r.labels.length, 0);
  assert.deepEqual(Array.from(r.data), [1, 2, 3]);
  const m = parseRecord(payload(3, 0, 1, [0.5, 2, 3], [9]));
  assert.deepEqual(Array.from(m.labels), [0.5, 2, 3]);
  assert.deepEqual(Array.from(m.data), [9]);
  assert.throws(() => parseRecord(new Uint8Array(10)), /10 bytes is shorter than the 24-byte/);
  assert.throws(
    () => parseRecord(payload(5, 0, 0, [1], []), { file: "x.rec" }),
    /28 bytes in x\.rec has flag 5, expected at least 44 bytes/,
  );
});

Deno.test("unframeRecord() joins multi-part records, putting the magic back", () => {
  // dmlc's writer splits a payload at each 4-aligned occurrence of the magic number and drops
  // it; the reader restores it. Payload: header + [1,2,3,4] + magic + [5,6,7] + magic.
  const magic = [0x0a, 0x23, 0xd7, 0xce];
  const full = payload(0, 1, 5, [], [1, 2, 3, 4, ...magic, 5, 6, 7, 0, ...magic]);
  assert.equal(full.length, 40);
  const file = cat(
    frame(0, new Uint8Array([0xaa])), // an unrelated record first
    frame(1, full.subarray(0, 28)),
    frame(2, full.subarray(32, 36)),
    frame(3, full.subarray(40, 40)), // empty last part: the payload ended with the magic
    frame(0, new Uint8Array([0xbb, 0xbc])),
  );
  const first = unframeRecord(file, 0);
  assert.deepEqual(Array.from(first.payload), [0xaa]);
  assert.equal(first.end, 12);
  const { payload: joined, end } = unframeRecord(file, first.end);
  assert.deepEqual(joined, full);
  assert.equal(end, 12 + 36 + 12 + 8);
  assert.deepEqual(Array.from(unframeRecord(file, end).payload), [0xbb, 0xbc]);
  assert.deepEqual(Array.from(parseRecord(joined).data.subarray(4, 8)), magic);
  // Starting inside a multi-part record, or at a non-frame, is an error naming the offset.
  assert.throws(() => unframeRecord(file, 48), /Bad RecordIO part flag 2 at offset 48/);
  assert.throws(
    () => unframeRecord(file, 4, { file: "t.rec" }),
    /Bad RecordIO magic 0x[0-9a-f]{8} at offset 4 in t\.rec, expected 0xced7230a/,
  );
  assert.throws(() => unframeRecord(file.subarray(0, 40), 12), /Truncated RecordIO record at/);
});

Deno.test("parseIdx() reads key/offset lines and names bad lines", () => {
  const idx = parseIdx("0\t0\n5\t40\r\n\n7 96\n");
  assert.deepEqual([...idx.entries()], [[0, 0], [5, 40], [7, 96]]);
  assert.throws(() => parseIdx("0\t0\n1\tx\n", { file: "a.idx" }), /line 2 in a\.idx: "1\\tx"/);
  assert.throws(() => parseIdx("0\t0\n0\t8\n"), /Duplicate key 0 at RecordIO index line 2/);
});

Deno.test("openRecordIO() reads multi-part records from disk and rejects bad offsets", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cosgrad_recordio_" });
  try {
    const magic = [0x0a, 0x23, 0xd7, 0xce];
    const image = [1, 2, 3, 4, ...magic, 9, 9, 9];
    const img = payload(0, 0, 1, [], image);
    const records = [
      frame(0, payload(2, 0, 0, [2, 3], [])),
      cat(frame(1, img.subarray(0, 28)), frame(3, img.subarray(32))),
      frame(0, payload(2, 0, 2, [1, 2], [])),
    ];
    const offsets = [0, records[0].length, records[0].length + records[1].length];
    await Deno.writeFile(`${dir}/t.rec`, cat(...records));
    await Deno.writeTextFile(`${dir}/t.idx`, offsets.map((o, k) => `${k}\t${o}`).join("\n"));
    const ds = await openRecordIO(`${dir}/t.rec`);
    try {
      assert.equal(ds.numImages, 1);
      assert.equal(ds.numIdentities, 1);
      assert.deepEqual(Array.from((await ds.read(0)).image), image);
    } finally {
      ds.close();
    }
    // An index whose offset for key 1 points into the middle of a record: image records are
    // only read on demand, so the error comes from read().
    await Deno.writeTextFile(`${dir}/bad.idx`, `0\t0\n1\t${offsets[1] + 4}\n2\t${offsets[2]}\n`);
    const bad = await openRecordIO(`${dir}/t.rec`, `${dir}/bad.idx`);
    try {
      await assert.rejects(
        bad.read(0),
        new RegExp(`Bad RecordIO magic 0x[0-9a-f]{8} at offset ${offsets[1] + 4} in .*t\\.rec`),
      );
    } finally {
      bad.close();
    }
    // An index whose offset for image key 1 lies past the end of the file: the index is
    // blamed, naming the key, when the file is opened.
    await Deno.writeTextFile(`${dir}/far.idx`, `0\t0\n1\t999999\n2\t${offsets[2]}\n`);
    await assert.rejects(
      openRecordIO(`${dir}/t.rec`, `${dir}/far.idx`),
      new RegExp(
        `Index .*far\\.idx gives record key 1 the offset 999999, past the end of .*t\\.rec ` +
          `\\(${offsets[2] + records[2].length} bytes\\)`,
      ),
    );
    // A file cut short.
    await Deno.writeFile(`${dir}/cut.rec`, cat(...records).subarray(0, offsets[2] + 20));
    await Deno.copyFile(`${dir}/t.idx`, `${dir}/cut.idx`);
    await assert.rejects(openRecordIO(`${dir}/cut.rec`), /Truncated RecordIO file .*cut\.rec/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openRecordIO() handles files without a header and catches label mismatches", async () => {
  const dir = await Deno.makeTempDir({ prefix: "cosgrad_recordio_" });
  const write = async (name: string, records: Uint8Array[]) => {
    let off = 0;
    const lines = records.map((r, k) => {
      const line = `${k}\t${off}`;
      off += r.length;
      return line;
    });
    await Deno.writeFile(`${dir}/${name}.rec`, cat(...records));
    await Deno.writeTextFile(`${dir}/${name}.idx`, lines.join("\n") + "\n");
  };
  try {
    // No header: every key is an image; identities = largest label + 1.
    await write("plain", [
      frame(0, payload(0, 2, 0, [], [0xd0])),
      frame(0, payload(0, 0, 1, [], [0xd1])),
      frame(0, payload(1, 9, 2, [1], [0xd2])), // flag 1: label is labels[0]
    ]);
    const plain = await openRecordIO(`${dir}/plain.rec`);
    try {
      assert.equal(plain.numImages, 3);
      assert.equal(plain.numIdentities, 3);
      assert.deepEqual(Array.from(plain.labels), [2, 0, 1]);
      assert.deepEqual(Array.from((await plain.read(2)).image), [0xd2]);
    } finally {
      plain.close();
    }
    // Header says identity 0 owns image 1, but the image record is labelled 5.
    await write("odd", [
      frame(0, payload(2, 0, 0, [2, 3], [])),
      frame(0, payload(0, 5, 1, [], [0xd0])),
      frame(0, payload(2, 0, 2, [1, 2], [])),
    ]);
    const odd = await openRecordIO(`${dir}/odd.rec`);
    try {
      await assert.rejects(odd.read(0), /Image record 1 in .* has label 5, but its identity/);
    } finally {
      odd.close();
    }
    await assert.rejects(
      openRecordIO(`${dir}/odd.rec`, undefined, { labelsFrom: "images" }),
      /Image record 1 in .* has label 5, expected below the header's 1 identities/,
    );
    // A fractional label is refused.
    await write("frac", [frame(0, payload(0, 1.5, 0, [], []))]);
    await assert.rejects(
      openRecordIO(`${dir}/frac.rec`),
      /has label 1\.5, expected a non-negative/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
