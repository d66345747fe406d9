import assert from "node:assert/strict";
import { encode } from "fast-png";
import { centerCrop, decodeImage, resizeBilinear, type RgbImage, toCHW } from "./image.ts";

const alphaJpeg = new URL(
  "../../test/fixtures/lfw/Identity_Alpha/Identity_Alpha_0001.jpg",
  import.meta.url,
);

function rgb(width: number, height: number, values: number[]): RgbImage {
  return { width, height, channels: 3, data: new Uint8Array(values) };
}

function near(actual: ArrayLike<number>, expected: number[], tol: number, what: string): void {
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol,
      `${what}[${i}] = ${actual[i]}, expected ${expected[i]} ± ${tol}`,
    );
  }
}

Deno.test("decodeImage() decodes a Pillow-written JPEG to 112x112 RGB", async () => {
  const img = decodeImage(await Deno.readFile(alphaJpeg), alphaJpeg.pathname);
  assert.equal(img.width, 112);
  assert.equal(img.height, 112);
  assert.equal(img.channels, 3);
  assert.equal(img.data.length, 112 * 112 * 3);
  // make_fixtures.py: background (40, 50, 70) for identity 0, face ellipse (170, 130, 105).
  near(img.data.subarray(0, 3), [40, 50, 70], 4, "corner");
  const c = (58 * 112 + 56) * 3;
  near(img.data.subarray(c, c + 3), [170, 130, 105], 6, "centre");
});

Deno.test("decodeImage() converts PNG colour types and bit depths to 8-bit RGB", async (t) => {
  await t.step("RGB 8-bit", () => {
    const png = encode({
      width: 2,
      height: 1,
      channels: 3,
      data: new Uint8Array([1, 2, 3, 4, 5, 6]),
    });
    assert.deepEqual(Array.from(decodeImage(png).data), [1, 2, 3, 4, 5, 6]);
  });
  await t.step("RGBA drops alpha", () => {
    const png = encode({
      width: 2,
      height: 1,
      channels: 4,
      data: new Uint8Array([10, 20, 30, 0, 40, 50, 60, 255]),
    });
    assert.deepEqual(Array.from(decodeImage(png).data), [10, 20, 30, 40, 50, 60]);
  });
  await t.step("gray + alpha replicates gray", () => {
    const png = encode({ width: 2, height: 1, channels: 2, data: new Uint8Array([7, 0, 9, 255]) });
    assert.deepEqual(Array.from(decodeImage(png).data), [7, 7, 7, 9, 9, 9]);
  });
  await t.step("16-bit RGB rounds to 8 bits", () => {
    const png = encode({
      width: 1,
      height: 1,
      channels: 3,
      depth: 16,
      data: new Uint16Array([65535, 257 * 100, 257 * 100 + 128]),
    });
    assert.deepEqual(Array.from(decodeImage(png).data), [255, 100, 100]);
  });
  await t.step("1-bit gray with rows padded to a byte", () => {
    // 3x2: row 0 = 1,0,1; row 1 = 0,1,1 (each row packed into its own byte).
    const png = encode({
      width: 3,
      height: 2,
      channels: 1,
      depth: 1,
      data: new Uint8Array([0b10100000, 0b01100000]),
    });
    const img = decodeImage(png);
    assert.deepEqual(
      Array.from(img.data.filter((_, i) => i % 3 === 0)),
      [255, 0, 255, 0, 255, 255],
    );
  });
  await t.step("4-bit palette", () => {
    const palette = [[255, 0, 0], [0, 255, 0], [0, 0, 255]];
    const png = encode({
      width: 3,
      height: 1,
      channels: 1,
      depth: 4,
      palette,
      data: new Uint8Array([0x21, 0x00]),
    });
    assert.deepEqual(Array.from(decodeImage(png).data), [0, 0, 255, 0, 255, 0, 255, 0, 0]);
  });
});

Deno.test("decodeImage() names the path for unknown, truncated and corrupt data", async () => {
  assert.throws(
    () => decodeImage(new TextEncoder().encode("GIF89a..."), "a/b.gif"),
    (e: Error) =>
      e instanceof TypeError && e.message.includes("a/b.gif") &&
      e.message.includes("47 49 46 38") && e.message.includes("neither PNG nor JPEG"),
  );
  assert.throws(() => decodeImage(new Uint8Array(0)), /\(empty\)/);
  const jpg = await Deno.readFile(alphaJpeg);
  assert.throws(
    () => decodeImage(jpg.subarray(0, jpg.length >> 1), "half.jpg"),
    (e: Error) => e instanceof TypeError && /^Cannot decode JPEG half\.jpg: /.test(e.message),
  );
  const png = encode({ width: 4, height: 4, channels: 3, data: new Uint8Array(48).fill(9) });
  const broken = png.slice();
  broken[40] ^= 0xff; // inside the IDAT chunk: CRC mismatch
  assert.throws(
    () => decodeImage(broken, "broken.png"),
    (e: Error) => e instanceof TypeError && /^Cannot decode PNG broken\.png: /.test(e.message),
  );
  assert.throws(() => decodeImage(png.subarray(0, 30), "cut.png"), /cut\.png/);
});

