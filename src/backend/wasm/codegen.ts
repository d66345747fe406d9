/**
 * Code generation for the wasm backend: one scheduled kernel (`../webgpu/schedule.ts`, shared
 * with the WebGPU backend) to steps of a program.
 *
 * - `map` and `loop` kernels are built as kernel IR through the same lowering table and
 *   emitter as on the GPU (`src/kernel/lowering.ts`), optimized by the same passes, and
 *   rendered to a wasm function over a range of output indices (`src/kernel/wasm.ts`). A
 *   reduction keeps four accumulators (terms `4q .. 4q+3`), combined at the end: more
 *   instruction-level parallelism, and a shorter rounding chain than one serial sum. No
 *   workgroup memory or barriers: a range of outputs is one worker's work.
 * - `gemm` kernels (matmul and the three convolution directions) become calls of the packed
 *   SIMD GEMM (`src/kernel/wasm_gemm.ts`), with im2col columns built by IR map kernels and
 *   col2im by an IR map kernel; a fused elementwise epilogue runs in place over the output
 *   afterwards.
 *
 * @module
 */
import { sizeOf } from "../../ir/dtype.ts";
import type { Node } from "../../ir/node.ts";
import type { ConvParams } from "../../ir/primitives.ts";
import {
  type BufferRead,
  dimsIndex,
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
  call,
  type Expr,
  type Kernel as KernelAst,
  lit,
  load,
  name,
  select,
  type Stmt,
  u32,
} from "../../kernel/ir.ts";
import { inlineRule, loopOf, LOWERING } from "../../kernel/lowering.ts";
import { cse, dce, hoist } from "../../kernel/passes.ts";
import { rangeCode } from "../range_errors.ts";
import { type Kernel, kernelName } from "../webgpu/schedule.ts";

/** What a binding of a step refers to. */
export type Ref =
  | { kind: "node"; node: Node }
  | { kind: "scratch"; name: string; bytes: number }
  | { kind: "errors" };

/** A binding of a step: memory and a byte offset into it. */
export interface Arg {
  ref: Ref;
  /** Byte offset added to the memory's address. */
  offset: number;
}

/**
 * A strided matrix operand of a GEMM step (strides in elements). Its inner index (A's k, B's
 * and C's column) may run over images of `img` elements each, `imgStride` bytes apart.
 */
export interface MatrixArg extends Arg {
  rs: number;
  cs: number;
  img?: number;
  imgStride?: number;
}

/** One step of a program. */
export type Step =
  | {
    kind: "kernel";
    /** Index of the kernel function in the program's list. */
    fn: number;
    args: Arg[];
    /** The range `[0, total)` the function runs over (split across workers). */
    total: number;
    /** Name for debugging. */
    name: string;
  }
  | {
    kind: "gemm";
    a: MatrixArg;
    b: MatrixArg;
    c: MatrixArg;
    m: number;
    n: number;
    k: number;
    accumulate: boolean;
    name: string;
  };

/** A kernel function of a program. */
export interface KernelFunction {
  kernel: KernelAst<Ref>;
  /** Elements of each binding (loads are clamped into them). */
  elements: number[];
}

const GID = name("gid", "u32");
const START = name("start", "u32");
const END = name("end", "u32");

class Scope implements KernelScope {
  private count = 0;
  readonly reads: Node[] = [];
  private readonly names = new Map<Node, string>();
  usesErrors = false;
  constructor(
    readonly own: ReadonlySet<Node>,
    readonly isMem: (n: Node) => boolean,
    readonly alias: ReadonlyMap<Node, Node>,
  ) {}
  fresh(prefix: string): string {
    return `${prefix}${this.count++}`;
  }
  read(node: Node): BufferRead | null {
    if (this.own.has(node) || !this.isMem(node)) return null;
    const base = this.alias.get(node) ?? node;
    let n = this.names.get(base);
    if (n === undefined) {
      n = `in${this.reads.length}`;
      this.names.set(base, n);
      this.reads.push(base);
    }
    return { name: n };
  }
  reportCode(node: Node): number | null {
    this.usesErrors = true;
    return rangeCode(node);
  }
}

/** The program under construction: kernel functions, deduplicated by name and body. */
export class FunctionTable {
  readonly functions: KernelFunction[] = [];
  private readonly index = new Map<string, number>();
  /** Adds (or finds) a kernel; returns its index. */
  add(kernel: KernelAst<Ref>, elements: number[], key?: string): number {
    if (key !== undefined) {
      const have = this.index.get(key);
      if (have !== undefined) return have;
    }
    this.functions.push({ kernel, elements });
    const i = this.functions.length - 1;
    if (key !== undefined) this.index.set(key, i);
    return i;
  }
}

function nodeBinding(n: string, node: Node, write: boolean): Binding<Ref> {
  return {
    name: n,
    scalar: scalarOf(node.dtype),
    write,
    lanes: 1,
    refs: [{ kind: "node", node }],
  };
}

