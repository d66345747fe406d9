/**
 * The WGSL renderer of the kernel IR: the last step, printing a {@link Kernel} as WGSL source.
 * The bind-group layout comes from the kernel's typed bindings ({@link layoutOf}), never from
 * the printed text.
 *
 * @module
 */
import type { Binding, BinOp, Expr, Kernel, Stmt } from "./ir.ts";

function literal(e: Extract<Expr, { kind: "lit" }>): string {
  switch (e.type) {
    case "bool":
      return e.value ? "true" : "false";
    case "u32":
      return e.hex === true ? `0x${e.value.toString(16).padStart(8, "0")}u` : `${e.value}u`;
    case "i32":
      return e.value === -2147483648 ? "i32(-2147483648)" : `${e.value}i`;
    case "f32": {
      if (Object.is(e.value, -0)) return "-0.0";
      const s = String(e.value);
      return /[.e]/.test(s) ? s : `${s}.0`;
    }
  }
}

function isAtomic(e: Expr): boolean {
  return e.kind === "name" || e.kind === "call" || e.kind === "load" || e.kind === "lane" ||
    e.kind === "vec" || e.kind === "wid" || (e.kind === "lit" && e.value >= 0);
}

/** Binding strength of WGSL's binary operators (bitwise ones take unary operands only). */
function level(op: BinOp): number {
  switch (op) {
    case "||":
      return 1;
    case "&&":
      return 2;
    case "+":
    case "-":
      return 4;
    case "*":
    case "/":
    case "%":
      return 5;
    case "&":
    case "|":
      return 0;
    default:
      return 3;
  }
}

/** Whether binary `child` needs parentheses as the `side` operand of `parent` (WGSL's grammar). */
function needsParens(child: BinOp, parent: BinOp, side: "left" | "right"): boolean {
  const c = level(child), p = level(parent);
  if (c === 0 || p === 0) return true;
  if (p <= 2) return !(c >= 3 || (side === "left" && child === parent));
  if (p === 3) return c < 4;
  if (p === 4) return side === "left" ? c < 4 : c < 5;
  return side === "right" || c < 5;
}