Deno.test("decodeImage() says where a truncated PNG ends, at every cut", () => {
  const png = encode({ width: 4, height: 4, channels: 3, data: new Uint8Array(48).fill(9) });
  for (let n = 1; n < png.length; n++) {
    assert.throws(
      () => decodeImage(png.subarray(0, n), "cut.png"),
      (e: Error) => {
        assert.ok(e instanceof TypeError);
        assert.match(e.message, /^Cannot decode PNG cut\.png: truncated: \S/, `cut at ${n}`);
        return true;
      },
    );
  }
  assert.match(
    (() => {
      try {
        decodeImage(png.subarray(0, 20), "cut.png");
      } catch (e) {
        return (e as Error).message;
      }
      return "";
    })(),
    /the IHDR chunk at byte 8 needs 25 bytes, the file ends after 12/,
  );
});

Deno.test("resizeBilinear() interpolates with half-pixel centres", () => {
  // 2x2 -> 4x4. Source coordinates of the outputs: -0.25 (clamped 0), 0.25, 0.75, 1.25 (clamped 1).
  const img = rgb(2, 2, [0, 0, 0, 100, 100, 100, 200, 200, 200, 40, 40, 40]);
  const out = resizeBilinear(img, 4, 4);
  const r = Array.from(out.data.filter((_, i) => i % 3 === 0));
  const row = (a: number, b: number) => [a, a + 0.25 * (b - a), a + 0.75 * (b - a), b];
  const top = row(0, 100);
  const bottom = row(200, 40);
  const expected: number[] = [];
  for (const wy of [0, 0.25, 0.75, 1]) {
    for (let x = 0; x < 4; x++) expected.push(Math.round(top[x] + wy * (bottom[x] - top[x])));
  }
  assert.deepEqual(r, expected);
  // Downscale of a constant image stays constant; same size is an exact copy.
  const flat = rgb(5, 3, new Array(45).fill(77));
  assert.ok(resizeBilinear(flat, 2, 2).data.every((v) => v === 77));
  const same = resizeBilinear(img, 2, 2);
  assert.deepEqual(same.data, img.data);
  assert.notEqual(same.data, img.data);
  assert.throws(() => resizeBilinear(img, 0, 3), RangeError);
  assert.throws(() => resizeBilinear(rgb(2, 2, [1, 2, 3]), 1, 1), /has 3 bytes/);
});

Deno.test("centerCrop() takes the central region", () => {
  // 4x3 image whose red channel is its pixel index.
  const img = rgb(4, 3, Array.from({ length: 12 }, (_, i) => [i, 0, 0]).flat());
  const out = centerCrop(img, 2, 1);
  assert.equal(out.width, 2);
  assert.equal(out.height, 1);
  assert.deepEqual(Array.from(out.data), [5, 0, 0, 6, 0, 0]);
  assert.deepEqual(Array.from(centerCrop(img, 3, 3).data.filter((_, i) => i % 3 === 0)), [
    0,
    1,
    2,
    4,
    5,
    6,
    8,
    9,
    10,
  ]);
  assert.throws(() => centerCrop(img, 5, 1), /crop 5x1 is larger than the image 4x3/);
});

Deno.test("toCHW() maps (p - 127.5) / 128 into planes and mirrors on flip", () => {
  // 2x2: pixels (r, g, b) = (0, 10, 20), (255, 11, 21) / (128, 12, 22), (127, 13, 23).
  const img = rgb(2, 2, [0, 10, 20, 255, 11, 21, 128, 12, 22, 127, 13, 23]);
  const f = (p: number) => (p - 127.5) / 128;
  assert.deepEqual(
    Array.from(toCHW(img)),
    [0, 255, 128, 127, 10, 11, 12, 13, 20, 21, 22, 23].map((p) => Math.fround(f(p))),
  );
  assert.deepEqual(
    Array.from(toCHW(img, { flip: true })),
    [255, 0, 127, 128, 11, 10, 13, 12, 21, 20, 23, 22].map((p) => Math.fround(f(p))),
  );
});