function refElements(r: Ref): number {
  if (r.kind === "node") return sizeOf(r.node.shape);
  if (r.kind === "scratch") return r.bytes / 4;
  return 4;
}

/** `for gid in [start, end) { body }`, optimized, as a kernel of `bindings`. */
function rangeKernel(
  kname: string,
  comment: string,
  bindings: Binding<Ref>[],
  body: Stmt[],
): KernelAst<Ref> {
  const kernel: KernelAst<Ref> = {
    name: kname,
    comment,
    bindings,
    shared: [],
    threads: 1,
    workgroups: [1, 1, 1],
    body: [{ kind: "for", index: "gid", from: START, to: END, step: u32(1), body }],
  };
  return dce(cse(hoist(kernel)));
}

/** The bindings of a kernel: reads, then outputs, then the error words when used. */
function bindingsOf(scope: Scope, roots: readonly Node[]): Binding<Ref>[] {
  const b = scope.reads.map((n, i) => nodeBinding(`in${i}`, n, false));
  roots.forEach((r, i) => b.push(nodeBinding(`out${i}`, r, true)));
  if (scope.usesErrors) {
    b.push({ name: "cg_err", scalar: "atomic", write: true, lanes: 1, refs: [{ kind: "errors" }] });
  }
  return b;
}

function kernelStep(table: FunctionTable, kernel: KernelAst<Ref>, total: number): Step {
  const elements = kernel.bindings.map((b) => refElements(b.refs[0]));
  const fn = table.add(kernel, elements);
  return {
    kind: "kernel",
    fn,
    args: kernel.bindings.map((b) => ({ ref: b.refs[0], offset: 0 })),
    total,
    name: kernel.name,
  };
}

/** A map kernel: each output element from its inputs (`seed` gives a core's value). */
function mapStep(
  k: Kernel,
  scope: Scope,
  table: FunctionTable,
  seed?: (e: Emitter, idx: Index) => void,
): Step {
  const e = new Emitter(scope, inlineRule);
  const idx = flatIndex(k.shape, GID);
  seed?.(e, idx);
  k.roots.forEach((r, i) => {
    e.push({ kind: "store", buf: `out${i}`, index: GID, value: e.value(r, idx) });
  });
  const kernel = rangeKernel(kernelName(k), "map", bindingsOf(scope, k.roots), e.stmts);
  return kernelStep(table, kernel, sizeOf(k.shape));
}

/** Unrolled accumulators per reduction. */
const UNROLL = 4;
/** Work items a reduction with few outputs is split into (partial results, then combined). */
const SPLIT_TARGET = 64;

/**
 * How a loop kernel walks its terms: over the reduced axes as nested loops (sums and maxima
 * whose cores reduce the same axes of same-shaped inputs: no division per term), or over the
 * flat term index of the lowering's {@link loopOf} (scatter-add).
 */
interface TermWalk {
  /** Extent of each loop, outermost first (one entry for the flat walk). */
  extents: number[];
  /** The term of core `i` at loop indices `r` (u32 names) for the output at `out`. */
  term: (e: Emitter, i: number, out: Index, r: Expr[]) => Expr;
}

function termWalk(cores: readonly Node[]): TermWalk {
  const specs = cores.map(loopOf);
  const first = cores[0];
  const nested = cores.every((c) =>
    (c.op === "sum" || c.op === "reduceMax") &&
    c.inputs[0].shape.join() === first.inputs[0].shape.join() &&
    (c.params as { axes: number[] }).axes.join() ===
      (first.params as { axes: number[] }).axes.join()
  );
  if (!nested) {
    return { extents: [specs[0].extent], term: (e, i, out, r) => specs[i].term(e, out, r[0]) };
  }
  const shape = first.inputs[0].shape;
  const axes = [...(first.params as { axes: number[] }).axes].sort((x, y) => x - y);
  return {
    extents: axes.map((a) => shape[a]),
    term: (e, i, out, r) => {
      const od = e.dims(out);
      const dims = shape.map((_, k) => {
        const j = axes.indexOf(k);
        return j >= 0 ? r[j] : od[k];
      });
      return e.value(cores[i].inputs[0], dimsIndex(shape, dims));
    },
  };
}

/**
 * The statements accumulating every core's terms for the output at `cidx` into
 * `acc{i}_{j}` (four per core when the innermost loop is long enough), the outermost loop
 * running over `[lo, hi)`; returns them and the combined totals.
 */
