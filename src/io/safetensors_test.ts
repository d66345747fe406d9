import { deepStrictEqual, ok, rejects, strictEqual, throws } from "node:assert/strict";
import {
  decodeSafetensors,
  encodeSafetensors,
  loadSafetensors,
  saveSafetensors,
  type TensorRecords,
  writeFileAtomic,
} from "./safetensors.ts";

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));
const u64 = (n: number) => [n & 255, (n >> 8) & 255, (n >> 16) & 255, n >>> 24, 0, 0, 0, 0];

/** Builds a file from a header string and raw data bytes, padding the header like Python. */
function file(header: string, data: number[]): Uint8Array {
  const padded = header + " ".repeat((8 - (header.length % 8)) % 8);
  return new Uint8Array([...u64(padded.length), ...ascii(padded), ...data]);
}

Deno.test("encodeSafetensors() writes the bytes Python's safetensors writes", () => {
  // safetensors.numpy.save_file({"attn0": np.arange(6, dtype=np.float32).reshape(1, 1, 2, 3)}):
  // a 65-byte header padded with 7 spaces to 72, then 0..5 as little-endian float32.
  const header = '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}';
  strictEqual(header.length, 65);
  const floats = [
    [0, 0, 0, 0],
    [0, 0, 0x80, 0x3f],
    [0, 0, 0, 0x40],
    [0, 0, 0x40, 0x40],
    [0, 0, 0x80, 0x40],
    [0, 0, 0xa0, 0x40],
  ].flat();
  const expected = new Uint8Array([
    72,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    ...ascii(header),
    ...ascii("       "),
    ...floats,
  ]);
  const bytes = encodeSafetensors({
    attn0: { dtype: "float32", shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) },
  });
  deepStrictEqual(bytes, expected);
  const back = decodeSafetensors(expected);
  deepStrictEqual(Array.from(back.tensors.attn0.data), [0, 1, 2, 3, 4, 5]);
  deepStrictEqual(back.tensors.attn0.shape, [1, 1, 2, 3]);
  strictEqual(back.metadata, undefined);
});

Deno.test("encodeSafetensors() pads empty files and metadata-only files to 8 bytes", () => {
  deepStrictEqual(
    encodeSafetensors({}),
    new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, ...ascii("      ")]),
  );
  const meta = encodeSafetensors({}, { framework: "pt" });
  deepStrictEqual(meta, file('{"__metadata__":{"framework":"pt"}}', []));
  strictEqual(meta[0], 40);
  deepStrictEqual(decodeSafetensors(meta), { tensors: {}, metadata: { framework: "pt" } });
});

Deno.test("encodeSafetensors() orders tensors by dtype (F64, F32, I32), then name", () => {
  const tensors: TensorRecords = {
    c: { dtype: "int32", shape: [2], data: new Int32Array([-1, 258]) },
    b: { dtype: "float32", shape: [], data: new Float32Array([-2]) },
    z: { dtype: "float64", shape: [1], data: new Float64Array([1]) },
    a: { dtype: "float32", shape: [1, 0], data: new Float32Array(0) },
  };
  const header = '{"__metadata__":{"step":"3","name":"x"},' +
    '"z":{"dtype":"F64","shape":[1],"data_offsets":[0,8]},' +
    '"a":{"dtype":"F32","shape":[1,0],"data_offsets":[8,8]},' +
    '"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]},' +
    '"c":{"dtype":"I32","shape":[2],"data_offsets":[12,20]}}';
  const data = [
    ...[0, 0, 0, 0, 0, 0, 0xf0, 0x3f], // 1.0 as float64
    ...[0, 0, 0, 0xc0], // -2.0 as float32
    ...[0xff, 0xff, 0xff, 0xff], // -1 as int32
    ...[2, 1, 0, 0], // 258 as int32
  ];
  const bytes = encodeSafetensors(tensors, { step: "3", name: "x" });
  deepStrictEqual(bytes, file(header, data));
  const back = decodeSafetensors(bytes);
  deepStrictEqual(back.metadata, { step: "3", name: "x" });
  for (const name of ["a", "b", "c", "z"]) {
    strictEqual(back.tensors[name].dtype, tensors[name].dtype);
    deepStrictEqual(back.tensors[name].shape, tensors[name].shape);
    deepStrictEqual(back.tensors[name].data, tensors[name].data);
  }
});

