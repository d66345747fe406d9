// The memory planner shared by the compiling backends (src/backend/plan.ts), without a device:
// random programs (steps writing values and reading earlier ones, outputs, scratch, donated
// inputs) are planned, and every plan is checked against its invariants: values sharing a slot
// are never live at once, a slot holds each of its values, outputs get slots of their own size
// class, a donated input's buffer is reused only after its last read, and the reported live
// peak equals a count by brute force. `memoryOrder` is checked to keep every dependency.
import assert from "node:assert/strict";
import fc from "./_fast_check.ts";
import { check } from "./_property.ts";
import { makeNode, type Node } from "../src/ir/node.ts";
import { memoryOrder, MemoryPlanner, type PlanStep } from "../src/backend/plan.ts";
import { sizeClass } from "../src/backend/webgpu/buffers.ts";

const bytesOf = (n: Node) => sizeClass(Math.max(4, n.shape.reduce((a, b) => a * b, 1) * 4));

interface Program {
  inputs: number[];
  /** Per step: elements of the value it writes, and what it reads (earlier values, inputs). */
  steps: { size: number; reads: number[]; scratch: number; kernel: boolean }[];
  outputs: number[];
  donated: boolean[];
}

const programArb: fc.Arbitrary<Program> = fc.record({
  inputs: fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 4 }),
  steps: fc.array(
    fc.record({
      size: fc.integer({ min: 1, max: 3000 }),
      reads: fc.array(fc.nat(), { maxLength: 3 }),
      scratch: fc.integer({ min: 0, max: 4000 }),
      kernel: fc.boolean(),
    }),
    { minLength: 1, maxLength: 30 },
  ),
  outputs: fc.array(fc.nat(), { minLength: 1, maxLength: 4 }),
  donated: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
});

let programs = 0;

/** Builds the planner of a random program: value i is written by step i. */
function build(p: Program) {
  const id = programs++;
  const vars = p.inputs.map((n, i) =>
    makeNode("var", [], { id: `p${id}in${i}`, shape: [n], dtype: "float32" }) as Node<"var">
  );
  const values: Node[] = [];
  const steps: PlanStep[] = [];
  let kernel = 0;
  p.steps.forEach((s, i) => {
    const pool = [...vars, ...values];
    const reads = [...new Set(s.reads.map((r) => pool[r % pool.length]))];
    const v = makeNode("var", [], { id: `p${id}v${i}`, shape: [s.size], dtype: "float32" });
    values.push(v);
    if (s.kernel || i === 0) kernel++;
    steps.push({
      kernel,
      refs: [
        ...reads.map((node) => ({ kind: "node" as const, node, write: false })),
        ...(s.scratch > 0 ? [{ kind: "scratch" as const, name: "t", bytes: s.scratch }] : []),
        { kind: "node", node: v, write: true },
      ],
    });
  });
  const all = [...vars, ...values];
  const outputs = [...new Set(p.outputs.map((o) => all[o % all.length]))];
  const planner = new MemoryPlanner<number>(vars, outputs, new Map(), new Map(), steps, {
    bytes: (c) => c,
    key: String,
  });
  const donated = new Set(p.inputs.map((_, i) => i).filter((i) => p.donated[i]));
  return { vars, values, steps, outputs, planner, donated };
}

