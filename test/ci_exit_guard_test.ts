// .ci/deno_fast_exit.c, the LD_PRELOAD guard .ci/run puts under `deno test` (RELIABILITY.md,
// "Exit code 134"): deno keeps its exit status and output but runs no library destructor at
// exit; other programs keep the real exit(). Skips itself without a C compiler. (.ci/run itself
// preloads the guard, so the unguarded run clears LD_PRELOAD.)
import assert from "node:assert/strict";

const SOURCE = new URL("../.ci/deno_fast_exit.c", import.meta.url).pathname;

async function hasCompiler(): Promise<boolean> {
  try {
    return (await new Deno.Command("cc", { args: ["--version"], stdout: "null", stderr: "null" })
      .output()).success;
  } catch {
    return false;
  }
}

const compiler = await hasCompiler();

async function run(cmd: string, args: string[], env: Record<string, string>) {
  const r = await new Deno.Command(cmd, { args, env, stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, stdout: dec.decode(r.stdout), stderr: dec.decode(r.stderr) };
}

Deno.test({
  name: "the exit guard keeps deno's status and output and skips the exit-time destructors",
  ignore: !compiler,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "cosgrad_exit_guard_" });
    try {
      const so = `${dir}/deno_fast_exit.so`;
      const built = await run("cc", ["-O2", "-shared", "-fPIC", "-o", so, SOURCE, "-ldl"], {});
      assert.equal(built.code, 0, built.stderr);
      const script = 'console.log("before exit"); Deno.exit(3);';
      const plain = await run(Deno.execPath(), ["eval", script], {
        LD_PRELOAD: "",
        LD_DEBUG: "files",
      });
      const guarded = await run(Deno.execPath(), ["eval", script], {
        LD_PRELOAD: so,
        LD_DEBUG: "files",
      });
      for (const r of [plain, guarded]) {
        assert.equal(r.code, 3);
        assert.equal(r.stdout, "before exit\n");
      }
      // glibc finalizes itself last in exit(); the guard leaves with _exit before any of that.
      const libcFini = /calling fini: \S*libc\.so\.6/;
      assert.match(plain.stderr, libcFini);
      assert.doesNotMatch(guarded.stderr, libcFini);
      // Other programs get the real exit(), destructors included (the C compiler's driver here).
      const other = await run("cc", ["--version"], { LD_PRELOAD: so, LD_DEBUG: "files" });
      assert.equal(other.code, 0);
      assert.match(other.stdout, /\S/);
      assert.match(other.stderr, libcFini);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
