/**
 * The `cpu` backend: runs a graph with the interpreter, node by node.
 *
 * @module
 */
import type { TypedArray } from "../../ir/dtype.ts";
import { type Node, topoSort } from "../../ir/node.ts";
import { printGraph } from "../../ir/printer.ts";
import { type Backend, donatedError, HostStorage, type Program, type Storage } from "../storage.ts";
import { CPU_RULES } from "./interpreter.ts";

class CpuProgram implements Program {
  readonly order: Node[];
  /** For each node of `order`, the index in `order` after which its value is no longer needed. */
  readonly lastUse: Map<Node, number>;
  constructor(readonly inputs: readonly Node<"var">[], readonly outputs: readonly Node[]) {
    this.order = topoSort(outputs);
    this.lastUse = new Map();
    this.order.forEach((n, i) => n.inputs.forEach((x) => this.lastUse.set(x, i)));
  }
  run(inputs: readonly Storage[], donated?: ReadonlySet<number>): Storage[] {
    inputs.forEach((s) => {
      if (s.donated) throw donatedError();
    });
    const values = new Map<Node, TypedArray>();
    this.inputs.forEach((v, i) => values.set(v, inputs[i].host!));
    const keep = new Set(this.outputs);
    this.order.forEach((node, i) => {
      if (!values.has(node)) {
        const args = node.inputs.map((x) => values.get(x)!);
        const rule = CPU_RULES[node.op] as (a: TypedArray[], n: Node) => TypedArray;
        values.set(node, rule(args, node));
      }
      for (const x of node.inputs) {
        if (this.lastUse.get(x) === i && !keep.has(x)) values.delete(x);
      }
    });
    const outs = this.outputs.map((o) => new HostStorage(values.get(o)!));
    // The interpreter writes new arrays, so donation only marks the inputs as given up.
    const kept = new Set(outs.map((s) => s.host));
    donated?.forEach((i) => {
      if (!kept.has(inputs[i].host!)) inputs[i].donated = true;
    });
    return outs;
  }
  describe(): string {
    return printGraph(this.outputs);
  }
}

/** The CPU interpreter backend. */
export class CpuBackend implements Backend {
  readonly name = "cpu";
  compileKey(): string {
    return "cpu";
  }
  compile(inputs: readonly Node<"var">[], outputs: readonly Node[]): Program {
    return new CpuProgram(inputs, outputs);
  }
  fromHost(data: TypedArray): Storage {
    return new HostStorage(data);
  }
  adopt(s: Storage): Storage {
    if (s.host === null) {
      throw new TypeError(
        `A tensor held on the ${s.backend} backend has no host copy; read it with await t.data() first`,
      );
    }
    return s;
  }
  synchronize(): Promise<void> {
    return Promise.resolve();
  }
}