/** Renders expressions of one kernel (split bindings are read through their accessors). */
class Printer {
  constructor(private readonly split: ReadonlySet<string>) {}
  operand(e: Expr): string {
    return isAtomic(e) ? this.expr(e) : `(${this.expr(e)})`;
  }
  side(e: Expr, parent: BinOp, side: "left" | "right"): string {
    if (e.kind !== "binary") return this.operand(e);
    return needsParens(e.op, parent, side) ? `(${this.expr(e)})` : this.expr(e);
  }
  expr(e: Expr): string {
    switch (e.kind) {
      case "lit":
        return literal(e);
      case "name":
        return e.name;
      case "wid":
        return `wid.${e.axis}`;
      case "unary":
        return e.x.kind === "name" ? `${e.op}${e.x.name}` : `${e.op}(${this.expr(e.x)})`;
      case "binary":
        return `${this.side(e.a, e.op, "left")} ${e.op} ${this.side(e.b, e.op, "right")}`;
      case "call":
        return `${e.fn}(${e.args.map((a) => this.expr(a)).join(", ")})`;
      case "load":
        return this.split.has(e.buf)
          ? `${e.buf}_at(${this.expr(e.index)})`
          : `${e.buf}[${this.expr(e.index)}]`;
      case "lane":
        return `${this.operand(e.x)}[${e.lane}]`;
      case "vec":
        return `${e.type}(${e.parts.map((a) => this.expr(a)).join(", ")})`;
    }
  }
  stmts(body: readonly Stmt[], pad: string, err: string): string[] {
    return body.flatMap((s) => this.stmt(s, pad, err));
  }
  block(head: string, body: readonly Stmt[], pad: string, err: string): string[] {
    const inner = this.stmts(body, "", err);
    if (
      inner.length === 1 &&
      !body.some((s) => s.kind === "for" || s.kind === "if" || s.kind === "block")
    ) {
      return [`${pad}${head} { ${inner[0]} }`];
    }
    return [`${pad}${head} {`, ...this.stmts(body, pad + "  ", err), `${pad}}`];
  }
  stmt(s: Stmt, pad: string, err: string): string[] {
    switch (s.kind) {
      case "let":
        return [`${pad}let ${s.name} = ${this.expr(s.value)};`];
      case "var":
        return [`${pad}var ${s.name}: ${s.type} = ${this.expr(s.init)};`];
      case "assign":
        return [`${pad}${s.name} = ${this.expr(s.value)};`];
      case "store":
        if (s.lane !== undefined) {
          if (this.split.has(s.buf)) {
            throw new TypeError(
              `Cannot store a lane of split binding ${s.buf}: expected a whole one`,
            );
          }
          return [
            `${pad}${s.buf}[${this.expr(s.index)}][${this.expr(s.lane)}] = ${this.expr(s.value)};`,
          ];
        }
        return [
          this.split.has(s.buf)
            ? `${pad}${s.buf}_put(${this.expr(s.index)}, ${this.expr(s.value)});`
            : `${pad}${s.buf}[${this.expr(s.index)}] = ${this.expr(s.value)};`,
        ];
      case "for":
        return this.block(
          `for (var ${s.index} = ${this.expr(s.from)}; ${s.index} < ${
            this.operand(s.to)
          }; ${s.index} = ${s.index} + ${this.operand(s.step)})`,
          s.body,
          pad,
          err,
        );
      case "if":
        return this.block(`if (${this.expr(s.cond)})`, s.body, pad, err);
      case "block":
        return [`${pad}{`, ...this.stmts(s.body, pad + "  ", err), `${pad}}`];
      case "return":
        return [`${pad}return;`];
      case "exit":
        return [`${pad}if (${this.operand(s.index)} >= ${s.limit}u) { return; }`];
      case "barrier":
        return [`${pad}workgroupBarrier();`];
      case "report":
        return [
          `${pad}if (${this.expr(s.cond)}) { atomicMax(&${err}[0], ${s.code}u); ` +
          `atomicStore(&${err}[1], bitcast<u32>(${this.expr(s.value)})); }`,
        ];
    }
  }
}

function elementType(b: Binding): string {
  const scalar = b.scalar === "atomic" ? "atomic<u32>" : b.scalar;
  return b.lanes === 4 ? `vec4<${scalar}>` : scalar;
}

/** The accessor of a split binding: `name_at(i)` reads element `i`, `name_put(i, v)` writes it. */
function accessor(b: Binding): string[] {
  const { parts, elements } = b.split!;
  const type = elementType(b);
  const per = elements / b.lanes;
  const last = parts - 1;
  const pick = (act: (p: number) => string) => [
    `  let p = i / ${per}u;`,
    `  let j = i - p * ${per}u;`,
    ...Array.from({ length: last }, (_, p) => `  if (p == ${p}u) { ${act(p)} }`),
  ];
  return b.write
    ? [
      `fn ${b.name}_put(i: u32, v: ${type}) {`,
      ...pick((p) => `${b.name}_${p}[j] = v; return;`),
      `  ${b.name}_${last}[j] = v;`,
      `}`,
    ]
    : [
      `fn ${b.name}_at(i: u32) -> ${type} {`,
      ...pick((p) => `return ${b.name}_${p}[j];`),
      `  return ${b.name}_${last}[j];`,
      `}`,
    ];
}

/**
 * The declarations of `bindings` in `@group(0)`, numbered from 0 in order (a split binding takes
 * one number per part), then the accessors of split bindings: the one binding declaration of
 * every WGSL kernel.
 *
 * @example
 * ```ts
 * import { bindingDeclarations } from "./wgsl.ts";
 * bindingDeclarations([{ name: "out", scalar: "f32", write: true, lanes: 1, refs: [] }]);
 * // ["@group(0) @binding(0) var<storage, read_write> out: array<f32>;"]
 * ```
 */
