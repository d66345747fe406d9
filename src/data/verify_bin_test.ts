import assert from "node:assert/strict";
import { decodeImage } from "./image.ts";
import { parsePickle, parseVerifyBin, readVerifyBin } from "./verify_bin.ts";

const binUrl = new URL("../../test/fixtures/insightface/verify.bin", import.meta.url);
const expected = JSON.parse(
  await Deno.readTextFile(new URL("../../test/fixtures/expected.json", import.meta.url)),
).verify_bin as { pairs: number; issame: boolean[] };

const hex = (s: string) =>
  new Uint8Array(s.replace(/\s+/g, "").match(/../g)!.map((h) => parseInt(h, 16)));
const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const u32le = (n: number) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, (n >>> 24) & 0xff];
const cat = (...parts: Uint8Array[]) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((o, p) => (out.set(p, o), o + p.length), 0);
  return out;
};

Deno.test("readVerifyBin() reads the protocol-4 fixture written by Python", async () => {
  const { images, issame } = await readVerifyBin(binUrl);
  assert.equal(issame.length, expected.pairs);
  assert.deepEqual(issame, expected.issame);
  assert.equal(images.length, 2 * expected.pairs);
  for (const [i, bytes] of images.entries()) {
    const img = decodeImage(bytes, `verify.bin image ${i}`);
    assert.equal(img.width, 112);
    assert.equal(img.height, 112);
  }
  // Pair 1 is (identity 2, identity 2): background (100, 50, 70) in make_fixtures.py.
  assert.ok(Math.abs(decodeImage(images[2]).data[0] - 100) <= 4);
});

Deno.test("parseVerifyBin() reads a Python 2 protocol-2 pickle with BINSTRING images", async () => {
  const jpg = await Deno.readFile(
    new URL("../../test/fixtures/lfw/Identity_Bravo/Identity_Bravo_0001.jpg", import.meta.url),
  );
  // What Python 2's cPickle.dump((bins, issame), f, 2) writes for two pairs: the images are
  // `str`, so BINSTRING (4-byte length) or SHORT_BINSTRING (1-byte length).
  const p = cat(
    hex("80 02"), // PROTO 2
    hex("5d 71 01"), // EMPTY_LIST, BINPUT 1
    hex("28"), // MARK
    hex("54"),
    new Uint8Array(u32le(jpg.length)),
    jpg,
    hex("71 02"), // BINSTRING <jpeg>, BINPUT 2
    hex("55 03 01 02 03 71 03"), // SHORT_BINSTRING "\x01\x02\x03", BINPUT 3
    hex("68 02"), // BINGET 2 (the same jpeg object again)
    hex("55 00"), // SHORT_BINSTRING ""
    hex("65"), // APPENDS
    hex("5d 71 04 28 89 88 65"), // EMPTY_LIST, BINPUT 4, MARK, NEWFALSE, NEWTRUE, APPENDS
    hex("86 71 05 2e"), // TUPLE2, BINPUT 5, STOP
  );
  const { images, issame } = parseVerifyBin(p);
  assert.deepEqual(issame, [false, true]);
  assert.equal(images.length, 4);
  assert.deepEqual(images[0], jpg);
  assert.deepEqual(Array.from(images[1]), [1, 2, 3]);
  assert.deepEqual(images[2], jpg);
  assert.equal(images[3].length, 0);
  assert.equal(decodeImage(images[0]).width, 112);
});