function accumulate(
  e: Emitter,
  cores: readonly Node[],
  walk: TermWalk,
  cidx: Index,
  lo: Expr,
  hi: Expr,
): { stmts: Stmt[]; totals: Expr[] } {
  const specs = cores.map(loopOf);
  const type = scalarOf(cores[0].dtype);
  const depth = walk.extents.length;
  const innerExtent = walk.extents[depth - 1];
  const unroll = innerExtent >= 2 * UNROLL || depth === 1 ? UNROLL : 1;
  const accName = (i: number, j: number) => `acc${i}_${j}`;
  const acc = (i: number, j: number) => name(accName(i, j), type);
  const stmts: Stmt[] = [];
  specs.forEach((sp, i) => {
    for (let j = 0; j < unroll; j++) {
      stmts.push({ kind: "var", name: accName(i, j), type, init: sp.init });
    }
  });
  const r = walk.extents.map((_, d) => name(`red${d}`, "u32"));
  // The innermost loop: `unroll` terms per step, then the remainder one by one.
  const innermost = (scope: Emitter, from: Expr, to: Expr): Stmt[] => {
    const out: Stmt[] = [];
    const d = depth - 1;
    const count = scope.let(bin("-", to, from), "n");
    const main = scope.let(bin("/", count, u32(unroll)), "n");
    out.push(...scope.stmts.splice(0));
    const body = scope.child();
    const rq = name("rq", "u32");
    let index: string | undefined;
    const terms = Array.from({ length: unroll }, (_, j) => {
      const at = body.let(bin("+", from, bin("+", bin("*", rq, u32(unroll)), u32(j))), "r", true);
      if (j === 0 && at.kind === "name") index = at.name;
      return specs.map((_, i) => walk.term(body, i, cidx, [...r.slice(0, d), at]));
    });
    terms.forEach((ts, j) =>
      ts.forEach((t, i) =>
        body.push({ kind: "assign", name: accName(i, j), value: specs[i].combine(acc(i, j), t) })
      )
    );
    // Group j is group 0 at index + j (the wasm renderer may run group 0 in SIMD lanes).
    const lanes = unroll === 4 && index !== undefined
      ? { index, accumulators: specs.map((_, i) => [0, 1, 2, 3].map((j) => accName(i, j))) }
      : undefined;
    out.push({
      kind: "for",
      index: "rq",
      from: u32(0),
      to: main,
      step: u32(1),
      body: body.stmts,
      ...(lanes === undefined ? {} : { lanes }),
    });
    if (unroll > 1) {
      const rest = scope.child();
      const ts = specs.map((_, i) =>
        walk.term(rest, i, cidx, [...r.slice(0, d), name("rr", "u32")])
      );
      ts.forEach((t, i) =>
        rest.push({ kind: "assign", name: accName(i, 0), value: specs[i].combine(acc(i, 0), t) })
      );
      out.push({
        kind: "for",
        index: "rr",
        from: bin("+", from, bin("*", main, u32(unroll))),
        to,
        step: u32(1),
        body: rest.stmts,
      });
    }
    return out;
  };
  const level = (scope: Emitter, d: number): Stmt[] => {
    const from = d === 0 ? lo : u32(0);
    const to = d === 0 ? hi : u32(walk.extents[d]);
    if (d === depth - 1) return innermost(scope, from, to);
    const body = scope.child();
    const inner = level(body, d + 1);
    return [{
      kind: "for",
      index: `red${d}`,
      from,
      to,
      step: u32(1),
      body: [...body.stmts, ...inner],
    }];
  };
  stmts.push(...level(e.child(), 0));
  const totals = specs.map((sp, i) => {
    if (unroll === 4) {
      return sp.combine(sp.combine(acc(i, 0), acc(i, 1)), sp.combine(acc(i, 2), acc(i, 3)));
    }
    let total: Expr = acc(i, 0);
    for (let j = 1; j < unroll; j++) total = sp.combine(total, acc(i, j));
    return total;
  });
  return { stmts, totals };
}

