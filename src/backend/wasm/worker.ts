// A worker of the wasm backend's pool: instantiates each program's module on the shared
// memory once, runs its share of every job's commands (execute.ts), and reports when done.
// Under Deno it runs as a `node:worker_threads` worker (which the host can unref, so an idle
// pool never keeps a process alive); in a browser as a Web Worker.
import { mathImports } from "../../kernel/wasm.ts";
import { type ProgramExports, runShare } from "./execute.ts";

interface Init {
  type: "init";
  memory: WebAssembly.Memory;
  index: number;
  threads: number;
}

interface Job {
  type: "job";
  id: number;
  program: number;
  module: WebAssembly.Module;
  block: number;
  count: number;
  /** Scratch of worker 0; worker i's is `scratchStride` bytes further per index. */
  scratch: number;
  scratchStride: number;
  mr: number;
  nr: number;
  /** The memory's size in bytes when the job was posted. */
  bytes: number;
}

let memory: WebAssembly.Memory | null = null;
let index = 0;
let threads = 1;
const instances = new Map<number, ProgramExports>();

function handle(msg: Init | Job): unknown {
  if (msg.type === "init") {
    memory = msg.memory;
    index = msg.index;
    threads = msg.threads;
    return null;
  }
  // A grow on the host reaches this thread's view of the shared memory (and its instances'
  // bounds) asynchronously: seen stale at the next job (1 in 200 posts in a test), which failed
  // as "Invalid atomic access index". grow(0) refreshes both.
  if (memory!.buffer.byteLength < msg.bytes) memory!.grow(0);
  let exports = instances.get(msg.program);
  if (exports === undefined) {
    const instance = new WebAssembly.Instance(msg.module, {
      env: { memory: memory! },
      ...mathImports(),
    });
    exports = instance.exports as unknown as ProgramExports;
    instances.set(msg.program, exports);
    if (instances.size > 256) instances.delete(instances.keys().next().value!);
  }
  const scratch = msg.scratch + index * msg.scratchStride;
  const error = runShare(exports, memory!, { ...msg, scratch }, index, threads);
  return { id: msg.id, error: error === null ? null : String(error) };
}

interface Port {
  on(event: "message", fn: (msg: Init | Job) => void): void;
  postMessage(msg: unknown): void;
}

const nodeThreads = "node:worker_threads";
const port: Port | null = "Deno" in globalThis
  ? ((await import(nodeThreads)) as { parentPort: Port | null }).parentPort
  : null;
if (port !== null) {
  port.on("message", (msg) => {
    const reply = handle(msg);
    if (reply !== null) port.postMessage(reply);
  });
} else {
  // A Web Worker (typed here: this file is checked with the window's lib).
  const scope = globalThis as unknown as {
    onmessage: ((ev: MessageEvent<Init | Job>) => void) | null;
    postMessage(msg: unknown): void;
  };
  scope.onmessage = (ev) => {
    const reply = handle(ev.data);
    if (reply !== null) scope.postMessage(reply);
  };
}
