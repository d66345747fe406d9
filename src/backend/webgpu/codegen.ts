/**
 * WGSL generation: one scheduled kernel to one or more dispatches.
 *
 * - `map` kernels run one thread per output element and compute the fused expression;
 * - `loop` kernels run a loop per output element, either serially in one thread (column-like
 *   reductions, many outputs) or split over a workgroup and combined in workgroup memory in a
 *   fixed tree order (row-like reductions, few outputs); the fused elementwise consumers run
 *   on the result;
 * - `gemm` kernels come from `kernels/matmul.ts`, with the fused consumers as its epilogue.
 *
 * A tensor larger than one storage binding (`CodegenOptions.maxBindingBytes`) is declared as
 * several bindings over consecutive ranges of its buffer and read or written through an
 * accessor function (`in0_at(i)`, `out0_put(i, v)`; see `split.ts`); tensors within the limit
 * are declared and indexed as before.
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
import { matmulKernel } from "../../../kernels/matmul.ts";
import type { BindingSplit, Epilogue, KernelPlan } from "../../../kernels/types.ts";
import { splitAccessor } from "../../../kernels/_wgsl.ts";
import {
  type BufferRead,
  Emitter,
  flatIndex,
  type Index,
  type KernelScope,
  u32,
  wgslType,
} from "./emitter.ts";
import { inlineRule, loopOf, LOWERING } from "./lowering.ts";
import type { Kernel } from "./schedule.ts";
import { type BindingParts, bindingParts } from "./split.ts";

/** What a binding of a dispatch refers to. */
export type BindingRef =
  | {
    kind: "node";
    node: Node;
    write: boolean;
    /** For a tensor split across bindings: the byte range of its buffer this binding covers. */
    part?: { offset: number; size: number };
  }
  | { kind: "scratch"; name: string; bytes: number }
  | { kind: "errors" };

/** One compute dispatch. */
export interface Dispatch {
  /** Short name, for profiles and debug output. */
  name: string;
  /** WGSL source (entry point `main`). */
  code: string;
  /** Workgroups in x, y, z. */
  workgroups: [number, number, number];
  /** What each binding (in order) refers to. */
  bindings: BindingRef[];
  /** Set for an output of zeros: the encoder clears its one binding, no shader runs. */
  clear?: boolean;
}

/** Device facts the code generator tunes for. */
export interface CodegenOptions {
  /** `llvmpipe` (software) or `discrete` tile choices. */
  profile: "llvmpipe" | "discrete";
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

/** Messages for out-of-range index reports, by code (1-based). */
const rangeReports: { op: string; axis: number; size: number }[] = [];
const rangeCodes = new Map<string, number>();

/** The code reported by kernels for an out-of-range index of `node`. */
function rangeCode(node: Node): number {
  const axis = (node.params as { axis: number }).axis;
  const size = node.op === "gather" ? node.inputs[0].shape[axis] : node.shape[axis];
  const key = `${node.op}|${axis}|${size}`;
  let code = rangeCodes.get(key);
  if (code === undefined) {
    rangeReports.push({ op: node.op, axis, size });
    code = rangeReports.length;
    rangeCodes.set(key, code);
  }
  return code;
}

/**
 * The error for a reported out-of-range index (the same message as the cpu interpreter's).
 *
 * @example
 * ```ts
 * import { rangeError } from "./codegen.ts";
 * rangeError(0, 5) instanceof RangeError; // true
 * ```
 */
export function rangeError(code: number, index: number): RangeError {
  const r = rangeReports[code - 1];
  if (r === undefined) {
    return new RangeError(`An index is out of range (code ${code}, index ${index})`);
  }
  return new RangeError(`${r.op}: index ${index} is out of range [0, ${r.size}) on axis ${r.axis}`);
}

/** Workgroup size of map kernels and serial loops. */
const THREADS = 256;

interface Grid {
  workgroups: [number, number, number];
  /** WGSL defining `lin` (the linear workgroup id). */
  lin: string;
}

function fold(total: number): Grid {
  const x = Math.min(Math.max(total, 1), 65535);
  const y = Math.ceil(Math.max(total, 1) / x);
  if (y > 65535) throw new RangeError(`Cannot dispatch ${total} workgroups: too many`);
  return {
    workgroups: [x, y, 1],
    lin: y > 1 ? `let lin = wid.x + wid.y * ${u32(x)};` : "let lin = wid.x;",
  };
}

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
  fresh(prefix: string): string {
    return `${prefix}${this.count++}`;
  }
  read(node: Node): BufferRead | null {
    if (this.own.has(node) || !this.isMem(node)) return null;
    const base = this.alias.get(node) ?? node;
    let name = this.names.get(base);
    if (name === undefined) {
      name = this.mode === "epilogue" ? `e${this.reads.length}` : `in${this.reads.length}`;
      this.names.set(base, name);
      this.reads.push(base);
    }
    const read: BufferRead = {
      name,
      bitcastI32: this.mode === "epilogue" && node.dtype === "int32",
    };
    if (partsOf(base, this.options).count > 1) read.split = true;
    return read;
  }
  reportRange(e: Emitter, node: Node, bad: string, value: string): void {
    if (this.mode === "epilogue") {
      throw new TypeError("Internal error: a kernel epilogue cannot report index errors");
    }
    this.usesErrors = true;
    const guard = e.guard();
    const cond = guard === "true" ? bad : `${bad} && ${guard}`;
    e.stmt(
      `if (${cond}) { atomicMax(&cg_err[0], ${u32(rangeCode(node))}); ` +
        `atomicStore(&cg_err[1], bitcast<u32>(${value})); }`,
    );
  }
}

