/**
 * Row reduction kernel generator: sum or max over the last axis of a `[rows, cols]` view, with
 * an optional elementwise prologue (applied to each element before reducing, e.g.
 * `exp(x - p0[row])` for a softmax denominator) and a fused epilogue (applied to each row's
 * result, e.g. `log(acc) + e0[idx]` for logsumexp).
 *
 * Each row segment of `T` threads (a power of two up to the workgroup size, at most the row
 * length) strides over the row, then combines its partials by a tree in workgroup memory. Long
 * rows get one workgroup each; short rows share a workgroup (`size / T` rows each). Very long rows
 * with few rows are cut into chunks reduced by separate workgroups into a scratch buffer, then a
 * second pass of the same template reduces the chunks.
 *
 * @module
 */
import type { Epilogue, KernelPlan, KernelSource } from "./types.ts";
import type { KernelProfile } from "./_gemm.ts";
import {
  align16,
  type BindingDecl,
  checkInts,
  declareBindings,
  epilogueBindings,
  epilogueFunction,
  foldWorkgroups,
} from "./_wgsl.ts";

/** Reduction operator. */
export type ReduceOp = "sum" | "max";

/** An elementwise prologue applied before reducing. */
export interface ReducePrologue {
  /**
   * WGSL expression of type f32 in `x: f32` (the element), `row: u32` and `col: u32`, that may
   * read `extraInputs` extra bindings `p0, p1, ...` (`array<f32>`), e.g. `exp(x - p0[row])`.
   */
  code: string;
  /** Number of extra inputs `p0..` the expression reads. */
  extraInputs: number;
}

/** Shape and options of a row reduction. */
export interface ReduceRowsSpec {
  /** Number of rows (the output length). */
  rows: number;
  /** Row length (the reduced axis). */
  cols: number;
  /** `"sum"` or `"max"`. */
  op: ReduceOp;
  /** Elementwise prologue. */
  prologue?: ReducePrologue;
  /** Fused epilogue on each row's result; `idx` is the row. */
  epilogue?: Epilogue;
  /** Override of the number of chunks per row (1: single pass). */
  splits?: number;
  /**
   * Workgroup size profile (default `"llvmpipe"`): at most 64 threads per workgroup on
   * llvmpipe (each barrier is a coroutine switch per 8 lanes, and compiles slower), 256 on
   * discrete GPUs.
   */
  profile?: KernelProfile;
}

function pow2Floor(x: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(1, x)));
}

function pow2Ceil(x: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(1, x)));
}

function combine(op: ReduceOp, a: string, b: string): string {
  return op === "sum" ? `(${a} + ${b})` : `max(${a}, ${b})`;
}

interface PassSpec {
  rows: number;
  cols: number;
  op: ReduceOp;
  splits: number;
  maxThreads: number;
  input: string;
  output: string;
  prologue?: ReducePrologue;
  epilogue?: Epilogue;
}

