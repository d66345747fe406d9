/**
 * Code generation for the WebGPU backend: one scheduled kernel to one or more dispatches.
 *
 * Map kernels and loops (reductions, scatter-add) are built as kernel IR (`src/kernel/`):
 * the lowering rules emit typed statements, the passes vectorize, hoist, merge repeats and
 * drop provable bounds checks, and the WGSL renderer prints the result. Each dispatch carries
 * its typed bindings, so the bind-group layout never comes from the printed source.
 *
 * - `map` kernels run one thread per output element (on llvmpipe four, with `vec4` loads);
 * - `loop` kernels run a loop per output element, either serially in one thread (column-like
 *   reductions, many outputs) or split over a workgroup and combined in workgroup memory in a
 *   fixed tree order (row-like reductions, few outputs); the fused elementwise consumers run
 *   on the result;
 * - `gemm` kernels are built as kernel IR by `kernels/` (the GEMM family: matmul, the three
 *   convolution directions by each algorithm), with the fused consumers as their epilogue
 *   statements.
 *
 * A tensor larger than one storage binding (`CodegenOptions.maxBindingBytes`) is bound as
 * several parts over consecutive ranges of its buffer and read or written through accessors
 * (see `split.ts`).
 *
 * @module
 */
import { sizeOf } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import type { ConvParams } from "../../ir/primitives.ts";
import {
  conv2dBackwardFilterKernel,
  conv2dBackwardInputKernel,
  conv2dForwardKernel,
  type Conv2dSpec,
} from "../../../kernels/conv2d.ts";
import {
  type ConvDirection,
  isConvVariant,
  type TunedKernel,
  type Variant,
} from "../../../kernels/tune.ts";
import { matmulKernel } from "../../../kernels/matmul.ts";
import type { BindingSplit, Epilogue, KernelPlan } from "../../../kernels/types.ts";
import {
  type BufferRead,
  Emitter,
  flatIndex,
  type Index,
  type KernelScope,
  scalarOf,
  zeroOf,
} from "../../kernel/emitter.ts";
import {
  bin,
  type Binding,
  type Expr,
  type Kernel as KernelAst,
  load,
  name,
  type Shared,
  type Stmt,
  u32,
} from "../../kernel/ir.ts";
import { type GemmPrim, inlineRule, loopOf, LOWERING } from "../../kernel/lowering.ts";
import { optimize, quadOffset, vectorizeLanes } from "../../kernel/passes.ts";
import { renderWgsl, type Slot } from "../../kernel/wgsl.ts";
import { rangeCode } from "../range_errors.ts";
import { type Kernel, kernelName } from "./schedule.ts";
import { type BindingParts, bindingParts } from "./split.ts";

/** WGSL type names that a prefix plus a counter could spell; never used as local names. */
const RESERVED_NAMES: ReadonlySet<string> = new Set([
  "f16",
  "f32",
  "i32",
  "u32",
  "i64",
  "u64",
  "f64",
]);

/** What a binding of a dispatch refers to. */
export type BindingRef =
  | {
    kind: "node";
    node: Node;
    write: boolean;
    /** For a tensor split across bindings: the byte range of its buffer this binding covers. */
    part?: { offset: number; size: number };
  }
  | {
    kind: "scratch";
    name: string;
    bytes: number;
    write: boolean;
    /** The byte range of the scratch buffer bound (the whole buffer when absent). */
    part?: { offset: number; size: number };
    /** Bound as a uniform buffer (the declared array's bytes). */
    uniform?: number;
  }
  | { kind: "errors" };

/** One compute dispatch. */
export interface Dispatch {
  /** Short name, for profiles and debug output. */
  name: string;
  /** WGSL source (entry point `main`). */
  code: string;
  /** Workgroups in x, y, z. */
  workgroups: [number, number, number];
  /** What each binding (in order) refers to; its access mode is the layout's. */
  bindings: BindingRef[];
  /** The kernel IR the source was rendered from (absent for a clear, which runs no shader). */
  kernel?: KernelAst<BindingRef>;
  /** Set for an output of zeros: the encoder clears its one binding, no shader runs. */
  clear?: boolean;
}

/**
 * Whether a dispatch writes binding `b` (the bind-group layout's access mode).
 *
 * @example
 * ```ts
 * import { writes } from "./codegen.ts";
 * writes({ kind: "errors" }); // true
 * ```
 */
export function writes(b: BindingRef): boolean {
  return b.kind === "errors" || b.write;
}

/**
 * The bind-group layout slot of binding `b`: storage read or written, or uniform.
 *
 * @example
 * ```ts
 * import { slotOf } from "./codegen.ts";
 * slotOf({ kind: "scratch", name: "wq", bytes: 512, write: false, uniform: 256 }); // { uniform: 256 }
 * ```
 */
export function slotOf(b: BindingRef): Slot {
  if (b.kind === "scratch" && b.uniform !== undefined) return { uniform: b.uniform };
  return writes(b) ? "write" : "read";
}

