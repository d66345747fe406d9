import { ok, strictEqual, throws } from "node:assert/strict";
import { lineChartSvg, scatterSvg } from "./report.ts";

/** Checks the SVG is well formed: one <svg> root, balanced tags, no NaN/undefined/Infinity. */
function assertWellFormed(svg: string): void {
  ok(svg.startsWith("<svg "), "starts with <svg");
  ok(svg.endsWith("</svg>"), "ends with </svg>");
  ok(svg.includes('xmlns="http://www.w3.org/2000/svg"'));
  for (const bad of ["NaN", "undefined", "Infinity", "null"]) {
    ok(!svg.includes(bad), `contains ${bad}`);
  }
  const stack: string[] = [];
  const tag = /<(\/?)([a-zA-Z]+)((?:\s+[a-zA-Z][\w:.-]*="[^"<>]*")*)\s*(\/?)>/g;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = tag.exec(svg)) !== null) {
    ok(!/[<>]/.test(svg.slice(end, m.index)), `stray angle bracket before ${m[0]}`);
    end = m.index + m[0].length;
    const [, close, name, , self] = m;
    if (self) continue;
    if (close) strictEqual(stack.pop(), name, `closing </${name}>`);
    else stack.push(name);
    if (!close && stack.length === 1) strictEqual(name, "svg");
  }
  ok(!/[<>]/.test(svg.slice(end)), "stray angle bracket at the end");
  strictEqual(stack.length, 0, "unclosed tags");
}

Deno.test("lineChartSvg() draws named series on linear axes", () => {
  const svg = lineChartSvg({
    series: [
      { name: "train loss", x: [0, 1, 2, 3], y: [4.2, 2.1, 1.3, 0.9] },
      { name: "val <m=0.35> & co", x: [0, 3], y: [5, 1] },
    ],
    title: "CosFace",
    xLabel: "epoch",
    yLabel: "loss",
  });
  assertWellFormed(svg);
  for (const s of ["train loss", "val &#60;m=0.35&#62; &#38; co", "CosFace", "epoch", "loss"]) {
    ok(svg.includes(s), s);
  }
  strictEqual(svg.match(/<path /g)?.length, 2);
  // Nice 1-2-5 ticks: y from 0.9 to 5 gives 0, 1, ..., 5; x gives 0, 0.5, ..., 3.
  for (const t of [">0<", ">1<", ">5<", ">0.5<", ">2.5<"]) ok(svg.includes(t), t);
});

Deno.test("lineChartSvg() uses decade ticks on a log axis and skips invalid points", () => {
  const fpr = [0, 1e-5, 1e-4, 1e-3, 1e-2, 0.1, 1];
  const svg = lineChartSvg({
    series: [{ name: "roc", x: fpr, y: [0, 0.2, 0.5, NaN, 0.9, 0.95, 1] }],
    logX: true,
  });
  assertWellFormed(svg);
  for (const e of ["-5", "-4", "-3", "-2", "-1", "0"]) {
    ok(svg.includes(`>10<tspan dy="-6" font-size="9">${e}<`), e);
  }
  // fpr = 0 and the NaN leave out points: two segments, "M...L..." twice in one path.
  const d = svg.match(/<path d="([^"]*)"/)![1];
  strictEqual(d.match(/M/g)?.length, 2);
  throws(() => lineChartSvg({ series: [{ name: "a", x: [1, 2], y: [1] }] }), /2 x values but 1 y/);
  throws(() => lineChartSvg({ series: [], logX: true, xRange: [0, 1] }), /log axis/);
});

Deno.test("lineChartSvg() thins a 200,000-point curve to pixel resolution", () => {
  const n = 200_000;
  const x = new Float64Array(n).map((_, i) => i / n);
  const y = x.map((v) => Math.sqrt(v));
  const svg = lineChartSvg({ series: [{ name: "big", x, y }] });
  assertWellFormed(svg);
  ok(svg.length < 60_000, `${svg.length} characters`);
  // Empty and constant series still give a valid picture.
  assertWellFormed(lineChartSvg({ series: [] }));
  assertWellFormed(lineChartSvg({ series: [{ name: "flat", x: [1, 1], y: [3, 3] }] }));
});

Deno.test("scatterSvg() colors points by class and draws rays and the unit circle", () => {
  const svg = scatterSvg({
    points: new Float32Array([0.9, 0.1, -0.2, 1.1, 1.0, -0.1, 0.5, 0.5]),
    labels: [0, 1, 0, 2],
    rays: [2, 0, 0, 3, -1, -1],
    unitCircle: true,
    classNames: ["alice", "bob"],
    title: "toy margins",
  });
  assertWellFormed(svg);
  for (const s of ["alice", "bob", "class 2", "toy margins"]) ok(svg.includes(s), s);
  ok(svg.includes('stroke-dasharray="5 4"'), "unit circle");
  strictEqual(svg.match(/fill-opacity="0.75"/g)?.length, 4, "one dot per point");
  // Two lines per ray (white halo + color), plus the two axis lines through the origin.
  strictEqual(
    svg.match(/<line x1="[^"]*" y1="[^"]*" x2="[^"]*" y2="[^"]*" stroke="white"/g)?.length,
    3,
  );
  ok(svg.includes('fill="#4e79a7" fill-opacity'), "class 0 color");
  ok(svg.includes('fill="#e15759" fill-opacity'), "class 2 color");
  throws(() => scatterSvg({ points: [1, 2, 3], labels: [0, 1] }), /expected 2 x 2 labels/);
  throws(() => scatterSvg({ points: [1, NaN], labels: [0] }), /Non-finite coordinate NaN/);
  throws(() => scatterSvg({ points: [1, 2], labels: [-1] }), /Invalid label -1/);
});
