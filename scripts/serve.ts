/**
 * `deno task serve`: a small static server for the built page, on http://127.0.0.1:8000/.
 * `/` and everything else come from `dist/web/`; `/cosgrad.js` and its source map come from
 * `dist/`. Run `deno task build` first.
 *
 * ```sh
 * deno task build && deno task serve
 * ```
 *
 * @module
 */
import { intOption, parseCli, runMain, UsageError } from "../examples/_cli.ts";

/** Content types of the files the page uses. */
const MIME: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
  ".png": "image/png",
  ".svg": "image/svg+xml",
  ".wasm": "application/wasm",
  ".txt": "text/plain; charset=utf-8",
};

/**
 * The content type of a file name, by its extension (`application/octet-stream` if unknown).
 *
 * @example
 * ```ts
 * import { contentType } from "./serve.ts";
 * contentType("main.js"); // "text/javascript; charset=utf-8"
 * ```
 */
export function contentType(name: string): string {
  const dot = name.lastIndexOf(".");
  return (dot >= 0 ? MIME[name.slice(dot).toLowerCase()] : undefined) ??
    "application/octet-stream";
}

/** Options of {@link serveSite}. */
export interface ServeOptions {
  /** The build folder, holding `cosgrad.js` and `web/` (default `dist` in the repository). */
  root?: string;
  /** Port; 0 picks a free one (default 8000). */
  port?: number;
  /** Host name to listen on (default 127.0.0.1). */
  hostname?: string;
  /** Print the address when listening (default true). */
  log?: boolean;
}

/** A running server. */
export interface Site {
  /** The page's address, e.g. `http://127.0.0.1:8000/`. */
  url: string;
  /** Stops the server. */
  close(): Promise<void>;
}

/**
 * Maps a request path to a file under `root`, or null when it leaves the site (`..`).
 *
 * @example
 * ```ts
 * import { siteFile } from "./serve.ts";
 * siteFile("/dist", "/"); // "/dist/web/index.html"
 * siteFile("/dist", "/cosgrad.js"); // "/dist/cosgrad.js"
 * siteFile("/dist", "/../etc/passwd"); // null
 * ```
 */
export function siteFile(root: string, pathname: string): string | null {
  let p: string;
  try {
    p = decodeURIComponent(pathname);
  } catch {
    return null;
  }
  if (p.split("/").some((part) => part === ".." || part.includes("\\")) || p.includes("\0")) {
    return null;
  }
  const base = root.endsWith("/") ? root.slice(0, -1) : root;
  if (p === "/cosgrad.js" || p === "/cosgrad.js.map" || p === "/cosgrad_worker.js") {
    return `${base}${p}`;
  }
  if (p.endsWith("/")) p += "index.html";
  return `${base}/web${p}`;
}

/**
 * Serves the built site from `root` until `close()` is called.
 *
 * @example
 * ```ts ignore
 * import { serveSite } from "./serve.ts";
 * const site = serveSite({ port: 0, log: false });
 * await (await fetch(site.url)).text(); // the page's HTML
 * await site.close();
 * ```
 */
export function serveSite(options: ServeOptions = {}): Site {
  const root = options.root ??
    decodeURIComponent(new URL("../dist/", import.meta.url).pathname);
  const hostname = options.hostname ?? "127.0.0.1";
  const server = Deno.serve(
    { hostname, port: options.port ?? 8000, onListen: () => {} },
    async (req) => {
      if (req.method !== "GET" && req.method !== "HEAD") {
        return new Response("Method not allowed", { status: 405 });
      }
      const file = siteFile(root, new URL(req.url).pathname);
      if (file === null) return new Response("Bad path", { status: 400 });
      try {
        const body = await Deno.readFile(file);
        return new Response(req.method === "HEAD" ? null : body, {
          headers: {
            "content-type": contentType(file),
            "cache-control": "no-store",
            // Cross-origin isolation: shared memory, so the wasm backend runs on all cores.
            "cross-origin-opener-policy": "same-origin",
            "cross-origin-embedder-policy": "require-corp",
          },
        });
      } catch (e) {
        if (e instanceof Deno.errors.NotFound || e instanceof Deno.errors.IsADirectory) {
          return new Response(`Not found: ${new URL(req.url).pathname}`, { status: 404 });
        }
        throw e;
      }
    },
  );
  const url = `http://${hostname}:${server.addr.port}/`;
  if (options.log ?? true) console.log(`serving ${root} at ${url}`);
  return { url, close: () => server.shutdown() };
}

const USAGE = `Usage: deno task serve [--port 8000] [--root dist]

Serves the page built by \`deno task build\` at http://127.0.0.1:PORT/.`;

async function main(argv: string[]): Promise<void> {
  const { values } = parseCli(argv, {
    port: { type: "string", default: "8000" },
    root: { type: "string" },
    help: { type: "boolean", short: "h", default: false },
  });
  if (values.help) {
    console.log(USAGE);
    return;
  }
  const port = intOption("port", values.port, { min: 0, max: 65535 });
  if (values.root !== undefined) {
    const info = await Deno.stat(values.root).catch(() => null);
    if (info === null || !info.isDirectory) {
      throw new UsageError(`--root expects an existing folder, got "${values.root}"`);
    }
  }
  const net = await Deno.permissions.query({ name: "net", host: `127.0.0.1:${port}` });
  if (net.state !== "granted") {
    throw new UsageError(
      `--port ${port} is not allowed by this process's permissions: run with --allow-net=127.0.0.1`,
    );
  }
  serveSite({ port, root: values.root });
}

if (import.meta.main) await runMain(main, Deno.args);