/** Device facts the code generator tunes for. */
export interface CodegenOptions {
  /** `llvmpipe` (register tiles, software) or `discrete` (workgroup tiles) heuristic defaults. */
  profile: "llvmpipe" | "discrete";
  /**
   * The measured choice of a convolution or matmul kernel class (`kernels/tune_cache.ts`): a
   * variant of that kernel's kind, `null` for the heuristic default, undefined when the class
   * has no record.
   */
  choose?: (kernel: TunedKernel) => Variant | null | undefined;
  /**
   * Bytes one storage binding may cover (the adapter's `maxStorageBufferBindingSize`); a
   * tensor over it is bound as several parts (`split.ts`). No limit when absent.
   */
  maxBindingBytes?: number;
}

/** The binding parts of `node`'s memory under `options`' binding limit. */
function partsOf(node: Node, options: CodegenOptions): BindingParts {
  const bytes = sizeOf(node.shape) * 4;
  return options.maxBindingBytes === undefined
    ? { count: 1, elements: bytes / 4 }
    : bindingParts(bytes, options.maxBindingBytes);
}

/** Workgroup size of map kernels and serial loops. */
const THREADS = 256;

const LID = name("lid", "u32");

interface Grid {
  workgroups: [number, number, number];
  /** `let lin = ...` (the linear workgroup id). */
  lin: Stmt;
}

function fold(total: number): Grid {
  const x = Math.min(Math.max(total, 1), 65535);
  const y = Math.ceil(Math.max(total, 1) / x);
  if (y > 65535) throw new RangeError(`Cannot dispatch ${total} workgroups: too many`);
  const wid = (axis: "x" | "y"): Expr => ({ kind: "wid", axis, type: "u32" });
  return {
    workgroups: [x, y, 1],
    lin: {
      kind: "let",
      name: "lin",
      value: y > 1 ? bin("+", wid("x"), bin("*", wid("y"), u32(x))) : wid("x"),
    },
  };
}

const LIN = name("lin", "u32");
const GID = name("gid", "u32");

class Scope implements KernelScope {
  private count = 0;
  /** Bindings read, in order of first use. */
  readonly reads: Node[] = [];
  private readonly names = new Map<Node, string>();
  usesErrors = false;
  constructor(
    readonly own: ReadonlySet<Node>,
    readonly isMem: (n: Node) => boolean,
    readonly alias: ReadonlyMap<Node, Node>,
    readonly mode: "kernel" | "epilogue",
    readonly options: CodegenOptions,
  ) {}
  /** A new local name; skips the WGSL type names a prefix plus counter can spell (`f32`, `i32`, `u32`, `f16`). */
  fresh(prefix: string): string {
    for (;;) {
      const n = `${prefix}${this.count++}`;
      if (!RESERVED_NAMES.has(n)) return n;
    }
  }
  read(node: Node): BufferRead | null {
    if (this.own.has(node) || !this.isMem(node)) return null;
    const base = this.alias.get(node) ?? node;
    let n = this.names.get(base);
    if (n === undefined) {
      n = this.mode === "epilogue" ? `e${this.reads.length}` : `in${this.reads.length}`;
      this.names.set(base, n);
      this.reads.push(base);
    }
    return { name: n, bitcastI32: this.mode === "epilogue" && node.dtype === "int32" };
  }
  reportCode(node: Node): number | null {
    if (this.mode === "epilogue") {
      throw new TypeError("Internal error: a kernel epilogue cannot report index errors");
    }
    this.usesErrors = true;
    return rangeCode(node);
  }
}

/** The binding of `node`'s memory: one part, or one per range of its buffer when split. */
function nodeBinding(
  bindingName: string,
  node: Node,
  write: boolean,
  options: CodegenOptions,
): Binding<BindingRef> {
  const parts = partsOf(node, options);
  const refs = partRefs(node, write, options);
  return {
    name: bindingName,
    scalar: scalarOf(node.dtype),
    write,
    lanes: 1,
    split: parts.count > 1 ? { parts: parts.count, elements: parts.elements } : undefined,
    refs,
  };
}

/** The bindings of `node`'s memory: one, or one per part of its buffer when split. */
function partRefs(node: Node, write: boolean, options: CodegenOptions): BindingRef[] {
  const parts = partsOf(node, options);
  if (parts.count === 1) return [{ kind: "node", node, write }];
  const bytes = sizeOf(node.shape) * 4;
  return Array.from({ length: parts.count }, (_, p) => {
    const offset = p * parts.elements * 4;
    const size = Math.min(parts.elements * 4, bytes - offset);
    return { kind: "node", node, write, part: { offset, size } };
  });
}

/** Raises when a kernel's scratch buffer would not fit one storage binding (it is never split). */
function checkScratch(bytes: number, scratch: string, kernel: string, limit: number | undefined) {
  if (limit !== undefined && bytes > limit) {
    throw new RangeError(
      `The ${bytes}-byte scratch buffer ${scratch} of kernel ${kernel} exceeds the storage ` +
        `binding limit of ${limit} bytes (maxStorageBufferBindingSize)`,
    );
  }
}

/** The error for a tensor a kernel cannot split across bindings. */
function unsplittable(node: Node, role: string, kernel: string, limit: number): RangeError {
  const bytes = sizeOf(node.shape) * 4;
  return new RangeError(
    `A ${node.dtype}[${node.shape.join(",")}] tensor (${bytes} bytes), ${role} of kernel ` +
      `${kernel}, exceeds the storage binding limit of ${limit} bytes (maxStorageBufferBindingSize): ` +
      `a tiled kernel's epilogue inputs cannot be split across bindings`,
  );
}