function loopSteps(k: Kernel, scope: Scope, table: FunctionTable): Step[] {
  const cores = k.cores ?? [k.core!];
  const type = scalarOf(cores[0].dtype);
  const walk = termWalk(cores);
  const outputs = sizeOf(k.shape);
  const extent = walk.extents.reduce((a, b) => a * b, 1);
  const outer = walk.extents[0];
  // Few outputs with long reductions: partial results over parts of the outermost loop.
  const parts = outputs < SPLIT_TARGET && extent >= 8192
    ? Math.min(Math.ceil(SPLIT_TARGET / outputs), outer, Math.floor(extent / 1024))
    : 1;
  const idx = flatIndex(k.shape, GID);
  if (parts <= 1) {
    const e = new Emitter(scope, inlineRule);
    const cidx = flatIndex(cores[0].shape, GID);
    e.dims(cidx);
    const { stmts, totals } = accumulate(e, cores, walk, cidx, u32(0), u32(outer));
    const epi = e.child();
    cores.forEach((c, i) => epi.seed(c, cidx, epi.let(totals[i], "t", true)));
    k.roots.forEach((r, i) => {
      epi.push({ kind: "store", buf: `out${i}`, index: GID, value: epi.value(r, idx) });
    });
    const body = [...e.stmts, ...stmts, ...epi.stmts];
    const kernel = rangeKernel(kernelName(k), "loop", bindingsOf(scope, k.roots), body);
    return [kernelStep(table, kernel, outputs)];
  }
  // Pass 1: work item gid = output * parts + part; partial[i * each + gid] for core i.
  const each = outputs * parts;
  const partial: Ref = { kind: "scratch", name: "partial", bytes: each * cores.length * 4 };
  const chunk = Math.ceil(outer / parts);
  const e = new Emitter(scope, inlineRule);
  const o = e.let(bin("/", GID, u32(parts)), "o", true);
  const part = e.let(bin("%", GID, u32(parts)), "q", true);
  const lo = e.let(bin("*", part, u32(chunk)), "lo", true);
  const hi = e.let(call("min", [bin("+", lo, u32(chunk)), u32(outer)]), "hi", true);
  const cidx = flatIndex(cores[0].shape, o);
  e.dims(cidx);
  const { stmts, totals } = accumulate(e, cores, walk, cidx, lo, hi);
  const stores: Stmt[] = totals.map((t, i) => ({
    kind: "store",
    buf: "partial",
    index: bin("+", GID, u32(i * each)),
    value: t,
  }));
  const b1 = bindingsOf(scope, []);
  b1.push({ name: "partial", scalar: type, write: true, lanes: 1, refs: [partial] });
  const pass1 = rangeKernel(`${kernelName(k)}#1/${parts}`, "loop, partial", b1, [
    ...e.stmts,
    ...stmts,
    ...stores,
  ]);
  // Pass 2: combine each output's partials in order, then the fused epilogue.
  const scope2 = new Scope(scope.own, scope.isMem, scope.alias);
  const e2 = new Emitter(scope2, inlineRule);
  const specs = cores.map(loopOf);
  const combine: Stmt[] = cores.flatMap((_, i): Stmt[] => {
    const base = bin("+", u32(i * each), bin("*", GID, u32(parts)));
    const a = `total${i}`;
    return [
      { kind: "var", name: a, type, init: load("partial", base, type) },
      {
        kind: "for",
        index: "p",
        from: u32(1),
        to: u32(parts),
        step: u32(1),
        body: [{
          kind: "assign",
          name: a,
          value: specs[i].combine(
            name(a, type),
            load("partial", bin("+", base, name("p", "u32")), type),
          ),
        }],
      },
    ];
  });
  const cidx2 = flatIndex(cores[0].shape, GID);
  cores.forEach((c, i) => e2.seed(c, cidx2, name(`total${i}`, type)));
  k.roots.forEach((r, i) => {
    e2.push({ kind: "store", buf: `out${i}`, index: GID, value: e2.value(r, idx) });
  });
  const b2: Binding<Ref>[] = [
    { name: "partial", scalar: type, write: false, lanes: 1, refs: [partial] },
    ...bindingsOf(scope2, k.roots),
  ];
  const pass2 = rangeKernel(`${kernelName(k)}#2`, "loop, combine", b2, [...combine, ...e2.stmts]);
  return [kernelStep(table, pass1, each), kernelStep(table, pass2, outputs)];
}

/** The in-place epilogue of a GEMM kernel: `out0[i] = root(core = out0[i])`. */
function epilogueStep(k: Kernel, scope: Scope, table: FunctionTable): Step {
  const core = k.core!;
  const step = mapStep(k, scope, table, (e, idx) => {
    e.seed(core, flatIndex(core.shape, idx.flat!), e.let(load("out0", GID, "f32"), "c", true));
  });
  return { ...step, name: `${step.name} epilogue` };
}

function nodeArg(node: Node, offset = 0): Arg {
  return { ref: { kind: "node", node }, offset };
}

function matmulSteps(k: Kernel, out: Node, alias: ReadonlyMap<Node, Node>): Step[] {
  const g = k.gemm!;
  const a = alias.get(g.a) ?? g.a, b = alias.get(g.b) ?? g.b;
  const steps: Step[] = [];
  for (let i = 0; i < g.batch; i++) {
    const aOff = g.broadcastA ? 0 : i * g.m * g.k * 4;
    const bOff = g.broadcastB ? 0 : i * g.k * g.n * 4;
    steps.push({
      kind: "gemm",
      a: { ...nodeArg(a, aOff), rs: g.transA ? 1 : g.k, cs: g.transA ? g.m : 1 },
      b: { ...nodeArg(b, bOff), rs: g.transB ? 1 : g.n, cs: g.transB ? g.k : 1 },
      c: { ...nodeArg(out, i * g.m * g.n * 4), rs: g.n, cs: 1 },
      m: g.m,
      n: g.n,
      k: g.k,
      accumulate: false,
      name: `${kernelName(k)}#${i}`,
    });
  }
  return steps;
}

interface ConvGeometry {
  n: number;
  c: number;
  h: number;
  w: number;
  o: number;
  kh: number;
  kw: number;
  oh: number;
  ow: number;
  groups: number;
  p: ConvParams;
}

