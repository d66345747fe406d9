import assert from "node:assert/strict";
import { fill, shape, signedDistance } from "./_raster.ts";
import { syntheticFaces, syntheticPairs, TEST_IDENTITY_OFFSET, toRgba8 } from "./synthetic.ts";

function rms(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s / a.length);
}

function sameBytes(a: Float32Array, b: Float32Array): boolean {
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

Deno.test("syntheticFaces() is deterministic in the seed and independent of render order", () => {
  const opts = { seed: 42, identities: 5, imagesPerIdentity: 3, size: 32 };
  const a = syntheticFaces(opts);
  const b = syntheticFaces(opts);
  // b renders other images first: the shared canvas must not leak between images.
  b.image(4, 2);
  b.image(0, 0, { flip: true });
  for (const [i, j] of [[1, 2], [3, 0], [0, 1]]) {
    assert.ok(sameBytes(a.image(i, j), b.image(i, j)), `image (${i}, ${j}) differs`);
  }
  const c = syntheticFaces({ ...opts, seed: 43 });
  assert.ok(!sameBytes(a.image(1, 2), c.image(1, 2)));
  assert.ok(rms(a.image(1, 2), c.image(1, 2)) > 0.05);
  // Two images of one person differ (nuisance), as do two people.
  assert.ok(rms(a.image(1, 0), a.image(1, 1)) > 0.01);
  assert.ok(rms(a.image(1, 0), a.image(2, 0)) > 0.01);
});

Deno.test("syntheticFaces() renders finite values in the normalised pixel range", () => {
  const f = syntheticFaces({
    seed: 3,
    identities: 20,
    imagesPerIdentity: 2,
    size: 48,
    difficulty: 1,
  });
  const lo = -127.5 / 128;
  const hi = 127.5 / 128;
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < 20; i++) {
    const x = f.image(i, i % 2);
    assert.equal(x.length, 3 * 48 * 48);
    for (const v of x) {
      assert.ok(Number.isFinite(v) && v >= lo && v <= hi, `value ${v} out of range`);
      min = Math.min(min, v);
      max = Math.max(max, v);
    }
  }
  // Real contrast, not a flat image.
  assert.ok(max - min > 1.2, `range ${min}..${max}`);
});

Deno.test("syntheticFaces() images of one identity are closer than images of different ones", () => {
  const identities = 12;
  const m = 4;
  const meanDistances = (difficulty: number) => {
    const f = syntheticFaces({ seed: 5, identities, imagesPerIdentity: m, size: 32, difficulty });
    const imgs: Float32Array[] = [];
    for (let i = 0; i < identities; i++) for (let j = 0; j < m; j++) imgs.push(f.image(i, j));
    let within = 0;
    let nw = 0;
    let between = 0;
    let nb = 0;
    for (let p = 0; p < imgs.length; p++) {
      for (let q = p + 1; q < imgs.length; q++) {
        const d = rms(imgs[p], imgs[q]);
        if (Math.floor(p / m) === Math.floor(q / m)) {
          within += d;
          nw++;
        } else {
          between += d;
          nb++;
        }
      }
    }
    return { within: within / nw, between: between / nb };
  };
  const mid = meanDistances(0.5);
  assert.ok(mid.within < 0.9 * mid.between, JSON.stringify(mid));
  // The difficulty knob moves images of one person apart.
  const easy = meanDistances(0);
  const hard = meanDistances(1);
  assert.ok(easy.within < 0.5 * easy.between, JSON.stringify(easy));
  assert.ok(easy.within < mid.within && mid.within < hard.within);
});