/** A readable description of the ops a kernel computes, for its header comment. */
function describe(k: Kernel, scope: Scope, computed: readonly Node[]): string {
  const ops = computed.filter((n) => LOWERING[n.op].kind !== "input").map((n) => n.op);
  const root = k.roots[0];
  return `${k.kind} ${root.dtype}[${k.shape.join(",")}]: ${ops.join(", ")}` +
    (scope.reads.length > 0 ? ` (reads ${scope.reads.length})` : "");
}

/** Nodes computed inline by a kernel (for the header comment), inputs first. */
function inlineNodes(k: Kernel, scope: Scope): Node[] {
  const out: Node[] = [];
  const seen = new Set<Node>();
  const visit = (n: Node) => {
    if (seen.has(n)) return;
    seen.add(n);
    if (!scope.own.has(n) && scope.isMem(n)) return;
    if (!(LOWERING[n.op].kind === "gemm" && scope.own.has(n))) n.inputs.forEach(visit);
    out.push(n);
  };
  k.roots.forEach(visit);
  return out;
}

/** A scratch binding of a multi-pass kernel. */
interface ScratchDecl {
  name: string;
  scalar: "f32" | "i32";
  write: boolean;
  bytes: number;
}

/** Assembles the kernel IR of one dispatch: bindings (reads, scratch, outputs, errors). */
function assemble(
  k: Kernel,
  scope: Scope,
  body: Stmt[],
  grid: Grid,
  threads: number,
  options: { scratch?: ScratchDecl; roots?: boolean; suffix?: string; shared?: Shared[] } = {},
): KernelAst<BindingRef> {
  const bindings: Binding<BindingRef>[] = scope.reads.map((n, i) =>
    nodeBinding(`in${i}`, n, false, scope.options)
  );
  const sc = options.scratch;
  const kname = kernelName(k) + (options.suffix ?? "");
  if (sc !== undefined) {
    checkScratch(sc.bytes, sc.name, kernelName(k), scope.options.maxBindingBytes);
    bindings.push({
      name: sc.name,
      scalar: sc.scalar,
      write: sc.write,
      lanes: 1,
      refs: [{ kind: "scratch", name: sc.name, bytes: sc.bytes, write: sc.write }],
    });
  }
  if (options.roots ?? true) {
    k.roots.forEach((n, i) => bindings.push(nodeBinding(`out${i}`, n, true, scope.options)));
  }
  if (scope.usesErrors) {
    bindings.push({
      name: "cg_err",
      scalar: "atomic",
      write: true,
      lanes: 1,
      refs: [{ kind: "errors" }],
    });
  }
  return {
    name: kname,
    comment: describe(k, scope, inlineNodes(k, scope)),
    bindings,
    shared: options.shared ?? [],
    threads,
    workgroups: grid.workgroups,
    body: [grid.lin, ...body],
  };
}

/** Optimizes and renders a kernel as a dispatch. */
function toDispatch(kernel: KernelAst<BindingRef>): Dispatch {
  const k = optimize(kernel);
  return {
    name: k.name,
    code: renderWgsl(k),
    workgroups: [k.workgroups[0], k.workgroups[1], k.workgroups[2]],
    bindings: k.bindings.flatMap((b) => b.refs),
    kernel: k,
  };
}

function writeRoots(e: Emitter, k: Kernel, idx: Index, at: Expr): void {
  k.roots.forEach((r, i) => {
    e.push({ kind: "store", buf: `out${i}`, index: at, value: e.value(r, idx) });
  });
}

/** Elements per thread of a vectorized map kernel or reduction quad. */
const LANES = 4;

function mapKernel(k: Kernel, scope: Scope, seed?: [Node, Expr]): KernelAst<BindingRef> {
  const total = sizeOf(k.shape);
  if (
    scope.options.profile === "llvmpipe" && seed === undefined &&
    total % LANES === 0 && total >= 256 &&
    k.roots.every((r) => partsOf(r, scope.options).count === 1)
  ) {
    const v = vectorMapKernel(k, scope);
    if (v !== null) return v;
  }
  const grid = fold(Math.ceil(total / THREADS));
  const e = new Emitter(scope, inlineRule);
  const idx = flatIndex(k.shape, GID);
  if (seed !== undefined) e.seed(seed[0], idx, seed[1]);
  writeRoots(e, k, idx, GID);
  return assemble(
    k,
    scope,
    [
      { kind: "let", name: "gid", value: bin("+", bin("*", LIN, u32(THREADS)), LID) },
      { kind: "exit", index: GID, limit: total, unit: "thread" },
      ...e.stmts,
    ],
    grid,
    THREADS,
  );
}

/**
 * A map kernel computing {@link LANES} consecutive elements per thread: inputs read only at the
 * thread's own elements are loaded as one `vec4` each ({@link vectorizeLanes}), and the outputs
 * are stored as one `vec4`. Measured on llvmpipe (T1's batch-norm and PReLU kernels, 4M
 * elements): 1.5-1.9x faster than one element per thread, whose per-lane scalar loads dominate.
 * Null when the kernel reports index errors (its scalar form is used then).
 */