function convGeometry(node: Node): ConvGeometry {
  const p = node.params as ConvParams;
  const x = node.op === "conv2dBackInput" ? node.shape : node.inputs[0].shape;
  const wt = node.op === "conv2dBackFilter" ? node.shape : node.inputs[1].shape;
  const y = node.op === "conv2d"
    ? node.shape
    : node.op === "conv2dBackInput"
    ? node.inputs[0].shape
    : node.inputs[1].shape;
  return {
    n: x[0],
    c: x[1],
    h: x[2],
    w: x[3],
    o: wt[0],
    kh: wt[2],
    kw: wt[3],
    oh: y[2],
    ow: y[3],
    groups: p.groups,
    p,
  };
}

/**
 * The im2col kernel of `nc` images and one group, a function over rows
 * `(ci*kh + ky)*kw + kx` of `cols`: row `r`, column `i*oh*ow + oy*ow + ox` holds
 * `x[i, ci, oy*sh - pt + ky*dh, ox*sw - pl + kx*dw]` (zero outside), `x` bound at the first
 * image's group. Loops per row, image and output row, so no division per element.
 */
function im2colKernel(
  g: ConvGeometry,
  nc: number,
  x: Node,
  cols: Ref,
  table: FunctionTable,
): number {
  const cg = g.c / g.groups;
  const ohw = g.oh * g.ow;
  const key = `im2col|${[nc, g.c, cg, g.h, g.w, g.kh, g.kw, g.oh, g.ow].join(",")}|${
    JSON.stringify(g.p)
  }`;
  const u = (n: string) => name(n, "u32");
  const inner: Stmt[] = [
    {
      kind: "let",
      name: "ix",
      value: bin(
        "-",
        bin("+", bin("*", u("ox"), u32(g.p.stride[1])), bin("*", u("kx"), u32(g.p.dilation[1]))),
        u32(g.p.padding[2]),
      ),
    },
    {
      kind: "store",
      buf: "out0",
      index: bin("+", u("orow"), u("ox")),
      value: select(
        bin("&&", name("oky", "bool"), bin("<", u("ix"), u32(g.w))),
        load("in0", bin("+", u("xrow"), u("ix")), "f32"),
        lit(0, "f32"),
      ),
    },
  ];
  const rows: Stmt[] = [
    {
      kind: "let",
      name: "iy",
      value: bin(
        "-",
        bin("+", bin("*", u("oy"), u32(g.p.stride[0])), bin("*", u("ky"), u32(g.p.dilation[0]))),
        u32(g.p.padding[0]),
      ),
    },
    { kind: "let", name: "oky", value: bin("<", u("iy"), u32(g.h)) },
    {
      kind: "let",
      name: "xrow",
      value: bin(
        "+",
        bin("*", u("img"), u32(g.c * g.h * g.w)),
        bin("*", bin("+", bin("*", u("ci"), u32(g.h)), u("iy")), u32(g.w)),
      ),
    },
    {
      kind: "let",
      name: "orow",
      value: bin(
        "+",
        bin("*", GID, u32(nc * ohw)),
        bin("+", bin("*", u("img"), u32(ohw)), bin("*", u("oy"), u32(g.ow))),
      ),
    },
    { kind: "for", index: "ox", from: u32(0), to: u32(g.ow), step: u32(1), body: inner },
  ];
  const stmts: Stmt[] = [
    { kind: "let", name: "ci", value: bin("/", GID, u32(g.kh * g.kw)) },
    { kind: "let", name: "ky", value: bin("%", bin("/", GID, u32(g.kw)), u32(g.kh)) },
    { kind: "let", name: "kx", value: bin("%", GID, u32(g.kw)) },
    {
      kind: "for",
      index: "img",
      from: u32(0),
      to: u32(nc),
      step: u32(1),
      body: [{ kind: "for", index: "oy", from: u32(0), to: u32(g.oh), step: u32(1), body: rows }],
    },
  ];
  const bindings: Binding<Ref>[] = [
    { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [{ kind: "node", node: x }] },
    { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [cols] },
  ];
  const kernel = rangeKernel(
    `im2col[${nc}x${cg}x${g.kh}x${g.kw},${ohw}]`,
    "im2col",
    bindings,
    stmts,
  );
  // x is bound at the first image's group: loads stay within the chunk's images.
  return table.add(kernel, [(nc - 1) * g.c * g.h * g.w + cg * g.h * g.w, refElements(cols)], key);
}

/**
 * The weights of the input gradient of a stride-1 convolution as a forward convolution's:
 * `wt[g][ci][(o*kh + ky)*kw + kx] = w[g*og + o, ci, kh-1-ky, kw-1-kx]`.
 */