Deno.test("syntheticFaces() image({ flip }) mirrors and batch() matches single images", () => {
  const size = 32;
  const f = syntheticFaces({ seed: 9, identities: 4, imagesPerIdentity: 3, size });
  const x = f.image(2, 1);
  const m = f.image(2, 1, { flip: true });
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      for (let k = 0; k < size; k++) {
        const i = c * size * size + y * size;
        assert.equal(m[i + k], x[i + size - 1 - k]);
      }
    }
  }
  const ids = new Int32Array([2, 0, 3]);
  const idx = new Int32Array([1, 2, 0]);
  const b = f.batch(ids, idx, { flip: new Uint8Array([1, 0, 0]) });
  const n = 3 * size * size;
  assert.equal(b.length, 3 * n);
  assert.deepEqual(b.subarray(0, n), m);
  assert.deepEqual(b.subarray(n, 2 * n), f.image(0, 2));
  assert.deepEqual(b.subarray(2 * n), f.image(3, 0));
  const out = new Float32Array(n);
  assert.equal(f.image(3, 0, { out }), out);
  assert.deepEqual(out, f.image(3, 0));
});

Deno.test("syntheticFaces() identityOffset selects global identities", () => {
  const base = { seed: 1, imagesPerIdentity: 2, size: 32 };
  const all = syntheticFaces({ ...base, identities: 10 });
  const tail = syntheticFaces({ ...base, identities: 3, identityOffset: 7 });
  assert.deepEqual(tail.image(1, 1), all.image(8, 1));
  const test = syntheticFaces({ ...base, identities: 3, identityOffset: TEST_IDENTITY_OFFSET });
  assert.ok(!sameBytes(test.image(0, 0), all.image(0, 0)));
});

Deno.test("syntheticFaces() rejects out-of-range arguments", () => {
  const f = syntheticFaces({ identities: 2, imagesPerIdentity: 2, size: 16 });
  assert.equal(f.count, 4);
  assert.equal(f.size, 16);
  assert.throws(() => f.image(2, 0), { name: "RangeError", message: /identity 2/ });
  assert.throws(() => f.image(0, -1), { name: "RangeError", message: /image index -1/ });
  assert.throws(() => f.image(0.5, 0), RangeError);
  assert.throws(() => f.image(0, 0, { out: new Float32Array(5) }), /out length 5/);
  assert.throws(
    () => f.batch(new Int32Array(2), new Int32Array(1)),
    /2 identities but 1 image indices/,
  );
  const make = (o: object) => () =>
    syntheticFaces({ identities: 2, imagesPerIdentity: 2, size: 16, ...o });
  assert.throws(make({ difficulty: 1.5 }), /difficulty 1.5/);
  assert.throws(make({ difficulty: NaN }), /difficulty NaN/);
  assert.throws(make({ size: 8 }), /size 8/);
  assert.throws(make({ identities: 0 }), /identities 0/);
  assert.throws(make({ identityOffset: -1 }), /identityOffset -1/);
});

Deno.test("toRgba8() inverts the normalisation and rgba() uses it", () => {
  const f = syntheticFaces({ seed: 2, identities: 2, imagesPerIdentity: 1, size: 16 });
  const x = f.image(1, 0);
  const px = f.rgba(1, 0);
  assert.equal(px.length, 16 * 16 * 4);
  assert.deepEqual(px, toRgba8(x));
  for (let i = 0; i < 256; i++) {
    assert.equal(px[i * 4 + 3], 255);
    for (let c = 0; c < 3; c++) {
      assert.ok(Math.abs((px[i * 4 + c] - 127.5) / 128 - x[c * 256 + i]) <= 0.5 / 128 + 1e-6);
    }
  }
  assert.throws(() => toRgba8(new Float32Array(10)), { name: "RangeError", message: /10/ });
});