function vectorMapKernel(k: Kernel, scope0: Scope): KernelAst<BindingRef> | null {
  const scope = new Scope(scope0.own, scope0.isMem, scope0.alias, "kernel", scope0.options);
  const total = sizeOf(k.shape);
  const grid = fold(Math.ceil(total / LANES / THREADS));
  const e = new Emitter(scope, inlineRule);
  const q = name("q", "u32");
  const lanes = Array.from({ length: LANES }, (_, j) => `g${j}`);
  lanes.forEach((g, j) => e.push({ kind: "let", name: g, value: quadOffset(q, j) }));
  const outs: Stmt[] = k.roots.map((r, i) => {
    const type = scalarOf(r.dtype) === "i32" ? "vec4<i32>" : "vec4<f32>";
    const parts = lanes.map((g) => e.value(r, flatIndex(k.shape, name(g, "u32"))));
    return { kind: "store", buf: `out${i}`, index: q, value: { kind: "vec", parts, type } };
  });
  if (scope.usesErrors) return null;
  const kernel = assemble(
    k,
    scope,
    [
      { kind: "let", name: "q", value: bin("+", bin("*", LIN, u32(THREADS)), LID) },
      { kind: "exit", index: q, limit: total / LANES, unit: "thread" },
      ...e.stmts,
      ...outs,
    ],
    grid,
    THREADS,
  );
  const vec = vectorizeLanes(
    kernel,
    { lanes, vecIndex: q, after: lanes[LANES - 1] },
    (b) => b.refs[0].kind === "node" && sizeOf(b.refs[0].node.shape) === total,
  );
  return {
    ...vec,
    bindings: vec.bindings.map((b) => b.name.startsWith("out") ? { ...b, lanes: 4 } : b),
  };
}

/**
 * The stores combining each accumulator's `red[i*w .. (i+1)*w)` into `red[i*w]` (fixed order,
 * so results are deterministic), for thread 0 to read; `accs[i]` is the thread's accumulator
 * `i`. A tree of `log2(w)` barriers on GPUs; on llvmpipe, which compiles each barrier as a
 * coroutine switch (T1's four sibling sums: 0.7-0.8 s cold with the tree), thread 0 combines
 * the `w` partials in order after one barrier.
 */
function tree(
  w: number,
  combine: (a: Expr, b: Expr) => Expr,
  accs: readonly Expr[],
  profile: CodegenOptions["profile"],
): Stmt[] {
  const at = (i: number, j: Expr) => bin("+", j, u32(i * w));
  const red = (i: number, j: Expr) => load("red", at(i, j), accs[i].type);
  const out: Stmt[] = [
    ...accs.map((a, i): Stmt => ({ kind: "store", buf: "red", index: at(i, LID), value: a })),
    { kind: "barrier" },
  ];
  if (profile === "llvmpipe") {
    const j = name("j", "u32");
    out.push({
      kind: "if",
      cond: bin("==", LID, u32(0)),
      body: [{
        kind: "for",
        index: "j",
        from: u32(1),
        to: u32(w),
        step: u32(1),
        body: accs.map((_, i): Stmt => ({
          kind: "store",
          buf: "red",
          index: u32(i * w),
          value: combine(red(i, u32(0)), red(i, j)),
        })),
      }],
    });
    return out;
  }
  for (let s = w / 2; s >= 1; s /= 2) {
    out.push({
      kind: "if",
      cond: bin("<", LID, u32(s)),
      body: accs.map((_, i): Stmt => ({
        kind: "store",
        buf: "red",
        index: at(i, LID),
        value: combine(red(i, LID), red(i, bin("+", LID, u32(s)))),
      })),
    });
    out.push({ kind: "barrier" });
  }
  return out;
}

/** Workgroups an adapter wants in flight before a reduction is split into chunks. */
const SPLIT_TARGET = { llvmpipe: 16, discrete: 1024 };

/** A loop kernel's cores (one per root for sibling sums, else the one core) and names. */
function loopCores(k: Kernel) {
  const cores = k.cores ?? [k.core!];
  const type = scalarOf(cores[0].dtype);
  return {
    cores,
    specs: cores.map(loopOf),
    acc: (i: number) => name(i === 0 ? "acc" : `acc${i}`, type),
    total: (i: number) => name(i === 0 ? "total" : `total${i}`, type),
  };
}

/**
 * Whether computing `n` inline reads some tensor from memory at `n`'s own flat index (through
 * elementwise ops and reshapes only), unsplit: what a vectorized reduction loads as vec4.
 */
function readsInPlace(n: Node, scope: Scope): boolean {
  const size = sizeOf(n.shape);
  const seen = new Set<Node>();
  const stack = [n];
  while (stack.length > 0) {
    const x = stack.pop()!;
    if (seen.has(x)) continue;
    seen.add(x);
    if (!scope.own.has(x) && scope.isMem(x)) {
      if (sizeOf(x.shape) === size && partsOf(x, scope.options).count === 1) return true;
      continue;
    }
    if (LOWERING[x.op].kind === "elementwise" || x.op === "reshape") stack.push(...x.inputs);
  }
  return false;
}

