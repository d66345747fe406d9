import assert from "node:assert/strict";
import { choiceOption, intOption, listOption, numberOption, parseCli, UsageError } from "./_cli.ts";

Deno.test("parseCli() turns parseArgs errors into UsageErrors", () => {
  const options = { steps: { type: "string" as const } };
  assert.throws(() => parseCli(["--bogus"], options), UsageError);
  assert.throws(() => parseCli(["--steps"], options), /--steps/);
  assert.throws(() => parseCli(["x"], options), UsageError);
  assert.deepEqual(parseCli(["x"], options, { positionals: true }).positionals, ["x"]);
});

Deno.test("numberOption() and intOption() name the flag, the range and the value", () => {
  assert.equal(numberOption("lr", "0.5", { above: 0 }), 0.5);
  assert.equal(numberOption("lr", undefined), undefined);
  assert.throws(
    () => numberOption("threshold", "abc", { min: -1, max: 1 }),
    { name: "UsageError", message: '--threshold expects a number from -1 to 1, got "abc"' },
  );
  assert.throws(
    () => numberOption("lr", "-1", { above: 0 }),
    /--lr expects a number greater than 0/,
  );
  assert.throws(() => numberOption("x", ""), UsageError);
  assert.throws(() => numberOption("x", "Infinity"), UsageError);
  assert.equal(intOption("steps", "3", { min: 1 }), 3);
  assert.throws(() => intOption("steps", "1.5", { min: 1 }), /an integer of at least 1/);
  assert.throws(() => intOption("port", "70000", { min: 0, max: 65535 }), /from 0 to 65535/);
});

Deno.test("choiceOption() and listOption() refuse values outside their set", () => {
  assert.equal(choiceOption("backend", "cpu", ["cpu", "webgpu"]), "cpu");
  assert.throws(
    () => choiceOption("backend", "gpu", ["cpu", "webgpu"]),
    { message: '--backend expects one of cpu, webgpu, got "gpu"' },
  );
  const item = (s: string) => intOption("widths", s, { min: 1 });
  assert.deepEqual(listOption("widths", "1, 2", item), [1, 2]);
  assert.throws(() => listOption("widths", "1,,2", item), /no empty items/);
  assert.throws(() => listOption("widths", "1,0", item), /--widths expects an integer/);
});

Deno.test("runMain() exits 2 on a usage error and 1 on another, with no stack trace", async () => {
  const script = new URL("./_cli.ts", import.meta.url).href;
  const run = async (body: string) => {
    const code = `import { runMain, UsageError } from "${script}";
await runMain(() => { ${body} }, []);`;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["eval", code],
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", COSGRAD_DEBUG: "" },
    }).output();
    return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
  };
  const usage = await run(`throw new UsageError("--x expects a number, got \\"a\\"");`);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /^error: --x expects a number, got "a"/);
  assert.doesNotMatch(usage.stderr, /at .*:\d+:\d+/);
  const other = await run(`throw new RangeError("boom");`);
  assert.equal(other.code, 1);
  assert.equal(other.stderr.trim(), "error: boom");
  assert.equal((await run(`return;`)).code, 0);
});