export function bindingDeclarations(bindings: readonly Binding[]): string[] {
  const lines: string[] = [];
  const fns: string[] = [];
  for (const b of bindings) {
    const access = b.write ? "read_write" : "read";
    const names = b.split === undefined
      ? [b.name]
      : Array.from({ length: b.split.parts }, (_, p) => `${b.name}_${p}`);
    for (const n of names) {
      const space = b.uniform === undefined ? `storage, ${access}` : "uniform";
      const size = b.uniform === undefined ? "" : `, ${b.uniform}`;
      lines.push(
        `@group(0) @binding(${lines.length}) var<${space}> ${n}: array<${elementType(b)}${size}>;`,
      );
    }
    if (b.split !== undefined) fns.push(...accessor(b));
  }
  return [...lines, ...fns];
}

/**
 * One entry per binding slot of `kernel` (a split binding takes one per part), for the
 * bind-group layout: storage read or written, or uniform with its size.
 *
 * @example
 * ```ts
 * import { layoutOf } from "./wgsl.ts";
 * layoutOf({
 *   name: "k", comment: "", shared: [], threads: 1, workgroups: [1, 1, 1], body: [],
 *   bindings: [{ name: "a", scalar: "f32", write: false, lanes: 1, refs: [0] }],
 * }); // ["read"]
 * ```
 */
export function layoutOf(kernel: Kernel): Slot[] {
  return kernel.bindings.flatMap((b): Slot[] =>
    b.uniform !== undefined
      ? [{ uniform: b.uniform * b.lanes * 4 }]
      : Array.from({ length: b.split?.parts ?? 1 }, () => b.write ? "write" : "read")
  );
}

/**
 * A binding slot of a bind-group layout: a storage buffer the kernel reads or writes, or a
 * uniform buffer of `uniform` bytes (its declared size).
 */
export type Slot = "read" | "write" | { readonly uniform: number };

/**
 * The slots' part of a pipeline cache key: `r`, `w` or `u` and the uniform's bytes, per slot.
 *
 * @example
 * ```ts
 * import { slotKey } from "./wgsl.ts";
 * slotKey(["read", { uniform: 256 }, "write"]); // "r u256 w"
 * ```
 */
export function slotKey(slots: readonly Slot[]): string {
  return slots.map((s) => typeof s === "string" ? s[0] : `u${s.uniform}`).join(" ");
}

/**
 * WGSL source of `kernel` (entry point `main`).
 *
 * @example
 * ```ts
 * import { bin, load, name, u32 } from "./ir.ts";
 * import { renderWgsl } from "./wgsl.ts";
 * const code = renderWgsl({
 *   name: "copy", comment: "copy 4 elements", shared: [], threads: 4, workgroups: [1, 1, 1],
 *   bindings: [
 *     { name: "in0", scalar: "f32", write: false, lanes: 1, refs: [] },
 *     { name: "out0", scalar: "f32", write: true, lanes: 1, refs: [] },
 *   ],
 *   body: [{ kind: "store", buf: "out0", index: name("lid", "u32"),
 *     value: bin("*", load("in0", name("lid", "u32"), "f32"), { kind: "lit", type: "f32", value: 2 }) }],
 * });
 * code.includes("out0[lid] = in0[lid] * 2.0;"); // true
 * ```
 */
export function renderWgsl(kernel: Kernel): string {
  const split = new Set(kernel.bindings.filter((b) => b.split !== undefined).map((b) => b.name));
  const printer = new Printer(split);
  const lines: string[] = [`// ${kernel.comment}`, ...bindingDeclarations(kernel.bindings)];
  for (const s of kernel.shared) {
    const type = s.lanes === 4 ? `vec4<${s.scalar}>` : s.scalar;
    lines.push(`var<workgroup> ${s.name}: array<${type}, ${s.size}>;`);
  }
  const err = kernel.bindings.find((b) => b.scalar === "atomic")?.name ?? "cg_err";
  if (kernel.epilogue !== undefined) {
    lines.push(
      `fn epilogue(acc_in: f32, idx: u32) -> f32 {`,
      `  var acc = acc_in;`,
      ...printer.stmts(kernel.epilogue, "  ", err),
      `  return acc;`,
      `}`,
    );
  }
  lines.push(
    `@compute @workgroup_size(${kernel.threads})`,
    `fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {`,
    ...printer.stmts(kernel.body, "  ", err),
    `}`,
    ``,
  );
  return lines.join("\n");
}