Deno.test("decodeSafetensors() round-trips awkward names, values and unaligned input", () => {
  const tensors: TensorRecords = {
    "10": { dtype: "float64", shape: [3], data: new Float64Array([Math.PI, -0, 1e-310]) },
    "9": { dtype: "float32", shape: [2], data: new Float32Array([NaN, -Infinity]) },
    ["__proto__"]: { dtype: "int32", shape: [1], data: new Int32Array([2 ** 31 - 1]) },
    'émbed.\u{1F600}"q"': { dtype: "float32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) },
    "layers.0.w": { dtype: "float32", shape: [2], data: new Float32Array([5, 6]).subarray(0, 2) },
  };
  const bytes = encodeSafetensors(tensors, { note: 'line\n"quoted" ü' });
  // Names stay in Rust's byte order, integer-like names included.
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  const header = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  ok(header.indexOf('"10"') < header.indexOf('"9"'));
  ok(header.indexOf('"__metadata__"') === 1);
  // Decode from an odd offset inside a larger buffer.
  const shifted = new Uint8Array(bytes.length + 3);
  shifted.set(bytes, 3);
  const back = decodeSafetensors(shifted.subarray(3));
  deepStrictEqual(Object.keys(back.tensors).sort(), Object.keys(tensors).sort());
  ok(Object.hasOwn(back.tensors, "__proto__"));
  for (const [name, t] of Object.entries(tensors)) {
    deepStrictEqual(back.tensors[name], { dtype: t.dtype, shape: t.shape, data: t.data });
  }
  ok(Object.is(back.tensors["10"].data[1], -0));
  deepStrictEqual(back.metadata, { note: 'line\n"quoted" ü' });
});

Deno.test("decodeSafetensors() rejects malformed files with clear errors", () => {
  const info = (dtype: string, shape: number[], b: number, e: number) =>
    `{"dtype":"${dtype}","shape":[${shape}],"data_offsets":[${b},${e}]}`;
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /at least 8/],
    [new Uint8Array([200, 0, 0, 0, 0, 0, 0, 0, 123, 125]), /Invalid header length 200/],
    [new Uint8Array([0, 0, 0, 0, 1, 0, 0, 0]), /at most 100000000/],
    [file("{not json", []), /expected JSON/],
    [file("[1,2]", []), /expected a JSON object/],
    [
      file(`{"a":${info("F32", [2], 0, 8)},"b":${info("F32", [2], 4, 12)}}`, Array(12).fill(0)),
      /"b".*overlaps tensor "a"/,
    ],
    [
      file(`{"a":${info("F32", [1], 0, 4)},"b":${info("F32", [1], 8, 12)}}`, Array(12).fill(0)),
      /"b" starts at 8: expected 4/,
    ],
    [
      file(`{"a":${info("F32", [2], 0, 8)}}`, Array(4).fill(0)),
      /ends at 8, beyond the 4-byte data section/,
    ],
    [
      file(`{"a":${info("F32", [1], 0, 4)}}`, Array(8).fill(0)),
      /data section of 8 bytes: the tensors cover 4/,
    ],
    [
      file(`{"a":${info("F32", [3], 0, 8)}}`, Array(8).fill(0)),
      /8 bytes, expected 12 for shape \[3\] of F32/,
    ],
    [
      file(`{"a":${info("F16", [2], 0, 4)}}`, Array(4).fill(0)),
      /Unsupported dtype F16 of tensor "a"/,
    ],
    [file(`{"a":${info("Q7", [2], 0, 4)}}`, Array(4).fill(0)), /Unknown dtype "Q7"/],
    [file(`{"a":${info("F32", [-1], 0, 4)}}`, Array(4).fill(0)), /non-negative integers/],
    [file(`{"a":${info("F32", [1], 4, 0)}}`, Array(4).fill(0)), /Invalid data_offsets \[4,0\]/],
    [file(`{"__metadata__":{"k":1}}`, []), /metadata value 1 for key "k"/],
  ];
  for (const [bytes, message] of cases) throws(() => decodeSafetensors(bytes), message);
  // Invalid UTF-8 in the header.
  const bad = file("{}      ", []);
  bad[9] = 0xff;
  throws(() => decodeSafetensors(bad), /UTF-8/);
});

Deno.test("encodeSafetensors() rejects inconsistent records", () => {
  const f = new Float32Array(4);
  throws(
    () => encodeSafetensors({ a: { dtype: "float32", shape: [3], data: f } }),
    /length 4 of tensor "a": expected 3/,
  );
  throws(
    () => encodeSafetensors({ a: { dtype: "float64", shape: [4], data: f } }),
    /expected a Float64Array/,
  );
  throws(
    () =>
      encodeSafetensors({ a: { dtype: "int8" as "int32", shape: [4], data: new Int32Array(4) } }),
    /Invalid dtype int8/,
  );
  throws(
    () => encodeSafetensors({ __metadata__: { dtype: "float32", shape: [4], data: f } }),
    /reserved/,
  );
  throws(
    () => encodeSafetensors({ a: { dtype: "float32", shape: [2, 2.5], data: f } }),
    /non-negative integers/,
  );
  throws(() => encodeSafetensors({}, { k: 3 as unknown as string }), /metadata value 3/);
});

Deno.test("saveSafetensors() writes atomically and loadSafetensors() reads back", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.safetensors`;
    const w = { dtype: "float32" as const, shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
    await saveSafetensors(path, { w }, { epoch: "1" });
    await saveSafetensors(path, { w: { ...w, data: new Float32Array([5, 6, 7, 8]) } }, {
      epoch: "2",
    });
    const loaded = await loadSafetensors(path);
    deepStrictEqual(Array.from(loaded.tensors.w.data), [5, 6, 7, 8]);
    deepStrictEqual(loaded.metadata, { epoch: "2" });
    // Only the final file remains: no temporary files left behind.
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    deepStrictEqual(names, ["model.safetensors"]);
    // A missing directory fails loudly.
    await rejects(
      () => writeFileAtomic(`${dir}/missing/x.bin`, new Uint8Array(1)),
      Deno.errors.NotFound,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadSafetensors() and decodeSafetensors({ path }) name the file in every error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/model.safetensors`;
    await saveSafetensors(path, {
      w: { dtype: "float32", shape: [4], data: new Float32Array([1, 2, 3, 4]) },
    });
    const bytes = await Deno.readFile(path);
    for (const cut of [3, 10, bytes.length - 1]) {
      await Deno.writeFile(path, bytes.subarray(0, cut));
      await rejects(
        loadSafetensors(path),
        (e: Error) => e.message.startsWith(`Invalid safetensors file ${path}: `),
        `cut at ${cut}`,
      );
    }
    const garbled = bytes.slice();
    garbled[9] = 0x00; // inside the JSON header
    throws(
      () => decodeSafetensors(garbled, { path: "ckpt.safetensors" }),
      /^TypeError: Invalid safetensors file ckpt\.safetensors: Invalid safetensors header/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