Deno.test("syntheticPairs() builds LFW-style folds over disjoint unseen identities", () => {
  const { faces, pairs, folds, identitiesPerFold } = syntheticPairs({ seed: 4, size: 32 });
  assert.equal(folds, 10);
  assert.equal(pairs.length, 6000);
  assert.equal(faces.identityOffset, TEST_IDENTITY_OFFSET);
  assert.equal(faces.identities, 10 * identitiesPerFold);
  const foldOf = new Map<number, number>();
  const keys = new Set<string>();
  for (let fold = 0; fold < 10; fold++) {
    const inFold = pairs.filter((p) => p.fold === fold);
    assert.equal(inFold.filter((p) => p.same).length, 300);
    assert.equal(inFold.filter((p) => !p.same).length, 300);
  }
  for (const p of pairs) {
    for (const r of [p.a, p.b]) {
      assert.ok(r.identity >= 0 && r.identity < faces.identities);
      assert.ok(r.index >= 0 && r.index < faces.imagesPerIdentity);
      const seen = foldOf.get(r.identity);
      assert.ok(seen === undefined || seen === p.fold, `identity ${r.identity} in two folds`);
      foldOf.set(r.identity, p.fold);
    }
    if (p.same) {
      assert.equal(p.a.identity, p.b.identity);
      assert.notEqual(p.a.index, p.b.index);
    } else {
      assert.notEqual(p.a.identity, p.b.identity);
    }
    const [u, v] = [`${p.a.identity}:${p.a.index}`, `${p.b.identity}:${p.b.index}`].sort();
    const key = `${u}|${v}`;
    assert.ok(!keys.has(key), `duplicate pair ${key}`);
    keys.add(key);
  }
  // Deterministic, and a pair's images render.
  const again = syntheticPairs({ seed: 4, size: 32 });
  assert.deepEqual(again.pairs, pairs);
  assert.notDeepEqual(syntheticPairs({ seed: 5, size: 32 }).pairs, pairs);
  assert.equal(faces.image(pairs[0].a.identity, pairs[0].a.index).length, 3 * 32 * 32);
  assert.throws(
    () => syntheticPairs({ pairsPerFold: 100, identitiesPerFold: 3, imagesPerIdentity: 4 }),
    { name: "RangeError", message: /pairsPerFold 100/ },
  );
});

Deno.test("fill() with row spans matches per-pixel coverage everywhere", () => {
  // A brute-force reference: coverage from the signed distance at every pixel.
  const size = 40;
  let state = 12345;
  const rnd = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 4294967296;
  let worst = 0;
  for (let t = 0; t < 300; t++) {
    const kind = t % 2;
    const s = shape({
      kind,
      cx: rnd() * 50 - 5,
      cy: rnd() * 50 - 5,
      rx: 2 + rnd() * 18,
      ry: 2 + rnd() * 18,
      angle: rnd() * 7,
      bend: rnd() < 0.3 ? (rnd() - 0.5) * 6 : 0,
      taper: kind === 0 && rnd() < 0.3 ? rnd() * 0.45 : 0,
      round: kind === 1 ? rnd() * 2 : 0,
    });
    const clip = rnd() < 0.4
      ? shape({
        kind: t % 3,
        cx: rnd() * 40,
        cy: rnd() * 40,
        rx: 4 + rnd() * 15,
        ry: 4 + rnd() * 15,
      })
      : undefined;
    const clipOut = rnd() < 0.5;
    const aa = 1 + rnd() * 2;
    const canvas = { size, data: new Float32Array(3 * size * size), aa };
    fill(canvas, s, { r: 100, g: 50, b: 25, clip, clipOut });
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        const cov = (sh: typeof s) =>
          Math.min(Math.max(0.5 - signedDistance(sh, x + 0.5, y + 0.5) / aa, 0), 1);
        let a = cov(s);
        if (clip !== undefined) a *= clipOut ? 1 - cov(clip) : cov(clip);
        const i = y * size + x;
        worst = Math.max(worst, Math.abs(canvas.data[i] - 100 * a));
        worst = Math.max(worst, Math.abs(canvas.data[i + 2 * size * size] - 25 * a));
      }
    }
  }
  assert.ok(worst < 1, `worst coverage error ${worst}%`);
});
