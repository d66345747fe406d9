// Fault suite of the readers: every file format the project reads (PNG, JPEG, RecordIO .rec
// and .idx, verification .bin pickles, pairs.txt, safetensors, checkpoints) under random
// truncation and random byte flips. Each damaged file must give a named error (naming the
// file) or a value; a truncated file must never read as a different value; formats with
// integrity checks (PNG's CRCs, checkpoints' SHA-256) must never read a flipped file as a
// different value either. Formats without a checksum (JPEG, pickles, RecordIO, pairs.txt,
// safetensors) cannot tell a flipped payload byte from a real one; how often that happens is
// counted, not hidden. Hostile pickles (GLOBAL/REDUCE: code execution in Python) are refused.
// CI runs 40 damaged files per reader and kind; COSGRAD_FUZZ=full runs 1,000
// (COSGRAD_FAULT_OUT=file.json writes the figures).
import assert from "node:assert/strict";
import { encode as encodePng } from "fast-png";
import { decodeImage } from "../src/data/image.ts";
import { openRecordIO } from "../src/data/recordio.ts";
import { parsePickle, readVerifyBin } from "../src/data/verify_bin.ts";
import { parsePairs } from "../src/data/pairs.ts";
import { syntheticFaces, toRgba8 } from "../src/data/synthetic.ts";
import { loadSafetensors, saveSafetensors } from "../src/io/safetensors.ts";
import { loadCheckpoint, saveCheckpoint } from "../src/io/checkpoint.ts";
import { mulberry32 } from "../src/eval/_random.ts";

const FULL = Deno.env.get("COSGRAD_FUZZ") === "full";
const TRIALS = FULL ? 1000 : 40;
const SEED = Number(Deno.env.get("COSGRAD_PROPERTY_SEED") ?? 20180126);
const FIXTURES = new URL("./fixtures/", import.meta.url).pathname;

/** A reader: reads the file at `path` (after the damage) and returns a comparable value. */
interface Reader {
  name: string;
  /** The file that is damaged, in the work directory. */
  file: string;
  /** True when the format detects any change (checksums): no flip may read as a new value. */
  checked: boolean;
  read: (dir: string) => Promise<string>;
}

function digest(bytes: ArrayLike<number>): string {
  let h = 2166136261;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i], 16777619);
  return `${bytes.length}:${h >>> 0}`;
}

const READERS: Reader[] = [
  {
    name: "PNG",
    file: "face.png",
    checked: true,
    read: async (dir) => {
      const p = `${dir}/face.png`;
      const img = decodeImage(await Deno.readFile(p), p);
      return `${img.width}x${img.height} ${digest(img.data)}`;
    },
  },
  {
    name: "JPEG",
    file: "Identity_Alpha_0001.jpg",
    checked: false,
    read: async (dir) => {
      const p = `${dir}/Identity_Alpha_0001.jpg`;
      const img = decodeImage(await Deno.readFile(p), p);
      return `${img.width}x${img.height} ${digest(img.data)}`;
    },
  },
  ...(["train.rec", "train.idx"] as const).map((file): Reader => ({
    name: `RecordIO ${file.slice(6)}`,
    file,
    checked: false,
    read: async (dir) => {
      const ds = await openRecordIO(`${dir}/train.rec`, `${dir}/train.idx`);
      try {
        const parts = [`${ds.numImages} ${ds.numIdentities} ${ds.labels.join()}`];
        for (let i = 0; i < ds.numImages; i++) {
          const r = await ds.read(i);
          parts.push(`${r.key}:${r.label}:${digest(r.image)}`);
        }
        return parts.join(" ");
      } finally {
        ds.close();
      }
    },
  })),
  {
    name: "verification .bin",
    file: "verify.bin",
    checked: false,
    read: async (dir) => {
      const bin = await readVerifyBin(`${dir}/verify.bin`);
      return `${bin.issame.join()} ${bin.images.map(digest).join()}`;
    },
  },
  {
    name: "pairs.txt",
    file: "pairs.txt",
    checked: false,
    read: async (dir) => {
      const p = `${dir}/pairs.txt`;
      return JSON.stringify(parsePairs(await Deno.readTextFile(p), { file: p }));
    },
  },
  {
    name: "safetensors",
    file: "weights.safetensors",
    checked: false,
    read: async (dir) => {
      const { tensors, metadata } = await loadSafetensors(`${dir}/weights.safetensors`);
      return JSON.stringify([
        metadata,
        Object.entries(tensors).map(([k, t]) => [
          k,
          t.dtype,
          t.shape,
          digest(
            new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
          ),
        ]),
      ]);
    },
  },
  {
    name: "checkpoint",
    file: "ckpt.safetensors",
    checked: true,
    read: async (dir) => {
      const { tensors, metadata } = await loadCheckpoint(`${dir}/ckpt.safetensors`);
      return JSON.stringify([
        metadata,
        Object.entries(tensors).map(([k, t]) => [
          k,
          t.dtype,
          t.shape,
          digest(
            new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength),
          ),
        ]),
      ]);
    },
  },
];