function flipKernel(g: ConvGeometry, w: Node, out: Ref, table: FunctionTable): number {
  const cg = g.c / g.groups, og = g.o / g.groups, taps = g.kh * g.kw;
  const u = (n: string) => name(n, "u32");
  const stmts: Stmt[] = [
    { kind: "let", name: "gi", value: bin("/", GID, u32(cg * og * taps)) },
    { kind: "let", name: "ci", value: bin("%", bin("/", GID, u32(og * taps)), u32(cg)) },
    { kind: "let", name: "o", value: bin("%", bin("/", GID, u32(taps)), u32(og)) },
    { kind: "let", name: "t", value: bin("%", GID, u32(taps)) },
    {
      kind: "store",
      buf: "out0",
      index: GID,
      value: load(
        "in0",
        bin(
          "+",
          bin(
            "*",
            bin("+", bin("*", bin("+", bin("*", u("gi"), u32(og)), u("o")), u32(cg)), u("ci")),
            u32(taps),
          ),
          bin("-", u32(taps - 1), u("t")),
        ),
        "f32",
      ),
    },
  ];
  const bindings: Binding<Ref>[] = [
    { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [{ kind: "node", node: w }] },
    { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [out] },
  ];
  const kernel = rangeKernel(`flip[${g.o}x${cg}x${taps}]`, "flipped weights", bindings, stmts);
  return table.add(kernel, [sizeOf(w.shape), refElements(out)]);
}

/**
 * The col2im kernel of `nc` images and one group: `dx[i, ci, y, x] = Σ cols[(ci*kh + ky)*kw +
 * kx, i*oh*ow + oy*ow + ox]` over the taps with `y + pt - ky*dh = oy*sh` (and the same for x)
 * in range; a function over `(i, ci, y, x)`, `dx` bound at the first image's group.
 */
function col2imKernel(
  g: ConvGeometry,
  nc: number,
  dx: Node,
  cols: Ref,
  table: FunctionTable,
): number {
  const cg = g.c / g.groups;
  const ohw = g.oh * g.ow;
  const key = `col2im|${[nc, g.c, cg, g.h, g.w, g.kh, g.kw, g.oh, g.ow].join(",")}|${
    JSON.stringify(g.p)
  }`;
  const u = (n: string) => name(n, "u32");
  const stmts: Stmt[] = [
    { kind: "let", name: "img", value: bin("/", GID, u32(cg * g.h * g.w)) },
    { kind: "let", name: "ci", value: bin("%", bin("/", GID, u32(g.h * g.w)), u32(cg)) },
    { kind: "let", name: "yy", value: bin("%", bin("/", GID, u32(g.w)), u32(g.h)) },
    { kind: "let", name: "xx", value: bin("%", GID, u32(g.w)) },
    { kind: "var", name: "acc", type: "f32", init: lit(0, "f32") },
  ];
  const [sh, sw] = g.p.stride, [dh, dw] = g.p.dilation;
  for (let ky = 0; ky < g.kh; ky++) {
    for (let kx = 0; kx < g.kw; kx++) {
      const t = `${ky}_${kx}`;
      // ty = y + pt - ky*dh (u32, wraps below zero: then out of range)
      const ty = bin("-", bin("+", u("yy"), u32(g.p.padding[0])), u32(ky * dh));
      const tx = bin("-", bin("+", u("xx"), u32(g.p.padding[2])), u32(kx * dw));
      stmts.push(
        { kind: "let", name: `ty${t}`, value: ty },
        { kind: "let", name: `tx${t}`, value: tx },
        { kind: "let", name: `oy${t}`, value: bin("/", u(`ty${t}`), u32(sh)) },
        { kind: "let", name: `ox${t}`, value: bin("/", u(`tx${t}`), u32(sw)) },
        {
          kind: "let",
          name: `ok${t}`,
          value: bin(
            "&&",
            bin(
              "&&",
              bin("==", bin("*", u(`oy${t}`), u32(sh)), u(`ty${t}`)),
              bin("==", bin("*", u(`ox${t}`), u32(sw)), u(`tx${t}`)),
            ),
            bin("&&", bin("<", u(`oy${t}`), u32(g.oh)), bin("<", u(`ox${t}`), u32(g.ow))),
          ),
        },
        {
          kind: "let",
          name: `cv${t}`,
          value: load(
            "in0",
            bin(
              "+",
              bin(
                "*",
                bin("+", bin("*", u("ci"), u32(g.kh * g.kw)), u32(ky * g.kw + kx)),
                u32(nc * ohw),
              ),
              bin(
                "+",
                bin("*", u("img"), u32(ohw)),
                bin("+", bin("*", u(`oy${t}`), u32(g.ow)), u(`ox${t}`)),
              ),
            ),
            "f32",
          ),
        },
        {
          kind: "assign",
          name: "acc",
          value: bin(
            "+",
            name("acc", "f32"),
            select(name(`ok${t}`, "bool"), name(`cv${t}`, "f32"), lit(0, "f32")),
          ),
        },
      );
    }
  }
  // dx[i, ci, y, x] of the group: the image stride is all channels.
  const at = bin(
    "+",
    bin("*", u("img"), u32(g.c * g.h * g.w)),
    bin("%", GID, u32(cg * g.h * g.w)),
  );
  stmts.push({ kind: "store", buf: "out0", index: at, value: name("acc", "f32") });
  const bindings: Binding<Ref>[] = [
    { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [cols] },
    { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [{ kind: "node", node: dx }] },
  ];
  const kernel = rangeKernel(`col2im[${nc}x${cg},${g.h}x${g.w}]`, "col2im", bindings, stmts);
  return table.add(kernel, [refElements(cols), sizeOf(dx.shape)], key);
}

