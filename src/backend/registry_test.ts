import assert from "node:assert/strict";
import { cpuBackend, getBackend, setBackend, withBackend, withBackendAsync } from "./registry.ts";
import type { Backend } from "./storage.ts";

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("withBackendAsync() keeps concurrent calls apart across awaits", async () => {
  await setBackend("cpu");
  const other = Object.create(cpuBackend()) as Backend;
  const seen: string[] = [];
  const probe = (who: string, backend: Backend, first: number, second: number) =>
    withBackendAsync(backend, async () => {
      await delay(first);
      seen.push(`${who}:${getBackend() === backend}`);
      await delay(second);
      seen.push(`${who}:${getBackend() === backend}`);
    });
  // The calls overlap: a looks at 5 ms (while b runs) and 35 ms, b at 10 and 20 ms.
  await Promise.all([probe("a", other, 5, 30), probe("b", cpuBackend(), 10, 10)]);
  assert.deepEqual(seen.sort(), ["a:true", "a:true", "b:true", "b:true"]);
  // Code outside both calls sees the backend chosen with setBackend.
  assert.equal(getBackend(), cpuBackend());
});

Deno.test("withBackend() restores the backend after fn, also when it throws", () => {
  const other = Object.create(cpuBackend()) as Backend;
  assert.equal(withBackend(other, () => getBackend()), other);
  assert.throws(() =>
    withBackend(other, () => {
      throw new Error("x");
    }), /x/);
  assert.equal(getBackend(), cpuBackend());
});