Deno.test("parsePickle() reads Python 3's protocol-2 bytes (_codecs.encode) as data", () => {
  // pickle.dumps(([b"\xff\xd8a\x00", b"\x89PNG"], [True]), protocol=2), CPython 3.
  const p = hex(
    "80025d710028635f636f646563730a656e636f64650a71015806000000c3bfc3986100710258060000006c6174" +
      "696e31710386710452710568015805000000c289504e4771066803867107527108655d7109886186710a2e",
  );
  const { images, issame } = parseVerifyBin(p);
  assert.deepEqual(Array.from(images[0]), [0xff, 0xd8, 0x61, 0x00]);
  assert.deepEqual(Array.from(images[1]), [0x89, 0x50, 0x4e, 0x47]);
  assert.deepEqual(issame, [true]);
  // _codecs.encode with another codec is refused, not called.
  const utf8 = hex(
    "8002635f636f646563730a656e636f64650a58010000007858040000007574663886522e",
  );
  assert.throws(
    () => parsePickle(utf8),
    (e: Error) =>
      e instanceof TypeError && /opcode REDUCE \(0x52\) at offset 34/.test(e.message) &&
      e.message.includes("other than (str"),
  );
});

Deno.test("parsePickle() refuses GLOBAL, STACK_GLOBAL, numpy and other opcodes", () => {
  // Protocol 0 exploit shape: os.system("echo hi").
  const evil = cat(hex("80 02"), ascii("cos\nsystem\n(S'echo hi'\ntR."));
  assert.throws(
    () => parsePickle(evil, { file: "evil.bin" }),
    (e: Error) =>
      e instanceof TypeError &&
      e.message.startsWith(
        `Refusing pickle opcode GLOBAL (0x63) at offset 2 in evil.bin "os system"`,
      ),
  );
  const numpy = cat(hex("80 02"), ascii("cnumpy.core.multiarray\n_reconstruct\n"), hex("2e"));
  assert.throws(() => parsePickle(numpy), /numpy\.core\.multiarray _reconstruct.*numpy-typed/);
  // Protocol 4: SHORT_BINUNICODE "builtins", SHORT_BINUNICODE "eval", STACK_GLOBAL.
  const stackGlobal = cat(
    hex("80 04 8c 08"),
    ascii("builtins"),
    hex("8c 04"),
    ascii("eval"),
    hex("93 2e"),
  );
  assert.throws(
    () => parsePickle(stackGlobal),
    /Refusing pickle opcode STACK_GLOBAL \(0x93\) at offset 18 "builtins eval"/,
  );
  assert.throws(() => parsePickle(hex("80 02 7d 2e")), /EMPTY_DICT \(0x7d\) at offset 2/);
  assert.throws(() => parsePickle(hex("80 02 ff")), /opcode unknown \(0xff\) at offset 2/);
  assert.throws(() => parsePickle(hex("80 01 2e")), /protocol 1/);
});

Deno.test("parseVerifyBin() checks the shape and reports truncation", async () => {
  // ([b"a", b"b", b"c"], [True]): three images for one flag.
  const odd = hex("80 04 5d 28 43 01 61 43 01 62 43 01 63 65 5d 88 61 86 2e");
  assert.throws(() => parseVerifyBin(odd), /has 3 images and 1 issame flags, expected 2 images/);
  // ([b"a", b"b"], [1]): ints are not bools.
  const ints = hex("80 04 5d 28 43 01 61 43 01 62 65 5d 4b 01 61 86 2e");
  assert.throws(() => parseVerifyBin(ints), /issame 0 is number 1, expected a bool/);
  assert.throws(() => parseVerifyBin(hex("80 04 5d 2e")), /holds a list of 0, expected a pair/);
  const whole = await Deno.readFile(binUrl);
  assert.throws(
    () => parseVerifyBin(whole.subarray(0, 5000), { file: "cut.bin" }),
    (e: Error) =>
      e instanceof RangeError && /^Truncated pickle in cut\.bin: FRAME at offset 2/.test(e.message),
  );
  // Cut inside a BINBYTES: PROTO 3, EMPTY_LIST, BINBYTES of 100 bytes with only 3 present.
  assert.throws(
    () => parsePickle(hex("80 03 5d 42 64 00 00 00 01 02 03")),
    /Truncated pickle: opcode BINBYTES at offset 3 needs 100 bytes at offset 8, 3 left/,
  );
});