function declare(
  name: string,
  node: Node | null,
  write: boolean,
  binding: number,
  vec4 = false,
): string {
  const scalar = node === null ? "atomic<u32>" : wgslType(node.dtype);
  const type = vec4 ? `vec4<${scalar}>` : scalar;
  return `@group(0) @binding(${binding}) var<storage, ${
    write ? "read_write" : "read"
  }> ${name}: array<${type}>;`;
}

/**
 * Declares the memory of `node` as binding `name` (or, split, as bindings `name_0`, `name_1`,
 * ... over consecutive ranges of its buffer, with the accessor `name_at(i)` to read or
 * `name_put(i, v)` to write element `i`), appending to `lines` and `bindings`.
 */
function bindNode(
  name: string,
  node: Node,
  write: boolean,
  options: CodegenOptions,
  out: { lines: string[]; bindings: BindingRef[]; vec4?: ReadonlySet<string> },
): void {
  const refs = partRefs(node, write, options);
  if (refs.length === 1) {
    out.lines.push(declare(name, node, write, out.bindings.length, out.vec4?.has(name)));
    out.bindings.push(refs[0]);
    return;
  }
  refs.forEach((ref, p) => {
    out.lines.push(declare(`${name}_${p}`, node, write, out.bindings.length));
    out.bindings.push(ref);
  });
  const parts = partsOf(node, options);
  const split = { parts: parts.count, elements: parts.elements };
  const type = wgslType(node.dtype);
  out.lines.push(splitAccessor({ name, type, access: write ? "read_write" : "read", split }));
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
function checkScratch(bytes: number, name: string, kernel: string, limit: number | undefined) {
  if (limit !== undefined && bytes > limit) {
    throw new RangeError(
      `The ${bytes}-byte scratch buffer ${name} of kernel ${kernel} exceeds the storage ` +
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

function indent(lines: readonly string[], pad: string): string {
  return lines.map((l) => pad + l).join("\n");
}

/** A readable description of the ops a kernel computes, for its header comment. */
function describe(k: Kernel, scope: Scope, computed: readonly Node[]): string {
  const ops = computed.filter((n) => LOWERING[n.op].kind !== "input").map((n) => n.op);
  const root = k.roots[0];
  return `// ${k.kind} ${root.dtype}[${k.shape.join(",")}]: ${ops.join(", ")}` +
    (scope.reads.length > 0 ? ` (reads ${scope.reads.length})` : "");
}

function kernelName(k: Kernel): string {
  const core = k.core !== null && !k.roots.includes(k.core) ? `${k.core.op}+` : "";
  return `${k.kind}:${core}${k.roots.map((r) => r.op).join("+")}[${k.shape.join(",")}]`;
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
  type: "f32" | "i32";
  write: boolean;
  bytes: number;
}

function finish(
  k: Kernel,
  scope: Scope,
  body: string,
  decls: string,
  grid: Grid,
  threads: number,
  options: {
    scratch?: ScratchDecl;
    roots?: boolean;
    suffix?: string;
    /** Bindings declared as arrays of vec4 (a vector map kernel's). */
    vec4?: ReadonlySet<string>;
  } = {},
): Dispatch {
  const bindings: BindingRef[] = [];
  const lines: string[] = [];
  const out = { lines, bindings, vec4: options.vec4 };
  scope.reads.forEach((n, i) => bindNode(`in${i}`, n, false, scope.options, out));
  const sc = options.scratch;
  if (sc !== undefined) {
    checkScratch(sc.bytes, sc.name, kernelName(k), scope.options.maxBindingBytes);
    lines.push(
      `@group(0) @binding(${bindings.length}) var<storage, ${
        sc.write ? "read_write" : "read"
      }> ${sc.name}: array<${sc.type}>;`,
    );
    bindings.push({ kind: "scratch", name: sc.name, bytes: sc.bytes });
  }
  if (options.roots ?? true) {
    k.roots.forEach((n, i) => bindNode(`out${i}`, n, true, scope.options, out));
  }
  if (scope.usesErrors) {
    lines.push(declare("cg_err", null, true, bindings.length));
    bindings.push({ kind: "errors" });
  }
  const code = `${describe(k, scope, inlineNodes(k, scope))}
${lines.join("\n")}
${decls}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${body}
}
`;
  return {
    name: kernelName(k) + (options.suffix ?? ""),
    code,
    workgroups: grid.workgroups,
    bindings,
  };
}

function writeRoots(e: Emitter, k: Kernel, idx: Index, at: string, options: CodegenOptions): void {
  k.roots.forEach((r, i) => {
    const v = e.value(r, idx);
    e.stmt(partsOf(r, options).count > 1 ? `out${i}_put(${at}, ${v});` : `out${i}[${at}] = ${v};`);
  });
}

/** Elements per thread of a map kernel on llvmpipe (see {@link vectorMapKernel}). */
const LANES = 4;

function mapKernel(k: Kernel, scope: Scope, seed?: [Node, string]): Dispatch {
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
  const idx = flatIndex(k.shape, "gid");
  if (seed !== undefined) e.seed(seed[0], idx, seed[1]);
  writeRoots(e, k, idx, "gid", scope.options);
  const body = `  ${grid.lin}
  let gid = lin * ${u32(THREADS)} + lid;
  if (gid >= ${u32(total)}) { return; }
${indent(e.lines, "  ")}`;
  return finish(k, scope, body, "", grid, THREADS);
}

/**
 * The bindings of `scope` that `lines` read only at the lane offsets `lanes[j]` (unsplit, and
 * accepted by `ok`), with `lines` rewritten to take lane `j` of `<name>_v` instead: the caller
 * declares those bindings `vec4` and loads `<name>_v` once (llvmpipe loads storage one lane at
 * a time, so a vec4 load costs about one scalar load).
 */
function laneReads(
  lines: readonly string[],
  scope: Scope,
  lanes: readonly string[],
  ok: (n: Node, uses: RegExp) => boolean,
): { lines: string[]; vec: Set<string> } {
  const vec = new Set<string>();
  let out = [...lines];
  scope.reads.forEach((n, i) => {
    const name = `in${i}`;
    const re = new RegExp(`\\b${name}\\[([^\\]]*)\\]`, "g");
    if (partsOf(n, scope.options).count > 1 || !ok(n, re)) return;
    const uses = [...out.join("\n").matchAll(re)].map((m) => m[1]);
    if (uses.length === 0 || !uses.every((x) => lanes.includes(x))) return;
    vec.add(name);
    out = out.map((l) => l.replace(re, (_, x: string) => `${name}_v[${lanes.indexOf(x)}]`));
  });
  return { lines: out, vec };
}

/**
 * A map kernel computing {@link LANES} consecutive elements per thread: inputs read only at the
 * thread's own elements are loaded as one `vec4` each, and the outputs are stored as one `vec4`.
 * Measured on llvmpipe (T1's batch-norm and PReLU kernels, 4M elements): 1.5-1.9x faster than
 * one element per thread, whose per-lane scalar loads dominate. Null when the kernel reports
 * index errors (its scalar form is used then).
 */
function vectorMapKernel(k: Kernel, scope0: Scope): Dispatch | null {
  const scope = new Scope(scope0.own, scope0.isMem, scope0.alias, "kernel", scope0.options);
  const total = sizeOf(k.shape);
  const grid = fold(Math.ceil(total / LANES / THREADS));
  const e = new Emitter(scope, inlineRule);
  const lanes = Array.from({ length: LANES }, (_, j) => `g${j}`);
  lanes.forEach((g, j) => e.stmt(`let ${g} = q * ${u32(LANES)} + ${u32(j)};`));
  const outs = k.roots.map((r, i) => {
    const type = wgslType(r.dtype);
    const vals = lanes.map((g) => e.value(r, flatIndex(k.shape, g)));
    return `out${i}[q] = vec4<${type}>(${vals.join(", ")});`;
  });
  if (scope.usesErrors) return null;
  // Bindings read only at the thread's own elements become vec4 loads.
  const { lines, vec } = laneReads(e.lines, scope, lanes, (n) => sizeOf(n.shape) === total);
  const loads = [...vec].map((name) => `let ${name}_v = ${name}[q];`);
  const body = `  ${grid.lin}
  let q = lin * ${u32(THREADS)} + lid;
  if (q >= ${u32(total / LANES)}) { return; }
${indent([...loads, ...lines, ...outs], "  ")}`;
  k.roots.forEach((_, i) => vec.add(`out${i}`));
  return finish(k, scope, body, "", grid, THREADS, { vec4: vec });
}

/**
 * The trees combining each accumulator's `red[i*w .. (i+1)*w)` into `red[i*w]` (fixed order, so
 * results are deterministic); `accs[i]` is the thread's accumulator `i`.
 */
function treeLines(
  w: number,
  combine: (a: string, b: string) => string,
  accs: readonly string[],
): string[] {
  const at = (i: number, j: string) => i === 0 ? `red[${j}]` : `red[${j} + ${u32(i * w)}]`;
  const tree: string[] = [...accs.map((a, i) => `${at(i, "lid")} = ${a};`), `workgroupBarrier();`];
  for (let s = w / 2; s >= 1; s /= 2) {
    const steps = accs.map((_, i) =>
      `${at(i, "lid")} = ${combine(at(i, "lid"), at(i, `lid + ${u32(s)}`))};`
    );
    tree.push(`if (lid < ${u32(s)}) { ${steps.join(" ")} }`);
    tree.push(`workgroupBarrier();`);
  }
  return tree;
}

/** Workgroups an adapter wants in flight before a reduction is split into chunks. */
const SPLIT_TARGET = { llvmpipe: 16, discrete: 1024 };

/** A loop kernel's cores (one per root for sibling sums, else the one core) and names. */
function loopCores(k: Kernel) {
  const cores = k.cores ?? [k.core!];
  return {
    cores,
    specs: cores.map(loopOf),
    acc: (i: number) => i === 0 ? "acc" : `acc${i}`,
    total: (i: number) => i === 0 ? "total" : `total${i}`,
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
 * read four consecutive elements, the loop runs over quads of terms and inputs read only at
 * those elements are loaded as one `vec4` per quad (their names are returned in `vec`):
 * llvmpipe loads storage buffers one lane at a time, so a vec4 load costs about one scalar load.
 */
function termLoop(
  e: Emitter,
  k: Kernel,
  scope: Scope,
  cidx: Index,
  start: string,
  step: string,
): { lines: string[]; vec: Set<string> } {
  const { cores, specs, acc } = loopCores(k);
  const type = wgslType(k.core!.dtype);
  const extent = specs[0].extent;
  const decls = specs.map((sp, i) => `var ${acc(i)}: ${type} = ${sp.init};`);
  const inner = e.child();
  const quads = scope.options.profile === "llvmpipe" && extent % LANES === 0 &&
    specs.every((sp) => sp.vector !== undefined) &&
    cores.some((c) => readsInPlace(c.inputs[0], scope));
  if (!quads) {
    inner.declare("r");
    // Every term first, then the updates: siblings share the loads they have in common.
    const terms = specs.map((sp) => sp.term(inner, cidx, "r"));
    terms.forEach((t, i) => inner.stmt(`${acc(i)} = ${specs[i].combine(acc(i), t)};`));
    return {
      lines: [
        ...decls,
        `for (var r = ${start}; r < ${u32(extent)}; r = r + ${step}) {`,
        ...inner.lines.map((l) => "  " + l),
        `}`,
      ],
      vec: new Set(),
    };
  }
  inner.declare("rq");
  const lanes = Array.from({ length: LANES }, (_, j) => `r${j}`);
  lanes.forEach((r, j) => {
    inner.stmt(`let ${r} = rq * ${u32(LANES)} + ${u32(j)};`);
    inner.declare(r);
  });
  // The flat offset each lane reads the reduced input at (shared with the terms' loads).
  const flats = lanes.map((r) => inner.flat(specs[0].vector!(inner, cidx, r)));
  const terms = specs.map((sp) => lanes.map((r) => sp.term(inner, cidx, r)));
  terms.forEach((ts, i) => {
    let a = acc(i);
    for (const t of ts) a = specs[i].combine(a, t);
    inner.stmt(`${acc(i)} = ${a};`);
  });
  const outer = e.lines.join("\n");
  const reads = laneReads(inner.lines, scope, flats, (_, uses) => outer.search(uses) < 0);
  // Each vec4 is loaded where lane 0's offset is known.
  const lines = reads.lines;
  const at = lines.findIndex((l) => l.startsWith(`let ${flats[0]} = `));
  if (at < 0) throw new Error(`Internal error: lane offset ${flats[0]} is not defined in the loop`);
  lines.splice(
    at + 1,
    0,
    ...[...reads.vec].map((name) => `let ${name}_v = ${name}[${flats[0]} / ${u32(LANES)}];`),
  );
  const vec = reads.vec;
  return {
    lines: [
      ...decls,
      `for (var rq = ${start}; rq < ${u32(extent / LANES)}; rq = rq + ${step}) {`,
      ...lines.map((l) => "  " + l),
      `}`,
    ],
    vec,
  };
}

function loopKernel(k: Kernel, scope: Scope, options: CodegenOptions): Dispatch[] {
  const { cores, specs, acc, total } = loopCores(k);
  const core = cores[0];
  const spec = specs[0];
  const outputs = sizeOf(k.shape);
  const type = wgslType(core.dtype);
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
  const idx = flatIndex(k.shape, "gid");
  const cidx = flatIndex(core.shape, "gid");
  e.dims(cidx);
  if (!parallel) {
    const grid = fold(Math.ceil(outputs / THREADS));
    // The epilogue first: its loads land before the loop, so the loop never vectorizes them.
    const epi = e.child();
    cores.forEach((c, i) => epi.seed(c, cidx, acc(i)));
    writeRoots(epi, k, idx, "gid", scope.options);
    const loop = termLoop(e, k, scope, cidx, "0u", "1u");
    const body = `  ${grid.lin}
  let gid = lin * ${u32(THREADS)} + lid;
  if (gid >= ${u32(outputs)}) { return; }
${indent([...e.lines, ...loop.lines, ...epi.lines], "  ")}`;
    return [finish(k, scope, body, "", grid, THREADS, { vec4: loop.vec })];
  }
  const w = spec.extent >= 4096 ? 256 : 64;
  const grid = fold(outputs);
  const tree = treeLines(w, spec.combine, cores.map((_, i) => acc(i)));
  const epi = e.child();
  cores.forEach((c, i) => epi.seed(c, cidx, total(i)));
  writeRoots(epi, k, idx, "gid", scope.options);
  const loop = termLoop(e, k, scope, cidx, "lid", u32(w));
  const guard = grid.workgroups[0] * grid.workgroups[1] > outputs
    ? `\n  if (lin >= ${u32(outputs)}) { return; }`
    : "";
  const totals = cores.map((_, i) => `let ${total(i)} = red[${i === 0 ? "0" : u32(i * w)}];`);
  const body = `  ${grid.lin}${guard}
  let gid = lin;
${indent([...e.lines, ...loop.lines, ...tree], "  ")}
  if (lid == 0u) {
${indent([...totals, ...epi.lines], "    ")}
  }`;
  const red = `var<workgroup> red: array<${type}, ${w * cores.length}>;`;
  return [finish(k, scope, body, red, grid, w, { vec4: loop.vec })];
}

/**
 * A long reduction with few outputs in two passes: `splits` workgroups per output each reduce
 * an interleaved share of the terms into `partial`; then one thread per output combines its
 * partials in a fixed order and runs the fused epilogue.
 */
function splitLoopKernel(k: Kernel, scope: Scope, splits: number): Dispatch[] {
  const { cores, specs, acc } = loopCores(k);
  const core = cores[0];
  const spec = specs[0];
  const outputs = sizeOf(k.shape);
  const type = wgslType(core.dtype);
  const w = 256;
  const each = outputs * splits;
  const scratch = { name: "partial", type, bytes: each * cores.length * 4 };
  // Pass 1: partial sums.
  const e = new Emitter(scope, inlineRule);
  const cidx = flatIndex(core.shape, "gid");
  e.dims(cidx);
  const loop = termLoop(e, k, scope, cidx, `part * ${u32(w)} + lid`, u32(w * splits));
  const grid1 = fold(each);
  const guard1 = grid1.workgroups[0] * grid1.workgroups[1] > each
    ? `\n  if (lin >= ${u32(each)}) { return; }`
    : "";
  const store = cores.map((_, i) =>
    i === 0 ? `partial[lin] = red[0];` : `partial[lin + ${u32(i * each)}] = red[${u32(i * w)}];`
  );
  const body1 = `  ${grid1.lin}${guard1}
  let gid = lin / ${u32(splits)};
  let part = lin % ${u32(splits)};
${
    indent(
      [...e.lines, ...loop.lines, ...treeLines(w, spec.combine, cores.map((_, i) => acc(i)))],
      "  ",
    )
  }
  if (lid == 0u) { ${store.join(" ")} }`;
  const pass1 = finish(
    k,
    scope,
    body1,
    `var<workgroup> red: array<${type}, ${w * cores.length}>;`,
    grid1,
    w,
    {
      scratch: { ...scratch, write: true },
      roots: false,
      suffix: `#1/${splits}`,
      vec4: loop.vec,
    },
  );
  // Pass 2: combine in order, then the epilogue.
  const scope2 = new Scope(scope.own, scope.isMem, scope.alias, "kernel", scope.options);
  const e2 = new Emitter(scope2, inlineRule);
  const idx = flatIndex(k.shape, "gid");
  cores.forEach((c, i) => {
    e2.declare(acc(i));
    e2.seed(c, cidx, acc(i));
  });
  writeRoots(e2, k, idx, "gid", scope.options);
  const grid2 = fold(Math.ceil(outputs / THREADS));
  const combineLines = cores.flatMap((_, i) => {
    const base = i === 0 ? `gid * ${u32(splits)}` : `${u32(i * each)} + gid * ${u32(splits)}`;
    return [
      `var ${acc(i)}: ${type} = partial[${base}];`,
      `for (var p = 1u; p < ${u32(splits)}; p = p + 1u) {`,
      `  ${acc(i)} = ${specs[i].combine(acc(i), `partial[${base} + p]`)};`,
      `}`,
    ];
  });
  const body2 = `  ${grid2.lin}
  let gid = lin * ${u32(THREADS)} + lid;
  if (gid >= ${u32(outputs)}) { return; }
${indent([...combineLines, ...e2.lines], "  ")}`;
  const pass2 = finish(k, scope2, body2, "", grid2, THREADS, {
    scratch: { ...scratch, write: false },
    suffix: "#2",
  });
  return [pass1, pass2];
}

/** The `kernels/` conv2d spec of a convolution node (any of the three). */
function convSpec(
  node: Node,
  epilogue: Epilogue | undefined,
  profile: CodegenOptions["profile"],
): Conv2dSpec {
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
    epilogue,
    profile,
  };
}

function tiledPlan(
  k: Kernel,
  options: CodegenOptions & { epilogue?: Epilogue; split?: Record<string, BindingSplit> },
): KernelPlan {
  const core = k.core!;
  const { epilogue, split } = options;
  const conv = () => ({ ...convSpec(core, epilogue, options.profile), split });
  switch (core.op) {
    case "conv2d":
      return conv2dForwardKernel(conv());
    case "conv2dBackInput":
      return conv2dBackwardInputKernel(conv());
    case "conv2dBackFilter":
      return conv2dBackwardFilterKernel(conv());
    default: {
      const g = k.gemm!;
      return matmulKernel({
        batch: g.batch,
        m: g.m,
        n: g.n,
        k: g.k,
        transA: g.transA,
        transB: g.transB,
        broadcastA: g.broadcastA && g.batch > 1,
        broadcastB: g.broadcastB && g.batch > 1,
        epilogue,
        profile: options.profile,
        split,
      });
    }
  }
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
    const e = new Emitter(scope, inlineRule);
    const idx = flatIndex(k.shape, "idx");
    e.seed(core, idx, "acc");
    const v = e.value(root, idx);
    e.stmt(`acc = ${v};`);
    epilogue = { code: e.lines.join("\n  "), extraInputs: scope.reads.length };
  }
  const name = kernelName(k);
  const operands: Record<string, Node> = core.op === "matmul"
    ? { a: k.gemm!.a, b: k.gemm!.b }
    : core.op === "conv2d"
    ? { x: core.inputs[0], w: core.inputs[1] }
    : core.op === "conv2dBackInput"
    ? { dy: core.inputs[0], w: core.inputs[1] }
    : { x: core.inputs[0], dy: core.inputs[1] };
  for (const [b, n] of Object.entries(operands)) operands[b] = alias.get(n) ?? n;
  // Operands and output over the binding limit are bound in parts (the generators read them
  // through accessors).
  const split: Record<string, BindingSplit> = {};
  for (const [b, n] of [...Object.entries(operands), ["out", root] as const]) {
    const parts = partsOf(n, options);
    if (parts.count > 1) split[b] = { parts: parts.count, elements: parts.elements };
  }
  const plan = tiledPlan(k, {
    ...options,
    epilogue,
    split: Object.keys(split).length > 0 ? split : undefined,
  });
  const limit = options.maxBindingBytes ?? Infinity;
  const refs = (b: string): BindingRef[] => {
    const operand = operands[b];
    if (operand !== undefined) return partRefs(operand, false, options);
    if (b === "out") return partRefs(root, true, options);
    const e = /^e([0-9]+)$/.exec(b);
    if (e !== null) {
      // The scheduler fuses no epilogue reading a split tensor.
      const node = scope.reads[Number(e[1])];
      if (partsOf(node, options).count > 1) {
        throw unsplittable(node, `epilogue input ${b}`, name, limit);
      }
      return [{ kind: "node", node, write: false }];
    }
    const s = plan.scratch.find((x) => x.name === b);
    if (s !== undefined) {
      checkScratch(s.size, b, name, options.maxBindingBytes);
      return [{ kind: "scratch", name: b, bytes: s.size }];
    }
    throw new TypeError(`Internal error: unknown binding ${b} of ${name}`);
  };
  return plan.steps.map((step, i) => ({
    name: plan.steps.length > 1 ? `${name}#${i}` : name,
    code: step.code,
    workgroups: step.workgroups,
    bindings: step.bindings.flatMap(refs),
  }));
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
  if (sizeOf(k.shape) === 0) {
    return [mapKernel(k, scope, k.core === null ? undefined : [k.core, "0.0"])];
  }
  if (k.kind === "gemm") {
    // A product over an empty reduction is zero; the tiled generator needs k >= 1.
    if (k.gemm !== undefined && k.gemm.k === 0) return [mapKernel(k, scope, [k.core!, "0.0"])];
    return gemmKernel(k, graph.isMem, graph.alias, options);
  }
  return k.kind === "map" ? [mapKernel(k, scope)] : loopKernel(k, scope, options);
}