/**
 * The loop accumulating a loop kernel's terms: accumulator declarations and the `for` loop,
 * from `start` by `step` below the extent. On llvmpipe, when every core's terms `4q .. 4q+3`
 * read four consecutive elements, the loop runs over quads of terms, and the returned lane
 * group lets {@link vectorizeLanes} load inputs read only at those elements as one `vec4` per
 * quad (llvmpipe loads storage one lane at a time, so a vec4 load costs about one scalar load).
 */
function termLoop(
  e: Emitter,
  k: Kernel,
  scope: Scope,
  cidx: Index,
  start: Expr,
  step: Expr,
): { stmts: Stmt[]; lanes?: { lanes: string[]; vecIndex: Expr; after: string } } {
  const { cores, specs, acc } = loopCores(k);
  const type = scalarOf(k.core!.dtype);
  const extent = specs[0].extent;
  const decls: Stmt[] = specs.map((sp, i) => ({
    kind: "var",
    name: acc(i).kind === "name" ? (acc(i) as { name: string }).name : "acc",
    type,
    init: sp.init,
  }));
  const inner = e.child();
  const quads = scope.options.profile === "llvmpipe" && extent % LANES === 0 &&
    specs.every((sp) => sp.vector !== undefined) &&
    cores.some((c) => readsInPlace(c.inputs[0], scope));
  if (!quads) {
    const r = name("r", "u32");
    // Every term first, then the updates: siblings share the loads they have in common.
    const terms = specs.map((sp) => sp.term(inner, cidx, r));
    terms.forEach((t, i) =>
      inner.push({
        kind: "assign",
        name: `${i === 0 ? "acc" : `acc${i}`}`,
        value: specs[i].combine(acc(i), t),
      })
    );
    return {
      stmts: [...decls, {
        kind: "for",
        index: "r",
        from: start,
        to: u32(extent),
        step,
        body: inner.stmts,
      }],
    };
  }
  const rq = name("rq", "u32");
  const lanes = Array.from({ length: LANES }, (_, j) => {
    inner.push({ kind: "let", name: `r${j}`, value: quadOffset(rq, j) });
    return name(`r${j}`, "u32");
  });
  // The flat offset each lane reads the reduced input at (shared with the terms' loads).
  const flats = lanes.map((r) => inner.flat(specs[0].vector!(inner, cidx, r)));
  const terms = specs.map((sp) => lanes.map((r) => sp.term(inner, cidx, r)));
  terms.forEach((ts, i) => {
    let a = acc(i);
    for (const t of ts) a = specs[i].combine(a, t);
    inner.push({ kind: "assign", name: i === 0 ? "acc" : `acc${i}`, value: a });
  });
  const laneNames = flats.flatMap((f) => f.kind === "name" ? [f.name] : []);
  const loop: Stmt = {
    kind: "for",
    index: "rq",
    from: start,
    to: u32(extent / LANES),
    step,
    body: inner.stmts,
  };
  // Lane offsets are names in the loop body (a literal offset cannot be vectorized).
  if (laneNames.length < LANES) return { stmts: [...decls, loop] };
  return {
    stmts: [...decls, loop],
    lanes: { lanes: laneNames, vecIndex: bin("/", flats[0], u32(LANES)), after: laneNames[0] },
  };
}

/** Runs {@link vectorizeLanes} over a loop's quads, when it has them. */
function withQuads(
  kernel: KernelAst<BindingRef>,
  lanes: { lanes: string[]; vecIndex: Expr; after: string } | undefined,
): KernelAst<BindingRef> {
  return lanes === undefined ? kernel : vectorizeLanes(kernel, lanes);
}

