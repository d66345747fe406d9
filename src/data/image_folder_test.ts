import assert from "node:assert/strict";
import { encode } from "fast-png";
import { decodeImage, toCHW } from "./image.ts";
import { loadImageFolder, scanImageFolder } from "./image_folder.ts";

const fixture = (name: string) =>
  new URL(`../../test/fixtures/lfw/${name}/${name}_0001.jpg`, import.meta.url);

/**
 * root/alice/{x.jpg, Y.JPG, broken.jpg}, root/bob/a.png (4x2, pure red), root/carol/notes.txt,
 * root/dave/z.png (truncated), root/readme.txt.
 */
async function makeFolder(): Promise<string> {
  const root = await Deno.makeTempDir({ prefix: "cosgrad_folder_" });
  for (const d of ["alice", "bob", "carol", "dave"]) await Deno.mkdir(`${root}/${d}`);
  await Deno.copyFile(fixture("Identity_Alpha"), `${root}/alice/x.jpg`);
  await Deno.copyFile(fixture("Identity_Delta"), `${root}/alice/Y.JPG`);
  const jpg = await Deno.readFile(fixture("Identity_Alpha"));
  const broken = jpg.slice(0, 200); // JPEG magic, then cut short
  await Deno.writeFile(`${root}/alice/broken.jpg`, broken);
  const red = new Uint8Array(4 * 2 * 3);
  for (let i = 0; i < red.length; i += 3) red[i] = 255;
  const png = encode({ width: 4, height: 2, channels: 3, data: red });
  await Deno.writeFile(`${root}/bob/a.png`, png);
  await Deno.writeTextFile(`${root}/carol/notes.txt`, "no images here");
  await Deno.writeFile(`${root}/dave/z.png`, png.subarray(0, 20));
  await Deno.writeTextFile(`${root}/readme.txt`, "dataset");
  return root;
}

Deno.test("scanImageFolder() sorts identities and files and reports what it ignores", async () => {
  const root = await makeFolder();
  try {
    const idx = await scanImageFolder(root);
    assert.deepEqual(idx.identities, ["alice", "bob", "dave"]);
    assert.deepEqual(
      idx.entries.map((e) => [e.path.slice(root.length), e.identity, e.label]),
      [
        ["/alice/Y.JPG", "alice", 0], // code-unit order: "Y" < "b" < "x"
        ["/alice/broken.jpg", "alice", 0],
        ["/alice/x.jpg", "alice", 0],
        ["/bob/a.png", "bob", 1],
        ["/dave/z.png", "dave", 2],
      ],
    );
    assert.deepEqual(idx.ignored.map((e) => [e.path.slice(root.length), e.reason]), [
      ["/carol", "no image files"],
      ["/carol/notes.txt", "not a .png, .jpg or .jpeg file"],
      ["/readme.txt", "not an identity directory"],
    ]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadImageFolder() decodes, resizes, labels, and lists corrupt files in skipped", async () => {
  const root = await makeFolder();
  try {
    const data = await loadImageFolder(root, { size: 8 });
    assert.equal(data.count, 3);
    assert.equal(data.height, 8);
    assert.equal(data.width, 8);
    assert.equal(data.images.length, 3 * 3 * 8 * 8);
    assert.deepEqual(Array.from(data.labels), [0, 0, 1]);
    assert.deepEqual(data.paths.map((p) => p.slice(root.length)), [
      "/alice/Y.JPG",
      "/alice/x.jpg",
      "/bob/a.png",
    ]);
    assert.deepEqual(data.skipped.map((s) => s.path.slice(root.length)), [
      "/alice/broken.jpg",
      "/dave/z.png",
    ]);
    assert.match(data.skipped[0].reason, /^Cannot decode JPEG .*broken\.jpg: /);
    assert.match(data.skipped[1].reason, /^Cannot decode PNG .*z\.png: /);
    assert.deepEqual(data.identities, ["alice", "bob", "dave"]);
    // The pure red PNG: R plane (255 - 127.5) / 128, G and B planes -127.5 / 128.
    const bob = data.images.subarray(2 * 192, 3 * 192);
    assert.ok(bob.subarray(0, 64).every((v) => v === 127.5 / 128));
    assert.ok(bob.subarray(64).every((v) => v === -127.5 / 128));
    // At the native size, a loaded JPEG equals decode + toCHW.
    const full = await loadImageFolder(root, { size: 112 });
    const ref = toCHW(decodeImage(await Deno.readFile(`${root}/alice/x.jpg`)));
    assert.deepEqual(full.images.subarray(3 * 112 * 112, 2 * 3 * 112 * 112), ref);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("loadImageFolder() takes [height, width] and centre-crops to the aspect ratio", async () => {
  const root = await Deno.makeTempDir({ prefix: "cosgrad_folder_" });
  try {
    await Deno.mkdir(`${root}/p`);
    // 4x2 image: columns 0 and 3 black, columns 1 and 2 white.
    const px = [0, 255, 255, 0, 0, 255, 255, 0].flatMap((v) => [v, v, v]);
    const png = encode({ width: 4, height: 2, channels: 3, data: new Uint8Array(px) });
    await Deno.writeFile(`${root}/p/i.png`, png);
    const cropped = await loadImageFolder(root, { size: [2, 2], crop: true });
    // The square centre crop keeps the two white columns only.
    assert.ok(cropped.images.every((v) => v === 127.5 / 128));
    const stretched = await loadImageFolder(new URL(`file://${root}/`), { size: [2, 2] });
    // Stretching samples half-way between a black and a white column: round(127.5) = 128.
    assert.ok(stretched.images.every((v) => v === 0.5 / 128));
    await assert.rejects(loadImageFolder(root, { size: [0, 2] }), /size \[0,2\], expected/);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