/** Whether a convolution's input gradient is a forward convolution (stride and dilation 1). */
function transposable(g: ConvGeometry): boolean {
  const [pt, pb, pl, pr] = g.p.padding;
  return g.p.stride.every((s) => s === 1) && g.p.dilation.every((d) => d === 1) &&
    pt <= g.kh - 1 && pb <= g.kh - 1 && pl <= g.kw - 1 && pr <= g.kw - 1;
}

/** The forward convolution computing a stride-1 convolution's input gradient from dy. */
function transposed(g: ConvGeometry): ConvGeometry {
  const [pt, pb, pl, pr] = g.p.padding;
  return {
    ...g,
    c: g.o,
    o: g.c,
    h: g.oh,
    w: g.ow,
    oh: g.h,
    ow: g.w,
    p: { ...g.p, padding: [g.kh - 1 - pt, g.kh - 1 - pb, g.kw - 1 - pl, g.kw - 1 - pr] },
  };
}

/** Most elements of an im2col buffer: images are processed in chunks that fit. */
const COLS_ELEMENTS = 1 << 23;

function convSteps(
  k: Kernel,
  out: Node,
  alias: ReadonlyMap<Node, Node>,
  table: FunctionTable,
): Step[] {
  const core = k.core!;
  const g = convGeometry(core);
  const mem = (n: Node) => alias.get(n) ?? n;
  const cg = g.c / g.groups, og = g.o / g.groups;
  const ckk = cg * g.kh * g.kw, ohw = g.oh * g.ow, hw = g.h * g.w;
  const trans = core.op === "conv2dBackInput" && transposable(g);
  // The transposed path's columns: og*kh*kw rows of h*w input pixels per image.
  const ckk2 = og * g.kh * g.kw;
  const perImage = trans ? ckk2 * hw : ckk * ohw;
  const chunk = Math.max(1, Math.min(g.n, Math.floor(COLS_ELEMENTS / Math.max(1, perImage))));
  const cols: Ref = { kind: "scratch", name: "cols", bytes: Math.max(4, chunk * perImage * 4) };
  const flipped: Ref = { kind: "scratch", name: "flipped", bytes: Math.max(4, g.o * ckk * 4) };
  const steps: Step[] = [];
  const kname = kernelName(k);
  if (trans) {
    const w = mem(core.inputs[1]);
    steps.push({
      kind: "kernel",
      fn: flipKernel(g, w, flipped, table),
      args: [nodeArg(w), { ref: flipped, offset: 0 }],
      total: g.o * ckk,
      name: `${kname} flip`,
    });
  }
  for (let n0 = 0; n0 < g.n; n0 += chunk) {
    const nc = Math.min(chunk, g.n - n0);
    for (let gi = 0; gi < g.groups; gi++) {
      const xOff = (n0 * g.c + gi * cg) * hw * 4;
      const yOff = (n0 * g.o + gi * og) * ohw * 4;
      const wOff = gi * og * ckk * 4;
      // C (or an operand) as a matrix over the chunk's images: row = channel, columns
      // (image, pixel), images `channels * pixels` apart.
      const images = (node: Node, offset: number, pixels: number, channels: number) => ({
        ...nodeArg(node, offset),
        rs: pixels,
        cs: 1,
        img: pixels,
        imgStride: channels * pixels * 4,
      });
      const cols2d = (rs: number, cs: number): MatrixArg => ({ ref: cols, offset: 0, rs, cs });
      if (core.op === "conv2d") {
        const x = mem(core.inputs[0]), w = mem(core.inputs[1]);
        steps.push({
          kind: "kernel",
          fn: im2colKernel(g, nc, x, cols, table),
          args: [nodeArg(x, xOff), { ref: cols, offset: 0 }],
          total: ckk,
          name: `${kname} im2col`,
        });
        steps.push({
          kind: "gemm",
          a: { ...nodeArg(w, wOff), rs: ckk, cs: 1 },
          b: cols2d(nc * ohw, 1),
          c: images(out, yOff, ohw, g.o),
          m: og,
          n: nc * ohw,
          k: ckk,
          accumulate: false,
          name: kname,
        });
      } else if (trans) {
        // dx = conv(dy, flipped w), a forward convolution of og channels per group.
        const dy = mem(core.inputs[0]);
        steps.push({
          kind: "kernel",
          fn: im2colKernel(transposed(g), nc, dy, cols, table),
          args: [nodeArg(dy, yOff), { ref: cols, offset: 0 }],
          total: ckk2,
          name: `${kname} im2col`,
        });
        steps.push({
          kind: "gemm",
          a: { ref: flipped, offset: wOff, rs: ckk2, cs: 1 },
          b: cols2d(nc * hw, 1),
          c: images(out, xOff, hw, g.c),
          m: cg,
          n: nc * hw,
          k: ckk2,
          accumulate: false,
          name: kname,
        });
      } else if (core.op === "conv2dBackInput") {
        const dy = mem(core.inputs[0]), w = mem(core.inputs[1]);
        // cols = W_g^T (ckk x og) @ dy (og x chunk pixels), then col2im into dx.
        steps.push({
          kind: "gemm",
          a: { ...nodeArg(w, wOff), rs: 1, cs: ckk },
          b: images(dy, yOff, ohw, g.o),
          c: cols2d(nc * ohw, 1),
          m: ckk,
          n: nc * ohw,
          k: og,
          accumulate: false,
          name: kname,
        });
        steps.push({
          kind: "kernel",
          fn: col2imKernel(g, nc, out, cols, table),
          args: [{ ref: cols, offset: 0 }, nodeArg(out, xOff)],
          total: nc * cg * hw,
          name: `${kname} col2im`,
        });
      } else {
        const x = mem(core.inputs[0]), dy = mem(core.inputs[1]);
        steps.push({
          kind: "kernel",
          fn: im2colKernel(g, nc, x, cols, table),
          args: [nodeArg(x, xOff), { ref: cols, offset: 0 }],
          total: ckk,
          name: `${kname} im2col`,
        });
        // dW_g (og x ckk) (+)= dy (og x chunk pixels) @ cols^T (chunk pixels x ckk).
        const a = images(dy, yOff, ohw, g.o);
        steps.push({
          kind: "gemm",
          a: { ...a, rs: ohw, cs: 1 },
          b: cols2d(1, nc * ohw),
          c: { ...nodeArg(out, wOff), rs: ckk, cs: 1 },
          m: og,
          n: ckk,
          k: nc * ohw,
          accumulate: n0 > 0,
          name: kname,
        });
      }
    }
  }
  return steps;
}