function loopKernel(k: Kernel, scope: Scope, options: CodegenOptions): KernelAst<BindingRef>[] {
  const { cores, specs, acc, total } = loopCores(k);
  const core = cores[0];
  const spec = specs[0];
  const outputs = sizeOf(k.shape);
  const type = scalarOf(core.dtype);
  // A workgroup per output when there are few outputs or the terms of one output are
  // contiguous (GPUs); llvmpipe runs a workgroup's barriers as coroutine switches, so there
  // one thread per output wins as soon as the outputs fill its SIMD lanes and cores.
  const parallel = spec.extent >= 64 &&
    (options.profile === "llvmpipe"
      // Long per-thread loops (over 65,536 terms, measured) come out short on llvmpipe: an
      // output of one thread summing 66,560 ones gave 65,533. Long reductions therefore
      // always share each output's terms across a workgroup there.
      ? outputs < 32 || spec.extent > 16384
      : spec.rowLike || outputs < 2048);
  const target = SPLIT_TARGET[options.profile];
  if (parallel && 2 * outputs <= target && spec.extent >= 2048) {
    const splits = Math.min(Math.ceil(target / outputs), Math.floor(spec.extent / 1024), 256);
    if (splits >= 2) return splitLoopKernel(k, scope, splits);
  }
  const e = new Emitter(scope, inlineRule);
  // The core and the roots fused after it share the flat index (reshapes keep it).
  const idx = flatIndex(k.shape, GID);
  const cidx = flatIndex(core.shape, GID);
  e.dims(cidx);
  if (!parallel) {
    const grid = fold(Math.ceil(outputs / THREADS));
    const epi = e.child();
    cores.forEach((c, i) => epi.seed(c, cidx, acc(i)));
    writeRoots(epi, k, idx, GID);
    const loop = termLoop(e, k, scope, cidx, u32(0), u32(1));
    return [withQuads(
      assemble(
        k,
        scope,
        [
          { kind: "let", name: "gid", value: bin("+", bin("*", LIN, u32(THREADS)), LID) },
          { kind: "exit", index: GID, limit: outputs, unit: "thread" },
          ...e.stmts,
          ...loop.stmts,
          ...epi.stmts,
        ],
        grid,
        THREADS,
      ),
      loop.lanes,
    )];
  }
  // llvmpipe compiles a 256-wide workgroup's barrier tree slowly: T1's four sibling sums took
  // 43.6 s cold at 256 threads, 5.8 s at 64, the same run time (measured, loaded machine).
  const w = spec.extent >= 4096 && (options.profile !== "llvmpipe" || spec.extent > 2 ** 20)
    ? 256
    : 64;
  const grid = fold(outputs);
  const epi = e.child();
  cores.forEach((c, i) => epi.seed(c, cidx, total(i)));
  writeRoots(epi, k, idx, GID);
  const loop = termLoop(e, k, scope, cidx, LID, u32(w));
  const totals: Stmt[] = cores.map((_, i) => ({
    kind: "let",
    name: (total(i) as { name: string }).name,
    value: load("red", u32(i * w), type),
  }));
  return [withQuads(
    assemble(
      k,
      scope,
      [
        { kind: "exit", index: LIN, limit: outputs, unit: "workgroup" },
        { kind: "let", name: "gid", value: LIN },
        ...e.stmts,
        ...loop.stmts,
        ...tree(w, spec.combine, cores.map((_, i) => acc(i)), options.profile),
        { kind: "if", cond: bin("==", LID, u32(0)), body: [...totals, ...epi.stmts] },
      ],
      grid,
      w,
      { shared: [{ name: "red", scalar: type, size: w * cores.length }] },
    ),
    loop.lanes,
  )];
}

/**
 * A long reduction with few outputs in two passes: `splits` workgroups per output each reduce
 * an interleaved share of the terms into `partial`; then one thread per output combines its
 * partials in a fixed order and runs the fused epilogue.
 */
function splitLoopKernel(k: Kernel, scope: Scope, splits: number): KernelAst<BindingRef>[] {
  const { cores, specs, acc } = loopCores(k);
  const core = cores[0];
  const spec = specs[0];
  const outputs = sizeOf(k.shape);
  const type = scalarOf(core.dtype);
  const w = 256;
  const each = outputs * splits;
  const scratch = { name: "partial", scalar: type, bytes: each * cores.length * 4 };
  // Pass 1: partial sums.
  const e = new Emitter(scope, inlineRule);
  const cidx = flatIndex(core.shape, GID);
  e.dims(cidx);
  const part = name("part", "u32");
  const loop = termLoop(e, k, scope, cidx, bin("+", bin("*", part, u32(w)), LID), u32(w * splits));
  const grid1 = fold(each);
  const store: Stmt[] = cores.map((_, i) => ({
    kind: "store",
    buf: "partial",
    index: bin("+", LIN, u32(i * each)),
    value: load("red", u32(i * w), type),
  }));
  const pass1 = withQuads(
    assemble(
      k,
      scope,
      [
        { kind: "exit", index: LIN, limit: each, unit: "workgroup" },
        { kind: "let", name: "gid", value: bin("/", LIN, u32(splits)) },
        { kind: "let", name: "part", value: bin("%", LIN, u32(splits)) },
        ...e.stmts,
        ...loop.stmts,
        ...tree(w, spec.combine, cores.map((_, i) => acc(i)), scope.options.profile),
        { kind: "if", cond: bin("==", LID, u32(0)), body: store },
      ],
      grid1,
      w,
      {
        scratch: { ...scratch, write: true },
        roots: false,
        suffix: `#1/${splits}`,
        shared: [{ name: "red", scalar: type, size: w * cores.length }],
      },
    ),
    loop.lanes,
  );
  // Pass 2: combine in order, then the epilogue.
  const scope2 = new Scope(scope.own, scope.isMem, scope.alias, "kernel", scope.options);
  const e2 = new Emitter(scope2, inlineRule);
  const idx = flatIndex(k.shape, GID);
  cores.forEach((c, i) => e2.seed(c, cidx, acc(i)));
  writeRoots(e2, k, idx, GID);
  const grid2 = fold(Math.ceil(outputs / THREADS));
  const p = name("p", "u32");
  const combine: Stmt[] = cores.flatMap((_, i): Stmt[] => {
    const base = bin("+", u32(i * each), bin("*", GID, u32(splits)));
    const accName = i === 0 ? "acc" : `acc${i}`;
    return [
      { kind: "var", name: accName, type, init: load("partial", base, type) },
      {
        kind: "for",
        index: "p",
        from: u32(1),
        to: u32(splits),
        step: u32(1),
        body: [{
          kind: "assign",
          name: accName,
          value: specs[i].combine(acc(i), load("partial", bin("+", base, p), type)),
        }],
      },
    ];
  });
  const pass2 = assemble(
    k,
    scope2,
    [
      { kind: "let", name: "gid", value: bin("+", bin("*", LIN, u32(THREADS)), LID) },
      { kind: "exit", index: GID, limit: outputs, unit: "thread" },
      ...combine,
      ...e2.stmts,
    ],
    grid2,
    THREADS,
    { scratch: { ...scratch, write: false }, suffix: "#2" },
  );
  return [pass1, pass2];
}

