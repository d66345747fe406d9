// `deno task build` and `deno task serve` run with the permissions their tasks in deno.json grant:
// the documented --out-dir and --port work, and bad values end in `error: ...` with exit 2.
import assert from "node:assert/strict";

const root = new URL("../", import.meta.url);
const tasks = JSON.parse(await Deno.readTextFile(new URL("deno.json", root))).tasks as Record<
  string,
  string
>;

/** The task's `deno run ...` command line as arguments of the deno executable. */
function taskArgs(name: string, extra: string[]): string[] {
  const words = tasks[name].split(/\s+/);
  assert.equal(words[0], "deno", `task ${name} starts with deno`);
  return [...words.slice(1), ...extra];
}

function spawn(name: string, extra: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: taskArgs(name, extra),
    cwd: root,
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
    signal: AbortSignal.timeout(60_000),
  }).spawn();
}

async function outputOf(name: string, extra: string[]) {
  const out = await spawn(name, extra).output();
  const d = new TextDecoder();
  return { code: out.code, stdout: d.decode(out.stdout), stderr: d.decode(out.stderr) };
}

Deno.test("deno task build --out-dir writes outside dist/", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const { code, stderr } = await outputOf("build", ["--out-dir", `${dir}/site`]);
    assert.equal(code, 0, stderr);
    assert.ok((await Deno.stat(`${dir}/site/cosgrad.js`)).size > 0);
    assert.ok((await Deno.stat(`${dir}/site/web/index.html`)).size > 0);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task serve --port serves on another port than 8000", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.mkdir(`${dir}/web`);
  await Deno.writeTextFile(`${dir}/web/index.html`, "<p>hi</p>");
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const child = spawn("serve", ["--port", String(port), "--root", dir]);
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let seen = "";
    while (!seen.includes("serving")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += value;
    }
    assert.match(seen, new RegExp(`serving .* at http://127\\.0\\.0\\.1:${port}/`));
    const res = await fetch(`http://127.0.0.1:${port}/`);
    assert.equal(await res.text(), "<p>hi</p>");
    reader.releaseLock();
  } finally {
    child.kill("SIGTERM");
    await child.status;
    await child.stdout.cancel().catch(() => {});
    await child.stderr.cancel();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("serve and build refuse bad options with error: and exit 2", async (t) => {
  const cases: [string, string[], RegExp][] = [
    ["serve", ["--port", "abc"], /--port expects an integer from 0 to 65535, got "abc"/],
    ["serve", ["--port", "70000"], /--port expects an integer from 0 to 65535, got "70000"/],
    ["serve", ["--root", "/nonexistent/cosgrad"], /--root expects an existing folder/],
    ["build", ["--out-dir"], /Option '--out-dir <value>' argument missing/],
    ["build", ["--bogus"], /Unknown option '--bogus'/],
  ];
  for (const [task, extra, message] of cases) {
    await t.step(`${task} ${extra.join(" ")}`, async () => {
      const { code, stderr } = await outputOf(task, extra);
      assert.equal(code, 2, stderr);
      assert.match(stderr, /^error: /);
      assert.match(stderr, message);
      assert.doesNotMatch(stderr, /\n\s+at /);
    });
  }
});
