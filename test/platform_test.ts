// The library's public entry point must run in a browser: no module it imports may touch the
// Deno namespace (file and process access live in src/data, src/io, examples and CLIs).
import assert from "node:assert/strict";

const ENTRY = new URL("../mod.ts", import.meta.url);

async function moduleGraph(entry: URL): Promise<string[]> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", entry.href],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const info = JSON.parse(new TextDecoder().decode(out.stdout)) as {
    modules: { specifier: string }[];
  };
  return info.modules.map((m) => m.specifier).filter((s) => s.startsWith("file:"));
}

Deno.test("mod.ts and everything it imports stay off the Deno namespace", async () => {
  const files = await moduleGraph(ENTRY);
  assert.ok(files.length > 10, `expected the whole module graph, got ${files.length} files`);
  const offenders: string[] = [];
  for (const f of files) {
    const text = await Deno.readTextFile(new URL(f));
    const code = text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/\/\/.*$/gm, "");
    if (/\bDeno\s*\.|from\s+["']node:/.test(code)) offenders.push(f);
  }
  assert.deepEqual(offenders, [], `these modules use Deno or node: APIs: ${offenders.join(", ")}`);
});