/** The `kernels/` conv2d spec of a convolution node (any of the three). */
function convSpec(node: Node, profile: CodegenOptions["profile"]): Conv2dSpec {
  const p = node.params as ConvParams;
  const x = node.op === "conv2dBackInput" ? node.shape : node.inputs[0].shape;
  const w = node.op === "conv2dBackFilter" ? node.shape : node.inputs[1].shape;
  return {
    batch: x[0],
    inChannels: x[1],
    height: x[2],
    width: x[3],
    outChannels: w[0],
    kernelH: w[2],
    kernelW: w[3],
    stride: p.stride,
    padding: { top: p.padding[0], bottom: p.padding[1], left: p.padding[2], right: p.padding[3] },
    dilation: p.dilation,
    groups: p.groups,
    profile,
  };
}

/** What the GEMM table's plans are built with. */
type TiledOptions = CodegenOptions & { epilogue?: Epilogue; split?: Record<string, BindingSplit> };

/** How the GEMM family computes one gemm-kind primitive: its operand bindings and its plan. */
interface GemmLowering<P extends GemmPrim> {
  /** The operand nodes by binding name (the output is `out`). */
  operands: (core: Node<P>, k: Kernel) => Record<string, Node>;
  /** The kernels, with the fused epilogue and split bindings of `options`. */
  plan: (core: Node<P>, k: Kernel, options: TiledOptions) => KernelPlan;
}

/** The `kernels/` conv2d spec of a convolution with its tuned variant, epilogue and splits. */
function convOf(core: Node, direction: ConvDirection, options: TiledOptions): Conv2dSpec {
  const spec = { ...convSpec(core, options.profile), split: options.split };
  // Split bindings take the default path (the variants are measured without them).
  const v = options.split === undefined ? options.choose?.({ direction, spec }) : undefined;
  const variant = v != null && isConvVariant(v) ? v : undefined;
  return { ...spec, epilogue: options.epilogue, variant };
}

/**
 * The GEMM family's table, exhaustive over the gemm-kind primitives ({@link GemmPrim}): a new
 * one fails `deno check` until it has an entry.
 */
const GEMM: { [P in GemmPrim]: GemmLowering<P> } = {
  matmul: {
    operands: (_core, k) => ({ a: k.gemm!.a, b: k.gemm!.b }),
    plan: (_core, k, options) => {
      const g = k.gemm!;
      const spec = {
        batch: g.batch,
        m: g.m,
        n: g.n,
        k: g.k,
        transA: g.transA,
        transB: g.transB,
        broadcastA: g.broadcastA && g.batch > 1,
        broadcastB: g.broadcastB && g.batch > 1,
        profile: options.profile,
      };
      // Split bindings take the default path (the variants are measured without them).
      const v = options.split === undefined
        ? options.choose?.({ direction: "matmul", spec })
        : undefined;
      const tuned = v?.algo === "matmul" ? { tile: v.tile, splitK: v.splitK } : {};
      return matmulKernel({ ...spec, ...tuned, epilogue: options.epilogue, split: options.split });
    },
  },
  conv2d: {
    operands: (core) => ({ x: core.inputs[0], w: core.inputs[1] }),
    plan: (core, _k, options) => conv2dForwardKernel(convOf(core, "forward", options)),
  },
  conv2dBackInput: {
    operands: (core) => ({ dy: core.inputs[0], w: core.inputs[1] }),
    plan: (core, _k, options) => conv2dBackwardInputKernel(convOf(core, "backInput", options)),
  },
  conv2dBackFilter: {
    operands: (core) => ({ x: core.inputs[0], dy: core.inputs[1] }),
    plan: (core, _k, options) => conv2dBackwardFilterKernel(convOf(core, "backFilter", options)),
  },
};

/** The GEMM table's entry of `core`. */
function gemmRule(core: Node): GemmLowering<GemmPrim> {
  if (LOWERING[core.op].kind !== "gemm") {
    throw new TypeError(`Internal error: ${core.op} is not computed by the GEMM family`);
  }
  return GEMM[core.op as GemmPrim] as GemmLowering<GemmPrim>;
}

