import assert from "node:assert/strict";
import {
  CheckpointError,
  CHECKSUM_KEY,
  decodeCheckpoint,
  encodeCheckpoint,
  loadCheckpoint,
  removeStaleTemporaries,
  saveCheckpoint,
} from "./checkpoint.ts";
import { encodeSafetensors } from "./safetensors.ts";

const tensors = () => ({
  w: { dtype: "float32" as const, shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
  step: { dtype: "int32" as const, shape: [], data: new Int32Array([7]) },
});

Deno.test("checkpoints round-trip tensors and metadata, bit for bit", async () => {
  const bytes = await encodeCheckpoint(tensors(), { step: "7", config: "{}" });
  const back = await decodeCheckpoint(bytes, "mem");
  assert.deepEqual(back.metadata, { step: "7", config: "{}" });
  assert.deepEqual(Array.from(back.tensors.w.data), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(back.tensors.step.shape, []);
  assert.equal(back.tensors.step.data[0], 7);
});

Deno.test("every single-bit flip of a checkpoint is refused with the file named", async () => {
  const bytes = await encodeCheckpoint(tensors(), { step: "7" });
  for (let i = 0; i < bytes.length; i++) {
    for (const bit of [0, 3, 6]) {
      const b = bytes.slice();
      b[i] ^= 1 << bit;
      let loaded: Awaited<ReturnType<typeof decodeCheckpoint>> | undefined;
      try {
        loaded = await decodeCheckpoint(b, "run/ckpt.safetensors");
      } catch (e) {
        assert.ok(e instanceof CheckpointError, String(e));
        assert.match(e.message, /run\/ckpt\.safetensors/);
        continue;
      }
      // A flip in the header's space padding or JSON whitespace changes nothing read back.
      assert.deepEqual(loaded.metadata, { step: "7" }, `byte ${i} bit ${bit}`);
      assert.deepEqual(Array.from(loaded.tensors.w.data), [1, 2, 3, 4, 5, 6]);
      assert.equal(loaded.tensors.step.data[0], 7);
    }
  }
});

Deno.test("truncated checkpoints and checkpoints without a checksum are refused", async () => {
  const bytes = await encodeCheckpoint(tensors());
  for (const n of [0, 4, 8, 20, bytes.length - 1]) {
    await assert.rejects(
      () => decodeCheckpoint(bytes.subarray(0, n), "t.safetensors"),
      (e: Error) => e instanceof CheckpointError && /t\.safetensors/.test(e.message),
    );
  }
  await assert.rejects(
    () => decodeCheckpoint(encodeSafetensors(tensors()), "plain.safetensors"),
    /plain\.safetensors: no "cosgrad\.sha256" checksum/,
  );
  await assert.rejects(() => encodeCheckpoint(tensors(), { [CHECKSUM_KEY]: "x" }), /reserved/);
});

Deno.test("saveCheckpoint replaces atomically and removes stale temporaries", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/a.safetensors`;
    // What a writer killed mid-write leaves behind.
    await Deno.writeFile(`${dir}/.a.safetensors.123.tmp`, new Uint8Array(10));
    await Deno.writeFile(`${dir}/.b.safetensors.123.tmp`, new Uint8Array(10));
    await saveCheckpoint(path, tensors(), { step: "1" });
    const names = [];
    for await (const e of Deno.readDir(dir)) names.push(e.name);
    assert.deepEqual(names.sort(), [".b.safetensors.123.tmp", "a.safetensors"]);
    await saveCheckpoint(path, tensors(), { step: "2" });
    assert.equal((await loadCheckpoint(path)).metadata.step, "2");
    assert.deepEqual(await removeStaleTemporaries(`${dir}/b.safetensors`), [
      `${dir}/.b.safetensors.123.tmp`,
    ]);
    await assert.rejects(
      () => loadCheckpoint(`${dir}/missing.safetensors`),
      (e: Error) => e instanceof Deno.errors.NotFound && e.message.includes("missing.safetensors"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