Deno.test("MemoryPlanner: random plans keep their invariants", async () => {
  await check("memory plans", programArb, async (p) => {
    const { vars, steps, outputs, planner, donated } = build(p);
    const reusable = planner.reusable(donated, () => false);
    const plan = planner.plan(reusable);
    const end = steps.length;
    // Live interval of each slot's occupants, from the sources alone.
    const occupants = new Map<
      string,
      { slot: number; first: number; last: number; bytes: number; out: boolean }
    >();
    const outSet = new Set(outputs);
    steps.forEach((s, d) => {
      s.refs.forEach((r, k) => {
        const src = plan.sources[d][k];
        if (r.kind === "errors") return;
        const key = r.kind === "scratch" ? `scratch@${s.kernel}` : `node${r.node.id}`;
        if (
          r.kind === "node" && vars.includes(r.node as Node<"var">) &&
          !reusable.includes(vars.indexOf(r.node as Node<"var">))
        ) {
          assert.deepEqual(src, { kind: "input", index: vars.indexOf(r.node as Node<"var">) });
          return;
        }
        assert.equal(src.kind, "slot", `step ${d} ref ${k}`);
        const slot = (src as { slot: number }).slot;
        const have = occupants.get(key);
        if (have === undefined) {
          const donatedInput = r.kind === "node" && vars.includes(r.node as Node<"var">);
          occupants.set(key, {
            slot,
            first: donatedInput ? -1 : d,
            last: d,
            bytes: r.kind === "scratch" ? sizeClass(r.bytes) : bytesOf(r.node),
            out: r.kind === "node" && outSet.has(r.node),
          });
        } else {
          assert.equal(have.slot, slot, `${key} moved from slot ${have.slot} to ${slot}`);
          have.last = d;
        }
      });
    });
    // Scratch lives to the end of its kernel's steps; outputs to the end.
    for (const [key, o] of occupants) {
      if (o.out) o.last = end;
      if (key.startsWith("scratch@")) {
        const k = Number(key.slice(8));
        o.last = steps.findLastIndex((s) => s.kernel === k);
      }
      assert.ok(plan.slots[o.slot].bytes >= o.bytes, `${key} does not fit its slot`);
      if (o.out) assert.equal(plan.slots[o.slot].bytes, o.bytes, `output ${key} in a larger slot`);
    }
    const list = [...occupants.entries()];
    for (let i = 0; i < list.length; i++) {
      for (let j = i + 1; j < list.length; j++) {
        const [ka, a] = list[i], [kb, b] = list[j];
        if (a.slot !== b.slot) continue;
        assert.ok(
          a.last < b.first || b.last < a.first,
          `${ka} [${a.first}, ${a.last}] and ${kb} [${b.first}, ${b.last}] share slot ${a.slot}`,
        );
      }
    }
    // The live peak, counted step by step (donated inputs before their last read excluded).
    let peak = 0;
    for (let d = 0; d <= end; d++) {
      let live = 0;
      for (const o of occupants.values()) {
        if (o.first >= 0 && o.first <= d && d <= o.last) live += o.bytes;
      }
      peak = Math.max(peak, live);
    }
    assert.equal(plan.livePeak, peak);
    const m = planner.memory(donated);
    assert.equal(m.peakBytes, m.donatedBytes + m.keptBytes + m.constBytes + m.intermediateBytes);
    assert.ok(m.liveIntermediateBytes <= m.intermediateBytes + m.donatedBytes);
    await Promise.resolve();
  }, 300);
});

Deno.test("MemoryPlanner: a value reuses a larger free slot, an output only its own size", () => {
  const x = makeNode("var", [], { id: "bx", shape: [4096], dtype: "float32" }) as Node<"var">;
  const big = makeNode("exp", [x], {});
  const small = makeNode("reshape", [makeNode("sum", [big], { axes: [0] })], { shape: [1] });
  const out = makeNode("sin", [small], {});
  const steps: PlanStep[] = [
    { kernel: 0, refs: [{ kind: "node", node: x }, { kind: "node", node: big, write: true }] },
    { kernel: 1, refs: [{ kind: "node", node: big }, { kind: "node", node: small, write: true }] },
    { kernel: 2, refs: [{ kind: "node", node: small }, { kind: "node", node: out, write: true }] },
    // A second 16 KiB value after `big` died takes its slot.
  ];
  const planner = new MemoryPlanner<number>([x], [out], new Map(), new Map(), steps, {
    bytes: (c) => c,
    key: String,
  });
  const plan = planner.plan([]);
  // big: 16 KiB; small (256 bytes) is written while big is read: a slot of its own; out
  // (256 bytes, an output) may not take big's slot once free, only one of its own class.
  assert.deepEqual(plan.slots.map((s) => s.bytes).sort((a, b) => a - b), [256, 256, 16384]);
  const m = planner.memory();
  assert.equal(m.intermediateBytes, 16384 + 512);

  // Without the output rule: a small intermediate after big's last read takes big's slot.
  const later = makeNode("cos", [small], {});
  const steps2: PlanStep[] = [
    ...steps.slice(0, 2),
    {
      kernel: 2,
      refs: [{ kind: "node", node: small }, { kind: "node", node: later, write: true }],
    },
    { kernel: 3, refs: [{ kind: "node", node: later }, { kind: "node", node: out, write: true }] },
  ];
  const p2 = new MemoryPlanner<number>([x], [out], new Map(), new Map(), steps2, {
    bytes: (c) => c,
    key: String,
  }).plan([]);
  assert.equal(p2.sources[2][1].kind, "slot");
  assert.equal(
    (p2.sources[2][1] as { slot: number }).slot,
    (p2.sources[0][1] as { slot: number }).slot,
  );
});

