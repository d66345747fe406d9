/**
 * `compile(f)`: traces `f` once per input signature (pytree structure, shapes, dtypes, static
 * values) into one graph, optimises it, and compiles it for the current backend. A call
 * binds the inputs, submits the whole graph, and returns realized tensors without waiting
 * for the device.
 *
 * @module
 */
import { type Node, topoSort } from "../ir/node.ts";
import { substitute } from "../ir/graph.ts";
import { getBackend } from "../backend/registry.ts";
import type { Backend, KernelSummary, MemoryReport, Program, Storage } from "../backend/storage.ts";
import { fromStorage, storageOf, Tensor } from "../tensor.ts";
import { defKey, flatten, leavesSignature, type TreeDef, unflatten } from "../tree/pytree.ts";
import { argVar, programFor } from "./evaluate.ts";

/** Options of {@link compile}. */
export interface CompileOptions {
  /**
   * Positional arguments the caller gives up: their memory may be reused for the outputs
   * (parameters and optimizer state in a training step). Reading a donated tensor afterwards
   * is an error.
   */
  donate?: readonly number[];
}

interface Compiled {
  /** Built at the first call on real tensors (a trace inlined into another has none). */
  program: Program | null;
  /** The captured constants, as graph nodes (inlining substitutes them back). */
  constNodes: readonly Node[];
  outDef: TreeDef;
  outShapes: number[][];
  captured: Storage[];
  backend: Backend;
  /** Leaf positions (in the flattened arguments) whose storage is donated. */
  donated: Set<number>;
  graph: readonly Node[];
  /** The program's inputs, for recompiling the traced graph. */
  vars: readonly Node<"var">[];
  /** The backend's compile key when the program was compiled. */
  compileKey: string;
}

/** A compiled function, with introspection. */
export interface CompiledFunction<A extends unknown[], R> {
  (...args: A): R;
  /** Number of distinct signatures traced so far. */
  readonly traces: number;
  /** The optimised graph and kernels of the most recent signature, as text. */
  describe(): string;
  /**
   * Kernel dispatches one call with the most recent signature records (on webgpu: how many
   * kernels the graph fused into). Throws a TypeError before the first call and on a backend
   * that runs node by node (cpu).
   *
   * @example
   * ```ts
   * import { compile } from "./compile.ts";
   * import { zeros } from "../ops/creation.ts";
   * import { exp } from "../ops/elementwise.ts";
   * const f = compile((x: any) => exp(exp(x)));
   * f(zeros([4]));
   * try {
   *   f.dispatches(); // on webgpu: 1 (the two exps fuse)
   * } catch (e) {
   *   (e as Error).message; // on cpu: "... runs node by node ..."
   * }
   * ```
   */
  dispatches(): number;
  /**
   * The kernels one call with the most recent signature dispatches, as typed data (names,
   * grids, bindings with split parts). Throws like {@link CompiledFunction.dispatches}.
   *
   * @example
   * ```ts
   * import { compile } from "./compile.ts";
   * import { zeros } from "../ops/creation.ts";
   * import { exp } from "../ops/elementwise.ts";
   * const f = compile((x: any) => exp(x));
   * f(zeros([4]));
   * try {
   *   f.kernels()[0].bindings.length; // on webgpu: 2 (x and the output)
   * } catch {
   *   // on cpu: no kernels
   * }
   * ```
   */
  kernels(): KernelSummary[];
  /**
   * The device memory of a call with the most recent signature, from its buffer plan, with
   * the `donate` arguments given up (see {@link MemoryReport}; `inputBytes` lists the
   * arguments' leaves in order, then the captured constants). Throws a TypeError before the
   * first call, and on a backend without a buffer plan (the cpu interpreter allocates each
   * value as it computes it and has none).
   *
   * @example
   * ```ts
   * import { compile } from "./compile.ts";
   * import { zeros } from "../ops/creation.ts";
   * import { exp } from "../ops/elementwise.ts";
   * import { cpuBackend, withBackend } from "../backend/registry.ts";
   * const f = compile((x: any) => exp(exp(x)));
   * withBackend(cpuBackend(), () => {
   *   f(zeros([1024]));
   *   try {
   *     f.memory(); // on webgpu: { peakBytes: 8192, ... } (x's buffer and the output's: the two exps fuse)
   *   } catch (e) {
   *     (e as Error).message; // "Memory reports need a backend with a buffer plan (webgpu), got the cpu backend"
   *   }
   * });
   * ```
   */
  memory(): MemoryReport;
}