/**
 * The steps of one scheduled kernel (kernel functions are added to `table`).
 *
 * @example
 * ```ts
 * import { makeNode, type Node } from "../../ir/node.ts";
 * import { schedule } from "../webgpu/schedule.ts";
 * import { FunctionTable, generateSteps } from "./codegen.ts";
 * const x = makeNode("var", [], { id: "x", shape: [4], dtype: "float32" });
 * const s = schedule([makeNode("exp", [x], {})], { maxBindings: 64 });
 * const table = new FunctionTable();
 * const isMem = (n: Node) => n.op === "var" || s.realized.has(n);
 * generateSteps(s.kernels[0], { isMem, alias: s.alias }, table)[0].kind; // "kernel"
 * ```
 */
export function generateSteps(
  k: Kernel,
  graph: { isMem: (n: Node) => boolean; alias: ReadonlyMap<Node, Node> },
  table: FunctionTable,
): Step[] {
  const own = new Set<Node>([...k.roots, ...k.cores ?? []]);
  if (k.core !== null) own.add(k.core);
  const scope = () => new Scope(own, graph.isMem, graph.alias);
  const zero = (e: Emitter, idx: Index) =>
    e.seed(k.core!, flatIndex(k.core!.shape, idx.flat!), zeroOf(k.core!.dtype));
  if (k.kind === "zero") return [mapStep(k, scope(), table)];
  if (sizeOf(k.shape) === 0) return [];
  if (k.kind === "map") return [mapStep(k, scope(), table)];
  if (k.kind === "loop") return loopSteps(k, scope(), table);
  const core = k.core!;
  if (core.dtype !== "float32") {
    throw new TypeError(
      `${core.op} of ${core.dtype} tensors is not supported on the wasm backend: cast to float32`,
    );
  }
  if (sizeOf(core.inputs[0].shape) === 0 || sizeOf(core.inputs[1].shape) === 0) {
    // An empty reduction: zeros (then the epilogue).
    return [mapStep(k, scope(), table, zero)];
  }
  const out = k.roots[0];
  const steps = core.op === "matmul"
    ? matmulSteps(k, out, graph.alias)
    : convSteps(k, out, graph.alias, table);
  if (out !== core) steps.push(epilogueStep(k, scope(), table));
  return steps;
}

/** Whether `node` is read by kernels of kind `input` (memory bound at run time). */
export function isInput(node: Node): boolean {
  return LOWERING[node.op].kind === "input";
}