Deno.test("memoryOrder keeps every dependency and frees memory early", async () => {
  const dagArb = fc.array(
    fc.record({
      reads: fc.array(fc.nat(), { maxLength: 3 }),
      after: fc.array(fc.nat(), { maxLength: 1 }),
      size: fc.integer({ min: 1, max: 5000 }),
    }),
    { minLength: 1, maxLength: 40 },
  );
  let dag = 0;
  await check("memoryOrder", dagArb, async (spec) => {
    const id = dag++;
    const input = makeNode("var", [], { id: `d${id}x`, shape: [100], dtype: "float32" });
    const writes: Node[] = [];
    const units = spec.map((u, i) => {
      const w = makeNode("var", [], { id: `d${id}u${i}`, shape: [u.size], dtype: "float32" });
      writes.push(w);
      const pick = (r: number) => (i === 0 ? input : writes[r % i]);
      return {
        writes: [w],
        reads: u.reads.map(pick),
        after: i === 0 ? [] : u.after.map((r) => writes[r % i]),
      };
    });
    const keep = new Set([writes[writes.length - 1]]);
    const order = memoryOrder(units, (n) => keep.has(n));
    assert.deepEqual([...order].sort((a, b) => a - b), units.map((_, i) => i));
    const at = new Map(order.map((u, k) => [u, k]));
    units.forEach((u, i) => {
      for (const n of [...u.reads, ...u.after]) {
        const p = writes.indexOf(n);
        if (p >= 0) {
          assert.ok(at.get(p)! < at.get(i)!, `unit ${i} runs before unit ${p} it depends on`);
        }
      }
    });
    await Promise.resolve();
  }, 300);

  // A backward pass's shape: activations a1, a2 (forward), then the cotangent chain g2 -> g1
  // and the weight gradients w2 (reads a2, g2) and w1 (reads a1, g1), given in the order a walk
  // from the outputs yields (both weight gradients last). The weight gradient of a layer runs
  // as soon as its cotangent exists, so a2 and g2 die before g1 is written.
  const x = makeNode("var", [], { id: "bwx", shape: [1024], dtype: "float32" });
  const n = (name: string, size = 1024) =>
    makeNode("var", [], { id: `bw${name}`, shape: [size], dtype: "float32" });
  const [a1, a2, g2, g1, w1, w2] = [n("a1"), n("a2"), n("g2"), n("g1"), n("w1", 4), n("w2", 4)];
  const order = memoryOrder([
    { writes: [a1], reads: [x] },
    { writes: [a2], reads: [a1] },
    { writes: [g2], reads: [a2] },
    { writes: [g1], reads: [g2] },
    { writes: [w1], reads: [a1, g1] },
    { writes: [w2], reads: [a2, g2] },
  ], (v) => v === w1 || v === w2);
  assert.deepEqual(order, [0, 1, 2, 5, 3, 4]);
});