/**
 * Compiles `f`, a pure function of pytrees of tensors. The first call with a new signature
 * traces and compiles; later calls only bind inputs and submit. Called inside a transform
 * (`grad`, `vmap`, `jvp`, another `compile`) on traced tensors, it inlines its cached trace
 * into the caller's graph, so `grad(compile(f))` works and traces `f` once per signature.
 * Static (non-tensor) arguments key the trace by value, or by identity for functions and
 * class instances, so two different lambdas never share a trace.
 *
 * @example
 * ```ts
 * import { compile } from "./compile.ts";
 * import { tensor } from "../ops/creation.ts";
 * import { add, mul } from "../ops/elementwise.ts";
 * const f = compile((x: any, y: any) => add(mul(x, x), y));
 * await f(tensor([2]), tensor([1])).data(); // Float32Array [5]
 * ```
 */
export function compile<A extends unknown[], R>(
  f: (...args: A) => R,
  options: CompileOptions = {},
): CompiledFunction<A, R> {
  const cache = new Map<string, Compiled>();
  let last: (Compiled & { program: Program }) | null = null;
  const donateArgs = new Set(options.donate ?? []);

  const build = (args: A, leaves: Tensor[], backend: Backend): Compiled => {
    const vars = leaves.map((l, i) => argVar(i, l.node));
    const placeheld: unknown[] = [];
    let at = 0;
    const donated = new Set<number>();
    args.forEach((arg, k) => {
      const fl = flatten(arg);
      const n = fl.leaves.length;
      if (donateArgs.has(k)) { for (let j = 0; j < n; j++) donated.add(at + j); }
      placeheld.push(unflatten(fl.def, vars.slice(at, at + n).map((v) => new Tensor(v))));
      at += n;
    });
    const result = f(...placeheld as A);
    const out = flatten(result);
    const outNodes = out.leaves.map((t) => t.node);
    // Constants captured by f (weights closed over, tables) become extra inputs.
    const consts = topoSort(outNodes).filter((n) => n.op === "const") as Node<"const">[];
    const map = new Map<Node, Node>();
    const extra = consts.map((c, j) => {
      const v = argVar(leaves.length + j, c);
      map.set(c, v);
      return v;
    });
    const graph = substitute(outNodes, map);
    return {
      program: null,
      constNodes: consts,
      vars: [...vars, ...extra],
      compileKey: backend.compileKey(),
      outDef: out.def,
      outShapes: out.leaves.map((t) => t.shape),
      captured: consts.map((c) => backend.adopt(c.params.storage as Storage)),
      backend,
      donated,
      graph,
    };
  };

  const fn = (...args: A): R => {
    const backend = getBackend();
    const fl = flatten(args);
    const key = `${backend.name}|${defKey(fl.def)}|${leavesSignature(fl.leaves)}`;
    let c = cache.get(key);
    if (c === undefined || c.backend !== backend) {
      c = build(args, fl.leaves, backend);
      cache.set(key, c);
    }
    if (fl.leaves.some((l) => l.node.traced)) {
      // Called inside a transform (grad, vmap, jvp, another compile): the traced graph is
      // inlined into the caller's, so the transform sees through it.
      const map = new Map<Node, Node>();
      fl.leaves.forEach((l, i) => map.set(c!.vars[i], l.node));
      c.constNodes.forEach((n, j) => map.set(c!.vars[fl.leaves.length + j], n));
      const nodes = substitute(c.graph, map);
      return unflatten<R>(c.outDef, nodes.map((n) => new Tensor(n)));
    }
    if (c.program === null || c.compileKey !== backend.compileKey()) {
      // First run, or the same trace after the profile or a limit changed: compile it.
      c.program = programFor(backend, c.vars, c.graph);
      c.compileKey = backend.compileKey();
    }
    const program = c.program;
    last = { ...c, program };
    const inputs = fl.leaves.map((l) => backend.adopt(storageOf(l)));
    const outs = program.run([...inputs, ...c.captured], c.donated);
    return unflatten<R>(c.outDef, outs.map((s, i) => fromStorage(s, c!.outShapes[i])));
  };
  Object.defineProperty(fn, "traces", { get: () => cache.size });
  (fn as unknown as { describe: () => string }).describe = () =>
    last === null ? "(not traced yet)" : last.program.describe();
  const kernels = (): KernelSummary[] => {
    if (last === null) {
      throw new TypeError("Cannot list the kernels of a compiled function before its first call");
    }
    if (last.program.kernels === undefined) {
      throw new TypeError(
        `The ${last.backend.name} backend runs node by node: its programs have no kernels to list`,
      );
    }
    return last.program.kernels();
  };
  (fn as unknown as { kernels: () => KernelSummary[] }).kernels = kernels;
  (fn as unknown as { dispatches: () => number }).dispatches = () => kernels().length;
  (fn as unknown as { memory: () => MemoryReport }).memory = () => {
    if (last === null) {
      throw new TypeError("Cannot report the memory of a compiled function before its first call");
    }
    const program = last.program;
    if (program.memory === undefined) {
      throw new TypeError(
        `Memory reports need a backend with a buffer plan (webgpu), got the ${last.backend.name} backend`,
      );
    }
    return program.memory(last.donated);
  };
  return fn as CompiledFunction<A, R>;
}
