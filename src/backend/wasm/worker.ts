// A worker of the wasm backend's pool: instantiates each program's module on the shared
// memory once, runs its share of every job's commands (execute.ts), and reports when done.
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
}

/** The worker's global scope (typed here: this file is checked with the window's lib). */
const scope = globalThis as unknown as {
  onmessage: ((ev: MessageEvent<Init | Job>) => void) | null;
  postMessage(msg: unknown): void;
};

let memory: WebAssembly.Memory | null = null;
let index = 0;
let threads = 1;
const instances = new Map<number, ProgramExports>();

scope.onmessage = (ev: MessageEvent<Init | Job>) => {
  const msg = ev.data;
  if (msg.type === "init") {
    memory = msg.memory;
    index = msg.index;
    threads = msg.threads;
    return;
  }
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
  scope.postMessage({ id: msg.id, error: error === null ? null : String(error) });
};
