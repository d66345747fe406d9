// Reads a configuration variable from the environment where one exists (Deno with
// --allow-env), and nothing elsewhere (browsers, or without the permission).

/** The value of environment variable `name`, or undefined. */
export function envVar(name: string): string | undefined {
  const runtime = Reflect.get(globalThis, "Deno") as
    | { env?: { get(name: string): string | undefined } }
    | undefined;
  try {
    return runtime?.env?.get(name);
  } catch {
    return undefined;
  }
}

/** Whether `COSGRAD_DEBUG` lists `topic` (comma separated, e.g. `ir,wgsl`). */
export function debugEnabled(topic: string): boolean {
  const v = envVar("COSGRAD_DEBUG");
  return v !== undefined && v.split(",").map((s) => s.trim()).includes(topic);
}