/** Writes the pristine files: fixtures in the field's formats, and ones written here. */
async function pristine(dir: string): Promise<void> {
  for (const f of ["train.rec", "train.idx", "verify.bin"]) {
    await Deno.copyFile(`${FIXTURES}insightface/${f}`, `${dir}/${f}`);
  }
  await Deno.copyFile(`${FIXTURES}lfw/pairs.txt`, `${dir}/pairs.txt`);
  await Deno.copyFile(
    `${FIXTURES}lfw/Identity_Alpha/Identity_Alpha_0001.jpg`,
    `${dir}/Identity_Alpha_0001.jpg`,
  );
  const faces = syntheticFaces({ seed: 1, identities: 1, imagesPerIdentity: 1, size: 32 });
  const rgba = toRgba8(faces.image(0, 0));
  await Deno.writeFile(
    `${dir}/face.png`,
    encodePng({ width: 32, height: 32, data: rgba, channels: 4, depth: 8 }),
  );
  const tensors = {
    w: {
      dtype: "float32" as const,
      shape: [4, 8],
      data: Float32Array.from({ length: 32 }, Math.sin),
    },
    b: { dtype: "int32" as const, shape: [3], data: new Int32Array([1, 2, 3]) },
  };
  await saveSafetensors(`${dir}/weights.safetensors`, tensors, { step: "12" });
  await saveCheckpoint(`${dir}/ckpt.safetensors`, tensors, { step: "12" });
}

interface Tally {
  namedError: number;
  same: number;
  different: number;
  unnamedError: string[];
  maxMs: number;
}

async function damage(
  reader: Reader,
  dir: string,
  original: Uint8Array,
  expected: string,
  kind: "truncate" | "flip",
  random: () => number,
  tally: Tally,
): Promise<void> {
  const bytes = kind === "truncate"
    ? original.slice(0, Math.floor(random() * original.length))
    : original.slice();
  if (kind === "flip") {
    const flips = 1 + Math.floor(random() * 4);
    for (let k = 0; k < flips; k++) {
      bytes[Math.floor(random() * bytes.length)] ^= 1 + Math.floor(random() * 255);
    }
  }
  await Deno.writeFile(`${dir}/${reader.file}`, bytes);
  const t0 = performance.now();
  try {
    const value = await reader.read(dir);
    if (value === expected) tally.same++;
    else tally.different++;
  } catch (e) {
    if (e instanceof Error && e.message.includes(reader.file)) tally.namedError++;
    else if (tally.unnamedError.length < 5) tally.unnamedError.push(String(e));
    else tally.unnamedError.push("...");
  }
  tally.maxMs = Math.max(tally.maxMs, performance.now() - t0);
}

const figures: Record<string, Record<string, Tally>> = {};

for (const reader of READERS) {
  Deno.test(`${reader.name}: truncated and flipped files give a named error, never a silently different truncation`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "cosgrad_readers_" });
    try {
      await pristine(dir);
      const original = await Deno.readFile(`${dir}/${reader.file}`);
      const expected = await reader.read(dir);
      const random = mulberry32(SEED ^ digest(new TextEncoder().encode(reader.name)).length);
      figures[reader.name] = {};
      for (const kind of ["truncate", "flip"] as const) {
        const tally: Tally = { namedError: 0, same: 0, different: 0, unnamedError: [], maxMs: 0 };
        for (let t = 0; t < TRIALS; t++) {
          await damage(reader, dir, original, expected, kind, random, tally);
        }
        tally.maxMs = Math.round(tally.maxMs * 10) / 10;
        figures[reader.name][kind] = tally;
        console.log(`${reader.name} ${kind}: ${JSON.stringify(tally)}`);
        assert.deepEqual(tally.unnamedError, [], `${reader.name} ${kind}: errors without the file`);
        if (kind === "truncate" || reader.checked) {
          assert.equal(tally.different, 0, `${reader.name} ${kind}: silently different values`);
        }
      }
      await Deno.writeFile(`${dir}/${reader.file}`, original);
      assert.equal(await reader.read(dir), expected);
      const file = Deno.env.get("COSGRAD_FAULT_OUT");
      if (file) await Deno.writeTextFile(file, JSON.stringify(figures, null, 1));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
}

Deno.test("hostile pickles (GLOBAL, STACK_GLOBAL, REDUCE, INST, OBJ) are refused, never run", () => {
  const marker = "/tmp/cosgrad_pickle_ran";
  const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
  const hostile: [string, Uint8Array][] = [
    // Protocol 0: os.system("touch marker"), the textbook exploit.
    ["GLOBAL + REDUCE", ascii(`cos\nsystem\n(S'touch ${marker}'\ntR.`)],
    // Protocol 4: STACK_GLOBAL of two short unicode strings, then REDUCE.
    [
      "STACK_GLOBAL + REDUCE",
      new Uint8Array([
        0x80,
        4,
        0x8c,
        2,
        ...ascii("os"),
        0x8c,
        6,
        ...ascii("system"),
        0x93,
        0x8c,
        5,
        ...ascii("touch"),
        0x85,
        0x52,
        0x2e,
      ]),
    ],
    ["INST", ascii(`(S'touch'\nios\nsystem\n.`)],
    ["OBJ", ascii(`(cos\nsystem\nS'touch'\no.`)],
    ["BUILD", new Uint8Array([0x80, 2, 0x7d, 0x7d, 0x62, 0x2e])],
  ];
  for (const [name, bytes] of hostile) {
    assert.throws(
      () => parsePickle(bytes, { file: "evil.bin" }),
      (e: Error) => e instanceof TypeError && e.message.includes("evil.bin"),
      name,
    );
  }
  let ran = true;
  try {
    Deno.statSync(marker);
  } catch {
    ran = false;
  }
  assert.equal(ran, false, "a pickle ran code");
});