function gemmKernel(
  k: Kernel,
  isMem: (n: Node) => boolean,
  alias: ReadonlyMap<Node, Node>,
  options: CodegenOptions,
): Dispatch[] {
  const core = k.core!;
  const root = k.roots[0];
  let epilogue: Epilogue | undefined;
  const scope = new Scope(new Set([root, core]), isMem, alias, "epilogue", options);
  if (root !== core) {
    // The fused consumers as kernel-IR statements on `acc` at flat index `idx`, which the GEMM
    // family's builders run before each store.
    const e = new Emitter(scope, inlineRule);
    const idx = flatIndex(k.shape, name("idx", "u32"));
    e.seed(core, idx, name("acc", "f32"));
    e.push({ kind: "assign", name: "acc", value: e.value(root, idx) });
    epilogue = { stmts: e.stmts, extraInputs: scope.reads.length };
  }
  const epilogueInputs = new Map(scope.reads.map((n, i) => [`e${i}`, n]));
  const kname = kernelName(k);
  const rule = gemmRule(core);
  const operands = rule.operands(core as Node<GemmPrim>, k);
  for (const [b, n] of Object.entries(operands)) operands[b] = alias.get(n) ?? n;
  // Operands and output over the binding limit are bound in parts (the builders read them
  // through accessors).
  const split: Record<string, BindingSplit> = {};
  for (const [b, n] of [...Object.entries(operands), ["out", root] as const]) {
    const parts = partsOf(n, options);
    if (parts.count > 1) split[b] = { parts: parts.count, elements: parts.elements };
  }
  const plan = rule.plan(core as Node<GemmPrim>, k, {
    ...options,
    epilogue,
    split: Object.keys(split).length > 0 ? split : undefined,
  });
  const limit = options.maxBindingBytes ?? Infinity;
  const refs = (
    b: string,
    write: boolean,
    part?: { offset: number; size: number },
    uniform?: number,
  ): BindingRef[] => {
    const operand = operands[b];
    if (operand !== undefined) return partRefs(operand, false, options);
    if (b === "out") return partRefs(root, true, options);
    const node = epilogueInputs.get(b);
    if (node !== undefined) {
      // The scheduler fuses no epilogue reading a split tensor.
      if (partsOf(node, options).count > 1) {
        throw unsplittable(node, `epilogue input ${b}`, kname, limit);
      }
      return [{ kind: "node", node, write: false }];
    }
    const s = plan.scratch.find((x) => x.name === b);
    if (s !== undefined) {
      checkScratch(s.size, b, kname, options.maxBindingBytes);
      const range = part === undefined ? {} : { part };
      return [{ kind: "scratch", name: b, bytes: s.size, write, ...range, uniform }];
    }
    throw new TypeError(`Internal error: unknown binding ${b} of ${kname}`);
  };
  return plan.steps.map((step, i): Dispatch => {
    const dname = plan.steps.length > 1 ? `${kname}#${i}` : kname;
    // The step's IR with the runtime's binding references in place of binding names.
    const kernel: KernelAst<BindingRef> = {
      ...step.kernel,
      name: dname,
      bindings: step.kernel.bindings.map((b) => ({
        ...b,
        refs: refs(
          b.name,
          b.write,
          step.ranges?.[b.name],
          b.uniform === undefined ? undefined : b.uniform * b.lanes * 4,
        ),
      })),
    };
    return {
      name: dname,
      code: renderWgsl(kernel),
      workgroups: step.workgroups,
      bindings: kernel.bindings.flatMap((b) => b.refs),
      kernel,
    };
  });
}

/**
 * Generates the dispatches of one kernel.
 *
 * @example
 * ```ts
 * import { makeNode } from "../../ir/node.ts";
 * import { schedule } from "./schedule.ts";
 * import { generate } from "./codegen.ts";
 * const x = makeNode("var", [], { id: "x", shape: [4], dtype: "float32" });
 * const s = schedule([makeNode("exp", [x], {})], { maxBindings: 8 });
 * const [d] = generate(s.kernels[0], { isMem: (n) => n.op === "var" || s.realized.has(n), alias: s.alias }, { profile: "llvmpipe" });
 * d.code.includes("exp("); // true
 * ```
 */
export function generate(
  k: Kernel,
  graph: { isMem: (n: Node) => boolean; alias: ReadonlyMap<Node, Node> },
  options: CodegenOptions,
): Dispatch[] {
  if (k.kind === "zero") {
    return [{
      name: kernelName(k),
      code: "",
      workgroups: [0, 0, 0],
      bindings: [{ kind: "node", node: k.roots[0], write: true }],
      clear: true,
    }];
  }
  const own = new Set<Node>([...k.roots, ...k.cores ?? []]);
  if (k.core !== null) own.add(k.core);
  const scope = new Scope(own, graph.isMem, graph.alias, "kernel", options);
  const zeroCore = (): [Node, Expr] => [k.core!, zeroOf(k.core!.dtype)];
  if (sizeOf(k.shape) === 0) {
    return [toDispatch(mapKernel(k, scope, k.core === null ? undefined : zeroCore()))];
  }
  if (k.kind === "gemm") {
    // A product over an empty reduction is zero; the tiled builder needs k >= 1.
    if (k.gemm !== undefined && k.gemm.k === 0) {
      return [toDispatch(mapKernel(k, scope, zeroCore()))];
    }
    return gemmKernel(k, graph.isMem, graph.alias, options);
  }
  const kernels = k.kind === "map" ? [mapKernel(k, scope)] : loopKernel(k, scope, options);
  return kernels.map(toDispatch);
}