function reducePass(p: PassSpec): KernelSource {
  const { rows, cols, op, splits } = p;
  // vec4 loads when every chunk starts on a multiple of 4 (chunk bounds are computed in vec4s).
  const vec = cols % 4 === 0;
  const units = vec ? cols / 4 : cols;
  const shortest = Math.floor(units / splits);
  const t = Math.min(p.maxThreads, pow2Floor(shortest));
  const r = Math.min(p.maxThreads / t, pow2Ceil(rows));
  const threads = t * r;
  const rowBlocks = Math.ceil(rows / r);
  const grid = foldWorkgroups(rowBlocks * splits);
  const pro = p.prologue;
  const proInputs: BindingDecl[] = Array.from(
    { length: pro?.extraInputs ?? 0 },
    (_, i) => ({ name: `p${i}`, type: "f32", access: "read" }),
  );
  const ep = epilogueBindings(p.epilogue);
  const decls = declareBindings([
    { name: p.input, type: vec ? "vec4<f32>" : "f32", access: "read" },
    ...proInputs,
    ...ep,
    {
      name: p.output,
      type: "f32",
      access: p.output === "out" || !p.epilogue ? "read_write" : "read_write",
    },
  ]);
  const f = (x: string, col: string) => (pro ? `pro(${x}, row, ${col})` : x);
  // One element (or vec4 of elements) at unit index c of the row, prologue applied.
  const load = (c: string, v: string) => {
    if (!vec) return f(`${p.input}[rowBase + ${c}]`, c);
    const lanes = [0, 1, 2, 3].map((e) => f(`${v}.${"xyzw"[e]}`, `${c} * 4u + ${e}u`));
    return pro ? `vec4<f32>(${lanes.join(", ")})` : v;
  };
  const first = vec
    ? `let v0 = ${p.input}[rowBase + c0];\n  var acc = ${load("c0", "v0")};`
    : `var acc = ${load("c0", "")};`;
  const step = vec
    ? `let v = ${p.input}[rowBase + c];\n    acc = ${combine(op, "acc", load("c", "v"))};`
    : `acc = ${combine(op, "acc", load("c", ""))};`;
  const tree: string[] = [];
  for (let s = t / 2; s >= 1; s /= 2) {
    tree.push(
      `if (t < ${s}u) { red[lid] = ${
        combine(op, "red[lid]", `red[lid + ${s}u]`)
      }; }\n  workgroupBarrier();`,
    );
  }
  const final = vec
    ? combine(op, combine(op, "acc.x", "acc.y"), combine(op, "acc.z", "acc.w"))
    : "acc";
  const code =
    `// ${op} over rows of [${rows}, ${cols}]${splits > 1 ? `, ${splits} chunks per row` : ""}; ` +
    `${t} threads per row, ${r} rows per workgroup
${decls}
var<workgroup> red: array<f32, ${threads}>;
${pro ? `fn pro(x: f32, row: u32, col: u32) -> f32 {\n  return ${pro.code};\n}` : ""}
${epilogueFunction(p.epilogue)}
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${grid.prelude}
  let sp = lin % ${splits}u;
  let rowRaw = (lin / ${splits}u) * ${r}u + lid / ${t}u;
  let row = min(rowRaw, ${rows - 1}u);
  let t = lid % ${t}u;
  let rowBase = row * ${units}u;
  // Chunk sp holds q + 1 units when sp < rem, else q (no u32 overflow for any size).
  let begin = sp * ${Math.floor(units / splits)}u + min(sp, ${units % splits}u);
  let end = begin + ${Math.floor(units / splits)}u + select(0u, 1u, sp < ${units % splits}u);
  // Every thread has at least one element (t < ${t} <= chunk length), so max needs no identity.
  let c0 = begin + t;
  ${first}
  for (var c = c0 + ${t}u; c < end; c = c + ${t}u) {
    ${step}
  }
  red[lid] = ${final};
  workgroupBarrier();
  ${tree.join("\n  ")}
  if (t == 0u && rowRaw < ${rows}u) {
    ${
      splits > 1
        ? `${p.output}[row * ${splits}u + sp] = red[lid];`
        : `${p.output}[row] = epilogue(red[lid], row);`
    }
  }
}
`;
  return {
    code,
    workgroups: grid.workgroups,
    bindings: [p.input, ...proInputs.map((b) => b.name), ...ep.map((e) => e.name), p.output],
  };
}

/**
 * Generates a reduction of each row of a row-major `[rows, cols]` float32 view.
 *
 * Bindings: `x` (`array<vec4<f32>>` when `cols % 4 == 0`, else `array<f32>`), the prologue's
 * inputs `p0..`, the epilogue's inputs `e0..`, `out` (`[rows]`). When rows are very long and
 * few, the plan has two steps and a scratch buffer `partial` (`rows * splits` floats).
 *
 * @example
 * ```ts
 * import { reduceRowsKernel } from "./reduce.ts";
 * const plan = reduceRowsKernel({
 *   rows: 32, cols: 1000, op: "sum",
 *   prologue: { code: "exp(x - p0[row])", extraInputs: 1 },
 * });
 * console.assert(plan.steps[0].bindings.join() === "x,p0,out");
 * ```
 */
export function reduceRowsKernel(spec: ReduceRowsSpec): KernelPlan {
  const { rows, cols, op } = spec;
  checkInts("reduceRowsKernel", { rows, cols });
  if (op !== "sum" && op !== "max") {
    throw new TypeError(`Unknown reduce op "${op}": expected "sum" or "max"`);
  }
  if (rows * cols >= 2 ** 31) {
    throw new RangeError(
      `Invalid reduceRowsKernel shape with ${rows * cols} elements: expected < 2^31`,
    );
  }
  const units = cols % 4 === 0 ? cols / 4 : cols;
  const auto = rows < 8 && units >= 8192 ? Math.min(64, Math.ceil(units / 4096)) : 1;
  const splits = Math.min(spec.splits ?? auto, units);
  checkInts("reduceRowsKernel", { splits });
  const profile = spec.profile ?? "llvmpipe";
  if (profile !== "llvmpipe" && profile !== "discrete") {
    throw new TypeError(`Unknown profile "${profile}": expected "llvmpipe" or "discrete"`);
  }
  const maxThreads = profile === "discrete" ? 256 : 64;
  if (splits === 1) {
    return {
      steps: [
        reducePass({
          rows,
          cols,
          op,
          splits: 1,
          maxThreads,
          input: "x",
          output: "out",
          prologue: spec.prologue,
          epilogue: spec.epilogue,
        }),
      ],
      scratch: [],
    };
  }
  return {
    steps: [
      reducePass({
        rows,
        cols,
        op,
        splits,
        maxThreads,
        input: "x",
        output: "partial",
        prologue: spec.prologue,
      }),
      reducePass({
        rows,
        cols: splits,
        op,
        splits: 1,
        maxThreads,
        input: "partial",
        output: "out",
        epilogue: spec.epilogue,
      }),
    ],
    scratch: [{ name: "partial", size: align16(rows * splits * 4) }],
  };
}
