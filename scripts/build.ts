/**
 * `deno task build`: bundles the browser entry (`src/web.ts`) into one minified ES module,
 * `dist/cosgrad.js` with its source map, and the margin explorer page (`examples/web/`) into
 * `dist/web/` (its `main.js` imports the library from `./cosgrad.js`, which `scripts/serve.ts`
 * serves beside it), and the wasm backend's pool worker, `dist/cosgrad_worker.js` (started where
 * the page is cross-origin isolated). Prints the sizes.
 *
 * ```sh
 * deno task build                 # into dist/
 * deno run -A scripts/build.ts --out-dir /tmp/site
 * ```
 *
 * @module
 */
import * as esbuild from "npm:esbuild@0.28.2";
import { parseCli, runMain, UsageError } from "../examples/_cli.ts";

/** Options of {@link build}. */
export interface BuildOptions {
  /** Folder to write into (default `dist` in the repository). */
  outDir?: string | URL;
  /** Print the sizes (default true). */
  log?: boolean;
}

/** One written file. */
export interface BuiltFile {
  /** Path, relative to the output folder. */
  path: string;
  /** Size in bytes. */
  bytes: number;
  /** Size after gzip, in bytes (what a server with compression sends). */
  gzipBytes: number;
}

/** What {@link build} wrote. */
export interface BuildReport {
  /** The output folder, absolute. */
  outDir: string;
  /** Every written file. */
  files: BuiltFile[];
  /** Wall time in milliseconds. */
  ms: number;
}

const ROOT = new URL("../", import.meta.url);
const ENTRY = new URL("src/web.ts", ROOT);
const PAGE = new URL("examples/web/", ROOT);
/** Static files of the page, copied as they are. */
const STATIC_FILES = ["index.html", "style.css"];

function path(u: URL): string {
  return decodeURIComponent(u.pathname);
}

async function gzipSize(bytes: Uint8Array): Promise<number> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return (await new Response(stream).arrayBuffer()).byteLength;
}

/**
 * An esbuild plugin that leaves the library out of the page's bundle: an import of
 * `src/web.ts` becomes an import of `./cosgrad.js`, the library bundle served beside it.
 */
function libraryAsExternal(): esbuild.Plugin {
  const entry = path(ENTRY);
  return {
    name: "cosgrad-external",
    setup(b) {
      b.onResolve({ filter: /web\.ts$/ }, (args) => {
        const resolved = path(new URL(args.path, `file://${args.resolveDir}/`));
        return resolved === entry ? { path: "./cosgrad.js", external: true } : undefined;
      });
    },
  };
}

/**
 * Builds the library bundle and the page into `outDir` (see the module documentation).
 *
 * @example
 * ```ts ignore
 * import { build } from "./build.ts";
 * const report = await build({ outDir: "/tmp/cosgrad-dist", log: false });
 * report.files.map((f) => f.path); // ["cosgrad.js", "cosgrad.js.map", "web/main.js", ...]
 * ```
 */
export async function build(options: BuildOptions = {}): Promise<BuildReport> {
  const t0 = performance.now();
  const outDir = options.outDir === undefined
    ? path(new URL("dist/", ROOT))
    : options.outDir instanceof URL
    ? path(options.outDir)
    : options.outDir;
  const out = outDir.endsWith("/") ? outDir.slice(0, -1) : outDir;
  await Deno.mkdir(`${out}/web`, { recursive: true });
  const common: esbuild.BuildOptions = {
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: true,
    legalComments: "none",
    logLevel: "warning",
    metafile: true,
  };
  try {
    const lib = await esbuild.build({
      ...common,
      entryPoints: [path(ENTRY)],
      outfile: `${out}/cosgrad.js`,
    });
    // The wasm backend's pool worker, beside the library (which starts it where the page is
    // cross-origin isolated).
    const worker = await esbuild.build({
      ...common,
      entryPoints: [path(new URL("src/backend/wasm/worker.ts", ROOT))],
      outfile: `${out}/cosgrad_worker.js`,
    });
    const page = await esbuild.build({
      ...common,
      entryPoints: [path(new URL("main.ts", PAGE))],
      outfile: `${out}/web/main.js`,
      plugins: [libraryAsExternal()],
    });
    // The page must not carry its own copy of the library.
    const pageInputs = Object.keys(page.metafile?.outputs[`${out}/web/main.js`]?.inputs ?? {});
    const leaked = pageInputs.filter((p) => p.includes("src/") && !p.includes("examples/"));
    if (leaked.length > 0) {
      throw new TypeError(
        `The page bundle includes library modules ${
          leaked.join(", ")
        }: import them through src/web.ts`,
      );
    }
    const errors = lib.errors.length + worker.errors.length + page.errors.length;
    if (errors > 0) throw new TypeError(`esbuild reported ${errors} errors`);
  } finally {
    await esbuild.stop();
  }
  for (const name of STATIC_FILES) {
    await Deno.copyFile(new URL(name, PAGE), `${out}/web/${name}`);
  }
  const names = [
    "cosgrad.js",
    "cosgrad.js.map",
    "cosgrad_worker.js",
    "web/main.js",
    "web/main.js.map",
    ...STATIC_FILES.map((f) => `web/${f}`),
  ];
  const files: BuiltFile[] = [];
  for (const name of names) {
    const bytes = await Deno.readFile(`${out}/${name}`);
    files.push({ path: name, bytes: bytes.length, gzipBytes: await gzipSize(bytes) });
  }
  const report = { outDir: out, files, ms: performance.now() - t0 };
  if (options.log ?? true) {
    const kib = (b: number) => `${(b / 1024).toFixed(1)} KiB`.padStart(10);
    console.log(`built ${out} in ${report.ms.toFixed(0)} ms`);
    for (const f of files) {
      console.log(`  ${f.path.padEnd(20)} ${kib(f.bytes)}  (gzip ${kib(f.gzipBytes).trim()})`);
    }
  }
  return report;
}

const USAGE = `Usage: deno task build [--out-dir DIR]

Bundles src/web.ts into DIR/cosgrad.js (minified ES module + source map) and the margin
explorer page examples/web/ into DIR/web/. DIR defaults to dist/.`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseCli(argv, {
    "out-dir": { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const outDir = values["out-dir"];
  if (outDir === "") throw new UsageError(`--out-dir expects a folder path, got ""`);
  if (outDir !== undefined) {
    const write = await Deno.permissions.query({ name: "write", path: outDir });
    if (write.state !== "granted") {
      throw new UsageError(
        `--out-dir ${outDir} is not writable with this process's permissions: run with --allow-write`,
      );
    }
  }
  await build({ outDir });
}

if (import.meta.main) await runMain(main, Deno.args);
